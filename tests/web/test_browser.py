"""The patient journeys in a real browser (Debian's chromium through Playwright) against uvicorn on a
loopback port, each page and state checked with axe-core: no serious or critical violation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import KEY, live_settings, open_store

from carecollect.messages.paylinks import PayLinkSigner, new_nonce
from carecollect.money import Money
from carecollect.run.planning import plan_run

pytestmark = pytest.mark.browser


def axe(page: Any, source: str, where: str) -> None:
    """Run axe-core in the page (injected through the debugging protocol: the CSP forbids script tags)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})); }"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe on {where}: {bad}"


def no_sideways_scroll(page: Any, where: str) -> None:
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"{where} scrolls sideways at {width[1]} px: {width[0]} px wide"


def token_for(live: Any, invoice: str, amount: str, currency: str, clock: Any) -> str:
    signer = PayLinkSigner(KEY, f"{live.url}/p")
    return signer.issue(
        invoice, Money(amount, currency), expires_at=clock() + dt.timedelta(days=30), nonce=new_nonce()
    ).token


def planned(db: Path, live: Any, clock: Any, account: str) -> list[tuple[str, str]]:
    now = dt.datetime.combine(clock().date() + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    with open_store(db) as store:
        plan = plan_run(store, now, live_settings(live.url))
    return [(m.step.purpose.value, m.channel.value) for m in plan.messages if m.step.account_id == account]


@pytest.mark.parametrize(
    ("invoice", "amount", "currency", "lang", "paid_words", "used_words"),
    [
        ("INV-de1", "100.00", "EUR", "de", "Zahlung erhalten", "bereits bezahlt"),
        ("INV-nb1", "1000.00", "NOK", "nb", "Betaling mottatt", "allerede brukt"),
        ("INV-bg1", "100.00", "EUR", "bg", "Плащането е получено", "вече е платено"),
    ],
)
def test_pay_through_the_hosted_checkout_then_the_link_is_used(
    live: Any,
    page: Any,
    axe_source: str,
    clock: Any,
    db: Path,
    invoice: str,
    amount: str,
    currency: str,
    lang: str,
    paid_words: str,
    used_words: str,
) -> None:
    token = token_for(live, invoice, amount, currency, clock)
    page.goto(f"{live.url}/p/{token}")
    assert page.get_attribute("html", "lang") == lang
    assert page.locator("table.statement tbody tr").count() == 2
    axe(page, axe_source, f"pay page ({lang})")
    page.locator("form.pay button").click()
    page.wait_for_url(f"{live.url}/gateway/**")
    axe(page, axe_source, "hosted checkout")
    page.get_by_role("button").click()
    page.wait_for_url(f"**/p/{token}/receipt**")
    assert paid_words in page.locator("h1").inner_text()
    axe(page, axe_source, f"receipt ({lang})")
    page.goto(f"{live.url}/p/{token}")
    assert used_words in page.locator("main").inner_text()
    axe(page, axe_source, f"used link ({lang})")
    with open_store(db) as store:
        account = store.get_invoice(invoice).account_id
        assert store.ledger(account).invoice_balance(invoice).is_zero()


@pytest.mark.parametrize(
    ("invoice", "currency", "amount", "lang"),
    [("INV-de2", "EUR", "100.00", "de"), ("INV-nb2", "NOK", "1000.00", "nb")],
)
def test_choose_a_plan(
    live: Any,
    page: Any,
    axe_source: str,
    clock: Any,
    db: Path,
    invoice: str,
    currency: str,
    amount: str,
    lang: str,
) -> None:
    account = invoice.replace("INV", "A")
    assert planned(db, live, clock, account)
    page.goto(f"{live.url}/p/{token_for(live, invoice, amount, currency, clock)}")
    page.locator("ul.choices a").first.click()
    axe(page, axe_source, f"plan form ({lang})")
    page.locator("#income").fill("3000")
    page.locator("main form button").first.click()
    page.locator("section.option").first.wait_for()
    axe(page, axe_source, f"plan options ({lang})")
    option = page.locator("section.option").nth(1)
    option.locator("input[type=checkbox]").check()
    option.locator("button").click()
    page.locator("p.ok").wait_for()
    assert page.locator("table.schedule tbody tr").count() >= 2
    axe(page, axe_source, f"plan agreed ({lang})")
    assert planned(db, live, clock, account) == []
    if currency == "EUR":  # the test bank debits euros: pay the instalments by direct debit
        page.locator("a[href*='/direct-debit']").click()
        axe(page, axe_source, f"direct-debit form ({lang})")
        page.locator("#iban").fill("DE89 3704 0044 0532 0130 00")
        page.locator("#consent").check()
        page.locator("main form button").click()
        page.locator("p.ok").wait_for()
        axe(page, axe_source, f"direct debit set up ({lang})")
        with open_store(db) as store:
            assert len(store.account_snapshot(account).mandates) == 1


@pytest.mark.parametrize(
    ("invoice", "lang", "done"),
    [("INV-en2", "en", "We are checking your bill"), ("INV-bg2", "bg", "Проверяваме")],
)
def test_open_a_dispute_with_the_keyboard_only(
    live: Any, page: Any, axe_source: str, clock: Any, db: Path, invoice: str, lang: str, done: str
) -> None:
    account = invoice.replace("INV", "A")
    page.goto(f"{live.url}/p/{token_for(live, invoice, '100.00', 'EUR', clock)}")

    def tab_to(selector: str) -> None:
        target = page.locator(selector).first
        for _ in range(60):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"{selector} cannot be reached with the Tab key")

    tab_to("a[href*='/dispute']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/dispute**")
    axe(page, axe_source, f"dispute form ({lang})")
    tab_to("input[name=reason]")
    page.keyboard.press("Space")
    tab_to("main form button")
    page.keyboard.press("Enter")
    page.locator("p.ok").wait_for()
    assert done in page.locator("main").inner_text()
    axe(page, axe_source, f"dispute opened ({lang})")
    with open_store(db) as store:
        assert [d.is_open for d in store.account_snapshot(account).disputes] == [True]
    assert planned(db, live, clock, account) == []


@pytest.mark.parametrize(("invoice", "lang"), [("INV-de3", "de"), ("INV-bg3", "bg")])
def test_opt_out_of_email(
    live: Any, page: Any, axe_source: str, clock: Any, db: Path, invoice: str, lang: str
) -> None:
    account = invoice.replace("INV", "A")
    assert ("statement", "email") in planned(db, live, clock, account)
    page.goto(f"{live.url}/p/{token_for(live, invoice, '100.00', 'EUR', clock)}")
    page.locator("a[href*='/opt-out']").click()
    axe(page, axe_source, f"opt-out form ({lang})")
    page.locator("input[value=email]").check()
    page.locator("main form button").click()
    page.locator("p.ok").wait_for()
    axe(page, axe_source, f"opted out ({lang})")
    after = planned(db, live, clock, account)
    assert ("statement", "email") not in after and ("statement", "letter") in after


@pytest.mark.parametrize("lang", ["nb", "bg"])
def test_the_other_pages_and_states_pass_axe(
    live: Any, page: Any, axe_source: str, clock: Any, lang: str
) -> None:
    token = token_for(live, "INV-en1", "100.00", "EUR", clock)
    for path in ("/assistance", "/contact", ""):
        page.goto(f"{live.url}/p/{token}{path}?lang={lang}")
        assert page.get_attribute("html", "lang") == lang
        axe(page, axe_source, f"{path or 'pay page'} ({lang})")
    page.goto(f"{live.url}/p/{token}/contact?lang={lang}")
    page.locator("#message").fill("Please call me.")
    page.locator("main form button").click()
    page.locator("p.ok").wait_for()
    axe(page, axe_source, f"contact sent ({lang})")
    page.goto(f"{live.url}/p/{token}/assistance?lang={lang}")
    page.locator("main form button").click()
    page.locator("p.ok").wait_for()
    axe(page, axe_source, f"assistance asked ({lang})")
    page.goto(f"{live.url}/p/{token[:-3]}xyz?lang={lang}")
    axe(page, axe_source, f"changed link ({lang})")


@pytest.mark.parametrize(
    ("width", "height", "why"), [(360, 740, "a 360 px phone"), (640, 450, "200 % zoom of 1280 px")]
)
def test_the_pages_reflow_on_a_phone_and_at_200_percent(
    live: Any, browser: Any, axe_source: str, clock: Any, width: int, height: int, why: str
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        token = token_for(live, "INV-de1", "100.00", "EUR", clock)
        for path in ("", "/plan", "/dispute", "/opt-out", "/contact", "/assistance"):
            page.goto(f"{live.url}/p/{token}{path}")
            no_sideways_scroll(page, f"{path or 'pay page'} on {why}")
            axe(page, axe_source, f"{path or 'pay page'} on {why}")
    finally:
        context.close()


def test_the_axe_check_finds_a_violation_when_there_is_one(
    live: Any, page: Any, axe_source: str, clock: Any
) -> None:
    """The check can fail: an unlabelled field and an image without text are serious or critical."""
    page.goto(f"{live.url}/p/{token_for(live, 'INV-de1', '100.00', 'EUR', clock)}")
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'text'; document.querySelector('main').append(i);"
        " const g = document.createElement('img'); g.src = '/nothing.png'; document.querySelector('main').append(g); }"
    )
    with pytest.raises(AssertionError, match="label|image-alt"):
        axe(page, axe_source, "a page with a fault added")
