"""Screenshots of every patient page in every language (run: python docs/generate_patient_pages_gallery.py).

Serves the patient pages with uvicorn on a loopback port over a small sample store (no real
patient; today is 20 March 2026), drives Debian's chromium through Playwright over each page
and state, and writes ``docs/_static/patient-pages/<page>-<lang>.jpg`` (a 390 px wide phone),
``docs/_static/patient-pages/structure.json`` (each page's title, headings, buttons, links and
form fields) and ``docs/explanation/patient-pages-gallery.rst``. ``tests/web/test_gallery.py``
renders the pages again and compares their structure with the committed JSON, so the gallery
cannot drift from the pages (text and structure, not pixels).

Needs ``carecollect[web]``, ``playwright`` and ``apt-get install chromium``
(never ``playwright install``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "plugins" / "carecollect-demo-gateway" / "src"))

from carecollect.channels import Channel  # noqa: E402
from carecollect.creditors import Creditor, CreditorRole  # noqa: E402
from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus  # noqa: E402
from carecollect.ledger import EntryKind, LedgerEntry  # noqa: E402
from carecollect.messages.paylinks import PayLinkSigner  # noqa: E402
from carecollect.money import Money  # noqa: E402
from carecollect.patients import Account, ContactPoint, Patient  # noqa: E402
from carecollect.plugins.providers import sign_webhook  # noqa: E402
from carecollect.run.settings import RunSettings  # noqa: E402
from carecollect.store.sqlite import SQLiteStore  # noqa: E402

OUT = HERE / "_static" / "patient-pages"
PAGE = HERE / "explanation" / "patient-pages-gallery.rst"
NOW = dt.datetime(2026, 3, 20, 10, 0, tzinfo=dt.UTC)
KEY = b"gallery-key-0123456789abcdef-0123456789"
SECRET = "whsec_gallery_0123456789"
LANGUAGES = ("en", "de", "nb", "bg")
#: language -> (creditor, country, jurisdiction, currency, zone, line descriptions, insurer)
SAMPLES = {
    "en": ("Riverside Community Hospital", "US", "us", "USD", "America/Chicago",
           ("Office visit with your doctor", "Blood test"), "Acme Health"),
    "de": ("Praxis am Park", "DE", "de", "EUR", "Europe/Berlin",
           ("Beratung und Untersuchung", "Blutuntersuchung"), "Private Krankenversicherung"),
    "nb": ("Fjordklinikken", "NO", "no", "NOK", "Europe/Oslo",
           ("Konsultasjon hos lege", "Blodprøve"), None),
    "bg": ("Медицински център Витоша", "BG", "bg", "EUR", "Europe/Sofia",
           ("Преглед при лекар", "Кръвен тест"), "НЗОК"),
}  # fmt: skip
#: The pages and states shown, in order: (name, caption, path after the link, action).
SCENES = (
    ("pay", "The pay page: amount due, ways to pay, choices, the statement, the glossary, rights", "", None),
    (
        "plan-options",
        "A payment plan: the options for the income given, each with its schedule",
        "/plan",
        "plan",
    ),
    ("plan-agreed", "The plan agreed: stored, reminders stop", "/plan", "agree"),
    ("assistance", "Ask for financial assistance", "/assistance", None),
    ("dispute", "Something is wrong with this bill", "/dispute", None),
    ("opt-out", "Stop messages on one channel", "/opt-out", None),
    ("contact", "Talk to a person: phone, hours in the patient's zone, a contact form", "/contact", None),
    ("contact-sent", "The contact form sent: when the answer is due", "/contact", "contact"),
    ("receipt", "Back from the hosted checkout: the receipt", "/receipt", "pay"),
    ("used", "The link opened again after the payment: refused as used", "", "pay"),
    ("expired", "An expired link: a clear page and no data", "", "expired"),
)


def _store(path: Path) -> None:
    with contextlib.closing(SQLiteStore(path)) as store:
        for lang in LANGUAGES:
            creditor, country, jur, cur, zone, (first, second), insurer = SAMPLES[lang]
            store.put_creditor(
                Creditor(id=f"C-{lang}", name=creditor, role=CreditorRole.PROVIDER, country=country)
            )
            consent = NOW - dt.timedelta(days=400)
            store.put_patient(
                Patient(
                    id=f"P-{lang}",
                    preferred_language=lang,
                    time_zones=(zone,),
                    contact_points=(
                        ContactPoint(Channel.SMS, f"+100000000{len(lang)}", consent_at=consent),
                        ContactPoint(Channel.EMAIL, f"patient-{lang}@example.org", consent_at=consent),
                        ContactPoint(Channel.LETTER, "Sample Street 1", consent_at=consent),
                    ),
                    country=country,
                )
            )
            store.put_account(
                Account(
                    id=f"A-{lang}",
                    patient_id=f"P-{lang}",
                    creditor_id=f"C-{lang}",
                    currency=cur,
                    jurisdiction=jur,
                )
            )
            scale = 10 if cur == "NOK" else 1
            service = dt.date(2026, 2, 2)
            insured = insurer is not None
            invoice = Invoice(
                id=f"INV-2026-{lang.upper()}",
                account_id=f"A-{lang}",
                currency=cur,
                lines=(
                    InvoiceLine("99213", first, Money(180 * scale, cur), service),
                    InvoiceLine("85025", second, Money(60 * scale, cur), service),
                ),
                status=InvoiceStatus.OPEN,
                issue_date=dt.date(2026, 2, 20),
                first_statement_date=dt.date(2026, 2, 20),
                due_date=dt.date(2026, 3, 22),
                insurance=Insurance(
                    ClaimStatus.ADJUDICATED,
                    insurer_paid=Money(120 * scale, cur),
                    contractual_adjustment=Money(20 * scale, cur),
                    payer_name=insurer,
                )
                if insured
                else Insurance(),
            )
            store.put_invoice(invoice)
            at = dt.datetime(2026, 2, 20, tzinfo=dt.UTC)
            entries = [
                LedgerEntry(
                    f"charge:{invoice.id}", EntryKind.CHARGE, invoice.total, at, invoice.id, invoice.id
                )
            ]
            if insured:
                entries += [
                    LedgerEntry(f"ins:{invoice.id}", EntryKind.INSURANCE_PAYMENT, invoice.insurer_paid, at, invoice.id, "ins"),
                    LedgerEntry(
                        f"adj:{invoice.id}", EntryKind.ADJUSTMENT, invoice.contractual_adjustment, at, invoice.id, "adj",
                        "insurance_adjustment:contractual",
                    ),
                ]  # fmt: skip
            store.append_ledger(f"A-{lang}", entries)


@contextlib.contextmanager
def serve(db: Path, clock: Any) -> Iterator[str]:
    """The pages (and the demo gateway's checkout) on a loopback port; yields the base URL."""
    import carecollect_demo_gateway
    import uvicorn

    from carecollect.plugins.manager import make_plugin_manager
    from carecollect.web import BankTransfer, WebSettings, create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = RunSettings(
        pay_link_key=KEY,
        pay_link_base=f"{url}/p",
        phone="+1 555 0100",
        payment_providers={"demo-gateway": {"webhook_secret": SECRET, "checkout_url": f"{url}/gateway"}},
    )
    app = create_app(
        settings,
        lambda: SQLiteStore(db),
        make_plugin_manager(load_entrypoints=False, plugins=[carecollect_demo_gateway]),
        web=WebSettings(
            bank_transfer=BankTransfer("Sample Clinic", "NO93 8601 1117 947", "DNBANOKK"),
            hsts_seconds=0,
            ip_capacity=100_000,  # one visitor walks every page in every language quickly
            link_capacity=100_000,
        ),
        clock=clock,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _structure(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
      const text = el => el.innerText.replace(/\\s+/g, ' ').trim();
      const main = document.querySelector('main');
      return {
        lang: document.documentElement.lang,
        title: document.title,
        headings: [...main.querySelectorAll('h1, h2, h3')].map(h => h.tagName.toLowerCase() + ': ' + text(h)),
        buttons: [...main.querySelectorAll('button')].map(text),
        links: [...main.querySelectorAll('a')].map(text),
        fields: [...main.querySelectorAll('label, legend')].map(text),
        paragraphs: [...main.querySelectorAll('p')].map(text),
      };
    }"""
    )


def _pay(url: str, token: str, page: Any) -> None:
    """Pay through the pay page's button; the gateway's webhook is posted signed at the gallery's clock."""
    page.goto(f"{url}/p/{token}")
    page.locator("form.pay button").click()
    page.wait_for_url(f"{url}/gateway/**")
    reference = page.url.split("/gateway/")[1].split(".")[0]
    invoice = token.split(".")[0]
    minor, currency = token.split(".")[1:3]
    body = json.dumps(
        {"id": f"evt-{invoice}", "type": "payment.succeeded", "reference": reference,
         "amount": int(minor), "currency": currency, "method": "card"}
    ).encode()  # fmt: skip
    headers = {**sign_webhook(SECRET.encode(), body, at=NOW), "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{url}/webhooks/demo-gateway", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def capture(screenshots: Path | None = None, browser: Any = None) -> dict[str, dict[str, Any]]:
    """Every scene in every language: its structure (and a screenshot into ``screenshots``).

    :param browser: a Playwright browser to use (the tests' own); default: start chromium here.
    """
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            executable = shutil.which("chromium")
            own = p.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            try:
                return capture(screenshots, own)
            finally:
                own.close()
    structures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "gallery.sqlite"
        _store(db)
        clock_at = [NOW]
        with serve(db, lambda: clock_at[0]) as url:
            context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            page = context.new_page()
            for lang in LANGUAGES:
                cur = SAMPLES[lang][3]
                balance = Money(100 * (10 if cur == "NOK" else 1), cur)
                if SAMPLES[lang][6] is None:  # uninsured: the whole charge is the patient's
                    balance = Money(240 * (10 if cur == "NOK" else 1), cur)
                signer = PayLinkSigner(KEY, f"{url}/p")

                def issue(
                    nonce: str,
                    days: int = 30,
                    lang: str = lang,
                    balance: Money = balance,
                    signer: Any = signer,
                ) -> str:
                    expires = NOW + dt.timedelta(days=days)
                    return signer.issue(
                        f"INV-2026-{lang.upper()}", balance, expires_at=expires, nonce=nonce
                    ).token

                token = issue(f"gallery-{lang}")
                for name, _caption, path, action in SCENES:
                    clock_at[0] = NOW
                    if action == "plan":
                        page.goto(f"{url}/p/{token}/plan")
                        page.locator("#income").fill("3000")
                        page.locator("main form button").first.click()
                        page.locator("section.option").first.wait_for()
                    elif action == "agree":
                        plan_token = issue(f"gallery-plan-{lang}")
                        page.goto(f"{url}/p/{plan_token}/plan")
                        page.locator("main form button").first.click()
                        option = page.locator("section.option").nth(1)
                        option.locator("input[type=checkbox]").check()
                        option.locator("button").click()
                        page.locator("p.ok").wait_for()
                    elif action == "contact":
                        page.goto(f"{url}/p/{token}/contact")
                        page.locator("#message").fill("Please call me about the second line.")
                        page.locator("main form button").click()
                        page.locator("p.ok").wait_for()
                    elif action == "pay":
                        if name == "receipt":
                            _pay(url, token, page)
                        page.goto(f"{url}/p/{token}{path}")
                    elif action == "expired":
                        old = issue(f"gallery-old-{lang}", days=1)
                        clock_at[0] = NOW + dt.timedelta(days=2)
                        page.goto(f"{url}/p/{old}")
                    else:
                        page.goto(f"{url}/p/{token}{path}")
                    structures[f"{name}-{lang}"] = _structure(page)
                    if screenshots is not None:
                        page.screenshot(
                            path=str(screenshots / f"{name}-{lang}.jpg"),
                            full_page=True,
                            type="jpeg",
                            quality=55,
                        )
            context.close()
    return structures


def rst() -> str:
    names = {"en": "English", "de": "Deutsch", "nb": "Norsk", "bg": "Български"}
    out = [
        ".. This page is generated by docs/generate_patient_pages_gallery.py; do not edit by hand.",
        "",
        "Patient pages gallery",
        "=====================",
        "",
        "Every patient page and state in every language, as a 390 px wide phone shows it, taken in",
        "Chromium from the sample data of ``docs/generate_patient_pages_gallery.py`` (nothing here is real",
        "patient data; today is 20 March 2026). ``tests/web/test_gallery.py`` keeps the pages' text and",
        "structure equal to what the screenshots show.",
        "",
        ".. contents:: Pages",
        "   :local:",
        "   :depth: 1",
        "",
    ]
    for name, caption, _path, _action in SCENES:
        title = caption.split(":")[0]
        out += [title, "-" * len(title), "", caption + ".", ""]
        for lang in LANGUAGES:
            out += [
                f".. figure:: /_static/patient-pages/{name}-{lang}.jpg",
                f"   :alt: {caption} ({names[lang]})",
                "   :width: 240px",
                "",
                f"   {names[lang]}",
                "",
            ]
    return "\n".join(out)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    structures = capture(OUT)
    (OUT / "structure.json").write_text(
        json.dumps(structures, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    PAGE.write_text(rst() + "\n", encoding="utf-8")
    print(f"wrote {len(structures)} screenshots to {OUT} and {PAGE}")


if __name__ == "__main__":
    main()
