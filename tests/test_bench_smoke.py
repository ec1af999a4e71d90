"""The benchmark at a tiny size: its decision floor decides as the run's kernel does, and it prints its figures.

No timing is asserted here; ``nox -s bench`` prints the figures.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from carecollect.bench.__main__ import AS_OF, full_run, main, store_for
from carecollect.bench.floors import decision_floor, read_floor, store_rows
from carecollect.run.kernel import DUE, RunTables, decide, decode
from carecollect.run.rows import Contexts

# 15:30 UTC: European and US-east daytime, 07:30 in Los Angeles (quiet hours hold there);
# 03:00 UTC: night in Europe, evening in the US; and a day weeks later, when reminders fall due.
INSTANTS = (
    dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 3, 3, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store_for(tmp_path_factory.mktemp("bench"), 2000, 1)


@pytest.mark.parametrize("now", INSTANTS)
def test_the_decision_floor_decides_as_the_kernel(store: Path, now: dt.datetime) -> None:
    contexts = Contexts()
    rows = [r for acc in store_rows(str(store), now, contexts) if not acc.rich for r in acc.rows]
    tables = RunTables(contexts, now)
    kernel = decide(rows, tables)
    assert decision_floor(rows, tables) == kernel
    states = [decode(c) for c in kernel]
    assert any(state == DUE and send for state, _, _, send, _ in states)
    assert any(state == DUE and planned & ~send for state, _, planned, send, _ in states)
    assert any(state != DUE for state, *_ in states)  # paid, frozen by a claim, or stopped


def test_the_read_floor_reads_every_invoice(store: Path) -> None:
    assert read_floor(str(store), INSTANTS[0])[1] == 2000


def test_the_store_is_made_with_the_demo_command(store: Path) -> None:
    assert store.with_suffix(".toml").exists()
    assert AS_OF.isoformat() in store.name


def test_quick_bench_prints_its_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--quick", "--size", "4000", "--skip-full", "--skip-channels", "--skip-postgres"]
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "carecollect run --dry-run" in out
    assert "decision floor" in out and "read floor" in out
    assert 'python -c "import carecollect"' in out


def test_full_run_figure_counts_the_same_with_two_workers_and_by_default(store: Path, tmp_path: Path) -> None:
    one, two = full_run(store, 1, tmp_path), full_run(store, 2, tmp_path)
    assert one["sent"] == two["sent"] > 0
    default = full_run(store, None, tmp_path, "spool")  # no --workers: auto
    assert default["sent"] == one["sent"] and default["outbox_size"] > 0


def test_the_channel_figures_send_through_the_smtp_plugin_to_a_local_server() -> None:
    from importlib.util import find_spec

    from carecollect.bench.channels import smtp_figures

    lines = smtp_figures(60, 20)
    if find_spec("carecollect_smtp") is None or find_spec("aiosmtpd") is None:
        assert lines[0].startswith("skipped: pip install")
        return
    assert [line.split()[0] for line in lines] == [
        "one",
        "reuse,",
        "reuse,",
        "reuse,",
        "of",
        "floor:",
        "reuse",
    ]
    assert "(baseline)" in lines[0] and "/s" in lines[1] and "target >= 1,000/s" in lines[-1]
    assert "PIPELINING" in lines[3]


@pytest.mark.postgres
def test_the_postgresql_figures_run_the_dry_run_and_the_full_run_on_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg", reason="NO PSYCOPG: install carecollect[postgres]")
    from carecollect.bench.__main__ import _postgres_figures

    work = tmp_path / "work"
    work.mkdir()
    _postgres_figures(tmp_path / "cache", work, 600, 0, 1, 200, 2.0)
    out = capsys.readouterr().out
    assert "carecollect run --dry-run --store postgresql://...:" in out
    sent = [line for line in out.splitlines() if "carecollect run --store postgresql://...:" in line]
    assert sent and "messages sent" in sent[0] and " 0 messages" not in sent[0]
    assert "x the SQLite run" in sent[0]
