"""Plan rows: one flat tuple per invoice with every fact the daily run's decisions read, at the run's instant.

The daily run decides most accounts without building a domain object: the
store hands over its raw facts (:class:`~carecollect.store.base.PlanFacts`,
one query per table and batch), :func:`rows_from_facts` turns them into
plan rows, and :func:`carecollect.run.kernel.decide` makes the decisions on
them with the compiled cadence kernel. An account whose records need the
rich path (an open dispute, a current plan, a pending assistance
application, a conversation with the contact centre, an agency gate to
check, an invoice in another currency) is marked ``rich`` and decided on
its :class:`~carecollect.store.base.AccountSnapshot` instead.

:func:`rows_from_snapshot` makes the same rows from a snapshot, for stores
without :meth:`iter_plan_facts` and for the property test that holds the two
producers (and the two deciders) equal.

A row's fields, by index (the ``R_*`` constants); "now" is the run's instant:

====  ==================  ====================================================================
 0    ``R_ID``            invoice id
 1    ``R_CTX``           index of the row's :class:`Context` (pack, zones, collector) in a :class:`Contexts`
 2    ``R_OPEN``          the invoice is open
 3    ``R_ISSUE``         issue date (ordinal)
 4    ``R_DUE``           due date (ordinal)
 5    ``R_PLACED``        a collector's placement day (ordinal; 0 for other creditors)
 6    ``R_BALANCE``       what is owed (minor units: the ledger once charged, else the patient's share)
 7    ``R_DISPUTE``       an open dispute covers the invoice (such accounts are rich)
 8    ``R_PLAN``          a current plan covers the invoice (such accounts are rich)
 9    ``R_INSURER``       the filing day of a claim the insurer has not decided (ordinal), negative
                          when appealed, 0 when no claim waits
10    ``R_ASSIST``        an assistance application is pending (such accounts are rich)
11    ``R_CEASE``         the patient asked us to stop, at or before now
12    ``R_USABLE``        channel bits the patient's wishes allow now (consent, no opt-out, not
                          bounced, the confidential wish), as
                          :func:`~carecollect.policy.governor.channel_usable` answers
13    ``R_SMS_CHECKED``   the latest consent or number check of any SMS point at or before now
                          (microseconds since the epoch; -1: none)
14    ``R_SENT``          sent steps ``((purpose, day ordinal), ...)`` in the order they went out
15    ``R_RECENT``        counted contacts at or before now on this invoice or the whole account
                          ``((channel code, day ordinal), ...)`` in that order, for the caps
====  ==================  ====================================================================

Days are in the patient's first zone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..channels import Channel
from ..creditors import Creditor
from ..invoices import InvoiceStatus
from ..outreach import AttemptOutcome, OutreachPurpose, OutreachStatus
from ..patients import ConfidentialWish, Patient
from ..placements import PlacementStatus
from ..policy.governor import channel_usable, patient_zones
from ..store.base import AccountSnapshot, PlanFacts
from ..timekeeping import zone

__all__ = [
    "CHANNEL_CODES",
    "R_ASSIST",
    "R_BALANCE",
    "R_CEASE",
    "R_CTX",
    "R_DISPUTE",
    "R_DUE",
    "R_ID",
    "R_INSURER",
    "R_ISSUE",
    "R_OPEN",
    "R_PLACED",
    "R_PLAN",
    "R_RECENT",
    "R_SENT",
    "R_SMS_CHECKED",
    "R_USABLE",
    "AccountRows",
    "Context",
    "Contexts",
    "PlanRow",
    "micros",
    "rows_from_facts",
    "rows_from_snapshot",
]

#: A plan row (see the module docstring for its fields).
PlanRow = tuple[Any, ...]

(
    R_ID,
    R_CTX,
    R_OPEN,
    R_ISSUE,
    R_DUE,
    R_PLACED,
    R_BALANCE,
    R_DISPUTE,
    R_PLAN,
    R_INSURER,
    R_ASSIST,
    R_CEASE,
    R_USABLE,
    R_SMS_CHECKED,
    R_SENT,
    R_RECENT,
) = range(16)

#: Channel -> code; a channel's bit in masks is ``1 << code``.
CHANNEL_CODES: dict[Channel, int] = {
    Channel.LETTER: 0,
    Channel.EMAIL: 1,
    Channel.SMS: 2,
    Channel.PHONE: 3,
    Channel.PORTAL: 4,
}
_CODE_OF = {c.value: code for c, code in CHANNEL_CODES.items()}
_PHONE = CHANNEL_CODES[Channel.PHONE]
_COLLECTOR_ROLES = frozenset({"third_party_collector", "debt_buyer"})
_PURPOSES = {p.value: p for p in OutreachPurpose}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def micros(at: dt.datetime) -> int:
    """An aware instant as whole microseconds since the epoch (exact, unlike ``timestamp()``).

    >>> micros(dt.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=dt.UTC))
    1000005
    """
    return (at - _EPOCH) // _MICRO


@attrs.frozen
class Context:
    """What rows share: the pack, every zone the patient may be in (first: home), the creditor's role.

    :param pack_key: the policy pack key.
    :param zones: IANA zones as :func:`~carecollect.policy.governor.patient_zones` orders them.
    :param collector: the creditor is a third-party collector or debt buyer.
    """

    pack_key: str
    zones: tuple[str, ...]
    collector: bool


class Contexts:
    """A registry of :class:`Context` values; rows carry the index.

    >>> c = Contexts()
    >>> c.index("no", ("Europe/Oslo",), False), c.index("no", ("Europe/Oslo",), False), len(c)
    (0, 0, 1)
    """

    def __init__(self) -> None:
        self._index: dict[tuple[str, tuple[str, ...], bool], int] = {}
        self._items: list[Context] = []

    def index(self, pack_key: str, zones: tuple[str, ...], collector: bool) -> int:
        """The index of ``(pack_key, zones, collector)``, registering it on first sight."""
        key = (pack_key, zones, collector)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._items)
            self._items.append(Context(pack_key, zones, collector))
        return i

    def __getitem__(self, i: int) -> Context:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)


@attrs.frozen
class AccountRows:
    """One account's plan rows, or the word that the rich path must decide it.

    :param account_id: the account.
    :param creditor_id: its creditor.
    :param invoices: how many invoices it has (open or not).
    :param rows: one row per invoice, in the store's order (empty when ``rich``).
    :param rich: decide this account on its snapshot (see the module docstring).
    """

    account_id: str
    creditor_id: str
    invoices: int
    rows: tuple[PlanRow, ...]
    rich: bool


def _claim(status: str, submitted: str | None, issue: str) -> int:
    """``R_INSURER`` from a claim's status, filing day and the invoice's issue day."""
    if status == "pending":
        return dt.date.fromisoformat(submitted or issue).toordinal()
    if status == "appealed":
        return -dt.date.fromisoformat(submitted or issue).toordinal()
    return 0


def _day(at: dt.datetime, tz: dt.tzinfo) -> int:
    return at.astimezone(tz).date().toordinal()


def rows_from_facts(
    facts: PlanFacts,
    now: dt.datetime,
    contexts: Contexts,
    *,
    agency: bool = False,
    conversations: Mapping[str, Any] | None = None,
) -> list[AccountRows]:
    """The plan rows of one batch of store facts, at ``now``.

    :param facts: what :meth:`~carecollect.store.sqlite.SQLiteStore.iter_plan_facts` yielded.
    :param now: the run's instant (aware).
    :param contexts: the registry rows refer to.
    :param agency: accounts may be placed with an agency (an open account then needs the gate).
    :param conversations: contact-centre conversations by account id (such accounts are rich).
    :returns: one :class:`AccountRows` per account, in id order.
    """
    conversations = conversations or {}
    parse = dt.datetime.fromisoformat
    invoices: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in facts.invoices:
        invoices[r[1]].append(r)
    balances = {r[0]: (bool(r[1]), r[2]) for r in facts.balances}
    points: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in facts.contact_points:
        points[r[0]].append(r)
    steps: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in facts.steps:
        steps[r[0]].append(r)
    attempts: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in facts.attempts:
        attempts[r[0]].append(r)
    held = {r[0] for r in facts.holds}
    placements: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in facts.placements:
        placements[r[0]].append(r)
    answered = AttemptOutcome.ANSWERED.value
    no_connection = AttemptOutcome.NO_CONNECTION.value
    out: list[AccountRows] = []
    for acc in facts.accounts:
        aid, _pid, creditor_id, currency, pack_key, zones_text, conf, conf_channels, cease_at, role = acc
        invs = invoices.get(aid, [])
        acc_attempts = [a for a in attempts.get(aid, ()) if parse(a[3]) <= now]
        open_any = any(r[5] == "open" for r in invs)
        rich = (
            aid in held
            or aid in conversations
            or any(a[2] == "phone" and a[4] == answered for a in acc_attempts)
            or any(r[2] != currency for r in invs)
            or (
                agency
                and open_any
                and not any(p[1] == PlacementStatus.PLACED.value for p in placements.get(aid, ()))
            )
        )
        if rich or not invs:
            out.append(AccountRows(aid, creditor_id, len(invs), (), rich))
            continue
        pts = points.get(aid, [])
        home = zones_text.split()
        if not home:
            out.append(AccountRows(aid, creditor_id, len(invs), (), True))  # the rich path says why
            continue
        seen = dict.fromkeys(home)
        for p in pts:
            if p[5]:
                seen.setdefault(p[5], None)
        tz = zone(home[0])
        collector = role in _COLLECTOR_ROLES
        ctx = contexts.index(pack_key, tuple(seen), collector)
        usable = 0
        sms_checked = -1
        listed = set(conf_channels.split()) if conf == ConfidentialWish.ONLY_LISTED.value else None
        for p in pts:
            ch = p[1]
            consent, opted, verified, bounced = p[2], p[3], p[4], p[6]
            if ch == "sms":
                stamps = [parse(t) for t in (consent, verified) if t is not None]
                stamps = [t for t in stamps if t <= now]
                if stamps:
                    sms_checked = max(sms_checked, micros(max(stamps)))
            if listed is not None and ch not in listed:
                continue
            if opted is not None and parse(opted) <= now:
                continue
            if bounced is not None:
                b = parse(bounced)
                if b <= now and not (verified is not None and b < parse(verified) <= now):
                    continue
            if ch == "letter" or (consent is not None and parse(consent) <= now):
                usable |= 1 << _CODE_OF[ch]
        placed = 0
        if collector:
            for p in placements.get(aid, ()):
                if p[2] is not None:
                    placed = _day(parse(p[2]), tz)
                    break
            else:
                placed = min(dt.date.fromisoformat(r[3]).toordinal() for r in invs)
        sent: dict[str | None, list[tuple[dt.datetime, str, str]]] = defaultdict(list)
        for s in steps.get(aid, ()):
            sent[s[1]].append((parse(s[3]), s[4], s[2]))
        cease = cease_at is not None and parse(cease_at) <= now
        rows: list[PlanRow] = []
        for r in invs:
            iid = r[0]
            charged, ledger = balances.get(iid, (False, 0))
            balance = ledger if charged else r[8] - (r[9] or 0) - (r[10] or 0)
            history = tuple(
                (_PURPOSES[purpose], _day(at, tz)) for at, _sid, purpose in sorted(sent.get(iid, ()))
            )
            recent = tuple(
                sorted(
                    (_CODE_OF[a[2]], _day(parse(a[3]), tz))
                    for a in acc_attempts
                    if (a[1] is None or a[1] == iid) and (a[2] != "phone" or a[4] != no_connection)
                )
            )
            rows.append(
                (
                    iid,
                    ctx,
                    r[5] == "open",
                    dt.date.fromisoformat(r[3]).toordinal(),
                    dt.date.fromisoformat(r[4]).toordinal(),
                    placed,
                    balance,
                    False,
                    False,
                    _claim(r[6], r[7], r[3]),
                    False,
                    cease,
                    usable,
                    sms_checked,
                    history,
                    recent,
                )
            )
        out.append(AccountRows(aid, creditor_id, len(invs), tuple(rows), False))
    return out


def rows_from_snapshot(
    snap: AccountSnapshot,
    creditor: Creditor,
    now: dt.datetime,
    contexts: Contexts,
    *,
    agency: bool = False,
    conversations: Sequence[Any] = (),
) -> AccountRows:
    """The plan rows of one account's snapshot, at ``now`` (what :func:`rows_from_facts` gives for it).

    :param snap: the account's records.
    :param creditor: its creditor.
    :param now: the run's instant (aware).
    :param contexts: the registry rows refer to.
    :param agency: accounts may be placed with an agency.
    :param conversations: the account's contact-centre conversations.
    """
    acc = snap.account
    invs = snap.invoices
    attempts = [a for a in snap.attempts if a.at <= now]
    rich = (
        any(d.is_open for d in snap.disputes)
        or any(p.status.current for p in snap.plans)
        or any(a.status.pending for a in snap.applications)
        or bool(conversations)
        or any(a.is_conversation for a in attempts)
        or any(i.currency != acc.currency for i in invs)
        or (
            agency
            and any(i.status is InvoiceStatus.OPEN for i in invs)
            and not any(p.status is PlacementStatus.PLACED for p in snap.placements)
        )
    )
    patient: Patient = snap.patient
    if rich or not invs or not patient.time_zones:
        return AccountRows(acc.id, acc.creditor_id, len(invs), (), rich or bool(invs))
    tz = zone(patient.time_zones[0])
    collector = creditor.role.is_collector
    ctx = contexts.index(acc.jurisdiction, patient_zones(patient), collector)
    usable = 0
    for ch, code in CHANNEL_CODES.items():
        if channel_usable(patient, ch, now):
            usable |= 1 << code
    sms_checked = -1
    for p in patient.points(Channel.SMS):
        stamps = [t for t in (p.consent_at, p.verified_at) if t is not None and t <= now]
        if stamps:
            sms_checked = max(sms_checked, micros(max(stamps)))
    placed = 0
    if collector:
        for pl in snap.placements:
            if pl.placed_at is not None:
                placed = _day(pl.placed_at, tz)
                break
        else:
            placed = min(i.issue_date for i in invs).toordinal()
    charged = set(snap.ledger.invoice_ids())
    cease = patient.cease_requested_at is not None and patient.cease_requested_at <= now
    rows: list[PlanRow] = []
    for inv in invs:
        balance = (
            snap.ledger.invoice_balance(inv.id).minor_units
            if inv.id in charged
            else inv.patient_responsibility.minor_units
        )
        history = tuple(
            (s.purpose, _day(s.sent_at, tz))
            for s in sorted(
                (
                    s
                    for s in snap.steps
                    if s.invoice_id == inv.id
                    and s.status in (OutreachStatus.SENT, OutreachStatus.DELIVERED)
                    and s.sent_at is not None
                ),
                key=lambda s: (s.sent_at, s.id),
            )
            if s.sent_at is not None
        )
        recent = tuple(
            sorted(
                (CHANNEL_CODES[a.channel], _day(a.at, tz))
                for a in attempts
                if (a.invoice_id is None or a.invoice_id == inv.id)
                and (a.channel is not Channel.PHONE or a.counts_as_call)
            )
        )
        claim = inv.insurance
        rows.append(
            (
                inv.id,
                ctx,
                inv.status is InvoiceStatus.OPEN,
                inv.issue_date.toordinal(),
                inv.due_date.toordinal(),
                placed,
                balance,
                False,
                False,
                _claim(
                    claim.status.value,
                    claim.submitted_on.isoformat() if claim.submitted_on else None,
                    inv.issue_date.isoformat(),
                ),
                False,
                cease,
                usable,
                sms_checked,
                history,
                recent,
            )
        )
    return AccountRows(acc.id, acc.creditor_id, len(invs), tuple(rows), False)


def iter_rows(batches: Iterable[list[AccountRows]]) -> Iterable[PlanRow]:
    """Every plan row of some batches (for floors and tests)."""
    for batch in batches:
        for acc in batch:
            yield from acc.rows
