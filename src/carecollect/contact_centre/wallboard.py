"""The wallboard feed and the day's report.

:func:`wallboard_snapshot` freezes what the big screens in the contact
centre show for every queue: how many are waiting, the longest wait, how
many agents are free, and the service level so far today.
:func:`daily_contact_centre_report` computes a day's figures for a report
(the ``carecollect report`` command will call it) with a plain-text and a
dict rendering.

>>> import datetime as dt
>>> from carecollect.contact_centre import AnswerTimeTarget
>>> now = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
>>> board = wallboard_snapshot([], [], [AnswerTimeTarget("phone-general")], now, "Europe/Oslo")
>>> board.tiles[0].waiting, board.tiles[0].service_level_today
(0, None)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import attrs

from ..errors import ValidationError
from ..timekeeping import require_aware, require_date, zone
from .records import ContactRecord, ContactState, Direction
from .routing import Agent
from .service_levels import QueueFigures, Target, measure

__all__ = ["DailyReport", "QueueTile", "Wallboard", "daily_contact_centre_report", "wallboard_snapshot"]


def _check_targets(targets: Sequence[Target]) -> None:
    seen: set[str] = set()
    for target in targets:
        if target.queue in seen:
            raise ValidationError(
                f"Target {target.queue}", "queue", "two targets for one queue; give one per queue"
            )
        seen.add(target.queue)


def _start_of_day(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone(tz))


@attrs.frozen
class QueueTile:
    """One queue on the wallboard.

    :param queue: the queue.
    :param waiting: contacts waiting now.
    :param longest_wait: the longest wait of a contact waiting now.
    :param agents_free: available agents who take this queue.
    :param service_level_today: service level since local midnight (``None`` before any counts).
    :param target_share: the target's share.
    :param offered_today: contacts offered since local midnight.
    :param abandoned_today: calls abandoned since local midnight.
    :param past_deadline: waiting contacts already past their target.
    """

    queue: str
    waiting: int
    longest_wait: dt.timedelta
    agents_free: int
    service_level_today: float | None
    target_share: float
    offered_today: int
    abandoned_today: int
    past_deadline: int

    def as_dict(self) -> dict[str, object]:
        """Plain values for a vendor's screen: waits in whole seconds."""
        return {
            "queue": self.queue,
            "waiting": self.waiting,
            "longest_wait_seconds": int(self.longest_wait.total_seconds()),
            "agents_free": self.agents_free,
            "service_level_today": self.service_level_today,
            "target_share": self.target_share,
            "offered_today": self.offered_today,
            "abandoned_today": self.abandoned_today,
            "past_deadline": self.past_deadline,
        }


@attrs.frozen
class Wallboard:
    """A frozen snapshot of every queue at ``at``."""

    at: dt.datetime
    tiles: tuple[QueueTile, ...]

    def tile(self, queue: str) -> QueueTile:
        """The tile of ``queue``; raises :class:`~carecollect.errors.ValidationError` if absent."""
        for tile in self.tiles:
            if tile.queue == queue:
                return tile
        raise ValidationError("Wallboard", "queue", f"no queue named {queue!r} on this wallboard")

    def as_dict(self) -> dict[str, object]:
        """The snapshot as plain values (for JSON)."""
        return {"at": self.at.isoformat(), "queues": [tile.as_dict() for tile in self.tiles]}


def wallboard_snapshot(
    records: Iterable[ContactRecord],
    agents: Iterable[Agent],
    targets: Sequence[Target],
    now: dt.datetime,
    tz: str,
) -> Wallboard:
    """What the wallboard shows at ``now``: one tile per target, in the order given.

    "Today" is the local date of ``now`` in ``tz`` (the centre's time zone).
    A contact waiting since yesterday still counts as waiting.
    """
    require_aware(now, "Wallboard", "now")
    _check_targets(targets)
    since = _start_of_day(now.astimezone(zone(tz)).date(), tz)
    records = tuple(records)
    agents = tuple(agents)
    tiles = []
    for target in targets:
        figures = measure(records, target, now, since=since)
        oldest = dt.timedelta(0)
        for record in records:
            if (
                record.queue == target.queue
                and record.direction is Direction.INBOUND
                and record.state_at(now) is ContactState.WAITING
            ):
                oldest = max(oldest, now - record.started_at)
        free = sum(1 for a in agents if a.available and a.competence(target.queue) is not None)
        tiles.append(
            QueueTile(
                queue=target.queue,
                waiting=figures.waiting,
                longest_wait=oldest,
                agents_free=free,
                service_level_today=figures.service_level,
                target_share=figures.target_share,
                offered_today=figures.offered,
                abandoned_today=figures.abandoned,
                past_deadline=figures.past_deadline,
            )
        )
    return Wallboard(at=now, tiles=tuple(tiles))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


@attrs.frozen
class DailyReport:
    """The figures of one day, one :class:`~carecollect.contact_centre.QueueFigures` per queue.

    :param day: the local date reported.
    :param tz: the time zone that defines the day.
    :param at: the instant the figures were taken (end of the day, or earlier for a day in progress).
    :param queues: the figures per queue.
    """

    day: dt.date
    tz: str
    at: dt.datetime
    queues: tuple[QueueFigures, ...]

    @property
    def offered(self) -> int:
        """Contacts offered to all queues that day."""
        return sum(q.offered for q in self.queues)

    @property
    def answered(self) -> int:
        """Contacts answered across all queues."""
        return sum(q.answered for q in self.queues)

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON."""
        return {
            "day": self.day.isoformat(),
            "tz": self.tz,
            "at": self.at.isoformat(),
            "offered": self.offered,
            "answered": self.answered,
            "queues": [q.as_dict() for q in self.queues],
        }

    def as_text(self) -> str:
        """A plain-text table, one line per queue.

        >>> import datetime as dt
        >>> from carecollect.contact_centre import AnswerTimeTarget
        >>> report = daily_contact_centre_report([], dt.date(2026, 3, 2), "Europe/Oslo",
        ...                                      [AnswerTimeTarget("phone-general")])
        >>> print(report.as_text())
        Contact centre, 2026-03-02 (Europe/Oslo)
        queue                offered answered  in target  service level  target   ASA (s) abandoned  backlog late
        phone-general              0        0          0              -  80.0 %         -         0        0    0
        """
        lines = [
            f"Contact centre, {self.day.isoformat()} ({self.tz})",
            f"{'queue':<20} {'offered':>7} {'answered':>8} {'in target':>10} {'service level':>14} "
            f"{'target':>7} {'ASA (s)':>9} {'abandoned':>9} {'backlog':>8} {'late':>4}",
        ]
        for q in self.queues:
            asa = (
                "-"
                if q.average_speed_of_answer is None
                else f"{q.average_speed_of_answer.total_seconds():.0f}"
            )
            lines.append(
                f"{q.queue:<20} {q.offered:>7} {q.answered:>8} {q.answered_in_target:>10} "
                f"{_pct(q.service_level):>14} {_pct(q.target_share):>7} {asa:>9} {q.abandoned:>9} "
                f"{q.waiting:>8} {q.past_deadline:>4}"
            )
        return "\n".join(lines)


def daily_contact_centre_report(
    records: Iterable[ContactRecord],
    day: dt.date,
    tz: str,
    targets: Sequence[Target],
    *,
    now: dt.datetime | None = None,
) -> DailyReport:
    """The figures of ``day`` (local to ``tz``) for every queue in ``targets``.

    Contacts that arrived that day are offered; the figures are taken at the
    end of the day, or at ``now`` if that is earlier (a report of the day so
    far). The backlog counts every contact still waiting at that instant.
    """
    day = require_date(day, "DailyReport", "day")
    _check_targets(targets)
    start = _start_of_day(day, tz)
    end = _start_of_day(day + dt.timedelta(days=1), tz)
    at = end
    if now is not None:
        require_aware(now, "DailyReport", "now")
        at = min(now, end)
    records = tuple(r for r in records if r.started_at < end)
    return DailyReport(
        day=day,
        tz=tz,
        at=at,
        queues=tuple(measure(records, target, at, since=start) for target in targets),
    )
