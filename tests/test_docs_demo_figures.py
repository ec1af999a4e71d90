"""The demo's figures in the docs come from a real demo run, not from a keyboard.

``docs/generate_demo_figures.py`` runs ``carecollect demo --invoices 300
--weeks 1`` and writes the text the demo tutorial includes and the picture on
the landing page. This test runs the demo again (about half a minute) and
compares: when the demo or its report changes, regenerate with
``python docs/generate_demo_figures.py``.
"""

from __future__ import annotations

import html
import runpy
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(DOCS / "generate_demo_figures.py"))


@pytest.fixture(scope="module")
def fresh_output(generator: dict[str, Any]) -> str:
    text: str = generator["demo_output"]()
    return text


def test_demo_figures_are_those_of_a_real_run(generator: dict[str, Any], fresh_output: str) -> None:
    assert "Daily runs" in fresh_output and "<seconds>" in fresh_output
    assert generator["TEXT"].read_text(encoding="utf-8") == fresh_output, (
        "the demo prints something else now: run python docs/generate_demo_figures.py"
    )


def test_landing_page_picture_shows_that_output(generator: dict[str, Any], fresh_output: str) -> None:
    picture = html.unescape(generator["SVG"].read_text(encoding="utf-8")).replace("\xa0", " ")
    for line in fresh_output.splitlines():
        if line.strip():
            assert line.rstrip() in picture, f"docs/_static/demo-output.svg lacks {line!r}: regenerate it"


def test_the_pages_show_the_generated_figures() -> None:
    assert "_generated/demo-output.txt" in (DOCS / "tutorial" / "demo.rst").read_text(encoding="utf-8")
    assert "_static/demo-output.svg" in (DOCS / "index.rst").read_text(encoding="utf-8")


def test_the_deliver_section_shows_a_real_run_through_the_local_servers(generator: dict[str, Any]) -> None:
    if not generator["deliver_installed"]():
        pytest.skip("needs carecollect[demo-channels], carecollect-smtp and carecollect-sms")
    fresh = generator["deliver_output"]()
    assert "received" in fresh and "127.0.0.1:<port>" in fresh
    assert generator["DELIVER_TEXT"].read_text(encoding="utf-8") == fresh, (
        "demo --deliver all prints something else now: run python docs/generate_demo_figures.py"
    )
    assert "_generated/demo-deliver-output.txt" in (DOCS / "tutorial" / "demo.rst").read_text(
        encoding="utf-8"
    )
