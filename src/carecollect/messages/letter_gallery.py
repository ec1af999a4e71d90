"""The docs' gallery of printed letters: one statement per country and language, as pictures.

:func:`example_letter` builds the statement letter of
:mod:`carecollect.messages.examples` for a country's envelope in a language;
:func:`write_gallery` renders each one with fpdf2, turns its first page into a
PNG with ``pdftoppm`` (poppler-utils) and keeps the page's text, as
``pdftotext`` reads it, beside the picture. A test renders the letters again
and compares that text (not the pixels), so the gallery cannot drift from the
layout. Regenerate it with::

    python -m carecollect.messages.letter_gallery docs/_static/letters

>>> [f"{c}-{lang}" for c, lang in GALLERY][:3]
['us-en', 'de-de', 'no-nb']
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..channels import Channel
from ..outreach import OutreachPurpose
from ..plugins.messaging import OutgoingMessage
from .examples import ADDRESS, CREDITOR, context
from .letters import Letter, format_letter_date
from .render import render

__all__ = ["GALLERY", "RECIPIENTS", "example_letter", "page_text", "write_gallery"]

#: (country, language) pairs of the gallery: each country in its language, and in English.
GALLERY: tuple[tuple[str, str], ...] = (
    ("us", "en"),
    ("de", "de"),
    ("no", "nb"),
    ("bg", "bg"),
    ("de", "en"),
    ("no", "en"),
    ("bg", "en"),
)

#: Fictitious recipients, one per country.
RECIPIENTS: dict[str, tuple[str, ...]] = {
    "us": ("Pat Doe", "1 Main Street", "Springfield, IL 62701"),
    "de": ("Erika Mustermann", "Heidestraße 17", "51147 Köln"),
    "no": ("Kari Nordmann", "Storgata 1", "0155 Oslo"),
    "bg": ("Иван Петров", "ул. Витоша 15", "1000 София"),
}


def example_letter(country: str, language: str, *, din_form: str = "B") -> Letter:
    """The sample statement letter to ``country`` in ``language``.

    :param country: ``"us"``, ``"de"``, ``"no"`` or ``"bg"``.
    :param language: ``"en"``, ``"de"``, ``"nb"`` or ``"bg"``.
    :param din_form: ``"A"`` or ``"B"`` for German letters.
    """
    ctx = context(OutreachPurpose.STATEMENT, country)
    rendered = render(OutreachPurpose.STATEMENT, Channel.LETTER, language, ctx)
    name, phone, email = CREDITOR[country]
    message = OutgoingMessage(
        id=f"step_INV-2026-0042_statement-1_letter-{country}-{language}",
        channel=Channel.LETTER,
        recipient="\n".join(RECIPIENTS[country]),
        body=rendered.text,
        subject=rendered.subject or "",
        language=rendered.language,
        country=country.upper(),
        reference=ctx.reference,
        pay_link=ctx.pay_link,
        written_on=ctx.today,
    )
    return Letter.from_message(
        message,
        date_text=format_letter_date(ctx.today, rendered.language, country.upper()),
        sender=(name, *ADDRESS[country], f"{phone} · {email}"),
        din_form=din_form,
    )


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install poppler-utils (apt-get install poppler-utils)")
    return path


def page_text(pdf: Path, page: int) -> str:
    """The text of one page as ``pdftotext -layout`` reads it, trailing spaces removed."""
    out = subprocess.run(
        [_tool("pdftotext"), "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(line.rstrip() for line in out.splitlines()).strip() + "\n"


def write_gallery(folder: Path, *, dpi: int = 60) -> list[Path]:
    """Render every letter of :data:`GALLERY` into ``folder``: ``<country>-<language>.png`` (the first
    page) and ``.txt`` (its text).

    :returns: the PNG files written.
    """
    from .pdf import letter_pdf

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for country, language in GALLERY:
            stem = f"{country}-{language}"
            pdf = Path(tmp) / f"{stem}.pdf"
            pdf.write_bytes(letter_pdf(example_letter(country, language)))
            subprocess.run(
                [
                    _tool("pdftoppm"),
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
                    str(folder / stem),
                ],
                check=True,
            )
            (folder / f"{stem}.txt").write_text(page_text(pdf, 1), encoding="utf-8")
            written.append(folder / f"{stem}.png")
    return written


if __name__ == "__main__":  # pragma: no cover - the docs' regeneration command
    for path in write_gallery(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_static/letters")):
        print(path)
