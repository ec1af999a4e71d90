"""X12 835 remittances: real files read through pyx12, applied to a store, idempotent, reversible, refused whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

pytest.importorskip("pyx12")

from carecollect.errors import RemittanceRefused
from carecollect.importers.remittance import (
    claim_history,
    claims_in_force,
    import_remittance,
    looks_like_remittance,
)
from carecollect.importers.x12 import read_835, write_835
from carecollect.invoices import ClaimStatus
from carecollect.ledger import EntryKind
from carecollect.money import Money
from carecollect.remittance import AdjustmentGroup, ClaimOutcome
from carecollect.store import SQLiteStore

DATA = Path(__file__).parent / "data" / "x12"
AT = dt.datetime(2026, 3, 23, 9, tzinfo=dt.UTC)


def usd(s: str) -> Money:
    return Money(s, "USD")


def test_professional_claim_with_deductible_coinsurance_copay_and_co45(remit_store: SQLiteStore) -> None:
    path = DATA / "professional.835"
    assert looks_like_remittance(path)
    summary = import_remittance(remit_store, path, at=AT)
    assert (summary.applied, summary.claims, summary.insurer_paid) == (1, 1, usd("150.00"))
    inv = remit_store.get_invoice("INV-1001")
    assert inv.insurance.status is ClaimStatus.ADJUDICATED
    assert (inv.insurer_paid, inv.contractual_adjustment, inv.patient_responsibility) == (
        usd("150.00"),
        usd("20.00"),
        usd("80.00"),
    )
    assert not inv.waiting_for_insurer
    # the ledger agrees: what is open is the patient's share
    assert remit_store.ledger("A-1").invoice_balance("INV-1001") == usd("80.00")
    (claim,) = claims_in_force(remit_store, "INV-1001")
    shares = {(a.group, a.reason): a.amount for ln in claim.lines for a in ln.adjustments}
    assert shares == {
        (AdjustmentGroup.CO, "45"): usd("20.00"),
        (AdjustmentGroup.PR, "1"): usd("50.00"),
        (AdjustmentGroup.PR, "2"): usd("10.00"),
        (AdjustmentGroup.PR, "3"): usd("20.00"),
    }


def test_reimporting_the_same_file_changes_nothing(remit_store: SQLiteStore) -> None:
    import_remittance(remit_store, DATA / "professional.835", at=AT)
    entries = remit_store.ledger("A-1").entries
    again = import_remittance(remit_store, DATA / "professional.835", at=AT + dt.timedelta(days=1))
    assert (again.applied, again.skipped, again.ledger_entries) == (0, 1, 0)
    assert remit_store.ledger("A-1").entries == entries
    assert len(claim_history(remit_store, "INV-1001")) == 1


def test_writer_output_is_valid_and_reads_back(remit_store: SQLiteStore) -> None:
    (rem,) = read_835((DATA / "professional.835").read_text())
    text = write_835(rem, sender_id="ACMEHEALTH", receiver_id="CARECLINIC", control_number=7, created_at=AT)
    (back,) = read_835(text)
    assert back.claims[0].lines == rem.claims[0].lines
    assert (back.total_paid, back.trace, back.claims[0].outcome) == (
        rem.total_paid,
        rem.trace,
        ClaimOutcome.PRIMARY,
    )


@pytest.mark.parametrize(
    ("old", "new", "segment", "element"),
    [
        ("SE*26*0001", "SE*25*0001", "SE", "SE01"),
        ("IEA*1*000000101", "IEA*1*000000102", "IEA", "IEA02"),
        ("GE*1*101", "GE*2*101", "GE", "GE01"),
        ("CAS*CO*45*20", "CAS*ZZ*45*20", "CAS", "CAS"),
        ("CLP*INV-1001*1*250*150*80", "CLP*INV-1001*1*250*140*80", "CLP", "CLP04"),
        ("CLP*INV-1001*1*250*150*80", "CLP*INV-1001*1*250*150*70", "CLP", "CLP05"),
        ("BPR*I*150*C", "BPR*I*155*C", "BPR", "BPR02"),
        ("SVC*HC:85025*70*40", "SVC*HC:85025*70*45", "SVC", "SVC03"),
        ("CLP*INV-1001*1*", "CLP*INV-1001*23*", "CLP", "CLP02"),
        ("SE*26*0001", "SE*26*0002", "SE", "SE02"),
        ("IEA*1*000000101~\n", "", "IEA", "IEA"),
        ("005010X221A1", "005010X222A1", "GS", "GS08"),
        ("*ZZ*ACMEHEALTH     *", "*ZZ*ACMEHEALTH*", "ISA", "ISA16"),
        ("DTM*472*20260302", "DTM*472*20261302", "DTM", "DTM02"),
        ("CLP*INV-1001*1*250*", "CLP*INV-1001*1*25O*", "CLP", "CLP03"),
    ],
)
def test_malformed_files_are_refused_whole_naming_the_segment(
    remit_store: SQLiteStore, tmp_path: Path, old: str, new: str, segment: str, element: str
) -> None:
    text = (DATA / "professional.835").read_text()
    assert old in text
    bad = tmp_path / "bad.835"
    bad.write_text(text.replace(old, new, 1))
    before = remit_store.ledger("A-1").entries
    with pytest.raises(RemittanceRefused) as info:
        import_remittance(remit_store, bad, at=AT)
    assert (info.value.segment, info.value.element) == (segment, element), str(info.value)
    assert remit_store.ledger("A-1").entries == before
    assert remit_store.get_invoice("INV-1001").insurance.status is ClaimStatus.PENDING
    assert claim_history(remit_store, "INV-1001") == ()


def test_institutional_claim_level_adjustments_and_remarks(remit_store: SQLiteStore) -> None:
    import_remittance(remit_store, DATA / "institutional.835", at=AT)
    inv = remit_store.get_invoice("INV-2001")
    assert (
        inv.insurance.status,
        inv.insurer_paid,
        inv.contractual_adjustment,
        inv.patient_responsibility,
    ) == (
        ClaimStatus.ADJUDICATED,
        usd("1400.00"),
        usd("420.00"),
        usd("300.00"),
    )
    (claim,) = claims_in_force(remit_store, "INV-2001")
    assert claim.remarks == ("MA130",)
    assert remit_store.ledger("A-1").invoice_balance("INV-2001") == usd("300.00")


def test_several_claims_on_one_check_with_a_denial_and_interest(remit_store: SQLiteStore) -> None:
    summary = import_remittance(remit_store, DATA / "multiple.835", at=AT)
    (rem,) = read_835((DATA / "multiple.835").read_text())
    # the bank deposit is the claims' payments plus the interest (PLB L6, negative: paid to the provider)
    assert rem.total_paid == usd("302.50") and rem.provider_adjustments == usd("-2.50")
    assert summary.insurer_paid == usd("300.00") == rem.total_paid + rem.provider_adjustments
    assert (summary.claims, summary.denied) == (2, 1)
    paid, denied = remit_store.get_invoice("INV-1002"), remit_store.get_invoice("INV-1003")
    assert (paid.insurance.status, paid.patient_responsibility) == (ClaimStatus.ADJUDICATED, usd("40.00"))
    # a denial ends the wait: the patient's share is what the insurer put on the patient (PR 204), nothing else
    assert denied.insurance.status is ClaimStatus.DENIED and not denied.waiting_for_insurer
    assert (denied.insurer_paid, denied.patient_responsibility) == (usd("0.00"), usd("120.00"))
    assert claims_in_force(remit_store, "INV-1003")[0].remarks == ("N130",)


def test_a_correction_pair_undoes_and_redoes_exactly_once(remit_store: SQLiteStore) -> None:
    import_remittance(remit_store, DATA / "professional.835", at=AT)
    import_remittance(remit_store, DATA / "correction.835", at=AT + dt.timedelta(days=18))
    inv = remit_store.get_invoice("INV-1001")
    assert (inv.insurer_paid, inv.contractual_adjustment, inv.patient_responsibility) == (
        usd("170.00"),
        usd("20.00"),
        usd("60.00"),
    )
    book = remit_store.ledger("A-1")
    assert book.invoice_balance("INV-1001") == usd("60.00")
    taken_back = [e for e in book.entries if e.kind is EntryKind.INSURANCE_REVERSED]
    assert taken_back == []  # the net move was a further payment of 20.00, no take-back needed
    assert [c.payer_claim_id for c in claims_in_force(remit_store, "INV-1001")] == ["ACME0001B"]
    # the reversal again (the same file) changes nothing
    entries = book.entries
    assert import_remittance(remit_store, DATA / "correction.835", at=AT + dt.timedelta(days=19)).skipped == 1
    assert remit_store.ledger("A-1").entries == entries


def test_a_reversal_without_its_claim_is_refused(remit_store: SQLiteStore) -> None:
    with pytest.raises(RemittanceRefused) as info:
        import_remittance(remit_store, DATA / "correction.835", at=AT)
    assert (info.value.segment, info.value.element) == ("CLP", "CLP07")
    assert remit_store.get_invoice("INV-1001").insurance.status is ClaimStatus.PENDING


def test_a_claim_for_an_unknown_invoice_refuses_the_whole_file(
    remit_store: SQLiteStore, tmp_path: Path
) -> None:
    text = (DATA / "multiple.835").read_text().replace("CLP*INV-1003*", "CLP*INV-9999*")
    bad = tmp_path / "unknown.835"
    bad.write_text(text)
    with pytest.raises(RemittanceRefused) as info:
        import_remittance(remit_store, bad, at=AT)
    assert (info.value.segment, info.value.element) == ("CLP", "CLP01")
    # the first claim of the file was not written either
    assert remit_store.get_invoice("INV-1002").insurance.status is ClaimStatus.PENDING
    assert remit_store.ledger("A-1").invoice_balance("INV-1002") == usd("400.00")


def test_a_fault_in_the_patients_name_does_not_echo_it(remit_store: SQLiteStore, tmp_path: Path) -> None:
    text = (DATA / "professional.835").read_text()
    bad = tmp_path / "name.835"
    bad.write_text(text.replace("NM1*QC*1*DOE*JANE****MI*W123456789", "NM1*QC*9*DOE*JANE****MI*W123456789"))
    with pytest.raises(RemittanceRefused) as info:
        import_remittance(remit_store, bad, at=AT)
    assert info.value.segment == "NM1"
    assert (
        "DOE" not in str(info.value) and "JANE" not in str(info.value) and "W123456789" not in str(info.value)
    )


def test_the_insurer_wait_ends_with_the_answer(remit_store: SQLiteStore) -> None:
    from carecollect.policy import get_pack
    from carecollect.policy.insurer import billable_to_patient

    today, pack = dt.date(2026, 3, 24), get_pack("us")
    before = billable_to_patient(remit_store.get_invoice("INV-1003"), today=today, pack=pack)
    assert before.waiting and before.amount == usd("0.00")
    import_remittance(remit_store, DATA / "multiple.835", at=AT)
    paid = billable_to_patient(remit_store.get_invoice("INV-1002"), today=today, pack=pack)
    denied = billable_to_patient(remit_store.get_invoice("INV-1003"), today=today, pack=pack)
    assert (paid.waiting, paid.amount) == (False, usd("40.00"))
    assert (denied.waiting, denied.amount) == (False, usd("120.00"))
