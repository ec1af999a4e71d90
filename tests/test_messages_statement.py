"""The plain-language statement adds up, line by line."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import ValidationError
from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine
from carecollect.messages.statement import ShareKind, ShareReason, build_statement
from carecollect.money import Money


def _invoice(charges: list[int], paid: int, adj: int, payer: str | None = "Acme") -> Invoice:
    lines = tuple(
        InvoiceLine(f"C{i}", f"Service {i}", Money.from_minor(c, "EUR"), dt.date(2026, 2, 2))
        for i, c in enumerate(charges)
    )
    ins = (
        Insurance(
            ClaimStatus.ADJUDICATED,
            Money.from_minor(paid, "EUR"),
            Money.from_minor(adj, "EUR"),
            payer_name=payer,
        )
        if payer
        else Insurance()
    )
    return Invoice(
        id="INV-1",
        account_id="A-1",
        currency="EUR",
        lines=lines,
        issue_date=dt.date(2026, 2, 3),
        due_date=dt.date(2026, 3, 5),
        insurance=ins,
    )


@settings(max_examples=60, deadline=None)
@given(charges=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=6), data=st.data())
def test_lines_add_up_to_invoice(charges: list[int], data: st.DataObject) -> None:
    total = sum(charges)
    paid = data.draw(st.integers(min_value=0, max_value=total))
    adj = data.draw(st.integers(min_value=0, max_value=total - paid))
    inv = _invoice(charges, paid, adj)
    st_ = build_statement(inv)
    assert st_.charges == inv.total
    assert st_.insurer_paid == inv.insurer_paid
    assert st_.adjustments == inv.contractual_adjustment
    assert st_.balance == inv.patient_responsibility
    for ln in st_.lines:
        assert ln.charge - ln.insurer_paid - ln.adjustment == ln.patient_owes
        assert not ln.patient_owes.is_negative()


def test_reasons_must_add_up_and_uninsured_is_self_pay() -> None:
    inv = _invoice([10000], 6000, 1000)
    with pytest.raises(ValidationError, match=r"reasons\[0\]"):
        build_statement(inv, reasons={0: (ShareReason(ShareKind.COPAY, Money("20.00", "EUR")),)})
    with pytest.raises(ValidationError, match=r"reasons\[3\]"):
        build_statement(inv, reasons={3: ()})
    ok = build_statement(inv, reasons={0: (ShareReason(ShareKind.COINSURANCE, Money("30.00", "EUR")),)})
    assert ok.lines[0].reasons[0].kind is ShareKind.COINSURANCE
    self_pay = build_statement(_invoice([5000, 2500], 0, 0, payer=None), payments=Money("10.00", "EUR"))
    assert [r.kind for ln in self_pay.lines for r in ln.reasons] == [ShareKind.SELF_PAY, ShareKind.SELF_PAY]
    assert self_pay.balance == Money("65.00", "EUR")
    assert "Service" not in repr(self_pay)
