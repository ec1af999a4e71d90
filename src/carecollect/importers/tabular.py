"""CSV and JSON import and export in carecollect's documented schema (:doc:`/reference/import-schema`).

JSON is one document::

    {"format": "carecollect-import/1", "creditors": [...], "patients": [...],
     "accounts": [...], "invoices": [...], "payments": [...],
     "assistance_applications": [...]}

CSV is a folder of files, one per kind (``creditors.csv``, ``patients.csv``,
``contact_points.csv``, ``accounts.csv``, ``invoices.csv``,
``invoice_lines.csv``, ``payments.csv``, ``assistance_applications.csv``);
any may be missing. Amounts are
decimal text (``"125.50"``), dates ISO dates, instants ISO-8601 with offset.

>>> import datetime as dt
>>> from carecollect.store import SQLiteStore
>>> doc = {"format": FORMAT,
...   "creditors": [{"id": "CR-1", "name": "Praxis am Park", "role": "provider", "country": "DE"}],
...   "patients": [{"id": "P-1", "preferred_language": "de", "time_zones": ["Europe/Berlin"]}],
...   "accounts": [{"id": "A-1", "patient_id": "P-1", "creditor_id": "CR-1", "currency": "EUR",
...                 "jurisdiction": "de"}],
...   "invoices": [{"id": "INV-1", "account_id": "A-1", "currency": "EUR", "issue_date": "2026-03-02",
...                 "due_date": "2026-04-01", "lines": [{"code": "GOÄ 1", "amount": "10.72",
...                 "service_date": "2026-03-02"}]}]}
>>> store = SQLiteStore(":memory:")
>>> import_json(store, doc).invoices
1
>>> store.ledger("A-1").balance
Money('10.72', 'EUR')
>>> bad = {"format": FORMAT, "invoices": [
...     {"id": "INV-2", "account_id": "A-1", "currency": "EUR", "issue_date": "2026-03-02",
...      "due_date": "2026-04-01", "lines": []},
...     {"id": "INV-3", "account_id": "A-9", "currency": "EUR", "issue_date": "2026-03-02",
...      "due_date": "2026-04-01", "lines": [{"code": "GOÄ 1", "amount": "10.725", "service_date": "2026-03-02"}]}]}
>>> try:
...     import_json(store, bad)
... except ImportFailed as failed:
...     for problem in failed.problems:
...         print(problem)
invoices[0] (INV-2): field 'lines': an invoice needs at least one line
invoices[1] (INV-3): field 'lines[0].amount': 10.725 has more decimal places than EUR allows (2); round it explicitly with Money.of()
>>> store.close()
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..invoices import Invoice
from ..ledger import EntryKind
from ..money import Money
from ..patients import Patient
from ..store.base import Store
from .records import (
    HANDOFF_CONSENT_FIELDS,
    KINDS,
    ImportFailed,
    ImportProblem,
    ImportSummary,
    Record,
    _JsonNumber,
    apply_records,
)

__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "export_csv",
    "export_document",
    "export_json",
    "import_csv",
    "import_json",
    "read_json",
    "records_from_document",
]

#: The value of the ``format`` key of a JSON import document.
FORMAT = "carecollect-import/1"

#: The columns of each CSV file, in order (lists are written as names separated by spaces).
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
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
        "annual_income",
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
        "insurer_paid",
        "contractual_adjustment",
        "claim_submitted_on",
        "payer_name",
        "default_notice_given",
        "received_on",
    ),
    "invoice_lines": ("invoice_id", "code", "description", "amount", "service_date"),
    "payments": ("id", "account_id", "amount", "method", "received_at", "directed_to"),
    "assistance_applications": ("id", "account_id", "received_on", "status", "decided_on"),
}


# -- JSON ----------------------------------------------------------------------------------------
def _document_records(document: Any, at: str = "") -> tuple[dict[str, list[Record]], list[ImportProblem]]:
    """The records of a JSON import document and the problems of its shape (``at``: the file, if any)."""
    if not isinstance(document, Mapping):
        return {}, [ImportProblem(f"{at}document", "document", "must be a JSON object")]
    problems = []
    if document.get("format") != FORMAT:
        problems.append(ImportProblem(f"{at}document", "format", f"must be {FORMAT!r}"))
    out: dict[str, list[Record]] = {}
    for key, value in document.items():
        if key == "format":
            continue
        if key not in KINDS:
            problems.append(
                ImportProblem(f"{at}document", str(key), f"unknown section; use {', '.join(KINDS)}")
            )
            continue
        if not isinstance(value, list):
            problems.append(ImportProblem(f"{at}{key}", key, "must be a list of objects"))
            continue
        items = []
        for n, item in enumerate(value):
            if not isinstance(item, Mapping):
                problems.append(ImportProblem(f"{at}{key}[{n}]", "record", "must be an object"))
                continue
            items.append(Record(f"{at}{key}[{n}]", item))
        out[key] = items
    return out, problems


def records_from_document(document: Any) -> dict[str, list[Record]]:
    """Split a JSON import document into records tagged ``"invoices[3]"``.

    :raises ImportFailed: the document is not an object of the expected shape.
    """
    records, problems = _document_records(document)
    if problems:
        raise ImportFailed(problems)
    return records


def read_json(path: str | os.PathLike[str], *, parse_float: Callable[[str], Any]) -> Any:
    """Read a JSON file for an import, or raise :class:`ImportFailed` naming the file (and line).

    :param parse_float: what a number with a fraction or an exponent becomes
        (:class:`~decimal.Decimal` for FHIR, whose decimals are JSON numbers;
        a marker the field readers refuse by name for carecollect's schema,
        whose amounts are text). An integer of more than 30 digits becomes
        that marker too, whatever ``parse_float`` is.
    :raises ImportFailed: the file cannot be read as UTF-8, is not JSON, or
        nests too deeply to be read.
    """
    name = Path(path).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(
            [ImportProblem(name, "file", f"cannot be read as UTF-8 text ({type(exc).__name__})")]
        ) from None
    try:
        return json.loads(text, parse_float=parse_float, parse_int=_JsonNumber.parse_int)
    except RecursionError:
        raise ImportFailed(
            [ImportProblem(name, "document", "nests too deeply to be an import document")]
        ) from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise ImportFailed(
            [ImportProblem(name if line is None else f"{name} line {line}", "document", "is not valid JSON")]
        ) from None


def import_json(store: Store, source: Mapping[str, Any] | str | os.PathLike[str]) -> ImportSummary:
    """Import a JSON document (a mapping, or the path of a ``.json`` file), all or nothing.

    Read from a file, every problem names the file (``"doc.json invoices[3]"``),
    and a number with a fraction or an exponent is refused in the field that
    holds it: amounts are decimal text, never a JSON float.

    :raises ImportFailed: every problem found; nothing is stored.
    """
    document: Any = source
    at = ""
    if isinstance(source, (str, os.PathLike)):
        document = read_json(source, parse_float=_JsonNumber)
        at = f"{Path(source).name} "
    records, problems = _document_records(document, at)
    return apply_records(store, records, found=problems)


# -- CSV -------------------------------------------------------------------------------------------------
def _read_csv(path: Path, kind: str, problems: list[ImportProblem]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of one CSV file with their line numbers; every problem of its shape goes to ``problems``.

    A row that is not well-formed CSV (a quote never closed, a stray quote in
    a field) is reported at the line where it starts, and reading goes on
    with the next line, so every broken row of the file is listed at once.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ImportProblem(path.name, "file", f"cannot be read as UTF-8 ({type(exc).__name__})"))
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns = CSV_COLUMNS[kind]
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(
                ImportProblem(f"{path.name} row {start}", "row", f"is not well-formed CSV ({exc})")
            )
            if header is None:
                return
            continue
        if header is None:
            header = cells
            required = (
                {"id"}
                if kind not in ("contact_points", "invoice_lines")
                else {"contact_points": {"patient_id"}, "invoice_lines": {"invoice_id"}}[kind]
            )
            missing = required - set(header)
            if missing:
                problems.append(
                    ImportProblem(
                        f"{path.name} row 1", sorted(missing)[0], "column is missing from the header"
                    )
                )
                return
            for n, h in enumerate(header, 1):
                if not h.strip():
                    problems.append(ImportProblem(f"{path.name} row 1", f"column {n}", "has no name"))
                elif h not in columns:
                    problems.append(
                        ImportProblem(f"{path.name} row 1", h, "unknown column; see the import schema")
                    )
            continue
        if not cells:
            continue  # a blank line
        if len(cells) > len(header):
            problems.append(
                ImportProblem(f"{path.name} row {reader.line_num}", "row", "has more cells than the header")
            )
            continue
        yield reader.line_num, {h: v for h, v in zip(header, cells, strict=False) if h in columns}


def import_csv(store: Store, folder: str | os.PathLike[str]) -> ImportSummary:
    """Import the CSV files in ``folder`` (see :data:`CSV_COLUMNS`), all or nothing.

    Row numbers in problems are the line numbers of the file (the header is row 1).

    :raises ImportFailed: every problem found; nothing is stored.
    """
    base = Path(folder)
    problems: list[ImportProblem] = []
    if not base.is_dir():
        raise ImportFailed([ImportProblem(str(base.name), "folder", "is not a folder of CSV files")])
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for kind in CSV_COLUMNS:
        path = base / f"{kind}.csv"
        if path.exists():
            rows[kind] = [(f"{path.name} row {n}", row) for n, row in _read_csv(path, kind, problems)]
    children: dict[str, dict[str, list[dict[str, Any]]]] = {
        "contact_points": defaultdict(list),
        "invoice_lines": defaultdict(list),
    }
    parents = {
        "contact_points": ("patients", "patient_id", "contact_points"),
        "invoice_lines": ("invoices", "invoice_id", "lines"),
    }
    for kind, (parent, key, _) in parents.items():
        parent_ids = {r.get("id") for _, r in rows.get(parent, [])}
        for where, row in rows.get(kind, []):
            owner = row.pop(key, "")
            if owner not in parent_ids:
                problems.append(ImportProblem(where, key, f"no such record in {parent}.csv"))
                continue
            row["_where"] = where
            children[kind][owner].append(row)
    records: dict[str, list[Record]] = {}
    for kind in KINDS:
        items = []
        for where, row in rows.get(kind, []):
            for child, (parent, _, field) in parents.items():
                if parent == kind:
                    row[field] = [
                        {k: v for k, v in c.items() if k != "_where"}
                        for c in children[child][row.get("id", "")]
                    ]
            items.append(Record(where, row))
        if kind in rows:
            records[kind] = items
    try:
        return apply_records(store, records, found=problems)
    except ImportFailed as failed:
        raise ImportFailed([_child_where(p, records, children) for p in failed.problems]) from None


def _child_where(
    p: ImportProblem,
    records: Mapping[str, Sequence[Record]],
    children: Mapping[str, Mapping[str, list[dict[str, Any]]]],
) -> ImportProblem:
    """Point a problem in ``lines[2].amount`` at its own row of invoice_lines.csv."""
    nested = _NESTED_FIELD.fullmatch(p.field)
    if nested is None or p.record_id is None:
        return p
    child = {"lines": "invoice_lines", "contact_points": "contact_points"}[nested["list"]]
    owned = children[child].get(p.record_id, [])
    index = int(nested["index"])
    if index < len(owned):
        return ImportProblem(owned[index]["_where"], nested["field"], p.problem, p.record_id)
    return p


_NESTED_FIELD = re.compile(r"(?P<list>lines|contact_points)\[(?P<index>[0-9]{1,6})\]\.(?P<field>.+)")


# -- export ------------------------------------------------------------------------------------------------------
def _amount(m: Money | None) -> str | None:
    return None if m is None else str(m.amount)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    from ..store.codec import iso_instant

    return iso_instant(value) if hasattr(value, "tzinfo") and hasattr(value, "hour") else value.isoformat()


def _consent_doc(p: Patient) -> dict[str, Any]:
    c = p.handoff_consent
    if c is None:
        return dict.fromkeys(HANDOFF_CONSENT_FIELDS)
    return dict(
        zip(
            HANDOFF_CONSENT_FIELDS,
            (_iso(c.given_at), c.method.value, c.reference, _iso(c.withdrawn_at)),
            strict=True,
        )
    )


def _patient_doc(p: Patient) -> dict[str, Any]:
    return {
        "id": p.id,
        "preferred_language": p.preferred_language,
        "time_zones": list(p.time_zones),
        "name": p.name,
        "country": p.country,
        "state": p.state,
        "confidential": p.confidential.value,
        "confidential_channels": sorted(c.value for c in p.confidential_channels),
        "cease_requested_at": _iso(p.cease_requested_at),
        "date_of_birth": _iso(p.date_of_birth),
        **_consent_doc(p),
        "contact_points": [
            {
                "channel": c.channel.value,
                "address": c.address,
                "consent_at": _iso(c.consent_at),
                "opted_out_at": _iso(c.opted_out_at),
                "verified_at": _iso(c.verified_at),
                "time_zone": c.time_zone,
                "undeliverable_at": _iso(c.undeliverable_at),
            }
            for c in p.contact_points
        ],
    }


def _invoice_doc(i: Invoice) -> dict[str, Any]:
    ins = i.insurance
    return {
        "id": i.id,
        "account_id": i.account_id,
        "currency": i.currency,
        "issue_date": _iso(i.issue_date),
        "due_date": _iso(i.due_date),
        "first_statement_date": _iso(i.first_statement_date),
        "status": i.status.value,
        "kind": i.kind.value,
        "estimate_id": i.estimate_id,
        "claim_status": ins.status.value,
        "insurer_paid": _amount(ins.insurer_paid),
        "contractual_adjustment": _amount(ins.contractual_adjustment),
        "claim_submitted_on": _iso(ins.submitted_on),
        "payer_name": ins.payer_name,
        "default_notice_given": i.default_notice_given,
        "received_on": _iso(i.received_on),
        "lines": [
            {
                "code": ln.code,
                "description": ln.description,
                "amount": _amount(ln.amount),
                "service_date": _iso(ln.service_date),
            }
            for ln in i.lines
        ],
    }


def export_document(store: Store) -> dict[str, Any]:
    """Everything in ``store`` as a JSON import document (the inverse of :func:`import_json`).

    Payments are rebuilt from the ledger: one per payment id, ``directed_to``
    listing the invoices it was allocated to, so importing the export again
    allocates it the same way. A payment's amount is what it still pays, net of
    its refunds and reversals (a payment taken back in full is left out), so the
    account's balance reads back as exported. Financial-assistance applications
    are listed account by account, oldest first.
    """
    doc: dict[str, Any] = {
        "format": FORMAT,
        "creditors": [],
        "patients": [],
        "accounts": [],
        "invoices": [],
        "payments": [],
        "assistance_applications": [],
    }
    for c in store.creditors():
        doc["creditors"].append(
            {
                "id": c.id,
                "name": c.name,
                "role": c.role.value,
                "country": c.country,
                "nonprofit": c.nonprofit,
                "state": c.state,
                "business_name_for_voicemail": c.business_name_for_voicemail,
            }
        )
    for p in store.patients():
        doc["patients"].append(_patient_doc(p))
    for snap in store.iter_account_snapshots():
        a = snap.account
        doc["accounts"].append(
            {
                "id": a.id,
                "patient_id": a.patient_id,
                "creditor_id": a.creditor_id,
                "currency": a.currency,
                "jurisdiction": a.jurisdiction,
                "guarantor_id": a.guarantor_id,
                "household_size": a.household_size,
                "annual_income": _amount(a.annual_income),
            }
        )
        doc["invoices"].extend(_invoice_doc(i) for i in snap.invoices)
        payments: dict[str, dict[str, Any]] = {}
        for e in snap.ledger.entries:
            if e.kind is not EntryKind.PATIENT_PAYMENT:
                continue
            pay = payments.setdefault(
                e.source_id,
                {
                    "id": e.source_id,
                    "account_id": a.id,
                    "units": 0,
                    "method": e.reason,
                    "received_at": _iso(e.at),
                    "directed_to": [],
                },
            )
            pay["units"] += e.amount.minor_units
            if e.invoice_id is not None:
                pay["directed_to"].append(e.invoice_id)
        for pay in payments.values():
            # what the payment still pays: refunds and reversals (chargebacks, returned debits) taken off
            pay.pop("units")
            left = snap.ledger.paid_by(pay["id"])
            if not left.is_positive():
                continue
            pay["amount"] = _amount(left)
            doc["payments"].append(pay)
        doc["assistance_applications"].extend(
            {
                "id": app.id,
                "account_id": app.account_id,
                "received_on": _iso(app.received_on),
                "status": app.status.value,
                "decided_on": _iso(app.decided_on),
            }
            for app in snap.applications
        )
    return doc


def export_json(store: Store, path: str | os.PathLike[str]) -> None:
    """Write :func:`export_document` to ``path`` as UTF-8 JSON."""
    Path(path).write_text(
        json.dumps(export_document(store), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def export_csv(store: Store, folder: str | os.PathLike[str]) -> None:
    """Write the store as the CSV files :func:`import_csv` reads, one per kind, into ``folder``."""
    doc = export_document(store)
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[dict[str, Any]]] = {k: [] for k in CSV_COLUMNS}
    for kind in KINDS:
        for item in doc[kind]:
            row = dict(item)
            if kind == "patients":
                tables["contact_points"].extend(
                    {"patient_id": row["id"], **cp} for cp in row.pop("contact_points")
                )
            if kind == "invoices":
                tables["invoice_lines"].extend({"invoice_id": row["id"], **ln} for ln in row.pop("lines"))
            tables[kind].append(row)
    for kind, columns in CSV_COLUMNS.items():
        with (base / f"{kind}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in tables[kind]:
                writer.writerow([_cell(row.get(c)) for c in columns])
