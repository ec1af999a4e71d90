"""Why a relief decision came out as it did: one :class:`Reason` per rule applied.

Every gate, plan proposal and fee computation returns its reasons, so staff
screens, letters and audits can say which rule decided and where it comes
from. The shape (``rule_id``, ``source``, ``message``, ``outcome``) is the
one the outreach policy's explanations use.

>>> import datetime as dt
>>> from carecollect.policy import get_pack
>>> from carecollect.relief.reasons import Outcome, Reason
>>> r = Reason.from_rule(get_pack("us"), "credit.min_balance_usd", dt.date(2026, 3, 1), Outcome.BLOCKS,
...                      "balance below $500 is never reported")
>>> r.rule_id, r.source.startswith("CDIA"), r.outcome.value
('credit.min_balance_usd', True, 'blocks')
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from ..policy.packs import PolicyPack

__all__ = ["Outcome", "Reason", "blocking"]


class Outcome(enum.Enum):
    """What a reason did to the decision."""

    #: The rule stops the action (for now or for good).
    BLOCKS = "blocks"
    #: The rule was checked and is satisfied.
    PERMITS = "permits"
    #: The rule changed an amount or date (a cap applied, a date rolled).
    ADJUSTS = "adjusts"
    #: Information for staff or the patient; changes nothing.
    INFORMS = "informs"


@attrs.frozen
class Reason:
    """One rule's part in a decision.

    :param rule_id: the pack rule (``"credit.min_balance_usd"``) or a
        ``"creditor.*"`` / ``"record.*"`` id for facts that are not pack rules.
    :param source: the legal or published source.
    :param message: plain-language explanation (identifiers and amounts only, never PHI).
    :param outcome: :class:`Outcome`.
    """

    rule_id: str
    source: str
    message: str
    outcome: Outcome

    @classmethod
    def from_rule(cls, pack: PolicyPack, rule_id: str, on: dt.date, outcome: Outcome, message: str) -> Reason:
        """A reason citing the source of ``rule_id`` as in force in ``pack`` on ``on``.

        :raises ConfigurationError: the pack has no such rule in force.
        """
        rule = pack.rule(rule_id, on=on)
        source = rule.source if rule.verified else f"{rule.source} [unverified]"
        return cls(rule_id, source, message, outcome)

    @property
    def blocks(self) -> bool:
        """True when this reason stops the action."""
        return self.outcome is Outcome.BLOCKS


def blocking(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """The reasons that block.

    >>> blocking((Reason("a", "s", "m", Outcome.PERMITS), Reason("b", "s", "m", Outcome.BLOCKS)))[0].rule_id
    'b'
    """
    return tuple(r for r in reasons if r.blocks)
