"""The docs' gallery of patient pages shows the pages as they are: their text and structure are compared
with what the committed screenshots were taken from (not pixels). Regenerate with
``python docs/generate_patient_pages_gallery.py``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_patient_pages_gallery", DOCS / "generate_patient_pages_gallery.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gallery_is_current(browser: Any) -> None:
    gallery = _generator()
    committed = json.loads(
        (DOCS / "_static" / "patient-pages" / "structure.json").read_text(encoding="utf-8")
    )
    current = gallery.capture(browser=browser)
    assert sorted(current) == sorted(committed), "pages were added or removed: regenerate the gallery"
    for name in sorted(current):
        assert current[name] == committed[name], (
            f"{name} changed: run python docs/generate_patient_pages_gallery.py"
        )
    for name in committed:
        assert (DOCS / "_static" / "patient-pages" / f"{name}.jpg").is_file(), f"{name}.jpg is missing"
    assert (DOCS / "explanation" / "patient-pages-gallery.rst").read_text(
        encoding="utf-8"
    ) == gallery.rst() + "\n"
