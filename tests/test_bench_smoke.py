"""The benchmark's planning paths at a tiny size: the fast path, the floor and the rich layer decide alike.

No timing is asserted here; ``nox -s bench`` prints the figures.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from carecollect.bench.__main__ import AS_OF, full_run, main, memory_rows
from carecollect.bench.planning import RunTables, decode, plan_fast, plan_floor, plan_rich
from carecollect.bench.rows import R_ID, Contexts, iter_store_rows
from carecollect.portfolio import load_portfolio
from carecollect.store import SQLiteStore

SIZE = 2000
# 15:30 UTC: European and US-east daytime, 07:30 in Los Angeles (quiet hours hold there);
# 03:00 UTC: night in Europe, evening in the US (some zones allowed, some not).
INSTANTS = (dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC), dt.datetime(2026, 3, 3, 3, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    path = tmp_path_factory.mktemp("bench") / "portfolio.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, SIZE, seed=1, as_of=AS_OF)
        yield s


@pytest.fixture(scope="module")
def memory() -> tuple[list[tuple[object, ...]], Contexts]:
    return memory_rows(SIZE, 1)


@pytest.mark.parametrize("now", INSTANTS)
def test_fast_path_equals_floor_and_rich(
    now: dt.datetime, store: SQLiteStore, memory: tuple[list[tuple[object, ...]], Contexts]
) -> None:
    rows, contexts = memory
    tables = RunTables(contexts, now)
    fast = plan_fast(rows, tables)
    assert fast == plan_floor(rows, tables)
    by_id = {r[R_ID]: code for r, code in zip(rows, fast, strict=True)}
    rich = dict(plan_rich(store.iter_account_snapshots(batch_size=200), store.get_creditor, now))
    assert rich == by_id
    # the sample exercises every kind of decision: sends, holds, nothing due, a next day
    decoded = [decode(c) for c in fast]
    assert any(send for _, _, send, _ in decoded)
    assert any(planned & ~send for _, planned, send, _ in decoded)
    assert any(idx < 0 for idx, _, _, _ in decoded)
    # the portfolio has no sent history, so every open, unfrozen invoice gets its first statement
    # (the cadence never skips it) and the next day is the one after it
    assert any(idx >= 0 and nxt > 0 for idx, _, _, nxt in decoded)


def test_store_rows_equal_memory_rows(
    store: SQLiteStore, memory: tuple[list[tuple[object, ...]], Contexts]
) -> None:
    rows, contexts = memory
    streamed_contexts = Contexts()
    streamed = [r for batch in iter_store_rows(store.path, streamed_contexts, batch_size=300) for r in batch]
    assert len(streamed) == len(rows) == SIZE

    def resolved(rs: list[tuple[object, ...]], cs: Contexts) -> dict[object, tuple[object, ...]]:
        return {r[0]: (cs[r[1]], *r[2:]) for r in rs}  # type: ignore[index]

    assert resolved(streamed, streamed_contexts) == resolved(rows, contexts)


def test_quick_bench_prints_its_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size", "3000", "--skip-store", "--skip-full", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "same decisions: True" in out
    assert "bare-Python floor" in out


def test_full_run_figure_counts_the_same_with_two_workers() -> None:
    one, two = full_run(150, 1, 1), full_run(150, 1, 2)
    assert one["sent"] == two["sent"] == one["files"] == two["files"] > 0
    assert (one["workers"], two["workers"]) == (1, 2)
    assert two["cpu"] > 0  # the workers' CPU time is counted


# Claims the insurer has not decided, filed at various distances from 2026-03-02: the us pack waits
# 60 days on a pending claim and 90 on an appealed one, then the patient is billed anyway.
CLAIMS = (
    ("pending", "2026-01-15", True),  # 46 days: still waiting
    ("pending", "2026-01-01", False),  # 60 days: the wait ran out today
    ("pending", "2025-12-01", False),  # 91 days
    ("appealed", "2026-01-01", True),  # 60 of 90 days
    ("appealed", "2025-11-15", False),  # 107 days
)


@pytest.fixture(scope="module")
def claims_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, dict[str, bool]]]:
    path = tmp_path_factory.mktemp("claims") / "portfolio.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 1500, seed=4, as_of=AS_OF)
    db = sqlite3.connect(path)
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM invoices WHERE claim_status = 'pending' AND status = 'open' ORDER BY id"
        )
    ]
    holds: dict[str, bool] = {}
    for n, iid in enumerate(ids):
        status, filed, waiting = CLAIMS[n % len(CLAIMS)]
        db.execute(
            "UPDATE invoices SET claim_status = ?, claim_submitted_on = ? WHERE id = ?", (status, filed, iid)
        )
        holds[iid] = waiting
    db.commit()
    db.close()
    with SQLiteStore(path) as s:
        yield s, holds


def test_insurer_wait_runs_out_alike_on_every_path(claims_store: tuple[SQLiteStore, dict[str, bool]]) -> None:
    store, holds = claims_store
    assert len(holds) >= 25
    now = INSTANTS[0]
    contexts = Contexts()
    rows = [r for batch in iter_store_rows(store.path, contexts, batch_size=400) for r in batch]
    tables = RunTables(contexts, now)
    fast = plan_fast(rows, tables)
    assert fast == plan_floor(rows, tables)
    by_id = {r[R_ID]: code for r, code in zip(rows, fast, strict=True)}
    rich = dict(plan_rich(store.iter_account_snapshots(batch_size=200), store.get_creditor, now))
    assert rich == by_id
    # a claim within its wait holds the invoice; past it (pending or appealed) the patient is billed
    for iid, waiting in holds.items():
        if waiting:
            assert by_id[iid] == 0, iid
    released = [decode(by_id[i]) for i, waiting in holds.items() if not waiting]
    assert sum(1 for idx, _, _, _ in released if idx >= 0) >= 10


def test_streamed_rows_skip_bounced_points_as_the_daily_run_does(tmp_path: Path, store: SQLiteStore) -> None:
    """A point a bounce marked counts as absent on the fast path too: the same decisions as the rich path."""
    from carecollect.channels import Channel
    from carecollect.patients import mark_undeliverable

    path = tmp_path / "bounced.db"
    # (a connection's own context manager commits but does not close: closing() does)
    with closing(sqlite3.connect(store.path)) as src, closing(sqlite3.connect(path)) as dst:
        src.backup(dst)  # the store's WAL included
    now = INSTANTS[0]
    marked = 0
    with SQLiteStore(path) as copy:
        for snap in copy.iter_account_snapshots(batch_size=500):
            points = snap.patient.points(Channel.EMAIL)
            if points and marked < 150:
                patient, event = mark_undeliverable(
                    snap.patient, Channel.EMAIL, points[0].address, at=now - dt.timedelta(days=1)
                )
                if event is not None:
                    copy.put_patient(patient)
                    marked += 1
        assert marked == 150
        contexts = Contexts()
        rows = [r for batch in iter_store_rows(str(path), contexts, batch_size=300) for r in batch]
        fast = plan_fast(rows, RunTables(contexts, now))
        by_id = {r[R_ID]: code for r, code in zip(rows, fast, strict=True)}
        rich = dict(plan_rich(copy.iter_account_snapshots(batch_size=200), copy.get_creditor, now))
    assert rich == by_id
    # and the marks changed decisions (the comparison above is not between two unchanged plans)
    assert rich != dict(plan_rich(store.iter_account_snapshots(batch_size=200), store.get_creditor, now))
