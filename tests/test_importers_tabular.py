"""CSV and JSON import: good files, every kind of bad row reported, nothing half-imported, round trips."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.importers import (
    FORMAT,
    ImportFailed,
    export_csv,
    export_document,
    export_json,
    import_csv,
    import_json,
)
from carecollect.money import Money
from carecollect.store import SQLiteStore


def good_document() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "creditors": [
            {"id": "CR-NO", "name": "Fjordklinikken AS", "role": "provider", "country": "NO"},
            {
                "id": "CR-US",
                "name": "Lakeside Hospital",
                "role": "provider",
                "country": "US",
                "nonprofit": True,
                "state": "MN",
            },
        ],
        "patients": [
            {
                "id": "P-1",
                "preferred_language": "nb",
                "time_zones": ["Europe/Oslo"],
                "name": "Kari Nordmann",
                "country": "NO",
                "contact_points": [
                    {"channel": "sms", "address": "+4790000000", "consent_at": "2026-01-05T10:00:00+01:00"},
                    {"channel": "letter", "address": "Storgata 1, 0155 Oslo"},
                    {
                        "channel": "email",
                        "address": "kari@example.no",
                        "consent_at": "2026-01-05T10:00:00+01:00",
                        "undeliverable_at": "2026-02-10T08:00:00+01:00",
                    },
                ],
            },
            {
                "id": "P-2",
                "preferred_language": "en",
                "time_zones": ["America/Chicago"],
                "country": "US",
                "state": "MN",
                "cease_requested_at": "2026-02-01T15:00:00-06:00",
                "contact_points": [
                    {
                        "channel": "email",
                        "address": "pat@example.org",
                        "consent_at": "2026-01-02T09:00:00-06:00",
                        "opted_out_at": "2026-02-20T09:00:00-06:00",
                    }
                ],
            },
        ],
        "accounts": [
            {
                "id": "A-1",
                "patient_id": "P-1",
                "creditor_id": "CR-NO",
                "currency": "NOK",
                "jurisdiction": "no",
            },
            {
                "id": "A-2",
                "patient_id": "P-2",
                "creditor_id": "CR-US",
                "currency": "USD",
                "jurisdiction": "us",
                "household_size": 3,
                "annual_income": "41000.00",
            },
        ],
        "invoices": [
            {
                "id": "INV-1",
                "account_id": "A-1",
                "currency": "NOK",
                "issue_date": "2026-03-02",
                "due_date": "2026-03-16",
                "lines": [
                    {
                        "code": "2ad",
                        "description": "Konsultasjon",
                        "amount": "450.00",
                        "service_date": "2026-02-27",
                    }
                ],
            },
            {
                "id": "INV-2",
                "account_id": "A-2",
                "currency": "USD",
                "issue_date": "2026-02-10",
                "due_date": "2026-03-12",
                "claim_status": "adjudicated",
                "insurer_paid": "300.00",
                "contractual_adjustment": "120.00",
                "payer_name": "Acme Health",
                "lines": [
                    {
                        "code": "99213",
                        "description": "Office visit",
                        "amount": "520.00",
                        "service_date": "2026-02-03",
                    },
                    {
                        "code": "80053",
                        "description": "Metabolic panel",
                        "amount": "80.00",
                        "service_date": "2026-02-03",
                    },
                ],
            },
        ],
        "payments": [
            {
                "id": "PAY-1",
                "account_id": "A-2",
                "amount": "50.00",
                "method": "card",
                "received_at": "2026-03-01T12:00:00-06:00",
            }
        ],
        "assistance_applications": [
            {"id": "FA-1", "account_id": "A-2", "received_on": "2026-02-25", "status": "received"},
            {
                "id": "FA-0",
                "account_id": "A-1",
                "received_on": "2026-01-20",
                "status": "withdrawn",
                "decided_on": "2026-02-02",
            },
        ],
    }


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "import.db")
    yield s
    s.close()


def _problems(store: SQLiteStore, doc: Any) -> list[tuple[str, str, str | None]]:
    with pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    return [(p.where, p.field, p.record_id) for p in info.value.problems]


def test_a_good_document_is_stored_with_its_ledger(store: SQLiteStore) -> None:
    summary = import_json(store, good_document())
    assert (summary.patients, summary.accounts, summary.invoices, summary.payments) == (2, 2, 2, 1)
    assert summary.assistance_applications == 2
    assert store.ledger("A-1").balance == Money("450.00", "NOK")
    # 600 charged - 300 insurer - 120 contractual - 50 paid
    assert store.ledger("A-2").balance == Money("130.00", "USD")
    assert store.get_invoice("INV-2").patient_responsibility == Money("180.00", "USD")
    assert store.get_patient("P-2").contact_points[0].consent_at is not None
    again = import_json(store, good_document())
    assert again.ledger_entries == 0  # importing twice changes nothing
    assert store.ledger("A-2").balance == Money("130.00", "USD")


def test_every_bad_row_is_reported_with_its_row_and_field_and_nothing_is_stored(store: SQLiteStore) -> None:
    doc = good_document()
    doc["patients"][0]["time_zones"] = ["Mars/Olympus"]
    doc["patients"][1]["contact_points"][0]["consent_at"] = "2026-01-02T09:00:00"  # naive
    doc["accounts"][0]["currency"] = "XXX"
    doc["invoices"][0]["due_date"] = "16.03.2026"
    doc["invoices"][1]["lines"][1]["amount"] = 80.0  # a float, not decimal text
    doc["payments"][0]["method"] = "bitcoin"
    found = _problems(store, doc)
    assert ("patients[0]", "time_zones", "P-1") in [(w, f, r) for w, f, r in found] or any(
        w == "patients[0]" for w, _, _ in found
    )
    assert ("patients[1]", "contact_points[0].consent_at", "P-2") in found
    assert ("accounts[0]", "currency", "A-1") in found
    assert ("invoices[0]", "due_date", "INV-1") in found
    assert ("invoices[1]", "lines[1].amount", "INV-2") in found
    assert ("payments[0]", "method", "PAY-1") in found
    assert store.counts()["patients"] == 0 and store.counts()["invoices"] == 0


def test_references_duplicates_and_ledger_problems_are_reported(store: SQLiteStore) -> None:
    doc = good_document()
    doc["accounts"][1]["patient_id"] = "P-404"
    doc["invoices"].append(copy.deepcopy(doc["invoices"][0]))
    doc["invoices"][0]["currency"] = "EUR"
    doc["invoices"][0]["lines"][0]["amount"] = "450.00"
    found = _problems(store, doc)
    assert ("accounts[1]", "patient_id", "A-2") in found
    assert ("invoices[2]", "id", "INV-1") in found
    assert ("invoices[0]", "currency", "INV-1") in found


def test_a_payment_the_ledger_refuses_rolls_the_whole_import_back(store: SQLiteStore) -> None:
    doc = good_document()
    doc["payments"][0]["directed_to"] = ["INV-1"]  # an invoice of another account
    with pytest.raises(ImportFailed, match="PAY-1"):
        import_json(store, doc)
    assert store.counts()["accounts"] == 0 and store.counts()["ledger_entries"] == 0


def test_problems_never_echo_a_patients_name_or_address(store: SQLiteStore) -> None:
    doc = good_document()
    doc["patients"][0]["contact_points"][1]["channel"] = "pigeon"
    doc["patients"][0]["name"] = 12
    with pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    assert "Storgata" not in str(info.value) and "Kari" not in str(info.value)


def _write_csv(folder: Path, name: str, rows: list[list[str]]) -> None:
    with (folder / name).open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def test_csv_export_and_reimport_round_trip(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, good_document())
    export_csv(store, tmp_path / "csv")
    with SQLiteStore(tmp_path / "second.db") as second:
        import_csv(second, tmp_path / "csv")
        assert export_document(second) == export_document(store)
        assert second.ledger("A-2") == store.ledger("A-2")
        assert second.get_patient("P-1") == store.get_patient("P-1")
        # a bounced point stays bounced across a move (the daily run keeps skipping it)
        (email,) = second.get_patient("P-1").points(Channel.EMAIL)
        assert email.undeliverable_at == dt.datetime(2026, 2, 10, 7, tzinfo=dt.UTC)


def test_json_export_and_reimport_round_trip(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, good_document())
    export_json(store, tmp_path / "out.json")
    with SQLiteStore(tmp_path / "second.db") as second:
        import_json(second, tmp_path / "out.json")
        assert export_document(second) == export_document(store)
        (email,) = second.get_patient("P-1").points(Channel.EMAIL)
        assert email.undeliverable_at == dt.datetime(2026, 2, 10, 7, tzinfo=dt.UTC)
    exported = export_document(store)
    for kind in ("creditors", "accounts"):
        assert [x["id"] for x in exported[kind]] == [x["id"] for x in good_document()[kind]]


def test_csv_bad_rows_are_reported_by_file_line_and_field(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, good_document())
    export_csv(store, tmp_path / "csv")
    lines = list(
        csv.reader((tmp_path / "csv" / "invoice_lines.csv").read_text(encoding="utf-8").splitlines())
    )
    lines[2][3] = "80.001"  # third line of the file
    _write_csv(tmp_path / "csv", "invoice_lines.csv", lines)
    invoices = list(csv.reader((tmp_path / "csv" / "invoices.csv").read_text(encoding="utf-8").splitlines()))
    invoices[1][4] = "tomorrow"
    _write_csv(tmp_path / "csv", "invoices.csv", invoices)
    with SQLiteStore(tmp_path / "third.db") as third:
        with pytest.raises(ImportFailed) as info:
            import_csv(third, tmp_path / "csv")
        found = {(p.where, p.field) for p in info.value.problems}
        assert ("invoice_lines.csv row 3", "amount") in found
        assert ("invoices.csv row 2", "due_date") in found
        assert third.counts()["invoices"] == 0 and third.counts()["patients"] == 0


def test_csv_structure_problems(store: SQLiteStore, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    _write_csv(folder, "patients.csv", [["id", "shoe_size"], ["P-1", "44"]])
    _write_csv(
        folder,
        "invoice_lines.csv",
        [["invoice_id", "code", "amount", "service_date"], ["INV-9", "x", "1.00", "2026-01-01"]],
    )
    with pytest.raises(ImportFailed) as info:
        import_csv(store, folder)
    found = {(p.where, p.field) for p in info.value.problems}
    assert ("patients.csv row 1", "shoe_size") in found
    assert ("invoice_lines.csv row 2", "invoice_id") in found


def test_unreadable_json_file_is_an_import_failure(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(ImportFailed, match="not valid JSON"):
        import_json(store, path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_and_malformed_json_only_ever_raises_import_failed(
    tmp_path: Path, data: st.DataObject
) -> None:
    doc = good_document()
    section = data.draw(
        st.sampled_from(
            ["creditors", "patients", "accounts", "invoices", "payments", "assistance_applications"]
        )
    )
    if data.draw(st.booleans()):
        record = data.draw(st.sampled_from(doc[section]))
        key = data.draw(st.sampled_from([*record.keys(), "lines", "contact_points", "extra"]))
        record[key] = data.draw(json_values)
    else:
        doc = data.draw(json_values)
    with SQLiteStore(":memory:") as s:
        try:
            import_json(s, doc)
        except ImportFailed as failed:
            assert failed.problems
            assert s.counts()["invoices"] == 0
            assert s.counts()["assistance_applications"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_csv_text_only_ever_raises_import_failed(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("csv")
    (folder / "invoices.csv").write_text("id,account_id,currency\n" + text, encoding="utf-8")
    with SQLiteStore(":memory:") as s:
        try:
            import_csv(s, folder)
        except ImportFailed as failed:
            assert failed.problems
        assert s.counts()["invoices"] == 0
    json.dumps(text)


# -- a missing time zone is reported by row and field (issue 13) --------------------------


def test_json_import_reports_a_patient_without_a_zone_by_row_and_field(tmp_path: Path) -> None:
    doc = good_document()
    for p in doc["patients"]:
        p.pop("time_zones")
    doc["patients"][0].pop("country")  # P-1: only a Norwegian phone → Oslo
    doc["patients"][1].pop("state")  # P-2: US without a state, no phone → refused
    with SQLiteStore(tmp_path / "j.db") as store:
        with pytest.raises(ImportFailed) as info:
            import_json(store, doc)
        found = [(p.where, p.field, p.record_id) for p in info.value.problems]
        assert ("patients[1]", "time_zones", "P-2") in found
        assert all(w != "patients[0]" for w, _, _ in found)
        assert store.counts()["patients"] == 0  # nothing half-imported
    doc["patients"][1]["state"] = "MN"
    with SQLiteStore(tmp_path / "k.db") as store:
        import_json(store, doc)
        assert store.get_patient("P-1").time_zones == ("Europe/Oslo",)
        assert store.get_patient("P-2").time_zones == ("America/Chicago",)


def test_csv_import_reports_a_missing_zone_by_file_row_and_field(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as first:
        import_json(first, good_document())
        export_csv(first, tmp_path / "csv")
    path = tmp_path / "csv" / "patients.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    header = rows[0]
    for row in rows[1:]:
        row[header.index("time_zones")] = ""
        if row[header.index("id")] == "P-2":
            row[header.index("state")] = ""
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with SQLiteStore(tmp_path / "b.db") as second:
        with pytest.raises(ImportFailed) as info:
            import_csv(second, tmp_path / "csv")
        found = {(p.where, p.field) for p in info.value.problems}
        line = next(n for n, r in enumerate(rows, 1) if r[header.index("id")] == "P-2")
        assert (f"patients.csv row {line}", "time_zones") in found
        assert second.counts()["patients"] == 0
