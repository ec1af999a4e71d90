"""The patient pages and the provider's door, as one ASGI application (Starlette).

:func:`create_app` builds it from the same :class:`~carecollect.run.settings.RunSettings`,
store and plugin manager as the daily run. Mount it in a FastAPI or Starlette app, or
serve it alone (``carecollect web serve``). Routes (relative to where it is mounted; a
pay link is ``<pay_link_base>/<token>``, so mount the app where ``pay_link_base`` ends
in ``/p``):

=========================================  ==================================================
``GET  /p/{token}``                        the pay page: statement, amount due, ways to pay
``POST /p/{token}/pay/{provider}``         hand-off to the provider's hosted checkout
``GET  /p/{token}/receipt``                the receipt when the patient comes back
``GET|POST /p/{token}/plan``               ability to pay, the plan options and schedules
``POST /p/{token}/plan/agree``             the chosen plan, stored active (outreach stops)
``GET|POST /p/{token}/direct-debit``       a direct-debit mandate that pays the plan's instalments
``GET|POST /p/{token}/assistance``         ask for financial assistance (outreach pauses)
``GET|POST /p/{token}/dispute``            dispute the bill (outreach freezes)
``GET|POST /p/{token}/opt-out``            stop messages on one channel
``GET|POST /p/{token}/contact``            phone, hours and a contact form (with its deadline)
``POST /webhooks/{provider}``              a payment provider's webhooks (signature checked)
``POST /inbound/{channel}``                replies (STOP, HELP) through a channel plugin
``GET  /static/carecollect.css``           the one style sheet
=========================================  ==================================================

Every page is server-rendered from the package's Jinja2 templates in the patient's
language; there is no script. What the patient does is stored durably before the
answer goes out, so the next run (or dry run) already sees it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from ..run.settings import RunSettings
from ..store.base import Store
from .door import _Door
from .pages import _Pages
from .security import BodyLimit, SecurityHeaders, content_security_policy
from .settings import WebSettings
from .views import _StoreThread, log

__all__ = ["create_app"]

_HERE = Path(__file__).parent


class _Handlers(_Pages, _Door):
    """Every route's handler, sharing one state (links, store thread, limits, templates)."""


def _digest_for_log(path: str) -> str:
    """A route's shape for the log: the pay link token replaced (never the invoice id or amount)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "p":
        parts[2] = "<link " + hashlib.sha256(parts[2].encode()).hexdigest()[:8] + ">"
    return "/".join(parts)


def create_app(
    settings: RunSettings,
    store: Store | Callable[[], Store],
    plugin_manager: Any,
    *,
    web: WebSettings | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    mounts: Mapping[str, Any] | None = None,
) -> Any:
    """The patient pages and the provider's door as a Starlette (ASGI) application.

    :param settings: the run's settings (pay-link key and base, payment providers, channel
        plugins, phone, policy packs).
    :param store: the store, or a function that opens one. Every store call runs on one
        thread the app keeps for it, one at a time. A store passed in must allow use from
        that thread (``SQLiteStore(path, check_same_thread=False)``); a function is called on
        that thread, and the store it returns is closed when the app shuts down.
    :param plugin_manager: the plugin manager (:func:`~carecollect.plugins.manager.make_plugin_manager`).
    :param web: :class:`WebSettings` (defaults: strict).
    :param clock: the current instant (aware); default the system clock in UTC.
    :param mounts: extra ASGI apps by path (a simulated gateway's hosted checkout in a demo).
    :returns: the ASGI app; its ``state.carecollect_close()`` closes the store thread when the
        app is mounted in another (a mounted app's lifespan does not run).
    :raises ConfigurationError: no pay-link key in ``settings``.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route

    web = web or WebSettings()
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    thread = _StoreThread(store)
    pages = _Handlers(settings, thread, plugin_manager, web, clock)

    async def stylesheet(request: Request) -> Response:
        return FileResponse(
            _HERE / "static" / "carecollect.css", headers={"Cache-Control": "public, max-age=3600"}
        )

    routes: list[Any] = [
        Route("/p/{token}", pages.pay_page, methods=["GET"], name="pay"),
        Route("/p/{token}/pay/{provider}", pages.start_payment, methods=["POST"], name="start_payment"),
        Route("/p/{token}/receipt", pages.receipt, methods=["GET"], name="receipt"),
        Route("/p/{token}/plan", pages.plan, methods=["GET", "POST"], name="plan"),
        Route("/p/{token}/plan/agree", pages.agree_plan, methods=["POST"], name="agree_plan"),
        Route("/p/{token}/direct-debit", pages.direct_debit, methods=["GET", "POST"], name="direct_debit"),
        Route("/p/{token}/assistance", pages.assistance, methods=["GET", "POST"], name="assistance"),
        Route("/p/{token}/dispute", pages.dispute, methods=["GET", "POST"], name="dispute"),
        Route("/p/{token}/opt-out", pages.opt_out, methods=["GET", "POST"], name="opt_out"),
        Route("/p/{token}/contact", pages.contact, methods=["GET", "POST"], name="contact"),
        Route("/webhooks/{provider}", pages.webhook, methods=["POST"], name="webhook"),
        Route("/inbound/{channel}", pages.inbound, methods=["POST"], name="inbound"),
        Route("/static/carecollect.css", stylesheet, methods=["GET"], name="static"),
    ]
    routes += [Mount(path, app=sub) for path, sub in (mounts or {}).items()]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        thread.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.carecollect_close = thread.close

    async def log_requests(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            log.info(
                "%s %s %s %.0f ms",
                scope["method"],
                _digest_for_log(scope["path"]),
                status,
                (time.monotonic() - started) * 1000,
            )

    csp = content_security_policy(web.checkout_origins)
    guarded = SecurityHeaders(
        BodyLimit(log_requests, max_bytes=web.max_body_bytes), csp=csp, hsts_seconds=web.hsts_seconds
    )
    return _App(guarded, app)


class _App:
    """The guarded ASGI callable, with the Starlette app's ``state`` and ``router`` at hand."""

    def __init__(self, guarded: Any, inner: Any) -> None:
        self._guarded = guarded
        self.inner = inner
        self.state = inner.state
        self.router = inner.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._guarded(scope, receive, send)
