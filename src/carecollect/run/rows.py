"""Plan rows: one flat tuple per invoice with every fact the daily run's decisions read, at the run's instant.

The daily run decides most accounts without building a domain object: the
store hands over its facts at the run's instant (:class:`~carecollect.store.base.PlanFacts`,
one query per table and batch; which contact points are usable is worked out in
SQL), :func:`rows_from_facts` turns them into
plan rows, and :func:`carecollect.run.kernel.decide` makes the decisions on
them with the compiled cadence kernel. An account whose records need the
rich path (a conversation with the contact centre, an agency gate to check,
an invoice in another currency, a patient without a zone, a contact point
instant the store could not compare exactly) is marked
``rich`` and decided on its :class:`~carecollect.store.base.AccountSnapshot`
instead.

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
 7    ``R_DISPUTE``       an open dispute covers the invoice (or the whole account)
 8    ``R_PLAN``          a current (active or paused) plan covers the invoice
 9    ``R_INSURER``       the filing day of a claim the insurer has not decided (ordinal), negative
                          when appealed, 0 when no claim waits
10    ``R_ASSIST``        an assistance application of the account is pending
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from ..channels import Channel
from ..creditors import Creditor
from ..errors import StoreError
from ..invoices import InvoiceStatus
from ..outreach import AttemptOutcome, OutreachPurpose, OutreachStatus
from ..patients import Patient
from ..placements import PlacementStatus
from ..plans import InstalmentStatus, PlanStatus
from ..policy.governor import channel_usable, patient_zones
from ..store.base import CHANNEL_CODES, AccountSnapshot, PlanFacts
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
    :param nonprofit: the creditor is a nonprofit hospital (US: the 501(r) ECA notice is a step).
    :param creditor_id: the creditor whose own house rules (or pack) apply to ``pack_key``; empty
        when the installation's do (accounts of such creditors share their contexts).
    """

    pack_key: str
    zones: tuple[str, ...]
    collector: bool
    nonprofit: bool = False
    creditor_id: str = ""


class Contexts:
    """A registry of :class:`Context` values; rows carry the index.

    :param own_rules: ``(creditor_id, pack_key) -> bool``: the creditor has its own house rules
        for the pack (:meth:`RunSettings.own_rules <carecollect.run.settings.RunSettings.own_rules>`);
        only then does a context keep the creditor id. ``None``: every creditor runs on the
        installation's rules.

    >>> c = Contexts()
    >>> c.index("no", ("Europe/Oslo",), False), c.index("no", ("Europe/Oslo",), False), len(c)
    (0, 0, 1)
    >>> c = Contexts(lambda creditor, pack: creditor == "CR-B")
    >>> [c.index("no", ("Europe/Oslo",), False, creditor_id=x) for x in ("CR-A", "CR-B", "CR-C")]
    [0, 1, 0]
    >>> c[1].creditor_id
    'CR-B'
    """

    def __init__(self, own_rules: Callable[[str, str], bool] | None = None) -> None:
        self._own_rules = own_rules
        self._index: dict[tuple[str, tuple[str, ...], bool, bool, str], int] = {}
        self._items: list[Context] = []

    def index(
        self,
        pack_key: str,
        zones: tuple[str, ...],
        collector: bool,
        nonprofit: bool = False,
        *,
        creditor_id: str = "",
    ) -> int:
        """The index of ``(pack_key, zones, collector, nonprofit)`` and, when ``creditor_id`` has
        its own house rules for the pack, the creditor; registering it on first sight."""
        own = (
            creditor_id if creditor_id and self._own_rules and self._own_rules(creditor_id, pack_key) else ""
        )
        key = (pack_key, zones, collector, nonprofit, own)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._items)
            self._items.append(Context(pack_key, zones, collector, nonprofit, own))
        return i

    def __getitem__(self, i: int) -> Context:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)


class AccountRows(NamedTuple):
    """One account's plan rows, or the word that the rich path must decide it.

    A named tuple: the run makes one per account, and a tuple is made several times faster
    than a frozen class.

    :param account_id: the account.
    :param creditor_id: its creditor.
    :param invoices: how many invoices it has (open or not).
    :param rows: one row per invoice, in the store's order (empty when ``rich``).
    :param rich: decide this account on its snapshot (see the module docstring).
    :param plans: its active plans with their due instalments, as
        :func:`~carecollect.run.kernel.instalment_actions` reads them.
    :param mandated: ids of its plans with a mandate in force now.
    :param disputes: the invoice ids of its open disputes (``None``: the whole account).
    :param relief: an open dispute, a current plan or a pending assistance application: the
        counts come from the rows, but decisions with their reasons need the snapshot.
    """

    account_id: str
    creditor_id: str
    invoices: int
    rows: tuple[PlanRow, ...]
    rich: bool
    plans: tuple[tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]], ...] = ()
    mandated: tuple[str, ...] = ()
    disputes: tuple[str | None, ...] = ()
    relief: bool = False


def _claim(status: str, submitted: str | None, issue: str) -> int:
    """``R_INSURER`` from a claim's status, filing day and the invoice's issue day."""
    if status == "pending":
        return dt.date.fromisoformat(submitted or issue).toordinal()
    if status == "appealed":
        return -dt.date.fromisoformat(submitted or issue).toordinal()
    return 0


class _Ordinals(dict[str, int]):
    """ISO date text -> ordinal, each text parsed once (a miss parses; a hit is a plain look-up)."""

    def __missing__(self, text: str) -> int:
        value = self[text] = dt.date.fromisoformat(text).toordinal()
        return value


#: Claim statuses whose filing day goes into ``R_INSURER``.
_WAITING = frozenset({"pending", "appealed"})


def _day(at: dt.datetime, tz: dt.tzinfo) -> int:
    return at.astimezone(tz).date().toordinal()


def _group(rows: Sequence[tuple[Any, ...]], key: int = 0) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        k = r[key]
        bucket = out.get(k)
        if bucket is None:
            out[k] = [r]
        else:
            bucket.append(r)
    return out


class _Clock:
    """``now`` and comparisons of the store's ISO instants with it, on the text where that is exact.

    The store writes instants in UTC as ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``; two such texts
    compare as their instants do, so most checks need no parsing. Anything else is parsed.
    """

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.iso = now.astimezone(dt.UTC).isoformat()
        self.utc = self.iso.endswith("+00:00")

    def passed(self, text: str) -> bool:
        """The instant ``text`` is at or before now."""
        if self.utc and text.endswith("+00:00"):
            return text <= self.iso
        return dt.datetime.fromisoformat(text) <= self.now


def rows_from_facts(
    facts: PlanFacts,
    now: dt.datetime,
    contexts: Contexts,
    *,
    agency: bool = False,
    conversations: Mapping[str, Any] | None = None,
) -> list[AccountRows]:
    """The plan rows of one batch of store facts, at ``now``.

    :param facts: what :meth:`~carecollect.store.sqlite.SQLiteStore.iter_plan_facts` yielded for ``now``.
    :param now: the run's instant (aware), the one the facts were read for.
    :param contexts: the registry rows refer to.
    :param agency: accounts may be placed with an agency (an open account then needs the gate).
    :param conversations: contact-centre conversations by account id (such accounts are rich).
    :returns: one :class:`AccountRows` per account, in id order.
    """
    conversations = conversations or {}
    clock = _Clock(now)
    passed = clock.passed
    ctx_of: dict[tuple[Any, ...], int] = {}
    parse = dt.datetime.fromisoformat
    invoices = facts.invoices  # in account order, as the accounts: walked alongside them
    n_invoices = len(invoices)
    j = 0
    steps = _group(facts.steps)
    attempts = _group(facts.attempts)
    placements = _group(facts.placements)
    disputes = _group(facts.disputes)
    plans = _group(facts.plans)
    instalments = _group(facts.instalments, 1)
    mandates = _group(facts.mandates)
    applying = {r[0] for r in facts.applications}
    # accounts with any sparse fact (most accounts have none: one set look-up instead of seven)
    noted = set(applying)
    for table in (facts.steps, facts.attempts, facts.placements, facts.disputes, facts.plans, facts.mandates):
        noted.update(r[0] for r in table)
    ords = _Ordinals()
    stamp_us: dict[str, int] = {}
    answered = AttemptOutcome.ANSWERED.value
    no_connection = AttemptOutcome.NO_CONNECTION.value
    placed_status = PlacementStatus.PLACED.value
    out: list[AccountRows] = []
    append = out.append
    for acc in facts.accounts:
        (
            aid,
            _pid,
            creditor_id,
            currency,
            pack_key,
            zones_text,
            cease_at,
            role,
            nonprofit,
            usable,
            sms_text,
            point_zones,
            exact,
        ) = acc
        start = j
        while j < n_invoices and invoices[j][1] == aid:
            j += 1
        invs = invoices[start:j]
        if not invs:
            append(AccountRows(aid, creditor_id, 0, (), aid in conversations))
            continue
        sparse = aid in noted
        acc_attempts = attempts.get(aid) if sparse else None
        if acc_attempts is not None:
            acc_attempts = [a for a in acc_attempts if passed(a[3])]
        rich = aid in conversations or exact == 0
        if not rich:
            for r in invs:
                if r[2] != currency:
                    rich = True
            for a in acc_attempts or ():
                if a[2] == "phone" and a[4] == answered:
                    rich = True
            if agency and not rich and any(r[5] == "open" for r in invs):
                rich = not any(p[1] == placed_status for p in placements.get(aid, ()))
        if rich or not zones_text or zones_text.isspace():  # no zone: the rich path says why
            append(AccountRows(aid, creditor_id, len(invs), (), True))
            continue
        ctx_key = (pack_key, zones_text, point_zones, role, nonprofit, creditor_id)
        ctx = ctx_of.get(ctx_key)
        if ctx is None:
            zones = tuple(zones_text.split())
            for z in point_zones.split() if point_zones else ():
                if z not in zones:
                    zones += (z,)
            ctx = ctx_of[ctx_key] = contexts.index(
                pack_key, zones, role in _COLLECTOR_ROLES, bool(nonprofit), creditor_id=creditor_id
            )
        collector = role in _COLLECTOR_ROLES
        usable = usable or 0
        sms_checked = -1
        if sms_text is not None:
            sms_checked = stamp_us.get(sms_text, -1)
            if sms_checked < 0:
                sms_checked = stamp_us[sms_text] = micros(parse(sms_text))
        tz = None
        placed = 0
        if collector:
            tz = zone(zones_text.split()[0])
            for p in placements.get(aid, ()):
                if p[2] is not None:
                    placed = _day(parse(p[2]), tz)
                    break
            else:
                placed = min(ords[r[3]] for r in invs)
        cease = cease_at is not None and passed(cease_at)
        sent: dict[str | None, list[tuple[dt.datetime, str, str]]] | None = None
        acc_steps = steps.get(aid) if sparse else None
        if acc_steps:
            sent = {}
            for st in acc_steps:
                sent.setdefault(st[1], []).append((parse(st[3]), st[4], st[2]))
        counted: list[tuple[str | None, int, int]] | None = None
        if acc_attempts:
            tz = tz or zone(zones_text.split()[0])
            counted = [
                (a[1], _CODE_OF[a[2]], _day(parse(a[3]), tz))
                for a in acc_attempts
                if a[2] != "phone" or a[4] != no_connection
            ]
        open_disputes = disputes.get(aid) if sparse else None
        acc_disputes = tuple(d[1] for d in open_disputes) if open_disputes else ()
        acc_plans = plans.get(aid, ()) if sparse else ()
        assisting = sparse and aid in applying
        rows: list[PlanRow] = []
        for r in invs:
            iid = r[0]
            history: tuple[tuple[OutreachPurpose, int], ...] = ()
            if sent is not None:
                mine = sent.get(iid)
                if mine:
                    tz = tz or zone(zones_text.split()[0])
                    history = tuple((_PURPOSES[purpose], _day(at, tz)) for at, _sid, purpose in sorted(mine))
            recent: tuple[tuple[int, int], ...] = ()
            if counted:
                recent = tuple(
                    sorted((code, day) for inv_id, code, day in counted if inv_id is None or inv_id == iid)
                )
            rows.append(
                (
                    iid,
                    ctx,
                    r[5] == "open",
                    ords[r[3]],
                    ords[r[4]],
                    placed,
                    r[8],
                    any(d is None or d == iid for d in acc_disputes) if acc_disputes else False,
                    any(not pl[2] or iid in pl[2].split() for pl in acc_plans) if acc_plans else False,
                    _claim(r[6], r[7], r[3]) if r[6] in _WAITING else 0,
                    assisting,
                    cease,
                    usable,
                    sms_checked,
                    history,
                    recent,
                )
            )
        active = (
            ()
            if not acc_plans
            else tuple(
                (
                    pl[1],
                    tuple(pl[2].split()),
                    tuple(
                        (i[2], dt.date.fromisoformat(i[3]).toordinal()) for i in instalments.get(pl[1], ())
                    ),
                )
                for pl in acc_plans
                if pl[3] == "active"
            )
        )
        mandated = (
            tuple(m[1] for m in mandates.get(aid, ()) if m[2] is None or not passed(m[2])) if sparse else ()
        )
        append(
            AccountRows(
                aid,
                creditor_id,
                len(invs),
                tuple(rows),
                False,
                active,
                mandated,
                acc_disputes,
                bool(acc_disputes or acc_plans or assisting),
            )
        )
    if j != n_invoices:  # an invoice whose account is not in the batch, or out of order
        raise StoreError(f"plan facts: invoice {invoices[j][0]} is not in its account's place in the batch")
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
        bool(conversations)
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
    ctx = contexts.index(
        acc.jurisdiction, patient_zones(patient), collector, creditor.nonprofit, creditor_id=acc.creditor_id
    )
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
    disputes = tuple(d.invoice_id for d in snap.disputes if d.is_open)
    current = [p for p in snap.plans if p.status.current]
    assisting = any(a.status.pending for a in snap.applications)
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
                any(d is None or d == inv.id for d in disputes),
                any(not p.invoice_ids or inv.id in p.invoice_ids for p in current),
                _claim(
                    claim.status.value,
                    claim.submitted_on.isoformat() if claim.submitted_on else None,
                    inv.issue_date.isoformat(),
                ),
                assisting,
                cease,
                usable,
                sms_checked,
                history,
                recent,
            )
        )
    active = tuple(
        (
            p.id,
            tuple(p.invoice_ids),
            tuple(
                (i.number, i.due_date.toordinal()) for i in p.instalments if i.status is InstalmentStatus.DUE
            ),
        )
        for p in snap.plans
        if p.status is PlanStatus.ACTIVE
    )
    mandated = tuple(m.plan_id for m in snap.mandates if m.revoked_at is None or m.revoked_at > now)
    return AccountRows(
        acc.id,
        acc.creditor_id,
        len(invs),
        tuple(rows),
        False,
        active,
        mandated,
        disputes,
        bool(disputes or current or assisting),
    )


def iter_rows(batches: Iterable[list[AccountRows]]) -> Iterable[PlanRow]:
    """Every plan row of some batches (for floors and tests)."""
    for batch in batches:
        for acc in batch:
            yield from acc.rows
