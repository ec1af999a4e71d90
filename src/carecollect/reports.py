"""The figures ``carecollect report`` shows, as pure functions returning frozen objects.

Each function takes plain records (invoice rows, ledger entries, audit
records, plans, disputes, contact-centre records) and the instant ``now``;
none reads a clock or a file. :func:`report_from_store` is the thin edge that
reads those records from a :class:`~carecollect.store.base.Store` and calls
them; the command line and the demo both use it.

* :func:`aging` — open balances by currency in the buckets *current*,
  *1-30*, *31-60*, *61-90*, *91-120* and *120+* days past the due date
  (each invoice's days counted on the patient's local date);
* :func:`collected` — patient and agency payments posted to the ledger in
  a period, by currency, gross and net of what went back in the period
  (returned debits, chargebacks, provider refunds);
* :func:`message_figures` — messages sent, by purpose (the outreach step),
  channel and language;
* :func:`status_counts` — plans by status (offered = proposed, chosen =
  active, paused, completed, defaulted) and disputes by status;
* :func:`held_back` — the rules that held accounts back (message holds and
  agency gates), each with the number of distinct accounts it held;
* the contact-centre figures of the day come from
  :func:`carecollect.contact_centre.daily_contact_centre_report` with
  :func:`default_contact_targets`.

>>> import datetime as dt
>>> bucket_of(0), bucket_of(1), bucket_of(30), bucket_of(31), bucket_of(121)
('current', '1-30', '1-30', '31-60', '120+')
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .calendars import BusinessCalendar
from .contact_centre import (
    AnswerTimeTarget,
    ContactChannel,
    ContactRecord,
    DailyReport,
    QueueKind,
    ResponseTarget,
    daily_contact_centre_report,
    queue_name,
)
from .contact_centre.service_levels import Target
from .disputes import Dispute
from .ledger import EntryKind, LedgerEntry
from .money import Money
from .plans import PaymentPlan
from .store.base import AuditRecord, InvoiceRow, NotFound, Store
from .timekeeping import require_aware, zone

__all__ = [
    "BUCKETS",
    "AgingLine",
    "CollectedLine",
    "CollectionReport",
    "Count",
    "HeldBack",
    "MessageFigures",
    "SentMessage",
    "aging",
    "bucket_of",
    "collected",
    "default_contact_targets",
    "held_back",
    "message_figures",
    "report_from_store",
    "sent_messages",
    "status_counts",
]

#: The aging buckets, in order (days past the due date).
BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
_UPPER = (0, 30, 60, 90, 120)


def bucket_of(days_past_due: int) -> str:
    """The aging bucket of an invoice ``days_past_due`` days past its due date (0 or less: current).

    :param days_past_due: today minus the due date, in days.
    :returns: one of :data:`BUCKETS`.

    >>> bucket_of(-5), bucket_of(60), bucket_of(61), bucket_of(120)
    ('current', '31-60', '61-90', '91-120')
    """
    for name, upper in zip(BUCKETS, _UPPER, strict=False):
        if days_past_due <= upper:
            return name
    return BUCKETS[-1]


@attrs.frozen
class AgingLine:
    """Open balances of one currency by bucket.

    :param currency: ISO 4217 code.
    :param amounts: the open balance in each of :data:`BUCKETS`, in order.
    :param invoices: how many open invoices fall in each bucket.
    """

    currency: str
    amounts: tuple[Money, ...]
    invoices: tuple[int, ...]

    @property
    def total(self) -> Money:
        """The open balance of every bucket together."""
        return Money.from_minor(sum(a.minor_units for a in self.amounts), self.currency)


def aging(rows: Iterable[InvoiceRow], now: dt.datetime) -> tuple[AgingLine, ...]:
    """Open invoice balances by currency and aging bucket at ``now``.

    An invoice counts when its status is ``open`` and its balance is more
    than zero; its days past due are counted on the local date of ``now`` in
    the patient's time zone.

    :param rows: invoice rows (:meth:`~carecollect.store.base.Store.iter_invoice_rows`).
    :param now: the report's instant (aware).
    :returns: one line per currency, sorted by currency.
    :raises ValidationError: ``now`` is naive.

    >>> import datetime as dt
    >>> from carecollect.store.base import InvoiceRow
    >>> d = dt.date
    >>> row = InvoiceRow("I-1", "A-1", "P-1", "no", "NOK", "nb", "Europe/Oslo", "open", "none",
    ...                  d(2026, 1, 1), d(2026, 1, 15), None, 50000, 45000, False, None, False)
    >>> [line] = aging([row], dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc))
    >>> line.currency, [str(a) for a in line.amounts][:3], line.invoices
    ('NOK', ['NOK 0.00', 'NOK 0.00', 'NOK 450.00'], (0, 0, 1, 0, 0, 0))
    """
    require_aware(now, "report", "now")
    today_in: dict[str, dt.date] = {}
    minor: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
    count: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
    index = {name: i for i, name in enumerate(BUCKETS)}
    for row in rows:
        if row.status != "open" or row.balance_minor <= 0:
            continue
        today = today_in.get(row.time_zone)
        if today is None:
            today = today_in[row.time_zone] = now.astimezone(zone(row.time_zone)).date()
        i = index[bucket_of((today - row.due_date).days)]
        minor[row.currency][i] += row.balance_minor
        count[row.currency][i] += 1
    return tuple(
        AgingLine(cur, tuple(Money.from_minor(m, cur) for m in minor[cur]), tuple(count[cur]))
        for cur in sorted(minor)
    )


def _zero_of_line(line: CollectedLine) -> Money:
    return Money.zero(line.currency)


@attrs.frozen
class CollectedLine:
    """Money collected in one currency during the period, and what of it went back.

    :param currency: ISO 4217 code.
    :param amount: the sum of payment entries (gross).
    :param payments: how many distinct payments they came from.
    :param reversed: the sum of :attr:`~carecollect.ledger.EntryKind.PAYMENT_REVERSED` entries
        in the period: returned direct debits, chargebacks and refunds the provider made, of
        payments from this period or earlier. Refunds the creditor posted are not in it.
    :param reversals: how many distinct reversals they came from.
    """

    currency: str
    amount: Money
    payments: int
    reversed: Money = attrs.field(default=attrs.Factory(_zero_of_line, takes_self=True))
    reversals: int = 0

    @property
    def net(self) -> Money:
        """What was collected net of what went back: ``amount - reversed`` (negative if more went back)."""
        return self.amount - self.reversed


_PAYMENT_KINDS = frozenset({EntryKind.PATIENT_PAYMENT})
_REVERSAL_KINDS = frozenset({EntryKind.PAYMENT_REVERSED})
_COLLECTED_KINDS = _PAYMENT_KINDS | _REVERSAL_KINDS


def collected(
    entries: Iterable[LedgerEntry], start: dt.datetime, end: dt.datetime
) -> tuple[CollectedLine, ...]:
    """Payments posted to the ledger with ``start <= at < end``, and reversals in that period, by currency.

    Patient payments and agency remittances (both posted as patient-payment
    entries) count; insurer payments, adjustments and write-offs do not.
    Money that went back in the period (payment-reversed entries: a returned
    direct debit, a chargeback, a refund the provider made) is summed apart, so
    a line shows collected gross (:attr:`CollectedLine.amount`), reversed and
    net (:attr:`CollectedLine.net`). A reversal counts in the period it
    happened, whenever its payment was made; a currency with only reversals in
    the period has a line with nothing collected.

    :param entries: ledger entries of any accounts.
    :param start: the period's start (aware).
    :param end: the period's end (aware, exclusive).
    :returns: one line per currency, sorted by currency.

    >>> import datetime as dt
    >>> from carecollect.ledger import LedgerEntry, EntryKind
    >>> t = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
    >>> e = LedgerEntry("k1", EntryKind.PATIENT_PAYMENT, Money("25.00", "EUR"), t, "I-1", "PAY-1", "payment")
    >>> r = LedgerEntry("REV-1#I-1", EntryKind.PAYMENT_REVERSED, Money("10.00", "EUR"), t, "I-1", "REV-1",
    ...                 "chargeback:reversal-of:PAY-1")
    >>> [(c.currency, str(c.amount), c.payments, str(c.reversed), c.reversals, str(c.net))
    ...  for c in collected([e, r], t, t + dt.timedelta(days=1))]
    [('EUR', 'EUR 25.00', 1, 'EUR 10.00', 1, 'EUR 15.00')]
    """
    require_aware(start, "report", "start")
    require_aware(end, "report", "end")
    minor: dict[str, int] = defaultdict(int)
    sources: dict[str, set[str]] = defaultdict(set)
    back: dict[str, int] = defaultdict(int)
    reversals: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if not start <= entry.at < end:
            continue
        cur = entry.amount.currency
        if entry.kind in _PAYMENT_KINDS:
            minor[cur] += entry.amount.minor_units
            sources[cur].add(entry.source_id)
        elif entry.kind in _REVERSAL_KINDS:
            back[cur] += entry.amount.minor_units
            reversals[cur].add(entry.source_id)
    return tuple(
        CollectedLine(
            cur,
            Money.from_minor(minor[cur], cur),
            len(sources[cur]),
            Money.from_minor(back[cur], cur),
            len(reversals[cur]),
        )
        for cur in sorted(minor.keys() | back.keys())
    )


@attrs.frozen
class SentMessage:
    """One message that went out (ids and codes only).

    :param purpose: the outreach purpose (``"reminder"``, ``"final_notice"``...).
    :param channel: the channel (``"sms"``, ``"email"``...).
    :param language: the language it was written in.
    :param at: when it was sent.
    """

    purpose: str
    channel: str
    language: str
    at: dt.datetime


@attrs.frozen
class Count:
    """A label and how many."""

    label: str
    count: int


def _counts(values: Iterable[str]) -> tuple[Count, ...]:
    return tuple(Count(k, n) for k, n in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


@attrs.frozen
class MessageFigures:
    """Messages sent, counted three ways (most frequent first).

    :param total: every message sent.
    :param by_purpose: per outreach purpose (the step).
    :param by_channel: per channel.
    :param by_language: per language.
    """

    total: int
    by_purpose: tuple[Count, ...]
    by_channel: tuple[Count, ...]
    by_language: tuple[Count, ...]


def message_figures(messages: Iterable[SentMessage]) -> MessageFigures:
    """Count messages by purpose, channel and language.

    :param messages: the messages sent in the period.

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
    >>> f = message_figures([SentMessage("reminder", "sms", "nb", t), SentMessage("reminder", "email", "de", t)])
    >>> f.total, f.by_purpose
    (2, (Count(label='reminder', count=2),))
    """
    items = tuple(messages)
    return MessageFigures(
        len(items),
        _counts(m.purpose for m in items),
        _counts(m.channel for m in items),
        _counts(m.language for m in items),
    )


def status_counts(records: Iterable[PaymentPlan | Dispute]) -> tuple[Count, ...]:
    """How many plans (or disputes) are in each status.

    :param records: payment plans or disputes.
    :returns: counts by status value, most frequent first.
    """
    return _counts(r.status.value for r in records)


@attrs.frozen
class HeldBack:
    """A rule that held accounts back.

    :param kind: ``"message"`` (a message held by the contact rules) or
        ``"agency"`` (the agency gate refused a placement).
    :param rule_id: the rule's id in its pack.
    :param accounts: distinct accounts it held at least once in the period.
    """

    kind: str
    rule_id: str
    accounts: int


_HOLD_KINDS = {"decision.hold": "message", "decision.gate_held": "agency"}
_HOLDING = frozenset({"deny", "defer"})


def held_back(records: Iterable[AuditRecord]) -> tuple[HeldBack, ...]:
    """The rules that held accounts back, from the audit log's hold and gate decisions.

    A reason counts when its outcome is ``deny`` or ``defer``.

    :param records: audit records (others than decisions are ignored).
    :returns: by kind, then most accounts first.

    >>> import datetime as dt
    >>> from carecollect.store.base import AuditRecord
    >>> t = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
    >>> why = {"reasons": [{"rule_id": "contact.quiet_hours", "source": "s", "outcome": "defer", "message": "m"}]}
    >>> held_back([AuditRecord(1, t, "decision.hold", "A-1", why, "0", "1")])
    (HeldBack(kind='message', rule_id='contact.quiet_hours', accounts=1),)
    """
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in records:
        kind = _HOLD_KINDS.get(rec.kind)
        if kind is None:
            continue
        for reason in rec.data.get("reasons", ()):
            if reason.get("outcome") in _HOLDING:
                seen[(kind, str(reason.get("rule_id")))].add(rec.subject_id)
    out = [HeldBack(kind, rule, len(accounts)) for (kind, rule), accounts in seen.items()]
    return tuple(sorted(out, key=lambda h: (h.kind != "message", -h.accounts, h.rule_id)))


def sent_messages(
    records: Iterable[AuditRecord], outbox_payload: Mapping[str, Mapping[str, Any]]
) -> list[SentMessage]:
    """The messages sent, from ``message.sent`` audit records and their outbox payloads.

    :param records: audit records.
    :param outbox_payload: the outbox payload (``purpose``, ``channel``) by outbox key.
    """
    out = []
    for rec in records:
        if rec.kind != "message.sent":
            continue
        payload = outbox_payload.get(str(rec.data.get("key")), {})
        out.append(
            SentMessage(
                str(payload.get("purpose", "unknown")),
                str(payload.get("channel", "unknown")),
                str(rec.data.get("language", "unknown")),
                rec.at,
            )
        )
    return out


def default_contact_targets(country: str, tz: str) -> tuple[Target, ...]:
    """The contact-centre targets of the report: the service levels article 002 describes.

    Phone queues (disputes, hardship, general): 80 % answered within 60
    seconds. E-mail queues: answered within one business day in ``country``'s
    calendar; e-mail disputes the same business day.

    :param country: the centre's country (its holiday calendar).
    :param tz: the centre's time zone.

    >>> [t.queue for t in default_contact_targets("NO", "Europe/Oslo")][:2]
    ['phone-disputes', 'phone-hardship']
    """
    cal = BusinessCalendar.for_country(country)
    targets: list[Target] = [
        AnswerTimeTarget(queue_name(ContactChannel.PHONE, kind), 0.8, dt.timedelta(seconds=60))
        for kind in QueueKind
    ]
    targets.extend(
        ResponseTarget(
            queue_name(ContactChannel.EMAIL, kind), 0 if kind is QueueKind.DISPUTES else 1, cal, tz
        )
        for kind in QueueKind
    )
    return tuple(targets)


@attrs.frozen
class CollectionReport:
    """Everything ``carecollect report`` shows.

    :param now: the report's instant.
    :param start: the period's start (amounts collected and messages count from here).
    :param aging: open balances by currency and bucket.
    :param collected: payments in the period, gross, reversed and net.
    :param messages: messages sent in the period.
    :param plans: plans by status (all time).
    :param disputes: disputes by status (all time).
    :param held: rules that held accounts back in the period.
    :param contact_centre: the day's contact-centre figures (``None`` without contact records).
    """

    now: dt.datetime
    start: dt.datetime
    aging: tuple[AgingLine, ...]
    collected: tuple[CollectedLine, ...]
    messages: MessageFigures
    plans: tuple[Count, ...]
    disputes: tuple[Count, ...]
    held: tuple[HeldBack, ...]
    contact_centre: DailyReport | None = None


def report_from_store(
    store: Store,
    now: dt.datetime,
    *,
    days: int = 30,
    contacts: Sequence[ContactRecord] | None = None,
    centre_country: str = "NO",
    centre_tz: str = "Europe/Oslo",
) -> CollectionReport:
    """Read the records the report needs from ``store`` and compute it (the I/O edge).

    :param store: the store.
    :param now: the report's instant (aware).
    :param days: the period in days before ``now`` for money collected, messages and holds.
    :param contacts: contact-centre records; ``None`` leaves the contact-centre figures out.
    :param centre_country: the contact centre's country (business days).
    :param centre_tz: the contact centre's time zone (what "the day" is).
    """
    require_aware(now, "report", "now")
    start = now - dt.timedelta(days=days)
    entries: list[LedgerEntry] = []
    plans: list[PaymentPlan] = []
    disputes: list[Dispute] = []
    for snap in store.iter_account_snapshots(batch_size=1000):
        entries.extend(e for e in snap.ledger.entries if e.kind in _COLLECTED_KINDS)
        plans.extend(snap.plans)
        disputes.extend(snap.disputes)
    in_period = [r for r in store.audit_records() if start <= r.at <= now]
    payloads: dict[str, Mapping[str, Any]] = {}
    for rec in in_period:
        if rec.kind == "message.sent":
            key = str(rec.data.get("key"))
            try:
                payloads[key] = store.outbox_get(key).payload
            except NotFound:
                payloads[key] = {}
    centre = None
    if contacts is not None:
        day = now.astimezone(zone(centre_tz)).date()
        centre = daily_contact_centre_report(
            contacts, day, centre_tz, default_contact_targets(centre_country, centre_tz), now=now
        )
    return CollectionReport(
        now=now,
        start=start,
        aging=aging(store.iter_invoice_rows(), now),
        collected=collected(entries, start, now + dt.timedelta(microseconds=1)),
        messages=message_figures(sent_messages(in_period, payloads)),
        plans=status_counts(plans),
        disputes=status_counts(disputes),
        held=held_back(in_period),
        contact_centre=centre,
    )
