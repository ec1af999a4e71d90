"""Scrubbing: keep secrets, card numbers and bank account numbers out of transcripts.

Gateways answer with JSON that may echo an API key, a card number (PAN), an
IBAN or a bearer token. Everything carecollect keeps from a plugin (a result's
raw response, an error message, a traced hook call) passes through
:func:`scrub` first, so none of it reaches a log, a repr or an exception.

* a card number is recognised by its shape (13 to 19 digits, spaces or dashes
  allowed) **and** the Luhn check; only its last four digits are kept (PCI DSS
  allows showing at most the first six and last four);
* an IBAN is recognised by its shape and the ISO 13616 mod-97 check;
* bearer tokens, ``sk_live_...``-style keys and ``password=...``-style pairs are
  blanked, and so is the value of any mapping key that names a secret;
* values a caller knows to be secret (its own API key) are blanked wherever they occur.

>>> from carecollect.scrubbing import scrub, scrub_text
>>> scrub_text("card 4111 1111 1111 1111 declined")
'card [PAN …1111] declined'
>>> scrub_text("IBAN DE89 3704 0044 0532 0130 00 debited")
'IBAN [IBAN] debited'
>>> scrub({"api_key": "k-123", "status": "ok", "auth": "Bearer abc.def"})
{'api_key': '[REDACTED]', 'status': 'ok', 'auth': 'Bearer [REDACTED]'}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "REDACTED",
    "SENSITIVE_KEY_PARTS",
    "SHOWN",
    "is_sensitive_key",
    "luhn_valid",
    "printable",
    "scrub",
    "scrub_mapping",
    "scrub_text",
]

#: What a scrubbed value is replaced with.
REDACTED = "[REDACTED]"

#: A mapping key containing one of these (case-insensitive, ``-`` read as ``_``)
#: has its whole value blanked.
SENSITIVE_KEY_PARTS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "card_number",
        "cardnumber",
        "cvc",
        "cvv",
        "iban",
        "account_number",
        "signature",
        "private_key",
        "cookie",
    }
)
#: Keys that are sensitive only when they are the whole key (``"pan"`` is in ``"company"``).
_EXACT_KEYS = frozenset({"pan", "pin", "number", "bic_account", "key"})

_PAN = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_API_KEY = re.compile(r"\b(?:sk|rk|whsec|pk)_(?:live|test)?_?[A-Za-z0-9]{6,}\b")
_PAIR = re.compile(
    r"(?i)\b(password|passwd|secret|client_secret|token|access_token|refresh_token|api[_-]?key)"
    r"(\"?\s*[=:]\s*\"?)([^\s\"&,;}]+)"
)


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check (ISO/IEC 7812 card numbers).

    :param digits: a string of decimal digits.
    :returns: whether the check digit is right.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _pan(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[PAN …{digits[-4:]}]"
    return match.group(0)


def _iban(match: re.Match[str]) -> str:
    return "[IBAN]" if _iban_valid(match.group(0)) else match.group(0)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with card numbers, IBANs, tokens, keys and the given ``secrets`` blanked.

    :param text: any text (a raw response, an error message).
    :param secrets: exact values to blank wherever they occur (strings shorter
        than four characters are ignored: blanking them would garble text).
    :returns: the scrubbed text.

    >>> scrub_text("POST /charge?api_key=sk_live_abcdef123456 token: x9y8", secrets=["x9y8"])
    'POST /charge?api_key=[REDACTED] token: [REDACTED]'
    """
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _API_KEY.sub(REDACTED, text)
    text = _IBAN.sub(_iban, text)
    return _PAN.sub(_pan, text)


def is_sensitive_key(key: object) -> bool:
    """True when a mapping key names a secret (its value is blanked whole).

    >>> is_sensitive_key("X-Api-Key"), is_sensitive_key("company"), is_sensitive_key("pan")
    (True, False, True)
    """
    if not isinstance(key, str):
        return False
    norm = key.lower().replace("-", "_")
    return norm in _EXACT_KEYS or any(part in norm for part in SENSITIVE_KEY_PARTS)


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` (mappings, lists, tuples, strings, bytes) with secrets blanked.

    Mappings become ``dict``; the values of sensitive keys (see
    :func:`is_sensitive_key`) become :data:`REDACTED`; strings go through
    :func:`scrub_text`; bytes are decoded as UTF-8 (with replacement) and
    scrubbed; numbers, booleans and ``None`` are kept as they are.

    :param value: what to scrub.
    :param secrets: exact values to blank as well.
    :returns: the scrubbed copy.

    >>> scrub({"card": {"number": "4242424242424242", "brand": "visa"}, "ids": ("a", 1)})
    {'card': {'number': '[REDACTED]', 'brand': 'visa'}, 'ids': ('a', 1)}
    """
    known = tuple(secrets)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_sensitive_key(k) and v not in (None, "") else scrub(v, known))
            for k, v in value.items()
        }
    if isinstance(value, str):
        return scrub_text(value, known)
    if isinstance(value, bytes | bytearray):
        return scrub_text(bytes(value).decode("utf-8", "replace"), known)
    if isinstance(value, list):
        return [scrub(v, known) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v, known) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub_text(str(value), known)


def scrub_mapping(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plugin's raw response (or ``None``) as a scrubbed ``dict``: the converter of every
    ``raw`` field on the plugin contracts' results (payments, messages, agencies).

    >>> scrub_mapping({"status": "ok", "card": "4111 1111 1111 1111"})
    {'status': 'ok', 'card': '[PAN …1111]'}
    >>> scrub_mapping(None)
    {}
    """
    return dict(scrub(dict(raw or {})))


#: The longest a name taken from input (a file, a section, a column, an id) is shown in a message.
SHOWN = 80


def printable(text: object, limit: int = SHOWN) -> str:
    """``text`` made safe to print anywhere: control characters and lone surrogates escaped, long text cut.

    A problem can name a section, a column or a file taken from the input
    itself; printed raw, a lone surrogate would make the terminal's encoder
    raise and a control character would garble the line.

    >>> printable("bad\\ud800name\\x00")
    'bad\\\\ud800name\\\\x00'
    >>> printable("x" * 100, 10)
    'xxxxxxxxx…'
    """
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cs", "Cf", "Co", "Cn"):
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
