"""The Stripe payment provider: PaymentIntents, saved cards, Checkout Sessions and refunds.

Every call goes through the official :mod:`stripe` library (a
:class:`stripe.StripeClient` of its own, never the library's global
settings), and every mutating call carries an idempotency key derived from
carecollect's operation id (:func:`stripe_idempotency_key`), so a retried
run moves money once and Stripe answers a reused key with the first response.

Declines come back as :class:`~carecollect.plugins.providers.PaymentResult` failures
with a :class:`~carecollect.plugins.providers.PaymentErrorCode`; exceptions are kept
for misconfiguration (a refused API key: :class:`~carecollect.errors.ConfigurationError`)
and transport (:class:`StripeUnreachable`, also a :class:`ConnectionError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import stripe
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

from .webhooks import Secret, StripeWebhookParser

__all__ = [
    "CAPABILITIES",
    "StripeProvider",
    "StripeRequestRefused",
    "StripeUnreachable",
    "stripe_idempotency_key",
]

#: Cards, with Apple Pay and Google Pay as card wallets (Stripe charges them as cards).
#: One capture per authorisation: a partial capture releases the rest (Stripe's rule).
CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.CARD, PaymentMethod.MOBILE},
    currencies={"EUR", "NOK", "SEK", "DKK", "USD", "GBP", "CHF", "PLN", "BGN"},
    two_step=True,
    partial_capture=True,
    refunds=True,
    partial_refunds=True,
    void=True,
    verify=True,
    mandates=True,
    payment_links=True,
    webhooks=True,
)

#: Stripe allows a Checkout Session to live between 30 minutes and 24 hours.
_SESSION_MIN = dt.timedelta(minutes=30)
_SESSION_MAX = dt.timedelta(hours=24)

#: What of a Stripe object a result keeps (the rest is dropped, then scrubbed).
_RAW_KEYS = (
    "id",
    "object",
    "status",
    "amount",
    "amount_capturable",
    "amount_received",
    "amount_total",
    "currency",
    "capture_method",
    "cancellation_reason",
    "payment_status",
    "livemode",
    "created",
)
_ERROR_KEYS = ("type", "code", "decline_code", "param", "doc_url", "request_log_url")

_DECLINES = {
    "insufficient_funds": PaymentErrorCode.INSUFFICIENT_FUNDS,
    "expired_card": PaymentErrorCode.EXPIRED_INSTRUMENT,
    "incorrect_number": PaymentErrorCode.INVALID_INSTRUMENT,
    "invalid_number": PaymentErrorCode.INVALID_INSTRUMENT,
    "invalid_expiry_month": PaymentErrorCode.INVALID_INSTRUMENT,
    "invalid_expiry_year": PaymentErrorCode.INVALID_INSTRUMENT,
    "incorrect_cvc": PaymentErrorCode.INVALID_INSTRUMENT,
    "invalid_cvc": PaymentErrorCode.INVALID_INSTRUMENT,
    "fraudulent": PaymentErrorCode.FRAUD_SUSPECTED,
    "stolen_card": PaymentErrorCode.FRAUD_SUSPECTED,
    "lost_card": PaymentErrorCode.FRAUD_SUSPECTED,
    "pickup_card": PaymentErrorCode.FRAUD_SUSPECTED,
    "merchant_blacklist": PaymentErrorCode.FRAUD_SUSPECTED,
    "authentication_required": PaymentErrorCode.AUTHENTICATION_REQUIRED,
    "processing_error": PaymentErrorCode.PROCESSING_ERROR,
    "try_again_later": PaymentErrorCode.PROCESSING_ERROR,
    "currency_not_supported": PaymentErrorCode.CURRENCY_NOT_SUPPORTED,
}


class StripeUnreachable(CareCollectError, ConnectionError):
    """Stripe could not be reached or did not answer; retry later with the same idempotency key."""


class StripeRequestRefused(CareCollectError, ValueError):
    """Stripe refused a request as malformed: a fault in the call or the account's setup, not a decline."""


def stripe_idempotency_key(operation_id: str, step: str = "") -> str:
    """The ``Idempotency-Key`` sent to Stripe for carecollect operation ``operation_id``.

    Deterministic, so a retried operation sends the same key; an operation
    that makes more than one mutating call names each ``step``. Keys longer
    than Stripe's 255 characters are replaced by their SHA-256.

    >>> stripe_idempotency_key("PLAN-7-3")
    'carecollect:PLAN-7-3'
    >>> stripe_idempotency_key("M-1", "attach")
    'carecollect:M-1:attach'
    >>> len(stripe_idempotency_key("x" * 300))
    76
    """
    key = f"carecollect:{operation_id}" + (f":{step}" if step else "")
    if len(key) > 255:
        key = "carecollect:sha256:" + hashlib.sha256(key.encode()).hexdigest()[:57]
    return key


class _NoBodies(logging.Filter):
    """Drops the ``stripe`` library's debug records that carry request and response bodies.

    Those bodies hold client secrets, card details and metadata; the library's other
    records (method, URL, status, request id) pass, scrubbed.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith(("message='API response body'", "message='Post details'")):
            return False
        record.msg, record.args = scrub_text(text), None
        return True


def _quiet_library_bodies() -> None:
    logger = logging.getLogger("stripe")
    if not any(isinstance(f, _NoBodies) for f in logger.filters):
        logger.addFilter(_NoBodies())
    if "debug" in (str(getattr(stripe, "log", "") or ""), os.environ.get("STRIPE_LOG", "")):
        raise ConfigurationError(
            "the stripe library's debug output is on (stripe.log or STRIPE_LOG = 'debug'): it prints "
            "payment bodies to stderr unscrubbed; turn it off ('info' is fine) before using the provider"
        )


def _local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def _https_or_local(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _local(url)):
        return url
    raise ConfigurationError(f"the stripe provider's {name!r} must be an https URL")


class StripeProvider(BasePaymentProvider):
    """Stripe behind carecollect's payment verbs (see the module docs and ``docs/extend/stripe``).

    :param settings: ``api_key`` (required: a secret ``sk_...`` or restricted ``rk_...`` key),
        ``webhook_secret`` (the endpoint's ``whsec_...``; needed to take webhooks),
        ``success_url`` and ``cancel_url`` (where Checkout sends the patient back; needed
        for payment links), ``product_name`` (the line shown on Checkout, default
        ``"Payment on account"``: never a diagnosis or a treatment), ``api_base`` (default
        Stripe's own; an ``http://127.0.0.1`` address for a local test server),
        ``webhook_tolerance_seconds`` (default 300), ``timeout_seconds`` (default 30),
        ``max_network_retries`` (default 2).
    :param clock: the current time (for the Checkout Session's expiry); the system clock by default.
    :raises ConfigurationError: no ``api_key``, a publishable key, or a bad URL or number.
    """

    capabilities = CAPABILITIES

    def __init__(
        self, settings: Mapping[str, str], *, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        _quiet_library_bodies()
        api_key = str(settings.get("api_key", ""))
        if not api_key.startswith(("sk_", "rk_")):
            raise ConfigurationError(
                "the stripe provider needs 'api_key': a secret key (sk_test_..., sk_live_...) "
                'or a restricted key (rk_...); keep it in the environment ("env:STRIPE_API_KEY")'
            )
        self._api_key = Secret(api_key)
        hook_secret = str(settings.get("webhook_secret", ""))
        self._webhook_secret = Secret(hook_secret) if hook_secret else None
        self.livemode = "_live_" in api_key
        self.api_base = _https_or_local("api_base", str(settings.get("api_base", stripe.DEFAULT_API_BASE)))
        self._success_url = settings.get("success_url")
        self._cancel_url = settings.get("cancel_url")
        for name in ("success_url", "cancel_url"):
            if settings.get(name):
                _https_or_local(name, str(settings[name]))
        self._product_name = str(settings.get("product_name", "Payment on account"))
        try:
            tolerance = int(settings.get("webhook_tolerance_seconds", 300))
            timeout = float(settings.get("timeout_seconds", 30))
            retries = int(settings.get("max_network_retries", 2))
        except ValueError:
            raise ConfigurationError(
                "the stripe provider's webhook_tolerance_seconds, timeout_seconds and "
                "max_network_retries must be numbers"
            ) from None
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        http_client = stripe.new_default_http_client(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.api_base},
            max_network_retries=retries,
            http_client=http_client,
        )
        self._webhooks = StripeWebhookParser(
            self._webhook_secret,
            tolerance=dt.timedelta(seconds=tolerance),
            livemode=self.livemode,
            checkout_session_for=self._checkout_session_for,
        )

    def __repr__(self) -> str:
        mode = "live" if self.livemode else "test"
        return f"StripeProvider(api_base={self.api_base!r}, mode={mode!r})"

    # -- plumbing ------------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s.reveal() for s in (self._api_key, self._webhook_secret) if s is not None)

    def _raw(self, obj: Any, *, hide: tuple[str, ...] = ()) -> dict[str, Any]:
        data = obj if isinstance(obj, Mapping) else {}
        kept = {k: data[k] for k in _RAW_KEYS if k in data}
        return dict(scrub(kept, secrets=self._secrets() + hide))

    def _call(self, verb: str, call: Callable[[], Any]) -> Any:
        """Run one library call; turn transport and account faults into carecollect errors."""
        try:
            answer = call()
        except stripe.AuthenticationError:
            raise ConfigurationError(
                f"stripe {verb}: the API key was refused; check the stripe provider's 'api_key'"
            ) from None
        except stripe.PermissionError:
            raise ConfigurationError(
                f"stripe {verb}: the API key may not do this; give the restricted key the permission"
            ) from None
        except stripe.APIConnectionError as exc:
            raise StripeUnreachable(
                f"stripe {verb}: no answer from {self.api_base} ({type(exc).__name__}); "
                "retry later with the same idempotency key"
            ) from None
        return answer.to_dict() if isinstance(answer, stripe.StripeObject) else answer

    def _failure(self, verb: str, exc: stripe.StripeError, *, hide: tuple[str, ...] = ()) -> PaymentResult:
        """A result for a Stripe error answer, or a raised error when it is not a decline."""
        body = exc.json_body if isinstance(exc.json_body, Mapping) else {}
        error = body.get("error", {}) if isinstance(body.get("error"), Mapping) else {}
        raw = {k: error[k] for k in _ERROR_KEYS if k in error}
        intent = error.get("payment_intent") or error.get("setup_intent") or {}
        reference = intent.get("id") if isinstance(intent, Mapping) else None
        raw["http_status"] = exc.http_status
        raw = dict(scrub(raw, secrets=self._secrets() + hide))
        code = str(error.get("code") or "")
        decline = str(error.get("decline_code") or "")
        param = str(error.get("param") or "")
        message = scrub_text(str(error.get("message") or type(exc).__name__), self._secrets() + hide)
        status = intent.get("status") if isinstance(intent, Mapping) else None

        def failed(result_code: PaymentErrorCode) -> PaymentResult:
            return PaymentResult.failed(result_code, message, reference=reference, raw=raw)

        if isinstance(exc, stripe.IdempotencyError) or error.get("type") == "idempotency_error":
            return failed(PaymentErrorCode.IDEMPOTENCY_CONFLICT)
        if isinstance(exc, stripe.CardError):
            return failed(_DECLINES.get(decline) or _DECLINES.get(code) or PaymentErrorCode.DECLINED)
        if isinstance(exc, stripe.RateLimitError) or code == "idempotency_key_in_use":
            return failed(PaymentErrorCode.PROCESSING_ERROR)
        if isinstance(exc, stripe.APIError):  # Stripe's own 5xx
            return failed(PaymentErrorCode.PROCESSING_ERROR)
        if code == "resource_missing":
            # an unknown card token is the instrument's fault; an unknown payment is not found
            if param == "payment_method":
                return failed(PaymentErrorCode.INVALID_INSTRUMENT)
            return failed(PaymentErrorCode.NOT_FOUND)
        if code == "payment_intent_unexpected_state":
            if status == "canceled":
                return failed(PaymentErrorCode.ALREADY_VOIDED)
            if status == "succeeded":
                return failed(PaymentErrorCode.ALREADY_CAPTURED)
            if verb == "refund":
                return failed(PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE)
        if verb == "capture" and (code == "amount_too_large" or param == "amount_to_capture"):
            return failed(PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED)
        if verb == "refund" and (
            code in ("amount_too_large", "charge_already_refunded", "charge_not_refundable")
            or param in ("amount", "payment_intent")
        ):
            return failed(PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE)
        if code == "currency_not_supported" or param == "currency":
            return failed(PaymentErrorCode.CURRENCY_NOT_SUPPORTED)
        raise StripeRequestRefused(
            f"stripe {verb}: Stripe refused the request ({code or 'no code'}): {message}"
        )

    def _check(self, verb: str, amount: Money | None, instrument: Instrument | None) -> PaymentResult | None:
        if amount is not None and amount.currency not in self.capabilities.currencies:
            return PaymentResult.failed(
                PaymentErrorCode.CURRENCY_NOT_SUPPORTED, f"stripe {verb}: {amount.currency} is not offered"
            )
        if amount is not None and not amount.is_positive():
            raise StripeRequestRefused(f"stripe {verb}: the amount must be positive")
        if instrument is not None and instrument.method not in self.capabilities.methods:
            return PaymentResult.failed(
                PaymentErrorCode.METHOD_NOT_SUPPORTED,
                f"stripe {verb}: {instrument.method.value} is not offered",
            )
        return None

    def _customer_of(self, payment_method: str) -> str | None:
        """The customer a saved PaymentMethod belongs to (``None``: a one-off method)."""
        try:
            pm = self._call(
                "read a payment method", lambda: self._client.v1.payment_methods.retrieve(payment_method)
            )
        except stripe.InvalidRequestError:
            return None  # unknown here: let the charge itself answer (a decline or not found)
        customer = pm.get("customer")
        return customer if isinstance(customer, str) else None

    def _intent(
        self, verb: str, amount: Money, instrument: Instrument, key: str, account_id: str, *, capture: bool
    ) -> PaymentResult:
        require_idempotency_key(key, verb)
        refused = self._check(verb, amount, instrument)
        if refused is not None:
            return refused
        customer = self._customer_of(instrument.token)
        params: dict[str, Any] = {
            "amount": amount.minor_units,
            "currency": amount.currency.lower(),
            "payment_method": instrument.token,
            "payment_method_types": ["card"],
            "confirm": True,
            "capture_method": "automatic" if capture else "manual",
            "metadata": {"account_id": account_id, "carecollect_operation": key},
        }
        if customer is not None:
            # a saved card charged while the patient is away (a plan instalment): the bank may
            # still ask for authentication, which Stripe reports as authentication_required
            params |= {"customer": customer, "off_session": True}
        hide = (instrument.token,)
        try:
            intent = self._call(
                verb,
                lambda: self._client.v1.payment_intents.create(
                    cast(Any, params), {"idempotency_key": stripe_idempotency_key(key)}
                ),
            )
        except stripe.StripeError as exc:
            return self._failure(verb, exc, hide=hide)
        raw = self._raw(intent, hide=hide)
        status = intent.get("status")
        wanted = "succeeded" if capture else "requires_capture"
        if status == wanted:
            return PaymentResult.ok(intent["id"], amount, raw=raw)
        if status == "requires_action":
            return PaymentResult.failed(
                PaymentErrorCode.AUTHENTICATION_REQUIRED,
                "the bank asks the patient to authenticate: send a payment link",
                reference=intent["id"],
                raw=raw,
            )
        if status == "processing":
            return PaymentResult.failed(
                PaymentErrorCode.PROCESSING_ERROR,
                "Stripe is still processing the payment; its webhook tells the outcome",
                reference=intent["id"],
                raw=raw,
            )
        return PaymentResult.failed(
            PaymentErrorCode.DECLINED, f"payment ended as {status}", reference=intent["id"], raw=raw
        )

    # -- verbs -----------------------------------------------------------------------------------

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Charge ``amount`` at once (a PaymentIntent confirmed with automatic capture)."""
        return self._intent("purchase", amount, instrument, idempotency_key, account_id, capture=True)

    def authorize(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Reserve ``amount`` (a PaymentIntent with ``capture_method=manual``)."""
        return self._intent("authorize", amount, instrument, idempotency_key, account_id, capture=False)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture ``amount`` of authorisation ``reference``, once: Stripe releases any rest."""
        require_idempotency_key(idempotency_key, "capture")
        refused = self._check("capture", amount, None)
        if refused is not None:
            return refused
        try:
            intent = self._call(
                "capture",
                lambda: self._client.v1.payment_intents.capture(
                    reference,
                    {"amount_to_capture": amount.minor_units},
                    {"idempotency_key": stripe_idempotency_key(idempotency_key)},
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("capture", exc)
        received = Money.from_minor(int(intent.get("amount_received", 0)), amount.currency)
        return PaymentResult.ok(intent["id"], received, raw=self._raw(intent))

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Cancel an uncaptured PaymentIntent."""
        require_idempotency_key(idempotency_key, "void")
        try:
            intent = self._call(
                "void",
                lambda: self._client.v1.payment_intents.cancel(
                    reference, {}, {"idempotency_key": stripe_idempotency_key(idempotency_key)}
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("void", exc)
        return PaymentResult.ok(intent["id"], raw=self._raw(intent))

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund ``amount`` of PaymentIntent ``reference`` (or of a Checkout Session's payment).

        The result's reference is the Stripe refund (``re_...``).
        """
        require_idempotency_key(idempotency_key, "refund")
        refused = self._check("refund", amount, None)
        if refused is not None:
            return refused
        intent_id = reference
        if reference.startswith("cs_"):
            try:
                session = self._call("refund", lambda: self._client.v1.checkout.sessions.retrieve(reference))
            except stripe.StripeError as exc:
                return self._failure("refund", exc)
            if not session.get("payment_intent"):
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE, "the checkout session was not paid"
                )
            intent_id = str(session["payment_intent"])
        try:
            refund = self._call(
                "refund",
                lambda: self._client.v1.refunds.create(
                    {
                        "payment_intent": intent_id,
                        "amount": amount.minor_units,
                        "metadata": {"carecollect_operation": idempotency_key},
                    },
                    {"idempotency_key": stripe_idempotency_key(idempotency_key)},
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("refund", exc)
        if refund.get("status") in ("failed", "canceled"):
            return PaymentResult.failed(
                PaymentErrorCode.DECLINED, "the refund failed", reference=refund["id"], raw=self._raw(refund)
            )
        refunded = Money.from_minor(int(refund["amount"]), amount.currency)
        return PaymentResult.ok(refund["id"], refunded, raw=self._raw(refund))

    def verify(self, instrument: Instrument, *, idempotency_key: str) -> PaymentResult:
        """Check a card without charging it (a SetupIntent confirmed for off-session use)."""
        require_idempotency_key(idempotency_key, "verify")
        refused = self._check("verify", None, instrument)
        if refused is not None:
            return refused
        params: dict[str, Any] = {
            "payment_method": instrument.token,
            "payment_method_types": ["card"],
            "confirm": True,
            "usage": "off_session",
        }
        customer = self._customer_of(instrument.token)
        if customer is not None:
            params["customer"] = customer
        hide = (instrument.token,)
        try:
            setup = self._call(
                "verify",
                lambda: self._client.v1.setup_intents.create(
                    cast(Any, params), {"idempotency_key": stripe_idempotency_key(idempotency_key)}
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("verify", exc, hide=hide)
        if setup.get("status") == "succeeded":
            return PaymentResult.ok(setup["id"], raw=self._raw(setup, hide=hide))
        if setup.get("status") == "requires_action":
            return PaymentResult.failed(
                PaymentErrorCode.AUTHENTICATION_REQUIRED,
                "the bank asks the patient to authenticate the card",
                reference=setup["id"],
                raw=self._raw(setup, hide=hide),
            )
        return PaymentResult.failed(
            PaymentErrorCode.DECLINED, "the card was not verified", reference=setup["id"]
        )

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Save a card for plan instalments: a Customer for the account, the PaymentMethod attached.

        The result's reference is the attached PaymentMethod (``pm_...``): store it as the
        plan's mandate; :meth:`purchase` charges it off-session.
        """
        require_idempotency_key(idempotency_key, "store a mandate")
        refused = self._check("store a mandate", None, instrument)
        if refused is not None:
            return refused
        hide = (instrument.token,)
        try:
            customer = self._call(
                "store a mandate",
                lambda: self._client.v1.customers.create(
                    {"metadata": {"account_id": account_id}},
                    {"idempotency_key": stripe_idempotency_key(idempotency_key, "customer")},
                ),
            )
            pm = self._call(
                "store a mandate",
                lambda: self._client.v1.payment_methods.attach(
                    instrument.token,
                    {"customer": customer["id"]},
                    {"idempotency_key": stripe_idempotency_key(idempotency_key, "attach")},
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("store a mandate", exc, hide=hide)
        return PaymentResult.ok(pm["id"], raw={"object": "payment_method", "customer": customer["id"]})

    def remove_mandate(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Detach a saved PaymentMethod (Stripe then sends ``payment_method.detached``)."""
        require_idempotency_key(idempotency_key, "remove a mandate")
        try:
            self._call(
                "remove a mandate",
                lambda: self._client.v1.payment_methods.detach(
                    reference, {}, {"idempotency_key": stripe_idempotency_key(idempotency_key)}
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("remove a mandate", exc)
        return PaymentResult.ok(reference, raw={"object": "payment_method", "detached": True})

    def create_payment_link(
        self, amount: Money, *, idempotency_key: str, account_id: str, expires_at: dt.datetime
    ) -> PaymentResult:
        """A hosted Stripe Checkout page for ``amount`` (cards, Apple Pay and Google Pay).

        The session's metadata carries the account id only. Stripe keeps a
        session open for 30 minutes to 24 hours: ``expires_at`` is used when it
        falls in that window, else the session lives 24 hours (link a message to
        your own pay page, which opens a fresh session when the patient arrives).
        The result's reference is the Checkout Session (``cs_...``).
        """
        require_idempotency_key(idempotency_key, "create a payment link")
        refused = self._check("create a payment link", amount, None)
        if refused is not None:
            return refused
        if not self._success_url or not self._cancel_url:
            raise ConfigurationError(
                "the stripe provider needs 'success_url' and 'cancel_url' settings for payment links"
            )
        metadata = {"account_id": account_id, "carecollect_operation": idempotency_key}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": amount.currency.lower(),
                        "unit_amount": amount.minor_units,
                        "product_data": {"name": self._product_name},
                    },
                }
            ],
            "payment_method_types": ["card"],
            "success_url": self._success_url,
            "cancel_url": self._cancel_url,
            "client_reference_id": account_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata | {"carecollect_origin": "checkout"}},
        }
        now = self._clock()
        if now + _SESSION_MIN <= expires_at <= now + _SESSION_MAX:
            params["expires_at"] = int(expires_at.timestamp())
        try:
            session = self._call(
                "create a payment link",
                lambda: self._client.v1.checkout.sessions.create(
                    cast(Any, params), {"idempotency_key": stripe_idempotency_key(idempotency_key)}
                ),
            )
        except stripe.StripeError as exc:
            return self._failure("create a payment link", exc)
        return PaymentResult.ok(session["id"], amount, url=session["url"], raw=self._raw(session))

    # -- webhooks --------------------------------------------------------------------------------

    def _checkout_session_for(self, payment_intent: str) -> str | None:
        """The Checkout Session that created ``payment_intent`` (``None``: a PaymentIntent of its own)."""
        try:
            sessions = self._call(
                "read checkout sessions",
                lambda: self._client.v1.checkout.sessions.list(
                    {"payment_intent": payment_intent, "limit": 1}
                ),
            )
        except stripe.StripeError as exc:
            raise StripeRequestRefused(
                f"stripe: the checkout sessions of {payment_intent} could not be read ({type(exc).__name__})"
            ) from None
        data = sessions.get("data") or []
        return str(data[0]["id"]) if data else None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify the ``Stripe-Signature`` header and read the event (see :mod:`.webhooks`)."""
        return self._webhooks.parse(headers, body, now=now)
