"""The store on PostgreSQL (``pip install "carecollect[postgres]"``): psycopg 3 with a connection pool.

For a billing service or an agency: several processes share one database.

* money in ``bigint`` minor units beside its currency, instants in ``timestamptz``, dates in
  ``date``; every text key ``COLLATE "C"`` so ids sort as they do everywhere else (byte order);
* one transaction per unit of work (:meth:`PostgresStore.transaction`; nested blocks are
  savepoints), a connection per unit of work from a :class:`psycopg_pool.ConnectionPool`, a
  statement timeout on every connection (a statement that runs past it, or waits past it
  for a lock, fails the unit of work with :class:`~carecollect.store.base.StoreError`);
* the schema is versioned: :data:`POSTGRES_MIGRATIONS` are applied forward, each in its own transaction,
  by :func:`apply_migrations` (an owner role; ``carecollect migrate``). The run's role needs no DDL
  rights: a store opened without ``migrate=True`` only checks that the schema is current;
* row locks where the protocol reads and then writes (``SELECT ... FOR UPDATE`` on an outbox
  item, a queued hook event), and transaction-scoped advisory locks for what must be one at a
  time across processes: the run lock and the head of each audit chain (the main chain and one
  per partition of a run, :mod:`carecollect.store.audit`: the workers of a run do not wait for
  each other);
* ledger entries and audit records are append-only (triggers refuse UPDATE, DELETE and TRUNCATE).

Reads hand back the same plain values as :mod:`carecollect.store.codec` writes (instants as
ISO-8601 text in UTC, dates as ISO dates), so one codec serves SQLite and PostgreSQL alike and
:meth:`PostgresStore.iter_plan_facts` yields exactly what the SQLite store's does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
import psycopg.errors
from psycopg.adapt import Buffer
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from ..channels import Channel
from ..contact_centre.records import ContactChannel, ContactRecord, Direction, Topic
from ..creditors import Creditor
from ..disputes import Dispute
from ..errors import (
    ConfigurationError,
    DuplicateEntry,
    PartitionLeaseLost,
    StoreUnavailable,
    ValidationError,
)
from ..invoices import Invoice, InvoiceLine
from ..ledger import Ledger, LedgerEntry
from ..outreach import ContactAttempt, OutreachStep
from ..patients import Account, ContactPoint, Patient
from ..placements import AgencyPlacement
from ..plans import PaymentPlan
from ..relief.assistance import ApplicationStatus, AssistanceApplication
from ..remittance import CLAIM_RECORD
from ..timekeeping import require_aware
from . import codec
from .audit import AUDIT_ROW, heads_from_rows, record_from_row, seal_data, seal_due, verify_chains
from .base import (
    GENESIS_HASH,
    MAIN_CHAIN,
    PORTFOLIO_TABLES,
    RUN_LOCK_STALE_AFTER,
    SEAL_KIND,
    AccountSnapshot,
    AuditHead,
    AuditRecord,
    AuditVerification,
    ContactRequest,
    InboxItem,
    InvoiceRow,
    Mandate,
    NotFound,
    OutboxItem,
    OutboxStatus,
    PartitionLease,
    PendingHookEvent,
    PlanFacts,
    PortfolioRows,
    ProviderPayment,
    RunLock,
    RunLocked,
    StoreError,
    audit_hash,
    canonical_json,
    checked_partition,
    contact_facts_sql,
    next_retry_at,
)

__all__ = ["POSTGRES_MIGRATIONS", "Migration", "PostgresStore", "apply_migrations"]

_T = 'text COLLATE "C"'  # every text column: byte order, as SQLite and Python sort
_TS = "timestamptz"

#: Keys of the transaction-scoped advisory locks (fixed numbers in the ``carecollect`` range). An
#: audit chain's lock is the two-key ``(_LOCK_AUDIT, hashtext(chain))``: two-key locks are apart
#: from one-key ones, and two chain names that hash alike only share a queue.
_LOCK_MIGRATE = 0x43434D01
_LOCK_RUN = 0x43434D02
_LOCK_AUDIT = 0x43434D03

Migration = tuple[int, str, tuple[str, ...]]

_APPEND_ONLY = """
CREATE FUNCTION carecollect_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: add a correcting entry instead', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$"""


def _changed_function(name: str, accounts_of: str) -> str:
    """A statement-level trigger function that notes this transaction as a writer of the accounts
    ``accounts_of`` names (a ``SELECT`` over ``{rows}``, the rows the statement wrote), in one
    statement per written statement however many rows it wrote."""
    note = "INSERT INTO account_changes (account_id) {select} ON CONFLICT DO NOTHING;"
    new, old = accounts_of.format(rows="new_rows"), accounts_of.format(rows="old_rows")
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {note.format(select=new)}
    ELSIF TG_OP = 'UPDATE' THEN
        {note.format(select=f"{new} UNION {old}")}
    ELSE
        {note.format(select=old)}
    END IF;
    RETURN NULL;
END $$"""


def _changed_triggers(
    table: str, function: str, events: tuple[str, ...] = ("INSERT", "UPDATE", "DELETE")
) -> tuple[str, ...]:
    rows = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "NEW TABLE AS new_rows OLD TABLE AS old_rows"}
    return tuple(
        f"CREATE TRIGGER {table}_changed_{event.lower()} AFTER {event} ON {table} "
        f"REFERENCING {rows.get(event, 'OLD TABLE AS old_rows')} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        for event in events
    )


def _account_version_migration() -> tuple[str, ...]:
    """Migration 8: ``account_changes`` (which transactions wrote to which account), the one-row
    ``account_change_generation`` and the triggers that note the writers.

    Every statement that writes an account's row, its patient's row or contact points, a row of
    :data:`~carecollect.store.codec.ACCOUNT_TABLES` naming it (before or after the write) or an
    insurer's claim record on one of its invoices notes its transaction
    (``pg_current_xact_id()``) against the account, once per transaction. Writers only ever add
    rows of their own transaction: no writer waits for another, and none can deadlock on them.
    :meth:`PostgresStore.account_versions` reads, per account, the generation and the writers noted.
    """
    claims = (
        "SELECT DISTINCT i.account_id FROM invoices i JOIN {rows} r ON i.id = r.subject_id "
        f"WHERE r.kind = '{CLAIM_RECORD}'"
    )
    return (
        """CREATE TABLE account_changes (account_id text NOT NULL,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(), PRIMARY KEY (account_id, xid))""",
        "CREATE TABLE account_change_generation (n bigint NOT NULL)",
        "INSERT INTO account_change_generation VALUES (0)",
        _changed_function("carecollect_changed_by_account", "SELECT DISTINCT account_id FROM {rows}"),
        _changed_function("carecollect_changed_account", "SELECT DISTINCT id FROM {rows}"),
        _changed_function(
            "carecollect_changed_patient",
            "SELECT DISTINCT a.id FROM accounts a JOIN {rows} p ON a.patient_id = p.id",
        ),
        _changed_function(
            "carecollect_changed_points",
            "SELECT DISTINCT a.id FROM accounts a JOIN {rows} c ON a.patient_id = c.patient_id",
        ),
        _changed_function("carecollect_changed_claim", claims),
        *_changed_triggers("accounts", "carecollect_changed_account"),
        *_changed_triggers("patients", "carecollect_changed_patient"),
        *_changed_triggers("contact_points", "carecollect_changed_points"),
        *(
            t
            for table in codec.ACCOUNT_TABLES[:12]  # as of migration 8 (the list only grows)
            for t in _changed_triggers(table, "carecollect_changed_by_account")
        ),
        *_changed_triggers("audit_log", "carecollect_changed_claim", ("INSERT",)),
    )


#: The schema, as numbered migrations ``(version, description, statements)``. Only ever append.
POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "records: parties, invoices, the ledger, plans, disputes, outreach, placements, mandates",
        (
            f"""CREATE TABLE creditors (id {_T} PRIMARY KEY, name {_T} NOT NULL, role {_T} NOT NULL,
                country {_T} NOT NULL, nonprofit smallint NOT NULL CHECK (nonprofit IN (0, 1)), state {_T},
                business_name_for_voicemail {_T})""",
            f"""CREATE TABLE patients (id {_T} PRIMARY KEY, preferred_language {_T} NOT NULL,
                time_zones {_T} NOT NULL, name {_T} NOT NULL, country {_T}, state {_T}, confidential {_T} NOT NULL,
                confidential_channels {_T} NOT NULL, cease_requested_at {_TS}, date_of_birth date,
                handoff_consent_given_at {_TS}, handoff_consent_method {_T}, handoff_consent_reference {_T},
                handoff_consent_withdrawn_at {_TS})""",
            f"""CREATE TABLE contact_points (patient_id {_T} NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
                position integer NOT NULL, channel {_T} NOT NULL, address {_T} NOT NULL, consent_at {_TS},
                opted_out_at {_TS}, verified_at {_TS}, time_zone {_T}, undeliverable_at {_TS},
                PRIMARY KEY (patient_id, position))""",
            "CREATE INDEX contact_points_address ON contact_points(address)",
            f"""CREATE TABLE accounts (id {_T} PRIMARY KEY, patient_id {_T} NOT NULL REFERENCES patients(id),
                creditor_id {_T} NOT NULL REFERENCES creditors(id), currency {_T} NOT NULL,
                jurisdiction {_T} NOT NULL, guarantor_id {_T}, household_size integer, annual_income_minor bigint)""",
            "CREATE INDEX accounts_patient ON accounts(patient_id)",
            f"""CREATE TABLE invoices (id {_T} PRIMARY KEY, account_id {_T} NOT NULL REFERENCES accounts(id),
                currency {_T} NOT NULL, issue_date date NOT NULL, due_date date NOT NULL, first_statement_date date,
                status {_T} NOT NULL, kind {_T} NOT NULL, estimate_id {_T}, claim_status {_T} NOT NULL,
                insurer_paid_minor bigint, contractual_adjustment_minor bigint, claim_submitted_on date,
                payer_name {_T}, default_notice_given smallint NOT NULL DEFAULT 0
                CHECK (default_notice_given IN (0, 1)), received_on date)""",
            "CREATE INDEX invoices_account ON invoices(account_id)",
            f"""CREATE TABLE invoice_lines (invoice_id {_T} NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
                position integer NOT NULL, account_id {_T} NOT NULL, code {_T} NOT NULL, description {_T} NOT NULL,
                amount_minor bigint NOT NULL CHECK (amount_minor >= 0), service_date date NOT NULL,
                PRIMARY KEY (invoice_id, position))""",
            "CREATE INDEX invoice_lines_account ON invoice_lines(account_id)",
            f"""CREATE TABLE ledger_entries (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                account_id {_T} NOT NULL REFERENCES accounts(id), key {_T} NOT NULL, kind {_T} NOT NULL,
                amount_minor bigint NOT NULL CHECK (amount_minor > 0), currency {_T} NOT NULL, at {_TS} NOT NULL,
                invoice_id {_T}, source_id {_T} NOT NULL, reason {_T} NOT NULL, UNIQUE (account_id, key))""",
            "CREATE INDEX ledger_invoice ON ledger_entries(invoice_id)",
            f"""CREATE TABLE plans (id {_T} PRIMARY KEY, account_id {_T} NOT NULL REFERENCES accounts(id),
                invoice_ids {_T} NOT NULL, total_minor bigint NOT NULL, currency {_T} NOT NULL,
                created_at {_TS} NOT NULL, status {_T} NOT NULL, interest_rate_percent {_T} NOT NULL,
                paused_at {_TS})""",
            "CREATE INDEX plans_account ON plans(account_id)",
            f"""CREATE TABLE instalments (plan_id {_T} NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
                position integer NOT NULL, account_id {_T} NOT NULL, number integer NOT NULL, due_date date NOT NULL,
                amount_minor bigint NOT NULL, status {_T} NOT NULL, paid_minor bigint,
                PRIMARY KEY (plan_id, position))""",
            f"""CREATE TABLE disputes (id {_T} PRIMARY KEY, account_id {_T} NOT NULL REFERENCES accounts(id),
                invoice_id {_T}, reason {_T} NOT NULL, opened_at {_TS} NOT NULL, status {_T} NOT NULL,
                level integer NOT NULL, resolution_kind {_T}, resolution_amount_minor bigint,
                resolution_currency {_T}, resolution_approved_by {_T}, resolution_corrective_action {_T},
                resolution_after_insurance smallint, resolved_at {_TS}, first_response_at {_TS},
                met_patient_at {_TS}, follow_up_on date, follow_up_done_at {_TS}, satisfied smallint,
                in_writing smallint NOT NULL)""",
            "CREATE INDEX disputes_account ON disputes(account_id)",
            f"""CREATE TABLE outreach_steps (id {_T} PRIMARY KEY, account_id {_T} NOT NULL REFERENCES accounts(id),
                invoice_id {_T}, purpose {_T} NOT NULL, channels {_T} NOT NULL, due_at {_TS} NOT NULL,
                template_key {_T} NOT NULL, status {_T} NOT NULL, sent_at {_TS}, deadline date)""",
            "CREATE INDEX outreach_steps_account ON outreach_steps(account_id)",
            f"""CREATE TABLE contact_attempts (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id {_T} NOT NULL UNIQUE, step_id {_T} REFERENCES outreach_steps(id),
                account_id {_T} NOT NULL REFERENCES accounts(id), invoice_id {_T}, channel {_T} NOT NULL,
                at {_TS} NOT NULL, outcome {_T} NOT NULL, provider_message_id {_T})""",
            "CREATE INDEX contact_attempts_account ON contact_attempts(account_id)",
            "CREATE INDEX contact_attempts_provider_message ON contact_attempts(provider_message_id)",
            f"""CREATE TABLE placements (id {_T} PRIMARY KEY, account_id {_T} NOT NULL REFERENCES accounts(id),
                agency {_T} NOT NULL, amount_placed_minor bigint NOT NULL, currency {_T} NOT NULL,
                status {_T} NOT NULL, placed_at {_TS}, closed_at {_TS}, invoice_ids {_T} NOT NULL)""",
            "CREATE INDEX placements_account ON placements(account_id)",
            f"""CREATE TABLE remittances (placement_id {_T} NOT NULL REFERENCES placements(id),
                position integer NOT NULL, id {_T} NOT NULL, account_id {_T} NOT NULL, amount_minor bigint NOT NULL,
                collected_at {_TS} NOT NULL, fee_minor bigint, PRIMARY KEY (placement_id, id))""",
            f"""CREATE TABLE mandates (plan_id {_T} PRIMARY KEY REFERENCES plans(id),
                account_id {_T} NOT NULL REFERENCES accounts(id), provider {_T} NOT NULL, method {_T} NOT NULL,
                reference {_T} NOT NULL, created_at {_TS} NOT NULL, revoked_at {_TS})""",
            "CREATE INDEX mandates_account ON mandates(account_id)",
            "CREATE INDEX mandates_reference ON mandates(provider, reference)",
            f"""CREATE TABLE provider_payments (provider {_T} NOT NULL, reference {_T} NOT NULL,
                account_id {_T} NOT NULL REFERENCES accounts(id), payment_id {_T} NOT NULL, plan_id {_T},
                instalment integer, PRIMARY KEY (provider, reference))""",
            f"""CREATE TABLE assistance_applications (id {_T} PRIMARY KEY,
                account_id {_T} NOT NULL REFERENCES accounts(id), received_on date NOT NULL,
                status {_T} NOT NULL, decided_on date)""",
            "CREATE INDEX assistance_applications_account ON assistance_applications(account_id)",
            f"""CREATE TABLE contact_requests (contact_id {_T} PRIMARY KEY,
                account_id {_T} NOT NULL REFERENCES accounts(id), channel {_T} NOT NULL, topic {_T} NOT NULL,
                started_at {_TS} NOT NULL, invoice_id {_T}, queue {_T}, respond_by {_TS} NOT NULL,
                reply_by {_T} NOT NULL, message {_T} NOT NULL)""",
            "CREATE INDEX contact_requests_account ON contact_requests(account_id)",
        ),
    ),
    (
        2,
        "the run's own records: outbox, processed events, run lock, hook-event queue, inbox, audit log",
        (
            f"""CREATE TABLE outbox (key {_T} PRIMARY KEY, kind {_T} NOT NULL, account_id {_T},
                payload {_T} NOT NULL, status {_T} NOT NULL, recorded_at {_TS} NOT NULL, updated_at {_TS},
                attempts integer NOT NULL DEFAULT 0, next_retry_at {_TS}, last_error {_T}, result {_T})""",
            "CREATE INDEX outbox_due ON outbox(status, next_retry_at)",
            f"""CREATE TABLE processed_events (source {_T} NOT NULL, event_id {_T} NOT NULL,
                processed_at {_TS} NOT NULL, PRIMARY KEY (source, event_id))""",
            f"""CREATE TABLE run_lock (name {_T} PRIMARY KEY CHECK (name = 'run'), owner {_T} NOT NULL,
                pid integer NOT NULL, started_at {_TS} NOT NULL, heartbeat_at {_TS} NOT NULL,
                stale_after_seconds double precision NOT NULL)""",
            f"""CREATE TABLE hook_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, hook {_T} NOT NULL,
                arguments {_T} NOT NULL, targets {_T} NOT NULL, recorded_at {_TS} NOT NULL,
                attempts integer NOT NULL DEFAULT 0, last_error {_T}, done_at {_TS})""",
            "CREATE INDEX hook_events_pending ON hook_events(seq) WHERE done_at IS NULL",
            f"""CREATE TABLE hook_deliveries (seq bigint NOT NULL REFERENCES hook_events(seq),
                plugin {_T} NOT NULL, delivered_at {_TS} NOT NULL, PRIMARY KEY (seq, plugin))""",
            f"""CREATE TABLE inbox (arrival bigint GENERATED ALWAYS AS IDENTITY, kind {_T} NOT NULL,
                plugin {_T} NOT NULL, event_id {_T} NOT NULL, headers {_T} NOT NULL, body bytea NOT NULL,
                received_at {_TS} NOT NULL, taken_at {_TS}, outcome {_T}, attempts integer NOT NULL DEFAULT 0,
                PRIMARY KEY (kind, plugin, event_id))""",
            "CREATE INDEX inbox_pending ON inbox(received_at, arrival) WHERE taken_at IS NULL",
            f"""CREATE TABLE audit_log (seq bigint PRIMARY KEY, at {_TS} NOT NULL, kind {_T} NOT NULL,
                subject_id {_T} NOT NULL, data {_T} NOT NULL, prev_hash {_T} NOT NULL, hash {_T} NOT NULL)""",
            "CREATE INDEX audit_subject ON audit_log(subject_id)",
        ),
    ),
    (
        3,
        "the ledger and the audit log are append-only (UPDATE, DELETE and TRUNCATE refused)",
        (
            _APPEND_ONLY,
            "CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION carecollect_append_only()",
            "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION carecollect_append_only()",
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION carecollect_append_only()",
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION carecollect_append_only()",
        ),
    ),
    (
        4,
        "partition leases of a run (its workers take them with FOR UPDATE SKIP LOCKED, beat, fence, finish)",
        (
            f"""CREATE TABLE partition_leases (run_key {_T} NOT NULL, partition integer NOT NULL,
                partitions integer NOT NULL, owner {_T}, fence bigint NOT NULL DEFAULT 0,
                heartbeat_at {_TS}, done_at {_TS}, PRIMARY KEY (run_key, partition))""",
        ),
    ),
    (
        5,
        "each account keeps its patient's partition key (a partition's plan reads filter on it)",
        (
            # the same number as carecollect.store.codec.partition_key, kept by the database
            "ALTER TABLE accounts ADD COLUMN partition_key bigint NOT NULL "
            "GENERATED ALWAYS AS (('x' || substr(md5(patient_id), 1, 8))::bit(32)::bigint) STORED",
        ),
    ),
    (
        6,
        "audit chains: each record in one chain (the main one or a partition's) at a position of its own; "
        "the log's order from a sequence (appenders of different chains do not wait for each other)",
        (
            f"ALTER TABLE audit_log ADD COLUMN chain {_T} NOT NULL DEFAULT ''",
            "ALTER TABLE audit_log ADD COLUMN chain_seq bigint",
            # the one UPDATE the log ever gets: the records written so far keep their place in the main chain
            "ALTER TABLE audit_log DISABLE TRIGGER audit_append_only",
            "UPDATE audit_log SET chain_seq = seq",
            "ALTER TABLE audit_log ENABLE TRIGGER audit_append_only",
            "ALTER TABLE audit_log ALTER COLUMN chain_seq SET NOT NULL",
            "CREATE UNIQUE INDEX audit_chain ON audit_log(chain, chain_seq)",
            "CREATE SEQUENCE audit_log_seq OWNED BY audit_log.seq",
            "SELECT setval('audit_log_seq', COALESCE((SELECT MAX(seq) FROM audit_log), 0) + 1, false)",
            "ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq')",
        ),
    ),
    (
        7,
        "instalments indexed by account (a batch's accounts are read without scanning every plan's instalments)",
        ("CREATE INDEX instalments_account ON instalments(account_id)",),
    ),
    (
        8,
        "each account's version: the transactions that wrote to anything its snapshot holds, noted by "
        "triggers (the run checks them, not the whole server, before using an account it read)",
        _account_version_migration(),
    ),
)

_VERSION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, description {_T} NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)

_TABLES = (
    "creditors",
    "patients",
    "contact_points",
    "accounts",
    *(t for t in codec.ACCOUNT_TABLES if t != "mandates"),  # as the SQLite store's counts
    "outbox",
    "processed_events",
    "audit_log",
)


class _InstantLoader(TimestamptzLoader):
    """``timestamptz`` read as the codec writes instants: ISO-8601 in UTC with ``+00:00``.

    The session's time zone is UTC, so the server writes ``2026-03-01 11:00:00+00``; whole
    seconds are rewritten as text, fractions go through a datetime (PostgreSQL drops trailing
    zeros, Python does not).
    """

    def load(self, data: Buffer) -> str:  # type: ignore[override]
        text = bytes(data).decode("ascii")
        if len(text) == 22 and text.endswith("+00"):
            return f"{text[:10]}T{text[11:19]}+00:00"
        return codec.iso_instant(super().load(data))


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("timestamptz", _InstantLoader)
    conn.adapters.register_loader("date", TextLoader)


def _batch_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("Store", "batch_size", f"must be a positive int, got {value!r}")
    return value


def _cols(table: str) -> str:
    return ", ".join(codec.COLUMNS[table])


def _insert(table: str) -> str:
    cols = codec.COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"


def _upsert(table: str, key: str = "id") -> str:
    cols = codec.COLUMNS[table]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != key)
    return f"{_insert(table)} ON CONFLICT ({key}) DO UPDATE SET {updates}"


def _insert_rows(table: str, columns: Sequence[str] | None = None) -> bytes:
    """``INSERT INTO table (columns) SELECT ...`` of many rows in one parameter: a JSON array of
    objects (:func:`_json_rows`), each turned into the table's row type by the server with the
    table's own column types. One statement and one round trip for a whole batch, where an
    ``executemany`` sends and the server runs a statement per row."""
    cols = ", ".join(columns or codec.COLUMNS[table])
    return (
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{table}, %s::json)"
    ).encode()


def _json_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` (plain values in ``columns``' order, as the codec writes them) as the JSON array
    :func:`_insert_rows` reads."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], ensure_ascii=False)


def _applied(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT to_regclass('schema_version') IS NOT NULL",
    ).fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(got[0] or 0) if got else 0


def apply_migrations(
    conninfo: str, *, dry_run: bool = False, target: int | None = None, connect_timeout: int = 10
) -> list[Migration]:
    """Bring the database's schema up to date (or to ``target``): apply what is missing, in order.

    Each migration runs in a transaction of its own with its ``schema_version`` row, under an
    advisory lock, so two migrators one after the other apply each migration once. Run it as the
    role that owns the schema; the run's own role needs no DDL rights.

    :param conninfo: a libpq connection string or ``postgresql://`` URL.
    :param dry_run: change nothing; return what would be applied.
    :param target: stop at this version (tests migrate from an older schema this way).
    :returns: the migrations applied (or, with ``dry_run``, that would be).
    :raises StoreError: the database's schema is newer than this carecollect.
    """
    known = POSTGRES_MIGRATIONS[-1][0]
    goal = known if target is None else target
    if not 0 <= goal <= known:
        raise ValidationError("migrate", "target", f"must be between 0 and {known}, got {goal}")
    done: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout) as conn:
        current = _applied(conn)
        if current > known:
            raise StoreError(
                f"Store: schema version {current} is newer than this carecollect knows ({known}); "
                "upgrade carecollect"
            )
        pending = [m for m in POSTGRES_MIGRATIONS if current < m[0] <= goal]
        if dry_run:
            return pending
        for version, description, statements in pending:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
                conn.execute(_VERSION_TABLE)
                if _applied(conn) >= version:  # another migrator got there first
                    continue
                for statement in statements:
                    conn.execute(statement.encode())
                conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                    (version, description),
                )
            done.append((version, description, statements))
    return done


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """Whether ``exc`` says the server went away (not a statement's own failure): no SQLSTATE (the
    client saw the connection close, or the pool had none to give), a connection exception
    (class 08), or the server shutting down or starting up (57P01, 57P02, 57P03)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


class _Local(threading.local):
    conn: psycopg.Connection[Any] | None = None
    depth: int = 0


class PostgresStore:
    """The :class:`~carecollect.store.base.Store` on a PostgreSQL database.

    One store object may be used from several threads: each thread's unit of work has a
    connection of its own from the pool.

    :param conninfo: a libpq connection string or ``postgresql://user@host:port/db`` URL.
    :param min_size: connections the pool keeps open.
    :param max_size: connections the pool opens at most.
    :param statement_timeout: the longest any one statement may run or wait for a lock.
    :param migrate: bring the schema up to date first (needs DDL rights); without it the
        store refuses a schema that is not current.
    :param connect_timeout: seconds to wait for the pool's first connection.
    :raises StoreError: no connection within ``connect_timeout``, or the schema is not this
        carecollect's (older without ``migrate``, or newer).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        statement_timeout: dt.timedelta = dt.timedelta(seconds=30),
        migrate: bool = False,
        connect_timeout: float = 30.0,
    ) -> None:
        if statement_timeout <= dt.timedelta(0):
            raise ValidationError(
                "PostgresStore", "statement_timeout", f"must be positive, got {statement_timeout}"
            )
        if migrate:
            apply_migrations(conninfo)
        self._statement_timeout = statement_timeout
        self._conninfo = conninfo  # for url_of: a worker or the heartbeat opens its own handle
        self._dbname = str(
            psycopg.conninfo.conninfo_to_dict(conninfo).get("dbname", "")
        )  # no password in reprs
        millis = max(1, int(statement_timeout.total_seconds() * 1000))
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "options": f"-c statement_timeout={millis} -c TimeZone=UTC -c DateStyle=ISO",
            },
            configure=_configure,
            open=False,
        )
        self._local = _Local()
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(
                f"Store: no connection to the PostgreSQL database {self._dbname!r} within "
                f"{connect_timeout:g} s; is the server up and the URL right?"
            ) from exc
        try:
            current = self.schema_version()
            known = POSTGRES_MIGRATIONS[-1][0]
            if current > known:
                raise StoreError(
                    f"Store: schema version {current} is newer than this carecollect knows ({known}); "
                    "upgrade carecollect to open it"
                )
            if current < known:
                raise StoreError(
                    f"Store: schema version {current}, this carecollect needs {known}; "
                    "run `carecollect migrate` as the schema's owner"
                )
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore(dbname={self._dbname!r})"

    def close(self) -> None:
        """Close every pooled connection (the store cannot be used afterwards)."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- units of work ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work on one pooled connection: ``BEGIN`` ... ``COMMIT``, ``ROLLBACK`` on an exception.

        A nested block is a savepoint: if it fails, only its own writes are undone. A statement
        that runs longer than the statement timeout fails it with :class:`StoreError`.
        """
        local = self._local
        if local.conn is not None:
            local.depth += 1
            try:
                with local.conn.transaction():
                    yield
            finally:
                local.depth -= 1
            return
        try:
            with self._pool.connection() as conn:
                local.conn, local.depth = conn, 1
                try:
                    with conn.transaction():
                        yield
                finally:
                    local.conn, local.depth = None, 0
        except psycopg.errors.QueryCanceled as exc:
            raise self._timed_out() from exc
        except psycopg.OperationalError as exc:
            if _connection_lost(exc):
                raise self._lost(exc) from exc
            raise

    @contextmanager
    def _cur(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.transaction():
            conn = self._local.conn
            assert conn is not None
            with conn.cursor() as cur:
                yield cur

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """A store method's own unit of work: alone, a transaction; inside a caller's, it joins it.

        For methods that read, or read and then write at most once as their last statement: they
        leave nothing partial behind when they fail, so no savepoint (two round trips) is needed.
        Methods with several writes use :meth:`transaction`, a savepoint when nested. As always on
        PostgreSQL, a statement that fails inside a unit of work fails the whole unit of work.
        """
        if self._local.conn is not None:
            yield
            return
        with self.transaction():
            yield

    @contextmanager
    def _unit_cur(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._unit():
            conn = self._local.conn
            assert conn is not None
            with conn.cursor() as cur:
                yield cur

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor for one statement: the thread's unit of work's, else a pooled connection in
        autocommit (one statement is atomic by itself; no BEGIN and COMMIT round trips)."""
        conn = self._local.conn
        if conn is not None:
            with conn.cursor() as cur:
                yield cur
            return
        try:
            with self._pool.connection() as own, own.cursor() as cur:
                yield cur
        except psycopg.errors.QueryCanceled as exc:
            raise self._timed_out() from exc
        except psycopg.OperationalError as exc:
            if _connection_lost(exc):
                raise self._lost(exc) from exc
            raise

    def _timed_out(self) -> StoreError:
        return StoreError(
            f"Store: a statement ran or waited longer than the statement timeout "
            f"({self._statement_timeout.total_seconds():g} s); the unit of work was rolled back"
        )

    def _lost(self, exc: psycopg.OperationalError) -> StoreUnavailable:
        what = (
            "no connection within the pool's timeout"
            if isinstance(exc, PoolTimeout)
            else "the connection was lost"
        )
        return StoreUnavailable(
            f"Store: the PostgreSQL database {self._dbname!r} is unavailable ({what}: the server stopped, "
            "restarted or cannot be reached); the unit of work in flight was rolled back, or committed "
            "whole if the connection went during its commit. Run again once the server is back"
        )

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._statement() as cur:
            # A read that matches an array (a batch's accounts, invoices) is planned for that array
            # each time, never from a prepared statement's generic plan: a generic plan cannot see
            # how long the array is, nor use the statistics of what it holds, and it searches the
            # array element by element for every row it scans (a planned constant is hashed). On a
            # table that grows during the run that made each batch's read cost more than the last.
            cur.execute(sql.encode(), params, prepare=False if "= ANY(" in sql else None)
            return cur.fetchall()

    def _first(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._statement() as cur:
            cur.execute(sql.encode(), params)
            return cur.fetchone()

    def _one(self, sql: str, params: Sequence[Any], record: str, ident: str) -> tuple[Any, ...]:
        row = self._first(sql, params)
        if row is None:
            raise NotFound(record, ident)
        return row

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._statement() as cur:
            cur.execute(sql.encode(), params)
            return cur.rowcount

    # -- schema ------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest migration applied to the database."""
        with self._unit_cur() as cur:
            return _applied(cur.connection)

    def applied_migrations(self) -> list[tuple[int, str, str]]:
        """``(version, description, applied_at)`` of every migration applied, in order."""
        return [
            (int(r[0]), r[1], r[2])
            for r in self._all("SELECT version, description, applied_at FROM schema_version ORDER BY version")
        ]

    # -- creditors, patients, accounts ---------------------------------------------------------
    def put_creditor(self, creditor: Creditor) -> None:
        """Insert or replace a creditor."""
        self._exec(_upsert("creditors"), codec.creditor_row(creditor))

    def get_creditor(self, creditor_id: str) -> Creditor:
        """The creditor with that id."""
        return codec.creditor_from_row(
            self._one(
                f"SELECT {_cols('creditors')} FROM creditors WHERE id = %s",
                (creditor_id,),
                "Creditor",
                creditor_id,
            )
        )

    def creditors(self) -> list[Creditor]:
        """Every creditor, by id."""
        return [
            codec.creditor_from_row(r)
            for r in self._all(f"SELECT {_cols('creditors')} FROM creditors ORDER BY id")
        ]

    def put_patient(self, patient: Patient) -> None:
        """Insert or replace a patient and their contact points (a known dead address keeps its bounce mark)."""
        with self._cur() as cur:
            cur.execute(
                "SELECT channel, address, undeliverable_at FROM contact_points "
                "WHERE patient_id = %s AND undeliverable_at IS NOT NULL FOR UPDATE",
                (patient.id,),
            )
            marks = {(r[0], r[1]): r[2] for r in cur.fetchall()}
            rows = codec.contact_point_rows(patient)
            if marks:
                rows = [(*r[:-1], r[-1] or marks.get((r[2], r[3]))) for r in rows]
            cur.execute(_upsert("patients").encode(), codec.patient_row(patient))
            cur.execute("DELETE FROM contact_points WHERE patient_id = %s", (patient.id,))
            if rows:
                cur.executemany(_insert("contact_points").encode(), rows)

    def _points(self, where: str, params: Sequence[Any]) -> dict[str, list[ContactPoint]]:
        out: dict[str, list[ContactPoint]] = defaultdict(list)
        for r in self._all(
            f"SELECT {_cols('contact_points')} FROM contact_points WHERE {where} ORDER BY patient_id, position",
            params,
        ):
            out[r[0]].append(codec.contact_point_from_row(r))
        return out

    def get_patient(self, patient_id: str) -> Patient:
        """The patient with that id, with their contact points."""
        with self._unit():
            row = self._one(
                f"SELECT {_cols('patients')} FROM patients WHERE id = %s",
                (patient_id,),
                "Patient",
                patient_id,
            )
            points = self._points("patient_id = %s", (patient_id,)).get(patient_id, [])
        return codec.patient_from_row(row, points)

    def patients_with_address(self, address: str) -> list[tuple[str, Channel]]:
        """Patients (and the channel) whose contact point has exactly ``address``."""
        rows = self._all(
            "SELECT DISTINCT patient_id, channel FROM contact_points WHERE address = %s ORDER BY patient_id, channel",
            (address,),
        )
        return [(r[0], Channel(r[1])) for r in rows]

    def patients(self) -> Iterator[Patient]:
        """Every patient, by id (read 1000 at a time)."""
        last = ""
        while True:
            with self._unit():
                rows = self._all(
                    f"SELECT {_cols('patients')} FROM patients WHERE id > %s ORDER BY id LIMIT 1000", (last,)
                )
                if not rows:
                    return
                points = self._points("patient_id BETWEEN %s AND %s", (rows[0][0], rows[-1][0]))
            for r in rows:
                yield codec.patient_from_row(r, points.get(r[0], []))
            last = rows[-1][0]

    def put_account(self, account: Account) -> None:
        """Insert or replace an account; its patient and creditor must be in the store."""
        self._exec(_upsert("accounts"), codec.account_row(account))

    def get_account(self, account_id: str) -> Account:
        """The account with that id."""
        return codec.account_from_row(
            self._one(
                f"SELECT {_cols('accounts')} FROM accounts WHERE id = %s",
                (account_id,),
                "Account",
                account_id,
            )
        )

    # -- invoices ------------------------------------------------------------------------------
    def put_invoice(self, invoice: Invoice) -> None:
        """Insert or replace an invoice with its lines; its account must be in the store."""
        with self._cur() as cur:
            cur.execute(_upsert("invoices").encode(), codec.invoice_row(invoice))
            cur.execute("DELETE FROM invoice_lines WHERE invoice_id = %s", (invoice.id,))
            lines = codec.invoice_line_rows(invoice)
            if lines:
                cur.executemany(_insert("invoice_lines").encode(), lines)

    def _invoices(self, where: str, params: Sequence[Any]) -> list[Invoice]:
        with self._unit():
            rows = self._all(
                f"SELECT {_cols('invoices')} FROM invoices WHERE {where} ORDER BY account_id, id", params
            )
            if not rows:
                return []
            line_where = where.replace("id", "invoice_id", 1) if where.startswith("id") else where
            line_rows = self._all(
                f"SELECT {_cols('invoice_lines')} FROM invoice_lines WHERE {line_where} ORDER BY invoice_id, position",
                params,
            )
        currency = {r[0]: r[2] for r in rows}
        lines: dict[str, list[InvoiceLine]] = defaultdict(list)
        for r in line_rows:
            if r[0] in currency:
                lines[r[0]].append(codec.invoice_line_from_row(r, currency[r[0]]))
        return [codec.invoice_from_row(r, lines[r[0]]) for r in rows]

    def get_invoice(self, invoice_id: str) -> Invoice:
        """The invoice with that id, with its lines."""
        found = self._invoices("id = %s", (invoice_id,))
        if not found:
            raise NotFound("Invoice", invoice_id)
        return found[0]

    def invoices_for(self, account_id: str) -> tuple[Invoice, ...]:
        """An account's invoices, by id."""
        return tuple(self._invoices("account_id = %s", (account_id,)))

    # -- ledger ------------------------------------------------------------------------------
    def append_ledger(self, account_id: str, entries: Iterable[LedgerEntry]) -> int:
        """Append entries to the account's ledger; identical entries already there are skipped.

        :returns: how many were new.
        :raises DuplicateEntry: a key is already used on this account by a different entry.
        """
        added = 0
        cols = _cols("ledger_entries")
        with self._cur() as cur:
            for entry in entries:
                cur.execute(
                    (_insert("ledger_entries") + " ON CONFLICT (account_id, key) DO NOTHING").encode(),
                    codec.ledger_entry_row(account_id, entry),
                )
                if cur.rowcount == 1:
                    added += 1
                    continue
                cur.execute(
                    f"SELECT {cols} FROM ledger_entries WHERE account_id = %s AND key = %s".encode(),
                    (account_id, entry.key),
                )
                old = cur.fetchone()
                if old is None or codec.ledger_entry_from_row(old) != entry:
                    raise DuplicateEntry(
                        f"Ledger {account_id}: key {entry.key!r} is already used by a different entry; "
                        "use a new key for a new entry"
                    )
        return added

    def ledger(self, account_id: str) -> Ledger:
        """The account's ledger, entries in posting order."""
        with self._unit():
            account = self.get_account(account_id)
            rows = self._all(
                f"SELECT {_cols('ledger_entries')} FROM ledger_entries WHERE account_id = %s ORDER BY seq",
                (account_id,),
            )
        return Ledger(account_id, account.currency, tuple(codec.ledger_entry_from_row(r) for r in rows))

    # -- plans, disputes, outreach, placements --------------------------------------------------
    def put_plan(self, plan: PaymentPlan) -> None:
        """Insert or replace a plan with its instalments."""
        with self._cur() as cur:
            cur.execute(_upsert("plans").encode(), codec.plan_row(plan))
            cur.execute("DELETE FROM instalments WHERE plan_id = %s", (plan.id,))
            rows = codec.instalment_rows(plan)
            if rows:
                cur.executemany(_insert("instalments").encode(), rows)

    def _plans(self, where: str, params: Sequence[Any]) -> list[PaymentPlan]:
        with self._unit():
            rows = self._all(
                f"SELECT {_cols('plans')} FROM plans WHERE {where} ORDER BY account_id, id", params
            )
            if not rows:
                return []
            inst_where = where.replace("id", "plan_id", 1) if where.startswith("id") else where
            inst_rows = self._all(
                f"SELECT {_cols('instalments')} FROM instalments WHERE {inst_where} ORDER BY plan_id, position",
                params,
            )
        insts: dict[str, list[Any]] = defaultdict(list)
        for r in inst_rows:
            insts[r[0]].append(r)
        return [codec.plan_from_row(r, insts[r[0]]) for r in rows]

    def get_plan(self, plan_id: str) -> PaymentPlan:
        """The plan with that id."""
        found = self._plans("id = %s", (plan_id,))
        if not found:
            raise NotFound("PaymentPlan", plan_id)
        return found[0]

    def put_dispute(self, dispute: Dispute) -> None:
        """Insert or replace a dispute."""
        self._exec(_upsert("disputes"), codec.dispute_row(dispute))

    def get_dispute(self, dispute_id: str) -> Dispute:
        """The dispute with that id."""
        return codec.dispute_from_row(
            self._one(
                f"SELECT {_cols('disputes')} FROM disputes WHERE id = %s",
                (dispute_id,),
                "Dispute",
                dispute_id,
            )
        )

    def put_step(self, step: OutreachStep) -> None:
        """Insert or replace an outreach step."""
        self._exec(_upsert("outreach_steps"), codec.step_row(step))

    _PUT_STEPS = (
        _insert_rows("outreach_steps")
        + b" ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in codec.COLUMNS["outreach_steps"][1:]).encode()
    )

    def put_steps(self, steps: Sequence[OutreachStep]) -> None:
        """Insert or replace many steps in one statement (of two with one id, the later wins)."""
        latest = {s.id: s for s in steps}
        if not latest:
            return
        rows = _json_rows(codec.COLUMNS["outreach_steps"], map(codec.step_row, latest.values()))
        with self._statement() as cur:
            cur.execute(self._PUT_STEPS, (rows,))

    def get_step(self, step_id: str) -> OutreachStep:
        """The step with that id."""
        return codec.step_from_row(
            self._one(
                f"SELECT {_cols('outreach_steps')} FROM outreach_steps WHERE id = %s",
                (step_id,),
                "OutreachStep",
                step_id,
            )
        )

    def add_attempt(self, attempt: ContactAttempt) -> bool:
        """Record an attempt; the same id again is ignored. Returns True if it was new."""
        return (
            self._exec(
                _insert("contact_attempts") + " ON CONFLICT (id) DO NOTHING", codec.attempt_row(attempt)
            )
            == 1
        )

    def add_attempts(self, attempts: Sequence[ContactAttempt]) -> int:
        """Record many attempts in one statement; ids already recorded are ignored.

        :returns: how many were new.
        """
        if not attempts:
            return 0
        rows = _json_rows(codec.COLUMNS["contact_attempts"], map(codec.attempt_row, attempts))
        with self._statement() as cur:
            cur.execute(
                _insert_rows("contact_attempts") + b" ON CONFLICT (id) DO NOTHING RETURNING id", (rows,)
            )
            return len(cur.fetchall())

    def attempt_by_provider_message_id(self, provider_message_id: str) -> ContactAttempt | None:
        """The first attempt that carried the channel's ``provider_message_id`` (``None``: none)."""
        row = self._first(
            f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE provider_message_id = %s "
            "ORDER BY seq LIMIT 1",
            (provider_message_id,),
        )
        return None if row is None else codec.attempt_from_row(row)

    def attempts_for(self, account_id: str) -> tuple[ContactAttempt, ...]:
        """The account's attempts, oldest first."""
        rows = self._all(
            f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE account_id = %s ORDER BY at, seq",
            (account_id,),
        )
        return tuple(codec.attempt_from_row(r) for r in rows)

    def put_placement(self, placement: AgencyPlacement) -> None:
        """Insert or replace a placement; remittances already stored are kept, new ones added."""
        with self._cur() as cur:
            cur.execute(_upsert("placements").encode(), codec.placement_row(placement))
            rows = codec.remittance_rows(placement)
            if rows:
                cur.executemany(
                    (_insert("remittances") + " ON CONFLICT (placement_id, id) DO NOTHING").encode(), rows
                )

    def _placements(self, where: str, params: Sequence[Any]) -> list[AgencyPlacement]:
        with self._unit():
            rows = self._all(
                f"SELECT {_cols('placements')} FROM placements WHERE {where} ORDER BY account_id, id", params
            )
            if not rows:
                return []
            rem_where = where.replace("id", "placement_id", 1) if where.startswith("id") else where
            rem_rows = self._all(
                f"SELECT {_cols('remittances')} FROM remittances WHERE {rem_where} ORDER BY placement_id, position",
                params,
            )
        rems: dict[str, list[Any]] = defaultdict(list)
        for r in rem_rows:
            rems[r[0]].append(r)
        return [codec.placement_from_row(r, rems[r[0]]) for r in rows]

    def get_placement(self, placement_id: str) -> AgencyPlacement:
        """The placement with that id, with its remittances."""
        found = self._placements("id = %s", (placement_id,))
        if not found:
            raise NotFound("AgencyPlacement", placement_id)
        return found[0]

    # -- mandates and provider payment references ---------------------------------------------
    _MANDATE = "plan_id, account_id, provider, method, reference, created_at, revoked_at"

    @staticmethod
    def _mandate(r: Sequence[Any]) -> Mandate:
        return Mandate(
            r[0], r[1], r[2], r[3], r[4], codec.instant_from_iso(r[5]), codec.opt_instant_from_iso(r[6])
        )

    def _mandates(self, where: str, params: Sequence[Any]) -> list[Mandate]:
        return [
            self._mandate(r)
            for r in self._all(f"SELECT {self._MANDATE} FROM mandates WHERE {where} ORDER BY plan_id", params)
        ]

    def put_mandate(self, mandate: Mandate) -> None:
        """Insert or replace the mandate of ``mandate.plan_id`` (one per plan)."""
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self._MANDATE.split(", ")[1:])
        self._exec(
            f"INSERT INTO mandates ({self._MANDATE}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (plan_id) DO UPDATE SET {updates}",
            (
                mandate.plan_id,
                mandate.account_id,
                mandate.provider,
                mandate.method,
                mandate.reference,
                codec.iso_instant(mandate.created_at),
                codec.opt_instant(mandate.revoked_at),
            ),
        )

    def revoke_mandate(self, provider: str, reference: str, *, at: dt.datetime) -> Mandate | None:
        """Mark the mandate with that provider reference revoked (the first revocation stands)."""
        with self._unit():
            self._exec(
                "UPDATE mandates SET revoked_at = %s WHERE provider = %s AND reference = %s AND revoked_at IS NULL",
                (codec.iso_instant(at), provider, reference),
            )
            found = self._mandates("provider = %s AND reference = %s", (provider, reference))
        return found[0] if found else None

    # -- financial-assistance applications ------------------------------------------------------
    _APPLICATION = "id, account_id, received_on, status, decided_on"

    def _applications(self, where: str, params: Sequence[Any]) -> list[AssistanceApplication]:
        rows = self._all(
            f"SELECT {self._APPLICATION} FROM assistance_applications WHERE {where} ORDER BY received_on, id",
            params,
        )
        return [
            AssistanceApplication(
                r[0],
                r[1],
                dt.date.fromisoformat(r[2]),
                ApplicationStatus(r[3]),
                dt.date.fromisoformat(r[4]) if r[4] else None,
            )
            for r in rows
        ]

    def put_application(self, application: AssistanceApplication) -> None:
        """Insert or replace a financial-assistance application (by id); its account must exist."""
        with self._unit():
            if self._first("SELECT 1 FROM accounts WHERE id = %s", (application.account_id,)) is None:
                raise NotFound("Account", application.account_id)
            self._exec(
                f"INSERT INTO assistance_applications ({self._APPLICATION}) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, "
                "received_on = EXCLUDED.received_on, status = EXCLUDED.status, decided_on = EXCLUDED.decided_on",
                (
                    application.id,
                    application.account_id,
                    application.received_on.isoformat(),
                    application.status.value,
                    application.decided_on.isoformat() if application.decided_on else None,
                ),
            )

    def link_provider_payment(self, link: ProviderPayment) -> None:
        """Record what a provider's payment reference belongs to (the first link stands)."""
        self._exec(
            "INSERT INTO provider_payments (provider, reference, account_id, payment_id, plan_id, instalment) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (provider, reference) DO NOTHING",
            (link.provider, link.reference, link.account_id, link.payment_id, link.plan_id, link.instalment),
        )

    def provider_payment(self, provider: str, reference: str) -> ProviderPayment | None:
        """The link recorded for a provider's payment reference, if any."""
        r = self._first(
            "SELECT provider, reference, account_id, payment_id, plan_id, instalment FROM provider_payments "
            "WHERE provider = %s AND reference = %s",
            (provider, reference),
        )
        return None if r is None else ProviderPayment(r[0], r[1], r[2], r[3], r[4], r[5])

    def change_token(self) -> object:
        """A value that differs whenever anything may have been written since it was taken.

        Outside a unit of work it is the server's current snapshot (``pg_current_snapshot()``:
        the oldest transaction still running, the next transaction id and those in between still
        running). A transaction that writes is given an id, which moves the next id on; while it
        runs it is in the list; when it ends it leaves the list: so any write anywhere on the
        server, by this process or another, committed or still open, changes the value, and a
        snapshot taken before a read tells whether that read may be out of date. Reads only,
        vacuum and other databases' reads leave it alone. Inside a unit of work (whose own later
        writes share one transaction id) it is a fresh object every time, equal to nothing.

        The daily run uses it, as it uses
        :meth:`SQLiteStore.change_token <carecollect.store.sqlite.SQLiteStore.change_token>`, to
        skip re-reading an account that nothing touched since it last read it.
        """
        if self._local.conn is not None:
            return object()
        row = self._first("SELECT pg_current_snapshot()::text")
        return None if row is None else str(row[0])

    def account_versions(self, account_ids: Sequence[str]) -> dict[str, tuple[int, tuple[str, ...]]]:
        """Each account's version: a value that changes, once the transaction that writes commits
        (at once, inside it), with every write to anything :meth:`account_snapshot` returns for
        it (as :meth:`SQLiteStore.account_versions
        <carecollect.store.sqlite.SQLiteStore.account_versions>`, compared for equality only).

        It is the generation of ``account_changes`` (moved when the run lock is taken and the
        writers no transaction can still miss are let go) and the ids of the transactions noted as
        writers of the account, read in one statement. A write committed after the value was read
        adds its own transaction (whatever the order in which transactions commit), and a writer
        only ever adds: the value read before an account's snapshot equals a later one only if
        nothing was written to the account in between.
        """
        ids = list(dict.fromkeys(account_ids))
        rows = self._all(
            "SELECT NULL, n::text FROM account_change_generation UNION ALL "
            "SELECT account_id, string_agg(xid::text, ' ' ORDER BY xid) FROM account_changes "
            "WHERE account_id = ANY(%s) GROUP BY account_id",
            (ids,),
        )
        generation = next(int(r[1]) for r in rows if r[0] is None)
        found: dict[str, tuple[int, tuple[str, ...]]] = dict.fromkeys(ids, (generation, ()))
        found.update((r[0], (generation, tuple(r[1].split()))) for r in rows if r[0] is not None)
        return found

    def _forget_account_changes(self) -> None:
        """Let go of the writers every transaction still running sees already, and move the
        generation (every version read before differs from every one read after)."""
        with self._unit():
            self._exec("UPDATE account_change_generation SET n = n + 1")
            self._exec("DELETE FROM account_changes WHERE xid < pg_snapshot_xmin(pg_current_snapshot())")

    # -- reading the portfolio -----------------------------------------------------------------
    def account_snapshot(self, account_id: str) -> AccountSnapshot:
        """Everything about one account."""
        self.get_account(account_id)
        return next(iter(self._snapshots_where("BETWEEN %s AND %s", (account_id, account_id))))

    def account_snapshots(self, account_ids: Sequence[str]) -> Iterator[AccountSnapshot]:
        """The snapshots of ``account_ids`` (in id order; unknown ids are left out), read together."""
        if not account_ids:
            return
        yield from self._snapshots_where("= ANY(%s)", (list(account_ids),))

    def _snapshots_where(self, match: str, rng: tuple[Any, ...]) -> list[AccountSnapshot]:
        where = f"account_id {match}"
        with self._unit():
            accounts = [
                codec.account_from_row(r)
                for r in self._all(
                    f"SELECT {_cols('accounts')} FROM accounts WHERE id {match} ORDER BY id", rng
                )
            ]
            patient_rows = {
                r[0]: r
                for r in self._all(
                    f"SELECT {', '.join('p.' + c for c in codec.COLUMNS['patients'])} FROM patients p "
                    f"WHERE p.id IN (SELECT patient_id FROM accounts WHERE id {match})",
                    rng,
                )
            }
            points: dict[str, list[ContactPoint]] = defaultdict(list)
            for r in self._all(
                f"SELECT {_cols('contact_points')} FROM contact_points "
                f"WHERE patient_id IN (SELECT patient_id FROM accounts WHERE id {match}) "
                "ORDER BY patient_id, position",
                rng,
            ):
                points[r[0]].append(codec.contact_point_from_row(r))
            invoices: dict[str, list[Invoice]] = defaultdict(list)
            for inv in self._invoices(where, rng):
                invoices[inv.account_id].append(inv)
            entries: dict[str, list[LedgerEntry]] = defaultdict(list)
            for r in self._all(
                f"SELECT {_cols('ledger_entries')} FROM ledger_entries WHERE {where} ORDER BY seq", rng
            ):
                entries[r[0]].append(codec.ledger_entry_from_row(r))
            plans: dict[str, list[PaymentPlan]] = defaultdict(list)
            for plan in self._plans(where, rng):
                plans[plan.account_id].append(plan)
            disputes: dict[str, list[Dispute]] = defaultdict(list)
            for r in self._all(f"SELECT {_cols('disputes')} FROM disputes WHERE {where} ORDER BY id", rng):
                disputes[r[1]].append(codec.dispute_from_row(r))
            steps: dict[str, list[OutreachStep]] = defaultdict(list)
            for r in self._all(
                f"SELECT {_cols('outreach_steps')} FROM outreach_steps WHERE {where} ORDER BY id", rng
            ):
                steps[r[1]].append(codec.step_from_row(r))
            attempts: dict[str, list[ContactAttempt]] = defaultdict(list)
            for r in self._all(
                f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE {where} ORDER BY at, seq",
                rng,
            ):
                attempts[r[2]].append(codec.attempt_from_row(r))
            placements: dict[str, list[AgencyPlacement]] = defaultdict(list)
            for pl in self._placements(where, rng):
                placements[pl.account_id].append(pl)
            mandates: dict[str, list[Mandate]] = defaultdict(list)
            for m in self._mandates(where, rng):
                mandates[m.account_id].append(m)
            applications: dict[str, list[AssistanceApplication]] = defaultdict(list)
            for app in self._applications(where, rng):
                applications[app.account_id].append(app)
        patients = {pid: codec.patient_from_row(r, points.get(pid, [])) for pid, r in patient_rows.items()}
        return [
            AccountSnapshot(
                account=a,
                patient=patients[a.patient_id],
                invoices=tuple(invoices.get(a.id, ())),
                ledger=Ledger(a.id, a.currency, tuple(entries.get(a.id, ()))),
                plans=tuple(plans.get(a.id, ())),
                disputes=tuple(disputes.get(a.id, ())),
                steps=tuple(steps.get(a.id, ())),
                attempts=tuple(attempts.get(a.id, ())),
                placements=tuple(placements.get(a.id, ())),
                mandates=tuple(mandates.get(a.id, ())),
                applications=tuple(applications.get(a.id, ())),
            )
            for a in accounts
        ]

    def iter_account_snapshots(self, *, batch_size: int = 1000) -> Iterator[AccountSnapshot]:
        """Every account in id order, ``batch_size`` accounts per read: memory stays flat."""
        size = _batch_size(batch_size)
        last = ""
        while True:
            ids = [
                r[0]
                for r in self._all("SELECT id FROM accounts WHERE id > %s ORDER BY id LIMIT %s", (last, size))
            ]
            if not ids:
                return
            yield from self._snapshots_where("BETWEEN %s AND %s", (ids[0], ids[-1]))
            last = ids[-1]

    def iter_plan_facts(
        self, *, now: dt.datetime, batch_size: int = 2000, partition: tuple[int, int] | None = None
    ) -> Iterator[PlanFacts]:
        """The planner's facts at ``now``, ``batch_size`` accounts per :class:`~carecollect.store.base.PlanFacts`.

        The same tuples as :meth:`SQLiteStore.iter_plan_facts
        <carecollect.store.sqlite.SQLiteStore.iter_plan_facts>` (instants as ISO text in UTC, money
        in minor units), one query per table and batch, each batch read in one transaction.

        Outside a unit of work the next batch is read ahead on a second pooled connection while
        the caller works on this one (the server's time and the caller's overlap); inside one,
        every batch is read in the caller's transaction, one after the other, and sees its writes.

        :param now: the run's instant (aware).
        :param partition: ``(k, n)``: only partition ``k`` of ``n``, filtered in SQL on the
            accounts' stored partition key; ``None``: every account.
        :raises ValidationError: ``batch_size``, ``partition`` or ``now`` is malformed.
        """
        size = _batch_size(batch_size)
        part = checked_partition(partition)
        require_aware(now, "Store", "now")
        if self._local.conn is not None:
            yield from self._plan_batches(now, size, part)
            return
        ahead: queue.Queue[PlanFacts | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def read() -> None:
            try:
                for facts in self._plan_batches(now, size, part):
                    while not stop.is_set():
                        try:
                            ahead.put(facts, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ahead.put(None)
            except BaseException as exc:  # handed to the caller's thread, raised there
                ahead.put(exc)

        reader = threading.Thread(target=read, name="carecollect-plan-read-ahead", daemon=True)
        reader.start()
        try:
            while True:
                got = ahead.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                ahead.get_nowait()  # a reader waiting to hand over its batch sees the stop
            reader.join()

    def _plan_batches(self, now: dt.datetime, size: int, part: tuple[int, int] | None) -> Iterator[PlanFacts]:
        """:meth:`iter_plan_facts`'s batches, read on this thread."""
        last = ""
        while True:
            with self._unit_cur() as cur:

                def q(
                    sql: str, params: Sequence[Any] | Mapping[str, Any], cur: psycopg.Cursor[Any] = cur
                ) -> list[tuple[Any, ...]]:
                    cur.execute(sql.encode(), params)
                    return cur.fetchall()

                if part is None:
                    accounts = q(self._FACTS_ACCOUNTS, {"now": now, "last": last, "size": size})
                    scope, params = (
                        "BETWEEN %(lo)s AND %(hi)s",
                        {
                            "lo": accounts[0][0] if accounts else "",
                            "hi": accounts[-1][0] if accounts else "",
                        },
                    )
                else:
                    accounts = q(
                        self._FACTS_ACCOUNTS_OF_PARTITION,
                        {"now": now, "last": last, "n": part[1], "k": part[0], "size": size},
                    )
                    scope, params = "= ANY(%(ids)s)", {"ids": [a[0] for a in accounts]}
                if not accounts:
                    return
                facts = PlanFacts(
                    accounts=accounts,
                    **{name: q(sql.format(scope=scope), params) for name, sql in self._FACTS.items()},
                )
            yield facts
            last = accounts[-1][0]

    _POINT_BIT, _POINT_CHECKED = contact_facts_sql("%(now)s", find="strpos")
    # An account's facts with its patient's contact points summed up at ``now`` (see PlanFacts);
    # timestamptz compares exactly, so ``exact`` is always 1.
    _FACTS_SELECT = f"""
        SELECT a.id, a.patient_id, a.creditor_id, a.currency, a.jurisdiction, p.time_zones, p.cease_requested_at,
               c.role, c.nonprofit, pts.usable, pts.checked, pts.zones, 1
          FROM accounts a JOIN patients p ON p.id = a.patient_id JOIN creditors c ON c.id = a.creditor_id
               LEFT JOIN LATERAL (
                   SELECT SUM(DISTINCT {_POINT_BIT}) AS usable, MAX({_POINT_CHECKED}) AS checked,
                          string_agg(cp.time_zone, ' ' ORDER BY cp.position)
                              FILTER (WHERE cp.time_zone <> '') AS zones
                     FROM contact_points cp WHERE cp.patient_id = a.patient_id) pts ON true"""
    _FACTS_ACCOUNTS = f"{_FACTS_SELECT} WHERE a.id > %(last)s ORDER BY a.id LIMIT %(size)s"
    _FACTS_ACCOUNTS_OF_PARTITION = f"{_FACTS_SELECT} WHERE a.id > %(last)s AND a.partition_key %% %(n)s = %(k)s ORDER BY a.id LIMIT %(size)s"
    # Each table's facts of a batch's accounts: ``{scope}`` is an id range, or a partition's ids.
    _FACTS: ClassVar[dict[str, str]] = {
        "invoices": """
        SELECT i.id, i.account_id, i.currency, i.issue_date, i.due_date, i.status, i.claim_status,
               i.claim_submitted_on,
               CASE WHEN b.charged THEN b.balance
                    ELSE (SELECT COALESCE(SUM(l.amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id)
                         - COALESCE(i.insurer_paid_minor, 0) - COALESCE(i.contractual_adjustment_minor, 0)
               END::bigint
          FROM invoices i LEFT JOIN (
               SELECT invoice_id, bool_or(kind = 'charge') AS charged,
                      SUM(CASE WHEN kind IN ('charge', 'refund', 'payment_reversed', 'insurance_reversed')
                               THEN amount_minor ELSE -amount_minor END) AS balance
                 FROM ledger_entries WHERE account_id {scope} AND invoice_id IS NOT NULL
                GROUP BY invoice_id) b ON b.invoice_id = i.id
         WHERE i.account_id {scope} ORDER BY i.account_id, i.id""",
        "steps": """
        SELECT account_id, invoice_id, purpose, sent_at, id FROM outreach_steps
         WHERE account_id {scope} AND status IN ('sent', 'delivered') AND sent_at IS NOT NULL
         ORDER BY account_id, id""",
        "attempts": """
        SELECT account_id, invoice_id, channel, at, outcome FROM contact_attempts
         WHERE account_id {scope} ORDER BY account_id, seq""",
        "disputes": """
        SELECT account_id, invoice_id FROM disputes WHERE account_id {scope} AND status = 'open'
         ORDER BY account_id, id""",
        "plans": """
        SELECT account_id, id, invoice_ids, status FROM plans
         WHERE account_id {scope} AND status IN ('active', 'paused') ORDER BY account_id, id""",
        "instalments": """
        SELECT p.account_id, i.plan_id, i.number, i.due_date, i.status
          FROM plans p JOIN instalments i ON i.plan_id = p.id
         WHERE p.account_id {scope} AND p.status = 'active' AND i.status = 'due'
         ORDER BY p.account_id, p.id, i.position""",
        "mandates": """
        SELECT account_id, plan_id, revoked_at FROM mandates WHERE account_id {scope}
         ORDER BY account_id, plan_id""",
        "applications": """
        SELECT account_id FROM assistance_applications
         WHERE account_id {scope} AND status IN ('received', 'incomplete') ORDER BY account_id, id""",
        "placements": """
        SELECT account_id, status, placed_at FROM placements WHERE account_id {scope}
         ORDER BY account_id, id""",
    }

    _ROW_SQL = """
        SELECT i.id, i.account_id, a.patient_id, a.jurisdiction, i.currency, p.preferred_language, p.time_zones,
               i.status, i.claim_status, i.issue_date, i.due_date, i.first_statement_date,
               (SELECT COALESCE(SUM(l.amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id)::bigint,
               (SELECT COALESCE(SUM(CASE WHEN e.kind IN ('charge', 'refund', 'payment_reversed', 'insurance_reversed')
                                         THEN e.amount_minor ELSE -e.amount_minor END), 0)
                  FROM ledger_entries e WHERE e.invoice_id = i.id AND e.account_id = i.account_id)::bigint,
               EXISTS (SELECT 1 FROM disputes d WHERE d.account_id = i.account_id AND d.status = 'open'
                       AND (d.invoice_id IS NULL OR d.invoice_id = i.id)),
               (SELECT pl.status FROM plans pl WHERE pl.account_id = i.account_id
                  ORDER BY pl.created_at DESC, pl.id DESC LIMIT 1),
               p.cease_requested_at IS NOT NULL
          FROM invoices i JOIN accounts a ON a.id = i.account_id JOIN patients p ON p.id = a.patient_id
         WHERE i.id > %s ORDER BY i.id LIMIT %s"""

    def iter_invoice_rows(self, *, batch_size: int = 5000) -> Iterator[InvoiceRow]:
        """Every invoice as a flat :class:`InvoiceRow` (balance from the ledger), read in batches."""
        size = _batch_size(batch_size)
        last = ""
        fromiso = dt.date.fromisoformat
        while True:
            rows = self._all(self._ROW_SQL, (last, size))
            if not rows:
                return
            for r in rows:
                yield InvoiceRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6].split(" ", 1)[0],
                    r[7],
                    r[8],
                    fromiso(r[9]),
                    fromiso(r[10]),
                    fromiso(r[11]) if r[11] else None,
                    int(r[12]),
                    int(r[13]),
                    bool(r[14]),
                    r[15],
                    bool(r[16]),
                )
            last = rows[-1][0]

    def counts(self) -> dict[str, int]:
        """How many rows each table holds."""
        with self._unit_cur() as cur:
            out = {}
            for t in _TABLES:
                cur.execute(f"SELECT COUNT(*) FROM {t}".encode())
                row = cur.fetchone()
                out[t] = int(row[0]) if row else 0
        return out

    def bulk_load(self, rows: PortfolioRows) -> None:
        """Insert a batch of plain rows (column order :data:`~carecollect.store.codec.COLUMNS`) with ``COPY``, in one transaction.

        A table the batch more than doubled is analysed at once (the planner would otherwise
        plan the run's reads on statistics of a much smaller table until autovacuum comes by);
        a role that does not own the tables leaves that to autovacuum.
        """
        loaded: list[tuple[str, int]] = []
        with self._cur() as cur:
            for table in PORTFOLIO_TABLES:
                batch = getattr(rows, table)
                if not batch:
                    continue
                with cur.copy(f"COPY {table} ({_cols(table)}) FROM STDIN".encode()) as copy:
                    for row in batch:
                        copy.write_row(row)
                loaded.append((table, len(batch)))
            if loaded:
                cur.execute(
                    "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace "
                    "AND pg_has_role(current_user, r.oid, 'USAGE')",
                    ([t for t, _ in loaded],),
                )
                estimates = {r[0]: float(r[1]) for r in cur.fetchall()}
                for table, count in loaded:
                    if table in estimates and estimates[table] < count:  # -1: never analysed
                        cur.execute(f"ANALYZE {table}".encode())

    # -- outbox ----------------------------------------------------------------------------------
    _OUTBOX = codec.OUTBOX_COLUMNS
    _INTEND = ("key", "kind", "account_id", "payload", "status", "recorded_at")
    _outbox_item = staticmethod(codec.outbox_item_from_row)

    def outbox_get(self, key: str) -> OutboxItem:
        """The outbox item with that key."""
        return self._outbox_item(
            self._one(f"SELECT {self._OUTBOX} FROM outbox WHERE key = %s", (key,), "OutboxItem", key)
        )

    def outbox_intend(
        self,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        at: dt.datetime,
        account_id: str | None = None,
    ) -> OutboxItem:
        """Record the intent; the same key with the same kind and payload returns the existing item unchanged.

        Two processes that intend the same key at once both get the one item (the insert that
        loses waits for the winner's commit, then reads its row).

        :raises DuplicateEntry: the key is already recorded with a different kind or payload.
        """
        text = canonical_json(dict(payload))
        with self._unit():
            row = self._first(
                "INSERT INTO outbox (key, kind, account_id, payload, status, recorded_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING "
                f"RETURNING {self._OUTBOX}",
                (key, kind, account_id, text, OutboxStatus.INTENDED.value, codec.iso_instant(at)),
            )
            if row is not None:
                return self._outbox_item(row)
            item = self.outbox_get(key)
        if item.kind != kind or canonical_json(dict(item.payload)) != text:
            raise DuplicateEntry(
                f"OutboxItem {key}: already recorded with a different kind or payload; use a new key"
            )
        return item

    def outbox_done(
        self, key: str, *, at: dt.datetime, result: Mapping[str, Any] | None = None
    ) -> OutboxItem:
        """Record the item performed; doing so twice keeps the first record."""
        with self._unit():
            row = self._first(
                "UPDATE outbox SET status = %s, updated_at = %s, attempts = attempts + 1, next_retry_at = NULL, "
                f"result = %s WHERE key = %s AND status <> %s RETURNING {self._OUTBOX}",
                (
                    OutboxStatus.DONE.value,
                    codec.iso_instant(at),
                    None if result is None else canonical_json(dict(result)),
                    key,
                    OutboxStatus.DONE.value,
                ),
            )
            return self._outbox_item(row) if row is not None else self.outbox_get(key)

    def outbox_intend_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
        *,
        at: dt.datetime,
    ) -> dict[str, OutboxItem]:
        """Record many intents: one insert of them all that skips a key already there, then one
        read of every key.

        :raises DuplicateEntry: a key is recorded with a different kind or payload (nothing is written).
        """
        texts = {
            key: (kind, canonical_json(dict(payload)), account_id) for key, kind, payload, account_id in items
        }
        if not texts:
            return {}
        when = codec.iso_instant(at)
        with self.transaction(), self._statement() as cur:
            cur.execute(
                _insert_rows("outbox", self._INTEND) + b" ON CONFLICT (key) DO NOTHING",
                (
                    _json_rows(
                        self._INTEND,
                        (
                            (key, kind, account_id, text, OutboxStatus.INTENDED.value, when)
                            for key, (kind, text, account_id) in texts.items()
                        ),
                    ),
                ),
            )
            cur.execute(f"SELECT {self._OUTBOX} FROM outbox WHERE key = ANY(%s)".encode(), (list(texts),))
            out = {item.key: item for item in map(self._outbox_item, cur.fetchall())}
            for key, (kind, text, _) in texts.items():
                item = out[key]
                if item.kind != kind or canonical_json(dict(item.payload)) != text:
                    raise DuplicateEntry(
                        f"OutboxItem {key}: already recorded with a different kind or payload; use a new key"
                    )
        return {key: out[key] for key in texts}

    def outbox_done_many(
        self, items: Sequence[tuple[str, Mapping[str, Any] | None]], *, at: dt.datetime
    ) -> None:
        """Record many items performed in one statement; a done item keeps its first record (so
        does a key given twice).

        :raises NotFound: a key was never intended (nothing is written).
        """
        if not items:
            return
        first: dict[str, str | None] = {}
        for key, result in items:
            if key not in first:
                first[key] = None if result is None else canonical_json(dict(result))
        with self.transaction(), self._statement() as cur:
            cur.execute(b"SELECT key FROM outbox WHERE key = ANY(%s)", (list(first),))
            found = {r[0] for r in cur.fetchall()}
            missing = next((k for k in first if k not in found), None)
            if missing is not None:
                raise NotFound("OutboxItem", missing)
            cur.execute(
                b"UPDATE outbox o SET status = %s, updated_at = %s, attempts = o.attempts + 1, "
                b"next_retry_at = NULL, result = u.result "
                b"FROM json_to_recordset(%s::json) AS u(key text, result text) "
                b"WHERE o.key = u.key AND o.status <> %s",
                (
                    OutboxStatus.DONE.value,
                    codec.iso_instant(at),
                    _json_rows(("key", "result"), first.items()),
                    OutboxStatus.DONE.value,
                ),
            )

    def outbox_failed(
        self,
        key: str,
        *,
        at: dt.datetime,
        error: str,
        retry_at: dt.datetime | None = None,
        give_up: bool = False,
    ) -> OutboxItem:
        """Record a failed attempt; due again at ``retry_at`` or by :func:`~carecollect.store.base.next_retry_at`.

        The item's row is locked (``FOR UPDATE``) from the read to the write, so two failures
        recorded at once count two attempts. With ``give_up`` it is never due again; a done
        item stays done.
        """
        with self._unit():
            item = self._outbox_item(
                self._one(
                    f"SELECT {self._OUTBOX} FROM outbox WHERE key = %s FOR UPDATE", (key,), "OutboxItem", key
                )
            )
            if item.status is OutboxStatus.DONE:
                return item
            attempts = item.attempts + 1
            when = None if give_up else (retry_at if retry_at is not None else next_retry_at(attempts, at))
            row = self._first(
                "UPDATE outbox SET status = %s, updated_at = %s, attempts = %s, next_retry_at = %s, last_error = %s "
                f"WHERE key = %s RETURNING {self._OUTBOX}",
                (
                    OutboxStatus.FAILED.value,
                    codec.iso_instant(at),
                    attempts,
                    codec.opt_instant(when),
                    error[:500],
                    key,
                ),
            )
            assert row is not None
            return self._outbox_item(row)

    def outbox_due(self, now: dt.datetime, *, limit: int = 1000) -> list[OutboxItem]:
        """Items intended, or failed with their retry time come, oldest first."""
        rows = self._all(
            f"SELECT {self._OUTBOX} FROM outbox WHERE status = 'intended' "
            "OR (status = 'failed' AND next_retry_at <= %s) ORDER BY recorded_at, key LIMIT %s",
            (codec.iso_instant(now), _batch_size(limit)),
        )
        return [self._outbox_item(r) for r in rows]

    # -- dedupe ---------------------------------------------------------------------------------
    def mark_processed(self, source: str, event_id: str, *, at: dt.datetime) -> bool:
        """Record an incoming event; False if it was already processed."""
        return (
            self._exec(
                "INSERT INTO processed_events (source, event_id, processed_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (source, event_id) DO NOTHING",
                (source, event_id, codec.iso_instant(at)),
            )
            == 1
        )

    def was_processed(self, source: str, event_id: str) -> bool:
        """True when the event was already processed."""
        return (
            self._first(
                "SELECT 1 FROM processed_events WHERE source = %s AND event_id = %s", (source, event_id)
            )
            is not None
        )

    # -- event hooks owed to plugins ---------------------------------------------------------------
    def hook_event_record(self, hook: str, arguments: str, targets: Sequence[str], *, at: dt.datetime) -> int:
        """Queue a broadcast in the caller's unit of work; returns its seq (nothing owed: done at once)."""
        row = self._first(
            "INSERT INTO hook_events (hook, arguments, targets, recorded_at, done_at) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING seq",
            (
                hook,
                arguments,
                json.dumps(list(targets)),
                codec.iso_instant(at),
                None if targets else codec.iso_instant(at),
            ),
        )
        assert row is not None
        return int(row[0])

    def hook_event_delivered(
        self, seq: int, plugins: Sequence[str], *, at: dt.datetime, error: str | None = None
    ) -> None:
        """Record the plugins that took event ``seq`` (its row locked meanwhile); done once every target has."""
        stamp = codec.iso_instant(at)
        with self._cur() as cur:
            cur.execute("SELECT targets FROM hook_events WHERE seq = %s FOR UPDATE", (seq,))
            row = cur.fetchone()
            if row is None:
                raise NotFound("HookEvent", str(seq))
            if plugins:
                cur.executemany(
                    "INSERT INTO hook_deliveries (seq, plugin, delivered_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (seq, plugin) DO NOTHING",
                    [(seq, p, stamp) for p in plugins],
                )
            cur.execute("SELECT plugin FROM hook_deliveries WHERE seq = %s", (seq,))
            taken = {r[0] for r in cur.fetchall()}
            done = set(json.loads(row[0])) <= taken
            cur.execute(
                "UPDATE hook_events SET attempts = attempts + 1, last_error = %s, done_at = %s WHERE seq = %s",
                (error, stamp if done else None, seq),
            )

    def hook_events_pending(self, *, limit: int = 1000) -> list[PendingHookEvent]:
        """Events some target plugin has not taken yet, oldest first."""
        with self._unit():
            rows = self._all(
                "SELECT seq, hook, arguments, targets, recorded_at, attempts, last_error FROM hook_events "
                "WHERE done_at IS NULL ORDER BY seq LIMIT %s",
                (_batch_size(limit),),
            )
            taken: dict[int, list[str]] = defaultdict(list)
            if rows:
                for r in self._all(
                    "SELECT seq, plugin FROM hook_deliveries WHERE seq = ANY(%s) ORDER BY seq, plugin",
                    ([r[0] for r in rows],),
                ):
                    taken[r[0]].append(r[1])
        return [
            PendingHookEvent(
                int(r[0]),
                r[1],
                r[2],
                tuple(json.loads(r[3])),
                tuple(taken.get(r[0], ())),
                codec.instant_from_iso(r[4]),
                r[5],
                r[6],
            )
            for r in rows
        ]

    # -- inbox ------------------------------------------------------------------------------------
    def inbox_put(self, item: InboxItem) -> bool:
        """Keep an inbound event (committed on return unless inside a unit of work); False when already kept."""
        return (
            self._exec(
                "INSERT INTO inbox (kind, plugin, event_id, headers, body, received_at, taken_at, outcome, attempts) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kind, plugin, event_id) DO NOTHING",
                (
                    item.kind,
                    item.plugin,
                    item.event_id,
                    canonical_json(dict(item.headers)),
                    bytes(item.body),
                    codec.iso_instant(item.received_at),
                    codec.opt_instant(item.taken_at),
                    item.outcome,
                    item.attempts,
                ),
            )
            == 1
        )

    def inbox_pending(self, *, limit: int = 1000) -> list[InboxItem]:
        """Events not yet taken in, oldest first."""
        rows = self._all(
            "SELECT kind, plugin, event_id, headers, body, received_at, taken_at, outcome, attempts FROM inbox "
            "WHERE taken_at IS NULL ORDER BY received_at, arrival LIMIT %s",
            (_batch_size(limit),),
        )
        return [
            InboxItem(
                r[0],
                r[1],
                r[2],
                bytes(r[4]),
                json.loads(r[3]),
                codec.instant_from_iso(r[5]),
                None,
                r[7],
                r[8],
            )
            for r in rows
        ]

    def inbox_taken(self, kind: str, plugin: str, event_id: str, *, at: dt.datetime, outcome: str) -> None:
        """Mark an event taken in."""
        if (
            self._exec(
                "UPDATE inbox SET taken_at = %s, outcome = %s, attempts = attempts + 1 "
                "WHERE kind = %s AND plugin = %s AND event_id = %s",
                (codec.iso_instant(at), outcome, kind, plugin, event_id),
            )
            != 1
        ):
            raise NotFound("InboxItem", f"{kind}/{plugin}/{event_id}")

    def inbox_retry(self, kind: str, plugin: str, event_id: str, *, outcome: str) -> None:
        """Count a failed attempt; the event stays pending."""
        if (
            self._exec(
                "UPDATE inbox SET outcome = %s, attempts = attempts + 1 WHERE kind = %s AND plugin = %s AND event_id = %s",
                (outcome, kind, plugin, event_id),
            )
            != 1
        ):
            raise NotFound("InboxItem", f"{kind}/{plugin}/{event_id}")

    # -- contact requests -----------------------------------------------------------------------
    def put_contact_request(self, request: ContactRequest) -> None:
        """Keep a patient's contact request (insert or replace by contact id)."""
        rec = request.record
        cols = "contact_id, account_id, channel, topic, started_at, invoice_id, queue, respond_by, reply_by, message"
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols.split(", ")[1:])
        self._exec(
            f"INSERT INTO contact_requests ({cols}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (contact_id) DO UPDATE SET {updates}",
            (
                rec.contact_id,
                rec.account_id,
                rec.channel.value,
                rec.topic.value,
                codec.iso_instant(rec.started_at),
                rec.invoice_id,
                rec.queue,
                codec.iso_instant(request.respond_by),
                request.reply_by,
                request.message,
            ),
        )

    def contact_requests(self, account_id: str | None = None) -> list[ContactRequest]:
        """Contact requests (of one account, or all), oldest first."""
        where, params = ("WHERE account_id = %s", (account_id,)) if account_id is not None else ("", ())
        rows = self._all(
            "SELECT contact_id, account_id, channel, topic, started_at, invoice_id, queue, respond_by, reply_by, "
            f"message FROM contact_requests {where} ORDER BY started_at, contact_id",
            params,
        )
        return [
            ContactRequest(
                ContactRecord(
                    r[0],
                    r[1],
                    ContactChannel(r[2]),
                    Direction.INBOUND,
                    Topic(r[3]),
                    codec.instant_from_iso(r[4]),
                    invoice_id=r[5],
                    queue=r[6],
                ),
                codec.instant_from_iso(r[7]),
                r[8],
                r[9],
            )
            for r in rows
        ]

    # -- run lock -------------------------------------------------------------------------------
    def current_run_lock(self) -> RunLock | None:
        """The lock as it stands, if anyone holds it."""
        r = self._first(
            "SELECT owner, pid, started_at, heartbeat_at, stale_after_seconds FROM run_lock WHERE name = 'run'"
        )
        if r is None:
            return None
        return RunLock(
            r[0], r[1], codec.instant_from_iso(r[2]), codec.instant_from_iso(r[3]), dt.timedelta(seconds=r[4])
        )

    def acquire_run_lock(
        self, owner: str, pid: int, *, now: dt.datetime, stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER
    ) -> RunLock:
        """Take the run lock; a lock whose holder let its own ``stale_after`` pass is taken over.

        Acquirers queue on a transaction-scoped advisory lock, so of two processes that find the
        lock free or stale at once exactly one takes it.

        :raises RunLocked: someone else holds a live lock.
        """
        if stale_after <= dt.timedelta(0):
            raise ValidationError("RunLock", "stale_after", f"must be positive, got {stale_after}")
        stamp = codec.iso_instant(now)
        with self._unit():
            self._exec("SELECT pg_advisory_xact_lock(%s)", (_LOCK_RUN,))
            held = self.current_run_lock()
            if held is not None and not (held.owner == owner and held.pid == pid) and not held.stale(now):
                raise RunLocked(held.owner, held.pid, held.started_at, held.heartbeat_at, held.stale_after)
            self._exec(
                "INSERT INTO run_lock (name, owner, pid, started_at, heartbeat_at, stale_after_seconds) "
                "VALUES ('run', %s, %s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, pid = EXCLUDED.pid, "
                "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, "
                "stale_after_seconds = EXCLUDED.stale_after_seconds",
                (owner, pid, stamp, stamp, stale_after.total_seconds()),
            )
        self._forget_account_changes()  # once per run: the table holds about one day's writers
        return RunLock(owner, pid, now, now, stale_after)

    def heartbeat_run_lock(self, owner: str, pid: int, *, now: dt.datetime) -> None:
        """Say the holder is alive (``now`` on the wall clock).

        :raises RunLocked: the lock is no longer this holder's.
        """
        with self._unit():
            changed = self._exec(
                "UPDATE run_lock SET heartbeat_at = %s WHERE name = 'run' AND owner = %s AND pid = %s",
                (codec.iso_instant(now), owner, pid),
            )
            if changed == 0:
                held = self.current_run_lock()
                if held is None:
                    raise RunLocked("nobody", 0, now, now)
                raise RunLocked(held.owner, held.pid, held.started_at, held.heartbeat_at, held.stale_after)

    def release_run_lock(self, owner: str, pid: int) -> None:
        """Give the lock back; does nothing if another holder has it."""
        self._exec("DELETE FROM run_lock WHERE name = 'run' AND owner = %s AND pid = %s", (owner, pid))

    # -- partition leases ---------------------------------------------------------------------------
    def take_partition(
        self,
        run_key: str,
        partitions: int,
        owner: str,
        *,
        now: dt.datetime,
        stale_after: dt.timedelta,
        partition: int | None = None,
        run_owner: str | None = None,
    ) -> PartitionLease | None:
        """Lease the next partition of ``run_key`` that is neither finished nor held (or whose
        holder let ``stale_after`` pass without a heartbeat), raising its fencing number.

        Takers skip a row another taker has locked (``FOR UPDATE SKIP LOCKED``): two workers
        never wait for each other nor take the same partition.

        :param partition: take this one only (``None``: the lowest free one).
        :param run_owner: the run lock's holder, when the taker works for it: a lease whose owner
            does not start with ``run_owner + "/"`` belongs to an earlier run (gone, or fenced out
            by this take) and is taken over at once.
        :returns: the lease, or ``None`` when no partition (or not ``partition``) is free.
        :raises ConfigurationError: the run's partitions were laid out with another count.
        """
        with self.transaction():
            known = self._first("SELECT MAX(partitions) FROM partition_leases WHERE run_key = %s", (run_key,))
            if known is None or known[0] is None:  # two first takers at once: one insert wins
                self._exec(
                    "INSERT INTO partition_leases (run_key, partition, partitions) "
                    "SELECT %s, p, %s FROM generate_series(0, %s - 1) AS p ON CONFLICT DO NOTHING",
                    (run_key, partitions, partitions),
                )
            elif known[0] != partitions:
                raise ConfigurationError(
                    f"run {run_key}: its partitions were laid out as {known[0]}, not {partitions}"
                )
            row = self._first(
                "SELECT partition, fence FROM partition_leases WHERE run_key = %s AND done_at IS NULL "
                "AND (owner IS NULL OR heartbeat_at < %s OR (%s::text IS NOT NULL AND NOT starts_with(owner, %s))) "
                "AND (%s::integer IS NULL OR partition = %s) ORDER BY partition LIMIT 1 FOR UPDATE SKIP LOCKED",
                (
                    run_key,
                    codec.iso_instant(now - stale_after),
                    run_owner,
                    None if run_owner is None else run_owner + "/",
                    partition,
                    partition,
                ),
            )
            if row is None:
                return None
            self._exec(
                "UPDATE partition_leases SET owner = %s, fence = %s, heartbeat_at = %s "
                "WHERE run_key = %s AND partition = %s",
                (owner, row[1] + 1, codec.iso_instant(now), run_key, row[0]),
            )
        return PartitionLease(run_key, row[0], owner, row[1] + 1)

    def check_partition_fence(self, lease: PartitionLease) -> None:
        """Inside a unit of work: refuse to go on unless ``lease`` still holds its partition.

        The row stays share-locked to the unit's end, so a take-over waits for this commit.

        :raises PartitionLeaseLost: taken over (a higher fence) or already finished.
        """
        row = self._first(
            "SELECT fence, done_at FROM partition_leases WHERE run_key = %s AND partition = %s FOR SHARE",
            (lease.run_key, lease.partition),
        )
        if row is None or row[0] != lease.fence or row[1] is not None:
            raise PartitionLeaseLost(
                lease.run_key, lease.partition, lease.fence, None if row is None else row[0]
            )

    def heartbeat_partition(self, lease: PartitionLease, *, now: dt.datetime) -> None:
        """Say the lease's holder is alive.

        :raises PartitionLeaseLost: the lease is no longer the holder's.
        """
        with self.transaction():
            self.check_partition_fence(lease)
            self._exec(
                "UPDATE partition_leases SET heartbeat_at = %s WHERE run_key = %s AND partition = %s",
                (codec.iso_instant(now), lease.run_key, lease.partition),
            )

    def finish_partition(self, lease: PartitionLease, *, now: dt.datetime) -> None:
        """Mark the partition done (a rerun for the same ``run_key`` skips it).

        :raises PartitionLeaseLost: the lease is no longer the holder's.
        """
        with self.transaction():
            self.check_partition_fence(lease)
            self._exec(
                "UPDATE partition_leases SET done_at = %s WHERE run_key = %s AND partition = %s",
                (codec.iso_instant(now), lease.run_key, lease.partition),
            )

    def finished_partitions(self, run_key: str) -> set[int]:
        """The partitions of ``run_key`` that are done."""
        rows = self._all(
            "SELECT partition FROM partition_leases WHERE run_key = %s AND done_at IS NOT NULL", (run_key,)
        )
        return {r[0] for r in rows}

    # -- audit ------------------------------------------------------------------------------------
    _AUDIT_COLUMNS = ("seq", "at", "kind", "subject_id", "data", "prev_hash", "hash", "chain", "chain_seq")

    def _lock_chain(self, cur: psycopg.Cursor[Any], chain: str) -> tuple[int, str]:
        """Queue for ``chain``'s advisory lock (held to the end of the unit of work), then read its
        head ``(position, hash)``; a statement of its own, so it sees what the last holder committed."""
        cur.execute(b"SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", (_LOCK_AUDIT, chain))
        cur.execute(
            b"SELECT chain_seq, hash FROM audit_log WHERE chain = %s ORDER BY chain_seq DESC LIMIT 1",
            (chain,),
        )
        last = cur.fetchone()
        return (0, GENESIS_HASH) if last is None else (int(last[0]), last[1])

    def audit_append(
        self,
        kind: str,
        subject_id: str,
        data: Mapping[str, Any],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> AuditRecord:
        """Append a record chained to the last one of ``chain`` (inside the caller's unit of work, if any).

        Appenders of one chain queue on a transaction-scoped advisory lock held to the end of
        their unit of work, so no chain ever forks however many processes write; appenders of
        different chains (the partitions of a run) do not wait for each other.
        """
        payload = dict(data)
        text = canonical_json(payload)
        with self._unit_cur() as cur:
            position, prev = self._lock_chain(cur, chain)
            position += 1
            digest = audit_hash(prev, position, at, kind, subject_id, payload, chain=chain, data_json=text)
            cur.execute(
                b"INSERT INTO audit_log (at, kind, subject_id, data, prev_hash, hash, chain, chain_seq) "
                b"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                (codec.iso_instant(at), kind, subject_id, text, prev, digest, chain, position),
            )
            row = cur.fetchone()
            assert row is not None
        return AuditRecord(
            int(row[0]), at, kind, subject_id, payload, prev, digest, chain=chain, chain_seq=position
        )

    def audit_append_many(
        self,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> list[AuditRecord]:
        """Append many records to ``chain`` in order under its lock: the head read once, the log's
        positions taken in one statement, each hash computed in memory, the records written in one."""
        if not records:
            return []
        out: list[AuditRecord] = []
        with self.transaction(), self._statement() as cur:
            position, prev = self._lock_chain(cur, chain)
            cur.execute(b"SELECT nextval('audit_log_seq') FROM generate_series(1, %s)", (len(records),))
            seqs = sorted(int(r[0]) for r in cur.fetchall())
            when = codec.iso_instant(at)
            rows = []
            for seq, (kind, subject_id, data) in zip(seqs, records, strict=True):
                payload = dict(data)
                text = canonical_json(payload)
                position += 1
                digest = audit_hash(
                    prev, position, at, kind, subject_id, payload, chain=chain, data_json=text
                )
                rows.append((seq, when, kind, subject_id, text, prev, digest, chain, position))
                out.append(
                    AuditRecord(
                        seq, at, kind, subject_id, payload, prev, digest, chain=chain, chain_seq=position
                    )
                )
                prev = digest
            cur.execute(
                _insert_rows("audit_log", self._AUDIT_COLUMNS), (_json_rows(self._AUDIT_COLUMNS, rows),)
            )
        return out

    def audit_records(
        self,
        *,
        subject_id: str | None = None,
        kinds: Collection[str] | None = None,
        chain: str | None = None,
        subject_ids: Collection[str] | None = None,
    ) -> Iterator[AuditRecord]:
        """The audit log in order, optionally one subject's records only (or those of
        ``subject_ids``), only ``kinds``, only one chain's."""
        sql = f"SELECT {AUDIT_ROW} FROM audit_log"
        where: list[str] = []
        params: list[Any] = []
        if subject_id is not None:
            where.append("subject_id = %s")
            params.append(subject_id)
        if subject_ids is not None:
            where.append("subject_id = ANY(%s)")
            params.append(sorted(set(subject_ids)))
        if kinds is not None:
            where.append("kind = ANY(%s)")
            params.append(sorted(set(kinds)))
        if chain is not None:
            where.append("chain = %s")
            params.append(chain)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for r in self._all(sql + " ORDER BY seq", params):
            yield record_from_row(r)

    def audit_heads(self) -> list[AuditHead]:
        """The last record of every chain that has one, by chain name (a skip scan of the chain index)."""
        return heads_from_rows(
            self._all(
                """WITH RECURSIVE c(chain) AS (
                    SELECT MIN(chain) FROM audit_log
                    UNION ALL
                    SELECT (SELECT MIN(chain) FROM audit_log WHERE chain > c.chain) FROM c WHERE c.chain IS NOT NULL)
                SELECT c.chain, h.chain_seq, h.hash FROM c CROSS JOIN LATERAL (
                    SELECT chain_seq, hash FROM audit_log a WHERE a.chain = c.chain
                    ORDER BY chain_seq DESC LIMIT 1) h
                WHERE c.chain IS NOT NULL"""
            )
        )

    def seal_audit(self, *, at: dt.datetime) -> AuditRecord | None:
        """Seal the heads of every chain with a main-chain record (``None``: nothing new to seal).

        The main chain's lock is taken first, so two sealers one after the other write one seal.
        """
        with self.transaction(), self._statement() as cur:
            self._lock_chain(cur, MAIN_CHAIN)
            heads = self.audit_heads()
            cur.execute(
                f"SELECT {AUDIT_ROW} FROM audit_log WHERE chain = %s ORDER BY chain_seq DESC LIMIT 1".encode(),
                (MAIN_CHAIN,),
            )
            last = cur.fetchone()
            if not seal_due(heads, None if last is None else record_from_row(last)):
                return None
            return self.audit_append(SEAL_KIND, "audit", seal_data(heads), at=at)

    def verify_audit(self) -> AuditVerification:
        """Recompute every chain and check every seal (:func:`~carecollect.store.audit.verify_chains`),
        reading the log in pages by chain and position."""
        seals = self._all(
            f"SELECT {AUDIT_ROW} FROM audit_log WHERE chain = %s AND kind = %s ORDER BY chain_seq",
            (MAIN_CHAIN, SEAL_KIND),
        )

        def pages() -> Iterator[tuple[Any, ...]]:
            rows = self._all(f"SELECT {AUDIT_ROW} FROM audit_log ORDER BY chain, chain_seq LIMIT 5000")
            while rows:
                yield from rows
                last = rows[-1]
                rows = self._all(
                    f"SELECT {AUDIT_ROW} FROM audit_log WHERE (chain, chain_seq) > (%s, %s) "
                    "ORDER BY chain, chain_seq LIMIT 5000",
                    (last[1], last[2]),
                )

        return verify_chains(seals, pages())
