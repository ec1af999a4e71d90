"""Sending through the outbox: every message intended, sent once, recorded done or failed.

The run records every message in the outbox as *intended*, re-reads the account (an opt-out or a
dispute that arrived meanwhile wins), renders the message, sends it through the channel plugin
with the outbox key (:func:`message_id`) as idempotency key, and records it *done* or *failed*
with a back-off. A run killed at any point and run again sends nothing twice and skips nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import attrs

from ..addresses import region_of
from ..channels import Channel
from ..creditors import Creditor
from ..errors import CareCollectError, ConfigurationError, StoreUnavailable
from ..events import Event, EventType
from ..invoices import InvoiceStatus
from ..messages.context import Itemization, MessageContext, NoticeInfo
from ..messages.paylinks import PayLinkSigner, new_nonce
from ..messages.render import Renderer
from ..messages.statement import build_statement
from ..money import Money
from ..observability import log_event
from ..outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from ..plans import (
    InstalmentStatus,
    PlanStatus,
    mark_instalment_missed,
)
from ..plugins.dispatch import ChannelSender
from ..plugins.manager import PluginManager
from ..plugins.messaging import BatchingChannel, MessageChannel, OutgoingMessage, Receipt, ReceiptStatus
from ..plugins.providers import PaymentProvider
from ..policy.governor import UNDELIVERABLE_RULE, ContactHistory, Debt, may_contact
from ..relief.pauses import relief_flags
from ..remittance import CLAIM_RECORD, ClaimPayment, active_claims, claim_from_record
from ..store.base import (
    AccountSnapshot,
    AuditRecord,
    OutboxItem,
    OutboxStatus,
    RunLocked,
    Store,
    next_retry_at,
)
from ..timekeeping import zone
from .charges import _charge, _place
from .decisions import AccountPlan, DecisionKind, PlannedMessage
from .hooks import _owe_send_failure, deliver_hooks, owe_hook
from .planning import _Creditors, _gate_snapshot, _today
from .settings import RunSettings

__all__ = [
    "close_batches",
    "message_id",
    "new_pay_link_key",
]


_MESSAGE_JURISDICTIONS = ("us", "no", "de", "bg")


_NEEDS_DEADLINE = frozenset(
    {
        OutreachPurpose.FINAL_NOTICE,
        OutreachPurpose.VALIDATION_NOTICE,
        OutreachPurpose.INKASSOVARSEL,
        OutreachPurpose.BETALINGSOPPFORDRING,
        OutreachPurpose.MAHNUNG,
        OutreachPurpose.PRE_PLACEMENT_NOTICE,
    }
)


#: Notices that announce the earliest date of a next step (an ECA, a placement): their deadline.
_ANNOUNCES_ACTION = frozenset({OutreachPurpose.ECA_NOTICE, OutreachPurpose.PRE_PLACEMENT_NOTICE})


_NEEDS_NOTICE = frozenset({OutreachPurpose.VALIDATION_NOTICE, OutreachPurpose.BETALINGSOPPFORDRING})


#: Days to pay a notice gives when the cadence set no deadline (the longest legal minimum of the packs).
_DEFAULT_NOTICE_DAYS = 14


def _channel_instance(
    pm: PluginManager, settings: RunSettings, name: str, cache: dict[str, MessageChannel]
) -> MessageChannel:
    if name not in cache:
        desc = pm.message_channel(name)
        cache[name] = desc.create(dict(settings.channel_config.get(name, {})))
    return cache[name]


def _claims_in_force(
    store: Store, step: OutreachStep, records: Sequence[AuditRecord] | None = None
) -> tuple[ClaimPayment, ...]:
    """The insurer's answers in force for a statement's invoice (from the remittances applied);
    ``records``: the invoice's claim records when already read (:meth:`_Fresh.claim_records`)."""
    if step.purpose is not OutreachPurpose.STATEMENT or step.invoice_id is None:
        return ()
    if records is None:
        records = list(store.audit_records(subject_id=step.invoice_id, kinds={CLAIM_RECORD}))
    return active_claims([claim_from_record(r.data) for r in records])


def _message_context(
    snap: AccountSnapshot,
    creditor: Creditor,
    step: OutreachStep,
    settings: RunSettings,
    now: dt.datetime,
    signer: PayLinkSigner | None,
    claims: Sequence[ClaimPayment] = (),
) -> MessageContext:
    """The message's context; ``claims`` are the insurer's answers in force for the step's invoice
    (a statement explains each line with them)."""
    inv = next(i for i in snap.invoices if i.id == step.invoice_id)
    balance = (
        snap.ledger.invoice_balance(inv.id)
        if inv.id in snap.ledger.invoice_ids()
        else inv.patient_responsibility
    )
    jurisdiction = (
        snap.account.jurisdiction
        if snap.account.jurisdiction in _MESSAGE_JURISDICTIONS
        else (creditor.country.lower() if creditor.country.lower() in _MESSAGE_JURISDICTIONS else "us")
    )
    link = None
    if signer is not None:
        link = signer.issue(
            inv.id, balance, expires_at=now + dt.timedelta(days=settings.pay_link_days), nonce=new_nonce()
        ).url
    statement = build_statement(inv, claims=claims) if step.purpose is OutreachPurpose.STATEMENT else None
    today = _today(now, snap.patient.time_zones[0])
    deadline = step.deadline
    if deadline is None and step.purpose in _NEEDS_DEADLINE:
        # a notice always states a pay-by date; fall back to the pack's minimum notice period
        deadline = today + dt.timedelta(days=_DEFAULT_NOTICE_DAYS)
    # the date before which no extraordinary action (or placement) follows: the notice's deadline
    action_date = deadline if step.purpose in _ANNOUNCES_ACTION else None
    fap_summary = (
        statement is not None
        and creditor.nonprofit
        and bool(
            settings.pack(snap.account.jurisdiction, snap.account.creditor_id).get(
                "r501.statement_fap_summary", False, on=today
            )
        )
    )
    notice = None
    if step.purpose in _NEEDS_NOTICE:
        paid = inv.total - inv.insurer_paid - inv.contractual_adjustment - balance
        notice = NoticeInfo(
            principal=balance,
            original_creditor=creditor.name,
            invoice_date=inv.issue_date,
            itemization=Itemization(
                inv.issue_date,
                inv.patient_responsibility,
                Money.zero(balance.currency),
                Money.zero(balance.currency),
                paid if paid.is_positive() else Money.zero(balance.currency),
            ),
        )
    return MessageContext(
        reference=inv.id,
        creditor_name=creditor.name,
        sender_name=creditor.business_name_for_voicemail or creditor.name,
        jurisdiction=jurisdiction,
        today=today,
        phone=settings.phone,
        email=settings.email,
        amount_due=balance,
        due_date=inv.due_date,
        deadline=deadline,
        notice=notice,
        pay_link=link,
        opt_out_url=settings.opt_out_url,
        portal_url=settings.portal_url,
        recipient_name=snap.patient.name or None,
        statement=statement,
        assistance_url=settings.assistance_url,
        action_date=action_date,
        fap_summary=fap_summary,
        office_hours=settings.office_hours,
        time_zone=snap.patient.time_zones[0],
    )


def _recipient(snap: AccountSnapshot, channel: Channel, at: dt.datetime) -> str | None:
    """The address a message on ``channel`` goes to at ``at``: the first point not opted out nor bounced."""
    for point in snap.patient.points(channel):
        if (point.opted_out_at is None or point.opted_out_at > at) and point.deliverable(at):
            return point.address
    return None


def _address_digest(address: str) -> str:
    """A short digest that tells whether a later bounce is about the same address (never the address)."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]


def close_batches(pm: PluginManager, settings: RunSettings, now: dt.datetime) -> tuple[str, ...]:
    """Close the batches of every channel plugin that sends in batches (printed letters).

    A channel whose class offers ``close_batch(now)`` (:class:`~carecollect.plugins.messaging.BatchingChannel`)
    collects what it was sent; the run calls it once, after every message is through (with
    several workers, after all of them), so one run makes one batch per envelope layout. A batch
    that fails stays pending and is made by the next run.

    :returns: the ids of the batches written.
    """
    batches: list[str] = []
    for name in sorted(set(settings.channel_plugins.values())):
        try:
            desc = pm.message_channel(name)
            if not callable(getattr(desc.factory, "close_batch", None)):
                continue
            # its class offers close_batch (checked above): a BatchingChannel
            channel = cast(BatchingChannel, desc.create(dict(settings.channel_config.get(name, {}))))
        except ConfigurationError:  # not installed or not configured: its sends failed and say so
            continue
        batches.extend(channel.close_batch(now))
    return tuple(batches)


@attrs.frozen
class _Ready:
    """A message checked and rendered, to be handed to its channel (``attempt`` without the
    provider's id yet)."""

    msg: PlannedMessage
    settings: RunSettings
    channel: MessageChannel
    outgoing: OutgoingMessage
    attempt: ContactAttempt
    address: str
    language: str


@attrs.frozen
class _Handed:
    """A message a channel accepted whose records (done-mark, attempt, audit, hook) are not written yet."""

    msg: PlannedMessage
    settings: RunSettings
    channel: MessageChannel
    attempt: ContactAttempt
    address: str
    language: str


class _Sender:
    """The send loop: accounts carried out in batches of about ``settings.send_batch`` messages.

    For a batch the run writes, in one unit of work, the decisions' audit records, the missed
    instalments and every message's intent; then it charges, renders and hands each message to
    its channel; then it asks every channel used to make the batch durable (``flush()``) and
    writes, in one unit of work, the batch's done-marks, contact attempts, steps, audit records
    and owed hooks. A run killed inside a batch hands that batch's messages over again on its
    rerun (each at most once more): delivery is at-least-once keyed by message id. A channel that
    cannot de-duplicate by message id has its records written as soon as its sends return, before
    it is handed its next message.

    Each channel is driven by a :class:`~carecollect.plugins.dispatch.ChannelSender` with the
    batch size, concurrency and rate limit its capabilities declare: the run renders the next
    messages while a channel sends, and waits when a channel has ``concurrency`` calls in flight.
    A message in flight counts as sent for the governor's checks of its account's next message
    (the careful side: a cap is never passed); one that fails stops counting.

    The parent runs it for every account with ``workers=1``; with more workers, each worker process
    runs it (unchanged) on its own connection to the same store file for its share of the accounts.
    Call :meth:`finish` after the last account.
    """

    def __init__(
        self,
        store: Store,
        pm: PluginManager,
        settings: RunSettings,
        renderer: Renderer,
        now: dt.datetime,
        beat: Callable[[], None] | None = None,
    ) -> None:
        if settings.send_batch < 1:
            raise ConfigurationError(f"send_batch must be at least 1, not {settings.send_batch}")
        self.store = store
        self.pm = pm
        self.settings = settings
        self.renderer = renderer
        self.now = now
        #: called before each account is carried out: raises RunLocked when the run lost its lock
        #: (the run stops before its next account, as it did before batches)
        self.beat = beat
        #: Per creditor with its own settings ("": the installation's): its settings, pay-link
        #: signer, channel and payment-provider instances (each made once per run).
        self._own: dict[
            str,
            tuple[RunSettings, PayLinkSigner | None, dict[str, MessageChannel], dict[str, PaymentProvider]],
        ] = {}
        self.creditors = _Creditors(store)
        self.accounts = _Fresh(store)
        self.counts = dict.fromkeys(_COUNTERS, 0)
        self._queue: list[tuple[str, str, AccountPlan, Sequence[tuple[str, str | None, dt.datetime]]]] = []
        self._queued = 0
        #: the planner's reads of the queued accounts (:meth:`account`'s ``read``)
        self._reads: dict[str, tuple[AccountSnapshot, object]] = {}
        self._handed: list[_Handed] = []
        self._steps: list[tuple[OutreachStep, list[list[str]]]] = []
        #: per channel instance: the sender that keeps it busy
        self._senders: dict[int, ChannelSender] = {}
        #: handed to a sender, result not taken yet: (channel, message id) -> (message, its outcome slot)
        self._waiting: dict[tuple[int, str], tuple[_Ready, list[str]]] = {}

    def _creditor_settings(
        self, creditor_id: str
    ) -> tuple[RunSettings, PayLinkSigner | None, dict[str, MessageChannel], dict[str, PaymentProvider]]:
        key = creditor_id if creditor_id in self.settings.creditors else ""
        own = self._own.get(key)
        if own is None:
            s = self.settings.for_creditor(key)
            signer = PayLinkSigner(s.pay_link_key, s.pay_link_base) if s.pay_link_key else None
            own = self._own[key] = (s, signer, {}, {})
        return own

    def account(
        self,
        account_id: str,
        creditor_id: str,
        plan: AccountPlan,
        account_conversations: Sequence[tuple[str, str | None, dt.datetime]],
        read: tuple[AccountSnapshot, object] | None = None,
    ) -> None:
        """Queue one account's plan (carried out on its creditor's settings) in the current batch;
        the batch is carried out once it holds ``send_batch`` messages or accounts, or at :meth:`finish`.

        :param read: the account's snapshot the planner read and its version read before it
            (:attr:`_Planned.read <carecollect.run.decisions._Planned.read>`): the batch uses it
            instead of reading the account again if its version still holds."""
        self._queue.append((account_id, creditor_id, plan, account_conversations))
        if read is not None and plan.messages:
            self._reads[account_id] = read
        self._queued += len(plan.messages)
        # whole accounts: a batch closes at send_batch messages, or accounts (a day with little due)
        if self._queued >= self.settings.send_batch or len(self._queue) >= self.settings.send_batch:
            self.finish()

    def finish(self) -> None:
        """Carry out every queued account and write their records."""
        queue, self._queue, self._queued = self._queue, [], 0
        reads, self._reads = self._reads, {}
        if not queue:
            return
        store, now, counts = self.store, self.now, self.counts
        intents: list[tuple[RunSettings, PlannedMessage]] = []
        with store.transaction():
            store.audit_append_many(
                [
                    (f"decision.{d.kind.value}", account_id, d.to_record())
                    for account_id, _, plan, _ in queue
                    for d in plan.decisions
                ],
                at=now,
            )
            for _, creditor_id, plan, _ in queue:
                for plan_id, number in plan.missed:
                    p = store.get_plan(plan_id)
                    inst = next(i for i in p.instalments if i.number == number)
                    if p.status is PlanStatus.ACTIVE and inst.status is InstalmentStatus.DUE:
                        p, _ = mark_instalment_missed(p, number, at=now)
                        store.put_plan(p)
                        counts["missed"] += 1
                settings = self._creditor_settings(creditor_id)[0]
                intents.extend((settings, m) for m in plan.messages)
            intended = _intend(store, intents, now)
        self.accounts.prefetch([account_id for account_id, *_ in queue], reads)
        try:
            try:
                for account_id, creditor_id, plan, talks in queue:
                    if self.beat is not None:
                        self.beat()
                    self._carry_out(account_id, creditor_id, plan, talks, intended)
            except RunLocked:
                self._record()  # what was handed over is recorded; the run then stops
                raise
            self._record()
        finally:
            for sender in self._senders.values():
                sender.close()  # its threads end with the batch (made again for the next)

    def _carry_out(
        self,
        account_id: str,
        creditor_id: str,
        plan: AccountPlan,
        account_conversations: Sequence[tuple[str, str | None, dt.datetime]],
        intended: dict[str, OutboxItem],
    ) -> None:
        store, now, counts = self.store, self.now, self.counts
        settings, signer, channels, providers = self._creditor_settings(creditor_id)
        creditor = self.creditors(creditor_id)
        for charge in plan.charges:
            if charge.decision.kind is DecisionKind.CHARGE:
                outcome = _charge(store, self.pm, settings, providers, charge, now)
                if outcome in ("charged", "charge_failed"):
                    counts[outcome] += 1
        by_step: dict[str, tuple[OutreachStep, list[list[str]]]] = {}
        for msg in plan.messages:
            outcome, ready = _prepare(
                store,
                self.pm,
                settings,
                self.renderer,
                signer,
                channels,
                creditor,
                msg,
                now,
                account_conversations,
                item=intended.get(msg.key),
                accounts=self.accounts,
            )
            slot = [msg.key, outcome]
            by_step.setdefault(msg.step.id, (msg.step, []))[1].append(slot)
            if ready is None:
                counts["failed" if outcome == "gave_up" else outcome] += 1
                continue
            self.accounts.handed(msg.step, ready.attempt)  # the governor counts it from now on
            sender = self._senders.get(id(ready.channel))
            if sender is None:
                sender = self._senders[id(ready.channel)] = ChannelSender.for_channel(ready.channel)
            self._waiting[(id(ready.channel), ready.outgoing.id)] = (ready, slot)
            slot[1] = "pending"
            sender.submit(ready.outgoing)  # waits while the channel has `concurrency` calls in flight
            self._collect(wait=False)
            if not _deduplicates(ready.channel):
                # the window stays the messages in flight for a channel that cannot de-duplicate
                self._record(wait=False)
        self._steps.extend(by_step.values())
        if plan.placement is not None:
            self._record()  # a placement follows the account's messages as recorded
            counts["placed"] += _place(store, self.pm, settings, plan.placement, now)

    def _collect(self, *, wait: bool) -> None:
        """Take the channels' answers (every one, waiting, when ``wait``): an accepted message is
        handed over (recorded by :meth:`_record`), a failed one recorded failed at once."""
        for sender in self._senders.values():
            for message, result in sender.drain() if wait else sender.ready():
                ready, slot = self._waiting.pop((id(sender.channel), message.id))
                outcome, handed = _receive(self.store, self.pm, ready, result, self.now)
                slot[1] = outcome
                self.counts[outcome] += 1
                if handed is None:
                    self.accounts.withdrawn(ready.msg.step, ready.attempt)
                    continue
                self.counts[f"sent.{ready.msg.channel.value}"] += 1
                self.accounts.handed(ready.msg.step, handed.attempt)
                self._handed.append(handed)

    def _record(self, *, wait: bool = True) -> None:
        """Make the channels' batches durable, then write the records of every message handed over
        (with ``wait``, after every channel answered for every message it holds; a step is closed
        once all its channels answered)."""
        if wait or any(
            callable(getattr(h.channel, "flush", None)) and self._senders[id(h.channel)].in_flight
            for h in self._handed
        ):
            # a channel is flushed only when none of its sends is in flight
            self._collect(wait=True)
        handed, self._handed = self._handed, []
        steps = [s for s in self._steps if all(o != "pending" for _, o in s[1])]
        self._steps = [s for s in self._steps if any(o == "pending" for _, o in s[1])]
        if not handed and not steps:
            return
        store, now = self.store, self.now
        broken: dict[int, str] = {}
        for channel in {id(h.channel): h.channel for h in handed}.values():
            flush = getattr(channel, "flush", None)
            if callable(flush):
                try:
                    flush()
                except OSError as exc:  # not durable: recorded failed below, sent again later
                    broken[id(channel)] = f"transport: {type(exc).__name__}"
        lost = {h.msg.key: broken[id(h.channel)] for h in handed if id(h.channel) in broken}
        done = [h for h in handed if h.msg.key not in lost]
        with store.transaction():
            # a step handed over is recorded as planned (so a run killed between two channels of
            # one step re-plans the rest), and as sent once all its channels are through: later wins
            closed = (
                _closed_step(store, step, [(k, "failed" if k in lost else o) for k, o in outcomes], now)
                for step, outcomes in steps
            )
            store.put_steps([h.msg.step for h in done] + [c for c in closed if c is not None])
            store.add_attempts([h.attempt for h in done])
            store.outbox_done_many(
                [
                    (
                        h.msg.key,
                        {
                            "provider_message_id": h.attempt.provider_message_id,
                            "to": _address_digest(h.address),
                        },
                    )
                    for h in done
                ],
                at=now,
            )
            store.audit_append_many(
                [
                    ("message.sent", h.msg.step.account_id, {"key": h.msg.key, "language": h.language})
                    for h in done
                ],
                at=now,
            )
            owed = []
            for h in done:
                log_event(
                    "run.message.sent",
                    account_id=h.msg.step.account_id,
                    key=h.msg.key,
                    channel=h.msg.channel.value,
                )
                sent_step = attrs.evolve(h.msg.step, status=OutreachStatus.SENT, sent_at=now)
                owed.append(
                    owe_hook(
                        store,
                        self.pm,
                        "carecollect_on_outreach_sent",
                        now,
                        step=sent_step,
                        event=_sent_event(sent_step, h.msg.channel, now),
                    )
                )
        self.accounts.recorded()
        for ready, _ in self._waiting.values():  # still in flight: the governor keeps counting them
            self.accounts.handed(ready.msg.step, ready.attempt)
        deliver_hooks(store, self.pm, owed, now)
        for h in handed:
            if h.msg.key in lost:
                _failed(store, self.pm, h.settings, h.msg, now, lost[h.msg.key])
                self.counts["sent"] -= 1
                self.counts[f"sent.{h.msg.channel.value}"] -= 1
                self.counts["failed"] += 1


def _deduplicates(channel: MessageChannel) -> bool:
    """Whether ``channel`` declares that it delivers a message handed over twice once."""
    capabilities = getattr(channel, "capabilities", None)
    return bool(getattr(capabilities, "deduplicates", False))


_COUNTERS = (
    "sent",
    "skipped",
    "suppressed",
    "failed",
    "deferred",
    "placed",
    "missed",
    "charged",
    "charge_failed",
    *(f"sent.{c.value}" for c in Channel),
)


def message_id(key: str) -> str:
    """The id a message is sent under (the channel's idempotency key): its outbox key with ``:``
    and ``#`` replaced, so it is safe as a file name or a provider's reference.

    >>> message_id("step:INV-1:statement#1:email")
    'step_INV-1_statement-1_email'
    """
    return key.replace(":", "_").replace("#", "-")


def _prepare(
    store: Store,
    pm: PluginManager,
    settings: RunSettings,
    renderer: Renderer,
    signer: PayLinkSigner | None,
    channels: dict[str, MessageChannel],
    creditor: Creditor,
    msg: PlannedMessage,
    now: dt.datetime,
    account_conversations: Sequence[tuple[str, str | None, dt.datetime]] = (),
    *,
    item: OutboxItem | None = None,
    accounts: _Fresh | None = None,
) -> tuple[str, _Ready | None]:
    """Outbox protocol for one message up to its hand-over: the checks against the account as
    stored now, the rendering. Returns ``("ready", ...)`` and the message to hand to its channel,
    or the counter to bump and ``None`` when it is not sent (done, deferred, suppressed, failed).

    ``item`` is the message's outbox item when :func:`_intend` already recorded the intent;
    ``accounts`` reads the account as stored now, with this run's sends not yet recorded (see
    :class:`_Fresh`).
    """
    step = msg.step
    plugin = settings.channel_plugins.get(msg.channel)
    if plugin is None:
        return "suppressed", None
    if item is None:
        item = _intend(store, ((settings, msg),), now)[msg.key]
    if item.status is OutboxStatus.DONE:
        return "skipped", None
    if item.status is OutboxStatus.FAILED and item.next_retry_at is None:
        return "gave_up", None  # gave up after max_attempts: reported (as failed), never retried silently
    if item.next_retry_at is not None and item.next_retry_at > now:
        return "deferred", None
    # Re-read the account: an opt-out or dispute that arrived since planning wins.
    accounts = accounts or _Fresh(store)
    fresh = accounts.get(step.account_id)
    pack = settings.pack(fresh.account.jurisdiction, fresh.account.creditor_id)
    inv = next((i for i in fresh.invoices if i.id == step.invoice_id), None)
    tz = fresh.patient.time_zones[0]
    view = _gate_snapshot(fresh, fresh.ledger.balance, tuple(i.id for i in fresh.invoices), tz)
    flags = relief_flags(view, invoice_id=step.invoice_id or "", now=now.astimezone(zone(tz)), pack=pack)
    debt = Debt(
        step.account_id,
        step.invoice_id,
        disputes=fresh.disputes,
        insurer_waiting=flags.insurer_waiting,
        plan_current=bool(flags.plan_status and flags.plan_status.current),
        assistance_pending=flags.assistance_pending,
    )
    verdict = may_contact(
        fresh.patient,
        debt,
        msg.channel,
        now,
        ContactHistory.of(fresh.attempts, account_conversations),
        pack,
        creditor,
        step.purpose,
    )
    address = _recipient(fresh, msg.channel, now)
    if not verdict.allowed or address is None or inv is None or inv.status is not InvoiceStatus.OPEN:
        # Nothing was sent: the item stays open and a later run re-plans it (or never does, when the
        # patient's wish or the debt's state now forbids it for good).
        blocking = [r.rule_id for r in verdict.reasons if r.outcome.value in ("deny", "defer")]
        if address is None and UNDELIVERABLE_RULE not in blocking:
            blocking.append("contact_point.missing")
        if inv is None or inv.status is not InvoiceStatus.OPEN:
            blocking.append("invoice.not_open")
        with store.transaction():
            store.outbox_failed(
                msg.key,
                at=now,
                error="suppressed: " + ",".join(blocking)[:250],
                retry_at=verdict.earliest_allowed or now + dt.timedelta(days=1),
            )
            store.audit_append(
                "message.suppressed", step.account_id, {"key": msg.key, "rules": blocking}, at=now
            )
        return "suppressed", None
    try:
        claims = _claims_in_force(store, step, accounts.claim_records(step))
        ctx = _message_context(fresh, creditor, step, settings, now, signer, claims)
        rendered = renderer.render(step.purpose, msg.channel, fresh.patient.preferred_language, ctx)
        channel = _channel_instance(pm, settings, plugin, channels)
        outgoing = OutgoingMessage(
            id=message_id(msg.key),
            channel=msg.channel,
            # a letter's window shows the patient's name above the address
            recipient=f"{fresh.patient.name}\n{address}"
            if msg.channel is Channel.LETTER and fresh.patient.name
            else address,
            body=rendered.text,
            subject=rendered.subject or "",
            html=rendered.html,
            language=rendered.language,
            account_id=step.account_id,
            opt_out_url=settings.opt_out_url,
            country=fresh.patient.country or region_of(fresh.account.jurisdiction),
            reference=ctx.reference,
            pay_link=ctx.pay_link,
            written_on=ctx.today,
        )
    except StoreUnavailable:  # the store's server went away: not this message's failure; the run stops
        raise
    except CareCollectError as exc:
        return _failed(store, pm, settings, msg, now, f"{type(exc).__name__}: {exc}"), None
    except OSError as exc:
        return _failed(store, pm, settings, msg, now, f"transport: {type(exc).__name__}"), None
    attempt = ContactAttempt(
        f"{msg.key}@{now.isoformat()}",
        step.id,
        step.account_id,
        step.invoice_id,
        msg.channel,
        now,
        AttemptOutcome.DELIVERED,
    )
    return "ready", _Ready(msg, settings, channel, outgoing, attempt, address, rendered.language)


def _receive(
    store: Store, pm: PluginManager, ready: _Ready, result: Receipt | Exception, now: dt.datetime
) -> tuple[str, _Handed | None]:
    """What the channel answered for ``ready``: the counter to bump and, for a message it accepted,
    what the caller records for it (:meth:`_Sender._record`). An exception other than a
    :class:`~carecollect.errors.CareCollectError` or an ``OSError`` is a fault: raised again."""
    msg, settings = ready.msg, ready.settings
    if isinstance(result, CareCollectError):
        return _failed(store, pm, settings, msg, now, f"{type(result).__name__}: {result}"), None
    if isinstance(result, OSError):
        return _failed(store, pm, settings, msg, now, f"transport: {type(result).__name__}"), None
    if isinstance(result, BaseException):
        raise result
    if result.status is not ReceiptStatus.ACCEPTED:
        return _failed(store, pm, settings, msg, now, f"channel said {result.status.value}"), None
    attempt = attrs.evolve(ready.attempt, provider_message_id=result.provider_message_id)
    return "sent", _Handed(msg, settings, ready.channel, attempt, ready.address, ready.language)


def _send_one(
    store: Store,
    pm: PluginManager,
    settings: RunSettings,
    renderer: Renderer,
    signer: PayLinkSigner | None,
    channels: dict[str, MessageChannel],
    creditor: Creditor,
    msg: PlannedMessage,
    now: dt.datetime,
    account_conversations: Sequence[tuple[str, str | None, dt.datetime]] = (),
    *,
    item: OutboxItem | None = None,
    accounts: _Fresh | None = None,
) -> tuple[str, _Handed | None]:
    """The outbox protocol for one message, sent from this thread: :func:`_prepare`, the channel's
    ``send``, :func:`_receive`."""
    accounts = accounts or _Fresh(store)
    outcome, ready = _prepare(
        store,
        pm,
        settings,
        renderer,
        signer,
        channels,
        creditor,
        msg,
        now,
        account_conversations,
        item=item,
        accounts=accounts,
    )
    if ready is None:
        return outcome, None
    try:
        result: Receipt | Exception = ready.channel.send(ready.outgoing)
    except (CareCollectError, OSError) as exc:
        result = exc
    outcome, handed = _receive(store, pm, ready, result, now)
    if handed is not None:
        accounts.handed(handed.msg.step, handed.attempt)  # the governor sees it for the next message
    return outcome, handed


@attrs.frozen(eq=False)
class _Held:
    """An account as :class:`_Fresh` read it: the snapshot, the account's version read before it
    (compared for equality only; ``None``: the store keeps no versions) and the insurer's claim
    records of its invoices when they were read with it (``None``: read them when asked)."""

    snapshot: AccountSnapshot
    version: object
    claims: dict[str, list[AuditRecord]] | None = None


#: Accounts :class:`_Fresh` holds at most outside a batch read (it lets them all go then).
_HELD_AT_MOST = 4096


class _Fresh:
    """The account as the store holds it now, with this run's sends not yet recorded laid over it.

    An opt-out or a dispute that arrives during the run must win over any message not yet sent, so
    each message is checked against the account as stored at that moment. When the store offers
    ``change_token()`` (a value that changes with any write, by this connection or another:
    :meth:`SQLiteStore.change_token <carecollect.store.sqlite.SQLiteStore.change_token>`), an
    account once read is used again while nothing was written since, and the accounts of a batch
    are read together once its intents are written (:meth:`prefetch`), with the insurer's claim
    records of their invoices. Once something was written, a store that also offers
    ``account_versions()`` (:meth:`SQLiteStore.account_versions
    <carecollect.store.sqlite.SQLiteStore.account_versions>`: per account, a number that changes
    with every write to anything its snapshot holds) is asked for the versions of the accounts
    held, in one query, and only those whose version moved are read again: another worker's
    commits, which touch other patients' accounts, no longer make every account of the batch be
    read one by one. Without versions everything held is dropped and read again; without
    ``change_token()`` every message reads its account. Each version is read before its
    account's snapshot, so a write that lands between the two moves it and the read is not used.

    The messages this run handed over and has not recorded yet are laid over every read: their
    steps, still planned, put in place and their contact attempts added, so the governor counts a
    message sent earlier in the batch. Their records are written once per batch (:meth:`recorded`),
    which moves the versions of the accounts written to: those are read again when next asked for.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._token: Callable[[], object] | None = getattr(store, "change_token", None)
        self._versions: Callable[[Sequence[str]], Mapping[str, object]] | None = (
            getattr(store, "account_versions", None) if self._token is not None else None
        )
        #: the accounts read and not known to be out of date, as of the change token ``_seen``
        self._held: dict[str, _Held] = {}
        self._seen: object = None
        #: the account last asked for, and its read with this run's unrecorded sends laid over it
        #: (``None``: laid over again when next asked for, after a send was handed over or withdrawn)
        self._account_id: str | None = None
        self._snap_of: _Held | None = None
        self._snap: AccountSnapshot | None = None
        #: per account: the steps and attempts of its messages handed over, not yet recorded
        self._pending: dict[str, tuple[dict[str, OutreachStep], dict[str, ContactAttempt]]] = {}

    def _current(self) -> None:
        """Drop the accounts held that were written since they were read (all of them, if the
        store keeps no versions); a no-op while the change token is the one last seen."""
        if self._token is None:
            return
        token = self._token()  # taken before the versions are read
        if token == self._seen:
            return
        if self._held:
            if self._versions is None:
                self._held.clear()
            else:
                now = self._versions(list(self._held))
                for account_id, held in list(self._held.items()):
                    if now.get(account_id, 0) != held.version:
                        del self._held[account_id]
        self._seen = token

    def prefetch(
        self, account_ids: Sequence[str], reads: Mapping[str, tuple[AccountSnapshot, object]] | None = None
    ) -> None:
        """Read the accounts of a batch together, with their invoices' claim records; each is
        used while it is not written.

        :param reads: accounts read already (by the planner), each with its version read before
            it: used instead of reading again when its version is still the same (only with a
            store that keeps versions).

        Without ``change_token()`` nothing is read ahead (every message reads its account)."""
        if self._token is None or not account_ids:
            return
        self._current()
        wanted = dict.fromkeys(account_ids)
        # the earlier batches' reads are let go (an account of this batch still held is kept)
        self._held = {i: held for i, held in self._held.items() if i in wanted}
        ids = [i for i in wanted if i not in self._held]
        if not ids:
            return
        versions = self._versions(ids) if self._versions is not None else None  # before the read
        # a read whose version still holds is as good as one made now (nothing written since)
        kept: dict[str, AccountSnapshot] = {}
        if versions is not None and reads:
            kept = {i: reads[i][0] for i in ids if i in reads and versions[i] == reads[i][1]}
        snaps = [*kept.values(), *self._store.account_snapshots([i for i in ids if i not in kept])]
        claims: dict[str, dict[str, list[AuditRecord]]] = {
            snap.account.id: {inv.id: [] for inv in snap.invoices} for snap in snaps
        }
        invoices = {inv.id: snap.account.id for snap in snaps for inv in snap.invoices}
        for rec in self._store.audit_records(subject_ids=list(invoices), kinds={CLAIM_RECORD}):
            claims[invoices[rec.subject_id]][rec.subject_id].append(rec)
        for snap in snaps:
            account_id = snap.account.id
            version = None if versions is None else versions.get(account_id, 0)
            self._held[account_id] = _Held(snap, version, claims[account_id])

    def claim_records(self, step: OutreachStep) -> list[AuditRecord] | None:
        """The insurer's claim records of ``step``'s invoice as read with the batch, if its account
        was not written since (as of the last :meth:`get`); ``None``: read them now."""
        held = self._held.get(step.account_id)
        if held is None or held.claims is None:
            return None
        return held.claims.get(step.invoice_id) if step.invoice_id is not None else None

    def get(self, account_id: str) -> AccountSnapshot:
        """The account as stored now, with this run's unrecorded sends laid over it."""
        self._current()
        held = self._held.get(account_id)
        if held is None:
            version = self._versions([account_id]).get(account_id, 0) if self._versions is not None else None
            held = _Held(self._store.account_snapshot(account_id), version)
            if self._token is not None:
                if len(self._held) >= _HELD_AT_MOST:  # accounts read one by one, with no batch
                    self._held.clear()
                self._held[account_id] = held
        if self._snap is None or self._snap_of is not held:
            self._snap = self._overlay(held.snapshot)
            self._snap_of = held
        self._account_id = account_id
        return self._snap

    def _overlay(self, snap: AccountSnapshot) -> AccountSnapshot:
        pending = self._pending.get(snap.account.id)
        if not pending:
            return snap
        steps, attempts = pending
        known = {a.id for a in snap.attempts}
        return attrs.evolve(
            snap,
            steps=tuple(
                sorted(
                    [s for s in snap.steps if s.id not in steps] + list(steps.values()), key=lambda s: s.id
                )
            ),
            attempts=snap.attempts + tuple(a for a in attempts.values() if a.id not in known),
        )

    def handed(self, step: OutreachStep, attempt: ContactAttempt) -> None:
        """A message of ``step`` was handed over; its records are written later."""
        steps, attempts = self._pending.setdefault(step.account_id, ({}, {}))
        steps[step.id] = step
        attempts[attempt.id] = attempt
        if self._account_id == step.account_id:
            self._snap = None  # laid over again when next asked for

    def withdrawn(self, step: OutreachStep, attempt: ContactAttempt) -> None:
        """A message counted by :meth:`handed` failed: it stops counting."""
        pending = self._pending.get(step.account_id)
        if pending is None:
            return
        steps, attempts = pending
        attempts.pop(attempt.id, None)
        if not any(a.step_id == step.id for a in attempts.values()):
            steps.pop(step.id, None)
        if self._account_id == step.account_id:
            self._snap = None  # laid over again, without it

    def recorded(self) -> None:
        """The unrecorded sends were written: they are no longer laid over the reads (an account
        they were written to has moved on, and is read again when next asked for)."""
        self._pending.clear()
        self._snap = self._snap_of = None


def _intend(
    store: Store, messages: Sequence[tuple[RunSettings, PlannedMessage]], now: dt.datetime
) -> dict[str, OutboxItem]:
    """Record every message (each with its creditor's settings) as intended, in one unit of work,
    before any is sent.

    Each intent is durable before its send, a killed run finds the intents (and whatever of them
    is done) on its rerun, and the channel is called with the message id as idempotency key. A
    message whose channel has no plugin is not recorded (it is suppressed).
    """
    todo = [m for s, m in messages if s.channel_plugins.get(m.channel) is not None]
    if not todo:
        return {}
    with store.transaction():
        return store.outbox_intend_many(
            [
                (
                    m.key,
                    "message",
                    {"step": m.step.id, "channel": m.channel.value, "purpose": m.step.purpose.value},
                    m.step.account_id,
                )
                for m in todo
            ],
            at=now,
        )


def _closed_step(
    store: Store, step: OutreachStep, outcomes: list[tuple[str, str]], now: dt.datetime | None = None
) -> OutreachStep | None:
    """``step`` recorded sent, once every channel planned for it is through (``None``: not yet).

    A channel that failed or waits for its back-off keeps the step open, so the next
    run plans it again (its done channels are skipped by their outbox keys). A
    suppressed channel (an opt-out or a dispute won) or one given up does not: the
    step counts as sent if any channel delivered it. ``sent_at`` is the first delivery.
    """
    if any(o in ("failed", "deferred") for _, o in outcomes):
        return None
    done = [(k, o) for k, o in outcomes if o in ("sent", "skipped")]
    if not done:
        return None
    # a channel this run sent was recorded done at ``now``; one done by an earlier run is read back
    times = [now if o == "sent" and now is not None else store.outbox_get(k).updated_at for k, o in done]
    sent_at = min(t for t in times if t is not None)
    return attrs.evolve(step, status=OutreachStatus.SENT, sent_at=sent_at)


def _close_step(
    store: Store, step: OutreachStep, outcomes: list[tuple[str, str]], now: dt.datetime | None = None
) -> None:
    """Record :func:`_closed_step` of ``step``, if it is through."""
    closed = _closed_step(store, step, outcomes, now)
    if closed is not None:
        store.put_step(closed)


def _sent_event(step: OutreachStep, channel: Channel, now: dt.datetime) -> Event:
    return Event(EventType.OUTREACH_SENT, step.id, now, {"channel": channel.value})


def _failed(
    store: Store, pm: PluginManager, settings: RunSettings, msg: PlannedMessage, now: dt.datetime, why: str
) -> str:
    """Record a failed send and, in the same unit of work, the ``on_outreach_failed`` owed to plugins."""
    with store.transaction():
        item = store.outbox_get(msg.key)
        retry = next_retry_at(item.attempts + 1, now) if item.attempts + 1 < settings.max_attempts else None
        store.outbox_failed(msg.key, at=now, error=why[:300], retry_at=retry, give_up=retry is None)
        store.audit_append(
            "message.failed", msg.step.account_id, {"key": msg.key, "error": why[:300]}, at=now
        )
        owed = _owe_send_failure(store, pm, msg, now)
    deliver_hooks(store, pm, (owed,), now)
    return "failed"


def new_pay_link_key() -> bytes:
    """A fresh 32-byte key for pay links (store it as a secret)."""
    return secrets.token_bytes(32)


def _intend_all(
    store: Store, settings: RunSettings, messages: Sequence[PlannedMessage], now: dt.datetime
) -> dict[str, OutboxItem]:
    """:func:`_intend` for messages on one set of settings (one account's)."""
    return _intend(store, [(settings, m) for m in messages], now)
