"""Streaming the portfolio back in batches, and the synthetic generator behind it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from carecollect.channels import Channel
from carecollect.errors import ValidationError
from carecollect.portfolio import generate_rows, iter_invoice_rows, load_portfolio
from carecollect.store import SQLiteStore

AS_OF = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> SQLiteStore:
    store = SQLiteStore(tmp_path_factory.mktemp("bench") / "p.db")
    facts = load_portfolio(store, 1500, seed=11, as_of=AS_OF, batch_size=400)
    assert facts.invoices == 1500
    yield store
    store.close()


def test_generator_is_deterministic_and_sized() -> None:
    a = list(iter_invoice_rows(300, seed=3, as_of=AS_OF))
    assert len(a) == 300
    assert a == list(iter_invoice_rows(300, seed=3, as_of=AS_OF))
    assert a != list(iter_invoice_rows(300, seed=4, as_of=AS_OF))


def test_generator_mix_covers_countries_languages_and_states() -> None:
    rows = list(iter_invoice_rows(3000, seed=5, as_of=AS_OF))
    assert {(r.jurisdiction, r.language, r.currency) for r in rows} == {
        ("us", "en", "USD"),
        ("no", "nb", "NOK"),
        ("de", "de", "EUR"),
        ("bg", "bg", "EUR"),
    }
    assert {r.time_zone for r in rows} >= {"Europe/Oslo", "Europe/Berlin", "Europe/Sofia", "America/Chicago"}
    assert {r.claim_status for r in rows} == {"none", "pending", "adjudicated", "denied"}
    assert {r.status for r in rows} == {"open", "paid"}
    assert any(r.open_dispute for r in rows) and any(r.plan_status == "active" for r in rows)
    assert any(r.cease_requested for r in rows)
    assert all(0 <= r.balance_minor <= r.total_minor for r in rows)
    assert all(r.balance_minor == 0 for r in rows if r.status == "paid")
    assert len({r.due_date for r in rows}) > 300


def test_store_rows_equal_the_in_memory_rows(loaded: SQLiteStore) -> None:
    from_store = list(loaded.iter_invoice_rows(batch_size=97))
    assert from_store == list(iter_invoice_rows(1500, seed=11, as_of=AS_OF))


def test_snapshots_stream_every_account_in_batches_and_balance(loaded: SQLiteStore) -> None:
    counts = loaded.counts()
    seen = 0
    invoices = 0
    balances = {r.invoice_id: r.balance_minor for r in loaded.iter_invoice_rows()}
    for snap in loaded.iter_account_snapshots(batch_size=64):
        seen += 1
        invoices += len(snap.invoices)
        assert snap.patient.id == snap.account.patient_id
        for inv in snap.invoices:
            assert snap.ledger.invoice_balance(inv.id).minor_units == balances[inv.id]
            if inv.insurance.insurer_paid is not None:
                assert snap.ledger.invoice_balance(inv.id) <= inv.patient_responsibility
    assert seen == counts["accounts"]
    assert invoices == counts["invoices"] == 1500


def test_generated_snapshots_are_valid_domain_objects(loaded: SQLiteStore) -> None:
    snaps = list(loaded.iter_account_snapshots(batch_size=500))
    plans = [p for s in snaps for p in s.plans]
    assert plans and all(
        sum(i.amount.minor_units for i in p.instalments) == p.total.minor_units for p in plans
    )
    assert any(not s.patient.may_use(Channel.SMS) for s in snaps)  # opt-outs came through


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValidationError, match="size"):
        list(iter_invoice_rows(-1, as_of=AS_OF))
    with pytest.raises(ValidationError, match="batch_size"):
        list(generate_rows(10, as_of=AS_OF, batch_size=0))
    with pytest.raises(ValidationError, match="batch_size"), SQLiteStore(":memory:") as s:
        list(s.iter_account_snapshots(batch_size=0))


def test_an_empty_store_streams_nothing(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "e.db") as s:
        assert list(s.iter_account_snapshots()) == [] and list(s.iter_invoice_rows()) == []
