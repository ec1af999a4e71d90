"""The daily collection run: intake, plan, then send exactly once through an outbox.

The run has three phases, each usable on its own:

1. :func:`~carecollect.run.event_intake.intake` takes in what came back since the last run.
2. :func:`~carecollect.run.planning.plan_run` plans every decision and writes nothing: a dry
   run is exactly this plan.
3. :func:`execute_run` takes the run lock, takes in, plans, and carries the plan out (or joins a
   partitioned run another process leads, :mod:`carecollect.run.joining`): messages
   (:mod:`carecollect.run.sending`), instalment charges and agency placements
   (:mod:`carecollect.run.charges`) go through the outbox, so a run killed at any point and run
   again sends or charges nothing twice and skips nothing. Every decision goes to the
   hash-chained audit log with its reasons, so :func:`explain_account` can answer "why did this
   patient get, or not get, a message".
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..contact_centre.records import ContactRecord
from ..errors import ConfigurationError, StoreUnavailable
from ..messages.render import Renderer
from ..observability import add_metric, log_event, phase_span
from ..plugins.manager import PluginManager
from ..store.base import (
    RUN_LOCK_STALE_AFTER,
    Store,
)
from ..store.urls import url_of
from ..timekeeping import require_aware
from .decisions import DecisionKind, _Collected
from .event_intake import intake
from .hooks import hook_failures, redeliver_hook_events
from .inbound import InboundEvent, IntakeReport
from .joining import RunLead, intake_done, keep_for_next_run, lead_or_join, taker_of, work_partitions
from .planning import Conversations, _iter_plans, by_account
from .report import RunReport, _report
from .sending import _COUNTERS, _Sender, close_batches
from .settings import RunSettings, check_settings
from .workers import PARTITIONS_PER_WORKER, RunHeartbeat, _execute_parallel

__all__ = [
    "CLUSTER_PARTITIONS",
    "execute_run",
    "explain_account",
    "last_run_at",
]


#: Partitions of a run on a Dask cluster unless the caller says otherwise.
CLUSTER_PARTITIONS = 16


def execute_run(
    store: Store,
    now: dt.datetime,
    pm: PluginManager,
    settings: RunSettings | None = None,
    *,
    owner: str = "carecollect",
    events: Iterable[InboundEvent] = (),
    renderer: Renderer | None = None,
    progress: Callable[[int], None] | None = None,
    stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    contacts: Iterable[ContactRecord] = (),
    workers: int = 1,
    pm_factory: Callable[[], PluginManager] | None = None,
    cluster: str | None = None,
    partitions: int | None = None,
) -> RunReport:
    """Run the daily cycle for real: intake, plan, then send each message exactly once.

    :param store: the store.
    :param now: the run's instant (aware; pass ``--as-of`` from the CLI).
    :param pm: a plugin manager (:func:`carecollect.plugins.manager.make_plugin_manager`).
    :param settings: run settings.
    :param owner: who holds the run lock.
    :param events: inbound events to take in first.
    :param renderer: the message renderer (default: built-in templates).
    :param progress: called with the number of accounts done, for progress bars.
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)``; they
        count like answered calls in the governor (see :func:`~carecollect.run.planning.by_account`).
    :param contacts: the contact centre's records; an open dispute whose patient they show was
        reached is stored as met (see :func:`~carecollect.run.event_intake.intake`).
    :param stale_after: this run's promise to the next: it says it is alive (a heartbeat on the
        wall clock, from a thread and at every account) several times within this span, so its lock
        is never taken from it while it lives; after this span without a heartbeat (the process is
        frozen, or died on another host) a later run may take it over. A lock held on this host by a
        process that is gone (killed) is taken over at once. Staleness never depends on ``now``:
        runs with different instants (``--as-of``) still exclude each other.
    :param workers: processes that plan and send. With more than one, this process holds the run
        lock for the whole run and takes in the events once; then ``workers`` processes (started
        with ``spawn``), each with its own handle on the same store (from its URL, see
        :func:`~carecollect.store.urls.url_of`: a SQLite file or a PostgreSQL server) and its
        own plugin manager and channels, take partitions of the patients
        (:func:`~carecollect.run.workers.partition_of`, ``workers`` times
        :data:`~carecollect.run.workers.PARTITIONS_PER_WORKER`) one lease at a time and plan and
        send each end to end (:func:`~carecollect.run.workers.run_partition`); every unit of work
        checks the lease's fencing number. A finished partition is not done again when the run
        is started again for the same ``now``. The report adds up the workers'. The store must
        not be SQLite ``:memory:``, and ``settings`` and a ``renderer`` you pass must pickle
        (by default each worker builds its own). Plugins' ``on_outreach_sent`` and other hooks
        of the send path then run in the workers; the report lists the hook failures of every
        worker, but only those of this process's ``pm`` can be redelivered.
    :param cluster: run the partitions on a Dask cluster instead of local processes: ``local:N``
        (a ``LocalCluster`` of ``N`` worker processes) or a scheduler's address
        (``tcp://host:8786``); see :mod:`carecollect.run.cluster` (``pip install "carecollect[dask]"``).
    :param partitions: partitions of the patients for ``workers`` above one or a ``cluster``
        (default: ``workers`` times :data:`~carecollect.run.workers.PARTITIONS_PER_WORKER`, or 16
        on a cluster); with one worker and no cluster, this process leases and does them itself,
        one at a time (default: none, the run is not partitioned). Keep it the same when a run is
        started again for the same ``now``. A partitioned run can be shared: another process that
        starts it for the same ``now`` while this one holds the lock joins it, and this process,
        when it finds the lock held by such a run, joins it instead of leading (the returned
        report's ``joined``; see :mod:`carecollect.run.joining`); a process that joins works the
        leader's partitions, whatever its own ``partitions``.
    :param pm_factory: builds each worker's plugin manager (it must pickle: a module-level
        function or a :func:`functools.partial`); default
        :func:`~carecollect.plugins.manager.make_plugin_manager` with its defaults.
    :raises ConfigurationError: the settings name a plugin that is not installed, or house rules
        that do not apply (:func:`~carecollect.run.settings.settings_problems`); nothing was taken in, planned or sent.
    :raises RunLocked: another run holds the lock and this one cannot join it: it runs for
        another ``now``, or one of the two is not partitioned.
    :raises StoreUnavailable: the store's database server went away (nothing half-written; run
        again once it is back).
    :raises ValueError: ``workers`` is below 1, or above 1 with a store no other process can open.
    :raises RunWorkerError: a worker process failed or died (what it finished stays done; a rerun
        carries on exactly once).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if (workers > 1 or cluster is not None) and url_of(store) is None:
        raise ValueError("workers > 1 needs a store on a file or a server (each worker opens its own)")
    require_aware(now, "run", "now")
    settings = settings or RunSettings()
    check_settings(settings, pm)  # before anything is taken in, planned or sent
    given_renderer = renderer
    renderer = renderer or Renderer()
    pid = os.getpid()
    owner = f"{owner}@{socket.gethostname()}"
    run_id = uuid.uuid4().hex[:12]
    count = _partitions(workers, cluster, partitions)
    held = lead_or_join(store, owner, pid, now, stale_after=stale_after, partitions=count, run_id=run_id)
    if isinstance(held, RunLead):
        return _join(
            store,
            now,
            pm,
            settings,
            renderer,
            given_renderer,
            held,
            owner,
            pid,
            by_account(conversations),
            progress,
            workers,
            pm_factory,
            stale_after,
            cluster,
            held.partitions,  # the leader laid them out: a joiner's own count is for leading
            run_id,
            events,
        )
    heart = RunHeartbeat(store, owner, pid, stale_after)
    log_event("run.started", run_id=run_id, as_of=now.isoformat(), workers=workers, dry_run=False)
    failed_on_store = False
    try:
        with phase_span("carecollect.run", run_id=run_id, as_of=now.isoformat(), workers=workers):
            heart.start()
            with phase_span("carecollect.run.event_intake", run_id=run_id):
                redeliver_hook_events(store, pm, now)  # what earlier runs owe plugins goes first
                intake_report = intake(store, pm, settings, events, now, contacts=contacts)
                if count is not None:  # committed: processes waiting to join start on the partitions
                    intake_done(store, held, now)
            log_event(
                "run.intake.done",
                run_id=run_id,
                processed=intake_report.processed,
                duplicates=intake_report.duplicates,
                payments=intake_report.payments,
                opt_outs=intake_report.opt_outs,
            )
            with phase_span("carecollect.run.plan_and_send", run_id=run_id):
                report = _execute_phase(
                    store,
                    now,
                    pm,
                    settings,
                    renderer,
                    given_renderer,
                    intake_report,
                    progress,
                    owner,
                    pid,
                    conversations,
                    workers,
                    pm_factory,
                    heart,
                    run_id,
                    stale_after,
                    cluster,
                    count,
                )
            _finished(store, report, now, run_id)  # under the lock: the next run sees it
    except BaseException as exc:
        log_event("run.failed", run_id=run_id, error=type(exc).__name__)
        # the server is away: releasing would only wait for it; the lock goes to the next run (at
        # once on this host, its holder being gone, else once stale)
        failed_on_store = isinstance(exc, StoreUnavailable)
        raise
    finally:
        heart.stop(wait=not failed_on_store)
        if not failed_on_store:
            store.release_run_lock(owner, pid)
    return report


def _partitions(workers: int, cluster: str | None, partitions: int | None) -> int | None:
    """The run's partitions (``None``: it runs without, in one process, and nobody can join it)."""
    if cluster is not None:
        return partitions or CLUSTER_PARTITIONS
    if workers > 1:
        return partitions or workers * PARTITIONS_PER_WORKER
    return partitions


def _join(
    store: Store,
    now: dt.datetime,
    pm: PluginManager,
    settings: RunSettings,
    renderer: Renderer,
    given_renderer: Renderer | None,
    lead: RunLead,
    owner: str,
    pid: int,
    talks: Conversations,
    progress: Callable[[int], None] | None,
    workers: int,
    pm_factory: Callable[[], PluginManager] | None,
    stale_after: dt.timedelta,
    cluster: str | None,
    partitions: int | None,
    run_id: str,
    events: Iterable[InboundEvent],
) -> RunReport:
    """Work partitions of the run ``lead`` leads until none is free (see :mod:`carecollect.run.joining`).

    The leader's intake is done: events given to this process go to the store's inbox, for the
    next run's intake (those the leader took in too count there as duplicates).
    """
    assert partitions is not None
    keep_for_next_run(store, events, now)
    taker = taker_of(lead, owner, pid)
    joined = f"{lead.owner} {lead.pid}"
    log_event("run.joined", run_id=run_id, as_of=now.isoformat(), workers=workers, lead=joined)
    try:
        with phase_span("carecollect.run.joined", run_id=run_id, as_of=now.isoformat(), workers=workers):
            if cluster is not None:
                _execute_on_cluster = _cluster_runner()
                report, failures = _execute_on_cluster(
                    store,
                    now,
                    settings,
                    None,
                    progress,
                    owner,
                    pid,
                    talks,
                    cluster,
                    pm_factory,
                    _no_lock,
                    partitions,
                    run_owner=taker,
                )
                return attrs.evolve(report, hook_failures=hook_failures(pm) + failures, joined=joined)
            if workers > 1:
                collected, counts, failures, done = _execute_parallel(
                    store,
                    now,
                    settings,
                    given_renderer,
                    progress,
                    owner,
                    pid,
                    talks,
                    workers,
                    pm_factory,
                    _no_lock,
                    stale_after,
                    partitions,
                    lead=(lead.owner, lead.pid),
                    taker=taker,
                )
            else:
                collected, counts, done = work_partitions(
                    store,
                    now,
                    partitions,
                    (lead.owner, lead.pid),
                    taker,
                    settings,
                    pm,
                    renderer,
                    talks,
                    stale_after,
                    beat=_no_lock,
                    progress=progress,
                )
                failures = ()
    except BaseException as exc:
        log_event("run.failed", run_id=run_id, error=type(exc).__name__)
        raise
    log_event("run.joined.finished", run_id=run_id, partitions=len(done), sent=counts["sent"])
    return attrs.evolve(
        _report(collected.plan(now), counts, None),
        hook_failures=hook_failures(pm) + failures,
        partitions_done=done,
        joined=joined,
    )


def _cluster_runner() -> Callable[..., tuple[RunReport, tuple[str, ...]]]:
    """:func:`carecollect.run.cluster._execute_on_cluster` (its module needs the dask extra).

    :raises ConfigurationError: ``distributed`` is not installed.
    """
    try:
        from .cluster import _execute_on_cluster
    except ImportError:
        raise ConfigurationError(
            'the run on a Dask cluster needs the dask extra: pip install "carecollect[dask]"'
        ) from None
    return _execute_on_cluster


def _no_lock() -> None:
    """A joiner holds no run lock: nothing to keep alive between partitions."""


def _finished(store: Store, report: RunReport, now: dt.datetime, run_id: str) -> None:
    """Record the run's instant (what :func:`last_run_at` reads), seal the audit chains (a run
    that appended to partition chains ends with a seal of every chain's head, see
    :meth:`~carecollect.store.base.RunJournal.seal_audit`) and log and count its outcome."""
    held = report.plan.counts().get("hold", 0)
    figures = {
        "accounts": report.plan.accounts,
        "sent": report.sent,
        "held": held,
        "suppressed": report.suppressed,
        "failed": report.failed,
        "deferred": report.deferred_retry,
    }
    store.audit_append("run.finished", "run", {"run_id": run_id, "as_of": now.isoformat(), **figures}, at=now)
    store.seal_audit(at=now)  # the day's seal: every partition chain's head, in the main chain
    log_event("run.finished", run_id=run_id, **figures)
    add_metric("carecollect.accounts.planned", report.plan.accounts)
    add_metric("carecollect.messages.sent", report.sent)
    add_metric("carecollect.messages.held", held)


def last_run_at(store: Store) -> dt.datetime | None:
    """The instant (``as_of``) of the latest finished run, from the audit log (``None``: no run yet).

    A run records it as the audit record ``run.finished`` (subject ``run``); the command line asks
    for ``--force`` before it runs at an earlier instant.

    :param store: the store.
    """
    latest: dt.datetime | None = None
    for rec in store.audit_records(subject_id="run", kinds=("run.finished",)):
        at = dt.datetime.fromisoformat(str(rec.data["as_of"]))
        latest = at if latest is None or at > latest else latest
    return latest


def _execute_phase(
    store: Store,
    now: dt.datetime,
    pm: PluginManager,
    settings: RunSettings,
    renderer: Renderer,
    given_renderer: Renderer | None,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Iterable[tuple[str, str | None, dt.datetime]],
    workers: int,
    pm_factory: Callable[[], PluginManager] | None,
    heart: RunHeartbeat,
    run_id: str,
    stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER,
    cluster: str | None = None,
    partitions: int | None = None,
) -> RunReport:
    """Plan and send, in this process or in ``workers`` processes (see :func:`execute_run`)."""
    talks = by_account(conversations)
    if cluster is not None:
        _execute_on_cluster = _cluster_runner()
        report, tasks_failed = _execute_on_cluster(
            store,
            now,
            settings,
            intake_report,
            progress,
            owner,
            pid,
            talks,
            cluster,
            pm_factory,
            heart.beat,
            partitions or CLUSTER_PARTITIONS,
        )
        # every task returned once its partition was finished, by it or by a joiner's process
        return attrs.evolve(
            report, hook_failures=hook_failures(pm) + tasks_failed, batches=close_batches(pm, settings, now)
        )
    if partitions is None:
        report = _execute(store, now, pm, settings, renderer, intake_report, progress, heart, talks, run_id)
        return attrs.evolve(report, hook_failures=hook_failures(pm), batches=close_batches(pm, settings, now))
    collected = _Collected(settings.keep_plan)
    counts = dict.fromkeys(_COUNTERS, 0)
    failures: tuple[str, ...] = ()
    done: tuple[int, ...] = ()
    accounts = 0
    if workers > 1:
        part, part_counts, failures, done = _execute_parallel(
            store,
            now,
            settings,
            given_renderer,
            progress,
            owner,
            pid,
            talks,
            workers,
            pm_factory,
            heart.beat,
            stale_after,
            partitions,
        )
        collected.merge(part)
        _add(counts, part_counts)
        accounts = part.accounts
    # here: the partitions still free (all of them with one worker), then, until every partition
    # of the run is finished by whichever process, any whose holder stopped beating
    part, part_counts, here = work_partitions(
        store,
        now,
        partitions,
        (owner, pid),
        taker_of(None, owner, pid),
        settings,
        pm,
        renderer,
        talks,
        stale_after,
        beat=heart.beat,
        progress=None if progress is None else (lambda n: progress(accounts + n)),
        until_all_finished=True,
    )
    collected.merge(part)
    _add(counts, part_counts)
    return attrs.evolve(
        _report(collected.plan(now), counts, intake_report),
        hook_failures=hook_failures(pm) + failures,
        batches=close_batches(pm, settings, now),
        partitions_done=tuple(sorted(done + here)),
    )


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        counts[k] = counts.get(k, 0) + v


def _execute(
    store: Store,
    now: dt.datetime,
    pm: PluginManager,
    settings: RunSettings,
    renderer: Renderer,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    heart: RunHeartbeat,
    conversations: Conversations,
    run_id: str = "",
) -> RunReport:
    sender = _Sender(store, pm, settings, renderer, now, beat=heart.beat)
    collected = _Collected(settings.keep_plan)
    for planned in _iter_plans(store, now, settings, conversations):
        collected.add(planned)
        assert planned.plan is not None
        log_event(
            "run.account.planned",
            run_id=run_id,
            account_id=planned.account_id,
            messages=len(planned.plan.messages),
            holds=sum(1 for d in planned.plan.decisions if d.kind is DecisionKind.HOLD),
        )
        sender.account(
            planned.account_id,
            planned.creditor_id,
            planned.plan,
            conversations.get(planned.account_id, ()),
            planned.read,
        )
        heart.beat()
        if progress is not None:
            progress(collected.accounts)
    sender.finish()
    return _report(collected.plan(now), sender.counts, intake_report)


def explain_account(store: Store, account_id: str) -> list[dict[str, Any]]:
    """Every decision recorded for ``account_id``, oldest first, from the audit log.

    Each item has the run time, the decision kind, the invoice, purpose and
    channel, and the reasons (rule id, source, outcome, message).
    """
    out = []
    for rec in store.audit_records(subject_id=account_id):
        out.append({"at": rec.at.isoformat(), "kind": rec.kind, **dict(rec.data)})
    return out
