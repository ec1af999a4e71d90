"""The daily run texts through the local Twilio; its status callbacks and replies feed the run's intake."""

from __future__ import annotations

import datetime as dt

import pytest
from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.invoices import InvoiceStatus
from carecollect.patients import ContactPoint
from carecollect.plugins.manager import make_plugin_manager
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore
from carecollect.testing.factories import NOW, make_account, make_invoice, make_patient

import carecollect_sms

from .conftest import ACCOUNT
from .test_sms_channel import INBOUND_URL, STATUS_URL, twilio_signed

T0 = NOW + dt.timedelta(hours=5)  # 10:00 in Berlin, inside the allowed hours
NUMBER = "+4915112345678"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "run.db")
    s.put_creditor(Creditor("C-1", "Klinik am See", CreditorRole.PROVIDER, "DE"))
    consent = NOW - dt.timedelta(days=30)
    sms = ContactPoint(Channel.SMS, NUMBER, consent_at=consent)
    letter = ContactPoint(Channel.LETTER, "Hauptstraße 1\n10115 Berlin")  # the statement's way
    s.put_patient(make_patient(contact_points=(sms, letter)))
    s.put_account(make_account())
    s.put_invoice(
        make_invoice(status=InvoiceStatus.OPEN, issue_date=dt.date(2026, 3, 1), due_date=dt.date(2026, 3, 31))
    )
    yield s
    s.close()


@pytest.fixture
def pm():
    return make_plugin_manager(load_entrypoints=False, plugins=[carecollect_sms])


def settings(twilio, tmp_path):
    from .conftest import TOKEN

    plugins = dict.fromkeys(Channel, "outbox")
    plugins[Channel.SMS] = "sms"
    return RunSettings(
        channel_plugins=plugins,
        channel_config={
            "outbox": {"folder": str(tmp_path / "out")},
            "sms": {
                "account_sid": ACCOUNT,
                "auth_token": TOKEN,
                "from": "KlinikSee",
                "base_url": twilio.base_url,
                "status_callback": STATUS_URL,
                "inbound_url": INBOUND_URL,
            },
        },
    )


def _first_sms_day(store, pm, conf, twilio):
    """Run daily (the statement goes by letter first) until a reminder goes out by SMS."""
    for days in range(0, 90):
        at = T0 + dt.timedelta(days=days)
        execute_run(store, at, pm, conf)
        if twilio.accepted:
            return at
    raise AssertionError("no SMS went out within 90 days")


def test_an_undeliverable_number_becomes_a_bounce(store, pm, twilio, tmp_path):
    conf = settings(twilio, tmp_path)
    at = _first_sms_day(store, pm, conf, twilio)
    (sent,) = twilio.accepted
    assert sent["To"] == NUMBER and sent["From"] == "KlinikSee"
    attempt = next(a for a in store.attempts_for("A-1") if a.channel is Channel.SMS)
    assert attempt.provider_message_id == sent["sid"]
    headers, body = twilio_signed(
        STATUS_URL,
        {
            "MessageSid": sent["sid"],
            "MessageStatus": "undelivered",
            "ErrorCode": "30005",
            "AccountSid": ACCOUNT,
        },
    )
    taken = intake(store, pm, conf, [InboundEvent(InboundKind.DELIVERY_REPORT, "sms", body, headers)], at)
    assert (taken.bounced, taken.failures) == (1, ())
    (point,) = store.get_patient("P-1").points(Channel.SMS)
    assert point.undeliverable_at is not None
    # the same callback again (Twilio retries) changes nothing
    again = intake(store, pm, conf, [InboundEvent(InboundKind.DELIVERY_REPORT, "sms", body, headers)], at)
    assert again.duplicates == 1 and again.bounced == 0


def test_a_stopp_reply_opts_the_patient_out_and_a_forged_one_does_not(store, pm, twilio, tmp_path):
    conf = settings(twilio, tmp_path)
    _first_sms_day(store, pm, conf, twilio)
    forged_headers, body = twilio_signed(
        INBOUND_URL, {"MessageSid": "SM-in-9", "From": NUMBER, "Body": "STOPP"}, token="not-the-token"
    )
    taken = intake(store, pm, conf, [InboundEvent(InboundKind.REPLY, "sms", body, forged_headers)], T0)
    assert taken.opt_outs == 0 and taken.failures
    headers, body = twilio_signed(INBOUND_URL, {"MessageSid": "SM-in-9", "From": NUMBER, "Body": "STOPP"})
    taken = intake(store, pm, conf, [InboundEvent(InboundKind.REPLY, "sms", body, headers)], T0)
    assert taken.opt_outs == 1
    (point,) = store.get_patient("P-1").points(Channel.SMS)
    assert point.opted_out_at is not None
