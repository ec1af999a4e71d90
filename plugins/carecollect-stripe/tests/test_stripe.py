"""What the Stripe provider sends, how it reads Stripe's answers and webhooks, and what reaches the ledger."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
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
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.settings import RunSettings
from carecollect.store.base import Mandate, ProviderPayment
from carecollect.store.sqlite import SQLiteStore
from conftest import API_KEY, WEBHOOK_SECRET

import carecollect_stripe
from carecollect_stripe import CAPABILITIES, STRIPE, StripeProvider, StripeUnreachable, stripe_idempotency_key
from carecollect_stripe.testing_server import LocalStripe

EUR = Money("120.50", "EUR")
VISA = Instrument(PaymentMethod.CARD, token="pm_card_visa")


def _now() -> dt.datetime:
    return dt.datetime.fromtimestamp(int(time.time()), tz=dt.UTC)


# -- what goes to Stripe ---------------------------------------------------------------------------


def test_every_mutating_call_is_form_encoded_with_a_key_derived_from_the_operation(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    auth = stripe_provider.authorize(EUR, VISA, idempotency_key="op-1", account_id="A-7")
    stripe_provider.capture(str(auth.reference), EUR, idempotency_key="op-2")
    stripe_provider.refund(str(auth.reference), Money("20.50", "EUR"), idempotency_key="op-3")
    stripe_provider.store_mandate(VISA, idempotency_key="op-4", account_id="A-7")
    posts = [r for r in stripe_server.requests if r["method"] == "POST"]
    assert [r["idempotency_key"] for r in posts] == [
        "carecollect:op-1",
        "carecollect:op-2",
        "carecollect:op-3",
        "carecollect:op-4:customer",
        "carecollect:op-4:attach",
    ]
    assert all(r["content_type"].startswith("application/x-www-form-urlencoded") for r in posts)
    create = posts[0]["params"]
    assert create["amount"] == "12050" and create["currency"] == "eur"  # minor units, exactly
    assert create["capture_method"] == "manual" and create["confirm"] == "true"
    assert create["metadata"] == {"account_id": "A-7", "carecollect_operation": "op-1"}
    assert posts[1]["params"] == {"amount_to_capture": "12050"}
    assert posts[2]["params"]["amount"] == "2050"


def test_checkout_session_carries_amount_urls_and_account_id_only(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    link = stripe_provider.create_payment_link(
        Money("1999", "NOK"),
        idempotency_key="link-1",
        account_id="A-42",
        expires_at=_now() + dt.timedelta(hours=2),
    )
    assert link.success and link.reference and link.reference.startswith("cs_")
    assert link.url == f"https://checkout.stripe.com/c/pay/{link.reference}"
    sent = stripe_server.requests[-1]["params"]
    assert sent["mode"] == "payment" and sent["payment_method_types"] == ["card"]
    assert sent["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "nok",
                "unit_amount": "199900",
                "product_data": {"name": "Payment on account"},
            },
        }
    ]
    assert sent["success_url"] == "https://pay.clinic.example/thanks"
    assert sent["cancel_url"] == "https://pay.clinic.example/cancelled"
    assert sent["metadata"] == {"account_id": "A-42", "carecollect_operation": "link-1"}
    assert sent["payment_intent_data"]["metadata"]["carecollect_origin"] == "checkout"
    assert abs(int(sent["expires_at"]) - int((_now() + dt.timedelta(hours=2)).timestamp())) <= 1


def test_a_link_valid_longer_than_a_checkout_session_gets_stripes_24_hours(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    link = stripe_provider.create_payment_link(
        EUR, idempotency_key="link-2", account_id="A-1", expires_at=_now() + dt.timedelta(days=14)
    )
    assert link.success and "expires_at" not in stripe_server.requests[-1]["params"]


def test_payment_links_need_return_urls(settings: dict[str, str]) -> None:
    provider = STRIPE.create({k: v for k, v in settings.items() if k != "success_url"})
    with pytest.raises(ConfigurationError, match="success_url"):
        provider.create_payment_link(EUR, idempotency_key="l", account_id="A-1", expires_at=_now())


# -- saved cards and strong customer authentication ------------------------------------------------


def test_a_saved_card_is_charged_off_session_for_a_plan_instalment(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    mandate = stripe_provider.store_mandate(VISA, idempotency_key="m-1", account_id="A-3")
    assert mandate.success and mandate.reference and mandate.reference.startswith("pm_")
    assert mandate.reference != VISA.token  # Stripe made a PaymentMethod of its own
    charge = stripe_provider.purchase(
        Money("50.00", "EUR"),
        Instrument(PaymentMethod.CARD, token=mandate.reference),
        idempotency_key="charge:PLAN-1#2",
        account_id="A-3",
    )
    assert charge.success and charge.amount == Money("50.00", "EUR")
    sent = stripe_server.requests[-1]
    assert sent["idempotency_key"] == "carecollect:charge:PLAN-1#2"
    assert sent["params"]["off_session"] == "true"
    assert sent["params"]["customer"].startswith("cus_")
    assert sent["params"]["capture_method"] == "automatic"


def test_an_instalment_the_bank_wants_authenticated_is_authentication_required(
    stripe_provider: StripeProvider,
) -> None:
    card = Instrument(PaymentMethod.CARD, token="pm_card_authenticationRequired")
    mandate = stripe_provider.store_mandate(card, idempotency_key="m-3ds", account_id="A-3")
    assert mandate.success and mandate.reference
    charge = stripe_provider.purchase(
        EUR, Instrument(PaymentMethod.CARD, mandate.reference), idempotency_key="c-3ds", account_id="A-3"
    )
    assert not charge.success
    assert charge.error_code is PaymentErrorCode.AUTHENTICATION_REQUIRED
    assert charge.reference and charge.reference.startswith("pi_")  # a payment link can finish it
    assert charge.raw["decline_code"] == "authentication_required"


def test_an_on_session_card_needing_3ds_is_authentication_required_too(
    stripe_provider: StripeProvider,
) -> None:
    card = Instrument(PaymentMethod.CARD, token="pm_card_authenticationRequired")
    result = stripe_provider.authorize(EUR, card, idempotency_key="a-3ds", account_id="A-3")
    assert result.error_code is PaymentErrorCode.AUTHENTICATION_REQUIRED
    assert result.raw["status"] == "requires_action"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("pm_card_chargeDeclined", PaymentErrorCode.DECLINED),
        ("pm_card_chargeDeclinedInsufficientFunds", PaymentErrorCode.INSUFFICIENT_FUNDS),
        ("pm_card_chargeDeclinedExpiredCard", PaymentErrorCode.EXPIRED_INSTRUMENT),
        ("pm_card_chargeDeclinedFraudulent", PaymentErrorCode.FRAUD_SUSPECTED),
    ],
)
def test_declines_map_to_one_code_each(
    stripe_provider: StripeProvider, token: str, code: PaymentErrorCode
) -> None:
    result = stripe_provider.purchase(
        EUR, Instrument(PaymentMethod.CARD, token), idempotency_key=f"d-{token}", account_id="A-1"
    )
    assert (result.success, result.error_code) == (False, code)


def test_capture_after_void_and_void_after_capture(stripe_provider: StripeProvider) -> None:
    voided = stripe_provider.authorize(EUR, VISA, idempotency_key="v-1", account_id="A-1")
    assert stripe_provider.void(str(voided.reference), idempotency_key="v-2").success
    again = stripe_provider.capture(str(voided.reference), EUR, idempotency_key="v-3")
    assert again.error_code is PaymentErrorCode.ALREADY_VOIDED
    captured = stripe_provider.purchase(EUR, VISA, idempotency_key="v-4", account_id="A-1")
    late = stripe_provider.void(str(captured.reference), idempotency_key="v-5")
    assert late.error_code is PaymentErrorCode.ALREADY_CAPTURED
    unknown = stripe_provider.capture("pi_unknown", EUR, idempotency_key="v-6")
    assert unknown.error_code is PaymentErrorCode.NOT_FOUND
    gone = Instrument(PaymentMethod.CARD, token="pm_1NoSuchCardAnywhere")
    bad = stripe_provider.purchase(EUR, gone, idempotency_key="v-7", account_id="A-1")
    assert bad.error_code is PaymentErrorCode.INVALID_INSTRUMENT


def test_a_partial_capture_releases_the_rest(stripe_provider: StripeProvider) -> None:
    auth = stripe_provider.authorize(EUR, VISA, idempotency_key="p-1", account_id="A-1")
    part = stripe_provider.capture(str(auth.reference), Money("100.00", "EUR"), idempotency_key="p-2")
    assert part.success and part.amount == Money("100.00", "EUR")
    rest = stripe_provider.capture(str(auth.reference), Money("20.50", "EUR"), idempotency_key="p-3")
    assert rest.error_code is PaymentErrorCode.ALREADY_CAPTURED
    over = stripe_provider.refund(str(auth.reference), Money("100.01", "EUR"), idempotency_key="p-4")
    assert over.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_REFUNDABLE


def test_unoffered_currency_and_method_are_results(stripe_provider: StripeProvider) -> None:
    yen = stripe_provider.purchase(Money("100", "JPY"), VISA, idempotency_key="y", account_id="A-1")
    assert yen.error_code is PaymentErrorCode.CURRENCY_NOT_SUPPORTED
    debit = Instrument(PaymentMethod.DIRECT_DEBIT, token="pm_sepa")
    assert (
        stripe_provider.purchase(EUR, debit, idempotency_key="dd", account_id="A-1").error_code
        is PaymentErrorCode.METHOD_NOT_SUPPORTED
    )


# -- secrets, misconfiguration and transport -------------------------------------------------------


def test_a_refused_key_is_a_configuration_error_without_the_key(settings: dict[str, str]) -> None:
    wrong = "sk_test_51WrongKeyWrongKeyWrongKey0000"
    provider = STRIPE.create(settings | {"api_key": wrong})
    with pytest.raises(ConfigurationError) as refused:
        provider.purchase(EUR, VISA, idempotency_key="k", account_id="A-1")
    assert wrong not in str(refused.value) and "WrongKey" not in str(refused.value)


def test_an_unreachable_stripe_is_a_transport_error(settings: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = STRIPE.create(settings | {"api_base": f"http://127.0.0.1:{port}"})
    with pytest.raises(StripeUnreachable) as down:
        provider.purchase(EUR, VISA, idempotency_key="k", account_id="A-1")
    assert isinstance(down.value, ConnectionError) and API_KEY not in str(down.value)


def test_keys_never_reach_logs_reprs_or_results(
    stripe_provider: StripeProvider, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    results = [
        stripe_provider.purchase(EUR, VISA, idempotency_key="s-1", account_id="A-1"),
        stripe_provider.purchase(
            EUR,
            Instrument(PaymentMethod.CARD, "pm_card_chargeDeclined"),
            idempotency_key="s-2",
            account_id="A-1",
        ),
        stripe_provider.create_payment_link(EUR, idempotency_key="s-3", account_id="A-1", expires_at=_now()),
    ]
    text = (
        caplog.text
        + "".join(capsys.readouterr())
        + repr(stripe_provider)
        + str(vars(stripe_provider))
        + "".join(repr(r) + str(r.raw) + r.message for r in results)
    )
    assert caplog.records, "the library logged nothing at debug: the test would prove nothing"
    for secret in (API_KEY, WEBHOOK_SECRET, "LocalCarecollect", "pi_secret_local"):
        assert secret not in text


def test_the_librarys_unscrubbed_debug_output_is_refused(
    settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "log", "debug")
    with pytest.raises(ConfigurationError, match="debug"):
        STRIPE.create(settings)


def test_a_publishable_key_is_refused_at_configuration() -> None:
    with pytest.raises(ConfigurationError, match="secret key"):
        STRIPE.create({"api_key": "pk_test_abc"})
    with pytest.raises(ConfigurationError, match="https"):
        STRIPE.create({"api_key": API_KEY, "api_base": "http://api.stripe.example"})


# -- webhooks ------------------------------------------------------------------------------------


def test_signature_scheme_agrees_with_the_stripe_library(stripe_server: LocalStripe) -> None:
    at = int(time.time())
    body = stripe_server.event(
        "payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}, created=at
    )
    header = stripe_server.signed(body, at=at)["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(body.decode(), header, WEBHOOK_SECRET, tolerance=300)
    assert carecollect_stripe.stripe_signature(WEBHOOK_SECRET, body, at) == header.split("v1=")[1]


def test_tolerance_is_300_seconds_and_a_rolled_secret_still_verifies(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    now = _now()
    at = int(now.timestamp())
    obj = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount_received": 500,
        "currency": "eur",
        "metadata": {},
    }
    body = stripe_server.event("payment_intent.succeeded", obj, created=at, event_id="evt_t")
    headers = stripe_server.signed(body, at=at)
    assert (
        stripe_provider.parse_webhook(headers, body, now=now + dt.timedelta(seconds=300)).event_id == "evt_t"
    )
    with pytest.raises(WebhookExpired):
        stripe_provider.parse_webhook(headers, body, now=now + dt.timedelta(seconds=301))
    rolled = {"Stripe-Signature": headers["Stripe-Signature"].replace(",v1=", ",v1=00ff,v1=")}
    assert stripe_provider.parse_webhook(rolled, body, now=now).amount == Money("5.00", "EUR")
    with pytest.raises(WebhookSignatureInvalid):
        stripe_provider.parse_webhook({"Stripe-Signature": f"t={at}"}, body, now=now)


def test_an_event_from_live_mode_is_refused_by_a_test_key(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    at = int(time.time())
    body = stripe_server.event("payment_intent.succeeded", {"id": "pi_1"}, created=at).replace(
        b'"livemode":false', b'"livemode":true'
    )
    with pytest.raises(WebhookSignatureInvalid, match="live"):
        stripe_provider.parse_webhook(stripe_server.signed(body, at=at), body, now=_now())


def test_events_map_to_the_kinds_the_ledger_takes(
    stripe_provider: StripeProvider, stripe_server: LocalStripe
) -> None:
    now = _now()
    at = int(now.timestamp())

    def parse(kind: str, obj: dict[str, object]):
        body = stripe_server.event(kind, obj, created=at)
        return stripe_provider.parse_webhook(stripe_server.signed(body, at=at), body, now=now)

    link = stripe_provider.create_payment_link(EUR, idempotency_key="w-1", account_id="A-9", expires_at=now)
    session = stripe_server.pay_session(str(link.reference))
    intent = stripe_server.intents[session["payment_intent"]]

    paid = parse("checkout.session.completed", session)
    assert (paid.kind, paid.reference, paid.amount) == (WebhookKind.PAYMENT_SUCCEEDED, link.reference, EUR)
    # the session's PaymentIntent succeeding is not a second payment
    assert parse("payment_intent.succeeded", intent).kind is WebhookKind.OTHER

    refund = stripe_provider.refund(str(link.reference), Money("20.00", "EUR"), idempotency_key="w-2")
    refunded = parse("refund.created", stripe_server.refunds[str(refund.reference)])
    assert (refunded.kind, refunded.reference, refunded.amount) == (
        WebhookKind.REFUNDED,
        link.reference,  # the payment carecollect linked, found through the session
        Money("20.00", "EUR"),
    )
    dispute = parse("charge.dispute.created", stripe_server.dispute(intent["id"], 10050))
    assert (dispute.kind, dispute.reference, dispute.amount) == (
        WebhookKind.CHARGEBACK_OPENED,
        link.reference,
        Money("100.50", "EUR"),
    )
    assert parse("charge.dispute.closed", stripe_server.dispute(intent["id"])).kind is WebhookKind.OTHER

    # a PaymentIntent of its own (a plan instalment) is its own reference
    own = stripe_provider.purchase(EUR, VISA, idempotency_key="w-3", account_id="A-9")
    own_dispute = parse("charge.dispute.created", stripe_server.dispute(str(own.reference)))
    assert own_dispute.reference == own.reference and own_dispute.amount == EUR

    revoked = parse("payment_method.detached", {"id": "pm_123", "object": "payment_method", "customer": None})
    assert (revoked.kind, revoked.reference) == (WebhookKind.MANDATE_REVOKED, "pm_123")


# -- through carecollect's intake --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 20, seed=3, as_of=dt.date(2026, 3, 2))
    yield s
    s.close()


def test_a_checkout_payment_is_posted_once_and_its_dispute_taken_back(
    store: SQLiteStore, settings: dict[str, str], stripe_server: LocalStripe, tmp_path: Path
) -> None:
    snap = next(
        s
        for s in store.iter_account_snapshots()
        if not s.plans
        and not s.disputes
        and any(
            i.status is InvoiceStatus.OPEN and s.ledger.invoice_balance(i.id).is_positive()
            for i in s.invoices
        )
    )
    owed = snap.ledger.balance
    provider = STRIPE.create(settings)
    link = provider.create_payment_link(owed, idempotency_key="pay-page-1", account_id=snap.account.id,
                                        expires_at=_now())  # fmt: skip
    assert link.reference
    payment_id = provider_payment_id("stripe", link.reference)
    store.link_provider_payment(
        ProviderPayment("stripe", link.reference, snap.account.id, payment_id, None, None)
    )
    session = stripe_server.pay_session(link.reference)

    pm = make_plugin_manager(load_entrypoints=False, plugins=[carecollect_stripe])
    run = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={"stripe": settings},
    )
    now = _now()
    at = int(now.timestamp())

    def delivery(kind: str, obj: dict[str, object], event_id: str) -> InboundEvent:
        body = stripe_server.event(kind, obj, created=at, event_id=event_id)
        return InboundEvent(InboundKind.PAYMENT, "stripe", body, stripe_server.signed(body, at=at))

    paid = delivery("checkout.session.completed", session, "evt_paid")
    report = intake(store, pm, run, [paid, paid], now)
    assert (report.payments, report.duplicates, report.failures) == (1, 1, ())
    book = store.ledger(snap.account.id)
    assert book.sum_of(EntryKind.PATIENT_PAYMENT) == owed and book.balance.is_zero()

    dispute = stripe_server.dispute(session["payment_intent"])
    reversed_ = intake(store, pm, run, [delivery("charge.dispute.created", dispute, "evt_dp")], now)
    assert (reversed_.payments_reversed, reversed_.failures) == (1, ())
    book = store.ledger(snap.account.id)
    assert book.sum_of(EntryKind.PAYMENT_REVERSED) == owed and book.balance == owed


def test_idempotency_key_helper_is_stable() -> None:
    assert stripe_idempotency_key("a") == stripe_idempotency_key("a")
    assert stripe_idempotency_key("a" * 400) == stripe_idempotency_key("a" * 400)
    assert stripe_idempotency_key("a" * 400) != stripe_idempotency_key("a" * 401)
    assert len(stripe_idempotency_key("a" * 400)) <= 255


def test_secrets_come_from_env_references_in_the_settings_file(
    tmp_path: Path, stripe_server: LocalStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carecollect.run.settings_file import parse_config

    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    text = f"""
[payment_providers.stripe]
api_key = "env:STRIPE_API_KEY"
webhook_secret = "env:STRIPE_WEBHOOK_SECRET"
api_base = "{stripe_server.url}"
success_url = "https://pay.clinic.example/thanks"
cancel_url = "https://pay.clinic.example/cancelled"
"""
    settings = parse_config(text, tmp_path).settings.payment_providers["stripe"]
    provider = STRIPE.create(settings)
    assert provider.purchase(EUR, VISA, idempotency_key="env-1", account_id="A-1").success
    assert API_KEY not in text and API_KEY not in repr(provider)


# -- plan instalments through the daily run -------------------------------------------------------------


def _plan_paid_by(store: SQLiteStore, provider: StripeProvider, token: str, now: dt.datetime) -> PaymentPlan:
    """An active 3-instalment plan, first instalment due, paid by a card saved at Stripe."""
    snap = next(
        s
        for s in store.iter_account_snapshots()
        if not s.plans
        and not s.disputes
        and s.ledger.balance.currency in CAPABILITIES.currencies
        and any(
            i.status is InvoiceStatus.OPEN and s.ledger.invoice_balance(i.id).is_positive()
            for i in s.invoices
        )
    )
    invoice = next(
        i
        for i in snap.invoices
        if i.status is InvoiceStatus.OPEN and snap.ledger.invoice_balance(i.id).is_positive()
    )
    balance = snap.ledger.invoice_balance(invoice.id)
    plan = PaymentPlan(
        f"PLAN-{invoice.id}",
        snap.account.id,
        (invoice.id,),
        balance,
        build_schedule(balance, 3, first_due=now.date() - dt.timedelta(days=1)),
        now - dt.timedelta(days=30),
        status=PlanStatus.ACTIVE,
    )
    saved = provider.store_mandate(
        Instrument(PaymentMethod.CARD, token),
        idempotency_key=f"mandate:{plan.id}",
        account_id=snap.account.id,
    )
    assert saved.success and saved.reference
    with store.transaction():
        store.put_plan(plan)
        store.put_mandate(
            Mandate(plan.id, plan.account_id, "stripe", "card", saved.reference, now - dt.timedelta(days=30))
        )
    return plan


@pytest.mark.parametrize(
    ("token", "charged"), [("pm_card_visa", True), ("pm_card_authenticationRequired", False)]
)
def test_the_daily_run_charges_a_due_instalment_off_session(
    store: SQLiteStore,
    settings: dict[str, str],
    stripe_server: LocalStripe,
    tmp_path: Path,
    token: str,
    charged: bool,
) -> None:
    now = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    plan = _plan_paid_by(store, STRIPE.create(settings), token, now)  # type: ignore[arg-type]
    pm = make_plugin_manager(load_entrypoints=False, plugins=[carecollect_stripe])
    run = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={"stripe": settings},
    )
    report = execute_run(store, now, pm, run)
    charge = [r for r in stripe_server.requests if r["path"] == "/v1/payment_intents"][-1]
    assert charge["idempotency_key"] == f"carecollect:charge:{plan.id}#1"  # the run's outbox key
    assert charge["params"]["off_session"] == "true"
    assert charge["params"]["amount"] == str(plan.instalments[0].amount.minor_units)
    paid = store.get_plan(plan.id).instalments[0].status is InstalmentStatus.PAID
    assert (report.charged, report.charges_failed, paid) == ((1, 0, True) if charged else (0, 1, False))
    if not charged:  # the bank wants Kari to authenticate: the run records why, and a link is the way on
        item = store.outbox_get(f"charge:{plan.id}#1")
        assert "authentication_required" in str(item.last_error)
