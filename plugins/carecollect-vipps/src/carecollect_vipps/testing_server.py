"""A local HTTP server that speaks the subset of Vipps MobilePay's APIs the plugin uses.

From the Access Token API: ``POST /accesstoken/get`` (``client_id``,
``client_secret``, ``Ocp-Apim-Subscription-Key``, ``Merchant-Serial-Number``
headers). From the ePayment API v1 (OpenAPI 1.4.1): create (``201`` with
``reference`` and, for ``WEB_REDIRECT``, ``redirectUrl``), get (``aggregate``,
``amount``, ``state``, ``paymentMethod``, ``profile``, ``pspReference``), capture,
refund and cancel (``ModificationResponse``), the test environment's
``/epayment/v1/test/payments/{reference}/approve``, and errors as RFC 7807
problems (``type``, ``title``, ``detail``, ``status``, ``traceId``).
``Idempotency-Key`` is honoured: the same key with the same request gets the
first answer, with another request a ``409``.

Test users: a push message to ``4791234567`` is approved when the merchant
next reads the payment; one to ``4798765432`` is rejected (``ABORTED``); any
other number never answers. Every state change is kept as a webhook event
(``name``, ``pspReference``, ``amount``, ``timestamp``, ``idempotencyKey``,
``success``), which :meth:`LocalVipps.deliveries` signs as the Webhooks API does.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlsplit as _split

APPROVES = "4791234567"
REJECTS = "4798765432"


class Response:
    """What the server answers: a status, a content type and a body."""

    def __init__(self, body: str | bytes, *, status: int, content_type: str) -> None:
        self.status_code = status
        self.content_type = content_type
        self.body = body.encode() if isinstance(body, str) else body

    def get_data(self) -> bytes:
        return self.body


class Request:
    """The parts of a request the routes read (headers keep their underscores, as Vipps needs)."""

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.path = _split(target).path
        self.headers = headers
        self._body = body

    def get_data(self) -> bytes:
        return self._body


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class LocalVipps:
    def __init__(self, *, client_id: str, client_secret: str, subscription_key: str, msn: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.subscription_key, self.msn = subscription_key, msn
        self.tokens: set[str] = set()
        self.token_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.payments: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._idem: dict[str, tuple[str, str, int, bytes]] = {}
        self._psp = itertools.count(2018200034)
        self._lock = threading.Lock()
        self.url = ""

    def answer(self, request: Request) -> Response:
        with self._lock:
            return self._handle(request)

    @staticmethod
    def _json(status: int, payload: Any, content_type: str = "application/json") -> Response:
        return Response(json.dumps(payload), status=status, content_type=content_type)

    def _problem(self, exc: Problem) -> Response:
        return self._json(
            exc.status,
            {
                "type": "https://developer.vippsmobilepay.com/docs/knowledge-base/errors",
                "title": exc.title,
                "detail": exc.detail,
                "status": exc.status,
                "traceId": "local-trace",
            },
            "application/problem+json",
        )

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers.items()),
                "json": json.loads(body) if body else None,
            }
        )
        h = request.headers
        try:
            if request.path == "/accesstoken/get" and request.method == "POST":
                return self._token(h)
            if h.get("Ocp-Apim-Subscription-Key") != self.subscription_key:
                raise Problem(401, "Unauthorized", "Access denied due to invalid subscription key.")
            if h.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
                raise Problem(401, "Unauthorized", "Invalid or expired access token.")
            if h.get("Merchant-Serial-Number") != self.msn:
                raise Problem(403, "Forbidden", "The merchant serial number is not allowed for this client.")
            key = h.get("Idempotency-Key")
            if request.method == "POST" and "/test/" not in request.path:
                if not key:
                    raise Problem(400, "Bad Request", "The Idempotency-Key header is required.")
                if key in self._idem:
                    path, first, status, answer = self._idem[key]
                    if (path, first) != (request.path, body.decode()):
                        raise Problem(409, "Conflict", "Idempotency key was used for a different request.")
                    return Response(answer, status=status, content_type="application/json")
            status, payload = self._route(request.method, request.path, json.loads(body) if body else {}, key)
            response = self._json(status, payload)
        except Problem as exc:
            response = self._problem(exc)
        if request.method == "POST" and request.headers.get("Idempotency-Key") and response.status_code < 500:
            key = request.headers["Idempotency-Key"]
            if key not in self._idem and response.status_code != 409:
                self._idem[key] = (request.path, body.decode(), response.status_code, response.get_data())
        return response

    def _token(self, h: Any) -> Response:
        self.token_calls += 1
        if (h.get("client_id"), h.get("client_secret"), h.get("Ocp-Apim-Subscription-Key")) != (
            self.client_id,
            self.client_secret,
            self.subscription_key,
        ):
            return self._json(401, {"error": "unauthorized_client", "error_description": "Invalid client."})
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + base64.urlsafe_b64encode(
            hashlib.sha256(str(self.token_calls).encode()).digest()
        ).decode().rstrip("=")
        self.tokens.add(token)
        now = int(time.time())
        return self._json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": "3600",
                "ext_expires_in": "3600",
                "expires_on": str(now + 3600),
                "not_before": str(now),
                "resource": "00000002-0000-0000-c000-000000000000",
                "access_token": token,
            },
        )

    def _route(self, method: str, path: str, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
        if method == "POST" and path == "/epayment/v1/payments":
            return 201, self._create(body, key)
        match = re.fullmatch(r"/epayment/v1/payments/([^/]+)(?:/(capture|refund|cancel))?", path)
        if match:
            payment = self.payments.get(match.group(1))
            if payment is None:
                raise Problem(404, "Not Found", f"Payment {match.group(1)} was not found.")
            action = match.group(2)
            if method == "GET" and action is None:
                self._customer_acts(payment)
                return 200, self._view(payment)
            if method == "POST" and action:
                return 200, getattr(self, f"_{action}")(payment, body, key)
        match = re.fullmatch(r"/epayment/v1/test/payments/([^/]+)/approve", path)
        if match and method == "POST":
            payment = self.payments.get(match.group(1))
            if payment is None or payment["state"] != "CREATED":
                raise Problem(400, "Bad Request", "Only a created payment can be approved.")
            self._set_state(payment, "AUTHORIZED", None)
            return 200, {}
        raise Problem(404, "Not Found", f"No route for {method} {path}.")

    # -- payments --------------------------------------------------------------------------------

    @staticmethod
    def _units(amount: Any) -> int:
        return int(amount["value"])

    def _create(self, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        reference = body.get("reference", "")
        if not re.fullmatch(r"[a-zA-Z0-9-]{8,50}", str(reference)):
            raise Problem(400, "Bad Request", "reference must match ^[a-zA-Z0-9-]{8,50}$.")
        amount = body.get("amount") or {}
        if amount.get("currency") not in ("NOK", "DKK", "EUR") or not isinstance(amount.get("value"), int):
            raise Problem(
                400, "Bad Request", "amount must have a currency (NOK, DKK, EUR) and an integer value."
            )
        if (body.get("paymentMethod") or {}).get("type") not in ("WALLET", "CARD"):
            raise Problem(400, "Bad Request", "paymentMethod.type must be WALLET or CARD.")
        flow = body.get("userFlow")
        if flow == "PUSH_MESSAGE" and not body.get("customer"):
            raise Problem(400, "Bad Request", "userFlow PUSH_MESSAGE requires a customer.")
        if flow == "WEB_REDIRECT" and not str(body.get("returnUrl", "")).startswith("https://"):
            raise Problem(400, "Bad Request", "userFlow WEB_REDIRECT requires an https returnUrl.")
        if flow not in ("PUSH_MESSAGE", "WEB_REDIRECT", "NATIVE_REDIRECT", "QR"):
            raise Problem(400, "Bad Request", "userFlow is required.")
        if reference in self.payments:
            raise Problem(409, "Conflict", f"A payment with reference {reference} already exists.")
        zero = {"currency": amount["currency"], "value": 0}
        payment = {
            "reference": reference,
            "amount": amount,
            "state": "CREATED",
            "aggregate": {
                "authorizedAmount": dict(zero),
                "cancelledAmount": dict(zero),
                "capturedAmount": dict(zero),
                "refundedAmount": dict(zero),
            },
            "paymentMethod": {"type": body["paymentMethod"]["type"]},
            "profile": {},
            "pspReference": str(next(self._psp)),
            "metadata": body.get("metadata"),
            "_customer": (body.get("customer") or {}).get("phoneNumber"),
            "_key": key,
        }
        self.payments[reference] = payment
        self._event(payment, "CREATED", amount["value"], key)
        answer: dict[str, Any] = {"reference": reference}
        if flow != "PUSH_MESSAGE":
            answer["redirectUrl"] = f"https://landing.vipps.no/?token=local-{reference}"
            payment["redirectUrl"] = answer["redirectUrl"]
        return answer

    def _view(self, payment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payment.items() if not k.startswith("_")}

    def _event(self, payment: dict[str, Any], name: str, units: int, key: str | None) -> None:
        self.events.append(
            {
                "msn": self.msn,
                "reference": payment["reference"],
                "pspReference": str(next(self._psp)),
                "name": name,
                "amount": {"currency": payment["amount"]["currency"], "value": units},
                "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                "idempotencyKey": key,
                "success": True,
            }
        )

    def _set_state(self, payment: dict[str, Any], state: str, key: str | None) -> None:
        payment["state"] = state
        if state == "AUTHORIZED":
            payment["aggregate"]["authorizedAmount"]["value"] = payment["amount"]["value"]
        self._event(payment, state, payment["amount"]["value"], key)

    def _customer_acts(self, payment: dict[str, Any]) -> None:
        """The test user answers the push message the first time the merchant looks."""
        if payment["state"] == "CREATED" and payment["_customer"] == APPROVES:
            self._set_state(payment, "AUTHORIZED", payment["_key"])
        elif payment["state"] == "CREATED" and payment["_customer"] == REJECTS:
            self._set_state(payment, "ABORTED", payment["_key"])

    def _modification(self, payment: dict[str, Any]) -> dict[str, Any]:
        return {
            "amount": payment["amount"],
            "state": payment["state"],
            "aggregate": payment["aggregate"],
            "pspReference": self.events[-1]["pspReference"],
            "reference": payment["reference"],
        }

    def _amount_of(self, payment: dict[str, Any], body: dict[str, Any]) -> int:
        amount = body.get("modificationAmount") or {}
        if amount.get("currency") != payment["amount"]["currency"]:
            raise Problem(400, "Bad Request", "The currency does not match the payment's.")
        units = int(amount.get("value", 0))
        if units <= 0:
            raise Problem(400, "Bad Request", "modificationAmount.value must be positive.")
        return units

    def _capture(self, payment: dict[str, Any], body: dict[str, Any], key: str | None) -> dict[str, Any]:
        units = self._amount_of(payment, body)
        agg = payment["aggregate"]
        if payment["state"] != "AUTHORIZED":
            raise Problem(400, "Bad Request", f"A payment in state {payment['state']} cannot be captured.")
        left = (
            agg["authorizedAmount"]["value"]
            - agg["capturedAmount"]["value"]
            - agg["cancelledAmount"]["value"]
        )
        if units > left:
            raise Problem(400, "Bad Request", "Capture amount is higher than the amount left to capture.")
        agg["capturedAmount"]["value"] += units
        self._event(payment, "CAPTURED", units, key)
        return self._modification(payment)

    def _refund(self, payment: dict[str, Any], body: dict[str, Any], key: str | None) -> dict[str, Any]:
        units = self._amount_of(payment, body)
        agg = payment["aggregate"]
        if units > agg["capturedAmount"]["value"] - agg["refundedAmount"]["value"]:
            raise Problem(
                400, "Bad Request", "Refund amount is higher than the captured amount left to refund."
            )
        agg["refundedAmount"]["value"] += units
        self._event(payment, "REFUNDED", units, key)
        return self._modification(payment)

    def _cancel(self, payment: dict[str, Any], body: dict[str, Any], key: str | None) -> dict[str, Any]:
        agg = payment["aggregate"]
        if payment["state"] in ("ABORTED", "EXPIRED", "TERMINATED"):
            raise Problem(400, "Bad Request", f"A payment in state {payment['state']} cannot be cancelled.")
        if payment["state"] == "CREATED":
            self._set_state(payment, "TERMINATED", key)
            return self._modification(payment)
        left = (
            agg["authorizedAmount"]["value"]
            - agg["capturedAmount"]["value"]
            - agg["cancelledAmount"]["value"]
        )
        if left <= 0:
            raise Problem(400, "Bad Request", "Nothing is left to cancel.")
        agg["cancelledAmount"]["value"] += left
        if agg["capturedAmount"]["value"] == 0:
            payment["state"] = "TERMINATED"
        self._event(payment, "CANCELLED", left, key)
        return self._modification(payment)

    def approve(self, reference: str) -> None:
        """The payer approves payment ``reference`` in the app (what the test approve endpoint does)."""
        with self._lock:
            payment = self.payments[reference]
            if payment["state"] == "CREATED":
                self._set_state(payment, "AUTHORIZED", None)

    # -- webhooks --------------------------------------------------------------------------------

    def sign(self, secret: str, url: str, body: bytes, at: dt.datetime) -> dict[str, str]:
        """The headers the Webhooks API sends (its documented HMAC scheme)."""
        date = email.utils.format_datetime(at.astimezone(dt.UTC), usegmt=True)
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signed = f"POST\n{path}\n{date};{parts.netloc};{digest}"
        signature = base64.b64encode(
            hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
        ).decode()
        return {
            "Host": parts.netloc,
            "x-ms-date": date,
            "x-ms-content-sha256": digest,
            "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
            f"&Signature={signature}",
            "Content-Type": "application/json",
        }

    def deliveries(
        self, secret: str, url: str, reference: str, at: dt.datetime
    ) -> list[tuple[dict[str, str], bytes]]:
        """Every event of payment ``reference`` as signed deliveries, in order."""
        out = []
        for event in self.events:
            if event["reference"] == reference:
                body = json.dumps(event).encode()
                out.append((self.sign(secret, url, body, at), body))
        return out


def serve(*, port: int = 0, **credentials: str) -> Generator[LocalVipps, None, None]:
    """Run a :class:`LocalVipps` on 127.0.0.1 (``port`` 0: a free one) for the duration of the generator.

    A plain :mod:`http.server`: WSGI servers drop header names with underscores
    (``client_id``), which the Access Token API requires.
    """
    app = LocalVipps(**credentials)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = app.answer(Request(self.command, self.path, self.headers, body))
            self.send_response(response.status_code)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    app.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def main(argv: list[str] | None = None) -> None:
    """``python -m carecollect_vipps.testing_server``: serve until interrupted.

    Prints the base URL to put in the provider's ``api_base`` setting. The
    credentials are test values the server checks, never a merchant's.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m carecollect_vipps.testing_server",
        description="A local server speaking the part of Vipps MobilePay's APIs carecollect-vipps uses.",
    )
    parser.add_argument("--port", type=int, default=12112, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--client-id", default="local-client-id")
    parser.add_argument("--client-secret", default="local-client-secret")
    parser.add_argument("--subscription-key", default="local-subscription-key")
    parser.add_argument("--msn", default="123456", help="the merchant serial number")
    args = parser.parse_args(argv)
    server = serve(
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        subscription_key=args.subscription_key,
        msn=args.msn,
    )
    app = next(server)
    print(f"local Vipps MobilePay API at {app.url} (api_base); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
