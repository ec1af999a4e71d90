"""SMS segments as a phone network counts them: a two-septet or two-unit character never splits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.messages.checks import sms_segments
from carecollect.messages.context import SmsEncoding


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, SmsEncoding.GSM7, 1),
        ("a" * 161, SmsEncoding.GSM7, 2),
        ("€" * 80, SmsEncoding.GSM7, 1),  # 160 septets
        ("a" * 306, SmsEncoding.GSM7, 2),
        # 152 + the escape pair of € cannot share a 153-septet segment: € starts the second one,
        # which then holds 2 + 151 septets, and the last "a" needs a third
        ("a" * 152 + "€" + "a" * 152, SmsEncoding.GSM7, 3),
        ("я" * 70, SmsEncoding.UCS2, 1),
        ("я" * 134, SmsEncoding.UCS2, 2),
        ("я" * 135, SmsEncoding.UCS2, 3),
        # a character outside the BMP takes two UTF-16 units, which stay in one segment
        ("я" * 66 + "😀" + "я" * 66, SmsEncoding.UCS2, 3),
    ],
)
def test_segments(text: str, encoding: SmsEncoding, segments: int) -> None:
    assert sms_segments(text) == (encoding, segments)


@given(st.text(alphabet="ab€[{", max_size=700))
def test_gsm7_segments_never_fewer_than_the_septets_need(text: str) -> None:
    encoding, segments = sms_segments(text)
    septets = sum(2 if c in "€[{" else 1 for c in text)
    assert encoding is SmsEncoding.GSM7
    if septets <= 160:
        assert segments == 1
    else:
        assert -(-septets // 153) <= segments <= -(-septets // 152)
