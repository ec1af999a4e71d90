"""Every hook is documented in the docs and has its own test (datasette's rule)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from carecollect import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("carecollect_"))


def test_hook_lists_are_complete() -> None:
    assert sorted(hookspecs.REGISTRATION_HOOKS + hookspecs.EVENT_HOOKS) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_is_complete(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert ".. versionadded::" in doc and ":returns:" in doc and ":raises:" in doc and ">>>" in doc
    for param in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f":param {param}:" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    page = (ROOT / "docs" / "extend" / "hooks.rst").read_text()
    assert ".. automodule:: carecollect.hookspecs" in page and hook in page


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_its_own_test(hook: str) -> None:
    tests = [p for p in (ROOT / "tests").glob("test_plugins_*.py") if p.name != "test_plugins_meta.py"]
    assert any(hook in p.read_text() for p in tests), f"no test mentions {hook}"
