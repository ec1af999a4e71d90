"""Sourced rules: every number a policy pack uses, as data with its legal source.

A :class:`Rule` is one value (days, hours, a cap, a rate, a flag) with the
law or guidance it comes from and the date from which it applies. A pack for
a later year is a data change: add a rule with the same id and a later
``effective_from``, and :meth:`RuleSet.value` picks the one in force.

Each rule says which way is *stricter* (:class:`Strictness`), so a creditor's
house rules can tighten a legal limit but never loosen it silently
(:meth:`RuleSet.with_house_rules`).

>>> import datetime as dt
>>> from carecollect.policy.rules import Rule, RuleSet, Strictness
>>> rules = RuleSet((
...     Rule("calls.max_per_7_days", 7, "12 CFR 1006.14(b)(2)", dt.date(2021, 11, 30), Strictness.AT_MOST),
... ))
>>> rules.value("calls.max_per_7_days", on=dt.date(2026, 1, 5))
7
>>> rules.with_house_rules({"calls.max_per_7_days": 3}, source="house policy").value(
...     "calls.max_per_7_days", on=dt.date(2026, 1, 5))
3
>>> rules.with_house_rules({"calls.max_per_7_days": 9}, source="house policy")
Traceback (most recent call last):
...
carecollect.errors.PolicyViolation: rule 'calls.max_per_7_days': 9 would loosen the limit 7 (12 CFR 1006.14(b)(2)); house rules may only tighten it
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ..errors import ConfigurationError, PolicyViolation

__all__ = ["Rule", "RuleSet", "Strictness", "tightens"]


class Strictness(enum.Enum):
    """Which way a house rule may move a value."""

    #: A ceiling (max calls, max income share): house rules may only lower it.
    AT_MOST = "at_most"
    #: A floor (min days to wait): house rules may only raise it.
    AT_LEAST = "at_least"
    #: A permission flag (True = allowed): house rules may only turn it off.
    ALLOWED_IF_TRUE = "allowed_if_true"
    #: A protection flag (True = required): house rules may only turn it on.
    REQUIRED_IF_TRUE = "required_if_true"
    #: The creditor's own choice (a discount tier): house rules may set it freely.
    CHOICE = "choice"
    #: Fixed by law or fact (a statutory rate, a poverty guideline): never overridden.
    FIXED = "fixed"


@attrs.frozen
class Rule:
    """One sourced value.

    :param id: dotted identifier, e.g. ``"quiet_hours.start"``.
    :param value: the value (int, Decimal, bool, str, tuple, time...).
    :param source: the legal or published source, e.g. ``"12 CFR 1006.6(b)(1)(i)"``.
    :param effective_from: first date on which the value applies.
    :param strictness: which way house rules may move it.
    :param effective_to: last date on which it applies (``None``: open-ended).
    :param note: plain-language explanation for docs and staff screens.
    :param verified: ``False`` when the figure comes from a secondary source
        and should be checked against the primary one.
    """

    id: str
    value: Any
    source: str
    effective_from: dt.date
    strictness: Strictness = Strictness.FIXED
    effective_to: dt.date | None = None
    note: str = ""
    verified: bool = True

    def applies_on(self, day: dt.date) -> bool:
        """True when the rule is in force on ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def tightens(rule: Rule, new: Any) -> bool:
    """True when ``new`` is as strict as ``rule``'s value or stricter, by the rule's :class:`Strictness`.

    >>> import datetime as dt
    >>> cap = Rule("calls.max_per_7_days", 7, "12 CFR 1006.14(b)(2)", dt.date(2021, 11, 30), Strictness.AT_MOST)
    >>> tightens(cap, 3), tightens(cap, 7), tightens(cap, 8)
    (True, True, False)
    """
    return _tighter_or_equal(rule, new)


def _tighter_or_equal(rule: Rule, new: Any) -> bool:
    old = rule.value
    s = rule.strictness
    if s is Strictness.CHOICE:
        return True
    if s is Strictness.FIXED:
        return bool(new == old)
    if s is Strictness.AT_MOST:
        return bool(new <= old)
    if s is Strictness.AT_LEAST:
        return bool(new >= old)
    if s is Strictness.ALLOWED_IF_TRUE:
        return bool(old or not new)
    return bool(new or not old)  # REQUIRED_IF_TRUE


def _rules(value: Iterable[Rule]) -> tuple[Rule, ...]:
    return tuple(value)


@attrs.frozen
class RuleSet:
    """A collection of rules, looked up by id and date."""

    rules: tuple[Rule, ...] = attrs.field(converter=_rules)
    _index: dict[str, tuple[Rule, ...]] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index: dict[str, list[Rule]] = {}
        for r in self.rules:
            index.setdefault(r.id, []).append(r)
        frozen = {k: tuple(sorted(v, key=lambda r: r.effective_from, reverse=True)) for k, v in index.items()}
        object.__setattr__(self, "_index", frozen)

    def ids(self) -> list[str]:
        """Every rule id, sorted."""
        return sorted(self._index)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._index

    def rule(self, rule_id: str, *, on: dt.date) -> Rule:
        """The rule ``rule_id`` in force on ``on``.

        :raises ConfigurationError: no such rule, or none in force that day.
        """
        versions = self._index.get(rule_id)
        if not versions:
            raise ConfigurationError(f"policy rule {rule_id!r} is not defined in this pack")
        for r in versions:
            if r.applies_on(on):
                return r
        raise ConfigurationError(f"policy rule {rule_id!r} has no value in force on {on.isoformat()}")

    def value(self, rule_id: str, *, on: dt.date) -> Any:
        """The value of ``rule_id`` in force on ``on``."""
        return self.rule(rule_id, on=on).value

    def get(self, rule_id: str, default: Any, *, on: dt.date) -> Any:
        """Like :meth:`value`, with a default when the rule is not defined."""
        if rule_id not in self._index:
            return default
        return self.value(rule_id, on=on)

    def merged(self, other: Iterable[Rule]) -> RuleSet:
        """A new set with ``other`` added (same id and date: ``other`` wins)."""
        extra = tuple(other)
        keys = {(r.id, r.effective_from) for r in extra}
        kept = tuple(r for r in self.rules if (r.id, r.effective_from) not in keys)
        return RuleSet(kept + extra)

    def with_house_rules(
        self, overrides: Mapping[str, Any], *, source: str, effective_from: dt.date | None = None
    ) -> RuleSet:
        """Apply a creditor's house rules, which may only tighten the law.

        Each override replaces every version of the rule from ``effective_from``
        (default: from the earliest version) and is checked against every
        version it shadows.

        :raises PolicyViolation: an override would loosen a legal limit.
        :raises ConfigurationError: an override names a rule the pack does not have.
        """
        added: list[Rule] = []
        for rule_id, new in overrides.items():
            versions = self._index.get(rule_id)
            if not versions:
                raise ConfigurationError(
                    f"house rule {rule_id!r} names no rule of this pack; known: {', '.join(self.ids())}"
                )
            if isinstance(new, float):
                new = Decimal(str(new))
            for r in versions:
                if not _tighter_or_equal(r, new):
                    verb = (
                        "change the fixed value" if r.strictness is Strictness.FIXED else "loosen the limit"
                    )
                    raise PolicyViolation(
                        f"rule {rule_id!r}: {new!r} would {verb} {r.value!r} ({r.source}); house rules may only tighten it"
                    )
            start = effective_from or min(r.effective_from for r in versions)
            base = versions[-1]
            added.append(
                attrs.evolve(
                    base,
                    value=new,
                    source=f"{source} (tightens {base.source})",
                    effective_from=start,
                    effective_to=None,
                    note=base.note,
                )
            )
        shadowed = {r.id: r.effective_from for r in added}
        kept = tuple(r for r in self.rules if not (r.id in shadowed and r.effective_from >= shadowed[r.id]))
        return RuleSet(kept + tuple(added))
