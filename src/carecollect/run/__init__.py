"""The daily run, one subsystem per module.

* :mod:`carecollect.run.settings`: what a run uses (plugins, packs, rules), per creditor;
  :mod:`carecollect.run.settings_file` reads them from the TOML file beside the database.
* :mod:`carecollect.run.rows` and :mod:`carecollect.run.kernel`: flat plan rows from the store
  and the compiled decision kernel that decides them.
* :mod:`carecollect.run.decisions` and :mod:`carecollect.run.planning`: the plan of a run
  (:func:`~carecollect.run.planning.plan_run`, ``carecollect run --dry-run``), written nowhere.
* :mod:`carecollect.run.inbound`, :mod:`carecollect.run.event_intake`,
  :mod:`carecollect.run.payment_intake`, :mod:`carecollect.run.dispute_intake`: what came back
  since the last run (payments, disputes, remittances, bounces, agency status updates).
* :mod:`carecollect.run.hooks`: hook events owed with the change they report, delivered once.
* :mod:`carecollect.run.sending` and :mod:`carecollect.run.charges`: messages, instalment
  charges and agency placements through the outbox, each done once.
* :mod:`carecollect.run.execute`, :mod:`carecollect.run.report`, :mod:`carecollect.run.workers`:
  the run itself (:func:`~carecollect.run.execute.execute_run`), what it did, its lock's
  heartbeat and its parallel workers.
* :mod:`carecollect.run.process`: how a batch run tunes the process (Python's cycle collector).

The public names below are importable from :mod:`carecollect.run` itself; each module is
imported on first use, so ``import carecollect.run`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are imported on first use
    from ..errors import RunWorkerError  # raised by the workers; it lives with every error
    from .charges import provider_payment_id
    from .decisions import (
        AccountPlan,
        Decision,
        DecisionKind,
        PlannedCharge,
        PlannedMessage,
        PlannedPlacement,
        RunPlan,
    )
    from .event_intake import intake
    from .execute import execute_run, explain_account, last_run_at
    from .hooks import (
        OwedHookEvent,
        announce_send_failure,
        deliver_hooks,
        hook_failures,
        owe_hook,
        redeliver_hook_events,
    )
    from .inbound import EventTaken, InboundEvent, InboundKind, IntakeReport, Taken
    from .planning import by_account, plan_account, plan_run
    from .report import RunReport
    from .sending import close_batches, message_id, new_pay_link_key
    from .settings import CreditorSettings, RunSettings, check_settings, settings_problems
    from .workers import RunHeartbeat, worker_of

#: Public name -> the module of this package that defines it (imported on first access, PEP 562).
_LAZY: dict[str, str] = {
    "AccountPlan": "decisions",
    "CreditorSettings": "settings",
    "Decision": "decisions",
    "DecisionKind": "decisions",
    "EventTaken": "inbound",
    "InboundEvent": "inbound",
    "InboundKind": "inbound",
    "IntakeReport": "inbound",
    "OwedHookEvent": "hooks",
    "PlannedCharge": "decisions",
    "PlannedMessage": "decisions",
    "PlannedPlacement": "decisions",
    "RunHeartbeat": "workers",
    "RunPlan": "decisions",
    "RunReport": "report",
    "RunSettings": "settings",
    "RunWorkerError": "workers",
    "Taken": "inbound",
    "announce_send_failure": "hooks",
    "by_account": "planning",
    "check_settings": "settings",
    "close_batches": "sending",
    "deliver_hooks": "hooks",
    "execute_run": "execute",
    "explain_account": "execute",
    "hook_failures": "hooks",
    "intake": "event_intake",
    "last_run_at": "execute",
    "message_id": "sending",
    "new_pay_link_key": "sending",
    "owe_hook": "hooks",
    "plan_account": "planning",
    "plan_run": "planning",
    "provider_payment_id": "charges",
    "redeliver_hook_events": "hooks",
    "settings_problems": "settings",
    "worker_of": "workers",
}

__all__ = [
    "AccountPlan",
    "CreditorSettings",
    "Decision",
    "DecisionKind",
    "EventTaken",
    "InboundEvent",
    "InboundKind",
    "IntakeReport",
    "OwedHookEvent",
    "PlannedCharge",
    "PlannedMessage",
    "PlannedPlacement",
    "RunHeartbeat",
    "RunPlan",
    "RunReport",
    "RunSettings",
    "RunWorkerError",
    "Taken",
    "announce_send_failure",
    "by_account",
    "check_settings",
    "close_batches",
    "deliver_hooks",
    "execute_run",
    "explain_account",
    "hook_failures",
    "intake",
    "last_run_at",
    "message_id",
    "new_pay_link_key",
    "owe_hook",
    "plan_account",
    "plan_run",
    "provider_payment_id",
    "redeliver_hook_events",
    "settings_problems",
    "worker_of",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
