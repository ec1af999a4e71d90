"""Why the insurer paid what it paid: the common adjustment and remark codes in plain words, in four languages.

Insurers explain every amount they did not pay with a Claim Adjustment Reason
Code (CARC, for example ``45``) in a group (``CO`` taken off by the provider,
``PR`` the patient's), and add Remittance Advice Remark Codes (RARC, for
example ``N130``). The official wording (X12's code lists) is written for
billing staff; the texts here are carecollect's own, written for the patient,
and say what the code means for them. A code without a text here is shown
with a general sentence and the code itself, so nothing goes unexplained; see
:doc:`/reference/remittance` for the table.

>>> carc_text("45", "en")
"The charge is more than your insurer's contract with us allows. We take the difference off: you do not pay it."
>>> carc_text("999", "de").startswith("Ihre Versicherung gibt den Grund")
True
>>> rarc_text("N130", "nb")
'Se vilkårene for forsikringen din for hva som dekkes.'
"""

from __future__ import annotations

from ..errors import ValidationError
from .catalog import LANGUAGES

__all__ = ["CARC_TEXTS", "RARC_TEXTS", "carc_text", "rarc_text"]

#: CARC -> language (every one of :data:`~carecollect.messages.catalog.LANGUAGES`) -> plain-language text.
CARC_TEXTS: dict[str, dict[str, str]] = {
    "1": {
        "en": "This counts towards your deductible: the amount you pay yourself each year before your insurance starts to pay.",
        "de": "Dieser Betrag zählt zu Ihrem Selbstbehalt: dem Betrag, den Sie jedes Jahr selbst zahlen, bevor Ihre Versicherung zahlt.",
        "nb": "Dette går til egenandelen din: beløpet du betaler selv hvert år før forsikringen begynner å betale.",
        "bg": "Тази сума се отчита към самоучастието Ви: сумата, която плащате сами всяка година, преди застраховката да започне да плаща.",
    },
    "2": {
        "en": "This is your coinsurance: your agreed percentage of the cost.",
        "de": "Das ist Ihre prozentuale Selbstbeteiligung: Ihr vereinbarter Anteil an den Kosten.",
        "nb": "Dette er den prosentvise egenandelen din: din avtalte del av kostnaden.",
        "bg": "Това е Вашето съучастие: договореният Ви процент от разходите.",
    },
    "3": {
        "en": "This is your copay: the fixed amount you pay for this kind of visit.",
        "de": "Das ist Ihre Zuzahlung: der feste Betrag, den Sie für diese Art von Besuch zahlen.",
        "nb": "Dette er egenandelen din: det faste beløpet du betaler for denne typen besøk.",
        "bg": "Това е Вашето доплащане: фиксираната сума, която плащате за този вид посещение.",
    },
    "16": {
        "en": "Your insurer needs more information before it pays. We are sending it; you do not need to do anything now.",
        "de": "Ihre Versicherung braucht weitere Angaben, bevor sie zahlt. Wir reichen sie nach; Sie müssen jetzt nichts tun.",
        "nb": "Forsikringen trenger flere opplysninger før den betaler. Vi sender dem; du trenger ikke gjøre noe nå.",
        "bg": "Застрахователят Ви се нуждае от още информация, преди да плати. Ние я изпращаме; не е нужно да правите нищо сега.",
    },
    "18": {
        "en": "Your insurer already received this claim once. The first claim is the one that counts.",
        "de": "Ihre Versicherung hat diese Abrechnung bereits einmal erhalten. Es gilt die erste Abrechnung.",
        "nb": "Forsikringen har allerede mottatt dette kravet én gang. Det første kravet er det som gjelder.",
        "bg": "Застрахователят Ви вече е получил тази претенция веднъж. Важи първата претенция.",
    },
    "23": {
        "en": "Another insurer already paid part of this; this insurer counted that payment.",
        "de": "Eine andere Versicherung hat bereits einen Teil bezahlt; diese Versicherung hat das berücksichtigt.",
        "nb": "Et annet forsikringsselskap har allerede betalt en del; dette selskapet har tatt hensyn til det.",
        "bg": "Друг застраховател вече е платил част от сумата; този застраховател я е взел предвид.",
    },
    "29": {
        "en": "We sent the claim to your insurer too late. That is our responsibility: you do not pay this.",
        "de": "Wir haben die Abrechnung zu spät an Ihre Versicherung geschickt. Das liegt bei uns: Sie zahlen das nicht.",
        "nb": "Vi sendte kravet for sent til forsikringen. Det er vårt ansvar: du betaler ikke dette.",
        "bg": "Изпратихме претенцията твърде късно до застрахователя Ви. Това е наша отговорност: Вие не плащате това.",
    },
    "45": {
        "en": "The charge is more than your insurer's contract with us allows. We take the difference off: you do not pay it.",
        "de": "Der Betrag ist höher, als der Vertrag Ihrer Versicherung mit uns erlaubt. Wir ziehen den Unterschied ab: Sie zahlen ihn nicht.",
        "nb": "Beløpet er høyere enn avtalen forsikringen har med oss tillater. Vi trekker fra forskjellen: du betaler den ikke.",
        "bg": "Сумата е по-висока от позволеното в договора на застрахователя Ви с нас. Приспадаме разликата: Вие не я плащате.",
    },
    "50": {
        "en": "Your insurer decided it does not pay for this service in your case. You can ask us why, and we can help you ask your insurer to look again.",
        "de": "Ihre Versicherung hat entschieden, diese Leistung in Ihrem Fall nicht zu bezahlen. Fragen Sie uns nach dem Grund; wir helfen Ihnen, die Versicherung um eine neue Prüfung zu bitten.",
        "nb": "Forsikringen har bestemt at den ikke betaler for denne tjenesten i ditt tilfelle. Spør oss om hvorfor; vi kan hjelpe deg å be forsikringen se på saken igjen.",
        "bg": "Застрахователят Ви реши да не плаща тази услуга във Вашия случай. Попитайте ни защо; можем да Ви помогнем да поискате нова проверка.",
    },
    "96": {
        "en": "Your insurance plan does not cover this charge.",
        "de": "Ihr Versicherungstarif deckt diesen Betrag nicht ab.",
        "nb": "Forsikringsavtalen din dekker ikke dette beløpet.",
        "bg": "Застрахователният Ви план не покрива тази сума.",
    },
    "97": {
        "en": "Your insurer counts this as part of another service it already paid for. You do not pay it separately.",
        "de": "Ihre Versicherung rechnet dies zu einer anderen Leistung, die sie schon bezahlt hat. Sie zahlen es nicht extra.",
        "nb": "Forsikringen regner dette som en del av en annen tjeneste den allerede har betalt. Du betaler det ikke i tillegg.",
        "bg": "Застрахователят Ви го отчита като част от друга, вече платена услуга. Не го плащате отделно.",
    },
    "109": {
        "en": "This insurer says another insurer should pay. We will send the claim there; tell us if your insurance has changed.",
        "de": "Diese Versicherung sagt, eine andere Versicherung sei zuständig. Wir schicken die Abrechnung dorthin; sagen Sie uns, wenn sich Ihre Versicherung geändert hat.",
        "nb": "Dette forsikringsselskapet sier at et annet selskap skal betale. Vi sender kravet dit; si fra om forsikringen din er endret.",
        "bg": "Този застраховател посочва друг като отговорен. Ще изпратим претенцията там; кажете ни, ако застраховката Ви е променена.",
    },
    "119": {
        "en": "You have reached the most your plan pays for this kind of care in this period.",
        "de": "Sie haben den Höchstbetrag erreicht, den Ihr Tarif in diesem Zeitraum für diese Art von Behandlung zahlt.",
        "nb": "Du har nådd det høyeste beløpet avtalen din dekker for denne typen behandling i perioden.",
        "bg": "Достигнали сте максималната сума, която планът Ви плаща за този вид грижа за периода.",
    },
    "197": {
        "en": "Your insurer needed to approve this in advance and has no approval on file. We are checking this with your insurer.",
        "de": "Ihre Versicherung hätte dies vorher genehmigen müssen und hat keine Genehmigung. Wir klären das mit Ihrer Versicherung.",
        "nb": "Forsikringen skulle ha godkjent dette på forhånd og har ingen godkjenning. Vi avklarer dette med forsikringen.",
        "bg": "Застрахователят Ви е трябвало да одобри това предварително и няма одобрение. Изясняваме въпроса със застрахователя.",
    },
    "204": {
        "en": "Your current insurance plan does not cover this service.",
        "de": "Ihr aktueller Versicherungstarif deckt diese Leistung nicht ab.",
        "nb": "Den nåværende forsikringsavtalen din dekker ikke denne tjenesten.",
        "bg": "Настоящият Ви застрахователен план не покрива тази услуга.",
    },
    "242": {
        "en": "Your plan pays for this only when it is done by a provider in its network.",
        "de": "Ihr Tarif zahlt dies nur, wenn es von einem Vertragspartner der Versicherung erbracht wird.",
        "nb": "Avtalen din dekker dette bare når det utføres av en behandler som forsikringen har avtale med.",
        "bg": "Планът Ви плаща това само когато е извършено от доставчик в неговата мрежа.",
    },
    "253": {
        "en": "A small reduction the government requires on insurer payments. You do not pay it.",
        "de": "Eine kleine, gesetzlich vorgeschriebene Kürzung der Versicherungszahlung. Sie zahlen sie nicht.",
        "nb": "Et lite fradrag i forsikringsutbetalingen som myndighetene krever. Du betaler det ikke.",
        "bg": "Малко намаление на плащането, изисквано от държавата. Вие не го плащате.",
    },
}

#: RARC -> language -> plain-language text for the patient.
RARC_TEXTS: dict[str, dict[str, str]] = {
    "N130": {
        "en": "See your plan's benefit documents for what it covers.",
        "de": "Was Ihr Tarif abdeckt, steht in Ihren Versicherungsbedingungen.",
        "nb": "Se vilkårene for forsikringen din for hva som dekkes.",
        "bg": "Вижте условията на плана си за това какво покрива.",
    },
    "M15": {
        "en": "Your insurer paid these services together as one.",
        "de": "Ihre Versicherung hat diese Leistungen zusammen als eine bezahlt.",
        "nb": "Forsikringen har betalt disse tjenestene samlet som én.",
        "bg": "Застрахователят Ви е платил тези услуги заедно като една.",
    },
    "MA130": {
        "en": "The claim was missing information. We will correct it and send it again; you do not need to do anything.",
        "de": "In der Abrechnung fehlten Angaben. Wir korrigieren sie und reichen sie neu ein; Sie müssen nichts tun.",
        "nb": "Kravet manglet opplysninger. Vi retter det og sender det på nytt; du trenger ikke gjøre noe.",
        "bg": "В претенцията липсваше информация. Ще я коригираме и изпратим отново; не е нужно да правите нищо.",
    },
    "MA01": {
        "en": "If you disagree with your insurer's decision, you can ask it to look again (an appeal). We can help.",
        "de": "Wenn Sie mit der Entscheidung nicht einverstanden sind, können Sie Widerspruch einlegen. Wir helfen Ihnen.",
        "nb": "Hvis du er uenig i avgjørelsen, kan du klage til forsikringen. Vi kan hjelpe deg.",
        "bg": "Ако не сте съгласни с решението, можете да подадете обжалване. Можем да помогнем.",
    },
    "N381": {
        "en": "The amount follows the contract between your insurer and us.",
        "de": "Der Betrag folgt dem Vertrag zwischen Ihrer Versicherung und uns.",
        "nb": "Beløpet følger avtalen mellom forsikringen din og oss.",
        "bg": "Сумата следва договора между застрахователя Ви и нас.",
    },
    "M86": {
        "en": "Your insurer already paid for the same service.",
        "de": "Ihre Versicherung hat dieselbe Leistung bereits bezahlt.",
        "nb": "Forsikringen har allerede betalt for den samme tjenesten.",
        "bg": "Застрахователят Ви вече е платил за същата услуга.",
    },
}

_UNKNOWN_CARC = {
    "en": "Your insurer gives reason code {code} for this amount. Ask us and we will explain it.",
    "de": "Ihre Versicherung gibt den Grund {code} für diesen Betrag an. Fragen Sie uns, wir erklären ihn.",
    "nb": "Forsikringen oppgir årsakskode {code} for dette beløpet. Spør oss, så forklarer vi den.",
    "bg": "Застрахователят Ви посочва код {code} за тази сума. Попитайте ни и ще го обясним.",
}
_UNKNOWN_RARC = {
    "en": "Your insurer added note {code}. Ask us and we will explain it.",
    "de": "Ihre Versicherung hat den Hinweis {code} angefügt. Fragen Sie uns, wir erklären ihn.",
    "nb": "Forsikringen har lagt til merknad {code}. Spør oss, så forklarer vi den.",
    "bg": "Застрахователят Ви е добавил бележка {code}. Попитайте ни и ще я обясним.",
}


def _lang(language: str) -> str:
    if language not in LANGUAGES:
        raise ValidationError("remittance code text", "language", f"{language!r} is not one of {LANGUAGES}")
    return language


def carc_text(code: str, language: str) -> str:
    """The plain-language text of a Claim Adjustment Reason Code (a general sentence naming an unknown code)."""
    texts = CARC_TEXTS.get(code)
    return texts[_lang(language)] if texts else _UNKNOWN_CARC[_lang(language)].format(code=code)


def rarc_text(code: str, language: str) -> str:
    """The plain-language text of a Remittance Advice Remark Code (a general sentence naming an unknown code)."""
    texts = RARC_TEXTS.get(code)
    return texts[_lang(language)] if texts else _UNKNOWN_RARC[_lang(language)].format(code=code)
