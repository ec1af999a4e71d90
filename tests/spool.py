"""Reading the file outbox's spool in tests: which messages were handed over, and how often."""

from __future__ import annotations

import json
from pathlib import Path


def spool_ids(folder: Path) -> list[str]:
    """Every message id in the spool of the outbox at ``folder``, once per batch file that holds
    it (:func:`~carecollect.plugins.builtin.outbox.spooled_messages` keeps one of each): a message
    handed over twice is there twice."""
    spool = folder / "spool"
    ids: list[str] = []
    for path in sorted(spool.glob("*.jsonl")) if spool.is_dir() else ():
        with open(path, encoding="utf-8") as batch:
            ids += json.loads(batch.readline())["ids"]
    return ids
