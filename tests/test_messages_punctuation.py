"""Every built-in message, in every language, channel and variant, is free of doubled punctuation.

Bulgarian long dates end in "г." and currency abbreviations in a full stop
("щ.д."); templates that end a sentence with either printed "г.." in hundreds
of the demo's messages. This renders every purpose × channel × language ×
variant (each jurisdiction's sample context of
:mod:`carecollect.messages.examples`, and the variations the templates branch
on: dispute outcomes, direct debit or not, paid in full, no pay link, no
portal, notices without fees or interest) and looks for punctuation no
typesetter would leave: two full stops, a doubled comma, semicolon or colon,
a space before a mark, a full stop after a question or exclamation mark, and
a comma or colon after a full stop that closes an ordinary word. A full stop
that closes an abbreviation ("г.", "щ.д.", "Dr.") may be followed by a comma,
colon or semicolon, as in print; ellipses, URLs and e-mail addresses are left
out of the check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.messages.catalog import LANGUAGES
from carecollect.messages.checks import MessageCheckFailed
from carecollect.messages.context import DisputeOutcome, MessageContext
from carecollect.messages.examples import CURRENCY, context
from carecollect.messages.render import render
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose

_URL = re.compile(r"[^\s<>\"']+://[^\s<>\"']+|[^\s<>\"'()]+@[^\s<>\"'()]+")
#: Marks that must not follow each other (or a space); ellipses excepted.
_DOUBLED = re.compile(
    r"(?<!\.)\.\.(?!\.)"  # two full stops
    r"|,,|;;|::"  # a doubled comma, semicolon, colon
    r"|[,;:][.,;:]"  # a comma, semicolon or colon followed by another mark
    r"|[?!][.,;:]"  # a full stop (or comma...) after a question or exclamation mark
    r"|[ \t][.,;:!?](?![.\w])"  # a space before a mark (not before ".5" or an ellipsis)
)
#: A full stop followed by a comma, colon or semicolon: fine after an abbreviation only.
_STOP_THEN_MARK = re.compile(r"(?P<word>[^\s.]+(?:\.[^\s.]+)*)\.[,;:]")


def _abbreviation(word: str) -> bool:
    """ "г", "щ.д", "Dr", "z.B", "Nr": short, or dotted inside."""
    return len(word) <= 3 or "." in word


def doubled_punctuation(text: str) -> list[str]:
    """The places in ``text`` where punctuation is doubled (with a little context)."""
    clean = _URL.sub("URL", text)
    found = [clean[max(0, m.start() - 20) : m.end() + 5] for m in _DOUBLED.finditer(clean)]
    found += [
        clean[max(0, m.start() - 20) : m.end() + 5]
        for m in _STOP_THEN_MARK.finditer(clean)
        if not _abbreviation(m["word"])
    ]
    return found


def test_the_detector_finds_what_it_should() -> None:
    assert doubled_punctuation("Падежът е 22 март 2026 г.. Благодарим")
    assert doubled_punctuation("Please pay,, thank you")
    assert doubled_punctuation("Can you pay?. Thanks")
    assert doubled_punctuation("Pay now . Thanks")
    assert doubled_punctuation("Paid in full.: thanks")
    assert not doubled_punctuation("до 3 април 2026 г., да платите; 245,50 щ.д.; първата вноска")
    assert not doubled_punctuation("Wait... see https://pay.example.org/p/INV.1..2 or a..b@example.org.")
    assert not doubled_punctuation("Kontakt: Dr. Weber, z.B. per E-Mail. Betrag: 1.234,50 €.")


_DISPUTE = {
    OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT,
    OutreachPurpose.DISPUTE_RESOLUTION,
    OutreachPurpose.FOLLOW_UP_CALL,
}


def _variants(purpose: OutreachPurpose, ctx: MessageContext) -> Iterator[tuple[str, MessageContext]]:
    """The sample context and the variations the templates branch on (for the purposes that show them)."""
    yield "sample", ctx
    if purpose in _DISPUTE and ctx.dispute is not None:
        for outcome in DisputeOutcome:
            yield (
                f"dispute {outcome.value}",
                attrs.evolve(
                    ctx, dispute=attrs.evolve(ctx.dispute, outcome=outcome, new_amount=ctx.amount_due)
                ),
            )
        yield (
            "no corrective action",
            attrs.evolve(ctx, dispute=attrs.evolve(ctx.dispute, corrective_action=None)),
        )
    if purpose is OutreachPurpose.INSTALMENT_REMINDER and ctx.instalment is not None:
        yield (
            "no direct debit",
            attrs.evolve(ctx, instalment=attrs.evolve(ctx.instalment, direct_debit=False)),
        )
    if purpose is OutreachPurpose.PAYMENT_CONFIRMATION and ctx.payment is not None:
        yield (
            "paid in full",
            attrs.evolve(
                ctx, payment=attrs.evolve(ctx.payment, remaining=Money.zero(ctx.amount_due.currency))
            ),
        )
    yield "no pay link, no portal", attrs.evolve(ctx, pay_link=None, portal_url=None)
    if ctx.notice is not None:
        yield (
            "notice without fees or interest",
            attrs.evolve(
                ctx, notice=attrs.evolve(ctx.notice, fees=(), interest_rate=None, interest_from=None)
            ),
        )


def _renderings() -> Iterator[tuple[str, str]]:
    for purpose in OutreachPurpose:
        for jurisdiction in CURRENCY:
            for variant, ctx in _variants(purpose, context(purpose, jurisdiction)):
                for lang in LANGUAGES:
                    for channel in Channel:
                        where = f"{purpose.value}/{channel.value}/{lang} in {jurisdiction}, {variant}"
                        try:
                            message = render(purpose, channel, lang, ctx)
                        except MessageCheckFailed as refused:
                            # a formal notice too long for four SMS segments is refused by design
                            assert "sms_length" in str(refused) and channel is Channel.SMS, where
                            continue
                        for part, text in (
                            ("text", message.text),
                            ("subject", message.subject),
                            ("voicemail", message.voicemail),
                            ("html", message.html),
                        ):
                            if text:
                                yield f"{where} ({part})", text


def test_no_message_has_doubled_punctuation() -> None:
    found: dict[str, list[str]] = {}
    count = 0
    for where, text in _renderings():
        count += 1
        if hits := doubled_punctuation(re.sub(r"<[^>]+>", "", text) if "(html)" in where else text):
            found[where] = hits
    assert count > 3000  # purposes × jurisdictions × variants × languages × channels × parts
    assert not found, f"{len(found)} renderings, e.g. " + "; ".join(
        f"{k}: {v[:2]}" for k, v in list(found.items())[:8]
    )


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.LETTER, Channel.EMAIL, Channel.PHONE])
def test_a_bulgarian_date_at_the_end_of_a_sentence_keeps_one_full_stop(channel: Channel) -> None:
    ctx = context(OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT, "bg")
    message = render(OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT, channel, "bg", ctx)
    assert "31 март 2026" in message.text.replace("\u202f", " ").replace("\xa0", " ")
    assert "г.." not in message.text and "г.\u202f." not in message.text


@given(
    st.lists(
        st.sampled_from([".", "a", "<b>", "</b>", "<", "x.", ".<i>", " ", "г.", "https://x.example/a..b"]),
        max_size=16,
    )
)
def test_the_quick_search_for_a_pair_of_stops_finds_what_the_substitution_looks_for(
    pieces: list[str],
) -> None:
    # _one_full_stop skips the substitution where _STOP_PAIR finds nothing: it must find every
    # pair the substitution's second alternative finds (written with its look-behind first)
    from carecollect.messages.render import _STOP_PAIR

    text = "".join(pieces)
    plain = re.compile(r"(?<!\.)\.(?:</?[a-z]+>)*\.(?!\.)").search(text)
    quick = _STOP_PAIR.search(text)
    assert (plain and plain.span()) == (quick and quick.span())
