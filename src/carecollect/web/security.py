"""What guards the patient pages: headers, body size, rate limits and form tokens.

* :class:`SecurityHeaders` puts strict headers on every answer: a Content Security
  Policy with no script at all (``script-src 'none'``, styles only from the app's own
  file), ``frame-ancestors 'none'``, HSTS, ``Referrer-Policy: no-referrer`` (a pay
  link never leaks to another site through the ``Referer`` header),
  ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store``.
* :class:`BodyLimit` refuses a request body over a size (``413``) before the app reads
  it, whether the client announced its length or streams it.
* :class:`RateLimiter` is an in-process token bucket per key (the client's IP, the pay
  link). It is per process: behind several workers each holds its own buckets, so the
  effective limit is the sum; put a shared limiter (the reverse proxy's) in front when
  that matters. Memory stays bounded: the oldest idle buckets are dropped.
* :class:`FormTokens` protects every form against cross-site request forgery with a
  *signed double-submit* token: a random value in a ``Secure``, ``HttpOnly``,
  ``SameSite=Strict`` cookie, and in the form an HMAC of that value bound to the pay
  link. A forged form from another site has neither the cookie (SameSite) nor the
  HMAC (it does not know the key).

>>> limiter = RateLimiter(capacity=2, per_second=1.0)
>>> [limiter.allow("ip:1", now=0.0) for _ in range(3)]
[True, True, False]
>>> limiter.allow("ip:1", now=1.0)
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "FormTokens", "RateLimiter", "SecurityHeaders", "content_security_policy"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' Content Security Policy.

    :param form_targets: origins a form may be sent to or redirected to besides the app itself
        (a payment provider's hosted checkout: browsers check ``form-action`` on the redirect).

    >>> content_security_policy(("https://checkout.example",)).split("; ")[:3]
    ["default-src 'self'", "script-src 'none'", "style-src 'self'"]
    """
    targets = " ".join(("'self'", *form_targets))
    return (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: strict security headers on every HTTP answer.

    :param app: the app to wrap.
    :param csp: the Content Security Policy (see :func:`content_security_policy`).
    :param hsts_seconds: ``Strict-Transport-Security`` max-age (0: no HSTS header).
    """

    def __init__(self, app: ASGIApp, *, csp: str, hsts_seconds: int = 31_536_000) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if hsts_seconds:
            self.headers.append((b"strict-transport-security", f"max-age={hsts_seconds}".encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                names = {name.lower() for name, _ in given}
                extra = [(n, v) for n, v in self.headers if n not in names]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = given + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: refuse a request body larger than ``max_bytes`` with ``413``.

    The body is read (at most ``max_bytes``) before the app sees it, then handed on
    unchanged; a longer body is answered ``413 Payload Too Large`` and the app never runs.

    :param app: the app to wrap.
    :param max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": b"request body too large\n"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = self.max_bytes + 1
                if announced > self.max_bytes:
                    await self._refuse(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RateLimiter:
    """Token buckets by key: ``capacity`` requests at once, refilled at ``per_second``.

    Thread-safe; keeps at most ``max_keys`` buckets (the least recently used go first).

    :param capacity: the burst a key may make.
    :param per_second: tokens added per second.
    :param max_keys: buckets kept.
    """

    def __init__(self, *, capacity: int, per_second: float, max_keys: int = 100_000) -> None:
        self.capacity = float(capacity)
        self.per_second = per_second
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, *, now: float) -> bool:
        """Take one token for ``key`` at monotonic time ``now``; False when the bucket is empty."""
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return allowed

    def retry_after(self) -> int:
        """Seconds until one token is back (for the ``Retry-After`` header)."""
        return max(1, int(1.0 / self.per_second + 0.999))


class FormTokens:
    """Signed double-submit tokens against cross-site request forgery.

    :param key: the secret (at least 32 bytes), derived from the pay-link key.

    >>> tokens = FormTokens(b"k" * 32)
    >>> cookie = tokens.new_cookie()
    >>> field = tokens.field(cookie, "link-token")
    >>> tokens.check(cookie, field, "link-token"), tokens.check(cookie, field, "other-link")
    (True, False)
    >>> tokens.check(None, field, "link-token"), tokens.check(cookie, None, "link-token")
    (False, False)
    """

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"carecollect.web form tokens", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "FormTokens(key=<redacted>)"

    @staticmethod
    def new_cookie() -> str:
        """A fresh random cookie value."""
        return secrets.token_urlsafe(24)

    def field(self, cookie: str, bound_to: str) -> str:
        """The form field for ``cookie`` on the page of ``bound_to`` (the pay link)."""
        mac = hmac.new(self._key, f"{cookie}|{bound_to}".encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode()

    def check(self, cookie: str | None, field: str | None, bound_to: str) -> bool:
        """True when the form's field matches the cookie for this link (constant-time)."""
        if not cookie or not field:
            return False
        return hmac.compare_digest(self.field(cookie, bound_to).encode(), field.encode())
