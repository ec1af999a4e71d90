"""AvtaleGiro: conformance kit, KIDs, claim files, notices when wanted, OCR files read once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import netsgiro
import pytest
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.providers import Instrument, PaymentProvider, WebhookKind
from carecollect.testing import PaymentProviderContract
from conftest import SECRET

from carecollect_avtalegiro import AvtaleGiro, ClaimStatus, KidAlgorithm, is_valid_kid, kid_for_account
from carecollect_avtalegiro.kid import mod10_check_digit, mod11_check_digit

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _agreements_file(*rows: tuple[str, bool, netsgiro.AvtaleGiroRegistrationType]) -> str:
    """An agreement file as Nets sends it (assignment type 24), written with netsgiro's records."""
    t = netsgiro.Transmission(
        number="1000001", data_transmitter="00008080", data_recipient="12345678", date=dt.date(2026, 3, 1)
    )
    a = t.add_assignment(
        service_code=netsgiro.ServiceCode.AVTALEGIRO,
        assignment_type=netsgiro.AssignmentType.AVTALEGIRO_AGREEMENTS,
        number="4000086",
        account="86011117947",
    )
    for n, (kid, notify, reg) in enumerate(rows, start=1):
        a.transactions.append(
            netsgiro.Agreement(
                service_code=netsgiro.ServiceCode.AVTALEGIRO,
                number=n,
                registration_type=reg,
                kid=kid,
                notify=notify,
            )
        )
    return t.to_ocr()


def _ocr_file(*rows: tuple[str, str, netsgiro.TransactionType]) -> str:
    """An OCR giro file (service 09) reporting payments, written with netsgiro's records."""
    t = netsgiro.Transmission(
        number="1000002", data_transmitter="00008080", data_recipient="12345678", date=dt.date(2026, 3, 13)
    )
    a = t.add_assignment(
        service_code=netsgiro.ServiceCode.OCR_GIRO,
        assignment_type=netsgiro.AssignmentType.TRANSACTIONS,
        number="4000087",
        account="86011117947",
        date=dt.date(2026, 3, 13),
    )
    for n, (kid, amount, kind) in enumerate(rows, start=1):
        a.transactions.append(
            netsgiro.Transaction(
                service_code=netsgiro.ServiceCode.OCR_GIRO,
                type=kind,
                number=n,
                date=dt.date(2026, 3, 13),
                amount=Decimal(amount),
                kid=kid,
                reference="000000042",
                text=None,
                centre_id="01",
                day_code=13,
                partial_settlement_number=1,
                partial_settlement_serial_number="00001",
                sign="0",
                form_number="0000000000",
                bank_date=dt.date(2026, 3, 13),
                debit_account="86011117947",
                filler="0000000",
            )
        )
    return t.to_ocr()


ACTIVE = netsgiro.AvtaleGiroRegistrationType.NEW_OR_UPDATED_AGREEMENT
DELETED = netsgiro.AvtaleGiroRegistrationType.DELETED_AGREEMENT


@pytest.fixture
def ag(settings: dict[str, Any], outbox: Path) -> AvtaleGiro:
    provider = AvtaleGiro(settings, clock=Clock(NOW), channel=OUTBOX.create({"folder": str(outbox)}))
    provider.register_payer("A-1", language="nb", notice_address="kari@example.no")
    provider.register_payer("A-2", language="en", notice_address="ola@example.no")
    provider.read_ocr_file(
        _agreements_file((provider.kid_for("A-1"), True, ACTIVE), (provider.kid_for("A-2"), False, ACTIVE))
    )
    return provider


class TestAvtaleGiroConformance(PaymentProviderContract):
    @pytest.fixture
    def provider(self, ag: AvtaleGiro) -> PaymentProvider:
        return ag

    @pytest.fixture
    def instrument(self, ag: AvtaleGiro) -> Instrument:
        return Instrument(PaymentMethod.DIRECT_DEBIT, token=ag.kid_for("A-1"))

    @pytest.fixture
    def declining_instrument(self) -> Instrument:
        return Instrument(PaymentMethod.DIRECT_DEBIT, token="0000009990")

    @pytest.fixture
    def webhook_secret(self) -> str:
        return SECRET

    @pytest.fixture
    def secrets(self) -> tuple[str, ...]:
        return (SECRET, "kari@example.no")

    @pytest.fixture
    def signed_webhook(self, ag: AvtaleGiro) -> Any:
        def sign(event_id: str, at: dt.datetime) -> tuple[dict[str, str], bytes]:
            ag._clock.now = at  # type: ignore[attr-defined]
            event = ag._event(event_id, WebhookKind.PAYMENT_FAILED, "AG1", NOW)
            ag._clock.now = NOW  # type: ignore[attr-defined]
            return dict(event.headers), event.body

        return sign


def test_check_digits_match_published_examples() -> None:
    assert mod10_check_digit("7992739871") == "3"  # the Luhn example of ISO/IEC 7812
    assert mod11_check_digit("8601111794") == "7"  # a Norwegian account number, MOD11
    kid = kid_for_account("A-000123", length=10, algorithm=KidAlgorithm.MOD11)
    assert len(kid) == 10 and is_valid_kid(kid, KidAlgorithm.MOD11)
    assert not is_valid_kid(kid[:-1] + str((int(kid[-1]) + 1) % 10), KidAlgorithm.MOD11)


def test_a_claim_file_round_trips_through_netsgiro_and_notices_go_only_when_wanted(
    ag: AvtaleGiro, outbox: Path
) -> None:
    kid1, kid2 = ag.kid_for("A-1"), ag.kid_for("A-2")
    r1 = ag.purchase(
        Money("450", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid1),
        idempotency_key="k1",
        account_id="A-1",
    )
    r2 = ag.purchase(
        Money("99.50", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid2),
        idempotency_key="k2",
        account_id="A-2",
    )
    assert r1.success and r2.success and r1.reference and r2.reference
    assert ag.claim(r1.reference).due_on == dt.date(2026, 3, 9)  # the payer wants a notice: 7 days
    assert ag.claim(r2.reference).due_on == dt.date(2026, 3, 6)  # Nets' minimum: 4 calendar days
    import email

    message = email.message_from_bytes((outbox / f"AG-NOTICE-{r1.reference}.eml").read_bytes())
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    body = part.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    assert f"KID: {kid1}" in body and "450,00\xa0kr" in body and "9. mars 2026" in body
    assert not (outbox / f"AG-NOTICE-{r2.reference}.eml").exists()
    path = ag.write_claim_file()
    assert path is not None and ag.write_claim_file() is None
    parsed = netsgiro.parse(path.read_text())
    (assignment,) = parsed.assignments
    requests = {t.kid: t for t in assignment.transactions}
    assert requests[kid1].amount == Decimal("450.00") and requests[kid1].date == dt.date(2026, 3, 9)
    assert requests[kid1].type is netsgiro.TransactionType.AVTALEGIRO_WITH_PAYEE_NOTIFICATION
    assert requests[kid2].type is netsgiro.TransactionType.AVTALEGIRO_WITH_BANK_NOTIFICATION
    assert assignment.agreement_id == "000012345"


def test_ocr_payments_reversals_and_deleted_agreements_apply_once(ag: AvtaleGiro) -> None:
    kid1, kid2 = ag.kid_for("A-1"), ag.kid_for("A-2")
    r1 = ag.purchase(
        Money("450", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid1),
        idempotency_key="k1",
        account_id="A-1",
    )
    r2 = ag.purchase(
        Money("99.50", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid2),
        idempotency_key="k2",
        account_id="A-2",
    )
    assert r1.reference and r2.reference
    ag.write_claim_file()
    paid = _ocr_file(
        (kid1, "450.00", netsgiro.TransactionType.FROM_AVTALEGIRO),
        (kid2, "99.50", netsgiro.TransactionType.FROM_AVTALEGIRO),
    )
    result = ag.read_ocr_file(paid)
    assert set(result.paid) == {r1.reference, r2.reference} and result.events == ()
    state = (Path(ag._folder) / "avtalegiro-state.json").read_bytes()
    again = ag.read_ocr_file(paid)  # read twice: nothing changes
    assert (again.paid, again.unknown, again.events) == ((), 0, ())
    assert (Path(ag._folder) / "avtalegiro-state.json").read_bytes() == state

    reversed_ = _ocr_file((kid2, "99.50", netsgiro.TransactionType.REVERSING_WITH_KID))
    (event,) = ag.read_ocr_file(reversed_).events
    data = json.loads(event.body)
    assert (data["id"], data["type"], data["amount_minor"]) == (
        f"avtalegiro-failed-{r2.reference}",
        "payment.failed",
        9950,
    )
    parsed = ag.parse_webhook(dict(event.headers), event.body, now=NOW)
    assert parsed.kind is WebhookKind.PAYMENT_FAILED and parsed.amount == Money("99.50", "NOK")
    assert ag.claim(r2.reference).status is ClaimStatus.FAILED

    (revoked,) = ag.read_ocr_file(_agreements_file((kid1, True, DELETED))).events
    assert json.loads(revoked.body)["type"] == "mandate.revoked"
    refused = ag.purchase(
        Money("1", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid1),
        idempotency_key="k3",
        account_id="A-1",
    )
    assert refused.error_code is not None and refused.error_code.value == "mandate_revoked"


def test_an_unpaid_claim_fails_after_the_grace_days(ag: AvtaleGiro) -> None:
    kid2 = ag.kid_for("A-2")
    r = ag.purchase(
        Money("10", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid2),
        idempotency_key="k",
        account_id="A-2",
    )
    assert r.reference
    ag.write_claim_file()
    assert ag.unpaid_claims() == ()
    ag._clock.now = NOW + dt.timedelta(days=10)  # type: ignore[attr-defined]
    (event,) = ag.unpaid_claims()
    assert json.loads(event.body)["id"] == f"avtalegiro-failed-{r.reference}"
    assert [json.loads(e.body)["id"] for e in ag.unpaid_claims()] == [f"avtalegiro-failed-{r.reference}"]


def test_reprs_and_settings_keep_secrets_out(ag: AvtaleGiro, settings: dict[str, Any]) -> None:
    text = repr(ag) + repr(ag.agreement(ag.kid_for("A-1")))
    assert SECRET not in text and "kari@" not in text
    from carecollect.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="account"):
        AvtaleGiro({**settings, "account": "123"})


def test_a_cancelled_claim_goes_to_nets_once_identical_and_fails(
    ag: AvtaleGiro, settings: dict[str, Any]
) -> None:
    kid2 = ag.kid_for("A-2")
    r = ag.purchase(
        Money("10", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid2),
        idempotency_key="k",
        account_id="A-2",
    )
    assert r.reference
    first = ag.write_claim_file()
    assert first is not None
    ag.cancel_claim(r.reference)
    second = ag.write_claim_file()
    assert second is not None and ag.write_claim_file() is None  # sent once
    claim = netsgiro.parse(first.read_text()).assignments[0].transactions[0]
    (cancel_assignment,) = netsgiro.parse(second.read_text()).assignments
    assert cancel_assignment.type is netsgiro.AssignmentType.AVTALEGIRO_CANCELLATIONS
    (cancel,) = cancel_assignment.transactions
    assert (cancel.kid, cancel.amount, cancel.date) == (claim.kid, claim.amount, claim.date)
    assert cancel.type is netsgiro.TransactionType.AVTALEGIRO_CANCELLATION
    (event,) = ag.unpaid_claims()
    assert json.loads(event.body)["reason"] == "cancelled"


def test_a_transmission_recorded_but_not_written_is_written_at_start(
    ag: AvtaleGiro, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import carecollect_avtalegiro.provider as module

    kid2 = ag.kid_for("A-2")
    ag.purchase(
        Money("10", "NOK"),
        Instrument(PaymentMethod.DIRECT_DEBIT, kid2),
        idempotency_key="k",
        account_id="A-2",
    )

    real = module._write_atomically

    def crash(path: Path, data: bytes) -> None:
        if path.parent.name == "outgoing":
            raise SystemExit("killed while writing the transmission")
        real(path, data)

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(module, "_write_atomically", crash)
        ag.write_claim_file()
    again = AvtaleGiro(settings, clock=Clock(NOW))
    (path,) = (Path(settings["folder"]) / "outgoing").iterdir()
    assert netsgiro.parse(path.read_text()).assignments[0].transactions[0].kid == kid2
    assert again.write_claim_file() is None
