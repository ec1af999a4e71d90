"""One partitioned run shared by several processes: the first to start leads it, the others join.

A run with partitions (``--partitions``, ``--workers`` above one, or ``--cluster``) may be started
by several ``carecollect run`` processes at once, on one host or several, against one store, for
the same as-of instant (the run's key, :func:`~carecollect.run.workers.run_key_of`):

* The first to take the run lock **leads** the run. In the unit of work that takes the lock it
  records ``run.started`` in the audit log (the run key, the number of partitions, the lock's
  holder; a run without partitions records none and cannot be joined). It redelivers the hook
  events earlier runs owe plugins and takes in the events, once, then records
  ``run.intake_done``; it works partitions like everyone else; then it waits until
  every partition of the run is finished, by whichever process, taking over and doing itself any
  partition whose holder stopped beating (:func:`work_partitions` with ``until_all_finished``);
  only then does it close the print batches and record ``run.finished``. It holds the run lock
  from start to end, as a run always did: a run for another instant, or a run without partitions,
  is still refused with :class:`~carecollect.errors.RunLocked`.
* A process that finds the lock held by a partitioned run of the same key **joins** it
  (:func:`lead_or_join`): it waits while the leader takes in, then leases free partitions of the
  run (each lease fenced, as the leader's own workers' are) and plans and sends each end to end
  until none is free. It takes nothing in, closes no batch and records no ``run.finished``. Its
  leases are taken for the leader's run (their owner starts with the leader's ``owner:pid/``), so
  the leader takes them over only once they are stale; should the leader die, the run that takes
  the lock next takes them over at once and the joiner's next unit of work is refused
  (:class:`~carecollect.errors.PartitionLeaseLost`): nothing is sent twice.

Exactly once stays the store's work: a partition is leased by one holder at a time and every unit
of work checks the lease's fencing number; outbox keys are deterministic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterable

import attrs

from ..errors import RunLocked
from ..messages.render import Renderer
from ..plugins.manager import PluginManager
from ..store import codec
from ..store.base import InboxItem, RunLock, Store
from .decisions import _Collected
from .inbound import InboundEvent
from .planning import Conversations
from .sending import _COUNTERS
from .settings import RunSettings
from .workers import _release_if_holder_died, _wall_clock, run_key_of, run_partition

__all__ = [
    "INTAKE_DONE",
    "JOIN_POLL",
    "RUN_STARTED",
    "RunLead",
    "intake_done",
    "keep_for_next_run",
    "lead_or_join",
    "taker_of",
    "work_partitions",
]

#: The audit record (subject ``run``) a run writes with its lock: run key, partitions, holder.
RUN_STARTED = "run.started"
#: The audit record (subject ``run``) a run writes once its intake is committed: others may join.
INTAKE_DONE = "run.intake_done"
#: Seconds between two looks of a joiner waiting for the leader's intake, or of a leader waiting
#: for the last partitions of other processes.
JOIN_POLL = 0.25


@attrs.frozen
class RunLead:
    """The partitioned run a process joins, as its leader recorded it (``run.started``).

    :param owner: the run lock's holder.
    :param pid: its process id.
    :param run_key: the run's key (its as-of instant).
    :param partitions: the run's partitions.
    :param taken_in: the leader's intake is committed (``run.intake_done``): joiners may work.
    """

    owner: str
    pid: int
    run_key: str
    partitions: int | None
    taken_in: bool

    @property
    def run_owner(self) -> str:
        """What every lease taken for this run starts with (followed by ``/``)."""
        return f"{self.owner}:{self.pid}"


def _holder(lock: RunLock | RunLocked) -> dict[str, object]:
    return {"owner": lock.owner, "pid": lock.pid, "locked_at": codec.iso_instant(lock.started_at)}


def lead_or_join(
    store: Store,
    owner: str,
    pid: int,
    now: dt.datetime,
    *,
    stale_after: dt.timedelta,
    partitions: int | None,
    run_id: str,
    poll: float = JOIN_POLL,
) -> RunLock | RunLead:
    """Take the run lock and, for a partitioned run, record ``run.started`` in the same unit of
    work (this process leads the run), or find the partitioned run of the same key to join.

    A lock left by a process of this host that is gone is released first (see
    :func:`~carecollect.run.workers._release_if_holder_died`). While the leader of the same run is
    still taking in, this waits (``poll`` seconds between looks); if the leader ends meanwhile,
    this process tries to lead.

    :param partitions: this process's partitions (``None``: it runs without partitions and
        joins nothing).
    :returns: the lock this process now holds (it leads), or the run to join.
    :raises RunLocked: the lock is held by a run this process cannot join: another instant, a run
        without partitions, or this process runs without partitions.
    """
    key = run_key_of(now)
    while True:
        _release_if_holder_died(store, owner, pid, now)
        try:
            with store.transaction():
                lock = store.acquire_run_lock(owner, pid, now=_wall_clock(), stale_after=stale_after)
                if partitions is not None:  # a run without partitions cannot be joined: no record
                    store.audit_append(
                        RUN_STARTED,
                        "run",
                        {"run_id": run_id, "run_key": key, "partitions": partitions, **_holder(lock)},
                        at=now,
                    )
            return lock
        except RunLocked as locked:
            if partitions is None:
                raise
            lead = _lead_of(store, locked)
            if lead is None or lead.run_key != key or lead.partitions is None:
                raise
            if lead.taken_in:
                return lead
        time.sleep(poll)


def _lead_of(store: Store, locked: RunLocked) -> RunLead | None:
    """The run the lock's holder recorded when it took the lock (``None``: it recorded none, being
    a run without partitions)."""
    holder = _holder(locked)
    lead: RunLead | None = None
    for rec in store.audit_records(subject_id="run", kinds=(RUN_STARTED, INTAKE_DONE)):
        if any(rec.data.get(k) != v for k, v in holder.items()):
            continue
        if rec.kind == RUN_STARTED:
            parts = rec.data.get("partitions")
            lead = RunLead(
                locked.owner,
                locked.pid,
                str(rec.data["run_key"]),
                None if parts is None else int(str(parts)),
                False,
            )
        elif lead is not None and rec.data.get("run_key") == lead.run_key:
            lead = attrs.evolve(lead, taken_in=True)
    return lead


def intake_done(store: Store, lock: RunLock, now: dt.datetime) -> None:
    """Record that the intake of the run ``lock``'s holder leads is committed: processes waiting
    to join it start on its partitions."""
    store.audit_append(INTAKE_DONE, "run", {"run_key": run_key_of(now), **_holder(lock)}, at=now)


def keep_for_next_run(store: Store, events: Iterable[InboundEvent], now: dt.datetime) -> int:
    """Keep ``events`` in the store's inbox for the next run's intake (a joiner's: the run it joined
    took in already); each is kept once (its id: a digest of kind, plugin and body) and checked as
    of ``now``. Returns how many were new to the inbox."""
    kept = 0
    for ev in events:
        digest = hashlib.sha256(b"\0".join((ev.kind.value.encode(), ev.plugin.encode(), ev.body))).hexdigest()
        item = InboxItem(
            ev.kind.value,
            ev.plugin,
            f"joined:{digest[:32]}",
            ev.body,
            dict(ev.headers),
            ev.received_at or now,
        )
        kept += store.inbox_put(item)
    return kept


def taker_of(lead: RunLead | None, owner: str, pid: int) -> str:
    """The prefix of the leases a process takes: the leader's ``owner:pid`` (``lead`` is ``None``:
    this process leads), then, for a joiner, ``/joined-<owner>:<pid>`` (its owner names its host).
    """
    if lead is None:
        return f"{owner}:{pid}"
    return f"{lead.run_owner}/joined-{owner}:{pid}"


def work_partitions(
    store: Store,
    now: dt.datetime,
    partitions: int,
    lead: tuple[str, int],
    taker: str,
    settings: RunSettings,
    pm: PluginManager,
    renderer: Renderer,
    conversations: Conversations,
    stale_after: dt.timedelta,
    *,
    beat: Callable[[], None],
    progress: Callable[[int], None] | None = None,
    until_all_finished: bool = False,
    poll: float = JOIN_POLL,
) -> tuple[_Collected, dict[str, int], tuple[int, ...]]:
    """Lease partitions of the run in this process, one at a time, and plan and send each end to
    end (:func:`~carecollect.run.workers.run_partition`) until none is free.

    Before each lease the run lock must still be ``lead``'s (``(owner, pid)``); if it is not (the
    run ended, or its leader died), this process stops taking partitions. With
    ``until_all_finished`` (the leader's last phase) it also waits, ``poll`` seconds between looks,
    until every partition of the run is finished by whichever process, and does itself any whose
    holder let ``stale_after`` pass without a heartbeat.

    :param taker: the prefix of this process's leases (see :func:`taker_of`).
    :param beat: called between partitions (the leader's: keeps its lock and raises
        :class:`~carecollect.errors.RunLocked` when it was lost).
    :param progress: called with the number of accounts done here so far.
    :returns: what was planned, the send counters, and the partitions done here.
    """
    key = run_key_of(now)
    me = f"{taker}/process-{socket.gethostname()}:{os.getpid()}"
    collected = _Collected(False)
    counts = dict.fromkeys(_COUNTERS, 0)
    done: list[int] = []
    accounts = 0

    def one(n: int) -> None:
        nonlocal accounts
        accounts += n
        if progress is not None:
            progress(accounts)

    while True:
        beat()
        held = store.current_run_lock()
        if held is None or (held.owner, held.pid) != lead:
            break
        lease = store.take_partition(
            key,
            partitions,
            me,
            now=_wall_clock(),
            stale_after=stale_after,
            run_owner=f"{lead[0]}:{lead[1]}",
        )
        if lease is None:
            if not until_all_finished or len(store.finished_partitions(key)) >= partitions:
                break
            time.sleep(poll)
            continue
        part, part_counts = run_partition(
            store, lease, partitions, now, settings, pm, renderer, conversations, stale_after, progress=one
        )
        collected.merge(part)
        for k, v in part_counts.items():
            counts[k] = counts.get(k, 0) + v
        done.append(lease.partition)
    return collected, counts, tuple(done)
