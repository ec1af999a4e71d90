"""Write the demo's figures in the docs from a real demo run.

Runs ``carecollect demo --invoices 300 --weeks 1`` in an empty folder (a fresh
interpreter, the seed fixed, the console 140 columns wide) and writes:

* ``docs/_generated/demo-output.txt``: what the command printed, the one
  varying figure (its run time) replaced by ``<seconds>``; the demo tutorial
  includes it, and ``tests/test_docs_demo_figures.py`` runs the demo again and
  compares;
* ``docs/_static/demo-output.svg``: the same text drawn as a terminal
  picture, shown on the landing page;
* ``docs/_generated/demo-deliver-output.txt``: what ``carecollect demo
  --invoices 300 --weeks 2 --deliver all`` printed about the local SMTP and SMS
  servers (their ports replaced by ``<port>``), when the ``demo-channels`` extra and
  the carecollect-smtp and carecollect-sms plugins are installed.

Run it after changing the demo or its report::

    python docs/generate_demo_figures.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
TEXT = DOCS / "_generated" / "demo-output.txt"
SVG = DOCS / "_static" / "demo-output.svg"
COMMAND = ("demo", "--invoices", "300", "--weeks", "1")
DELIVER_TEXT = DOCS / "_generated" / "demo-deliver-output.txt"
#: Two weeks: SMS reminders, and the STOP replies to them, start in the second.
DELIVER_COMMAND = ("demo", "--invoices", "300", "--weeks", "2", "--deliver", "all")
_PORT = re.compile(r"\b127\.0\.0\.1:\d+")
WIDTH = 140
_ELAPSED = re.compile(r"\bin \d+(\.\d+)? s\b")
#: A demo pay link is signed with a fresh key and expires from today: its token varies by run.
_PAY_LINK = re.compile(r"(/p/)[A-Za-z0-9._~-]{20,}")


def demo_output(command: tuple[str, ...] = COMMAND) -> str:
    """What ``carecollect demo --invoices 300 --weeks 1`` prints, run time replaced by ``<seconds>``
    and the pay link's token (a fresh key and today's expiry) by ``<token>``."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    with tempfile.TemporaryDirectory(prefix="carecollect-demo-") as folder:
        done = subprocess.run(
            [sys.executable, "-m", "carecollect.cli", *command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=900,
            check=True,
        )
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    text = _ELAPSED.sub("in <seconds> s", "\n".join(lines))
    return _PAY_LINK.sub(r"\1<token>", text).strip("\n") + "\n"


def deliver_installed() -> bool:
    """Whether ``--deliver all`` can run here (aiosmtpd and the two channel plugins)."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("aiosmtpd", "carecollect_smtp", "carecollect_sms"))


def deliver_output() -> str:
    """The part of ``carecollect demo --invoices 300 --weeks 2 --deliver all``'s output about the
    local servers (from "Delivered through local servers:" to the list of files), ports as ``<port>``."""
    text = demo_output(DELIVER_COMMAND)
    start = text.index("Delivered through local servers:")
    end = text.index("Done in", start)
    return (
        "$ carecollect "
        + " ".join(DELIVER_COMMAND)
        + "\n...\n"
        + _PORT.sub("127.0.0.1:<port>", text[start:end])
    )


def svg(text: str) -> str:
    """The text drawn as a terminal window (rich's SVG export)."""
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=WIDTH, file=open(os.devnull, "w"), color_system="truecolor")  # noqa: SIM115
    try:
        console.print("$ carecollect " + " ".join(COMMAND), style="bold")
        console.print(Text(text), soft_wrap=True)
        return console.export_svg(title="carecollect demo")
    finally:
        console.file.close()


def main() -> None:
    text = demo_output()
    TEXT.parent.mkdir(exist_ok=True)
    TEXT.write_text(text, encoding="utf-8")
    SVG.write_text(svg(text), encoding="utf-8")
    if deliver_installed():
        DELIVER_TEXT.write_text(deliver_output(), encoding="utf-8")
    else:
        print(
            "docs/_generated/demo-deliver-output.txt not regenerated: pip install 'carecollect[demo-channels]'"
            " -e plugins/carecollect-smtp -e plugins/carecollect-sms",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
