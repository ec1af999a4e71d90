"""Time rules of carecollect: instants are aware, dates are dates, the clock is passed in.

Nothing in the core reads the clock. Every function that needs "now" takes
it as an argument; :func:`require_aware` is the guard constructors use.

>>> import datetime as dt
>>> from carecollect.timekeeping import require_aware, local_date
>>> require_aware(dt.datetime(2026, 3, 1, 9, 0), "Payment P-1", "received_at")
Traceback (most recent call last):
...
carecollect.errors.NaiveDatetime: Payment P-1: field 'received_at': a time zone is required (a naive datetime is ambiguous); pass e.g. datetime(..., tzinfo=ZoneInfo('Europe/Oslo'))
>>> local_date(dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone.utc), "Europe/Oslo")
datetime.date(2026, 3, 2)
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import NaiveDatetime, ValidationError

__all__ = ["local_date", "require_aware", "require_date", "zone"]


def require_aware(value: object, record: str, field: str) -> dt.datetime:
    """Return ``value`` if it is a datetime with a time zone, else raise :class:`NaiveDatetime`."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(record, field, f"a datetime is expected, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetime(
            record,
            field,
            "a time zone is required (a naive datetime is ambiguous); "
            "pass e.g. datetime(..., tzinfo=ZoneInfo('Europe/Oslo'))",
        )
    return value


def require_date(value: object, record: str, field: str) -> dt.date:
    """Return ``value`` if it is a plain date (not a datetime), else raise."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError(
            record, field, f"a date (not a datetime) is expected, got {type(value).__name__}"
        )
    return value


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises :class:`ValidationError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("TimeZone", "name", f"{name!r} is not an IANA time zone") from None


def local_date(instant: dt.datetime, tz: str) -> dt.date:
    """The calendar date of an aware ``instant`` in time zone ``tz``."""
    require_aware(instant, "instant", "instant")
    return instant.astimezone(zone(tz)).date()
