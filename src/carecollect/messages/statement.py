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
from collections.abc import Mapping, Sequence

import attrs

from ..errors import ValidationError
from ..invoices import Estimate, Invoice
from ..money import Money, total

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
    """

    kind: ShareKind
    amount: Money


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
    """

    code: str
    description: str = attrs.field(repr=False)
    service_date: dt.date
    charge: Money
    insurer_paid: Money
    adjustment: Money
    patient_owes: Money
    reasons: tuple[ShareReason, ...] = ()


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
    """

    invoice_id: str
    issue_date: dt.date
    due_date: dt.date
    lines: tuple[StatementLine, ...]
    payer_name: str | None = None
    payments: Money | None = None
    claim_pending: bool = False
    default_notice_given: bool = False

    @property
    def currency(self) -> str:
        """The statement's currency."""
        return str(self.lines[0].charge.currency)

    @property
    def charges(self) -> Money:
        """Sum of the charges."""
        return total((ln.charge for ln in self.lines), self.currency)

    @property
    def insurer_paid(self) -> Money:
        """Sum of the insurer's payments."""
        return total((ln.insurer_paid for ln in self.lines), self.currency)

    @property
    def adjustments(self) -> Money:
        """Sum of the contractual adjustments."""
        return total((ln.adjustment for ln in self.lines), self.currency)

    @property
    def patient_share(self) -> Money:
        """What the patient owes before their own payments."""
        return total((ln.patient_owes for ln in self.lines), self.currency)

    @property
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
) -> Statement:
    """Explain ``invoice`` line by line.

    :param invoice: the invoice.
    :param reasons: per line index, why the patient owes part of it; a line
        without reasons is explained as self-pay when there is no insurance,
        otherwise by the totals alone.
    :param payments: what the patient has already paid on it.
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
            StatementLine(ln.code, ln.description, ln.service_date, ln.amount, paid[i], adj[i], owes, why)
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
    )


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
