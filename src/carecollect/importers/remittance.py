"""Apply remittances to a store: the invoice's insurance side, the ledger, and the claim history.

:func:`import_remittance` reads a file (X12 835, or a FHIR ClaimResponse,
ExplanationOfBenefit or a Bundle of them) and :func:`apply_remittances` applies
what was read, in one unit of work: for every invoice a remittance answers, the
insurer's answers so far (the claim history, kept in the audit log under
:data:`~carecollect.remittance.CLAIM_RECORD`, amounts and codes only) plus the new ones are settled
(:func:`carecollect.remittance.settle_claims`), the invoice's insurance side is
replaced, and the ledger is moved to it (:func:`carecollect.remittance.claim_entries`).
Anything wrong anywhere refuses the whole file and nothing is written.

A remittance already applied (same payer and trace number: one payment) is
skipped, so re-importing a file changes nothing; the ledger keys carry the
same identity, so even a copy of the file under a new interchange control
number posts nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import attrs

from ..errors import CareCollectError, RemittanceRefused, ValidationError
from ..invoices import ClaimStatus, update_insurance
from ..ledger import post
from ..money import Money
from ..remittance import (
    CLAIM_RECORD,
    ClaimPayment,
    RemittanceAdvice,
    active_claims,
    claim_entries,
    claim_from_record,
    claim_record,
    settle_claims,
)
from ..store.base import NotFound, Store

__all__ = [
    "PROCESSED_SOURCE",
    "RemittanceSummary",
    "apply_remittances",
    "claim_history",
    "claims_in_force",
    "import_remittance",
    "looks_like_remittance",
    "read_remittance_file",
]

#: The source name under which applied remittances are marked processed.
PROCESSED_SOURCE = "remittance"


@attrs.frozen
class RemittanceSummary:
    """What an import did.

    :param remittances: remittances in the file.
    :param applied: remittances applied now.
    :param skipped: remittances already applied before (nothing changed).
    :param claims: claim answers applied now.
    :param invoices: invoices whose insurance side changed.
    :param denied: invoices now denied.
    :param insurer_paid: the insurer payments the ledger gained, net of take-backs.
    :param ledger_entries: ledger entries written.
    """

    remittances: int
    applied: int
    skipped: int
    claims: int
    invoices: int
    denied: int
    insurer_paid: Money
    ledger_entries: int


def claim_history(store: Store, invoice_id: str) -> tuple[ClaimPayment, ...]:
    """Every claim answer applied to ``invoice_id``, oldest first (reversals included)."""
    return tuple(
        claim_from_record(rec.data)
        for rec in store.audit_records(subject_id=invoice_id, kinds={CLAIM_RECORD})
    )


def claims_in_force(store: Store, invoice_id: str) -> tuple[ClaimPayment, ...]:
    """The insurer's answers for ``invoice_id`` that no reversal took back (for the statement)."""
    return active_claims(claim_history(store, invoice_id))


def apply_remittances(
    store: Store, remittances: Sequence[RemittanceAdvice], *, at: dt.datetime
) -> RemittanceSummary:
    """Apply remittances to ``store``, all or nothing.

    :param store: the store.
    :param remittances: what was read (:func:`~carecollect.importers.x12.read_835`, the FHIR reader).
    :param at: when (aware): the ledger entries' and the audit records' time.
    :raises RemittanceRefused: a claim names an invoice the store does not hold, an invoice
        that cannot take the answer (cancelled, paid in full by the patient), a reversal of a
        claim not on the books, amounts that do not fit the invoice; nothing is written.
    """
    currencies = {str(r.total_paid.currency) for r in remittances}
    if len(currencies) > 1:
        raise RemittanceRefused(
            "BPR",
            "BPR02",
            f"one file pays in one currency, not {sorted(currencies)}",
            record="remittance file",
        )
    currency = currencies.pop() if currencies else "USD"
    applied = skipped = claims = entries_written = denied = 0
    changed: set[str] = set()
    paid_units = 0
    seen: set[str] = set()
    with store.transaction():
        for rem in remittances:
            if rem.id in seen or store.was_processed(PROCESSED_SOURCE, rem.id):
                skipped += 1
                continue
            seen.add(rem.id)
            by_invoice: dict[str, list[ClaimPayment]] = {}
            for c in rem.claims:
                by_invoice.setdefault(c.invoice_id, []).append(c)
            for invoice_id, new in by_invoice.items():
                first = new[0]
                try:
                    inv = store.get_invoice(invoice_id)
                except NotFound:
                    raise RemittanceRefused(
                        "CLP",
                        "CLP01",
                        f"patient control number {invoice_id!r} is not an invoice in the store",
                        line=first.position,
                    ) from None
                history = claim_history(store, invoice_id)
                ins = settle_claims(inv, [*history, *new], payer_name=rem.payer_name, decided_on=rem.paid_on)
                ledger = store.ledger(inv.account_id)
                when = at
                entries = claim_entries(
                    ledger, invoice_id, ins, key=f"{rem.id}/{invoice_id}", source=rem.trace, at=when
                )
                for e in entries:
                    try:
                        ledger, _ = post(ledger, e)
                    except ValidationError as exc:
                        raise RemittanceRefused(
                            "CLP",
                            "CLP04",
                            f"invoice {invoice_id} cannot take the insurer's answer: {exc.problem} "
                            "(the patient may have paid more than their share: refund it first)",
                            line=first.position,
                        ) from None
                    if e.kind.value == "insurance_payment":
                        paid_units += e.amount.minor_units
                    elif e.reason.startswith("claim_reversal:payment:"):
                        paid_units -= e.amount.minor_units
                try:
                    new_inv, _event = update_insurance(inv, ins, at=at)
                except (CareCollectError, ValueError) as exc:
                    raise RemittanceRefused(
                        "CLP",
                        "CLP01",
                        f"invoice {invoice_id} cannot take the insurer's answer: {exc}",
                        line=first.position,
                    ) from None
                entries_written += store.append_ledger(inv.account_id, entries)
                store.put_invoice(new_inv)
                for c in new:
                    store.audit_append(CLAIM_RECORD, invoice_id, claim_record(c), at=at)
                claims += len(new)
                changed.add(invoice_id)
                if ins.status is ClaimStatus.DENIED:
                    denied += 1
            store.mark_processed(PROCESSED_SOURCE, rem.id, at=at)
            applied += 1
    return RemittanceSummary(
        len(remittances),
        applied,
        skipped,
        claims,
        len(changed),
        denied,
        Money.from_minor(paid_units, currency),
        entries_written,
    )


def looks_like_remittance(path: Path) -> bool:
    """Whether ``path`` is a remittance file: an 835 (by extension or content) or a FHIR
    ClaimResponse / ExplanationOfBenefit (or a Bundle whose first entry is one)."""
    if not path.is_file():
        return False
    if path.suffix.lower() in (".835", ".x12", ".edi", ".era"):
        return True
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if head.startswith("ISA"):
        return True
    if head.startswith("{"):
        probe = head.replace(" ", "").replace("\n", "")
        return any(f'"resourceType":"{k}"' in probe for k in ("ClaimResponse", "ExplanationOfBenefit"))
    return False


def read_remittance_file(path: Path) -> tuple[RemittanceAdvice, ...]:
    """Read a remittance file, telling the format by its content: X12 835, or FHIR JSON.

    :raises RemittanceRefused: neither format, or a fault in the file.
    """
    text = path.read_text(encoding="utf-8-sig", errors="strict")
    from .x12 import looks_like_835, read_835

    if looks_like_835(text):
        return read_835(text)
    if text.lstrip().startswith("{"):
        from .fhir_claims import read_fhir_remittance

        return read_fhir_remittance(text)
    raise RemittanceRefused(
        "ISA", "ISA01", f"{path.name} is neither an X12 835 interchange nor a FHIR JSON resource"
    )


def import_remittance(store: Store, path: Path, *, at: dt.datetime) -> RemittanceSummary:
    """Read ``path`` (X12 835 or FHIR) and apply it to ``store``, all or nothing."""
    return apply_remittances(store, read_remittance_file(path), at=at)
