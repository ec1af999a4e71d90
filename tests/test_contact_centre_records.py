"""Contact records: validation, state at an instant, and the history they leave."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from carecollect.contact_centre import (
    ContactChannel,
    ContactOutcome,
    ContactRecord,
    ContactState,
    Conversation,
    Direction,
    HistoryKind,
    Topic,
    conversations,
)
from carecollect.errors import NaiveDatetime, ValidationError

OSLO = ZoneInfo("Europe/Oslo")
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=OSLO)
S = dt.timedelta(seconds=1)


def outbound(
    cid: str, outcome: ContactOutcome, at: dt.datetime, *, account: str = "A-1", invoice: str | None = "INV-1"
):
    answered = at + 20 * S if outcome in (ContactOutcome.CONVERSATION, ContactOutcome.THIRD_PARTY) else None
    return ContactRecord(
        cid,
        account,
        ContactChannel.PHONE,
        Direction.OUTBOUND,
        Topic.PAYMENT,
        at,
        answered_at=answered,
        ended_at=at + 200 * S,
        outcome=outcome,
        invoice_id=invoice,
    )


def test_naive_instants_are_rejected_naming_contact_and_field() -> None:
    with pytest.raises(NaiveDatetime) as info:
        ContactRecord(
            "C-9", "A-1", ContactChannel.PHONE, Direction.INBOUND, Topic.OTHER, dt.datetime(2026, 3, 2, 9)
        )
    assert (info.value.record, info.value.field) == ("ContactRecord C-9", "started_at")
    with pytest.raises(NaiveDatetime, match="answered_at"):
        ContactRecord(
            "C-9",
            "A-1",
            ContactChannel.PHONE,
            Direction.INBOUND,
            Topic.OTHER,
            T0,
            answered_at=dt.datetime(2026, 3, 2, 9, 1),
            outcome=ContactOutcome.CONVERSATION,
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"answered_at": T0 - S, "outcome": ContactOutcome.CONVERSATION}, "answered_at"),
        ({"ended_at": T0 - S, "outcome": ContactOutcome.ABANDONED}, "ended_at"),
        ({"outcome": ContactOutcome.CONVERSATION}, "answered_at"),
        ({"answered_at": T0, "outcome": ContactOutcome.PENDING}, "outcome"),
        ({"outcome": ContactOutcome.ABANDONED}, "ended_at"),
        (
            {"ended_at": T0, "outcome": ContactOutcome.VOICEMAIL},
            "outcome",
        ),  # inbound call cannot reach voicemail
        ({"ended_at": T0, "answered_at": T0, "outcome": ContactOutcome.ABANDONED}, "answered_at"),
    ],
)
def test_inconsistent_records_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ContactRecord("C-1", "A-1", ContactChannel.PHONE, Direction.INBOUND, Topic.OTHER, T0, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert "C-1" in str(info.value)


def test_an_email_is_answered_not_a_conversation() -> None:
    with pytest.raises(ValidationError, match="written contact"):
        ContactRecord(
            "E-1",
            "A-1",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.OTHER,
            T0,
            answered_at=T0 + S,
            outcome=ContactOutcome.CONVERSATION,
        )
    with pytest.raises(ValidationError, match="inbound call"):
        ContactRecord(
            "E-1",
            "A-1",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.OTHER,
            T0,
            ended_at=T0 + S,
            outcome=ContactOutcome.ABANDONED,
        )


def test_empty_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="account_id"):
        ContactRecord("C-1", " ", ContactChannel.PHONE, Direction.INBOUND, Topic.OTHER, T0)


def test_state_and_wait_at_an_instant() -> None:
    rec = ContactRecord(
        "C-1",
        "A-1",
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.OTHER,
        T0,
        answered_at=T0 + 45 * S,
        ended_at=T0 + 400 * S,
        outcome=ContactOutcome.CONVERSATION,
    )
    assert rec.state_at(T0 - S) is ContactState.NOT_YET_ARRIVED
    assert rec.state_at(T0 + 30 * S) is ContactState.WAITING
    assert rec.wait_at(T0 + 30 * S) == 30 * S
    assert rec.state_at(T0 + 45 * S) is ContactState.ANSWERED
    assert rec.wait_at(T0 + dt.timedelta(days=1)) == 45 * S
    gone = ContactRecord(
        "C-2",
        "A-1",
        ContactChannel.PHONE,
        Direction.INBOUND,
        Topic.OTHER,
        T0,
        ended_at=T0 + 70 * S,
        outcome=ContactOutcome.ABANDONED,
    )
    assert gone.state_at(T0 + 80 * S) is ContactState.ENDED_UNANSWERED
    assert gone.wait_at(T0 + 80 * S) == 70 * S


def test_repr_carries_ids_only() -> None:
    rec = outbound("C-1", ContactOutcome.CONVERSATION, T0)
    text = repr(rec)
    assert "C-1" in text
    assert "A-1" in text
    names = {a.name for a in ContactRecord.__attrs_attrs__}
    assert names.isdisjoint({"name", "patient_name", "phone_number", "address", "body", "text"})


def test_history_events() -> None:
    kinds = {
        ContactOutcome.CONVERSATION: HistoryKind.CONVERSATION,
        ContactOutcome.THIRD_PARTY: HistoryKind.THIRD_PARTY,
        ContactOutcome.VOICEMAIL: HistoryKind.VOICEMAIL,
        ContactOutcome.NO_CONNECTION: HistoryKind.ATTEMPT,
    }
    for outcome, kind in kinds.items():
        event = outbound("C-1", outcome, T0).to_history_event()
        assert event is not None
        assert event.kind is kind
        assert event.account_id == "A-1"
        assert event.invoice_id == "INV-1"
        assert event.reached_patient is (kind is HistoryKind.CONVERSATION)
    conv = outbound("C-1", ContactOutcome.CONVERSATION, T0).to_history_event()
    assert conv is not None
    assert conv.at == T0 + 20 * S
    open_call = ContactRecord("C-2", "A-1", ContactChannel.PHONE, Direction.INBOUND, Topic.OTHER, T0)
    assert open_call.to_history_event() is None
    mail = ContactRecord(
        "E-1",
        "A-1",
        ContactChannel.EMAIL,
        Direction.INBOUND,
        Topic.DISPUTE,
        T0,
        answered_at=T0 + 3600 * S,
        outcome=ContactOutcome.ANSWERED,
    )
    event = mail.to_history_event()
    assert event is not None
    assert event.kind is HistoryKind.WRITTEN_REPLY
    assert event.reached_patient


def test_conversations_for_the_governor() -> None:
    records = [
        outbound("C-3", ContactOutcome.CONVERSATION, T0 + dt.timedelta(hours=2), account="A-2", invoice=None),
        outbound("C-1", ContactOutcome.VOICEMAIL, T0),
        outbound("C-2", ContactOutcome.CONVERSATION, T0 + dt.timedelta(hours=1)),
        outbound("C-4", ContactOutcome.THIRD_PARTY, T0 + dt.timedelta(hours=3)),
        ContactRecord(
            "E-1",
            "A-1",
            ContactChannel.EMAIL,
            Direction.INBOUND,
            Topic.DISPUTE,
            T0,
            answered_at=T0 + 60 * S,
            outcome=ContactOutcome.ANSWERED,
            invoice_id="INV-1",
        ),
        ContactRecord(
            "K-1",
            "A-3",
            ContactChannel.CALLBACK,
            Direction.INBOUND,
            Topic.HARDSHIP,
            T0,
            answered_at=T0 + 600 * S,
            ended_at=T0 + 900 * S,
            outcome=ContactOutcome.CONVERSATION,
        ),
    ]
    found = list(conversations(records))
    assert found == [
        Conversation("A-3", None, T0 + 600 * S),
        Conversation("A-1", "INV-1", T0 + dt.timedelta(hours=1, seconds=20)),
        Conversation("A-2", None, T0 + dt.timedelta(hours=2, seconds=20)),
    ]
    account, invoice, at = found[1]
    assert (account, invoice) == ("A-1", "INV-1")
    assert at.tzinfo is not None
    with_written = list(conversations(records, include_written=True))
    assert Conversation("A-1", "INV-1", T0 + 60 * S) in with_written
    assert len(with_written) == 4


# -- the dispute procedure sees that the patient was met ----------------------------------------


def _dispute(invoice: str | None = "INV-1"):  # type: ignore[no-untyped-def]
    from carecollect.disputes import Dispute, DisputeReason

    return Dispute("D-1", "A-1", invoice, DisputeReason.QUALITY_OF_SERVICE, T0)


def test_the_first_conversation_after_opening_meets_the_patient() -> None:
    from carecollect.contact_centre import meet_in_dispute

    before = outbound("C-0", ContactOutcome.CONVERSATION, T0 - 3600 * S)  # before the dispute: not an answer
    voicemail = outbound("C-1", ContactOutcome.VOICEMAIL, T0 + 60 * S)  # left a message: not met
    other_account = outbound("C-2", ContactOutcome.CONVERSATION, T0 + 120 * S, account="A-2")
    other_invoice = outbound("C-3", ContactOutcome.CONVERSATION, T0 + 180 * S, invoice="INV-2")
    met_call = outbound("C-4", ContactOutcome.CONVERSATION, T0 + 600 * S)
    later_call = outbound("C-5", ContactOutcome.CONVERSATION, T0 + 7200 * S, invoice=None)
    records = [later_call, voicemail, before, other_account, other_invoice, met_call]
    dispute, event = meet_in_dispute(_dispute(), records)
    assert event is not None and event.type.value == "dispute.patient_met"
    assert dispute.met_patient_at == T0 + 620 * S  # the instant the call was answered
    assert dispute.first_response_at == dispute.met_patient_at
    # calling it again on every run changes nothing
    assert meet_in_dispute(dispute, records) == (dispute, None)
    # an account-wide dispute counts a conversation about any invoice of the account
    wide, _ = meet_in_dispute(_dispute(invoice=None), records)
    assert wide.met_patient_at == T0 + 200 * S


def test_a_written_reply_meets_the_patient_and_nothing_else_does() -> None:
    from carecollect.contact_centre import meet_in_dispute

    email = ContactRecord(
        "E-1",
        "A-1",
        ContactChannel.EMAIL,
        Direction.INBOUND,
        Topic.DISPUTE,
        T0 + 60 * S,
        answered_at=T0 + 5400 * S,
        outcome=ContactOutcome.ANSWERED,
        invoice_id="INV-1",
    )
    waiting = ContactRecord("E-2", "A-1", ContactChannel.EMAIL, Direction.INBOUND, Topic.DISPUTE, T0 + 30 * S)
    unmet, event = meet_in_dispute(_dispute(), [waiting, outbound("C-1", ContactOutcome.NO_CONNECTION, T0)])
    assert event is None and unmet.met_patient_at is None
    met, event = meet_in_dispute(_dispute(), [waiting, email])
    assert event is not None and event.detail("channel") == "email"
    assert met.met_patient_at == T0 + 5400 * S


def test_a_closed_dispute_is_left_alone_and_guards_hold() -> None:
    from carecollect.contact_centre import meet_in_dispute
    from carecollect.disputes import record_patient_met, withdraw_dispute
    from carecollect.errors import InvalidTransition

    closed, _ = withdraw_dispute(_dispute(), at=T0 + S)
    assert meet_in_dispute(closed, [outbound("C-4", ContactOutcome.CONVERSATION, T0 + 600 * S)]) == (
        closed,
        None,
    )
    with pytest.raises(InvalidTransition, match="Dispute D-1"):
        record_patient_met(closed, at=T0 + 600 * S, channel="phone")
    with pytest.raises(ValidationError, match="Dispute D-1: field 'met_patient_at'"):
        record_patient_met(_dispute(), at=T0 - S, channel="phone")
    with pytest.raises(NaiveDatetime):
        record_patient_met(_dispute(), at=dt.datetime(2026, 3, 2, 10, 0), channel="phone")
    # an earlier meeting is kept when a later one is recorded
    first, _ = record_patient_met(_dispute(), at=T0 + 60 * S, channel="phone")
    again, _ = record_patient_met(first, at=T0 + 120 * S, channel="email")
    assert again.met_patient_at == T0 + 60 * S
