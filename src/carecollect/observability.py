"""What the daily run tells a billing service's monitoring: structured logs, spans and metrics.

**Logs** go through the standard :mod:`logging` module, logger ``carecollect.run``. Every record's
message is a stable event name (listed in :data:`RUN_EVENTS`) and its ``extra`` carries ids and
counts only, never a patient's name, address, phone number or an amount owed, so a log shipper may
index them as they are: ``record.event`` is the event name and ``record.ids`` a dict of the ids
and counts. Turn them on with ``logging.basicConfig(level=logging.INFO)``; per-account events
(``run.account.planned``, ``run.message.sent``) are logged at ``DEBUG``.

**Traces and metrics** come from OpenTelemetry when ``opentelemetry-api`` is installed (``pip
install "carecollect[otel]"``) and the application configured a tracer and meter provider: the run
opens the span ``carecollect.run`` with one child span per phase (``carecollect.run.event_intake``,
``carecollect.run.plan_and_send``) and adds to the counters ``carecollect.messages.sent``,
``carecollect.messages.held`` and ``carecollect.accounts.planned``. Without the package every call
here does nothing.

>>> sorted(RUN_EVENTS)[:2]
['run.account.planned', 'run.failed']
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["LOGGER_NAME", "RUN_EVENTS", "add_metric", "log_event", "phase_span", "use_providers"]

#: The logger every run event goes to.
LOGGER_NAME = "carecollect.run"

#: Every event name the run logs, with its level and what its ids hold. The names are stable:
#: a new event may be added, an existing one is never renamed.
RUN_EVENTS: Mapping[str, tuple[int, str]] = {
    "run.started": (logging.INFO, "run_id, as_of, workers, dry_run"),
    "run.intake.done": (logging.INFO, "run_id, processed, duplicates, payments, opt_outs"),
    "run.account.planned": (logging.DEBUG, "run_id, account_id, messages, holds"),
    "run.message.sent": (logging.DEBUG, "account_id, key, channel"),
    "run.finished": (logging.INFO, "run_id, accounts, sent, held, suppressed, failed, deferred"),
    "run.failed": (logging.ERROR, "run_id, error (the exception's class name)"),
    "run.joined": (logging.INFO, "run_id, as_of, workers, lead (the run lock's holder: owner and pid)"),
    "run.joined.finished": (logging.INFO, "run_id, partitions (done here), sent"),
}

_log = logging.getLogger(LOGGER_NAME)


def log_event(event: str, /, **ids: str | int | bool | None) -> None:
    """Log ``event`` with ``ids`` (ids and counts only: never patient data).

    :param event: one of :data:`RUN_EVENTS`.
    :param ids: the ids and counts, in the record's ``ids`` attribute and in its message.
    :raises KeyError: ``event`` is not a known event name (a typo would break someone's alert).
    """
    level, _ = RUN_EVENTS[event]
    if not _log.isEnabledFor(level):
        return
    text = " ".join(f"{k}={v}" for k, v in ids.items())
    _log.log(level, "%s %s", event, text, extra={"event": event, "ids": dict(ids)})


_PROVIDERS: dict[str, Any] = {"tracer": None, "meter": None}
_INSTRUMENTS: dict[str, Any] = {}


def use_providers(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send the run's spans and metrics to these providers rather than OpenTelemetry's global ones.

    For an application that keeps its own providers (and for tests); ``None`` goes back to the
    global providers (``opentelemetry.trace.set_tracer_provider`` and its metrics twin).

    :param tracer_provider: an ``opentelemetry.trace.TracerProvider``, or ``None``.
    :param meter_provider: an ``opentelemetry.metrics.MeterProvider``, or ``None``.
    """
    _PROVIDERS["tracer"] = tracer_provider
    _PROVIDERS["meter"] = meter_provider
    _INSTRUMENTS.clear()


def _tracer() -> Any:
    if _PROVIDERS["tracer"] is not None:
        return _PROVIDERS["tracer"].get_tracer("carecollect")
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("carecollect")


def _meter() -> Any:
    if _PROVIDERS["meter"] is not None:
        return _PROVIDERS["meter"].get_meter("carecollect")
    try:
        from opentelemetry import metrics
    except ImportError:
        return None
    return metrics.get_meter("carecollect")


@contextmanager
def phase_span(name: str, **attributes: str | int | bool) -> Iterator[None]:
    """An OpenTelemetry span named ``name`` around the block (nothing without OpenTelemetry).

    :param name: the span's name (``carecollect.run``, ``carecollect.run.event_intake``...).
    :param attributes: the span's attributes (ids and counts only).
    """
    tracer = _tracer()
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(name, attributes=attributes):
        yield


def add_metric(name: str, amount: int, **attributes: str) -> None:
    """Add ``amount`` to the OpenTelemetry counter ``name`` (nothing without OpenTelemetry).

    :param name: the counter (``carecollect.messages.sent``...).
    :param amount: what to add (zero adds nothing).
    :param attributes: the data point's attributes (a channel, a country; never patient data).
    """
    if amount == 0:
        return
    meter = _meter()
    if meter is None:
        return
    counter = _INSTRUMENTS.get(name)
    if counter is None:
        counter = _INSTRUMENTS[name] = meter.create_counter(name)
    counter.add(amount, attributes)
