"""German handoff consent (StGB § 203; BGH VIII ZR 296/90): a real field, imported, stored, honoured by the run."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.errors import InvalidTransition, NaiveDatetime, ValidationError
from carecollect.handoff_consent import ConsentMethod, HandoffConsent
from carecollect.importers import FORMAT, ImportFailed, export_csv, export_document, import_csv, import_json
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import Ledger, post_charge
from carecollect.outreach import OutreachPurpose, OutreachStatus, OutreachStep
from carecollect.patients import ContactPoint, record_handoff_consent, withdraw_handoff_consent
from carecollect.run.decisions import DecisionKind
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import MIGRATIONS, SQLiteStore
from carecollect.testing.factories import make_account, make_invoice, make_patient

BERLIN = dt.timezone(dt.timedelta(hours=1))
GIVEN = dt.datetime(2026, 1, 20, 10, 30, tzinfo=BERLIN)
CONSENT = HandoffConsent(GIVEN, ConsentMethod.WRITTEN, reference="Formular 2026-117")


def test_the_consent_is_validated() -> None:
    with pytest.raises(NaiveDatetime):
        HandoffConsent(dt.datetime(2026, 1, 20, 10), ConsentMethod.WRITTEN)
    with pytest.raises(ValidationError, match="method"):
        HandoffConsent(GIVEN, "written")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="withdrawn_at"):
        HandoffConsent(GIVEN, ConsentMethod.ELECTRONIC, withdrawn_at=GIVEN - dt.timedelta(seconds=1))
    with pytest.raises(ValidationError, match="reference"):
        HandoffConsent(GIVEN, ConsentMethod.ELECTRONIC, reference=" ")
    with pytest.raises(ValidationError, match="handoff_consent"):
        make_patient(handoff_consent=GIVEN)
    assert "2026-117" not in repr(make_patient(handoff_consent=CONSENT))


def test_record_and_withdraw_are_guarded() -> None:
    patient, event = record_handoff_consent(make_patient(), CONSENT)
    assert event.type.value == "patient.handoff_consent_given" and event.detail("method") == "written"
    with pytest.raises(InvalidTransition):
        record_handoff_consent(patient, CONSENT)
    later = GIVEN + dt.timedelta(days=40)
    withdrawn, event = withdraw_handoff_consent(patient, at=later)
    assert event.type.value == "patient.handoff_consent_withdrawn"
    assert withdrawn.handoff_consent is not None
    assert withdrawn.handoff_consent.in_force(later - dt.timedelta(seconds=1))
    assert not withdrawn.handoff_consent.in_force(later)
    with pytest.raises(InvalidTransition):
        withdraw_handoff_consent(withdrawn, at=later)
    with pytest.raises(InvalidTransition):
        withdraw_handoff_consent(make_patient(), at=later)
    with pytest.raises(ValidationError, match="withdrawn_at"):
        withdraw_handoff_consent(patient, at=GIVEN - dt.timedelta(days=1))
    # a new consent after a withdrawal is recorded
    again = HandoffConsent(later + dt.timedelta(days=1), ConsentMethod.ELECTRONIC)
    assert record_handoff_consent(withdrawn, again)[0].handoff_consent == again


def _document(**consent: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "creditors": [{"id": "CR-DE", "name": "Praxis am Park", "country": "DE"}],
        "patients": [
            {
                "id": "P-1",
                "preferred_language": "de",
                "time_zones": ["Europe/Berlin"],
                "country": "DE",
                **consent,
            },
            {"id": "P-2", "preferred_language": "de", "time_zones": ["Europe/Berlin"], "country": "DE"},
        ],
    }


FULL = {
    "handoff_consent_given_at": "2026-01-20T10:30:00+01:00",
    "handoff_consent_method": "written",
    "handoff_consent_reference": "Formular 2026-117",
    "handoff_consent_withdrawn_at": "2026-06-01T09:00:00+02:00",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "first.db") as s:
        yield s


def test_json_csv_and_sqlite_round_trip(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, _document(**FULL))
    consent = store.get_patient("P-1").handoff_consent
    assert consent == HandoffConsent(
        GIVEN,
        ConsentMethod.WRITTEN,
        "Formular 2026-117",
        dt.datetime(2026, 6, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    assert store.get_patient("P-2").handoff_consent is None
    exported = export_document(store)
    assert {k: exported["patients"][0][k] for k in FULL} == {
        "handoff_consent_given_at": "2026-01-20T09:30:00+00:00",
        "handoff_consent_method": "written",
        "handoff_consent_reference": "Formular 2026-117",
        "handoff_consent_withdrawn_at": "2026-06-01T07:00:00+00:00",
    }
    export_csv(store, tmp_path / "csv")
    with SQLiteStore(tmp_path / "second.db") as second:
        import_csv(second, tmp_path / "csv")
        assert second.get_patient("P-1").handoff_consent == consent
        assert second.get_patient("P-2").handoff_consent is None
        assert export_document(second) == exported


def test_fhir_round_trip_is_valid_fhir(store: SQLiteStore, tmp_path: Path) -> None:
    pytest.importorskip("fhir.resources")
    from carecollect.importers.fhir import HANDOFF_CONSENT_EXTENSION, export_fhir_bundle, import_fhir

    import_json(store, _document(**FULL))
    bundle = export_fhir_bundle(store)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "P-1")
    (ext,) = [e for e in patient["extension"] if e["url"] == HANDOFF_CONSENT_EXTENSION]
    assert [p["url"] for p in ext["extension"]] == ["givenAt", "method", "reference", "withdrawnAt"]
    with SQLiteStore(tmp_path / "fhir.db") as second:
        import_fhir(second, bundle)  # validates every resource with fhir.resources first
        assert second.get_patient("P-1").handoff_consent == store.get_patient("P-1").handoff_consent
        assert second.get_patient("P-2").handoff_consent is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"handoff_consent_method": "written"}, "handoff_consent_given_at"),
        ({"handoff_consent_given_at": "2026-01-20T10:30:00+01:00"}, "handoff_consent_method"),
        ({**FULL, "handoff_consent_method": "nod"}, "handoff_consent_method"),
        ({**FULL, "handoff_consent_given_at": "2026-01-20T10:30:00"}, "handoff_consent_given_at"),
        (
            {**FULL, "handoff_consent_withdrawn_at": "2025-12-01T10:00:00+01:00"},
            "handoff_consent_withdrawn_at",
        ),
    ],
)
def test_bad_consent_fields_are_reported_by_record_and_field(
    store: SQLiteStore, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(ImportFailed) as info:
        import_json(store, _document(**fields))
    (problem,) = info.value.problems
    assert problem.where == "patients[0]" and problem.field == field
    assert store.counts()["patients"] == 0


def test_a_schema_6_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    try:
        db.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        for version, description, statements in MIGRATIONS[:6]:
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, GIVEN.isoformat())
            )
        db.execute(
            "INSERT INTO patients VALUES ('P-1', 'de', 'Europe/Berlin', '', 'DE', NULL, 'none', '', NULL, NULL)"
        )
        db.commit()
    finally:
        db.close()
    with SQLiteStore(path) as s:
        assert s.schema_version() == MIGRATIONS[-1][0] >= 7
        assert s.get_patient("P-1").handoff_consent is None
        s.put_patient(make_patient(handoff_consent=CONSENT))
        assert s.get_patient("P-1").handoff_consent == CONSENT


# -- the run ----------------------------------------------------------------------------------------
NOW = dt.datetime(2026, 5, 4, 10, tzinfo=dt.UTC)  # a Monday, 12:00 in Berlin


def _german_store(path: Path, consent: HandoffConsent | None) -> SQLiteStore:
    s = SQLiteStore(path)
    s.put_creditor(Creditor("C-1", "Klinik am See", CreditorRole.PROVIDER, "DE"))
    letter = ContactPoint(Channel.LETTER, "Hauptstrasse 1, 10115 Berlin")
    s.put_patient(make_patient(contact_points=(letter,), handoff_consent=consent))
    s.put_account(make_account())
    invoice = make_invoice(status=InvoiceStatus.OPEN, first_statement_date=dt.date(2026, 1, 6))
    s.put_invoice(invoice)
    book, _ = post_charge(
        Ledger("A-1", "EUR"), "INV-1", invoice.total, at=dt.datetime(2026, 1, 6, tzinfo=dt.UTC)
    )
    s.append_ledger("A-1", book.entries)
    sent = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    s.put_step(
        OutreachStep(
            "S-1",
            "A-1",
            "INV-1",
            OutreachPurpose.PRE_PLACEMENT_NOTICE,
            (Channel.LETTER,),
            sent,
            status=OutreachStatus.SENT,
            sent_at=sent,
            deadline=dt.date(2026, 3, 16),
        )
    )
    return s


def _placement_decision(tmp_path: Path, consent: HandoffConsent | None) -> Any:
    with _german_store(tmp_path / "run.db", consent) as s:
        plan = plan_run(s, NOW, RunSettings(agency="agency-files"))
    (decision,) = [d for d in plan.decisions if d.kind in (DecisionKind.PLACE, DecisionKind.GATE_HELD)]
    return plan, decision


def test_the_run_places_a_german_account_with_consent(tmp_path: Path) -> None:
    plan, decision = _placement_decision(tmp_path, CONSENT)
    assert decision.kind is DecisionKind.PLACE
    assert [p.account_id for p in plan.placements] == ["A-1"]
    consent = next(r for r in decision.reasons if r.rule_id == "de.handoff_requires_consent")
    assert "2026-01-20" in consent.message and "written" in consent.message


@pytest.mark.parametrize(
    ("consent", "why"),
    [
        (None, "no recorded consent"),
        (HandoffConsent(GIVEN, ConsentMethod.WRITTEN, withdrawn_at=NOW - dt.timedelta(days=1)), "withdrew"),
        (HandoffConsent(NOW + dt.timedelta(days=2), ConsentMethod.ELECTRONIC), "after today"),
    ],
)
def test_the_run_holds_a_german_account_without_consent_in_force(
    tmp_path: Path, consent: HandoffConsent | None, why: str
) -> None:
    plan, decision = _placement_decision(tmp_path, consent)
    assert decision.kind is DecisionKind.GATE_HELD and plan.placements == ()
    (block,) = [r for r in decision.reasons if r.outcome.blocks]
    assert block.rule_id == "de.handoff_requires_consent" and why in block.message
    assert "203" in block.source
