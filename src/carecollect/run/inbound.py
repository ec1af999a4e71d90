"""What comes back to a run: inbound events and the report of their intake.

Every :class:`InboundEvent` has an id; :func:`~carecollect.run.event_intake.intake` takes each id once
and counts what it did in an :class:`IntakeReport`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

import attrs

__all__ = [
    "EventTaken",
    "InboundEvent",
    "InboundKind",
    "IntakeReport",
    "Taken",
]


class InboundKind(enum.Enum):
    """What an inbound event is."""

    #: A channel's report on a message it sent (delivered, bounced...); ``plugin`` is the
    #: channel plugin, which parses it.
    DELIVERY_REPORT = "delivery_report"
    #: A patient's reply on a channel (a ``STOP`` is an opt-out); ``plugin`` is the channel plugin.
    REPLY = "reply"
    #: A payment provider's webhook (``plugin`` is the payment-provider name).
    PAYMENT = "payment"
    #: A dispute opened, resolved or withdrawn in the creditor's own systems (portal, front desk,
    #: ticketing); ``plugin`` names that source and ``body`` is JSON (see :func:`~carecollect.run.event_intake.intake`).
    DISPUTE = "dispute"


@attrs.frozen
class InboundEvent:
    """Something that came back, as the plugin received it.

    :param kind: :class:`InboundKind`.
    :param plugin: the channel or payment-provider plugin name that parses it.
    :param body: the raw body.
    :param headers: the raw headers.
    :param received_at: when it was received over HTTP and its signature checked (an event from
        the store's inbox); the plugin checks the signature again as of this instant, so a
        webhook received yesterday is still taken today. ``None``: checked as of the run's ``now``.
    """

    kind: InboundKind
    plugin: str
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    received_at: dt.datetime | None = None


@attrs.frozen
class IntakeReport:
    """What intake did."""

    processed: int = 0
    duplicates: int = 0
    opt_outs: int = 0
    delivery_reports: int = 0
    remittances: int = 0
    failures: tuple[str, ...] = ()
    payments: int = 0
    mandates_revoked: int = 0
    disputes_opened: int = 0
    disputes_resolved: int = 0
    recalled: int = 0
    disputes_met: int = 0
    agency_updates: int = 0
    bounced: int = 0
    #: Posted payments taken back by a provider's webhook (a returned debit, a chargeback, a
    #: refund the provider made), in whole or in part.
    payments_reversed: int = 0


class Taken(enum.Enum):
    """What taking in one payment or dispute event did; the value names the intake's counter."""

    #: An event id already taken: nothing changed.
    DUPLICATE = "duplicates"
    #: A payment posted to the ledger (and to the plan's instalment it pays).
    POSTED = "payments"
    #: A posted payment taken back (a returned debit, a chargeback, a refund).
    REVERSED = "reversed"
    #: A mandate revoked: its plan's instalments are no longer charged.
    REVOKED = "revoked"
    #: A dispute opened.
    OPENED = "opened"
    #: A dispute handed to a higher level.
    ESCALATED = "escalated"
    #: A dispute resolved or withdrawn.
    RESOLVED = "resolved"
    #: Taken and recorded, with nothing to count (a payment already posted, a reversal kept
    #: until its payment arrives, a webhook kind the run does not act on).
    RECORDED = "recorded"
    #: Not taken: it matches nothing this store holds (:attr:`EventTaken.why` says what).
    UNMATCHED = "unmatched"


@attrs.frozen
class EventTaken:
    """What taking in one payment or dispute event did (:class:`Taken`), with what came with it."""

    taken: Taken
    #: Reversals of a just-posted payment that had arrived before it, taken back with it.
    reversed_too: int = 0
    #: Placements recalled from the agency because the dispute opened.
    recalled: int = 0
    #: Why an :attr:`~Taken.UNMATCHED` event was not taken (ids only).
    why: str = ""


#: Intakes that try an inbox event before it is given up (and reported): a month of daily runs.
INBOX_MAX_ATTEMPTS = 30
