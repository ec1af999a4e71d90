"""Letters as PDF, laid out for window envelopes, with fpdf2 (the optional extra ``carecollect[pdf]``).

:func:`letters_pdf` sets one or more :class:`~carecollect.messages.letters.Letter`
objects on pages of one document (a print batch); :func:`letter_pdf` one letter.
Each letter starts on a new sheet and gets:

* the letterhead (the sender's name, address and contact lines) at the top;
* the sender's return line and the recipient's address inside the window of the
  country's standard envelope (:data:`~carecollect.messages.letters.LAYOUTS`), the
  address shrunk to fit the window's address zone rather than overflow it;
* the date and reference block, fold and punch marks in the left margin;
* the headline and the body: paragraphs set in full lines, headings, bullets, and
  tables whose amounts are right-aligned in one column (DejaVu Sans has tabular
  figures: every digit is equally wide, so the decimal commas line up);
* the pay link as a QR code with the link (or a short address) beside it; a web
  address is never broken across lines: it is set in DejaVu Sans Mono, smaller
  where it must be, on a line of its own when it does not fit the current one;
* "Page n of m" on every page, and from the second page on a running head.

The fonts are DejaVu Sans, Sans Bold and Sans Mono (Latin, Cyrillic, Greek), bundled
with carecollect (subset, under the DejaVu licence), so a letter looks the same on
every machine. fpdf2 and segno are imported only when a PDF is made.

Why fpdf2 and not HTML and CSS through WeasyPrint: a window letter is a fixed-position
document (the address must land within a millimetre of the window), which fpdf2 draws
in millimetres directly; WeasyPrint lays out flowing documents well, but needs Pango,
cairo-free but still native libraries (Pango and HarfBuzz through cffi) that a plain
``pip install`` on Windows or a slim container lacks. fpdf2 is pure Python, embeds
subset TrueType fonts and writes PDF text that ``pdftotext`` reads back, which the
tests use to check every page against the message.

>>> from carecollect.messages.letters import LAYOUTS, Letter, body_blocks
>>> letter = Letter("MSG-1", LAYOUTS["no"], "nb", ("Fjordklinikken AS", "Fjordveien 12", "0150 Oslo"),
...     "Fjordklinikken AS, Fjordveien 12, 0150 Oslo", ("Kari Nordmann", "Storgata 1", "0155 Oslo"),
...     "2. mars 2026", "INV-1", "Din faktura", tuple(body_blocks("Hei Kari,\\n\\nÅ betale  450,00 kr")))
>>> letter_pdf(letter)[:5]
b'%PDF-'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigurationError, ValidationError
from .letters import Block, BlockKind, Letter, LetterLayout

__all__ = ["FONT_DIR", "LetterPages", "letter_pdf", "letters_pdf"]

#: The bundled fonts (DejaVu, subset; see ``LICENSE`` there).
FONT_DIR = Path(__file__).parent / "fonts"

_PT = 25.4 / 72  # millimetres per point
_ASCENT = 0.928  # DejaVu's ascent and descent, in ems
_DESCENT = 0.236
_URL = re.compile(r"^\(?https?://\S+$")
_BODY = 10.0
_GREY = (90, 90, 90)


def _modules() -> tuple[Any, Any]:
    try:
        import fpdf
        import segno
    except ImportError:
        raise ConfigurationError(
            "PDF letters need fpdf2 and segno: install the optional extra with `pip install carecollect[pdf]`"
        ) from None
    return fpdf, segno


@attrs.frozen
class LetterPages:
    """Where one letter sits in a batch document.

    :param message_id: the letter's message id.
    :param first_page: its first page (from 1).
    :param last_page: its last page.
    """

    message_id: str
    first_page: int
    last_page: int

    @property
    def pages(self) -> int:
        """How many pages (and, printed single-sided, sheets) the letter has."""
        return self.last_page - self.first_page + 1


class _Writer:
    """Lays out one letter; with ``draw`` false it only counts its pages."""

    def __init__(self, pdf: Any, segno: Any, letter: Letter, pages: int | None) -> None:
        self.pdf = pdf
        self.segno = segno
        self.letter = letter
        self.layout: LetterLayout = letter.layout
        self.draw = pages is not None
        self.total = pages or 0
        self.page = 0
        self.y = 0.0

    # -- primitives -----------------------------------------------------------------------------
    def font(self, family: str, size: float, style: str = "") -> None:
        self.pdf.set_font(family, style, size)

    def width(self, text: str, family: str = "body", size: float = _BODY, style: str = "") -> float:
        # the same words recur in every letter of a batch: measure each once per document
        widths: dict[tuple[str, str, str, float], float] = self.pdf.carecollect_widths
        key = (text, family, style, size)
        found = widths.get(key)
        if found is None:
            self.font(family, size, style)
            found = widths[key] = float(self.pdf.get_string_width(text))
        return found

    def put(
        self,
        x: float,
        top: float,
        text: str,
        *,
        family: str = "body",
        size: float = _BODY,
        style: str = "",
        colour: tuple[int, int, int] = (0, 0, 0),
        link: str | None = None,
    ) -> None:
        """Write ``text`` with its line box's top at ``top`` (the baseline below it by the ascent)."""
        if not self.draw or not text:
            return
        self.font(family, size, style)
        self.pdf.set_text_color(*colour)
        self.pdf.text(x, top + _ASCENT * size * _PT, text)
        if link:
            self.pdf.link(x, top, self.pdf.get_string_width(text), (_ASCENT + _DESCENT) * size * _PT, link)

    def whole(self, text: str, size: float, room: float) -> None:
        """Refuse a web address that would not fit ``room`` even at the smallest size."""
        if self.width(text, "mono", size) > room:
            raise ValidationError(
                f"Letter {self.letter.message_id}", "pay_link", "a web address too long to print on one line"
            )

    def fitted(self, text: str, family: str, size: float, room: float, smallest: float = 5.0) -> float:
        """The largest size up to ``size`` at which ``text`` fits ``room`` (never below ``smallest``)."""
        while size > smallest and self.width(text, family, size) > room:
            size = round(size - 0.25, 2)
        return size

    # -- pages -----------------------------------------------------------------------------------
    @property
    def limit(self) -> float:
        return self.layout.size[1] - self.layout.bottom

    def new_page(self) -> None:
        self.page += 1
        lay = self.layout
        if self.draw:
            self.pdf.add_page(format=lay.size)
            label = self.letter.labels["page"].format(page=self.page, pages=self.total)
            w = self.width(label, size=8)
            self.put((lay.size[0] - w) / 2, lay.size[1] - 14, label, size=8, colour=_GREY)
            self.put(lay.left, lay.size[1] - 9, self.letter.message_id, size=5.5, colour=_GREY)
        if self.page == 1:
            self.first_page()
            self.y = lay.body_top
        else:
            head = " · ".join(x for x in (self.letter.sender[0], self.letter.reference) if x)
            self.put(lay.left, 10, head, size=7.5, colour=_GREY)
            self.y = 20.0

    def ensure(self, height: float) -> None:
        if self.y + height > self.limit:
            self.new_page()

    def first_page(self) -> None:
        lay, letter = self.layout, self.letter
        if self.draw:
            self.pdf.set_draw_color(120, 120, 120)
            self.pdf.set_line_width(0.2)
            for fold in lay.folds:
                self.pdf.line(3, fold, 8 if fold != 148.5 else 10, fold)
        head_x = lay.size[0] - lay.right - 70  # the sender's address and contact lines: 70 mm at the right
        name_size = self.fitted(letter.sender[0], "body", 13, head_x - lay.left - 5, 8)
        self.put(lay.left, 12, letter.sender[0], size=name_size, style="B")
        for i, line in enumerate(letter.sender[1:5]):
            self.put(head_x, 11 + i * 3.6, line, size=self.fitted(line, "body", 8, 70, 5))
        # the window: the return line, then the address, shrunk to fit the zone
        ret = lay.return_line
        size = self.fitted(letter.return_line, "body", 7, ret.w, 5.5)
        self.put(ret.x, ret.bottom - (_ASCENT + _DESCENT) * size * _PT - 0.3, letter.return_line, size=size)
        zone = lay.address
        size = 10.0
        while size > 7 and (
            (len(letter.recipient) - 1) * size * _PT * 1.18 + (_ASCENT + _DESCENT) * size * _PT > zone.h - 0.4
            or max(self.width(ln, size=size) for ln in letter.recipient) > zone.w
        ):
            size -= 0.5
        step = size * _PT * 1.18
        for i, line in enumerate(letter.recipient):
            self.put(zone.x, zone.y + 0.2 + i * step, line, size=size)
        # the information block
        y = lay.info.y
        rows = [(letter.labels["date"], letter.date_text)]
        if letter.reference:
            rows.append((letter.labels["reference"], letter.reference))
        for label, value in rows:
            self.put(lay.info.x, y, label, size=7, colour=_GREY)
            self.put(lay.info.x, y + 3, value, size=self.fitted(value, "body", 9.5, lay.info.w, 6))
            y += 9

    # -- body ------------------------------------------------------------------------------------
    def words(self, text: str, x: float, room: float, size: float = _BODY, style: str = "") -> None:
        """Set ``text`` in lines from ``x`` with ``room`` mm, breaking only at spaces; a web address
        goes in monospace, on a line of its own when needed, shrunk until it fits, never broken."""
        line_h = size * _PT * 1.32
        space = self.width(" ", size=size, style=style)
        line: list[tuple[str, str, float, float]] = []  # (text, family, size, width)
        used = 0.0

        def flush() -> None:
            nonlocal line, used
            if not line:
                return
            self.ensure(line_h)
            cx = x
            i = 0
            while i < len(line):
                word, family, wsize, w = line[i]
                if family == "mono":
                    top = self.y + (size - wsize) * _PT * _ASCENT
                    self.put(cx, top, word, family="mono", size=wsize, link=word.strip("().,;"))
                    cx += w + space
                    i += 1
                    continue
                # a run of body words is one string: the same positions, far fewer drawing calls
                j = i
                while j < len(line) and line[j][1] == "body":
                    j += 1
                self.put(cx, self.y, " ".join(t for t, *_ in line[i:j]), size=size, style=style)
                cx += sum(item[3] for item in line[i:j]) + space * (j - i)
                i = j
            self.y += line_h
            line, used = [], 0.0

        for word in text.split(" "):
            if not word:
                continue
            if _URL.match(word):
                wsize = self.fitted(word, "mono", size - 1, room, 4)
                self.whole(word, wsize, room)
                item = (word, "mono", wsize, self.width(word, "mono", wsize))
            else:
                item = (word, "body", size, self.width(word, size=size, style=style))
            extra = item[3] + (space if line else 0.0)
            if line and used + extra > room:
                flush()
                extra = item[3]
            line.append(item)
            used += extra
        flush()

    def block(self, block: Block) -> None:
        lay = self.layout
        room = lay.text_width
        if block.kind is BlockKind.HEADING:
            self.ensure(4.6 * 3 + 3)
            self.y += 1.5
            self.words(block.items[0], lay.left, room, size=10.5, style="B")
            self.y += 0.8
        elif block.kind is BlockKind.PARAGRAPH:
            self.words(block.items[0], lay.left, room)
            self.y += 2.6
        elif block.kind is BlockKind.LINES:
            for item in block.items:
                self.words(item, lay.left, room)
            self.y += 2.6
        elif block.kind is BlockKind.BULLETS:
            for item in block.items:
                self.ensure(4.6)
                self.put(lay.left + 1, self.y, "•")
                self.words(item, lay.left + 5, room - 5)
                self.y += 0.8
            self.y += 1.8
        else:
            self.table(block.rows)
            self.y += 2.6

    def table(self, rows: Sequence[tuple[str, str]]) -> None:
        lay = self.layout
        col = min(lay.text_width, 120.0)
        line_h = _BODY * _PT * 1.4
        for label, value in rows:
            self.ensure(line_h)
            vw = self.width(value, size=_BODY)
            size = self.fitted(label, "body", _BODY, col - vw - 4, 6)
            self.put(lay.left, self.y, label, size=size)
            self.put(lay.left + col - vw, self.y, value)
            if self.draw:
                self.pdf.set_draw_color(200, 200, 200)
                self.pdf.set_line_width(0.1)
                self.pdf.line(lay.left, self.y + line_h - 0.6, lay.left + col, self.y + line_h - 0.6)
            self.y += line_h

    def pay_block(self) -> None:
        link = self.letter.pay_link
        if not link:
            return
        lay = self.layout
        side = 28.0
        self.ensure(side + 6)
        self.y += 3
        if self.draw:  # (the page count needs only the block's height)
            qr = self.segno.make(link, error="m")
            modules = qr.symbol_size(scale=1, border=4)[0]
            cell = side / modules
            self.pdf.set_fill_color(0, 0, 0)
            for r, row in enumerate(qr.matrix):
                c = 0
                while c < len(row):
                    if row[c]:
                        start = c
                        while c < len(row) and row[c]:
                            c += 1
                        self.pdf.rect(
                            lay.left + (start + 4) * cell,
                            self.y + (r + 4) * cell,
                            (c - start) * cell,
                            cell,
                            style="F",
                        )
                    else:
                        c += 1
        x = lay.left + side + 4
        room = lay.text_width - side - 4
        top = self.y + 3
        self.put(x, top, self.letter.labels["scan"], size=9, style="B")
        shown = self.letter.pay_short or link
        size = self.fitted(shown, "mono", 9, room, 6)
        if self.width(shown, "mono", size) <= room:
            self.put(x, top + 5, shown, family="mono", size=size, link=link)
        else:  # too long beside the code: across the whole width below it, never broken
            size = self.fitted(shown, "mono", 9, lay.text_width, 4)
            self.whole(shown, size, lay.text_width)
            self.put(lay.left, self.y + side + 1, shown, family="mono", size=size, link=link)
            self.y += 5
        if self.letter.pay_short and self.letter.reference:
            self.put(x, top + 10, f"{self.letter.labels['reference']}: {self.letter.reference}", size=9)
        self.y += side + 2

    def run(self) -> int:
        self.new_page()
        lay = self.layout
        self.words(self.letter.headline, lay.left, lay.text_width, size=12, style="B")
        self.y += 3
        for block in self.letter.blocks:
            self.block(block)
        self.pay_block()
        return self.page


def _document(fpdf: Any, first: LetterLayout) -> Any:
    pdf = fpdf.FPDF(unit="mm", format=first.size)
    pdf.set_auto_page_break(False)
    pdf.set_margins(first.left, 10, first.right)
    pdf.set_creator("carecollect")
    pdf.set_title("Letters")
    pdf.set_creation_date(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # the same letters give the same bytes
    pdf.add_font("body", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("body", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_font("mono", "", str(FONT_DIR / "DejaVuSansMono.ttf"))
    pdf.carecollect_widths = {}
    return pdf


def letters_pdf(letters: Sequence[Letter]) -> tuple[bytes, tuple[LetterPages, ...]]:
    """Lay out ``letters`` in one document, each from a new page.

    :param letters: the letters, in print order, all on the same paper (A4 or Letter).
    :returns: the PDF and where each letter sits in it.
    :raises ConfigurationError: fpdf2 or segno is not installed.
    :raises ValidationError: no letters, or letters on different paper sizes.
    """
    if not letters:
        raise ValidationError("Letter batch", "letters", "at least one letter")
    if len({ltr.layout.paper for ltr in letters}) > 1:
        raise ValidationError("Letter batch", "letters", "one paper size per batch (A4 or Letter)")
    fpdf, segno = _modules()
    pdf = _document(fpdf, letters[0].layout)
    try:
        placed = []
        for letter in letters:
            first = pdf.page_no() + 1
            pages = _Writer(pdf, segno, letter, None).run()
            _Writer(pdf, segno, letter, pages).run()
            placed.append(LetterPages(letter.message_id, first, pdf.page_no()))
        if letters[0].language:
            pdf.set_lang(letters[0].language)
        return bytes(pdf.output()), tuple(placed)
    finally:
        for font in pdf.fonts.values():  # fpdf2 leaves the font files open (fontTools reads them lazily)
            ttfont = getattr(font, "ttfont", None)
            if ttfont is not None:
                ttfont.close()


def letter_pdf(letter: Letter) -> bytes:
    """One letter as a PDF (see :func:`letters_pdf`)."""
    return letters_pdf([letter])[0]
