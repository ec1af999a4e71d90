"""Money: strictness, quantising, allocation, minor units, formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect import CurrencyMismatch, InvalidMoney, Money, ValidationError
from carecollect.money import ISO_4217, MAX_MINOR_DIGITS, ROUNDING, minor_unit_exponent, total

CURRENCIES = ["JPY", "EUR", "BHD", "USD", "NOK"]


def test_float_is_refused_with_a_clear_error() -> None:
    with pytest.raises(InvalidMoney, match="float is not accepted"):
        Money(1.5, "EUR")  # type: ignore[arg-type]


def test_bool_is_refused() -> None:
    with pytest.raises(InvalidMoney):
        Money(True, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["eur", "EURO", "XXX", "", "DEM", None])
def test_non_iso_codes_are_refused(code: object) -> None:
    with pytest.raises(InvalidMoney, match="ISO 4217"):
        Money("1", code)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("EUR", 2), ("BHD", 3), ("CLF", 4), ("BGN", 2)])
def test_minor_units(code: str, digits: int) -> None:
    assert minor_unit_exponent(code) == digits


def test_too_many_decimals_refused_then_rounded_explicitly() -> None:
    with pytest.raises(InvalidMoney, match="more decimal places than EUR"):
        Money("10.005", "EUR")
    assert Money.of("10.005", "EUR") == Money("10.01", "EUR")
    assert Money.of("-10.005", "EUR") == Money("-10.01", "EUR")  # half away from zero
    assert Money.of("2.5", "JPY") == Money("3", "JPY")
    assert Money.of("1.0005", "BHD") == Money("1.001", "BHD")
    assert ROUNDING == "ROUND_HALF_UP"


@pytest.mark.parametrize("bad", ["abc", "1e", "NaN", "Infinity", object()])
def test_garbage_amounts(bad: object) -> None:
    with pytest.raises(InvalidMoney):
        Money(bad, "EUR")  # type: ignore[arg-type]


def test_no_arithmetic_with_bare_numbers() -> None:
    m = Money("1.00", "EUR")
    with pytest.raises(TypeError, match="bare numbers"):
        m + 1
    with pytest.raises(TypeError):
        1 + m
    with pytest.raises(TypeError):
        m - Decimal("1")
    with pytest.raises(TypeError, match="only be multiplied by an int"):
        m * Decimal("1.5")
    with pytest.raises(TypeError, match="never divided"):
        m / 2
    with pytest.raises(TypeError, match="ambiguous"):
        bool(m)
    with pytest.raises(TypeError):
        m < 5  # noqa: B015


def test_mixing_currencies_says_what_to_do() -> None:
    with pytest.raises(CurrencyMismatch, match="convert one explicitly"):
        Money("1", "EUR") + Money("1", "USD")
    with pytest.raises(CurrencyMismatch):
        Money("1", "EUR") < Money("1", "USD")  # noqa: B015


def test_arithmetic_stays_exact_and_typed() -> None:
    a = Money("0.10", "EUR")
    s = a + a + a
    assert s == Money("0.30", "EUR")
    assert isinstance(s, Money)
    assert (a * 3) == s
    assert -a == Money("-0.10", "EUR")
    assert abs(-a) == a
    assert total([a, a], "EUR") == Money("0.20", "EUR")
    assert total([], "JPY") == Money.zero("JPY")


def test_minor_unit_conversion_round_trip() -> None:
    assert Money("123.45", "EUR").minor_units == 12345
    assert Money("7", "JPY").minor_units == 7
    assert Money("1.234", "BHD").minor_units == 1234
    assert Money.from_minor(-5, "USD") == Money("-0.05", "USD")
    with pytest.raises(InvalidMoney):
        Money.from_minor(1.0, "USD")  # type: ignore[arg-type]


@given(
    units=st.integers(-(10**MAX_MINOR_DIGITS) + 1, 10**MAX_MINOR_DIGITS - 1),
    code=st.sampled_from(sorted(ISO_4217)),
)
def test_minor_units_round_trip_property(units: int, code: str) -> None:
    assert Money.from_minor(units, code).minor_units == units


def test_parse() -> None:
    assert Money.parse("EUR 1.50") == Money("1.50", "EUR")
    assert Money.parse("1.50 EUR") == Money("1.50", "EUR")
    with pytest.raises(InvalidMoney):
        Money.parse("1.50")


@pytest.mark.parametrize(
    ("locale", "code", "expected"),
    [
        ("en_US", "USD", "$1,234.50"),
        ("de_DE", "EUR", "1.234,50\xa0€"),
        ("nb_NO", "NOK", "1\xa0234,50\xa0kr"),
        ("bg_BG", "EUR", "1\xa0234,50\xa0€"),
    ],
)
def test_formatting_needs_a_locale_and_keeps_the_currency(locale: str, code: str, expected: str) -> None:
    assert Money("1234.50", code).format(locale) == expected


def test_bulgarian_locale_never_turns_euro_into_lev() -> None:
    assert "лв" not in Money("10.00", "EUR").format("bg_BG")


def test_formatting_refuses_missing_or_unknown_locale() -> None:
    with pytest.raises(ValidationError, match="explicit locale"):
        Money("1", "EUR").format("")
    with pytest.raises(ValidationError, match="not a known locale"):
        Money("1", "EUR").format("xx_YY")


def test_split_and_allocate_examples() -> None:
    assert [m.minor_units for m in Money("0.05", "EUR").split(3)] == [2, 2, 1]
    assert [m.minor_units for m in Money("-0.05", "EUR").split(3)] == [-2, -2, -1]
    assert [m.minor_units for m in Money("10", "JPY").allocate([1, 2])] == [3, 7]
    assert [m.minor_units for m in Money("1.000", "BHD").allocate([1, 1, 1])] == [334, 333, 333]
    with pytest.raises(ValidationError):
        Money("1", "EUR").allocate([])
    with pytest.raises(ValidationError):
        Money("1", "EUR").allocate([0, 0])
    with pytest.raises(ValidationError):
        Money("1", "EUR").allocate([1, -1])
    with pytest.raises(ValidationError):
        Money("1", "EUR").split(0)


@given(
    units=st.integers(-(10**9), 10**9),
    code=st.sampled_from(CURRENCIES),
    ratios=st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(lambda r: sum(r) > 0),
)
def test_allocation_never_loses_or_invents_a_minor_unit(units: int, code: str, ratios: list[int]) -> None:
    amount = Money.from_minor(units, code)
    parts = amount.allocate(ratios)
    assert len(parts) == len(ratios)
    assert sum(p.minor_units for p in parts) == units
    for part, ratio in zip(parts, ratios, strict=True):
        exact = Decimal(units) * ratio / sum(ratios)
        assert abs(Decimal(part.minor_units) - exact) < 1
        if ratio == 0:
            assert part.is_zero()


@given(
    units=st.integers(-(10**15), 10**15),
    code=st.sampled_from(CURRENCIES),
    ratios=st.lists(
        st.integers(0, 10**12) | st.sampled_from([0, 1, 2, 3, 7]), min_size=1, max_size=12
    ).filter(lambda r: sum(r) > 0),
)
def test_allocation_by_whole_numbers_equals_the_decimal_way(units: int, code: str, ratios: list[int]) -> None:
    """Whole-number ratios are allocated in integers; the same parts as the ratios given as
    decimals (ties, many equal ratios and zeros included)."""
    amount = Money.from_minor(units, code)
    assert amount.allocate(ratios) == amount.allocate([Decimal(r) for r in ratios])
    assert amount.allocate(ratios) == amount.allocate([str(r) for r in ratios])


@given(units=st.integers(0, 10**9), parts=st.integers(1, 60), code=st.sampled_from(CURRENCIES))
def test_split_is_near_equal_and_exact(units: int, parts: int, code: str) -> None:
    pieces = Money.from_minor(units, code).split(parts)
    values = [p.minor_units for p in pieces]
    assert sum(values) == units
    assert max(values) - min(values) <= 1
    assert values == sorted(values, reverse=True)


def test_percent_rounds_once() -> None:
    assert Money("33.33", "EUR").percent("5") == Money("1.67", "EUR")
    assert Money("100", "JPY").percent(Decimal("2.5")) == Money("3", "JPY")
    with pytest.raises(InvalidMoney):
        Money("1", "EUR").percent(0.5)  # type: ignore[arg-type]


def test_money_is_hashable_and_comparable() -> None:
    assert {Money("1.00", "EUR"), Money("1", "EUR")} == {Money("1", "EUR")}
    assert Money("1", "EUR") < Money("2", "EUR")
    assert Money("1", "EUR") != Money("1", "USD")
    assert min(Money("3", "EUR"), Money("2", "EUR")) == Money("2", "EUR")


# -- the range, the way out, and conversion ---------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"),
    [("1e30", "EUR"), ("10000000000000000", "EUR"), (10**18, "JPY"), ("1000000000000000", "BHD")],
)
def test_amounts_beyond_the_range_are_a_typed_error_not_a_decimal_trap(amount: object, code: str) -> None:
    with pytest.raises(InvalidMoney, match="out of range"):
        Money(amount, code)  # type: ignore[arg-type]
    with pytest.raises(InvalidMoney, match="out of range"):
        Money.of(amount, code)  # type: ignore[arg-type]


def test_the_largest_amounts_stay_exact_and_overflow_is_refused() -> None:
    top = Money.from_minor(10**MAX_MINOR_DIGITS - 1, "EUR")
    assert top.minor_units == 10**MAX_MINOR_DIGITS - 1
    assert (top - Money("0.01", "EUR")).minor_units == 10**MAX_MINOR_DIGITS - 2
    with pytest.raises(InvalidMoney, match="out of range"):
        top + Money("0.01", "EUR")
    with pytest.raises(InvalidMoney, match="out of range"):
        top * 10


def test_a_narrow_thread_context_does_not_round_money() -> None:
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 5
        assert Money("123456789.12", "EUR").minor_units == 12345678912
        assert Money.of("123456789.125", "EUR") == Money("123456789.13", "EUR")


def test_a_narrow_thread_context_does_not_round_a_formatted_amount() -> None:
    import decimal

    from carecollect.money import _layout

    _layout.cache_clear()  # the layout is built under the narrow context too
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        assert Money("-123456789.12", "EUR").format("en_US") == "-€123,456,789.12"
        assert Money("1234567.5", "NOK").format("nb_NO") == "1\xa0234\xa0567,50\xa0kr"


def test_negative_zero_has_one_spelling() -> None:
    assert str(Money("-0.00", "EUR")) == "EUR 0.00"
    assert repr(-Money.zero("NOK")) == "Money('0.00', 'NOK')"


def test_no_way_out_to_float_int_or_another_rounding() -> None:
    m = Money("1.25", "EUR")
    with pytest.raises(TypeError, match="never becomes a float"):
        float(m)
    with pytest.raises(TypeError, match="minor_units"):
        int(m)
    with pytest.raises(TypeError, match="one rounding rule"):
        round(m, 1)


def test_currency_conversion_is_refused() -> None:
    m = Money("1.00", "EUR")
    assert m.to("EUR") is m
    with pytest.raises(InvalidMoney, match="never converts EUR to BGN"):
        m.to("BGN")


def test_a_plain_money_money_is_held_to_the_strict_rules() -> None:
    import money as base

    assert Money("1.00", "EUR") + base.Money("2.00", "EUR") == Money("3.00", "EUR")
    with pytest.raises(InvalidMoney, match="more decimal places"):
        Money("1.00", "EUR") + base.Money("0.001", "EUR")
    with pytest.raises(CurrencyMismatch):
        Money("1.00", "EUR") + base.Money("1.00", "USD")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "€1,234.50"), ("de", "1.234,50\xa0€"), ("nb", "1\xa0234,50\xa0€"), ("bg", "1\xa0234,50\xa0€")],
)
def test_bare_languages_format_and_never_swap_the_currency(locale: str, expected: str) -> None:
    assert Money("1234.50", "EUR").format(locale) == expected


def test_the_currency_comes_from_the_amount_never_the_locale() -> None:
    assert "kr" not in Money("10.00", "USD").format("nb_NO")
    assert "$" not in Money("10.00", "NOK").format("en_US")
    # Bulgaria: the lev is still a valid code (old invoices); it shows as lev only when the amount is in BGN
    assert "лв" in Money("10.00", "BGN").format("bg_BG")
    assert "лв" not in Money("10.00", "EUR").format("bg_BG")
    with pytest.raises(ValidationError, match="explicit locale"):
        Money("1", "EUR").format(None)  # type: ignore[arg-type]


@given(
    st.integers(min_value=-(10**MAX_MINOR_DIGITS) + 1, max_value=10**MAX_MINOR_DIGITS - 1),
    st.sampled_from(["EUR", "JPY", "BHD", "NOK", "USD", "BGN"]),
)
def test_from_minor_builds_what_the_constructor_builds(units: int, code: str) -> None:
    # from_minor skips the constructor's quantising for in-range ints: same amount, same digits
    fast = Money.from_minor(units, code)
    exp = minor_unit_exponent(code)
    slow = Money(Decimal(units).scaleb(-exp), code)
    assert fast == slow and hash(fast) == hash(slow) and str(fast) == str(slow) and repr(fast) == repr(slow)
    assert fast.amount.as_tuple() == slow.amount.as_tuple()
    assert type(fast) is Money and fast.minor_units == units


def test_zero_is_the_constructors_zero() -> None:
    for code in ("EUR", "JPY", "BHD"):
        assert Money.zero(code).amount.as_tuple() == Money(0, code).amount.as_tuple()
        assert str(Money.zero(code)) == str(Money(0, code))


@given(
    st.integers(min_value=-(10**MAX_MINOR_DIGITS) + 1, max_value=10**MAX_MINOR_DIGITS - 1),
    st.integers(min_value=-(10**MAX_MINOR_DIGITS) + 1, max_value=10**MAX_MINOR_DIGITS - 1),
    st.sampled_from(["EUR", "JPY", "BHD", "NOK", "USD", "BGN", "CLF"]),
)
def test_sums_and_differences_are_what_the_constructor_builds(a: int, b: int, code: str) -> None:
    # + and - of two amounts in one currency skip the constructor's quantising: same amount, same
    # digits, one zero, and out of range still refused
    exp = minor_unit_exponent(code)
    x, y = Money.from_minor(a, code), Money.from_minor(b, code)
    for units, result in ((a + b, lambda: x + y), (a - b, lambda: x - y)):
        if abs(units) >= 10**MAX_MINOR_DIGITS:
            with pytest.raises(InvalidMoney, match="out of range"):
                result()
            continue
        fast = result()
        slow = Money(Decimal(units).scaleb(-exp), code)
        assert repr(fast) == repr(slow) and fast.amount.as_tuple() == slow.amount.as_tuple()
        assert type(fast) is Money and fast.minor_units == units
    assert (x < y) is (a < b) and (x <= y) is (a <= b) and (x > y) is (a > b) and (x >= y) is (a >= b)


def test_zero_is_kept_once_per_currency_and_cannot_be_changed() -> None:
    assert Money.zero("EUR") is Money.zero("EUR")
    with pytest.raises(AttributeError):
        Money.zero("EUR").amount = Decimal(5)  # type: ignore[misc]
    assert (Money.zero("EUR") + Money("1.00", "EUR")) == Money("1.00", "EUR")
    assert Money.zero("EUR") == Money(0, "EUR")


_LOCALES = [
    "en_US",
    "en",
    "de_DE",
    "de",
    "nb_NO",
    "nb",
    "bg_BG",
    "bg",
    "en_IN",
    "de_CH",
    "fr_FR",
    "ar_EG",
    "ja_JP",
]


@given(
    st.integers(min_value=-(10**MAX_MINOR_DIGITS) + 1, max_value=10**MAX_MINOR_DIGITS - 1)
    | st.integers(min_value=-100_000, max_value=100_000),
    st.sampled_from(["EUR", "JPY", "BHD", "NOK", "USD", "BGN", "INR", "CLF"]),
    st.sampled_from(_LOCALES),
    st.booleans(),
)
def test_formatting_gives_what_babel_gives(units: int, code: str, locale: str, currency_digits: bool) -> None:
    # Money.format lays plain patterns out itself (a run formats the same few pairs many times);
    # each layout must give Babel's text exactly, and the others stay with Babel
    import babel.numbers

    amount = Money.from_minor(units, code)
    expected = babel.numbers.format_currency(
        amount.amount, code, locale=locale, currency_digits=currency_digits
    )
    assert amount.format(locale, currency_digits=currency_digits) == expected


def test_the_common_locales_take_the_layout_and_a_quoting_one_stays_with_babel() -> None:
    from carecollect.money import _layout

    for locale in ("en_US", "de_DE", "nb_NO", "bg_BG", "en_IN"):
        assert _layout(locale, "EUR", True) is not None
    assert _layout("de_CH", "CHF", True) is None  # its group separator is a quote Babel strips
    assert _layout("en_US", "CLF", False) is None  # the pattern's 2 digits, not the unit's 4
