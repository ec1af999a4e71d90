"""``carecollect migrate`` and ``carecollect store check`` on SQLite files and a PostgreSQL server."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carecollect.cli import main
from carecollect.run.settings_file import config_path
from carecollect.store.codec import partition_key
from carecollect.store.sqlite import MIGRATIONS, SQLiteStore
from carecollect.store.urls import open_store, sqlite_url

WALL = dt.datetime.now(dt.UTC)


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _old_file(path: Path, version: int) -> None:
    """A SQLite file as carecollect left it at schema ``version``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for v, description, statements in MIGRATIONS[:version]:
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, '2026-01-01T00:00:00+00:00')", (v, description)
            )
        db.commit()


def test_migrate_dry_run_shows_what_would_change_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    _old_file(db, 7)
    before = db.read_bytes()
    result = _cli("migrate", "--db", str(db), "--dry-run")
    assert result.exit_code == 0, result.output
    pending = len([m for m in MIGRATIONS if m[0] > 7])
    assert (
        f"schema version 7, newest {MIGRATIONS[-1][0]}; would apply {pending} migration(s)" in result.output
    )
    assert "8: run lock on the wall clock" in result.output
    assert "ALTER TABLE run_lock ADD COLUMN stale_after_seconds" in result.output
    assert db.read_bytes() == before
    applied = _cli("migrate", "--db", str(db))
    assert applied.exit_code == 0, applied.output
    assert f"schema version {MIGRATIONS[-1][0]}" in applied.output.splitlines()[-1]
    again = _cli("migrate", "--store", sqlite_url(db))
    assert "is up to date" in again.output


def test_migrating_to_partition_keys_keys_every_existing_account(tmp_path: Path) -> None:
    db = tmp_path / "v11.sqlite"
    _old_file(db, 11)
    with contextlib.closing(sqlite3.connect(db)) as raw:
        raw.execute(
            "INSERT INTO creditors (id, name, role, country, nonprofit) VALUES ('C', 'C', 'provider', 'NO', 0)"
        )
        raw.executemany(
            "INSERT INTO patients (id, preferred_language, time_zones, name, confidential, confidential_channels) "
            "VALUES (?, 'nb', 'Europe/Oslo', 'x', 'none', '')",
            [("P-1",), ("P-Ærø",)],
        )
        raw.executemany(
            "INSERT INTO accounts (id, patient_id, creditor_id, currency, jurisdiction) VALUES (?, ?, 'C', 'NOK', 'no')",
            [("A-1", "P-1"), ("A-2", "P-Ærø"), ("A-3", "P-1")],
        )
        raw.commit()
    assert _cli("migrate", "--db", str(db)).exit_code == 0
    with contextlib.closing(sqlite3.connect(db)) as raw:
        keys = dict(raw.execute("SELECT patient_id, partition_key FROM accounts").fetchall())
    assert keys == {"P-1": partition_key("P-1"), "P-Ærø": partition_key("P-Ærø")}


def test_store_check_reports_a_healthy_store_and_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    with SQLiteStore(db) as store:
        store.audit_append("import", "A-1", {"rows": 1}, at=WALL)
    result = _cli("store", "check", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "ok: schema version" in result.output
    assert "ok: audit chain verifies (1 records)" in result.output
    assert "ok: run lock: free" in result.output


def test_store_check_finds_a_stuck_lock_an_old_intent_a_broken_chain_and_an_old_schema(
    tmp_path: Path,
) -> None:
    db = tmp_path / "clinic.sqlite"
    with SQLiteStore(db) as store:
        store.audit_append("import", "A-1", {"rows": 1}, at=WALL)
        store.acquire_run_lock(
            "cron", 4242, now=WALL - dt.timedelta(minutes=5), stale_after=dt.timedelta(seconds=30)
        )
        store.outbox_intend("m-1", "message", {"n": 1}, at=WALL - dt.timedelta(hours=3))
    with contextlib.closing(sqlite3.connect(db)) as raw:
        raw.execute("DROP TRIGGER audit_no_update")
        raw.execute("UPDATE audit_log SET data = '{\"rows\":2}'")
        raw.commit()
    result = _cli("store", "check", "--db", str(db))
    assert result.exit_code == 1
    assert "PROBLEM: audit chain broken at record 1" in result.output
    assert "PROBLEM: run lock stuck: held by 'cron' (pid 4242)" in result.output
    assert "PROBLEM: 1 outbox item(s) intended over 1:00:00 ago" in result.output
    old = tmp_path / "old.sqlite"
    _old_file(old, 9)
    before = old.read_bytes()
    stale = _cli("store", "check", "--db", str(old))
    assert stale.exit_code == 1 and "run `carecollect migrate`" in stale.output
    assert old.read_bytes() == before  # a check changes nothing


def test_store_seal_seals_the_partition_chains_and_check_names_the_chain_that_broke(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    with SQLiteStore(db) as store:
        store.audit_append("import", "A-1", {"rows": 1}, at=WALL)
    assert "nothing to seal" in _cli("store", "seal", "--db", str(db)).output  # the main chain alone
    with SQLiteStore(db) as store:
        store.audit_append_many([("decision", f"A-{n}", {"n": n}) for n in range(3)], at=WALL, chain="p1of2")
        store.audit_append("decision", "A-9", {}, at=WALL, chain="p0of2")
    sealed = _cli("store", "seal", "--db", str(db))
    assert sealed.exit_code == 0, sealed.output
    with SQLiteStore(db) as store:
        (seal,) = store.audit_records(kinds={"audit.seal"})
    assert f"sealed 3 chain(s) in main record 2: {seal.hash}" in sealed.output
    assert "nothing to seal" in _cli("store", "seal", "--db", str(db)).output
    healthy = _cli("store", "check", "--db", str(db))
    assert healthy.exit_code == 0, healthy.output
    assert "ok: audit chains verify (6 records in 3 chains, 1 seal(s) hold)" in healthy.output
    assert (
        f"ok: latest audit seal: main record 2 at {seal.at.isoformat()}, 3 chain(s), hash {seal.hash}"
        in healthy.output
    )
    with contextlib.closing(sqlite3.connect(db)) as raw:  # the sealed tail of p1of2 removed behind the store
        raw.execute("DROP TRIGGER audit_no_delete")
        raw.execute("DELETE FROM audit_log WHERE chain = 'p1of2' AND chain_seq = 3")
        raw.commit()
    broken = _cli("store", "check", "--db", str(db))
    assert broken.exit_code == 1
    assert (
        "PROBLEM: audit chain 'p1of2' broken at record 3: record 3 is missing: the chain ends at record 2, "
        "the seal at main record 2 attests record 3"
    ) in broken.output


def test_the_settings_file_names_the_store_and_never_holds_its_password(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    assert _cli("init", "--db", str(db)).exit_code == 0
    other = tmp_path / "elsewhere.sqlite"
    settings = config_path(db)
    settings.write_text(settings.read_text() + f'\n[store]\nurl = "{sqlite_url(other)}"\n')
    assert _cli("migrate", "--db", str(db)).exit_code == 0
    assert other.exists()
    settings.write_text(
        settings.read_text().replace(sqlite_url(other), "postgresql://run:hunter2@db/billing")
    )
    refused = _cli("store", "check", "--db", str(db))
    assert refused.exit_code == 1
    assert "store.url holds a password" in refused.output and "hunter2" not in refused.output
    settings.write_text(settings.read_text().replace("postgresql://run:hunter2@db/billing", "env:CC_STORE"))
    via_env = _cli("migrate", "--db", str(db), env={"CC_STORE": sqlite_url(tmp_path / "third.sqlite")})
    assert via_env.exit_code == 0, via_env.output
    assert (tmp_path / "third.sqlite").exists()
    unknown = _cli("migrate", "--store", "mysql://x/y")
    assert unknown.exit_code == 1 and "sqlite:/// (a file) or postgresql://" in unknown.output


@pytest.mark.postgres
def test_migrate_and_check_a_postgresql_store(postgres_server: object) -> None:
    pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
    from carecollect.store.postgres import POSTGRES_MIGRATIONS as PG
    from carecollect.testing.postgres import LocalPostgres

    assert isinstance(postgres_server, LocalPostgres)
    url = postgres_server.create_database("cli_store")
    refused = _cli("store", "check", "--store", url)
    assert refused.exit_code == 1 and "schema version 0" in refused.output
    dry = _cli("migrate", "--store", url, "--dry-run")
    assert dry.exit_code == 0 and f"would apply {len(PG)} migration(s)" in dry.output
    assert "CREATE TABLE outbox" in dry.output
    assert "schema version 0" in _cli("migrate", "--store", url, "--dry-run").output  # nothing changed
    done = _cli("migrate", "--store", url)
    assert done.exit_code == 0, done.output
    with contextlib.closing(open_store(url)) as store:
        store.acquire_run_lock("host-b", 7, now=WALL - dt.timedelta(minutes=2))
    checked = _cli("store", "check", "--store", url)
    assert checked.exit_code == 1
    assert "ok: schema version" in checked.output and "ok: audit chain verifies (0 records)" in checked.output
    assert "PROBLEM: run lock stuck: held by 'host-b' (pid 7)" in checked.output
