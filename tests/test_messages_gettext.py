"""Gettext .po files: the built-in catalogs round-trip, and a vendor's .po adds a language."""

from __future__ import annotations

from pathlib import Path

import babel
import pytest
from babel.messages import pofile

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.catalog import LANGUAGES, builtin_catalogs
from carecollect.messages.examples import context
from carecollect.messages.gettext import export_po, export_pot, plural_categories, read_po
from carecollect.messages.render import MissingTranslation, Renderer
from carecollect.outreach import OutreachPurpose as P

CATS = builtin_catalogs()


@pytest.mark.parametrize("language", LANGUAGES)
def test_builtin_catalog_round_trips_through_po(language: str) -> None:
    assert read_po(export_po(language), language) == CATS[language]


def test_template_has_every_key_with_english_source_and_format_flags() -> None:
    import io

    pot = pofile.read_po(io.BytesIO(export_pot().encode()))
    messages = {m.context: m for m in pot if m.id}
    assert set(messages) == set(CATS["en"])
    assert all(not m.string or not any(m.string) for m in messages.values())
    greeting = messages["greeting"]
    assert greeting.id == CATS["en"]["greeting"] and "python-brace-format" in greeting.flags
    assert "python-brace-format" not in messages["greeting.anon"].flags
    plural = messages["plan_offer.instalments"]
    en = CATS["en"]["plan_offer.instalments"]
    assert isinstance(en, dict) and plural.pluralizable and plural.id == (en["one"], en["other"])


def test_plural_indices_map_to_cldr_categories() -> None:
    assert plural_categories("bg") == ("one", "other")
    assert plural_categories("pl") == ("one", "few", "many")
    with pytest.raises(ConfigurationError, match="xx"):
        plural_categories("xx")


def _swedish_po(tmp_path: Path) -> Path:
    """A translator's Swedish file: everything English copied, a few keys really translated."""
    sv = dict(CATS["en"])
    sv["reminder.summary"] = "{sender}: faktura {ref} på {amount} är fortfarande obetald."
    sv["optout.sms"] = "Svara {keyword} för att avsluta."
    sv["plan_offer.instalments"] = {"one": "{count} delbetalning", "other": "{count} delbetalningar"}
    path = tmp_path / "sv.po"
    path.write_text(export_po("sv", sv), encoding="utf-8")
    return path


def test_vendor_language_from_a_po_file(tmp_path: Path) -> None:
    path = _swedish_po(tmp_path)
    r = Renderer(catalogs={"sv": path})
    assert r.missing("sv") == ()
    msg = r.render(P.REMINDER, Channel.SMS, "sv-SE", context(P.REMINDER, "no"))
    assert msg.language == "sv" and msg.text.endswith("Svara STOP för att avsluta.")
    assert "är fortfarande obetald" in msg.text
    assert read_po(str(path), "sv")["plan_offer.instalments"] == {
        "one": "{count} delbetalning",
        "other": "{count} delbetalningar",
    }


def test_fuzzy_and_empty_entries_count_as_missing(tmp_path: Path) -> None:
    text = _swedish_po(tmp_path).read_text(encoding="utf-8")
    fuzzy = text.replace('msgctxt "optout.sms"', '#, fuzzy\nmsgctxt "optout.sms"')
    assert fuzzy != text
    r = Renderer(catalogs={"sv": read_po(fuzzy, "sv")})
    assert r.missing("sv") == ("optout.sms",)
    with pytest.raises(MissingTranslation, match="'optout.sms'"):
        r.render(P.REMINDER, Channel.SMS, "sv", context(P.REMINDER, "no"))
    half = export_po("sv", {"closing": "Med vänliga hälsningar"})
    assert read_po(half, "sv") == {"closing": "Med vänliga hälsningar"}
    assert len(Renderer(catalogs={"sv": read_po(half, "sv")}).missing("sv")) == len(CATS["en"]) - 1


def test_po_without_keys_or_file_is_refused(tmp_path: Path) -> None:
    plain = (
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\nmsgid "Hello,"\nmsgstr "Hej,"\n'
    )
    with pytest.raises(ValidationError, match="msgctxt"):
        read_po(plain, "sv")
    with pytest.raises(ConfigurationError, match="does not exist"):
        Renderer(catalogs={"sv": tmp_path / "nope.po"})


@pytest.mark.parametrize("language", LANGUAGES)
def test_po_header_names_the_plural_rule(language: str) -> None:
    header = export_po(language).split("\n\n")[0]
    assert f"Language: {language}" in header and "Plural-Forms: nplurals=2; plural=(n != 1);" in header
    assert babel.Locale.parse(language).plural_form.tags <= set(plural_categories(language))
