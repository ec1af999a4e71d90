"""The house has floors: no module imports from a floor above its own.

Floors, bottom up (CONTRIBUTING.md draws the map): the base (errors, money, time, calendars,
scrubbing); records (frozen domain objects and their guarded transitions); rules (policy packs,
rule reading, reasons); decisions (cadence, governor, relief, contact centre); messages;
plugins (hook specifications, contracts, manager, built-ins, the conformance kit); the store;
the run (plan rows, kernel, daily run); the edges that feed and read it (importers, reports,
the synthetic portfolio); and the top (command line, demo, benchmark).

Every ``import`` is read from the source (also those inside functions), so a lazy import does
not hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "carecollect"

#: module prefix (relative to carecollect) -> floor; the longest matching prefix wins.
FLOORS: dict[str, int] = {
    "errors": 0,
    "deprecation": 0,
    "scrubbing": 0,
    "channels": 0,
    "money": 0,
    "timekeeping": 0,
    "calendars": 0,
    "office_hours": 0,
    "validation": 0,
    "events": 0,
    "observability": 0,
    "patients": 1,
    "assistance_applications": 1,
    "handoff_consent": 1,
    "geography": 0,
    "addresses": 0,
    "invoices": 1,
    "payments": 1,
    "plans": 1,
    "disputes": 1,
    "placements": 1,
    "outreach": 1,
    "creditors": 1,
    "ledger": 1,
    "policy.packs": 2,
    "policy.rules": 2,
    "policy.explain": 2,
    "policy.reason_texts": 2,
    "policy.content": 2,
    "policy.relief_rules": 2,
    "policy.outreach_rules": 2,
    "policy": 3,
    "relief": 3,
    "contact_centre": 3,
    "remittance": 3,
    "messages": 4,
    # what a channel sends: the standard e-mail and the printed letter, built for the channel contract
    "messages.email": 5,
    "messages.letters": 5,
    "messages.letter_gallery": 5,
    "messages.pdf": 5,
    "plugins": 5,
    # the built-in plugins use the messages of floor 5 (standard e-mail, letters)
    "plugins.builtin": 6,
    # drives a channel with its declared batch size, concurrency and rate limit (the run uses it)
    "plugins.dispatch": 5,
    "testing": 5,
    "_moved": 0,
    "store": 6,
    "run": 7,
    # the daily run, one subsystem per module (the run layer)
    "run.rows": 7,
    "run.kernel": 7,
    "run.settings": 7,
    # the settings file (TOML beside the database): read into run settings by the commands,
    # the demo and the patient pages
    "run.settings_file": 7,
    "run.decisions": 7,
    "run.planning": 7,
    "run.inbound": 7,
    "run.event_intake": 7,
    "run.payment_intake": 7,
    "run.dispute_intake": 7,
    "run.hooks": 7,
    "run.sending": 7,
    "run.charges": 7,
    "run.report": 7,
    "run.workers": 7,
    "run.cluster": 7,
    "run.joining": 7,
    "run.execute": 7,
    "run.process": 7,
    # deprecated alias of the modules above (one minor release)
    "daily_run": 7,
    "importers": 8,
    # the store conformance kit drives a store with the synthetic portfolio and checks plan rows
    "testing.stores": 8,
    "reports": 8,
    "report_formats": 8,
    "portfolio": 8,
    # the contact-centre records file is read by the demo and the commands alike: an edge below both
    "cli.contacts": 8,
    # the command line is the very top: it calls the demo, never the other way round
    "cli": 10,
    "demo": 9,
    "demo_remittances": 9,
    "demo_channels": 9,
    "bench": 9,
    "web": 9,
}

#: Arrows that run back up today, each with the reason it is still there. The list may only
#: shrink: a new arrow up fails the test, and so does an entry here that no longer exists.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in FLOORS:
            return FLOORS[key]
    return None


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                if node.module is None:
                    found.update(".".join([*base, a.name]) for a in node.names)
                else:
                    found.add(target)
            elif node.module and node.module.startswith("carecollect."):
                found.add(node.module.removeprefix("carecollect."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("carecollect.") for a in node.names if a.name.startswith("carecollect.")
            )
    return {m for m in found if m}


def _arrows() -> dict[tuple[str, str], tuple[int, int]]:
    upward: dict[tuple[str, str], tuple[int, int]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_of(path)
        if not module:
            continue  # the package's own __init__: lazy names only
        mine = _floor(module)
        assert mine is not None, f"carecollect.{module} has no floor: add it to FLOORS"
        for target in _imports(path, module):
            theirs = _floor(target)
            if theirs is not None and theirs > mine:
                upward[(module, target)] = (mine, theirs)
    return upward


def test_every_module_has_a_floor() -> None:
    for path in SRC.rglob("*.py"):
        module = _module_of(path)
        if module:
            assert _floor(module) is not None, f"carecollect.{module} has no floor: add it to FLOORS"


def test_no_module_imports_from_a_floor_above() -> None:
    upward = _arrows()
    new = {k: v for k, v in upward.items() if k not in KNOWN_UPWARD}
    assert not new, "imports that run up the floors: " + "; ".join(
        f"carecollect.{a} (floor {fa}) imports carecollect.{b} (floor {fb})"
        for (a, b), (fa, fb) in sorted(new.items())
    )
    gone = set(KNOWN_UPWARD) - set(upward)
    assert not gone, f"no longer upward, take them off KNOWN_UPWARD: {sorted(gone)}"


@pytest.mark.parametrize(
    ("module", "floor"), [("policy.cadence", 3), ("policy.packs", 2), ("store.sqlite", 6), ("run.kernel", 7)]
)
def _room(module: str) -> tuple[str, int]:
    floor = _floor(module)
    assert floor is not None
    return module.split(".")[0], floor


def _room_arrows() -> dict[tuple[str, int], set[tuple[str, int]]]:
    graph: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_of(path)
        if not module:
            continue
        for target in _imports(path, module):
            if _floor(target) is not None and _room(target) != _room(module):
                graph.setdefault(_room(module), set()).add(_room(target))
    return graph


def _cycles(graph: dict[tuple[str, int], set[tuple[str, int]]]) -> list[list[tuple[str, int]]]:
    """Every strongly connected group of more than one room (Tarjan)."""
    index: dict[tuple[str, int], int] = {}
    low: dict[tuple[str, int], int] = {}
    stack: list[tuple[str, int]] = []
    found: list[list[tuple[str, int]]] = []

    def visit(node: tuple[str, int]) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


#: Rooms that use each other today, each with its reason; the list may only shrink.
KNOWN_ROOM_CYCLES: dict[tuple[str, ...], str] = {}


def test_no_two_rooms_import_each_other() -> None:
    """A room is a top-level package (or module) on one floor: ``policy`` on the decisions floor,
    ``relief``, ``cli`` on the top floor. Two rooms on one floor may use each other one way
    only (``relief`` reads ``policy``'s insurer wait, ``policy`` reads nothing of ``relief``;
    ``cli`` calls ``demo``, ``demo`` uses only the edges below both)."""
    found = {tuple(name for name, _ in group): group for group in _cycles(_room_arrows())}
    cycles = [group for names, group in found.items() if names not in KNOWN_ROOM_CYCLES]
    gone = set(KNOWN_ROOM_CYCLES) - set(found)
    assert not gone, f"no longer a cycle, take them off KNOWN_ROOM_CYCLES: {sorted(gone)}"
    assert not cycles, "rooms that import each other (move the shared piece down): " + "; ".join(
        " <-> ".join(f"{name} (floor {floor})" for name, floor in group) for group in cycles
    )


#: Rooms on one floor that stand in an order: (lower, upper); the lower never imports the upper.
WITHIN_A_FLOOR: dict[tuple[str, str], str] = {
    ("policy", "relief"): "relief fits plans, fees and gates to the cadence's rules and reads the "
    "insurer wait; the cadence and the governor decide without relief",
}


def test_rooms_on_one_floor_keep_their_order() -> None:
    graph = _room_arrows()
    wrong = sorted(
        (lower, upper)
        for lower, upper in WITHIN_A_FLOOR
        for (name, floor), targets in graph.items()
        if name == lower and any(t == (upper, floor) for t in targets)
    )
    assert not wrong, f"a lower room imports the one above it on its floor: {wrong}"


def test_the_room_check_sees_a_cycle() -> None:
    a, b, c = ("policy", 3), ("relief", 3), ("policy", 2)
    assert _cycles({a: {b}, b: {a, c}}) == [[a, b]]
    assert _cycles({a: {b}, b: {c}}) == []


@pytest.mark.parametrize(
    ("module", "floor"),
    [
        ("policy.cadence", 3),
        ("policy.packs", 2),
        ("store.sqlite", 6),
        ("run.kernel", 7),
        ("cli.contacts", 8),
        ("run.settings_file", 7),
        ("cli", 10),
    ],
)
def test_floors_are_read_by_the_longest_prefix(module: str, floor: int) -> None:
    assert _floor(module) == floor
