"""What ``carecollect run`` prints: counts, --show, --format json, routes, --force; and its logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from carecollect.cli import main
from carecollect.cli.run_summary import DRY_RUN_COUNTS, DRY_RUN_FORMAT
from carecollect.importers import export_document
from carecollect.observability import LOGGER_NAME, RUN_EVENTS
from carecollect.portfolio import load_portfolio
from carecollect.store.sqlite import SQLiteStore

AS_OF = "2026-03-02"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _document(size: int = 30) -> dict[str, Any]:
    store = SQLiteStore(":memory:")
    load_portfolio(store, size, seed=5, as_of=dt.date(2026, 3, 2))
    doc = export_document(store)
    store.close()
    return doc


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.sqlite"
    assert _cli("init", "--db", str(path)).exit_code == 0
    source = tmp_path / "portfolio.json"
    source.write_text(json.dumps(_document()), encoding="utf-8")
    assert _cli("import", "--db", str(path), str(source)).exit_code == 0
    return path


def _rows(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 2 and cells[1].isdigit():
            out[cells[0]] = cells[1]
    return out


def test_dry_run_json_has_stable_keys_and_agrees_with_the_counts(db: Path) -> None:
    text = _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF)
    counts = json.loads(
        _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF, "--format", "json").output
    )
    assert list(counts) == ["format", "as_of", "counts", "messages", "holds"]
    assert counts["format"] == DRY_RUN_FORMAT
    assert counts["as_of"] == "2026-03-02T16:00:00+00:00"
    assert tuple(counts["counts"]) == DRY_RUN_COUNTS
    assert counts["messages"] is None and counts["holds"] is None  # counts only: the fast path
    rows = _rows(text.output)
    assert int(rows["messages planned"]) == counts["counts"]["messages_planned"] > 0
    # rows of zeros are left out of the table, kept (as 0) in the JSON
    zeros = [k for k, v in counts["counts"].items() if v == 0]
    assert zeros and all(k.replace("_", " ") not in rows for k in zeros)

    shown = json.loads(
        _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF, "--show", "--format", "json").output
    )
    assert shown["counts"] == counts["counts"]
    assert len(shown["messages"]) == counts["counts"]["messages_planned"]
    assert len(shown["holds"]) == counts["counts"]["messages_held"]
    first = shown["messages"][0]
    assert list(first) == ["key", "account_id", "invoice_id", "step", "channel", "language", "due_at"]
    with SQLiteStore(db) as store:
        patient = store.get_patient(store.get_account(first["account_id"]).patient_id)
        assert first["language"] == patient.preferred_language
        assert store.counts()["audit_log"] == 0 and store.counts()["outbox"] == 0  # nothing written
    for hold in shown["holds"]:
        assert hold["reasons"] and all(
            r["outcome"] in ("deny", "defer", "condition") for r in hold["reasons"]
        )


def test_dry_run_show_lists_messages_and_holds(db: Path) -> None:
    shown = _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF, "--show")
    doc = json.loads(
        _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF, "--show", "--format", "json").output
    )
    assert f"Planned messages: {len(doc['messages'])}" in shown.output
    assert f"Holds: {len(doc['holds'])}" in shown.output
    for m in doc["messages"][:5]:
        assert m["account_id"] in shown.output and m["channel"] in shown.output
    assert CliRunner().invoke(main, ["run", "--db", str(db), "--show"]).exit_code == 2  # needs --dry-run


def test_run_says_where_the_messages_went_and_refuses_to_go_back_in_time(db: Path) -> None:
    real = _cli("run", "--db", str(db), "--as-of", AS_OF)
    rows = _rows(real.output)
    sent = int(rows["sent"])
    assert sent > 0
    assert "failed" not in rows and "suppressed" not in rows  # zeros left out
    outbox = db.with_name(f"{db.stem}-outbox")
    routed = 0
    for line in real.output.splitlines():
        if " sent by plugin outbox to " in line:
            routed += int(line.split(":")[1].split()[0])
            assert line.rstrip().endswith(outbox.name) or str(outbox) in line
    assert routed == sent

    earlier = CliRunner().invoke(main, ["run", "--db", str(db), "--as-of", "2026-03-01"])
    assert earlier.exit_code == 1
    assert "before the last run (2026-03-02T16:00:00+00:00)" in earlier.output
    assert "--force" in earlier.output
    dry = _cli("run", "--db", str(db), "--dry-run", "--as-of", "2026-03-01")
    assert dry.exit_code == 0 and "needs --force" in dry.output
    forced = _cli("run", "--db", str(db), "--as-of", "2026-03-01", "--force")
    assert forced.exit_code == 0, forced.output
    later = _cli("run", "--db", str(db), "--as-of", "2026-03-03")
    assert later.exit_code == 0, later.output


def test_run_logs_stable_events_with_ids_and_no_patient_data(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER_NAME):
        result = _cli("run", "--db", str(db), "--as-of", AS_OF)
    assert result.exit_code == 0
    records = [r for r in caplog.records if r.name == LOGGER_NAME]
    events = [r.event for r in records]
    assert events[0] == "run.started" and events[1] == "run.intake.done" and events[-1] == "run.finished"
    assert "run.account.planned" in events and "run.message.sent" in events
    assert set(events) <= set(RUN_EVENTS)
    finished = records[-1]
    assert finished.ids["sent"] == int(_rows(result.output)["sent"])
    run_ids = {r.ids.get("run_id") for r in records if "run_id" in r.ids}
    assert len(run_ids) == 1
    text = "\n".join(r.getMessage() + json.dumps(r.ids) for r in records)
    with SQLiteStore(db) as store:
        patients = list(store.patients())
    assert patients
    secrets = [p.name for p in patients if p.name] + [
        cp.address for p in patients for cp in p.contact_points if len(cp.address) > 4
    ]
    assert secrets
    leaked = [value for value in secrets if value in text]
    assert leaked == []


def test_run_spans_and_metrics_reach_opentelemetry(db: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from carecollect import observability

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    observability.use_providers(tracer_provider, meter_provider)
    try:
        result = _cli("run", "--db", str(db), "--as-of", AS_OF)
    finally:
        observability.use_providers(None, None)
    sent = int(_rows(result.output)["sent"])
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) >= {
        "carecollect.run",
        "carecollect.run.event_intake",
        "carecollect.run.plan_and_send",
    }
    root = finished["carecollect.run"]
    assert finished["carecollect.run.event_intake"].parent.span_id == root.context.span_id
    assert root.attributes["as_of"] == "2026-03-02T16:00:00+00:00"
    data = reader.get_metrics_data()
    points = {
        m.name: sum(p.value for p in m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert points["carecollect.messages.sent"] == sent
    assert points["carecollect.accounts.planned"] > 0


def test_without_opentelemetry_spans_and_metrics_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from carecollect import observability

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    with observability.phase_span("carecollect.run", run_id="r"):
        observability.add_metric("carecollect.messages.sent", 3)
    with pytest.raises(KeyError):
        observability.log_event("run.no_such_event")
