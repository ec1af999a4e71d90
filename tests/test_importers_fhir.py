"""FHIR R4 import through fhir.resources: valid bundles, invalid resources reported by id, round trip."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fhir.resources")

from carecollect.importers import ImportFailed, export_document
from carecollect.importers.fhir import EXT, TZ_EXTENSION, export_fhir_bundle, import_fhir
from carecollect.money import Money
from carecollect.store import SQLiteStore


def bundle() -> dict[str, Any]:
    resources = [
        {
            "resourceType": "Organization",
            "id": "CR-DE",
            "name": "Praxis am Park",
            "address": [{"country": "DE"}],
        },
        {
            "resourceType": "Patient",
            "id": "P-1",
            "birthDate": "1971-08-02",
            "extension": [{"url": TZ_EXTENSION, "valueCode": "Europe/Berlin"}],
            "name": [{"given": ["Anna"], "family": "Schmidt"}],
            "communication": [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "de-DE"}]}, "preferred": True}
            ],
            "telecom": [
                {
                    "system": "email",
                    "value": "anna@example.org",
                    "period": {"start": "2026-01-10T08:00:00+01:00"},
                }
            ],
            "address": [{"line": ["Parkstraße 3"], "postalCode": "10115", "city": "Berlin", "country": "DE"}],
        },
        {
            "resourceType": "Account",
            "id": "A-1",
            "status": "active",
            "extension": [{"url": EXT + "jurisdiction", "valueCode": "de"}],
            "subject": [{"reference": "Patient/P-1"}],
            "owner": {"reference": "Organization/CR-DE"},
        },
        {
            "resourceType": "Invoice",
            "id": "INV-1",
            "status": "issued",
            "date": "2026-03-02",
            "extension": [{"url": EXT + "due-date", "valueDate": "2026-04-01"}],
            "account": {"reference": "Account/A-1"},
            "lineItem": [
                {
                    "sequence": 1,
                    "chargeItemCodeableConcept": {"coding": [{"code": "GOÄ 1"}], "text": "Beratung"},
                    "priceComponent": [
                        {"type": "base", "amount": {"value": Decimal("10.72"), "currency": "EUR"}}
                    ],
                },
                {
                    "sequence": 2,
                    "chargeItemCodeableConcept": {"coding": [{"code": "GOÄ 5"}]},
                    "priceComponent": [{"type": "base", "amount": {"value": 10.72, "currency": "EUR"}}],
                },
            ],
            "totalGross": {"value": Decimal("21.44"), "currency": "EUR"},
        },
        {
            "resourceType": "PaymentReconciliation",
            "id": "PR-1",
            "status": "active",
            "created": "2026-03-10T12:00:00+01:00",
            "paymentDate": "2026-03-10",
            "paymentAmount": {"value": Decimal("5.00"), "currency": "EUR"},
            "detail": [
                {
                    "identifier": {"value": "PAY-1"},
                    "type": {"coding": [{"code": "payment"}]},
                    "request": {"reference": "Invoice/INV-1"},
                    "amount": {"value": Decimal("5.00"), "currency": "EUR"},
                }
            ],
        },
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def test_a_valid_bundle_is_mapped_and_stored(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "f.db") as store:
        summary = import_fhir(store, bundle())
        assert (summary.patients, summary.accounts, summary.invoices, summary.payments) == (1, 1, 1, 1)
        patient = store.get_patient("P-1")
        assert patient.preferred_language == "de" and patient.time_zones == ("Europe/Berlin",)
        assert {c.channel.value for c in patient.contact_points} == {"email", "letter"}
        account = store.get_account("A-1")
        assert (account.currency, account.jurisdiction) == ("EUR", "de")
        assert store.get_invoice("INV-1").total == Money("21.44", "EUR")
        assert store.ledger("A-1").balance == Money("16.44", "EUR")


def test_invalid_resources_are_reported_by_type_id_and_element(tmp_path: Path) -> None:
    doc = bundle()
    doc["entry"][1]["resource"]["birthDate"] = "02.08.1971"
    doc["entry"][3]["resource"]["date"] = "yesterday"
    doc["entry"].append({"resource": {"resourceType": "Observation", "id": "O-1"}})
    with SQLiteStore(tmp_path / "f.db") as store:
        with pytest.raises(ImportFailed) as info:
            import_fhir(store, doc)
        found = {(p.where, p.field) for p in info.value.problems}
        assert ("Patient/P-1", "birthDate") in found
        assert ("Invoice/INV-1", "date") in found
        assert ("Observation/O-1", "resourceType") in found
        assert store.counts()["patients"] == 0


def test_valid_fhir_with_carecollect_problems_is_refused_whole(tmp_path: Path) -> None:
    doc = copy.deepcopy(bundle())
    doc["entry"][3]["resource"]["lineItem"][0]["priceComponent"][0]["amount"]["value"] = Decimal("10.725")
    with SQLiteStore(tmp_path / "f.db") as store:
        with pytest.raises(ImportFailed) as info:
            import_fhir(store, doc)
        assert [(p.where, p.field) for p in info.value.problems] == [("Invoice/INV-1", "lines[0].amount")]
        assert store.counts()["accounts"] == 0


def test_an_unknown_invoice_status_is_reported_by_resource(tmp_path: Path) -> None:
    doc = bundle()
    doc["entry"][3]["resource"]["status"] = "sent-by-pigeon"
    with SQLiteStore(tmp_path / "f.db") as store, pytest.raises(ImportFailed) as info:
        import_fhir(store, doc)
    assert [(p.where, p.field) for p in info.value.problems] == [("Invoice/INV-1", "status")]


def test_fhir_export_reads_back_the_same(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as first, SQLiteStore(tmp_path / "b.db") as second:
        import_fhir(first, bundle())
        exported = export_fhir_bundle(first)
        import_fhir(second, exported)
        assert export_document(second) == export_document(first)
        assert second.ledger("A-1") == first.ledger("A-1")


def test_non_bundle_input_is_an_import_failure(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "f.db") as store, pytest.raises(ImportFailed, match="Bundle"):
        import_fhir(store, {"resourceType": "Patient"})


def test_a_fhir_round_trip_keeps_the_insurance_side_and_every_balance() -> None:
    from carecollect.portfolio import load_portfolio

    with SQLiteStore(":memory:") as a, SQLiteStore(":memory:") as b:
        load_portfolio(a, 40, seed=5, as_of=dt.date(2026, 3, 2))
        import_fhir(b, json.loads(json.dumps(export_fhir_bundle(a), default=str)))
        before = {s.account.id: (s.ledger.balance, s.invoices) for s in a.iter_account_snapshots()}
        after = {s.account.id: (s.ledger.balance, s.invoices) for s in b.iter_account_snapshots()}
        assert after == before
        assert any(i.insurance.insurer_paid is not None for _, invs in before.values() for i in invs)


def test_a_fhir_round_trip_keeps_a_bounced_point_bounced(tmp_path: Path) -> None:
    """The hard-bounce mark travels as carecollect's telecom extension, validated by fhir.resources."""
    from carecollect.channels import Channel
    from carecollect.importers.fhir import UNDELIVERABLE_EXTENSION
    from carecollect.patients import mark_undeliverable

    at = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    with SQLiteStore(tmp_path / "a.db") as first, SQLiteStore(tmp_path / "b.db") as second:
        import_fhir(first, bundle())
        patient = next(
            first.get_patient(s.patient.id)
            for s in first.iter_account_snapshots()
            if any(p.channel is not Channel.LETTER for p in s.patient.contact_points)
        )
        point = next(p for p in patient.contact_points if p.channel is not Channel.LETTER)
        marked, event = mark_undeliverable(patient, point.channel, point.address, at=at)
        assert event is not None
        first.put_patient(marked)
        exported = export_fhir_bundle(first)
        telecoms = [
            t
            for e in exported["entry"]
            if e["resource"]["resourceType"] == "Patient"
            for t in e["resource"].get("telecom", [])
        ]
        assert any(x["url"] == UNDELIVERABLE_EXTENSION for t in telecoms for x in t.get("extension", []))
        import_fhir(second, json.loads(json.dumps(exported, default=str)))
        (again,) = [p for p in second.get_patient(patient.id).contact_points if p.address == point.address]
        assert again.undeliverable_at == at
        assert not again.deliverable(at + dt.timedelta(days=1))
        assert export_document(second) == export_document(first)


def test_fhir_import_derives_from_the_address_and_never_guesses_a_us_zone(tmp_path: Path) -> None:
    doc = bundle()
    patient = doc["entry"][1]["resource"]
    patient.pop("extension")
    with SQLiteStore(tmp_path / "f.db") as store:
        import_fhir(store, doc)
        assert store.get_patient("P-1").time_zones == ("Europe/Berlin",)
    patient["address"] = [{"line": ["1 Main St"], "city": "Springfield", "country": "US"}]
    with SQLiteStore(tmp_path / "g.db") as store:
        with pytest.raises(ImportFailed) as info:
            import_fhir(store, doc)
        # refused, never placed in a guessed US zone: without a state neither a zone nor the US
        # letter address (it needs "ST 12345") can be had
        fields = {(p.where, p.field) for p in info.value.problems}
        assert fields & {("Patient/P-1", "time_zones"), ("Patient/P-1", "contact_points[1].address")}
    patient["address"] = [
        {"line": ["1 Main St"], "city": "Springfield", "state": "OR", "postalCode": "97477", "country": "US"}
    ]
    with SQLiteStore(tmp_path / "h.db") as store:
        import_fhir(store, doc)
        assert store.get_patient("P-1").time_zones == ("America/Los_Angeles", "America/Boise")
