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

    INVOICE_ISSUED = "invoice.issued"
    INVOICE_STATEMENT_SENT = "invoice.first_statement"
    INVOICE_INSURANCE_UPDATED = "invoice.insurance_updated"
    INVOICE_PAID = "invoice.paid"
    INVOICE_CANCELLED = "invoice.cancelled"
    INVOICE_REOPENED = "invoice.reopened"
    LEDGER_POSTED = "ledger.posted"
    PLAN_ACTIVATED = "plan.activated"
    PLAN_INSTALMENT_PAID = "plan.instalment_paid"
    PLAN_INSTALMENT_MISSED = "plan.instalment_missed"
    #: The money of a paid instalment went back (a returned debit, a chargeback); it is due again.
    PLAN_INSTALMENT_REVERSED = "plan.instalment_reversed"
    PLAN_DEFAULTED = "plan.defaulted"
    PLAN_COMPLETED = "plan.completed"
    PLAN_CANCELLED = "plan.cancelled"
    PLAN_PAUSED = "plan.paused"
    PLAN_RESUMED = "plan.resumed"
    DISPUTE_OPENED = "dispute.opened"
    DISPUTE_ESCALATED = "dispute.escalated"
    DISPUTE_RESOLVED = "dispute.resolved"
    DISPUTE_WITHDRAWN = "dispute.withdrawn"
    DISPUTE_FOLLOWED_UP = "dispute.followed_up"
    #: Staff reached the patient about an open dispute (a conversation or a written reply).
    DISPUTE_PATIENT_MET = "dispute.patient_met"
    OUTREACH_PLANNED = "outreach.planned"
    OUTREACH_SENT = "outreach.sent"
    OUTREACH_FAILED = "outreach.failed"
    OUTREACH_CANCELLED = "outreach.cancelled"
    CONSENT_GRANTED = "patient.consent_granted"
    OPTED_OUT = "patient.opted_out"
    CEASE_REQUESTED = "patient.cease_requested"
    #: The patient consented to handing the claim to an agency (Germany: StGB § 203).
    HANDOFF_CONSENT_GIVEN = "patient.handoff_consent_given"
    HANDOFF_CONSENT_WITHDRAWN = "patient.handoff_consent_withdrawn"
    #: A delivery report said a contact point cannot be reached (a hard bounce).
    CONTACT_POINT_UNDELIVERABLE = "patient.contact_point_undeliverable"
    PLACEMENT_PLACED = "placement.placed"
    PLACEMENT_REMITTANCE = "placement.remittance"
    PLACEMENT_RECALLED = "placement.recalled"
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
