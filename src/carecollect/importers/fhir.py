"""FHIR R4 import and export: Organization, Patient, Account, Invoice and PaymentReconciliation.

Resources are validated with ``fhir.resources`` (the optional extra
``carecollect[fhir]``; its ``R4B`` models, which read R4 resources of these
types) before they are mapped; an invalid resource is reported with its
resource type, id and the failing element. The mapping (see
:doc:`/reference/import-schema`) then goes through the same checks as CSV and
JSON, and the import is all or nothing.

FHIR R4 has no place for a few facts carecollect needs; they travel in
extensions under :data:`EXT` (``jurisdiction`` and ``currency`` on Account,
``due-date`` and the insurance side on Invoice: ``claim-status``,
``insurer-paid``, ``contractual-adjustment``, ``claim-submitted-on``,
``payer-name``, ``first-statement-date``, ``bill-kind``, ``estimate-id``, and the BGB § 286 (3) facts
``default-notice-given`` and ``received-on``; ``creditor-role`` on Organization, ``handoff-consent``
(complex: ``givenAt``, ``method``, ``reference``, ``withdrawnAt``) on Patient,
``payment-method`` on a PaymentReconciliation detail). Without the insurance
extensions an invoice's patient share would be its whole total. The time zone uses the standard
``http://hl7.org/fhir/StructureDefinition/tz-code`` extension on Patient.

Financial-assistance applications are not mapped: FHIR R4 has no resource for
them. Import them from CSV or JSON (an ``assistance_applications`` section on its
own attaches to accounts already in the store).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..store.base import Store
from .records import ImportFailed, ImportProblem, ImportSummary, Record, apply_records
from .tabular import export_document, read_json

__all__ = [
    "EXT",
    "HANDOFF_CONSENT_EXTENSION",
    "TZ_EXTENSION",
    "export_fhir_bundle",
    "import_fhir",
    "records_from_bundle",
]

#: Base URL of carecollect's FHIR extensions.
EXT = "https://carecollect.dev/fhir/StructureDefinition/"
#: The standard FHIR extension for a time zone code.
TZ_EXTENSION = "http://hl7.org/fhir/StructureDefinition/tz-code"
#: carecollect's extension on a ``telecom`` item: when a hard bounce marked it undeliverable.
UNDELIVERABLE_EXTENSION = EXT + "contact-point-undeliverable"

_SUPPORTED = ("Organization", "Patient", "Account", "Invoice", "PaymentReconciliation")
_INVOICE_STATUS = {
    "draft": "draft",
    "issued": "open",
    "balanced": "paid",
    "cancelled": "cancelled",
    "entered-in-error": "cancelled",
}
_INVOICE_STATUS_BACK = {"draft": "draft", "open": "issued", "paid": "balanced", "cancelled": "cancelled"}
_TELECOM = {"email": "email", "sms": "sms", "phone": "phone"}


def _models() -> Any:
    try:
        from fhir.resources import R4B
    except ImportError:
        raise ConfigurationError(
            "FHIR import needs the optional extra: pip install 'carecollect[fhir]' (installs fhir.resources)"
        ) from None
    return R4B


def _ext(resource: Mapping[str, Any], name: str) -> Any:
    url = name if name.startswith("http") else EXT + name
    for e in resource.get("extension", []) or []:
        if isinstance(e, Mapping) and e.get("url") == url:
            for key, value in e.items():
                if key.startswith("value"):
                    return value
    return None


def _ref(value: Any, kind: str) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        ref = value["reference"]
        prefix = f"{kind}/"
        return ref[len(prefix) :] if ref.startswith(prefix) else None
    return None


def _decimal_text(value: Any) -> Any:
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


def _organization(r: Mapping[str, Any]) -> dict[str, Any]:
    address = (r.get("address") or [{}])[0]
    return {
        "id": r.get("id"),
        "name": r.get("name"),
        "role": _ext(r, "creditor-role") or "provider",
        "country": address.get("country"),
        "state": address.get("state"),
        "nonprofit": bool(_ext(r, "nonprofit") or False),
    }


def _patient(r: Mapping[str, Any]) -> dict[str, Any]:
    address = (r.get("address") or [{}])[0]
    country = address.get("country")
    language = None
    for comm in r.get("communication", []) or []:
        codes = (comm.get("language") or {}).get("coding") or []
        if codes and (language is None or comm.get("preferred")):
            language = str(codes[0].get("code") or "").split("-")[0] or None
    zones = [e.get("valueCode") for e in r.get("extension", []) or [] if e.get("url") == TZ_EXTENSION]
    # no zone extension: Patient derives the zones from the address (country, state) and the
    # phone numbers, or the import reports the resource and field; no zone is guessed
    names = r.get("name") or [{}]
    name = (
        names[0].get("text")
        or " ".join([*(names[0].get("given") or []), names[0].get("family") or ""]).strip()
    )
    points: list[dict[str, Any]] = []
    for t in r.get("telecom", []) or []:
        channel = _TELECOM.get(t.get("system") or "")
        if channel and t.get("value"):
            period = t.get("period") or {}
            points.append(
                {
                    "channel": channel,
                    "address": t["value"],
                    "consent_at": period.get("start"),
                    "opted_out_at": period.get("end"),
                    "undeliverable_at": next(
                        (
                            e.get("valueDateTime")
                            for e in t.get("extension", []) or []
                            if e.get("url") == UNDELIVERABLE_EXTENSION
                        ),
                        None,
                    ),
                }
            )
    if (address.get("country") or "").upper() in ("US", "USA"):  # "Springfield, OR 97477"
        region = " ".join(x for x in (address.get("state"), address.get("postalCode")) if x)
        last = ", ".join(x for x in (address.get("city"), region) if x)
    else:  # "10115 Berlin", "0155 Oslo"
        last = " ".join(x for x in (address.get("postalCode"), address.get("city")) if x)
    lines = [*(address.get("line") or []), last]
    if any(lines):
        points.append({"channel": "letter", "address": "\n".join(x for x in lines if x)})
    return {
        "id": r.get("id"),
        "preferred_language": language,
        "time_zones": zones,
        "name": name,
        "country": country,
        "state": address.get("state"),
        "date_of_birth": r.get("birthDate"),
        "contact_points": points,
        **_consent_fields(r),
    }


#: carecollect's extension on Patient: the consent to hand a claim to an agency (Germany),
#: with the parts ``givenAt``, ``method``, ``reference`` and ``withdrawnAt``.
HANDOFF_CONSENT_EXTENSION = EXT + "handoff-consent"
_CONSENT_PARTS = (
    ("handoff_consent_given_at", "givenAt", "valueDateTime"),
    ("handoff_consent_method", "method", "valueCode"),
    ("handoff_consent_reference", "reference", "valueString"),
    ("handoff_consent_withdrawn_at", "withdrawnAt", "valueDateTime"),
)


def _consent_fields(r: Mapping[str, Any]) -> dict[str, Any]:
    for e in r.get("extension", []) or []:
        if isinstance(e, Mapping) and e.get("url") == HANDOFF_CONSENT_EXTENSION:
            parts = {p.get("url"): p for p in e.get("extension", []) or [] if isinstance(p, Mapping)}
            return {field: (parts.get(part) or {}).get(kind) for field, part, kind in _CONSENT_PARTS}
    return {}


def _consent_extension(p: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not p.get("handoff_consent_given_at"):
        return []
    parts = [{"url": part, kind: p[field]} for field, part, kind in _CONSENT_PARTS if p.get(field)]
    return [{"url": HANDOFF_CONSENT_EXTENSION, "extension": parts}]


def _account(r: Mapping[str, Any], currencies: Mapping[str, str]) -> dict[str, Any]:
    patient = _ref((r.get("subject") or [{}])[0], "Patient")
    guarantor = None
    for g in r.get("guarantor", []) or []:
        party = g.get("party") or {}
        ref = party.get("reference") or ""
        guarantor = ref.split("/", 1)[-1] if ref else None
    return {
        "id": r.get("id"),
        "patient_id": patient,
        "creditor_id": _ref(r.get("owner"), "Organization"),
        "currency": _ext(r, "currency") or currencies.get(str(r.get("id"))),
        "jurisdiction": _ext(r, "jurisdiction"),
        "guarantor_id": guarantor if guarantor != patient else None,
    }


def _invoice(r: Mapping[str, Any]) -> dict[str, Any]:
    issued = str(r.get("date") or "")[:10] or None
    currency = (r.get("totalGross") or {}).get("currency")
    lines = []
    for item in r.get("lineItem", []) or []:
        concept = item.get("chargeItemCodeableConcept") or {}
        coding = (concept.get("coding") or [{}])[0]
        base: Mapping[str, Any] = next(
            (p for p in item.get("priceComponent", []) or [] if p.get("type") == "base"), {}
        )
        amount = base.get("amount") or {}
        currency = currency or amount.get("currency")
        lines.append(
            {
                "code": coding.get("code"),
                "description": concept.get("text") or coding.get("display") or "",
                "amount": _decimal_text(amount.get("value")),
                "service_date": _ext(item, "service-date") or issued,
            }
        )
    due = _ext(r, "due-date")
    money: dict[str, Any] = {}
    for name in ("insurer-paid", "contractual-adjustment"):
        value = _ext(r, name)
        if isinstance(value, Mapping):
            currency = currency or value.get("currency")
            money[name.replace("-", "_")] = _decimal_text(value.get("value"))
        elif value is not None:
            money[name.replace("-", "_")] = value  # reported by the field check
    if due is None and issued:
        try:
            due = (dt.date.fromisoformat(issued) + dt.timedelta(days=30)).isoformat()
        except (ValueError, OverflowError):
            due = None  # the issue date's own problem is reported
    return {
        "id": r.get("id"),
        "account_id": _ref(r.get("account"), "Account"),
        "currency": currency,
        "issue_date": issued,
        "due_date": due,
        "status": _INVOICE_STATUS.get(str(r.get("status")), r.get("status")),
        "lines": lines,
        "claim_status": _ext(r, "claim-status"),
        "claim_submitted_on": _ext(r, "claim-submitted-on"),
        "payer_name": _ext(r, "payer-name"),
        "first_statement_date": _ext(r, "first-statement-date"),
        "kind": _ext(r, "bill-kind"),
        "estimate_id": _ext(r, "estimate-id"),
        "default_notice_given": _ext(r, "default-notice-given"),
        "received_on": _ext(r, "received-on"),
        **money,
    }


def _payments(r: Mapping[str, Any], invoice_accounts: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for n, d in enumerate(r.get("detail", []) or []):
        invoice = _ref(d.get("request"), "Invoice")
        account = _ref(d.get("request"), "Account") or (invoice_accounts.get(invoice) if invoice else None)
        ident = (d.get("identifier") or {}).get("value") or f"{r.get('id')}-{n}"
        out.append(
            {
                "id": ident,
                "account_id": account,
                "amount": _decimal_text((d.get("amount") or {}).get("value")),
                "method": _ext(d, "payment-method") or "bank_transfer",
                "received_at": r.get("created"),
                "directed_to": [invoice] if invoice else [],
            }
        )
    return out


def records_from_bundle(bundle: Any) -> dict[str, list[Record]]:
    """Validate every resource of a Bundle (or a list of resources) and map it to import records.

    :raises ImportFailed: a resource is invalid or of an unsupported type.
    :raises ConfigurationError: ``fhir.resources`` is not installed.
    """
    records, problems = _bundle_records(bundle)
    if problems:
        raise ImportFailed(problems)
    return records


def _bundle_records(bundle: Any, at: str = "") -> tuple[dict[str, list[Record]], list[ImportProblem]]:
    """The import records of the valid resources, and a problem for each invalid one (``at``: the file)."""
    models = _models()
    from pydantic import ValidationError as PydanticError

    if isinstance(bundle, Mapping) and bundle.get("resourceType") == "Bundle":
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            entries = []
        resources = [e.get("resource") if isinstance(e, Mapping) else None for e in entries]
    elif isinstance(bundle, list):
        resources = list(bundle)
    else:
        return {}, [
            ImportProblem(f"{at}document", "resourceType", "must be a FHIR Bundle or a list of resources")
        ]
    problems: list[ImportProblem] = []
    valid: list[tuple[str, Mapping[str, Any]]] = []
    for n, res in enumerate(resources):
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            problems.append(ImportProblem(f"{at}entry[{n}]", "resourceType", "must be a FHIR resource"))
            continue
        kind = res["resourceType"]
        where = (
            f"{at}{kind}/{res.get('id')}"
            if isinstance(res.get("id"), str)
            else f"{at}entry[{n}] ({kind[:40]})"
        )
        if kind not in _SUPPORTED:
            problems.append(ImportProblem(where, "resourceType", f"unsupported; use {', '.join(_SUPPORTED)}"))
            continue
        try:
            models.get_fhir_model_class(kind).model_validate(dict(res))
        except PydanticError as exc:
            for err in exc.errors()[:5]:
                loc = ".".join(str(x) for x in err.get("loc", ())) or "resource"
                problems.append(
                    ImportProblem(where, loc, "is not valid FHIR R4 (" + str(err.get("type")) + ")")
                )
            continue
        except RecursionError:
            problems.append(ImportProblem(where, "resource", "nests too deeply to be valid FHIR R4"))
            continue
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            problems.append(ImportProblem(where, "resource", "is not valid FHIR R4"))
            continue
        if not isinstance(res.get("id"), str):
            problems.append(ImportProblem(where, "id", "is required"))
            continue
        valid.append((where, res))
    invoices = [(w, _invoice(r)) for w, r in valid if r["resourceType"] == "Invoice"]
    currencies = {
        str(i["account_id"]): i["currency"] for _, i in invoices if i["currency"] and i["account_id"]
    }
    invoice_accounts = {str(i["id"]): str(i["account_id"]) for _, i in invoices}
    out: dict[str, list[Record]] = {
        "creditors": [],
        "patients": [],
        "accounts": [],
        "invoices": [],
        "payments": [],
    }
    for where, r in valid:
        kind = r["resourceType"]
        if kind == "Organization":
            out["creditors"].append(Record(where, _organization(r)))
        elif kind == "Patient":
            out["patients"].append(Record(where, _patient(r)))
        elif kind == "Account":
            out["accounts"].append(Record(where, _account(r, currencies)))
        elif kind == "PaymentReconciliation":
            out["payments"].extend(
                Record(f"{where} detail[{n}]", p) for n, p in enumerate(_payments(r, invoice_accounts))
            )
    out["invoices"] = [Record(w, i) for w, i in invoices]
    return out, problems


def import_fhir(
    store: Store, source: Mapping[str, Any] | Sequence[Any] | str | os.PathLike[str]
) -> ImportSummary:
    """Import a FHIR R4 Bundle (a mapping, a list of resources, or the path of a JSON file), all or nothing.

    Every problem is reported at once: invalid resources (by type, id and
    element) together with the problems of the valid ones' records. Read from
    a file, every problem names the file (``"bundle.json Invoice/INV-9"``).

    :raises ImportFailed: every problem found; nothing is stored.
    :raises ConfigurationError: ``fhir.resources`` is not installed.
    """
    _models()
    data: Any
    at = ""
    if isinstance(source, (str, os.PathLike)):
        # FHIR writes decimals as JSON numbers: read them exactly
        data = read_json(source, parse_float=Decimal)
        at = f"{Path(source).name} "
    else:
        data = source
    records, problems = _bundle_records(data, at)
    return apply_records(store, records, found=problems)


def export_fhir_bundle(store: Store) -> dict[str, Any]:
    """The store as a FHIR R4 collection Bundle that :func:`import_fhir` reads back."""
    doc = export_document(store)
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> None:
        entries.append(
            {"fullUrl": f"urn:carecollect:{resource['resourceType']}/{resource['id']}", "resource": resource}
        )

    for c in doc["creditors"]:
        add(
            {
                "resourceType": "Organization",
                "id": c["id"],
                "name": c["name"],
                "extension": [
                    {"url": EXT + "creditor-role", "valueCode": c["role"]},
                    {"url": EXT + "nonprofit", "valueBoolean": bool(c["nonprofit"])},
                ],
                "address": [{k: v for k, v in (("country", c["country"]), ("state", c["state"])) if v}],
            }
        )
    for p in doc["patients"]:
        telecom = []
        letter = None
        for cp in p["contact_points"]:
            if cp["channel"] == "letter":
                letter = letter or cp["address"]
                continue
            if cp["channel"] not in _TELECOM:
                continue
            item: dict[str, Any] = {"system": cp["channel"], "value": cp["address"]}
            period = {k: v for k, v in (("start", cp["consent_at"]), ("end", cp["opted_out_at"])) if v}
            if period:
                item["period"] = period
            if cp.get("undeliverable_at"):
                item["extension"] = [
                    {"url": UNDELIVERABLE_EXTENSION, "valueDateTime": cp["undeliverable_at"]}
                ]
            telecom.append(item)
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": p["id"],
            "extension": [
                *({"url": TZ_EXTENSION, "valueCode": z} for z in p["time_zones"]),
                *_consent_extension(p),
            ],
            "communication": [
                {
                    "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": p["preferred_language"]}]},
                    "preferred": True,
                }
            ],
        }
        if p["name"]:
            resource["name"] = [{"text": p["name"]}]
        if telecom:
            resource["telecom"] = telecom
        address = {k: v for k, v in (("country", p["country"]), ("state", p["state"])) if v}
        if letter:
            address["line"] = letter.split("\n")
        if address:
            resource["address"] = [address]
        if p["date_of_birth"]:
            resource["birthDate"] = p["date_of_birth"]
        add(resource)
    for a in doc["accounts"]:
        acc: dict[str, Any] = {
            "resourceType": "Account",
            "id": a["id"],
            "status": "active",
            "extension": [
                {"url": EXT + "jurisdiction", "valueCode": a["jurisdiction"]},
                {"url": EXT + "currency", "valueCode": a["currency"]},
            ],
            "subject": [{"reference": f"Patient/{a['patient_id']}"}],
            "owner": {"reference": f"Organization/{a['creditor_id']}"},
        }
        if a["guarantor_id"]:
            acc["guarantor"] = [{"party": {"reference": f"RelatedPerson/{a['guarantor_id']}"}}]
        add(acc)
    for i in doc["invoices"]:
        add(
            {
                "resourceType": "Invoice",
                "id": i["id"],
                "status": _INVOICE_STATUS_BACK[i["status"]],
                "extension": [
                    {"url": EXT + "due-date", "valueDate": i["due_date"]},
                    *_insurance_extensions(i),
                ],
                "account": {"reference": f"Account/{i['account_id']}"},
                "date": i["issue_date"],
                "lineItem": [
                    {
                        "sequence": n + 1,
                        "extension": [{"url": EXT + "service-date", "valueDate": ln["service_date"]}],
                        "chargeItemCodeableConcept": {
                            "coding": [{"code": ln["code"]}],
                            **({"text": ln["description"]} if ln["description"] else {}),
                        },
                        "priceComponent": [
                            {
                                "type": "base",
                                "amount": {"value": Decimal(ln["amount"]), "currency": i["currency"]},
                            }
                        ],
                    }
                    for n, ln in enumerate(i["lines"])
                ],
                "totalGross": {
                    "value": sum((Decimal(ln["amount"]) for ln in i["lines"]), Decimal(0)),
                    "currency": i["currency"],
                },
            }
        )
    for pay in doc["payments"]:
        target = pay["directed_to"][0] if len(pay["directed_to"]) == 1 else None
        add(
            {
                "resourceType": "PaymentReconciliation",
                "id": pay["id"].replace("#", "-")[:64],
                "status": "active",
                "created": pay["received_at"],
                "paymentDate": pay["received_at"][:10],
                "paymentAmount": {
                    "value": Decimal(pay["amount"]),
                    "currency": _currency_of(doc, pay["account_id"]),
                },
                "detail": [
                    {
                        "identifier": {"value": pay["id"]},
                        "type": {"coding": [{"code": "payment"}]},
                        "extension": [{"url": EXT + "payment-method", "valueCode": pay["method"]}],
                        "request": {
                            "reference": f"Invoice/{target}" if target else f"Account/{pay['account_id']}"
                        },
                        "amount": {
                            "value": Decimal(pay["amount"]),
                            "currency": _currency_of(doc, pay["account_id"]),
                        },
                    }
                ],
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _insurance_extensions(i: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invoice's insurance side, first statement date, bill kind and estimate as extensions (what is set)."""
    out: list[dict[str, Any]] = [{"url": EXT + "claim-status", "valueCode": i["claim_status"]}]
    for field in ("insurer_paid", "contractual_adjustment"):
        if i[field] is not None:
            out.append(
                {
                    "url": EXT + field.replace("_", "-"),
                    "valueMoney": {"value": Decimal(i[field]), "currency": i["currency"]},
                }
            )
    for field, name, kind in (
        ("claim_submitted_on", "claim-submitted-on", "valueDate"),
        ("payer_name", "payer-name", "valueString"),
        ("first_statement_date", "first-statement-date", "valueDate"),
        ("kind", "bill-kind", "valueCode"),
        ("estimate_id", "estimate-id", "valueString"),
        ("received_on", "received-on", "valueDate"),
    ):
        if i[field] is not None:
            out.append({"url": EXT + name, kind: i[field]})
    if i["default_notice_given"]:
        out.append({"url": EXT + "default-notice-given", "valueBoolean": True})
    return out


def _currency_of(doc: Mapping[str, Any], account_id: str) -> str:
    return str(next(a["currency"] for a in doc["accounts"] if a["id"] == account_id))
