"""Printed letters: what goes where on the sheet, per country, and what a letter holds.

A letter reaches the patient through a window envelope, so the recipient's
address must sit exactly where the country's standard envelope has its
window. :data:`LAYOUTS` holds one :class:`LetterLayout` per country and
envelope, every position in millimetres from the sheet's top-left corner:

``de-a`` / ``de-b`` (Germany, DIN 5008 form A / form B, DL or C5/6 envelope with the DIN 680 window)
    The address field is 85 × 45 mm, 20 mm from the left edge and 27 mm (form A)
    or 45 mm (form B) from the top; its text starts 25 mm from the left edge, in
    line with the body. Its first 17.7 mm are the endorsement zone,
    whose last line carries the sender's return line; the last 27.3 mm hold the
    address itself (six lines at most). The information block (date, reference)
    starts 125 mm from the left, 32 mm (A) or 50 mm (B) from the top. Fold marks
    at 87 and 192 mm (A) or 105 and 210 mm (B), the punch mark at 148.5 mm.
``no`` and ``bg`` (Norway and Bulgaria, C5 or C6/5 envelope with a left window)
    Norwegian C5 envelopes have their window 15 mm from the left and 44 mm from
    the top, 105 × 35 mm; C6/5 (C65) envelopes 15 mm and 39 mm, 100 × 35 mm. The
    layout uses what both show, 100 × 30 mm from (15, 44), for the return line
    and five address lines; the sheet folds in three (marks at 99 and 198 mm)
    for C6/5, or once for C5. Bulgarian window envelopes (C5, C6/5, DL with the
    ISO 269 window) take the same position.
``us`` (United States, US Letter paper in a #10 window envelope)
    A #10 envelope (4⅛ × 9½ in) has its window 1⅛ × 4½ in, ⅞ in from the left
    and ½ in from the bottom. A Letter sheet folded in three (3⅔ in panels)
    resting at the bottom of the envelope shows the window at 51.8 to 80.4 mm
    from its top and 22.2 to 136.5 mm from its left edge.

:class:`Letter` is one letter's content, built from a rendered
:class:`~carecollect.plugins.messaging.OutgoingMessage` with :meth:`Letter.from_message`;
:mod:`carecollect.messages.pdf` lays it out, :mod:`carecollect.plugins.builtin.letters`
sends letters in print batches.

>>> LAYOUTS["de-b"].address.y, LAYOUTS["no"].window.contains(LAYOUTS["no"].address)
(62.7, True)
>>> [b.kind.value for b in body_blocks("Intro text.\\n\\nTotal  10,00 €\\nDue    1 May\\n\\nHelp\\n----\\n\\n- one")]
['paragraph', 'table', 'heading', 'bullets']
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import re
from collections.abc import Sequence

import attrs

from ..addresses import MAX_POSTAL_LINES, postal_lines, region_of
from ..channels import Channel
from ..errors import ValidationError
from ..plugins.messaging import OutgoingMessage

__all__ = [
    "LABELS",
    "LAYOUTS",
    "Block",
    "BlockKind",
    "Letter",
    "LetterLayout",
    "Rect",
    "body_blocks",
    "format_letter_date",
    "layout_for",
    "postage_class",
    "split_letter_text",
]


@attrs.frozen
class Rect:
    """A rectangle on the sheet, in millimetres from the top-left corner."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        """The right edge."""
        return self.x + self.w

    @property
    def bottom(self) -> float:
        """The bottom edge."""
        return self.y + self.h

    def contains(self, other: Rect, tolerance: float = 0.0) -> bool:
        """Whether ``other`` lies inside this rectangle (``tolerance`` mm of slack on each side)."""
        return (
            other.x >= self.x - tolerance
            and other.y >= self.y - tolerance
            and other.right <= self.right + tolerance
            and other.bottom <= self.bottom + tolerance
        )


@attrs.frozen
class LetterLayout:
    """Where things go on the sheet for one country's envelope.

    :param key: the layout's name in :data:`LAYOUTS`.
    :param country: ISO 3166 country.
    :param paper: ``"A4"`` or ``"Letter"``.
    :param size: the sheet's width and height (mm).
    :param envelope: the envelope, as the print house's manifest names it.
    :param window: the part of the sheet the envelope's window shows.
    :param return_line: where the sender's return line goes (inside the window).
    :param address: where the recipient's address goes (inside the window).
    :param info: the date and reference block.
    :param body_top: where the headline starts on the first page.
    :param left: the left margin.
    :param right: the right margin.
    :param bottom: the bottom margin (the page number sits below it).
    :param folds: fold marks (mm from the top, printed in the left margin).
    """

    key: str
    country: str
    paper: str
    size: tuple[float, float]
    envelope: str
    window: Rect
    return_line: Rect
    address: Rect
    info: Rect
    body_top: float
    left: float
    right: float
    bottom: float
    folds: tuple[float, ...]

    @property
    def text_width(self) -> float:
        """The width between the margins."""
        return self.size[0] - self.left - self.right


_A4 = (210.0, 297.0)
_LETTER = (215.9, 279.4)

#: The layouts, by key (see the module's documentation for the sources of the numbers).
LAYOUTS: dict[str, LetterLayout] = {
    "de-a": LetterLayout(
        "de-a",
        "DE",
        "A4",
        _A4,
        "DL DIN 680 window, DIN 5008 form A",
        window=Rect(20, 27, 85, 45),
        return_line=Rect(25, 40.2, 80, 4.5),
        address=Rect(25, 44.7, 80, 27.3),
        info=Rect(125, 32, 65, 30),
        body_top=80.5,
        left=25,
        right=20,
        bottom=22,
        folds=(87, 148.5, 192),
    ),
    "de-b": LetterLayout(
        "de-b",
        "DE",
        "A4",
        _A4,
        "DL DIN 680 window, DIN 5008 form B",
        window=Rect(20, 45, 85, 45),
        return_line=Rect(25, 58.2, 80, 4.5),
        address=Rect(25, 62.7, 80, 27.3),
        info=Rect(125, 50, 65, 30),
        body_top=98.5,
        left=25,
        right=20,
        bottom=22,
        folds=(105, 148.5, 210),
    ),
    "no": LetterLayout(
        "no",
        "NO",
        "A4",
        _A4,
        "C5 or C6/5 left window",
        window=Rect(15, 44, 100, 30),
        return_line=Rect(20, 44.6, 90, 3.6),
        address=Rect(20, 48.6, 90, 25),
        info=Rect(125, 44, 65, 30),
        body_top=84,
        left=20,
        right=20,
        bottom=22,
        folds=(99, 148.5, 198),
    ),
    "bg": LetterLayout(
        "bg",
        "BG",
        "A4",
        _A4,
        "C5 or C6/5 left window",
        window=Rect(15, 44, 100, 30),
        return_line=Rect(20, 44.6, 90, 3.6),
        address=Rect(20, 48.6, 90, 25),
        info=Rect(125, 44, 65, 30),
        body_top=84,
        left=20,
        right=20,
        bottom=22,
        folds=(99, 148.5, 198),
    ),
    "us": LetterLayout(
        "us",
        "US",
        "Letter",
        _LETTER,
        "#10 window",
        window=Rect(22.2, 51.8, 114.3, 28.6),
        return_line=Rect(25.4, 52.4, 108, 3.6),
        address=Rect(25.4, 56.4, 108, 23.4),
        info=Rect(145, 51.8, 45.5, 28),
        body_top=90,
        left=25.4,
        right=25.4,
        bottom=22,
        folds=(93.1, 186.3),
    ),
}
_COUNTRY_LAYOUT = {"DE": "de-b", "NO": "no", "BG": "bg", "US": "us"}


def layout_for(country: str | None, *, din_form: str = "B") -> LetterLayout:
    """The layout for letters to ``country``.

    :param country: ISO 3166 country (or a policy-pack key such as ``"us-ca"``).
    :param din_form: ``"A"`` or ``"B"`` for German letters (DIN 5008 form A or B).
    :raises ValidationError: a country without a layout (add one to :data:`LAYOUTS`).

    >>> layout_for("de", din_form="A").key, layout_for("us-ca").paper
    ('de-a', 'Letter')
    """
    region = region_of(country)
    if region == "DE":
        form = din_form.strip().upper()
        if form not in ("A", "B"):
            raise ValidationError("Letter layout", "din_form", "A or B (DIN 5008 form A or form B)")
        return LAYOUTS[f"de-{form.lower()}"]
    if region not in _COUNTRY_LAYOUT:
        raise ValidationError(
            "Letter layout", "country", f"no envelope layout for {region or country!r}; one of DE, NO, BG, US"
        )
    return LAYOUTS[_COUNTRY_LAYOUT[region]]


def postage_class(country: str, sheets: int) -> tuple[str, int]:
    """The postage class and the estimated weight in grams of a letter of ``sheets`` sheets.

    The weight counts 5 g per A4/Letter sheet of 80 g/m² paper and 5 g for the envelope.
    Germany (Deutsche Post): Standardbrief to 20 g, Kompaktbrief to 50 g, Großbrief to 500 g;
    Norway (Posten): Brev to 50 g, then to 350 g; Bulgaria: писмо (letter) to 20 g, to 100 g;
    United States (USPS): First-Class Mail letter to 3.5 oz (99 g), then a large envelope (flat).

    >>> postage_class("DE", 3), postage_class("DE", 4), postage_class("US", 2)
    (('DE Standardbrief', 20), ('DE Kompaktbrief', 25), ('US First-Class letter', 15))
    """
    grams = 5 * sheets + 5
    bands = {
        "DE": ((20, "Standardbrief"), (50, "Kompaktbrief"), (500, "Großbrief")),
        "NO": ((50, "Brev 0-50 g"), (350, "Brev 51-350 g")),
        "BG": ((20, "писмо до 20 г"), (100, "писмо до 100 г")),
        "US": ((99, "First-Class letter"), (368, "First-Class large envelope")),
    }.get(country, ((20, "letter"),))
    for limit, name in bands:
        if grams <= limit:
            return f"{country} {name}", grams
    return f"{country} {bands[-1][1]} (overweight)", grams


#: Words printed around the letter's text, by language (English for any other).
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "date": "Date",
        "reference": "Reference",
        "page": "Page {page} of {pages}",
        "scan": "Scan the code to pay, or open",
        "or": "or open",
    },
    "de": {
        "date": "Datum",
        "reference": "Referenz",
        "page": "Seite {page} von {pages}",
        "scan": "Code scannen und bezahlen, oder öffnen Sie",
        "or": "oder öffnen Sie",
    },
    "nb": {
        "date": "Dato",
        "reference": "Referanse",
        "page": "Side {page} av {pages}",
        "scan": "Skann koden for å betale, eller gå til",
        "or": "eller gå til",
    },
    "bg": {
        "date": "Дата",
        "reference": "Референция",
        "page": "Страница {page} от {pages}",
        "scan": "Сканирайте кода, за да платите, или отворете",
        "or": "или отворете",
    },
}


class BlockKind(enum.Enum):
    """What a block of a letter's body is."""

    #: Running text, wrapped to the page.
    PARAGRAPH = "paragraph"
    #: Short lines kept as they are (a closing, a signature).
    LINES = "lines"
    #: A heading above the blocks that follow it.
    HEADING = "heading"
    #: A bulleted list.
    BULLETS = "bullets"
    #: Label and value rows (amounts, dates): values right-aligned in one column.
    TABLE = "table"


@attrs.frozen
class Block:
    """One block of a letter's body.

    :param kind: :class:`BlockKind`.
    :param items: the paragraph (one item), the lines, the heading (one item) or the bullet items.
    :param rows: the table's (label, value) rows.
    """

    kind: BlockKind
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, str], ...] = ()


_ROW = re.compile(r"^(\S.*?\S|\S)\s{2,}(\S.*)$")
_RULE = re.compile(r"^([=-])\1+$")
#: The renderer fills text to this width: a line break there was the filler's, not the author's.
_FILL_WIDTH = 72


def _was_filled(line: str, following: str) -> bool:
    """Whether ``line`` ended because the first word of ``following`` did not fit after it."""
    return len(line.rstrip()) + 1 + len(following.strip().split(" ")[0]) > _FILL_WIDTH


def body_blocks(text: str) -> list[Block]:
    """The blocks of a letter's body as the text renderer writes them.

    A heading is a line underlined with ``-``; a bullet starts with a dash and a space (continued by
    indented lines); a table is a block whose every line is a label, two or more spaces, and
    a value; a paragraph of filled lines is reflowed, a block of short lines kept line by line.
    """
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip("\n")):
        lines = [ln.rstrip() for ln in chunk.split("\n") if ln.strip()]
        while lines:
            if len(lines) >= 2 and _RULE.fullmatch(lines[1]) and len(lines[1]) >= len(lines[0].strip()) - 1:
                blocks.append(Block(BlockKind.HEADING, (lines[0].strip(),)))
                lines = lines[2:]
                continue
            if lines[0].startswith("- "):
                items: list[str] = []
                for ln in lines:
                    if ln.startswith("- "):
                        items.append(ln[2:].strip())
                    else:
                        items[-1] += " " + ln.strip()
                blocks.append(Block(BlockKind.BULLETS, tuple(items)))
                break
            rows = [_ROW.match(ln) for ln in lines]
            if all(rows) and len(lines) >= 1 and all(not ln.startswith(" ") for ln in lines):
                blocks.append(
                    Block(
                        BlockKind.TABLE, rows=tuple((m.group(1), m.group(2)) for m in rows if m is not None)
                    )
                )
                break
            if len(lines) > 1 and all(_was_filled(a, b) for a, b in itertools.pairwise(lines)):
                blocks.append(Block(BlockKind.PARAGRAPH, (" ".join(ln.strip() for ln in lines),)))
            elif len(lines) == 1:
                blocks.append(Block(BlockKind.PARAGRAPH, (lines[0].strip(),)))
            else:
                blocks.append(Block(BlockKind.LINES, tuple(ln.strip() for ln in lines)))
            break
    return blocks


def split_letter_text(text: str) -> tuple[tuple[str, ...], str | None, str]:
    """A letter's text as (letterhead lines, headline, body).

    The built-in letter template starts with the letterhead (the creditor, its address and
    contact line), the date, and the headline underlined with ``=``. The PDF sets these in
    their own places, so they are taken off the body here. A text without an underlined
    headline is all body.

    >>> split_letter_text("Clinic\\nMain St 1\\n\\n2 March 2026\\n\\nYour bill\\n=========\\n\\nHello,\\n")
    (('Clinic', 'Main St 1'), 'Your bill', 'Hello,\\n')
    """
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if re.fullmatch(r"=+", lines[i].strip()) and lines[i - 1].strip():
            head = "\n".join(lines[: i - 1])
            first = re.split(r"\n\s*\n", head.strip("\n"), maxsplit=1)[0] if head.strip() else ""
            letterhead = tuple(ln.strip() for ln in first.split("\n") if ln.strip())
            return letterhead, lines[i - 1].strip(), "\n".join(lines[i + 1 :]).lstrip("\n")
    return (), None, text


@attrs.frozen
class Letter:
    """One letter, ready to lay out.

    :param message_id: the carecollect message id (also printed small in the footer for the print house).
    :param layout: the :class:`LetterLayout` (by country and envelope).
    :param language: the text's language (labels, date).
    :param sender: the letterhead: the sender's name first, then address and contact lines.
    :param return_line: the one-line sender address printed above the recipient in the window.
    :param recipient: the recipient's name and address lines (never in reprs).
    :param date_text: the letter's date, written out in the language.
    :param reference: the reference shown in the information block.
    :param headline: the headline (subject) above the body.
    :param blocks: the body's :class:`Block` list (never in reprs).
    :param pay_link: the pay link, printed as a QR code and in full (never in reprs).
    :param pay_short: a short address to type instead of the link (shown with the reference).
    """

    message_id: str
    layout: LetterLayout
    language: str
    sender: tuple[str, ...]
    return_line: str
    recipient: tuple[str, ...] = attrs.field(repr=False)
    date_text: str
    reference: str | None
    headline: str = attrs.field(repr=False)
    blocks: tuple[Block, ...] = attrs.field(repr=False)
    pay_link: str | None = attrs.field(default=None, repr=False)
    pay_short: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The words around the text, in the letter's language."""
        return LABELS.get(self.language.split("-")[0], LABELS["en"])

    @classmethod
    def from_message(
        cls,
        message: OutgoingMessage,
        *,
        date_text: str,
        sender: Sequence[str] = (),
        country: str | None = None,
        din_form: str = "B",
        pay_short: str | None = None,
    ) -> Letter:
        """The letter for a rendered :attr:`~carecollect.channels.Channel.LETTER` message.

        :param message: the message; its ``recipient`` is the name and postal address, one line
            per line break (``", "`` when it is one line); its ``country``, ``reference`` and
            ``pay_link`` are used when set.
        :param date_text: the date as printed (the channel formats it in the letter's language).
        :param sender: the letterhead lines (name, address, contact); default: the letterhead
            at the top of the message's text.
        :param country: the recipient's country when the message does not say.
        :param din_form: ``"A"`` or ``"B"`` for German letters.
        :param pay_short: a short pay address to print beside the QR code.
        :raises ValidationError: not a letter, a country without a layout, an address of fewer
            than two or more than seven lines, or no sender (each names the message by id).
        """
        record = f"OutgoingMessage {message.id}"
        if message.channel is not Channel.LETTER:
            raise ValidationError(record, "channel", f"a letter is needed, not {message.channel.value}")
        head, headline, body = split_letter_text(message.body)
        layout = layout_for(message.country or country, din_form=din_form)
        recipient = postal_lines(message.recipient)
        if not 2 <= len(recipient) <= MAX_POSTAL_LINES + 1:
            raise ValidationError(
                record, "recipient", f"a name and an address of 2 to {MAX_POSTAL_LINES + 1} lines in all"
            )
        sender_lines = tuple(s for s in sender if s.strip()) or head
        if not sender_lines:
            raise ValidationError(record, "sender", "a letter needs a sender (the letterhead)")
        address_lines = [s for s in sender_lines[:4] if "@" not in s and "+" not in s[:2]]
        return cls(
            message_id=message.id,
            layout=layout,
            language=message.language,
            sender=sender_lines,
            return_line=", ".join(address_lines[:3]),
            recipient=recipient,
            date_text=date_text,
            reference=message.reference or message.account_id,
            headline=headline or message.subject,
            blocks=tuple(body_blocks(body)),
            pay_link=message.pay_link,
            pay_short=pay_short,
        )


def format_letter_date(day: dt.date, language: str, country: str) -> str:
    """``day`` written out for a letter (``"2. März 2026"``).

    >>> format_letter_date(dt.date(2026, 3, 2), "de", "DE")
    '2. März 2026'
    """
    import babel.dates

    from .render import locale_for

    return str(babel.dates.format_date(day, "long", locale=locale_for(language, country.lower())))
