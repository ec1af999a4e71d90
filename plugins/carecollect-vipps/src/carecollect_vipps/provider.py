"""The Vipps MobilePay provider: the ePayment API v1 behind carecollect's payment verbs.

* An access token from ``POST /accesstoken/get`` (``client_id``, ``client_secret``,
  ``Ocp-Apim-Subscription-Key`` and ``Merchant-Serial-Number`` headers), kept until
  shortly before it expires.
* ``POST /epayment/v1/payments`` with an ``Idempotency-Key`` and a ``reference``,
  both derived from carecollect's operation id (:func:`vipps_reference`,
  :func:`vipps_idempotency_key`), so a retried operation creates nothing new.
* ``GET /epayment/v1/payments/{reference}``, and ``.../capture``, ``.../refund``,
  ``.../cancel`` with ``modificationAmount`` and their own idempotency keys.

A payment is approved by the payer in the Vipps or MobilePay app: a payment link
sends them there (``WEB_REDIRECT``), and :meth:`VippsProvider.authorize` sends a
push message to the phone number in the instrument and waits, for a bounded
time, for the payer to approve. Recurring agreements (charging a plan's
instalments without the payer) are not offered: the capabilities say so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from carecollect.errors import CareCollectError, ConfigurationError
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import (
    BasePaymentProvider,
    Instrument,
    PaymentErrorCode,
    PaymentResult,
    ProviderCapabilities,
    WebhookEvent,
    require_idempotency_key,
)
from carecollect.scrubbing import scrub, scrub_text

from .webhooks import Secret, VippsWebhookParser

__all__ = [
    "CAPABILITIES",
    "TEST_API_BASE",
    "VippsProvider",
    "VippsRequestRefused",
    "VippsUnreachable",
    "vipps_idempotency_key",
    "vipps_reference",
]

#: The test environment (test keys, the test app); production is ``https://api.vipps.no``.
TEST_API_BASE = "https://apitest.vipps.no"
PRODUCTION_API_BASE = "https://api.vipps.no"

#: Mobile payments in the Vipps or MobilePay app; reserve, then capture (in parts, several
#: times), cancel what is not captured, refund in parts. No Recurring agreements (mandates).
CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.MOBILE},
    currencies={"NOK", "DKK", "EUR"},
    countries={"NO", "DK", "FI"},
    two_step=True,
    partial_capture=True,
    multiple_captures=True,  # the ePayment API captures a reserved amount in several parts
    refunds=True,
    partial_refunds=True,
    void=True,
    payment_links=True,
    webhooks=True,
)

_MSISDN = re.compile(r"^\d{10,15}$")
_RAW_KEYS = ("reference", "state", "pspReference", "aggregate", "amount", "title", "status", "traceId")


class VippsUnreachable(CareCollectError, ConnectionError):
    """Vipps MobilePay could not be reached or answered with a server error; retry with the same key."""


class VippsRequestRefused(CareCollectError, ValueError):
    """Vipps MobilePay refused a request as malformed (a fault in the call or the settings)."""


def vipps_reference(operation_id: str) -> str:
    """The payment ``reference`` for carecollect operation ``operation_id`` (``[a-zA-Z0-9-]{8,50}``).

    >>> vipps_reference("link:A-1:2026-03-02")
    'cc-...'
    >>> len(vipps_reference("x")), vipps_reference("x") == vipps_reference("x")
    (43, True)
    """
    return "cc-" + hashlib.sha256(f"reference|{operation_id}".encode()).hexdigest()[:40]


def vipps_idempotency_key(operation_id: str, step: str = "") -> str:
    """The ``Idempotency-Key`` for ``operation_id`` (and ``step`` of it): at most 50 characters.

    >>> len(vipps_idempotency_key("charge:PLAN-7#3"))
    47
    >>> vipps_idempotency_key("a") != vipps_idempotency_key("a", "x")
    True
    """
    return "cc-" + hashlib.sha256(f"{operation_id}|{step}".encode()).hexdigest()[:44]


def _https_or_local(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    ):
        return url.rstrip("/")
    raise ConfigurationError(f"the vipps provider's {name!r} must be an https URL")


def _amount(money: Money) -> dict[str, Any]:
    return {"currency": money.currency, "value": money.minor_units}


class VippsProvider(BasePaymentProvider):
    """Vipps MobilePay's ePayment API behind carecollect's payment verbs.

    :param settings: ``client_id``, ``client_secret``, ``subscription_key`` (the
        ``Ocp-Apim-Subscription-Key``) and ``merchant_serial_number`` (all required);
        ``environment`` (``"test"``, the default, or ``"production"``) or ``api_base``;
        ``return_url`` (where the app sends the payer back; needed for payment links);
        ``payment_description`` (shown in the app, default ``"Payment on account"``: never a
        diagnosis or a treatment); ``webhook_secret`` and ``webhook_url`` (as registered with
        the Webhooks API); ``webhook_tolerance_seconds`` (default 300);
        ``approval_timeout_seconds`` (how long :meth:`authorize` waits for the payer, default
        120) and ``poll_interval_seconds`` (default 2); ``timeout_seconds`` (default 30).
    :param clock: the current time (the token's expiry); :param sleep: waits between polls.
    :raises ConfigurationError: a required setting is missing or malformed.
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [
            k
            for k in ("client_id", "client_secret", "subscription_key", "merchant_serial_number")
            if not settings.get(k)
        ]
        if missing:
            raise ConfigurationError(
                f"the vipps provider needs {', '.join(missing)}; keep secrets in the environment "
                '("env:VIPPS_CLIENT_SECRET")'
            )
        self._client_id = str(settings["client_id"])
        self._client_secret = Secret(str(settings["client_secret"]))
        self._subscription_key = Secret(str(settings["subscription_key"]))
        self.msn = str(settings["merchant_serial_number"])
        if not re.fullmatch(r"\d{4,6}", self.msn):
            raise ConfigurationError("the vipps provider's merchant_serial_number must be 4-6 digits")
        environment = str(settings.get("environment", "test"))
        if environment not in ("test", "production"):
            raise ConfigurationError("the vipps provider's environment must be 'test' or 'production'")
        default_base = PRODUCTION_API_BASE if environment == "production" else TEST_API_BASE
        self.api_base = _https_or_local("api_base", str(settings.get("api_base", default_base)))
        self._return_url = settings.get("return_url")
        if self._return_url:
            _https_or_local("return_url", str(self._return_url))
        self._description = str(settings.get("payment_description", "Payment on account"))
        if not 3 <= len(self._description) <= 100:
            raise ConfigurationError("the vipps provider's payment_description must be 3-100 characters")
        hook_secret = settings.get("webhook_secret")
        try:
            tolerance = float(settings.get("webhook_tolerance_seconds", 300))
            self._approval_timeout = float(settings.get("approval_timeout_seconds", 120))
            self._poll = float(settings.get("poll_interval_seconds", 2))
            self._timeout = float(settings.get("timeout_seconds", 30))
        except ValueError:
            raise ConfigurationError("the vipps provider's *_seconds settings must be numbers") from None
        self._webhooks = VippsWebhookParser(
            Secret(str(hook_secret)) if hook_secret else None,
            settings.get("webhook_url"),
            self.msn,
            tolerance=dt.timedelta(seconds=tolerance),
        )
        self._clock = clock
        self._sleep = sleep
        self._token: Secret | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:
        return f"VippsProvider(api_base={self.api_base!r}, msn={self.msn!r})"

    # -- HTTP ------------------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        values = [self._client_secret.reveal(), self._subscription_key.reveal()]
        if self._token is not None:
            values.append(self._token.reveal())
        return tuple(values)

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: Any | None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api_base + path, data=data, method=method)
        for name, value in headers.items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, text = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise VippsUnreachable(
                f"vipps {method} {path.split('/')[-1] or path}: no answer from {self.api_base} "
                f"({type(exc).__name__}); retry later with the same idempotency key"
            ) from None
        if status >= 500:
            raise VippsUnreachable(f"vipps: the API answered {status}; retry later with the same key")
        try:
            payload = json.loads(text) if text else {}
        except ValueError:
            payload = {}
        return status, payload if isinstance(payload, dict) else {"items": payload}

    def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._token_expires - 60:
            return self._token.reveal()
        status, payload = self._send(
            "POST",
            "/accesstoken/get",
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret.reveal(),
                "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
                "Merchant-Serial-Number": self.msn,
            },
            None,
        )
        token = payload.get("access_token")
        if status != 200 or not isinstance(token, str):
            raise ConfigurationError(
                f"vipps: the access token was refused ({status}); check client_id, client_secret, "
                "subscription_key and merchant_serial_number"
            )
        self._token = Secret(token)
        try:
            self._token_expires = float(payload.get("expires_on") or self._clock() + 3600)
        except ValueError:
            self._token_expires = self._clock() + 3600
        return token

    def _api(
        self, method: str, path: str, body: Any | None = None, *, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "Authorization": f"Bearer {self._access_token()}",
            "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
            "Merchant-Serial-Number": self.msn,
            "Vipps-System-Name": "carecollect",
            "Vipps-System-Version": "0.1",
            "Vipps-System-Plugin-Name": "carecollect-vipps",
            "Vipps-System-Plugin-Version": "0.1.0",
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        status, payload = self._send(method, path, headers, body)
        if status in (401, 403):
            self._token = None
            raise ConfigurationError(
                f"vipps: the API refused the credentials ({status}); check the subscription key and "
                "that the sales unit may use the ePayment API"
            )
        return status, payload

    def _raw(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        kept = {k: payload[k] for k in _RAW_KEYS if k in payload}
        return dict(scrub(kept, secrets=self._secrets()))

    def _message(self, payload: Mapping[str, Any], fallback: str) -> str:
        text = str(payload.get("detail") or payload.get("title") or fallback)
        return scrub_text(text, self._secrets())

    @staticmethod
    def _path(reference: str, action: str = "") -> str:
        return f"/epayment/v1/payments/{quote(reference, safe='')}" + (f"/{action}" if action else "")

    def _get(self, reference: str) -> dict[str, Any] | None:
        status, payload = self._api("GET", self._path(reference))
        return payload if status == 200 else None

    def _check(self, verb: str, amount: Money, instrument: Instrument | None = None) -> PaymentResult | None:
        if amount.currency not in self.capabilities.currencies:
            return PaymentResult.failed(
                PaymentErrorCode.CURRENCY_NOT_SUPPORTED, f"vipps {verb}: {amount.currency} is not offered"
            )
        if not amount.is_positive():
            raise VippsRequestRefused(f"vipps {verb}: the amount must be positive")
        if instrument is not None and instrument.method not in self.capabilities.methods:
            return PaymentResult.failed(
                PaymentErrorCode.METHOD_NOT_SUPPORTED,
                f"vipps {verb}: {instrument.method.value} is not offered",
            )
        return None

    def _create(self, verb: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, payload = self._api("POST", "/epayment/v1/payments", body, key=vipps_idempotency_key(key))
        if status == 409:
            return status, payload
        if status not in (200, 201):
            raise VippsRequestRefused(
                f"vipps {verb}: the payment was refused ({status}): {self._message(payload, 'no detail')}"
            )
        return status, payload

    # -- verbs -----------------------------------------------------------------------------------

    def authorize(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Ask the payer (a push message to the phone number in ``instrument``) to approve ``amount``.

        Waits up to ``approval_timeout_seconds`` for the payer; a payment not approved by then
        is cancelled and answered ``DECLINED``. The result's reference is the payment reference.
        """
        require_idempotency_key(idempotency_key, "authorize")
        refused = self._check("authorize", amount, instrument)
        if refused is not None:
            return refused
        customer = (
            {"phoneNumber": instrument.token}
            if _MSISDN.match(instrument.token)
            else {"customerToken": instrument.token}
        )
        reference = vipps_reference(idempotency_key)
        status, payload = self._create(
            "authorize",
            idempotency_key,
            {
                "amount": _amount(amount),
                "paymentMethod": {"type": "WALLET"},
                "customer": customer,
                "reference": reference,
                "userFlow": "PUSH_MESSAGE",
                "paymentDescription": self._description,
                "metadata": {"account_id": account_id},
            },
        )
        if status == 409:
            return PaymentResult.failed(
                PaymentErrorCode.IDEMPOTENCY_CONFLICT,
                "this idempotency key was used for a different payment",
                raw=self._raw(payload),
            )
        deadline = self._clock() + self._approval_timeout
        while True:
            payment = self._get(reference) or {}
            state = payment.get("state")
            if state != "CREATED" or self._clock() >= deadline:
                break
            self._sleep(self._poll)
        raw = self._raw(payment)
        if state == "AUTHORIZED":
            return PaymentResult.ok(reference, amount, raw=raw)
        if state == "CREATED":
            self._api(
                "POST", self._path(reference, "cancel"), key=vipps_idempotency_key(idempotency_key, "cancel")
            )
            return PaymentResult.failed(
                PaymentErrorCode.DECLINED,
                f"not approved in the app within {self._approval_timeout:g} s; the request was cancelled",
                reference=reference,
                raw=raw,
            )
        return PaymentResult.failed(
            PaymentErrorCode.DECLINED, f"the payment ended as {state}", reference=reference, raw=raw
        )

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """:meth:`authorize`, then capture all of it."""
        auth = self.authorize(amount, instrument, idempotency_key=idempotency_key, account_id=account_id)
        if not auth.success or auth.reference is None:
            return auth
        return self._modify(
            "capture", auth.reference, amount, vipps_idempotency_key(idempotency_key, "capture")
        )

    def _classify(
        self, verb: str, reference: str, amount: Money | None, payload: Mapping[str, Any]
    ) -> PaymentResult:
        """Why a capture, refund or cancel was refused, read from the payment's own state."""
        message = self._message(payload, f"{verb} refused")
        raw = self._raw(payload)
        payment = self._get(reference)
        if payment is None:
            return PaymentResult.failed(
                PaymentErrorCode.NOT_FOUND, "no such payment", reference=reference, raw=raw
            )
        agg = payment.get("aggregate", {})

        def units(name: str) -> int:
            return int((agg.get(name) or {}).get("value", 0))

        authorized, captured = units("authorizedAmount"), units("capturedAmount")
        cancelled = units("cancelledAmount")
        state = payment.get("state")

        def failed(code: PaymentErrorCode) -> PaymentResult:
            return PaymentResult.failed(code, message, reference=reference, raw=raw)

        currency = (payment.get("amount") or {}).get("currency")
        if amount is not None and amount.currency != currency:
            return failed(PaymentErrorCode.CURRENCY_NOT_SUPPORTED)
        if verb == "capture":
            if state == "TERMINATED" or (cancelled and authorized - captured - cancelled <= 0):
                return failed(PaymentErrorCode.ALREADY_VOIDED)
            if state != "AUTHORIZED":
                return failed(PaymentErrorCode.NOT_FOUND)
            return failed(PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED)
        if verb == "refund":
            return failed(PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE)
        if captured >= authorized and authorized:
            return failed(PaymentErrorCode.ALREADY_CAPTURED)
        if state == "TERMINATED":
            return failed(PaymentErrorCode.ALREADY_VOIDED)
        raise VippsRequestRefused(f"vipps {verb}: refused: {message}")

    def _modify(self, verb: str, reference: str, amount: Money | None, key: str) -> PaymentResult:
        body = None if amount is None else {"modificationAmount": _amount(amount)}
        status, payload = self._api("POST", self._path(reference, verb), body, key=key)
        if status == 404:
            return PaymentResult.failed(
                PaymentErrorCode.NOT_FOUND, "no such payment", reference=reference, raw=self._raw(payload)
            )
        if status == 409 and "dempoten" in str(payload.get("detail", "")):
            return PaymentResult.failed(
                PaymentErrorCode.IDEMPOTENCY_CONFLICT,
                self._message(payload, "conflict"),
                raw=self._raw(payload),
            )
        if status >= 400:
            return self._classify(verb, reference, amount, payload)
        if verb == "refund":
            return PaymentResult.ok(
                str(payload.get("pspReference") or reference), amount, raw=self._raw(payload)
            )
        return PaymentResult.ok(reference, amount, raw=self._raw(payload))

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture ``amount`` of payment ``reference`` (several partial captures may follow)."""
        require_idempotency_key(idempotency_key, "capture")
        refused = self._check("capture", amount)
        if refused is not None:
            return refused
        return self._modify("capture", reference, amount, vipps_idempotency_key(idempotency_key))

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund ``amount`` of what payment ``reference`` captured; the result's reference is Vipps's."""
        require_idempotency_key(idempotency_key, "refund")
        refused = self._check("refund", amount)
        if refused is not None:
            return refused
        return self._modify("refund", reference, amount, vipps_idempotency_key(idempotency_key))

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Cancel what payment ``reference`` has not captured."""
        require_idempotency_key(idempotency_key, "void")
        return self._modify("cancel", reference, None, vipps_idempotency_key(idempotency_key))

    def create_payment_link(
        self, amount: Money, *, idempotency_key: str, account_id: str, expires_at: dt.datetime
    ) -> PaymentResult:
        """A payment in the Vipps or MobilePay app: the result's ``url`` is Vipps's landing page.

        On a phone it opens the app; elsewhere the landing page asks for the phone number.
        The payer comes back to ``return_url``. Vipps MobilePay ends an unapproved
        ``WEB_REDIRECT`` payment itself (``expires_at`` applies only to push and QR
        payments, so it is not sent); link messages to your own pay page, which
        creates the payment when the patient arrives.
        """
        require_idempotency_key(idempotency_key, "create a payment link")
        refused = self._check("create a payment link", amount)
        if refused is not None:
            return refused
        if not self._return_url:
            raise ConfigurationError("the vipps provider needs a 'return_url' setting for payment links")
        reference = vipps_reference(idempotency_key)
        status, payload = self._create(
            "create a payment link",
            idempotency_key,
            {
                "amount": _amount(amount),
                "paymentMethod": {"type": "WALLET"},
                "reference": reference,
                "userFlow": "WEB_REDIRECT",
                "returnUrl": self._return_url,
                "paymentDescription": self._description,
                "metadata": {"account_id": account_id},
            },
        )
        if status == 409:
            return PaymentResult.failed(
                PaymentErrorCode.IDEMPOTENCY_CONFLICT,
                "this idempotency key was used for a different payment",
                raw=self._raw(payload),
            )
        return PaymentResult.ok(
            reference, amount, url=str(payload.get("redirectUrl")), raw=self._raw(payload)
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify the Webhooks API's HMAC and read the ePayment event (see :mod:`.webhooks`)."""
        return self._webhooks.parse(headers, body, now=now)
