"""The creditor's written dispute procedure (seed article 001) and the US dispute rules.

A clinic decides *before* a patient refuses to pay: who the front line hands
the patient to, what each level may grant, how fast the first response comes
(the same business day), and when someone calls back (3 business days after
resolution by default). :class:`DisputeProcedure` is that policy as data;
:func:`open_dispute` and :func:`resolve_dispute` apply it to the records in
:mod:`carecollect.disputes`.

"Reduce or write off what remains after insurance pays" is an
:class:`AfterInsuranceOffer`: :func:`settle_after_insurance` turns it into an
:class:`~carecollect.payments.Adjustment` once the insurer's payment is posted.

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.disputes import DisputeReason, EscalationLevel
>>> from carecollect.relief.disputes import DisputeProcedure, open_dispute
>>> proc = DisputeProcedure.default("NOK")
>>> proc.lowest_level_for_discount(Money("400.00", "NOK"), balance=Money("1000.00", "NOK"))
<EscalationLevel.PROVIDER: 2>
>>> at = dt.datetime(2026, 5, 16, 11, tzinfo=ZoneInfo("Europe/Oslo"))  # a Saturday
>>> d, event, respond_by = open_dispute("D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, at=at,
...                                     pack=get_pack("no"))
>>> respond_by  # Sunday 17 May is Constitution Day; Monday 18 is a business day
datetime.date(2026, 5, 18)
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs

from ..disputes import Dispute, DisputeReason, DisputeStatus, EscalationLevel, Resolution, ResolutionKind
from ..errors import InvalidTransition, PolicyViolation, ValidationError
from ..events import Event, EventType
from ..invoices import EstimateComparison, Invoice
from ..money import Money
from ..payments import Adjustment, AdjustmentKind
from ..policy.packs import PolicyPack
from ..timekeeping import require_aware
from .reasons import Outcome, Reason, note, rule_reason

__all__ = [
    "REDUCING_KINDS",
    "AfterInsuranceKind",
    "AfterInsuranceOffer",
    "DisputeProcedure",
    "LevelAuthority",
    "NsaEligibility",
    "nsa_dispute_eligibility",
    "open_dispute",
    "resolve_dispute",
    "settle_after_insurance",
]


@attrs.frozen
class LevelAuthority:
    """What one level of the procedure may grant.

    :param level: :class:`~carecollect.disputes.EscalationLevel`.
    :param role: who that is, in the clinic's words ("office manager").
    :param max_discount_percent: largest discount as a % of the balance.
    :param max_discount_amount: largest discount as an amount (``None``: no amount limit).
    :param may_write_off: may write off the whole balance.
    """

    level: EscalationLevel
    role: str
    max_discount_percent: Decimal = Decimal(0)
    max_discount_amount: Money | None = None
    may_write_off: bool = False

    def may_grant(self, amount: Money, *, balance: Money) -> bool:
        """True when this level may grant a discount or write-off of ``amount`` on ``balance``.

        :param amount: the discount or write-off asked for.
        :param balance: the balance the amount is measured against.
        """
        if self.may_write_off:
            return True
        if amount > balance.percent(self.max_discount_percent):
            return False
        return self.max_discount_amount is None or amount <= self.max_discount_amount


def _levels(value: Iterable[LevelAuthority]) -> tuple[LevelAuthority, ...]:
    return tuple(value)


@attrs.frozen
class DisputeProcedure:
    """A creditor's written procedure for disputes and refusals to pay.

    :param levels: the levels in order of escalation, each with its authority.
    :param first_response_business_days: 0 = the same business day.
    :param follow_up_business_days: the follow-up call after resolution.
    :param offer_after_insurance: staff may offer to reduce or write off what remains after insurance pays.
    :param source: where the procedure is written down (shown in reasons).
    """

    levels: tuple[LevelAuthority, ...] = attrs.field(converter=_levels)
    first_response_business_days: int = 0
    follow_up_business_days: int = 3
    offer_after_insurance: bool = True
    source: str = "creditor's written dispute procedure"

    def __attrs_post_init__(self) -> None:
        order = [a.level for a in self.levels]
        if not order or order != sorted(order) or len(set(order)) != len(order):
            raise ValidationError("DisputeProcedure", "levels", "list each level once, lowest first")

    @classmethod
    def default(cls, currency: str) -> DisputeProcedure:
        """The default procedure after seed 001: the front desk hands the patient on; the office manager may
        grant a discount up to 25 % (at most 500 in the currency); the provider may grant anything, write-off
        included. First response the same business day; follow-up call 3 business days after resolution.

        :param currency: ISO 4217 currency of the amount limits.
        """
        return cls(
            (
                LevelAuthority(EscalationLevel.FRONT_LINE, "front desk"),
                LevelAuthority(
                    EscalationLevel.OFFICE_MANAGER, "office manager", Decimal(25), Money("500", currency)
                ),
                LevelAuthority(EscalationLevel.PROVIDER, "provider", Decimal(100), None, may_write_off=True),
            ),
            source="carecollect default procedure after seed article 001",
        )

    def authority(self, level: EscalationLevel) -> LevelAuthority | None:
        """The authority of ``level`` (``None`` if the procedure has no such level).

        :param level: the :class:`~carecollect.disputes.EscalationLevel`.
        """
        return next((a for a in self.levels if a.level is level), None)

    def lowest_level_for_discount(self, amount: Money, *, balance: Money) -> EscalationLevel | None:
        """The lowest level that may grant ``amount`` off ``balance`` (``None``: nobody may).

        :param amount: the discount or write-off asked for.
        :param balance: the balance the amount is measured against.
        """
        return next((a.level for a in self.levels if a.may_grant(amount, balance=balance)), None)


def open_dispute(
    dispute_id: str,
    account_id: str,
    invoice_id: str | None,
    reason: DisputeReason,
    *,
    at: dt.datetime,
    pack: PolicyPack,
    in_writing: bool = False,
    procedure: DisputeProcedure | None = None,
) -> tuple[Dispute, Event, dt.date]:
    """Open a dispute; outreach and handoff on the debt freeze at once.

    :returns: the dispute, its event, and the date by which the first response
        is due (``dispute.first_response_business_days`` business days after the
        day it was raised, or the procedure's target when that is sooner; the
        same day if that is a business day and the target is 0).

    :param dispute_id: id of the new dispute.
    :param account_id: the account.
    :param invoice_id: the disputed invoice (``None``: the whole account).
    :param reason: the :class:`~carecollect.disputes.DisputeReason`.
    :param at: when the patient raised it (aware).
    :param pack: the policy pack (the rules in force on the day apply).
    :param in_writing: the patient disputed in writing.
    :param procedure: the creditor's :class:`DisputeProcedure` (its response target applies when sooner).
    """
    require_aware(at, f"Dispute {dispute_id}", "at")
    d = Dispute(
        id=dispute_id,
        account_id=account_id,
        invoice_id=invoice_id,
        reason=reason,
        opened_at=at,
        in_writing=in_writing,
    )
    days: int = pack.value("dispute.first_response_business_days", on=at.date())
    if procedure is not None:
        days = min(days, procedure.first_response_business_days)
    cal = pack.calendar
    respond_by = cal.roll_forward(at.date())
    if days:
        respond_by = cal.add_business_days(respond_by, days)
    return d, Event(EventType.DISPUTE_OPENED, d.id, at, {"reason": reason.value}), respond_by


#: Resolutions that reduce what the patient owes: each needs the authority of the dispute's level.
REDUCING_KINDS = frozenset({ResolutionKind.DISCOUNT, ResolutionKind.WRITE_OFF, ResolutionKind.CORRECTION})


def resolve_dispute(
    d: Dispute,
    resolution: Resolution,
    *,
    balance: Money,
    at: dt.datetime,
    pack: PolicyPack,
    procedure: DisputeProcedure,
    invoice: Invoice | None = None,
) -> tuple[Dispute, Event, tuple[Reason, ...]]:
    """Resolve a dispute: the one way a resolution is recorded (Python API, the daily run's intake
    of dispute events, the demo).

    Everything is checked before anything changes, and a refused resolution leaves the dispute
    as it was:

    * only an open dispute is resolved (:class:`~carecollect.errors.InvalidTransition`);
    * a discount, write-off or correction names a positive amount in the balance's currency, at
      most the balance (:class:`~carecollect.errors.ValidationError`);
    * each of them needs the authority the procedure gives the dispute's current level: a
      write-off needs ``may_write_off``, a discount or correction must fit
      :meth:`LevelAuthority.may_grant` (:class:`~carecollect.errors.PolicyViolation` naming the
      level needed: escalate first);
    * a reduction that waits for the insurer (``effective_after_insurance``) needs a procedure
      that offers reductions after insurance (``offer_after_insurance``);
    * while the disputed ``invoice`` still waits for its insurer, a reduction is only what
      remains after insurance (``effective_after_insurance``): nobody yet knows what the patient
      will owe, so nothing is written off before the insurer has paid.

    :param d: the dispute (its current level's authority applies).
    :param resolution: the :class:`~carecollect.disputes.Resolution`.
    :param balance: the open balance the discount or write-off is measured against.
    :param at: the instant (aware).
    :param pack: the policy pack (the rules in force on the day apply).
    :param procedure: the creditor's :class:`DisputeProcedure`.
    :param invoice: the disputed invoice, when known (its insurance claim is checked).
    :raises InvalidTransition: the dispute is not open.
    :raises ValidationError: a missing, non-positive, foreign-currency or too large amount.
    :raises PolicyViolation: the level may not grant this (escalate first), or the procedure does
        not offer reductions after insurance.
    """
    require_aware(at, f"Dispute {d.id}", "at")
    record = f"Dispute {d.id}"
    if d.status is not DisputeStatus.OPEN:
        raise InvalidTransition(record, d.status, "resolve", "only an open dispute can change")
    reasons: list[Reason] = []
    if resolution.kind in REDUCING_KINDS:
        amount = resolution.amount
        if amount is None or not amount.is_positive():
            raise ValidationError(
                record, "resolution.amount", f"a {resolution.kind.value} needs a positive amount"
            )
        if amount.currency != balance.currency:
            raise ValidationError(
                record, "resolution.amount", f"is in {amount.currency}, the balance in {balance.currency}"
            )
        if amount > balance:
            raise ValidationError(
                record,
                "resolution.amount",
                f"a {resolution.kind.value} of {amount} exceeds the balance {balance}",
            )
        if resolution.effective_after_insurance and not procedure.offer_after_insurance:
            raise PolicyViolation(
                f"{record}: the procedure ({procedure.source}) does not offer reductions after insurance"
            )
        if invoice is not None and invoice.waiting_for_insurer and not resolution.effective_after_insurance:
            raise PolicyViolation(
                f"{record}: invoice {invoice.id} still waits for its insurer; offer the "
                f"{resolution.kind.value} on what remains after insurance (effective_after_insurance)"
            )
        auth = procedure.authority(d.level)
        ok = auth is not None and (
            auth.may_write_off
            if resolution.kind is ResolutionKind.WRITE_OFF
            else auth.may_grant(amount, balance=balance)
        )
        if not ok:
            if resolution.kind is ResolutionKind.WRITE_OFF:
                need = next((a.level for a in procedure.levels if a.may_write_off), None)
            else:
                need = procedure.lowest_level_for_discount(amount, balance=balance)
            hint = f"escalate to {need.name}" if need is not None else "nobody in the procedure may grant it"
            raise PolicyViolation(
                f"{record}: level {d.level.name} may not grant a {resolution.kind.value} of {amount}; {hint}"
            )
        reasons.append(
            note(
                "creditor.dispute.authority",
                procedure.source,
                Outcome.ALLOW,
                level=d.level.name,
                kind=resolution.kind.value,
                amount=str(amount),
            )
        )
    days = procedure.follow_up_business_days
    follow = pack.calendar.add_business_days(at.date(), days)
    if days == pack.value("dispute.follow_up_business_days", on=at.date()):
        reasons.append(
            rule_reason(
                pack, "dispute.follow_up_business_days", at.date(), Outcome.INFO, on=follow.isoformat()
            )
        )
    else:  # the creditor's own procedure sets another day (a creditor's choice)
        reasons.append(
            note(
                "creditor.dispute.follow_up",
                procedure.source,
                Outcome.INFO,
                on=follow.isoformat(),
                days=days,
            )
        )
    new = attrs.evolve(
        d,
        status=DisputeStatus.RESOLVED,
        resolution=resolution,
        resolved_at=at,
        follow_up_on=follow,
        first_response_at=d.first_response_at or at,
    )
    details: dict[str, object] = {"kind": resolution.kind.value}
    if resolution.amount is not None:
        details["amount"] = resolution.amount
    return new, Event(EventType.DISPUTE_RESOLVED, d.id, at, details), tuple(reasons)


class AfterInsuranceKind(enum.Enum):
    """What the creditor offered to do once insurance has paid."""

    #: Reduce what is left after insurance by a percentage.
    REDUCE_PERCENT = "reduce_percent"
    #: Write off what is left after insurance.
    WRITE_OFF_REMAINDER = "write_off_remainder"


@attrs.frozen
class AfterInsuranceOffer:
    """An offer that takes effect when the insurer's payment is posted.

    :param id: stable id (also the resulting adjustment's id).
    :param dispute_id: the dispute it resolves.
    :param invoice_id: the invoice.
    :param kind: :class:`AfterInsuranceKind`.
    :param approved_by: staff id with the authority.
    :param percent: for ``REDUCE_PERCENT``.
    """

    id: str
    dispute_id: str
    invoice_id: str
    kind: AfterInsuranceKind
    approved_by: str
    percent: Decimal = Decimal(0)


def settle_after_insurance(
    offer: AfterInsuranceOffer, invoice: Invoice, *, open_balance: Money, at: dt.datetime
) -> Adjustment | None:
    """The adjustment the offer produces, once the insurer has decided; ``None`` while the claim is pending.

    :param open_balance: the invoice's open balance on the ledger after the insurer's payment.

    :param offer: the :class:`AfterInsuranceOffer`.
    :param invoice: the invoice with its insurance side.
    :param at: the instant (aware).

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> from carecollect.money import Money
    >>> from carecollect.invoices import Invoice, InvoiceLine, Insurance, ClaimStatus
    >>> line = InvoiceLine("99213", "Visit", Money("300.00", "USD"), dt.date(2026, 3, 2))
    >>> inv = Invoice("INV-1", "A-1", "USD", (line,), dt.date(2026, 3, 3), dt.date(2026, 4, 2),
    ...               insurance=Insurance(ClaimStatus.PENDING))
    >>> offer = AfterInsuranceOffer("ADJ-1", "D-1", "INV-1", AfterInsuranceKind.WRITE_OFF_REMAINDER, "S-7")
    >>> t = dt.datetime(2026, 4, 20, 9, tzinfo=dt.timezone.utc)
    >>> settle_after_insurance(offer, inv, open_balance=Money("300.00", "USD"), at=t) is None
    True
    >>> paid = Invoice("INV-1", "A-1", "USD", (line,), dt.date(2026, 3, 3), dt.date(2026, 4, 2),
    ...                insurance=Insurance(ClaimStatus.ADJUDICATED, insurer_paid=Money("240.00", "USD")))
    >>> settle_after_insurance(offer, paid, open_balance=Money("60.00", "USD"), at=t).amount
    Money('60.00', 'USD')
    """
    require_aware(at, f"AfterInsuranceOffer {offer.id}", "at")
    if invoice.id != offer.invoice_id:
        raise ValidationError(f"AfterInsuranceOffer {offer.id}", "invoice_id", f"is not invoice {invoice.id}")
    if invoice.waiting_for_insurer:
        return None
    if offer.kind is AfterInsuranceKind.WRITE_OFF_REMAINDER:
        amount, kind = open_balance, AdjustmentKind.WRITE_OFF
    else:
        amount, kind = open_balance.percent(offer.percent), AdjustmentKind.DISCOUNT
    if not amount.is_positive():
        return None
    return Adjustment(
        id=offer.id,
        account_id=invoice.account_id,
        invoice_id=invoice.id,
        amount=amount,
        kind=kind,
        reason_code=f"DISPUTE-{offer.dispute_id}-AFTER-INSURANCE",
        approved_by=offer.approved_by,
        at=at,
    )


@attrs.frozen
class NsaEligibility:
    """Whether a US self-pay bill may enter patient-provider dispute resolution.

    :param eligible: the bill exceeds the estimate by the threshold and the window is open.
    :param window_ends: the last day to start the dispute.
    :param reasons: why.
    """

    eligible: bool
    window_ends: dt.date
    reasons: tuple[Reason, ...]


def nsa_dispute_eligibility(
    comparison: EstimateComparison, *, bill_date: dt.date, on: dt.date, pack: PolicyPack
) -> NsaEligibility:
    """No Surprises Act: a bill $400 or more above the good-faith estimate may be disputed within 120 days.

    While that dispute is open nothing is collected (open a dispute with
    :attr:`~carecollect.disputes.DisputeReason.ABOVE_ESTIMATE`; the gates and
    :func:`~carecollect.relief.pauses.collection_paused` then stop everything).

    :param comparison: the estimate compared with the bill.
    :param bill_date: the date of the bill.
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.invoices import EstimateComparison
    >>> from carecollect.policy import get_pack
    >>> c = EstimateComparison(Money("1000.00", "USD"), Money("1400.00", "USD"))
    >>> e = nsa_dispute_eligibility(c, bill_date=dt.date(2026, 3, 2), on=dt.date(2026, 6, 30), pack=get_pack("us"))
    >>> e.eligible, e.window_ends
    (True, datetime.date(2026, 6, 30))
    """
    threshold = Money.of(pack.value("nsa.dispute_threshold_usd", on=on), comparison.invoice_total.currency)
    days: int = pack.value("nsa.dispute_window_days", on=on)
    ends = bill_date + dt.timedelta(days=days)
    over = comparison.exceeds_by_at_least(threshold)
    reasons = (
        rule_reason(
            pack,
            "nsa.dispute_threshold_usd",
            on,
            Outcome.ALLOW if over else Outcome.DENY,
            difference=str(comparison.difference),
            threshold=str(threshold),
        ),
        rule_reason(
            pack,
            "nsa.dispute_window_days",
            on,
            Outcome.ALLOW if on <= ends else Outcome.DENY,
            until=ends.isoformat(),
        ),
    )
    return NsaEligibility(over and on <= ends, ends, reasons)
