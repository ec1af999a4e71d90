"""Fees and interest: off by default; exact and capped by law where a creditor turns them on.

Nothing here charges anything unless :class:`FeeSettings` says the creditor
turned it on; even then every amount is the legal maximum or less:

* Norway: a reminder or inkassovarsel may carry 1/20 of the inkassosats, only
  when sent at least 14 days after the due date, and only on the first two
  fee-bearing notices (inkassoforskriften § 1-2).
* Germany: default interest at 5 points over the base rate (BGB § 288 (1)),
  reminder costs at actual cost only, and the reminder that creates default is
  free.
* Bulgaria: statutory late interest at the ECB main refinancing rate plus 8
  points (from 2026-01-01; check).

Interest is simple interest: days after the start date up to and including
the end date, split wherever the rate changes, over the pack's day count
(ACT/365 for Germany, ACT/360 for Bulgaria), rounded once at the end.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.relief.fees import FeeSettings, norway_reminder_fee
>>> on = FeeSettings(reminder_fees=True)
>>> norway_reminder_fee(Money("1000.00", "NOK"), due=dt.date(2026, 3, 1), sent_on=dt.date(2026, 3, 15),
...                     fee_notices_before=0, pack=get_pack("no"), settings=on).amount
Money('37.50', 'NOK')
>>> norway_reminder_fee(Money("1000.00", "NOK"), due=dt.date(2026, 3, 1), sent_on=dt.date(2026, 3, 15),
...                     fee_notices_before=0, pack=get_pack("no"), settings=FeeSettings()).amount
Money('0.00', 'NOK')
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import attrs

from ..errors import ConfigurationError, ValidationError
from ..money import Money
from ..policy.packs import PolicyPack
from .payment_default import DefaultStart
from .reasons import Outcome, Reason, note, rule_reason

__all__ = [
    "FeeDecision",
    "FeeSettings",
    "bulgaria_late_interest",
    "germany_default_interest",
    "germany_reminder_cost",
    "norway_reminder_fee",
]


@attrs.frozen
class FeeSettings:
    """What a creditor turned on (everything off by default).

    :param reminder_fees: charge reminder fees where the law allows.
    :param late_interest: charge statutory late interest where the law allows.
    """

    reminder_fees: bool = False
    late_interest: bool = False


@attrs.frozen
class FeeDecision:
    """An amount to charge (possibly zero) and why.

    :param amount: the fee or interest, exact, at the currency's minor unit.
    :param reasons: the rules applied.
    """

    amount: Money
    reasons: tuple[Reason, ...]


def _off(currency: str, what: str) -> FeeDecision:
    return FeeDecision(
        Money.zero(currency),
        (note("creditor.fees", "creditor's fee settings", Outcome.DENY, what=what),),
    )


def norway_reminder_fee(
    principal: Money,
    *,
    due: dt.date,
    sent_on: dt.date,
    fee_notices_before: int,
    pack: PolicyPack,
    settings: FeeSettings,
) -> FeeDecision:
    """The fee a Norwegian reminder (purring) or inkassovarsel may carry.

    :param principal: the claim (NOK).
    :param due: its due date.
    :param sent_on: the day the notice is sent.
    :param fee_notices_before: fee-bearing notices already sent on this claim.
    :param pack: the policy pack (the rules in force on the day apply).
    :param settings: the creditor's :class:`FeeSettings` (everything off by default).
    """
    cur = principal.currency
    if not settings.reminder_fees:
        return _off(cur, "reminder fees")
    reasons: list[Reason] = []
    wait: int = pack.value("no.reminder_fee_min_days_after_due", on=sent_on)
    if sent_on < due + dt.timedelta(days=wait):
        reasons.append(
            rule_reason(
                pack,
                "no.reminder_fee_min_days_after_due",
                sent_on,
                Outcome.DENY,
                before=(due + dt.timedelta(days=wait)).isoformat(),
                days=wait,
            )
        )
        return FeeDecision(Money.zero(cur), tuple(reasons))
    most: int = pack.value("no.max_fee_notices", on=sent_on)
    if fee_notices_before >= most:
        reasons.append(
            rule_reason(
                pack,
                "no.max_fee_notices",
                sent_on,
                Outcome.DENY,
                sent=fee_notices_before,
                most=most,
            )
        )
        return FeeDecision(Money.zero(cur), tuple(reasons))
    sats: Decimal = pack.value("no.inkassosats", on=sent_on)
    div: int = pack.value("no.reminder_fee_divisor", on=sent_on)
    fee = Money.of(sats / div, cur)
    reasons.append(rule_reason(pack, "no.inkassosats", sent_on, Outcome.INFO, sats=str(sats)))
    reasons.append(
        rule_reason(pack, "no.reminder_fee_divisor", sent_on, Outcome.ALLOW, divisor=div, fee=str(fee))
    )
    return FeeDecision(fee, tuple(reasons))


def _rate_periods(
    pack: PolicyPack, rule_id: str, start: dt.date, end: dt.date
) -> list[tuple[dt.date, dt.date, Decimal]]:
    """Split (start, end] into periods of constant rule value."""
    periods: list[tuple[dt.date, dt.date, Decimal]] = []
    day = start + dt.timedelta(days=1)
    while day <= end:
        rate: Decimal = pack.value(rule_id, on=day)
        stop = day
        while stop < end and pack.value(rule_id, on=stop + dt.timedelta(days=1)) == rate:
            stop += dt.timedelta(days=1)
        periods.append((day, stop, rate))
        day = stop + dt.timedelta(days=1)
    return periods


def _accrue(
    principal: Money,
    start: dt.date,
    end: dt.date,
    rate_of: list[tuple[dt.date, dt.date, Decimal]],
    basis: int,
) -> Money:
    acc = Decimal(0)
    for a, b, pct in rate_of:
        acc += principal.amount * pct / 100 * Decimal((b - a).days + 1) / basis
    return Money.of(
        acc.quantize(Decimal(1).scaleb(-principal.exponent), rounding=ROUND_HALF_UP), principal.currency
    )


def _basis(convention: str) -> int:
    if convention not in ("ACT/365", "ACT/360"):
        raise ConfigurationError(f"unknown day-count convention {convention!r}")
    return 365 if convention == "ACT/365" else 360


def germany_default_interest(
    principal: Money,
    *,
    start: DefaultStart | None = None,
    default_from: dt.date | None = None,
    until: dt.date,
    pack: PolicyPack,
    settings: FeeSettings,
) -> FeeDecision:
    """German default interest (Verzugszinsen) for a consumer: base rate + 5 points, ACT/365.

    :param start: when default began, from :func:`~carecollect.relief.payment_default.germany_default_start`
        (interest runs from its ``interest_from``).
    :param default_from: instead of ``start``: the day of the event that caused default
        (interest runs from the next day).
    :param until: the last day counted (not before the day before interest starts).

    :param principal: the overdue amount (EUR).
    :param pack: the policy pack (the rules in force on the day apply).
    :param settings: the creditor's :class:`FeeSettings` (everything off by default).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.policy import get_pack
    >>> germany_default_interest(Money("1000.00", "EUR"), default_from=dt.date(2025, 12, 31),
    ...     until=dt.date(2026, 12, 31), pack=get_pack("de"), settings=FeeSettings(late_interest=True)).amount
    Money('62.70', 'EUR')
    """
    cur = principal.currency
    if (start is None) == (default_from is None):
        raise ValidationError("FeeDecision", "start", "give either start or default_from")
    if start is not None:
        default_from = start.interest_from - dt.timedelta(days=1)
    assert default_from is not None
    if not settings.late_interest:
        return _off(cur, "default interest")
    if until < default_from:
        raise ValidationError("FeeDecision", "until", "is before the start of default")
    points: Decimal = pack.value("de.default_interest_points", on=until)
    periods = [
        (a, b, r + points) for a, b, r in _rate_periods(pack, "de.base_rate_percent", default_from, until)
    ]
    basis = _basis(pack.value("de.interest_day_count", on=until))
    amount = _accrue(principal, default_from, until, periods, basis)
    reasons = tuple(
        rule_reason(
            pack, "de.base_rate_percent", a, Outcome.INFO, start=a.isoformat(), end=b.isoformat(), rate=str(r)
        )
        for a, b, r in periods
    )
    return FeeDecision(
        amount,
        (
            *reasons,
            rule_reason(
                pack,
                "de.default_interest_points",
                until,
                Outcome.ALLOW,
                points=str(points),
                basis=basis,
            ),
        ),
    )


def germany_reminder_cost(
    actual_cost: Money, *, creates_default: bool, on: dt.date, pack: PolicyPack, settings: FeeSettings
) -> FeeDecision:
    """What a German Mahnung may cost the patient: nothing for the one that creates default; otherwise the
    actual cost, never more than ``de.reminder_cost_max``.

    :param actual_cost: what the reminder actually cost the creditor.
    :param creates_default: this is the reminder that puts the patient in default.
    :param on: the day whose rules apply.
    :param pack: the policy pack (the rules in force on the day apply).
    :param settings: the creditor's :class:`FeeSettings` (everything off by default).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.policy import get_pack
    >>> s = FeeSettings(reminder_fees=True)
    >>> germany_reminder_cost(Money("1.10", "EUR"), creates_default=True, on=dt.date(2026, 3, 1), pack=get_pack("de"), settings=s).amount
    Money('0.00', 'EUR')
    >>> germany_reminder_cost(Money("5.00", "EUR"), creates_default=False, on=dt.date(2026, 3, 1), pack=get_pack("de"), settings=s).amount
    Money('2.50', 'EUR')
    """
    cur = actual_cost.currency
    if not settings.reminder_fees:
        return _off(cur, "reminder fees")
    if creates_default and pack.value("de.first_reminder_free", on=on):
        return FeeDecision(
            Money.zero(cur),
            (
                rule_reason(
                    pack,
                    "de.first_reminder_free",
                    on,
                    Outcome.DENY,
                ),
            ),
        )
    cap = Money.of(pack.value("de.reminder_cost_max", on=on), cur)
    if actual_cost > cap:
        return FeeDecision(
            cap,
            (
                rule_reason(
                    pack,
                    "de.reminder_cost_max",
                    on,
                    Outcome.CONDITION,
                    case="capped",
                    cost=str(actual_cost),
                    cap=str(cap),
                ),
            ),
        )
    return FeeDecision(
        actual_cost, (rule_reason(pack, "de.reminder_cost_max", on, Outcome.ALLOW, case="actual"),)
    )


def bulgaria_late_interest(
    principal: Money, *, late_from: dt.date, until: dt.date, pack: PolicyPack, settings: FeeSettings
) -> FeeDecision:
    """Bulgarian statutory late interest: ECB MRO + 8 points (from 2026-01-01; check), ACT/360 (check).

    :param principal: the amount the interest or fee is computed on.
    :param late_from: the last day before lateness (interest runs from the next day).
    :param until: the last day counted.
    :param pack: the policy pack (the rules in force on the day apply).
    :param settings: the creditor's :class:`FeeSettings` (everything off by default).

    >>> import datetime as dt
    >>> from carecollect.money import Money
    >>> from carecollect.policy import get_pack
    >>> bulgaria_late_interest(Money("1000.00", "EUR"), late_from=dt.date(2026, 1, 31), until=dt.date(2026, 3, 2),
    ...     pack=get_pack("bg"), settings=FeeSettings(late_interest=True)).amount
    Money('8.46', 'EUR')
    """
    cur = principal.currency
    if not settings.late_interest:
        return _off(cur, "late interest")
    if until < late_from:
        raise ValidationError("FeeDecision", "until", "is before the start of lateness")
    points: Decimal = pack.value("bg.late_interest_points", on=late_from + dt.timedelta(days=1))
    periods = [(a, b, r + points) for a, b, r in _rate_periods(pack, "bg.ecb_mro_percent", late_from, until)]
    basis = _basis(pack.value("bg.interest_day_count", on=until))
    amount = _accrue(principal, late_from, until, periods, basis)
    return FeeDecision(
        amount,
        (
            rule_reason(pack, "bg.ecb_mro_percent", until, Outcome.INFO),
            rule_reason(
                pack,
                "bg.late_interest_points",
                until,
                Outcome.ALLOW,
                points=str(points),
                basis=basis,
            ),
        ),
    )
