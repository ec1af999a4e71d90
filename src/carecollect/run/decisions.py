"""What a run decides: one :class:`Decision` per account and invoice, and the plan they form.

:func:`~carecollect.run.planning.plan_run` collects the decisions into a :class:`RunPlan`
(messages to send, placements, instalment charges, missed instalments);
:func:`~carecollect.run.execute.execute_run` carries it out.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..channels import Channel
from ..money import Money
from ..outreach import OutreachStep
from ..policy.explain import Reason
from ..store.base import AccountSnapshot
from .kernel import (
    tally,
)

__all__ = [
    "AccountPlan",
    "Decision",
    "DecisionKind",
    "PlannedCharge",
    "PlannedMessage",
    "PlannedPlacement",
    "RunPlan",
]


class DecisionKind(enum.Enum):
    """What the run decided about one step on one channel."""

    #: Send this outreach step on this channel now.
    SEND = "send"
    #: A step is due but a rule holds it back (quiet hours, a cap, no consent, a dispute...).
    HOLD = "hold"
    #: No step is due for this invoice today.
    NOTHING_DUE = "nothing_due"
    #: Collection on the account is paused (a dispute, a wait for the insurer, a plan).
    PAUSED = "paused"
    #: An instalment of a plan stayed unpaid past the grace days: it is marked missed.
    PLAN_MISSED = "plan_missed"
    #: The account may be and is placed with a collection agency.
    PLACE = "place"
    #: Placement (or another extraordinary action) was wanted but a gate refuses it for now.
    GATE_HELD = "gate_held"
    #: A due instalment is charged to the patient's mandate.
    CHARGE = "charge"
    #: A due instalment is not charged while a dispute on its invoices is open.
    CHARGE_HELD = "charge_held"


@attrs.frozen
class Decision:
    """One decision, with its reasons (what the audit log stores)."""

    kind: DecisionKind
    account_id: str
    invoice_id: str | None
    purpose: str | None
    channel: str | None
    reasons: tuple[Reason, ...] = ()
    earliest: dt.datetime | None = None

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (ids and rule references only; no PHI)."""
        return {
            "kind": self.kind.value,
            "account_id": self.account_id,
            "invoice_id": self.invoice_id,
            "purpose": self.purpose,
            "channel": self.channel,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "reasons": [r.to_record() for r in self.reasons],
        }


@attrs.frozen
class PlannedMessage:
    """A message the run will send: one step on one channel.

    :param key: the outbox idempotency key (``<step id>:<channel>``).
    :param step: the outreach step.
    :param channel: the channel.
    :param decision: the decision that allowed it.
    """

    key: str
    step: OutreachStep
    channel: Channel
    decision: Decision


@attrs.frozen
class PlannedPlacement:
    """An account the gate allows to place with the agency."""

    account_id: str
    amount: Money
    invoice_ids: tuple[str, ...]
    decision: Decision


@attrs.frozen
class PlannedCharge:
    """A plan instalment due today, to be charged to the plan's stored mandate.

    :param key: the outbox and provider idempotency key (``charge:<plan id>#<number>``).
    :param account_id: the account.
    :param plan_id: the plan.
    :param number: the instalment number.
    :param amount: the instalment's amount.
    :param provider: the payment-provider plugin that holds the mandate.
    :param decision: the decision that allowed it.
    """

    key: str
    account_id: str
    plan_id: str
    number: int
    amount: Money
    provider: str
    decision: Decision


@attrs.frozen
class AccountPlan:
    """Everything decided for one account."""

    messages: tuple[PlannedMessage, ...]
    decisions: tuple[Decision, ...]
    missed: tuple[tuple[str, int], ...]
    placement: PlannedPlacement | None
    charges: tuple[PlannedCharge, ...] = ()


@attrs.frozen
class RunPlan:
    """The plan of a whole run (also the result of a dry run).

    With :attr:`~carecollect.run.settings.RunSettings.keep_plan` false the lists are empty and :attr:`tally` holds what they
    would have counted: read the plan's size with :meth:`counts` and :meth:`size`, which work
    either way.
    """

    now: dt.datetime
    accounts: int
    invoices: int
    messages: tuple[PlannedMessage, ...]
    decisions: tuple[Decision, ...]
    missed: tuple[tuple[str, int], ...]
    placements: tuple[PlannedPlacement, ...]
    charges: tuple[PlannedCharge, ...] = ()
    #: Counts kept instead of the lists (``None``: the lists are complete): ``messages``,
    #: ``missed``, ``placements``, ``charges`` and ``decision.<kind>``.
    tally: Mapping[str, int] | None = None

    def counts(self) -> dict[str, int]:
        """Decisions by kind."""
        if self.tally is not None:
            return {
                k.removeprefix("decision."): v for k, v in self.tally.items() if k.startswith("decision.")
            }
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.kind.value] = out.get(d.kind.value, 0) + 1
        return out

    def size(self, what: str) -> int:
        """How many ``messages``, ``missed`` instalments, ``placements`` or ``charges`` were planned.

        :raises ValueError: for any other name.
        """
        if what not in ("messages", "missed", "placements", "charges"):
            raise ValueError(f"size of {what!r}: one of messages, missed, placements, charges")
        if self.tally is not None:
            return self.tally.get(what, 0)
        return len(getattr(self, what))


@attrs.frozen
class _Planned:
    """One account's plan as the run's planner hands it on, or (without objects) the counts of many."""

    account_id: str
    creditor_id: str
    invoices: int
    plan: AccountPlan | None
    #: Without ``objects``: the decision codes of the invoices of :attr:`accounts` accounts.
    codes: Sequence[int] = ()
    #: Counts of instalment actions (without ``objects``: ``missed``, ``charges``, ``decision.*``).
    extra: Mapping[str, int] | None = None
    accounts: int = 1
    #: The account's snapshot the planner read and its version read before it (``None``: planned
    #: on plan rows, or the store keeps no versions): the sender uses it while the version holds.
    read: tuple[AccountSnapshot, object] | None = None


class _Collected:
    """Accumulates the account plans of a run into a :class:`RunPlan` (or only their counts)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.accounts = 0
        self.invoices = 0
        self.messages: list[PlannedMessage] = []
        self.decisions: list[Decision] = []
        self.missed: list[tuple[str, int]] = []
        self.placements: list[PlannedPlacement] = []
        self.charges: list[PlannedCharge] = []
        self.tally: dict[str, int] = {}

    def add(self, planned: _Planned) -> None:
        self.accounts += planned.accounts
        self.invoices += planned.invoices
        plan = planned.plan
        if plan is None:
            tally(planned.codes, self.tally)
            for key, n in (planned.extra or {}).items():
                self.tally[key] = self.tally.get(key, 0) + n
            return
        charges = [c for c in plan.charges if c.decision.kind is DecisionKind.CHARGE]
        if not self.keep:
            t = self.tally
            for what, n in (
                ("messages", len(plan.messages)),
                ("missed", len(plan.missed)),
                ("placements", plan.placement is not None),
                ("charges", len(charges)),
            ):
                t[what] = t.get(what, 0) + n
            for d in plan.decisions:
                key = f"decision.{d.kind.value}"
                t[key] = t.get(key, 0) + 1
            return
        self.messages.extend(plan.messages)
        self.decisions.extend(plan.decisions)
        self.missed.extend(plan.missed)
        if plan.placement is not None:
            self.placements.append(plan.placement)
        self.charges.extend(charges)

    def merge(self, other: _Collected) -> None:
        """Add what another process collected (a worker's partition) to this one."""
        self.accounts += other.accounts
        self.invoices += other.invoices
        self.messages.extend(other.messages)
        self.decisions.extend(other.decisions)
        self.missed.extend(other.missed)
        self.placements.extend(other.placements)
        self.charges.extend(other.charges)
        for key, n in other.tally.items():
            self.tally[key] = self.tally.get(key, 0) + n

    def plan(self, now: dt.datetime) -> RunPlan:
        return RunPlan(
            now,
            self.accounts,
            self.invoices,
            tuple(self.messages),
            tuple(self.decisions),
            tuple(self.missed),
            tuple(self.placements),
            tuple(self.charges),
            None if self.keep else dict(self.tally),
        )
