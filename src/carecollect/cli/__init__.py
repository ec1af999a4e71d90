"""The ``carecollect`` command line (click and rich).

Commands: ``init``, ``import``, ``run``, ``explain``, ``report`` and
``demo``; see :doc:`/reference/cli`. Every command takes ``--db PATH``
(default ``./carecollect.sqlite``); its settings file is the same name with
``.toml`` (:mod:`carecollect.run.settings_file`). An error is one line naming the
record and field, with exit code 1; no traceback, no patient data.
"""

from __future__ import annotations

from .commands import main

__all__ = ["main"]
