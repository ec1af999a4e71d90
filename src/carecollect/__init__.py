"""carecollect: patient-friendly medical billing and collections.

The names below are the stable public API of the core; everything else is
reached through its module (``carecollect.ledger``, ``carecollect.plans``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._moved import install as _install_moved_modules

_install_moved_modules()

if TYPE_CHECKING:  # the names below are imported on first use (import carecollect stays fast)
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
    from .invoices import BillKind, ClaimStatus, Estimate, Insurance, Invoice, InvoiceLine, InvoiceStatus
    from .ledger import EntryKind, Ledger, LedgerEntry
    from .money import Money
    from .outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
    from .patients import Account, ConfidentialWish, ContactPoint, Patient
    from .payments import Adjustment, AdjustmentKind, Payment, PaymentMethod, PaymentSource, Refund
    from .placements import AgencyPlacement, PlacementStatus, Remittance
    from .plans import Instalment, InstalmentStatus, PaymentPlan, PlanStatus
    from .plugins.hookspecs import hookimpl
    from .plugins.manager import make_plugin_manager

#: Public name -> the module that defines it (imported on first access, PEP 562).
_LAZY: dict[str, str] = {
    "Account": "patients",
    "Adjustment": "payments",
    "AdjustmentKind": "payments",
    "AgencyPlacement": "placements",
    "AttemptOutcome": "outreach",
    "BillKind": "invoices",
    "BusinessCalendar": "calendars",
    "CareCollectError": "errors",
    "Channel": "channels",
    "ClaimStatus": "invoices",
    "ConfidentialWish": "patients",
    "ConfigurationError": "errors",
    "ContactAttempt": "outreach",
    "ContactPoint": "patients",
    "Creditor": "creditors",
    "CreditorRole": "creditors",
    "CurrencyMismatch": "errors",
    "Dispute": "disputes",
    "DisputeReason": "disputes",
    "DisputeStatus": "disputes",
    "DuplicateEntry": "errors",
    "EntryKind": "ledger",
    "EscalationLevel": "disputes",
    "Estimate": "invoices",
    "Event": "events",
    "EventType": "events",
    "Instalment": "plans",
    "InstalmentStatus": "plans",
    "Insurance": "invoices",
    "InvalidMoney": "errors",
    "InvalidTransition": "errors",
    "Invoice": "invoices",
    "InvoiceLine": "invoices",
    "InvoiceStatus": "invoices",
    "Ledger": "ledger",
    "LedgerEntry": "ledger",
    "Money": "money",
    "NaiveDatetime": "errors",
    "OutreachPurpose": "outreach",
    "OutreachStatus": "outreach",
    "OutreachStep": "outreach",
    "Patient": "patients",
    "Payment": "payments",
    "PaymentMethod": "payments",
    "PaymentPlan": "plans",
    "PaymentSource": "payments",
    "PlacementStatus": "placements",
    "PlanStatus": "plans",
    "PluginError": "errors",
    "PolicyViolation": "errors",
    "Refund": "payments",
    "Remittance": "placements",
    "Resolution": "disputes",
    "ResolutionKind": "disputes",
    "ScheduleMismatch": "errors",
    "TimeZoneUnknown": "errors",
    "ValidationError": "errors",
    "hookimpl": "plugins.hookspecs",
    "make_plugin_manager": "plugins.manager",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carecollect' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
