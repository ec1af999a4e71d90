"""Sphinx configuration for carecollect."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))
sys.path.insert(0, str(DOCS / "_ext"))

project = "carecollect"
author = "carecollect developers"
copyright = "2026, carecollect developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "strict_pages",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "furo"
html_title = "carecollect"
html_static_path = ["_static"]
html_css_files = ["wrap.css"]

# Copy buttons copy the command or the code, never the prompt or the output.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# Links into Python, attrs, pluggy and babel come from inventories kept in the
# repository (docs/_inventories, written by docs/_inventories/make_inventories.py):
# the build needs no network.
_INV = DOCS / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_INV / "python.inv")),
    "attrs": ("https://www.attrs.org/en/stable", str(_INV / "attrs.inv")),
    "pluggy": ("https://pluggy.readthedocs.io/en/stable", str(_INV / "pluggy.inv")),
    "babel": ("https://babel.pocoo.org/en/latest", str(_INV / "babel.inv")),
}
intersphinx_timeout = 1
doctest_global_setup = """
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo
"""
exclude_patterns = ["_build"]

# Docstring examples are run by pytest (--doctest-modules) in their module's
# namespace; Sphinx's doctest builder runs the ``.. doctest::`` blocks of the pages.
doctest_test_doctest_blocks = ""
