"""Invoices, their lines, the insurance side, and cost estimates.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.invoices import Invoice, InvoiceLine, Insurance, ClaimStatus, issue_invoice
>>> inv = Invoice(
...     id="INV-1", account_id="A-1", currency="EUR",
...     lines=(InvoiceLine("GOÄ 1", "Consultation", Money("40.22", "EUR"), dt.date(2026, 3, 2)),
...            InvoiceLine("GOÄ 5", "Examination", Money("20.11", "EUR"), dt.date(2026, 3, 2))),
...     issue_date=dt.date(2026, 3, 3), due_date=dt.date(2026, 4, 2),
... )
>>> inv.total, inv.patient_responsibility
(Money('60.33', 'EUR'), Money('60.33', 'EUR'))
>>> opened, event = issue_invoice(inv, at=dt.datetime(2026, 3, 3, 10, tzinfo=dt.timezone.utc))
>>> opened.status.value, event.type.value
('open', 'invoice.issued')
>>> "Consultation" in repr(opened)  # descriptions are clinical: never in a repr
False
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .errors import CurrencyMismatch, InvalidTransition, ValidationError
from .events import Event, EventType
from .money import Money, minor_unit_exponent, total
from .timekeeping import require_aware
from .validation import date_only, date_or_none, identifier, money_non_negative, of_type

__all__ = [
    "BillKind",
    "ClaimStatus",
    "Estimate",
    "EstimateComparison",
    "Insurance",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "cancel_invoice",
    "issue_invoice",
    "mark_paid",
    "record_first_statement",
    "reopen_invoice",
    "update_insurance",
]


class InvoiceStatus(enum.Enum):
    """Life cycle of an invoice."""

    #: Being prepared; not yet issued to the patient.
    DRAFT = "draft"
    #: Issued and not fully paid.
    OPEN = "open"
    #: Nothing left to pay.
    PAID = "paid"
    #: Withdrawn; nothing is owed on it.
    CANCELLED = "cancelled"


class ClaimStatus(enum.Enum):
    """The insurance claim behind an invoice."""

    #: No insurance: self-pay.
    NONE = "none"
    #: Billed to the insurer, no answer yet: the patient is not asked to pay.
    PENDING = "pending"
    #: The insurer's answer is under appeal: the patient is not asked to pay.
    APPEALED = "appealed"
    #: The insurer has decided and paid its part; the rest is the patient's.
    ADJUDICATED = "adjudicated"
    #: The insurer refused the claim; the bill is the patient's unless appealed.
    DENIED = "denied"

    @property
    def waiting(self) -> bool:
        """True while the insurer may still pay (pending or appealed)."""
        return self in (ClaimStatus.PENDING, ClaimStatus.APPEALED)


class BillKind(enum.Enum):
    """Whether a bill is a facility (hospital) bill or a professional one; some state caps differ."""

    #: A facility bill from a hospital.
    HOSPITAL = "hospital"
    #: A bill for a clinician's professional services.
    PROFESSIONAL = "professional"


def _code(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise ValidationError("InvoiceLine", "code", "a billing code is required (at most 64 characters)")


def _description(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # the text (and the billing code) can be clinical: never echo either. An empty description
    # is allowed: some exports (FHIR, CSV) carry only the billing code.
    if not isinstance(value, str):
        raise ValidationError("InvoiceLine", "description", f"a str is expected, got {type(value).__name__}")


@attrs.frozen
class InvoiceLine:
    """One charge on an invoice.

    :param code: billing code (CPT, GOÄ number, takst code...).
    :param description: plain-language description of what was done (clinical:
        never in reprs, SMS, voicemail or subject lines).
    :param amount: the charge, zero or more.
    :param service_date: the date of service.
    """

    code: str = attrs.field(validator=_code)
    description: str = attrs.field(repr=False, validator=_description)
    amount: Money = attrs.field(validator=money_non_negative)
    service_date: dt.date = attrs.field(validator=date_only)


@attrs.frozen
class Insurance:
    """The insurance side of an invoice.

    :param status: :class:`ClaimStatus`.
    :param insurer_paid: what the insurer has paid.
    :param contractual_adjustment: what the creditor may not bill under its
        contract with the insurer.
    :param submitted_on: when the claim was filed.
    :param payer_name: the insurer's name (shown on statements).
    """

    status: ClaimStatus = attrs.field(default=ClaimStatus.NONE, validator=of_type(ClaimStatus))
    insurer_paid: Money | None = attrs.field(
        default=None, validator=attrs.validators.optional(money_non_negative)
    )
    contractual_adjustment: Money | None = attrs.field(
        default=None, validator=attrs.validators.optional(money_non_negative)
    )
    submitted_on: dt.date | None = attrs.field(default=None, validator=date_or_none)
    payer_name: str | None = None


def _lines(
    instance: Invoice, attribute: attrs.Attribute[tuple[InvoiceLine, ...]], value: tuple[InvoiceLine, ...]
) -> None:
    rec = f"Invoice {instance.id}"
    if not value:
        raise ValidationError(rec, "lines", "an invoice needs at least one line")
    for i, line in enumerate(value):
        if not isinstance(line, InvoiceLine):
            raise ValidationError(
                rec, f"lines[{i}]", f"an InvoiceLine is expected, got {type(line).__name__}"
            )
        if line.amount.currency != instance.currency:
            raise CurrencyMismatch(
                instance.currency, line.amount.currency, "put on one invoice", record=f"{rec} lines[{i}]"
            )


def _currency(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        minor_unit_exponent(value)
    except ValidationError:
        raise ValidationError(
            f"{type(instance).__name__} {getattr(instance, 'id', '')}".strip(),
            attribute.name,
            f"{value!r} is not an active ISO 4217 code",
        ) from None


@attrs.frozen
class Invoice:
    """A bill for care, with its insurance side.

    :param id: stable identifier.
    :param account_id: the guarantor account that pays it.
    :param currency: ISO 4217 currency of every line.
    :param lines: the charges (at least one).
    :param issue_date: the date the invoice was issued.
    :param due_date: the date payment is due (not before ``issue_date``).
    :param first_statement_date: the date of the first post-discharge billing
        statement (starts the US 501(r) clocks).
    :param insurance: the :class:`Insurance` side.
    :param status: :class:`InvoiceStatus`.
    :param kind: hospital or professional bill.
    :param estimate_id: the good-faith estimate this invoice follows, if any.
    :param default_notice_given: the invoice told the patient that a consumer is in
        default 30 days after due date and receipt without a reminder (BGB § 286 (3)
        sentence 1); German statements print the notice when this is true. A fact about
        the invoice that went out, read by :func:`~carecollect.relief.payment_default.germany_default_start`.
    :param received_on: the day the patient received the invoice (BGB § 286 (3): the
        30 days run from the later of due date and receipt), if known; not before ``issue_date``.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    currency: str = attrs.field(validator=_currency)
    lines: tuple[InvoiceLine, ...] = attrs.field(converter=tuple, validator=_lines)
    issue_date: dt.date = attrs.field(validator=date_only)
    due_date: dt.date = attrs.field(validator=date_only)
    first_statement_date: dt.date | None = attrs.field(default=None, validator=date_or_none)
    insurance: Insurance = Insurance()
    status: InvoiceStatus = attrs.field(default=InvoiceStatus.DRAFT, validator=of_type(InvoiceStatus))
    kind: BillKind = attrs.field(default=BillKind.HOSPITAL, validator=of_type(BillKind))
    estimate_id: str | None = None
    default_notice_given: bool = attrs.field(default=False, validator=of_type(bool))
    received_on: dt.date | None = attrs.field(default=None, validator=date_or_none)

    def __attrs_post_init__(self) -> None:
        rec = f"Invoice {self.id}"
        if self.received_on is not None and self.received_on < self.issue_date:
            raise ValidationError(rec, "received_on", "cannot be before the issue date")
        if self.due_date < self.issue_date:
            raise ValidationError(
                rec, "due_date", f"{self.due_date} is before the issue date {self.issue_date}"
            )
        if self.first_statement_date is not None and self.first_statement_date < self.issue_date:
            raise ValidationError(rec, "first_statement_date", "cannot be before the issue date")
        ins = self.insurance
        for field in ("insurer_paid", "contractual_adjustment"):
            amount = getattr(ins, field)
            if amount is not None and amount.currency != self.currency:
                raise CurrencyMismatch(
                    self.currency, amount.currency, "put on one invoice", record=f"{rec} insurance.{field}"
                )
        # lines are never negative, so without an insurer payment or adjustment there is nothing to check
        # (and no Money to add up: invoices are read by the thousand in every run)
        if (ins.insurer_paid is not None or ins.contractual_adjustment is not None) and (
            self.insurer_paid + self.contractual_adjustment > self.total
        ):
            raise ValidationError(
                rec, "insurance", "insurer payment plus contractual adjustment exceed the invoice total"
            )

    @property
    def total(self) -> Money:
        """The gross charges (sum of the lines)."""
        return total((line.amount for line in self.lines), self.currency)

    @property
    def insurer_paid(self) -> Money:
        """What the insurer paid (zero if nothing)."""
        paid = self.insurance.insurer_paid
        return Money.zero(self.currency) if paid is None else paid

    @property
    def contractual_adjustment(self) -> Money:
        """The contractual adjustment (zero if none)."""
        adj = self.insurance.contractual_adjustment
        return Money.zero(self.currency) if adj is None else adj

    @property
    def patient_responsibility(self) -> Money:
        """What the patient owes once the insurer's part is taken off: total − insurer paid − adjustment."""
        return self.total - self.insurer_paid - self.contractual_adjustment

    @property
    def waiting_for_insurer(self) -> bool:
        """True while a claim is pending or appealed."""
        return self.insurance.status.waiting


def _at(at: dt.datetime, inv: Invoice) -> None:
    require_aware(at, f"Invoice {inv.id}", "at")


def issue_invoice(invoice: Invoice, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Move a draft invoice to open."""
    _at(at, invoice)
    if invoice.status is not InvoiceStatus.DRAFT:
        raise InvalidTransition(
            f"Invoice {invoice.id}", invoice.status, "issue", "only a draft can be issued"
        )
    return attrs.evolve(invoice, status=InvoiceStatus.OPEN), Event(
        EventType.INVOICE_ISSUED, invoice.id, at, {"total": invoice.total}
    )


def record_first_statement(invoice: Invoice, sent_on: dt.date, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Record the date of the first billing statement (kept if already set: the first one counts)."""
    _at(at, invoice)
    if invoice.status is not InvoiceStatus.OPEN:
        raise InvalidTransition(
            f"Invoice {invoice.id}", invoice.status, "record a statement", "issue it first"
        )
    new = attrs.evolve(invoice, first_statement_date=invoice.first_statement_date or sent_on)
    return new, Event(EventType.INVOICE_STATEMENT_SENT, invoice.id, at, {"date": new.first_statement_date})


def update_insurance(invoice: Invoice, insurance: Insurance, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Replace the insurance side (claim filed, appealed, adjudicated, denied)."""
    _at(at, invoice)
    if invoice.status in (InvoiceStatus.CANCELLED, InvoiceStatus.PAID):
        raise InvalidTransition(f"Invoice {invoice.id}", invoice.status, "update insurance")
    new = attrs.evolve(invoice, insurance=insurance)
    return new, Event(EventType.INVOICE_INSURANCE_UPDATED, invoice.id, at, {"claim": insurance.status.value})


def mark_paid(invoice: Invoice, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Mark an open invoice paid (the ledger decides when its balance is zero)."""
    _at(at, invoice)
    if invoice.status is not InvoiceStatus.OPEN:
        raise InvalidTransition(
            f"Invoice {invoice.id}", invoice.status, "mark paid", "only an open invoice can be paid"
        )
    return attrs.evolve(invoice, status=InvoiceStatus.PAID), Event(EventType.INVOICE_PAID, invoice.id, at)


def reopen_invoice(invoice: Invoice, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Reopen a paid invoice (a payment was refunded or reversed)."""
    _at(at, invoice)
    if invoice.status is not InvoiceStatus.PAID:
        raise InvalidTransition(
            f"Invoice {invoice.id}", invoice.status, "reopen", "only a paid invoice can be reopened"
        )
    return attrs.evolve(invoice, status=InvoiceStatus.OPEN), Event(EventType.INVOICE_REOPENED, invoice.id, at)


def cancel_invoice(invoice: Invoice, *, at: dt.datetime) -> tuple[Invoice, Event]:
    """Cancel a draft or open invoice (a billing error); a paid one must be refunded first."""
    _at(at, invoice)
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN):
        raise InvalidTransition(
            f"Invoice {invoice.id}", invoice.status, "cancel", "refund and reopen it first"
        )
    return attrs.evolve(invoice, status=InvoiceStatus.CANCELLED), Event(
        EventType.INVOICE_CANCELLED, invoice.id, at
    )


@attrs.frozen
class EstimateComparison:
    """How an invoice compares with the estimate given before treatment."""

    estimate_total: Money
    invoice_total: Money

    @property
    def difference(self) -> Money:
        """Invoice total minus estimate total (negative when the bill came in lower)."""
        return self.invoice_total - self.estimate_total

    def exceeds_by_at_least(self, threshold: Money) -> bool:
        """True when the bill is higher than the estimate by ``threshold`` or more."""
        return self.difference >= threshold


@attrs.frozen
class Estimate:
    """A cost estimate given to the patient before treatment, line by line.

    :param id: stable identifier.
    :param patient_id: who it was given to.
    :param currency: ISO 4217 currency.
    :param lines: expected charges (same shape as invoice lines).
    :param given_on: the date the estimate was given.
    :param scheduled_for: the date the service is scheduled, if known.
    :param payment_terms_days: days to pay after the invoice, as promised.
    """

    id: str = attrs.field(validator=identifier)
    patient_id: str = attrs.field(validator=identifier)
    currency: str = attrs.field(validator=_currency)
    lines: tuple[InvoiceLine, ...] = attrs.field(converter=tuple, validator=_lines)
    given_on: dt.date = attrs.field(validator=date_only)
    scheduled_for: dt.date | None = attrs.field(default=None, validator=date_or_none)
    payment_terms_days: int = 30

    @property
    def total(self) -> Money:
        """Expected total."""
        return total((line.amount for line in self.lines), self.currency)

    def compare(self, invoice: Invoice) -> EstimateComparison:
        """Compare with ``invoice`` (same currency required)."""
        if invoice.currency != self.currency:
            raise CurrencyMismatch(self.currency, invoice.currency, "compare", record=f"Estimate {self.id}")
        return EstimateComparison(self.total, invoice.total)
