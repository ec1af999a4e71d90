"""The audit log's chains in a run: each partition's worker appends to its partition's chain,
the run ends with a seal of every chain's head, the chains go on from run to run.

On a SQLite file and (marked ``postgres``) on a throwaway PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import PartitionLeaseLost
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.run.workers import PartitionView, partition_of, run_key_of
from carecollect.store.base import (
    GENESIS_HASH,
    MAIN_CHAIN,
    SEAL_KIND,
    Store,
    audit_hash,
    canonical_json,
    partition_chain,
)
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
STALE = dt.timedelta(seconds=30)
PM = functools.partial(make_plugin_manager, load_entrypoints=False)
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "chains.sqlite")
    else:
        pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
        from carecollect.store.postgres import PostgresStore

        server = request.getfixturevalue("postgres_server")
        opened = PostgresStore(server.create_database(f"chains_{next(_names)}"), migrate=True)
    with opened:
        yield opened


def test_the_partition_chain_name() -> None:
    assert [partition_chain(p, 3) for p in range(3)] == ["p0of3", "p1of3", "p2of3"]
    with pytest.raises(ValueError, match="not one of 0..2"):
        partition_chain(3, 3)


def test_a_partitions_view_appends_to_its_own_chain_under_its_lease(store: Store) -> None:
    key = run_key_of(NOW)
    lease = store.take_partition(key, 2, "run:1/a", now=NOW, stale_after=STALE, partition=1)
    assert lease is not None
    view = PartitionView(store, lease, 2)
    assert view.chain == "p1of2"
    with view.transaction():
        first = view.audit_append("decision", "A-1", {"n": 1}, at=NOW)
        more = view.audit_append_many([("decision", "A-2", {"n": 2})], at=NOW)
    main = store.audit_append("import", "A-1", {}, at=NOW)
    assert (first.chain, first.chain_seq, first.prev_hash) == ("p1of2", 1, GENESIS_HASH)
    assert (more[0].chain, more[0].chain_seq, more[0].prev_hash) == ("p1of2", 2, first.hash)
    assert (main.chain, main.chain_seq) == (MAIN_CHAIN, 1)
    # the lease taken over: the old holder's unit of work writes nothing to the chain
    store.take_partition(key, 2, "run:2/a", now=NOW, stale_after=STALE, partition=1, run_owner="run:2")
    with pytest.raises(PartitionLeaseLost), view.transaction():
        view.audit_append("decision", "A-3", {"n": 3}, at=NOW)
    assert [r.chain_seq for r in store.audit_records(chain="p1of2")] == [1, 2]
    assert store.verify_audit().ok


def _run(store: Store, tmp_path: Path, now: dt.datetime, workers: int) -> None:
    settings = RunSettings(channel_config={"outbox": {"folder": str(tmp_path / "out")}}, batch_size=40)
    execute_run(
        store, now, PM(), settings, workers=workers, pm_factory=PM, partitions=4 if workers > 1 else None
    )


def test_a_parallel_run_keeps_a_chain_per_partition_and_ends_with_a_seal(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "run.sqlite") as store:
        load_portfolio(store, 240, seed=5, as_of=NOW.date())
        _run(store, tmp_path, NOW, workers=1)
        assert {r.chain for r in store.audit_records()} == {MAIN_CHAIN}
        assert not list(store.audit_records(kinds={SEAL_KIND}))  # one process, one chain: nothing to seal
        before = len(list(store.audit_records()))

        _run(store, tmp_path, NOW + dt.timedelta(days=14), workers=2)
        records = list(store.audit_records())[before:]
        chains = Counter(r.chain for r in records)
        assert set(chains) == {MAIN_CHAIN, "p0of4", "p1of4", "p2of4", "p3of4"}
        # a partition's records are about its own patients' accounts, and so are all the sends
        patients = {a.id: a.patient_id for a in (s.account for s in store.iter_account_snapshots())}
        for r in records:
            if r.chain != MAIN_CHAIN and r.subject_id in patients:
                assert partition_chain(partition_of(patients[r.subject_id], 4), 4) == r.chain
        assert all(r.chain != MAIN_CHAIN for r in records if r.kind == "message.sent")
        # the run ends with run.finished, then the seal of every chain's head
        main = list(store.audit_records(chain=MAIN_CHAIN))
        assert [r.kind for r in main[-2:]] == ["run.finished", SEAL_KIND]
        seal = main[-1]
        heads = {h["chain"]: h["seq"] for h in seal.data["heads"]}
        assert heads == {
            MAIN_CHAIN: main[-2].chain_seq,
            **{c: n for c, n in chains.items() if c != MAIN_CHAIN},
        }
        result = store.verify_audit()
        assert (result.ok, result.chains, result.seals) == (True, 5, 1)

        # the next run's partitions go on with the same chains, and it seals again
        _run(store, tmp_path, NOW + dt.timedelta(days=28), workers=2)
        p0 = list(store.audit_records(chain="p0of4"))
        assert [r.chain_seq for r in p0] == list(range(1, len(p0) + 1)) and len(p0) > chains["p0of4"]
        assert len(list(store.audit_records(kinds={SEAL_KIND}))) == 2
        result = store.verify_audit()
        assert (result.ok, result.chains, result.seals) == (True, 5, 2)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    prev=st.text(max_size=70),
    seq=st.integers(0, 10**12),
    at=st.datetimes(timezones=st.timezones()),
    kind=st.text(max_size=20),
    subject_id=st.text(max_size=20),
    data=st.dictionaries(st.text(max_size=8), _json_values, max_size=4),
    chain=st.sampled_from([MAIN_CHAIN, "p0of2", "p13of16"]) | st.text(min_size=1, max_size=9),
)
def test_the_audit_hash_is_sha256_of_the_records_canonical_json(
    prev: str, seq: int, at: dt.datetime, kind: str, subject_id: str, data: dict[str, Any], chain: str
) -> None:
    """The record's text is put together around the data's text; it is the canonical JSON of the
    whole record, as the hash was always defined (quotes, escapes, surrogates and all)."""
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(),
        "kind": kind,
        "subject_id": subject_id,
        "data": data,
    }
    if chain != MAIN_CHAIN:
        fields["chain"] = chain
    expected = hashlib.sha256((prev + canonical_json(fields)).encode("utf-8", "surrogatepass")).hexdigest()
    try:
        got = audit_hash(prev, seq, at, kind, subject_id, data, chain=chain)
    except UnicodeEncodeError:  # a lone surrogate: neither way can write it as UTF-8
        with pytest.raises(UnicodeEncodeError):
            hashlib.sha256((prev + canonical_json(fields)).encode("utf-8"))
        return
    assert got == expected
    assert (
        audit_hash(prev, seq, at, kind, subject_id, data, chain=chain, data_json=canonical_json(data)) == got
    )
    as_bool = canonical_json({**fields, "seq": True})
    assert (
        audit_hash(prev, True, at, kind, subject_id, data, chain=chain)
        == hashlib.sha256((prev + as_bool).encode("utf-8")).hexdigest()
    )
