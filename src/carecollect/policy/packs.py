"""Policy packs: one per jurisdiction, plain data plus pure functions.

A :class:`PolicyPack` is a key (``"us"``, ``"no"``, ``"de"``, ``"bg"`` or
``"default"``), the country whose holiday calendar it uses, and a
:class:`~carecollect.policy.rules.RuleSet` holding every number the outreach
and relief policies read. The rules come from two data modules,
:mod:`carecollect.policy.outreach_rules` and
:mod:`carecollect.policy.relief_rules`; a creditor tightens them with
:meth:`PolicyPack.with_house_rules`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..calendars import BusinessCalendar
from ..errors import ConfigurationError, PolicyViolation
from .rules import Rule, RuleSet, Strictness, tightens

__all__ = ["BUILTIN_PACKS", "PolicyPack", "available_packs", "get_pack", "pack_registry"]


@attrs.frozen
class PolicyPack:
    """A jurisdiction's rules.

    :param key: short key (``"us"``, ``"no"``, ``"de"``, ``"bg"``, ``"default"``).
    :param name: human name.
    :param country: ISO 3166-1 country for the holiday calendar (``None``: weekends only, via ``"default_country"``).
    :param rules: the :class:`RuleSet`.
    :param calendar_country: country whose holidays count as non-business days.
    """

    key: str
    name: str
    rules: RuleSet
    calendar_country: str = "US"
    calendar_subdivision: str | None = None

    def value(self, rule_id: str, *, on: dt.date) -> Any:
        """The value of ``rule_id`` on ``on``."""
        return self.rules.value(rule_id, on=on)

    def rule(self, rule_id: str, *, on: dt.date) -> Rule:
        """The :class:`Rule` in force on ``on`` (with its source)."""
        return self.rules.rule(rule_id, on=on)

    def get(self, rule_id: str, default: Any, *, on: dt.date) -> Any:
        """``value`` with a default for rules the pack does not define."""
        return self.rules.get(rule_id, default, on=on)

    @property
    def calendar(self) -> BusinessCalendar:
        """The pack's business-day calendar."""
        return BusinessCalendar.for_country(self.calendar_country, self.calendar_subdivision)

    def with_house_rules(
        self,
        overrides: Mapping[str, Any],
        *,
        source: str = "house rules",
        effective_from: dt.date | None = None,
    ) -> PolicyPack:
        """This pack with a creditor's stricter house rules (never looser; see :meth:`RuleSet.with_house_rules`)."""
        return attrs.evolve(
            self, rules=self.rules.with_house_rules(overrides, source=source, effective_from=effective_from)
        )

    def with_rules(self, extra: Iterable[Rule], *, law_change: bool = False) -> PolicyPack:
        """This pack with ``extra`` rules added (a new year's figure, a state's rules, new rule ids).

        A rule with a new id is added as it is. A rule that shadows one of the
        pack's rules (same id, from its ``effective_from`` on) must not loosen
        the version in force on that day, judged by that rule's
        :class:`~carecollect.policy.rules.Strictness`, unless ``law_change`` says
        the new value records a change in the law itself (a new inkassosats, a
        new poverty guideline): then it may move either way, and its source
        and date say so. Nothing is loosened silently.

        :param extra: the rules to add.
        :param law_change: the rules record a change of the law, not a house's choice.
        :raises PolicyViolation: a rule would loosen the pack's limit and ``law_change`` is not set.

        >>> import datetime as dt
        >>> from carecollect.policy.rules import Rule, Strictness
        >>> us = get_pack("us")
        >>> us.with_rules((Rule("calls.max_per_7_days", 9, "house", dt.date(2027, 1, 1), Strictness.AT_MOST),))
        Traceback (most recent call last):
        ...
        carecollect.errors.PolicyViolation: rule 'calls.max_per_7_days' from 2027-01-01: 9 would loosen 7 (12 CFR 1006.14(b)(2)); pass law_change=True only when the law itself changed
        """
        added = tuple(extra)
        if not law_change:
            for new in added:
                if new.id not in self.rules:
                    continue
                try:
                    old = self.rules.rule(new.id, on=new.effective_from)
                except ConfigurationError:
                    continue  # no version in force yet: nothing to loosen
                if not tightens(old, new.value):
                    verb = "change the fixed value" if old.strictness is Strictness.FIXED else "loosen"
                    raise PolicyViolation(
                        f"rule {new.id!r} from {new.effective_from.isoformat()}: {new.value!r} would {verb} "
                        f"{old.value!r} ({old.source}); pass law_change=True only when the law itself changed"
                    )
        return attrs.evolve(self, rules=self.rules.merged(added))


_META: dict[str, tuple[str, str]] = {
    "default": ("Patient-friendly default", "US"),
    "us": ("United States", "US"),
    "no": ("Norway", "NO"),
    "de": ("Germany", "DE"),
    "bg": ("Bulgaria", "BG"),
}


def _build() -> dict[str, PolicyPack]:
    from . import outreach_rules, relief_rules

    packs = {}
    for key, (name, country) in _META.items():
        rules = tuple(outreach_rules.OUTREACH_RULES.get(key, ())) + tuple(
            relief_rules.RELIEF_RULES.get(key, ())
        )
        packs[key] = PolicyPack(key=key, name=name, rules=RuleSet(rules), calendar_country=country)
    return packs


BUILTIN_PACKS: Mapping[str, PolicyPack] = _build()


def available_packs() -> list[str]:
    """Keys of the built-in packs."""
    return sorted(BUILTIN_PACKS)


def pack_registry(extra: Iterable[PolicyPack] = ()) -> dict[str, PolicyPack]:
    """The built-in packs plus ``extra`` ones, keyed by pack key (no plugins, no global state).

    :param extra: packs of your own (a state's rules, a house pack under its own key).
    :raises ConfigurationError: an extra pack reuses a key (built in or given twice).

    >>> from carecollect.policy.packs import get_pack, pack_registry
    >>> colorado = attrs.evolve(get_pack("us"), key="us-co", name="United States, Colorado")
    >>> sorted(pack_registry([colorado]))
    ['bg', 'de', 'default', 'no', 'us', 'us-co']
    """
    packs = dict(BUILTIN_PACKS)
    for pack in extra:
        if pack.key in packs:
            raise ConfigurationError(
                f"policy pack key {pack.key!r} is already taken; give the pack its own key"
            )
        packs[pack.key] = pack
    return packs


def get_pack(key: str, *, extra: Iterable[PolicyPack] = ()) -> PolicyPack:
    """The pack ``key``: built in, or one of ``extra`` (see :func:`pack_registry`).

    Plugins add packs through the ``carecollect_policy_packs`` hook
    (``PluginManager.policy_pack``); this function needs no plugin system.

    :raises ConfigurationError: unknown key (the message lists the known ones).
    """
    packs = pack_registry(extra) if extra else BUILTIN_PACKS
    try:
        return packs[key]
    except KeyError:
        raise ConfigurationError(f"no policy pack {key!r}; available: {', '.join(sorted(packs))}") from None
