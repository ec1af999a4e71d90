"""Intake of payments: provider webhooks and agency or insurer remittances.

A payment is posted to the ledger and to the plan's instalments; a reversal (refund, chargeback,
failed debit) reverses the linked payment and reopens the invoice; a revoked mandate stops
charges.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..events import Event
from ..invoices import InvoiceStatus, reopen_invoice
from ..ledger import EntryKind, post_payment, reverse_payment
from ..money import Money
from ..payments import (
    Payment,
    PaymentMethod,
    PaymentReversal,
    PaymentSource,
    ReversalCause,
)
from ..placements import (
    Remittance,
    record_remittance,
)
from ..plans import (
    InstalmentStatus,
    PlanStatus,
    record_instalment_payment,
    reverse_instalment_payment,
)
from ..plugins.manager import PluginManager
from ..plugins.providers import PaymentProvider, WebhookEvent, WebhookKind
from ..store.base import (
    ProviderPayment,
    Store,
)
from .charges import _provider
from .hooks import deliver_hooks, owe_hook
from .inbound import EventTaken, InboundEvent, Taken
from .settings import RunSettings

__all__: list[str] = []


def _take_payment_webhook(
    store: Store,
    pm: PluginManager,
    settings: RunSettings,
    ev: InboundEvent,
    providers: dict[str, PaymentProvider],
    now: dt.datetime,
) -> EventTaken:
    """Take one payment webhook; returns what it did: a payment :attr:`~Taken.POSTED` (with the
    failures, chargebacks or refunds of it that had arrived first, taken back with it), a payment
    :attr:`~Taken.REVERSED`, a mandate :attr:`~Taken.REVOKED`, :attr:`~Taken.RECORDED`,
    :attr:`~Taken.DUPLICATE` or :attr:`~Taken.UNMATCHED`."""
    provider = _provider(pm, settings, ev.plugin, providers)
    # raises WebhookError when refused; an inbox event is checked as of when it was received
    event = provider.parse_webhook(dict(ev.headers), ev.body, now=ev.received_at or now)
    source = f"provider:{ev.plugin}"
    if store.was_processed(source, event.event_id):
        return EventTaken(Taken.DUPLICATE)
    link = store.provider_payment(ev.plugin, event.reference) if event.reference else None
    subject = link.account_id if link else source
    record: dict[str, Any] = {"event": event.event_id, "kind": event.kind.value, "reference": event.reference}
    posted: tuple[Payment, Event | None] | None = None
    reversals: list[tuple[PaymentReversal, Event]] = []
    outcome = EventTaken(Taken.RECORDED)
    with store.transaction():
        if event.kind is WebhookKind.PAYMENT_SUCCEEDED:
            if link is None:
                return EventTaken(
                    Taken.UNMATCHED,
                    why=f"no account is linked to reference {event.reference!r} (event {event.event_id})",
                )
            book = store.ledger(link.account_id)
            already = any(e.source_id == link.payment_id for e in book.entries)
            if not already:
                if event.amount is None:
                    return EventTaken(Taken.UNMATCHED, why=f"event {event.event_id} carries no amount")
                method = str(event.raw.get("method", PaymentMethod.CARD.value))
                payment = Payment(
                    link.payment_id,
                    link.account_id,
                    event.amount,
                    PaymentMethod(method)
                    if method in PaymentMethod._value2member_map_
                    else PaymentMethod.CARD,
                    event.occurred_at,
                    provider_reference=event.reference,
                )
                new_book, paid = post_payment(book, payment)
                store.append_ledger(link.account_id, new_book.entries[len(book.entries) :])
                posted = (payment, paid)
                if link.plan_id is not None and link.instalment is not None:
                    plan = store.get_plan(link.plan_id)
                    inst = next((i for i in plan.instalments if i.number == link.instalment), None)
                    if (
                        plan.status.current
                        and inst is not None
                        and inst.status is not InstalmentStatus.PAID
                        and event.amount >= inst.amount
                    ):
                        plan, _ = record_instalment_payment(
                            plan, inst.number, event.amount, at=event.occurred_at
                        )
                        store.put_plan(plan)
                # a failure, chargeback or refund of this payment that arrived before it
                for late in _overtaken_reversals(store, link, event):
                    _, reversal = _reverse_linked_payment(store, ev.plugin, link, late)
                    if reversal is not None:
                        reversals.append(reversal)
                        record.setdefault("reversed_by", []).append(late.event_id)
            record["payment"] = link.payment_id
            record["posted"] = not already
            if not already:
                outcome = EventTaken(Taken.POSTED, reversed_too=len(reversals))
        elif event.kind in _REVERSAL_CAUSES and link is not None:
            record["payment"] = link.payment_id
            taken, reversal = _reverse_linked_payment(store, ev.plugin, link, event)
            record.update(taken)
            if taken.get("posted") is False:
                # it may have overtaken the success (providers do not promise order): kept, so a
                # success that arrives later is taken back at once (see _overtaken_reversals)
                record |= {"pending": True, "occurred_at": event.occurred_at.isoformat()}
                if event.amount is not None:
                    record |= {"amount_minor": event.amount.minor_units, "currency": event.amount.currency}
            if reversal is not None:
                reversals.append(reversal)
            if reversal is not None:
                outcome = EventTaken(Taken.REVERSED)
        elif event.kind is WebhookKind.MANDATE_REVOKED and event.reference:
            mandate = store.revoke_mandate(ev.plugin, event.reference, at=event.occurred_at)
            if mandate is not None:
                subject = mandate.account_id
                record["plan"] = mandate.plan_id
                outcome = EventTaken(Taken.REVOKED)
        store.mark_processed(source, event.event_id, at=now)
        store.audit_append(f"webhook.{event.kind.value}", subject, record, at=now)
        owed = []
        if posted is not None and posted[1] is not None:
            owed.append(
                owe_hook(
                    store, pm, "carecollect_on_payment_received", now, payment=posted[0], event=posted[1]
                )
            )
        for taken_back, reversed_event in reversals:  # a replay returned DUPLICATE above: owes nothing
            owed.append(
                owe_hook(
                    store,
                    pm,
                    "carecollect_on_payment_reversed",
                    now,
                    reversal=taken_back,
                    event=reversed_event,
                )
            )
    deliver_hooks(store, pm, owed, now)
    return outcome


def _overtaken_reversals(store: Store, link: ProviderPayment, success: WebhookEvent) -> list[WebhookEvent]:
    """The failures, chargebacks and refunds of ``link``'s payment that arrived before its success.

    Read back from the audit log, where intake kept them (``pending``) because there was nothing
    posted to take back yet; oldest first. A chargeback or a refund always comes after the money,
    so it applies; a failure only if it happened after the success (one before it was an earlier
    attempt that failed, and the payment then went through). Each is taken back under its own
    event id (``REV-<plugin>-<event>``), so it applies once.
    """
    found: list[WebhookEvent] = []
    kinds = [f"webhook.{k.value}" for k in _REVERSAL_CAUSES]
    for r in store.audit_records(subject_id=link.account_id, kinds=kinds):
        d = r.data
        if not (d.get("pending") and d.get("payment") == link.payment_id):
            continue
        kind = WebhookKind(d["kind"])
        at = dt.datetime.fromisoformat(d["occurred_at"])
        if kind is WebhookKind.PAYMENT_FAILED and at <= success.occurred_at:
            continue
        amount = Money.from_minor(d["amount_minor"], d["currency"]) if "amount_minor" in d else None
        found.append(WebhookEvent(d["event"], kind, d.get("reference"), at, amount))
    return sorted(found, key=lambda e: e.occurred_at)


#: Webhook kinds that take back money already posted, and the cause each leaves on the ledger.
_REVERSAL_CAUSES = {
    WebhookKind.PAYMENT_FAILED: ReversalCause.PAYMENT_FAILED,
    WebhookKind.CHARGEBACK_OPENED: ReversalCause.CHARGEBACK,
    WebhookKind.REFUNDED: ReversalCause.PROVIDER_REFUND,
}


def _reverse_linked_payment(
    store: Store, plugin: str, link: ProviderPayment, event: WebhookEvent
) -> tuple[dict[str, Any], tuple[PaymentReversal, Event] | None]:
    """Take back the linked payment in the ledger, reopen what it paid.

    Runs inside the caller's transaction. Returns the audit details (ids,
    amounts) and, when money went back, the reversal and its ledger event to
    broadcast once the transaction commits. A payment never posted, or with
    nothing left, changes nothing (``{"posted": False}`` or ``{"left": "..."}``, ``None``).
    """
    book = store.ledger(link.account_id)
    if not any(e.source_id == link.payment_id and e.kind is EntryKind.PATIENT_PAYMENT for e in book.entries):
        return {"posted": False}, None
    left = book.paid_by(link.payment_id)
    if not left.is_positive():
        return {"left": str(left)}, None
    amount = event.amount if event.amount is not None else left
    cause = _REVERSAL_CAUSES[event.kind]
    reason = cause.value
    reversal_id = f"REV-{plugin}-{event.event_id}"
    new_book, ledger_event = reverse_payment(
        book,
        reversal_id=reversal_id,
        payment_id=link.payment_id,
        amount=amount,
        at=event.occurred_at,
        reason=reason,
    )
    added = new_book.entries[len(book.entries) :]
    store.append_ledger(link.account_id, added)
    remaining = new_book.paid_by(link.payment_id)
    out: dict[str, Any] = {
        "reversal": reversal_id,
        "amount": str(amount),
        "left": str(remaining),
    }
    reversal = PaymentReversal(
        reversal_id,
        link.payment_id,
        link.account_id,
        amount,
        remaining,
        cause,
        event.occurred_at,
        plugin,
        event.event_id,
    )
    broadcast = (reversal, ledger_event) if ledger_event is not None else None
    reopened = []
    for invoice_id in sorted({e.invoice_id for e in added if e.invoice_id is not None}):
        invoice = store.get_invoice(invoice_id)
        if invoice.status is InvoiceStatus.PAID and new_book.invoice_balance(invoice_id).is_positive():
            invoice, _ = reopen_invoice(invoice, at=event.occurred_at)
            store.put_invoice(invoice)
            reopened.append(invoice_id)
    if reopened:
        out["invoices_reopened"] = reopened
    if link.plan_id is not None and link.instalment is not None:
        plan = store.get_plan(link.plan_id)
        inst = next((i for i in plan.instalments if i.number == link.instalment), None)
        # the payment paid the instalment if it covered it; undo that once it no longer does
        if (
            inst is not None
            and inst.status is InstalmentStatus.PAID
            and plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.COMPLETED)
            and left >= inst.amount
            and new_book.paid_by(link.payment_id) < inst.amount
        ):
            plan, _ = reverse_instalment_payment(plan, inst.number, at=event.occurred_at, reason=reason)
            store.put_plan(plan)
            out["plan"] = plan.id
            out["instalment"] = inst.number
    return out, broadcast


def _take_remittance(
    store: Store, pm: PluginManager, agency: str, placement_id: str, rem: Remittance, now: dt.datetime
) -> bool:
    """Record one remittance on the placement and post it to the ledger, once."""
    with store.transaction():
        if not store.mark_processed(f"agency:{agency}", rem.id, at=now):
            return False
        placement = store.get_placement(placement_id)
        placement, _ = record_remittance(placement, rem)
        store.put_placement(placement)
        payment = Payment(
            f"REM-{rem.id}",
            placement.account_id,
            rem.amount,
            PaymentMethod.BANK_TRANSFER,
            rem.collected_at,
            source=PaymentSource.AGENCY,
        )
        book = store.ledger(placement.account_id)
        new_book, event = post_payment(book, payment)
        store.append_ledger(placement.account_id, new_book.entries[len(book.entries) :])
        store.audit_append(
            "remittance", placement.account_id, {"remittance": rem.id, "amount": str(rem.amount)}, at=now
        )
        owed = (
            ()
            if event is None
            else (owe_hook(store, pm, "carecollect_on_payment_received", now, payment=payment, event=event),)
        )
    deliver_hooks(store, pm, owed, now)
    return True
