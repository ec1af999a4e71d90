"""The texts of reasons: one catalogue of message templates, keyed by rule id.

A :class:`~carecollect.policy.explain.Reason` records a rule id, its source, the outcome and
a few parameters (numbers, dates, channel names, record ids); its text is written out from
the template here only when someone reads it (``carecollect explain``, a staff screen, the
dry run's ``--show`` listing); the audit log stores the parameters. One place holds every
sentence, so a wording is changed (or translated) once, and ``tests/test_reason_texts.py``
proves that every rule id the code records has a template whose fields are the parameters
the code passes.

A template is a :meth:`str.format` string over the reason's parameters. Where one rule has
several texts (it allowed, or it denied), the entry maps the ``case`` parameter to each. A
rule id with no entry of its own (or none for its case) takes the entry of its longest dotted
prefix that has one (``creditor.incentive.<kind>`` reads ``creditor.incentive``); a US
state's rule ``state.CO.<name>`` reads ``state.*.<name>``; and a case no entry of the rule
holds is one every rule shares, under ``*`` (a cadence step falls ``due`` on whichever rule
times it: ``cadence.reminder_1.days_after_due``, ``no.inkassovarsel.deadline_days``...).

Texts carry no protected health information: a parameter is never a patient's name, address
or a clinical detail.

>>> template("quiet_hours.start", "outside")
'outside {start}-{end} local time in at least one of {zones}'
>>> template("no.inkassovarsel.deadline_days", "due")
'{purpose} #{rank} is due on {on}'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

__all__ = ["REASON_TEXTS", "template"]

#: rule id (or a prefix of rule ids) -> template, or ``case`` -> template.
REASON_TEXTS: Mapping[str, str | Mapping[str, str]] = {
    # the outreach cadence (policy.cadence) --------------------------------------------------
    # cases shared by rules of many ids: a cadence step falls due on the rule that times it; a
    # gate's waiting period counts days from a start under its own rule (relief.gates)
    "*": {
        "due": "{purpose} #{rank} is due on {on}",
        "age_wait": "{what}: not before {until} ({days} days after {start})",
        "age_passed": "{what}: {days} days have passed",
    },
    "cadence": {
        "none": "no step is due today",
        "next": "no step is due today; the next falls on {next}",
    },
    "cadence.channels.estimate": {
        "sent": "estimate already sent",
        "passed": "the service date has passed",
        "due": "estimate and payment terms are due before treatment",
    },
    "estimate.gfe_business_days_if_scheduled_3_ahead": "give the estimate by {by}",
    "estimate.gfe_business_days_if_scheduled_10_ahead": "give the estimate by {by}",
    "invoice.status": "invoice {invoice} is {status}",
    "invoice.balance": "invoice {invoice} has nothing left to pay",
    "invoice.paid": "nothing is owed on this invoice",
    # the freezes, checked by the cadence (on an invoice) and the governor (on a debt)
    "dispute.freeze": {
        "invoice": "a dispute of this invoice is open",
        "debt": "a dispute of this debt is open",
    },
    **{
        rule: {"invoice": text, "debt": text}
        for rule, text in (
            ("plan.pause_reminders", "a payment plan is current"),
            ("insurer.pause", "the insurer has not decided yet"),
            ("assistance.pause", "a financial-assistance application is under review"),
        )
    },
    "de.statement.default_hint_required": {
        "stated": "the invoice states the 30-day default rule, and so does the statement",
        "not_stated": "the invoice does not state the 30-day default rule: default begins only with a reminder",
    },
    "no.inkassovarsel.min_days_after_due": "sent {after} days after the due date (at least {least})",
    "no.inkassovarsel.deadline_days": "{days} days to pay from sending (at least {least})",
    "no.betalingsoppfordring.deadline_days": {
        "after": "sent after the inkassovarsel's deadline",
        "early": "the inkassovarsel's deadline has not passed (or no varsel was sent)",
        "days": "{days} days to pay or object (at least {least})",
    },
    # the contact governor (policy.governor) -------------------------------------------------
    "patient.consent": {
        "ok": "{channel}: consent on record and no opt-out",
        "none_among": "no usable channel among {channels}",
        "estimate": "no usable channel for the estimate",
    },
    "contact_point.undeliverable": {
        "held": "{channel}: every contact point bounced (undeliverable); a new address clears it",
        "skipped": "{channel} skipped: every {channel} contact point bounced (undeliverable)",
    },
    "opt_out.delay_days": "{channel}: opted out, no consent, or no contact point",
    "confidential.honour": {
        "unlisted": "{channel} is not a channel the patient listed",
        "no_voicemail": "do not leave a voicemail",
    },
    "sms.allowed": "text messages are not used under this pack",
    "sms.consent_recheck_days": "no consent or number check within {days} days",
    "cease.allowed_purposes": {
        "step": "the patient asked us to stop; {purpose} may not follow",
        "allow": "{purpose} by {channel} is allowed after a stop request",
        "deny": "the patient asked us to stop; only {purposes} by {channels} may follow",
    },
    "quiet_hours.start": {
        "holds": "{start}-{end} local time holds in {zones}",
        "outside": "outside {start}-{end} local time in at least one of {zones}",
    },
    "calls.days_after_conversation": "a conversation about this debt on {on} (day 1); calls resume on {resume}",
    **{
        cap: {
            "reached": "{most} {channel} contacts on this debt in the {days} days ending {until}",
            "below": "fewer than {most} in {days} days",
        }
        for cap in (
            "calls.max_per_7_days",
            "email.max_per_7_days",
            "sms.max_per_7_days",
            "letter.max_per_7_days",
        )
    },
    # what a message may carry (policy.content) ----------------------------------------------
    "content.forbidden": {
        "carries": "{surface} must not carry: {names}",
        "clean": "{surface} carries nothing clinical",
    },
    "voicemail.limited_content": {
        "missing": "missing: {fields}",
        "extra": "not allowed in a limited-content voicemail: {fields}",
        "ok": "a limited-content voicemail",
    },
    # the insurer's wait (policy.insurer) ----------------------------------------------------
    "record.claim_status": {
        "self_pay": "self-pay",
        "decided": "claim {status}: patient responsibility only",
    },
    **{
        wait: {
            "waited": "claim {status} since {filed}: waited {days} days; the patient may be billed",
            "waiting": "claim {status}: the patient is not asked for what the insurer may pay before {until}",
        }
        for wait in ("insurer.pending_wait_days", "insurer.appeal_wait_days")
    },
    # fees and interest (relief.fees) ------------------------------------------------------
    "creditor.fees": "{what} are off (the default)",
    "no.reminder_fee_min_days_after_due": "no fee before {before} ({days} days after the due date)",
    "no.max_fee_notices": "{sent} fee-bearing notices already sent (at most {most})",
    "no.inkassosats": "inkassosats {sats} kr",
    "no.reminder_fee_divisor": "fee 1/{divisor} of the inkassosats: {fee}",
    "de.base_rate_percent": "{start}..{end}: {rate} % a year",
    "de.default_interest_points": "base rate + {points} points, {basis}-day year",
    "de.first_reminder_free": "the reminder that creates default is free",
    "de.reminder_cost_max": {
        "capped": "actual cost {cost} capped at {cap}",
        "actual": "actual cost only",
    },
    "bg.ecb_mro_percent": "ECB main refinancing rate",
    "bg.late_interest_points": "MRO + {points} points, {basis}-day year",
    # gates before placement or credit reporting (relief.gates, relief.pauses) -----------------
    "dispute.freezes_collection": {
        "handoff": "dispute {dispute} is open: no handoff until it is resolved",
        "outreach": "dispute {dispute} is open: collection outreach is frozen",
    },
    "dispute.validation_stops_collection": "dispute {dispute}: collection stops until verification is sent",
    "gate.plan_blocks": {
        "gate": "plan {plan} is {status}",
        "reminders": "plan {plan} is {status}: instalment reminders only",
    },
    "gate.application_blocks": {
        "gate": "assistance application {application} is {status}: collection actions are suspended",
        "awaits": "assistance application {application} awaits a decision",
    },
    "credit.paid_reportable": "paid debts are never reported",
    "record.balance": "nothing is owed",
    "record.first_statement": "no first statement recorded: the waiting periods cannot start",
    **{
        notice: {
            "none": "no pre-placement notice sent: send one, then wait {days} days (earliest {until})",
            "wait": "notice of {sent}: wait until {until}",
            "gave": "notice of {sent} gave {days} days",
        }
        for notice in ("gate.pre_placement_notice_days", "r501.notice_days_before_eca")
    },
    "de.handoff_requires_consent": {
        "none": "no recorded consent to hand the medical claim to a third party: record it first",
        "withdrawn": "the patient withdrew the consent on {on}",
        "future": "the recorded consent is dated {on}, after today",
        "given": "consent given on {on} ({method})",
    },
    "no.inkassovarsel_days": {
        "none": "no inkassovarsel sent: send one, then wait {days} days",
        "wait": "inkassovarsel of {sent}: the patient may pay until {until}",
        "passed": "inkassovarsel of {sent}: {days} days passed",
    },
    "pack.credit_reporting": "this pack has no credit-reporting rules: carecollect does not report",
    "credit.min_balance_usd": "balance {balance} is under {floor}: never reported",
    "credit.passive_wait_days": {
        "none_yet": "no conversation and no message yet: send one and wait {days} days",
        "undeliverable": "message of {sent} was reported undeliverable on {returned}: send a message "
        "that reaches the consumer and wait {days} days (earliest {until})",
    },
    # financial assistance (relief.assistance) ------------------------------------------------
    "creditor.assistance.presumptive": "presumptively eligible ({basis}): free care without an income check",
    "fpl": "household of {household} at {percent} % of the poverty guideline",
    "creditor.assistance.free": "free care at or below {percent} %",
    "creditor.assistance.tier": "{discount} % discount up to {up_to} %",
    "creditor.assistance.none": "above every tier of the policy; a plan may still help",
    # default under German law (relief.payment_default) -----------------------------------------
    "de.default_days_after_invoice": "the invoice stated the {days}-day rule; due {due}, received {received}: "
    "the last day to pay was {last}",
    "record.reminder_received": "a reminder received on {received}, after the due date {due}",
    # disputes (relief.disputes) --------------------------------------------------------------
    "creditor.dispute.authority": "{level} may grant a {kind} of {amount}",
    "dispute.follow_up_business_days": "follow-up call on {on} to ask whether the patient is satisfied",
    "creditor.dispute.follow_up": "follow-up call on {on} to ask whether the patient is satisfied "
    "({days} business days)",
    "nsa.dispute_threshold_usd": "bill exceeds the estimate by {difference} (threshold {threshold})",
    "nsa.dispute_window_days": "dispute window runs to {until}",
    # payment plans (relief.plans, the run's instalments) ---------------------------------------
    "plan.max_income_percent": {
        "unknown": "income not known: ask the patient what they can afford; only the minimum "
        "instalment and maximum term apply",
        "cap": "instalments at most {percent} % of gross monthly income",
        "no_income": "no income to pay from: screen for financial assistance",
    },
    "state.*.plan.max_income_percent": "{state} caps a {bill} bill's instalment at {percent} % of income",
    "plan.interest_allowed": "interest on plans is not allowed in this pack; plans are interest-free",
    "state.*.plan.max_interest_percent": "interest lowered from {requested} % to the state cap {cap} %",
    "creditor.plan_interest": "interest {percent} % a year on the declining balance, turned on by the creditor",
    "creditor.incentive": "{kind} discount of {discount} if paid by {until}",
    "plan.min_instalment": "the minimum instalment is lowered to the affordability cap",
    "state.*.plan.paid_after_payments": {
        "offer": "after {payments} payments of {cap} the rest, {rest}, counts as paid",
        "done": "{payments} payments made: the remaining {remaining} counts as paid",
    },
    "plan.max_term_months": "no plan of at most {months} months fits the cap of {cap}: screen for "
    "financial assistance or a hardship arrangement",
    "record.plan_paused": "paused for hardship: nothing is due",
    "plan.missed_before_default": "{missed} instalments missed (threshold {threshold}) after reminders and grace",
    "plan.reminder_before_default": "instalment {instalment} is overdue: a friendly reminder comes first",
    "plan.grace_days": {
        "runs": "grace period of {days} days runs to {until}",
        "missed": "instalment {instalment} unpaid after the {days}-day grace period and a reminder",
        "run_missed": "instalment {instalment} of plan {plan} unpaid {days} days after it fell due",
    },
    "plan.hardship_pause_max_months": {
        "granted": "hardship pause of {months} months",
        "escalate": "pause of {months} months exceeds {most}: record the escalation",
    },
    "record.reamortised": "{remaining} re-amortised over {count} instalments",
    "plan.charge_disputed": "instalment {instalment} of plan {plan} is not charged while dispute {dispute} is open",
    "plan.mandate_charge": "instalment {instalment} of plan {plan} fell due on {due}; charged to the mandate "
    "at {provider}",
}


@functools.lru_cache(maxsize=4096)  # a run asks for the same few templates again and again
def template(rule_id: str, case: object = None) -> str | None:
    """The template for a reason of ``rule_id`` (``case`` picks one of several), or ``None``.

    :param rule_id: the rule's id; without an entry of its own, its longest dotted prefix
        that has one (``state.XX.<name>``: also ``state.*.<name>``), then the shared cases.
    :param case: the reason's ``case`` parameter, for a rule with several texts.
    """
    keys = [rule_id]
    if rule_id.startswith("state."):  # a US state's rule, "state.CO.<name>": the entry "state.*.<name>"
        keys.append("state.*." + rule_id.split(".", 2)[-1])
    for key in keys:
        while key:
            entry = REASON_TEXTS.get(key)
            if isinstance(entry, str) and case is None:
                return entry
            if isinstance(entry, Mapping) and case is not None and str(case) in entry:
                return entry[str(case)]
            key = key.rpartition(".")[0]
    shared = REASON_TEXTS["*"]
    assert isinstance(shared, Mapping)
    return shared.get(str(case)) if case is not None else None
