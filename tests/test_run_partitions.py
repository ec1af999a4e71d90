"""Partitions by patient and their leases, on SQLite and PostgreSQL: take, fence, take over, finish."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from carecollect.errors import ConfigurationError, PartitionLeaseLost
from carecollect.portfolio import load_portfolio
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.workers import (
    AUTO_MIN_ACCOUNTS,
    AUTO_PARTITIONS,
    PartitionView,
    auto_workers,
    partition_of,
    run_key_of,
    usable_cores,
)
from carecollect.store.base import Store
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)
STALE = dt.timedelta(seconds=30)
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "p.sqlite")
    else:
        pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
        from carecollect.store.postgres import PostgresStore

        server = request.getfixturevalue("postgres_server")
        opened = PostgresStore(server.create_database(f"parts_{next(_names)}"), migrate=True)
    with opened:
        yield opened


def test_leases_are_taken_once_fenced_taken_over_when_stale_and_finished_for_good(store: Store) -> None:
    key = run_key_of(NOW)
    a = store.take_partition(key, 3, "run:1/a", now=NOW, stale_after=STALE)
    b = store.take_partition(key, 3, "run:1/b", now=NOW, stale_after=STALE)
    c = store.take_partition(key, 3, "run:1/c", now=NOW, stale_after=STALE)
    assert a and b and c and [a.partition, b.partition, c.partition] == [0, 1, 2]
    assert store.take_partition(key, 3, "run:1/d", now=NOW, stale_after=STALE) is None
    with pytest.raises(ConfigurationError, match="laid out as 3, not 4"):
        store.take_partition(key, 4, "run:1/d", now=NOW, stale_after=STALE)
    # a holder without a heartbeat for stale_after loses it; the new holder has a higher fence
    later = NOW + STALE + dt.timedelta(seconds=1)
    store.heartbeat_partition(b, now=later)
    store.heartbeat_partition(c, now=later)
    taken = store.take_partition(key, 3, "run:1/d", now=later, stale_after=STALE)
    assert taken is not None and taken.partition == 0 and taken.fence == a.fence + 1
    with pytest.raises(PartitionLeaseLost) as lost:
        store.heartbeat_partition(a, now=later)
    assert (lost.value.fence, lost.value.current) == (a.fence, taken.fence)
    with pytest.raises(PartitionLeaseLost):
        store.finish_partition(a, now=later)
    store.finish_partition(taken, now=later)
    store.finish_partition(b, now=later)
    assert store.finished_partitions(key) == {0, 1}
    # a later run (another run lock holder) takes the unfinished partition over at once
    again = store.take_partition(key, 3, "run:2/a", now=later, stale_after=STALE, run_owner="run:2")
    assert again is not None and again.partition == 2
    assert store.take_partition(key, 3, "run:2/b", now=later, stale_after=STALE, run_owner="run:2") is None
    with pytest.raises(PartitionLeaseLost):
        store.heartbeat_partition(c, now=later)


def test_a_worker_whose_lease_was_taken_over_writes_nothing(store: Store) -> None:
    key = run_key_of(NOW)
    old = store.take_partition(key, 1, "run:1/a", now=NOW, stale_after=STALE)
    assert old is not None
    view = PartitionView(store, old, 1)
    with view.transaction():
        store.outbox_intend("m-1", "message", {"n": 1}, at=NOW)
    store.take_partition(key, 1, "run:2/a", now=NOW, stale_after=STALE, run_owner="run:2")
    with pytest.raises(PartitionLeaseLost), view.transaction():
        store.outbox_intend("m-2", "message", {"n": 2}, at=NOW)
    assert store.outbox_get("m-1") is not None
    from carecollect.store.base import NotFound

    with pytest.raises(NotFound):
        store.outbox_get("m-2")


def test_every_account_of_a_patient_is_in_one_partition_and_the_partitions_cover_the_run(
    store: Store,
) -> None:
    load_portfolio(store, 300, seed=4, as_of=NOW.date())
    settings = RunSettings()
    whole = {m.key for m in plan_run(store, NOW, settings).messages}
    parts = 3
    seen: set[str] = set()
    patients: dict[str, int] = {}
    for p in range(parts):
        lease = store.take_partition(run_key_of(NOW), parts, f"run:1/{p}", now=NOW, stale_after=STALE)
        assert lease is not None and lease.partition == p
        view = PartitionView(store, lease, parts)
        mine = {m.key for m in plan_run(view, NOW, settings).messages}  # type: ignore[arg-type]
        assert not mine & seen
        seen |= mine
        for facts in view.iter_plan_facts(now=NOW, batch_size=50):
            for account in facts.accounts:
                assert patients.setdefault(account[1], p) == p
                assert partition_of(account[1], parts) == p
    assert seen == whole and len(whole) > 50


def test_auto_workers_one_per_core_from_the_threshold_at_most_one_per_partition() -> None:
    assert auto_workers(AUTO_MIN_ACCOUNTS - 1, cores=8) == 1
    assert auto_workers(0, cores=8) == 1
    assert auto_workers(AUTO_MIN_ACCOUNTS, cores=1) == 1
    assert auto_workers(AUTO_MIN_ACCOUNTS, cores=3) == 3
    assert auto_workers(10**7, cores=AUTO_PARTITIONS + 1) == AUTO_PARTITIONS
    assert auto_workers(10**7) == min(usable_cores(), AUTO_PARTITIONS) >= 1


def test_a_workers_progress_goes_to_the_run_every_quarter_second_and_whole_at_each_partitions_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carecollect.run import workers

    clock = [100.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    put: list[tuple[str, int, int]] = []

    class Queue:
        def put(self, item: tuple[str, int, int]) -> None:
            put.append(item)

    reports = workers._Progress(Queue(), 3)
    for _ in range(40):  # accounts done within a quarter second: nothing put yet
        reports.add(1)
    assert put == []
    clock[0] += workers.PROGRESS_EVERY
    reports.add(2)
    assert put == [("progress", 3, 42)]
    reports.add(5)
    reports.flush()  # the partition's end: the rest at once
    reports.flush()  # nothing more to say: nothing put
    assert put == [("progress", 3, 42), ("progress", 3, 5)]
    assert sum(n for *_, n in put) == 47
