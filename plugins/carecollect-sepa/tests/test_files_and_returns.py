"""Debits scheduled and announced, pain.008 files validated against the ISO XSD, returns read back once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import Instrument, PaymentErrorCode, WebhookKind
from carecollect.policy.packs import get_pack
from carecollect.policy.rules import Rule, Strictness
from conftest import DEBTOR_IBAN, FIXTURES, OTHER_IBAN, Clock
from lxml import etree

from carecollect_sepa import (
    CollectionStatus,
    SepaDirectDebit,
    SepaFileInvalid,
    SequenceType,
    validate_pain008,
)
from carecollect_sepa.pain008 import schema_path

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}
EUR = "EUR"


def _charge(sepa: SepaDirectDebit, token: str, account: str, amount: str, key: str) -> str:
    result = sepa.purchase(
        Money(amount, EUR),
        Instrument(PaymentMethod.DIRECT_DEBIT, token),
        idempotency_key=key,
        account_id=account,
    )
    assert result.success, result
    assert result.reference is not None
    return result.reference


def _two_debits_in_a_file(sepa: SepaDirectDebit) -> Path:
    assert _charge(sepa, "CC-A-1-01", "A-1", "100.00", "k1") == "CC2603020000001"
    assert _charge(sepa, "CC-A-2-01", "A-2", "60.00", "k2") == "CC2603020000002"
    written = sepa.write_collection_file()
    assert written is not None and written.message_id == "CC-20260302090000-00003"
    return written.path


def test_a_debit_is_announced_14_days_ahead_in_the_patients_language(
    sepa: SepaDirectDebit, outbox: Path
) -> None:
    e2e = _charge(sepa, "CC-A-1-01", "A-1", "100.00", "k1")
    debit = sepa.collection(e2e)
    assert debit.due_on == dt.date(2026, 3, 16) and debit.sequence is SequenceType.FIRST
    notice = (outbox / f"SEPA-PN-{e2e}.eml").read_text(encoding="utf-8")
    assert "Ank=C3=BCndigung" in notice or "Ankündigung" in notice
    body = _eml_body(outbox / f"SEPA-PN-{e2e}.eml")
    for part in ("100,00\xa0€", "16. März 2026", "CC-A-1-01", "DE98ZZZ09999999999"):
        assert part in body
    assert DEBTOR_IBAN not in notice and "Erika" not in notice
    english = _eml_body(outbox / f"SEPA-PN-{_charge(sepa, 'CC-A-2-01', 'A-2', '60.00', 'k2')}.eml")
    assert "€60.00" in english and "16 March 2026" in english


def test_a_shorter_notice_only_when_agreed(sepa: SepaDirectDebit) -> None:
    from conftest import mandate

    sepa.add_mandate(mandate("CC-A-3-01", "A-3", pre_notification_days=2))
    e2e = _charge(sepa, "CC-A-3-01", "A-3", "10.00", "k3")
    assert sepa.collection(e2e).due_on == dt.date(2026, 3, 4)


def _eml_body(path: Path) -> str:
    import email

    message = email.message_from_bytes(path.read_bytes())
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def test_the_collection_file_validates_against_the_iso_xsd_with_batch_booking(sepa: SepaDirectDebit) -> None:
    path = _two_debits_in_a_file(sepa)
    data = path.read_bytes()
    assert validate_pain008(data) == "pain.008.001.08"
    # and independently of the plugin's own check, with the schema file itself
    schema = etree.XMLSchema(etree.parse(str(schema_path("pain.008.001.08"))))
    root = etree.fromstring(data)
    assert schema.validate(root), schema.error_log
    assert root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", namespaces=NS) == "CC-20260302090000-00003"
    assert root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "160.00"
    assert root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CreDtTm", namespaces=NS) == "2026-03-02T09:00:00Z"
    (info,) = root.findall("p:CstmrDrctDbtInitn/p:PmtInf", namespaces=NS)
    assert info.findtext("p:BtchBookg", namespaces=NS) == "true"
    assert info.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS) == "FRST"
    assert info.findtext("p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=NS) == "CORE"
    assert info.findtext("p:ReqdColltnDt", namespaces=NS) == "2026-03-16"
    assert info.findtext("p:PmtInfId", namespaces=NS) == "CC-20260302090000-00003-1"
    assert sorted(e.text for e in info.iterfind(".//p:EndToEndId", namespaces=NS)) == [
        "CC2603020000001",
        "CC2603020000002",
    ]
    assert sepa.collection("CC2603020000001").status is CollectionStatus.SUBMITTED
    assert sepa.write_collection_file() is None  # nothing left to send
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_an_invalid_document_is_refused_by_the_schema(sepa: SepaDirectDebit) -> None:
    data = _two_debits_in_a_file(sepa).read_bytes()
    broken = data.replace(b"<MndtId>CC-A-1-01</MndtId>", b"<MndtId></MndtId><Foo/>", 1)
    with pytest.raises(SepaFileInvalid) as err:
        validate_pain008(broken)
    assert DEBTOR_IBAN not in str(err.value)


def test_the_2009_version_validates_too(settings: dict[str, Any], clock: Clock, channel: Any) -> None:
    from conftest import mandate

    sepa = SepaDirectDebit({**settings, "pain_version": "pain.008.001.02"}, clock=clock, channel=channel)
    sepa.add_mandate(mandate())
    _charge(sepa, "CC-A-1-01", "A-1", "12.34", "k1")
    written = sepa.write_collection_file()
    assert written is not None and validate_pain008(written.path.read_bytes()) == "pain.008.001.02"


def test_recurring_and_amended_debits_go_in_their_own_batches(sepa: SepaDirectDebit, clock: Clock) -> None:
    _two_debits_in_a_file(sepa)
    clock.now += dt.timedelta(days=3)
    sepa.amend_mandate("CC-A-2-01", iban=DEBTOR_IBAN, reference="CC-A-2-02")  # moved to another bank
    _charge(sepa, "CC-A-1-01", "A-1", "100.00", "k3")
    _charge(sepa, "CC-A-2-02", "A-2", "60.00", "k4")
    written = sepa.write_collection_file()
    assert written is not None
    root = etree.fromstring(written.path.read_bytes())
    batches = {
        i.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS): i
        for i in root.iterfind(".//p:PmtInf", namespaces=NS)
    }
    assert set(batches) == {"RCUR", "FRST"}
    amended = batches["FRST"].find(".//p:MndtRltdInf", namespaces=NS)
    assert amended is not None
    assert amended.findtext("p:MndtId", namespaces=NS) == "CC-A-2-02"
    assert amended.findtext("p:AmdmntInd", namespaces=NS) == "true"
    assert amended.findtext("p:AmdmntInfDtls/p:OrgnlMndtId", namespaces=NS) == "CC-A-2-01"
    assert (
        amended.findtext("p:AmdmntInfDtls/p:OrgnlDbtrAgt/p:FinInstnId/p:Othr/p:Id", namespaces=NS) == "SMNDA"
    )
    assert batches["RCUR"].find(".//p:AmdmntInd", namespaces=NS) is None
    assert sepa.mandate("CC-A-2-02").amendment is None  # sent once
    # the plan's stored mandate still names the old reference: it keeps working
    clock.now += dt.timedelta(days=30)
    again = _charge(sepa, "CC-A-2-01", "A-2", "60.00", "k5")
    assert sepa.collection(again).mandate_reference == "CC-A-2-02"
    assert sepa.collection(again).sequence is SequenceType.RECURRING


def test_a_missed_cut_off_redates_and_announces_again(
    sepa: SepaDirectDebit, clock: Clock, outbox: Path
) -> None:
    e2e = _charge(sepa, "CC-A-1-01", "A-1", "100.00", "k1")
    clock.now = dt.datetime(2026, 3, 13, 15, 0, tzinfo=dt.UTC)  # after Friday's cut-off for Monday the 16th
    written = sepa.write_collection_file()
    assert written is not None and written.redated == (e2e,) and written.collections == (e2e,)
    debit = sepa.collection(e2e)
    assert debit.due_on == dt.date(2026, 3, 27) and debit.notice_round == 2
    assert (outbox / f"SEPA-PN-{e2e}-2.eml").exists()


def test_a_file_recorded_but_not_written_is_written_again_identical(
    sepa: SepaDirectDebit,
    settings: dict[str, Any],
    clock: Clock,
    channel: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import carecollect_sepa.provider as provider_module

    assert _charge(sepa, "CC-A-1-01", "A-1", "100.00", "k1")

    def crash(path: Path, data: bytes) -> None:
        raise SystemExit("killed while writing the file")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(provider_module, "write_atomically", crash)
        sepa.write_collection_file()
    outgoing = Path(settings["folder"]) / "outgoing"
    assert not outgoing.exists() or not list(outgoing.iterdir())
    restarted = SepaDirectDebit(settings, clock=clock, channel=channel)  # writes the pending file
    (path,) = outgoing.iterdir()
    assert validate_pain008(path.read_bytes()) == "pain.008.001.08"
    assert restarted.collection("CC2603020000001").file_id == path.stem
    assert restarted.write_collection_file() is None  # the debit is not sent twice

    # a written file the operator moved away after the upload is not written again
    path.unlink()
    SepaDirectDebit(settings, clock=clock, channel=channel)
    assert not path.exists()


def test_unusable_mandates_are_declines_not_exceptions(sepa: SepaDirectDebit) -> None:
    def buy(token: str, account: str = "A-1", currency: str = EUR) -> PaymentErrorCode | None:
        return sepa.purchase(
            Money("5.00", currency),
            Instrument(PaymentMethod.DIRECT_DEBIT, token),
            idempotency_key=f"x-{token}-{account}-{currency}",
            account_id=account,
        ).error_code

    assert buy("CC-NOPE") is PaymentErrorCode.INVALID_INSTRUMENT
    assert buy("CC-A-2-01", "A-1") is PaymentErrorCode.INVALID_INSTRUMENT  # another patient's mandate
    assert buy("CC-A-1-01", currency="NOK") is PaymentErrorCode.CURRENCY_NOT_SUPPORTED
    assert sepa.remove_mandate("CC-A-1-01", idempotency_key="rm").success
    assert buy("CC-A-1-01") is PaymentErrorCode.MANDATE_REVOKED


# -- returns and rejects ---------------------------------------------------------------------------


def _events(result: Any) -> list[dict[str, Any]]:
    return [json.loads(e.body) for e in result.events]


def test_a_rejected_first_debit_is_one_failed_event_and_the_next_is_first_again(
    sepa: SepaDirectDebit, outbox: Path
) -> None:
    _two_debits_in_a_file(sepa)
    data = (FIXTURES / "pain002_reject.xml").read_bytes()
    result = sepa.read_bank_file(data, name="pain002_reject.xml")
    (event,) = _events(result)
    assert event["id"] == "sepa-failed-CC2603020000002" and event["type"] == "payment.failed"
    assert (event["reference"], event["amount_minor"], event["reason"]) == ("CC2603020000002", 6000, "AM04")
    assert result.changed == ("CC2603020000002",)
    assert sepa.collection("CC2603020000002").status is CollectionStatus.REJECTED
    assert sepa.mandate("CC-A-2-01").next_sequence() is SequenceType.FIRST
    body = _eml_body(outbox / "SEPA-RET-CC2603020000002.eml")
    assert "not enough money" in body and "No fee has been added" in body

    # the same file again: the same event (intake drops it), nothing else changes
    state = (Path(sepa._folder) / "sepa-state.json").read_bytes()
    mails = sorted(p.name for p in outbox.iterdir())
    again = sepa.read_bank_file(data, name="pain002_reject.xml")
    assert _events(again) == _events(result) and again.changed == ()
    assert (Path(sepa._folder) / "sepa-state.json").read_bytes() == state
    assert sorted(p.name for p in outbox.iterdir()) == mails


def test_a_returned_debit_after_settlement_and_the_fee_rule(
    settings: dict[str, Any], clock: Clock, channel: Any, outbox: Path, sepa: SepaDirectDebit
) -> None:
    _two_debits_in_a_file(sepa)
    result = sepa.read_bank_file((FIXTURES / "camt054_return.xml").read_bytes(), name="camt054_return.xml")
    (event,) = _events(result)
    assert event["id"] == "sepa-failed-CC2603020000001" and event["outcome"] == "returned"
    assert "fee_minor" not in event  # no pack allows passing the bank's charge on
    assert sepa.collection("CC2603020000001").status is CollectionStatus.RETURNED
    assert (
        sepa.mandate("CC-A-1-01").next_sequence() is SequenceType.RECURRING
    )  # AM04 does not end the mandate
    assert "Wir haben Ihnen dafür keine Gebühr berechnet." in _eml_body(
        outbox / "SEPA-RET-CC2603020000001.eml"
    )


def test_a_pack_that_allows_it_passes_the_return_charge_on(
    settings: dict[str, Any], clock: Clock, channel: Any, outbox: Path
) -> None:
    from conftest import mandate

    pack = get_pack("de").with_rules(
        (
            Rule(
                "direct_debit.return_fee_allowed",
                True,
                "agreement with the patient",
                dt.date(2026, 1, 1),
                Strictness.ALLOWED_IF_TRUE,
            ),
        )
    )
    sepa = SepaDirectDebit(settings, clock=clock, channel=channel, pack=pack)
    sepa.add_mandate(mandate())
    sepa.add_mandate(
        mandate("CC-A-2-01", "A-2", iban=OTHER_IBAN, language="en", notice_address="max@example.de")
    )
    _two_debits_in_a_file(sepa)
    (event,) = _events(sepa.read_bank_file((FIXTURES / "camt054_return.xml").read_bytes()))
    assert (event["fee_minor"], event["fee_currency"]) == (300, "EUR")
    assert "3,00\xa0€" in _eml_body(outbox / "SEPA-RET-CC2603020000001.eml")


@pytest.mark.parametrize(("code", "told"), [("MD01", True), ("AC04", True), ("MD07", False)])
def test_a_reason_that_ends_the_mandate_revokes_it(
    sepa: SepaDirectDebit, outbox: Path, code: str, told: bool
) -> None:
    _two_debits_in_a_file(sepa)
    sepa._clock.now = dt.datetime(2026, 3, 19, 7, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    data = (
        (FIXTURES / "camt054_return.xml").read_bytes().replace(b"<Cd>AM04</Cd>", f"<Cd>{code}</Cd>".encode())
    )
    events = _events(sepa.read_bank_file(data))
    assert [e["type"] for e in events] == ["payment.failed", "mandate.revoked"]
    assert events[1]["reference"] == "CC-A-1-01"
    assert sepa.mandate("CC-A-1-01").revoked_on == dt.date(2026, 3, 18)
    assert (outbox / "SEPA-RET-CC2603020000001.eml").exists() is told
    refused = sepa.purchase(
        Money("1.00", EUR),
        Instrument(PaymentMethod.DIRECT_DEBIT, "CC-A-1-01"),
        idempotency_key="after",
        account_id="A-1",
    )
    assert refused.error_code is PaymentErrorCode.MANDATE_REVOKED


def test_intake_events_are_verified_and_parsed(sepa: SepaDirectDebit, clock: Clock) -> None:
    _two_debits_in_a_file(sepa)
    result = sepa.read_bank_file((FIXTURES / "pain002_reject.xml").read_bytes())
    (inbound,) = result.events
    event = sepa.parse_webhook(dict(inbound.headers), inbound.body, now=clock.now)
    assert event.kind is WebhookKind.PAYMENT_FAILED and event.amount == Money("60.00", EUR)
    assert event.idempotency_key == "sepa-failed-CC2603020000002"
    line = json.loads(result.events_jsonl())
    assert line["kind"] == "payment" and line["plugin"] == "sepa"


def test_a_bank_file_that_cannot_be_read_names_the_file_and_element(sepa: SepaDirectDebit) -> None:
    from carecollect_sepa import BankFileError

    with pytest.raises(BankFileError, match="x.xml"):
        sepa.read_bank_file(b"<nope", name="x.xml")
    with pytest.raises(BankFileError, match="OrgnlEndToEndId"):
        sepa.read_bank_file(
            (FIXTURES / "pain002_reject.xml").read_bytes().replace(b"OrgnlEndToEndId", b"Other")
        )


def test_secrets_and_account_data_stay_out_of_reprs_and_messages(
    sepa: SepaDirectDebit, settings: dict[str, Any]
) -> None:
    from conftest import INTAKE_SECRET

    _two_debits_in_a_file(sepa)
    result = sepa.read_bank_file((FIXTURES / "camt054_return.xml").read_bytes())
    text = "\n".join(
        [
            repr(sepa),
            repr(sepa.creditor),
            repr(sepa.mandate("CC-A-1-01")),
            repr(result),
            repr(sepa.collection("CC2603020000001")),
        ]
    )
    for secret in (INTAKE_SECRET, DEBTOR_IBAN, "Erika", settings["creditor_iban"]):
        assert secret not in text
    from carecollect.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as err:
        SepaDirectDebit({**settings, "intake_secret": "env:SEPA_NOT_SET_ANYWHERE"})
    assert "SEPA_NOT_SET_ANYWHERE" in str(err.value)


def test_a_file_refused_whole_fails_each_of_its_debits_without_telling_the_patients(
    sepa: SepaDirectDebit, outbox: Path
) -> None:
    _two_debits_in_a_file(sepa)
    before = sorted(p.name for p in outbox.iterdir())
    result = sepa.read_bank_file((FIXTURES / "pain002_file_rejected.xml").read_bytes())
    assert [e["id"] for e in _events(result)] == [
        "sepa-failed-CC2603020000001",
        "sepa-failed-CC2603020000002",
    ]
    assert {e["reason"] for e in _events(result)} == {"FF01"}
    assert sepa.collection("CC2603020000001").status is CollectionStatus.REJECTED
    assert sepa.mandate("CC-A-1-01").next_sequence() is SequenceType.FIRST  # the FRST did not happen
    assert sorted(p.name for p in outbox.iterdir()) == before  # a technical fault: nobody is told
    assert result.receipts == ()
