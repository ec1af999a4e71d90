"""How many agents a queue needs: the Erlang C model, with shrinkage.

Erlang C describes a queue where calls arrive at random (a Poisson stream),
every agent can take every call, handling times are exponential and nobody
hangs up. From the forecast number of calls in an interval and the average
handling time (AHT) it gives, for each number of agents, the chance a call
must wait, the share answered within a threshold (the service level), the
average speed of answer (ASA) and the agents' occupancy. See
:doc:`/explanation/erlang-c` for the model in plain words.

The computation uses the Erlang B recursion
``B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1))`` and
``C = n·B / (n - A·(1 - B))``: no factorials, no powers, stable for
thousands of agents.

The worked example of Call Centre Helper ("Erlang C Formula – Made Simple
With an Easy Worked Example"): 100 calls in 30 minutes, AHT 180 s, target
80 % within 20 s, 30 % shrinkage:

>>> import datetime as dt
>>> plan = required_agents(100, dt.timedelta(minutes=30), dt.timedelta(seconds=180),
...                        target_share=0.8, within=dt.timedelta(seconds=20), shrinkage=0.3)
>>> plan.agents, plan.scheduled_agents
(14, 20)
>>> round(plan.level.service_level, 3), round(plan.level.asa_seconds, 1), round(plan.level.occupancy, 3)
(0.888, 7.8, 0.714)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

import attrs

from ..errors import ValidationError

__all__ = [
    "StaffingLevel",
    "StaffingPlan",
    "average_speed_of_answer",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "required_agents",
    "service_level",
    "staffing_levels",
    "traffic_intensity",
]

_RECORD = "Staffing"
#: Above this many agents the search gives up: the inputs are almost certainly wrong.
_MAX_AGENTS = 1_000_000


def _check_traffic(traffic: float) -> float:
    if (
        not isinstance(traffic, (int, float))
        or isinstance(traffic, bool)
        or not math.isfinite(traffic)
        or traffic < 0
    ):
        raise ValidationError(
            _RECORD, "traffic", f"offered traffic in Erlangs must be a finite number >= 0, got {traffic!r}"
        )
    return float(traffic)


def _check_agents(agents: int) -> int:
    if not isinstance(agents, int) or isinstance(agents, bool) or agents < 0:
        raise ValidationError(_RECORD, "agents", f"a whole number of agents >= 0 is expected, got {agents!r}")
    return agents


def _seconds(value: dt.timedelta, field: str, *, positive: bool) -> float:
    if not isinstance(value, dt.timedelta):
        raise ValidationError(_RECORD, field, f"a datetime.timedelta is expected, got {type(value).__name__}")
    seconds = value.total_seconds()
    if seconds < 0 or (positive and seconds == 0):
        raise ValidationError(
            _RECORD, field, f"must be {'positive' if positive else 'zero or more'}, got {value}"
        )
    return seconds


def _share(value: float | Decimal | Fraction, field: str, *, below_one: bool = False) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Fraction)):
        raise ValidationError(_RECORD, field, f"a share between 0 and 1 is expected, got {value!r}")
    # repr() of a float is the shortest decimal that reads back, so 0.3 becomes exactly 3/10.
    share = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    if share < 0 or share > 1 or (below_one and share == 1):
        upper = "below 1" if below_one else "at most 1"
        raise ValidationError(_RECORD, field, f"a share from 0 {upper} is expected, got {value!r}")
    return share


def _erlang_b_steps(traffic: float) -> Iterator[float]:
    """Erlang B blocking for 0, 1, 2, ... servers."""
    b = 1.0
    n = 0
    yield b
    while True:
        n += 1
        b = traffic * b / (n + traffic * b)
        yield b


def _c_from_b(agents: int, traffic: float, b: float) -> float:
    if agents <= traffic:
        return 1.0
    return agents * b / (agents - traffic * (1.0 - b))


def traffic_intensity(calls: float, period: dt.timedelta, handling_time: dt.timedelta) -> float:
    """Offered traffic in Erlangs: the agents that would be busy if no call ever waited.

    >>> import datetime as dt
    >>> traffic_intensity(360, dt.timedelta(minutes=30), dt.timedelta(minutes=4))
    48.0
    """
    if (
        isinstance(calls, bool)
        or not isinstance(calls, (int, float))
        or not math.isfinite(calls)
        or calls < 0
    ):
        raise ValidationError(_RECORD, "calls", f"a forecast volume >= 0 is expected, got {calls!r}")
    return (
        calls
        * _seconds(handling_time, "handling_time", positive=True)
        / _seconds(period, "period", positive=True)
    )


def erlang_b(agents: int, traffic: float) -> float:
    """Erlang B: the share of calls blocked when ``agents`` serve ``traffic`` Erlangs with no queue.

    >>> round(erlang_b(2, 1.0), 4)
    0.2
    """
    agents, traffic = _check_agents(agents), _check_traffic(traffic)
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Erlang C: the probability that a call has to wait (1.0 when agents cannot keep up).

    >>> round(erlang_c(11, 10.0), 4)  # Call Centre Helper's first step: 68.21 %
    0.6821
    """
    agents, traffic = _check_agents(agents), _check_traffic(traffic)
    if traffic == 0:
        return 0.0
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def _sl(agents: int, traffic: float, pw: float, aht: float, threshold: float) -> float:
    if agents <= traffic:
        return 0.0
    return max(0.0, 1.0 - pw * math.exp(-(agents - traffic) * threshold / aht))


def _asa(agents: int, traffic: float, pw: float, aht: float) -> float:
    if agents <= traffic:
        return math.inf
    return pw * aht / (agents - traffic)


def service_level(agents: int, traffic: float, handling_time: dt.timedelta, within: dt.timedelta) -> float:
    """The share of calls answered within ``within``: ``1 - C·exp(-(N - A)·t / AHT)``.

    >>> import datetime as dt
    >>> round(service_level(14, 10.0, dt.timedelta(seconds=180), dt.timedelta(seconds=20)), 4)
    0.8884
    """
    aht = _seconds(handling_time, "handling_time", positive=True)
    threshold = _seconds(within, "within", positive=False)
    pw = erlang_c(agents, traffic)
    if traffic == 0:
        return 1.0
    return _sl(agents, float(traffic), pw, aht, threshold)


def average_speed_of_answer(agents: int, traffic: float, handling_time: dt.timedelta) -> float:
    """Average wait in seconds over all calls (ASA): ``C·AHT / (N - A)``; ``inf`` when N <= A.

    >>> import datetime as dt
    >>> round(average_speed_of_answer(14, 10.0, dt.timedelta(seconds=180)), 2)
    7.84
    """
    aht = _seconds(handling_time, "handling_time", positive=True)
    pw = erlang_c(agents, traffic)
    if traffic == 0:
        return 0.0
    return _asa(agents, float(traffic), pw, aht)


def occupancy(agents: int, traffic: float) -> float:
    """The share of their time the agents spend handling calls: ``A / N`` (at most 1).

    >>> occupancy(14, 10.0)
    0.7142857142857143
    """
    agents, traffic = _check_agents(agents), _check_traffic(traffic)
    if agents == 0:
        return 1.0 if traffic > 0 else 0.0
    return min(1.0, traffic / agents)


@attrs.frozen
class StaffingLevel:
    """What ``agents`` on the phones give for a forecast.

    :param agents: agents taking calls (after shrinkage).
    :param traffic: offered traffic in Erlangs.
    :param probability_of_wait: Erlang C, the chance a call waits at all.
    :param service_level: share answered within the threshold.
    :param asa_seconds: average speed of answer, seconds (``inf`` if agents cannot keep up).
    :param occupancy: share of agents' time spent on calls.
    """

    agents: int
    traffic: float
    probability_of_wait: float
    service_level: float
    asa_seconds: float
    occupancy: float

    @property
    def stable(self) -> bool:
        """True when there are more agents than Erlangs, so the queue does not grow without end."""
        return self.agents > self.traffic or self.traffic == 0


def _level(agents: int, traffic: float, b: float, aht: float, threshold: float) -> StaffingLevel:
    if traffic == 0:
        return StaffingLevel(agents, 0.0, 0.0, 1.0, 0.0, 0.0)
    pw = _c_from_b(agents, traffic, b)
    return StaffingLevel(
        agents=agents,
        traffic=traffic,
        probability_of_wait=pw,
        service_level=_sl(agents, traffic, pw, aht, threshold),
        asa_seconds=_asa(agents, traffic, pw, aht),
        occupancy=min(1.0, traffic / agents) if agents else 1.0,
    )


def staffing_levels(
    calls: float,
    period: dt.timedelta,
    handling_time: dt.timedelta,
    within: dt.timedelta,
    agents: range,
) -> tuple[StaffingLevel, ...]:
    """A :class:`StaffingLevel` for each number of agents in ``agents`` (a staffing table).

    >>> import datetime as dt
    >>> table = staffing_levels(100, dt.timedelta(minutes=30), dt.timedelta(seconds=180),
    ...                         dt.timedelta(seconds=20), range(11, 15))
    >>> [round(level.service_level, 2) for level in table]
    [0.39, 0.64, 0.8, 0.89]
    """
    traffic = traffic_intensity(calls, period, handling_time)
    aht = _seconds(handling_time, "handling_time", positive=True)
    threshold = _seconds(within, "within", positive=False)
    if not isinstance(agents, range) or agents.step <= 0 or agents.start < 0:
        raise ValidationError(_RECORD, "agents", "an increasing range of agent counts from 0 up is expected")
    wanted = set(agents)
    levels: list[StaffingLevel] = []
    if not wanted:
        return ()
    top = max(wanted)
    for n, b in enumerate(_erlang_b_steps(traffic)):
        if n in wanted:
            levels.append(_level(n, traffic, b, aht, threshold))
        if n >= top:
            break
    return tuple(levels)


@attrs.frozen
class StaffingPlan:
    """The answer of :func:`required_agents`.

    :param agents: agents needed on the phones at every moment of the interval.
    :param scheduled_agents: agents to schedule so that, after shrinkage
        (breaks, training, absence), ``agents`` are on the phones.
    :param level: what ``agents`` give (:class:`StaffingLevel`).
    :param shrinkage: the shrinkage used, as an exact fraction.
    """

    agents: int
    scheduled_agents: int
    level: StaffingLevel
    shrinkage: Fraction


def required_agents(
    calls: float,
    period: dt.timedelta,
    handling_time: dt.timedelta,
    *,
    target_share: float,
    within: dt.timedelta,
    shrinkage: float | Decimal | Fraction = 0,
    max_occupancy: float | None = None,
    max_asa: dt.timedelta | None = None,
) -> StaffingPlan:
    """The fewest agents that answer ``target_share`` of ``calls`` within ``within``.

    :param calls: forecast calls in ``period``.
    :param period: the forecast interval (usually 15 or 30 minutes).
    :param handling_time: average handling time (talk, hold and wrap-up).
    :param target_share: e.g. ``0.8`` for 80 %.
    :param within: the threshold, e.g. 60 seconds.
    :param shrinkage: share of paid time agents are not on the phones (0 to below 1).
    :param max_occupancy: optionally also keep occupancy at or below this share.
    :param max_asa: optionally also keep the average speed of answer at or below this.

    >>> import datetime as dt
    >>> required_agents(0, dt.timedelta(minutes=30), dt.timedelta(minutes=3),
    ...                 target_share=0.8, within=dt.timedelta(seconds=60)).agents
    0
    """
    traffic = traffic_intensity(calls, period, handling_time)
    aht = _seconds(handling_time, "handling_time", positive=True)
    threshold = _seconds(within, "within", positive=False)
    goal = float(_share(target_share, "target_share", below_one=True))
    shrink = _share(shrinkage, "shrinkage", below_one=True)
    occ_cap = None if max_occupancy is None else float(_share(max_occupancy, "max_occupancy"))
    if occ_cap == 0 and traffic > 0:
        raise ValidationError(_RECORD, "max_occupancy", "must be above 0 when calls are expected")
    asa_cap = None if max_asa is None else _seconds(max_asa, "max_asa", positive=False)
    if traffic == 0:
        return StaffingPlan(0, 0, StaffingLevel(0, 0.0, 0.0, 1.0, 0.0, 0.0), shrink)
    start = math.floor(traffic) + 1
    if start > _MAX_AGENTS:
        raise ValidationError(
            _RECORD, "calls", f"{traffic:.0f} Erlangs needs more than {_MAX_AGENTS} agents; check the units"
        )
    for n, b in enumerate(_erlang_b_steps(traffic)):
        if n < start:
            continue
        level = _level(n, traffic, b, aht, threshold)
        if (
            level.service_level >= goal
            and (occ_cap is None or level.occupancy <= occ_cap)
            and (asa_cap is None or level.asa_seconds <= asa_cap)
        ):
            scheduled = math.ceil(Fraction(n) / (1 - shrink))
            return StaffingPlan(n, scheduled, level, shrink)
        if n > _MAX_AGENTS:
            break
    raise ValidationError(_RECORD, "target_share", "no number of agents reaches the target; check the inputs")
