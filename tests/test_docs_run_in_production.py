"""The production how-to, followed from a clean start: its ``$ carecollect`` lines, in order.

A throwaway PostgreSQL server stands for ``db.internal``; the database is made empty, the page's
``migrate`` brings the schema, the demo portfolio is imported and the run goes on a LocalCluster.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
pytest.importorskip("distributed", reason='NO DASK: install "carecollect[dask]"')

from carecollect.cli import main
from carecollect.run.workers import run_key_of
from carecollect.store.urls import open_store
from carecollect.testing.postgres import LocalPostgres

pytestmark = [pytest.mark.postgres, pytest.mark.dask]

PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "run-in-production.rst"


def _commands() -> list[list[str]]:
    return [
        shlex.split(line.strip()[2:])[1:]
        for line in PAGE.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("$ carecollect ")
    ]


def test_the_production_how_to_runs_from_a_clean_start(
    postgres_server: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.create_database("billing_howto")
    monkeypatch.chdir(tmp_path)
    env = {"CARECOLLECT_STORE_URL": url}
    commands = _commands()
    assert [c[0] for c in commands] == [
        "migrate",
        "migrate",
        "init",
        "demo",
        "export",
        "import",
        "run",
        "store",
    ]
    runner = CliRunner()
    for args in commands:
        result = runner.invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    with open_store(url) as store:
        assert store.counts()["invoices"] == 300
        finished = list(store.audit_records(subject_id="run", kinds=("run.finished",)))
        assert len(finished) == 1
        as_of = finished[0].data["as_of"]
        assert store.finished_partitions(run_key_of(dt.datetime.fromisoformat(str(as_of)))) == set(range(16))
    assert os.path.exists(tmp_path / "clinic.toml")
