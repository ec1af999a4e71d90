"""Scrubbing, payment results and webhooks, message replies, agency requests: the contracts' own rules."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import ValidationError
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.agencies import PlacedInvoice, PlacementRequest
from carecollect.plugins.messaging import (
    ChannelCapabilities,
    Receipt,
    ReceiptStatus,
    ReplyIntent,
    classify_reply,
)
from carecollect.plugins.providers import (
    PaymentErrorCode,
    PaymentResult,
    ProviderCapabilities,
    TransactionBook,
    WebhookEvent,
    WebhookExpired,
    WebhookKind,
    WebhookSignatureInvalid,
    sign_webhook,
    verify_webhook_signature,
)
from carecollect.scrubbing import REDACTED, luhn_valid, scrub, scrub_text

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
SECRET = b"whsec_test_secret"


@pytest.mark.parametrize(
    "pan",
    ["4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011000990139424"],
)
def test_card_numbers_are_scrubbed(pan: str) -> None:
    out = scrub_text(f"charge failed for {pan}.")
    assert pan not in out and out.startswith("charge failed for [PAN …") and out.endswith("].")


def test_numbers_that_are_not_cards_or_ibans_survive() -> None:
    text = "invoice 4111111111111112 of 2026-03-02, phone +4790000000, amount 12345.67, DE00 1234"
    assert scrub_text(text) == text


def test_ibans_tokens_and_keys_are_scrubbed() -> None:
    text = "NO93 8601 1117 947 paid; Authorization: Bearer eyJhbGci.x.y; key sk_test_4eC39HqLyjWDarjtT1zdp7dc; password=hunter22"
    out = scrub_text(text)
    for secret in ("8601 1117 947", "eyJhbGci", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "hunter22"):
        assert secret not in out
    assert "[IBAN]" in out and "Bearer [REDACTED]" in out


def test_nested_structures_and_known_secrets() -> None:
    raw = {
        "data": [{"card": {"cvc": "123", "last4": "4242"}, "Api-Key": "abc"}],
        "note": "key k-999-x used",
        "n": 3,
    }
    out = scrub(raw, secrets=["k-999-x"])
    assert out == {
        "data": [{"card": {"cvc": REDACTED, "last4": "4242"}, "Api-Key": REDACTED}],
        "note": f"key {REDACTED} used",
        "n": 3,
    }
    assert scrub(b"card 4242424242424242") == "card [PAN …4242]"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=15, max_size=15), st.text(alphabet="abc ,.:", max_size=10))
def test_any_luhn_valid_card_number_is_scrubbed(digits: list[int], prefix: str) -> None:
    body = "4" + "".join(map(str, digits))
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    pan = body + check
    assert pan not in scrub_text(f"{prefix} {pan} end")


def test_payment_result_rules() -> None:
    with pytest.raises(ValidationError):
        PaymentResult(True, error_code=PaymentErrorCode.DECLINED)
    with pytest.raises(ValidationError):
        PaymentResult(False)
    r = PaymentResult.failed(
        PaymentErrorCode.DECLINED, raw={"card_number": "4111111111111111", "status": "declined"}
    )
    assert r.raw == {"card_number": REDACTED, "status": "declined"} and "4111" not in repr(r)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        r.success = True  # type: ignore[misc]


def test_capabilities_rules() -> None:
    with pytest.raises(ValidationError, match="partial_capture"):
        ProviderCapabilities(methods={PaymentMethod.CARD}, currencies={"EUR"}, partial_capture=True)
    with pytest.raises(ValidationError):
        ProviderCapabilities(methods=set(), currencies={"EUR"})
    with pytest.raises(ValidationError):
        ProviderCapabilities(methods={PaymentMethod.CARD}, currencies={"EURO"})
    with pytest.raises(ValidationError):
        ChannelCapabilities(channels=set())


def test_transaction_book_edges() -> None:
    book = TransactionBook("t", partial_capture=False)
    auth = book.authorize(Money("10.00", "EUR"), idempotency_key="a")
    assert auth.reference is not None
    partial = book.capture(auth.reference, Money("5.00", "EUR"), idempotency_key="c1")
    assert partial.error_code is PaymentErrorCode.AMOUNT_EXCEEDS_AUTHORIZED
    assert book.capture(auth.reference, Money("10.00", "EUR"), idempotency_key="c2").success
    assert book.void(auth.reference, idempotency_key="v").error_code is PaymentErrorCode.ALREADY_CAPTURED
    assert (
        book.refund("nope", Money("1.00", "EUR"), idempotency_key="r").error_code
        is PaymentErrorCode.NOT_FOUND
    )
    assert book.refund(auth.reference, Money("1.00", "NOK"), idempotency_key="r2").success is False
    with pytest.raises(ValidationError, match="idempotency_key"):
        book.authorize(Money("1.00", "EUR"), idempotency_key=" ")


def test_webhook_signature_checks() -> None:
    body = b'{"id": "evt_1"}'
    headers = sign_webhook(SECRET, body, at=NOW - dt.timedelta(minutes=4))
    assert verify_webhook_signature(SECRET, {k.lower(): v for k, v in headers.items()}, body, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook_signature(b"other secret", headers, body, now=NOW)
    with pytest.raises(WebhookSignatureInvalid, match="malformed"):
        verify_webhook_signature(SECRET, {"CareCollect-Signature": "v1=abc"}, body, now=NOW)
    with pytest.raises(WebhookExpired):
        verify_webhook_signature(SECRET, headers, body, now=NOW + dt.timedelta(minutes=2))
    future = sign_webhook(SECRET, body, at=NOW + dt.timedelta(minutes=10))
    with pytest.raises(WebhookExpired):
        verify_webhook_signature(SECRET, future, body, now=NOW)
    with pytest.raises(ValidationError):
        WebhookEvent("", WebhookKind.OTHER, None, NOW)


@pytest.mark.parametrize(
    ("text", "intent"),
    [("STOP", ReplyIntent.OPT_OUT), ("stop.", ReplyIntent.OPT_OUT), ("Opt out", ReplyIntent.OPT_OUT),
     ("Revoke", ReplyIntent.OPT_OUT), ("Stopp", ReplyIntent.OPT_OUT), ("Abmelden", ReplyIntent.OPT_OUT),
     ("СТОП", ReplyIntent.OPT_OUT), ("HELP", ReplyIntent.HELP), ("stop by tomorrow?", ReplyIntent.OTHER),
     ("", ReplyIntent.OTHER)],
)  # fmt: skip
def test_classify_reply(text: str, intent: ReplyIntent) -> None:
    assert classify_reply(text) is intent


def test_accepted_receipt_needs_provider_id() -> None:
    with pytest.raises(ValidationError):
        Receipt("MSG-1", ReceiptStatus.ACCEPTED)
    assert Receipt("MSG-1", ReceiptStatus.RETRY_LATER, detail="token=abc123").detail == "token=[REDACTED]"


def test_placement_request_carries_no_clinical_detail() -> None:
    """Neither the request nor its invoice lines have a field for codes, descriptions or diagnoses."""
    names = {a.name for a in attrs.fields(PlacementRequest)} | {a.name for a in attrs.fields(PlacedInvoice)}
    for forbidden in ("description", "code", "codes", "diagnosis", "lines", "procedure"):
        assert forbidden not in names
    from carecollect.testing.factories import make_placement_request

    request = make_placement_request()
    assert request.amount == Money("120.00", "EUR") and "Test Patient" not in repr(request)
    with pytest.raises(ValidationError, match="one currency"):
        attrs.evolve(
            request,
            invoices=(
                *request.invoices,
                attrs.evolve(request.invoices[0], open_balance=Money("1.00", "NOK")),
            ),
        )
