"""The run's partitions on a Dask distributed cluster (``pip install "carecollect[dask]"``).

The run's own process holds the run lock and takes in the events once; then it submits one task
per partition (:func:`partition_task`) to the cluster and adds up what the tasks return. A task
leases its partition in the store and plans and sends it end to end
(:func:`~carecollect.run.workers.run_partition`). Dask runs a task at least once, sometimes
twice, sometimes while a copy it presumed dead still runs: exactly once comes from the store
(the lease's fencing number checked in every unit of work, deterministic outbox keys), never
from Dask. A worker plugin (:class:`WarmRun`) keeps each Dask worker's plugin manager, message
renderer (packs, templates) and store handle between tasks.

``cluster`` is ``local:N`` (a :class:`distributed.LocalCluster` of ``N`` worker processes) or
the scheduler's address (``tcp://host:8786``). Importing this module needs ``distributed``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import ConfigurationError
from ..messages.render import Renderer
from ..plugins.manager import PluginManager, make_plugin_manager
from ..store.base import Store
from ..store.urls import open_store, url_of
from .decisions import _Collected
from .hooks import hook_failures
from .inbound import IntakeReport
from .planning import Conversations
from .report import RunReport, _report
from .sending import _COUNTERS
from .settings import RunSettings
from .workers import _wall_clock, run_key_of, run_partition

__all__ = ["PARTITION_STALE_AFTER", "WarmRun", "open_cluster", "partition_task"]

#: A partition's holder beats at least every third of this; a task retried by Dask waits at
#: most this long for the lease of a copy presumed dead.
PARTITION_STALE_AFTER = dt.timedelta(seconds=30)

_PLUGIN = "carecollect-warm-run"


class WarmRun(WorkerPlugin):
    """A Dask worker plugin: one plugin manager, renderer and store handle per worker, kept warm.

    :param pm_factory: builds the plugin manager (it must pickle); default
        :func:`~carecollect.plugins.manager.make_plugin_manager`.
    """

    name = _PLUGIN

    def __init__(self, pm_factory: Callable[[], PluginManager] | None = None) -> None:
        self.pm_factory = pm_factory
        self.pm: PluginManager | None = None
        self.renderer: Renderer | None = None
        self.stores: dict[str, Store] = {}

    def setup(self, worker: Any) -> None:
        """Build the plugin manager and the renderer once, when the worker starts."""
        self.pm = (self.pm_factory or make_plugin_manager)()
        self.renderer = Renderer()

    def teardown(self, worker: Any) -> None:
        """Close the store handles."""
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def store(self, url: str) -> Store:
        """The worker's handle on the store at ``url`` (opened on first use)."""
        if url not in self.stores:
            self.stores[url] = open_store(url)
        return self.stores[url]


def partition_task(
    url: str,
    partition: int,
    partitions: int,
    now: dt.datetime,
    settings: RunSettings,
    run_owner: str,
    conversations: Conversations,
    stale_after: dt.timedelta,
) -> tuple[_Collected, dict[str, int], tuple[str, ...]]:
    """One partition of the run, on a Dask worker: lease it, plan and send it, finish it.

    A partition already finished (an earlier run for the same instant, or a copy of this task)
    returns nothing done. A partition another live holder has (a copy Dask presumed dead) is
    waited for until that holder finishes it or lets ``stale_after`` pass.
    """
    warm = importlib.import_module("distributed").get_worker().plugins[_PLUGIN]
    assert isinstance(warm, WarmRun) and warm.pm is not None and warm.renderer is not None
    store = warm.store(url)
    key = run_key_of(now)
    owner = f"{run_owner}/dask-{partition}:{id(warm):x}:{time.monotonic_ns()}"
    while True:
        if partition in store.finished_partitions(key):
            return _Collected(False), dict.fromkeys(_COUNTERS, 0), ()
        lease = store.take_partition(
            key, partitions, owner, now=_wall_clock(), stale_after=stale_after, partition=partition
        )
        if lease is not None:
            break
        time.sleep(min(1.0, stale_after.total_seconds() / 10))
    collected, counts = run_partition(
        store, lease, partitions, now, settings, warm.pm, warm.renderer, conversations, stale_after
    )
    return collected, counts, hook_failures(warm.pm)


def open_cluster(cluster: str) -> tuple[Any, Any]:
    """A Dask client for ``cluster`` (``local:N`` or a scheduler address), and the
    :class:`~distributed.LocalCluster` it started (``None`` for an address).

    :raises ConfigurationError: ``distributed`` is not installed, or ``local:N`` is malformed.
    """
    try:
        distributed: Any = importlib.import_module("distributed")  # typed as Any: it has no stubs
    except ImportError:
        raise ConfigurationError(
            'the run on a Dask cluster needs the dask extra: pip install "carecollect[dask]"'
        ) from None
    if cluster.startswith("local:"):
        n = cluster.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise ConfigurationError(f"cluster {cluster!r}: local:N needs N, a number of workers (1 or more)")
        local = distributed.LocalCluster(
            n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None
        )
        return distributed.Client(local), local
    return distributed.Client(cluster), None


def _execute_on_cluster(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    intake_report: IntakeReport | None,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Conversations,
    cluster: str,
    pm_factory: Callable[[], PluginManager] | None,
    beat: Callable[[], None],
    partitions: int,
    stale_after: dt.timedelta | None = None,
    run_owner: str | None = None,
) -> tuple[RunReport, tuple[str, ...]]:
    """Submit one task per partition and add up their results (the run lock stays here).

    :param beat: called as results come in (the leader's run-lock heartbeat).
    :param run_owner: the prefix of the tasks' leases (default ``owner:pid``: this process leads
        the run; see :func:`~carecollect.run.joining.taker_of`).
    """
    stale_after = stale_after or PARTITION_STALE_AFTER
    url = url_of(store)
    if url is None:
        raise ValueError("a run on a cluster needs a store on a file or a server (each worker opens its own)")
    client, local = open_cluster(cluster)
    counts = dict.fromkeys(_COUNTERS, 0)
    collected = _Collected(settings.keep_plan)
    failures: list[str] = []
    try:
        client.register_plugin(WarmRun(pm_factory), name=_PLUGIN)
        talks = dict(conversations)
        futures = [
            client.submit(
                partition_task,
                url,
                p,
                partitions,
                now,
                settings,
                run_owner or f"{owner}:{pid}",
                talks,
                stale_after,
                key=f"carecollect-partition-{run_key_of(now)}-{p}-of-{partitions}",
                retries=3,
                pure=False,
            )
            for p in range(partitions)
        ]
        for future in importlib.import_module("distributed").as_completed(futures):
            part, part_counts, part_failures = future.result()
            collected.merge(part)
            for k, v in part_counts.items():
                counts[k] = counts.get(k, 0) + v
            failures.extend(part_failures)
            beat()
            if progress is not None:
                progress(collected.accounts)
    finally:
        client.close()
        if local is not None:
            local.close()
    return _report(collected.plan(now), counts, intake_report), tuple(failures)
