"""Hostile input to every importer and to ``carecollect import``: a typed, located refusal, never a traceback.

Each input below once reached a user as a raw Python exception: a lone
surrogate (``UnicodeEncodeError`` from the store), a huge integer or a date at
the edge of the calendar with an offset (``OverflowError``), deeply nested JSON
(``RecursionError``), digits of another script (``ValueError`` or, worse, a
silent conversion), a 5,000-character time-zone name (an ``OSError`` carrying
the path of the zone database). Every problem now arrives as one
:class:`~carecollect.importers.ImportFailed` that names the file, the row (or
resource) and the field, lists all the problems of the import at once, and
leaves the store exactly as it was. The hypothesis tests at the end throw the
whole class (random hostile values in random fields) at the JSON, CSV and FHIR
importers and at the command line.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.cli import main
from carecollect.importers import (
    FORMAT,
    ImportFailed,
    ImportProblem,
    ImportSummary,
    export_csv,
    export_document,
    import_csv,
    import_json,
)
from carecollect.store import SQLiteStore

LONG_ZONE = "a" * 5000


def good_document() -> dict[str, Any]:
    """One record of every kind, with the nested lists (contact points, lines) filled."""
    return {
        "format": FORMAT,
        "creditors": [{"id": "CR-1", "name": "Fjordklinikken AS", "role": "provider", "country": "NO"}],
        "patients": [
            {
                "id": "P-1",
                "preferred_language": "nb",
                "time_zones": ["Europe/Oslo"],
                "name": "Kari Nordmann",
                "country": "NO",
                "date_of_birth": "1971-08-02",
                "contact_points": [
                    {
                        "channel": "sms",
                        "address": "+4790000000",
                        "consent_at": "2026-01-05T10:00:00+01:00",
                        "time_zone": "Europe/Oslo",
                    },
                    {"channel": "letter", "address": "Storgata 1, 0155 Oslo"},
                ],
            }
        ],
        "accounts": [
            {
                "id": "A-1",
                "patient_id": "P-1",
                "creditor_id": "CR-1",
                "currency": "NOK",
                "jurisdiction": "no",
                "household_size": 3,
                "annual_income": "410000.00",
            }
        ],
        "invoices": [
            {
                "id": "INV-1",
                "account_id": "A-1",
                "currency": "NOK",
                "issue_date": "2026-03-02",
                "due_date": "2026-03-16",
                "insurer_paid": "100.00",
                "lines": [
                    {
                        "code": "2ad",
                        "description": "Konsultasjon",
                        "amount": "450.00",
                        "service_date": "2026-02-27",
                    }
                ],
            }
        ],
        "payments": [
            {
                "id": "PAY-1",
                "account_id": "A-1",
                "amount": "50.00",
                "method": "card",
                "received_at": "2026-03-05T12:00:00+01:00",
            }
        ],
        "assistance_applications": [
            {"id": "FA-1", "account_id": "A-1", "received_on": "2026-02-25", "status": "received"}
        ],
    }


def _snapshot(store: SQLiteStore) -> tuple[Any, Any]:
    return store.counts(), export_document(store)


def _seeded(path: Path) -> SQLiteStore:
    """A store that already holds the good document (so a half-written refusal would show)."""
    store = SQLiteStore(path)
    import_json(store, good_document())
    return store


def _check_problems(problems: tuple[ImportProblem, ...]) -> None:
    assert problems
    for p in problems:
        text = str(p)
        text.encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogates
        assert p.where and p.field and p.problem
        assert len(text) < 600, text
        assert "Traceback" not in text and "zoneinfo/" not in text and "site-packages" not in text


def refused(tmp_path: Path, run: Callable[[SQLiteStore], ImportSummary]) -> list[tuple[str, str]]:
    """Run an import on a seeded store; it must be refused and leave the store as it was."""
    with _seeded(tmp_path / "seeded.db") as store:
        before = _snapshot(store)
        with pytest.raises(ImportFailed) as info:
            run(store)
        assert _snapshot(store) == before
    _check_problems(info.value.problems)
    return [(p.where, p.field) for p in info.value.problems]


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``value`` at a dotted path such as ``invoices.0.lines.0.amount``."""
    *head, last = path.split(".")
    node: Any = doc
    for key in head:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# -- JSON: each hostile input, located ---------------------------------------------------------------
HOSTILE_JSON = [
    # lone surrogates (UnicodeEncodeError in the store)
    ("patients.0.name", "Kari \ud800", ("patients[0]", "name")),
    ("creditors.0.name", "\udc80Klinik", ("creditors[0]", "name")),
    ("invoices.0.lines.0.description", "Konsultasjon \udfff", ("invoices[0]", "lines[0].description")),
    ("patients.0.contact_points.1.address", "Storgata \ud83d", ("patients[0]", "contact_points[1].address")),
    ("invoices.0.payer_name", "\ud800", ("invoices[0]", "payer_name")),
    ("payments.0.directed_to", ["INV-1\ud800"], ("payments[0]", "directed_to")),
    # huge integers (OverflowError in the store; ValueError past Python's digit limit)
    ("accounts.0.household_size", 10**30, ("accounts[0]", "household_size")),
    ("accounts.0.household_size", "9" * 5000, ("accounts[0]", "household_size")),
    ("invoices.0.lines.0.amount", 10**30, ("invoices[0]", "lines[0].amount")),
    # instants at the edge of the calendar with an offset (OverflowError)
    (
        "patients.0.contact_points.0.consent_at",
        "9999-12-31T23:59:59-01:00",
        ("patients[0]", "contact_points[0].consent_at"),
    ),
    ("payments.0.received_at", "0001-01-01T00:00:00+01:00", ("payments[0]", "received_at")),
    ("patients.0.cease_requested_at", "9999-12-31T23:30:00-14:00", ("patients[0]", "cease_requested_at")),
    # dates no bill has (the run would overflow adding days to them)
    ("invoices.0.due_date", "9999-12-31", ("invoices[0]", "due_date")),
    ("invoices.0.issue_date", "0001-01-01", ("invoices[0]", "issue_date")),
    # digits of other scripts (ValueError, or a silent conversion)
    ("invoices.0.lines.0.amount", "١٢٣.٥٠", ("invoices[0]", "lines[0].amount")),  # Arabic-Indic
    ("invoices.0.lines.0.amount", "１２.５０", ("invoices[0]", "lines[0].amount")),  # full width
    ("accounts.0.annual_income", "४१०००", ("accounts[0]", "annual_income")),  # Devanagari
    ("accounts.0.household_size", "٣", ("accounts[0]", "household_size")),
    ("accounts.0.household_size", "²", ("accounts[0]", "household_size")),  # superscript two
    ("invoices.0.due_date", "٢٠٢٦-٠٣-١٦", ("invoices[0]", "due_date")),
    ("invoices.0.due_date", "２０２６-０３-１６", ("invoices[0]", "due_date")),
    ("payments.0.received_at", "２０２６-03-05T12:00:00+01:00", ("payments[0]", "received_at")),
    # time zones: an OSError with the zone database's path, and the wrong field named
    ("patients.0.time_zones", [LONG_ZONE], ("patients[0]", "time_zones")),
    ("patients.0.contact_points.0.time_zone", LONG_ZONE, ("patients[0]", "contact_points[0].time_zone")),
    ("patients.0.time_zones", ["Mars/Olympus_Mons"], ("patients[0]", "time_zones")),
    (
        "patients.0.contact_points.0.time_zone",
        "Mars/Olympus_Mons",
        ("patients[0]", "contact_points[0].time_zone"),
    ),
    ("patients.0.time_zones", ["../../../etc/passwd"], ("patients[0]", "time_zones")),
    ("patients.0.time_zones", "Europe/Oslo\x00", ("patients[0]", "time_zones")),
    # deep nesting where a value is expected
    ("patients.0.time_zones", _nested(50_000), ("patients[0]", "time_zones")),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), HOSTILE_JSON, ids=[f"{p}-{n}" for n, (p, _, _) in enumerate(HOSTILE_JSON)]
)
def test_a_hostile_json_value_is_refused_by_record_and_field(
    tmp_path: Path, path: str, value: Any, expected: tuple[str, str]
) -> None:
    doc = _set(good_document(), path, value)
    assert refused(tmp_path, lambda s: import_json(s, doc)) == [expected]


def test_a_bad_zone_names_the_zone_field_and_hides_the_zone_database(tmp_path: Path) -> None:
    doc = _set(good_document(), "patients.0.time_zones", [LONG_ZONE])
    with _seeded(tmp_path / "z.db") as store, pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    (problem,) = info.value.problems
    assert problem.field == "time_zones" and "IANA" in problem.problem
    assert (
        "zoneinfo" not in problem.problem and "/usr" not in problem.problem and "/work" not in problem.problem
    )
    assert len(problem.problem) < 200


def test_a_surrogate_in_a_section_name_is_reported_printably(tmp_path: Path) -> None:
    doc = good_document()
    doc["\ud800bad"] = []
    problems = refused(tmp_path, lambda s: import_json(s, doc))
    assert problems == [("document", "\\ud800bad")]


def _write_json(tmp_path: Path, text: str, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_json_file_names_itself_in_every_problem(tmp_path: Path) -> None:
    doc = _set(good_document(), "invoices.0.due_date", "2026-02-30")
    path = _write_json(tmp_path, json.dumps(doc))
    assert refused(tmp_path, lambda s: import_json(s, path)) == [("doc.json invoices[0]", "due_date")]


def test_a_json_float_is_refused_where_it_stands(tmp_path: Path) -> None:
    text = json.dumps(good_document()).replace('"amount": "450.00"', '"amount": 450.00')
    assert '"amount": 450.00' in text
    path = _write_json(tmp_path, text)
    problems = refused(tmp_path, lambda s: import_json(s, path))
    assert problems == [("doc.json invoices[0]", "lines[0].amount")]


def test_json_floats_everywhere_are_each_reported(tmp_path: Path) -> None:
    text = (
        json.dumps(good_document())
        .replace('"amount": "450.00"', '"amount": 450.0')
        .replace('"amount": "50.00"', '"amount": 5e1')
        .replace('"household_size": 3', '"household_size": 3.0')
    )
    path = _write_json(tmp_path, text)
    assert refused(tmp_path, lambda s: import_json(s, path)) == [
        ("doc.json accounts[0]", "household_size"),
        ("doc.json invoices[0]", "lines[0].amount"),
        ("doc.json payments[0]", "amount"),
    ]


def test_deeply_nested_json_in_a_file(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path, '{"format": "carecollect-import/1", "patients": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    (problem,) = refused(tmp_path, lambda s: import_json(s, path))
    assert problem == ("doc.json", "document")


def test_a_json_file_with_lone_surrogate_escapes(tmp_path: Path) -> None:
    doc = _set(good_document(), "patients.0.name", "Kari \ud800")
    text = json.dumps(doc)  # ensure_ascii: the surrogate travels as the escape \ud800
    assert "\\ud800" in text
    path = _write_json(tmp_path, text)
    assert refused(tmp_path, lambda s: import_json(s, path)) == [("doc.json patients[0]", "name")]


def test_a_huge_integer_literal_in_a_json_file(tmp_path: Path) -> None:
    text = json.dumps(good_document()).replace('"household_size": 3', '"household_size": ' + "9" * 5000)
    path = _write_json(tmp_path, text)
    (problem,) = refused(tmp_path, lambda s: import_json(s, path))
    assert problem[0].startswith("doc.json")


# -- all problems of an import, together ----------------------------------------------------------------
def test_document_and_record_problems_come_in_one_error(tmp_path: Path) -> None:
    doc = _set(good_document(), "invoices.0.due_date", "tomorrow")
    doc["invoice"] = []  # a misspelt section
    doc["payments"].append("not an object")
    doc["accounts"][0]["household_size"] = "٣"
    problems = refused(tmp_path, lambda s: import_json(s, doc))
    assert set(problems) == {
        ("document", "invoice"),
        ("payments[1]", "record"),
        ("accounts[0]", "household_size"),
        ("invoices[0]", "due_date"),
    }


def test_ledger_problems_come_with_the_field_problems(tmp_path: Path) -> None:
    doc = good_document()
    doc["payments"][0]["directed_to"] = ["INV-404"]  # found only when the payment is posted
    doc["creditors"][0]["country"] = ""
    with SQLiteStore(tmp_path / "l.db") as store, pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    found = {(p.where, p.field) for p in info.value.problems}
    assert ("creditors[0]", "country") in found
    assert any(where == "payments[0]" for where, _ in found), found


def test_a_refused_record_does_not_also_make_its_dependants_missing(tmp_path: Path) -> None:
    doc = _set(good_document(), "patients.0.time_zones", ["Mars/Olympus_Mons"])
    with SQLiteStore(tmp_path / "d.db") as store, pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    assert [(p.where, p.field) for p in info.value.problems] == [("patients[0]", "time_zones")]


# -- CSV -------------------------------------------------------------------------------------------------
@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    with SQLiteStore(":memory:") as store:
        import_json(store, good_document())
        export_csv(store, folder)
    return folder


def _edit_csv(folder: Path, kind: str, row: int, column: str, value: str) -> None:
    path = folder / f"{kind}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[row][rows[0].index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_the_csv_export_imports(csv_folder: Path) -> None:
    with SQLiteStore(":memory:") as store:
        assert import_csv(store, csv_folder).invoices == 1


HOSTILE_CSV = [
    ("accounts", "household_size", "9" * 5000),
    ("accounts", "household_size", "٣"),
    ("accounts", "annual_income", "１２.５０"),
    ("invoice_lines", "amount", "١٢٣.٥٠"),
    ("invoices", "due_date", "9999-12-31"),
    ("invoices", "due_date", "٢٠٢٦-٠٣-١٦"),
    ("payments", "received_at", "0001-01-01T00:00:00+01:00"),
    ("contact_points", "consent_at", "9999-12-31T23:59:59-01:00"),
    ("patients", "time_zones", LONG_ZONE),
    ("contact_points", "time_zone", LONG_ZONE),
    ("patients", "time_zones", "Europe/Oslo Mars/Olympus_Mons"),
]


@pytest.mark.parametrize(
    ("kind", "column", "value"), HOSTILE_CSV, ids=[f"{k}.{c}-{n}" for n, (k, c, _) in enumerate(HOSTILE_CSV)]
)
def test_a_hostile_csv_cell_is_refused_by_file_row_and_column(
    tmp_path: Path, csv_folder: Path, kind: str, column: str, value: str
) -> None:
    _edit_csv(csv_folder, kind, 1, column, value)
    assert refused(tmp_path, lambda s: import_csv(s, csv_folder)) == [(f"{kind}.csv row 2", column)]


def test_a_csv_broken_inside_a_quoted_field_names_its_line(tmp_path: Path, csv_folder: Path) -> None:
    path = csv_folder / "invoice_lines.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append('INV-1,"2ad,Konsultasjon,10.00,2026-02-27')  # the quote opened on line 3 is never closed
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = refused(tmp_path, lambda s: import_csv(s, csv_folder))
    assert problems == [("invoice_lines.csv row 3", "row")]


def test_a_stray_quote_inside_a_csv_field_names_its_line(tmp_path: Path, csv_folder: Path) -> None:
    path = csv_folder / "payments.csv"
    header, row = path.read_text(encoding="utf-8").splitlines()
    path.write_text(f'{header}\n{row}\nPAY-2,A-1,"5"0,card,2026-03-05T12:00:00+01:00,\n', encoding="utf-8")
    assert refused(tmp_path, lambda s: import_csv(s, csv_folder)) == [("payments.csv row 3", "row")]


def test_every_problem_of_every_csv_file_in_one_error(tmp_path: Path, csv_folder: Path) -> None:
    (csv_folder / "payments.csv").write_text('id,account_id,amount\n"PAY-9,A-1,1.00\n', encoding="utf-8")
    _edit_csv(csv_folder, "accounts", 1, "household_size", "٣")
    _edit_csv(csv_folder, "invoice_lines", 1, "amount", "ten")
    columns = (csv_folder / "patients.csv").read_text(encoding="utf-8").splitlines()[0].count(",") + 1
    with (csv_folder / "patients.csv").open("a", encoding="utf-8") as fh:
        fh.write("P-2,en,UTC" + "," * (columns - 3) + ",surplus\n")  # one cell more than the header
    problems = refused(tmp_path, lambda s: import_csv(s, csv_folder))
    assert set(problems) == {
        ("payments.csv row 2", "row"),
        ("patients.csv row 3", "row"),
        ("accounts.csv row 2", "household_size"),
        ("invoice_lines.csv row 2", "amount"),
    }


# -- FHIR ------------------------------------------------------------------------------------------------
@pytest.fixture
def fhir_bundle() -> dict[str, Any]:
    pytest.importorskip("fhir.resources")
    from carecollect.importers.fhir import export_fhir_bundle

    with SQLiteStore(":memory:") as store:
        import_json(store, good_document())
        bundle: dict[str, Any] = json.loads(json.dumps(export_fhir_bundle(store), default=str))
    return bundle


def _resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def _import_fhir(source: Any) -> Callable[[SQLiteStore], ImportSummary]:
    from carecollect.importers.fhir import import_fhir

    return lambda store: import_fhir(store, source)


def test_the_fhir_export_imports(fhir_bundle: dict[str, Any]) -> None:
    with SQLiteStore(":memory:") as store:
        assert _import_fhir(fhir_bundle)(store).invoices == 1


def test_fhir_a_lone_surrogate_in_a_name(tmp_path: Path, fhir_bundle: dict[str, Any]) -> None:
    _resource(fhir_bundle, "Patient")["name"] = [{"text": "Kari \ud800"}]
    assert refused(tmp_path, _import_fhir(fhir_bundle)) == [("Patient/P-1", "name.0.text")]


def test_fhir_a_lone_surrogate_where_fhir_resources_lets_it_through(
    tmp_path: Path, fhir_bundle: dict[str, Any]
) -> None:
    from carecollect.importers.fhir import TZ_EXTENSION

    _resource(fhir_bundle, "Patient")["extension"] = [{"url": TZ_EXTENSION, "valueCode": "Europe/Oslo\udc80"}]
    problems = refused(tmp_path, _import_fhir(fhir_bundle))
    assert problems and all(where == "Patient/P-1" for where, _ in problems)


def test_fhir_a_long_zone_code(tmp_path: Path, fhir_bundle: dict[str, Any]) -> None:
    from carecollect.importers.fhir import TZ_EXTENSION

    _resource(fhir_bundle, "Patient")["extension"] = [{"url": TZ_EXTENSION, "valueCode": LONG_ZONE}]
    assert refused(tmp_path, _import_fhir(fhir_bundle)) == [("Patient/P-1", "time_zones")]


def test_fhir_an_invoice_dated_at_the_end_of_the_calendar(
    tmp_path: Path, fhir_bundle: dict[str, Any]
) -> None:
    invoice = _resource(fhir_bundle, "Invoice")
    invoice["date"] = "9999-12-31"
    invoice["extension"] = [e for e in invoice["extension"] if not e["url"].endswith("due-date")]
    problems = refused(tmp_path, _import_fhir(fhir_bundle))
    assert ("Invoice/INV-1", "issue_date") in problems


def test_fhir_a_payment_at_the_start_of_the_calendar(tmp_path: Path, fhir_bundle: dict[str, Any]) -> None:
    _resource(fhir_bundle, "PaymentReconciliation")["created"] = "0001-01-01T00:00:00+01:00"
    assert refused(tmp_path, _import_fhir(fhir_bundle)) == [
        ("PaymentReconciliation/PAY-1 detail[0]", "received_at")
    ]


def test_fhir_deep_nesting_in_a_resource(tmp_path: Path, fhir_bundle: dict[str, Any]) -> None:
    _resource(fhir_bundle, "Patient")["extension"] = _nested(50_000)
    problems = refused(tmp_path, _import_fhir(fhir_bundle))
    assert problems and all(where == "Patient/P-1" for where, _ in problems)


def test_fhir_a_deeply_nested_file(tmp_path: Path) -> None:
    pytest.importorskip("fhir.resources")
    path = _write_json(
        tmp_path, '{"resourceType": "Bundle", "entry": ' + "[" * 100_000 + "]" * 100_000 + "}", "b.json"
    )
    assert refused(tmp_path, _import_fhir(path)) == [("b.json", "document")]


def test_fhir_file_problems_name_the_file(tmp_path: Path, fhir_bundle: dict[str, Any]) -> None:
    _resource(fhir_bundle, "Patient")["name"] = [{"text": "Kari \ud800"}]
    path = _write_json(tmp_path, json.dumps(fhir_bundle), "bundle.json")
    assert refused(tmp_path, _import_fhir(path)) == [("bundle.json Patient/P-1", "name.0.text")]


def test_fhir_invalid_resources_and_mapping_problems_in_one_error(
    tmp_path: Path, fhir_bundle: dict[str, Any]
) -> None:
    fhir_bundle["entry"].append({"resource": {"resourceType": "Claim", "id": "C-1"}})
    _resource(fhir_bundle, "Account")["extension"] = [
        {"url": e["url"], "valueCode": "NOK" if e["url"].endswith("currency") else "no"}
        for e in _resource(fhir_bundle, "Account")["extension"]
    ]
    _resource(fhir_bundle, "Patient")["birthDate"] = "not a date"  # refused by fhir.resources
    _resource(fhir_bundle, "Organization")["address"] = [{"country": ""}]  # refused by the mapping
    problems = refused(tmp_path, _import_fhir(fhir_bundle))
    wheres = {where for where, _ in problems}
    assert {"Claim/C-1", "Patient/P-1", "Organization/CR-1"} <= wheres, problems


# -- the command line ---------------------------------------------------------------------------------
@pytest.fixture
def cli_db(tmp_path: Path) -> Path:
    db = tmp_path / "cli.sqlite"
    assert CliRunner().invoke(main, ["init", "--db", str(db)]).exit_code == 0
    with SQLiteStore(db) as store:
        import_json(store, good_document())
    return db


def _db_state(db: Path) -> tuple[Any, Any]:
    with SQLiteStore(db) as store:
        return _snapshot(store)


def _cli_refuses(db: Path, *args: str) -> str:
    before = _db_state(db)
    result = CliRunner().invoke(main, ["import", "--db", str(db), *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert _db_state(db) == before
    return result.output


def _hostile_files(tmp_path: Path) -> list[tuple[list[str], str]]:
    out = []
    for n, (path, value, (where, _)) in enumerate(HOSTILE_JSON):
        if isinstance(value, list) and value and isinstance(value[0], list):
            continue  # deep nesting in a file: below
        doc = _set(good_document(), path, value)
        name = f"h{n}.json"
        _write_json(tmp_path, json.dumps(doc), name)
        out.append(([str(tmp_path / name)], f"{name} {where}"))
    _write_json(
        tmp_path,
        '{"format": "carecollect-import/1", "patients": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "deep.json",
    )
    out.append(([str(tmp_path / "deep.json")], "deep.json"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "payments.csv").write_text('id,account_id,amount\n"PAY-9,A-1,1.00\n', encoding="utf-8")
    out.append(([str(broken)], "payments.csv row 2"))
    return out


def test_the_command_line_refuses_each_hostile_file_without_a_traceback(tmp_path: Path, cli_db: Path) -> None:
    for args, where in _hostile_files(tmp_path):
        output = _cli_refuses(cli_db, *args)
        assert "Import refused, nothing was stored" in output and where in output, (args, output)


def test_the_command_line_in_a_real_process(tmp_path: Path, cli_db: Path) -> None:
    """A real process, a real (non-UTF-8-safe) stream: the surrogate is printed escaped, not raised."""
    doc = good_document()
    doc["\ud800"] = []
    doc["patients"][0]["time_zones"] = [LONG_ZONE]
    path = _write_json(tmp_path, json.dumps(doc), "s.json")
    before = _db_state(cli_db)
    proc = subprocess.run(
        [sys.executable, "-m", "carecollect.cli", "import", "--db", str(cli_db), str(path)],
        capture_output=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"},
    )
    output = (proc.stdout + proc.stderr).decode("utf-8")
    assert proc.returncode == 1, output
    assert "Traceback" not in output and "zoneinfo" not in output
    assert "s.json document" in output and "s.json patients[0]" in output and "time_zones" in output
    assert _db_state(cli_db) == before


# -- the class: hypothesis over every importer and the command line ----------------------------------------
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

unicode_digits = st.text(
    alphabet=st.characters(categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1, max_size=6
)
edge_dates = st.sampled_from(
    ["0001-01-01", "0001-01-02", "9999-12-31", "9999-12-30", "1899-12-31", "2200-01-01"]
)
edge_instants = st.builds(
    lambda day, time, offset: f"{day}T{time}{offset}",
    edge_dates,
    st.sampled_from(["00:00:00", "23:59:59", "12:00"]),
    st.sampled_from(["+01:00", "-01:00", "+14:00", "-12:00", "Z", "+00:00"]),
)
surrogates = st.builds(
    lambda a, s, b: a + s + b,
    st.text(max_size=5),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=2),
    st.text(max_size=5),
)
hostile_text = st.one_of(
    surrogates,
    unicode_digits,
    edge_dates,
    edge_instants,
    st.builds(lambda d, s: f"{d}.{s}", unicode_digits, unicode_digits),
    st.integers(min_value=10**15).map(str),
    st.sampled_from(
        [
            LONG_ZONE,
            "a" * 300,
            "Europe/Oslo\x00",
            "../../etc/passwd",
            "/etc/localtime",
            "\x00",
            "NaN",
            "Infinity",
            "-0",
            "1e999999",
            "1_000",
        ]
    ),
    st.text(max_size=20),
)
hostile_values = st.one_of(
    hostile_text,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.booleans(),
    st.none(),
    st.builds(lambda: DEEP),
    st.lists(hostile_text, max_size=3),
    st.dictionaries(st.text(max_size=4), hostile_text, max_size=2),
)


class _Deep:
    """Stands for 5,000 nested lists in a drawn example (hypothesis cannot print the real thing)."""

    def __repr__(self) -> str:
        return "DEEP"


DEEP = _Deep()
_DEEP_TEXT = "[" * 5000 + "]" * 5000


def _apply(doc: Any, changes: list[tuple[str, Any]]) -> Any:
    for path, value in changes:
        # an earlier change may have replaced the container
        with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
            _set(doc, path, _nested(5000) if value is DEEP else copy.deepcopy(value))
    return doc


def _dumps(doc: Any, *, ensure_ascii: bool = True) -> str:
    """JSON text of ``doc``, with 5,000 nested lists written out where it holds them."""
    return json.dumps(_shallow(doc), ensure_ascii=ensure_ascii).replace('"\\u0000DEEP\\u0000"', _DEEP_TEXT)


def _shallow(value: Any) -> Any:
    """``value`` with every run of nested single lists replaced by a marker string (no recursion into it)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return "\x00DEEP\x00"
    if isinstance(value, list):
        return [_shallow(v) for v in value]
    if isinstance(value, dict):
        return {k: _shallow(v) for k, v in value.items()}
    return value


def _paths(doc: Any, prefix: str = "") -> list[str]:
    """Every dotted path to a value in ``doc`` (containers too)."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        path = f"{prefix}{key}"
        out.append(path)
        out.extend(_paths(value, path + "."))
    return out


JSON_PATHS = [p for p in _paths(good_document()) if p != "format" and "." in p]


def _accepted_or_refused_cleanly(path: Path, run: Callable[[SQLiteStore], ImportSummary]) -> None:
    with _seeded(path) as store:
        before = _snapshot(store)
        try:
            run(store)
        except ImportFailed as failed:
            _check_problems(failed.problems)
            assert _snapshot(store) == before


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(JSON_PATHS), hostile_values), min_size=1, max_size=3))
def test_hostile_values_in_a_json_document(
    tmp_path_factory: pytest.TempPathFactory, changes: list[tuple[str, Any]]
) -> None:
    doc = _apply(good_document(), changes)
    _accepted_or_refused_cleanly(tmp_path_factory.mktemp("j") / "s.db", lambda s: import_json(s, doc))


@SETTINGS
@given(
    changes=st.lists(st.tuples(st.sampled_from(JSON_PATHS), hostile_values), min_size=1, max_size=3),
    raw=st.booleans(),
)
def test_hostile_values_in_a_json_file(
    tmp_path_factory: pytest.TempPathFactory, changes: list[tuple[str, Any]], raw: bool
) -> None:
    doc = _apply(good_document(), changes)
    folder = tmp_path_factory.mktemp("jf")
    file = folder / "doc.json"
    # raw: characters as they are (a lone surrogate then makes the file invalid UTF-8)
    file.write_text(_dumps(doc, ensure_ascii=not raw), encoding="utf-8", errors="surrogatepass")
    _accepted_or_refused_cleanly(folder / "s.db", lambda s: import_json(s, file))


@SETTINGS
@given(data=st.data())
def test_hostile_cells_in_csv_files(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("c")
    with SQLiteStore(":memory:") as store:
        import_json(store, good_document())
        export_csv(store, folder / "csv")
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(
            st.sampled_from(
                [
                    "creditors",
                    "patients",
                    "contact_points",
                    "accounts",
                    "invoices",
                    "invoice_lines",
                    "payments",
                    "assistance_applications",
                ]
            )
        )
        path = folder / "csv" / f"{kind}.csv"
        with path.open(encoding="utf-8", errors="surrogatepass", newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            continue
        row = data.draw(st.integers(0, len(rows) - 1))
        if not rows[row]:
            continue
        column = data.draw(st.integers(0, len(rows[row]) - 1))
        cell = data.draw(hostile_text | st.sampled_from(['"', 'a"b', '"open', "\r", "\n"]))
        rows[row][column] = cell
        raw = "\n".join(",".join(r) for r in rows) if data.draw(st.booleans()) else None
        with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as fh:
            if raw is None:
                csv.writer(fh).writerows(rows)
            else:
                fh.write(raw)  # unquoted: quotes and line breaks break the file's structure
    _accepted_or_refused_cleanly(folder / "s.db", lambda s: import_csv(s, folder / "csv"))


@SETTINGS
@given(data=st.data())
def test_hostile_values_in_a_fhir_bundle(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    pytest.importorskip("fhir.resources")
    from carecollect.importers.fhir import export_fhir_bundle

    with SQLiteStore(":memory:") as store:
        import_json(store, good_document())
        bundle: dict[str, Any] = json.loads(json.dumps(export_fhir_bundle(store), default=str))
    paths = [p for p in _paths(bundle) if p.startswith("entry.") and p.count(".") >= 3]
    for _ in range(data.draw(st.integers(1, 3))):
        _apply(bundle, [(data.draw(st.sampled_from(paths)), data.draw(hostile_values))])
    _accepted_or_refused_cleanly(tmp_path_factory.mktemp("f") / "s.db", _import_fhir(bundle))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.lists(st.tuples(st.sampled_from(JSON_PATHS), hostile_values), min_size=1, max_size=2))
def test_the_command_line_never_shows_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, changes: list[tuple[str, Any]]
) -> None:
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "cli.sqlite"
    with SQLiteStore(db) as store:
        import_json(store, good_document())
    doc = _apply(good_document(), changes)
    file = folder / "doc.json"
    file.write_text(_dumps(doc), encoding="utf-8")
    before = _db_state(db)
    result = CliRunner().invoke(main, ["import", "--db", str(db), str(file)])
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), (result.exit_code, repr(result.exception), result.output)
    if result.exit_code:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert _db_state(db) == before
