"""The store interface the daily run depends on.

A store keeps every record of carecollect between runs: patients, creditors,
accounts, invoices, the ledger, plans, disputes, outreach steps and contact
attempts, placements with their remittances, the outbox, the ids of
processed webhook and remittance events, the run lock and the audit log.

:class:`Store` is a :class:`typing.Protocol`: it speaks only in domain
objects (:class:`~carecollect.patients.Patient`,
:class:`~carecollect.invoices.Invoice`...), plain values and the small frozen
records defined here. Nothing in it is specific to SQLite, so a PostgreSQL
store can implement it without touching the core;
:class:`carecollect.store.sqlite.SQLiteStore` is the embedded default.

Writes happen inside a unit of work (:meth:`Store.transaction`): everything
written in the ``with`` block is committed together, or nothing is.

>>> import datetime as dt
>>> from carecollect.store.base import next_retry_at
>>> t = dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)
>>> [str(next_retry_at(n, t) - t) for n in (1, 2, 3, 12)]
['0:05:00', '0:10:00', '0:20:00', '1 day, 0:00:00']
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from ..assistance_applications import AssistanceApplication
from ..channels import Channel
from ..contact_centre.records import ContactRecord
from ..creditors import Creditor
from ..disputes import Dispute
from ..errors import RUN_LOCK_STALE_AFTER, NotFound, RunLocked, StoreError, ValidationError
from ..invoices import Invoice
from ..ledger import Ledger, LedgerEntry
from ..outreach import ContactAttempt, OutreachStep
from ..patients import Account, Patient
from ..placements import AgencyPlacement
from ..plans import PaymentPlan
from ..timekeeping import require_aware

__all__ = [
    "CHANNEL_CODES",
    "GENESIS_HASH",
    "MAIN_CHAIN",
    "PORTFOLIO_TABLES",
    "RUN_LOCK_STALE_AFTER",
    "SEAL_KIND",
    "AccountSnapshot",
    "AuditHead",
    "AuditProblem",
    "AuditRecord",
    "AuditVerification",
    "ContactRequest",
    "InboxItem",
    "InvoiceRow",
    "Mandate",
    "NotFound",
    "OutboxItem",
    "OutboxStatus",
    "PartitionLease",
    "PendingHookEvent",
    "PlanFacts",
    "PortfolioRows",
    "ProviderPayment",
    "RecordStore",
    "RunJournal",
    "RunLock",
    "RunLocked",
    "Store",
    "StoreError",
    "UnitOfWork",
    "audit_hash",
    "canonical_json",
    "checked_partition",
    "contact_facts_sql",
    "next_retry_at",
    "partition_chain",
]


#: Channel -> code; a channel's bit in plan facts and plan rows is ``1 << code``.
CHANNEL_CODES: dict[Channel, int] = {
    Channel.LETTER: 0,
    Channel.EMAIL: 1,
    Channel.SMS: 2,
    Channel.PHONE: 3,
    Channel.PORTAL: 4,
}


def contact_facts_sql(
    now: str, *, point: str = "cp", patient: str = "p", find: str = "instr"
) -> tuple[str, str]:
    """SQL for :class:`PlanFacts`' ``usable`` and ``sms_checked_at`` of one contact point row.

    Both backends write it the same way, so one text states which point is usable: it is
    :func:`~carecollect.policy.governor.channel_usable` for one point, in SQL.

    :param now: the run's instant as the backend compares it (a parameter placeholder, or a
        cast of one), with the point's instant columns.
    :param point: the contact point table's alias.
    :param patient: the patients table's alias (its confidential wish).
    :param find: the backend's ``(text, part) -> position or 0`` function (``instr``, ``strpos``).
    :returns: ``(bit, checked)``: the point's channel bit when its patient's wishes allow it at
        ``now``, else ``NULL`` (sum the distinct bits); the point's latest consent or check at
        or before ``now`` when it is an SMS point, else ``NULL`` (take the maximum).

    >>> bit, checked = contact_facts_sql("?")
    >>> "cp.opted_out_at > ?" in bit, "WHEN 'sms' THEN 4" in bit
    (True, True)
    """
    c, p = point, patient
    bits = " ".join(f"WHEN '{ch.value}' THEN {1 << code}" for ch, code in CHANNEL_CODES.items())
    bit = f"""CASE WHEN ({p}.confidential <> 'only_listed'
                     OR {find}(' ' || {p}.confidential_channels || ' ', ' ' || {c}.channel || ' ') > 0)
                AND ({c}.opted_out_at IS NULL OR {c}.opted_out_at > {now})
                AND ({c}.undeliverable_at IS NULL OR {c}.undeliverable_at > {now}
                     OR ({c}.verified_at > {c}.undeliverable_at AND {c}.verified_at <= {now}))
                AND ({c}.channel = 'letter' OR {c}.consent_at <= {now})
               THEN CASE {c}.channel {bits} END END"""
    checked = f"""CASE WHEN {c}.channel = 'sms' THEN
                    CASE WHEN {c}.verified_at <= {now}
                              AND ({c}.consent_at IS NULL OR {c}.consent_at > {now} OR {c}.verified_at > {c}.consent_at)
                         THEN {c}.verified_at
                         WHEN {c}.consent_at <= {now} THEN {c}.consent_at END END"""
    return bit, checked


def checked_partition(value: tuple[int, int] | None) -> tuple[int, int] | None:
    """A plan read's ``partition`` argument, checked: ``None`` or ``(k, n)`` with ``0 <= k < n``.

    >>> checked_partition((1, 4))
    (1, 4)
    >>> checked_partition((4, 4))
    Traceback (most recent call last):
    ...
    carecollect.errors.ValidationError: Store: field 'partition': must be (k, n) with 0 <= k < n, got (4, 4)

    :raises ValidationError: anything else.
    """
    if value is None:
        return None
    try:
        part, parts = value
    except (TypeError, ValueError):
        raise ValidationError("Store", "partition", f"must be (k, n), got {value!r}") from None
    if (
        not all(isinstance(v, int) and not isinstance(v, bool) for v in (part, parts))
        or not 0 <= part < parts
    ):
        raise ValidationError("Store", "partition", f"must be (k, n) with 0 <= k < n, got {value!r}")
    return part, parts


#: The ``prev_hash`` of the first audit record.
GENESIS_HASH = "0" * 64

#: The audit log's main chain: the run's own process, intake, the importers, the web pages.
MAIN_CHAIN = ""

#: The kind of the main-chain record that seals the heads of every audit chain
#: (:meth:`RunJournal.seal_audit`).
SEAL_KIND = "audit.seal"


def partition_chain(partition: int, partitions: int) -> str:
    """The audit chain of one partition of a parallel run: ``p<partition>of<partitions>``.

    The name holds no run key: a partition's chain continues from run to run, as long as the
    run has the same number of partitions (the same patients fall in it, see
    :func:`carecollect.run.workers.partition_of`).

    >>> partition_chain(3, 8)
    'p3of8'
    """
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is not one of 0..{partitions - 1}")
    return f"p{partition}of{partitions}"


class OutboxStatus(enum.Enum):
    """Where an outbox item stands."""

    #: Recorded as intended; not yet known to be done.
    INTENDED = "intended"
    #: Performed and recorded done; never performed again.
    DONE = "done"
    #: The last attempt failed; retried at ``next_retry_at``.
    FAILED = "failed"


@attrs.frozen
class OutboxItem:
    """One outgoing message or money-moving call, recorded before it is performed.

    :param key: the idempotency key (unique in the store); also passed to the
        channel or gateway so a repeated call is recognised there too.
    :param kind: what it is (``"message"``, ``"placement"``, ``"refund"``...).
    :param payload: what to perform, as JSON-compatible data (ids and amounts, no PHI).
    :param status: :class:`OutboxStatus`.
    :param recorded_at: when the intent was recorded.
    :param attempts: how many times performing it has been tried.
    :param account_id: the account it concerns, if any.
    :param updated_at: the last change.
    :param next_retry_at: when a failed item may be tried again.
    :param last_error: a short, scrubbed error text of the last failure.
    :param result: what the channel or gateway answered when done (a reference...).
    """

    key: str
    kind: str
    payload: Mapping[str, Any] = attrs.field(repr=False)
    status: OutboxStatus
    recorded_at: dt.datetime
    attempts: int = 0
    account_id: str | None = None
    updated_at: dt.datetime | None = None
    next_retry_at: dt.datetime | None = None
    last_error: str | None = None
    result: Mapping[str, Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Mandate:
    """A stored card or direct-debit mandate that pays a plan's instalments.

    The run charges each due instalment of an active plan with a live mandate
    through the payment provider, with the outbox key as idempotency key.

    :param plan_id: the plan it pays.
    :param account_id: the plan's account.
    :param provider: the payment-provider plugin name.
    :param method: :class:`~carecollect.payments.PaymentMethod` value (``"card"``, ``"direct_debit"``).
    :param reference: the provider's mandate or token reference (never in reprs).
    :param created_at: when it was stored.
    :param revoked_at: when the patient or the provider revoked it (no charge after that).
    """

    plan_id: str
    account_id: str
    provider: str
    method: str
    reference: str = attrs.field(repr=False)
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@attrs.frozen
class ProviderPayment:
    """What a provider's payment reference belongs to (so a webhook finds its account).

    :param provider: the payment-provider plugin name.
    :param reference: the provider's payment reference.
    :param account_id: the account paid into.
    :param payment_id: the ledger payment id it was (or will be) posted as.
    :param plan_id: the plan, for an instalment charge.
    :param instalment: the instalment number, for an instalment charge.
    """

    provider: str
    reference: str
    account_id: str
    payment_id: str
    plan_id: str | None = None
    instalment: int | None = None


@attrs.frozen
class InboxItem:
    """One inbound event received over HTTP, kept durably until the run takes it in.

    The patient pages' webhook door (:mod:`carecollect.web`) writes it after the
    provider's signature was verified and *before* it answers 2xx; the run's intake
    (:func:`carecollect.run.event_intake.intake`) reads what is not yet taken and marks it taken.

    :param kind: the :class:`~carecollect.run.inbound.InboundKind` value (``"payment"``, ``"reply"``...).
    :param plugin: the payment-provider or channel plugin that parses it.
    :param event_id: the provider's event id (de-duplicates: the same event twice is kept once).
    :param body: the exact raw body (signatures are over these bytes).
    :param headers: the request headers that matter to the plugin (the signature...).
    :param received_at: when the door received and verified it (the intake verifies it again as of this instant).
    :param taken_at: when the intake took it in (``None``: not yet).
    :param outcome: what the intake made of it (a short code, no PHI).
    :param attempts: how many times the intake tried it.
    """

    kind: str
    plugin: str
    event_id: str
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(repr=False)
    received_at: dt.datetime
    taken_at: dt.datetime | None = None
    outcome: str | None = None
    attempts: int = 0


@attrs.frozen
class ContactRequest:
    """A patient's written request to be contacted, with the service-level deadline it must be answered by.

    :param record: the contact-centre :class:`~carecollect.contact_centre.ContactRecord`
        (pending, written channel, inbound).
    :param respond_by: the instant the answer is due (from the centre's
        :class:`~carecollect.contact_centre.service_levels.ResponseTarget`).
    :param reply_by: how the patient wants the answer (``"phone"`` or ``"email"``).
    :param message: what the patient wrote (kept in the store only; never logged).
    """

    record: ContactRecord
    respond_by: dt.datetime
    reply_by: str
    message: str = attrs.field(repr=False)


@attrs.frozen
class RunLock:
    """The exclusive lock a run holds.

    Its times are on the wall clock (``time.time()``), never the run's own instant
    (``--as-of``): two processes with different instants still agree on whether
    a holder is alive.

    :param owner: a free label (``"cli run"``, a host name).
    :param pid: the process id.
    :param started_at: when the lock was taken (wall clock).
    :param heartbeat_at: when the holder last said it was alive (wall clock).
    :param stale_after: the holder's promise: it beats more often than this; a
        lock with no heartbeat for this long is stale and may be taken over.
    """

    owner: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    stale_after: dt.timedelta = attrs.field(factory=lambda: RUN_LOCK_STALE_AFTER)

    def stale(self, wall_now: dt.datetime) -> bool:
        """True once ``stale_after`` has passed since the last heartbeat at ``wall_now``."""
        return self.heartbeat_at + self.stale_after <= wall_now


@attrs.frozen
class PartitionLease:
    """A worker's lease on one partition of a run (see :mod:`carecollect.run.workers`).

    :param run_key: the run it belongs to (deterministic: the run's as-of instant), so a run
        started again for the same instant finds its finished partitions.
    :param partition: ``0 .. partitions - 1``.
    :param owner: who holds it (a free label: worker, host, pid).
    :param fence: the fencing number, one higher on every take-over; every unit of work of the
        holder checks it before it commits (:class:`~carecollect.errors.PartitionLeaseLost`).
    """

    run_key: str
    partition: int
    owner: str
    fence: int


@attrs.frozen
class PendingHookEvent:
    """An event-hook broadcast some plugin has not taken yet, kept in the store.

    :param seq: its place in the queue (delivered in this order).
    :param hook: the hook's name (one of :data:`carecollect.plugins.hookspecs.EVENT_HOOKS`).
    :param arguments: the hook's keyword arguments as JSON
        (:func:`carecollect.store.event_queue.decode_arguments` reads them).
    :param targets: the plugins that implemented the hook when the event was recorded.
    :param delivered: those of them that have taken it.
    :param recorded_at: when the change that caused it was stored.
    :param attempts: broadcasts tried so far.
    :param last_error: the last failure, scrubbed (plugin, exception type and message).
    """

    seq: int
    hook: str
    arguments: str = attrs.field(repr=False)
    targets: tuple[str, ...]
    delivered: tuple[str, ...]
    recorded_at: dt.datetime
    attempts: int = 0
    last_error: str | None = None

    @property
    def owed(self) -> tuple[str, ...]:
        """The plugins that still have to take it."""
        return tuple(p for p in self.targets if p not in self.delivered)


@attrs.frozen
class AuditRecord:
    """One entry of the append-only, hash-chained audit log.

    The log holds several chains (see :func:`partition_chain`): the main chain
    (:data:`MAIN_CHAIN`) and one per partition of a parallel run. Each record is linked to the
    record before it *in its own chain*.

    :param seq: position in the whole log (the order records were appended), from 1. Between
        chains it is not gap-free on PostgreSQL (a rolled-back unit of work leaves a gap) and
        not attested by any hash; within a chain it grows with ``chain_seq``.
    :param at: when the decision or change happened.
    :param kind: what it is (``"outreach.decision"``, ``"import"``...).
    :param subject_id: the record it concerns (an account id...).
    :param data: the reasons and values, JSON-compatible (ids, codes, amounts; no PHI).
    :param prev_hash: the hash of the record before in its chain (:data:`GENESIS_HASH` for the first).
    :param hash: ``sha256(prev_hash + canonical_json(record))`` (see :func:`audit_hash`).
    :param chain: the chain it belongs to (:data:`MAIN_CHAIN`, or a partition's, e.g. ``"p3of8"``).
    :param chain_seq: position in its chain, from 1, without gaps (hashed); for a record of
        the main chain written before there were several chains it equals ``seq``.
    """

    seq: int
    at: dt.datetime
    kind: str
    subject_id: str
    data: Mapping[str, Any] = attrs.field(repr=False)
    prev_hash: str
    hash: str
    chain: str = MAIN_CHAIN
    chain_seq: int = attrs.field(default=attrs.Factory(lambda self: self.seq, takes_self=True))


@attrs.frozen
class AuditHead:
    """The last record of one audit chain: what a seal (:data:`SEAL_KIND`) attests.

    :param chain: the chain's name (:data:`MAIN_CHAIN` is ``""``).
    :param seq: the record's position in the chain (``chain_seq``).
    :param hash: the record's hash.
    """

    chain: str
    seq: int
    hash: str


@attrs.frozen
class AuditProblem:
    """Where one audit chain breaks.

    :param chain: the chain (:data:`MAIN_CHAIN` is ``""``).
    :param seq: the position in that chain (``chain_seq``) of the first record that does not hold.
    :param problem: what is wrong with it (edited, missing, out of order, or not what a seal attests).
    """

    chain: str
    seq: int
    problem: str

    def describe(self) -> str:
        """One line for a person: ``chain 'p3of8', record 7: ...`` (the main chain is ``main``).

        >>> AuditProblem("p3of8", 7, "record 7 is missing").describe()
        "chain 'p3of8' record 7: record 7 is missing"
        """
        return f"chain {self.chain or 'main'!r} record {self.seq}: {self.problem}"


@attrs.frozen
class AuditVerification:
    """The result of checking every audit chain and every seal.

    :param ok: True when every link of every chain holds and every seal's heads are found as sealed.
    :param checked: records whose link and hash were checked and hold.
    :param first_broken_seq: the position in its chain (``chain_seq``) of the first record of
        the first broken chain that does not hold.
    :param problem: what is wrong with it.
    :param chain: the chain of that first problem.
    :param chains: the chains found (the main chain counts when it has records).
    :param seals: the seal records checked against the chains.
    :param problems: every broken chain's first problem, in chain order (a chain is not read
        past its first problem; the others are read to the end).
    """

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None
    chain: str | None = None
    chains: int = 0
    seals: int = 0
    problems: tuple[AuditProblem, ...] = ()


@attrs.frozen
class AccountSnapshot:
    """Everything the daily run needs to decide about one account.

    :param account: the account.
    :param patient: the patient it is about.
    :param invoices: its invoices, by id.
    :param ledger: its ledger (balances derive from it).
    :param plans: its payment plans.
    :param disputes: its disputes.
    :param steps: its outreach steps.
    :param attempts: its contact attempts, oldest first.
    :param placements: its agency placements.
    :param mandates: the mandates that pay its plans (revoked ones included).
    :param applications: its financial-assistance applications (a pending one pauses outreach).
    """

    account: Account
    patient: Patient
    invoices: tuple[Invoice, ...]
    ledger: Ledger
    plans: tuple[PaymentPlan, ...] = ()
    disputes: tuple[Dispute, ...] = ()
    steps: tuple[OutreachStep, ...] = ()
    attempts: tuple[ContactAttempt, ...] = ()
    placements: tuple[AgencyPlacement, ...] = ()
    mandates: tuple[Mandate, ...] = ()
    applications: tuple[AssistanceApplication, ...] = ()


class InvoiceRow(NamedTuple):
    """A flat, fast view of one invoice for hot loops (no domain objects built).

    Amounts are integer minor units of ``currency``; dates are
    :class:`datetime.date`. ``balance_minor`` is derived from the ledger.
    """

    invoice_id: str
    account_id: str
    patient_id: str
    jurisdiction: str
    currency: str
    language: str
    time_zone: str
    status: str
    claim_status: str
    issue_date: dt.date
    due_date: dt.date
    first_statement_date: dt.date | None
    total_minor: int
    balance_minor: int
    open_dispute: bool
    plan_status: str | None
    cease_requested: bool


@attrs.frozen
class PortfolioRows:
    """A batch of plain rows for :meth:`Store.bulk_load` (the fast path of generators).

    Each field is a list of tuples in the column order documented in
    :doc:`/reference/store`; every datetime is an ISO-8601 string with its
    UTC offset, every date an ISO date string, money integer minor units.
    The fields are in the order a store writes them (each table after those it refers to).
    """

    creditors: list[tuple[Any, ...]] = attrs.Factory(list)
    patients: list[tuple[Any, ...]] = attrs.Factory(list)
    contact_points: list[tuple[Any, ...]] = attrs.Factory(list)
    accounts: list[tuple[Any, ...]] = attrs.Factory(list)
    invoices: list[tuple[Any, ...]] = attrs.Factory(list)
    invoice_lines: list[tuple[Any, ...]] = attrs.Factory(list)
    ledger_entries: list[tuple[Any, ...]] = attrs.Factory(list)
    plans: list[tuple[Any, ...]] = attrs.Factory(list)
    instalments: list[tuple[Any, ...]] = attrs.Factory(list)
    disputes: list[tuple[Any, ...]] = attrs.Factory(list)


#: The tables of :class:`PortfolioRows`, in the order a bulk load writes them.
PORTFOLIO_TABLES: tuple[str, ...] = tuple(f.name for f in attrs.fields(PortfolioRows))


@attrs.frozen
class PlanFacts:
    """The facts the daily run's planner reads for a range of accounts at the run's instant (one read per table).

    What :meth:`SQLiteStore.iter_plan_facts <carecollect.store.sqlite.SQLiteStore.iter_plan_facts>`
    yields: plain tuples straight from the store, no domain objects, so that the run can settle
    most accounts without building any (:mod:`carecollect.run.rows` turns them into plan rows).
    Instants are ISO-8601 strings in UTC (as the store writes them), dates ISO date strings,
    money integer minor units. Every list is in account id order.

    :param accounts: ``(id, patient_id, creditor_id, currency, jurisdiction, time_zones,
        cease_requested_at, creditor_role, creditor_nonprofit, usable, sms_checked_at,
        point_zones, exact)``. The last four sum up the patient's contact points at the instant
        the facts were read for (``now``), in the backend:

        * ``usable``: the channel bits (``1 << CHANNEL_CODES[channel]``) the patient's wishes
          allow at ``now``, as :func:`~carecollect.policy.governor.channel_usable` answers them
          (consent given, no opt-out, no bounce a later check did not clear, the confidential
          wish honoured); ``None`` when none;
        * ``sms_checked_at``: the latest consent or number check of an SMS point at or before
          ``now``, or ``None``;
        * ``point_zones``: the points' own zones in the patient's order, space-separated, or
          ``None``;
        * ``exact``: ``1`` when the backend compared every instant exactly; ``0`` when one of
          the patient's point instants is not in the store's UTC form (the run then decides the
          account on its snapshot).
    :param invoices: ``(id, account_id, currency, issue_date, due_date, status, claim_status,
        claim_submitted_on, balance_minor)``; the balance is the ledger's once a charge was
        posted, else the patient's share (lines less what the insurer paid and the contractual
        adjustment), as :func:`~carecollect.run.planning.plan_account` reads it.
    :param steps: sent outreach steps ``(account_id, invoice_id, purpose, sent_at, id)``.
    :param attempts: contact attempts ``(account_id, invoice_id, channel, at, outcome)``.
    :param disputes: open disputes ``(account_id, invoice_id or None)``.
    :param plans: plans the patient keeps (active or paused) ``(account_id, plan_id,
        invoice_ids (space-separated), status)``, in the store's order.
    :param instalments: unpaid instalments of active plans ``(account_id, plan_id, number,
        due_date, status)``, in plan order.
    :param mandates: ``(account_id, plan_id, revoked_at)``.
    :param applications: pending assistance applications ``(account_id,)``.
    :param placements: ``(account_id, status, placed_at)`` in the store's order (a collector's
        cadence starts on the first placement's day; an account placed with the agency is not
        placed again).
    """

    accounts: list[tuple[Any, ...]]
    invoices: list[tuple[Any, ...]]
    steps: list[tuple[Any, ...]]
    attempts: list[tuple[Any, ...]]
    disputes: list[tuple[Any, ...]]
    plans: list[tuple[Any, ...]]
    instalments: list[tuple[Any, ...]]
    mandates: list[tuple[Any, ...]]
    applications: list[tuple[Any, ...]]
    placements: list[tuple[Any, ...]]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, UTF-8 kept: the same data always gives the same text.

    >>> canonical_json({"b": 1, "a": [1, "ø"]})
    '{"a":[1,"ø"],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def audit_hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    kind: str,
    subject_id: str,
    data: Mapping[str, Any],
    *,
    chain: str = MAIN_CHAIN,
    data_json: str | None = None,
) -> str:
    """The hash that chains an audit record to the one before it in its chain.

    ``sha256(prev_hash + canonical_json({"seq", "at", "kind", "subject_id", "data"}))``
    as lowercase hex; ``at`` is written as ISO-8601 in UTC and ``seq`` is the record's
    position in its chain. A record of any chain but the main one also hashes its chain's name
    (``"chain"``), so it cannot be passed off as another chain's; a main-chain record hashes
    what it always did, so records written before there were several chains still verify.

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    >>> h = audit_hash(GENESIS_HASH, 1, t, "k", "A-1", {})
    >>> len(h), h == audit_hash(GENESIS_HASH, 1, t, "k", "A-1", {"x": 1})
    (64, False)
    >>> h == audit_hash(GENESIS_HASH, 1, t, "k", "A-1", {}, chain="p0of2")
    False

    :param data_json: ``canonical_json(data)``, when the caller has it already (it stores that
        text): the record's text is then put together around it instead of encoding ``data``
        again. The same text either way, its keys in order: ``at``, ``chain``, ``data``,
        ``kind``, ``seq``, ``subject_id``.
    """
    require_aware(at, f"AuditRecord {seq}", "at")
    body = "".join(
        (
            '{"at":',
            _json_text(at.astimezone(dt.UTC).isoformat()),
            "" if chain == MAIN_CHAIN else ',"chain":' + _json_text(chain),
            ',"data":',
            canonical_json(data) if data_json is None else data_json,
            ',"kind":',
            _json_text(kind),
            ',"seq":',
            str(seq) if type(seq) is int else canonical_json(seq),
            ',"subject_id":',
            _json_text(subject_id),
            "}",
        )
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _json_text(value: str) -> str:
    """A string as :func:`canonical_json` writes it (a value of another type: the same)."""
    return json.encoder.encode_basestring(value) if type(value) is str else canonical_json(value)


def next_retry_at(
    attempts: int,
    failed_at: dt.datetime,
    *,
    base: dt.timedelta = dt.timedelta(minutes=5),
    cap: dt.timedelta = dt.timedelta(days=1),
) -> dt.datetime:
    """When an outbox item that failed ``attempts`` times may be tried again: exponential back-off.

    The wait is ``base * 2**(attempts - 1)``, never more than ``cap``.

    :param attempts: failures so far (at least 1).
    :param failed_at: when the last attempt failed (aware).
    :raises ValidationError: on a naive ``failed_at``.
    """
    require_aware(failed_at, "OutboxItem", "failed_at")
    exponent = max(0, min(attempts - 1, 30))
    wait: dt.timedelta = min(base * (2**exponent), cap)
    return failed_at + wait


@runtime_checkable
class UnitOfWork(Protocol):
    """A store's transactions: what records and the run journal share.

    A record and the journal entry about it (the outbox intent for a message,
    the audit record of a payment) are written in one unit of work, so both
    halves of a store live behind one connection.
    """

    # -- unit of work ------------------------------------------------------
    def transaction(self) -> AbstractContextManager[None]:
        """A unit of work: commit on normal exit, roll back on an exception. Nests."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


@runtime_checkable
class RecordStore(UnitOfWork, Protocol):
    """The records: parties, invoices, the ledger, plans, disputes, outreach, placements.

    Reads return domain objects; ``get_*`` raises :class:`NotFound`. Writes
    outside :meth:`transaction` each run in a transaction of their own. The
    plan-row reads (:meth:`iter_plan_facts`) feed the run's compiled kernel
    without building domain objects.
    """

    # -- parties and invoices ---------------------------------------------
    def put_creditor(self, creditor: Creditor) -> None:
        """Insert or replace a creditor."""
        ...

    def get_creditor(self, creditor_id: str) -> Creditor:
        """The creditor with that id."""
        ...

    def creditors(self) -> list[Creditor]:
        """Every creditor, by id."""
        ...

    def patients(self) -> Iterator[Patient]:
        """Every patient, by id, read in batches."""
        ...

    def put_patient(self, patient: Patient) -> None:
        """Insert or replace a patient with their contact points.

        A point whose channel and address are unchanged keeps its stored bounce
        mark (``undeliverable_at``) when the new point carries none; a new
        address starts clean.
        """
        ...

    def get_patient(self, patient_id: str) -> Patient:
        """The patient with that id."""
        ...

    def patients_with_address(self, address: str) -> list[tuple[str, Channel]]:
        """Patients and channels whose contact point has exactly ``address`` (to apply an inbound opt-out)."""
        ...

    def put_account(self, account: Account) -> None:
        """Insert or replace an account (its patient and creditor must exist)."""
        ...

    def get_account(self, account_id: str) -> Account:
        """The account with that id."""
        ...

    def put_invoice(self, invoice: Invoice) -> None:
        """Insert or replace an invoice with its lines and insurance (its account must exist)."""
        ...

    def get_invoice(self, invoice_id: str) -> Invoice:
        """The invoice with that id."""
        ...

    def invoices_for(self, account_id: str) -> tuple[Invoice, ...]:
        """An account's invoices, by id."""
        ...

    # -- ledger ------------------------------------------------------------
    def append_ledger(self, account_id: str, entries: Iterable[LedgerEntry]) -> int:
        """Append entries to an account's ledger; an identical entry already there is skipped.

        :returns: how many entries were new.
        :raises DuplicateEntry: a key is already used by a different entry.
        """
        ...

    def ledger(self, account_id: str) -> Ledger:
        """The account's ledger, entries in posting order."""
        ...

    # -- plans, disputes, outreach, placements -----------------------------
    def put_plan(self, plan: PaymentPlan) -> None:
        """Insert or replace a plan with its instalments."""
        ...

    def get_plan(self, plan_id: str) -> PaymentPlan:
        """The plan with that id."""
        ...

    def put_dispute(self, dispute: Dispute) -> None:
        """Insert or replace a dispute."""
        ...

    def get_dispute(self, dispute_id: str) -> Dispute:
        """The dispute with that id."""
        ...

    def put_step(self, step: OutreachStep) -> None:
        """Insert or replace an outreach step."""
        ...

    def put_steps(self, steps: Sequence[OutreachStep]) -> None:
        """Insert or replace many outreach steps at once, all or none (as :meth:`put_step` each,
        in order: of two with one id, the later wins)."""
        ...

    def get_step(self, step_id: str) -> OutreachStep:
        """The step with that id."""
        ...

    def add_attempt(self, attempt: ContactAttempt) -> bool:
        """Record a contact attempt; the same id twice is kept once. Returns True if new."""
        ...

    def add_attempts(self, attempts: Sequence[ContactAttempt]) -> int:
        """Record many contact attempts at once (as :meth:`add_attempt` each); returns how many were new."""
        ...

    def attempt_by_provider_message_id(self, provider_message_id: str) -> ContactAttempt | None:
        """The first attempt that carried the channel's ``provider_message_id`` (``None``: none)."""
        ...

    def attempts_for(self, account_id: str) -> tuple[ContactAttempt, ...]:
        """An account's attempts, oldest first."""
        ...

    def put_placement(self, placement: AgencyPlacement) -> None:
        """Insert or replace a placement; remittances are only ever added."""
        ...

    def get_placement(self, placement_id: str) -> AgencyPlacement:
        """The placement with that id, with its remittances."""
        ...

    def put_mandate(self, mandate: Mandate) -> None:
        """Insert or replace the mandate of ``mandate.plan_id`` (one per plan)."""
        ...

    def revoke_mandate(self, provider: str, reference: str, *, at: dt.datetime) -> Mandate | None:
        """Mark the mandate with that provider reference revoked; None if there is none."""
        ...

    def put_application(self, application: AssistanceApplication) -> None:
        """Insert or replace a financial-assistance application (by id); its account must exist."""
        ...

    def link_provider_payment(self, link: ProviderPayment) -> None:
        """Record what a provider's payment reference belongs to (the same link twice is kept once)."""
        ...

    def provider_payment(self, provider: str, reference: str) -> ProviderPayment | None:
        """The link recorded for a provider's payment reference, if any."""
        ...

    # -- reading the portfolio --------------------------------------------
    def account_snapshot(self, account_id: str) -> AccountSnapshot:
        """Everything about one account."""
        ...

    def iter_account_snapshots(self, *, batch_size: int = 1000) -> Iterator[AccountSnapshot]:
        """Every account, in id order, read ``batch_size`` accounts at a time."""
        ...

    def iter_invoice_rows(self, *, batch_size: int = 5000) -> Iterator[InvoiceRow]:
        """Every invoice as a flat :class:`InvoiceRow`, read in batches."""
        ...

    def counts(self) -> Mapping[str, int]:
        """How many records of each kind the store holds."""
        ...

    def bulk_load(self, rows: PortfolioRows) -> None:
        """Insert a batch of plain rows (new records only) as fast as the backend allows."""
        ...

    def account_snapshots(self, account_ids: Sequence[str]) -> Iterator[AccountSnapshot]:
        """The snapshots of ``account_ids`` (in id order; unknown ids are left out), read together."""
        ...

    def iter_plan_facts(
        self, *, now: dt.datetime, batch_size: int = 2000, partition: tuple[int, int] | None = None
    ) -> Iterator[PlanFacts]:
        """The planner's facts at ``now``, ``batch_size`` accounts per :class:`PlanFacts`, accounts in id order.

        Every fact of one account is in one batch; what is exact in the backend (an
        invoice's lines, its ledger balance, which contact points are usable at ``now``)
        may be worked out there.
        With ``partition=(k, n)`` only the accounts whose patient's
        :func:`~carecollect.store.codec.partition_key` modulo ``n`` is ``k``, filtered
        in the backend: ``n`` partitions together read every account once.
        """
        ...

    # -- contact requests --------------------------------------------------------
    def put_contact_request(self, request: ContactRequest) -> None:
        """Keep a patient's contact request (by the record's contact id)."""
        ...

    def contact_requests(self, account_id: str | None = None) -> list[ContactRequest]:
        """Contact requests (of one account, or all), oldest first."""
        ...


@runtime_checkable
class RunJournal(UnitOfWork, Protocol):
    """What the run keeps about its own work: the outbox of intents, events already
    processed, event hooks owed to plugins, the inbox of events received over HTTP,
    the run lock and the audit chain."""

    # -- outbox ------------------------------------------------------------
    def outbox_intend(
        self,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        at: dt.datetime,
        account_id: str | None = None,
    ) -> OutboxItem:
        """Record the intent to perform something; the same key again returns the item as it is.

        :raises DuplicateEntry: the key is recorded with a different kind or payload.
        """
        ...

    def outbox_intend_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
        *,
        at: dt.datetime,
    ) -> dict[str, OutboxItem]:
        """Record many intents at once, each ``(key, kind, payload, account_id)`` as :meth:`outbox_intend`
        would; returns every item by key (as stored, an existing one unchanged).

        :raises DuplicateEntry: a key is recorded with a different kind or payload (nothing is written).
        """
        ...

    def outbox_done(
        self, key: str, *, at: dt.datetime, result: Mapping[str, Any] | None = None
    ) -> OutboxItem:
        """Record that the item was performed (counts an attempt)."""
        ...

    def outbox_done_many(
        self, items: Sequence[tuple[str, Mapping[str, Any] | None]], *, at: dt.datetime
    ) -> None:
        """Record many items performed at once, each ``(key, result)`` as :meth:`outbox_done` would
        (an item already done keeps its first record).

        :raises NotFound: a key was never intended.
        """
        ...

    def outbox_failed(
        self,
        key: str,
        *,
        at: dt.datetime,
        error: str,
        retry_at: dt.datetime | None = None,
        give_up: bool = False,
    ) -> OutboxItem:
        """Record a failed attempt; it is due again at ``retry_at`` (default: :func:`next_retry_at`).

        With ``give_up`` it is never due again (``next_retry_at`` stays empty) and is reported.
        """
        ...

    def outbox_get(self, key: str) -> OutboxItem:
        """The item with that key."""
        ...

    def outbox_due(self, now: dt.datetime, *, limit: int = 1000) -> Sequence[OutboxItem]:
        """Items not done whose retry time has come, oldest first."""
        ...

    # -- dedupe of incoming events -----------------------------------------
    def mark_processed(self, source: str, event_id: str, *, at: dt.datetime) -> bool:
        """Record that an incoming event was processed; False if it already was (do nothing then)."""
        ...

    def was_processed(self, source: str, event_id: str) -> bool:
        """True when the event was already processed."""
        ...

    # -- event hooks owed to plugins ------------------------------------------------
    def hook_event_record(self, hook: str, arguments: str, targets: Sequence[str], *, at: dt.datetime) -> int:
        """Queue a broadcast (call it in the unit of work that makes the change); returns its seq.

        :param arguments: JSON (:func:`carecollect.store.event_queue.encode_arguments`).
        :param targets: the plugins that must take it.
        """
        ...

    def hook_event_delivered(
        self, seq: int, plugins: Sequence[str], *, at: dt.datetime, error: str | None = None
    ) -> None:
        """Record that ``plugins`` took event ``seq`` (and the broadcast's failure, if any); once
        every target has, the event leaves :meth:`hook_events_pending`."""
        ...

    def hook_events_pending(self, *, limit: int = 1000) -> Sequence[PendingHookEvent]:
        """Events some target plugin has not taken yet, oldest first."""

    # -- inbox of events received over HTTP -----------------------------------
    def inbox_put(self, item: InboxItem) -> bool:
        """Keep an inbound event durably (committed when this returns); False if ``(kind, plugin, event_id)`` is already kept."""
        ...

    def inbox_pending(self, *, limit: int = 1000) -> Sequence[InboxItem]:
        """Events not yet taken in, oldest first."""
        ...

    def inbox_taken(self, kind: str, plugin: str, event_id: str, *, at: dt.datetime, outcome: str) -> None:
        """Mark an event taken in (it is not read again)."""
        ...

    def inbox_retry(self, kind: str, plugin: str, event_id: str, *, outcome: str) -> None:
        """Count a failed attempt to take an event in; it stays pending (read again by the next intake)."""
        ...

    # -- run lock ------------------------------------------------------------
    def acquire_run_lock(
        self, owner: str, pid: int, *, now: dt.datetime, stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER
    ) -> RunLock:
        """Take the exclusive run lock.

        :param now: the wall clock (``datetime.now(UTC)``), not the run's instant.
        :param stale_after: this holder's promise to beat more often than that.
        :raises RunLocked: another holder's heartbeat is younger than *its* ``stale_after``.
        """
        ...

    def heartbeat_run_lock(self, owner: str, pid: int, *, now: dt.datetime) -> None:
        """Say the holder is still alive (``now``: the wall clock).

        :raises RunLocked: the lock is held by someone else (it went stale and was taken).
        """
        ...

    def release_run_lock(self, owner: str, pid: int) -> None:
        """Give the lock back (does nothing if someone else holds it)."""
        ...

    def current_run_lock(self) -> RunLock | None:
        """The lock as it stands, if held."""
        ...

    # -- partition leases ----------------------------------------------------
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
        """Lease the next partition of ``run_key`` neither finished nor held by a live holder.

        The first taker lays out ``partitions`` rows; a taker raises the fencing number.

        :param now: the wall clock.
        :param stale_after: a holder without a heartbeat this long loses the partition.
        :param partition: take only this one (``None``: the lowest free one).
        :param run_owner: the run lock's holder the taker works for: leases of other holders are
            taken over at once (their run is gone; the fencing number shuts them out).
        :returns: the lease, or ``None`` when nothing is free.
        :raises ConfigurationError: the run was laid out with another number of partitions.
        """
        ...

    def check_partition_fence(self, lease: PartitionLease) -> None:
        """Inside a unit of work: go on only while ``lease`` holds its partition (and it is not done).

        :raises PartitionLeaseLost: the lease was taken over or the partition finished.
        """
        ...

    def heartbeat_partition(self, lease: PartitionLease, *, now: dt.datetime) -> None:
        """Say the lease's holder is alive (``now``: the wall clock).

        :raises PartitionLeaseLost: the lease is no longer the holder's.
        """
        ...

    def finish_partition(self, lease: PartitionLease, *, now: dt.datetime) -> None:
        """Mark the partition finished: a run started again with the same ``run_key`` skips it.

        :raises PartitionLeaseLost: the lease is no longer the holder's.
        """
        ...

    def finished_partitions(self, run_key: str) -> set[int]:
        """The finished partitions of ``run_key``."""
        ...

    # -- audit -----------------------------------------------------------------
    def audit_append(
        self,
        kind: str,
        subject_id: str,
        data: Mapping[str, Any],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> AuditRecord:
        """Append a record to the audit log, chained to the one before in ``chain``.

        Appenders of one chain go one at a time (the chain never forks); appenders of
        different chains do not wait for each other.
        """
        ...

    def audit_append_many(
        self,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        at: dt.datetime,
        chain: str = MAIN_CHAIN,
    ) -> list[AuditRecord]:
        """Append many records ``(kind, subject_id, data)`` to ``chain`` in order, the chain computed in memory."""
        ...

    def audit_records(
        self,
        *,
        subject_id: str | None = None,
        kinds: Collection[str] | None = None,
        chain: str | None = None,
        subject_ids: Collection[str] | None = None,
    ) -> Iterator[AuditRecord]:
        """The audit log in order of ``seq`` (optionally only one subject's records, or the
        records of any of ``subject_ids``, only these kinds, only one chain's)."""
        ...

    def audit_heads(self) -> list[AuditHead]:
        """The last record of every chain that has one, by chain name."""
        ...

    def seal_audit(self, *, at: dt.datetime) -> AuditRecord | None:
        """Append a seal to the main chain: a record of kind :data:`SEAL_KIND` whose data lists
        the head (name, position, hash) of every chain, so a chain's records up to its sealed
        head cannot be removed or rewritten without :meth:`verify_audit` finding it.

        :returns: the seal, or ``None`` when nothing was appended since the last seal (the main
            chain ends with a seal that lists every head as it stands).
        """
        ...

    def verify_audit(self) -> AuditVerification:
        """Recompute every chain and check every seal; report each broken chain's first problem."""
        ...


@runtime_checkable
class Store(RecordStore, RunJournal, Protocol):
    """What the daily run, the importers and the CLI need from a store: the records
    (:class:`RecordStore`) and the run journal (:class:`RunJournal`) in one unit of work.
    """
