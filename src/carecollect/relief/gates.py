"""The gates before an agency, a sale or a credit report: "may we, now?", with every reason.

:func:`gate` checks one :class:`~carecollect.relief.snapshot.GateSnapshot`
against every rule that applies to the action in the pack, and returns a
:class:`GateDecision`: allowed or not, each reason (rule id, source,
message), and the earliest date the action could be allowed if only waiting
periods stand in the way (``None`` when something else must change first: a
dispute resolved, consent recorded, a plan ended).

Checked, in order:

* no open dispute (seed 001; FDCPA 1692g(b) for a collector's validation dispute;
  45 CFR 149.620 for a No Surprises Act dispute);
* no current payment plan, no pending financial-assistance application
  (26 CFR 1.501(r)-6(c) in the US);
* a balance to collect, and the insurer has had its time;
* the account's age: the pack's days after the first statement (501(r): 120),
  and state rules selected by ``creditor.state`` (New York 180 days for any
  action, Maryland 240 days before credit reporting);
* a pre-placement notice sent, and its days passed (501(r): 30);
* Germany: the patient's recorded consent (StGB § 203; BGH VIII ZR 296/90);
* Norway: an inkassovarsel sent, and its 14 days passed (inkassoloven § 9);
* credit reports: never under $500, not before a year, paid debts never, and
  a collector's 14-day wait after a message when it has not spoken to the
  consumer, with no notice of undeliverability in that wait (CDIA; 12 CFR 1006.30(a)).

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.creditors import Creditor, CreditorRole
>>> from carecollect.invoices import Invoice, InvoiceLine, InvoiceStatus
>>> from carecollect.relief.gates import GateAction, gate
>>> from carecollect.relief.snapshot import GateSnapshot
>>> inv = Invoice("INV-1", "A-1", "USD", (InvoiceLine("99213", "Visit", Money("900.00", "USD"), dt.date(2026, 1, 5)),),
...               dt.date(2026, 1, 6), dt.date(2026, 2, 5), first_statement_date=dt.date(2026, 1, 6),
...               status=InvoiceStatus.OPEN)
>>> clinic = Creditor(id="H-1", name="Hospital", role=CreditorRole.PROVIDER, country="US", nonprofit=True)
>>> snap = GateSnapshot("A-1", Money("900.00", "USD"), invoices=(inv,))
>>> d = gate(snap, GateAction.PLACE_WITH_AGENCY, now=dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc),
...          pack=get_pack("us"), creditor=clinic)
>>> d.allowed, d.earliest
(False, datetime.date(2026, 5, 6))
>>> [r.rule_id for r in d.blocking]
['r501.notification_period_days', 'r501.notice_days_before_eca']
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import attrs

from ..creditors import Creditor
from ..disputes import DisputeReason
from ..money import Money
from ..outreach import OutreachPurpose
from ..policy.packs import PolicyPack
from ..timekeeping import require_aware
from .insurer import billable_to_patient
from .plans import state_rule_id, state_value
from .reasons import Outcome, Reason, Verdict, note, rule_reason
from .snapshot import GateSnapshot

__all__ = ["GateAction", "GateDecision", "gate", "may_place"]


class GateAction(enum.Enum):
    """What the creditor wants to do with the account."""

    #: Hand the account to a collection agency.
    PLACE_WITH_AGENCY = "place_with_agency"
    #: Sell the debt to another party.
    SELL = "sell"
    #: Report the debt to a credit bureau.
    CREDIT_REPORT = "credit_report"


@attrs.frozen
class GateDecision:
    """The answer of :func:`gate`.

    :param action: the :class:`GateAction` asked about.
    :param allowed: ``True`` only when no reason blocks.
    :param reasons: every rule checked, in order.
    :param earliest: the first day the action could be allowed if only waiting periods block
        (today when allowed; ``None`` when something other than time must change).
    """

    action: GateAction
    allowed: bool
    reasons: tuple[Reason, ...]
    earliest: dt.date | None

    @property
    def blocking(self) -> tuple[Reason, ...]:
        """The reasons that block."""
        return tuple(r for r in self.reasons if r.outcome.blocks)

    def as_decision(self) -> Verdict:
        """The same answer as a :class:`~carecollect.policy.explain.Verdict` (for audit logs)."""
        make: Any = Verdict  # its attrs converter=tuple confuses mypy's attrs plugin
        decision: Verdict = make(self.allowed, self.reasons)
        return decision


class _Collector:
    """Collects reasons and the dates that would lift deferring ones."""

    def __init__(self) -> None:
        self.reasons: list[Reason] = []
        self.dates: list[dt.date] = []
        self.denied = False

    def allow(self, reason: Reason) -> None:
        self.reasons.append(reason)

    def deny(self, reason: Reason) -> None:
        self.reasons.append(reason)
        self.denied = True

    def defer(self, reason: Reason, until: dt.date) -> None:
        self.reasons.append(reason)
        self.dates.append(until)


def _age(c: _Collector, pack: PolicyPack, rule_id: str, start: dt.date, today: dt.date, what: str) -> None:
    days: int = pack.value(rule_id, on=today)
    until = start + dt.timedelta(days=days)
    if today < until:
        c.defer(
            rule_reason(
                pack,
                rule_id,
                today,
                Outcome.DEFER,
                case="age_wait",
                what=what,
                until=until.isoformat(),
                days=days,
                start=start.isoformat(),
            ),
            until,
        )
    else:
        c.allow(rule_reason(pack, rule_id, today, Outcome.ALLOW, case="age_passed", what=what, days=days))


def _stricter(pack: PolicyPack, today: dt.date, legal: str, house: str) -> str:
    """Of two waiting-period rules, the one that waits longer (``legal`` on a tie)."""
    return house if pack.value(house, on=today) > pack.value(legal, on=today) else legal


def gate(
    snapshot: GateSnapshot, action: GateAction, *, now: dt.datetime, pack: PolicyPack, creditor: Creditor
) -> GateDecision:
    """May ``action`` be taken on the account now? Every rule of the pack that applies is checked.

    :param snapshot: the account's records.
    :param action: :class:`GateAction`.
    :param now: the moment of the decision (aware; its calendar date is used, so pass it in the creditor's zone).
    :param pack: the jurisdiction's rules.
    :param creditor: the creditor (role, nonprofit flag, state).
    :returns: a :class:`GateDecision`.
    """
    require_aware(now, f"GateSnapshot {snapshot.account_id}", "now")
    today = now.date()
    c = _Collector()
    cur = snapshot.balance.currency

    # -- things only a change of facts lifts ---------------------------------------------
    for d in snapshot.open_disputes():
        c.deny(
            rule_reason(
                pack,
                "dispute.freezes_collection",
                today,
                Outcome.DENY,
                case="handoff",
                dispute=d.id,
            )
        )
        if (
            d.reason is DisputeReason.VALIDATION
            and creditor.role.is_collector
            and "dispute.validation_stops_collection" in pack.rules
        ):
            c.deny(
                rule_reason(
                    pack,
                    "dispute.validation_stops_collection",
                    today,
                    Outcome.DENY,
                    dispute=d.id,
                )
            )
    for p in snapshot.current_plans():
        c.deny(
            rule_reason(
                pack, "gate.plan_blocks", today, Outcome.DENY, case="gate", plan=p.id, status=p.status.value
            )
        )
    for a in snapshot.pending_applications():
        c.deny(
            rule_reason(
                pack,
                "gate.application_blocks",
                today,
                Outcome.DENY,
                case="gate",
                application=a.id,
                status=a.status.value,
            )
        )
    if not snapshot.balance.is_positive():
        if action is GateAction.CREDIT_REPORT and "credit.paid_reportable" in pack.rules:
            c.deny(rule_reason(pack, "credit.paid_reportable", today, Outcome.DENY))
        else:
            c.deny(note("record.balance", "account record", Outcome.DENY))

    # -- the insurer's time -----------------------------------------------------------------
    for inv in snapshot.invoices:
        wait = billable_to_patient(inv, today=today, pack=pack)
        if wait.waiting and wait.wait_until is not None:
            for r in wait.reasons:
                c.defer(r, wait.wait_until)

    # -- age ----------------------------------------------------------------------------------
    first = snapshot.first_statement
    if first is None:
        c.deny(note("record.first_statement", "invoice record", Outcome.DENY))
    else:
        age_rule = "gate.min_days_after_first_statement"
        if creditor.nonprofit and "r501.notification_period_days" in pack.rules:
            # 501(r) binds a nonprofit hospital; a house rule that waits longer still wins.
            age_rule = _stricter(pack, today, "r501.notification_period_days", age_rule)
        what = "501(r) notification period" if age_rule.startswith("r501.") else "account age"
        _age(c, pack, age_rule, first, today, what)
        if state_value(pack, creditor.state, "min_days_before_action", on=today) is not None:
            _age(
                c,
                pack,
                state_rule_id(creditor.state, "min_days_before_action"),
                first,
                today,
                f"{creditor.state} waiting period",
            )
        if (
            action is GateAction.CREDIT_REPORT
            and state_value(pack, creditor.state, "credit_report_min_days", on=today) is not None
        ):
            _age(
                c,
                pack,
                state_rule_id(creditor.state, "credit_report_min_days"),
                first,
                today,
                f"{creditor.state} credit-reporting wait",
            )

    # -- the pre-placement notice -----------------------------------------------------------
    if pack.value("gate.pre_placement_notice_required", on=today):
        rid = "gate.pre_placement_notice_days"
        if creditor.nonprofit and "r501.notice_days_before_eca" in pack.rules:
            rid = _stricter(pack, today, "r501.notice_days_before_eca", rid)
        days: int = pack.value(rid, on=today)
        notice = snapshot.last_notice(OutreachPurpose.PRE_PLACEMENT_NOTICE, OutreachPurpose.ECA_NOTICE)
        if notice is None:
            until = today + dt.timedelta(days=days)
            c.defer(
                rule_reason(
                    pack,
                    rid,
                    today,
                    Outcome.DEFER,
                    case="none",
                    days=days,
                    until=until.isoformat(),
                ),
                until,
            )
        else:
            until = notice.sent_on + dt.timedelta(days=days)
            if notice.deadline is not None and notice.deadline > until:
                until = notice.deadline
            if today < until:
                c.defer(
                    rule_reason(
                        pack,
                        rid,
                        today,
                        Outcome.DEFER,
                        case="wait",
                        sent=notice.sent_on.isoformat(),
                        until=until.isoformat(),
                    ),
                    until,
                )
            else:
                c.allow(
                    rule_reason(
                        pack,
                        rid,
                        today,
                        Outcome.ALLOW,
                        case="gave",
                        sent=notice.sent_on.isoformat(),
                        days=days,
                    )
                )

    # -- Germany: consent ---------------------------------------------------------------------
    if "de.handoff_requires_consent" in pack.rules and pack.value("de.handoff_requires_consent", on=today):
        consent = snapshot.handoff_consent
        consent_rule = "de.handoff_requires_consent"
        if consent is None:
            c.deny(rule_reason(pack, consent_rule, today, Outcome.DENY, case="none"))
        elif consent.withdrawn_at is not None and consent.withdrawn_at <= now:
            withdrawn = consent.withdrawn_at.date().isoformat()
            c.deny(rule_reason(pack, consent_rule, today, Outcome.DENY, case="withdrawn", on=withdrawn))
        elif consent.given_at > now:
            dated = consent.given_at.date().isoformat()
            c.deny(rule_reason(pack, consent_rule, today, Outcome.DENY, case="future", on=dated))
        else:
            given, method = consent.given_at.date().isoformat(), consent.method.value
            c.allow(
                rule_reason(pack, consent_rule, today, Outcome.ALLOW, case="given", on=given, method=method)
            )

    # -- Norway: inkassovarsel ------------------------------------------------------------------
    if "no.inkassovarsel_days" in pack.rules:
        days = pack.value("no.inkassovarsel_days", on=today)
        varsel = snapshot.last_notice(OutreachPurpose.INKASSOVARSEL)
        if varsel is None:
            until = today + dt.timedelta(days=days)
            c.defer(
                rule_reason(
                    pack,
                    "no.inkassovarsel_days",
                    today,
                    Outcome.DEFER,
                    case="none",
                    days=days,
                ),
                until,
            )
        else:
            until = varsel.sent_on + dt.timedelta(days=days)
            if varsel.deadline is not None and varsel.deadline > until:
                until = varsel.deadline
            if today <= until:
                c.defer(
                    rule_reason(
                        pack,
                        "no.inkassovarsel_days",
                        today,
                        Outcome.DEFER,
                        case="wait",
                        sent=varsel.sent_on.isoformat(),
                        until=until.isoformat(),
                    ),
                    until + dt.timedelta(days=1),
                )
            else:
                c.allow(
                    rule_reason(
                        pack,
                        "no.inkassovarsel_days",
                        today,
                        Outcome.ALLOW,
                        case="passed",
                        sent=varsel.sent_on.isoformat(),
                        days=days,
                    )
                )

    # -- credit reporting -------------------------------------------------------------------------
    if action is GateAction.CREDIT_REPORT:
        _credit(c, snapshot, today, pack, creditor, cur)

    blocking = [r for r in c.reasons if r.outcome.blocks]
    allowed = not blocking
    if allowed:
        earliest: dt.date | None = today
    elif c.denied:
        earliest = None
    else:
        earliest = max(c.dates)
    return GateDecision(action, allowed, tuple(c.reasons), earliest)


def _credit(
    c: _Collector, snapshot: GateSnapshot, today: dt.date, pack: PolicyPack, creditor: Creditor, cur: str
) -> None:
    if "credit.min_balance_usd" not in pack.rules:
        c.deny(note("pack.credit_reporting", f"policy pack {pack.key!r}", Outcome.DENY))
        return
    floor = Money.of(pack.value("credit.min_balance_usd", on=today), cur)
    if snapshot.balance.is_positive() and snapshot.balance < floor:
        c.deny(
            rule_reason(
                pack,
                "credit.min_balance_usd",
                today,
                Outcome.DENY,
                balance=str(snapshot.balance),
                floor=str(floor),
            )
        )
    since = snapshot.delinquent_since
    if since is not None:
        _age(c, pack, "credit.min_days_delinquent", since, today, "medical debt delinquency")
    if creditor.role.is_collector and snapshot.spoke_with_consumer_on is None:
        days: int = pack.value("credit.passive_wait_days", on=today)
        if snapshot.last_message_on is None:
            until = today + dt.timedelta(days=days)
            c.defer(
                rule_reason(
                    pack,
                    "credit.passive_wait_days",
                    today,
                    Outcome.DEFER,
                    case="none_yet",
                    days=days,
                ),
                until,
            )
        else:
            sent = snapshot.last_message_on
            window_end = sent + dt.timedelta(days=days)
            returned = sorted(d for d in snapshot.undeliverable_on if sent <= d <= window_end)
            if returned:
                # 1006.30(a)(2): a notice of undeliverability within the period means the message
                # did not reach the consumer: a new message must go out, and its own wait pass.
                until = today + dt.timedelta(days=days)
                c.defer(
                    rule_reason(
                        pack,
                        "credit.passive_wait_days",
                        today,
                        Outcome.DEFER,
                        case="undeliverable",
                        sent=sent.isoformat(),
                        returned=returned[0].isoformat(),
                        days=days,
                        until=until.isoformat(),
                    ),
                    until,
                )
            else:
                _age(c, pack, "credit.passive_wait_days", sent, today, "wait for undeliverability")


def may_place(
    snapshot: GateSnapshot, *, now: dt.datetime, pack: PolicyPack, creditor: Creditor
) -> GateDecision:
    """Shorthand for ``gate(snapshot, GateAction.PLACE_WITH_AGENCY, ...)``.

    :param snapshot: the account's records.
    :param now: the moment of the decision (aware).
    :param pack: the policy pack (the rules in force on the day apply).
    :param creditor: the creditor (role, nonprofit flag, state).
    """
    return gate(snapshot, GateAction.PLACE_WITH_AGENCY, now=now, pack=pack, creditor=creditor)
