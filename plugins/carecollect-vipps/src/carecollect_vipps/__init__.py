"""Vipps MobilePay for carecollect: mobile payments in Norway (and MobilePay in Denmark and Finland).

Register it with carecollect's settings file::

    [payment_providers.vipps]
    client_id = "env:VIPPS_CLIENT_ID"
    client_secret = "env:VIPPS_CLIENT_SECRET"
    subscription_key = "env:VIPPS_SUBSCRIPTION_KEY"
    merchant_serial_number = "123456"
    environment = "test"
    return_url = "https://pay.example.no/vipps/return"
    webhook_url = "https://pay.example.no/webhooks/vipps"
    webhook_secret = "env:VIPPS_WEBHOOK_SECRET"

>>> VIPPS.name, sorted(m.value for m in VIPPS.capabilities.methods), VIPPS.capabilities.mandates
('vipps', ['mobile'], False)
>>> provider = VIPPS.create({"client_id": "id-1", "client_secret": "cs-Very-Secret",
...                          "subscription_key": "sub-Very-Secret", "merchant_serial_number": "123456"})
>>> provider
VippsProvider(api_base='https://apitest.vipps.no', msn='123456')
>>> "Very-Secret" in repr(provider) or "Very-Secret" in str(vars(provider))
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.providers import PaymentProvider, PaymentProviderDescriptor

from .provider import (
    CAPABILITIES,
    TEST_API_BASE,
    VippsProvider,
    VippsRequestRefused,
    VippsUnreachable,
    vipps_idempotency_key,
    vipps_reference,
)
from .webhooks import VippsWebhookParser, sign_vipps_webhook, vipps_signature

__all__ = [
    "CAPABILITIES",
    "TEST_API_BASE",
    "VIPPS",
    "VippsProvider",
    "VippsRequestRefused",
    "VippsUnreachable",
    "VippsWebhookParser",
    "carecollect_payment_providers",
    "sign_vipps_webhook",
    "vipps_idempotency_key",
    "vipps_reference",
    "vipps_signature",
]


def _create(settings: Mapping[str, str]) -> PaymentProvider:
    return VippsProvider(settings)


#: The descriptor carecollect finds through the ``carecollect`` entry point.
VIPPS = PaymentProviderDescriptor(
    "vipps", CAPABILITIES, _create, "Vipps MobilePay: mobile payments in the app (ePayment API)"
)


@hookimpl
def carecollect_payment_providers() -> Iterable[PaymentProviderDescriptor]:
    """The Vipps MobilePay provider."""
    return [VIPPS]
