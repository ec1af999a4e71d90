"""Write docs/explanation/pack-<key>.rst from the rules data (run: python docs/generate_pack_pages.py).

The tables come from :data:`carecollect.policy.outreach_rules.OUTREACH_RULES` and
:data:`carecollect.policy.relief_rules.RELIEF_RULES`, so the
pages cannot drift from the data; ``tests/test_policy_packs.py`` checks the
committed pages are current. No Sphinx extension is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from carecollect.policy.explain import rules_rst_table  # noqa: E402
from carecollect.policy.outreach_rules import OUTREACH_RULES as RULES  # noqa: E402
from carecollect.policy.relief_rules import RELIEF_RULES as RELIEF  # noqa: E402

INTRO: dict[str, tuple[str, str]] = {
    "default": (
        "Policy pack ``default``: patient-friendly defaults",
        "The pack to start from when no jurisdiction's pack fits. Every value is the most patient-friendly "
        "choice carecollect knows: quiet hours 09:00-20:00, at most three calls per debt a week for every "
        "creditor, two e-mails, texts or letters per debt a week, and a week between any two messages about "
        "an invoice. Nothing here is a statutory figure; where a number is modelled on a law, the source says so.",
    ),
    "us": (
        "Policy pack ``us``: United States",
        "Regulation F (12 CFR part 1006) binds third-party debt collectors and debt buyers, not a hospital "
        "collecting its own bills (12 CFR 1006.2(i)): the call caps bind only a creditor whose role is a "
        "collector, unless house rules turn ``calls.cap_for_all_creditors`` on. Quiet hours hold for everyone "
        "in every zone the patient may be in (comment 6(b)(1)(i)-1). A collector's cadence starts with the "
        "validation notice (1006.34); reminders follow only after the validation period, counted from the "
        "assumed receipt five business days after mailing. IRS 501(r) notices and credit-reporting gates are "
        "relief and agency rules (see the relief pages): for a nonprofit hospital the cadence adds the written "
        "ECA notice with the plain-language summary of its financial-assistance policy (26 CFR "
        "1.501(r)-6(c)(4)), at least 30 days before any extraordinary collection action, and its statements "
        "carry the summary (26 CFR 1.501(r)-4(b)(5)); a collector's passive credit reporting waits 14 days after "
        "a message that no notice of undeliverability followed (12 CFR 1006.30(a)). The first statement (for a collector, the validation "
        "notice) is never skipped: after a freeze or a missed run, no reminder goes out before it. Nor is the "
        "first reminder after the due date: no final notice comes before it.",
    ),
    "no": (
        "Policy pack ``no``: Norway",
        "The inkassolov sets the formal steps: an inkassovarsel only after the due date, with at least 14 days "
        "to pay counted from sending (§ 9), then a betalingsoppfordring only after that deadline, with at least "
        "14 days to pay or object (§ 10). carecollect sends the varsel 28 days after the due date and checks any "
        "planned notice with ``check_formal_notice``. A friendly reminder always comes first: after a missed run "
        "or for an old backlog, the varsel waits until a reminder has gone out and the gap between messages has "
        "passed. Fees, interest and the inkassosats are relief rules.",
    ),
    "de": (
        "Policy pack ``de``: Germany",
        "The statement carries the hint that a consumer is in default 30 days after due date and receipt "
        "(BGB § 286(3)) when the invoice gave it (a fact recorded on the invoice, ``default_notice_given``, "
        "with the day of receipt; :func:`~carecollect.relief.payment_default.germany_default_start` gives the "
        "day default began, and default interest at the base rate plus 5 points (BGB § 288(1)) runs from it); "
        "without it, default begins only with a Mahnung received after the due date. No claim goes to an agency "
        "without the patient's recorded consent (StGB § 203; BGH VIII ZR 296/90). The Mahnung (BGB § 286(1)) goes out 14 days after the due date and is free; the notice "
        "that default has begun follows on day 31, and never before the Mahnung has gone out. Quiet hours and caps are carecollect defaults: German law sets "
        "none for creditors collecting their own bills.",
    ),
    "bg": (
        "Policy pack ``bg``: Bulgaria",
        "Bulgarian law sets no reminder sequence for medical bills; the pack uses carecollect's patient-friendly "
        "cadence. Payment data tied to care is health data (GDPR Art. 9), so messages carry the minimum.",
    ),
}


def page(key: str) -> str:
    """The page for pack ``key``: its outreach rules, then its relief rules."""
    title, intro = INTRO[key]
    unverified = [r.id for r in (*RULES[key], *RELIEF[key]) if not r.verified]
    check = (
        "Rules marked *secondary source, check* come from a secondary source and must be checked against the "
        "primary one before production use: " + ", ".join(f"``{i}``" for i in dict.fromkeys(unverified)) + "."
        if unverified
        else "Every rule below cites its primary source or is a carecollect choice."
    )
    return "\n".join(
        [
            ".. This page is generated by docs/generate_pack_pages.py from carecollect.policy.outreach_rules",
            "   and carecollect.policy.relief_rules; do not edit.",
            "",
            title,
            "=" * len(title),
            "",
            intro,
            "",
            "Every rule of the pack, with its source, the dates it is in force, and which way house rules "
            "may move it (see :doc:`/how-to/house-rules`). " + check,
            "",
            "Outreach",
            "--------",
            "",
            "What the cadence (:mod:`carecollect.policy.cadence`), the contact governor "
            "(:mod:`carecollect.policy.governor`) and the content rules (:mod:`carecollect.policy.content`) read.",
            "",
            rules_rst_table(RULES[key], title=f"Outreach rules of the ``{key}`` pack"),
            "",
            "Relief and gates",
            "----------------",
            "",
            "What payment plans, financial assistance, fees, disputes, the insurer wait and the gates before an "
            "agency read (:mod:`carecollect.relief`; see :doc:`relief`).",
            "",
            rules_rst_table(RELIEF[key], title=f"Relief rules of the ``{key}`` pack"),
            "",
        ]
    )


def main() -> None:
    """Write every page."""
    for key in INTRO:
        (HERE / "explanation" / f"pack-{key}.rst").write_text(page(key), encoding="utf-8")


if __name__ == "__main__":
    main()
