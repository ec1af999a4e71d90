"""Base test classes every provider, channel and connector must pass.

Subclass one in a plugin's own tests and override its fixtures (zarr's
``StoreTests`` and fsspec's abstract tests are the model)::

    from carecollect.testing import PaymentProviderContract

    class TestMyGateway(PaymentProviderContract):
        @pytest.fixture
        def provider(self):
            return MY_GATEWAY.create({"api_key": "test"})

Tests of a capability the plugin does not claim are skipped; a capability it
claims without the fixture the test needs fails with a message saying which
fixture to override.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from ..errors import CareCollectError
from ..money import Money
from ..placements import record_remittance
from ..plugins.agencies import (
    AgencyConnector,
    AgencyConnectorCapabilities,
    PlacementRequest,
    PrePlacementNotice,
)
from ..plugins.messaging import (
    ChannelCapabilities,
    DeliveryReport,
    MessageChannel,
    OutgoingMessage,
    ReceiptStatus,
)
from ..plugins.providers import (
    Instrument,
    PaymentErrorCode,
    PaymentProvider,
    PaymentResult,
    ProviderCapabilities,
    WebhookError,
    WebhookSignatureInvalid,
    deduplicate,
)
from ..scrubbing import scrub_text
from . import factories as f

__all__ = ["DECLINE_CODES", "AgencyConnectorContract", "MessageChannelContract", "PaymentProviderContract"]

#: Error codes a decline may carry.
DECLINE_CODES = frozenset(
    {
        PaymentErrorCode.DECLINED,
        PaymentErrorCode.INSUFFICIENT_FUNDS,
        PaymentErrorCode.EXPIRED_INSTRUMENT,
        PaymentErrorCode.INVALID_INSTRUMENT,
        PaymentErrorCode.FRAUD_SUSPECTED,
        PaymentErrorCode.AUTHENTICATION_REQUIRED,
    }
)

SignedWebhook = Callable[[str, dt.datetime], tuple[dict[str, str], bytes]]


def _need(value: object, fixture: str, claim: str) -> None:
    if value is None:
        pytest.fail(f"the provider claims {claim}; override the {fixture!r} fixture so the kit can test it")


def _transcript(*results: Any) -> str:
    parts = []
    for r in results:
        parts.append(repr(r))
        for name in ("raw", "message", "detail"):
            if hasattr(r, name):
                parts.append(str(getattr(r, name)))
    return "\n".join(parts)


class PaymentProviderContract:
    """The conformance tests for a payment provider.

    Override ``provider``; override ``instrument`` with one the provider
    approves, ``declining_instrument`` with one it declines, and
    ``signed_webhook`` (and ``webhook_secret``) if it claims webhooks.
    """

    @pytest.fixture
    def provider(self) -> PaymentProvider:
        """The provider under test (override)."""
        pytest.fail("override the 'provider' fixture with the provider under test")

    @pytest.fixture
    def capabilities(self, provider: PaymentProvider) -> ProviderCapabilities:
        """What the provider claims."""
        return provider.capabilities

    @pytest.fixture
    def now(self) -> dt.datetime:
        """The instant tests run at (default 2026-03-02 09:00 UTC)."""
        return f.NOW

    @pytest.fixture
    def currency(self, capabilities: ProviderCapabilities) -> str:
        """A currency the provider accepts (EUR when it can)."""
        return "EUR" if "EUR" in capabilities.currencies else sorted(capabilities.currencies)[0]

    @pytest.fixture
    def amount(self, currency: str) -> Money:
        """The amount charged (100 major units)."""
        return Money.from_minor(100 * 10 ** Money.zero(currency).exponent, currency)

    @pytest.fixture
    def instrument(self, capabilities: ProviderCapabilities) -> Instrument:
        """An instrument the provider approves (override for a real gateway's test token)."""
        return Instrument(sorted(capabilities.methods, key=lambda m: m.value)[0], token="tok_approve")

    @pytest.fixture
    def declining_instrument(self) -> Instrument | None:
        """An instrument the provider declines (``None``: the decline test is skipped)."""
        return None

    @pytest.fixture
    def webhook_secret(self) -> str | None:
        """The webhook secret, which must never appear in a transcript."""
        return None

    @pytest.fixture
    def signed_webhook(self) -> SignedWebhook | None:
        """``(event_id, signed_at) -> (headers, body)`` the provider accepts; needed when it claims webhooks."""
        return None

    @pytest.fixture
    def secrets(self, instrument: Instrument, webhook_secret: str | None) -> tuple[str, ...]:
        """Strings that must never appear in a result, repr or message."""
        return tuple(s for s in (instrument.token, webhook_secret) if s)

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def charge(provider: PaymentProvider, amount: Money, instrument: Instrument, key: str) -> PaymentResult:
        """Take ``amount``: authorize and capture for two-step providers, else purchase."""
        if provider.capabilities.two_step:
            auth = provider.authorize(amount, instrument, idempotency_key=key, account_id="A-1")
            if not auth.success or auth.reference is None:
                return auth
            return provider.capture(auth.reference, amount, idempotency_key=key + "-capture")
        return provider.purchase(amount, instrument, idempotency_key=key, account_id="A-1")

    # -- tests -------------------------------------------------------------------------------------

    def test_capabilities_are_declared(self, capabilities: ProviderCapabilities) -> None:
        """The provider declares frozen capabilities."""
        assert isinstance(capabilities, ProviderCapabilities)

    def test_charge_succeeds(self, provider: PaymentProvider, amount: Money, instrument: Instrument) -> None:
        """Charging an approved instrument gives a successful result with a reference."""
        result = self.charge(provider, amount, instrument, "kit-charge-1")
        assert result.success, result
        assert result.reference
        assert result.error_code is None

    def test_decline_is_a_result(
        self, provider: PaymentProvider, amount: Money, declining_instrument: Instrument | None
    ) -> None:
        """A decline comes back as a result with a decline code, not an exception."""
        if declining_instrument is None:
            pytest.skip("no declining_instrument fixture given")
        result = self.charge(provider, amount, declining_instrument, "kit-decline-1")
        assert not result.success
        assert result.error_code in DECLINE_CODES

    def test_money_moving_calls_need_an_idempotency_key(
        self, provider: PaymentProvider, amount: Money, instrument: Instrument
    ) -> None:
        """An empty idempotency key is a programming error (raised, not a decline)."""
        verb = provider.authorize if provider.capabilities.two_step else provider.purchase
        with pytest.raises(CareCollectError):
            verb(amount, instrument, idempotency_key="", account_id="A-1")

    def test_same_key_twice_moves_money_once(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """A repeated call with one idempotency key returns the first result."""
        first = self.charge(provider, amount, instrument, "kit-dup-1")
        again = self.charge(provider, amount, instrument, "kit-dup-1")
        assert first.success and again.reference == first.reference
        if capabilities.refunds:
            assert first.reference is not None
            r1 = provider.refund(first.reference, amount, idempotency_key="kit-dup-refund")
            r2 = provider.refund(first.reference, amount, idempotency_key="kit-dup-refund")
            assert r1.success and r2 == r1
            unit = Money.from_minor(1, amount.currency)
            more = provider.refund(first.reference, unit, idempotency_key="kit-dup-refund-2")
            assert more.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE

    def test_same_key_for_a_different_request_conflicts(
        self, provider: PaymentProvider, amount: Money, instrument: Instrument
    ) -> None:
        """Reusing a key for another amount is refused with IDEMPOTENCY_CONFLICT (on the first verb itself)."""
        verb = provider.authorize if provider.capabilities.two_step else provider.purchase
        assert verb(amount, instrument, idempotency_key="kit-conflict", account_id="A-1").success
        more = amount + Money.from_minor(1, amount.currency)
        other = verb(more, instrument, idempotency_key="kit-conflict", account_id="A-1")
        assert other.error_code is PaymentErrorCode.IDEMPOTENCY_CONFLICT

    def test_partial_capture(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Capturing part of an authorisation captures just that part (and refunds stop there)."""
        if not capabilities.partial_capture:
            pytest.skip("partial capture not claimed")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-pc-auth", account_id="A-1")
        assert auth.success and auth.reference
        part = amount.allocate([2, 3])[0]
        cap = provider.capture(auth.reference, part, idempotency_key="kit-pc-cap")
        assert cap.success and cap.amount == part
        if capabilities.refunds:
            # refunds are bounded by what was captured, not by what was authorized
            unit = Money.from_minor(1, amount.currency)
            refund = provider.refund(auth.reference, part + unit, idempotency_key="kit-pc-refund")
            assert refund.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE

    def test_multiple_partial_captures(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Several captures of one authorisation add up to the amount authorized and no further."""
        if not capabilities.multiple_captures:
            pytest.skip("multiple captures not claimed")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-mc-auth", account_id="A-1")
        assert auth.success and auth.reference
        part, rest = amount.allocate([2, 3])
        cap = provider.capture(auth.reference, part, idempotency_key="kit-mc-cap")
        assert cap.success and cap.amount == part
        unit = Money.from_minor(1, amount.currency)
        over = provider.capture(auth.reference, rest + unit, idempotency_key="kit-mc-over")
        assert over.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED, "only the rest may be captured"
        rest_cap = provider.capture(auth.reference, rest, idempotency_key="kit-mc-rest")
        assert rest_cap.success and rest_cap.amount == rest

    def test_second_capture_refused_when_not_claimed(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Without ``multiple_captures``, a second capture is a failed result (not an exception, no money)."""
        if not capabilities.partial_capture or capabilities.multiple_captures:
            pytest.skip("only for providers with partial capture but one capture per authorisation")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-sc-auth", account_id="A-1")
        assert auth.success and auth.reference
        part, rest = amount.allocate([2, 3])
        assert provider.capture(auth.reference, part, idempotency_key="kit-sc-cap").success
        second = provider.capture(auth.reference, rest, idempotency_key="kit-sc-second")
        assert not second.success and second.error_code is not None, "a second capture must be declined"
        if capabilities.refunds:
            # nothing more was taken: refunds still stop at the first capture
            unit = Money.from_minor(1, amount.currency)
            refund = provider.refund(auth.reference, part + unit, idempotency_key="kit-sc-refund")
            assert refund.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE

    def test_partial_capture_refused_when_not_claimed(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """A two-step provider that does not claim partial capture refuses one (a result, not money taken)."""
        if not capabilities.two_step or capabilities.partial_capture:
            pytest.skip("only for two-step providers without partial capture")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-npc-auth", account_id="A-1")
        assert auth.success and auth.reference
        part = amount.allocate([2, 3])[0]
        result = provider.capture(auth.reference, part, idempotency_key="kit-npc-cap")
        assert not result.success and result.error_code is not None

    def test_capture_over_authorized_fails(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Capturing more than was authorized is a result with AMOUNT_EXCEEDS_AUTHORIZED."""
        if not capabilities.two_step:
            pytest.skip("authorize/capture not claimed")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-over-auth", account_id="A-1")
        assert auth.success and auth.reference
        over = amount + Money.from_minor(1, amount.currency)
        result = provider.capture(auth.reference, over, idempotency_key="kit-over-cap")
        assert result.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED

    def test_refund_over_captured_fails(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Refunding more than was captured is a result with AMOUNT_EXCEEDS_REFUNDABLE."""
        if not capabilities.refunds:
            pytest.skip("refunds not claimed")
        paid = self.charge(provider, amount, instrument, "kit-refund-over")
        assert paid.success and paid.reference
        over = amount + Money.from_minor(1, amount.currency)
        result = provider.refund(paid.reference, over, idempotency_key="kit-refund-over-r")
        assert not result.success
        assert result.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE

    def test_partial_refunds_add_up(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """Partial refunds may add up to the capture and no further."""
        if not capabilities.partial_refunds:
            pytest.skip("partial refunds not claimed")
        paid = self.charge(provider, amount, instrument, "kit-partial-refund")
        assert paid.reference is not None
        first, second = amount.allocate([3, 7])
        assert provider.refund(paid.reference, first, idempotency_key="kit-pr-1").success
        assert provider.refund(paid.reference, second, idempotency_key="kit-pr-2").success
        unit = Money.from_minor(1, amount.currency)
        last = provider.refund(paid.reference, unit, idempotency_key="kit-pr-3")
        assert last.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE

    def test_void(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """A voided authorisation cannot be captured."""
        if not capabilities.void:
            pytest.skip("void not claimed")
        auth = provider.authorize(amount, instrument, idempotency_key="kit-void-auth", account_id="A-1")
        assert auth.reference is not None
        assert provider.void(auth.reference, idempotency_key="kit-void").success
        assert not provider.capture(auth.reference, amount, idempotency_key="kit-void-cap").success

    def test_verify(
        self, provider: PaymentProvider, instrument: Instrument, capabilities: ProviderCapabilities
    ) -> None:
        """Verifying an approved instrument succeeds."""
        if not capabilities.verify:
            pytest.skip("verify not claimed")
        assert provider.verify(instrument, idempotency_key="kit-verify").success

    def test_store_and_remove_mandate(
        self, provider: PaymentProvider, instrument: Instrument, capabilities: ProviderCapabilities
    ) -> None:
        """A stored mandate has a reference and can be removed."""
        if not capabilities.mandates:
            pytest.skip("mandates not claimed")
        stored = provider.store_mandate(instrument, idempotency_key="kit-mandate", account_id="A-1")
        assert stored.success and stored.reference
        assert provider.remove_mandate(stored.reference, idempotency_key="kit-mandate-rm").success

    def test_payment_link(
        self, provider: PaymentProvider, amount: Money, now: dt.datetime, capabilities: ProviderCapabilities
    ) -> None:
        """A payment link has an https URL for the amount."""
        if not capabilities.payment_links:
            pytest.skip("payment links not claimed")
        link = provider.create_payment_link(
            amount, idempotency_key="kit-link", account_id="A-1", expires_at=now + dt.timedelta(days=14)
        )
        assert link.success and link.url is not None and link.url.startswith("https://")

    def test_unclaimed_verbs_answer_unsupported(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        capabilities: ProviderCapabilities,
    ) -> None:
        """A verb the provider does not claim answers UNSUPPORTED_OPERATION, without raising."""
        calls: list[Callable[[], PaymentResult]] = []
        if not capabilities.two_step:
            calls.append(
                lambda: provider.authorize(amount, instrument, idempotency_key="kit-u1", account_id="A-1")
            )
        if not capabilities.refunds:
            calls.append(lambda: provider.refund("unknown", amount, idempotency_key="kit-u2"))
        if not capabilities.mandates:
            calls.append(
                lambda: provider.store_mandate(instrument, idempotency_key="kit-u3", account_id="A-1")
            )
        if not calls:
            pytest.skip("every verb is claimed")
        for call in calls:
            assert call().error_code is PaymentErrorCode.UNSUPPORTED_OPERATION

    # -- webhooks ----------------------------------------------------------------------------------

    def _webhooks(
        self, capabilities: ProviderCapabilities, signed_webhook: SignedWebhook | None
    ) -> SignedWebhook:
        if not capabilities.webhooks:
            pytest.skip("webhooks not claimed")
        _need(signed_webhook, "signed_webhook", "webhooks")
        assert signed_webhook is not None
        return signed_webhook

    def test_webhook_is_parsed(
        self,
        provider: PaymentProvider,
        capabilities: ProviderCapabilities,
        signed_webhook: SignedWebhook | None,
        now: dt.datetime,
    ) -> None:
        """A correctly signed webhook gives an event whose idempotency key is the provider's event id."""
        headers, body = self._webhooks(capabilities, signed_webhook)("evt_kit_1", now)
        event = provider.parse_webhook(headers, body, now=now)
        assert event.event_id == "evt_kit_1" == event.idempotency_key

    def test_webhook_with_bad_signature_is_refused(
        self,
        provider: PaymentProvider,
        capabilities: ProviderCapabilities,
        signed_webhook: SignedWebhook | None,
        secrets: tuple[str, ...],
        now: dt.datetime,
    ) -> None:
        """A tampered body, a forged signature, or none at all, is refused without echoing it."""
        headers, body = self._webhooks(capabilities, signed_webhook)("evt_kit_2", now)
        with pytest.raises(WebhookSignatureInvalid) as tampered:
            provider.parse_webhook(headers, body + b" ", now=now)
        with pytest.raises(WebhookSignatureInvalid):
            provider.parse_webhook({}, body, now=now)
        forged = {k: v[:-4] + ("0000" if not v.endswith("0000") else "1111") for k, v in headers.items()}
        with pytest.raises(WebhookError):
            provider.parse_webhook(forged, body, now=now)
        message = str(tampered.value)
        for value in (*headers.values(), *(s for s in secrets if s)):
            assert value not in message, "a webhook refusal echoes the signature or a secret"

    def test_webhook_with_old_timestamp_is_refused(
        self,
        provider: PaymentProvider,
        capabilities: ProviderCapabilities,
        signed_webhook: SignedWebhook | None,
        now: dt.datetime,
    ) -> None:
        """A webhook signed an hour ago is refused."""
        headers, body = self._webhooks(capabilities, signed_webhook)("evt_kit_3", now - dt.timedelta(hours=1))
        with pytest.raises(WebhookError):
            provider.parse_webhook(headers, body, now=now)

    def test_replayed_webhook_changes_nothing(
        self,
        provider: PaymentProvider,
        capabilities: ProviderCapabilities,
        signed_webhook: SignedWebhook | None,
        now: dt.datetime,
    ) -> None:
        """The same delivery twice gives the same event, which deduplication drops."""
        headers, body = self._webhooks(capabilities, signed_webhook)("evt_kit_4", now)
        first = provider.parse_webhook(headers, body, now=now)
        second = provider.parse_webhook(headers, body, now=now + dt.timedelta(seconds=30))
        assert first == second
        seen, new = deduplicate(frozenset(), first)
        assert new and deduplicate(seen, second) == (seen, False)

    # -- transcripts -------------------------------------------------------------------------------

    def test_secrets_stay_out_of_transcripts(
        self,
        provider: PaymentProvider,
        amount: Money,
        instrument: Instrument,
        declining_instrument: Instrument | None,
        secrets: tuple[str, ...],
    ) -> None:
        """No secret, token or card number appears in results, their raw responses or reprs."""
        results: list[object] = [self.charge(provider, amount, instrument, "kit-secrets-1")]
        first = results[0]
        if provider.capabilities.two_step:  # the authorisation itself, not just the capture after it
            results.append(
                provider.authorize(amount, instrument, idempotency_key="kit-secrets-1", account_id="A-1")
            )
        if declining_instrument is not None:
            results.append(self.charge(provider, amount, declining_instrument, "kit-secrets-2"))
        if provider.capabilities.refunds and isinstance(first, PaymentResult) and first.reference:
            results.append(provider.refund(first.reference, amount, idempotency_key="kit-secrets-3"))
        if provider.capabilities.mandates:
            results.append(
                provider.store_mandate(instrument, idempotency_key="kit-secrets-4", account_id="A-1")
            )
        text = _transcript(*results, instrument, provider)
        for secret in secrets:
            assert secret not in text, "a secret reached a result, repr or message"
        assert scrub_text(text) == text, "a card number, IBAN or key reached a result, repr or message"


class MessageChannelContract:
    """The conformance tests for a message channel.

    Override ``channel``; ``message`` if the channel does not carry e-mail;
    ``delivery_report_payload`` and ``inbound_payload`` if it claims them;
    ``rejected_message`` with a message it refuses; ``read_back`` to let the
    kit read what was sent.
    """

    @pytest.fixture
    def channel(self) -> MessageChannel:
        """The channel under test (override)."""
        pytest.fail("override the 'channel' fixture with the channel under test")

    @pytest.fixture
    def capabilities(self, channel: MessageChannel) -> ChannelCapabilities:
        """What the channel claims."""
        return channel.capabilities

    @pytest.fixture
    def now(self) -> dt.datetime:
        """The instant tests run at."""
        return f.NOW

    @pytest.fixture
    def message(self, capabilities: ChannelCapabilities) -> OutgoingMessage:
        """A message the channel accepts (an e-mail when it carries e-mail)."""
        message = f.make_message()
        if message.channel not in capabilities.channels:
            message = attrs.evolve(message, channel=sorted(capabilities.channels, key=lambda c: c.value)[0])
        return message

    @pytest.fixture
    def rejected_message(self) -> OutgoingMessage | None:
        """A message the channel refuses (``None``: that test is skipped)."""
        return None

    @pytest.fixture
    def delivery_report_payload(self) -> Callable[[str], tuple[dict[str, str], bytes]] | None:
        """``provider_message_id -> (headers, body)`` of a "delivered" report."""
        return None

    @pytest.fixture
    def inbound_payload(self) -> Callable[[str], tuple[dict[str, str], bytes]] | None:
        """``text -> (headers, body)`` of a patient's reply."""
        return None

    @pytest.fixture
    def read_back(self) -> Callable[[str], bytes | None] | None:
        """``provider_message_id -> what was sent`` (``None``: tests that read back are skipped)."""
        return None

    @pytest.fixture
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in a receipt."""
        return ()

    def test_capabilities_are_declared(self, capabilities: ChannelCapabilities) -> None:
        """The channel declares frozen capabilities."""
        assert isinstance(capabilities, ChannelCapabilities)

    def test_send_is_accepted(self, channel: MessageChannel, message: OutgoingMessage) -> None:
        """Sending gives an ACCEPTED receipt with the provider's message id."""
        receipt = channel.send(message)
        assert receipt.status is ReceiptStatus.ACCEPTED
        assert receipt.message_id == message.id and receipt.provider_message_id

    def test_same_message_twice_is_sent_once(
        self,
        channel: MessageChannel,
        message: OutgoingMessage,
        read_back: Callable[[str], bytes | None] | None,
    ) -> None:
        """Sending one message id twice returns the same provider id."""
        first = channel.send(message)
        assert channel.send(message).provider_message_id == first.provider_message_id

    def test_sent_message_carries_body_and_opt_out_link(
        self,
        channel: MessageChannel,
        message: OutgoingMessage,
        capabilities: ChannelCapabilities,
        read_back: Callable[[str], bytes | None] | None,
    ) -> None:
        """What was sent holds the body and, if the channel carries links, the opt-out link."""
        if read_back is None:
            pytest.skip("no read_back fixture given")
        receipt = channel.send(message)
        assert receipt.provider_message_id is not None
        sent = read_back(receipt.provider_message_id)
        assert sent is not None
        assert message.body.split()[0].encode() in sent
        if capabilities.opt_out_link and message.opt_out_url:
            assert message.opt_out_url.encode() in sent

    def test_rejection_is_a_receipt(
        self, channel: MessageChannel, rejected_message: OutgoingMessage | None
    ) -> None:
        """A refused message is a REJECTED receipt, not an exception."""
        if rejected_message is None:
            pytest.skip("no rejected_message fixture given")
        assert channel.send(rejected_message).status is ReceiptStatus.REJECTED

    def test_too_long_message_is_rejected(
        self, channel: MessageChannel, message: OutgoingMessage, capabilities: ChannelCapabilities
    ) -> None:
        """A body over the declared length limit is rejected, not cut."""
        if capabilities.max_length is None:
            pytest.skip("no length limit declared")
        long = attrs.evolve(message, id="MSG-LONG", body="x" * (capabilities.max_length + 1))
        assert channel.send(long).status is ReceiptStatus.REJECTED

    def test_delivery_report(
        self,
        channel: MessageChannel,
        message: OutgoingMessage,
        capabilities: ChannelCapabilities,
        delivery_report_payload: Callable[[str], tuple[dict[str, str], bytes]] | None,
        now: dt.datetime,
    ) -> None:
        """A delivery report is matched to the message by the provider's id."""
        if not capabilities.delivery_reports:
            pytest.skip("delivery reports not claimed")
        _need(delivery_report_payload, "delivery_report_payload", "delivery reports")
        assert delivery_report_payload is not None
        receipt = channel.send(message)
        assert receipt.provider_message_id is not None
        headers, body = delivery_report_payload(receipt.provider_message_id)
        report = channel.parse_delivery_report(headers, body, now=now)
        assert isinstance(report, DeliveryReport)
        assert report.provider_message_id == receipt.provider_message_id

    def test_stop_reply_is_an_opt_out(
        self,
        channel: MessageChannel,
        capabilities: ChannelCapabilities,
        inbound_payload: Callable[[str], tuple[dict[str, str], bytes]] | None,
        now: dt.datetime,
    ) -> None:
        """``STOP`` is an opt-out; a question is not."""
        if not capabilities.inbound:
            pytest.skip("inbound replies not claimed")
        _need(inbound_payload, "inbound_payload", "inbound replies")
        assert inbound_payload is not None
        assert channel.parse_inbound(*inbound_payload("STOP"), now=now).is_opt_out
        assert not channel.parse_inbound(*inbound_payload("When is my bill due?"), now=now).is_opt_out

    def test_receipt_carries_no_recipient_or_secret(
        self, channel: MessageChannel, message: OutgoingMessage, secrets: tuple[str, ...]
    ) -> None:
        """A receipt's repr and detail hold no address, body or secret."""
        text = _transcript(channel.send(message), message)
        for value in (message.recipient, message.body, *secrets):
            assert value not in text


class AgencyConnectorContract:
    """The conformance tests for an agency connector.

    Override ``connector``; ``agency_activity`` with a function that makes the
    agency report a status update and a remittance for a placement, so the
    kit can read them back.
    """

    @pytest.fixture
    def connector(self) -> AgencyConnector:
        """The connector under test (override)."""
        pytest.fail("override the 'connector' fixture with the connector under test")

    @pytest.fixture
    def capabilities(self, connector: AgencyConnector) -> AgencyConnectorCapabilities:
        """What the connector claims."""
        return connector.capabilities

    @pytest.fixture
    def now(self) -> dt.datetime:
        """The instant tests run at."""
        return f.NOW

    @pytest.fixture
    def placement_request(self) -> PlacementRequest:
        """The account placed (factories' ``PL-1``)."""
        return f.make_placement_request()

    @pytest.fixture
    def agency_activity(self) -> Callable[[str, Money], None] | None:
        """``(placement_id, amount)``: make the agency report an update and remit ``amount``."""
        return None

    def test_capabilities_are_declared(self, capabilities: AgencyConnectorCapabilities) -> None:
        """The connector declares frozen capabilities."""
        assert isinstance(capabilities, AgencyConnectorCapabilities)

    def test_place_is_accepted_once(
        self, connector: AgencyConnector, placement_request: PlacementRequest
    ) -> None:
        """Placing gives an agency reference; placing again gives the same one."""
        first = connector.place(placement_request)
        assert first.accepted and first.agency_reference
        assert connector.place(placement_request).agency_reference == first.agency_reference

    def test_receipt_carries_no_personal_data(
        self, connector: AgencyConnector, placement_request: PlacementRequest
    ) -> None:
        """The receipt's repr and detail hold neither the debtor's name nor address."""
        text = _transcript(connector.place(placement_request))
        for value in (placement_request.debtor.name, *placement_request.debtor.postal_address):
            assert value not in text

    def test_pre_placement_notice(
        self,
        connector: AgencyConnector,
        placement_request: PlacementRequest,
        capabilities: AgencyConnectorCapabilities,
        now: dt.datetime,
    ) -> None:
        """The agency accepts a pre-placement notice, once per notice id."""
        if not capabilities.pre_placement_notice:
            pytest.skip("pre-placement notices not claimed")
        notice = PrePlacementNotice("N-1", placement_request, (now + dt.timedelta(days=30)).date(), now)
        first = connector.send_pre_placement_notice(notice)
        assert first.accepted
        assert connector.send_pre_placement_notice(notice).agency_reference == first.agency_reference

    def test_recall(
        self,
        connector: AgencyConnector,
        placement_request: PlacementRequest,
        capabilities: AgencyConnectorCapabilities,
        now: dt.datetime,
    ) -> None:
        """A placed account can be recalled; an unknown one cannot."""
        if not capabilities.recall:
            pytest.skip("recall not claimed")
        connector.place(placement_request)
        assert connector.recall(placement_request.placement_id, reason="dispute", at=now).accepted
        assert not connector.recall("PL-UNKNOWN", reason="dispute", at=now).accepted

    def test_status_updates_and_remittances_read_back(
        self,
        connector: AgencyConnector,
        placement_request: PlacementRequest,
        capabilities: AgencyConnectorCapabilities,
        agency_activity: Callable[[str, Money], None] | None,
        now: dt.datetime,
    ) -> None:
        """What the agency reports reads back, and its remittances post to the placement once."""
        if not capabilities.remittances:
            pytest.skip("remittances not claimed")
        _need(agency_activity, "agency_activity", "remittances")
        assert agency_activity is not None
        connector.place(placement_request)
        collected = placement_request.amount.allocate([1, 1])[0]
        agency_activity(placement_request.placement_id, collected)
        since = now - dt.timedelta(days=1)
        updates = connector.read_status_updates(since)
        assert any(u.placement_id == placement_request.placement_id for u in updates)
        remittances = [
            r for r in connector.read_remittances(since) if r.placement_id == placement_request.placement_id
        ]
        assert [r.remittance.amount for r in remittances] == [collected]
        placement = f.make_placement(
            id=placement_request.placement_id,
            amount_placed=placement_request.amount,
            status=_placed(),
            placed_at=now,
        )
        for _ in range(2):  # reading twice posts once
            for r in connector.read_remittances(since):
                if r.placement_id == placement.id:
                    placement, _event = record_remittance(placement, r.remittance)
        assert placement.collected == collected


def _placed() -> Any:
    from ..placements import PlacementStatus

    return PlacementStatus.PLACED
