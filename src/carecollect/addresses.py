"""Contact addresses checked at the edge: phone numbers, e-mail addresses, postal addresses.

Importers pass every contact point through :func:`normalise_contact_address`
before it is stored, so the run only ever meets addresses a channel can use:

* a phone number (SMS, calls) is parsed with ``phonenumbers`` (Google's
  libphonenumber metadata) in the patient's country and stored in E.164
  (``+4791234567``); a number that is not valid for any region is refused;
* an e-mail address is checked with ``email-validator`` (syntax, and the
  domain's form; no DNS lookup: ``check_deliverability=False``) and stored in
  its normalised form (the domain in lower case and IDNA-decoded);
* a postal address (letters) is a few lines separated by line breaks (or, as
  FHIR importers join ``line``, ``postalCode`` and ``city``, by ``", "``),
  at most :data:`MAX_POSTAL_LINES` lines, each short enough for an envelope
  window, with a postcode of the country's form where the country is known.

Errors name the field and say what to write, never the value.

>>> normalise_phone("912 34 567", "NO"), normalise_phone("+49 (30) 1234567", None)
('+4791234567', '+49301234567')
>>> normalise_email("Kari.Nordmann@EXAMPLE.no")
'Kari.Nordmann@example.no'
>>> postal_lines("Storgata 1\\n0155 Oslo")
('Storgata 1', '0155 Oslo')
>>> normalise_phone("12", "NO")
Traceback (most recent call last):
...
carecollect.errors.ValidationError: ContactPoint: field 'address': not a valid phone number for NO; write it as +<country code><number>
"""

from __future__ import annotations

import re

from .channels import Channel
from .errors import ValidationError

__all__ = [
    "MAX_POSTAL_LINES",
    "MAX_POSTAL_LINE_LENGTH",
    "POSTCODE_PATTERNS",
    "check_postal_address",
    "normalise_contact_address",
    "normalise_email",
    "normalise_phone",
    "postal_lines",
    "region_of",
]

#: The most lines a postal address may have: the address zone of DIN 5008 (and of the Norwegian,
#: Bulgarian and US windows) holds six lines besides the recipient's name.
MAX_POSTAL_LINES = 6
#: The longest line that fits the narrowest window (85 mm at 10 pt): 40 characters.
MAX_POSTAL_LINE_LENGTH = 40

#: Postcodes by ISO 3166 country: Norway and Bulgaria four digits, Germany five, the US a ZIP
#: code (five digits, or ZIP+4) after the state's two letters.
POSTCODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "NO": re.compile(r"(?<!\d)\d{4}(?!\d)"),
    "BG": re.compile(r"(?<!\d)\d{4}(?!\d)"),
    "DE": re.compile(r"(?<!\d)\d{5}(?!\d)"),
    "US": re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?$"),
}


def region_of(value: str | None) -> str | None:
    """An ISO 3166 region from a country code or a policy-pack key (``"no"``, ``"us-ca"``, ``"DE"``).

    >>> region_of("us-ca"), region_of("no"), region_of("default"), region_of(None)
    ('US', 'NO', None, None)
    """
    if not value:
        return None
    head = value.split("-")[0].strip()
    return head.upper() if len(head) == 2 and head.isalpha() else None


def normalise_phone(text: str, region: str | None, *, record: str = "ContactPoint") -> str:
    """``text`` as an E.164 number.

    :param text: the number as written (spaces, dashes, brackets and a national prefix are fine).
    :param region: the patient's country (ISO 3166), for numbers written without ``+``.
    :param record: the record named in an error.
    :returns: ``+<country code><number>``.
    :raises ValidationError: not a valid number for the region (field ``address``).
    """
    import phonenumbers  # imported when first needed: the run only reads numbers already checked

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f" for {region}" if region else ""
        raise ValidationError(
            record, "address", f"not a valid phone number{where}; write it as +<country code><number>"
        )
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(text: str, *, record: str = "ContactPoint") -> str:
    """``text`` as a checked, normalised e-mail address (no DNS lookup).

    :param text: the address.
    :param record: the record named in an error.
    :returns: the normalised address.
    :raises ValidationError: not an e-mail address (field ``address``, with the reason).
    """
    import email_validator  # imported when first needed (it brings dnspython, unused here)

    try:
        checked = email_validator.validate_email(text.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        reason = str(exc).replace(text.strip(), "the address") if text.strip() else str(exc)
        raise ValidationError(record, "address", f"not a valid e-mail address ({reason[:120]})") from None
    return str(checked.normalized)


def postal_lines(address: str) -> tuple[str, ...]:
    """The lines of a postal address: split at line breaks, or at ``", "`` when it is one line.

    >>> postal_lines("Hauptstraße 5, 10115 Berlin")
    ('Hauptstraße 5', '10115 Berlin')
    """
    raw = address.replace("\r\n", "\n").split("\n")
    if len([x for x in raw if x.strip()]) == 1:
        raw = raw[0].split(", ")
    return tuple(" ".join(line.split()) for line in raw if line.strip())


def check_postal_address(address: str, country: str | None, *, record: str = "ContactPoint") -> str:
    """``address`` checked for an envelope window, with one line per line break.

    :param address: the address lines (without the recipient's name).
    :param country: ISO 3166 country, when known (its postcode form is then required).
    :param record: the record named in an error.
    :returns: the lines joined with ``"\\n"``.
    :raises ValidationError: fewer than two lines, more than :data:`MAX_POSTAL_LINES`, a line
        longer than :data:`MAX_POSTAL_LINE_LENGTH`, or no postcode of the country's form.

    >>> check_postal_address("1 Main Street, Springfield, IL 62701", "US")
    '1 Main Street\\nSpringfield, IL 62701'
    """
    lines = postal_lines(address)
    if country == "US" and len(lines) >= 3 and re.fullmatch(r"[A-Z]{2}\s+\d{5}(?:-\d{4})?", lines[-1]):
        lines = (*lines[:-2], f"{lines[-2]}, {lines[-1]}")  # "City, ST 12345" is one line
    if len(lines) < 2:
        raise ValidationError(
            record, "address", "a postal address needs a street line and a postcode/city line"
        )
    if len(lines) > MAX_POSTAL_LINES:
        raise ValidationError(record, "address", f"at most {MAX_POSTAL_LINES} lines fit an envelope window")
    if any(len(line) > MAX_POSTAL_LINE_LENGTH for line in lines):
        raise ValidationError(
            record,
            "address",
            f"a line longer than {MAX_POSTAL_LINE_LENGTH} characters does not fit the window",
        )
    pattern = POSTCODE_PATTERNS.get(country or "")
    if pattern is not None and not any(pattern.search(line) for line in lines[1:]):
        raise ValidationError(record, "address", f"no postcode of the {country} form after the first line")
    return "\n".join(lines)


def normalise_contact_address(channel: Channel, address: str, region: str | None) -> str:
    """The address of a contact point on ``channel`` as it is stored.

    :param channel: the :class:`~carecollect.channels.Channel`.
    :param address: the address as imported.
    :param region: the patient's country (ISO 3166), if known.
    :returns: E.164 for SMS and phone, the normalised address for e-mail, the checked lines for
        letters, the address unchanged for the portal.
    :raises ValidationError: an address the channel cannot use (field ``address``).

    >>> normalise_contact_address(Channel.SMS, "0888 123 456", "BG")
    '+359888123456'
    """
    if channel in (Channel.SMS, Channel.PHONE):
        return normalise_phone(address, region)
    if channel is Channel.EMAIL:
        return normalise_email(address)
    if channel is Channel.LETTER:
        return check_postal_address(address, region)
    return address
