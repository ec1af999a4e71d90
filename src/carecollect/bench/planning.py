"""Every decision of the daily run's plan on plan rows: the fast path, a bare-Python floor, and the rich reference.

All three answer the same question per invoice at the run's instant ``now``:
which cadence step is due (if any), on which channels the patient's wishes
allow it (the planned channels), on which of those the contact governor lets
it go out now (the send channels), and the day the next step falls. The
answer is one int, a *decision code* (:func:`encode`), so that the three can
be compared exactly and a million answers stay small.

* :func:`plan_fast` is the library's fast path: per invoice, the freeze flags
  and the pack's freeze rules decide ``blocked``; the cadence kernel
  :func:`~carecollect.policy.cadence.plan_invoice` picks the step; for a due
  step each channel goes through the checks of
  :func:`~carecollect.policy.cadence.due_steps` (SMS allowed, stop request,
  consent and opt-out, confidential wish) and of
  :func:`~carecollect.policy.governor.may_contact` (SMS consent recheck,
  quiet hours in every zone of the patient, caps). Everything that depends
  only on the pack, the patient's zones and ``now`` is compiled once per
  run in a :class:`RunTables` (today's date per zone, whether ``now`` is
  inside the quiet hours in every zone, the pack's rules as ints).
* :func:`plan_floor` makes the same decisions on the same tuples with the
  cadence scan inlined and no library call: the bare-Python floor.
* :func:`plan_rich` asks the rich layer (``due_steps`` and ``may_contact`` on
  domain objects read from a store): the reference the other two must equal.

>>> encode(2, 0b11, 0b01, 739680) == (739681 << 16) | (3 << 10) | (0b11 << 5) | 0b01
True
>>> decode(encode(-1, 0, 0, -1))
(-1, 0, 0, -1)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from ..channels import Channel
from ..creditors import Creditor
from ..invoices import InvoiceStatus
from ..outreach import OutreachStatus
from ..policy.cadence import NONE, CompiledPack, InvoiceContext, compile_pack, due_steps, plan_invoice
from ..policy.governor import ContactHistory, Debt, may_contact, quiet_hours_ok
from ..policy.packs import PolicyPack, get_pack
from ..relief.insurer import billable_to_patient
from ..store.base import AccountSnapshot
from ..timekeeping import require_aware, zone
from .rows import CHANNEL_CODES, Contexts, PlanRow

__all__ = ["RunTables", "decode", "encode", "plan_fast", "plan_floor", "plan_rich"]

_CHANNEL_OF = {code: ch for ch, code in CHANNEL_CODES.items()}
_SMS, _PHONE = CHANNEL_CODES[Channel.SMS], CHANNEL_CODES[Channel.PHONE]
_BIG = 10**8


def encode(idx: int, planned: int, send: int, nxt: int) -> int:
    """One decision as an int: step index (-1: none), planned and send channel bits, next day (-1: none).

    :param idx: the due step's index in the compiled pack, or -1.
    :param planned: bits of the channels the patient's wishes allow.
    :param send: bits of the channels the governor lets go out now.
    :param nxt: the ordinal of the day the next step falls, or -1.
    """
    return ((nxt + 1) << 16) | ((idx + 1) << 10) | (planned << 5) | send


def decode(code: int) -> tuple[int, int, int, int]:
    """The inverse of :func:`encode`: ``(idx, planned, send, nxt)``.

    :param code: a decision code.
    """
    return ((code >> 10) & 63) - 1, (code >> 5) & 31, code & 31, (code >> 16) - 1


class RunTables:
    """Per-run tables, one tuple per :class:`~carecollect.bench.rows.Context`, built on first use.

    A context's view holds the compiled pack and today's ordinal in the
    patient's home zone, the four freeze rules, the latest filing days of a
    pending and of an appealed claim that still hold an invoice (the pack's
    insurer waits), which steps may follow a stop
    request and on which channels, whether SMS is used, each step's channel
    codes, the SMS consent-recheck window (-1: not applied), the channels
    that keep quiet hours and whether ``now`` is inside them in every zone,
    and the caps per channel code.

    :param contexts: the contexts rows refer to.
    :param now: the run's instant (aware).
    :param packs: packs by key (default: :func:`~carecollect.policy.packs.get_pack`).
    """

    def __init__(
        self, contexts: Contexts, now: dt.datetime, packs: dict[str, PolicyPack] | None = None
    ) -> None:
        require_aware(now, "RunTables", "now")
        self.contexts = contexts
        self.now = now
        self.now_s = int(now.timestamp())
        self.packs: dict[str, PolicyPack] = dict(packs or {})
        self._views: list[tuple[Any, ...]] = []
        self._floor: list[tuple[Any, ...]] = []

    def pack(self, key: str) -> PolicyPack:
        """The pack for ``key``."""
        if key not in self.packs:
            self.packs[key] = get_pack(key)
        return self.packs[key]

    def views(self) -> list[tuple[Any, ...]]:
        """The fast path's view per context index (extended as contexts are registered)."""
        while len(self._views) < len(self.contexts):
            self._views.append(self._view(len(self._views)))
        return self._views

    def floor_tables(self) -> list[tuple[Any, ...]]:
        """The floor's plain tables per context index: the compiled pack unpacked into tuples of ints."""
        views = self.views()
        while len(self._floor) < len(views):
            v = views[len(self._floor)]
            cp: CompiledPack = v[0]
            self._floor.append(
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
                    len(cp.anchor),
                    *v[1:],
                    cp.scan_end,
                )
            )
        return self._floor

    @staticmethod
    def _insurer_cutoffs(pack: PolicyPack, day: dt.date) -> tuple[int, int]:
        """The latest filing days (pending, appealed) whose claim still holds the invoice on ``day``.

        A claim filed on ``f`` holds while ``today < f + wait`` (:func:`~carecollect.relief.insurer.billable_to_patient`),
        that is while ``f > today - wait``. ``day`` is the run's date in the patient's first zone,
        as the daily run reads it for the insurer (:func:`~carecollect.relief.pauses.relief_flags`
        with ``now`` in that zone). A pack without the wait rules holds for ever.
        """
        if "insurer.pending_wait_days" not in pack.rules:
            return -_BIG, -_BIG
        today = day.toordinal()
        return (
            today - int(pack.value("insurer.pending_wait_days", on=day)),
            today - int(pack.value("insurer.appeal_wait_days", on=day)),
        )

    def _view(self, i: int) -> tuple[Any, ...]:
        ctx = self.contexts[i]
        pack = self.pack(ctx.pack_key)
        now = self.now
        today = now.astimezone(zone(ctx.zones[0])).date()
        cp = compile_pack(pack, on=today, collector=ctx.collector, nonprofit=ctx.nonprofit)

        def val(rule_id: str) -> Any:
            return pack.value(rule_id, on=today)

        cease_purposes = val("cease.allowed_purposes")
        cease_mask = sum(1 << CHANNEL_CODES[Channel(c)] for c in val("cease.allowed_channels"))
        recheck = -1
        if ctx.collector or val("sms.recheck_for_all_creditors"):
            recheck = int(val("sms.consent_recheck_days")) * 86400
        quiet_mask = sum(1 << CHANNEL_CODES[Channel(c)] for c in val("quiet_hours.channels"))
        quiet_ok = quiet_hours_ok(now, ctx.zones, val("quiet_hours.start"), val("quiet_hours.end"))
        caps: list[tuple[int, int] | None] = [None] * 5
        if ctx.collector or val("calls.cap_for_all_creditors"):
            caps[_PHONE] = (int(val("calls.max_per_7_days")), int(val("calls.window_days")))
        for ch, rule_id in (
            (Channel.EMAIL, "email.max_per_7_days"),
            (Channel.SMS, "sms.max_per_7_days"),
            (Channel.LETTER, "letter.max_per_7_days"),
        ):
            if rule_id in pack.rules:
                caps[CHANNEL_CODES[ch]] = (int(val(rule_id)), int(val("messages.window_days")))
        return (
            cp,
            today.toordinal(),
            bool(val("dispute.freeze")),
            bool(val("plan.pause_reminders")),
            bool(val("insurer.pause")),
            bool(val("assistance.pause")),
            *self._insurer_cutoffs(pack, today),
            tuple(p.value in cease_purposes for p in cp.purposes),
            cease_mask,
            bool(val("sms.allowed")),
            tuple(tuple(CHANNEL_CODES[c] for c in chans) for chans in cp.channels),
            recheck,
            quiet_mask,
            quiet_ok,
            tuple(caps),
        )


def plan_fast(rows: Iterable[PlanRow], tables: RunTables) -> list[int]:
    """The fast path: every decision for ``rows`` at ``tables.now``, as decision codes.

    :param rows: plan rows (see :mod:`carecollect.bench.rows`).
    :param tables: the run's tables.
    :returns: one :func:`encode` code per row, in order.
    """
    views = tables.views()
    now_s = tables.now_s
    out: list[int] = []
    append = out.append
    n_views = len(views)
    for r in rows:
        if not r[2] or r[6] <= 0:
            append(0)
            continue
        c = r[1]
        if c >= n_views:
            views = tables.views()
            n_views = len(views)
        (
            cp,
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
        ) = views[c]
        claim = r[9]
        if (
            (r[7] and fd)
            or (r[8] and fp)
            or (claim and fi and (claim > ins_p if claim > 0 else -claim > ins_a))
            or (r[10] and fa)
        ):
            append(0)
            continue
        idx, nxt = plan_invoice(cp, today, r[3], r[4], r[5], r[6], False, r[24], r[25], r[26])
        if idx < 0:
            append((nxt + 1) << 16)
            continue
        cease = 0 <= r[11] <= now_s
        if cease and not cease_ok[idx]:
            append(0)
            continue
        conf = r[12]
        planned = send = 0
        for code in step_codes[idx]:
            bit = 1 << code
            if (code == _SMS and not sms_ok) or (cease and not cease_mask & bit) or not conf & bit:
                continue
            o = 13 + 2 * code
            if not r[o] <= now_s < r[o + 1]:
                continue
            planned |= bit
            if code == _SMS and recheck >= 0 and not 0 <= now_s - r[23] <= recheck:
                continue
            if qmask & bit and not qok:
                continue
            cap = caps[code]
            if cap is not None and r[27]:
                lo = today - cap[1] + 1
                if sum(1 for ch, day in r[27] if ch == code and lo <= day <= today) >= cap[0]:
                    continue
            send |= bit
        if not planned:
            append((nxt + 1) << 16)
            continue
        append(((nxt + 1) << 16) | ((idx + 1) << 10) | (planned << 5) | send)
    return out


def plan_floor(rows: Iterable[PlanRow], tables: RunTables) -> list[int]:
    """The bare-Python floor: the same decisions as :func:`plan_fast`, cadence scan inlined, no library call.

    Assumed-receipt days outside the compiled table fall back to the sending
    day (rows with history that old do not occur in the benchmark).

    :param rows: plan rows.
    :param tables: the run's tables (only their plain tuples are read).
    :returns: one decision code per row.
    """
    tabs = tables.floor_tables()
    now_s = tables.now_s
    out: list[int] = []
    append = out.append
    for r in rows:
        if not r[2] or r[6] <= 0:
            append(0)
            continue
        c = r[1]
        if c >= len(tabs):
            tabs = tables.floor_tables()
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
            _n,
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
            scan_end,
        ) = tabs[c]
        claim = r[9]
        waiting = False
        if claim > 0:
            waiting = claim > ins_p
        elif claim < 0:
            waiting = -claim > ins_a
        if (r[7] and fd) or (r[8] and fp) or (waiting and fi) or (r[10] and fa):
            append(0)
            continue
        issue, due, placed = r[3], r[4], r[5]
        last_idx, last_day, last_msg = r[24], r[25], r[26]
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
        if best < 0:
            append((nxt + 1) << 16)
            continue
        cease = 0 <= r[11] <= now_s
        if cease and not cease_ok[best]:
            append(0)
            continue
        conf = r[12]
        planned = send = 0
        for code in step_codes[best]:
            bit = 1 << code
            if (code == 2 and not sms_ok) or (cease and not cease_mask & bit) or not conf & bit:
                continue
            o = 13 + 2 * code
            if not r[o] <= now_s < r[o + 1]:
                continue
            planned |= bit
            if code == 2 and recheck >= 0 and not 0 <= now_s - r[23] <= recheck:
                continue
            if qmask & bit and not qok:
                continue
            cap = caps[code]
            if cap is not None and r[27]:
                lo = today - cap[1] + 1
                cnt = 0
                for ch, day in r[27]:
                    if ch == code and lo <= day <= today:
                        cnt += 1
                if cnt >= cap[0]:
                    continue
            send |= bit
        if not planned:
            append((nxt + 1) << 16)
            continue
        append(((nxt + 1) << 16) | ((best + 1) << 10) | (planned << 5) | send)
    return out


_SENT = (OutreachStatus.SENT, OutreachStatus.DELIVERED)


def plan_rich(
    snapshots: Iterable[AccountSnapshot],
    creditor_of: Any,
    now: dt.datetime,
    packs: dict[str, PolicyPack] | None = None,
) -> Iterator[tuple[str, int]]:
    """The reference: :func:`~carecollect.policy.cadence.due_steps` and :func:`~carecollect.policy.governor.may_contact` per invoice.

    Mirrors the daily run's planning of one account (balance from the ledger,
    the plan covering the invoice, the account's disputes, its sent steps and
    attempts as history).

    :param snapshots: account snapshots (e.g. from ``SQLiteStore.iter_account_snapshots``).
    :param creditor_of: ``creditor id -> Creditor`` (e.g. ``store.get_creditor``).
    :param now: the run's instant (aware).
    :param packs: packs by key (default: :func:`~carecollect.policy.packs.get_pack`).
    :returns: ``(invoice id, decision code)`` pairs.
    """
    packs = dict(packs or {})
    for snap in snapshots:
        key = snap.account.jurisdiction
        pack = packs.get(key) or packs.setdefault(key, get_pack(key))
        creditor: Creditor = creditor_of(snap.account.creditor_id)
        patient = snap.patient
        history = ContactHistory.of(snap.attempts)
        today = now.astimezone(zone(patient.time_zones[0])).date()
        for inv in snap.invoices:
            if inv.status is not InvoiceStatus.OPEN:
                yield inv.id, 0
                continue
            balance = (
                snap.ledger.invoice_balance(inv.id)
                if inv.id in snap.ledger.invoice_ids()
                else inv.patient_responsibility
            )
            plan_status = None
            for plan in snap.plans:
                if inv.id in plan.invoice_ids:
                    if plan.status.current:
                        plan_status = plan.status
                        break
                    plan_status = plan_status or plan.status
            # as the daily run passes it (relief_flags, in the patient's zone): the claim holds until the wait runs out
            waiting = billable_to_patient(inv, today=today, pack=pack).waiting
            ctx = InvoiceContext(
                invoice=inv,
                patient=patient,
                creditor=creditor,
                pack=pack,
                balance=balance,
                disputes=snap.disputes,
                plan_status=plan_status,
                insurer_waiting=waiting,
                sent_steps=tuple(s for s in snap.steps if s.invoice_id == inv.id and s.status in _SENT),
                placed_on=today if creditor.role.is_collector else None,
            )
            cad = due_steps(ctx, now)
            nxt = cad.next_at.date().toordinal() if cad.next_at is not None else NONE
            if not cad.due:
                yield inv.id, encode(-1, 0, 0, nxt)
                continue
            step = cad.due[0]
            cp = compile_pack(
                pack, on=today, collector=creditor.role.is_collector, nonprofit=creditor.nonprofit
            )
            idx = cp.index_of(step.purpose, step.rank)
            debt = Debt(
                snap.account.id,
                inv.id,
                disputes=snap.disputes,
                insurer_waiting=waiting,
                plan_current=bool(plan_status and plan_status.current),
            )
            planned = send = 0
            for ch in step.channels:
                bit = 1 << CHANNEL_CODES[ch]
                planned |= bit
                if may_contact(patient, debt, ch, now, history, pack, creditor, step.purpose).allowed:
                    send |= bit
            yield inv.id, encode(idx, planned, send, nxt)
