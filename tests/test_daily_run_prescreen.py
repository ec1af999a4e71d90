"""The daily run's pre-screen (the compiled cadence kernel first) changes nothing in the plan.

``plan_run(..., prescreen=True)`` lets the kernel settle invoices with nothing
due; ``prescreen=False`` asks the rich path (relief flags, ``due_steps``, the
governor) for every invoice. On a varied portfolio with a history of sent
steps (three real runs through the file outbox), claims the insurer has not
decided within and past the pack's wait, plans, disputes, opt-outs and an
agency, the two plans must be identical at every instant, decisions and their
reasons included.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import carecollect.run.planning as planning
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.decisions import DecisionKind, RunPlan
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore

AS_OF = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
# claims the insurer has not decided: within and past the us pack's 60-day (pending) and
# 90-day (appealed) waits, counted from filing, at the first instants below
CLAIMS = (
    ("pending", "2026-02-20"),
    ("pending", "2026-01-01"),
    ("pending", "2025-11-20"),
    ("appealed", "2026-01-10"),
    ("appealed", "2025-11-01"),
)
FREEZES = {"dispute.freeze", "plan.pause_reminders", "insurer.pause"}
DAYS = (0, 1, 3, 9, 17, 30, 45, 62, 80, 120)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    tmp = tmp_path_factory.mktemp("prescreen")
    path = tmp / "run.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 600, seed=11, as_of=AS_OF)
    db = sqlite3.connect(path)
    ids = [r[0] for r in db.execute("SELECT id FROM invoices WHERE claim_status = 'pending' ORDER BY id")]
    for n, iid in enumerate(ids):
        db.execute(
            "UPDATE invoices SET claim_status = ?, claim_submitted_on = ? WHERE id = ?", (*CLAIMS[n % 5], iid)
        )
    db.commit()
    db.close()
    with SQLiteStore(path) as s:
        pm = make_plugin_manager(load_entrypoints=False)
        settings = RunSettings(channel_config={"outbox": {"folder": str(tmp / "out")}})
        # a history of sent steps: the first statements, then what fell due three and six weeks later
        for day in (0, 22, 44):
            assert execute_run(s, NOW + dt.timedelta(days=day), pm, settings).sent > 0
        yield s


def _same(a: RunPlan, b: RunPlan) -> None:
    assert (a.accounts, a.invoices) == (b.accounts, b.invoices)
    assert a.messages == b.messages
    assert a.placements == b.placements
    assert a.charges == b.charges
    assert a.missed == b.missed
    assert a.decisions == b.decisions  # reasons and next dates included


def test_prescreen_plans_like_the_rich_path(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    screened = 0
    real = planning._prescreen

    def counting(*args: Any) -> Any:
        nonlocal screened
        out = real(*args)
        screened += out is not None
        return out

    monkeypatch.setattr(planning, "_prescreen", counting)
    settings = RunSettings(agency="agency-files")
    kinds: dict[str, int] = {}
    next_dates = 0
    freezes: set[str] = set()
    for day in DAYS:
        now = NOW + dt.timedelta(days=day, hours=day % 3 * 7)  # some instants in quiet hours
        rich = plan_run(store, now, settings, prescreen=False)
        fast = plan_run(store, now, settings, prescreen=True)
        _same(rich, fast)
        for kind, n in fast.counts().items():
            kinds[kind] = kinds.get(kind, 0) + n
        next_dates += sum(1 for d in fast.decisions if d.kind is DecisionKind.NOTHING_DUE and d.earliest)
        freezes.update(r.rule_id for d in fast.decisions for r in d.reasons if r.rule_id in FREEZES)
    # the comparison is not empty: the kernel settled many invoices, and the plans held every
    # kind of decision the pre-screen must leave to the rich path
    assert screened > 1000
    assert next_dates > 500
    for kind in ("send", "hold", "nothing_due", "place", "gate_held"):
        assert kinds.get(kind, 0) > 0, (kind, kinds)
    assert freezes == FREEZES  # open disputes, current plans and claims within the wait all held invoices


def test_prescreen_leaves_frozen_and_waiting_invoices_to_the_rich_path(store: SQLiteStore) -> None:
    snaps = list(store.iter_account_snapshots())
    creditor = store.get_creditor(snaps[0].account.creditor_id)
    pack = RunSettings().pack("us")
    today = NOW.date()
    waiting = [
        (s, i)
        for s in snaps
        for i in s.invoices
        if i.insurance.status.waiting and s.account.jurisdiction == "us"
    ]
    assert waiting
    for snap, inv in waiting:
        balance = snap.ledger.invoice_balance(inv.id)
        assert planning._prescreen(snap, inv, balance, creditor, pack, NOW, today) is None


def test_plan_account_defaults_to_the_prescreen(tmp_path: Path) -> None:
    import inspect

    assert inspect.signature(plan_run).parameters["prescreen"].default is True
    assert inspect.signature(planning.plan_account).parameters["prescreen"].default is True
