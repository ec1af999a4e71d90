"""The production guide's commands are commands carecollect has, with options it takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from carecollect.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "production-in-a-day.rst"


def _command_lines() -> list[str]:
    """Each ``carecollect ...`` command in the page: console lines, cron lines, ExecStart=, args."""
    found = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        m = re.search(r"(?:^\$ |/bin/|^ExecStart=\S*/)carecollect (.+?)(?:\s+>>.*|\s+#.*)?$", line)
        if m:
            found.append(m[1])
        elif line.startswith("args: ["):
            found.append(" ".join(shlex.split(line.removeprefix("args: [").rstrip("]").replace(",", " "))))
    return found


COMMANDS = _command_lines()


def test_the_page_has_commands() -> None:
    assert len(COMMANDS) >= 15
    assert {c.split()[0] for c in COMMANDS} >= {
        "init",
        "config",
        "import",
        "run",
        "explain",
        "backup",
        "report",
    }


@pytest.mark.parametrize("line", COMMANDS)
def test_command_and_options_exist(line: str) -> None:
    words = shlex.split(line.replace("$(date +\\%F)", "DATE"))
    command: click.Command = main
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(click.Context(command), words[0])
        assert sub is not None, f"carecollect has no command {words[0]!r} ({line})"
        command, words = sub, words[1:]
    assert not isinstance(command, click.Group), f"{line}: names a group, not a command"
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"carecollect {line}: no option {word}"
    # the words parse (options with their values, the right number of arguments); files need not exist here
    ctx = click.Context(command, info_name=command.name)
    values, extra, _ = command.make_parser(ctx).parse_args(list(words))
    assert not extra, f"{line}: words no parameter takes: {extra}"
    assert values.get("db"), f"{line}: every command in the guide names its database"
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            assert values.get(param.name), f"{line}: no {param.name}"
