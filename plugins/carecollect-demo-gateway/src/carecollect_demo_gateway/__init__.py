"""A hosted-card gateway for carecollect, simulated in memory: tokens "tok_decline..." are declined."""

# ruff: noqa: I001  (imports kept on three lines for the tutorial)
import json

from carecollect.hookspecs import hookimpl
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.providers import BasePaymentProvider, Instrument, PaymentErrorCode, PaymentResult
from carecollect.providers import PaymentProviderDescriptor, ProviderCapabilities, TransactionBook
from carecollect.providers import WebhookEvent, WebhookKind, verify_webhook_signature

CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.CARD}, currencies={"EUR", "NOK", "USD"}, two_step=True, partial_capture=True,
    refunds=True, partial_refunds=True, void=True, payment_links=True, webhooks=True,
)  # fmt: skip


class DemoGateway(BasePaymentProvider):
    capabilities = CAPABILITIES

    def __init__(self, settings):
        self._secret = settings["webhook_secret"].encode()
        self._book = TransactionBook("demo")  # stands in for the gateway's own records
        self.capture, self.void, self.refund = self._book.capture, self._book.void, self._book.refund

    def authorize(self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str):
        if instrument.token.startswith("tok_decline"):
            return PaymentResult.failed(
                PaymentErrorCode.DECLINED, "declined", raw={"token": instrument.token}
            )
        return self._book.authorize(amount, idempotency_key=idempotency_key)

    def create_payment_link(self, amount: Money, *, idempotency_key: str, account_id: str, expires_at=None):
        ref = self._book.authorize(amount, idempotency_key=idempotency_key).reference
        return PaymentResult.ok(ref, amount, url=f"https://pay.demo-gateway.invalid/{ref}")

    def parse_webhook(self, headers, body: bytes, *, now) -> WebhookEvent:
        signed_at = verify_webhook_signature(self._secret, headers, body, now=now)  # raises if bad or old
        data = json.loads(body)
        return WebhookEvent(data["id"], WebhookKind(data["type"]), data.get("reference"), signed_at, raw=data)


DEMO_GATEWAY = PaymentProviderDescriptor("demo-gateway", CAPABILITIES, DemoGateway, "Demo card gateway")


@hookimpl
def carecollect_payment_providers():
    return [DEMO_GATEWAY]
