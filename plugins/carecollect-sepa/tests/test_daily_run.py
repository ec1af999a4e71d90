"""The daily run charges a plan through the SEPA provider; a returned debit becomes one reversal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from carecollect.channels import Channel
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import EntryKind
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.providers import PaymentProviderDescriptor
from carecollect.portfolio import load_portfolio
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store.base import Mandate
from carecollect.store.sqlite import SQLiteStore
from conftest import FIXTURES, NOW, Clock

from carecollect_sepa import CAPABILITIES, CollectionStatus, SepaDirectDebit, SepaMandate


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


def _owed(store: SQLiteStore, plan: PaymentPlan) -> int:
    book = store.ledger(plan.account_id)
    return sum(book.invoice_balance(i).minor_units for i in plan.invoice_ids)


def test_a_returned_debit_of_a_run_charge_is_reversed_once(
    store: SQLiteStore, settings: dict[str, Any], tmp_path: Path, channel: Any, outbox: Path
) -> None:
    plan = _plan(store)
    owed = _owed(store, plan)
    clock = Clock(NOW)

    class Plugin:  # the entry point, with the test's clock
        @hookimpl
        def carecollect_payment_providers(self) -> list[PaymentProviderDescriptor]:
            return [
                PaymentProviderDescriptor("sepa", CAPABILITIES, lambda s: SepaDirectDebit(s, clock=clock))
            ]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    # [tutorial: mandate]
    sepa = SepaDirectDebit(settings, clock=clock, channel=channel)
    sepa.add_mandate(
        SepaMandate.sign(
            reference="CC-M-1",
            account_id=plan.account_id,
            creditor_id="DE98ZZZ09999999999",
            iban="DE89 3704 0044 0532 0130 00",
            debtor_name="Erika Mustermann",
            signed_on=dt.date(2026, 2, 10),
            language="de",
            notice_address="erika@example.de",
        )
    )
    # [tutorial: run]
    run_settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={
            "sepa": {
                **settings,
                "notice_channel": "outbox",
                "notice_channel_settings": {"folder": str(outbox)},
            }
        },
    )
    assert execute_run(store, NOW, pm, run_settings).charged == 1
    assert _owed(store, plan) < owed  # the run posted the payment
    # [tutorial: file]
    sepa = SepaDirectDebit(settings, clock=clock, channel=channel)  # reads the book the run's instance kept
    written = sepa.write_collection_file()
    assert written is not None  # written.path is the pain.008 to upload
    # [tutorial: returns]
    clock.now = dt.datetime(2026, 3, 19, 7, tzinfo=dt.UTC)
    data = (FIXTURES / "camt054_return.xml").read_bytes()  # downloaded from the bank
    result = sepa.read_bank_file(data, name="camt054_return.xml")
    report = intake(store, pm, run_settings, result.events, clock.now)
    # [tutorial: end]
    debit = sepa.collection("CC2603020000001")
    assert debit.account_id == plan.account_id and debit.amount == plan.instalments[0].amount
    assert debit.status is CollectionStatus.RETURNED and written.collections == ("CC2603020000001",)
    assert (outbox / "SEPA-PN-CC2603020000001.eml").exists()
    assert report.payments_reversed == 1 and not report.failures
    assert _owed(store, plan) == owed  # the balance is owed again, exactly
    reversed_ = [e for e in store.ledger(plan.account_id).entries if e.kind is EntryKind.PAYMENT_REVERSED]
    assert sum(
        -e.amount.minor_units if e.amount.is_negative() else e.amount.minor_units for e in reversed_
    ) == (plan.instalments[0].amount.minor_units)
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE
    assert (outbox / "SEPA-RET-CC2603020000001.eml").exists()  # the patient is told, kindly

    # the same file read again a day later: the same events, which intake takes as duplicates
    clock.now += dt.timedelta(days=1)
    again = sepa.read_bank_file(data, name="camt054_return.xml")
    replay = intake(store, pm, run_settings, again.events, clock.now)
    assert replay.payments_reversed == 0 and replay.duplicates == len(again.events)
    assert [
        e for e in store.ledger(plan.account_id).entries if e.kind is EntryKind.PAYMENT_REVERSED
    ] == reversed_
    assert _owed(store, plan) == owed
