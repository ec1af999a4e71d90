"""The SQLite store passes the store conformance kit (:mod:`carecollect.testing.stores`)."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from carecollect.store import SQLiteStore, Store
from carecollect.testing.stores import (
    DeleteAudit,
    OpenStore,
    SecondHandle,
    StoreContract,
    SwapAudit,
    TamperAudit,
)


def _tamper(store: Store, seq: int, data: str) -> None:
    assert isinstance(store, SQLiteStore)
    with contextlib.closing(sqlite3.connect(store.path)) as db:  # past the store: its triggers dropped first
        db.execute("DROP TRIGGER IF EXISTS audit_no_update")
        db.execute("UPDATE audit_log SET data = ? WHERE seq = ?", (data, seq))
        db.commit()


def _delete(store: Store, seqs: Sequence[int]) -> None:
    assert isinstance(store, SQLiteStore)
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        db.executemany("DELETE FROM audit_log WHERE seq = ?", [(s,) for s in seqs])
        db.commit()


def _swap(store: Store, a: int, b: int) -> None:
    assert isinstance(store, SQLiteStore)
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        db.execute("DROP TRIGGER IF EXISTS audit_no_update")
        for old, new in ((a, -1), (b, a), (-1, b)):
            db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (new, old))
        db.commit()


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        paths = (tmp_path / f"store-{n}.db" for n in itertools.count())
        return lambda: SQLiteStore(next(paths))

    @pytest.fixture
    def second_handle(self) -> SecondHandle:
        def reopen(store: Store) -> Store:
            assert isinstance(store, SQLiteStore)
            return SQLiteStore(store.path)

        return reopen

    @pytest.fixture
    def tamper_audit(self) -> TamperAudit:
        return _tamper

    @pytest.fixture
    def delete_audit(self) -> DeleteAudit:
        return _delete

    @pytest.fixture
    def swap_audit(self) -> SwapAudit:
        return _swap
