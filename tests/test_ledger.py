"""The ledger: idempotency, allocation, credit, refunds, and conservation of money."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect import (
    Adjustment,
    AdjustmentKind,
    CurrencyMismatch,
    DuplicateEntry,
    EntryKind,
    Ledger,
    LedgerEntry,
    Money,
    Payment,
    PaymentMethod,
    Refund,
    ValidationError,
)
from carecollect.ledger import (
    apply_credit,
    post,
    post_adjustment,
    post_charge,
    post_insurance_payment,
    post_payment,
    post_refund,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 9, tzinfo=UTC)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def eur(x: str) -> Money:
    return Money(x, "EUR")


def two_invoices() -> Ledger:
    book = Ledger("A-1", "EUR")
    book, _ = post_charge(book, "INV-1", eur("100.00"), at=day(0))
    book, _ = post_charge(book, "INV-2", eur("50.00"), at=day(1))
    return book


def pay(pid: str, amount: str, when: int = 5, **kw: object) -> Payment:
    return Payment(pid, "A-1", eur(amount), PaymentMethod.CARD, day(when), **kw)  # type: ignore[arg-type]


def test_oldest_first_allocation_and_credit() -> None:
    book, event = post_payment(two_invoices(), pay("P1", "170.00"))
    assert book.invoice_balance("INV-1") == eur("0.00")
    assert book.invoice_balance("INV-2") == eur("0.00")
    assert book.credit == eur("20.00")
    assert book.balance == eur("-20.00")
    assert event is not None and event.detail("amount") == "EUR 170.00"
    assert book.open_invoices() == []


def test_payer_directed_allocation() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "60.00", directed_to=("INV-2",)))
    assert book.invoice_balance("INV-2") == eur("0.00")
    assert book.invoice_balance("INV-1") == eur("90.00")


def test_directed_to_unknown_invoice_is_refused() -> None:
    with pytest.raises(ValidationError, match="INV-9"):
        post_payment(two_invoices(), pay("P1", "10.00", directed_to=("INV-9",)))


def test_replayed_payment_changes_nothing_but_a_changed_one_is_an_error() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "30.00"))
    again, event = post_payment(book, pay("P1", "30.00"))
    assert again is book and event is None
    with pytest.raises(DuplicateEntry, match="P1"):
        post_payment(book, pay("P1", "31.00"))


def test_same_key_different_entry_is_refused() -> None:
    book = two_invoices()
    with pytest.raises(DuplicateEntry, match="charge:INV-1"):
        post_charge(book, "INV-1", eur("99.00"), at=day(0))
    same, event = post_charge(book, "INV-1", eur("100.00"), at=day(0))
    assert same is book and event is None


def test_adjustment_cannot_make_an_invoice_negative() -> None:
    book = two_invoices()
    adj = Adjustment(
        "ADJ-1", "A-1", "INV-2", eur("60.00"), AdjustmentKind.DISCOUNT, "GOODWILL", "staff-7", day(3)
    )
    with pytest.raises(ValidationError, match="more than the EUR 50.00 open on invoice INV-2"):
        post_adjustment(book, adj)
    ok = Adjustment(
        "ADJ-2", "A-1", "INV-2", eur("50.00"), AdjustmentKind.WRITE_OFF, "HARDSHIP", "mgr-1", day(3)
    )
    book, _ = post_adjustment(book, ok)
    assert book.sum_of(EntryKind.WRITE_OFF) == eur("50.00")
    assert book.invoice_balance("INV-2").is_zero()


def test_insurance_payment_and_currency_guard() -> None:
    book, _ = post_insurance_payment(two_invoices(), "INV-1", eur("80.00"), key="ERA-1", at=day(2))
    assert book.invoice_balance("INV-1") == eur("20.00")
    with pytest.raises(CurrencyMismatch):
        post_charge(book, "INV-3", Money("5.00", "USD"), at=day(3))


def test_refund_draws_credit_first_then_reopens_the_invoice() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "170.00"))
    book, _ = post_refund(book, Refund("R1", "A-1", "P1", eur("30.00"), day(7)))
    assert book.credit == eur("0.00")
    assert book.invoice_balance("INV-2") == eur("10.00")
    assert book.paid_by("P1") == eur("140.00")
    with pytest.raises(ValidationError, match="more than the EUR 140.00 left"):
        post_refund(book, Refund("R2", "A-1", "P1", eur("140.01"), day(8)))
    same, ev = post_refund(book, Refund("R1", "A-1", "P1", eur("30.00"), day(7)))
    assert same is book and ev is None


def test_refund_of_unknown_payment() -> None:
    with pytest.raises(ValidationError, match="nothing left to refund"):
        post_refund(two_invoices(), Refund("R1", "A-1", "P9", eur("1.00"), day(7)))


def test_credit_applies_to_a_later_invoice() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "170.00"))
    book, _ = post_charge(book, "INV-3", eur("15.00"), at=day(10))
    book, event = apply_credit(book, key="CA-1", at=day(10))
    assert event is not None
    assert book.invoice_balance("INV-3").is_zero()
    assert book.credit == eur("5.00")
    assert apply_credit(book, key="CA-1", at=day(11))[1] is None


def test_entries_need_an_invoice_and_a_positive_amount() -> None:
    with pytest.raises(ValidationError, match="needs an invoice"):
        LedgerEntry("k", EntryKind.CHARGE, eur("1.00"), T0)
    with pytest.raises(ValidationError, match="more than zero"):
        LedgerEntry("k", EntryKind.CHARGE, eur("0.00"), T0, "INV-1")
    with pytest.raises(ValidationError, match="never charged"):
        post(two_invoices(), LedgerEntry("k", EntryKind.ADJUSTMENT, eur("1.00"), T0, "INV-9"))


def test_naive_datetime_refused() -> None:
    from carecollect import NaiveDatetime

    with pytest.raises(NaiveDatetime, match="LedgerEntry"):
        LedgerEntry("k", EntryKind.CHARGE, eur("1.00"), dt.datetime(2026, 1, 1), "INV-1")


# -- conservation: a random walk of everything that can happen to an account -------------------


def _ops() -> st.SearchStrategy[list[tuple[str, int, int]]]:
    return st.lists(
        st.tuples(
            st.sampled_from(["charge", "pay", "adjust", "writeoff", "insure", "refund", "credit", "replay"]),
            st.integers(0, 10),
            st.integers(1, 50_000),
        ),
        max_size=40,
    )


@settings(max_examples=150, deadline=None)
@given(code=st.sampled_from(["JPY", "EUR", "BHD"]), ops=_ops())
def test_money_is_conserved(code: str, ops: list[tuple[str, int, int]]) -> None:
    """charges = payments + adjustments + balance, to the minor unit, against tallies kept *outside* the ledger.

    The tallies count what was handed to the ledger (a charge of 12.34, a payment of 5.00...), so the
    check does not merely re-add the ledger's own entries: a payment allocated wrongly, a credit
    counted twice or a refund that reopens too much makes it fail.
    """
    book = Ledger("A-1", code)
    payments: list[Payment] = []
    tally = {"charged": 0, "paid": 0, "insured": 0, "adjusted": 0, "refunded": 0}
    n = 0
    for op, pick, units in ops:
        n += 1
        amount = Money.from_minor(units, code)
        at = day(n)
        open_ = book.open_invoices()
        before = book
        try:
            if op == "charge":
                book, _ = post_charge(book, f"INV-{n}", amount, at=at)
                tally["charged"] += units
            elif op == "pay":
                p = Payment(f"P{n}", "A-1", amount, PaymentMethod.DIRECT_DEBIT, at)
                book, _ = post_payment(book, p)
                payments.append(p)
                tally["paid"] += units
                # the payment's allocations sum exactly to the payment
                assert sum(e.amount.minor_units for e in book.entries if e.source_id == p.id) == units
            elif op in ("adjust", "writeoff") and open_:
                inv = open_[pick % len(open_)]
                amt = min(amount, book.invoice_balance(inv))
                kind = AdjustmentKind.WRITE_OFF if op == "writeoff" else AdjustmentKind.DISCOUNT
                book, _ = post_adjustment(
                    book, Adjustment(f"ADJ{n}", "A-1", inv, amt, kind, "X", "staff", at)
                )
                tally["adjusted"] += amt.minor_units
            elif op == "insure" and open_:
                inv = open_[pick % len(open_)]
                amt = min(amount, book.invoice_balance(inv))
                book, _ = post_insurance_payment(book, inv, amt, key=f"ERA{n}", at=at)
                tally["insured"] += amt.minor_units
            elif op == "refund" and payments:
                p = payments[pick % len(payments)]
                left = book.paid_by(p.id)
                if left.is_positive():
                    amt = min(amount, left)
                    book, _ = post_refund(book, Refund(f"R{n}", "A-1", p.id, amt, at))
                    tally["refunded"] += amt.minor_units
            elif op == "credit":
                credit_before = book.credit
                book, _ = apply_credit(book, key=f"CA{n}", at=at)
                assert book.balance == before.balance  # moving credit changes no total
                assert not book.credit.is_negative() and book.credit <= credit_before
            elif op == "replay" and payments:
                book, event = post_payment(book, payments[pick % len(payments)])
                assert book is before and event is None
        except ValidationError as exc:
            # the only refusal possible here: a refund whose payment's credit was already applied elsewhere
            assert "credit was already used" in str(exc), exc
            assert book is before
        # the ledger's own sums equal what was handed to it
        assert book.sum_of(EntryKind.CHARGE).minor_units == tally["charged"]
        assert book.sum_of(EntryKind.PATIENT_PAYMENT).minor_units == tally["paid"]
        assert book.sum_of(EntryKind.INSURANCE_PAYMENT).minor_units == tally["insured"]
        assert (
            book.sum_of(EntryKind.ADJUSTMENT).minor_units + book.sum_of(EntryKind.WRITE_OFF).minor_units
            == tally["adjusted"]
        )
        assert book.sum_of(EntryKind.REFUND).minor_units == tally["refunded"]
        # the books balance after every step, to the minor unit
        expected_balance = (
            tally["charged"] + tally["refunded"] - tally["paid"] - tally["insured"] - tally["adjusted"]
        )
        assert book.balance.minor_units == expected_balance
        owed = sum(book.invoice_balance(i).minor_units for i in book.invoice_ids())
        assert owed - book.credit.minor_units == expected_balance
        assert all(not book.invoice_balance(i).is_negative() for i in book.invoice_ids())
        assert not book.credit.is_negative()
