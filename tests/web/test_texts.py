"""The pages' words: every language says everything, with the same placeholders, and reads cleanly."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from carecollect.money import Money
from carecollect.web.texts import LANGUAGES, TEXTS, PageTexts, pick_language

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_every_text_with_the_same_placeholders(lang: str) -> None:
    assert set(TEXTS[lang]) == set(TEXTS["en"])
    for key, text in TEXTS[lang].items():
        assert text.strip(), f"{lang}:{key} is empty"
        assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(TEXTS["en"][key])), f"{lang}:{key}"


@pytest.mark.parametrize(("lang", "jurisdiction"), [("en", "us"), ("de", "de"), ("nb", "no"), ("bg", "bg")])
def test_filled_texts_read_cleanly(lang: str, jurisdiction: str) -> None:
    """No doubled full stop after a date that ends in one (Bulgarian "г."), no stray brace."""
    t = PageTexts(lang, jurisdiction)
    values = {
        "date": t.date(dt.date(2026, 3, 20)),
        "amount": t.money(Money("100.00", "EUR")),
        "total": t.money(Money("100.00", "EUR")),
        "count": 4,
        "creditor": "Clinic",
        "payer": "Insurer",
        "provider": "Gateway",
        "phone": "+1 555 0100",
        "why": "x",
        "channel": "SMS",
        "days": "x",
        "opens": "08:00",
        "closes": "16:00",
        "hours": "Mon–Fri 08:00–16:00",
        "time": "23:59",
    }
    for key in TEXTS[lang]:
        text = t(key, **values)
        assert ".." not in text and "{" not in text, f"{lang}:{key}: {text}"


def test_the_page_language_follows_the_choice_then_the_browser_then_the_patient() -> None:
    assert pick_language("bg", "de-DE", "nb") == "bg"
    assert pick_language(None, "de-DE,de;q=0.9", "nb") == "de"
    assert pick_language(None, None, "nb") == "nb"
    assert pick_language("xx", "fr-FR", "xx") == "en"
