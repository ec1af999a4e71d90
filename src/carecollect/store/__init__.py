"""Where carecollect keeps its records between runs.

:class:`~carecollect.store.base.Store` is the interface the daily run depends
on; :class:`~carecollect.store.sqlite.SQLiteStore` is the embedded default.
"""

from __future__ import annotations

from .base import (
    AccountSnapshot,
    AuditRecord,
    AuditVerification,
    InvoiceRow,
    Mandate,
    NotFound,
    OutboxItem,
    OutboxStatus,
    PortfolioRows,
    ProviderPayment,
    RunLock,
    RunLocked,
    Store,
    StoreError,
    next_retry_at,
)
from .sqlite import SQLiteStore

__all__ = [
    "AccountSnapshot",
    "AuditRecord",
    "AuditVerification",
    "InvoiceRow",
    "Mandate",
    "NotFound",
    "OutboxItem",
    "OutboxStatus",
    "PortfolioRows",
    "ProviderPayment",
    "RunLock",
    "RunLocked",
    "SQLiteStore",
    "Store",
    "StoreError",
    "next_retry_at",
]
