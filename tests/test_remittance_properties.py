"""Property: after any order of claim answers and reversals the books balance and agree with the invoice."""

from __future__ import annotations

import datetime as dt

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import RemittanceRefused
from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from carecollect.ledger import EntryKind, Ledger, LedgerEntry, post
from carecollect.money import Money
from carecollect.remittance import (
    AdjustmentGroup,
    ClaimAdjustment,
    ClaimOutcome,
    ClaimPayment,
    active_claims,
    claim_entries,
    insurer_books,
    settle_claims,
)

T = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
TOTAL = 25_000  # cents


def invoice() -> Invoice:
    return Invoice(
        "INV-1",
        "A-1",
        "USD",
        (InvoiceLine("99213", "Visit", Money.from_minor(TOTAL, "USD"), dt.date(2026, 2, 27)),),
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
        status=InvoiceStatus.OPEN,
        insurance=Insurance(ClaimStatus.PENDING, submitted_on=dt.date(2026, 3, 1)),
    )


@st.composite
def answer(draw: st.DrawFn, n: int) -> ClaimPayment:
    """One primary, secondary or denial answer splitting the charge into paid, CO and PR."""
    outcome = draw(st.sampled_from([ClaimOutcome.PRIMARY, ClaimOutcome.SECONDARY, ClaimOutcome.DENIED]))
    paid = 0 if outcome is ClaimOutcome.DENIED else draw(st.integers(0, TOTAL))
    co = draw(st.integers(0, TOTAL - paid))
    pr = TOTAL - paid - co
    m = lambda u: Money.from_minor(u, "USD")  # noqa: E731
    adjustments = tuple(
        a
        for a in (
            ClaimAdjustment(AdjustmentGroup.CO, "45", m(co)),
            ClaimAdjustment(AdjustmentGroup.PR, "1", m(pr)),
        )
        if a.amount.is_positive()
    )
    return ClaimPayment("INV-1", outcome, m(TOTAL), m(paid), m(pr), f"PCN{n}", adjustments, key=f"R{n}")


@st.composite
def story(draw: st.DrawFn) -> list[ClaimPayment]:
    """Answers and reversals in any order (a reversal may name an answer not yet, or no longer, in force)."""
    answers = [draw(answer(i)) for i in range(draw(st.integers(1, 4)))]
    events: list[ClaimPayment] = list(answers)
    for a in draw(st.lists(st.sampled_from(answers), max_size=4)):
        rev = attrs.evolve(a.negated(), outcome=ClaimOutcome.REVERSAL, key=a.key + "-rev")
        events.insert(draw(st.integers(0, len(events))), rev)
    return events


@settings(max_examples=150, deadline=None)
@given(story())
def test_books_balance_after_any_order_of_answers_and_reversals(events: list[ClaimPayment]) -> None:
    inv = invoice()
    book = Ledger("A-1", "USD")
    book, _ = post(book, LedgerEntry("charge:INV-1", EntryKind.CHARGE, inv.total, T, "INV-1", "INV-1"))
    history: list[ClaimPayment] = []
    for i, ev in enumerate(events):
        try:
            ins = settle_claims(inv, [*history, ev], payer_name="Acme", decided_on=dt.date(2026, 3, 2))
        except RemittanceRefused:
            # refused: a reversal of nothing in force; nothing changes
            continue
        history.append(ev)
        entries = claim_entries(book, "INV-1", ins, key=f"F{i}", source=f"TRN{i}", at=T)
        for e in entries:
            book, _ = post(book, e)
        # posting the same move again changes nothing
        for e in claim_entries(book, "INV-1", ins, key=f"F{i}", source=f"TRN{i}", at=T):
            raise AssertionError(f"a second move {e} after the books were settled")
        inv = attrs.evolve(inv, insurance=ins)
        paid, adjusted = insurer_books(book, "INV-1")
        # the ledger and the invoice tell the same story, to the cent
        assert paid == inv.insurer_paid and adjusted == inv.contractual_adjustment
        assert book.invoice_balance("INV-1") == inv.patient_responsibility
        assert inv.total == inv.insurer_paid + inv.contractual_adjustment + inv.patient_responsibility
        live = active_claims(history)
        assert inv.insurance.status is (
            ClaimStatus.PENDING
            if not live
            else ClaimStatus.DENIED
            if live[-1].outcome is ClaimOutcome.DENIED and inv.insurer_paid.is_zero()
            else ClaimStatus.ADJUDICATED
        )
    # the end state depends only on which answers are still in force, not on the way there
    final = settle_claims(
        invoice(), active_claims(history), payer_name="Acme", decided_on=dt.date(2026, 3, 2)
    )
    assert (final.insurer_paid, final.contractual_adjustment) == (
        inv.insurance.insurer_paid,
        inv.insurance.contractual_adjustment,
    )
