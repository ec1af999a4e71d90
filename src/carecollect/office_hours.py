"""When a creditor's office answers the phone: :class:`OfficeHours`.

Each creditor of an installation has its own hours (``[creditors.<id>.hours]`` in the
settings file); messages say them in the patient's language, and the patient pages show
them in the patient's own time zone.

>>> import datetime as dt
>>> hours = OfficeHours.parse("Mon-Fri 08:00-16:00; Thu 08:00-18:00", time_zone="Europe/Oslo", holidays="NO")
>>> hours.on(dt.date(2026, 3, 5))  # a Thursday
(datetime.time(8, 0), datetime.time(18, 0))
>>> hours.on(dt.date(2026, 5, 1)) is None  # Labour Day: a public holiday in Norway
True
>>> hours.describe("en_GB")
'Mon–Wed, Fri 08:00–16:00; Thu 08:00–18:00'
>>> hours.describe("en_US")
'Mon–Wed, Fri 8:00 AM–4:00 PM; Thu 8:00 AM–6:00 PM'
>>> hours.describe("nb")
'man.–ons., fre. 08:00–16:00; tor. 08:00–18:00'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import attrs

from .calendars import BusinessCalendar
from .errors import ValidationError
from .timekeeping import zone

__all__ = ["OfficeHours"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(
    r"^\s*([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$"
)


def _time(hour: str, minute: str, spec: str) -> dt.time:
    h, m = int(hour), int(minute)
    if h == 24 and m == 0:
        return dt.time(23, 59)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValidationError(
            "OfficeHours", "days", f"{spec.strip()!r}: {hour}:{minute} is not a time of day"
        )
    return dt.time(h, m)


def _week(value: Mapping[int, tuple[dt.time, dt.time]]) -> dict[int, tuple[dt.time, dt.time]]:
    return dict(sorted(value.items()))


def _check_week(
    instance: OfficeHours,
    attribute: attrs.Attribute[Mapping[int, tuple[dt.time, dt.time]]],
    value: Mapping[int, tuple[dt.time, dt.time]],
) -> None:
    for day, (opens, closes) in value.items():
        if day not in range(1, 8):
            raise ValidationError(
                "OfficeHours", "week", f"{day} is not an ISO weekday (1 = Monday ... 7 = Sunday)"
            )
        if not opens < closes:
            raise ValidationError(
                "OfficeHours", "week", f"on day {day} the office closes ({closes}) before it opens ({opens})"
            )


@attrs.frozen
class OfficeHours:
    """When the phone is answered: ``opens``–``closes`` on ``weekdays`` in ``time_zone``, with
    days of their own in ``week`` and closed on the public holidays of ``holidays``.

    :param opens: local opening time on ``weekdays``.
    :param closes: local closing time on ``weekdays``.
    :param time_zone: the office's IANA zone.
    :param weekdays: ISO weekdays (1 = Monday) the phone is answered at ``opens``–``closes``.
    :param week: ISO weekday -> its own ``(opens, closes)`` (a late Thursday, a Saturday
        morning); these days are open whether or not ``weekdays`` lists them.
    :param holidays: ISO country code whose public holidays close the office (``None``: open on
        holidays that fall on an open weekday).
    """

    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(16, 0)
    time_zone: str = "Europe/Oslo"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    week: Mapping[int, tuple[dt.time, dt.time]] = attrs.field(
        factory=dict, converter=_week, validator=_check_week
    )
    holidays: str | None = None

    def __attrs_post_init__(self) -> None:
        zone(self.time_zone)  # an unknown zone is refused here, not when a page is shown
        if not self.opens < self.closes:
            raise ValidationError(
                "OfficeHours", "closes", f"closes ({self.closes}) before it opens ({self.opens})"
            )
        if any(d not in range(1, 8) for d in self.weekdays):
            raise ValidationError("OfficeHours", "weekdays", "ISO weekdays (1 = Monday ... 7 = Sunday)")
        if self.holidays is not None:
            try:
                BusinessCalendar.for_country(self.holidays)
            except ValidationError:
                raise ValidationError(
                    "OfficeHours", "holidays", f"{self.holidays!r} is not a country with a holiday calendar"
                ) from None

    @classmethod
    def parse(cls, days: str, *, time_zone: str, holidays: str | None = None) -> OfficeHours:
        """Hours from a line such as ``"Mon-Fri 08:00-16:00; Thu 08:00-18:00; Sat 09:00-12:00"``.

        Spans are separated by ``;`` or ``,``; a later span overrides an earlier one for its days.

        :param days: the spans.
        :param time_zone: the office's IANA zone.
        :param holidays: ISO country whose public holidays close the office (``None`` or ``""``: none).
        :raises ValidationError: a span that is not ``Day[-Day] HH:MM-HH:MM``, an unknown day, a
            closing time before the opening time, an unknown zone or country.
        """
        week: dict[int, tuple[dt.time, dt.time]] = {}
        spans = [s for s in re.split(r"[;,]", days) if s.strip()]
        if not spans:
            raise ValidationError("OfficeHours", "days", 'name at least one span, e.g. "Mon-Fri 08:00-16:00"')
        for spec in spans:
            m = _SPAN.match(spec)
            if m is None:
                raise ValidationError(
                    "OfficeHours", "days", f"{spec.strip()!r} is not like 'Mon-Fri 08:00-16:00'"
                )
            first, last = m.group(1).lower(), (m.group(2) or m.group(1)).lower()
            for name in (first, last):
                if name not in _DAYS:
                    raise ValidationError(
                        "OfficeHours",
                        "days",
                        f"{spec.strip()!r}: {name!r} is not a day (Mon Tue Wed Thu Fri Sat Sun)",
                    )
            a, b = _DAYS.index(first), _DAYS.index(last)
            if b < a:
                raise ValidationError("OfficeHours", "days", f"{spec.strip()!r}: the days run backwards")
            opens, closes = _time(m.group(3), m.group(4), spec), _time(m.group(5), m.group(6), spec)
            if not opens < closes:
                raise ValidationError("OfficeHours", "days", f"{spec.strip()!r}: closes before it opens")
            for d in range(a + 1, b + 2):
                week[d] = (opens, closes)
        # the commonest span is the default; the rest are days of their own
        counts: dict[tuple[dt.time, dt.time], int] = {}
        for span in week.values():
            counts[span] = counts.get(span, 0) + 1
        common = max(counts, key=lambda s: (counts[s], -min(d for d, v in week.items() if v == s)))
        return cls(
            opens=common[0],
            closes=common[1],
            time_zone=time_zone,
            weekdays=tuple(d for d, v in week.items() if v == common),
            week={d: v for d, v in week.items() if v != common},
            holidays=holidays.upper() if holidays else None,
        )

    def schedule(self) -> dict[int, tuple[dt.time, dt.time]]:
        """ISO weekday -> ``(opens, closes)`` for every day the office is open."""
        out = dict.fromkeys(self.weekdays, (self.opens, self.closes))
        out.update(self.week)
        return dict(sorted(out.items()))

    def on(self, day: dt.date) -> tuple[dt.time, dt.time] | None:
        """``(opens, closes)`` on ``day`` in the office's zone; ``None``: closed."""
        if self.holidays is not None and BusinessCalendar.for_country(self.holidays).is_holiday(day):
            return None
        return self.schedule().get(day.isoweekday())

    def is_open(self, at: dt.datetime) -> bool:
        """Whether the phone is answered at the instant ``at`` (aware)."""
        local = at.astimezone(zone(self.time_zone))
        span = self.on(local.date())
        return span is not None and span[0] <= local.time().replace(tzinfo=None) < span[1]

    def describe(self, language: str, *, in_zone: str | None = None, on: dt.date | None = None) -> str:
        """The week in ``language``: days (abbreviated, grouped when consecutive) and hours.

        :param language: ``en``, ``de``, ``nb``, ``bg`` or a locale (``en_GB``): day names and
            the clock (``8:00 AM`` in English, ``08:00`` in German and Norwegian).
        :param in_zone: show the times in this zone (the patient's), converted on ``on``.
        :param on: the date whose offsets convert the times (default: 2026-01-05, a Monday;
            pass today's date so summer time is right).
        """
        from babel.dates import format_time, get_day_names

        names = get_day_names("abbreviated", locale=language)  # 0 = Monday
        office = zone(self.time_zone)
        day = on or dt.date(2026, 1, 5)

        def clock(t: dt.time) -> str:
            if in_zone is not None:
                t = dt.datetime.combine(day, t, tzinfo=office).astimezone(zone(in_zone)).time()
            return str(format_time(t, "short", locale=language)).replace("\u202f", " ")

        groups: dict[tuple[dt.time, dt.time], list[int]] = {}
        for d, span in self.schedule().items():
            groups.setdefault(span, []).append(d)
        parts = []
        for span, days in groups.items():
            runs: list[list[int]] = []
            for d in days:
                if runs and runs[-1][-1] == d - 1:
                    runs[-1].append(d)
                else:
                    runs.append([d])
            label = ", ".join(
                names[r[0] - 1]
                if len(r) == 1
                else f"{names[r[0] - 1]}–{names[r[-1] - 1]}"
                if len(r) > 2
                else f"{names[r[0] - 1]}, {names[r[-1] - 1]}"
                for r in runs
            )
            parts.append(f"{label} {clock(span[0])}–{clock(span[1])}")
        return "; ".join(parts)
