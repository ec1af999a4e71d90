"""The pay page offers exactly the ways to pay the configured providers declare."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from tests.web.conftest import SECRET, WEB, open_store
from tests.web.test_pages import csrf

from carecollect.payments import PaymentMethod
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.providers import (
    BasePaymentProvider,
    PaymentProviderDescriptor,
    PaymentResult,
    ProviderCapabilities,
)
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore
from carecollect.web import create_app

WALLET_CAPS = ProviderCapabilities(
    methods={PaymentMethod.MOBILE}, currencies={"NOK", "EUR"}, countries={"NO"}, payment_links=True
)
#: a direct-debit provider that cannot store mandates (the payer signs in their bank)
BANK_DEBIT_CAPS = ProviderCapabilities(methods={PaymentMethod.DIRECT_DEBIT}, currencies={"EUR"})
#: a card gateway without payment links: it charges saved cards, it has no hosted page
SAVED_CARDS_CAPS = ProviderCapabilities(
    methods={PaymentMethod.CARD}, currencies={"EUR", "NOK"}, mandates=True
)
#: cards and wallets on one hosted page
CARD_WALLET_CAPS = ProviderCapabilities(
    methods={PaymentMethod.CARD, PaymentMethod.MOBILE}, currencies={"EUR"}, payment_links=True
)


class _Link(BasePaymentProvider):
    """Answers a payment link with a page on its own (unreachable) host."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def create_payment_link(
        self, amount: Any, *, idempotency_key: str, account_id: str, expires_at: Any
    ) -> Any:
        return PaymentResult.ok("pl_test", url="https://wallet.invalid/pay/1")


class Providers:
    """Stub providers registered by name; only their descriptors matter to the pay page."""

    @hookimpl
    def carecollect_payment_providers(self) -> list[PaymentProviderDescriptor]:
        return [
            PaymentProviderDescriptor("test-wallet", WALLET_CAPS, _Link, "Test Wallet: pay in the app"),
            PaymentProviderDescriptor("test-bank-debit", BANK_DEBIT_CAPS, _Link, "Debit signed at the bank"),
            PaymentProviderDescriptor("test-saved-cards", SAVED_CARDS_CAPS, _Link, "Saved cards"),
            PaymentProviderDescriptor("test-card-wallet", CARD_WALLET_CAPS, _Link, "Card and Wallet Co"),
        ]


@pytest.fixture
def pm() -> Any:
    import carecollect_demo_gateway
    from tests.web import debit_plugin

    return make_plugin_manager(
        load_entrypoints=False, plugins=[carecollect_demo_gateway, debit_plugin, Providers()]
    )


def ways(html: str) -> list[tuple[str, str | None]]:
    """The ways the page offers, in order: (way, provider) read from the rendered page."""
    found = []
    for m in re.finditer(r'(?:action="[^"]*/pay/([a-z0-9-]+)"[^>]*)?data-way="([a-z_]+)"', html):
        found.append((m.group(2), m.group(1)))
    return found


def page(
    db: Path, settings: RunSettings, pm: Any, clock: Any, token: str, providers: dict[str, Any], **web: Any
) -> str:
    from starlette.testclient import TestClient

    app = create_app(
        attrs.evolve(settings, payment_providers=providers),
        lambda: SQLiteStore(db),
        pm,
        web=attrs.evolve(WEB, **web),
        clock=clock,
    )
    try:
        with TestClient(app, base_url="https://testserver") as client:
            answer = client.get(f"/p/{token}")
            assert answer.status_code == 200
            return str(answer.text)
    finally:
        app.state.carecollect_close()


GATEWAY = {"demo-gateway": {"webhook_secret": SECRET, "checkout_url": "https://testserver/gateway"}}
ALL = {
    **GATEWAY,
    "test-debit": {},
    "test-wallet": {},
    "test-bank-debit": {},
    "test-saved-cards": {},
    "test-card-wallet": {},
    "not-installed": {},
}


@pytest.mark.parametrize(
    ("invoice", "currency", "providers", "bank", "expected"),
    [
        # a German patient paying euros: both card pages, the SEPA mandate, the transfer
        (
            "INV-de1",
            "EUR",
            ALL,
            True,
            [
                ("checkout", "demo-gateway"),
                ("checkout", "test-card-wallet"),
                ("sepa_mandate", None),
                ("bank_transfer", None),
            ],
        ),
        # a Norwegian patient paying kroner: the card page and the app that serves Norway; no SEPA
        ("INV-nb1", "NOK", ALL, False, [("checkout", "demo-gateway"), ("mobile_app", "test-wallet")]),
        # only the gateway configured: only the card
        ("INV-de1", "EUR", GATEWAY, False, [("checkout", "demo-gateway")]),
        # nothing online: the transfer alone
        ("INV-de1", "EUR", {"test-bank-debit": {}, "test-saved-cards": {}}, True, [("bank_transfer", None)]),
    ],
)
def test_the_pay_page_lists_exactly_the_declared_ways(
    db: Path,
    settings: RunSettings,
    pm: Any,
    clock: Any,
    link: Any,
    invoice: str,
    currency: str,
    providers: dict[str, Any],
    bank: bool,
    expected: list[tuple[str, str | None]],
) -> None:
    amount = "1000.00" if currency == "NOK" else "100.00"
    web = {} if bank else {"bank_transfer": None}
    html = page(db, settings, pm, clock, link(invoice, amount, currency), providers, **web)
    assert ways(html) == expected
    if ("mobile_app", "test-wallet") in expected:
        assert "Betal 1\u00a0000,00\u00a0kr med Test Wallet" in html
    if ("checkout", "test-card-wallet") in expected:
        assert "mit Karte, Apple Pay oder Google Pay" in html


def test_with_no_way_to_pay_the_page_says_call_us(
    db: Path, settings: RunSettings, pm: Any, clock: Any, link: Any
) -> None:
    html = page(db, settings, pm, clock, link("INV-de1"), {"test-wallet": {}}, bank_transfer=None)
    assert ways(html) == [] and "Bitte rufen Sie uns an" in html


def test_a_provider_the_page_does_not_offer_cannot_be_started(
    make_app: Any, link: Any, settings: RunSettings, db: Path
) -> None:
    from starlette.testclient import TestClient

    token = link("INV-de1")  # a German patient: the wallet serves Norway only
    with TestClient(
        make_app(attrs.evolve(settings, payment_providers=ALL)), base_url="https://testserver"
    ) as c:
        form = c.get(f"/p/{token}")
        for name in ("test-wallet", "test-saved-cards", "test-debit", "unknown"):
            refused = c.post(f"/p/{token}/pay/{name}", data={"csrf": csrf(form.text)}, follow_redirects=False)
            assert refused.status_code == 400, name
        offered = c.post(
            f"/p/{token}/pay/test-card-wallet", data={"csrf": csrf(form.text)}, follow_redirects=False
        )
        assert offered.status_code == 303
        assert offered.headers["location"].startswith("https://wallet.invalid/pay/1?return_url=")
    with open_store(db) as store:
        linked = store.provider_payment("test-card-wallet", "pl_test")
        assert linked is not None and linked.account_id == "A-de1"


def test_the_installed_payment_plugins_are_offered_as_they_declare(
    db: Path, settings: RunSettings, clock: Any, link: Any
) -> None:
    """The real plugins, where installed: Stripe's checkout, Vipps's app in Norway, SEPA's mandate in euros."""
    plugins = [
        pytest.importorskip(m) for m in ("carecollect_sepa", "carecollect_stripe", "carecollect_vipps")
    ]
    pm = make_plugin_manager(load_entrypoints=False, plugins=plugins)
    providers = {"sepa": {}, "stripe": {}, "vipps": {}}
    german = page(db, settings, pm, clock, link("INV-de1"), providers, bank_transfer=None)
    assert ways(german) == [("checkout", "stripe"), ("sepa_mandate", None)]
    norwegian = page(
        db, settings, pm, clock, link("INV-nb1", "1000.00", "NOK"), providers, bank_transfer=None
    )
    assert ways(norwegian) == [("checkout", "stripe"), ("mobile_app", "vipps")]
    assert "med Vipps MobilePay" in norwegian
