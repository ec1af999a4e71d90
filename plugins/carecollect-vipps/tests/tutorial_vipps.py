"""The code of the tutorial "A Norwegian patient pays by Vipps" (docs/tutorial), run by test_tutorial.py.

Each function is one step a vendor writes; the docs page includes them as they are here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from carecollect import Account, Channel, ContactPoint, Invoice, InvoiceLine, Money, Patient
from carecollect.creditors import Creditor, CreditorRole
from carecollect.invoices import issue_invoice
from carecollect.ledger import Ledger, post_charge
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.providers import PaymentResult
from carecollect.run.charges import provider_payment_id
from carecollect.run.event_intake import intake
from carecollect.run.inbound import InboundEvent, InboundKind, IntakeReport
from carecollect.run.settings import RunSettings
from carecollect.store.base import ProviderPayment
from carecollect.store.sqlite import SQLiteStore


def the_clinic_bills_kari(store: SQLiteStore, now: dt.datetime) -> Invoice:
    """A GP consultation and a blood test, billed in NOK and posted to Kari's account."""
    clinic = Creditor(id="CLINIC-1", name="Bergen Legesenter", role=CreditorRole.PROVIDER, country="NO")
    patient = Patient(
        id="P-100",
        preferred_language="nb",
        time_zones=("Europe/Oslo",),
        contact_points=(ContactPoint(Channel.SMS, "+4791234567", consent_at=now),),
        name="Kari Nordmann",
    )
    account = Account(
        id="A-100", patient_id="P-100", creditor_id="CLINIC-1", currency="NOK", jurisdiction="no"
    )
    invoice, _ = issue_invoice(
        Invoice(
            id="INV-100",
            account_id="A-100",
            currency="NOK",
            lines=(
                InvoiceLine("2ad", "Consultation with your GP", Money("345.00", "NOK"), dt.date(2026, 3, 2)),
                InvoiceLine("701a", "Blood test", Money("95.00", "NOK"), dt.date(2026, 3, 2)),
            ),
            issue_date=now.date(),
            due_date=now.date() + dt.timedelta(days=14),
        ),
        at=now,
    )
    book, _ = post_charge(Ledger("A-100", "NOK"), invoice.id, invoice.total, at=now)
    with store.transaction():
        store.put_creditor(clinic)
        store.put_patient(patient)
        store.put_account(account)
        store.put_invoice(invoice)
        store.append_ledger("A-100", book.entries)
    return invoice


def the_pay_page_opens_vipps(
    store: SQLiteStore, vipps: Any, invoice: Invoice, now: dt.datetime
) -> PaymentResult:
    """Kari taps "Pay with Vipps": a payment for what she owes, linked to her account before she pays."""
    owed = store.ledger(invoice.account_id).invoice_balance(invoice.id)
    link = vipps.create_payment_link(
        owed,
        idempotency_key=f"pay:{invoice.id}:{now.date()}",  # the same tap twice creates one payment
        account_id=invoice.account_id,
        expires_at=now + dt.timedelta(hours=1),
    )
    if link.success:
        store.link_provider_payment(
            ProviderPayment(
                "vipps",
                link.reference,
                invoice.account_id,
                provider_payment_id("vipps", link.reference),
                None,
                None,
            )
        )
    return link  # redirect Kari's browser to link.url: the Vipps app opens on her phone


def kari_comes_back(vipps: Any, link: PaymentResult, invoice: Invoice) -> PaymentResult:
    """Vipps sends Kari back to return_url once she approved: the treatment is done, so capture it all."""
    return vipps.capture(link.reference, link.amount, idempotency_key=f"capture:{link.reference}")


def the_webhooks_reach_the_ledger(
    store: SQLiteStore,
    settings: dict[str, str],
    deliveries: list[tuple[dict[str, str], bytes]],
    now: dt.datetime,
    outbox: str,
) -> IntakeReport:
    """The webhook door stored Vipps's deliveries; the daily run's intake verifies and posts them."""
    pm = make_plugin_manager()  # finds carecollect-vipps through its entry point
    run_settings = RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": outbox}},
        payment_providers={"vipps": settings},
    )
    events = [InboundEvent(InboundKind.PAYMENT, "vipps", body, headers) for headers, body in deliveries]
    return intake(store, pm, run_settings, events, now)
