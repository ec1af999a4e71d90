"""The daily run's first statement after an 835 explains each line with the insurer's reasons."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

pytest.importorskip("pyx12")

from carecollect.importers.remittance import import_remittance
from carecollect.messages.remittance_codes import carc_text, rarc_text
from carecollect.plugins.manager import make_plugin_manager
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store import SQLiteStore

DATA = Path(__file__).parent / "data" / "x12"


def test_the_runs_statement_gives_the_insurers_reasons(remit_store: SQLiteStore, tmp_path: Path) -> None:
    import_remittance(remit_store, DATA / "professional.835", at=dt.datetime(2026, 3, 23, 9, tzinfo=dt.UTC))
    import_remittance(remit_store, DATA / "multiple.835", at=dt.datetime(2026, 3, 23, 9, tzinfo=dt.UTC))
    out = tmp_path / "out"
    settings = RunSettings(channel_config={"outbox": {"folder": str(out)}})
    execute_run(
        remit_store,
        dt.datetime(2026, 3, 24, 16, tzinfo=dt.UTC),
        make_plugin_manager(load_entrypoints=False),
        settings,
    )
    texts = {}
    for p in out.rglob("*.eml"):
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        texts[p.name] = " ".join(f"{msg['Subject']} {body.get_content()}".split())
    statements = [t for t in texts.values() if "INV-1001" in t and "statement" in t.lower()]
    assert statements, sorted(texts)
    body = statements[0]
    assert carc_text("45", "en") in body and rarc_text("N130", "en") in body
    denied = [t for t in texts.values() if "INV-1003" in t and "statement" in t.lower()]
    assert denied and carc_text("204", "en") in denied[0] and "financial assistance" in denied[0]
