"""Every tutorial and how-to runs when pasted, block by block, into a plain Python shell.

The Sphinx doctest builder runs the pages with ``doctest_global_setup``
(``dt``, ``Decimal``, ``ZoneInfo``) and any ``.. testsetup::`` already
imported; a reader has neither. Here each page's Python blocks (``>>>``
blocks of ``.. doctest::`` and plain ``::`` literal blocks, ``.. code-block::
python``/``pycon``, ``.. testcode::``) are taken in page order and run in a
fresh interpreter, one namespace for the whole page, nothing imported first:
a ``>>>`` block must also print what the page says. A failure names the page
and the snippet's number and line.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(
    [*(DOCS / "tutorial").glob("*.rst"), *(DOCS / "how-to").glob("*.rst"), DOCS / "index.rst"],
)

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?P<name>[a-z-]+)::\s*(?P<arg>\S*)")
_PYTHON_DIRECTIVES = {"doctest", "testcode"}
_PYTHON_LANGUAGES = {"python", "pycon", "py", "python3"}


def snippets(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each Python block a reader would paste, in page order.

    >>> snippets(".. doctest::\\n\\n   >>> 1 + 1\\n   2\\n\\nText.\\n\\n.. code-block:: python\\n\\n   x = 1\\n")
    [(3, '>>> 1 + 1\\n2\\n'), (10, 'x = 1\\n')]
    >>> snippets(".. testsetup::\\n\\n   import os\\n\\n.. code-block:: console\\n\\n   $ ls\\n")
    []
    """
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        wanted = bool(m) and (
            m["name"] in _PYTHON_DIRECTIVES
            or (m["name"] in ("code-block", "code", "sourcecode") and m["arg"] in _PYTHON_LANGUAGES)
        )
        if not m:
            i += 1
            continue
        indent = len(m["indent"])
        i += 1
        # options (":hide:" and the like) and the blank line after them
        while i < len(lines) and lines[i].strip().startswith(":") and _indent(lines[i]) > indent:
            i += 1
        body: list[str] = []
        start = i
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
            start += 1
        if wanted and body:
            cut = min(_indent(line) for line in body if line.strip())
            out.append((start + 1, "\n".join(line[cut:] for line in body) + "\n"))
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def run_page(path: Path) -> int:
    """Run a page's snippets in this interpreter, in order; report the first failure."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    flags = doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL | doctest.DONT_ACCEPT_TRUE_FOR_1
    parser = doctest.DocTestParser()
    for number, (line, code) in enumerate(snippets(path.read_text(encoding="utf-8")), start=1):
        where = f"{path.relative_to(ROOT)}: snippet {number} (line {line})"
        if code.lstrip().startswith(">>>"):
            test = parser.get_doctest(code, namespace, where, str(path), line - 1)
            runner = doctest.DocTestRunner(optionflags=flags)
            runner.run(test, out=sys.stderr.write, clear_globs=False)
            namespace.update(test.globs)  # a DocTest works on a copy of the namespace
            if runner.failures:
                print(f"FAILED {where}", file=sys.stderr)
                return 1
        else:
            try:
                exec(compile(code, where, "exec"), namespace)
            except BaseException as exc:
                print(f"FAILED {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
    return 0


def test_pages_have_python_to_paste() -> None:
    assert len(snippets((DOCS / "tutorial" / "from-bill-to-plan.rst").read_text(encoding="utf-8"))) >= 7


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_runs_when_pasted(page: Path, tmp_path: Path) -> None:
    if not snippets(page.read_text(encoding="utf-8")):
        pytest.skip("no Python on this page")
    done = subprocess.run(
        [sys.executable, "-X", "utf8", __file__, str(page)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]


if __name__ == "__main__":
    sys.exit(run_page(Path(sys.argv[1]).resolve()))
