"""What the insurer decided: remittance advice, and what it does to an invoice and its ledger.

An insurer answers a claim with a remittance: an X12 835 in the US, a FHIR
ClaimResponse or ExplanationOfBenefit elsewhere (the readers are in
:mod:`carecollect.importers.x12` and :mod:`carecollect.importers.fhir_claims`).
Both become the same records here: a :class:`RemittanceAdvice` (one payment, one
trace number) holding :class:`ClaimPayment` records (one per claim, matched
to a carecollect invoice by the patient control number), each with its
:class:`ServiceLinePayment` lines and :class:`ClaimAdjustment` amounts by
group:

* ``CO`` contractual obligation and ``PI`` payer-initiated reduction: the
  creditor writes them off; the patient is never billed for them;
* ``OA`` other adjustment: also not the patient's (for example what a primary
  payer already paid, on a secondary remittance);
* ``PR`` patient responsibility: deductible (reason 1), coinsurance (2),
  copay (3), not covered (others): the patient's share, explained on the
  statement with the reason's plain-language text
  (:mod:`carecollect.messages.remittance_codes`).

:func:`settle_claims` is the one decision: from the invoice and every claim
record the insurer sent for it, in order (a reversal cancels the claim it
repeats, a correction follows it), it answers the invoice's insurance side
(:class:`~carecollect.invoices.Insurance`: paid, not billable, status) and
:func:`claim_entries` the ledger entries that move the books there from where
they are, so applying the same records twice changes nothing and a reversal
undoes its claim exactly once.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine
>>> usd = lambda s: Money(s, "USD")
>>> inv = Invoice("INV-1", "A-1", "USD", (InvoiceLine("99213", "Visit", usd("200.00"), dt.date(2026, 3, 2)),),
...               dt.date(2026, 3, 3), dt.date(2026, 4, 2), insurance=Insurance(ClaimStatus.PENDING))
>>> claim = ClaimPayment("INV-1", ClaimOutcome.PRIMARY, usd("200.00"), usd("120.00"), usd("30.00"),
...                      adjustments=(ClaimAdjustment(AdjustmentGroup.CO, "45", usd("50.00")),
...                                   ClaimAdjustment(AdjustmentGroup.PR, "3", usd("30.00"))))
>>> ins = settle_claims(inv, [claim], payer_name="Acme Health", decided_on=dt.date(2026, 3, 20))
>>> ins.status.value, str(ins.insurer_paid), str(ins.contractual_adjustment)
('adjudicated', 'USD 120.00', 'USD 50.00')
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .errors import RemittanceRefused
from .invoices import ClaimStatus, Insurance, Invoice
from .ledger import EntryKind, Ledger, LedgerEntry
from .money import Money, total

__all__ = [
    "CLAIM_RECORD",
    "AdjustmentGroup",
    "ClaimAdjustment",
    "ClaimOutcome",
    "ClaimPayment",
    "RemittanceAdvice",
    "ServiceLinePayment",
    "active_claims",
    "claim_entries",
    "claim_from_record",
    "claim_record",
    "insurer_books",
    "settle_claims",
]

#: The audit-log kind under which each claim answer applied to an invoice is kept
#: (:func:`claim_record`; subject: the invoice id).
CLAIM_RECORD = "remittance.claim"


class ClaimOutcome(enum.Enum):
    """What the insurer did with a claim (X12 835 CLP02, the claim status code)."""

    #: Processed as primary payer.
    PRIMARY = "1"
    #: Processed as secondary payer.
    SECONDARY = "2"
    #: Processed as tertiary payer.
    TERTIARY = "3"
    #: Denied: the insurer pays nothing on the claim.
    DENIED = "4"
    #: Processed as primary and forwarded to another payer, who may still pay.
    PRIMARY_FORWARDED = "19"
    #: Processed as secondary and forwarded to another payer, who may still pay.
    SECONDARY_FORWARDED = "20"
    #: Processed as tertiary and forwarded to another payer, who may still pay.
    TERTIARY_FORWARDED = "21"
    #: The reversal of an earlier claim payment (every amount negated).
    REVERSAL = "22"

    @property
    def forwarded(self) -> bool:
        """Another payer received the claim and may still pay."""
        return self in (
            ClaimOutcome.PRIMARY_FORWARDED,
            ClaimOutcome.SECONDARY_FORWARDED,
            ClaimOutcome.TERTIARY_FORWARDED,
        )

    @property
    def rank(self) -> int:
        """1 for a primary payer's answer, 2 secondary, 3 tertiary (0 for a denial or reversal)."""
        return {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}.get(self.value, 0)


class AdjustmentGroup(enum.Enum):
    """Who carries an adjusted amount (X12 CAS01, the claim adjustment group code)."""

    #: Contractual obligation: the creditor writes it off; never billed to the patient.
    CO = "CO"
    #: Patient responsibility: deductible, coinsurance, copay, not covered.
    PR = "PR"
    #: Other adjustment (on a secondary remittance, what another payer paid): not the patient's.
    OA = "OA"
    #: Payer-initiated reduction: written off like ``CO``.
    PI = "PI"

    @property
    def patients(self) -> bool:
        """The patient carries it."""
        return self is AdjustmentGroup.PR


@attrs.frozen
class ClaimAdjustment:
    """One adjusted amount with its group and reason (a CAS triple; a FHIR adjudication).

    :param group: :class:`AdjustmentGroup`.
    :param reason: the Claim Adjustment Reason Code (CARC), e.g. ``"45"``.
    :param amount: the amount (negative on a reversal).
    """

    group: AdjustmentGroup
    reason: str
    amount: Money


@attrs.frozen
class ServiceLinePayment:
    """The insurer's answer for one service line (an 835 SVC loop).

    :param code: the procedure code the insurer adjudicated (SVC01-2).
    :param charge: the line's charge (SVC02).
    :param paid: what the insurer paid for it (SVC03).
    :param adjustments: the line's :class:`ClaimAdjustment` amounts.
    :param remarks: Remittance Advice Remark Codes (RARC, LQ*HE), e.g. ``("N130",)``.
    :param line_number: the invoice line it answers (1-based, REF*6R), when the payer echoed it.
    :param service_date: the date of service (DTM*472).
    """

    code: str
    charge: Money
    paid: Money
    adjustments: tuple[ClaimAdjustment, ...] = ()
    remarks: tuple[str, ...] = ()
    line_number: int | None = None
    service_date: dt.date | None = None


@attrs.frozen
class ClaimPayment:
    """The insurer's answer for one claim (an 835 CLP loop; one FHIR ClaimResponse).

    :param invoice_id: the patient control number the claim was filed under: a carecollect invoice id.
    :param outcome: :class:`ClaimOutcome`.
    :param charge: the claim's charge (CLP03).
    :param paid: what the insurer paid (CLP04).
    :param patient_responsibility: the patient's share (CLP05).
    :param payer_claim_id: the insurer's own claim number (CLP07): a reversal repeats it.
    :param adjustments: claim-level adjustments.
    :param lines: the service lines.
    :param remarks: claim-level remark codes (MOA/MIA).
    :param key: where the record came from, unique per file and claim
        (``"<file id>/<claim index>"``): the ledger's idempotency key.
    :param position: the segment number of its CLP (for error messages), when read from a file.
    """

    invoice_id: str
    outcome: ClaimOutcome
    charge: Money
    paid: Money
    patient_responsibility: Money
    payer_claim_id: str = ""
    adjustments: tuple[ClaimAdjustment, ...] = ()
    lines: tuple[ServiceLinePayment, ...] = ()
    remarks: tuple[str, ...] = ()
    key: str = ""
    position: int | None = None

    def all_adjustments(self) -> tuple[ClaimAdjustment, ...]:
        """Claim-level adjustments and every line's, in that order."""
        return self.adjustments + tuple(a for ln in self.lines for a in ln.adjustments)

    def adjusted(self, *groups: AdjustmentGroup) -> Money:
        """The sum of the adjustments of ``groups`` (all groups when none given)."""
        wanted = set(groups) or set(AdjustmentGroup)
        return total(
            (a.amount for a in self.all_adjustments() if a.group in wanted), str(self.charge.currency)
        )

    def negated(self) -> ClaimPayment:
        """The same answer with every amount negated (what its reversal carries)."""

        def adj(items: tuple[ClaimAdjustment, ...]) -> tuple[ClaimAdjustment, ...]:
            return tuple(attrs.evolve(a, amount=-a.amount) for a in items)

        return attrs.evolve(
            self,
            charge=-self.charge,
            paid=-self.paid,
            patient_responsibility=-self.patient_responsibility,
            adjustments=adj(self.adjustments),
            lines=tuple(
                attrs.evolve(ln, charge=-ln.charge, paid=-ln.paid, adjustments=adj(ln.adjustments))
                for ln in self.lines
            ),
        )


@attrs.frozen
class RemittanceAdvice:
    """One remittance: a payment (or a notice of no payment) and the claims it answers.

    :param id: the file's identity, stable across re-imports (``"835:<sender>:<ISA13>:<TRN02>"``
        or ``"fhir:<resource id>"``).
    :param payer_name: the insurer (N1*PR).
    :param payee_name: the provider paid (N1*PE).
    :param total_paid: the payment (BPR02).
    :param paid_on: the payment's effective date (BPR16).
    :param trace: the check or EFT trace number (TRN02): the ledger entries' source.
    :param claims: the :class:`ClaimPayment` records, in file order.
    :param provider_adjustments: provider-level adjustments (PLB), positive when they reduce the payment.
    """

    id: str
    payer_name: str
    payee_name: str
    total_paid: Money
    paid_on: dt.date
    trace: str
    claims: tuple[ClaimPayment, ...]
    provider_adjustments: Money


def _refuse(claim: ClaimPayment, element: str, problem: str) -> RemittanceRefused:
    return RemittanceRefused(
        "CLP",
        element,
        problem,
        line=claim.position,
        record=f"claim {claim.key or claim.invoice_id} (invoice {claim.invoice_id})",
    )


def active_claims(claims: Sequence[ClaimPayment]) -> tuple[ClaimPayment, ...]:
    """The claim answers still in force after every reversal in ``claims`` (in order) took its claim back.

    A reversal (:attr:`ClaimOutcome.REVERSAL`) cancels the latest answer in force with the
    same payer claim number (or the latest one when the payer gave none) whose amounts it
    negates exactly.

    :raises RemittanceRefused: a reversal with no claim in force to take back, or whose amounts
        do not negate it (naming ``CLP04``).
    """
    live: list[ClaimPayment] = []
    for c in claims:
        if c.outcome is not ClaimOutcome.REVERSAL:
            live.append(c)
            continue
        candidates = [
            i for i, x in enumerate(live) if not c.payer_claim_id or x.payer_claim_id == c.payer_claim_id
        ]
        if not candidates:
            raise _refuse(
                c,
                "CLP07",
                "a reversal of a claim payment that is not on the books (never imported or already reversed)",
            )
        i = candidates[-1]
        target = live[i]
        if (c.charge, c.paid, c.patient_responsibility) != (
            -target.charge,
            -target.paid,
            -target.patient_responsibility,
        ) or c.adjusted() != -target.adjusted():
            raise _refuse(
                c,
                "CLP04",
                f"the reversal's amounts do not negate claim payment {target.key or target.invoice_id}",
            )
        del live[i]
    return tuple(live)


def settle_claims(
    invoice: Invoice, claims: Sequence[ClaimPayment], *, payer_name: str | None, decided_on: dt.date
) -> Insurance:
    """The invoice's insurance side once the insurer's answers ``claims`` (all of them, in order) are in.

    * No answer in force (all reversed): the claim is pending again, filed ``decided_on``.
    * The insurer paid: what every answer in force paid together; the patient's share is the
      one the last payer in the order (secondary after primary) reported; the rest (CO, PI, OA)
      is not billable. Adjudicated, or pending (filed ``decided_on``) while the claim was
      forwarded to another payer who may still pay.
    * Denied (nothing paid, the last answer a denial): status denied; the patient's share is
      what the denial put on the patient (PR), the rest is written off.

    :param invoice: the invoice.
    :param claims: every :class:`ClaimPayment` for it, oldest first, reversals included.
    :param payer_name: the insurer, for the statement.
    :param decided_on: the day of the latest answer.
    :raises RemittanceRefused: a claim in another currency, a charge other than the invoice
        total, or shares that add up to more than the invoice.
    """
    cur = invoice.currency
    for c in claims:
        if c.charge.currency != cur:
            raise _refuse(c, "CLP03", f"the claim is in {c.charge.currency}, the invoice in {cur}")
        charge = -c.charge if c.outcome is ClaimOutcome.REVERSAL else c.charge
        if charge != invoice.total:
            raise _refuse(c, "CLP03", f"the claim's charge {charge} is not the invoice total {invoice.total}")
    live = active_claims(claims)
    ins = invoice.insurance
    if not live:
        return Insurance(ClaimStatus.PENDING, None, None, decided_on, payer_name or ins.payer_name)
    paid = total((c.paid for c in live), cur)
    last = max(enumerate(live), key=lambda ic: (ic[1].outcome.rank, ic[0]))[1]
    share = last.patient_responsibility
    not_billable = invoice.total - paid - share
    if paid.is_negative() or share.is_negative() or not_billable.is_negative():
        raise _refuse(
            last,
            "CLP05",
            f"paid {paid} and patient share {share} do not fit the invoice total {invoice.total}",
        )
    if paid.is_zero() and live[-1].outcome is ClaimOutcome.DENIED:
        status = ClaimStatus.DENIED
    elif live[-1].outcome.forwarded:
        status = ClaimStatus.PENDING
    else:
        status = ClaimStatus.ADJUDICATED
    submitted = decided_on if status is ClaimStatus.PENDING else ins.submitted_on
    return Insurance(status, paid, not_billable, submitted, payer_name or ins.payer_name)


def _insurer_adjustment(e: LedgerEntry) -> bool:
    return e.kind is EntryKind.ADJUSTMENT and e.reason.startswith("insurance_adjustment:")


def insurer_books(ledger: Ledger, invoice_id: str) -> tuple[Money, Money]:
    """``(insurer paid, insurer adjustments)`` on the books for one invoice, net of take-backs."""
    paid = adjusted = 0
    for e in ledger.entries:
        if e.invoice_id != invoice_id:
            continue
        if e.kind is EntryKind.INSURANCE_PAYMENT:
            paid += e.amount.minor_units
        elif _insurer_adjustment(e):
            adjusted += e.amount.minor_units
        elif e.kind is EntryKind.INSURANCE_REVERSED:
            if e.reason.startswith("claim_reversal:payment:"):
                paid -= e.amount.minor_units
            else:
                adjusted -= e.amount.minor_units
    return Money.from_minor(paid, ledger.currency), Money.from_minor(adjusted, ledger.currency)


def claim_entries(
    ledger: Ledger, invoice_id: str, insurance: Insurance, *, key: str, source: str, at: dt.datetime
) -> tuple[LedgerEntry, ...]:
    """The ledger entries that bring an invoice's insurer payment and adjustments to ``insurance``'s.

    Take-backs come first (they reopen the invoice), then new payments and adjustments;
    each entry's key starts with ``key`` (the answer that moved the books), so posting them
    twice changes nothing. An invoice not charged on the ledger needs no entries.

    :param ledger: the account's ledger.
    :param invoice_id: the invoice.
    :param insurance: the settled insurance side (:func:`settle_claims`).
    :param key: the idempotency key of the change (the claim record's :attr:`ClaimPayment.key`).
    :param source: the payment's trace number (the entries' ``source_id``).
    :param at: when (aware).
    """
    if invoice_id not in ledger.invoice_ids():
        return ()
    cur = ledger.currency
    have_paid, have_adj = insurer_books(ledger, invoice_id)
    zero = Money.zero(cur)
    want_paid = zero if insurance.insurer_paid is None else insurance.insurer_paid
    want_adj = zero if insurance.contractual_adjustment is None else insurance.contractual_adjustment
    out: list[LedgerEntry] = []
    d_paid, d_adj = want_paid - have_paid, want_adj - have_adj
    if d_paid.is_negative():
        out.append(
            LedgerEntry(
                f"{key}#paid-back",
                EntryKind.INSURANCE_REVERSED,
                -d_paid,
                at,
                invoice_id,
                source,
                f"claim_reversal:payment:{key}",
            )
        )
    if d_adj.is_negative():
        out.append(
            LedgerEntry(
                f"{key}#adjusted-back",
                EntryKind.INSURANCE_REVERSED,
                -d_adj,
                at,
                invoice_id,
                source,
                f"claim_reversal:adjustment:{key}",
            )
        )
    if d_paid.is_positive():
        out.append(LedgerEntry(f"{key}#paid", EntryKind.INSURANCE_PAYMENT, d_paid, at, invoice_id, source))
    if d_adj.is_positive():
        out.append(
            LedgerEntry(
                f"{key}#adjusted",
                EntryKind.ADJUSTMENT,
                d_adj,
                at,
                invoice_id,
                source,
                "insurance_adjustment:remittance",
            )
        )
    return tuple(out)


def _m(m: Money) -> list[Any]:
    return [m.minor_units, str(m.currency)]


def _unm(v: Sequence[Any]) -> Money:
    return Money.from_minor(int(v[0]), str(v[1]))


def _adj_data(items: Iterable[ClaimAdjustment]) -> list[list[Any]]:
    return [[a.group.value, a.reason, *_m(a.amount)] for a in items]


def _adj_from(items: Iterable[Sequence[Any]]) -> tuple[ClaimAdjustment, ...]:
    return tuple(ClaimAdjustment(AdjustmentGroup(g), r, _unm((u, c))) for g, r, u, c in items)


def claim_record(claim: ClaimPayment) -> dict[str, Any]:
    """A claim answer as JSON-compatible data (codes and amounts only) for the audit log."""
    return {
        "invoice": claim.invoice_id,
        "outcome": claim.outcome.value,
        "charge": _m(claim.charge),
        "paid": _m(claim.paid),
        "patient": _m(claim.patient_responsibility),
        "payer_claim": claim.payer_claim_id,
        "adjustments": _adj_data(claim.adjustments),
        "remarks": list(claim.remarks),
        "key": claim.key,
        "lines": [
            {
                "code": ln.code,
                "charge": _m(ln.charge),
                "paid": _m(ln.paid),
                "adjustments": _adj_data(ln.adjustments),
                "remarks": list(ln.remarks),
                "line": ln.line_number,
                "date": ln.service_date.isoformat() if ln.service_date else None,
            }
            for ln in claim.lines
        ],
    }


def claim_from_record(data: Mapping[str, Any]) -> ClaimPayment:
    """The inverse of :func:`claim_record`."""
    return ClaimPayment(
        data["invoice"],
        ClaimOutcome(data["outcome"]),
        _unm(data["charge"]),
        _unm(data["paid"]),
        _unm(data["patient"]),
        data.get("payer_claim", ""),
        _adj_from(data.get("adjustments", [])),
        tuple(
            ServiceLinePayment(
                ln["code"],
                _unm(ln["charge"]),
                _unm(ln["paid"]),
                _adj_from(ln.get("adjustments", [])),
                tuple(ln.get("remarks", [])),
                ln.get("line"),
                dt.date.fromisoformat(ln["date"]) if ln.get("date") else None,
            )
            for ln in data.get("lines", [])
        ),
        tuple(data.get("remarks", [])),
        data.get("key", ""),
    )
