"""Stripe webhooks: the ``Stripe-Signature`` check and what each event means to the ledger.

The signature scheme is Stripe's own: the header is ``t=<unix seconds>,v1=<hex>``
(several ``v1`` values while a secret is being rolled), and each ``v1`` is the
HMAC-SHA256, keyed with the endpoint's signing secret, of ``"<t>.<raw body>"``.
A delivery is accepted when one ``v1`` matches (compared in constant time) and
``t`` is within the tolerance (300 seconds by default) of ``now``.

Events carecollect acts on (everything else is :attr:`~carecollect.plugins.providers.WebhookKind.OTHER`,
kept in the audit log):

=====================================  =====================  ==========================================
Stripe event                           carecollect kind       reference, amount
=====================================  =====================  ==========================================
``checkout.session.completed``         ``payment.succeeded``  the session (``cs_...``), ``amount_total``
(``payment_status`` ``paid``) and
``checkout.session.async_payment_succeeded``
``checkout.session.async_payment_failed``  ``payment.failed`` the session
``payment_intent.succeeded``           ``payment.succeeded``  the PaymentIntent, ``amount_received``
(not one Checkout created)
``payment_intent.payment_failed``      ``payment.failed``     the PaymentIntent (or its session)
``refund.created``                     ``payment.refunded``   the refunded payment, the refund's amount
``charge.dispute.created``             ``chargeback.opened``  the disputed payment, the disputed amount
``payment_method.detached``            ``mandate.revoked``    the PaymentMethod (``pm_...``)
=====================================  =====================  ==========================================

A refund or a dispute names its PaymentIntent; when Checkout created that
PaymentIntent, the payment carecollect linked is the Checkout Session, so the
parser asks Stripe which session it was (one read, only for those events).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from carecollect.errors import ConfigurationError
from carecollect.money import Money
from carecollect.plugins.providers import (
    WebhookEvent,
    WebhookExpired,
    WebhookKind,
    WebhookSignatureInvalid,
)

__all__ = ["SIGNATURE_HEADER", "Secret", "StripeWebhookParser", "stripe_signature"]

#: The header Stripe signs its deliveries in.
SIGNATURE_HEADER = "Stripe-Signature"


class Secret:
    """A secret setting (an API key, a signing secret) that never shows in a repr or ``vars()``.

    >>> key = Secret("sk_test_abc123")
    >>> key, str(key), key.reveal()
    (Secret('[REDACTED]'), '[REDACTED]', 'sk_test_abc123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that sends it (the HTTP client, the HMAC)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('[REDACTED]')"

    def __str__(self) -> str:
        return "[REDACTED]"


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``v1`` signature of ``body`` at ``timestamp``: hex HMAC-SHA256 of ``"<t>.<body>"``.

    >>> stripe_signature("whsec_test", b"{}", 1772442000)[:16]
    '1fad4776ec7b9a3a'
    """
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _money(minor: Any, currency: Any) -> Money | None:
    if isinstance(minor, int) and isinstance(currency, str) and currency:
        return Money.from_minor(minor, currency.upper())
    return None


class StripeWebhookParser:
    """Verifies and reads Stripe webhook deliveries.

    :param secret: the endpoint's signing secret (``whsec_...``); ``None`` refuses every delivery
        with a :class:`~carecollect.errors.ConfigurationError`.
    :param tolerance: how far the signed time may be from ``now``.
    :param livemode: whether the API key is a live key; an event from the other mode is refused.
    :param checkout_session_for: ``payment_intent -> checkout session id or None`` (one API read).
    """

    def __init__(
        self,
        secret: Secret | None,
        *,
        tolerance: dt.timedelta,
        livemode: bool,
        checkout_session_for: Callable[[str], str | None],
    ) -> None:
        self._secret = secret
        self._tolerance = tolerance
        self._livemode = livemode
        self._session_for = checkout_session_for

    def __repr__(self) -> str:
        return f"StripeWebhookParser(tolerance={self._tolerance}, livemode={self._livemode})"

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> dt.datetime:
        """Check the signature and its time; return the signed time.

        :raises WebhookSignatureInvalid: no header, a malformed one, or no matching ``v1``.
        :raises WebhookExpired: the signed time is outside the tolerance.
        """
        if self._secret is None:
            raise ConfigurationError(
                "the stripe provider needs 'webhook_secret' (whsec_...) to take webhooks"
            )
        value = _header(headers, SIGNATURE_HEADER)
        if not value:
            raise WebhookSignatureInvalid("stripe webhook: the Stripe-Signature header is missing")
        timestamp: int | None = None
        given: list[str] = []
        for part in value.split(","):
            name, _, item = part.strip().partition("=")
            if name == "t":
                try:
                    timestamp = int(item)
                except ValueError:
                    timestamp = None
            elif name == "v1":
                given.append(item)
        if timestamp is None or not given:
            raise WebhookSignatureInvalid(
                "stripe webhook: the Stripe-Signature header is malformed (t=...,v1=...)"
            )
        expected = stripe_signature(self._secret.reveal(), body, timestamp).encode()
        if not any(hmac.compare_digest(expected, v.encode()) for v in given):
            raise WebhookSignatureInvalid(
                "stripe webhook: no signature matches the body; check the endpoint's signing secret"
            )
        signed_at = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        if abs(now - signed_at) > self._tolerance:
            raise WebhookExpired(
                f"stripe webhook: signed at {signed_at.isoformat()}, "
                f"outside {self._tolerance} of {now.isoformat()}"
            )
        return signed_at

    def parse(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify, then read the event into a :class:`~carecollect.plugins.providers.WebhookEvent`.

        :raises WebhookSignatureInvalid: see :meth:`verify`; also a body that is not a Stripe event,
            or an event from the other mode (test versus live).
        """
        self.verify(headers, body, now=now)
        try:
            event = json.loads(body)
            event_id, kind_name, created = event["id"], event["type"], int(event["created"])
            obj = event["data"]["object"]
        except (ValueError, KeyError, TypeError):
            raise WebhookSignatureInvalid("stripe webhook: the body is not a Stripe event") from None
        if not isinstance(obj, dict) or not isinstance(event_id, str):
            raise WebhookSignatureInvalid("stripe webhook: the body is not a Stripe event")
        if bool(event.get("livemode")) is not self._livemode:
            raise WebhookSignatureInvalid(
                f"stripe webhook: event {event_id} is from {'live' if event.get('livemode') else 'test'} "
                "mode, the API key from the other; check which endpoint sends here"
            )
        occurred_at = dt.datetime.fromtimestamp(created, tz=dt.UTC)
        kind, reference, amount = self._meaning(str(kind_name), obj)
        raw = {
            "type": kind_name,
            "object": obj.get("object"),
            "id": obj.get("id"),
            "status": obj.get("status"),
            "method": "card",
        }
        if kind_name.startswith("charge.dispute."):
            raw["reason"] = obj.get("reason")
        return WebhookEvent(event_id, kind, reference, occurred_at, amount, raw=raw)

    def _payment_of(self, intent: Any, charge: Any) -> str | None:
        """The reference carecollect linked for a PaymentIntent: its Checkout Session, or itself."""
        if isinstance(intent, str) and intent:
            return self._session_for(intent) or intent
        return charge if isinstance(charge, str) and charge else None

    def _meaning(self, name: str, obj: dict[str, Any]) -> tuple[WebhookKind, str | None, Money | None]:
        ident = obj.get("id")
        if name in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            if obj.get("payment_status") == "paid":
                return (
                    WebhookKind.PAYMENT_SUCCEEDED,
                    ident,
                    _money(obj.get("amount_total"), obj.get("currency")),
                )
            return WebhookKind.OTHER, ident, None
        if name == "checkout.session.async_payment_failed":
            return WebhookKind.PAYMENT_FAILED, ident, None
        from_checkout = (obj.get("metadata") or {}).get("carecollect_origin") == "checkout"
        if name == "payment_intent.succeeded":
            if from_checkout:  # the session's own event posts it, under the session's reference
                return WebhookKind.OTHER, ident, None
            return (
                WebhookKind.PAYMENT_SUCCEEDED,
                ident,
                _money(obj.get("amount_received"), obj.get("currency")),
            )
        if name == "payment_intent.payment_failed":
            reference = self._session_for(str(ident)) if from_checkout else ident
            return WebhookKind.PAYMENT_FAILED, reference or ident, None
        if name == "refund.created":
            if obj.get("status") in ("failed", "canceled"):
                return WebhookKind.OTHER, ident, None
            reference = self._payment_of(obj.get("payment_intent"), obj.get("charge"))
            return WebhookKind.REFUNDED, reference, _money(obj.get("amount"), obj.get("currency"))
        if name == "charge.dispute.created":
            reference = self._payment_of(obj.get("payment_intent"), obj.get("charge"))
            return WebhookKind.CHARGEBACK_OPENED, reference, _money(obj.get("amount"), obj.get("currency"))
        if name == "payment_method.detached":
            return WebhookKind.MANDATE_REVOKED, ident, None
        return WebhookKind.OTHER, ident if isinstance(ident, str) else None, None
