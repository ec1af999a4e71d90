"""The store conformance kit: every behaviour the daily run relies on, for any :class:`~carecollect.store.base.Store`.

A store implementation's tests subclass :class:`StoreContract` and override five fixtures::

    import contextlib, sqlite3
    from carecollect.store import SQLiteStore
    from carecollect.testing.stores import StoreContract

    class TestSQLiteStore(StoreContract):
        @pytest.fixture
        def open_store(self, tmp_path):
            paths = iter(tmp_path / f"s{n}.db" for n in itertools.count())
            return lambda: SQLiteStore(next(paths))        # a new, empty database per call

        @pytest.fixture
        def second_handle(self):
            return lambda store: SQLiteStore(store.path)   # the same database, as another process opens it

        @pytest.fixture
        def tamper_audit(self):
            return my_raw_update_of_one_audit_record        # (store, seq, data_json) past the store's guards

        @pytest.fixture
        def delete_audit(self):
            return my_raw_delete_of_audit_records           # (store, [seq, ...]) past the store's guards

        @pytest.fixture
        def swap_audit(self):
            return my_raw_swap_of_two_audit_records         # (store, seq_a, seq_b): their places in the log

What the kit holds a store to: records round-trip exactly (money to the minor unit in
currencies of 0, 2 and 3 decimals and beyond 2**53, instants to the microsecond whatever zone
they were given in, the patient's zone names); a unit of work is all or nothing, a nested one a
savepoint; ledger entries are idempotent by key; the outbox records an intent once and retries a
failure with back-off until it is done or given up; the run lock is exclusive, kept alive by
heartbeats and taken over once stale; the inbox and the hook-event queue keep what they are
given until it is taken; the audit log keeps one chain per partition beside the main one, each
linking only its own records, a seal lists every chain's head once per change, and verification
names the chain and record where a record was edited, a sealed tail removed or rewritten, a
chain removed, or records reordered behind the store's back; the plan-row facts (``iter_plan_facts``, ``account_snapshots``, when the store has them)
give the same plan rows as the records they aggregate; and several handles writing at once
(threads standing in for processes) lose nothing, fork no chain and share one run lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from ..channels import Channel
from ..contact_centre.records import ContactChannel, ContactRecord, Direction, Topic
from ..creditors import Creditor, CreditorRole
from ..disputes import Dispute, DisputeReason, DisputeStatus, EscalationLevel, Resolution, ResolutionKind
from ..errors import DuplicateEntry, ValidationError
from ..invoices import BillKind, ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from ..ledger import EntryKind, LedgerEntry
from ..money import Money
from ..outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from ..patients import Account, ConfidentialWish, ContactPoint, Patient
from ..placements import AgencyPlacement, PlacementStatus, Remittance
from ..plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from ..relief.assistance import ApplicationStatus, AssistanceApplication
from ..remittance import CLAIM_RECORD
from ..store.base import (
    GENESIS_HASH,
    MAIN_CHAIN,
    SEAL_KIND,
    AccountSnapshot,
    AuditHead,
    AuditRecord,
    ContactRequest,
    InboxItem,
    Mandate,
    NotFound,
    OutboxStatus,
    PlanFacts,
    ProviderPayment,
    RunLocked,
    Store,
    next_retry_at,
)

__all__ = ["DeleteAudit", "OpenStore", "SecondHandle", "StoreContract", "SwapAudit", "TamperAudit"]

#: ``() -> Store``: a new store on a new, empty database each call.
OpenStore = Callable[[], Store]
#: ``(store) -> Store``: another handle on the same database (as a second process opens it).
SecondHandle = Callable[[Store], Store]
#: ``(store, seq, data_json)``: overwrite the data of audit record ``seq`` past the store's guards.
TamperAudit = Callable[[Store, int, str], None]
#: ``(store, seqs)``: delete the audit records ``seqs`` past the store's guards.
DeleteAudit = Callable[[Store, Sequence[int]], None]
#: ``(store, seq_a, seq_b)``: exchange two audit records' places in the log (their ``seq``)
#: past the store's guards, every other column as it was.
SwapAudit = Callable[[Store, int, int], None]

OSLO = ZoneInfo("Europe/Oslo")
NEW_YORK = ZoneInfo("America/New_York")
#: An instant in Oslo with microseconds (and one whose fraction ends in zeros, which some
#: databases print shortened).
T0 = dt.datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=OSLO)
T_HALF = dt.datetime(2026, 3, 2, 23, 59, 59, 500000, tzinfo=NEW_YORK)
#: The instant the partition tests read plan facts for.
_FACTS_AT = dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)
WALL = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def _creditor(cid: str = "CR-1") -> Creditor:
    return Creditor(
        cid,
        "Fjordklinikken AS",
        CreditorRole.PROVIDER,
        "NO",
        nonprofit=True,
        business_name_for_voicemail="Fjord",
    )


def _patient(pid: str = "P-1") -> Patient:
    return Patient(
        id=pid,
        preferred_language="nb",
        time_zones=("Europe/Oslo", "America/New_York"),
        contact_points=(
            ContactPoint(
                Channel.SMS,
                "+4790000000",
                consent_at=T0,
                opted_out_at=T_HALF,
                time_zone="Asia/Tokyo",
            ),
            ContactPoint(Channel.EMAIL, "kari@example.org", consent_at=T0, verified_at=T_HALF),
            ContactPoint(Channel.LETTER, "Storgata 1, 0155 Oslo"),
        ),
        name="Kari Nordmann",
        country="NO",
        confidential=ConfidentialWish.ONLY_LISTED,
        confidential_channels=frozenset({Channel.LETTER, Channel.EMAIL}),
        cease_requested_at=T0 + dt.timedelta(days=10),
        date_of_birth=dt.date(1980, 5, 17),
    )


def _account(aid: str = "A-1", pid: str = "P-1", currency: str = "NOK") -> Account:
    income = {
        "NOK": Money("650000.05", "NOK"),
        "JPY": Money("7000001", "JPY"),
        "KWD": Money("12000.125", "KWD"),
    }
    return Account(
        aid, pid, "CR-1", currency, "no", guarantor_id="G-1", household_size=3, annual_income=income[currency]
    )


def _invoice(iid: str = "INV-1", aid: str = "A-1", currency: str = "NOK") -> Invoice:
    amounts = {"NOK": ("450.05", "125.99"), "JPY": ("12345", "1"), "KWD": ("10.125", "0.001")}[currency]
    return Invoice(
        id=iid,
        account_id=aid,
        currency=currency,
        lines=(  # type: ignore[arg-type]
            InvoiceLine("2ad", "Konsultasjon", Money(amounts[0], currency), dt.date(2026, 2, 27)),
            InvoiceLine("701a", "Blodprøve ø", Money(amounts[1], currency), dt.date(2026, 2, 28)),
        ),
        issue_date=dt.date(2026, 3, 1),
        due_date=dt.date(2026, 3, 15),
        first_statement_date=dt.date(2026, 3, 1),
        insurance=Insurance(
            ClaimStatus.ADJUDICATED,
            Money(amounts[1], currency),
            Money("0", currency),
            dt.date(2026, 3, 1),
            "HELFO",
        ),
        status=InvoiceStatus.OPEN,
        kind=BillKind.PROFESSIONAL,
        estimate_id="EST-1",
    )


def _seed(store: Store, aid: str = "A-1", currency: str = "NOK") -> None:
    store.put_creditor(_creditor())
    store.put_patient(_patient())
    store.put_account(_account(aid, currency=currency))
    store.put_invoice(_invoice(f"INV-{aid}", aid, currency))


def _placement(remittances: tuple[Remittance, ...] = ()) -> AgencyPlacement:
    return AgencyPlacement(
        "PLC-1",
        "A-1",
        "credicare",
        Money("375.50", "NOK"),
        PlacementStatus.PLACED,
        T0,
        None,
        remittances,
        ("INV-A-1",),
    )


def _entry(
    key: str, amount: str = "100.00", kind: EntryKind = EntryKind.PATIENT_PAYMENT, at: dt.datetime = T0
) -> LedgerEntry:
    return LedgerEntry(key, kind, Money(amount, "NOK"), at, "INV-A-1", "PAY-" + key, "kit")


class StoreContract:
    """The conformance tests for a store: override ``open_store``, ``second_handle``, ``tamper_audit``,
    ``delete_audit`` and ``swap_audit``."""

    # -- fixtures the store under test overrides --------------------------------------------
    @pytest.fixture
    def open_store(self) -> OpenStore:
        """``() -> Store``: a new store on an empty database per call (override)."""
        pytest.fail(
            "override the 'open_store' fixture: a callable returning a new store on an empty database"
        )

    @pytest.fixture
    def second_handle(self) -> SecondHandle:
        """``(store) -> Store``: another handle on the same database (override)."""
        pytest.fail("override the 'second_handle' fixture: a callable opening the same database again")

    @pytest.fixture
    def tamper_audit(self) -> TamperAudit:
        """``(store, seq, data_json)``: edit one audit record past the store's guards (override)."""
        pytest.fail("override the 'tamper_audit' fixture: it edits an audit record behind the store's back")

    @pytest.fixture
    def delete_audit(self) -> DeleteAudit:
        """``(store, seqs)``: delete audit records past the store's guards (override)."""
        pytest.fail("override the 'delete_audit' fixture: it deletes audit records behind the store's back")

    @pytest.fixture
    def swap_audit(self) -> SwapAudit:
        """``(store, seq_a, seq_b)``: exchange two audit records' places in the log (override)."""
        pytest.fail(
            "override the 'swap_audit' fixture: it swaps two audit records' seq behind the store's back"
        )

    @pytest.fixture
    def store(self, open_store: OpenStore) -> Iterator[Store]:
        """A fresh store, closed after the test."""
        s = open_store()
        try:
            yield s
        finally:
            s.close()

    # -- the protocol -----------------------------------------------------------------------
    def test_it_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    # -- records round-trip exactly ------------------------------------------------------------
    @pytest.mark.parametrize("currency", ["NOK", "JPY", "KWD"])
    def test_parties_and_invoices_round_trip_to_the_minor_unit(self, store: Store, currency: str) -> None:
        _seed(store, currency=currency)
        assert store.get_creditor("CR-1") == _creditor()
        assert store.creditors() == [_creditor()]
        got = store.get_patient("P-1")
        assert got == _patient()
        assert got.time_zones == ("Europe/Oslo", "America/New_York")
        assert [p.time_zone for p in got.contact_points] == ["Asia/Tokyo", None, None]
        assert next(p.consent_at for p in got.contact_points) == T0  # the same instant, to the microsecond
        assert got.contact_points[0].opted_out_at == T_HALF
        assert store.get_account("A-1") == _account(currency=currency)
        assert store.get_invoice("INV-A-1") == _invoice("INV-A-1", currency=currency)
        assert store.invoices_for("A-1") == (_invoice("INV-A-1", currency=currency),)
        assert [p.id for p in store.patients()] == ["P-1"]
        assert store.patients_with_address("kari@example.org") == [("P-1", Channel.EMAIL)]

    def test_large_amounts_keep_every_minor_unit(self, store: Store) -> None:
        _seed(store)
        huge = Money.from_minor(2**53 + 1, "NOK")  # past what a float holds exactly
        entry = LedgerEntry("big", EntryKind.CHARGE, huge, T0, "INV-A-1", "X", "kit")
        assert store.append_ledger("A-1", [entry]) == 1
        assert store.ledger("A-1").entries == (entry,)
        assert store.ledger("A-1").entries[0].amount.minor_units == 2**53 + 1

    def test_every_other_record_round_trips(self, store: Store) -> None:
        _seed(store)
        sched = build_schedule(Money("450.05", "NOK"), 4, first_due=dt.date(2026, 4, 1))
        paid = attrs.evolve(sched[0], status=InstalmentStatus.PAID, paid=Money("112.52", "NOK"))
        plan = PaymentPlan(
            "PL-1",
            "A-1",
            ("INV-A-1",),
            Money("450.05", "NOK"),
            (paid, *sched[1:]),
            T0,
            PlanStatus.ACTIVE,
            "1.25",
        )
        store.put_plan(plan)
        assert store.get_plan("PL-1") == plan
        dispute = Dispute(
            "D-1",
            "A-1",
            "INV-A-1",
            DisputeReason.QUALITY_OF_SERVICE,
            T0,
            DisputeStatus.RESOLVED,
            EscalationLevel.OFFICE_MANAGER,
            Resolution(ResolutionKind.DISCOUNT, Money("50.01", "NOK"), "staff-7", "new routine", True),
            resolved_at=T_HALF,
            first_response_at=T0,
            met_patient_at=T0 + dt.timedelta(hours=2),
            follow_up_on=dt.date(2026, 3, 6),
            follow_up_done_at=T0 + dt.timedelta(days=4),
            satisfied=False,
            in_writing=True,
        )
        store.put_dispute(dispute)
        assert store.get_dispute("D-1") == dispute
        step = OutreachStep(
            "S-1",
            "A-1",
            "INV-A-1",
            OutreachPurpose.REMINDER,
            (Channel.EMAIL, Channel.LETTER),  # type: ignore[arg-type]
            T0,
            "reminder.v1",
            status=OutreachStatus.SENT,
            sent_at=T_HALF,
            deadline=dt.date(2026, 3, 30),
        )
        store.put_step(step)
        assert store.get_step("S-1") == step
        attempt = ContactAttempt(
            "AT-1", "S-1", "A-1", "INV-A-1", Channel.EMAIL, T_HALF, AttemptOutcome.DELIVERED, "msg-9"
        )
        assert store.add_attempt(attempt) is True
        assert store.add_attempt(attempt) is False
        assert store.attempts_for("A-1") == (attempt,)
        assert store.attempt_by_provider_message_id("msg-9") == attempt
        assert store.attempt_by_provider_message_id("nope") is None
        placement = _placement((Remittance("R-1", Money("100.01", "NOK"), T_HALF, Money("10.00", "NOK")),))
        store.put_placement(placement)
        assert store.get_placement("PLC-1") == placement
        mandate = Mandate("PL-1", "A-1", "demo-gateway", "card", "tok_1", T0)
        store.put_mandate(mandate)
        revoked = store.revoke_mandate("demo-gateway", "tok_1", at=T_HALF)
        assert revoked == attrs.evolve(mandate, revoked_at=T_HALF)
        assert store.revoke_mandate("demo-gateway", "tok_1", at=T_HALF + dt.timedelta(days=1)) == revoked
        assert store.revoke_mandate("demo-gateway", "unknown", at=T0) is None
        application = AssistanceApplication("APP-1", "A-1", dt.date(2026, 3, 1), ApplicationStatus.RECEIVED)
        store.put_application(application)
        with pytest.raises(NotFound):
            store.put_application(attrs.evolve(application, id="APP-2", account_id="A-404"))
        link = ProviderPayment("stripe", "pi_1", "A-1", "PAY-1", "PL-1", 2)
        store.link_provider_payment(link)
        store.link_provider_payment(attrs.evolve(link, payment_id="PAY-OTHER"))  # the first link stands
        assert store.provider_payment("stripe", "pi_1") == link
        assert store.provider_payment("stripe", "pi_2") is None
        request = ContactRequest(
            ContactRecord(
                "CT-1",
                "A-1",
                ContactChannel.EMAIL,
                Direction.INBOUND,
                Topic.HARDSHIP,
                T0,
                invoice_id="INV-A-1",
            ),
            T0 + dt.timedelta(days=2),
            "email",
            "Ring meg – takk",
        )
        store.put_contact_request(request)
        assert store.contact_requests("A-1") == [request]
        assert store.contact_requests() == [request]

        snap = store.account_snapshot("A-1")
        assert snap.account == _account()
        assert snap.patient == _patient()
        assert snap.invoices == (_invoice("INV-A-1"),)
        assert snap.plans == (plan,)
        assert snap.disputes == (dispute,)
        assert snap.steps == (step,)
        assert snap.attempts == (attempt,)
        assert snap.placements == (placement,)
        assert snap.mandates == (revoked,)
        assert snap.applications == (application,)
        counts = store.counts()
        assert (counts["accounts"], counts["invoices"], counts["plans"], counts["contact_attempts"]) == (
            1,
            1,
            1,
            1,
        )

    def test_a_repeated_address_keeps_its_bounce_mark(self, store: Store) -> None:
        _seed(store)
        bounced = _patient()
        points = list(bounced.contact_points)
        points[1] = attrs.evolve(points[1], undeliverable_at=T_HALF)
        store.put_patient(attrs.evolve(bounced, contact_points=tuple(points)))
        store.put_patient(_patient())  # an import repeats the address without the mark
        assert store.get_patient("P-1").contact_points[1].undeliverable_at == T_HALF
        moved = list(_patient().contact_points)
        moved[1] = attrs.evolve(moved[1], address="new@example.org")
        store.put_patient(attrs.evolve(_patient(), contact_points=tuple(moved)))
        assert store.get_patient("P-1").contact_points[1].undeliverable_at is None

    def test_unknown_ids_raise_not_found_naming_the_record(self, store: Store) -> None:
        for call, record in (
            (lambda: store.get_creditor("X"), "Creditor"),
            (lambda: store.get_patient("X"), "Patient"),
            (lambda: store.get_account("X"), "Account"),
            (lambda: store.get_invoice("X"), "Invoice"),
            (lambda: store.get_plan("X"), "PaymentPlan"),
            (lambda: store.get_dispute("X"), "Dispute"),
            (lambda: store.get_step("X"), "OutreachStep"),
            (lambda: store.get_placement("X"), "AgencyPlacement"),
            (lambda: store.outbox_get("X"), "OutboxItem"),
            (lambda: store.account_snapshot("X"), "Account"),
        ):
            with pytest.raises(NotFound) as info:
                call()
            assert (info.value.record, info.value.ident) == (record, "X")

    # -- units of work -----------------------------------------------------------------------
    def test_a_failed_unit_of_work_leaves_nothing(self, store: Store) -> None:
        _seed(store)

        def unit() -> None:
            with store.transaction():
                store.append_ledger("A-1", [_entry("k1")])
                store.put_dispute(Dispute("D-9", "A-1", None, DisputeReason.NOT_MINE, T0))
                store.outbox_intend("o-1", "message", {"n": 1}, at=T0)
                store.audit_append("kit", "A-1", {"n": 1}, at=T0)
                store.mark_processed("stripe", "evt", at=T0)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            unit()
        assert store.ledger("A-1").entries == ()
        with pytest.raises(NotFound):
            store.get_dispute("D-9")
        with pytest.raises(NotFound):
            store.outbox_get("o-1")
        assert list(store.audit_records()) == []
        assert store.was_processed("stripe", "evt") is False

    def test_a_nested_failure_undoes_only_its_own_writes(self, store: Store) -> None:
        _seed(store)

        def inner() -> None:
            with store.transaction():
                store.append_ledger("A-1", [_entry("inner")])
                raise RuntimeError("inner")

        with store.transaction():
            store.append_ledger("A-1", [_entry("outer")])
            with pytest.raises(RuntimeError, match="inner"):
                inner()
            store.append_ledger("A-1", [_entry("after")])
        assert [e.key for e in store.ledger("A-1").entries] == ["outer", "after"]

    def test_a_write_is_seen_by_another_handle_only_after_commit(
        self, store: Store, second_handle: SecondHandle
    ) -> None:
        _seed(store)
        with contextlib.closing(second_handle(store)) as other:
            with store.transaction():
                store.append_ledger("A-1", [_entry("k1")])
            assert [e.key for e in other.ledger("A-1").entries] == ["k1"]

    def test_a_change_token_changes_with_every_write_and_only_then(
        self, store: Store, second_handle: SecondHandle
    ) -> None:
        """``change_token()``, when the store offers it (the run then skips re-reading an account
        nothing touched): equal across reads, different after a write through this handle or
        another, committed; a token taken before a read that missed a write differs afterwards."""
        token = getattr(store, "change_token", None)
        if token is None:
            pytest.skip("no change_token: the run reads every account again before each message")
        _seed(store)
        before = token()
        store.ledger("A-1")
        store.account_snapshot("A-1")
        assert token() == before, "a read changed the token: the run would read every account again"
        store.append_ledger("A-1", [_entry("own")])
        after_own = token()
        assert after_own != before, "this handle's write left the token as it was"
        with contextlib.closing(second_handle(store)) as other:
            seen = token()
            assert store.ledger("A-1").balance is not None
            with other.transaction():
                other.append_ledger("A-1", [_entry("other-1")])
                other.append_ledger("A-1", [_entry("other-2")])
            assert token() != seen, "another handle's committed write left the token as it was"
            assert token() == token()
            seen = token()
            other.append_ledger("A-1", [_entry("other-3")])
            assert token() != seen
        with store.transaction():
            first = token()
            store.append_ledger("A-1", [_entry("inside-1")])
            second = token()
            assert second != first, "a write inside a unit of work left the token as it was"
            store.append_ledger("A-1", [_entry("inside-2")])
            assert token() != second, "a unit of work's second write left the token as it was"

    def test_an_account_version_changes_with_every_write_to_its_snapshot_and_only_then(
        self, store: Store, second_handle: SecondHandle
    ) -> None:
        """``account_versions()``, when the store offers it (the run then uses an account it read
        while its version holds, whatever else the file saw): each write that changes what
        ``account_snapshot`` returns for an account, or its invoices' claim records, through this
        handle or another, changes that account's version and no other account's; reads and the
        run's own bookkeeping (outbox, other audit records, processed events) change none."""
        versions = getattr(store, "account_versions", None)
        if versions is None:
            pytest.skip("no account_versions: the run reads every account again once anything was written")
        _seed(store)
        store.put_patient(_patient("P-2"))
        store.put_account(_account("A-2", "P-2"))
        store.put_invoice(_invoice("INV-A-2", "A-2"))
        ids = ["A-1", "A-2"]
        assert set(versions([*ids, "A-404"])) == {"A-1", "A-2", "A-404"}
        sched = build_schedule(Money("450.05", "NOK"), 2, first_due=dt.date(2026, 4, 1))
        plan = PaymentPlan("PL-1", "A-1", ("INV-A-1",), Money("450.05", "NOK"), sched, T0)
        step = OutreachStep(
            "S-1",
            "A-1",
            "INV-A-1",
            OutreachPurpose.REMINDER,
            (Channel.EMAIL,),  # type: ignore[arg-type]
            T0,
            "reminder.v1",
        )

        def attempt(aid: str) -> ContactAttempt:
            return ContactAttempt(aid, "S-1", "A-1", "INV-A-1", Channel.EMAIL, T0, AttemptOutcome.DELIVERED)

        placement = _placement()
        mandate = Mandate("PL-1", "A-1", "demo-gateway", "card", "tok_1", T0)
        application = AssistanceApplication("APP-1", "A-1", dt.date(2026, 3, 1), ApplicationStatus.RECEIVED)
        opted_out = attrs.evolve(
            _patient(),
            contact_points=tuple(
                attrs.evolve(c, opted_out_at=T_HALF) if c.channel is Channel.EMAIL else c
                for c in _patient().contact_points
            ),
        )
        writes: list[tuple[str, Callable[[Store], object]]] = [
            ("an opt-out on a contact point", lambda s: s.put_patient(opted_out)),
            (
                "the patient's language",
                lambda s: s.put_patient(attrs.evolve(opted_out, preferred_language="en")),
            ),
            ("the account", lambda s: s.put_account(attrs.evolve(_account(), household_size=5))),
            (
                "an invoice",
                lambda s: s.put_invoice(attrs.evolve(_invoice("INV-A-1"), status=InvoiceStatus.PAID)),
            ),
            ("a ledger entry", lambda s: s.append_ledger("A-1", [_entry("v-1")])),
            ("a plan", lambda s: s.put_plan(plan)),
            ("a plan's status", lambda s: s.put_plan(attrs.evolve(plan, status=PlanStatus.PAUSED))),
            ("a dispute", lambda s: s.put_dispute(Dispute("D-1", "A-1", None, DisputeReason.NOT_MINE, T0))),
            ("an outreach step", lambda s: s.put_step(step)),
            ("steps", lambda s: s.put_steps([attrs.evolve(step, status=OutreachStatus.SENT, sent_at=T0)])),
            ("an attempt", lambda s: s.add_attempt(attempt("AT-1"))),
            ("attempts", lambda s: s.add_attempts([attempt("AT-2"), attempt("AT-3")])),
            ("a placement", lambda s: s.put_placement(placement)),
            ("a mandate", lambda s: s.put_mandate(mandate)),
            ("a revoked mandate", lambda s: s.revoke_mandate("demo-gateway", "tok_1", at=T_HALF)),
            ("an application", lambda s: s.put_application(application)),
            (
                "a decided application",
                lambda s: s.put_application(
                    attrs.evolve(
                        application, status=ApplicationStatus.APPROVED, decided_on=dt.date(2026, 3, 2)
                    )
                ),
            ),
            ("a claim record", lambda s: s.audit_append(CLAIM_RECORD, "INV-A-1", {"claim": "CLP-1"}, at=T0)),
        ]
        untouched: list[tuple[str, Callable[[Store], object]]] = [
            ("reads", lambda s: (s.account_snapshot("A-1"), s.ledger("A-1"), list(s.audit_records()))),
            (
                "an outbox intent",
                lambda s: s.outbox_intend("m-1", "message", {"step": "S-1"}, at=T0, account_id="A-1"),
            ),
            ("an outbox done-mark", lambda s: s.outbox_done("m-1", at=T0)),
            ("an audit record", lambda s: s.audit_append("message.sent", "A-1", {"key": "m-1"}, at=T0)),
            ("a processed event", lambda s: s.mark_processed("kit", "ev-1", at=T0)),
        ]

        def seen(s: Store) -> tuple[AccountSnapshot, list[AuditRecord]]:
            return s.account_snapshot("A-1"), list(
                s.audit_records(subject_ids=["INV-A-1"], kinds={CLAIM_RECORD})
            )

        with contextlib.closing(second_handle(store)) as other:
            for n, (what, write) in enumerate(writes):
                handle = other if n % 2 else store  # every kind of write, through both handles
                before, other_before = versions(ids), store.account_snapshot("A-2")
                was = seen(store)
                write(handle)
                assert seen(store) != was, (
                    f"{what}: the write changed nothing the run reads (the test is wrong)"
                )
                after = versions(ids)
                assert after["A-1"] != before["A-1"], f"{what}: the account's version stayed as it was"
                assert after["A-2"] == before["A-2"], f"{what}: another patient's account's version changed"
                assert store.account_snapshot("A-2") == other_before
            moved = attrs.evolve(mandate, account_id="A-2")
            before = versions(ids)
            other.put_mandate(moved)
            after = versions(ids)
            assert after["A-1"] != before["A-1"] and after["A-2"] != before["A-2"], (
                "a mandate moved to another account: both accounts' versions change"
            )
            for what, write in untouched:
                for handle in (store, other):
                    before = versions(ids)
                    write(handle)
                    assert versions(ids) == before, f"{what} changed an account's version"
            with store.transaction():
                before = versions(ids)
                store.append_ledger("A-2", [attrs.evolve(_entry("v-2"), invoice_id="INV-A-2")])
                inside = versions(ids)
                assert inside["A-2"] != before["A-2"], (
                    "a write inside a unit of work: its version changes at once"
                )
            assert versions(ids) == inside

    # -- ledger ------------------------------------------------------------------------------
    def test_ledger_entries_are_idempotent_by_key(self, store: Store) -> None:
        _seed(store)
        charge = LedgerEntry(
            "charge:INV", EntryKind.CHARGE, Money("575.99", "NOK"), T0, "INV-A-1", "INV-A-1", "kit"
        )
        pay = _entry("pay-1", "100.01")
        assert store.append_ledger("A-1", [charge, pay]) == 2
        assert store.append_ledger("A-1", [charge, pay]) == 0
        assert store.ledger("A-1").entries == (charge, pay)
        assert store.ledger("A-1").balance == Money("475.98", "NOK")
        with pytest.raises(DuplicateEntry):
            store.append_ledger("A-1", [_entry("pay-2"), _entry("pay-1", "100.02")])
        assert [e.key for e in store.ledger("A-1").entries] == ["charge:INV", "pay-1"]  # nothing half-written

    # -- outbox ------------------------------------------------------------------------------
    def test_the_outbox_records_an_intent_once(self, store: Store) -> None:
        first = store.outbox_intend("m-1", "message", {"account": "A-1", "n": 1}, at=T0, account_id="A-1")
        assert (first.status, first.attempts, first.recorded_at, first.account_id) == (
            OutboxStatus.INTENDED,
            0,
            T0,
            "A-1",
        )
        again = store.outbox_intend(
            "m-1", "message", {"n": 1, "account": "A-1"}, at=T0 + dt.timedelta(hours=1)
        )
        assert again == first
        with pytest.raises(DuplicateEntry):
            store.outbox_intend("m-1", "message", {"account": "A-1", "n": 2}, at=T0)
        with pytest.raises(DuplicateEntry):
            store.outbox_intend("m-1", "refund", {"account": "A-1", "n": 1}, at=T0)
        assert [i.key for i in store.outbox_due(T0)] == ["m-1"]

    def test_batch_writes_do_what_one_at_a_time_does(self, store: Store) -> None:
        _seed(store)
        store.outbox_intend("m-0", "message", {"n": 0}, at=T0, account_id="A-1")
        with store.transaction():
            items = store.outbox_intend_many(
                [
                    ("m-1", "message", {"n": 1}, "A-1"),
                    ("m-0", "message", {"n": 0}, "A-1"),
                    ("m-2", "x", {}, None),
                ],
                at=T_HALF,
            )
        assert list(items) == ["m-1", "m-0", "m-2"]
        assert items["m-0"] == store.outbox_get("m-0") and items["m-0"].recorded_at == T0
        assert items["m-1"] == store.outbox_get("m-1")
        assert (items["m-1"].status, items["m-1"].account_id, items["m-1"].recorded_at) == (
            OutboxStatus.INTENDED,
            "A-1",
            T_HALF,
        )
        with pytest.raises(DuplicateEntry):  # a changed payload: nothing of the batch is written
            store.outbox_intend_many(
                [("m-3", "message", {}, None), ("m-1", "message", {"n": 9}, None)], at=T0
            )
        with pytest.raises(NotFound):
            store.outbox_get("m-3")
        at = T0 + dt.timedelta(hours=2)
        store.outbox_done_many([("m-1", {"provider_message_id": "p-1"}), ("m-2", None)], at=at)
        store.outbox_done_many([("m-1", {"provider_message_id": "again"})], at=at + dt.timedelta(hours=1))
        done = store.outbox_get("m-1")
        assert (done.status, done.attempts, done.updated_at, done.result) == (
            OutboxStatus.DONE,
            1,
            at,
            {"provider_message_id": "p-1"},
        )
        assert store.outbox_get("m-2").status is OutboxStatus.DONE
        with pytest.raises(NotFound):
            store.outbox_done_many([("m-0", None), ("never", None)], at=at)
        assert store.outbox_get("m-0").status is OutboxStatus.INTENDED  # nothing of the batch written
        attempts = [
            ContactAttempt(
                f"AT-{n}", None, "A-1", "INV-A-1", Channel.SMS, at, AttemptOutcome.DELIVERED, f"p-{n}"
            )
            for n in range(3)
        ]
        assert store.add_attempts(attempts[:2]) == 2
        assert store.add_attempts([*attempts, attempts[2]]) == 1  # one id twice in a batch: kept once
        assert store.attempts_for("A-1") == tuple(attempts)
        assert store.add_attempts([]) == 0
        store.outbox_intend_many([("m-4", "message", {}, "A-1")], at=T0)
        store.outbox_done_many([("m-4", {"n": "first"}), ("m-4", {"n": "second"})], at=at)
        assert store.outbox_get("m-4").result == {"n": "first"}  # one key twice: the first record
        planned = OutreachStep(
            "S-9",
            "A-1",
            "INV-A-1",
            OutreachPurpose.REMINDER,
            (Channel.SMS,),  # type: ignore[arg-type]
            T0,
            "reminder.v1",
        )
        sent = attrs.evolve(planned, status=OutreachStatus.SENT, sent_at=at, deadline=dt.date(2026, 4, 1))
        other = attrs.evolve(planned, id="S-8", channels=(Channel.EMAIL, Channel.LETTER))  # type: ignore[arg-type]
        store.put_steps([planned, other, sent])  # one id twice: the later wins, as put_step each
        assert (store.get_step("S-9"), store.get_step("S-8")) == (sent, other)
        store.put_steps([planned])
        assert store.get_step("S-9") == planned
        store.put_steps([])
        first = store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        with store.transaction():
            many = store.audit_append_many(
                [("message.sent", "A-1", {"key": "m-1"}), ("message.sent", "A-2", {"key": "ø"})], at=at
            )
            last = store.audit_append("import", "A-2", {"rows": 2}, at=at)
        assert [r.seq for r in many] == [2, 3] and many[0].prev_hash == first.hash
        assert last.prev_hash == many[1].hash
        assert list(store.audit_records()) == [first, *many, last]
        assert list(store.audit_records(subject_ids=["A-2", "nobody"])) == [many[1], last]
        assert list(store.audit_records(subject_ids={"A-1", "A-2"}, kinds={"import"})) == [first, last]
        assert list(store.audit_records(subject_ids=[])) == []
        assert store.audit_append_many([], at=at) == []
        assert store.verify_audit().ok

    def test_a_failure_is_retried_with_back_off_until_done(self, store: Store) -> None:
        store.outbox_intend("m-1", "message", {"n": 1}, at=T0)
        store.outbox_intend("m-2", "message", {"n": 2}, at=T0 + dt.timedelta(seconds=1))
        failed = store.outbox_failed("m-1", at=T0, error="timeout")
        assert (failed.status, failed.attempts, failed.last_error) == (OutboxStatus.FAILED, 1, "timeout")
        assert failed.next_retry_at == next_retry_at(1, T0) == T0 + dt.timedelta(minutes=5)
        assert [i.key for i in store.outbox_due(T0 + dt.timedelta(minutes=4))] == ["m-2"]
        assert [i.key for i in store.outbox_due(T0 + dt.timedelta(minutes=5))] == ["m-1", "m-2"]
        later = T0 + dt.timedelta(minutes=5)
        second = store.outbox_failed("m-1", at=later, error="timeout again")
        assert second.attempts == 2 and second.next_retry_at == later + dt.timedelta(minutes=10)
        chosen = store.outbox_failed("m-1", at=later, error="429", retry_at=later + dt.timedelta(hours=3))
        assert chosen.next_retry_at == later + dt.timedelta(hours=3)
        done = store.outbox_done("m-1", at=later + dt.timedelta(hours=3), result={"ref": "sms-77"})
        assert (done.status, done.attempts, done.next_retry_at, done.result) == (
            OutboxStatus.DONE,
            4,
            None,
            {"ref": "sms-77"},
        )
        assert store.outbox_done("m-1", at=later + dt.timedelta(days=1), result={"ref": "other"}) == done
        assert store.outbox_failed("m-1", at=later + dt.timedelta(days=1), error="late") == done
        assert store.outbox_get("m-1") == done
        gave_up = store.outbox_failed("m-2", at=T0, error="invalid number", give_up=True)
        assert (gave_up.status, gave_up.next_retry_at) == (OutboxStatus.FAILED, None)
        assert store.outbox_due(T0 + dt.timedelta(days=365)) == []

    # -- incoming events -----------------------------------------------------------------------
    def test_a_processed_event_is_recognised(self, store: Store) -> None:
        assert store.was_processed("stripe", "evt_1") is False
        assert store.mark_processed("stripe", "evt_1", at=T0) is True
        assert store.mark_processed("stripe", "evt_1", at=T0) is False
        assert store.was_processed("stripe", "evt_1") is True
        assert store.was_processed("vipps", "evt_1") is False

    def test_the_inbox_keeps_an_event_until_it_is_taken(
        self, store: Store, second_handle: SecondHandle
    ) -> None:
        body = b'{"id":"evt_1"}\x00\xff\xfe raw bytes'
        item = InboxItem("payment", "stripe", "evt_1", body, {"Stripe-Signature": "t=1,v1=ab"}, T0)
        assert store.inbox_put(item) is True
        assert store.inbox_put(attrs.evolve(item, body=b"other")) is False
        store.inbox_put(InboxItem("reply", "sms", "in-2", b"STOP", {}, T0 + dt.timedelta(seconds=1)))
        with contextlib.closing(second_handle(store)) as other:  # committed when inbox_put returned
            pending = other.inbox_pending()
        assert [(p.kind, p.plugin, p.event_id) for p in pending] == [
            ("payment", "stripe", "evt_1"),
            ("reply", "sms", "in-2"),
        ]
        assert pending[0].body == body and pending[0].headers == {"Stripe-Signature": "t=1,v1=ab"}
        assert pending[0].received_at == T0
        store.inbox_retry("payment", "stripe", "evt_1", outcome="provider-down")
        again = store.inbox_pending()[0]
        assert (again.attempts, again.outcome) == (1, "provider-down")
        store.inbox_taken("payment", "stripe", "evt_1", at=T0, outcome="posted")
        assert [p.event_id for p in store.inbox_pending()] == ["in-2"]
        with pytest.raises(NotFound):
            store.inbox_taken("payment", "stripe", "evt_404", at=T0, outcome="posted")
        with pytest.raises(NotFound):
            store.inbox_retry("payment", "stripe", "evt_404", outcome="x")

    def test_the_hook_queue_keeps_an_event_until_every_plugin_took_it(self, store: Store) -> None:
        seq = store.hook_event_record("on_event", '{"a":1}', ["p1", "p2"], at=T0)
        assert store.hook_event_record("on_event", '{"a":2}', [], at=T0) > seq  # nothing owed: done at once
        (pending,) = store.hook_events_pending()
        assert (pending.seq, pending.hook, pending.arguments, pending.targets, pending.delivered) == (
            seq,
            "on_event",
            '{"a":1}',
            ("p1", "p2"),
            (),
        )
        assert pending.recorded_at == T0
        store.hook_event_delivered(seq, ["p1"], at=T0, error="p2: RuntimeError")
        (partly,) = store.hook_events_pending()
        assert (partly.delivered, partly.owed, partly.attempts, partly.last_error) == (
            ("p1",),
            ("p2",),
            1,
            "p2: RuntimeError",
        )
        store.hook_event_delivered(seq, ["p1", "p2"], at=T0)
        assert store.hook_events_pending() == []
        with pytest.raises(NotFound):
            store.hook_event_delivered(seq + 100, ["p1"], at=T0)

        def undone() -> None:
            with store.transaction():
                store.hook_event_record("on_event", "{}", ["p1"], at=T0)
                raise RuntimeError("the change is undone, so is its event")

        with pytest.raises(RuntimeError, match="undone"):
            undone()
        assert store.hook_events_pending() == []

    # -- run lock ----------------------------------------------------------------------------
    def test_the_run_lock_is_exclusive_until_stale(self, store: Store, second_handle: SecondHandle) -> None:
        assert store.current_run_lock() is None
        held = store.acquire_run_lock("run-a", 11, now=WALL, stale_after=dt.timedelta(seconds=30))
        assert store.current_run_lock() == held
        with contextlib.closing(second_handle(store)) as other:
            with pytest.raises(RunLocked) as info:
                other.acquire_run_lock("run-b", 22, now=WALL + dt.timedelta(seconds=29))
            assert (info.value.owner, info.value.pid) == ("run-a", 11)
            store.heartbeat_run_lock("run-a", 11, now=WALL + dt.timedelta(seconds=20))
            with pytest.raises(RunLocked):  # the heartbeat moved staleness on
                other.acquire_run_lock("run-b", 22, now=WALL + dt.timedelta(seconds=45))
            with pytest.raises(RunLocked):
                other.heartbeat_run_lock("run-b", 22, now=WALL + dt.timedelta(seconds=45))
            taken = other.acquire_run_lock("run-b", 22, now=WALL + dt.timedelta(seconds=50))
            assert store.current_run_lock() == taken
            with pytest.raises(RunLocked) as lost:  # the frozen holder wakes up and learns it lost the lock
                store.heartbeat_run_lock("run-a", 11, now=WALL + dt.timedelta(seconds=51))
            assert lost.value.owner == "run-b"
            store.release_run_lock("run-a", 11)  # not its lock any more: nothing happens
            assert store.current_run_lock() == taken
            other.release_run_lock("run-b", 22)
        assert store.current_run_lock() is None
        with pytest.raises(RunLocked):
            store.heartbeat_run_lock("run-a", 11, now=WALL)

    # -- audit -------------------------------------------------------------------------------
    def test_the_audit_chain_verifies_and_finds_an_edited_record(
        self, store: Store, tamper_audit: TamperAudit
    ) -> None:
        first = store.audit_append(
            "outreach.decision", "A-1", {"codes": ["due"], "amount_minor": 12345}, at=T0
        )
        assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
        second = store.audit_append("import", "A-2", {"rows": 3, "note": "ø"}, at=T_HALF)
        third = store.audit_append(
            "outreach.decision", "A-1", {"codes": ["not_due"]}, at=T0 + dt.timedelta(days=1)
        )
        assert second.prev_hash == first.hash and third.prev_hash == second.hash
        assert list(store.audit_records()) == [first, second, third]
        assert list(store.audit_records(subject_id="A-1")) == [first, third]
        assert list(store.audit_records(kinds={"import"})) == [second]
        assert list(store.audit_records(subject_id="A-1", kinds=())) == []
        ok = store.verify_audit()
        assert (ok.ok, ok.checked) == (True, 3)
        tamper_audit(store, 2, '{"note":"ø","rows":4}')
        broken = store.verify_audit()
        assert (broken.ok, broken.first_broken_seq, broken.checked) == (False, 2, 1)
        assert broken.problem is not None

    def test_each_chain_links_only_its_own_records(self, store: Store) -> None:
        m1 = store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        a1, a2 = store.audit_append_many(
            [("decision", "A-2", {"n": 1}), ("decision", "A-3", {"n": 2})], at=T0, chain="p0of2"
        )
        b1 = store.audit_append("decision", "A-4", {"n": 1}, at=T0, chain="p1of2")
        m2 = store.audit_append("import", "A-1", {"rows": 2}, at=T_HALF)

        def undone() -> None:
            with store.transaction():
                store.audit_append("decision", "A-9", {"undone": True}, at=T0, chain="p0of2")
                raise RuntimeError("undone")

        with store.transaction():
            a3 = store.audit_append("decision", "A-5", {"n": 3}, at=T_HALF, chain="p0of2")
            with pytest.raises(RuntimeError):
                undone()  # a savepoint: the chain's head is where it was before it
            b2 = store.audit_append("decision", "A-6", {"n": 2}, at=T_HALF, chain="p1of2")
            a4 = store.audit_append("decision", "A-7", {"n": 4}, at=T_HALF, chain="p0of2")
        every = [m1, a1, a2, b1, m2, a3, b2, a4]
        assert list(store.audit_records()) == every
        assert [r.seq for r in every] == sorted(r.seq for r in every) and len({r.seq for r in every}) == 8
        for chain, records in (
            (MAIN_CHAIN, [m1, m2]),
            ("p0of2", [a1, a2, a3, a4]),
            ("p1of2", [b1, b2]),
        ):
            assert list(store.audit_records(chain=chain)) == records
            assert [(r.chain, r.chain_seq) for r in records] == [
                (chain, n) for n in range(1, len(records) + 1)
            ]
            assert [r.prev_hash for r in records] == [GENESIS_HASH, *(r.hash for r in records[:-1])]
        assert list(store.audit_records(subject_id="A-3", chain="p0of2")) == [a2]
        assert list(store.audit_records(subject_id="A-3", chain="p1of2")) == []
        assert store.audit_heads() == [
            AuditHead(MAIN_CHAIN, 2, m2.hash),
            AuditHead("p0of2", 4, a4.hash),
            AuditHead("p1of2", 2, b2.hash),
        ]
        # the same record in another chain hashes differently: a record cannot change chains unseen
        assert a1.hash != store.audit_append("decision", "A-2", {"n": 1}, at=T0, chain="p0of3").hash
        ok = store.verify_audit()
        assert (ok.ok, ok.checked, ok.chains, ok.seals, ok.problems) == (True, 9, 4, 0, ())

    def test_a_seal_lists_every_chains_head_once_per_change(self, store: Store) -> None:
        assert store.seal_audit(at=T0) is None  # nothing to seal
        store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        assert store.seal_audit(at=T0) is None  # the main chain alone links its own records
        store.audit_append_many([("decision", "A-2", {}), ("decision", "A-3", {})], at=T0, chain="p0of2")
        store.audit_append("decision", "A-4", {}, at=T0, chain="p1of2")
        heads = store.audit_heads()
        seal = store.seal_audit(at=T_HALF)
        assert seal is not None
        assert (seal.chain, seal.chain_seq, seal.kind, seal.at) == (MAIN_CHAIN, 2, SEAL_KIND, T_HALF)
        assert seal.data == {"heads": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in heads]}
        assert [h["chain"] for h in seal.data["heads"]] == [MAIN_CHAIN, "p0of2", "p1of2"]
        assert store.seal_audit(at=T_HALF) is None  # nothing appended since: no second seal
        store.audit_append("decision", "A-5", {}, at=T_HALF, chain="p1of2")
        again = store.seal_audit(at=T_HALF)
        assert again is not None and again.prev_hash == seal.hash
        assert again.data["heads"][0] == {"chain": MAIN_CHAIN, "seq": 2, "hash": seal.hash}
        assert again.data["heads"][2]["seq"] == 2
        assert list(store.audit_records(kinds={SEAL_KIND})) == [seal, again]
        result = store.verify_audit()
        assert (result.ok, result.checked, result.chains, result.seals) == (True, 7, 3, 2)

    def test_an_edited_record_is_found_in_its_own_chain(
        self, store: Store, tamper_audit: TamperAudit
    ) -> None:
        store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        part = store.audit_append_many(
            [("decision", f"A-{n}", {"n": n}) for n in range(4)], at=T0, chain="p1of2"
        )
        store.audit_append("decision", "A-9", {"n": 9}, at=T0, chain="p0of2")
        store.audit_append("import", "A-1", {"rows": 2}, at=T0)
        tamper_audit(store, part[1].seq, '{"n":5}')
        broken = store.verify_audit()
        assert not broken.ok
        assert [(p.chain, p.seq) for p in broken.problems] == [("p1of2", 2)]
        assert (broken.chain, broken.first_broken_seq) == ("p1of2", 2)
        assert "hash" in (broken.problem or "")
        assert broken.checked == 4  # the main chain (2), p0of2 (1) and the record before the edit
        assert broken.chains == 3

    def test_a_sealed_tail_removed_or_rewritten_is_found_against_the_seal(
        self, store: Store, delete_audit: DeleteAudit
    ) -> None:
        store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        p0 = store.audit_append_many(
            [("decision", f"A-{n}", {"n": n}) for n in range(3)], at=T0, chain="p0of2"
        )
        p1 = store.audit_append_many(
            [("decision", f"B-{n}", {"n": n}) for n in range(2)], at=T0, chain="p1of2"
        )
        seal = store.seal_audit(at=T0)
        assert seal is not None
        later = store.audit_append("decision", "A-3", {"n": 3}, at=T_HALF, chain="p0of2")
        assert store.verify_audit().ok

        # the records after the seal and the last sealed one go: the chain still links, the seal does not hold
        delete_audit(store, [p0[2].seq, later.seq])
        gone = store.verify_audit()
        assert not gone.ok
        assert [(p.chain, p.seq) for p in gone.problems] == [("p0of2", 3)]
        assert "missing" in (gone.problem or "") and f"main record {seal.chain_seq}" in (gone.problem or "")

        # the tail rewritten through the store itself (every hash recomputed): it links, but it is not
        # what the seal attests
        store.audit_append("decision", "A-2", {"n": 2, "changed": True}, at=T0, chain="p0of2")
        rewritten = store.verify_audit()
        assert [(p.chain, p.seq) for p in rewritten.problems] == [("p0of2", 3)]
        assert "seal" in rewritten.problems[0].problem

        # a whole sealed chain removed
        delete_audit(store, [r.seq for r in p1])
        both = store.verify_audit()
        assert [(p.chain, p.seq) for p in both.problems] == [("p0of2", 3), ("p1of2", 1)]
        assert "chain is missing" in both.problems[1].problem

    def test_reordered_records_are_found(self, store: Store, swap_audit: SwapAudit) -> None:
        store.audit_append("import", "A-1", {"rows": 1}, at=T0)
        part = store.audit_append_many(
            [("decision", f"A-{n}", {"n": n}) for n in range(3)], at=T0, chain="p1of2"
        )
        store.audit_append("decision", "B-1", {}, at=T0, chain="p0of2")
        assert store.verify_audit().ok
        swap_audit(store, part[0].seq, part[1].seq)  # the log now reads record 2 before record 1
        assert [r.data["n"] for r in store.audit_records(chain="p1of2")] == [1, 0, 2]
        broken = store.verify_audit()
        assert [(p.chain, p.seq) for p in broken.problems] == [("p1of2", 2)]
        assert "order" in (broken.problem or "")

    # -- plan-row queries ----------------------------------------------------------------------
    def test_plan_facts_give_the_rows_of_the_records_they_aggregate(self, store: Store) -> None:
        from ..portfolio import load_portfolio
        from ..run.rows import Contexts, rows_from_facts, rows_from_snapshot

        if not hasattr(store, "iter_plan_facts") or not hasattr(store, "account_snapshots"):
            pytest.skip("the store has no plan-row queries (the run decides every account on its snapshot)")
        load_portfolio(store, 120, seed=7, as_of=dt.date(2026, 3, 2))
        _vary(store)
        snaps = list(store.iter_account_snapshots(batch_size=17))
        ids = [s.account.id for s in snaps]
        assert ids == sorted(ids)
        assert list(store.account_snapshots(ids[3:40:3])) == list(snaps[3:40:3])
        assert list(store.account_snapshots([ids[5], "A-UNKNOWN", ids[2]])) == [snaps[2], snaps[5]]
        creditors = {c.id: c for c in store.creditors()}
        for day in (0, 9, 40):
            now = dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC) + dt.timedelta(days=day)
            a, b = Contexts(), Contexts()
            from_facts = [
                acc
                for facts in store.iter_plan_facts(now=now, batch_size=23)
                for acc in rows_from_facts(facts, now, a)
            ]
            from_snaps = [rows_from_snapshot(s, creditors[s.account.creditor_id], now, b) for s in snaps]
            assert len(from_facts) == len(from_snaps) == len(snaps)
            for x, y in zip(from_facts, from_snaps, strict=True):
                assert (x.account_id, x.rich, x.invoices, x.relief) == (
                    y.account_id,
                    y.rich,
                    y.invoices,
                    y.relief,
                )
                assert [r[2:] for r in x.rows] == [r[2:] for r in y.rows]
                assert [a[r[1]] for r in x.rows] == [b[r[1]] for r in y.rows]
        # the flat invoice rows: lines totalled, the ledger summed per invoice, as the records say
        up = {EntryKind.CHARGE, EntryKind.REFUND, EntryKind.PAYMENT_REVERSED, EntryKind.INSURANCE_REVERSED}
        expected = {
            i.id: (
                sum(line.amount.minor_units for line in i.lines),
                sum(
                    e.amount.minor_units * (1 if e.kind in up else -1)
                    for e in s.ledger.entries
                    if e.invoice_id == i.id
                ),
            )
            for s in snaps
            for i in s.invoices
        }
        rows = {
            r.invoice_id: (r.total_minor, r.balance_minor) for r in store.iter_invoice_rows(batch_size=29)
        }
        assert rows == expected

    def test_a_partitions_plan_facts_are_its_share_of_the_whole(self, store: Store) -> None:
        from ..portfolio import load_portfolio
        from ..store.codec import partition_key

        if not hasattr(store, "iter_plan_facts"):
            pytest.skip("the store has no plan-row queries (the run decides every account on its snapshot)")
        load_portfolio(store, 90, seed=11, as_of=dt.date(2026, 3, 2))
        _vary(store)
        # a patient id outside ASCII: the backend's key must be the same number as Python's
        store.put_patient(_patient("P-Ærø-ø"))
        store.put_account(attrs.evolve(_account("A-Ærø", "P-Ærø-ø"), creditor_id=store.creditors()[0].id))
        whole = [
            f for facts in store.iter_plan_facts(now=_FACTS_AT, batch_size=13) for f in _by_account(facts)
        ]
        for parts in (1, 3):
            shares = [
                [
                    f
                    for facts in store.iter_plan_facts(now=_FACTS_AT, batch_size=7, partition=(k, parts))
                    for f in _by_account(facts)
                ]
                for k in range(parts)
            ]
            for k, share in enumerate(shares):
                assert share, f"partition {k} of {parts} is empty"
                assert all(partition_key(f[0][1]) % parts == k for f in share)
            assert sorted(f for share in shares for f in share) == sorted(whole)
        for bad in ((3, 3), (-1, 2), (0, 0), (True, 2), "0/2"):
            with pytest.raises(ValidationError, match="partition"):
                next(iter(store.iter_plan_facts(now=_FACTS_AT, partition=bad)))  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="now"):  # the facts are read at an instant, with its zone
            next(iter(store.iter_plan_facts(now=_FACTS_AT.replace(tzinfo=None))))

    # -- several writers at once ---------------------------------------------------------------
    def test_concurrent_writers_lose_nothing_and_fork_no_chain(
        self, store: Store, second_handle: SecondHandle
    ) -> None:
        _seed(store)
        for n in range(4):
            store.put_account(attrs.evolve(_account(), id=f"A-W{n}"))
        writers, rounds = 4, 15
        errors: list[BaseException] = []
        start = threading.Barrier(writers)
        winners: list[int] = []

        def write(n: int) -> None:
            try:
                with contextlib.closing(second_handle(store)) as mine:
                    start.wait()
                    for k in range(rounds):
                        with mine.transaction():
                            mine.append_ledger(
                                f"A-W{n}",
                                [LedgerEntry(f"w{k}", EntryKind.CHARGE, Money("1.01", "NOK"), T0, "INV-A-1")],
                            )
                            mine.outbox_intend(
                                f"shared-{k}", "message", {"k": k}, at=T0
                            )  # every writer intends the same
                            mine.audit_append("kit.write", f"A-W{n}", {"k": k}, at=T0)
                        # two writers share each partition chain; neither waits for the main chain
                        mine.audit_append("kit.part", f"A-W{n}", {"k": k}, at=T0, chain=f"p{n % 2}of2")
                        mine.outbox_failed(f"shared-{k}", at=T0, error=f"writer {n}")
                    try:
                        mine.acquire_run_lock(f"writer-{n}", n + 1, now=WALL)
                        winners.append(n)
                    except RunLocked:
                        pass
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(winners) == 1
        for n in range(writers):
            assert store.ledger(f"A-W{n}").balance == Money("15.15", "NOK")
        result = store.verify_audit()
        assert (result.ok, result.checked, result.chains) == (True, 2 * writers * rounds, 3)
        assert [h.seq for h in store.audit_heads()] == [writers * rounds, 2 * rounds, 2 * rounds]
        for k in range(rounds):
            assert store.outbox_get(f"shared-{k}").attempts == writers  # every failure counted, none lost


def _by_account(facts: PlanFacts) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """One tuple per account of a plan-fact batch: its account row, then every fact row of it."""
    for account in facts.accounts:
        aid = account[0]
        yield (
            tuple(account),
            tuple(tuple(r) for r in facts.invoices if r[1] == aid),
            *(
                tuple(tuple(r) for r in getattr(facts, name) if r[0] == aid)
                for name in (
                    "steps",
                    "attempts",
                    "disputes",
                    "plans",
                    "instalments",
                    "mandates",
                    "applications",
                    "placements",
                )
            ),
        )


def _vary(store: Store) -> None:
    """Give a loaded portfolio every fact the planner reads, through the store's own methods."""
    snaps = list(store.iter_account_snapshots())
    for n, snap in enumerate(snaps):
        acc, patient = snap.account, snap.patient
        open_invoices = [i for i in snap.invoices if i.status is InvoiceStatus.OPEN]
        inv = open_invoices[0] if open_invoices else (snap.invoices[0] if snap.invoices else None)
        iid = inv.id if inv else None
        at = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC) + dt.timedelta(days=n % 30 - 10, minutes=n)
        if n % 5 == 0:
            points = tuple(
                attrs.evolve(p, opted_out_at=at) if p.channel is Channel.EMAIL else p
                for p in patient.contact_points
            )
            store.put_patient(
                attrs.evolve(patient, contact_points=points, cease_requested_at=at if n % 10 == 0 else None)
            )
        if n % 4 == 1 and iid:
            step = OutreachStep(
                f"S-{acc.id}",
                acc.id,
                iid,
                OutreachPurpose.REMINDER,
                (Channel.EMAIL,),  # type: ignore[arg-type]
                at,
                "reminder",
                status=OutreachStatus.SENT,
                sent_at=at,
            )
            store.put_step(step)
            store.add_attempt(
                ContactAttempt(
                    f"AT-{acc.id}", step.id, acc.id, iid, Channel.EMAIL, at, AttemptOutcome.DELIVERED
                )
            )
            store.add_attempt(
                ContactAttempt(
                    f"AT2-{acc.id}", None, acc.id, None, Channel.PHONE, at, AttemptOutcome.NO_CONNECTION
                )
            )
        if n % 7 == 2:
            store.put_dispute(
                Dispute(f"D-{acc.id}", acc.id, iid if n % 2 else None, DisputeReason.NOT_MINE, at)
            )
        if n % 9 == 3:
            store.put_application(
                AssistanceApplication(
                    f"APP-{acc.id}", acc.id, dt.date(2026, 2, 20), ApplicationStatus.RECEIVED
                )
            )
        if n % 6 == 4 and inv is not None and inv.status is InvoiceStatus.OPEN:
            store.append_ledger(
                acc.id,
                [
                    LedgerEntry(
                        f"kit-pay-{iid}",
                        EntryKind.PATIENT_PAYMENT,
                        Money.from_minor(1501, acc.currency),
                        at,
                        iid,
                        "P",
                    ),
                    LedgerEntry(
                        f"kit-rev-{iid}",
                        EntryKind.PAYMENT_REVERSED,
                        Money.from_minor(1000, acc.currency),
                        at,
                        iid,
                        "P",
                    ),
                ],
            )
        for plan in snap.plans:
            if plan.status is PlanStatus.ACTIVE and n % 2 == 0:
                store.put_mandate(
                    Mandate(
                        plan.id,
                        acc.id,
                        "demo-gateway",
                        "card",
                        f"tok-{plan.id}",
                        at,
                        at if n % 4 == 0 else None,
                    )
                )
