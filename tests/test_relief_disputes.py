"""The written dispute procedure, after-insurance offers, NSA disputes and the insurer wait (issue 4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from carecollect.disputes import (
    DisputeReason,
    DisputeStatus,
    EscalationLevel,
    Resolution,
    ResolutionKind,
    escalate_dispute,
)
from carecollect.errors import PolicyViolation
from carecollect.events import EventType
from carecollect.invoices import ClaimStatus, EstimateComparison, Insurance, Invoice, InvoiceLine
from carecollect.money import Money
from carecollect.payments import AdjustmentKind
from carecollect.policy import get_pack
from carecollect.policy.insurer import billable_to_patient
from carecollect.relief.disputes import (
    AfterInsuranceKind,
    AfterInsuranceOffer,
    DisputeProcedure,
    nsa_dispute_eligibility,
    open_dispute,
    resolve_dispute,
    settle_after_insurance,
)

US, NO = get_pack("us"), get_pack("no")
NY_TZ = ZoneInfo("America/New_York")


def usd(x: str) -> Money:
    return Money(x, "USD")


def test_first_response_same_business_day() -> None:
    at = dt.datetime(2026, 3, 4, 16, tzinfo=NY_TZ)  # a Wednesday
    d, event, respond_by = open_dispute(
        "D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, at=at, pack=US
    )
    assert respond_by == dt.date(2026, 3, 4) and d.is_open and event.type is EventType.DISPUTE_OPENED
    # raised on Saturday 16 May 2026 in Norway: Sunday 17 May is Constitution Day, so Monday 18 May
    sat = dt.datetime(2026, 5, 16, 11, tzinfo=ZoneInfo("Europe/Oslo"))
    assert open_dispute("D-2", "A-1", None, DisputeReason.BILLING_ERROR, at=sat, pack=NO)[2] == dt.date(
        2026, 5, 18
    )


def test_authority_by_level() -> None:
    proc = DisputeProcedure.default("USD")
    bal = usd("1000.00")
    assert proc.lowest_level_for_discount(usd("250.00"), balance=bal) is EscalationLevel.OFFICE_MANAGER
    assert proc.lowest_level_for_discount(usd("250.01"), balance=bal) is EscalationLevel.PROVIDER
    # 25 % of 4000 is 1000, but the office manager's amount limit is 500
    assert proc.lowest_level_for_discount(usd("600.00"), balance=usd("4000.00")) is EscalationLevel.PROVIDER


def test_resolution_needs_the_levels_authority_and_books_follow_up() -> None:
    proc = DisputeProcedure.default("USD")
    at = dt.datetime(2026, 3, 6, 11, tzinfo=NY_TZ)  # Friday
    d, _, _ = open_dispute("D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, at=at, pack=US)
    discount = Resolution(
        ResolutionKind.DISCOUNT, usd("200.00"), approved_by="S-1", corrective_action="retrain"
    )
    with pytest.raises(PolicyViolation, match="escalate to OFFICE_MANAGER"):
        resolve_dispute(d, discount, balance=usd("1000.00"), at=at, pack=US, procedure=proc)
    d, _ = escalate_dispute(d, EscalationLevel.OFFICE_MANAGER, at=at)
    done, event, why = resolve_dispute(d, discount, balance=usd("1000.00"), at=at, pack=US, procedure=proc)
    assert done.status is DisputeStatus.RESOLVED and event.type is EventType.DISPUTE_RESOLVED
    assert done.follow_up_on == dt.date(2026, 3, 11)  # 3 business days after Friday 6 March
    assert [r.rule_id for r in why] == ["creditor.dispute.authority", "dispute.follow_up_business_days"]
    assert "retrain" not in repr(done)
    write_off = Resolution(ResolutionKind.WRITE_OFF, usd("1000.00"), approved_by="S-1")
    d2, _, _ = open_dispute("D-2", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, at=at, pack=US)
    d2, _ = escalate_dispute(d2, EscalationLevel.OFFICE_MANAGER, at=at)
    with pytest.raises(PolicyViolation, match="PROVIDER"):
        resolve_dispute(d2, write_off, balance=usd("1000.00"), at=at, pack=US, procedure=proc)


def test_procedure_sets_follow_up_and_cannot_slow_the_first_response() -> None:
    proc = attrs.evolve(
        DisputeProcedure.default("USD"), follow_up_business_days=5, first_response_business_days=2
    )
    at = dt.datetime(2026, 3, 4, 16, tzinfo=NY_TZ)  # Wednesday
    d, _, respond_by = open_dispute(
        "D-1", "A-1", "INV-1", DisputeReason.BILLING_ERROR, at=at, pack=US, procedure=proc
    )
    assert respond_by == dt.date(2026, 3, 4)  # the pack's same-business-day target still holds
    done, _, why = resolve_dispute(
        d, Resolution(ResolutionKind.UPHELD), balance=usd("100.00"), at=at, pack=US, procedure=proc
    )
    assert done.follow_up_on == dt.date(2026, 3, 11)  # 5 business days after Wednesday 4 March
    assert why[-1].rule_id == "creditor.dispute.follow_up" and proc.source in why[-1].source


def test_follow_up_skips_norwegian_easter() -> None:
    at = dt.datetime(2026, 4, 1, 10, tzinfo=ZoneInfo("Europe/Oslo"))  # Wednesday before Easter
    d, _, _ = open_dispute("D-1", "A-1", "INV-1", DisputeReason.QUALITY_OF_SERVICE, at=at, pack=NO)
    done, _, _ = resolve_dispute(
        d,
        Resolution(ResolutionKind.UPHELD),
        balance=Money("900.00", "NOK"),
        at=at,
        pack=NO,
        procedure=DisputeProcedure.default("NOK"),
    )
    assert done.follow_up_on == dt.date(2026, 4, 9)  # 2, 3 and 6 April are holidays


def _invoice(
    status: ClaimStatus, paid: str | None = None, submitted: dt.date | None = dt.date(2026, 3, 3)
) -> Invoice:
    line = InvoiceLine("99213", "Visit", usd("300.00"), dt.date(2026, 3, 2))
    return Invoice(
        "INV-1",
        "A-1",
        "USD",
        (line,),
        dt.date(2026, 3, 3),
        dt.date(2026, 4, 2),
        insurance=Insurance(status, insurer_paid=usd(paid) if paid else None, submitted_on=submitted),
    )


def test_after_insurance_offer_takes_effect_when_insurer_pays() -> None:
    at = dt.datetime(2026, 4, 20, 9, tzinfo=NY_TZ)
    write_off = AfterInsuranceOffer("ADJ-1", "D-1", "INV-1", AfterInsuranceKind.WRITE_OFF_REMAINDER, "S-7")
    assert (
        settle_after_insurance(write_off, _invoice(ClaimStatus.PENDING), open_balance=usd("300.00"), at=at)
        is None
    )
    assert (
        settle_after_insurance(write_off, _invoice(ClaimStatus.APPEALED), open_balance=usd("300.00"), at=at)
        is None
    )
    adj = settle_after_insurance(
        write_off, _invoice(ClaimStatus.ADJUDICATED, "240.00"), open_balance=usd("60.00"), at=at
    )
    assert adj is not None and adj.amount == usd("60.00") and adj.kind is AdjustmentKind.WRITE_OFF
    assert adj.reason_code == "DISPUTE-D-1-AFTER-INSURANCE"
    half = AfterInsuranceOffer("ADJ-2", "D-1", "INV-1", AfterInsuranceKind.REDUCE_PERCENT, "S-7", Decimal(50))
    adj = settle_after_insurance(
        half, _invoice(ClaimStatus.ADJUDICATED, "240.00"), open_balance=usd("60.00"), at=at
    )
    assert adj is not None and adj.amount == usd("30.00") and adj.kind is AdjustmentKind.DISCOUNT
    assert (
        settle_after_insurance(write_off, _invoice(ClaimStatus.DENIED), open_balance=usd("0.00"), at=at)
        is None
    )


@pytest.mark.parametrize(
    ("estimate", "bill", "on", "eligible"),
    [
        ("1000.00", "1400.00", dt.date(2026, 6, 30), True),  # $400 over, day 120
        ("1000.00", "1399.99", dt.date(2026, 4, 1), False),  # $399.99 over
        ("1000.00", "1400.00", dt.date(2026, 7, 1), False),  # day 121
    ],
)
def test_no_surprises_act_dispute(estimate: str, bill: str, on: dt.date, eligible: bool) -> None:
    e = nsa_dispute_eligibility(
        EstimateComparison(usd(estimate), usd(bill)), bill_date=dt.date(2026, 3, 2), on=on, pack=US
    )
    assert e.eligible is eligible and e.window_ends == dt.date(2026, 6, 30)
    assert {r.rule_id for r in e.reasons} == {"nsa.dispute_threshold_usd", "nsa.dispute_window_days"}


def test_insurer_wait_pending_and_appealed() -> None:
    pending = _invoice(ClaimStatus.PENDING)
    w = billable_to_patient(pending, today=dt.date(2026, 5, 1), pack=US)
    assert (
        w.waiting and w.amount == usd("0.00") and w.wait_until == dt.date(2026, 5, 2)
    )  # 60 days after filing
    assert billable_to_patient(pending, today=dt.date(2026, 5, 2), pack=US).amount == usd("300.00")
    copay = billable_to_patient(
        pending, today=dt.date(2026, 3, 10), pack=US, known_patient_share=usd("500.00")
    )
    assert copay.amount == usd("300.00")  # never more than what is left
    appealed = _invoice(ClaimStatus.APPEALED)
    assert billable_to_patient(appealed, today=dt.date(2026, 5, 2), pack=US).wait_until == dt.date(2026, 6, 1)
    unfiled = _invoice(ClaimStatus.PENDING, submitted=None)  # counted from the issue date
    assert billable_to_patient(unfiled, today=dt.date(2026, 3, 4), pack=US).wait_until == dt.date(2026, 5, 2)


def test_only_patient_responsibility_after_adjudication() -> None:
    w = billable_to_patient(_invoice(ClaimStatus.ADJUDICATED, "240.00"), today=dt.date(2026, 4, 1), pack=US)
    assert not w.waiting and w.amount == usd("60.00")
