"""Routing: queue and priority from topic and account state; agents offered in tier order."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecollect.contact_centre import (
    AccountState,
    Agent,
    Competence,
    ContactChannel,
    ContactRecord,
    Direction,
    HomeChannel,
    Priority,
    QueueKind,
    Topic,
    offer_order,
    queue_order,
    route,
)
from carecollect.errors import NaiveDatetime, ValidationError

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("topic", "account", "kind", "priority"),
    [
        (Topic.DISPUTE, None, QueueKind.DISPUTES, Priority.URGENT),
        (Topic.COMPLAINT, AccountState("A", in_hardship=True), QueueKind.DISPUTES, Priority.URGENT),
        (Topic.PAYMENT, AccountState("A", open_dispute=True), QueueKind.DISPUTES, Priority.URGENT),
        (Topic.HARDSHIP, None, QueueKind.HARDSHIP, Priority.HIGH),
        (Topic.PAYMENT_PLAN, None, QueueKind.HARDSHIP, Priority.HIGH),
        (Topic.BALANCE_QUESTION, AccountState("A", in_hardship=True), QueueKind.HARDSHIP, Priority.HIGH),
        (Topic.INSURANCE, AccountState("A", plan_in_arrears=True), QueueKind.HARDSHIP, Priority.HIGH),
        (Topic.BALANCE_QUESTION, AccountState("A"), QueueKind.GENERAL, Priority.NORMAL),
        (Topic.OTHER, None, QueueKind.GENERAL, Priority.NORMAL),
    ],
)
def test_route(topic: Topic, account: AccountState | None, kind: QueueKind, priority: Priority) -> None:
    for channel in ContactChannel:
        r = route(channel, topic, account)
        assert (r.kind, r.priority) == (kind, priority)
        assert r.queue == f"{channel.value}-{kind.value}"
        assert r.reason


def test_queue_names_can_be_overridden() -> None:
    names = {(ContactChannel.PHONE, QueueKind.DISPUTES): "tvist-telefon"}
    assert route(ContactChannel.PHONE, Topic.DISPUTE, queue_names=names).queue == "tvist-telefon"
    assert route(ContactChannel.EMAIL, Topic.DISPUTE, queue_names=names).queue == "email-disputes"


def test_route_refuses_strings() -> None:
    with pytest.raises(ValidationError, match="topic"):
        route(ContactChannel.PHONE, "dispute")  # type: ignore[arg-type]


def _waiting(cid: str, account: str, topic: Topic, minute: int) -> ContactRecord:
    return ContactRecord(
        cid, account, ContactChannel.PHONE, Direction.INBOUND, topic, T0 + dt.timedelta(minutes=minute)
    )


def test_queue_order_dispute_then_hardship_then_oldest() -> None:
    waiting = [
        _waiting("C1", "A-1", Topic.BALANCE_QUESTION, 0),  # routine, oldest
        _waiting("C2", "A-2", Topic.BALANCE_QUESTION, 1),  # patient in hardship
        _waiting("C3", "A-3", Topic.DISPUTE, 5),  # dispute, newest
        _waiting("C4", "A-4", Topic.PAYMENT, 2),  # account with open dispute
        _waiting("C5", "A-5", Topic.OTHER, 0),  # routine, same instant as C1
    ]
    accounts = {"A-2": AccountState("A-2", in_hardship=True), "A-4": AccountState("A-4", open_dispute=True)}
    assert [r.contact_id for r in queue_order(waiting, accounts)] == ["C4", "C3", "C2", "C1", "C5"]


def test_offer_order_follows_the_article() -> None:
    q = "phone-general"
    agents = [
        Agent("E-1", {q: Competence.A}, home=HomeChannel.WRITTEN),  # e-mail staff: last in the phone loop
        Agent("P-C", {q: Competence.C}),
        Agent("P-B", {q: Competence.B}),
        Agent("P-A2", {q: Competence.A}, idle_since=T0 + dt.timedelta(minutes=5)),
        Agent("P-A1", {q: Competence.A}, idle_since=T0),  # longest idle A first
        Agent("P-busy", {q: Competence.A}, available=False),
        Agent("P-other", {"phone-disputes": Competence.A}),
    ]
    assert [a.agent_id for a in offer_order(q, ContactChannel.PHONE, agents)] == [
        "P-A1",
        "P-A2",
        "P-B",
        "P-C",
        "E-1",
    ]
    mail_q = "email-general"
    staff = [
        Agent("P-1", {mail_q: Competence.A}),
        Agent("E-2", {mail_q: Competence.B}, home=HomeChannel.WRITTEN),
    ]
    assert [a.agent_id for a in offer_order(mail_q, ContactChannel.EMAIL, staff)] == ["E-2", "P-1"]


def test_agent_idle_since_must_be_aware() -> None:
    with pytest.raises(NaiveDatetime, match="Agent AG-1"):
        Agent("AG-1", {}, idle_since=dt.datetime(2026, 3, 2, 9, 0))


@given(
    specs=st.lists(
        st.tuples(st.sampled_from(list(Competence)), st.sampled_from(list(HomeChannel)), st.booleans()),
        max_size=12,
    )
)
def test_offer_order_is_sorted_by_home_then_tier(specs: list[tuple[Competence, HomeChannel, bool]]) -> None:
    q = "phone-general"
    agents = [
        Agent(f"AG-{i}", {q: tier}, home=home, available=free) for i, (tier, home, free) in enumerate(specs)
    ]
    offered = offer_order(q, ContactChannel.PHONE, agents)
    assert len(offered) == sum(1 for _, _, free in specs if free)
    keys = [(a.home is not HomeChannel.PHONE, a.competence(q).rank) for a in offered]  # type: ignore[union-attr]
    assert keys == sorted(keys)
