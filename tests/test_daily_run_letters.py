"""The daily run sends letters through the ``letter`` channel and closes one print batch per run."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from carecollect.channels import Channel
from carecollect.creditors import Creditor, CreditorRole
from carecollect.errors import ConfigurationError
from carecollect.invoices import InvoiceStatus
from carecollect.patients import ContactPoint
from carecollect.plugins.manager import PluginManager, make_plugin_manager
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.sending import close_batches
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore
from carecollect.testing.factories import NOW, make_account, make_invoice, make_patient

pytest.importorskip("fpdf")
T0 = NOW + dt.timedelta(hours=5)
LETTER = ContactPoint(Channel.LETTER, "Hauptstraße 1\n10115 Berlin")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    s.put_creditor(Creditor("C-1", "Klinik am See", CreditorRole.PROVIDER, "DE"))
    s.put_patient(make_patient(contact_points=(LETTER,)))  # no e-mail or SMS consent: letters only
    s.put_account(make_account())
    s.put_invoice(make_invoice(status=InvoiceStatus.OPEN))
    yield s
    s.close()


@pytest.fixture
def pm() -> PluginManager:
    return make_plugin_manager(load_entrypoints=False)


def _settings(tmp_path: Path) -> RunSettings:
    plugins = dict.fromkeys(Channel, "outbox")
    plugins[Channel.LETTER] = "letter"
    return RunSettings(
        channel_plugins=plugins,
        channel_config={
            "outbox": {"folder": str(tmp_path / "out")},
            "letter": {
                "folder": str(tmp_path / "letters"),
                "sender": "Klinik am See|Seestraße 1|14467 Potsdam",
            },
        },
        pay_link_key=b"k" * 32,
    )


def test_the_run_writes_a_print_batch(store: SQLiteStore, pm: PluginManager, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    report = execute_run(store, T0, pm, settings)
    assert report.sent == 1
    (batch,) = report.batches
    batches = tmp_path / "letters" / "batches"
    with (batches / f"{batch}.csv").open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    sent = next(a for a in store.attempts_for("A-1") if a.provider_message_id)
    assert sent.channel is Channel.LETTER and sent.provider_message_id == f"letter-{row['message_id']}"
    assert row["country"] == "DE" and row["paper"] == "A4" and batch.endswith("-de-b")
    assert (batches / f"{batch}.pdf").read_bytes().startswith(b"%PDF-")
    # the next run has nothing pending: no empty batch
    assert execute_run(store, T0 + dt.timedelta(hours=1), pm, settings).batches == ()


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_the_window_shows_the_patients_name_and_the_letter_its_pay_link(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    (batch,) = execute_run(store, T0, pm, _settings(tmp_path)).batches
    pdf = tmp_path / "letters" / "batches" / f"{batch}.pdf"
    text = subprocess.run(
        ["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    lines = text.splitlines()
    # the return line, then the patient's name above the address, as the window shows them
    start = lines.index("Klinik am See, Seestraße 1, 14467 Potsdam")
    assert lines[start + 1 : start + 4] == ["Test Patient", "Hauptstraße 1", "10115 Berlin"]
    links = [w for w in text.split() if w.startswith("https://pay.example.org/p/INV-1.")]
    assert links and len(set(links)) == 1  # one signed link, whole wherever it is printed


def test_a_returned_letter_marks_the_address_undeliverable(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    execute_run(store, T0, pm, settings)
    sent = next(a for a in store.attempts_for("A-1") if a.provider_message_id)
    body = json.dumps({"id": sent.provider_message_id, "state": "undeliverable", "detail": "moved"}).encode()
    taken = intake(store, pm, settings, [InboundEvent(InboundKind.DELIVERY_REPORT, "letter", body)], T0)
    assert (taken.bounced, taken.failures) == (1, ())
    (point,) = store.get_patient("P-1").points(Channel.LETTER)
    assert point.undeliverable_at is not None


def test_no_postal_address_holds_the_letter_with_a_reason(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    store.put_patient(make_patient(contact_points=()))
    report = execute_run(store, T0, pm, _settings(tmp_path))
    assert report.sent == 0 and report.batches == ()
    held = [r for d in report.plan.decisions for r in d.reasons if r.rule_id == "patient.consent"]
    assert held and "letter" in str(held[0])  # "no usable channel among letter, ...": held, with the reason


def test_a_letter_channel_that_is_not_installed_stops_the_run_before_anything_is_sent(
    store: SQLiteStore, pm: PluginManager, tmp_path: Path
) -> None:
    plugins = dict.fromkeys(Channel, "outbox")
    plugins[Channel.LETTER] = "print-house"  # no such plugin: the run refuses to start, loudly
    settings = RunSettings(
        channel_plugins=plugins, channel_config={"outbox": {"folder": str(tmp_path / "o")}}
    )
    with pytest.raises(ConfigurationError, match="print-house"):
        execute_run(store, T0, pm, settings)
    assert not (tmp_path / "o").exists()  # nothing was sent
    assert close_batches(pm, settings, T0) == ()  # and closing batches skips what is not installed
