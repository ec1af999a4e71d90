"""Process management: the run lock's heartbeat and the parallel workers.

:class:`RunHeartbeat` keeps the run lock alive on the wall clock; a lock whose holder died on
this host is released. With ``workers`` above one, the accounts are dealt to worker processes by
:func:`worker_of` (one account, one worker, always), and a worker that fails stops the run with
:class:`RunWorkerError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hashlib
import multiprocessing
import os
import queue as queues
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from ..errors import CareCollectError
from ..messages.render import Renderer
from ..plugins.manager import PluginManager, make_plugin_manager
from ..scrubbing import scrub_text
from ..store.base import (
    RunLocked,
    Store,
)
from ..store.urls import open_store, url_of
from .decisions import _Collected
from .hooks import hook_failures
from .inbound import IntakeReport
from .planning import Conversations, _iter_plans
from .report import RunReport, _report
from .sending import _COUNTERS, _Sender
from .settings import RunSettings

__all__ = [
    "RunHeartbeat",
    "RunWorkerError",
    "worker_of",
]


def _wall_clock() -> dt.datetime:
    """The wall clock (UTC), which every process on every host shares: the run lock's time."""
    return dt.datetime.now(dt.UTC)


class RunHeartbeat:
    """Keeps a run's lock alive on the wall clock while the run lives.

    A thread says "alive" every third of ``stale_after`` (timed on the monotonic clock) on its own
    handle on the store (opened from the store's URL: a SQLite file or a PostgreSQL server), so a long send, a slow plugin or a large intake never lets the
    lock go stale; the run also calls :meth:`beat` at every account, which writes when a third of
    ``stale_after`` has passed since the last heartbeat and raises
    :class:`~carecollect.store.base.RunLocked` if the lock was lost (the run stops before its next
    account). A store no second handle can open (SQLite ``:memory:``) gets only the beats at
    account boundaries.

    :param store: the run's store.
    :param owner: the lock's owner.
    :param pid: the lock's pid.
    :param stale_after: the span the holder promised to beat within.
    """

    def __init__(self, store: Store, owner: str, pid: int, stale_after: dt.timedelta) -> None:
        self.store = store
        self.owner = owner
        self.pid = pid
        self.interval = stale_after.total_seconds() / 3
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._lost: RunLocked | None = None
        self._thread: threading.Thread | None = None
        url = url_of(store)
        if url is not None:
            self._thread = threading.Thread(
                target=self._run, args=(url,), name="carecollect-run-heartbeat", daemon=True
            )

    def start(self) -> None:
        """Start the thread (if another handle on the store can be opened)."""
        if self._thread is not None:
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (before the lock is released)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

    def beat(self) -> None:
        """Say "alive" from the run's own connection when a third of ``stale_after`` has passed.

        :raises RunLocked: the lock is no longer this run's.
        """
        if self._lost is not None:
            raise self._lost
        if time.monotonic() - self._last >= self.interval:
            self.store.heartbeat_run_lock(self.owner, self.pid, now=_wall_clock())
            self._last = time.monotonic()

    def _run(self, url: str) -> None:
        try:
            own = open_store(url)
        except (sqlite3.Error, CareCollectError):
            return  # the beats at account boundaries remain
        try:
            while not self._stop.wait(self.interval):
                try:
                    own.heartbeat_run_lock(self.owner, self.pid, now=_wall_clock())
                except RunLocked as exc:
                    self._lost = exc
                    return
                except (sqlite3.Error, CareCollectError):  # busy, or the server away: try again
                    continue
                except Exception as exc:  # a driver's own error (psycopg): try again next time
                    if type(exc).__module__.split(".")[0] != "psycopg":
                        raise
                    continue
                self._last = time.monotonic()
        finally:
            own.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _release_if_holder_died(store: Store, owner: str, pid: int, now: dt.datetime) -> None:
    """Free a lock left by a run on this host whose process is gone (killed, crashed).

    The owner carries the host name (``<owner>@<host>``), so a pid is only ever checked on the host
    it belongs to; a reused pid keeps the lock until it is stale (the safe side).
    """
    held = store.current_run_lock()
    host = owner.rpartition("@")[2]
    if held is None or held.owner.rpartition("@")[2] != host or held.pid == pid or _pid_alive(held.pid):
        return
    store.release_run_lock(held.owner, held.pid)
    store.audit_append("run.lock_taken_over", "run", {"dead_pid": held.pid, "pid": pid}, at=now)


class RunWorkerError(CareCollectError):
    """A worker process of a parallel run failed or died; what it finished stays done."""


def worker_of(account_id: str, workers: int) -> int:
    """The worker (``0 .. workers - 1``) that sends for ``account_id``: a stable hash, the same in
    every process and every run (not Python's salted :func:`hash`).

    >>> worker_of("acc-1", 2) == worker_of("acc-1", 2)
    True
    """
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % workers


#: Accounts handed to a worker in one piece, and pieces a worker's queue holds (memory stays flat).
_CHUNK = 32


_QUEUED = 8


def _execute_parallel(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    renderer: Renderer | None,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Conversations,
    workers: int,
    pm_factory: Callable[[], PluginManager] | None,
    heart: RunHeartbeat,
) -> tuple[RunReport, tuple[str, ...]]:
    url = url_of(store)
    assert url is not None
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    inboxes: list[Any] = [ctx.Queue(maxsize=_QUEUED) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, url, settings, renderer, pm_factory, now, owner, pid, inboxes[i], results),
            name=f"carecollect-run-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    counts = dict.fromkeys(_COUNTERS, 0)
    failures: list[str] = []
    errors: list[str] = []
    finished = [False] * workers
    done = 0

    def take(block: bool) -> None:
        nonlocal done
        while True:
            try:
                what, index, body = results.get(timeout=0.5) if block else results.get_nowait()
            except queues.Empty:
                return
            if what == "progress":
                done += body
                heart.beat()
                if progress is not None:
                    progress(done)
            elif what == "error":
                errors.append(f"worker {index}: {body}")
                finished[index] = True
            else:  # "report"
                worker_counts, worker_failures = body
                for k, v in worker_counts.items():
                    counts[k] += v
                failures.extend(worker_failures)
                finished[index] = True
            block = False

    def hand(index: int, item: Any) -> None:
        while True:
            try:
                inboxes[index].put(item, timeout=0.5)
                return
            except queues.Full:
                take(False)
                if finished[index] or not procs[index].is_alive():
                    raise RunWorkerError(_worker_failure(index, procs[index], errors)) from None

    try:
        collected = _Collected(settings.keep_plan)
        pieces: list[list[Any]] = [[] for _ in range(workers)]
        for planned in _iter_plans(store, now, settings, conversations):
            collected.add(planned)
            i = worker_of(planned.account_id, workers)
            pieces[i].append(
                (
                    planned.account_id,
                    planned.creditor_id,
                    planned.plan,
                    conversations.get(planned.account_id, ()),
                )
            )
            if len(pieces[i]) >= _CHUNK:
                hand(i, pieces[i])
                pieces[i] = []
                take(False)
        for i, piece in enumerate(pieces):
            if piece:
                hand(i, piece)
            hand(i, None)  # nothing more: report and stop
        while not all(finished):
            take(True)
            for i, proc in enumerate(procs):
                if not finished[i] and not proc.is_alive():
                    take(False)  # it may have reported just before it ended
                    if not finished[i]:
                        raise RunWorkerError(_worker_failure(i, proc, errors))
        if errors:
            raise RunWorkerError("; ".join(errors))
    finally:
        for proc in procs:
            if not all(finished):  # this process failed: stop the workers as a kill would (the
                proc.terminate()  # outbox keeps it exactly once; the rerun carries on)
            proc.join()
    return _report(collected.plan(now), counts, intake_report), tuple(failures)


def _worker_failure(index: int, proc: BaseProcess, errors: Sequence[str]) -> str:
    return "; ".join(errors) or f"worker {index} ended with exit code {proc.exitcode} before it reported"


def _die_with(parent: int) -> None:
    """Let the kernel kill this worker when the run's process dies (Linux), as if it were one process.

    A run killed (SIGKILL) then stops sending at once, in all its processes, and its rerun finds
    the outbox as a one-process run would leave it. Elsewhere a worker stops before its next
    account when its parent is gone or the lock is no longer its run's (see :func:`_worker`).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the checks in _worker remain
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        os._exit(0)


def _worker(
    index: int,
    url: str,
    settings: RunSettings,
    renderer: Renderer | None,
    pm_factory: Callable[[], PluginManager] | None,
    now: dt.datetime,
    owner: str,
    parent: int,
    inbox: Any,
    results: Any,
) -> None:
    """A worker process of a parallel run: the per-account send loop on its own connection."""
    _die_with(parent)
    try:
        with contextlib.closing(open_store(url)) as store:
            pm = (pm_factory or make_plugin_manager)()
            sender = _Sender(store, pm, settings, renderer or Renderer(), now)
            while True:
                try:
                    piece = inbox.get(timeout=1.0)
                except queues.Empty:
                    if os.getppid() != parent:  # the run died (killed): stop, its rerun carries on
                        return
                    continue
                if piece is None:
                    break
                for account_id, creditor_id, plan, talks in piece:
                    # the run must still hold the lock: a worker orphaned by a killed run stops
                    # before its next account, which the rerun (it took the lock over) carries on
                    held = store.current_run_lock()
                    if os.getppid() != parent or held is None or (held.owner, held.pid) != (owner, parent):
                        return
                    sender.account(account_id, creditor_id, plan, talks)
                results.put(("progress", index, len(piece)))
            results.put(("report", index, (sender.counts, hook_failures(pm))))
    except BaseException as exc:  # reported to the run, which raises RunWorkerError
        results.put(("error", index, scrub_text(f"{type(exc).__name__}: {exc}")[:500]))
        raise
