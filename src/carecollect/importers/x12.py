"""X12 835 (005010X221A1) health care claim payment/advice: read, check, write.

Reading goes through `pyx12 <https://pypi.org/project/pyx12/>`_ (the optional extra
``carecollect[x12]``): it checks the interchange and group envelopes, the segment
counts (SE01, GE01, IEA01), the control numbers and every segment against the
implementation guide's map for 005010X221A1. A file it faults is refused whole with
:class:`~carecollect.errors.RemittanceRefused` naming the segment, the element and the
segment's line. carecollect then checks what the guide states but a map cannot: each
claim balances (CLP03 − CLP04 = the sum of its CAS amounts, CLP05 = the sum of its
``PR`` amounts, each SVC line likewise) and the payment balances (BPR02 = the sum of
CLP04 minus the PLB provider adjustments).

:func:`read_835` answers one :class:`~carecollect.remittance.RemittanceAdvice` per
transaction set (ST/SE); :func:`write_835` writes one (the demo's remittances, and
tests). Applying them to a store is :func:`carecollect.importers.remittance.import_remittance`.
Nothing here reads the patient's name (NM1*QC): the claim is matched by the patient
control number (CLP01), which is the carecollect invoice id.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
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

__all__ = ["IMPLEMENTATION_GUIDE", "looks_like_835", "read_835", "write_835"]

#: The implementation guide this reader and writer follow (GS08).
IMPLEMENTATION_GUIDE = "005010X221A1"

# pyx12's error codes (997/999 and TA1) on the envelope, and the element each is about.
_ENVELOPE_ELEMENTS = {
    ("ST", "1"): "ST01",
    ("ST", "3"): "SE02",
    ("ST", "4"): "SE01",
    ("ST", "5"): "SE02",
    ("ST", "6"): "ST",
    ("GS", "4"): "GE02",
    ("GS", "5"): "GE01",
    ("GS", "6"): "GS08",
    ("ISA", "001"): "IEA02",
    ("ISA", "021"): "IEA01",
    ("ISA", "023"): "IEA",
}
_SEG_LEVEL = {"interchanges": "ISA", "groups": "GS", "transactions": "ST"}
#: Segments that can hold a patient's name, address or member id: pyx12's message (which may
#: quote the value) is replaced by one that names only the element.
_PHI_SEGMENTS = frozenset({"NM1", "N3", "N4", "PER", "REF", "DMG"})


def _problem(seg_id: str, text: str, code: object) -> str:
    if seg_id in _PHI_SEGMENTS:
        return f"not valid under the implementation guide (error {code}; the value is not shown)"
    return text


def _pyx12() -> Any:
    try:
        import pyx12.params
        import pyx12.x12file
        import pyx12.x12n_document
    except ImportError:
        raise ConfigurationError(
            "X12 835 import needs the optional extra: pip install 'carecollect[x12]' (installs pyx12)"
        ) from None
    # pyx12 logs every fault it finds; carecollect reports them in one typed error instead
    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    return pyx12


def looks_like_835(text: str) -> bool:
    """Whether ``text`` is an X12 interchange carrying an 835 (for format detection).

    >>> looks_like_835("ISA*00*          *00*  ...~GS*HP*A*B*20260101*1200*1*X*005010X221A1~ST*835*0001~")
    True
    >>> looks_like_835('{"resourceType": "Bundle"}')
    False
    """
    head = text.lstrip()[:4000]
    return head.startswith("ISA") and "ST" + head[3:4] + "835" in head


def _faults(doc: dict[str, Any]) -> list[RemittanceRefused]:
    """Every fault in pyx12's JSON error document, as typed errors, in file order."""
    out: list[RemittanceRefused] = []

    def level(node: dict[str, Any], kind: str) -> None:
        seg = _SEG_LEVEL[kind]
        for e in node.get("errors", []):
            code = str(e.get("err_cde", ""))
            element = _ENVELOPE_ELEMENTS.get((seg, code), seg)
            out.append(
                RemittanceRefused(
                    element[:2] if element[:2] in ("SE", "GE") else element[:3].rstrip("0123456789"),
                    element,
                    str(e.get("err_str", "")),
                    line=node.get("cur_line"),
                )
            )
        for s in node.get("segments", []):
            seg_id = str(s.get("seg_id"))
            for e in s.get("errors", []):
                out.append(
                    RemittanceRefused(seg_id, seg_id, str(e.get("err_str", "")), line=s.get("cur_line"))
                )
            for el in s.get("elements", []):
                ref = str(el.get("ele_ref_num") or el.get("ele_pos") or "")
                pos = el.get("ele_pos")
                element = f"{seg_id}{int(pos):02d}" if isinstance(pos, int) or str(pos).isdigit() else seg_id
                for e in el.get("errors", []):
                    out.append(
                        RemittanceRefused(
                            seg_id,
                            element,
                            _problem(
                                seg_id, f"{e.get('err_str', '')} (element {ref})".strip(), e.get("err_cde")
                            ),
                            line=s.get("cur_line"),
                        )
                    )
        for child in ("groups", "transactions"):
            for sub in node.get(child, []):
                level(sub, child)

    for isa in doc.get("interchanges", []):
        level(isa, "interchanges")
    return out


def _envelope(text: str) -> None:
    """What must hold before the guide's map can be chosen: a fixed-width ISA, an 835 group of 005010X221A1."""
    body = text.lstrip()
    if not body.startswith("ISA") or len(body) < 106:
        raise RemittanceRefused(
            "ISA", "ISA", "the file does not start with a complete ISA segment (106 characters)"
        )
    sep, term = body[3], body[105]
    if body[:106].count(sep) != 16:
        raise RemittanceRefused(
            "ISA",
            "ISA16",
            "the ISA segment is not 106 characters with 16 elements (it is fixed-width)",
            line=1,
        )
    segments = [seg.strip().split(sep) for seg in body.split(term)]
    gs = next((seg for seg in segments if seg[0] == "GS"), None)
    if gs is None or len(gs) < 9:
        raise RemittanceRefused("GS", "GS08", "no functional group (GS) with its version (GS08)")
    if gs[1] != "HP" or gs[8] != IMPLEMENTATION_GUIDE:
        raise RemittanceRefused(
            "GS",
            "GS08",
            f"a group {gs[1]!r} of version {gs[8]!r} is not a health care claim payment/advice "
            f"(HP, {IMPLEMENTATION_GUIDE})",
            line=segments.index(gs) + 1,
        )


def _validate(text: str) -> None:
    _envelope(text)
    px = _pyx12()
    errors = io.StringIO()
    param = px.params.params()
    try:
        valid = px.x12n_document.x12n_document(param, io.StringIO(text), None, None, fd_json=errors)
    except Exception as exc:  # pyx12 raises its own errors (and a few builtins) on broken envelopes
        raise RemittanceRefused(
            "ISA", "ISA", f"not a readable X12 interchange: {type(exc).__name__}: {exc}"
        ) from None
    raw = errors.getvalue()
    faults = _faults(json.loads(raw)) if raw.strip() else []
    if faults:
        first = faults[0]
        more = f" (and {len(faults) - 1} more fault(s))" if len(faults) > 1 else ""
        raise RemittanceRefused(
            first.segment,
            first.element,
            f"{first.problem}{more}; nothing was imported",
            line=first.line,
        )
    if not valid:
        raise RemittanceRefused(
            "ISA", "ISA", "not a valid X12 005010X221A1 interchange; nothing was imported"
        )


def _amount(seg: Any, element: str, line: int, *, required: bool = True) -> Money:
    raw = seg.get_value(element)
    if raw in (None, ""):
        if required:
            raise RemittanceRefused(element[:-2], element, "an amount is required", line=line)
        return Money.zero("USD")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RemittanceRefused(element[:-2], element, f"{raw!r} is not an amount", line=line) from None
    if value != value.quantize(Decimal("0.01")):
        raise RemittanceRefused(element[:-2], element, f"{raw!r} has more than 2 decimals", line=line)
    return Money(value, "USD")


def _date(seg: Any, element: str, line: int) -> dt.date:
    raw = seg.get_value(element) or ""
    try:
        return dt.datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        raise RemittanceRefused(
            element[:-2], element, f"{raw!r} is not a date (CCYYMMDD)", line=line
        ) from None


def _cas(seg: Any, line: int) -> tuple[ClaimAdjustment, ...]:
    try:
        group = AdjustmentGroup(seg.get_value("CAS01"))
    except ValueError:
        raise RemittanceRefused(
            "CAS", "CAS01", f"unknown adjustment group {seg.get_value('CAS01')!r}", line=line
        ) from None
    out = []
    for i in range(2, 20, 3):
        reason = seg.get_value(f"CAS{i:02d}")
        if not reason:
            continue
        out.append(ClaimAdjustment(group, reason, _amount(seg, f"CAS{i + 1:02d}", line)))
    return tuple(out)


class _Claim:
    """A claim being read (mutable while its segments arrive)."""

    def __init__(self, seg: Any, line: int, key: str) -> None:
        code = seg.get_value("CLP02")
        try:
            self.outcome = ClaimOutcome(code)
        except ValueError:
            raise RemittanceRefused(
                "CLP",
                "CLP02",
                f"claim status {code!r} is not one carecollect applies (1-4, 19-22)",
                line=line,
            ) from None
        self.invoice_id = (seg.get_value("CLP01") or "").strip()
        self.charge = _amount(seg, "CLP03", line)
        self.paid = _amount(seg, "CLP04", line)
        self.share = _amount(seg, "CLP05", line, required=False)
        self.payer_claim_id = seg.get_value("CLP07") or ""
        self.line = line
        self.key = key
        self.adjustments: list[ClaimAdjustment] = []
        self.remarks: list[str] = []
        self.lines: list[dict[str, Any]] = []

    def finish(self) -> ClaimPayment:
        lines = tuple(
            ServiceLinePayment(
                ln["code"],
                ln["charge"],
                ln["paid"],
                tuple(ln["adjustments"]),
                tuple(ln["remarks"]),
                ln["number"],
                ln["date"],
            )
            for ln in self.lines
        )
        claim = ClaimPayment(
            self.invoice_id,
            self.outcome,
            self.charge,
            self.paid,
            self.share,
            self.payer_claim_id,
            tuple(self.adjustments),
            lines,
            tuple(self.remarks),
            self.key,
            self.line,
        )
        _balance(claim, [ln["line"] for ln in self.lines])
        return claim


def _balance(claim: ClaimPayment, svc_lines: Sequence[int]) -> None:
    """The guide's balancing rules for one claim and its lines."""
    line = claim.position
    if claim.charge - claim.paid != claim.adjusted():
        raise RemittanceRefused(
            "CLP",
            "CLP04",
            f"claim {claim.invoice_id} does not balance: charge {claim.charge} − paid {claim.paid} "
            f"≠ adjustments {claim.adjusted()}",
            line=line,
        )
    if claim.patient_responsibility != claim.adjusted(AdjustmentGroup.PR):
        raise RemittanceRefused(
            "CLP",
            "CLP05",
            f"claim {claim.invoice_id}: patient responsibility {claim.patient_responsibility} ≠ the PR "
            f"adjustments {claim.adjusted(AdjustmentGroup.PR)}",
            line=line,
        )
    for ln, seg_line in zip(claim.lines, svc_lines, strict=True):
        adjusted = total((a.amount for a in ln.adjustments), "USD")
        if ln.charge - ln.paid != adjusted:
            raise RemittanceRefused(
                "SVC",
                "SVC03",
                f"service line {ln.code} does not balance: charge {ln.charge} − paid {ln.paid} ≠ adjustments {adjusted}",
                line=seg_line,
            )


def read_835(text: str) -> tuple[RemittanceAdvice, ...]:
    """Read an X12 835 interchange: one :class:`~carecollect.remittance.RemittanceAdvice` per transaction set.

    :param text: the file's content.
    :raises RemittanceRefused: the envelope, a count, a segment or a code is wrong
        (pyx12's findings against the implementation guide), a claim or the payment does
        not balance, or a claim status carecollect does not apply; naming the segment,
        the element and the line.
    :raises ConfigurationError: pyx12 is not installed (``pip install 'carecollect[x12]'``).
    """
    _validate(text)
    px = _pyx12()
    reader = px.x12file.X12Reader(io.StringIO(text))
    out: list[RemittanceAdvice] = []
    st: dict[str, Any] | None = None
    claim: _Claim | None = None
    svc: dict[str, Any] | None = None
    n = 0
    for seg in reader:
        n += 1
        sid = seg.get_seg_id()
        if sid == "ST":
            st = {
                "claims": [],
                "plb": [],
                "payer": "",
                "payee": "",
                "st_line": n,
                "trace": "",
                "payer_id": "",
            }
            claim = svc = None
            continue
        if st is None:
            continue
        if sid == "BPR":
            st["bpr"] = (_amount(seg, "BPR02", n), seg.get_value("BPR03"), n)
            st["paid_on"] = _date(seg, "BPR16", n)
        elif sid == "TRN":
            st["trace"] = seg.get_value("TRN02") or ""
            st["payer_id"] = seg.get_value("TRN03") or ""
        elif sid == "N1" and claim is None:
            role = seg.get_value("N101")
            if role == "PR":
                st["payer"] = seg.get_value("N102") or ""
            elif role == "PE":
                st["payee"] = seg.get_value("N102") or ""
        elif sid == "CLP":
            if claim is not None:
                st["claims"].append(claim.finish())
            key = f"835:{st['payer_id']}:{st['trace']}/{len(st['claims']) + 1}"
            claim = _Claim(seg, n, key)
            svc = None
        elif sid == "CAS" and claim is not None:
            (svc["adjustments"] if svc is not None else claim.adjustments).extend(_cas(seg, n))
        elif sid == "MOA" and claim is not None:
            claim.remarks.extend(v for i in range(3, 8) if (v := seg.get_value(f"MOA{i:02d}")))
        elif sid == "MIA" and claim is not None:
            claim.remarks.extend(v for i in (5, 20, 21, 22, 23) if (v := seg.get_value(f"MIA{i:02d}")))
        elif sid == "SVC" and claim is not None:
            svc = {
                "code": seg.get_value("SVC01-2") or "",
                "charge": _amount(seg, "SVC02", n),
                "paid": _amount(seg, "SVC03", n),
                "adjustments": [],
                "remarks": [],
                "number": None,
                "date": None,
                "line": n,
            }
            claim.lines.append(svc)
        elif sid == "DTM" and svc is not None and seg.get_value("DTM01") in ("472", "150"):
            svc["date"] = _date(seg, "DTM02", n)
        elif sid == "REF" and svc is not None and seg.get_value("REF01") == "6R":
            ref = seg.get_value("REF02") or ""
            svc["number"] = int(ref) if ref.isdigit() and 0 < int(ref) < 10_000 else None
        elif sid == "LQ" and svc is not None and seg.get_value("LQ01") == "HE":
            svc["remarks"].append(seg.get_value("LQ02") or "")
        elif sid == "PLB":
            for i in range(4, 15, 2):
                if seg.get_value(f"PLB{i - 1:02d}"):
                    st["plb"].append(_amount(seg, f"PLB{i:02d}", n))
        elif sid == "SE":
            if claim is not None:
                st["claims"].append(claim.finish())
            out.append(_remittance(st))
            st = claim = svc = None
    return tuple(out)


def _remittance(st: dict[str, Any]) -> RemittanceAdvice:
    claims: list[ClaimPayment] = st["claims"]
    amount, direction, line = st["bpr"]
    paid = -amount if direction == "D" else amount
    plb = total(st["plb"], "USD")
    clp = total((c.paid for c in claims), "USD")
    if paid != clp - plb:
        raise RemittanceRefused(
            "BPR",
            "BPR02",
            f"the payment {paid} is not the claims' payments {clp} less the provider adjustments {plb}",
            line=line,
        )
    if not st["trace"]:
        raise RemittanceRefused("TRN", "TRN02", "the trace number is required", line=st["st_line"])
    return RemittanceAdvice(
        f"835:{st['payer_id']}:{st['trace']}",
        st["payer"],
        st["payee"],
        paid,
        st["paid_on"],
        st["trace"],
        tuple(claims),
        plb,
    )


def _money(m: Money) -> str:
    """An X12 decimal (R): no trailing zeros after the point, no point without decimals."""
    text = f"{m.amount:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def write_835(
    remittance: RemittanceAdvice,
    *,
    sender_id: str,
    receiver_id: str,
    control_number: int,
    created_at: dt.datetime,
    payee_npi: str = "1234567893",
) -> str:
    """Write one remittance as a complete 005010X221A1 interchange (ISA/GS/ST ... SE/GE/IEA).

    Claims are written with their claim-level adjustments and their service lines
    (each with its charge, payment, adjustments, the invoice line number in REF*6R and
    the service date); the patient is not named (NM1*QC carries no name).

    :param remittance: what to write (USD).
    :param sender_id: the payer's interchange id (ISA06, GS02).
    :param receiver_id: the provider's interchange id (ISA08, GS03).
    :param control_number: the interchange and group control number (1 to 999999999).
    :param created_at: when the file was made (aware).
    :param payee_npi: the payee's NPI (N1*PE*...*XX).
    :returns: the file's text, one segment a line.
    """
    d = created_at.strftime("%Y%m%d")
    body: list[str] = [
        "ST*835*0001",
        f"BPR*{'I' if remittance.total_paid.is_positive() else 'H'}*{_money(remittance.total_paid)}*C*"
        + (
            "ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*"
            if remittance.total_paid.is_positive()
            else "NON************"
        )
        + remittance.paid_on.strftime("%Y%m%d"),
        f"TRN*1*{remittance.trace}*1{sender_id[:9].ljust(9, '0')}",
        f"DTM*405*{d}",
        f"N1*PR*{remittance.payer_name}",
        "N3*1 MAIN STREET",
        "N4*HARTFORD*CT*06101",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        f"N1*PE*{remittance.payee_name}*XX*{payee_npi}",
    ]
    if remittance.claims:
        body.append("LX*1")
    for c in remittance.claims:
        body.append(
            f"CLP*{c.invoice_id}*{c.outcome.value}*{_money(c.charge)}*{_money(c.paid)}*"
            f"{_money(c.patient_responsibility)}*12*{c.payer_claim_id or c.invoice_id}*11*1"
        )
        body.extend(_cas_segments(c.adjustments))
        body.append("NM1*QC*1")
        for ln in c.lines:
            body.append(f"SVC*HC:{ln.code}*{_money(ln.charge)}*{_money(ln.paid)}**1")
            if ln.service_date is not None:
                body.append(f"DTM*472*{ln.service_date.strftime('%Y%m%d')}")
            body.extend(_cas_segments(ln.adjustments))
            if ln.line_number is not None:
                body.append(f"REF*6R*{ln.line_number}")
            body.extend(f"LQ*HE*{r}" for r in ln.remarks)
    if not remittance.provider_adjustments.is_zero():
        body.append(
            f"PLB*{payee_npi}*{remittance.paid_on.year}1231*L6:{remittance.trace}*{_money(remittance.provider_adjustments)}"
        )
    body.append(f"SE*{len(body) + 1}*0001")
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{sender_id:<15}*ZZ*{receiver_id:<15}*"
        f"{created_at.strftime('%y%m%d')}*{created_at.strftime('%H%M')}*^*00501*{control_number:09d}*0*P*:"
    )
    gs = f"GS*HP*{sender_id}*{receiver_id}*{d}*{created_at.strftime('%H%M')}*{control_number}*X*{IMPLEMENTATION_GUIDE}"
    segments = [isa, gs, *body, f"GE*1*{control_number}", f"IEA*1*{control_number:09d}"]
    return "".join(s + "~\n" for s in segments)


def _cas_segments(adjustments: Sequence[ClaimAdjustment]) -> list[str]:
    out: list[str] = []
    for group in AdjustmentGroup:
        mine = [a for a in adjustments if a.group is group]
        for start in range(0, len(mine), 6):
            chunk = mine[start : start + 6]
            out.append(f"CAS*{group.value}*" + "**".join(f"{a.reason}*{_money(a.amount)}" for a in chunk))
    return out
