"""The sms channel kept busy: requests in flight at its declared concurrency on kept-alive
connections, a rate limit from its settings, against the local server playing Twilio."""

from __future__ import annotations

import pytest
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.plugins.dispatch import ChannelSender
from carecollect.plugins.messaging import Receipt, ReceiptStatus
from carecollect.testing import factories as f

from carecollect_sms import SMS, TwilioSMSChannel

from .conftest import ACCOUNT, TOKEN


def _settings(twilio, **extra):
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from": "Legesenter",
        "base_url": twilio.base_url,
        **extra,
    }


def _texts(n: int):
    return [
        f.make_message(
            id=f"SMS-{i:03d}",
            channel=Channel.SMS,
            recipient=f"+47912{i:05d}",
            body=f"Regning INV-{i} forfaller.",
        )
        for i in range(n)
    ]


def test_the_declared_concurrency_sends_every_text_once_results_in_order(twilio) -> None:
    channel = TwilioSMSChannel(_settings(twilio))
    assert channel.capabilities.concurrency == SMS.capabilities.concurrency == 4
    try:
        with ChannelSender.for_channel(channel) as sender:
            results = list(sender.send_all(_texts(40)))
    finally:
        channel.close()
    assert [m.id for m, _ in results] == [f"SMS-{i:03d}" for i in range(40)]
    assert all(isinstance(r, Receipt) and r.status is ReceiptStatus.ACCEPTED for _, r in results)
    assert sorted(m["To"] for m in twilio.accepted) == sorted(f"+47912{i:05d}" for i in range(40))
    sids = {r.provider_message_id for _, r in results}
    assert sids == {m["sid"] for m in twilio.accepted}


def test_a_closed_channel_opens_its_connections_again(twilio) -> None:
    channel = TwilioSMSChannel(_settings(twilio))
    first, second = _texts(2)
    assert channel.send(first).status is ReceiptStatus.ACCEPTED
    channel.close()
    assert channel.send(second).status is ReceiptStatus.ACCEPTED
    channel.close()
    assert len(twilio.accepted) == 2


def test_connections_and_rate_limit_come_from_the_settings(twilio) -> None:
    channel = TwilioSMSChannel(_settings(twilio, connections="1", rate_limit="2.5"))
    channel.close()
    assert (channel.capabilities.concurrency, channel.capabilities.rate_limit) == (1, 2.5)


@pytest.mark.parametrize(
    ("name", "value"), [("connections", "0"), ("connections", "x"), ("rate_limit", "-1")]
)
def test_bad_connection_settings_are_configuration_errors(twilio, name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        TwilioSMSChannel(_settings(twilio, **{name: value}))
