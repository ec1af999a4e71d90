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
    reverse_payment,
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


def _reverse(book: Ledger, rid: str, pid: str, amount: str, when: int = 8, reason: str = "chargeback"):  # type: ignore[no-untyped-def]
    return reverse_payment(
        book, reversal_id=rid, payment_id=pid, amount=eur(amount), at=day(when), reason=reason
    )


def test_a_reversal_takes_credit_first_then_reopens_the_latest_allocation() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "170.00"))  # INV-1 100, INV-2 50, credit 20
    book, event = _reverse(book, "REV-1", "P1", "30.00")
    assert event is not None and event.detail("kind") == "payment_reversed"
    assert (event.detail("payment"), event.detail("reason"), event.detail("amount")) == (
        "P1",
        "chargeback",
        "EUR 30.00",
    )
    assert book.credit == eur("0.00")
    assert book.invoice_balance("INV-2") == eur("10.00")
    assert book.invoice_balance("INV-1") == eur("0.00")
    assert book.paid_by("P1") == eur("140.00")
    # a report tells it from a refund: its own kind, no refund entries
    assert book.sum_of(EntryKind.PAYMENT_REVERSED) == eur("30.00")
    assert book.sum_of(EntryKind.REFUND).is_zero()
    # the rest of the payment goes back too, and the invoices owe exactly what they did before it
    book, _ = _reverse(book, "REV-2", "P1", "140.00", when=9)
    assert (book.invoice_balance("INV-1"), book.invoice_balance("INV-2")) == (eur("100.00"), eur("50.00"))
    assert book.paid_by("P1").is_zero() and book.balance == eur("150.00")


def test_a_reversal_is_idempotent_and_never_takes_more_than_is_left() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "60.00"))
    book, _ = _reverse(book, "REV-1", "P1", "25.00")
    same, event = _reverse(book, "REV-1", "P1", "25.00")
    assert same is book and event is None
    with pytest.raises(DuplicateEntry, match="REV-1"):
        _reverse(book, "REV-1", "P1", "26.00")
    with pytest.raises(ValidationError, match=r"Reversal REV-2.*amount.*more than the EUR 35.00 left"):
        _reverse(book, "REV-2", "P1", "35.01")
    with pytest.raises(ValidationError, match=r"Reversal REV-3.*payment_id.*P9 has nothing left"):
        _reverse(book, "REV-3", "P9", "1.00")
    with pytest.raises(ValidationError, match="reason"):
        _reverse(book, "REV-4", "P1", "1.00", reason="bank: returned")
    with pytest.raises(CurrencyMismatch):
        reverse_payment(
            book, reversal_id="REV-5", payment_id="P1", amount=Money("1.00", "USD"), at=day(9), reason="x"
        )
    assert book.paid_by("P1") == eur("35.00")  # nothing was written by the refusals


def test_refunds_and_reversals_of_one_payment_never_reopen_an_allocation_twice() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "150.00"))  # INV-1 100, INV-2 50
    book, _ = _reverse(book, "REV-1", "P1", "40.00")  # INV-2 reopened by 40
    book, _ = post_refund(book, Refund("R1", "A-1", "P1", eur("30.00"), day(9)))  # INV-2 10 more, INV-1 20
    assert book.invoice_balance("INV-2") == eur("50.00")
    assert book.invoice_balance("INV-1") == eur("20.00")
    with pytest.raises(ValidationError):
        _reverse(book, "REV-2", "P1", "80.01", when=10)
    book, _ = _reverse(book, "REV-2", "P1", "80.00", when=10)
    assert book.invoice_balance("INV-1") == eur("100.00") and book.paid_by("P1").is_zero()


def test_a_reversal_reopens_the_invoice_its_credit_was_moved_to() -> None:
    book, _ = post_payment(two_invoices(), pay("P1", "170.00"))  # 20 credit
    book, _ = post_charge(book, "INV-3", eur("20.00"), at=day(9))
    book, _ = apply_credit(book, key="CA-1", at=day(9))
    assert book.credit.is_zero() and book.invoice_balance("INV-3").is_zero()
    # a refund may not (the creditor can refund less), a chargeback must (the money is gone)
    with pytest.raises(ValidationError, match="credit was already used"):
        post_refund(book, Refund("R1", "A-1", "P1", eur("170.00"), day(10)))
    book, _ = _reverse(book, "REV-1", "P1", "170.00", when=10)
    assert [book.invoice_balance(i) for i in ("INV-1", "INV-2", "INV-3")] == [
        eur("100.00"),
        eur("50.00"),
        eur("20.00"),
    ]
    assert book.credit.is_zero() and book.balance == eur("170.00")


# -- conservation: a random walk of everything that can happen to an account -------------------


def _ops() -> st.SearchStrategy[list[tuple[str, int, int]]]:
    return st.lists(
        st.tuples(
            st.sampled_from(
                ["charge", "pay", "adjust", "writeoff", "insure", "refund", "reverse", "credit", "replay"]
            ),
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
    tally = {"charged": 0, "paid": 0, "insured": 0, "adjusted": 0, "refunded": 0, "reversed": 0}
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
            elif op == "reverse" and payments:
                # a returned debit or chargeback of what the payment has left
                p = payments[pick % len(payments)]
                left = book.paid_by(p.id)
                if left.is_positive():
                    amt = min(amount, left)
                    book, _ = reverse_payment(
                        book, reversal_id=f"V{n}", payment_id=p.id, amount=amt, at=at, reason="chargeback"
                    )
                    tally["reversed"] += amt.minor_units
                    assert book.paid_by(p.id) == left - amt
                    # what is owed goes back up by exactly the amount reversed
                    assert book.balance - before.balance == amt
                    # and the replay changes nothing
                    again, event = reverse_payment(
                        book, reversal_id=f"V{n}", payment_id=p.id, amount=amt, at=at, reason="chargeback"
                    )
                    assert again is book and event is None
            elif op == "credit":
                credit_before = book.credit
                book, _ = apply_credit(book, key=f"CA{n}", at=at)
                assert book.balance == before.balance  # moving credit changes no total
                assert not book.credit.is_negative() and book.credit <= credit_before
            elif op == "replay" and payments:
                book, event = post_payment(book, payments[pick % len(payments)])
                assert book is before and event is None
        except ValidationError as exc:
            # the only refusal possible here: a refund whose payment's credit was already applied
            # elsewhere, or a reversal whose payment's credit another payment's refund took (credit is
            # the account's, not the payment's); nothing is written
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
        assert book.sum_of(EntryKind.PAYMENT_REVERSED).minor_units == tally["reversed"]
        # the books balance after every step, to the minor unit
        expected_balance = (
            tally["charged"]
            + tally["refunded"]
            + tally["reversed"]
            - tally["paid"]
            - tally["insured"]
            - tally["adjusted"]
        )
        assert book.balance.minor_units == expected_balance
        owed = sum(book.invoice_balance(i).minor_units for i in book.invoice_ids())
        assert owed - book.credit.minor_units == expected_balance
        assert all(not book.invoice_balance(i).is_negative() for i in book.invoice_ids())
        assert not book.credit.is_negative()
        # the sums the ledger keeps equal the entries read one by one, on this and a fresh ledger
        for ledger in (book, Ledger("A-1", code, book.entries)):
            assert _read_one_by_one(ledger) == (
                [
                    ledger.invoice_balance(i).minor_units
                    for i in sorted({e.invoice_id or "" for e in book.entries})
                ],
                ledger.invoice_ids(),
                ledger.credit.minor_units,
                ledger.balance.minor_units,
                ledger.open_invoices(),
            )


def _read_one_by_one(ledger: Ledger) -> tuple[list[int], list[str], int, int, list[str]]:
    """Each invoice's balance, the charged invoices, the credit, the balance and the open invoices,
    by the entries' definitions (the way the ledger summed them before it kept its sums)."""
    ids = sorted({e.invoice_id or "" for e in ledger.entries})
    owed = dict.fromkeys(ids, 0)
    credit = 0
    first: dict[str, dt.datetime] = {}
    for e in ledger.entries:
        units = e.amount.minor_units
        if e.kind is EntryKind.CHARGE:
            first.setdefault(e.invoice_id or "", e.at)
        if e.invoice_id is not None:
            taken_back = e.kind in (
                EntryKind.REFUND,
                EntryKind.PAYMENT_REVERSED,
                EntryKind.INSURANCE_REVERSED,
            )
            owed[e.invoice_id] += units if e.kind is EntryKind.CHARGE or taken_back else -units
        if e.invoice_id is None and e.kind is EntryKind.PATIENT_PAYMENT:
            credit += units
        elif (e.invoice_id is None and e.kind in (EntryKind.REFUND, EntryKind.PAYMENT_REVERSED)) or (
            e.kind is EntryKind.CREDIT_APPLIED
        ):
            credit -= units
    charged = sorted(first, key=lambda i: (first[i], i))
    balances = [owed[i] if i else 0 for i in ids]
    return (
        balances,
        charged,
        credit,
        sum(owed[i] for i in charged) - credit,
        [i for i in charged if owed[i] > 0],
    )
