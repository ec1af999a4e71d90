"""Waiting for the insurer: moved to :mod:`carecollect.policy.insurer`, where the cadence reads it.

The names stay importable from here (the same objects).
"""

from __future__ import annotations

from ..policy.insurer import InsurerWait, billable_to_patient

__all__ = ["InsurerWait", "billable_to_patient"]
