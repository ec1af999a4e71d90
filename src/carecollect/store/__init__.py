"""Where carecollect keeps its records between runs.

:class:`~carecollect.store.base.Store` is the interface the daily run depends
on, in two halves sharing one unit of work: the records
(:class:`~carecollect.store.base.RecordStore`) and the run's journal of its own
work (:class:`~carecollect.store.base.RunJournal`: outbox, lock, audit, inbox).
:class:`~carecollect.store.sqlite.SQLiteStore` is the embedded default.
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
    RecordStore,
    RunJournal,
    RunLock,
    RunLocked,
    Store,
    StoreError,
    UnitOfWork,
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
    "RecordStore",
    "RunJournal",
    "RunLock",
    "RunLocked",
    "SQLiteStore",
    "Store",
    "StoreError",
    "UnitOfWork",
    "next_retry_at",
]
