"""Every message in every language on every channel, rendered and checked."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import babel.dates
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.errors import ValidationError
from carecollect.messages.catalog import LANGUAGES, builtin_catalogs
from carecollect.messages.checks import MessageCheckFailed
from carecollect.messages.context import PlanOptionInfo, SmsEncoding
from carecollect.messages.examples import DESCRIPTIONS, JURISDICTION_OF, context
from carecollect.messages.render import (
    REQUIRED,
    MissingTranslation,
    Renderer,
    choose_language,
    locale_for,
    render,
)
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose as P

HOME = {"en": "us", "de": "de", "nb": "no", "bg": "bg"}
EN = builtin_catalogs()["en"]
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _english_fragments() -> list[str]:
    """Runs of English text (between placeholders) long enough to be unmistakable."""
    out = set()
    for value in EN.values():
        texts = value.values() if isinstance(value, dict) else [value]
        for text in texts:
            for frag in _PLACEHOLDER.split(text):
                frag = frag.strip(" .,:;()")
                if len(frag.split()) >= 3:
                    out.add(frag)
    return sorted(out)


FRAGMENTS = _english_fragments()


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("purpose", list(P), ids=lambda p: p.value)
def test_every_purpose_renders_checked_on_every_channel(purpose: P, language: str) -> None:
    jur = JURISDICTION_OF.get(purpose, HOME[language])
    ctx = context(purpose, jur)
    loc = locale_for(language, jur)
    rendered = {ch: render(purpose, ch, language, ctx) for ch in Channel}
    for ch, msg in rendered.items():
        assert msg.language == language
        assert msg.locale == loc
        assert "tone" in msg.checks
        # minimum necessary: no statement-line description outside letter / e-mail body / portal
        if ch in (Channel.SMS, Channel.PHONE):
            assert not any(d in msg.text for d in DESCRIPTIONS)
        if ch is Channel.EMAIL:
            assert msg.subject and not any(d in msg.subject for d in DESCRIPTIONS)
        # no untranslated English in a German, Norwegian or Bulgarian message
        if language != "en":
            flat = _flat(msg.text)
            leaked = [f for f in FRAGMENTS if f in flat]
            assert leaked == [], f"{ch.value}: untranslated English {leaked[:3]}"
    email, sms, letter = rendered[Channel.EMAIL], rendered[Channel.SMS], rendered[Channel.LETTER]
    # opt-out in every e-mail (both parts) and SMS, and in the portal
    assert ctx.opt_out_url in email.text and ctx.opt_out_url in email.html
    assert ctx.opt_out_url in rendered[Channel.PORTAL].text
    assert re.search(r"\bSTOP\b", sms.text)
    assert sms.segments is not None and sms.segments <= 4
    assert sms.encoding is (SmsEncoding.UCS2 if language == "bg" or jur == "bg" else SmsEncoding.GSM7)
    # limited-content voicemail: name, call-back number, nothing about the debt
    vm = rendered[Channel.PHONE].voicemail
    assert vm and ctx.phone in vm and ctx.reference not in vm and ctx.amount_due.format(loc) not in vm
    # money and dates are formatted for the locale
    if purpose not in (
        P.PAYMENT_CONFIRMATION,
        P.DISPUTE_ACKNOWLEDGEMENT,
        P.DISPUTE_RESOLUTION,
        P.FOLLOW_UP_CALL,
        P.ESTIMATE,
        P.FINANCIAL_ASSISTANCE,
        P.PAYMENT_TERMS,
    ):
        assert _flat(ctx.amount_due.format(loc)) in _flat(letter.text)
    for field in ("due_date", "deadline", "action_date"):
        if field in REQUIRED[purpose]:
            day = getattr(ctx, field)
            assert _flat(babel.dates.format_date(day, "long", locale=loc)) in _flat(letter.text)


def test_locale_formats_differ_by_language() -> None:
    ctx = context(P.REMINDER, "de")
    de = render(P.REMINDER, Channel.LETTER, "de", ctx).text
    en = render(P.REMINDER, Channel.LETTER, "en", ctx).text
    us = render(P.REMINDER, Channel.LETTER, "en", context(P.REMINDER, "us")).text
    assert "245,50\xa0€" in de and "22. März 2026" in de
    assert "245,50\xa0€" in en and "22 March 2026" in en  # English in Germany: en_DE
    assert "$245.50" in us and "March 22, 2026" in us
    # the currency is the amount's own, never the locale's
    us_in_de = render(P.REMINDER, Channel.LETTER, "de", context(P.REMINDER, "us")).text
    assert "245,50\xa0$" in us_in_de


def test_relative_due_date_in_subject() -> None:
    msg = render(P.PRE_DUE_REMINDER, Channel.EMAIL, "nb", context(P.PRE_DUE_REMINDER, "no"))
    assert msg.subject == "Vennlig påminnelse: faktura INV-2026-0042 forfaller om 2 døgn"
    inst = render(P.INSTALMENT_REMINDER, Channel.EMAIL, "en", context(P.INSTALMENT_REMINDER, "us"))
    assert inst.subject == "Instalment 2 of 3 is due in 12 days"


def test_plural_forms_follow_the_language() -> None:
    ctx = context(P.PLAN_OFFER, "de")
    one = PlanOptionInfo("X", ctx.amount_due, 1, ctx.amount_due)
    import attrs

    ctx = attrs.evolve(ctx, plan_options=(one, *ctx.plan_options))
    de = _flat(render(P.PLAN_OFFER, Channel.LETTER, "de", ctx).text)
    assert "Möglichkeit X: 1 Rate zu je" in de
    assert "Möglichkeit B: 3 Raten zu je 81,84 €, insgesamt 245,50 €" in de
    bg = _flat(render(P.PLAN_OFFER, Channel.LETTER, "bg", ctx).text)
    assert "1 вноска" in bg and "3 вноски" in bg


def test_plan_offer_shows_every_option_and_any_extra_cost() -> None:
    ctx = context(P.PLAN_OFFER, "us")
    dearer = PlanOptionInfo("C", Money("45.00", "USD"), 6, Money("270.00", "USD"))
    import attrs

    ctx = attrs.evolve(ctx, plan_options=(*ctx.plan_options, dearer))
    text = _flat(render(P.PLAN_OFFER, Channel.EMAIL, "en", ctx).text)
    assert "Option A: 2 instalments of $122.75, $245.50 in total; first payment on April 1, 2026" in text
    assert "Option B: 3 instalments of $81.84" in text
    assert "Option C: 6 instalments of $45.00, $270.00 in total; includes $24.50 interest and fees" in text


def test_statement_explains_every_line() -> None:
    text = _flat(render(P.STATEMENT, Channel.LETTER, "en", context(P.STATEMENT, "us")).text)
    assert "Cardiology consultation (code 99213) on February 2, 2026: the charge is $300.00." in text
    assert "Your insurance (Acme Health) paid $75.00." in text
    assert "$40.88 was taken off under the contract" in text
    assert "Left for you to pay: $184.12. $25.00 is your copay" in text
    assert "$159.12 counts towards your deductible" in text
    assert "Balance you owe $245.50" in text
    for heading in (
        "How to pay",
        "If you cannot pay all at once",
        "Questions and help",
        "If you think something is wrong",
        "Your rights",
        "Words on this statement",
    ):
        assert heading in text
    assert "Direct debit" in text and "Mobile" in text and "Online" in text


def test_formal_notices_carry_required_content() -> None:
    iv = _flat(render(P.INKASSOVARSEL, Channel.LETTER, "nb", context(P.INKASSOVARSEL, "no")).text)
    assert "inkassoloven § 9" in iv and "minst 14 dager" in iv and "3. april 2026" in iv
    bp = _flat(
        render(P.BETALINGSOPPFORDRING, Channel.LETTER, "nb", context(P.BETALINGSOPPFORDRING, "no")).text
    )
    for part in (
        "inkassoloven § 10",
        "14 dager",
        "Hovedstol 1 250,00 kr",
        "Purregebyr 37,50 kr",
        "Forsinkelsesrente på 12,00 % per år løper fra 23. mars 2026",
        "innsigelse",
    ):
        assert part in bp, part
    dn = _flat(render(P.DEFAULT_NOTICE, Channel.LETTER, "de", context(P.DEFAULT_NOTICE, "de")).text)
    assert "Sie kommen spätestens 30 Tage nach Fälligkeit und Zugang dieser Rechnung in Verzug" in dn
    mahnung = _flat(render(P.MAHNUNG, Channel.LETTER, "de", context(P.MAHNUNG, "de")).text)
    assert "6,27 %" in mahnung and "kostenfrei" in mahnung
    vn = _flat(render(P.VALIDATION_NOTICE, Channel.LETTER, "en", context(P.VALIDATION_NOTICE, "us")).text)
    for part in (
        "is a debt collector",
        "As of January 5, 2026, you owed $245.50",
        "Total amount of the debt now $245.50",
        "by April 3, 2026",
        "www.cfpb.gov/debt-collection",
        "original creditor",
    ):
        assert part in vn, part


def test_language_choice_falls_back_to_english() -> None:
    assert choose_language("fi-FI") == "en"
    assert choose_language(["sv-SE", "nb-NO", "de"]) == "nb"
    assert choose_language(None) == "en"
    msg = render(P.REMINDER, Channel.SMS, ["fi", "xx"], context(P.REMINDER, "us"))
    assert msg.language == "en" and msg.text.startswith("Riverside")


def test_missing_translation_fails_loudly() -> None:
    r = Renderer(catalogs={"sv": {"reminder.summary": "{sender}: faktura {ref} är obetald."}})
    assert "sv" in r.languages and "greeting" in r.missing("sv")
    with pytest.raises(MissingTranslation, match="'sv' has no message 'optout.sms'"):
        r.render(P.REMINDER, Channel.SMS, "sv", context(P.REMINDER, "us"))


def test_vendor_adds_language_and_overrides_template(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder.txt").write_text('Hi from {{ v.sender }}! {{ t("optout.sms") }}')
    (tmp_path / "de" / "sms").mkdir(parents=True)
    (tmp_path / "de" / "sms" / "reminder.txt").write_text('Hallo von {{ v.sender }}. {{ t("optout.sms") }}')
    sv = dict(builtin_catalogs()["en"])
    sv["optout.sms"] = "Svara {keyword} för att avsluta."
    r = Renderer([tmp_path], catalogs={"sv": sv, "en": {"closing": "Warm regards,"}})
    ctx = context(P.REMINDER, "us")
    assert (
        r.render(P.REMINDER, Channel.SMS, "en", ctx).text
        == "Hi from Riverside Community Hospital! Reply STOP to opt out."
    )
    assert r.render(P.REMINDER, Channel.SMS, "de", ctx).text.startswith("Hallo von")
    assert r.render(P.REMINDER, Channel.SMS, "sv", ctx).text.endswith("Svara STOP för att avsluta.")
    assert "Warm regards," in r.render(P.REMINDER, Channel.LETTER, "en", ctx).text
    # built-in renderings are untouched
    assert render(P.REMINDER, Channel.SMS, "en", ctx).text.startswith("Riverside Community Hospital: invoice")


def test_checks_refuse_a_bad_vendor_template(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "email").mkdir()
    (tmp_path / "sms" / "reminder.txt").write_text('Your oncology bill is open. {{ t("optout.sms") }}')
    (tmp_path / "sms" / "statement.txt").write_text("Pay now or else.")
    (tmp_path / "email" / "reminder.subject.txt").write_text("We will take you to court")
    r = Renderer([tmp_path])
    ctx = context(P.REMINDER, "us")
    with pytest.raises(MessageCheckFailed) as exc:
        r.render(P.REMINDER, Channel.SMS, "en", ctx)
    assert exc.value.rule == "minimum_necessary" and exc.value.template == "en/sms/reminder"
    with pytest.raises(MessageCheckFailed, match="'opt_out'"):
        r.render(P.STATEMENT, Channel.SMS, "en", context(P.STATEMENT, "us"))
    with pytest.raises(MessageCheckFailed, match="threatening word 'court'"):
        r.render(P.REMINDER, Channel.EMAIL, "en", ctx)


def test_sms_length_limit_is_enforced() -> None:
    r = Renderer(max_sms_segments=1)
    with pytest.raises(MessageCheckFailed, match="ucs2 segments; at most 1"):
        r.render(P.STATEMENT, Channel.SMS, "bg", context(P.STATEMENT, "bg"))


def test_description_never_in_subject_even_if_a_vendor_tries(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "statement.subject.txt").write_text("{{ statement.lines[0].description }}")
    with pytest.raises(MessageCheckFailed, match="clinical word|description"):
        Renderer([tmp_path]).render(P.STATEMENT, Channel.EMAIL, "en", context(P.STATEMENT, "us"))


def test_html_is_escaped() -> None:
    import attrs

    ctx = attrs.evolve(context(P.REMINDER, "us"), creditor_name="A&B <Clinic>")
    html = render(P.REMINDER, Channel.EMAIL, "en", ctx).html
    assert html is not None and "A&amp;B &lt;Clinic&gt;" in html and "<Clinic>" not in html


def test_required_context_is_named() -> None:
    import attrs

    ctx = attrs.evolve(context(P.PLAN_OFFER, "us"), plan_options=())
    with pytest.raises(ValidationError, match="'plan_options'"):
        render(P.PLAN_OFFER, Channel.EMAIL, "en", ctx)


def test_no_name_or_description_in_repr() -> None:
    msg = render(P.STATEMENT, Channel.LETTER, "en", context(P.STATEMENT, "us"))
    assert "Kari" not in repr(msg) and "Cardiology" not in repr(msg)
    assert "Kari" not in repr(context(P.STATEMENT, "us"))


def test_sender_name_keeps_specialty_out_of_sms() -> None:
    import attrs

    ctx = attrs.evolve(context(P.REMINDER, "us"), creditor_name="Bay Oncology Center", sender_name="")
    with pytest.raises(MessageCheckFailed, match="oncolog"):
        render(P.REMINDER, Channel.SMS, "en", ctx)
    ok = render(P.REMINDER, Channel.SMS, "en", attrs.evolve(ctx, sender_name="Bay Medical Billing"))
    assert ok.text.startswith("Bay Medical Billing:")
    assert dt.date(2026, 3, 20) == ctx.today


def test_sender_name_follows_the_creditor_name_unless_set() -> None:
    import attrs

    ctx = attrs.evolve(context(P.REMINDER, "us"), sender_name="")
    assert ctx.sender_name == ctx.creditor_name
    renamed = attrs.evolve(ctx, creditor_name="Lakeside Clinic")
    assert renamed.sender_name == "Lakeside Clinic"  # derived, not the old name kept from construction
    sms = render(P.REMINDER, Channel.SMS, "en", renamed)
    assert sms.text.startswith("Lakeside Clinic") and ctx.creditor_name not in sms.text
    chosen = attrs.evolve(ctx, sender_name="Bay Medical Billing")
    assert attrs.evolve(chosen, creditor_name="Bay Oncology Center").sender_name == "Bay Medical Billing"
    assert attrs.evolve(chosen, sender_name="").sender_name == chosen.creditor_name


_WRAP_ALPHABET = "abcdeé-.,Жx\u00a0\u2009\u3000\x1c \t\n"


@given(
    st.lists(
        st.text(alphabet=_WRAP_ALPHABET, min_size=1, max_size=12)
        | st.text(alphabet="abcЖ-", min_size=20, max_size=90),
        min_size=0,
        max_size=25,
    ),
    st.integers(min_value=1, max_value=90),
    st.sampled_from(["", "- ", "   ", "1. "]),
)
def test_wrapping_gives_what_textwrap_gives(words: list[str], width: int, indent: str) -> None:
    # words between single spaces wrap without textwrap; anything with other white space, a word
    # of white space only, or spaces at the ends goes to textwrap: the same text either way
    from carecollect.messages.render import _fill, _textwrap_fill

    text = " ".join(words)
    assert _fill.__wrapped__(text, width, indent) == _textwrap_fill(text, width, indent)


def test_a_paragraph_with_amounts_and_dates_wraps_without_textwrap() -> None:
    from carecollect.messages.render import _WRAP_SPACE

    assert (
        _WRAP_SPACE.search("Please pay 1\u00a0234,50\u00a0€ by 22 March 2026 at https://pay.example/p/x.")
        is None
    )
    assert _WRAP_SPACE.search("a \u00a0 b") is not None  # a word of a no-break space alone
