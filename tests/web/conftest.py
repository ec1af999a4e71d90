"""Shared parts of the patient-page tests: a store with patients in two languages, signed links, the app."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("starlette", reason="the patient pages need carecollect[web]")

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from carecollect.ledger import EntryKind, LedgerEntry
from carecollect.messages.paylinks import PayLinkSigner, new_nonce
from carecollect.money import Money
from carecollect.patients import Account, ContactPoint, Patient
from carecollect.plugins.manager import make_plugin_manager
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore
from carecollect.web import BankTransfer, WebSettings, create_app

KEY = b"web-test-key-0123456789abcdef-0123456789"
SECRET = "whsec_web_test_0123456789"
BASE = "https://testserver/p"


class Clock:
    """A settable clock: real time by default (the demo gateway signs webhooks with real time)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def _patient(pid: str, language: str, zone: str) -> Patient:
    consent = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return Patient(
        id=pid,
        preferred_language=language,
        time_zones=(zone,),
        contact_points=(
            ContactPoint(Channel.SMS, f"+4790000{pid[-3:]}", consent_at=consent),
            ContactPoint(Channel.EMAIL, f"{pid.lower()}@example.org", consent_at=consent),
            ContactPoint(Channel.LETTER, "Street 1, 0150 Oslo", consent_at=consent),
        ),
        name="Test Person",
        country="NO" if language == "nb" else "DE",
    )


def charge_entries(inv: Invoice) -> list[LedgerEntry]:
    """What an importer puts on the ledger for an invoice: the charge, the insurer's payment, the adjustment."""
    at = dt.datetime.combine(inv.issue_date, dt.time(0), dt.UTC)
    return [
        LedgerEntry(f"charge:{inv.id}", EntryKind.CHARGE, inv.total, at, inv.id, inv.id),
        LedgerEntry(
            f"insurer:{inv.id}",
            EntryKind.INSURANCE_PAYMENT,
            inv.insurer_paid,
            at,
            inv.id,
            f"insurer:{inv.id}",
        ),
        LedgerEntry(
            f"contractual:{inv.id}",
            EntryKind.ADJUSTMENT,
            inv.contractual_adjustment,
            at,
            inv.id,
            f"contractual:{inv.id}",
            "insurance_adjustment:contractual",
        ),
    ]


def populate(store: SQLiteStore, today: dt.date) -> dict[str, str]:
    """Three patients in each of the four languages, each with one open invoice past its due date."""
    store.put_creditor(Creditor(id="C-DE", name="Praxis am Park", role=CreditorRole.PROVIDER, country="DE"))
    store.put_creditor(Creditor(id="C-NO", name="Fjordklinikken", role=CreditorRole.PROVIDER, country="NO"))
    out: dict[str, str] = {}
    rows = [
        ("de", "EUR", "C-DE", "de", "Europe/Berlin"),
        ("nb", "NOK", "C-NO", "no", "Europe/Oslo"),
        ("en", "EUR", "C-DE", "de", "America/New_York"),
        ("bg", "EUR", "C-DE", "de", "Europe/Sofia"),
    ]
    for n, (lang, cur, cid, jur, zone) in enumerate(rows, start=1):
        for k in (1, 2, 3):
            pid, aid, iid = f"P-{lang}{k}", f"A-{lang}{k}", f"INV-{lang}{k}"
            scale = 10 if cur == "NOK" else 1  # what is left: EUR 100.00, NOK 1 000.00
            store.put_patient(_patient(pid, lang, zone))
            store.put_account(
                Account(id=aid, patient_id=pid, creditor_id=cid, currency=cur, jurisdiction=jur)
            )
            invoice = Invoice(
                id=iid,
                account_id=aid,
                currency=cur,
                lines=(
                    InvoiceLine("1", "Consultation", Money(scale * 180, cur), today - dt.timedelta(days=60)),
                    InvoiceLine("2", "Blood test", Money(scale * 60, cur), today - dt.timedelta(days=60)),
                ),
                status=InvoiceStatus.OPEN,
                first_statement_date=today - dt.timedelta(days=55),
                issue_date=today - dt.timedelta(days=55),
                due_date=today - dt.timedelta(days=25),
                insurance=Insurance(
                    ClaimStatus.ADJUDICATED,
                    insurer_paid=Money(scale * 120, cur),
                    contractual_adjustment=Money(scale * 20, cur),
                    payer_name="Acme Health",
                ),
            )
            store.put_invoice(invoice)
            store.append_ledger(aid, charge_entries(invoice))
            out[f"{lang}{k}"] = iid
        assert n
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path, clock: Clock) -> Path:
    path = tmp_path / "web.sqlite"
    with contextlib.closing(SQLiteStore(path)) as store:
        populate(store, clock().date())
    return path


@pytest.fixture
def settings(tmp_path: Path) -> RunSettings:
    return RunSettings(
        channel_config={"outbox": {"folder": str(tmp_path / "outbox")}},
        pay_link_key=KEY,
        pay_link_base=BASE,
        phone="+47 21 00 00 00",
        payment_providers={
            "demo-gateway": {
                "webhook_secret": SECRET,
                "checkout_url": "https://testserver/gateway",
            }
        },
    )


@pytest.fixture
def pm() -> Any:
    import carecollect_demo_gateway
    from tests.web import debit_plugin

    return make_plugin_manager(load_entrypoints=False, plugins=[carecollect_demo_gateway, debit_plugin])


@pytest.fixture
def signer() -> PayLinkSigner:
    return PayLinkSigner(KEY, BASE)


@pytest.fixture
def link(signer: PayLinkSigner, clock: Clock) -> Callable[..., str]:
    """The token of a fresh pay link for an invoice (valid 30 days unless told)."""

    def make(invoice_id: str, amount: str = "100.00", currency: str = "EUR", days: int = 30) -> str:
        return signer.issue(
            invoice_id,
            Money(amount, currency),
            expires_at=clock() + dt.timedelta(days=days),
            nonce=new_nonce(),
        ).token

    return make


WEB = WebSettings(bank_transfer=BankTransfer("Praxis am Park", "DE89 3704 0044 0532 0130 00", "COBADEFFXXX"))


@pytest.fixture
def make_app(db: Path, settings: RunSettings, pm: Any, clock: Clock) -> Iterator[Callable[..., Any]]:
    apps: list[Any] = []

    def build(run: RunSettings | None = None, **web: Any) -> Any:
        app = create_app(
            run or settings,
            lambda: SQLiteStore(db),
            pm,
            web=attrs.evolve(WEB, **web),
            clock=clock,
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.state.carecollect_close()


@pytest.fixture
def client(make_app: Callable[..., Any]) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(make_app(), base_url="https://testserver") as c:
        yield c


def open_store(db: Path) -> contextlib.closing[SQLiteStore]:
    return contextlib.closing(SQLiteStore(db))


# -- a real server and a real browser ---------------------------------------------------------------

AXE_ENV = "CARECOLLECT_AXE_JS"
REQUIRE_ENV = "CARECOLLECT_REQUIRE_BROWSER"
HOW_TO_INSTALL = (
    "apt-get install -y chromium; pip install 'carecollect[web]' playwright (never `playwright install`); "
    "npm install --prefix tests/web axe-core (or set CARECOLLECT_AXE_JS to axe.min.js); then `nox -s browser`"
)


def _missing(what: str) -> None:
    """Skip loudly, or fail where the browser tests must run (CI sets CARECOLLECT_REQUIRE_BROWSER=1)."""
    message = f"browser tests need {what}: {HOW_TO_INSTALL}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def axe_source() -> str:
    path = Path(os.environ.get(AXE_ENV) or Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js")
    if not path.is_file():
        _missing(f"axe-core ({path} not found)")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        _missing("Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


class LiveServer:
    """The patient pages and the demo gateway's hosted checkout, served by uvicorn on a loopback port."""

    def __init__(self, app_factory: Callable[[str], Any]) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = app_factory(self.url)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def live_settings(url: str) -> RunSettings:
    return RunSettings(
        pay_link_key=KEY,
        pay_link_base=f"{url}/p",
        phone="+47 21 00 00 00",
        payment_providers={
            "demo-gateway": {"webhook_secret": SECRET, "checkout_url": f"{url}/gateway"},
            "test-debit": {},
        },
    )


@pytest.fixture
def live(db: Path, pm: Any, clock: Clock) -> Iterator[LiveServer]:
    from carecollect_demo_gateway.hosted import create_checkout_app

    def factory(url: str) -> Any:
        checkout = create_checkout_app(
            {
                "webhook_secret": SECRET,
                "notify_url": f"{url}/webhooks/demo-gateway",
                "return_base": f"{url}/p/",
            }
        )
        return create_app(
            live_settings(url),
            lambda: SQLiteStore(db),
            pm,
            # one browser walks many pages quickly; the limits have their own tests
            web=attrs.evolve(WEB, hsts_seconds=0, ip_capacity=10_000, link_capacity=10_000),
            clock=clock,
            mounts={"/gateway": checkout},
        )

    server = LiveServer(factory)
    yield server
    server.close()


@pytest.fixture
def page(browser: Any, axe_source: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 900}, locale="en-US")
    p = context.new_page()
    yield p
    context.close()
