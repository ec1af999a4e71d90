"""A pending financial-assistance application pauses the daily run's outreach on that account.

The policy has always paused outreach while an application awaits a decision;
these tests prove the run sees applications kept in the store (schema 4), that
the kernel pre-screen leaves such accounts to the rich path, and that outreach
resumes once the application is decided.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from carecollect.portfolio import load_portfolio
from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore
from carecollect.store.base import NotFound

NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path_factory.mktemp("assistance") / "run.db") as s:
        load_portfolio(s, 200, seed=3, as_of=NOW.date())
        yield s


def test_a_pending_application_pauses_outreach_until_it_is_decided(store: SQLiteStore) -> None:
    settings = RunSettings()
    before = plan_run(store, NOW, settings)
    applying = sorted({m.step.account_id for m in before.messages})[:5]
    assert len(applying) == 5
    for n, account_id in enumerate(applying):
        store.put_application(AssistanceApplication(f"FA-{n}", account_id, NOW.date()))
    assert all(
        [a.id for a in snap.applications] == [f"FA-{applying.index(snap.account.id)}"]
        for snap in store.iter_account_snapshots()
        if snap.account.id in applying
    )

    for prescreen in (True, False):
        paused = plan_run(store, NOW, settings, prescreen=prescreen)
        assert not [m for m in paused.messages if m.step.account_id in applying]
        held = {
            d.account_id for d in paused.decisions if any(r.rule_id == "assistance.pause" for r in d.reasons)
        }
        assert held == set(applying)
        # every other account is planned exactly as before
        assert [m for m in paused.messages if m.step.account_id not in applying] == [
            m for m in before.messages if m.step.account_id not in applying
        ]

    # decided (approved or denied): outreach resumes as before the application
    for n, account_id in enumerate(applying):
        status = ApplicationStatus.APPROVED if n % 2 else ApplicationStatus.DENIED
        store.put_application(
            AssistanceApplication(
                f"FA-{n}", account_id, NOW.date(), status, NOW.date() + dt.timedelta(days=1)
            )
        )
    after = plan_run(store, NOW, settings)
    assert after.messages == before.messages


def test_an_application_needs_an_account(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        store.put_application(AssistanceApplication("FA-X", "A-NOPE", NOW.date()))
    assert store.counts()["assistance_applications"] == 0
