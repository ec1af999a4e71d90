"""An SMS message channel for carecollect on Twilio's Messages API.

It sends with one documented HTTP request (no Twilio library needed), checks
Twilio's signature on status callbacks and incoming messages, turns an
undeliverable number into a bounce the daily run acts on, reads ``STOP`` and
``HELP`` in English, Norwegian, German and Bulgarian, counts GSM-7 and UCS-2
segments, and picks a sender each recipient's country allows.

>>> channel = SMS.create({"account_sid": "AC123", "auth_token": "tok-secret-0123", "from": "Legesenter"})
>>> channel
TwilioSMSChannel(account_sid='AC123', base_url='https://api.twilio.com')
>>> "tok-secret" in repr(channel) + str(vars(channel))
False
"""

from __future__ import annotations

from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.messaging import MessageChannelDescriptor

from .channel import CAPABILITIES, UNDELIVERABLE_NUMBER_CODES, TwilioSMSChannel, resolve_secret
from .senders import ALPHANUMERIC_COUNTRIES, choose_sender
from .signature import SIGNATURE_HEADER, sign, signature_matches

__all__ = [
    "ALPHANUMERIC_COUNTRIES",
    "CAPABILITIES",
    "SIGNATURE_HEADER",
    "SMS",
    "UNDELIVERABLE_NUMBER_CODES",
    "TwilioSMSChannel",
    "carecollect_message_channels",
    "choose_sender",
    "resolve_secret",
    "sign",
    "signature_matches",
]

#: The descriptor this plugin registers.
SMS = MessageChannelDescriptor(
    name="sms",
    capabilities=CAPABILITIES,
    factory=TwilioSMSChannel,
    description="Sends SMS through Twilio's Messages API (status callbacks, STOP/HELP, segments)",
)


@hookimpl
def carecollect_message_channels() -> list[MessageChannelDescriptor]:
    """The ``sms`` channel."""
    return [SMS]
