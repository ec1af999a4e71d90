"""Financial assistance: poverty-guideline screening, free and discounted care, and the 501(r) timeline.

Screening compares household income with the HHS poverty guideline for the
household's size and region (48 states and DC, Alaska, Hawaii; 2025 and 2026
tables in the US pack). The tiers are the creditor's policy, not federal law;
the common default is free care at or below 200 % and a sliding discount up
to 400 % (:meth:`AssistancePolicy.from_pack`).

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.relief.assistance import AssistancePolicy, poverty_guideline, screen
>>> poverty_guideline(4, on=dt.date(2026, 3, 1), pack=get_pack("us"))
Money('33000.00', 'USD')
>>> s = screen(Money("80000.00", "USD"), 4, on=dt.date(2026, 3, 1), pack=get_pack("us"),
...            policy=AssistancePolicy.from_pack(get_pack("us"), on=dt.date(2026, 3, 1)))
>>> s.fpl_percent, s.eligibility.value, s.discount_percent
(Decimal('242.43'), 'discount', Decimal('80'))
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

import attrs

from ..assistance_applications import ApplicationStatus, AssistanceApplication
from ..errors import ValidationError
from ..money import Money
from ..policy.packs import PolicyPack
from .reasons import Outcome, Reason, note, rule_reason

__all__ = [
    "ApplicationStatus",
    "AssistanceApplication",
    "AssistancePolicy",
    "DiscountTier",
    "EcaTimeline",
    "Eligibility",
    "FplRegion",
    "PresumptiveBasis",
    "Screening",
    "application_suspends_eca",
    "display_percent",
    "eca_timeline",
    "fpl_percent",
    "fpl_ratio",
    "poverty_guideline",
    "region_for_state",
    "screen",
    "within_application_period",
]


class FplRegion(enum.Enum):
    """Which poverty-guideline table applies."""

    #: The 48 contiguous states and the District of Columbia.
    CONTIGUOUS = "contiguous"
    #: Alaska's own, higher table.
    ALASKA = "alaska"
    #: Hawaii's own, higher table.
    HAWAII = "hawaii"


def region_for_state(state: str | None) -> FplRegion:
    """The table for a US state of residence (``None`` or any other state: the 48-state table).

    :param state: a US state code such as ``"CO"`` (``None``: no state).

    >>> region_for_state("AK"), region_for_state("hi"), region_for_state(None)
    (<FplRegion.ALASKA: 'alaska'>, <FplRegion.HAWAII: 'hawaii'>, <FplRegion.CONTIGUOUS: 'contiguous'>)
    """
    s = (state or "").upper()
    return {"AK": FplRegion.ALASKA, "HI": FplRegion.HAWAII}.get(s, FplRegion.CONTIGUOUS)


def poverty_guideline(
    household_size: int, *, on: dt.date, pack: PolicyPack, region: FplRegion = FplRegion.CONTIGUOUS
) -> Money:
    """The yearly poverty guideline in USD for ``household_size`` persons, from the table in force on ``on``.

    :raises ValidationError: a household of fewer than one person.
    :raises ConfigurationError: the pack has no table for that date.
    :param household_size: persons in the household (at least 1).
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param region: the poverty-guideline table (48 states and DC, Alaska, Hawaii).

    >>> from carecollect.policy import get_pack
    >>> poverty_guideline(1, on=dt.date(2025, 6, 1), pack=get_pack("us"), region=FplRegion.ALASKA)
    Money('19550.00', 'USD')
    """
    if isinstance(household_size, bool) or not isinstance(household_size, int) or household_size < 1:
        raise ValidationError("Screening", "household_size", "must be a positive int")
    first, extra = pack.value(f"fpl.{region.value}", on=on)
    return Money.of(first + extra * (household_size - 1), "USD")


def fpl_ratio(
    annual_income: Money,
    household_size: int,
    *,
    on: dt.date,
    pack: PolicyPack,
    region: FplRegion = FplRegion.CONTIGUOUS,
) -> Fraction:
    """Household income as a percentage of the guideline, exactly (``income × 100 / guideline``).

    Every decision against a percentage limit (the screen's tiers, Colorado's 250 % line) uses
    this figure: ``fpl_ratio(...) <= limit`` is the exact comparison
    ``income × 100 <= limit × guideline``, with no rounding.  :func:`fpl_percent` is the same
    figure rounded for display.

    :param annual_income: gross household income a year, in USD.
    :param household_size: persons in the household (at least 1).
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param region: the poverty-guideline table (48 states and DC, Alaska, Hawaii).
    :raises ValidationError: an income not in USD, or a household of fewer than one person.

    >>> from carecollect.policy import get_pack
    >>> r = fpl_ratio(Money("31921.00", "USD"), 1, on=dt.date(2026, 2, 1), pack=get_pack("us"))
    >>> r, r > 200
    (Fraction(159605, 798), True)
    """
    if annual_income.currency != "USD":
        raise ValidationError("Screening", "annual_income", "poverty guidelines are in USD")
    guideline = poverty_guideline(household_size, on=on, pack=pack, region=region)
    return Fraction(annual_income.minor_units * 100, guideline.minor_units)


def display_percent(ratio: Fraction) -> Decimal:
    """An exact percentage rounded *up* to two places, for display only.

    Rounding up keeps the shown figure on the same side of any limit with two decimals or
    fewer as the exact one: an income a hair above 200 % reads 200.01 %, never 200.00 %.

    :param ratio: the exact percentage (:func:`fpl_ratio`).

    >>> from fractions import Fraction
    >>> display_percent(Fraction(159605, 798)), display_percent(Fraction(200))
    (Decimal('200.01'), Decimal('200.00'))
    """
    hundredths = -((-ratio.numerator * 100) // ratio.denominator)  # ceiling, in integers
    return Decimal(hundredths).scaleb(-2)


def fpl_percent(
    annual_income: Money,
    household_size: int,
    *,
    on: dt.date,
    pack: PolicyPack,
    region: FplRegion = FplRegion.CONTIGUOUS,
) -> Decimal:
    """Household income as a percentage of the guideline, for display: :func:`fpl_ratio` rounded
    up to two places (:func:`display_percent`).  Decisions use :func:`fpl_ratio`.

    :param annual_income: gross household income a year, in USD.
    :param household_size: persons in the household (at least 1).
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param region: the poverty-guideline table (48 states and DC, Alaska, Hawaii).

    >>> from carecollect.policy import get_pack
    >>> fpl_percent(Money("31920.00", "USD"), 1, on=dt.date(2026, 2, 1), pack=get_pack("us"))
    Decimal('200.00')
    """
    return display_percent(fpl_ratio(annual_income, household_size, on=on, pack=pack, region=region))


class Eligibility(enum.Enum):
    """The result of screening."""

    #: Eligible for free care.
    FREE = "free"
    #: Eligible for a discount.
    DISCOUNT = "discount"
    #: Not eligible under the policy.
    NOT_ELIGIBLE = "not_eligible"


class PresumptiveBasis(enum.Enum):
    """Facts that make a patient presumptively eligible, without an income check."""

    #: The patient is enrolled in Medicaid.
    MEDICAID = "medicaid"
    #: The patient receives SNAP (food assistance).
    SNAP = "snap"
    #: The patient receives WIC benefits.
    WIC = "wic"
    #: The patient is homeless.
    HOMELESS = "homeless"
    #: The patient died and left no estate.
    DECEASED_NO_ESTATE = "deceased_no_estate"
    #: The patient is in bankruptcy.
    BANKRUPTCY = "bankruptcy"


@attrs.frozen
class DiscountTier:
    """Up to and including ``max_fpl_percent``, ``discount_percent`` off.

    :param max_fpl_percent: upper bound of the tier (% of the guideline).
    :param discount_percent: discount on the patient's responsibility (0-100).
    """

    max_fpl_percent: Decimal
    discount_percent: Decimal


def _tier_tuple(value: Iterable[DiscountTier]) -> tuple[DiscountTier, ...]:
    return tuple(value)


def _tiers(
    instance: AssistancePolicy,
    attribute: attrs.Attribute[tuple[DiscountTier, ...]],
    value: tuple[DiscountTier, ...],
) -> None:
    bounds = [t.max_fpl_percent for t in value]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise ValidationError("AssistancePolicy", "tiers", "tiers must rise strictly by max_fpl_percent")
    for t in value:
        if not 0 < t.discount_percent <= 100:
            raise ValidationError("AssistancePolicy", "tiers", "discounts must be above 0 and at most 100 %")


def _plain(d: Decimal) -> Decimal:
    """``Decimal('250.00')`` → ``Decimal('250')`` without exponent notation; two places at most."""
    q = d.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return q.quantize(Decimal(1)) if q == q.to_integral_value() else q


@attrs.frozen
class AssistancePolicy:
    """A creditor's financial-assistance policy as data.

    :param free_at_or_below: free care at or below this % of the guideline.
    :param tiers: discount tiers above it, rising.
    :param presumptive: bases that make a patient presumptively eligible for free care.
    :param source: where the policy is published (shown in reasons).
    """

    free_at_or_below: Decimal
    tiers: tuple[DiscountTier, ...] = attrs.field(converter=_tier_tuple, validator=_tiers)
    presumptive: frozenset[PresumptiveBasis] = attrs.field(
        default=frozenset(PresumptiveBasis), converter=frozenset
    )
    source: str = "creditor's financial-assistance policy"

    @classmethod
    def from_pack(cls, pack: PolicyPack, *, on: dt.date, steps: int = 4) -> AssistancePolicy:
        """The common default: free at or below ``assistance.free_at_or_below_fpl_percent``, then a
        discount sliding down in ``steps`` equal tiers to ``assistance.discount_up_to_fpl_percent``.

        :param pack: the policy pack (the rules in force on the day apply).
        :param on: the day whose rules apply.
        :param steps: number of equal discount tiers.

        >>> import datetime as dt
        >>> from carecollect.policy import get_pack
        >>> p = AssistancePolicy.from_pack(get_pack("us"), on=dt.date(2026, 1, 5))
        >>> [(str(t.max_fpl_percent), str(t.discount_percent)) for t in p.tiers]
        [('250', '80'), ('300', '60'), ('350', '40'), ('400', '20')]
        """
        free: Decimal = pack.value("assistance.free_at_or_below_fpl_percent", on=on)
        top: Decimal = pack.value("assistance.discount_up_to_fpl_percent", on=on)
        width = (top - free) / steps
        tiers = tuple(
            DiscountTier(free + width * (k + 1), Decimal(100) * (steps - k) / (steps + 1))
            for k in range(steps)
        )
        tiers = tuple(
            attrs.evolve(
                t, max_fpl_percent=_plain(t.max_fpl_percent), discount_percent=_plain(t.discount_percent)
            )
            for t in tiers
        )
        return cls(
            free,
            tiers,
            source="carecollect default tiers ("
            + pack.rule("assistance.free_at_or_below_fpl_percent", on=on).source
            + ")",
        )


@attrs.frozen
class Screening:
    """The result of :func:`screen`.

    :param eligibility: :class:`Eligibility`.
    :param discount_percent: 100 for free care, the tier's discount, or 0.
    :param fpl_percent: the household's % of the guideline for display, rounded up to two
        places (``None`` when presumptive).
    :param reasons: why.
    :param fpl_ratio: the exact % the tier was decided on (:func:`fpl_ratio`; ``None`` when
        presumptive).  Pass this, not the display figure, to
        :class:`~carecollect.relief.plans.Affordability`.
    """

    eligibility: Eligibility
    discount_percent: Decimal
    fpl_percent: Decimal | None = attrs.field(repr=False)
    reasons: tuple[Reason, ...]
    fpl_ratio: Fraction | None = attrs.field(default=None, repr=False)

    def discount_on(self, balance: Money) -> Money:
        """The assistance discount on ``balance`` (free care: all of it).

        :param balance: the balance the amount is measured against.
        """
        if self.discount_percent >= 100:
            return balance
        return balance.percent(self.discount_percent)


def screen(
    annual_income: Money | None,
    household_size: int,
    *,
    on: dt.date,
    pack: PolicyPack,
    policy: AssistancePolicy,
    region: FplRegion = FplRegion.CONTIGUOUS,
    presumptive: Sequence[PresumptiveBasis] = (),
) -> Screening:
    """Screen a household against the guideline and the creditor's tiers.

    :param annual_income: gross household income in USD (``None`` allowed when presumptive).
    :param presumptive: facts that make the patient presumptively eligible
        (enrolment in Medicaid, SNAP...); any one the policy accepts gives free care.

    :param household_size: persons in the household (at least 1).
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param policy: the creditor's :class:`AssistancePolicy`.
    :param region: the poverty-guideline table (48 states and DC, Alaska, Hawaii).
    """
    for basis in presumptive:
        if basis in policy.presumptive:
            return Screening(
                Eligibility.FREE,
                Decimal(100),
                None,
                (
                    note(
                        "creditor.assistance.presumptive",
                        policy.source,
                        Outcome.CONDITION,
                        basis=basis.value,
                    ),
                ),
            )
    if annual_income is None:
        raise ValidationError("Screening", "annual_income", "needed unless a presumptive basis applies")
    exact = fpl_ratio(annual_income, household_size, on=on, pack=pack, region=region)
    pct = display_percent(exact)
    fpl_rule = rule_reason(
        pack,
        f"fpl.{region.value}",
        on,
        Outcome.INFO,
        household=household_size,
        percent=str(pct),
    )
    if exact <= Fraction(policy.free_at_or_below):
        return Screening(
            Eligibility.FREE,
            Decimal(100),
            pct,
            (
                fpl_rule,
                note(
                    "creditor.assistance.free",
                    policy.source,
                    Outcome.CONDITION,
                    percent=str(policy.free_at_or_below),
                ),
            ),
            exact,
        )
    for tier in policy.tiers:
        if exact <= Fraction(tier.max_fpl_percent):
            return Screening(
                Eligibility.DISCOUNT,
                tier.discount_percent,
                pct,
                (
                    fpl_rule,
                    note(
                        "creditor.assistance.tier",
                        policy.source,
                        Outcome.CONDITION,
                        discount=str(tier.discount_percent),
                        up_to=str(tier.max_fpl_percent),
                    ),
                ),
                exact,
            )
    return Screening(
        Eligibility.NOT_ELIGIBLE,
        Decimal(0),
        pct,
        (
            fpl_rule,
            note(
                "creditor.assistance.none",
                policy.source,
                Outcome.INFO,
            ),
        ),
        exact,
    )


# -- 501(r): notification and application periods -------------------------------------


@attrs.frozen
class EcaTimeline:
    """The 501(r) dates of one episode of care.

    :param first_statement: the first post-discharge billing statement.
    :param notification_period_ends: first statement + 120 days, the first day an ECA may
        happen if the written notice's 30 days have also passed (POLICY-SOURCES: "no ECA before
        120 days after the first post-discharge billing statement"; wording still to check against the eCFR).
    :param earliest_eca: the first day an ECA may happen (``None`` until the written notice is sent).
    :param application_period_ends: the later of day 240 and the notice's deadline.
    """

    first_statement: dt.date
    notification_period_ends: dt.date
    earliest_eca: dt.date | None
    application_period_ends: dt.date


def eca_timeline(
    first_statement: dt.date,
    *,
    pack: PolicyPack,
    notice_sent_on: dt.date | None = None,
    notice_deadline: dt.date | None = None,
) -> EcaTimeline:
    """The 501(r) timeline (26 CFR 1.501(r)-6(c); check wording against the eCFR).

    :param first_statement: the date of the first post-discharge billing statement.
    :param pack: the policy pack (the rules in force on the day apply).
    :param notice_sent_on: the day the written ECA notice was sent, if it was.
    :param notice_deadline: the deadline the notice states, if any.

    >>> import datetime as dt
    >>> from carecollect.policy import get_pack
    >>> t = eca_timeline(dt.date(2026, 1, 15), pack=get_pack("us"), notice_sent_on=dt.date(2026, 4, 1),
    ...                  notice_deadline=dt.date(2026, 5, 15))
    >>> t.notification_period_ends, t.earliest_eca, t.application_period_ends
    (datetime.date(2026, 5, 15), datetime.date(2026, 5, 15), datetime.date(2026, 9, 12))
    """
    on = first_statement
    notify: int = pack.value("r501.notification_period_days", on=on)
    before: int = pack.value("r501.notice_days_before_eca", on=on)
    app: int = pack.value("r501.application_period_days", on=on)
    ends = first_statement + dt.timedelta(days=notify)
    earliest = None
    if notice_sent_on is not None:
        earliest = max(ends, notice_sent_on + dt.timedelta(days=before))
        if notice_deadline is not None:
            earliest = max(earliest, notice_deadline)
    app_end = first_statement + dt.timedelta(days=app)
    if notice_deadline is not None and notice_deadline > app_end:
        app_end = notice_deadline
    return EcaTimeline(first_statement, ends, earliest, app_end)


def application_suspends_eca(app: AssistanceApplication) -> bool:
    """True when a pending application suspends extraordinary collection actions.

    Under 501(r) an application received within the application period
    suspends ECAs; carecollect suspends for *any* pending application,
    late or not (patient-friendly); :func:`within_application_period` tells
    whether the law also requires it.

    :param app: the application.
    """
    return app.status.pending


def within_application_period(app: AssistanceApplication, timeline: EcaTimeline) -> bool:
    """True when ``app`` was received by the end of the 501(r) application period (the legal minimum).

    :param app: the application.
    :param timeline: the episode's :class:`EcaTimeline`.
    """
    return app.received_on <= timeline.application_period_ends
