"""FHIR R4 ClaimResponse and ExplanationOfBenefit: the insurer's answer, read to the same records as an 835.

Each resource is validated with ``fhir.resources`` (the ``carecollect[fhir]``
extra, its R4B models, which read R4 resources of these types) and becomes one
:class:`~carecollect.remittance.RemittanceAdvice` with one
:class:`~carecollect.remittance.ClaimPayment`, applied by
:func:`carecollect.importers.remittance.apply_remittances` exactly as an 835 is.

The mapping (see :doc:`/reference/remittance`):

* the invoice: ``request`` (ClaimResponse) or ``claim`` (ExplanationOfBenefit),
  a reference ``Claim/<invoice id>`` or an identifier whose value is the invoice id;
* the payer: ``insurer.display``; the payment: ``payment.amount``, ``payment.date``
  (else ``created``), its trace ``payment.identifier.value`` (else the resource id);
* each ``item``: ``itemSequence`` (``sequence`` on an EOB) is the invoice line number;
  adjudication categories (``http://terminology.hl7.org/CodeSystem/adjudication``)
  ``submitted`` (the charge), ``benefit`` (paid), ``eligible`` (the allowed amount: the
  charge above it is a ``CO`` 45 adjustment), ``deductible`` (``PR`` 1), ``copay``
  (``PR`` 3), and ``coinsurance`` / ``noncovered`` (``PR`` 2 / ``PR`` 96, the codes
  CARIN Blue Button uses); an adjudication whose ``reason`` carries a CARC code uses
  it, in the group its category names when that is ``CO``, ``PR``, ``OA`` or ``PI``;
  ``noteNumber`` → ``processNote.text`` values that are RARC codes are the remarks;
* nothing paid on a charge is a denial; status ``cancelled`` or ``entered-in-error``
  is the reversal of the same resource's answer.

Each item must balance (charge − paid = its adjustments), as in an 835.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError, RemittanceRefused
from ..money import Money, total
from ..remittance import (
    AdjustmentGroup,
    ClaimAdjustment,
    ClaimOutcome,
    ClaimPayment,
    RemittanceAdvice,
    ServiceLinePayment,
)

__all__ = ["ADJUDICATION", "CARC_SYSTEM", "read_fhir_remittance", "remittance_from_resource"]

#: The FHIR adjudication category code system.
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
#: The code system of Claim Adjustment Reason Codes.
CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
_KINDS = ("ClaimResponse", "ExplanationOfBenefit")
_SHARE = {"deductible": "1", "copay": "3", "coinsurance": "2", "noncovered": "96"}


def _refuse(res: Mapping[str, Any], element: str, problem: str) -> RemittanceRefused:
    kind = str(res.get("resourceType"))
    return RemittanceRefused(kind, element, problem, record=f"{kind} {res.get('id', '?')}")


def _validate(res: Mapping[str, Any]) -> None:
    try:
        from fhir.resources import R4B
        from pydantic import ValidationError as PydanticError
    except ImportError:
        raise ConfigurationError(
            "FHIR import needs the optional extra: pip install 'carecollect[fhir]' (installs fhir.resources)"
        ) from None
    try:
        R4B.get_fhir_model_class(str(res.get("resourceType"))).model_validate(dict(res))
    except PydanticError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "resource"
        raise _refuse(res, loc, f"is not valid FHIR R4 ({err.get('type')})") from None


def _money(res: Mapping[str, Any], value: Any, where: str) -> Money:
    if not isinstance(value, Mapping) or "value" not in value:
        raise _refuse(res, where, "an amount (value, currency) is required")
    amount = value["value"]
    if isinstance(amount, float):
        amount = Decimal(repr(amount))
    try:
        return Money(Decimal(str(amount)), str(value.get("currency") or "USD"))
    except (ArithmeticError, ValueError) as exc:
        raise _refuse(res, where, f"not an amount: {exc}") from None


def _codes(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return []
    return [
        (str(c.get("system", "")), str(c.get("code", "")))
        for c in concept.get("coding", []) or []
        if isinstance(c, Mapping)
    ]


def _invoice_id(res: Mapping[str, Any]) -> str:
    field = "request" if res.get("resourceType") == "ClaimResponse" else "claim"
    ref = res.get(field)
    if isinstance(ref, Mapping):
        text = ref.get("reference")
        if isinstance(text, str) and text.startswith("Claim/") and len(text) > 6:
            return text[6:]
        ident = ref.get("identifier")
        if isinstance(ident, Mapping) and isinstance(ident.get("value"), str) and ident["value"].strip():
            return str(ident["value"]).strip()
    raise _refuse(res, field, "names no claim: a reference Claim/<invoice id> or an identifier is required")


def _item(
    res: Mapping[str, Any], item: Mapping[str, Any], i: int, notes: Mapping[int, str]
) -> ServiceLinePayment:
    where = f"item[{i}]"
    cur: str | None = None
    charge = paid = eligible = None
    adjustments: list[ClaimAdjustment] = []
    for j, adj in enumerate(item.get("adjudication", []) or []):
        at = f"{where}.adjudication[{j}]"
        cats = _codes(adj.get("category"))
        amount = _money(res, adj.get("amount"), f"{at}.amount") if adj.get("amount") is not None else None
        if amount is None:
            continue
        cur = cur or str(amount.currency)
        category = next((code for _s, code in cats), "")
        carc = next((code for s, code in _codes(adj.get("reason")) if s == CARC_SYSTEM), None)
        if category == "submitted":
            charge = amount
        elif category == "benefit":
            paid = amount
        elif category == "eligible":
            eligible = amount
        elif category in _SHARE:
            adjustments.append(ClaimAdjustment(AdjustmentGroup.PR, carc or _SHARE[category], amount))
        elif carc is not None:
            group = (
                AdjustmentGroup(category) if category in AdjustmentGroup.__members__ else AdjustmentGroup.CO
            )
            adjustments.append(ClaimAdjustment(group, carc, amount))
        elif category not in ("eligpercent", "tax", "unallocdeduct"):
            raise _refuse(
                res, f"{at}.category", f"adjudication category {category!r} is not one carecollect reads"
            )
    if charge is None:
        raise _refuse(res, where, "a 'submitted' adjudication (the charge) is required")
    paid = paid if paid is not None else Money.zero(charge.currency)
    if eligible is not None and charge - eligible != Money.zero(charge.currency):
        adjustments.insert(0, ClaimAdjustment(AdjustmentGroup.CO, "45", charge - eligible))
    adjusted = total((a.amount for a in adjustments), str(charge.currency))
    if charge - paid != adjusted:
        raise _refuse(
            res,
            f"{where}.adjudication",
            f"the item does not balance: charge {charge} − paid {paid} ≠ adjustments {adjusted}",
        )
    seq = item.get("itemSequence", item.get("sequence"))
    remarks = tuple(notes[n] for n in item.get("noteNumber", []) or [] if n in notes)
    code = next((c for _s, c in _codes(item.get("productOrService"))), "")
    return ServiceLinePayment(
        code, charge, paid, tuple(adjustments), remarks, seq if isinstance(seq, int) else None
    )


def remittance_from_resource(res: Mapping[str, Any]) -> RemittanceAdvice:
    """One validated ClaimResponse or ExplanationOfBenefit as a :class:`~carecollect.remittance.RemittanceAdvice`.

    :raises RemittanceRefused: not valid FHIR R4, or a fact carecollect needs is missing or does not balance
        (naming the resource and the element).
    """
    if res.get("resourceType") not in _KINDS:
        raise _refuse(res, "resourceType", "a ClaimResponse or an ExplanationOfBenefit is expected")
    _validate(res)
    invoice_id = _invoice_id(res)
    notes = {
        int(n["number"]): str(n["text"])
        for n in res.get("processNote", []) or []
        if isinstance(n, Mapping) and isinstance(n.get("number"), int) and isinstance(n.get("text"), str)
    }
    items = res.get("item") or []
    if not items:
        raise _refuse(res, "item", "at least one adjudicated item is required")
    lines = tuple(_item(res, it, i, notes) for i, it in enumerate(items))
    cur = str(lines[0].charge.currency)
    charge = total((ln.charge for ln in lines), cur)
    paid = total((ln.paid for ln in lines), cur)
    share = total((a.amount for ln in lines for a in ln.adjustments if a.group is AdjustmentGroup.PR), cur)
    payment = res.get("payment") or {}
    day = payment.get("date") or str(res.get("created", ""))[:10]
    try:
        paid_on = dt.date.fromisoformat(str(day))
    except ValueError:
        raise _refuse(res, "payment.date", "a payment date (or created) is required") from None
    if payment.get("amount") is not None and _money(res, payment["amount"], "payment.amount") != paid:
        raise _refuse(res, "payment.amount", f"the payment is not the items' benefit {paid}")
    trace = str((payment.get("identifier") or {}).get("value") or res.get("id"))
    rid = f"fhir:{res['resourceType']}/{res.get('id')}"
    outcome = ClaimOutcome.DENIED if paid.is_zero() and charge.is_positive() else ClaimOutcome.PRIMARY
    claim = ClaimPayment(
        invoice_id, outcome, charge, paid, share, rid, (), lines, tuple(notes.values()), rid + "/1"
    )
    if res.get("status") in ("cancelled", "entered-in-error"):
        claim = claim.negated()
        claim = ClaimPayment(
            claim.invoice_id,
            ClaimOutcome.REVERSAL,
            claim.charge,
            claim.paid,
            claim.patient_responsibility,
            rid,
            (),
            claim.lines,
            claim.remarks,
            rid + "/reversal",
        )
        rid += "/reversal"
        paid = -paid
    payer = str((res.get("insurer") or {}).get("display") or "")
    return RemittanceAdvice(rid, payer, "", paid, paid_on, trace, (claim,), Money.zero(cur))


def read_fhir_remittance(text: str) -> tuple[RemittanceAdvice, ...]:
    """Read a ClaimResponse, an ExplanationOfBenefit, or a Bundle of them (JSON text).

    :raises RemittanceRefused: not JSON, another resource type, or a fault in a resource.
    """
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise RemittanceRefused(
            "Bundle", "json", f"not JSON: {exc.__class__.__name__}", record="FHIR file"
        ) from None
    resources: Sequence[Any]
    if isinstance(doc, Mapping) and doc.get("resourceType") == "Bundle":
        resources = [e.get("resource") for e in doc.get("entry", []) or [] if isinstance(e, Mapping)]
    else:
        resources = [doc]
    out = []
    for res in resources:
        if not isinstance(res, Mapping):
            raise RemittanceRefused("Bundle", "entry.resource", "a resource is required", record="FHIR file")
        out.append(remittance_from_resource(res))
    return tuple(out)
