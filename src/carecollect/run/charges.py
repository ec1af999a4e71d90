"""Instalment charges and agency placements: the run's money-moving calls, through the outbox.

Each is recorded *intended*, performed with the outbox key as the provider's or agency's
idempotency key, then recorded *done* (or failed with a back-off), so a run killed and run again
charges and places nothing twice.
"""

from __future__ import annotations

import datetime as dt

from ..channels import Channel
from ..errors import CareCollectError, DuplicateEntry, StoreUnavailable
from ..ledger import post_payment
from ..payments import (
    Payment,
    PaymentMethod,
)
from ..placements import (
    AgencyPlacement,
    place_account,
)
from ..plans import (
    InstalmentStatus,
    PlanStatus,
    record_instalment_payment,
)
from ..plugins.agencies import Debtor, PlacedInvoice, PlacementRequest
from ..plugins.manager import PluginManager
from ..plugins.providers import Instrument, PaymentProvider
from ..store.base import (
    OutboxStatus,
    ProviderPayment,
    Store,
    next_retry_at,
)
from .decisions import PlannedCharge, PlannedPlacement
from .hooks import deliver_hooks, owe_hook
from .settings import RunSettings

__all__ = [
    "provider_payment_id",
]


def _place(
    store: Store, pm: PluginManager, settings: RunSettings, placement: PlannedPlacement, now: dt.datetime
) -> int:
    """Outbox protocol for one placement; the placement id is the agency's idempotency key.

    The outbox payload names only the agency (the amount may change between a failed attempt
    and its retry); a failure is retried with back-off and never stops the other accounts.
    """
    key = f"place:{placement.account_id}"
    assert settings.agency is not None
    try:
        with store.transaction():
            item = store.outbox_intend(
                key, "placement", {"agency": settings.agency}, at=now, account_id=placement.account_id
            )
    except DuplicateEntry:  # recorded by an earlier version with another payload
        item = store.outbox_get(key)
    if item.status is OutboxStatus.DONE:
        return 0
    if item.next_retry_at is not None and item.next_retry_at > now:
        return 0
    record = AgencyPlacement(
        f"PLC-{placement.account_id}",
        placement.account_id,
        settings.agency,
        placement.amount,
        invoice_ids=placement.invoice_ids,
    )
    try:
        connector = pm.agency_connector(settings.agency).create(dict(settings.agency_config))
        receipt = connector.place(_placement_request(store, record))
    except StoreUnavailable:  # the store's server went away: not the placement's failure; the run stops
        raise
    except CareCollectError as exc:
        _failed_placement(store, key, now, f"{type(exc).__name__}")
        return 0
    except OSError as exc:
        _failed_placement(store, key, now, f"transport: {type(exc).__name__}")
        return 0
    if not receipt.accepted:
        _failed_placement(store, key, now, "agency refused the placement")
        return 0
    record, event = place_account(record, at=now)
    with store.transaction():
        store.put_placement(record)
        store.outbox_done(key, at=now, result={"placement": record.id})
        store.audit_append(
            "placement",
            placement.account_id,
            {"agency": settings.agency, "amount": str(placement.amount)},
            at=now,
        )
        owed = owe_hook(store, pm, "carecollect_on_account_placed", now, placement=record, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return 1


def _provider(
    pm: PluginManager, settings: RunSettings, name: str, cache: dict[str, PaymentProvider]
) -> PaymentProvider:
    if name not in cache:
        cache[name] = pm.payment_provider(name).create(dict(settings.payment_providers.get(name, {})))
    return cache[name]


def provider_payment_id(provider: str, reference: str) -> str:
    """The ledger payment id of a provider's payment reference (a webhook and a charge agree on it)."""
    return f"PAY-{provider}-{reference}"


def _charge(
    store: Store,
    pm: PluginManager,
    settings: RunSettings,
    providers: dict[str, PaymentProvider],
    charge: PlannedCharge,
    now: dt.datetime,
) -> str:
    """Outbox protocol for one instalment charge: intended, charged with the key, posted and done.

    A run killed between the provider's answer and the ``done`` record charges again with the
    same idempotency key; the provider answers with the first result, and the ledger posts
    the payment once (its id derives from the provider's reference).
    """
    with store.transaction():
        item = store.outbox_intend(
            charge.key,
            "charge",
            {"plan": charge.plan_id, "instalment": charge.number, "amount": str(charge.amount)},
            at=now,
            account_id=charge.account_id,
        )
    if item.status is OutboxStatus.DONE:
        return "skipped"
    if item.status is OutboxStatus.FAILED and item.next_retry_at is None:
        return "gave_up"
    if item.next_retry_at is not None and item.next_retry_at > now:
        return "deferred"
    # re-read: a payment, a dispute or a revoked mandate that arrived since planning wins
    fresh = store.account_snapshot(charge.account_id)
    plan = next((p for p in fresh.plans if p.id == charge.plan_id), None)
    inst = next((i for i in plan.instalments if i.number == charge.number), None) if plan else None
    mandate = next((m for m in fresh.mandates if m.plan_id == charge.plan_id), None)
    blocking = []
    if plan is None or plan.status is not PlanStatus.ACTIVE:
        blocking.append("plan.not_active")
    if inst is None or inst.status is not InstalmentStatus.DUE:
        blocking.append("instalment.not_due")
    if mandate is None or (mandate.revoked_at is not None and mandate.revoked_at <= now):
        blocking.append("mandate.revoked")
    if plan is not None and any(
        d.is_open and (d.invoice_id is None or d.invoice_id in plan.invoice_ids) for d in fresh.disputes
    ):
        blocking.append("dispute.open")
    if blocking or plan is None or inst is None or mandate is None:
        with store.transaction():
            store.outbox_failed(
                charge.key,
                at=now,
                error="suppressed: " + ",".join(blocking),
                retry_at=now + dt.timedelta(days=1),
            )
            store.audit_append(
                "charge.suppressed", charge.account_id, {"key": charge.key, "rules": blocking}, at=now
            )
        return "suppressed"
    try:
        provider = _provider(pm, settings, mandate.provider, providers)
        result = provider.purchase(
            inst.amount,
            Instrument(PaymentMethod(mandate.method), mandate.reference),
            idempotency_key=charge.key,
            account_id=charge.account_id,
        )
    except CareCollectError as exc:
        return _charge_failed(store, settings, charge, item.attempts, now, type(exc).__name__)
    except OSError as exc:
        return _charge_failed(store, settings, charge, item.attempts, now, f"transport: {type(exc).__name__}")
    if not result.success:
        code = result.error_code.value if result.error_code is not None else "failed"
        return _charge_failed(store, settings, charge, item.attempts, now, f"provider said {code}")
    reference = result.reference or charge.key
    payment = Payment(
        provider_payment_id(mandate.provider, reference),
        charge.account_id,
        inst.amount,
        PaymentMethod(mandate.method),
        now,
        provider_reference=reference,
    )
    with store.transaction():
        store.link_provider_payment(
            ProviderPayment(mandate.provider, reference, charge.account_id, payment.id, plan.id, inst.number)
        )
        book = store.ledger(charge.account_id)
        order = [i for i in plan.invoice_ids if i in book.invoice_ids()]  # the plan's invoices first
        new_book, event = post_payment(
            book, payment, order=order + [i for i in book.open_invoices() if i not in order]
        )
        store.append_ledger(charge.account_id, new_book.entries[len(book.entries) :])
        paid_plan, _ = record_instalment_payment(plan, inst.number, inst.amount, at=now)
        store.put_plan(paid_plan)
        store.outbox_done(charge.key, at=now, result={"reference": reference, "payment": payment.id})
        store.audit_append(
            "charge",
            charge.account_id,
            {"key": charge.key, "amount": str(inst.amount), "payment": payment.id},
            at=now,
        )
        owed = (
            ()
            if event is None
            else (owe_hook(store, pm, "carecollect_on_payment_received", now, payment=payment, event=event),)
        )
    deliver_hooks(store, pm, owed, now)
    return "charged"


def _charge_failed(
    store: Store, settings: RunSettings, charge: PlannedCharge, attempts: int, now: dt.datetime, why: str
) -> str:
    """A declined or failed charge: retried with back-off (the plan's grace period still runs)."""
    with store.transaction():
        retry = next_retry_at(attempts + 1, now) if attempts + 1 < settings.max_attempts else None
        store.outbox_failed(charge.key, at=now, error=why[:300], retry_at=retry, give_up=retry is None)
        store.audit_append(
            "charge.failed", charge.account_id, {"key": charge.key, "error": why[:300]}, at=now
        )
    return "charge_failed"


def _failed_placement(store: Store, key: str, now: dt.datetime, why: str) -> None:
    with store.transaction():
        item = store.outbox_get(key)
        store.outbox_failed(key, at=now, error=why, retry_at=next_retry_at(item.attempts + 1, now))
        store.audit_append("placement.failed", item.account_id or key, {"key": key, "error": why}, at=now)


def _placement_request(store: Store, record: AgencyPlacement) -> PlacementRequest:
    """Only what the agency needs: the debtor's contact data and the open invoices, no clinical detail."""
    snap = store.account_snapshot(record.account_id)
    patient = snap.patient
    letter = patient.points(Channel.LETTER)
    email = patient.points(Channel.EMAIL)
    phone = patient.points(Channel.PHONE) or patient.points(Channel.SMS)
    debtor = Debtor(
        id=snap.account.payer_id,
        name=patient.name or snap.account.payer_id,
        postal_address=tuple(letter[0].address.split("\n")) if letter else (),
        country=(patient.country or "US").upper(),
        language=patient.preferred_language,
        email=email[0].address if email else None,
        phone=phone[0].address if phone else None,
    )
    invoices = tuple(
        PlacedInvoice.from_invoice(i, open_balance=snap.ledger.invoice_balance(i.id))
        for i in snap.invoices
        if i.id in record.invoice_ids
    )
    return PlacementRequest(
        record.id,
        record.account_id,
        snap.account.creditor_id,
        debtor,
        invoices,
        jurisdiction=snap.account.jurisdiction,
    )
