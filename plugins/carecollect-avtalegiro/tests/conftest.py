"""Shared fixtures: a payee's settings (the secret from the environment) and an outbox folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SECRET = "avtalegiro-intake-secret-987654321"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AG_SECRET", SECRET)
    return {
        "creditor_name": "Legesenteret",
        "data_transmitter": "12345678",
        "agreement_id": "000012345",
        "account": "86011117947",
        "folder": str(tmp_path / "ag"),
        "intake_secret": "env:AG_SECRET",
        "contact": "22 00 00 00",
    }


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"
