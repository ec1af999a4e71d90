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
from carecollect.run.sending import message_id
from carecollect.run.settings import RunSettings
from carecollect.run.workers import run_key_of
from carecollect.store.base import OutboxStatus, Store
from carecollect.store.sqlite import SQLiteStore
from carecollect.store.urls import open_store, url_of

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


#: A channel that logs every raw hand-over (line-buffered, so a line survives a kill) and is slow
#: enough to be killed mid-partition; a module of its own, so Dask's worker processes import it.
CHANNEL = """
import time

from carecollect.plugins.builtin.outbox import CAPABILITIES, OutboxChannel
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.messaging import MessageChannelDescriptor
from carecollect.plugins.manager import make_plugin_manager


class Recording(OutboxChannel):
    def __init__(self, settings):
        super().__init__(settings)
        self._log = open(settings["log"], "a", buffering=1, encoding="utf-8")

    def send(self, message):
        self._log.write(message.id + "\\n")
        time.sleep(0.02)
        return super().send(message)


class Plugin:
    @hookimpl
    def carecollect_message_channels(self):
        return [MessageChannelDescriptor("recording", CAPABILITIES, Recording)]


def pm():
    return make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
"""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def test_a_dask_worker_killed_mid_partition_is_retried_and_nothing_is_sent_twice(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import sys
    import threading
    import time

    import distributed

    import carecollect.run.cluster as cluster_module
    from carecollect.channels import Channel

    (tmp_path / "recording_dask.py").write_text(CHANNEL, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    monkeypatch.setattr(cluster_module, "PARTITION_STALE_AFTER", dt.timedelta(seconds=3))
    import recording_dask  # type: ignore[import-not-found]

    load_portfolio(store, 300, seed=5, as_of=NOW.date())
    out, log = tmp_path / "out", tmp_path / "handed-over.log"
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "recording"),
        channel_config={"recording": {"folder": str(out), "log": str(log)}},
    )
    planned = {m.key for m in plan_run(store, NOW, settings).messages}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        outcome: dict[str, object] = {}

        def run() -> None:
            url = url_of(store)
            assert url is not None
            try:
                with open_store(url) as own:  # the run's own handle, in its own thread
                    outcome["report"] = execute_run(
                        own,
                        NOW,
                        recording_dask.pm(),
                        settings,
                        cluster=cluster.scheduler_address,
                        partitions=6,
                        pm_factory=recording_dask.pm,
                    )
            except BaseException as exc:  # pragma: no cover - shown by the assertion below
                outcome["error"] = exc

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 60
        while len(_lines(log)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)  # mid-partition: it was handing messages over
        runner.join(timeout=240)
        assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    files = Counter(p.stem for p in out.iterdir() if not p.name.startswith("."))
    assert len(files) == len(planned) and all(n == 1 for n in files.values())
    assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
    handed = Counter(_lines(log))
    # at-least-once keyed by message id: a message of the batch in flight when the worker died
    # may have been handed over once more (the outbox file of that id is written once); no
    # message more than once plus once for the one kill
    assert len(handed) == len(planned) and max(handed.values()) <= 2
    assert store.verify_audit().ok
    assert Counter(r.kind for r in store.audit_records())["message.sent"] == len(planned)


CLIENT = """
import datetime as dt
import sys

from carecollect.channels import Channel
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store.urls import open_store

import recording_dask

if __name__ == "__main__":
    url, folder, log, now = sys.argv[1:5]
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "recording"),
        channel_config={"recording": {"folder": folder, "log": log}},
    )
    with open_store(url) as store:
        report = execute_run(
            store, dt.datetime.fromisoformat(now), recording_dask.pm(), settings,
            cluster="local:2", partitions=8, pm_factory=recording_dask.pm,
        )
    print("sent", report.sent)
"""


def test_the_client_killed_mid_run_and_run_again_redoes_no_finished_partition(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "recording_dask.py").write_text(CHANNEL, encoding="utf-8")
    (tmp_path / "client.py").write_text(CLIENT, encoding="utf-8")
    load_portfolio(store, 300, seed=5, as_of=NOW.date())
    out, log = tmp_path / "out", tmp_path / "handed-over.log"
    url = url_of(store)
    assert url is not None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    args = [sys.executable, str(tmp_path / "client.py"), url, str(out), str(log), NOW.isoformat()]
    key = run_key_of(NOW)
    child = subprocess.Popen(args, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not store.finished_partitions(key) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child.poll() is None, "the run ended before a partition finished"
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the client, its LocalCluster and its workers
        child.wait()
    done_first = store.finished_partitions(key)
    assert 0 < len(done_first) < 8
    handed_first = Counter(_lines(log))
    # what the first run recorded done (the rest may be handed over again)
    recorded = {message_id(k) for k in _outbox_keys(store) if store.outbox_get(k).status is OutboxStatus.DONE}
    # the rerun takes over the dead run's lock and leases at once (same host, process gone)
    rerun = subprocess.run(args, env=env, capture_output=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert store.finished_partitions(key) == set(range(8))
    files = Counter(p.stem for p in out.iterdir() if not p.name.startswith("."))
    assert all(n == 1 for n in files.values())
    handed = Counter(_lines(log))
    assert set(files) == set(handed)  # every message handed over has its one file
    # nothing the first run had recorded done was handed over again (only the batches in flight
    # in the killed workers, each of their messages once more)
    again = {m for m in handed_first if handed[m] > handed_first[m]}
    assert not again & recorded
    assert all(handed[m] <= handed_first[m] + 1 for m in handed_first)
    assert store.verify_audit().ok


def _outbox_keys(store: Store) -> list[str]:
    """The key of every message intent in the store's outbox, read from its table."""
    import contextlib
    import sqlite3

    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db:
            return [r[0] for r in db.execute("SELECT key FROM outbox WHERE kind = 'message'")]
    with store._pool.connection() as conn:  # type: ignore[attr-defined]
        return [r[0] for r in conn.execute("SELECT key FROM outbox WHERE kind = 'message'")]
