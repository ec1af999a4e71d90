"""Routing: which queue and priority an inbound contact gets, and which agent is offered it.

Pure functions, so a vendor's telephony or ticketing system can call them
with its own data:

* :func:`route` gives a contact a queue and a :class:`Priority` from what it
  is about and from the account's state: a dispute or a complaint first, a
  patient in hardship before a routine question.
* :func:`queue_order` sorts waiting contacts: priority first, then the
  longest waiting.
* :func:`offer_order` lists the agents to offer a contact to, in the order
  the article from CrediCare's contact centre describes: agents with
  A-competence first (they answer the moment it rings), then B and C, and
  the e-mail staff last in the phone loop.

>>> from carecollect.contact_centre import ContactChannel, Topic
>>> r = route(ContactChannel.PHONE, Topic.BALANCE_QUESTION, AccountState("A-1", in_hardship=True))
>>> r.queue, r.priority
('phone-hardship', <Priority.HIGH: 1>)
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping

import attrs

from ..errors import ValidationError
from ..timekeeping import require_aware
from .records import ContactChannel, ContactRecord, Topic

__all__ = [
    "AccountState",
    "Agent",
    "Competence",
    "HomeChannel",
    "Priority",
    "QueueKind",
    "Routing",
    "offer_order",
    "queue_name",
    "queue_order",
    "route",
]


class Priority(enum.IntEnum):
    """Lower is served first."""

    #: Disputes and complaints: collection is on hold and the patient is waiting for a person.
    URGENT = 0
    #: A patient in hardship, or asking about hardship or a payment plan.
    HIGH = 1
    #: Everything else, served in order of arrival.
    NORMAL = 2


class QueueKind(enum.Enum):
    """The kind of work a queue holds; a queue's name is ``<channel>-<kind>``."""

    #: Disputes and complaints.
    DISPUTES = "disputes"
    #: Hardship, financial assistance and payment plans.
    HARDSHIP = "hardship"
    #: Every other contact.
    GENERAL = "general"


def queue_name(channel: ContactChannel, kind: QueueKind) -> str:
    """The default name of the queue of ``kind`` for ``channel``.

    >>> queue_name(ContactChannel.EMAIL, QueueKind.DISPUTES)
    'email-disputes'
    """
    return f"{channel.value}-{kind.value}"


@attrs.frozen
class AccountState:
    """What routing needs to know about an account (no names, no amounts).

    :param account_id: the account.
    :param open_dispute: a dispute on the account is open.
    :param in_hardship: the patient is known to be in financial hardship.
    :param plan_in_arrears: a payment plan has a missed instalment.
    """

    account_id: str
    open_dispute: bool = False
    in_hardship: bool = False
    plan_in_arrears: bool = False


@attrs.frozen
class Routing:
    """Where a contact goes: ``queue``, ``kind``, ``priority`` and the ``reason`` in words."""

    queue: str
    kind: QueueKind
    priority: Priority
    reason: str


def route(
    channel: ContactChannel,
    topic: Topic,
    account: AccountState | None = None,
    *,
    queue_names: Mapping[tuple[ContactChannel, QueueKind], str] | None = None,
) -> Routing:
    """The queue and priority of an inbound contact.

    In order: a dispute or complaint (or any contact on an account with an
    open dispute) goes to the disputes queue, URGENT; a hardship or
    payment-plan question, or any contact from a patient in hardship or
    with a plan in arrears, goes to the hardship queue, HIGH; everything
    else to the general queue, NORMAL. ``queue_names`` overrides the default
    ``<channel>-<kind>`` names.

    >>> route(ContactChannel.EMAIL, Topic.COMPLAINT).queue
    'email-disputes'
    >>> route(ContactChannel.PHONE, Topic.PAYMENT).priority
    <Priority.NORMAL: 2>
    """
    if not isinstance(channel, ContactChannel):
        raise ValidationError("Routing", "channel", f"a ContactChannel is expected, got {channel!r}")
    if not isinstance(topic, Topic):
        raise ValidationError("Routing", "topic", f"a Topic is expected, got {topic!r}")
    account = account or AccountState("unknown")
    if topic in (Topic.DISPUTE, Topic.COMPLAINT):
        kind, priority, reason = QueueKind.DISPUTES, Priority.URGENT, f"topic is {topic.value}"
    elif account.open_dispute:
        kind, priority, reason = QueueKind.DISPUTES, Priority.URGENT, "the account has an open dispute"
    elif topic in (Topic.HARDSHIP, Topic.PAYMENT_PLAN):
        kind, priority, reason = QueueKind.HARDSHIP, Priority.HIGH, f"topic is {topic.value}"
    elif account.in_hardship:
        kind, priority, reason = QueueKind.HARDSHIP, Priority.HIGH, "the patient is in hardship"
    elif account.plan_in_arrears:
        kind, priority, reason = QueueKind.HARDSHIP, Priority.HIGH, "a payment plan is in arrears"
    else:
        kind, priority, reason = QueueKind.GENERAL, Priority.NORMAL, "routine question"
    names = queue_names or {}
    return Routing(names.get((channel, kind), queue_name(channel, kind)), kind, priority, reason)


def queue_order(
    waiting: Iterable[ContactRecord], accounts: Mapping[str, AccountState] | None = None
) -> tuple[ContactRecord, ...]:
    """Waiting contacts in the order they should be answered.

    Priority (from :func:`route` with the account's state from ``accounts``)
    first, then the earliest arrival, then the contact id so that the order
    is total.

    >>> queue_order([])
    ()
    """
    states = accounts or {}

    def key(record: ContactRecord) -> tuple[int, dt.datetime, str]:
        priority = route(record.channel, record.topic, states.get(record.account_id)).priority
        return (int(priority), record.started_at, record.contact_id)

    return tuple(sorted(waiting, key=key))


class Competence(enum.Enum):
    """An agent's tier for one queue; A answers first."""

    #: Answers first: the agents best trained for the queue.
    A = "A"
    #: Answers when no A agent is free.
    B = "B"
    #: Answers last: help from another queue or channel.
    C = "C"

    @property
    def rank(self) -> int:
        """0 for A, 1 for B, 2 for C."""
        return "ABC".index(self.value)


class HomeChannel(enum.Enum):
    """The work an agent mainly does: calls, or written contacts (e-mail, portal)."""

    #: The agent mainly answers calls.
    PHONE = "phone"
    #: The agent mainly answers e-mail and portal messages (last in the phone loop).
    WRITTEN = "written"


def _competences(
    value: Mapping[str, Competence] | Iterable[tuple[str, Competence]],
) -> tuple[tuple[str, Competence], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(q), c) for q, c in items))


def _aware_or_none(
    instance: Agent, attribute: attrs.Attribute[dt.datetime | None], value: dt.datetime | None
) -> None:
    if value is not None:
        require_aware(value, f"Agent {instance.agent_id}", attribute.name)


@attrs.frozen
class Agent:
    """An agent as routing sees them: an id, competences per queue, home channel and state.

    :param agent_id: the agent's id in the telephony system (no names).
    :param competences: queue name -> :class:`Competence`.
    :param home: :class:`HomeChannel`; e-mail staff are offered calls last.
    :param available: logged in and free right now.
    :param idle_since: when the agent became free (longest idle is offered first).
    """

    agent_id: str
    competences: tuple[tuple[str, Competence], ...] = attrs.field(converter=_competences)
    home: HomeChannel = HomeChannel.PHONE
    available: bool = True
    idle_since: dt.datetime | None = attrs.field(default=None, validator=_aware_or_none)

    def competence(self, queue: str) -> Competence | None:
        """The agent's tier for ``queue``, or ``None`` if they do not take it.

        >>> Agent("AG-1", {"phone-general": Competence.B}).competence("phone-general")
        <Competence.B: 'B'>
        """
        for name, tier in self.competences:
            if name == queue:
                return tier
        return None


def offer_order(queue: str, channel: ContactChannel, agents: Iterable[Agent]) -> tuple[Agent, ...]:
    """The available agents to offer a contact in ``queue`` to, first to last.

    Only available agents with a competence for ``queue`` are listed. Agents
    whose home channel does not match the contact come last (the e-mail
    staff in the phone loop, and phone staff for written work, so that the
    phones stay covered); then competence A, B, C; then the longest idle;
    then the agent id.

    >>> a = Agent("AG-1", {"phone-general": Competence.A}, home=HomeChannel.WRITTEN)
    >>> b = Agent("AG-2", {"phone-general": Competence.C})
    >>> [x.agent_id for x in offer_order("phone-general", ContactChannel.PHONE, [a, b])]
    ['AG-2', 'AG-1']
    """
    home = HomeChannel.PHONE if channel.is_voice else HomeChannel.WRITTEN
    far_future = dt.datetime.max.replace(tzinfo=dt.UTC)
    candidates = []
    for agent in agents:
        tier = agent.competence(queue)
        if tier is None or not agent.available:
            continue
        idle = agent.idle_since if agent.idle_since is not None else far_future
        candidates.append(((agent.home is not home, tier.rank, idle, agent.agent_id), agent))
    candidates.sort(key=lambda pair: pair[0])
    return tuple(agent for _, agent in candidates)
