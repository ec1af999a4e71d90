"""A backup is faithful: a run on the restored copy decides exactly what a run on the original decides.

Over generated stores with histories (a portfolio, daily runs on some days, disputes taken in),
``SQLiteStore.backup`` and ``restore_from`` (``carecollect backup`` / ``restore``) give a copy on
which the dry-run plan equals the original's at several later instants, and a real run sends the
same messages (nothing is sent again that the original already sent).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store.base import StoreError
from carecollect.store.sqlite import SQLiteStore

DAY0 = dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)


def _settings(folder: Path) -> RunSettings:
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"), channel_config={"outbox": {"folder": str(folder)}}
    )


def _dispute(store: SQLiteStore, n: int, at: dt.datetime) -> list[InboundEvent]:
    """A dispute on the ``n``-th account that has an open invoice (none if there is none)."""
    candidates = [s for s in store.iter_account_snapshots(batch_size=100) if s.ledger.open_invoices()]
    if not candidates:
        return []
    snap = candidates[n % len(candidates)]
    body = {
        "action": "open",
        "dispute_id": f"D-{n}-{at.date().isoformat()}",
        "account_id": snap.account.id,
        "invoice_id": snap.ledger.open_invoices()[0],
        "reason": "billing_error",
        "at": at.isoformat(),
    }
    return [InboundEvent(InboundKind.DISPUTE, "portal", json.dumps(body).encode())]


def _decisions(store: SQLiteStore, at: dt.datetime, folder: Path) -> object:
    plan = plan_run(store, at, _settings(folder))
    return (
        plan,
        sorted(m.key for m in plan.messages),
        [d.to_record() for d in plan.decisions],
    )


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(8, 24),
    history=st.lists(st.integers(0, 40), min_size=1, max_size=3, unique=True).map(sorted),
    disputes=st.lists(st.integers(0, 50), max_size=2),
    later=st.lists(st.integers(0, 90), min_size=1, max_size=3, unique=True),
)
def test_a_restored_backup_decides_exactly_what_the_original_decides(
    seed: int, size: int, history: list[int], disputes: list[int], later: list[int]
) -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with SQLiteStore(folder / "original.db") as original:
            load_portfolio(original, size, seed=seed, as_of=DAY0.date())
            for i, day in enumerate(history):
                at = DAY0 + dt.timedelta(days=day)
                events = _dispute(original, disputes[i], at) if i < len(disputes) else []
                execute_run(original, at, pm, _settings(folder / "sent"), events=events)
            assert original.counts()["audit_log"] > 0
            original.backup(folder / "backup.db")
            with SQLiteStore(folder / "backup.db") as backup, SQLiteStore(folder / "restored.db") as restored:
                restored.restore_from(backup)
                assert restored.verify_audit() == original.verify_audit()
                assert restored.counts() == original.counts()
                last = DAY0 + dt.timedelta(days=history[-1])
                for offset in sorted(later):
                    at = last + dt.timedelta(days=offset, hours=offset % 5)
                    assert _decisions(restored, at, folder / "a") == _decisions(original, at, folder / "a")
                # a real run on each: the same messages, and none the original had sent already
                at = last + dt.timedelta(days=min(later))
                mine = execute_run(original, at, pm, _settings(folder / "run-original"))
                theirs = execute_run(restored, at, pm, _settings(folder / "run-restored"))
                assert (mine.sent, mine.skipped_already_sent) == (theirs.sent, theirs.skipped_already_sent)
                sent_here = sorted(p.name for p in (folder / "run-original").glob("*"))
                assert sent_here == sorted(p.name for p in (folder / "run-restored").glob("*"))
                assert not set(sent_here) & {p.name for p in (folder / "sent").glob("*")}


def test_a_backup_never_overwrites_and_carries_no_run_lock(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as store:
        load_portfolio(store, 5, seed=1, as_of=DAY0.date())
        store.acquire_run_lock("run@here", 1, now=dt.datetime.now(dt.UTC))
        store.backup(tmp_path / "b.db")
        with pytest.raises(StoreError, match="exists"):
            store.backup(tmp_path / "b.db")
    with SQLiteStore(tmp_path / "b.db") as copy:
        assert copy.current_run_lock() is None
        assert copy.verify_audit().ok
    assert not (tmp_path / "b.db-wal").exists()


def test_backup_and_restore_commands(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--db", str(db)]).exit_code == 0
    with SQLiteStore(db) as store:
        load_portfolio(store, 12, seed=4, as_of=DAY0.date())
    assert runner.invoke(main, ["run", "--db", str(db), "--as-of", "2026-03-02"]).exit_code == 0
    done = runner.invoke(main, ["backup", "--db", str(db), str(tmp_path / "bk" / "copy.sqlite")])
    assert done.exit_code == 0, done.output
    assert "chain verified" in done.output and (tmp_path / "bk" / "copy.toml").exists()
    again = runner.invoke(main, ["backup", "--db", str(db), str(tmp_path / "bk" / "copy.sqlite")])
    assert again.exit_code == 1 and "never overwrites" in again.output
    new = tmp_path / "new.sqlite"
    back = runner.invoke(main, ["restore", "--db", str(new), str(tmp_path / "bk" / "copy.sqlite")])
    assert back.exit_code == 0, back.output
    refused = runner.invoke(main, ["restore", "--db", str(new), str(tmp_path / "bk" / "copy.sqlite")])
    assert refused.exit_code == 1 and "--force" in refused.output
    # a live run holds the target: not even --force replaces it
    with SQLiteStore(new) as store:
        store.acquire_run_lock("run@elsewhere", 7, now=dt.datetime.now(dt.UTC))
    locked = runner.invoke(
        main, ["restore", "--db", str(new), "--force", str(tmp_path / "bk" / "copy.sqlite")]
    )
    assert locked.exit_code == 1 and "another run is in progress" in locked.output
    # the restored copy's next run sends nothing the original sent (the first statements were sent)
    rerun = runner.invoke(main, ["run", "--db", str(new), "--as-of", "2026-03-02"])
    assert rerun.exit_code == 1  # still locked by the run elsewhere
    with SQLiteStore(new) as store:
        store.release_run_lock("run@elsewhere", 7)
    rerun = runner.invoke(main, ["run", "--db", str(new), "--as-of", "2026-03-02"])
    assert rerun.exit_code == 0, rerun.output
    with SQLiteStore(new) as store:
        sent = list(store.audit_records(kinds={"message.sent"}))
    with SQLiteStore(db) as store:  # nothing sent again: the restored history knew it was sent
        assert len(sent) == len(list(store.audit_records(kinds={"message.sent"}))) > 0
    garbage = tmp_path / "not-a-db.sqlite"
    garbage.write_text("hello", encoding="utf-8")
    bad = runner.invoke(main, ["restore", "--db", str(tmp_path / "x.sqlite"), str(garbage)])
    assert bad.exit_code == 1 and "not a carecollect database" in bad.output
    assert "Traceback" not in bad.output


def test_an_export_says_it_is_not_a_backup_once_there_is_history(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--db", str(db)]).exit_code == 0
    with SQLiteStore(db) as store:
        load_portfolio(store, 12, seed=4, as_of=DAY0.date())
    before = runner.invoke(main, ["export", "--db", str(db), str(tmp_path / "a.json")])
    assert before.exit_code == 0 and "not a backup" not in before.output
    assert runner.invoke(main, ["run", "--db", str(db), "--as-of", "2026-03-02"]).exit_code == 0
    after = runner.invoke(main, ["export", "--db", str(db), str(tmp_path / "b.json")])
    assert after.exit_code == 0
    assert "an export is not a backup" in after.output and "carecollect backup --db" in after.output
    assert "outreach steps" in after.output and "audit records" in after.output
