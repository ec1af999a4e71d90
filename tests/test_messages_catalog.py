"""Catalog completeness: every key in every language, same placeholders, really translated."""

from __future__ import annotations

import re

import pytest

from carecollect.messages.catalog import LANGUAGES, builtin_catalogs, missing_keys
from carecollect.messages.context import JURISDICTIONS
from carecollect.messages.glossary import GLOSSARY, RIGHTS, TERMS, glossary_entry, rights_text

CATS = builtin_catalogs()
EN = CATS["en"]
_PH = re.compile(r"\{([a-z_]+)\}")
#: keys whose text may legitimately equal the English one
SAME_AS_ENGLISH = {
    ("de", "label.total"),
    ("nb", "plan_offer.instalments"),
}


def _texts(value: object) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [str(value)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_missing_or_extra_keys(language: str) -> None:
    assert missing_keys(EN, CATS[language]) == ()
    assert missing_keys(CATS[language], EN) == ()


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_same_placeholders_and_translated(language: str) -> None:
    for key, value in EN.items():
        theirs = CATS[language][key]
        assert isinstance(theirs, dict) == isinstance(value, dict), key
        ours = {p for t in _texts(value) for p in _PH.findall(t)}
        got = {p for t in _texts(theirs) for p in _PH.findall(t)}
        assert got == ours, f"{language}/{key}: placeholders {got} != {ours}"
        if (language, key) not in SAME_AS_ENGLISH:
            assert theirs != value, f"{language}/{key} is still English"
        if isinstance(theirs, dict):
            assert "other" in theirs, key


def test_bulgarian_is_cyrillic() -> None:
    for key, value in CATS["bg"].items():
        letters = re.sub(r"\{[a-z_]+\}|[^A-Za-zА-Яа-я]", "", " ".join(_texts(value)))
        latin = sum(c.isascii() for c in letters)
        assert latin <= len(letters) // 3 + 12, f"bg/{key} looks untranslated"


def test_glossary_and_rights_in_all_languages() -> None:
    assert set(GLOSSARY) == set(TERMS)
    for term in TERMS:
        assert set(GLOSSARY[term]) == set(LANGUAGES)
        words = {glossary_entry(term, lang)[1] for lang in LANGUAGES}
        assert len(words) == 4, term
    assert set(RIGHTS) == set(JURISDICTIONS)
    for jur in JURISDICTIONS:
        assert set(RIGHTS[jur]) == set(LANGUAGES)
        counts = {len(rights_text(jur, lang)) for lang in LANGUAGES}
        assert len(counts) == 1, f"{jur}: paragraph counts differ between languages"
    assert glossary_entry("copay", "fi") == GLOSSARY["copay"]["en"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_entries_have_every_category_the_language_uses(language: str) -> None:
    """A counted word needs each CLDR category of its language (Bulgarian: one, other)."""
    import babel

    needed = babel.Locale.parse(language).plural_form.tags | {"other"}
    for key, value in CATS[language].items():
        if isinstance(value, dict):
            assert needed <= set(value), f"{language}/{key}: missing {sorted(needed - set(value))}"
