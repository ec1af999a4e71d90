"""The checked-in gallery page matches what the templates render today."""

from __future__ import annotations

from pathlib import Path

from carecollect.messages.gallery import gallery_rst

PAGE = Path(__file__).resolve().parent.parent / "docs" / "explanation" / "messages-gallery.rst"


def test_gallery_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == gallery_rst(), (
        "regenerate: python -m carecollect.messages.gallery > docs/explanation/messages-gallery.rst"
    )
