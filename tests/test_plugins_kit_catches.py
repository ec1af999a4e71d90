"""The conformance kit can fail: deliberately broken providers and channels fail the tests meant for them.

Each broken plugin below gets one thing wrong that real gateways get wrong; the
kit, run in a separate pytest process as a plugin author would run it, must
report exactly that test as failed (and not pass it by accident).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

BROKEN = '''
import json

import pytest
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import (
    BasePaymentProvider, Instrument, PaymentErrorCode, PaymentResult, ProviderCapabilities,
    TransactionBook, WebhookEvent, WebhookKind, sign_webhook, verify_webhook_signature,
)
from carecollect.testing import MessageChannelContract, PaymentProviderContract
from carecollect.plugins.builtin.outbox import OUTBOX

CAPS = ProviderCapabilities(
    methods={PaymentMethod.CARD}, currencies={"EUR"}, two_step=True, partial_capture=True,
    multiple_captures=True, refunds=True, partial_refunds=True, void=True, webhooks=True,
)
#: One capture per authorisation, as at Stripe.
ONE_CAPTURE = ProviderCapabilities(
    methods={PaymentMethod.CARD}, currencies={"EUR"}, two_step=True, partial_capture=True,
    refunds=True, partial_refunds=True, void=True, webhooks=True,
)
SECRET = "whsec_kit_0123456789"


class Good(BasePaymentProvider):
    capabilities = CAPS

    def __init__(self):
        self.book = TransactionBook("good", multiple_captures=True)

    def authorize(self, amount, instrument, *, idempotency_key, account_id):
        if instrument.token.startswith("tok_decline"):
            return PaymentResult.failed(PaymentErrorCode.DECLINED, "declined")
        return self.book.authorize(amount, idempotency_key=idempotency_key)

    def capture(self, reference, amount, *, idempotency_key):
        return self.book.capture(reference, amount, idempotency_key=idempotency_key)

    def void(self, reference, *, idempotency_key):
        return self.book.void(reference, idempotency_key=idempotency_key)

    def refund(self, reference, amount, *, idempotency_key):
        return self.book.refund(reference, amount, idempotency_key=idempotency_key)

    def parse_webhook(self, headers, body, *, now):
        at = verify_webhook_signature(SECRET.encode(), headers, body, now=now)
        data = json.loads(body)
        return WebhookEvent(data["id"], WebhookKind(data["type"]), None, at)


class Base(PaymentProviderContract):
    @pytest.fixture
    def declining_instrument(self):
        return Instrument(PaymentMethod.CARD, token="tok_decline_1")

    @pytest.fixture
    def webhook_secret(self):
        return SECRET

    @pytest.fixture
    def signed_webhook(self):
        def sign(event_id, at):
            body = json.dumps({"id": event_id, "type": "payment.succeeded"}).encode()
            return sign_webhook(SECRET.encode(), body, at=at), body
        return sign


class TestGood(Base):
    @pytest.fixture
    def provider(self):
        return Good()


class OneCapture(Good):
    """A correct gateway that takes one capture per authorisation and says so."""

    capabilities = ONE_CAPTURE

    def __init__(self):
        self.book = TransactionBook("one")


class TestOneCapture(Base):
    @pytest.fixture
    def provider(self):
        return OneCapture()


class CapturesTwiceUnclaimed(Good):
    """Claims one capture per authorisation, yet takes a second one."""

    capabilities = ONE_CAPTURE


class TestCapturesTwiceUnclaimed(Base):
    @pytest.fixture
    def provider(self):
        return CapturesTwiceUnclaimed()


class RaisesOnSecondCapture(OneCapture):
    """Refuses a second capture with an exception instead of a declined result."""

    def capture(self, reference, amount, *, idempotency_key):
        self.keys = getattr(self, "keys", set())
        taken = self.book.captured(reference)
        if taken is not None and taken.is_positive() and idempotency_key not in self.keys:
            raise RuntimeError("already captured")  # a replayed key still gets its first answer
        self.keys.add(idempotency_key)
        return super().capture(reference, amount, idempotency_key=idempotency_key)


class TestRaisesOnSecondCapture(Base):
    @pytest.fixture
    def provider(self):
        return RaisesOnSecondCapture()


class ForgetsKeys(Good):
    def authorize(self, amount, instrument, *, idempotency_key, account_id):
        self.n = getattr(self, "n", 0) + 1
        return super().authorize(amount, instrument, idempotency_key=f"{idempotency_key}-{self.n}", account_id=account_id)


class TestForgetsKeys(Base):
    @pytest.fixture
    def provider(self):
        return ForgetsKeys()


class RefundsAnything(Good):
    def refund(self, reference, amount, *, idempotency_key):
        return PaymentResult.ok(reference + "-r", amount)


class TestRefundsAnything(Base):
    @pytest.fixture
    def provider(self):
        return RefundsAnything()


class TrustsWebhooks(Good):
    def parse_webhook(self, headers, body, *, now):
        import datetime as dt
        data = json.loads(body)
        return WebhookEvent(data["id"], WebhookKind(data["type"]), None, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


class TestTrustsWebhooks(Base):
    @pytest.fixture
    def provider(self):
        return TrustsWebhooks()


class NoClockCheck(Good):
    def parse_webhook(self, headers, body, *, now):
        import datetime as dt
        at = verify_webhook_signature(SECRET.encode(), headers, body, now=now, tolerance=dt.timedelta(days=365))
        data = json.loads(body)
        return WebhookEvent(data["id"], WebhookKind(data["type"]), None, at)


class TestNoClockCheck(Base):
    @pytest.fixture
    def provider(self):
        return NoClockCheck()


class RaisesOnDecline(Good):
    def authorize(self, amount, instrument, *, idempotency_key, account_id):
        if instrument.token.startswith("tok_decline"):
            raise RuntimeError("card declined")
        return super().authorize(amount, instrument, idempotency_key=idempotency_key, account_id=account_id)


class TestRaisesOnDecline(Base):
    @pytest.fixture
    def provider(self):
        return RaisesOnDecline()


class LeaksToken(Good):
    def authorize(self, amount, instrument, *, idempotency_key, account_id):
        result = super().authorize(amount, instrument, idempotency_key=idempotency_key, account_id=account_id)
        return PaymentResult(result.success, reference=result.reference, error_code=result.error_code,
                             amount=result.amount, message=f"charged {instrument.token}")


class TestLeaksToken(Base):
    @pytest.fixture
    def provider(self):
        return LeaksToken()


class SendsTwice:
    """An outbox that forgets message ids: the same message twice gets two provider ids."""

    def __init__(self, inner):
        self.inner, self.capabilities, self.n = inner, inner.capabilities, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send(self, message):
        import attrs
        self.n += 1
        receipt = self.inner.send(attrs.evolve(message, id=f"{message.id}-{self.n}"))
        return attrs.evolve(receipt, message_id=message.id)


class TestSendsTwice(MessageChannelContract):
    @pytest.fixture
    def channel(self, tmp_path):
        return SendsTwice(OUTBOX.create({"folder": str(tmp_path)}))

    @pytest.fixture
    def delivery_report_payload(self):
        return lambda mid: ({}, json.dumps({"id": mid, "state": "delivered"}).encode())

    @pytest.fixture
    def inbound_payload(self):
        return lambda text: ({}, json.dumps({"id": "in-1", "from": "+4790000000", "text": text}).encode())
'''

#: Broken plugin -> the kit tests that must fail for it.
EXPECTED = {
    "TestForgetsKeys": {
        "test_same_key_twice_moves_money_once",
        "test_same_key_for_a_different_request_conflicts",
        "test_money_moving_calls_need_an_idempotency_key",
    },
    "TestRefundsAnything": {
        "test_refund_over_captured_fails",
        "test_partial_refunds_add_up",
        "test_partial_capture",
        "test_same_key_twice_moves_money_once",
    },
    "TestTrustsWebhooks": {
        "test_webhook_with_bad_signature_is_refused",
        "test_webhook_with_old_timestamp_is_refused",
    },
    "TestNoClockCheck": {"test_webhook_with_old_timestamp_is_refused"},
    "TestCapturesTwiceUnclaimed": {"test_second_capture_refused_when_not_claimed"},
    "TestRaisesOnSecondCapture": {"test_second_capture_refused_when_not_claimed"},
    "TestRaisesOnDecline": {"test_decline_is_a_result", "test_secrets_stay_out_of_transcripts"},
    "TestLeaksToken": {"test_secrets_stay_out_of_transcripts"},
    "TestSendsTwice": {"test_same_message_twice_is_sent_once"},
}


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    folder = tmp_path_factory.mktemp("broken-plugins")
    (folder / "test_broken.py").write_text(textwrap.dedent(BROKEN))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(folder),
            "test_broken.py",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failed: dict[str, set[str]] = {}
    for cls, test in re.findall(r"^FAILED test_broken\.py::(\w+)::(\w+)", proc.stdout, re.M):
        failed.setdefault(cls, set()).add(test)
    assert "passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    return failed


def test_a_correct_provider_passes_the_kit(kit_run: dict[str, set[str]]) -> None:
    assert "TestGood" not in kit_run, kit_run.get("TestGood")


def test_a_correct_one_capture_provider_passes_the_kit(kit_run: dict[str, set[str]]) -> None:
    """One capture per authorisation (Stripe's rule), claimed as such, is not a fault."""
    assert "TestOneCapture" not in kit_run, kit_run.get("TestOneCapture")


@pytest.mark.parametrize("broken", sorted(EXPECTED))
def test_the_kit_catches_a_broken_plugin(kit_run: dict[str, set[str]], broken: str) -> None:
    assert kit_run.get(broken, set()) == EXPECTED[broken]
