"""The tutorial "A Norwegian patient pays by Vipps" runs, step by step, against the local Vipps server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import tutorial_vipps as tutorial
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.store.sqlite import SQLiteStore
from conftest import WEBHOOK_SECRET, WEBHOOK_URL

from carecollect_vipps import VIPPS
from carecollect_vipps.testing_server import LocalVipps


def test_kari_pays_her_gp_bill_with_vipps(
    settings: dict[str, str], vipps_server: LocalVipps, tmp_path: Path
) -> None:
    now = dt.datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Europe/Oslo"))
    store = SQLiteStore(tmp_path / "clinic.db")
    try:
        invoice = tutorial.the_clinic_bills_kari(store, now)
        vipps = VIPPS.create(settings)

        link = tutorial.the_pay_page_opens_vipps(store, vipps, invoice, now)
        assert link.success and link.url and link.url.startswith("https://landing.vipps.no/")
        assert link.amount == Money("440.00", "NOK")
        again = tutorial.the_pay_page_opens_vipps(store, vipps, invoice, now)  # a second tap
        assert again.reference == link.reference and len(vipps_server.payments) == 1

        vipps_server.approve(str(link.reference))  # Kari approves in the Vipps app
        captured = tutorial.kari_comes_back(vipps, link, invoice)
        assert captured.success

        deliveries = vipps_server.deliveries(WEBHOOK_SECRET, WEBHOOK_URL, str(link.reference), now)
        assert [json_name(body) for _, body in deliveries] == ["CREATED", "AUTHORIZED", "CAPTURED"]
        report = tutorial.the_webhooks_reach_the_ledger(
            store, settings, deliveries, now, str(tmp_path / "out")
        )
        assert (report.payments, report.processed, report.failures) == (1, 3, ())
        book = store.ledger(invoice.account_id)
        assert book.invoice_balance(invoice.id).is_zero()
        assert book.sum_of(EntryKind.PATIENT_PAYMENT) == Money("440.00", "NOK")
    finally:
        store.close()


def json_name(body: bytes) -> str:
    import json

    return str(json.loads(body)["name"])
