"""Floors the benchmark measures the product against: what no implementation of the dry run can beat.

Neither floor makes a decision the product uses; each exists only to put the
product's figures in proportion (``nox -s bench``):

* :func:`read_floor` streams the same plan rows the dry run reads (the store's
  facts, one query per table and batch, turned into rows) and decides nothing:
  the cost of reading.
* :func:`decision_floor` makes the dry run's decisions on plan rows already in
  memory with the cadence scan and the contact checks inlined, no library call
  and no object: the cost of deciding in bare Python. The benchmark checks its
  answers against :func:`carecollect.run.kernel.decide` before it times it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from ..run.kernel import CEASED, DUE, FROZEN, NOT_DUE, PAID, RunTables
from ..run.rows import AccountRows, Contexts, PlanRow, rows_from_facts
from ..store import SQLiteStore

__all__ = ["decision_floor", "read_floor", "store_rows"]

_BIG = 10**8


def store_rows(
    path: str, now: dt.datetime, contexts: Contexts, *, batch_size: int = 2000
) -> Iterator[AccountRows]:
    """Every account's plan rows from the store file at ``path``, at ``now`` (batches of accounts).

    :param path: the store's database file (opened read-only in effect: nothing is written).
    :param now: the run's instant.
    :param contexts: the registry rows refer to.
    :param batch_size: accounts per read.
    """
    with SQLiteStore(path) as store:
        for facts in store.iter_plan_facts(now=now, batch_size=batch_size):
            yield from rows_from_facts(facts, now, contexts)


def read_floor(path: str, now: dt.datetime) -> tuple[int, int]:
    """Stream the dry run's plan rows from ``path`` and decide nothing: ``(accounts, invoices)``."""
    accounts = invoices = 0
    for acc in store_rows(path, now, Contexts()):
        accounts += 1
        invoices += acc.invoices
    return accounts, invoices


def decision_floor(rows: Iterable[PlanRow], tables: RunTables) -> list[int]:
    """The dry run's decision codes for rows in memory, in bare Python (the scan and checks inlined).

    Assumed-receipt days outside the compiled table fall back to the sending day, and a sent
    step's purpose is matched by identity (rows in the benchmark's stores are fresh). The scan's
    answer is remembered by ``(context, issue, due, placed, history)`` as the kernel remembers it
    (unbounded here: the floor only ever sees rows in memory), so the floor stays below the kernel.

    :param rows: plan rows of accounts that are not rich.
    :param tables: the run's tables (read once per context).
    :returns: one decision code per row, as :func:`carecollect.run.kernel.decide` encodes them.
    """
    out: list[int] = []
    append = out.append
    views = tables.views()
    now_us = tables.now_us
    flat: list[tuple[Any, ...]] = []
    memo: dict[tuple[Any, ...], tuple[int, int]] = {}
    for r in rows:
        if not r[2]:
            append(0)
            continue
        if r[6] <= 0:
            append(PAID << 16)
            continue
        c = r[1]
        while c >= len(flat):
            if c >= len(views):
                views = tables.views()
            cp = views[len(flat)][0]
            flat.append(
                (
                    cp.anchor,
                    cp.start,
                    cp.end,
                    cp.requires,
                    cp.deadline_days,
                    cp.receipt_lag,
                    cp.receipt_base,
                    cp.receipt_table,
                    cp.gap,
                    cp.scan_end,
                    cp.purposes,
                    cp.ranks,
                    *views[len(flat)][1:],
                )
            )
        view = flat[c]
        (
            today,
            fd,
            fp,
            fi,
            fa,
            ins_p,
            ins_a,
            cease_ok,
            cease_mask,
            sms_ok,
            step_codes,
            recheck,
            qmask,
            qok,
            caps,
        ) = view[12:]
        claim = r[9]
        waiting = (claim > ins_p) if claim > 0 else (-claim > ins_a if claim < 0 else False)
        if (r[7] and fd) or (r[8] and fp) or (waiting and fi) or (r[10] and fa):
            append(FROZEN << 16)
            continue
        key = (c, r[3], r[4], r[5], r[14])
        known = memo.get(key)
        if known is not None:
            best, nxt = known
        else:
            best, nxt = memo[key] = _cadence(view, r)
        if best < 0:
            append(((nxt + 1) << 3 | NOT_DUE) << 16)
            continue
        cease = r[11]
        if cease and not cease_ok[best]:
            append((CEASED << 16) | ((best + 1) << 10))
            continue
        usable = r[12]
        planned = send = 0
        for code in step_codes[best]:
            bit = 1 << code
            if (code == 2 and not sms_ok) or (cease and not cease_mask & bit) or not usable & bit:
                continue
            planned |= bit
            if code == 2 and recheck >= 0 and not 0 <= now_us - r[13] <= recheck:
                continue
            if qmask & bit and not qok:
                continue
            cap = caps[code]
            if cap is not None and r[15]:
                lo = today - cap[1] + 1
                cnt = 0
                for ch, day in r[15]:
                    if ch == code and lo <= day <= today:
                        cnt += 1
                if cnt >= cap[0]:
                    continue
            send |= bit
        append(((((nxt + 1) << 3) | DUE) << 16) | ((best + 1) << 10) | (planned << 5) | send)
    return out


def _cadence(view: tuple[Any, ...], r: PlanRow) -> tuple[int, int]:
    """The cadence scan written out: ``(due step or -1, next day or -1)`` for one owed, unfrozen row."""
    (
        anchor,
        start_off,
        end_off,
        requires,
        ddays,
        rlag,
        rbase,
        rtable,
        gap,
        scan_end,
        purposes,
        ranks,
        today,
    ) = view[:13]
    last_idx = last_day = last_msg = -1
    if r[14]:
        seen: dict[object, list[int]] = {}
        for purpose, day in r[14]:
            seen.setdefault(purpose, []).append(day)
            if day > last_msg:
                last_msg = day
        for i in range(len(purposes)):
            days = seen.get(purposes[i], ())
            if len(days) >= ranks[i]:
                last_idx, last_day = i, days[ranks[i] - 1]
    issue, due, placed = r[3], r[4], r[5]
    best = -1
    nxt = _BIG
    for scan in (0, 1):
        gap_from = last_msg + gap if last_msg != -1 else -1
        found = -1
        nxt = _BIG
        for i in range(last_idx + 1, scan_end[last_idx + 1]):
            k = anchor[i]
            a = issue if k == 0 else (due if k == 1 else placed)
            if a <= 0:
                continue
            s = a + start_off[i]
            e = a + end_off[i]
            q = requires[i]
            if q != -1:
                if q != last_idx:
                    continue
                dd = ddays[q]
                if dd:
                    j = last_day - rbase
                    base = (rtable[j] if 0 <= j < len(rtable) else last_day) if rlag[q] else last_day
                    d = base + dd + 1
                else:
                    d = 0
                if d > s:
                    s = d
            if gap_from > s:
                s = gap_from
            if s >= e:
                continue
            if s <= today:
                if today < e:
                    found = i
            elif s < nxt:
                nxt = s
        if scan == 0:
            best = found
            if best == -1:
                break
            last_idx, last_day, last_msg = best, today, today
    if nxt >= _BIG:
        nxt = -1
    return best, nxt
