"""``carecollect migrate`` and ``carecollect store check``: the store's schema and health, on SQLite and PostgreSQL.

Which store: ``--store URL`` (or the ``CARECOLLECT_STORE_URL`` environment variable), else
``[store] url`` in the settings file of ``--db``, else the SQLite file ``--db`` itself.
Nothing heavy is imported before a command runs (``carecollect --help`` stays fast).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError

__all__ = ["check_store", "migrate", "resolve_store_url", "seal", "store"]

_STORE_HELP = (
    "The store: sqlite:///path or postgresql://user@host/db (default: [store] url of the settings "
    "file, else the --db file). Keep a password out of it: use ~/.pgpass or PGPASSWORD."
)

#: An outbox item intended longer ago than this, and still not done, is reported as stuck.
STUCK_INTENT = dt.timedelta(hours=1)


def resolve_store_url(db: Path, store_url: str | None) -> str:
    """The store to use: ``store_url`` if given, else ``[store] url`` of ``db``'s settings file, else ``db``."""
    from ..store.urls import sqlite_url

    if store_url:
        return store_url
    from ..run.settings_file import config_path, load_config

    if config_path(db).exists():
        configured = load_config(db).store_url
        if configured:
            return configured
    return sqlite_url(db)


def _sqlite_version(path: str) -> int:
    """The schema version of a SQLite file, read without changing it (0: no file or no schema)."""
    if path == ":memory:" or not Path(path).exists():
        return 0
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
            return 0
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _pending(url: str) -> tuple[int, int, list[tuple[int, str, tuple[str, ...]]]]:
    """``(current, newest, migrations not applied)`` of the store at ``url``, changing nothing."""
    from ..store.urls import sqlite_path, store_scheme

    if store_scheme(url) == "sqlite":
        from ..store.sqlite import MIGRATIONS

        current = _sqlite_version(sqlite_path(url))
        return current, MIGRATIONS[-1][0], [m for m in MIGRATIONS if m[0] > current]
    from ..store.postgres import POSTGRES_MIGRATIONS as PG_MIGRATIONS
    from ..store.postgres import apply_migrations

    pending = apply_migrations(url, dry_run=True)
    newest = PG_MIGRATIONS[-1][0]
    applied = [m[0] for m in PG_MIGRATIONS if m not in pending]  # the numbers need not be consecutive
    return max(applied, default=0), newest, pending


def _first_line(statement: str) -> str:
    words = " ".join(statement.split())
    return words if len(words) <= 100 else words[:97] + "..."


@click.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="carecollect.sqlite",
    show_default=True,
    help="The SQLite database; its settings file may name another store ([store] url).",
)
@click.option("--store", "store_url", envvar="CARECOLLECT_STORE_URL", help=_STORE_HELP)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the migrations (and their statements) that would run; change nothing.",
)
def migrate(db: Path, store_url: str | None, dry_run: bool) -> None:
    """Bring the store's schema up to date (run it as the schema's owner on PostgreSQL).

    Applies every migration the store lacks, in order, each in its own transaction. A
    schema from a newer carecollect is refused. The daily run never changes the schema of a
    PostgreSQL store: it refuses an outdated one and asks for this command.
    """
    from ..store.urls import safe_url, sqlite_path, store_scheme

    url = resolve_store_url(db, store_url)
    current, newest, pending = _pending(url)
    if current > newest:
        raise ConfigurationError(
            f"store {safe_url(url)}: schema version {current} is newer than this carecollect knows ({newest})"
        )
    shown = safe_url(url)
    if not pending:
        click.echo(f"{shown}: schema version {current} is up to date")
        return
    verb = "would apply" if dry_run else "applying"
    click.echo(f"{shown}: schema version {current}, newest {newest}; {verb} {len(pending)} migration(s):")
    for version, description, statements in pending:
        click.echo(f"  {version}: {description}")
        if dry_run:
            for statement in statements:
                click.echo(f"      {_first_line(statement)}")
    if dry_run:
        return
    if store_scheme(url) == "sqlite":
        from ..store.sqlite import SQLiteStore

        with SQLiteStore(sqlite_path(url)) as opened:  # opening a SQLite file applies what it lacks
            now = opened.schema_version()
    else:
        from ..store.postgres import apply_migrations

        apply_migrations(url)
        now = newest
    click.echo(f"{shown}: schema version {now}")


def check_store(url: str, wall_now: dt.datetime) -> tuple[list[str], list[str]]:
    """What ``carecollect store check`` finds: ``(facts, problems)``, one line each, no patient data.

    Problems: a schema that is not current, an audit chain that does not verify (each broken
    chain with the record where it breaks, a seal whose heads are not found as sealed), a run lock
    whose holder stopped beating (stuck), outbox items intended over :data:`STUCK_INTENT` ago
    and still not done. Facts: the rest (versions, counts, a live lock's holder).

    :param url: the store.
    :param wall_now: the wall clock (the lock's staleness is judged on it).
    """
    from ..store.urls import open_store

    facts: list[str] = []
    problems: list[str] = []
    current, newest, _ = _pending(url)
    if current != newest:
        problems.append(
            f"schema version {current}, this carecollect needs {newest}: run `carecollect migrate`"
            if current < newest
            else f"schema version {current} is newer than this carecollect knows ({newest})"
        )
        return facts, problems
    facts.append(f"schema version {current} (up to date)")
    store: Any = open_store(url)
    try:
        facts_, problems_ = _audit_lines(store)
        facts.extend(facts_)
        problems.extend(problems_)
        lock = store.current_run_lock()
        if lock is None:
            facts.append("run lock: free")
        elif lock.stale(wall_now):
            problems.append(
                f"run lock stuck: held by {lock.owner!r} (pid {lock.pid}), no heartbeat since "
                f"{lock.heartbeat_at.isoformat()} (stale after {lock.stale_after.total_seconds():g} s); "
                "the next run takes it over"
            )
        else:
            facts.append(f"run lock: held by {lock.owner!r} (pid {lock.pid}), alive")
        due = store.outbox_due(wall_now, limit=100_000)
        stuck = [i for i in due if i.status.value == "intended" and i.recorded_at + STUCK_INTENT <= wall_now]
        if stuck:
            problems.append(
                f"{len(stuck)} outbox item(s) intended over {STUCK_INTENT} ago and not done "
                f"(oldest {min(i.recorded_at for i in stuck).isoformat()}); the next run performs them"
            )
        facts.append(f"outbox: {len(due)} item(s) due")
        facts.append(f"hook events owed to plugins: {len(store.hook_events_pending(limit=100_000))}")
        facts.append(f"inbox events not taken in: {len(store.inbox_pending(limit=100_000))}")
    finally:
        store.close()
    return facts, problems


def _audit_lines(store: Any) -> tuple[list[str], list[str]]:
    """``(facts, problems)`` of the audit log: every chain and every seal verified."""
    from ..store.base import MAIN_CHAIN, SEAL_KIND

    audit = store.verify_audit()
    facts: list[str] = []
    problems = [
        f"audit chain {'' if p.chain == MAIN_CHAIN else repr(p.chain) + ' '}broken at record {p.seq}: {p.problem}"
        for p in audit.problems
    ]
    if audit.ok and audit.chains <= 1 and not audit.seals:
        facts.append(f"audit chain verifies ({audit.checked} records)")
    elif audit.ok:
        facts.append(
            f"audit chains verify ({audit.checked} records in {audit.chains} chains, {audit.seals} seal(s) hold)"
        )
    else:
        facts.append(
            f"audit: {audit.checked} records in {audit.chains} chains verify, up to the problems below"
        )
    if audit.seals:
        last = list(store.audit_records(kinds={SEAL_KIND}, chain=MAIN_CHAIN))[-1]
        facts.append(
            f"latest audit seal: main record {last.chain_seq} at {last.at.isoformat()}, "
            f"{len(last.data.get('heads', ()))} chain(s), hash {last.hash}"
        )
    return facts, problems


def _existing_store_url(db: Path, store_url: str | None) -> str:
    """The store's URL (:func:`resolve_store_url`); a SQLite file that is not there is a
    :class:`ConfigurationError` saying how to make it."""
    from ..store.urls import sqlite_path, store_scheme

    url = resolve_store_url(db, store_url)
    if store_scheme(url) == "sqlite" and not Path(sqlite_path(url)).exists():
        raise ConfigurationError(
            f"no database at {sqlite_path(url)}; run `carecollect init --db {sqlite_path(url)}` first"
        )
    return url


@click.group()
def store() -> None:
    """Look after the store (SQLite or PostgreSQL)."""


@store.command("check")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="carecollect.sqlite",
    show_default=True,
    help="The SQLite database; its settings file may name another store ([store] url).",
)
@click.option("--store", "store_url", envvar="CARECOLLECT_STORE_URL", help=_STORE_HELP)
def check(db: Path, store_url: str | None) -> None:
    """Check the schema version, the audit chains and seals, the run lock and stuck outbox items; exit 1 on a problem."""
    from ..store.urls import safe_url

    url = _existing_store_url(db, store_url)
    facts, problems = check_store(url, dt.datetime.now(dt.UTC))
    click.echo(safe_url(url))
    for line in facts:
        click.echo(f"  ok: {line}")
    for line in problems:
        click.echo(f"  PROBLEM: {line}")
    if problems:
        raise SystemExit(1)


@store.command("seal")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="carecollect.sqlite",
    show_default=True,
    help="The SQLite database; its settings file may name another store ([store] url).",
)
@click.option("--store", "store_url", envvar="CARECOLLECT_STORE_URL", help=_STORE_HELP)
def seal(db: Path, store_url: str | None) -> None:
    """Seal the audit chains: a main-chain record of every chain's head (name, record, hash).

    A run whose partitions wrote chains of their own ends with a seal; this writes one on a day
    without a run, or before a backup. Nothing is written when no chain changed since the last
    seal, or when there is no chain but the main one. The seal's hash is printed: keep it
    outside the database (a log, a ticket) and a rewrite of everything up to it shows.
    """
    from ..store.urls import open_store, safe_url

    url = _existing_store_url(db, store_url)
    with contextlib.closing(open_store(url)) as opened:
        record = opened.seal_audit(at=dt.datetime.now(dt.UTC))
    click.echo(safe_url(url))
    if record is None:
        click.echo("  nothing to seal: no chain but the main one, or none changed since the last seal")
        return
    click.echo(
        f"  sealed {len(record.data['heads'])} chain(s) in main record {record.chain_seq}: {record.hash}"
    )
