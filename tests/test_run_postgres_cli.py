"""``carecollect run --store postgresql://...`` end to end: import, run with two worker processes, rerun.

Every worker, and the run lock's heartbeat thread, opens its own handle from the store's URL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

pytest.importorskip(
    "psycopg", reason="NO PSYCOPG: install carecollect[postgres] to test the PostgreSQL store"
)

from tests.spool import spool_ids

from carecollect.cli import main
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.workers import RunHeartbeat
from carecollect.store.base import OutboxStatus
from carecollect.store.postgres import PostgresStore
from carecollect.store.sqlite import SQLiteStore
from carecollect.store.urls import open_store, url_of
from carecollect.testing.postgres import LocalPostgres

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)
_names = itertools.count()


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _fresh(server: LocalPostgres) -> str:
    url = server.create_database(f"runcli_{next(_names)}")
    assert _cli("migrate", "--store", url).exit_code == 0
    return url


def test_run_store_postgresql_imports_runs_with_two_workers_and_sends_each_message_once(
    postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    url = _fresh(postgres_server)
    source = tmp_path / "source.sqlite"
    with SQLiteStore(source) as seed:
        load_portfolio(seed, 300, seed=11, as_of=NOW.date())
    assert _cli("export", "--db", str(source), str(tmp_path / "portfolio.json")).exit_code == 0
    db = tmp_path / "clinic.sqlite"  # the settings file's place; the records live in PostgreSQL
    assert _cli("init", "--db", str(db)).exit_code == 0
    imported = _cli("import", "--db", str(db), "--store", url, str(tmp_path / "portfolio.json"))
    assert imported.exit_code == 0, imported.output
    with open_store(url) as store:
        assert store.counts()["invoices"] == 300
        planned = {m.key for m in plan_run(store, NOW, RunSettings()).messages}
    assert len(planned) > 50

    ran = _cli("run", "--db", str(db), "--store", url, "--as-of", NOW.isoformat(), "--workers", "2")
    assert ran.exit_code == 0, ran.output

    out = tmp_path / "clinic-outbox"  # in the spool layout `carecollect init` writes
    handed = spool_ids(out)
    assert len(handed) == len(set(handed)) == len(planned)
    with open_store(url) as store:
        assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
        assert store.verify_audit().ok
        assert store.current_run_lock() is None
        assert Counter(r.kind for r in store.audit_records())["message.sent"] == len(planned)
    again = _cli("run", "--db", str(db), "--store", url, "--as-of", NOW.isoformat(), "--workers", "2")
    assert again.exit_code == 0, again.output
    assert spool_ids(out) == handed
    with open_store(url) as store:
        account = next(r.subject_id for r in store.audit_records() if r.kind == "message.sent")
    explained = _cli("explain", "--db", str(db), "--store", url, account)
    assert explained.exit_code == 0, explained.output
    assert f"Account {account}" in explained.output
    assert _cli("report", "--db", str(db), "--store", url, "--as-of", NOW.isoformat()).exit_code == 0


def test_the_heartbeat_thread_beats_on_postgresql(postgres_server: LocalPostgres) -> None:
    url = _fresh(postgres_server)
    with PostgresStore(url) as store:
        assert url_of(store) == url
        store.acquire_run_lock("o@h", 1, now=NOW, stale_after=dt.timedelta(seconds=0.3))
        before = store.current_run_lock()
        assert before is not None
        heart = RunHeartbeat(store, "o@h", 1, dt.timedelta(seconds=0.3))
        heart.start()
        try:
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
            while dt.datetime.now(dt.UTC) < deadline:
                held = store.current_run_lock()
                assert held is not None
                if held.heartbeat_at != before.heartbeat_at:
                    break
        finally:
            heart.stop()
        held = store.current_run_lock()
        assert held is not None and held.heartbeat_at > before.heartbeat_at
        store.release_run_lock("o@h", 1)


def test_execute_run_with_workers_on_postgresql(postgres_server: LocalPostgres, tmp_path: Path) -> None:
    url = _fresh(postgres_server)
    settings = RunSettings(channel_config={"outbox": {"folder": str(tmp_path / "out")}})
    with PostgresStore(url) as store:
        load_portfolio(store, 120, seed=3, as_of=NOW.date())
        report = execute_run(store, NOW, make_plugin_manager(load_entrypoints=False), settings, workers=2)
        assert report.sent == len(list((tmp_path / "out").iterdir())) > 0
