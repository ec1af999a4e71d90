"""Events: the record every state change leaves behind.

Each transition function in carecollect returns ``(new_object, event)``.
Events are frozen, carry an aware timestamp and the id of the record they
concern, and hold only identifiers and amounts in ``details`` (never a name,
address or clinical detail), so they can be logged, audited and sent to
plugins as they are.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

import attrs

from .timekeeping import require_aware

__all__ = ["Event", "EventType"]


class EventType(enum.Enum):
    """What happened."""

    #: An invoice was issued to the patient.
    INVOICE_ISSUED = "invoice.issued"
    #: The first statement of an invoice was sent (starts periods such as the 501(r) notification period).
    INVOICE_STATEMENT_SENT = "invoice.first_statement"
    #: The insurance claim behind an invoice changed (paid, denied, appealed).
    INVOICE_INSURANCE_UPDATED = "invoice.insurance_updated"
    #: An invoice's balance reached zero.
    INVOICE_PAID = "invoice.paid"
    #: An invoice was cancelled.
    INVOICE_CANCELLED = "invoice.cancelled"
    #: A paid invoice is open again (a payment on it was reversed).
    INVOICE_REOPENED = "invoice.reopened"
    #: An entry was posted to an account's ledger (charge, payment, adjustment, refund, reversal).
    LEDGER_POSTED = "ledger.posted"
    #: A payment plan the patient chose became active.
    PLAN_ACTIVATED = "plan.activated"
    #: An instalment of a plan was paid.
    PLAN_INSTALMENT_PAID = "plan.instalment_paid"
    #: An instalment stayed unpaid past its grace days.
    PLAN_INSTALMENT_MISSED = "plan.instalment_missed"
    #: The money of a paid instalment went back (a returned debit, a chargeback); it is due again.
    PLAN_INSTALMENT_REVERSED = "plan.instalment_reversed"
    #: A plan was called defaulted after missed instalments.
    PLAN_DEFAULTED = "plan.defaulted"
    #: Every instalment of a plan was paid.
    PLAN_COMPLETED = "plan.completed"
    #: A plan was cancelled.
    PLAN_CANCELLED = "plan.cancelled"
    #: A plan was paused (hardship, a dispute).
    PLAN_PAUSED = "plan.paused"
    #: A paused plan runs again.
    PLAN_RESUMED = "plan.resumed"
    #: A patient disputed a bill.
    DISPUTE_OPENED = "dispute.opened"
    #: A dispute moved to a higher :class:`~carecollect.disputes.EscalationLevel`.
    DISPUTE_ESCALATED = "dispute.escalated"
    #: A dispute was resolved.
    DISPUTE_RESOLVED = "dispute.resolved"
    #: The patient withdrew a dispute.
    DISPUTE_WITHDRAWN = "dispute.withdrawn"
    #: Staff followed up an open dispute (a reminder that it waits for an answer).
    DISPUTE_FOLLOWED_UP = "dispute.followed_up"
    #: Staff reached the patient about an open dispute (a conversation or a written reply).
    DISPUTE_PATIENT_MET = "dispute.patient_met"
    #: An outreach step was planned.
    OUTREACH_PLANNED = "outreach.planned"
    #: An outreach step was sent.
    OUTREACH_SENT = "outreach.sent"
    #: An outreach step could not be sent or delivered.
    OUTREACH_FAILED = "outreach.failed"
    #: A planned outreach step was cancelled.
    OUTREACH_CANCELLED = "outreach.cancelled"
    #: The patient consented to be contacted on a contact point.
    CONSENT_GRANTED = "patient.consent_granted"
    #: The patient opted out of a channel.
    OPTED_OUT = "patient.opted_out"
    #: The patient asked that all collection contact stop.
    CEASE_REQUESTED = "patient.cease_requested"
    #: The patient consented to handing the claim to an agency (Germany: StGB § 203).
    HANDOFF_CONSENT_GIVEN = "patient.handoff_consent_given"
    #: The patient withdrew their consent to hand the claim to an agency.
    HANDOFF_CONSENT_WITHDRAWN = "patient.handoff_consent_withdrawn"
    #: A delivery report said a contact point cannot be reached (a hard bounce).
    CONTACT_POINT_UNDELIVERABLE = "patient.contact_point_undeliverable"
    #: An account was placed with a collection agency.
    PLACEMENT_PLACED = "placement.placed"
    #: The agency remitted money it collected.
    PLACEMENT_REMITTANCE = "placement.remittance"
    #: The creditor recalled an account from the agency.
    PLACEMENT_RECALLED = "placement.recalled"
    #: The agency returned an account (uncollectable, closed).
    PLACEMENT_RETURNED = "placement.returned"


def _freeze(details: Mapping[str, object] | tuple[tuple[str, object], ...]) -> tuple[tuple[str, str], ...]:
    items = details.items() if isinstance(details, Mapping) else details
    return tuple(sorted((str(k), str(v)) for k, v in items))


@attrs.frozen
class Event:
    """One thing that happened to one record.

    :param type: the :class:`EventType`.
    :param record_id: id of the record concerned (invoice, plan, patient...).
    :param at: when it happened (aware).
    :param details: identifiers and amounts only, as sorted string pairs.
    """

    type: EventType
    record_id: str
    at: dt.datetime = attrs.field(validator=lambda i, a, v: require_aware(v, "Event", "at"))
    details: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_freeze)

    def detail(self, key: str) -> str | None:
        """The detail stored under ``key``, or ``None``."""
        for k, v in self.details:
            if k == key:
                return v
        return None
