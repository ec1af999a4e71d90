"""Exact, currency-aware money.

:class:`Money` extends :class:`money.Money` (from the ``money-py3``
distribution) with what a billing system needs and the base class lacks:

* a strict constructor: ``int``, ``str`` or :class:`~decimal.Decimal` amounts
  only (never ``float``), active ISO 4217 codes only, and never more decimal
  places than the currency's minor unit;
* quantising to the minor unit (JPY 0, EUR 2, BHD 3) with **one** rounding
  rule, :data:`ROUNDING` (half away from zero, the commercial rounding
  printed on invoices in Germany, Norway, Bulgaria and the US);
* :meth:`Money.allocate` and :meth:`Money.split`, which never lose or invent
  a minor unit;
* no arithmetic with bare numbers (``Money + 1`` is an error), exact
  multiplication only by whole numbers, and no way out to a float
  (``float(m)``, ``int(m)``, ``round(m)`` and currency conversion refuse);
* a bounded range: at most :data:`MAX_MINOR_DIGITS` digits of minor units
  (what a signed 64-bit column or a payment file holds), so every sum is
  exact and nothing is silently rounded by :mod:`decimal`;
* conversion to and from integer minor units (:attr:`Money.minor_units`,
  :meth:`Money.from_minor`), which payment files need;
* locale-aware :meth:`Money.format` that requires an explicit locale and
  never derives the currency from it.

>>> from carecollect.money import Money
>>> total = Money("100.00", "EUR")
>>> [str(part) for part in total.split(3)]
['EUR 33.34', 'EUR 33.33', 'EUR 33.33']
>>> Money.of("10.005", "EUR")
Money('10.01', 'EUR')
>>> Money("1.5", "JPY")
Traceback (most recent call last):
...
carecollect.errors.InvalidMoney: Money: field 'amount': 1.5 has more decimal places than JPY allows (0); round it explicitly with Money.of()
>>> Money("1234.5", "EUR").format("de_DE")
'1.234,50\\xa0€'
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, SupportsInt

import babel
import babel.numbers
import money as _money

from .errors import CurrencyMismatch, InvalidMoney, ValidationError

__all__ = ["ISO_4217", "MAX_MINOR_DIGITS", "ROUNDING", "Money", "minor_unit_exponent"]

#: The one rounding rule used wherever an amount must be brought to its
#: currency's minor unit: round half away from zero ("kaufmännisches Runden").
ROUNDING = decimal.ROUND_HALF_UP

#: The most digits an amount may have, counted in minor units: 18 digits
#: (just under 10**18 cents, øre or fils) fit a signed 64-bit integer, which
#: is what the store and payment files keep. Sums of two amounts in range
#: never exceed the 28 digits of :mod:`decimal`'s default precision, so no
#: arithmetic on money is ever rounded behind the caller's back.
MAX_MINOR_DIGITS = 18
_MAX_MINOR = 10**MAX_MINOR_DIGITS
#: A private context for quantising: wide enough for any input we accept,
#: independent of whatever precision the caller set on the thread's context.
_CONTEXT = decimal.Context(prec=60, rounding=ROUNDING, Emax=999_999, Emin=-999_999)

#: Active ISO 4217 currency codes (list one, 2026) with their minor units.
#: Funds and precious-metal codes (XAU, XDR...) are left out on purpose: a
#: patient never owes them.
_ZERO = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "ISK",
    "JPY",
    "KMF",
    "KRW",
    "PYG",
    "RWF",
    "UGX",
    "UYI",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}
_THREE = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
_FOUR = {"CLF", "UYW"}
_TWO = {
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BRL",
    "BSD",
    "BTN",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHF",
    "CNY",
    "COP",
    "CRC",
    "CUP",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ERN",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GHS",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "IRR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KPW",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MGA",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MRU",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SDG",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SSP",
    "STN",
    "SVC",
    "SYP",
    "SZL",
    "THB",
    "TJS",
    "TMT",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "UYU",
    "UZS",
    "VED",
    "VES",
    "WST",
    "XCD",
    "XCG",
    "YER",
    "ZAR",
    "ZMW",
    "ZWG",
}
ISO_4217: dict[str, int] = {
    **dict.fromkeys(_ZERO, 0),
    **dict.fromkeys(_TWO, 2),
    **dict.fromkeys(_THREE, 3),
    **dict.fromkeys(_FOUR, 4),
}
_QUANTA = {digits: Decimal(1).scaleb(-digits) for digits in set(ISO_4217.values())}
#: Per currency, the first amount out of range (10**18 minor units): a sum or difference of two
#: amounts already at the minor unit is exact, so it only needs this bound (and one zero).
_LIMITS = {code: Decimal(_MAX_MINOR).scaleb(-digits) for code, digits in ISO_4217.items()}


@functools.lru_cache(maxsize=64)
def _locale(name: str) -> babel.Locale:
    try:
        return babel.Locale.parse(name)
    except (ValueError, babel.UnknownLocaleError):
        raise ValidationError("Money", "locale", f"{name!r} is not a known locale") from None


class _Layout:
    """How one locale lays out amounts of one currency: what Babel's ``format_currency`` gives
    for a plain pattern (sign, symbol, grouping, the minor unit's digits), without it.

    A run formats the same few locale and currency pairs hundreds of thousands of times; Babel
    works the pattern out again for each. :func:`_layout` builds one only where it can check it
    against Babel; anything else (other digits than the minor unit's, a significant-digits,
    scientific or per-mille pattern, a currency name, quotes) stays with Babel.
    """

    __slots__ = ("decimal", "group", "prefix", "primary", "secondary", "suffix")

    def __init__(self, pattern: Any, loc: babel.Locale, currency: str) -> None:
        symbol = babel.numbers.get_currency_symbol(currency, loc)
        self.prefix: tuple[str, ...] = tuple(
            str(p).replace("¤¤", currency).replace("¤", symbol) for p in pattern.prefix
        )
        self.suffix: tuple[str, ...] = tuple(
            str(p).replace("¤¤", currency).replace("¤", symbol) for p in pattern.suffix
        )
        self.group: str = babel.numbers.get_group_symbol(loc)
        self.decimal: str = babel.numbers.get_decimal_symbol(loc)
        self.primary: int = pattern.grouping[0]
        self.secondary: int = pattern.grouping[1]

    def format(self, amount: Decimal) -> str:
        negative = amount.is_signed()
        whole, _, fraction = f"{amount.copy_abs():f}".partition(".")  # exact, whatever the context
        size = self.primary
        grouped = ""
        while len(whole) > size:
            grouped = self.group + whole[-size:] + grouped
            whole = whole[:-size]
            size = self.secondary
        number = whole + grouped + (self.decimal + fraction if fraction else "")
        return self.prefix[negative] + number + self.suffix[negative]


#: Amounts _layout checks a layout with against Babel, in minor units (signs, zeros, groups).
_PROBES = (0, 1, 5, 99, 100, 1234, 123456, 1234567, 10**8 + 7, 123456789012345678)


@functools.lru_cache(maxsize=256)
def _layout(locale: str, currency: str, currency_digits: bool) -> _Layout | None:
    """The layout of ``currency`` in ``locale`` when it gives what Babel gives; else ``None``."""
    loc = _locale(locale)
    exponent = minor_unit_exponent(currency)
    pattern = loc.currency_formats["standard"]
    digits = (babel.numbers.get_currency_precision(currency),) * 2 if currency_digits else pattern.frac_prec
    plain = (
        not pattern.exp_prec
        and "@" not in pattern.pattern
        and pattern.scale == 0
        and pattern.number_pattern != ""
        and pattern.int_prec[0] == 1
        and digits == (exponent, exponent)
        and not any("¤¤¤" in p or "'" in p for p in (*pattern.prefix, *pattern.suffix))
    )
    if not plain:
        return None
    layout = _Layout(pattern, loc, currency)
    if any("'" in p for p in (*layout.prefix, *layout.suffix, layout.group, layout.decimal)):
        return None
    with decimal.localcontext(_CONTEXT):  # Babel rounds in the thread's context: a wide one here
        for units in _PROBES:
            for signed in (units, -units):
                amount = Decimal(signed).scaleb(-exponent)
                expected = babel.numbers.format_currency(
                    amount, currency, locale=loc, currency_digits=currency_digits
                )
                if layout.format(amount) != expected:
                    return None
    return layout


def minor_unit_exponent(currency: str) -> int:
    """Return the number of decimal places of ``currency``'s minor unit.

    >>> minor_unit_exponent("BHD"), minor_unit_exponent("JPY")
    (3, 0)
    """
    try:
        return ISO_4217[currency]
    except (KeyError, TypeError):
        raise InvalidMoney(
            "Money", "currency", f"{currency!r} is not an active ISO 4217 code (e.g. 'EUR', 'USD', 'NOK')"
        ) from None


def _to_decimal(amount: object, field: str = "amount") -> Decimal:
    if isinstance(amount, (bool, float)):
        raise InvalidMoney(
            "Money",
            field,
            f"{type(amount).__name__} is not accepted for money; pass a str, int or Decimal",
        )
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, (int, str)):
        try:
            value = Decimal(amount.strip() if isinstance(amount, str) else amount)
        except decimal.InvalidOperation:
            raise InvalidMoney("Money", field, f"{amount!r} is not a decimal number") from None
    else:
        raise InvalidMoney(
            "Money", field, f"{type(amount).__name__} is not accepted for money; pass a str, int or Decimal"
        )
    if not value.is_finite():
        raise InvalidMoney("Money", field, f"{amount!r} is not a finite number")
    return value


def _quantise(value: Decimal, exponent: int, currency: str, *, rounding: str | None) -> Decimal:
    """``value`` at ``exponent`` decimal places (rounded with ``rounding``, or exact), range-checked."""
    if not value.is_zero() and value.adjusted() + exponent >= MAX_MINOR_DIGITS:
        raise _out_of_range(value, currency)
    quantised = value.quantize(_QUANTA[exponent], rounding=rounding or decimal.ROUND_DOWN, context=_CONTEXT)
    if abs(quantised.scaleb(exponent, context=_CONTEXT)) >= _MAX_MINOR:
        raise _out_of_range(value, currency)
    return quantised


def _out_of_range(value: Decimal, currency: str) -> InvalidMoney:
    # built only when raised: formatting it for every amount cost a third of Money()'s time
    return InvalidMoney(
        "Money",
        "amount",
        f"{value} {currency} is out of range: at most {MAX_MINOR_DIGITS} digits of minor units are allowed",
    )


class Money(_money.Money):  # type: ignore[misc]
    """An exact amount in one currency, always at its currency's minor unit.

    :param amount: ``str``, ``int`` or :class:`~decimal.Decimal`; never ``float``.
    :param currency: an active ISO 4217 code such as ``"EUR"``.
    :raises InvalidMoney: on a float, a bad code, or more decimals than the
        currency has (use :meth:`of` to round).
    """

    #: the amount in minor units, once asked for (or known when built from them)
    _minor: int

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        value = _to_decimal(amount)
        exponent = minor_unit_exponent(currency)
        quantised = _quantise(value, exponent, currency, rounding=None)
        if quantised != value:
            raise InvalidMoney(
                "Money",
                "amount",
                f"{amount} has more decimal places than {currency} allows ({exponent}); "
                "round it explicitly with Money.of()",
            )
        # -0.00 and 0.00 are the same amount; keep one spelling (str and repr show no "-0").
        self._amount = quantised.copy_abs() if quantised.is_zero() else quantised
        self._currency = currency

    # -- named constructors ------------------------------------------------
    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Build an amount, rounding to the minor unit with :data:`ROUNDING`.

        >>> Money.of("2.675", "EUR"), Money.of("0.5", "JPY")
        (Money('2.68', 'EUR'), Money('1', 'JPY'))
        """
        value = _to_decimal(amount)
        return cls(_quantise(value, minor_unit_exponent(currency), currency, rounding=ROUNDING), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return nothing, in ``currency``."""
        if cls is Money:
            zero = _ZEROS.get(currency)
            if zero is not None:
                return zero
            zero = _ZEROS[currency] = cls.from_minor(0, currency)
            return zero
        return cls.from_minor(0, currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """Build an amount from integer minor units (cents, øre, stotinki).

        >>> Money.from_minor(12345, "EUR"), Money.from_minor(12345, "BHD")
        (Money('123.45', 'EUR'), Money('12.345', 'BHD'))
        """
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidMoney("Money", "units", f"minor units must be an int, got {type(units).__name__}")
        exponent = minor_unit_exponent(currency)
        value = Decimal(units).scaleb(-exponent, context=_CONTEXT)
        if -_MAX_MINOR < units < _MAX_MINOR:
            # already exact at the minor unit and in range: what __init__ would check and store
            # (stores read amounts by the hundred thousand; this skips the quantising)
            out: Money = cls.__new__(cls)
            out._amount = value
            out._currency = currency
            out._minor = units  # what minor_units gives, known already
            return out
        return cls(value, currency)

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse ``"EUR 12.50"`` or ``"12.50 EUR"`` (the form :func:`str` gives).

        >>> Money.parse("NOK 1250.00")
        Money('1250.00', 'NOK')
        """
        if not isinstance(text, str):
            raise InvalidMoney("Money", "text", f"expected a str, got {type(text).__name__}")
        parts = text.split()
        if len(parts) != 2:
            raise InvalidMoney("Money", "text", f"{text!r} is not of the form 'EUR 12.50'")
        first, second = parts
        if first.isalpha():
            return cls(second, first)
        return cls(first, second)

    # -- conversions -------------------------------------------------------
    @property
    def minor_units(self) -> int:
        """The amount as an integer count of minor units (cents for EUR)."""
        try:
            return self._minor
        except AttributeError:
            units = self._minor = int(
                self._amount.scaleb(minor_unit_exponent(self._currency), context=_CONTEXT)
            )
            return units

    @property
    def exponent(self) -> int:
        """Decimal places of this currency's minor unit."""
        return minor_unit_exponent(self._currency)

    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return bool(self._amount == 0)

    def is_positive(self) -> bool:
        """True when the amount is above zero."""
        return bool(self._amount > 0)

    def is_negative(self) -> bool:
        """True when the amount is below zero."""
        return bool(self._amount < 0)

    def format(self, locale: str, *, currency_digits: bool = True) -> str:
        """Format for a patient in ``locale`` (``"en_US"``, ``"de_DE"``, ``"nb_NO"``, ``"bg_BG"``...).

        The locale is required and only decides the *layout*; the currency
        is always this amount's own (Bulgaria pays in EUR since 2026-01-01,
        whatever older locale data says).

        >>> Money("1234.50", "EUR").format("bg_BG")
        '1\\xa0234,50\\xa0€'
        >>> Money("1234.50", "NOK").format("nb_NO")
        '1\\xa0234,50\\xa0kr'
        """
        if not locale or not isinstance(locale, str):
            raise ValidationError("Money", "locale", "an explicit locale such as 'en_US' is required")
        layout = _layout(locale, self._currency, currency_digits)
        if layout is not None:
            return layout.format(self._amount)
        return str(
            babel.numbers.format_currency(
                self._amount, self._currency, locale=_locale(locale), currency_digits=currency_digits
            )
        )

    # -- splitting ---------------------------------------------------------
    def allocate(self, ratios: Sequence[SupportsInt | Decimal | str]) -> list[Money]:
        """Split by ``ratios`` without losing or inventing a minor unit.

        Each part gets its exact share rounded down; the minor units left
        over go one by one to the parts with the largest remainders (ties to
        the earlier part). The parts always sum to ``self``.

        >>> [p.minor_units for p in Money("1.00", "EUR").allocate([1, 1, 1])]
        [34, 33, 33]
        >>> [str(p) for p in Money("10", "JPY").allocate([70, 30])]
        ['JPY 7', 'JPY 3']
        """
        if ratios and all(type(r) is int and r >= 0 for r in ratios) and any(ratios):
            return self._allocate_ints(ratios)  # type: ignore[arg-type]
        weights = [_to_decimal(r, "ratios") if not isinstance(r, Decimal) else r for r in ratios]
        if not weights:
            raise ValidationError("Money", "ratios", "at least one ratio is required")
        if any(w < 0 for w in weights):
            raise ValidationError("Money", "ratios", "ratios must not be negative")
        total_weight = sum(weights, Decimal(0))
        if total_weight == 0:
            raise ValidationError("Money", "ratios", "ratios must not all be zero")
        units = abs(self.minor_units)
        with decimal.localcontext() as ctx:
            ctx.prec = 60
            exact = [Decimal(units) * w / total_weight for w in weights]
        floors = [int(e) for e in exact]
        return self._parts(floors, [e - f for e, f in zip(exact, floors, strict=True)])

    def _allocate_ints(self, weights: Sequence[int]) -> list[Money]:
        """:meth:`allocate` by whole-number ratios (not all zero), in integers: each part's share
        and remainder over the same total are exact, so the largest remainders are found without
        dividing (``tests/test_money.py`` holds it equal to the general way)."""
        units = abs(self.minor_units)
        total_weight = sum(weights)
        shares = [divmod(units * w, total_weight) for w in weights]
        return self._parts([share for share, _ in shares], [rest for _, rest in shares])

    def _parts(self, floors: list[int], rests: Sequence[Decimal | int]) -> list[Money]:
        """The parts of this amount: each its share of the absolute amount rounded down
        (``floors``), the minor units left over one by one to the largest remainders
        (``rests``; ties to the earlier part), with this amount's sign."""
        left = abs(self.minor_units) - sum(floors)
        if left:
            for i in sorted(range(len(floors)), key=lambda i: (-rests[i], i))[:left]:
                floors[i] += 1
        sign, currency = (-1 if self.minor_units < 0 else 1), self._currency
        return [Money.from_minor(sign * f, currency) for f in floors]

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` near-equal amounts; the first ones get the extra minor units."""
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
            raise ValidationError("Money", "parts", f"must be a positive int, got {parts!r}")
        return self.allocate([1] * parts)

    def percent(self, rate: Decimal | str | int) -> Money:
        """Return ``rate`` percent of this amount, rounded with :data:`ROUNDING`.

        >>> Money("33.33", "EUR").percent("5")
        Money('1.67', 'EUR')
        """
        r = _to_decimal(rate, "rate")
        return Money.of(self._amount * r / 100, self._currency)

    # -- no way out to floats, no silent conversion --------------------------
    def __float__(self) -> float:
        raise TypeError("Money never becomes a float; use .amount (a Decimal) or .minor_units (an int)")

    def __int__(self) -> int:
        raise TypeError("int(Money) would drop the minor units; use .minor_units")

    def __round__(self, ndigits: int | None = None) -> Any:
        raise TypeError(
            "round() on Money would bypass the one rounding rule; use Money.of(), which rounds with ROUNDING"
        )

    def to(self, currency: str) -> Money:
        """Refuse: carecollect never converts between currencies on its own.

        Converting is a business decision (whose rate, at what time); do it
        outside carecollect and build a new amount with :class:`Money`.
        """
        if currency == self._currency:
            return self
        raise InvalidMoney(
            "Money",
            "currency",
            f"carecollect never converts {self._currency} to {currency} itself; convert at a rate "
            f"you choose and build Money(amount, {currency!r})",
        )

    # -- arithmetic: Money with Money only ---------------------------------
    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, _money.Money):
            raise TypeError(
                f"cannot {op} Money and {type(other).__name__}: wrap the number as Money first "
                "(bare numbers are never added to money)"
            )
        if other.currency != self._currency:
            raise CurrencyMismatch(self._currency, other.currency, op)
        if not isinstance(other, Money):
            # a plain money.Money from elsewhere: it must pass the strict constructor too
            return Money(other.amount, other.currency)
        return other

    def __add__(self, other: object) -> Money:
        if type(other) is Money and other._currency == self._currency:
            return _exact(_CONTEXT.add(self._amount, other._amount), self._currency)
        o = self._same(other, "add")
        return Money(self._amount + o._amount, self._currency)

    def __radd__(self, other: object) -> Money:
        return self.__add__(other)

    def __sub__(self, other: object) -> Money:
        if type(other) is Money and other._currency == self._currency:
            return _exact(_CONTEXT.subtract(self._amount, other._amount), self._currency)
        o = self._same(other, "subtract")
        return Money(self._amount - o._amount, self._currency)

    def __rsub__(self, other: object) -> Money:
        o = self._same(other, "subtract")
        return Money(o._amount - self._amount, self._currency)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, bool) or not isinstance(other, int):
            raise TypeError(
                "Money can only be multiplied by an int; use percent() or allocate() for fractions"
            )
        return Money(self._amount * other, self._currency)

    def __rmul__(self, other: object) -> Money:
        return self.__mul__(other)

    def __truediv__(self, other: object) -> Any:
        raise TypeError("Money is never divided; use split() or allocate(), which keep every minor unit")

    __floordiv__ = __truediv__
    __mod__ = __truediv__
    __divmod__ = __truediv__
    __rtruediv__ = __truediv__
    __pow__ = __truediv__

    def __neg__(self) -> Money:
        return Money(-self._amount, self._currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self._amount), self._currency)

    def __bool__(self) -> bool:
        raise TypeError("the truth of Money is ambiguous; use is_zero() or is_positive()")

    def __lt__(self, other: object) -> bool:
        if type(other) is Money and other._currency == self._currency:
            return bool(self._amount < other._amount)
        return bool(self._amount < self._same(other, "compare")._amount)

    def __le__(self, other: object) -> bool:
        if type(other) is Money and other._currency == self._currency:
            return bool(self._amount <= other._amount)
        return bool(self._amount <= self._same(other, "compare")._amount)

    def __gt__(self, other: object) -> bool:
        if type(other) is Money and other._currency == self._currency:
            return bool(self._amount > other._amount)
        return bool(self._amount > self._same(other, "compare")._amount)

    def __ge__(self, other: object) -> bool:
        if type(other) is Money and other._currency == self._currency:
            return bool(self._amount >= other._amount)
        return bool(self._amount >= self._same(other, "compare")._amount)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _money.Money):
            return bool(self._amount == other.amount and self._currency == other.currency)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._amount, self._currency))

    def __repr__(self) -> str:
        return f"Money('{self._amount}', '{self._currency}')"

    def __str__(self) -> str:
        return f"{self._currency} {self._amount}"


def _exact(value: Decimal, currency: str) -> Money:
    """An amount from ``value``, the exact sum or difference of two amounts in ``currency``.

    Both were at the currency's minor unit, so ``value`` is too: only its range is checked (and
    a zero is stored without its sign), as :class:`Money` would.
    """
    if -_LIMITS[currency] < value < _LIMITS[currency]:
        out: Money = Money.__new__(Money)
        out._amount = value.copy_abs() if value.is_zero() else value
        out._currency = currency
        return out
    return Money(value, currency)  # raises InvalidMoney, naming the amount


#: One zero per currency for Money.zero (amounts are never changed in place).
_ZEROS: dict[str, Money] = {}


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Sum ``amounts`` (all in ``currency``); an empty iterable gives zero."""
    result = Money.zero(currency)
    for a in amounts:
        result = result + a
    return result


__all__ += ["total"]
