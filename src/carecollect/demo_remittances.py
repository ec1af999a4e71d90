"""The demo's insurer: it answers the pending US claims with generated X12 835 files, which are then imported.

:func:`answer_pending_claims` is what the demo's insurer does on the day it
decides: for every open US invoice whose claim is pending it draws an answer
(mostly paid, with a contractual adjustment and the patient's deductible,
coinsurance and copay per service line; some denied as not covered), writes
the answers as 835 files of up to :data:`CLAIMS_PER_CHECK` claims each (one
payment, one trace number per file) with :func:`~carecollect.importers.x12.write_835`,
and imports every file back through the validating reader
(:func:`~carecollect.importers.remittance.import_remittance`): the insurer's
decision reaches the invoice, the ledger and the statement the way a real
one does. :func:`carecollect.demo.run_demo` calls it on the demo's fourth day
when the ``carecollect[x12]`` extra is installed.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from .importers.remittance import RemittanceSummary, import_remittance
from .importers.x12 import write_835
from .invoices import ClaimStatus, Invoice, InvoiceStatus
from .money import Money, total
from .remittance import (
    AdjustmentGroup,
    ClaimAdjustment,
    ClaimOutcome,
    ClaimPayment,
    RemittanceAdvice,
    ServiceLinePayment,
)
from .store.base import Store

__all__ = ["CLAIMS_PER_CHECK", "answer_pending_claims", "draw_answer"]

#: Claims the demo's insurer pays with one check (one 835 file).
CLAIMS_PER_CHECK = 100
_DENIED_SHARE = 0.12


def draw_answer(invoice: Invoice, rng: random.Random) -> ClaimPayment:
    """A plausible insurer answer for ``invoice`` (USD), balanced line by line as the 835 guide requires."""
    cur = invoice.currency
    if rng.random() < _DENIED_SHARE:
        lines = tuple(
            ServiceLinePayment(
                ln.code,
                ln.amount,
                Money.zero(cur),
                (ClaimAdjustment(AdjustmentGroup.PR, "204", ln.amount),) if ln.amount.is_positive() else (),
                ("N130",),
                i + 1,
                ln.service_date,
            )
            for i, ln in enumerate(invoice.lines)
        )
        return ClaimPayment(
            invoice.id,
            ClaimOutcome.DENIED,
            invoice.total,
            Money.zero(cur),
            invoice.total,
            f"D{invoice.id}",
            (),
            lines,
        )
    out = []
    copay_left = rng.choice((0, 2000, 3000))
    for i, ln in enumerate(invoice.lines):
        units = ln.amount.minor_units
        co = units * rng.randint(10, 40) // 100
        allowed = units - co
        copay = min(copay_left, allowed)
        copay_left -= copay
        deductible = (allowed - copay) * rng.choice((0, 0, 25, 50)) // 100
        coins = (allowed - copay - deductible) * 20 // 100
        paid = allowed - copay - deductible - coins
        adj = [
            ClaimAdjustment(g, r, Money.from_minor(u, cur))
            for g, r, u in (
                (AdjustmentGroup.CO, "45", co),
                (AdjustmentGroup.PR, "1", deductible),
                (AdjustmentGroup.PR, "2", coins),
                (AdjustmentGroup.PR, "3", copay),
            )
            if u
        ]
        out.append(
            ServiceLinePayment(
                ln.code, ln.amount, Money.from_minor(paid, cur), tuple(adj), (), i + 1, ln.service_date
            )
        )
    paid_total = total((ln.paid for ln in out), cur)
    share = total((a.amount for ln in out for a in ln.adjustments if a.group is AdjustmentGroup.PR), cur)
    return ClaimPayment(
        invoice.id, ClaimOutcome.PRIMARY, invoice.total, paid_total, share, f"P{invoice.id}", (), tuple(out)
    )


def answer_pending_claims(
    store: Store,
    folder: Path,
    *,
    on: dt.date,
    at: dt.datetime,
    seed: int = 0,
    payer: str = "ACME HEALTH PLAN",
) -> tuple[RemittanceSummary, ...]:
    """Answer every pending claim on an open USD invoice with generated 835 files in ``folder``, and import them.

    :param store: the store.
    :param folder: where the 835 files are written (created if needed).
    :param on: the payment date of the answers.
    :param at: when they are imported (aware).
    :param seed: the random seed (same store and seed, same answers).
    :param payer: the insurer's name on the files.
    :returns: one summary per file imported.

    An invoice the patient has already paid something on keeps its pending claim (the demo's
    insurer would otherwise owe the patient a refund, which the demo does not draw).
    """
    rng = random.Random(seed)
    # an invoice the patient already paid on stays pending: the demo does not draw refunds
    pending = sorted(
        r.invoice_id
        for r in store.iter_invoice_rows()
        if r.claim_status == ClaimStatus.PENDING.value
        and r.currency == "USD"
        and r.status == InvoiceStatus.OPEN.value
        and r.balance_minor == r.total_minor
    )
    folder.mkdir(parents=True, exist_ok=True)
    summaries = []
    for n, start in enumerate(range(0, len(pending), CLAIMS_PER_CHECK), 1):
        claims = tuple(
            draw_answer(store.get_invoice(i), rng) for i in pending[start : start + CLAIMS_PER_CHECK]
        )
        trace = f"DEMO{on:%Y%m%d}{n:04d}"
        rem = RemittanceAdvice(
            f"835:demo:{trace}",
            payer,
            "CARECOLLECT DEMO CLINICS",
            total((c.paid for c in claims), "USD"),
            on,
            trace,
            claims,
            Money.zero("USD"),
        )
        path = folder / f"remittance-{trace}.835"
        path.write_text(
            write_835(rem, sender_id="ACMEHEALTH", receiver_id="CCDEMO", control_number=n, created_at=at),
            encoding="utf-8",
        )
        summaries.append(import_remittance(store, path, at=at))
    return tuple(summaries)
