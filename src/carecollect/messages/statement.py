"""A plain-language statement: every line explained.

:func:`build_statement` turns an :class:`~carecollect.invoices.Invoice` into a
:class:`Statement` whose every line says what was done (the line's
plain-language description), what it cost, what the insurer paid, what was
taken off under the insurer contract, and what the patient owes and why
(deductible, coinsurance, copay, not covered, self-pay). The templates render
it in the patient's language together with how to pay, how to get a plan, how
to get help and how to dispute.

When the insurer reports its payment and the contractual adjustment only for
the whole invoice, they are spread over the lines in proportion to the charges
with :meth:`Money.allocate <carecollect.money.Money.allocate>`, so the lines
always add up to the totals to the cent.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.invoices import Invoice, InvoiceLine, Insurance, ClaimStatus
>>> inv = Invoice(id="INV-7", account_id="A-1", currency="USD",
...     lines=(InvoiceLine("99213", "Office visit with your doctor", Money("180.00", "USD"), dt.date(2026, 2, 2)),
...            InvoiceLine("85025", "Blood test", Money("60.00", "USD"), dt.date(2026, 2, 2))),
...     issue_date=dt.date(2026, 2, 20), due_date=dt.date(2026, 3, 22),
...     insurance=Insurance(ClaimStatus.ADJUDICATED, insurer_paid=Money("120.00", "USD"),
...                         contractual_adjustment=Money("60.00", "USD"), payer_name="Acme Health"))
>>> st = build_statement(inv, reasons={0: (ShareReason(ShareKind.COPAY, Money("30.00", "USD")),
...                                        ShareReason(ShareKind.DEDUCTIBLE, Money("15.00", "USD")))})
>>> [str(line.patient_owes) for line in st.lines]
['USD 45.00', 'USD 15.00']
>>> str(st.balance)
'USD 60.00'
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Mapping, Sequence

import attrs

from ..errors import ValidationError
from ..invoices import ClaimStatus, Estimate, Invoice
from ..money import Money, total
from ..remittance import AdjustmentGroup, ClaimAdjustment, ClaimPayment, ServiceLinePayment

__all__ = [
    "ShareKind",
    "ShareReason",
    "Statement",
    "StatementLine",
    "build_statement",
    "statement_from_estimate",
]


class ShareKind(enum.Enum):
    """Why the patient pays part of a charge (glossary terms)."""

    #: The amount the patient pays before the insurer starts to pay.
    DEDUCTIBLE = "deductible"
    #: The patient's percentage share of a covered service.
    COINSURANCE = "coinsurance"
    #: A fixed amount the patient pays for a covered service.
    COPAY = "copay"
    #: A service the insurance does not cover.
    NOT_COVERED = "not_covered"
    #: No insurance: the patient pays the charge.
    SELF_PAY = "self_pay"


@attrs.frozen
class ShareReason:
    """One reason for (part of) the patient's share of a line.

    :param kind: :class:`ShareKind`.
    :param amount: the part of the line's patient share it explains.
    :param code: the insurer's Claim Adjustment Reason Code for it (``PR`` group), when the
        share comes from a remittance; the statement then gives the code's plain-language text
        (:func:`~carecollect.messages.remittance_codes.carc_text`).
    """

    kind: ShareKind
    amount: Money
    code: str = ""


@attrs.frozen
class StatementLine:
    """One explained line.

    :param code: the billing code.
    :param description: what was done, in plain words (letter, e-mail body and portal only).
    :param service_date: the date of service.
    :param charge: the charge.
    :param insurer_paid: the insurer's payment for this line.
    :param adjustment: the contractual adjustment for this line.
    :param patient_owes: charge minus insurer payment minus adjustment.
    :param reasons: why the patient owes it (sums to ``patient_owes`` when given).
    :param adjustment_codes: the insurer's reason codes (CARC) for what was taken off.
    :param remarks: the insurer's remark codes (RARC) on the line.
    """

    code: str
    description: str = attrs.field(repr=False)
    service_date: dt.date
    charge: Money
    insurer_paid: Money
    adjustment: Money
    patient_owes: Money
    reasons: tuple[ShareReason, ...] = ()
    adjustment_codes: tuple[str, ...] = ()
    remarks: tuple[str, ...] = ()


@attrs.frozen
class Statement:
    """A plain-language statement of one invoice.

    :param invoice_id: the invoice.
    :param issue_date: the statement's invoice date.
    :param due_date: when the balance is due.
    :param lines: the explained lines.
    :param payer_name: the insurer's name, if any.
    :param payments: what the patient has paid already.
    :param claim_pending: True while the insurer may still pay.
    :param default_notice_given: the invoice states that a consumer is in default 30 days
        after due date and receipt (BGB § 286 (3)); a German statement prints the notice.
    :param claim_denied: the insurer denied the claim; the statement says why and invites the
        patient to ask about an appeal and about financial assistance.
    :param claim_reasons: the insurer's reasons for the patient's share of the whole claim, when
        its answer could not be laid on the lines (claim-level adjustments on a bill of several lines).
    :param claim_remarks: the insurer's remark codes (RARC) on the whole claim.
    """

    invoice_id: str
    issue_date: dt.date
    due_date: dt.date
    lines: tuple[StatementLine, ...]
    payer_name: str | None = None
    payments: Money | None = None
    claim_pending: bool = False
    default_notice_given: bool = False
    claim_denied: bool = False
    claim_reasons: tuple[ShareReason, ...] = ()
    claim_remarks: tuple[str, ...] = ()

    @functools.cached_property
    def currency(self) -> str:
        """The statement's currency."""
        return str(self.lines[0].charge.currency)

    @functools.cached_property
    def charges(self) -> Money:
        """Sum of the charges."""
        return total((ln.charge for ln in self.lines), self.currency)

    @functools.cached_property
    def insurer_paid(self) -> Money:
        """Sum of the insurer's payments."""
        return total((ln.insurer_paid for ln in self.lines), self.currency)

    @functools.cached_property
    def adjustments(self) -> Money:
        """Sum of the contractual adjustments."""
        return total((ln.adjustment for ln in self.lines), self.currency)

    @functools.cached_property
    def patient_share(self) -> Money:
        """What the patient owes before their own payments."""
        return total((ln.patient_owes for ln in self.lines), self.currency)

    @functools.cached_property
    def balance(self) -> Money:
        """What is still open: the patient share minus payments made."""
        return self.patient_share - (
            self.payments if self.payments is not None else Money.zero(self.currency)
        )


def build_statement(
    invoice: Invoice,
    *,
    reasons: Mapping[int, Sequence[ShareReason]] | None = None,
    payments: Money | None = None,
    claims: Sequence[ClaimPayment] = (),
) -> Statement:
    """Explain ``invoice`` line by line.

    :param invoice: the invoice.
    :param reasons: per line index, why the patient owes part of it; a line
        without reasons is explained as self-pay when there is no insurance,
        otherwise by the totals alone.
    :param payments: what the patient has already paid on it.
    :param claims: the insurer's answers in force for it (from a remittance:
        :func:`carecollect.importers.remittance.claims_in_force`). Each service line
        the insurer answered (by its line number, else in order) then shows what the
        insurer paid for that line, what was taken off and why, and why the rest is
        the patient's, with the insurer's reason codes (``reasons`` is then ignored).
    :returns: the :class:`Statement`.
    :raises ValidationError: when reasons do not add up to a line's patient
        share, name an unknown line, or are in another currency.
    """
    rec = f"Invoice {invoice.id}"
    charges = [ln.amount for ln in invoice.lines]
    weights = [c.minor_units for c in charges]
    if sum(weights) == 0:
        weights = [1] * len(charges)
    paid = invoice.insurer_paid.allocate(weights)
    # the adjustment is spread over what the insurer left, so no line goes below zero
    left = [c.minor_units - p.minor_units for c, p in zip(charges, paid, strict=True)]
    if invoice.contractual_adjustment.is_zero() or sum(left) == 0:
        adj = [Money.zero(invoice.currency)] * len(charges)
    else:
        adj = invoice.contractual_adjustment.allocate(left)
    codes: list[tuple[str, ...]] = [()] * len(charges)
    remarks: list[tuple[str, ...]] = [()] * len(charges)
    claim_reasons: tuple[ShareReason, ...] = ()
    if claims:
        laid = _lay_claims(invoice, claims)
        if laid is not None:
            paid, adj, line_reasons, codes, remarks = laid
            reasons = dict(enumerate(line_reasons))
        else:
            reasons = {}
            claim_reasons = _share_reasons(_decisive(claims).all_adjustments())
    reasons = dict(reasons or {})
    for idx in reasons:
        if not 0 <= idx < len(charges):
            raise ValidationError(rec, f"reasons[{idx}]", "no such line")
    lines = []
    uninsured = invoice.insurance.insurer_paid is None and invoice.insurance.payer_name is None
    for i, ln in enumerate(invoice.lines):
        owes = ln.amount - paid[i] - adj[i]
        why = tuple(reasons.get(i, ()))
        if why:
            if total((r.amount for r in why), invoice.currency) != owes:
                raise ValidationError(
                    rec, f"reasons[{i}]", f"reasons must add up to the line's patient share {owes}"
                )
        elif uninsured and owes.is_positive():
            why = (ShareReason(ShareKind.SELF_PAY, owes),)
        lines.append(
            StatementLine(
                ln.code,
                ln.description,
                ln.service_date,
                ln.amount,
                paid[i],
                adj[i],
                owes,
                why,
                codes[i],
                remarks[i],
            )
        )
    if payments is not None and payments.currency != invoice.currency:
        raise ValidationError(rec, "payments", f"must be in {invoice.currency}")
    return Statement(
        invoice.id,
        invoice.issue_date,
        invoice.due_date,
        tuple(lines),
        invoice.insurance.payer_name,
        payments,
        invoice.waiting_for_insurer,
        invoice.default_notice_given,
        invoice.insurance.status is ClaimStatus.DENIED,
        claim_reasons,
        tuple(dict.fromkeys(r for c in claims for r in c.remarks)),
    )


_KIND_BY_CARC = {"1": ShareKind.DEDUCTIBLE, "2": ShareKind.COINSURANCE, "3": ShareKind.COPAY}


def _share_reasons(adjustments: Sequence[ClaimAdjustment]) -> tuple[ShareReason, ...]:
    """The patient's (``PR``) adjustments as statement reasons, one per reason code."""
    by_code: dict[str, Money] = {}
    for a in adjustments:
        if a.group is AdjustmentGroup.PR and not a.amount.is_zero():
            by_code[a.reason] = by_code[a.reason] + a.amount if a.reason in by_code else a.amount
    return tuple(
        ShareReason(_KIND_BY_CARC.get(code, ShareKind.NOT_COVERED), amount, code)
        for code, amount in by_code.items()
    )


def _decisive(claims: Sequence[ClaimPayment]) -> ClaimPayment:
    """The answer whose patient share counts: the last payer in the order (as the settlement decides)."""
    return max(enumerate(claims), key=lambda ic: (ic[1].outcome.rank, ic[0]))[1]


def _lay_claims(
    invoice: Invoice, claims: Sequence[ClaimPayment]
) -> (
    tuple[
        list[Money], list[Money], list[tuple[ShareReason, ...]], list[tuple[str, ...]], list[tuple[str, ...]]
    ]
    | None
):
    """Per invoice line: insurer paid, taken off, the patient's reasons, the codes taken off, the remarks.

    ``None`` when the answers cannot be laid on the lines (a service line without a place, claim-level
    amounts on a bill of several lines, or sums that do not meet the invoice's).
    """
    n = len(invoice.lines)
    cur = invoice.currency
    placed: list[list[tuple[ClaimPayment, ServiceLinePayment | None]]] = [[] for _ in range(n)]
    for c in claims:
        if not c.lines:
            if n != 1:
                return None
            placed[0].append((c, None))
            continue
        if c.adjustments and n != 1:
            return None
        for k, ln in enumerate(c.lines):
            idx = ln.line_number - 1 if ln.line_number is not None else (k if len(c.lines) == n else -1)
            if not 0 <= idx < n:
                return None
            placed[idx].append((c, ln))
        if n == 1 and c.adjustments:
            placed[0].append((c, None))
    decisive = _decisive(claims)
    paid: list[Money] = []
    adj: list[Money] = []
    reasons: list[tuple[ShareReason, ...]] = []
    codes: list[tuple[str, ...]] = []
    remarks: list[tuple[str, ...]] = []
    for i, line in enumerate(invoice.lines):
        got = Money.zero(cur)
        mine: list[ClaimAdjustment] = []
        off: list[str] = []
        notes: list[str] = []
        for c, svc in placed[i]:
            if svc is not None:
                got = got + svc.paid
                items = svc.adjustments
                notes.extend(svc.remarks)
            else:
                got = got + (c.paid if not c.lines else Money.zero(cur))
                items = c.adjustments
            if c is decisive:
                mine.extend(items)
            off.extend(a.reason for a in items if not a.group.patients)
        why = _share_reasons(mine)
        owes = total((r.amount for r in why), cur)
        taken = line.amount - got - owes
        if taken.is_negative():
            return None
        paid.append(got)
        adj.append(taken)
        reasons.append(why)
        codes.append(tuple(dict.fromkeys(off)))
        remarks.append(tuple(dict.fromkeys(notes)))
    if total(paid, cur) != invoice.insurer_paid or total(adj, cur) != invoice.contractual_adjustment:
        return None
    return paid, adj, reasons, codes, remarks


def statement_from_estimate(estimate: Estimate, *, due_date: dt.date | None = None) -> Statement:
    """Lay out a cost estimate like a statement (the patient pays every line).

    :param estimate: the :class:`~carecollect.invoices.Estimate`.
    :param due_date: when payment will be due; defaults to the scheduled date
        (or the date given) plus the promised payment terms.
    :returns: a :class:`Statement` whose lines are self-pay.

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.invoices import Estimate, InvoiceLine
    >>> est = Estimate("EST-1", "P-1", "EUR", (InvoiceLine("GOÄ 1", "Consultation", Money("40.22", "EUR"),
    ...                dt.date(2026, 3, 2)),), given_on=dt.date(2026, 2, 20), scheduled_for=dt.date(2026, 3, 2))
    >>> statement_from_estimate(est).due_date
    datetime.date(2026, 4, 1)
    """
    start = estimate.scheduled_for or estimate.given_on
    due = due_date or start + dt.timedelta(days=estimate.payment_terms_days)
    zero = Money.zero(estimate.currency)
    lines = tuple(
        StatementLine(
            ln.code,
            ln.description,
            ln.service_date,
            ln.amount,
            zero,
            zero,
            ln.amount,
            (ShareReason(ShareKind.SELF_PAY, ln.amount),) if ln.amount.is_positive() else (),
        )
        for ln in estimate.lines
    )
    return Statement(estimate.id, estimate.given_on, due, lines)
