"""Business days from real holiday calendars.

:class:`BusinessCalendar` wraps the `holidays <https://pypi.org/project/holidays/>`_
package behind one small, frozen type. It answers whether a date is a
business day and adds or counts business days, for any country the package
knows; carecollect's packs use ``US``, ``NO``, ``DE`` and ``BG``.

>>> import datetime as dt
>>> from carecollect.calendars import BusinessCalendar
>>> norway = BusinessCalendar.for_country("NO")
>>> norway.is_business_day(dt.date(2026, 5, 17))  # Constitution Day (a Sunday too)
False
>>> norway.add_business_days(dt.date(2026, 4, 1), 1)  # Easter: Thu, Fri and Mon are holidays
datetime.date(2026, 4, 7)
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import attrs
import holidays

from .errors import ValidationError

__all__ = ["BusinessCalendar"]


@cache
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    cal = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(cal.keys())


def _check_country(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in holidays.list_supported_countries():
        raise ValidationError("BusinessCalendar", "country", f"{value!r} has no holiday calendar")


def _check_weekend(
    instance: object, attribute: attrs.Attribute[frozenset[int]], value: frozenset[int]
) -> None:
    if not value <= frozenset(range(7)) or len(value) >= 7:
        raise ValidationError(
            "BusinessCalendar", "weekend", "weekday numbers 0-6 (Monday is 0), not all seven"
        )


@attrs.frozen
class BusinessCalendar:
    """Business days of one country (and optionally one subdivision).

    :param country: ISO 3166-1 alpha-2 code, e.g. ``"DE"``.
    :param subdivision: a state or region where holidays differ (``"BY"`` for
        Bavaria), or ``None`` for the national holidays only.
    :param weekend: weekday numbers that are never business days
        (Monday is 0; default Saturday and Sunday).
    """

    country: str = attrs.field(validator=_check_country)
    subdivision: str | None = None
    weekend: frozenset[int] = attrs.field(
        default=frozenset({5, 6}), converter=frozenset, validator=_check_weekend
    )

    @classmethod
    def for_country(cls, country: str, subdivision: str | None = None) -> BusinessCalendar:
        """The calendar of ``country`` with a Saturday-Sunday weekend."""
        return cls(country=country.upper(), subdivision=subdivision)

    def holidays_in(self, year: int) -> frozenset[dt.date]:
        """Public holidays of ``year``."""
        return _holiday_dates(self.country, self.subdivision, year)

    def is_holiday(self, day: dt.date) -> bool:
        """True when ``day`` is a public holiday."""
        return _as_date(day) in _holiday_dates(self.country, self.subdivision, day.year)

    def is_business_day(self, day: dt.date) -> bool:
        """True when ``day`` is neither a weekend day nor a public holiday."""
        day = _as_date(day)
        return day.weekday() not in self.weekend and not self.is_holiday(day)

    def roll_forward(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a business day, else the next one."""
        day = _as_date(day)
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_business_days(self, day: dt.date, count: int) -> dt.date:
        """The date ``count`` business days after ``day`` (before, if negative).

        ``day`` itself is not counted, so adding 1 to a Friday gives the
        next Monday (when that is not a holiday).
        """
        day = _as_date(day)
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        while remaining:
            day += dt.timedelta(days=step)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """Business days after ``start`` up to and including ``end`` (negative if ``end`` is earlier)."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            return -self.business_days_between(end, start)
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_business_day(day):
                count += 1
        return count


def _as_date(day: dt.date) -> dt.date:
    if isinstance(day, dt.datetime):
        raise ValidationError(
            "BusinessCalendar",
            "day",
            "a date is expected, not a datetime; convert in the patient's time zone first",
        )
    if not isinstance(day, dt.date):
        raise ValidationError("BusinessCalendar", "day", f"a date is expected, got {type(day).__name__}")
    return dt.date(day.year, day.month, day.day)
