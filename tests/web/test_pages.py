"""The patient pages through Starlette's test client: every journey stores what the patient did, durably,
and the next dry run plans no outreach it stopped."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import SECRET, open_store

from carecollect.channels import Channel
from carecollect.disputes import DisputeReason
from carecollect.plans import PlanStatus
from carecollect.plugins.providers import sign_webhook
from carecollect.relief.assistance import ApplicationStatus
from carecollect.run.event_intake import intake
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def planned(db: Path, settings: RunSettings, clock: Any, account_id: str) -> list[tuple[str, str]]:
    """What a dry run tomorrow at noon would send on the account: ``(purpose, channel)``."""
    now = dt.datetime.combine(clock().date() + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    with open_store(db) as store:
        plan = plan_run(store, now, settings)
    return [(m.step.purpose.value, m.channel.value) for m in plan.messages if m.step.account_id == account_id]


def webhook(
    reference: str, amount_minor: int, currency: str, event_id: str, at: dt.datetime
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "reference": reference,
            "amount": amount_minor,
            "currency": currency,
            "method": "card",
        }
    ).encode()
    return body, {**sign_webhook(SECRET.encode(), body, at=at), "content-type": "application/json"}


# -- the pay page ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("invoice", "lang", "words"),
    [
        ("INV-de1", "de", ["Ihre Rechnung", "100,00\u00a0€", "Von der Versicherung bezahlt", "Überweisung"]),
        (
            "INV-nb1",
            "nb",
            ["Regningen din", "1\u00a0000,00\u00a0kr", "Bankoverføring", "Hva regningen gjelder"],
        ),
        ("INV-bg1", "bg", ["Вашата сметка", "100,00\u00a0€", "Банков превод"]),
        ("INV-en1", "en", ["Your bill", "100,00\u00a0€", "Bank transfer", "What this bill is for"]),
    ],
)
def test_the_pay_page_explains_the_bill_in_the_patients_language(
    client: Any, link: Any, invoice: str, lang: str, words: list[str]
) -> None:
    page = client.get(f"/p/{link(invoice)}")
    assert page.status_code == 200
    assert f'<html lang="{lang}">' in page.text
    for word in words:
        assert word in page.text
    # every statement line, what insurance paid and what is left
    assert "Consultation" in page.text and "Blood test" in page.text
    # no PHI in the title
    title = re.search(r"<title>(.*)</title>", page.text).group(1)
    assert "Consultation" not in title and invoice not in title and "Test Person" not in title


def test_a_language_link_switches_the_page(client: Any, link: Any) -> None:
    page = client.get(f"/p/{link('INV-de1')}?lang=nb")
    assert '<html lang="nb">' in page.text and "Regningen din" in page.text
    # the forms keep the chosen language
    assert "?lang=nb" in page.text


def test_every_answer_carries_the_strict_headers(client: Any, link: Any) -> None:
    page = client.get(f"/p/{link('INV-de1')}")
    h = page.headers
    assert "script-src 'none'" in h["content-security-policy"]
    assert "default-src 'self'" in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["strict-transport-security"].startswith("max-age=")
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "no-store"
    cookie = h["set-cookie"]
    assert cookie.startswith("__Host-cc_form=")
    for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()


# -- paying ------------------------------------------------------------------------------------------


def test_pay_through_the_gateway_see_the_receipt_then_the_link_is_refused_as_used(
    client: Any, link: Any, clock: Any, db: Path
) -> None:
    token = link("INV-de1")
    page = client.get(f"/p/{token}")
    handoff = client.post(
        f"/p/{token}/pay/demo-gateway", data={"csrf": csrf(page.text)}, follow_redirects=False
    )
    assert handoff.status_code == 303
    target = handoff.headers["location"]
    assert target.startswith("https://testserver/gateway/")
    assert "return_url=" in target
    reference = target.split("/gateway/")[1].split(".")[0]
    # before the provider confirms, the receipt says so and the link still works
    pending = client.get(f"/p/{token}/receipt")
    assert pending.status_code == 200 and "Wir bestätigen Ihre Zahlung" in pending.text
    body, headers = webhook(reference, 10000, "EUR", f"evt_{reference}", clock())
    answer = client.post("/webhooks/demo-gateway", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["duplicate"] is False
    receipt = client.get(f"/p/{token}/receipt")
    assert "Zahlung erhalten" in receipt.text and "100,00\u00a0€" in receipt.text
    assert "vollständig bezahlt" in receipt.text
    again = client.get(f"/p/{token}")
    assert again.status_code == 410
    assert "bereits bezahlt" in again.text and "100,00" not in again.text
    with open_store(db) as store:
        assert store.ledger("A-de1").invoice_balance("INV-de1").is_zero()
        assert store.was_processed("paylink", token.split(".")[4])


def test_the_run_takes_in_what_the_door_kept_in_the_inbox(
    make_app: Any, link: Any, clock: Any, db: Path, settings: RunSettings, pm: Any
) -> None:
    from starlette.testclient import TestClient

    with TestClient(make_app(take_in_webhooks=False), base_url="https://testserver") as client:
        token = link("INV-nb1", "1000.00", "NOK")
        page = client.get(f"/p/{token}")
        handoff = client.post(
            f"/p/{token}/pay/demo-gateway", data={"csrf": csrf(page.text)}, follow_redirects=False
        )
        reference = handoff.headers["location"].split("/gateway/")[1].split(".")[0]
        body, headers = webhook(reference, 100000, "NOK", "evt-inbox-1", clock() - dt.timedelta(minutes=1))
        assert client.post("/webhooks/demo-gateway", content=body, headers=headers).status_code == 200
    with open_store(db) as store:
        assert [i.event_id for i in store.inbox_pending()] == ["evt-inbox-1"]
        # a day later: the event is checked as of when it was received, so the old signature still holds
        report = intake(store, pm, settings, (), clock() + dt.timedelta(days=1))
        assert report.payments == 1 and not report.failures
        assert store.inbox_pending() == []
        assert store.ledger("A-nb1").invoice_balance("INV-nb1").is_zero()
        # and a second intake takes nothing twice
        assert intake(store, pm, settings, (), clock() + dt.timedelta(days=1)).payments == 0


# -- plan, assistance, dispute, opt-out: each stops outreach at once ------------------------------------


@pytest.mark.parametrize(
    ("invoice", "account", "income"), [("INV-de2", "A-de2", "2 500,00"), ("INV-nb2", "A-nb2", "")]
)
def test_choosing_a_plan_stores_it_active_and_outreach_stops(
    client: Any,
    link: Any,
    db: Path,
    settings: RunSettings,
    clock: Any,
    invoice: str,
    account: str,
    income: str,
) -> None:
    assert planned(db, settings, clock, account), "the dry run plans a message before the plan"
    token = link(invoice)
    form = client.get(f"/p/{token}/plan")
    assert 'name="income"' in form.text and form.text.count("<input") == 2  # the income and the form token
    options = client.post(f"/p/{token}/plan", data={"csrf": csrf(form.text), "income": income})
    assert options.status_code == 200
    assert 'value="short_plan"' in options.text
    done = client.post(
        f"/p/{token}/plan/agree",
        data={"csrf": csrf(options.text), "income": income, "option": "short_plan", "agree": "yes"},
    )
    assert done.status_code == 200 and "<table" in done.text
    with open_store(db) as store:
        plans = store.account_snapshot(account).plans
    assert [p.status for p in plans] == [PlanStatus.ACTIVE]
    assert plans[0].invoice_ids == (invoice,)
    assert sum(i.amount.minor_units for i in plans[0].instalments) == (
        100000 if invoice.startswith("INV-nb") else 10000
    )
    assert planned(db, settings, clock, account) == []


def test_a_plan_needs_the_patients_agreement(client: Any, link: Any, db: Path) -> None:
    token = link("INV-de3")
    options = client.post(
        f"/p/{token}/plan", data={"csrf": csrf(client.get(f"/p/{token}/plan").text), "income": ""}
    )
    refused = client.post(
        f"/p/{token}/plan/agree", data={"csrf": csrf(options.text), "income": "", "option": "short_plan"}
    )
    assert refused.status_code == 400
    with open_store(db) as store:
        assert store.account_snapshot("A-de3").plans == ()


@pytest.mark.parametrize(
    ("invoice", "account", "lang_word"),
    [("INV-de2", "A-de2", "finanzielle"), ("INV-bg2", "A-bg2", "финансова")],
)
def test_asking_for_assistance_pauses_outreach(
    client: Any,
    link: Any,
    db: Path,
    settings: RunSettings,
    clock: Any,
    invoice: str,
    account: str,
    lang_word: str,
) -> None:
    assert planned(db, settings, clock, account)
    token = link(invoice)
    page = client.get(f"/p/{token}/assistance")
    assert lang_word in page.text.lower()
    done = client.post(f"/p/{token}/assistance", data={"csrf": csrf(page.text)})
    assert done.status_code == 200
    with open_store(db) as store:
        apps = store.account_snapshot(account).applications
    assert [a.status for a in apps] == [ApplicationStatus.RECEIVED]
    assert planned(db, settings, clock, account) == []


@pytest.mark.parametrize(
    ("invoice", "account", "reason", "answer"),
    [
        ("INV-de2", "A-de2", "not_mine", "Wir prüfen Ihre Rechnung"),
        ("INV-nb2", "A-nb2", "quality_of_service", "Vi undersøker regningen din"),
        ("INV-en2", "A-en2", "billing_error", "We are checking your bill"),
    ],
)
def test_a_dispute_is_opened_in_one_step_and_outreach_freezes(
    client: Any,
    link: Any,
    db: Path,
    settings: RunSettings,
    clock: Any,
    invoice: str,
    account: str,
    reason: str,
    answer: str,
) -> None:
    assert planned(db, settings, clock, account)
    token = link(invoice)
    page = client.get(f"/p/{token}/dispute")
    done = client.post(f"/p/{token}/dispute", data={"csrf": csrf(page.text), "reason": reason})
    assert done.status_code == 200 and answer in done.text
    with open_store(db) as store:
        disputes = store.account_snapshot(account).disputes
        assert [(d.invoice_id, d.reason, d.is_open, d.in_writing) for d in disputes] == [
            (invoice, DisputeReason(reason), True, True)
        ]
        assert store.inbox_pending() == []  # the door's event was taken in at once
    assert planned(db, settings, clock, account) == []
    # a second visit says it is being checked, and opens nothing more
    again = client.get(f"/p/{token}/dispute")
    assert 'name="reason"' not in again.text


@pytest.mark.parametrize(
    ("invoice", "account", "patient"), [("INV-de2", "A-de2", "P-de2"), ("INV-nb3", "A-nb3", "P-nb3")]
)
def test_opting_out_of_a_channel_stops_it_at_once(
    client: Any,
    link: Any,
    db: Path,
    settings: RunSettings,
    clock: Any,
    invoice: str,
    account: str,
    patient: str,
) -> None:
    before = planned(db, settings, clock, account)
    assert ("statement", "email") in before
    token = link(invoice)
    page = client.get(f"/p/{token}/opt-out")
    assert 'value="letter"' not in page.text  # what the law requires still goes by letter
    done = client.post(f"/p/{token}/opt-out", data={"csrf": csrf(page.text), "channel": "email"})
    assert done.status_code == 200
    with open_store(db) as store:
        points = [p for p in store.get_patient(patient).contact_points if p.channel is Channel.EMAIL]
    assert points and all(p.opted_out_at is not None for p in points)
    after = planned(db, settings, clock, account)
    assert ("statement", "email") not in after
    assert ("statement", "letter") in after


@pytest.mark.parametrize(
    ("invoice", "account", "words"), [("INV-de3", "A-de3", "(Ihre Zeit)"), ("INV-nb3", "A-nb3", "(din tid)")]
)
def test_the_contact_form_creates_a_contact_record_with_its_deadline(
    client: Any, link: Any, db: Path, clock: Any, invoice: str, account: str, words: str
) -> None:
    token = link(invoice)
    page = client.get(f"/p/{token}/contact")
    assert "+47 21 00 00 00" in page.text and words in page.text
    done = client.post(
        f"/p/{token}/contact",
        data={
            "csrf": csrf(page.text),
            "topic": "balance_question",
            "reply_by": "email",
            "message": "Please call.",
        },
    )
    assert done.status_code == 200 and words in done.text
    with open_store(db) as store:
        [request] = store.contact_requests(account)
    assert request.record.invoice_id == invoice and request.record.is_open
    assert request.reply_by == "email" and request.message == "Please call."
    now = clock()
    assert now < request.respond_by <= now + dt.timedelta(days=5)


def test_a_plan_can_be_paid_by_direct_debit_and_the_account_number_stays_with_the_provider(
    make_app: Any, link: Any, db: Path, settings: RunSettings, caplog: Any
) -> None:
    import logging

    import attrs
    from starlette.testclient import TestClient
    from tests.web import debit_plugin

    caplog.set_level(logging.INFO, logger="carecollect.web")
    iban = "DE89 3704 0044 0532 0130 00"
    token = link("INV-de2")
    with_debit = attrs.evolve(settings, payment_providers={**settings.payment_providers, "test-debit": {}})
    with TestClient(make_app(with_debit), base_url="https://testserver") as client:
        before = client.get(f"/p/{token}/direct-debit")
        assert "Lastschrift" in before.text and 'name="iban"' not in before.text  # a plan first
        plan_form = client.get(f"/p/{token}/plan")
        options = client.post(f"/p/{token}/plan", data={"csrf": csrf(plan_form.text), "income": ""})
        agreed = client.post(
            f"/p/{token}/plan/agree",
            data={"csrf": csrf(options.text), "income": "", "option": "short_plan", "agree": "yes"},
        )
        assert "/direct-debit" in agreed.text
        form = client.get(f"/p/{token}/direct-debit")
        assert 'name="iban"' in form.text
        field = csrf(form.text)
        bad = client.post(
            f"/p/{token}/direct-debit", data={"csrf": field, "iban": "DE00 1234", "consent": "yes"}
        )
        assert bad.status_code == 400
        unconsented = client.post(f"/p/{token}/direct-debit", data={"csrf": field, "iban": iban})
        assert unconsented.status_code == 400
        done = client.post(f"/p/{token}/direct-debit", data={"csrf": field, "iban": iban, "consent": "yes"})
        assert done.status_code == 200 and "Lastschrift ist eingerichtet" in done.text
    with open_store(db) as store:
        snap = store.account_snapshot("A-de2")
        [mandate] = snap.mandates
        [plan] = snap.plans
    assert (mandate.plan_id, mandate.provider, mandate.method) == (plan.id, "test-debit", "direct_debit")
    assert debit_plugin.MANDATES[mandate.reference][2] == iban.replace(" ", "")
    raw = b"".join(p.read_bytes() for p in db.parent.glob("web.sqlite*"))
    assert iban.replace(" ", "").encode() not in raw and b"3704 0044" not in raw
    assert "3704" not in "\n".join(r.getMessage() for r in caplog.records)


def test_a_second_request_after_a_decision_keeps_the_first_on_record(
    client: Any, link: Any, db: Path
) -> None:
    """A new plan, application or dispute through the same link never overwrites an earlier, decided one."""
    import attrs

    from carecollect.disputes import DisputeStatus
    from carecollect.plans import PlanStatus
    from carecollect.relief.assistance import ApplicationStatus

    token = link("INV-de3")
    page = client.get(f"/p/{token}/assistance")
    client.post(f"/p/{token}/assistance", data={"csrf": csrf(page.text)})
    client.post(f"/p/{token}/dispute", data={"csrf": csrf(page.text), "reason": "billing_error"})
    with open_store(db) as store:
        snap = store.account_snapshot("A-de3")
        store.put_application(
            attrs.evolve(
                snap.applications[0],
                status=ApplicationStatus.DENIED,
                decided_on=snap.applications[0].received_on,
            )
        )
        store.put_dispute(attrs.evolve(snap.disputes[0], status=DisputeStatus.WITHDRAWN))
    client.post(f"/p/{token}/assistance", data={"csrf": csrf(page.text)})
    client.post(f"/p/{token}/dispute", data={"csrf": csrf(page.text), "reason": "not_mine"})
    with open_store(db) as store:
        snap = store.account_snapshot("A-de3")
    assert sorted(a.status.value for a in snap.applications) == ["denied", "received"]
    assert sorted(d.status.value for d in snap.disputes) == ["open", "withdrawn"]
    assert not any(p.status is PlanStatus.ACTIVE for p in snap.plans)


def test_the_contact_page_shows_the_accounts_creditors_own_hours(
    make_app: Any, link: Any, settings: RunSettings
) -> None:
    """Two clinics of one installation: each patient sees their clinic's hours, in their own zone."""
    import attrs
    from starlette.testclient import TestClient

    from carecollect.office_hours import OfficeHours
    from carecollect.run.settings import CreditorSettings

    run = attrs.evolve(
        settings,
        office_hours=OfficeHours.parse("Mon-Fri 09:00-15:00", time_zone="Europe/Oslo"),
        creditors={
            "C-DE": CreditorSettings(
                phone="+49 30 1234567",
                office_hours=OfficeHours.parse(
                    "Mon-Fri 08:00-16:00; Thu 08:00-18:00", time_zone="Europe/Berlin"
                ),
            )
        },
    )
    with TestClient(make_app(run), base_url="https://testserver") as client:
        german = client.get(f"/p/{link('INV-de3')}/contact").text
        norwegian = client.get(f"/p/{link('INV-nb3')}/contact").text
    assert "Do. 08:00–18:00" in german and "09:00–15:00" not in german
    assert "man.–fre. 09:00–15:00" in norwegian and "18:00" not in norwegian
    # and each its clinic's own help line
    assert "+49 30 1234567" in german and "+47 21 00 00 00" not in german
    assert "+47 21 00 00 00" in norwegian and "+49 30 1234567" not in norwegian
