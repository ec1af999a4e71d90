"""From an 835 to the patient's statement: every line says what the insurer paid and why the rest is theirs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import pytest

pytest.importorskip("pyx12")

from carecollect.channels import Channel
from carecollect.importers.remittance import claims_in_force, import_remittance
from carecollect.messages.catalog import LANGUAGES
from carecollect.messages.examples import context
from carecollect.messages.remittance_codes import CARC_TEXTS, RARC_TEXTS, carc_text, rarc_text
from carecollect.messages.render import render
from carecollect.messages.statement import ShareKind, build_statement
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose
from carecollect.store import SQLiteStore

DATA = Path(__file__).parent / "data" / "x12"
AT = dt.datetime(2026, 3, 23, 9, tzinfo=dt.UTC)


def usd(s: str) -> Money:
    return Money(s, "USD")


def test_every_code_text_is_written_in_every_language() -> None:
    for table in (CARC_TEXTS, RARC_TEXTS):
        for code, texts in table.items():
            assert set(texts) == set(LANGUAGES), code
            assert len(set(texts.values())) == len(LANGUAGES), f"{code}: a text left untranslated"
    for lang in LANGUAGES:
        assert "4711" in carc_text("4711", lang) and "X99" in rarc_text("X99", lang)


def test_statement_lines_follow_the_insurers_service_lines(remit_store: SQLiteStore) -> None:
    import_remittance(remit_store, DATA / "professional.835", at=AT)
    inv = remit_store.get_invoice("INV-1001")
    st = build_statement(inv, claims=claims_in_force(remit_store, "INV-1001"))
    first, second = st.lines
    # the insurer's own split per line, not a proportional one
    assert (first.insurer_paid, first.adjustment, first.patient_owes) == (
        usd("110.00"),
        usd("20.00"),
        usd("50.00"),
    )
    assert (second.insurer_paid, second.adjustment, second.patient_owes) == (
        usd("40.00"),
        usd("0.00"),
        usd("30.00"),
    )
    assert first.adjustment_codes == ("45",)
    assert [(r.kind, r.amount, r.code) for r in first.reasons] == [(ShareKind.DEDUCTIBLE, usd("50.00"), "1")]
    assert [(r.kind, r.code) for r in second.reasons] == [
        (ShareKind.COINSURANCE, "2"),
        (ShareKind.COPAY, "3"),
    ]
    assert second.remarks == ("N130",)
    assert st.balance == usd("80.00") == remit_store.ledger("A-1").invoice_balance("INV-1001")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_rendered_statement_explains_each_amount(remit_store: SQLiteStore, lang: str) -> None:
    import_remittance(remit_store, DATA / "professional.835", at=AT)
    inv = remit_store.get_invoice("INV-1001")
    st = build_statement(inv, claims=claims_in_force(remit_store, "INV-1001"))
    ctx = attrs.evolve(context(OutreachPurpose.STATEMENT, "us"), statement=st, amount_due=st.balance)
    text = render(OutreachPurpose.STATEMENT, Channel.LETTER, lang, ctx).text
    flat = " ".join(text.split())
    assert " ".join(carc_text("45", lang).split()) in flat
    assert " ".join(rarc_text("N130", lang).split()) in flat


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_denial_says_why_and_offers_an_appeal_and_assistance(remit_store: SQLiteStore, lang: str) -> None:
    import_remittance(remit_store, DATA / "multiple.835", at=AT)
    inv = remit_store.get_invoice("INV-1003")
    st = build_statement(inv, claims=claims_in_force(remit_store, "INV-1003"))
    assert st.claim_denied and st.balance == usd("120.00")
    # never the full charge without the reason: the line carries the insurer's code 204
    assert [(r.kind, r.code) for r in st.lines[0].reasons] == [(ShareKind.NOT_COVERED, "204")]
    ctx = attrs.evolve(context(OutreachPurpose.STATEMENT, "us"), statement=st, amount_due=st.balance)
    text = " ".join(render(OutreachPurpose.STATEMENT, Channel.LETTER, lang, ctx).text.split())
    assert " ".join(carc_text("204", lang).split()) in text
    assert " ".join(rarc_text("N130", lang).split()) in text
    denied = {"en": "appeal", "de": "Widerspruch", "nb": "klage", "bg": "обжалване"}[lang]
    help_ = {
        "en": "financial assistance",
        "de": "finanzieller Unterstützung",
        "nb": "økonomisk hjelp",
        "bg": "финансова помощ",
    }
    assert denied in text and help_[lang] in text


def test_claim_level_answers_on_a_bill_of_several_lines_are_explained_for_the_claim(
    remit_store: SQLiteStore,
) -> None:
    import_remittance(remit_store, DATA / "institutional.835", at=AT)
    inv = remit_store.get_invoice("INV-2001")
    st = build_statement(inv, claims=claims_in_force(remit_store, "INV-2001"))
    assert [(r.kind, r.amount, r.code) for r in st.claim_reasons] == [
        (ShareKind.DEDUCTIBLE, usd("300.00"), "1")
    ]
    assert st.claim_remarks == ("MA130",)
    assert st.balance == usd("300.00")
