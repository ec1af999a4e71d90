"""Nothing is lost from event hooks: the store keeps every broadcast until each plugin took it.

A plugin that raises gets the event again on the next run (and the others do not get it twice);
a run killed (SIGKILL) between the commit of a change and its broadcast delivers the event on the
next run; an event every plugin took is never delivered again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carecollect.channels import Channel
from carecollect.events import Event, EventType
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import PluginManager, make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.hooks import owe_hook, redeliver_hook_events
from carecollect.run.settings import RunSettings
from carecollect.store.event_queue import decode_arguments, encode_arguments
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
SRC = Path(__file__).resolve().parents[1] / "src"


class Crm:
    """Records every ``on_outreach_sent`` it takes; raises while ``down``."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.sent: list[tuple[str, str]] = []

    @hookimpl
    def carecollect_on_outreach_sent(self, step: Any, event: Any) -> None:
        if self.down:
            raise RuntimeError("crm down")
        self.sent.append((step.id, event.detail("channel") or ""))


def _pm(**plugins: object) -> PluginManager:
    pm = make_plugin_manager(load_entrypoints=False)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return pm


def _settings(tmp_path: Path) -> RunSettings:
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "run.db") as s:
        load_portfolio(s, 30, seed=5, as_of=NOW.date())
        yield s


def test_a_plugin_that_raises_gets_the_event_again_on_the_next_run(
    store: SQLiteStore, tmp_path: Path
) -> None:
    crm, ledger = Crm(down=True), Crm()
    report = execute_run(store, NOW, _pm(crm=crm, ledger=ledger), _settings(tmp_path))
    assert report.sent > 0 and ledger.sent and not crm.sent
    assert len(ledger.sent) == report.sent
    pending = store.hook_events_pending()
    assert len(pending) == report.sent
    assert all(e.owed == ("crm",) and e.delivered == ("ledger",) for e in pending)
    assert all("RuntimeError: crm down" in (e.last_error or "") for e in pending)
    # the next run (new processes' managers, the CRM back up) delivers to the CRM only
    crm2, ledger2 = Crm(), Crm()
    execute_run(store, NOW + dt.timedelta(days=1), _pm(crm=crm2, ledger=ledger2), _settings(tmp_path))
    assert sorted(crm2.sent[: len(ledger.sent)]) == sorted(ledger.sent)  # redelivered first, same events
    assert not set(ledger.sent) & set(ledger2.sent)  # the ledger plugin did not get them twice
    assert store.hook_events_pending() == []


def test_a_delivered_event_is_not_delivered_twice(store: SQLiteStore, tmp_path: Path) -> None:
    crm = Crm()
    report = execute_run(store, NOW, _pm(crm=crm), _settings(tmp_path))
    assert len(crm.sent) == report.sent > 0
    assert store.hook_events_pending() == []
    again = Crm()
    pm = _pm(crm=again)
    assert redeliver_hook_events(store, pm, NOW) == 0
    execute_run(store, NOW, pm, _settings(tmp_path))  # the same instant: nothing new is due either
    assert again.sent == []


def test_an_event_waits_for_its_plugin_while_it_is_not_installed(store: SQLiteStore, tmp_path: Path) -> None:
    execute_run(store, NOW, _pm(crm=Crm(down=True)), _settings(tmp_path))
    owed = len(store.hook_events_pending())
    assert owed > 0
    execute_run(store, NOW, _pm(), _settings(tmp_path))  # blocked or uninstalled for a while
    assert len(store.hook_events_pending()) == owed
    back = Crm()
    redeliver_hook_events(store, _pm(crm=back), NOW)
    assert len(back.sent) == owed and store.hook_events_pending() == []


def test_an_owed_event_is_undone_with_the_change_that_caused_it(store: SQLiteStore) -> None:
    pm = _pm(crm=Crm())
    event = Event(EventType.OPTED_OUT, "P-1", NOW, {"channel": "sms"})

    def change_that_fails() -> None:
        with store.transaction():
            owe_hook(
                store, pm, "carecollect_on_opt_out", NOW, patient_id="P-1", channel=Channel.SMS, event=event
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        change_that_fails()
    assert store.hook_events_pending() == []


def test_every_hook_argument_survives_the_queue(store: SQLiteStore, tmp_path: Path) -> None:
    execute_run(store, NOW, _pm(crm=Crm(down=True)), _settings(tmp_path))
    for pending in store.hook_events_pending():
        args = decode_arguments(pending.arguments)
        assert encode_arguments(args) == pending.arguments
        step = store.account_snapshot(args["step"].account_id).steps
        assert args["step"] in step  # the very step the store holds, field for field


#: The first run, killed (SIGKILL) right after the first message's change is committed and
#: before its broadcast.
KILLED = textwrap.dedent(
    """
    import datetime as dt
    import os
    import signal
    import sys

    import carecollect.run.sending as sending
    from carecollect.run.execute import execute_run
    from carecollect.run.settings import RunSettings
    from carecollect.channels import Channel
    from carecollect.plugins.hookspecs import hookimpl
    from carecollect.plugins.manager import make_plugin_manager
    from carecollect.store.sqlite import SQLiteStore

    db, folder, now = sys.argv[1:4]
    deliver = sending.deliver_hooks


    def die_before_broadcast(store, pm, owed, at):
        owed = list(owed)
        if any(o.hook == "carecollect_on_outreach_sent" for o in owed):
            os.kill(os.getpid(), signal.SIGKILL)
        deliver(store, pm, owed, at)


    sending.deliver_hooks = die_before_broadcast


    class Crm:
        @hookimpl
        def carecollect_on_outreach_sent(self, step, event):
            raise AssertionError("never reached")


    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(Crm(), name="crm")
    settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"), channel_config={"outbox": {"folder": folder}}
    )
    with SQLiteStore(db) as store:
        execute_run(store, dt.datetime.fromisoformat(now), pm, settings)
    """
)


def test_a_run_killed_between_commit_and_broadcast_delivers_on_the_next_run(
    store: SQLiteStore, tmp_path: Path
) -> None:
    (tmp_path / "killed.py").write_text(KILLED, encoding="utf-8")
    child = subprocess.run(
        [sys.executable, str(tmp_path / "killed.py"), store.path, str(tmp_path / "out"), NOW.isoformat()],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        timeout=300,
    )
    assert child.returncode == -9, child.stderr.decode()
    sent = list(store.audit_records(kinds={"message.sent"}))
    # the run records a batch of messages in one unit of work, then broadcasts: the kill came
    # after that commit, so the batch's changes are stored...
    assert sent
    owed = store.hook_events_pending()  # ...and so is every event they owe the CRM, one each
    assert len(owed) == len(sent)
    assert all(o.hook == "carecollect_on_outreach_sent" and o.owed == ("crm",) for o in owed)
    crm = Crm()
    execute_run(store, NOW, _pm(crm=crm), _settings(tmp_path))
    killed_keys = [r.data["key"] for r in sent]
    owed_steps = [decode_arguments(o.arguments)["step"].id for o in owed]
    assert all(any(step in key for key in killed_keys) for step in owed_steps)
    for o, step in zip(owed, owed_steps, strict=True):
        assert crm.sent.count((step, decode_arguments(o.arguments)["event"].detail("channel"))) == 1
    # delivered first, in their order, before the run's own events
    assert [s for s, _ in crm.sent[: len(owed_steps)]] == owed_steps
    assert store.hook_events_pending() == []


def test_an_event_no_plugin_listens_to_is_not_written(store: SQLiteStore, tmp_path: Path) -> None:
    import contextlib
    import sqlite3

    report = execute_run(store, NOW, _pm(), _settings(tmp_path))
    assert report.sent > 0
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        assert db.execute("SELECT COUNT(*) FROM hook_events").fetchone() == (0,)
