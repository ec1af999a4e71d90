"""The account ledger: an append-only list of entries from which every balance is derived.

No balance is ever stored. :class:`Ledger` holds entries; each has an
idempotency key, and posting an entry whose key is already there changes
nothing (posting a *different* entry under a used key is an error).

Payments are allocated across open invoices, oldest first unless the payer
directed them; what is left becomes a credit on the account, never a negative
invoice. The books always balance::

    charges + refunds + reversals + insurer take-backs == patient payments + insurer payments + adjustments + write-offs + balance

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.payments import Payment, PaymentMethod
>>> from carecollect.ledger import Ledger, post_charge, post_payment
>>> t = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
>>> book = Ledger(account_id="A-1", currency="NOK")
>>> book, _ = post_charge(book, "INV-1", Money("300.00", "NOK"), at=t)
>>> book, _ = post_charge(book, "INV-2", Money("200.00", "NOK"), at=t + dt.timedelta(days=1))
>>> pay = Payment("PAY-1", "A-1", Money("450.00", "NOK"), PaymentMethod.MOBILE, t + dt.timedelta(days=9))
>>> book, event = post_payment(book, pay)
>>> book.invoice_balance("INV-1"), book.invoice_balance("INV-2"), book.balance
(Money('0.00', 'NOK'), Money('50.00', 'NOK'), Money('50.00', 'NOK'))
>>> post_payment(book, pay)[1] is None  # the same payment again changes nothing
True
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence

import attrs

from .errors import CurrencyMismatch, DuplicateEntry, ValidationError
from .events import Event, EventType
from .money import Money
from .payments import Adjustment, AdjustmentKind, Payment, PaymentSource, Refund
from .timekeeping import require_aware
from .validation import aware, identifier, money_non_negative, of_type

__all__ = [
    "EntryKind",
    "Ledger",
    "LedgerEntry",
    "apply_credit",
    "post",
    "post_adjustment",
    "post_charge",
    "post_insurance_payment",
    "post_payment",
    "post_refund",
    "reverse_payment",
]


class EntryKind(enum.Enum):
    """Kinds of ledger entries."""

    #: What the invoice charges.
    CHARGE = "charge"
    #: Money the insurer paid.
    INSURANCE_PAYMENT = "insurance_payment"
    #: Money the patient (or someone for them) paid.
    PATIENT_PAYMENT = "patient_payment"
    #: A reduction without payment (a discount, charity care, a correction).
    ADJUSTMENT = "adjustment"
    #: An amount the creditor gave up collecting.
    WRITE_OFF = "write_off"
    #: Money the creditor chose to pay back to the patient.
    REFUND = "refund"
    #: Credit from an earlier overpayment moved onto an invoice.
    CREDIT_APPLIED = "credit_applied"
    #: Money of a posted payment that did not stay: a returned direct debit, a card
    #: chargeback, a refund the provider made. Reopens what the payment paid, as a
    #: :attr:`REFUND` does, but a refund is money the creditor chose to give back.
    PAYMENT_REVERSED = "payment_reversed"
    #: What an insurer's reversal of a claim takes back (X12 835 claim status 22, a FHIR
    #: ClaimResponse replaced): its payment or the adjustments that came with it. Reopens the
    #: invoice by that much; the reason says which (``claim_reversal:payment:<key>`` or
    #: ``claim_reversal:adjustment:<key>``).
    INSURANCE_REVERSED = "insurance_reversed"


_REDUCES_INVOICE = {
    EntryKind.INSURANCE_PAYMENT,
    EntryKind.PATIENT_PAYMENT,
    EntryKind.ADJUSTMENT,
    EntryKind.WRITE_OFF,
    EntryKind.CREDIT_APPLIED,
}
#: Entries that take money back from the account: they reopen an invoice, or reduce the credit.
_TAKES_BACK = frozenset({EntryKind.REFUND, EntryKind.PAYMENT_REVERSED})
#: Tags in a reversal entry's reason (``<cause>:<tag>:<payment id>``): the payment's own
#: allocation (or credit) taken back, or an invoice reopened that credit had paid.
_OF_PAYMENT = "reversal-of"
_OF_APPLIED_CREDIT = "reversal-of-applied-credit"


def _reversal_reason(entry: LedgerEntry) -> tuple[str, str] | None:
    """``(tag, payment id)`` of a :attr:`EntryKind.PAYMENT_REVERSED` entry, else ``None``."""
    if entry.kind is not EntryKind.PAYMENT_REVERSED:
        return None
    _cause, _, rest = entry.reason.partition(":")
    tag, _, payment_id = rest.partition(":")
    return tag, payment_id


def _takes_back_from(entry: LedgerEntry, payment_id: str) -> bool:
    """Whether ``entry`` is a refund or a reversal of payment ``payment_id``."""
    if entry.kind is EntryKind.REFUND:
        return entry.reason == f"refund-of:{payment_id}"
    parsed = _reversal_reason(entry)
    return parsed is not None and parsed[1] == payment_id


def _reopened_allocation(ledger: Ledger, payment_id: str, invoice_id: str) -> int:
    """Minor units of payment ``payment_id``'s allocation to ``invoice_id`` already refunded or reversed."""
    units = 0
    for e in ledger.entries:
        if e.invoice_id != invoice_id:
            continue
        if (e.kind is EntryKind.REFUND and e.reason == f"refund-of:{payment_id}") or _reversal_reason(e) == (
            _OF_PAYMENT,
            payment_id,
        ):
            units += e.amount.minor_units
    return units


@attrs.frozen
class LedgerEntry:
    """One immutable line of the ledger.

    :param key: idempotency key, unique in the ledger.
    :param kind: :class:`EntryKind`.
    :param amount: always positive; the kind gives the direction.
    :param at: when it happened (aware).
    :param invoice_id: the invoice it belongs to; ``None`` for account credit.
    :param source_id: the payment, adjustment or refund it comes from.
    :param reason: a reason code (never free text about the patient).
    """

    key: str = attrs.field(validator=identifier)
    kind: EntryKind = attrs.field(validator=of_type(EntryKind))
    amount: Money = attrs.field(validator=money_non_negative)
    at: dt.datetime = attrs.field(validator=aware)
    invoice_id: str | None = None
    source_id: str = ""
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if self.amount.is_zero():
            raise ValidationError(f"LedgerEntry {self.key}", "amount", "must be more than zero")
        if (
            self.kind
            in (
                EntryKind.CHARGE,
                EntryKind.ADJUSTMENT,
                EntryKind.WRITE_OFF,
                EntryKind.INSURANCE_PAYMENT,
                EntryKind.CREDIT_APPLIED,
                EntryKind.INSURANCE_REVERSED,
            )
            and self.invoice_id is None
        ):
            raise ValidationError(
                f"LedgerEntry {self.key}", "invoice_id", f"a {self.kind.value} entry needs an invoice"
            )


def _entries(value: Iterable[LedgerEntry]) -> tuple[LedgerEntry, ...]:
    return tuple(value)


@attrs.frozen
class Ledger:
    """An account's append-only ledger.

    :param account_id: the account.
    :param currency: every entry's currency.
    :param entries: entries in posting order.
    """

    account_id: str = attrs.field(validator=identifier)
    currency: str
    entries: tuple[LedgerEntry, ...] = attrs.field(default=(), converter=_entries)
    _by_key: dict[str, LedgerEntry] = attrs.field(init=False, repr=False, eq=False)
    #: :meth:`_totals`, once asked for (the ledger never changes)
    _sums: tuple[dict[str, int], tuple[str, ...], int] | None = attrs.field(
        init=False, repr=False, eq=False, default=None
    )

    def __attrs_post_init__(self) -> None:
        try:
            Money.zero(self.currency)
        except ValidationError:
            raise ValidationError(
                f"Ledger {self.account_id}", "currency", f"{self.currency!r} is not an active ISO 4217 code"
            ) from None
        index: dict[str, LedgerEntry] = {}
        for e in self.entries:
            if e.key in index:
                raise DuplicateEntry(f"Ledger {self.account_id}: key {e.key!r} appears twice")
            if e.amount.currency != self.currency:
                raise CurrencyMismatch(
                    self.currency, e.amount.currency, "post", record=f"Ledger {self.account_id}"
                )
            index[e.key] = e
        object.__setattr__(self, "_by_key", index)

    def get(self, key: str) -> LedgerEntry | None:
        """The entry with idempotency ``key``, if any."""
        return self._by_key.get(key)

    def _zero(self) -> Money:
        return Money.zero(self.currency)

    def sum_of(self, kind: EntryKind, invoice_id: str | None = None, *, only_invoice: bool = False) -> Money:
        """Total of entries of ``kind``; with ``only_invoice=True``, only those on ``invoice_id``
        (``None`` then means account credit)."""
        units = 0
        for e in self.entries:
            if e.kind is kind and (not only_invoice or e.invoice_id == invoice_id):
                units += e.amount.minor_units
        return Money.from_minor(units, self.currency)

    def _totals(self) -> tuple[dict[str, int], tuple[str, ...], int]:
        """Minor units still owed by invoice, the charged invoices (oldest charge first) and the
        credit's minor units, summed in one pass over the entries and kept: a run asks a ledger
        for its balance and its invoices' balances once per message."""
        sums = self._sums
        if sums is not None:
            return sums
        owed: dict[str, int] = {}
        charged: dict[str, dt.datetime] = {}
        credit = 0
        for e in self.entries:
            kind, invoice_id, units = e.kind, e.invoice_id, e.amount.minor_units
            if invoice_id is None:
                if kind is EntryKind.PATIENT_PAYMENT:
                    credit += units
                elif kind in _TAKES_BACK or kind is EntryKind.CREDIT_APPLIED:
                    credit -= units
                continue
            if kind is EntryKind.CHARGE:
                charged.setdefault(invoice_id, e.at)
                owed[invoice_id] = owed.get(invoice_id, 0) + units
            elif kind in _TAKES_BACK or kind is EntryKind.INSURANCE_REVERSED:
                owed[invoice_id] = owed.get(invoice_id, 0) + units
            else:
                owed[invoice_id] = owed.get(invoice_id, 0) - units
                if kind is EntryKind.CREDIT_APPLIED:
                    credit -= units
        sums = (owed, tuple(sorted(charged, key=lambda i: (charged[i], i))), credit)
        object.__setattr__(self, "_sums", sums)
        return sums

    def invoice_ids(self) -> list[str]:
        """Invoices charged on this ledger, oldest charge first."""
        return list(self._totals()[1])

    def invoice_balance(self, invoice_id: str) -> Money:
        """What is still owed on one invoice (never negative)."""
        return Money.from_minor(self._totals()[0].get(invoice_id, 0), self.currency)

    @property
    def credit(self) -> Money:
        """Money paid but not owed on any invoice (an overpayment)."""
        return Money.from_minor(self._totals()[2], self.currency)

    @property
    def balance(self) -> Money:
        """Owed on all invoices minus credit; negative means the account is in credit."""
        owed, charged, credit = self._totals()
        return Money.from_minor(sum(owed[i] for i in charged) - credit, self.currency)

    def open_invoices(self) -> list[str]:
        """Invoices with something still owed, oldest first."""
        owed, charged, _ = self._totals()
        return [i for i in charged if owed[i] > 0]

    def paid_by(self, payment_id: str) -> Money:
        """How much of payment ``payment_id`` is on the books, net of its refunds and reversals."""
        units = 0
        for e in self.entries:
            if e.source_id == payment_id and e.kind is EntryKind.PATIENT_PAYMENT:
                units += e.amount.minor_units
            elif _takes_back_from(e, payment_id):
                units -= e.amount.minor_units
        return Money.from_minor(units, self.currency)


def _event(
    ledger: Ledger,
    entries: Sequence[LedgerEntry],
    at: dt.datetime,
    kind: str,
    extra: Mapping[str, object] | None = None,
) -> Event:
    units = sum(e.amount.minor_units for e in entries)
    details = {"kind": kind, "amount": Money.from_minor(units, ledger.currency), "entries": len(entries)}
    return Event(EventType.LEDGER_POSTED, ledger.account_id, at, {**details, **(extra or {})})


def _append(ledger: Ledger, entries: Iterable[LedgerEntry]) -> Ledger:
    return attrs.evolve(ledger, entries=ledger.entries + tuple(entries))


def _check_currency(ledger: Ledger, amount: Money, what: str) -> None:
    if amount.currency != ledger.currency:
        raise CurrencyMismatch(
            ledger.currency, amount.currency, f"post {what}", record=f"Ledger {ledger.account_id}"
        )


def post(ledger: Ledger, entry: LedgerEntry) -> tuple[Ledger, Event | None]:
    """Post one entry, idempotently; the low-level door every other function uses.

    Returns ``(ledger, None)`` unchanged if an identical entry is already there.

    :raises DuplicateEntry: the key is used by a different entry.
    :raises ValidationError: the entry would make an invoice or the credit negative.
    """
    existing = ledger.get(entry.key)
    if existing is not None:
        if existing == entry:
            return ledger, None
        raise DuplicateEntry(
            f"Ledger {ledger.account_id}: key {entry.key!r} is already used by a different entry; "
            "use a new key for a new entry"
        )
    _check_currency(ledger, entry.amount, entry.kind.value)
    if entry.kind in _REDUCES_INVOICE:
        assert entry.invoice_id is not None
        if entry.invoice_id not in ledger.invoice_ids():
            raise ValidationError(
                f"Ledger {ledger.account_id}", "invoice_id", f"invoice {entry.invoice_id} was never charged"
            )
        if entry.amount > ledger.invoice_balance(entry.invoice_id):
            raise ValidationError(
                f"Ledger {ledger.account_id}",
                "amount",
                f"{entry.amount} is more than the {ledger.invoice_balance(entry.invoice_id)} open on invoice "
                f"{entry.invoice_id}; post the rest as a payment to credit",
            )
    if entry.kind is EntryKind.CREDIT_APPLIED and entry.amount > ledger.credit:
        raise ValidationError(f"Ledger {ledger.account_id}", "amount", "more than the account's credit")
    if entry.kind in _TAKES_BACK and entry.invoice_id is None and entry.amount > ledger.credit:
        raise ValidationError(
            f"Ledger {ledger.account_id}", "amount", f"{entry.kind.value} from credit is more than the credit"
        )
    new = _append(ledger, [entry])
    return new, _event(ledger, [entry], entry.at, entry.kind.value)


def post_charge(
    ledger: Ledger, invoice_id: str, amount: Money, *, at: dt.datetime
) -> tuple[Ledger, Event | None]:
    """Charge an invoice's gross total to the account (key ``charge:<invoice>``)."""
    return post(
        ledger, LedgerEntry(f"charge:{invoice_id}", EntryKind.CHARGE, amount, at, invoice_id, invoice_id)
    )


def post_insurance_payment(
    ledger: Ledger, invoice_id: str, amount: Money, *, key: str, at: dt.datetime
) -> tuple[Ledger, Event | None]:
    """Post what an insurer paid on one invoice (a remittance line; ``key`` is the remittance id)."""
    return post(ledger, LedgerEntry(key, EntryKind.INSURANCE_PAYMENT, amount, at, invoice_id, key))


def post_adjustment(ledger: Ledger, adjustment: Adjustment) -> tuple[Ledger, Event | None]:
    """Post a discount, write-off, charity care, insurance adjustment or correction on one invoice."""
    kind = EntryKind.WRITE_OFF if adjustment.kind is AdjustmentKind.WRITE_OFF else EntryKind.ADJUSTMENT
    entry = LedgerEntry(
        adjustment.id,
        kind,
        adjustment.amount,
        adjustment.at,
        adjustment.invoice_id,
        adjustment.id,
        f"{adjustment.kind.value}:{adjustment.reason_code}",
    )
    return post(ledger, entry)


def post_payment(
    ledger: Ledger, payment: Payment, *, order: Sequence[str] | None = None
) -> tuple[Ledger, Event | None]:
    """Post a payment, allocated across open invoices.

    The allocation follows ``order`` if given, else the invoices the payer
    directed the payment to, then the remaining open invoices oldest first.
    What is left becomes account credit. Posting the same payment again
    changes nothing.
    """
    if payment.account_id != ledger.account_id:
        raise ValidationError(
            f"Payment {payment.id}", "account_id", f"belongs to {payment.account_id}, not {ledger.account_id}"
        )
    _check_currency(ledger, payment.amount, "payment")
    if payment.source is PaymentSource.INSURER:
        raise ValidationError(
            f"Payment {payment.id}",
            "source",
            "insurer payments go to one invoice: use post_insurance_payment",
        )
    prior = [e for e in ledger.entries if e.source_id == payment.id and e.kind is EntryKind.PATIENT_PAYMENT]
    if prior:
        units = sum(e.amount.minor_units for e in prior)
        if units != payment.amount.minor_units:
            raise DuplicateEntry(f"Payment {payment.id} was already posted with a different amount")
        return ledger, None
    open_ids = ledger.open_invoices()
    preferred = list(order) if order is not None else list(payment.directed_to)
    for inv in preferred:
        if inv not in ledger.invoice_ids():
            raise ValidationError(
                f"Payment {payment.id}", "directed_to", f"invoice {inv} is not on account {ledger.account_id}"
            )
    sequence = [i for i in preferred if i in open_ids] + [i for i in open_ids if i not in preferred]
    remaining = payment.amount
    entries: list[LedgerEntry] = []
    for inv in sequence:
        if not remaining.is_positive():
            break
        take = min(remaining, ledger.invoice_balance(inv))
        if take.is_positive():
            entries.append(
                LedgerEntry(
                    f"{payment.id}#{inv}",
                    EntryKind.PATIENT_PAYMENT,
                    take,
                    payment.received_at,
                    inv,
                    payment.id,
                    payment.method.value,
                )
            )
            remaining = remaining - take
    if remaining.is_positive():
        entries.append(
            LedgerEntry(
                f"{payment.id}#credit",
                EntryKind.PATIENT_PAYMENT,
                remaining,
                payment.received_at,
                None,
                payment.id,
                payment.method.value,
            )
        )
    return _append(ledger, entries), _event(ledger, entries, payment.received_at, "patient_payment")


def post_refund(ledger: Ledger, refund: Refund) -> tuple[Ledger, Event | None]:
    """Refund (part of) a payment: first from the account's credit, then by reopening what the payment paid.

    :raises ValidationError: more than the payment has left, or an unknown payment.
    """
    _check_currency(ledger, refund.amount, "refund")
    if any(e.source_id == refund.id for e in ledger.entries):
        done = sum(e.amount.minor_units for e in ledger.entries if e.source_id == refund.id)
        if done != refund.amount.minor_units:
            raise DuplicateEntry(f"Refund {refund.id} was already posted with a different amount")
        return ledger, None
    available = ledger.paid_by(refund.payment_id)
    if not available.is_positive():
        raise ValidationError(
            f"Refund {refund.id}", "payment_id", f"payment {refund.payment_id} has nothing left to refund"
        )
    if refund.amount > available:
        raise ValidationError(
            f"Refund {refund.id}",
            "amount",
            f"{refund.amount} is more than the {available} left of the payment",
        )
    reason = f"refund-of:{refund.payment_id}"
    entries: list[LedgerEntry] = []
    remaining = refund.amount
    from_credit = (
        min(remaining, ledger.credit) if ledger.credit.is_positive() else Money.zero(ledger.currency)
    )
    if from_credit.is_positive():
        entries.append(
            LedgerEntry(
                f"{refund.id}#credit", EntryKind.REFUND, from_credit, refund.at, None, refund.id, reason
            )
        )
        remaining = remaining - from_credit
    if remaining.is_positive():
        # reverse the payment's invoice allocations, latest first, net of earlier reversals
        allocations = [
            e for e in ledger.entries if e.source_id == refund.payment_id and e.invoice_id is not None
        ]
        for alloc in reversed(allocations):
            if not remaining.is_positive():
                break
            assert alloc.invoice_id is not None
            reversed_units = _reopened_allocation(ledger, refund.payment_id, alloc.invoice_id)
            room = Money.from_minor(alloc.amount.minor_units - reversed_units, ledger.currency)
            take = min(remaining, room)
            if take.is_positive():
                entries.append(
                    LedgerEntry(
                        f"{refund.id}#{alloc.invoice_id}",
                        EntryKind.REFUND,
                        take,
                        refund.at,
                        alloc.invoice_id,
                        refund.id,
                        reason,
                    )
                )
                remaining = remaining - take
    if remaining.is_positive():
        raise ValidationError(
            f"Refund {refund.id}", "amount", "the payment's credit was already used; refund less"
        )
    return _append(ledger, entries), _event(ledger, entries, refund.at, "refund")


def reverse_payment(
    ledger: Ledger,
    *,
    reversal_id: str,
    payment_id: str,
    amount: Money,
    at: dt.datetime,
    reason: str,
) -> tuple[Ledger, Event | None]:
    """Take back (part of) a posted payment whose money did not stay: a returned direct debit, a chargeback.

    The money comes off the account the way a refund's does (:func:`post_refund`):
    first from the account's credit, then by reopening what the payment paid,
    its latest invoice allocation first, net of what earlier refunds and
    reversals of the payment reopened. Unlike a refund, the creditor did not
    choose this: if the payment's credit was meanwhile moved onto invoices
    (:func:`apply_credit`), those invoices are reopened too, latest first, so
    the whole amount always comes back on the books. The entries are
    :attr:`EntryKind.PAYMENT_REVERSED` (keys ``<reversal_id>#<invoice>``,
    ``<reversal_id>#credit`` and ``<reversal_id>#applied:<credit key>``), so a
    report tells a bank return or a chargeback from a refund.

    :param reversal_id: idempotency key, e.g. derived from the provider's event id; the
        same id again with the same amount changes nothing.
    :param payment_id: the payment (its :attr:`~carecollect.payments.Payment.id`).
    :param amount: how much went back (more than zero, at most what the payment has left,
        :meth:`Ledger.paid_by`).
    :param at: when the provider says it happened (aware).
    :param reason: a reason code without ``:`` or spaces (``"payment_failed"``, ``"chargeback"``...).
    :returns: the new ledger and its :attr:`~carecollect.events.EventType.LEDGER_POSTED`
        event (``kind`` ``payment_reversed``, with ``payment`` and ``reason``), or the
        ledger unchanged and ``None`` for a repeat.
    :raises DuplicateEntry: ``reversal_id`` was used with a different amount.
    :raises ValidationError: an amount that is not positive, more than the payment has
        left, an unknown payment, or a malformed reason; nothing is written. Also the one
        case the books cannot place: credit is shared by the account, and if another
        payment's refund or reversal took this payment's credit, that part is no longer
        anywhere to reopen (the message says so).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.payments import Payment, PaymentMethod
    >>> t = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    >>> book, _ = post_charge(Ledger("A-1", "EUR"), "INV-1", Money("80.00", "EUR"), at=t)
    >>> book, _ = post_payment(book, Payment("PAY-1", "A-1", Money("80.00", "EUR"), PaymentMethod.DIRECT_DEBIT, t))
    >>> book, event = reverse_payment(book, reversal_id="REV-1", payment_id="PAY-1",
    ...                               amount=Money("30.00", "EUR"), at=t, reason="payment_failed")
    >>> book.invoice_balance("INV-1"), book.paid_by("PAY-1"), event.detail("kind")
    (Money('30.00', 'EUR'), Money('50.00', 'EUR'), 'payment_reversed')
    """
    record = f"Reversal {reversal_id}"
    require_aware(at, record, "at")
    _check_currency(ledger, amount, "payment reversal")
    if not isinstance(reason, str) or not reason or ":" in reason or reason != "".join(reason.split()):
        raise ValidationError(record, "reason", f"{reason!r} is not a reason code (no ':' and no spaces)")
    if not amount.is_positive():
        raise ValidationError(record, "amount", f"{amount} is not more than zero")
    if any(e.source_id == reversal_id for e in ledger.entries):
        done = sum(e.amount.minor_units for e in ledger.entries if e.source_id == reversal_id)
        if done != amount.minor_units:
            raise DuplicateEntry(
                f"{record} was already posted with a different amount; use a new reversal id"
            )
        return ledger, None
    available = ledger.paid_by(payment_id)
    if not available.is_positive():
        raise ValidationError(record, "payment_id", f"payment {payment_id} has nothing left to reverse")
    if amount > available:
        raise ValidationError(
            record, "amount", f"{amount} is more than the {available} left of payment {payment_id}"
        )
    own = f"{reason}:{_OF_PAYMENT}:{payment_id}"
    entries: list[LedgerEntry] = []
    remaining = amount
    if ledger.credit.is_positive():
        take = min(remaining, ledger.credit)
        entries.append(
            LedgerEntry(f"{reversal_id}#credit", EntryKind.PAYMENT_REVERSED, take, at, None, reversal_id, own)
        )
        remaining = remaining - take
    # the payment's own invoice allocations, latest first, net of earlier refunds and reversals
    allocations = [
        e
        for e in ledger.entries
        if e.source_id == payment_id and e.kind is EntryKind.PATIENT_PAYMENT and e.invoice_id is not None
    ]
    for alloc in reversed(allocations):
        if not remaining.is_positive():
            break
        assert alloc.invoice_id is not None
        room = alloc.amount.minor_units - _reopened_allocation(ledger, payment_id, alloc.invoice_id)
        take = min(remaining, Money.from_minor(room, ledger.currency))
        if take.is_positive():
            entries.append(
                LedgerEntry(
                    f"{reversal_id}#{alloc.invoice_id}",
                    EntryKind.PAYMENT_REVERSED,
                    take,
                    at,
                    alloc.invoice_id,
                    reversal_id,
                    own,
                )
            )
            remaining = remaining - take
    # the payment's credit was moved onto invoices: reopen them, latest move first
    applied = [e for e in ledger.entries if e.kind is EntryKind.CREDIT_APPLIED]
    for move in reversed(applied):
        if not remaining.is_positive():
            break
        assert move.invoice_id is not None
        undone = sum(
            e.amount.minor_units
            for e in ledger.entries
            if e.kind is EntryKind.PAYMENT_REVERSED
            and e.key.endswith(f"#applied:{move.key}")
            and (_reversal_reason(e) or ("", ""))[0] == _OF_APPLIED_CREDIT
        )
        take = min(remaining, Money.from_minor(move.amount.minor_units - undone, ledger.currency))
        if take.is_positive():
            entries.append(
                LedgerEntry(
                    f"{reversal_id}#applied:{move.key}",
                    EntryKind.PAYMENT_REVERSED,
                    take,
                    at,
                    move.invoice_id,
                    reversal_id,
                    f"{reason}:{_OF_APPLIED_CREDIT}:{payment_id}",
                )
            )
            remaining = remaining - take
    if remaining.is_positive():
        raise ValidationError(
            record,
            "amount",
            f"only {amount - remaining} of payment {payment_id} can be reopened: the payment's credit was "
            "already used by another payment's refund or reversal; post the rest as an adjustment by hand",
        )
    return _append(ledger, entries), _event(
        ledger, entries, at, EntryKind.PAYMENT_REVERSED.value, {"payment": payment_id, "reason": reason}
    )


def apply_credit(ledger: Ledger, *, key: str, at: dt.datetime) -> tuple[Ledger, Event | None]:
    """Move account credit onto open invoices, oldest first (``key`` makes it idempotent)."""
    require_aware(at, f"Ledger {ledger.account_id}", "at")
    if any(e.source_id == key for e in ledger.entries):
        return ledger, None
    remaining = ledger.credit
    entries: list[LedgerEntry] = []
    for inv in ledger.open_invoices():
        if not remaining.is_positive():
            break
        take = min(remaining, ledger.invoice_balance(inv))
        entries.append(LedgerEntry(f"{key}#{inv}", EntryKind.CREDIT_APPLIED, take, at, inv, key, "credit"))
        remaining = remaining - take
    if not entries:
        return ledger, None
    return _append(ledger, entries), _event(ledger, entries, at, "credit_applied")
