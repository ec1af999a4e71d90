"""A local Vipps MobilePay API server per test, and a provider pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carecollect_vipps import VIPPS, VippsProvider
from carecollect_vipps.testing_server import LocalVipps, serve

CLIENT_ID = "fb492b5e-7907-4d83-ba20-c7fb60ca35de"
CLIENT_SECRET = "Y8Kteew6GE2ZmeycEt6egg=="
SUBSCRIPTION_KEY = "0f14ebcab0ec4b29ae0cb90d91b4a84a"
MSN = "123456"
WEBHOOK_SECRET = "090a478d-37ff-4e77-970e-d457aeb26a3a"
WEBHOOK_URL = "https://pay.clinic.example/webhooks/vipps?source=epayment"


@pytest.fixture
def vipps_server() -> Iterator[LocalVipps]:
    yield from serve(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, subscription_key=SUBSCRIPTION_KEY, msn=MSN
    )


@pytest.fixture
def settings(vipps_server: LocalVipps) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subscription_key": SUBSCRIPTION_KEY,
        "merchant_serial_number": MSN,
        "api_base": vipps_server.url,
        "return_url": "https://pay.clinic.example/vipps/return",
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_url": WEBHOOK_URL,
        "approval_timeout_seconds": "0.3",
        "poll_interval_seconds": "0.02",
    }


@pytest.fixture
def vipps_provider(settings: dict[str, str]) -> VippsProvider:
    provider = VIPPS.create(settings)
    assert isinstance(provider, VippsProvider)
    return provider
