"""The store kit fails stores that are wrong on purpose, each in the test meant to catch it.

A store that passes the kit (:mod:`carecollect.testing.stores`) should not pass by accident:
each faulty store below breaks one promise the daily run relies on, and the kit test for that
promise must fail on it (the genuine SQLite store passes every one, tests/test_store_kit_sqlite.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from carecollect.ledger import LedgerEntry
from carecollect.patients import Patient
from carecollect.store import SQLiteStore, Store
from carecollect.store.audit import AUDIT_ROW, verify_chains
from carecollect.store.base import (
    GENESIS_HASH,
    MAIN_CHAIN,
    AuditRecord,
    AuditVerification,
    OutboxItem,
    PlanFacts,
    RunLock,
)
from carecollect.testing.stores import StoreContract

from .test_store_kit_sqlite import _delete, _swap, _tamper


class NoBackOff(SQLiteStore):
    def outbox_failed(self, key: str, *, at: dt.datetime, error: str, **kw: Any) -> OutboxItem:
        kw["retry_at"] = at  # retried at once, however often it failed
        return super().outbox_failed(key, at=at, error=error, **kw)


class ForkedAudit(SQLiteStore):
    def audit_append(
        self, kind: str, subject_id: str, data: Mapping[str, Any], *, at: dt.datetime, chain: str = MAIN_CHAIN
    ) -> AuditRecord:
        record = super().audit_append(kind, subject_id, data, at=at, chain=chain)
        return attrs.evolve(record, prev_hash=GENESIS_HASH)  # says every record starts a chain


class OneChain(SQLiteStore):
    def audit_append(
        self, kind: str, subject_id: str, data: Mapping[str, Any], *, at: dt.datetime, chain: str = MAIN_CHAIN
    ) -> AuditRecord:
        return super().audit_append(kind, subject_id, data, at=at)  # every record in the main chain

    def audit_append_many(
        self, records: Any, *, at: dt.datetime, chain: str = MAIN_CHAIN
    ) -> list[AuditRecord]:
        return super().audit_append_many(records, at=at)


class SealsUnchecked(SQLiteStore):
    def verify_audit(self) -> AuditVerification:
        rows = self._db.execute(f"SELECT {AUDIT_ROW} FROM audit_log ORDER BY chain, chain_seq")
        return verify_chains([], rows)  # links only: a removed or rewritten sealed tail goes unseen


class SecondsOnly(SQLiteStore):
    def get_patient(self, patient_id: str) -> Patient:
        p = super().get_patient(patient_id)
        points = tuple(
            attrs.evolve(c, consent_at=c.consent_at.replace(microsecond=0) if c.consent_at else None)
            for c in p.contact_points
        )
        return attrs.evolve(p, contact_points=points)


class CommitsOnError(SQLiteStore):
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with super().transaction(), contextlib.suppress(RuntimeError):
            yield  # keeps what was written before the failure


class SharedLock(SQLiteStore):
    def acquire_run_lock(self, owner: str, pid: int, *, now: dt.datetime, **kw: Any) -> RunLock:
        self.release_run_lock(*((h.owner, h.pid) if (h := self.current_run_lock()) else (owner, pid)))
        return super().acquire_run_lock(owner, pid, now=now, **kw)


class ForgivingLedger(SQLiteStore):
    def append_ledger(self, account_id: str, entries: Any) -> int:
        known = {e.key for e in self.ledger(account_id).entries}
        fresh: list[LedgerEntry] = [
            e for e in entries if e.key not in known
        ]  # a changed entry is dropped silently
        return super().append_ledger(account_id, fresh)


class DriftingFacts(SQLiteStore):
    def iter_plan_facts(self, *, now: dt.datetime, batch_size: int = 2000) -> Iterator[PlanFacts]:
        for facts in super().iter_plan_facts(now=now, batch_size=batch_size):
            invoices = [(*r[:-1], r[-1] + 1) if n == 0 else r for n, r in enumerate(facts.invoices)]
            yield attrs.evolve(facts, invoices=invoices)  # one balance a minor unit off per batch


class OptOutUnversioned(SQLiteStore):
    def put_patient(self, patient: Patient) -> None:
        with self.transaction():
            accounts = [
                r[0] for r in self._db.execute("SELECT id FROM accounts WHERE patient_id = ?", (patient.id,))
            ]
            before = self.account_versions(accounts)
            super().put_patient(patient)
            self._db.executemany(  # a patient's contact points are not part of the account's version
                "UPDATE account_versions SET version = ? WHERE account_id = ?",
                [(v, a) for a, v in before.items()],
            )


class OneVersion(SQLiteStore):
    def account_versions(self, account_ids: Sequence[str]) -> dict[str, int]:
        (total,) = self._db.execute("SELECT COALESCE(SUM(version), 0) FROM account_versions").fetchone()
        return dict.fromkeys(account_ids, total)  # any write moves every account's version


FAULTS: list[tuple[type[SQLiteStore], str]] = [
    (NoBackOff, "test_a_failure_is_retried_with_back_off_until_done"),
    (ForkedAudit, "test_the_audit_chain_verifies_and_finds_an_edited_record"),
    (OneChain, "test_each_chain_links_only_its_own_records"),
    (SealsUnchecked, "test_a_sealed_tail_removed_or_rewritten_is_found_against_the_seal"),
    (SecondsOnly, "test_parties_and_invoices_round_trip_to_the_minor_unit"),
    (CommitsOnError, "test_a_failed_unit_of_work_leaves_nothing"),
    (SharedLock, "test_the_run_lock_is_exclusive_until_stale"),
    (ForgivingLedger, "test_ledger_entries_are_idempotent_by_key"),
    (DriftingFacts, "test_plan_facts_give_the_rows_of_the_records_they_aggregate"),
    (OptOutUnversioned, "test_an_account_version_changes_with_every_write_to_its_snapshot_and_only_then"),
    (OneVersion, "test_an_account_version_changes_with_every_write_to_its_snapshot_and_only_then"),
]


def _call(test: Callable[..., None], store: Store, cls: type[SQLiteStore]) -> None:
    names = test.__code__.co_varnames[1 : test.__code__.co_argcount]
    fixtures: dict[str, Any] = {
        "store": store,
        "second_handle": lambda s: cls(s.path),
        "tamper_audit": _tamper,
        "delete_audit": _delete,
        "swap_audit": _swap,
        "currency": "NOK",
    }
    test(**{n: fixtures[n] for n in names})


@pytest.mark.parametrize(("cls", "name"), FAULTS, ids=[c.__name__ for c, _ in FAULTS])
def test_the_kit_fails_a_store_that_breaks_the_promise(
    cls: type[SQLiteStore], name: str, tmp_path: Path
) -> None:
    paths = (tmp_path / f"s{n}.db" for n in itertools.count())
    kit = StoreContract()
    with (
        contextlib.closing(cls(next(paths))) as faulty,
        pytest.raises((AssertionError, pytest.fail.Exception)),
    ):
        _call(getattr(kit, name), faulty, cls)
    # the same kit test passes on the genuine store (so it is the fault that failed it)
    with contextlib.closing(SQLiteStore(next(paths))) as genuine:
        _call(getattr(kit, name), genuine, SQLiteStore)
