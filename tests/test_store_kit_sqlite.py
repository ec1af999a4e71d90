"""The SQLite store passes the store conformance kit (:mod:`carecollect.testing.stores`)."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from pathlib import Path

import pytest

from carecollect.store import SQLiteStore, Store
from carecollect.testing.stores import OpenStore, SecondHandle, StoreContract, TamperAudit


def _tamper(store: Store, seq: int, data: str) -> None:
    assert isinstance(store, SQLiteStore)
    with contextlib.closing(sqlite3.connect(store.path)) as db:  # past the store: its triggers dropped first
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("UPDATE audit_log SET data = ? WHERE seq = ?", (data, seq))
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
