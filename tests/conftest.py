"""Shared fixtures."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from carecollect.creditors import Creditor, CreditorRole
from carecollect.invoices import ClaimStatus, Insurance, InvoiceLine, InvoiceStatus
from carecollect.ledger import EntryKind, LedgerEntry
from carecollect.money import Money
from carecollect.patients import Account
from carecollect.store import SQLiteStore
from carecollect.testing.factories import make_invoice, make_patient
from carecollect.testing.postgres import postgres_server  # noqa: F401  (the session's throwaway PostgreSQL)

#: invoice id -> line charges of the US account the files in tests/data/x12 answer
REMIT_INVOICES = {
    "INV-1001": ("180.00", "70.00"),
    "INV-1002": ("400.00",),
    "INV-1003": ("120.00",),
    "INV-2001": ("1500.00", "620.00"),
}


@pytest.fixture
def remit_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A US clinic's store with account A-1 and four open invoices whose claims are pending."""
    with contextlib.closing(SQLiteStore(tmp_path / "cc.db")) as s:
        s.put_creditor(Creditor("C-US", "Care Clinic", CreditorRole.PROVIDER, "US"))
        s.put_patient(make_patient(id="P-1", time_zones=("America/New_York",), country="US"))
        s.put_account(Account("A-1", "P-1", "C-US", "USD", "us"))
        at = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
        for inv_id, charges in REMIT_INVOICES.items():
            inv = make_invoice(
                id=inv_id,
                currency="USD",
                lines=tuple(
                    InvoiceLine(f"9921{i}", "Visit", Money(c, "USD"), dt.date(2026, 3, 2))
                    for i, c in enumerate(charges)
                ),
                issue_date=dt.date(2026, 3, 3),
                due_date=dt.date(2026, 4, 2),
                status=InvoiceStatus.OPEN,
                insurance=Insurance(
                    ClaimStatus.PENDING, submitted_on=dt.date(2026, 3, 3), payer_name="Acme Health"
                ),
            )
            s.put_invoice(inv)
            s.append_ledger(
                "A-1", [LedgerEntry(f"charge:{inv_id}", EntryKind.CHARGE, inv.total, at, inv_id, inv_id)]
            )
        yield s
