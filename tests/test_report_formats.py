"""``carecollect report --format json|csv|html``: the same figures, and a page that opens offline."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.cli import main
from carecollect.ledger import LedgerEntry
from carecollect.report_formats import aging_history, history_from_store
from carecollect.reports import aging
from carecollect.store.sqlite import SQLiteStore

AS_OF = "2026-03-09"
NOW = dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "demo.sqlite"
    result = CliRunner().invoke(
        main, ["demo", "--db", str(path), "--invoices", "120", "--weeks", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return path


def _report(db: Path, fmt: str, *extra: str) -> str:
    result = CliRunner().invoke(
        main, ["report", "--db", str(db), "--as-of", AS_OF, "--format", fmt, *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_json_and_csv_carry_the_same_figures(demo_db: Path) -> None:
    doc = json.loads(_report(demo_db, "json"))
    assert doc["format"] == "carecollect.report/1" and doc["as_of"] == "2026-03-09T16:00:00+00:00"
    rows = list(csv.DictReader(io.StringIO(_report(demo_db, "csv"))))
    for line in doc["aging"]:
        got = [
            Decimal(r["value"]) for r in rows if r["section"] == "aging" and r["currency"] == line["currency"]
        ]
        assert got == [Decimal(a) for a in line["amounts"]]
    by_channel = {r["label"]: int(r["value"]) for r in rows if r["section"] == "messages_by_channel"}
    assert (
        by_channel == doc["messages"]["by_channel"]
        and sum(by_channel.values()) == doc["messages"]["total"] > 0
    )
    assert len(doc["history"]) == 5  # now and every 7 days back over 30 days
    assert doc["history"][-1]["aging"] == [
        {"currency": line["currency"], "amounts": line["amounts"]} for line in doc["aging"]
    ]


def test_aging_history_takes_back_what_was_paid_later(demo_db: Path) -> None:
    with SQLiteStore(demo_db) as store:
        rows = list(store.iter_invoice_rows())
        entries: list[LedgerEntry] = [e for s in store.iter_account_snapshots() for e in s.ledger.entries]
        history = history_from_store(store, NOW, 14)
    assert history.points[-1].aging == aging(rows, NOW)  # the latest point is today's aging
    paid = [e for e in entries if e.kind.value == "patient_payment" and e.at <= NOW]
    assert paid
    payment = paid[0]
    before = payment.at - dt.timedelta(seconds=1)
    [at_payment] = aging_history(rows, entries, [before]).points
    [later] = aging_history(rows, entries, [payment.at]).points
    cur = payment.amount.currency
    total = {p: next(line.total for line in p.aging if line.currency == cur) for p in (at_payment, later)}
    others = sum(
        (
            e.amount.minor_units
            for e in entries
            if e.at == payment.at and e.amount.currency == cur and e is not payment
        ),
        0,
    )
    if others == 0:
        assert total[at_payment].minor_units - total[later].minor_units == payment.amount.minor_units


def test_report_titles_carry_the_report_date(demo_db: Path, tmp_path: Path) -> None:
    text = _report(demo_db, "text")
    assert "Aging of open balances on 2026-03-09" in text
    page = tmp_path / "r.html"
    _report(demo_db, "html", "--output", str(page))
    source = page.read_text(encoding="utf-8")
    assert "<title>carecollect report, 2026-03-09</title>" in source
    assert "<script" not in source.lower()  # no script at all, from anywhere
    for fetch in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import"):
        assert fetch not in source


@pytest.mark.browser
def test_html_report_opens_offline_in_a_real_browser(demo_db: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("BROWSER TEST SKIPPED: chromium is not installed (apt-get install -y chromium)")
    try:  # only a missing browser skips: without playwright the test fails and says what to install
        from playwright import sync_api
    except ImportError:
        pytest.fail(
            'playwright is not installed: pip install "playwright==1.65.2" (never `playwright install`)'
        )
    page_file = tmp_path / "report.html"
    _report(demo_db, "html", "-o", str(page_file))
    requested: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            assert page.title() == "carecollect report, 2026-03-09"
            charts = page.locator("figure svg")
            ids = page.eval_on_selector_all("figure", "fs => fs.map(f => f.id)")
            assert {
                "chart-collection-rate",
                "chart-messages-channel",
                "chart-messages-language",
                "chart-plans",
            } <= set(ids)
            assert any(i.startswith("chart-aging-") for i in ids)
            assert "chart-service-levels" in ids
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100
            # the charts drew bars: pygal gives each value a rect or path in its series group
            drawn = page.eval_on_selector_all(
                "figure#chart-messages-channel svg .series rect", "r => r.length"
            )
            assert drawn > 0
            assert errors == []
        finally:
            browser.close()
    assert requested == [page_file.as_uri()]


def test_html_without_pygal_names_the_extra(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pygal", None)  # as if the extra were not installed
    result = CliRunner().invoke(main, ["report", "--db", str(demo_db), "--as-of", AS_OF, "--format", "html"])
    assert result.exit_code == 1
    assert 'pip install "carecollect[report]"' in result.output
