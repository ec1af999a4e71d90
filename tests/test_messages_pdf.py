"""Letters as PDF: the address in each country's envelope window, every page's text readable, amounts aligned.

The PDFs are read back with poppler (``pdftotext``, ``pdftoppm``, ``pdffonts``), as a
print house's preflight would: word boxes for the window positions, the pages
rendered to pixels for what shows through the window, and the text of every page
compared with the message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.letter_gallery import GALLERY, RECIPIENTS, example_letter
from carecollect.messages.letters import LAYOUTS, BlockKind, Letter, Rect, body_blocks, layout_for
from carecollect.messages.pdf import letter_pdf, letters_pdf
from carecollect.plugins.messaging import OutgoingMessage

pytest.importorskip("fpdf")
pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) not installed",
)

MM = 25.4 / 72  # mm per PDF point
CASES = [(c, lang, "B") for c, lang in GALLERY] + [("de", "de", "A")]


@attrs.frozen
class Word:
    text: str
    box: Rect


def _pdf(tmp_path: Path, letter: Letter) -> Path:
    path = tmp_path / f"{letter.message_id}.pdf"
    path.write_bytes(letter_pdf(letter))
    return path


def _words(pdf: Path, page: int) -> list[Word]:
    """The words of one page with their boxes in mm (``pdftotext -bbox``)."""
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    root = ET.fromstring(re.sub(r'xmlns="[^"]+"', "", out, count=1).split("?>", 1)[-1])
    return [
        Word(
            w.text or "",
            Rect(
                float(w.get("xMin")) * MM,
                float(w.get("yMin")) * MM,
                (float(w.get("xMax")) - float(w.get("xMin"))) * MM,
                (float(w.get("yMax")) - float(w.get("yMin"))) * MM,
            ),
        )
        for w in root.iter("word")
    ]


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]


def _raw_lines(pdf: Path, page: int) -> list[str]:
    out = subprocess.run(
        ["pdftotext", "-raw", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def _find(words: list[Word], line: str, *, below: float = 0.0) -> list[Word]:
    """The words of ``line`` as they appear in order on the page (the first match below ``below`` mm)."""
    words = [w for w in words if w.box.y >= below]
    wanted = line.split()
    texts = [w.text for w in words]
    for i in range(len(texts) - len(wanted) + 1):
        if texts[i : i + len(wanted)] == wanted:
            return words[i : i + len(wanted)]
    raise AssertionError(f"{line!r} not found on the page")


@pytest.mark.parametrize(("country", "language", "form"), CASES)
def test_the_address_sits_in_the_envelope_window(
    tmp_path: Path, country: str, language: str, form: str
) -> None:
    letter = example_letter(country, language, din_form=form)
    layout = letter.layout
    assert layout is layout_for(country, din_form=form)
    words = _words(_pdf(tmp_path, letter), 1)
    for line in RECIPIENTS[country]:
        # (the letterhead may share a city with the recipient: look from the return line down)
        for word in _find(words, line, below=layout.address.y - 1):
            assert layout.address.contains(word.box, tolerance=0.3), (word.text, word.box, layout.address)
            assert layout.window.contains(word.box), (word.text, word.box, layout.window)
    for word in _find(words, letter.return_line, below=layout.return_line.y - 1):
        assert layout.return_line.contains(word.box, tolerance=0.3) and layout.window.contains(word.box)
    # nothing else of the page shows through the window
    inside = [
        w for w in words if layout.window.contains(w.box, tolerance=-0.01) or _overlaps(w.box, layout.window)
    ]
    expected = [w for line in (*RECIPIENTS[country], letter.return_line) for w in line.split()]
    assert sorted(w.text for w in inside) == sorted(expected)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


@pytest.mark.parametrize(("country", "language", "form"), CASES[:4] + CASES[-1:])
def test_the_rendered_window_shows_the_address_and_nothing_beside_it(
    tmp_path: Path, country: str, language: str, form: str
) -> None:
    from PIL import Image

    letter = example_letter(country, language, din_form=form)
    layout = letter.layout
    pdf = _pdf(tmp_path, letter)
    dpi = 100
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-gray",
            "-r",
            str(dpi),
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    with Image.open(tmp_path / "page.png") as image:
        page = image.convert("L")
        px = dpi / 25.4

        def dark(rect: Rect) -> int:
            box = (round(rect.x * px), round(rect.y * px), round(rect.right * px), round(rect.bottom * px))
            return sum(1 for v in page.crop(box).tobytes() if v < 128)

        assert dark(layout.address) > 200  # the address is printed there
        # a band as wide as a window margin around the window, left and right and below: empty paper
        w = layout.window
        for band in (
            Rect(w.x - 6, w.y, 5, w.h),
            Rect(w.right + 1, w.y, 6, w.h),
            Rect(w.x, w.bottom + 1, w.w, 4),
        ):
            assert dark(band) == 0, band


@pytest.mark.parametrize(("country", "language"), GALLERY)
def test_every_page_reads_back_as_the_message(tmp_path: Path, country: str, language: str) -> None:
    letter = example_letter(country, language)
    pdf = _pdf(tmp_path, letter)
    pages = _pages(pdf)
    assert pages >= 2  # the sample statement is long enough to need a second page
    running = " · ".join(x for x in (letter.sender[0], letter.reference) if x)
    body_words: list[str] = []
    for page in range(1, pages + 1):
        lines = _raw_lines(pdf, page)
        assert lines, f"page {page} has no extractable text"
        footer = letter.labels["page"].format(page=page, pages=pages)
        assert footer in lines and letter.message_id in lines
        keep = [ln for ln in lines if ln not in (footer, letter.message_id, running)]
        if page == 1:
            keep = keep[keep.index(_first_line_of(letter.headline, keep)) :]
        body_words += " ".join(keep).split()
    expected = letter.headline.split()
    for block in letter.blocks:
        texts = [t for row in block.rows for t in row] if block.kind is BlockKind.TABLE else list(block.items)
        expected += " ".join(texts).split()
    body_words = [w for w in body_words if w != "•"]
    assert body_words[: len(expected)] == expected
    # what follows the body is the pay block: its caption and the whole link
    tail = " ".join(body_words[len(expected) :])
    assert letter.labels["scan"] in tail and letter.pay_link is not None and letter.pay_link in tail.split()


def _first_line_of(headline: str, lines: list[str]) -> str:
    return next(
        ln for ln in lines if ln.startswith(headline.split()[0]) and headline.startswith(ln.strip()[:10])
    )


def test_amounts_are_right_aligned_in_one_column(tmp_path: Path) -> None:
    letter = example_letter("no", "nb")
    words = _words(_pdf(tmp_path, letter), 1)
    tables = [b for b in letter.blocks if b.kind is BlockKind.TABLE]
    assert len(tables) == 2
    for table in tables:
        rights = []
        for label, value in table.rows:
            found = _find(words, label)
            same_line = sorted(
                (w for w in words if abs(w.box.y - found[0].box.y) < 0.3 and w.box.x > found[-1].box.right),
                key=lambda w: w.box.x,
            )
            assert [w.text for w in same_line] == value.split()
            assert same_line[0].box.x - found[-1].box.right > 5  # a real gap, not a run-on
            rights.append(same_line[-1].box.right)
        assert max(rights) - min(rights) < 0.1, rights


def test_a_long_link_is_never_broken(tmp_path: Path) -> None:
    link = "https://pay.example.org/p/INV-2026-0042.24550.EUR.1777593600." + "x" * 110
    blocks = tuple(body_blocks(f"Pay online at {link} today.\n\nAmount  245,50 €"))
    letter = attrs.evolve(example_letter("de", "de"), blocks=blocks, pay_link=link)
    pdf = _pdf(tmp_path, letter)
    tokens = " ".join(_raw_lines(pdf, 1)).split()
    assert tokens.count(link) == 2  # in the text and beside the QR code, whole both times
    for word in _words(pdf, 1):
        assert word.box.right <= letter.layout.size[0] - letter.layout.right + 0.5  # inside the margins
    too_long = "https://pay.example.org/p/" + "y" * 400
    with pytest.raises(ValidationError, match="pay_link"):
        letter_pdf(attrs.evolve(letter, pay_link=too_long))


def test_the_fonts_are_embedded_and_cover_cyrillic(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path, example_letter("bg", "bg"))
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    rows = [ln for ln in fonts.splitlines() if "DejaVu" in ln]
    assert rows and all(" yes " in ln for ln in rows)  # embedded (and subset)
    assert "Иван Петров" in " ".join(_raw_lines(pdf, 1))


def test_a_batch_starts_each_letter_on_a_new_page() -> None:
    letters = [example_letter("no", "nb"), example_letter("de", "de"), example_letter("bg", "bg")]
    _, placed = letters_pdf(letters)
    assert [p.first_page for p in placed] == [1, placed[0].last_page + 1, placed[1].last_page + 1]
    assert [p.message_id for p in placed] == [ltr.message_id for ltr in letters]
    with pytest.raises(ValidationError, match="paper"):
        letters_pdf([example_letter("us", "en"), example_letter("no", "nb")])


def test_the_same_letter_gives_the_same_bytes() -> None:
    assert letter_pdf(example_letter("no", "nb")) == letter_pdf(example_letter("no", "nb"))


def test_letters_need_a_full_address_and_a_known_country() -> None:
    base = OutgoingMessage(
        id="M-1",
        channel=Channel.LETTER,
        recipient="Kari Nordmann\nStorgata 1\n0155 Oslo",
        body="Hei\n",
        country="NO",
    )
    Letter.from_message(base, date_text="1. mars 2026", sender=("Klinikk",))
    with pytest.raises(ValidationError) as info:
        Letter.from_message(attrs.evolve(base, recipient="Kari Nordmann"), date_text="x", sender=("Klinikk",))
    assert info.value.field == "recipient" and "Kari" not in str(info.value)
    with pytest.raises(ValidationError, match="layout"):
        Letter.from_message(attrs.evolve(base, country="SE"), date_text="x", sender=("Klinikk",))
    with pytest.raises(ValidationError, match="letter"):
        Letter.from_message(attrs.evolve(base, channel=Channel.SMS), date_text="x", sender=("Klinikk",))


def test_missing_fpdf_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    letter = example_letter("us", "en")
    monkeypatch.setitem(sys.modules, "fpdf", None)
    with pytest.raises(ConfigurationError, match=r"carecollect\[pdf\]"):
        letter_pdf(letter)


def test_layouts_keep_the_address_zone_inside_the_window() -> None:
    for layout in LAYOUTS.values():
        assert layout.window.contains(layout.address) and layout.window.contains(layout.return_line)
        assert layout.address.bottom < layout.body_top and layout.info.x > layout.window.right


@pytest.mark.parametrize(("country", "language", "form"), CASES)
def test_nothing_is_set_outside_the_margins(tmp_path: Path, country: str, language: str, form: str) -> None:
    letter = example_letter(country, language, din_form=form)
    pdf = _pdf(tmp_path, letter)
    width, height = letter.layout.size
    for page in range(1, _pages(pdf) + 1):
        for word in _words(pdf, page):
            assert (
                word.box.x >= letter.layout.window.x - 0.5
                and word.box.right <= width - letter.layout.right + 0.5
            )
            assert word.box.bottom <= height - 5


@pytest.mark.parametrize(("country", "language"), [("no", "nb"), ("us", "en")])
def test_the_qr_code_printed_is_the_pay_link(tmp_path: Path, country: str, language: str) -> None:
    """Every module of the printed code, read from the rendered page, is the pay link's QR code."""
    import segno
    from PIL import Image

    letter = example_letter(country, language)
    pdf = _pdf(tmp_path, letter)
    page = _pages(pdf)  # the pay block closes the letter
    caption = _find(_words(pdf, page), letter.labels["scan"])[0]
    top, left, side = caption.box.y - 3, letter.layout.left, 28.0  # the block's top, as laid out
    dpi = 300
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-gray",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(pdf),
            str(tmp_path / "qr"),
        ],
        check=True,
    )
    qr = segno.make(letter.pay_link, error="m")
    modules = qr.symbol_size(scale=1, border=4)[0]
    cell = side / modules
    px = dpi / 25.4
    with Image.open(tmp_path / "qr.png") as image:
        grey = image.convert("L")
        for r, row in enumerate(qr.matrix):
            for c, dark in enumerate(row):
                x = (left + (c + 4.5) * cell) * px
                y = (top + (r + 4.5) * cell) * px
                assert (grey.getpixel((round(x), round(y))) < 128) == bool(dark), (r, c)
