"""Reasons are rule ids with parameters; their texts come from one catalogue.

Every place in the code that records a reason is read from the source (``Reason(...)``,
``note(...)``, ``rule_reason(...)``, ``reason_from_rule(...)`` and the modules' small local
helpers around them): its rule id must have a template for the ``case`` it passes, and the
template's fields must be exactly the parameters it passes. A rule id the code computes is
resolved to every id it can take (the compiled cadence's timing rules of every pack, the
governor's caps...), so a new rule or a new text without its template fails here.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import importlib
import json
import pickle
import string
import warnings
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.cli import main
from carecollect.errors import ValidationError
from carecollect.policy.cadence import compile_pack
from carecollect.policy.explain import (
    Outcome,
    Params,
    Reason,
    Verdict,
    note,
    reason_from_rule,
    reason_text,
    rule_reason,
)
from carecollect.policy.packs import available_packs, get_pack
from carecollect.policy.reason_texts import REASON_TEXTS, template
from carecollect.portfolio import load_portfolio
from carecollect.store.sqlite import SQLiteStore

SRC = Path(__file__).resolve().parent.parent / "src" / "carecollect"

#: callee name -> index of the rule-id argument (by the number of positional arguments where
#: one name has two shapes: ``rule_reason(pack, id, on, outcome)`` and the governor's local
#: ``rule_reason(id, outcome)``).
_RULE_ARG = {"Reason": 0, "note": 0, "rr": 0, "reason_from_rule": 0}


def _compiled_rule_ids() -> set[str]:
    ids: set[str] = set()
    for key in available_packs():
        for collector in (False, True):
            for nonprofit in (False, True):
                cp = compile_pack(
                    get_pack(key), on=dt.date(2026, 3, 2), collector=collector, nonprofit=nonprofit
                )
                ids.update(cp.rule_ids)
    return ids


#: Rule ids the code computes, by module and the source text of the expression: every id it can take.
DYNAMIC: dict[tuple[str, str], set[str]] = {
    ("policy.cadence", "cp.rule_ids[idx]"): _compiled_rule_ids(),
    ("policy.cadence", "rule_id"): {
        "dispute.freeze",
        "plan.pause_reminders",
        "insurer.pause",
        "assistance.pause",
    },
    ("policy.cadence", "rule"): {
        "estimate.gfe_business_days_if_scheduled_3_ahead",
        "estimate.gfe_business_days_if_scheduled_10_ahead",
    },
    ("policy.governor", "rule_id"): {
        "dispute.freeze",
        "plan.pause_reminders",
        "insurer.pause",
        "assistance.pause",
    },
    ("policy.governor", "caps.cap_rule_id"): {
        "calls.max_per_7_days",
        "email.max_per_7_days",
        "sms.max_per_7_days",
        "letter.max_per_7_days",
    },
    ("policy.content", "rule"): {
        "content.forbidden.sms",
        "content.forbidden.voicemail",
        "content.forbidden.email_subject",
        "content.forbidden.portal_notification",
    },
    ("policy.content", "limited"): {"voicemail.limited_content"},
    ("policy.insurer", "rid"): {"insurer.pending_wait_days", "insurer.appeal_wait_days"},
    ("relief.gates", "rid"): {"gate.pre_placement_notice_days", "r501.notice_days_before_eca"},
    ("relief.gates", "consent_rule"): {"de.handoff_requires_consent"},
    ("relief.gates", "rule_id"): {  # the waiting periods of _age: shared cases, any id
        "gate.min_days_after_first_statement",
        "r501.notification_period_days",
        "state.XX.min_days_before_action",
        "state.XX.credit_report_min_days",
        "credit.min_days_delinquent",
        "credit.passive_wait_days",
    },
    # a state's plan cap: the bill kind's own rule or the state's general one
    ("relief.plans", "state_rule_id(state, name)"): {
        "state.XX.plan.max_income_percent.hospital",
        "state.XX.plan.max_income_percent.professional",
        "state.XX.plan.max_income_percent",
    },
}


def _callee(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def _ids(node: ast.expr, module: str) -> set[str] | None:
    """The rule ids an expression can take (``None``: unknown)."""
    dynamic = DYNAMIC.get((module.removeprefix("carecollect."), ast.unparse(node)))
    if dynamic is not None:
        return dynamic
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.JoinedStr):  # f"fpl.{region.value}": its literal head and any tail
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return {head.value + "anything"}
        return None
    if isinstance(node, ast.Call) and _callee(node) == "rule" and node.args:  # pack.rule("id", on=...)
        return _ids(node.args[0], module)
    if isinstance(node, ast.Call) and _callee(node) == "state_rule_id" and len(node.args) == 2:
        names = _ids(node.args[1], module)
        return {f"state.XX.{n}" for n in names} if names else None
    if isinstance(node, ast.Name):
        value = getattr(importlib.import_module(module), node.id, None)
        if isinstance(value, str):
            return {value}
    return None


def _params(call: ast.Call, name: str, module: str) -> list[tuple[set[str], set[str | None]]] | None:
    """Each shape of parameters a call passes: (names other than case, cases)."""

    def cases(node: ast.expr | None) -> set[str | None] | None:
        if node is None:
            return {None}
        if isinstance(node, ast.Constant):
            return {node.value}
        if isinstance(node, ast.IfExp):
            a, b = cases(node.body), cases(node.orelse)
            return None if a is None or b is None else a | b
        return None

    if name == "Reason":
        if len(call.args) < 4:
            return [(set(), {None})]
        return _mapping_shapes(call.args[3], module)
    kw = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if any(k.arg is None for k in call.keywords):
        return None
    found = cases(kw.pop("case", None))
    return None if found is None else [(set(kw), found)]


def _mapping_shapes(node: ast.expr, module: str) -> list[tuple[set[str], set[str | None]]] | None:
    if isinstance(node, ast.IfExp):
        a, b = _mapping_shapes(node.body, module), _mapping_shapes(node.orelse, module)
        return None if a is None or b is None else a + b
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        case_node = next(
            (
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "case"
            ),
            None,
        )
        case = case_node.value if isinstance(case_node, ast.Constant) else None
        return [(keys - {"case"}, {case})]
    if isinstance(node, ast.Name):
        value = getattr(importlib.import_module(module), node.id, None)
        if isinstance(value, Params):
            return [(set(value) - {"case"}, {value.get("case")})]  # type: ignore[arg-type]
    return None


def _sites() -> Iterator[tuple[str, int, str, ast.Call]]:
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _callee(node)
            if name in _RULE_ARG or name == "rule_reason":
                yield _module(path), node.lineno, name, node


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_reason_the_code_records_has_its_template() -> None:
    problems: list[str] = []
    seen = 0
    for module, line, name, call in _sites():
        where = f"{module}:{line}"
        index = (1 if len(call.args) >= 4 else 0) if name == "rule_reason" else _RULE_ARG[name]
        if len(call.args) <= index:
            continue  # the definitions' own signatures are not calls; a call without an id is not ours
        if name == "Reason" and module == "carecollect.policy.explain":
            continue  # the constructors themselves (they pass their arguments on)
        if any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == "params" for k in call.keywords
        ):
            continue  # a small helper passing its caller's rule id and parameters on
        ids = _ids(call.args[index], module)
        shapes = _params(call, name, module)
        if ids is None or shapes is None:
            problems.append(f"{where}: cannot tell the rule id or parameters of {ast.unparse(call)[:80]}")
            continue
        for rule_id in ids:
            for params, cases in shapes:
                for case in cases:
                    seen += 1
                    found = template(rule_id, case)
                    if found is None:
                        problems.append(f"{where}: no template for {rule_id!r} (case {case!r})")
                    elif _fields(found) != params:
                        problems.append(
                            f"{where}: {rule_id!r} (case {case!r}) passes {sorted(params)}, "
                            f"its template wants {sorted(_fields(found))}"
                        )
    assert not problems, "\n".join(problems)
    assert seen > 150  # the reading above found the sites (about 170 rule, case pairs)


def test_every_template_formats_with_its_own_fields() -> None:
    for rule_id, entry in REASON_TEXTS.items():
        for text in [entry] if isinstance(entry, str) else list(entry.values()):
            filled = text.format_map(dict.fromkeys(_fields(text), "x"))
            assert "{" not in filled and "}" not in filled, rule_id


def test_a_reason_records_its_parameters_and_writes_its_text_when_asked() -> None:
    r = rule_reason(get_pack("us"), "sms.consent_recheck_days", dt.date(2026, 3, 2), Outcome.DENY, days=90)
    assert r.params == {"days": 90} and r.text is None
    assert r.message == "no consent or number check within 90 days"
    record = r.to_record()
    assert record["params"] == {"days": 90} and "message" not in record  # written out when read
    back = Reason.from_record(json.loads(json.dumps(record)))
    assert back == r and hash(back) == hash(r)
    assert str(Verdict(False, (r,)).explain()).endswith(": no consent or number check within 90 days")


def test_an_old_stored_reason_with_its_text_only_still_reads_and_explains() -> None:
    old = {
        "rule_id": "quiet_hours.start",
        "source": "12 CFR 1006.6(b)(1)(i)",
        "outcome": "defer",
        "message": "outside 08:00-21:00 local time in at least one of America/Chicago",
    }
    r = Reason.from_record(old)
    assert r.text == old["message"] and r.message == old["message"] and not r.params
    assert Reason.from_record(r.to_record()) == r
    assert "params" not in r.to_record()


@pytest.mark.parametrize(
    "record",
    [
        {"rule_id": "a", "source": "s", "outcome": "maybe", "params": {}},
        {"rule_id": "a", "source": "s", "outcome": "deny"},
        {"rule_id": "a", "source": "s", "outcome": "deny", "params": {"n": 1.5}},
        {"rule_id": "a", "source": "s", "outcome": "deny", "params": {"n": True}},
        {"rule_id": "a", "source": "s", "outcome": "deny", "params": ["n"]},
    ],
)
def test_a_record_that_is_no_reason_is_refused(record: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="Reason"):
        Reason.from_record(record)  # type: ignore[arg-type]


def test_params_are_immutable_and_only_str_or_int() -> None:
    p = Params(days=7, on="2026-03-02")
    with pytest.raises(AttributeError):
        p._items = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        p["days"] = 8  # type: ignore[index]
    for bad in (1.5, None, dt.date(2026, 3, 2), True):
        with pytest.raises(ValidationError, match="params"):
            Params(n=bad)  # type: ignore[arg-type]
    assert Params({"a": 1}) == Params(a=1) != Params(a=2)


def test_a_reason_crosses_processes_and_copies_whole() -> None:
    r = Reason(
        "plan.grace_days",
        "creditor policy",
        Outcome.INFO,
        {"case": "run_missed", "instalment": 2, "plan": "PL-1", "days": 10},
    )
    for back in (pickle.loads(pickle.dumps(r)), copy.deepcopy(r), copy.copy(r.params)):
        assert back == (r if isinstance(back, Reason) else r.params)
    assert (
        pickle.loads(pickle.dumps(r)).message == "instalment 2 of plan PL-1 unpaid 10 days after it fell due"
    )


def test_an_unknown_rule_id_shows_its_id_and_parameters() -> None:
    assert reason_text("newer.rule", {"days": 3}) == "newer.rule (days=3)"
    assert reason_text("newer.rule", {}) == "newer.rule"
    # a template whose field is missing is not fatal either
    assert reason_text("sms.consent_recheck_days", {}) == "sms.consent_recheck_days"


def test_the_0_1_forms_with_a_finished_text_still_work_with_a_warning() -> None:
    rule = get_pack("us").rule("sms.allowed", on=dt.date(2026, 3, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = Reason("x.y", "s", Outcome.DENY, "a finished text")
        b = note("record.x", "s", "noted", Outcome.INFO)  # type: ignore[arg-type]
        c = reason_from_rule(rule, Outcome.DENY, "no texts")
        d = rule_reason(get_pack("us"), "sms.allowed", dt.date(2026, 3, 2), Outcome.DENY, "no texts")
    assert [w.category for w in caught] == [DeprecationWarning] * 4
    assert (a.message, b.message, b.outcome, c.message, d.message) == (
        "a finished text",
        "noted",
        Outcome.INFO,
        "no texts",
        "no texts",
    )


def test_carecollect_explain_writes_out_new_and_old_reasons(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    with closing(SQLiteStore(db)) as store:
        load_portfolio(store, 3, seed=5, as_of=dt.date(2026, 3, 2))
        account = next(iter(store.iter_account_snapshots())).account.id
        new = Reason("sms.consent_recheck_days", "s", Outcome.DENY, {"days": 90}).to_record()
        old = {"rule_id": "sms.allowed", "source": "t", "outcome": "deny", "message": "an old stored text"}
        at = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
        store.audit_append("decision.hold", account, {"kind": "hold", "reasons": [new, old]}, at=at)
    result = CliRunner().invoke(main, ["explain", "--db", str(db), account], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "deny sms.consent_recheck_days (s): no consent or number check within 90" in result.output
    assert "deny sms.allowed (t): an old stored text" in result.output
