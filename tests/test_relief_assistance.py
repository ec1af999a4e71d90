"""Financial assistance, incentives and the 501(r) timeline (issue 4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from carecollect.errors import ConfigurationError, ValidationError
from carecollect.money import Money
from carecollect.policy import get_pack
from carecollect.relief.assistance import (
    ApplicationStatus,
    AssistanceApplication,
    AssistancePolicy,
    DiscountTier,
    Eligibility,
    FplRegion,
    PresumptiveBasis,
    application_suspends_eca,
    eca_timeline,
    fpl_percent,
    poverty_guideline,
    screen,
    within_application_period,
)
from carecollect.relief.incentives import Incentive, IncentiveKind, active_incentives, best_incentive

US = get_pack("us")
D26 = dt.date(2026, 3, 1)
POLICY = AssistancePolicy.from_pack(US, on=D26)


def usd(x: str) -> Money:
    return Money(x, "USD")


@pytest.mark.parametrize(
    ("size", "region", "on", "expected"),
    [
        (1, FplRegion.CONTIGUOUS, D26, "15960"),
        (4, FplRegion.CONTIGUOUS, D26, "33000"),
        (8, FplRegion.CONTIGUOUS, D26, "55720"),
        (4, FplRegion.ALASKA, D26, "41250"),
        (4, FplRegion.HAWAII, D26, "37950"),
        (1, FplRegion.CONTIGUOUS, dt.date(2025, 12, 31), "15650"),
        (4, FplRegion.CONTIGUOUS, dt.date(2025, 6, 1), "32150"),
        (1, FplRegion.ALASKA, dt.date(2025, 6, 1), "19550"),
        (1, FplRegion.HAWAII, dt.date(2025, 6, 1), "17990"),
        (1, FplRegion.CONTIGUOUS, dt.date(2026, 1, 1), "15960"),
    ],
)
def test_poverty_guidelines(size: int, region: FplRegion, on: dt.date, expected: str) -> None:
    assert poverty_guideline(size, on=on, pack=US, region=region) == Money.of(expected, "USD")


def test_guideline_needs_a_household_and_a_table() -> None:
    with pytest.raises(ValidationError):
        poverty_guideline(0, on=D26, pack=US)
    with pytest.raises(ConfigurationError):
        poverty_guideline(1, on=dt.date(2024, 6, 1), pack=US)
    with pytest.raises(ConfigurationError):
        poverty_guideline(1, on=D26, pack=get_pack("no"))


@pytest.mark.parametrize(
    ("income", "eligibility", "discount"),
    [
        ("31920.00", Eligibility.FREE, "100"),  # exactly 200 %
        ("31921.00", Eligibility.DISCOUNT, "80"),  # 200.006 %: above the line, decided exactly
        ("32000.00", Eligibility.DISCOUNT, "80"),  # 200.50 %
        ("39900.00", Eligibility.DISCOUNT, "80"),  # 250 %
        ("47880.00", Eligibility.DISCOUNT, "60"),  # 300 %
        ("63840.00", Eligibility.DISCOUNT, "20"),  # 400 %
        ("64000.00", Eligibility.NOT_ELIGIBLE, "0"),  # 401 %
    ],
)
def test_screening_tiers_household_of_one_2026(income: str, eligibility: Eligibility, discount: str) -> None:
    s = screen(usd(income), 1, on=D26, pack=US, policy=POLICY)
    assert s.eligibility is eligibility and s.discount_percent == Decimal(discount)
    assert s.reasons[0].rule_id == "fpl.contiguous"


def test_screening_alaska_household() -> None:
    assert fpl_percent(usd("82500.00"), 4, on=D26, pack=US, region=FplRegion.ALASKA) == Decimal("200.00")
    assert (
        screen(usd("82500.00"), 4, on=D26, pack=US, policy=POLICY, region=FplRegion.ALASKA).eligibility
        is Eligibility.FREE
    )


def test_presumptive_eligibility_needs_no_income() -> None:
    s = screen(None, 3, on=D26, pack=US, policy=POLICY, presumptive=[PresumptiveBasis.MEDICAID])
    assert s.eligibility is Eligibility.FREE and s.fpl_percent is None
    assert s.discount_on(usd("812.40")) == usd("812.40")
    narrow = AssistancePolicy(Decimal(200), (), presumptive=frozenset({PresumptiveBasis.HOMELESS}))
    with pytest.raises(ValidationError):
        screen(None, 3, on=D26, pack=US, policy=narrow, presumptive=[PresumptiveBasis.MEDICAID])


def test_discount_amount_is_exact() -> None:
    s = screen(usd("47880.00"), 1, on=D26, pack=US, policy=POLICY)
    assert s.discount_on(usd("333.33")) == usd("200.00")  # 60 % of 333.33 = 199.998


def test_creditor_tiers_must_rise() -> None:
    with pytest.raises(ValidationError):
        AssistancePolicy(
            Decimal(200), (DiscountTier(Decimal(300), Decimal(50)), DiscountTier(Decimal(250), Decimal(75)))
        )


def test_501r_timeline_without_and_with_notice() -> None:
    t = eca_timeline(dt.date(2026, 1, 15), pack=US)
    assert t.notification_period_ends == dt.date(2026, 5, 15) and t.earliest_eca is None
    assert t.application_period_ends == dt.date(2026, 9, 12)
    late = eca_timeline(
        dt.date(2026, 1, 15),
        pack=US,
        notice_sent_on=dt.date(2026, 8, 20),
        notice_deadline=dt.date(2026, 10, 1),
    )
    assert late.earliest_eca == dt.date(2026, 10, 1)
    assert late.application_period_ends == dt.date(
        2026, 10, 1
    )  # the later of day 240 and the notice's deadline
    early = eca_timeline(dt.date(2026, 1, 15), pack=US, notice_sent_on=dt.date(2026, 4, 1))
    assert early.earliest_eca == dt.date(2026, 5, 15)


def test_application_suspends_while_pending() -> None:
    t = eca_timeline(dt.date(2026, 1, 15), pack=US)
    app = AssistanceApplication("FA-1", "A-1", dt.date(2026, 9, 12))
    assert application_suspends_eca(app) and within_application_period(app, t)
    late = AssistanceApplication("FA-2", "A-1", dt.date(2026, 9, 13))
    assert application_suspends_eca(late) and not within_application_period(late, t)
    done = AssistanceApplication(
        "FA-3", "A-1", dt.date(2026, 3, 1), ApplicationStatus.DENIED, dt.date(2026, 3, 20)
    )
    assert not application_suspends_eca(done)


def test_incentive_windows_and_best_offer() -> None:
    prompt = Incentive.within_days(
        "PP", IncentiveKind.PROMPT_PAY, dt.date(2026, 3, 2), 30, percent=Decimal("5")
    )
    early = Incentive(
        "EO", IncentiveKind.EARLY_OUT, dt.date(2026, 3, 10), dt.date(2026, 3, 20), amount=usd("40.00")
    )
    selfpay = Incentive(
        "SP", IncentiveKind.SELF_PAY, dt.date(2026, 1, 1), dt.date(2026, 12, 31), Decimal("20")
    )
    offers = [prompt, early, selfpay]
    bal = usd("500.00")
    assert best_incentive(bal, offers, on=dt.date(2026, 3, 5)) == (prompt, usd("25.00"))
    assert best_incentive(bal, offers, on=dt.date(2026, 3, 15)) == (early, usd("40.00"))
    assert best_incentive(bal, offers, on=dt.date(2026, 3, 15), self_pay=True) == (selfpay, usd("100.00"))
    assert best_incentive(bal, offers, on=dt.date(2026, 4, 2)) == (
        None,
        usd("0.00"),
    )  # window closed on 1 April
    assert active_incentives(offers, on=dt.date(2026, 4, 1)) == (prompt,)
    assert early.discount_on(usd("30.00")) == usd("30.00")  # never more than the balance


def test_incentive_validation() -> None:
    with pytest.raises(ValidationError):
        Incentive("X", IncentiveKind.PROMPT_PAY, dt.date(2026, 3, 2), dt.date(2026, 3, 1), Decimal("5"))
    with pytest.raises(ValidationError):
        Incentive(
            "X", IncentiveKind.PROMPT_PAY, dt.date(2026, 3, 2), dt.date(2026, 3, 9), Decimal("5"), usd("1.00")
        )
    with pytest.raises(ValidationError):
        Incentive("X", IncentiveKind.PROMPT_PAY, dt.date(2026, 3, 2), dt.date(2026, 3, 9), Decimal("101"))


def test_an_application_refuses_a_decision_before_it_was_received_and_an_unknown_status() -> None:
    import datetime as dt

    from carecollect.errors import ValidationError
    from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication

    ok = AssistanceApplication(
        "FA-1", "A-1", dt.date(2026, 2, 1), ApplicationStatus.APPROVED, decided_on=dt.date(2026, 2, 1)
    )
    assert ok.decided_on == ok.received_on
    with pytest.raises(ValidationError) as info:
        AssistanceApplication(
            "FA-2", "A-1", dt.date(2026, 2, 1), ApplicationStatus.DENIED, decided_on=dt.date(2026, 1, 31)
        )
    assert (info.value.record, info.value.field) == ("AssistanceApplication FA-2", "decided_on")
    with pytest.raises(ValidationError) as info:
        AssistanceApplication("FA-3", "A-1", dt.date(2026, 2, 1), "approved")  # type: ignore[arg-type]
    assert info.value.field == "status" and "FA-3" in info.value.record
