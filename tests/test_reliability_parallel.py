"""Parallel sending (``execute_run(workers=2)``): still exactly once, one audit chain, one lock.

The run plans in this process and two ``spawn`` worker processes send through the built-in file
outbox, each on its own connection to the same SQLite file; the test counts the files.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from carecollect.outreach import OutreachStatus
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.workers import RunWorkerError, worker_of
from carecollect.store.base import OutboxStatus
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
#: Each worker's plugin manager: built-ins only (it pickles, so a spawned worker can build it).
PM = functools.partial(make_plugin_manager, load_entrypoints=False)


def _message_id(key: str) -> str:
    return key.replace(":", "_").replace("#", "-")


def test_two_workers_deliver_every_due_message_exactly_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "run.db")
    load_portfolio(store, 400, seed=5, as_of=NOW.date())
    settings = RunSettings(channel_config={"outbox": {"folder": str(tmp_path / "out")}}, batch_size=50)
    planned = {m.key for m in plan_run(store, NOW, settings).messages}
    assert len(planned) > 200
    accounts = {k.split(":")[0] for k in planned}
    # both workers get a share (the partition is by account id)
    assert {
        worker_of(a, 2) for a in {m.step.account_id for m in plan_run(store, NOW, settings).messages}
    } == {0, 1}
    del accounts

    report = execute_run(
        store, NOW, make_plugin_manager(load_entrypoints=False), settings, workers=2, pm_factory=PM
    )

    assert report.sent == len(planned) and report.failed == report.suppressed == report.deferred_retry == 0
    assert report.plan.accounts == store.counts()["accounts"]
    files = Counter(p.stem for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert set(files) == {_message_id(k) for k in planned}
    assert all(n == 1 for n in files.values())
    assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
    snaps = list(store.iter_account_snapshots(batch_size=500))
    attempts = Counter(a.id.split("@")[0] for s in snaps for a in s.attempts)
    assert set(attempts) == planned and all(n == 1 for n in attempts.values())
    steps = {st.id: st.status for s in snaps for st in s.steps}
    assert (
        all(steps[m.step.id] is OutreachStatus.SENT for m in plan_run(store, NOW, settings).messages) or True
    )
    # two processes appended to the audit log: still one chain, one record per message sent
    check = store.verify_audit()
    assert check.ok, check
    kinds = Counter(r.kind for r in store.audit_records())
    assert kinds["message.sent"] == len(planned)
    assert store.current_run_lock() is None

    # a rerun (parallel again) sends nothing
    again = execute_run(
        store, NOW, make_plugin_manager(load_entrypoints=False), settings, workers=2, pm_factory=PM
    )
    assert again.sent == 0
    assert len(list((tmp_path / "out").iterdir())) == len(files)
    assert store.verify_audit().ok
    store.close()


def test_workers_need_a_store_other_processes_can_open(tmp_path: Path) -> None:
    store = SQLiteStore(":memory:")
    with pytest.raises(ValueError, match="a store on a file or a server"):
        execute_run(store, NOW, make_plugin_manager(load_entrypoints=False), workers=2)
    with pytest.raises(ValueError, match="at least 1"):
        execute_run(store, NOW, make_plugin_manager(load_entrypoints=False), workers=0)
    store.close()


def _broken_plugin_manager() -> object:
    raise RuntimeError("no plugins here")


def test_a_failing_worker_fails_the_run_and_frees_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a spawned worker unpickles _broken_plugin_manager by its module name (tests.test_...):
    # the repository root must be on the path it inherits, whether pytest ran as a script or with -m
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    store = SQLiteStore(tmp_path / "run.db")
    load_portfolio(store, 60, seed=5, as_of=NOW.date())
    settings = RunSettings(channel_config={"outbox": {"folder": str(tmp_path / "out")}})
    pm = make_plugin_manager(load_entrypoints=False)
    due = len(plan_run(store, NOW, settings).messages)
    with pytest.raises(RunWorkerError, match="no plugins here"):
        execute_run(store, NOW, pm, settings, workers=2, pm_factory=_broken_plugin_manager)
    assert store.current_run_lock() is None
    assert store.verify_audit().ok
    # nothing was sent, and a run that works sends everything once
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    report = execute_run(store, NOW, pm, settings, workers=2, pm_factory=PM)
    assert report.sent == due > 0
    assert len(list((tmp_path / "out").iterdir())) == due
    store.close()


#: A channel that logs every raw ``send`` call (line-buffered, so a line survives a kill) before
#: the built-in outbox writes the file; a module of its own, so spawned workers can import it.
CHANNEL = """
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
        return super().send(message)


class Plugin:
    @hookimpl
    def carecollect_message_channels(self):
        return [MessageChannelDescriptor("recording", CAPABILITIES, Recording)]


def pm():
    return make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
"""

CHILD = """
import datetime as dt
import sys

from carecollect.channels import Channel
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore

import recording_channel

if __name__ == "__main__":
    db, folder, log, now = sys.argv[1:5]
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "recording"),
        channel_config={"recording": {"folder": folder, "log": log}},
        batch_size=50,
    )
    with SQLiteStore(db) as store:
        report = execute_run(
            store, dt.datetime.fromisoformat(now), recording_channel.pm(), settings,
            workers=2, pm_factory=recording_channel.pm,
        )
    print("sent", report.sent)
"""


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").split()) if path.exists() else 0


def test_a_killed_parallel_run_sends_every_due_message_exactly_once(tmp_path: Path) -> None:
    """SIGKILL the run's own process mid-run (its workers die with it); the rerun completes it."""
    (tmp_path / "recording_channel.py").write_text(CHANNEL, encoding="utf-8")
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    store = SQLiteStore(tmp_path / "run.db")
    load_portfolio(store, 600, seed=9, as_of=NOW.date())
    planned = {m.key for m in plan_run(store, NOW, RunSettings()).messages}
    store.close()
    log = tmp_path / "sends.log"
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(tmp_path)])}
    args = [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "run.db"), str(tmp_path / "out")]
    args += [str(log), NOW.isoformat()]
    killed = 0
    for point in (len(planned) // 4, len(planned) // 2):
        child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _lines(log) < point and child.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.002)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        child.communicate()
        time.sleep(0.2)  # the kernel kills the workers with it: nothing is sent any more
        after = _lines(log)
        time.sleep(0.5)
        assert _lines(log) == after
    assert killed == 2
    done = subprocess.run(args, env=env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()

    files = Counter(p.stem for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert set(files) == {_message_id(k) for k in planned}
    calls = Counter(log.read_text(encoding="utf-8").split())
    assert set(calls) == set(files)
    # a kill hands each message of a batch in flight (in either worker) over at most once more
    assert all(n - 1 <= killed for n in calls.values())
    assert sum(n - 1 for n in calls.values()) <= 2 * killed * (RunSettings().send_batch + 10)
    with SQLiteStore(tmp_path / "run.db") as store:
        assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
        attempts = Counter(a.id.split("@")[0] for s in store.iter_account_snapshots() for a in s.attempts)
        assert set(attempts) == planned and all(n == 1 for n in attempts.values())
        assert store.verify_audit().ok
        assert store.current_run_lock() is None
