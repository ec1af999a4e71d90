"""Realistic sample contexts, for the docs gallery, the tests and trying templates out.

Nothing here is real patient data. :func:`context` builds a context with a
statement, plan options, a payment, an instalment, a dispute and, where the
purpose needs it, the formal notice's figures.

>>> from carecollect.outreach import OutreachPurpose
>>> ctx = context(OutreachPurpose.STATEMENT, "no")
>>> ctx.amount_due.currency, ctx.jurisdiction
('NOK', 'no')
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..invoices import ClaimStatus, Estimate, Insurance, Invoice, InvoiceLine
from ..money import Money
from ..outreach import OutreachPurpose as P
from .context import (
    DisputeInfo,
    DisputeOutcome,
    Fee,
    FeeKind,
    InstalmentInfo,
    Itemization,
    MessageContext,
    NoticeInfo,
    PaymentInfo,
    PlanOptionInfo,
)
from .paylinks import PayLinkSigner
from .statement import ShareKind, ShareReason, build_statement, statement_from_estimate

#: purpose -> jurisdiction whose notice it is (others render in every jurisdiction's context)
JURISDICTION_OF = {
    P.VALIDATION_NOTICE: "us",
    P.ECA_NOTICE: "us",
    P.INKASSOVARSEL: "no",
    P.BETALINGSOPPFORDRING: "no",
    P.MAHNUNG: "de",
    P.DEFAULT_NOTICE: "de",
}

CURRENCY = {"us": "USD", "no": "NOK", "de": "EUR", "bg": "EUR"}
CREDITOR = {
    "us": ("Riverside Community Hospital", "+1 555 010 0100", "billing@riverside.example"),
    "no": ("Fjordklinikken AS", "+47 22 00 00 00", "faktura@fjordklinikken.example"),
    "de": ("Praxis Dr. Weber", "+49 30 1234567", "abrechnung@praxis-weber.example"),
    "bg": ("МЦ Витоша", "+359 2 123 4567", "plashtania@vitosha.example"),
}
SIGNER = PayLinkSigner(b"test-key-0123456789abcdef0123456789", "https://pay.example.org/p")
EXPIRY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
ADDRESS = {
    "us": ("1200 River Road", "Springfield, IL 62701"),
    "no": ("Fjordveien 12", "0150 Oslo"),
    "de": ("Lindenstraße 5", "10969 Berlin"),
    "bg": ("бул. Витоша 100", "1000 София"),
}
#: descriptions are clinical: they may appear only in letters, e-mail bodies and the portal
DESCRIPTIONS = ("Cardiology consultation", "Blood test (full blood count)")


__all__ = ["ADDRESS", "CREDITOR", "CURRENCY", "DESCRIPTIONS", "JURISDICTION_OF", "context"]


def context(purpose: P, jurisdiction: str) -> MessageContext:
    """A realistic context for ``purpose`` under ``jurisdiction`` (today 2026-03-20).

    :param purpose: the outreach purpose.
    :param jurisdiction: ``"us"``, ``"no"``, ``"de"`` or ``"bg"``.
    :returns: the :class:`~carecollect.messages.context.MessageContext`.
    """
    cur = CURRENCY[jurisdiction]
    name, phone, email = CREDITOR[jurisdiction]
    today = dt.date(2026, 3, 20)
    amount = Money("1250.00", cur) if cur == "NOK" else Money("245.50", cur)
    invoice = Invoice(
        id="INV-2026-0042",
        account_id="ACC-9",
        currency=cur,
        lines=(  # type: ignore[arg-type]  # Invoice's converter=tuple reads as Iterable[_T_co] to mypy
            InvoiceLine(
                "99213",
                DESCRIPTIONS[0],
                Money("300.00", cur) if cur != "NOK" else Money("1800.00", cur),
                dt.date(2026, 2, 2),
            ),
            InvoiceLine(
                "85025",
                DESCRIPTIONS[1],
                Money("100.00", cur) if cur != "NOK" else Money("400.00", cur),
                dt.date(2026, 2, 2),
            ),
        ),
        issue_date=dt.date(2026, 2, 20),
        due_date=dt.date(2026, 3, 22),
        insurance=Insurance(
            ClaimStatus.ADJUDICATED,
            insurer_paid=Money("100.00", cur) if cur != "NOK" else Money("600.00", cur),
            contractual_adjustment=Money("54.50", cur) if cur != "NOK" else Money("350.00", cur),
            payer_name="Acme Health",
        ),
        # a German invoice states the 30-day default rule (BGB § 286 (3)), so the statement prints it
        default_notice_given=jurisdiction == "de",
    )
    st = build_statement(invoice)
    owes0 = st.lines[0].patient_owes
    st = build_statement(
        invoice,
        reasons={
            0: (
                ShareReason(ShareKind.COPAY, Money("25.00", cur)),
                ShareReason(ShareKind.DEDUCTIBLE, owes0 - Money("25.00", cur)),
            )
        },
    )
    amount = st.balance
    if purpose is P.ESTIMATE:
        est = Estimate(
            "EST-2026-0042",
            "PAT-1",
            cur,
            invoice.lines,  # type: ignore[arg-type]  # converter=tuple reads as Iterable[_T_co] to mypy
            given_on=today,
            scheduled_for=dt.date(2026, 4, 2),
        )
        st = statement_from_estimate(est)
        amount = st.charges
    notice = None
    if purpose is P.VALIDATION_NOTICE:
        notice = NoticeInfo(
            principal=amount,
            original_creditor="Riverside Community Hospital",
            itemization=Itemization(
                dt.date(2026, 1, 5), amount, Money.zero(cur), Money.zero(cur), Money.zero(cur)
            ),
        )
    elif purpose in (P.BETALINGSOPPFORDRING, P.INKASSOVARSEL, P.MAHNUNG):
        fees = (Fee(FeeKind.REMINDER_FEE, Money("37.50", cur)),) if purpose is not P.MAHNUNG else ()
        principal = amount
        amount = amount + sum((f.amount for f in fees), Money.zero(cur))
        notice = NoticeInfo(
            principal=principal,
            fees=fees,
            interest_rate=Decimal("12.00") if cur == "NOK" else Decimal("6.27"),
            interest_from=dt.date(2026, 3, 23),
            invoice_date=dt.date(2026, 2, 20),
        )
    half = amount.split(2)
    thirds = amount.split(3)
    return MessageContext(
        reference="INV-2026-0042",
        creditor_name=name,
        jurisdiction=jurisdiction,
        today=today,
        phone=phone,
        email=email,
        amount_due=amount,
        due_date=dt.date(2026, 3, 22),
        deadline=dt.date(2026, 4, 3),
        pay_link=SIGNER.issue("INV-2026-0042", amount, expires_at=EXPIRY, nonce="Xk3v9QaL0pc").url,
        opt_out_url="https://example.org/prefs/u/7f3a",
        portal_url="https://portal.example.org",
        assistance_url="https://example.org/help",
        address=ADDRESS[jurisdiction],
        recipient_name="Kari Nordmann",
        statement=st,
        notice=notice,
        action_date=dt.date(2026, 5, 4),
        plan_options=(
            PlanOptionInfo("A", half[0], 2, amount, dt.date(2026, 4, 1)),
            PlanOptionInfo("B", thirds[0], 3, amount),
        ),
        payment=PaymentInfo(
            Money("100.00", cur), dt.date(2026, 3, 18), amount - Money("100.00", cur), "RCPT-881"
        ),
        instalment=InstalmentInfo(2, 3, thirds[1], dt.date(2026, 4, 1), direct_debit=True),
        dispute=DisputeInfo(
            "DSP-17",
            dt.date(2026, 3, 10),
            dt.date(2026, 3, 31),
            DisputeOutcome.CONFIRMED,
            corrective_action="Front desk staff will explain wait times at check-in.",
        ),
    )
