"""One public name, one meaning: no name in any module's ``__all__`` stands for two objects.

A name that got a more precise one stays under its old name for one minor release, as a
module ``__getattr__`` that warns (:mod:`carecollect.deprecation`); every such alias is listed
here once, proven to warn and to hand out the new object, and kept out of ``__all__``.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections import defaultdict

import pytest

import carecollect
from carecollect.deprecation import RENAMED

#: old place -> new place; the table the changelog gives (one row per alias).
ALIASES: list[tuple[str, str, str, str]] = [
    ("carecollect.relief.snapshot", "AccountSnapshot", "carecollect.relief.snapshot", "GateSnapshot"),
    ("carecollect.policy.explain", "Decision", "carecollect.policy.explain", "Verdict"),
    ("carecollect.relief.reasons", "Decision", "carecollect.policy.explain", "Verdict"),
    ("carecollect.relief", "Decision", "carecollect.policy.explain", "Verdict"),
    ("carecollect.contact_centre.records", "Outcome", "carecollect.contact_centre.records", "ContactOutcome"),
    ("carecollect.contact_centre", "Outcome", "carecollect.contact_centre.records", "ContactOutcome"),
    ("carecollect.messages.context", "PaymentMethod", "carecollect.messages.context", "WayToPay"),
    ("carecollect.messages.context", "PlanOption", "carecollect.messages.context", "PlanOptionInfo"),
    ("carecollect.messages", "PlanOption", "carecollect.messages.context", "PlanOptionInfo"),
    ("carecollect.plugins.messaging", "RenderedMessage", "carecollect.plugins.messaging", "OutgoingMessage"),
    ("carecollect.store.codec", "parse_instant", "carecollect.store.codec", "instant_from_iso"),
    ("carecollect.disputes", "resolve_dispute", "carecollect.relief.disputes", "resolve_dispute"),
    ("carecollect.policy.governor", "Conversation", "carecollect.policy.governor", "ReportedConversation"),
    ("carecollect.policy.outreach_rules", "RULES", "carecollect.policy.outreach_rules", "OUTREACH_RULES"),
    ("carecollect.policy.relief_rules", "RULES", "carecollect.policy.relief_rules", "RELIEF_RULES"),
    (
        "carecollect.handoff_consent",
        "record_handoff_consent",
        "carecollect.patients",
        "record_handoff_consent",
    ),
    (
        "carecollect.handoff_consent",
        "withdraw_handoff_consent",
        "carecollect.patients",
        "withdraw_handoff_consent",
    ),
]


def _modules() -> list[types.ModuleType]:
    found = [carecollect]
    for info in pkgutil.walk_packages(carecollect.__path__, "carecollect."):
        if info.name == "carecollect.daily_run":  # the deprecated alias: each name it forwards warns
            continue
        try:
            found.append(importlib.import_module(info.name))
        except ImportError as exc:  # an extra this environment does not install
            if not (exc.name or "").startswith("carecollect"):
                continue
            raise
    return found


def _is_hook_implementation(value: object) -> bool:
    # built-in plugins each implement the same hook; the name is the hook's, not a meaning of theirs
    return hasattr(value, "carecollect_impl")


@pytest.mark.parametrize(("old_module", "old", "new_module", "new"), ALIASES, ids=lambda v: str(v))
def test_an_old_name_warns_and_still_works(old_module: str, old: str, new_module: str, new: str) -> None:
    module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=rf"{old_module}\.{old} is deprecated.*{new_module}\.{new}"):
        value = getattr(module, old)
    assert value is getattr(importlib.import_module(new_module), new)
    assert old not in getattr(module, "__all__", ())


def test_every_alias_is_listed_here() -> None:
    _modules()  # importing a module registers its aliases
    listed = {(a, b): (c, d) for a, b, c, d in ALIASES}
    assert listed == RENAMED


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    from carecollect.relief import snapshot

    with pytest.raises(AttributeError, match="no_such_name"):
        snapshot.no_such_name  # noqa: B018


def test_one_public_name_is_one_object() -> None:
    owners: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module in _modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if not _is_hook_implementation(value):
                owners[name][id(value)].append(module.__name__)
    twice = {name: sorted(map(tuple, by_id.values())) for name, by_id in owners.items() if len(by_id) > 1}
    assert not twice, "public names that stand for two different objects: " + "; ".join(
        f"{name} in {places}" for name, places in sorted(twice.items())
    )


def test_the_scan_would_catch_a_second_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    from carecollect.policy import explain

    monkeypatch.setattr(explain, "Outcome", type("Outcome", (), {}))
    with pytest.raises(AssertionError, match="Outcome in"):
        test_one_public_name_is_one_object()
