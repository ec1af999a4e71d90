"""What the Vipps MobilePay provider sends, how it reads answers and webhooks, and what reaches the ledger."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.providers import (
    Instrument,
    PaymentErrorCode,
    WebhookExpired,
    WebhookKind,
    WebhookSignatureInvalid,
)
from carecollect.portfolio import load_portfolio
from carecollect.run.charges import provider_payment_id
from carecollect.run.event_intake import intake
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.settings import RunSettings
from carecollect.store.base import ProviderPayment
from carecollect.store.sqlite import SQLiteStore
from conftest import CLIENT_SECRET, MSN, SUBSCRIPTION_KEY, WEBHOOK_SECRET, WEBHOOK_URL

import carecollect_vipps
from carecollect_vipps import (
    VIPPS,
    VippsProvider,
    VippsUnreachable,
    sign_vipps_webhook,
    vipps_idempotency_key,
    vipps_reference,
)
from carecollect_vipps.testing_server import APPROVES, LocalVipps

NOK = Money("1250.00", "NOK")
PHONE = Instrument(PaymentMethod.MOBILE, token=APPROVES)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _posts(server: LocalVipps) -> list[dict[str, object]]:
    return [r for r in server.requests if r["method"] == "POST" and r["path"] != "/accesstoken/get"]


def test_payment_link_request_has_the_documented_shape(
    vipps_provider: VippsProvider, vipps_server: LocalVipps
) -> None:
    link = vipps_provider.create_payment_link(
        NOK, idempotency_key="link:A-5", account_id="A-5", expires_at=_now() + dt.timedelta(days=14)
    )
    assert link.success and link.reference == vipps_reference("link:A-5")
    assert re.fullmatch(r"[a-zA-Z0-9-]{8,50}", link.reference)
    assert link.url == f"https://landing.vipps.no/?token=local-{link.reference}"
    (create,) = _posts(vipps_server)
    assert create["path"] == "/epayment/v1/payments"
    assert create["json"] == {
        "amount": {"currency": "NOK", "value": 125000},  # minor units, exactly
        "paymentMethod": {"type": "WALLET"},
        "reference": link.reference,
        "userFlow": "WEB_REDIRECT",
        "returnUrl": "https://pay.clinic.example/vipps/return",
        "paymentDescription": "Payment on account",
        "metadata": {"account_id": "A-5"},
    }
    headers = create["headers"]
    assert isinstance(headers, dict)
    assert headers["Idempotency-Key"] == vipps_idempotency_key("link:A-5")
    assert headers["Merchant-Serial-Number"] == MSN
    assert headers["Ocp-Apim-Subscription-Key"] == SUBSCRIPTION_KEY
    assert headers["Vipps-System-Name"] == "carecollect"
    assert headers["Authorization"].startswith("Bearer eyJ")


def test_the_access_token_is_fetched_once_and_reused(
    vipps_provider: VippsProvider, vipps_server: LocalVipps
) -> None:
    for n in range(3):
        vipps_provider.create_payment_link(NOK, idempotency_key=f"t-{n}", account_id="A-1", expires_at=_now())
    assert vipps_server.token_calls == 1
    token_request = vipps_server.requests[0]
    assert token_request["path"] == "/accesstoken/get"
    headers = token_request["headers"]
    assert isinstance(headers, dict)
    assert {k.lower(): v for k, v in headers.items()}["client_secret"] == CLIENT_SECRET


def test_a_push_request_not_approved_in_time_is_cancelled_and_declined(
    vipps_provider: VippsProvider, vipps_server: LocalVipps
) -> None:
    silent = Instrument(PaymentMethod.MOBILE, token="4790000000")
    result = vipps_provider.authorize(NOK, silent, idempotency_key="push-1", account_id="A-1")
    assert result.error_code is PaymentErrorCode.DECLINED and "approved" in result.message
    assert vipps_server.payments[vipps_reference("push-1")]["state"] == "TERMINATED"
    assert _posts(vipps_server)[0]["json"]["customer"] == {"phoneNumber": "4790000000"}  # type: ignore[index]


def test_several_partial_captures_add_up_to_the_authorisation(vipps_provider: VippsProvider) -> None:
    auth = vipps_provider.authorize(NOK, PHONE, idempotency_key="pc", account_id="A-1")
    assert auth.success and auth.reference
    first = vipps_provider.capture(auth.reference, Money("1000.00", "NOK"), idempotency_key="pc-1")
    second = vipps_provider.capture(auth.reference, Money("250.00", "NOK"), idempotency_key="pc-2")
    assert first.success and second.success
    over = vipps_provider.capture(auth.reference, Money("0.01", "NOK"), idempotency_key="pc-3")
    assert over.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED
    late_void = vipps_provider.void(auth.reference, idempotency_key="pc-4")
    assert late_void.error_code is PaymentErrorCode.ALREADY_CAPTURED
    assert vipps_provider.refund(auth.reference, NOK, idempotency_key="pc-5").success
    again = vipps_provider.refund(auth.reference, Money("0.01", "NOK"), idempotency_key="pc-6")
    assert again.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE


def test_unknown_payment_and_unoffered_currency_are_results(vipps_provider: VippsProvider) -> None:
    assert (
        vipps_provider.capture("cc-unknown-0001", NOK, idempotency_key="u-1").error_code
        is PaymentErrorCode.NOT_FOUND
    )
    sek = vipps_provider.authorize(Money("10", "SEK"), PHONE, idempotency_key="u-2", account_id="A-1")
    assert sek.error_code is PaymentErrorCode.CURRENCY_NOT_SUPPORTED
    card = Instrument(PaymentMethod.CARD, token="tok")
    assert (
        vipps_provider.authorize(NOK, card, idempotency_key="u-3", account_id="A-1").error_code
        is PaymentErrorCode.METHOD_NOT_SUPPORTED
    )


def test_recurring_agreements_are_declared_not_offered(vipps_provider: VippsProvider) -> None:
    assert not VIPPS.capabilities.mandates
    refused = vipps_provider.store_mandate(PHONE, idempotency_key="m", account_id="A-1")
    assert refused.error_code is PaymentErrorCode.UNSUPPORTED_OPERATION


# -- secrets, misconfiguration and transport -------------------------------------------------------


def test_refused_credentials_are_a_configuration_error_without_the_secret(settings: dict[str, str]) -> None:
    wrong = "Wrong-Client-Secret-0000"
    provider = VIPPS.create(settings | {"client_secret": wrong})
    with pytest.raises(ConfigurationError) as refused:
        provider.create_payment_link(NOK, idempotency_key="x", account_id="A-1", expires_at=_now())
    assert wrong not in str(refused.value)


def test_an_unreachable_api_is_a_transport_error(settings: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = VIPPS.create(settings | {"api_base": f"http://127.0.0.1:{port}"})
    with pytest.raises(VippsUnreachable) as down:
        provider.create_payment_link(NOK, idempotency_key="x", account_id="A-1", expires_at=_now())
    assert isinstance(down.value, ConnectionError) and CLIENT_SECRET not in str(down.value)


def test_secrets_stay_out_of_reprs_vars_and_results(
    vipps_provider: VippsProvider, vipps_server: LocalVipps
) -> None:
    results = [
        vipps_provider.authorize(NOK, PHONE, idempotency_key="s-1", account_id="A-1"),
        vipps_provider.create_payment_link(NOK, idempotency_key="s-2", account_id="A-1", expires_at=_now()),
    ]
    token = next(iter(vipps_server.tokens))
    text = (
        repr(vipps_provider)
        + str(vars(vipps_provider))
        + "".join(repr(r) + str(r.raw) + r.message for r in results)
    )
    for secret in (CLIENT_SECRET, SUBSCRIPTION_KEY, WEBHOOK_SECRET, token, APPROVES):
        assert secret not in text


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="client_secret"):
        VIPPS.create({"client_id": "a", "subscription_key": "b", "merchant_serial_number": "123456"})
    base = {
        "client_id": "a",
        "client_secret": "b",
        "subscription_key": "c",
        "merchant_serial_number": "123456",
    }
    with pytest.raises(ConfigurationError, match="https"):
        VIPPS.create(base | {"api_base": "http://apitest.vipps.example"})
    assert VIPPS.create(base | {"environment": "production"}).api_base == "https://api.vipps.no"  # type: ignore[attr-defined]


# -- webhooks ------------------------------------------------------------------------------------


def _event(name: str = "CAPTURED", *, msn: str = MSN, psp: str = "2018200034") -> bytes:
    return json.dumps(
        {
            "msn": msn,
            "reference": "cc-payment-00001",
            "pspReference": psp,
            "name": name,
            "amount": {"currency": "NOK", "value": 35000},
            "timestamp": "2026-03-02T09:00:00.260Z",
            "idempotencyKey": "k",
            "success": True,
        }
    ).encode()


def test_the_plugins_signer_and_the_servers_agree(vipps_server: LocalVipps) -> None:
    at = _now()
    body = _event()
    ours = sign_vipps_webhook(WEBHOOK_SECRET, WEBHOOK_URL, body, at=at)
    theirs = vipps_server.sign(WEBHOOK_SECRET, WEBHOOK_URL, body, at)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["x-ms-content-sha256"] == theirs["x-ms-content-sha256"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("CAPTURED", WebhookKind.PAYMENT_SUCCEEDED),
        ("REFUNDED", WebhookKind.REFUNDED),
        ("ABORTED", WebhookKind.PAYMENT_FAILED),
        ("EXPIRED", WebhookKind.PAYMENT_FAILED),
        ("AUTHORIZED", WebhookKind.OTHER),
        ("CANCELLED", WebhookKind.OTHER),
        ("CREATED", WebhookKind.OTHER),
    ],
)
def test_event_names_map_to_ledger_kinds(vipps_provider: VippsProvider, name: str, kind: WebhookKind) -> None:
    at = _now()
    body = _event(name)
    event = vipps_provider.parse_webhook(
        sign_vipps_webhook(WEBHOOK_SECRET, WEBHOOK_URL, body, at=at), body, now=at
    )
    assert (event.kind, event.reference, event.amount, event.event_id) == (
        kind,
        "cc-payment-00001",
        Money("350.00", "NOK"),
        "2018200034",
    )


def test_a_failed_operation_posts_nothing(vipps_provider: VippsProvider) -> None:
    at = _now()
    body = _event().replace(b'"success": true', b'"success": false')
    event = vipps_provider.parse_webhook(
        sign_vipps_webhook(WEBHOOK_SECRET, WEBHOOK_URL, body, at=at), body, now=at
    )
    assert event.kind is WebhookKind.OTHER


def test_deliveries_for_another_url_sales_unit_or_time_are_refused(vipps_provider: VippsProvider) -> None:
    at = _now()
    body = _event()
    elsewhere = sign_vipps_webhook(WEBHOOK_SECRET, "https://pay.clinic.example/other", body, at=at)
    with pytest.raises(WebhookSignatureInvalid):
        vipps_provider.parse_webhook(elsewhere, body, now=at)
    other_msn = _event(msn="654321")
    with pytest.raises(WebhookSignatureInvalid, match="merchant serial number"):
        vipps_provider.parse_webhook(
            sign_vipps_webhook(WEBHOOK_SECRET, WEBHOOK_URL, other_msn, at=at), other_msn, now=at
        )
    signed = sign_vipps_webhook(WEBHOOK_SECRET, WEBHOOK_URL, body, at=at)
    assert vipps_provider.parse_webhook(signed, body, now=at + dt.timedelta(seconds=300))
    with pytest.raises(WebhookExpired):
        vipps_provider.parse_webhook(signed, body, now=at + dt.timedelta(seconds=301))


# -- through carecollect's intake --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 40, seed=1, as_of=dt.date(2026, 3, 2))
    yield s
    s.close()


def test_a_vipps_payment_is_posted_once_on_capture_and_a_refund_taken_back(
    store: SQLiteStore, settings: dict[str, str], vipps_server: LocalVipps, tmp_path: Path
) -> None:
    snap = next(
        s
        for s in store.iter_account_snapshots()
        if not s.plans
        and not s.disputes
        and s.ledger.balance.currency == "NOK"
        and any(
            i.status is InvoiceStatus.OPEN and s.ledger.invoice_balance(i.id).is_positive()
            for i in s.invoices
        )
    )
    owed = snap.ledger.balance
    provider = VIPPS.create(settings)
    link = provider.create_payment_link(
        owed, idempotency_key="pay-1", account_id=snap.account.id, expires_at=_now()
    )
    assert link.reference
    store.link_provider_payment(
        ProviderPayment(
            "vipps", link.reference, snap.account.id, provider_payment_id("vipps", link.reference), None, None
        )
    )
    vipps_server.approve(link.reference)  # the patient approves in the app
    assert provider.capture(link.reference, owed, idempotency_key="pay-1:capture").success

    pm = make_plugin_manager(load_entrypoints=False, plugins=[carecollect_vipps])
    run = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={"vipps": settings},
    )
    now = _now()

    def inbound() -> list[InboundEvent]:
        return [
            InboundEvent(InboundKind.PAYMENT, "vipps", body, headers)
            for headers, body in vipps_server.deliveries(
                WEBHOOK_SECRET, WEBHOOK_URL, link.reference or "", now
            )
        ]

    first = intake(store, pm, run, inbound(), now)
    assert (first.payments, first.failures) == (1, ())  # CREATED, AUTHORIZED: audit only; CAPTURED: posted
    book = store.ledger(snap.account.id)
    assert book.sum_of(EntryKind.PATIENT_PAYMENT) == owed and book.balance.is_zero()
    again = intake(store, pm, run, inbound(), now)  # redelivered: nothing changes
    assert again.duplicates == 3 and store.ledger(snap.account.id).entries == book.entries

    part = owed.allocate([1, 3])[0]
    assert provider.refund(link.reference, part, idempotency_key="refund-1").success
    refunded = intake(store, pm, run, inbound(), now)
    assert (refunded.payments_reversed, refunded.failures) == (1, ())
    book = store.ledger(snap.account.id)
    assert book.sum_of(EntryKind.PAYMENT_REVERSED) == part and book.balance == part


def test_secrets_come_from_env_references_in_the_settings_file(
    tmp_path: Path, vipps_server: LocalVipps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carecollect.run.settings_file import parse_config

    monkeypatch.setenv("VIPPS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("VIPPS_SUBSCRIPTION_KEY", SUBSCRIPTION_KEY)
    text = f"""
[payment_providers.vipps]
client_id = "fb492b5e-7907-4d83-ba20-c7fb60ca35de"
client_secret = "env:VIPPS_CLIENT_SECRET"
subscription_key = "env:VIPPS_SUBSCRIPTION_KEY"
merchant_serial_number = "{MSN}"
api_base = "{vipps_server.url}"
return_url = "https://pay.clinic.example/vipps/return"
"""
    provider = VIPPS.create(parse_config(text, tmp_path).settings.payment_providers["vipps"])
    link = provider.create_payment_link(NOK, idempotency_key="env-1", account_id="A-1", expires_at=_now())
    assert link.success and CLIENT_SECRET not in text
