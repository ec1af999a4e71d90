"""Reasons for relief decisions, in the shared shape of :mod:`carecollect.policy.explain`.

Relief decisions (gates, plan proposals, fees, pauses) explain themselves
with the same :class:`~carecollect.policy.explain.Reason` and
:class:`~carecollect.policy.explain.Outcome` the outreach cadence and
governor use, so one staff screen and one audit log show both. This module
adds two helpers: :func:`rule_reason` cites a pack rule in force on a date,
and :func:`note` builds a reason for a fact that is not a pack rule (a
creditor's own policy, a record's state) with the message before the outcome.

How relief uses the outcomes: ``DENY`` blocks with no date that would lift
it (an open dispute, missing consent); ``DEFER`` blocks until a known date
(an age rule, a waiting period); ``CONDITION`` means a rule changed an
amount or date (a cap applied); ``ALLOW`` a rule was checked and is met;
``INFO`` is for the staff screen.

>>> import datetime as dt
>>> from carecollect.policy import get_pack
>>> from carecollect.relief.reasons import Outcome, rule_reason
>>> r = rule_reason(get_pack("us"), "credit.min_balance_usd", dt.date(2026, 3, 1), Outcome.DENY,
...                 "balance below $500 is never reported")
>>> r.rule_id, r.source.startswith("CDIA"), r.outcome.value
('credit.min_balance_usd', True, 'deny')
"""

from __future__ import annotations

import datetime as dt

from ..deprecation import renamed
from ..policy.explain import Outcome, Reason, Verdict, reason_from_rule
from ..policy.packs import PolicyPack

__all__ = ["Outcome", "Reason", "Verdict", "blocking", "note", "rule_reason"]


def rule_reason(pack: PolicyPack, rule_id: str, on: dt.date, outcome: Outcome, message: str) -> Reason:
    """A reason citing the source of ``rule_id`` as in force in ``pack`` on ``on``.

    :param pack: the policy pack.
    :param rule_id: the rule's id.
    :param on: the day whose version of the rule applies.
    :param outcome: what the rule did.
    :param message: a PHI-free sentence.
    :returns: the reason (an unverified rule's source is marked as such).
    :raises ConfigurationError: the pack has no such rule in force on ``on``.
    """
    return reason_from_rule(pack.rule(rule_id, on=on), outcome, message)


def note(rule_id: str, source: str, message: str, outcome: Outcome) -> Reason:
    """A reason for a fact that is not a pack rule (``"creditor.*"``, ``"record.*"`` ids).

    :param rule_id: the id (``"creditor.*"`` or ``"record.*"``).
    :param source: where the fact comes from.
    :param message: a PHI-free sentence.
    :param outcome: what it did.

    >>> note("record.dispute_open", "dispute D-1", "dispute open", Outcome.DENY).outcome.blocks
    True
    """
    return Reason(rule_id, source, outcome, message)


def blocking(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """The reasons that block (deny or defer).

    :param reasons: the reasons.

    >>> blocking((note("a", "s", "m", Outcome.ALLOW), note("b", "s", "m", Outcome.DEFER)))[0].rule_id
    'b'
    """
    return tuple(r for r in reasons if r.outcome.blocks)


__getattr__ = renamed(__name__, {"Decision": "carecollect.policy.explain:Verdict"})
