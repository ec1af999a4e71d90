"""A small direct-debit provider plugin for the tests: it stores mandates and remembers what it was given.

It is a real plugin (registered through the ``carecollect_payment_providers`` hook), only its bank is in
memory: no SEPA bank runs on this machine.
"""

from __future__ import annotations

import hashlib
from typing import Any

from carecollect.payments import PaymentMethod
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.providers import (
    BasePaymentProvider,
    Instrument,
    PaymentErrorCode,
    PaymentProviderDescriptor,
    PaymentResult,
    ProviderCapabilities,
)

CAPABILITIES = ProviderCapabilities(methods={PaymentMethod.DIRECT_DEBIT}, currencies={"EUR"}, mandates=True)
#: Every mandate stored, by reference: (idempotency key, account id, the account number it was given).
MANDATES: dict[str, tuple[str, str, str]] = {}


class DebitBank(BasePaymentProvider):
    capabilities = CAPABILITIES

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        if instrument.method is not PaymentMethod.DIRECT_DEBIT:
            return PaymentResult.failed(PaymentErrorCode.UNSUPPORTED_OPERATION, "direct debit only")
        reference = "mdt_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
        MANDATES[reference] = (idempotency_key, account_id, instrument.token)
        return PaymentResult.ok(reference)


DEBIT = PaymentProviderDescriptor("test-debit", CAPABILITIES, DebitBank, "Test direct-debit bank")


@hookimpl
def carecollect_payment_providers() -> list[PaymentProviderDescriptor]:
    return [DEBIT]
