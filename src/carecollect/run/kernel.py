"""The daily run's decisions on plan rows: the compiled cadence kernel and the contact checks, as ints.

:func:`decide` answers, per invoice row (:mod:`carecollect.run.rows`) at the
run's instant, what :func:`~carecollect.run.planning.plan_account` answers for
an account without disputes, plans, assistance applications, conversations
or an agency gate: whether the invoice is closed, paid, frozen (a claim the
insurer has not decided), or has a step due; which step (the cadence kernel
:func:`~carecollect.policy.cadence.plan_invoice`, the same function the rich
path calls); on which channels the patient's wishes allow it (the checks of
:func:`~carecollect.policy.cadence.due_steps`); on which of those the contact
governor lets it go now (the checks of
:func:`~carecollect.policy.governor.may_contact`: SMS consent recheck, quiet
hours in every zone of the patient, caps); and the day the next step falls.
The answer is one int, a *decision code* (:func:`encode`), so a million of
them stay small. ``tests/test_run_kernel.py`` holds the codes equal to the
rich path's decisions on generated stores (with histories, reversals,
bounces, opt-outs, stop requests, claims and collectors) at several instants.

Everything that depends only on the pack, the patient's zones and ``now`` is
compiled once per run in :class:`RunTables`.

>>> decode(encode(DUE, 2, 0b11, 0b01, 739680)) == (DUE, 2, 0b11, 0b01, 739680)
True
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..channels import Channel
from ..policy.cadence import NONE, compile_pack, history_of_days, plan_invoice
from ..policy.governor import quiet_hours_ok
from ..policy.packs import PolicyPack, get_pack
from ..timekeeping import require_aware, zone
from .rows import CHANNEL_CODES, AccountRows, Contexts, PlanRow, micros

__all__ = [
    "CEASED",
    "CLOSED",
    "DUE",
    "FROZEN",
    "NOT_DUE",
    "PAID",
    "InstalmentAction",
    "RunTables",
    "decide",
    "decode",
    "encode",
    "instalment_actions",
    "tally",
    "tally_instalments",
]

#: Decision states: the invoice is not open (no decision), nothing is owed, a claim the insurer
#: has not decided holds it, the patient's stop request forbids the due step, no step is due,
#: a step is due (its planned channels may still be none: then nothing goes out).
CLOSED, PAID, FROZEN, CEASED, NOT_DUE, DUE = range(6)

_SMS, _PHONE = CHANNEL_CODES[Channel.SMS], CHANNEL_CODES[Channel.PHONE]
_BIG = 10**8
#: At most this many cadence answers are remembered per run (then the memo starts afresh: memory stays flat).
_MEMO_SIZE = 1 << 16


class InstalmentAction(enum.Enum):
    """What the run does about a due instalment of an active plan."""

    #: Charge it to the plan's mandate.
    CHARGE = "charge"
    #: A dispute on the plan's invoices holds the charge.
    CHARGE_HELD = "charge_held"
    #: Unpaid past the pack's grace period: mark it missed.
    MISSED = "missed"


def instalment_actions(
    plans: Iterable[tuple[str, Sequence[str], Iterable[tuple[int, int]]]],
    mandated: Iterable[str],
    disputes: Sequence[str | None],
    today: int,
    grace: int,
) -> Iterator[tuple[InstalmentAction, str, int]]:
    """The actions on the due instalments of an account's active plans, in plan and instalment order.

    An instalment due on or before today is charged to the plan's mandate (if the patient
    gave one, not revoked) until ``grace`` days after it fell due, held while an open dispute
    covers the plan's invoices; one unpaid more than ``grace`` days is missed.

    :param plans: ``(plan id, invoice ids, ((number, due day ordinal), ...))`` of each
        *active* plan, with its instalments still *due*.
    :param mandated: ids of plans with a mandate in force now.
    :param disputes: the invoice ids of the account's open disputes (``None``: the whole account).
    :param today: today's ordinal in the patient's zone.
    :param grace: the pack's ``plan.grace_days``.

    >>> list(instalment_actions([("PL-1", ("I-1",), ((1, 100), (2, 130)))], {"PL-1"}, (), 135, 10))
    [(<InstalmentAction.MISSED: 'missed'>, 'PL-1', 1), (<InstalmentAction.CHARGE: 'charge'>, 'PL-1', 2)]
    """
    mandated = set(mandated)
    for plan_id, invoice_ids, instalments in plans:
        for number, due in instalments:
            late = today - due
            if 0 <= late <= grace and plan_id in mandated:
                held = any(d is None or d in invoice_ids for d in disputes)
                yield (InstalmentAction.CHARGE_HELD if held else InstalmentAction.CHARGE), plan_id, number
            elif late > grace:
                yield InstalmentAction.MISSED, plan_id, number


def encode(state: int, idx: int, planned: int, send: int, nxt: int) -> int:
    """One decision as an int.

    :param state: one of :data:`CLOSED`, :data:`PAID`, :data:`FROZEN`, :data:`CEASED`,
        :data:`NOT_DUE`, :data:`DUE`.
    :param idx: the due step's index in the compiled pack, or -1.
    :param planned: bits of the channels the patient's wishes allow.
    :param send: bits of the channels the governor lets go out now.
    :param nxt: the ordinal of the day the next step falls, or -1.
    """
    return ((((nxt + 1) << 3) | state) << 16) | ((idx + 1) << 10) | (planned << 5) | send


def decode(code: int) -> tuple[int, int, int, int, int]:
    """The inverse of :func:`encode`: ``(state, idx, planned, send, nxt)``."""
    return (code >> 16) & 7, ((code >> 10) & 63) - 1, (code >> 5) & 31, code & 31, (code >> 19) - 1


class RunTables:
    """Per-run tables, one tuple per :class:`~carecollect.run.rows.Context`, built on first use.

    A context's view holds the compiled pack and today's ordinal in the patient's home zone,
    the four freeze rules (dispute, plan, insurer, assistance), the latest filing days of a pending and of an appealed claim that
    still hold an invoice, which steps may follow a stop request and on which channels,
    whether SMS is used, each step's channel codes, the SMS consent-recheck window, the
    channels that keep quiet hours and whether ``now`` is inside them in every zone, and the
    caps per channel code.

    :param contexts: the contexts rows refer to.
    :param now: the run's instant (aware).
    :param pack_of: the pack (with house rules) for a pack key; default
        :func:`~carecollect.policy.packs.get_pack`.
    :param creditor_pack_of: the pack for ``(pack key, creditor id)`` of a context whose
        creditor has its own house rules (:attr:`Context.creditor_id
        <carecollect.run.rows.Context.creditor_id>`); ``None``: ``pack_of`` for every creditor.
    """

    def __init__(
        self,
        contexts: Contexts,
        now: dt.datetime,
        pack_of: Callable[[str], PolicyPack] | None = None,
        *,
        creditor_pack_of: Callable[[str, str], PolicyPack] | None = None,
    ) -> None:
        require_aware(now, "RunTables", "now")
        self.contexts = contexts
        self.now = now
        self.now_us = micros(now)
        self._pack_of = pack_of or get_pack
        self._creditor_pack_of = creditor_pack_of
        self.packs: dict[tuple[str, str], PolicyPack] = {}
        self._views: list[tuple[Any, ...]] = []
        #: The cadence kernel's answers ``(step, next day)`` by ``(context, issue, due, placed, history)``:
        #: with the context fixed (pack, today) they depend on nothing else once an invoice is
        #: open, owed and not frozen, and many invoices share them (bounded; see :func:`decide`).
        self.cadence_memo: dict[tuple[Any, ...], tuple[int, int]] = {}

    def pack(self, key: str, creditor_id: str = "") -> PolicyPack:
        """The pack for ``key`` (read once per run), ``creditor_id``'s own when given.

        :param key: the pack key.
        :param creditor_id: a creditor with its own house rules for the pack ("": the installation's).
        """
        if (key, creditor_id) not in self.packs:
            if creditor_id and self._creditor_pack_of is not None:
                self.packs[key, creditor_id] = self._creditor_pack_of(key, creditor_id)
            else:
                self.packs[key, creditor_id] = self._pack_of(key)
        return self.packs[key, creditor_id]

    def views(self) -> list[tuple[Any, ...]]:
        """The kernel's view per context index (extended as contexts are registered)."""
        while len(self._views) < len(self.contexts):
            self._views.append(self._view(len(self._views)))
        return self._views

    @staticmethod
    def _insurer_cutoffs(pack: PolicyPack, day: dt.date) -> tuple[int, int]:
        """The latest filing days (pending, appealed) whose claim still holds the invoice on ``day``.

        A claim filed on ``f`` holds while ``today < f + wait``
        (:func:`~carecollect.relief.insurer.billable_to_patient`), that is while
        ``f > today - wait``. A pack without the wait rules holds for ever.
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
        pack = self.pack(ctx.pack_key, ctx.creditor_id)
        now = self.now
        today = now.astimezone(zone(ctx.zones[0])).date()
        cp = compile_pack(pack, on=today, collector=ctx.collector, nonprofit=ctx.nonprofit)

        def val(rule_id: str) -> Any:
            return pack.value(rule_id, on=today)

        cease_purposes = val("cease.allowed_purposes")
        cease_mask = sum(1 << CHANNEL_CODES[Channel(c)] for c in val("cease.allowed_channels"))
        recheck = -1
        if ctx.collector or val("sms.recheck_for_all_creditors"):
            recheck = int(val("sms.consent_recheck_days")) * 86_400_000_000
        quiet_mask = sum(1 << CHANNEL_CODES[Channel(c)] for c in val("quiet_hours.channels"))
        quiet_ok = quiet_hours_ok(now, ctx.zones, val("quiet_hours.start"), val("quiet_hours.end"))
        caps: list[tuple[int, int] | None] = [None] * 5
        if ctx.collector or val("calls.cap_for_all_creditors"):
            caps[_PHONE] = (int(val("calls.max_per_7_days")), int(val("calls.window_days")))
        window_rule = "messages.window_days" if "messages.window_days" in pack.rules else "calls.window_days"
        for ch, rule_id in (
            (Channel.EMAIL, "email.max_per_7_days"),
            (Channel.SMS, "sms.max_per_7_days"),
            (Channel.LETTER, "letter.max_per_7_days"),
        ):
            if rule_id in pack.rules:
                caps[CHANNEL_CODES[ch]] = (int(val(rule_id)), int(val(window_rule)))
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


def decide(rows: Iterable[PlanRow], tables: RunTables) -> list[int]:
    """Every decision for ``rows`` at ``tables.now``, as decision codes (one per row, in order).

    Rows of rich accounts (:attr:`~carecollect.run.rows.AccountRows.rich`) are not decided
    here; the run gives those accounts to :func:`~carecollect.run.planning.plan_account`.

    :param rows: plan rows of accounts that are not rich.
    :param tables: the run's tables.
    """
    views = tables.views()
    now_us = tables.now_us
    memo = tables.cadence_memo
    out: list[int] = []
    append = out.append
    n_views = len(views)
    for r in rows:
        if not r[2]:
            append(0)  # CLOSED
            continue
        if r[6] <= 0:
            append(PAID << 16)
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
            append(FROZEN << 16)
            continue
        key = (c, r[3], r[4], r[5], r[14])
        found = memo.get(key)
        if found is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            last_idx, last_day, last_msg = history_of_days(cp, r[14]) if r[14] else (NONE, NONE, NONE)
            found = memo[key] = plan_invoice(
                cp, today, r[3], r[4], r[5], r[6], False, last_idx, last_day, last_msg
            )
        idx, nxt = found
        if idx < 0:
            append(encode(NOT_DUE, NONE, 0, 0, nxt))
            continue
        cease = r[11]
        if cease and not cease_ok[idx]:
            append(encode(CEASED, idx, 0, 0, NONE))
            continue
        usable = r[12]
        planned = send = 0
        for code in step_codes[idx]:
            bit = 1 << code
            if (code == _SMS and not sms_ok) or (cease and not cease_mask & bit) or not usable & bit:
                continue
            planned |= bit
            if code == _SMS and recheck >= 0 and not 0 <= now_us - r[13] <= recheck:
                continue
            if qmask & bit and not qok:
                continue
            cap = caps[code]
            if cap is not None and r[15]:
                lo = today - cap[1] + 1
                if sum(1 for ch, day in r[15] if ch == code and lo <= day <= today) >= cap[0]:
                    continue
            send |= bit
        append(encode(DUE, idx, planned, send, nxt))
    return out


def tally(codes: Iterable[int], counts: dict[str, int]) -> None:
    """Add the decisions of ``codes`` to a run's counts (``messages`` and ``decision.<kind>``).

    A due step sends on each channel the governor allows and holds on each other planned
    channel; every other open invoice (paid, frozen, stopped, nothing due, or no usable
    channel) is one ``nothing_due`` decision; a closed invoice is none.

    :param codes: decision codes.
    :param counts: the counts to add to.
    """
    nothing = send_n = hold_n = 0
    for code in codes:
        if not code:
            continue
        if (code >> 16) & 7 == DUE and (code >> 5) & 31:
            s = (code & 31).bit_count()
            send_n += s
            hold_n += ((code >> 5) & 31).bit_count() - s
        else:
            nothing += 1
    for key, n in (
        ("messages", send_n),
        ("decision.send", send_n),
        ("decision.hold", hold_n),
        ("decision.nothing_due", nothing),
    ):
        if n:
            counts[key] = counts.get(key, 0) + n


def tally_instalments(acc: AccountRows, tables: RunTables, counts: dict[str, int]) -> None:
    """Add an account's instalment actions (:func:`instalment_actions`) to a run's counts.

    ``missed`` and ``decision.plan_missed`` for each instalment missed, ``charges`` and
    ``decision.charge`` for each charge, ``decision.charge_held`` for each held one.

    :param acc: the account's rows (with its plans, mandates and disputes).
    :param tables: the run's tables (today and the grace period in the account's context).
    :param counts: the counts to add to.
    """
    if not acc.plans or not acc.rows:
        return
    view = tables.views()[acc.rows[0][1]]
    ctx = tables.contexts[acc.rows[0][1]]
    today = view[1]
    grace = int(
        tables.pack(ctx.pack_key, ctx.creditor_id).get("plan.grace_days", 10, on=dt.date.fromordinal(today))
    )
    for action, _plan, _number in instalment_actions(acc.plans, acc.mandated, acc.disputes, today, grace):
        keys = {
            InstalmentAction.MISSED: ("missed", "decision.plan_missed"),
            InstalmentAction.CHARGE: ("charges", "decision.charge"),
            InstalmentAction.CHARGE_HELD: ("decision.charge_held",),
        }[action]
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
