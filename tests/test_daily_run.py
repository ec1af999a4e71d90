"""The daily run's planning: contact-centre conversations count, the dry run writes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from carecollect import (
    Account,
    Channel,
    ContactPoint,
    Creditor,
    CreditorRole,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Ledger,
    Money,
    NaiveDatetime,
    Patient,
)
from carecollect.ledger import post_charge
from carecollect.policy.packs import get_pack
from carecollect.portfolio import load_portfolio
from carecollect.run.decisions import DecisionKind
from carecollect.run.planning import by_account, plan_account, plan_run
from carecollect.store.base import AccountSnapshot
from carecollect.store.sqlite import SQLiteStore

NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 3, 10, 11, 0, tzinfo=NY)  # a Tuesday, inside the 08:00-21:00 window


def _snapshot() -> AccountSnapshot:
    consent = dt.datetime(2026, 1, 5, 9, tzinfo=NY)
    patient = Patient(
        "P-1", "en", ("America/New_York",), (ContactPoint(Channel.PHONE, "+12125550100", consent_at=consent),)
    )
    account = Account("A-1", "P-1", "C-1", "USD", jurisdiction="us")
    invoice = Invoice(
        id="INV-1",
        account_id="A-1",
        currency="USD",
        lines=(InvoiceLine("99213", "Office visit", Money("180.00", "USD"), dt.date(2026, 1, 20)),),
        issue_date=dt.date(2026, 1, 21),
        due_date=dt.date(2026, 2, 20),
        first_statement_date=dt.date(2026, 1, 21),
        status=InvoiceStatus.OPEN,
    )
    book, _ = post_charge(
        Ledger("A-1", "USD"), "INV-1", invoice.total, at=dt.datetime(2026, 1, 21, tzinfo=NY)
    )
    return AccountSnapshot(account, patient, (invoice,), book)


def _phone_pack() -> object:
    # a house rule: reminders by telephone, and the Reg F call caps for this provider too
    return get_pack("us").with_house_rules(
        {
            "cadence.channels.reminder": ("phone",),
            "cadence.channels.statement": ("phone",),
            "calls.cap_for_all_creditors": True,
        }
    )


def test_a_contact_centre_conversation_pauses_calls() -> None:
    creditor = Creditor("C-1", "Riverside Billing", CreditorRole.PROVIDER, "US")
    pack = _phone_pack()
    free = plan_account(_snapshot(), creditor, pack, NOW)  # type: ignore[arg-type]
    assert [(m.channel, m.decision.kind) for m in free.messages] == [(Channel.PHONE, DecisionKind.SEND)]

    yesterday = [("A-1", "INV-1", NOW - dt.timedelta(days=1))]
    held = plan_account(_snapshot(), creditor, pack, NOW, conversations=yesterday)  # type: ignore[arg-type]
    assert held.messages == ()
    hold = next(d for d in held.decisions if d.kind is DecisionKind.HOLD)
    assert any(r.rule_id.startswith("calls.") and r.outcome.value == "defer" for r in hold.reasons)
    assert hold.earliest is not None and hold.earliest.date() >= (NOW + dt.timedelta(days=6)).date()


def test_conversations_are_grouped_and_must_be_aware() -> None:
    grouped = by_account([("A-1", None, NOW), ("A-2", "INV-9", NOW), ("A-1", "INV-1", NOW)])
    assert {k: len(v) for k, v in grouped.items()} == {"A-1": 2, "A-2": 1}
    with pytest.raises(NaiveDatetime):
        by_account([("A-1", None, dt.datetime(2026, 3, 1, 9))])


def test_dry_run_plans_but_writes_nothing(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "p.db") as store:
        load_portfolio(store, 120, seed=3, as_of=dt.date(2026, 3, 1))
        before = dict(store.counts())
        audit_before = sum(1 for _ in store.audit_records())
        plan = plan_run(store, dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC))
        assert plan.invoices == 120 and plan.messages
        assert plan.counts()["send"] == len(plan.messages)
        assert dict(store.counts()) == before
        assert sum(1 for _ in store.audit_records()) == audit_before


def test_the_dry_run_is_exactly_the_plan_the_real_run_executes(tmp_path: Path) -> None:
    from carecollect.plugins.manager import make_plugin_manager
    from carecollect.run.execute import execute_run
    from carecollect.run.settings import RunSettings

    now = dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC)
    settings = RunSettings(channel_config={"outbox": {"folder": str(tmp_path / "out")}})
    with SQLiteStore(tmp_path / "p.db") as store:
        load_portfolio(store, 150, seed=5, as_of=dt.date(2026, 3, 1))
        dry = plan_run(store, now, settings)
        report = execute_run(store, now, make_plugin_manager(load_entrypoints=False), settings)
        assert report.plan == dry  # every message, decision, reason, missed instalment and placement
        assert report.sent == len(dry.messages) > 0
        sent = {r.data["key"] for r in store.audit_records() if r.kind == "message.sent"}
        assert sent == {m.key for m in dry.messages}
        decided = [r.data for r in store.audit_records() if r.kind.startswith("decision.")]
        assert decided == [d.to_record() for d in dry.decisions]
