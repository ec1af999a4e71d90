"""The demo gateway's hosted checkout page: where a pay page sends the patient to pay by card.

A real gateway hosts this page itself (Stripe Checkout, Vipps, a bank's page). The demo's
page is an ASGI app (Starlette, from ``carecollect[web]``) that a test or ``carecollect web
serve`` mounts beside the patient pages. It keeps no state: the link's token carries the
reference and the amount, signed with the gateway's webhook secret, so any process with the
secret can serve it. "Pay" signs a ``payment.succeeded`` webhook, posts it to the merchant's
webhook door (``notify_url``) and sends the patient back to the ``return_url`` the pay page
gave; a return URL outside ``return_base`` is refused (no open redirect). No card data is
asked for: this is a simulation, and the page says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from carecollect.money import Money
from carecollect.plugins.providers import sign_webhook

__all__ = ["checkout_token", "create_checkout_app", "read_checkout_token"]


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, b"checkout." + payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def checkout_token(secret: bytes, reference: str, amount: Money) -> str:
    """A signed token for paying ``amount`` on ``reference`` (the last segment of the checkout URL)."""
    payload = f"{reference}.{amount.minor_units}.{amount.currency}"
    return f"{payload}.{_mac(secret, payload)}"


def read_checkout_token(secret: bytes, token: str) -> tuple[str, Money] | None:
    """The reference and amount of a token, or ``None`` when it was not signed with ``secret``."""
    parts = token.split(".")
    if len(parts) != 4:
        return None
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(secret, payload).encode(), parts[3].encode()):
        return None
    try:
        return parts[0], Money.from_minor(int(parts[1]), parts[2])
    except ValueError:
        return None


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo gateway checkout</title>
<style>
body{{font:1.125rem/1.5 system-ui,sans-serif;max-width:32rem;margin:1rem auto;padding:0 1rem;color:#1a1a1a}}
button{{font:inherit;padding:.6rem 1.2rem;background:#1d4ed8;color:#fff;border:0;border-radius:.3rem}}
button:focus-visible,a:focus-visible{{outline:3px solid #b45309;outline-offset:2px}}
a{{color:#1d4ed8}}
</style>
</head><body><main>
<h1>Demo gateway</h1>
{content}
</main></body></html>"""


def create_checkout_app(settings: Mapping[str, str]) -> Any:
    """The hosted checkout as a Starlette app (mount it at the path of the gateway's ``checkout_url``).

    :param settings: the gateway's settings: ``webhook_secret``; ``notify_url`` (the
        merchant's ``POST /webhooks/demo-gateway``); ``return_base`` (the URL every return
        URL must start with).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    secret = settings["webhook_secret"].encode()
    notify_url = settings["notify_url"]
    return_base = settings.get("return_base", "")

    def page(content: str, status: int = 200) -> HTMLResponse:
        # the style is inline, so this page carries its own CSP with a nonce for it
        nonce = secrets.token_urlsafe(12)
        body = _PAGE.format(content=content).replace("<style>", f'<style nonce="{nonce}">')
        return HTMLResponse(
            body,
            status,
            headers={
                "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; "
                "form-action 'self' "
                + (return_base or "'self'")
                + "; frame-ancestors 'none'; base-uri 'none'",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    def allowed(return_url: str) -> bool:
        return bool(return_base) and return_url.startswith(return_base)

    async def show(request: Request) -> Response:
        claim = read_checkout_token(secret, request.path_params["token"])
        return_url = request.query_params.get("return_url", "")
        if claim is None or not allowed(return_url):
            return page("<p>This payment link is not valid.</p>", 404)
        ref, amount = claim
        r = html.escape(return_url, quote=True)
        return page(
            f"<p>This is a simulated card payment: no card is needed and no money moves.</p>"
            f"<p>Amount: <strong>{html.escape(str(amount))}</strong></p>"
            f'<form method="post"><input type="hidden" name="return_url" value="{r}">'
            f'<button type="submit">Pay {html.escape(str(amount))}</button></form>'
            f'<p><a href="{r}">Cancel and go back</a></p>'
        )

    async def pay(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        claim = read_checkout_token(secret, request.path_params["token"])
        form = await request.form()
        return_url = str(form.get("return_url", ""))
        if claim is None or not allowed(return_url):
            return page("<p>This payment link is not valid.</p>", 404)
        ref, amount = claim
        body = json.dumps(
            {
                "id": f"evt_{ref}_succeeded",
                "type": "payment.succeeded",
                "reference": ref,
                "amount": amount.minor_units,
                "currency": amount.currency,
                "method": "card",
            },
            separators=(",", ":"),
        ).encode()
        headers = sign_webhook(secret, body, at=dt.datetime.fromtimestamp(int(time.time()), dt.UTC))
        req = urllib.request.Request(
            notify_url, data=body, method="POST", headers={**headers, "Content-Type": "application/json"}
        )

        def deliver() -> int:
            with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310 (configured URL)
                return int(answer.status)

        try:
            status = await run_in_threadpool(deliver)
        except (urllib.error.URLError, OSError):
            status = 0
        if not 200 <= status < 300:
            return page("<p>The payment could not be confirmed to the merchant. Please try again.</p>", 502)
        return RedirectResponse(return_url, status_code=303)

    return Starlette(
        routes=[Route("/{token}", show, methods=["GET"]), Route("/{token}", pay, methods=["POST"])]
    )
