"""A glossary of billing words and "know your rights" texts, in four languages.

Both are plain data, keyed by language (``en``, ``de``, ``nb``, ``bg``); the
statement and the formal notices include them. The rights texts summarise the
law of each jurisdiction in plain words and point to the full sources in
``docs/explanation``; they are not legal advice.

>>> glossary_entry("deductible", "de")[0]
'Selbstbehalt'
>>> len(rights_text("no", "bg")) >= 2
True
"""

from __future__ import annotations

from ..errors import ValidationError

__all__ = ["GLOSSARY", "RIGHTS", "TERMS", "glossary_entry", "rights_text"]

#: Glossary terms in display order.
TERMS = (
    "deductible",
    "coinsurance",
    "copay",
    "contractual_adjustment",
    "financial_assistance",
    "payment_plan",
    "estimate",
    "direct_debit",
    "dispute",
    "late_interest",
    "debt_collection",
)

#: term -> language -> (word, plain-language definition)
GLOSSARY: dict[str, dict[str, tuple[str, str]]] = {
    "deductible": {
        "en": ("Deductible", "The amount you pay yourself each year before your insurance starts to pay."),
        "de": (
            "Selbstbehalt",
            "Der Betrag, den Sie jedes Jahr selbst zahlen, bevor Ihre Versicherung zahlt.",
        ),
        "nb": ("Egenandel", "Beløpet du betaler selv hvert år før forsikringen begynner å betale."),
        "bg": (
            "Самоучастие",
            "Сумата, която плащате сами всяка година, преди застраховката да започне да плаща.",
        ),
    },
    "coinsurance": {
        "en": ("Coinsurance", "Your agreed percentage of a cost after the deductible, for example 20 %."),
        "de": (
            "Prozentuale Selbstbeteiligung",
            "Ihr vereinbarter Prozentanteil an den Kosten nach dem Selbstbehalt, zum Beispiel 20 %.",
        ),
        "nb": (
            "Prosentvis egenandel",
            "Din avtalte prosentdel av kostnaden etter egenandelen, for eksempel 20 %.",
        ),
        "bg": ("Съучастие", "Договореният Ви процент от разходите след самоучастието, например 20 %."),
    },
    "copay": {
        "en": ("Copay", "A fixed amount you pay for a visit or a prescription."),
        "de": ("Zuzahlung", "Ein fester Betrag, den Sie für einen Termin oder ein Rezept zahlen."),
        "nb": ("Fast egenandel", "Et fast beløp du betaler for en time eller en resept."),
        "bg": ("Доплащане", "Фиксирана сума, която плащате за посещение или рецепта."),
    },
    "contractual_adjustment": {
        "en": (
            "Contractual adjustment",
            "The part of a charge we may not bill under our contract with your insurer. You never pay it.",
        ),
        "de": (
            "Vertragliche Minderung",
            "Der Teil eines Betrags, den wir nach unserem Vertrag mit Ihrer Versicherung nicht berechnen dürfen. Sie zahlen ihn nie.",
        ),
        "nb": (
            "Avtalefestet fradrag",
            "Den delen av et beløp vi ikke kan kreve etter avtalen med forsikringen din. Du betaler den aldri.",
        ),
        "bg": (
            "Договорна отстъпка",
            "Частта от сумата, която не можем да искаме по договора ни с Вашия застраховател. Вие никога не я плащате.",
        ),
    },
    "financial_assistance": {
        "en": (
            "Financial assistance",
            "Free or reduced-cost care for people whose income is low or whose bills are high compared with their income.",
        ),
        "de": (
            "Finanzielle Unterstützung",
            "Kostenlose oder günstigere Versorgung für Menschen mit niedrigem Einkommen oder im Verhältnis dazu hohen Rechnungen.",
        ),
        "nb": (
            "Økonomisk hjelp",
            "Gratis eller rimeligere helsehjelp for personer med lav inntekt eller høye regninger sammenlignet med inntekten.",
        ),
        "bg": (
            "Финансова помощ",
            "Безплатна или по-евтина грижа за хора с ниски доходи или с високи сметки спрямо доходите им.",
        ),
    },
    "payment_plan": {
        "en": ("Payment plan", "An agreement to pay a bill in smaller parts over several months."),
        "de": (
            "Ratenzahlung",
            "Eine Vereinbarung, eine Rechnung in kleineren Beträgen über mehrere Monate zu zahlen.",
        ),
        "nb": ("Nedbetalingsplan", "En avtale om å betale en regning i mindre deler over flere måneder."),
        "bg": (
            "Разсрочено плащане",
            "Споразумение да платите сметка на по-малки части в продължение на няколко месеца.",
        ),
    },
    "estimate": {
        "en": ("Cost estimate", "What we expect a service to cost, given to you before it takes place."),
        "de": ("Kostenvoranschlag", "Was eine Leistung voraussichtlich kostet, vor der Leistung mitgeteilt."),
        "nb": ("Kostnadsoverslag", "Hva vi regner med at en tjeneste vil koste, gitt deg på forhånd."),
        "bg": ("Предварителна оценка", "Колко очакваме да струва дадена услуга, съобщено Ви предварително."),
    },
    "direct_debit": {
        "en": (
            "Direct debit",
            "You allow us to collect each payment from your bank account on the due date.",
        ),
        "de": (
            "Lastschrift",
            "Sie erlauben uns, jede Zahlung am Fälligkeitstag von Ihrem Konto einzuziehen.",
        ),
        "nb": ("AvtaleGiro", "Du gir oss lov til å trekke hver betaling fra kontoen din på forfallsdagen."),
        "bg": (
            "Директен дебит",
            "Разрешавате ни да събираме всяко плащане от банковата Ви сметка на датата на падежа.",
        ),
    },
    "dispute": {
        "en": (
            "Dispute",
            "Telling us that you think a bill or part of it is wrong. We check it before asking you to pay.",
        ),
        "de": (
            "Beanstandung",
            "Sie teilen uns mit, dass eine Rechnung oder ein Teil davon Ihrer Meinung nach falsch ist. Wir prüfen, bevor wir Zahlung verlangen.",
        ),
        "nb": (
            "Innsigelse",
            "Du sier fra at du mener en regning eller en del av den er feil. Vi undersøker før vi ber deg betale.",
        ),
        "bg": (
            "Възражение",
            "Казвате ни, че смятате сметката или част от нея за погрешна. Проверяваме, преди да искаме плащане.",
        ),
    },
    "late_interest": {
        "en": ("Late interest", "Interest the law allows on an amount paid after it was due."),
        "de": ("Verzugszinsen", "Zinsen, die das Gesetz für einen verspätet gezahlten Betrag erlaubt."),
        "nb": ("Forsinkelsesrente", "Renter loven tillater på et beløp som betales etter forfall."),
        "bg": ("Лихва за забава", "Лихва, която законът позволява върху сума, платена след падежа."),
    },
    "debt_collection": {
        "en": (
            "Debt collection",
            "When an unpaid bill is handed to an agency that collects it. The law limits what it may do and charge.",
        ),
        "de": (
            "Inkasso",
            "Wenn eine unbezahlte Rechnung an ein Unternehmen übergeben wird, das sie einzieht. Das Gesetz begrenzt, was es tun und berechnen darf.",
        ),
        "nb": (
            "Inkasso",
            "Når en ubetalt regning overlates til et selskap som krever den inn. Loven begrenser hva det kan gjøre og kreve.",
        ),
        "bg": (
            "Събиране на вземания",
            "Когато неплатена сметка се предаде на агенция, която я събира. Законът ограничава какво може да прави и да начислява.",
        ),
    },
}

#: jurisdiction -> language -> paragraphs
RIGHTS: dict[str, dict[str, tuple[str, ...]]] = {
    "us": {
        "en": (
            "You can ask for an itemised bill and for a payment plan at any time.",
            "If you are uninsured or pay yourself, you have the right to a good-faith estimate before care; if the bill is $400 or more above it, you may start a dispute within 120 days of the bill.",
            "A debt collector must tell you how to dispute the debt; while a written dispute within the validation period is open, collection stops. You can ask us to stop e-mails and texts at any time.",
            "Nonprofit hospitals must offer financial assistance and give you time to apply before serious collection steps.",
        ),
        "de": (
            "Sie können jederzeit eine aufgeschlüsselte Rechnung und eine Ratenzahlung verlangen.",
            "Wenn Sie nicht versichert sind oder selbst zahlen, haben Sie vor der Behandlung Anspruch auf einen Kostenvoranschlag nach Treu und Glauben; liegt die Rechnung 400 $ oder mehr darüber, können Sie innerhalb von 120 Tagen nach der Rechnung ein Streitbeilegungsverfahren beginnen.",
            "Ein Inkassounternehmen muss Ihnen sagen, wie Sie die Forderung bestreiten; solange ein schriftlicher Widerspruch innerhalb der Prüffrist offen ist, ruht der Einzug. Sie können E-Mails und SMS jederzeit abbestellen.",
            "Gemeinnützige Krankenhäuser müssen finanzielle Unterstützung anbieten und Ihnen Zeit für einen Antrag geben, bevor sie einschneidende Schritte unternehmen.",
        ),
        "nb": (
            "Du kan når som helst be om en spesifisert regning og om en nedbetalingsplan.",
            "Hvis du er uforsikret eller betaler selv, har du rett på et kostnadsoverslag i god tro før behandlingen; blir regningen 400 dollar eller mer høyere, kan du starte en tvisteløsning innen 120 dager etter regningen.",
            "Et inkassoselskap må fortelle deg hvordan du bestrider kravet; mens en skriftlig innsigelse innen fristen er åpen, stanser innkrevingen. Du kan når som helst be oss slutte å sende e-post og SMS.",
            "Ideelle sykehus må tilby økonomisk hjelp og gi deg tid til å søke før alvorlige innkrevingsskritt.",
        ),
        "bg": (
            "Можете по всяко време да поискате подробна сметка и разсрочено плащане.",
            "Ако нямате застраховка или плащате сами, имате право на добросъвестна предварителна оценка преди лечението; ако сметката е с 400 $ или повече над нея, можете да започнете процедура по оспорване до 120 дни след сметката.",
            "Агенцията за събиране трябва да Ви каже как да оспорите задължението; докато писмено възражение в срока е висящо, събирането спира. Можете по всяко време да ни помолите да спрем имейлите и SMS съобщенията.",
            "Болниците с нестопанска цел трябва да предлагат финансова помощ и да Ви дадат време да кандидатствате преди сериозни действия по събиране.",
        ),
    },
    "no": {
        "en": (
            "A debt collection warning must give you at least 14 days to pay before the claim goes to collection.",
            "A demand for payment must state the principal, the fees, the interest rate and the date interest runs from, and give you at least 14 days to pay or object.",
            "Reminder and collection fees are capped by regulation. You can always object to a claim; tell us why, and we check it.",
        ),
        "de": (
            "Eine Inkassowarnung muss Ihnen mindestens 14 Tage zum Zahlen geben, bevor die Forderung ins Inkasso geht.",
            "Eine Zahlungsaufforderung muss Hauptforderung, Gebühren, Zinssatz und Zinsbeginn nennen und Ihnen mindestens 14 Tage zum Zahlen oder Widersprechen geben.",
            "Mahn- und Inkassogebühren sind durch Verordnung begrenzt. Sie können einer Forderung jederzeit widersprechen; sagen Sie uns, warum, und wir prüfen sie.",
        ),
        "nb": (
            "Et inkassovarsel må gi deg minst 14 dager til å betale før kravet går til inkasso.",
            "En betalingsoppfordring må oppgi hovedstol, gebyrer, rentesats og datoen renten løper fra, og gi deg minst 14 dager til å betale eller komme med innsigelse.",
            "Purregebyr og inkassosalær er begrenset i forskrift. Du kan alltid komme med innsigelse mot et krav; si hvorfor, så undersøker vi det.",
        ),
        "bg": (
            "Предупреждението за събиране трябва да Ви даде поне 14 дни да платите, преди вземането да бъде предадено за събиране.",
            "Поканата за плащане трябва да посочва главницата, таксите, лихвения процент и датата, от която тече лихвата, и да Ви дава поне 14 дни да платите или да възразите.",
            "Таксите за напомняне и събиране са ограничени с наредба. Винаги можете да възразите срещу вземане; кажете ни защо и ние ще го проверим.",
        ),
    },
    "de": {
        "en": (
            "A doctor's fee is due only once you have received a proper invoice that lists each service with its date, fee number and amount.",
            "You are in default only after a reminder, or 30 days after the due date and receipt of the invoice if the invoice told you so. The reminder that puts you in default is free; later reminders may cost only the actual expense.",
            "Your bill may be passed to a billing service or collection agency only with your consent. Claims become time-barred after three years, counted from the end of the year they arose.",
        ),
        "de": (
            "Ein ärztliches Honorar wird erst fällig, wenn Sie eine ordnungsgemäße Rechnung erhalten haben, die jede Leistung mit Datum, Gebührennummer und Betrag nennt.",
            "In Verzug kommen Sie erst nach einer Mahnung oder 30 Tage nach Fälligkeit und Zugang der Rechnung, wenn die Rechnung darauf hingewiesen hat. Die Mahnung, die den Verzug begründet, ist kostenfrei; weitere Mahnungen dürfen nur die tatsächlichen Kosten verursachen.",
            "Ihre Rechnung darf nur mit Ihrer Einwilligung an eine Abrechnungsstelle oder ein Inkassounternehmen gegeben werden. Forderungen verjähren nach drei Jahren, gerechnet ab dem Ende des Jahres, in dem sie entstanden sind.",
        ),
        "nb": (
            "Et legehonorar forfaller først når du har fått en korrekt faktura som viser hver tjeneste med dato, takstnummer og beløp.",
            "Du kommer i mislighold først etter en påminnelse, eller 30 dager etter forfall og mottak av fakturaen hvis fakturaen sa det. Påminnelsen som setter deg i mislighold, er gratis; senere påminnelser kan bare koste de faktiske utgiftene.",
            "Regningen din kan bare gis til et faktureringsselskap eller inkassoselskap med ditt samtykke. Krav foreldes etter tre år, regnet fra slutten av året de oppsto.",
        ),
        "bg": (
            "Лекарският хонорар става дължим едва след като получите редовна фактура, в която всяка услуга е посочена с дата, номер по тарифата и сума.",
            "Изпадате в забава едва след напомняне или 30 дни след падежа и получаването на фактурата, ако фактурата Ви е предупредила за това. Напомнянето, с което изпадате в забава, е безплатно; следващите напомняния могат да струват само действителните разходи.",
            "Сметката Ви може да бъде предадена на фирма за фактуриране или агенция за събиране само с Ваше съгласие. Вземанията се погасяват по давност след три години, считано от края на годината, в която са възникнали.",
        ),
    },
    "bg": {
        "en": (
            "You have the right to a clear, itemised bill and to ask what every charge is for.",
            "Late interest is limited by law. Data about your payments for care is health data: we share only what is necessary, and you may ask what we hold about you.",
            "You can object to a claim and ask for a payment plan at any time.",
        ),
        "de": (
            "Sie haben Anspruch auf eine klare, aufgeschlüsselte Rechnung und dürfen fragen, wofür jede Position steht.",
            "Verzugszinsen sind gesetzlich begrenzt. Daten über Ihre Zahlungen für Gesundheitsleistungen sind Gesundheitsdaten: Wir geben nur weiter, was nötig ist, und Sie können fragen, welche Daten wir über Sie speichern.",
            "Sie können einer Forderung jederzeit widersprechen und um eine Ratenzahlung bitten.",
        ),
        "nb": (
            "Du har rett på en tydelig, spesifisert regning og kan spørre hva hver post gjelder.",
            "Forsinkelsesrenten er begrenset i loven. Opplysninger om betalingene dine for helsehjelp er helseopplysninger: vi deler bare det som er nødvendig, og du kan spørre hva vi har lagret om deg.",
            "Du kan når som helst komme med innsigelse mot et krav og be om en nedbetalingsplan.",
        ),
        "bg": (
            "Имате право на ясна и подробна сметка и можете да попитате за какво е всяка позиция.",
            "Лихвата за забава е ограничена от закона. Данните за плащанията Ви за медицински грижи са здравни данни: споделяме само необходимото и можете да попитате какви данни пазим за Вас.",
            "Можете по всяко време да възразите срещу вземане и да поискате разсрочено плащане.",
        ),
    },
}


def glossary_entry(term: str, language: str) -> tuple[str, str]:
    """The word and its definition for ``term`` in ``language`` (English fallback).

    :param term: one of :data:`TERMS`.
    :param language: a language code.
    :returns: ``(word, definition)``.
    :raises ValidationError: for an unknown term.
    """
    if term not in GLOSSARY:
        raise ValidationError("Glossary", "term", f"{term!r} is not one of {', '.join(TERMS)}")
    entry = GLOSSARY[term]
    return entry.get(language, entry["en"])


def rights_text(jurisdiction: str, language: str) -> tuple[str, ...]:
    """The "know your rights" paragraphs for ``jurisdiction`` in ``language`` (English fallback).

    :param jurisdiction: ``"us"``, ``"no"``, ``"de"`` or ``"bg"``.
    :param language: a language code.
    :returns: the paragraphs.
    :raises ValidationError: for an unknown jurisdiction.
    """
    if jurisdiction not in RIGHTS:
        raise ValidationError("Rights", "jurisdiction", f"{jurisdiction!r} is not one of {', '.join(RIGHTS)}")
    entry = RIGHTS[jurisdiction]
    return entry.get(language, entry["en"])
