"""The commands of ``carecollect`` (see :doc:`/reference/cli`)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import CareCollectError, ConfigurationError, ValidationError

if TYPE_CHECKING:  # `carecollect --help` imports none of these: each command imports what it uses
    from rich.console import Console
    from rich.progress import Progress

    from ..demo import DemoResult
    from ..reports import CollectionReport
    from ..store.base import Store
    from ..store.sqlite import SQLiteStore

from .outbox import outbox
from .store import migrate, store
from .web import demo_pages, web

__all__ = ["RUN_HOUR_UTC", "main", "parse_as_of"]

#: The hour (UTC) a bare ``--as-of DATE`` means: 16:00 UTC is daytime in the
#: US (08:00-12:00), Norway, Germany and Bulgaria, so no quiet hours hold every message.
RUN_HOUR_UTC = 16

_DB_HELP = "The SQLite database (its settings file is the same name with .toml)."


def _contact_records(path: Path) -> list[Any]:
    """The contact-centre records file's records (none if it does not exist)."""
    from .contacts import read_records

    return read_records(path) if path.exists() else []


def _talks(records: list[Any]) -> list[tuple[str, str | None, dt.datetime]]:
    """Right-party conversations among the contact-centre records."""
    from ..contact_centre import conversations

    return list(conversations(records))


def parse_as_of(value: str | None, clock: Callable[[], dt.datetime] | None = None) -> dt.datetime:
    """The run's instant from ``--as-of``.

    An ISO date-time must carry its UTC offset; a bare ISO date means
    :data:`RUN_HOUR_UTC`:00 UTC that day; nothing means the clock now.

    :param value: the option's text.
    :param clock: what "now" is (default: the system clock, in UTC).
    :raises click.BadParameter: not a date, or a date-time without an offset.

    >>> parse_as_of("2026-03-02").isoformat()
    '2026-03-02T16:00:00+00:00'
    >>> parse_as_of("2026-03-02T09:30+01:00").isoformat()
    '2026-03-02T09:30:00+01:00'
    """
    if value is None:
        return (clock or (lambda: dt.datetime.now(dt.UTC)))()
    text = value.strip()
    if len(text) == 10:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
        return dt.datetime.combine(day, dt.time(RUN_HOUR_UTC), tzinfo=dt.UTC)
    from ..errors import NaiveDatetime, ValidationError
    from ..timekeeping import parse_instant

    try:
        return parse_instant(text, field="--as-of")
    except NaiveDatetime:
        raise click.BadParameter(f"{value!r} has no UTC offset; write e.g. {text}+00:00") from None
    except ValidationError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time") from None


def read_events(path: Path) -> list[Any]:
    """Inbound events from a JSON-lines file (see ``carecollect run --help``).

    :param path: the file.
    :raises ConfigurationError: a line is not such an object (named by its line number).
    """
    import json

    from ..run.inbound import InboundEvent, InboundKind

    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(
                InboundEvent(
                    InboundKind(data["kind"]),
                    str(data["plugin"]),
                    str(data["body"]).encode("utf-8"),
                    {str(k): str(v) for k, v in dict(data.get("headers") or {}).items()},
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"{path.name} line {n}: not an event ({type(exc).__name__}); "
                'expected {"kind": ..., "plugin": ..., "body": ..., "headers": {...}}'
            ) from None
    return out


class _Group(click.Group):
    """Turns every :class:`~carecollect.errors.CareCollectError` into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CareCollectError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(
                f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}"
            ) from None


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 140))
    return console


def _db_option(default: str = "carecollect.sqlite") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=_DB_HELP,
    )


_AS_OF_HELP = (
    "The run's instant: an ISO date-time with its offset (2026-03-02T09:00+01:00), "
    f"or a date (meaning {RUN_HOUR_UTC}:00 UTC). Default: now."
)


_STORE_HELP = (
    "The store: sqlite:///path or postgresql://user@host/db (default: [store] url of the settings "
    "file, else the --db file). Keep a password out of it: use ~/.pgpass or PGPASSWORD."
)


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store", "store_url", envvar="CARECOLLECT_STORE_URL", default=None, help=_STORE_HELP
    )(f)


@contextmanager
def _open(db: Path, store_url: str | None = None) -> Iterator[Store]:
    """The store ``--store`` (or ``[store] url`` of ``db``'s settings) names, else the file ``db``."""
    from ..store.urls import open_store, sqlite_path, store_scheme
    from .store import resolve_store_url

    url = resolve_store_url(db, store_url)
    if store_scheme(url) == "sqlite" and not Path(sqlite_path(url)).exists():
        raise ConfigurationError(f"no database at {sqlite_path(url)}; run `carecollect init --db {db}` first")
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _open_file(db: Path) -> Iterator[SQLiteStore]:
    """The SQLite file ``db`` itself (backup and restore copy a file)."""
    from ..store.sqlite import SQLiteStore

    if not db.exists():
        raise ConfigurationError(f"no database at {db}; run `carecollect init --db {db}` first")
    store = SQLiteStore(db)
    try:
        yield store
    finally:
        store.close()


def _progress(console: Console) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="carecollect")
def main() -> None:
    """Patient-friendly billing and collections: run the daily cycle, explain it, report on it."""


@main.command()
@_db_option()
def init(db: Path) -> None:
    """Create the database (applying migrations) and its settings file.

    Running it again on an existing database only applies new migrations and
    keeps the settings file as it is.
    """
    from ..run.settings_file import config_path, write_default_config
    from ..store.sqlite import SQLiteStore

    console = _console()
    existed = db.exists()
    db.parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(db)
    try:
        version = store.schema_version()
    finally:
        store.close()
    had_config = config_path(db).exists()
    cfg = write_default_config(db)
    console.print(f"{'Opened' if existed else 'Created'} {db} (schema version {version})")
    console.print(f"{'Kept' if had_config else 'Wrote'} settings {cfg}")


@main.command("import")
@_db_option()
@_store_option
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "fhir", "remittance"]),
    default=None,
    help="csv: a folder of CSV files; json: a JSON document; fhir: a FHIR R4 Bundle (JSON); "
    "remittance: the insurer's answer, an X12 835 or FHIR ClaimResponse/ExplanationOfBenefit. "
    "Default: from SOURCE (a folder is csv; an 835 or a claim response by content; else json).",
)
def import_(db: Path, source: Path, fmt: str | None, store_url: str | None) -> None:
    """Import SOURCE, all or nothing; every bad row is listed with where it is and its field."""
    from rich.console import Console
    from rich.table import Table

    from ..importers import ImportFailed, import_csv, import_json
    from ..importers.remittance import looks_like_remittance
    from .wording import counted

    console = _console()
    if fmt is None:
        fmt = "csv" if source.is_dir() else "remittance" if looks_like_remittance(source) else "json"
    if fmt == "remittance":
        _import_remittance(db, source, store_url)
        return
    with _open(db, store_url) as store:
        try:
            if fmt == "csv":
                summary = import_csv(store, source)
            elif fmt == "json":
                summary = import_json(store, source)
            else:
                from ..importers.fhir import import_fhir

                summary = import_fhir(store, source)
        except ImportFailed as exc:
            err = Console(stderr=True, highlight=False, soft_wrap=True)
            err.print(
                f"Import refused, nothing was stored: {counted(len(exc.problems), 'problem', 'problems')}"
            )
            for p in exc.problems:
                err.print(f"  {p}", markup=False)
            raise SystemExit(1) from None
    table = Table(title=f"Imported from {source.name}")
    table.add_column("records")
    table.add_column("count", justify="right")
    for name in (
        "creditors",
        "patients",
        "accounts",
        "invoices",
        "payments",
        "assistance_applications",
        "ledger_entries",
    ):
        table.add_row(name.replace("_", " "), str(getattr(summary, name)))
    console.print(table)


def _import_remittance(db: Path, source: Path, store_url: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..errors import RemittanceRefused
    from ..importers.remittance import import_remittance

    console = _console()
    with _open(db, store_url) as store:
        try:
            summary = import_remittance(store, source, at=dt.datetime.now(dt.UTC))
        except RemittanceRefused as exc:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"Remittance refused, nothing was stored: {exc}", markup=False
            )
            raise SystemExit(1) from None
    table = Table(title=f"Remittance {source.name}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("remittances", summary.remittances),
        ("applied", summary.applied),
        ("already applied (skipped)", summary.skipped),
        ("claims", summary.claims),
        ("invoices updated", summary.invoices),
        ("denied", summary.denied),
        ("ledger entries", summary.ledger_entries),
        ("insurer paid (net)", str(summary.insurer_paid)),
    ):
        table.add_row(label, str(value))
    console.print(table)


@main.command("export")
@_db_option()
@_store_option
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "fhir"]),
    default=None,
    help="csv: a folder of CSV files; json: a JSON document; fhir: a FHIR R4 Bundle (JSON). "
    "Default: from DEST (*.json is json, anything else a csv folder).",
)
def export(db: Path, dest: Path, fmt: str | None, store_url: str | None) -> None:
    """Write every record to DEST in the format `carecollect import` reads back.

    An export is not a backup: it leaves out the run's history (outreach, plans,
    disputes, placements, the outbox, the audit log), so a database imported
    from it would send first statements again. Use `carecollect backup`.
    """
    import json

    from rich.console import Console

    from ..importers import export_csv, export_json
    from .wording import counted

    console = _console()
    fmt = fmt or ("json" if dest.suffix.lower() == ".json" else "csv")
    with _open(db, store_url) as store:
        counts = store.counts()
        if fmt == "csv":
            export_csv(store, dest)
        elif fmt == "json":
            export_json(store, dest)
        else:
            from ..importers.fhir import export_fhir_bundle

            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(export_fhir_bundle(store), indent=1, default=str), encoding="utf-8")
    console.print(
        f"Exported {counts['patients']} patients, {counts['accounts']} accounts and "
        f"{counts['invoices']} invoices to {dest} ({fmt})"
    )
    history = {
        name: counts.get(table, 0)
        for name, table in (
            ("outreach steps", "outreach_steps"),
            ("contact attempts", "contact_attempts"),
            ("payment plans", "plans"),
            ("disputes", "disputes"),
            ("placements", "placements"),
            ("outbox items", "outbox"),
            ("audit records", "audit_log"),
        )
    }
    if any(history.values()):
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            "Note: an export is not a backup. It leaves out the run's history ("
            + ", ".join(f"{n} {name}" for name, n in history.items() if n)
            + "); a database imported from it would send first statements again. "
            f"For a backup: carecollect backup --db {db} <new file>"
        )
    applications = counts.get("assistance_applications", 0)
    if fmt == "fhir" and applications:
        # FHIR R4 has no resource for them; losing one would let a patient who applied be dunned.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"Warning: the FHIR bundle leaves out {counted(applications, 'financial-assistance application', 'financial-assistance applications')} "
            "(FHIR R4 has no resource for them); export csv or json as well to keep them."
        )


@main.command()
@_db_option()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup(db: Path, dest: Path) -> None:
    """Copy the whole database to the new file DEST, consistent even while a run writes.

    DEST holds everything: records, the run's history (outreach, outbox, plans,
    disputes, applications, placements, mandates, processed webhook ids, events
    owed to plugins) and the audit log. The settings file is copied beside it.
    Restore with `carecollect restore`.
    """
    import shutil

    from ..run.settings_file import config_path
    from ..store.sqlite import SQLiteStore

    console = _console()
    with _open_file(db) as store:
        store.backup(dest)
    with SQLiteStore(dest) as copy:
        check = copy.verify_audit()
        counts = copy.counts()
        version = copy.schema_version()
    if not check.ok:
        raise ConfigurationError(f"the backup's audit chain does not verify ({check.problem}); keep {db}")
    settings = config_path(db)
    if settings.exists() and not config_path(dest).exists():
        shutil.copyfile(settings, config_path(dest))
    console.print(
        f"Backed up {db} to {dest} (schema version {version}): {counts['accounts']} accounts, "
        f"{counts['outreach_steps']} outreach steps, {counts['outbox']} outbox items, "
        f"{counts['audit_log']} audit records (chain verified)"
    )


@main.command()
@_db_option()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the database at --db if it exists.")
def restore(db: Path, source: Path, force: bool) -> None:
    """Restore the database from SOURCE, a file `carecollect backup` wrote.

    SOURCE is checked first (a carecollect database, its audit chain verifies).
    An existing database is replaced only with --force, and never while a run
    holds its lock. Its settings file is copied too when --db has none.
    """
    import shutil
    import sqlite3

    from ..run.settings_file import config_path
    from ..store.base import RunLocked
    from ..store.sqlite import SQLiteStore

    console = _console()
    try:
        source_store = SQLiteStore(source)
    except sqlite3.DatabaseError:
        raise ConfigurationError(f"{source} is not a carecollect database") from None
    with source_store:
        check = source_store.verify_audit()
        if not check.ok:
            raise ConfigurationError(
                f"{source}: the audit chain does not verify ({check.problem}); not restored"
            )
        if db.exists() and not force:
            raise ConfigurationError(f"{db} exists; pass --force to replace it with {source}")
        with SQLiteStore(db) as target:
            held = target.current_run_lock()
            if held is not None and not held.stale(dt.datetime.now(dt.UTC)):
                raise RunLocked(held.owner, held.pid, held.started_at, held.heartbeat_at, held.stale_after)
            target.restore_from(source_store)
            counts = target.counts()
    if config_path(source).exists() and not config_path(db).exists():
        shutil.copyfile(config_path(source), config_path(db))
    console.print(
        f"Restored {db} from {source}: {counts['accounts']} accounts, {counts['outreach_steps']} outreach "
        f"steps, {counts['audit_log']} audit records"
    )


def _worker_count(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
    """``--workers``: a count of at least 1, or ``auto``."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise click.BadParameter(f"{value!r} is neither a count of at least 1 nor auto", ctx, param)


@main.command()
@_db_option()
@_store_option
@click.option("--dry-run", is_flag=True, help="Plan only: send nothing and write nothing.")
@click.option("--as-of", "as_of", default=None, help=_AS_OF_HELP)
@click.option(
    "--events",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Inbound events to take in first, one JSON object per line: kind (payment, reply, "
    "delivery_report or dispute), plugin, body (the raw text), headers. Ignored by --dry-run.",
)
@click.option(
    "--workers",
    default="auto",
    callback=_worker_count,
    metavar="N|auto",
    help="Processes that plan and send, each a partition of the patients at a time; each opens "
    "the store itself. auto (the default): one per core for 2,000 accounts or more (16 "
    "partitions), else 1, this process alone.",
)
@click.option(
    "--cluster",
    default=None,
    envvar="CARECOLLECT_CLUSTER",
    metavar="ADDRESS",
    help="Run the partitions on a Dask cluster: local:N (N worker processes here) or the "
    'scheduler\'s address tcp://host:8786 (pip install "carecollect[dask]"). Default: no cluster.',
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Partitions of the patients for --workers or --cluster (keep it when running the same "
    "--as-of again). Default: 4 per worker given as N, 16 with auto or on a cluster.",
)
@click.option(
    "--show",
    is_flag=True,
    help="With --dry-run: list every planned message (account, step, channel, language, due) "
    "and every hold with its reasons, not only the counts.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="With --dry-run: json prints one document with stable keys (format carecollect.dry-run/1).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Run at an --as-of earlier than the last run's (refused without it).",
)
def run(
    db: Path,
    dry_run: bool,
    as_of: str | None,
    events: Path | None,
    workers: int | str,
    show: bool,
    fmt: str,
    force: bool,
    store_url: str | None,
    cluster: str | None,
    partitions: int | None,
) -> None:
    """Run the daily cycle: intake, plan, send each message once, charge due instalments, place.

    The summary leaves out what is zero and says where the messages went (channel, plugin,
    folder or server). A dry run counts by default; --show lists what it would send and hold.
    """
    import attrs
    from rich.table import Table

    from ..plugins.manager import make_plugin_manager
    from ..run.execute import execute_run, last_run_at
    from ..run.planning import plan_run
    from ..run.process import tune_gc_for_batch_run
    from ..run.settings_file import check_config, load_config
    from ..run.workers import AUTO_PARTITIONS, PARTITIONS_PER_WORKER, auto_workers
    from .run_summary import dry_run_document, dry_run_rows, routes, run_rows

    if (show or fmt != "text") and not dry_run:
        raise click.UsageError("--show and --format go with --dry-run")
    tune_gc_for_batch_run()
    now = parse_as_of(as_of)
    console = _console()
    processes = 1
    with _open(db, store_url) as store:
        config = load_config(db)
        pm = make_plugin_manager()
        # before anything is planned or sent: a wrong name (plugin or creditor) fails loudly
        check_config(config, pm, [c.id for c in store.creditors()])
        last = last_run_at(store)
        if not dry_run and last is not None and now < last and not force:
            raise ConfigurationError(
                f"--as-of {now.isoformat()} is before the last run ({last.isoformat()}); "
                "running back in time re-plans what that run decided: pass --force if you mean it"
            )
        # counts only, unless --show: the plan keeps no lists, so memory stays flat for any portfolio
        settings = attrs.evolve(config.settings, keep_plan=dry_run and show)
        records = _contact_records(config.contacts)
        talks = _talks(records)
        if dry_run:
            plan = plan_run(store, now, settings, conversations=talks)
            languages: dict[str, str] = {}

            def language_of(account_id: str) -> str:
                if account_id not in languages:
                    account = store.get_account(account_id)
                    languages[account_id] = store.get_patient(account.patient_id).preferred_language
                return languages[account_id]

            doc = dry_run_document(plan, language_of)
            if fmt == "json":
                import json

                click.echo(json.dumps(doc, indent=1))
                return
            rows = dry_run_rows(plan)
        else:
            total = store.counts()["accounts"]
            if isinstance(workers, int):
                processes = workers
            else:  # auto: by the portfolio's size and this machine's cores
                processes = 1 if cluster else auto_workers(total)
                if processes > 1:
                    partitions = partitions or AUTO_PARTITIONS
            with _progress(console) as bar:
                task = bar.add_task("accounts", total=total)
                report = execute_run(
                    store,
                    now,
                    pm,
                    settings,
                    owner="carecollect run",
                    events=read_events(events) if events is not None else (),
                    progress=lambda done: bar.update(task, completed=done),
                    conversations=talks,
                    contacts=records,
                    workers=processes,
                    stale_after=config.lock_stale_after,
                    cluster=cluster,
                    partitions=partitions,
                )
            rows = run_rows(report)
    table = Table(title=f"{'Dry run' if dry_run else 'Run'} at {now.isoformat()}")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if dry_run:
        if last is not None and now < last:
            console.print(f"Note: the last run was at {last.isoformat()}; a real run here needs --force.")
        if show:
            _print_dry_run_lists(console, doc)
        return
    if processes > 1 and report.joined is None and cluster is None:  # a cluster's workers are its own
        console.print(
            f"Worker processes: {processes}, partitions: {partitions or processes * PARTITIONS_PER_WORKER}"
            + (" (--workers auto: one per core for this portfolio)" if workers == "auto" else ""),
            markup=False,
            highlight=False,
        )
    for route in routes(settings, report.sent_by_channel):
        console.print(
            f"{route.channel}: {route.sent} sent by plugin {route.plugin}"
            + (f" to {route.destination}" if route.destination else ""),
            markup=False,
            highlight=False,
        )
    if report.joined is not None:
        done = ", ".join(map(str, report.partitions_done)) or "none"
        console.print(
            f"Joined the run of {report.joined} (it took in the events and closes the run)"
            + ("" if cluster else f"; partitions done here: {done}"),  # a cluster's tasks keep no tally
            markup=False,
            highlight=False,
        )
    for line in report.hook_failures:
        console.print(f"[yellow]plugin hook failed:[/yellow] {line}", markup=True, highlight=False)


def _print_dry_run_lists(console: Console, doc: dict[str, Any]) -> None:
    """The planned messages and holds of a dry run's document, as two tables."""
    from rich.table import Table

    messages = Table(title=f"Planned messages: {len(doc['messages'])}")
    for col in ("account", "invoice", "step", "channel", "language", "due"):
        messages.add_column(col, overflow="fold")
    for m in doc["messages"]:
        messages.add_row(
            m["account_id"], m["invoice_id"] or "", m["step"], m["channel"], m["language"], m["due_at"]
        )
    console.print(messages, markup=False)
    holds = Table(title=f"Holds: {len(doc['holds'])}")
    for col in ("account", "invoice", "step", "channel", "earliest", "reasons"):
        holds.add_column(col, overflow="fold")
    for h in doc["holds"]:
        holds.add_row(
            h["account_id"],
            h["invoice_id"] or "",
            h["step"] or "",
            h["channel"] or "",
            h["earliest"] or "",
            "\n".join(f"{r['outcome']} {r['rule_id']}: {r['message']}" for r in h["reasons"]),
        )
    console.print(holds, markup=False)


@main.group()
def config() -> None:
    """The settings file (the database's name with .toml)."""


@config.command("check")
@_db_option()
def config_check(db: Path) -> None:
    """Check the settings file without running: unknown sections and keys, values of the wrong
    kind, plugin names that are not installed, [creditors.<id>] sections for creditors the
    database does not have, secrets (env:NAME, file:PATH) that cannot be read. Exit code 1 on
    any problem; else the effective settings per creditor, secrets shown by reference only.
    """
    from ..plugins.manager import make_plugin_manager
    from ..run.settings_file import check_config, config_path, effective_settings, load_config

    cfg = load_config(db)
    pm = make_plugin_manager()
    stored = None
    if db.exists():
        with _open(db) as store:
            stored = [c.id for c in store.creditors()]
    check_config(cfg, pm, stored)
    s = cfg.settings
    console = _console()
    console.print(
        f"Settings {config_path(db)} are complete: channels "
        + ", ".join(f"{c.value}={p}" for c, p in sorted(s.channel_plugins.items(), key=lambda i: i[0].value))
        + f"; payment providers: {', '.join(sorted(s.payment_providers)) or 'none'}"
        + f"; agency: {s.agency or 'none'}; run lock stale after {cfg.lock_stale_after.total_seconds():g} s"
    )
    console.print(effective_settings(cfg), markup=False, highlight=False)


def _reason_line(record: Mapping[str, Any]) -> str:
    """One stored reason as a line: its text written out now from the rule id and parameters
    (a record from before reasons carried parameters shows its stored text)."""
    from ..policy.explain import Reason

    try:
        reason = Reason.from_record(record)
    except ValidationError:  # not a reason this release can read: show what is there
        return (
            f"{record.get('outcome', '')} {record.get('rule_id', '')} ({record.get('source', '')}): "
            f"{record.get('message', '')}"
        )
    return f"{reason.outcome.value} {reason.rule_id} ({reason.source}): {reason.message}"


@main.command()
@_db_option()
@_store_option
@click.argument("account_id")
def explain(db: Path, account_id: str, store_url: str | None) -> None:
    """Why ACCOUNT_ID got, or did not get, each message (from the audit log)."""
    from rich.table import Table

    from ..run.execute import explain_account
    from .wording import counted

    console = _console()
    with _open(db, store_url) as store:
        store.get_account(account_id)
        items = explain_account(store, account_id)
    if not items:
        console.print(f"No decisions recorded for account {account_id} yet; run `carecollect run` first.")
        return
    table = Table(title=f"Account {account_id}: {counted(len(items), 'record', 'records')}", show_lines=True)
    for col in ("at", "kind", "invoice", "purpose", "channel", "reasons"):
        table.add_column(col, overflow="fold")
    for item in items:
        reasons = "\n".join(_reason_line(r) for r in item.get("reasons", ()))
        extra = ", ".join(
            f"{k}={v}"
            for k, v in item.items()
            if k
            not in {"at", "kind", "invoice_id", "purpose", "channel", "reasons", "account_id", "earliest"}
        )
        if item.get("earliest"):
            reasons = f"earliest {item['earliest']}\n{reasons}".strip()
        table.add_row(
            item["at"],
            item["kind"],
            str(item.get("invoice_id") or ""),
            str(item.get("purpose") or ""),
            str(item.get("channel") or ""),
            (reasons or extra),
            end_section=False,
        )
    console.print(table, markup=False)


def print_report(console: Console, report: CollectionReport) -> None:
    """Print ``report`` as rich tables.

    :param console: where to print.
    :param report: the report.
    """
    from rich.table import Table

    from ..reports import BUCKETS

    aging = Table(title=f"Aging of open balances on {report.now.date().isoformat()} (days past due)")
    aging.add_column("currency")
    for name in BUCKETS:
        aging.add_column(name, justify="right")
    aging.add_column("total", justify="right")
    aging.add_column("invoices", justify="right")
    for line in report.aging:
        aging.add_row(
            line.currency,
            *(str(a).removeprefix(f"{line.currency} ") for a in line.amounts),
            str(line.total),
            str(sum(line.invoices)),
        )
    console.print(aging)

    money = Table(
        title=f"Collected since {report.start.date().isoformat()}",
        caption="reversed: returned debits, chargebacks, provider refunds; net = gross - reversed",
    )
    money.add_column("currency")
    for col in ("collected (gross)", "payments", "reversed", "reversals", "net"):
        money.add_column(col, justify="right")
    for c in report.collected:
        money.add_row(
            c.currency, str(c.amount), str(c.payments), str(c.reversed), str(c.reversals), str(c.net)
        )
    console.print(money)

    msgs = Table(title=f"Messages sent since {report.start.date().isoformat()}: {report.messages.total}")
    for col in ("step (purpose)", "n", "channel", "n ", "language", " n"):
        msgs.add_column(col, justify="right" if col.strip() == "n" else "left")
    groups = (report.messages.by_purpose, report.messages.by_channel, report.messages.by_language)
    for i in range(max((len(g) for g in groups), default=0)):
        cells: list[str] = []
        for g in groups:
            cells.extend((g[i].label, str(g[i].count)) if i < len(g) else ("", ""))
        msgs.add_row(*cells)
    console.print(msgs)

    status = Table(title="Payment plans and disputes")
    status.add_column("plans (offered = proposed)")
    status.add_column("n", justify="right")
    status.add_column("disputes")
    status.add_column("n ", justify="right")
    for i in range(max(len(report.plans), len(report.disputes))):
        p = report.plans[i] if i < len(report.plans) else None
        d = report.disputes[i] if i < len(report.disputes) else None
        status.add_row(
            p.label if p else "", str(p.count) if p else "", d.label if d else "", str(d.count) if d else ""
        )
    console.print(status)

    held = Table(title="Rules that held accounts back (distinct accounts)")
    held.add_column("held")
    held.add_column("rule")
    held.add_column("accounts", justify="right")
    for h in report.held:
        held.add_row(h.kind, h.rule_id, str(h.accounts))
    console.print(held)

    if report.contact_centre is not None:
        cc = report.contact_centre
        centre = Table(title=f"Contact centre, {cc.day.isoformat()} ({cc.tz})")
        for col in (
            "queue",
            "offered",
            "answered",
            "service level",
            "target",
            "ASA (s)",
            "abandoned",
            "backlog",
            "late",
        ):
            centre.add_column(col, justify="left" if col == "queue" else "right")
        for q in cc.queues:
            asa = (
                "-"
                if q.average_speed_of_answer is None
                else f"{q.average_speed_of_answer.total_seconds():.0f}"
            )
            centre.add_row(
                q.queue,
                str(q.offered),
                str(q.answered),
                "-" if q.service_level is None else f"{q.service_level * 100:.1f} %",
                f"{q.target_share * 100:.0f} %",
                asa,
                "-" if q.abandonment_rate is None else f"{q.abandoned} ({q.abandonment_rate * 100:.1f} %)",
                str(q.waiting),
                str(q.past_deadline),
            )
        console.print(centre)


@main.command()
@_db_option()
@_store_option
@click.option("--as-of", "as_of", default=None, help=_AS_OF_HELP)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1),
    help="The period for money collected, messages and holds.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv", "html"]),
    default="text",
    show_default=True,
    help="text: tables; json and csv: the figures for machines; html: one page with charts "
    'that opens offline (needs pip install "carecollect[report]").',
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file (default: print it).",
)
def report(
    db: Path, as_of: str | None, days: int, fmt: str, output: Path | None, store_url: str | None
) -> None:
    """Aging, money collected, messages, plans, disputes, holds and the contact centre's day."""
    from ..reports import report_from_store
    from ..run.settings_file import load_config
    from .contacts import read_records

    now = parse_as_of(as_of)
    console = _console()
    with _open(db, store_url) as store:
        config = load_config(db)
        contacts = read_records(config.contacts) if config.contacts.exists() else None
        result = report_from_store(
            store,
            now,
            days=days,
            contacts=contacts,
            centre_country=config.centre_country,
            centre_tz=config.centre_tz,
        )
        history = None
        if fmt in ("json", "html"):
            from ..report_formats import history_from_store

            history = history_from_store(store, now, days)
    if fmt == "text" and output is None:
        print_report(console, result)
        if result.contact_centre is None:
            console.print(f"(no contact-centre records at {config.contacts})")
        return
    from ..report_formats import report_csv, report_document, report_html

    if fmt == "json":
        import json

        text = json.dumps(report_document(result, history), indent=1)
    elif fmt == "csv":
        text = report_csv(result)
    elif fmt == "html":
        text = report_html(result, history)
    else:  # text into a file
        import io

        from rich.console import Console

        buffer = io.StringIO()
        print_report(Console(file=buffer, width=140, highlight=False), result)
        text = buffer.getvalue()
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"Wrote the {fmt} report of {now.date().isoformat()} to {output}")


@main.command()
@_db_option("carecollect-demo.sqlite")
@click.option(
    "--invoices",
    "--size",
    "size",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="Invoices in the portfolio (any size: it is written in batches). --size is the old name.",
)
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 26), help="Simulated weeks.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same figures).")
@click.option(
    "--fresh", is_flag=True, help="Replace an earlier demo at --db (its database, settings, outbox)."
)
@click.option(
    "--no-run",
    is_flag=True,
    help="Only create the portfolio (no simulated runs): a store to time 'carecollect run' on.",
)
@click.option(
    "--deliver",
    type=click.Choice(["outbox", "smtp", "sms", "all"]),
    default="outbox",
    show_default=True,
    help="Where e-mail and SMS go: files in the outbox, or through the smtp and sms plugins to a local "
    'SMTP server and a local Twilio API server (pip install "carecollect[demo-channels]" and the plugins).',
)
def demo(db: Path, size: int, weeks: int, seed: int, fresh: bool, no_run: bool, deliver: str) -> None:
    """From nothing: a synthetic portfolio taken through a few simulated weeks of daily runs."""
    from rich.table import Table

    from ..demo import DEMO_START, create_demo_portfolio, run_demo
    from ..demo_channels import DemoDelivery, require_installed
    from ..run.settings_file import config_path, load_config
    from .wording import counted, duration

    console = _console()
    started = dt.datetime.now(dt.UTC)
    delivery = DemoDelivery(deliver)
    if no_run and delivery is not DemoDelivery.OUTBOX:
        raise click.UsageError("--deliver sends the runs' messages: it has no use with --no-run")
    require_installed(delivery)  # before the progress bar: one line, nothing written
    if no_run:
        facts = create_demo_portfolio(db, invoices=size, seed=seed, fresh=fresh)
        elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
        console.print(
            f"[bold]carecollect demo[/bold]: {facts.invoices} invoices of {facts.patients} patients "
            f"as of {DEMO_START.isoformat()} written to {db} in {elapsed:.1f} s (no runs). "
            f"Try: carecollect run --dry-run --db {db} --as-of {DEMO_START.isoformat()}"
        )
        return
    with _progress(console) as bar:
        days_task = bar.add_task("simulated days", total=None)
        accounts_task = bar.add_task("accounts in this run", total=None)

        def on_day(index: int, total: int, day: dt.date) -> None:
            bar.update(days_task, total=total, completed=index, description=f"day {day.isoformat()}")
            bar.reset(accounts_task)

        result = run_demo(
            db,
            size=size,
            weeks=weeks,
            seed=seed,
            fresh=fresh,
            on_day=on_day,
            progress=lambda done: bar.update(accounts_task, completed=done),
            deliver=delivery,
        )
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    f = result.portfolio
    console.print(
        f"[bold]carecollect demo[/bold]: {f.invoices} invoices of {f.patients} patients "
        f"(US, Norway, Germany, Bulgaria), {f.plans} plans, {f.disputes} disputes at the start; "
        f"{counted(len(result.days), 'daily run', 'daily runs')} over {duration(weeks, 'week')}."
    )
    runs = Table(title="Daily runs")
    for col in (
        "day",
        "sent",
        "held",
        "suppressed",
        "failed",
        "deferred",
        "paid",
        "STOP",
        "bounced",
        "disputes +/-",
        "contacts",
    ):
        runs.add_column(col, justify="left" if col == "day" else "right")
    for d in result.days:
        r = d.report
        runs.add_row(
            d.day.isoformat(),
            str(r.sent),
            str(r.plan.counts().get("hold", 0)),
            str(r.suppressed),
            str(r.failed),
            str(r.deferred_retry),
            str(d.payments),
            str(d.stop_replies),
            str(d.bounces),
            f"{d.disputes_opened}/{d.disputes_resolved}",
            str(d.contacts),
        )
    console.print(runs)
    console.print(
        "held: when planning, a rule said not now or not at all (quiet hours, a dispute, a cap, "
        "a waiting period); no message was made.\n"
        "suppressed: planned, but the check just before sending said no (the patient opted out, a "
        "cap filled up, no usable address); a later run tries again when the rule allows.\n"
        "deferred: an earlier attempt failed or was suppressed and waits for its retry time.",
        markup=False,
        highlight=False,
    )
    print_report(console, result.report)
    outbox_files = sum(1 for _ in result.outbox.iterdir()) if result.outbox.is_dir() else 0
    if result.letters is not None:
        console.print(
            f"{len(result.batches)} print batches (PDF and manifest) in {result.letters / 'batches'}{os.sep}"
        )
    _print_servers(console, result)
    contacts = load_config(result.db).contacts
    console.print(f"Done in {elapsed:.1f} s. Written:", highlight=False)
    for what, path in (
        ("database", result.db),
        ("settings", config_path(result.db)),
        (f"outbox ({counted(outbox_files, 'message', 'messages')})", result.outbox),
        ("contact-centre records", contacts),
    ):
        shown = f"{path}{os.sep}" if path.is_dir() else str(path)
        console.print(f"  {what}: {shown}", markup=False, highlight=False)
    if result.days and result.days[0].report.plan.messages:
        first = result.days[0].report.plan.messages[0].step.account_id
        console.print(f"Try: carecollect explain --db {result.db} {first}", markup=False, highlight=False)
    pages = demo_pages(result.db)
    if pages is not None:
        key_file, url = pages
        console.print(
            "Open a demo patient's pay page (needs carecollect[web] and carecollect-demo-gateway):\n"
            f"  carecollect web serve --db {result.db} --key-file {key_file} --demo-checkout\n"
            f"  then open {url}",
            soft_wrap=True,
            markup=False,
        )


def _print_servers(console: Console, result: DemoResult) -> None:
    """What the local SMTP and SMS servers received (``demo --deliver``), and what came back."""
    from .wording import counted

    lines = []
    for tally in result.servers:
        sent = sum(d.report.sent_by_channel.get(tally.channel, 0) for d in result.days)
        what = ("e-mail", "e-mails") if tally.channel.value == "email" else ("SMS", "SMS")
        kind = "SMTP server (aiosmtpd)" if tally.plugin == "smtp" else "Twilio Messages API server"
        written = f"{tally.written_to}{os.sep}" if tally.written_to.is_dir() else str(tally.written_to)
        lines.append(
            f"{tally.plugin} channel -> local {kind} at {tally.address}: received "
            f"{counted(tally.received, *what)} (the runs sent {sent} by {tally.channel.value}), written to {written}"
        )
        if tally.sample:
            lines.append("  the first, without its recipient:")
            lines.extend(f"    {name}: {value}" for name, value in tally.sample)
        back = [f"{n} {kind}" for kind, n in tally.came_back.items()]
        if back:
            lines.append(
                f"  came back signed as Twilio sends them, taken in through the {tally.plugin} channel: "
                + ", ".join(back)
            )
        if tally.plugin == "smtp":
            lines.append(
                "  e-mail bounces stay simulated: a delivery report in the outbox's format naming the "
                "Message-ID (the smtp channel reads no bounce messages)"
            )
    if lines:
        console.print("Delivered through local servers:", highlight=False)
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)


main.add_command(web)
main.add_command(migrate)
main.add_command(store)
main.add_command(outbox)
