"""The run's partitions on a Dask ``LocalCluster`` of worker processes, on a SQLite file and PostgreSQL.

Every due message is sent exactly once (the file outbox names each file by message id, so a
duplicate would show as a second hand-over in the channel's log); a run started again for the
same instant does no finished partition again.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason='NO DASK: install "carecollect[dask]" to test the run on a cluster')

from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.workers import run_key_of
from carecollect.store.base import OutboxStatus, Store
from carecollect.store.sqlite import SQLiteStore

pytestmark = pytest.mark.dask

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
PM = functools.partial(make_plugin_manager, load_entrypoints=False)
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "run.sqlite")
    else:
        pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
        from carecollect.store.postgres import PostgresStore

        server = request.getfixturevalue("postgres_server")
        opened = PostgresStore(server.create_database(f"dask_{next(_names)}"), migrate=True)
    with opened:
        yield opened


def test_a_local_cluster_sends_every_due_message_once_and_a_rerun_redoes_no_partition(
    store: Store, tmp_path: Path
) -> None:
    load_portfolio(store, 300, seed=5, as_of=NOW.date())
    out = tmp_path / "out"
    settings = RunSettings(channel_config={"outbox": {"folder": str(out)}})
    planned = {m.key for m in plan_run(store, NOW, settings).messages}
    assert len(planned) > 100

    report = execute_run(store, NOW, PM(), settings, cluster="local:2", partitions=6, pm_factory=PM)

    assert report.sent == len(planned) and report.failed == 0
    assert report.plan.accounts == store.counts()["accounts"]
    files = Counter(p.stem for p in out.iterdir() if not p.name.startswith("."))
    assert len(files) == len(planned) and all(n == 1 for n in files.values())
    assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
    assert store.finished_partitions(run_key_of(NOW)) == set(range(6))
    assert store.verify_audit().ok and store.current_run_lock() is None

    again = execute_run(store, NOW, PM(), settings, cluster="local:1", partitions=6, pm_factory=PM)
    assert again.sent == 0 and again.plan.accounts == 0  # every partition was finished
    assert len(list(out.iterdir())) == len(files)
