"""The ``manual`` payment provider: cash, cheques and bank transfers recorded by staff.

Nothing is charged: staff record money that has already arrived, and the
provider checks it the way a gateway would (idempotency keys, refunds never
more than was received). Its book lives as long as the provider object; the
ledger is the lasting record.

>>> from carecollect.money import Money
>>> from carecollect.payments import PaymentMethod
>>> from carecollect.plugins.providers import Instrument
>>> provider = MANUAL.create()
>>> cash = Instrument(PaymentMethod.CASH, token="front-desk receipt 0042")
>>> paid = provider.purchase(Money("40.00", "NOK"), cash, idempotency_key="rcpt-0042", account_id="A-1")
>>> paid.success, provider.purchase(Money("40.00", "NOK"), cash, idempotency_key="rcpt-0042", account_id="A-1") == paid
(True, True)
>>> provider.authorize(Money("1.00", "NOK"), cash, idempotency_key="k", account_id="A-1").error_code.value
'unsupported_operation'
"""

from __future__ import annotations

from collections.abc import Mapping

from ...money import ISO_4217, Money
from ...payments import PaymentMethod
from ..hookspecs import hookimpl
from ..providers import (
    BasePaymentProvider,
    Instrument,
    PaymentErrorCode,
    PaymentProviderDescriptor,
    PaymentResult,
    ProviderCapabilities,
    TransactionBook,
    require_idempotency_key,
)

__all__ = ["MANUAL", "ManualProvider", "carecollect_payment_providers"]

#: What the manual provider claims: received money in any currency, refundable in part.
CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.CASH, PaymentMethod.CHEQUE, PaymentMethod.BANK_TRANSFER},
    currencies=frozenset(ISO_4217),
    refunds=True,
    partial_refunds=True,
)


class ManualProvider(BasePaymentProvider):
    """Records payments staff received; refunds them (paid out by staff).

    :param settings: unused; accepted so the provider is built like every other.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self._book = TransactionBook("manual", partial_capture=False)

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Record ``amount`` received by ``instrument.method``; ``instrument.token`` is the receipt number."""
        require_idempotency_key(idempotency_key, "purchase")
        if instrument.method not in CAPABILITIES.methods:
            return PaymentResult.failed(
                PaymentErrorCode.METHOD_NOT_SUPPORTED, f"{instrument.method.value} is not recorded by hand"
            )
        return self._book.authorize(amount, idempotency_key=idempotency_key, capture=True)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Record money paid back (never more than was received and not yet refunded)."""
        return self._book.refund(reference, amount, idempotency_key=idempotency_key)


#: The descriptor the built-in plugin registers.
MANUAL = PaymentProviderDescriptor(
    name="manual",
    capabilities=CAPABILITIES,
    factory=ManualProvider,
    description="Cash, cheques and bank transfers recorded by staff",
)


@hookimpl
def carecollect_payment_providers() -> list[PaymentProviderDescriptor]:
    """The ``manual`` provider."""
    return [MANUAL]
