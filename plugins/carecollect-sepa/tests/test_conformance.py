"""The SEPA provider passes carecollect's conformance kit (what it does not offer is declared, not faked)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from carecollect.payments import PaymentMethod
from carecollect.plugins.providers import Instrument, PaymentProvider, WebhookKind
from carecollect.testing import PaymentProviderContract
from conftest import DEBTOR_IBAN, INTAKE_SECRET, NOW, Clock, mandate

from carecollect_sepa import SEPA, SepaDirectDebit


class TestSepaConformance(PaymentProviderContract):
    @pytest.fixture
    def provider(self, settings: dict[str, Any], channel: Any) -> PaymentProvider:
        sepa = SepaDirectDebit(settings, clock=Clock(NOW), channel=channel)
        sepa.add_mandate(mandate())
        # signed in 2022 and never used: expired after 36 months without a collection
        sepa.add_mandate(mandate("CC-A-1-OLD", signed_on=dt.date(2022, 1, 3)))
        return sepa

    @pytest.fixture
    def instrument(self) -> Instrument:
        return Instrument(PaymentMethod.DIRECT_DEBIT, token="CC-A-1-01")

    @pytest.fixture
    def declining_instrument(self) -> Instrument:
        return Instrument(PaymentMethod.DIRECT_DEBIT, token="CC-A-1-OLD")

    @pytest.fixture
    def webhook_secret(self) -> str:
        return INTAKE_SECRET

    @pytest.fixture
    def secrets(self, webhook_secret: str) -> tuple[str, ...]:
        # the mandate reference is no secret (it is printed on every notice and statement);
        # the debtor's IBAN and name and the intake secret are
        return (DEBTOR_IBAN, "Erika Mustermann", webhook_secret)

    @pytest.fixture
    def signed_webhook(self, provider: SepaDirectDebit) -> Any:
        def sign(event_id: str, signed_at: dt.datetime) -> tuple[dict[str, str], bytes]:
            body = provider._event(event_id, WebhookKind.PAYMENT_FAILED, "CC2603020000001", NOW)
            event = provider.signed_event(body, at=signed_at)
            return dict(event.headers), event.body

        return sign


def test_the_entry_point_registers_the_provider() -> None:
    from carecollect.plugins.manager import make_plugin_manager

    assert make_plugin_manager().payment_provider("sepa") is SEPA
    assert not SEPA.capabilities.refunds and not SEPA.capabilities.two_step
    assert SEPA.capabilities.mandates and SEPA.capabilities.methods == {PaymentMethod.DIRECT_DEBIT}
