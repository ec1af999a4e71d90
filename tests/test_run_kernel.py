"""The run's one decision path: plan rows and the compiled kernel decide exactly what the rich path decides.

``plan_run`` settles every account it can on plan rows (the store's flat facts, no domain
objects) with :func:`carecollect.run.kernel.decide`, and reads snapshots only for the rest.
On a store with a history of sent steps and every fact the rich path honours (payment
reversals, bounced and re-checked points, opt-outs and stop requests at several times,
confidential wishes, contact points in other zones, phone attempts of every outcome,
e-mails that count towards caps, assistance applications, claims within and past the
insurer's wait, a collector with placements), the plan must equal the rich path's at every
instant hypothesis picks: the counts of the dry run and, with ``keep_plan``, every decision
with its reasons and next date.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.creditors import Creditor, CreditorRole
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.decisions import RunPlan
from carecollect.run.execute import execute_run
from carecollect.run.kernel import DUE, NOT_DUE, RunTables, decide, decode
from carecollect.run.planning import plan_run
from carecollect.run.rows import Contexts, rows_from_facts, rows_from_snapshot
from carecollect.run.settings import CreditorSettings, RunSettings
from carecollect.store import SQLiteStore

AS_OF = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
CLAIMS = (
    ("pending", "2026-02-20"),
    ("pending", "2025-11-20"),
    ("appealed", "2026-01-10"),
    ("appealed", "2025-11-01"),
)


def _iso(day: int, hour: int = 12) -> str:
    return (NOW + dt.timedelta(days=day, hours=hour - 15)).isoformat()


def _vary(path: Path) -> None:
    """Give the store every fact the planner reads, at times around the test's instants."""
    db = sqlite3.connect(path)
    try:
        pids = [r[0] for r in db.execute("SELECT id FROM patients ORDER BY id")]
        for n, pid in enumerate(pids):
            if n % 11 == 0:
                db.execute("UPDATE patients SET cease_requested_at = ? WHERE id = ?", (_iso(n % 40 - 5), pid))
            if n % 13 == 0:
                db.execute(
                    "UPDATE patients SET confidential = 'only_listed', confidential_channels = ? WHERE id = ?",
                    ("letter sms" if n % 2 else "email", pid),
                )
            if n % 7 == 1:
                db.execute(
                    "UPDATE contact_points SET opted_out_at = ? WHERE patient_id = ? AND channel = ?",
                    (_iso(n % 30 - 3), pid, ("email", "sms", "letter")[n % 3]),
                )
            if n % 5 == 2:  # a bounce; every other one cleared by a later check
                db.execute(
                    "UPDATE contact_points SET undeliverable_at = ?, verified_at = ? "
                    "WHERE patient_id = ? AND channel = 'email'",
                    (_iso(n % 20 - 2), _iso(n % 20 + 4) if n % 2 else None, pid),
                )
            if n % 6 == 3:
                db.execute(
                    "UPDATE contact_points SET verified_at = ? WHERE patient_id = ? AND channel = 'sms'",
                    (_iso(-(n % 400)), pid),
                )
            if n % 4 == 0:  # a phone in another zone (quiet hours must hold in both)
                zone = ("America/Los_Angeles", "Asia/Tokyo", "Europe/Oslo", None)[n % 16 // 4]
                db.execute(
                    "INSERT INTO contact_points (patient_id, position, channel, address, consent_at, "
                    "opted_out_at, verified_at, time_zone) VALUES (?, 99, 'phone', '+15555550100', ?, NULL, ?, ?)",
                    (pid, _iso(-100), _iso(-10), zone),
                )
        accounts = db.execute("SELECT id, currency FROM accounts ORDER BY id").fetchall()
        invoices = db.execute(
            "SELECT id, account_id FROM invoices WHERE status = 'open' ORDER BY account_id, id"
        ).fetchall()
        seq = 0
        for n, (iid, aid) in enumerate(invoices):
            cur = dict(accounts)[aid]
            if n % 9 == 0:  # a payment that was returned: the balance goes back up
                pairs = [("patient_payment", f"t-pay-{iid}"), ("payment_reversed", f"t-rev-{iid}")]
                if n % 18 == 0:  # and an insurer's payment it took back (a claim reversal)
                    pairs += [
                        ("insurance_payment", f"t-ins-{iid}"),
                        ("insurance_reversed", f"t-insrev-{iid}"),
                    ]
                for kind, key in pairs:
                    db.execute(
                        "INSERT INTO ledger_entries (account_id, key, kind, amount_minor, currency, at, "
                        "invoice_id, source_id, reason) VALUES (?, ?, ?, 1500, ?, ?, ?, ?, 'test')",
                        (aid, key, kind, cur, _iso(-1), iid, f"PAY-{iid}"),
                    )
            if n % 8 == 5:
                for k, (channel, outcome) in enumerate(
                    (("phone", "voicemail"), ("phone", "no_connection"), ("email", "delivered"))
                    + ((("phone", "answered"),) if n % 24 == 5 else ())
                ):
                    seq += 1
                    db.execute(
                        "INSERT INTO contact_attempts (id, step_id, account_id, invoice_id, channel, at, outcome) "
                        "VALUES (?, NULL, ?, ?, ?, ?, ?)",
                        (f"T-{seq}", aid, iid if k % 2 else None, channel, _iso(n % 12 - 6 + k), outcome),
                    )
        ids = [r[0] for r in db.execute("SELECT id FROM invoices WHERE claim_status = 'pending' ORDER BY id")]
        for n, iid in enumerate(ids):
            db.execute(
                "UPDATE invoices SET claim_status = ?, claim_submitted_on = ? WHERE id = ?",
                (*CLAIMS[n % 4], iid),
            )
        for n, (aid, _) in enumerate(accounts[::17]):
            db.execute(
                "INSERT INTO assistance_applications (id, account_id, received_on, status, decided_on) "
                "VALUES (?, ?, '2026-02-01', ?, ?)",
                (
                    f"APP-{n}",
                    aid,
                    ("received", "approved", "denied")[n % 3],
                    None if n % 3 == 0 else "2026-02-10",
                ),
            )
        # mandates for some active plans (their due instalments are charged), one revoked
        plans = db.execute("SELECT id, account_id FROM plans WHERE status = 'active' ORDER BY id").fetchall()
        for n, (plan_id, aid) in enumerate(plans):
            db.execute(
                "INSERT INTO mandates (plan_id, account_id, provider, method, reference, created_at, revoked_at) "
                "VALUES (?, ?, 'demo-gateway', 'card', ?, ?, ?)",
                (plan_id, aid, f"tok-{n}", _iso(-60), _iso(n % 40) if n % 4 == 3 else None),
            )
        # US nonprofit hospitals (501(r)): their cadence has the written ECA notice
        db.execute("UPDATE creditors SET nonprofit = 1 WHERE country = 'US'")
        # one creditor collects for others: its cadence starts on the placement day
        cid = db.execute("SELECT id FROM creditors ORDER BY id LIMIT 1").fetchone()[0]
        db.execute("UPDATE creditors SET role = 'third_party_collector' WHERE id = ?", (cid,))
        for n, (aid,) in enumerate(
            db.execute("SELECT id FROM accounts WHERE creditor_id = ? ORDER BY id", (cid,)).fetchall()
        ):
            if n % 2:
                db.execute(
                    "INSERT INTO placements (id, account_id, agency, amount_placed_minor, currency, status, "
                    "placed_at, closed_at, invoice_ids) VALUES (?, ?, 'x', 100, 'USD', 'returned', ?, NULL, '')",
                    (f"PL-{aid}", aid, _iso(-(n % 50))),
                )
        db.commit()
    finally:
        db.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    tmp = tmp_path_factory.mktemp("kernel")
    path = tmp / "run.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 500, seed=5, as_of=AS_OF)
        pm = make_plugin_manager(load_entrypoints=False)
        run_settings = RunSettings(channel_config={"outbox": {"folder": str(tmp / "out")}})
        for day in (0, 22):  # a history of sent steps
            assert execute_run(s, NOW + dt.timedelta(days=day), pm, run_settings).sent > 0
    _vary(path)
    with SQLiteStore(path) as s:
        yield s


def _same(a: RunPlan, b: RunPlan) -> None:
    assert (a.accounts, a.invoices) == (b.accounts, b.invoices)
    assert a.messages == b.messages
    assert a.placements == b.placements
    assert a.charges == b.charges
    assert a.missed == b.missed
    assert a.decisions == b.decisions  # reasons and next dates included


instants = st.builds(
    lambda days, minutes: NOW + dt.timedelta(days=days, minutes=minutes),
    st.integers(-3, 160),
    st.integers(0, 24 * 60 - 1),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=instants)
def test_the_fast_plan_equals_the_rich_plan(store: SQLiteStore, now: dt.datetime) -> None:
    rich = plan_run(store, now, RunSettings(), prescreen=False)
    _same(rich, plan_run(store, now, RunSettings()))
    counts = plan_run(store, now, RunSettings(keep_plan=False))
    assert counts.counts() == rich.counts()
    assert counts.size("messages") == len(rich.messages)
    assert (counts.accounts, counts.invoices) == (rich.accounts, rich.invoices)


def test_the_comparison_covers_every_kind_of_decision(store: SQLiteStore) -> None:
    kinds: dict[str, int] = {}
    states: set[int] = set()
    for day in (0, 1, 9, 12, 20, 30, 38, 45, 52, 80, 120):
        now = NOW + dt.timedelta(days=day, hours=day % 3 * 7)
        for kind, n in plan_run(store, now, RunSettings(keep_plan=False)).counts().items():
            kinds[kind] = kinds.get(kind, 0) + n
        tables = RunTables(Contexts(), now)
        for facts in store.iter_plan_facts(now=now, batch_size=100):
            for acc in rows_from_facts(facts, now, tables.contexts):
                states.update(decode(c)[0] for c in decide(acc.rows, tables))
    for kind in ("send", "hold", "nothing_due", "plan_missed", "charge", "charge_held"):
        assert kinds.get(kind, 0) > 0, (kind, kinds)
    assert {DUE, NOT_DUE} <= states and len(states) >= 5, states


def test_the_kernels_memo_changes_no_decision(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cadence answers the kernel remembers per run give the decisions of a kernel that
    remembers none, across batches, contexts and instants, and the memo stays bounded."""
    import carecollect.run.kernel as kernel

    for day in (0, 9, 38, 80):
        now = NOW + dt.timedelta(days=day, hours=day % 3 * 7)
        shared = RunTables(Contexts(), now)
        rows = [
            r
            for facts in store.iter_plan_facts(now=now, batch_size=50)
            for acc in rows_from_facts(facts, now, shared.contexts)
            if not acc.rich
            for r in acc.rows
        ]
        remembered = decide(rows, shared) + decide(rows, shared)  # the second pass answers from the memo
        assert shared.cadence_memo
        monkeypatch.setattr(kernel, "_MEMO_SIZE", 0)  # every answer computed afresh
        fresh = RunTables(shared.contexts, now)
        assert remembered == decide(rows, fresh) * 2
        monkeypatch.setattr(kernel, "_MEMO_SIZE", 3)
        small = RunTables(shared.contexts, now)
        assert decide(rows, small) == remembered[: len(rows)]
        assert len(small.cadence_memo) <= 3
        monkeypatch.undo()


@pytest.mark.parametrize("day", [0, 4, 37, 90])
def test_rows_from_the_store_equal_rows_from_snapshots(store: SQLiteStore, day: int) -> None:
    now = NOW + dt.timedelta(days=day, hours=5)
    a, b = Contexts(), Contexts()
    from_facts = [
        acc
        for facts in store.iter_plan_facts(now=now, batch_size=64)
        for acc in rows_from_facts(facts, now, a)
    ]
    snaps = list(store.iter_account_snapshots())
    from_snaps = [rows_from_snapshot(s, store.get_creditor(s.account.creditor_id), now, b) for s in snaps]
    assert len(from_facts) == len(from_snaps) == len(snaps)
    plain = relief = 0
    for x, y in zip(from_facts, from_snaps, strict=True):
        assert (x.account_id, x.rich, x.invoices) == (y.account_id, y.rich, y.invoices)
        assert [r[2:] for r in x.rows] == [r[2:] for r in y.rows]
        assert [a[r[1]] for r in x.rows] == [b[r[1]] for r in y.rows]
        plain += not x.rich
        relief += x.relief
    # most accounts are settled on rows, those with disputes, plans and applications included
    # (only their reasons need the snapshot); conversations go to the rich path
    assert len(snaps) * 0.8 < plain <= len(snaps)
    assert relief > 10
    if day >= 37:
        assert plain < len(snaps)


# Two clinics on one pack: CR-US2 takes over every other US account and has its own, stricter
# house rules; CR-US runs on the installation's. The plan rows' context then carries CR-US2
# (and only it), and the fast plan still equals the rich one.
TWO_CLINICS = RunSettings(
    creditors={
        "CR-US2": CreditorSettings(
            house_rules={"us": {"cadence.min_days_between_messages": 30, "calls.max_per_7_days": 1}}
        )
    }
)


@pytest.fixture(scope="module")
def two_clinics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    tmp = tmp_path_factory.mktemp("kernel-two")
    path = tmp / "run.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 300, seed=9, as_of=AS_OF)
        s.put_creditor(Creditor("CR-US2", "Northside Clinic", CreditorRole.PROVIDER, "US", state="MN"))
    db = sqlite3.connect(path)
    try:
        ids = [r[0] for r in db.execute("SELECT id FROM accounts WHERE creditor_id = 'CR-US' ORDER BY id")]
        db.executemany("UPDATE accounts SET creditor_id = 'CR-US2' WHERE id = ?", [(i,) for i in ids[::2]])
        db.commit()
    finally:
        db.close()
    with SQLiteStore(path) as s:
        pm = make_plugin_manager(load_entrypoints=False)
        run_settings = attrs.evolve(TWO_CLINICS, channel_config={"outbox": {"folder": str(tmp / "out")}})
        for day in (0, 12):  # a history of sent steps, on each clinic's own rules
            assert execute_run(s, NOW + dt.timedelta(days=day), pm, run_settings).sent > 0
    _vary(path)
    with SQLiteStore(path) as s:
        yield s


@pytest.mark.parametrize("day", [13, 20, 31, 45])
def test_two_creditors_with_their_own_house_rules_on_one_pack(two_clinics: SQLiteStore, day: int) -> None:
    now = NOW + dt.timedelta(days=day, hours=1)
    rich = plan_run(two_clinics, now, TWO_CLINICS, prescreen=False)
    _same(rich, plan_run(two_clinics, now, TWO_CLINICS))
    counts = plan_run(two_clinics, now, attrs.evolve(TWO_CLINICS, keep_plan=False))
    assert counts.counts() == rich.counts()
    # the contexts keep the creditor only where its rules differ
    tables = RunTables(
        Contexts(TWO_CLINICS.own_rules), now, TWO_CLINICS.pack, creditor_pack_of=TWO_CLINICS.pack
    )
    for facts in two_clinics.iter_plan_facts(now=now, batch_size=100):
        rows_from_facts(facts, now, tables.contexts)
    owners = {tables.contexts[i].creditor_id for i in range(len(tables.contexts))}
    assert owners == {"", "CR-US2"}
    assert tables.pack("us", "CR-US2").value("calls.max_per_7_days", on=AS_OF) == 1
    assert tables.pack("us").value("calls.max_per_7_days", on=AS_OF) > 1


def test_a_creditors_own_house_rules_change_only_its_accounts(two_clinics: SQLiteStore) -> None:
    differ = {"CR-US": 0, "CR-US2": 0}
    for day in (13, 20, 31):
        now = NOW + dt.timedelta(days=day, hours=1)
        own = plan_run(two_clinics, now, TWO_CLINICS)
        plain = plan_run(two_clinics, now, RunSettings())
        creditor = {s.account.id: s.account.creditor_id for s in two_clinics.iter_account_snapshots()}
        mine = {(d.account_id, d.invoice_id, d.kind, d.channel) for d in own.decisions}
        theirs = {(d.account_id, d.invoice_id, d.kind, d.channel) for d in plain.decisions}
        for d in mine ^ theirs:
            if creditor[d[0]] in differ:
                differ[creditor[d[0]]] += 1
    assert differ["CR-US"] == 0  # the installation's rules: the same decisions
    assert differ["CR-US2"] > 0  # its own, stricter rules: other decisions


def test_a_point_instant_not_in_utc_form_sends_its_account_to_the_rich_path(tmp_path: Path) -> None:
    """A bulk load may bring an instant with another offset; SQL cannot compare it as text."""
    path = tmp_path / "run.db"
    with SQLiteStore(path) as s:
        load_portfolio(s, 60, seed=9, as_of=AS_OF)
    db = sqlite3.connect(path)
    try:
        pid, aid = db.execute(
            "SELECT a.patient_id, a.id FROM accounts a JOIN contact_points c ON c.patient_id = a.patient_id "
            "WHERE c.channel = 'email' AND c.consent_at IS NOT NULL ORDER BY a.id LIMIT 1"
        ).fetchone()
        # 16:00 in +01:00 is 15:00 UTC, before NOW (15:30 UTC): the patient opted out, though
        # the text sorts after NOW's
        with db:
            db.execute(
                "UPDATE contact_points SET opted_out_at = '2026-03-02T16:00:00+01:00' "
                "WHERE patient_id = ? AND channel = 'email'",
                (pid,),
            )
        mine = {r[0] for r in db.execute("SELECT id FROM accounts WHERE patient_id = ?", (pid,))}
    finally:
        db.close()
    with SQLiteStore(path) as s:
        facts = list(s.iter_plan_facts(now=NOW, batch_size=7))
        inexact = {a[0] for f in facts for a in f.accounts if a[12] == 0}
        assert inexact == mine and aid in mine
        contexts = Contexts()
        accounts = {acc.account_id: acc for f in facts for acc in rows_from_facts(f, NOW, contexts)}
        assert accounts[aid].rich
        assert sum(acc.rich for acc in accounts.values()) < len(accounts) / 2
        rich = plan_run(s, NOW, RunSettings(), prescreen=False)
        _same(rich, plan_run(s, NOW, RunSettings()))
        assert not any(m.step.account_id in mine and m.channel.value == "email" for m in rich.messages)
