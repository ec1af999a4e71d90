"""What the patient is told, in their language: the pre-notification before a debit, and a returned debit.

Why these texts live here and go out through a message channel, not as a
cadence step of the core: the core's renderer chooses templates by
:class:`~carecollect.outreach.OutreachPurpose`, a closed enum of the core's
collection steps, and no hook lets a plugin add a purpose or a step to a
policy pack's cadence. A pre-notification is not a collection step either: it
is a duty of the SEPA rulebook, owed for each debit at a date the plugin
computes when it schedules the debit. So the plugin renders its own short
texts (English, German, Norwegian Bokmål, Bulgarian) and hands the result,
a :class:`~carecollect.plugins.messaging.OutgoingMessage`, to the configured message
channel plugin, with a message id derived from the collection, so the
channel's own idempotency sends each notice once.

Texts carry no clinical detail and no account number: the amount, the date,
the mandate reference and the creditor identifier (which the rulebook
requires), and how to reach the creditor. Subjects carry none of these.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> text = pre_notification_text("de", creditor="Praxis Dr. Weber", creditor_id="DE98ZZZ09999999999",
...     amount=Money("60.00", "EUR"), due_on=dt.date(2026, 4, 7), mandate_reference="CC-A-1-01",
...     contact="+49 30 1234567")
>>> print(text.subject)
Ankündigung einer SEPA-Lastschrift
>>> text.body.splitlines()[0]
'Guten Tag,'
"""

from __future__ import annotations

import datetime as dt

import attrs
import babel.dates
from carecollect.errors import ValidationError
from carecollect.money import Money

from .bank_files import ReturnCategory

__all__ = ["LANGUAGES", "NoticeText", "pre_notification_text", "return_notice_text"]

LANGUAGES = ("en", "de", "nb", "bg")
_LOCALES = {"en": "en_IE", "de": "de_DE", "nb": "nb_NO", "bg": "bg_BG"}


@attrs.frozen
class NoticeText:
    """A notice's subject and body (never in reprs)."""

    subject: str = attrs.field(repr=False)
    body: str = attrs.field(repr=False)


_PRE = {
    "en": (
        "Notice of an upcoming direct debit",
        "Hello,\n\n{creditor} will collect {amount} from your account by SEPA direct debit on {due}.\n"
        "Mandate reference: {mandate}. Creditor identifier: {creditor_id}.\n"
        "Please make sure the money is in the account on that day. If anything is wrong, contact us "
        "before then: {contact}.",
    ),
    "de": (
        "Ankündigung einer SEPA-Lastschrift",
        "Guten Tag,\n\n{creditor} zieht am {due} den Betrag von {amount} per SEPA-Lastschrift von Ihrem "
        "Konto ein.\nMandatsreferenz: {mandate}. Gläubiger-Identifikationsnummer: {creditor_id}.\n"
        "Bitte sorgen Sie an diesem Tag für Deckung. Stimmt etwas nicht, melden Sie sich vorher bei uns: "
        "{contact}.",
    ),
    "nb": (
        "Varsel om kommende SEPA-trekk",
        "Hei,\n\n{creditor} trekker {amount} fra kontoen din med SEPA-direktedebitering {due}.\n"
        "Mandatreferanse: {mandate}. Kreditor-ID: {creditor_id}.\n"
        "Sørg for at det er dekning på kontoen den dagen. Er noe feil, kontakt oss før den tid: {contact}.",
    ),
    "bg": (
        "Известие за предстоящо директно дебитиране",
        "Здравейте,\n\n{creditor} ще събере {amount} от сметката Ви чрез директен дебит SEPA на {due}.\n"
        "Референция на нареждането: {mandate}. Идентификатор на кредитора: {creditor_id}.\n"
        "Моля, осигурете наличност по сметката на тази дата. Ако нещо не е наред, свържете се с нас "
        "преди това: {contact}.",
    ),
}

_RETURN_SUBJECT = {
    "en": "About your direct debit",
    "de": "Zu Ihrer Lastschrift",
    "nb": "Om trekket ditt",
    "bg": "Относно Вашия директен дебит",
}
_RETURN_INTRO = {
    "en": "Hello,\n\nyour bank did not pay the direct debit of {amount} due on {due}.",
    "de": "Guten Tag,\n\nIhre Bank hat die Lastschrift über {amount} vom {due} nicht eingelöst.",
    "nb": "Hei,\n\nbanken din betalte ikke trekket på {amount} som forfalt {due}.",
    "bg": "Здравейте,\n\nВашата банка не плати директния дебит за {amount} с падеж {due}.",
}
_RETURN_REASON = {
    ReturnCategory.INSUFFICIENT_FUNDS: {
        "en": "There was not enough money in the account that day. That can happen to anyone.",
        "de": "Das Konto war an diesem Tag nicht gedeckt. Das kann jedem passieren.",
        "nb": "Det var ikke nok penger på kontoen den dagen. Det kan skje alle.",
        "bg": "В сметката нямаше достатъчно средства на тази дата. Това може да се случи на всеки.",
    },
    ReturnCategory.ACCOUNT_UNUSABLE: {
        "en": "The bank could not debit the account. We will not try this mandate again.",
        "de": "Die Bank konnte das Konto nicht belasten. Wir nutzen dieses Mandat nicht mehr.",
        "nb": "Banken kunne ikke trekke fra kontoen. Vi bruker ikke dette mandatet igjen.",
        "bg": "Банката не можа да задължи сметката. Няма да използваме повече това нареждане.",
    },
    ReturnCategory.NO_MANDATE: {
        "en": "Your bank has no valid mandate for us. We will not try this mandate again.",
        "de": "Ihrer Bank liegt kein gültiges Mandat für uns vor. Wir nutzen dieses Mandat nicht mehr.",
        "nb": "Banken din har ikke et gyldig mandat for oss. Vi bruker ikke dette mandatet igjen.",
        "bg": "Банката Ви няма валидно нареждане за нас. Няма да използваме повече това нареждане.",
    },
    ReturnCategory.DEBTOR_REFUSED: {
        "en": "The debit was stopped at your request. If you have a question about the bill, just tell us.",
        "de": "Die Lastschrift wurde auf Ihren Wunsch zurückgegeben. Haben Sie Fragen zur Rechnung, "
        "sagen Sie es uns einfach.",
        "nb": "Trekket ble stoppet etter ønske fra deg. Har du spørsmål om regningen, si fra til oss.",
        "bg": "Дебитът беше спрян по Ваше желание. Ако имате въпрос за сметката, просто ни кажете.",
    },
    ReturnCategory.OTHER: {
        "en": "The bank did not give a reason we can explain.",
        "de": "Die Bank hat keinen Grund genannt, den wir erklären können.",
        "nb": "Banken oppga ingen grunn vi kan forklare.",
        "bg": "Банката не посочи причина, която можем да обясним.",
    },
}
# The plugin never posts a fee itself (the core has no fee for it): with the pack's permission it
# reports the bank's charge in the intake event, and the notice says only what may happen.
_RETURN_FEE = {
    "en": (
        "No fee has been added to your bill.",
        "Your bank charged us {fee} for the return. Your agreement allows us to pass this on; if we do, "
        "it will be shown on your next statement.",
    ),
    "de": (
        "Wir haben Ihnen dafür keine Gebühr berechnet.",
        "Ihre Bank hat uns {fee} für die Rückgabe berechnet. Ihre Vereinbarung erlaubt uns, diesen Betrag "
        "weiterzugeben; wenn wir das tun, steht er auf Ihrer nächsten Abrechnung.",
    ),
    "nb": (
        "Vi har ikke lagt noe gebyr til regningen din.",
        "Banken din belastet oss {fee} for returen. Avtalen din tillater at vi krever dette av deg; gjør vi "
        "det, står det på neste oversikt.",
    ),
    "bg": (
        "Не сме добавили такса към сметката Ви.",
        "Банката Ви ни начисли {fee} за връщането. Споразумението Ви ни позволява да Ви я прехвърлим; ако "
        "го направим, тя ще бъде посочена в следващото Ви извлечение.",
    ),
}
_RETURN_CLOSE = {
    "en": "The amount is still open. You can pay it another way, or contact us to find a way that suits "
    "you: {contact}.",
    "de": "Der Betrag ist weiterhin offen. Sie können ihn anders bezahlen oder sich bei uns melden, damit "
    "wir gemeinsam eine Lösung finden: {contact}.",
    "nb": "Beløpet er fortsatt ubetalt. Du kan betale på en annen måte, eller kontakte oss så finner vi en "
    "løsning som passer deg: {contact}.",
    "bg": "Сумата все още е дължима. Можете да я платите по друг начин или да се свържете с нас, за да "
    "намерим удобно решение: {contact}.",
}


def _language(language: str) -> str:
    lang = (language or "").split("-")[0].split("_")[0].lower()
    if lang == "no" or lang == "nn":
        lang = "nb"
    if lang not in LANGUAGES:
        raise ValidationError("SEPA notice", "language", f"one of {', '.join(LANGUAGES)}")
    return lang


def _date(day: dt.date, lang: str) -> str:
    return str(babel.dates.format_date(day, format="long", locale=_LOCALES[lang]))


def pre_notification_text(
    language: str,
    *,
    creditor: str,
    creditor_id: str,
    amount: Money,
    due_on: dt.date,
    mandate_reference: str,
    contact: str,
) -> NoticeText:
    """The pre-notification (Vorabankündigung) of one debit in ``language``."""
    lang = _language(language)
    subject, body = _PRE[lang]
    return NoticeText(
        subject,
        body.format(
            creditor=creditor,
            creditor_id=creditor_id,
            amount=amount.format(_LOCALES[lang]),
            due=_date(due_on, lang),
            mandate=mandate_reference,
            contact=contact,
        ),
    )


def return_notice_text(
    language: str,
    *,
    category: ReturnCategory,
    amount: Money,
    due_on: dt.date,
    contact: str,
    fee: Money | None = None,
) -> NoticeText:
    """The friendly message after a debit was rejected or returned.

    :param category: the reason's category (:attr:`ReturnCategory.TECHNICAL` and
        :attr:`ReturnCategory.DECEASED` are never told to the patient: a :class:`ValidationError`).
    :param fee: the bank's return charge, when the policy pack allows passing it on (the notice says it
        may appear on the next statement; the plugin does not post it); ``None``: no fee.
    """
    lang = _language(language)
    if category not in _RETURN_REASON:
        raise ValidationError(
            "SEPA return notice", "category", f"{category.value} is not told to the patient"
        )
    loc = _LOCALES[lang]
    no_fee, with_fee = _RETURN_FEE[lang]
    parts = [
        _RETURN_INTRO[lang].format(amount=amount.format(loc), due=_date(due_on, lang)),
        _RETURN_REASON[category][lang],
        with_fee.format(fee=fee.format(loc)) if fee is not None and fee.is_positive() else no_fee,
        _RETURN_CLOSE[lang].format(contact=contact),
    ]
    return NoticeText(_RETURN_SUBJECT[lang], "\n".join(parts))
