"""A local HTTP server that speaks the subset of Stripe's API the plugin uses.

Requests are form-encoded (``metadata[account_id]=A-1``, ``line_items[0][quantity]=1``)
as the ``stripe`` library sends them; responses and errors have the shapes of
Stripe's API reference (objects with ``id``/``object``, errors as
``{"error": {"type", "code", "decline_code", "param", "message", ...}}`` with
the documented HTTP statuses 400, 401, 402, 404). Idempotency follows Stripe's
rules: a POST with a known ``Idempotency-Key`` and the same parameters replays
the first answer (``Idempotent-Replayed: true``); other parameters give an
``idempotency_error``.

Stripe's documented test PaymentMethods drive the outcomes: ``pm_card_visa``
and ``pm_card_mastercard`` succeed, ``pm_card_chargeDeclined`` (generic),
``pm_card_chargeDeclinedInsufficientFunds``, ``pm_card_chargeDeclinedExpiredCard``,
``pm_card_chargeDeclinedFraudulent`` decline, and ``pm_card_authenticationRequired``
needs 3-D Secure on every payment. Like Stripe, a test alias becomes a new
``pm_...`` object when it is used.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"

_TEST_CARDS: dict[str, tuple[str, str, Any]] = {
    "pm_card_visa": ("visa", "4242", None),
    "pm_card_mastercard": ("mastercard", "4444", None),
    "pm_card_chargeDeclined": ("visa", "0002", ("card_declined", "generic_decline")),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", ("card_declined", "insufficient_funds")),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", ("expired_card", "expired_card")),
    "pm_card_chargeDeclinedFraudulent": ("visa", "0019", ("card_declined", "fraudulent")),
    "pm_card_authenticationRequired": ("visa", "3184", "3ds"),
}
_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "fraudulent": "Your card was declined.",
}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs into nested dicts and lists (Stripe's form encoding)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: lists(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    decoded: dict[str, Any] = lists(root)
    return decoded


class Response:
    """What the server answers: status, headers and a body."""

    def __init__(self, body: str | bytes, *, status: int, content_type: str) -> None:
        self.status_code = status
        self.headers = {"Content-Type": content_type}
        self.body = body.encode() if isinstance(body, str) else body

    def get_data(self) -> bytes:
        return self.body


class Request:
    """Method, path, query and form pairs, and headers of one request."""

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        parts = urlsplit(target)
        self.method, self.path, self.headers = method, parts.path, headers
        self.pairs = parse_qsl(parts.query, keep_blank_values=True)
        if body:
            self.pairs += parse_qsl(body.decode(), keep_blank_values=True)


class StripeError(Exception):
    def __init__(self, status: int, **error: Any) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


class LocalStripe:
    """State and routes of the local Stripe API; ``requests`` records every call for assertions."""

    def __init__(self, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.requests: list[dict[str, Any]] = []
        self.intents: dict[str, dict[str, Any]] = {}
        self.methods: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.refunded: dict[str, int] = {}
        self._idem: dict[str, tuple[str, str, str, int, bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.url = ""

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):014d}LocalStripe"

    # -- the WSGI app ----------------------------------------------------------------------------

    def answer(self, request: Request) -> Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: Request) -> Response:
        params = decode_form(request.pairs)
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "params": params,
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "content_type": request.headers.get("Content-Type", ""),
            }
        )
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            given = auth.removeprefix("Bearer ")
            return self._json(
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Invalid API Key provided: {given[:8]}****{given[-4:]}",
                    }
                },
            )
        key = request.headers.get("Idempotency-Key")
        canonical = json.dumps(params, sort_keys=True)
        if request.method == "POST" and key and key in self._idem:
            method, path, first, status, body = self._idem[key]
            if (method, path, first) != (request.method, request.path, canonical):
                return self._json(
                    400,
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the same "
                            f"parameters they were first used with. Try using a key other than '{key}' "
                            "if you meant to execute a different request.",
                        }
                    },
                )
            response = Response(body, status=status, content_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            status, payload = self._route(request.method, request.path, params)
        except StripeError as exc:
            status, payload = exc.status, {"error": exc.error}
        response = self._json(status, payload)
        if request.method == "POST" and key and status < 500:
            self._idem[key] = (request.method, request.path, canonical, status, response.get_data())
        return response

    @staticmethod
    def _json(status: int, payload: Any) -> Response:
        response = Response(json.dumps(payload), status=status, content_type="application/json")
        response.headers["Request-Id"] = "req_local"
        return response

    def _route(self, method: str, path: str, p: dict[str, Any]) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("POST", r"/v1/payment_intents", self._create_intent),
            ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", self._get_intent),
            ("POST", r"/v1/payment_intents/(?P<id>[^/]+)/capture", self._capture),
            ("POST", r"/v1/payment_intents/(?P<id>[^/]+)/cancel", self._cancel),
            ("POST", r"/v1/refunds", self._refund),
            ("GET", r"/v1/payment_methods/(?P<id>[^/]+)", self._get_method),
            ("POST", r"/v1/payment_methods/(?P<id>[^/]+)/attach", self._attach),
            ("POST", r"/v1/payment_methods/(?P<id>[^/]+)/detach", self._detach),
            ("POST", r"/v1/customers", self._create_customer),
            ("POST", r"/v1/setup_intents", self._setup),
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions", self._list_sessions),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._get_session),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return 200, handler(p, **match.groupdict())
        raise StripeError(
            404, type="invalid_request_error", message=f"Unrecognized request URL ({method}: {path})."
        )

    # -- resources -------------------------------------------------------------------------------

    @staticmethod
    def _missing(kind: str, ident: str, param: str = "id") -> StripeError:
        return StripeError(
            404,
            type="invalid_request_error",
            code="resource_missing",
            param=param,
            message=f"No such {kind}: '{ident}'",
        )

    def _method(self, ident: str, *, use: bool = True) -> dict[str, Any]:
        """A PaymentMethod; a test alias becomes a new ``pm_...`` each time it is used."""
        if ident in self.methods:
            return self.methods[ident]
        if ident not in _TEST_CARDS:
            raise self._missing("payment_method", ident, "payment_method")
        brand, last4, _ = _TEST_CARDS[ident]
        pm: dict[str, Any] = {
            "id": self._id("pm"),
            "object": "payment_method",
            "type": "card",
            "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034, "wallet": None},
            "customer": None,
            "metadata": {},
            "livemode": False,
            "created": int(time.time()),
            "_behaviour": ident,
        }
        if use:
            self.methods[pm["id"]] = pm
        return pm

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _create_intent(self, p: dict[str, Any]) -> dict[str, Any]:
        for name in ("amount", "currency"):
            if name not in p:
                raise StripeError(
                    400,
                    type="invalid_request_error",
                    code="parameter_missing",
                    param=name,
                    message=f"Missing required param: {name}.",
                )
        amount = int(p["amount"])
        if amount < 1:
            raise StripeError(
                400,
                type="invalid_request_error",
                code="amount_too_small",
                param="amount",
                message="Amount must be at least 1 unit.",
            )
        intent = {
            "id": self._id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": p["currency"],
            "capture_method": p.get("capture_method", "automatic_async"),
            "customer": p.get("customer"),
            "payment_method": None,
            "metadata": p.get("metadata", {}),
            "status": "requires_payment_method",
            "client_secret": "pi_secret_local",
            "last_payment_error": None,
            "cancellation_reason": None,
            "latest_charge": None,
            "livemode": False,
            "created": int(time.time()),
        }
        self.intents[intent["id"]] = intent
        if "payment_method" in p:
            pm = self._method(p["payment_method"])
            if pm["customer"] and pm["customer"] != p.get("customer"):
                raise StripeError(
                    400,
                    type="invalid_request_error",
                    param="payment_method",
                    message="The provided PaymentMethod was previously attached to a Customer. Pass the "
                    "Customer's id in the `customer` parameter.",
                )
            intent["payment_method"] = pm["id"]
            intent["status"] = "requires_confirmation"
            if p.get("confirm") == "true":
                self._confirm(intent, pm, off_session=p.get("off_session") == "true")
        return self._public(intent)

    def _confirm(self, intent: dict[str, Any], pm: dict[str, Any], *, off_session: bool) -> None:
        outcome = _TEST_CARDS[pm["_behaviour"]][2]
        if outcome == "3ds":
            if off_session:
                intent["status"] = "requires_payment_method"
                error = {
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                    "doc_url": "https://stripe.com/docs/error-codes/authentication-required",
                }
                intent["last_payment_error"] = error
                raise StripeError(402, **error, payment_intent=self._public(intent))
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk"}
            return
        if outcome is not None:
            code, decline = outcome
            intent["status"] = "requires_payment_method"
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline,
                "message": _MESSAGES[decline],
                "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            }
            intent["last_payment_error"] = error
            raise StripeError(402, **error, payment_intent=self._public(intent))
        intent["latest_charge"] = self._id("ch")
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]

    def _intent(self, ident: str) -> dict[str, Any]:
        if ident not in self.intents:
            raise self._missing("payment_intent", ident, "intent")
        return self.intents[ident]

    def _get_intent(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        return self._public(self._intent(id))

    def _unexpected(self, intent: dict[str, Any], action: str, allowed: str) -> StripeError:
        return StripeError(
            400,
            type="invalid_request_error",
            code="payment_intent_unexpected_state",
            message=f"This PaymentIntent could not be {action} because it has a status of "
            f"{intent['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be {action}: {allowed}.",
            payment_intent=self._public(intent),
        )

    def _capture(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        intent = self._intent(id)
        if intent["status"] != "requires_capture":
            raise self._unexpected(intent, "captured", "requires_capture")
        amount = int(p.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            raise StripeError(
                400,
                type="invalid_request_error",
                code="amount_too_large",
                param="amount_to_capture",
                message="The amount_to_capture must be less than or equal to the amount_capturable.",
            )
        intent |= {"status": "succeeded", "amount_received": amount, "amount_capturable": 0}
        return self._public(intent)

    def _cancel(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        intent = self._intent(id)
        allowed = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
        if intent["status"] not in allowed:
            raise self._unexpected(intent, "canceled", ", ".join(allowed))
        intent |= {
            "status": "canceled",
            "amount_capturable": 0,
            "cancellation_reason": "requested_by_customer",
        }
        return self._public(intent)

    def _refund(self, p: dict[str, Any]) -> dict[str, Any]:
        intent = self._intent(p.get("payment_intent", ""))
        if intent["status"] != "succeeded":
            raise StripeError(
                400,
                type="invalid_request_error",
                param="payment_intent",
                message="This PaymentIntent does not have a successful charge to refund.",
            )
        left = intent["amount_received"] - self.refunded.get(intent["id"], 0)
        if left <= 0:
            raise StripeError(
                400,
                type="invalid_request_error",
                code="charge_already_refunded",
                message=f"Charge {intent['latest_charge']} has already been refunded.",
            )
        amount = int(p.get("amount", left))
        if amount > left:
            raise StripeError(
                400,
                type="invalid_request_error",
                param="amount",
                message=f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            )
        self.refunded[intent["id"]] = self.refunded.get(intent["id"], 0) + amount
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": "succeeded",
            "reason": p.get("reason"),
            "metadata": p.get("metadata", {}),
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        return refund

    def _get_method(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        if id in _TEST_CARDS:
            return self._public(self._method(id, use=False))
        return self._public(self._method(id))

    def _attach(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        if p.get("customer") not in self.customers:
            raise self._missing("customer", str(p.get("customer")), "customer")
        pm = self._method(id)
        if _TEST_CARDS[pm["_behaviour"]][2] not in (None, "3ds"):
            code, decline = _TEST_CARDS[pm["_behaviour"]][2]
            raise StripeError(
                402, type="card_error", code=code, decline_code=decline, message=_MESSAGES[decline]
            )
        pm["customer"] = p["customer"]
        return self._public(pm)

    def _detach(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        pm = self._method(id)
        if pm["customer"] is None:
            raise StripeError(
                400,
                type="invalid_request_error",
                message="The payment method you provided is not attached to a customer so detachment is "
                "impossible.",
            )
        pm["customer"] = None
        return self._public(pm)

    def _create_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "metadata": p.get("metadata", {}),
            "livemode": False,
            "created": int(time.time()),
        }
        self.customers[customer["id"]] = customer
        return customer

    def _setup(self, p: dict[str, Any]) -> dict[str, Any]:
        pm = self._method(p.get("payment_method", ""))
        setup = {
            "id": self._id("seti"),
            "object": "setup_intent",
            "payment_method": pm["id"],
            "customer": p.get("customer"),
            "usage": p.get("usage", "off_session"),
            "status": "succeeded",
            "client_secret": "seti_secret_local",
            "livemode": False,
            "created": int(time.time()),
        }
        outcome = _TEST_CARDS[pm["_behaviour"]][2]
        if outcome == "3ds":
            setup["status"] = "requires_action"
        elif outcome is not None:
            code, decline = outcome
            setup["status"] = "requires_payment_method"
            raise StripeError(
                402, type="card_error", code=code, decline_code=decline, message=_MESSAGES[decline],
                setup_intent=setup,
            )  # fmt: skip
        return setup

    def _create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("mode") != "payment":
            raise StripeError(400, type="invalid_request_error", param="mode", message="Invalid mode.")
        if "success_url" not in p:
            raise StripeError(
                400,
                type="invalid_request_error",
                code="parameter_missing",
                param="success_url",
                message="Missing required param: success_url.",
            )
        items = p.get("line_items") or []
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        ident = self._id("cs_test")
        now = int(time.time())
        expires = int(p.get("expires_at", now + 86400))
        if not now + 1800 - 60 <= expires <= now + 86400 + 60:
            raise StripeError(
                400,
                type="invalid_request_error",
                param="expires_at",
                message="The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            )
        session = {
            "id": ident,
            "object": "checkout.session",
            "mode": "payment",
            "url": f"https://checkout.stripe.com/c/pay/{ident}",
            "amount_total": total,
            "currency": items[0]["price_data"]["currency"] if items else None,
            "payment_status": "unpaid",
            "status": "open",
            "payment_intent": None,
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}),
            "success_url": p["success_url"],
            "cancel_url": p.get("cancel_url"),
            "expires_at": expires,
            "livemode": False,
            "created": now,
            "_intent_metadata": (p.get("payment_intent_data") or {}).get("metadata", {}),
        }
        self.sessions[ident] = session
        return self._public(session)

    def _list_sessions(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [
            self._public(s)
            for s in self.sessions.values()
            if "payment_intent" not in p or s["payment_intent"] == p["payment_intent"]
        ]
        return {"object": "list", "data": found[: int(p.get("limit", 10))], "has_more": False,
                "url": "/v1/checkout/sessions"}  # fmt: skip

    def _get_session(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        if id not in self.sessions:
            raise self._missing("checkout.session", id, "session")
        return self._public(self.sessions[id])

    # -- what the patient or the bank does (test helpers) ----------------------------------------

    def pay_session(self, session_id: str) -> dict[str, Any]:
        """The patient pays on the Checkout page: a PaymentIntent succeeds; returns the session."""
        with self._lock:
            session = self.sessions[session_id]
            pm = self._method("pm_card_visa")
            intent = {
                "id": self._id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_capturable": 0,
                "amount_received": session["amount_total"],
                "currency": session["currency"],
                "capture_method": "automatic_async",
                "customer": None,
                "payment_method": pm["id"],
                "metadata": dict(session["_intent_metadata"]),
                "status": "succeeded",
                "latest_charge": self._id("ch"),
                "livemode": False,
                "created": int(time.time()),
            }
            self.intents[intent["id"]] = intent
            session |= {"payment_intent": intent["id"], "payment_status": "paid", "status": "complete"}
            return self._public(session)

    def dispute(self, intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """The cardholder's bank opens a dispute; returns the Dispute object."""
        intent = self.intents[intent_id]
        return {
            "id": self._id("dp"),
            "object": "dispute",
            "amount": intent["amount_received"] if amount is None else amount,
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent["id"],
            "reason": "fraudulent",
            "status": "needs_response",
            "is_charge_refundable": False,
            "metadata": {},
            "livemode": False,
            "created": int(time.time()),
        }

    def event(self, kind: str, obj: dict[str, Any], *, created: int, event_id: str | None = None) -> bytes:
        """The body of an event delivery, as Stripe sends it."""
        return json.dumps(
            {
                "id": event_id or self._id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": created,
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": kind,
            },
            separators=(",", ":"),
        ).encode()

    def signed(self, body: bytes, *, at: int) -> dict[str, str]:
        """The headers of a delivery of ``body`` signed at unix time ``at``."""
        mac = hmac.new(self.webhook_secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={at},v1={mac}", "Content-Type": "application/json; charset=utf-8"}


def serve(api_key: str, webhook_secret: str, port: int = 0) -> Generator[LocalStripe, None, None]:
    """Run a :class:`LocalStripe` on 127.0.0.1 (``port`` 0: a free one) for the duration of the generator."""
    app = LocalStripe(api_key, webhook_secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the library's HTTP client expects

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = app.answer(Request(self.command, self.path, self.headers, body))
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_DELETE = _serve

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
    """``python -m carecollect_stripe.testing_server``: serve until interrupted.

    Prints the base URL to put in the provider's ``api_base`` setting. The key and
    secret are test values the server checks, never a Stripe account's.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m carecollect_stripe.testing_server",
        description="A local server speaking the part of Stripe's API carecollect-stripe uses.",
    )
    parser.add_argument("--port", type=int, default=12111, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--api-key", default="sk_test_local", help="the secret key it accepts")
    parser.add_argument("--webhook-secret", default="whsec_local", help="the secret it signs events with")
    args = parser.parse_args(argv)
    server = serve(args.api_key, args.webhook_secret, port=args.port)
    app = next(server)
    print(f"local Stripe API at {app.url} (api_base); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
