"""Reg F passive credit reporting (12 CFR 1006.30(a)): a returned message blocks the report.

A collector that has not spoken with the consumer may report only after it sent a
message and no notice of undeliverability arrived within the waiting period.
"""

from __future__ import annotations

import datetime as dt

import pytest

from carecollect import (
    Account,
    Channel,
    ContactPoint,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Ledger,
    Money,
    Patient,
)
from carecollect.creditors import Creditor, CreditorRole
from carecollect.errors import ValidationError
from carecollect.ledger import post_charge
from carecollect.outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from carecollect.policy import get_pack
from carecollect.relief.gates import GateAction, gate
from carecollect.relief.snapshot import GateSnapshot, SentNotice
from carecollect.run.planning import _gate_snapshot
from carecollect.store.base import AccountSnapshot as StoreSnapshot

UTC = dt.UTC
US = get_pack("us")
COLLECTOR = Creditor("C-1", "Collector", CreditorRole.THIRD_PARTY_COLLECTOR, "US")


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def invoice() -> Invoice:
    line = InvoiceLine("X1", "Care", Money("900.00", "USD"), dt.date(2026, 1, 5))
    return Invoice(
        "INV-1",
        "A-1",
        "USD",
        (line,),
        dt.date(2026, 1, 6),
        dt.date(2026, 2, 5),
        first_statement_date=dt.date(2026, 1, 6),
        status=InvoiceStatus.OPEN,
    )


def snap(**kw: object) -> GateSnapshot:
    notices = (SentNotice(OutreachPurpose.PRE_PLACEMENT_NOTICE, dt.date(2026, 4, 1)),)
    return GateSnapshot(
        "A-1",
        Money("900.00", "USD"),
        invoices=(invoice(),),
        notices=notices,
        last_message_on=dt.date(2027, 2, 19),
        **kw,  # type: ignore[arg-type]
    )


def report(s: GateSnapshot, day: dt.date) -> object:
    return gate(s, GateAction.CREDIT_REPORT, now=at(day), pack=US, creditor=COLLECTOR)


def test_a_notice_of_undeliverability_within_the_wait_blocks_reporting() -> None:
    assert report(snap(), dt.date(2027, 3, 5)).allowed  # type: ignore[attr-defined]
    for returned in (dt.date(2027, 2, 19), dt.date(2027, 2, 25), dt.date(2027, 3, 5)):  # first and last day
        d = report(snap(undeliverable_on=(returned,)), dt.date(2027, 3, 5))
        assert not d.allowed  # type: ignore[attr-defined]
        (block,) = d.blocking  # type: ignore[attr-defined]
        assert block.rule_id == "credit.passive_wait_days" and "undeliverable" in block.message
        assert "1006.30" in block.source
        # a new message must go out and its own wait pass
        assert d.earliest == dt.date(2027, 3, 19)  # type: ignore[attr-defined]


def test_a_bounce_outside_the_wait_does_not_count() -> None:
    # returned before the last message went out: the new message is the one that counts
    assert report(snap(undeliverable_on=(dt.date(2027, 2, 18),)), dt.date(2027, 3, 5)).allowed  # type: ignore[attr-defined]
    # returned after the waiting period closed: the rule asks only about the period
    assert report(snap(undeliverable_on=(dt.date(2027, 3, 6),)), dt.date(2027, 3, 9)).allowed  # type: ignore[attr-defined]


def test_a_conversation_still_satisfies_the_rule() -> None:
    s = snap(undeliverable_on=(dt.date(2027, 2, 25),), spoke_with_consumer_on=dt.date(2027, 2, 1))
    assert report(s, dt.date(2027, 3, 5)).allowed  # type: ignore[attr-defined]


def test_undeliverable_dates_are_dates() -> None:
    with pytest.raises(ValidationError, match="undeliverable_on"):
        snap(undeliverable_on=(at(dt.date(2027, 2, 25)),))


def test_the_run_carries_a_bounced_attempt_into_the_gate() -> None:
    sent_at = at(dt.date(2027, 2, 19))
    patient = Patient(
        "P-1",
        "en",
        ("UTC",),
        (ContactPoint(Channel.EMAIL, "p@example.org", consent_at=at(dt.date(2026, 1, 1))),),
    )
    account = Account("A-1", "P-1", "C-1", "USD", jurisdiction="us")
    book, _ = post_charge(Ledger("A-1", "USD"), "INV-1", Money("900.00", "USD"), at=at(dt.date(2026, 1, 6)))
    step = OutreachStep(
        "S-1",
        "A-1",
        "INV-1",
        OutreachPurpose.REMINDER,
        (Channel.EMAIL,),
        sent_at,
        status=OutreachStatus.SENT,
        sent_at=sent_at,
    )
    sent = ContactAttempt(
        "S-1-email", "S-1", "A-1", "INV-1", Channel.EMAIL, sent_at, AttemptOutcome.DELIVERED
    )
    bounce = ContactAttempt(
        "S-1-email-bounce",
        "S-1",
        "A-1",
        "INV-1",
        Channel.EMAIL,
        at(dt.date(2027, 2, 20)),
        AttemptOutcome.BOUNCED,
    )
    notice = OutreachStep(
        "S-0",
        "A-1",
        "INV-1",
        OutreachPurpose.PRE_PLACEMENT_NOTICE,
        (Channel.EMAIL,),
        at(dt.date(2026, 4, 1)),
        status=OutreachStatus.SENT,
        sent_at=at(dt.date(2026, 4, 1)),
    )
    base = StoreSnapshot(account, patient, (invoice(),), book, steps=(notice, step), attempts=(sent,))
    view = _gate_snapshot(base, book.balance, ("INV-1",), "UTC")
    assert report(view, dt.date(2027, 3, 6)).allowed  # type: ignore[attr-defined]
    returned = StoreSnapshot(
        account, patient, (invoice(),), book, steps=(notice, step), attempts=(sent, bounce)
    )
    view = _gate_snapshot(returned, book.balance, ("INV-1",), "UTC")
    d = report(view, dt.date(2027, 3, 6))
    assert not d.allowed and "undeliverable" in d.blocking[0].message  # type: ignore[attr-defined]


def test_the_run_carries_every_fact_the_gates_read() -> None:
    """The class behind a gate that never saw a fact: each field of the gates' snapshot is filled by the run.

    A field the run leaves at its default (as ``handoff_consent_at`` was, read with ``getattr`` from a
    patient that never had it) fails here by name.
    """
    import attrs

    from carecollect.handoff_consent import ConsentMethod, HandoffConsent
    from carecollect.plans import PaymentPlan, PlanStatus, build_schedule
    from carecollect.relief.assistance import AssistanceApplication
    from carecollect.testing.factories import make_dispute

    sent_at = at(dt.date(2027, 2, 19))
    patient = Patient(
        "P-1",
        "en",
        ("UTC",),
        (ContactPoint(Channel.PHONE, "+12125550100", consent_at=at(dt.date(2026, 1, 1))),),
        handoff_consent=HandoffConsent(at(dt.date(2026, 1, 2)), ConsentMethod.ELECTRONIC),
    )
    account = Account("A-1", "P-1", "C-1", "USD", jurisdiction="us")
    book, _ = post_charge(Ledger("A-1", "USD"), "INV-1", Money("900.00", "USD"), at=at(dt.date(2026, 1, 6)))
    step = OutreachStep(
        "S-1",
        "A-1",
        "INV-1",
        OutreachPurpose.REMINDER,
        (Channel.PHONE,),
        sent_at,
        status=OutreachStatus.SENT,
        sent_at=sent_at,
    )
    attempts = (
        ContactAttempt("S-1-a", "S-1", "A-1", "INV-1", Channel.PHONE, sent_at, AttemptOutcome.ANSWERED),
        ContactAttempt("S-1-b", "S-1", "A-1", "INV-1", Channel.PHONE, sent_at, AttemptOutcome.BOUNCED),
    )
    plan = PaymentPlan(
        "PL-1",
        "A-1",
        ("INV-1",),
        Money("900.00", "USD"),
        build_schedule(Money("900.00", "USD"), 3, first_due=dt.date(2026, 3, 1)),
        at(dt.date(2026, 2, 1)),
        PlanStatus.ACTIVE,
    )
    store_view = StoreSnapshot(
        account,
        patient,
        (invoice(),),
        book,
        plans=(plan,),
        disputes=(make_dispute(account_id="A-1", invoice_id="INV-1"),),
        steps=(step,),
        attempts=attempts,
        applications=(AssistanceApplication("FA-1", "A-1", dt.date(2026, 5, 1)),),
    )
    view = _gate_snapshot(store_view, book.balance, ("INV-1",), "UTC")
    for field in attrs.fields(GateSnapshot):
        value = getattr(view, field.name)
        default = field.default if field.default is not attrs.NOTHING else object()
        assert value != default and value not in ((), None), f"the run does not fill {field.name}"
