"""The reminder cadence: which outreach step is due on an invoice today, and when the next one falls.

A pack's cadence is a short sequence of steps (first statement, a friendly
reminder before the due date, reminders after it, a final notice and the
jurisdiction's formal steps: the US validation notice for collectors,
Norway's inkassovarsel and betalingsoppfordring, Germany's Mahnung and the
notice that default has begun). Each step is anchored on the issue date, the
due date or the placement date, may expire (the pre-due reminder never goes
out on or after the due date), may require the previous step and its
deadline to have passed (the betalingsoppfordring), and goes out on one or
more channels.

Two layers, one source of truth:

* :func:`compile_pack` turns a pack (with house rules) into a
  :class:`CompiledPack` of plain ints and tuples for one day and one
  creditor role, and :func:`plan_invoice` decides on primitive values (dates
  as ordinals, amounts in minor units) which step is due and when the next
  falls. It creates no objects but one small tuple, so a portfolio of a
  million invoices plans in seconds.
* :func:`due_steps` takes rich objects (an :class:`InvoiceContext`), checks
  what stops outreach (paid, disputed, a current plan, an insurer still
  deciding, an assistance review), calls :func:`plan_invoice`, filters the
  channels by the patient's wishes and returns a :class:`CadencePlan` with
  every reason.

After a missed run, the latest due step is chosen and earlier ones are
skipped: one message, never a burst, and a step already sent is never sent
again (steps are matched to history by purpose and rank). Some steps are
never skipped: the first statement (a patient never gets a reminder or a formal
notice about a bill they were never sent, for instance when a freeze such as
the insurer's wait outlasted the due date); the first friendly step after the
due date, a reminder or Germany's Mahnung (no final notice, inkassovarsel or
default notice comes first, even for an old backlog imported with long-past
due dates); and a US collector's validation notice.

>>> import datetime as dt
>>> from carecollect.policy.packs import get_pack
>>> from carecollect.policy.cadence import compile_pack, plan_invoice, NONE
>>> cp = compile_pack(get_pack("no"), on=dt.date(2026, 3, 1))
>>> [p.value for p in cp.purposes]
['statement', 'pre_due_reminder', 'reminder', 'inkassovarsel', 'betalingsoppfordring']
>>> due = dt.date(2026, 3, 1).toordinal()
>>> idx, nxt = plan_invoice(cp, today=due + 28, issue=due - 14, due=due, placed=0,
...                         balance_minor=50000, blocked=False, last_idx=2, last_idx_day=due + 14, last_msg_day=due + 14)
>>> cp.purposes[idx].value, dt.date.fromordinal(nxt).isoformat()  # the varsel today; betalingsoppfordring after its 14 days
('inkassovarsel', '2026-04-13')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import attrs

from ..calendars import BusinessCalendar
from ..channels import Channel
from ..creditors import Creditor
from ..disputes import Dispute
from ..errors import PolicyViolation, ValidationError
from ..invoices import Estimate, Invoice, InvoiceStatus
from ..money import Money
from ..outreach import OutreachPurpose, OutreachStatus, OutreachStep
from ..patients import Patient
from ..plans import PlanStatus
from ..timekeeping import require_aware, zone
from .explain import Outcome, Param, Params, Reason, Verdict, reason_from_rule
from .governor import UNDELIVERABLE_RULE, channel_undeliverable, channel_usable
from .insurer import billable_to_patient
from .packs import PolicyPack

__all__ = [
    "NONE",
    "CadencePlan",
    "CompiledPack",
    "EstimateContext",
    "InvoiceContext",
    "PlannedStep",
    "check_formal_notice",
    "compile_pack",
    "due_steps",
    "history_of_days",
    "invoice_history",
    "nothing_due",
    "nothing_due_in",
    "plan_invoice",
]

#: Returned by :func:`plan_invoice` for "no step" / "no next day".
NONE = -1

#: Anchor codes of :class:`CompiledPack` steps.
ANCHOR_ISSUE, ANCHOR_DUE, ANCHOR_PLACED = 0, 1, 2

_OPEN_END = 10**7  # "never expires", in days
_TABLE_DAYS = 800  # assumed-receipt table spans this many days either side of the compile day


@attrs.frozen
class CompiledPack:
    """A pack's cadence for one day and one creditor role, as plain ints and tuples.

    Step ``i`` is due on day ``d`` (an ordinal) when no later-or-equal step was
    sent, ``anchor + start[i] <= d < anchor + end[i]``, the previous message
    was at least ``gap`` days ago and, if ``requires[i]`` is a step index, that
    step was the last one sent and its deadline has passed.

    :param key: the pack's key.
    :param on: the day the rules were read (an ordinal).
    :param collector: compiled for a third-party collector.
    :param purposes: each step's :class:`~carecollect.outreach.OutreachPurpose`.
    :param ranks: 1 for the first step of a purpose, 2 for the second...
    :param anchor: ``ANCHOR_ISSUE``, ``ANCHOR_DUE`` or ``ANCHOR_PLACED``.
    :param start: first day offset from the anchor.
    :param end: day offset from the anchor at which the step expires (exclusive).
    :param requires: index of the step that must be the last one sent, or ``NONE``.
    :param mandatory: steps that are never skipped (the first statement; the first reminder
        after the due date, or Germany's Mahnung; a collector's validation notice): no later
        step is due before they have gone out.
    :param scan_end: for a scan that starts at step ``i``, the index after the first mandatory
        step from ``i`` on (``size`` when there is none); ``len(scan_end) == size + 1``.
    :param deadline_days: days to pay the step states (0: none), counted from receipt.
    :param receipt_lag: 1 when the deadline counts from assumed receipt (the table), 0 from sending.
    :param channels: the pack's channels per step.
    :param rule_ids: the rule each step's timing comes from (for reasons).
    :param gap: minimum days between two messages on one invoice.
    :param receipt_base: ordinal of ``receipt_table[0]``.
    :param receipt_table: assumed-receipt day for each sending day from ``receipt_base``.
    :param calendar: the business calendar for days outside the table.
    :param receipt_business_days: business days from mailing to assumed receipt.
    """

    key: str
    on: int
    collector: bool
    purposes: tuple[OutreachPurpose, ...]
    ranks: tuple[int, ...]
    anchor: tuple[int, ...]
    start: tuple[int, ...]
    end: tuple[int, ...]
    requires: tuple[int, ...]
    mandatory: tuple[bool, ...]
    scan_end: tuple[int, ...]
    deadline_days: tuple[int, ...]
    receipt_lag: tuple[int, ...]
    channels: tuple[tuple[Channel, ...], ...]
    rule_ids: tuple[str, ...]
    gap: int
    receipt_base: int = 0
    receipt_table: tuple[int, ...] = attrs.field(default=(), repr=False)
    calendar: BusinessCalendar | None = attrs.field(default=None, repr=False)
    receipt_business_days: int = 0

    @property
    def size(self) -> int:
        """Number of steps."""
        return len(self.purposes)

    def receipt_day(self, sent: int) -> int:
        """Assumed-receipt day (ordinal) of a message mailed on ``sent``."""
        i = sent - self.receipt_base
        if 0 <= i < len(self.receipt_table):
            return self.receipt_table[i]
        if self.calendar is None or not self.receipt_business_days:
            return sent
        return self.calendar.add_business_days(
            dt.date.fromordinal(sent), self.receipt_business_days
        ).toordinal()

    def deadline_day(self, step: int, sent: int) -> int:
        """The last day to pay (ordinal) that step ``step`` states when sent on ``sent`` (``NONE``: no deadline)."""
        days = self.deadline_days[step]
        if not days:
            return NONE
        base = self.receipt_day(sent) if self.receipt_lag[step] else sent
        return base + days

    def index_of(self, purpose: OutreachPurpose, rank: int = 1) -> int:
        """Index of the ``rank``-th step with ``purpose`` (``NONE`` if absent)."""
        for i, (p, r) in enumerate(zip(self.purposes, self.ranks, strict=True)):
            if p is purpose and r == rank:
                return i
        return NONE


def plan_invoice(
    cp: CompiledPack,
    today: int,
    issue: int,
    due: int,
    placed: int,
    balance_minor: int,
    blocked: bool,
    last_idx: int,
    last_idx_day: int,
    last_msg_day: int,
) -> tuple[int, int]:
    """Which step is due today on one invoice, and the day the next one falls: the hot path.

    All days are ordinals (``date.toordinal()``); amounts are minor units.

    :param cp: the :class:`CompiledPack`.
    :param today: today's ordinal in the patient's zone.
    :param issue: the invoice's issue date.
    :param due: its due date.
    :param placed: the day a collector received it (0: not placed).
    :param balance_minor: the open balance; nothing is due at zero or below.
    :param blocked: a freeze applies (dispute, plan, insurer, assistance).
    :param last_idx: index of the latest step sent (``NONE``: none).
    :param last_idx_day: the day it was sent.
    :param last_msg_day: the day of the latest message of any kind on the invoice (``NONE``: none).
    :returns: ``(step index or NONE, next day or NONE)``; when a step is due
        today the next day assumes it goes out today.

    >>> import datetime as dt
    >>> from carecollect.policy.packs import get_pack
    >>> cp = compile_pack(get_pack("default"), on=dt.date(2026, 3, 1))
    >>> d = dt.date(2026, 3, 31).toordinal()
    >>> idx, nxt = plan_invoice(cp, d + 40, d - 30, d, 0, 12000, False, 0, d - 30, d - 30)  # run missed for weeks
    >>> cp.purposes[idx].value, cp.ranks[idx]  # one message: the first reminder is never skipped
    ('reminder', 1)
    >>> r1 = idx  # sent 20 days after the due date; the run then misses weeks again
    >>> idx, nxt = plan_invoice(cp, d + 40, d - 30, d, 0, 12000, False, r1, d + 20, d + 20)
    >>> cp.purposes[idx].value, cp.ranks[idx]  # one message: the latest due step, not the missed ones
    ('reminder', 2)
    """
    if blocked or balance_minor <= 0:
        return NONE, NONE
    best, nxt = _scan(cp, today, issue, due, placed, last_idx, last_idx_day, last_msg_day)
    if best != NONE:
        nxt = _scan(cp, today, issue, due, placed, best, today, today)[1]
    return best, nxt


def _scan(
    cp: CompiledPack,
    today: int,
    issue: int,
    due: int,
    placed: int,
    last_idx: int,
    last_idx_day: int,
    last_msg_day: int,
) -> tuple[int, int]:
    anchor, start_off, end_off, requires = cp.anchor, cp.start, cp.end, cp.requires
    gap_from = last_msg_day + cp.gap if last_msg_day != NONE else NONE
    best = NONE
    nxt = _OPEN_END * 10
    # A mandatory step not yet sent ends the scan: nothing after it is due before it has gone out.
    for i in range(last_idx + 1, cp.scan_end[last_idx + 1]):
        k = anchor[i]
        a = issue if k == 0 else (due if k == 1 else placed)
        if a <= 0:
            continue
        start = a + start_off[i]
        end = a + end_off[i]
        r = requires[i]
        if r != NONE:
            if r != last_idx:
                continue
            d = cp.deadline_day(r, last_idx_day) + 1
            if d > start:
                start = d
        if gap_from > start:
            start = gap_from
        if start >= end:
            continue
        if start <= today:
            if today < end:
                best = i
        elif start < nxt:
            nxt = start
    return best, (nxt if nxt < _OPEN_END * 10 else NONE)


# --- compiling a pack -------------------------------------------------------------------------------


@attrs.frozen
class _Spec:
    purpose: OutreachPurpose
    anchor: int
    start: int
    end: int
    rule_id: str
    channels_rule: str
    requires_previous: bool = False
    deadline_days: int = 0
    receipt_lag: bool = False
    mandatory: bool = False


_COMPILED: dict[tuple[int, int, bool, bool], tuple[PolicyPack, CompiledPack]] = {}


def compile_pack(
    pack: PolicyPack, *, on: dt.date, collector: bool = False, nonprofit: bool = False
) -> CompiledPack:
    """Read ``pack``'s cadence rules in force on ``on`` into a :class:`CompiledPack`.

    Results are memoised per (pack object, day, role); a pack is immutable, so
    the cache is only a speed-up.

    :param pack: the pack, with any house rules.
    :param on: the day whose rules apply.
    :param collector: compile for a third-party collector (US: validation notice first).
    :param nonprofit: compile for a nonprofit hospital (US: the written 501(r) ECA notice is a step).
    :raises PolicyViolation: the rules break the law's own constraints (an
        inkassovarsel before the due date or with less than 14 days).
    """
    key = (id(pack), on.toordinal(), collector, nonprofit)
    hit = _COMPILED.get(key)
    if hit is not None and hit[0] is pack:
        return hit[1]
    cp = _compile(pack, on, collector, nonprofit)
    if len(_COMPILED) > 256:
        _COMPILED.clear()
    _COMPILED[key] = (pack, cp)
    return cp


def _compile(pack: PolicyPack, on: dt.date, collector: bool, nonprofit: bool = False) -> CompiledPack:
    rules = pack.rules

    def v(rule_id: str) -> int:
        return int(rules.value(rule_id, on=on))

    specs: list[_Spec] = []
    us_collector = collector and "us.validation_period_days" in rules
    P = OutreachPurpose
    if us_collector:
        specs.append(
            _Spec(
                P.VALIDATION_NOTICE,
                ANCHOR_PLACED,
                0,
                _OPEN_END,
                "us.validation_notice.max_days_after_initial_communication",
                "cadence.channels.validation_notice",
                deadline_days=v("us.validation_period_days"),
                receipt_lag=True,
                mandatory=True,
            )
        )
        specs.append(
            _Spec(
                P.REMINDER,
                ANCHOR_PLACED,
                0,
                _OPEN_END,
                "us.validation_period_days",
                "cadence.channels.reminder",
                requires_previous=True,
            )
        )
        if "cadence.final_notice.days_after_due" in rules:
            specs.append(
                _Spec(
                    P.FINAL_NOTICE,
                    ANCHOR_PLACED,
                    v("cadence.final_notice.days_after_due"),
                    _OPEN_END,
                    "cadence.final_notice.days_after_due",
                    "cadence.channels.final_notice",
                )
            )
    else:
        specs.append(
            _Spec(
                P.STATEMENT,
                ANCHOR_ISSUE,
                0,
                _OPEN_END,
                "cadence.channels.statement",
                "cadence.channels.statement",
                mandatory=True,
            )
        )
        if rules.value("cadence.pre_due_reminder.enabled", on=on):
            specs.append(
                _Spec(
                    P.PRE_DUE_REMINDER,
                    ANCHOR_DUE,
                    -v("cadence.pre_due_reminder.days_before_due"),
                    0,
                    "cadence.pre_due_reminder.days_before_due",
                    "cadence.channels.pre_due_reminder",
                )
            )
        if "cadence.mahnung.days_after_due" in rules:
            specs.append(
                _Spec(
                    P.MAHNUNG,
                    ANCHOR_DUE,
                    v("cadence.mahnung.days_after_due"),
                    _OPEN_END,
                    "cadence.mahnung.days_after_due",
                    "cadence.channels.mahnung",
                )
            )
        if "cadence.reminder_1.days_after_due" in rules:
            specs.append(
                _Spec(
                    P.REMINDER,
                    ANCHOR_DUE,
                    v("cadence.reminder_1.days_after_due"),
                    _OPEN_END,
                    "cadence.reminder_1.days_after_due",
                    "cadence.channels.reminder",
                )
            )
        if "de.default_notice.days_after_due" in rules:
            # BGB 286(3): default begins once 30 days after due date and receipt have passed.
            specs.append(
                _Spec(
                    P.DEFAULT_NOTICE,
                    ANCHOR_DUE,
                    v("de.default_notice.days_after_due") + 1,
                    _OPEN_END,
                    "de.default_notice.days_after_due",
                    "cadence.channels.default_notice",
                )
            )
        if "cadence.reminder_2.days_after_due" in rules:
            specs.append(
                _Spec(
                    P.REMINDER,
                    ANCHOR_DUE,
                    v("cadence.reminder_2.days_after_due"),
                    _OPEN_END,
                    "cadence.reminder_2.days_after_due",
                    "cadence.channels.reminder",
                )
            )
        if "cadence.inkassovarsel.days_after_due" in rules:
            offset = v("cadence.inkassovarsel.days_after_due")
            minimum = v("no.inkassovarsel.min_days_after_due")
            if offset < minimum:
                raise PolicyViolation(
                    f"rule 'cadence.inkassovarsel.days_after_due': {offset} is before the earliest day "
                    f"{minimum} after the due date (inkassoloven § 9)"
                )
            specs.append(
                _Spec(
                    P.INKASSOVARSEL,
                    ANCHOR_DUE,
                    offset,
                    _OPEN_END,
                    "no.inkassovarsel.deadline_days",
                    "cadence.channels.inkassovarsel",
                    deadline_days=v("no.inkassovarsel.deadline_days"),
                )
            )
            specs.append(
                _Spec(
                    P.BETALINGSOPPFORDRING,
                    ANCHOR_DUE,
                    offset,
                    _OPEN_END,
                    "no.betalingsoppfordring.deadline_days",
                    "cadence.channels.betalingsoppfordring",
                    requires_previous=True,
                    deadline_days=v("no.betalingsoppfordring.deadline_days"),
                )
            )
        if "cadence.final_notice.days_after_due" in rules:
            specs.append(
                _Spec(
                    P.FINAL_NOTICE,
                    ANCHOR_DUE,
                    v("cadence.final_notice.days_after_due"),
                    _OPEN_END,
                    "cadence.final_notice.days_after_due",
                    "cadence.channels.final_notice",
                )
            )
    if nonprofit and not us_collector and "cadence.eca_notice.days_after_issue" in rules:
        # 26 CFR 1.501(r)-6(c)(4): the written notice, at least 30 days before the first ECA;
        # the gates keep every ECA until the date it states has passed.
        specs.append(
            _Spec(
                P.ECA_NOTICE,
                ANCHOR_ISSUE,
                v("cadence.eca_notice.days_after_issue"),
                _OPEN_END,
                "cadence.eca_notice.days_after_issue",
                "cadence.channels.eca_notice",
                deadline_days=v("r501.notice_days_before_eca"),
            )
        )
    if not us_collector:
        # The first friendly step after the due date (a reminder; Germany's Mahnung) is never
        # skipped either: a patient hears "this is overdue, here is help" before any final
        # notice or formal step, even when an old backlog is imported with long-past due dates.
        friendly = next(
            (
                i
                for i, s in enumerate(specs)
                if s.anchor == ANCHOR_DUE and s.start > 0 and s.purpose in (P.REMINDER, P.MAHNUNG)
            ),
            None,
        )
        if friendly is not None:
            specs[friendly] = attrs.evolve(specs[friendly], mandatory=True)
    ranks: list[int] = []
    seen: dict[OutreachPurpose, int] = {}
    for s in specs:
        seen[s.purpose] = seen.get(s.purpose, 0) + 1
        ranks.append(seen[s.purpose])
    lag_days = v("us.validation_notice.assumed_receipt_business_days") if us_collector else 0
    table: tuple[int, ...] = ()
    base = 0
    calendar = pack.calendar if lag_days else None
    if calendar is not None:
        first = on - dt.timedelta(days=_TABLE_DAYS)
        base = first.toordinal()
        table = _receipt_table(calendar, first, 2 * _TABLE_DAYS, lag_days)
    return CompiledPack(
        key=pack.key,
        on=on.toordinal(),
        collector=collector,
        purposes=tuple(s.purpose for s in specs),
        ranks=tuple(ranks),
        anchor=tuple(s.anchor for s in specs),
        start=tuple(s.start for s in specs),
        end=tuple(s.end for s in specs),
        requires=tuple(i - 1 if s.requires_previous else NONE for i, s in enumerate(specs)),
        mandatory=tuple(s.mandatory for s in specs),
        scan_end=_scan_ends([s.mandatory for s in specs]),
        deadline_days=tuple(s.deadline_days for s in specs),
        receipt_lag=tuple(int(s.receipt_lag) for s in specs),
        channels=tuple(tuple(Channel(c) for c in rules.value(s.channels_rule, on=on)) for s in specs),
        rule_ids=tuple(s.rule_id for s in specs),
        gap=v("cadence.min_days_between_messages"),
        receipt_base=base,
        receipt_table=table,
        calendar=calendar,
        receipt_business_days=lag_days,
    )


def _scan_ends(mandatory: list[bool]) -> tuple[int, ...]:
    """For each first index of a scan, where it must stop (just after the next mandatory step).

    >>> _scan_ends([True, False, False])
    (1, 3, 3, 3)
    """
    n = len(mandatory)
    ends = [n] * (n + 1)
    stop = n
    for i in range(n - 1, -1, -1):
        if mandatory[i]:
            stop = i + 1
        ends[i] = stop
    return tuple(ends)


def _receipt_table(calendar: BusinessCalendar, first: dt.date, days: int, lag: int) -> tuple[int, ...]:
    """Assumed-receipt ordinal for each mailing day, walking business days once."""
    business = [calendar.is_business_day(first + dt.timedelta(days=i)) for i in range(days + 60)]
    out: list[int] = []
    for i in range(days):
        j, left = i, lag
        while left:
            j += 1
            if business[j]:
                left -= 1
        out.append(first.toordinal() + j)
    return tuple(out)


# --- the rich layer ---------------------------------------------------------------------------------


@attrs.frozen
class PlannedStep:
    """A step the cadence says is due.

    :param key: stable key within the invoice, e.g. ``"reminder#2"`` (history matches it by purpose and rank).
    :param account_id: the account.
    :param invoice_id: the invoice (``None`` for a pre-treatment estimate).
    :param purpose: the :class:`~carecollect.outreach.OutreachPurpose`.
    :param rank: 1 for the first step of this purpose, 2 for the second...
    :param channels: channels it goes out on, after the patient's wishes.
    :param due_on: the day it is due (in the patient's zone).
    :param deadline: the pay-by (or object-by) date it must state, if any.
    :param notices: legal notices the message must carry (e.g. ``"bgb_286_3_hint"``).
    """

    key: str
    account_id: str
    invoice_id: str | None
    purpose: OutreachPurpose
    rank: int
    channels: tuple[Channel, ...]
    due_on: dt.date
    deadline: dt.date | None = None
    notices: tuple[str, ...] = ()

    def to_outreach_step(self, due_at: dt.datetime) -> OutreachStep:
        """The :class:`~carecollect.outreach.OutreachStep` record, with a stable id (the outbox key).

        :param due_at: when it is due (aware).
        """
        sid = f"{self.invoice_id or self.account_id}.{self.key}"
        return OutreachStep(
            id=sid,
            account_id=self.account_id,
            invoice_id=self.invoice_id,
            purpose=self.purpose,
            channels=self.channels,  # type: ignore[arg-type]  # OutreachStep's converter=tuple is untyped
            due_at=due_at,
            deadline=self.deadline,
        )


@attrs.frozen
class CadencePlan:
    """What the cadence says for one invoice.

    :param due: the steps due now (at most one per invoice).
    :param next_at: when the next step falls (``None``: nothing further, or frozen).
    :param reasons: why, rule by rule.
    """

    due: tuple[PlannedStep, ...]
    next_at: dt.datetime | None
    reasons: tuple[Reason, ...]


def _disputes(value: Iterable[Dispute]) -> tuple[Dispute, ...]:
    return tuple(value)


def _steps(value: Iterable[OutreachStep]) -> tuple[OutreachStep, ...]:
    return tuple(value)


@attrs.frozen
class InvoiceContext:
    """Everything the cadence needs to know about one invoice, as plain facts.

    The relief side (plans, assistance, disputes, insurer waiting) computes
    the flags; the cadence only reads them.

    :param invoice: the invoice.
    :param patient: the patient or guarantor the messages go to.
    :param creditor: who collects (its role picks the collector cadence).
    :param pack: the policy pack, with house rules.
    :param balance: the open balance (default: the invoice's patient responsibility).
    :param disputes: disputes on the account.
    :param dispute_open: set when the caller already knows a dispute is open.
    :param plan_status: the status of a payment plan covering the invoice, if any.
    :param insurer_waiting: the insurer may still pay (default: the claim is pending or appealed
        and the pack's ``insurer.pending_wait_days`` / ``insurer.appeal_wait_days`` have not run out).
    :param assistance_pending: a financial-assistance application is under review.
    :param sent_steps: outreach steps already sent on this invoice (history).
    :param placed_on: the day a collector received the account (collectors only).
    """

    invoice: Invoice
    patient: Patient
    creditor: Creditor
    pack: PolicyPack
    balance: Money | None = None
    disputes: tuple[Dispute, ...] = attrs.field(default=(), converter=_disputes)
    dispute_open: bool = False
    plan_status: PlanStatus | None = None
    insurer_waiting: bool | None = None
    assistance_pending: bool = False
    sent_steps: tuple[OutreachStep, ...] = attrs.field(default=(), converter=_steps)
    placed_on: dt.date | None = None


@attrs.frozen
class EstimateContext:
    """A cost estimate before treatment: the first message a patient gets.

    :param estimate: the :class:`~carecollect.invoices.Estimate`.
    :param account_id: the account it belongs to.
    :param patient: the patient.
    :param pack: the policy pack.
    :param sent_steps: steps already sent (an estimate already sent is not sent again).
    """

    estimate: Estimate
    account_id: str
    patient: Patient
    pack: PolicyPack
    sent_steps: tuple[OutreachStep, ...] = attrs.field(default=(), converter=_steps)


_SENT = (OutreachStatus.SENT, OutreachStatus.DELIVERED)
_NOTHING_DUE = Params(case="none")


def _local_day(at: dt.datetime, patient: Patient) -> dt.date:
    return at.astimezone(zone(patient.time_zones[0])).date()


def _at_start(day: dt.date, patient: Patient, pack: PolicyPack) -> dt.datetime:
    return _at_start_in(day, patient.time_zones[0], pack)


def _at_start_in(day: dt.date, time_zone: str, pack: PolicyPack) -> dt.datetime:
    start = pack.get("quiet_hours.start", dt.time(9), on=day)
    return dt.datetime.combine(day, start, tzinfo=zone(time_zone))


def _channels(
    wanted: Sequence[Channel],
    patient: Patient,
    pack: PolicyPack,
    at: dt.datetime,
    on: dt.date,
    cease: bool,
    reasons: list[Reason] | None = None,
) -> tuple[Channel, ...]:
    """The usable channels of ``wanted``; a channel skipped because its points bounced adds a reason."""
    allowed_after_cease = pack.value("cease.allowed_channels", on=on) if cease else None
    out = []
    for ch in wanted:
        if ch is Channel.SMS and not pack.value("sms.allowed", on=on):
            continue
        if allowed_after_cease is not None and ch.value not in allowed_after_cease:
            continue
        if channel_usable(patient, ch, at):
            out.append(ch)
        elif reasons is not None and channel_undeliverable(patient, ch, at):
            reasons.append(
                Reason(
                    UNDELIVERABLE_RULE,
                    "delivery report",
                    Outcome.INFO,
                    {"case": "skipped", "channel": ch.value},
                )
            )
    return tuple(out)


def due_steps(context: InvoiceContext | EstimateContext, now: dt.datetime) -> CadencePlan:
    """The steps due on one invoice (or estimate) at ``now``, and when the next one falls.

    :param context: an :class:`InvoiceContext` or an :class:`EstimateContext`.
    :param now: the run's instant (aware); "today" is its date in the patient's first zone.
    :returns: a :class:`CadencePlan` with at most one due step.
    :raises NaiveDatetime: ``now`` has no time zone.
    :raises ValidationError: a collector's context has no ``placed_on``.
    """
    require_aware(now, "due_steps", "now")
    if isinstance(context, EstimateContext):
        return _estimate_plan(context, now)
    ctx = context
    inv, pack, patient = ctx.invoice, ctx.pack, ctx.patient
    today = _local_day(now, patient)
    reasons: list[Reason] = []

    def rr(rule_id: str, outcome: Outcome, **params: Param) -> None:
        reasons.append(reason_from_rule(pack.rule(rule_id, on=today), outcome, **params))

    if inv.status is not InvoiceStatus.OPEN:
        reasons.append(
            Reason(
                "invoice.status",
                "invoice record",
                Outcome.DENY,
                {"invoice": inv.id, "status": inv.status.value},
            )
        )
        return CadencePlan((), None, tuple(reasons))
    balance = ctx.balance if ctx.balance is not None else inv.patient_responsibility
    if balance.currency != inv.currency:
        raise ValidationError(f"Invoice {inv.id}", "balance", f"must be in {inv.currency}")
    if not balance.is_positive():
        reasons.append(Reason("invoice.balance", "ledger", Outcome.DENY, {"invoice": inv.id}))
        return CadencePlan((), None, tuple(reasons))
    insurer = ctx.insurer_waiting
    if insurer is None:  # from the claim, with the pack's wait before the patient is billed anyway
        insurer = inv.waiting_for_insurer
        if insurer and "insurer.pending_wait_days" in pack.rules:
            insurer = billable_to_patient(inv, today=today, pack=pack).waiting
    freezes = (
        (
            ctx.dispute_open or any(d.is_open and d.covers(inv.id) for d in ctx.disputes),
            "dispute.freeze",
        ),
        (ctx.plan_status is not None and ctx.plan_status.current, "plan.pause_reminders"),
        (insurer, "insurer.pause"),
        (ctx.assistance_pending, "assistance.pause"),
    )
    blocked = False
    for active, rule_id in freezes:
        if active and pack.value(rule_id, on=today):
            blocked = True
            rr(rule_id, Outcome.DENY, case="invoice")
    if blocked:
        return CadencePlan((), None, tuple(reasons))

    collector = ctx.creditor.role.is_collector
    cp = compile_pack(pack, on=today, collector=collector, nonprofit=ctx.creditor.nonprofit)
    if collector and ctx.placed_on is None and ANCHOR_PLACED in cp.anchor:
        raise ValidationError(
            f"Invoice {inv.id}", "placed_on", "a collector's cadence needs the placement date"
        )
    last_idx, last_idx_day, last_msg_day = _history(cp, ctx.sent_steps, inv.id, patient)
    placed = ctx.placed_on.toordinal() if ctx.placed_on is not None else 0
    idx, nxt = plan_invoice(
        cp,
        today.toordinal(),
        inv.issue_date.toordinal(),
        inv.due_date.toordinal(),
        placed,
        balance.minor_units,
        False,
        last_idx,
        last_idx_day,
        last_msg_day,
    )
    if idx == NONE:
        return nothing_due(pack, patient, nxt, tuple(reasons))
    next_at = _at_start(dt.date.fromordinal(nxt), patient, pack) if nxt != NONE else None

    purpose = cp.purposes[idx]
    rr(
        cp.rule_ids[idx],
        Outcome.INFO,
        case="due",
        purpose=purpose.value,
        rank=cp.ranks[idx],
        on=today.isoformat(),
    )
    cease = patient.cease_requested_at is not None and patient.cease_requested_at <= now
    if cease and purpose.value not in pack.value("cease.allowed_purposes", on=today):
        rr("cease.allowed_purposes", Outcome.DENY, case="step", purpose=purpose.value)
        return CadencePlan((), None, tuple(reasons))
    channels = _channels(cp.channels[idx], patient, pack, now, today, cease, reasons)
    if not channels:
        reasons.append(
            Reason(
                "patient.consent",
                "patient record",
                Outcome.DENY,
                {"case": "none_among", "channels": ", ".join(c.value for c in cp.channels[idx])},
            )
        )
        return CadencePlan((), next_at, tuple(reasons))
    deadline_day = cp.deadline_day(idx, today.toordinal())
    notices: tuple[str, ...] = ()
    if purpose is OutreachPurpose.STATEMENT and pack.get(
        "de.statement.default_hint_required", False, on=today
    ):
        # whether the invoice states the rule is a fact about the invoice, not a house rule
        if inv.default_notice_given:
            notices = ("bgb_286_3_hint",)
            rr("de.statement.default_hint_required", Outcome.CONDITION, case="stated")
        else:
            rr("de.statement.default_hint_required", Outcome.INFO, case="not_stated")
    step = PlannedStep(
        key=f"{purpose.value}#{cp.ranks[idx]}",
        account_id=inv.account_id,
        invoice_id=inv.id,
        purpose=purpose,
        rank=cp.ranks[idx],
        channels=channels,
        due_on=today,
        deadline=dt.date.fromordinal(deadline_day) if deadline_day != NONE else None,
        notices=notices,
    )
    return CadencePlan((step,), next_at, tuple(reasons))


def nothing_due(
    pack: PolicyPack, patient: Patient, nxt: int, reasons: tuple[Reason, ...] = ()
) -> CadencePlan:
    """The plan of an open, unfrozen invoice on which :func:`plan_invoice` finds no step due today.

    What :func:`due_steps` answers then, for callers that ran the kernel themselves
    (the daily run's pre-screen): no step, the next one at the start of the
    sending day ``nxt`` in the patient's zone, and the reason.

    :param pack: the pack.
    :param patient: the patient.
    :param nxt: the ordinal of the day the next step falls (``NONE``: none).
    :param reasons: reasons gathered before.
    """
    return nothing_due_in(pack, patient.time_zones[0], nxt, reasons)


def nothing_due_in(
    pack: PolicyPack, time_zone: str, nxt: int, reasons: tuple[Reason, ...] = ()
) -> CadencePlan:
    """:func:`nothing_due` for a patient whose first zone is ``time_zone`` (no :class:`Patient` needed).

    :param pack: the pack.
    :param time_zone: the patient's first (home) zone.
    :param nxt: the ordinal of the day the next step falls (``NONE``: none).
    :param reasons: reasons gathered before.
    """
    next_on = dt.date.fromordinal(nxt) if nxt != NONE else None
    why = Reason(
        "cadence",
        pack.key,
        Outcome.INFO,
        {"case": "next", "next": next_on.isoformat()} if next_on else _NOTHING_DUE,
    )
    next_at = _at_start_in(next_on, time_zone, pack) if next_on is not None else None
    return CadencePlan((), next_at, (*reasons, why))


def invoice_history(
    cp: CompiledPack, sent: Sequence[OutreachStep], invoice_id: str, patient: Patient
) -> tuple[int, int, int]:
    """The kernel's history arguments of one invoice: the latest compiled step sent, its day, the latest message's day.

    :param cp: the compiled pack.
    :param sent: outreach steps of the account (only this invoice's sent ones count).
    :param invoice_id: the invoice.
    :param patient: the patient (days are in their first zone).
    :returns: ``(last_idx, last_idx_day, last_msg_day)`` for :func:`plan_invoice` (``NONE``: none).
    """
    return _history(cp, sent, invoice_id, patient)


def _history(
    cp: CompiledPack, sent: Sequence[OutreachStep], invoice_id: str, patient: Patient
) -> tuple[int, int, int]:
    """(index of the latest compiled step sent, its day, the day of the latest message), from history."""
    return history_of_days(
        cp,
        (
            (s.purpose, _local_day(s.sent_at, patient).toordinal())
            for s in sorted(
                (
                    s
                    for s in sent
                    if s.invoice_id == invoice_id and s.status in _SENT and s.sent_at is not None
                ),
                key=lambda s: (s.sent_at, s.id),
            )
            if s.sent_at is not None
        ),
    )


def history_of_days(cp: CompiledPack, sent: Iterable[tuple[OutreachPurpose, int]]) -> tuple[int, int, int]:
    """The kernel's history arguments from an invoice's sent steps as ``(purpose, day ordinal)``, oldest first.

    :func:`invoice_history` reads them from outreach steps; the daily run's plan rows carry
    them as plain pairs (:mod:`carecollect.run.rows`). Days are in the patient's first zone.

    :param cp: the compiled pack.
    :param sent: ``(purpose, day)`` of each sent step, in the order they were sent.
    :returns: ``(last_idx, last_idx_day, last_msg_day)`` for :func:`plan_invoice` (``NONE``: none).
    """
    counts: dict[OutreachPurpose, list[int]] = {}
    last_msg = NONE
    for purpose, day in sent:
        counts.setdefault(purpose, []).append(day)
        last_msg = max(last_msg, day)
    last_idx, last_day = NONE, NONE
    for i, (purpose, rank) in enumerate(zip(cp.purposes, cp.ranks, strict=True)):
        days = counts.get(purpose, [])
        if len(days) >= rank:
            last_idx, last_day = i, days[rank - 1]
    return last_idx, last_day, last_msg


def _estimate_plan(ctx: EstimateContext, now: dt.datetime) -> CadencePlan:
    est, pack, patient = ctx.estimate, ctx.pack, ctx.patient
    today = _local_day(now, patient)
    if any(s.purpose is OutreachPurpose.ESTIMATE and s.status in _SENT for s in ctx.sent_steps):
        return CadencePlan(
            (), None, (Reason("cadence.channels.estimate", pack.key, Outcome.INFO, {"case": "sent"}),)
        )
    if est.scheduled_for is not None and today >= est.scheduled_for:
        return CadencePlan(
            (),
            None,
            (Reason("cadence.channels.estimate", pack.key, Outcome.INFO, {"case": "passed"}),),
        )
    reasons: list[Reason] = []
    deadline = _gfe_deadline(est, pack, reasons)
    cease = patient.cease_requested_at is not None and patient.cease_requested_at <= now
    channels = _channels(
        tuple(Channel(c) for c in pack.value("cadence.channels.estimate", on=today)),
        patient,
        pack,
        now,
        today,
        cease,
        reasons,
    )
    if not channels:
        reasons.append(Reason("patient.consent", "patient record", Outcome.DENY, {"case": "estimate"}))
        return CadencePlan((), None, tuple(reasons))
    reasons.insert(
        0,
        reason_from_rule(
            pack.rule("cadence.channels.estimate", on=today),
            Outcome.INFO,
            case="due",
        ),
    )
    step = PlannedStep(
        key="estimate#1",
        account_id=ctx.account_id,
        invoice_id=None,
        purpose=OutreachPurpose.ESTIMATE,
        rank=1,
        channels=channels,
        due_on=today,
        deadline=deadline,
        notices=("payment_terms",),
    )
    return CadencePlan((step,), None, tuple(reasons))


def _gfe_deadline(est: Estimate, pack: PolicyPack, reasons: list[Reason]) -> dt.date | None:
    """No Surprises Act good-faith estimate deadline (US pack only)."""
    on = est.given_on
    if est.scheduled_for is None or "estimate.gfe_business_days_if_scheduled_3_ahead" not in pack.rules:
        return None
    cal = pack.calendar
    ahead = cal.business_days_between(on, est.scheduled_for)
    if ahead >= 10:
        rule = pack.rule("estimate.gfe_business_days_if_scheduled_10_ahead", on=on)
    elif ahead >= 3:
        rule = pack.rule("estimate.gfe_business_days_if_scheduled_3_ahead", on=on)
    else:
        return None
    deadline = cal.add_business_days(on, int(rule.value))
    reasons.append(reason_from_rule(rule, Outcome.INFO, by=deadline.isoformat()))
    return deadline


def check_formal_notice(
    pack: PolicyPack,
    purpose: OutreachPurpose,
    *,
    sent_on: dt.date,
    deadline: dt.date,
    due_date: dt.date,
    previous_deadline: dt.date | None = None,
) -> Verdict:
    """Check a formal notice's dates against the pack before it goes out.

    Norway: an inkassovarsel only after the due date, with at least 14 days
    counted from sending (inkassoloven § 9); a betalingsoppfordring only after
    the varsel's deadline, with at least 14 days (§ 10). Other purposes pass.

    :param pack: the pack.
    :param purpose: the notice's purpose.
    :param sent_on: the day it is sent.
    :param deadline: the pay-by date it states.
    :param due_date: the invoice's due date.
    :param previous_deadline: the inkassovarsel's deadline (for a betalingsoppfordring).
    :returns: a :class:`~carecollect.policy.explain.Verdict`.

    >>> import datetime as dt
    >>> from carecollect.policy.packs import get_pack
    >>> d = check_formal_notice(get_pack("no"), OutreachPurpose.INKASSOVARSEL, sent_on=dt.date(2026, 4, 1),
    ...                         deadline=dt.date(2026, 4, 14), due_date=dt.date(2026, 3, 1))
    >>> d.allowed, d.denials[0].rule_id
    (False, 'no.inkassovarsel.deadline_days')
    """
    reasons: list[Reason] = []

    def rr(rule_id: str, ok: bool, **params: Param) -> None:
        reasons.append(
            reason_from_rule(pack.rule(rule_id, on=sent_on), Outcome.ALLOW if ok else Outcome.DENY, **params)
        )

    days = (deadline - sent_on).days
    if purpose is OutreachPurpose.INKASSOVARSEL and "no.inkassovarsel.deadline_days" in pack.rules:
        after = (sent_on - due_date).days
        minimum_after = int(pack.value("no.inkassovarsel.min_days_after_due", on=sent_on))
        rr(
            "no.inkassovarsel.min_days_after_due",
            after >= minimum_after,
            after=after,
            least=minimum_after,
        )
        need = int(pack.value("no.inkassovarsel.deadline_days", on=sent_on))
        rr(
            "no.inkassovarsel.deadline_days",
            days >= need,
            days=days,
            least=need,
        )
    elif (
        purpose is OutreachPurpose.BETALINGSOPPFORDRING
        and "no.betalingsoppfordring.deadline_days" in pack.rules
    ):
        ok_after = previous_deadline is not None and sent_on > previous_deadline
        rr(
            "no.betalingsoppfordring.deadline_days",
            ok_after,
            case="after" if ok_after else "early",
        )
        need = int(pack.value("no.betalingsoppfordring.deadline_days", on=sent_on))
        rr(
            "no.betalingsoppfordring.deadline_days",
            days >= need,
            case="days",
            days=days,
            least=need,
        )
    allowed = not any(r.outcome.blocks for r in reasons)
    return Verdict(allowed=allowed, reasons=tuple(reasons))
