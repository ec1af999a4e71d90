"""Tier edges of the financial-assistance screen are decided on exact figures (issue 13).

The screen compares ``income × 100`` with ``limit × guideline`` exactly; no truncated
percentage decides a tier.  The class test walks every edge (free limit, each tier, Colorado's
250 % line) of every pack that carries poverty guidelines, for every household size and table.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import ConfigurationError
from carecollect.money import Money
from carecollect.policy import get_pack
from carecollect.policy.packs import available_packs
from carecollect.relief.assistance import (
    AssistancePolicy,
    DiscountTier,
    Eligibility,
    FplRegion,
    fpl_percent,
    fpl_ratio,
    poverty_guideline,
    screen,
)
from carecollect.relief.plans import Affordability, _state_plan_rules_apply

US = get_pack("us")
D26 = dt.date(2026, 3, 1)
D25 = dt.date(2025, 6, 1)


def usd(x: str) -> Money:
    return Money(x, "USD")


def test_an_income_just_above_the_free_limit_is_not_free() -> None:
    # 31921 / 15960 = 200.006 %: above 200 %, so the first discount tier, not free care
    policy = AssistancePolicy.from_pack(US, on=D26)
    s = screen(usd("31921.00"), 1, on=D26, pack=US, policy=policy)
    assert s.eligibility is Eligibility.DISCOUNT and s.discount_percent == Decimal(80)


def test_the_error_grew_with_household_size() -> None:
    # household of 8: guideline 55720, 200 % = 111440.00; one cent more is above the line
    policy = AssistancePolicy.from_pack(US, on=D26)
    assert screen(usd("111440.00"), 8, on=D26, pack=US, policy=policy).eligibility is Eligibility.FREE
    s = screen(usd("111440.01"), 8, on=D26, pack=US, policy=policy)
    assert s.eligibility is Eligibility.DISCOUNT


def test_colorado_line_is_exact() -> None:
    # household of 1 in 2026: 250 % = 39900.00; 39900.01 is above Colorado's line
    above = usd("39900.01")
    ratio = fpl_ratio(above, 1, on=D26, pack=US)
    assert ratio > 250
    assert not _state_plan_rules_apply(US, "CO", Affordability.from_annual(above, 1, ratio), D26)
    # the display figure never reads as "at the line" for an income above it
    shown = fpl_percent(above, 1, on=D26, pack=US)
    assert shown > Decimal(250)
    assert not _state_plan_rules_apply(US, "CO", Affordability.from_annual(above, 1, shown), D26)
    at = usd("39900.00")
    assert _state_plan_rules_apply(
        US, "CO", Affordability.from_annual(at, 1, fpl_ratio(at, 1, on=D26, pack=US)), D26
    )


def test_display_rounds_but_exact_figure_is_kept() -> None:
    s = screen(usd("31921.00"), 1, on=D26, pack=US, policy=AssistancePolicy.from_pack(US, on=D26))
    assert s.fpl_ratio == Fraction(3192100, 15960)
    assert s.fpl_percent == Decimal("200.01")


# -- the class test: incomes near every edge of every tier of every pack ----------------


def _packs_with_guidelines() -> list[tuple[str, dt.date]]:
    out = []
    for key in available_packs():
        pack = get_pack(key)
        for on in (D25, D26):
            try:
                poverty_guideline(1, on=on, pack=pack)
            except ConfigurationError:
                continue
            out.append((key, on))
    return out


PACK_DAYS = _packs_with_guidelines()


def test_some_pack_carries_guidelines() -> None:
    assert ("us", D26) in PACK_DAYS and ("us", D25) in PACK_DAYS


def _edges(policy: AssistancePolicy) -> list[Decimal]:
    return [policy.free_at_or_below, *(t.max_fpl_percent for t in policy.tiers)]


def _expected(policy: AssistancePolicy, income: Money, guideline: Money) -> tuple[Eligibility, Decimal]:
    """The tier by exact integer arithmetic: income_minor × 100 ≤ limit × guideline_minor."""

    def within(limit: Decimal) -> bool:
        return Fraction(income.minor_units * 100) <= Fraction(limit) * guideline.minor_units

    if within(policy.free_at_or_below):
        return Eligibility.FREE, Decimal(100)
    for tier in policy.tiers:
        if within(tier.max_fpl_percent):
            return Eligibility.DISCOUNT, tier.discount_percent
    return Eligibility.NOT_ELIGIBLE, Decimal(0)


def _edge_income(limit: Decimal, guideline: Money, offset_cents: int) -> Money:
    exact_minor = Fraction(limit) * guideline.minor_units / 100
    return Money.from_minor(max(0, int(exact_minor) + offset_cents), "USD")


@settings(max_examples=400, deadline=None)
@given(
    pack_day=st.sampled_from(PACK_DAYS),
    size=st.integers(min_value=1, max_value=14),
    region=st.sampled_from(FplRegion),
    steps=st.integers(min_value=1, max_value=7),
    edge_index=st.integers(min_value=0, max_value=7),
    offset=st.integers(min_value=-3, max_value=3),
)
def test_every_edge_of_every_tier_of_every_pack(
    pack_day: tuple[str, dt.date], size: int, region: FplRegion, steps: int, edge_index: int, offset: int
) -> None:
    key, on = pack_day
    pack = get_pack(key)
    policy = AssistancePolicy.from_pack(pack, on=on, steps=steps)
    edges = _edges(policy)
    limit = edges[edge_index % len(edges)]
    guideline = poverty_guideline(size, on=on, pack=pack, region=region)
    income = _edge_income(limit, guideline, offset)
    s = screen(income, size, on=on, pack=pack, policy=policy, region=region)
    assert (s.eligibility, s.discount_percent) == _expected(policy, income, guideline)
    # Colorado's line (where the pack has it) is judged on the same exact figure
    if "state.CO.plan.income_limit_fpl_percent" in pack.rules:
        co_limit = pack.value("state.CO.plan.income_limit_fpl_percent", on=on)
        co_income = _edge_income(co_limit, guideline, offset)
        exact_ok = co_income.minor_units * 100 <= co_limit * guideline.minor_units
        ratio = fpl_ratio(co_income, size, on=on, pack=pack, region=region)
        aff = Affordability.from_annual(co_income, size, ratio)
        assert _state_plan_rules_apply(pack, "CO", aff, on) is exact_ok
        shown = fpl_percent(co_income, size, on=on, pack=pack, region=region)
        assert (
            _state_plan_rules_apply(pack, "CO", Affordability.from_annual(co_income, size, shown), on)
            is exact_ok
        )


@settings(max_examples=300, deadline=None)
@given(
    free=st.decimals(min_value=50, max_value=300, places=2),
    widths=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=150, places=2), min_size=0, max_size=5),
    size=st.integers(min_value=1, max_value=14),
    edge_index=st.integers(min_value=0, max_value=6),
    offset=st.integers(min_value=-2, max_value=2),
)
def test_creditor_tiers_with_odd_edges(
    free: Decimal, widths: list[Decimal], size: int, edge_index: int, offset: int
) -> None:
    bounds: list[Decimal] = []
    top = free
    for w in widths:
        top += w
        bounds.append(top)
    tiers = [DiscountTier(b, Decimal(90 - 10 * k)) for k, b in enumerate(bounds)]
    policy = AssistancePolicy(free, tiers)
    edges = _edges(policy)
    guideline = poverty_guideline(size, on=D26, pack=US)
    income = _edge_income(edges[edge_index % len(edges)], guideline, offset)
    s = screen(income, size, on=D26, pack=US, policy=policy)
    assert (s.eligibility, s.discount_percent) == _expected(policy, income, guideline)


@pytest.mark.parametrize("size", range(1, 15))
def test_one_cent_above_each_us_edge_leaves_the_tier(size: int) -> None:
    policy = AssistancePolicy.from_pack(US, on=D26)
    guideline = poverty_guideline(size, on=D26, pack=US)
    for limit in _edges(policy):
        at = _edge_income(limit, guideline, 0)
        above = _edge_income(limit, guideline, 1)
        assert screen(at, size, on=D26, pack=US, policy=policy).eligibility is not None
        below_or_at = screen(at, size, on=D26, pack=US, policy=policy)
        over = screen(above, size, on=D26, pack=US, policy=policy)
        assert over.discount_percent < below_or_at.discount_percent
