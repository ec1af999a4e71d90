"""Intake of disputes: a dispute opened or resolved from an inbound event, and agency recalls.

A dispute opened on a placed invoice recalls it from the agency; a recall the agency did not
take is tried again at the next intake.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..contact_centre import meet_in_dispute
from ..contact_centre.records import ContactRecord
from ..disputes import (
    DisputeReason,
    EscalationLevel,
    Resolution,
    ResolutionKind,
    escalate_dispute,
    withdraw_dispute,
)
from ..errors import CareCollectError, DuplicateEntry, StoreUnavailable
from ..ledger import post_adjustment
from ..money import Money
from ..payments import (
    Adjustment,
    AdjustmentKind,
)
from ..placements import (
    PlacementStatus,
    recall_placement,
)
from ..plugins.manager import PluginManager
from ..relief.disputes import DisputeProcedure, open_dispute, resolve_dispute
from ..store.base import (
    OutboxStatus,
    Store,
    next_retry_at,
)
from ..timekeeping import require_aware
from .hooks import deliver_hooks, owe_hook
from .inbound import EventTaken, InboundEvent, Taken
from .settings import RunSettings

__all__: list[str] = []


def _meet_disputes(store: Store, contacts: Iterable[ContactRecord], now: dt.datetime) -> int:
    """Store, on each open dispute, that the contact records show its patient was reached."""
    grouped: dict[str, list[ContactRecord]] = {}
    for record in contacts:
        grouped.setdefault(record.account_id, []).append(record)
    met = 0
    for account_id, records in grouped.items():
        try:
            disputes = store.account_snapshot(account_id).disputes
        except StoreUnavailable:  # the store's server went away: the run stops
            raise
        except CareCollectError:  # a contact about an account this store does not hold
            continue
        for dispute in disputes:
            new, event = meet_in_dispute(dispute, records)
            if event is None:
                continue
            with store.transaction():
                store.put_dispute(new)
                store.audit_append(
                    "dispute.patient_met",
                    account_id,
                    {
                        "dispute": dispute.id,
                        "channel": event.detail("channel"),
                        "met_at": event.at.isoformat(),
                    },
                    at=now,
                )
            met += 1
    return met


def _dispute_body(ev: InboundEvent) -> dict[str, Any]:
    data = json.loads(ev.body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a dispute event is a JSON object")
    return data


def _instant(data: Mapping[str, Any], key: str, now: dt.datetime) -> dt.datetime:
    value = data.get(key)
    if value is None:
        return now
    at = dt.datetime.fromisoformat(str(value))
    require_aware(at, "dispute event", key)
    return at


def _take_dispute(
    store: Store, pm: PluginManager, settings: RunSettings, ev: InboundEvent, now: dt.datetime
) -> EventTaken:
    """Take one dispute event; returns what it did: :attr:`~Taken.OPENED` (with the placements
    recalled), :attr:`~Taken.ESCALATED`, :attr:`~Taken.RESOLVED` (a withdrawal too) or
    :attr:`~Taken.DUPLICATE`.

    A resolution goes through :func:`carecollect.relief.disputes.resolve_dispute`: the authority of
    the dispute's level under :attr:`~carecollect.run.settings.RunSettings.dispute_procedure` is checked before anything is
    written; a refused one raises (reported by the intake) and leaves the dispute open and the
    ledger as it was.  ``"escalate"`` hands the dispute to a higher level (``"level"``: an
    :class:`~carecollect.disputes.EscalationLevel` name).
    """
    data = _dispute_body(ev)
    action = str(data["action"])
    dispute_id = str(data["dispute_id"])
    source = f"disputes:{ev.plugin}"
    if action not in ("open", "resolve", "withdraw", "escalate"):
        raise ValueError(f"unknown dispute action {action!r}")
    key = f"{action}:{dispute_id}" if action != "escalate" else f"escalate:{dispute_id}:{data.get('level')}"
    if store.was_processed(source, key):
        return EventTaken(Taken.DUPLICATE)
    at = _instant(data, "at", now)
    if action == "open":
        snap = store.account_snapshot(str(data["account_id"]))
        invoice_id = data.get("invoice_id")
        dispute, event, respond_by = open_dispute(
            dispute_id,
            snap.account.id,
            None if invoice_id is None else str(invoice_id),
            DisputeReason(data["reason"]),
            at=at,
            pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
            in_writing=bool(data.get("in_writing", False)),
        )
        with store.transaction():
            store.put_dispute(dispute)
            store.mark_processed(source, key, at=now)
            store.audit_append(
                "dispute.opened",
                snap.account.id,
                {
                    "dispute": dispute.id,
                    "invoice_id": dispute.invoice_id,
                    "reason": dispute.reason.value,
                    "respond_by": respond_by.isoformat(),
                },
                at=now,
            )
            owed = owe_hook(store, pm, "carecollect_on_dispute_opened", now, dispute=dispute, event=event)
        deliver_hooks(store, pm, (owed,), now)
        recalled = 0
        if settings.agency:
            for placement in snap.placements:
                if placement.status is PlacementStatus.PLACED and (
                    dispute.invoice_id is None or dispute.invoice_id in placement.invoice_ids
                ):
                    recalled += _recall(store, pm, settings, placement.id, f"dispute {dispute.id}", now)
        return EventTaken(Taken.OPENED, recalled=recalled)
    dispute = store.get_dispute(dispute_id)
    adjustment = None
    if action == "withdraw":
        new, event = withdraw_dispute(dispute, at=at)
    elif action == "escalate":
        level = EscalationLevel[str(data["level"])]
        new, event = escalate_dispute(dispute, level, at=at)
    else:
        kind = ResolutionKind(data["kind"])
        snap = store.account_snapshot(dispute.account_id)
        amount = (
            Money.of(str(data["amount"]), snap.account.currency) if data.get("amount") is not None else None
        )
        # a reduction on what remains after insurance is an AfterInsuranceOffer (Python API);
        # taken in here, a resolution takes effect now, so none is written off before the insurer pays
        resolution = Resolution(kind, amount=amount, approved_by=data.get("approved_by"))
        if amount is not None and dispute.invoice_id is None:
            raise ValueError(f"dispute {dispute.id} covers the whole account: name the invoice to adjust")
        book = snap.ledger
        balance = book.invoice_balance(dispute.invoice_id) if dispute.invoice_id is not None else book.balance
        procedure = settings.dispute_procedure or DisputeProcedure.default(snap.account.currency)
        new, event, _ = resolve_dispute(
            dispute,
            resolution,
            balance=balance,
            at=at,
            pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
            procedure=procedure,
            invoice=store.get_invoice(dispute.invoice_id) if dispute.invoice_id is not None else None,
        )
        if amount is not None and dispute.invoice_id is not None:
            adjustment = Adjustment(
                f"ADJ-{dispute.id}",
                dispute.account_id,
                dispute.invoice_id,
                amount,
                AdjustmentKind(kind.value),
                f"DISPUTE-{dispute.reason.value}",
                str(data.get("approved_by") or ev.plugin),
                at,
            )
    with store.transaction():
        if adjustment is not None:
            book = store.ledger(dispute.account_id)
            new_book, _ = post_adjustment(book, adjustment)
            store.append_ledger(dispute.account_id, new_book.entries[len(book.entries) :])
        store.put_dispute(new)
        store.mark_processed(source, key, at=now)
        store.audit_append(
            f"dispute.{new.status.value}" if action != "escalate" else "dispute.escalated",
            dispute.account_id,
            {"dispute": dispute.id, "event": event.type.value},
            at=now,
        )
        if action == "escalate":
            return EventTaken(Taken.ESCALATED)
        owed = owe_hook(store, pm, "carecollect_on_dispute_resolved", now, dispute=new, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return EventTaken(Taken.RESOLVED)


def _recall(
    store: Store, pm: PluginManager, settings: RunSettings, placement_id: str, reason: str, now: dt.datetime
) -> int:
    """Outbox protocol for one recall: intended, sent to the agency, recorded; 1 when recalled now."""
    key = f"recall:{placement_id}"
    assert settings.agency is not None
    placement = store.get_placement(placement_id)
    try:
        with store.transaction():
            item = store.outbox_intend(
                key,
                "recall",
                {"placement": placement_id, "reason": reason},
                at=now,
                account_id=placement.account_id,
            )
    except DuplicateEntry:  # an earlier recall of this placement (its reason stands)
        item = store.outbox_get(key)
    if item.status is OutboxStatus.DONE or placement.status is not PlacementStatus.PLACED:
        return 0
    if item.next_retry_at is not None and item.next_retry_at > now:
        return 0
    why = str(item.payload.get("reason", reason))
    try:
        connector = pm.agency_connector(placement.agency).create(dict(settings.agency_config))
        receipt = connector.recall(placement.id, reason=why, at=now)
        refused = None if receipt.accepted else "agency refused the recall"
    except CareCollectError as exc:
        refused = type(exc).__name__
    except OSError as exc:
        refused = f"transport: {type(exc).__name__}"
    if refused is not None:
        with store.transaction():
            store.outbox_failed(key, at=now, error=refused, retry_at=next_retry_at(item.attempts + 1, now))
            store.audit_append("recall.failed", placement.account_id, {"key": key, "error": refused}, at=now)
        return 0
    recalled, event = recall_placement(placement, at=now, reason=why)
    with store.transaction():
        store.put_placement(recalled)
        store.outbox_done(key, at=now, result={"placement": placement.id})
        store.audit_append("recall", placement.account_id, {"placement": placement.id, "reason": why}, at=now)
        owed = owe_hook(store, pm, "carecollect_on_account_recalled", now, placement=recalled, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return 1


def _retry_recalls(
    store: Store, pm: PluginManager, settings: RunSettings, now: dt.datetime, failures: list[str]
) -> int:
    """Recalls that failed on an earlier run and whose back-off has passed."""
    done = 0
    for item in store.outbox_due(now, limit=100_000):
        if item.kind == "recall":
            try:
                done += _recall(store, pm, settings, str(item.payload["placement"]), "", now)
            except StoreUnavailable:
                raise
            except CareCollectError as exc:
                failures.append(f"recall {item.key}: {type(exc).__name__}: {exc}")
    return done
