"""Financial-assistance applications through the CSV and JSON importers and exporters.

A hospital moving onto carecollect brings its open applications along; if
they were lost, patients who applied would be dunned. These tests import them
into real SQLite files, check that a pending one holds the daily run, that a
bad row is refused with its row and field and nothing stored, and that what is
exported imports again unchanged.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.cli import main
from carecollect.importers import (
    CSV_COLUMNS,
    FORMAT,
    ImportFailed,
    export_csv,
    export_document,
    export_json,
    import_csv,
    import_json,
)
from carecollect.portfolio import load_portfolio
from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication, application_suspends_eca
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)


def base_document() -> dict[str, Any]:
    """One US patient with one account and one open invoice."""
    return {
        "format": FORMAT,
        "creditors": [
            {"id": "CR-US", "name": "Lakeside Hospital", "country": "US", "nonprofit": True, "state": "MN"}
        ],
        "patients": [{"id": "P-1", "time_zones": ["America/Chicago"], "country": "US", "state": "MN"}],
        "accounts": [
            {
                "id": "A-1",
                "patient_id": "P-1",
                "creditor_id": "CR-US",
                "currency": "USD",
                "jurisdiction": "us",
            },
            {
                "id": "A-2",
                "patient_id": "P-1",
                "creditor_id": "CR-US",
                "currency": "USD",
                "jurisdiction": "us",
            },
        ],
        "invoices": [
            {
                "id": "INV-1",
                "account_id": "A-1",
                "currency": "USD",
                "issue_date": "2026-01-10",
                "due_date": "2026-02-09",
                "lines": [{"code": "99213", "amount": "240.00", "service_date": "2026-01-05"}],
            }
        ],
    }


def with_applications() -> dict[str, Any]:
    doc = base_document()
    doc["assistance_applications"] = [
        {"id": "FA-1", "account_id": "A-1", "received_on": "2026-02-20", "status": "received"},
        {"id": "FA-2", "account_id": "A-2", "received_on": "2026-01-15"},  # status defaults to received
        {
            "id": "FA-3",
            "account_id": "A-2",
            "received_on": "2025-11-03",
            "status": "denied",
            "decided_on": "2025-12-01",
        },
    ]
    return doc


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "import.db") as s:
        yield s


def _write_csv(folder: Path, name: str, rows: list[list[str]]) -> None:
    with (folder / name).open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def _applications(store: SQLiteStore) -> list[AssistanceApplication]:
    return [app for snap in store.iter_account_snapshots() for app in snap.applications]


# -- JSON ---------------------------------------------------------------------------------------------


def test_json_applications_are_stored_and_a_pending_one_shows_on_the_snapshot(
    store: SQLiteStore, tmp_path: Path
) -> None:
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(with_applications()), encoding="utf-8")
    summary = import_json(store, path)
    assert summary.assistance_applications == 3
    assert store.counts()["assistance_applications"] == 3
    snap = store.account_snapshot("A-1")
    assert snap.applications == (
        AssistanceApplication("FA-1", "A-1", dt.date(2026, 2, 20), ApplicationStatus.RECEIVED),
    )
    assert application_suspends_eca(snap.applications[0])
    a2 = store.account_snapshot("A-2").applications
    assert [(a.id, a.status, a.decided_on) for a in a2] == [
        ("FA-3", ApplicationStatus.DENIED, dt.date(2025, 12, 1)),
        ("FA-2", ApplicationStatus.RECEIVED, None),
    ]


def test_importing_applications_again_changes_nothing_and_a_newer_status_replaces_the_old(
    store: SQLiteStore,
) -> None:
    import_json(store, with_applications())
    before = _applications(store)
    again = import_json(store, with_applications())
    assert again.assistance_applications == 3 and again.ledger_entries == 0
    assert _applications(store) == before
    decided = {
        "format": FORMAT,
        "assistance_applications": [
            {
                "id": "FA-1",
                "account_id": "A-1",
                "received_on": "2026-02-20",
                "status": "approved",
                "decided_on": "2026-03-01",
            }
        ],
    }
    import_json(store, decided)
    (fa1,) = store.account_snapshot("A-1").applications
    assert fa1.status is ApplicationStatus.APPROVED and not application_suspends_eca(fa1)
    assert store.counts()["assistance_applications"] == 3


def test_applications_alone_attach_to_accounts_already_in_the_store(store: SQLiteStore) -> None:
    """The path after a FHIR import, which cannot carry applications."""
    import_json(store, base_document())
    only = {"format": FORMAT, "assistance_applications": with_applications()["assistance_applications"]}
    assert import_json(store, only).assistance_applications == 3
    assert [a.id for a in store.account_snapshot("A-1").applications] == ["FA-1"]


def test_bad_json_applications_are_reported_by_index_id_and_field_and_nothing_is_stored(
    store: SQLiteStore,
) -> None:
    doc = with_applications()
    apps = doc["assistance_applications"]
    apps[0]["status"] = "pending"  # not one of ours
    apps[1]["received_on"] = "15.01.2026"
    apps[2]["account_id"] = "A-404"
    apps.append({"id": "FA-4", "account_id": "A-1", "status": "received"})  # no received_on
    apps.append({"id": "FA-3", "account_id": "A-1", "received_on": "2026-02-21"})  # duplicate id
    apps.append({"id": "FA-6", "account_id": "A-1", "received_on": "2026-02-21", "decided_on": 20260301})
    # decided before it was received
    apps.append({"id": "FA-7", "account_id": "A-1", "received_on": "2026-02-21", "decided_on": "2026-02-20"})
    with pytest.raises(ImportFailed) as info:
        import_json(store, doc)
    found = [(p.where, p.field, p.record_id) for p in info.value.problems]
    assert found == [
        ("assistance_applications[0]", "status", "FA-1"),
        ("assistance_applications[1]", "received_on", "FA-2"),
        ("assistance_applications[3]", "received_on", "FA-4"),
        ("assistance_applications[4]", "id", "FA-3"),
        ("assistance_applications[5]", "decided_on", "FA-6"),
        ("assistance_applications[6]", "decided_on", "FA-7"),
        ("assistance_applications[2]", "account_id", "FA-3"),
    ]
    assert "must be one of: received, incomplete, approved, denied, withdrawn" in str(info.value)
    assert all(n == 0 for n in store.counts().values())


def test_an_application_for_an_unknown_account_refuses_the_whole_import(store: SQLiteStore) -> None:
    doc = with_applications()
    doc["assistance_applications"][1]["account_id"] = "A-9"
    with pytest.raises(ImportFailed, match=r"assistance_applications\[1\] \(FA-2\): field 'account_id'"):
        import_json(store, doc)
    assert all(n == 0 for n in store.counts().values())


def test_the_applications_section_must_be_a_list_of_objects(store: SQLiteStore) -> None:
    doc = base_document()
    doc["assistance_applications"] = {"id": "FA-1"}
    with pytest.raises(ImportFailed, match="must be a list of objects"):
        import_json(store, doc)
    doc["assistance_applications"] = ["FA-1"]
    with pytest.raises(ImportFailed, match=r"assistance_applications\[0\]"):
        import_json(store, doc)
    assert store.counts()["accounts"] == 0


# -- CSV ----------------------------------------------------------------------------------------------


def test_csv_applications_are_stored(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, base_document())
    folder = tmp_path / "csv"
    folder.mkdir()
    _write_csv(
        folder,
        "assistance_applications.csv",
        [
            ["id", "account_id", "received_on", "status", "decided_on"],
            ["FA-1", "A-1", "2026-02-20", "incomplete", ""],
            ["FA-2", "A-2", "2026-01-15", "", ""],
        ],
    )
    assert import_csv(store, folder).assistance_applications == 2
    (fa1,) = store.account_snapshot("A-1").applications
    assert fa1.status is ApplicationStatus.INCOMPLETE and application_suspends_eca(fa1)
    (fa2,) = store.account_snapshot("A-2").applications
    assert fa2.status is ApplicationStatus.RECEIVED and fa2.decided_on is None


def test_bad_csv_applications_are_reported_by_row_and_field_and_nothing_is_stored(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "csv"
    with SQLiteStore(":memory:") as old:
        import_json(old, base_document())
        export_csv(old, folder)  # the other files of a migration, and an empty applications file
    header = (folder / "assistance_applications.csv").read_text(encoding="utf-8").strip()
    assert header == "id,account_id,received_on,status,decided_on"
    _write_csv(
        folder,
        "assistance_applications.csv",
        [
            header.split(","),
            ["FA-1", "A-1", "2026-02-20", "received", ""],  # row 2: good
            ["FA-2", "A-1", "2026-02-20", "open", ""],  # row 3: bad status
            ["FA-3", "A-1", "2026-02-30", "received", ""],  # row 4: no such day
            ["FA-4", "A-404", "2026-02-20", "received", ""],  # row 5: unknown account
            ["FA-5", "A-2", "2026-02-20", "approved", "yesterday"],  # row 6: bad decided_on
        ],
    )
    with pytest.raises(ImportFailed) as info:
        import_csv(store, folder)
    found = {(p.where, p.field, p.record_id) for p in info.value.problems}
    assert found == {
        ("assistance_applications.csv row 3", "status", "FA-2"),
        ("assistance_applications.csv row 4", "received_on", "FA-3"),
        ("assistance_applications.csv row 5", "account_id", "FA-4"),
        ("assistance_applications.csv row 6", "decided_on", "FA-5"),
    }
    assert all(n == 0 for n in store.counts().values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_applications_csv_text_only_ever_raises_import_failed(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("fa")
    (folder / "assistance_applications.csv").write_text(
        "id,account_id,received_on,status,decided_on\n" + text, encoding="utf-8"
    )
    with SQLiteStore(":memory:") as s:
        try:
            import_csv(s, folder)
        except ImportFailed as failed:
            assert failed.problems
        # no account exists, so no application can be stored
        assert s.counts()["assistance_applications"] == 0


# -- export and round trips ---------------------------------------------------------------------------


def test_json_round_trip_keeps_every_application(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, with_applications())
    export_json(store, tmp_path / "out.json")
    exported = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert {a["id"] for a in exported["assistance_applications"]} == {"FA-1", "FA-2", "FA-3"}
    with SQLiteStore(tmp_path / "second.db") as second:
        assert import_json(second, tmp_path / "out.json").assistance_applications == 3
        assert _applications(second) == _applications(store)
        assert export_document(second) == export_document(store)


def test_csv_round_trip_keeps_every_application(store: SQLiteStore, tmp_path: Path) -> None:
    import_json(store, with_applications())
    export_csv(store, tmp_path / "csv")
    rows = list(
        csv.reader(
            (tmp_path / "csv" / "assistance_applications.csv").read_text(encoding="utf-8").splitlines()
        )
    )
    assert rows[0] == list(CSV_COLUMNS["assistance_applications"]) and len(rows) == 4
    with SQLiteStore(tmp_path / "second.db") as second:
        assert import_csv(second, tmp_path / "csv").assistance_applications == 3
        assert _applications(second) == _applications(store)
        assert export_document(second) == export_document(store)


def test_imported_pending_applications_hold_the_daily_run_after_a_migration(tmp_path: Path) -> None:
    """The reason for all of this: a patient who applied in the old system is not dunned in the new one."""
    with SQLiteStore(":memory:") as old:
        load_portfolio(old, 60, seed=3, as_of=NOW.date())
        before = plan_run(old, NOW, RunSettings())
        doc = export_document(old)
    applying = sorted({m.step.account_id for m in before.messages})[:3]
    assert len(applying) == 3
    doc["assistance_applications"] = [
        {"id": f"FA-{n}", "account_id": a, "received_on": "2026-02-25"} for n, a in enumerate(applying)
    ]
    with SQLiteStore(tmp_path / "new.db") as new:
        import_json(new, doc)
        after = plan_run(new, NOW, RunSettings())
        assert not [m for m in after.messages if m.step.account_id in applying]
        held = {
            d.account_id for d in after.decisions if any(r.rule_id == "assistance.pause" for r in d.reasons)
        }
        assert held == set(applying)
        assert [m for m in after.messages if m.step.account_id not in applying]


# -- the command line ---------------------------------------------------------------------------------


def test_cli_imports_applications_and_warns_that_fhir_leaves_them_out(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "clinic.sqlite"
    assert runner.invoke(main, ["init", "--db", str(db)]).exit_code == 0
    source = tmp_path / "migration.json"
    source.write_text(json.dumps(with_applications()), encoding="utf-8")
    result = runner.invoke(main, ["import", "--db", str(db), str(source)], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "assistance applications" in result.output
    with SQLiteStore(db) as s:
        assert s.counts()["assistance_applications"] == 3

    bad = with_applications()
    bad["assistance_applications"][0]["status"] = "pending"
    source.write_text(json.dumps(bad), encoding="utf-8")
    refused = runner.invoke(main, ["import", "--db", str(db), str(source)])
    assert refused.exit_code == 1
    assert "assistance_applications[0] (FA-1): field 'status'" in refused.output

    pytest.importorskip("fhir.resources")
    exported = runner.invoke(main, ["export", "--db", str(db), "--format", "fhir", str(tmp_path / "b.json")])
    assert exported.exit_code == 0, exported.output
    assert "leaves out 3 financial-assistance applications" in exported.output
    bundle = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert not [e for e in bundle["entry"] if "FA-" in json.dumps(e)]
