"""The built-in plugins, an in-memory agency and the tutorial's demo gateway pass the conformance kit."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import smtplib
import sys
import urllib.request
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from pathlib import Path

import pytest

from carecollect.channels import Channel
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.placements import Remittance
from carecollect.plugins.agencies import (
    AgencyAccountStatus,
    AgencyConnectorCapabilities,
    AgencyConnectorDescriptor,
    AgencyReceipt,
    AgencyRemittance,
    AgencyStatusUpdate,
    PlacementRequest,
    PrePlacementNotice,
)
from carecollect.plugins.builtin.manual import MANUAL
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.messaging import OutgoingMessage
from carecollect.plugins.providers import Instrument
from carecollect.testing import AgencyConnectorContract, MessageChannelContract, PaymentProviderContract
from carecollect.testing.fixtures import (  # noqa: F401
    FrozenClock,
    LocalHTTPServer,
    LoopbackSMTPServer,
    factories,
    frozen_clock,
    http_server,
    smtp_server,
)

ROOT = Path(__file__).resolve().parent.parent


class TestManualProvider(PaymentProviderContract):
    @pytest.fixture
    def provider(self):  # type: ignore[no-untyped-def]
        return MANUAL.create()

    @pytest.fixture
    def declining_instrument(self) -> Instrument | None:
        return None  # staff record money that arrived: nothing to decline

    def test_card_is_not_recorded_by_hand(self, provider) -> None:  # type: ignore[no-untyped-def]
        result = provider.purchase(
            Money("5.00", "EUR"), Instrument(PaymentMethod.CARD, "tok"), idempotency_key="k", account_id="A-1"
        )
        assert result.error_code.value == "method_not_supported"


class TestOutboxChannel(MessageChannelContract):
    @pytest.fixture
    def channel(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        return OUTBOX.create({"folder": str(tmp_path / "outbox")})

    @pytest.fixture
    def read_back(self, tmp_path: Path) -> Callable[[str], bytes | None]:
        def read(name: str) -> bytes | None:
            path = tmp_path / "outbox" / name
            return path.read_bytes() if path.exists() else None

        return read

    @pytest.fixture
    def delivery_report_payload(self) -> Callable[[str], tuple[dict[str, str], bytes]]:
        return lambda mid: ({}, json.dumps({"id": mid, "state": "delivered"}).encode())

    @pytest.fixture
    def inbound_payload(self) -> Callable[[str], tuple[dict[str, str], bytes]]:
        return lambda text: ({}, json.dumps({"id": "in-1", "from": "+4790000000", "text": text}).encode())

    def test_sms_is_written_as_text_and_unsafe_ids_stay_in_the_folder(self, channel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        msg = OutgoingMessage(id="../MSG/2", channel=Channel.SMS, recipient="+4790000000", body="Hei")
        receipt = channel.send(msg)
        assert receipt.provider_message_id.endswith(".txt") and "/" not in receipt.provider_message_id
        assert (tmp_path / "outbox" / receipt.provider_message_id).read_text().endswith("Hei\n")

    def test_needs_a_folder(self) -> None:
        from carecollect.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="folder"):
            OUTBOX.create({})


class MemoryAgency:
    """An agency kept in memory, as a connector plugin's test double would be."""

    capabilities = AgencyConnectorCapabilities(
        countries={"DE"}, currencies={"EUR"}, pre_placement_notice=True
    )

    def __init__(self, settings: object = None) -> None:
        self.placed: dict[str, PlacementRequest] = {}
        self.notices: set[str] = set()
        self.updates: list[AgencyStatusUpdate] = []
        self.remittances: list[AgencyRemittance] = []

    def send_pre_placement_notice(self, notice: PrePlacementNotice) -> AgencyReceipt:
        self.notices.add(notice.id)
        return AgencyReceipt(True, f"notice-{notice.id}")

    def place(self, request: PlacementRequest) -> AgencyReceipt:
        self.placed.setdefault(request.placement_id, request)
        return AgencyReceipt(True, f"case-{request.placement_id}")

    def recall(self, placement_id: str, *, reason: str, at: dt.datetime) -> AgencyReceipt:
        if placement_id not in self.placed:
            return AgencyReceipt(False, detail="unknown placement")
        return AgencyReceipt(True, f"case-{placement_id}")

    def read_status_updates(self, since: dt.datetime) -> Sequence[AgencyStatusUpdate]:
        return [u for u in self.updates if u.at > since]

    def read_remittances(self, since: dt.datetime) -> Sequence[AgencyRemittance]:
        return [r for r in self.remittances if r.remittance.collected_at > since]


MEMORY_AGENCY = AgencyConnectorDescriptor("memory-agency", MemoryAgency.capabilities, MemoryAgency)  # type: ignore[arg-type]


class TestMemoryAgency(AgencyConnectorContract):
    @pytest.fixture
    def connector(self) -> MemoryAgency:
        return MemoryAgency()

    @pytest.fixture
    def agency_activity(self, connector: MemoryAgency, now: dt.datetime) -> Callable[[str, Money], None]:
        def act(placement_id: str, amount: Money) -> None:
            connector.updates.append(
                AgencyStatusUpdate("U-1", placement_id, AgencyAccountStatus.PAYMENT_PLAN, now)
            )
            connector.remittances.append(AgencyRemittance(placement_id, Remittance("R-1", amount, now)))

        return act


def _load_demo_gateway_tests() -> type:
    sys.path.insert(0, str(ROOT / "plugins" / "carecollect-demo-gateway" / "src"))
    path = ROOT / "plugins" / "carecollect-demo-gateway" / "tests" / "test_demo_gateway.py"
    spec = importlib.util.spec_from_file_location("carecollect_demo_gateway_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type = module.TestDemoGateway
    return cls


#: The tutorial's plugin, with its own tests, runs in this suite.
TestDemoGateway = _load_demo_gateway_tests()


def test_frozen_clock(frozen_clock: FrozenClock) -> None:  # noqa: F811
    start = frozen_clock.now()
    assert (
        frozen_clock.advance(dt.timedelta(days=14)) - start == dt.timedelta(days=14)
        and start.tzinfo is not None
    )


def test_factories_fixture(factories) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert factories.make_account().currency == "EUR"


def test_smtp_server_receives_on_loopback(smtp_server: LoopbackSMTPServer) -> None:  # noqa: F811
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "billing@example.org", "patient@example.org", "Statement"
    mail.set_content("Your statement is ready.")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        client.send_message(mail)
    [(sender, rcpts, content)] = smtp_server.messages
    assert (
        sender == "billing@example.org"
        and rcpts == ["patient@example.org"]
        and b"statement is ready" in content
    )


def test_http_server_answers_and_records(http_server: LocalHTTPServer) -> None:  # noqa: F811
    http_server.respond("POST", "/v1/charges", 201, b'{"id": "ch_1"}')
    request = urllib.request.Request(http_server.url + "/v1/charges", data=b'{"amount": 100}', method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 201 and json.loads(answer.read()) == {"id": "ch_1"}
    assert http_server.requests[0].body == b'{"amount": 100}'
