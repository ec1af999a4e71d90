"""Domain factories for plugin tests: valid objects with sensible defaults, any field overridable.

Every factory takes keyword overrides; defaults use :data:`NOW`
(2026-03-02 09:00 UTC, a Monday) and euro amounts.

>>> make_payment(amount=Money("12.50", "EUR")).amount
Money('12.50', 'EUR')
>>> payment_event().type.value
'ledger.posted'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ..channels import Channel
from ..disputes import Dispute, DisputeReason
from ..events import Event, EventType
from ..invoices import Invoice, InvoiceLine
from ..money import Money
from ..outreach import OutreachPurpose, OutreachStep
from ..patients import Account, ContactPoint, Patient
from ..payments import Payment, PaymentMethod, PaymentReversal, ReversalCause
from ..placements import AgencyPlacement
from ..plugins.agencies import Debtor, PlacedInvoice, PlacementRequest
from ..plugins.messaging import OutgoingMessage
from ..plugins.providers import Instrument

__all__ = [
    "NOW",
    "make_account",
    "make_dispute",
    "make_instrument",
    "make_invoice",
    "make_message",
    "make_outreach_step",
    "make_patient",
    "make_payment",
    "make_payment_reversal",
    "make_placement",
    "make_placement_request",
    "payment_event",
    "reversal_event",
]

#: The default instant: Monday 2 March 2026, 09:00 UTC.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _build(cls: type[Any], defaults: dict[str, Any], overrides: dict[str, Any]) -> Any:
    return cls(**{**defaults, **overrides})


def make_patient(**overrides: Any) -> Patient:
    """A patient with an SMS and an e-mail contact point, both consented."""
    defaults = {
        "id": "P-1",
        "preferred_language": "en",
        "time_zones": ("Europe/Berlin",),
        "contact_points": (
            ContactPoint(Channel.SMS, "+4915100000000", consent_at=NOW - dt.timedelta(days=30)),
            ContactPoint(Channel.EMAIL, "patient@example.org", consent_at=NOW - dt.timedelta(days=30)),
        ),
        "name": "Test Patient",
        "country": "DE",
    }
    result: Patient = _build(Patient, defaults, overrides)
    return result


def make_account(**overrides: Any) -> Account:
    """Account ``A-1`` of patient ``P-1`` owed to creditor ``C-1`` in EUR."""
    result: Account = _build(
        Account,
        {"id": "A-1", "patient_id": "P-1", "creditor_id": "C-1", "currency": "EUR", "jurisdiction": "de"},
        overrides,
    )
    return result


def make_invoice(**overrides: Any) -> Invoice:
    """Invoice ``INV-1`` of EUR 120.00, issued 2026-01-06, due 2026-02-05."""
    defaults = {
        "id": "INV-1",
        "account_id": "A-1",
        "currency": "EUR",
        "lines": (InvoiceLine("99213", "Office visit", Money("120.00", "EUR"), dt.date(2026, 1, 5)),),
        "issue_date": dt.date(2026, 1, 6),
        "due_date": dt.date(2026, 2, 5),
    }
    result: Invoice = _build(Invoice, defaults, overrides)
    return result


def make_payment(**overrides: Any) -> Payment:
    """Payment ``PAY-1`` of EUR 50.00 by card into ``A-1`` at :data:`NOW`."""
    defaults = {
        "id": "PAY-1",
        "account_id": "A-1",
        "amount": Money("50.00", "EUR"),
        "method": PaymentMethod.CARD,
        "received_at": NOW,
    }
    result: Payment = _build(Payment, defaults, overrides)
    return result


def payment_event(payment: Payment | None = None) -> Event:
    """The ledger event that records ``payment`` (default :func:`make_payment`)."""
    p = payment or make_payment()
    return Event(EventType.LEDGER_POSTED, p.account_id, p.received_at, {"payment": p.id, "amount": p.amount})


def make_payment_reversal(**overrides: Any) -> PaymentReversal:
    """All EUR 50.00 of payment ``PAY-1`` of ``A-1`` taken back by a chargeback, a day after :data:`NOW`."""
    defaults = {
        "id": "REV-gw-evt-1",
        "payment_id": "PAY-1",
        "account_id": "A-1",
        "amount": Money("50.00", "EUR"),
        "remaining": Money("0.00", "EUR"),
        "cause": ReversalCause.CHARGEBACK,
        "at": NOW + dt.timedelta(days=1),
        "provider": "gw",
        "provider_event_id": "evt-1",
    }
    result: PaymentReversal = _build(PaymentReversal, defaults, overrides)
    return result


def reversal_event(reversal: PaymentReversal | None = None) -> Event:
    """The ledger event that records ``reversal`` (default :func:`make_payment_reversal`)."""
    r = reversal or make_payment_reversal()
    details = {
        "kind": "payment_reversed",
        "amount": r.amount,
        "payment": r.payment_id,
        "reason": r.cause.value,
    }
    return Event(EventType.LEDGER_POSTED, r.account_id, r.at, details)


def make_dispute(**overrides: Any) -> Dispute:
    """An open billing-error dispute ``D-1`` on ``INV-1``."""
    defaults = {
        "id": "D-1",
        "account_id": "A-1",
        "invoice_id": "INV-1",
        "reason": next(iter(DisputeReason)),
        "opened_at": NOW,
    }
    result: Dispute = _build(Dispute, defaults, overrides)
    return result


def make_outreach_step(**overrides: Any) -> OutreachStep:
    """A reminder step ``S-1`` by e-mail, due at :data:`NOW`."""
    defaults = {
        "id": "S-1",
        "account_id": "A-1",
        "invoice_id": "INV-1",
        "purpose": OutreachPurpose.REMINDER,
        "channels": (Channel.EMAIL,),
        "due_at": NOW,
    }
    result: OutreachStep = _build(OutreachStep, defaults, overrides)
    return result


def make_placement(**overrides: Any) -> AgencyPlacement:
    """A pending placement ``PL-1`` of EUR 120.00 with agency ``demo-agency``."""
    defaults = {
        "id": "PL-1",
        "account_id": "A-1",
        "agency": "demo-agency",
        "amount_placed": Money("120.00", "EUR"),
        "invoice_ids": ("INV-1",),
    }
    result: AgencyPlacement = _build(AgencyPlacement, defaults, overrides)
    return result


def make_placement_request(**overrides: Any) -> PlacementRequest:
    """The placement request for ``PL-1``: one invoice, the guarantor's postal address."""
    invoice = make_invoice()
    defaults = {
        "placement_id": "PL-1",
        "account_id": "A-1",
        "creditor_id": "C-1",
        "debtor": Debtor(
            id="P-1", name="Test Patient", postal_address=("Teststr. 1", "10115 Berlin"), country="DE"
        ),
        "invoices": (PlacedInvoice.from_invoice(invoice, open_balance=invoice.total),),
        "jurisdiction": "de",
    }
    result: PlacementRequest = _build(PlacementRequest, defaults, overrides)
    return result


def make_message(**overrides: Any) -> OutgoingMessage:
    """An e-mail reminder ``MSG-1`` with an opt-out link."""
    defaults = {
        "id": "MSG-1",
        "channel": Channel.EMAIL,
        "recipient": "patient@example.org",
        "subject": "Your statement",
        "body": "Your balance of EUR 120.00 is due on 5 February 2026. Reply or call us if you need help.",
        "account_id": "A-1",
        "opt_out_url": "https://example.org/opt-out/A-1",
    }
    result: OutgoingMessage = _build(OutgoingMessage, defaults, overrides)
    return result


def make_instrument(**overrides: Any) -> Instrument:
    """A card token ``tok_visa`` ending 4242."""
    result: Instrument = _build(
        Instrument, {"method": PaymentMethod.CARD, "token": "tok_visa", "last4": "4242"}, overrides
    )
    return result


def evolve(obj: Any, **changes: Any) -> Any:
    """``attrs.evolve`` re-exported for tests that tweak a factory's result."""
    return attrs.evolve(obj, **changes)
