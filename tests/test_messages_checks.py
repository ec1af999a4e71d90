"""SMS segments, clinical words, opt-out and tone."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.messages.checks import MessageCheckFailed, check_rendering, find_words, sms_segments
from carecollect.messages.context import SmsEncoding
from carecollect.messages.examples import context
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose as P

G, U = SmsEncoding.GSM7, SmsEncoding.UCS2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, (G, 1)),
        ("a" * 161, (G, 2)),
        ("a" * 306, (G, 2)),
        ("a" * 307, (G, 3)),
        ("€" * 80, (G, 1)),
        ("€" * 81, (G, 2)),  # extension characters take two septets
        ("Rødgrød med fløde: ÆØÅ æøå ÄÖÜ äöü ß", (G, 1)),
        ("ж" * 70, (U, 1)),
        ("ж" * 71, (U, 2)),
        ("ж" * 134, (U, 2)),
        ("ж" * 135, (U, 3)),
        ("a" * 159 + "ł", (U, 3)),  # one character outside GSM-7 switches the whole message
    ],
)
def test_sms_segments(text: str, expected: tuple[SmsEncoding, int]) -> None:
    assert sms_segments(text) == expected


def test_find_words_matches_word_starts_only() -> None:
    assert find_words("Kardiologie-Praxis", ["kardiolog"]) == ["kardiolog"]
    assert find_words("Hospitality", ["hospital"]) == ["hospital"]
    assert find_words("shospital", ["hospital"]) == []


def _check(**kw: object) -> tuple[str, ...]:
    ctx = context(P.REMINDER, "us")
    base = {
        "template": "t",
        "purpose": P.REMINDER,
        "channel": Channel.SMS,
        "language": "en",
        "context": ctx,
        "text": "Riverside: invoice open. Reply STOP to opt out.",
    }
    base |= kw
    return check_rendering(**base)  # type: ignore[arg-type]


def test_checks_pass_and_fail() -> None:
    assert _check() == ("minimum_necessary", "opt_out", "sms_length", "tone")
    with pytest.raises(MessageCheckFailed, match="opt_out"):
        _check(text="Riverside: invoice open.")
    with pytest.raises(MessageCheckFailed, match="clinical word 'psychiatry'"):
        _check(text="Riverside Psychiatry: invoice open. Reply STOP")
    with pytest.raises(MessageCheckFailed, match="clinical word 'schwangerschaft'"):
        _check(language="de", text="Ihre Schwangerschaft: Rechnung offen. STOP")
    with pytest.raises(MessageCheckFailed, match="clinical word 'онкологичен'"):
        _check(language="bg", text="Онкологичен център: STOP")
    with pytest.raises(MessageCheckFailed, match="shaming word"):
        _check(text="Do not be irresponsible. Reply STOP")
    with pytest.raises(MessageCheckFailed, match="threatening word 'tvangsinndrivelse'"):
        _check(language="nb", text="Betal, ellers tvangsinndrivelse. STOP")
    # a formal notice may state legal consequences, but never shame
    assert "tone" in _check(
        purpose=P.BETALINGSOPPFORDRING,
        language="nb",
        text="Ellers kan tvangsinndrivelse bli satt i gang. STOP",
    )
    with pytest.raises(MessageCheckFailed, match="shaming word 'skam'"):
        _check(purpose=P.BETALINGSOPPFORDRING, language="nb", text="Skam deg. STOP")
    with pytest.raises(MessageCheckFailed, match="sms_length"):
        _check(text="x " * 400 + "STOP")
    with pytest.raises(MessageCheckFailed, match="description"):
        _check(text="Cardio visit STOP", descriptions=["Cardio visit"])


def test_email_needs_opt_out_url_in_both_parts() -> None:
    ctx = context(P.REMINDER, "us")
    url = ctx.opt_out_url
    kw = {"channel": Channel.EMAIL, "subject": "Invoice", "text": f"x {url}", "html": "<p>x</p>"}
    with pytest.raises(MessageCheckFailed, match="opt-out link is missing"):
        _check(**kw)
    with pytest.raises(MessageCheckFailed, match="opt_out_url is required"):
        _check(**kw, context=attrs.evolve(ctx, opt_out_url=None))
    assert "opt_out" in _check(**(kw | {"html": f"<a href='{url}'>stop</a>"}))


def test_voicemail_is_limited_content() -> None:
    ctx = context(P.REMINDER, "us")
    with pytest.raises(MessageCheckFailed, match="limited_content_voicemail"):
        _check(channel=Channel.PHONE, text="script", voicemail=f"About invoice {ctx.reference}, call us.")


def test_minimum_necessary_cites_the_packs_content_rule() -> None:
    """The refusal names the rule of the pack's content rules (policy.content), the data behind the check."""
    with pytest.raises(MessageCheckFailed, match=r"in sms \(content\.forbidden\.sms\)"):
        _check(text="Riverside Psychiatry: invoice open. Reply STOP")


@pytest.mark.parametrize(
    ("language", "threat", "shame"),
    [
        ("en", "We will take you to court. Reply STOP", "You are irresponsible. Reply STOP"),
        ("de", "Sonst folgt die Zwangsvollstreckung. STOP", "Sie sind verantwortungslos. STOP"),
        ("nb", "Ellers sender vi saken til inkasso. STOP", "Du er uansvarlig. STOP"),
        ("bg", "Ще подадем съдебен иск. STOP", "Вие сте безотговорни. STOP"),
    ],
)
def test_tone_check_per_language(language: str, threat: str, shame: str) -> None:
    """Each language has its own threat and shame lists; a formal notice may inform, never shame."""
    with pytest.raises(MessageCheckFailed, match="threatening word"):
        _check(language=language, text=threat)
    with pytest.raises(MessageCheckFailed, match="shaming word"):
        _check(language=language, text=shame)
    assert "tone" in _check(language=language, purpose=P.FINAL_NOTICE, text=threat)
    with pytest.raises(MessageCheckFailed, match="shaming word"):
        _check(language=language, purpose=P.FINAL_NOTICE, text=shame)


def test_tone_check_reads_the_html_part() -> None:
    """The HTML part is what most patients read: a threat there is refused like one in the text."""
    ctx = context(P.REMINDER, "us")
    url = ctx.opt_out_url
    kw = {"channel": Channel.EMAIL, "subject": "Invoice", "text": f"Invoice open. {url}"}
    assert "tone" in _check(**kw, html=f"<p>Invoice open.</p><a href='{url}'>stop</a>")
    with pytest.raises(MessageCheckFailed, match="threatening word 'court'"):
        _check(**kw, html=f"<p>Pay or we see you in <b>court</b>.</p><a href='{url}'>stop</a>")


@pytest.mark.parametrize("written", ["245.50", "245,50 €", "$245.50", "kr 245,50"])
def test_voicemail_names_no_amount_in_any_locale(written: str) -> None:
    ctx = context(P.REMINDER, "us")  # amount_due 245.50
    assert str(ctx.amount_due.amount) == "245.50"
    with pytest.raises(MessageCheckFailed, match="limited_content_voicemail"):
        _check(channel=Channel.PHONE, text="script", voicemail=f"You owe {written}. Call +1 555 0100.")


def test_voicemail_with_large_amount_and_phone_number() -> None:
    big = attrs.evolve(context(P.REMINDER, "no"), amount_due=Money("1250.00", "NOK"))
    vm_ok = "Hei, dette er Fjordklinikken. Ring oss på 22 12 50 00."
    assert "limited_content_voicemail" in _check(
        context=big, channel=Channel.PHONE, text="script", voicemail=vm_ok
    )
    for written in ("1\u00a0250,00 kr", "1 250,00", "1,250.00", "1.250,00 €"):
        with pytest.raises(MessageCheckFailed, match="limited_content_voicemail"):
            _check(context=big, channel=Channel.PHONE, text="script", voicemail=f"{vm_ok} {written}")


_PIECES = st.sampled_from(
    ["Court", "court.", "ordered", " ", ".", "..", "Ab", "shame", "Ø", "I", "ı", "ß", "\u00a0", "-", "'"]
)


@given(texts=st.lists(st.lists(_PIECES, max_size=25).map("".join), min_size=1, max_size=8))
def test_find_words_finds_what_one_scan_of_the_whole_text_finds(texts: list[str]) -> None:
    # the sentences found clean are remembered across calls: a later text that repeats them,
    # with a word in another sentence, must still be caught
    words = ("court", "shame", "order", "ab")
    for text in texts:
        low = " " + text.casefold() + " "
        expected = [w for w in words if re.search(r"(?<![\w])" + re.escape(w), low)]
        assert find_words(text, words) == expected
