"""Field validators shared by the domain classes.

Each validator raises :class:`~carecollect.errors.ValidationError` naming
the record (its class and id, never a patient's name) and the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .errors import InvalidMoney, NaiveDatetime, ValidationError
from .money import Money

__all__ = [
    "aware",
    "aware_or_none",
    "date_only",
    "date_or_none",
    "identifier",
    "money_non_negative",
    "money_or_none",
    "of_type",
    "record_name",
]


def record_name(instance: Any) -> str:
    """``"Invoice INV-1"``: the class name and, once set, the id."""
    ident = getattr(instance, "id", None)
    name = type(instance).__name__
    return f"{name} {ident}" if isinstance(ident, str) and ident else name


def identifier(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A non-empty string without surrounding whitespace."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 200:
        raise ValidationError(
            record_name(instance) if attribute.name != "id" else type(instance).__name__,
            attribute.name,
            "must be a non-empty string (at most 200 characters, no surrounding spaces)",
        )


def aware(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An aware :class:`datetime.datetime`."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(
            record_name(instance), attribute.name, f"a datetime is expected, got {type(value).__name__}"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetime(
            record_name(instance),
            attribute.name,
            "a time zone is required (a naive datetime is ambiguous); pass e.g. tzinfo=ZoneInfo('Europe/Berlin')",
        )


def aware_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or an aware datetime."""
    if value is not None:
        aware(instance, attribute, value)


def date_only(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A :class:`datetime.date` that is not a datetime."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError(
            record_name(instance),
            attribute.name,
            f"a date (not a datetime) is expected, got {type(value).__name__}",
        )


def date_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or a plain date."""
    if value is not None:
        date_only(instance, attribute, value)


def money_non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A :class:`~carecollect.money.Money` that is zero or more."""
    if not isinstance(value, Money):
        raise InvalidMoney(
            record_name(instance),
            attribute.name,
            f"carecollect.money.Money is expected, got {type(value).__name__}",
        )
    if value.is_negative():
        raise InvalidMoney(record_name(instance), attribute.name, f"must not be negative (got {value})")


def money_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or a non-negative Money."""
    if value is not None:
        money_non_negative(instance, attribute, value)


def of_type(kind: type) -> Any:
    """A validator: the value is an instance of ``kind`` (an enum, usually).

    Unlike ``attrs.validators.instance_of`` it raises
    :class:`~carecollect.errors.ValidationError` naming the record by id and
    the field, like every other refusal in carecollect.
    """

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            raise ValidationError(
                record_name(instance),
                attribute.name,
                f"a {kind.__name__} is expected, got {type(value).__name__}",
            )

    return check
