"""The run sends in batches: the spool outbox, channels that cannot de-duplicate, failed flushes."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import attrs

from carecollect.channels import Channel
from carecollect.outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStep
from carecollect.plugins.builtin.outbox import CAPABILITIES, OutboxChannel, spooled_message, spooled_messages
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.messaging import (
    ChannelCapabilities,
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
)
from carecollect.portfolio import load_portfolio
from carecollect.remittance import CLAIM_RECORD
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.sending import _Fresh, message_id
from carecollect.run.settings import RunSettings
from carecollect.store.base import AccountSnapshot, OutboxStatus
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


def _store(tmp: Path) -> SQLiteStore:
    store = SQLiteStore(tmp / "run.db")
    load_portfolio(store, 80, seed=3, as_of=NOW.date())
    return store


def _run(store: SQLiteStore, name: str, factory: Any, caps: ChannelCapabilities, **config: str) -> Any:
    class Plugin:
        @hookimpl
        def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
            return [MessageChannelDescriptor(name, caps, factory)]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, name), channel_config={name: config}, send_batch=5
    )
    return execute_run(store, NOW, pm, settings)


def test_the_spool_holds_every_message_once_in_batch_files(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        planned = {m.key for m in plan_run(store, NOW, RunSettings()).messages}
        report = _run(
            store, "spooling", OutboxChannel, CAPABILITIES, folder=str(tmp_path / "out"), layout="spool"
        )
        assert report.sent == len(planned) > 10
        assert {store.outbox_get(k).status for k in planned} == {OutboxStatus.DONE}
    spool = sorted((tmp_path / "out" / "spool").iterdir())
    assert len(spool) > 1 and not any(p.name.startswith(".") for p in spool)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["spool"]  # no file per message
    headers = [json.loads(p.read_text(encoding="utf-8").splitlines()[0]) for p in spool]
    assert [h["batch"] for h in headers] == [p.name for p in spool]
    ids = [i for h in headers for i in h["ids"]]
    assert sorted(ids) == sorted(message_id(k) for k in planned)
    messages = list(spooled_messages(tmp_path / "out"))
    assert sorted(m.id for m in messages) == sorted(ids)
    email = next(m for m in messages if m.channel is Channel.EMAIL)
    assert email.name.endswith(".eml") and b"Message-ID:" in email.content
    assert spooled_message(tmp_path / "out", email.id) == email


def test_a_message_handed_over_again_is_read_back_once(tmp_path: Path) -> None:
    channel = OutboxChannel({"folder": str(tmp_path), "layout": "spool"})
    msg = OutgoingMessage(id="M-1", channel=Channel.SMS, recipient="+4790000000", body="Due 1 April.")
    channel.send(msg)
    channel.flush()
    again = OutboxChannel({"folder": str(tmp_path), "layout": "spool"})  # the rerun after a crash
    again.send(msg)
    again.flush()
    assert len(list((tmp_path / "spool").iterdir())) == 2
    assert [m.id for m in spooled_messages(tmp_path)] == ["M-1"]


class _Checking(OutboxChannel):
    """Cannot de-duplicate: checks that the run recorded its previous message before the next."""

    capabilities = ChannelCapabilities(channels=frozenset(Channel))
    seen: ClassVar[list[bool]] = []

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__(settings)
        self._db = settings["db"]
        self._last: str | None = None

    def send(self, message: OutgoingMessage) -> Receipt:
        if self._last is not None:
            with closing(SQLiteStore(self._db)) as other:  # another connection: only what is committed
                done = {message_id(i.key) for i in _done(other)}
            self.seen.append(self._last in done)
        self._last = message.id
        return super().send(message)


def _done(store: SQLiteStore) -> list[Any]:
    with closing(store._db.execute("SELECT key FROM outbox WHERE status = 'done'")) as cur:
        return [store.outbox_get(r[0]) for r in cur.fetchall()]


def test_a_channel_that_cannot_deduplicate_keeps_the_window_to_one_message(tmp_path: Path) -> None:
    _Checking.seen = []
    with closing(_store(tmp_path)) as store:
        report = _run(
            store,
            "checking",
            _Checking,
            _Checking.capabilities,
            folder=str(tmp_path / "out"),
            db=str(tmp_path / "run.db"),
        )
    assert report.sent > 10 and len(_Checking.seen) == report.sent - 1
    assert all(_Checking.seen)


class _Broken(OutboxChannel):
    def flush(self) -> None:
        raise OSError("disk full")


def test_a_batch_the_channel_could_not_make_durable_is_recorded_failed_not_done(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        report = _run(store, "broken", _Broken, CAPABILITIES, folder=str(tmp_path / "out"), layout="spool")
        assert report.sent == 0 and report.failed > 10
        statuses = {i.status for i in _all(store)}
        assert OutboxStatus.DONE not in statuses
        assert store.verify_audit().ok


def _all(store: SQLiteStore) -> list[Any]:
    with closing(store._db.execute("SELECT key FROM outbox")) as cur:
        return [store.outbox_get(r[0]) for r in cur.fetchall()]


class _OptOutOnFirst(OutboxChannel):
    """After its first send, every patient opts out of everything, written by another connection."""

    capabilities = CAPABILITIES

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__(settings)
        self._db = settings["db"]
        self._sent = 0

    def send(self, message: OutgoingMessage) -> Receipt:
        receipt = super().send(message)
        self._sent += 1
        if self._sent == 1:
            with closing(SQLiteStore(self._db)) as other, other.transaction():
                for patient in list(other.patients()):
                    points = tuple(attrs.evolve(p, opted_out_at=NOW) for p in patient.contact_points)
                    other.put_patient(attrs.evolve(patient, contact_points=points))
        return receipt


def test_an_opt_out_written_by_another_connection_wins_inside_a_batch(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        planned = plan_run(store, NOW, RunSettings()).messages
        pm_settings = {"folder": str(tmp_path / "out"), "db": str(tmp_path / "run.db")}

        class Plugin:
            @hookimpl
            def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
                return [MessageChannelDescriptor("optout", CAPABILITIES, _OptOutOnFirst)]

        pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
        settings = RunSettings(
            channel_plugins=dict.fromkeys(Channel, "optout"),
            channel_config={"optout": pm_settings},
            send_batch=10_000,  # the whole run is one batch
        )
        report = execute_run(store, NOW, pm, settings)
    assert len(planned) > 10
    assert report.sent == 1 and report.suppressed == len(planned) - 1


def test_messages_handed_over_in_the_batch_are_laid_over_every_read(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        snap = next(iter(store.iter_account_snapshots(batch_size=10)))
        fresh = _Fresh(store)
        step = OutreachStep(
            "S-new",
            snap.account.id,
            snap.invoices[0].id,
            OutreachPurpose.STATEMENT,
            (Channel.EMAIL,),
            NOW,
            "statement",
        )
        attempt = ContactAttempt(
            "S-new@x", step.id, snap.account.id, step.invoice_id, Channel.EMAIL, NOW, AttemptOutcome.DELIVERED
        )
        assert fresh.get(snap.account.id) == snap
        fresh.handed(step, attempt)
        assert attempt in fresh.get(snap.account.id).attempts  # the held account
        with closing(SQLiteStore(tmp_path / "run.db")) as other, other.transaction():
            other.audit_append("news", snap.account.id, {}, at=NOW)  # another connection commits
        again = fresh.get(snap.account.id)  # read again, the unrecorded send laid over it
        assert attempt in again.attempts and step in again.steps
        assert store.attempts_for(snap.account.id) == snap.attempts  # nothing written yet
        assert fresh.get(snap.account.id) is again  # nothing written since: no read
        second = attrs.evolve(attempt, id="S-new@y")
        fresh.handed(step, second)  # a second channel's message of the step
        assert {attempt, second} <= set(fresh.get(snap.account.id).attempts)
        fresh.withdrawn(step, second)  # its channel refused it: it stops counting, the first stays
        held = fresh.get(snap.account.id)
        assert attempt in held.attempts and second not in held.attempts and step in held.steps
        fresh.withdrawn(step, attempt)  # the step's last message withdrawn: the step as stored
        assert fresh.get(snap.account.id) == snap


def test_the_outbox_commands_list_and_show_the_spool(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from carecollect.cli.commands import main

    channel = OutboxChannel({"folder": str(tmp_path), "layout": "spool"})
    for n in (1, 2):
        channel.send(
            OutgoingMessage(id=f"M-{n}", channel=Channel.SMS, recipient="+4790000000", body=f"Bill {n}.")
        )
    channel.flush()
    listed = CliRunner().invoke(main, ["outbox", "list", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [["M-1", "sms"], ["M-2", "sms"]]
    shown = CliRunner().invoke(main, ["outbox", "show", str(tmp_path), "M-2"])
    assert shown.exit_code == 0 and shown.stdout.endswith("\n\nBill 2.\n")
    missing = CliRunner().invoke(main, ["outbox", "show", str(tmp_path), "M-9"])
    assert missing.exit_code == 1 and "M-9" in missing.output


def _counting(store: SQLiteStore) -> list[str]:
    """The ids of the accounts the store reads one by one from now on."""
    reads: list[str] = []
    one = store.account_snapshot

    def counted(account_id: str) -> AccountSnapshot:
        reads.append(account_id)
        return one(account_id)

    store.account_snapshot = counted  # type: ignore[method-assign]
    return reads


def test_a_batchs_accounts_are_read_together_and_again_only_once_written(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        snaps = list(store.iter_account_snapshots(batch_size=10))[:5]
        ids = [s.account.id for s in snaps]
        reads = _counting(store)
        fresh = _Fresh(store)
        fresh.prefetch(ids)
        assert [fresh.get(i) for i in ids] == snaps and reads == []  # the batch read serves each
        with closing(SQLiteStore(tmp_path / "run.db")) as other:
            other.audit_append("news", ids[0], {}, at=NOW)  # another connection commits, to no account
            assert fresh.get(ids[0]) == snaps[0] and reads == []  # (another worker's records)
            patient = snaps[1].patient
            opted_out = attrs.evolve(
                patient,
                contact_points=tuple(attrs.evolve(c, opted_out_at=NOW) for c in patient.contact_points),
            )
            other.put_patient(opted_out)  # an opt-out that arrives during the run
        got = fresh.get(ids[1])
        assert reads == [ids[1]] and got.patient == opted_out  # that account is read again, and wins
        assert fresh.get(ids[2]) == snaps[2] and reads == [ids[1]]  # the others are not
        attempt = ContactAttempt("AT-own", None, ids[3], None, Channel.EMAIL, NOW, AttemptOutcome.DELIVERED)
        store.add_attempts([attempt])  # the run's own records
        fresh.recorded()
        assert attempt in fresh.get(ids[3]).attempts and reads == [ids[1], ids[3]]
        assert fresh.get(ids[4]) == snaps[4] and reads == [ids[1], ids[3]]


def test_a_batch_uses_the_planners_reads_whose_version_still_holds(tmp_path: Path) -> None:
    """The planner read some accounts (each with its version read before it); the batch reads
    only the others, and those written since the planner's read."""
    with closing(_store(tmp_path)) as store:
        snaps = list(store.iter_account_snapshots(batch_size=10))[:4]
        ids = [s.account.id for s in snaps]
        planned = store.account_versions(ids)
        reads = {i: (s, planned[i]) for i, s in zip(ids[:3], snaps, strict=False)}
        store.add_attempts(  # written after the planner's read of ids[1]
            [ContactAttempt("AT-late", None, ids[1], None, Channel.EMAIL, NOW, AttemptOutcome.DELIVERED)]
        )
        batch: list[list[str]] = []
        many = store.account_snapshots

        def counted(account_ids: Any) -> Any:
            batch.append(list(account_ids))
            return many(account_ids)

        store.account_snapshots = counted  # type: ignore[method-assign]
        one = _counting(store)
        fresh = _Fresh(store)
        fresh.prefetch(ids, reads)
        assert batch == [[ids[1], ids[3]]]  # the planner's reads of ids[0] and ids[2] are used
        assert fresh.get(ids[0]) is snaps[0] and fresh.get(ids[2]) is snaps[2]
        assert any(a.id == "AT-late" for a in fresh.get(ids[1]).attempts)  # read again: the write is in
        assert fresh.get(ids[3]) == snaps[3] and one == []


def test_without_account_versions_any_write_reads_every_account_again(tmp_path: Path) -> None:
    """A store with a change token and no versions: whatever was written, nothing held is used."""

    class NoVersions:
        def __init__(self, store: SQLiteStore) -> None:
            self._store = store

        def __getattr__(self, name: str) -> Any:
            if name == "account_versions":
                raise AttributeError(name)
            return getattr(self._store, name)

    with closing(_store(tmp_path)) as store:
        snaps = list(store.iter_account_snapshots(batch_size=10))[:3]
        ids = [s.account.id for s in snaps]
        reads = _counting(store)
        fresh = _Fresh(NoVersions(store))  # type: ignore[arg-type]
        fresh.prefetch(ids)
        assert fresh.get(ids[0]) == snaps[0] and reads == []
        with closing(SQLiteStore(tmp_path / "run.db")) as other:
            other.audit_append("news", ids[0], {}, at=NOW)
        assert [fresh.get(i) for i in ids] == snaps and reads == ids
        assert fresh.get(ids[2]) == snaps[2] and reads == ids  # read again, then used again


def test_a_statements_claim_records_are_read_with_the_batch_and_again_after_any_write(tmp_path: Path) -> None:
    with closing(_store(tmp_path)) as store:
        snaps = list(store.iter_account_snapshots(batch_size=10))[:3]
        invoice = snaps[0].invoices[0].id
        early = store.audit_append(CLAIM_RECORD, invoice, {"invoice": invoice, "n": 1}, at=NOW)
        statement = OutreachStep(
            "S-c", snaps[0].account.id, invoice, OutreachPurpose.STATEMENT, (Channel.EMAIL,), NOW, "statement"
        )
        fresh = _Fresh(store)
        fresh.prefetch([s.account.id for s in snaps])
        fresh.get(snaps[0].account.id)
        assert fresh.claim_records(statement) == [early]  # read with the batch
        elsewhere = attrs.evolve(statement, invoice_id="INV-not-in-the-batch")
        assert fresh.claim_records(elsewhere) is None  # not read ahead: read when needed
        with closing(SQLiteStore(tmp_path / "run.db")) as other, other.transaction():
            other.audit_append(CLAIM_RECORD, invoice, {"invoice": invoice, "n": 2}, at=NOW)
        fresh.get(snaps[0].account.id)
        assert fresh.claim_records(statement) is None  # written since the batch read: read again
        late = [r.data["n"] for r in store.audit_records(subject_id=invoice, kinds={CLAIM_RECORD})]
        assert late == [1, 2]
