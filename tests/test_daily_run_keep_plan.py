"""``RunSettings.keep_plan=False``: a run or a dry run keeps counts only, the same counts as the full plan."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import attrs
import pytest

from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.decisions import RunPlan
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore

AS_OF = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
WHAT = ("messages", "missed", "placements", "charges")


def _sizes(plan: RunPlan) -> tuple[object, ...]:
    return (plan.accounts, plan.invoices, plan.counts(), tuple(plan.size(w) for w in WHAT))


def test_counts_only_plan_has_the_full_plans_counts(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "run.db") as store:
        load_portfolio(store, 400, seed=3, as_of=AS_OF)
        settings = RunSettings(agency="agency-files", agency_config={"folder": str(tmp_path / "agency")})
        for day in (0, 30, 75):  # the first statements, reminders, then what may reach the gates
            now = NOW + dt.timedelta(days=day)
            full = plan_run(store, now, settings)
            lean = plan_run(store, now, attrs.evolve(settings, keep_plan=False))
            assert full.tally is None and full.size("messages") == len(full.messages)
            assert lean.messages == lean.decisions == lean.missed == lean.placements == lean.charges == ()
            assert _sizes(lean) == _sizes(full)
            assert sum(full.counts().values()) == len(full.decisions) > 0
        assert full.size("placements") > 0 or full.counts().get("gate_held", 0) > 0
        with pytest.raises(ValueError, match="one of"):
            full.size("decisions")


def test_a_real_run_with_counts_only_sends_the_same_and_reports_the_same_counts(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as a:
        load_portfolio(a, 300, seed=4, as_of=AS_OF)
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    reports = []
    for name, keep in (("a", True), ("b", False)):
        with SQLiteStore(tmp_path / f"{name}.db") as store:
            settings = RunSettings(
                channel_config={"outbox": {"folder": str(tmp_path / f"out-{name}")}}, keep_plan=keep
            )
            reports.append(execute_run(store, NOW, make_plugin_manager(load_entrypoints=False), settings))
            # every decision is audited either way
            assert sum(1 for r in store.audit_records() if r.kind.startswith("decision.")) == sum(
                reports[-1].plan.counts().values()
            )
    full, lean = reports
    assert full.sent == lean.sent > 0
    assert lean.plan.messages == () and _sizes(lean.plan) == _sizes(full.plan)
    assert sorted(p.name for p in (tmp_path / "out-a").iterdir()) == sorted(
        p.name for p in (tmp_path / "out-b").iterdir()
    )
