"""Service-level targets and the figures measured against them.

Two kinds of target, as a collection agency's contact centre sets them:

* :class:`AnswerTimeTarget` for calls: a share answered within a threshold
  in seconds (CrediCare's "80 % within 60 seconds").
* :class:`ResponseTarget` for e-mail, portal messages and callback
  requests: answered within a number of business days in the calendar of
  the patient or the office (``business_days=0``: the same business day,
  as for a first answer to a dispute).

:func:`measure` turns contact records into :class:`QueueFigures`: offered,
answered, abandoned, service level, average speed of answer, abandonment
rate, longest wait and the backlog past its deadline.

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> from carecollect.calendars import BusinessCalendar
>>> email = ResponseTarget("email-general", business_days=1,
...                        calendar=BusinessCalendar.for_country("NO"), tz="Europe/Oslo")
>>> friday = dt.datetime(2026, 5, 22, 15, 30, tzinfo=ZoneInfo("Europe/Oslo"))  # Whit Monday follows
>>> email.deadline(friday)
datetime.datetime(2026, 5, 27, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Oslo'))
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

import attrs

from ..calendars import BusinessCalendar
from ..errors import ValidationError
from ..timekeeping import require_aware, zone
from .records import ContactOutcome, ContactRecord, ContactState, Direction

__all__ = [
    "AbandonRule",
    "AnswerTimeTarget",
    "QueueFigures",
    "ResponseTarget",
    "Target",
    "measure",
    "response_deadline",
]


def _check_share(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValidationError(
            f"Target {getattr(instance, 'queue', '?')}", attribute.name, "a share from 0 to 1 is expected"
        )


def _check_queue(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Target", "queue", "a non-empty queue name is expected")


class AbandonRule(enum.Enum):
    """Which abandoned calls count against the service level."""

    #: Every abandoned call counts as a call not answered in time (the strict reading).
    ALL_COUNT = "all_count"
    #: Callers who hung up within the threshold are left out of the service level.
    SHORT_ABANDONS_IGNORED = "short_abandons_ignored"


@attrs.frozen
class AnswerTimeTarget:
    """Calls in ``queue``: ``share`` answered within ``within``.

    >>> import datetime as dt
    >>> AnswerTimeTarget("phone-general", share=0.8, within=dt.timedelta(seconds=60)).within.seconds
    60
    """

    queue: str = attrs.field(validator=_check_queue)
    share: float = attrs.field(default=0.8, validator=_check_share)
    within: dt.timedelta = attrs.field(default=dt.timedelta(seconds=60))
    abandon_rule: AbandonRule = AbandonRule.ALL_COUNT

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.within, dt.timedelta) or self.within < dt.timedelta(0):
            raise ValidationError(f"Target {self.queue}", "within", "a timedelta of zero or more is expected")


def response_deadline(
    arrived_at: dt.datetime,
    business_days: int,
    calendar: BusinessCalendar,
    tz: str,
    cutoff: dt.time | None = None,
) -> dt.datetime:
    """The instant by which a written contact must be answered.

    The contact's local date in ``tz`` counts as day 0 if it is a business
    day and the contact came before ``cutoff`` (if any); otherwise day 0 is
    the next business day. The deadline is the end of the business day
    ``business_days`` after day 0 (midnight local time, exclusive).

    >>> import datetime as dt
    >>> from carecollect.calendars import BusinessCalendar
    >>> saturday = dt.datetime(2026, 3, 7, 10, 0, tzinfo=dt.timezone.utc)
    >>> response_deadline(saturday, 0, BusinessCalendar.for_country("DE"), "Europe/Berlin").date()
    datetime.date(2026, 3, 10)
    """
    require_aware(arrived_at, "ResponseTarget", "arrived_at")
    if isinstance(business_days, bool) or not isinstance(business_days, int) or business_days < 0:
        raise ValidationError(
            "ResponseTarget", "business_days", "a whole number of business days >= 0 is expected"
        )
    place = zone(tz)
    local = arrived_at.astimezone(place)
    day = local.date()
    if cutoff is not None and local.time().replace(tzinfo=None) >= cutoff:
        day += dt.timedelta(days=1)
    day = calendar.roll_forward(day)
    due = calendar.add_business_days(day, business_days)
    return dt.datetime.combine(due + dt.timedelta(days=1), dt.time(0), tzinfo=place)


@attrs.frozen
class ResponseTarget:
    """Written contacts in ``queue``: ``share`` answered within ``business_days``.

    :param queue: the queue name.
    :param business_days: 0 for the same business day, 1 for the next...
    :param calendar: whose business days count (patient's or office's country).
    :param tz: the IANA time zone of that calendar.
    :param share: the share to be answered in time (default all of them).
    :param cutoff: contacts arriving at or after this local time count from
        the next business day (e.g. ``time(16, 0)``); ``None`` for none.
    """

    queue: str = attrs.field(validator=_check_queue)
    business_days: int
    calendar: BusinessCalendar
    tz: str
    share: float = attrs.field(default=1.0, validator=_check_share)
    cutoff: dt.time | None = None

    def __attrs_post_init__(self) -> None:
        if (
            isinstance(self.business_days, bool)
            or not isinstance(self.business_days, int)
            or self.business_days < 0
        ):
            raise ValidationError(f"Target {self.queue}", "business_days", "a whole number >= 0 is expected")
        zone(self.tz)

    def deadline(self, arrived_at: dt.datetime) -> dt.datetime:
        """The instant a contact that arrived at ``arrived_at`` must be answered by."""
        return response_deadline(arrived_at, self.business_days, self.calendar, self.tz, self.cutoff)


#: Either kind of target.
Target = AnswerTimeTarget | ResponseTarget


@attrs.frozen
class QueueFigures:
    """One queue's figures over a window, as seen at ``at``.

    :param queue: the queue.
    :param at: the instant the figures describe.
    :param offered: inbound contacts that arrived in the window.
    :param answered: of those, answered by ``at``.
    :param answered_in_target: of those, answered within the target.
    :param abandoned: of those, calls the caller hung up on.
    :param waiting: contacts waiting at ``at`` (whenever they arrived).
    :param past_deadline: waiting contacts already past their target.
    :param service_level: share answered in target, of the contacts whose
        fate is known (``None`` when none is).
    :param target_share: the share the target asks for.
    :param average_speed_of_answer: mean wait of answered contacts.
    :param abandonment_rate: abandoned / offered for a queue measured in seconds
        (calls, callbacks); ``None`` if nothing was offered or the queue is a
        written one (e-mail, portal), where nobody hangs up.
    :param longest_wait: longest wait of any contact in the window or waiting now.
    """

    queue: str
    at: dt.datetime
    offered: int
    answered: int
    answered_in_target: int
    abandoned: int
    waiting: int
    past_deadline: int
    service_level: float | None
    target_share: float
    average_speed_of_answer: dt.timedelta | None
    abandonment_rate: float | None
    longest_wait: dt.timedelta

    @property
    def meets_target(self) -> bool | None:
        """Whether the service level reaches the target (``None`` before any contact counts)."""
        return None if self.service_level is None else self.service_level >= self.target_share

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON: instants in ISO 8601, waits in seconds."""
        asa = self.average_speed_of_answer
        return {
            "queue": self.queue,
            "at": self.at.isoformat(),
            "offered": self.offered,
            "answered": self.answered,
            "answered_in_target": self.answered_in_target,
            "abandoned": self.abandoned,
            "waiting": self.waiting,
            "past_deadline": self.past_deadline,
            "service_level": self.service_level,
            "target_share": self.target_share,
            "meets_target": self.meets_target,
            "average_speed_of_answer_seconds": None if asa is None else asa.total_seconds(),
            "abandonment_rate": self.abandonment_rate,
            "longest_wait_seconds": self.longest_wait.total_seconds(),
        }


def _limit(target: Target, record: ContactRecord) -> dt.datetime:
    if isinstance(target, AnswerTimeTarget):
        return record.started_at + target.within
    return target.deadline(record.started_at)


def measure(
    records: Iterable[ContactRecord],
    target: Target,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
) -> QueueFigures:
    """Figures for ``target.queue`` at ``now`` from inbound ``records`` routed to it.

    Contacts that arrived in ``[since, now]`` (all up to ``now`` if ``since``
    is ``None``) are offered. A contact counts for the service level once
    its fate is known: answered (in target or not), abandoned (see
    :class:`AbandonRule`), or still waiting past its target. Contacts still
    waiting within target are left out until they are answered. Every
    contact waiting at ``now`` counts in ``waiting``, whenever it arrived.

    >>> import datetime as dt
    >>> now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
    >>> measure([], AnswerTimeTarget("phone-general"), now).service_level is None
    True
    """
    require_aware(now, f"Target {target.queue}", "now")
    if since is not None:
        require_aware(since, f"Target {target.queue}", "since")
    offered = answered = in_target = abandoned = waiting = past = counted = 0
    total_answer = dt.timedelta(0)
    longest = dt.timedelta(0)
    ignore_short = (
        isinstance(target, AnswerTimeTarget) and target.abandon_rule is AbandonRule.SHORT_ABANDONS_IGNORED
    )
    for record in records:
        if record.queue != target.queue or record.direction is not Direction.INBOUND:
            continue
        state = record.state_at(now)
        if state is ContactState.NOT_YET_ARRIVED:
            continue
        limit = _limit(target, record)
        in_window = since is None or record.started_at >= since
        if state is ContactState.WAITING:
            waiting += 1
            longest = max(longest, now - record.started_at)
            if now >= limit:
                past += 1
        if not in_window:
            continue
        offered += 1
        if state is ContactState.WAITING:
            if now >= limit:
                counted += 1
            continue
        wait = record.wait_at(now)
        longest = max(longest, wait)
        if state is ContactState.ANSWERED:
            assert record.answered_at is not None
            answered += 1
            counted += 1
            total_answer += wait
            if (
                record.answered_at <= limit
                if isinstance(target, AnswerTimeTarget)
                else record.answered_at < limit
            ):
                in_target += 1
        elif record.outcome is ContactOutcome.ABANDONED:
            abandoned += 1
            assert record.ended_at is not None
            if not (ignore_short and record.ended_at <= limit):
                counted += 1
        else:
            counted += 1
    return QueueFigures(
        queue=target.queue,
        at=now,
        offered=offered,
        answered=answered,
        answered_in_target=in_target,
        abandoned=abandoned,
        waiting=waiting,
        past_deadline=past,
        service_level=in_target / counted if counted else None,
        target_share=float(target.share),
        average_speed_of_answer=total_answer / answered if answered else None,
        abandonment_rate=(abandoned / offered if offered and isinstance(target, AnswerTimeTarget) else None),
        longest_wait=longest,
    )
