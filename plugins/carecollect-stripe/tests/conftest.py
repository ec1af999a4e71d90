"""A local Stripe API server per test, and a provider pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carecollect_stripe import STRIPE, StripeProvider
from carecollect_stripe.testing_server import LocalStripe, serve

API_KEY = "sk_test_51LocalCarecollectKey0123456789"
WEBHOOK_SECRET = "whsec_LocalCarecollectSecret0123456789"


@pytest.fixture
def stripe_server() -> Iterator[LocalStripe]:
    yield from serve(API_KEY, WEBHOOK_SECRET)


@pytest.fixture
def settings(stripe_server: LocalStripe) -> dict[str, str]:
    return {
        "api_key": API_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "api_base": stripe_server.url,
        "success_url": "https://pay.clinic.example/thanks",
        "cancel_url": "https://pay.clinic.example/cancelled",
        "max_network_retries": "0",
    }


@pytest.fixture
def stripe_provider(settings: dict[str, str]) -> StripeProvider:
    provider = STRIPE.create(settings)
    assert isinstance(provider, StripeProvider)
    return provider
