"""Channels kept busy: batch size, concurrency and rate limit declared by a channel, honoured by the
sender and by the run (intents durable before a hand-over, done-marks after, results in order)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.errors import PluginError, ValidationError
from carecollect.plugins.builtin.outbox import CAPABILITIES, OutboxChannel, spooled_messages
from carecollect.plugins.dispatch import ChannelSender, TokenBucket
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.messaging import (
    ChannelCapabilities,
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.sending import message_id
from carecollect.run.settings import RunSettings
from carecollect.store.base import OutboxStatus
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


class FakeClock:
    """Monotonic seconds that move only when slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _messages(n: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(id=f"m{i}", channel=Channel.EMAIL, recipient="x@example.org", body="b")
        for i in range(n)
    ]


class Recorder:
    """Counts calls in flight; the first ``hold`` calls wait until that many are in flight at once."""

    def __init__(self, *, fail: str = "", drop: bool = False, hold: int = 0, pause: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[str]] = []
        self.active = 0
        self.peak = 0
        self.fail = fail
        self.drop = drop
        self.hold = hold
        self.pause = pause
        self.all_in = threading.Event()

    def _enter(self, ids: list[str]) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.batches.append(ids)
            if self.active >= self.hold:
                self.all_in.set()
        if self.hold and not self.all_in.is_set():
            assert self.all_in.wait(10), "the calls never ran at the same time"
        time.sleep(self.pause)

    def _leave(self) -> None:
        with self.lock:
            self.active -= 1

    def _receipt(self, message: OutgoingMessage) -> Receipt:
        if message.id == self.fail:
            raise PluginError("refused")
        return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id="p-" + message.id)

    def send(self, message: OutgoingMessage) -> Receipt:
        self._enter([message.id])
        try:
            return self._receipt(message)
        finally:
            self._leave()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | Exception]:
        self._enter([m.id for m in messages])
        out: list[Receipt | Exception] = []
        for m in messages:
            try:
                out.append(self._receipt(m))
            except PluginError as exc:
                out.append(exc)
        self._leave()
        return out[:-1] if self.drop else out


def test_batches_of_the_declared_size_results_in_input_order() -> None:
    channel = Recorder(pause=0.002)
    with ChannelSender(channel, batch_size=3, concurrency=2) as sender:  # type: ignore[arg-type]
        results = list(sender.send_all(_messages(10)))
    assert [m.id for m, _ in results] == [f"m{i}" for i in range(10)]
    assert all(isinstance(r, Receipt) and r.message_id == m.id for m, r in results)
    assert sorted(len(b) for b in channel.batches) == [1, 3, 3, 3]
    assert channel.peak <= 2


def test_calls_run_at_the_same_time_up_to_the_concurrency_never_more() -> None:
    channel = Recorder(hold=4, pause=0.003)
    with ChannelSender(channel, concurrency=4) as sender:  # type: ignore[arg-type]
        results = list(sender.send_all(_messages(40)))
    assert channel.peak == 4  # the first four waited for each other: all four were in flight
    assert [m.id for m, _ in results] == [f"m{i}" for i in range(40)]
    assert all(r.message_id == m.id for m, r in results if isinstance(r, Receipt))


def test_concurrency_one_sends_from_the_callers_thread() -> None:
    threads: list[int] = []

    class Here(Recorder):
        def send(self, message: OutgoingMessage) -> Receipt:
            threads.append(threading.get_ident())
            return super().send(message)

    with ChannelSender(Here()) as sender:  # type: ignore[arg-type]
        sender.submit(_messages(1)[0])
        assert [m.id for m, _ in sender.ready()] == ["m0"]  # answered at once
    assert threads == [threading.get_ident()]


def test_one_failure_keeps_the_other_results() -> None:
    with ChannelSender(Recorder(fail="m2"), batch_size=4, concurrency=2) as sender:  # type: ignore[arg-type]
        results = {m.id: r for m, r in sender.send_all(_messages(5))}
    assert isinstance(results["m2"], PluginError)
    assert all(isinstance(results[f"m{i}"], Receipt) for i in (0, 1, 3, 4))


def test_a_batch_call_that_loses_a_result_fails_each_of_its_messages() -> None:
    with ChannelSender(Recorder(drop=True), batch_size=2) as sender:  # type: ignore[arg-type]
        results = [r for _, r in sender.send_all(_messages(2))]
    assert len(results) == 2 and all(isinstance(r, PluginError) for r in results)


def test_back_pressure_reads_the_input_only_as_calls_end() -> None:
    read: list[int] = []

    def source() -> Iterator[OutgoingMessage]:
        for i, m in enumerate(_messages(40)):
            read.append(i)
            yield m

    with ChannelSender(Recorder(pause=0.01), batch_size=2, concurrency=2) as sender:  # type: ignore[arg-type]
        stream = sender.send_all(source())
        next(stream)
        assert len(read) <= 2 * 2 + 2  # two calls of two in flight, one batch filling
        assert sender.in_flight <= 2 * 2 + 2
        rest = list(stream)
    assert len(rest) == 39 and len(read) == 40


def test_the_token_bucket_on_a_clock_passed_in() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        bucket.acquire()
    assert clock.now == pytest.approx(1.0)
    clock.now += 5.0  # a pause saves up at most the burst (one token)
    bucket.acquire()
    bucket.acquire()
    assert clock.now == pytest.approx(6.1)


@pytest.mark.parametrize(("batch_size", "concurrency"), [(1, 1), (5, 1), (5, 3)])
def test_the_sender_honours_the_rate_limit(batch_size: int, concurrency: int) -> None:
    clock = FakeClock()
    sender = ChannelSender(
        Recorder(),  # type: ignore[arg-type]
        batch_size=batch_size,
        concurrency=concurrency,
        rate_limit=100.0,
        clock=clock,
        sleep=clock.sleep,
    )
    with sender:
        assert len(list(sender.send_all(_messages(200 + batch_size)))) == 200 + batch_size
    assert clock.now == pytest.approx(2.0)  # the first batch is the burst, 200 more at 100 a second


def test_the_sender_takes_the_channels_declaration() -> None:
    class Declared(Recorder):
        capabilities = ChannelCapabilities(
            channels={Channel.EMAIL}, batch_size=7, concurrency=3, rate_limit=12.5
        )

    sender = ChannelSender.for_channel(Declared())  # type: ignore[arg-type]
    assert (sender.batch_size, sender.concurrency) == (7, 3)
    assert sender.bucket is not None and sender.bucket.rate == 12.5
    plain = ChannelSender.for_channel(Recorder())  # type: ignore[arg-type]
    assert (plain.batch_size, plain.concurrency, plain.bucket) == (1, 1, None)


def test_capabilities_default_to_one_at_a_time() -> None:
    caps = ChannelCapabilities(channels={Channel.EMAIL})
    assert (caps.batch_size, caps.concurrency, caps.rate_limit) == (1, 1, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 2.0),
        ("concurrency", 0),
        ("concurrency", True),
        ("concurrency", "4"),
        ("rate_limit", 0),
        ("rate_limit", -1.0),
        ("rate_limit", float("inf")),
        ("rate_limit", float("nan")),
        ("rate_limit", "10"),
        ("rate_limit", True),
    ],
)
def test_bad_declarations_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        ChannelCapabilities(channels={Channel.EMAIL}, **{field: value})
    assert info.value.field == field and info.value.record == "ChannelCapabilities"


def test_the_sender_refuses_a_bad_concurrency() -> None:
    with pytest.raises(ValidationError) as info:
        ChannelSender(Recorder(), concurrency=0)  # type: ignore[arg-type]
    assert info.value.field == "concurrency"


# --- the run honours them -------------------------------------------------------------------


def _store(tmp: Path) -> SQLiteStore:
    store = SQLiteStore(tmp / "run.db")
    load_portfolio(store, 80, seed=3, as_of=NOW.date())
    return store


def _run(store: SQLiteStore, channel: type[Any], send_batch: int = 10, **config: str) -> Any:
    class Plugin:
        @hookimpl
        def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
            return [MessageChannelDescriptor("busy", channel.capabilities, channel)]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "busy"), channel_config={"busy": config}, send_batch=send_batch
    )
    return execute_run(store, NOW, pm, settings)


def _keys(db: Path, where: str = "") -> list[str]:
    """Outbox keys as committed, read on a connection of its own (read-only)."""
    with (
        closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con,
        closing(con.execute("SELECT key FROM outbox " + where)) as cur,
    ):
        return [r[0] for r in cur.fetchall()]


def _done(db: Path) -> set[str]:
    return {message_id(k) for k in _keys(db, "WHERE status = 'done'")}


class _Busy(OutboxChannel):
    """The file outbox, slow, four calls at a time; it checks that every message it is handed was
    intended (durable) before, and never done before its send returned."""

    capabilities = attrs.evolve(CAPABILITIES, concurrency=4)
    lock = threading.Lock()
    active = 0
    peak = 0
    problems: ClassVar[list[str]] = []

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__(settings)
        self._db = Path(settings["db"])

    def send(self, message: OutgoingMessage) -> Receipt:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            keys = {message_id(k): k for k in _intended(self._db)}
            if message.id not in keys:
                cls.problems.append(f"{message.id} not intended before its send")
            if message.id in _done(self._db):
                cls.problems.append(f"{message.id} done before its send")
            time.sleep(0.002)
            return super().send(message)
        finally:
            with cls.lock:
                cls.active -= 1


def _intended(db: Path) -> list[str]:
    return _keys(db)


def test_the_run_keeps_a_channel_busy_with_its_declared_concurrency(tmp_path: Path) -> None:
    _Busy.active = _Busy.peak = 0
    _Busy.problems = []
    with closing(_store(tmp_path)) as store:
        planned = plan_run(store, NOW, RunSettings()).messages
        report = _run(store, _Busy, send_batch=40, folder=str(tmp_path / "out"), db=str(tmp_path / "run.db"))
        assert report.sent == len(planned) > 10 and report.failed == 0
        assert {store.outbox_get(m.key).status for m in planned} == {OutboxStatus.DONE}
        assert store.verify_audit().ok
        attempts = [a for s in store.iter_account_snapshots(batch_size=50) for a in s.attempts]
        assert sorted(a.provider_message_id or "" for a in attempts if a.at == NOW) == sorted(
            f"{message_id(m.key)}{'.eml' if m.channel is Channel.EMAIL else '.txt'}" for m in planned
        )
    assert _Busy.problems == []
    assert 1 < _Busy.peak <= 4
    sent = sorted(p.stem for p in (tmp_path / "out").iterdir())
    assert sent == sorted(message_id(m.key) for m in planned)


def test_the_run_sends_the_same_with_and_without_concurrency(tmp_path: Path) -> None:
    class One(OutboxChannel):
        capabilities = CAPABILITIES

    class Four(OutboxChannel):
        capabilities = attrs.evolve(CAPABILITIES, concurrency=4, batch_size=3)

    reports = []
    for channel in (One, Four):
        folder = tmp_path / channel.__name__
        folder.mkdir()
        with closing(_store(folder)) as store:
            report = _run(store, channel, send_batch=25, folder=str(folder / "out"))
            reports.append(
                (
                    report.sent,
                    report.suppressed,
                    sorted((i.key, i.status) for i in map(store.outbox_get, _intended(folder / "run.db"))),
                )
            )
    assert reports[0] == reports[1] and reports[0][0] > 10


class _Unsure(OutboxChannel):
    """Cannot de-duplicate, three calls at a time: at each send, how many messages handed over
    earlier are not recorded done yet (the duplicate window)."""

    capabilities = attrs.evolve(CAPABILITIES, deduplicates=False, concurrency=3)
    lock = threading.Lock()
    started: ClassVar[list[str]] = []
    windows: ClassVar[list[int]] = []

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__(settings)
        self._db = Path(settings["db"])

    def send(self, message: OutgoingMessage) -> Receipt:
        cls = type(self)
        with cls.lock:
            earlier = set(cls.started)
            cls.started.append(message.id)
        cls.windows.append(len(earlier - _done(self._db)))
        time.sleep(0.001)
        return super().send(message)


def test_a_channel_that_cannot_deduplicate_has_a_window_of_its_calls_in_flight(tmp_path: Path) -> None:
    _Unsure.started = []
    _Unsure.windows = []
    with closing(_store(tmp_path)) as store:
        report = _run(
            store, _Unsure, send_batch=1000, folder=str(tmp_path / "out"), db=str(tmp_path / "run.db")
        )
    assert report.sent == len(_Unsure.started) > 10
    # the others in flight (two) and the one just answered, whose records are being written
    assert max(_Unsure.windows) <= 3


class _Spooling(OutboxChannel):
    """The spool outbox, three calls at a time; a flush while a send is in flight is a fault."""

    capabilities = attrs.evolve(CAPABILITIES, concurrency=3)
    sending = 0
    faults: ClassVar[list[str]] = []

    def send(self, message: OutgoingMessage) -> Receipt:
        cls = type(self)
        cls.sending += 1
        try:
            time.sleep(0.001)
            return super().send(message)
        finally:
            cls.sending -= 1

    def flush(self) -> None:
        if type(self).sending:
            type(self).faults.append("flushed while sending")
        super().flush()


class _OneByOne(OutboxChannel):
    capabilities = attrs.evolve(CAPABILITIES, deduplicates=False)


def test_a_spool_sent_to_concurrently_is_flushed_only_when_its_sends_are_in(tmp_path: Path) -> None:
    _Spooling.faults = []

    class Plugin:
        @hookimpl
        def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
            return [
                MessageChannelDescriptor("spooling", _Spooling.capabilities, _Spooling),
                MessageChannelDescriptor("one-by-one", _OneByOne.capabilities, _OneByOne),
            ]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    plugins = dict.fromkeys(Channel, "spooling") | {Channel.EMAIL: "one-by-one"}
    settings = RunSettings(
        channel_plugins=plugins,
        channel_config={
            "spooling": {"folder": str(tmp_path / "spool"), "layout": "spool"},
            "one-by-one": {"folder": str(tmp_path / "mail")},
        },
        send_batch=30,
    )
    with closing(_store(tmp_path)) as store:
        planned = plan_run(store, NOW, RunSettings()).messages
        report = execute_run(store, NOW, pm, settings)
        assert report.sent == len(planned) and report.failed == 0
        assert {store.outbox_get(m.key).status for m in planned} == {OutboxStatus.DONE}
    assert _Spooling.faults == []
    spooled = sorted(m.id for m in spooled_messages(tmp_path / "spool"))
    mailed = sorted(p.stem for p in (tmp_path / "mail").iterdir())
    assert spooled == sorted(message_id(m.key) for m in planned if m.channel is not Channel.EMAIL)
    assert mailed == sorted(message_id(m.key) for m in planned if m.channel is Channel.EMAIL) != []
