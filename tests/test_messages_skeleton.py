"""Rendering from compiled skeletons gives the very text plain Jinja gives, and the same errors.

One compiled renderer lives across all examples, so a skeleton built from one message's values is
reused for messages with other values: that reuse is what must never change a byte.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.messages.catalog import LANGUAGES
from carecollect.messages.checks import MessageCheckFailed
from carecollect.messages.context import MessageContext, PlanOptionInfo, WayToPay
from carecollect.messages.examples import CURRENCY, JURISDICTION_OF, context
from carecollect.messages.render import Renderer
from carecollect.messages.statement import ShareKind, ShareReason, Statement, StatementLine
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose as P

COMPILED = Renderer()
PLAIN = Renderer(compiled=False)

_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ <>&\"'.,-_/Жщя€£ßæø😀 \u00a0\t\n{}[]é")),
    max_size=40,
)
NAMES = st.one_of(
    st.none(),
    st.sampled_from(["Kari", "Иван Петров", "O'Brien & <Sons>", "😀 Zoë", '"Ann"', "a" * 90, "Dr.", ""]),
    _TEXT,
)
COUNTS = st.sampled_from([0, 1, 2, 5, 21]) | st.integers(0, 200)
DATES = st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31))
URLS = st.none() | st.sampled_from(["https://pay.example.org/p/x?a=1&b=<2>", "https://x.example/é"])


def _outcome(renderer: Renderer, purpose: P, channel: Channel, lang: str, ctx: MessageContext) -> object:
    try:
        return renderer.render(purpose, channel, lang, ctx)
    except Exception as exc:  # the same error, with the same message, is the same outcome
        return (type(exc), str(exc))


def _variants(purpose: P, jurisdiction: str) -> list[MessageContext]:
    base = context(purpose, jurisdiction)
    return [
        base,
        attrs.evolve(base, recipient_name=None, pay_link=None, portal_url=None, assistance_url=None),
        attrs.evolve(base, payment_methods=(WayToPay.ONLINE,), fap_summary="FAP"),
        attrs.evolve(base, amount_due=Money.zero(base.amount_due.currency)),
    ]


@pytest.mark.parametrize("purpose", list(P), ids=lambda p: p.value)
def test_every_template_renders_the_same_bytes(purpose: P) -> None:
    jurisdictions = [JURISDICTION_OF[purpose]] if purpose in JURISDICTION_OF else ["us", "no", "de", "bg"]
    for jurisdiction in jurisdictions:
        for ctx in _variants(purpose, jurisdiction):
            for channel in Channel:
                for lang in LANGUAGES:
                    expected = _outcome(PLAIN, purpose, channel, lang, ctx)
                    assert _outcome(COMPILED, purpose, channel, lang, ctx) == expected
                    # the second rendering comes from the skeleton the first one built
                    assert _outcome(COMPILED, purpose, channel, lang, ctx) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    purpose=st.sampled_from(list(P)),
    channel=st.sampled_from(list(Channel)),
    lang=st.sampled_from(LANGUAGES),
    jurisdiction=st.sampled_from(["us", "no", "de", "bg"]),
    name=NAMES,
    creditor=_TEXT.filter(lambda s: s.strip()),
    agent=NAMES,
    cents=st.integers(0, 10**9),
    count=COUNTS,
    today=DATES,
    due=DATES,
    pay_link=URLS,
    portal=URLS,
)
def test_random_values_render_the_same_bytes(
    purpose: P,
    channel: Channel,
    lang: str,
    jurisdiction: str,
    name: str | None,
    creditor: str,
    agent: str | None,
    cents: int,
    count: int,
    today: dt.date,
    due: dt.date,
    pay_link: str | None,
    portal: str | None,
) -> None:
    jurisdiction = JURISDICTION_OF.get(purpose, jurisdiction)
    base = context(purpose, jurisdiction)
    cur = CURRENCY[jurisdiction]
    amount = Money(Decimal(cents) / 100, cur)
    ctx = attrs.evolve(
        base,
        recipient_name=name,
        creditor_name=creditor,
        agent_name=agent,
        amount_due=amount,
        today=today,
        due_date=due,
        deadline=due + dt.timedelta(days=count),
        pay_link=pay_link,
        portal_url=portal,
        plan_options=(PlanOptionInfo("A", amount, max(count, 1), amount, due),),
    )
    assert _outcome(COMPILED, purpose, channel, lang, ctx) == _outcome(PLAIN, purpose, channel, lang, ctx)


def test_skeletons_are_used_for_the_common_messages() -> None:
    renderer = Renderer()
    for name in ("Kari", "Иван", "<b>"):
        ctx = attrs.evolve(context(P.REMINDER, "no"), recipient_name=name)
        for channel in (Channel.SMS, Channel.EMAIL):
            renderer.render(P.REMINDER, channel, "nb", ctx)
    skeletons = [s for variants in renderer._skeletons.values() for s in variants]
    # the SMS, the subject and the HTML part at least are compiled, built once for three patients
    assert sum(not s.opaque for s in skeletons) >= 3
    assert len(skeletons) <= 4


def test_a_clinical_word_in_a_value_is_caught_as_before() -> None:
    ctx = attrs.evolve(context(P.REMINDER, "us"), creditor_name="Valley Oncology Center")
    for renderer in (PLAIN, COMPILED, COMPILED):
        with pytest.raises(MessageCheckFailed, match="clinical word 'oncology' in sms"):
            renderer.render(P.REMINDER, Channel.SMS, "en", ctx)
    # and a threatening word in a friendly step's value
    ctx = attrs.evolve(context(P.REMINDER, "us"), recipient_name="Court")
    outcomes = {repr(_outcome(r, P.REMINDER, Channel.EMAIL, "en", ctx)) for r in (PLAIN, COMPILED, COMPILED)}
    assert len(outcomes) == 1 and "threatening word 'court'" in outcomes.pop()


def test_a_template_that_inspects_a_value_renders_with_jinja(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder.txt").write_text(
        "{{ v.creditor|upper }} {{ '*' * (v.ref|length) }} {% if v.name == 'Kari' %}Hi Kari{% endif %}"
        " {{ t('optout.sms') }}"
    )
    compiled, plain = Renderer([tmp_path]), Renderer([tmp_path], compiled=False)
    for name in ("Kari", "Ola", None):
        ctx = attrs.evolve(context(P.REMINDER, "no"), recipient_name=name, reference=f"R-{name or 'x'}-1")
        for _ in range(2):
            assert compiled.render(P.REMINDER, Channel.SMS, "en", ctx) == plain.render(
                P.REMINDER, Channel.SMS, "en", ctx
            )
    assert all(s.opaque for variants in compiled._skeletons.values() for s in variants)


@given(st.lists(st.sampled_from([*".<>/pab: @\"'h", "</p>", "<b>", "://", "г."]), max_size=40).map("".join))
def test_the_full_stop_shortcut_changes_nothing(text: str) -> None:
    from carecollect.messages.render import _DOUBLE_STOP, _one_full_stop

    assert _one_full_stop(text) == _DOUBLE_STOP.sub(lambda m: m["keep"] or "." + m["tags"], text)


_GSM_SAMPLE = "aZ09 .,@£$¥èé\n_ΔÆß^{}\\[~]|€"


def _segments_by_walking(text: str) -> tuple[str, int]:
    """The segment count as the checks counted before: character by character."""
    from carecollect.messages.checks import _GSM_BASIC, _GSM_EXT, _packed

    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        return "gsm7", _packed([2 if c in _GSM_EXT else 1 for c in text], 160, 153)
    return "ucs2", _packed([len(c.encode("utf-16-le")) // 2 for c in text], 70, 67)


@given(
    st.lists(
        st.sampled_from([*_GSM_SAMPLE, "Ж", "😀", "x" * 50, "€" * 10, "щ" * 30]),
        max_size=40,
    ).map("".join)
)
def test_sms_segments_from_lengths_equal_the_walk(text: str) -> None:
    from carecollect.messages.checks import sms_segments

    encoding, segments = sms_segments(text)
    assert (encoding.value, segments) == _segments_by_walking(text)


@given(
    st.lists(
        st.sampled_from(["court", "Court", " ", ".", "a", "sue ", "sue", "legal", " action", "x.", "é", "-"]),
        max_size=30,
    ).map("".join),
    st.sampled_from([("court", "sue ", "legal action"), ("mri.", "court"), ("court",)]),
)
def test_sentence_by_sentence_scan_finds_what_one_scan_finds(text: str, words: tuple[str, ...]) -> None:
    import re

    from carecollect.messages.checks import find_words

    low = " " + text.casefold() + " "
    one_scan = [w for w in words if re.search(r"(?<![\w])" + re.escape(w.casefold()), low)]
    assert find_words(text, words) == one_scan


_CODES = st.sampled_from(["", "1", "2", "45", "96", "204", "N130", "M15", "ZZ9", "a&<b>"])


@st.composite
def _statements(draw: st.DrawFn, currency: str) -> Statement:
    def money() -> Money:
        return Money(Decimal(draw(st.integers(0, 10**7))) / 100, currency)

    reasons = st.lists(
        st.builds(ShareReason, kind=st.sampled_from(list(ShareKind)), amount=st.just(None), code=_CODES),
        max_size=3,
    )
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        lines.append(
            StatementLine(
                code=draw(st.sampled_from(["99213", "GOÄ 1", "2ad", "03.11", "<x>"])),
                description=draw(_TEXT.filter(lambda s: s.strip())),
                service_date=draw(DATES),
                charge=money(),
                insurer_paid=draw(st.sampled_from([Money.zero(currency), money()])),
                adjustment=draw(st.sampled_from([Money.zero(currency), money()])),
                patient_owes=draw(st.sampled_from([Money.zero(currency), money()])),
                reasons=tuple(attrs.evolve(r, amount=money()) for r in draw(reasons)),
                adjustment_codes=tuple(draw(st.lists(_CODES.filter(bool), max_size=2))),
                remarks=tuple(draw(st.lists(_CODES.filter(bool), max_size=2))),
            )
        )
    return Statement(
        invoice_id="INV-1",
        issue_date=dt.date(2026, 2, 1),
        due_date=dt.date(2026, 3, 1),
        lines=tuple(lines),
        payer_name=draw(st.sampled_from([None, "Acme Health Plan", "A & <B>"])),
        payments=draw(st.sampled_from([None, Money.zero(currency), money()])),
        claim_pending=draw(st.booleans()),
        default_notice_given=draw(st.booleans()),
        claim_denied=draw(st.booleans()),
        claim_reasons=tuple(attrs.evolve(r, amount=money()) for r in draw(reasons)),
        claim_remarks=tuple(draw(st.lists(_CODES.filter(bool), max_size=2))),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    channel=st.sampled_from([Channel.EMAIL, Channel.LETTER, Channel.PORTAL]),
    lang=st.sampled_from(LANGUAGES),
    jurisdiction=st.sampled_from(["us", "no", "de", "bg"]),
    reference=st.sampled_from(["INV-1", "INV-2026-0042", "R-Жщя-€", "A&<B>"]),
    address=st.lists(_TEXT, max_size=4),
)
def test_random_statements_render_the_same_bytes(
    data: st.DataObject, channel: Channel, lang: str, jurisdiction: str, reference: str, address: list[str]
) -> None:
    # the lines, codes, reasons and amounts of a statement are filled into a skeleton built from
    # another patient's statement: every byte must still be Jinja's
    statement = data.draw(_statements(CURRENCY[jurisdiction]))
    ctx = attrs.evolve(
        context(P.STATEMENT, jurisdiction),
        statement=statement,
        reference=reference,
        address=tuple(address),
        amount_due=statement.balance
        if statement.balance.is_positive()
        else Money.zero(CURRENCY[jurisdiction]),
    )
    expected = _outcome(PLAIN, P.STATEMENT, channel, lang, ctx)
    assert _outcome(COMPILED, P.STATEMENT, channel, lang, ctx) == expected
    assert _outcome(COMPILED, P.STATEMENT, channel, lang, ctx) == expected


def test_statements_of_the_same_shape_share_one_skeleton() -> None:
    renderer = Renderer()
    base = context(P.STATEMENT, "us")
    assert base.statement is not None
    for i in range(20):
        lines = tuple(
            attrs.evolve(
                ln, description=f"Visit {i}", charge=ln.charge + Money(i, "USD"), code=f"9921{i % 5}"
            )
            for ln in base.statement.lines
        )
        ctx = attrs.evolve(
            base,
            statement=attrs.evolve(base.statement, lines=lines),
            reference=f"INV-{i}",
            address=(f"Patient {i}", f"{i} Main Street"),
        )
        for channel in (Channel.EMAIL, Channel.LETTER):
            assert renderer.render(P.STATEMENT, channel, "en", ctx) == PLAIN.render(
                P.STATEMENT, channel, "en", ctx
            )
    skeletons = [s for variants in renderer._skeletons.values() for s in variants]
    # the letter (underlined subject, address lines), the e-mail's subject, text and HTML: one each
    assert len(skeletons) == 4
    assert not any(s.opaque for s in skeletons)


def _read_step_by_step(roots: dict[str, object], path: tuple[object, ...]) -> object:
    obj = roots[path[0]]  # type: ignore[index]
    for step in path[1:]:
        obj = obj[step] if type(step) is int else getattr(obj, step)  # type: ignore[index, call-overload]
    return obj


@given(
    st.lists(
        st.sampled_from(["a", "b", "items", "n"]) | st.integers(min_value=-3, max_value=3),
        min_size=0,
        max_size=6,
    )
)
def test_a_compiled_path_reads_what_a_step_by_step_read_gives(steps: list[object]) -> None:
    # skeletons read the context through compiled getters (attrgetter and itemgetter runs): the
    # same value, or the same kind of error, as reading the path one step at a time
    from types import SimpleNamespace

    from carecollect.messages.skeleton import _getter

    leaf = SimpleNamespace(a=1, n=None)
    middle = SimpleNamespace(
        a=leaf, b=[leaf, SimpleNamespace(a=2, b=(3, 4))], items=[[leaf], [], [leaf, leaf]]
    )
    roots: dict[str, object] = {"ctx": SimpleNamespace(a=middle, b=[middle, leaf], items=[middle], n=None)}
    path = ("ctx", *steps)
    try:
        expected: object = _read_step_by_step(roots, path)
    except Exception as exc:  # the kind of error is what is compared
        with pytest.raises(type(exc)):
            _getter(path)(roots)
    else:
        assert _getter(path)(roots) is expected
