"""Payment plans fitted to income: options, caps, state rules, misses, hardship (issue 4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.creditors import Creditor, CreditorRole
from carecollect.errors import PolicyViolation
from carecollect.invoices import BillKind
from carecollect.money import Money, total
from carecollect.plans import (
    InstalmentStatus,
    PaymentPlan,
    PlanStatus,
    activate_plan,
    build_schedule,
    mark_instalment_missed,
    record_instalment_payment,
)
from carecollect.policy import get_pack
from carecollect.relief.incentives import Incentive, IncentiveKind
from carecollect.relief.plans import (
    Affordability,
    MissedAction,
    OptionKind,
    apply_paid_after_payments_rule,
    check_plan,
    hardship_pause,
    monthly_cap,
    option_to_plan,
    propose_plan_options,
    resume_after_hardship,
)

US = get_pack("us")
T = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 2)


def creditor(state: str | None = None, country: str = "US") -> Creditor:
    return Creditor(id="C-1", name="Clinic", role=CreditorRole.PROVIDER, country=country, state=state)


def usd(x: str) -> Money:
    return Money(x, "USD")


def propose(
    balance: str, income: str | None, *, state: str | None = None, pack=US, currency: str = "USD", **kw
):
    aff = Affordability(
        Money(income, currency) if income is not None else None, fpl_percent=kw.pop("fpl", None)
    )
    return propose_plan_options(
        Money(balance, currency),
        today=kw.pop("today", TODAY),
        first_due=dt.date(2026, 4, 1),
        pack=pack,
        creditor=creditor(state, kw.pop("country", "US")),
        affordability=aff,
        **kw,
    )


def test_three_options_within_five_percent_cap() -> None:
    p = propose("1200.00", "3000.00")
    assert p.monthly_cap == usd("150.00")
    kinds = [o.kind for o in p.options]
    assert kinds == [OptionKind.PAY_IN_FULL, OptionKind.SHORT_PLAN, OptionKind.LONG_PLAN]
    short, long_ = p.options[1], p.options[2]
    assert (short.count, short.largest_instalment) == (8, usd("150.00"))
    assert (long_.count, long_.largest_instalment) == (24, usd("50.00"))
    assert all(o.interest.is_zero() for o in p.options)


def test_schedule_rolls_weekends_to_next_business_day() -> None:
    dates = [i.due_date for i in propose("1200.00", "3000.00").options[1].instalments]
    assert dates[4] == dt.date(2026, 8, 3)  # 1 August 2026 is a Saturday
    assert dates[7] == dt.date(2026, 11, 2)  # 1 November 2026 is a Sunday
    assert dates[0] == dt.date(2026, 4, 1)


def test_colorado_professional_bill_capped_at_two_percent() -> None:
    p = propose("1000.00", "2500.00", state="CO", bill_kind=BillKind.PROFESSIONAL)
    assert p.monthly_cap == usd("50.00")
    assert p.reasons[-1].rule_id == "state.CO.plan.max_income_percent.professional"
    assert "[secondary source, to be checked]" in p.reasons[-1].source
    assert [o.count for o in p.options[1:]] == [20, 24]


def test_colorado_hospital_bill_counts_as_paid_after_36_payments() -> None:
    p = propose("5000.00", "2500.00", state="CO")
    assert p.monthly_cap == usd("100.00")
    plan = p.option(OptionKind.LONG_PLAN)
    assert plan is not None and plan.count == 36
    assert plan.total == usd("3600.00")
    assert plan.forgiven_after_term == usd("1400.00")
    assert p.option(OptionKind.SHORT_PLAN) is None


def test_colorado_cap_only_at_or_below_250_percent_fpl() -> None:
    assert propose("1000.00", "2500.00", state="CO", fpl=Decimal("250")).monthly_cap == usd("100.00")
    assert propose("1000.00", "2500.00", state="CO", fpl=Decimal("250.01")).monthly_cap == usd("125.00")


def test_colorado_forgiveness_only_at_or_below_250_percent_fpl() -> None:
    # 5 % of 2500 is 125 a month; 36 x 125 = 4500 < 5000: above 250 % FPL no plan fits and nothing is forgiven.
    above = propose("5000.00", "2500.00", state="CO", fpl=Decimal("300"))
    assert above.monthly_cap == usd("125.00")
    assert all(o.forgiven_after_term.is_zero() for o in above.options)
    assert above.option(OptionKind.LONG_PLAN) is None
    assert "plan.max_term_months" in [r.rule_id for r in above.reasons]
    within = propose("5000.00", "2500.00", state="CO", fpl=Decimal("250"))
    long = within.option(OptionKind.LONG_PLAN)
    assert long is not None and long.forgiven_after_term == usd("1400.00")


def test_maryland_cap_applies_from_2025_10_01() -> None:
    before = propose("1000.00", "2000.00", state="MD", today=dt.date(2025, 9, 30))
    after = propose("1000.00", "2000.00", state="MD", today=dt.date(2025, 10, 1))
    assert "state.MD.plan.max_income_percent" not in [r.rule_id for r in before.reasons]
    assert "state.MD.plan.max_income_percent" in [r.rule_id for r in after.reasons]
    assert after.monthly_cap == usd("100.00")


def test_new_york_interest_capped_at_two_percent() -> None:
    p = propose("1200.00", "3000.00", state="NY", interest_percent=Decimal("6"))
    assert any(r.rule_id == "state.NY.plan.max_interest_percent" for r in p.reasons)
    short = p.options[1]
    # equal principal 150.00, first month's interest 1200 * 2 % / 12 = 2.00: 152.00 > cap, so one more month
    assert short.count == 9
    assert short.instalments[0].amount == Money("135.34", "USD")
    assert short.total == usd("1200.00") + short.interest
    assert short.interest.is_positive()
    assert short.largest_instalment <= usd("150.00")


def test_interest_refused_where_pack_does_not_allow_it() -> None:
    p = propose(
        "1200.00", "3000.00", pack=get_pack("de"), currency="EUR", country="DE", interest_percent=Decimal("5")
    )
    assert all(o.interest.is_zero() for o in p.options)
    assert any(r.rule_id == "plan.interest_allowed" and r.outcome.blocks for r in p.reasons)


def test_minimum_instalment_limits_count_without_income() -> None:
    p = propose("100.00", None)
    assert p.monthly_cap is None
    assert [(o.kind, o.count) for o in p.options] == [(OptionKind.PAY_IN_FULL, 1), (OptionKind.SHORT_PLAN, 4)]
    assert p.options[1].largest_instalment == usd("25.00")


def test_cap_below_minimum_instalment_wins() -> None:
    p = propose("200.00", "400.00")
    assert p.monthly_cap == usd("20.00")
    assert p.options[1].count == 10 and p.options[1].largest_instalment == usd("20.00")
    assert any(r.rule_id == "plan.min_instalment" for r in p.reasons)


def test_no_plan_fits_points_to_assistance() -> None:
    p = propose("2000.00", "500.00")
    assert [o.kind for o in p.options] == [OptionKind.PAY_IN_FULL]
    assert p.reasons[-1].rule_id == "plan.max_term_months" and p.reasons[-1].outcome.blocks
    assert "financial assistance" in p.reasons[-1].message


def test_prompt_pay_discount_on_pay_in_full_only() -> None:
    offer = Incentive(
        "PP-1", IncentiveKind.PROMPT_PAY, dt.date(2026, 3, 1), dt.date(2026, 3, 31), Decimal("10")
    )
    p = propose("1200.00", "3000.00", incentives=[offer])
    full = p.options[0]
    assert full.discount == usd("120.00") and full.total == usd("1080.00")
    assert full.instalments[0].due_date == dt.date(2026, 3, 31) and full.valid_until == dt.date(2026, 3, 31)
    assert all(o.discount.is_zero() for o in p.options[1:])


def test_chosen_option_becomes_a_plan() -> None:
    opt = propose("1200.00", "3000.00").options[2]
    plan = option_to_plan(opt, plan_id="PL-1", account_id="A-1", invoice_ids=["INV-1"], created_at=T)
    assert plan.total == usd("1200.00") and plan.status is PlanStatus.PROPOSED and len(plan.instalments) == 24


def _plan(amount: str = "300.00", n: int = 3) -> PaymentPlan:
    sched = build_schedule(usd(amount), n, first_due=dt.date(2026, 2, 2))
    plan = PaymentPlan("PL-1", "A-1", ("INV-1",), usd(amount), sched, T - dt.timedelta(days=60))
    return activate_plan(plan, at=T - dt.timedelta(days=60))[0]


def test_missed_instalment_reminder_grace_then_missed_then_default() -> None:
    plan = _plan()
    assert check_plan(plan, today=dt.date(2026, 2, 2), pack=US).action is MissedAction.ON_TRACK
    c = check_plan(plan, today=dt.date(2026, 2, 3), pack=US)
    assert (c.action, c.instalment_number) == (MissedAction.SEND_REMINDER, 1)
    reminded = {1: dt.date(2026, 2, 3)}
    c = check_plan(
        plan, today=dt.date(2026, 2, 17), pack=US, reminded_on=reminded
    )  # grace: 15 days to 17 Feb
    assert c.action is MissedAction.WAIT and c.act_on == dt.date(2026, 2, 18)
    c = check_plan(plan, today=dt.date(2026, 2, 18), pack=US, reminded_on=reminded)
    assert c.action is MissedAction.MARK_MISSED
    plan = mark_instalment_missed(plan, 1, at=T)[0]
    # one missed is not a default: instalment 2 (due 2 March) is handled the same way
    c = check_plan(plan, today=dt.date(2026, 3, 3), pack=US, reminded_on=reminded)
    assert (c.action, c.instalment_number) == (MissedAction.SEND_REMINDER, 2)
    plan = mark_instalment_missed(plan, 2, at=T)[0]
    c = check_plan(plan, today=dt.date(2026, 3, 20), pack=US)
    assert c.action is MissedAction.DEFAULT


def test_hardship_pause_and_reamortise_within_new_cap() -> None:
    plan = _plan("600.00", 6)
    plan = record_instalment_payment(plan, 1, usd("100.00"), at=T)[0]
    paused, _, why = hardship_pause(plan, on=dt.date(2026, 3, 1), at=T, pack=US, months=2)
    assert paused.status is PlanStatus.PAUSED and not why[0].outcome.blocks
    assert check_plan(paused, today=dt.date(2026, 4, 20), pack=US).action is MissedAction.PAUSED
    resumed, _, _ = resume_after_hardship(
        paused,
        first_due=dt.date(2026, 5, 4),
        at=T,
        pack=US,
        creditor=creditor(),
        affordability=Affordability(usd("1000.00")),
    )
    fresh = [i for i in resumed.instalments if i.status is InstalmentStatus.DUE]
    assert len(fresh) == 10 and all(i.amount == usd("50.00") for i in fresh)
    assert total((i.amount for i in resumed.instalments), "USD") == usd("600.00")


def test_resume_refused_when_nothing_fits() -> None:
    plan = hardship_pause(_plan("6000.00", 6), on=dt.date(2026, 3, 1), at=T, pack=US, months=1)[0]
    with pytest.raises(PolicyViolation, match="financial assistance"):
        resume_after_hardship(
            plan,
            first_due=dt.date(2026, 5, 4),
            at=T,
            pack=US,
            creditor=creditor(),
            affordability=Affordability(usd("1000.00")),
        )


def test_long_pause_flags_escalation() -> None:
    why = hardship_pause(_plan(), on=dt.date(2026, 3, 1), at=T, pack=US, months=4)[2]
    assert "escalation" in why[0].message


def test_colorado_36_payments_rule_completes_plan() -> None:
    sched = build_schedule(usd("3700.00"), 37, first_due=dt.date(2023, 1, 2))
    plan = activate_plan(
        PaymentPlan("PL-9", "A-1", ("INV-1",), usd("3700.00"), sched, T - dt.timedelta(days=1200)),
        at=T - dt.timedelta(days=1200),
    )[0]
    for n in range(1, 36):
        plan = record_instalment_payment(plan, n, usd("100.00"), at=T)[0]
    assert apply_paid_after_payments_rule(plan, pack=US, creditor=creditor("CO"), at=T) is None
    plan = record_instalment_payment(plan, 36, usd("100.00"), at=T)[0]
    assert apply_paid_after_payments_rule(plan, pack=US, creditor=creditor("TX"), at=T) is None
    done = apply_paid_after_payments_rule(plan, pack=US, creditor=creditor("CO"), at=T)
    assert done is not None
    new, event, why = done
    assert event.detail("reason") == "state.CO.plan.paid_after_payments"
    assert new.status is PlanStatus.COMPLETED and new.instalments[-1].status is InstalmentStatus.FORGIVEN
    assert why.rule_id == "state.CO.plan.paid_after_payments" and "USD 100.00" in why.message
    screened_above = Affordability(usd("5000.00"), 2, fpl_percent=Decimal("260"))
    assert (
        apply_paid_after_payments_rule(
            plan, pack=US, creditor=creditor("CO"), at=T, affordability=screened_above
        )
        is None
    )
    screened_within = Affordability(usd("2500.00"), 2, fpl_percent=Decimal("240"))
    assert (
        apply_paid_after_payments_rule(
            plan, pack=US, creditor=creditor("CO"), at=T, affordability=screened_within
        )
        is not None
    )


# -- properties --------------------------------------------------------------------------

_cents = st.integers(min_value=1, max_value=5_000_000)


@settings(max_examples=60, deadline=None)
@given(
    balance=_cents,
    income=st.one_of(st.none(), st.integers(min_value=0, max_value=2_000_000)),
    state=st.sampled_from([None, "CO", "MD", "NY", "TX"]),
    kind=st.sampled_from(list(BillKind)),
    rate=st.sampled_from(["0", "2", "7.5"]),
    dom=st.one_of(st.none(), st.integers(1, 31)),
)
def test_no_plan_exceeds_cap_and_every_schedule_sums(
    balance: int, income: int | None, state: str | None, kind: BillKind, rate: str, dom: int | None
) -> None:
    aff = Affordability(Money.from_minor(income, "USD") if income is not None else None)
    p = propose_plan_options(
        Money.from_minor(balance, "USD"),
        today=TODAY,
        first_due=dt.date(2026, 4, 1),
        pack=US,
        creditor=creditor(state),
        affordability=aff,
        bill_kind=kind,
        interest_percent=Decimal(rate),
        day_of_month=dom,
    )
    cap, _ = monthly_cap(aff, currency="USD", on=TODAY, pack=US, creditor=creditor(state), bill_kind=kind)
    assert cap == p.monthly_cap
    if income is not None:
        assert cap is not None and cap.minor_units * 100 <= income * 5  # never above 5 % of income
    for o in p.options:
        s = total((i.amount for i in o.instalments), "USD")
        assert s == o.total
        dates = [i.due_date for i in o.instalments]
        assert dates == sorted(dates)
        if o.kind is OptionKind.PAY_IN_FULL:
            assert o.total == o.balance - o.discount
            continue
        assert o.count <= 36
        assert o.total + o.forgiven_after_term == o.balance + o.interest
        if cap is not None:
            assert o.largest_instalment <= cap
