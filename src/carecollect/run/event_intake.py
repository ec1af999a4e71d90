"""Intake: what came back since the last run, taken in once.

:func:`intake` takes payment provider webhooks (payments posted to the ledger and plan
instalments; a revoked mandate stops charges), delivery reports (a hard bounce marks the contact
point undeliverable), inbound replies (a ``STOP`` is an opt-out), disputes, agency status
updates and remittances. Every event has an id, and an id already processed changes nothing.
Payments live in :mod:`carecollect.run.payment_intake`, disputes in
:mod:`carecollect.run.dispute_intake`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator

from ..contact_centre.records import ContactRecord
from ..disputes import DisputeReason
from ..errors import CareCollectError, StoreUnavailable
from ..events import Event, EventType
from ..outreach import AttemptOutcome, ContactAttempt, OutreachStep
from ..patients import mark_undeliverable, opt_out
from ..placements import (
    PlacementStatus,
    recall_placement,
    return_placement,
)
from ..plugins.agencies import AgencyAccountStatus, AgencyStatusUpdate
from ..plugins.manager import PluginManager
from ..plugins.messaging import DeliveryReport, DeliveryState, MessageChannel
from ..plugins.providers import PaymentProvider
from ..policy.governor import UNDELIVERABLE_RULE
from ..relief.disputes import open_dispute
from ..store.base import (
    NotFound,
    Store,
)
from ..timekeeping import require_aware
from .dispute_intake import _meet_disputes, _retry_recalls, _take_dispute
from .hooks import OwedHookEvent, deliver_hooks, owe_hook
from .inbound import INBOX_MAX_ATTEMPTS, EventTaken, InboundEvent, InboundKind, IntakeReport, Taken
from .payment_intake import _take_payment_webhook, _take_remittance
from .sending import _address_digest, _channel_instance
from .settings import RunSettings

__all__ = [
    "intake",
]


def intake(
    store: Store,
    pm: PluginManager,
    settings: RunSettings,
    events: Iterable[InboundEvent],
    now: dt.datetime,
    *,
    contacts: Iterable[ContactRecord] = (),
    poll_agency: bool = True,
) -> IntakeReport:
    """Take in payment webhooks, delivery reports, replies, disputes and remittances; each event id once.

    The ``events`` given are taken first, then the events the store's inbox holds
    (:meth:`~carecollect.store.base.Store.inbox_pending`: what the patient pages' webhook door
    received over HTTP), each marked taken once handled. ``poll_agency=False`` skips retrying
    recalls and reading the agency's remittances and status updates (the patient pages take in
    their inbox that way after each event, and leave the agency to the run).

    An inbound ``STOP`` (in any of the supported languages) becomes an opt-out on
    the matching contact point at once. A payment webhook is verified by its
    provider plugin (a refused one is listed in the failures and records
    nothing); a succeeded payment whose reference the store knows
    (:meth:`~carecollect.store.base.Store.link_provider_payment`: the run links
    its instalment charges, a payment page links what it creates) is posted to
    the ledger once and pays its plan instalment. An unknown reference is listed
    in the failures and not marked processed, so the provider's redelivery is
    taken once the link exists.

    A failed payment (a direct debit returned after it was reported succeeded),
    an opened chargeback or a refund the provider made, whose reference links to
    a payment on the ledger, takes that payment back
    (:func:`~carecollect.ledger.reverse_payment`: the event's amount, or all
    that is left of the payment), reopens an invoice marked paid whose balance
    is owed again, and puts the linked plan instalment back to due when what is
    left of the payment no longer covers it
    (:func:`~carecollect.plans.reverse_instalment_payment`), all in the unit of
    work that marks the event processed. For a payment never posted it changes
    no money; it is recorded in the audit log either way.

    A :attr:`~carecollect.run.inbound.InboundKind.DISPUTE` event's body is a JSON object with ``action``
    (``"open"``, ``"resolve"`` or ``"withdraw"``) and ``dispute_id``; to open:
    ``account_id``, ``invoice_id`` (or ``null`` for the whole account),
    ``reason`` (a :class:`~carecollect.disputes.DisputeReason` value), ``at``
    (ISO 8601 with offset) and optionally ``in_writing``; to resolve: ``kind``
    (a :class:`~carecollect.disputes.ResolutionKind` value), ``at``,
    ``approved_by`` and, for a correction, discount or write-off, ``amount``
    (posted to the ledger as an adjustment of the disputed invoice). A dispute
    opened on an account placed with the configured agency recalls the
    placement through the agency connector (an outbox item, retried with
    back-off until the agency accepts). Opened, resolved or withdrawn disputes
    and recalls are broadcast to their event hooks.

    ``contacts`` are the contact centre's records
    (:class:`~carecollect.contact_centre.ContactRecord`): an open dispute whose
    patient they show was reached is stored with
    :func:`~carecollect.contact_centre.meet_in_dispute`, so the dispute
    procedure sees it.
    """
    require_aware(now, "intake", "now")
    counts = dict.fromkeys(
        (
            "processed",
            "duplicates",
            "opt_outs",
            "delivery",
            "remittances",
            "payments",
            "revoked",
            "opened",
            "resolved",
            "escalated",
            "recalled",
            "met",
            "agency_updates",
            "bounced",
            "reversed",
        ),
        0,
    )
    failures: list[str] = []
    channels: dict[str, MessageChannel] = {}
    providers: dict[str, PaymentProvider] = {}
    if settings.agency and poll_agency:
        counts["recalled"] += _retry_recalls(store, pm, settings, now, failures)
    for ev in itertools.chain(events, _inbox_events(store, failures, now)):
        try:
            if ev.kind is InboundKind.PAYMENT:
                taken = _take_payment_webhook(store, pm, settings, ev, providers, now)
                if taken.taken is Taken.UNMATCHED:
                    failures.append(f"payment via {ev.plugin}: unmatched: {taken.why}")
                else:
                    _count(counts, taken)
                continue
            if ev.kind is InboundKind.DISPUTE:
                _count(counts, _take_dispute(store, pm, settings, ev, now))
                continue
            channel = _channel_instance(pm, settings, ev.plugin, channels)
            if ev.kind is InboundKind.REPLY:
                reply = channel.parse_inbound(dict(ev.headers), ev.body, now=ev.received_at or now)
                with store.transaction():
                    if not store.mark_processed(f"channel:{ev.plugin}", reply.provider_message_id, at=now):
                        counts["duplicates"] += 1
                        continue
                    opted: list[OwedHookEvent] = []
                    if reply.is_opt_out:
                        for patient_id, ch in store.patients_with_address(reply.sender):
                            patient = store.get_patient(patient_id)
                            patient, event = opt_out(patient, ch, at=reply.at)
                            store.put_patient(patient)
                            store.audit_append("opt_out", patient_id, {"channel": ch.value}, at=now)
                            opted.append(
                                owe_hook(
                                    store,
                                    pm,
                                    "carecollect_on_opt_out",
                                    now,
                                    patient_id=patient_id,
                                    channel=ch,
                                    event=event,
                                )
                            )
                deliver_hooks(store, pm, opted, now)  # broadcast once the opt-out is stored
                counts["opt_outs"] += len(opted)
                counts["processed"] += 1
            else:
                report = channel.parse_delivery_report(dict(ev.headers), ev.body, now=now)
                with store.transaction():
                    if not store.mark_processed(
                        f"channel:{ev.plugin}",
                        f"dr:{report.provider_message_id}:{report.state.value}",
                        at=now,
                    ):
                        counts["duplicates"] += 1
                        continue
                    store.audit_append(
                        "delivery_report", report.provider_message_id, {"state": report.state.value}, at=now
                    )
                    bounced = _record_bounce(store, report) if report.state is HARD_BOUNCE else None
                    owed = (
                        ()
                        if bounced is None
                        else (
                            owe_hook(
                                store,
                                pm,
                                "carecollect_on_outreach_failed",
                                now,
                                step=bounced[0],
                                event=bounced[1],
                                reason=bounced[2],
                            ),
                        )
                    )
                if bounced is not None:
                    deliver_hooks(store, pm, owed, now)
                    counts["bounced"] += 1
                counts["delivery"] += 1
                counts["processed"] += 1
        except StoreUnavailable:  # the store's server went away: not this event's fault; the run stops
            raise
        except CareCollectError as exc:
            failures.append(f"{ev.kind.value} via {ev.plugin}: {type(exc).__name__}: {exc}")
        except (KeyError, ValueError, TypeError) as exc:
            failures.append(f"{ev.kind.value} via {ev.plugin}: malformed event ({type(exc).__name__})")
    counts["met"] += _meet_disputes(store, contacts, now)
    if settings.agency and poll_agency:
        try:
            connector = pm.agency_connector(settings.agency).create(dict(settings.agency_config))
            since = now - dt.timedelta(days=settings.remittance_lookback_days)
            for item in connector.read_remittances(since):
                if _take_remittance(store, pm, settings.agency, item.placement_id, item.remittance, now):
                    counts["remittances"] += 1
                    counts["processed"] += 1
                else:
                    counts["duplicates"] += 1
            for update in connector.read_status_updates(since):
                try:
                    applied = _take_status_update(store, pm, settings, update, now)
                except StoreUnavailable:
                    raise
                except CareCollectError as exc:
                    failures.append(f"status update via {settings.agency}: {type(exc).__name__}: {exc}")
                    continue
                if applied:
                    counts["agency_updates"] += 1
                    counts["processed"] += 1
                else:
                    counts["duplicates"] += 1
        except StoreUnavailable:
            raise
        except CareCollectError as exc:
            failures.append(f"agency {settings.agency}: {type(exc).__name__}: {exc}")
    return IntakeReport(
        counts["processed"],
        counts["duplicates"],
        counts["opt_outs"],
        counts["delivery"],
        counts["remittances"],
        tuple(failures),
        counts["payments"],
        counts["revoked"],
        counts["opened"],
        counts["resolved"],
        counts["recalled"],
        counts["met"],
        counts["agency_updates"],
        counts["bounced"],
        counts["reversed"],
    )


def _count(counts: dict[str, int], taken: EventTaken) -> None:
    """Add what taking in one payment or dispute event did to the intake's counters."""
    if taken.taken is Taken.DUPLICATE:
        counts["duplicates"] += 1
        return
    counts["processed"] += 1
    if taken.taken is not Taken.RECORDED:
        counts[taken.taken.value] += 1
    counts["reversed"] += taken.reversed_too
    counts["recalled"] += taken.recalled


def _inbox_events(store: Store, failures: list[str], now: dt.datetime) -> Iterator[InboundEvent]:
    """The store's pending inbox events, each marked taken (or counted as tried) once it was handled.

    The loop of :func:`intake` resumes this generator after handling the event it yielded, so the
    mark is written after the event's own unit of work; an event whose handling failed stays
    pending and is tried again by the next intake, up to :data:`~carecollect.run.inbound.INBOX_MAX_ATTEMPTS` times.
    """
    for item in store.inbox_pending():
        before = len(failures)
        yield InboundEvent(InboundKind(item.kind), item.plugin, item.body, item.headers, item.received_at)
        if len(failures) == before:
            store.inbox_taken(item.kind, item.plugin, item.event_id, at=now, outcome="taken")
        elif item.attempts + 1 >= INBOX_MAX_ATTEMPTS:
            failures[-1] += f" (given up after {item.attempts + 1} attempts)"
            store.inbox_taken(item.kind, item.plugin, item.event_id, at=now, outcome="given up")
        else:
            store.inbox_retry(item.kind, item.plugin, item.event_id, outcome="failed")


#: A delivery report in this state is a hard bounce: the contact point it went to is marked
#: undeliverable at once (one report suffices; channels report temporary failures as ``pending``).
HARD_BOUNCE = DeliveryState.UNDELIVERABLE


def _record_bounce(store: Store, report: DeliveryReport) -> tuple[OutreachStep, Event, str] | None:
    """Record an undeliverable message as a bounced attempt on its step; what to broadcast, or ``None``.

    Runs inside intake's unit of work for the report. A report for a message the
    store never sent (another system's, or older than the store) is audited only.
    The contact point the message went to is marked undeliverable
    (:func:`~carecollect.patients.mark_undeliverable`), so later messages skip it
    and go to the patient's other points and channels; the point is found by the
    digest of its address kept with the sent message, so a point replaced since
    (a new address) is not marked. The BOUNCED attempt is recorded either way.
    """
    sent = store.attempt_by_provider_message_id(report.provider_message_id)
    if sent is None or sent.step_id is None:
        return None
    store.add_attempt(
        ContactAttempt(
            f"{sent.id}-bounce",
            sent.step_id,
            sent.account_id,
            sent.invoice_id,
            sent.channel,
            report.at,
            AttemptOutcome.BOUNCED,
        )
    )
    if report.state is HARD_BOUNCE:
        _mark_bounced_point(store, sent, report.at)
    step = store.get_step(sent.step_id)
    reason = f"undeliverable: {report.detail}" if report.detail else "undeliverable"
    event = Event(
        EventType.OUTREACH_FAILED, step.id, report.at, {"channel": sent.channel.value, "bounced": True}
    )
    return step, event, reason


def _mark_bounced_point(store: Store, sent: ContactAttempt, at: dt.datetime) -> None:
    """Mark the point ``sent`` went to undeliverable, and audit it (ids and the channel only)."""
    patient = store.get_patient(store.get_account(sent.account_id).patient_id)
    try:
        digest = (store.outbox_get(sent.id.rpartition("@")[0]).result or {}).get("to")
    except NotFound:
        digest = None
    if digest is None:  # sent before digests were kept: the point a send at that time would pick
        candidates = [p for p in patient.points(sent.channel) if p.deliverable(sent.at)]
        candidates = [p for p in candidates if p.opted_out_at is None or p.opted_out_at > sent.at][:1]
    else:
        candidates = [p for p in patient.points(sent.channel) if _address_digest(p.address) == digest]
    for point in candidates:
        patient, event = mark_undeliverable(patient, sent.channel, point.address, at=at)
        if event is not None:
            store.put_patient(patient)
            store.audit_append(
                UNDELIVERABLE_RULE,
                patient.id,
                {"channel": sent.channel.value, "account": sent.account_id, "attempt": sent.id},
                at=at,
            )


def _take_status_update(
    store: Store, pm: PluginManager, settings: RunSettings, update: AgencyStatusUpdate, now: dt.datetime
) -> bool:
    """Apply one agency status update to the placement, once; ``False`` for one already taken.

    ``returned`` and ``recalled`` close a placement that is still placed (the account is the
    creditor's again); ``disputed`` opens a dispute on the placed invoices, so outreach, plan
    charges and every gate freeze as for a dispute the patient raised with the creditor (the
    agency does not say why: the reason is
    :attr:`~carecollect.disputes.DisputeReason.AGENCY_REPORTED`); the other states are
    recorded in the audit log (the money comes with remittances).
    """
    opened = None
    with store.transaction():
        if not store.mark_processed(f"agency:{settings.agency}", f"status:{update.id}", at=now):
            return False
        placement = store.get_placement(update.placement_id)
        status = update.status
        if status in (AgencyAccountStatus.RETURNED, AgencyAccountStatus.RECALLED):
            if placement.status is PlacementStatus.PLACED:
                if status is AgencyAccountStatus.RETURNED:
                    placement, _ = return_placement(placement, at=update.at)
                else:
                    placement, _ = recall_placement(
                        placement, at=update.at, reason=f"agency update {update.id}"
                    )
                store.put_placement(placement)
        elif status is AgencyAccountStatus.DISPUTED:
            snap = store.account_snapshot(placement.account_id)
            invoice_id = placement.invoice_ids[0] if len(placement.invoice_ids) == 1 else None
            if not any(d.is_open and d.invoice_id in (None, invoice_id) for d in snap.disputes):
                dispute, event, _ = open_dispute(
                    f"AGY-{update.id}",
                    placement.account_id,
                    invoice_id,
                    DisputeReason.AGENCY_REPORTED,
                    at=update.at,
                    pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
                )
                store.put_dispute(dispute)
                opened = (dispute, event)
        store.audit_append(
            "agency.status",
            placement.account_id,
            {"placement": placement.id, "update": update.id, "status": status.value},
            at=now,
        )
        owed = (
            ()
            if opened is None
            else (
                owe_hook(store, pm, "carecollect_on_dispute_opened", now, dispute=opened[0], event=opened[1]),
            )
        )
    deliver_hooks(store, pm, owed, now)
    return True
