"""Business-day calendars and sourced policy rules."""

from __future__ import annotations

import datetime as dt

import pytest

from carecollect import ConfigurationError, PolicyViolation, ValidationError
from carecollect.calendars import BusinessCalendar
from carecollect.policy.rules import Rule, RuleSet, Strictness
from carecollect.timekeeping import local_date, require_aware, require_date, zone


@pytest.mark.parametrize(
    ("country", "holiday"),
    [
        ("US", dt.date(2026, 7, 3)),
        ("NO", dt.date(2026, 5, 14)),
        ("DE", dt.date(2026, 10, 3)),
        ("BG", dt.date(2026, 3, 3)),
    ],
)
def test_national_holidays_are_not_business_days(country: str, holiday: dt.date) -> None:
    cal = BusinessCalendar.for_country(country)
    assert cal.is_holiday(holiday)
    assert not cal.is_business_day(holiday)


def test_add_business_days_over_easter_in_norway() -> None:
    cal = BusinessCalendar.for_country("NO")
    # Wed 1 April 2026 + 1: Thu 2 (Maundy Thursday), Fri 3 (Good Friday), Mon 6 (Easter Monday) are holidays
    assert cal.add_business_days(dt.date(2026, 4, 1), 1) == dt.date(2026, 4, 7)
    assert cal.add_business_days(dt.date(2026, 4, 7), -1) == dt.date(2026, 4, 1)
    assert cal.business_days_between(dt.date(2026, 4, 1), dt.date(2026, 4, 7)) == 1
    assert cal.business_days_between(dt.date(2026, 4, 7), dt.date(2026, 4, 1)) == -1
    assert cal.roll_forward(dt.date(2026, 4, 4)) == dt.date(2026, 4, 7)


def test_us_federal_holiday_observed_and_subdivision() -> None:
    us = BusinessCalendar.for_country("US")
    assert not us.is_business_day(dt.date(2026, 7, 3))  # 4 July is a Saturday: observed Friday
    by = BusinessCalendar.for_country("DE", "BY")
    assert by.is_holiday(dt.date(2026, 1, 6)) and not BusinessCalendar.for_country("DE").is_holiday(
        dt.date(2026, 1, 6)
    )


def test_calendar_refuses_bad_input() -> None:
    with pytest.raises(ValidationError, match="country"):
        BusinessCalendar.for_country("XX")
    with pytest.raises(ValidationError, match="not a datetime"):
        BusinessCalendar.for_country("NO").is_business_day(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ValidationError, match="weekend"):
        BusinessCalendar("NO", weekend=frozenset(range(7)))


def test_time_guards() -> None:
    with pytest.raises(ValidationError):
        require_aware(dt.date(2026, 1, 1), "X 1", "at")
    with pytest.raises(ValidationError):
        require_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "X 1", "due")
    with pytest.raises(ValidationError, match="IANA"):
        zone("Mars/Olympus")
    assert local_date(dt.datetime(2026, 1, 1, 3, tzinfo=dt.UTC), "America/Los_Angeles") == dt.date(
        2025, 12, 31
    )


def _rules() -> RuleSet:
    return RuleSet(
        (
            Rule("wait_days", 14, "inkassoloven § 9", dt.date(1988, 5, 13), Strictness.AT_LEAST),
            Rule("cap", 5, "house", dt.date(2020, 1, 1), Strictness.AT_MOST),
            Rule(
                "sats",
                700,
                "inkassoforskriften § 1-1",
                dt.date(2025, 1, 1),
                Strictness.FIXED,
                dt.date(2025, 12, 31),
            ),
            Rule(
                "sats", 750, "inkassoforskriften § 1-1", dt.date(2026, 1, 1), Strictness.FIXED, verified=False
            ),
            Rule("sms_allowed", True, "default", dt.date(2020, 1, 1), Strictness.ALLOWED_IF_TRUE),
            Rule("notice_required", False, "default", dt.date(2020, 1, 1), Strictness.REQUIRED_IF_TRUE),
            Rule("discount", 10, "creditor", dt.date(2020, 1, 1), Strictness.CHOICE),
        )
    )


def test_rule_versions_by_date() -> None:
    rs = _rules()
    assert rs.value("sats", on=dt.date(2025, 6, 1)) == 700
    assert rs.value("sats", on=dt.date(2026, 6, 1)) == 750
    assert not rs.rule("sats", on=dt.date(2026, 6, 1)).verified
    with pytest.raises(ConfigurationError, match="no value in force"):
        rs.value("sats", on=dt.date(2024, 6, 1))
    with pytest.raises(ConfigurationError, match="not defined"):
        rs.value("nope", on=dt.date(2026, 1, 1))
    assert rs.get("nope", 3, on=dt.date(2026, 1, 1)) == 3


def test_house_rules_tighten_but_never_loosen() -> None:
    rs = _rules()
    tight = rs.with_house_rules(
        {"wait_days": 21, "cap": 4, "sms_allowed": False, "notice_required": True, "discount": 25},
        source="Clinic X policy",
    )
    on = dt.date(2026, 2, 1)
    assert tight.value("wait_days", on=on) == 21
    assert tight.value("cap", on=on) == 4
    assert tight.value("sms_allowed", on=on) is False
    assert tight.value("notice_required", on=on) is True
    assert tight.value("discount", on=on) == 25
    assert "Clinic X policy" in tight.rule("wait_days", on=on).source
    for loosen in ({"wait_days": 13}, {"cap": 6}, {"sms_allowed": True, "x": 1}, {"sats": 800}):
        with pytest.raises((PolicyViolation, ConfigurationError)):
            rs.with_house_rules(loosen, source="h").with_house_rules({}, source="h")
    with pytest.raises(PolicyViolation, match="loosen"):
        _rules().with_house_rules({"notice_required": False}, source="h").with_house_rules(
            {"notice_required": False}, source="h"
        ).with_house_rules({"cap": 7}, source="h")
    with pytest.raises(ConfigurationError, match="names no rule"):
        rs.with_house_rules({"unknown": 1}, source="h")


def test_house_rule_shadows_later_versions() -> None:
    rs = _rules().merged([Rule("cap", 6, "law 2027", dt.date(2027, 1, 1), Strictness.AT_MOST)])
    tight = rs.with_house_rules({"cap": 3}, source="h")
    assert tight.value("cap", on=dt.date(2027, 6, 1)) == 3
