"""The daily run broadcasts every event it causes or takes in, and reports plugins that raised.

A recording plugin sees each event once (a replay changes nothing); a plugin
that raises never stops the run or the other plugins, and its failure is in
the run's report. Disputes taken in from the creditor's systems recall a
placed account; contact-centre records let an open dispute see that its
patient was met.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from carecollect.channels import Channel
from carecollect.contact_centre import (
    ContactChannel,
    ContactOutcome,
    ContactRecord,
    Direction,
    Topic,
)
from carecollect.disputes import DisputeStatus
from carecollect.events import EventType
from carecollect.placements import AgencyPlacement, PlacementStatus
from carecollect.plugins.agencies import (
    AgencyConnectorCapabilities,
    AgencyConnectorDescriptor,
    AgencyReceipt,
    AgencyRemittance,
    AgencyStatusUpdate,
    PlacementRequest,
    PrePlacementNotice,
)
from carecollect.plugins.builtin.outbox import CAPABILITIES, OutboxChannel
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import PluginManager, make_plugin_manager
from carecollect.plugins.messaging import (
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)
from carecollect.portfolio import load_portfolio
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.settings import RunSettings
from carecollect.store.base import OutboxStatus
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


class Refusing(OutboxChannel):
    """A channel whose provider always says "try later"."""

    def send(self, message: OutgoingMessage) -> Receipt:
        return Receipt(message.id, ReceiptStatus.RETRY_LATER, detail="rate limited")


class Agency:
    """An agency double; ``refuse_recalls`` makes it refuse recalls."""

    capabilities = AgencyConnectorCapabilities(
        countries={"US", "NO", "DE", "BG"}, currencies={"USD", "EUR", "NOK"}
    )
    recalls: ClassVar[list[tuple[str, str]]] = []
    refuse_recalls: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings

    def send_pre_placement_notice(self, notice: PrePlacementNotice) -> AgencyReceipt:
        return AgencyReceipt(True)

    def place(self, request: PlacementRequest) -> AgencyReceipt:
        return AgencyReceipt(True)

    def recall(self, placement_id: str, *, reason: str, at: dt.datetime) -> AgencyReceipt:
        if Agency.refuse_recalls:
            return AgencyReceipt(False, detail="busy")
        Agency.recalls.append((placement_id, reason))
        return AgencyReceipt(True)

    def read_status_updates(self, since: dt.datetime) -> Sequence[AgencyStatusUpdate]:
        return []

    def read_remittances(self, since: dt.datetime) -> Sequence[AgencyRemittance]:
        return []


class Doubles:
    @hookimpl
    def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
        return [MessageChannelDescriptor("refusing", CAPABILITIES, Refusing)]

    @hookimpl
    def carecollect_agency_connectors(self) -> list[AgencyConnectorDescriptor]:
        return [AgencyConnectorDescriptor("agency", Agency.capabilities, Agency)]


class Recorder:
    """Records ``(hook, event type, record id)`` of every event hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.args: list[Any] = []

    def _note(self, hook: str, event: Any, arg: Any) -> None:
        self.seen.append((hook, event.type.value, event.record_id))
        self.args.append(arg)

    @hookimpl
    def carecollect_on_outreach_failed(self, step: Any, event: Any, reason: str) -> None:
        self._note("outreach_failed", event, (step, reason))

    @hookimpl
    def carecollect_on_dispute_opened(self, dispute: Any, event: Any) -> None:
        self._note("dispute_opened", event, dispute)

    @hookimpl
    def carecollect_on_dispute_resolved(self, dispute: Any, event: Any) -> None:
        self._note("dispute_resolved", event, dispute)

    @hookimpl
    def carecollect_on_account_recalled(self, placement: Any, event: Any) -> None:
        self._note("account_recalled", event, placement)

    def kinds(self) -> list[str]:
        return [hook for hook, _, _ in self.seen]


class Raiser:
    """Raises in every one of those hooks."""

    @hookimpl
    def carecollect_on_outreach_failed(self, step: Any, event: Any, reason: str) -> None:
        raise RuntimeError("crm down")

    @hookimpl
    def carecollect_on_dispute_opened(self, dispute: Any, event: Any) -> None:
        raise RuntimeError("crm down")

    @hookimpl
    def carecollect_on_dispute_resolved(self, dispute: Any, event: Any) -> None:
        raise RuntimeError("crm down")

    @hookimpl
    def carecollect_on_account_recalled(self, placement: Any, event: Any) -> None:
        raise RuntimeError("crm down")


@pytest.fixture(autouse=True)
def _reset() -> None:
    Agency.recalls = []
    Agency.refuse_recalls = False


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 30, seed=5, as_of=NOW.date())
    yield s
    s.close()


def _pm(*plugins: object) -> PluginManager:
    return make_plugin_manager(load_entrypoints=False, plugins=[Doubles(), *plugins])


def _settings(tmp_path: Path, plugin: str = "outbox", **kw: Any) -> RunSettings:
    config = {"folder": str(tmp_path / "out")}
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, plugin),
        channel_config={plugin: config, "outbox": config},
        **kw,
    )


def _dispute(action: str, dispute_id: str, **fields: Any) -> InboundEvent:
    body = json.dumps({"action": action, "dispute_id": dispute_id, **fields}).encode()
    return InboundEvent(InboundKind.DISPUTE, "portal", body)


def _placed(store: SQLiteStore) -> tuple[str, str, str]:
    """Place an account with an open invoice; returns (account, invoice, placement)."""
    for snap in store.iter_account_snapshots(batch_size=100):
        open_ids = snap.ledger.open_invoices()
        if open_ids and not snap.disputes:
            placement = AgencyPlacement(
                f"PLC-{snap.account.id}",
                snap.account.id,
                "agency",
                snap.ledger.balance,
                status=PlacementStatus.PLACED,
                placed_at=NOW - dt.timedelta(days=40),
                invoice_ids=tuple(open_ids),
            )
            with store.transaction():
                store.put_placement(placement)
            return snap.account.id, open_ids[0], placement.id
    raise AssertionError("no open account without a dispute")


def test_a_failed_send_is_broadcast_and_a_raising_plugin_is_reported(
    store: SQLiteStore, tmp_path: Path
) -> None:
    recorder = Recorder()
    pm = _pm(recorder, Raiser())
    report = execute_run(store, NOW, pm, _settings(tmp_path, "refusing"))
    assert report.failed == len(report.plan.messages) > 0
    failed = [
        a for (hook, _, _), a in zip(recorder.seen, recorder.args, strict=True) if hook == "outreach_failed"
    ]
    assert len(failed) == report.failed
    assert {step.id for step, _ in failed} == {m.step.id for m in report.plan.messages}
    assert {reason for _, reason in failed} == {"channel said retry_later"}
    assert {t for h, t, _ in recorder.seen} == {EventType.OUTREACH_FAILED.value}
    # the raising plugin stopped nothing, and each of its failures is in the report
    assert len(report.hook_failures) == report.failed
    assert all(
        line.startswith("carecollect_on_outreach_failed outreach.failed ") for line in report.hook_failures
    )
    assert all("RuntimeError: crm down" in line for line in report.hook_failures)
    assert len(pm.undelivered()) == report.failed


def test_a_dispute_taken_in_opens_recalls_and_resolves_once(store: SQLiteStore, tmp_path: Path) -> None:
    account, invoice, placement = _placed(store)
    recorder = Recorder()
    pm = _pm(recorder, Raiser())
    settings = _settings(tmp_path, agency="agency")
    opened = _dispute(
        "open", "D-77", account_id=account, invoice_id=invoice, reason="billing_error", at=NOW.isoformat()
    )
    first = intake(store, pm, settings, [opened], NOW)
    assert (first.disputes_opened, first.recalled, first.failures) == (1, 1, ())
    assert store.get_dispute("D-77").is_open
    assert store.get_placement(placement).status is PlacementStatus.RECALLED
    assert Agency.recalls == [(placement, "dispute D-77")]
    assert recorder.seen == [
        ("dispute_opened", "dispute.opened", "D-77"),
        ("account_recalled", "placement.recalled", placement),
    ]
    assert recorder.args[1].status is PlacementStatus.RECALLED

    # the same event again (a replayed file) changes nothing and broadcasts nothing
    again = intake(store, pm, settings, [opened], NOW + dt.timedelta(hours=1))
    assert (again.duplicates, again.disputes_opened, again.recalled) == (1, 0, 0)
    assert len(recorder.seen) == 2 and len(Agency.recalls) == 1

    balance = store.ledger(account).invoice_balance(invoice)
    # the front line may grant nothing under the default procedure: the office manager takes it
    escalated = _dispute(
        "escalate", "D-77", level="OFFICE_MANAGER", at=(NOW + dt.timedelta(days=1)).isoformat()
    )
    assert intake(store, pm, settings, [escalated], NOW + dt.timedelta(days=1)).failures == ()
    resolved = _dispute(
        "resolve",
        "D-77",
        kind="discount",
        amount="1.00",
        approved_by="staff-9",
        at=(NOW + dt.timedelta(days=2)).isoformat(),
    )
    done = intake(store, pm, settings, [resolved, resolved], NOW + dt.timedelta(days=2))
    assert (done.disputes_resolved, done.duplicates) == (1, 1)
    assert store.get_dispute("D-77").status is DisputeStatus.RESOLVED
    assert store.ledger(account).invoice_balance(invoice) == balance - type(balance)("1.00", balance.currency)
    assert recorder.seen[-1] == ("dispute_resolved", "dispute.resolved", "D-77")
    # the raiser failed on each of the three broadcasts; all are kept for redelivery
    assert [r.hook for r in pm.undelivered()] == [
        "carecollect_on_dispute_opened",
        "carecollect_on_account_recalled",
        "carecollect_on_dispute_resolved",
    ]
    assert store.verify_audit().ok


def test_a_withdrawn_dispute_is_broadcast_as_resolved(store: SQLiteStore, tmp_path: Path) -> None:
    account, _, _ = _placed(store)
    recorder = Recorder()
    pm = _pm(recorder)
    settings = _settings(tmp_path)  # no agency configured: nothing is recalled
    events = [
        _dispute(
            "open", "D-5", account_id=account, invoice_id=None, reason="billing_error", at=NOW.isoformat()
        ),
        _dispute("withdraw", "D-5"),
    ]
    report = intake(store, pm, settings, events, NOW)
    assert (report.disputes_opened, report.disputes_resolved, report.recalled) == (1, 1, 0)
    assert [t for _, t, _ in recorder.seen] == ["dispute.opened", "dispute.withdrawn"]
    assert store.get_dispute("D-5").status is DisputeStatus.WITHDRAWN
    assert Agency.recalls == []


def test_malformed_dispute_events_are_reported(store: SQLiteStore, tmp_path: Path) -> None:
    pm = _pm()
    bad = [
        InboundEvent(InboundKind.DISPUTE, "portal", b"not json"),
        _dispute("reopen", "D-1"),
        _dispute("open", "D-2", account_id="A-nobody", invoice_id=None, reason="billing_error"),
        _dispute("open", "D-3", account_id="x", invoice_id=None, reason="no-such-reason"),
    ]
    report = intake(store, pm, _settings(tmp_path), bad, NOW)
    assert report.processed == 0 and len(report.failures) == 4
    assert all(f.startswith("dispute via portal:") for f in report.failures)


def test_a_refused_recall_is_retried_after_its_back_off(store: SQLiteStore, tmp_path: Path) -> None:
    account, invoice, placement = _placed(store)
    recorder = Recorder()
    pm = _pm(recorder)
    settings = _settings(tmp_path, agency="agency")
    Agency.refuse_recalls = True
    opened = _dispute("open", "D-9", account_id=account, invoice_id=invoice, reason="quality_of_service")
    first = intake(store, pm, settings, [opened], NOW)
    assert (first.disputes_opened, first.recalled) == (1, 0)
    item = store.outbox_get(f"recall:{placement}")
    assert item.status is OutboxStatus.FAILED and item.next_retry_at is not None
    assert store.get_placement(placement).status is PlacementStatus.PLACED

    Agency.refuse_recalls = False
    early = intake(store, pm, settings, [], item.next_retry_at - dt.timedelta(seconds=1))
    assert early.recalled == 0
    later = intake(store, pm, settings, [], item.next_retry_at)
    assert later.recalled == 1
    assert store.get_placement(placement).status is PlacementStatus.RECALLED
    assert Agency.recalls == [(placement, "dispute D-9")]
    assert recorder.kinds() == ["dispute_opened", "account_recalled"]
    assert intake(store, pm, settings, [], item.next_retry_at + dt.timedelta(days=1)).recalled == 0


def test_contact_records_let_an_open_dispute_see_its_patient_was_met(
    store: SQLiteStore, tmp_path: Path
) -> None:
    account, invoice, _ = _placed(store)
    pm = _pm()
    settings = _settings(tmp_path)
    intake(
        store,
        pm,
        settings,
        [
            _dispute(
                "open",
                "D-4",
                account_id=account,
                invoice_id=invoice,
                reason="billing_error",
                at=NOW.isoformat(),
            )
        ],
        NOW,
    )
    before = ContactRecord(
        "C-0",
        account,
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.DISPUTE,
        started_at=NOW - dt.timedelta(days=1),
        answered_at=NOW - dt.timedelta(days=1),
        ended_at=NOW - dt.timedelta(days=1, minutes=-5),
        outcome=ContactOutcome.CONVERSATION,
    )
    call = ContactRecord(
        "C-1",
        account,
        ContactChannel.PHONE,
        Direction.OUTBOUND,
        Topic.DISPUTE,
        started_at=NOW + dt.timedelta(hours=1),
        answered_at=NOW + dt.timedelta(hours=1, seconds=20),
        ended_at=NOW + dt.timedelta(hours=1, minutes=6),
        outcome=ContactOutcome.CONVERSATION,
        invoice_id=invoice,
    )
    report = intake(store, pm, settings, [], NOW + dt.timedelta(hours=2), contacts=[before, call])
    assert report.disputes_met == 1
    met = store.get_dispute("D-4")
    assert met.met_patient_at == NOW + dt.timedelta(hours=1, seconds=20)
    assert met.first_response_at == met.met_patient_at
    # on every later run the same records change nothing
    again = intake(store, pm, settings, [], NOW + dt.timedelta(days=1), contacts=[before, call])
    assert again.disputes_met == 0
    assert store.get_dispute("D-4") == met
    kinds = [r.kind for r in store.audit_records(subject_id=account)]
    assert kinds.count("dispute.patient_met") == 1


def test_execute_run_takes_contact_records(store: SQLiteStore, tmp_path: Path) -> None:
    account, invoice, _ = _placed(store)
    pm = _pm()
    settings = _settings(tmp_path)
    opened = _dispute(
        "open", "D-6", account_id=account, invoice_id=invoice, reason="billing_error", at=NOW.isoformat()
    )
    call = ContactRecord(
        "C-2",
        account,
        ContactChannel.EMAIL,
        Direction.OUTBOUND,
        Topic.DISPUTE,
        started_at=NOW + dt.timedelta(minutes=30),
        answered_at=NOW + dt.timedelta(minutes=30),
        ended_at=NOW + dt.timedelta(minutes=31),
        outcome=ContactOutcome.ANSWERED,
        invoice_id=invoice,
    )
    report = execute_run(store, NOW + dt.timedelta(hours=1), pm, settings, events=[opened], contacts=[call])
    assert report.intake is not None
    assert (report.intake.disputes_opened, report.intake.disputes_met) == (1, 1)
    assert report.hook_failures == ()
    assert store.get_dispute("D-6").met_patient_at == NOW + dt.timedelta(minutes=30)
    # the open dispute froze outreach on the invoice in the same run
    assert not [m for m in report.plan.messages if m.step.invoice_id == invoice]


def test_intake_refuses_a_resolution_beyond_the_levels_authority(store: SQLiteStore, tmp_path: Path) -> None:
    """A front-line resolution taken in as an event writes off nothing; the dispute stays open,
    the ledger and the processed-key are untouched, and the failure is reported."""
    account, invoice, _ = _placed(store)
    pm = _pm()
    settings = _settings(tmp_path)
    opened = _dispute(
        "open", "D-9", account_id=account, invoice_id=invoice, reason="billing_error", at=NOW.isoformat()
    )
    assert intake(store, pm, settings, [opened], NOW).disputes_opened == 1
    balance = store.ledger(account).invoice_balance(invoice)
    later = NOW + dt.timedelta(days=1)
    refused = [
        _dispute("resolve", "D-9", kind="write_off", amount=str(balance.amount), at=later.isoformat()),
        _dispute("resolve", "D-9", kind="discount", amount="0.01", at=later.isoformat()),
        _dispute("resolve", "D-9", kind="correction", amount="5.00", at=later.isoformat()),
    ]
    for event in refused:
        report = intake(store, pm, settings, [event], later)
        assert report.disputes_resolved == 0 and len(report.failures) == 1
        assert "FRONT_LINE may not grant" in report.failures[0]
        assert store.get_dispute("D-9").is_open
        assert store.ledger(account).invoice_balance(invoice) == balance
    # the office manager may not write off either, nor discount more than is owed
    up = _dispute("escalate", "D-9", level="OFFICE_MANAGER", at=later.isoformat())
    assert intake(store, pm, settings, [up], later).failures == ()
    assert store.get_dispute("D-9").level.name == "OFFICE_MANAGER"
    write_off = _dispute("resolve", "D-9", kind="write_off", amount="1.00", at=later.isoformat())
    assert "escalate to PROVIDER" in intake(store, pm, settings, [write_off], later).failures[0]
    too_much = str(balance.amount + 1)
    over = _dispute("resolve", "D-9", kind="discount", amount=too_much, at=later.isoformat())
    assert "exceeds the balance" in intake(store, pm, settings, [over], later).failures[0]
    assert store.get_dispute("D-9").is_open
    assert store.ledger(account).invoice_balance(invoice) == balance
    # the creditor's own procedure (in the settings) governs: here the front desk holds authority
    from carecollect.disputes import EscalationLevel
    from carecollect.relief.disputes import DisputeProcedure, LevelAuthority

    generous = DisputeProcedure(
        (
            LevelAuthority(EscalationLevel.FRONT_LINE, "front desk"),
            LevelAuthority(EscalationLevel.OFFICE_MANAGER, "office manager", may_write_off=True),
        )
    )
    ok = intake(store, pm, _settings(tmp_path, dispute_procedure=generous), [write_off], later)
    assert (ok.disputes_resolved, ok.failures) == (1, ())
    assert store.ledger(account).invoice_balance(invoice) == balance - type(balance)("1.00", balance.currency)


def test_intake_writes_nothing_off_while_the_insurer_has_not_paid(store: SQLiteStore, tmp_path: Path) -> None:
    import attrs

    from carecollect.invoices import ClaimStatus, Insurance

    account, invoice, _ = _placed(store)
    with store.transaction():
        store.put_invoice(attrs.evolve(store.get_invoice(invoice), insurance=Insurance(ClaimStatus.PENDING)))
    pm, settings = _pm(), _settings(tmp_path)
    events = [
        _dispute(
            "open", "D-3", account_id=account, invoice_id=invoice, reason="billing_error", at=NOW.isoformat()
        ),
        _dispute("escalate", "D-3", level="PROVIDER", at=NOW.isoformat()),
    ]
    assert intake(store, pm, settings, events, NOW).failures == ()
    balance = store.ledger(account).invoice_balance(invoice)
    write_off = _dispute("resolve", "D-3", kind="write_off", amount="1.00", at=NOW.isoformat())
    report = intake(store, pm, settings, [write_off], NOW)
    assert report.disputes_resolved == 0 and "waits for its insurer" in report.failures[0]
    assert store.get_dispute("D-3").is_open and store.ledger(account).invoice_balance(invoice) == balance
