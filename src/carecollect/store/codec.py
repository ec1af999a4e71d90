"""Domain objects to plain rows and back: the store's one serialisation, shared by every backend.

Money is stored as integer minor units beside its currency, instants as
ISO-8601 text in UTC with the offset (``2026-03-01T11:00:00+00:00``), dates as
ISO dates (``2026-03-01``), enums by value, and short lists of names
(time zones, channels, invoice ids) as text separated by single spaces.
:data:`COLUMNS` gives the column order of each table's row tuple; the
``*_row`` functions build such tuples, the ``*_from_row`` functions read them.

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> iso_instant(dt.datetime(2026, 3, 1, 12, tzinfo=ZoneInfo("Europe/Oslo")))
'2026-03-01T11:00:00+00:00'
>>> instant_from_iso('2026-03-01T11:00:00+00:00') == dt.datetime(2026, 3, 1, 12, tzinfo=ZoneInfo("Europe/Oslo"))
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..channels import Channel
from ..creditors import Creditor, CreditorRole
from ..deprecation import renamed
from ..disputes import Dispute, DisputeReason, DisputeStatus, EscalationLevel, Resolution, ResolutionKind
from ..handoff_consent import ConsentMethod, HandoffConsent
from ..invoices import BillKind, ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from ..ledger import EntryKind, LedgerEntry
from ..money import Money
from ..outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from ..patients import Account, ConfidentialWish, ContactPoint, Patient
from ..placements import AgencyPlacement, PlacementStatus, Remittance
from ..plans import Instalment, InstalmentStatus, PaymentPlan, PlanStatus
from ..timekeeping import require_aware
from .base import OutboxItem, OutboxStatus

__all__ = [
    "ACCOUNT_TABLES",
    "COLUMNS",
    "OUTBOX_COLUMNS",
    "instant_from_iso",
    "iso_date",
    "iso_instant",
    "outbox_item_from_row",
    "parse_date",
    "partition_key",
]

Row = tuple[Any, ...]


def partition_key(patient_id: str) -> int:
    """A patient's partition key: the first 32 bits of the MD5 digest of the patient id (UTF-8),
    an unsigned integer, the same in every process, host and backend.

    A run split in ``n`` partitions gives partition ``partition_key(patient_id) % n`` to every
    account of the patient. The stores keep the key beside each account so that a partition's
    reads are filtered in SQL; PostgreSQL computes the same number as
    ``('x' || substr(md5(patient_id), 1, 8))::bit(32)::bigint``. MD5 serves here as a spread,
    not as a protection.

    >>> partition_key("pat-1") == partition_key("pat-1")
    True
    >>> 0 <= partition_key("pat-1") < 2**32
    True
    """
    return int.from_bytes(hashlib.md5(patient_id.encode("utf-8"), usedforsecurity=False).digest()[:4], "big")


#: The tables an account's snapshot is read from, each naming its account in ``account_id`` (the
#: ``accounts``, ``patients`` and ``contact_points`` tables and the insurer's claim records in the
#: audit log are kept by triggers of their own). Only ever append: SQLite's migration 17 and
#: PostgreSQL's migration 8 put version triggers on the first twelve; a table added later needs a
#: migration of each store that puts them on it.
ACCOUNT_TABLES = (
    "invoices",
    "invoice_lines",
    "ledger_entries",
    "plans",
    "instalments",
    "disputes",
    "outreach_steps",
    "contact_attempts",
    "placements",
    "remittances",
    "mandates",
    "assistance_applications",
)


#: Column order of the row tuple of each table (what :meth:`~carecollect.store.base.Store.bulk_load` takes).
COLUMNS: dict[str, tuple[str, ...]] = {
    "creditors": ("id", "name", "role", "country", "nonprofit", "state", "business_name_for_voicemail"),
    "patients": (
        "id",
        "preferred_language",
        "time_zones",
        "name",
        "country",
        "state",
        "confidential",
        "confidential_channels",
        "cease_requested_at",
        "date_of_birth",
        "handoff_consent_given_at",
        "handoff_consent_method",
        "handoff_consent_reference",
        "handoff_consent_withdrawn_at",
    ),
    "contact_points": (
        "patient_id",
        "position",
        "channel",
        "address",
        "consent_at",
        "opted_out_at",
        "verified_at",
        "time_zone",
        "undeliverable_at",
    ),
    "accounts": (
        "id",
        "patient_id",
        "creditor_id",
        "currency",
        "jurisdiction",
        "guarantor_id",
        "household_size",
        "annual_income_minor",
    ),
    "invoices": (
        "id",
        "account_id",
        "currency",
        "issue_date",
        "due_date",
        "first_statement_date",
        "status",
        "kind",
        "estimate_id",
        "claim_status",
        "insurer_paid_minor",
        "contractual_adjustment_minor",
        "claim_submitted_on",
        "payer_name",
        "default_notice_given",
        "received_on",
    ),
    "invoice_lines": (
        "invoice_id",
        "position",
        "account_id",
        "code",
        "description",
        "amount_minor",
        "service_date",
    ),
    "ledger_entries": (
        "account_id",
        "key",
        "kind",
        "amount_minor",
        "currency",
        "at",
        "invoice_id",
        "source_id",
        "reason",
    ),
    "plans": (
        "id",
        "account_id",
        "invoice_ids",
        "total_minor",
        "currency",
        "created_at",
        "status",
        "interest_rate_percent",
        "paused_at",
    ),
    "instalments": (
        "plan_id",
        "position",
        "account_id",
        "number",
        "due_date",
        "amount_minor",
        "status",
        "paid_minor",
    ),
    "disputes": (
        "id",
        "account_id",
        "invoice_id",
        "reason",
        "opened_at",
        "status",
        "level",
        "resolution_kind",
        "resolution_amount_minor",
        "resolution_currency",
        "resolution_approved_by",
        "resolution_corrective_action",
        "resolution_after_insurance",
        "resolved_at",
        "first_response_at",
        "met_patient_at",
        "follow_up_on",
        "follow_up_done_at",
        "satisfied",
        "in_writing",
    ),
    "outreach_steps": (
        "id",
        "account_id",
        "invoice_id",
        "purpose",
        "channels",
        "due_at",
        "template_key",
        "status",
        "sent_at",
        "deadline",
    ),
    "contact_attempts": (
        "id",
        "step_id",
        "account_id",
        "invoice_id",
        "channel",
        "at",
        "outcome",
        "provider_message_id",
    ),
    "placements": (
        "id",
        "account_id",
        "agency",
        "amount_placed_minor",
        "currency",
        "status",
        "placed_at",
        "closed_at",
        "invoice_ids",
    ),
    "remittances": (
        "placement_id",
        "position",
        "id",
        "account_id",
        "amount_minor",
        "collected_at",
        "fee_minor",
    ),
}


# -- scalars -----------------------------------------------------------------
def iso_instant(value: dt.datetime) -> str:
    """An aware datetime as ISO-8601 text in UTC with its offset."""
    require_aware(value, "instant", "value")
    return value.astimezone(dt.UTC).isoformat()


def opt_instant(value: dt.datetime | None) -> str | None:
    """:func:`iso_instant`, passing ``None`` through."""
    return None if value is None else iso_instant(value)


def instant_from_iso(text: str) -> dt.datetime:
    """Read what :func:`iso_instant` wrote (an aware UTC datetime).

    Not :func:`carecollect.timekeeping.parse_instant` (text a person wrote, any zone).

    .. versionchanged:: 0.2 named ``parse_instant`` before (a deprecated alias remains).
    """
    value = dt.datetime.fromisoformat(text)
    require_aware(value, "instant", "value")
    return value


def opt_instant_from_iso(text: str | None) -> dt.datetime | None:
    """:func:`instant_from_iso`, passing ``None`` through."""
    return None if text is None else instant_from_iso(text)


def iso_date(value: dt.date | None) -> str | None:
    """A date as ``YYYY-MM-DD`` (``None`` passes through)."""
    return None if value is None else value.isoformat()


def parse_date(text: str | None) -> dt.date | None:
    """Read an ISO date (``None`` passes through)."""
    return None if text is None else dt.date.fromisoformat(text)


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def minor(amount: Money | None) -> int | None:
    """Integer minor units of ``amount`` (``None`` passes through)."""
    return None if amount is None else amount.minor_units


def money(units: int | None, currency: str) -> Money | None:
    """Money from minor units (``None`` passes through)."""
    return None if units is None else Money.from_minor(units, currency)


def words(values: Sequence[str]) -> str:
    """Names joined by single spaces (names never contain spaces)."""
    return " ".join(values)


def split_words(text: str | None) -> tuple[str, ...]:
    """The inverse of :func:`words`."""
    return tuple(text.split()) if text else ()


# -- creditors, patients, accounts ----------------------------------------------
def creditor_row(c: Creditor) -> Row:
    """A creditor as a ``creditors`` row."""
    return (c.id, c.name, c.role.value, c.country, int(c.nonprofit), c.state, c.business_name_for_voicemail)


def creditor_from_row(r: Sequence[Any]) -> Creditor:
    """Read a ``creditors`` row."""
    return Creditor(r[0], r[1], CreditorRole(r[2]), r[3], bool(r[4]), r[5], r[6])


def patient_row(p: Patient) -> Row:
    """A patient as a ``patients`` row (contact points go to :func:`contact_point_rows`)."""
    return (
        p.id,
        p.preferred_language,
        words(p.time_zones),
        p.name,
        p.country,
        p.state,
        p.confidential.value,
        words(sorted(c.value for c in p.confidential_channels)),
        opt_instant(p.cease_requested_at),
        iso_date(p.date_of_birth),
        *handoff_consent_values(p.handoff_consent),
    )


def handoff_consent_values(c: HandoffConsent | None) -> tuple[str | None, str | None, str | None, str | None]:
    """A handoff consent as its four stored values (given at, method, reference, withdrawn at)."""
    if c is None:
        return (None, None, None, None)
    return (opt_instant(c.given_at), c.method.value, c.reference, opt_instant(c.withdrawn_at))


def handoff_consent_from(values: Sequence[Any]) -> HandoffConsent | None:
    """Read the four stored values of a handoff consent (``None`` when none was given)."""
    given = opt_instant_from_iso(values[0])
    if given is None:
        return None
    return HandoffConsent(given, ConsentMethod(values[1]), values[2], opt_instant_from_iso(values[3]))


def contact_point_rows(p: Patient) -> list[Row]:
    """A patient's contact points as ``contact_points`` rows, in order."""
    return [
        (
            p.id,
            i,
            c.channel.value,
            c.address,
            opt_instant(c.consent_at),
            opt_instant(c.opted_out_at),
            opt_instant(c.verified_at),
            c.time_zone,
            opt_instant(c.undeliverable_at),
        )
        for i, c in enumerate(p.contact_points)
    ]


def contact_point_from_row(r: Sequence[Any]) -> ContactPoint:
    """Read a ``contact_points`` row."""
    return ContactPoint(
        Channel(r[2]),
        r[3],
        opt_instant_from_iso(r[4]),
        opt_instant_from_iso(r[5]),
        opt_instant_from_iso(r[6]),
        r[7],
        opt_instant_from_iso(r[8]),
    )


def patient_from_row(r: Sequence[Any], points: Sequence[ContactPoint]) -> Patient:
    """Read a ``patients`` row with its contact points."""
    return Patient(
        id=r[0],
        preferred_language=r[1],
        time_zones=split_words(r[2]),
        contact_points=tuple(points),
        name=r[3],
        country=r[4],
        state=r[5],
        confidential=ConfidentialWish(r[6]),
        confidential_channels=frozenset(Channel(c) for c in split_words(r[7])),
        cease_requested_at=opt_instant_from_iso(r[8]),
        date_of_birth=parse_date(r[9]),
        handoff_consent=handoff_consent_from(r[10:14]),
    )


def account_row(a: Account) -> Row:
    """An account as an ``accounts`` row."""
    return (
        a.id,
        a.patient_id,
        a.creditor_id,
        a.currency,
        a.jurisdiction,
        a.guarantor_id,
        a.household_size,
        minor(a.annual_income),
    )


def account_from_row(r: Sequence[Any]) -> Account:
    """Read an ``accounts`` row."""
    return Account(r[0], r[1], r[2], r[3], r[4], r[5], r[6], money(r[7], r[3]))


# -- invoices and ledger ---------------------------------------------------------
def invoice_row(i: Invoice) -> Row:
    """An invoice as an ``invoices`` row (lines go to :func:`invoice_line_rows`)."""
    ins = i.insurance
    return (
        i.id,
        i.account_id,
        i.currency,
        i.issue_date.isoformat(),
        i.due_date.isoformat(),
        iso_date(i.first_statement_date),
        i.status.value,
        i.kind.value,
        i.estimate_id,
        ins.status.value,
        minor(ins.insurer_paid),
        minor(ins.contractual_adjustment),
        iso_date(ins.submitted_on),
        ins.payer_name,
        int(i.default_notice_given),
        iso_date(i.received_on),
    )


def invoice_line_rows(i: Invoice) -> list[Row]:
    """An invoice's lines as ``invoice_lines`` rows."""
    return [
        (
            i.id,
            n,
            i.account_id,
            line.code,
            line.description,
            line.amount.minor_units,
            line.service_date.isoformat(),
        )
        for n, line in enumerate(i.lines)
    ]


def invoice_line_from_row(r: Sequence[Any], currency: str) -> InvoiceLine:
    """Read an ``invoice_lines`` row."""
    return InvoiceLine(r[3], r[4], Money.from_minor(r[5], currency), _date(r[6]))


def invoice_from_row(r: Sequence[Any], lines: Sequence[InvoiceLine]) -> Invoice:
    """Read an ``invoices`` row with its lines."""
    cur = r[2]
    line_tuple: tuple[InvoiceLine, ...] = tuple(lines)
    insurance = Insurance(ClaimStatus(r[9]), money(r[10], cur), money(r[11], cur), parse_date(r[12]), r[13])
    return Invoice(
        id=r[0],
        account_id=r[1],
        currency=cur,
        lines=line_tuple,  # type: ignore[arg-type]  # attrs converter=tuple confuses mypy
        issue_date=_date(r[3]),
        due_date=_date(r[4]),
        first_statement_date=parse_date(r[5]),
        insurance=insurance,
        status=InvoiceStatus(r[6]),
        kind=BillKind(r[7]),
        estimate_id=r[8],
        default_notice_given=bool(r[14]),
        received_on=parse_date(r[15]),
    )


def ledger_entry_row(account_id: str, e: LedgerEntry) -> Row:
    """A ledger entry as a ``ledger_entries`` row."""
    return (
        account_id,
        e.key,
        e.kind.value,
        e.amount.minor_units,
        e.amount.currency,
        iso_instant(e.at),
        e.invoice_id,
        e.source_id,
        e.reason,
    )


def ledger_entry_from_row(r: Sequence[Any]) -> LedgerEntry:
    """Read a ``ledger_entries`` row."""
    return LedgerEntry(
        r[1], EntryKind(r[2]), Money.from_minor(r[3], r[4]), instant_from_iso(r[5]), r[6], r[7], r[8]
    )


# -- plans -------------------------------------------------------------------------
def plan_row(p: PaymentPlan) -> Row:
    """A plan as a ``plans`` row (instalments go to :func:`instalment_rows`)."""
    return (
        p.id,
        p.account_id,
        words(p.invoice_ids),
        p.total.minor_units,
        p.total.currency,
        iso_instant(p.created_at),
        p.status.value,
        p.interest_rate_percent,
        iso_date(p.paused_at),
    )


def instalment_rows(p: PaymentPlan) -> list[Row]:
    """A plan's instalments as ``instalments`` rows."""
    return [
        (
            p.id,
            n,
            p.account_id,
            i.number,
            i.due_date.isoformat(),
            i.amount.minor_units,
            i.status.value,
            minor(i.paid),
        )
        for n, i in enumerate(p.instalments)
    ]


def plan_from_row(r: Sequence[Any], instalments: Sequence[Sequence[Any]]) -> PaymentPlan:
    """Read a ``plans`` row with its ``instalments`` rows."""
    cur = r[4]
    insts = tuple(
        Instalment(i[3], _date(i[4]), Money.from_minor(i[5], cur), InstalmentStatus(i[6]), money(i[7], cur))
        for i in instalments
    )
    return PaymentPlan(
        r[0],
        r[1],
        split_words(r[2]),
        Money.from_minor(r[3], cur),
        insts,
        instant_from_iso(r[5]),
        PlanStatus(r[6]),
        r[7],
        parse_date(r[8]),
    )


# -- disputes ---------------------------------------------------------------------
def dispute_row(d: Dispute) -> Row:
    """A dispute as a ``disputes`` row."""
    res = d.resolution
    return (
        d.id,
        d.account_id,
        d.invoice_id,
        d.reason.value,
        iso_instant(d.opened_at),
        d.status.value,
        int(d.level),
        res.kind.value if res else None,
        minor(res.amount) if res else None,
        res.amount.currency if res and res.amount is not None else None,
        res.approved_by if res else None,
        res.corrective_action if res else None,
        int(res.effective_after_insurance) if res else None,
        opt_instant(d.resolved_at),
        opt_instant(d.first_response_at),
        opt_instant(d.met_patient_at),
        iso_date(d.follow_up_on),
        opt_instant(d.follow_up_done_at),
        None if d.satisfied is None else int(d.satisfied),
        int(d.in_writing),
    )


def dispute_from_row(r: Sequence[Any]) -> Dispute:
    """Read a ``disputes`` row."""
    resolution = None
    if r[7] is not None:
        amount = money(r[8], r[9]) if r[8] is not None else None
        resolution = Resolution(ResolutionKind(r[7]), amount, r[10], r[11], bool(r[12]))
    return Dispute(
        id=r[0],
        account_id=r[1],
        invoice_id=r[2],
        reason=DisputeReason(r[3]),
        opened_at=instant_from_iso(r[4]),
        status=DisputeStatus(r[5]),
        level=EscalationLevel(r[6]),
        resolution=resolution,
        resolved_at=opt_instant_from_iso(r[13]),
        first_response_at=opt_instant_from_iso(r[14]),
        met_patient_at=opt_instant_from_iso(r[15]),
        follow_up_on=parse_date(r[16]),
        follow_up_done_at=opt_instant_from_iso(r[17]),
        satisfied=None if r[18] is None else bool(r[18]),
        in_writing=bool(r[19]),
    )


# -- outreach ---------------------------------------------------------------------------
def step_row(s: OutreachStep) -> Row:
    """An outreach step as an ``outreach_steps`` row."""
    return (
        s.id,
        s.account_id,
        s.invoice_id,
        s.purpose.value,
        words([c.value for c in s.channels]),
        iso_instant(s.due_at),
        s.template_key,
        s.status.value,
        opt_instant(s.sent_at),
        iso_date(s.deadline),
    )


def step_from_row(r: Sequence[Any]) -> OutreachStep:
    """Read an ``outreach_steps`` row."""
    channels: tuple[Channel, ...] = tuple(Channel(c) for c in split_words(r[4]))
    return OutreachStep(
        r[0],
        r[1],
        r[2],
        OutreachPurpose(r[3]),
        channels,  # type: ignore[arg-type]  # attrs converter=tuple confuses mypy
        instant_from_iso(r[5]),
        r[6],
        OutreachStatus(r[7]),
        opt_instant_from_iso(r[8]),
        parse_date(r[9]),
    )


def attempt_row(a: ContactAttempt) -> Row:
    """A contact attempt as a ``contact_attempts`` row."""
    return (
        a.id,
        a.step_id,
        a.account_id,
        a.invoice_id,
        a.channel.value,
        iso_instant(a.at),
        a.outcome.value,
        a.provider_message_id,
    )


def attempt_from_row(r: Sequence[Any]) -> ContactAttempt:
    """Read a ``contact_attempts`` row."""
    return ContactAttempt(
        r[0], r[1], r[2], r[3], Channel(r[4]), instant_from_iso(r[5]), AttemptOutcome(r[6]), r[7]
    )


# -- placements ---------------------------------------------------------------------------
def placement_row(p: AgencyPlacement) -> Row:
    """A placement as a ``placements`` row (remittances go to :func:`remittance_rows`)."""
    return (
        p.id,
        p.account_id,
        p.agency,
        p.amount_placed.minor_units,
        p.amount_placed.currency,
        p.status.value,
        opt_instant(p.placed_at),
        opt_instant(p.closed_at),
        words(p.invoice_ids),
    )


def remittance_rows(p: AgencyPlacement) -> list[Row]:
    """A placement's remittances as ``remittances`` rows."""
    return [
        (p.id, n, r.id, p.account_id, r.amount.minor_units, iso_instant(r.collected_at), minor(r.fee))
        for n, r in enumerate(p.remittances)
    ]


def placement_from_row(r: Sequence[Any], remittances: Sequence[Sequence[Any]]) -> AgencyPlacement:
    """Read a ``placements`` row with its ``remittances`` rows."""
    cur = r[4]
    rems = tuple(
        Remittance(x[2], Money.from_minor(x[4], cur), instant_from_iso(x[5]), money(x[6], cur))
        for x in remittances
    )
    return AgencyPlacement(
        r[0],
        r[1],
        r[2],
        Money.from_minor(r[3], cur),
        PlacementStatus(r[5]),
        opt_instant_from_iso(r[6]),
        opt_instant_from_iso(r[7]),
        rems,
        split_words(r[8]),
    )


def dumps(value: Any) -> str:
    """JSON text for a payload column."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: The outbox table's columns in the order :func:`outbox_item_from_row` reads them (both stores).
OUTBOX_COLUMNS = (
    "key, kind, account_id, payload, status, recorded_at, updated_at, attempts, next_retry_at, "
    "last_error, result"
)


def outbox_item_from_row(r: Sequence[Any]) -> OutboxItem:
    """An :class:`~carecollect.store.base.OutboxItem` from a row of :data:`OUTBOX_COLUMNS`."""
    return OutboxItem(
        key=r[0],
        kind=r[1],
        account_id=r[2],
        payload=json.loads(r[3]),
        status=OutboxStatus(r[4]),
        recorded_at=instant_from_iso(r[5]),
        updated_at=opt_instant_from_iso(r[6]),
        attempts=r[7],
        next_retry_at=opt_instant_from_iso(r[8]),
        last_error=r[9],
        result=None if r[10] is None else json.loads(r[10]),
    )


__getattr__ = renamed(__name__, {"parse_instant": "carecollect.store.codec:instant_from_iso"})
