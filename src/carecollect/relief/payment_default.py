"""Germany: since when is a consumer in default (Verzug, BGB § 286)?

Two rules can put a patient in default on a German bill:

* **the 30-day rule** (BGB § 286 (3)): a debtor who has not paid within 30 days
  after the claim fell due and the invoice was received is in default, but a
  consumer only if the invoice pointed this out. Whether it did is a fact about
  the invoice (:attr:`~carecollect.invoices.Invoice.default_notice_given`), and so
  is the day the patient received it
  (:attr:`~carecollect.invoices.Invoice.received_on`). The 30 days start the day
  after the later of due date and receipt (BGB § 187 (1)) and end with the 30th
  day (§ 188 (1)); default begins on the day after, and a payment on the 30th day
  is in time.
* **a reminder** (Mahnung, BGB § 286 (1)) received after the claim fell due: the
  patient is in default from its receipt; interest runs from the next day
  (§ 187 (1) applied to the day of the event).

:func:`germany_default_start` answers with the earlier of the two, or ``None``
when neither applies yet; :func:`~carecollect.relief.fees.germany_default_interest`
takes its answer and charges § 288 (1) interest from
:attr:`DefaultStart.interest_from`.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.policy import get_pack
>>> from carecollect.invoices import Invoice, InvoiceLine
>>> inv = Invoice("INV-1", "A-1", "EUR", (InvoiceLine("GOÄ 1", "Beratung", Money("40.22", "EUR"), dt.date(2026, 3, 2)),),
...               dt.date(2026, 3, 3), dt.date(2026, 4, 2), default_notice_given=True, received_on=dt.date(2026, 3, 5))
>>> start = germany_default_start(inv, reminder_received_on=None, pack=get_pack("de"))
>>> start.began_on, start.cause.value
(datetime.date(2026, 5, 3), 'thirty_days')
>>> germany_default_start(attrs.evolve(inv, default_notice_given=False), reminder_received_on=None,
...                       pack=get_pack("de")) is None
True
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from ..invoices import Invoice
from ..policy.packs import PolicyPack
from .reasons import Outcome, Reason, note, rule_reason

__all__ = ["DefaultCause", "DefaultStart", "germany_default_start"]


class DefaultCause(enum.Enum):
    """What put the patient in default."""

    #: 30 days after due date and receipt of an invoice that said so (BGB § 286 (3)).
    THIRTY_DAYS = "thirty_days"
    #: A reminder received after the due date (BGB § 286 (1)).
    REMINDER = "reminder"


@attrs.frozen
class DefaultStart:
    """When default began, and why.

    :param began_on: the first day the patient is in default.
    :param interest_from: the first day default interest accrues (the day after a
        reminder's receipt; the day default began under the 30-day rule).
    :param cause: :class:`DefaultCause`.
    :param reasons: the rules applied, with their sources.
    """

    began_on: dt.date
    interest_from: dt.date
    cause: DefaultCause
    reasons: tuple[Reason, ...]


def germany_default_start(
    invoice: Invoice, *, reminder_received_on: dt.date | None, pack: PolicyPack
) -> DefaultStart | None:
    """The day a consumer's default on ``invoice`` began (BGB § 286), or ``None`` if it has not.

    :param invoice: the invoice, with :attr:`~carecollect.invoices.Invoice.default_notice_given`
        and :attr:`~carecollect.invoices.Invoice.received_on`.
    :param reminder_received_on: the day the patient received the first reminder (Mahnung)
        about it, if one was received; German law presumes no receipt, so record the day you can show.
    :param pack: the ``de`` pack (``de.default_days_after_invoice``).
    :returns: the earlier of the two starts (:class:`DefaultStart`), or ``None`` when
        neither rule applies (no notice or no known receipt, and no reminder after the due date).
    """
    due = invoice.due_date
    found: list[DefaultStart] = []
    if invoice.default_notice_given and invoice.received_on is not None:
        days: int = pack.value("de.default_days_after_invoice", on=due)
        start = max(due, invoice.received_on)
        last = start + dt.timedelta(days=days)
        began = last + dt.timedelta(days=1)
        reason = rule_reason(
            pack,
            "de.default_days_after_invoice",
            began,
            Outcome.INFO,
            days=days,
            due=due.isoformat(),
            received=invoice.received_on.isoformat(),
            last=last.isoformat(),
        )
        found.append(DefaultStart(began, began, DefaultCause.THIRTY_DAYS, (reason,)))
    if (
        reminder_received_on is not None
        and reminder_received_on > due
        and (invoice.received_on is None or reminder_received_on >= invoice.received_on)
    ):
        reason = note(
            "record.reminder_received",
            "BGB § 286 (1); interest from the next day (BGB § 187 (1))",
            Outcome.INFO,
            received=reminder_received_on.isoformat(),
            due=due.isoformat(),
        )
        found.append(
            DefaultStart(
                reminder_received_on,
                reminder_received_on + dt.timedelta(days=1),
                DefaultCause.REMINDER,
                (reason,),
            )
        )
    return min(found, key=lambda s: (s.began_on, s.interest_from)) if found else None
