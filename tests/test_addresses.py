"""Contact addresses checked at the edge: normalised on import, bad ones refused by row and field."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from carecollect.addresses import check_postal_address, normalise_email, normalise_phone, postal_lines
from carecollect.channels import Channel
from carecollect.errors import ValidationError
from carecollect.importers import ImportFailed, export_csv, import_csv, import_json
from carecollect.store import SQLiteStore

from .test_importers_tabular import good_document


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "addresses.db")
    yield s
    s.close()


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("912 34 567", "NO", "+4791234567"),
        ("+47 912 34 567", None, "+4791234567"),
        ("0151 2345 6789", "DE", "+4915123456789"),
        ("030 1234567", "DE", "+49301234567"),
        ("0888 123 456", "BG", "+359888123456"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("+1 202-555-0143", "NO", "+12025550143"),  # an international number wins over the region
    ],
)
def test_phone_numbers_become_e164(text: str, region: str | None, e164: str) -> None:
    assert normalise_phone(text, region) == e164


@pytest.mark.parametrize(
    ("text", "region"), [("912 34", "NO"), ("912 34 567", None), ("call me", "DE"), ("+1555", "US")]
)
def test_bad_phone_numbers_are_refused_without_echoing_them(text: str, region: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        normalise_phone(text, region)
    assert info.value.field == "address" and text not in str(info.value)


def test_email_addresses() -> None:
    assert normalise_email(" kari@EXAMPLE.NO ") == "kari@example.no"
    assert normalise_email("anna@bücher.example") == "anna@bücher.example"
    for bad in ("kari", "kari@", "kari@@example.no", "kari@example", "kari nordmann@example.no"):
        with pytest.raises(ValidationError) as info:
            normalise_email(bad)
        assert info.value.field == "address"


def test_postal_addresses() -> None:
    assert postal_lines("Storgata 1, 0155 Oslo") == ("Storgata 1", "0155 Oslo")
    assert check_postal_address("Hauptstraße 5\n10115 Berlin", "DE") == "Hauptstraße 5\n10115 Berlin"
    assert check_postal_address("ул. Витоша 15\n1000 София", "BG") == "ул. Витоша 15\n1000 София"
    assert (
        check_postal_address("1 Main Street\nSpringfield, IL 62701", "US")
        == "1 Main Street\nSpringfield, IL 62701"
    )
    for bad, country in [
        ("Storgata 1", "NO"),  # no postcode line
        ("Hauptstraße 5\n1011 Berlin", "DE"),  # four digits: not a German postcode
        ("1 Main Street\nSpringfield", "US"),
        ("\n".join(f"line {i}" for i in range(8)), None),
        ("A" * 41 + "\n0155 Oslo", "NO"),
    ]:
        with pytest.raises(ValidationError):
            check_postal_address(bad, country)


def test_import_stores_normalised_addresses(store: SQLiteStore) -> None:
    doc = good_document()
    doc["patients"][0]["contact_points"][0]["address"] = "900 00 000"  # national form, patient in Norway
    doc["patients"][0]["contact_points"][2]["address"] = "Kari@EXAMPLE.no"
    import_json(store, doc)
    patient = store.get_patient("P-1")
    assert patient.points(Channel.SMS)[0].address == "+4790000000"
    assert patient.points(Channel.EMAIL)[0].address == "Kari@example.no"
    assert patient.points(Channel.LETTER)[0].address == "Storgata 1\n0155 Oslo"


def test_the_accounts_jurisdiction_gives_the_country_when_the_patient_has_none(store: SQLiteStore) -> None:
    doc = good_document()
    del doc["patients"][0]["country"]
    doc["patients"][0]["contact_points"][0]["address"] = "900 00 000"
    import_json(store, doc)
    assert store.get_patient("P-1").points(Channel.SMS)[0].address == "+4790000000"


@pytest.mark.parametrize(
    ("index", "address"),
    [(0, "12345"), (1, "Storgata 1"), (2, "kari(at)example.no")],  # no number, no postcode, no e-mail
)
def test_bad_addresses_are_refused_by_record_and_field_and_nothing_is_stored(
    store: SQLiteStore, index: int, address: str
) -> None:
    doc = good_document()
    doc["patients"][0]["contact_points"][index]["address"] = address
    doc["patients"][1]["contact_points"].append({"channel": "phone", "address": "555-0100"})
    with pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    found = {(p.where, p.field, p.record_id) for p in info.value.problems}
    assert ("patients[0]", f"contact_points[{index}].address", "P-1") in found
    assert ("patients[1]", "contact_points[1].address", "P-2") in found
    text = str(info.value) + " ".join(p.problem for p in info.value.problems)
    assert address not in text and "Storgata" not in text and "kari" not in text
    assert store.counts()["patients"] == 0


def test_csv_bad_addresses_are_reported_by_file_row_and_field(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, good_document())
    export_csv(store, tmp_path / "csv")
    path = tmp_path / "csv" / "contact_points.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    column = rows[0].index("address")
    rows[1][column] = "not a number"  # P-1's SMS point, on the file's second line
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    with SQLiteStore(tmp_path / "again.db") as again:
        with pytest.raises(ImportFailed) as info:
            import_csv(again, tmp_path / "csv")
        assert ("contact_points.csv row 2", "address") in {(p.where, p.field) for p in info.value.problems}


def test_fhir_bad_telecom_is_refused_by_resource_and_field(store: SQLiteStore, tmp_path: Path) -> None:
    pytest.importorskip("fhir.resources")
    from carecollect.importers.fhir import export_fhir_bundle, import_fhir

    import_json(store, good_document())
    bundle = export_fhir_bundle(store)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient" and entry["resource"]["id"] == "P-1":
            entry["resource"]["telecom"][0]["value"] = "+47 12"
    with SQLiteStore(tmp_path / "fhir.db") as again:
        with pytest.raises(ImportFailed) as info:
            import_fhir(again, bundle)
        (problem,) = [p for p in info.value.problems if p.record_id == "P-1"]
        assert problem.where == "Patient/P-1" and problem.field == "contact_points[0].address"
