"""The command line on real SQLite files: init, import, run, explain, report, the lock, the demo."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.spool import spool_ids

from carecollect.cli import main
from carecollect.importers import export_document
from carecollect.plugins.builtin.outbox import spooled_messages
from carecollect.portfolio import load_portfolio
from carecollect.run.settings_file import config_path
from carecollect.store.sqlite import MIGRATIONS, SQLiteStore

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
    result = _cli("init", "--db", str(path))
    assert result.exit_code == 0, result.output
    source = tmp_path / "portfolio.json"
    source.write_text(json.dumps(_document()), encoding="utf-8")
    result = _cli("import", "--db", str(path), str(source))
    assert result.exit_code == 0, result.output
    return path


def _outbox(db: Path) -> Path:
    return db.with_name(f"{db.stem}-outbox")


def _spooled_ids(db: Path) -> list[str]:
    """The message ids in the spool of the outbox ``carecollect init`` set up for ``db``."""
    return spool_ids(_outbox(db))


def test_init_creates_database_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    result = _cli("init", "--db", str(path))
    assert result.exit_code == 0
    assert path.exists() and config_path(path).exists()
    assert f"schema version {MIGRATIONS[-1][0]}" in result.output
    text = config_path(path).read_text(encoding="utf-8")
    config_path(path).write_text(text + "\n# mine\n", encoding="utf-8")
    again = _cli("init", "--db", str(path))
    assert "Kept settings" in again.output
    assert config_path(path).read_text(encoding="utf-8").endswith("# mine\n")


def test_import_good_file_stores_everything(db: Path) -> None:
    store = SQLiteStore(db)
    counts = store.counts()
    store.close()
    assert counts["invoices"] == 30
    assert counts["patients"] > 0


def test_import_bad_file_lists_each_problem_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _cli("init", "--db", str(path))
    doc = _document(6)
    doc["invoices"][1]["due_date"] = "31.02.2026"
    doc["invoices"][3]["currency"] = "XXX1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = CliRunner().invoke(main, ["import", "--db", str(path), str(bad)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nothing was stored" in result.output
    assert "due_date" in result.output and doc["invoices"][1]["id"] in result.output
    assert "currency" in result.output
    # no PHI: no patient's name appears
    for patient in doc["patients"]:
        assert patient["name"] not in result.output
    store = SQLiteStore(path)
    assert store.counts()["invoices"] == 0
    store.close()


def test_commands_refuse_a_missing_database_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "none.sqlite"), "--as-of", AS_OF])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "carecollect init" in result.output
    assert result.output.count("\n") == 1


def test_dry_run_sends_nothing_and_run_sends_each_message_once(db: Path) -> None:
    dry = _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF)
    assert dry.exit_code == 0, dry.output
    planned = int(_row(dry.output, "messages planned"))
    assert planned > 0
    assert not _outbox(db).exists() or not any(_outbox(db).iterdir())
    store = SQLiteStore(db)
    assert store.counts()["outbox"] == 0 and store.counts()["audit_log"] == 0
    store.close()

    real = _cli("run", "--db", str(db), "--as-of", AS_OF)
    assert real.exit_code == 0, real.output
    sent = int(_row(real.output, "sent"))
    assert sent == planned
    ids = _spooled_ids(db)
    assert len(ids) == len(set(ids)) == sent
    assert {m.id for m in spooled_messages(_outbox(db))} == set(ids)

    again = _cli("run", "--db", str(db), "--as-of", AS_OF)
    assert again.exit_code == 0
    assert int(_row(again.output, "sent")) == 0
    assert _spooled_ids(db) == ids


def test_run_with_two_workers_sends_each_message_once(db: Path) -> None:
    dry = _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF)
    planned = int(_row(dry.output, "messages planned"))
    real = _cli("run", "--db", str(db), "--as-of", AS_OF, "--workers", "2")
    assert real.exit_code == 0, real.output
    assert int(_row(real.output, "sent")) == planned > 0
    ids = _spooled_ids(db)
    assert len(ids) == len(set(ids)) == planned
    again = _cli("run", "--db", str(db), "--as-of", AS_OF, "--workers", "2")
    assert int(_row(again.output, "sent")) == 0
    assert sorted(_spooled_ids(db)) == sorted(ids)
    with SQLiteStore(db) as store:
        assert store.verify_audit().ok
    assert CliRunner().invoke(main, ["run", "--db", str(db), "--workers", "0"]).exit_code == 2


def test_workers_auto_starts_one_per_core_for_a_large_portfolio(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default: the store's 15 accounts stay in this process, with no line about workers
    dry = _cli("run", "--db", str(db), "--dry-run", "--as-of", AS_OF)
    planned = int(_row(dry.output, "messages planned"))
    small = db.with_name("small.sqlite")
    small.write_bytes(db.read_bytes())
    config_path(small).write_text(
        config_path(db).read_text(encoding="utf-8").replace("clinic-outbox", "small-outbox"), encoding="utf-8"
    )
    alone = _cli("run", "--db", str(small), "--as-of", AS_OF)
    assert alone.exit_code == 0, alone.output
    assert "Worker processes" not in alone.output
    assert int(_row(alone.output, "sent")) == planned
    # a portfolio at the threshold on two cores: two processes, the fixed partitions of auto
    from carecollect.run import workers

    monkeypatch.setattr(workers, "AUTO_MIN_ACCOUNTS", 10)
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    real = _cli("run", "--db", str(db), "--as-of", AS_OF)
    assert real.exit_code == 0, real.output
    assert f"Worker processes: 2, partitions: {workers.AUTO_PARTITIONS} (--workers auto" in real.output
    assert int(_row(real.output, "sent")) == planned > 0
    ids = _spooled_ids(db)
    assert len(ids) == len(set(ids)) == planned
    assert sorted(ids) == sorted(spool_ids(small.with_name("small-outbox")))
    # started again for the same instant on a machine with more cores: the same layout, nothing twice
    monkeypatch.setattr(workers, "usable_cores", lambda: 3)
    again = _cli("run", "--db", str(db), "--as-of", AS_OF)
    assert again.exit_code == 0, again.output
    assert int(_row(again.output, "sent")) == 0
    assert "Worker processes: 3" in again.output
    with SQLiteStore(db) as store:
        assert store.verify_audit().ok
    # the help names the figures auto goes by
    monkeypatch.undo()
    helped = " ".join(_cli("run", "--help").output.split())
    assert f"{workers.AUTO_MIN_ACCOUNTS:,} accounts or more ({workers.AUTO_PARTITIONS} partitions)" in helped


@pytest.mark.parametrize("given", ["0", "-1", "many", "2.5", ""])
def test_workers_takes_a_count_or_auto(db: Path, given: str) -> None:
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--as-of", AS_OF, "--workers", given])
    assert result.exit_code == 2
    assert "neither a count of at least 1 nor auto" in result.output


def _row(output: str, label: str) -> str:
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 2 and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_explain_shows_each_decision_with_rule_ids(db: Path) -> None:
    _cli("run", "--db", str(db), "--as-of", AS_OF)
    store = SQLiteStore(db)
    record = next(r for r in store.audit_records() if r.kind == "message.sent")
    account = record.subject_id
    store.close()
    result = _cli("explain", "--db", str(db), account)
    assert result.exit_code == 0, result.output
    assert "│ send " in result.output and "message.sent" in result.output
    assert "allow" in result.output
    missing = CliRunner().invoke(main, ["explain", "--db", str(db), "NO-SUCH-ACCOUNT"])
    assert missing.exit_code == 1 and "NO-SUCH-ACCOUNT" in missing.output
    assert "Traceback" not in missing.output


def test_report_shows_aging_messages_and_contact_centre(db: Path) -> None:
    _cli("run", "--db", str(db), "--as-of", AS_OF)
    result = _cli("report", "--db", str(db), "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    for heading in ("Aging of open balances", "Collected since", "Messages sent since", "Payment plans"):
        assert heading in result.output
    assert "120+" in result.output
    assert "no contact-centre records" in result.output


def test_a_second_run_is_refused_while_the_lock_is_held(db: Path) -> None:
    store = SQLiteStore(db)
    # a live holder on another host: its heartbeat is recent on the wall clock (not the run's --as-of)
    store.acquire_run_lock("other@elsewhere", 4242, now=dt.datetime.now(dt.UTC))
    store.close()
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--as-of", AS_OF])
    assert result.exit_code == 1
    assert "another run is in progress" in result.output and "4242" in result.output
    assert "Traceback" not in result.output
    assert not _outbox(db).exists() or not any(_outbox(db).iterdir())


def test_as_of_needs_an_offset() -> None:
    result = CliRunner().invoke(main, ["run", "--as-of", "2026-03-02T09:00"])
    assert result.exit_code == 2 and "offset" in result.output


def test_demo_small_from_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _cli("demo", "--size", "200", "--weeks", "2")
    assert result.exit_code == 0, result.output
    db = tmp_path / "carecollect-demo.sqlite"
    assert db.exists() and _outbox(db).is_dir()
    files = list(_outbox(db).iterdir())
    assert len(files) > 100
    for heading in ("Daily runs", "Aging of open balances", "Contact centre", "Messages sent since"):
        assert heading in result.output
    assert "phone-general" in result.output
    store = SQLiteStore(db)
    kinds = {r.kind for r in store.audit_records()}
    assert store.verify_audit().ok
    store.close()
    assert {"message.sent", "opt_out"} <= kinds
    # some e-mails bounce: the intake marks their addresses, and the run table counts them
    assert "bounced" in result.output
    assert "contact_point.undeliverable" in kinds
    # with the pdf extra, letters are laid out and written as print batches
    batches = tmp_path / "carecollect-demo-letters" / "batches"
    manifests = sorted(batches.glob("*.csv"))
    assert "print batches" in result.output and manifests
    assert all(m.with_suffix(".pdf").exists() for m in manifests)
    assert not any(
        f.read_text(encoding="utf-8", errors="replace").startswith("Channel: letter") for f in files
    )
    # the demo's own report equals `carecollect report` on its database
    report = _cli("report", "--db", str(db), "--as-of", "2026-03-13", "--days", "14")
    assert "Contact centre, 2026-03-13" in report.output
    again = CliRunner().invoke(main, ["demo", "--size", "200", "--weeks", "2"])
    assert again.exit_code == 1 and "--fresh" in again.output


def test_cli_reference_page_shows_the_current_help_of_every_command() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "cli.rst").read_text(
        encoding="utf-8"
    )
    runner = CliRunner()
    commands = (
        "",
        "init",
        "config check",
        "import",
        "export",
        "backup",
        "restore",
        "migrate",
        "store",
        "store check",
        "store seal",
        "run",
        "explain",
        "report",
        "web",
        "web serve",
        "web link",
        "outbox",
        "outbox list",
        "outbox show",
    )
    for command in (*commands, "demo"):
        args = [*command.split(), "--help"]
        text = runner.invoke(main, args, prog_name="carecollect", terminal_width=88).output
        block = "\n".join(("   " + line).rstrip() for line in text.rstrip().splitlines())
        assert block in page, f"docs/reference/cli.rst is out of date for `carecollect {command}`"


@pytest.mark.parametrize(("fmt", "name"), [("csv", "out-csv"), ("json", "out.json"), ("fhir", "bundle.json")])
def test_export_writes_what_import_reads_back(db: Path, tmp_path: Path, fmt: str, name: str) -> None:
    if fmt == "fhir":
        pytest.importorskip("fhir.resources")
    dest = tmp_path / name
    result = _cli("export", "--db", str(db), "--format", fmt, str(dest))
    assert result.exit_code == 0, result.output
    assert "Exported" in result.output and f"({fmt})" in result.output
    copy = tmp_path / "copy.sqlite"
    assert _cli("init", "--db", str(copy)).exit_code == 0
    back = _cli("import", "--db", str(copy), "--format", fmt, str(dest))
    assert back.exit_code == 0, back.output
    with SQLiteStore(db) as a, SQLiteStore(copy) as b:
        for kind in ("patients", "accounts", "invoices", "invoice_lines", "ledger_entries"):
            assert a.counts()[kind] == b.counts()[kind], kind


def test_run_takes_in_events_from_a_file_once(db: Path, tmp_path: Path) -> None:
    with SQLiteStore(db) as store:
        sms = next(
            p.address
            for patient in store.patients()
            for p in patient.contact_points
            if p.channel.value == "sms" and p.opted_out_at is None
        )
    reply = {"id": "in-1", "from": sms, "text": "STOP", "channel": "sms"}
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"kind": "reply", "plugin": "outbox", "body": json.dumps(reply)}) + "\n", encoding="utf-8"
    )
    first = _cli("run", "--db", str(db), "--as-of", AS_OF, "--events", str(events))
    assert first.exit_code == 0, first.output
    assert _row(first.output, "inbound events taken in") == "1"
    assert _row(first.output, "opt-outs") == "1"
    again = _cli("run", "--db", str(db), "--as-of", AS_OF, "--events", str(events))
    assert _row(again.output, "duplicates ignored") == "1"
    assert "opt-outs" not in again.output  # a row of zeros is left out

    events.write_text('{"kind": "reply"}\nnot json\n', encoding="utf-8")
    bad = _cli("run", "--db", str(db), "--as-of", AS_OF, "--events", str(events))
    assert bad.exit_code == 1 and "events.jsonl line 1: not an event" in bad.output


def test_payment_provider_settings_take_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carecollect.errors import ConfigurationError
    from carecollect.run.settings_file import parse_config

    text = '[payment_providers.demo-gateway]\nwebhook_secret = "env:GW_SECRET"\nmode = "test"\n'
    monkeypatch.setenv("GW_SECRET", "s3cret")
    settings = parse_config(text, tmp_path).settings
    assert settings.payment_providers == {"demo-gateway": {"webhook_secret": "s3cret", "mode": "test"}}
    assert "s3cret" not in repr(settings)
    monkeypatch.delenv("GW_SECRET")
    with pytest.raises(ConfigurationError, match="GW_SECRET"):
        parse_config(text, tmp_path)


def test_init_writes_the_spool_layout_and_the_demo_keeps_files(tmp_path: Path) -> None:
    from carecollect.errors import ConfigurationError
    from carecollect.run.settings_file import default_config_text, load_config

    db = tmp_path / "clinic.sqlite"
    assert _cli("init", "--db", str(db)).exit_code == 0
    assert load_config(db).settings.channel_config["outbox"]["layout"] == "spool"
    assert 'layout = "files"' in default_config_text("demo", outbox_layout="files")
    with pytest.raises(ConfigurationError, match="one of files, spool, not 'pdf'"):
        default_config_text("clinic", outbox_layout="pdf")
