"""The daily run charges a plan through the SEPA provider; a returned debit becomes one reversal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from carecollect.channels import Channel
from carecollect.daily_run import RunSettings, execute_run, intake
from carecollect.hookspecs import hookimpl
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import EntryKind
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from carecollect.plugin_manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.providers import PaymentProviderDescriptor
from carecollect.store.base import Mandate
from carecollect.store.sqlite import SQLiteStore
from conftest import FIXTURES, NOW, Clock, mandate

from carecollect_sepa import CAPABILITIES, CollectionStatus, SepaDirectDebit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 30, seed=7, as_of=NOW.date())
    yield s
    s.close()


def _plan(store: SQLiteStore) -> PaymentPlan:
    for snap in store.iter_account_snapshots():
        if snap.plans or snap.disputes:
            continue
        for inv in snap.invoices:
            balance = snap.ledger.invoice_balance(inv.id)
            if inv.status is InvoiceStatus.OPEN and balance.is_positive() and balance.currency == "EUR":
                plan = PaymentPlan(
                    f"PLAN-{inv.id}", snap.account.id, (inv.id,), balance,
                    build_schedule(balance, 1, first_due=NOW.date()), NOW - dt.timedelta(days=20),
                    status=PlanStatus.ACTIVE,
                )  # fmt: skip
                with store.transaction():
                    store.put_plan(plan)
                    store.put_mandate(
                        Mandate(
                            plan.id,
                            plan.account_id,
                            "sepa",
                            "direct_debit",
                            "CC-M-1",
                            NOW - dt.timedelta(days=20),
                        )
                    )
                return plan
    pytest.skip("no open EUR invoice in the generated portfolio")


def _paid(store: SQLiteStore, account_id: str) -> int:
    return sum(
        e.amount.minor_units for e in store.ledger(account_id).entries if e.kind is EntryKind.PATIENT_PAYMENT
    )


def test_a_returned_debit_of_a_run_charge_is_reversed_once(
    store: SQLiteStore, settings: dict[str, Any], tmp_path: Path, channel: Any
) -> None:
    plan = _plan(store)
    clock = Clock(NOW)

    class Plugin:
        @hookimpl
        def carecollect_payment_providers(self) -> list[PaymentProviderDescriptor]:
            return [
                PaymentProviderDescriptor("sepa", CAPABILITIES, lambda s: SepaDirectDebit(s, clock=clock))
            ]

    sepa = SepaDirectDebit(settings, clock=clock, channel=channel)
    sepa.add_mandate(mandate("CC-M-1", plan.account_id))
    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    run_settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={"sepa": settings},
    )
    assert execute_run(store, NOW, pm, run_settings).charged == 1
    paid = _paid(store, plan.account_id)
    assert paid > 0

    sepa = SepaDirectDebit(settings, clock=clock, channel=channel)  # the book the run's instance kept
    debit = sepa.collection("CC2603020000001")
    assert debit.account_id == plan.account_id and debit.amount == plan.instalments[0].amount
    assert sepa.write_collection_file() is not None

    clock.now = dt.datetime(2026, 3, 19, 7, tzinfo=dt.UTC)
    data = (FIXTURES / "camt054_return.xml").read_bytes()
    first = sepa.read_bank_file(data, name="camt054_return.xml")
    assert sepa.collection("CC2603020000001").status is CollectionStatus.RETURNED
    report = intake(store, pm, run_settings, first.events, clock.now)
    assert report.payments_reversed == 1 and not report.failures
    assert _paid(store, plan.account_id) == paid
    reversed_ = [e for e in store.ledger(plan.account_id).entries if e.kind is EntryKind.PAYMENT_REVERSED]
    assert len(reversed_) >= 1
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE

    # the same file read again a day later: the same events, which intake takes as duplicates
    clock.now += dt.timedelta(days=1)
    again = sepa.read_bank_file(data, name="camt054_return.xml")
    replay = intake(store, pm, run_settings, again.events, clock.now)
    assert replay.payments_reversed == 0 and replay.duplicates == len(again.events)
    assert [
        e for e in store.ledger(plan.account_id).entries if e.kind is EntryKind.PAYMENT_REVERSED
    ] == reversed_
