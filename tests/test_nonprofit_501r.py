"""IRS 501(r) end to end: a US nonprofit hospital's statement carries the FAP summary, the written ECA
notice goes out as a cadence step at least 30 days before any extraordinary collection action, and no
ECA comes before it (26 CFR 1.501(r)-4(b)(5), 1.501(r)-6(c)(4))."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.errors import ValidationError
from carecollect.invoices import Invoice, InvoiceLine, InvoiceStatus
from carecollect.ledger import Ledger, post_charge
from carecollect.messages.examples import context
from carecollect.messages.render import render
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose
from carecollect.patients import Account, ContactPoint, Patient
from carecollect.plugins.manager import make_plugin_manager
from carecollect.policy.cadence import compile_pack
from carecollect.policy.packs import get_pack
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.settings_file import parse_config
from carecollect.store.sqlite import SQLiteStore

NY = dt.timezone(dt.timedelta(hours=-5))
ISSUE = dt.date(2026, 1, 5)
URL = "https://lakeside.example.org/financial-assistance"


def _store(path: Path, *, nonprofit: bool = True) -> SQLiteStore:
    s = SQLiteStore(path)
    s.put_creditor(
        Creditor("C-1", "Lakeside Hospital", CreditorRole.PROVIDER, "US", nonprofit=nonprofit, state="MN")
    )
    consent = dt.datetime(2026, 1, 2, 9, tzinfo=NY)
    s.put_patient(
        Patient(
            "P-1",
            "en",
            ("America/Chicago",),
            (
                ContactPoint(Channel.LETTER, "12 Lake Road, Duluth MN"),
                ContactPoint(Channel.EMAIL, "pat@example.org", consent_at=consent),
            ),
            country="US",
            state="MN",
        )
    )
    s.put_account(Account("A-1", "P-1", "C-1", "USD", jurisdiction="us"))
    inv = Invoice(
        "INV-1",
        "A-1",
        "USD",
        (InvoiceLine("99213", "Office visit", Money("900.00", "USD"), dt.date(2026, 1, 2)),),
        ISSUE,
        ISSUE + dt.timedelta(days=30),
        first_statement_date=ISSUE,
        status=InvoiceStatus.OPEN,
    )
    s.put_invoice(inv)
    book, _ = post_charge(Ledger("A-1", "USD"), "INV-1", inv.total, at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    s.append_ledger("A-1", book.entries)
    return s


def _settings(tmp_path: Path, **kw: Any) -> RunSettings:
    return RunSettings(
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        agency="agency-files",
        agency_config={"folder": str(tmp_path / "agency")},
        assistance_url=URL,
        **kw,
    )


def _sent(tmp_path: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((tmp_path / "out").rglob("*.json")):
        out.append(json.loads(p.read_text(encoding="utf-8")))
    return out


def test_a_nonprofit_account_gets_the_summary_then_the_eca_notice_then_placement(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    pm = make_plugin_manager(load_entrypoints=False)
    notice_on: dt.date | None = None
    placed_on: dt.date | None = None
    with _store(tmp_path / "run.db") as store:
        for offset in range(0, 140):
            day = ISSUE + dt.timedelta(days=offset)
            now = dt.datetime(day.year, day.month, day.day, 11, tzinfo=NY)
            plan = plan_run(store, now, settings)
            for m in plan.messages:
                if m.step.purpose is OutreachPurpose.ECA_NOTICE and notice_on is None:
                    notice_on = day
            if plan.placements:
                placed_on = day
                # never an ECA before the written notice, and never within 30 days of it
                assert notice_on is not None and (day - notice_on).days >= 30
                assert (day - ISSUE).days >= 120
            execute_run(store, now, pm, settings)
            if placed_on is not None:
                break
        steps = {s.purpose for s in store.account_snapshot("A-1").steps}
    assert notice_on is not None and placed_on is not None, (notice_on, placed_on)
    assert OutreachPurpose.STATEMENT in steps and OutreachPurpose.ECA_NOTICE in steps
    assert placed_on == max(notice_on + dt.timedelta(days=30), ISSUE + dt.timedelta(days=120))
    texts = {}
    for rendered in (tmp_path / "out").rglob("*"):
        if rendered.is_file():
            texts[rendered.name] = rendered.read_text(encoding="utf-8", errors="replace")
    statement = " ".join(t for n, t in texts.items() if "statement" in n)
    eca = " ".join(t for n, t in texts.items() if "eca_notice" in n)
    assert URL in " ".join(statement.split()) and "plain-language summary" in " ".join(statement.split())
    # the written notice carries the plain-language summary with it (1.501(r)-6(c)(4))
    assert URL in " ".join(eca.split()) and "plain-language summary of our policy" in " ".join(eca.split())


def test_the_eca_notice_is_a_cadence_step_for_nonprofits_only() -> None:
    pack = get_pack("us")
    on = dt.date(2026, 3, 1)
    assert OutreachPurpose.ECA_NOTICE in compile_pack(pack, on=on, nonprofit=True).purposes
    assert OutreachPurpose.ECA_NOTICE not in compile_pack(pack, on=on).purposes
    for key in ("no", "de", "bg", "default"):
        assert OutreachPurpose.ECA_NOTICE not in compile_pack(get_pack(key), on=on, nonprofit=True).purposes


def test_a_for_profit_account_gets_neither(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    pm = make_plugin_manager(load_entrypoints=False)
    purposes = []
    with _store(tmp_path / "run.db", nonprofit=False) as store:
        for offset in range(0, 125, 3):
            day = ISSUE + dt.timedelta(days=offset)
            now = dt.datetime(day.year, day.month, day.day, 11, tzinfo=NY)
            purposes += [m.step.purpose for m in plan_run(store, now, settings).messages]
            execute_run(store, now, pm, settings)
    assert OutreachPurpose.STATEMENT in purposes and OutreachPurpose.ECA_NOTICE not in purposes
    statement = " ".join(
        " ".join(p.read_text(encoding="utf-8").split())
        for p in (tmp_path / "out").rglob("*")
        if p.is_file() and "statement" in p.name
    )
    assert statement and "plain-language summary" not in statement


def test_the_statement_summary_needs_a_url_and_prints_in_every_language() -> None:
    ctx = context(OutreachPurpose.STATEMENT, "us")
    import attrs

    with_summary = attrs.evolve(ctx, fap_summary=True, assistance_url=URL)
    for lang in ("en", "de", "nb", "bg"):
        text = " ".join(render(OutreachPurpose.STATEMENT, Channel.LETTER, lang, with_summary).text.split())
        assert URL in text
    plain = " ".join(render(OutreachPurpose.STATEMENT, Channel.LETTER, "en", ctx).text.split())
    assert "plain-language summary" not in plain
    with pytest.raises(ValidationError, match="assistance_url"):
        render(
            OutreachPurpose.STATEMENT,
            Channel.LETTER,
            "en",
            attrs.evolve(ctx, fap_summary=True, assistance_url=None),
        )


def test_the_settings_file_carries_the_assistance_url(tmp_path: Path) -> None:
    text = '[creditor]\nphone = "+1 218 555 0100"\nassistance_url = "' + URL + '"\n'
    assert parse_config(text, tmp_path).settings.assistance_url == URL
    assert parse_config("[creditor]\n", tmp_path).settings.assistance_url is None
