"""Predicates the outreach cadence calls: is collection on this debt paused, and why?

A *collection pause* holds collection messages on a debt; it is not a *plan pause*
(:attr:`carecollect.plans.PlanStatus.PAUSED`: a payment plan's instalments suspended for
hardship) nor the governor's *waiting period* after a conversation.

Relief stops reminders in several ways: an open dispute freezes collection
outreach (seed 001; FDCPA 1692g(b); 45 CFR 149.620), a plan the patient keeps
replaces dunning with instalment reminders, a pending assistance application
suspends collection, and a claim the insurer may still pay is not billed to
the patient. :func:`collection_paused` answers for one invoice (or the whole
account) with the reasons; the cadence skips collection steps
(:attr:`~carecollect.outreach.OutreachPurpose.is_collection`) while it is true.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.disputes import Dispute, DisputeReason
>>> from carecollect.relief.pauses import collection_paused
>>> from carecollect.relief.snapshot import GateSnapshot
>>> t = dt.datetime(2026, 3, 9, 10, tzinfo=dt.timezone.utc)
>>> d = Dispute(id="D-1", account_id="A-1", invoice_id="INV-1", reason=DisputeReason.QUALITY_OF_SERVICE, opened_at=t)
>>> paused, why = collection_paused(GateSnapshot("A-1", Money("120.00", "USD"), disputes=(d,)),
...                                 invoice_id="INV-1", now=t, pack=get_pack("us"))
>>> paused, why[0].rule_id
(True, 'dispute.freezes_collection')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ..plans import PlanStatus
from ..policy.packs import PolicyPack
from ..timekeeping import require_aware
from .insurer import billable_to_patient
from .reasons import Outcome, Reason, rule_reason
from .snapshot import GateSnapshot

__all__ = ["ReliefFlags", "collection_paused", "relief_flags"]


def collection_paused(
    snapshot: GateSnapshot, *, invoice_id: str | None = None, now: dt.datetime, pack: PolicyPack
) -> tuple[bool, tuple[Reason, ...]]:
    """True (with the reasons) when no collection message may go out on ``invoice_id`` (``None``: the account).

    Instalment reminders, dispute acknowledgements and follow-up calls are not
    collection steps and are not paused by this.

    :param snapshot: the account's records.
    :param invoice_id: the invoice a step concerns (``None``: any).
    :param now: the moment (aware).
    :param pack: the rules.
    :returns: ``(paused, reasons)``; the reasons are empty when nothing pauses collection.
    """
    reasons, _ = _paused(snapshot, invoice_id, now, pack)
    return bool(reasons), reasons


def _paused(
    snapshot: GateSnapshot, invoice_id: str | None, now: dt.datetime, pack: PolicyPack
) -> tuple[tuple[Reason, ...], bool]:
    """:func:`collection_paused`'s reasons, and whether an insurer's wait is among them."""
    require_aware(now, f"GateSnapshot {snapshot.account_id}", "now")
    today = now.date()
    reasons: list[Reason] = []
    waiting = False
    for d in snapshot.open_disputes(invoice_id):
        reasons.append(
            rule_reason(
                pack,
                "dispute.freezes_collection",
                today,
                Outcome.DENY,
                case="outreach",
                dispute=d.id,
            )
        )
    for p in snapshot.current_plans(invoice_id):
        reasons.append(
            rule_reason(
                pack,
                "gate.plan_blocks",
                today,
                Outcome.DENY,
                case="reminders",
                plan=p.id,
                status=p.status.value,
            )
        )
    for a in snapshot.pending_applications():
        reasons.append(
            rule_reason(
                pack,
                "gate.application_blocks",
                today,
                Outcome.DENY,
                case="awaits",
                application=a.id,
            )
        )
    for inv in snapshot.invoices:
        if invoice_id is not None and inv.id != invoice_id:
            continue
        wait = billable_to_patient(inv, today=today, pack=pack)
        if wait.waiting:
            waiting = True
            reasons.extend(wait.reasons)
    return tuple(reasons), waiting


@attrs.frozen
class ReliefFlags:
    """The relief facts the outreach cadence reads for one invoice
    (the matching fields of :class:`carecollect.policy.cadence.InvoiceContext`).

    :param dispute_open: an open dispute covers the invoice.
    :param plan_status: the status of a current plan covering it (``None``: no current plan).
    :param insurer_waiting: the claim is pending or appealed and the pack's wait has not run out.
    :param assistance_pending: an assistance application awaits a decision.
    :param reasons: the reasons behind the flags.
    """

    dispute_open: bool
    plan_status: PlanStatus | None
    insurer_waiting: bool
    assistance_pending: bool
    reasons: tuple[Reason, ...]

    def as_context_kwargs(self) -> dict[str, Any]:
        """The flags as keyword arguments for ``InvoiceContext(...)``."""
        return {
            "dispute_open": self.dispute_open,
            "plan_status": self.plan_status,
            "insurer_waiting": self.insurer_waiting,
            "assistance_pending": self.assistance_pending,
        }


def relief_flags(
    snapshot: GateSnapshot, *, invoice_id: str, now: dt.datetime, pack: PolicyPack
) -> ReliefFlags:
    """The relief flags of ``invoice_id`` for the cadence, with the pack's insurer wait applied.

    :param snapshot: the account's records.
    :param invoice_id: the invoice the cadence is planning for.
    :param now: the moment of the decision (aware). "Today" (for the insurer's wait and the
        rules in force) is ``now``'s date in ``now``'s own zone: pass it in the patient's zone,
        as the daily run and the cadence do, so that the wait ends on the patient's day.
    :param pack: the policy pack (the rules in force on the day apply).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.policy import get_pack
    >>> from carecollect.relief.snapshot import GateSnapshot
    >>> f = relief_flags(GateSnapshot("A-1", Money("10.00", "USD")), invoice_id="INV-1",
    ...                  now=dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc), pack=get_pack("us"))
    >>> f.as_context_kwargs()
    {'dispute_open': False, 'plan_status': None, 'insurer_waiting': False, 'assistance_pending': False}
    """
    reasons, waiting = _paused(snapshot, invoice_id, now, pack)  # the insurer's wait weighed once
    plans = snapshot.current_plans(invoice_id)
    return ReliefFlags(
        dispute_open=bool(snapshot.open_disputes(invoice_id)),
        plan_status=plans[0].status if plans else None,
        insurer_waiting=waiting,
        assistance_pending=bool(snapshot.pending_applications()),
        reasons=reasons,
    )
