"""Process management: the run lock's heartbeat and the parallel workers.

:class:`RunHeartbeat` keeps the run lock alive on the wall clock; a lock whose holder died on
this host is released. With ``workers`` above one, the accounts are dealt to worker processes by
:func:`worker_of` (one account, one worker, always), and a worker that fails stops the run with
:class:`~carecollect.errors.RunWorkerError`. ``carecollect run`` starts as many as
:func:`auto_workers` says for the store's portfolio and this machine unless given ``--workers``.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from ..errors import CareCollectError, RunWorkerError, ValidationError
from ..messages.render import Renderer
from ..plugins.manager import PluginManager, make_plugin_manager
from ..scrubbing import scrub_text
from ..store.base import (
    AccountSnapshot,
    AuditRecord,
    PartitionLease,
    PlanFacts,
    RunLocked,
    Store,
    partition_chain,
)
from ..store.codec import partition_key
from ..store.urls import open_store, url_of
from .decisions import _Collected
from .hooks import hook_failures
from .planning import Conversations, _iter_plans
from .sending import _COUNTERS, _Sender
from .settings import RunSettings

__all__ = [
    "AUTO_MIN_ACCOUNTS",
    "AUTO_PARTITIONS",
    "PARTITIONS_PER_WORKER",
    "PartitionView",
    "RunHeartbeat",
    "auto_workers",
    "partition_of",
    "run_key_of",
    "run_partition",
    "usable_cores",
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

    def stop(self, *, wait: bool = True) -> None:
        """Stop the thread and wait for it (before the lock is released).

        :param wait: ``False`` when the store's server went away: the thread may be waiting for a
            connection; it ends by itself (a daemon thread, it never holds up the process's exit).
        """
        self._stop.set()
        if wait and self._thread is not None and self._thread.is_alive():
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


def worker_of(account_id: str, workers: int) -> int:
    """The worker (``0 .. workers - 1``) that sends for ``account_id``: a stable hash, the same in
    every process and every run (not Python's salted :func:`hash`).

    >>> worker_of("acc-1", 2) == worker_of("acc-1", 2)
    True
    """
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % workers


def partition_of(patient_id: str, partitions: int) -> int:
    """The partition (``0 .. partitions - 1``) of a patient: the patient's
    :func:`~carecollect.store.codec.partition_key` modulo ``partitions``, the same in every
    process, host and run. Every account of one patient falls in one partition, so an opt-out
    and everything else about one person is decided and sent by one worker.

    >>> partition_of("pat-1", 8) == partition_of("pat-1", 8)
    True
    """
    return partition_key(patient_id) % partitions


#: The planner-fed senders' piece and queue sizes, from before partitions; only the deprecated
#: ``carecollect.daily_run`` alias still names them.
_CHUNK = 32
_QUEUED = 8

#: Partitions of a parallel run per worker: a worker that finishes early takes the next one.
PARTITIONS_PER_WORKER = 4


#: Below this many accounts ``carecollect run --workers auto`` (its default) runs in one process:
#: starting a worker (a new interpreter that imports the package, opens the store and builds its
#: renderer) costs about as much CPU as sending for a few hundred accounts.
AUTO_MIN_ACCOUNTS = 2_000

#: Partitions of a run whose workers ``--workers auto`` chose: a fixed number, not one per core, so
#: a run started again for the same instant on a machine with other cores lays them out the same
#: way (a run's partitions cannot change once laid out). It also bounds the workers ``auto`` starts.
AUTO_PARTITIONS = 16


def usable_cores() -> int:
    """The processors this process may run on (its affinity where the system says it), at least 1."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13
    if counter is not None:
        return max(int(counter() or 1), 1)
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def auto_workers(accounts: int, cores: int | None = None) -> int:
    """The worker processes ``carecollect run --workers auto`` starts: one per usable core (at
    most :data:`AUTO_PARTITIONS`) for a portfolio of at least :data:`AUTO_MIN_ACCOUNTS` accounts;
    1 (the run stays in its own process, unpartitioned) for a smaller one or a single core.

    :param accounts: the store's accounts.
    :param cores: the processors to use (default: :func:`usable_cores`).

    >>> auto_workers(500, cores=8)
    1
    >>> auto_workers(50_000, cores=2)
    2
    >>> auto_workers(50_000, cores=64)
    16
    """
    if accounts < AUTO_MIN_ACCOUNTS:
        return 1
    return max(1, min(usable_cores() if cores is None else cores, AUTO_PARTITIONS))


def run_key_of(now: dt.datetime) -> str:
    """The run's key for its partition leases: its as-of instant in UTC (a rerun for the same
    instant finds the partitions already finished and skips them)."""
    return now.astimezone(dt.UTC).isoformat()


class PartitionView:
    """The store as one partition's worker sees it: the plan reads filtered to the partition's
    patients, and every unit of work fenced by the partition's lease.

    The plan reads are filtered by the store in SQL (on the partition key it keeps beside each
    account, :func:`~carecollect.store.codec.partition_key`): each partition reads only its own
    accounts' facts, so ``n`` partitions together read the plan-fact stream once. Each unit of work first checks the lease's fencing
    number inside the unit (:meth:`check_partition_fence`), so a worker whose lease was taken
    over writes nothing (:class:`~carecollect.errors.PartitionLeaseLost`). Everything else goes
    to the store as it is.

    :param store: the worker's own store handle.
    :param lease: the partition's lease.
    :param partitions: how many partitions the run has.
    """

    def __init__(self, store: Store, lease: PartitionLease, partitions: int) -> None:
        self._store = store
        self.lease = lease
        self.partitions = partitions
        self._depth = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _mine(self, patient_id: str) -> bool:
        return partition_of(patient_id, self.partitions) == self.lease.partition

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The store's unit of work, refused before it commits anything if the lease was lost."""
        with self._store.transaction():
            if self._depth == 0:
                self._store.check_partition_fence(self.lease)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    @property
    def chain(self) -> str:
        """The partition's audit chain (:func:`~carecollect.store.base.partition_chain`): its
        audit records go there, so the workers of a run do not queue for one chain's head."""
        return partition_chain(self.lease.partition, self.partitions)

    def audit_append(
        self,
        kind: str,
        subject_id: str,
        data: Mapping[str, Any],
        *,
        at: dt.datetime,
        chain: str | None = None,
    ) -> AuditRecord:
        """Append to the partition's audit chain (or to ``chain``, if given)."""
        return self._store.audit_append(
            kind, subject_id, data, at=at, chain=self.chain if chain is None else chain
        )

    def audit_append_many(
        self,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        at: dt.datetime,
        chain: str | None = None,
    ) -> list[AuditRecord]:
        """Append many records to the partition's audit chain (or to ``chain``, if given)."""
        return self._store.audit_append_many(records, at=at, chain=self.chain if chain is None else chain)

    def iter_plan_facts(
        self, *, now: dt.datetime, batch_size: int = 2000, partition: tuple[int, int] | None = None
    ) -> Iterator[PlanFacts]:
        """The store's plan facts of this partition's accounts, filtered by the store in SQL.

        :param partition: must be ``None`` or this view's own partition (a view reads its own).
        """
        mine = (self.lease.partition, self.partitions)
        if partition is not None and tuple(partition) != mine:
            raise ValidationError("PartitionView", "partition", f"this view reads {mine}, not {partition}")
        return self._store.iter_plan_facts(now=now, batch_size=batch_size, partition=mine)

    def iter_account_snapshots(self, *, batch_size: int = 1000) -> Iterator[AccountSnapshot]:
        """The store's account snapshots of this partition's patients."""
        for snap in self._store.iter_account_snapshots(batch_size=batch_size):
            if self._mine(snap.account.patient_id):
                yield snap


def run_partition(
    store: Store,
    lease: PartitionLease,
    partitions: int,
    now: dt.datetime,
    settings: RunSettings,
    pm: PluginManager,
    renderer: Renderer,
    conversations: Conversations,
    stale_after: dt.timedelta,
    progress: Callable[[int], None] | None = None,
) -> tuple[_Collected, dict[str, int]]:
    """Plan and send one partition end to end under its lease, then mark it finished.

    The lease is beaten at account boundaries (a third of ``stale_after`` apart) and checked in
    every unit of work; a lost lease stops the partition with
    :class:`~carecollect.errors.PartitionLeaseLost` and nothing of the unit in flight written.

    :returns: what was planned (counts) and the send counters.
    """
    view: Any = PartitionView(store, lease, partitions)
    sender = _Sender(view, pm, settings, renderer, now)
    collected = _Collected(False)
    last = time.monotonic()
    interval = stale_after.total_seconds() / 3
    for planned in _iter_plans(view, now, settings, conversations):
        collected.add(planned)
        assert planned.plan is not None
        sender.account(
            planned.account_id,
            planned.creditor_id,
            planned.plan,
            conversations.get(planned.account_id, ()),
            planned.read,
        )
        if time.monotonic() - last >= interval:
            store.heartbeat_partition(lease, now=_wall_clock())
            last = time.monotonic()
        if progress is not None:
            progress(1)
    sender.finish()  # the last batch's records, under the lease, before the partition is done
    store.finish_partition(lease, now=_wall_clock())
    return collected, sender.counts


def _execute_parallel(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    renderer: Renderer | None,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Conversations,
    workers: int,
    pm_factory: Callable[[], PluginManager] | None,
    beat: Callable[[], None],
    stale_after: dt.timedelta = dt.timedelta(minutes=10),
    partitions: int | None = None,
    lead: tuple[str, int] | None = None,
    taker: str | None = None,
) -> tuple[_Collected, dict[str, int], tuple[str, ...], tuple[int, ...]]:
    """Start ``workers`` processes that take partitions of the run until none is free.

    :returns: what they planned, their send counters, their hook failures, and the partitions
        they did.

    :param beat: called as results come in (the leader's :meth:`RunHeartbeat.beat`).
    :param lead: the run lock's holder the workers work for (default ``(owner, pid)``: this process
        leads the run; a process that joined another's run passes the leader's).
    :param taker: the prefix of the workers' leases (default ``owner:pid``; see
        :func:`~carecollect.run.joining.taker_of`).
    """
    url = url_of(store)
    assert url is not None
    partitions = partitions or workers * PARTITIONS_PER_WORKER
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    lead = lead or (owner, pid)
    job = (
        url,
        settings,
        renderer,
        pm_factory,
        now,
        lead,
        taker or f"{owner}:{pid}",
        os.getpid(),
        dict(conversations),
        partitions,
        stale_after,
    )
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, job, results),
            name=f"carecollect-run-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    counts = dict.fromkeys(_COUNTERS, 0)
    collected = _Collected(settings.keep_plan)
    failures: list[str] = []
    errors: list[str] = []
    done_here: list[int] = []
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
                beat()
                if progress is not None:
                    progress(done)
            elif what == "error":
                errors.append(f"worker {index}: {body}")
                finished[index] = True
            else:  # "report"
                worker_counts, worker_failures, worker_collected, worker_done = body
                for k, v in worker_counts.items():
                    counts[k] += v
                failures.extend(worker_failures)
                done_here.extend(worker_done)
                collected.merge(worker_collected)
                finished[index] = True
            block = False

    try:
        while not all(finished):
            take(True)
            beat()
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
    return collected, counts, tuple(failures), tuple(sorted(done_here))


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


#: Seconds between a worker's progress reports (the run's heartbeat beats on them, and on its own
#: half-second wait when none comes).
PROGRESS_EVERY = 0.25


class _Progress:
    """A worker's accounts done, put on the run's queue at most every :data:`PROGRESS_EVERY`
    seconds (and at each partition's end), not once per account (each put pickles a message and
    wakes the queue's feeder thread)."""

    def __init__(self, results: Any, index: int) -> None:
        self._results = results
        self._index = index
        self._done = 0
        self._last = time.monotonic()

    def add(self, n: int) -> None:
        self._done += n
        if time.monotonic() - self._last >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._done:
            self._results.put(("progress", self._index, self._done))
            self._done = 0
        self._last = time.monotonic()


def _worker(index: int, job: tuple[Any, ...], results: Any) -> None:
    """A worker process of a parallel run: takes partitions until none is left, each end to end.

    It stops taking partitions when its parent is gone (nobody to report to) or the run lock is no
    longer held by the run it works for (``lead``; it reports what it did).
    """
    url, settings, renderer, pm_factory, now, lead, taker, parent, talks, partitions, stale_after = job
    _die_with(parent)
    try:
        with contextlib.closing(open_store(url)) as store:
            pm = (pm_factory or make_plugin_manager)()
            renderer = renderer or Renderer()
            counts = dict.fromkeys(_COUNTERS, 0)
            collected = _Collected(False)
            done: list[int] = []
            run_owner = f"{lead[0]}:{lead[1]}"
            me = f"{taker}/worker-{index}:{os.getpid()}"
            reports = _Progress(results, index)
            while True:
                if os.getppid() != parent:  # a worker orphaned by a killed run stops
                    return
                # the run must still hold the lock (else it ended, or its leader died)
                held = store.current_run_lock()
                if held is None or (held.owner, held.pid) != tuple(lead):
                    break
                lease = store.take_partition(
                    run_key_of(now),
                    partitions,
                    me,
                    now=_wall_clock(),
                    stale_after=stale_after,
                    run_owner=run_owner,
                )
                if lease is None:
                    break
                part, part_counts = run_partition(
                    store,
                    lease,
                    partitions,
                    now,
                    settings,
                    pm,
                    renderer,
                    talks,
                    stale_after,
                    progress=reports.add,
                )
                reports.flush()
                collected.merge(part)
                for k, v in part_counts.items():
                    counts[k] = counts.get(k, 0) + v
                done.append(lease.partition)
            results.put(("report", index, (counts, hook_failures(pm), collected, done)))
    except BaseException as exc:  # reported to the run, which raises RunWorkerError
        results.put(("error", index, scrub_text(f"{type(exc).__name__}: {exc}")[:500]))
        raise
