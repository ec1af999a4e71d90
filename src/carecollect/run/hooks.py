"""Durable hook events: a broadcast owed in the same unit of work as the change it reports.

:func:`owe_hook` records the event in the store's event queue with the change;
:func:`deliver_hooks` broadcasts it and records which plugins took it, so a run killed between
the change and the broadcast delivers it at the next run (:func:`redeliver_hook_events`), to
the plugins that did not take it only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..events import Event, EventType
from ..plugins.manager import PluginManager
from ..scrubbing import scrub_text
from ..store.base import (
    Store,
)
from ..store.event_queue import decode_arguments, encode_arguments
from .decisions import PlannedMessage

__all__ = [
    "OwedHookEvent",
    "announce_send_failure",
    "deliver_hooks",
    "hook_failures",
    "owe_hook",
    "redeliver_hook_events",
]


def announce_send_failure(store: Store, pm: PluginManager, msg: PlannedMessage, now: dt.datetime) -> None:
    """Broadcast ``carecollect_on_outreach_failed`` for a send the outbox has just recorded failed.

    The reason is the outbox item's scrubbed error; the event says whether the
    send will be retried (``retry_at``) or was given up after the last attempt.
    """
    with store.transaction():
        owed = _owe_send_failure(store, pm, msg, now)
    deliver_hooks(store, pm, (owed,), now)


def _owe_send_failure(
    store: Store, pm: PluginManager, msg: PlannedMessage, now: dt.datetime
) -> OwedHookEvent:
    """Queue ``carecollect_on_outreach_failed`` for the send the outbox just recorded failed."""
    item = store.outbox_get(msg.key)
    details: dict[str, object] = {
        "channel": msg.channel.value,
        "key": msg.key,
        "attempts": item.attempts,
        "gave_up": item.next_retry_at is None,
    }
    if item.next_retry_at is not None:
        details["retry_at"] = item.next_retry_at.isoformat()
    event = Event(EventType.OUTREACH_FAILED, msg.step.id, now, details)
    return owe_hook(
        store,
        pm,
        "carecollect_on_outreach_failed",
        now,
        step=msg.step,
        event=event,
        reason=item.last_error or "failed",
    )


@attrs.frozen
class OwedHookEvent:
    """An event-hook broadcast queued in the store (:func:`owe_hook`), to deliver once committed.

    :param seq: its place in the store's queue.
    :param hook: the hook's name.
    :param targets: the plugins that must take it.
    :param arguments: the hook's keyword arguments.
    """

    seq: int
    hook: str
    targets: tuple[str, ...]
    arguments: Mapping[str, Any] = attrs.field(eq=False, repr=False)


def owe_hook(store: Store, pm: PluginManager, hook: str, at: dt.datetime, **arguments: Any) -> OwedHookEvent:
    """Queue the broadcast of ``hook`` in the store; call it inside the unit of work that makes
    the change the event reports, then :func:`deliver_hooks` once that unit is committed.

    The store keeps it until every plugin that implements the hook has taken it, so a plugin that
    raises, or a process that dies between the commit and the broadcast, loses nothing: the next
    run delivers it (:func:`redeliver_hook_events`). ``reason`` (``on_outreach_failed``) is
    scrubbed first.

    :param store: the store (in the caller's transaction).
    :param pm: the plugin manager (its implementers of ``hook`` are the targets).
    :param hook: one of :data:`carecollect.plugins.hookspecs.EVENT_HOOKS`.
    :param at: the run's instant.
    :param arguments: the hook's keyword arguments.
    :returns: the queued event (``seq`` 0 when no plugin implements the hook: nothing is owed).
    """
    if "reason" in arguments:
        arguments["reason"] = scrub_text(str(arguments["reason"]))
    targets = tuple(pm.event_hook_plugins(hook))
    if not targets:  # no plugin listens: nothing is owed, nothing is written
        return OwedHookEvent(0, hook, targets, arguments)
    seq = store.hook_event_record(hook, encode_arguments(arguments), targets, at=at)
    return OwedHookEvent(seq, hook, targets, arguments)


def _deliver(
    store: Store,
    pm: PluginManager,
    seq: int,
    hook: str,
    owed: Sequence[str],
    arguments: Mapping[str, Any],
    at: dt.datetime,
) -> None:
    """Broadcast to the plugins in ``owed`` that are installed; record who took it."""
    if not owed:
        return
    installed = set(pm.event_hook_plugins(hook))
    calling = [p for p in owed if p in installed]
    if not calling:
        return  # its plugins are not installed now (blocked?): kept for a run that has them
    result = pm.broadcast(hook, only=calling, **arguments)
    error = "; ".join(f"{f.plugin}: {f.error_type}: {f.message}" for f in result.failures)[:500] or None
    store.hook_event_delivered(seq, result.delivered, at=at, error=error)


def deliver_hooks(store: Store, pm: PluginManager, owed: Iterable[OwedHookEvent], at: dt.datetime) -> None:
    """Broadcast events queued by :func:`owe_hook` (their unit of work is committed) and record,
    per plugin, who took them; a plugin that raises keeps its event in the queue."""
    for o in owed:
        _deliver(store, pm, o.seq, o.hook, o.targets, o.arguments, at)


def redeliver_hook_events(store: Store, pm: PluginManager, at: dt.datetime) -> int:
    """Deliver again every queued event some plugin has not taken (the run does this first).

    Each event goes only to the plugins that have not taken it, oldest first; a plugin that
    raises again keeps it for the next run. Returns the number of events tried.
    """
    tried = 0
    while True:
        pending = [e for e in store.hook_events_pending(limit=500) if e.seq > tried]
        if not pending:
            return tried
        for event in pending:
            _deliver(store, pm, event.seq, event.hook, event.owed, decode_arguments(event.arguments), at)
            tried = event.seq


def hook_failures(pm: PluginManager) -> tuple[str, ...]:
    """One scrubbed line per event broadcast a plugin has not handled yet in this run
    (``pm.undelivered()``).

    A plugin's own failure never stops the run; the event stays in the store's queue
    (:func:`owe_hook`) and the next run delivers it again (:func:`redeliver_hook_events`).
    """
    lines = []
    for result in pm.undelivered():
        for failure in result.failures:
            lines.append(
                f"{result.hook} {result.event.type.value} {result.event.record_id}: "
                f"plugin {failure.plugin!r} raised {failure.error_type}: {failure.message}"[:300]
            )
    return tuple(lines)
