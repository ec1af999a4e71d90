"""`carecollect demo` ends with a command and a pay link that opens a demo patient's page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from carecollect.cli import main
from carecollect.cli.web import _key
from carecollect.plugins.manager import make_plugin_manager
from carecollect.run.settings_file import load_config
from carecollect.store.sqlite import SQLiteStore
from carecollect.web import create_app


def test_the_demo_prints_a_pay_link_that_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--size", "40", "--weeks", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    command = re.search(r"carecollect web serve --db (\S+) --key-file (\S+) --demo-checkout", result.output)
    url = re.search(r"then open (http://127\.0\.0\.1:8000/p/(\S+))", result.output)
    assert command and url, result.output
    db, key_file = tmp_path / command.group(1), tmp_path / command.group(2)
    assert key_file.stat().st_mode & 0o077 == 0  # the key is readable by its owner only
    config = load_config(db)
    assert "demo-gateway" in config.settings.payment_providers
    settings = attrs.evolve(
        config.settings, pay_link_key=_key(key_file), pay_link_base="http://127.0.0.1:8000/p"
    )
    app: Any = create_app(settings, lambda: SQLiteStore(db), make_plugin_manager())
    try:
        with TestClient(app, base_url="https://127.0.0.1:8000") as client:
            page = client.get(f"/p/{url.group(2)}")
        assert page.status_code == 200
        assert 'class="amount"' in page.text and "table" in page.text
    finally:
        app.state.carecollect_close()
