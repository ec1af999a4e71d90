"""Policy: jurisdiction packs of sourced rules, and the pure functions that read them."""

from __future__ import annotations

from .packs import BUILTIN_PACKS, PolicyPack, available_packs, get_pack
from .rules import Rule, RuleSet, Strictness

__all__ = ["BUILTIN_PACKS", "PolicyPack", "Rule", "RuleSet", "Strictness", "available_packs", "get_pack"]
