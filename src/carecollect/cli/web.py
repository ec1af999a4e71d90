"""``carecollect web``: serve the patient pages (``serve``) and print a pay link (``link``).

Both read the database's settings file (:mod:`carecollect.run.settings_file`) and the pay-link
key from ``CARECOLLECT_PAY_LINK_KEY`` (64 hex digits) or ``--key-file``. The optional
``[web]`` table of the settings file gives the bank details shown as a way to pay::

    [web]
    bank_recipient = "Fjordklinikken AS"
    bank_account = "NO93 8601 1117 947"
    bank_bic = "DNBANOKK"

``carecollect demo`` prepares all of this for its database and prints the command.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import click

from ..errors import ConfigurationError

__all__ = ["demo_pages", "web"]

#: Where ``carecollect web serve`` listens unless told.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def _key(key_file: Path | None) -> bytes:
    if key_file is not None:
        text = key_file.read_text(encoding="utf-8").strip()
    else:
        text = os.environ.get("CARECOLLECT_PAY_LINK_KEY", "")
    if not text:
        raise ConfigurationError(
            "no pay-link key: set CARECOLLECT_PAY_LINK_KEY (64 hex digits) or pass --key-file"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError("the pay-link key must be hex (64 hex digits for 32 bytes)") from None
    if len(key) < 32:
        raise ConfigurationError("the pay-link key must be at least 32 bytes (64 hex digits)")
    return key


def _web_table(db: Path) -> Mapping[str, Any]:
    from ..run.settings_file import config_path

    data = tomllib.loads(config_path(db).read_text(encoding="utf-8"))
    table = data.get("web", {})
    if not isinstance(table, Mapping):
        raise ConfigurationError("settings file: [web] must be a table")
    return table


@click.group()
def web() -> None:
    """The patient pages: pay links that open a page, webhooks received over HTTP (needs carecollect[web])."""


@web.command()
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default="carecollect.sqlite",
              show_default=True, help="The SQLite database (its settings file is the same name with .toml).")  # fmt: skip
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on.",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the pay-link key in hex (instead of CARECOLLECT_PAY_LINK_KEY).",
)
@click.option(
    "--public-url",
    default=None,
    help="The address patients use (https://pay.example.org) when a proxy stands in front.",
)
@click.option(
    "--demo-checkout",
    is_flag=True,
    help="Serve the demo gateway's simulated hosted checkout at /gateway (carecollect-demo-gateway).",
)
def serve(
    db: Path, host: str, port: int, key_file: Path | None, public_url: str | None, demo_checkout: bool
) -> None:
    """Serve the patient pages and the webhook door with uvicorn (access log off: URLs carry pay links)."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            'the patient pages need the web extra: pip install "carecollect[web]"'
        ) from None
    from ..plugins.manager import make_plugin_manager
    from ..run.settings_file import load_config
    from ..store.sqlite import SQLiteStore
    from ..store.urls import open_store, sqlite_path, store_scheme
    from ..web import BankTransfer, OfficeHours, WebSettings, create_app
    from .store import resolve_store_url

    if not db.exists():
        raise ConfigurationError(f"no database at {db}; run `carecollect init --db {db}` first")
    config = load_config(db)
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    settings = attrs.evolve(config.settings, pay_link_key=_key(key_file), pay_link_base=f"{base}/p")
    table = _web_table(db)
    bank = None
    if table.get("bank_account"):
        bank = BankTransfer(
            str(table.get("bank_recipient", "")), str(table["bank_account"]), table.get("bank_bic")
        )
    mounts: dict[str, Any] = {}
    origins: tuple[str, ...] = ()
    if demo_checkout:
        try:
            from carecollect_demo_gateway.hosted import create_checkout_app
        except ImportError:
            raise ConfigurationError(
                "--demo-checkout needs the demo gateway plugin: pip install ./plugins/carecollect-demo-gateway"
            ) from None
        gateway = dict(settings.payment_providers.get("demo-gateway", {}))
        if "webhook_secret" not in gateway:
            raise ConfigurationError(
                "--demo-checkout: [payment_providers.demo-gateway] needs a webhook_secret"
            )
        gateway["checkout_url"] = f"{base}/gateway"
        settings = attrs.evolve(
            settings, payment_providers={**settings.payment_providers, "demo-gateway": gateway}
        )
        mounts["/gateway"] = create_checkout_app(
            {
                "webhook_secret": gateway["webhook_secret"],
                "notify_url": f"{base}/webhooks/demo-gateway",
                "return_base": f"{base}/p/",
            }
        )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    options = WebSettings(
        public_url=base,
        checkout_origins=origins,
        bank_transfer=bank,
        office_hours=config.settings.office_hours or OfficeHours(time_zone=config.centre_tz),
        centre_country=config.centre_country,
        hsts_seconds=0 if loopback and public_url is None else 31_536_000,
    )
    url = resolve_store_url(db, None)
    if store_scheme(url) == "sqlite":
        path = sqlite_path(url)

        def opener() -> Any:
            return SQLiteStore(path, check_same_thread=False)
    else:

        def opener() -> Any:
            return open_store(url)

    app = create_app(settings, opener, make_plugin_manager(), web=options)
    click.echo(f"carecollect patient pages on {base} (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")


@web.command()
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default="carecollect.sqlite",
              show_default=True, help="The SQLite database.")  # fmt: skip
@click.argument("invoice_id")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the pay-link key in hex (instead of CARECOLLECT_PAY_LINK_KEY).",
)
@click.option(
    "--base",
    default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/p",
    show_default=True,
    help="Where the pay page is served.",
)
@click.option(
    "--days", default=30, show_default=True, type=click.IntRange(1, 365), help="Days the link is valid."
)
def link(db: Path, invoice_id: str, key_file: Path | None, base: str, days: int) -> None:
    """Print a pay link for INVOICE_ID's open balance (valid --days days)."""
    from ..store.urls import open_store
    from .store import resolve_store_url

    store = open_store(resolve_store_url(db, None))
    try:
        click.echo(_issue(store, _key(key_file), base, invoice_id, days))
    finally:
        store.close()


def _issue(store: Any, key: bytes, base: str, invoice_id: str, days: int) -> str:
    from ..messages.paylinks import PayLinkSigner, new_nonce

    invoice = store.get_invoice(invoice_id)
    book = store.ledger(invoice.account_id)
    balance = (
        book.invoice_balance(invoice.id)
        if invoice.id in book.invoice_ids()
        else invoice.patient_responsibility
    )
    if not balance.is_positive():
        raise ConfigurationError(f"Invoice {invoice_id}: nothing is owed on it; pick an open invoice")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return str(PayLinkSigner(key, base).issue(invoice.id, balance, expires_at=expires, nonce=new_nonce()).url)


def demo_pages(db: Path) -> tuple[Path, str] | None:
    """Prepare a demo database for ``carecollect web serve``: a key file, the demo gateway, bank details.

    :returns: the key file and a pay link of a demo patient with an open balance (``None``: none is open).
    """
    from ..invoices import InvoiceStatus
    from ..run.settings_file import config_path
    from ..store.sqlite import SQLiteStore

    key_file = db.with_name(f"{db.stem}-paylink.key")
    if not key_file.exists():
        key_file.write_text(secrets.token_bytes(32).hex() + "\n", encoding="utf-8")
        key_file.chmod(0o600)
    cfg = config_path(db)
    text = cfg.read_text(encoding="utf-8")
    if "[web]" not in text:
        text += (
            "\n[web]\n# Bank details the patient pages show (`carecollect web serve`).\n"
            'bank_recipient = "carecollect demo clinic"\nbank_account = "NO93 8601 1117 947"\nbank_bic = "DNBANOKK"\n'
            "\n[payment_providers.demo-gateway]\n# The simulated card gateway (carecollect-demo-gateway).\n"
            f'webhook_secret = "demo-{secrets.token_hex(12)}"\n'
        )
        cfg.write_text(text, encoding="utf-8")
    store = SQLiteStore(db)
    try:
        for row in store.iter_invoice_rows():
            if row.status == InvoiceStatus.OPEN.value and row.balance_minor > 0 and not row.open_dispute:
                url = _issue(
                    store, _key(key_file), f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/p", row.invoice_id, 30
                )
                return key_file, url
    finally:
        store.close()
    return None
