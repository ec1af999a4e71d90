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
    "InboundEvent",
    "InboundKind",
    "IntakeReport",
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


#: Intakes that try an inbox event before it is given up (and reported): a month of daily runs.
INBOX_MAX_ATTEMPTS = 30
