"""The SQLite store on real files: migrations, round-trips, the run lock, the outbox, the audit chain."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.disputes import (
    Dispute,
    DisputeReason,
    DisputeStatus,
    EscalationLevel,
    Resolution,
    ResolutionKind,
)
from carecollect.errors import DuplicateEntry
from carecollect.invoices import BillKind, ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from carecollect.ledger import EntryKind, LedgerEntry, post_charge, post_payment
from carecollect.money import Money
from carecollect.outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from carecollect.patients import Account, ConfidentialWish, ContactPoint, Patient
from carecollect.payments import Payment, PaymentMethod
from carecollect.placements import AgencyPlacement, PlacementStatus, Remittance
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from carecollect.store import NotFound, OutboxStatus, RunLocked, SQLiteStore, Store, StoreError
from carecollect.store.sqlite import MIGRATIONS

OSLO = ZoneInfo("Europe/Oslo")
T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=OSLO)
UTC = dt.UTC


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "cc.db")
    yield s
    s.close()


def _creditor() -> Creditor:
    return Creditor(
        "CR-1",
        "Fjordklinikken AS",
        CreditorRole.PROVIDER,
        "NO",
        nonprofit=False,
        business_name_for_voicemail="Fjord",
    )


def _patient() -> Patient:
    return Patient(
        id="P-1",
        preferred_language="nb",
        time_zones=("Europe/Oslo", "America/New_York"),
        contact_points=(
            ContactPoint(
                Channel.SMS,
                "+4790000000",
                consent_at=T0,
                opted_out_at=T0 + dt.timedelta(days=3),
                time_zone="Europe/Oslo",
            ),
            ContactPoint(Channel.EMAIL, "kari@example.org", consent_at=T0, verified_at=T0),
            ContactPoint(Channel.LETTER, "Storgata 1, 0155 Oslo"),
        ),
        name="Kari Nordmann",
        country="NO",
        confidential=ConfidentialWish.ONLY_LISTED,
        confidential_channels=frozenset({Channel.LETTER, Channel.EMAIL}),
        cease_requested_at=T0 + dt.timedelta(days=10),
        date_of_birth=dt.date(1980, 5, 17),
    )


def _account() -> Account:
    return Account(
        "A-1",
        "P-1",
        "CR-1",
        "NOK",
        "no",
        guarantor_id="G-1",
        household_size=3,
        annual_income=Money("650000.00", "NOK"),
    )


def _invoice(iid: str = "INV-1") -> Invoice:
    return Invoice(
        id=iid,
        account_id="A-1",
        currency="NOK",
        lines=(
            InvoiceLine("2ad", "Konsultasjon", Money("450.00", "NOK"), dt.date(2026, 2, 27)),
            InvoiceLine("701a", "Blodprøve", Money("125.50", "NOK"), dt.date(2026, 2, 28)),
        ),
        issue_date=dt.date(2026, 3, 1),
        due_date=dt.date(2026, 3, 15),
        first_statement_date=dt.date(2026, 3, 1),
        insurance=Insurance(
            ClaimStatus.ADJUDICATED,
            Money("100.00", "NOK"),
            Money("25.50", "NOK"),
            dt.date(2026, 3, 1),
            "HELFO",
        ),
        status=InvoiceStatus.OPEN,
        kind=BillKind.PROFESSIONAL,
        estimate_id="EST-1",
    )


def _placement(collected_at: dt.datetime) -> AgencyPlacement:
    return AgencyPlacement(
        "PLC-1",
        "A-1",
        "credicare",
        Money("375.50", "NOK"),
        PlacementStatus.PLACED,
        T0,
        None,
        (Remittance("R-1", Money("100.00", "NOK"), collected_at, Money("10.00", "NOK")),),
        ("INV-1",),
    )


def _seed(store: SQLiteStore) -> None:
    store.put_creditor(_creditor())
    store.put_patient(_patient())
    store.put_account(_account())
    store.put_invoice(_invoice())


def test_a_new_file_gets_every_migration_recorded_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    with SQLiteStore(path) as s:
        assert s.schema_version() == MIGRATIONS[-1][0]
        assert [m[0] for m in s.applied_migrations()] == [m[0] for m in MIGRATIONS]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    # reopening applies nothing twice
    with SQLiteStore(path) as s:
        assert len(s.applied_migrations()) == len(MIGRATIONS)


def test_audit_records_from_before_the_chains_stay_in_the_main_chain_and_verify(tmp_path: Path) -> None:
    """Migration 13 gives every record written before it its place in the main chain."""
    from carecollect.store.base import GENESIS_HASH, audit_hash
    from carecollect.store.codec import partition_key

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as db:  # a file as carecollect left it before the chains
        db.create_function("carecollect_partition_key", 1, partition_key)  # migration 12 calls it
        db.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        for version, description, statements in MIGRATIONS:
            if version >= 13:
                break
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, T0.isoformat()))
        prev = GENESIS_HASH
        for seq in (1, 2, 3):
            digest = audit_hash(prev, seq, T0, "import", f"A-{seq}", {"rows": seq})
            db.execute(
                "INSERT INTO audit_log VALUES (?, ?, 'import', ?, ?, ?, ?)",
                (seq, T0.isoformat(), f"A-{seq}", f'{{"rows":{seq}}}', prev, digest),
            )
            prev = digest
        db.commit()
    with SQLiteStore(path) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert [(r.chain, r.chain_seq, r.seq) for r in store.audit_records()] == [
            ("", n, n) for n in (1, 2, 3)
        ]
        assert store.verify_audit().ok
        main = store.audit_append("import", "A-4", {"rows": 4}, at=T0)
        part = store.audit_append("decision", "A-5", {}, at=T0, chain="p0of2")
        assert (main.seq, main.chain_seq, main.prev_hash) == (4, 4, prev)
        assert (part.seq, part.chain_seq) == (5, 1)
        with pytest.raises(
            sqlite3.IntegrityError, match="append-only"
        ):  # the guard is back after the migration
            store._db.execute("UPDATE audit_log SET chain = 'p9of9' WHERE seq = 1")
        assert store.seal_audit(at=T0) is not None
        result = store.verify_audit()
        assert (result.ok, result.checked, result.chains, result.seals) == (True, 6, 2, 1)


def test_a_file_from_a_newer_carecollect_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (999, 'from the future', '2030-01-01T00:00:00+00:00')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 999 is newer"):
        SQLiteStore(path)


def test_store_satisfies_the_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


def test_foreign_keys_are_enforced(store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.put_account(_account())  # no patient, no creditor yet


def test_parties_and_invoices_round_trip_exactly(store: SQLiteStore) -> None:
    _seed(store)
    assert store.get_creditor("CR-1") == _creditor()
    assert store.get_patient("P-1") == _patient()
    assert store.get_account("A-1") == _account()
    got = store.get_invoice("INV-1")
    assert got == _invoice()
    assert got.patient_responsibility == Money("450.00", "NOK")
    # instants come back as the same instant, in UTC
    assert store.get_patient("P-1").contact_points[0].consent_at.utcoffset() == dt.timedelta(0)


def test_replacing_a_patient_replaces_their_contact_points(store: SQLiteStore) -> None:
    _seed(store)
    fewer = Patient(
        id="P-1",
        preferred_language="de",
        time_zones=("Europe/Berlin",),
        contact_points=(ContactPoint(Channel.EMAIL, "x@example.org"),),
    )
    store.put_patient(fewer)
    assert store.get_patient("P-1") == fewer


def test_get_unknown_record_raises_not_found_naming_the_id(store: SQLiteStore) -> None:
    with pytest.raises(NotFound, match="Invoice INV-404"):
        store.get_invoice("INV-404")
    with pytest.raises(KeyError):
        store.get_patient("P-404")


def test_ledger_is_append_only_and_idempotent(store: SQLiteStore) -> None:
    _seed(store)
    ledger = store.ledger("A-1")
    ledger, _ = post_charge(ledger, "INV-1", Money("575.50", "NOK"), at=T0)
    pay = Payment("PAY-1", "A-1", Money("200.00", "NOK"), PaymentMethod.MOBILE, T0 + dt.timedelta(days=2))
    ledger, _ = post_payment(ledger, pay)
    assert store.append_ledger("A-1", ledger.entries) == 2
    assert store.append_ledger("A-1", ledger.entries) == 0  # replay changes nothing
    assert store.ledger("A-1") == ledger
    assert store.ledger("A-1").balance == Money("375.50", "NOK")
    other = LedgerEntry("charge:INV-1", EntryKind.CHARGE, Money("1.00", "NOK"), T0, "INV-1", "INV-1")
    with pytest.raises(DuplicateEntry, match="charge:INV-1"):
        store.append_ledger("A-1", [other])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._db.execute("UPDATE ledger_entries SET amount_minor = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._db.execute("DELETE FROM ledger_entries")


def _invoice_sums(store: SQLiteStore) -> dict[str, tuple[int, int]]:
    rows = store._db.execute("SELECT id, ledger_charged, ledger_balance_minor FROM invoices ORDER BY id")
    return {r[0]: (r[1], r[2]) for r in rows}


def _ledger_sums(store: SQLiteStore) -> dict[str, tuple[int, int]]:
    """Each invoice's ledger summed from the entries themselves (what the triggers must keep)."""
    up = {EntryKind.CHARGE, EntryKind.REFUND, EntryKind.PAYMENT_REVERSED, EntryKind.INSURANCE_REVERSED}
    out: dict[str, tuple[int, int]] = {}
    for iid, aid in store._db.execute("SELECT id, account_id FROM invoices ORDER BY id").fetchall():
        mine = [e for e in store.ledger(aid).entries if e.invoice_id == iid]
        out[iid] = (
            int(any(e.kind is EntryKind.CHARGE for e in mine)),
            sum(e.amount.minor_units * (1 if e.kind in up else -1) for e in mine),
        )
    return out


def test_each_invoice_keeps_its_ledgers_sum_whatever_the_order_of_writes(store: SQLiteStore) -> None:
    """The plan read takes an invoice's balance from the sum the ledger's triggers keep on it."""
    _seed(store)
    ledger, _ = post_charge(store.ledger("A-1"), "INV-1", Money("575.50", "NOK"), at=T0)
    pay = Payment("PAY-1", "A-1", Money("200.00", "NOK"), PaymentMethod.MOBILE, T0 + dt.timedelta(days=2))
    ledger, _ = post_payment(ledger, pay)
    back = LedgerEntry(
        "reversed:PAY-1", EntryKind.PAYMENT_REVERSED, Money("50.00", "NOK"), T0, "INV-1", "PAY-1"
    )
    store.append_ledger("A-1", [*ledger.entries, back])
    assert _invoice_sums(store) == {"INV-1": (1, 57550 - 20000 + 5000)}
    # entries written before their invoice (a bulk load, a late import): the invoice sums them
    early = LedgerEntry("charge:INV-2", EntryKind.CHARGE, Money("10.00", "NOK"), T0, "INV-2", "INV-2")
    store.append_ledger("A-1", [early])
    store.put_invoice(_invoice("INV-2"))
    # an invoice moved to another account: only that account's entries count
    store.put_account(Account("A-2", "P-1", "CR-1", "NOK", "no"))
    store.append_ledger(
        "A-2", [LedgerEntry("charge:INV-3", EntryKind.CHARGE, Money("3.00", "NOK"), T0, "INV-3", "INV-3")]
    )
    store.put_invoice(_invoice("INV-3"))  # on A-1: A-2's charge does not count
    assert _invoice_sums(store)["INV-3"] == (0, 0)
    store.put_invoice(attrs.evolve(_invoice("INV-3"), account_id="A-2"))
    store.put_invoice(attrs.evolve(_invoice("INV-1"), status=InvoiceStatus.PAID))  # rewritten in place
    assert (
        _invoice_sums(store)
        == _ledger_sums(store)
        == {
            "INV-1": (1, 42550),
            "INV-2": (1, 1000),
            "INV-3": (1, 300),
        }
    )


def test_a_failed_unit_of_work_leaves_nothing(store: SQLiteStore) -> None:
    _seed(store)

    def unit_of_work() -> None:
        with store.transaction():
            store.put_invoice(_invoice("INV-2"))
            store.audit_append("import", "A-1", {"n": 1}, at=T0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        unit_of_work()
    with pytest.raises(NotFound):
        store.get_invoice("INV-2")
    assert list(store.audit_records()) == []


def test_a_nested_failure_rolls_back_only_its_savepoint(store: SQLiteStore) -> None:
    _seed(store)
    with store.transaction():
        store.put_invoice(_invoice("INV-2"))

        def inner() -> None:
            with store.transaction():
                store.put_invoice(_invoice("INV-3"))
                raise RuntimeError("inner")

        with pytest.raises(RuntimeError):
            inner()
    assert [i.id for i in store.invoices_for("A-1")] == ["INV-1", "INV-2"]


def test_plans_disputes_steps_attempts_placements_round_trip(store: SQLiteStore) -> None:
    _seed(store)
    sched = build_schedule(Money("450.00", "NOK"), 4, first_due=dt.date(2026, 4, 1))
    plan = PaymentPlan(
        "PL-1", "A-1", ("INV-1",), Money("450.00", "NOK"), sched, T0, PlanStatus.ACTIVE, "0", None
    )
    import attrs

    paid = attrs.evolve(sched[0], status=InstalmentStatus.PAID, paid=Money("112.50", "NOK"))
    plan = attrs.evolve(plan, instalments=(paid, *sched[1:]))
    store.put_plan(plan)
    assert store.get_plan("PL-1") == plan

    dispute = Dispute(
        "D-1",
        "A-1",
        "INV-1",
        DisputeReason.QUALITY_OF_SERVICE,
        T0,
        DisputeStatus.RESOLVED,
        EscalationLevel.OFFICE_MANAGER,
        Resolution(ResolutionKind.DISCOUNT, Money("50.00", "NOK"), "staff-7", "new routine", True),
        resolved_at=T0 + dt.timedelta(days=1),
        first_response_at=T0,
        met_patient_at=T0 + dt.timedelta(hours=2),
        follow_up_on=dt.date(2026, 3, 6),
        follow_up_done_at=T0 + dt.timedelta(days=4),
        satisfied=True,
        in_writing=True,
    )
    store.put_dispute(dispute)
    assert store.get_dispute("D-1") == dispute
    open_dispute = Dispute("D-2", "A-1", None, DisputeReason.NOT_MINE, T0)
    store.put_dispute(open_dispute)
    assert store.get_dispute("D-2") == open_dispute

    step = OutreachStep(
        "S-1",
        "A-1",
        "INV-1",
        OutreachPurpose.REMINDER,
        (Channel.EMAIL, Channel.LETTER),
        T0,
        status=OutreachStatus.SENT,
        sent_at=T0,
        deadline=dt.date(2026, 3, 30),
    )
    store.put_step(step)
    assert store.get_step("S-1") == step
    attempt = ContactAttempt(
        "AT-1", "S-1", "A-1", "INV-1", Channel.EMAIL, T0, AttemptOutcome.DELIVERED, "msg-9"
    )
    assert store.add_attempt(attempt) is True
    assert store.add_attempt(attempt) is False
    assert store.attempts_for("A-1") == (attempt,)

    placement = _placement(T0 + dt.timedelta(days=30))
    store.put_placement(placement)
    assert store.get_placement("PLC-1") == placement

    snap = store.account_snapshot("A-1")
    assert snap.patient == _patient()
    assert snap.plans == (plan,)
    assert {d.id for d in snap.disputes} == {"D-1", "D-2"}
    assert snap.steps == (step,)
    assert snap.attempts == (attempt,)
    assert snap.placements == (placement,)


def test_second_run_is_refused_until_the_lock_is_stale(store: SQLiteStore, tmp_path: Path) -> None:
    store.acquire_run_lock("cron", 101, now=T0, stale_after=dt.timedelta(minutes=10))
    with SQLiteStore(tmp_path / "cc.db") as other:
        with pytest.raises(RunLocked, match="another run is in progress") as info:
            other.acquire_run_lock("manual", 202, now=T0 + dt.timedelta(minutes=5))
        assert info.value.pid == 101
        store.heartbeat_run_lock("cron", 101, now=T0 + dt.timedelta(minutes=8))
        with pytest.raises(RunLocked):
            other.acquire_run_lock("manual", 202, now=T0 + dt.timedelta(minutes=17))
        # the holder died: 10 minutes after its last heartbeat the lock is stale
        lock = other.acquire_run_lock("manual", 202, now=T0 + dt.timedelta(minutes=19))
        assert lock.owner == "manual"
    with pytest.raises(RunLocked):
        store.heartbeat_run_lock("cron", 101, now=T0 + dt.timedelta(minutes=20))
    store.release_run_lock("cron", 101)  # not ours any more: nothing happens
    assert store.current_run_lock().pid == 202
    store.release_run_lock("manual", 202)
    assert store.current_run_lock() is None


def test_outbox_records_intent_once_and_retries_with_back_off(store: SQLiteStore) -> None:
    t = T0.astimezone(UTC)
    item = store.outbox_intend(
        "msg:S-1:email", "message", {"step": "S-1", "channel": "email"}, at=t, account_id="A-1"
    )
    assert item.status is OutboxStatus.INTENDED
    again = store.outbox_intend("msg:S-1:email", "message", {"channel": "email", "step": "S-1"}, at=t)
    assert again == item
    with pytest.raises(DuplicateEntry, match="msg:S-1:email"):
        store.outbox_intend("msg:S-1:email", "message", {"step": "S-2"}, at=t)
    assert [i.key for i in store.outbox_due(t)] == ["msg:S-1:email"]

    failed = store.outbox_failed("msg:S-1:email", at=t, error="timeout")
    assert (failed.status, failed.attempts, failed.next_retry_at) == (
        OutboxStatus.FAILED,
        1,
        t + dt.timedelta(minutes=5),
    )
    assert store.outbox_due(t + dt.timedelta(minutes=4)) == []
    failed = store.outbox_failed("msg:S-1:email", at=t + dt.timedelta(minutes=5), error="timeout")
    assert failed.attempts == 2 and failed.next_retry_at == t + dt.timedelta(minutes=15)
    assert len(store.outbox_due(t + dt.timedelta(minutes=15))) == 1

    done = store.outbox_done("msg:S-1:email", at=t + dt.timedelta(minutes=16), result={"ref": "m-1"})
    assert (done.status, done.attempts, done.result) == (OutboxStatus.DONE, 3, {"ref": "m-1"})
    assert store.outbox_due(t + dt.timedelta(days=9)) == []
    # a late failure report or a second done never undoes "done"
    assert (
        store.outbox_failed("msg:S-1:email", at=t + dt.timedelta(minutes=17), error="x").status
        is OutboxStatus.DONE
    )
    assert store.outbox_done("msg:S-1:email", at=t + dt.timedelta(minutes=18)).attempts == 3
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute(
            "INSERT INTO outbox (key, kind, payload, status, recorded_at) "
            "VALUES ('msg:S-1:email', 'message', '{}', 'intended', 'x')"
        )


def test_replayed_events_are_recognised(store: SQLiteStore) -> None:
    assert store.mark_processed("webhook:stripe", "evt_1", at=T0) is True
    assert store.mark_processed("webhook:stripe", "evt_1", at=T0) is False
    assert store.mark_processed("remittance:credicare", "evt_1", at=T0) is True
    assert store.was_processed("webhook:stripe", "evt_1")
    assert not store.was_processed("webhook:stripe", "evt_2")


def test_audit_chain_verifies_and_finds_the_first_edited_record(store: SQLiteStore, tmp_path: Path) -> None:
    for n in range(5):
        store.audit_append(
            "outreach.decision",
            f"A-{n}",
            {"send": n % 2 == 0, "reasons": ["quiet-hours"]},
            at=T0 + dt.timedelta(minutes=n),
        )
    records = list(store.audit_records())
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[1].prev_hash == records[0].hash
    assert store.verify_audit().ok and store.verify_audit().checked == 5
    assert [r.subject_id for r in store.audit_records(subject_id="A-3")] == ["A-3"]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._db.execute("UPDATE audit_log SET data = '{}' WHERE seq = 3")
    store.close()

    # someone with file access drops the trigger and edits record 3
    db = sqlite3.connect(tmp_path / "cc.db")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("""UPDATE audit_log SET data = '{"reasons":[],"send":true}' WHERE seq = 3""")
    db.commit()
    db.close()
    with SQLiteStore(tmp_path / "cc.db") as reopened:
        result = reopened.verify_audit()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert "hash" in (result.problem or "")


def test_audit_chain_detects_a_deleted_record(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as s:
        for n in range(3):
            s.audit_append("k", "A-1", {"n": n}, at=T0)
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    db.commit()
    db.close()
    with SQLiteStore(tmp_path / "a.db") as s:
        assert s.verify_audit().first_broken_seq == 2


def test_audit_records_filter_by_subject_and_kind(tmp_path: Path) -> None:
    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with SQLiteStore(tmp_path / "audit.db") as store:
        for n, (kind, subject) in enumerate(
            [
                ("decision.send", "A-1"),
                ("webhook.chargeback.opened", "A-1"),
                ("webhook.chargeback.opened", "A-2"),
                ("webhook.payment.failed", "A-1"),
                ("decision.hold", "A-1"),
            ]
        ):
            store.audit_append(kind, subject, {"n": n}, at=at)
        got = [
            r.data["n"]
            for r in store.audit_records(
                subject_id="A-1", kinds=["webhook.chargeback.opened", "webhook.payment.failed"]
            )
        ]
        assert got == [1, 3]
        assert [r.data["n"] for r in store.audit_records(kinds={"webhook.chargeback.opened"})] == [1, 2]
        assert list(store.audit_records(kinds=[])) == []
        assert [r.data["n"] for r in store.audit_records(subject_id="A-1")] == [0, 1, 3, 4]
        assert store.verify_audit().ok


def test_the_store_is_both_halves_of_the_protocol(tmp_path: Path) -> None:
    from carecollect.store import RecordStore, RunJournal, UnitOfWork

    with closing(SQLiteStore(tmp_path / "halves.sqlite")) as store:
        assert isinstance(store, RecordStore)
        assert isinstance(store, RunJournal)
        assert isinstance(store, UnitOfWork)
    # each half names only its own methods: a record method is not on the journal, nor the reverse
    assert "put_invoice" in dir(RecordStore) and "put_invoice" not in dir(RunJournal)
    assert "outbox_intend" in dir(RunJournal) and "outbox_intend" not in dir(RecordStore)
    assert "iter_plan_facts" in dir(RecordStore)


def _append_then_fail(store: SQLiteStore, kind: str, at: dt.datetime) -> None:
    """Append in a unit of work (a savepoint when nested) that then fails and is rolled back."""
    with store.transaction():
        store.audit_append(kind, "s", {}, at=at)
        raise RuntimeError(f"{kind}: rolled back")


def test_the_audit_chain_holds_across_units_of_work_and_undone_savepoints(tmp_path: Path) -> None:
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with closing(SQLiteStore(tmp_path / "audit.sqlite")) as store:
        store.audit_append("a", "s", {"n": 1}, at=at)  # its own unit of work
        with store.transaction():
            store.audit_append("b", "s", {"n": 2}, at=at)
            with pytest.raises(RuntimeError):
                _append_then_fail(store, "undone", at)
            store.audit_append("c", "s", {"n": 4}, at=at)
        with pytest.raises(RuntimeError):
            _append_then_fail(store, "undone too", at)
        # another connection appends between two units of work of this one
        with closing(SQLiteStore(tmp_path / "audit.sqlite")) as other:
            other.audit_append("d", "s", {"n": 6}, at=at)
        with store.transaction():
            store.audit_append("e", "s", {"n": 7}, at=at)
        assert [r.kind for r in store.audit_records()] == ["a", "b", "c", "d", "e"]
        assert [r.seq for r in store.audit_records()] == [1, 2, 3, 4, 5]
        assert store.verify_audit().ok


def test_every_table_an_account_is_read_from_moves_its_version_whoever_writes_it(tmp_path: Path) -> None:
    """Another program writing the file directly (no store method between): an insert, an update
    and a delete of any row the account's snapshot is read from (its contact points included,
    which the store itself only ever writes with their patient's row) moves the account's version
    and leaves another patient's account's alone."""
    import attrs

    from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication
    from carecollect.store.base import Mandate
    from carecollect.store.codec import ACCOUNT_TABLES

    path = tmp_path / "cc.db"
    store = SQLiteStore(path)
    _seed(store)
    store.put_patient(attrs.evolve(_patient(), id="P-2"))
    store.put_account(attrs.evolve(_account(), id="A-2", patient_id="P-2"))
    store.put_invoice(attrs.evolve(_invoice("INV-2"), account_id="A-2"))
    sched = build_schedule(Money("450.00", "NOK"), 2, first_due=dt.date(2026, 4, 1))
    store.put_plan(PaymentPlan("PL-1", "A-1", ("INV-1",), Money("450.00", "NOK"), sched, T0))
    store.put_dispute(Dispute("D-1", "A-1", None, DisputeReason.NOT_MINE, T0))
    store.put_step(OutreachStep("S-1", "A-1", "INV-1", OutreachPurpose.REMINDER, (Channel.EMAIL,), T0))
    store.add_attempt(
        ContactAttempt("AT-1", "S-1", "A-1", "INV-1", Channel.EMAIL, T0, AttemptOutcome.DELIVERED)
    )
    store.append_ledger(
        "A-1",
        [LedgerEntry("charge:INV-1", EntryKind.CHARGE, Money("575.50", "NOK"), T0, "INV-1", "INV-1", "kit")],
    )
    store.put_placement(_placement(T0))
    store.put_mandate(Mandate("PL-1", "A-1", "demo-gateway", "card", "tok_1", T0))
    store.put_application(
        AssistanceApplication("APP-1", "A-1", dt.date(2026, 3, 1), ApplicationStatus.RECEIVED)
    )
    whose = {"accounts": "id = 'A-1'", "patients": "id = 'P-1'", "contact_points": "patient_id = 'P-1'"}
    tables = [*whose, *ACCOUNT_TABLES]
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:  # foreign keys off: any order
        for table in tables:
            where = whose.get(table, "account_id = 'A-1'")
            rowid, *values = raw.execute(f"SELECT rowid, * FROM {table} WHERE {where} LIMIT 1").fetchone()
            if table == "ledger_entries":  # append-only: a new entry (its seq and key its own)
                values[0], values[2] = None, "again:" + values[2]
            column = next(r[1] for r in raw.execute(f"PRAGMA table_info({table})") if not r[5])
            changes = [
                ("update", f"UPDATE {table} SET {column} = {column} WHERE rowid = {rowid}"),
                ("delete", f"DELETE FROM {table} WHERE rowid = {rowid}"),
                ("insert", f"INSERT INTO {table} VALUES ({', '.join('?' * len(values))})"),
            ]
            for what, sql in changes:
                if table == "ledger_entries" and what != "insert":
                    continue  # append-only: the ledger's own triggers refuse the rest
                before = store.account_versions(["A-1", "A-2"])
                raw.execute(sql, values if what == "insert" else ())
                after = store.account_versions(["A-1", "A-2"])
                assert after["A-1"] != before["A-1"], f"{table}: an {what} left the account's version"
                assert after["A-2"] == before["A-2"], f"{table}: an {what} moved another account's version"
        before = store.account_versions(["A-1", "A-2"])
        raw.execute(
            "UPDATE disputes SET account_id = 'A-2' WHERE id = 'D-1'"
        )  # a row moved to another account
        after = store.account_versions(["A-1", "A-2"])
        assert after["A-1"] != before["A-1"] and after["A-2"] != before["A-2"]
    store.close()


def test_a_bulk_load_moves_the_versions_of_the_accounts_it_writes_to_and_keeps_the_triggers(
    tmp_path: Path,
) -> None:
    import attrs

    from carecollect.store import codec
    from carecollect.store.base import PortfolioRows

    with closing(SQLiteStore(tmp_path / "cc.db")) as store:
        _seed(store)
        store.put_patient(attrs.evolve(_patient(), id="P-2"))
        for aid in ("A-2", "A-3"):
            store.put_account(attrs.evolve(_account(), id=aid, patient_id="P-2"))
        triggers = store._db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()
        ids = ["A-1", "A-2", "A-3", "A-9"]
        before = store.account_versions(ids)
        invoice = attrs.evolve(_invoice("INV-7"), account_id="A-2")
        new_patient = attrs.evolve(_patient(), id="P-9")
        store.bulk_load(
            PortfolioRows(
                patients=[codec.patient_row(new_patient)],
                contact_points=codec.contact_point_rows(new_patient),
                accounts=[codec.account_row(attrs.evolve(_account(), id="A-9", patient_id="P-9"))],
                invoices=[codec.invoice_row(invoice)],
                invoice_lines=codec.invoice_line_rows(invoice),
            )
        )
        after = store.account_versions(ids)
        assert [after[i] != before[i] for i in ids] == [False, True, False, True]
        point = codec.contact_point_rows(attrs.evolve(_patient(), id="P-2"))[0]
        store.bulk_load(PortfolioRows(contact_points=[(point[0], 9, *point[2:])]))  # one more point of P-2
        again = store.account_versions(ids)
        assert [again[i] != after[i] for i in ids] == [False, True, True, False]  # both of P-2's accounts
        assert (
            store._db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            ).fetchall()
            == triggers
        ), "the load put the triggers back as they were"
        store.put_dispute(Dispute("D-1", "A-1", None, DisputeReason.NOT_MINE, T0))
        assert store.account_versions(["A-1"])["A-1"] != again["A-1"]  # and they work
