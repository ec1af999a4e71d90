"""The payment-provider contract: one set of verbs for every gateway.

A payment-provider plugin returns a :class:`PaymentProviderDescriptor` from
its ``carecollect_payment_providers`` hook: a name, the
:class:`ProviderCapabilities` it claims, and a factory that builds the
provider from settings. The provider offers the verbs of
:class:`PaymentProvider`; each returns a frozen :class:`PaymentResult`.

* A **decline is a result** (``success=False`` and a :class:`PaymentErrorCode`
  from one closed enum); an exception means misconfiguration or a transport
  failure.
* Every money-moving call carries an **idempotency key**, which goes to the
  gateway; the same key with the same request returns the first result and
  moves money once.
* The raw response in a result is **scrubbed** (:mod:`carecollect.scrubbing`)
  when the result is built, so card numbers and keys never travel further.
* **Webhooks** are parsed from raw headers and body; the signature is always
  checked (:func:`hmac.compare_digest`) with a timestamp tolerance, and the
  provider's event id is the event's idempotency key (:func:`deduplicate`).

:class:`TransactionBook` keeps authorisations, captures and refunds with their
idempotency keys; a provider that keeps its own book (the manual provider, a
simulator) uses it rather than re-implementing the rules.

>>> from carecollect.money import Money
>>> from carecollect.payments import PaymentMethod
>>> book = TransactionBook("demo")
>>> auth = book.authorize(Money("50.00", "EUR"), idempotency_key="k1")
>>> book.capture(auth.reference, Money("30.00", "EUR"), idempotency_key="k2").success
True
>>> over = book.refund(auth.reference, Money("40.00", "EUR"), idempotency_key="k3")
>>> over.success, over.error_code
(False, <PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE: 'amount_exceeds_refundable'>)
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from ..errors import ValidationError, WebhookError, WebhookExpired, WebhookSignatureInvalid
from ..money import Money, minor_unit_exponent
from ..payments import PaymentMethod
from ..scrubbing import scrub_mapping, scrub_text
from ..timekeeping import require_aware

__all__ = [
    "DEFAULT_WEBHOOK_TOLERANCE",
    "SIGNATURE_HEADER",
    "BasePaymentProvider",
    "Instrument",
    "PaymentErrorCode",
    "PaymentProvider",
    "PaymentProviderDescriptor",
    "PaymentResult",
    "ProviderCapabilities",
    "TransactionBook",
    "WebhookError",
    "WebhookEvent",
    "WebhookExpired",
    "WebhookKind",
    "WebhookSignatureInvalid",
    "deduplicate",
    "require_idempotency_key",
    "sign_webhook",
    "validate_plugin_name",
    "verify_webhook_signature",
]

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,62}$")


def _method_set(values: Iterable[PaymentMethod]) -> frozenset[PaymentMethod]:
    return frozenset(values)


def _code_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


def validate_plugin_name(kind: str, name: object) -> str:
    """Check a provider, channel or connector name: lower-case, 2 to 63 characters.

    :param kind: what is named (``"PaymentProviderDescriptor"``), for the message.
    :param name: the name.
    :returns: the name.
    :raises ValidationError: the name is not a short lower-case identifier.

    >>> validate_plugin_name("PaymentProviderDescriptor", "demo-gateway")
    'demo-gateway'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(kind, "name", "use 2-63 characters: a-z first, then a-z, 0-9, '.', '_' or '-'")
    return name


def _name_validator(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    validate_plugin_name(type(instance).__name__, value)


class PaymentErrorCode(enum.Enum):
    """Why a payment call did not succeed: one closed list for every gateway."""

    #: The issuer or bank declined without a more precise reason.
    DECLINED = "declined"
    #: Not enough money on the account or card.
    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: The card or mandate has expired.
    EXPIRED_INSTRUMENT = "expired_instrument"
    #: The card number, account or token is not valid.
    INVALID_INSTRUMENT = "invalid_instrument"
    #: Strong customer authentication (3-D Secure) is needed: send a payment link.
    AUTHENTICATION_REQUIRED = "authentication_required"
    #: The provider or bank suspects fraud.
    FRAUD_SUSPECTED = "fraud_suspected"
    #: A capture asks for more than was authorised.
    AMOUNT_EXCEEDS_AUTHORIZED = "amount_exceeds_authorized"
    #: A refund asks for more than is left to refund.
    AMOUNT_EXCEEDS_REFUNDABLE = "amount_exceeds_refundable"
    #: The payment was already captured.
    ALREADY_CAPTURED = "already_captured"
    #: The authorisation was already voided.
    ALREADY_VOIDED = "already_voided"
    #: The provider does not know the payment, mandate or customer.
    NOT_FOUND = "not_found"
    #: The patient (or their bank) revoked the direct-debit mandate.
    MANDATE_REVOKED = "mandate_revoked"
    #: The provider cannot take this currency.
    CURRENCY_NOT_SUPPORTED = "currency_not_supported"
    #: The provider cannot take this payment method.
    METHOD_NOT_SUPPORTED = "method_not_supported"
    #: The idempotency key was used before for a different request.
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    #: The gateway had a temporary problem; retry later with the same key.
    PROCESSING_ERROR = "processing_error"
    #: The provider does not offer this verb (see its capabilities).
    UNSUPPORTED_OPERATION = "unsupported_operation"


@attrs.frozen
class ProviderCapabilities:
    """What a payment provider claims; the conformance kit tests exactly these.

    :param methods: payment methods offered (card, direct debit, mobile wallet...).
    :param currencies: ISO 4217 codes accepted.
    :param countries: ISO 3166-1 countries served (empty: not restricted).
    :param two_step: authorize first, capture later (otherwise :meth:`~PaymentProvider.purchase` only).
    :param partial_capture: capture less than was authorized (needs ``two_step``);
        the rest of the authorisation is released, as most gateways do.
    :param multiple_captures: capture one authorisation in several parts, up to
        the amount authorized (needs ``partial_capture``). Many gateways
        (Stripe among them) allow one capture per authorisation; a provider
        that does not claim this answers a second capture with a failed
        :class:`PaymentResult` (``ALREADY_CAPTURED``), never an exception.
    :param refunds: refund captured money.
    :param partial_refunds: refund part of a capture (needs ``refunds``).
    :param void: cancel an authorisation before capture (needs ``two_step``).
    :param verify: check an instrument without charging it.
    :param mandates: store and remove cards or direct-debit mandates.
    :param payment_links: create a hosted payment link (one tap from a message).
    :param webhooks: the provider sends signed webhooks.

    >>> caps = ProviderCapabilities(methods={PaymentMethod.CARD}, currencies={"EUR"})
    >>> caps.supports(PaymentMethod.CARD, "EUR"), caps.supports(PaymentMethod.CARD, "NOK")
    (True, False)
    """

    methods: frozenset[PaymentMethod] = attrs.field(converter=_method_set)
    currencies: frozenset[str] = attrs.field(converter=_code_set)
    countries: frozenset[str] = attrs.field(default=frozenset(), converter=_code_set)
    two_step: bool = False
    partial_capture: bool = False
    refunds: bool = False
    partial_refunds: bool = False
    void: bool = False
    verify: bool = False
    mandates: bool = False
    payment_links: bool = False
    webhooks: bool = False
    multiple_captures: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.methods or not all(isinstance(m, PaymentMethod) for m in self.methods):
            raise ValidationError("ProviderCapabilities", "methods", "name at least one PaymentMethod")
        if not self.currencies:
            raise ValidationError("ProviderCapabilities", "currencies", "name at least one ISO 4217 currency")
        for code in self.currencies:
            minor_unit_exponent(code)
        for flag, needs in (
            ("partial_capture", "two_step"),
            ("multiple_captures", "partial_capture"),
            ("void", "two_step"),
            ("partial_refunds", "refunds"),
        ):
            if getattr(self, flag) and not getattr(self, needs):
                raise ValidationError(
                    "ProviderCapabilities", flag, f"can only be claimed together with {needs}"
                )

    def supports(self, method: PaymentMethod, currency: str) -> bool:
        """True when ``method`` in ``currency`` is offered."""
        return method in self.methods and currency in self.currencies


@attrs.frozen
class Instrument:
    """What a payment is taken from: a gateway token, a mandate id, a receipt number.

    Raw card numbers never enter carecollect: the gateway's hosted page or
    SDK turns them into a token.

    :param method: the :class:`~carecollect.payments.PaymentMethod`.
    :param token: the gateway's token or mandate reference (never shown in reprs).
    :param last4: last four digits for display, if the gateway gives them.
    """

    method: PaymentMethod = attrs.field(validator=attrs.validators.instance_of(PaymentMethod))
    token: str = attrs.field(repr=False)
    last4: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise ValidationError("Instrument", "token", "a non-empty gateway token or reference is required")


def _scrub_message(text: str) -> str:
    return scrub_text(str(text))


@attrs.frozen
class PaymentResult:
    """What a payment verb returned.

    :param success: whether the operation happened.
    :param reference: the provider's reference (authorisation, capture, refund, mandate, link).
    :param error_code: why not, when ``success`` is false (one :class:`PaymentErrorCode`).
    :param amount: the amount concerned, when there is one.
    :param url: the hosted page of a payment link.
    :param message: a short, scrubbed, human-readable explanation.
    :param raw: the provider's raw response, scrubbed when the result is built
        (not compared, not shown in reprs).
    :raises ValidationError: a success with an error code, or a failure without one.

    >>> r = PaymentResult.failed(PaymentErrorCode.DECLINED, "card 4111111111111111 declined")
    >>> r.message
    'card [PAN …1111] declined'
    """

    success: bool
    reference: str | None = None
    error_code: PaymentErrorCode | None = None
    amount: Money | None = None
    url: str | None = None
    message: str = attrs.field(default="", converter=_scrub_message)
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub_mapping, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.success and self.error_code is not None:
            raise ValidationError("PaymentResult", "error_code", "a successful result carries no error code")
        if not self.success and not isinstance(self.error_code, PaymentErrorCode):
            raise ValidationError("PaymentResult", "error_code", "a failed result needs a PaymentErrorCode")

    @classmethod
    def ok(
        cls,
        reference: str,
        amount: Money | None = None,
        *,
        url: str | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> PaymentResult:
        """A successful result.

        >>> PaymentResult.ok("ch_1").success
        True
        """
        return cls(True, reference=reference, amount=amount, url=url, raw=raw or {})

    @classmethod
    def failed(
        cls,
        code: PaymentErrorCode,
        message: str = "",
        *,
        reference: str | None = None,
        amount: Money | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> PaymentResult:
        """A result that did not succeed (a decline, an amount too high, an unknown reference)."""
        return cls(False, reference=reference, error_code=code, amount=amount, message=message, raw=raw or {})


class WebhookKind(enum.Enum):
    """What a provider's webhook reports."""

    #: A payment went through: it is posted.
    PAYMENT_SUCCEEDED = "payment.succeeded"
    #: A payment failed.
    PAYMENT_FAILED = "payment.failed"
    #: The provider refunded (part of) a payment.
    REFUNDED = "payment.refunded"
    #: The payer's bank took the money back (a chargeback, a returned debit).
    CHARGEBACK_OPENED = "chargeback.opened"
    #: A direct-debit mandate was revoked.
    MANDATE_REVOKED = "mandate.revoked"
    #: Anything else the provider reports: recorded, not acted on.
    OTHER = "other"


@attrs.frozen
class WebhookEvent:
    """A verified webhook.

    :param event_id: the provider's event id: the idempotency key, so a
        replayed webhook is recognised and changes nothing.
    :param kind: :class:`WebhookKind`.
    :param reference: the provider reference it concerns (payment, refund, mandate).
    :param occurred_at: when the provider says it happened (aware).
    :param amount: the amount, when there is one.
    :param raw: the parsed body, scrubbed (not compared, not in reprs).
    """

    event_id: str
    kind: WebhookKind
    reference: str | None
    occurred_at: dt.datetime
    amount: Money | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub_mapping, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.event_id, str) or not self.event_id:
            raise ValidationError("WebhookEvent", "event_id", "the provider's event id is required")
        require_aware(self.occurred_at, f"WebhookEvent {self.event_id}", "occurred_at")

    @property
    def idempotency_key(self) -> str:
        """The provider's event id."""
        return self.event_id


#: The signature header carecollect's own helpers use: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.
SIGNATURE_HEADER = "CareCollect-Signature"
#: How far a webhook's signed timestamp may be from ``now``.
DEFAULT_WEBHOOK_TOLERANCE = dt.timedelta(minutes=5)


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_webhook(
    secret: bytes, body: bytes, *, at: dt.datetime, header: str = SIGNATURE_HEADER
) -> dict[str, str]:
    """Headers that sign ``body`` at ``at`` (for providers that use carecollect's scheme, and for tests).

    :param secret: the shared webhook secret.
    :param body: the exact bytes sent.
    :param at: the signing time (aware).
    :param header: the header name.
    :returns: ``{header: "t=...,v1=..."}``.

    >>> import datetime as dt
    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)
    >>> sign_webhook(b"s3cret", b"{}", at=at)[SIGNATURE_HEADER][:13]
    't=1772442000,'
    """
    require_aware(at, "webhook", "at")
    t = int(at.timestamp())
    return {header: f"t={t},v1={_mac(secret, t, body)}"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_webhook_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime,
    tolerance: dt.timedelta = DEFAULT_WEBHOOK_TOLERANCE,
    header: str = SIGNATURE_HEADER,
) -> dt.datetime:
    """Check a webhook signed with :func:`sign_webhook`; the comparison is constant-time.

    :param secret: the shared webhook secret.
    :param headers: the request headers (names compared case-insensitively).
    :param body: the exact raw body (never a re-serialised copy).
    :param now: the current time (aware).
    :param tolerance: how far the signed time may be from ``now`` either way.
    :param header: the header name.
    :returns: the signed time.
    :raises WebhookSignatureInvalid: missing, malformed or wrong signature.
    :raises WebhookExpired: the signed time is outside the tolerance.
    """
    require_aware(now, "webhook", "now")
    value = _header(headers, header)
    if not value:
        raise WebhookSignatureInvalid(f"webhook: header {header!r} is missing; refuse the request")
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise WebhookSignatureInvalid(
            f"webhook: header {header!r} is malformed; expected t=...,v1=..."
        ) from None
    if not hmac.compare_digest(given.encode(), _mac(secret, t, body).encode()):
        raise WebhookSignatureInvalid("webhook: signature does not match the body; check the shared secret")
    signed_at = dt.datetime.fromtimestamp(t, tz=dt.UTC)
    if abs(now - signed_at) > tolerance:
        raise WebhookExpired(
            f"webhook: signed at {signed_at.isoformat()}, outside the tolerance of {tolerance} around {now.isoformat()}"
        )
    return signed_at


def deduplicate(seen: frozenset[str], event: WebhookEvent) -> tuple[frozenset[str], bool]:
    """Record ``event``'s id; report whether it is new (a replay changes nothing).

    :param seen: event ids handled so far.
    :param event: the verified event.
    :returns: the new set of seen ids and ``True`` if the event is new.

    >>> import datetime as dt
    >>> e = WebhookEvent("evt_1", WebhookKind.OTHER, None, dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc))
    >>> seen, new = deduplicate(frozenset(), e)
    >>> deduplicate(seen, e)[1], new
    (False, True)
    """
    if event.event_id in seen:
        return seen, False
    return seen | {event.event_id}, True


def require_idempotency_key(key: object, verb: str) -> str:
    """Check an idempotency key (a non-empty string of at most 255 characters).

    :raises ValidationError: no usable key was given (a programming error, not a decline).
    """
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise ValidationError(
            f"payment {verb}", "idempotency_key", "every money-moving call needs a key (1-255 characters)"
        )
    return key


class PaymentProvider(Protocol):
    """The verbs every payment provider offers (see :class:`BasePaymentProvider` for defaults).

    Money-moving verbs take an ``idempotency_key`` that the provider passes to
    its gateway. Verbs the provider does not claim in its capabilities return
    :attr:`PaymentErrorCode.UNSUPPORTED_OPERATION`.
    """

    capabilities: ProviderCapabilities

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Authorize and capture at once."""
        ...

    def authorize(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Reserve ``amount`` on ``instrument``."""
        ...

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Take (part of) an authorisation."""
        ...

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Cancel an uncaptured authorisation."""
        ...

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Return captured money (never more than was captured and not yet refunded)."""
        ...

    def verify(self, instrument: Instrument, *, idempotency_key: str) -> PaymentResult:
        """Check an instrument without charging it."""
        ...

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Store a card or direct-debit mandate; the result's reference is the mandate id."""
        ...

    def remove_mandate(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Remove a stored card or mandate."""
        ...

    def create_payment_link(
        self, amount: Money, *, idempotency_key: str, account_id: str, expires_at: dt.datetime
    ) -> PaymentResult:
        """A hosted payment page; the result's ``url`` is what a message links to."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify and parse a webhook (raises :class:`WebhookError` when refused)."""
        ...


class BasePaymentProvider:
    """Defaults for every verb: :attr:`PaymentErrorCode.UNSUPPORTED_OPERATION`.

    Subclass it and override what the provider's capabilities claim.
    """

    capabilities: ProviderCapabilities

    def _unsupported(self, verb: str, idempotency_key: str | None = None) -> PaymentResult:
        if idempotency_key is not None:
            require_idempotency_key(idempotency_key, verb)
        return PaymentResult.failed(
            PaymentErrorCode.UNSUPPORTED_OPERATION, f"{type(self).__name__} does not {verb}"
        )

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("purchase", idempotency_key)

    def authorize(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("authorize", idempotency_key)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("capture", idempotency_key)

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("void", idempotency_key)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("refund", idempotency_key)

    def verify(self, instrument: Instrument, *, idempotency_key: str) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("verify", idempotency_key)

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("store a mandate", idempotency_key)

    def remove_mandate(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("remove a mandate", idempotency_key)

    def create_payment_link(
        self, amount: Money, *, idempotency_key: str, account_id: str, expires_at: dt.datetime
    ) -> PaymentResult:
        """Not supported unless overridden."""
        return self._unsupported("create a payment link", idempotency_key)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Refuses every webhook unless overridden.

        :raises WebhookSignatureInvalid: always.
        """
        raise WebhookSignatureInvalid(f"{type(self).__name__} does not accept webhooks")


@attrs.frozen
class PaymentProviderDescriptor:
    """What a payment-provider plugin provides (returned by ``carecollect_payment_providers``).

    :param name: the configuration name (``"demo-gateway"``); unique across plugins.
    :param capabilities: :class:`ProviderCapabilities`.
    :param factory: builds the provider from settings (API keys, endpoints).
    :param description: one line for listings.
    """

    name: str = attrs.field(validator=_name_validator)
    capabilities: ProviderCapabilities = attrs.field(
        validator=attrs.validators.instance_of(ProviderCapabilities)
    )
    factory: Callable[[Mapping[str, str]], PaymentProvider] = attrs.field(repr=False)
    description: str = ""

    def create(self, settings: Mapping[str, str] | None = None) -> PaymentProvider:
        """Build the provider from ``settings``."""
        return self.factory(dict(settings or {}))


@attrs.define
class _Tx:
    authorized: Money
    captured: Money
    refunded: Money
    voided: bool = False


class TransactionBook:
    """Authorisations, captures and refunds with their idempotency keys (mutable, shell side).

    The rules every provider must keep: capture at most what was authorized,
    refund at most what was captured and not yet refunded, void only what was
    not captured, and answer a repeated idempotency key with the first result
    (or :attr:`PaymentErrorCode.IDEMPOTENCY_CONFLICT` when the request differs).

    :param prefix: start of every reference this book issues.
    :param partial_capture: whether a capture may be less than the authorisation.
    :param multiple_captures: whether an authorisation may be captured more than
        once (in parts); by default one capture settles it, as at most gateways.
    """

    def __init__(self, prefix: str, *, partial_capture: bool = True, multiple_captures: bool = False) -> None:
        self._prefix = prefix
        self._partial_capture = partial_capture
        self._multiple_captures = multiple_captures
        self._txs: dict[str, _Tx] = {}
        self._keys: dict[str, tuple[tuple[object, ...], PaymentResult]] = {}
        self._counter = 0

    def _new_reference(self, kind: str) -> str:
        self._counter += 1
        return f"{self._prefix}_{kind}_{self._counter:06d}"

    def once(
        self, idempotency_key: str, request: tuple[object, ...], action: Callable[[], PaymentResult]
    ) -> PaymentResult:
        """Run ``action`` unless ``idempotency_key`` was seen; then replay or refuse.

        :param idempotency_key: the caller's key.
        :param request: what identifies the request (verb, reference, amount).
        :param action: what to do the first time.
        :returns: the first result, or an ``IDEMPOTENCY_CONFLICT`` failure.
        """
        require_idempotency_key(idempotency_key, str(request[0]) if request else "call")
        if idempotency_key in self._keys:
            first_request, first = self._keys[idempotency_key]
            if first_request == request:
                return first
            return PaymentResult.failed(
                PaymentErrorCode.IDEMPOTENCY_CONFLICT, "this idempotency key was used for a different request"
            )
        result = action()
        self._keys[idempotency_key] = (request, result)
        return result

    def authorize(self, amount: Money, *, idempotency_key: str, capture: bool = False) -> PaymentResult:
        """Authorize ``amount`` (and capture it at once when ``capture``)."""

        def act() -> PaymentResult:
            ref = self._new_reference("pay")
            zero = Money.zero(amount.currency)
            self._txs[ref] = _Tx(authorized=amount, captured=amount if capture else zero, refunded=zero)
            return PaymentResult.ok(ref, amount)

        return self.once(idempotency_key, ("authorize", amount, capture), act)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture ``amount`` of authorisation ``reference``."""

        def act() -> PaymentResult:
            tx = self._txs.get(reference)
            if tx is None:
                return PaymentResult.failed(
                    PaymentErrorCode.NOT_FOUND, "no such authorisation", reference=reference
                )
            if tx.voided:
                return PaymentResult.failed(
                    PaymentErrorCode.ALREADY_VOIDED, "authorisation was voided", reference=reference
                )
            if amount.currency != tx.authorized.currency or not amount.is_positive():
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED, "amount or currency does not fit"
                )
            if tx.captured.is_positive() and not self._multiple_captures:
                return PaymentResult.failed(
                    PaymentErrorCode.ALREADY_CAPTURED,
                    "this authorisation was captured already (one capture per authorisation)",
                    reference=reference,
                )
            if tx.captured + amount > tx.authorized:
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED,
                    f"only {tx.authorized - tx.captured} left to capture",
                )
            if not self._partial_capture and amount != tx.authorized:
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED, "capture the full amount"
                )
            tx.captured = tx.captured + amount
            return PaymentResult.ok(reference, amount)

        return self.once(idempotency_key, ("capture", reference, amount), act)

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Cancel authorisation ``reference`` if nothing was captured."""

        def act() -> PaymentResult:
            tx = self._txs.get(reference)
            if tx is None:
                return PaymentResult.failed(
                    PaymentErrorCode.NOT_FOUND, "no such authorisation", reference=reference
                )
            if not tx.captured.is_zero():
                return PaymentResult.failed(
                    PaymentErrorCode.ALREADY_CAPTURED, "refund instead", reference=reference
                )
            tx.voided = True
            return PaymentResult.ok(reference)

        return self.once(idempotency_key, ("void", reference), act)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund ``amount`` of what ``reference`` captured."""

        def act() -> PaymentResult:
            tx = self._txs.get(reference)
            if tx is None:
                return PaymentResult.failed(
                    PaymentErrorCode.NOT_FOUND, "no such payment", reference=reference
                )
            if amount.currency != tx.captured.currency or not amount.is_positive():
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE, "amount or currency does not fit"
                )
            if tx.refunded + amount > tx.captured:
                return PaymentResult.failed(
                    PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE,
                    f"only {tx.captured - tx.refunded} left to refund",
                    reference=reference,
                )
            tx.refunded = tx.refunded + amount
            return PaymentResult.ok(self._new_reference("ref"), amount)

        return self.once(idempotency_key, ("refund", reference, amount), act)

    def captured(self, reference: str) -> Money | None:
        """What ``reference`` has captured so far (``None``: unknown reference)."""
        tx = self._txs.get(reference)
        return None if tx is None else tx.captured

    def refunded(self, reference: str) -> Money | None:
        """What ``reference`` has refunded so far (``None``: unknown reference)."""
        tx = self._txs.get(reference)
        return None if tx is None else tx.refunded

    def references(self) -> Iterable[str]:
        """Every payment reference in the book."""
        return tuple(self._txs)
