"""The embedded default store, on SQLite (the standard library's :mod:`sqlite3`).

* WAL journal, ``foreign_keys`` on, ``synchronous=NORMAL``, a busy timeout;
* one transaction per unit of work (:meth:`SQLiteStore.transaction`,
  ``BEGIN IMMEDIATE``; nested blocks become savepoints);
* the schema is versioned: :data:`MIGRATIONS` are applied in order when the
  file is opened and each is recorded in ``schema_version``; a file written by
  a newer carecollect is refused;
* ledger entries and audit records are append-only (triggers refuse UPDATE
  and DELETE), and the audit log is hash-chained, one chain per partition of a run beside the
  main one, sealed by the run (:meth:`SQLiteStore.verify_audit`, :mod:`carecollect.store.audit`).

>>> import datetime as dt
>>> from carecollect.store.sqlite import SQLiteStore
>>> store = SQLiteStore(":memory:")
>>> store.schema_version() == MIGRATIONS[-1][0]
True
>>> t = dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)
>>> store.mark_processed("stripe", "evt_1", at=t), store.mark_processed("stripe", "evt_1", at=t)
(True, False)
>>> store.close()
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ..assistance_applications import ApplicationStatus, AssistanceApplication
from ..channels import Channel
from ..contact_centre.records import ContactChannel, ContactRecord, Direction, Topic
from ..creditors import Creditor
from ..disputes import Dispute
from ..errors import ConfigurationError, DuplicateEntry, PartitionLeaseLost, ValidationError
from ..invoices import Invoice, InvoiceLine
from ..ledger import Ledger, LedgerEntry
from ..outreach import ContactAttempt, OutreachStep
from ..patients import Account, ContactPoint, Patient
from ..placements import AgencyPlacement
from ..plans import PaymentPlan
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

__all__ = ["MIGRATIONS", "SQLiteStore"]

_NO_CHANGE = "SELECT RAISE(ABORT, '{table} is append-only: add a correcting entry instead')"


def _bump(source: str) -> str:
    """Add one to the version of each account ``source`` (``SELECT account_id, 1 ... WHERE ...``) names."""
    return (
        f"INSERT INTO account_versions (account_id, version) {source} "
        "ON CONFLICT(account_id) DO UPDATE SET version = version + 1;"
    )


def _version_triggers(name: str, table: str, key: str, accounts_of: str) -> tuple[str, ...]:
    """Triggers that bump the accounts ``accounts_of`` names (``SELECT ... WHERE ...`` over ``{row}``,
    the row written) after every insert, update and delete on ``table``; an update that changes
    the row's ``key`` (the column naming its account or patient) bumps the accounts of both."""
    new, old = accounts_of.format(row="NEW"), accounts_of.format(row="OLD")
    moved = f"{old} AND OLD.{key} IS NOT NEW.{key}"
    return (
        f"CREATE TRIGGER {name}_version_insert AFTER INSERT ON {table} BEGIN {_bump(new)} END",
        f"CREATE TRIGGER {name}_version_update AFTER UPDATE ON {table} BEGIN {_bump(new)} {_bump(moved)} END",
        f"CREATE TRIGGER {name}_version_delete AFTER DELETE ON {table} BEGIN {_bump(old)} END",
    )


def _account_version_migration() -> tuple[str, ...]:
    """Migration 17: the ``account_versions`` table and the triggers that keep it.

    An account's version goes up with every write to its row, its patient's row or contact points,
    a row of :data:`~carecollect.store.codec.ACCOUNT_TABLES` that names it (before or after the
    write) or an insurer's claim record on one of its invoices, in the transaction that writes: whatever
    :meth:`SQLiteStore.account_snapshot` returns for it can change only with its version. An
    account with no row yet is at version 0.
    """
    claims = (
        "CREATE TRIGGER claim_version AFTER INSERT ON audit_log "
        f"WHEN NEW.kind = '{CLAIM_RECORD}' BEGIN "
        + _bump("SELECT account_id, 1 FROM invoices WHERE id = NEW.subject_id")
        + " END"
    )
    return (
        "CREATE TABLE account_versions (account_id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID",
        *_version_triggers("account", "accounts", "id", "SELECT {row}.id, 1 WHERE true"),
        *_version_triggers(
            "patient", "patients", "id", "SELECT id, 1 FROM accounts WHERE patient_id = {row}.id"
        ),
        *_version_triggers(
            "contact_point",
            "contact_points",
            "patient_id",
            "SELECT id, 1 FROM accounts WHERE patient_id = {row}.patient_id",
        ),
        *(
            trigger
            for table in codec.ACCOUNT_TABLES[:12]  # as of migration 17 (the list only grows)
            for trigger in _version_triggers(
                table, table, "account_id", "SELECT {row}.account_id, 1 WHERE true"
            )
        ),
        claims,
    )


#: The schema, as numbered migrations: ``(version, description, statements)``. Only ever append.
# A contact point with an instant not in the UTC form the store writes (a bulk load may bring any
# offset): the plan read cannot compare it as text, so its patient's accounts are decided on
# their snapshots. A partial index keeps these few points, so the plan read finds them at once.
_INEXACT_POINT = " OR ".join(
    f"substr({column}, -6) <> '+00:00'"
    for column in ("consent_at", "opted_out_at", "verified_at", "undeliverable_at")
)

# An invoice's ledger, summed as the plan read needs it: whether a charge was posted, and the
# balance (charges, refunds and reversals up, payments and adjustments down). Triggers keep the
# two columns in the transaction that writes the entry (the ledger is append-only), so the plan
# read takes them from the invoice's index entry instead of summing the entries per invoice.
_LEDGER_SIGNED = (
    "CASE WHEN e.kind IN ('charge', 'refund', 'payment_reversed', 'insurance_reversed') "
    "THEN e.amount_minor ELSE -e.amount_minor END"
)
_INVOICE_LEDGER = f"""UPDATE invoices SET (ledger_charged, ledger_balance_minor) = (
    SELECT COALESCE(MAX(e.kind = 'charge'), 0), COALESCE(SUM({_LEDGER_SIGNED}), 0)
      FROM ledger_entries e WHERE e.invoice_id = invoices.id AND e.account_id = invoices.account_id)"""

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE creditors (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
                country TEXT NOT NULL, nonprofit INTEGER NOT NULL, state TEXT, business_name_for_voicemail TEXT)""",
            """CREATE TABLE patients (id TEXT PRIMARY KEY, preferred_language TEXT NOT NULL,
                time_zones TEXT NOT NULL, name TEXT NOT NULL, country TEXT, state TEXT, confidential TEXT NOT NULL,
                confidential_channels TEXT NOT NULL, cease_requested_at TEXT, date_of_birth TEXT)""",
            """CREATE TABLE contact_points (patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
                position INTEGER NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL, consent_at TEXT,
                opted_out_at TEXT, verified_at TEXT, time_zone TEXT, PRIMARY KEY (patient_id, position))""",
            """CREATE TABLE accounts (id TEXT PRIMARY KEY, patient_id TEXT NOT NULL REFERENCES patients(id),
                creditor_id TEXT NOT NULL REFERENCES creditors(id), currency TEXT NOT NULL,
                jurisdiction TEXT NOT NULL, guarantor_id TEXT, household_size INTEGER, annual_income_minor INTEGER)""",
            "CREATE INDEX accounts_patient ON accounts(patient_id)",
            """CREATE TABLE invoices (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
                currency TEXT NOT NULL, issue_date TEXT NOT NULL, due_date TEXT NOT NULL, first_statement_date TEXT,
                status TEXT NOT NULL, kind TEXT NOT NULL, estimate_id TEXT, claim_status TEXT NOT NULL,
                insurer_paid_minor INTEGER, contractual_adjustment_minor INTEGER, claim_submitted_on TEXT,
                payer_name TEXT)""",
            "CREATE INDEX invoices_account ON invoices(account_id)",
            """CREATE TABLE invoice_lines (invoice_id TEXT NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
                position INTEGER NOT NULL, account_id TEXT NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL,
                amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0), service_date TEXT NOT NULL,
                PRIMARY KEY (invoice_id, position))""",
            "CREATE INDEX invoice_lines_account ON invoice_lines(account_id)",
            """CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id TEXT NOT NULL REFERENCES accounts(id), key TEXT NOT NULL, kind TEXT NOT NULL,
                amount_minor INTEGER NOT NULL CHECK (amount_minor > 0), currency TEXT NOT NULL, at TEXT NOT NULL,
                invoice_id TEXT, source_id TEXT NOT NULL, reason TEXT NOT NULL, UNIQUE (account_id, key))""",
            "CREATE INDEX ledger_invoice ON ledger_entries(invoice_id)",
            "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries BEGIN "
            + _NO_CHANGE.format(table="the ledger")
            + "; END",
            "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entries BEGIN "
            + _NO_CHANGE.format(table="the ledger")
            + "; END",
            """CREATE TABLE plans (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
                invoice_ids TEXT NOT NULL, total_minor INTEGER NOT NULL, currency TEXT NOT NULL,
                created_at TEXT NOT NULL, status TEXT NOT NULL, interest_rate_percent TEXT NOT NULL, paused_at TEXT)""",
            "CREATE INDEX plans_account ON plans(account_id)",
            """CREATE TABLE instalments (plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
                position INTEGER NOT NULL, account_id TEXT NOT NULL, number INTEGER NOT NULL, due_date TEXT NOT NULL,
                amount_minor INTEGER NOT NULL, status TEXT NOT NULL, paid_minor INTEGER,
                PRIMARY KEY (plan_id, position))""",
            """CREATE TABLE disputes (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
                invoice_id TEXT, reason TEXT NOT NULL, opened_at TEXT NOT NULL, status TEXT NOT NULL,
                level INTEGER NOT NULL, resolution_kind TEXT, resolution_amount_minor INTEGER,
                resolution_currency TEXT, resolution_approved_by TEXT, resolution_corrective_action TEXT,
                resolution_after_insurance INTEGER, resolved_at TEXT, first_response_at TEXT, met_patient_at TEXT,
                follow_up_on TEXT, follow_up_done_at TEXT, satisfied INTEGER, in_writing INTEGER NOT NULL)""",
            "CREATE INDEX disputes_account ON disputes(account_id)",
            """CREATE TABLE outreach_steps (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
                invoice_id TEXT, purpose TEXT NOT NULL, channels TEXT NOT NULL, due_at TEXT NOT NULL,
                template_key TEXT NOT NULL, status TEXT NOT NULL, sent_at TEXT, deadline TEXT)""",
            "CREATE INDEX outreach_steps_account ON outreach_steps(account_id)",
            """CREATE TABLE contact_attempts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                step_id TEXT REFERENCES outreach_steps(id), account_id TEXT NOT NULL REFERENCES accounts(id),
                invoice_id TEXT, channel TEXT NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL,
                provider_message_id TEXT)""",
            "CREATE INDEX contact_attempts_account ON contact_attempts(account_id)",
            """CREATE TABLE placements (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
                agency TEXT NOT NULL, amount_placed_minor INTEGER NOT NULL, currency TEXT NOT NULL,
                status TEXT NOT NULL, placed_at TEXT, closed_at TEXT, invoice_ids TEXT NOT NULL)""",
            "CREATE INDEX placements_account ON placements(account_id)",
            """CREATE TABLE remittances (placement_id TEXT NOT NULL REFERENCES placements(id),
                position INTEGER NOT NULL, id TEXT NOT NULL, account_id TEXT NOT NULL, amount_minor INTEGER NOT NULL,
                collected_at TEXT NOT NULL, fee_minor INTEGER, PRIMARY KEY (placement_id, id))""",
            """CREATE TABLE outbox (key TEXT PRIMARY KEY, kind TEXT NOT NULL, account_id TEXT, payload TEXT NOT NULL,
                status TEXT NOT NULL, recorded_at TEXT NOT NULL, updated_at TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                next_retry_at TEXT, last_error TEXT, result TEXT)""",
            "CREATE INDEX outbox_due ON outbox(status, next_retry_at)",
            """CREATE TABLE processed_events (source TEXT NOT NULL, event_id TEXT NOT NULL,
                processed_at TEXT NOT NULL, PRIMARY KEY (source, event_id))""",
            """CREATE TABLE run_lock (name TEXT PRIMARY KEY CHECK (name = 'run'), owner TEXT NOT NULL,
                pid INTEGER NOT NULL, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL)""",
            """CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
                subject_id TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
            "CREATE INDEX audit_subject ON audit_log(subject_id)",
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log BEGIN "
            + _NO_CHANGE.format(table="the audit log")
            + "; END",
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log BEGIN "
            + _NO_CHANGE.format(table="the audit log")
            + "; END",
        ),
    ),
    (
        2,
        "find patients by contact address (inbound STOP replies)",
        ("CREATE INDEX contact_points_address ON contact_points(address)",),
    ),
    (
        3,
        "mandates that pay plans; provider payment references (instalment charges, payment webhooks)",
        (
            """CREATE TABLE mandates (plan_id TEXT PRIMARY KEY REFERENCES plans(id),
                account_id TEXT NOT NULL REFERENCES accounts(id), provider TEXT NOT NULL, method TEXT NOT NULL,
                reference TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)""",
            "CREATE INDEX mandates_account ON mandates(account_id)",
            "CREATE INDEX mandates_reference ON mandates(provider, reference)",
            """CREATE TABLE provider_payments (provider TEXT NOT NULL, reference TEXT NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id), payment_id TEXT NOT NULL, plan_id TEXT,
                instalment INTEGER, PRIMARY KEY (provider, reference))""",
        ),
    ),
    (
        4,
        "financial-assistance applications (a pending one pauses outreach and the gates)",
        (
            """CREATE TABLE assistance_applications (id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id), received_on TEXT NOT NULL,
                status TEXT NOT NULL, decided_on TEXT)""",
            "CREATE INDEX assistance_applications_account ON assistance_applications(account_id)",
        ),
    ),
    (
        5,
        "find a sent message by the channel's id (bounces in delivery reports)",
        ("CREATE INDEX contact_attempts_provider_message ON contact_attempts(provider_message_id)",),
    ),
    (
        6,
        "contact points a hard bounce marked undeliverable",
        ("ALTER TABLE contact_points ADD COLUMN undeliverable_at TEXT",),
    ),
    (
        7,
        "German handoff consent on patients (StGB § 203); BGB § 286 (3) default facts on invoices",
        (
            "ALTER TABLE patients ADD COLUMN handoff_consent_given_at TEXT",
            "ALTER TABLE patients ADD COLUMN handoff_consent_method TEXT",
            "ALTER TABLE patients ADD COLUMN handoff_consent_reference TEXT",
            "ALTER TABLE patients ADD COLUMN handoff_consent_withdrawn_at TEXT",
            "ALTER TABLE invoices ADD COLUMN default_notice_given INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE invoices ADD COLUMN received_on TEXT",
        ),
    ),
    (
        8,
        "run lock on the wall clock: the holder's promised heartbeat interval (stale after it)",
        ("ALTER TABLE run_lock ADD COLUMN stale_after_seconds REAL NOT NULL DEFAULT 600",),
    ),
    (
        9,
        "event-hook broadcasts owed to plugins, kept until each plugin took them",
        (
            """CREATE TABLE hook_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, hook TEXT NOT NULL,
                arguments TEXT NOT NULL, targets TEXT NOT NULL, recorded_at TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, done_at TEXT)""",
            "CREATE INDEX hook_events_pending ON hook_events(seq) WHERE done_at IS NULL",
            """CREATE TABLE hook_deliveries (seq INTEGER NOT NULL REFERENCES hook_events(seq),
                plugin TEXT NOT NULL, delivered_at TEXT NOT NULL, PRIMARY KEY (seq, plugin))""",
        ),
    ),
    (
        10,
        "inbox of events received over HTTP (taken in by the run); patients' contact requests",
        (
            """CREATE TABLE inbox (kind TEXT NOT NULL, plugin TEXT NOT NULL, event_id TEXT NOT NULL,
                headers TEXT NOT NULL, body BLOB NOT NULL, received_at TEXT NOT NULL, taken_at TEXT,
                outcome TEXT, attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, plugin, event_id))""",
            "CREATE INDEX inbox_pending ON inbox(taken_at, received_at)",
            """CREATE TABLE contact_requests (contact_id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id), channel TEXT NOT NULL, topic TEXT NOT NULL,
                started_at TEXT NOT NULL, invoice_id TEXT, queue TEXT, respond_by TEXT NOT NULL,
                reply_by TEXT NOT NULL, message TEXT NOT NULL)""",
            "CREATE INDEX contact_requests_account ON contact_requests(account_id)",
        ),
    ),
    (
        11,
        "partition leases of a run (its workers take, beat, fence and finish them)",
        (
            """CREATE TABLE partition_leases (run_key TEXT NOT NULL, partition INTEGER NOT NULL,
                partitions INTEGER NOT NULL, owner TEXT, fence INTEGER NOT NULL DEFAULT 0,
                heartbeat_at TEXT, done_at TEXT, PRIMARY KEY (run_key, partition))""",
        ),
    ),
    (
        12,
        "each account keeps its patient's partition key (a partition's plan reads filter on it)",
        (
            "ALTER TABLE accounts ADD COLUMN partition_key INTEGER",
            "UPDATE accounts SET partition_key = carecollect_partition_key(patient_id)",
            # the plan read's indexes hold every column it reads (no look-up of the table's row);
            # each replaces an index it begins with
            "DROP INDEX invoices_account",
            """CREATE INDEX invoices_plan ON invoices(account_id, id, currency, issue_date, due_date, status,
                claim_status, claim_submitted_on, insurer_paid_minor, contractual_adjustment_minor)""",
            "DROP INDEX ledger_invoice",
            "CREATE INDEX ledger_plan ON ledger_entries(invoice_id, account_id, kind, amount_minor)",
            "CREATE INDEX invoice_lines_plan ON invoice_lines(invoice_id, amount_minor)",
            """CREATE INDEX contact_points_plan ON contact_points(patient_id, position, channel, consent_at,
                opted_out_at, verified_at, time_zone, undeliverable_at)""",
            "CREATE INDEX accounts_plan ON accounts(id, patient_id, creditor_id, currency, jurisdiction, partition_key)",
        ),
    ),
    (
        13,
        "audit chains: each record in one chain (the main one or a partition's) at a position of its own",
        (
            "ALTER TABLE audit_log ADD COLUMN chain TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE audit_log ADD COLUMN chain_seq INTEGER NOT NULL DEFAULT 0",
            "DROP TRIGGER audit_no_update",  # the one UPDATE the log ever gets: old records keep their place
            "UPDATE audit_log SET chain_seq = seq",
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log BEGIN "
            + _NO_CHANGE.format(table="the audit log")
            + "; END",
            "CREATE UNIQUE INDEX audit_chain ON audit_log(chain, chain_seq)",
        ),
    ),
    (
        14,
        "contact points with an instant not in UTC form, indexed (the plan read decides their accounts on snapshots)",
        (f"CREATE INDEX contact_points_inexact ON contact_points(patient_id) WHERE {_INEXACT_POINT}",),
    ),
    (
        15,
        "each invoice keeps its ledger's sum (kept by triggers; the plan read takes it from the index)",
        (
            "ALTER TABLE invoices ADD COLUMN ledger_charged INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE invoices ADD COLUMN ledger_balance_minor INTEGER NOT NULL DEFAULT 0",
            _INVOICE_LEDGER,
            # an entry adds its signed amount to the invoice it names (on the same account)
            f"""CREATE TRIGGER ledger_invoice_sum AFTER INSERT ON ledger_entries
                WHEN NEW.invoice_id IS NOT NULL BEGIN
                UPDATE invoices SET ledger_charged = MAX(ledger_charged, NEW.kind = 'charge'),
                       ledger_balance_minor = ledger_balance_minor + {_LEDGER_SIGNED.replace("e.", "NEW.")}
                 WHERE id = NEW.invoice_id AND account_id = NEW.account_id; END""",
            # an invoice written after entries that name it, or moved to another account, sums them again
            f"CREATE TRIGGER invoice_ledger_new AFTER INSERT ON invoices BEGIN {_INVOICE_LEDGER} WHERE id = NEW.id; END",
            f"""CREATE TRIGGER invoice_ledger_moved AFTER UPDATE OF account_id ON invoices
                WHEN NEW.account_id IS NOT OLD.account_id BEGIN {_INVOICE_LEDGER} WHERE id = NEW.id; END""",
            "DROP INDEX invoices_plan",
            """CREATE INDEX invoices_plan ON invoices(account_id, id, currency, issue_date, due_date, status,
                claim_status, claim_submitted_on, insurer_paid_minor, contractual_adjustment_minor, ledger_charged,
                ledger_balance_minor)""",
        ),
    ),
    (
        16,
        "instalments indexed by account (a batch's accounts are read without scanning every plan's instalments)",
        ("CREATE INDEX instalments_account ON instalments(account_id)",),
    ),
    (
        17,
        "each account's version: kept by triggers on everything its snapshot holds (the run checks it, "
        "not the whole file, before using an account it read)",
        _account_version_migration(),
    ),
)

#: The account's tables :meth:`SQLiteStore.counts` counts (it never counted mandates).
_CHILD_TABLES = tuple(t for t in codec.ACCOUNT_TABLES if t != "mandates")


def _cols(table: str) -> str:
    return ", ".join(codec.COLUMNS[table])


def _insert(table: str, verb: str = "INSERT") -> str:
    cols = codec.COLUMNS[table]
    return f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _upsert(table: str) -> str:
    cols = codec.COLUMNS[table]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    return f"{_insert(table)} ON CONFLICT(id) DO UPDATE SET {updates}"


# An account's row and its patient's partition key (kept by the store, not a field of the record).
_ACCOUNT_INSERT = (
    f"INSERT INTO accounts ({_cols('accounts')}, partition_key) "
    f"VALUES ({', '.join('?' * (len(codec.COLUMNS['accounts']) + 1))})"
)
_ACCOUNT_UPSERT = f"{_ACCOUNT_INSERT} ON CONFLICT(id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in (*codec.COLUMNS["accounts"][1:], "partition_key")
)


def _accounts_of(rows: PortfolioRows) -> list[str]:
    """The accounts a bulk load's rows name (``accounts.id``, every other table's ``account_id``)."""
    found = dict.fromkeys(r[0] for r in rows.accounts)
    for table in codec.ACCOUNT_TABLES:
        batch = getattr(rows, table, None)
        if batch:
            at = codec.COLUMNS[table].index("account_id")
            found.update(dict.fromkeys(r[at] for r in batch))
    return list(found)


#: A partitioned plan read names at most this many accounts per batch (one SQL variable each).
_PARTITION_BATCH = 5000


def _batch_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("Store", "batch_size", f"must be a positive int, got {value!r}")
    return value


class SQLiteStore:
    """The :class:`~carecollect.store.base.Store` on one SQLite file.

    :param path: the database file (created with its folder if missing), or ``":memory:"``.
    :param timeout: seconds to wait for another writer before giving up.
    :param check_same_thread: refuse use from a thread other than the one that opened it
        (:mod:`sqlite3`'s guard). Pass ``False`` only when the caller serialises every use
        itself, as the patient pages do (one store thread).
    :raises StoreError: the file's schema is newer than this carecollect.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, check_same_thread: bool = True
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread
        )
        self._depth = 0
        #: while a unit of work holds the write lock: each audit chain's last (position, hash) it
        #: read or wrote, and the log's last seq (0: not read yet)
        self._audit_heads: dict[str, tuple[int, str]] = {}
        self._audit_seq = 0
        # the migration that added the column fills it, and a read falls back on it for a row
        # some other program inserted without one
        self._db.create_function("carecollect_partition_key", 1, codec.partition_key, deterministic=True)
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")  # fails first on a file that is no database
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except BaseException:
            self._db.close()  # a refused file leaves no connection behind
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- connection, transactions, migrations -----------------------------------
    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work: ``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an exception.

        A nested block is a savepoint: if it fails, only its own writes are undone.
        """
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._forget_audit_heads()  # read again under the write lock
            try:
                yield
            except BaseException:
                self._depth = 0
                self._forget_audit_heads()
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._forget_audit_heads()
            self._db.execute("COMMIT")
            return
        name = f"sp{self._depth}"
        self._db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self._forget_audit_heads()  # the savepoint's audit records are undone
            self._db.execute(f"ROLLBACK TO {name}")
            self._db.execute(f"RELEASE {name}")
            raise
        self._depth -= 1
        self._db.execute(f"RELEASE {name}")

    def _forget_audit_heads(self) -> None:
        self._audit_heads.clear()
        self._audit_seq = 0

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """A store method's own unit of work, for methods with at most one write, as their last statement.

        Alone, it is a transaction. Inside a caller's transaction it joins it without a savepoint:
        a single SQLite statement is atomic by itself (it is undone whole if it fails), and nothing
        follows it that could fail, so there is never a partial write to roll back.
        """
        if self._depth:
            yield
            return
        with self.transaction():
            yield

    def backup(self, dest: str | os.PathLike[str]) -> None:
        """Copy the whole store to the new file ``dest`` with SQLite's online backup API.

        The copy is one consistent snapshot even while another process (a run) writes to this
        file: every table, the schema version, the run's history (outreach, outbox, plans,
        disputes, applications, placements, mandates, processed webhook ids, the hook-event
        queue) and the audit log, whose chain verifies in the copy as here.

        :param dest: the file to write; it must not exist.
        :raises StoreError: ``dest`` exists (a backup never overwrites a database).
        """
        target = Path(dest)
        if target.exists():
            raise StoreError(f"Store backup: {target} exists; choose a new file (a backup never overwrites)")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(sqlite3.connect(target)) as copy:
                self._db.backup(copy)
                copy.execute("DELETE FROM run_lock")  # a run going on here does not hold the copy
                copy.commit()
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def restore_from(self, source: SQLiteStore) -> None:
        """Replace everything in this store with the whole of ``source`` (SQLite's backup API).

        :param source: the store to copy, e.g. a file :meth:`backup` wrote.
        :raises StoreError: called inside a transaction.
        """
        if self._depth:
            raise StoreError("Store restore: not inside a transaction")
        source._db.backup(self._db)
        with self.transaction():
            self._db.execute("DELETE FROM run_lock")  # the source's run does not hold this file

    def change_token(self) -> tuple[int, int]:
        """A value that differs whenever anything was written to the file since it was taken.

        It pairs SQLite's ``data_version`` (it changes when *another* connection, in this process or
        any other, commits) with this connection's count of changed rows (its own writes). The
        daily run uses it to skip re-reading an account that nothing touched since it last read it.
        """
        return (int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._db.total_changes)

    def account_versions(self, account_ids: Sequence[str]) -> dict[str, int]:
        """Each account's version: a number that changes, in the transaction that writes, with every
        write to anything :meth:`account_snapshot` returns for it (its row, its patient and contact
        points, its invoices, ledger, plans, disputes, outreach, placements, mandates and
        applications, and the insurer's claim records on its invoices), by this connection or
        another, and with nothing else. An account never written since the store began keeping
        versions (and an unknown id) is at 0.

        The daily run reads an account's version before its snapshot and, once the file changed
        (:meth:`change_token`), uses the snapshot only while the version is the same: another
        worker's writes to other accounts no longer make it read everything again.
        """
        ids = list(dict.fromkeys(account_ids))
        found: dict[str, int] = dict.fromkeys(ids, 0)
        for start in range(0, len(ids), _PARTITION_BATCH):
            part = ids[start : start + _PARTITION_BATCH]
            found.update(
                self._db.execute(
                    "SELECT account_id, version FROM account_versions "
                    f"WHERE account_id IN ({', '.join('?' * len(part))})",
                    part,
                ).fetchall()
            )
        return found

    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def applied_migrations(self) -> list[tuple[int, str, str]]:
        """``(version, description, applied_at)`` of every migration applied, in order."""
        return [
            tuple(r)
            for r in self._db.execute(
                "SELECT version, description, applied_at FROM schema_version ORDER BY version"
            )
        ]

    def _migrate(self) -> None:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        current = self.schema_version()
        known = MIGRATIONS[-1][0]
        if current > known:
            self.close()
            raise StoreError(
                f"Store {self.path}: schema version {current} is newer than this carecollect knows ({known}); "
                "upgrade carecollect to open it"
            )
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                for statement in statements:
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (version, description, dt.datetime.now(dt.UTC).isoformat()),
                )

    def _one(self, sql: str, params: Sequence[Any], record: str, ident: str) -> Any:
        row = self._db.execute(sql, params).fetchone()
        if row is None:
            raise NotFound(record, ident)
        return row

    # -- creditors, patients, accounts -----------------------------------------------
    def put_creditor(self, creditor: Creditor) -> None:
        """Insert or replace a creditor."""
        with self.transaction():
            self._db.execute(_upsert("creditors"), codec.creditor_row(creditor))

    def get_creditor(self, creditor_id: str) -> Creditor:
        """The creditor with that id; :class:`NotFound` if there is none."""
        row = self._one(
            f"SELECT {_cols('creditors')} FROM creditors WHERE id = ?",
            (creditor_id,),
            "Creditor",
            creditor_id,
        )
        return codec.creditor_from_row(row)

    def creditors(self) -> list[Creditor]:
        """Every creditor, by id."""
        return [
            codec.creditor_from_row(r)
            for r in self._db.execute(f"SELECT {_cols('creditors')} FROM creditors ORDER BY id")
        ]

    def put_patient(self, patient: Patient) -> None:
        """Insert or replace a patient and their contact points.

        A point whose channel and address are unchanged keeps the bounce mark
        (``undeliverable_at``) stored on it when the new point carries none, so
        an import that repeats a dead address does not revive it; a new address
        starts clean (see :meth:`~carecollect.patients.ContactPoint.deliverable`).
        """
        with self.transaction():
            marks = {
                (r[0], r[1]): r[2]
                for r in self._db.execute(
                    "SELECT channel, address, undeliverable_at FROM contact_points "
                    "WHERE patient_id = ? AND undeliverable_at IS NOT NULL",
                    (patient.id,),
                )
            }
            rows = codec.contact_point_rows(patient)
            if marks:
                rows = [(*r[:-1], r[-1] or marks.get((r[2], r[3]))) for r in rows]
            self._db.execute(_upsert("patients"), codec.patient_row(patient))
            self._db.execute("DELETE FROM contact_points WHERE patient_id = ?", (patient.id,))
            self._db.executemany(_insert("contact_points"), rows)

    def _points(self, where: str, params: Sequence[Any]) -> dict[str, list[ContactPoint]]:
        out: dict[str, list[ContactPoint]] = defaultdict(list)
        sql = f"SELECT {_cols('contact_points')} FROM contact_points WHERE {where} ORDER BY patient_id, position"
        for r in self._db.execute(sql, params):
            out[r[0]].append(codec.contact_point_from_row(r))
        return out

    def get_patient(self, patient_id: str) -> Patient:
        """The patient with that id, with their contact points."""
        row = self._one(
            f"SELECT {_cols('patients')} FROM patients WHERE id = ?", (patient_id,), "Patient", patient_id
        )
        return codec.patient_from_row(row, self._points("patient_id = ?", (patient_id,)).get(patient_id, []))

    def patients_with_address(self, address: str) -> list[tuple[str, Channel]]:
        """Patients (and the channel) whose contact point has exactly ``address``: who sent a reply."""
        rows = self._db.execute(
            "SELECT DISTINCT patient_id, channel FROM contact_points WHERE address = ? ORDER BY patient_id",
            (address,),
        )
        return [(r[0], Channel(r[1])) for r in rows]

    def patients(self) -> Iterator[Patient]:
        """Every patient, by id (read in batches)."""
        last = ""
        while True:
            rows = self._db.execute(
                f"SELECT {_cols('patients')} FROM patients WHERE id > ? ORDER BY id LIMIT 1000", (last,)
            ).fetchall()
            if not rows:
                return
            points = self._points("patient_id BETWEEN ? AND ?", (rows[0][0], rows[-1][0]))
            for r in rows:
                yield codec.patient_from_row(r, points.get(r[0], []))
            last = rows[-1][0]

    def put_account(self, account: Account) -> None:
        """Insert or replace an account; its patient and creditor must be in the store."""
        with self.transaction():
            self._db.execute(
                _ACCOUNT_UPSERT, (*codec.account_row(account), codec.partition_key(account.patient_id))
            )

    def get_account(self, account_id: str) -> Account:
        """The account with that id."""
        row = self._one(
            f"SELECT {_cols('accounts')} FROM accounts WHERE id = ?", (account_id,), "Account", account_id
        )
        return codec.account_from_row(row)

    # -- invoices ------------------------------------------------------------------------
    def put_invoice(self, invoice: Invoice) -> None:
        """Insert or replace an invoice with its lines; its account must be in the store."""
        with self.transaction():
            self._db.execute(_upsert("invoices"), codec.invoice_row(invoice))
            self._db.execute("DELETE FROM invoice_lines WHERE invoice_id = ?", (invoice.id,))
            self._db.executemany(_insert("invoice_lines"), codec.invoice_line_rows(invoice))

    def _invoices(self, where: str, params: Sequence[Any]) -> list[Invoice]:
        rows = self._db.execute(
            f"SELECT {_cols('invoices')} FROM invoices WHERE {where} ORDER BY account_id, id", params
        ).fetchall()
        if not rows:
            return []
        currency = {r[0]: r[2] for r in rows}
        lines: dict[str, list[InvoiceLine]] = defaultdict(list)
        line_where = where.replace("id", "invoice_id") if where.startswith("id") else where
        for r in self._db.execute(
            f"SELECT {_cols('invoice_lines')} FROM invoice_lines WHERE {line_where} ORDER BY invoice_id, position",
            params,
        ):
            if r[0] in currency:
                lines[r[0]].append(codec.invoice_line_from_row(r, currency[r[0]]))
        return [codec.invoice_from_row(r, lines[r[0]]) for r in rows]

    def get_invoice(self, invoice_id: str) -> Invoice:
        """The invoice with that id, with its lines."""
        found = self._invoices("id = ?", (invoice_id,))
        if not found:
            raise NotFound("Invoice", invoice_id)
        return found[0]

    def invoices_for(self, account_id: str) -> tuple[Invoice, ...]:
        """An account's invoices, by id."""
        return tuple(self._invoices("account_id = ?", (account_id,)))

    # -- ledger ----------------------------------------------------------------------------
    def append_ledger(self, account_id: str, entries: Iterable[LedgerEntry]) -> int:
        """Append entries to the account's ledger; identical entries already there are skipped.

        :returns: how many were new.
        :raises DuplicateEntry: a key is already used on this account by a different entry.
        """
        added = 0
        with self.transaction():
            for entry in entries:
                row = codec.ledger_entry_row(account_id, entry)
                cur = self._db.execute(
                    _insert("ledger_entries") + " ON CONFLICT(account_id, key) DO NOTHING", row
                )
                if cur.rowcount == 1:
                    added += 1
                    continue
                old = self._db.execute(
                    f"SELECT {_cols('ledger_entries')} FROM ledger_entries WHERE account_id = ? AND key = ?",
                    (account_id, entry.key),
                ).fetchone()
                if codec.ledger_entry_from_row(old) != entry:
                    raise DuplicateEntry(
                        f"Ledger {account_id}: key {entry.key!r} is already used by a different entry; "
                        "use a new key for a new entry"
                    )
        return added

    def ledger(self, account_id: str) -> Ledger:
        """The account's ledger, entries in posting order."""
        account = self.get_account(account_id)
        rows = self._db.execute(
            f"SELECT {_cols('ledger_entries')} FROM ledger_entries WHERE account_id = ? ORDER BY seq",
            (account_id,),
        )
        return Ledger(account_id, account.currency, tuple(codec.ledger_entry_from_row(r) for r in rows))

    # -- plans, disputes, outreach, placements ---------------------------------------------------
    def put_plan(self, plan: PaymentPlan) -> None:
        """Insert or replace a plan with its instalments."""
        with self.transaction():
            self._db.execute(_upsert("plans"), codec.plan_row(plan))
            self._db.execute("DELETE FROM instalments WHERE plan_id = ?", (plan.id,))
            self._db.executemany(_insert("instalments"), codec.instalment_rows(plan))

    def _plans(self, where: str, params: Sequence[Any]) -> list[PaymentPlan]:
        rows = self._db.execute(
            f"SELECT {_cols('plans')} FROM plans WHERE {where} ORDER BY account_id, id", params
        ).fetchall()
        if not rows:
            return []
        insts: dict[str, list[Any]] = defaultdict(list)
        inst_where = where.replace("id", "plan_id") if where.startswith("id") else where
        for r in self._db.execute(
            f"SELECT {_cols('instalments')} FROM instalments WHERE {inst_where} ORDER BY plan_id, position",
            params,
        ):
            insts[r[0]].append(r)
        return [codec.plan_from_row(r, insts[r[0]]) for r in rows]

    def get_plan(self, plan_id: str) -> PaymentPlan:
        """The plan with that id."""
        found = self._plans("id = ?", (plan_id,))
        if not found:
            raise NotFound("PaymentPlan", plan_id)
        return found[0]

    def put_dispute(self, dispute: Dispute) -> None:
        """Insert or replace a dispute."""
        with self.transaction():
            self._db.execute(_upsert("disputes"), codec.dispute_row(dispute))

    def get_dispute(self, dispute_id: str) -> Dispute:
        """The dispute with that id."""
        row = self._one(
            f"SELECT {_cols('disputes')} FROM disputes WHERE id = ?", (dispute_id,), "Dispute", dispute_id
        )
        return codec.dispute_from_row(row)

    def put_step(self, step: OutreachStep) -> None:
        """Insert or replace an outreach step."""
        with self._unit():
            self._db.execute(_upsert("outreach_steps"), codec.step_row(step))

    def put_steps(self, steps: Sequence[OutreachStep]) -> None:
        """Insert or replace many steps in one ``executemany`` (of two with one id, the later wins)."""
        if not steps:
            return
        with self.transaction():
            self._db.executemany(_upsert("outreach_steps"), [codec.step_row(s) for s in steps])

    def get_step(self, step_id: str) -> OutreachStep:
        """The step with that id."""
        row = self._one(
            f"SELECT {_cols('outreach_steps')} FROM outreach_steps WHERE id = ?",
            (step_id,),
            "OutreachStep",
            step_id,
        )
        return codec.step_from_row(row)

    def add_attempt(self, attempt: ContactAttempt) -> bool:
        """Record an attempt; the same id again is ignored. Returns True if it was new."""
        with self._unit():
            cur = self._db.execute(
                _insert("contact_attempts") + " ON CONFLICT(id) DO NOTHING", codec.attempt_row(attempt)
            )
        return cur.rowcount == 1

    def add_attempts(self, attempts: Sequence[ContactAttempt]) -> int:
        """Record many attempts in one statement (``executemany``); ids already recorded are ignored.

        :returns: how many were new.
        """
        if not attempts:
            return 0
        with self.transaction():
            # the rows the statement inserted (the version triggers' own writes not counted)
            return self._db.executemany(
                _insert("contact_attempts") + " ON CONFLICT(id) DO NOTHING",
                [codec.attempt_row(a) for a in attempts],
            ).rowcount

    def attempt_by_provider_message_id(self, provider_message_id: str) -> ContactAttempt | None:
        """The first attempt that carried the channel's ``provider_message_id`` (``None``: none)."""
        row = self._db.execute(
            f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE provider_message_id = ? "
            "ORDER BY seq LIMIT 1",
            (provider_message_id,),
        ).fetchone()
        return None if row is None else codec.attempt_from_row(row)

    def attempts_for(self, account_id: str) -> tuple[ContactAttempt, ...]:
        """The account's attempts, oldest first."""
        rows = self._db.execute(
            f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE account_id = ? ORDER BY at, seq",
            (account_id,),
        )
        return tuple(codec.attempt_from_row(r) for r in rows)

    def put_placement(self, placement: AgencyPlacement) -> None:
        """Insert or replace a placement; remittances already stored are kept, new ones added."""
        with self.transaction():
            self._db.execute(_upsert("placements"), codec.placement_row(placement))
            self._db.executemany(
                _insert("remittances") + " ON CONFLICT(placement_id, id) DO NOTHING",
                codec.remittance_rows(placement),
            )

    def _placements(self, where: str, params: Sequence[Any]) -> list[AgencyPlacement]:
        rows = self._db.execute(
            f"SELECT {_cols('placements')} FROM placements WHERE {where} ORDER BY account_id, id", params
        ).fetchall()
        if not rows:
            return []
        rems: dict[str, list[Any]] = defaultdict(list)
        rem_where = where.replace("id", "placement_id") if where.startswith("id") else where
        for r in self._db.execute(
            f"SELECT {_cols('remittances')} FROM remittances WHERE {rem_where} ORDER BY placement_id, position",
            params,
        ):
            rems[r[0]].append(r)
        return [codec.placement_from_row(r, rems[r[0]]) for r in rows]

    def get_placement(self, placement_id: str) -> AgencyPlacement:
        """The placement with that id, with its remittances."""
        found = self._placements("id = ?", (placement_id,))
        if not found:
            raise NotFound("AgencyPlacement", placement_id)
        return found[0]

    # -- mandates and provider payment references -------------------------------------------------
    _MANDATE = "plan_id, account_id, provider, method, reference, created_at, revoked_at"

    @staticmethod
    def _mandate(r: Sequence[Any]) -> Mandate:
        return Mandate(
            r[0], r[1], r[2], r[3], r[4], codec.instant_from_iso(r[5]), codec.opt_instant_from_iso(r[6])
        )

    def _mandates(self, where: str, params: Sequence[Any]) -> list[Mandate]:
        rows = self._db.execute(
            f"SELECT {self._MANDATE} FROM mandates WHERE {where} ORDER BY plan_id", params
        )
        return [self._mandate(r) for r in rows]

    def put_mandate(self, mandate: Mandate) -> None:
        """Insert or replace the mandate of ``mandate.plan_id`` (one per plan)."""
        with self.transaction():
            self._db.execute(
                # an upsert, not a REPLACE: a row that moves account bumps both accounts' versions
                f"INSERT INTO mandates ({self._MANDATE}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(plan_id) DO UPDATE SET (account_id, provider, method, reference, created_at, "
                "revoked_at) = (excluded.account_id, excluded.provider, excluded.method, excluded.reference, "
                "excluded.created_at, excluded.revoked_at)",
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
        with self.transaction():
            self._db.execute(
                "UPDATE mandates SET revoked_at = ? WHERE provider = ? AND reference = ? AND revoked_at IS NULL",
                (codec.iso_instant(at), provider, reference),
            )
            found = self._mandates("provider = ? AND reference = ?", (provider, reference))
        return found[0] if found else None

    # -- financial-assistance applications ---------------------------------------------------------
    _APPLICATION = "id, account_id, received_on, status, decided_on"

    def _applications(self, where: str, params: Sequence[Any]) -> list[AssistanceApplication]:
        rows = self._db.execute(
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
        with self.transaction():
            if (
                self._db.execute("SELECT 1 FROM accounts WHERE id = ?", (application.account_id,)).fetchone()
                is None
            ):
                raise NotFound("Account", application.account_id)
            self._db.execute(
                # an upsert, not a REPLACE: a row that moves account bumps both accounts' versions
                f"INSERT INTO assistance_applications ({self._APPLICATION}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET (account_id, received_on, status, decided_on) = "
                "(excluded.account_id, excluded.received_on, excluded.status, excluded.decided_on)",
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
        with self.transaction():
            self._db.execute(
                "INSERT INTO provider_payments (provider, reference, account_id, payment_id, plan_id, instalment) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(provider, reference) DO NOTHING",
                (
                    link.provider,
                    link.reference,
                    link.account_id,
                    link.payment_id,
                    link.plan_id,
                    link.instalment,
                ),
            )

    def provider_payment(self, provider: str, reference: str) -> ProviderPayment | None:
        """The link recorded for a provider's payment reference, if any."""
        r = self._db.execute(
            "SELECT provider, reference, account_id, payment_id, plan_id, instalment FROM provider_payments "
            "WHERE provider = ? AND reference = ?",
            (provider, reference),
        ).fetchone()
        return None if r is None else ProviderPayment(r[0], r[1], r[2], r[3], r[4], r[5])

    # -- reading the portfolio ------------------------------------------------------------------
    def account_snapshot(self, account_id: str) -> AccountSnapshot:
        """Everything about one account."""
        self.get_account(account_id)
        return next(self._snapshots(account_id, account_id))

    def _snapshots(self, lo: str, hi: str) -> Iterator[AccountSnapshot]:
        yield from self._snapshots_where("BETWEEN ? AND ?", (lo, hi))

    def account_snapshots(self, account_ids: Sequence[str]) -> Iterator[AccountSnapshot]:
        """The snapshots of ``account_ids`` (in id order; unknown ids are left out), read together.

        :param account_ids: account ids.
        """
        if not account_ids:
            return
        yield from self._snapshots_where(
            "IN (SELECT value FROM json_each(?))", (json.dumps(list(account_ids)),)
        )

    def _snapshots_where(self, match: str, rng: tuple[str, ...]) -> Iterator[AccountSnapshot]:
        accounts = [
            codec.account_from_row(r)
            for r in self._db.execute(
                f"SELECT {_cols('accounts')} FROM accounts WHERE id {match} ORDER BY id", rng
            )
        ]
        patient_rows = {
            r[0]: r
            for r in self._db.execute(
                f"SELECT {', '.join('p.' + c for c in codec.COLUMNS['patients'])} FROM patients p "
                f"JOIN accounts a ON a.patient_id = p.id WHERE a.id {match}",
                rng,
            )
        }
        points: dict[str, list[ContactPoint]] = defaultdict(list)
        for r in self._db.execute(
            f"SELECT {', '.join('c.' + c for c in codec.COLUMNS['contact_points'])} FROM contact_points c "
            f"WHERE c.patient_id IN (SELECT patient_id FROM accounts WHERE id {match}) "
            "ORDER BY c.patient_id, c.position",
            rng,
        ):
            points[r[0]].append(codec.contact_point_from_row(r))
        patients = {pid: codec.patient_from_row(r, points.get(pid, [])) for pid, r in patient_rows.items()}
        where = f"account_id {match}"
        invoices: dict[str, list[Invoice]] = defaultdict(list)
        for inv in self._invoices(where, rng):
            invoices[inv.account_id].append(inv)
        entries: dict[str, list[LedgerEntry]] = defaultdict(list)
        for r in self._db.execute(
            f"SELECT {_cols('ledger_entries')} FROM ledger_entries WHERE {where} ORDER BY seq", rng
        ):
            entries[r[0]].append(codec.ledger_entry_from_row(r))
        plans: dict[str, list[PaymentPlan]] = defaultdict(list)
        for plan in self._plans(where, rng):
            plans[plan.account_id].append(plan)
        disputes: dict[str, list[Dispute]] = defaultdict(list)
        for r in self._db.execute(f"SELECT {_cols('disputes')} FROM disputes WHERE {where} ORDER BY id", rng):
            disputes[r[1]].append(codec.dispute_from_row(r))
        steps: dict[str, list[OutreachStep]] = defaultdict(list)
        for r in self._db.execute(
            f"SELECT {_cols('outreach_steps')} FROM outreach_steps WHERE {where} ORDER BY id", rng
        ):
            steps[r[1]].append(codec.step_from_row(r))
        attempts: dict[str, list[ContactAttempt]] = defaultdict(list)
        for r in self._db.execute(
            f"SELECT {_cols('contact_attempts')} FROM contact_attempts WHERE {where} ORDER BY at, seq", rng
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
        for a in accounts:
            yield AccountSnapshot(
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

    def iter_account_snapshots(self, *, batch_size: int = 1000) -> Iterator[AccountSnapshot]:
        """Every account in id order, ``batch_size`` accounts per read: memory stays flat."""
        size = _batch_size(batch_size)
        last = ""
        while True:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM accounts WHERE id > ? ORDER BY id LIMIT ?", (last, size)
                )
            ]
            if not ids:
                return
            yield from self._snapshots(ids[0], ids[-1])
            last = ids[-1]

    def iter_plan_facts(
        self, *, now: dt.datetime, batch_size: int = 2000, partition: tuple[int, int] | None = None
    ) -> Iterator[PlanFacts]:
        """The planner's facts at ``now``, ``batch_size`` accounts per :class:`~carecollect.store.base.PlanFacts`.

        One query per table and batch, aggregated in SQL where that is exact (an invoice's lines
        total and ledger balance; which contact points are usable at ``now``, comparing the
        store's UTC instants as text, which orders them as their instants); no domain objects.
        Accounts come in id order, so every fact of one account is in one batch.

        :param now: the run's instant (aware).
        :param batch_size: accounts per batch (at most 5,000 for a partition's read).
        :param partition: ``(k, n)``: only the accounts of partition ``k`` of ``n``
            (:func:`~carecollect.store.codec.partition_key` of the patient modulo ``n`` is
            ``k``), filtered in SQL; ``None``: every account.
        :raises ValidationError: ``batch_size``, ``partition`` or ``now`` is malformed.
        """
        size = _batch_size(batch_size)
        part = checked_partition(partition)
        at = codec.iso_instant(require_aware(now, "Store", "now"))
        db = self._db
        last = ""
        while True:
            if part is None:
                accounts = db.execute(
                    self._FACTS_ACCOUNTS, {"now": at, "last": last, "size": size}
                ).fetchall()
                scope, params = "BETWEEN ? AND ?", (accounts[0][0], accounts[-1][0]) if accounts else ()
            else:
                accounts = db.execute(
                    self._FACTS_ACCOUNTS_OF_PARTITION,
                    {
                        "now": at,
                        "last": last,
                        "n": part[1],
                        "k": part[0],
                        "size": min(size, _PARTITION_BATCH),
                    },
                ).fetchall()
                params = tuple(a[0] for a in accounts)
                scope = f"IN ({', '.join('?' * len(params))})"
            if not accounts:
                return
            yield PlanFacts(
                accounts=accounts,
                **{
                    name: db.execute(sql.format(scope=scope), params).fetchall()
                    for name, sql in self._FACTS.items()
                },
            )
            last = accounts[-1][0]

    _POINT_BIT, _POINT_CHECKED = contact_facts_sql(":now")
    # An account's facts with its patient's contact points summed up at ``:now`` (see PlanFacts).
    # The points are joined in their index's order (patient, position), the order group_concat
    # sees them in; ``exact``: every instant of the points is in the store's UTC form, so the
    # text comparisons order them as their instants (the few other points are in a partial index).
    _FACTS_SELECT = f"""
        SELECT a.id, a.patient_id, a.creditor_id, a.currency, a.jurisdiction, p.time_zones, p.cease_requested_at,
               c.role, c.nonprofit, SUM(DISTINCT {_POINT_BIT}), MAX({_POINT_CHECKED}),
               group_concat(NULLIF(cp.time_zone, ''), ' '),
               a.patient_id NOT IN (SELECT patient_id FROM contact_points WHERE {_INEXACT_POINT})
          FROM accounts a JOIN patients p ON p.id = a.patient_id JOIN creditors c ON c.id = a.creditor_id
               LEFT JOIN contact_points cp ON cp.patient_id = a.patient_id"""
    _FACTS_ACCOUNTS = f"{_FACTS_SELECT} WHERE a.id > :last GROUP BY a.id ORDER BY a.id LIMIT :size"
    _FACTS_ACCOUNTS_OF_PARTITION = f"""{_FACTS_SELECT}
         WHERE a.id > :last AND COALESCE(a.partition_key, carecollect_partition_key(a.patient_id)) % :n = :k
         GROUP BY a.id ORDER BY a.id LIMIT :size"""
    # Each table's facts of a batch's accounts: ``{scope}`` is an id range, or a partition's ids.
    # The balance: the account's ledger for the invoice once a charge was posted (the sum the
    # ledger's trigger keeps on the invoice, see migration 15), else the patient's share.
    _FACTS: ClassVar[dict[str, str]] = {
        "invoices": """
        SELECT i.id, i.account_id, i.currency, i.issue_date, i.due_date, i.status, i.claim_status,
               i.claim_submitted_on,
               CASE WHEN i.ledger_charged THEN i.ledger_balance_minor
                    ELSE (SELECT COALESCE(SUM(l.amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id)
                         - COALESCE(i.insurer_paid_minor, 0) - COALESCE(i.contractual_adjustment_minor, 0) END
          FROM invoices i
         WHERE i.account_id {scope} ORDER BY i.account_id, i.id""",
        "steps": """
        SELECT account_id, invoice_id, purpose, sent_at, id FROM outreach_steps
         WHERE account_id {scope} AND status IN ('sent', 'delivered') AND sent_at IS NOT NULL""",
        "attempts": """
        SELECT account_id, invoice_id, channel, at, outcome FROM contact_attempts
         WHERE account_id {scope}""",
        "disputes": """
        SELECT account_id, invoice_id FROM disputes WHERE account_id {scope} AND status = 'open'""",
        "plans": """
        SELECT account_id, id, invoice_ids, status FROM plans
         WHERE account_id {scope} AND status IN ('active', 'paused') ORDER BY account_id, id""",
        "instalments": """
        SELECT p.account_id, i.plan_id, i.number, i.due_date, i.status
          FROM plans p JOIN instalments i ON i.plan_id = p.id
         WHERE p.account_id {scope} AND p.status = 'active' AND i.status = 'due'
         ORDER BY p.account_id, p.id, i.position""",
        "mandates": "SELECT account_id, plan_id, revoked_at FROM mandates WHERE account_id {scope}",
        "applications": """
        SELECT account_id FROM assistance_applications
         WHERE account_id {scope} AND status IN ('received', 'incomplete')""",
        "placements": """
        SELECT account_id, status, placed_at FROM placements WHERE account_id {scope}
         ORDER BY account_id, id""",
    }

    _ROW_SQL = """
        SELECT i.id, i.account_id, a.patient_id, a.jurisdiction, i.currency, p.preferred_language, p.time_zones,
               i.status, i.claim_status, i.issue_date, i.due_date, i.first_statement_date,
               (SELECT COALESCE(SUM(l.amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id),
               (SELECT COALESCE(SUM(CASE WHEN e.kind IN ('charge', 'refund', 'payment_reversed', 'insurance_reversed')
                                         THEN e.amount_minor ELSE -e.amount_minor END), 0)
                  FROM ledger_entries e WHERE e.invoice_id = i.id AND e.account_id = i.account_id),
               EXISTS (SELECT 1 FROM disputes d WHERE d.account_id = i.account_id AND d.status = 'open'
                       AND (d.invoice_id IS NULL OR d.invoice_id = i.id)),
               (SELECT pl.status FROM plans pl WHERE pl.account_id = i.account_id
                  ORDER BY pl.created_at DESC, pl.id DESC LIMIT 1),
               p.cease_requested_at IS NOT NULL
          FROM invoices i JOIN accounts a ON a.id = i.account_id JOIN patients p ON p.id = a.patient_id
         WHERE i.id > ? ORDER BY i.id LIMIT ?"""

    def iter_invoice_rows(self, *, batch_size: int = 5000) -> Iterator[InvoiceRow]:
        """Every invoice as a flat :class:`InvoiceRow` (balance from the ledger), read in batches."""
        size = _batch_size(batch_size)
        last = ""
        fromiso = dt.date.fromisoformat
        while True:
            rows = self._db.execute(self._ROW_SQL, (last, size)).fetchall()
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
                    r[12],
                    r[13],
                    bool(r[14]),
                    r[15],
                    bool(r[16]),
                )
            last = rows[-1][0]

    def counts(self) -> dict[str, int]:
        """How many rows each table holds."""
        tables = (
            "creditors",
            "patients",
            "contact_points",
            "accounts",
            *_CHILD_TABLES,
            "outbox",
            "processed_events",
            "audit_log",
        )
        return {t: int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    def bulk_load(self, rows: PortfolioRows) -> None:
        """Insert a batch of plain rows (column order :data:`~carecollect.store.codec.COLUMNS`) in one transaction.

        The version triggers are set aside while the rows go in, and every account the batch
        wrote to (its patient's rows included) has its version moved once at the end, in the
        same transaction: no other connection ever sees the file without them, and a large
        portfolio loads without an upsert per row (1.35x the time with them).
        """
        with self.transaction():
            # the row version triggers as the file holds them (whichever migrations made them)
            aside = self._db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name GLOB '*_version_*' "
                "AND tbl_name != 'audit_log' ORDER BY name"
            ).fetchall()
            for name, _ in aside:
                self._db.execute(f'DROP TRIGGER "{name}"')
            self._bulk_insert(rows)
            self._db.executemany(
                _bump("SELECT ?, 1 WHERE true").rstrip(";"), [(a,) for a in _accounts_of(rows)]
            )
            patients = dict.fromkeys([r[0] for r in rows.patients] + [r[0] for r in rows.contact_points])
            self._db.executemany(
                _bump("SELECT id, 1 FROM accounts WHERE patient_id = ?").rstrip(";"), [(p,) for p in patients]
            )
            for _, sql in aside:
                self._db.execute(sql)

    def _bulk_insert(self, rows: PortfolioRows) -> None:
        for table in PORTFOLIO_TABLES:
            batch = getattr(rows, table)
            if table == "accounts":
                self._db.executemany(_ACCOUNT_INSERT, [(*r, codec.partition_key(r[1])) for r in batch])
            elif batch:
                self._db.executemany(_insert(table), batch)

    # -- outbox ----------------------------------------------------------------------------------
    _OUTBOX = codec.OUTBOX_COLUMNS
    _outbox_item = staticmethod(codec.outbox_item_from_row)

    def outbox_get(self, key: str) -> OutboxItem:
        """The outbox item with that key."""
        return self._outbox_item(
            self._one(f"SELECT {self._OUTBOX} FROM outbox WHERE key = ?", (key,), "OutboxItem", key)
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

        :raises DuplicateEntry: the key is already recorded with a different kind or payload.
        """
        text = canonical_json(dict(payload))
        with self._unit():  # read, then at most one write (we hold the write lock: no race)
            row = self._db.execute(f"SELECT {self._OUTBOX} FROM outbox WHERE key = ?", (key,)).fetchone()
            if row is not None:
                item = self._outbox_item(row)
                if item.kind != kind or canonical_json(dict(item.payload)) != text:
                    raise DuplicateEntry(
                        f"OutboxItem {key}: already recorded with a different kind or payload; use a new key"
                    )
                return item
            new = (key, kind, account_id, text, OutboxStatus.INTENDED.value, codec.iso_instant(at))
            self._db.execute(
                "INSERT INTO outbox (key, kind, account_id, payload, status, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                new,
            )
        # the row as stored (the columns not written take their defaults)
        return self._outbox_item((*new, None, 0, None, None, None))

    def outbox_done(
        self, key: str, *, at: dt.datetime, result: Mapping[str, Any] | None = None
    ) -> OutboxItem:
        """Record the item performed; doing so twice keeps the first record."""
        # one write, which returns the row as updated (SQLite makes all its changes at once)
        with self._unit():
            rows = self._db.execute(
                "UPDATE outbox SET status = ?, updated_at = ?, attempts = attempts + 1, next_retry_at = NULL, "
                f"result = ? WHERE key = ? AND status != ? RETURNING {self._OUTBOX}",
                (
                    OutboxStatus.DONE.value,
                    codec.iso_instant(at),
                    None if result is None else canonical_json(dict(result)),
                    key,
                    OutboxStatus.DONE.value,
                ),
            ).fetchall()  # stepped to the end: no statement left open
        return self._outbox_item(rows[0]) if rows else self.outbox_get(key)

    def outbox_intend_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
        *,
        at: dt.datetime,
    ) -> dict[str, OutboxItem]:
        """Record many intents: one read of the keys already there, one ``executemany`` for the new.

        :raises DuplicateEntry: a key is recorded with a different kind or payload (nothing is written).
        """
        out: dict[str, OutboxItem] = {}
        texts = {
            key: (kind, canonical_json(dict(payload)), account_id) for key, kind, payload, account_id in items
        }
        if not texts:
            return out
        with self.transaction():
            keys = list(texts)
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                for row in self._db.execute(
                    f"SELECT {self._OUTBOX} FROM outbox WHERE key IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall():
                    item = self._outbox_item(row)
                    kind, text, _ = texts[item.key]
                    if item.kind != kind or canonical_json(dict(item.payload)) != text:
                        raise DuplicateEntry(
                            f"OutboxItem {item.key}: already recorded with a different kind or payload; use a new key"
                        )
                    out[item.key] = item
            when = codec.iso_instant(at)
            new = [
                (key, kind, account_id, text, OutboxStatus.INTENDED.value, when)
                for key, (kind, text, account_id) in texts.items()
                if key not in out
            ]
            self._db.executemany(
                "INSERT INTO outbox (key, kind, account_id, payload, status, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                new,
            )
        for row in new:
            out[row[0]] = self._outbox_item((*row, None, 0, None, None, None))
        return {key: out[key] for key in texts}

    def outbox_done_many(
        self, items: Sequence[tuple[str, Mapping[str, Any] | None]], *, at: dt.datetime
    ) -> None:
        """Record many items performed in one ``executemany``; a done item keeps its first record.

        :raises NotFound: a key was never intended (nothing is written).
        """
        if not items:
            return
        with self.transaction():
            when = codec.iso_instant(at)
            done = self._db.executemany(
                "UPDATE outbox SET status = ?, updated_at = ?, attempts = attempts + 1, next_retry_at = NULL, "
                "result = ? WHERE key = ? AND status != ?",
                [
                    (
                        OutboxStatus.DONE.value,
                        when,
                        None if result is None else canonical_json(dict(result)),
                        key,
                        OutboxStatus.DONE.value,
                    )
                    for key, result in items
                ],
            )
            if done.rowcount != len(items):
                keys = [key for key, _ in items]
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    found = {
                        r[0]
                        for r in self._db.execute(
                            f"SELECT key FROM outbox WHERE key IN ({', '.join('?' * len(chunk))})", chunk
                        )
                    }
                    missing = next((k for k in chunk if k not in found), None)
                    if missing is not None:
                        raise NotFound("OutboxItem", missing)

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

        With ``give_up`` the item is never due again (``next_retry_at`` is empty): it stays failed
        for a person to look at. A done item stays done (the call is ignored).
        """
        with self.transaction():
            item = self.outbox_get(key)
            if item.status is OutboxStatus.DONE:
                return item
            attempts = item.attempts + 1
            when = None if give_up else (retry_at if retry_at is not None else next_retry_at(attempts, at))
            self._db.execute(
                "UPDATE outbox SET status = ?, updated_at = ?, attempts = ?, next_retry_at = ?, last_error = ? "
                "WHERE key = ?",
                (
                    OutboxStatus.FAILED.value,
                    codec.iso_instant(at),
                    attempts,
                    codec.opt_instant(when),
                    error[:500],
                    key,
                ),
            )
            return self.outbox_get(key)

    def outbox_due(self, now: dt.datetime, *, limit: int = 1000) -> list[OutboxItem]:
        """Items intended, or failed with their retry time come, oldest first."""
        rows = self._db.execute(
            f"SELECT {self._OUTBOX} FROM outbox WHERE status = 'intended' OR (status = 'failed' AND next_retry_at <= ?) "
            "ORDER BY recorded_at, key LIMIT ?",
            (codec.iso_instant(now), _batch_size(limit)),
        )
        return [self._outbox_item(r) for r in rows]

    # -- dedupe ----------------------------------------------------------------------------------
    def mark_processed(self, source: str, event_id: str, *, at: dt.datetime) -> bool:
        """Record an incoming event; False if it was already processed."""
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO processed_events (source, event_id, processed_at) VALUES (?, ?, ?) "
                "ON CONFLICT(source, event_id) DO NOTHING",
                (source, event_id, codec.iso_instant(at)),
            )
        return cur.rowcount == 1

    def was_processed(self, source: str, event_id: str) -> bool:
        """True when the event was already processed."""
        return (
            self._db.execute(
                "SELECT 1 FROM processed_events WHERE source = ? AND event_id = ?", (source, event_id)
            ).fetchone()
            is not None
        )

    # -- event hooks owed to plugins ------------------------------------------------------------------
    def hook_event_record(self, hook: str, arguments: str, targets: Sequence[str], *, at: dt.datetime) -> int:
        """Queue a broadcast in the caller's unit of work; returns its seq (nothing owed: done at once)."""
        with self._unit():
            cur = self._db.execute(
                "INSERT INTO hook_events (hook, arguments, targets, recorded_at, done_at) VALUES (?, ?, ?, ?, ?)",
                (
                    hook,
                    arguments,
                    json.dumps(list(targets)),
                    codec.iso_instant(at),
                    None if targets else codec.iso_instant(at),
                ),
            )
        return int(cur.lastrowid or 0)

    def hook_event_delivered(
        self, seq: int, plugins: Sequence[str], *, at: dt.datetime, error: str | None = None
    ) -> None:
        """Record the plugins that took event ``seq``; done once every target has."""
        stamp = codec.iso_instant(at)
        with self.transaction():
            row = self._one("SELECT targets FROM hook_events WHERE seq = ?", (seq,), "HookEvent", str(seq))
            self._db.executemany(
                "INSERT OR IGNORE INTO hook_deliveries (seq, plugin, delivered_at) VALUES (?, ?, ?)",
                [(seq, p, stamp) for p in plugins],
            )
            taken = {
                r[0] for r in self._db.execute("SELECT plugin FROM hook_deliveries WHERE seq = ?", (seq,))
            }
            done = set(json.loads(row[0])) <= taken
            self._db.execute(
                "UPDATE hook_events SET attempts = attempts + 1, last_error = ?, done_at = ? WHERE seq = ?",
                (error, stamp if done else None, seq),
            )

    def hook_events_pending(self, *, limit: int = 1000) -> list[PendingHookEvent]:
        """Events some target plugin has not taken yet, oldest first."""
        rows = self._db.execute(
            "SELECT seq, hook, arguments, targets, recorded_at, attempts, last_error FROM hook_events "
            "WHERE done_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        out = []
        for r in rows:
            taken = tuple(
                p[0]
                for p in self._db.execute(
                    "SELECT plugin FROM hook_deliveries WHERE seq = ? ORDER BY plugin", (r[0],)
                )
            )
            out.append(
                PendingHookEvent(
                    r[0], r[1], r[2], tuple(json.loads(r[3])), taken, codec.instant_from_iso(r[4]), r[5], r[6]
                )
            )
        return out

    # -- inbox ----------------------------------------------------------------------------------
    def inbox_put(self, item: InboxItem) -> bool:
        """Keep an inbound event (committed on return); False when it is already kept."""
        with self._unit():
            cur = self._db.execute(
                "INSERT INTO inbox (kind, plugin, event_id, headers, body, received_at, taken_at, outcome, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, plugin, event_id) DO NOTHING",
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
        return cur.rowcount == 1

    def inbox_pending(self, *, limit: int = 1000) -> list[InboxItem]:
        """Events not yet taken in, oldest first."""
        rows = self._db.execute(
            "SELECT kind, plugin, event_id, headers, body, received_at, taken_at, outcome, attempts FROM inbox "
            "WHERE taken_at IS NULL ORDER BY received_at, rowid LIMIT ?",
            (_batch_size(limit),),
        ).fetchall()
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
        with self._unit():
            cur = self._db.execute(
                "UPDATE inbox SET taken_at = ?, outcome = ?, attempts = attempts + 1 "
                "WHERE kind = ? AND plugin = ? AND event_id = ?",
                (codec.iso_instant(at), outcome, kind, plugin, event_id),
            )
        if cur.rowcount != 1:
            raise NotFound("InboxItem", f"{kind}/{plugin}/{event_id}")

    def inbox_retry(self, kind: str, plugin: str, event_id: str, *, outcome: str) -> None:
        """Count a failed attempt; the event stays pending."""
        with self._unit():
            cur = self._db.execute(
                "UPDATE inbox SET outcome = ?, attempts = attempts + 1 WHERE kind = ? AND plugin = ? AND event_id = ?",
                (outcome, kind, plugin, event_id),
            )
        if cur.rowcount != 1:
            raise NotFound("InboxItem", f"{kind}/{plugin}/{event_id}")

    # -- contact requests --------------------------------------------------------------------------
    def put_contact_request(self, request: ContactRequest) -> None:
        """Keep a patient's contact request (insert or replace by contact id)."""
        rec = request.record
        with self._unit():
            self._db.execute(
                "INSERT OR REPLACE INTO contact_requests (contact_id, account_id, channel, topic, started_at, "
                "invoice_id, queue, respond_by, reply_by, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        where, params = ("WHERE account_id = ?", (account_id,)) if account_id is not None else ("", ())
        rows = self._db.execute(
            "SELECT contact_id, account_id, channel, topic, started_at, invoice_id, queue, respond_by, reply_by, "
            f"message FROM contact_requests {where} ORDER BY started_at, contact_id",
            params,
        ).fetchall()
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

    # -- run lock ---------------------------------------------------------------------------------
    def current_run_lock(self) -> RunLock | None:
        """The lock as it stands, if anyone holds it."""
        r = self._db.execute(
            "SELECT owner, pid, started_at, heartbeat_at, stale_after_seconds FROM run_lock WHERE name = 'run'"
        ).fetchone()
        if r is None:
            return None
        return RunLock(
            r[0], r[1], codec.instant_from_iso(r[2]), codec.instant_from_iso(r[3]), dt.timedelta(seconds=r[4])
        )

    def acquire_run_lock(
        self, owner: str, pid: int, *, now: dt.datetime, stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER
    ) -> RunLock:
        """Take the run lock; a lock whose holder let its own ``stale_after`` pass is taken over.

        ``now`` is the wall clock (the lock is shared between processes); ``stale_after`` is
        this holder's promise to beat more often than that.

        :raises RunLocked: someone else holds a live lock.
        """
        if stale_after <= dt.timedelta(0):
            raise ValidationError("RunLock", "stale_after", f"must be positive, got {stale_after}")
        stamp = codec.iso_instant(now)
        with self.transaction():
            held = self.current_run_lock()
            if held is not None and not (held.owner == owner and held.pid == pid) and not held.stale(now):
                raise RunLocked(held.owner, held.pid, held.started_at, held.heartbeat_at, held.stale_after)
            self._db.execute(
                "INSERT INTO run_lock (name, owner, pid, started_at, heartbeat_at, stale_after_seconds) "
                "VALUES ('run', ?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, "
                "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                "stale_after_seconds = excluded.stale_after_seconds",
                (owner, pid, stamp, stamp, stale_after.total_seconds()),
            )
        return RunLock(owner, pid, now, now, stale_after)

    def heartbeat_run_lock(self, owner: str, pid: int, *, now: dt.datetime) -> None:
        """Say the holder is alive (``now`` on the wall clock).

        :raises RunLocked: the lock is no longer this holder's.
        """
        with self.transaction():
            cur = self._db.execute(
                "UPDATE run_lock SET heartbeat_at = ? WHERE name = 'run' AND owner = ? AND pid = ?",
                (codec.iso_instant(now), owner, pid),
            )
            if cur.rowcount == 0:
                held = self.current_run_lock()
                if held is None:
                    raise RunLocked("nobody", 0, now, now)
                raise RunLocked(held.owner, held.pid, held.started_at, held.heartbeat_at, held.stale_after)

    def release_run_lock(self, owner: str, pid: int) -> None:
        """Give the lock back; does nothing if another holder has it."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM run_lock WHERE name = 'run' AND owner = ? AND pid = ?", (owner, pid)
            )

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

        :param partition: take this one only (``None``: the lowest free one).
        :param run_owner: the run lock's holder, when the taker works for it: a lease whose owner
            does not start with ``run_owner + "/"`` belongs to an earlier run (gone, or fenced out
            by this take) and is taken over at once.
        :returns: the lease, or ``None`` when no partition (or not ``partition``) is free.
        :raises ConfigurationError: the run's partitions were laid out with another count.
        """
        cutoff = codec.iso_instant(now - stale_after)
        prefix = None if run_owner is None else run_owner + "/"
        with self.transaction():
            db = self._db
            known = db.execute(
                "SELECT MAX(partitions) FROM partition_leases WHERE run_key = ?", (run_key,)
            ).fetchone()[0]
            if known is None:
                db.executemany(
                    "INSERT INTO partition_leases (run_key, partition, partitions) VALUES (?, ?, ?)",
                    [(run_key, p, partitions) for p in range(partitions)],
                )
            elif known != partitions:
                raise ConfigurationError(
                    f"run {run_key}: its partitions were laid out as {known}, not {partitions}"
                )
            row = db.execute(
                "SELECT partition, fence FROM partition_leases WHERE run_key = ? AND done_at IS NULL "
                "AND (owner IS NULL OR heartbeat_at < ? OR (? IS NOT NULL AND substr(owner, 1, length(?)) != ?)) "
                "AND (? IS NULL OR partition = ?) ORDER BY partition LIMIT 1",
                (run_key, cutoff, run_owner, prefix, prefix, partition, partition),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE partition_leases SET owner = ?, fence = ?, heartbeat_at = ? "
                "WHERE run_key = ? AND partition = ?",
                (owner, row[1] + 1, codec.iso_instant(now), run_key, row[0]),
            )
        return PartitionLease(run_key, row[0], owner, row[1] + 1)

    def check_partition_fence(self, lease: PartitionLease) -> None:
        """Inside a unit of work: refuse to go on unless ``lease`` still holds its partition.

        :raises PartitionLeaseLost: taken over (a higher fence) or already finished.
        """
        row = self._db.execute(
            "SELECT fence, done_at FROM partition_leases WHERE run_key = ? AND partition = ?",
            (lease.run_key, lease.partition),
        ).fetchone()
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
            self._db.execute(
                "UPDATE partition_leases SET heartbeat_at = ? WHERE run_key = ? AND partition = ?",
                (codec.iso_instant(now), lease.run_key, lease.partition),
            )

    def finish_partition(self, lease: PartitionLease, *, now: dt.datetime) -> None:
        """Mark the partition done (a rerun for the same ``run_key`` skips it).

        :raises PartitionLeaseLost: the lease is no longer the holder's.
        """
        with self.transaction():
            self.check_partition_fence(lease)
            self._db.execute(
                "UPDATE partition_leases SET done_at = ? WHERE run_key = ? AND partition = ?",
                (codec.iso_instant(now), lease.run_key, lease.partition),
            )

    def finished_partitions(self, run_key: str) -> set[int]:
        """The partitions of ``run_key`` that are done."""
        rows = self._db.execute(
            "SELECT partition FROM partition_leases WHERE run_key = ? AND done_at IS NOT NULL", (run_key,)
        ).fetchall()
        return {r[0] for r in rows}

    # -- audit --------------------------------------------------------------------------------------
    def _audit_tail(self, chain: str) -> tuple[int, int, str]:
        """``(the log's last seq, the chain's last position, its hash)``, under the write lock."""
        head = self._audit_heads.get(chain)
        if head is None:
            last = self._db.execute(
                "SELECT chain_seq, hash FROM audit_log WHERE chain = ? ORDER BY chain_seq DESC LIMIT 1",
                (chain,),
            ).fetchone()
            head = (0, GENESIS_HASH) if last is None else (last[0], last[1])
        seq = self._audit_seq or int(
            self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0]
        )
        return seq, head[0], head[1]

    def audit_append(
        self,
        kind: str,
        subject_id: str,
        data: Mapping[str, Any],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> AuditRecord:
        """Append a record chained to the last one of ``chain`` (inside the caller's unit of work, if any)."""
        payload = dict(data)
        text = canonical_json(payload)
        with self._unit():  # reads (or the heads kept in this unit of work), then the one write
            last_seq, position, prev = self._audit_tail(chain)
            seq, position = last_seq + 1, position + 1
            digest = audit_hash(prev, position, at, kind, subject_id, payload, chain=chain, data_json=text)
            self._db.execute(
                "INSERT INTO audit_log (seq, at, kind, subject_id, data, prev_hash, hash, chain, chain_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, codec.iso_instant(at), kind, subject_id, text, prev, digest, chain, position),
            )
            # while this unit of work holds the write lock nobody else appends: the heads are known
            self._audit_heads[chain] = (position, digest)
            self._audit_seq = seq
        return AuditRecord(seq, at, kind, subject_id, payload, prev, digest, chain=chain, chain_seq=position)

    def audit_append_many(
        self,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> list[AuditRecord]:
        """Append many records to ``chain`` in order: its head read once, each hash computed in
        memory, one ``executemany``."""
        if not records:
            return []
        out: list[AuditRecord] = []
        with self.transaction():
            seq, position, prev = self._audit_tail(chain)
            when = codec.iso_instant(at)
            rows = []
            for kind, subject_id, data in records:
                payload = dict(data)
                text = canonical_json(payload)
                seq += 1
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
            self._db.executemany(
                "INSERT INTO audit_log (seq, at, kind, subject_id, data, prev_hash, hash, chain, chain_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._audit_heads[chain] = (position, prev)
            self._audit_seq = seq
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
            where.append("subject_id = ?")
            params.append(subject_id)
        if subject_ids is not None:  # one parameter however many: no limit on variables to meet
            where.append("subject_id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted(set(subject_ids))))
        if kinds is not None:
            wanted = sorted(set(kinds))
            where.append(f"kind IN ({', '.join('?' * len(wanted))})" if wanted else "0")
            params.extend(wanted)
        if chain is not None:
            where.append("chain = ?")
            params.append(chain)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for r in self._db.execute(sql + " ORDER BY seq", params).fetchall():
            yield record_from_row(r)

    def audit_heads(self) -> list[AuditHead]:
        """The last record of every chain that has one, by chain name."""
        # SQLite gives the bare column ``hash`` of the row holding MAX(chain_seq)
        return heads_from_rows(
            self._db.execute("SELECT chain, MAX(chain_seq), hash FROM audit_log GROUP BY chain").fetchall()
        )

    def seal_audit(self, *, at: dt.datetime) -> AuditRecord | None:
        """Seal the heads of every chain with a main-chain record (``None``: nothing new to seal)."""
        with self.transaction():  # the heads are read under the write lock the seal is written in
            heads = self.audit_heads()
            last = self._db.execute(
                f"SELECT {AUDIT_ROW} FROM audit_log WHERE chain = ? ORDER BY chain_seq DESC LIMIT 1",
                (MAIN_CHAIN,),
            ).fetchone()
            if not seal_due(heads, None if last is None else record_from_row(last)):
                return None
            return self.audit_append(SEAL_KIND, "audit", seal_data(heads), at=at)

    def verify_audit(self) -> AuditVerification:
        """Recompute every chain and check every seal (:func:`~carecollect.store.audit.verify_chains`)."""
        seals = self._db.execute(
            f"SELECT {AUDIT_ROW} FROM audit_log WHERE chain = ? AND kind = ? ORDER BY chain_seq",
            (MAIN_CHAIN, SEAL_KIND),
        ).fetchall()
        rows = self._db.execute(f"SELECT {AUDIT_ROW} FROM audit_log ORDER BY chain, chain_seq")
        return verify_chains(seals, rows)
