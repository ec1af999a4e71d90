"""Domain objects: guarded transitions, bad input named by record and field, no PHI in reprs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import carecollect
from carecollect import (
    Account,
    AgencyPlacement,
    AttemptOutcome,
    Channel,
    ClaimStatus,
    ContactAttempt,
    ContactPoint,
    Creditor,
    CreditorRole,
    CurrencyMismatch,
    Dispute,
    DisputeReason,
    EscalationLevel,
    Estimate,
    Insurance,
    InvalidMoney,
    InvalidTransition,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    NaiveDatetime,
    OutreachPurpose,
    OutreachStatus,
    OutreachStep,
    Patient,
    PaymentPlan,
    PlacementStatus,
    PlanStatus,
    Remittance,
    Resolution,
    ResolutionKind,
    ScheduleMismatch,
    ValidationError,
)
from carecollect.calendars import BusinessCalendar
from carecollect.disputes import escalate_dispute, record_follow_up, withdraw_dispute
from carecollect.events import EventType
from carecollect.invoices import (
    cancel_invoice,
    issue_invoice,
    mark_paid,
    record_first_statement,
    reopen_invoice,
)
from carecollect.outreach import cancel_step, record_attempt
from carecollect.patients import grant_consent, opt_out, request_cease_communication
from carecollect.placements import place_account, recall_placement, record_remittance, return_placement
from carecollect.plans import (
    Instalment,
    InstalmentStatus,
    activate_plan,
    build_schedule,
    cancel_plan,
    complete_plan,
    default_plan,
    mark_instalment_missed,
    pause_plan,
    record_instalment_payment,
    resume_plan,
    reverse_instalment_payment,
)
from carecollect.policy import get_pack as _get_pack
from carecollect.relief.disputes import DisputeProcedure, resolve_dispute

OSLO = ZoneInfo("Europe/Oslo")
T = dt.datetime(2026, 3, 2, 10, tzinfo=OSLO)
SECRET_NAME = "Kari Nordmann"
CLINICAL = "Colonoscopy with biopsy"


def line(amount: str = "100.00", cur: str = "NOK", desc: str = CLINICAL) -> InvoiceLine:
    return InvoiceLine("K-1", desc, Money(amount, cur), dt.date(2026, 3, 1))


def invoice(**kw: object) -> Invoice:
    base: dict[str, object] = dict(
        id="INV-1",
        account_id="A-1",
        currency="NOK",
        lines=(line(),),
        issue_date=dt.date(2026, 3, 2),
        due_date=dt.date(2026, 3, 16),
    )
    base.update(kw)
    return Invoice(**base)  # type: ignore[arg-type]


def test_top_level_exposes_the_core_names() -> None:
    for name in ("Invoice", "PaymentPlan", "Dispute", "OutreachStep", "Money", "Ledger"):
        assert name in carecollect.__all__ and hasattr(carecollect, name)


def test_domain_objects_are_frozen() -> None:
    inv = invoice()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        inv.status = InvoiceStatus.PAID  # type: ignore[misc]


# -- bad input ----------------------------------------------------------------------------------


def test_negative_line_amount_names_record_and_field() -> None:
    with pytest.raises(InvalidMoney, match="InvoiceLine: field 'amount': must not be negative"):
        line("-1.00")


def test_mixed_currencies_on_one_invoice() -> None:
    with pytest.raises(CurrencyMismatch, match=r"Invoice INV-1 lines\[1\]"):
        invoice(lines=(line(), line(cur="EUR")))


def test_due_before_issue() -> None:
    with pytest.raises(ValidationError, match="Invoice INV-1: field 'due_date'"):
        invoice(due_date=dt.date(2026, 3, 1))


def test_naive_datetime_and_datetime_as_date() -> None:
    with pytest.raises(NaiveDatetime, match="Dispute"):
        Dispute("D-1", "A-1", "INV-1", DisputeReason.BILLING_ERROR, dt.datetime(2026, 3, 2, 10))
    with pytest.raises(ValidationError, match="'issue_date'"):
        invoice(issue_date=dt.datetime(2026, 3, 2, tzinfo=OSLO))


def test_float_amount_and_bad_currency() -> None:
    with pytest.raises(InvalidMoney):
        InvoiceLine("X", "x", 10.0, dt.date(2026, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'currency'"):
        invoice(currency="KRONER")


def test_insurance_cannot_exceed_total() -> None:
    ins = Insurance(
        ClaimStatus.ADJUDICATED,
        insurer_paid=Money("90.00", "NOK"),
        contractual_adjustment=Money("20.00", "NOK"),
    )
    with pytest.raises(ValidationError, match="exceed the invoice total"):
        invoice(insurance=ins)


def test_instalments_that_do_not_sum_are_refused() -> None:
    insts = (
        Instalment(1, dt.date(2026, 4, 1), Money("50.00", "EUR")),
        Instalment(2, dt.date(2026, 5, 1), Money("49.99", "EUR")),
    )
    with pytest.raises(
        ScheduleMismatch, match="PaymentPlan PL-1: field 'instalments': instalments sum to EUR 99.99"
    ):
        PaymentPlan("PL-1", "A-1", ("INV-1",), Money("100.00", "EUR"), insts, T)


def test_empty_ids_refused() -> None:
    with pytest.raises(ValidationError, match="'id'"):
        invoice(id="")
    with pytest.raises(ValidationError, match="'id'"):
        invoice(id=" INV")


# -- no PHI in reprs or errors ------------------------------------------------------------------


def test_no_phi_in_reprs() -> None:
    p = Patient(
        "P-1",
        "nb",
        ("Europe/Oslo",),
        (ContactPoint(Channel.SMS, "+4791234567", consent_at=T),),
        name=SECRET_NAME,
        date_of_birth=dt.date(1980, 5, 17),
    )
    inv = invoice()
    texts = [repr(p), repr(inv), str(inv), repr(inv.lines)]
    for text in texts:
        assert SECRET_NAME not in text
        assert "91234567" not in text
        assert CLINICAL not in text
        assert "1980" not in text


def test_no_phi_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        invoice(lines=(line(desc=CLINICAL),), due_date=dt.date(2000, 1, 1))
    assert CLINICAL not in str(info.value)


# -- transitions ---------------------------------------------------------------------------------


def test_invoice_life_cycle() -> None:
    inv = invoice()
    with pytest.raises(InvalidTransition, match="Invoice INV-1: cannot mark paid while status is 'draft'"):
        mark_paid(inv, at=T)
    inv, _ = issue_invoice(inv, at=T)
    with pytest.raises(InvalidTransition):
        issue_invoice(inv, at=T)
    inv, _ = record_first_statement(inv, dt.date(2026, 3, 3), at=T)
    inv, _ = record_first_statement(inv, dt.date(2026, 4, 3), at=T)
    assert inv.first_statement_date == dt.date(2026, 3, 3)  # the first one counts
    inv, ev = mark_paid(inv, at=T)
    assert ev.type.value == "invoice.paid"
    with pytest.raises(InvalidTransition):
        cancel_invoice(inv, at=T)
    inv, _ = reopen_invoice(inv, at=T)
    inv, _ = cancel_invoice(inv, at=T)
    assert inv.status is InvoiceStatus.CANCELLED


def test_patient_responsibility_and_insurer_wait() -> None:
    ins = Insurance(
        ClaimStatus.PENDING, insurer_paid=Money("60.00", "NOK"), contractual_adjustment=Money("10.00", "NOK")
    )
    inv = invoice(insurance=ins)
    assert inv.patient_responsibility == Money("30.00", "NOK")
    assert inv.waiting_for_insurer


def test_estimate_comparison() -> None:
    est = Estimate("E-1", "P-1", "USD", (line("1000.00", "USD"),), dt.date(2026, 2, 1))
    inv = invoice(currency="USD", lines=(line("1400.00", "USD"),))
    cmp_ = est.compare(inv)
    assert cmp_.difference == Money("400.00", "USD")
    assert cmp_.exceeds_by_at_least(Money("400.00", "USD"))
    with pytest.raises(CurrencyMismatch):
        est.compare(invoice())


def test_patient_wishes_are_kept() -> None:
    p = Patient(
        "P-1",
        "nb",
        ("Europe/Oslo",),
        (ContactPoint(Channel.SMS, "+4791234567", consent_at=T), ContactPoint(Channel.LETTER, "Storgata 1")),
    )
    assert p.may_use(Channel.SMS) and p.may_use(Channel.LETTER) and not p.may_use(Channel.EMAIL)
    p1, _ = opt_out(p, Channel.SMS, at=T)
    p2, _ = opt_out(p1, Channel.SMS, at=T + dt.timedelta(days=1))
    assert p2.points(Channel.SMS)[0].opted_out_at == T  # the first opt-out is kept
    assert not p2.may_use(Channel.SMS)
    p3, _ = grant_consent(p2, Channel.SMS, at=T + dt.timedelta(days=2))
    assert p3.may_use(Channel.SMS)
    p4, _ = request_cease_communication(p3, at=T)
    p5, _ = request_cease_communication(p4, at=T + dt.timedelta(days=3))
    assert p5.cease_requested_at == T
    with pytest.raises(ValidationError, match="no email contact point"):
        grant_consent(p, Channel.EMAIL, at=T)


def test_account_validation() -> None:
    with pytest.raises(ValidationError, match="Account A-1: field 'annual_income'"):
        Account("A-1", "P-1", "C-1", "USD", annual_income=Money("1.00", "EUR"))
    with pytest.raises(ValidationError, match="household_size"):
        Account("A-1", "P-1", "C-1", "USD", household_size=0)
    assert Account("A-1", "P-1", "C-1", "USD", guarantor_id="G-1").payer_id == "G-1"


def test_creditor_roles() -> None:
    c = Creditor("C-1", "Agency AS", CreditorRole.THIRD_PARTY_COLLECTOR, "NO")
    assert c.role.is_collector and not CreditorRole.PROVIDER.is_collector
    with pytest.raises(ValidationError, match="country"):
        Creditor("C-2", "X", CreditorRole.PROVIDER, "Norway")


def _plan() -> PaymentPlan:
    sched = build_schedule(Money("300.00", "EUR"), 3, first_due=dt.date(2026, 4, 15))
    return PaymentPlan("PL-1", "A-1", ("INV-1",), Money("300.00", "EUR"), sched, T)


def test_plan_life_cycle() -> None:
    plan = _plan()
    with pytest.raises(
        InvalidTransition,
        match="PaymentPlan PL-1: cannot mark an instalment missed while status is 'proposed'",
    ):
        mark_instalment_missed(plan, 1, at=T)
    plan, _ = activate_plan(plan, at=T)
    with pytest.raises(InvalidTransition, match="no instalment has been missed"):
        default_plan(plan, at=T)
    plan, _ = record_instalment_payment(plan, 1, Money("100.00", "EUR"), at=T)
    with pytest.raises(InvalidTransition):
        record_instalment_payment(plan, 1, Money("100.00", "EUR"), at=T)
    with pytest.raises(ValidationError, match="less than"):
        record_instalment_payment(plan, 2, Money("99.99", "EUR"), at=T)
    plan, _ = mark_instalment_missed(plan, 2, at=T)
    assert plan.remaining == Money("200.00", "EUR")
    paused, _ = pause_plan(plan, on=dt.date(2026, 6, 1), at=T)
    resumed, _ = resume_plan(paused, count=4, first_due=dt.date(2026, 9, 1), at=T)
    assert resumed.status is PlanStatus.ACTIVE
    assert [i.amount for i in resumed.instalments[1:]] == [Money("50.00", "EUR")] * 4
    assert resumed.remaining == Money("200.00", "EUR")
    defaulted, _ = default_plan(plan, at=T)
    assert defaulted.status is PlanStatus.DEFAULTED
    with pytest.raises(InvalidTransition):
        activate_plan(defaulted, at=T)
    done, _ = complete_plan(plan, at=T, reason="36 payments")
    assert done.status is PlanStatus.COMPLETED and done.remaining.is_zero()
    cancelled, _ = cancel_plan(_plan(), at=T)
    assert cancelled.status is PlanStatus.CANCELLED


def test_a_reversed_instalment_payment_is_due_again_and_reopens_a_completed_plan() -> None:
    plan, _ = activate_plan(_plan(), at=T)
    with pytest.raises(
        InvalidTransition, match="PaymentPlan PL-1: cannot reverse the payment of instalment 1"
    ):
        reverse_instalment_payment(plan, 1, at=T)  # not paid
    with pytest.raises(ValidationError, match="no instalment 9"):
        reverse_instalment_payment(plan, 9, at=T)
    for n in (1, 2, 3):
        plan, _ = record_instalment_payment(plan, n, Money("100.00", "EUR"), at=T)
    assert plan.status is PlanStatus.COMPLETED
    # due again with its own due date, even past it: the relief policy's grace decides missed
    later = T + dt.timedelta(days=120)
    back, event = reverse_instalment_payment(plan, 2, at=later, reason="chargeback")
    assert back.status is PlanStatus.ACTIVE
    assert [(i.status, i.paid) for i in back.instalments][1] == (InstalmentStatus.DUE, None)
    assert back.instalments[1].due_date == plan.instalments[1].due_date
    assert back.remaining == Money("100.00", "EUR") and back.next_due() == back.instalments[1]
    assert event.type is EventType.PLAN_INSTALMENT_REVERSED and event.record_id == "PL-1"
    assert (event.detail("number"), event.detail("amount"), event.detail("reason")) == (
        "2",
        "EUR 100.00",
        "chargeback",
    )
    # it can be paid again; a paused plan stays paused
    again, _ = record_instalment_payment(back, 2, Money("100.00", "EUR"), at=later)
    assert again.status is PlanStatus.COMPLETED
    paused, _ = pause_plan(back, on=dt.date(2026, 8, 1), at=later)
    paused_back, _ = reverse_instalment_payment(paused, 1, at=later)
    assert paused_back.status is PlanStatus.PAUSED
    # a defaulted or cancelled plan is not reopened by a reversal
    for closed in (
        default_plan(mark_instalment_missed(back, 2, at=later)[0], at=later)[0],
        cancel_plan(back, at=T)[0],
    ):
        with pytest.raises(InvalidTransition, match="PaymentPlan PL-1"):
            reverse_instalment_payment(closed, 1, at=later)


def test_plan_completes_after_last_instalment() -> None:
    plan, _ = activate_plan(_plan(), at=T)
    for n in (1, 2, 3):
        plan, _ = record_instalment_payment(plan, n, Money("100.00", "EUR"), at=T)
    assert plan.status is PlanStatus.COMPLETED


def test_schedule_lands_on_business_days_and_chosen_day() -> None:
    cal = BusinessCalendar.for_country("NO")
    sched = build_schedule(
        Money("1000.00", "NOK"), 3, first_due=dt.date(2026, 4, 1), day_of_month=31, calendar=cal
    )
    # 30 April is a Thursday; 31 May is a Sunday → 1 June; 30 June (clipped) is a Tuesday
    assert [i.due_date for i in sched] == [dt.date(2026, 4, 30), dt.date(2026, 6, 1), dt.date(2026, 6, 30)]


@given(
    units=st.integers(1, 10**8),
    count=st.integers(1, 72),
    dom=st.integers(1, 31),
    code=st.sampled_from(["JPY", "EUR", "BHD"]),
)
def test_schedules_always_sum_exactly(units: int, count: int, dom: int, code: str) -> None:
    total = Money.from_minor(units, code)
    sched = build_schedule(total, count, first_due=dt.date(2026, 1, 31), day_of_month=dom)
    assert sum(i.amount.minor_units for i in sched) == units
    dates = [i.due_date for i in sched]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)


_RESOLVE: dict[str, object] = {
    "balance": Money("500.00", "NOK"),
    "at": T,
    "pack": _get_pack("no"),
    "procedure": DisputeProcedure.default("NOK"),
}


def test_dispute_life_cycle() -> None:
    d = Dispute("D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, T)
    d, _ = escalate_dispute(d, EscalationLevel.OFFICE_MANAGER, at=T)
    with pytest.raises(InvalidTransition, match="escalation only goes up"):
        escalate_dispute(d, EscalationLevel.FRONT_LINE, at=T)
    with pytest.raises(ValidationError, match="needs a positive amount"):
        resolve_dispute(d, Resolution(ResolutionKind.DISCOUNT), **_RESOLVE)
    with pytest.raises(InvalidTransition, match="resolve it first"):
        record_follow_up(d, satisfied=True, at=T)
    r = Resolution(
        ResolutionKind.DISCOUNT, Money("50.00", "NOK"), "mgr-1", corrective_action="Shorter waiting time"
    )
    d, ev, _ = resolve_dispute(d, r, **_RESOLVE)
    assert not d.is_open and ev.detail("amount") == "NOK 50.00"
    assert "Shorter" not in repr(d)
    d, _ = record_follow_up(d, satisfied=True, at=T)
    with pytest.raises(InvalidTransition):
        record_follow_up(d, satisfied=False, at=T)
    with pytest.raises(InvalidTransition):
        withdraw_dispute(d, at=T)


def test_outreach_step_and_attempts() -> None:
    step = OutreachStep("S-1", "A-1", "INV-1", OutreachPurpose.REMINDER, (Channel.EMAIL, Channel.LETTER), T)
    assert step.template_key == "reminder"
    with pytest.raises(ValidationError, match="channels"):
        OutreachStep("S-2", "A-1", None, OutreachPurpose.REMINDER, (), T)
    failed, _ = record_attempt(
        step, ContactAttempt("CA-1", "S-1", "A-1", "INV-1", Channel.EMAIL, T, AttemptOutcome.BOUNCED)
    )
    assert failed.status is OutreachStatus.FAILED
    sent, ev = record_attempt(
        failed, ContactAttempt("CA-2", "S-1", "A-1", "INV-1", Channel.LETTER, T, AttemptOutcome.DELIVERED)
    )
    assert sent.status is OutreachStatus.DELIVERED and ev.type.value == "outreach.sent"
    with pytest.raises(InvalidTransition, match="already gone out"):
        cancel_step(sent, at=T, reason="paid")
    call = ContactAttempt("CA-3", None, "A-1", "INV-1", Channel.PHONE, T, AttemptOutcome.ANSWERED)
    assert call.is_conversation and call.counts_as_call
    assert not ContactAttempt(
        "CA-4", None, "A-1", "INV-1", Channel.PHONE, T, AttemptOutcome.NO_CONNECTION
    ).counts_as_call


def test_placement_life_cycle() -> None:
    p = AgencyPlacement("PL-1", "A-1", "credicare", Money("1000.00", "NOK"))
    with pytest.raises(InvalidTransition):
        recall_placement(p, at=T, reason="dispute")
    p, _ = place_account(p, at=T)
    r = Remittance("REM-1", Money("400.00", "NOK"), T)
    p, ev = record_remittance(p, r)
    assert ev is not None
    assert record_remittance(p, r) == (p, None)  # a duplicated remittance file changes nothing
    with pytest.raises(ValidationError, match="more than was placed"):
        record_remittance(p, Remittance("REM-2", Money("600.01", "NOK"), T))
    p, _ = return_placement(p, at=T)
    assert p.status is PlacementStatus.RETURNED and p.collected == Money("400.00", "NOK")


# -- every refusal is typed and names the record by id and the field -----------------------------


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (
            lambda: OutreachStep("S-9", "A-1", None, "reminder", (Channel.EMAIL,), T),
            "OutreachStep S-9: field 'purpose'",
        ),
        (
            lambda: OutreachStep("S-9", "A-1", None, OutreachPurpose.REMINDER, ("email",), T),
            "OutreachStep S-9: field 'channels[0]'",
        ),
        (
            lambda: OutreachStep(
                "S-9", "A-1", None, OutreachPurpose.REMINDER, (Channel.EMAIL,), T, deadline=T
            ),
            "OutreachStep S-9: field 'deadline'",
        ),
        (
            lambda: ContactAttempt("CA-9", None, "", None, Channel.PHONE, T, AttemptOutcome.ANSWERED),
            "ContactAttempt CA-9: field 'account_id'",
        ),
        (
            lambda: ContactAttempt("CA-9", None, "A-1", None, "phone", T, AttemptOutcome.ANSWERED),
            "ContactAttempt CA-9: field 'channel'",
        ),
        (
            lambda: ContactAttempt("CA-9", None, "A-1", None, Channel.PHONE, T, "answered"),
            "ContactAttempt CA-9: field 'outcome'",
        ),
        (
            lambda: Dispute("D-9", "A-1", "INV-1", "billing_error", T),
            "Dispute D-9: field 'reason'",
        ),
        (
            lambda: Dispute("D-9", "A-1", "", DisputeReason.BILLING_ERROR, T),
            "Dispute D-9: field 'invoice_id'",
        ),
        (
            lambda: Dispute("D-9", "A-1", None, DisputeReason.BILLING_ERROR, T, level=7),
            "Dispute D-9: field 'level'",
        ),
        (lambda: invoice(id="INV-9", status="open"), "Invoice INV-9: field 'status'"),
        (
            lambda: Creditor("CR-9", "Clinic", "provider", "NO"),  # type: ignore[arg-type]
            "Creditor CR-9: field 'role'",
        ),
        (lambda: Remittance("REM-9", Money("0.00", "NOK"), T), "Remittance REM-9: field 'amount'"),
        (
            lambda: PaymentPlan(
                "PL-9",
                "A-1",
                ("INV-1",),
                Money("10.00", "EUR"),
                (Instalment(1, dt.date(2026, 4, 1), Money("10.00", "EUR")),),
                T,
                status="active",
            ),
            "PaymentPlan PL-9: field 'status'",
        ),
        (
            lambda: PaymentPlan(
                "PL-9",
                "A-1",
                ("INV-1",),
                Money("10.00", "EUR"),
                (
                    Instalment(1, dt.date(2026, 4, 1), Money("5.00", "EUR")),
                    Instalment(1, dt.date(2026, 5, 1), Money("5.00", "EUR")),
                ),
                T,
            ),
            "PaymentPlan PL-9: field 'instalments'",
        ),
        (lambda: Instalment(0, dt.date(2026, 4, 1), Money("5.00", "EUR")), "Instalment: field 'number'"),
        (
            lambda: AgencyPlacement("PL-9", "A-1", "agency", Money("1.00", "NOK"), status="placed"),
            "AgencyPlacement PL-9: field 'status'",
        ),
        (lambda: Patient("P-9", confidential="none"), "Patient P-9: field 'confidential'"),
        (lambda: Patient("P-9", contact_points=("+4791234567",)), "Patient P-9: field 'contact_points[0]'"),
        (
            lambda: InvoiceLine("", CLINICAL, Money("1.00", "NOK"), dt.date(2026, 3, 1)),
            "InvoiceLine: field 'code'",
        ),
    ],
)
def test_bad_input_is_a_typed_error_naming_record_and_field(build: object, where: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()  # type: ignore[operator]
    assert str(info.value).startswith(where), str(info.value)


def test_ledger_with_a_bad_currency_is_named_as_the_ledger() -> None:
    from carecollect import Ledger

    with pytest.raises(ValidationError, match="Ledger A-9: field 'currency'"):
        Ledger("A-9", "KRONER")


# -- no PHI anywhere a log or a screen might show it ---------------------------------------------

PHONE = "+4791234567"
EMAIL = "kari.nordmann@example.no"
ADDRESS = "Storgata 1, 0155 Oslo"
BIRTH = dt.date(1980, 5, 17)
PHI = (SECRET_NAME, "Nordmann", PHONE, "91234567", EMAIL, "Storgata", CLINICAL, "1980-05-17", "1980")


def _phi_patient(**kw: object) -> Patient:
    base: dict[str, object] = dict(
        id="P-1",
        preferred_language="nb",
        time_zones=("Europe/Oslo",),
        contact_points=(
            ContactPoint(Channel.SMS, PHONE, consent_at=T),
            ContactPoint(Channel.EMAIL, EMAIL, consent_at=T),
            ContactPoint(Channel.LETTER, ADDRESS),
        ),
        name=SECRET_NAME,
        date_of_birth=BIRTH,
    )
    base.update(kw)
    return Patient(**base)  # type: ignore[arg-type]


def _assert_clean(text: str) -> None:
    for secret in PHI:
        assert secret not in text, f"{secret!r} leaked into: {text}"


def test_reprs_and_strs_of_every_object_hold_no_phi() -> None:
    from carecollect import Adjustment, AdjustmentKind, Payment, PaymentMethod, Refund

    patient = _phi_patient()
    objects: list[object] = [
        patient,
        *patient.contact_points,
        Account("A-1", "P-1", "CR-1", "NOK", annual_income=Money("456789.00", "NOK")),
        invoice(),
        invoice().lines[0],
        Estimate("E-1", "P-1", "NOK", (line(),), dt.date(2026, 2, 1)),
        Payment(
            "PAY-1",
            "A-1",
            Money("10.00", "NOK"),
            PaymentMethod.CARD,
            T,
            provider_reference="ch_4242424242424242",
        ),
        Adjustment("ADJ-1", "A-1", "INV-1", Money("1.00", "NOK"), AdjustmentKind.DISCOUNT, "X", "staff-1", T),
        Refund("R-1", "A-1", "PAY-1", Money("1.00", "NOK"), T),
        Resolution(
            ResolutionKind.DISCOUNT,
            Money("5.00", "NOK"),
            "staff-1",
            corrective_action=f"Call {SECRET_NAME} about {CLINICAL}",
        ),
        Dispute("D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, T),
        ContactAttempt(
            "CA-1", None, "A-1", "INV-1", Channel.PHONE, T, AttemptOutcome.ANSWERED, provider_message_id=PHONE
        ),
    ]
    for obj in objects:
        _assert_clean(repr(obj))
        _assert_clean(str(obj))
    assert "4242424242424242" not in repr(objects[6])
    assert "456789" not in repr(objects[2])
    # the events of the patient transitions carry ids and channels only
    for _, event in (
        opt_out(patient, Channel.SMS, at=T),
        grant_consent(patient, Channel.EMAIL, at=T),
        request_cease_communication(patient, at=T),
    ):
        _assert_clean(repr(event))


@pytest.mark.parametrize(
    "build",
    [
        lambda: _phi_patient(preferred_language="norsk bokmål!"),
        lambda: _phi_patient(time_zones=("Mars/Olympus",)),
        lambda: _phi_patient(time_zones=(), contact_points=(ContactPoint(Channel.EMAIL, EMAIL),)),
        lambda: _phi_patient(confidential=SECRET_NAME),
        lambda: _phi_patient(
            contact_points=(ContactPoint(Channel.SMS, PHONE, consent_at=dt.datetime(2026, 1, 1)),)
        ),
        lambda: _phi_patient(contact_points=(PHONE,)),
        lambda: ContactPoint(Channel.SMS, PHONE, time_zone="Mars/Olympus"),
        lambda: ContactPoint(Channel.EMAIL, "   "),
        lambda: InvoiceLine("K-1", CLINICAL, Money("-1.00", "NOK"), dt.date(2026, 3, 1)),
        lambda: InvoiceLine("K-1", CLINICAL, Money("1.00", "NOK"), dt.datetime(2026, 3, 1, tzinfo=OSLO)),
        lambda: invoice(lines=(line(desc=CLINICAL), line(desc=CLINICAL, cur="EUR"))),
        lambda: invoice(lines=(line(desc=CLINICAL),), due_date=dt.date(2000, 1, 1)),
        lambda: Account("A-1", "P-1", "CR-1", "NOK", annual_income=Money("-1.00", "NOK")),
        lambda: grant_consent(_phi_patient(contact_points=()), Channel.SMS, at=T),
        lambda: opt_out(_phi_patient(), Channel.SMS, at=dt.datetime(2026, 3, 1)),
    ],
)
def test_errors_hold_no_phi(build: object) -> None:
    with pytest.raises(carecollect.CareCollectError) as info:
        build()  # type: ignore[operator]
    _assert_clean(str(info.value))
    _assert_clean(repr(info.value))
