"""Sphinx configuration for carecollect."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

project = "carecollect"
author = "carecollect developers"
copyright = "2026, carecollect developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "furo"
html_title = "carecollect"
html_static_path = ["_static"]
intersphinx_mapping: dict[str, tuple[str, None]] = {}
doctest_global_setup = """
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo
"""
exclude_patterns = ["_build"]

# Docstring examples are run by pytest (--doctest-modules) in their module's
# namespace; Sphinx's doctest builder runs the ``.. doctest::`` blocks of the pages.
doctest_test_doctest_blocks = ""
