"""Fixtures a plugin author needs: a frozen clock, domain factories, loopback SMTP and HTTP servers.

They are registered by the pytest plugin :mod:`carecollect.testing.pytest_plugin`
(installed with carecollect); a test suite without it can import them::

    from carecollect.testing.fixtures import frozen_clock, smtp_server  # noqa: F401

Heavy imports (aiosmtpd, the domain model) happen inside the fixtures, so
loading the plugin costs nothing.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

__all__ = [
    "FrozenClock",
    "LocalHTTPServer",
    "LoopbackSMTPServer",
    "RecordedRequest",
    "factories",
    "frozen_clock",
    "http_server",
    "smtp_server",
]


class FrozenClock:
    """A clock that only moves when told to.

    :param now: the starting instant (aware).
    """

    def __init__(self, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = now

    def now(self) -> dt.datetime:
        """The current instant."""
        return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move forward by ``delta``; returns the new instant."""
        self._now = self._now + delta
        return self._now


@pytest.fixture
def frozen_clock() -> FrozenClock:
    """A :class:`FrozenClock` at 2026-03-02 09:00 UTC (a Monday)."""
    from .factories import NOW

    return FrozenClock(NOW)


@pytest.fixture
def factories() -> ModuleType:
    """The :mod:`carecollect.testing.factories` module (``factories.make_payment()``...)."""
    from . import factories as module

    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LoopbackSMTPServer:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives.

    :ivar host: ``"127.0.0.1"``.
    :ivar port: the port it listens on.
    :ivar messages: ``(mail_from, rcpt_tos, content bytes)`` per message received.
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd handler: keep the message."""
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Start listening."""
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[LoopbackSMTPServer]:
    """A running :class:`LoopbackSMTPServer` (needs aiosmtpd, in carecollect's ``test`` extra)."""
    server = LoopbackSMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RecordedRequest:
    """One request the local HTTP server received."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class LocalHTTPServer:
    """A threaded :mod:`http.server` on 127.0.0.1 that answers with canned responses.

    ``server.respond("POST", "/v1/charges", 200, b'{"id": "ch_1"}')`` queues an
    answer; requests with nothing queued get 404. Every request is kept in
    :attr:`requests`.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._answers: dict[tuple[str, str], list[tuple[int, bytes, dict[str, str]]]] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                )
                queue = outer._answers.get((self.command, self.path.split("?")[0]), [])
                status, payload, headers = queue.pop(0) if queue else (404, b"{}", {})
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def respond(
        self, method: str, path: str, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Queue one answer for ``method path``."""
        self._answers.setdefault((method, path), []).append((status, body, headers or {}))

    def start(self) -> None:
        """Start serving in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A running :class:`LocalHTTPServer`."""
    server = LocalHTTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
