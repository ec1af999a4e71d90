"""The words the tone check reads, put together from a message's skeletons, are the words of the
rendered text (:mod:`carecollect.messages.wordsview`).

Every rendering of a compiled renderer is watched: whenever it gives the check its words from
the skeletons, they must equal :func:`~carecollect.messages.checks.tone_words` of the text it
rendered. The watch also counts how often the skeletons gave them, so no test here passes by
never taking that way.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.messages.catalog import LANGUAGES
from carecollect.messages.checks import MessageCheckFailed, tone_words
from carecollect.messages.context import MessageContext
from carecollect.messages.examples import CURRENCY, JURISDICTION_OF, context
from carecollect.messages.render import Renderer, _one_full_stop
from carecollect.messages.skeleton import Skeleton
from carecollect.messages.wordsview import HTML, SUBJECT, TEXT, VALUE, words_view
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose as P

from .test_messages_skeleton import DATES, NAMES, URLS, _statements, _variants

RENDER = sys.modules["carecollect.messages.render"]


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every check the renderer runs compares the words it was given with the rendered text's."""
    seen: Counter[str] = Counter()
    check = RENDER.check_rendering

    def compare(**kw: Any) -> tuple[str, ...]:
        if kw["words"] is None:
            seen["from the text"] += 1
        else:
            expected = tone_words(
                subject=kw["subject"],
                text=kw["text"],
                html=kw["html"],
                voicemail=kw["voicemail"],
                tone_exempt=kw["tone_exempt"],
            )
            assert kw["words"] == expected
            seen["from the skeletons"] += 1
        return check(**kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(RENDER, "check_rendering", compare)
    return seen


def _render(renderer: Renderer, purpose: P, channel: Channel, lang: str, ctx: MessageContext) -> None:
    try:
        renderer.render(purpose, channel, lang, ctx)
    except MessageCheckFailed:
        pass  # a value with a word the check refuses: refused either way (the words were compared)
    except AssertionError:
        raise  # the watch found words unlike the rendered text's
    except Exception:  # a context the template cannot render: no words to compare
        pass


@pytest.mark.parametrize("purpose", list(P), ids=lambda p: p.value)
def test_every_template_reads_the_same_words(purpose: P, watched: Counter[str]) -> None:
    renderer = Renderer()
    jurisdictions = [JURISDICTION_OF[purpose]] if purpose in JURISDICTION_OF else ["us", "no", "de", "bg"]
    for jurisdiction in jurisdictions:
        for ctx in _variants(purpose, jurisdiction):
            for channel in (Channel.EMAIL, Channel.LETTER, Channel.PORTAL):
                for lang in LANGUAGES:
                    for _ in range(2):  # the second rendering reuses the first one's skeletons
                        _render(renderer, purpose, channel, lang, ctx)
    assert sum(watched.values()) > 0
    if purpose in _COMPILED_PURPOSES:  # not vacuous: the daily run's messages take the skeletons
        assert watched["from the skeletons"] > watched["from the text"]


#: purposes whose e-mails and letters render from skeletons (a few others' text templates are
#: opaque to the probes and render with Jinja: their words come from the text)
_COMPILED_PURPOSES = {P.STATEMENT, P.REMINDER, P.FINAL_NOTICE, P.PAYMENT_CONFIRMATION, P.INSTALMENT_REMINDER}


_WORDY = st.text(alphabet=st.sampled_from(list("abcXYZ Жщяß.,-&;<>#\u00a0\t\n😀é")), max_size=30)


@st.composite
def _messages(draw: st.DrawFn) -> tuple[P, Channel, str, MessageContext]:
    """A message to render: purpose, channel, language and a context of random values."""
    purpose = draw(st.sampled_from(list(P)))
    jurisdiction = JURISDICTION_OF.get(purpose, draw(st.sampled_from(["us", "no", "de", "bg"])))
    due = draw(DATES)
    ctx = attrs.evolve(
        context(purpose, jurisdiction),
        recipient_name=draw(NAMES | _WORDY),
        creditor_name=draw(_WORDY.filter(lambda s: s.strip())),
        amount_due=Money(Decimal(draw(st.integers(0, 10**9))) / 100, CURRENCY[jurisdiction]),
        today=draw(DATES),
        due_date=due,
        deadline=due + dt.timedelta(days=30),
        pay_link=draw(URLS),
    )
    channel = draw(st.sampled_from([Channel.EMAIL, Channel.LETTER, Channel.PORTAL]))
    return purpose, channel, draw(st.sampled_from(LANGUAGES)), ctx


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(message=_messages())
def test_random_values_read_the_same_words(
    watched: Counter[str], message: tuple[P, Channel, str, MessageContext]
) -> None:
    for _ in range(2):
        _render(_SHARED, *message)


#: one renderer across the random examples: a view built for one message's values serves the next
_SHARED = Renderer()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(), channel=st.sampled_from([Channel.EMAIL, Channel.LETTER]), lang=st.sampled_from(LANGUAGES)
)
def test_random_statements_read_the_same_words(
    watched: Counter[str], data: st.DataObject, channel: Channel, lang: str
) -> None:
    jurisdiction = data.draw(st.sampled_from(["us", "no", "de", "bg"]))
    statement = data.draw(_statements(CURRENCY[jurisdiction]))
    ctx = attrs.evolve(
        context(P.STATEMENT, jurisdiction),
        statement=statement,
        amount_due=statement.balance
        if statement.balance.is_positive()
        else Money.zero(CURRENCY[jurisdiction]),
    )
    for _ in range(2):
        _render(_SHARED, P.STATEMENT, channel, lang, ctx)


def test_plain_values_take_the_skeletons_and_others_the_text(watched: Counter[str]) -> None:
    renderer = Renderer()
    base = context(P.REMINDER, "us")
    for name in ("Kari Nordmann", "Zoë  O'Brien & Sons"):  # a run of spaces inside is plain
        renderer.render(P.REMINDER, Channel.EMAIL, "en", attrs.evolve(base, recipient_name=name))
    assert watched == Counter({"from the skeletons": 2})
    # not plain: a space at an end, a pair of full stops, a tag
    for name in (" Kari", "Kari..", "Kari <b>"):
        renderer.render(P.REMINDER, Channel.EMAIL, "en", attrs.evolve(base, recipient_name=name))
    assert watched["from the text"] == 3


def test_a_threat_in_a_value_is_found_from_the_skeletons(watched: Counter[str]) -> None:
    renderer = Renderer()
    base = context(P.REMINDER, "us")
    renderer.render(P.REMINDER, Channel.EMAIL, "en", base)
    with pytest.raises(MessageCheckFailed, match="threatening word 'court'"):
        renderer.render(P.REMINDER, Channel.EMAIL, "en", attrs.evolve(base, recipient_name="Court"))
    assert watched == Counter({"from the skeletons": 2})


# -- the view on skeletons made by hand: every kind of part, random fixed text and values --------

_FIXED = st.lists(
    st.sampled_from(
        [
            "Pay ",
            "by",
            " ",
            "  ",
            "\n",
            "\n\n\n",
            ".",
            "..",
            "<p>",
            "</p>",
            "<b>",
            "</b>",
            '<a href="',
            '">',
            "&amp;",
            "&",
            "&nbsp;",
            ";",
            "#",
            "x",
            "Court",
            "court",
            "\u00a0",
            "«quoted text»",
            "-",
        ]
    ),
    max_size=6,
).map("".join)
_VALUES = st.one_of(
    st.text(alphabet=st.sampled_from(list("ab.;&#>-Cé")), min_size=1, max_size=8),  # mostly plain
    st.text(alphabet=st.sampled_from(list("ab .;&#<>\u00a0\n-Cé")), max_size=8),
)
_EXEMPT = ("«quoted text»",)  # only ever in the fixed text, whole: no value can make part of one


@st.composite
def _skeleton_parts(draw: st.DrawFn, slots: int, html: bool) -> list[Any]:
    parts: list[Any] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["fixed", "slot", "escaped", "block", "repeat"]))
        if kind == "fixed":
            parts.append(draw(_FIXED.filter(bool)))
        elif kind == "slot":
            parts.append(draw(st.integers(0, slots - 1)))
        elif kind == "escaped" and html:
            parts.append((draw(st.integers(0, slots - 1)), True))
        elif kind in ("block", "repeat") and not html:
            inner = draw(st.lists(st.one_of(_FIXED.filter(bool), st.integers(0, slots - 1)), max_size=4))
            indent = draw(st.sampled_from(["", "  ", "- ", "*"])) if kind == "block" else ("repeat", "=")
            parts.append((inner, indent))
    return parts


def _wrap(text: str, indent: str) -> str:
    return RENDER.Renderer._wrap_block(text, indent)


@settings(max_examples=600, deadline=None)
@given(data=st.data(), letter=st.booleans())
def test_a_view_reads_what_the_rendered_parts_hold(data: st.DataObject, letter: bool) -> None:
    names = ("a", "b", "c")
    values = {n: data.draw(_VALUES) for n in names}
    text_skel = Skeleton(data.draw(_skeleton_parts(3, html=False)), {}, names)
    text = text_skel.fill(values, _wrap).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    text = _one_full_stop(text + "\n")
    if letter:  # a letter's subject: one value from the catalog
        subject = data.draw(_VALUES)
        sources: list[tuple[str, Any]] = [(SUBJECT, VALUE), (TEXT, text_skel)]
        vals = [[subject], text_skel.slot_values(values)]
        html = None
        subject = _one_full_stop(subject)
    else:  # an e-mail: subject, text and HTML part from skeletons
        subject_skel = Skeleton(data.draw(_skeleton_parts(3, html=False)), {}, names)
        # another shape's names in another order: its slot n is another value (never merged)
        html_names = names if data.draw(st.booleans()) else ("c", "a", "b")
        html_skel = Skeleton(data.draw(_skeleton_parts(3, html=True)), {}, html_names)
        subject = _one_full_stop(" ".join(subject_skel.fill(values, _wrap).split()))
        html = _one_full_stop(html_skel.fill(values, _wrap))
        sources = [(SUBJECT, subject_skel), (TEXT, text_skel), (HTML, html_skel)]
        vals = [s.slot_values(values) for s in (subject_skel, text_skel, html_skel)]
    view = words_view(sources, _EXEMPT, _wrap)
    words = None if view is None else view.words(vals, _wrap)
    event("no view" if view is None else "values not plain" if words is None else "words compared")
    if words is not None:
        assert words == tone_words(subject=subject, text=text, html=html, tone_exempt=_EXEMPT)


def test_the_hand_made_views_are_mostly_taken() -> None:
    """The random test above is not vacuous: plain values on fixed text without pairs of full
    stops give words (and the same as the rendered text's)."""
    names = ("a",)
    skel = Skeleton(
        ["Dear ", 0, ", please pay.\n\n", (["Your bill of ", 0, " is due soon."], "  ")], {}, names
    )
    view = words_view([(SUBJECT, VALUE), (TEXT, skel)], (), _wrap)
    assert view is not None
    for value in ("Kari", "Ola  Nordmann", "Ж\u00a0щ"):
        text = skel.fill({"a": value}, _wrap).strip() + "\n"
        expected = tone_words(subject="Bill", text=text)
        assert view.words([["Bill"], skel.slot_values({"a": value})], _wrap) == expected
    assert view.words([["Bill"], [" Kari"]], _wrap) is None
    # fixed text with a pair of full stops has no view
    assert words_view([(TEXT, Skeleton(["Wait.. ", 0], {}, names))], (), _wrap) is None
