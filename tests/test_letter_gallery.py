"""The docs' letter gallery is current: the letters made again read as the text kept beside each picture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carecollect.messages.letter_gallery import GALLERY, write_gallery

pytest.importorskip("fpdf")
GALLERY_DIR = Path(__file__).resolve().parent.parent / "docs" / "_static" / "letters"


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_the_gallery_matches_the_letters_made_now(tmp_path: Path) -> None:
    written = write_gallery(tmp_path)
    assert [p.name for p in written] == [f"{c}-{lang}.png" for c, lang in GALLERY]
    for png in written:
        kept = GALLERY_DIR / png.name
        assert kept.exists(), (
            f"{kept} is missing: python -m carecollect.messages.letter_gallery docs/_static/letters"
        )
        text = png.with_suffix(".txt").read_text(encoding="utf-8")
        assert text.strip(), f"{png.name}: no text"
        assert (GALLERY_DIR / f"{png.stem}.txt").read_text(encoding="utf-8") == text, (
            f"{png.stem} changed: regenerate with python -m carecollect.messages.letter_gallery docs/_static/letters"
        )


def test_every_gallery_picture_is_on_the_page() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "explanation" / "letters.rst").read_text()
    for country, language in GALLERY:
        assert f"/_static/letters/{country}-{language}.png" in page
