"""One run at a time, between real processes whose runs are dated differently.

The lock's heartbeat is on the wall clock and kept alive by a thread, so a live
run never loses it, whatever instant (``--as-of``) the next run is given and
however long one send takes; a run whose process is gone loses it at once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carecollect.portfolio import load_portfolio
from carecollect.run.settings_file import write_default_config
from carecollect.store.base import RunLock, RunLocked
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
SRC = Path(__file__).resolve().parents[1] / "src"

#: The first run: a channel that takes ``pause`` seconds per message, lock promise ``stale`` seconds.
SLOW_RUN = textwrap.dedent(
    """
    import datetime as dt
    import sys
    import time

    from carecollect.plugins.builtin.outbox import CAPABILITIES, OutboxChannel
    from carecollect.channels import Channel
    from carecollect.run.execute import execute_run
    from carecollect.run.settings import RunSettings
    from carecollect.plugins.hookspecs import hookimpl
    from carecollect.plugins.messaging import MessageChannelDescriptor
    from carecollect.plugins.manager import make_plugin_manager
    from carecollect.store.sqlite import SQLiteStore

    db, folder, log, now, pause, stale = sys.argv[1:7]


    class Slow(OutboxChannel):
        def __init__(self, settings):
            super().__init__(settings)
            self._log = open(settings["log"], "a", buffering=1, encoding="utf-8")

        def send(self, message):
            self._log.write(message.id + "\\n")
            time.sleep(float(pause))
            return super().send(message)


    class Plugin:
        @hookimpl
        def carecollect_message_channels(self):
            return [MessageChannelDescriptor("slow", CAPABILITIES, Slow)]


    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "slow"),
        channel_config={"slow": {"folder": folder, "log": log}},
    )
    with SQLiteStore(db) as store:
        execute_run(
            store, dt.datetime.fromisoformat(now), pm, settings,
            stale_after=dt.timedelta(seconds=float(stale)),
        )
    """
)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _cli_run(db: Path, as_of: dt.datetime) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carecollect.cli", "run", "--db", str(db), "--as-of", as_of.isoformat()],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "run.sqlite"
    with SQLiteStore(path) as store:
        load_portfolio(store, 60, seed=3, as_of=NOW.date())
    write_default_config(path)
    return path


def test_a_run_dated_a_day_later_never_takes_the_lock_from_a_live_run(db: Path, tmp_path: Path) -> None:
    """Two real processes: the first sends slowly (each send outlasts its lock's ``stale_after``).

    The second, dated a day later, is refused with a clear message however long it waits, and the
    first keeps its lock; once the first is killed (SIGKILL), the second takes the lock at once.
    """
    (tmp_path / "slow.py").write_text(SLOW_RUN, encoding="utf-8")
    log = tmp_path / "sends.log"
    first = subprocess.Popen(
        # 1.5 s per send, a lock that is stale after 1 s of silence
        [
            sys.executable,
            *map(str, (tmp_path / "slow.py", db, tmp_path / "out", log)),
            NOW.isoformat(),
            "1.5",
            "1",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while _lines(log) < 1:
            assert first.poll() is None, first.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for _ in range(2):  # spaced further apart than the first run's stale_after
            second = _cli_run(db, NOW + dt.timedelta(days=1))
            assert second.returncode == 1, second.stdout + second.stderr
            out = second.stdout + second.stderr
            assert "another run is in progress" in out and f"pid {first.pid}" in out
            assert "Traceback" not in out
            assert first.poll() is None  # the first run lives on
            with SQLiteStore(db) as store:
                held = store.current_run_lock()
            assert held is not None and held.pid == first.pid
            time.sleep(1.5)
        # its heartbeat advances on the wall clock, between sends as well as at them
        with SQLiteStore(db) as store:
            before = store.current_run_lock()
            time.sleep(1.0)
            after = store.current_run_lock()
        assert before is not None and after is not None
        assert after.heartbeat_at > before.heartbeat_at
        assert abs(after.heartbeat_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    started = time.monotonic()
    second = _cli_run(db, NOW + dt.timedelta(days=1))
    assert second.returncode == 0, second.stdout + second.stderr
    assert time.monotonic() - started < 60  # promptly: no waiting for staleness
    with SQLiteStore(db) as store:
        assert store.current_run_lock() is None
        taken = [r.data for r in store.audit_records(subject_id="run", kinds={"run.lock_taken_over"})]
        assert [t["dead_pid"] for t in taken] == [first.pid]
        assert store.verify_audit().ok


def test_staleness_is_judged_on_the_holders_own_promise_and_the_wall_clock(tmp_path: Path) -> None:
    wall = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
    with SQLiteStore(tmp_path / "a.db") as a, SQLiteStore(tmp_path / "a.db") as b:
        lock = a.acquire_run_lock("cron@h1", 101, now=wall, stale_after=dt.timedelta(seconds=30))
        assert lock == RunLock("cron@h1", 101, wall, wall, dt.timedelta(seconds=30))
        # another holder promising a much shorter span does not shorten this holder's
        with pytest.raises(RunLocked) as info:
            b.acquire_run_lock(
                "manual@h2", 202, now=wall + dt.timedelta(seconds=29), stale_after=dt.timedelta(seconds=1)
            )
        assert "30 s" in str(info.value)
        a.heartbeat_run_lock("cron@h1", 101, now=wall + dt.timedelta(seconds=20))
        with pytest.raises(RunLocked):
            b.acquire_run_lock("manual@h2", 202, now=wall + dt.timedelta(seconds=49))
        taken = b.acquire_run_lock("manual@h2", 202, now=wall + dt.timedelta(seconds=50))
        assert taken.owner == "manual@h2"
        with pytest.raises(RunLocked):
            a.heartbeat_run_lock("cron@h1", 101, now=wall + dt.timedelta(seconds=51))


def test_a_frozen_run_loses_its_lock_after_its_promise_and_stops_when_it_wakes(
    db: Path, tmp_path: Path
) -> None:
    """SIGSTOP freezes the first run (its heartbeat thread too): after its ``stale_after`` of
    silence the second takes the lock; the first, woken, finds the lock gone and stops."""
    (tmp_path / "slow.py").write_text(SLOW_RUN, encoding="utf-8")
    log = tmp_path / "sends.log"
    first = subprocess.Popen(
        [
            sys.executable,
            *map(str, (tmp_path / "slow.py", db, tmp_path / "out", log)),
            NOW.isoformat(),
            "0.5",
            "1",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while _lines(log) < 1:
            assert first.poll() is None, first.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # longer than the 1 s it promised
        second = _cli_run(db, NOW)
        assert second.returncode == 0, second.stdout + second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode != 0 and b"RunLocked" in err
    with SQLiteStore(db) as store:
        assert store.current_run_lock() is None
        assert store.verify_audit().ok
