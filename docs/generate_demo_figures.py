"""Write the demo's figures in the docs from a real demo run.

Runs ``carecollect demo --invoices 300 --weeks 1`` in an empty folder (a fresh
interpreter, the seed fixed, the console 140 columns wide) and writes:

* ``docs/_generated/demo-output.txt``: what the command printed, the one
  varying figure (its run time) replaced by ``<seconds>``; the demo tutorial
  includes it, and ``tests/test_docs_demo_figures.py`` runs the demo again and
  compares;
* ``docs/_static/demo-output.svg``: the same text drawn as a terminal
  picture, shown on the landing page.

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
WIDTH = 140
_ELAPSED = re.compile(r"\bin \d+(\.\d+)? s\b")
#: A demo pay link is signed with a fresh key and expires from today: its token varies by run.
_PAY_LINK = re.compile(r"(/p/)[A-Za-z0-9._~-]{20,}")


def demo_output() -> str:
    """What ``carecollect demo --invoices 300 --weeks 1`` prints, run time replaced by ``<seconds>``
    and the pay link's token (a fresh key and today's expiry) by ``<token>``."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    with tempfile.TemporaryDirectory(prefix="carecollect-demo-") as folder:
        done = subprocess.run(
            [sys.executable, "-m", "carecollect.cli", *COMMAND],
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


if __name__ == "__main__":
    main()
