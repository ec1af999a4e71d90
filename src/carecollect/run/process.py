"""Process-wide settings of a batch run: how Python's cycle collector is tuned for it.

``carecollect run`` calls :func:`tune_gc_for_batch_run` before it plans; the benchmark's
floors call it too, so the product and its floors run under the same settings.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc_for_batch_run"]

#: New objects between two young-generation collections during a batch run (CPython's default: 700).
BATCH_GC_THRESHOLD = 50_000


def tune_gc_for_batch_run() -> None:
    """Tune Python's cycle collector for a batch job of many short-lived tuples.

    The run's rows and decisions hold no reference cycles (reference counting frees them), but
    the collector's default threshold has it scan the young objects again and again, and every
    module loaded so far with them: about a tenth of a dry run's time. What is loaded now is
    frozen (never scanned again) and the collector runs every :data:`BATCH_GC_THRESHOLD` new
    objects. Call it once, after start-up; it changes the whole process.

    >>> import gc
    >>> before = gc.get_threshold()
    >>> tune_gc_for_batch_run()
    >>> gc.get_threshold()[0]
    50000
    >>> gc.unfreeze(); gc.set_threshold(*before)
    """
    gc.freeze()
    gc.set_threshold(BATCH_GC_THRESHOLD, 20, 20)
