"""carecollect: patient-friendly medical billing and collections.

The names below are the stable public API of the core; everything else is
reached through its module (``carecollect.ledger``, ``carecollect.plans``...).
"""

from __future__ import annotations

from .calendars import BusinessCalendar
from .channels import Channel
from .creditors import Creditor, CreditorRole
from .disputes import Dispute, DisputeReason, DisputeStatus, EscalationLevel, Resolution, ResolutionKind
from .errors import (
    CareCollectError,
    ConfigurationError,
    CurrencyMismatch,
    DuplicateEntry,
    InvalidMoney,
    InvalidTransition,
    NaiveDatetime,
    PluginError,
    PolicyViolation,
    ScheduleMismatch,
    TimeZoneUnknown,
    ValidationError,
)
from .events import Event, EventType
from .hookspecs import hookimpl
from .invoices import BillKind, ClaimStatus, Estimate, Insurance, Invoice, InvoiceLine, InvoiceStatus
from .ledger import EntryKind, Ledger, LedgerEntry
from .money import Money
from .outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from .patients import Account, ConfidentialWish, ContactPoint, Patient
from .payments import Adjustment, AdjustmentKind, Payment, PaymentMethod, PaymentSource, Refund
from .placements import AgencyPlacement, PlacementStatus, Remittance
from .plans import Instalment, InstalmentStatus, PaymentPlan, PlanStatus
from .plugin_manager import make_plugin_manager

__version__ = "0.1.0"

__all__ = [
    "Account",
    "Adjustment",
    "AdjustmentKind",
    "AgencyPlacement",
    "AttemptOutcome",
    "BillKind",
    "BusinessCalendar",
    "CareCollectError",
    "Channel",
    "ClaimStatus",
    "ConfidentialWish",
    "ConfigurationError",
    "ContactAttempt",
    "ContactPoint",
    "Creditor",
    "CreditorRole",
    "CurrencyMismatch",
    "Dispute",
    "DisputeReason",
    "DisputeStatus",
    "DuplicateEntry",
    "EntryKind",
    "EscalationLevel",
    "Estimate",
    "Event",
    "EventType",
    "Instalment",
    "InstalmentStatus",
    "Insurance",
    "InvalidMoney",
    "InvalidTransition",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "Ledger",
    "LedgerEntry",
    "Money",
    "NaiveDatetime",
    "OutreachPurpose",
    "OutreachStatus",
    "OutreachStep",
    "Patient",
    "Payment",
    "PaymentMethod",
    "PaymentPlan",
    "PaymentSource",
    "PlacementStatus",
    "PlanStatus",
    "PluginError",
    "PolicyViolation",
    "Refund",
    "Remittance",
    "Resolution",
    "ResolutionKind",
    "ScheduleMismatch",
    "TimeZoneUnknown",
    "ValidationError",
    "__version__",
    "hookimpl",
    "make_plugin_manager",
]
