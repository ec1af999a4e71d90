"""The daily run charges a plan by AvtaleGiro; a claim Nets never reports paid is reversed once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from carecollect.channels import Channel
from carecollect.invoices import InvoiceStatus
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.providers import PaymentProviderDescriptor
from carecollect.portfolio import load_portfolio
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store.base import Mandate
from carecollect.store.sqlite import SQLiteStore
from test_avtalegiro import ACTIVE, NOW, Clock, _agreements_file

from carecollect_avtalegiro import CAPABILITIES, AvtaleGiro, ClaimStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 40, seed=11, as_of=NOW.date())
    yield s
    s.close()


def _nok_plan(store: SQLiteStore) -> PaymentPlan:
    for snap in store.iter_account_snapshots():
        if snap.plans or snap.disputes:
            continue
        for inv in snap.invoices:
            balance = snap.ledger.invoice_balance(inv.id)
            if inv.status is InvoiceStatus.OPEN and balance.is_positive() and balance.currency == "NOK":
                plan = PaymentPlan(
                    f"PLAN-{inv.id}",
                    snap.account.id,
                    (inv.id,),
                    balance,
                    build_schedule(balance, 1, first_due=NOW.date()),
                    NOW - dt.timedelta(days=20),
                    status=PlanStatus.ACTIVE,
                )
                return plan
    pytest.skip("no open NOK invoice in the generated portfolio")


def test_an_unpaid_claim_of_a_run_charge_is_reversed_once(
    store: SQLiteStore, settings: dict[str, Any], tmp_path: Path, outbox: Path
) -> None:
    plan = _nok_plan(store)
    clock = Clock(NOW)
    ag = AvtaleGiro(settings, clock=clock, channel=OUTBOX.create({"folder": str(outbox)}))
    ag.register_payer(plan.account_id, language="nb", notice_address="kari@example.no")
    kid = ag.kid_for(plan.account_id)
    ag.read_ocr_file(_agreements_file((kid, True, ACTIVE)))
    with store.transaction():
        store.put_plan(plan)
        store.put_mandate(Mandate(plan.id, plan.account_id, "avtalegiro", "direct_debit", kid, NOW))

    class Plugin:
        @hookimpl
        def carecollect_payment_providers(self) -> list[PaymentProviderDescriptor]:
            return [
                PaymentProviderDescriptor("avtalegiro", CAPABILITIES, lambda s: AvtaleGiro(s, clock=clock))
            ]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    run_settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={
            "avtalegiro": {
                **settings,
                "notice_channel": "outbox",
                "notice_channel_settings": {"folder": str(outbox)},
            }
        },
    )
    assert execute_run(store, NOW, pm, run_settings).charged == 1
    ag = AvtaleGiro(settings, clock=clock)
    (claim,) = (ag.claim(r) for r in ["AG260302000001"])
    assert claim.amount == plan.instalments[0].amount and claim.kid == kid
    assert (outbox / f"AG-NOTICE-{claim.reference}.eml").exists()  # the payer wants notices
    assert ag.write_claim_file() is not None

    clock.now = NOW + dt.timedelta(days=14)  # due on the 9th, 3 grace days, nothing reported paid
    events = ag.unpaid_claims()
    assert ag.claim(claim.reference).status is ClaimStatus.FAILED
    report = intake(store, pm, run_settings, events, clock.now)
    assert report.payments_reversed == 1 and not report.failures
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE
    replay = intake(store, pm, run_settings, ag.unpaid_claims(), clock.now)
    assert replay.payments_reversed == 0 and replay.duplicates == 1
