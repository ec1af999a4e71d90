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

import babel.dates
import pendulum

from .errors import NaiveDatetime, ValidationError

__all__ = ["describe_interval", "local_date", "parse_instant", "require_aware", "require_date", "zone"]


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
    """The IANA time zone ``name``; raises :class:`ValidationError` if unknown.

    A name the operating system cannot even look up (far too long, a NUL
    character) is unknown too: the error never carries the zone database's path.

    >>> zone("x" * 5000)
    Traceback (most recent call last):
    ...
    carecollect.errors.ValidationError: TimeZone: field 'name': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is not an IANA time zone
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ValidationError("TimeZone", "name", f"{shown!r} is not an IANA time zone") from None


def local_date(instant: dt.datetime, tz: str) -> dt.date:
    """The calendar date of an aware ``instant`` in time zone ``tz``."""
    require_aware(instant, "instant", "instant")
    return instant.astimezone(zone(tz)).date()


# -- the edges: pendulum for people, the standard library for the core ------------------------
# pendulum parses every ISO 8601 form (week and ordinal dates too) and speaks the patients'
# languages; its objects are much slower per operation than datetime's, so the core never
# keeps them: these functions hand back plain, aware datetimes.


def parse_instant(text: str, *, field: str = "instant") -> dt.datetime:
    """Parse an ISO 8601 instant that states its UTC offset, into a plain aware datetime.

    >>> parse_instant("2026-03-02T09:30+01:00").isoformat()
    '2026-03-02T09:30:00+01:00'
    >>> parse_instant("2026-W10-1T08:00Z").isoformat()  # a week date: Monday of week 10
    '2026-03-02T08:00:00+00:00'
    >>> parse_instant("2026-03-02T09:30")
    Traceback (most recent call last):
    ...
    carecollect.errors.NaiveDatetime: instant: field 'instant': '2026-03-02T09:30' states no UTC offset; add one, e.g. '2026-03-02T09:30+00:00'

    :raises NaiveDatetime: the text has no offset.
    :raises ValidationError: the text is not an ISO 8601 date-time.
    """
    try:
        parsed = pendulum.parse(text.strip(), tz=None, strict=True)
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise ValidationError("instant", field, f"{text!r} is not an ISO 8601 date-time") from None
    if not isinstance(parsed, dt.datetime):
        raise ValidationError("instant", field, f"{text!r} is a date or a duration, not a date-time")
    if parsed.tzinfo is None:
        raise NaiveDatetime(
            "instant", field, f"{text!r} states no UTC offset; add one, e.g. '{text.strip()}+00:00'"
        )
    return dt.datetime.fromisoformat(parsed.isoformat())


def describe_interval(target: dt.datetime, now: dt.datetime, language: str) -> str:
    """How far ``target`` is from ``now``, in words for staff screens and messages (Babel's CLDR data).

    >>> t0 = dt.datetime(2026, 3, 4, 9, tzinfo=dt.timezone.utc)
    >>> [describe_interval(t0 + dt.timedelta(days=6), t0, lang) for lang in ("en", "de", "nb", "bg")]
    ['in 6 days', 'in 6 Tagen', 'om 6 døgn', 'след 6 дни']
    >>> describe_interval(t0, t0 + dt.timedelta(hours=3), "de")
    'vor 3 Stunden'
    """
    require_aware(target, "interval", "target")
    require_aware(now, "interval", "now")
    return str(babel.dates.format_timedelta(target - now, add_direction=True, threshold=1.0, locale=language))
