"""The demo gateway passes carecollect's conformance kit."""

import json

import pytest
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import Instrument, sign_webhook
from carecollect.testing import PaymentProviderContract

from carecollect_demo_gateway import DEMO_GATEWAY

SECRET = "whsec_demo_0123456789"


class TestDemoGateway(PaymentProviderContract):
    @pytest.fixture
    def provider(self):
        return DEMO_GATEWAY.create({"webhook_secret": SECRET})

    @pytest.fixture
    def declining_instrument(self):
        return Instrument(PaymentMethod.CARD, token="tok_decline_4000000000000002")

    @pytest.fixture
    def webhook_secret(self):
        return SECRET

    @pytest.fixture
    def signed_webhook(self):
        def sign(event_id, signed_at):
            body = json.dumps(
                {"id": event_id, "type": "payment.succeeded", "reference": "demo_pay_1"}
            ).encode()
            return sign_webhook(SECRET.encode(), body, at=signed_at), body

        return sign
