"""The contact governor: scenario tests with concrete dates, and properties."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.disputes import Dispute, DisputeReason
from carecollect.outreach import AttemptOutcome, ContactAttempt, OutreachPurpose
from carecollect.patients import ConfidentialWish, ContactPoint, Patient, opt_out, request_cease_communication
from carecollect.policy.explain import Outcome
from carecollect.policy.governor import ContactHistory, Debt, may_contact, patient_zones, quiet_hours_ok
from carecollect.policy.packs import get_pack

EAST = ZoneInfo("America/New_York")
WEST = ZoneInfo("America/Los_Angeles")
OSLO = ZoneInfo("Europe/Oslo")
CONSENT = dt.datetime(2026, 1, 5, 9, tzinfo=EAST)
AGENCY = Creditor(id="C-AG", name="Agency", role=CreditorRole.THIRD_PARTY_COLLECTOR, country="US")
HOSPITAL = Creditor(id="C-H", name="Hospital", role=CreditorRole.PROVIDER, country="US")
US = get_pack("us")
DEBT = Debt("A-1", "INV-1")


def patient(
    zones: tuple[str, ...] = ("America/New_York",), phone_zone: str | None = None, **kw: object
) -> Patient:
    points = (
        ContactPoint(Channel.PHONE, "+12125550100", consent_at=CONSENT, time_zone=phone_zone),
        ContactPoint(Channel.SMS, "+12125550100", consent_at=CONSENT, verified_at=CONSENT),
        ContactPoint(Channel.EMAIL, "p@example.org", consent_at=CONSENT),
        ContactPoint(Channel.LETTER, "1 Main St"),
    )
    return Patient(id="P-1", time_zones=zones, contact_points=points, **kw)  # type: ignore[arg-type]


def call(
    i: int, at: dt.datetime, outcome: AttemptOutcome = AttemptOutcome.UNANSWERED, invoice: str = "INV-1"
) -> ContactAttempt:
    return ContactAttempt(
        id=f"CA-{i}",
        step_id=None,
        account_id="A-1",
        invoice_id=invoice,
        channel=Channel.PHONE,
        at=at,
        outcome=outcome,
    )


def rule_ids(decision: object, outcome: Outcome) -> set[str]:
    return {r.rule_id for r in decision.reasons if r.outcome is outcome}  # type: ignore[attr-defined]


# --- call caps (12 CFR 1006.14(b)(2)) -----------------------------------------------------------------


def test_eighth_call_in_seven_days_is_refused_until_the_first_leaves_the_window() -> None:
    # Seven unanswered calls Mon 2 March .. Sun 8 March 2026, one a day at 10:00 Eastern.
    calls = tuple(call(i, dt.datetime(2026, 3, 2 + i, 10, tzinfo=EAST)) for i in range(7))
    p = patient()
    d = may_contact(
        p, DEBT, Channel.PHONE, dt.datetime(2026, 3, 8, 15, tzinfo=EAST), ContactHistory(calls), US, AGENCY
    )
    assert not d.allowed
    assert "calls.max_per_7_days" in rule_ids(d, Outcome.DEFER)
    # The 2 March call leaves the window [3..9 March] on 9 March: 08:00 Eastern.
    assert d.earliest_allowed == dt.datetime(2026, 3, 9, 8, tzinfo=EAST)
    again = may_contact(p, DEBT, Channel.PHONE, d.earliest_allowed, ContactHistory(calls), US, AGENCY)
    assert again.allowed


def test_calls_that_never_connected_do_not_count_and_other_debts_do_not_count() -> None:
    calls = tuple(
        call(i, dt.datetime(2026, 3, 2 + i, 10, tzinfo=EAST), AttemptOutcome.NO_CONNECTION) for i in range(7)
    )
    other = tuple(
        call(10 + i, dt.datetime(2026, 3, 2 + i, 11, tzinfo=EAST), invoice="INV-2") for i in range(7)
    )
    d = may_contact(
        patient(),
        DEBT,
        Channel.PHONE,
        dt.datetime(2026, 3, 8, 15, tzinfo=EAST),
        ContactHistory(calls + other),
        US,
        AGENCY,
    )
    assert d.allowed


def test_call_one_day_after_a_conversation_is_refused_until_day_eight() -> None:
    talk = call(1, dt.datetime(2026, 3, 3, 14, tzinfo=EAST), AttemptOutcome.ANSWERED)
    d = may_contact(
        patient(),
        DEBT,
        Channel.PHONE,
        dt.datetime(2026, 3, 4, 10, tzinfo=EAST),
        ContactHistory((talk,)),
        US,
        AGENCY,
    )
    assert not d.allowed
    assert "calls.days_after_conversation" in rule_ids(d, Outcome.DEFER)
    # Day of conversation (3 March) is day 1; days 1-7 are 3..9 March; calls resume 10 March.
    assert d.earliest_allowed == dt.datetime(2026, 3, 10, 8, tzinfo=EAST)


def test_contact_centre_conversations_count_like_answered_calls() -> None:
    convs = (("A-1", "INV-1", dt.datetime(2026, 3, 3, 19, tzinfo=dt.UTC)),)
    d = may_contact(
        patient(),
        DEBT,
        Channel.PHONE,
        dt.datetime(2026, 3, 9, 20, tzinfo=EAST),
        ContactHistory.of((), iter(convs)),
        US,
        AGENCY,
    )
    assert not d.allowed and d.earliest_allowed == dt.datetime(2026, 3, 10, 8, tzinfo=EAST)


def test_provider_is_not_bound_by_reg_f_caps_unless_the_house_opts_in() -> None:
    calls = tuple(call(i, dt.datetime(2026, 3, 2 + i, 10, tzinfo=EAST)) for i in range(7))
    at = dt.datetime(2026, 3, 8, 15, tzinfo=EAST)
    assert may_contact(patient(), DEBT, Channel.PHONE, at, ContactHistory(calls), US, HOSPITAL).allowed
    house = US.with_house_rules({"calls.cap_for_all_creditors": True, "calls.max_per_7_days": 3})
    d = may_contact(patient(), DEBT, Channel.PHONE, at, ContactHistory(calls), house, HOSPITAL)
    assert not d.allowed
    assert "house rules" in next(r.source for r in d.reasons if r.rule_id == "calls.max_per_7_days")


# --- quiet hours (12 CFR 1006.6(b)(1)(i)) ---------------------------------------------------------------


def test_eastern_phone_pacific_address_at_1030_eastern() -> None:
    p = patient(zones=("America/Los_Angeles",), phone_zone="America/New_York")
    assert set(patient_zones(p)) == {"America/Los_Angeles", "America/New_York"}
    d = may_contact(
        p, DEBT, Channel.PHONE, dt.datetime(2026, 3, 2, 10, 30, tzinfo=EAST), ContactHistory(), US, AGENCY
    )
    assert not d.allowed
    assert "quiet_hours.start" in rule_ids(d, Outcome.DEFER)
    assert d.earliest_allowed == dt.datetime(2026, 3, 2, 11, 0, tzinfo=EAST)
    assert d.earliest_allowed.astimezone(WEST).time() == dt.time(8, 0)
    assert d.earliest_allowed.tzinfo is EAST


def test_after_nine_pm_eastern_waits_for_next_morning() -> None:
    p = patient(zones=("America/Los_Angeles",), phone_zone="America/New_York")
    d = may_contact(
        p, DEBT, Channel.SMS, dt.datetime(2026, 3, 2, 18, 30, tzinfo=WEST), ContactHistory(), US, AGENCY
    )
    assert not d.allowed
    assert d.earliest_allowed == dt.datetime(2026, 3, 3, 11, 0, tzinfo=EAST)


def test_spring_forward_us() -> None:
    # 8 March 2026: US clocks go 02:00 -> 03:00. At 07:30 EDT the earliest is 08:00 EDT, 30 minutes later.
    at = dt.datetime(2026, 3, 8, 7, 30, tzinfo=EAST)
    d = may_contact(patient(), DEBT, Channel.PHONE, at, ContactHistory(), US, AGENCY)
    assert d.earliest_allowed == dt.datetime(2026, 3, 8, 8, 0, tzinfo=EAST)
    assert (d.earliest_allowed - at) == dt.timedelta(minutes=30)
    # From 22:00 EST the day before: 10 hours of wall-clock time, but only 9 real hours (the lost hour).
    late = dt.datetime(2026, 3, 7, 22, 0, tzinfo=EAST)
    d2 = may_contact(patient(), DEBT, Channel.PHONE, late, ContactHistory(), US, AGENCY)
    assert d2.earliest_allowed is not None
    assert d2.earliest_allowed.astimezone(dt.UTC) - late.astimezone(dt.UTC) == dt.timedelta(hours=9)


def test_fall_back_europe_and_mixed_zones() -> None:
    # 25 Oct 2026: Europe leaves summer time (03:00 -> 02:00); the US only on 1 Nov.
    p = patient(zones=("Europe/Oslo", "America/New_York"))
    no = get_pack("no")
    at = dt.datetime(2026, 10, 25, 12, 0, tzinfo=OSLO)  # 07:00 in New York (EDT)
    d = may_contact(p, DEBT, Channel.EMAIL, at, ContactHistory(), no, AGENCY)
    assert not d.allowed
    # Needs 08:00 in New York (13:00 Oslo, CET now) and before 20:00 in Oslo.
    assert d.earliest_allowed == dt.datetime(2026, 10, 25, 13, 0, tzinfo=OSLO)


def test_zones_without_a_common_window_never_allowed() -> None:
    p = patient(zones=("Pacific/Auckland", "Europe/Oslo"))
    d = may_contact(
        p,
        DEBT,
        Channel.PHONE,
        dt.datetime(2026, 3, 2, 10, tzinfo=OSLO),
        ContactHistory(),
        get_pack("default"),
        AGENCY,
    )
    assert not d.allowed and d.earliest_allowed is None


def test_letters_ignore_quiet_hours_but_respect_caps() -> None:
    at = dt.datetime(2026, 3, 2, 23, 30, tzinfo=EAST)
    assert may_contact(patient(), DEBT, Channel.LETTER, at, ContactHistory(), US, AGENCY).allowed
    letters = tuple(
        ContactAttempt(
            id=f"L-{i}",
            step_id=None,
            account_id="A-1",
            invoice_id="INV-1",
            channel=Channel.LETTER,
            at=dt.datetime(2026, 3, 1, 9, tzinfo=EAST),
            outcome=AttemptOutcome.DELIVERED,
        )
        for i in range(3)
    )
    d = may_contact(patient(), DEBT, Channel.LETTER, at, ContactHistory(letters), US, AGENCY)
    assert not d.allowed and "letter.max_per_7_days" in rule_ids(d, Outcome.DEFER)
    assert d.earliest_allowed == dt.datetime(2026, 3, 8, 0, 0, tzinfo=EAST)


def test_pack_limits_for_email_and_text() -> None:
    def sent(i: int, channel: Channel, day: int) -> ContactAttempt:
        return ContactAttempt(
            id=f"M-{i}",
            step_id=None,
            account_id="A-1",
            invoice_id="INV-1",
            channel=channel,
            at=dt.datetime(2026, 3, day, 10, tzinfo=EAST),
            outcome=AttemptOutcome.DELIVERED,
        )

    at = dt.datetime(2026, 3, 6, 12, tzinfo=EAST)
    # US pack: 3 e-mails per debt in 7 days (2, 3 and 4 March); the fourth waits until 2 March leaves the window.
    mails = ContactHistory(tuple(sent(i, Channel.EMAIL, 2 + i) for i in range(3)))
    d = may_contact(patient(), DEBT, Channel.EMAIL, at, mails, US, HOSPITAL)
    assert not d.allowed and "email.max_per_7_days" in rule_ids(d, Outcome.DEFER)
    assert d.earliest_allowed == dt.datetime(
        2026, 3, 9, 8, tzinfo=EAST
    )  # 9 March, at the start of quiet hours
    # E-mails do not count against texts; 2 texts in the week stop the third.
    assert may_contact(patient(), DEBT, Channel.SMS, at, mails, US, HOSPITAL).allowed
    texts = ContactHistory(tuple(sent(i, Channel.SMS, 4 + i) for i in range(2)))
    d2 = may_contact(patient(), DEBT, Channel.SMS, at, texts, US, HOSPITAL)
    assert not d2.allowed and "sms.max_per_7_days" in rule_ids(d2, Outcome.DEFER)
    # A house that counts over 14 days waits longer.
    house = US.with_house_rules({"messages.window_days": 14})
    d3 = may_contact(patient(), DEBT, Channel.EMAIL, at, mails, house, HOSPITAL)
    assert d3.earliest_allowed == dt.datetime(2026, 3, 16, 8, tzinfo=EAST)


# --- wishes and freezes -----------------------------------------------------------------------------------


def test_opt_out_takes_effect_at_once_and_has_no_earliest() -> None:
    p, _ = opt_out(patient(), Channel.SMS, at=dt.datetime(2026, 3, 2, 10, 0, tzinfo=EAST))
    before = may_contact(
        p, DEBT, Channel.SMS, dt.datetime(2026, 3, 2, 9, 59, tzinfo=EAST), ContactHistory(), US, HOSPITAL
    )
    after = may_contact(
        p, DEBT, Channel.SMS, dt.datetime(2026, 3, 2, 10, 0, tzinfo=EAST), ContactHistory(), US, HOSPITAL
    )
    assert before.allowed
    assert not after.allowed and after.earliest_allowed is None
    assert may_contact(
        p, DEBT, Channel.EMAIL, dt.datetime(2026, 3, 2, 10, 1, tzinfo=EAST), ContactHistory(), US, HOSPITAL
    ).allowed


def test_collector_text_needs_consent_or_check_within_60_days() -> None:
    at = dt.datetime(2026, 3, 9, 10, tzinfo=EAST)  # 63 days after consent and check
    d = may_contact(patient(), DEBT, Channel.SMS, at, ContactHistory(), US, AGENCY)
    assert not d.allowed and "sms.consent_recheck_days" in rule_ids(d, Outcome.DENY)
    assert may_contact(patient(), DEBT, Channel.SMS, at, ContactHistory(), US, HOSPITAL).allowed


def test_cease_request_allows_only_the_notices_the_law_allows() -> None:
    p, _ = request_cease_communication(patient(), at=dt.datetime(2026, 3, 1, 9, tzinfo=EAST))
    at = dt.datetime(2026, 3, 2, 10, tzinfo=EAST)
    assert not may_contact(p, DEBT, Channel.PHONE, at, ContactHistory(), US, AGENCY).allowed
    assert not may_contact(
        p, DEBT, Channel.LETTER, at, ContactHistory(), US, AGENCY, OutreachPurpose.REMINDER
    ).allowed
    ok = may_contact(
        p, DEBT, Channel.LETTER, at, ContactHistory(), US, AGENCY, OutreachPurpose.PRE_PLACEMENT_NOTICE
    )
    assert ok.allowed and "cease.allowed_purposes" in rule_ids(ok, Outcome.ALLOW)


def test_confidential_wish_listed_channels_and_no_voicemail() -> None:
    p = patient(confidential=ConfidentialWish.ONLY_LISTED, confidential_channels=frozenset({Channel.EMAIL}))
    at = dt.datetime(2026, 3, 2, 10, tzinfo=EAST)
    d = may_contact(p, DEBT, Channel.LETTER, at, ContactHistory(), US, HOSPITAL)
    assert not d.allowed and "confidential.honour" in rule_ids(d, Outcome.DENY)
    assert may_contact(p, DEBT, Channel.EMAIL, at, ContactHistory(), US, HOSPITAL).allowed
    nv = patient(confidential=ConfidentialWish.NO_VOICEMAIL)
    d2 = may_contact(nv, DEBT, Channel.PHONE, at, ContactHistory(), US, HOSPITAL)
    assert d2.allowed and "confidential.honour" in rule_ids(d2, Outcome.CONDITION)


@pytest.mark.parametrize(
    ("debt", "rule"),
    [
        (
            Debt(
                "A-1",
                "INV-1",
                disputes=(
                    Dispute(
                        id="D-1",
                        account_id="A-1",
                        invoice_id=None,
                        reason=DisputeReason.BILLING_ERROR,
                        opened_at=CONSENT,
                    ),
                ),
            ),
            "dispute.freeze",
        ),
        (Debt("A-1", "INV-1", insurer_waiting=True), "insurer.pause"),
        (Debt("A-1", "INV-1", plan_current=True), "plan.pause_reminders"),
        (Debt("A-1", "INV-1", assistance_pending=True), "assistance.pause"),
    ],
)
def test_freezes_stop_collection_but_not_acknowledgements(debt: Debt, rule: str) -> None:
    at = dt.datetime(2026, 3, 2, 10, tzinfo=EAST)
    d = may_contact(
        patient(), debt, Channel.EMAIL, at, ContactHistory(), US, HOSPITAL, OutreachPurpose.REMINDER
    )
    assert not d.allowed and rule in rule_ids(d, Outcome.DENY) and d.earliest_allowed is None
    ack = may_contact(
        patient(),
        debt,
        Channel.EMAIL,
        at,
        ContactHistory(),
        US,
        HOSPITAL,
        OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT,
    )
    assert ack.allowed


def test_same_inputs_same_decision_and_records_replay() -> None:
    calls = tuple(call(i, dt.datetime(2026, 3, 2 + i, 10, tzinfo=EAST)) for i in range(7))
    args = (
        patient(),
        DEBT,
        Channel.PHONE,
        dt.datetime(2026, 3, 8, 15, tzinfo=EAST),
        ContactHistory(calls),
        US,
        AGENCY,
    )
    a, b = may_contact(*args), may_contact(*args)
    assert a == b and a.to_record() == b.to_record()
    assert "Patient" not in a.explain() and "+1212" not in a.explain()


# --- properties -------------------------------------------------------------------------------------------

ZONES = ["America/New_York", "America/Los_Angeles", "America/Chicago", "Europe/Oslo", "Europe/Berlin", "UTC"]
BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # around the US (8 Mar) and EU (29 Mar) DST changes
CHANNELS = [Channel.PHONE, Channel.EMAIL, Channel.SMS, Channel.LETTER]
CAP_RULE = {
    Channel.EMAIL: "email.max_per_7_days",
    Channel.SMS: "sms.max_per_7_days",
    Channel.LETTER: "letter.max_per_7_days",
}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Patient, dt.datetime, ContactHistory, str, Channel, Creditor]:
    zones = tuple(draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True)))
    phone_zone = draw(st.sampled_from([None, *ZONES]))
    at = BASE + dt.timedelta(minutes=draw(st.integers(0, 40 * 24 * 60)))
    offsets = draw(st.lists(st.integers(1, 12 * 24 * 60), max_size=12))
    outcomes = draw(
        st.lists(st.sampled_from(list(AttemptOutcome)), min_size=len(offsets), max_size=len(offsets))
    )
    channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=len(offsets), max_size=len(offsets)))
    attempts = tuple(
        ContactAttempt(
            id=f"H-{i}",
            step_id=None,
            account_id="A-1",
            invoice_id="INV-1",
            channel=ch,
            at=at - dt.timedelta(minutes=o),
            outcome=oc,
        )
        for i, (o, oc, ch) in enumerate(zip(offsets, outcomes, channels, strict=True))
    )
    p = Patient(
        id="P-9",
        time_zones=zones,
        contact_points=(
            ContactPoint(
                Channel.PHONE, "+15555550100", consent_at=BASE - dt.timedelta(days=1), time_zone=phone_zone
            ),
            ContactPoint(Channel.EMAIL, "x@example.org", consent_at=BASE - dt.timedelta(days=1)),
            ContactPoint(Channel.SMS, "+15555550100", consent_at=at - dt.timedelta(days=1)),
            ContactPoint(Channel.LETTER, "1 Main St"),
        ),
    )
    key = draw(st.sampled_from(["us", "default", "no", "de", "bg"]))
    channel = draw(st.sampled_from(CHANNELS))
    creditor = draw(st.sampled_from([AGENCY, HOSPITAL]))
    return p, at, ContactHistory(attempts), key, channel, creditor


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_no_allowed_contact_in_quiet_hours_or_beyond_a_cap_and_earliest_is_allowed(
    s: tuple[Patient, dt.datetime, ContactHistory, str, Channel, Creditor],
) -> None:
    p, at, history, key, channel, creditor = s
    pack = get_pack(key)
    d = may_contact(p, DEBT, channel, at, history, pack, creditor)
    on = dt.date(2026, 3, 1)
    start, end = pack.value("quiet_hours.start", on=on), pack.value("quiet_hours.end", on=on)
    if d.allowed:
        assert d.earliest_allowed == at
        if channel is not Channel.LETTER:
            assert quiet_hours_ok(at, patient_zones(p), start, end)
        if channel in CAP_RULE:
            tz = ZoneInfo(p.time_zones[0])
            today = at.astimezone(tz).date()
            window = pack.value("messages.window_days", on=on)
            sent = [
                a.at.astimezone(tz).date()
                for a in history.attempts
                if a.channel is channel
                and today - dt.timedelta(days=window - 1) <= a.at.astimezone(tz).date()
            ]
            assert len(sent) < pack.value(CAP_RULE[channel], on=on)
        if channel is Channel.PHONE and (
            creditor.role.is_collector or pack.value("calls.cap_for_all_creditors", on=on)
        ):
            tz = ZoneInfo(p.time_zones[0])
            today = at.astimezone(tz).date()
            days = [
                a.at.astimezone(tz).date()
                for a in history.attempts
                if a.channel is Channel.PHONE and a.counts_as_call
            ]
            in_window = [x for x in days if today - dt.timedelta(days=6) <= x <= today]
            assert len(in_window) < pack.value("calls.max_per_7_days", on=on)
            talks = [a.at.astimezone(tz).date() for a in history.attempts if a.is_conversation]  # any channel
            assert all((today - t).days >= 7 for t in talks)
    if d.earliest_allowed is not None:
        assert d.earliest_allowed >= at
        again = may_contact(p, DEBT, channel, d.earliest_allowed, history, pack, creditor)
        assert again.allowed, again.explain()
