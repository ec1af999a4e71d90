"""The run's money-moving calls and payment webhooks: exactly once, retried with back-off, never twice.

A plan with a stored mandate has its due instalments charged by the daily run
through a payment-provider plugin (a test double built on
:class:`~carecollect.plugins.providers.TransactionBook`, which answers a repeated
idempotency key with its first result, as real gateways do). Payment webhooks
are signed with :func:`~carecollect.plugins.providers.sign_webhook` and taken in by
:func:`~carecollect.run.event_intake.intake`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from click.testing import CliRunner

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.disputes import Dispute, DisputeReason, DisputeStatus
from carecollect.events import Event, EventType
from carecollect.invoices import InvoiceStatus
from carecollect.ledger import EntryKind, LedgerEntry
from carecollect.money import Money
from carecollect.payments import PaymentMethod, PaymentReversal, ReversalCause
from carecollect.plans import InstalmentStatus, PaymentPlan, PlanStatus, build_schedule
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import PluginManager, make_plugin_manager
from carecollect.plugins.providers import (
    SIGNATURE_HEADER,
    BasePaymentProvider,
    Instrument,
    PaymentErrorCode,
    PaymentProviderDescriptor,
    PaymentResult,
    ProviderCapabilities,
    TransactionBook,
    WebhookEvent,
    WebhookKind,
    sign_webhook,
    verify_webhook_signature,
)
from carecollect.portfolio import load_portfolio
from carecollect.reports import CollectedLine, collected, report_from_store
from carecollect.run.charges import provider_payment_id
from carecollect.run.decisions import DecisionKind
from carecollect.run.event_intake import intake
from carecollect.run.execute import execute_run
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.settings_file import write_default_config
from carecollect.store.base import Mandate, OutboxStatus, ProviderPayment
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
SECRET = b"webhook-secret-for-tests"
CAPS = ProviderCapabilities(
    methods={PaymentMethod.CARD, PaymentMethod.DIRECT_DEBIT}, currencies={"EUR", "NOK", "USD"}, webhooks=True
)


class FakeGateway(BasePaymentProvider):
    """Charges stored mandates; one book per test (class-level), so a repeated key replays."""

    capabilities = CAPS
    book: ClassVar[TransactionBook] = TransactionBook("gw")
    calls: ClassVar[list[str]] = []
    references: ClassVar[list[str]] = []
    decline: ClassVar[bool] = False
    down: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.secret = settings["webhook_secret"].encode()

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        FakeGateway.calls.append(idempotency_key)
        if FakeGateway.down:
            raise TimeoutError("gateway timed out")
        if FakeGateway.decline:
            return PaymentResult.failed(PaymentErrorCode.DECLINED, "insufficient funds")
        result = FakeGateway.book.authorize(amount, idempotency_key=idempotency_key, capture=True)
        FakeGateway.references.append(str(result.reference))
        return result

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        at = verify_webhook_signature(self.secret, headers, body, now=now)
        data = json.loads(body)
        amount = Money(data["amount"], data["currency"]) if "amount" in data else None
        return WebhookEvent(data["id"], WebhookKind(data["type"]), data.get("reference"), at, amount)


class Plugin:
    @hookimpl
    def carecollect_payment_providers(self) -> list[PaymentProviderDescriptor]:
        return [PaymentProviderDescriptor("fake-gw", CAPS, FakeGateway)]


@pytest.fixture(autouse=True)
def _reset() -> None:
    FakeGateway.book = TransactionBook("gw")
    FakeGateway.calls = []
    FakeGateway.references = []
    FakeGateway.decline = False
    FakeGateway.down = False


@pytest.fixture
def pm() -> PluginManager:
    return make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])


@pytest.fixture
def settings(tmp_path: Path) -> RunSettings:
    return RunSettings(
        channel_plugins=dict.fromkeys(Channel, "outbox"),
        channel_config={"outbox": {"folder": str(tmp_path / "out")}},
        payment_providers={"fake-gw": {"webhook_secret": SECRET.decode()}},
        max_attempts=3,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "run.db")
    load_portfolio(s, 40, seed=4, as_of=NOW.date())
    yield s
    s.close()


def _plan_with_mandate(store: SQLiteStore, *, first_due: dt.date) -> PaymentPlan:
    """An active 3-instalment plan over the first open invoice with no plan or dispute, with a card mandate."""
    for snap in store.iter_account_snapshots():
        if snap.plans or snap.disputes:
            continue
        for inv in snap.invoices:
            if inv.status is InvoiceStatus.OPEN and snap.ledger.invoice_balance(inv.id).is_positive():
                balance = snap.ledger.invoice_balance(inv.id)
                plan = PaymentPlan(
                    f"PLAN-{inv.id}",
                    snap.account.id,
                    (inv.id,),
                    balance,
                    build_schedule(balance, 3, first_due=first_due),
                    NOW - dt.timedelta(days=40),
                    status=PlanStatus.ACTIVE,
                )
                with store.transaction():
                    store.put_plan(plan)
                    store.put_mandate(
                        Mandate(
                            plan.id,
                            plan.account_id,
                            "fake-gw",
                            "card",
                            "mandate-ref-1",
                            NOW - dt.timedelta(days=40),
                        )
                    )
                return plan
    raise AssertionError("no suitable account in the portfolio")


def _payments(store: SQLiteStore, account_id: str) -> dict[str, int]:
    units: dict[str, int] = {}
    for e in store.ledger(account_id).entries:
        if e.kind is EntryKind.PATIENT_PAYMENT:
            units[e.source_id] = units.get(e.source_id, 0) + e.amount.minor_units
    return units


def test_a_due_instalment_is_planned_charged_once_and_posted(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() - dt.timedelta(days=2))
    dry = plan_run(store, NOW, settings)
    assert [(c.plan_id, c.number, c.amount) for c in dry.charges] == [
        (plan.id, 1, plan.instalments[0].amount)
    ]
    assert store.counts()["outbox"] == 0  # the dry run wrote nothing
    assert FakeGateway.calls == []

    report = execute_run(store, NOW, pm, settings)
    assert (report.charged, report.charges_failed) == (1, 0)
    key = f"charge:{plan.id}#1"
    assert FakeGateway.calls == [key]  # the outbox key is the provider's idempotency key
    item = store.outbox_get(key)
    assert item.status is OutboxStatus.DONE and item.kind == "charge"
    paid = store.get_plan(plan.id)
    assert paid.instalments[0].status is InstalmentStatus.PAID
    assert paid.instalments[1].status is InstalmentStatus.DUE
    payment_id = provider_payment_id("fake-gw", item.result["reference"])  # type: ignore[index]
    assert _payments(store, plan.account_id)[payment_id] == plan.instalments[0].amount.minor_units
    assert [r.kind for r in store.audit_records(subject_id=plan.account_id)].count("charge") == 1

    # the next run (and a later one) charges nothing again
    again = execute_run(store, NOW + dt.timedelta(hours=1), pm, settings)
    assert again.charged == 0 and FakeGateway.calls == [key]
    assert store.verify_audit().ok


def test_a_run_killed_after_the_charge_charges_again_with_the_same_key_and_posts_once(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() - dt.timedelta(days=1))
    key = f"charge:{plan.id}#1"

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed after the provider answered")

    # the process dies between the provider's answer and the ledger/outbox write
    monkeypatch.setattr(store, "link_provider_payment", killed)
    with pytest.raises(SystemExit):
        execute_run(store, NOW, pm, settings)
    monkeypatch.undo()
    assert store.outbox_get(key).status is OutboxStatus.INTENDED
    assert _payments(store, plan.account_id) == {}

    report = execute_run(store, NOW, pm, settings)
    assert report.charged == 1
    assert FakeGateway.calls == [key, key]  # asked twice with one key ...
    assert len(set(FakeGateway.references)) == 1  # ... the provider charged once
    assert len(_payments(store, plan.account_id)) == 1
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.PAID


def test_a_declined_or_unreachable_gateway_is_retried_with_back_off_then_given_up(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date())
    key = f"charge:{plan.id}#1"
    FakeGateway.decline = True
    first = execute_run(store, NOW, pm, settings)
    assert (first.charged, first.charges_failed) == (0, 1)
    item = store.outbox_get(key)
    assert item.status is OutboxStatus.FAILED and item.next_retry_at == NOW + dt.timedelta(minutes=5)
    assert "declined" in (item.last_error or "")

    # before the back-off ends: not asked again
    execute_run(store, NOW + dt.timedelta(minutes=1), pm, settings)
    assert FakeGateway.calls == [key]

    # the gateway is down (a timeout): recorded failed, the run goes on
    FakeGateway.decline, FakeGateway.down = False, True
    second = execute_run(store, NOW + dt.timedelta(minutes=6), pm, settings)
    assert second.charges_failed == 1 and second.sent == 0
    assert "transport: TimeoutError" in (store.outbox_get(key).last_error or "")

    # the third failure reaches max_attempts: given up, never due again, nothing charged
    third = execute_run(store, NOW + dt.timedelta(hours=1), pm, settings)
    assert third.charges_failed == 1
    gone = store.outbox_get(key)
    assert gone.status is OutboxStatus.FAILED and gone.next_retry_at is None and gone.attempts == 3
    assert all(i.key != key for i in store.outbox_due(NOW + dt.timedelta(days=30)))
    FakeGateway.down = False
    execute_run(store, NOW + dt.timedelta(days=1), pm, settings)
    assert FakeGateway.calls == [key] * 3
    assert _payments(store, plan.account_id) == {}


def test_an_open_dispute_holds_the_charge_and_a_revoked_mandate_stops_it(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date())
    dispute = Dispute(
        "D-PAY",
        plan.account_id,
        plan.invoice_ids[0],
        DisputeReason.BILLING_ERROR,
        NOW - dt.timedelta(hours=2),
    )
    store.put_dispute(dispute)
    dry = plan_run(store, NOW, settings)
    assert dry.charges == ()
    held = [d for d in dry.decisions if d.kind is DecisionKind.CHARGE_HELD]
    assert [r.rule_id for d in held for r in d.reasons] == ["plan.charge_disputed"]
    execute_run(store, NOW, pm, settings)
    assert FakeGateway.calls == []

    # the mandate is revoked by the provider's webhook: no charge once the dispute is gone
    store.put_dispute(attrs.evolve(dispute, status=DisputeStatus.WITHDRAWN))
    body = json.dumps({"id": "evt-rev", "type": "mandate.revoked", "reference": "mandate-ref-1"}).encode()
    report = intake(store, pm, settings, [_webhook(body)], NOW)
    assert report.mandates_revoked == 1
    assert plan_run(store, NOW + dt.timedelta(hours=1), settings).charges == ()
    execute_run(store, NOW + dt.timedelta(hours=1), pm, settings)
    assert FakeGateway.calls == []


def _webhook(body: bytes, at: dt.datetime = NOW) -> InboundEvent:
    return InboundEvent(InboundKind.PAYMENT, "fake-gw", body, sign_webhook(SECRET, body, at=at))


def _paid(event_id: str, reference: str, amount: Money) -> bytes:
    data = {
        "id": event_id,
        "type": "payment.succeeded",
        "reference": reference,
        "amount": str(amount.amount),
        "currency": amount.currency,
    }
    return json.dumps(data).encode()


def test_payment_webhooks_post_once_replays_and_out_of_order_change_nothing(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))  # nothing to charge yet
    amount = plan.instalments[0].amount
    body = _paid("evt-1", "pay-ref-9", amount)

    # an unknown reference is reported and not marked processed (the redelivery is taken later)
    unknown = intake(store, pm, settings, [_webhook(body)], NOW)
    assert unknown.processed == 0 and unknown.payments == 0
    assert any("pay-ref-9" in f for f in unknown.failures)
    assert not store.was_processed("provider:fake-gw", "evt-1")

    # the payment page linked its reference to the plan's first instalment: taken once
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw", "pay-ref-9", plan.account_id, provider_payment_id("fake-gw", "pay-ref-9"), plan.id, 1
        )
    )
    taken = intake(store, pm, settings, [_webhook(body), _webhook(body)], NOW)
    assert (taken.payments, taken.duplicates) == (1, 1)
    ledger_after = store.ledger(plan.account_id).entries
    assert _payments(store, plan.account_id) == {"PAY-fake-gw-pay-ref-9": amount.minor_units}
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.PAID

    # replayed a day later, or an older event for the same payment arriving after it: nothing changes
    later = intake(
        store, pm, settings, [_webhook(body, NOW + dt.timedelta(minutes=3))], NOW + dt.timedelta(minutes=3)
    )
    older = intake(store, pm, settings, [_webhook(_paid("evt-0", "pay-ref-9", amount))], NOW)
    assert later.duplicates == 1 and older.payments == 0 and older.processed == 1
    assert store.ledger(plan.account_id).entries == ledger_after

    # a forged signature is refused and records nothing
    forged = InboundEvent(
        InboundKind.PAYMENT,
        "fake-gw",
        _paid("evt-2", "pay-ref-9", amount),
        {SIGNATURE_HEADER: f"t={int(NOW.timestamp())},v1=00"},
    )
    refused = intake(store, pm, settings, [forged], NOW)
    assert refused.processed == 0 and refused.failures
    assert not store.was_processed("provider:fake-gw", "evt-2")
    assert store.verify_audit().ok


def test_the_webhook_of_a_charge_the_run_already_posted_changes_nothing(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date())
    execute_run(store, NOW, pm, settings)
    reference = store.outbox_get(f"charge:{plan.id}#1").result["reference"]  # type: ignore[index]
    before = store.ledger(plan.account_id).entries
    report = intake(
        store, pm, settings, [_webhook(_paid("evt-c", reference, plan.instalments[0].amount))], NOW
    )
    assert report.processed == 1 and report.payments == 0
    assert store.ledger(plan.account_id).entries == before


# -- money that did not stay: returned debits, chargebacks, provider refunds ---------------------


def _returned(event_id: str, kind: str, reference: str, amount: Money | None = None) -> bytes:
    data: dict[str, str] = {"id": event_id, "type": kind, "reference": reference}
    if amount is not None:
        data |= {"amount": str(amount.amount), "currency": amount.currency}
    return json.dumps(data).encode()


def _owed(store: SQLiteStore, account_id: str) -> dict[str, int]:
    book = store.ledger(account_id)
    return {i: book.invoice_balance(i).minor_units for i in book.invoice_ids()}


def _conserved(store: SQLiteStore, account_id: str) -> None:
    """charges + refunds + reversals == payments + insurer + adjustments + write-offs + balance."""
    book = store.ledger(account_id)
    total = {k: book.sum_of(k).minor_units for k in EntryKind}
    assert total[EntryKind.CHARGE] + total[EntryKind.REFUND] + total[EntryKind.PAYMENT_REVERSED] == (
        total[EntryKind.PATIENT_PAYMENT]
        + total[EntryKind.INSURANCE_PAYMENT]
        + total[EntryKind.ADJUSTMENT]
        + total[EntryKind.WRITE_OFF]
        + book.balance.minor_units
    )
    # the store's flat invoice rows agree with the ledger
    rows = {r.invoice_id: r.balance_minor for r in store.iter_invoice_rows() if r.account_id == account_id}
    assert rows == {i: max(units, 0) for i, units in _owed(store, account_id).items()} | {
        i: rows[i] for i in rows if i not in book.invoice_ids()
    }


def _paid_by_webhook(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings, plan: PaymentPlan, reference: str
) -> Money:
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw", reference, plan.account_id, provider_payment_id("fake-gw", reference), plan.id, 1
        )
    )
    amount = plan.instalments[0].amount
    assert (
        intake(
            store, pm, settings, [_webhook(_paid(f"evt-pay-{reference}", reference, amount))], NOW
        ).payments
        == 1
    )
    return amount


def test_a_chargeback_takes_the_payment_back_once_and_the_instalment_is_due_again(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))  # nothing to charge yet
    before = _owed(store, plan.account_id)
    amount = _paid_by_webhook(store, pm, settings, plan, "pay-ref-cb")
    assert _owed(store, plan.account_id) != before
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.PAID

    body = _returned("evt-cb-1", "chargeback.opened", "pay-ref-cb")  # no amount: all that is left
    report = intake(
        store, pm, settings, [_webhook(body, NOW + dt.timedelta(days=1))], NOW + dt.timedelta(days=1)
    )
    assert (report.payments_reversed, report.processed, report.failures) == (1, 1, ())
    # the invoice owes what it did before the payment; the money is a reversal, not a refund
    assert _owed(store, plan.account_id) == before
    book = store.ledger(plan.account_id)
    payment_id = provider_payment_id("fake-gw", "pay-ref-cb")
    assert book.paid_by(payment_id).is_zero()
    assert book.sum_of(EntryKind.PAYMENT_REVERSED) == amount and book.sum_of(EntryKind.REFUND).is_zero()
    _conserved(store, plan.account_id)
    # the instalment is due again (not yet missed: its due date is ahead), the plan still active
    again = store.get_plan(plan.id)
    assert again.status is PlanStatus.ACTIVE
    assert (again.instalments[0].status, again.instalments[0].paid) == (InstalmentStatus.DUE, None)
    # the audit says what was reversed, with ids and amounts only
    audit = [
        r for r in store.audit_records(subject_id=plan.account_id) if r.kind == "webhook.chargeback.opened"
    ]
    assert len(audit) == 1
    assert dict(audit[0].data) == {
        "event": "evt-cb-1",
        "kind": "chargeback.opened",
        "reference": "pay-ref-cb",
        "payment": payment_id,
        "reversal": "REV-fake-gw-evt-cb-1",
        "amount": str(amount),
        "left": str(Money.zero(amount.currency)),
        "plan": plan.id,
        "instalment": 1,
    }

    # the same chargeback again (a replay) changes nothing
    entries = store.ledger(plan.account_id).entries
    replay = intake(
        store, pm, settings, [_webhook(body, NOW + dt.timedelta(days=1))], NOW + dt.timedelta(days=1)
    )
    assert (replay.duplicates, replay.payments_reversed) == (1, 0)
    assert store.ledger(plan.account_id).entries == entries
    # a later event for money already taken back changes no money either
    late = intake(
        store, pm, settings, [_webhook(_returned("evt-cb-2", "payment.refunded", "pay-ref-cb"))], NOW
    )
    assert (late.processed, late.payments_reversed, late.failures) == (1, 0, ())
    assert store.ledger(plan.account_id).entries == entries
    assert store.verify_audit().ok


def test_a_partial_chargeback_reopens_exactly_its_amount_and_more_than_is_left_is_refused(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    before = _owed(store, plan.account_id)
    amount = _paid_by_webhook(store, pm, settings, plan, "pay-ref-part")
    paid = _owed(store, plan.account_id)
    invoice = plan.invoice_ids[0]
    part = Money.from_minor(amount.minor_units // 3, amount.currency)

    report = intake(
        store, pm, settings, [_webhook(_returned("evt-p1", "chargeback.opened", "pay-ref-part", part))], NOW
    )
    assert report.payments_reversed == 1
    assert _owed(store, plan.account_id)[invoice] == paid[invoice] + part.minor_units
    _conserved(store, plan.account_id)
    # what is left no longer covers the instalment: it is due again
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE

    # more than is left: refused, nothing written, not marked processed (staff see the failure)
    entries = store.ledger(plan.account_id).entries
    too_much = _returned("evt-p2", "chargeback.opened", "pay-ref-part", amount)
    refused = intake(store, pm, settings, [_webhook(too_much)], NOW)
    assert refused.processed == 0 and any("evt-p2" in f or "amount" in f for f in refused.failures)
    assert store.ledger(plan.account_id).entries == entries
    assert not store.was_processed("provider:fake-gw", "evt-p2")

    # the rest: the invoice owes what it did before the payment
    rest = amount - part
    intake(store, pm, settings, [_webhook(_returned("evt-p3", "payment.failed", "pay-ref-part", rest))], NOW)
    assert _owed(store, plan.account_id) == before
    _conserved(store, plan.account_id)


def test_a_failed_payment_never_posted_changes_no_money(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw", "pay-ref-nf", plan.account_id, provider_payment_id("fake-gw", "pay-ref-nf"), plan.id, 1
        )
    )
    entries = store.ledger(plan.account_id).entries
    amount = plan.instalments[0].amount
    report = intake(
        store, pm, settings, [_webhook(_returned("evt-nf", "payment.failed", "pay-ref-nf", amount))], NOW
    )
    assert (report.processed, report.payments_reversed, report.failures) == (1, 0, ())
    assert store.ledger(plan.account_id).entries == entries
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE
    audit = [r for r in store.audit_records(subject_id=plan.account_id) if r.kind == "webhook.payment.failed"]
    assert [dict(r.data).get("posted") for r in audit] == [False]


def test_a_returned_direct_debit_of_a_run_charge_reopens_the_completed_plan_and_grace_decides_missed(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    # a one-instalment plan charged by the run: paid, so the plan is completed
    plan = _plan_with_mandate(store, first_due=NOW.date())
    plan = attrs.evolve(plan, instalments=build_schedule(plan.total, 1, first_due=NOW.date()))
    store.put_plan(plan)
    before = _owed(store, plan.account_id)
    assert execute_run(store, NOW, pm, settings).charged == 1
    assert store.get_plan(plan.id).status is PlanStatus.COMPLETED
    reference = store.outbox_get(f"charge:{plan.id}#1").result["reference"]  # type: ignore[index]

    # the bank returns the debit four days later
    later = NOW + dt.timedelta(days=4)
    body = _returned("evt-ret", "payment.failed", reference, plan.total)
    assert intake(store, pm, settings, [_webhook(body, later)], later).payments_reversed == 1
    assert _owed(store, plan.account_id) == before
    _conserved(store, plan.account_id)
    back = store.get_plan(plan.id)
    assert back.status is PlanStatus.ACTIVE and back.instalments[0].status is InstalmentStatus.DUE

    # the run does not charge the returned instalment again on its own (the charge key is done);
    # once the pack's grace after the due date is over, the instalment is missed
    dry = plan_run(store, later, settings)
    assert dry.missed == ()
    run = execute_run(store, NOW + dt.timedelta(days=30), pm, settings)
    assert run.instalments_missed == 1 and len(FakeGateway.calls) == 1
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.MISSED


# -- plugins hear of reversals; the report shows them -----------------------------------------------


class Listener:
    """Implements ``carecollect_on_payment_reversed``; checks the reversal is committed when it hears of it."""

    def __init__(self, db: Path, fail: bool = False) -> None:
        self.db = db
        self.fail = fail
        self.calls: list[tuple[PaymentReversal, Event]] = []
        self.reversed_on_disk: list[int] = []

    @hookimpl
    def carecollect_on_payment_reversed(self, reversal: PaymentReversal, event: Event) -> None:
        self.calls.append((reversal, event))
        other = SQLiteStore(self.db)  # a second connection sees only what was committed
        try:
            book = other.ledger(reversal.account_id)
            self.reversed_on_disk.append(book.sum_of(EntryKind.PAYMENT_REVERSED).minor_units)
        finally:
            other.close()
        if self.fail:
            raise RuntimeError("accounting export down for card 4111 1111 1111 1111")


def test_a_plugin_hears_of_a_chargeback_once_and_not_of_its_replay_nor_of_money_never_posted(
    store: SQLiteStore, settings: RunSettings, tmp_path: Path
) -> None:
    listener = Listener(tmp_path / "run.db")
    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin(), listener])
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    amount = _paid_by_webhook(store, pm, settings, plan, "pay-ref-hk")
    assert listener.calls == [], "a payment is not a reversal"

    later = NOW + dt.timedelta(days=1)
    body = _returned("evt-hk-1", "chargeback.opened", "pay-ref-hk")  # no amount: all that is left
    assert intake(store, pm, settings, [_webhook(body, later)], later).payments_reversed == 1
    payment_id = provider_payment_id("fake-gw", "pay-ref-hk")
    [(reversal, event)] = listener.calls
    assert reversal == PaymentReversal(
        "REV-fake-gw-evt-hk-1",
        payment_id,
        plan.account_id,
        amount,
        Money.zero(amount.currency),
        ReversalCause.CHARGEBACK,
        later,
        "fake-gw",
        "evt-hk-1",
    )
    assert (event.type, event.record_id, event.at) == (EventType.LEDGER_POSTED, plan.account_id, later)
    assert (event.detail("kind"), event.detail("amount")) == ("payment_reversed", str(amount))
    assert (event.detail("payment"), event.detail("reason")) == (payment_id, "chargeback")
    assert listener.reversed_on_disk == [amount.minor_units], "broadcast only after the commit"
    assert pm.undelivered() == ()

    # the replay, and a later event for a payment with nothing left: no money moves, nothing is broadcast
    replay = intake(store, pm, settings, [_webhook(body, later)], later)
    rest = intake(
        store, pm, settings, [_webhook(_returned("evt-hk-2", "payment.refunded", "pay-ref-hk"))], NOW
    )
    assert (replay.duplicates, rest.processed, rest.payments_reversed) == (1, 1, 0)
    assert len(listener.calls) == 1

    # a returned debit of a payment that was never posted: no money moves, nothing is broadcast
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw", "pay-ref-np", plan.account_id, provider_payment_id("fake-gw", "pay-ref-np"), plan.id, 2
        )
    )
    failed = _returned("evt-hk-3", "payment.failed", "pay-ref-np", plan.instalments[1].amount)
    assert intake(store, pm, settings, [_webhook(failed)], NOW).processed == 1
    assert len(listener.calls) == 1

    # a partial returned debit of another payment: one call with its amount and what is left
    amount2 = plan.instalments[0].amount
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw", "pay-ref-p2", plan.account_id, provider_payment_id("fake-gw", "pay-ref-p2"), plan.id, 1
        )
    )
    assert (
        intake(store, pm, settings, [_webhook(_paid("evt-p2-pay", "pay-ref-p2", amount2))], NOW).payments == 1
    )
    part = Money.from_minor(amount2.minor_units // 3, amount2.currency)
    intake(store, pm, settings, [_webhook(_returned("evt-hk-4", "payment.failed", "pay-ref-p2", part))], NOW)
    assert len(listener.calls) == 2
    second = listener.calls[1][0]
    assert (second.amount, second.remaining, second.cause) == (
        part,
        amount2 - part,
        ReversalCause.PAYMENT_FAILED,
    )


def test_a_reversal_hook_that_raises_is_reported_and_does_not_undo_the_reversal(
    store: SQLiteStore, settings: RunSettings, tmp_path: Path
) -> None:
    crasher, steady = Listener(tmp_path / "run.db", fail=True), Listener(tmp_path / "run.db")
    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    pm.register(crasher, name="crasher")
    pm.register(steady, name="steady")
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    before = _owed(store, plan.account_id)
    amount = _paid_by_webhook(store, pm, settings, plan, "pay-ref-rs")

    later = NOW + dt.timedelta(days=1)
    body = _returned("evt-rs-1", "chargeback.opened", "pay-ref-rs", amount)
    report = execute_run(store, later, pm, settings, events=[_webhook(body, later)])
    assert report.intake is not None and report.intake.payments_reversed == 1
    assert report.intake.failures == ()
    # the failure is in the run's report, scrubbed; the other plugin heard of it
    [line] = [h for h in report.hook_failures if "carecollect_on_payment_reversed" in h]
    assert line.startswith(f"carecollect_on_payment_reversed ledger.posted {plan.account_id}: ")
    assert "plugin 'crasher' raised RuntimeError" in line and "4111 1111 1111 1111" not in line
    assert len(crasher.calls) == len(steady.calls) == 1
    # the reversal stands: the money is back on the invoice, the instalment is due again
    assert _owed(store, plan.account_id) == before
    assert store.ledger(plan.account_id).sum_of(EntryKind.PAYMENT_REVERSED) == amount
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE
    assert store.was_processed("provider:fake-gw", "evt-rs-1")
    _conserved(store, plan.account_id)
    # delivered again to the plugin that failed only
    crasher.fail = False
    [again] = pm.redeliver()
    assert again.ok and again.delivered == ("crasher",) and again.event == crasher.calls[0][1]
    assert len(crasher.calls) == 2 and len(steady.calls) == 1


def test_collected_is_shown_gross_reversed_and_net_per_currency() -> None:
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    t1 = t0 + dt.timedelta(days=30)

    def e(key: str, kind: EntryKind, amount: str, cur: str, at: dt.datetime, source: str) -> LedgerEntry:
        return LedgerEntry(key, kind, Money(amount, cur), at, "I-1", source, "x")

    entries = [
        e("p1", EntryKind.PATIENT_PAYMENT, "100.00", "EUR", t0, "PAY-1"),
        e("p2a", EntryKind.PATIENT_PAYMENT, "20.01", "EUR", t0 + dt.timedelta(days=1), "PAY-2"),
        e("p2b", EntryKind.PATIENT_PAYMENT, "9.99", "EUR", t0 + dt.timedelta(days=1), "PAY-2"),
        e("p0", EntryKind.PATIENT_PAYMENT, "70.00", "EUR", t0 - dt.timedelta(seconds=1), "PAY-0"),  # before
        e("r1a", EntryKind.PAYMENT_REVERSED, "30.00", "EUR", t0 + dt.timedelta(days=2), "REV-1"),
        e("r1b", EntryKind.PAYMENT_REVERSED, "3.33", "EUR", t0 + dt.timedelta(days=2), "REV-1"),
        e("r0", EntryKind.PAYMENT_REVERSED, "70.00", "EUR", t0 + dt.timedelta(days=3), "REV-0"),  # of PAY-0
        e("r9", EntryKind.PAYMENT_REVERSED, "1.00", "EUR", t1, "REV-9"),  # the end is exclusive
        e(
            "f1", EntryKind.REFUND, "5.00", "EUR", t0 + dt.timedelta(days=2), "RF-1"
        ),  # a refund is not a reversal
        e(
            "n1", EntryKind.PAYMENT_REVERSED, "250", "NOK", t0 + dt.timedelta(days=4), "REV-N"
        ),  # reversals only
        e("u1", EntryKind.PATIENT_PAYMENT, "0.07", "USD", t1 - dt.timedelta(microseconds=1), "PAY-U"),
    ]
    lines = {c.currency: c for c in collected(entries, t0, t1)}
    assert list(lines) == ["EUR", "NOK", "USD"]
    eur, nok, usd = lines["EUR"], lines["NOK"], lines["USD"]
    assert (eur.amount, eur.payments, eur.reversed, eur.reversals, eur.net) == (
        Money("130.00", "EUR"),
        2,
        Money("103.33", "EUR"),
        2,
        Money("26.67", "EUR"),
    )
    assert (nok.amount, nok.payments, nok.reversed, nok.reversals, nok.net) == (
        Money.zero("NOK"),
        0,
        Money("250.00", "NOK"),
        1,
        Money("-250.00", "NOK"),
    )
    assert (usd.amount, usd.reversed, usd.net) == (
        Money("0.07", "USD"),
        Money.zero("USD"),
        Money("0.07", "USD"),
    )
    # a line built without reversals (the old constructor) has none
    assert CollectedLine("EUR", Money("1.00", "EUR"), 1).net == Money("1.00", "EUR")


def test_the_report_shows_a_chargeback_next_to_what_was_collected(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings, tmp_path: Path
) -> None:
    later = NOW + dt.timedelta(days=1)
    as_of = later + dt.timedelta(hours=1)
    base = {c.currency: c for c in report_from_store(store, as_of, days=30).collected}
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    amount = _paid_by_webhook(store, pm, settings, plan, "pay-ref-rp")
    part = Money.from_minor(amount.minor_units // 3, amount.currency)
    body = _returned("evt-rp-1", "chargeback.opened", "pay-ref-rp", part)
    assert intake(store, pm, settings, [_webhook(body, later)], later).payments_reversed == 1

    after = {c.currency: c for c in report_from_store(store, as_of, days=30).collected}
    cur = amount.currency
    old = base.get(cur, CollectedLine(cur, Money.zero(cur), 0))
    line = after[cur]
    assert (line.amount, line.payments) == (old.amount + amount, old.payments + 1)
    assert (line.reversed, line.reversals) == (old.reversed + part, old.reversals + 1)
    assert line.net == old.net + amount - part == line.amount - line.reversed
    assert {c: v for c, v in after.items() if c != cur} == {c: v for c, v in base.items() if c != cur}

    # `carecollect report` prints the same figures
    db = tmp_path / "run.db"
    write_default_config(db)
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    for header in ("collected (gross)", "reversed", "reversals", "net"):
        assert header in result.output
    table = result.output[result.output.index("Collected since") :]
    row = next(r for r in table.splitlines() if r.strip("│ ").startswith(cur))
    cells = [c.strip() for c in row.strip().strip("│").split("│")]
    assert cells == [
        cur,
        str(line.amount),
        str(line.payments),
        str(line.reversed),
        str(line.reversals),
        str(line.net),
    ]


def test_a_chargeback_that_overtakes_its_payment_is_applied_when_the_payment_arrives(
    store: SQLiteStore, settings: RunSettings, tmp_path: Path
) -> None:
    """Providers do not promise order: a chargeback delivered before the success still takes the money back."""
    listener = Listener(tmp_path / "run.db")
    pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin(), listener])
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw",
            "pay-ref-ooo",
            plan.account_id,
            provider_payment_id("fake-gw", "pay-ref-ooo"),
            plan.id,
            1,
        )
    )
    before = _owed(store, plan.account_id)
    amount = plan.instalments[0].amount
    # the chargeback (happened a day after the payment) is delivered first: nothing to take back yet
    cb = _returned("evt-ooo-cb", "chargeback.opened", "pay-ref-ooo", amount)
    first = intake(
        store, pm, settings, [_webhook(cb, NOW + dt.timedelta(days=1))], NOW + dt.timedelta(days=1)
    )
    assert (first.processed, first.payments_reversed) == (1, 0)
    assert _owed(store, plan.account_id) == before
    # then the success: posted and taken back at once, in one unit of work; the plugin hears once
    day = NOW + dt.timedelta(days=1)
    paid = intake(store, pm, settings, [_webhook(_paid("evt-ooo-pay", "pay-ref-ooo", amount), day)], day)
    assert (paid.payments, paid.payments_reversed, paid.failures) == (1, 1, ())
    assert _owed(store, plan.account_id) == before
    book = store.ledger(plan.account_id)
    assert book.paid_by(provider_payment_id("fake-gw", "pay-ref-ooo")).is_zero()
    assert book.sum_of(EntryKind.PAYMENT_REVERSED) == amount
    _conserved(store, plan.account_id)
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.DUE
    assert [(r.id, r.provider_event_id) for r, _ in listener.calls] == [
        ("REV-fake-gw-evt-ooo-cb", "evt-ooo-cb")
    ]
    assert listener.reversed_on_disk == [amount.minor_units]  # committed before the plugin heard
    # replays of either change nothing more
    entries = store.ledger(plan.account_id).entries
    again = intake(
        store,
        pm,
        settings,
        [
            _webhook(cb, NOW + dt.timedelta(days=1)),
            _webhook(_paid("evt-ooo-pay", "pay-ref-ooo", amount), day),
        ],
        NOW + dt.timedelta(days=1),
    )
    assert again.duplicates == 2 and store.ledger(plan.account_id).entries == entries
    assert len(listener.calls) == 1
    assert store.verify_audit().ok


def test_a_failure_before_a_success_is_an_earlier_attempt_and_takes_nothing_back(
    store: SQLiteStore, pm: PluginManager, settings: RunSettings
) -> None:
    """A failed attempt, then the retry that went through (same reference): the money stays paid."""
    plan = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=5))
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw",
            "pay-ref-retry",
            plan.account_id,
            provider_payment_id("fake-gw", "pay-ref-retry"),
            plan.id,
            1,
        )
    )
    amount = plan.instalments[0].amount
    failed = _returned("evt-retry-f", "payment.failed", "pay-ref-retry", amount)
    intake(store, pm, settings, [_webhook(failed, NOW - dt.timedelta(minutes=2))], NOW)
    paid = intake(store, pm, settings, [_webhook(_paid("evt-retry-ok", "pay-ref-retry", amount))], NOW)
    assert (paid.payments, paid.payments_reversed) == (1, 0)
    assert store.ledger(plan.account_id).paid_by(provider_payment_id("fake-gw", "pay-ref-retry")) == amount
    assert store.get_plan(plan.id).instalments[0].status is InstalmentStatus.PAID
    # a failure that happened after the success and was delivered before it does take it back
    plan2 = _plan_with_mandate(store, first_due=NOW.date() + dt.timedelta(days=6))
    store.link_provider_payment(
        ProviderPayment(
            "fake-gw",
            "pay-ref-ret",
            plan2.account_id,
            provider_payment_id("fake-gw", "pay-ref-ret"),
            plan2.id,
            1,
        )
    )
    returned = _returned("evt-ret-f", "payment.failed", "pay-ref-ret", plan2.instalments[0].amount)
    intake(store, pm, settings, [_webhook(returned, NOW + dt.timedelta(days=3))], NOW + dt.timedelta(days=3))
    late = intake(
        store,
        pm,
        settings,
        [
            _webhook(
                _paid("evt-ret-ok", "pay-ref-ret", plan2.instalments[0].amount),
                NOW + dt.timedelta(days=3, minutes=-3),
            )
        ],
        NOW + dt.timedelta(days=3),
    )
    assert (late.payments, late.payments_reversed) == (1, 1)
    assert store.ledger(plan2.account_id).paid_by(provider_payment_id("fake-gw", "pay-ref-ret")).is_zero()
