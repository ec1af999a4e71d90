"""Plan rows: one flat tuple per invoice, with every fact the daily run's decisions read.

A plan row is a plain tuple (no objects but ints, bools and one string), so a
million of them plan in seconds. Its fields, by index (the ``R_*`` constants):

====  =================  ==========================================================================
 0    ``R_ID``           invoice id
 1    ``R_CTX``          index of the row's :class:`Context` (pack, zones, collector) in a :class:`Contexts`
 2    ``R_OPEN``         the invoice is open
 3    ``R_ISSUE``        issue date (ordinal)
 4    ``R_DUE``          due date (ordinal)
 5    ``R_PLACED``       placement date (ordinal; 0: not placed)
 6    ``R_BALANCE``      open balance (minor units, from the ledger)
 7    ``R_DISPUTE``      an open dispute covers the invoice (or the whole account)
 8    ``R_PLAN``         a current payment plan (active or paused) covers the invoice
 9    ``R_INSURER``      the claim the insurer has not decided: its filing day (ordinal; the issue
                         date when not recorded), positive when pending, negative when appealed;
                         0: no claim waiting. The run compares it with the pack's
                         ``insurer.pending_wait_days`` / ``insurer.appeal_wait_days``
                         (:class:`~carecollect.bench.planning.RunTables`), so a claim pending
                         beyond the wait no longer holds the invoice
10    ``R_ASSIST``       a financial-assistance application is under review
11    ``R_CEASE``        when the patient asked us to stop (epoch seconds; -1: never)
12    ``R_CONF``         channel bits the patient allows (confidential wish; 31: all)
13-22 ``R_POINTS``       per channel code ``c`` (letter, e-mail, SMS, phone, portal): the contact point
                         is usable from ``row[13 + 2c]`` until ``row[14 + 2c]`` (epoch seconds)
23    ``R_SMS_CHECKED``  latest consent or number check of the SMS point (epoch seconds; -1: none)
24    ``R_LAST_IDX``     index of the latest cadence step sent (-1: none)
25    ``R_LAST_DAY``     the day it was sent (ordinal)
26    ``R_LAST_MSG``     the day of the latest message on the invoice (ordinal; -1: none)
27    ``R_RECENT``       recent counted contacts ``((channel code, day ordinal), ...)`` for the caps
====  =================  ==========================================================================

Two producers give the same rows: :func:`rows_from_batch` reads a generator
batch (:class:`~carecollect.store.base.PortfolioRows`) in memory, and
:func:`iter_store_rows` streams them from a SQLite store file in batches with
one aggregated query (balance, dispute, plan and contact points in SQL).

Simplifications, all exact for the synthetic portfolio: one contact point per
channel is read (the first not opted out, else the latest opted out);
outreach history and contact attempts are not read (the generator writes
none, so ``R_LAST_*`` are -1 and ``R_RECENT`` empty); placement dates are not
read (its creditors are providers, not collectors).

>>> import datetime as dt
>>> from carecollect.portfolio import generate_rows
>>> contexts = Contexts()
>>> batch = next(generate_rows(5, seed=3, as_of=dt.date(2026, 3, 2)))
>>> rows = rows_from_batch(batch, contexts)
>>> len(rows), rows[0][R_ID], contexts[rows[0][R_CTX]].pack_key in ("us", "no", "de", "bg")
(5, 'I00000001-0', True)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ..channels import Channel
from ..store.base import PortfolioRows

__all__ = [
    "CHANNEL_CODES",
    "NEVER",
    "R_ASSIST",
    "R_BALANCE",
    "R_CEASE",
    "R_CONF",
    "R_CTX",
    "R_DISPUTE",
    "R_DUE",
    "R_ID",
    "R_INSURER",
    "R_ISSUE",
    "R_LAST_DAY",
    "R_LAST_IDX",
    "R_LAST_MSG",
    "R_OPEN",
    "R_PLACED",
    "R_PLAN",
    "R_POINTS",
    "R_RECENT",
    "R_SMS_CHECKED",
    "Context",
    "Contexts",
    "PlanRow",
    "iter_store_rows",
    "rows_from_batch",
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
    R_CONF,
) = range(13)
R_POINTS = 13
R_SMS_CHECKED, R_LAST_IDX, R_LAST_DAY, R_LAST_MSG, R_RECENT = range(23, 28)

#: Channel -> code; a channel's bit in masks is ``1 << code``.
CHANNEL_CODES: dict[Channel, int] = {
    Channel.LETTER: 0,
    Channel.EMAIL: 1,
    Channel.SMS: 2,
    Channel.PHONE: 3,
    Channel.PORTAL: 4,
}
_CODE_OF = {c.value: code for c, code in CHANNEL_CODES.items()}
ALL_CHANNELS = 31

#: "Never" as epoch seconds (an opt-out that never came, consent never given).
NEVER = 2**62


@attrs.frozen
class Context:
    """What rows share: the pack, every zone the patient may be in (first: home), the creditor's role and kind.

    :param pack_key: the policy pack key.
    :param zones: IANA zones, the patient's own first (as
        :func:`~carecollect.policy.governor.patient_zones` orders them).
    :param collector: the creditor is a third-party collector or debt buyer.
    :param nonprofit: the creditor is a nonprofit hospital (US: the 501(r) ECA notice is a step).
    """

    pack_key: str
    zones: tuple[str, ...]
    collector: bool
    nonprofit: bool = False


class Contexts:
    """A registry of :class:`Context` values; rows carry the index.

    >>> c = Contexts()
    >>> c.index("no", ("Europe/Oslo",), False), c.index("no", ("Europe/Oslo",), False), len(c)
    (0, 0, 1)
    """

    def __init__(self) -> None:
        self._index: dict[tuple[str, tuple[str, ...], bool, bool], int] = {}
        self._items: list[Context] = []

    def index(self, pack_key: str, zones: tuple[str, ...], collector: bool, nonprofit: bool = False) -> int:
        """The index of ``(pack_key, zones, collector, nonprofit)``, registering it on first sight.

        :param pack_key: pack key.
        :param zones: the patient's zones.
        :param collector: collector role.
        :param nonprofit: a nonprofit hospital.
        :returns: a small int.
        """
        key = (pack_key, zones, collector, nonprofit)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._items)
            self._items.append(Context(pack_key, zones, collector, nonprofit))
        return i

    def __getitem__(self, i: int) -> Context:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)


_COLLECTOR_ROLES = frozenset({"third_party_collector", "debt_buyer"})
_WAITING = frozenset({"pending", "appealed"})


def _epoch(text: str | None, default: int) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) if text else default


def _points(points: Sequence[tuple[str, str | None, str | None, str | None]]) -> tuple[int, ...]:
    """Per channel (from, until) epoch seconds, then the SMS check stamp; from ``(channel, consent, opt, verified)``."""
    chosen: dict[int, tuple[str, str | None, str | None, str | None]] = {}
    for p in points:
        code = _CODE_OF[p[0]]
        old = chosen.get(code)
        if old is None or (old[2] is not None and (p[2] is None or p[2] > old[2])):
            chosen[code] = p
    out: list[int] = []
    for code in range(5):
        point = chosen.get(code)
        if point is None:
            out += (NEVER, NEVER)
        else:
            since = 0 if code == 0 else _epoch(point[1], NEVER)
            out += (since, _epoch(point[2], NEVER))
    sms = chosen.get(2)
    checked = -1
    if sms is not None:
        stamps = [_epoch(t, -1) for t in (sms[1], sms[3]) if t]
        checked = max(stamps, default=-1)
    out.append(checked)
    return tuple(out)


def _conf(kind: str, channels: str | None) -> int:
    if kind != "only_listed":
        return ALL_CHANNELS
    mask = 0
    for name in (channels or "").split():
        mask |= 1 << _CODE_OF[name]
    return mask


def _zones(home: str, points: Sequence[str | None]) -> tuple[str, ...]:
    seen = dict.fromkeys(home.split())
    for z in points:
        if z:
            seen.setdefault(z, None)
    return tuple(seen)


_NO_HISTORY = (-1, -1, -1, ())


def _claim(status: str, submitted: str | None, issue: str) -> int:
    """``R_INSURER``: the filing day of a claim still waiting (negative when appealed), else 0.

    >>> _claim("pending", "2026-01-05", "2026-01-07") == dt.date(2026, 1, 5).toordinal()
    True
    >>> _claim("appealed", None, "2026-01-07") == -dt.date(2026, 1, 7).toordinal(), _claim("denied", None, "2026-01-07")
    (True, 0)
    """
    if status == "pending":
        return dt.date.fromisoformat(submitted or issue).toordinal()
    if status == "appealed":
        return -dt.date.fromisoformat(submitted or issue).toordinal()
    return 0


def rows_from_batch(
    batch: PortfolioRows, contexts: Contexts, roles: dict[str, tuple[str, bool]] | None = None
) -> list[PlanRow]:
    """Plan rows for the invoices of one generator batch (column order of :mod:`carecollect.store.codec`).

    :param batch: a batch from :func:`~carecollect.portfolio.generate_rows`.
    :param contexts: the registry to put contexts in.
    :param roles: creditor id -> (role value, nonprofit), carried across batches (filled from
        ``batch.creditors``).
    :returns: one row per invoice, in batch order.
    """
    roles = {} if roles is None else roles
    for c in batch.creditors:
        roles[c[0]] = (c[2], bool(c[4]))
    patients = {p[0]: p for p in batch.patients}
    points: dict[str, list[tuple[str, str | None, str | None, str | None]]] = {}
    point_zones: dict[str, list[str | None]] = {}
    for cp in batch.contact_points:
        if not _deliverable(cp[8], cp[6]):
            continue  # a bounced point counts as absent, as in the daily run
        points.setdefault(cp[0], []).append((cp[2], cp[4], cp[5], cp[6]))
        point_zones.setdefault(cp[0], []).append(cp[7])
    accounts = {a[0]: a for a in batch.accounts}
    balance: dict[str, int] = {}
    for e in batch.ledger_entries:
        if e[6] is not None:
            sign = 1 if e[2] in ("charge", "refund") else -1
            balance[e[6]] = balance.get(e[6], 0) + sign * e[3]
    plan_current: set[str] = set()
    for pl in batch.plans:
        if pl[6] in ("active", "paused"):
            plan_current.update(pl[2].split())
    disputed: set[str] = set()
    disputed_accounts: set[str] = set()
    for d in batch.disputes:
        if d[5] == "open":
            (disputed.add(d[2]) if d[2] else disputed_accounts.add(d[1]))
    fromiso = dt.date.fromisoformat
    per_patient: dict[str, tuple[int, int, int, tuple[int, ...]]] = {}
    out: list[PlanRow] = []
    for inv in batch.invoices:
        iid, aid = inv[0], inv[1]
        acc = accounts[aid]
        pid = acc[1]
        facts = per_patient.get(pid)
        if facts is None:
            p = patients[pid]
            role, nonprofit = roles.get(acc[2], ("provider", False))
            ctx = contexts.index(
                acc[4], _zones(p[2], point_zones.get(pid, ())), role in _COLLECTOR_ROLES, nonprofit
            )
            facts = per_patient[pid] = (
                ctx,
                _epoch(p[8], -1),
                _conf(p[6], p[7]),
                _points(points.get(pid, ())),
            )
        ctx, cease, conf, pts = facts
        out.append(
            (
                iid,
                ctx,
                inv[6] == "open",
                fromiso(inv[3]).toordinal(),
                fromiso(inv[4]).toordinal(),
                0,
                balance.get(iid, 0),
                iid in disputed or aid in disputed_accounts,
                iid in plan_current,
                _claim(inv[9], inv[12], inv[3]),
                False,
                cease,
                conf,
                *pts,
                *_NO_HISTORY,
            )
        )
    return out


_STORE_SQL = """
    SELECT i.id, a.jurisdiction, p.time_zones, cr.role, i.status, i.issue_date, i.due_date,
           (SELECT COALESCE(SUM(CASE WHEN e.kind IN ('charge', 'refund') THEN e.amount_minor
                                     ELSE -e.amount_minor END), 0)
              FROM ledger_entries e WHERE e.invoice_id = i.id),
           EXISTS (SELECT 1 FROM disputes d WHERE d.account_id = i.account_id AND d.status = 'open'
                   AND (d.invoice_id IS NULL OR d.invoice_id = i.id)),
           EXISTS (SELECT 1 FROM plans pl WHERE pl.account_id = i.account_id
                   AND pl.status IN ('active', 'paused')
                   AND (' ' || pl.invoice_ids || ' ') LIKE ('% ' || i.id || ' %')),
           i.claim_status, p.cease_requested_at, p.confidential, p.confidential_channels, p.id,
           i.claim_submitted_on, cr.nonprofit
      FROM invoices i JOIN accounts a ON a.id = i.account_id JOIN patients p ON p.id = a.patient_id
      JOIN creditors cr ON cr.id = a.creditor_id
     WHERE i.id > ? ORDER BY i.id LIMIT ?"""

_POINTS_SQL = """
    SELECT patient_id, channel, consent_at, opted_out_at, verified_at, time_zone FROM contact_points
     WHERE patient_id IN (SELECT value FROM json_each(?)) {deliverable}ORDER BY patient_id, position"""
#: Schema 6 and later: a point a bounce marked (and no later check cleared) counts as absent.
_DELIVERABLE_SQL = "AND (undeliverable_at IS NULL OR verified_at > undeliverable_at) "


def _deliverable(undeliverable_at: str | None, verified_at: str | None) -> bool:
    """A stored point is usable unless a bounce marked it and no later check cleared it.

    The bench plans at one instant after every mark it could hold (the generator makes none).
    """
    if undeliverable_at is None:
        return True
    return verified_at is not None and dt.datetime.fromisoformat(verified_at) > dt.datetime.fromisoformat(
        undeliverable_at
    )


def iter_store_rows(path: str, contexts: Contexts, *, batch_size: int = 5000) -> Iterator[list[PlanRow]]:
    """Stream plan rows from a SQLite store file, ``batch_size`` invoices per read (memory stays flat).

    Opens its own read-only connection (the store's schema, read with two
    queries per batch: invoices with their balance, dispute and plan flags
    aggregated in SQL, then the batch's contact points).

    :param path: the store's database file.
    :param contexts: the registry to put contexts in.
    :param batch_size: invoices per batch.
    :returns: an iterator of row lists, in invoice id order.
    """
    import json

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {r[1] for r in db.execute("PRAGMA table_info(contact_points)")}
        points_sql = _POINTS_SQL.format(deliverable=_DELIVERABLE_SQL if "undeliverable_at" in columns else "")
        fromiso = dt.date.fromisoformat
        ords: dict[str, int] = {}
        last = ""
        while True:
            batch = db.execute(_STORE_SQL, (last, batch_size)).fetchall()
            if not batch:
                return
            pids = sorted({r[14] for r in batch})
            points: dict[str, list[tuple[str, str | None, str | None, str | None]]] = {}
            pzones: dict[str, list[str | None]] = {}
            for pid, ch, consent, opt, verified, tz in db.execute(points_sql, (json.dumps(pids),)):
                points.setdefault(pid, []).append((ch, consent, opt, verified))
                pzones.setdefault(pid, []).append(tz)
            per_patient: dict[str, tuple[int, int, int, tuple[int, ...]]] = {}
            out: list[PlanRow] = []
            for r in batch:
                pid = r[14]
                facts = per_patient.get(pid)
                if facts is None:
                    ctx = contexts.index(
                        r[1], _zones(r[2], pzones.get(pid, ())), r[3] in _COLLECTOR_ROLES, bool(r[16])
                    )
                    facts = per_patient[pid] = (
                        ctx,
                        _epoch(r[11], -1),
                        _conf(r[12], r[13]),
                        _points(points.get(pid, ())),
                    )
                issue = ords.get(r[5])
                if issue is None:
                    issue = ords[r[5]] = fromiso(r[5]).toordinal()
                due = ords.get(r[6])
                if due is None:
                    due = ords[r[6]] = fromiso(r[6]).toordinal()
                out.append(
                    (
                        r[0],
                        facts[0],
                        r[4] == "open",
                        issue,
                        due,
                        0,
                        r[7],
                        bool(r[8]),
                        bool(r[9]),
                        _claim(r[10], r[15], r[5]) if r[10] in _WAITING else 0,
                        False,
                        facts[1],
                        facts[2],
                        *facts[3],
                        *_NO_HISTORY,
                    )
                )
            yield out
            last = batch[-1][0]
    finally:
        db.close()
