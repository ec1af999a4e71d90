"""The local Twilio's webhooks are what the channel accepts, and its record file holds what it took."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from carecollect.plugins.messaging import DeliveryState
from carecollect.plugins.providers import WebhookSignatureInvalid

from carecollect_sms import SMS
from carecollect_sms.testing_server import main, serve

from .conftest import ACCOUNT, TOKEN
from .test_sms_channel import INBOUND_URL, STATUS_URL, settings, sms

NOW = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


def test_status_callbacks_and_replies_pass_the_channels_signature_check(twilio):
    channel = SMS.create(settings(twilio))
    receipt = channel.send(sms())
    headers, body = twilio.status_callback(receipt.provider_message_id, "undelivered", error_code="30005")
    report = channel.parse_delivery_report(headers, body, now=NOW)
    assert report.provider_message_id == receipt.provider_message_id
    assert report.state is DeliveryState.UNDELIVERABLE
    headers, body = twilio.status_callback(receipt.provider_message_id, "delivered")
    assert channel.parse_delivery_report(headers, body, now=NOW).state is DeliveryState.DELIVERED
    headers, body = twilio.incoming(INBOUND_URL, "+4791234567", "Legesenter", "STOPP")
    reply = channel.parse_inbound(headers, body, now=NOW)
    assert reply.is_opt_out and reply.sender == "+4791234567"
    # signed for another URL: the channel refuses it
    headers, body = twilio.incoming(STATUS_URL, "+4791234567", "Legesenter", "STOPP")
    with pytest.raises(WebhookSignatureInvalid):
        channel.parse_inbound(headers, body, now=NOW)


def test_no_status_callback_for_an_unknown_message(twilio):
    with pytest.raises(KeyError):
        twilio.status_callback("SM-never-sent", "delivered")


def test_record_file_holds_each_accepted_message(tmp_path):
    record = tmp_path / "sent.jsonl"
    with serve(ACCOUNT, TOKEN, record=record) as twilio:
        channel = SMS.create(settings(twilio))
        channel.send(sms(id="M-1"))
        channel.send(sms(id="M-2", body="Сметка"))
        channel.send(sms(id="M-3", recipient="+15005550001"))  # refused: not recorded
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [(m["encoding"], m["segments"]) for m in lines] == [("gsm7", 1), ("ucs2", 1)]
    assert [m["sid"] for m in lines] == [m["sid"] for m in twilio.accepted]


def test_unknown_paths_and_wrong_logins(twilio):
    assert httpx.get(twilio.base_url + "/2010-04-01/Accounts").status_code == 404
    answer = httpx.post(
        twilio.base_url + twilio.messages_path, data={"To": "+4791234567"}, auth=(ACCOUNT, "wrong")
    )
    assert answer.status_code == 401 and answer.json()["code"] == 20003


def test_command_line_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Twilio" in capsys.readouterr().out
