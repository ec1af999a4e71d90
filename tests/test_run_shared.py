"""Two ``carecollect run`` processes at once on one store, and the database going down mid-run.

Real processes (``python -m carecollect.cli run``) against a throwaway PostgreSQL server (and a
SQLite file), the demo portfolio, the file outbox:

* started together for the same ``--as-of`` with ``--partitions`` (6 and 5), one leads (the run
  lock, the intake of the events, the close, the partitions' layout) and the other joins: the
  leader's partitions are split between them,
  every due message is handed over exactly once (the spool layout writes every hand-over down),
  the opt-outs of the intake hold in both, the ledgers balance, the audit chain verifies;
* the server stopped under a run (``pg_ctl stop -m fast`` and ``-m immediate``): the run exits
  with exit code 1 and one line naming :class:`~carecollect.errors.StoreUnavailable`, no
  traceback; what it wrote is whole; started again once the server is back, it finishes the
  rest, each message exactly once. (The throwaway server runs with ``synchronous_commit=off``:
  an immediate stop also loses the last fraction of a second of commits, whole transactions,
  which the rerun then does again: a harsher case than a real server's.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.cli import main
from carecollect.ledger import EntryKind
from carecollect.portfolio import load_portfolio
from carecollect.run.planning import plan_run
from carecollect.run.sending import message_id
from carecollect.run.settings import RunSettings
from carecollect.run.workers import run_key_of
from carecollect.store.base import OutboxStatus, Store
from carecollect.store.sqlite import SQLiteStore
from carecollect.store.urls import open_store
from carecollect.testing.postgres import LocalPostgres

NOW = dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)
_names = itertools.count()
_CLI = (sys.executable, "-m", "carecollect.cli")


def _settings_file(folder: Path, layout: str) -> Path:
    """``carecollect init``'s settings, the file outbox in ``layout``; returns the ``--db`` path."""
    db = folder / "clinic.sqlite"
    assert CliRunner().invoke(main, ["init", "--db", str(db)]).exit_code == 0
    toml = folder / "clinic.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace('layout = "spool"\n', f'layout = "{layout}"\n', 1),
        encoding="utf-8",
    )
    return db


def _run(folder: Path, db: Path, url: str, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_CLI, "run", "--db", str(db), "--store", url, "--as-of", NOW.isoformat(), *more],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _sent_records(store: Store) -> Counter[str]:
    return Counter(str(r.data["key"]) for r in store.audit_records(kinds=("message.sent",)))


def _check_books(store: Store) -> set[str]:
    """What must hold after any run, finished or not: every unit of work whole. Returns the keys done.

    A message is done in the outbox exactly when it has one ``message.sent`` record and one
    contact attempt (all three are written in one unit of work); every ledger balances; the
    audit chain verifies.
    """
    done = {
        k
        for k, n in _sent_records(store).items()
        if n == 1 and store.outbox_get(k).status is OutboxStatus.DONE
    }
    sent = _sent_records(store)
    assert all(n == 1 for n in sent.values()), [k for k, n in sent.items() if n > 1][:5]
    assert set(sent) == done
    snaps = list(store.iter_account_snapshots(batch_size=500))
    attempts = Counter(a.id.split("@")[0] for s in snaps for a in s.attempts)
    assert {k for k in attempts if k in done} == done and all(attempts[k] == 1 for k in done)
    for snap in snaps:
        book = snap.ledger
        total = {k: book.sum_of(k).minor_units for k in EntryKind}
        owed = total[EntryKind.CHARGE] + total[EntryKind.REFUND]
        settled = (
            total[EntryKind.PATIENT_PAYMENT]
            + total[EntryKind.INSURANCE_PAYMENT]
            + total[EntryKind.ADJUSTMENT]
            + total[EntryKind.WRITE_OFF]
        )
        assert owed == settled + book.balance.minor_units, snap.account.id
    check = store.verify_audit()
    assert check.ok, check
    return done


def _partitions_done(out: str) -> set[int]:
    """The partitions a joiner's summary says it did."""
    line = next(ln for ln in out.splitlines() if ln.startswith("Joined the run of"))
    listed = line.rpartition("partitions done here: ")[2].strip()
    return set() if listed == "none" else {int(p) for p in listed.split(", ")}


@contextlib.contextmanager
def _starting_line(url: str) -> Iterator[None]:
    """Hold back every process's first take of the run lock until two are waiting for it, so two
    processes started together also start their run together (a loaded machine starts one of them
    seconds late).

    PostgreSQL: hold the run lock's advisory lock and wait until two sessions wait for it. SQLite:
    hold the file's write lock for three seconds (its waiters cannot be seen; they wait up to the
    store's 30-second busy timeout).
    """
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            yield
            time.sleep(3)
            db.execute("ROLLBACK")
        return
    import psycopg

    from carecollect.store.postgres import _LOCK_RUN

    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_RUN,))
        yield
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
            if row is not None and row[0] >= 2:
                break
            time.sleep(0.05)
        conn.rollback()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.sqlite'}"
        SQLiteStore(tmp_path / "records.sqlite").close()
    else:
        pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
        server: LocalPostgres = request.getfixturevalue("postgres_server")
        url = server.create_database(f"shared_{next(_names)}")
        from carecollect.store.postgres import apply_migrations

        apply_migrations(url)
    return url


def test_two_run_processes_share_the_partitions_of_one_run_and_hand_each_message_over_once(
    store_url: str, tmp_path: Path
) -> None:
    with open_store(store_url) as store:
        load_portfolio(store, 250, seed=11, as_of=NOW.date())
        plan = plan_run(store, NOW, RunSettings())
        # the intake takes in opt-outs by e-mail for a few patients with e-mails due today
        emailed = sorted({m.step.account_id for m in plan.messages if m.channel.value == "email"})[:6]
        opted = {store.get_account(a).patient_id for a in emailed}
        addresses = {
            cp.address
            for pid in opted
            for cp in store.get_patient(pid).contact_points
            if cp.channel.value == "email"
        }
    assert len(plan.messages) > 200 and addresses
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps(
                {
                    "kind": "reply",
                    "plugin": "outbox",
                    "body": json.dumps({"id": f"in-{n}", "from": a, "text": "STOP", "channel": "email"}),
                }
            )
            + "\n"
            for n, a in enumerate(sorted(addresses))
        ),
        encoding="utf-8",
    )
    db = _settings_file(tmp_path, "spool")
    with _starting_line(store_url):  # both reach the run lock before either takes it
        # the leader lays the partitions out; the other joins them, whatever count it was given
        both = [_run(tmp_path, db, store_url, "--partitions", n, "--events", str(events)) for n in ("6", "5")]
    outs = [p.communicate(timeout=240) for p in both]
    for p, (out, err) in zip(both, outs, strict=True):
        assert p.returncode == 0, (out, err)
        assert "Traceback" not in err

    # one led, one joined; the partitions split between them, each did some
    joiners = [out for out, _ in outs if "Joined the run of" in out]
    assert len(joiners) == 1, [o for o, _ in outs]
    laid_out = 5 if "Joined the run of" in outs[0][0] else 6
    with open_store(store_url) as store:
        assert store.finished_partitions(run_key_of(NOW)) == set(range(laid_out))
        joined = _partitions_done(joiners[0])
        assert 0 < len(joined) < laid_out

        # every hand-over is in the spool: each message id exactly once, and each is done
        spooled: Counter[str] = Counter()
        for f in (tmp_path / "clinic-outbox" / "spool").glob("*.jsonl"):
            spooled.update(json.loads(line)["id"] for line in f.read_text(encoding="utf-8").splitlines()[1:])
        assert spooled and all(n == 1 for n in spooled.values()), spooled.most_common(3)
        done = _check_books(store)
        assert {message_id(k) for k in done} == set(spooled)
        # nothing due is left, and the intake's opt-outs held in both processes
        assert plan_run(store, NOW, RunSettings()).messages == ()
        sent_to = {
            r.subject_id
            for r in store.audit_records(kinds=("message.sent",))
            if str(r.data["key"]).endswith(":email")
        }
        assert not {store.get_account(a).patient_id for a in sent_to} & opted
        once = ("run.started", "run.intake_done", "run.finished")
        assert Counter(r.kind for r in store.audit_records(subject_id="run", kinds=once)) == dict.fromkeys(
            once, 1
        )
        opt_outs = Counter(r.subject_id for r in store.audit_records(kinds=("opt_out",)))
        assert set(opt_outs) >= opted and all(n == 1 for n in opt_outs.values())
        assert store.current_run_lock() is None
        # the joiner kept the events it was given for the next intake: duplicates there, nothing new
        assert len(store.inbox_pending()) == len(addresses)


@pytest.fixture
def own_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test's own (it is stopped under a run)."""
    pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
    server = LocalPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.parametrize(("mode", "partitions"), [("fast", ()), ("immediate", ("--partitions", "4"))])
def test_a_run_whose_database_goes_down_fails_cleanly_and_a_rerun_finishes_it_exactly_once(
    own_server: LocalPostgres, tmp_path: Path, mode: str, partitions: tuple[str, ...]
) -> None:
    from carecollect.store.postgres import apply_migrations

    url = own_server.create_database("restarted")
    apply_migrations(url)
    with open_store(url) as store:
        load_portfolio(store, 250, seed=11, as_of=NOW.date())
        planned = {m.key for m in plan_run(store, NOW, RunSettings()).messages}
    assert len(planned) > 200
    db = _settings_file(tmp_path, "files")
    out = tmp_path / "clinic-outbox"

    def handed_over() -> set[str]:
        return {p.stem for p in out.iterdir() if not p.name.startswith(".")} if out.exists() else set()

    run = _run(tmp_path, db, url, *partitions)
    deadline = time.monotonic() + 120
    while len(handed_over()) < 40 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, run.communicate()  # still sending: the server goes down under it
    own_server.halt(mode)
    started = time.monotonic()
    stdout, stderr = run.communicate(timeout=120)
    exited_after = time.monotonic() - started
    own_server.resume()

    assert run.returncode == 1, (stdout, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert "is unavailable" in stderr and "Run again once the server is back" in stderr, stderr
    assert exited_after < 20
    with open_store(url) as store:
        done = _check_books(store)  # nothing half-written
        assert done < planned and {message_id(k) for k in done} <= handed_over()
        assert not list(store.audit_records(subject_id="run", kinds=("run.finished",)))

    again = _run(tmp_path, db, url, *partitions)
    stdout, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, (stdout, stderr)
    with open_store(url) as store:
        assert _check_books(store) == planned
        assert {message_id(k) for k in planned} == handed_over()  # the file outbox: one file per id
        assert plan_run(store, NOW, RunSettings()).messages == ()
        assert store.current_run_lock() is None
        if partitions:
            assert store.finished_partitions(run_key_of(NOW)) == set(range(4))


def test_a_partitioned_run_of_the_same_instant_is_joined_once_its_intake_is_done_and_others_are_refused(
    tmp_path: Path,
) -> None:
    import threading

    from carecollect.errors import RunLocked
    from carecollect.run.joining import RunLead, intake_done, lead_or_join

    path = tmp_path / "records.sqlite"
    wait = dt.timedelta(seconds=30)
    me = os.getpid()
    with SQLiteStore(path) as store:
        lock = lead_or_join(store, "lead@h", me, NOW, stale_after=wait, partitions=4, run_id="r1")
        assert (lock.owner, lock.pid) == ("lead@h", me)
        with SQLiteStore(path) as other:
            for when, parts in ((NOW + dt.timedelta(days=1), 4), (NOW, None)):  # another day; no partitions
                with pytest.raises(RunLocked):
                    lead_or_join(
                        other, "next@h", me + 1, when, stale_after=wait, partitions=parts, run_id="r2"
                    )
        found: list[object] = []

        def join() -> None:
            with SQLiteStore(path) as own:
                found.append(
                    lead_or_join(
                        own, "next@h", me + 1, NOW, stale_after=wait, partitions=4, run_id="r2", poll=0.01
                    )
                )

        joiner = threading.Thread(target=join)
        joiner.start()
        time.sleep(0.3)
        assert joiner.is_alive() and not found  # the leader is still taking in
        intake_done(store, lock, NOW)
        joiner.join(10)
        assert found == [RunLead("lead@h", me, run_key_of(NOW), 4, True)]
        store.release_run_lock("lead@h", me)

        # a run without partitions records no run.started: a partitioned one is refused, not joined
        alone = lead_or_join(store, "alone@h", me, NOW, stale_after=wait, partitions=None, run_id="r3")
        with SQLiteStore(path) as other, pytest.raises(RunLocked):
            lead_or_join(other, "next@h", me + 1, NOW, stale_after=wait, partitions=4, run_id="r4")
        store.release_run_lock(alone.owner, alone.pid)


@pytest.mark.postgres
def test_a_store_whose_server_went_away_says_so_with_a_typed_error(own_server: LocalPostgres) -> None:
    from carecollect.errors import StoreUnavailable
    from carecollect.store.postgres import PostgresStore

    url = own_server.create_database("away")
    with PostgresStore(url, migrate=True, min_size=2, max_size=2) as store:
        store.audit_append("note", "run", {"n": 1}, at=NOW)

        def cut_off() -> None:
            with store.transaction():
                store.audit_append("note", "run", {"n": 2}, at=NOW)
                own_server.halt("fast")  # the server goes down inside the unit of work
                store.audit_append("note", "run", {"n": 3}, at=NOW)

        try:
            with pytest.raises(StoreUnavailable, match="is unavailable"):
                cut_off()
            with pytest.raises(StoreUnavailable, match="Run again once the server is back"):
                store.current_run_lock()  # one statement on the pool's other connection, dropped too
        finally:
            own_server.resume()
    with PostgresStore(url) as store:  # the unit of work was rolled back whole
        assert [r.data for r in store.audit_records(kinds=("note",))] == [{"n": 1}]
        assert store.verify_audit().ok
