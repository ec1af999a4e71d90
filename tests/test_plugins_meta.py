"""Every hook is documented in the docs and has its own test (datasette's rule)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from carecollect.plugins import hookspecs

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
    assert ".. automodule:: carecollect.plugins.hookspecs" in page and hook in page


def _test_functions() -> list[tuple[str, str, str]]:
    """``(file, test name, source incl. its decorators)`` of every test function in tests/test_plugins_*.py."""
    found = []
    for path in sorted((ROOT / "tests").glob("test_plugins_*.py")):
        if path.name == "test_plugins_meta.py":
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                source = "\n".join(text.splitlines()[start - 1 : node.end_lineno])
                found.append((path.name, node.name, source))
    return found


def _typed_method(hook: str) -> str:
    """The manager's typed method for a hook: ``carecollect_on_opt_out`` -> ``.on_opt_out(``."""
    return "." + hook.removeprefix("carecollect_") + "("


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_its_own_test(hook: str) -> None:
    """Some test function calls the hook (by name or its typed method) or is parametrized over its list.

    A mention in a helper, a comment or a module-level list does not count.
    """
    group = "EVENT_HOOKS" if hook in hookspecs.EVENT_HOOKS else "REGISTRATION_HOOKS"
    covering = [
        f"{file}::{name}"
        for file, name, source in _test_functions()
        if hook in source or _typed_method(hook) in source or f'parametrize("hook", {group})' in source
    ]
    assert covering, f"no test function exercises {hook}"


def test_tutorial_plugin_is_under_50_lines() -> None:
    """The Extend tutorial promises a payment-gateway plugin in under 50 lines."""
    plugin = (
        ROOT / "plugins" / "carecollect-demo-gateway" / "src" / "carecollect_demo_gateway" / "__init__.py"
    )
    assert len(plugin.read_text().splitlines()) < 50
    tutorial = (ROOT / "docs" / "extend" / "payment-gateway-tutorial.rst").read_text()
    assert "carecollect_demo_gateway/__init__.py" in tutorial and "test_demo_gateway.py" in tutorial
