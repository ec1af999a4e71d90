"""What the patient pages refuse: changed, expired and used links, forged forms, bad or replayed webhooks,
oversized bodies and bursts; each with the right status and nothing stored."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import SECRET, open_store
from tests.web.test_pages import csrf, webhook

from carecollect.plugins.providers import sign_webhook


def snapshot(db: Path) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    with open_store(db) as store:
        counts = dict(store.counts())
        return {
            "counts": counts,
            "inbox": [(i.kind, i.event_id) for i in store.inbox_pending()],
            "audit": sum(1 for _ in store.audit_records()),
            "requests": len(store.contact_requests()),
        }


def test_a_changed_link_gets_a_clear_page_and_no_data(client: Any, link: Any, db: Path) -> None:
    token = link("INV-de1")
    parts = token.split(".")
    tampered = ".".join([parts[0], "100", *parts[2:]])  # EUR 1.00 instead of 100.00
    before = snapshot(db)
    page = client.get(f"/p/{tampered}", headers={"accept-language": "de-DE,de;q=0.9"})
    assert page.status_code == 404
    assert "Dieser Zahlungslink ist ungültig" in page.text
    for secret in ("INV-de1", "Praxis am Park", "Consultation", "100,00", "1,00"):
        assert secret not in page.text
    assert snapshot(db) == before


def test_an_unknown_invoice_is_refused_like_a_changed_link(client: Any, signer: Any, clock: Any) -> None:
    from carecollect.money import Money

    token = signer.issue(
        "INV-gone", Money("1.00", "EUR"), expires_at=clock() + dt.timedelta(days=1), nonce="n1"
    ).token
    assert client.get(f"/p/{token}").status_code == 404


@pytest.mark.parametrize(
    ("invoice", "words"), [("INV-nb1", "Denne betalingslenken er utløpt"), ("INV-bg1", "изтекла")]
)
def test_an_expired_link_is_refused_in_the_patients_language(
    client: Any, link: Any, clock: Any, db: Path, invoice: str, words: str
) -> None:
    token = link(invoice, days=2)
    clock.offset = dt.timedelta(days=3)
    before = snapshot(db)
    page = client.get(f"/p/{token}", headers={"accept-language": "en"})
    assert page.status_code == 410 and words in page.text
    assert "Consultation" not in page.text and invoice not in page.text
    # its forms are refused too
    assert client.post(f"/p/{token}/dispute", data={"reason": "not_mine"}).status_code == 410
    assert snapshot(db) == before


def test_a_used_link_is_refused_even_when_the_mark_is_only_in_the_store(
    make_app: Any, link: Any, db: Path, clock: Any
) -> None:
    """The single-use mark lives in the store: a new app (a restart, another worker) refuses it too."""
    from starlette.testclient import TestClient

    token = link("INV-de2")
    with open_store(db) as store:
        store.mark_processed("paylink", token.split(".")[4], at=clock())
    with TestClient(make_app(), base_url="https://testserver") as fresh:
        page = fresh.get(f"/p/{token}")
    assert page.status_code == 410 and "bereits bezahlt" in page.text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/dispute", {"reason": "not_mine"}),
        ("/assistance", {}),
        ("/opt-out", {"channel": "sms"}),
        ("/plan/agree", {"option": "short_plan", "agree": "yes", "income": ""}),
        ("/contact", {"topic": "other", "reply_by": "email", "message": "hello"}),
        ("/pay/demo-gateway", {}),
    ],
)
def test_a_form_without_its_token_is_refused_and_stores_nothing(
    client: Any, link: Any, db: Path, path: str, data: dict[str, str]
) -> None:
    token = link("INV-de3")
    client.get(f"/p/{token}")  # the cookie is set: only the form field is missing
    before = snapshot(db)
    refused = client.post(f"/p/{token}{path}", data=data)
    assert refused.status_code == 403 and "Formular ist abgelaufen" in refused.text
    forged = client.post(f"/p/{token}{path}", data={**data, "csrf": "forged-value"})
    assert forged.status_code == 403
    assert snapshot(db) == before


def test_a_form_token_of_another_link_or_without_the_cookie_is_refused(
    make_app: Any, link: Any, db: Path
) -> None:
    from starlette.testclient import TestClient

    mine, other = link("INV-de3"), link("INV-de2")
    with TestClient(make_app(), base_url="https://testserver") as client:
        field = csrf(client.get(f"/p/{other}").text)
        before = snapshot(db)
        assert (
            client.post(f"/p/{mine}/dispute", data={"csrf": field, "reason": "not_mine"}).status_code == 403
        )
        client.cookies.clear()
        assert (
            client.post(f"/p/{other}/dispute", data={"csrf": field, "reason": "not_mine"}).status_code == 403
        )
        assert snapshot(db) == before


def test_a_webhook_with_a_bad_signature_changes_nothing(client: Any, clock: Any, db: Path) -> None:
    body, headers = webhook("demo_link_x", 10000, "EUR", "evt-bad", clock())
    before = snapshot(db)
    wrong = sign_webhook(b"not-the-secret", body, at=clock())
    assert client.post("/webhooks/demo-gateway", content=body, headers=wrong).status_code == 400
    assert client.post("/webhooks/demo-gateway", content=body + b" ", headers=headers).status_code == 400
    assert client.post("/webhooks/demo-gateway", content=body).status_code == 400
    old = sign_webhook(SECRET.encode(), body, at=clock() - dt.timedelta(hours=1))
    assert client.post("/webhooks/demo-gateway", content=body, headers=old).status_code == 400
    assert client.post("/webhooks/no-such-provider", content=body, headers=headers).status_code == 404
    assert snapshot(db) == before


def test_a_replayed_webhook_is_kept_once_and_posts_once(client: Any, link: Any, clock: Any, db: Path) -> None:
    token = link("INV-de1")
    handoff = client.post(
        f"/p/{token}/pay/demo-gateway",
        data={"csrf": csrf(client.get(f"/p/{token}").text)},
        follow_redirects=False,
    )
    reference = handoff.headers["location"].split("/gateway/")[1].split(".")[0]
    body, headers = webhook(reference, 10000, "EUR", "evt-replay", clock())
    first = client.post("/webhooks/demo-gateway", content=body, headers=headers)
    assert first.json() == {"received": "evt-replay", "duplicate": False}
    after_first = snapshot(db)
    for _ in range(3):
        again = client.post("/webhooks/demo-gateway", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["duplicate"] is True
    assert snapshot(db) == after_first
    with open_store(db) as store:
        payments = [e for e in store.ledger("A-de1").entries if e.kind.value == "patient_payment"]
    assert sum(e.amount.minor_units for e in payments) == 10000


def test_an_oversized_body_is_refused_before_the_app_reads_it(client: Any, link: Any, db: Path) -> None:
    token = link("INV-de1")
    field = csrf(client.get(f"/p/{token}/contact").text)
    before = snapshot(db)
    big = client.post(
        f"/p/{token}/contact",
        data={"csrf": field, "topic": "other", "reply_by": "email", "message": "x" * 70_000},
    )
    assert big.status_code == 413
    huge_hook = client.post("/webhooks/demo-gateway", content=b"{" + b" " * 100_000 + b"}")
    assert huge_hook.status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit counts what streams in
        for _ in range(20):
            yield b"x" * 8192

    assert client.post("/webhooks/demo-gateway", content=chunks()).status_code == 413
    assert snapshot(db) == before


def test_a_burst_over_the_rate_limit_is_refused(make_app: Any, link: Any, db: Path) -> None:
    from starlette.testclient import TestClient

    with TestClient(make_app(link_capacity=5, link_per_second=0.01), base_url="https://testserver") as client:
        token = link("INV-de1")
        codes = [client.get(f"/p/{token}").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        before = snapshot(db)
        refused = client.post(f"/p/{token}/dispute", data={"reason": "not_mine"})
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert snapshot(db) == before
        # another link of the same visitor is not held back by this one
        assert client.get(f"/p/{link('INV-de2')}").status_code == 200
    with TestClient(make_app(ip_capacity=3, ip_per_second=0.01), base_url="https://testserver") as client:
        codes = [client.get(f"/p/{link('INV-de1')}").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]


def test_the_log_names_no_invoice_amount_or_patient(client: Any, link: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="carecollect.web")
    token = link("INV-de1")
    page = client.get(f"/p/{token}")
    client.post(f"/p/{token}/dispute", data={"csrf": csrf(page.text), "reason": "not_mine"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"GET /p/<link [0-9a-f]{8}> 200", text)
    for secret in ("INV-de1", "10000", "Test Person", "A-de1", token):
        assert secret not in text


def test_replies_come_in_only_through_channels_listed_as_signed(
    make_app: Any, db: Path, clock: Any, pm: Any
) -> None:
    """A STOP reply through a listed channel opts the number out once; an unlisted channel is not a door."""
    import json as _json

    from starlette.testclient import TestClient

    from carecollect.channels import Channel

    with open_store(db) as store:
        number = next(
            p.address for p in store.get_patient("P-de1").contact_points if p.channel is Channel.SMS
        )
    reply = _json.dumps({"id": "sms-in-1", "from": number, "text": "STOP", "channel": "sms"}).encode()
    before = snapshot(db)
    with TestClient(make_app(), base_url="https://testserver") as closed:
        assert closed.post("/inbound/outbox", content=reply).status_code == 404
    assert snapshot(db) == before
    with TestClient(make_app(inbound_channels=("outbox",)), base_url="https://testserver") as client:
        assert client.post("/inbound/outbox", content=b"not json").status_code == 400
        assert snapshot(db) == before
        first = client.post("/inbound/outbox", content=reply)
        assert first.status_code == 200 and first.json() == {"received": "sms-in-1", "duplicate": False}
        assert client.post("/inbound/outbox", content=reply).json()["duplicate"] is True
    with open_store(db) as store:
        sms = [p for p in store.get_patient("P-de1").contact_points if p.channel is Channel.SMS]
        assert all(p.opted_out_at is not None for p in sms)
        assert store.inbox_pending() == []
        assert sum(1 for r in store.audit_records(subject_id="P-de1") if r.kind == "opt_out") == 1
