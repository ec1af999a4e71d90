"""Reasons and decisions: why a policy function said yes, no or later.

Every decision carecollect's outreach policy takes (the cadence's "this step
is due", the governor's "you may not call now") carries a tuple of
:class:`Reason` objects. A reason names the rule (its id in the policy pack),
the rule's legal or published source, the outcome it led to and the rule's
own figures as parameters (:class:`Params`: days, dates, channel names,
record ids). The sentence a staff screen shows is written out only when
asked for (:attr:`Reason.message`), from the one catalogue of templates,
:mod:`carecollect.policy.reason_texts`: a run that decides a million invoices
records ids and numbers, not a million sentences. Texts never carry a
patient's name or a clinical detail: only record ids, dates and numbers.

A reason turns into a plain ``dict`` with :meth:`Reason.to_record` and back
with :meth:`Reason.from_record`, so an auditor can store the decision and
replay it: the same inputs always give the same reasons, in the same order.
A record stored before reasons carried parameters (its text only) still
reads back, and explains with its stored text.

>>> import datetime as dt
>>> from carecollect.policy.explain import Outcome, Reason, Verdict
>>> r = Reason("calls.max_per_7_days", "12 CFR 1006.14(b)(2)", Outcome.DEFER,
...            {"case": "reached", "most": 7, "channel": "phone", "days": 7, "until": "2026-03-08"})
>>> d = Verdict(allowed=False, reasons=(r,))
>>> d.denials[0].rule_id
'calls.max_per_7_days'
>>> Reason.from_record(r.to_record()) == r
True
>>> print(d.explain())
DEFER calls.max_per_7_days (12 CFR 1006.14(b)(2)): 7 phone contacts on this debt in the 7 days ending 2026-03-08
>>> old = {"rule_id": "sms.allowed", "source": "TCPA", "outcome": "deny", "message": "no texts"}
>>> Reason.from_record(old).message
'no texts'
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from ..deprecation import REMOVED_IN, renamed
from ..errors import ValidationError
from .reason_texts import template
from .rules import Rule, Strictness

if TYPE_CHECKING:  # packs do not need explain at run time; explain reads a pack's rules
    from .packs import PolicyPack

__all__ = [
    "Outcome",
    "Param",
    "Params",
    "Reason",
    "Verdict",
    "reason_from_rule",
    "reason_text",
    "rules_rst_table",
]


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


#: The values a reason's parameters may take: record ids, dates (ISO text), numbers, channel names.
Param = str | int


_PARAM_TYPES = frozenset({str, int})


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError("a reason's Params are immutable")


@typing.final
class Params(dict[str, Param]):
    """A reason's parameters: an immutable, hashable mapping of names to ``str`` or ``int``.

    The rule's own figures (days, amounts as text, dates, channel names, record ids), never a
    patient's name, address or clinical detail. A ``dict`` underneath (reading it, writing a
    text from it and storing it cost what a ``dict`` costs); every way to change it raises
    :class:`TypeError`.

    >>> Params({"days": 7}) == {"days": 7}, dict(Params(days=7, on="2026-03-08"))
    (True, {'days': 7, 'on': '2026-03-08'})
    """

    __slots__ = ()

    def __init__(self, items: Mapping[str, Param] | None = None, /, **more: Param) -> None:
        if items and items.__class__ is not dict and not isinstance(items, Mapping):
            raise ValidationError(
                "Reason", "params", f"a mapping of names to values, not {type(items).__name__}"
            )
        data = ({**items, **more} if more else items) if items else more
        for key, value in data.items():
            if value.__class__ not in _PARAM_TYPES or key.__class__ is not str:  # a bool is no number here
                raise ValidationError("Reason", "params", f"{key!r}: a name and a str or int value")
        dict.__init__(self, data)

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __repr__(self) -> str:
        return f"Params({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[type[Params], tuple[dict[str, Param]]]:
        return (Params, (dict(self),))  # a run's workers hand decisions between processes

    def __copy__(self) -> Params:
        return self

    def __deepcopy__(self, memo: object) -> Params:
        return self


_NO_PARAMS = Params()


def _old_text(where: str) -> None:
    warnings.warn(
        f"{where} with a finished message is deprecated and goes away in carecollect {REMOVED_IN}; "
        "pass the message's parameters (see carecollect.policy.reason_texts)",
        DeprecationWarning,
        stacklevel=3,
    )


@attrs.frozen(init=False)
class Reason:
    """One rule's contribution to a decision, recorded as the rule's id and its parameters.

    The text a staff screen shows is written out only when asked for (:attr:`message`), from
    the template the catalogue :data:`carecollect.policy.reason_texts.REASON_TEXTS` holds for
    :attr:`rule_id`: a decision records a handful of ids and numbers, not a sentence.

    :param rule_id: the rule's id in the pack (``"quiet_hours.start"``), or a ``"record.*"`` /
        ``"creditor.*"`` id for a fact that is not a pack rule.
    :param source: the rule's legal or published source.
    :param outcome: the :class:`Outcome`.
    :param params: the message's parameters (:class:`Params`; a ``case`` parameter picks the
        template where one rule has several texts).
    :param text: a finished text instead of a template (a reason read from an audit log written
        before reasons carried parameters).

    .. versionchanged:: 0.2 a reason records ``params``, not its message text;
       ``Reason(rule_id, source, outcome, "message")`` still works, with a
       :class:`DeprecationWarning`.
    """

    rule_id: str
    source: str
    outcome: Outcome
    params: Params
    text: str | None

    def __init__(
        self,
        rule_id: str,
        source: str,
        outcome: Outcome,
        params: Mapping[str, Param] | str | None = None,
        *,
        text: str | None = None,
    ) -> None:
        if type(params) is not Params:
            if isinstance(params, str):  # the 0.1 signature: a finished message
                _old_text("Reason(rule_id, source, outcome, message)")
                params, text = None, params
            params = Params(params) if params else _NO_PARAMS
        self.__attrs_init__(rule_id, source, outcome, params, text)

    @property
    def message(self) -> str:
        """The reason's text for a staff screen (PHI-free), written out from the catalogue now."""
        if self.text is not None:
            return self.text
        return reason_text(self.rule_id, self.params)

    def to_record(self) -> dict[str, Any]:
        """A plain ``dict`` for an audit log (see :meth:`from_record`).

        :returns: keys ``rule_id``, ``source``, ``outcome`` and ``params`` (a ``dict``); no text:
            :meth:`from_record` and :attr:`message` write it out when someone reads the log. A
            reason read from an older log keeps its ``message`` instead of ``params``.
        """
        if self.text is not None:
            return {
                "rule_id": self.rule_id,
                "source": self.source,
                "outcome": self.outcome.value,
                "message": self.text,
            }
        return {
            "rule_id": self.rule_id,
            "source": self.source,
            "outcome": self.outcome.value,
            "params": dict(self.params),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Reason:
        """Rebuild a reason stored with :meth:`to_record`, or an older one stored with its text only.

        :param record: the stored mapping.
        :raises ValidationError: a key is missing, the outcome is unknown or a parameter is not
            a ``str`` or ``int``.
        """
        try:
            rule_id, source, outcome = record["rule_id"], record["source"], Outcome(record["outcome"])
            if "params" in record:
                return cls(rule_id, source, outcome, record["params"])
            return cls(rule_id, source, outcome, text=str(record["message"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValidationError("Reason", "record", f"not a stored reason ({exc})") from None

    def __str__(self) -> str:
        return f"{self.outcome.name} {self.rule_id} ({self.source}): {self.message}"


def reason_text(rule_id: str, params: Mapping[str, Param]) -> str:
    """The text of a reason of ``rule_id`` with ``params``, from the catalogue.

    A rule id the catalogue does not know (a reason from a newer release, say) is shown as
    its id and parameters rather than failing an explain.

    :param rule_id: the rule's id.
    :param params: the parameters (``case`` picks among several templates).
    :returns: the text.

    >>> reason_text("calls.max_per_7_days", {"case": "below", "most": 7, "days": 7})
    'fewer than 7 in 7 days'
    """
    found = template(rule_id, params.get("case"))
    if found is not None:
        try:
            return found.format_map(params)
        except (KeyError, IndexError, ValueError):
            pass
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{rule_id} ({shown})" if shown else rule_id


def reason_from_rule(rule: Rule, outcome: Outcome, text: str | None = None, /, **params: Param) -> Reason:
    """A :class:`Reason` citing ``rule`` (its id and source).

    :param rule: the :class:`~carecollect.policy.rules.Rule` in force.
    :param outcome: what it did.
    :param text: deprecated: a finished message (pass ``params`` instead).
    :param params: the parameters of the rule's text in the catalogue.
    :returns: the reason.

    >>> import datetime as dt
    >>> from carecollect.policy.rules import Rule
    >>> rule = Rule("quiet_hours.start", dt.time(8), "12 CFR 1006.6(b)(1)(i)", dt.date(2021, 11, 30))
    >>> r = reason_from_rule(rule, Outcome.DEFER, case="outside", start="08:00", end="21:00", zones="America/Chicago")
    >>> r.source, r.message
    ('12 CFR 1006.6(b)(1)(i)', 'outside 08:00-21:00 local time in at least one of America/Chicago')
    """
    source = rule.source if rule.verified else f"{rule.source} [secondary source, to be checked]"
    if text is not None:
        _old_text("reason_from_rule(rule, outcome, message)")
        return Reason(rule.id, source, outcome, text=text)
    return Reason(rule.id, source, outcome, params)


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


def rule_reason(
    pack: PolicyPack, rule_id: str, on: dt.date, outcome: Outcome, text: str | None = None, /, **params: Param
) -> Reason:
    """A reason citing the source of ``rule_id`` as in force in ``pack`` on ``on``.

    :param pack: the policy pack.
    :param rule_id: the rule's id.
    :param on: the day whose version of the rule applies.
    :param outcome: what the rule did.
    :param text: deprecated: a finished message (pass ``params`` instead).
    :param params: the parameters of the rule's text in the catalogue.
    :returns: the reason (an unverified rule's source is marked as such).
    :raises ConfigurationError: the pack has no such rule in force on ``on``.
    """
    return reason_from_rule(pack.rule(rule_id, on=on), outcome, text, **params)


def note(
    rule_id: str, source: str, outcome: Outcome | str, text: str | Outcome | None = None, /, **params: Param
) -> Reason:
    """A reason for a fact that is not a pack rule (``"creditor.*"``, ``"record.*"`` ids).

    :param rule_id: the id (``"creditor.*"`` or ``"record.*"``).
    :param source: where the fact comes from.
    :param outcome: what it did.
    :param text: deprecated: ``note(rule_id, source, message, outcome)``, the 0.1 order.
    :param params: the parameters of the id's text in the catalogue.

    .. versionchanged:: 0.2 the outcome comes third, the text's parameters after it.

    >>> r = note("record.reminder_received", "BGB § 286 (1)", Outcome.INFO, received="2026-03-09", due="2026-03-01")
    >>> r.outcome.blocks, r.message
    (False, 'a reminder received on 2026-03-09, after the due date 2026-03-01')
    """
    if isinstance(outcome, str) and isinstance(text, Outcome):  # the 0.1 order
        _old_text("note(rule_id, source, message, outcome)")
        return Reason(rule_id, source, text, text=outcome)
    if not isinstance(outcome, Outcome) or text is not None:
        raise ValidationError(
            "Reason", "outcome", f"note({rule_id!r}): an Outcome, then the text's parameters"
        )
    return Reason(rule_id, source, outcome, params)


def blocking(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """The reasons that block (deny or defer).

    :param reasons: the reasons.

    >>> blocking((note("record.balance", "s", Outcome.ALLOW), note("record.balance", "s", Outcome.DEFER)))[0].outcome
    <Outcome.DEFER: 'defer'>
    """
    return tuple(r for r in reasons if r.outcome.blocks)


__getattr__ = renamed(__name__, {"Decision": "carecollect.policy.explain:Verdict"})
