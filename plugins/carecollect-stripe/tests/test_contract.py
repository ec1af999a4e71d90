"""The Stripe provider passes carecollect's conformance kit against the local Stripe server."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from carecollect.payments import PaymentMethod
from carecollect.providers import Instrument, ProviderCapabilities
from carecollect.testing import PaymentProviderContract
from conftest import API_KEY, WEBHOOK_SECRET
from local_stripe import LocalStripe

#: Whether this carecollect's ProviderCapabilities can say "several captures of one authorisation".
#: Until it can, the kit's partial-capture test captures twice, which Stripe never allows.
KIT_KNOWS_MULTIPLE_CAPTURES = any("multi" in name for name in attrs.fields_dict(ProviderCapabilities))


class TestStripeProvider(PaymentProviderContract):
    @pytest.fixture
    def provider(self, stripe_provider):
        return stripe_provider

    @pytest.fixture
    def instrument(self):
        return Instrument(PaymentMethod.CARD, token="pm_card_visa")

    @pytest.fixture
    def declining_instrument(self):
        return Instrument(PaymentMethod.CARD, token="pm_card_chargeDeclinedInsufficientFunds")

    @pytest.fixture
    def webhook_secret(self):
        return WEBHOOK_SECRET

    @pytest.fixture
    def secrets(self, instrument, webhook_secret):
        return (instrument.token, webhook_secret, API_KEY)

    @pytest.fixture
    def signed_webhook(self, stripe_server: LocalStripe):
        def sign(event_id: str, signed_at: dt.datetime):
            at = int(signed_at.timestamp())
            obj = {
                "id": "pi_kit",
                "object": "payment_intent",
                "amount": 10000,
                "amount_received": 10000,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"account_id": "A-1"},
            }
            body = stripe_server.event("payment_intent.succeeded", obj, created=at, event_id=event_id)
            return stripe_server.signed(body, at=at), body

        return sign

    @pytest.mark.xfail(
        not KIT_KNOWS_MULTIPLE_CAPTURES,
        strict=True,
        reason="Stripe captures once (the rest is released); the kit on this branch still captures "
        "twice and needs the declared multiple-capture capability to skip that part",
    )
    def test_partial_capture(self, provider, amount, instrument, capabilities):
        super().test_partial_capture(provider, amount, instrument, capabilities)
