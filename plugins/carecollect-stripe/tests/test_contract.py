"""The Stripe provider passes carecollect's conformance kit against the local Stripe server."""

from __future__ import annotations

import datetime as dt

import pytest
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import Instrument
from carecollect.testing import PaymentProviderContract
from conftest import API_KEY, WEBHOOK_SECRET

from carecollect_stripe.testing_server import LocalStripe


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
