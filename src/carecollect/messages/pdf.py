"""A letter as a PDF, with fpdf2 (the optional extra ``carecollect[pdf]``).

fpdf2 is imported only when a PDF is asked for, so the core stays light.
Cyrillic, Norwegian and German letters need a Unicode TrueType font: pass one,
or let :func:`find_unicode_font` pick DejaVu Sans (Debian's
``fonts-dejavu-core``) or another TTF found on the system. Nothing is bundled.

>>> import datetime as dt
>>> from carecollect.messages.pdf import find_unicode_font
>>> find_unicode_font(search=()) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..channels import Channel
from ..errors import ConfigurationError
from .context import RenderedMessage

__all__ = ["FONT_SEARCH_PATHS", "find_unicode_font", "letter_pdf"]

#: Where :func:`find_unicode_font` looks, in order.
FONT_SEARCH_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/arial.ttf",
    "/usr/share/fonts",
)


def find_unicode_font(search: Sequence[str] = FONT_SEARCH_PATHS) -> Path | None:
    """The first TrueType font found in ``search`` (files, or folders searched for DejaVuSans/any .ttf).

    :param search: files or folders to look in.
    :returns: the font's path, or ``None``.
    """
    for item in search:
        p = Path(item)
        if p.is_file() and p.suffix.lower() == ".ttf":
            return p
        if p.is_dir():
            preferred = sorted(p.rglob("DejaVuSans.ttf"))
            if preferred:
                return preferred[0]
            any_ttf = sorted(p.rglob("*.ttf"))
            if any_ttf:
                return any_ttf[0]
    return None


def _fpdf() -> Any:
    try:
        import fpdf
    except ImportError:
        raise ConfigurationError(
            "PDF letters need fpdf2: install the optional extra with `pip install carecollect[pdf]`"
        ) from None
    return fpdf


def letter_pdf(message: RenderedMessage, *, font: str | Path | None = None) -> bytes:
    """Lay out a rendered letter on A4 pages and return the PDF bytes.

    :param message: a rendering for :attr:`Channel.LETTER <carecollect.channels.Channel.LETTER>`.
    :param font: a Unicode TrueType font; found with :func:`find_unicode_font` if omitted.
    :returns: the PDF document.
    :raises ConfigurationError: when fpdf2 is not installed, no Unicode font is
        found, or the message is not a letter.
    """
    if message.channel is not Channel.LETTER:
        raise ConfigurationError(f"letter_pdf needs a letter rendering, got {message.channel.value}")
    fpdf = _fpdf()
    path = Path(font) if font is not None else find_unicode_font()
    if path is None or not path.is_file():
        raise ConfigurationError(
            "no Unicode TrueType font found for the PDF letter; install fonts-dejavu-core or pass font="
        )
    pdf = fpdf.FPDF(format="A4")
    pdf.set_title(message.subject or "")
    pdf.set_lang(message.language)
    pdf.set_creator("carecollect")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_font("body", "", str(path))
    pdf.add_page()
    pdf.set_font("body", size=10)
    for line in message.text.splitlines():
        pdf.multi_cell(0, 5, line if line else " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
