"""Outreach rules of the built-in packs: every number sourced, house rules only tighten, packs without plugins."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from carecollect.errors import ConfigurationError, PolicyViolation
from carecollect.policy.content import Sensitive, Surface, VoicemailField, check_content
from carecollect.policy.explain import Outcome, Reason
from carecollect.policy.outreach_rules import OUTREACH_RULES as RULES
from carecollect.policy.packs import get_pack, pack_registry
from carecollect.policy.relief_rules import RELIEF_RULES
from carecollect.policy.rules import Rule, Strictness

ON = dt.date(2026, 3, 2)


@pytest.mark.parametrize("key", ["default", "us", "no", "de", "bg"])
def test_every_outreach_rule_is_sourced_dated_and_explained(key: str) -> None:
    assert RULES[key]
    for rule in RULES[key]:
        assert isinstance(rule, Rule)
        assert rule.source.strip() and rule.note.strip(), rule.id
        assert isinstance(rule.strictness, Strictness)
        assert rule.effective_from <= ON
    ids = [r.id for r in RULES[key]]
    assert len(ids) == len(set(ids)), "one version per id in the built-in data"


@pytest.mark.parametrize("key", ["default", "us", "no", "de", "bg"])
def test_every_pack_has_what_governor_and_cadence_read(key: str) -> None:
    pack = get_pack(key)
    for rule_id in (
        "quiet_hours.start",
        "quiet_hours.end",
        "calls.max_per_7_days",
        "dispute.freeze",
        "cease.allowed_purposes",
        "content.forbidden.sms",
        "cadence.min_days_between_messages",
    ):
        pack.value(rule_id, on=ON)


def test_us_numbers_match_the_sources() -> None:
    us = get_pack("us")
    assert us.value("quiet_hours.start", on=ON) == dt.time(8)
    assert us.value("quiet_hours.end", on=ON) == dt.time(21)
    assert us.value("calls.max_per_7_days", on=ON) == 7
    assert us.value("calls.days_after_conversation", on=ON) == 7
    assert us.value("calls.cap_for_all_creditors", on=ON) is False  # Reg F binds collectors (1006.2(i))
    assert us.value("us.validation_period_days", on=ON) == 30
    assert us.value("sms.consent_recheck_days", on=ON) == 60
    assert us.rule("us.opt_out.legal_ceiling_business_days", on=ON).effective_from == dt.date(2025, 4, 11)


def test_default_pack_is_at_least_as_patient_friendly_as_the_us_law() -> None:
    us, default = get_pack("us"), get_pack("default")
    assert default.value("quiet_hours.start", on=ON) >= us.value("quiet_hours.start", on=ON)
    assert default.value("quiet_hours.end", on=ON) <= us.value("quiet_hours.end", on=ON)
    assert default.value("calls.max_per_7_days", on=ON) <= us.value("calls.max_per_7_days", on=ON)
    assert default.value("calls.cap_for_all_creditors", on=ON) is True


def test_unverified_rules_are_flagged_and_shown_in_reasons() -> None:
    no = get_pack("no")
    assert not no.rule("quiet_hours.start", on=ON).verified
    assert all(r.verified for r in RULES["us"])


@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        ("us", {"quiet_hours.start": dt.time(7)}),
        ("us", {"quiet_hours.end": dt.time(22)}),
        ("us", {"calls.max_per_7_days": 8}),
        ("us", {"calls.days_after_conversation": 6}),
        ("default", {"calls.cap_for_all_creditors": False}),
        ("no", {"no.betalingsoppfordring.deadline_days": 10}),
        ("us", {"dispute.freeze": False}),
        ("us", {"opt_out.delay_days": 10}),
        ("de", {"de.default_notice.days_after_due": 20}),
    ],
)
def test_house_rules_cannot_loosen(key: str, overrides: dict[str, object]) -> None:
    with pytest.raises(PolicyViolation):
        get_pack(key).with_house_rules(overrides)


def test_house_rules_tighten() -> None:
    house = get_pack("us").with_house_rules(
        {"quiet_hours.start": dt.time(9), "sms.allowed": False, "cadence.min_days_between_messages": 10},
        source="St. Example house policy",
    )
    assert house.value("quiet_hours.start", on=ON) == dt.time(9)
    assert house.rule("sms.allowed", on=ON).source.startswith("St. Example house policy")


def test_packs_without_plugins() -> None:
    colorado = attrs.evolve(get_pack("us"), key="us-co", name="United States, Colorado")
    assert get_pack("us-co", extra=[colorado]) is colorado
    with pytest.raises(ConfigurationError, match="already taken"):
        pack_registry([attrs.evolve(colorado, key="us")])
    with pytest.raises(ConfigurationError, match="us-co"):
        get_pack("xx", extra=[colorado])


@pytest.mark.parametrize(
    "surface", [Surface.SMS, Surface.VOICEMAIL, Surface.EMAIL_SUBJECT, Surface.PORTAL_NOTIFICATION]
)
@pytest.mark.parametrize("key", ["default", "us", "no", "de", "bg"])
def test_nothing_clinical_on_exposed_surfaces(key: str, surface: Surface) -> None:
    pack = get_pack(key)
    for category in Sensitive:
        d = check_content(pack, surface, on=ON, sensitive={category})
        assert not d.allowed, (key, surface, category)
    assert check_content(pack, surface, on=ON).allowed
    assert check_content(pack, Surface.BODY, on=ON, sensitive=set(Sensitive)).allowed


def test_limited_content_voicemail_fields() -> None:
    us = get_pack("us")
    base = {
        VoicemailField.BUSINESS_NAME,
        VoicemailField.REQUEST_TO_REPLY,
        VoicemailField.PERSON_NAME,
        VoicemailField.CALL_BACK_NUMBER,
    }
    assert check_content(us, Surface.VOICEMAIL, on=ON, fields=base | {VoicemailField.SALUTATION}).allowed
    missing = check_content(us, Surface.VOICEMAIL, on=ON, fields=base - {VoicemailField.CALL_BACK_NUMBER})
    assert not missing.allowed and "call_back_number" in missing.denials[0].message
    assert "12 CFR 1006.2(j)" in missing.denials[0].source


def test_reason_records_round_trip() -> None:
    r = Reason("sms.consent_recheck_days", "src", Outcome.DEFER, {"days": 90})
    assert Reason.from_record(r.to_record()) == r
    with pytest.raises(ValueError, match="not a stored reason"):
        Reason.from_record({"rule_id": "x"})


def test_pack_pages_are_generated_from_the_current_data() -> None:
    import importlib.util
    from pathlib import Path

    docs = Path(__file__).resolve().parent.parent / "docs"
    spec = importlib.util.spec_from_file_location("generate_pack_pages", docs / "generate_pack_pages.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for key in RULES:
        text = (docs / "explanation" / f"pack-{key}.rst").read_text(encoding="utf-8")
        assert text == gen.page(key), f"run python docs/generate_pack_pages.py ({key})"
        assert all(f"``{r.id}``" in text for r in RULES[key])
        assert all(f"``{r.id}``" in text for r in RELIEF_RULES[key])
        for r in (*RULES[key], *RELIEF_RULES[key]):
            if not r.verified:  # every secondary-source figure is flagged on its pack's page
                assert f"{r.source} (secondary source, check)" in text, r.id


# -- every number is data; nothing loosens silently ---------------------------------------------------


@pytest.mark.parametrize("key", ["default", "us", "no", "de", "bg"])
def test_every_relief_rule_is_sourced_and_dated(key: str) -> None:
    for rule in RELIEF_RULES[key]:
        assert isinstance(rule, Rule) and rule.source.strip(), rule.id
        assert isinstance(rule.effective_from, dt.date) and isinstance(rule.strictness, Strictness)
        assert rule.effective_to is None or rule.effective_to >= rule.effective_from


def test_email_text_and_letter_caps_read_their_window_from_the_pack() -> None:
    for key in ("default", "us", "no", "de", "bg"):
        rule = get_pack(key).rule("messages.window_days", on=ON)
        assert rule.value == 7 and rule.strictness is Strictness.AT_LEAST
    with pytest.raises(PolicyViolation):
        get_pack("us").with_house_rules({"messages.window_days": 6})


def test_with_rules_never_loosens_silently() -> None:
    us = get_pack("us")
    later = dt.date(2027, 1, 1)
    looser = Rule("calls.max_per_7_days", 9, "a house", later, Strictness.AT_MOST)
    with pytest.raises(PolicyViolation, match="law_change"):
        us.with_rules((looser,))
    with pytest.raises(PolicyViolation):  # same date as the law's own version: a silent rewrite
        us.with_rules((Rule("quiet_hours.end", dt.time(22), "x", dt.date(2000, 1, 1), Strictness.AT_MOST),))
    # A change of the law itself may move either way, and says so by its source and date.
    changed = us.with_rules((attrs.evolve(looser, source="12 CFR 1006.14 as amended 2027"),), law_change=True)
    assert changed.value("calls.max_per_7_days", on=later) == 9
    assert changed.value("calls.max_per_7_days", on=dt.date(2026, 12, 31)) == 7
    tighter = us.with_rules((Rule("calls.max_per_7_days", 5, "a house", later, Strictness.AT_MOST),))
    assert tighter.value("calls.max_per_7_days", on=later) == 5
    fresh = us.with_rules((Rule("house.own_rule", 1, "a house", later, Strictness.CHOICE),))
    assert fresh.value("house.own_rule", on=later) == 1
    # A new year's inkassosats is a fixed figure: only a law change may set it.
    no = get_pack("no")
    sats_2027 = Rule("no.inkassosats", 800, "inkassosats 2027", later, Strictness.FIXED)
    with pytest.raises(PolicyViolation):
        no.with_rules((sats_2027,))
    assert no.with_rules((sats_2027,), law_change=True).value("no.inkassosats", on=later) == 800


def test_creditor_role_decides_which_cadence_applies() -> None:
    from carecollect.outreach import OutreachPurpose
    from carecollect.policy.cadence import compile_pack

    provider = compile_pack(get_pack("us"), on=ON)
    collector = compile_pack(get_pack("us"), on=ON, collector=True)
    assert OutreachPurpose.VALIDATION_NOTICE not in provider.purposes  # Reg F binds collectors only
    assert collector.purposes[0] is OutreachPurpose.VALIDATION_NOTICE
    assert OutreachPurpose.STATEMENT not in collector.purposes  # the provider sent the statements
