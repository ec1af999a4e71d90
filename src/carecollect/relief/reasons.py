"""Reasons for relief decisions, in the shared shape of :mod:`carecollect.policy.explain`.

Relief decisions (gates, plan proposals, fees, pauses) explain themselves
with the same :class:`~carecollect.policy.explain.Reason` and
:class:`~carecollect.policy.explain.Outcome` the outreach cadence and
governor use, so one staff screen and one audit log show both. Two helpers
live beside them in :mod:`carecollect.policy.explain` and are re-exported here:
:func:`~carecollect.policy.explain.rule_reason` cites a pack rule in force on a
date, and :func:`~carecollect.policy.explain.note` builds a reason for a fact
that is not a pack rule (a creditor's own policy, a record's state). Both
record the rule id, the outcome and the text's parameters; the text itself is
written out from :mod:`carecollect.policy.reason_texts` when it is read.

How relief uses the outcomes: ``DENY`` blocks with no date that would lift
it (an open dispute, missing consent); ``DEFER`` blocks until a known date
(an age rule, a waiting period); ``CONDITION`` means a rule changed an
amount or date (a cap applied); ``ALLOW`` a rule was checked and is met;
``INFO`` is for the staff screen.

>>> import datetime as dt
>>> from carecollect.policy import get_pack
>>> from carecollect.relief.reasons import Outcome, rule_reason
>>> r = rule_reason(get_pack("us"), "credit.min_balance_usd", dt.date(2026, 3, 1), Outcome.DENY,
...                 balance="USD 120.00", floor="USD 500.00")
>>> r.rule_id, r.source.startswith("CDIA"), r.outcome.value
('credit.min_balance_usd', True, 'deny')
>>> r.message
'balance USD 120.00 is under USD 500.00: never reported'
"""

from __future__ import annotations

from ..deprecation import renamed
from ..policy.explain import Outcome, Reason, Verdict, blocking, note, rule_reason

__all__ = ["Outcome", "Reason", "Verdict", "blocking", "note", "rule_reason"]


__getattr__ = renamed(__name__, {"Decision": "carecollect.policy.explain:Verdict"})
