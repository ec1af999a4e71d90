"""Vipps MobilePay webhooks: the Webhooks API's HMAC check and what each ePayment event means.

A delivery carries ``x-ms-date`` (RFC 1123), ``x-ms-content-sha256`` (base64
SHA-256 of the body) and ``Authorization: HMAC-SHA256
SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64>``, where
the signature is the HMAC-SHA256, keyed with the secret Vipps MobilePay gave
when the webhook was registered, of::

    POST\\n<path and query of the webhook URL>\\n<x-ms-date>;<host of the URL>;<content hash>

The URL is the one registered (a setting), not what a proxy forwards. A
delivery is accepted when the content hash matches the body, the signature
matches (constant-time compare) and ``x-ms-date`` is within the tolerance.

ePayment events (``epayments.payment.<name>.v1``) and what carecollect does:

==============================  =====================  =======================================
event ``name``                  carecollect kind       effect on the ledger
==============================  =====================  =======================================
``CAPTURED`` (``success``)      ``payment.succeeded``  the linked payment is posted, once
``REFUNDED`` (``success``)      ``payment.refunded``   that amount of the payment is taken back
``ABORTED``, ``EXPIRED``        ``payment.failed``     nothing (no money had moved)
``CREATED``, ``AUTHORIZED``,    ``other``              audit log only
``CANCELLED``, ``TERMINATED``,
an event with ``success`` false
==============================  =====================  =======================================

The event id (the idempotency key of a delivery) is the event's
``pspReference``, which Vipps MobilePay gives each event of a payment.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from carecollect.errors import ConfigurationError
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import WebhookEvent, WebhookExpired, WebhookKind, WebhookSignatureInvalid

__all__ = ["Secret", "VippsWebhookParser", "sign_vipps_webhook", "vipps_signature"]

_PREFIX = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="


class Secret:
    """A secret setting that never shows in a repr or ``vars()``.

    >>> Secret("s3cret"), Secret("s3cret").reveal()
    (Secret('[REDACTED]'), 's3cret')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that uses it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('[REDACTED]')"

    def __str__(self) -> str:
        return "[REDACTED]"


def content_hash(body: bytes) -> str:
    """Base64 SHA-256 of ``body`` (the ``x-ms-content-sha256`` header)."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def vipps_signature(secret: str, url: str, date: str, body_hash: str) -> str:
    """The base64 HMAC-SHA256 signature of a delivery to ``url``.

    The documented example (Webhooks API, *Request authentication*):

    >>> vipps_signature(
    ...     "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==",
    ...     "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63",
    ...     "Thu, 30 Mar 2023 08:38:32 GMT",
    ...     "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=",
    ... )
    'agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U='
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    signed = f"POST\n{path}\n{date};{parts.netloc};{body_hash}"
    return base64.b64encode(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()).decode()


def sign_vipps_webhook(secret: str, url: str, body: bytes, *, at: dt.datetime) -> dict[str, str]:
    """The headers Vipps MobilePay sends with ``body`` to ``url`` at ``at`` (for tests and tutorials)."""
    date = email.utils.format_datetime(at.astimezone(dt.UTC), usegmt=True)
    digest = content_hash(body)
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": digest,
        "host": urlsplit(url).netloc,
        "Authorization": _PREFIX + vipps_signature(secret, url, date, digest),
        "Content-Type": "application/json",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


class VippsWebhookParser:
    """Verifies and reads ePayment webhook deliveries.

    :param secret: the webhook registration's secret (``None`` refuses every delivery with a
        :class:`~carecollect.errors.ConfigurationError`).
    :param url: the URL the webhook was registered with.
    :param msn: the merchant serial number; an event for another sales unit is refused.
    :param tolerance: how far ``x-ms-date`` may be from ``now``.
    """

    def __init__(self, secret: Secret | None, url: str | None, msn: str, *, tolerance: dt.timedelta) -> None:
        self._secret = secret
        self._url = url
        self._msn = msn
        self._tolerance = tolerance

    def __repr__(self) -> str:
        return f"VippsWebhookParser(url={self._url!r}, tolerance={self._tolerance})"

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> dt.datetime:
        """Check the content hash, the signature and the date; return the signed date.

        :raises WebhookSignatureInvalid: a header missing or malformed, or no match.
        :raises WebhookExpired: ``x-ms-date`` is outside the tolerance.
        """
        if self._secret is None or not self._url:
            raise ConfigurationError(
                "the vipps provider needs 'webhook_secret' and 'webhook_url' (as registered) to take webhooks"
            )
        date = _header(headers, "x-ms-date")
        digest = _header(headers, "x-ms-content-sha256")
        auth = _header(headers, "authorization")
        if not date or not digest or not auth:
            raise WebhookSignatureInvalid(
                "vipps webhook: x-ms-date, x-ms-content-sha256 or Authorization is missing"
            )
        if not hmac.compare_digest(digest.encode(), content_hash(body).encode()):
            raise WebhookSignatureInvalid("vipps webhook: the content hash does not match the body")
        expected = _PREFIX + vipps_signature(self._secret.reveal(), self._url, date, digest)
        if not hmac.compare_digest(auth.encode(), expected.encode()):
            raise WebhookSignatureInvalid(
                "vipps webhook: the signature does not match; check 'webhook_secret' and 'webhook_url'"
            )
        try:
            signed_at = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise WebhookSignatureInvalid("vipps webhook: x-ms-date is not an HTTP date") from None
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=dt.UTC)
        if abs(now - signed_at) > self._tolerance:
            raise WebhookExpired(f"vipps webhook: signed outside {self._tolerance} of {now.isoformat()}")
        return signed_at

    def parse(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify, then read the event.

        :raises WebhookSignatureInvalid: see :meth:`verify`; also a body that is not an ePayment
            event, or one for another merchant serial number.
        """
        signed_at = self.verify(headers, body, now=now)
        try:
            data: dict[str, Any] = json.loads(body)
            event_id = str(data["pspReference"])
            name = str(data["name"])
            reference = str(data["reference"])
            amount = Money.from_minor(int(data["amount"]["value"]), str(data["amount"]["currency"]))
        except (ValueError, KeyError, TypeError):
            raise WebhookSignatureInvalid("vipps webhook: the body is not an ePayment event") from None
        if str(data.get("msn", self._msn)) != self._msn:
            raise WebhookSignatureInvalid("vipps webhook: the event is for another merchant serial number")
        try:
            occurred_at = dt.datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            occurred_at = signed_at
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=dt.UTC)
        success = data.get("success") is True
        kind = WebhookKind.OTHER
        if success and name == "CAPTURED":
            kind = WebhookKind.PAYMENT_SUCCEEDED
        elif success and name == "REFUNDED":
            kind = WebhookKind.REFUNDED
        elif name in ("ABORTED", "EXPIRED"):
            kind = WebhookKind.PAYMENT_FAILED
        raw = {"name": name, "success": success, "method": PaymentMethod.MOBILE.value}
        return WebhookEvent(event_id, kind, reference, occurred_at, amount, raw=raw)
