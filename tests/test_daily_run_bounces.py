"""A hard bounce marks the contact point undeliverable; later messages skip it and use another channel.

Real runs (:func:`~carecollect.run.execute.execute_run`) on a real SQLite file,
through the built-in file ``outbox`` channel, whose delivery reports are JSON
bodies: a run e-mails a statement, the bounce comes in, and the next step goes
by letter (or not at all, with the reason) until a new address arrives.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.invoices import InvoiceStatus
from carecollect.outreach import AttemptOutcome
from carecollect.patients import ContactPoint, Patient, mark_undeliverable, opt_out
from carecollect.plugins.manager import PluginManager, make_plugin_manager
from carecollect.run.decisions import DecisionKind
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import MIGRATIONS, SQLiteStore
from carecollect.testing.factories import NOW, make_account, make_invoice, make_patient

T0 = NOW + dt.timedelta(hours=5)  # 10:00 in Berlin, inside the quiet-hours window
ADDRESS = "patient@example.org"
CONSENT = NOW - dt.timedelta(days=30)
LETTER = ContactPoint(Channel.LETTER, "Hauptstrasse 1, 10115 Berlin")


def _email(address: str = ADDRESS, **kw: object) -> ContactPoint:
    return ContactPoint(Channel.EMAIL, address, consent_at=CONSENT, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    s.put_creditor(Creditor("C-1", "Klinik am See", CreditorRole.PROVIDER, "DE"))
    s.put_patient(make_patient(contact_points=(_email(),)))
    s.put_account(make_account())
    s.put_invoice(make_invoice(status=InvoiceStatus.OPEN))
    yield s
    s.close()


@pytest.fixture
def pm() -> PluginManager:
    return make_plugin_manager(load_entrypoints=False)


def _settings(tmp_path: Path) -> RunSettings:
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
    )


def _files(tmp_path: Path, suffix: str) -> set[str]:
    folder = tmp_path / "out"
    return {p.name for p in folder.glob(f"*{suffix}")} if folder.exists() else set()


def _bounce(provider_message_id: str, state: str = "undeliverable") -> InboundEvent:
    body = {"id": provider_message_id, "state": state, "detail": "550 mailbox unknown"}
    return InboundEvent(InboundKind.DELIVERY_REPORT, "outbox", json.dumps(body).encode())


def _send_and_bounce(store: SQLiteStore, pm: PluginManager, settings: RunSettings) -> str:
    """Run at T0 (the statement goes by e-mail), then take in its hard bounce; the message's id."""
    report = execute_run(store, T0, pm, settings)
    assert report.sent == 1
    sent = next(a for a in store.attempts_for("A-1") if a.provider_message_id)
    assert sent.channel is Channel.EMAIL and sent.provider_message_id is not None
    taken = intake(store, pm, settings, [_bounce(sent.provider_message_id)], T0 + dt.timedelta(hours=1))
    assert (taken.bounced, taken.failures) == (1, ())
    return sent.provider_message_id


def _next_plan(store: SQLiteStore, settings: RunSettings) -> tuple[dt.datetime, object]:
    """The first day after T0 on which the cadence has a step due (a message or a held step)."""
    for days in range(1, 120):
        at = T0 + dt.timedelta(days=days)
        plan = plan_run(store, at, settings)
        if plan.messages or any(r.rule_id == "patient.consent" for d in plan.decisions for r in d.reasons):
            return at, plan
    raise AssertionError("no step fell due within 120 days")


def _reasons(plan: object) -> list[str]:
    return [r.rule_id for d in plan.decisions for r in d.reasons]  # type: ignore[attr-defined]


def test_a_hard_bounce_marks_the_point_and_the_next_step_goes_by_letter(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    message_id = _send_and_bounce(store, pm, settings)
    emails = _files(tmp_path, ".eml")
    assert len(emails) == 1

    point = store.get_patient("P-1").points(Channel.EMAIL)[0]
    assert point.undeliverable_at == T0 + dt.timedelta(hours=1) and not point.deliverable(
        T0 + dt.timedelta(days=1)
    )
    outcomes = [a.outcome for a in store.attempts_for("A-1")]
    assert outcomes.count(AttemptOutcome.BOUNCED) == 1  # the bounce itself is kept
    marks = [r for r in store.audit_records(subject_id="P-1") if r.kind == "contact_point.undeliverable"]
    assert len(marks) == 1 and marks[0].data["channel"] == "email"
    assert ADDRESS not in json.dumps([dict(r.data) for r in store.audit_records()])

    # a replayed bounce changes nothing more
    again = intake(store, pm, settings, [_bounce(message_id)], T0 + dt.timedelta(hours=3))
    assert (again.bounced, again.duplicates) == (0, 1)
    assert store.get_patient("P-1").points(Channel.EMAIL)[0] == point

    # the nightly import adds a postal address and repeats the dead e-mail address: the mark stays
    store.put_patient(make_patient(contact_points=(_email(), LETTER)))
    assert store.get_patient("P-1").points(Channel.EMAIL)[0].undeliverable_at == point.undeliverable_at

    at, plan = _next_plan(store, settings)
    assert [m.channel for m in plan.messages] == [Channel.LETTER]  # type: ignore[attr-defined]
    assert "contact_point.undeliverable" in _reasons(plan)
    report = execute_run(store, at, pm, settings)
    assert report.sent == 1 and report.failed == 0
    assert _files(tmp_path, ".eml") == emails  # no second e-mail to the dead address
    assert len(_files(tmp_path, ".txt")) == 1  # the letter


def test_with_no_other_channel_nothing_is_sent_and_the_plan_says_why(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    _send_and_bounce(store, pm, settings)
    at, plan = _next_plan(store, settings)
    assert plan.messages == ()  # type: ignore[attr-defined]
    held = [d for d in plan.decisions if d.kind is DecisionKind.NOTHING_DUE]  # type: ignore[attr-defined]
    assert any(r.rule_id == "contact_point.undeliverable" for d in held for r in d.reasons)
    execute_run(store, at, pm, settings)
    assert len(_files(tmp_path, ".eml")) == 1


def test_a_new_address_clears_the_bounce(store: SQLiteStore, pm: PluginManager, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _send_and_bounce(store, pm, settings)
    store.put_patient(make_patient(contact_points=(_email("new@example.org"),)))
    assert store.get_patient("P-1").points(Channel.EMAIL)[0].undeliverable_at is None
    at, plan = _next_plan(store, settings)
    assert [m.channel for m in plan.messages] == [Channel.EMAIL]  # type: ignore[attr-defined]
    assert "contact_point.undeliverable" not in _reasons(plan)
    assert execute_run(store, at, pm, settings).sent == 1
    assert "new@example.org" in "".join(
        (tmp_path / "out" / name).read_text() for name in _files(tmp_path, ".eml")
    )


def test_a_later_check_of_the_same_address_clears_the_bounce(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    _send_and_bounce(store, pm, settings)
    checked = T0 + dt.timedelta(days=1)
    store.put_patient(make_patient(contact_points=(_email(verified_at=checked),)))
    point = store.get_patient("P-1").points(Channel.EMAIL)[0]
    assert point.undeliverable_at is not None and point.deliverable(checked)
    _, plan = _next_plan(store, settings)
    assert [m.channel for m in plan.messages] == [Channel.EMAIL]  # type: ignore[attr-defined]


def test_an_opt_out_still_wins_over_a_new_address(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    _send_and_bounce(store, pm, settings)
    patient = store.get_patient("P-1")
    patient, _ = opt_out(patient, Channel.EMAIL, at=T0 + dt.timedelta(hours=2))
    stopped = patient.points(Channel.EMAIL)[0]
    assert stopped.opted_out_at is not None and stopped.undeliverable_at is not None
    # a second bounce mark never touches the opt-out
    again, event = mark_undeliverable(patient, Channel.EMAIL, ADDRESS, at=T0 + dt.timedelta(hours=3))
    assert event is None and again == patient
    # a new address with the opt-out carried over: still no e-mail, and the reason is the opt-out
    new = attrs.evolve(stopped, address="new@example.org", undeliverable_at=None)
    store.put_patient(attrs.evolve(patient, contact_points=(new, LETTER)))
    at, plan = _next_plan(store, settings)
    assert [m.channel for m in plan.messages] == [Channel.LETTER]  # type: ignore[attr-defined]
    assert "contact_point.undeliverable" not in _reasons(plan)
    execute_run(store, at, pm, settings)
    assert len(_files(tmp_path, ".eml")) == 1


def test_a_bounce_of_a_replaced_address_marks_nothing(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    execute_run(store, T0, pm, settings)
    sent = next(a for a in store.attempts_for("A-1") if a.provider_message_id)
    assert sent.provider_message_id is not None
    store.put_patient(make_patient(contact_points=(_email("new@example.org"),)))
    taken = intake(store, pm, settings, [_bounce(sent.provider_message_id)], T0 + dt.timedelta(hours=1))
    assert taken.bounced == 1  # recorded and broadcast ...
    assert (
        store.get_patient("P-1").points(Channel.EMAIL)[0].undeliverable_at is None
    )  # ... the new one is fine


def test_mark_undeliverable_keeps_the_first_mark_and_names_no_address() -> None:
    p = Patient(id="P-9", country="NO", contact_points=(_email(), _email("other@example.org"), LETTER))
    at = NOW + dt.timedelta(days=1)
    marked, event = mark_undeliverable(p, Channel.EMAIL, ADDRESS, at=at)
    assert event is not None and event.detail("channel") == "email"
    assert ADDRESS not in repr(event) and ADDRESS not in repr(marked)
    assert [c.undeliverable_at for c in marked.contact_points] == [at, None, None]
    later, again = mark_undeliverable(marked, Channel.EMAIL, ADDRESS, at=at + dt.timedelta(days=1))
    assert again is None and later is marked
    unchanged, none = mark_undeliverable(p, Channel.EMAIL, "gone@example.org", at=at)
    assert none is None and unchanged is p
    with pytest.raises(ValueError, match="time zone|aware"):
        ContactPoint(Channel.EMAIL, ADDRESS, undeliverable_at=dt.datetime(2026, 3, 1, 9))


def test_a_schema_5_file_opens_and_its_points_read_clean(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for version, description, statements in MIGRATIONS:
        if version > 5:
            break
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, NOW.isoformat()))
    db.execute("INSERT INTO patients VALUES ('P-1', 'en', 'UTC', '', NULL, NULL, 'none', '', NULL, NULL)")
    db.execute(
        "INSERT INTO contact_points VALUES ('P-1', 0, 'email', ?, ?, NULL, NULL, NULL)",
        (ADDRESS, CONSENT.isoformat()),
    )
    db.commit()
    db.close()
    with SQLiteStore(path) as s:
        assert s.schema_version() == MIGRATIONS[-1][0]
        point = s.get_patient("P-1").points(Channel.EMAIL)[0]
        assert point.address == ADDRESS and point.undeliverable_at is None
