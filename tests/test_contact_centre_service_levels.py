"""Service-level figures from contact records, and business-day deadlines in NO, DE, US and BG."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.calendars import BusinessCalendar
from carecollect.contact_centre import (
    AbandonRule,
    AnswerTimeTarget,
    ContactChannel,
    ContactOutcome,
    ContactRecord,
    Direction,
    ResponseTarget,
    Topic,
    measure,
    response_deadline,
)
from carecollect.errors import NaiveDatetime, ValidationError

OSLO = ZoneInfo("Europe/Oslo")
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=OSLO)  # a Monday
S = dt.timedelta(seconds=1)
PHONE = AnswerTimeTarget("phone-general", share=0.8, within=60 * S)


def call(
    cid: str, arrive: int, answer: int | None = None, end: int | None = None, *, abandoned: bool = False
):
    start = T0 + arrive * S
    if abandoned:
        assert end is not None
        return ContactRecord(
            cid,
            "A-1",
            ContactChannel.PHONE,
            Direction.INBOUND,
            Topic.OTHER,
            start,
            ended_at=start + end * S,
            outcome=ContactOutcome.ABANDONED,
            queue="phone-general",
        )
    if answer is None:
        return ContactRecord(
            cid, "A-1", ContactChannel.PHONE, Direction.INBOUND, Topic.OTHER, start, queue="phone-general"
        )
    return ContactRecord(
        cid,
        "A-1",
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.OTHER,
        start,
        answered_at=start + answer * S,
        ended_at=start + (answer + 300) * S,
        outcome=ContactOutcome.CONVERSATION,
        queue="phone-general",
    )


def test_hand_computed_phone_figures() -> None:
    records = [
        call("C1", 0, answer=10),
        call("C2", 5, answer=60),  # exactly on the threshold: in target
        call("C3", 10, answer=90),  # late
        call("C4", 20, abandoned=True, end=5),  # short abandon
        call("C5", 30, abandoned=True, end=120),
        call("C6", 40, answer=30),
    ]
    now = T0 + dt.timedelta(hours=1)
    fig = measure(records, PHONE, now)
    assert (fig.offered, fig.answered, fig.answered_in_target, fig.abandoned) == (6, 4, 3, 2)
    assert fig.service_level == pytest.approx(3 / 6)
    assert fig.average_speed_of_answer == dt.timedelta(seconds=(10 + 60 + 90 + 30) / 4)
    assert fig.abandonment_rate == pytest.approx(2 / 6)
    assert fig.longest_wait == 120 * S
    assert fig.meets_target is False
    lenient = AnswerTimeTarget(
        "phone-general", within=60 * S, abandon_rule=AbandonRule.SHORT_ABANDONS_IGNORED
    )
    assert measure(records, lenient, now).service_level == pytest.approx(3 / 5)


def test_records_are_read_at_the_instant() -> None:
    records = [call("C1", 0, answer=90), call("C2", 0, answer=10)]
    early = measure(records, PHONE, T0 + 30 * S)  # C1 waiting, within threshold: not yet counted
    assert (early.waiting, early.answered, early.service_level) == (1, 1, 1.0)
    later = measure(records, PHONE, T0 + 75 * S)  # C1 waiting past 60 s: already a miss
    assert (later.waiting, later.past_deadline, later.service_level) == (1, 1, 0.5)
    assert later.longest_wait == 75 * S
    done = measure(records, PHONE, T0 + dt.timedelta(hours=1))
    assert (done.waiting, done.service_level) == (0, 0.5)


def test_other_queues_and_outbound_are_ignored() -> None:
    other = ContactRecord(
        "X",
        "A-1",
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.OTHER,
        T0,
        answered_at=T0,
        ended_at=T0,
        outcome=ContactOutcome.CONVERSATION,
        queue="phone-disputes",
    )
    out = ContactRecord(
        "Y",
        "A-1",
        ContactChannel.PHONE,
        Direction.OUTBOUND,
        Topic.OTHER,
        T0,
        ended_at=T0,
        outcome=ContactOutcome.NO_CONNECTION,
        queue="phone-general",
    )
    assert measure([other, out], PHONE, T0 + S).offered == 0


def test_naive_now_is_rejected() -> None:
    with pytest.raises(NaiveDatetime):
        measure([], PHONE, dt.datetime(2026, 3, 2, 9, 0))


# --- business-day deadlines ------------------------------------------------------------------------


# Friday 22 May 2026 is followed by Whit Monday (NO, DE), Memorial Day (US) and the observed
# day for 24 May (BG), all on Monday 25 May: an e-mail on Friday afternoon, answered within one
# business day, is due by the end of Tuesday 26 May in all four countries.
@pytest.mark.parametrize(
    ("country", "tz"),
    [("NO", "Europe/Oslo"), ("DE", "Europe/Berlin"), ("US", "America/New_York"), ("BG", "Europe/Sofia")],
)
def test_friday_afternoon_before_a_monday_holiday(country: str, tz: str) -> None:
    friday = dt.datetime(2026, 5, 22, 15, 30, tzinfo=ZoneInfo(tz))
    target = ResponseTarget(
        "email-general", business_days=1, calendar=BusinessCalendar.for_country(country), tz=tz
    )
    deadline = target.deadline(friday)
    assert deadline == dt.datetime(2026, 5, 27, 0, 0, tzinfo=ZoneInfo(tz))
    same_day = response_deadline(friday, 0, BusinessCalendar.for_country(country), tz)
    assert same_day == dt.datetime(2026, 5, 23, 0, 0, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize(
    ("country", "tz", "arrived", "days", "due"),
    [
        # Norway: Maundy Thursday, Good Friday, Easter Monday 2026 (2, 3, 6 April).
        ("NO", "Europe/Oslo", dt.datetime(2026, 4, 1, 14, 0), 1, dt.date(2026, 4, 7)),
        # Germany: Good Friday and Easter Monday (3, 6 April) but, unlike Norway, Maundy Thursday
        # is a business day: a Wednesday message, 2 business days -> Thursday, then Tuesday.
        ("DE", "Europe/Berlin", dt.datetime(2026, 4, 1, 14, 0), 2, dt.date(2026, 4, 7)),
        # United States: Juneteenth, Friday 19 June 2026; arriving Thursday, 1 business day.
        ("US", "America/Chicago", dt.datetime(2026, 6, 18, 11, 0), 1, dt.date(2026, 6, 22)),
        # Bulgaria: Orthodox Easter, Friday 10 to Monday 13 April 2026.
        ("BG", "Europe/Sofia", dt.datetime(2026, 4, 9, 16, 0), 1, dt.date(2026, 4, 14)),
        # A dispute arriving on a Saturday is first answered the next business day, Monday.
        ("NO", "Europe/Oslo", dt.datetime(2026, 3, 7, 10, 0), 0, dt.date(2026, 3, 9)),
    ],
)
def test_deadlines_across_weekends_and_holidays(
    country: str, tz: str, arrived: dt.datetime, days: int, due: dt.date
) -> None:
    place = ZoneInfo(tz)
    deadline = response_deadline(
        arrived.replace(tzinfo=place), days, BusinessCalendar.for_country(country), tz
    )
    assert deadline == dt.datetime.combine(due + dt.timedelta(days=1), dt.time(0), tzinfo=place)


def test_local_date_decides_not_utc() -> None:
    # 23:30 UTC on Friday is already Saturday in Oslo: the contact counts from Monday.
    late = dt.datetime(2026, 3, 6, 23, 30, tzinfo=dt.UTC)
    deadline = response_deadline(late, 0, BusinessCalendar.for_country("NO"), "Europe/Oslo")
    assert deadline == dt.datetime(2026, 3, 10, 0, 0, tzinfo=OSLO)


def test_cutoff_moves_late_arrivals_to_next_business_day() -> None:
    target = ResponseTarget(
        "email-general",
        business_days=0,
        calendar=BusinessCalendar.for_country("NO"),
        tz="Europe/Oslo",
        cutoff=dt.time(16, 0),
    )
    assert target.deadline(dt.datetime(2026, 3, 2, 15, 59, tzinfo=OSLO)).date() == dt.date(2026, 3, 3)
    assert target.deadline(dt.datetime(2026, 3, 2, 16, 0, tzinfo=OSLO)).date() == dt.date(2026, 3, 4)


def test_written_queue_figures_and_backlog() -> None:
    target = ResponseTarget(
        "email-general",
        business_days=1,
        calendar=BusinessCalendar.for_country("NO"),
        tz="Europe/Oslo",
        share=0.9,
    )
    friday = dt.datetime(2026, 5, 22, 15, 0, tzinfo=OSLO)

    def mail(cid: str, arrived: dt.datetime, answered: dt.datetime | None) -> ContactRecord:
        if answered is None:
            return ContactRecord(
                cid,
                "A-2",
                ContactChannel.EMAIL,
                Direction.INBOUND,
                Topic.BALANCE_QUESTION,
                arrived,
                queue="email-general",
            )
        return ContactRecord(
            cid,
            "A-2",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.BALANCE_QUESTION,
            arrived,
            answered_at=answered,
            outcome=ContactOutcome.ANSWERED,
            queue="email-general",
        )

    records = [
        mail("E1", friday, dt.datetime(2026, 5, 26, 23, 59, tzinfo=OSLO)),  # in time, last minute
        mail("E2", friday, dt.datetime(2026, 5, 27, 8, 0, tzinfo=OSLO)),  # late
        mail("E3", friday, None),  # still open
        mail("E4", dt.datetime(2026, 5, 26, 9, 0, tzinfo=OSLO), None),  # open, due end of Wednesday
    ]
    now = dt.datetime(2026, 5, 27, 12, 0, tzinfo=OSLO)
    fig = measure(records, target, now)
    assert (fig.offered, fig.answered, fig.answered_in_target, fig.waiting, fig.past_deadline) == (
        4,
        2,
        1,
        2,
        1,
    )
    assert fig.service_level == pytest.approx(1 / 3)  # E1 in time; E2 late; E3 open past deadline
    assert fig.as_dict()["past_deadline"] == 1
    assert fig.abandonment_rate is None  # nobody hangs up on an e-mail: no abandonment figure


def test_target_validation_names_the_queue() -> None:
    with pytest.raises(ValidationError) as info:
        AnswerTimeTarget("phone-general", share=1.5)
    assert info.value.record == "Target phone-general"
    with pytest.raises(ValidationError, match="business_days"):
        ResponseTarget(
            "email-general", business_days=-1, calendar=BusinessCalendar.for_country("NO"), tz="Europe/Oslo"
        )
    with pytest.raises(ValidationError, match="time zone"):
        ResponseTarget(
            "email-general", business_days=1, calendar=BusinessCalendar.for_country("NO"), tz="Mars/Olympus"
        )


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3600), min_size=1, max_size=15),
    waits=st.lists(st.integers(min_value=0, max_value=300), min_size=15, max_size=15),
)
def test_figures_are_consistent(offsets: list[int], waits: list[int]) -> None:
    records = [call(f"C{i}", off, answer=w) for i, (off, w) in enumerate(zip(offsets, waits, strict=False))]
    fig = measure(records, PHONE, T0 + dt.timedelta(hours=3))
    assert fig.offered == fig.answered == len(records)
    assert 0 <= fig.answered_in_target <= fig.answered
    assert fig.service_level == pytest.approx(sum(w <= 60 for w in waits[: len(records)]) / len(records))
    assert fig.longest_wait == max(waits[: len(records)]) * S
