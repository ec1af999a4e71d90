"""The common core of every importer: plain records to domain objects, checked, then stored all at once.

Each importer (CSV, JSON, FHIR) turns its input into :class:`RecordSet`
mappings of plain values (the schema in :doc:`/reference/import-schema`),
each tagged with where it came from. :func:`apply_records` builds the domain
objects, collects **every** problem (with the row or resource and the field),
and raises one :class:`ImportFailed` if there is any; otherwise it writes all
of it in one unit of work, so an import is all or nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from ..addresses import normalise_contact_address, region_of
from ..assistance_applications import ApplicationStatus, AssistanceApplication
from ..channels import Channel
from ..creditors import Creditor, CreditorRole
from ..errors import CareCollectError, ImportFailed, ImportProblem
from ..handoff_consent import ConsentMethod, HandoffConsent
from ..invoices import BillKind, ClaimStatus, Insurance, Invoice, InvoiceLine, InvoiceStatus
from ..ledger import EntryKind, Ledger, LedgerEntry, post, post_payment
from ..money import Money
from ..patients import Account, ConfidentialWish, ContactPoint, Patient
from ..payments import Payment, PaymentMethod
from ..scrubbing import printable
from ..store.base import NotFound, Store
from ..timekeeping import zone

__all__ = [
    "EARLIEST_DATE",
    "KINDS",
    "LATEST_DATE",
    "ImportFailed",
    "ImportProblem",
    "ImportSummary",
    "Record",
    "RecordSet",
    "apply_records",
]

#: The kinds of records an import may hold.
KINDS = ("creditors", "patients", "accounts", "invoices", "payments", "assistance_applications")

#: The earliest date (and day of an instant) an import accepts: older dates in
#: billing data are typing errors (and a date near year 1 overflows once a
#: time zone or a number of days is applied to it).
EARLIEST_DATE = dt.date(1900, 1, 1)
#: The latest date (and day of an instant) an import accepts.
LATEST_DATE = dt.date(2199, 12, 31)

T = TypeVar("T")


@attrs.frozen
class Record:
    """One input record: its plain fields and where it came from."""

    where: str
    fields: Mapping[str, Any] = attrs.field(repr=False)


#: Records by kind (keys from :data:`KINDS`).
RecordSet = Mapping[str, Sequence[Record]]


@attrs.frozen
class ImportSummary:
    """What an import stored (counts by kind, and ledger entries added)."""

    creditors: int = 0
    patients: int = 0
    accounts: int = 0
    invoices: int = 0
    payments: int = 0
    ledger_entries: int = 0
    assistance_applications: int = 0


class _Bad(Exception):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem


class _JsonNumber:
    """A JSON number that cannot be read exactly: a fraction or exponent (a float) or an integer too long.

    :func:`~carecollect.importers.tabular.import_json` reads such numbers as
    this marker (``json.loads(parse_float=_JsonNumber, parse_int=...)``) instead
    of a float, so the field that holds one is refused by name (amounts are
    decimal text, never a binary float) and the rest of the document is still
    checked.

    :param text: the number as written.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"_JsonNumber({printable(self.text, 30)!r})"

    @classmethod
    def parse_int(cls, text: str) -> int | _JsonNumber:
        """An integer, or the marker when it has more than 30 digits (no amount or count is that long)."""
        return int(text) if len(text) <= 30 else cls(text)


def _kind_of(value: Any) -> str:
    """What a value is, in the words of the input's format (never the value itself)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, Decimal, _JsonNumber)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


# -- field readers (each raises _Bad naming the field) ---------------------------------------
def _get(f: Mapping[str, Any], name: str) -> Any:
    value = f.get(name)
    return None if value == "" else value


def _clean(name: str, value: str) -> str:
    """Refuse text the store cannot keep: a lone surrogate (not Unicode) or a NUL character."""
    if not value.isascii():
        for char in value:
            if unicodedata.category(char) == "Cs":
                raise _Bad(
                    name,
                    f"is not valid Unicode text (an unpaired surrogate \\u{ord(char):04x}); "
                    "re-export the file as UTF-8",
                )
    if "\x00" in value:
        raise _Bad(name, "holds a NUL character; remove it")
    return value


def _text(f: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = _get(f, name)
    if value is None:
        if required:
            raise _Bad(name, "is required")
        return None
    if not isinstance(value, str):
        raise _Bad(name, f"must be text, got {_kind_of(value)}")
    return _clean(name, value)


def _req(f: Mapping[str, Any], name: str) -> str:
    value = _text(f, name)
    assert value is not None
    return value


def _choice(f: Mapping[str, Any], name: str, enum: type[T], default: T | None = None) -> T:
    value = _get(f, name)
    if value is None:
        if default is None:
            raise _Bad(name, "is required")
        return default
    allowed = ", ".join(str(m.value) for m in enum)  # type: ignore[attr-defined]
    if not isinstance(value, str):  # every value is text; a list or number is not even looked up
        raise _Bad(name, f"must be one of: {allowed}")
    try:
        return enum(value)  # type: ignore[call-arg]
    except ValueError:
        raise _Bad(name, f"must be one of: {allowed}") from None


def _ascii_digits(name: str, value: str, example: str) -> str:
    """Numbers, dates and instants are written with the digits 0-9 only.

    ``int()``, :class:`~decimal.Decimal` and ``date.fromisoformat`` each accept
    some digits of other scripts (Arabic-Indic, full-width...) and refuse others
    (superscripts); an importer that read them would turn a mis-encoded or
    spoofed value into money, so they are refused by field.
    """
    if not value.isascii():
        raise _Bad(name, f"must be written with the digits 0-9 only, such as {example}")
    return value


def _in_range(name: str, day: dt.date, example: str) -> None:
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise _Bad(
            name,
            f"must fall between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}, such as {example}",
        )


def _date(f: Mapping[str, Any], name: str, *, required: bool = True) -> dt.date | None:
    value = _text(f, name, required=required)
    if value is None:
        return None
    example = "2026-03-15"
    _ascii_digits(name, value, example)
    try:
        if len(value) != 10:
            raise ValueError
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise _Bad(name, f"must be an ISO date such as {example}") from None
    _in_range(name, day, example)
    return day


def _date_req(f: Mapping[str, Any], name: str) -> dt.date:
    value = _date(f, name)
    assert value is not None
    return value


def _money_req(f: Mapping[str, Any], name: str, currency: str) -> Money:
    value = _money(f, name, currency)
    assert value is not None
    return value


def _instant(f: Mapping[str, Any], name: str, *, required: bool = False) -> dt.datetime | None:
    value = _text(f, name, required=required)
    if value is None:
        return None
    example = "2026-03-01T09:30:00+01:00"
    _ascii_digits(name, value, example)
    try:
        if len(value) > 40:
            raise ValueError
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(name, f"must be an ISO-8601 date and time with offset, such as {example}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Bad(name, f"needs a UTC offset (a time without one is ambiguous), such as {example}")
    # the local day in range: then the instant in UTC (and in any zone) exists too
    _in_range(name, parsed.date(), example)
    return parsed


def _money(f: Mapping[str, Any], name: str, currency: str, *, required: bool = True) -> Money | None:
    value = _get(f, name)
    if value is None:
        if required:
            raise _Bad(name, "is required")
        return None
    if isinstance(value, (bool, float, _JsonNumber)) or not isinstance(value, (str, int, Decimal)):
        raise _Bad(name, 'must be a decimal amount written as text, such as "125.50" (never a JSON float)')
    if isinstance(value, str):
        _ascii_digits(name, _clean(name, value), '"125.50"')
        if len(value) > 60:
            raise _Bad(name, 'must be a decimal amount written as text, such as "125.50"')
    try:
        return Money(value, currency)
    except CareCollectError as exc:
        raise _Bad(name, getattr(exc, "problem", str(exc))) from None


#: Whole numbers an import holds (a household's size) are small; this bound keeps them in the store's range.
_MAX_WHOLE = 1000


def _int(f: Mapping[str, Any], name: str) -> int | None:
    value = _get(f, name)
    if value is None:
        return None
    problem = f"must be a whole number from 1 to {_MAX_WHOLE}"
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= 6:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_WHOLE:
        raise _Bad(name, problem)
    return value


def _bool(f: Mapping[str, Any], name: str) -> bool:
    value = _get(f, name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise _Bad(name, "must be true or false")


def _names(f: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = _get(f, name)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(_clean(name, value).split())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(_clean(name, v) for v in value)
    raise _Bad(name, "must be a list of names (or text with names separated by spaces)")


#: The longest IANA time-zone name is 32 characters (America/Argentina/ComodRivadavia).
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


def _zone_name(name: str, value: str) -> str:
    """An IANA time-zone name, refused by ``name`` (the real field) when unknown."""
    problem = f"{printable(value, 40)!r} is not an IANA time zone name such as Europe/Oslo"
    if len(value) > 64 or not _ZONE_NAME.fullmatch(value):
        raise _Bad(name, problem)
    try:
        zone(value)
    except CareCollectError:
        raise _Bad(name, problem) from None
    return value


def _zones(f: Mapping[str, Any], name: str) -> tuple[str, ...]:
    return tuple(_zone_name(name, z) for z in _names(f, name))


def _zone(f: Mapping[str, Any], name: str) -> str | None:
    value = _text(f, name, required=False)
    return None if value is None else _zone_name(name, value)


def _nested(f: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = _get(f, name)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, Mapping) for v in value):
        raise _Bad(name, "must be a list of objects")
    return list(value)


def _build(build: Callable[[], T], prefix: str = "") -> T:
    try:
        return build()
    except _Bad as bad:
        raise _Bad(prefix + bad.field, bad.problem) from None
    except CareCollectError as exc:
        field = getattr(exc, "field", None) or "record"
        problem = getattr(exc, "problem", None) or _scrub(str(exc))
        raise _Bad(prefix + field, problem) from None


def _scrub(message: str) -> str:
    # Errors from the core name records by id and fields, never a patient's data; keep them short.
    return message[:300]


# -- record kinds -----------------------------------------------------------------------------------
def creditor_from(f: Mapping[str, Any]) -> Creditor:
    """Build a :class:`~carecollect.creditors.Creditor` from plain fields."""
    return Creditor(
        id=_req(f, "id"),
        name=_req(f, "name"),
        role=_choice(f, "role", CreditorRole, CreditorRole.PROVIDER),
        country=_req(f, "country"),
        nonprofit=_bool(f, "nonprofit"),
        state=_text(f, "state", required=False),
        business_name_for_voicemail=_text(f, "business_name_for_voicemail", required=False),
    )


def contact_point_from(f: Mapping[str, Any], region: str | None = None) -> ContactPoint:
    """Build a :class:`~carecollect.patients.ContactPoint` from plain fields.

    The address is checked and normalised for its channel
    (:func:`~carecollect.addresses.normalise_contact_address`): phone numbers to E.164 in
    ``region`` (the patient's country), e-mail addresses normalised, postal addresses in lines.
    """
    channel = _choice(f, "channel", Channel)
    return ContactPoint(
        channel=channel,
        address=normalise_contact_address(channel, _req(f, "address"), region),
        consent_at=_instant(f, "consent_at"),
        opted_out_at=_instant(f, "opted_out_at"),
        verified_at=_instant(f, "verified_at"),
        time_zone=_zone(f, "time_zone"),
        undeliverable_at=_instant(f, "undeliverable_at"),
    )


def patient_from(f: Mapping[str, Any], region: str | None = None) -> Patient:
    """Build a :class:`~carecollect.patients.Patient` (with ``contact_points``) from plain fields.

    :param region: the country contact addresses are read in when the patient's own ``country``
        is not given (the jurisdiction of the patient's account).
    """
    points = []
    region = region_of(_text(f, "country", required=False)) or region
    for n, cp in enumerate(_nested(f, "contact_points")):
        points.append(_build(functools.partial(contact_point_from, cp, region), f"contact_points[{n}]."))
    zones = _zones(f, "time_zones")  # none: derived by Patient, or refused by row and field
    return Patient(
        id=_req(f, "id"),
        preferred_language=_text(f, "preferred_language", required=False) or "en",
        time_zones=zones,
        contact_points=tuple(points),
        name=_text(f, "name", required=False) or "",
        country=_text(f, "country", required=False),
        state=_text(f, "state", required=False),
        confidential=_choice(f, "confidential", ConfidentialWish, ConfidentialWish.NONE),
        confidential_channels=frozenset(_channel(c) for c in _names(f, "confidential_channels")),
        cease_requested_at=_instant(f, "cease_requested_at"),
        date_of_birth=_date(f, "date_of_birth", required=False),
        handoff_consent=_handoff_consent(f),
    )


#: The flat fields of a patient's handoff consent (Germany), as every importer names them.
HANDOFF_CONSENT_FIELDS = (
    "handoff_consent_given_at",
    "handoff_consent_method",
    "handoff_consent_reference",
    "handoff_consent_withdrawn_at",
)


def _handoff_consent(f: Mapping[str, Any]) -> HandoffConsent | None:
    given = _instant(f, "handoff_consent_given_at")
    if given is None:
        for name in HANDOFF_CONSENT_FIELDS[1:]:
            if _get(f, name) is not None:
                raise _Bad("handoff_consent_given_at", f"is required when {name} is given")
        return None
    method = _choice(f, "handoff_consent_method", ConsentMethod)
    reference = _text(f, "handoff_consent_reference", required=False)
    withdrawn = _instant(f, "handoff_consent_withdrawn_at")
    try:
        return HandoffConsent(given, method, reference, withdrawn)
    except CareCollectError as exc:
        raise _Bad(
            "handoff_consent_" + getattr(exc, "field", "given_at"), getattr(exc, "problem", "")
        ) from None


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise _Bad(
            "confidential_channels", "must be channels: " + ", ".join(c.value for c in Channel)
        ) from None


def account_from(f: Mapping[str, Any]) -> Account:
    """Build an :class:`~carecollect.patients.Account` from plain fields."""
    currency = _req(f, "currency")
    return Account(
        id=_req(f, "id"),
        patient_id=_req(f, "patient_id"),
        creditor_id=_req(f, "creditor_id"),
        currency=currency,
        jurisdiction=_text(f, "jurisdiction", required=False) or "default",
        guarantor_id=_text(f, "guarantor_id", required=False),
        household_size=_int(f, "household_size"),
        annual_income=_money(f, "annual_income", currency, required=False)
        if _currency_ok(currency)
        else None,
    )


def _currency_ok(code: str) -> bool:
    try:
        Money.zero(code)
    except CareCollectError:
        raise _Bad("currency", "must be an ISO 4217 code such as EUR, NOK or USD") from None
    return True


def invoice_from(f: Mapping[str, Any]) -> Invoice:
    """Build an :class:`~carecollect.invoices.Invoice` (with ``lines`` and the insurance fields) from plain fields."""
    currency = _req(f, "currency")
    _currency_ok(currency)
    lines = []
    for n, line in enumerate(_nested(f, "lines")):
        lines.append(
            _build(
                lambda line=line: InvoiceLine(  # type: ignore[misc]
                    code=_req(line, "code"),
                    description=_text(line, "description", required=False) or "",
                    amount=_money_req(line, "amount", currency),
                    service_date=_date_req(line, "service_date"),
                ),
                f"lines[{n}].",
            )
        )
    insurance = Insurance(
        status=_choice(f, "claim_status", ClaimStatus, ClaimStatus.NONE),
        insurer_paid=_money(f, "insurer_paid", currency, required=False),
        contractual_adjustment=_money(f, "contractual_adjustment", currency, required=False),
        submitted_on=_date(f, "claim_submitted_on", required=False),
        payer_name=_text(f, "payer_name", required=False),
    )
    return Invoice(
        id=_req(f, "id"),
        account_id=_req(f, "account_id"),
        currency=currency,
        lines=tuple(lines),  # type: ignore[arg-type]  # attrs converter=tuple confuses mypy
        issue_date=_date_req(f, "issue_date"),
        due_date=_date_req(f, "due_date"),
        first_statement_date=_date(f, "first_statement_date", required=False),
        insurance=insurance,
        status=_choice(f, "status", InvoiceStatus, InvoiceStatus.OPEN),
        kind=_choice(f, "kind", BillKind, BillKind.HOSPITAL),
        estimate_id=_text(f, "estimate_id", required=False),
        default_notice_given=_bool(f, "default_notice_given"),
        received_on=_date(f, "received_on", required=False),
    )


def payment_from(f: Mapping[str, Any], currency: str) -> Payment:
    """Build a :class:`~carecollect.payments.Payment` from plain fields (in its account's ``currency``)."""
    received = _instant(f, "received_at", required=True)
    assert received is not None
    return Payment(
        id=_req(f, "id"),
        account_id=_req(f, "account_id"),
        amount=_money_req(f, "amount", currency),
        method=_choice(f, "method", PaymentMethod),
        received_at=received,
        directed_to=_names(f, "directed_to"),  # type: ignore[arg-type]  # attrs converter=tuple
    )


def application_from(f: Mapping[str, Any]) -> AssistanceApplication:
    """Build an :class:`~carecollect.relief.assistance.AssistanceApplication` from plain fields.

    Without a ``status`` the application is ``received``: pending, so it pauses
    outreach and the agency gates until someone records the decision.
    """
    return AssistanceApplication(
        id=_req(f, "id"),
        account_id=_req(f, "account_id"),
        received_on=_date_req(f, "received_on"),
        status=_choice(f, "status", ApplicationStatus, ApplicationStatus.RECEIVED),
        decided_on=_date(f, "decided_on", required=False),
    )


# -- applying ------------------------------------------------------------------------------------------
def _charge_entries(inv: Invoice) -> list[LedgerEntry]:
    """What an imported invoice puts on the ledger: its charge, insurer payment and contractual adjustment."""
    if inv.status in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED):
        return []
    at = dt.datetime.combine(inv.issue_date, dt.time(0), dt.UTC)
    entries = [LedgerEntry(f"charge:{inv.id}", EntryKind.CHARGE, inv.total, at, inv.id, inv.id)]
    if inv.insurance.insurer_paid is not None and inv.insurance.insurer_paid.is_positive():
        entries.append(
            LedgerEntry(
                f"insurer:{inv.id}",
                EntryKind.INSURANCE_PAYMENT,
                inv.insurance.insurer_paid,
                at,
                inv.id,
                f"insurer:{inv.id}",
            )
        )
    adj = inv.insurance.contractual_adjustment
    if adj is not None and adj.is_positive():
        entries.append(
            LedgerEntry(
                f"contractual:{inv.id}",
                EntryKind.ADJUSTMENT,
                adj,
                at,
                inv.id,
                f"contractual:{inv.id}",
                "insurance_adjustment:contractual",
            )
        )
    return entries


def _ids(records: Iterable[Record]) -> Iterator[str]:
    for r in records:
        value = r.fields.get("id")
        if isinstance(value, str):
            yield value


def _account_regions(accounts: Iterable[Record]) -> dict[str, str]:
    """The country of each patient's account jurisdiction (its policy pack's calendar country)."""
    from ..policy.packs import BUILTIN_PACKS

    regions: dict[str, str] = {}
    for rec in accounts:
        pid, key = rec.fields.get("patient_id"), rec.fields.get("jurisdiction")
        if isinstance(pid, str) and isinstance(key, str):
            pack = BUILTIN_PACKS.get(key)
            region = region_of(pack.calendar_country if pack is not None else key)
            if region is not None:
                regions.setdefault(pid, region)
    return regions


def apply_records(store: Store, records: RecordSet, *, found: Sequence[ImportProblem] = ()) -> ImportSummary:
    """Check every record and store them all in one unit of work, or nothing.

    Invoices that are open or paid are charged to their account's ledger
    (``charge:<id>``, plus ``insurer:<id>`` and ``contractual:<id>`` for the
    insurance side), and payments are allocated with
    :func:`~carecollect.ledger.post_payment`. Financial-assistance applications
    are stored with their account (which must be in the import or the store);
    an application already stored under the same id is replaced by the
    imported one. Importing the same data again changes nothing.

    Every problem of the import is reported at once: those an importer
    found reading its input (``found``: a broken row, an invalid resource),
    every record's field problems, missing references and what posting the
    charges and payments to the ledgers would refuse. A record that was
    refused is not reported a second time as missing by the records that
    refer to it.

    :param found: problems found earlier, reading the input; reported with the rest.
    :raises ImportFailed: with every problem found; the store is unchanged.
    """
    unknown = set(records) - set(KINDS)
    problems: list[ImportProblem] = list(found)
    problems.extend(
        ImportProblem(k, "section", f"unknown section; use {', '.join(KINDS)}") for k in sorted(unknown)
    )
    built: dict[str, list[tuple[Record, Any]]] = {k: [] for k in KINDS}
    seen: dict[str, set[str]] = {k: set() for k in KINDS}
    refused: dict[str, set[str]] = {k: set() for k in KINDS}

    def check(kind: str, rec: Record, make: Callable[[], Any]) -> None:
        rid = rec.fields.get("id") if isinstance(rec.fields.get("id"), str) else None
        try:
            obj = _build(make)
        except _Bad as bad:
            problems.append(ImportProblem(rec.where, bad.field, bad.problem, rid))
            if rid is not None:
                refused[kind].add(rid)
            return
        if obj.id in seen[kind]:
            problems.append(ImportProblem(rec.where, "id", "appears twice in this import", rid))
            return
        seen[kind].add(obj.id)
        built[kind].append((rec, obj))

    def known(kind: str, ident: str, lookup: Callable[[str], Any]) -> Any:
        try:
            return lookup(ident)
        except NotFound:
            return None

    for rec in records.get("creditors", ()):
        check("creditors", rec, functools.partial(creditor_from, rec.fields))
    regions = _account_regions(records.get("accounts", ()))
    for rec in records.get("patients", ()):
        pid = rec.fields.get("id")
        check(
            "patients",
            rec,
            functools.partial(patient_from, rec.fields, regions.get(pid) if isinstance(pid, str) else None),
        )
    for rec in records.get("accounts", ()):
        check("accounts", rec, functools.partial(account_from, rec.fields))
    for rec in records.get("invoices", ()):
        check("invoices", rec, functools.partial(invoice_from, rec.fields))
    for rec in records.get("assistance_applications", ()):
        check("assistance_applications", rec, functools.partial(application_from, rec.fields))

    accounts: dict[str, Account] = {a.id: a for _, a in built["accounts"]}
    for rec, acc in built["accounts"]:
        if (
            acc.patient_id not in seen["patients"]
            and acc.patient_id not in refused["patients"]
            and known("patients", acc.patient_id, store.get_patient) is None
        ):
            problems.append(
                ImportProblem(rec.where, "patient_id", "no such patient in this import or the store", acc.id)
            )
        if (
            acc.creditor_id not in seen["creditors"]
            and acc.creditor_id not in refused["creditors"]
            and known("c", acc.creditor_id, store.get_creditor) is None
        ):
            problems.append(
                ImportProblem(
                    rec.where, "creditor_id", "no such creditor in this import or the store", acc.id
                )
            )

    def account_of(ident: str) -> Account | None:
        return accounts.get(ident) or known("accounts", ident, store.get_account)

    def missing_account(rec: Record, ident: str, rid: str | None) -> None:
        if ident not in refused["accounts"]:
            problems.append(
                ImportProblem(rec.where, "account_id", "no such account in this import or the store", rid)
            )

    charged: list[tuple[Record, Invoice]] = []
    for rec, inv in built["invoices"]:
        acc = account_of(inv.account_id)
        if acc is None:
            missing_account(rec, inv.account_id, inv.id)
            refused["invoices"].add(inv.id)
        elif acc.currency != inv.currency:
            problems.append(ImportProblem(rec.where, "currency", f"the account is in {acc.currency}", inv.id))
            refused["invoices"].add(inv.id)
        else:
            charged.append((rec, inv))

    for rec, app in built["assistance_applications"]:
        if account_of(app.account_id) is None:
            missing_account(rec, app.account_id, app.id)

    for rec in records.get("payments", ()):
        rid = rec.fields.get("id") if isinstance(rec.fields.get("id"), str) else None
        try:
            acc_id = _req(rec.fields, "account_id")  # checked before it is looked up in the store
        except _Bad as bad:
            problems.append(ImportProblem(rec.where, bad.field, bad.problem, rid))
            continue
        acc = account_of(acc_id)
        if acc is None:
            missing_account(rec, acc_id, rid)
            continue
        check("payments", rec, functools.partial(payment_from, rec.fields, acc.currency))

    # What the ledgers would refuse is found before anything is written, so it is reported
    # with every other problem (and a refused import never opens a write transaction).
    ledgers: dict[str, Ledger] = {}

    def ledger_of(account_id: str) -> Ledger:
        if account_id not in ledgers:
            try:
                ledgers[account_id] = store.ledger(account_id)
            except NotFound:
                acc = accounts[account_id]
                ledgers[account_id] = Ledger(acc.id, acc.currency)
        return ledgers[account_id]

    for rec, inv in charged:
        for entry in _charge_entries(inv):
            try:
                ledgers[inv.account_id], _ = post(ledger_of(inv.account_id), entry)
            except CareCollectError as exc:
                refused["invoices"].add(inv.id)
                problems.append(
                    ImportProblem(
                        rec.where,
                        getattr(exc, "field", "ledger"),
                        getattr(exc, "problem", _scrub(str(exc))),
                        inv.id,
                    )
                )
    for rec, pay in built["payments"]:
        if refused["invoices"].intersection(pay.directed_to):
            continue  # directed to an invoice refused above: that invoice's problem says it all
        try:
            ledgers[pay.account_id], _ = post_payment(ledger_of(pay.account_id), pay)
        except CareCollectError as exc:
            problems.append(
                ImportProblem(
                    rec.where,
                    getattr(exc, "field", "amount"),
                    getattr(exc, "problem", _scrub(str(exc))),
                    pay.id,
                )
            )

    if problems:
        raise ImportFailed(problems)

    added = 0
    with store.transaction():
        for _, c in built["creditors"]:
            store.put_creditor(c)
        for _, p in built["patients"]:
            store.put_patient(p)
        for _, a in built["accounts"]:
            store.put_account(a)
        for _, inv in built["invoices"]:
            store.put_invoice(inv)
        for _, app in built["assistance_applications"]:
            store.put_application(app)
        for account_id, ledger in sorted(ledgers.items()):
            added += store.append_ledger(account_id, ledger.entries)
    return ImportSummary(
        creditors=len(built["creditors"]),
        patients=len(built["patients"]),
        accounts=len(built["accounts"]),
        invoices=len(built["invoices"]),
        payments=len(built["payments"]),
        ledger_entries=added,
        assistance_applications=len(built["assistance_applications"]),
    )
