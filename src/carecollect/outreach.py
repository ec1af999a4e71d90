"""Outreach steps and contact attempts: what we tell a patient, and what happened.

The policy (:mod:`carecollect` cadence and governor) decides which steps are
due; this module holds the records and their guarded transitions.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .channels import Channel
from .errors import InvalidTransition, ValidationError
from .events import Event, EventType
from .timekeeping import require_aware
from .validation import aware, aware_or_none, date_or_none, identifier, of_type

__all__ = [
    "AttemptOutcome",
    "ContactAttempt",
    "OutreachPurpose",
    "OutreachStatus",
    "OutreachStep",
    "cancel_step",
    "record_attempt",
]


class OutreachPurpose(enum.Enum):
    """Why we contact the patient."""

    #: A cost estimate before care.
    ESTIMATE = "estimate"
    #: The terms of payment (when and how to pay) before or at care.
    PAYMENT_TERMS = "payment_terms"
    #: The bill: what the patient owes and why.
    STATEMENT = "statement"
    #: A friendly note a few days before the due date.
    PRE_DUE_REMINDER = "pre_due_reminder"
    #: A reminder that a bill is overdue.
    REMINDER = "reminder"
    #: The last reminder before a formal or extraordinary step.
    FINAL_NOTICE = "final_notice"
    #: The US debt collector's validation notice (Regulation F, 12 CFR 1006.34).
    VALIDATION_NOTICE = "validation_notice"
    #: Norway's collection warning (inkassoloven § 9): 14 days before collection may start.
    INKASSOVARSEL = "inkassovarsel"
    #: Norway's payment demand by a collector (inkassoloven § 10).
    BETALINGSOPPFORDRING = "betalingsoppfordring"
    #: Germany's reminder (BGB § 286): puts the debtor in default.
    MAHNUNG = "mahnung"
    #: Notice that the debtor is in default, with the interest and fees that may follow.
    DEFAULT_NOTICE = "default_notice"
    #: The US 501(r) notice of extraordinary collection actions, 30 days before any is taken.
    ECA_NOTICE = "eca_notice"
    #: Notice that the account will be handed to a collection agency.
    PRE_PLACEMENT_NOTICE = "pre_placement_notice"
    #: How to apply for financial assistance (charity care), and the plain-language summary.
    FINANCIAL_ASSISTANCE = "financial_assistance"
    #: Payment plan options the patient can choose from.
    PLAN_OFFER = "plan_offer"
    #: A reminder that an instalment of a plan is due or overdue.
    INSTALMENT_REMINDER = "instalment_reminder"
    #: A receipt: the payment arrived.
    PAYMENT_CONFIRMATION = "payment_confirmation"
    #: The dispute was received and collection on the bill stops meanwhile.
    DISPUTE_ACKNOWLEDGEMENT = "dispute_acknowledgement"
    #: The answer to a dispute.
    DISPUTE_RESOLUTION = "dispute_resolution"
    #: A staff call to talk about the bill and options (with a call script).
    FOLLOW_UP_CALL = "follow_up_call"

    @property
    def is_collection(self) -> bool:
        """Steps that ask for payment (frozen by disputes, plans, insurer waits)."""
        return self in _COLLECTION


_COLLECTION = frozenset(
    {
        OutreachPurpose.STATEMENT,
        OutreachPurpose.PRE_DUE_REMINDER,
        OutreachPurpose.REMINDER,
        OutreachPurpose.FINAL_NOTICE,
        OutreachPurpose.VALIDATION_NOTICE,
        OutreachPurpose.INKASSOVARSEL,
        OutreachPurpose.BETALINGSOPPFORDRING,
        OutreachPurpose.MAHNUNG,
        OutreachPurpose.DEFAULT_NOTICE,
        OutreachPurpose.ECA_NOTICE,
        OutreachPurpose.PRE_PLACEMENT_NOTICE,
    }
)


class OutreachStatus(enum.Enum):
    """State of an outreach step."""

    #: Planned, not yet sent.
    PLANNED = "planned"
    #: Handed to the channel.
    SENT = "sent"
    #: The channel reported delivery.
    DELIVERED = "delivered"
    #: Could not be sent or delivered.
    FAILED = "failed"
    #: Cancelled before it was sent (paid, disputed, opted out).
    CANCELLED = "cancelled"


class AttemptOutcome(enum.Enum):
    """What happened when we tried to reach the patient."""

    #: The message was delivered.
    DELIVERED = "delivered"
    #: The attempt failed (rejected, or an error at the provider).
    FAILED = "failed"
    #: A call reached the patient: a conversation.
    ANSWERED = "answered"
    #: A call reached voicemail and a message was left.
    VOICEMAIL = "voicemail"
    #: A call that never connected (does not count towards US call caps).
    NO_CONNECTION = "no_connection"
    #: A call connected but nobody answered and no message was left.
    UNANSWERED = "unanswered"
    #: An e-mail bounced or a number was unknown: the contact point is undeliverable.
    BOUNCED = "bounced"


@attrs.frozen
class OutreachStep:
    """One message or call the policy decided on.

    :param id: stable identifier (also the outbox idempotency key).
    :param account_id: the account.
    :param invoice_id: the invoice it is about (``None``: the whole account).
    :param purpose: :class:`OutreachPurpose`.
    :param channels: channels it goes out on (letter and e-mail, say).
    :param due_at: when it is due (aware).
    :param template_key: the message template to render.
    :param status: :class:`OutreachStatus`.
    :param sent_at: when it went out.
    :param deadline: a pay-by or object-by date the message states, if any.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    invoice_id: str | None = attrs.field(validator=attrs.validators.optional(identifier))
    purpose: OutreachPurpose = attrs.field(validator=of_type(OutreachPurpose))
    channels: tuple[Channel, ...] = attrs.field(converter=tuple)
    due_at: dt.datetime = attrs.field(validator=aware)
    template_key: str = ""
    status: OutreachStatus = OutreachStatus.PLANNED
    sent_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    deadline: dt.date | None = attrs.field(default=None, validator=date_or_none)

    def __attrs_post_init__(self) -> None:
        if not self.channels:
            raise ValidationError(f"OutreachStep {self.id}", "channels", "at least one channel")
        for i, channel in enumerate(self.channels):
            if not isinstance(channel, Channel):
                raise ValidationError(
                    f"OutreachStep {self.id}",
                    f"channels[{i}]",
                    f"a Channel is expected, got {type(channel).__name__}",
                )

        if not self.template_key:
            object.__setattr__(self, "template_key", self.purpose.value)


@attrs.frozen
class ContactAttempt:
    """The record of one attempt on one channel.

    :param id: stable identifier.
    :param step_id: the :class:`OutreachStep` (``None`` for an ad-hoc staff call).
    :param account_id: the account.
    :param invoice_id: the debt it concerned.
    :param channel: the channel used.
    :param at: when (aware).
    :param outcome: :class:`AttemptOutcome`.
    :param provider_message_id: the channel's id for delivery reports.
    """

    id: str = attrs.field(validator=identifier)
    step_id: str | None = attrs.field(validator=attrs.validators.optional(identifier))
    account_id: str = attrs.field(validator=identifier)
    invoice_id: str | None = attrs.field(validator=attrs.validators.optional(identifier))
    channel: Channel = attrs.field(validator=of_type(Channel))
    at: dt.datetime = attrs.field(validator=aware)
    outcome: AttemptOutcome = attrs.field(validator=of_type(AttemptOutcome))
    provider_message_id: str | None = attrs.field(default=None, repr=False)

    @property
    def is_conversation(self) -> bool:
        """A phone call that reached the patient."""
        return self.channel is Channel.PHONE and self.outcome is AttemptOutcome.ANSWERED

    @property
    def counts_as_call(self) -> bool:
        """Counts towards a US call cap: any placed call except one that never connected."""
        return self.channel is Channel.PHONE and self.outcome is not AttemptOutcome.NO_CONNECTION


def record_attempt(step: OutreachStep, attempt: ContactAttempt) -> tuple[OutreachStep, Event]:
    """Apply an attempt's outcome to its step."""
    require_aware(attempt.at, f"ContactAttempt {attempt.id}", "at")
    if attempt.step_id != step.id:
        raise ValidationError(f"ContactAttempt {attempt.id}", "step_id", f"is not step {step.id}")
    if step.status is OutreachStatus.CANCELLED:
        raise InvalidTransition(f"OutreachStep {step.id}", step.status, "record an attempt")
    ok = attempt.outcome in (AttemptOutcome.DELIVERED, AttemptOutcome.ANSWERED, AttemptOutcome.VOICEMAIL)
    if ok:
        status = (
            OutreachStatus.DELIVERED
            if attempt.outcome is not AttemptOutcome.VOICEMAIL
            else OutreachStatus.SENT
        )
        new = attrs.evolve(step, status=status, sent_at=step.sent_at or attempt.at)
        return new, Event(EventType.OUTREACH_SENT, step.id, attempt.at, {"channel": attempt.channel.value})
    if step.status is OutreachStatus.DELIVERED:
        return step, Event(EventType.OUTREACH_FAILED, step.id, attempt.at, {"channel": attempt.channel.value})
    return attrs.evolve(step, status=OutreachStatus.FAILED), Event(
        EventType.OUTREACH_FAILED, step.id, attempt.at, {"channel": attempt.channel.value}
    )


def cancel_step(step: OutreachStep, *, at: dt.datetime, reason: str) -> tuple[OutreachStep, Event]:
    """Cancel a planned or failed step (a payment, dispute or opt-out came first)."""
    require_aware(at, f"OutreachStep {step.id}", "at")
    if step.status not in (OutreachStatus.PLANNED, OutreachStatus.FAILED):
        raise InvalidTransition(f"OutreachStep {step.id}", step.status, "cancel", "it has already gone out")
    return attrs.evolve(step, status=OutreachStatus.CANCELLED), Event(
        EventType.OUTREACH_CANCELLED, step.id, at, {"reason": reason}
    )
