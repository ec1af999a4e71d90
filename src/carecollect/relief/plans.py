"""Payment plans fitted to income: several options, capped, exact, with kind handling of misses.

:func:`propose_plan_options` offers the patient a choice (seed article 003):
pay in full (with a prompt-pay or early-out discount if the creditor offers
one), a short plan and a longer plan. Every monthly instalment stays within
the affordability cap: by default 5 % of gross monthly household income, or
lower where the pack or a state rule says so (Colorado: 4 % per hospital bill,
2 % per professional bill for patients at or below 250 % FPL). Schedules come
from :func:`carecollect.plans.build_schedule`, so they sum exactly and land on
business days.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.creditors import Creditor, CreditorRole
>>> from carecollect.relief.plans import Affordability, propose_plan_options
>>> clinic = Creditor(id="C-1", name="Clinic", role=CreditorRole.PROVIDER, country="US")
>>> proposal = propose_plan_options(
...     Money("1200.00", "USD"), today=dt.date(2026, 3, 2), first_due=dt.date(2026, 4, 1),
...     pack=get_pack("us"), creditor=clinic,
...     affordability=Affordability(gross_monthly_income=Money("3000.00", "USD")))
>>> [(o.kind.value, o.count, str(o.largest_instalment)) for o in proposal.options]
[('pay_in_full', 1, 'USD 1200.00'), ('short_plan', 8, 'USD 150.00'), ('long_plan', 24, 'USD 50.00')]
>>> str(proposal.monthly_cap)
'USD 150.00'
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import attrs

from ..calendars import BusinessCalendar
from ..creditors import Creditor
from ..errors import ConfigurationError, PolicyViolation, ValidationError
from ..events import Event
from ..invoices import BillKind
from ..money import Money, total
from ..plans import (
    Instalment,
    InstalmentStatus,
    PaymentPlan,
    PlanStatus,
    build_schedule,
    complete_plan,
    pause_plan,
    resume_plan,
)
from ..policy.packs import PolicyPack
from .incentives import Incentive, best_incentive
from .reasons import Outcome, Reason, note, rule_reason

__all__ = [
    "Affordability",
    "MissedAction",
    "OptionKind",
    "PlanCheck",
    "PlanOption",
    "PlanProposal",
    "apply_paid_after_payments_rule",
    "check_plan",
    "hardship_pause",
    "monthly_cap",
    "option_to_plan",
    "propose_plan_options",
    "resume_after_hardship",
    "state_rule_id",
    "state_value",
]


def state_rule_id(state: str | None, name: str) -> str:
    """The pack rule id of state ``state``'s rule ``name`` (``"state.CO.plan.max_income_percent.hospital"``).

    :param state: a US state code such as ``"CO"`` (``None``: no state).
    :param name: the rule name after the state prefix (``"plan.max_income_percent"``).
    """
    return f"state.{(state or '').upper()}.{name}"


def state_value(pack: PolicyPack, state: str | None, name: str, *, on: dt.date, default: Any = None) -> Any:
    """A state rule's value in force on ``on``, or ``default`` when the state has none.

    :param pack: the policy pack (the rules in force on the day apply).
    :param state: a US state code such as ``"CO"`` (``None``: no state).
    :param name: the rule name after the state prefix (``"plan.max_income_percent"``).
    :param on: the day whose rules apply.
    :param default: returned when the state has no such rule in force.

    >>> from carecollect.policy import get_pack
    >>> state_value(get_pack("us"), "NY", "plan.max_interest_percent", on=dt.date(2026, 1, 5))
    Decimal('2')
    >>> state_value(get_pack("us"), "TX", "plan.max_interest_percent", on=dt.date(2026, 1, 5)) is None
    True
    """
    if not state:
        return default
    rule_id = state_rule_id(state, name)
    if rule_id not in pack.rules:
        return default
    try:
        return pack.value(rule_id, on=on)
    except ConfigurationError:  # the state's rule is not in force yet
        return default


@attrs.frozen
class Affordability:
    """What the patient's household can afford.

    :param gross_monthly_income: gross monthly household income (``None``: not
        known; then only the minimum instalment and maximum term apply).
    :param household_size: persons in the household.
    :param fpl_percent: household income as a % of the poverty guideline, if screened
        (Colorado's caps apply at or below 250 %; unknown counts as eligible). Compared exactly
        with the limit: pass the exact figure (:attr:`Screening.fpl_ratio
        <carecollect.relief.assistance.Screening>` or
        :func:`~carecollect.relief.assistance.fpl_ratio`); a display figure from
        :func:`~carecollect.relief.assistance.fpl_percent` is rounded up, so it never lets an
        income above the line through.
    """

    gross_monthly_income: Money | None = attrs.field(default=None, repr=False)
    household_size: int | None = None
    fpl_percent: Fraction | Decimal | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_annual(
        cls,
        annual_income: Money,
        household_size: int | None = None,
        fpl_percent: Fraction | Decimal | None = None,
    ) -> Affordability:
        """From a yearly income: the monthly figure is a twelfth, rounded down to the minor unit.

        :param annual_income: gross household income a year, in USD.
        :param household_size: persons in the household (at least 1).
        :param fpl_percent: the household's % of the poverty guideline, if screened.

        >>> Affordability.from_annual(Money("40000.00", "USD")).gross_monthly_income
        Money('3333.33', 'USD')
        """
        monthly = Money.from_minor(annual_income.minor_units // 12, annual_income.currency)
        return cls(monthly, household_size, fpl_percent)


class OptionKind(enum.Enum):
    """The kinds of option a patient chooses from."""

    #: Pay the whole balance now (with any prompt-pay discount).
    PAY_IN_FULL = "pay_in_full"
    #: A short plan with larger instalments.
    SHORT_PLAN = "short_plan"
    #: A long plan with instalments within what the patient can afford each month.
    LONG_PLAN = "long_plan"


@attrs.frozen
class PlanOption:
    """One option offered to the patient.

    :param kind: :class:`OptionKind`.
    :param balance: the balance the option settles.
    :param discount: a prompt-pay or early-out discount (pay in full only).
    :param interest: interest added (zero unless the pack allows it and the creditor turns it on).
    :param instalments: the exact schedule (one instalment for pay in full).
    :param forgiven_after_term: what counts as paid after the last instalment
        under a state rule (Colorado: after 36 payments).
    :param incentive_id: the incentive applied, if any.
    :param valid_until: last day the option may be accepted (an incentive's window).
    :param reasons: the rules that shaped it.
    """

    kind: OptionKind
    balance: Money
    discount: Money
    interest: Money
    instalments: tuple[Instalment, ...]
    forgiven_after_term: Money
    incentive_id: str | None = None
    valid_until: dt.date | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def total(self) -> Money:
        """What the patient pays under this option: the sum of the instalments."""
        return total((i.amount for i in self.instalments), self.balance.currency)

    @property
    def count(self) -> int:
        """Number of instalments."""
        return len(self.instalments)

    @property
    def largest_instalment(self) -> Money:
        """The largest single instalment (what the cap is checked against)."""
        return max((i.amount for i in self.instalments), key=lambda m: m.minor_units)


@attrs.frozen
class PlanProposal:
    """The options offered together, the cap they respect and why.

    :param options: pay in full first, then the plans from short to long.
    :param monthly_cap: the affordability cap (``None``: income unknown).
    :param reasons: rules applied to the proposal as a whole.
    """

    options: tuple[PlanOption, ...]
    monthly_cap: Money | None
    reasons: tuple[Reason, ...]

    def option(self, kind: OptionKind) -> PlanOption | None:
        """The option of ``kind``, if offered.

        :param kind: the kind.
        """
        return next((o for o in self.options if o.kind is kind), None)


def monthly_cap(
    affordability: Affordability,
    *,
    currency: str,
    on: dt.date,
    pack: PolicyPack,
    creditor: Creditor,
    bill_kind: BillKind = BillKind.HOSPITAL,
) -> tuple[Money | None, tuple[Reason, ...]]:
    """The largest monthly instalment allowed, rounded *down* to the minor unit, and why.

    The lowest of the pack's cap and any state cap selected by ``creditor.state`` applies.

    :param affordability: the household's :class:`Affordability`.
    :param currency: the account's currency.
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param creditor: the creditor (role, nonprofit flag, state).
    :param bill_kind: hospital or professional bill (Colorado's caps differ).

    >>> from carecollect.policy import get_pack
    >>> from carecollect.creditors import Creditor, CreditorRole
    >>> co = Creditor(id="H-1", name="Hospital", role=CreditorRole.PROVIDER, country="US", state="CO")
    >>> cap, why = monthly_cap(Affordability(Money("2500.00", "USD")), currency="USD", on=dt.date(2026, 3, 2),
    ...                        pack=get_pack("us"), creditor=co, bill_kind=BillKind.PROFESSIONAL)
    >>> cap, why[-1].rule_id
    (Money('50.00', 'USD'), 'state.CO.plan.max_income_percent.professional')
    """
    income = affordability.gross_monthly_income
    if income is None:
        return None, (
            note(
                "plan.max_income_percent",
                "carecollect",
                Outcome.INFO,
                case="unknown",
            ),
        )
    if income.currency != currency:
        raise ValidationError("Affordability", "gross_monthly_income", f"must be in {currency}")
    pct: Decimal = pack.value("plan.max_income_percent", on=on)
    reasons = [
        rule_reason(
            pack,
            "plan.max_income_percent",
            on,
            Outcome.CONDITION,
            case="cap",
            percent=str(pct),
        )
    ]
    state = creditor.state
    if state:
        in_scope = _state_plan_rules_apply(pack, state, affordability, on)
        for name in (f"plan.max_income_percent.{bill_kind.value}", "plan.max_income_percent"):
            spct = state_value(pack, state, name, on=on)
            if spct is not None and in_scope:
                if spct < pct:
                    pct = spct
                reasons.append(
                    rule_reason(
                        pack,
                        state_rule_id(state, name),
                        on,
                        Outcome.CONDITION,
                        state=state,
                        bill=bill_kind.value,
                        percent=str(spct),
                    )
                )
                break
    units = (income.minor_units * pct / 100).to_integral_value(rounding="ROUND_FLOOR")
    return Money.from_minor(int(units), currency), tuple(reasons)


def _state_plan_rules_apply(
    pack: PolicyPack, state: str | None, affordability: Affordability, on: dt.date
) -> bool:
    """True when the state's plan rules cover this household (Colorado: at or below 250 % FPL; unknown: yes)."""
    limit = state_value(pack, state, "plan.income_limit_fpl_percent", on=on)
    if limit is None or affordability.fpl_percent is None:
        return True
    return Fraction(affordability.fpl_percent) <= Fraction(limit)


def _max_interest(pack: PolicyPack, creditor: Creditor, on: dt.date) -> Decimal | None:
    cap: Decimal | None = state_value(pack, creditor.state, "plan.max_interest_percent", on=on)
    return cap


def _interest_rate(
    pack: PolicyPack, creditor: Creditor, on: dt.date, requested: Decimal, reasons: list[Reason]
) -> Decimal:
    if requested <= 0:
        return Decimal(0)
    if not pack.value("plan.interest_allowed", on=on):
        reasons.append(
            rule_reason(
                pack,
                "plan.interest_allowed",
                on,
                Outcome.DENY,
            )
        )
        return Decimal(0)
    cap = _max_interest(pack, creditor, on)
    if cap is not None and requested > cap:
        reasons.append(
            rule_reason(
                pack,
                state_rule_id(creditor.state, "plan.max_interest_percent"),
                on,
                Outcome.CONDITION,
                requested=str(requested),
                cap=str(cap),
            )
        )
        return Decimal(cap)
    reasons.append(
        note(
            "creditor.plan_interest",
            "creditor's plan settings",
            Outcome.INFO,
            percent=str(requested),
        )
    )
    return requested


def _with_interest(
    schedule: tuple[Instalment, ...], principal: Money, annual_percent: Decimal
) -> tuple[Instalment, ...]:
    """Equal principal parts plus a month's interest on the declining balance, each rounded half-up."""
    if annual_percent == 0:
        return schedule
    left = principal.minor_units
    out = []
    for inst in schedule:
        interest = int((Decimal(left) * annual_percent / 1200).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        out.append(
            attrs.evolve(
                inst, amount=Money.from_minor(inst.amount.minor_units + interest, principal.currency)
            )
        )
        left -= inst.amount.minor_units
    return tuple(out)


def _schedule(
    amount: Money,
    count: int,
    first_due: dt.date,
    day_of_month: int | None,
    calendar: BusinessCalendar | None,
    rate: Decimal,
) -> tuple[Instalment, ...]:
    base = build_schedule(amount, count, first_due=first_due, day_of_month=day_of_month, calendar=calendar)
    return _with_interest(base, amount, rate)


def _fits(sched: tuple[Instalment, ...], cap_units: int | None) -> bool:
    return cap_units is None or max(i.amount.minor_units for i in sched) <= cap_units


def propose_plan_options(
    balance: Money,
    *,
    today: dt.date,
    first_due: dt.date,
    pack: PolicyPack,
    creditor: Creditor,
    affordability: Affordability,
    bill_kind: BillKind = BillKind.HOSPITAL,
    incentives: Sequence[Incentive] = (),
    self_pay: bool = False,
    day_of_month: int | None = None,
    interest_percent: Decimal = Decimal(0),
) -> PlanProposal:
    """Offer pay in full, a short plan and a longer plan, each within the affordability cap.

    :param balance: the patient's responsibility (never what an insurer may still pay).
    :param today: the day of the offer (rules in force that day apply).
    :param first_due: the first due date.
    :param pack: the jurisdiction's rules.
    :param creditor: the creditor (its ``state`` selects state rules).
    :param affordability: household income and size.
    :param bill_kind: hospital or professional bill (Colorado caps differ).
    :param incentives: the creditor's prompt-pay / early-out / self-pay offers.
    :param self_pay: the patient is uninsured (self-pay discounts apply).
    :param day_of_month: the patient's chosen day for instalments.
    :param interest_percent: the creditor's yearly plan interest (zero by default;
        used only where the pack allows it, capped by state rules).
    :returns: a :class:`PlanProposal`; when no plan fits within the cap and the
        maximum term, only pay in full is offered and a blocking reason says to
        screen for financial assistance.
    :raises ValidationError: a non-positive balance.
    """
    cur = balance.currency
    if not balance.is_positive():
        raise ValidationError("PlanProposal", "balance", "must be more than zero")
    reasons: list[Reason] = []
    cap, cap_reasons = monthly_cap(
        affordability, currency=cur, on=today, pack=pack, creditor=creditor, bill_kind=bill_kind
    )
    reasons.extend(cap_reasons)
    calendar = pack.calendar if pack.value("plan.roll_to_business_day", on=today) else None
    rate = _interest_rate(pack, creditor, today, interest_percent, reasons)
    zero = Money.zero(cur)

    # -- pay in full ----------------------------------------------------------------------
    offer, discount = best_incentive(balance, incentives, on=today, self_pay=self_pay)
    full_due = first_due if offer is None or offer.valid_until >= first_due else offer.valid_until
    full_reasons: tuple[Reason, ...] = ()
    if offer is not None:
        full_reasons = (
            note(
                f"creditor.incentive.{offer.kind.value}",
                "creditor's incentive policy",
                Outcome.CONDITION,
                kind=offer.kind.value,
                discount=str(discount),
                until=offer.valid_until.isoformat(),
            ),
        )
    options = [
        PlanOption(
            OptionKind.PAY_IN_FULL,
            balance,
            discount,
            zero,
            (Instalment(1, full_due, balance - discount),),
            zero,
            offer.id if offer else None,
            offer.valid_until if offer else None,
            full_reasons,
        )
    ]

    # -- plans ---------------------------------------------------------------------------
    b = balance.minor_units
    cap_units = cap.minor_units if cap is not None else None
    min_units = Money.of(pack.value("plan.min_instalment", on=today), cur).minor_units
    if cap_units is not None and min_units > cap_units:
        min_units = max(cap_units, 1)
        reasons.append(
            rule_reason(
                pack,
                "plan.min_instalment",
                today,
                Outcome.CONDITION,
            )
        )
    limit: int = pack.value("plan.max_term_months", on=today)
    paid_after = (
        state_value(pack, creditor.state, "plan.paid_after_payments", on=today)
        if _state_plan_rules_apply(pack, creditor.state, affordability, today)
        else None
    )
    if paid_after is not None:
        limit = min(limit, paid_after)
    if cap_units is not None and cap_units <= 0:
        reasons.append(
            rule_reason(
                pack,
                "plan.max_income_percent",
                today,
                Outcome.DENY,
                case="no_income",
            )
        )
        return PlanProposal(tuple(options), cap, tuple(reasons))
    needed = 1 if cap_units is None else -(-b // cap_units)
    by_min = max(1, b // min_units) if min_units > 0 else limit

    if needed > limit:
        if paid_after is not None and cap_units is not None:
            paid = Money.from_minor(cap_units * limit, cur)
            sched = _schedule(paid, limit, first_due, day_of_month, calendar, Decimal(0))
            why = rule_reason(
                pack,
                state_rule_id(creditor.state, "plan.paid_after_payments"),
                today,
                Outcome.CONDITION,
                case="offer",
                payments=limit,
                cap=str(cap),
                rest=str(balance - paid),
            )
            options.append(
                PlanOption(OptionKind.LONG_PLAN, balance, zero, zero, sched, balance - paid, reasons=(why,))
            )
        else:
            reasons.append(
                rule_reason(
                    pack,
                    "plan.max_term_months",
                    today,
                    Outcome.DENY,
                    months=limit,
                    cap=str(cap),
                )
            )
        return PlanProposal(tuple(options), cap, tuple(reasons))

    offered: list[int] = []
    for kind, rid in (
        (OptionKind.SHORT_PLAN, "plan.short_term_months"),
        (OptionKind.LONG_PLAN, "plan.long_term_months"),
    ):
        want: int = pack.value(rid, on=today)
        n = max(needed, min(want, by_min, limit))
        if n < 2 or (offered and n <= offered[-1]):
            continue
        sched = _schedule(balance, n, first_due, day_of_month, calendar, rate)
        while (
            not _fits(sched, cap_units) and n < limit
        ):  # interest can push the first instalment over the cap
            n += 1
            sched = _schedule(balance, n, first_due, day_of_month, calendar, rate)
        if not _fits(sched, cap_units) or (offered and n <= offered[-1]):
            continue
        offered.append(n)
        interest = total((i.amount for i in sched), cur) - balance
        options.append(PlanOption(kind, balance, zero, interest, sched, zero))
    return PlanProposal(tuple(options), cap, tuple(reasons))


def option_to_plan(
    option: PlanOption, *, plan_id: str, account_id: str, invoice_ids: Sequence[str], created_at: dt.datetime
) -> PaymentPlan:
    """The proposed :class:`~carecollect.plans.PaymentPlan` for the option the patient chose.

    The plan's total is what the patient pays under the option (a discount or
    a state's "counts as paid" remainder is posted as an adjustment, not paid).

    :param option: the option the patient chose.
    :param plan_id: id of the new plan.
    :param account_id: the account.
    :param invoice_ids: the invoices the plan covers.
    :param created_at: when the plan is proposed (aware).
    """
    rate = "0" if option.interest.is_zero() else "see schedule"
    return PaymentPlan(
        id=plan_id,
        account_id=account_id,
        invoice_ids=tuple(invoice_ids),
        total=option.total,
        instalments=option.instalments,
        created_at=created_at,
        interest_rate_percent=rate,
    )


# -- missed instalments, hardship ---------------------------------------------------------


class MissedAction(enum.Enum):
    """What to do about a plan today."""

    #: Every instalment due so far is paid: nothing to do.
    ON_TRACK = "on_track"
    #: An instalment is overdue: send a friendly reminder (no fee, no threat).
    SEND_REMINDER = "send_reminder"
    #: Reminded, still inside the grace period: wait.
    WAIT = "wait"
    #: Grace over: mark the instalment missed (:func:`carecollect.plans.mark_instalment_missed`).
    MARK_MISSED = "mark_missed"
    #: Enough instalments missed: the plan may be called defaulted (:func:`carecollect.plans.default_plan`).
    DEFAULT = "default"
    #: Paused for hardship: nothing is due.
    PAUSED = "paused"
    #: Not active (proposed, completed, cancelled, defaulted).
    NOT_ACTIVE = "not_active"


@attrs.frozen
class PlanCheck:
    """The result of :func:`check_plan`.

    :param action: :class:`MissedAction`.
    :param instalment_number: the instalment concerned, if any.
    :param act_on: the date the next step becomes due (for ``WAIT``: the day after grace ends).
    :param reasons: why.
    """

    action: MissedAction
    instalment_number: int | None
    act_on: dt.date | None
    reasons: tuple[Reason, ...]


def check_plan(
    plan: PaymentPlan, *, today: dt.date, pack: PolicyPack, reminded_on: Mapping[int, dt.date] | None = None
) -> PlanCheck:
    """Decide how to handle overdue instalments: remind, wait out the grace period, mark missed, or default.

    :param plan: the plan.
    :param today: the day of the check.
    :param pack: the rules (``plan.grace_days``, ``plan.reminder_before_default``, ``plan.missed_before_default``).
    :param reminded_on: instalment number → date a friendly reminder was sent.

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.plans import PaymentPlan, PlanStatus, build_schedule
    >>> from carecollect.policy import get_pack
    >>> t = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    >>> plan = PaymentPlan("PL-1", "A-1", ("INV-1",), Money("300.00", "USD"),
    ...     build_schedule(Money("300.00", "USD"), 3, first_due=dt.date(2026, 2, 2)), t, PlanStatus.ACTIVE)
    >>> check_plan(plan, today=dt.date(2026, 2, 3), pack=get_pack("us")).action.value
    'send_reminder'
    >>> c = check_plan(plan, today=dt.date(2026, 2, 10), pack=get_pack("us"), reminded_on={1: dt.date(2026, 2, 3)})
    >>> c.action.value, c.act_on.isoformat()
    ('wait', '2026-02-18')
    """
    reminded = reminded_on or {}
    if plan.status is PlanStatus.PAUSED:
        return PlanCheck(
            MissedAction.PAUSED,
            None,
            None,
            (note("record.plan_paused", "plan record", Outcome.INFO),),
        )
    if plan.status is not PlanStatus.ACTIVE:
        return PlanCheck(MissedAction.NOT_ACTIVE, None, None, ())
    threshold: int = pack.value("plan.missed_before_default", on=today)
    if len(plan.missed) >= threshold:
        why = rule_reason(
            pack,
            "plan.missed_before_default",
            today,
            Outcome.ALLOW,
            missed=len(plan.missed),
            threshold=threshold,
        )
        return PlanCheck(MissedAction.DEFAULT, plan.missed[-1].number, today, (why,))
    grace: int = pack.value("plan.grace_days", on=today)
    must_remind: bool = pack.value("plan.reminder_before_default", on=today)
    for inst in plan.instalments:
        if inst.status is not InstalmentStatus.DUE or inst.due_date >= today:
            continue
        grace_end = inst.due_date + dt.timedelta(days=grace)
        sent = reminded.get(inst.number)
        if must_remind and (sent is None or sent < inst.due_date):
            why = rule_reason(
                pack,
                "plan.reminder_before_default",
                today,
                Outcome.DEFER,
                instalment=inst.number,
            )
            return PlanCheck(MissedAction.SEND_REMINDER, inst.number, today, (why,))
        if today <= grace_end:
            why = rule_reason(
                pack,
                "plan.grace_days",
                today,
                Outcome.DEFER,
                case="runs",
                days=grace,
                until=grace_end.isoformat(),
            )
            return PlanCheck(MissedAction.WAIT, inst.number, grace_end + dt.timedelta(days=1), (why,))
        why = rule_reason(
            pack,
            "plan.grace_days",
            today,
            Outcome.ALLOW,
            case="missed",
            instalment=inst.number,
            days=grace,
        )
        return PlanCheck(MissedAction.MARK_MISSED, inst.number, today, (why,))
    return PlanCheck(MissedAction.ON_TRACK, None, None, ())


def hardship_pause(
    plan: PaymentPlan, *, on: dt.date, at: dt.datetime, pack: PolicyPack, months: int
) -> tuple[PaymentPlan, Event, tuple[Reason, ...]]:
    """Pause an active plan for hardship (nothing is missed while paused).

    :param months: the pause staff grant; longer than ``plan.hardship_pause_max_months``
        needs escalation (the reason says so; the pause is still granted).

    :param plan: the plan.
    :param on: the first day of the pause.
    :param at: the instant (aware).
    :param pack: the policy pack (the rules in force on the day apply).
    """
    new, event = pause_plan(plan, on=on, at=at)
    limit: int = pack.value("plan.hardship_pause_max_months", on=on)
    outcome = Outcome.ALLOW if months <= limit else Outcome.INFO
    why = (
        rule_reason(pack, "plan.hardship_pause_max_months", on, outcome, case="granted", months=months)
        if months <= limit
        else rule_reason(
            pack, "plan.hardship_pause_max_months", on, outcome, case="escalate", months=months, most=limit
        )
    )
    return new, event, (why,)


def resume_after_hardship(
    plan: PaymentPlan,
    *,
    first_due: dt.date,
    at: dt.datetime,
    pack: PolicyPack,
    creditor: Creditor,
    affordability: Affordability,
    bill_kind: BillKind = BillKind.HOSPITAL,
) -> tuple[PaymentPlan, Event, tuple[Reason, ...]]:
    """Resume a paused plan, re-amortising what remains within the (new) affordability cap.

    The number of new instalments is the fewest that keeps each within the cap,
    but not fewer than the instalments that were left.

    :raises PolicyViolation: what remains cannot fit the cap within the maximum term
        (screen for financial assistance instead).

    :param plan: the plan.
    :param first_due: the first new due date.
    :param at: the instant (aware).
    :param pack: the policy pack (the rules in force on the day apply).
    :param creditor: the creditor (role, nonprofit flag, state).
    :param affordability: the household's :class:`Affordability`.
    :param bill_kind: hospital or professional bill (Colorado's caps differ).
    """
    on = first_due
    cur = plan.total.currency
    remaining = plan.remaining
    cap, reasons = monthly_cap(
        affordability, currency=cur, on=on, pack=pack, creditor=creditor, bill_kind=bill_kind
    )
    left = sum(1 for i in plan.instalments if i.status is not InstalmentStatus.PAID)
    limit: int = pack.value("plan.max_term_months", on=on)
    needed = 1 if cap is None or cap.is_zero() else -(-remaining.minor_units // cap.minor_units)
    if cap is not None and (cap.is_zero() or needed > limit):
        raise PolicyViolation(
            f"PaymentPlan {plan.id}: what remains cannot fit the affordability cap within "
            f"{limit} months; screen for financial assistance"
        )
    count = max(needed, left, 1)
    calendar = pack.calendar if pack.value("plan.roll_to_business_day", on=on) else None
    new, event = resume_plan(plan, count=count, first_due=first_due, at=at, calendar=calendar)
    return (
        new,
        event,
        (
            *reasons,
            note(
                "record.reamortised",
                "plan record",
                Outcome.CONDITION,
                remaining=str(remaining),
                count=count,
            ),
        ),
    )


def apply_paid_after_payments_rule(
    plan: PaymentPlan,
    *,
    pack: PolicyPack,
    creditor: Creditor,
    at: dt.datetime,
    affordability: Affordability | None = None,
) -> tuple[PaymentPlan, Event, Reason] | None:
    """Complete a plan whose state says the balance counts as paid after N payments (Colorado: 36).

    Returns ``None`` when the rule does not apply (yet); otherwise the completed
    plan (unpaid instalments forgiven), its event and the reason. Colorado's
    rule covers households at or below 250 % of the poverty guideline: pass the
    screened ``affordability`` and a household above it is left alone (not
    screened: the rule applies, in the patient's favour).

    :param plan: the plan.
    :param pack: the policy pack (the rules in force on the day apply).
    :param creditor: the creditor (role, nonprofit flag, state).
    :param at: the instant (aware).
    :param affordability: the household's screening, if known.
    """
    on = at.date()
    if affordability is not None and not _state_plan_rules_apply(pack, creditor.state, affordability, on):
        return None
    n = state_value(pack, creditor.state, "plan.paid_after_payments", on=on)
    if n is None or not plan.status.current or plan.paid_count < n or plan.remaining.is_zero():
        return None
    new, event = complete_plan(plan, at=at, reason=state_rule_id(creditor.state, "plan.paid_after_payments"))
    why = rule_reason(
        pack,
        state_rule_id(creditor.state, "plan.paid_after_payments"),
        on,
        Outcome.CONDITION,
        case="done",
        payments=plan.paid_count,
        remaining=str(plan.remaining),
    )
    return new, event, why
