"""Checks every rendering passes before it may go out.

* **Minimum necessary** (HIPAA 45 CFR 164.502(b); GDPR Art. 9 and 5(1)(c)):
  no clinical words in an SMS, a phone script or voicemail, or an e-mail
  subject, and no statement-line description there either; the voicemail is
  limited content (12 CFR 1006.2(j)): no amount, no reference.
* **Opt-out**: every e-mail, SMS and portal notification carries a working
  opt-out (12 CFR 1006.6(e); TCPA): the e-mail and portal the context's
  opt-out URL, the SMS the opt-out keyword.
* **SMS length and encoding**: GSM-7 (160 septets, 153 per segment when
  concatenated, extension characters count twice) or UCS-2 (70 UTF-16 units,
  67 per segment); Bulgarian is Cyrillic and so always UCS-2.
* **Tone**: no shaming words anywhere, and no threatening words in a friendly
  step, per language.

The clinical vocabulary is the sourced list of condition names of
:mod:`carecollect.messages.conditions` (hundreds of terms per language) and the
specialty and procedure words of :data:`CLINICAL_WORDS`, matched on word
boundaries by one compiled scan per language. Vendors add terms with
:func:`check_rendering`'s ``extra_clinical`` argument (``Renderer(extra_clinical=...)``).

>>> sms_segments("Hello")
(<SmsEncoding.GSM7: 'gsm7'>, 1)
>>> sms_segments("Здравейте")
(<SmsEncoding.UCS2: 'ucs2'>, 1)
>>> sms_segments("x" * 161)
(<SmsEncoding.GSM7: 'gsm7'>, 2)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from ..channels import Channel
from ..errors import ConfigurationError, MessageCheckFailed
from ..outreach import OutreachPurpose
from ..policy.content import Sensitive, Surface, check_content
from ..policy.packs import PolicyPack, get_pack
from .conditions import clinical_matcher
from .context import MessageContext, SmsEncoding

__all__ = [
    "CLINICAL_WORDS",
    "FRIENDLY_PURPOSES",
    "SHAMING_WORDS",
    "THREAT_WORDS",
    "MessageCheckFailed",
    "check_rendering",
    "find_words",
    "sms_segments",
    "tone_words",
]


#: Steps whose tone must stay friendly (no threats of legal steps).
FRIENDLY_PURPOSES = frozenset(
    {
        OutreachPurpose.ESTIMATE,
        OutreachPurpose.PAYMENT_TERMS,
        OutreachPurpose.STATEMENT,
        OutreachPurpose.PRE_DUE_REMINDER,
        OutreachPurpose.REMINDER,
        OutreachPurpose.FINANCIAL_ASSISTANCE,
        OutreachPurpose.PLAN_OFFER,
        OutreachPurpose.INSTALMENT_REMINDER,
        OutreachPurpose.PAYMENT_CONFIRMATION,
        OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT,
        OutreachPurpose.DISPUTE_RESOLUTION,
        OutreachPurpose.FOLLOW_UP_CALL,
    }
)

#: Words that reveal a specialty or procedure, per language, in the term syntax of
#: :mod:`carecollect.messages.conditions` (a plain word is a word start, so "oncolog" catches
#: "oncology"; ``"mri."`` is a whole word). The names of conditions are
#: :data:`~carecollect.messages.conditions.CONDITION_TERMS`; the check uses both.
CLINICAL_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "diagnos",
        "oncolog",
        "cancer",
        "tumour",
        "tumor",
        "chemotherap",
        "radiotherap",
        "pregnan",
        "abortion",
        "psychiatr",
        "mental health",
        "psycholog",
        "therapy",
        "surgery",
        "surgical",
        "dialysis",
        "addiction",
        "rehab",
        "fertility",
        "ivf.",
        "dermatolog",
        "cardiolog",
        "blood test",
        "x-ray",
        "mri.",
        "biopsy",
        "gynaecolog",
        "gynecolog",
        "urolog",
        "dental",
        "prescription drug",
    ),
    "de": (
        "diagnose",
        "onkolog",
        "krebs",
        "tumor",
        "chemotherap",
        "strahlentherap",
        "schwanger",
        "abtreibung",
        "schwangerschaftsabbruch",
        "psychiatr",
        "psycholog",
        "psychotherap",
        "operation",
        "chirurg",
        "dialyse",
        "kinderwunsch",
        "dermatolog",
        "kardiolog",
        "blutuntersuchung",
        "röntgen",
        "mrt.",
        "biopsie",
        "gynäkolog",
        "urolog",
        "zahn",
    ),
    "nb": (
        "diagnose",
        "onkolog",
        "svulst",
        "cellegift",
        "strålebehandling",
        "gravid",
        "abort",
        "psykiatr",
        "psykisk helse",
        "psykolog",
        "terapi",
        "operasjon",
        "kirurg",
        "dialyse",
        "avhengighet",
        "fertilitet",
        "assistert befruktning",
        "hudlege",
        "kardiolog",
        "blodprøve",
        "røntgen",
        "mr-undersøkelse",
        "biopsi",
        "gynekolog",
        "urolog",
        "tannlege",
    ),
    "bg": (
        "диагноз",
        "онколог",
        "тумор",
        "химиотерап",
        "лъчетерап",
        "бременност",
        "аборт",
        "психиатр",
        "психично",
        "психолог",
        "терапия",
        "хирург",
        "диализа",
        "инвитро",
        "дерматолог",
        "кардиолог",
        "кръвн",
        "рентген",
        "ядрено-магнитен",
        "биопсия",
        "гинеколог",
        "уролог",
        "зъболекар",
    ),
}

#: Threatening words a friendly step must not use, per language.
THREAT_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "lawsuit",
        "sue ",
        "court",
        "legal action",
        "garnish",
        "seize",
        "arrest",
        "final warning",
        "immediately",
        "credit bureau",
        "debt collector",
        "enforced collection",
        "consequences",
    ),
    "de": (
        "klage",
        "gericht",
        "rechtliche schritte",
        "pfändung",
        "zwangsvollstreckung",
        "letzte warnung",
        "sofort",
        "schufa",
        "auskunftei",
        "inkasso",
        "konsequenzen",
    ),
    "nb": (
        "søksmål",
        "domstol",
        "rettslige skritt",
        "utlegg",
        "tvangsinndrivelse",
        "namsmann",
        "siste advarsel",
        "umiddelbart",
        "kredittopplysning",
        "inkasso",
        "konsekvenser",
    ),
    "bg": (
        "съда",
        "съдебн",
        "съдебен иск",
        "запор",
        "принудително",
        "съдия-изпълнител",
        "последно предупреждение",
        "незабавно",
        "кредитно бюро",
        "колектор",
        "последствия",
    ),
}

#: Shaming words no message may use, per language.
SHAMING_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "irresponsible",
        "shame",
        "deadbeat",
        "delinquent",
        "negligent",
        "you failed",
        "refused to pay",
        "dishonest",
        "lazy",
    ),
    "de": (
        "verantwortungslos",
        "schäm",
        "schande",
        "säumiger schuldner",
        "zahlungsunwillig",
        "nachlässig",
        "unehrlich",
        "faul",
    ),
    "nb": ("uansvarlig", "skam", "skyldner som nekter", "betalingsuvillig", "uærlig", "lat ", "forsømmelig"),
    "bg": ("безотговорн", "срам", "некоректен платец", "злонамерен", "нечестн", "мързелив", "небрежн"),
}

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")
_GSM_ALL = frozenset(_GSM_BASIC | _GSM_EXT)


def html_to_text(html: str) -> str:
    """The words of an HTML part: tags dropped, entities decoded.

    >>> html_to_text("<p>Pay by <b>court</b> &amp; law</p>")
    'Pay by court & law'
    """
    import html as _html

    return " ".join(_html.unescape(re.sub(r"<[^>]+>", " ", html)).split())


_AMOUNT = re.compile(r"(?<![\d])(?:\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+|\d+)[.,]\d{2}(?!\d)")


def _amounts_in(text: str) -> set[str]:
    """The amounts written in ``text`` (any locale's separators), as digit strings of minor units.

    >>> sorted(_amounts_in("1\u00a0250,00 kr, $1,250.00 or 245.50; call 22 12 50 00"))
    ['125000', '24550']
    """
    return {re.sub(r"\D", "", m) for m in _AMOUNT.findall(text)}


def sms_segments(text: str) -> tuple[SmsEncoding, int]:
    """The encoding and number of segments an SMS needs (3GPP TS 23.038 / 23.040).

    :param text: the SMS text.
    :returns: ``(encoding, segments)``; GSM-7 when every character is in the
        GSM 03.38 basic set or extension table, else UCS-2.
    """
    chars = set(text)
    if chars <= _GSM_ALL:
        ext = chars & _GSM_EXT
        if not ext:  # every character one septet: counted from the length alone
            return SmsEncoding.GSM7, _by_length(len(text), 160, 153)
        sizes = [2 if c in _GSM_EXT else 1 for c in text]  # an extension character is escape + code
        return SmsEncoding.GSM7, _packed(sizes, 160, 153)
    units = len(text.encode("utf-16-le")) // 2
    if units == len(text):  # no character beyond the BMP: one unit each
        return SmsEncoding.UCS2, _by_length(units, 70, 67)
    sizes = [len(c.encode("utf-16-le")) // 2 for c in text]  # beyond the BMP: a surrogate pair
    return SmsEncoding.UCS2, _packed(sizes, 70, 67)


def _by_length(units: int, single: int, part: int) -> int:
    """Segments for ``units`` characters of one unit each (what :func:`_packed` counts for them)."""
    return 1 if units <= single else -(-units // part)


def _packed(sizes: list[int], single: int, part: int) -> int:
    """Segments needed for characters of ``sizes`` units: one of ``single`` units, else parts of
    ``part`` units each (the rest holds the concatenation header), no character split between two."""
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


def find_words(text: str, words: Iterable[str]) -> list[str]:
    """The ``words`` (lower case) that start a word in ``text``.

    >>> find_words("Your Oncology visit", CLINICAL_WORDS["en"])
    ['oncolog']

    :param text: the text to scan.
    :param words: word starts to look for.
    :returns: the ones found, in list order.
    """
    return _words_in(_Folded(text), tuple(words))


def tone_words(
    *,
    subject: str | None,
    text: str,
    html: str | None = None,
    voicemail: str | None = None,
    tone_exempt: Sequence[str] = (),
) -> str:
    """The words the tone check of :func:`check_rendering` reads, case-folded: the subject's,
    the text's, the HTML part's (what most patients read: tags dropped, entities decoded) and the
    voicemail's, white space made single spaces, the quoted reference texts (``tone_exempt``)
    taken out.

    >>> tone_words(subject="Your  Bill", text="Pay by  1 May.", html="<p>Pay by <b>1&nbsp;May</b>.</p>")
    'your bill pay by 1 may. pay by 1 may .'
    """
    parts = [" ".join(p.split()) for p in (subject, text) if p]
    html_words = html_to_text(html) if html else None  # its words already between single spaces
    if html_words:
        parts.append(html_words)
    if voicemail:
        parts.append(" ".join(voicemail.split()))
    whole = " ".join(parts)
    for quoted in tone_exempt:
        whole = whole.replace(_squeezed(quoted), " ")
    return whole.casefold()


class _Folded:
    """A text case-folded between two spaces, and its sentences (split at full stops) once
    asked for: what :func:`find_words` scans, made once for every word list a text is checked
    against."""

    __slots__ = ("_sentences", "low")

    def __init__(self, text: str, *, folded: bool = False) -> None:
        self.low = " " + (text if folded else text.casefold()) + " "
        self._sentences: frozenset[str] | None = None

    @property
    def sentences(self) -> frozenset[str]:
        """The folded text's sentences."""
        if self._sentences is None:
            self._sentences = frozenset(self.low.split("."))
        return self._sentences


def _words_in(text: _Folded, words: tuple[str, ...]) -> list[str]:
    """:func:`find_words` on a folded text."""
    if not words or not _any_hit(words, text):  # the common case is no hit at all
        return []
    return [w for w in words if re.search(r"(?<![\w])" + re.escape(w.casefold()), text.low)]


def _any_hit(words: tuple[str, ...], text: _Folded) -> bool:
    """Whether any of ``words`` starts a word in ``text``.

    A message is mostly the same sentences as the last one of its template, with a few values in
    between. When no word holds a full stop, no hit spans one, and a full stop is not a word
    character (the check before a word start sees the same either way): the text is scanned
    sentence by sentence, and a sentence already found clean is not scanned again (the
    sentences not yet known are told apart in one set difference). Sentences that hold none of
    the words anywhere (a substring search per word) are clean without a scan.
    """
    if "." in _joined(words):
        return _any_word(words).search(text.low) is not None
    clean = _clean_sentences(words)
    fresh = text.sentences.difference(clean)
    if not fresh:
        return False
    # a word that starts a word is in the text: the sentences none of the words is in at all are
    # clean without a regular expression (a substring search per word, in C)
    joined = "\x00".join(fresh)
    if any(map(joined.__contains__, _folded_words(words))):
        pattern = _any_word(words)
        for sentence in fresh:
            if pattern.search(sentence) is not None:
                return True
    if len(clean) > 65536:
        clean.clear()
    clean.update(fresh)
    return False


@functools.lru_cache(maxsize=256)
def _clean_sentences(words: tuple[str, ...]) -> set[str]:
    """The sentences (case-folded) found to hold none of ``words``."""
    return set()


@functools.lru_cache(maxsize=256)
def _folded_words(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple({w.casefold() for w in words})


@functools.lru_cache(maxsize=256)
def _joined(words: tuple[str, ...]) -> str:
    return "".join(w.casefold() for w in words)


@functools.lru_cache(maxsize=256)
def _any_word(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(w.casefold()) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + ")")


_SURFACES = {
    "sms": Surface.SMS,
    "phone script": Surface.VOICEMAIL,
    "voicemail": Surface.VOICEMAIL,
    "e-mail subject": Surface.EMAIL_SUBJECT,
    "portal notification": Surface.PORTAL_NOTIFICATION,
}


def _content_pack(jurisdiction: str) -> PolicyPack:
    try:
        return get_pack(jurisdiction)
    except ConfigurationError:
        return get_pack("default")


@functools.lru_cache(maxsize=1024)
def _squeezed(text: str) -> str:
    """``text`` with its white space runs made one space (a rights or glossary text, cached)."""
    return " ".join(text.split())


def check_rendering(
    *,
    template: str,
    purpose: OutreachPurpose,
    channel: Channel,
    language: str,
    context: MessageContext,
    text: str,
    subject: str | None = None,
    html: str | None = None,
    voicemail: str | None = None,
    max_sms_segments: int = 4,
    extra_clinical: Sequence[str] = (),
    descriptions: Sequence[str] = (),
    tone_exempt: Sequence[str] = (),
    words: str | None = None,
) -> tuple[str, ...]:
    """Run every check on one rendering.

    :param template: the template name (for the error).
    :param purpose: the outreach purpose.
    :param channel: the channel.
    :param language: the language rendered.
    :param context: the context rendered.
    :param text: the plain text.
    :param subject: the subject (e-mail) or headline.
    :param html: the HTML part.
    :param voicemail: the voicemail text (phone).
    :param max_sms_segments: the longest SMS allowed.
    :param extra_clinical: more clinical terms to refuse (a vendor's own; the syntax of
        :mod:`carecollect.messages.conditions`: a plain word is a word start).
    :param descriptions: statement-line descriptions that must not appear in
        restricted places.
    :param tone_exempt: quoted reference texts (rights, glossary) the tone
        check skips: they name legal steps to inform, not to threaten.
    :param words: what :func:`tone_words` gives for this rendering, when the caller already
        has it (the renderer puts it together from its skeletons); ``None``: made here.
    :returns: the names of the checks that passed.
    :raises MessageCheckFailed: naming the template and the rule.
    """
    passed: list[str] = []
    base = CLINICAL_WORDS.get(language, ()) + (CLINICAL_WORDS["en"] if language != "en" else ())
    clinical = clinical_matcher(language, tuple(extra_clinical), base=base)

    restricted: list[tuple[str, str]] = []
    if channel is Channel.SMS:
        restricted.append(("sms", text))
    if channel is Channel.PHONE:
        restricted.append(("phone script", text))
    if voicemail is not None:
        restricted.append(("voicemail", voicemail))
    if channel is Channel.EMAIL and subject is not None:
        restricted.append(("e-mail subject", subject))
    if channel is Channel.PORTAL and subject is not None:
        # the headline is what a portal push notification shows
        restricted.append(("portal notification", subject))
    for where, part in restricted:
        found: set[Sensitive] = set()
        hits = clinical.find(part)
        if hits:
            found.add(Sensitive.CLINICAL)
        if any(d and d.casefold() in part.casefold() for d in descriptions):
            found.add(Sensitive.PROCEDURE)
        if not found:
            continue
        # the pack's content rules are the data this check enforces (rule id and source in the error)
        verdict = check_content(
            _content_pack(context.jurisdiction), _SURFACES[where], on=context.today, sensitive=found
        )
        rule = verdict.denials[0].rule_id if not verdict.allowed else "minimum_necessary"
        what = f"clinical word {hits[0]!r}" if hits else "a statement-line description"
        raise MessageCheckFailed(template, "minimum_necessary", f"{what} in {where} ({rule})")
    if restricted:
        passed.append("minimum_necessary")

    if voicemail is not None:
        # the amount as any locale writes it (245.50, 1 250,00, 1,250.00): a voicemail names none
        amounts = _amounts_in(voicemail)
        if context.reference in voicemail or str(context.amount_due.minor_units) in amounts:
            raise MessageCheckFailed(
                template, "limited_content_voicemail", "the voicemail names the account or an amount"
            )
        passed.append("limited_content_voicemail")

    if channel in (Channel.EMAIL, Channel.PORTAL):
        url = context.opt_out_url
        if not url:
            raise MessageCheckFailed(
                template, "opt_out", "context.opt_out_url is required for e-mail and portal"
            )
        if url not in text or (html is not None and url not in html):
            raise MessageCheckFailed(template, "opt_out", "the opt-out link is missing from the message")
        passed.append("opt_out")
    if channel is Channel.SMS:
        if not re.search(r"(?<!\w)" + re.escape(context.opt_out_keyword) + r"(?!\w)", text):
            raise MessageCheckFailed(template, "opt_out", "the SMS lacks the opt-out keyword")
        passed.append("opt_out")
        encoding, segments = sms_segments(text)
        if segments > max_sms_segments:
            raise MessageCheckFailed(
                template,
                "sms_length",
                f"{segments} {encoding.value} segments; at most {max_sms_segments} allowed",
            )
        passed.append("sms_length")

    if words is None:
        words = tone_words(
            subject=subject, text=text, html=html, voicemail=voicemail, tone_exempt=tone_exempt
        )
    folded = _Folded(words, folded=True)  # once, for both word lists
    lang_shame = tuple(SHAMING_WORDS.get(language, ())) + tuple(
        SHAMING_WORDS["en"] if language != "en" else ()
    )
    hits = _words_in(folded, lang_shame)
    if hits:
        raise MessageCheckFailed(template, "tone", f"shaming word {hits[0]!r}")
    if purpose in FRIENDLY_PURPOSES:
        hits = _words_in(folded, tuple(THREAT_WORDS.get(language, THREAT_WORDS["en"])))
        if hits:
            raise MessageCheckFailed(template, "tone", f"threatening word {hits[0]!r} in a friendly step")
    passed.append("tone")
    return tuple(passed)
