"""Who an SMS is from: an alphanumeric sender id where the country allows it, a number elsewhere.

Countries differ. In Norway, Germany and Bulgaria a business may send from an
alphanumeric sender id (the clinic's short name, up to 11 letters, digits and
spaces); in the United States and Canada carriers accept only numbers (a long
code, toll-free number or short code), and Twilio refuses an alphanumeric
sender there. An alphanumeric sender cannot receive replies either, so a
message that says "reply STOP" must come from a number (or carry the opt-out
link instead).

Settings name the senders: ``from`` is the default, ``from.<CC>`` (ISO 3166
country code, e.g. ``from.US``) the sender for numbers of that country.
:func:`choose_sender` picks one and refuses a combination the country does not allow.

>>> choose_sender("NO", {"from": "Legesenter"})
'Legesenter'
>>> choose_sender("US", {"from": "Legesenter", "from.US": "+15005550006"})
'+15005550006'
>>> choose_sender("US", {"from": "Legesenter"})
Traceback (most recent call last):
...
carecollect.errors.ConfigurationError: the sms channel has no sender for numbers in US: ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from carecollect.errors import ConfigurationError

__all__ = ["ALPHANUMERIC_COUNTRIES", "choose_sender", "is_alphanumeric_sender", "is_number_sender"]

#: Countries where an alphanumeric sender id may be used without pre-registration beyond the
#: provider's own checks (Twilio's country guidelines: Norway, Germany, Bulgaria support it; the
#: US and Canada do not). A country not listed gets a number.
ALPHANUMERIC_COUNTRIES: frozenset[str] = frozenset({"NO", "DE", "BG"})

_ALNUM = re.compile(r"[A-Za-z0-9 ]{1,11}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def is_alphanumeric_sender(value: str) -> bool:
    """1 to 11 letters, digits and spaces, at least one letter (GSM 03.40's alphanumeric address).

    >>> [is_alphanumeric_sender(s) for s in ("Klinik 24", "12345", "Fjordklinikken")]
    [True, False, False]
    """
    return bool(_ALNUM.fullmatch(value)) and any(c.isalpha() for c in value)


def is_number_sender(value: str) -> bool:
    """An E.164 number (``+`` and 7 to 15 digits) or a short code (3 to 8 digits).

    >>> is_number_sender("+4790000000"), is_number_sender("22395"), is_number_sender("Klinik")
    (True, True, False)
    """
    return bool(_E164.fullmatch(value)) or value.isdigit() and 3 <= len(value) <= 8


def choose_sender(region: str, settings: Mapping[str, str]) -> str:
    """The sender for a recipient in ``region``.

    :param region: the recipient number's ISO 3166 country code.
    :param settings: the channel's settings (``from``, ``from.<CC>``).
    :returns: the sender.
    :raises ConfigurationError: no sender configured, a sender that is neither a number nor a
        valid alphanumeric id, or an alphanumeric id for a country that does not take one.
    """
    sender = settings.get(f"from.{region}") or settings.get("from") or ""
    if not sender:
        raise ConfigurationError(f"the sms channel has no sender for numbers in {region}; set 'from'")
    if is_number_sender(sender):
        return sender
    if not is_alphanumeric_sender(sender):
        raise ConfigurationError(
            "the sms channel's sender must be a phone number (E.164), a short code, or an "
            "alphanumeric id of 1 to 11 letters, digits and spaces"
        )
    if region not in ALPHANUMERIC_COUNTRIES:
        raise ConfigurationError(
            f"the sms channel has no sender for numbers in {region}: an alphanumeric sender id is "
            f"not allowed there; set 'from.{region}' to a phone number (E.164) or 'messaging_service_sid'"
        )
    return sender
