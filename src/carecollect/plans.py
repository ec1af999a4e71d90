"""Payment plans: exact instalment schedules and the plan's life cycle.

The schedule is exact: :func:`build_schedule` splits the total with
:meth:`Money.split <carecollect.money.Money.split>`, so the instalments sum to
the plan total to the minor unit, and lands each on the patient's chosen day
of the month (moved to the next business day when a calendar is given).

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.calendars import BusinessCalendar
>>> from carecollect.plans import build_schedule
>>> sched = build_schedule(Money("100.00", "EUR"), 3, first_due=dt.date(2026, 5, 1),
...                        day_of_month=1, calendar=BusinessCalendar.for_country("DE"))
>>> [(i.due_date.isoformat(), str(i.amount)) for i in sched]
[('2026-05-04', 'EUR 33.34'), ('2026-06-01', 'EUR 33.33'), ('2026-07-01', 'EUR 33.33')]
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

import attrs

from .calendars import BusinessCalendar
from .errors import InvalidTransition, ScheduleMismatch, ValidationError
from .events import Event, EventType
from .money import Money, total
from .timekeeping import require_aware
from .validation import aware, date_only, date_or_none, identifier, money_non_negative, money_or_none, of_type

__all__ = [
    "Instalment",
    "InstalmentStatus",
    "PaymentPlan",
    "PlanStatus",
    "activate_plan",
    "build_schedule",
    "cancel_plan",
    "complete_plan",
    "default_plan",
    "mark_instalment_missed",
    "pause_plan",
    "record_instalment_payment",
    "resume_plan",
    "reverse_instalment_payment",
]


class PlanStatus(enum.Enum):
    """Life cycle of a payment plan."""

    #: Offered, not yet accepted by the patient.
    PROPOSED = "proposed"
    #: Accepted and running: reminders for the plan's invoices stop.
    ACTIVE = "active"
    #: Every instalment paid.
    COMPLETED = "completed"
    #: Called defaulted after missed instalments.
    DEFAULTED = "defaulted"
    #: Cancelled (by the patient or the creditor) before it completed.
    CANCELLED = "cancelled"
    #: On hold (hardship, a dispute): nothing is due meanwhile.
    PAUSED = "paused"

    @property
    def current(self) -> bool:
        """True for a plan the patient is keeping (active or paused for hardship)."""
        return self in (PlanStatus.ACTIVE, PlanStatus.PAUSED)


class InstalmentStatus(enum.Enum):
    """State of one instalment."""

    #: Not paid yet (due now or later).
    DUE = "due"
    #: Paid in full.
    PAID = "paid"
    #: Unpaid past the grace days.
    MISSED = "missed"
    #: The creditor let this instalment go.
    FORGIVEN = "forgiven"


@attrs.frozen
class Instalment:
    """One scheduled payment of a plan."""

    number: int = attrs.field(validator=lambda i, a, v: _positive_int(v, "Instalment", a.name))
    due_date: dt.date = attrs.field(validator=date_only)
    amount: Money = attrs.field(validator=money_non_negative)
    status: InstalmentStatus = attrs.field(default=InstalmentStatus.DUE, validator=of_type(InstalmentStatus))
    paid: Money | None = attrs.field(default=None, validator=money_or_none)


def _positive_int(value: object, record: str, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(record, field, f"must be a positive int, got {value!r}")


def _add_months(day: dt.date, months: int, day_of_month: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = _cal.monthrange(year, month)[1]
    return dt.date(year, month, min(day_of_month, last))


def build_schedule(
    plan_total: Money,
    count: int,
    *,
    first_due: dt.date,
    day_of_month: int | None = None,
    calendar: BusinessCalendar | None = None,
) -> tuple[Instalment, ...]:
    """Monthly instalments summing exactly to ``plan_total``.

    :param plan_total: the amount the plan pays off.
    :param count: number of instalments (at least 1).
    :param first_due: the first due date (its month starts the schedule).
    :param day_of_month: the patient's chosen day (1-31; clipped to short months);
        default the day of ``first_due``.
    :param calendar: if given, a due date on a weekend or holiday moves to the
        next business day.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError("PaymentPlan", "count", f"must be a positive int, got {count!r}")
    dom = first_due.day if day_of_month is None else day_of_month
    if not 1 <= dom <= 31:
        raise ValidationError("PaymentPlan", "day_of_month", f"must be 1-31, got {dom}")
    amounts = plan_total.split(count)
    first = first_due
    if day_of_month is not None:
        first = _add_months(first_due, 0, dom)
        if first < first_due:
            first = _add_months(first_due, 1, dom)
    out = []
    for n, amount in enumerate(amounts):
        due = _add_months(first, n, dom)
        if calendar is not None:
            due = calendar.roll_forward(due)
        out.append(Instalment(n + 1, due, amount))
    return tuple(out)


def _insts(value: Iterable[Instalment]) -> tuple[Instalment, ...]:
    return tuple(value)


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _instalments(
    instance: PaymentPlan, attribute: attrs.Attribute[tuple[Instalment, ...]], value: tuple[Instalment, ...]
) -> None:
    rec = f"PaymentPlan {instance.id}"
    if not value:
        raise ValidationError(rec, "instalments", "a plan needs at least one instalment")
    for i, inst in enumerate(value):
        if inst.amount.currency != instance.total.currency:
            raise ScheduleMismatch(
                rec, f"instalments[{i}]", f"currency {inst.amount.currency} is not {instance.total.currency}"
            )
    numbers = [i.number for i in value]
    if len(set(numbers)) != len(numbers):
        raise ValidationError(rec, "instalments", "two instalments share a number")
    s = total((i.amount for i in value), instance.total.currency)
    if s != instance.total:
        raise ScheduleMismatch(
            rec, "instalments", f"instalments sum to {s}, not the plan total {instance.total}"
        )
    dates = [i.due_date for i in value]
    if dates != sorted(dates):
        raise ValidationError(rec, "instalments", "due dates must not go backwards")


@attrs.frozen
class PaymentPlan:
    """An agreement to pay a balance in instalments.

    :param id: stable identifier.
    :param account_id: the account.
    :param invoice_ids: the invoices the plan covers.
    :param total: what the plan pays off (instalments sum to it exactly).
    :param instalments: the schedule.
    :param status: :class:`PlanStatus`.
    :param created_at: when it was proposed (aware).
    :param interest_rate_percent: annual rate; zero by default.
    :param paused_at: start of a hardship pause.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    invoice_ids: tuple[str, ...] = attrs.field(converter=_ids)
    total: Money = attrs.field(validator=money_non_negative)
    instalments: tuple[Instalment, ...] = attrs.field(converter=_insts, validator=_instalments)
    created_at: dt.datetime = attrs.field(validator=aware)
    status: PlanStatus = attrs.field(default=PlanStatus.PROPOSED, validator=of_type(PlanStatus))
    interest_rate_percent: str = "0"
    paused_at: dt.date | None = attrs.field(default=None, validator=date_or_none)

    @property
    def missed(self) -> tuple[Instalment, ...]:
        """Instalments marked missed."""
        return tuple(i for i in self.instalments if i.status is InstalmentStatus.MISSED)

    @property
    def paid_count(self) -> int:
        """Instalments paid."""
        return sum(1 for i in self.instalments if i.status is InstalmentStatus.PAID)

    @property
    def remaining(self) -> Money:
        """What is still to pay under the plan."""
        return total(
            (
                i.amount
                for i in self.instalments
                if i.status in (InstalmentStatus.DUE, InstalmentStatus.MISSED)
            ),
            self.total.currency,
        )

    def next_due(self) -> Instalment | None:
        """The earliest unpaid instalment."""
        for i in self.instalments:
            if i.status in (InstalmentStatus.DUE, InstalmentStatus.MISSED):
                return i
        return None


def _guard(plan: PaymentPlan, allowed: tuple[PlanStatus, ...], action: str, at: dt.datetime) -> None:
    require_aware(at, f"PaymentPlan {plan.id}", "at")
    if plan.status not in allowed:
        raise InvalidTransition(
            f"PaymentPlan {plan.id}",
            plan.status,
            action,
            "allowed from " + ", ".join(s.value for s in allowed),
        )


def activate_plan(plan: PaymentPlan, *, at: dt.datetime) -> tuple[PaymentPlan, Event]:
    """The patient accepted a proposed plan."""
    _guard(plan, (PlanStatus.PROPOSED,), "activate", at)
    return attrs.evolve(plan, status=PlanStatus.ACTIVE), Event(EventType.PLAN_ACTIVATED, plan.id, at)


def _replace(plan: PaymentPlan, number: int, **changes: Any) -> tuple[Instalment, ...]:
    if not any(i.number == number for i in plan.instalments):
        raise ValidationError(f"PaymentPlan {plan.id}", "number", f"there is no instalment {number}")
    return tuple(attrs.evolve(i, **changes) if i.number == number else i for i in plan.instalments)


def record_instalment_payment(
    plan: PaymentPlan, number: int, amount: Money, *, at: dt.datetime
) -> tuple[PaymentPlan, Event]:
    """Mark instalment ``number`` paid with ``amount`` (at least the instalment's amount); completes the plan after the last."""
    _guard(plan, (PlanStatus.ACTIVE, PlanStatus.PAUSED), "record a payment", at)
    inst = next((i for i in plan.instalments if i.number == number), None)
    if inst is None:
        raise ValidationError(f"PaymentPlan {plan.id}", "number", f"there is no instalment {number}")
    if inst.status is InstalmentStatus.PAID:
        raise InvalidTransition(f"PaymentPlan {plan.id}", inst.status, f"pay instalment {number} again")
    if amount < inst.amount:
        raise ValidationError(
            f"PaymentPlan {plan.id}", "amount", f"{amount} is less than the {inst.amount} due"
        )
    new = attrs.evolve(plan, instalments=_replace(plan, number, status=InstalmentStatus.PAID, paid=amount))
    if new.next_due() is None:
        new = attrs.evolve(new, status=PlanStatus.COMPLETED)
    return new, Event(EventType.PLAN_INSTALMENT_PAID, plan.id, at, {"number": number, "amount": amount})


def mark_instalment_missed(plan: PaymentPlan, number: int, *, at: dt.datetime) -> tuple[PaymentPlan, Event]:
    """Mark a due instalment missed (the relief policy decides grace and default)."""
    _guard(plan, (PlanStatus.ACTIVE,), "mark an instalment missed", at)
    inst = next((i for i in plan.instalments if i.number == number), None)
    if inst is None or inst.status is not InstalmentStatus.DUE:
        raise InvalidTransition(
            f"PaymentPlan {plan.id}", inst.status if inst else "absent", f"miss instalment {number}"
        )
    new = attrs.evolve(plan, instalments=_replace(plan, number, status=InstalmentStatus.MISSED))
    return new, Event(EventType.PLAN_INSTALMENT_MISSED, plan.id, at, {"number": number})


def reverse_instalment_payment(
    plan: PaymentPlan, number: int, *, at: dt.datetime, reason: str = "payment_reversed"
) -> tuple[PaymentPlan, Event]:
    """Undo the payment of instalment ``number``: its money went back (a returned debit, a chargeback).

    The instalment goes back to :attr:`InstalmentStatus.DUE` with its own due
    date, even when that date has passed: this function does not decide grace.
    The relief policy does, as for any unpaid instalment: the daily run marks a
    due instalment missed once the pack's ``plan.grace_days`` after its due date
    are over (:func:`mark_instalment_missed`), and until then it stays due. A
    completed plan is active again; an active or paused plan keeps its status.

    :param plan: an active, paused or completed plan.
    :param number: a paid instalment of it.
    :param at: when the payment was reversed (aware).
    :param reason: a reason code for the event (``"payment_failed"``, ``"chargeback"``...).
    :returns: the new plan and a :attr:`~carecollect.events.EventType.PLAN_INSTALMENT_REVERSED` event.
    :raises InvalidTransition: the plan is proposed, defaulted or cancelled, or the
        instalment is not paid (the message names the plan).
    :raises ValidationError: there is no instalment ``number``.

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> t = dt.datetime(2026, 5, 3, 9, tzinfo=dt.timezone.utc)
    >>> plan = PaymentPlan("PLAN-1", "A-1", ("INV-1",), Money("20.00", "EUR"),
    ...                    build_schedule(Money("20.00", "EUR"), 1, first_due=dt.date(2026, 5, 1)),
    ...                    t, status=PlanStatus.ACTIVE)
    >>> plan, _ = record_instalment_payment(plan, 1, Money("20.00", "EUR"), at=t)
    >>> plan.status
    <PlanStatus.COMPLETED: 'completed'>
    >>> plan, event = reverse_instalment_payment(plan, 1, at=t, reason="chargeback")
    >>> plan.status, plan.instalments[0].status, plan.instalments[0].paid, event.detail("reason")
    (<PlanStatus.ACTIVE: 'active'>, <InstalmentStatus.DUE: 'due'>, None, 'chargeback')
    """
    _guard(
        plan,
        (PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.COMPLETED),
        "reverse an instalment payment",
        at,
    )
    inst = next((i for i in plan.instalments if i.number == number), None)
    if inst is None:
        raise ValidationError(f"PaymentPlan {plan.id}", "number", f"there is no instalment {number}")
    if inst.status is not InstalmentStatus.PAID:
        raise InvalidTransition(
            f"PaymentPlan {plan.id}",
            inst.status,
            f"reverse the payment of instalment {number}",
            "it is not paid",
        )
    new = attrs.evolve(plan, instalments=_replace(plan, number, status=InstalmentStatus.DUE, paid=None))
    if new.status is PlanStatus.COMPLETED:
        new = attrs.evolve(new, status=PlanStatus.ACTIVE)
    return new, Event(
        EventType.PLAN_INSTALMENT_REVERSED,
        plan.id,
        at,
        {"number": number, "amount": inst.paid if inst.paid is not None else inst.amount, "reason": reason},
    )


def default_plan(plan: PaymentPlan, *, at: dt.datetime) -> tuple[PaymentPlan, Event]:
    """Call an active plan defaulted (only with a missed instalment)."""
    _guard(plan, (PlanStatus.ACTIVE,), "default", at)
    if not plan.missed:
        raise InvalidTransition(
            f"PaymentPlan {plan.id}", plan.status, "default", "no instalment has been missed"
        )
    return attrs.evolve(plan, status=PlanStatus.DEFAULTED), Event(EventType.PLAN_DEFAULTED, plan.id, at)


def complete_plan(plan: PaymentPlan, *, at: dt.datetime, reason: str = "paid") -> tuple[PaymentPlan, Event]:
    """Close a plan as completed; what is unpaid is forgiven (e.g. a state's "paid after N payments" rule)."""
    _guard(plan, (PlanStatus.ACTIVE, PlanStatus.PAUSED), "complete", at)
    insts = tuple(
        attrs.evolve(i, status=InstalmentStatus.FORGIVEN) if i.status is not InstalmentStatus.PAID else i
        for i in plan.instalments
    )
    return attrs.evolve(plan, status=PlanStatus.COMPLETED, instalments=insts), Event(
        EventType.PLAN_COMPLETED, plan.id, at, {"reason": reason}
    )


def cancel_plan(plan: PaymentPlan, *, at: dt.datetime) -> tuple[PaymentPlan, Event]:
    """Cancel a proposed, active or paused plan (the patient paid another way, or chose another plan)."""
    _guard(plan, (PlanStatus.PROPOSED, PlanStatus.ACTIVE, PlanStatus.PAUSED), "cancel", at)
    return attrs.evolve(plan, status=PlanStatus.CANCELLED), Event(EventType.PLAN_CANCELLED, plan.id, at)


def pause_plan(plan: PaymentPlan, *, on: dt.date, at: dt.datetime) -> tuple[PaymentPlan, Event]:
    """Pause an active plan for hardship; nothing is missed while paused."""
    _guard(plan, (PlanStatus.ACTIVE,), "pause", at)
    return attrs.evolve(plan, status=PlanStatus.PAUSED, paused_at=on), Event(
        EventType.PLAN_PAUSED, plan.id, at
    )


def resume_plan(
    plan: PaymentPlan,
    *,
    count: int,
    first_due: dt.date,
    at: dt.datetime,
    calendar: BusinessCalendar | None = None,
) -> tuple[PaymentPlan, Event]:
    """Resume a paused plan, re-amortising what remains over ``count`` new instalments."""
    _guard(plan, (PlanStatus.PAUSED,), "resume", at)
    paid = tuple(i for i in plan.instalments if i.status is InstalmentStatus.PAID)
    remaining = plan.remaining
    fresh = (
        build_schedule(remaining, count, first_due=first_due, calendar=calendar)
        if remaining.is_positive()
        else ()
    )
    renumbered = paid + tuple(attrs.evolve(i, number=len(paid) + i.number) for i in fresh)
    new = attrs.evolve(plan, status=PlanStatus.ACTIVE, instalments=renumbered, paused_at=None)
    return new, Event(EventType.PLAN_RESUMED, plan.id, at, {"count": count})
