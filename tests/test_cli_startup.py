"""``carecollect --help`` starts fast: the command table imports no store, run, report or plugin."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "carecollect.run.settings",
    "carecollect.run.execute",
    "carecollect.store.sqlite",
    "carecollect.reports",
    "carecollect.plugins.manager",
    "carecollect.messages",
    "carecollect.run.settings_file",
    "jinja2",
    "pendulum",
    "rich.table",
    "rich.progress",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_command_line_loads_no_heavy_module() -> None:
    loaded = _modules_after("import carecollect.cli")
    assert "click" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_help_loads_no_heavy_module() -> None:
    code = (
        "from click.testing import CliRunner\n"
        "from carecollect.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'report' in r.output"
    )
    loaded = _modules_after(code)
    assert sorted(m for m in HEAVY if m in loaded) == []
