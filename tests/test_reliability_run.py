"""Reliability of the daily run in one process: replays, failing channels, news that arrives mid-run.

Every test runs the real :func:`~carecollect.run.execute.execute_run` on a real
SQLite file with a small synthetic portfolio, through channel and agency
plugins registered with the real plugin manager. The test channels wrap the
built-in file outbox, so a delivery is a file in a folder and can be counted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from carecollect.channels import Channel
from carecollect.disputes import Dispute, DisputeReason
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.outreach import AttemptOutcome, OutreachPurpose, OutreachStatus
from carecollect.patients import opt_out
from carecollect.placements import AgencyPlacement, PlacementStatus, Remittance
from carecollect.plugins.agencies import (
    AgencyAccountStatus,
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
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store.base import OutboxStatus, next_retry_at
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


def _message_id(key: str) -> str:
    return key.replace(":", "_").replace("#", "-")


def _delivered(folder: Path) -> Counter[str]:
    if not folder.exists():
        return Counter()
    return Counter(p.stem for p in folder.iterdir() if not p.name.startswith("."))


# -- test plugins ---------------------------------------------------------------------------------


class Recording(OutboxChannel):
    """The file outbox, plus a list of every raw ``send`` call (class-level, reset per test)."""

    calls: ClassVar[list[str]] = []

    def send(self, message: OutgoingMessage) -> Receipt:
        Recording.calls.append(message.id)
        return super().send(message)


class HalfFailing(Recording):
    """Fails every other call: ``RETRY_LATER`` and ``OSError`` by turns; delivers the rest."""

    turn: ClassVar[int] = 0
    failures: ClassVar[list[str]] = []

    def send(self, message: OutgoingMessage) -> Receipt:
        HalfFailing.turn += 1
        if HalfFailing.turn % 2 == 0:
            HalfFailing.failures.append(message.id)
            Recording.calls.append(message.id)
            if HalfFailing.turn % 4 == 0:
                raise ConnectionResetError("provider hung up")
            return Receipt(message.id, ReceiptStatus.RETRY_LATER, detail="rate limited")
        return super().send(message)


class Meddling(Recording):
    """On its first send, writes news into the store through its own connection (as a webhook would)."""

    news: ClassVar[list[Any]] = []
    #: write the news when sending this message id (``None``: on the first send)
    on_message: ClassVar[str | None] = None
    #: write it through this store (the run's own connection) instead of a connection of its own
    through: ClassVar[SQLiteStore | None] = None

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.db = settings["db"]

    def send(self, message: OutgoingMessage) -> Receipt:
        if Meddling.news and Meddling.on_message in (None, message.id):
            other = Meddling.through or SQLiteStore(self.db)
            try:
                with other.transaction():
                    for item in Meddling.news:
                        if isinstance(item, Dispute):
                            other.put_dispute(item)
                        else:
                            other.put_patient(item)
            finally:
                if Meddling.through is None:
                    other.close()
            Meddling.news = []
        return super().send(message)


class FakeAgency:
    """An agency connector test double: its remittance file holds what the test put there."""

    capabilities = AgencyConnectorCapabilities(
        countries={"US", "NO", "DE", "BG"}, currencies={"USD", "EUR", "NOK"}
    )
    remittances: ClassVar[list[AgencyRemittance]] = []
    updates: ClassVar[list[AgencyStatusUpdate]] = []
    placed: ClassVar[list[str]] = []

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings

    def send_pre_placement_notice(self, notice: PrePlacementNotice) -> AgencyReceipt:
        return AgencyReceipt(True, "N-1")

    def place(self, request: PlacementRequest) -> AgencyReceipt:
        FakeAgency.placed.append(request.placement_id)
        return AgencyReceipt(True, f"AG-{request.placement_id}")

    def recall(self, placement_id: str, *, reason: str, at: dt.datetime) -> AgencyReceipt:
        return AgencyReceipt(True)

    def read_status_updates(self, since: dt.datetime) -> Sequence[AgencyStatusUpdate]:
        return list(FakeAgency.updates)

    def read_remittances(self, since: dt.datetime) -> Sequence[AgencyRemittance]:
        return list(FakeAgency.remittances)


class Plugin:
    """Registers the test channels and the agency double."""

    @hookimpl
    def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
        return [
            MessageChannelDescriptor("recording", CAPABILITIES, Recording),
            MessageChannelDescriptor("half-failing", CAPABILITIES, HalfFailing),
            MessageChannelDescriptor("meddling", CAPABILITIES, Meddling),
        ]

    @hookimpl
    def carecollect_agency_connectors(self) -> list[AgencyConnectorDescriptor]:
        return [AgencyConnectorDescriptor("fake-agency", FakeAgency.capabilities, FakeAgency)]


@pytest.fixture(autouse=True)
def _reset_doubles() -> None:
    Recording.calls = []
    HalfFailing.turn = 0
    HalfFailing.failures = []
    Meddling.news = []
    Meddling.on_message = None
    Meddling.through = None
    FakeAgency.remittances = []
    FakeAgency.updates = []
    FakeAgency.placed = []


@pytest.fixture
def pm() -> PluginManager:
    return make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 60, seed=3, as_of=NOW.date())
    yield s
    s.close()


def _settings(tmp_path: Path, plugin: str = "recording", **kw: Any) -> RunSettings:
    config = {"folder": str(tmp_path / "out"), "db": str(tmp_path / "run.db")}
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, plugin),
        channel_config={plugin: config, "outbox": config},
        **kw,
    )


def _reply(event_id: str, sender: str, text: str, channel: str = "sms") -> InboundEvent:
    body = json.dumps({"id": event_id, "from": sender, "text": text, "channel": channel}).encode()
    return InboundEvent(InboundKind.REPLY, "outbox", body)


def _report(provider_id: str, state: str) -> InboundEvent:
    body = json.dumps({"id": provider_id, "state": state}).encode()
    return InboundEvent(InboundKind.DELIVERY_REPORT, "outbox", body)


def _audit_kinds(store: SQLiteStore, subject: str | None = None) -> Counter[str]:
    return Counter(r.kind for r in store.audit_records(subject_id=subject))


# -- 2. duplicate and out-of-order webhooks -----------------------------------------------------------


def test_a_stop_reply_twice_is_one_opt_out(store: SQLiteStore, pm: PluginManager, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    plan = plan_run(store, NOW, settings)
    # a patient the run would e-mail: their STOP (sent twice by the provider) must win
    target = next(m for m in plan.messages if m.channel is Channel.EMAIL)
    patient = store.account_snapshot(target.step.account_id).patient
    address = patient.points(Channel.EMAIL)[0].address
    stop = _reply("in-77", address, "STOP", channel="email")

    first = intake(store, pm, settings, [stop, stop], NOW)
    assert (first.processed, first.duplicates, first.opt_outs) == (1, 1, 1)
    again = intake(store, pm, settings, [stop], NOW + dt.timedelta(hours=1))
    assert (again.processed, again.duplicates, again.opt_outs) == (0, 1, 0)

    after = store.get_patient(patient.id)
    assert all(p.opted_out_at == NOW for p in after.points(Channel.EMAIL))
    assert _audit_kinds(store, patient.id)["opt_out"] == 1
    # and the run sends that patient no e-mail
    report = execute_run(store, NOW, pm, settings)
    assert report.failed == 0
    sent = _delivered(tmp_path / "out")
    assert _message_id(target.key) not in sent
    assert not any(
        _message_id(m.key) in sent
        for m in plan.messages
        if m.step.account_id == target.step.account_id and m.channel is Channel.EMAIL
    )
    assert store.verify_audit().ok


def test_delivery_reports_before_after_and_replayed(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    plan = plan_run(store, NOW, settings)
    msg = plan.messages[0]
    name = f"{_message_id(msg.key)}.{'eml' if msg.channel is Channel.EMAIL else 'txt'}"
    # a report that arrives before the message was sent (out of order) is recorded and harms nothing
    early = execute_run(store, NOW, pm, settings, events=[_report(name, "pending")])
    assert early.intake is not None
    assert (early.intake.delivery_reports, early.intake.failures) == (1, ())
    assert early.sent == len(plan.messages)
    assert store.outbox_get(msg.key).result["provider_message_id"] == name

    later = NOW + dt.timedelta(hours=2)
    reports = [_report(name, "delivered"), _report(name, "delivered"), _report(name, "pending")]
    after = intake(store, pm, settings, reports, later)
    # the delivered report counts once; the replayed one and the late, stale "pending" are duplicates
    assert (after.delivery_reports, after.duplicates) == (1, 2)
    states = [r.data["state"] for r in store.audit_records(subject_id=name) if r.kind == "delivery_report"]
    assert states == ["pending", "delivered"]
    # nothing is sent again because of the reports
    rerun = execute_run(store, later, pm, settings, events=reports)
    assert rerun.sent == 0
    assert rerun.intake is not None and rerun.intake.duplicates == 3
    assert Counter(Recording.calls) == Counter({_message_id(m.key): 1 for m in plan.messages})
    assert store.verify_audit().ok


def test_malformed_events_are_reported_and_the_run_goes_on(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    planned = len(plan_run(store, NOW, settings).messages)
    junk = [
        InboundEvent(InboundKind.REPLY, "outbox", b"\xff\xfe not json"),
        InboundEvent(InboundKind.REPLY, "outbox", b"[1, 2]"),
        InboundEvent(InboundKind.DELIVERY_REPORT, "outbox", b'{"id": "x.txt", "state": "exploded"}'),
        InboundEvent(InboundKind.DELIVERY_REPORT, "outbox", b"{}"),
        InboundEvent(InboundKind.REPLY, "no-such-channel", b"{}"),
    ]
    report = execute_run(store, NOW, pm, settings, events=junk)
    assert report.intake is not None
    assert len(report.intake.failures) == len(junk)
    assert report.intake.processed == 0
    assert report.sent == planned


def _placed_account(store: SQLiteStore) -> tuple[str, str, Money]:
    """Place the first account with an open balance with the fake agency; returns (account, placement, balance)."""
    for snap in store.iter_account_snapshots(batch_size=100):
        if snap.ledger.balance.is_positive() and snap.ledger.open_invoices():
            placement = AgencyPlacement(
                f"PLC-{snap.account.id}",
                snap.account.id,
                "fake-agency",
                snap.ledger.balance,
                status=PlacementStatus.PLACED,
                placed_at=NOW - dt.timedelta(days=40),
                invoice_ids=tuple(snap.ledger.open_invoices()),
            )
            with store.transaction():
                store.put_placement(placement)
            return snap.account.id, placement.id, snap.ledger.balance
    raise AssertionError("no account with an open balance")


def test_a_duplicated_remittance_file_changes_nothing(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    account, placement, balance = _placed_account(store)
    part = Money.from_minor(max(1, balance.minor_units // 3), balance.currency)
    rem = AgencyRemittance(placement, Remittance("R-1", part, NOW - dt.timedelta(days=2)))
    # the agency's file lists the line twice, and is read again on every run
    FakeAgency.remittances = [rem, rem]
    settings = _settings(tmp_path, agency="fake-agency")
    entries_before = len(store.ledger(account).entries)

    first = intake(store, pm, settings, [], NOW)
    assert (first.remittances, first.duplicates, first.failures) == (1, 1, ())
    book = store.ledger(account)
    assert len(book.entries) > entries_before
    assert book.balance == balance - part
    assert len(store.get_placement(placement).remittances) == 1

    snapshot = (store.ledger(account).entries, store.get_placement(placement), _audit_kinds(store))
    second = intake(store, pm, settings, [], NOW + dt.timedelta(days=1))
    assert (second.remittances, second.duplicates) == (0, 2)
    assert (store.ledger(account).entries, store.get_placement(placement), _audit_kinds(store)) == snapshot
    # the ledger still balances
    total = {k: book.sum_of(k).minor_units for k in EntryKind}
    assert total[EntryKind.CHARGE] + total[EntryKind.REFUND] == (
        total[EntryKind.PATIENT_PAYMENT]
        + total[EntryKind.INSURANCE_PAYMENT]
        + total[EntryKind.ADJUSTMENT]
        + total[EntryKind.WRITE_OFF]
        + book.balance.minor_units
    )
    assert store.verify_audit().ok


# -- 3. a channel that fails half of its sends ---------------------------------------------------------


def test_a_channel_failing_half_its_sends_retries_with_back_off(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, "half-failing", max_attempts=12)
    plan = plan_run(store, NOW, settings)
    planned = {_message_id(m.key): m.key for m in plan.messages}
    assert len(planned) >= 40

    first = execute_run(store, NOW, pm, settings)
    failed_ids = set(HalfFailing.failures)
    # half failed (by turns: RETRY_LATER and a transport error); the others went on
    assert first.failed == len(failed_ids) == len(planned) // 2
    assert first.sent == len(planned) - len(failed_ids)
    assert set(_delivered(tmp_path / "out")) == set(planned) - failed_ids
    for mid in failed_ids:
        item = store.outbox_get(planned[mid])
        assert item.status is OutboxStatus.FAILED
        assert item.attempts == 1
        assert item.next_retry_at == next_retry_at(1, NOW) == NOW + dt.timedelta(minutes=5)
        assert item.last_error in ("channel said retry_later", "transport: ConnectionResetError")

    # before the back-off has run out: nothing is tried again
    calls = len(Recording.calls)
    early = execute_run(store, NOW + dt.timedelta(minutes=4), pm, settings)
    assert early.sent == 0
    assert early.deferred_retry == len(failed_ids)
    assert len(Recording.calls) == calls

    # later runs, each after the back-off: the failing ones are retried until all are through
    at = NOW
    for _ in range(10):
        open_items = [k for k in planned.values() if store.outbox_get(k).status is not OutboxStatus.DONE]
        if not open_items:
            break
        retry = [store.outbox_get(k).next_retry_at for k in open_items]
        at = max(t for t in retry if t is not None) + dt.timedelta(seconds=1)
        later = execute_run(store, at, pm, settings)
        # a step that fell due since (the day goes on) is planned and sent too
        planned.update({_message_id(m.key): m.key for m in later.plan.messages})
    assert at - NOW < dt.timedelta(hours=12)  # still the same day's business

    delivered = _delivered(tmp_path / "out")
    assert set(delivered) == set(planned)
    assert set(delivered) >= {_message_id(m.key) for m in plan.messages}
    assert all(n == 1 for n in delivered.values())
    # a key is handed over once per failure plus the delivery, never after it was done
    calls_by_id = Counter(Recording.calls)
    fails_by_id = Counter(HalfFailing.failures)
    assert all(calls_by_id[m] == fails_by_id[m] + 1 for m in planned)
    for key in planned.values():
        item = store.outbox_get(key)
        assert item.status is OutboxStatus.DONE
        assert item.attempts == fails_by_id[_message_id(key)] + 1
    # every step is recorded sent, one attempt per key
    snaps = list(store.iter_account_snapshots())
    assert Counter(a.id.split("@")[0] for s in snaps for a in s.attempts) == Counter(planned.values())
    steps = {st.id: st for s in snaps for st in s.steps}
    assert all(steps[m.step.id].status is OutreachStatus.SENT for m in plan.messages)
    assert store.outbox_due(at + dt.timedelta(days=30)) == []
    assert store.verify_audit().ok


# -- 4. an opt-out or a dispute that arrives during a run wins --------------------------------------------


def test_news_arriving_mid_run_wins_over_messages_not_yet_sent(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, "meddling")
    plan = plan_run(store, NOW, settings)
    order = sorted({m.step.account_id for m in plan.messages})
    first_account = order[0]
    # an e-mail to a later account (its patient opts out of e-mail mid-run) ...
    emailed = next(
        m for m in plan.messages if m.channel is Channel.EMAIL and m.step.account_id != first_account
    )
    # ... and a message to another later account (its patient disputes the invoice mid-run); on a
    # portfolio without history every first message is the statement, which a dispute holds too
    others = [
        m
        for m in reversed(plan.messages)
        if m.step.account_id not in (first_account, emailed.step.account_id)
    ]
    disputed = next((m for m in others if m.step.purpose is not OutreachPurpose.STATEMENT), others[0])
    patient = store.account_snapshot(emailed.step.account_id).patient
    opted, _ = opt_out(patient, Channel.EMAIL, at=NOW)
    dispute = Dispute(
        "D-MIDRUN", disputed.step.account_id, disputed.step.invoice_id, DisputeReason.BILLING_ERROR, NOW
    )
    Meddling.news = [opted, dispute]

    report = execute_run(store, NOW, pm, settings)
    delivered = _delivered(tmp_path / "out")
    suppressed_keys = {
        m.key
        for m in plan.messages
        if (m.step.account_id == emailed.step.account_id and m.channel is Channel.EMAIL)
        or m.step.invoice_id == disputed.step.invoice_id
    }
    assert emailed.key in suppressed_keys and disputed.key in suppressed_keys
    for key in suppressed_keys:
        assert _message_id(key) not in delivered
        item = store.outbox_get(key)
        assert item.status is OutboxStatus.FAILED
        assert item.last_error is not None and item.last_error.startswith("suppressed:")
    assert report.suppressed == len(suppressed_keys)
    assert set(delivered) == {_message_id(m.key) for m in plan.messages} - {
        _message_id(k) for k in suppressed_keys
    }
    kinds = [r.data["key"] for r in store.audit_records() if r.kind == "message.suppressed"]
    assert sorted(kinds) == sorted(suppressed_keys)

    # the next day's run does not send them either
    nxt = execute_run(store, NOW + dt.timedelta(days=1), pm, settings)
    again = _delivered(tmp_path / "out")
    assert not {_message_id(k) for k in suppressed_keys} & set(again)
    assert nxt.failed == 0
    assert store.verify_audit().ok


@pytest.mark.parametrize("news", ["opt_out", "dispute"])
@pytest.mark.parametrize("connection", ["another", "the run's own"])
def test_news_between_two_messages_of_one_account_wins(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path, news: str, connection: str
) -> None:
    # The run re-uses the account it read for a message for the account's next message only when
    # nothing was written since (a change token); news written while the first one is sent,
    # through another connection or through the run's own, must still hold the later ones back.
    settings = _settings(tmp_path, "meddling")
    plan = plan_run(store, NOW, settings)
    by_account: dict[str, list[Any]] = {}
    for m in plan.messages:
        by_account.setdefault(m.step.account_id, []).append(m)
    first, *later = next(
        ms
        for ms in by_account.values()
        if len(ms) >= 3 and any(m.channel is not ms[0].channel for m in ms[1:])
    )
    target = next(m for m in later if m.channel is not first.channel)
    if news == "opt_out":
        patient = store.account_snapshot(first.step.account_id).patient
        opted, _ = opt_out(patient, target.channel, at=NOW)
        Meddling.news = [opted]
        held = {m.key for m in later if m.channel is target.channel}
    else:
        Meddling.news = [
            Dispute(
                "D-SAME", target.step.account_id, target.step.invoice_id, DisputeReason.BILLING_ERROR, NOW
            )
        ]
        held = {m.key for m in later if m.step.invoice_id == target.step.invoice_id}
    Meddling.on_message = _message_id(first.key)
    Meddling.through = store if connection == "the run's own" else None

    report = execute_run(store, NOW, pm, settings)
    delivered = _delivered(tmp_path / "out")
    assert Meddling.news == []  # the news was written, during the first message's send
    assert _message_id(first.key) in delivered
    assert held and not {_message_id(k) for k in held} & set(delivered)
    for key in held:
        assert store.outbox_get(key).last_error.startswith("suppressed:")  # type: ignore[union-attr]
    assert report.suppressed == len(held)
    assert set(delivered) == {_message_id(m.key) for m in plan.messages} - {_message_id(k) for k in held}
    assert store.verify_audit().ok


def test_agency_status_updates_keep_the_placement_and_the_disputes_true(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    """A reported dispute freezes the account like one raised with us; a return closes the placement; once each."""
    account, placement, _ = _placed_account(store)
    at = NOW - dt.timedelta(days=1)
    FakeAgency.updates = [
        AgencyStatusUpdate("U-1", placement, AgencyAccountStatus.IN_PROGRESS, at - dt.timedelta(days=5)),
        AgencyStatusUpdate("U-2", placement, AgencyAccountStatus.DISPUTED, at),
    ]
    settings = _settings(tmp_path, agency="fake-agency")
    first = intake(store, pm, settings, [], NOW)
    assert (first.agency_updates, first.duplicates, first.failures) == (2, 0, ())
    disputes = store.account_snapshot(account).disputes
    assert [(d.id, d.reason, d.is_open) for d in disputes if d.id == "AGY-U-2"] == [
        ("AGY-U-2", DisputeReason.AGENCY_REPORTED, True)
    ]
    # the dispute freezes every message about the account
    plan = plan_run(store, NOW, settings)
    assert not [m for m in plan.messages if m.step.account_id == account]
    # read again (the agency's file is read on every run): nothing changes
    snapshot = (store.account_snapshot(account).disputes, _audit_kinds(store))
    again = intake(store, pm, settings, [], NOW + dt.timedelta(hours=1))
    assert (again.agency_updates, again.duplicates) == (0, 2)
    assert (store.account_snapshot(account).disputes, _audit_kinds(store)) == snapshot
    # the agency gives the account back
    FakeAgency.updates = [AgencyStatusUpdate("U-3", placement, AgencyAccountStatus.RETURNED, NOW)]
    assert intake(store, pm, settings, [], NOW + dt.timedelta(hours=2)).agency_updates == 1
    returned = store.get_placement(placement)
    assert (returned.status, returned.closed_at) == (PlacementStatus.RETURNED, NOW)
    # an update for a placement we do not know is reported, never half-applied
    FakeAgency.updates = [AgencyStatusUpdate("U-4", "PLC-NOPE", AgencyAccountStatus.PAID, NOW)]
    odd = intake(store, pm, settings, [], NOW + dt.timedelta(hours=3))
    assert odd.agency_updates == 0 and len(odd.failures) == 1 and "PLC-NOPE" in odd.failures[0]
    assert intake(store, pm, settings, [], NOW + dt.timedelta(hours=4)).failures == odd.failures


class _FailedSends:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def carecollect_on_outreach_failed(self, step: Any, event: Any, reason: str) -> None:
        self.seen.append((step.id, reason))


def test_a_bounce_is_recorded_on_its_step_and_broadcast_once(store: SQLiteStore, tmp_path: Path) -> None:
    listener = _FailedSends()
    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin(), listener])
    settings = _settings(tmp_path)
    report = execute_run(store, NOW, pm, settings)
    assert report.sent > 0
    sent = next(
        att for snap in store.iter_account_snapshots() for att in snap.attempts if att.provider_message_id
    )
    bounce = InboundEvent(
        InboundKind.DELIVERY_REPORT,
        "outbox",
        json.dumps(
            {"id": sent.provider_message_id, "state": "undeliverable", "detail": "mailbox unknown"}
        ).encode(),
    )
    later = NOW + dt.timedelta(hours=1)
    first = intake(store, pm, settings, [bounce, bounce], later)
    assert (first.bounced, first.duplicates, first.failures) == (1, 1, ())
    assert listener.seen == [(sent.step_id, "undeliverable: mailbox unknown")]
    outcomes = [a.outcome for a in store.attempts_for(sent.account_id) if a.step_id == sent.step_id]
    assert outcomes.count(AttemptOutcome.BOUNCED) == 1
    # replayed later: nothing more
    again = intake(store, pm, settings, [bounce], later + dt.timedelta(hours=1))
    assert (again.bounced, again.duplicates) == (0, 1)
    assert len(listener.seen) == 1
    # a report about a message this store never sent is only audited
    stranger = _report("not-ours.txt", "undeliverable")
    assert intake(store, pm, settings, [stranger], later).bounced == 0
    assert store.verify_audit().ok
