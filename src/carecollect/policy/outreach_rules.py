"""The outreach rules of every built-in policy pack, as sourced data.

Each pack (``"default"``, ``"us"``, ``"no"``, ``"de"``, ``"bg"``) is a tuple of
:class:`~carecollect.policy.rules.Rule`: one value with its source, the date
from which it applies, which way a house rule may move it, and a note. The
cadence (:mod:`carecollect.policy.cadence`), the contact governor
(:mod:`carecollect.policy.governor`) and the content rules
(:mod:`carecollect.policy.content`) read these values and nothing else: no
number lives inside a function.

Rules whose figure comes from a secondary source carry ``verified=False``;
the docs (``docs/explanation/pack-*.rst``) mark them.

>>> from carecollect.policy.outreach_rules import OUTREACH_RULES
>>> sorted(OUTREACH_RULES)
['bg', 'de', 'default', 'no', 'us']
>>> [r.value for r in OUTREACH_RULES["no"] if r.id == "no.inkassovarsel.deadline_days"]
[14]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..deprecation import renamed
from .rules import Rule, Strictness

__all__ = ["CARECOLLECT_DEFAULT", "OUTREACH_RULES"]

#: Source named for a value carecollect chose (no law sets it): the patient-friendly default.
CARECOLLECT_DEFAULT = "carecollect patient-friendly default"

_ALWAYS = dt.date(2000, 1, 1)
_REG_F = dt.date(2021, 11, 30)  # Regulation F effective date
_AT_MOST = Strictness.AT_MOST
_AT_LEAST = Strictness.AT_LEAST
_ALLOWED = Strictness.ALLOWED_IF_TRUE
_REQUIRED = Strictness.REQUIRED_IF_TRUE
_FIXED = Strictness.FIXED
_CHOICE = Strictness.CHOICE


def _r(
    rule_id: str,
    value: Any,
    source: str,
    since: dt.date,
    strictness: Strictness,
    note: str,
    *,
    verified: bool = True,
) -> Rule:
    return Rule(rule_id, value, source, since, strictness, note=note, verified=verified)


_SENSITIVE = ("diagnosis", "procedure", "specialty", "clinical", "facility_type")
_LIMITED_VOICEMAIL_REQUIRED = ("business_name", "request_to_reply", "person_name", "call_back_number")
_LIMITED_VOICEMAIL_OPTIONAL = (
    "salutation",
    "date_time",
    "generic_account_statement",
    "suggested_reply_times",
)


def _common(
    *,
    quiet: tuple[dt.time, dt.time, str, bool],
    calls: tuple[int, int, int, bool, str],
    electronic_caps: tuple[int, int, int],
    privacy_source: str,
    cease: tuple[tuple[str, ...], str, bool],
    dispute_source: str,
    dispute_verified: bool = True,
    opt_out_source: str = CARECOLLECT_DEFAULT,
    sms_recheck: tuple[int, str] = (60, "carecollect default modelled on 12 CFR 1006.6(d)(5)"),
    sms_recheck_all: bool = True,
) -> tuple[Rule, ...]:
    q_start, q_end, q_source, q_verified = quiet
    c_max, c_window, c_after, c_all, c_source = calls
    e_mail, e_sms, e_letter = electronic_caps
    cease_purposes, cease_source, cease_verified = cease
    return (
        # Quiet hours -------------------------------------------------------
        _r(
            "quiet_hours.start",
            q_start,
            q_source,
            _ALWAYS,
            _AT_LEAST,
            "Earliest local time for a call, text or e-mail, in every zone the patient may be in.",
            verified=q_verified,
        ),
        _r(
            "quiet_hours.end",
            q_end,
            q_source,
            _ALWAYS,
            _AT_MOST,
            "Contact must happen before this local time, in every zone the patient may be in.",
            verified=q_verified,
        ),
        _r(
            "quiet_hours.channels",
            ("phone", "sms", "email", "portal"),
            q_source,
            _ALWAYS,
            _FIXED,
            "Channels that reach the patient at once and so respect quiet hours (letters do not).",
            verified=q_verified,
        ),
        # Call frequency ----------------------------------------------------
        _r(
            "calls.cap_for_all_creditors",
            c_all,
            c_source,
            _ALWAYS,
            _REQUIRED,
            "Apply the call caps to providers collecting their own bills too, not only to collectors.",
        ),
        _r(
            "calls.max_per_7_days",
            c_max,
            c_source,
            _ALWAYS,
            _AT_MOST,
            "Calls (answered, unanswered, voicemail; not calls that never connected) per debt in any 7 consecutive days.",
        ),
        _r(
            "calls.window_days",
            c_window,
            c_source,
            _ALWAYS,
            _AT_LEAST,
            "Length of the rolling window, in calendar days, for the call cap.",
        ),
        _r(
            "calls.days_after_conversation",
            c_after,
            c_source,
            _ALWAYS,
            _AT_LEAST,
            "No call about a debt for this many days after a conversation about it; the conversation's day is day 1.",
        ),
        # Other channels' caps ----------------------------------------------
        _r(
            "email.max_per_7_days",
            e_mail,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _AT_MOST,
            "E-mails per debt in any 7 consecutive days.",
        ),
        _r(
            "sms.max_per_7_days",
            e_sms,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _AT_MOST,
            "Text messages per debt in any 7 consecutive days.",
        ),
        _r(
            "letter.max_per_7_days",
            e_letter,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _AT_MOST,
            "Letters per debt in any 7 consecutive days.",
        ),
        _r(
            "messages.window_days",
            7,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _AT_LEAST,
            "Length of the rolling window, in calendar days, for the e-mail, text and letter caps.",
        ),
        _r(
            "sms.allowed",
            True,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _ALLOWED,
            "Whether text messages are used at all (a house may turn them off).",
        ),
        _r(
            "sms.consent_recheck_days",
            sms_recheck[0],
            sms_recheck[1],
            _ALWAYS,
            _AT_MOST,
            "A text needs consent given, or the number checked (reassigned-numbers database), within this many days.",
        ),
        _r(
            "sms.recheck_for_all_creditors",
            sms_recheck_all,
            sms_recheck[1],
            _ALWAYS,
            _REQUIRED,
            "Apply the consent recheck to every creditor, not only to collectors.",
        ),
        # Consent, opt-out, cease, confidentiality ---------------------------
        _r(
            "opt_out.delay_days",
            0,
            opt_out_source,
            _ALWAYS,
            _AT_MOST,
            "Days between an opt-out and its effect: carecollect applies it at once.",
        ),
        _r(
            "cease.allowed_purposes",
            cease_purposes,
            cease_source,
            _ALWAYS,
            _FIXED,
            "After a request to stop all contact, only these notices may still go out.",
            verified=cease_verified,
        ),
        _r(
            "cease.allowed_channels",
            ("letter",),
            cease_source,
            _ALWAYS,
            _FIXED,
            "The channels those notices may use after a request to stop.",
            verified=cease_verified,
        ),
        _r(
            "confidential.honour",
            True,
            privacy_source,
            _ALWAYS,
            _REQUIRED,
            "Honour a confidential-communication wish: only the listed channels; no voicemail when asked.",
        ),
        # Freezes -----------------------------------------------------------
        _r(
            "dispute.freeze",
            True,
            dispute_source,
            _ALWAYS,
            _REQUIRED,
            "No collection message or call while a dispute of the debt is open.",
            verified=dispute_verified,
        ),
        _r(
            "insurer.pause",
            True,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _REQUIRED,
            "No collection message or call while the insurer may still pay (claim pending or appealed).",
        ),
        _r(
            "plan.pause_reminders",
            True,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _REQUIRED,
            "No invoice reminders while a payment plan is current (the plan sends its own instalment reminders).",
        ),
        _r(
            "assistance.pause",
            True,
            CARECOLLECT_DEFAULT,
            _ALWAYS,
            _REQUIRED,
            "No collection message or call while a financial-assistance application is under review.",
        ),
        # Minimum necessary content -----------------------------------------
        _r("content.forbidden.sms", _SENSITIVE, privacy_source, _ALWAYS, _FIXED, "Never in a text message."),
        _r(
            "content.forbidden.voicemail",
            _SENSITIVE,
            privacy_source,
            _ALWAYS,
            _FIXED,
            "Never in a voicemail.",
        ),
        _r(
            "content.forbidden.email_subject",
            _SENSITIVE,
            privacy_source,
            _ALWAYS,
            _FIXED,
            "Never in an e-mail subject line.",
        ),
        _r(
            "content.forbidden.portal_notification",
            _SENSITIVE,
            privacy_source,
            _ALWAYS,
            _FIXED,
            "Never in a portal push notification.",
        ),
        _r(
            "voicemail.limited_content",
            True,
            privacy_source,
            _ALWAYS,
            _REQUIRED,
            "Voicemails carry only the limited-content fields (no debt, no clinic, no amount).",
        ),
        _r(
            "voicemail.required_fields",
            _LIMITED_VOICEMAIL_REQUIRED,
            privacy_source,
            _ALWAYS,
            _FIXED,
            "Every limited-content voicemail carries these fields.",
        ),
        _r(
            "voicemail.optional_fields",
            _LIMITED_VOICEMAIL_OPTIONAL,
            privacy_source,
            _ALWAYS,
            _FIXED,
            "A limited-content voicemail may also carry these fields, and nothing else.",
        ),
    )


def _cadence(
    *,
    pre_due: int,
    reminder_1: int | None,
    reminder_2: int | None,
    final: int | None,
    gap: int,
    source: str = CARECOLLECT_DEFAULT,
) -> tuple[Rule, ...]:
    later: list[Rule] = []
    if reminder_1 is not None:
        later.append(
            _r(
                "cadence.reminder_1.days_after_due",
                reminder_1,
                source,
                _ALWAYS,
                _AT_LEAST,
                "First reminder after the due date.",
            )
        )
    if reminder_2 is not None:
        later.append(
            _r(
                "cadence.reminder_2.days_after_due",
                reminder_2,
                source,
                _ALWAYS,
                _AT_LEAST,
                "Second reminder after the due date.",
            )
        )
    if final is not None:
        later.append(
            _r(
                "cadence.final_notice.days_after_due",
                final,
                source,
                _ALWAYS,
                _AT_LEAST,
                "Final notice after the due date.",
            )
        )
        later.append(
            _r(
                "cadence.channels.final_notice",
                ("letter", "email"),
                source,
                _ALWAYS,
                _CHOICE,
                "Channels for the final notice.",
            )
        )
    return (
        *later,
        _r(
            "cadence.min_days_between_messages",
            gap,
            source,
            _ALWAYS,
            _AT_LEAST,
            "At least this many days between two messages about one invoice (no bursts).",
        ),
        _r(
            "cadence.pre_due_reminder.enabled",
            True,
            source,
            _ALWAYS,
            _ALLOWED,
            "Send a friendly reminder before the due date.",
        ),
        _r(
            "cadence.pre_due_reminder.days_before_due",
            pre_due,
            source,
            _ALWAYS,
            _CHOICE,
            "The friendly reminder goes out this many days before the due date (and never on or after it).",
        ),
        _r(
            "cadence.channels.estimate",
            ("email", "letter", "portal"),
            source,
            _ALWAYS,
            _CHOICE,
            "Channels for the cost estimate and payment terms.",
        ),
        _r(
            "cadence.channels.statement",
            ("letter", "email", "portal"),
            source,
            _ALWAYS,
            _CHOICE,
            "Channels for the first statement.",
        ),
        _r(
            "cadence.channels.pre_due_reminder",
            ("email", "sms"),
            source,
            _ALWAYS,
            _CHOICE,
            "Channels for the friendly reminder before the due date.",
        ),
        _r(
            "cadence.channels.reminder",
            ("email", "sms", "letter"),
            source,
            _ALWAYS,
            _CHOICE,
            "Channels for reminders after the due date.",
        ),
    )


_US_PRIVACY = "45 CFR 164.502(b), 164.522(b); HHS FAQ 198; 12 CFR 1006.2(j)"
_EU_PRIVACY = "GDPR Art. 5(1)(c), 5(1)(f), 9"

_DEFAULT = (
    *_common(
        quiet=(dt.time(9, 0), dt.time(20, 0), CARECOLLECT_DEFAULT, True),
        calls=(3, 7, 7, True, "carecollect default, stricter than 12 CFR 1006.14(b)(2)"),
        electronic_caps=(2, 2, 2),
        privacy_source="carecollect default after 45 CFR 164.502(b) and GDPR Art. 5(1)(c)",
        cease=(("pre_placement_notice",), CARECOLLECT_DEFAULT, True),
        dispute_source=CARECOLLECT_DEFAULT,
    ),
    *_cadence(pre_due=5, reminder_1=10, reminder_2=30, final=60, gap=7),
)

_US = (
    *_common(
        quiet=(dt.time(8, 0), dt.time(21, 0), "12 CFR 1006.6(b)(1)(i) and comment 6(b)(1)(i)-1", True),
        calls=(7, 7, 7, False, "12 CFR 1006.14(b)(2)"),
        electronic_caps=(3, 2, 3),
        privacy_source=_US_PRIVACY,
        cease=(("pre_placement_notice", "eca_notice"), "15 U.S.C. 1692c(c); 12 CFR 1006.6(c)(2)", True),
        dispute_source="15 U.S.C. 1692g(b) (collectors); carecollect default for providers",
        opt_out_source="47 CFR 64.1200(a)(10) (TCPA: at most 10 business days, since 2025-04-11); carecollect: at once",
        sms_recheck=(60, "12 CFR 1006.6(d)(5)"),
        sms_recheck_all=False,
    ),
    *_cadence(pre_due=5, reminder_1=10, reminder_2=30, final=60, gap=7),
    _r(
        "us.opt_out.legal_ceiling_business_days",
        10,
        "47 CFR 64.1200(a)(10)",
        dt.date(2025, 4, 11),
        _FIXED,
        "The TCPA's ceiling for honouring an opt-out; carecollect applies opt-outs at once (opt_out.delay_days).",
    ),
    _r(
        "us.validation_notice.max_days_after_initial_communication",
        5,
        "12 CFR 1006.34(a)(1)(i)",
        _REG_F,
        _FIXED,
        "A collector sends the validation notice in the initial communication or within 5 days after it.",
    ),
    _r(
        "us.validation_notice.assumed_receipt_business_days",
        5,
        "12 CFR 1006.34(b)(5)",
        _REG_F,
        _FIXED,
        "Receipt may be assumed this many days after mailing, not counting Saturdays, Sundays and federal holidays.",
    ),
    _r(
        "us.validation_period_days",
        30,
        "12 CFR 1006.34(b)(5)",
        _REG_F,
        _AT_LEAST,
        "The validation period ends this many days after the consumer receives the notice.",
    ),
    _r(
        "cadence.channels.validation_notice",
        ("letter",),
        "12 CFR 1006.34(a), 1006.42",
        _REG_F,
        _FIXED,
        "carecollect mails the validation notice (electronic delivery needs E-SIGN consent).",
    ),
    _r(
        "estimate.gfe_business_days_if_scheduled_3_ahead",
        1,
        "45 CFR 149.610(b)(1)",
        dt.date(2022, 1, 1),
        _AT_MOST,
        "Good-faith estimate within 1 business day when the service is scheduled at least 3 business days ahead.",
    ),
    _r(
        "estimate.gfe_business_days_if_scheduled_10_ahead",
        3,
        "45 CFR 149.610(b)(1)",
        dt.date(2022, 1, 1),
        _AT_MOST,
        "Good-faith estimate within 3 business days when the service is scheduled at least 10 business days ahead.",
    ),
)

_NO_LAW = "inkassoloven"
_NO = (
    *_common(
        quiet=(
            dt.time(8, 0),
            dt.time(20, 0),
            "inkassoloven § 8 (god inkassoskikk), Finanstilsynet guidance",
            False,
        ),
        calls=(3, 7, 7, True, "carecollect default (god inkassoskikk, inkassoloven § 8)"),
        electronic_caps=(2, 2, 2),
        privacy_source=f"{_EU_PRIVACY}; personopplysningsloven",
        cease=(
            ("inkassovarsel", "betalingsoppfordring", "pre_placement_notice"),
            "carecollect default: no statutory right to stop contact; the statutory notices still go out",
            True,
        ),
        dispute_source="inkassoloven § 8 (god inkassoskikk: collection stops on a well-founded objection)",
        dispute_verified=False,
    ),
    *_cadence(pre_due=3, reminder_1=14, reminder_2=None, final=None, gap=7),
    _r(
        "no.inkassovarsel.min_days_after_due",
        1,
        f"{_NO_LAW} § 9",
        _ALWAYS,
        _AT_LEAST,
        "An inkassovarsel may only be sent after the due date.",
    ),
    _r(
        "no.inkassovarsel.deadline_days",
        14,
        f"{_NO_LAW} § 9",
        _ALWAYS,
        _AT_LEAST,
        "The inkassovarsel gives at least 14 days to pay, counted from the day it is sent.",
    ),
    _r(
        "no.betalingsoppfordring.deadline_days",
        14,
        f"{_NO_LAW} § 10",
        _ALWAYS,
        _AT_LEAST,
        "The betalingsoppfordring goes out after the varsel's deadline and gives at least 14 days to pay or object.",
    ),
    _r(
        "cadence.inkassovarsel.days_after_due",
        28,
        CARECOLLECT_DEFAULT,
        _ALWAYS,
        _AT_LEAST,
        "carecollect sends the inkassovarsel 28 days after the due date (the law allows it from day 1).",
    ),
    _r(
        "cadence.channels.inkassovarsel",
        ("letter",),
        f"{_NO_LAW} § 9",
        _ALWAYS,
        _FIXED,
        "The inkassovarsel is written; carecollect sends it by letter.",
    ),
    _r(
        "cadence.channels.betalingsoppfordring",
        ("letter",),
        f"{_NO_LAW} § 10",
        _ALWAYS,
        _FIXED,
        "The betalingsoppfordring is written; carecollect sends it by letter.",
    ),
)

_DE = (
    *_common(
        quiet=(
            dt.time(8, 0),
            dt.time(20, 0),
            "no statutory hours; BDIU code of conduct for collectors",
            False,
        ),
        calls=(3, 7, 7, True, "carecollect default (no statutory call cap)"),
        electronic_caps=(2, 2, 2),
        privacy_source=f"{_EU_PRIVACY}; StGB § 203",
        cease=(("pre_placement_notice",), "carecollect default: no statutory right to stop contact", True),
        dispute_source=CARECOLLECT_DEFAULT,
    ),
    *_cadence(pre_due=3, reminder_1=None, reminder_2=None, final=60, gap=7),
    _r(
        "cadence.mahnung.days_after_due",
        14,
        CARECOLLECT_DEFAULT,
        _ALWAYS,
        _AT_LEAST,
        "The Mahnung (BGB § 286(1)) goes out this many days after the due date; it is free.",
    ),
    _r(
        "de.default_notice.days_after_due",
        30,
        "BGB § 286(3)",
        dt.date(2002, 1, 1),
        _FIXED,
        "A consumer is in default 30 days after due date and receipt only if the invoice said so.",
    ),
    _r(
        "de.statement.default_hint_required",
        True,
        "BGB § 286(3) sentence 1",
        dt.date(2002, 1, 1),
        _REQUIRED,
        "The statement carries the hint that default follows 30 days after due date and receipt.",
    ),
    _r(
        "cadence.channels.mahnung",
        ("letter", "email"),
        CARECOLLECT_DEFAULT,
        _ALWAYS,
        _CHOICE,
        "Channels for the Mahnung.",
    ),
    _r(
        "cadence.channels.default_notice",
        ("letter",),
        CARECOLLECT_DEFAULT,
        _ALWAYS,
        _CHOICE,
        "Channels for the notice that default has begun.",
    ),
)

_BG = (
    *_common(
        quiet=(
            dt.time(8, 0),
            dt.time(20, 0),
            "carecollect default; Закон за потребителския кредит (check)",
            False,
        ),
        calls=(3, 7, 7, True, "carecollect default (no statutory call cap found)"),
        electronic_caps=(2, 2, 2),
        privacy_source=f"{_EU_PRIVACY}; Закон за защита на личните данни",
        cease=(("pre_placement_notice",), "carecollect default: no statutory right to stop contact", True),
        dispute_source=CARECOLLECT_DEFAULT,
    ),
    *_cadence(pre_due=3, reminder_1=14, reminder_2=30, final=60, gap=7),
)

#: Rules per pack key (``"default"``, ``"us"``, ``"no"``, ``"de"``, ``"bg"``).
OUTREACH_RULES: dict[str, tuple[Rule, ...]] = {
    "default": _DEFAULT,
    "us": _US,
    "no": _NO,
    "de": _DE,
    "bg": _BG,
}


__getattr__ = renamed(__name__, {"RULES": "carecollect.policy.outreach_rules:OUTREACH_RULES"})
