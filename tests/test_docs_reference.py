"""The reference shows what a reader needs: every hook, every enum member's meaning, no error boxes.

These tests need Sphinx (``pip install sphinx``; the ``docs`` nox session has
it) and are skipped without it. The hook test builds a one-page project from
``docs/extend/hooks.rst`` with autodoc, so it sees exactly what the docs show.
"""

from __future__ import annotations

import enum
import html as html_module
import importlib
import inspect
import io
import pkgutil
import re
import runpy
from pathlib import Path
from warnings import catch_warnings, simplefilter

import pytest

import carecollect
from carecollect.plugins import hookspecs

sphinx = pytest.importorskip("sphinx")
from sphinx.application import Sphinx  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402
from sphinx.util.inventory import InventoryFile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("carecollect_"))
#: The docs' own Sphinx extensions that shape what autodoc shows (the copy button, links,
#: source pages and the docs' local check change nothing in a docstring's text).
DOCS_EXTENSIONS = [
    e
    for e in runpy.run_path(str(DOCS / "conf.py"))["extensions"]
    if e not in ("sphinx_copybutton", "strict_pages", "sphinx.ext.viewcode", "sphinx.ext.intersphinx")
]


def _public_modules() -> list[str]:
    names = ["carecollect"]
    for info in pkgutil.walk_packages(carecollect.__path__, "carecollect."):
        if any(part.startswith("_") for part in info.name.split(".")) or ".testing" in info.name:
            continue
        names.append(info.name)
    return names


def _public_enums() -> list[tuple[str, type[enum.Enum]]]:
    """Every enum a module defines and names publicly (its ``__all__``, else its names without ``_``)."""
    found = []
    for name in _public_modules():
        module = importlib.import_module(name)
        public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for attr in public:
            obj = getattr(module, attr, None)
            if inspect.isclass(obj) and issubclass(obj, enum.Enum) and obj.__module__ == name:
                found.append((name, obj))
    return found


ENUMS = _public_enums()


def test_the_package_has_enums_to_check() -> None:
    assert len(ENUMS) > 40


@pytest.mark.parametrize(("module", "cls"), ENUMS, ids=[f"{m}.{c.__qualname__}" for m, c in ENUMS])
def test_every_enum_member_is_documented(module: str, cls: type[enum.Enum]) -> None:
    """Autodoc shows a member's meaning from a ``#:`` comment (or a string) next to it: each member has one."""
    docs = ModuleAnalyzer.for_module(module).find_attr_docs()
    missing = [m for m in cls.__members__ if not "".join(docs.get((cls.__qualname__, m), [])).strip()]
    assert not missing, f"{module}.{cls.__qualname__}: add a `#:` comment above {', '.join(missing)}"


def _plain(rest: str) -> str:
    """Docstring text as a reader sees it: roles and literals reduced to their text, spaces folded."""
    rest = re.sub(r":[a-z:]+:`~?(?:[^`<]*<)?([^`>]+)>?`", lambda m: m[1].rsplit(".", 1)[-1], rest)
    return re.sub(r"\s+", " ", rest.replace("``", "")).strip()


def _page_text(html: str) -> str:
    text = html_module.unescape(re.sub(r"<[^>]+>", "", html))
    for smart, plain in (
        ("\u2019", "'"),
        ("\u2018", "'"),
        ("\u201c", '"'),
        ("\u201d", '"'),
        ("\u2026", "..."),
    ):
        text = text.replace(smart, plain)  # Sphinx's smart quotes
    return re.sub(r"\s+", " ", text)


def test_enum_member_docs_render_as_written(tmp_path: Path) -> None:
    """Each member's text reaches the page whole (a colon in it is not taken for a "Type:" field)."""
    page = "Enums\n=====\n\n" + "".join(
        f".. autoclass:: {module}.{cls.__qualname__}\n   :members:\n   :undoc-members:\n\n"
        for module, cls in ENUMS
    )
    html, _ = _build(tmp_path, page)
    text = _page_text(html)
    for module, cls in ENUMS:
        docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        for member in cls.__members__:
            said = _plain(" ".join(docs.get((cls.__qualname__, member), [])))
            head = said.split("(")[0].split("`")[0][:70].rstrip()
            assert head in text, f"{module}.{cls.__qualname__}.{member}: the page does not show {head!r}"


def _build(tmp_path: Path, page: str, extensions: tuple[str, ...] = (), conf: str = "") -> tuple[str, str]:
    """Build a one-page project; return its HTML and the warnings."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"extensions = {[*DOCS_EXTENSIONS, *extensions]!r}\n"
        "autodoc_typehints = 'description'\n"
        "autodoc_member_order = 'bysource'\n" + conf,
        encoding="utf-8",
    )
    (src / "index.rst").write_text(page, encoding="utf-8")
    warnings = io.StringIO()
    with catch_warnings():  # Sphinx's own deprecation notices are not this test's subject
        simplefilter("ignore", DeprecationWarning)
        simplefilter("ignore", PendingDeprecationWarning)
        return _run(src, tmp_path, warnings)


def _run(src: Path, tmp_path: Path, warnings: io.StringIO) -> tuple[str, str]:
    app = Sphinx(
        str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
        status=None, warning=warnings, freshenv=True,
    )  # fmt: skip
    app.build()
    return (tmp_path / "out" / "index.html").read_text(encoding="utf-8"), warnings.getvalue()


def test_hook_reference_shows_every_hook_with_its_docstring(tmp_path: Path) -> None:
    html, _ = _build(tmp_path, (DOCS / "extend" / "hooks.rst").read_text(encoding="utf-8"))
    text = _page_text(html)
    for hook in HOOKS:
        assert f'id="carecollect.plugins.hookspecs.{hook}"' in html, (
            f"{hook} has no entry in the hook reference"
        )
        first = inspect.getdoc(getattr(hookspecs, hook)).split("\n\n")[0]  # type: ignore[union-attr]
        plain = re.sub(r"\s+", " ", re.sub(r":[a-z]+:`~?([^`]+)`|``([^`]+)``", r"\1\2", first))
        assert plain in text, f"{hook}: its docstring is not shown ({plain!r})"
        for param in inspect.signature(getattr(hookspecs, hook)).parameters:
            assert re.search(rf"{hook}</span></span><span class=\"sig-paren\">\(.*{param}", html, re.S)


def test_a_page_with_a_message_box_fails_the_build(tmp_path: Path) -> None:
    """The docs' strict_pages extension reports what docutils left in a page (an "ERROR" box)."""
    import sys

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        html, warnings = _build(
            tmp_path,
            "Title\n=====\n\nA |missing| substitution.\n\n.. contents:: Here\n   :bogus-option:\n",
            ("strict_pages",),
            "keep_warnings = True\n",  # docutils' own "ERROR" box stays in the page, as a theme may show it
        )
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert "page shows a docutils message box" in warnings
    assert "page shows problematic markup" in warnings
    assert "index.html shows a system-message box" in warnings
    assert 'class="system-message"' in html


def test_gallery_headings_are_spelled_right() -> None:
    page = (DOCS / "explanation" / "messages-gallery.rst").read_text(encoding="utf-8")
    assert ".. contents::" not in page
    headings = re.findall(r"^(.+)\n[-~=]{3,}$", page, re.M)
    assert "ECA notice (extraordinary collection action)" in headings
    for heading in headings:
        assert not re.search(r"\b(Eca|Sms|Fhir|Sepa|Pre placement|Follow up|Pre due)\b", heading), heading


def test_shipped_inventories_are_what_the_script_writes() -> None:
    script = runpy.run_path(str(DOCS / "_inventories" / "make_inventories.py"))
    for project in script["INVENTORIES"]:
        path = DOCS / "_inventories" / f"{project}.inv"
        assert path.read_bytes() == script["inventory"](project), (
            "run python docs/_inventories/make_inventories.py"
        )
        inv = InventoryFile.load(io.BytesIO(path.read_bytes()), "https://example.org", lambda base, uri: uri)
        assert inv, f"{path.name} holds no object"
