"""Gates before an agency, a sale or a credit report, and the collection pause predicate (issue 4)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.creditors import Creditor, CreditorRole
from carecollect.disputes import Dispute, DisputeReason, DisputeStatus
from carecollect.handoff_consent import ConsentMethod, HandoffConsent
from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose
from carecollect.plans import PaymentPlan, PlanStatus, build_schedule
from carecollect.policy import get_pack
from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication
from carecollect.relief.gates import GateAction, gate, may_place
from carecollect.relief.pauses import collection_paused
from carecollect.relief.snapshot import GateSnapshot, SentNotice

UTC = dt.UTC
US, NO, DE, BG, DEFAULT = (get_pack(k) for k in ("us", "no", "de", "bg", "default"))
FIRST = dt.date(2026, 1, 6)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def consent(given: dt.datetime) -> HandoffConsent:
    return HandoffConsent(given, ConsentMethod.WRITTEN)


consent_of = consent


def cred(
    *,
    country: str = "US",
    state: str | None = None,
    nonprofit: bool = False,
    role: CreditorRole = CreditorRole.PROVIDER,
) -> Creditor:
    return Creditor(id="C-1", name="Creditor", role=role, country=country, state=state, nonprofit=nonprofit)


def invoice(cur: str = "USD", amount: str = "900.00", claim: ClaimStatus = ClaimStatus.NONE) -> Invoice:
    line = InvoiceLine("X1", "Care", Money(amount, cur), dt.date(2026, 1, 5))
    return Invoice(
        "INV-1",
        "A-1",
        cur,
        (line,),
        dt.date(2026, 1, 6),
        dt.date(2026, 2, 5),
        first_statement_date=FIRST,
        status=InvoiceStatus.OPEN,
        insurance=Insurance(claim, submitted_on=dt.date(2026, 1, 6)),
    )


def snap(cur: str = "USD", amount: str = "900.00", **kw: object) -> GateSnapshot:
    inv = kw.pop("inv", None) or invoice(cur, amount)
    return GateSnapshot("A-1", Money(amount, cur), invoices=(inv,), **kw)  # type: ignore[arg-type]


def notice(
    day: dt.date,
    purpose: OutreachPurpose = OutreachPurpose.PRE_PLACEMENT_NOTICE,
    deadline: dt.date | None = None,
) -> SentNotice:
    return SentNotice(purpose, day, deadline)


def dispute(
    status: DisputeStatus = DisputeStatus.OPEN,
    reason: DisputeReason = DisputeReason.QUALITY_OF_SERVICE,
    invoice_id: str | None = "INV-1",
) -> Dispute:
    return Dispute(
        id="D-1",
        account_id="A-1",
        invoice_id=invoice_id,
        reason=reason,
        opened_at=at(dt.date(2026, 3, 1)),
        status=status,
    )


def test_501r_nonprofit_120_days_and_30_day_notice() -> None:
    c = cred(nonprofit=True)
    s = snap(notices=(notice(dt.date(2026, 4, 10)),))
    d = may_place(s, now=at(dt.date(2026, 5, 5)), pack=US, creditor=c)
    assert not d.allowed and d.earliest == dt.date(2026, 5, 10)
    assert [r.rule_id for r in d.blocking] == ["r501.notification_period_days", "r501.notice_days_before_eca"]
    d = may_place(s, now=at(dt.date(2026, 5, 10)), pack=US, creditor=c)
    assert d.allowed and d.earliest == dt.date(2026, 5, 10)
    assert "[secondary source" in d.reasons[0].source
    assert d.as_decision().allowed


def test_nonprofit_house_rules_that_wait_longer_still_apply() -> None:
    house = US.with_house_rules(
        {"gate.min_days_after_first_statement": 180, "gate.pre_placement_notice_days": 45}
    )
    s = snap(notices=(notice(dt.date(2026, 4, 10)),))
    d = may_place(s, now=at(dt.date(2026, 5, 20)), pack=house, creditor=cred(nonprofit=True))
    # 501(r) alone would allow 10 May; the house waits 180 days (5 July) and 45 days after the notice.
    assert [r.rule_id for r in d.blocking] == [
        "gate.min_days_after_first_statement",
        "gate.pre_placement_notice_days",
    ]
    assert d.earliest == FIRST + dt.timedelta(days=180) == dt.date(2026, 7, 5)
    assert may_place(s, now=at(dt.date(2026, 7, 5)), pack=house, creditor=cred(nonprofit=True)).allowed


def test_notice_deadline_extends_the_wait() -> None:
    s = snap(
        notices=(notice(dt.date(2026, 4, 10), OutreachPurpose.ECA_NOTICE, deadline=dt.date(2026, 6, 1)),)
    )
    d = may_place(s, now=at(dt.date(2026, 5, 20)), pack=US, creditor=cred(nonprofit=True))
    assert d.earliest == dt.date(2026, 6, 1)


def test_missing_notice_defers_by_its_period() -> None:
    d = may_place(snap(), now=at(dt.date(2026, 6, 1)), pack=US, creditor=cred())
    assert not d.allowed and d.earliest == dt.date(2026, 7, 1)
    assert d.blocking[0].rule_id == "gate.pre_placement_notice_days"


def test_new_york_180_days() -> None:
    s = snap(notices=(notice(dt.date(2026, 4, 1)),))
    d = gate(s, GateAction.SELL, now=at(dt.date(2026, 6, 1)), pack=US, creditor=cred(state="NY"))
    assert not d.allowed and d.earliest == dt.date(2026, 7, 5)  # 6 January + 180 days
    assert d.blocking[0].rule_id == "state.NY.min_days_before_action"
    assert gate(s, GateAction.SELL, now=at(dt.date(2026, 7, 5)), pack=US, creditor=cred(state="NY")).allowed


@pytest.mark.parametrize(
    ("blocker", "rule"),
    [
        ({"disputes": (dispute(),)}, "dispute.freezes_collection"),
        (
            {
                "plans": (
                    PaymentPlan(
                        "PL-1",
                        "A-1",
                        ("INV-1",),
                        Money("900.00", "USD"),
                        build_schedule(Money("900.00", "USD"), 3, first_due=dt.date(2026, 3, 1)),
                        at(dt.date(2026, 2, 1)),
                        PlanStatus.PAUSED,
                    ),
                )
            },
            "gate.plan_blocks",
        ),
        (
            {"applications": (AssistanceApplication("FA-1", "A-1", dt.date(2026, 5, 1)),)},
            "gate.application_blocks",
        ),
    ],
)
def test_dispute_plan_or_application_blocks_without_a_date(blocker: dict[str, object], rule: str) -> None:
    s = snap(notices=(notice(dt.date(2026, 4, 1)),), **blocker)
    d = may_place(s, now=at(dt.date(2026, 8, 1)), pack=US, creditor=cred())
    assert not d.allowed and d.earliest is None and [r.rule_id for r in d.blocking] == [rule]


def test_resolved_dispute_and_decided_application_do_not_block() -> None:
    s = snap(
        notices=(notice(dt.date(2026, 4, 1)),),
        disputes=(dispute(DisputeStatus.RESOLVED),),
        applications=(AssistanceApplication("FA-1", "A-1", dt.date(2026, 5, 1), ApplicationStatus.DENIED),),
    )
    assert may_place(s, now=at(dt.date(2026, 8, 1)), pack=US, creditor=cred()).allowed


def test_collector_validation_dispute_stops_collection() -> None:
    s = snap(notices=(notice(dt.date(2026, 4, 1)),), disputes=(dispute(reason=DisputeReason.VALIDATION),))
    d = may_place(
        s, now=at(dt.date(2026, 8, 1)), pack=US, creditor=cred(role=CreditorRole.THIRD_PARTY_COLLECTOR)
    )
    assert "dispute.validation_stops_collection" in [r.rule_id for r in d.blocking]


def test_insurer_pending_defers() -> None:
    s = snap(inv=invoice(claim=ClaimStatus.APPEALED), notices=(notice(dt.date(2026, 1, 20)),))
    d = may_place(s, now=at(dt.date(2026, 3, 1)), pack=DEFAULT, creditor=cred())
    assert d.blocking[0].rule_id == "insurer.appeal_wait_days"
    assert d.earliest == dt.date(2026, 5, 6)  # the default pack's 120 days after the first statement


def test_credit_report_limits() -> None:
    ok_notice = (notice(dt.date(2026, 4, 1)),)
    small = snap(amount="499.99", notices=ok_notice)
    d = gate(small, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 1)), pack=US, creditor=cred())
    assert not d.allowed and d.earliest is None and d.blocking[0].rule_id == "credit.min_balance_usd"
    at_floor = snap(amount="500.00", notices=ok_notice)
    d = gate(at_floor, GateAction.CREDIT_REPORT, now=at(dt.date(2026, 9, 1)), pack=US, creditor=cred())
    assert d.earliest == dt.date(2027, 2, 5)  # a year after the 5 February 2026 due date
    assert gate(
        at_floor, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 2, 5)), pack=US, creditor=cred()
    ).allowed
    paid = GateSnapshot("A-1", Money("0.00", "USD"), invoices=(invoice(),), notices=ok_notice)
    d = gate(paid, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 1)), pack=US, creditor=cred())
    assert not d.allowed and d.blocking[0].rule_id == "credit.paid_reportable"


def test_maryland_240_days_before_credit_reporting() -> None:
    s = snap(notices=(notice(dt.date(2026, 4, 1)),))
    d = gate(s, GateAction.CREDIT_REPORT, now=at(dt.date(2026, 8, 1)), pack=US, creditor=cred(state="MD"))
    assert "state.MD.credit_report_min_days" in [r.rule_id for r in d.blocking]
    assert d.earliest == dt.date(2027, 2, 5)  # the one-year CDIA wait is later than 240 days (3 September)
    assert may_place(s, now=at(dt.date(2026, 8, 1)), pack=US, creditor=cred(state="MD")).allowed


def test_collector_waits_14_days_after_a_message() -> None:
    collector = cred(role=CreditorRole.THIRD_PARTY_COLLECTOR)
    base = {"notices": (notice(dt.date(2026, 4, 1)),)}
    silent = snap(**base)
    d = gate(silent, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 1)), pack=US, creditor=collector)
    assert d.blocking[0].rule_id == "credit.passive_wait_days" and d.earliest == dt.date(2027, 3, 15)
    sent = snap(last_message_on=dt.date(2027, 2, 19), **base)
    assert gate(
        sent, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 5)), pack=US, creditor=collector
    ).allowed
    early = gate(sent, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 4)), pack=US, creditor=collector)
    assert early.earliest == dt.date(2027, 3, 5)  # 19 February + 14 days
    spoke = snap(spoke_with_consumer_on=dt.date(2027, 2, 1), **base)
    assert gate(
        spoke, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 1)), pack=US, creditor=collector
    ).allowed


def test_credit_report_refused_where_pack_has_no_rules() -> None:
    s = snap("EUR", notices=(notice(dt.date(2026, 1, 10)),), handoff_consent=consent(at(dt.date(2026, 1, 6))))
    d = gate(s, GateAction.CREDIT_REPORT, now=at(dt.date(2027, 3, 1)), pack=DE, creditor=cred(country="DE"))
    assert not d.allowed and d.blocking[0].rule_id == "pack.credit_reporting"


def test_germany_needs_recorded_consent() -> None:
    s = snap("EUR", notices=(notice(dt.date(2026, 2, 1)),))
    d = may_place(s, now=at(dt.date(2026, 4, 1)), pack=DE, creditor=cred(country="DE"))
    assert not d.allowed and d.earliest is None
    assert d.blocking[0].rule_id == "de.handoff_requires_consent" and "203" in d.blocking[0].source
    consented = snap(
        "EUR", notices=(notice(dt.date(2026, 2, 1)),), handoff_consent=consent(at(dt.date(2026, 1, 5)))
    )
    assert may_place(consented, now=at(dt.date(2026, 4, 1)), pack=DE, creditor=cred(country="DE")).allowed


def test_norway_inkassovarsel_14_days() -> None:
    c = cred(country="NO")
    none = may_place(snap("NOK"), now=at(dt.date(2026, 3, 2)), pack=NO, creditor=c)
    assert none.blocking[0].rule_id == "no.inkassovarsel_days" and none.earliest == dt.date(2026, 3, 16)
    s = snap("NOK", notices=(notice(dt.date(2026, 3, 2), OutreachPurpose.INKASSOVARSEL),))
    d = may_place(
        s, now=at(dt.date(2026, 3, 16)), pack=NO, creditor=c
    )  # the 14th day: the patient may still pay
    assert not d.allowed and d.earliest == dt.date(2026, 3, 17)
    assert may_place(s, now=at(dt.date(2026, 3, 17)), pack=NO, creditor=c).allowed


def test_no_first_statement_blocks() -> None:
    inv = Invoice(
        "INV-1",
        "A-1",
        "EUR",
        (InvoiceLine("X", "Care", Money("80.00", "EUR"), dt.date(2026, 1, 5)),),
        dt.date(2026, 1, 6),
        dt.date(2026, 2, 5),
        status=InvoiceStatus.OPEN,
    )
    s = GateSnapshot("A-1", Money("80.00", "EUR"), invoices=(inv,), notices=(notice(dt.date(2026, 2, 1)),))
    d = may_place(s, now=at(dt.date(2026, 6, 1)), pack=BG, creditor=cred(country="BG"))
    assert not d.allowed and d.blocking[0].rule_id == "record.first_statement"


def test_collection_paused_predicate() -> None:
    now = at(dt.date(2026, 3, 10))
    assert collection_paused(snap(), now=now, pack=US) == (False, ())
    paused, why = collection_paused(
        snap(disputes=(dispute(invoice_id="INV-2"),)), invoice_id="INV-1", now=now, pack=US
    )
    assert not paused  # the dispute is about another invoice
    paused, why = collection_paused(
        snap(disputes=(dispute(invoice_id=None),)), invoice_id="INV-1", now=now, pack=US
    )
    assert paused and why[0].rule_id == "dispute.freezes_collection"
    pending = snap(inv=invoice(claim=ClaimStatus.PENDING))
    paused, why = collection_paused(pending, now=at(dt.date(2026, 3, 6)), pack=US)  # filed 6 January: 60 days
    assert paused and why[0].rule_id == "insurer.pending_wait_days"
    assert not collection_paused(pending, now=at(dt.date(2026, 3, 7)), pack=US)[0]
    paused, why = collection_paused(
        snap(applications=(AssistanceApplication("FA-1", "A-1", dt.date(2026, 3, 1)),)), now=now, pack=US
    )
    assert paused and why[0].rule_id == "gate.application_blocks"


# -- property: no gate opens while a dispute is open -----------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    pack_key=st.sampled_from(["default", "us", "no", "de", "bg"]),
    action=st.sampled_from(list(GateAction)),
    days=st.integers(min_value=0, max_value=2000),
    state=st.sampled_from([None, "CO", "MD", "NY"]),
    nonprofit=st.booleans(),
    role=st.sampled_from(list(CreditorRole)),
    reason=st.sampled_from(list(DisputeReason)),
    account_wide=st.booleans(),
    amount=st.sampled_from(["0.00", "10.00", "500.00", "25000.00"]),
    consent=st.booleans(),
    notices=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    OutreachPurpose.PRE_PLACEMENT_NOTICE,
                    OutreachPurpose.ECA_NOTICE,
                    OutreachPurpose.INKASSOVARSEL,
                ]
            ),
            st.integers(0, 400),
        ),
        max_size=3,
    ),
)
def test_no_gate_opens_while_a_dispute_is_open(
    pack_key: str,
    action: GateAction,
    days: int,
    state: str | None,
    nonprofit: bool,
    role: CreditorRole,
    reason: DisputeReason,
    account_wide: bool,
    amount: str,
    consent: bool,
    notices: list[tuple[OutreachPurpose, int]],
) -> None:
    cur = {"no": "NOK", "de": "EUR", "bg": "EUR"}.get(pack_key, "USD")
    s = snap(
        cur,
        amount if amount != "0.00" else "10.00",
        disputes=(dispute(reason=reason, invoice_id=None if account_wide else "INV-1"),),
        notices=tuple(notice(FIRST + dt.timedelta(days=n), p) for p, n in notices),
        handoff_consent=consent_of(at(FIRST)) if consent else None,
        spoke_with_consumer_on=FIRST,
        last_message_on=FIRST,
    )
    if amount == "0.00":
        s = GateSnapshot(
            "A-1", Money("0.00", cur), invoices=s.invoices, disputes=s.disputes, notices=s.notices
        )
    creditor = cred(
        country={"no": "NO", "de": "DE", "bg": "BG"}.get(pack_key, "US"),
        state=state,
        nonprofit=nonprofit,
        role=role,
    )
    d = gate(s, action, now=at(FIRST + dt.timedelta(days=days)), pack=get_pack(pack_key), creditor=creditor)
    assert not d.allowed and d.earliest is None
    assert "dispute.freezes_collection" in [r.rule_id for r in d.blocking]
    assert collection_paused(
        s, invoice_id="INV-1", now=at(FIRST + dt.timedelta(days=days)), pack=get_pack(pack_key)
    )[0]


# -- the cadence reads the relief flags -------------------------------------------------------


def test_relief_flags_feed_the_outreach_cadence() -> None:
    from carecollect.patients import Patient
    from carecollect.policy.cadence import InvoiceContext, due_steps
    from carecollect.relief.pauses import relief_flags

    inv = invoice(claim=ClaimStatus.PENDING)
    patient = Patient(id="P-1", time_zones=("America/New_York",))
    now = at(dt.date(2026, 4, 20))
    s = snap(inv=inv, disputes=(dispute(),))
    flags = relief_flags(s, invoice_id="INV-1", now=now, pack=US)
    assert flags.dispute_open and not flags.insurer_waiting  # filed 6 January: the 60-day wait is over
    ctx = InvoiceContext(inv, patient, cred(), US, **flags.as_context_kwargs())
    plan = due_steps(ctx, now)
    assert plan.due == () and any(r.rule_id == "dispute.freeze" for r in plan.reasons)
    free = relief_flags(snap(inv=inv), invoice_id="INV-1", now=now, pack=US)
    assert free.as_context_kwargs() == {
        "dispute_open": False,
        "plan_status": None,
        "insurer_waiting": False,
        "assistance_pending": False,
    }
    waiting = relief_flags(snap(inv=inv), invoice_id="INV-1", now=at(dt.date(2026, 2, 1)), pack=US)
    assert waiting.insurer_waiting and waiting.reasons[0].rule_id == "insurer.pending_wait_days"
