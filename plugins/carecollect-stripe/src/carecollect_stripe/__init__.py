"""Stripe for carecollect: cards, Apple Pay and Google Pay, saved cards for plans, refunds, disputes.

Register it with carecollect's settings file::

    [payment_providers.stripe]
    api_key = "env:STRIPE_API_KEY"
    webhook_secret = "env:STRIPE_WEBHOOK_SECRET"
    success_url = "https://pay.example.org/thanks"
    cancel_url = "https://pay.example.org/cancelled"

>>> STRIPE.name, sorted(m.value for m in STRIPE.capabilities.methods)
('stripe', ['card', 'mobile'])
>>> provider = STRIPE.create({"api_key": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
>>> provider
StripeProvider(api_base='https://api.stripe.com', mode='test')
>>> "4eC39H" in repr(provider) or "4eC39H" in str(vars(provider))
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.providers import PaymentProvider, PaymentProviderDescriptor

from .provider import (
    CAPABILITIES,
    StripeProvider,
    StripeRequestRefused,
    StripeUnreachable,
    stripe_idempotency_key,
)
from .webhooks import SIGNATURE_HEADER, StripeWebhookParser, stripe_signature

__all__ = [
    "CAPABILITIES",
    "SIGNATURE_HEADER",
    "STRIPE",
    "StripeProvider",
    "StripeRequestRefused",
    "StripeUnreachable",
    "StripeWebhookParser",
    "carecollect_payment_providers",
    "stripe_idempotency_key",
    "stripe_signature",
]


def _create(settings: Mapping[str, str]) -> PaymentProvider:
    return StripeProvider(settings)


#: The descriptor carecollect finds through the ``carecollect`` entry point.
STRIPE = PaymentProviderDescriptor(
    "stripe", CAPABILITIES, _create, "Stripe: cards, Apple Pay and Google Pay (Checkout and PaymentIntents)"
)


@hookimpl
def carecollect_payment_providers() -> Iterable[PaymentProviderDescriptor]:
    """The Stripe provider."""
    return [STRIPE]
