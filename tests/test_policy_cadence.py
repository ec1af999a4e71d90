"""The reminder cadence: scenario tests with concrete dates, catch-up, freezes, and the compiled kernel."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.disputes import Dispute, DisputeReason
from carecollect.errors import PolicyViolation, ValidationError
from carecollect.invoices import ClaimStatus, Estimate, Insurance, Invoice, InvoiceLine, InvoiceStatus
from carecollect.money import Money
from carecollect.outreach import OutreachPurpose, OutreachStatus, OutreachStep
from carecollect.patients import ContactPoint, Patient, opt_out, request_cease_communication
from carecollect.plans import PlanStatus
from carecollect.policy.cadence import (
    NONE,
    EstimateContext,
    InvoiceContext,
    check_formal_notice,
    compile_pack,
    due_steps,
    plan_invoice,
)
from carecollect.policy.packs import get_pack

OSLO = ZoneInfo("Europe/Oslo")
EAST = ZoneInfo("America/New_York")
T0 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
P = OutreachPurpose


def person(zone: str = "Europe/Oslo") -> Patient:
    return Patient(
        id="P-1",
        time_zones=(zone,),
        contact_points=(
            ContactPoint(Channel.LETTER, "Storgata 1"),
            ContactPoint(Channel.EMAIL, "p@example.org", consent_at=T0),
            ContactPoint(Channel.SMS, "+4790000000", consent_at=T0, verified_at=T0),
        ),
    )


def invoice(issue: dt.date, due: dt.date, currency: str = "NOK", **kw: object) -> Invoice:
    line = InvoiceLine("2ad", "Consultation", Money("500.00", currency), issue)
    return Invoice(
        id="INV-1",
        account_id="A-1",
        currency=currency,
        lines=(line,),
        issue_date=issue,
        due_date=due,
        status=InvoiceStatus.OPEN,
        **kw,
    )  # type: ignore[arg-type]


PROVIDER = Creditor(id="C-1", name="Legekontor", role=CreditorRole.PROVIDER, country="NO")


def ctx(
    inv: Invoice, pack_key: str = "no", sent: tuple[OutreachStep, ...] = (), **kw: object
) -> InvoiceContext:
    kw.setdefault("patient", person())
    kw.setdefault("creditor", PROVIDER)
    return InvoiceContext(invoice=inv, pack=get_pack(pack_key), sent_steps=sent, **kw)  # type: ignore[arg-type]


def sent(purpose: OutreachPurpose, day: dt.date, n: int = 1, tz: ZoneInfo = OSLO) -> OutreachStep:
    at = dt.datetime.combine(day, dt.time(10), tzinfo=tz)
    return OutreachStep(
        id=f"S-{purpose.value}-{n}",
        account_id="A-1",
        invoice_id="INV-1",
        purpose=purpose,
        channels=(Channel.LETTER,),
        due_at=at,
        status=OutreachStatus.SENT,
        sent_at=at,
    )


def at(day: dt.date, tz: ZoneInfo = OSLO) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(7), tzinfo=tz)


ISSUE, DUE = dt.date(2026, 3, 2), dt.date(2026, 3, 16)


# --- the Norwegian sequence --------------------------------------------------------------------------------


def test_norway_full_sequence_with_inkassovarsel_and_betalingsoppfordring() -> None:
    inv = invoice(ISSUE, DUE)
    plan = due_steps(ctx(inv), at(ISSUE))
    assert [s.purpose for s in plan.due] == [P.STATEMENT]
    assert set(plan.due[0].channels) == {Channel.LETTER, Channel.EMAIL}
    assert plan.next_at is not None and plan.next_at.date() == dt.date(2026, 3, 13)  # 3 days before due

    history = (sent(P.STATEMENT, ISSUE),)
    assert [s.purpose for s in due_steps(ctx(inv, sent=history), at(dt.date(2026, 3, 13))).due] == [
        P.PRE_DUE_REMINDER
    ]
    history += (sent(P.PRE_DUE_REMINDER, dt.date(2026, 3, 13)),)
    assert due_steps(ctx(inv, sent=history), at(DUE)).due == ()
    reminder_day = DUE + dt.timedelta(days=14)
    assert [s.purpose for s in due_steps(ctx(inv, sent=history), at(reminder_day)).due] == [P.REMINDER]
    history += (sent(P.REMINDER, reminder_day),)

    varsel_day = DUE + dt.timedelta(days=28)  # 13 April 2026
    plan = due_steps(ctx(inv, sent=history), at(varsel_day))
    (varsel,) = plan.due
    assert varsel.purpose is P.INKASSOVARSEL and varsel.channels == (Channel.LETTER,)
    assert varsel.deadline == varsel_day + dt.timedelta(days=14)  # at least 14 days counted from sending
    assert plan.next_at is not None and plan.next_at.date() == varsel.deadline + dt.timedelta(days=1)
    assert check_formal_notice(
        get_pack("no"), P.INKASSOVARSEL, sent_on=varsel_day, deadline=varsel.deadline, due_date=DUE
    ).allowed
    history += (sent(P.INKASSOVARSEL, varsel_day),)

    # Not on the varsel's deadline day, only after it.
    assert due_steps(ctx(inv, sent=history), at(varsel.deadline)).due == ()
    (bo,) = due_steps(ctx(inv, sent=history), at(varsel.deadline + dt.timedelta(days=1))).due
    assert bo.purpose is P.BETALINGSOPPFORDRING and bo.deadline == varsel.deadline + dt.timedelta(days=15)


def test_inkassovarsel_with_13_day_deadline_refused() -> None:
    no = get_pack("no")
    d = check_formal_notice(
        no, P.INKASSOVARSEL, sent_on=dt.date(2026, 4, 13), deadline=dt.date(2026, 4, 26), due_date=DUE
    )
    assert not d.allowed
    assert [r.rule_id for r in d.denials] == ["no.inkassovarsel.deadline_days"]
    assert "inkassoloven § 9" in d.denials[0].source
    with pytest.raises(PolicyViolation, match="inkassoloven § 9"):
        no.with_house_rules({"no.inkassovarsel.deadline_days": 13})


def test_inkassovarsel_on_or_before_due_date_refused() -> None:
    d = check_formal_notice(
        get_pack("no"), P.INKASSOVARSEL, sent_on=DUE, deadline=DUE + dt.timedelta(days=20), due_date=DUE
    )
    assert [r.rule_id for r in d.denials] == ["no.inkassovarsel.min_days_after_due"]


def test_betalingsoppfordring_before_varsel_deadline_refused() -> None:
    d = check_formal_notice(
        get_pack("no"),
        P.BETALINGSOPPFORDRING,
        sent_on=dt.date(2026, 4, 27),
        deadline=dt.date(2026, 5, 11),
        due_date=DUE,
        previous_deadline=dt.date(2026, 4, 27),
    )
    assert not d.allowed


def test_house_rule_waiting_longer_moves_the_varsel() -> None:
    house = get_pack("no").with_house_rules(
        {"cadence.inkassovarsel.days_after_due": 45}, source="Legekontor policy"
    )
    cp = compile_pack(house, on=DUE)
    i = cp.index_of(P.INKASSOVARSEL)
    assert cp.start[i] == 45


# --- catch-up, no bursts, never twice -------------------------------------------------------------------------


def test_missed_run_sends_one_message_the_latest_due_step() -> None:
    inv = invoice(ISSUE, DUE)
    history = (sent(P.STATEMENT, ISSUE),)
    # The job did not run from 12 to 15 March: the pre-due reminder (13 March) has expired at the due date,
    # nothing is sent on 16 March; and after weeks of silence one message goes out: the first reminder,
    # which is never skipped (no inkassovarsel before a friendly reminder), then the varsel after the gap.
    assert due_steps(ctx(inv, sent=history), at(DUE)).due == ()
    late = due_steps(ctx(inv, sent=history), at(DUE + dt.timedelta(days=30)))
    assert [s.purpose for s in late.due] == [P.REMINDER]
    after = (*history, sent(P.REMINDER, DUE + dt.timedelta(days=30)))
    assert due_steps(ctx(inv, sent=after), at(DUE + dt.timedelta(days=36))).due == ()  # the 7-day gap
    assert [s.purpose for s in due_steps(ctx(inv, sent=after), at(DUE + dt.timedelta(days=37))).due] == [
        P.INKASSOVARSEL
    ]
    # Missed by three days just after the reminder date: the reminder, once.
    plan = due_steps(ctx(inv, sent=history), at(DUE + dt.timedelta(days=17)))
    assert [s.key for s in plan.due] == ["reminder#1"]
    history += (sent(P.REMINDER, DUE + dt.timedelta(days=17)),)
    again = due_steps(ctx(inv, sent=history), at(DUE + dt.timedelta(days=18)))
    assert again.due == ()  # never the same step twice, and never within the minimum gap


def test_default_pack_two_reminders_are_distinct_steps() -> None:
    inv = invoice(ISSUE, DUE, currency="EUR")
    history = (sent(P.STATEMENT, ISSUE), sent(P.REMINDER, DUE + dt.timedelta(days=10)))
    plan = due_steps(ctx(inv, "default", history), at(DUE + dt.timedelta(days=30)))
    assert [s.key for s in plan.due] == ["reminder#2"]
    history += (sent(P.REMINDER, DUE + dt.timedelta(days=30), n=2),)
    assert due_steps(ctx(inv, "default", history), at(DUE + dt.timedelta(days=31))).due == ()


# --- what stops outreach -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        (
            {
                "disputes": (
                    Dispute(
                        id="D-1",
                        account_id="A-1",
                        invoice_id="INV-1",
                        reason=DisputeReason.BILLING_ERROR,
                        opened_at=T0,
                    ),
                )
            },
            "dispute.freeze",
        ),
        ({"plan_status": PlanStatus.ACTIVE}, "plan.pause_reminders"),
        ({"insurer_waiting": True}, "insurer.pause"),
        ({"assistance_pending": True}, "assistance.pause"),
    ],
)
def test_freezes_stop_every_step(changes: dict[str, object], rule: str) -> None:
    plan = due_steps(ctx(invoice(ISSUE, DUE), **changes), at(ISSUE))
    assert plan.due == () and plan.next_at is None
    assert rule in {r.rule_id for r in plan.reasons}


def test_paid_and_pending_claim_invoices_get_nothing() -> None:
    paid = attrs.evolve(invoice(ISSUE, DUE), status=InvoiceStatus.PAID)
    assert due_steps(ctx(paid), at(ISSUE)).due == ()
    zero = ctx(invoice(ISSUE, DUE), balance=Money("0.00", "NOK"))
    assert due_steps(zero, at(ISSUE)).due == ()
    pending = invoice(ISSUE, DUE, insurance=Insurance(status=ClaimStatus.PENDING))
    assert due_steps(ctx(pending), at(ISSUE)).due == ()
    resolved_dispute = Dispute(
        id="D-2", account_id="A-1", invoice_id="INV-9", reason=DisputeReason.BILLING_ERROR, opened_at=T0
    )
    assert due_steps(ctx(invoice(ISSUE, DUE), disputes=(resolved_dispute,)), at(ISSUE)).due != ()


def test_patient_wishes_filter_channels_and_cease_limits_steps() -> None:
    p, _ = opt_out(person(), Channel.EMAIL, at=T0)
    (step,) = due_steps(ctx(invoice(ISSUE, DUE), patient=p), at(ISSUE)).due
    assert step.channels == (Channel.LETTER,)
    house = get_pack("no").with_house_rules({"sms.allowed": False})
    history = (sent(P.STATEMENT, ISSUE),)
    c = InvoiceContext(
        invoice=invoice(ISSUE, DUE), patient=person(), creditor=PROVIDER, pack=house, sent_steps=history
    )
    (pre,) = due_steps(c, at(dt.date(2026, 3, 13))).due
    assert pre.channels == (Channel.EMAIL,)
    stopped, _ = request_cease_communication(person(), at=T0)
    plan = due_steps(ctx(invoice(ISSUE, DUE), patient=stopped, sent=history), at(dt.date(2026, 3, 13)))
    assert plan.due == () and "cease.allowed_purposes" in {r.rule_id for r in plan.reasons}
    history2 = (*history, sent(P.REMINDER, DUE + dt.timedelta(days=14)))
    (varsel,) = due_steps(
        ctx(invoice(ISSUE, DUE), patient=stopped, sent=history2), at(DUE + dt.timedelta(days=28))
    ).due
    assert varsel.purpose is P.INKASSOVARSEL and varsel.channels == (Channel.LETTER,)


# --- US collector and Germany ------------------------------------------------------------------------------------


def test_us_collector_validation_notice_then_reminder_after_the_validation_period() -> None:
    agency = Creditor(id="C-2", name="Agency", role=CreditorRole.THIRD_PARTY_COLLECTOR, country="US")
    inv = invoice(dt.date(2025, 12, 1), dt.date(2025, 12, 31), currency="USD")
    placed = dt.date(2026, 3, 2)
    c = ctx(inv, "us", creditor=agency, patient=person("America/New_York"), placed_on=placed)
    (vn,) = due_steps(c, at(placed, EAST)).due
    assert vn.purpose is P.VALIDATION_NOTICE and vn.channels == (Channel.LETTER,)
    # Mailed Mon 2 March; receipt assumed 5 business days later (Mon 9 March); period ends 30 days after: 8 April.
    assert vn.deadline == dt.date(2026, 4, 8)
    history = (sent(P.VALIDATION_NOTICE, placed, tz=EAST),)
    c2 = attrs.evolve(c, sent_steps=history)
    assert due_steps(c2, at(dt.date(2026, 4, 8), EAST)).due == ()
    assert [s.purpose for s in due_steps(c2, at(dt.date(2026, 4, 9), EAST)).due] == [P.REMINDER]
    with pytest.raises(ValidationError, match="placed_on"):
        due_steps(attrs.evolve(c, placed_on=None), at(placed, EAST))


def test_us_validation_receipt_skips_federal_holidays() -> None:
    cp = compile_pack(get_pack("us"), on=dt.date(2026, 5, 20), collector=True)
    # Mailed Thu 21 May 2026; Memorial Day is Mon 25 May: Fri 22, Tue 26, Wed 27, Thu 28, Fri 29.
    assert dt.date.fromordinal(cp.receipt_day(dt.date(2026, 5, 21).toordinal())) == dt.date(2026, 5, 29)
    far = dt.date(2030, 5, 23).toordinal()  # outside the table: computed from the calendar
    assert dt.date.fromordinal(cp.receipt_day(far)) == dt.date(2030, 5, 31)


def test_germany_statement_hint_mahnung_and_default_notice() -> None:
    inv = invoice(ISSUE, DUE, currency="EUR")
    de = dict(patient=person("Europe/Berlin"))
    (st_,) = due_steps(ctx(inv, "de", **de), at(ISSUE)).due
    assert st_.notices == ()  # the invoice did not state the 30-day rule: the statement does not either
    (st_,) = due_steps(ctx(attrs.evolve(inv, default_notice_given=True), "de", **de), at(ISSUE)).due
    assert st_.notices == ("bgb_286_3_hint",)
    history = (sent(P.STATEMENT, ISSUE),)
    (m,) = due_steps(ctx(inv, "de", history, **de), at(DUE + dt.timedelta(days=14))).due
    assert m.purpose is P.MAHNUNG
    history += (sent(P.MAHNUNG, DUE + dt.timedelta(days=14)),)
    assert due_steps(ctx(inv, "de", history, **de), at(DUE + dt.timedelta(days=30))).due == ()
    (dn,) = due_steps(ctx(inv, "de", history, **de), at(DUE + dt.timedelta(days=31))).due
    assert dn.purpose is P.DEFAULT_NOTICE


def test_estimate_and_payment_terms_before_treatment() -> None:
    est = Estimate(
        id="E-1",
        patient_id="P-1",
        currency="USD",
        lines=(InvoiceLine("99213", "Visit", Money("150.00", "USD"), dt.date(2026, 3, 20)),),
        given_on=dt.date(2026, 3, 2),
        scheduled_for=dt.date(2026, 3, 20),
    )
    ec = EstimateContext(
        estimate=est, account_id="A-1", patient=person("America/New_York"), pack=get_pack("us")
    )
    (step,) = due_steps(ec, at(dt.date(2026, 3, 2), EAST)).due
    assert step.purpose is P.ESTIMATE and "payment_terms" in step.notices
    assert step.deadline == dt.date(2026, 3, 5)  # scheduled 14 business days ahead: 3 business days
    assert due_steps(ec, at(dt.date(2026, 3, 20), EAST)).due == ()
    done = attrs.evolve(ec, sent_steps=(sent(P.ESTIMATE, dt.date(2026, 3, 2), tz=EAST),))
    assert due_steps(done, at(dt.date(2026, 3, 3), EAST)).due == ()


def test_due_steps_is_deterministic_and_its_step_records_are_stable() -> None:
    c = ctx(invoice(ISSUE, DUE))
    a, b = due_steps(c, at(ISSUE)), due_steps(c, at(ISSUE))
    assert a == b
    rec = a.due[0].to_outreach_step(at(ISSUE))
    assert rec.id == "INV-1.statement#1" and rec.purpose is P.STATEMENT


# --- the kernel --------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["default", "us", "no", "de", "bg"]),
    issue_off=st.integers(0, 200),
    terms=st.integers(0, 45),
    run_days=st.lists(st.integers(0, 260), min_size=1, max_size=40, unique=True),
)
def test_kernel_never_bursts_never_repeats(key: str, issue_off: int, terms: int, run_days: list[int]) -> None:
    """Whatever days the job happens to run, steps go out in order, once, at least `gap` days apart."""
    cp = compile_pack(get_pack(key), on=dt.date(2026, 3, 1))
    issue = dt.date(2026, 1, 1).toordinal() + issue_off
    due = issue + terms
    last_idx, last_day, last_msg = NONE, NONE, NONE
    sent_days: list[int] = []
    for off in sorted(run_days):
        today = issue + off
        idx, nxt = plan_invoice(cp, today, issue, due, 0, 100, False, last_idx, last_day, last_msg)
        if idx != NONE:
            assert idx > last_idx
            assert cp.anchor[idx] != 1 or today >= due + cp.start[idx]
            if cp.purposes[idx] is P.PRE_DUE_REMINDER:
                assert today < due
            if sent_days:
                assert today - sent_days[-1] >= cp.gap
            last_idx, last_day, last_msg = idx, today, today
            sent_days.append(today)
        if nxt != NONE:
            assert nxt > today
    assert len(sent_days) <= cp.size
    if sent_days:  # the first message is always the first statement (or a collector's validation notice)
        assert cp.purposes[0] is P.STATEMENT


def test_kernel_never_skips_the_statement_or_the_validation_notice() -> None:
    cp = compile_pack(get_pack("no"), on=dt.date(2026, 3, 1))
    d = DUE.toordinal()
    # 90 days after the due date with nothing sent: the statement, and the next step only after the gap.
    idx, nxt = plan_invoice(cp, d + 90, d - 14, d, 0, 100, False, NONE, NONE, NONE)
    assert cp.purposes[idx] is P.STATEMENT and nxt == d + 97
    col = compile_pack(get_pack("us"), on=dt.date(2026, 3, 1), collector=True)
    placed = d - 100  # placed long ago, nothing sent: the validation notice first, not the final notice
    idx, _ = plan_invoice(col, d, d - 200, d - 170, placed, 100, False, NONE, NONE, NONE)
    assert col.purposes[idx] is P.VALIDATION_NOTICE


def test_kernel_blocked_or_zero_balance_is_silent() -> None:
    cp = compile_pack(get_pack("default"), on=dt.date(2026, 3, 1))
    d = DUE.toordinal()
    assert plan_invoice(cp, d + 40, d - 14, d, 0, 100, True, NONE, NONE, NONE) == (NONE, NONE)
    assert plan_invoice(cp, d + 40, d - 14, d, 0, 0, False, NONE, NONE, NONE) == (NONE, NONE)


def test_pending_claim_stops_reminders_only_for_the_packs_wait() -> None:
    filed = ISSUE
    pending = invoice(ISSUE, DUE, insurance=Insurance(status=ClaimStatus.PENDING, submitted_on=filed))
    waiting = due_steps(ctx(pending), at(filed + dt.timedelta(days=59)))
    assert waiting.due == () and "insurer.pause" in {r.rule_id for r in waiting.reasons}
    # insurer.pending_wait_days (60) has run out: the patient is billed anyway. The due date passed
    # during the wait, but the first message is the statement, never a reminder or an inkassovarsel.
    (step,) = due_steps(ctx(pending), at(filed + dt.timedelta(days=60))).due
    assert step.purpose is P.STATEMENT
    history = (sent(P.STATEMENT, filed + dt.timedelta(days=60)),)
    later = due_steps(ctx(pending, sent=history), at(filed + dt.timedelta(days=61)))
    assert later.due == () and later.next_at is not None
    assert later.next_at.date() == filed + dt.timedelta(days=67)  # then the gap of 7 days
    appealed = attrs.evolve(pending, insurance=Insurance(status=ClaimStatus.APPEALED, submitted_on=filed))
    assert due_steps(ctx(appealed), at(filed + dt.timedelta(days=60))).due == ()  # an appeal waits 90 days
    # A caller that already knows (relief_flags) decides for itself.
    assert due_steps(ctx(pending, insurer_waiting=False), at(filed)).due != ()


def test_letter_and_email_go_out_together_as_one_step() -> None:
    (step,) = due_steps(ctx(invoice(ISSUE, DUE)), at(ISSUE)).due
    assert step.channels == (Channel.LETTER, Channel.EMAIL)  # one step, two channels: one record, one key
    assert step.to_outreach_step(at(ISSUE)).channels == (Channel.LETTER, Channel.EMAIL)


def test_three_day_outage_catches_up_with_one_message_per_invoice() -> None:
    """The job ran on 29 March, then not on 30, 31 March and 1 April; on 2 April one reminder goes out."""
    inv = invoice(ISSUE, DUE)
    history = (sent(P.STATEMENT, ISSUE), sent(P.PRE_DUE_REMINDER, dt.date(2026, 3, 13)))
    assert due_steps(ctx(inv, sent=history), at(dt.date(2026, 3, 29))).due == ()
    plan = due_steps(ctx(inv, sent=history), at(dt.date(2026, 4, 2)))
    assert [s.key for s in plan.due] == ["reminder#1"]
    assert plan.next_at is not None and plan.next_at.date() == DUE + dt.timedelta(days=28)
