"""README's example runs and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_and_matches_its_comments() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    code = block.group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    promised = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (.*)", code)]
    assert [p.replace("\xa0", " ") for p in printed] == promised


def test_readme_shows_the_two_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    for command in (
        "pip install . && carecollect demo",
        "pip install nox && nox -s tests browser plugins docs tests_postgres tests_dask",
    ):
        assert command in text
    # CI runs exactly README's commands (not in a comment or an echo; the test command ends its line)
    run = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith(("#", "echo"))]
    assert "pip install nox && nox -s tests browser plugins docs tests_postgres tests_dask" in run
    assert any("pip install -q ." in ln and "carecollect demo" in ln for ln in run)
