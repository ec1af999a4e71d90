"""The clinical-word check knows the names of conditions, in all four languages (issue 13).

It refused "diagnosis" but let "diabetes", "schizophrenia" or "chlamydia" through. The check now
matches the sourced vocabulary of :mod:`carecollect.messages.conditions` on word boundaries,
without false hits on the ordinary words of billing messages.
"""

from __future__ import annotations

import pytest

from carecollect.channels import Channel
from carecollect.messages.catalog import LANGUAGES
from carecollect.messages.checks import CLINICAL_WORDS, MessageCheckFailed, check_rendering
from carecollect.messages.conditions import CONDITION_TERMS, clinical_matcher
from carecollect.messages.examples import DESCRIPTIONS, JURISDICTION_OF, context
from carecollect.messages.render import render
from carecollect.outreach import OutreachPurpose

HOME = {"en": "us", "de": "de", "nb": "no", "bg": "bg"}

#: Condition names, lay and clinical, as they appear in sentences (inflected, compounds, any case).
CONDITIONS_IN_USE = {
    "en": [
        "Diabetes",
        "diabetic",
        "schizophrenia",
        "Depression",
        "chlamydia",
        "HIV",
        "asthma",
        "high blood pressure",
        "Alzheimer's",
        "epilepsy",
        "hepatitis C",
        "breast cancer",
        "miscarriage",
        "alcoholism",
        "herpes",
        "gonorrhoea",
        "bipolar",
        "anorexia",
        "STDs",
        "leukaemia",
        "Crohn's",
        "psoriasis",
        "infertility",
        "dementia",
        "heart failure",
    ],
    "de": [
        "Diabetes",
        "Zuckerkrankheit",
        "Schizophrenie",
        "Depressionen",
        "Altersdepression",
        "Chlamydien",
        "HIV",
        "Asthma",
        "Bluthochdruck",
        "Alzheimer",
        "Epilepsie",
        "Hepatitis",
        "Brustkrebs",
        "Lungenkrebs",
        "Fehlgeburt",
        "Alkoholsucht",
        "Herpes",
        "Tripper",
        "Magersucht",
        "Hirntumor",
        "Schwangerschaft",
        "Unfruchtbarkeit",
        "Demenz",
        "Gicht",
    ],
    "nb": [
        "diabetes",
        "sukkersyke",
        "schizofreni",
        "depresjon",
        "klamydia",
        "hiv",
        "astma",
        "høyt blodtrykk",
        "Alzheimers",
        "epilepsi",
        "hepatitt",
        "brystkreft",
        "kreft",
        "spontanabort",
        "rusavhengighet",
        "rus",
        "herpes",
        "gonoré",
        "spiseforstyrrelse",
        "demens",
        "gravid",
        "leddgikt",
        "hjerneslag",
        "psykose",
    ],
    "bg": [
        "диабет",
        "Диабетът",
        "шизофрения",
        "депресия",
        "хламидия",
        "ХИВ",
        "СПИН",
        "астма",
        "високо кръвно",
        "Алцхаймер",
        "епилепсия",
        "хепатит",
        "рак",
        "ракът",
        "левкемия",
        "спонтанен аборт",
        "алкохолизъм",
        "херпес",
        "гонорея",
        "анорексия",
        "бременност",
        "деменция",
        "инсулт",
        "туберкулоза",
    ],
}

#: Ordinary words of billing messages that must never match.
ORDINARY = {
    "en": [
        "statement",
        "balance",
        "payment",
        "standard",
        "cancel",
        "cancellation",
        "conditions",
        "terms and conditions",
        "history",
        "withdrawal",
        "direct debit",
        "instalment",
        "insurance",
        "hospital",
        "clinic",
        "reminder",
        "questions",
        "studio",
        "transfer",
        "pressure",
        "support",
        "discount",
        "assistance",
        "portal",
        "treatment plan",
        "aid",
        "strokes of luck",
        "utility",
        "as",
        "also",
        "Stiles",
        "account",
    ],
    "de": [
        "Rechnung",
        "Zahlung",
        "Betrag",
        "besucht",
        "er sucht",
        "abhängig",
        "unabhängig",
        "Störung",
        "Entzug der Lastschrift",
        "Zahlungserinnerung",
        "Ratenzahlung",
        "Mahnung",
        "Versicherung",
        "Stil",
        "als",
        "Aktion",
        "Rückfragen",
        "Behandlung",
        "Frist",
        "Konto",
    ],
    "nb": [
        "faktura",
        "for eksempel",
        "betaling",
        "beløp",
        "Bekreft",
        "bekreftelse",
        "krefter",
        "kreftene",
        "russisk",
        "Russland",
        "rusk",
        "slagord",
        "avslag",
        "abonnement",
        "forfallsdato",
        "betalingsoppfordring",
        "uti",
        "gravemaskin",
        "terminbeløp",
        "fornøyd",
        "kontakt",
        "sykehus",
    ],
    "bg": [
        "сметка",
        "в зависимост от сумата",
        "плащане",
        "сума",
        "операция",
        "платежна операция",
        "ракета",
        "ракурс",
        "спина на книгата",
        "срок",
        "фактура",
        "вноска",
        "отстъпка",
        "застраховка",
        "напомняне",
        "въпроси",
        "грижа",
        "разсрочено",
        "клиника",
        "болница",
        "уведомление",
    ],
}


def _sms(language: str, words: str) -> None:
    ctx = context(OutreachPurpose.REMINDER, HOME[language])
    check_rendering(
        template=f"{language}/sms/test",
        purpose=OutreachPurpose.REMINDER,
        channel=Channel.SMS,
        language=language,
        context=ctx,
        text=f"{ctx.sender_name}: {words}. {ctx.opt_out_keyword}",
    )


@pytest.mark.parametrize(
    ("language", "term"), [(lang, t) for lang, terms in CONDITIONS_IN_USE.items() for t in terms]
)
def test_a_condition_name_in_an_sms_is_refused(language: str, term: str) -> None:
    with pytest.raises(MessageCheckFailed, match="minimum_necessary"):
        _sms(language, f"Your bill from the {term} service")


@pytest.mark.parametrize(("language", "words"), [(lang, w) for lang, ws in ORDINARY.items() for w in ws])
def test_ordinary_billing_words_pass(language: str, words: str) -> None:
    _sms(language, words)
    assert clinical_matcher(language, base=CLINICAL_WORDS[language]).find(words) == []


@pytest.mark.parametrize("language", ["en", "de", "nb", "bg"])
def test_every_term_of_the_vocabulary_is_found_in_a_sentence(language: str) -> None:
    matcher = clinical_matcher(language)
    for term in CONDITION_TERMS[language]:
        word = term.lstrip("~").rstrip(".!")
        for written in (word, word.upper(), word.title()):
            hits = matcher.find(f"Ihr Termin: {written}, danke")
            assert hits, f"{language}: {term!r} written {written!r} is not found"


@pytest.mark.parametrize("language", ["en", "de", "nb", "bg"])
def test_the_vocabulary_is_hundreds_of_terms(language: str) -> None:
    assert len(set(CONDITION_TERMS[language])) >= 150


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_the_catalog_renders_passes_and_carries_no_condition(language: str) -> None:
    """Every purpose on every channel renders (the check passes), and no part of any rendering,
    letters and e-mail bodies included, names a condition beyond the statement lines."""
    matcher = clinical_matcher(language, base=CLINICAL_WORDS.get(language, ()) + CLINICAL_WORDS["en"])
    allowed = set(matcher.find(" / ".join(DESCRIPTIONS)))  # the sample statement lines
    rendered = 0
    for purpose in OutreachPurpose:
        ctx = context(purpose, JURISDICTION_OF.get(purpose, HOME[language]))
        for channel in (Channel.SMS, Channel.EMAIL, Channel.LETTER, Channel.PHONE, Channel.PORTAL):
            msg = render(purpose, channel, language, ctx)  # the checks run here, and pass
            rendered += 1
            for part in (msg.text, msg.subject, msg.voicemail):
                if part:
                    assert set(matcher.find(part)) <= allowed, (purpose, channel, matcher.find(part))
    assert rendered > 40


def test_a_vendor_adds_terms() -> None:
    ctx = context(OutreachPurpose.REMINDER, "us")
    text = f"{ctx.sender_name}: your Glowcare balance. {ctx.opt_out_keyword}"
    common = dict(
        template="en/sms/test",
        purpose=OutreachPurpose.REMINDER,
        channel=Channel.SMS,
        language="en",
        context=ctx,
    )
    check_rendering(text=text, **common)  # type: ignore[arg-type]
    with pytest.raises(MessageCheckFailed, match="glowcare"):
        check_rendering(text=text, extra_clinical=["glowcare."], **common)  # type: ignore[arg-type]
