"""The SEPA (TARGET2) business-day calendar, due dates and cut-off days.

Interbank settlement of SEPA direct debits happens on TARGET days: every
weekday except New Year's Day, Good Friday, Easter Monday, 1 May and 25 and 26
December. The holidays come from the ``holidays`` package's financial ECB
calendar (``XECB``), not from a hand list.

A collection's **due date** (``ReqdColltnDt``) must be a TARGET day, at least
the pre-notification period after the notice went out, and late enough that the
file reaches the creditor's bank by its cut-off time the configured number of
TARGET days before it (SEPA Core: one day, D-1; many banks ask for more).

>>> import datetime as dt
>>> is_target_day(dt.date(2026, 4, 3)), is_target_day(dt.date(2026, 4, 7))
(False, True)
>>> add_target_days(dt.date(2026, 4, 2), 1)
datetime.date(2026, 4, 7)
>>> cal = CollectionCalendar(lead_days=1, cut_off=dt.time(15, 0), zone="Europe/Berlin")
>>> cal.earliest_due_date(dt.datetime(2026, 3, 20, 9, tzinfo=dt.timezone.utc), notice_days=14)
datetime.date(2026, 4, 7)
>>> cal.submission_deadline(dt.date(2026, 4, 7))
datetime.datetime(2026, 4, 2, 15, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin'))
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import attrs
import holidays
from carecollect.errors import ValidationError
from carecollect.timekeeping import require_aware

__all__ = ["CollectionCalendar", "add_target_days", "is_target_day", "next_target_day", "target_holidays"]


@functools.lru_cache(maxsize=64)
def target_holidays(year: int) -> frozenset[dt.date]:
    """The TARGET2 closing days of ``year`` (weekdays only; weekends are closed anyway)."""
    return frozenset(holidays.financial_holidays("XECB", years=year))


def is_target_day(day: dt.date) -> bool:
    """Whether TARGET2 settles on ``day``."""
    return day.weekday() < 5 and day not in target_holidays(day.year)


def next_target_day(day: dt.date) -> dt.date:
    """``day`` itself if it is a TARGET day, else the next one."""
    while not is_target_day(day):
        day += dt.timedelta(days=1)
    return day


def add_target_days(day: dt.date, days: int) -> dt.date:
    """The TARGET day ``days`` TARGET days after (or, when negative, before) ``day``."""
    step = dt.timedelta(days=1 if days >= 0 else -1)
    left = abs(days)
    while left:
        day += step
        if is_target_day(day):
            left -= 1
    return day


def _zone(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "CollectionCalendar", attribute.name, "an IANA time zone, e.g. Europe/Berlin"
        ) from None


@attrs.frozen
class CollectionCalendar:
    """The creditor bank's submission rules.

    :param lead_days: TARGET days between the file reaching the bank and the due date (SEPA Core: 1).
    :param cut_off: the bank's daily cut-off time in ``zone``; a later file counts from the next TARGET day.
    :param zone: the bank's time zone.
    :param max_days_ahead: how many calendar days ahead of the due date the bank accepts a file (14).
    """

    lead_days: int = 1
    cut_off: dt.time = dt.time(15, 0)
    zone: str = attrs.field(default="Europe/Berlin", validator=_zone)
    max_days_ahead: int = 14

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.lead_days <= 10:
            raise ValidationError(
                "CollectionCalendar", "lead_days", "1-10 TARGET days (SEPA Core needs at least 1)"
            )

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The bank's time zone."""
        return zoneinfo.ZoneInfo(self.zone)

    def submission_day(self, now: dt.datetime) -> dt.date:
        """The TARGET day a file handed over at ``now`` counts for (after the cut-off: the next one)."""
        require_aware(now, "CollectionCalendar", "now")
        local = now.astimezone(self.tz)
        day = local.date()
        if not is_target_day(day) or local.time() >= self.cut_off:
            day = next_target_day(day + dt.timedelta(days=1))
        return day

    def earliest_due_date(self, now: dt.datetime, *, notice_days: int) -> dt.date:
        """The earliest due date for a debit announced at ``now`` with ``notice_days`` of notice.

        At least ``notice_days`` calendar days after today (in the bank's zone), at least
        ``lead_days`` TARGET days after the file can reach the bank, and a TARGET day.
        """
        today = now.astimezone(self.tz).date()
        by_notice = today + dt.timedelta(days=notice_days)
        by_bank = add_target_days(self.submission_day(now), self.lead_days)
        return next_target_day(max(by_notice, by_bank))

    def submission_deadline(self, due: dt.date) -> dt.datetime:
        """The last moment the file for ``due`` may reach the bank (cut-off, ``lead_days`` before)."""
        return dt.datetime.combine(add_target_days(due, -self.lead_days), self.cut_off, tzinfo=self.tz)

    def may_submit(self, due: dt.date, now: dt.datetime) -> bool:
        """Whether a collection due on ``due`` goes into a file made at ``now`` (not too early, not late)."""
        local = now.astimezone(self.tz)
        return due - local.date() <= dt.timedelta(
            days=self.max_days_ahead
        ) and now <= self.submission_deadline(due)
