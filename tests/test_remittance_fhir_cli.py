"""FHIR ClaimResponse / ExplanationOfBenefit to the same effect as an 835; `carecollect import` for both."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("fhir.resources")
pytest.importorskip("pyx12")

from carecollect.cli import main
from carecollect.errors import RemittanceRefused
from carecollect.importers.fhir_claims import ADJUDICATION, CARC_SYSTEM, read_fhir_remittance
from carecollect.importers.remittance import claims_in_force, import_remittance
from carecollect.invoices import ClaimStatus
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.store import SQLiteStore

DATA = Path(__file__).parent / "data" / "x12"
AT = dt.datetime(2026, 3, 23, 9, tzinfo=dt.UTC)


def usd(s: str) -> Money:
    return Money(s, "USD")


def _adj(category: str, value: str, carc: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "category": {"coding": [{"system": ADJUDICATION, "code": category}]},
        "amount": {"value": float(value), "currency": "USD"},
    }
    if carc:
        out["reason"] = {"coding": [{"system": CARC_SYSTEM, "code": carc}]}
    return out


def claim_response() -> dict[str, Any]:
    """The FHIR twin of professional.835: two items, CO-45 on the first, deductible, coinsurance, copay."""
    return {
        "resourceType": "ClaimResponse",
        "id": "CR-1001",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": "Patient/P-1"},
        "created": "2026-03-20",
        "insurer": {"display": "Acme Health Plan"},
        "request": {"reference": "Claim/INV-1001"},
        "outcome": "complete",
        "item": [
            {
                "itemSequence": 1,
                "adjudication": [
                    _adj("submitted", "180"),
                    _adj("eligible", "160"),
                    _adj("deductible", "50"),
                    _adj("benefit", "110"),
                ],
            },
            {
                "itemSequence": 2,
                "noteNumber": [1],
                "adjudication": [
                    _adj("submitted", "70"),
                    _adj("coinsurance", "10"),
                    _adj("copay", "20"),
                    _adj("benefit", "40"),
                ],
            },
        ],
        "payment": {
            "type": {"coding": [{"code": "complete"}]},
            "date": "2026-03-22",
            "amount": {"value": 150.0, "currency": "USD"},
            "identifier": {"value": "EFT20260322F"},
        },
        "processNote": [{"number": 1, "text": "N130"}],
    }


def test_a_claim_response_has_the_effect_of_the_835(remit_store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "cr.json"
    path.write_text(json.dumps(claim_response()))
    summary = import_remittance(remit_store, path, at=AT)
    assert summary.insurer_paid == usd("150.00")
    inv = remit_store.get_invoice("INV-1001")
    assert (
        inv.insurance.status,
        inv.insurer_paid,
        inv.contractual_adjustment,
        inv.patient_responsibility,
    ) == (
        ClaimStatus.ADJUDICATED,
        usd("150.00"),
        usd("20.00"),
        usd("80.00"),
    )
    assert remit_store.ledger("A-1").invoice_balance("INV-1001") == usd("80.00")
    assert import_remittance(remit_store, path, at=AT).skipped == 1
    # cancelling the response takes its effect back exactly once
    cancelled = claim_response() | {"status": "cancelled"}
    path.write_text(json.dumps(cancelled))
    import_remittance(remit_store, path, at=AT)
    inv = remit_store.get_invoice("INV-1001")
    assert inv.insurance.status is ClaimStatus.PENDING and claims_in_force(remit_store, "INV-1001") == ()
    assert remit_store.ledger("A-1").invoice_balance("INV-1001") == usd("250.00")
    # the store's own balance (what the run's plan rows read) counts the take-backs too
    row = next(r for r in remit_store.iter_invoice_rows() if r.invoice_id == "INV-1001")
    assert row.balance_minor == 25_000
    taken = [e for e in remit_store.ledger("A-1").entries if e.kind is EntryKind.INSURANCE_REVERSED]
    assert sorted(e.amount for e in taken) == [usd("20.00"), usd("150.00")]


def test_an_explanation_of_benefit_in_a_bundle_denies(remit_store: SQLiteStore) -> None:
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "id": "EOB-1003",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": "Patient/P-1"},
        "created": "2026-03-26",
        "insurer": {"display": "Acme Health Plan"},
        "provider": {"reference": "Organization/C-US"},
        "claim": {"identifier": {"value": "INV-1003"}},
        "outcome": "complete",
        "insurance": [{"focal": True, "coverage": {"reference": "Coverage/COV-1"}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"code": "99213"}]},
                "adjudication": [_adj("submitted", "120"), _adj("noncovered", "120", "204")],
            }
        ],
    }
    (rem,) = read_fhir_remittance(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": eob}]})
    )
    from carecollect.importers.remittance import apply_remittances

    summary = apply_remittances(remit_store, [rem], at=AT)
    assert summary.denied == 1
    inv = remit_store.get_invoice("INV-1003")
    assert (inv.insurance.status, inv.patient_responsibility) == (ClaimStatus.DENIED, usd("120.00"))


@pytest.mark.parametrize(
    ("change", "element"),
    [
        (
            lambda r: r["item"][0]["adjudication"].pop(3),
            "item[0].adjudication",
        ),  # no benefit: does not balance
        (lambda r: r.pop("request"), "request"),
        (lambda r: r["payment"].update(amount={"value": 149.0, "currency": "USD"}), "payment.amount"),
        (lambda r: r["item"][0].update(itemSequence="one"), "item"),  # not valid FHIR R4
    ],
)
def test_faulty_claim_responses_are_refused_naming_the_element(change: Any, element: str) -> None:
    res = copy.deepcopy(claim_response())
    change(res)
    with pytest.raises(RemittanceRefused) as info:
        read_fhir_remittance(json.dumps(res))
    assert info.value.element.startswith(element), str(info.value)


def test_the_cli_imports_an_835_and_a_claim_response(remit_store: SQLiteStore, tmp_path: Path) -> None:
    db = remit_store.path
    remit_store.close()
    out = CliRunner().invoke(
        main, ["import", "--db", str(db), str(DATA / "multiple.835")], catch_exceptions=False
    )
    assert out.exit_code == 0, out.output
    assert "denied" in out.output and "USD 300.00" in out.output
    again = CliRunner().invoke(
        main, ["import", "--db", str(db), str(DATA / "multiple.835")], catch_exceptions=False
    )
    assert "already applied" in again.output
    cr = tmp_path / "answer.json"
    cr.write_text(json.dumps(claim_response()))
    out = CliRunner().invoke(main, ["import", "--db", str(db), str(cr)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    bad = tmp_path / "bad.835"
    bad.write_text((DATA / "professional.835").read_text().replace("SE*26*", "SE*27*"))
    refused = CliRunner().invoke(main, ["import", "--db", str(db), str(bad)])
    assert refused.exit_code == 1
    assert "SE01" in refused.output and "Traceback" not in refused.output
