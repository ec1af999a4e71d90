"""Contact records: one call, e-mail, portal message or callback request each.

A :class:`ContactRecord` holds identifiers and instants only (no names, no
phone numbers, no message text), so it can be logged and shown on a screen
as it is. Every other part of :mod:`carecollect.contact_centre` computes its
figures from these records, and :func:`conversations` hands the account
history the right-party conversations the outreach governor and the dispute
procedure need.

The state of a record is always read *at an instant*: a call that was
answered at 09:00:40 is still waiting at 09:00:30. That is what lets the
same records drive a live wallboard and a report for a day long past.

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> from carecollect.contact_centre import ContactRecord, ContactChannel, Direction, Topic, ContactOutcome
>>> oslo = ZoneInfo("Europe/Oslo")
>>> call = ContactRecord(
...     contact_id="C-1", account_id="A-7", channel=ContactChannel.PHONE, direction=Direction.INBOUND,
...     topic=Topic.DISPUTE, started_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=oslo),
...     answered_at=dt.datetime(2026, 3, 2, 9, 0, 40, tzinfo=oslo),
...     ended_at=dt.datetime(2026, 3, 2, 9, 7, tzinfo=oslo), outcome=ContactOutcome.CONVERSATION,
...     invoice_id="INV-3", queue="phone-disputes")
>>> call.wait_at(call.ended_at)
datetime.timedelta(seconds=40)
>>> [c.at.time() for c in conversations([call])]
[datetime.time(9, 0, 40)]
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import attrs

from ..deprecation import renamed
from ..disputes import Dispute, record_patient_met
from ..errors import ValidationError
from ..events import Event
from ..timekeeping import require_aware

__all__ = [
    "ContactChannel",
    "ContactHistoryEvent",
    "ContactOutcome",
    "ContactRecord",
    "ContactState",
    "Conversation",
    "Direction",
    "HistoryKind",
    "Topic",
    "conversations",
    "meet_in_dispute",
]


class ContactChannel(enum.Enum):
    """How a contact reaches the contact centre (or the centre reaches the patient)."""

    #: A live telephone call.
    PHONE = "phone"
    #: A request to be called back; answered by an outbound call.
    CALLBACK = "callback"
    #: An e-mail to or from the contact centre.
    EMAIL = "email"
    #: A message in the patient portal.
    PORTAL = "portal"

    @property
    def is_voice(self) -> bool:
        """True for a live call, whose service level is measured in seconds.

        >>> ContactChannel.PHONE.is_voice, ContactChannel.CALLBACK.is_voice
        (True, False)
        """
        return self is ContactChannel.PHONE

    @property
    def is_written(self) -> bool:
        """True for contacts answered within business days (e-mail, portal, callback request).

        >>> ContactChannel.EMAIL.is_written
        True
        """
        return not self.is_voice


class Direction(enum.Enum):
    """Who started the contact."""

    #: The patient (or someone for them) contacted the centre.
    INBOUND = "inbound"
    #: The centre contacted the patient (a call, a callback, an e-mail).
    OUTBOUND = "outbound"


class Topic(enum.Enum):
    """What the contact is about, as far as the patient said or the menu captured."""

    #: The patient disputes a bill or the debt.
    DISPUTE = "dispute"
    #: The patient complains about the service or the way they were contacted.
    COMPLAINT = "complaint"
    #: The patient cannot pay or asks about financial help.
    HARDSHIP = "hardship"
    #: The patient asks for, or about, a payment plan.
    PAYMENT_PLAN = "payment_plan"
    #: The patient wants to pay or asks about a payment made.
    PAYMENT = "payment"
    #: A question about what insurance paid or should pay.
    INSURANCE = "insurance"
    #: A question about the balance or what a bill is for.
    BALANCE_QUESTION = "balance_question"
    #: Anything else, or not known.
    OTHER = "other"


class ContactOutcome(enum.Enum):
    """How a contact ended (or that it has not yet).

    Not a rule's :class:`~carecollect.policy.explain.Outcome` (allow, deny, defer...).

    .. versionchanged:: 0.2 named ``Outcome`` before (a deprecated alias remains).
    """

    #: Still open: a call in the queue, an e-mail not yet answered.
    PENDING = "pending"
    #: A live conversation with the patient or their representative (the right party).
    CONVERSATION = "conversation"
    #: A written contact answered in writing, or a callback request called back.
    ANSWERED = "answered"
    #: Someone other than the right party answered; nothing about the debt was disclosed.
    THIRD_PARTY = "third_party"
    #: The caller hung up while waiting.
    ABANDONED = "abandoned"
    #: An outbound call reached a voicemail box.
    VOICEMAIL = "voicemail"
    #: An outbound call was not picked up or did not connect.
    NO_CONNECTION = "no_connection"


class ContactState(enum.Enum):
    """Where a contact stands at one instant (see :meth:`ContactRecord.state_at`)."""

    #: The contact has not reached the centre yet at that instant.
    NOT_YET_ARRIVED = "not_yet_arrived"
    #: The contact is in a queue, not yet answered.
    WAITING = "waiting"
    #: An agent answered the contact.
    ANSWERED = "answered"
    #: The contact ended without an answer (the caller hung up, the e-mail was closed unanswered).
    ENDED_UNANSWERED = "ended_unanswered"


_ANSWERED = frozenset({ContactOutcome.CONVERSATION, ContactOutcome.ANSWERED, ContactOutcome.THIRD_PARTY})
_UNANSWERED_END = frozenset(
    {ContactOutcome.ABANDONED, ContactOutcome.VOICEMAIL, ContactOutcome.NO_CONNECTION}
)


def _aware(instance: ContactRecord, attribute: attrs.Attribute[dt.datetime], value: dt.datetime) -> None:
    require_aware(value, instance.label, attribute.name)


def _aware_or_none(
    instance: ContactRecord, attribute: attrs.Attribute[dt.datetime | None], value: dt.datetime | None
) -> None:
    if value is not None:
        require_aware(value, instance.label, attribute.name)


def _non_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        record = getattr(instance, "label", "ContactRecord")
        raise ValidationError(record, attribute.name, "a non-empty identifier is required")


@attrs.frozen
class ContactRecord:
    """One contact between the centre and an account holder.

    :param contact_id: the telephony or ticketing system's id of the contact.
    :param account_id: the patient account the contact concerns.
    :param channel: a :class:`ContactChannel`.
    :param direction: a :class:`Direction`.
    :param topic: a :class:`Topic`.
    :param started_at: when the call entered the queue (inbound), was dialled
        (outbound), or the message arrived; aware.
    :param answered_at: when an agent answered (or the written answer was
        sent); ``None`` if not (yet) answered.
    :param ended_at: when the call or conversation ended; ``None`` while open.
    :param outcome: an :class:`ContactOutcome`.
    :param invoice_id: the debt or invoice the contact is about, if known.
    :param queue: the queue the contact was routed to (see
        :func:`carecollect.contact_centre.route`); ``None`` if not routed.
    :param agent_id: the agent who handled it, if any.

    Raises :class:`~carecollect.errors.ValidationError` (naming the contact
    id and the field) when instants are naive or out of order, or the
    outcome does not fit the channel and the instants.
    """

    contact_id: str = attrs.field(validator=_non_empty)
    account_id: str = attrs.field(validator=_non_empty)
    channel: ContactChannel = attrs.field(validator=attrs.validators.instance_of(ContactChannel))
    direction: Direction = attrs.field(validator=attrs.validators.instance_of(Direction))
    topic: Topic = attrs.field(validator=attrs.validators.instance_of(Topic))
    started_at: dt.datetime = attrs.field(validator=_aware)
    answered_at: dt.datetime | None = attrs.field(default=None, validator=_aware_or_none)
    ended_at: dt.datetime | None = attrs.field(default=None, validator=_aware_or_none)
    outcome: ContactOutcome = attrs.field(
        default=ContactOutcome.PENDING, validator=attrs.validators.instance_of(ContactOutcome)
    )
    invoice_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None

    @property
    def label(self) -> str:
        """How errors name this record: ``"ContactRecord <contact_id>"``."""
        return f"ContactRecord {self.contact_id}"

    def __attrs_post_init__(self) -> None:
        name = self.label
        if self.answered_at is not None and self.answered_at < self.started_at:
            raise ValidationError(
                name, "answered_at", "is before started_at; check the clocks of the source system"
            )
        if self.ended_at is not None:
            if self.ended_at < self.started_at:
                raise ValidationError(name, "ended_at", "is before started_at")
            if self.answered_at is not None and self.ended_at < self.answered_at:
                raise ValidationError(name, "ended_at", "is before answered_at")
        outcome = self.outcome
        if outcome is ContactOutcome.PENDING:
            if self.answered_at is not None or self.ended_at is not None:
                raise ValidationError(
                    name,
                    "outcome",
                    "a pending contact has no answered_at or ended_at; give its final outcome",
                )
        elif outcome in _ANSWERED:
            if self.answered_at is None:
                raise ValidationError(
                    name, "answered_at", f"outcome {outcome.value!r} needs the instant it was answered"
                )
        elif self.answered_at is not None:
            raise ValidationError(
                name, "answered_at", f"outcome {outcome.value!r} means nobody answered; leave it None"
            )
        if outcome is ContactOutcome.ABANDONED:
            if not (self.channel.is_voice and self.direction is Direction.INBOUND):
                raise ValidationError(name, "outcome", "only an inbound call can be abandoned")
            if self.ended_at is None:
                raise ValidationError(
                    name, "ended_at", "an abandoned call needs the instant the caller hung up"
                )
        if (
            outcome in (ContactOutcome.VOICEMAIL, ContactOutcome.NO_CONNECTION)
            and self.direction is not Direction.OUTBOUND
        ):
            raise ValidationError(name, "outcome", f"{outcome.value!r} is an outcome of an outbound call")
        if (
            outcome is ContactOutcome.CONVERSATION
            and self.channel.is_written
            and self.channel is not ContactChannel.CALLBACK
        ):
            raise ValidationError(
                name,
                "outcome",
                "a written contact is ANSWERED, not a CONVERSATION; record a call for a conversation",
            )

    @property
    def is_open(self) -> bool:
        """True while the outcome is still :attr:`ContactOutcome.PENDING`."""
        return self.outcome is ContactOutcome.PENDING

    def state_at(self, now: dt.datetime) -> ContactState:
        """Where this contact stood at ``now`` (aware).

        A contact answered after ``now`` was still waiting at ``now``, so a
        finished record gives the right picture for any earlier instant.
        """
        require_aware(now, self.label, "now")
        if now < self.started_at:
            return ContactState.NOT_YET_ARRIVED
        if self.answered_at is not None and self.answered_at <= now:
            return ContactState.ANSWERED
        if self.answered_at is None and self.ended_at is not None and self.ended_at <= now:
            return ContactState.ENDED_UNANSWERED
        return ContactState.WAITING

    def wait_at(self, now: dt.datetime) -> dt.timedelta:
        """How long the contact had waited for an answer, as seen at ``now``.

        The time to answer if it was answered by then; the time to hanging
        up if it ended unanswered; otherwise the time waited so far (zero
        before it arrived).
        """
        state = self.state_at(now)
        if state is ContactState.NOT_YET_ARRIVED:
            return dt.timedelta(0)
        if state is ContactState.ANSWERED:
            assert self.answered_at is not None
            return self.answered_at - self.started_at
        if state is ContactState.ENDED_UNANSWERED:
            assert self.ended_at is not None
            return self.ended_at - self.started_at
        return now - self.started_at

    def to_history_event(self) -> ContactHistoryEvent | None:
        """The account-history entry this contact leaves, or ``None`` while it is open.

        >>> import datetime as dt
        >>> t = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
        >>> rec = ContactRecord("C-2", "A-1", ContactChannel.PHONE, Direction.OUTBOUND, Topic.PAYMENT,
        ...                     started_at=t, ended_at=t, outcome=ContactOutcome.VOICEMAIL)
        >>> rec.to_history_event().kind
        <HistoryKind.VOICEMAIL: 'voicemail'>
        """
        if self.is_open:
            return None
        outcome = self.outcome
        at: dt.datetime
        if outcome in _ANSWERED:
            assert self.answered_at is not None
            at = self.answered_at
        else:
            at = self.ended_at if self.ended_at is not None else self.started_at
        if outcome is ContactOutcome.CONVERSATION:
            kind = HistoryKind.CONVERSATION
        elif outcome is ContactOutcome.ANSWERED:
            kind = HistoryKind.WRITTEN_REPLY
        elif outcome is ContactOutcome.THIRD_PARTY:
            kind = HistoryKind.THIRD_PARTY
        elif outcome is ContactOutcome.VOICEMAIL:
            kind = HistoryKind.VOICEMAIL
        else:
            kind = HistoryKind.ATTEMPT
        return ContactHistoryEvent(
            kind=kind,
            contact_id=self.contact_id,
            account_id=self.account_id,
            invoice_id=self.invoice_id,
            at=at,
            channel=self.channel,
            direction=self.direction,
            topic=self.topic,
        )


class HistoryKind(enum.Enum):
    """What a finished contact means for the account's history."""

    #: A live conversation with the right party: the patient was met.
    CONVERSATION = "conversation"
    #: A written question answered in writing.
    WRITTEN_REPLY = "written_reply"
    #: Somebody else answered; nothing was disclosed.
    THIRD_PARTY = "third_party"
    #: A message was left on a voicemail box.
    VOICEMAIL = "voicemail"
    #: A call that did not connect, or a call abandoned by the caller.
    ATTEMPT = "attempt"


@attrs.frozen
class ContactHistoryEvent:
    """A finished contact, as the account history records it.

    Identifiers, instants and enums only, so it can go to logs and plugins.
    ``at`` is when the patient was reached (answered) or when the attempt
    ended.
    """

    kind: HistoryKind
    contact_id: str
    account_id: str
    invoice_id: str | None
    at: dt.datetime
    channel: ContactChannel
    direction: Direction
    topic: Topic

    @property
    def reached_patient(self) -> bool:
        """True for a conversation or a written reply: the patient was met.

        The dispute procedure reads this; the outreach governor counts only
        :attr:`HistoryKind.CONVERSATION` as a conversation.
        """
        return self.kind in (HistoryKind.CONVERSATION, HistoryKind.WRITTEN_REPLY)


class Conversation(NamedTuple):
    """A right-party conversation: ``(account_id, invoice_id, at)``."""

    account_id: str
    invoice_id: str | None
    at: dt.datetime


def conversations(
    records: Iterable[ContactRecord], *, include_written: bool = False
) -> Iterator[Conversation]:
    """The right-party conversations among ``records``, earliest first.

    A conversation is a call (inbound, outbound, or a callback) that reached
    the patient or their representative: outcome :attr:`ContactOutcome.CONVERSATION`.
    The outreach governor keeps a waiting period before the next call, as the
    policy packs require; ``at`` is the instant the call was answered. With
    ``include_written=True``, written answers count too (the dispute
    procedure's "the patient was met").

    >>> list(conversations([]))
    []
    """
    kinds = (
        {ContactOutcome.CONVERSATION, ContactOutcome.ANSWERED}
        if include_written
        else {ContactOutcome.CONVERSATION}
    )
    found = [
        Conversation(r.account_id, r.invoice_id, r.answered_at)
        for r in records
        if r.outcome in kinds and r.answered_at is not None
    ]
    found.sort(key=lambda c: (c.at, c.account_id, c.invoice_id or ""))
    return iter(found)


def meet_in_dispute(dispute: Dispute, records: Iterable[ContactRecord]) -> tuple[Dispute, Event | None]:
    """Let an open dispute see that the patient was met, from the contact centre's records.

    The earliest finished contact on the dispute's account that reached the
    patient (a conversation or a written reply, see
    :attr:`ContactHistoryEvent.reached_patient`) at or after the dispute was
    opened, and about the disputed invoice (or about no invoice in
    particular), is recorded with
    :func:`carecollect.disputes.record_patient_met`. Returns the dispute
    unchanged and ``None`` when no such contact exists, when the dispute is
    no longer open, or when that contact is already recorded, so calling it
    on every run is harmless.

    >>> import datetime as dt
    >>> from carecollect.disputes import Dispute, DisputeReason
    >>> t = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    >>> d = Dispute("D-1", "A-7", "INV-3", DisputeReason.BILLING_ERROR, t)
    >>> call = ContactRecord("C-1", "A-7", ContactChannel.PHONE, Direction.INBOUND, Topic.DISPUTE,
    ...                      started_at=t + dt.timedelta(minutes=5),
    ...                      answered_at=t + dt.timedelta(minutes=5, seconds=40),
    ...                      ended_at=t + dt.timedelta(minutes=12), outcome=ContactOutcome.CONVERSATION,
    ...                      invoice_id="INV-3")
    >>> met, event = meet_in_dispute(d, [call])
    >>> met.met_patient_at.isoformat(), event.detail("channel")
    ('2026-03-02T09:05:40+00:00', 'phone')
    >>> meet_in_dispute(met, [call])[1] is None
    True
    """
    if not dispute.is_open:
        return dispute, None
    best: ContactHistoryEvent | None = None
    for record in records:
        if record.account_id != dispute.account_id:
            continue
        if record.invoice_id is not None and not dispute.covers(record.invoice_id):
            continue
        event = record.to_history_event()
        if event is None or not event.reached_patient or event.at < dispute.opened_at:
            continue
        if best is None or (event.at, event.contact_id) < (best.at, best.contact_id):
            best = event
    if best is None or (dispute.met_patient_at is not None and dispute.met_patient_at <= best.at):
        return dispute, None
    return record_patient_met(dispute, at=best.at, channel=best.channel.value)


__getattr__ = renamed(__name__, {"Outcome": "carecollect.contact_centre.records:ContactOutcome"})
