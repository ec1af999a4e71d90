"""Fail the build on a problem docutils leaves in a page instead of reporting it.

Some directive errors (a ``.. contents::`` a theme refuses, a bad option, an
unknown role at a low report level) become a red "ERROR" box or a
``problematic`` span in the HTML and are not always passed to the warning
stream that ``sphinx-build -W`` turns into a failure. This extension walks
every resolved page and warns (an error under ``-W``) about each
``system_message`` and ``problematic`` node it finds, naming the page and line,
and when the build is done reads every HTML page it wrote for a
``system-message`` or ``problematic`` box a theme or another extension added.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _check(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in doctree.findall(nodes.system_message):
        text = node.astext().replace("\n", " ")[:200]
        logger.warning(
            "page shows a docutils message box: %s", text, location=(docname, node.get("line")), type="strict"
        )
    for node in doctree.findall(nodes.problematic):
        logger.warning(
            "page shows problematic markup: %r",
            node.astext()[:80],
            location=(docname, node.line),
            type="strict",
        )


_BOX = re.compile(r'class="(system-message|problematic)"')


def _scan_html(app: Sphinx, exception: BaseException | None) -> None:
    """The last word: no written HTML page holds a message box (whatever a theme or extension added)."""
    if exception is not None or app.builder.format != "html":
        return
    for page in sorted(Path(app.outdir).rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        for kind in sorted({m[1] for m in _BOX.finditer(text)}):
            logger.warning("%s shows a %s box", page.relative_to(app.outdir), kind, type="strict")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", _check)
    app.connect("build-finished", _scan_html)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
