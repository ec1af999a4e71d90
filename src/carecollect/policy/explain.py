"""Reasons and decisions: why a policy function said yes, no or later.

Every decision carecollect's outreach policy takes (the cadence's "this step
is due", the governor's "you may not call now") carries a tuple of
:class:`Reason` objects. A reason names the rule (its id in the policy pack),
the rule's legal or published source, the outcome it led to and a short
message a staff screen can show. Messages never carry a patient's name or a
clinical detail: only record ids, dates and numbers.

A reason turns into a plain ``dict`` with :meth:`Reason.to_record` and back
with :meth:`Reason.from_record`, so an auditor can store the decision and
replay it: the same inputs always give the same reasons, in the same order.

>>> import datetime as dt
>>> from carecollect.policy.explain import Outcome, Reason, Verdict
>>> r = Reason("calls.max_per_7_days", "12 CFR 1006.14(b)(2)", Outcome.DENY, "7 calls on this debt in the 7 days ending 2026-03-08")
>>> d = Verdict(allowed=False, reasons=(r,))
>>> d.denials[0].rule_id
'calls.max_per_7_days'
>>> Reason.from_record(r.to_record()) == r
True
>>> print(d.explain())
DENY calls.max_per_7_days (12 CFR 1006.14(b)(2)): 7 calls on this debt in the 7 days ending 2026-03-08
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from ..deprecation import renamed
from ..errors import ValidationError
from .rules import Rule, Strictness

if TYPE_CHECKING:  # packs do not need explain at run time; explain reads a pack's rules
    from .packs import PolicyPack

__all__ = ["Outcome", "Reason", "Verdict", "reason_from_rule", "rules_rst_table"]


class Outcome(enum.Enum):
    """What a rule did to a decision."""

    #: The rule was checked and lets the action go ahead.
    ALLOW = "allow"
    #: The rule forbids the action; no later time fixes that (opt-out, dispute...).
    DENY = "deny"
    #: The rule forbids the action now; it will be allowed later (quiet hours, a cap).
    DEFER = "defer"
    #: The action may go ahead under a condition (no voicemail, letter only...).
    CONDITION = "condition"
    #: Information for the staff screen (which step, which deadline).
    INFO = "info"

    @property
    def blocks(self) -> bool:
        """True for :attr:`DENY` and :attr:`DEFER`."""
        return self in (Outcome.DENY, Outcome.DEFER)


@attrs.frozen
class Reason:
    """One rule's contribution to a decision.

    :param rule_id: the rule's id in the pack (``"quiet_hours.start"``).
    :param source: the rule's legal or published source.
    :param outcome: the :class:`Outcome`.
    :param message: a short, PHI-free sentence for a staff screen.
    """

    rule_id: str
    source: str
    outcome: Outcome
    message: str

    def to_record(self) -> dict[str, str]:
        """A plain ``dict`` for an audit log (see :meth:`from_record`).

        :returns: keys ``rule_id``, ``source``, ``outcome``, ``message``.
        """
        return {
            "rule_id": self.rule_id,
            "source": self.source,
            "outcome": self.outcome.value,
            "message": self.message,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> Reason:
        """Rebuild a reason stored with :meth:`to_record`.

        :param record: the stored mapping.
        :raises ValidationError: a key is missing or the outcome is unknown.
        """
        try:
            return cls(record["rule_id"], record["source"], Outcome(record["outcome"]), record["message"])
        except (KeyError, ValueError) as exc:
            raise ValidationError("Reason", "record", f"not a stored reason ({exc})") from None

    def __str__(self) -> str:
        return f"{self.outcome.name} {self.rule_id} ({self.source}): {self.message}"


def reason_from_rule(rule: Rule, outcome: Outcome, message: str) -> Reason:
    """A :class:`Reason` citing ``rule`` (its id and source).

    :param rule: the :class:`~carecollect.policy.rules.Rule` in force.
    :param outcome: what it did.
    :param message: a PHI-free sentence.
    :returns: the reason.

    >>> import datetime as dt
    >>> from carecollect.policy.rules import Rule
    >>> rule = Rule("quiet_hours.start", dt.time(8), "12 CFR 1006.6(b)(1)(i)", dt.date(2021, 11, 30))
    >>> reason_from_rule(rule, Outcome.DEFER, "07:30 local time").source
    '12 CFR 1006.6(b)(1)(i)'
    """
    source = rule.source if rule.verified else f"{rule.source} [secondary source, to be checked]"
    return Reason(rule.id, source, outcome, message)


def _reasons(value: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(value)


@attrs.frozen
class Verdict:
    """A rule check's yes/no answer with every reason behind it.

    Not the daily run's decision (which step, which channel, for the audit log): a verdict
    answers one question (may we contact now, is this content allowed, may the gate open).

    .. versionchanged:: 0.2 named ``Decision`` before (a deprecated alias remains).

    :param allowed: the answer.
    :param reasons: the reasons, in the order the rules were checked.
    """

    allowed: bool
    reasons: tuple[Reason, ...] = attrs.field(converter=_reasons, default=())

    @property
    def denials(self) -> tuple[Reason, ...]:
        """The reasons that block (deny or defer)."""
        return tuple(r for r in self.reasons if r.outcome.blocks)

    def explain(self) -> str:
        """The reasons, one per line, for a staff screen or a log (no PHI)."""
        return "\n".join(str(r) for r in self.reasons)

    def to_record(self) -> dict[str, object]:
        """A plain ``dict`` for an audit log: ``allowed`` and the reasons' records."""
        return {"allowed": self.allowed, "reasons": [r.to_record() for r in self.reasons]}


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, tuple):
        return ", ".join(_show(v) for v in value) or "(none)"
    return str(value)


_LONG_AGO = dt.date(2000, 1, 1)  # the outreach data's "in force for as long as carecollect cares" date

_DIRECTION = {
    Strictness.AT_MOST: "house may lower",
    Strictness.AT_LEAST: "house may raise",
    Strictness.ALLOWED_IF_TRUE: "house may turn off",
    Strictness.REQUIRED_IF_TRUE: "house may turn on",
    Strictness.CHOICE: "creditor's choice",
    Strictness.FIXED: "fixed",
}


def _since(rule: Rule) -> str:
    start = rule.effective_from.isoformat() if rule.effective_from > _LONG_AGO else "long in force"
    return start if rule.effective_to is None else f"{start} to {rule.effective_to.isoformat()}"


def rules_rst_table(rules: Iterable[Rule], *, title: str = "Rules") -> str:
    """A reStructuredText ``list-table`` of ``rules`` (id, value, source, in force, house rules, note).

    The pack pages in the docs are generated with it, so the docs cannot drift
    from the data. Secondary-source figures are marked "(secondary source, check)".

    :param rules: the rules, in the order to show.
    :param title: the table's title.
    :returns: the table as text.

    >>> import datetime as dt
    >>> from carecollect.policy.rules import Rule, Strictness
    >>> print(rules_rst_table([Rule("calls.max_per_7_days", 7, "12 CFR 1006.14(b)(2)", dt.date(2021, 11, 30),
    ...                             Strictness.AT_MOST, note="Calls per debt.")]))  # doctest: +NORMALIZE_WHITESPACE
    .. list-table:: Rules
       :header-rows: 1
       :widths: 22 14 24 10 12 28
    <BLANKLINE>
       * - Rule
         - Value
         - Source
         - In force
         - House rules
         - Note
       * - ``calls.max_per_7_days``
         - 7
         - 12 CFR 1006.14(b)(2)
         - 2021-11-30
         - house may lower
         - Calls per debt.
    """
    lines = [
        f".. list-table:: {title}",
        "   :header-rows: 1",
        "   :widths: 22 14 24 10 12 28",
        "",
        "   * - Rule",
        "     - Value",
        "     - Source",
        "     - In force",
        "     - House rules",
        "     - Note",
    ]
    for r in rules:
        source = r.source if r.verified else f"{r.source} (secondary source, check)"
        lines += [
            f"   * - ``{r.id}``",
            f"     - {_show(r.value)}",
            f"     - {source}",
            f"     - {_since(r)}",
            f"     - {_DIRECTION[r.strictness]}",
            f"     - {r.note or '-'}",
        ]
    return "\n".join(lines)


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
