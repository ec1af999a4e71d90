"""The PostgreSQL store on a real throwaway server: the conformance kit, migrations, roles, timeouts.

The server is started by :func:`carecollect.testing.postgres.postgres_server` (``initdb`` in a
temporary directory, a free local port, removed afterwards). Without server binaries these
tests skip with a loud reason, and fail instead under ``CARECOLLECT_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip(
    "psycopg", reason="NO PSYCOPG: install carecollect[postgres] to test the PostgreSQL store"
)

import psycopg

from carecollect.store import Store, StoreError
from carecollect.store.postgres import POSTGRES_MIGRATIONS as MIGRATIONS
from carecollect.store.postgres import PostgresStore, apply_migrations
from carecollect.testing.postgres import LocalPostgres
from carecollect.testing.stores import (
    DeleteAudit,
    OpenStore,
    SecondHandle,
    StoreContract,
    SwapAudit,
    TamperAudit,
)

pytestmark = pytest.mark.postgres

_names = itertools.count()
T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


def _database(server: LocalPostgres, prefix: str) -> str:
    return server.create_database(f"{prefix}_{next(_names)}")


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def urls(self) -> dict[int, str]:
        return {}

    @pytest.fixture
    def open_store(self, postgres_server: LocalPostgres, urls: dict[int, str]) -> OpenStore:
        def open_new() -> Store:
            url = _database(postgres_server, "kit")
            store = PostgresStore(url, migrate=True, max_size=2)
            urls[id(store)] = url
            return store

        return open_new

    @pytest.fixture
    def second_handle(self, urls: dict[int, str]) -> SecondHandle:
        return lambda store: PostgresStore(urls[id(store)], max_size=2)

    @pytest.fixture
    def tamper_audit(self, urls: dict[int, str]) -> TamperAudit:
        def tamper(store: Store, seq: int, data: str) -> None:
            # the superuser, past the trigger
            with psycopg.connect(urls[id(store)], autocommit=True) as conn, conn.transaction():
                conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
                conn.execute("UPDATE audit_log SET data = %s WHERE seq = %s", (data, seq))
                conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_append_only")

        return tamper

    @pytest.fixture
    def delete_audit(self, urls: dict[int, str]) -> DeleteAudit:
        def delete(store: Store, seqs: Sequence[int]) -> None:
            with psycopg.connect(urls[id(store)], autocommit=True) as conn, conn.transaction():
                conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
                conn.execute("DELETE FROM audit_log WHERE seq = ANY(%s)", (list(seqs),))
                conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_append_only")

        return delete

    @pytest.fixture
    def swap_audit(self, urls: dict[int, str]) -> SwapAudit:
        def swap(store: Store, a: int, b: int) -> None:
            with psycopg.connect(urls[id(store)], autocommit=True) as conn, conn.transaction():
                conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
                for old, new in ((a, -1), (b, a), (-1, b)):
                    conn.execute("UPDATE audit_log SET seq = %s WHERE seq = %s", (new, old))
                conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_append_only")

        return swap


@pytest.fixture
def url(postgres_server: LocalPostgres) -> str:
    return _database(postgres_server, "t")


def _schema(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, COALESCE(collation_name, '') "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        extra = conn.execute(
            "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "UNION ALL SELECT 'trigger', tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal "
            "ORDER BY 1, 2"
        ).fetchall()
    return [tuple(map(str, r)) for r in [*cols, *extra]]


def test_an_empty_database_is_migrated_forward_and_a_dry_run_changes_nothing(url: str) -> None:
    planned = apply_migrations(url, dry_run=True)
    assert [m[0] for m in planned] == [m[0] for m in MIGRATIONS]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('schema_version')").fetchone() == (None,)
    assert [m[0] for m in apply_migrations(url)] == [m[0] for m in MIGRATIONS]
    assert apply_migrations(url) == [] and apply_migrations(url, dry_run=True) == []
    with PostgresStore(url) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert [m[:2] for m in store.applied_migrations()] == [m[:2] for m in MIGRATIONS]


def test_every_older_schema_migrates_to_the_newest_keeping_its_records(
    postgres_server: LocalPostgres,
) -> None:
    fresh = _database(postgres_server, "fresh")
    apply_migrations(fresh)
    versions = [m[0] for m in MIGRATIONS]
    for start in versions[:-1]:
        old = _database(postgres_server, f"from{start}")
        assert [m[0] for m in apply_migrations(old, target=start)] == [v for v in versions if v <= start]
        with psycopg.connect(old) as conn:  # a record written by that version
            conn.execute("INSERT INTO creditors VALUES ('CR-1', 'Clinic', 'provider', 'NO', 0, NULL, NULL)")
        with pytest.raises(StoreError, match="carecollect migrate"):
            PostgresStore(old)  # the run's store refuses an old schema instead of changing it
        assert [m[0] for m in apply_migrations(old, dry_run=True)] == [v for v in versions if v > start]
        apply_migrations(old)
        assert _schema(old) == _schema(fresh)
        with PostgresStore(old) as store:
            assert [c.id for c in store.creditors()] == ["CR-1"]


def test_audit_records_from_before_the_chains_stay_in_the_main_chain_and_verify(url: str) -> None:
    """Migration 6 gives every record written before it its place in the main chain; the log
    goes on from there, and its order from the new sequence."""
    from carecollect.store.base import GENESIS_HASH, audit_hash

    before = max(m[0] for m in MIGRATIONS if m[0] < 6)
    apply_migrations(url, target=before)
    prev = GENESIS_HASH
    with psycopg.connect(url) as conn:  # records as the store wrote them before there were chains
        for seq in (1, 2, 3):
            digest = audit_hash(prev, seq, T0, "import", f"A-{seq}", {"rows": seq})
            conn.execute(
                "INSERT INTO audit_log VALUES (%s, %s, 'import', %s, %s, %s, %s)",
                (seq, T0, f"A-{seq}", f'{{"rows":{seq}}}', prev, digest),
            )
            prev = digest
    apply_migrations(url)
    with PostgresStore(url) as store:
        assert [(r.chain, r.chain_seq, r.seq) for r in store.audit_records()] == [
            ("", n, n) for n in (1, 2, 3)
        ]
        assert store.verify_audit().ok
        main = store.audit_append("import", "A-4", {"rows": 4}, at=T0)
        part = store.audit_append("decision", "A-5", {}, at=T0, chain="p0of2")
        assert (main.seq, main.chain_seq, main.prev_hash) == (4, 4, prev)
        assert (part.seq, part.chain_seq) == (5, 1)
        assert store.seal_audit(at=T0) is not None
        result = store.verify_audit()
        assert (result.ok, result.checked, result.chains, result.seals) == (True, 6, 2, 1)


def test_a_schema_from_a_newer_carecollect_is_refused(url: str) -> None:
    apply_migrations(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description) VALUES (%s, 'from the future')",
            (MIGRATIONS[-1][0] + 1,),
        )
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(url)
    with pytest.raises(StoreError, match="newer"):
        apply_migrations(url)


def test_two_migrators_at_once_apply_each_migration_once(url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append([m[0] for m in apply_migrations(url)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(v for r in results for v in r) == [m[0] for m in MIGRATIONS]


DOCS = Path(__file__).resolve().parent.parent / "docs" / "how-to"


def test_the_documented_roles_the_run_needs_no_ddl_rights(postgres_server: LocalPostgres) -> None:
    """The how-to's two SQL files, as written: the owner migrates, the run only reads and writes rows."""
    postgres_server.psql_file(DOCS / "postgresql-setup.sql")
    postgres_server.psql_file(DOCS / "postgresql-grants.sql", "billing", user="carecollect_owner")
    owner_url = postgres_server.url("billing", user="carecollect_owner")
    run_url = postgres_server.url("billing", user="carecollect_run")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        apply_migrations(run_url)  # the run's role cannot change the schema
    assert [m[0] for m in apply_migrations(owner_url)] == [m[0] for m in MIGRATIONS]
    with PostgresStore(run_url) as store:  # tables a migration created are the run's to use
        from carecollect.portfolio import load_portfolio

        load_portfolio(store, 20, seed=1, as_of=T0.date())  # a bulk load leaves ANALYZE to autovacuum
        store.outbox_intend("m-1", "message", {"n": 1}, at=T0)
        store.outbox_failed("m-1", at=T0, error="x")
        store.audit_append("kit", "A-1", {}, at=T0)
        store.acquire_run_lock("run", 1, now=T0)
        store.release_run_lock("run", 1)
        store.hook_event_delivered(store.hook_event_record("h", "{}", ["p"], at=T0), ["p"], at=T0)
        assert store.verify_audit().ok
    with psycopg.connect(run_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE sneaky (x int)")
    with psycopg.connect(run_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
    for who in (run_url, owner_url):  # append-only, whoever asks
        with psycopg.connect(who) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE audit_log SET kind = 'edited'")


def test_a_statement_that_waits_past_the_timeout_fails_the_unit_of_work(url: str) -> None:
    apply_migrations(url)
    with PostgresStore(url, statement_timeout=dt.timedelta(milliseconds=300)) as store:
        store.outbox_intend("m-1", "message", {"n": 1}, at=T0)
        with psycopg.connect(url) as blocker:  # another process holds the item's row
            blocker.execute("SELECT 1 FROM outbox WHERE key = 'm-1' FOR UPDATE")
            with pytest.raises(StoreError, match="statement timeout"):
                store.outbox_failed("m-1", at=T0, error="x")
            blocker.rollback()
        assert store.outbox_get("m-1").attempts == 0  # nothing half-written
        assert store.outbox_failed("m-1", at=T0, error="x").attempts == 1


def test_a_portfolio_reads_back_equal_to_the_sqlite_stores(url: str, tmp_path: object) -> None:
    from carecollect.portfolio import load_portfolio
    from carecollect.store import SQLiteStore

    apply_migrations(url)
    with PostgresStore(url) as pg, SQLiteStore(":memory:") as lite:
        for store in (pg, lite):
            load_portfolio(store, 80, seed=3, as_of=dt.date(2026, 3, 2))
        assert pg.counts() == lite.counts()
        with psycopg.connect(url) as conn:  # the load left the planner statistics of the tables it filled
            estimates = dict(
                conn.execute(
                    "SELECT relname, reltuples FROM pg_class WHERE relname IN ('invoices', 'ledger_entries')"
                ).fetchall()
            )
        assert estimates["invoices"] == pg.counts()["invoices"] and estimates["ledger_entries"] > 0
        assert list(pg.iter_account_snapshots(batch_size=13)) == list(
            lite.iter_account_snapshots(batch_size=13)
        )
        for at in (T0, T0 + dt.timedelta(days=40)):
            assert list(pg.iter_plan_facts(now=at, batch_size=11)) == list(
                lite.iter_plan_facts(now=at, batch_size=11)
            )
        assert list(pg.iter_invoice_rows(batch_size=17)) == list(lite.iter_invoice_rows(batch_size=17))


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [
        t for t in threading.enumerate() if t not in before and t.is_alive() and "pool" in t.name.lower()
    ]
    assert not leaked, f"pool threads left running: {leaked}"


def test_a_server_that_does_not_answer_is_a_store_error_naming_no_password(
    postgres_server: LocalPostgres,
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match="no connection") as info:
        PostgresStore(f"postgresql://run:hunter2@127.0.0.1:{port}/billing", connect_timeout=1)
    assert "hunter2" not in str(info.value)


def _run_api() -> tuple[Any, Any, Any]:
    """``(RunSettings, execute_run, make_plugin_manager)`` where this carecollect keeps them."""
    try:
        from carecollect.plugins.manager import make_plugin_manager
    except ImportError:  # before the plugin surface moved into carecollect.plugins
        from carecollect.plugins.manager import make_plugin_manager
    from carecollect.run import RunSettings, execute_run

    return RunSettings, execute_run, make_plugin_manager


def test_the_daily_run_on_postgresql_does_what_it_does_on_sqlite(url: str, tmp_path: Path) -> None:
    """In one process, through the Store protocol: the same messages, records and audit trail."""
    from carecollect.portfolio import load_portfolio
    from carecollect.store import SQLiteStore

    run_settings, execute_run, make_plugin_manager = _run_api()
    now = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
    apply_migrations(url)
    seen = {}
    for name, store in (("sqlite", SQLiteStore(tmp_path / "run.db")), ("postgres", PostgresStore(url))):
        with store:
            load_portfolio(store, 120, seed=5, as_of=now.date())
            pm = make_plugin_manager(load_entrypoints=False)
            settings = run_settings(channel_config={"outbox": {"folder": str(tmp_path / f"{name}-out")}})
            sent = [execute_run(store, now + dt.timedelta(days=day), pm, settings).sent for day in (0, 22)]
            # every decision and change with its reasons (a run's random id aside)
            trail = [
                (r.kind, r.subject_id, {k: v for k, v in r.data.items() if k != "run_id"})
                for r in store.audit_records()
            ]
            seen[name] = (sent, store.counts(), trail, store.verify_audit().ok)
    assert seen["postgres"] == seen["sqlite"]
    assert seen["postgres"][0][0] > 0 and seen["postgres"][3]
    out = sorted(p.name for p in (tmp_path / "postgres-out").rglob("*") if p.is_file())
    assert out == sorted(p.name for p in (tmp_path / "sqlite-out").rglob("*") if p.is_file())


def test_the_plan_read_reads_ahead_and_stops_when_the_caller_stops(url: str) -> None:
    from carecollect.portfolio import load_portfolio

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "carecollect-plan-read-ahead"]

    with PostgresStore(url, migrate=True, max_size=2) as store:
        load_portfolio(store, 200, seed=3, as_of=T0.date())
        whole = [a[0] for facts in store.iter_plan_facts(now=T0, batch_size=9) for a in facts.accounts]
        assert whole == sorted(whole) and len(whole) > 40
        batches = store.iter_plan_facts(now=T0, batch_size=9)
        first = next(batches)
        assert [a[0] for a in first.accounts] == whole[:9]
        assert len(readers()) == 1  # the next batch is being read meanwhile
        batches.close()
        assert readers() == []
        # inside a unit of work: no read-ahead, and the unit's own writes are seen
        with store.transaction():
            patient = store.get_patient(first.accounts[0][1])
            store.put_patient(attrs.evolve(patient, cease_requested_at=T0))
            seen = next(iter(store.iter_plan_facts(now=T0, batch_size=9)))
            assert readers() == []
            assert seen.accounts[0][6] == "2026-03-02T09:00:00+00:00"
        # a failure while reading ahead reaches the caller
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE instalments RENAME TO instalments_away")
        try:
            with pytest.raises(psycopg.errors.UndefinedTable):
                list(store.iter_plan_facts(now=T0, batch_size=9))
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE instalments_away RENAME TO instalments")
        assert readers() == []


def test_account_versions_see_a_direct_write_and_move_when_the_run_lock_is_taken(url: str) -> None:
    """Another program writing a contact point directly moves only its patient's accounts'
    versions; taking the run lock lets go of the writers noted and moves every version (so a
    version read before never equals one read after); rows from two transactions that commit in
    the other order than they began both count."""
    from carecollect.portfolio import load_portfolio

    apply_migrations(url)
    with PostgresStore(url) as store:
        load_portfolio(store, 30, seed=2, as_of=T0.date())
        snaps = list(store.iter_account_snapshots(batch_size=50))
        one = snaps[0]
        other = next(s for s in snaps if s.patient.id != one.patient.id)
        ids = [one.account.id, other.account.id]
        before = store.account_versions(ids)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE contact_points SET opted_out_at = now() WHERE patient_id = %s", (one.patient.id,)
            )
        after = store.account_versions(ids)
        assert after[ids[0]] != before[ids[0]] and after[ids[1]] == before[ids[1]]
        # the earlier transaction commits last: the version read between still misses it, and moves
        with psycopg.connect(url) as first, psycopg.connect(url) as second:
            first.execute("UPDATE accounts SET household_size = 7 WHERE id = %s", (ids[1],))
            second.execute("UPDATE patients SET name = name || ' ' WHERE id = %s", (other.patient.id,))
            second.commit()
            between = store.account_versions(ids)
            assert between[ids[1]] != after[ids[1]]
            first.commit()
        assert store.account_versions(ids)[ids[1]] != between[ids[1]]
        held = store.account_versions(ids)
        store.acquire_run_lock("run", 1, now=T0)
        taken = store.account_versions(ids)
        assert all(taken[i] != held[i] for i in ids)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM account_changes").fetchone() == (0,)
        store.release_run_lock("run", 1)
        # a write between a read and the next run's start, its writer let go then: still seen
        held = store.account_versions(ids)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE accounts SET household_size = 9 WHERE id = %s", (ids[0],))
        store.acquire_run_lock("run", 1, now=T0)
        assert store.account_versions(ids)[ids[0]] != held[ids[0]]
        store.release_run_lock("run", 1)
