"""Creditor-identifier check digits: every identifier made passes; a changed character fails.

A digit replaced by a digit, or a letter by a letter, changes the number by (a - b) * 10**k with
0 < |a - b| < 97, which 97 (a prime) never divides: ISO 7064 mod 97-10 catches every such change.
"""

from __future__ import annotations

import pytest
from carecollect.errors import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from carecollect_sepa import check_creditor_identifier

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _with_check_digits(country: str, business: str, national: str) -> str:
    number = int("".join(str(int(c, 36)) for c in national + country) + "00")
    return f"{country}{98 - number % 97:02d}{business}{national}"


@given(
    country=st.sampled_from(["DE", "AT", "NL", "FR", "BG", "IT", "ES"]),
    business=st.text(ALNUM, min_size=3, max_size=3),
    national=st.text(ALNUM, min_size=8, max_size=20),
    position=st.integers(min_value=0),
    replacement=st.integers(min_value=0),
)
def test_a_changed_character_of_the_national_id_or_check_digits_is_caught(
    country: str, business: str, national: str, position: int, replacement: int
) -> None:
    good = _with_check_digits(country, business, national)
    assert check_creditor_identifier(good) == good
    # the business code (positions 4-6) is not covered by the check, by definition
    covered = [2, 3, *range(7, len(good))]
    i = covered[position % len(covered)]
    same_kind = ALNUM[:10] if good[i].isdigit() else ALNUM[10:]
    new = same_kind[replacement % len(same_kind)]
    if new == good[i]:
        return
    bad = good[:i] + new + good[i + 1 :]
    with pytest.raises(ValidationError):
        check_creditor_identifier(bad)
