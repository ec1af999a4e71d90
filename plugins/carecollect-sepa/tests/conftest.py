"""Shared fixtures: a creditor's settings, a movable clock, a real outbox channel, two signed mandates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from carecollect.channels import Channel
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.messaging import MessageChannel

from carecollect_sepa import SepaDirectDebit, SepaMandate

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
FIXTURES = Path(__file__).parent / "fixtures"
INTAKE_SECRET = "sepa-intake-secret-0123456789"
DEBTOR_IBAN = "DE89370400440532013000"
OTHER_IBAN = "DE75512108001245126199"


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("SEPA_INTAKE_SECRET", INTAKE_SECRET)
    return {
        "creditor_name": "Praxis Dr. Weber",
        "creditor_id": "DE98ZZZ09999999999",
        "creditor_iban": "DE02120300000000202051",
        "folder": str(tmp_path / "sepa"),
        "intake_secret": "env:SEPA_INTAKE_SECRET",
        "contact": "+49 30 1234567",
    }


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def channel(outbox: Path) -> MessageChannel:
    return OUTBOX.create({"folder": str(outbox)})


def mandate(reference: str = "CC-A-1-01", account_id: str = "A-1", **kw: Any) -> SepaMandate:
    values: dict[str, Any] = {
        "reference": reference,
        "account_id": account_id,
        "creditor_id": "DE98ZZZ09999999999",
        "iban": DEBTOR_IBAN,
        "debtor_name": "Erika Mustermann",
        "signed_on": dt.date(2026, 1, 5),
        "notice_channel": Channel.EMAIL,
        "notice_address": "erika@example.de",
    }
    values.update(kw)
    return SepaMandate.sign(**values)


@pytest.fixture
def sepa(settings: dict[str, Any], clock: Clock, channel: MessageChannel) -> SepaDirectDebit:
    provider = SepaDirectDebit(settings, clock=clock, channel=channel)
    provider.add_mandate(mandate())
    provider.add_mandate(
        mandate(
            "CC-A-2-01",
            "A-2",
            iban=OTHER_IBAN,
            debtor_name="Max Mustermann",
            signed_on=dt.date(2026, 2, 10),
            language="en",
            notice_address="max@example.de",
        )
    )
    return provider
