"""Relief and resolution: payment plans, financial assistance, incentives, fees,
disputes, waiting for the insurer, and the gates before an agency.

Every function here is pure: objects, a :class:`~carecollect.policy.PolicyPack`
and the date or instant are passed in, and every decision comes with its
:class:`~carecollect.relief.reasons.Reason` list (rule id, legal source,
plain message, outcome).
"""

from __future__ import annotations

from ..deprecation import renamed
from .reasons import Outcome, Reason, Verdict

__all__ = ["Outcome", "Reason", "Verdict"]


__getattr__ = renamed(__name__, {"Decision": "carecollect.policy.explain:Verdict"})
