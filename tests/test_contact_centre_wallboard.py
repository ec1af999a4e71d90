"""The wallboard snapshot and the daily report."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import attrs
import pytest

from carecollect.calendars import BusinessCalendar
from carecollect.contact_centre import (
    Agent,
    AnswerTimeTarget,
    Competence,
    ContactChannel,
    ContactOutcome,
    ContactRecord,
    Direction,
    HomeChannel,
    ResponseTarget,
    Topic,
    daily_contact_centre_report,
    wallboard_snapshot,
)
from carecollect.errors import ValidationError

OSLO = ZoneInfo("Europe/Oslo")
DAY = dt.date(2026, 3, 3)
S = dt.timedelta(seconds=1)
PHONE = AnswerTimeTarget("phone-general", share=0.8, within=60 * S)
MAIL = ResponseTarget(
    "email-general", business_days=1, calendar=BusinessCalendar.for_country("NO"), tz="Europe/Oslo"
)


def at(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=OSLO)


def answered_call(cid: str, start: dt.datetime, wait: int) -> ContactRecord:
    return ContactRecord(
        cid,
        "A-1",
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.OTHER,
        start,
        answered_at=start + wait * S,
        ended_at=start + (wait + 240) * S,
        outcome=ContactOutcome.CONVERSATION,
        queue="phone-general",
    )


def records() -> list[ContactRecord]:
    return [
        answered_call("C1", at(8, 0), 20),
        answered_call("C2", at(9, 0), 90),
        answered_call("C3", at(10, 0), 10),
        answered_call("Y1", at(16, 0, day=DAY - dt.timedelta(days=1)), 200),  # yesterday: not today
        ContactRecord(
            "C4",
            "A-2",
            ContactChannel.PHONE,
            Direction.INBOUND,
            Topic.OTHER,
            at(10, 59, 0),
            queue="phone-general",
        ),  # waiting at 11:00
        ContactRecord(
            "C5",
            "A-3",
            ContactChannel.PHONE,
            Direction.INBOUND,
            Topic.OTHER,
            at(10, 30),
            ended_at=at(10, 32),
            outcome=ContactOutcome.ABANDONED,
            queue="phone-general",
        ),
        ContactRecord(
            "E1",
            "A-4",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.OTHER,
            at(15, 0, day=DAY - dt.timedelta(days=2)),
            queue="email-general",
        ),  # Sunday 1 March -> due end of Tuesday 3 March
        ContactRecord(
            "E2",
            "A-5",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.OTHER,
            at(9, 0),
            answered_at=at(13, 0),
            outcome=ContactOutcome.ANSWERED,
            queue="email-general",
        ),
        ContactRecord(
            "C6",
            "A-6",
            ContactChannel.PHONE,
            Direction.INBOUND,
            Topic.OTHER,
            at(23, 59, 59),
            answered_at=at(0, 0, 5, day=DAY + dt.timedelta(days=1)),
            ended_at=at(0, 5, day=DAY + dt.timedelta(days=1)),
            outcome=ContactOutcome.CONVERSATION,
            queue="phone-general",
        ),
    ]


def test_wallboard_at_eleven() -> None:
    agents = [
        Agent("P-1", {"phone-general": Competence.A}),
        Agent("P-2", {"phone-general": Competence.B}, available=False),
        Agent(
            "E-1", {"email-general": Competence.A, "phone-general": Competence.C}, home=HomeChannel.WRITTEN
        ),
    ]
    board = wallboard_snapshot(records(), agents, [PHONE, MAIL], at(11, 0), "Europe/Oslo")
    phone = board.tile("phone-general")
    assert (phone.waiting, phone.longest_wait, phone.agents_free) == (1, 60 * S, 2)
    # today so far: C1 in target, C2 late, C3 in target, C5 abandoned; C4 waiting exactly 60 s counts as late
    assert (phone.offered_today, phone.abandoned_today) == (4 + 1, 1)
    assert phone.service_level_today == pytest.approx(2 / 5)
    mail = board.tile("email-general")
    assert (mail.waiting, mail.agents_free, mail.past_deadline) == (2, 1, 0)  # E2 is answered at 13:00
    assert mail.longest_wait == dt.timedelta(days=1, hours=20)
    assert board.as_dict()["queues"][0]["longest_wait_seconds"] == 60  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        board.at = at(12)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="no queue"):
        board.tile("phone-disputes")


def test_daily_report_counts_the_local_day() -> None:
    report = daily_contact_centre_report(records(), DAY, "Europe/Oslo", [PHONE, MAIL])
    phone, mail = report.queues
    assert report.at == at(0, 0, day=DAY + dt.timedelta(days=1))
    # C1..C5 and C6 (arrived 23:59:59, answered after midnight, so still waiting at the report's end)
    assert (phone.offered, phone.answered, phone.answered_in_target, phone.abandoned) == (6, 3, 2, 1)
    assert phone.service_level == pytest.approx(2 / 5)  # C4 never answered: a miss; C6 not yet decided
    assert phone.average_speed_of_answer == dt.timedelta(seconds=40)
    assert (mail.offered, mail.answered, mail.answered_in_target, mail.waiting, mail.past_deadline) == (
        1,
        1,
        1,
        1,
        1,
    )
    text = report.as_text()
    assert text.splitlines()[0] == "Contact centre, 2026-03-03 (Europe/Oslo)"
    assert "phone-general" in text
    assert "40.0 %" in text
    data = report.as_dict()
    assert data["offered"] == 7
    assert data["day"] == "2026-03-03"


def test_daily_report_so_far() -> None:
    report = daily_contact_centre_report(records(), DAY, "Europe/Oslo", [PHONE], now=at(9, 30))
    assert report.at == at(9, 30)
    assert report.queues[0].offered == 2


def test_one_target_per_queue_and_dates_only() -> None:
    with pytest.raises(ValidationError, match="two targets"):
        daily_contact_centre_report([], DAY, "Europe/Oslo", [PHONE, PHONE])
    with pytest.raises(ValidationError, match="day"):
        daily_contact_centre_report([], at(0), "Europe/Oslo", [PHONE])  # type: ignore[arg-type]
