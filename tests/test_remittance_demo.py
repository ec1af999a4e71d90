"""The demo's insurer answers pending US claims with generated 835 files that the validating reader imports."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest

pytest.importorskip("pyx12")

from carecollect.demo import DEMO_START, run_demo
from carecollect.demo_remittances import answer_pending_claims
from carecollect.importers.remittance import claims_in_force
from carecollect.invoices import ClaimStatus
from carecollect.portfolio import load_portfolio
from carecollect.store import SQLiteStore


def test_pending_us_claims_are_answered_by_835_files(tmp_path: Path) -> None:
    with contextlib.closing(SQLiteStore(tmp_path / "demo.db")) as store:
        load_portfolio(store, 400, seed=3, as_of=DEMO_START)
        pending = [
            r.invoice_id
            for r in store.iter_invoice_rows()
            if r.claim_status == "pending" and r.currency == "USD" and r.balance_minor == r.total_minor
        ]
        assert pending
        at = dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC)
        summaries = answer_pending_claims(store, tmp_path / "835", on=dt.date(2026, 3, 5), at=at, seed=3)
        files = sorted((tmp_path / "835").glob("*.835"))
        assert len(files) == len(summaries) >= 1
        assert sum(s.claims for s in summaries) == len(pending)
        for iid in pending:
            inv = store.get_invoice(iid)
            assert inv.insurance.status in (ClaimStatus.ADJUDICATED, ClaimStatus.DENIED)
            assert store.ledger(inv.account_id).invoice_balance(iid) == inv.patient_responsibility
            assert claims_in_force(store, iid)
        # the same files again change nothing
        again = answer_pending_claims(store, tmp_path / "835", on=dt.date(2026, 3, 5), at=at, seed=3)
        assert again == ()


def test_the_demo_takes_its_insurer_decisions_from_835_files(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo.db", size=150, weeks=1, seed=1)
    files = list((tmp_path / "demo-remittances").glob("*.835"))
    assert files
    with contextlib.closing(SQLiteStore(result.db)) as store:
        decided = [r for r in store.iter_invoice_rows() if r.claim_status in ("adjudicated", "denied")]
        assert any(claims_in_force(store, r.invoice_id) for r in decided)
