"""The Vipps MobilePay provider passes carecollect's conformance kit against the local Vipps server."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import Instrument
from carecollect.testing import PaymentProviderContract
from conftest import CLIENT_SECRET, MSN, SUBSCRIPTION_KEY, WEBHOOK_SECRET, WEBHOOK_URL

from carecollect_vipps.testing_server import APPROVES, REJECTS, LocalVipps


class TestVippsProvider(PaymentProviderContract):
    @pytest.fixture
    def provider(self, vipps_provider):
        return vipps_provider

    @pytest.fixture
    def instrument(self):
        return Instrument(PaymentMethod.MOBILE, token=APPROVES)

    @pytest.fixture
    def declining_instrument(self):
        return Instrument(PaymentMethod.MOBILE, token=REJECTS)

    @pytest.fixture
    def webhook_secret(self):
        return WEBHOOK_SECRET

    @pytest.fixture
    def secrets(self, instrument, webhook_secret):
        return (instrument.token, webhook_secret, CLIENT_SECRET, SUBSCRIPTION_KEY)

    @pytest.fixture
    def signed_webhook(self, vipps_server: LocalVipps):
        def sign(event_id: str, signed_at: dt.datetime):
            event = {
                "msn": MSN,
                "reference": "cc-kit-payment-0001",
                "pspReference": event_id,
                "name": "CAPTURED",
                "amount": {"currency": "NOK", "value": 10000},
                "timestamp": signed_at.isoformat(),
                "idempotencyKey": "kit",
                "success": True,
            }
            body = json.dumps(event).encode()
            return vipps_server.sign(WEBHOOK_SECRET, WEBHOOK_URL, body, signed_at), body

        return sign
