"""The insurer's wait ends on the patient's own day, as every other date of the cadence does.

The us pack waits 60 days after filing for a pending claim. Claims filed on 2 March
2026 stop holding their invoices on 1 May. At 03:00 UTC on 1 May it is still 30 April
in Los Angeles, so the run must keep holding them there, and release them a day
later; the plan with and without the kernel pre-screen agrees on both evenings.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from carecollect.policy import get_pack
from carecollect.portfolio import load_portfolio
from carecollect.run.decisions import DecisionKind, RunPlan
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore

WAIT = int(get_pack("us").value("insurer.pending_wait_days", on=dt.date(2026, 5, 1)))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, list[str]]]:
    path: Path = tmp_path_factory.mktemp("local-day") / "run.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 300, seed=5, as_of=dt.date(2026, 2, 1))
    db = sqlite3.connect(path)
    # every open US invoice of a patient whose only zone is Los Angeles: a claim pending since
    # a filing day whose wait runs out exactly on 1 May 2026
    filed = dt.date(2026, 5, 1) - dt.timedelta(days=WAIT)
    ids = [
        r[0]
        for r in db.execute(
            "SELECT i.id FROM invoices i JOIN accounts a ON a.id = i.account_id "
            "JOIN patients p ON p.id = a.patient_id "
            "WHERE a.jurisdiction = 'us' AND p.time_zones = 'America/Los_Angeles' AND i.status = 'open'"
        )
    ]
    db.executemany(
        "UPDATE invoices SET claim_status = 'pending', claim_submitted_on = ? WHERE id = ?",
        [(filed.isoformat(), i) for i in ids],
    )
    db.commit()
    db.close()
    with SQLiteStore(path) as s:
        yield s, ids


def _insurer_held(plan: RunPlan, ids: list[str]) -> set[str]:
    return {
        d.invoice_id
        for d in plan.decisions
        if d.invoice_id in ids and any(r.rule_id == "insurer.pause" for r in d.reasons)
    }


def test_the_wait_is_judged_on_the_patients_day(store: tuple[SQLiteStore, list[str]]) -> None:
    s, ids = store
    assert len(ids) >= 3
    settings = RunSettings()
    # 30 April 20:00 in Los Angeles (1 May 03:00 UTC): the wait has not run out there
    evening = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)
    # 1 May 20:00 in Los Angeles (2 May 03:00 UTC): it has
    next_evening = evening + dt.timedelta(days=1)
    before = plan_run(s, evening, settings, prescreen=False)
    after = plan_run(s, next_evening, settings, prescreen=False)
    assert _insurer_held(before, ids) == set(ids)  # the UTC date (1 May) would have released them
    assert not _insurer_held(after, ids)
    released = {
        d.invoice_id for d in after.decisions if d.invoice_id in ids and d.kind is not DecisionKind.PAUSED
    }
    assert released == set(ids)
    # the kernel pre-screen plans the same on both evenings
    for now, rich in ((evening, before), (next_evening, after)):
        fast = plan_run(s, now, settings, prescreen=True)
        assert fast.decisions == rich.decisions
        assert fast.messages == rich.messages
