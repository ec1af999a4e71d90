"""Prompt-pay, self-pay and early-out incentives: the creditor's offers as data, each with a validity window.

Seed article 003 asks for "early-out and other incentives" so patients have
choices. An :class:`Incentive` is a discount (a percentage or a fixed amount)
valid from one date to another, inclusive. Discounts do not stack: the patient
gets the single best offer in force (:func:`best_incentive`), and a discount
never exceeds the balance.

>>> import datetime as dt
>>> from decimal import Decimal
>>> from carecollect.money import Money
>>> from carecollect.relief.incentives import Incentive, IncentiveKind, best_incentive
>>> early = Incentive.within_days("EO-1", IncentiveKind.EARLY_OUT, dt.date(2026, 3, 2), 30, percent=Decimal("10"))
>>> early.valid_until
datetime.date(2026, 4, 1)
>>> offer, discount = best_incentive(Money("480.00", "USD"), [early], on=dt.date(2026, 3, 20))
>>> offer.id, discount
('EO-1', Money('48.00', 'USD'))
>>> best_incentive(Money("480.00", "USD"), [early], on=dt.date(2026, 4, 2))[0] is None
True
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from decimal import Decimal

import attrs

from ..errors import CurrencyMismatch, ValidationError
from ..money import Money
from ..validation import date_only, identifier

__all__ = ["Incentive", "IncentiveKind", "active_incentives", "best_incentive"]


class IncentiveKind(enum.Enum):
    """Kinds of incentive."""

    #: Pay in full within a window after the statement.
    PROMPT_PAY = "prompt_pay"
    #: For uninsured (self-pay) patients.
    SELF_PAY = "self_pay"
    #: An early-out programme: settle early, before any handoff, for a discount.
    EARLY_OUT = "early_out"


def _percent(instance: Incentive, attribute: attrs.Attribute[Decimal | None], value: Decimal | None) -> None:
    if value is not None and (not isinstance(value, Decimal) or not 0 < value <= 100):
        raise ValidationError(f"Incentive {instance.id}", "percent", "a Decimal above 0 and at most 100")


@attrs.frozen
class Incentive:
    """A discount offer.

    :param id: stable identifier.
    :param kind: :class:`IncentiveKind`.
    :param valid_from: first day it may be accepted.
    :param valid_until: last day it may be accepted (inclusive).
    :param percent: percentage off the balance, or
    :param amount: a fixed amount off (exactly one of the two).
    """

    id: str = attrs.field(validator=identifier)
    kind: IncentiveKind = attrs.field(validator=attrs.validators.instance_of(IncentiveKind))
    valid_from: dt.date = attrs.field(validator=date_only)
    valid_until: dt.date = attrs.field(validator=date_only)
    percent: Decimal | None = attrs.field(default=None, validator=_percent)
    amount: Money | None = None

    def __attrs_post_init__(self) -> None:
        if (self.percent is None) == (self.amount is None):
            raise ValidationError(f"Incentive {self.id}", "percent", "give exactly one of percent and amount")
        if self.amount is not None and not self.amount.is_positive():
            raise ValidationError(f"Incentive {self.id}", "amount", "must be more than zero")
        if self.valid_until < self.valid_from:
            raise ValidationError(f"Incentive {self.id}", "valid_until", "is before valid_from")

    @classmethod
    def within_days(
        cls,
        id: str,
        kind: IncentiveKind,
        start: dt.date,
        days: int,
        *,
        percent: Decimal | None = None,
        amount: Money | None = None,
    ) -> Incentive:
        """An offer valid from ``start`` (a statement date) for ``days`` calendar days after it.

        :param id: stable identifier.
        :param kind: the :class:`IncentiveKind`.
        :param start: the first valid day (a statement date).
        :param days: calendar days the offer stays open after ``start``.
        :param percent: a percentage off, or
        :param amount: a fixed amount off (exactly one of the two).
        """
        return cls(id, kind, start, start + dt.timedelta(days=days), percent, amount)

    def valid_on(self, day: dt.date) -> bool:
        """True when the offer may be accepted on ``day``.

        :param day: the day.
        """
        return self.valid_from <= day <= self.valid_until

    def discount_on(self, balance: Money) -> Money:
        """The discount on ``balance`` (never more than the balance).

        :param balance: the balance the amount is measured against.
        """
        if self.amount is not None:
            if self.amount.currency != balance.currency:
                raise CurrencyMismatch(
                    balance.currency, self.amount.currency, "discount", record=f"Incentive {self.id}"
                )
            d = self.amount
        else:
            assert self.percent is not None
            d = balance.percent(self.percent)
        return d if d <= balance else balance


def active_incentives(
    incentives: Sequence[Incentive], *, on: dt.date, self_pay: bool = False
) -> tuple[Incentive, ...]:
    """The offers valid on ``on`` (self-pay offers only for self-pay patients).

    :param incentives: the creditor's offers.
    :param on: the day the patient would accept the offer.
    :param self_pay: the patient is uninsured (self-pay offers apply).
    """
    return tuple(
        i for i in incentives if i.valid_on(on) and (self_pay or i.kind is not IncentiveKind.SELF_PAY)
    )


def best_incentive(
    balance: Money, incentives: Sequence[Incentive], *, on: dt.date, self_pay: bool = False
) -> tuple[Incentive | None, Money]:
    """The single offer giving the largest discount on ``on`` (ties: the first listed) and that discount.

    :param balance: the balance the amount is measured against.
    :param incentives: the creditor's offers.
    :param on: the day the patient would accept the offer.
    :param self_pay: the patient is uninsured (self-pay offers apply).
    """
    best: Incentive | None = None
    best_d = Money.zero(balance.currency)
    for inc in active_incentives(incentives, on=on, self_pay=self_pay):
        d = inc.discount_on(balance)
        if d > best_d:
            best, best_d = inc, d
    return best, best_d
