"""Keep a channel busy: batches, calls at the same time, a rate limit, back-pressure.

A channel declares on its :class:`~carecollect.plugins.messaging.ChannelCapabilities` how it
wants to be driven: ``batch_size`` messages per call, ``concurrency`` calls at the same time and
at most ``rate_limit`` messages per second. :class:`ChannelSender` drives it so: it groups the
messages it is given in batches, keeps up to ``concurrency`` calls in flight on threads of its
own (the caller's thread when ``concurrency`` is 1), waits on a :class:`TokenBucket` before each
call, and gives back one ``(message, result)`` pair per message **in the order the messages were
given**. A result is the :class:`~carecollect.plugins.messaging.Receipt` or the exception that
message met. :meth:`ChannelSender.submit` waits while ``concurrency`` calls are in flight (the
caller produces no faster than the channel takes).

>>> from carecollect.channels import Channel
>>> from carecollect.plugins.messaging import ChannelCapabilities, OutgoingMessage, Receipt, ReceiptStatus
>>> class Echo:
...     capabilities = ChannelCapabilities(channels={Channel.SMS}, batch_size=2, concurrency=3)
...     def send(self, message):
...         return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id="p-" + message.id)
>>> messages = [OutgoingMessage(id=f"M-{n}", channel=Channel.SMS, recipient="+4790000000", body="Due.")
...             for n in range(5)]
>>> with ChannelSender.for_channel(Echo()) as sender:
...     [(m.id, r.provider_message_id) for m, r in sender.send_all(messages)][:2]
[('M-0', 'p-M-0'), ('M-1', 'p-M-1')]
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from ..errors import PluginError, ValidationError
from .messaging import ChannelCapabilities, MessageChannel, OutgoingMessage, Receipt

__all__ = ["ChannelSender", "SendResult", "TokenBucket"]

#: What one message met: the channel's receipt, or the exception its call raised.
SendResult = Receipt | Exception


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.

    :param rate: tokens (messages) per second, positive.
    :param burst: tokens that may be spent at once after a pause (at least 1).
    :param clock: monotonic seconds (pass a fake one in tests).
    :param sleep: waits a number of seconds.
    :raises ValidationError: a rate that is not a positive number.

    >>> class Clock:
    ...     now = 0.0
    ...     def __call__(self): return self.now
    ...     def sleep(self, seconds): self.now += seconds
    >>> clock = Clock()
    >>> bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    >>> for _ in range(21):
    ...     bucket.acquire()
    >>> round(clock.now, 6)
    2.0
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValidationError("TokenBucket", "rate", "a positive number of tokens per second")
        self.rate = float(rate)
        self.burst = max(float(burst), 1.0)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def acquire(self, tokens: float = 1.0) -> None:
        """Wait until ``tokens`` are available and take them (more than ``burst`` waits longer)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= tokens:
            self._tokens -= tokens
            return
        # sleep the shortfall once and take it all: a re-check loop could spin on float rounding
        self._sleep((tokens - self._tokens) / self.rate)
        self._tokens = 0.0
        self._last = self._clock()


class ChannelSender:
    """Send through ``channel`` with a batch size, a concurrency and a rate limit.

    :param channel: the channel; ``send_batch`` is used when it has one and ``batch_size`` > 1.
    :param batch_size: messages per call.
    :param concurrency: calls in flight at most; 1 sends from the caller's thread.
    :param rate_limit: messages per second at most, ``None`` for no limit.
    :param clock: monotonic seconds, for the rate limit.
    :param sleep: waits, for the rate limit.
    :raises ValidationError: a ``batch_size`` or ``concurrency`` below 1, a bad ``rate_limit``.

    Use it as a context manager (or call :meth:`close`): its threads end with it.
    """

    def __init__(
        self,
        channel: MessageChannel,
        *,
        batch_size: int = 1,
        concurrency: int = 1,
        rate_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("concurrency", concurrency)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError("ChannelSender", name, "a positive int")
        self.channel = channel
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.bucket = (
            TokenBucket(rate_limit, burst=batch_size, clock=clock, sleep=sleep)
            if rate_limit is not None
            else None
        )
        self._batch: list[OutgoingMessage] = []
        self._flight: deque[tuple[list[OutgoingMessage], Future[list[SendResult]]]] = deque()
        self._ready: list[tuple[OutgoingMessage, SendResult]] = []
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def for_channel(
        cls,
        channel: MessageChannel,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ChannelSender:
        """A sender with the batch size, concurrency and rate limit ``channel``'s capabilities declare
        (a channel without ``capabilities`` is sent one message at a time)."""
        caps = getattr(channel, "capabilities", None)
        if not isinstance(caps, ChannelCapabilities):
            return cls(channel, clock=clock, sleep=sleep)
        return cls(
            channel,
            batch_size=caps.batch_size,
            concurrency=caps.concurrency,
            rate_limit=caps.rate_limit,
            clock=clock,
            sleep=sleep,
        )

    def __enter__(self) -> ChannelSender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Messages handed over (or waiting for their batch to fill) whose results were not taken."""
        return len(self._batch) + sum(len(items) for items, _ in self._flight) + len(self._ready)

    def _send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        send_batch = getattr(self.channel, "send_batch", None)
        if len(batch) > 1 and callable(send_batch):
            try:
                results = list(send_batch(batch))
            except Exception as exc:  # the whole call failed: every message of it met the error
                return [exc] * len(batch)
            if len(results) != len(batch):
                error = PluginError(f"send_batch returned {len(results)} results for {len(batch)} messages")
                return [error] * len(batch)
            return results
        out: list[SendResult] = []
        for message in batch:
            try:
                out.append(self.channel.send(message))
            except Exception as exc:  # handed back to the caller with the message it belongs to
                out.append(exc)
        return out

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.concurrency == 1:
            if self.bucket is not None:
                self.bucket.acquire(len(batch))
            self._ready.extend(zip(batch, self._send(batch), strict=True))
            return
        while len(self._flight) >= self.concurrency:  # back-pressure: wait for the oldest call
            items, future = self._flight.popleft()
            self._ready.extend(zip(items, future.result(), strict=True))
        if self.bucket is not None:
            self.bucket.acquire(len(batch))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="channel")
        self._flight.append((batch, self._pool.submit(self._send, batch)))

    def submit(self, message: OutgoingMessage) -> None:
        """Add ``message`` to the current batch; a full batch is handed over at once (waiting while
        ``concurrency`` calls are in flight, and for the rate limit)."""
        self._batch.append(message)
        if len(self._batch) >= self.batch_size:
            self._hand_over()

    def ready(self) -> list[tuple[OutgoingMessage, SendResult]]:
        """The results in hand, in submission order, without waiting (a later message's result
        waits for every earlier one)."""
        while self._flight and self._flight[0][1].done():
            items, future = self._flight.popleft()
            self._ready.extend(zip(items, future.result(), strict=True))
        out, self._ready = self._ready, []
        return out

    def drain(self) -> list[tuple[OutgoingMessage, SendResult]]:
        """Hand over the partial batch, wait for every call, and return every result not yet taken,
        in submission order."""
        self._hand_over()
        while self._flight:
            items, future = self._flight.popleft()
            self._ready.extend(zip(items, future.result(), strict=True))
        out, self._ready = self._ready, []
        return out

    def send_all(self, messages: Iterable[OutgoingMessage]) -> Iterator[tuple[OutgoingMessage, SendResult]]:
        """Send ``messages``; yield ``(message, result)`` in their order.

        The input is read only as fast as the channel takes it (at most ``concurrency`` calls of
        ``batch_size`` in flight).
        """
        for message in messages:
            self.submit(message)
            yield from self.ready()
        yield from self.drain()

    def close(self) -> None:
        """Wait for the calls in flight and end the threads (results not taken are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
