"""Deprecated: the daily run now lives in the :mod:`carecollect.run` package.

.. deprecated:: 0.2
   Import from the module that holds each name (the warning names it), or from
   :mod:`carecollect.run` for the public names. This alias goes after one minor release.

Where things went:

* settings (:class:`~carecollect.run.settings.RunSettings`,
  :class:`~carecollect.run.settings.CreditorSettings`, settings checks): :mod:`carecollect.run.settings`
* the plan's objects (:class:`~carecollect.run.decisions.Decision`,
  :class:`~carecollect.run.decisions.RunPlan`...): :mod:`carecollect.run.decisions`
* planning (:func:`~carecollect.run.planning.plan_account`,
  :func:`~carecollect.run.planning.plan_run`): :mod:`carecollect.run.planning`
* inbound events and intake (:func:`~carecollect.run.event_intake.intake`): :mod:`carecollect.run.inbound`,
  :mod:`carecollect.run.event_intake`, :mod:`carecollect.run.payment_intake`,
  :mod:`carecollect.run.dispute_intake`
* durable hook events (:func:`~carecollect.run.hooks.owe_hook`...): :mod:`carecollect.run.hooks`
* sending through the outbox (:func:`~carecollect.run.sending.message_id`...): :mod:`carecollect.run.sending`
* instalment charges and placements: :mod:`carecollect.run.charges`
* the run itself (:func:`~carecollect.run.execute.execute_run`): :mod:`carecollect.run.execute`,
  its report :mod:`carecollect.run.report`
* the run lock's heartbeat and parallel workers: :mod:`carecollect.run.workers`
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: Every name this module held -> the module of :mod:`carecollect.run` that holds it now.
MOVED: dict[str, str] = {
    "_charge": "charges",
    "_charge_failed": "charges",
    "_failed_placement": "charges",
    "_place": "charges",
    "_placement_request": "charges",
    "_provider": "charges",
    "provider_payment_id": "charges",
    "AccountPlan": "decisions",
    "_Collected": "decisions",
    "Decision": "decisions",
    "DecisionKind": "decisions",
    "_Planned": "decisions",
    "PlannedCharge": "decisions",
    "PlannedMessage": "decisions",
    "PlannedPlacement": "decisions",
    "RunPlan": "decisions",
    "_dispute_body": "dispute_intake",
    "_instant": "dispute_intake",
    "_meet_disputes": "dispute_intake",
    "_recall": "dispute_intake",
    "_retry_recalls": "dispute_intake",
    "_take_dispute": "dispute_intake",
    "_execute": "execute",
    "_execute_phase": "execute",
    "execute_run": "execute",
    "explain_account": "execute",
    "_finished": "execute",
    "last_run_at": "execute",
    "announce_send_failure": "hooks",
    "_deliver": "hooks",
    "deliver_hooks": "hooks",
    "hook_failures": "hooks",
    "owe_hook": "hooks",
    "_owe_send_failure": "hooks",
    "OwedHookEvent": "hooks",
    "redeliver_hook_events": "hooks",
    "InboundEvent": "inbound",
    "InboundKind": "inbound",
    "INBOX_MAX_ATTEMPTS": "inbound",
    "IntakeReport": "inbound",
    "HARD_BOUNCE": "event_intake",
    "_inbox_events": "event_intake",
    "intake": "event_intake",
    "_mark_bounced_point": "event_intake",
    "_record_bounce": "event_intake",
    "_take_status_update": "event_intake",
    "_overtaken_reversals": "payment_intake",
    "_REVERSAL_CAUSES": "payment_intake",
    "_reverse_linked_payment": "payment_intake",
    "_take_payment_webhook": "payment_intake",
    "_take_remittance": "payment_intake",
    "by_account": "planning",
    "Conversations": "planning",
    "_Creditors": "planning",
    "_gate_snapshot": "planning",
    "_iter_plans": "planning",
    "_paid": "planning",
    "_placed_on": "planning",
    "plan_account": "planning",
    "_plan_charge": "planning",
    "_plan_of_codes": "planning",
    "plan_run": "planning",
    "_plan_status": "planning",
    "_prescreen": "planning",
    "_rules_key": "planning",
    "_SENT": "planning",
    "_sent_steps": "planning",
    "_today": "planning",
    "_report": "report",
    "RunReport": "report",
    "_address_digest": "sending",
    "_ANNOUNCES_ACTION": "sending",
    "_channel_instance": "sending",
    "_claims_in_force": "sending",
    "close_batches": "sending",
    "_close_step": "sending",
    "_COUNTERS": "sending",
    "_DEFAULT_NOTICE_DAYS": "sending",
    "_failed": "sending",
    "_Fresh": "sending",
    "_intend_all": "sending",
    "_message_context": "sending",
    "message_id": "sending",
    "_MESSAGE_JURISDICTIONS": "sending",
    "_NEEDS_DEADLINE": "sending",
    "_NEEDS_NOTICE": "sending",
    "new_pay_link_key": "sending",
    "_recipient": "sending",
    "_send_one": "sending",
    "_Sender": "sending",
    "_sent_event": "sending",
    "check_settings": "settings",
    "CreditorSettings": "settings",
    "_did_you_mean": "settings",
    "_merge": "settings",
    "RunSettings": "settings",
    "settings_problems": "settings",
    "_CHUNK": "workers",
    "_die_with": "workers",
    "_execute_parallel": "workers",
    "_pid_alive": "workers",
    "_QUEUED": "workers",
    "_release_if_holder_died": "workers",
    "RunHeartbeat": "workers",
    "RunWorkerError": "workers",
    "_wall_clock": "workers",
    "_worker": "workers",
    "_worker_failure": "workers",
    "worker_of": "workers",
}

_warned: set[str] = set()


def __getattr__(name: str) -> Any:
    module = MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    target = f"carecollect.run.{module}"
    if name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"carecollect.daily_run.{name} moved to {target}.{name}; carecollect.daily_run is deprecated",
            DeprecationWarning,
            stacklevel=2,
        )
    return getattr(importlib.import_module(target), name)


def __dir__() -> list[str]:
    return sorted(MOVED)
