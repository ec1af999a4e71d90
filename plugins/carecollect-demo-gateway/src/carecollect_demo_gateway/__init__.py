"""A hosted-card gateway for carecollect, simulated in memory: tokens "tok_decline..." are declined."""

# ruff: noqa: I001  (imports kept on three lines for the tutorial)
import json
from carecollect.plugins.hookspecs import hookimpl
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import BasePaymentProvider, Instrument, PaymentErrorCode, PaymentResult
from carecollect.plugins.providers import PaymentProviderDescriptor, ProviderCapabilities, TransactionBook
from carecollect.plugins.providers import WebhookEvent, WebhookKind, verify_webhook_signature
from carecollect_demo_gateway.hosted import checkout_token

CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.CARD}, currencies={"EUR", "NOK", "USD"}, two_step=True, partial_capture=True,
    refunds=True, partial_refunds=True, void=True, payment_links=True, webhooks=True,
)  # fmt: skip


class DemoGateway(BasePaymentProvider):
    capabilities = CAPABILITIES

    def __init__(self, settings):
        self._secret = settings["webhook_secret"].encode()
        self._page = settings.get("checkout_url", "https://pay.demo-gateway.invalid").rstrip("/")
        self._book = TransactionBook("demo")  # stands in for the gateway's own records
        self.capture, self.void, self.refund = self._book.capture, self._book.void, self._book.refund

    def authorize(self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str):
        if instrument.token.startswith("tok_decline"):
            return PaymentResult.failed(PaymentErrorCode.DECLINED, raw={"token": instrument.token})
        return self._book.authorize(amount, idempotency_key=idempotency_key)

    def create_payment_link(self, amount: Money, *, idempotency_key: str, account_id: str, expires_at=None):
        ref = "demo_link_" + checkout_token(self._secret, idempotency_key, amount)[-16:]  # same key, same ref
        return PaymentResult.ok(ref, amount, url=f"{self._page}/{checkout_token(self._secret, ref, amount)}")

    def parse_webhook(self, headers, body: bytes, *, now) -> WebhookEvent:
        signed_at = verify_webhook_signature(self._secret, headers, body, now=now)  # raises if bad or old
        d = json.loads(body)
        amount = Money.from_minor(d["amount"], d["currency"]) if "amount" in d else None
        return WebhookEvent(d["id"], WebhookKind(d["type"]), d.get("reference"), signed_at, amount, raw=d)


DEMO_GATEWAY = PaymentProviderDescriptor("demo-gateway", CAPABILITIES, DemoGateway, "Demo card gateway")


@hookimpl
def carecollect_payment_providers():
    return [DEMO_GATEWAY]
