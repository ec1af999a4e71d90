"""What the demo prints: plural forms from Babel, a legend, every file it wrote; all git-ignored."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.cli import main
from carecollect.cli.wording import counted, duration

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("language", "one", "four"),
    [
        ("en", "1 week", "4 weeks"),
        ("nb", "1 uke", "4 uker"),
        ("de", "1 Woche", "4 Wochen"),
        ("bg", "1 седмица", "4 седмици"),
    ],
)
def test_weeks_are_counted_in_each_language(language: str, one: str, four: str) -> None:
    assert duration(1, "week", language) == one
    assert duration(4, "week", language) == four


def test_counted_words_follow_the_plural_rule() -> None:
    assert [counted(n, "run", "runs") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]


def test_demo_names_every_file_it_wrote_and_explains_its_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--invoices", "60", "--weeks", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "over 1 week." in out and "(s)" not in out.replace("ASA (s)", "")
    for word in ("held:", "suppressed:", "deferred:"):
        assert re.search(rf"^{word} ", out, re.MULTILINE), word
    written = dict(re.findall(r"^  ([a-z -]+?)(?: \(\d+ messages?\))?: (\S+)$", out, re.MULTILINE))
    assert set(written) == {"database", "settings", "outbox", "contact-centre records"}
    for path in written.values():
        assert (tmp_path / path).exists(), path
    assert written["outbox"].endswith("/")
    # none of it would be committed by mistake
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    names = [p.rstrip("/") + ("/x.eml" if p.endswith("/") else "") for p in written.values()]
    names += ["carecollect-demo.sqlite-wal", "clinic-outbox/a.txt", "clinic-contacts.jsonl"]
    check = subprocess.run(
        [git, "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True
    )
    assert sorted(check.stdout.split()) == sorted(names)
