"""Fees and interest: off by default, exact and capped where turned on (issue 4)."""

from __future__ import annotations

import datetime as dt

import pytest

from carecollect.errors import ConfigurationError, PolicyViolation
from carecollect.money import Money
from carecollect.policy import get_pack
from carecollect.policy.relief_rules import RELIEF_RULES, unverified
from carecollect.relief.fees import (
    FeeSettings,
    bulgaria_late_interest,
    germany_default_interest,
    germany_reminder_cost,
    norway_reminder_fee,
)

NO, DE, BG = get_pack("no"), get_pack("de"), get_pack("bg")
ON = FeeSettings(reminder_fees=True, late_interest=True)


def nok(x: str) -> Money:
    return Money(x, "NOK")


def eur(x: str) -> Money:
    return Money(x, "EUR")


def test_every_pack_has_the_relief_rules() -> None:
    for key in ("default", "us", "no", "de", "bg"):
        pack = get_pack(key)
        for rid in (
            "plan.max_income_percent",
            "plan.min_instalment",
            "plan.max_term_months",
            "plan.interest_allowed",
            "dispute.follow_up_business_days",
            "insurer.pending_wait_days",
            "gate.pre_placement_notice_days",
        ):
            assert rid in pack.rules, (key, rid)
        assert pack.value("plan.max_income_percent", on=dt.date(2026, 1, 5)) == 5


def test_unverified_rules_are_listed_with_sources() -> None:
    ids = {(k, r) for k, r, _ in unverified()}
    for expected in [
        ("no", "no.inkassosats"),
        ("bg", "bg.ecb_mro_percent"),
        ("bg", "bg.late_interest_points"),
        ("us", "state.CO.plan.paid_after_payments"),
        ("us", "r501.application_period_days"),
    ]:
        assert expected in ids
    assert all(r.source for rules in RELIEF_RULES.values() for r in rules)


def test_house_rules_may_tighten_but_not_loosen_the_cap() -> None:
    tighter = get_pack("us").with_house_rules({"plan.max_income_percent": 4})
    assert tighter.value("plan.max_income_percent", on=dt.date(2026, 1, 5)) == 4
    with pytest.raises(PolicyViolation):
        get_pack("us").with_house_rules({"plan.max_income_percent": 10})
    with pytest.raises(PolicyViolation):
        get_pack("us").with_house_rules({"credit.min_balance_usd": 100})


def test_fees_are_off_by_default() -> None:
    d = norway_reminder_fee(
        nok("1000.00"),
        due=dt.date(2026, 3, 1),
        sent_on=dt.date(2026, 4, 1),
        fee_notices_before=0,
        pack=NO,
        settings=FeeSettings(),
    )
    assert d.amount == nok("0.00") and d.reasons[0].outcome.blocks
    assert germany_default_interest(
        eur("1000.00"),
        default_from=dt.date(2026, 1, 1),
        until=dt.date(2026, 6, 1),
        pack=DE,
        settings=FeeSettings(),
    ).amount.is_zero()


@pytest.mark.parametrize(
    ("sent_on", "expected"),
    [
        (dt.date(2025, 6, 14), "35.00"),  # inkassosats 700 / 20, 14 days after a 31 May due date
        (dt.date(2026, 1, 14), "37.50"),  # 750 / 20 (2026, check)
    ],
)
def test_norway_fee_is_a_twentieth_of_the_inkassosats(sent_on: dt.date, expected: str) -> None:
    due = sent_on - dt.timedelta(days=14)
    d = norway_reminder_fee(
        nok("1000.00"), due=due, sent_on=sent_on, fee_notices_before=0, pack=NO, settings=ON
    )
    assert d.amount == nok(expected)


def test_norway_no_fee_before_14_days_or_after_two_fee_notices() -> None:
    due = dt.date(2026, 3, 1)
    early = norway_reminder_fee(
        nok("1000.00"), due=due, sent_on=dt.date(2026, 3, 14), fee_notices_before=0, pack=NO, settings=ON
    )
    assert early.amount.is_zero() and early.reasons[0].rule_id == "no.reminder_fee_min_days_after_due"
    second = norway_reminder_fee(
        nok("1000.00"), due=due, sent_on=dt.date(2026, 4, 1), fee_notices_before=1, pack=NO, settings=ON
    )
    assert second.amount == nok("37.50")
    third = norway_reminder_fee(
        nok("1000.00"), due=due, sent_on=dt.date(2026, 4, 20), fee_notices_before=2, pack=NO, settings=ON
    )
    assert third.amount.is_zero() and third.reasons[0].rule_id == "no.max_fee_notices"


def test_germany_interest_five_points_over_base_rate() -> None:
    # July 2025: 1.27 % + 5 = 6.27 %, 31 days of 365: 1000 * 0.0627 * 31 / 365 = 5.3252...
    d = germany_default_interest(
        eur("1000.00"), default_from=dt.date(2025, 6, 30), until=dt.date(2025, 7, 31), pack=DE, settings=ON
    )
    assert d.amount == eur("5.33")
    assert d.reasons[-1].rule_id == "de.default_interest_points"


def test_germany_interest_split_at_base_rate_change() -> None:
    # 21-30 June 2025 at 7.27 % (base 2.27, check), 1-10 July at 6.27 %: 1.99178 + 1.71781 = 3.70959
    d = germany_default_interest(
        eur("1000.00"), default_from=dt.date(2025, 6, 20), until=dt.date(2025, 7, 10), pack=DE, settings=ON
    )
    assert d.amount == eur("3.71")
    assert [r.rule_id for r in d.reasons].count("de.base_rate_percent") == 2


def test_germany_reminder_costs() -> None:
    on = dt.date(2026, 3, 1)
    assert germany_reminder_cost(
        eur("1.20"), creates_default=True, on=on, pack=DE, settings=ON
    ).amount.is_zero()
    assert germany_reminder_cost(
        eur("1.20"), creates_default=False, on=on, pack=DE, settings=ON
    ).amount == eur("1.20")
    capped = germany_reminder_cost(eur("5.00"), creates_default=False, on=on, pack=DE, settings=ON)
    assert capped.amount == eur("2.50") and "[secondary source" in capped.reasons[0].source


def test_bulgaria_statutory_rate_from_2026() -> None:
    # ECB MRO 2.15 % (check) + 8 = 10.15 %, 30 days of 360: 1000 * 0.1015 * 30 / 360 = 8.4583
    d = bulgaria_late_interest(
        eur("1000.00"), late_from=dt.date(2026, 1, 31), until=dt.date(2026, 3, 2), pack=BG, settings=ON
    )
    assert d.amount == eur("8.46")
    with pytest.raises(ConfigurationError):  # the euro-era rule starts on 2026-01-01
        bulgaria_late_interest(
            eur("1000.00"), late_from=dt.date(2025, 11, 1), until=dt.date(2025, 12, 1), pack=BG, settings=ON
        )
