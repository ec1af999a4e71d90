"""The relief rules of every built-in policy pack, as sourced data.

Every number the relief policies (:mod:`carecollect.relief`) read lives here
with its source and the date it takes effect. Rules marked ``verified=False``
come from a secondary source (``../shared/POLICY-SOURCES.md`` says "check")
and must be checked against the primary text before production use.

Amounts that are not tied to one currency (a minimum instalment) are stored
as :class:`~decimal.Decimal` in the account's currency; US dollar thresholds
are stored as ``Decimal`` in USD.

State rules of the US pack are keyed ``state.<ST>.<rule>`` and chosen by
:attr:`carecollect.creditors.Creditor.state`
(:func:`carecollect.relief.plans.state_value`).

>>> import datetime as dt
>>> from carecollect.policy import get_pack
>>> get_pack("us").value("state.CO.plan.max_income_percent.hospital", on=dt.date(2026, 1, 5))
Decimal('4')
>>> get_pack("no").value("no.inkassosats", on=dt.date(2025, 6, 1)), get_pack("no").value("no.inkassosats", on=dt.date(2026, 6, 1))
(Decimal('700'), Decimal('750'))
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..deprecation import renamed
from .rules import Rule, Strictness

__all__ = ["RELIEF_RULES", "unverified"]

D = Decimal
S = Strictness
_SEED_001 = "carecollect default after seed article 001 (written refusal-to-pay policy)"
_SEED_003 = "carecollect default after seed article 003 (plans fitted to income, several options)"
_HOUSE = "carecollect patient-friendly default (creditor's choice; no statute)"
_R501 = "26 CFR 1.501(r)-6(c) and 1.501(r)-1(b)(3) (check wording against the eCFR)"
_FPL_2025 = "HHS poverty guidelines 2025 (Federal Register, January 2025)"
_FPL_2026 = "HHS poverty guidelines 2026 (48 states and DC; Alaska; Hawaii)"
_CDIA = "CDIA (Equifax, Experian, TransUnion) voluntary medical-debt changes, 2022-07-01 and 2023-04-11"


def _r(
    rule_id: str,
    value: object,
    source: str,
    effective_from: dt.date,
    strictness: Strictness = S.FIXED,
    note: str = "",
    *,
    verified: bool = True,
    effective_to: dt.date | None = None,
) -> Rule:
    return Rule(rule_id, value, source, effective_from, strictness, effective_to, note, verified)


_EPOCH = dt.date(2020, 1, 1)


def _common(
    min_instalment: Decimal,
    *,
    interest_allowed: bool,
    interest_source: str,
    notice_required: bool = True,
    notice_source: str = _HOUSE + " (501(r) notice in the US)",
) -> tuple[Rule, ...]:
    """Rules every pack carries: plans, disputes, insurer wait, assistance tiers, gates."""
    return (
        # -- payment plans ---------------------------------------------------------------
        _r(
            "plan.max_income_percent",
            D("5"),
            _SEED_003 + "; cf. Md. and N.Y. 5 % caps",
            _EPOCH,
            S.AT_MOST,
            "Monthly instalment at most this % of gross monthly household income.",
        ),
        _r(
            "plan.min_instalment",
            min_instalment,
            _HOUSE,
            _EPOCH,
            S.CHOICE,
            "Smallest instalment, in the account's currency; the affordability cap always wins over it.",
        ),
        _r("plan.max_term_months", 36, _HOUSE, _EPOCH, S.CHOICE, "Longest plan offered."),
        _r("plan.short_term_months", 6, _SEED_003, _EPOCH, S.CHOICE, "Length of the short option."),
        _r("plan.long_term_months", 24, _SEED_003, _EPOCH, S.CHOICE, "Length of the longer option."),
        _r(
            "plan.interest_allowed",
            interest_allowed,
            interest_source,
            _EPOCH,
            S.ALLOWED_IF_TRUE,
            "Whether a creditor may turn on interest on plans at all (off unless the creditor turns it on).",
        ),
        _r(
            "plan.roll_to_business_day",
            True,
            _HOUSE,
            _EPOCH,
            S.CHOICE,
            "A due date on a weekend or holiday moves to the next business day.",
        ),
        _r(
            "plan.grace_days",
            15,
            _HOUSE,
            _EPOCH,
            S.AT_LEAST,
            "Days after an instalment's due date before it counts as missed.",
        ),
        _r(
            "plan.reminder_before_default",
            True,
            _HOUSE,
            _EPOCH,
            S.REQUIRED_IF_TRUE,
            "A friendly reminder goes out before an instalment is marked missed.",
        ),
        _r(
            "plan.missed_before_default",
            2,
            _HOUSE,
            _EPOCH,
            S.AT_LEAST,
            "Missed instalments before a plan may be called defaulted.",
        ),
        _r(
            "plan.hardship_pause_max_months",
            3,
            _HOUSE,
            _EPOCH,
            S.AT_LEAST,
            "Longest hardship pause staff may grant without escalation.",
        ),
        # -- financial assistance (creditor's policy data) -------------------------------
        _r(
            "assistance.free_at_or_below_fpl_percent",
            D("200"),
            "common hospital practice (POLICY-SOURCES: a hospital's choice)",
            _EPOCH,
            S.CHOICE,
            "Free care at or below this % of the poverty guideline.",
        ),
        _r(
            "assistance.discount_up_to_fpl_percent",
            D("400"),
            "common hospital practice (POLICY-SOURCES: a hospital's choice)",
            _EPOCH,
            S.CHOICE,
            "Sliding discount up to this % of the poverty guideline.",
        ),
        # -- disputes (seed 001) ----------------------------------------------------------
        _r(
            "dispute.first_response_business_days",
            0,
            _SEED_001 + ": meet immediately",
            _EPOCH,
            S.AT_MOST,
            "First response the same business day (0 business days).",
        ),
        _r(
            "dispute.follow_up_business_days",
            3,
            _SEED_001 + ": call a few days later",
            _EPOCH,
            S.CHOICE,
            "Follow-up call this many business days after resolution.",
        ),
        _r(
            "dispute.freezes_collection",
            True,
            _SEED_001 + "; FDCPA 1692g(b); 45 CFR 149.620",
            _EPOCH,
            S.REQUIRED_IF_TRUE,
            "An open dispute stops collection outreach and any handoff on that debt.",
        ),
        # -- waiting for the insurer -------------------------------------------------------
        _r(
            "insurer.pending_wait_days",
            60,
            _HOUSE,
            _EPOCH,
            S.AT_LEAST,
            "Days after a claim is filed before the patient is billed anyway.",
        ),
        _r(
            "insurer.appeal_wait_days",
            90,
            _HOUSE,
            _EPOCH,
            S.AT_LEAST,
            "Days after a claim is filed, when it is appealed, before the patient is billed anyway.",
        ),
        # -- gates before an agency ----------------------------------------------------------
        _r(
            "gate.pre_placement_notice_required",
            notice_required,
            notice_source,
            _EPOCH,
            S.REQUIRED_IF_TRUE,
            "A written notice before placement, sale or reporting.",
        ),
        _r(
            "gate.pre_placement_notice_days",
            30,
            _HOUSE + " (mirrors 26 CFR 1.501(r)-6(c))",
            _EPOCH,
            S.AT_LEAST,
            "Days between the pre-placement notice and the action.",
        ),
        _r(
            "gate.plan_blocks",
            True,
            _HOUSE,
            _EPOCH,
            S.REQUIRED_IF_TRUE,
            "An account with a current plan (active or paused) is never placed.",
        ),
        _r(
            "gate.application_blocks",
            True,
            _HOUSE + " (26 CFR 1.501(r)-6(c)(4) in the US)",
            _EPOCH,
            S.REQUIRED_IF_TRUE,
            "A pending assistance application stops placement.",
        ),
    )


_DEFAULT = (
    *_common(D("25"), interest_allowed=False, interest_source=_HOUSE),
    _r(
        "gate.min_days_after_first_statement",
        120,
        _HOUSE + " (mirrors 26 CFR 1.501(r)-6(c))",
        _EPOCH,
        S.AT_LEAST,
        "Days after the first statement before any handoff.",
    ),
)

_US = (
    *_common(D("25"), interest_allowed=True, interest_source="no federal prohibition; state law caps it"),
    *(
        _r(
            "gate.min_days_after_first_statement",
            120,
            _R501,
            dt.date(2016, 1, 1),
            S.AT_LEAST,
            "No extraordinary collection action before 120 days after the first post-discharge statement "
            "(binding for nonprofit hospitals; the carecollect default for every US creditor).",
            verified=False,
        ),
        # 501(r)
        _r(
            "r501.notification_period_days",
            120,
            _R501,
            dt.date(2016, 1, 1),
            S.AT_LEAST,
            "Notification period from the first post-discharge billing statement.",
            verified=False,
        ),
        _r(
            "r501.notice_days_before_eca",
            30,
            _R501,
            dt.date(2016, 1, 1),
            S.AT_LEAST,
            "Written notice with the plain-language summary at least 30 days before the first ECA.",
            verified=False,
        ),
        _r(
            "cadence.eca_notice.days_after_issue",
            90,
            "26 CFR 1.501(r)-6(c)(4): written notice at least 30 days before the first ECA, which waits "
            "120 days after the first post-discharge statement (1.501(r)-6(c)(1)) (check)",
            dt.date(2016, 1, 1),
            S.AT_LEAST,
            "A nonprofit hospital's written ECA notice, with the plain-language summary of its financial-assistance "
            "policy, goes out this many days after the invoice (only for nonprofit creditors); the action date it "
            "states is r501.notice_days_before_eca days after sending.",
            verified=False,
        ),
        _r(
            "cadence.channels.eca_notice",
            ("letter", "email"),
            "26 CFR 1.501(r)-6(c)(4) (a written notice; check)",
            dt.date(2016, 1, 1),
            S.CHOICE,
            "Channels for the written ECA notice.",
            verified=False,
        ),
        _r(
            "r501.statement_fap_summary",
            True,
            "26 CFR 1.501(r)-4(b)(5)(i)(D) (notice of the FAP on billing statements; check)",
            dt.date(2016, 1, 1),
            S.REQUIRED_IF_TRUE,
            "A nonprofit hospital's statements say financial assistance is available, summarise the policy in plain "
            "language and give the telephone number and the address of the web page with the policy, the "
            "application and the summary (the assistance URL of the run settings).",
            verified=False,
        ),
        _r(
            "r501.application_period_days",
            240,
            _R501,
            dt.date(2016, 1, 1),
            S.AT_LEAST,
            "Application period: to the later of day 240 or the notice's deadline.",
            verified=False,
        ),
        # poverty guidelines: (first person, each extra person), USD per year
        _r(
            "fpl.contiguous",
            (D("15650"), D("5500")),
            _FPL_2025,
            dt.date(2025, 1, 1),
            S.FIXED,
            "48 states and DC.",
            effective_to=dt.date(2025, 12, 31),
        ),
        _r(
            "fpl.alaska",
            (D("19550"), D("6880")),
            _FPL_2025,
            dt.date(2025, 1, 1),
            S.FIXED,
            "Alaska 2025 figures not in POLICY-SOURCES.",
            verified=False,
            effective_to=dt.date(2025, 12, 31),
        ),
        _r(
            "fpl.hawaii",
            (D("17990"), D("6330")),
            _FPL_2025,
            dt.date(2025, 1, 1),
            S.FIXED,
            "Hawaii 2025 figures not in POLICY-SOURCES.",
            verified=False,
            effective_to=dt.date(2025, 12, 31),
        ),
        _r(
            "fpl.contiguous",
            (D("15960"), D("5680")),
            _FPL_2026,
            dt.date(2026, 1, 1),
            S.FIXED,
            "48 states and DC.",
        ),
        _r("fpl.alaska", (D("19950"), D("7100")), _FPL_2026, dt.date(2026, 1, 1), S.FIXED, "Alaska."),
        _r("fpl.hawaii", (D("18360"), D("6530")), _FPL_2026, dt.date(2026, 1, 1), S.FIXED, "Hawaii."),
        # credit reporting (voluntary bureau policy) and Regulation F passive collection
        _r(
            "credit.min_balance_usd",
            D("500"),
            _CDIA,
            dt.date(2023, 4, 11),
            S.AT_LEAST,
            "Medical collections under $500 are never reported.",
        ),
        _r(
            "credit.min_days_delinquent",
            365,
            _CDIA,
            dt.date(2022, 7, 1),
            S.AT_LEAST,
            "Unpaid medical collections not reported until one year after delinquency (counted from the due date).",
        ),
        _r(
            "credit.paid_reportable",
            False,
            _CDIA,
            dt.date(2022, 7, 1),
            S.ALLOWED_IF_TRUE,
            "Paid medical collections are never reported.",
        ),
        _r(
            "credit.passive_wait_days",
            14,
            "12 CFR 1006.30(a)",
            dt.date(2021, 11, 30),
            S.AT_LEAST,
            "A collector that has not spoken to the consumer waits 14 consecutive days after a message before reporting; a notice of undeliverability in that time means a new message and a new wait.",
        ),
        # No Surprises Act, collector validation
        _r(
            "nsa.dispute_threshold_usd",
            D("400"),
            "45 CFR 149.620",
            dt.date(2022, 1, 1),
            S.AT_MOST,
            "A bill exceeding the good-faith estimate by this much or more may go to dispute resolution.",
        ),
        _r(
            "nsa.dispute_window_days",
            120,
            "45 CFR 149.620",
            dt.date(2022, 1, 1),
            S.AT_LEAST,
            "Calendar days from the bill's date to start the dispute.",
        ),
        _r(
            "dispute.validation_stops_collection",
            True,
            "15 U.S.C. 1692g(b); 12 CFR 1006.34",
            dt.date(2021, 11, 30),
            S.REQUIRED_IF_TRUE,
            "A written dispute within the validation period stops collection until verification is sent.",
        ),
        # States (selected by Creditor.state)
        _r(
            "state.CO.plan.max_income_percent.hospital",
            D("4"),
            "C.R.S. 25.5-3-503 (check)",
            dt.date(2022, 9, 1),
            S.AT_MOST,
            "Patients at or below 250 % FPL: monthly payment at most 4 % of household income per hospital bill.",
            verified=False,
        ),
        _r(
            "state.CO.plan.max_income_percent.professional",
            D("2"),
            "C.R.S. 25.5-3-503 (check)",
            dt.date(2022, 9, 1),
            S.AT_MOST,
            "Per separate professional bill.",
            verified=False,
        ),
        _r(
            "state.CO.plan.income_limit_fpl_percent",
            D("250"),
            "C.R.S. 25.5-3-503 (check)",
            dt.date(2022, 9, 1),
            S.AT_LEAST,
            "The Colorado plan caps apply at or below this % of the poverty guideline.",
            verified=False,
        ),
        _r(
            "state.CO.plan.paid_after_payments",
            36,
            "C.R.S. 25.5-3-503 (check)",
            dt.date(2022, 9, 1),
            S.AT_MOST,
            "After 36 monthly payments the balance counts as paid.",
            verified=False,
        ),
        _r(
            "state.MD.plan.max_income_percent",
            D("5"),
            "Md. Code, Health-Gen. 19-214.2 (check)",
            dt.date(2025, 10, 1),
            S.AT_MOST,
            "Plans at most 5 % of household income.",
            verified=False,
        ),
        _r(
            "state.MD.no_lawsuit_at_or_below_usd",
            D("500"),
            "Md. Code, Health-Gen. 19-214.2 (check)",
            dt.date(2025, 10, 1),
            S.AT_LEAST,
            "No lawsuit for debts up to $500.",
            verified=False,
        ),
        _r(
            "state.MD.credit_report_min_days",
            240,
            "Md. Code, Health-Gen. 19-214.2 (check)",
            dt.date(2025, 10, 1),
            S.AT_LEAST,
            "No suit or credit reporting before 240 days.",
            verified=False,
        ),
        _r(
            "state.NY.plan.max_income_percent",
            D("5"),
            "N.Y. Pub. Health Law 2807-k(9-a) (check)",
            dt.date(2024, 1, 1),
            S.AT_MOST,
            "Plans at most 5 % of gross monthly income.",
            verified=False,
        ),
        _r(
            "state.NY.plan.max_interest_percent",
            D("2"),
            "N.Y. Pub. Health Law 2807-k(9-a) (check)",
            dt.date(2024, 1, 1),
            S.AT_MOST,
            "Interest on plans at most 2 %.",
            verified=False,
        ),
        _r(
            "state.NY.min_days_before_action",
            180,
            "N.Y. Pub. Health Law 2807-k(9-a) (check)",
            dt.date(2024, 1, 1),
            S.AT_LEAST,
            "No collection action before 180 days.",
            verified=False,
        ),
    ),
)

_NO = (
    *_common(
        D("250"),
        interest_allowed=False,
        interest_source=_HOUSE,
        notice_required=False,
        notice_source="inkassoloven § 9: the inkassovarsel is the notice before handoff (see no.inkassovarsel_days)",
    ),
    _r(
        "gate.min_days_after_first_statement",
        0,
        _HOUSE + " (the inkassovarsel rule governs)",
        _EPOCH,
        S.CHOICE,
    ),
    _r(
        "no.inkassovarsel_days",
        14,
        "inkassoloven § 9",
        dt.date(1989, 1, 1),
        S.AT_LEAST,
        "An inkassovarsel gives at least 14 days to pay, counted from sending; no handoff before.",
    ),
    _r(
        "no.inkassosats",
        D("700"),
        "inkassoforskriften; inkassosats 2025",
        dt.date(2025, 1, 1),
        S.FIXED,
        "Inkassosats in NOK.",
    ),
    _r(
        "no.inkassosats",
        D("750"),
        "inkassoforskriften; inkassosats 2026 (check)",
        dt.date(2026, 1, 1),
        S.FIXED,
        "Inkassosats in NOK.",
        verified=False,
    ),
    _r(
        "no.reminder_fee_divisor",
        20,
        "inkassoforskriften § 1-2",
        dt.date(2012, 1, 1),
        S.AT_LEAST,
        "A reminder or inkassovarsel may carry at most 1/20 of the inkassosats.",
    ),
    _r(
        "no.reminder_fee_min_days_after_due",
        14,
        "inkassoforskriften § 1-2",
        dt.date(2012, 1, 1),
        S.AT_LEAST,
        "A fee only on a notice sent at least 14 days after the due date.",
    ),
    _r(
        "no.max_fee_notices",
        2,
        "inkassoforskriften § 1-2",
        dt.date(2012, 1, 1),
        S.AT_MOST,
        "At most two fee-bearing notices (two reminders, or one reminder and an inkassovarsel) before the "
        "betalingsoppfordring.",
    ),
    _r(
        "no.late_interest_percent",
        D("12.00"),
        "forsinkelsesrenteloven; rate for H1 2026 (check)",
        dt.date(2026, 1, 1),
        S.FIXED,
        "Norges Bank policy rate + 8 points, set each half-year.",
        verified=False,
        effective_to=dt.date(2026, 6, 30),
    ),
)

_DE = (
    *_common(D("25"), interest_allowed=False, interest_source=_HOUSE),
    _r("gate.min_days_after_first_statement", 0, _HOUSE + " (default and consent govern)", _EPOCH, S.CHOICE),
    _r(
        "de.handoff_requires_consent",
        True,
        "StGB § 203; BGH VIII ZR 296/90",
        dt.date(1991, 7, 10),
        S.REQUIRED_IF_TRUE,
        "A medical fee claim is not handed to an agency or buyer without the patient's recorded consent "
        "(Patient.handoff_consent: when and how it was given, in force on the day, not withdrawn).",
    ),
    _r(
        "de.base_rate_percent",
        D("2.27"),
        "Deutsche Bundesbank, Basiszinssatz (BGB § 247) from 2025-01-01 (check)",
        dt.date(2025, 1, 1),
        S.FIXED,
        verified=False,
        effective_to=dt.date(2025, 6, 30),
    ),
    _r(
        "de.base_rate_percent",
        D("1.27"),
        "Deutsche Bundesbank, Basiszinssatz (BGB § 247) from 2025-07-01",
        dt.date(2025, 7, 1),
        S.FIXED,
    ),
    _r(
        "de.default_interest_points",
        D("5"),
        "BGB § 288 (1)",
        dt.date(2002, 1, 1),
        S.FIXED,
        "Consumer default interest: 5 points over the base rate.",
    ),
    _r(
        "de.interest_day_count",
        "ACT/365",
        "carecollect convention (BGB §§ 187, 188 for the days; check)",
        _EPOCH,
        S.FIXED,
        "Days after the start date up to and including the end date, over 365.",
        verified=False,
    ),
    _r(
        "de.reminder_cost_max",
        D("2.50"),
        "case law: actual cost only, about EUR 1-2.50 (secondary; check)",
        _EPOCH,
        S.AT_MOST,
        "Reminder costs at actual cost, never above this.",
        verified=False,
    ),
    _r(
        "de.first_reminder_free",
        True,
        "BGB § 286 (1): the reminder that creates default is not a default cost",
        dt.date(2002, 1, 1),
        S.REQUIRED_IF_TRUE,
    ),
    _r(
        "de.default_days_after_invoice",
        30,
        "BGB § 286 (3)",
        dt.date(2002, 1, 1),
        S.AT_LEAST,
        "A consumer is in default 30 days after due date and receipt only if the invoice says so "
        "(Invoice.default_notice_given, Invoice.received_on); otherwise only after a Mahnung (BGB § 286 (1)).",
    ),
)

_BG = (
    *_common(D("15"), interest_allowed=False, interest_source=_HOUSE),
    _r("gate.min_days_after_first_statement", 0, _HOUSE, _EPOCH, S.CHOICE),
    _r(
        "bg.ecb_mro_percent",
        D("2.15"),
        "ECB main refinancing operations rate, from 2025-06-11 (check)",
        dt.date(2025, 6, 11),
        S.FIXED,
        "The ECB MRO rate used for the statutory rate.",
        verified=False,
    ),
    _r(
        "bg.late_interest_points",
        D("8"),
        "ПМС № 426/2014 as amended for the euro (from 2026-01-01; check)",
        dt.date(2026, 1, 1),
        S.FIXED,
        "Statutory late interest: ECB MRO + 8 points.",
        verified=False,
    ),
    _r(
        "bg.interest_day_count",
        "ACT/360",
        "Bulgarian practice for законна лихва (check)",
        _EPOCH,
        S.FIXED,
        verified=False,
    ),
)

#: Rules per pack key (``"default"``, ``"us"``, ``"no"``, ``"de"``, ``"bg"``).
RELIEF_RULES: dict[str, tuple[Rule, ...]] = {
    "default": _DEFAULT,
    "us": _US,
    "no": _NO,
    "de": _DE,
    "bg": _BG,
}


def unverified() -> list[tuple[str, str, str]]:
    """Every ``(pack, rule id, source)`` still marked ``verified=False``, for the release checklist.

    >>> ("no", "no.inkassosats", "inkassoforskriften; inkassosats 2026 (check)") in unverified()
    True
    """
    return [(key, r.id, r.source) for key, rules in RELIEF_RULES.items() for r in rules if not r.verified]


__getattr__ = renamed(__name__, {"RULES": "carecollect.policy.relief_rules:RELIEF_RULES"})
