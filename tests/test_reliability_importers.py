"""Importers fed with random bytes and corrupted files only ever raise the documented ``ImportFailed``.

``tests/test_importers_tabular.py`` already throws random JSON values at the
JSON importer and random text at one CSV file; this adds what was missing:
random *bytes* (not UTF-8, not JSON, not CSV) in files, byte-level corruption of
real exports (CSV, JSON and FHIR), and random values in a real FHIR bundle. A
file either imports whole or fails with problems and leaves the store empty.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.importers import (
    CSV_COLUMNS,
    ImportFailed,
    ImportSummary,
    export_csv,
    export_json,
    import_csv,
    import_json,
)
from carecollect.portfolio import load_portfolio
from carecollect.relief.assistance import ApplicationStatus, AssistanceApplication
from carecollect.store import SQLiteStore

AS_OF = dt.date(2026, 3, 2)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real portfolio, with financial-assistance applications, exported as CSV files and a JSON document."""
    base = tmp_path_factory.mktemp("exports")
    with SQLiteStore(":memory:") as store:
        load_portfolio(store, 6, seed=2, as_of=AS_OF)
        for n, snap in enumerate(list(store.iter_account_snapshots())[:3]):
            decided = n % 2 == 1
            store.put_application(
                AssistanceApplication(
                    f"FA-{n}",
                    snap.account.id,
                    AS_OF - dt.timedelta(days=20 + n),
                    ApplicationStatus.APPROVED if decided else ApplicationStatus.RECEIVED,
                    AS_OF - dt.timedelta(days=5) if decided else None,
                )
            )
        export_csv(store, base / "csv")
        export_json(store, base / "doc.json")
    return base


def _only_import_failed(run: Callable[[SQLiteStore], ImportSummary]) -> None:
    with SQLiteStore(":memory:") as store:
        try:
            run(store)
        except ImportFailed as failed:
            assert failed.problems
            assert all(n == 0 for n in store.counts().values())


def _corrupt(data: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(data)
    for pos, chunk in edits:
        at = pos % (len(out) + 1)
        out[at : at + len(chunk)] = chunk
    return bytes(out)


edits = st.lists(
    st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=4)), min_size=1, max_size=4
)


def test_the_exports_import_cleanly(exports: Path) -> None:
    with SQLiteStore(":memory:") as store:
        summary = import_json(store, exports / "doc.json")
        assert (summary.invoices, summary.assistance_applications) == (6, 3)
    with SQLiteStore(":memory:") as store:
        summary = import_csv(store, exports / "csv")
        assert (summary.invoices, summary.assistance_applications) == (6, 3)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_as_a_json_file(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("j") / "doc.json"
    path.write_bytes(data)
    _only_import_failed(lambda s: import_json(s, path))


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(sorted(CSV_COLUMNS)), min_size=1, max_size=3, unique=True), data=st.data()
)
def test_random_bytes_as_csv_files(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("c")
    for kind in kinds:
        (folder / f"{kind}.csv").write_bytes(data.draw(st.binary(max_size=200)))
    _only_import_failed(lambda s: import_csv(s, folder))


@SETTINGS
@given(changes=edits)
def test_a_corrupted_json_export(
    exports: Path, tmp_path_factory: pytest.TempPathFactory, changes: Any
) -> None:
    path = tmp_path_factory.mktemp("jc") / "doc.json"
    path.write_bytes(_corrupt((exports / "doc.json").read_bytes(), changes))
    _only_import_failed(lambda s: import_json(s, path))


@SETTINGS
@given(
    kind=st.sampled_from(
        ["patients", "contact_points", "accounts", "invoices", "invoice_lines", "assistance_applications"]
    ),
    changes=edits,
)
def test_a_corrupted_csv_export(
    exports: Path, tmp_path_factory: pytest.TempPathFactory, kind: str, changes: Any
) -> None:
    folder = tmp_path_factory.mktemp("cc")
    for src in (exports / "csv").iterdir():
        data = src.read_bytes()
        (folder / src.name).write_bytes(_corrupt(data, changes) if src.stem == kind else data)
    _only_import_failed(lambda s: import_csv(s, folder))


# -- FHIR ------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fhir_bundle() -> dict[str, Any]:
    pytest.importorskip("fhir.resources")
    from carecollect.importers.fhir import export_fhir_bundle

    with SQLiteStore(":memory:") as store:
        load_portfolio(store, 4, seed=2, as_of=AS_OF)
        bundle: dict[str, Any] = json.loads(json.dumps(export_fhir_bundle(store), default=str))
    return bundle


def test_the_fhir_export_imports_cleanly(fhir_bundle: dict[str, Any]) -> None:
    from carecollect.importers.fhir import import_fhir

    with SQLiteStore(":memory:") as store:
        assert import_fhir(store, copy.deepcopy(fhir_bundle)).invoices == 4


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_values_in_a_fhir_bundle(fhir_bundle: dict[str, Any], data: st.DataObject) -> None:
    from carecollect.importers.fhir import import_fhir

    bundle = copy.deepcopy(fhir_bundle)
    entry = data.draw(st.sampled_from(bundle["entry"]))
    resource = entry["resource"]
    key = data.draw(st.sampled_from(sorted(resource)))
    if data.draw(st.booleans()):
        del resource[key]
    else:
        resource[key] = data.draw(json_values)
    _only_import_failed(lambda s: import_fhir(s, bundle))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_as_a_fhir_file(
    fhir_bundle: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    from carecollect.importers.fhir import import_fhir

    path = tmp_path_factory.mktemp("f") / "bundle.json"
    path.write_bytes(data)
    _only_import_failed(lambda s: import_fhir(s, path))
