"""The built-in ``agency-files`` connector: the conformance kit, the files it writes and reads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from carecollect.errors import ConfigurationError, NaiveDatetime, ValidationError
from carecollect.money import Money
from carecollect.plugins.agencies import AgencyAccountStatus, PrePlacementNotice
from carecollect.plugins.builtin.agency_files import AGENCY_FILES, AgencyFilesConnector
from carecollect.plugins.manager import make_plugin_manager
from carecollect.testing import AgencyConnectorContract
from carecollect.testing import factories as f

NOW = f.NOW


def _drop(folder: Path, name: str, items: object) -> None:
    (folder / "incoming" / name).write_text(json.dumps(items), encoding="utf-8")


class TestAgencyFilesContract(AgencyConnectorContract):
    """The kit's agency tests, with a folder per test and the agency played by writing files."""

    @pytest.fixture
    def connector(self, tmp_path: Path) -> AgencyFilesConnector:
        connector = AGENCY_FILES.create({"folder": str(tmp_path)})
        assert isinstance(connector, AgencyFilesConnector)
        return connector

    @pytest.fixture
    def agency_activity(self, tmp_path: Path, now: dt.datetime) -> Callable[[str, Money], None]:
        def report(placement_id: str, amount: Money) -> None:
            at = (now + dt.timedelta(hours=2)).isoformat()
            _drop(
                tmp_path,
                f"{placement_id}-activity.json",
                [
                    {
                        "type": "status",
                        "id": f"U-{placement_id}",
                        "placement_id": placement_id,
                        "status": "in_progress",
                        "at": at,
                    },
                    {
                        "type": "remittance",
                        "id": f"R-{placement_id}",
                        "placement_id": placement_id,
                        "amount": str(amount.amount),
                        "currency": amount.currency,
                        "collected_at": at,
                    },
                ],
            )

        return report


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def agency(folder: Path) -> AgencyFilesConnector:
    return AgencyFilesConnector({"folder": str(folder)})


def test_registered_as_a_builtin_plugin() -> None:
    pm = make_plugin_manager(load_entrypoints=False, environ={})
    assert pm.agency_connector("agency-files") == AGENCY_FILES


def test_needs_a_folder() -> None:
    with pytest.raises(ConfigurationError, match="folder"):
        AGENCY_FILES.create({})


def test_separate_incoming_and_outgoing_folders(tmp_path: Path) -> None:
    agency = AGENCY_FILES.create({"outgoing": str(tmp_path / "to"), "incoming": str(tmp_path / "from")})
    assert agency.place(f.make_placement_request()).accepted
    assert [p.name for p in (tmp_path / "to").iterdir()] == ["placement-PL-1.json"]
    assert (tmp_path / "from").is_dir()


def test_placement_file_holds_only_what_the_agency_needs(agency: AgencyFilesConnector, folder: Path) -> None:
    invoice = f.make_invoice()
    receipt = agency.place(f.make_placement_request())
    assert receipt.accepted and receipt.agency_reference == "agency-files:PL-1"
    text = (folder / "outgoing" / "placement-PL-1.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert set(doc) == {
        "format",
        "type",
        "placement_id",
        "account_id",
        "creditor_id",
        "jurisdiction",
        "total",
        "debtor",
        "invoices",
    }
    assert doc["total"] == {"amount": "120.00", "currency": "EUR"}
    assert doc["debtor"]["name"] == "Test Patient"
    assert doc["debtor"]["postal_address"] == ["Teststr. 1", "10115 Berlin"]
    assert set(doc["invoices"][0]) == {
        "invoice_id",
        "open_balance",
        "issue_date",
        "due_date",
        "first_service_date",
    }
    for line in invoice.lines:  # no billing code, no description
        assert line.description not in text
        assert f'"{line.code}"' not in text


def test_placing_twice_changes_nothing(agency: AgencyFilesConnector, folder: Path) -> None:
    request = f.make_placement_request()
    first = agency.place(request)
    path = folder / "outgoing" / "placement-PL-1.json"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert agency.place(request) == first
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in (folder / "outgoing").iterdir()) == ["placement-PL-1.json"]


def test_same_placement_id_with_other_data_is_refused(agency: AgencyFilesConnector, folder: Path) -> None:
    agency.place(f.make_placement_request())
    before = (folder / "outgoing" / "placement-PL-1.json").read_bytes()
    other = agency.place(f.make_placement_request(account_id="A-2"))
    assert not other.accepted and "PL-1" in other.detail
    assert (folder / "outgoing" / "placement-PL-1.json").read_bytes() == before


def test_notice_and_recall_files(agency: AgencyFilesConnector, folder: Path) -> None:
    request = f.make_placement_request()
    notice = PrePlacementNotice("N-1", request, dt.date(2026, 4, 1), NOW)
    assert agency.send_pre_placement_notice(notice).accepted
    doc = json.loads((folder / "outgoing" / "notice-N-1.json").read_text(encoding="utf-8"))
    assert doc["placement_not_before"] == "2026-04-01"
    assert doc["placement"]["placement_id"] == "PL-1"
    assert not agency.recall("PL-1", reason="dispute", at=NOW).accepted  # not placed yet
    agency.place(request)
    first = agency.recall("PL-1", reason="dispute", at=NOW)
    again = agency.recall("PL-1", reason="paid", at=NOW + dt.timedelta(days=1))
    assert first.accepted and again == first
    recall = json.loads((folder / "outgoing" / "recall-PL-1.json").read_text(encoding="utf-8"))
    assert recall == {
        "format": 1,
        "type": "recall",
        "placement_id": "PL-1",
        "reason": "dispute",
        "at": NOW.isoformat(),
    }


def test_awkward_ids_make_safe_distinct_file_names(agency: AgencyFilesConnector, folder: Path) -> None:
    agency.place(f.make_placement_request(placement_id="../PL/1"))
    agency.place(f.make_placement_request(placement_id="_.PL_1"))
    names = sorted(p.name for p in (folder / "outgoing").iterdir())
    assert len(names) == 2 and all("/" not in n and not n.startswith(".") for n in names)


def test_reads_objects_and_arrays_in_file_order_once(agency: AgencyFilesConnector, folder: Path) -> None:
    _drop(
        folder,
        "1.json",
        {
            "type": "status",
            "id": "U-1",
            "placement_id": "PL-1",
            "status": "acknowledged",
            "at": "2026-03-03T08:00:00+00:00",
        },
    )
    _drop(
        folder,
        "2.json",
        [
            {
                "type": "status",
                "id": "U-1",
                "placement_id": "PL-1",
                "status": "acknowledged",
                "at": "2026-03-03T08:00:00+00:00",
            },
            {
                "type": "status",
                "id": "U-2",
                "placement_id": "PL-1",
                "status": "payment_plan",
                "at": "2026-03-10T08:00:00+01:00",
            },
            {
                "type": "remittance",
                "id": "R-1",
                "placement_id": "PL-1",
                "amount": "40.00",
                "currency": "EUR",
                "fee": "6.00",
                "collected_at": "2026-03-12T12:00:00+00:00",
            },
        ],
    )
    updates = agency.read_status_updates(NOW)
    assert [(u.id, u.status) for u in updates] == [
        ("U-1", AgencyAccountStatus.ACKNOWLEDGED),
        ("U-2", AgencyAccountStatus.PAYMENT_PLAN),
    ]
    assert [u.id for u in agency.read_status_updates(dt.datetime(2026, 3, 5, tzinfo=dt.UTC))] == ["U-2"]
    (rem,) = agency.read_remittances(NOW)
    assert rem.placement_id == "PL-1"
    assert rem.remittance.amount == Money("40.00", "EUR") and rem.remittance.fee == Money("6.00", "EUR")
    assert agency.read_remittances(dt.datetime(2026, 3, 12, 12, tzinfo=dt.UTC)) == []


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("not json", "file"),
        ('[{"type": "payment"}]', "type"),
        (
            '{"type": "remittance", "id": "R-1", "placement_id": "PL-1", "amount": "1.005",'
            ' "currency": "EUR", "collected_at": "2026-03-03T08:00:00+00:00"}',
            "amount",
        ),
        (
            '{"type": "remittance", "id": "R-1", "placement_id": "PL-1", "amount": "1.00",'
            ' "currency": "EUR", "collected_at": "2026-03-03T08:00:00"}',
            "collected_at",
        ),
        (
            '{"type": "status", "id": "U-1", "placement_id": "PL-1", "status": "lost",'
            ' "at": "2026-03-03T08:00:00+00:00"}',
            "status",
        ),
    ],
)
def test_a_bad_incoming_file_is_an_error_naming_file_and_field(
    agency: AgencyFilesConnector, folder: Path, content: str, field: str
) -> None:
    (folder / "incoming" / "bad.json").write_text(content, encoding="utf-8")
    read = agency.read_status_updates if field == "status" else agency.read_remittances
    with pytest.raises(ValidationError) as info:
        read(NOW)
    assert info.value.field == field and "bad.json" in info.value.record


def test_since_must_be_aware(agency: AgencyFilesConnector) -> None:
    with pytest.raises(NaiveDatetime):
        agency.read_remittances(dt.datetime(2026, 3, 1))


def test_repr_and_receipts_carry_no_personal_data(agency: AgencyFilesConnector) -> None:
    request = f.make_placement_request()
    text = repr(agency) + repr(agency.place(request)) + str(agency.place(request).raw)
    for value in (request.debtor.name, *request.debtor.postal_address):
        assert value not in text
