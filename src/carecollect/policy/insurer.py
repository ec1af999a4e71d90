"""Waiting for the insurer: the patient is asked only for what is theirs to pay.

While a claim is pending or appealed, the patient is not asked for what the
insurer may still pay. The pack says how long to wait before billing the
patient anyway (``insurer.pending_wait_days``, ``insurer.appeal_wait_days``,
counted from the claim's filing). A patient share known up front (a copay)
may be asked for at any time.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine
>>> from carecollect.policy import get_pack
>>> from carecollect.policy.insurer import billable_to_patient
>>> line = InvoiceLine("99213", "Visit", Money("250.00", "USD"), dt.date(2026, 3, 2))
>>> inv = Invoice("INV-1", "A-1", "USD", (line,), dt.date(2026, 3, 3), dt.date(2026, 4, 2),
...               insurance=Insurance(ClaimStatus.PENDING, submitted_on=dt.date(2026, 3, 3)))
>>> b = billable_to_patient(inv, today=dt.date(2026, 3, 20), pack=get_pack("us"), known_patient_share=Money("30.00", "USD"))
>>> b.amount, b.wait_until
(Money('30.00', 'USD'), datetime.date(2026, 5, 2))
>>> billable_to_patient(inv, today=dt.date(2026, 5, 2), pack=get_pack("us")).amount
Money('250.00', 'USD')
"""

from __future__ import annotations

import datetime as dt

import attrs

from ..invoices import ClaimStatus, Invoice
from ..money import Money
from .explain import Outcome, Reason, note, rule_reason
from .packs import PolicyPack

__all__ = ["InsurerWait", "billable_to_patient"]


@attrs.frozen
class InsurerWait:
    """What may be asked of the patient today.

    :param amount: the amount the patient may be asked for (zero while waiting, unless a share is known).
    :param waiting: the claim is pending or appealed and the wait has not run out.
    :param wait_until: the day the patient may be billed anyway (``None`` when not waiting).
    :param reasons: why.
    """

    amount: Money
    waiting: bool
    wait_until: dt.date | None
    reasons: tuple[Reason, ...]


def billable_to_patient(
    invoice: Invoice, *, today: dt.date, pack: PolicyPack, known_patient_share: Money | None = None
) -> InsurerWait:
    """The part of ``invoice`` the patient may be asked to pay on ``today``.

    :param invoice: the invoice with its insurance side.
    :param today: the day of the decision.
    :param pack: the rules.
    :param known_patient_share: a share known before the insurer decides (a copay); never more than
        what is left after the insurer's payment and adjustments.
    """
    due = invoice.patient_responsibility
    ins = invoice.insurance
    if not ins.status.waiting:
        why = (
            note("record.claim_status", "invoice record", Outcome.ALLOW, case="self_pay")
            if ins.status is ClaimStatus.NONE
            else note(
                "record.claim_status",
                "invoice record",
                Outcome.ALLOW,
                case="decided",
                status=ins.status.value,
            )
        )
        return InsurerWait(due, False, None, (why,))
    rid = "insurer.appeal_wait_days" if ins.status is ClaimStatus.APPEALED else "insurer.pending_wait_days"
    days: int = pack.value(rid, on=today)
    filed = ins.submitted_on or invoice.issue_date
    until = filed + dt.timedelta(days=days)
    if today >= until:
        return InsurerWait(
            due,
            False,
            None,
            (
                rule_reason(
                    pack,
                    rid,
                    today,
                    Outcome.ALLOW,
                    case="waited",
                    status=ins.status.value,
                    filed=filed.isoformat(),
                    days=days,
                ),
            ),
        )
    share = Money.zero(invoice.currency)
    if known_patient_share is not None:
        share = known_patient_share if known_patient_share <= due else due
    return InsurerWait(
        share,
        True,
        until,
        (
            rule_reason(
                pack,
                rid,
                today,
                Outcome.DEFER,
                case="waiting",
                status=ins.status.value,
                until=until.isoformat(),
            ),
        ),
    )
