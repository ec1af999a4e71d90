"""The sms channel against a local server playing Twilio, and the conformance kit."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import urllib.parse

import attrs
import pytest
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.messaging import DeliveryState, ReceiptStatus, ReplyIntent
from carecollect.plugins.providers import WebhookSignatureInvalid
from carecollect.run.event_intake import HARD_BOUNCE
from carecollect.testing import MessageChannelContract
from carecollect.testing import factories as f

from carecollect_sms import SMS, TwilioSMSChannel, choose_sender, sign, signature_matches

from .conftest import ACCOUNT, TOKEN

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
STATUS_URL = "https://billing.example.no/hooks/sms/status"
INBOUND_URL = "https://billing.example.no/hooks/sms/inbound"


def settings(twilio, **extra):
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from": "Legesenter",
        "from.US": "+15005550006",
        "status_callback": STATUS_URL,
        "inbound_url": INBOUND_URL,
        "base_url": twilio.base_url,
        "timeout": "5",
        **extra,
    }


def sms(**kw):
    fields = {
        "id": "MSG-1",
        "channel": Channel.SMS,
        "recipient": "+4791234567",
        "body": "Legesenteret: regning INV-1 på 450,00 kr forfaller 2. april. Stopp: svar STOPP.",
        "language": "nb",
        "opt_out_url": "https://example.org/opt-out/A-1",
    }
    return f.make_message(**(fields | kw))


def twilio_signed(url: str, params: dict[str, str], token: str = TOKEN) -> tuple[dict[str, str], bytes]:
    """What Twilio posts: the form body and its signature, computed here independently of the plugin."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return {"X-Twilio-Signature": digest, "Content-Type": "application/x-www-form-urlencoded"}, (
        urllib.parse.urlencode(params).encode()
    )


def status_callback(sid: str, status: str, code: str | None = None) -> tuple[dict[str, str], bytes]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT,
        "From": "Legesenter",
        "To": "+4791234567",
        "ApiVersion": "2010-04-01",
    }
    if code:
        params["ErrorCode"] = code
    return twilio_signed(STATUS_URL, params)


def incoming(text: str, sid: str = "SM-in-1") -> tuple[dict[str, str], bytes]:
    return twilio_signed(
        INBOUND_URL,
        {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT,
            "From": "+4791234567",
            "To": "+4759440000",
            "Body": text,
            "NumMedia": "0",
            "NumSegments": "1",
        },
    )


class TestSMSContract(MessageChannelContract):
    """The kit's channel tests against the local Twilio."""

    @pytest.fixture
    def channel(self, twilio):
        return SMS.create(settings(twilio))

    @pytest.fixture
    def message(self):
        return sms()

    @pytest.fixture
    def read_back(self, twilio):
        def find(sid):
            sent = twilio.find(sid)
            return None if sent is None else sent["Body"].encode()

        return find

    @pytest.fixture
    def rejected_message(self):
        return sms(id="MSG-BAD", recipient="+15005550001")

    @pytest.fixture
    def delivery_report_payload(self):
        return lambda sid: status_callback(sid, "delivered")

    @pytest.fixture
    def inbound_payload(self):
        return incoming

    @pytest.fixture
    def secrets(self):
        return (TOKEN,)


def test_found_through_the_entry_point():
    assert make_plugin_manager(environ={}).message_channel("sms") == SMS


def test_send_posts_the_documented_form(twilio):
    receipt = SMS.create(settings(twilio)).send(sms())
    assert receipt.status is ReceiptStatus.ACCEPTED and receipt.provider_message_id.startswith("SM")
    (sent,) = twilio.accepted
    assert sent["To"] == "+4791234567" and sent["From"] == "Legesenter"
    assert sent["StatusCallback"] == STATUS_URL
    assert sent["Body"] == sms().body


def test_us_numbers_get_the_number_sender_and_norway_the_alphanumeric(twilio):
    channel = SMS.create(settings(twilio))
    channel.send(sms(id="M-US", recipient="+12025550143"))
    channel.send(sms(id="M-DE", recipient="+4915112345678"))
    channel.send(sms(id="M-BG", recipient="+359888123456"))
    assert [m["From"] for m in twilio.accepted] == ["+15005550006", "Legesenter", "Legesenter"]


def test_an_alphanumeric_sender_is_refused_for_the_us(twilio):
    channel = SMS.create(settings(twilio) | {"from.US": ""})
    with pytest.raises(ConfigurationError, match="from.US"):
        channel.send(sms(recipient="+12025550143"))
    assert twilio.requests == 0
    assert choose_sender("DE", {"from": "+4915112345678"}) == "+4915112345678"
    with pytest.raises(ConfigurationError):
        choose_sender("NO", {"from": "Fjordklinikken"})  # 14 characters: no valid alphanumeric id


def test_same_message_id_is_posted_once_even_after_a_restart(twilio, tmp_path):
    journal = str(tmp_path / "sms-journal.db")
    first = SMS.create(settings(twilio, journal=journal)).send(sms())
    assert (
        SMS.create(settings(twilio, journal=journal)).send(sms()).provider_message_id
        == first.provider_message_id
    )
    assert twilio.requests == 1
    # without the journal a new process cannot know: it sends again
    SMS.create(settings(twilio)).send(sms())
    assert twilio.requests == 2


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15005550001", "21211"), ("+15005550009", "21614"), ("+15005550004", "21610")],
)
def test_permanent_refusals_are_rejected_without_the_number(twilio, caplog, number, code):
    with caplog.at_level(logging.DEBUG):
        receipt = SMS.create(settings(twilio)).send(sms(recipient=number))
    assert receipt.status is ReceiptStatus.REJECTED and receipt.detail.startswith(code)
    assert number not in receipt.detail + repr(receipt) + str(receipt.raw) + caplog.text


@pytest.mark.parametrize("number", ["+4790000429", "+4790000500"])
def test_rate_limits_and_server_errors_are_retry_later(twilio, number):
    receipt = SMS.create(settings(twilio)).send(sms(recipient=number))
    assert receipt.status is ReceiptStatus.RETRY_LATER
    # not remembered: the next attempt goes out
    assert SMS.create(settings(twilio)).send(sms()).status is ReceiptStatus.ACCEPTED


def test_no_server_is_retry_later(twilio):
    channel = SMS.create(settings(twilio) | {"base_url": "http://127.0.0.1:9", "timeout": "2"})
    assert channel.send(sms()).status is ReceiptStatus.RETRY_LATER


def test_wrong_credentials_are_a_configuration_error_without_the_token(twilio, caplog):
    channel = SMS.create(settings(twilio, auth_token="wrong-token-0123456789"))
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
        channel.send(sms())
    assert "wrong-token" not in str(info.value) + repr(channel) + str(vars(channel)) + caplog.text


def test_token_from_the_environment(twilio, monkeypatch):
    monkeypatch.setenv("CARECOLLECT_TEST_TWILIO_TOKEN", TOKEN)
    channel = SMS.create(settings(twilio, auth_token="env:CARECOLLECT_TEST_TWILIO_TOKEN"))
    assert channel.send(sms()).status is ReceiptStatus.ACCEPTED
    monkeypatch.delenv("CARECOLLECT_TEST_TWILIO_TOKEN")
    with pytest.raises(ConfigurationError, match="CARECOLLECT_TEST_TWILIO_TOKEN"):
        SMS.create(settings(twilio, auth_token="env:CARECOLLECT_TEST_TWILIO_TOKEN"))


@pytest.mark.parametrize("recipient", ["91234567", "+47 912 34 567", "+4712", "patient@example.org"])
def test_numbers_not_in_e164_are_rejected_before_twilio(twilio, recipient):
    assert SMS.create(settings(twilio)).send(sms(recipient=recipient)).status is ReceiptStatus.REJECTED
    assert twilio.requests == 0


def test_segments(twilio):
    channel = SMS.create(settings(twilio, max_segments="2"))
    # GSM-7: 306 septets fit two concatenated segments (2 × 153), 307 do not
    assert channel.send(sms(id="G-306", body="a" * 306)).status is ReceiptStatus.ACCEPTED
    assert channel.send(sms(id="G-307", body="a" * 307)).status is ReceiptStatus.REJECTED
    # the extension table's € takes two septets and never straddles two segments: 76 fit in each
    assert channel.send(sms(id="G-EUR", body="€" * 152)).status is ReceiptStatus.ACCEPTED
    assert channel.send(sms(id="G-EUR2", body="€" * 153)).status is ReceiptStatus.REJECTED
    # UCS-2 (Cyrillic): 70 in one segment, 67 per concatenated segment
    assert channel.send(sms(id="U-134", body="я" * 134)).status is ReceiptStatus.ACCEPTED
    rejected = channel.send(sms(id="U-135", body="я" * 135))
    assert rejected.status is ReceiptStatus.REJECTED and "3 ucs2 segments" in rejected.detail


@pytest.mark.parametrize(
    ("status", "code", "state"),
    [
        ("delivered", None, DeliveryState.DELIVERED),
        ("sent", None, DeliveryState.PENDING),
        ("undelivered", "30003", DeliveryState.UNDELIVERABLE),
        ("undelivered", "30005", DeliveryState.UNDELIVERABLE),
        ("failed", "30006", DeliveryState.UNDELIVERABLE),
        ("undelivered", "30007", DeliveryState.PENDING),  # carrier filtering: not the number's fault
        ("failed", "30008", DeliveryState.PENDING),
    ],
)
def test_status_callbacks(twilio, status, code, state):
    report = SMS.create(settings(twilio)).parse_delivery_report(
        *status_callback("SM123", status, code), now=NOW
    )
    assert report.provider_message_id == "SM123" and report.state is state and report.at == NOW
    assert (report.state is HARD_BOUNCE) == (code in ("30003", "30005", "30006"))
    if code:
        assert code in report.detail


def test_a_forged_or_unsigned_callback_is_refused(twilio):
    channel = SMS.create(settings(twilio))
    headers, body = status_callback("SM123", "undelivered", "30005")
    with pytest.raises(WebhookSignatureInvalid):
        channel.parse_delivery_report({}, body, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        channel.parse_delivery_report(headers, body.replace(b"30005", b"30006"), now=NOW)
    forged, body = twilio_signed(STATUS_URL, {"MessageSid": "SM1", "MessageStatus": "failed"}, token="other")
    with pytest.raises(WebhookSignatureInvalid):
        channel.parse_delivery_report(forged, body, now=NOW)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("STOP", ReplyIntent.OPT_OUT),
        ("stopp", ReplyIntent.OPT_OUT),
        ("Avslutt", ReplyIntent.OPT_OUT),
        ("ABMELDEN", ReplyIntent.OPT_OUT),
        ("СТОП", ReplyIntent.OPT_OUT),
        ("отказ", ReplyIntent.OPT_OUT),
        ("HELP", ReplyIntent.HELP),
        ("Hjelp", ReplyIntent.HELP),
        ("HILFE", ReplyIntent.HELP),
        ("помощ", ReplyIntent.HELP),
        ("Jeg har betalt", ReplyIntent.OTHER),
    ],
)
def test_incoming_keywords_in_every_language(twilio, text, intent):
    reply = SMS.create(settings(twilio)).parse_inbound(*incoming(text), now=NOW)
    assert reply.intent is intent and reply.channel is Channel.SMS
    assert reply.sender == "+4791234567" and reply.provider_message_id == "SM-in-1"
    assert "+4791234567" not in repr(reply)


def test_signature_matches_twilios_published_vectors():
    uri = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ]
    assert sign("12345", uri, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    dup = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert sign("12345", uri, dup) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # a proxy that adds the default port
    assert signature_matches("12345", uri.replace(".com", ".com:443"), params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_matches("12345", uri, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8")


def test_bad_settings_are_configuration_errors(twilio):
    for bad in (
        {},
        {"account_sid": ACCOUNT},
        {"account_sid": ACCOUNT, "auth_token": TOKEN},
        settings(twilio) | {"max_segments": "many"},
    ):
        with pytest.raises(ConfigurationError) as info:
            TwilioSMSChannel(bad)
        assert TOKEN not in str(info.value)


def test_other_channels_are_rejected(twilio):
    receipt = SMS.create(settings(twilio)).send(attrs.evolve(sms(), channel=Channel.EMAIL))
    assert receipt.status is ReceiptStatus.REJECTED and twilio.requests == 0


@pytest.mark.parametrize(
    "module",
    ["carecollect_sms", "carecollect_sms.channel", "carecollect_sms.senders", "carecollect_sms.signature"],
)
def test_the_examples_in_the_docstrings_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed
