"""The relief rules of every built-in policy pack, as sourced data."""

from __future__ import annotations

from .rules import Rule

__all__ = ["RULES"]

#: Rules per pack key (``"default"``, ``"us"``, ``"no"``, ``"de"``, ``"bg"``).
RULES: dict[str, tuple[Rule, ...]] = {}
