"""KID numbers (kundeidentifikasjon): the payer's reference on every AvtaleGiro claim and OCR payment.

A KID is digits ending in a check digit, computed with MOD10 (Luhn) or MOD11
(weights 2, 3, 4, 5, 6, 7 from the right), as agreed with Nets. A MOD11
remainder of 1 has no digit: that number cannot be a KID (Nets' rule is to
use ``-``; carecollect refuses it and the caller picks another number).

>>> mod10_check_digit("7992739871"), mod11_check_digit("8601111794")
('3', '7')
>>> kid_for_account("A-000123", length=10, algorithm=KidAlgorithm.MOD10)
'0000001230'
>>> is_valid_kid("0000001230", KidAlgorithm.MOD10), is_valid_kid("0000001231", KidAlgorithm.MOD10)
(True, False)
"""

from __future__ import annotations

import enum
import re

from carecollect.errors import ValidationError

__all__ = ["KidAlgorithm", "is_valid_kid", "kid_for_account", "mod10_check_digit", "mod11_check_digit"]


class KidAlgorithm(enum.Enum):
    """The check-digit method agreed with Nets."""

    MOD10 = "mod10"
    MOD11 = "mod11"


def mod10_check_digit(digits: str) -> str:
    """The Luhn (MOD10) check digit of ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def mod11_check_digit(digits: str) -> str | None:
    """The MOD11 check digit of ``digits`` (``None`` when the remainder is 1: no valid digit)."""
    total = sum(int(ch) * (2 + i % 6) for i, ch in enumerate(reversed(digits)))
    remainder = total % 11
    if remainder == 0:
        return "0"
    if remainder == 1:
        return None
    return str(11 - remainder)


def _check(digits: str, algorithm: KidAlgorithm) -> str | None:
    return mod10_check_digit(digits) if algorithm is KidAlgorithm.MOD10 else mod11_check_digit(digits)


def is_valid_kid(kid: str, algorithm: KidAlgorithm) -> bool:
    """Whether ``kid`` is 2-25 digits whose last digit is the check digit of the rest."""
    return bool(re.fullmatch(r"\d{2,25}", kid)) and _check(kid[:-1], algorithm) == kid[-1]


def kid_for_account(account_id: str, *, length: int, algorithm: KidAlgorithm) -> str:
    """The KID of a carecollect account: the digits of its id, zero-padded, plus the check digit.

    :raises ValidationError: the id has no digits, too many, or (MOD11) no valid check digit.
    """
    digits = re.sub(r"\D", "", account_id).lstrip("0") or ""
    record = f"Account {account_id}"
    if not digits or len(digits) > length - 1:
        raise ValidationError(record, "id", f"needs 1-{length - 1} digits to make a {length}-digit KID")
    body = digits.rjust(length - 1, "0")
    check = _check(body, algorithm)
    if check is None:
        raise ValidationError(
            record, "id", "has no MOD11 check digit (remainder 1); use MOD10 or another number"
        )
    return body + check
