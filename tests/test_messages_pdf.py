"""PDF letters through the optional fpdf2 extra."""

from __future__ import annotations

import sys

import pytest

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.messages.examples import context
from carecollect.messages.pdf import find_unicode_font, letter_pdf
from carecollect.messages.render import render
from carecollect.outreach import OutreachPurpose as P


def test_missing_fpdf_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fpdf", None)
    msg = render(P.REMINDER, Channel.LETTER, "en", context(P.REMINDER, "us"))
    with pytest.raises(ConfigurationError, match=r"carecollect\[pdf\]"):
        letter_pdf(msg)


def test_only_letters() -> None:
    msg = render(P.REMINDER, Channel.SMS, "en", context(P.REMINDER, "us"))
    with pytest.raises(ConfigurationError, match="letter"):
        letter_pdf(msg)


def test_bulgarian_letter_as_pdf() -> None:
    pytest.importorskip("fpdf")
    font = find_unicode_font()
    if font is None:
        pytest.skip("no TrueType font on this machine")
    msg = render(P.REMINDER, Channel.LETTER, "bg", context(P.REMINDER, "bg"))
    pdf = letter_pdf(msg, font=font)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in pdf  # the Unicode font is embedded
    with pytest.raises(ConfigurationError, match="font"):
        letter_pdf(msg, font="/nonexistent/font.ttf")
