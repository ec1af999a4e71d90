"""An account's state as the gates and pauses read it: one frozen snapshot, no store access.

The caller (a daily run, a staff screen) gathers the records of one debt or
account into a :class:`GateSnapshot`; :mod:`carecollect.relief.gates` and
:mod:`carecollect.relief.pauses` are pure functions of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

from ..assistance_applications import AssistanceApplication
from ..deprecation import renamed
from ..disputes import Dispute
from ..errors import ValidationError
from ..handoff_consent import HandoffConsent
from ..invoices import Invoice
from ..money import Money
from ..outreach import OutreachPurpose
from ..plans import PaymentPlan
from ..validation import date_only, date_or_none, identifier

__all__ = ["GateSnapshot", "SentNotice"]


@attrs.frozen
class SentNotice:
    """A notice that went out (a pre-placement notice, an inkassovarsel, a 501(r) ECA notice).

    :param purpose: :class:`~carecollect.outreach.OutreachPurpose`.
    :param sent_on: the day it was sent.
    :param deadline: the pay-by or object-by date it stated, if any.
    :param invoice_id: the invoice it concerned (``None``: the whole account).
    """

    purpose: OutreachPurpose
    sent_on: dt.date = attrs.field(validator=date_only)
    deadline: dt.date | None = attrs.field(default=None, validator=date_or_none)
    invoice_id: str | None = None


def _t(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


def _dates(value: Iterable[dt.date]) -> tuple[dt.date, ...]:
    return tuple(value)


@attrs.frozen
class GateSnapshot:
    """Everything the relief gates and pauses need about one debt (or account).

    Not the store's :class:`~carecollect.store.base.AccountSnapshot` (the records the daily
    run reads): this one is what the gates judge, gathered by the caller.

    .. versionchanged:: 0.2 named ``AccountSnapshot`` before (a deprecated alias remains).

    :param account_id: the account.
    :param balance: the open balance the action would concern.
    :param invoices: the invoices behind it.
    :param disputes: disputes on the account (open or not).
    :param plans: payment plans on the account.
    :param applications: financial-assistance applications.
    :param notices: notices sent (see :class:`SentNotice`).
    :param handoff_consent: the patient's consent to handing the claim to an agency (Germany).
    :param spoke_with_consumer_on: the last day a collector spoke with the consumer about the debt.
    :param last_message_on: the last day a collector sent the consumer a message about the debt.
    :param undeliverable_on: the days a notice of undeliverability arrived (a bounced e-mail or
        text, a returned letter: a ``BOUNCED`` contact attempt). One that arrives within the
        waiting period after ``last_message_on`` means the message did not reach the consumer,
        so it cannot open the way to passive credit reporting (12 CFR 1006.30(a)(2)).
    """

    account_id: str = attrs.field(validator=identifier)
    balance: Money
    invoices: tuple[Invoice, ...] = attrs.field(default=(), converter=_t)
    disputes: tuple[Dispute, ...] = attrs.field(default=(), converter=_t)
    plans: tuple[PaymentPlan, ...] = attrs.field(default=(), converter=_t)
    applications: tuple[AssistanceApplication, ...] = attrs.field(default=(), converter=_t)
    notices: tuple[SentNotice, ...] = attrs.field(default=(), converter=_t)
    handoff_consent: HandoffConsent | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(HandoffConsent))
    )
    spoke_with_consumer_on: dt.date | None = attrs.field(default=None, validator=date_or_none)
    last_message_on: dt.date | None = attrs.field(default=None, validator=date_or_none)
    undeliverable_on: tuple[dt.date, ...] = attrs.field(default=(), converter=_dates)

    def __attrs_post_init__(self) -> None:
        for i, day in enumerate(self.undeliverable_on):
            if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
                raise ValidationError(
                    f"GateSnapshot {self.account_id}",
                    f"undeliverable_on[{i}]",
                    f"a date is expected, got {type(day).__name__}",
                )
        for inv in self.invoices:
            if inv.currency != self.balance.currency:
                raise ValidationError(
                    f"GateSnapshot {self.account_id}",
                    "invoices",
                    f"invoice {inv.id} is not in {self.balance.currency}",
                )

    @property
    def first_statement(self) -> dt.date | None:
        """The earliest first-statement date of the invoices (``None`` if none was recorded)."""
        dates = [i.first_statement_date for i in self.invoices if i.first_statement_date is not None]
        return min(dates) if dates else None

    @property
    def delinquent_since(self) -> dt.date | None:
        """The earliest due date of the invoices."""
        return min((i.due_date for i in self.invoices), default=None)

    def open_disputes(self, invoice_id: str | None = None) -> tuple[Dispute, ...]:
        """Open disputes (covering ``invoice_id`` when given).

        :param invoice_id: an invoice id (``None``: any).
        """
        return tuple(d for d in self.disputes if d.is_open and (invoice_id is None or d.covers(invoice_id)))

    def current_plans(self, invoice_id: str | None = None) -> tuple[PaymentPlan, ...]:
        """Plans the patient is keeping (active or paused), covering ``invoice_id`` when given.

        :param invoice_id: an invoice id (``None``: any).
        """
        return tuple(
            p
            for p in self.plans
            if p.status.current and (invoice_id is None or not p.invoice_ids or invoice_id in p.invoice_ids)
        )

    def pending_applications(self) -> tuple[AssistanceApplication, ...]:
        """Assistance applications awaiting a decision."""
        return tuple(a for a in self.applications if a.status.pending)

    def last_notice(self, *purposes: OutreachPurpose) -> SentNotice | None:
        """The most recent notice of one of ``purposes``."""
        found = [n for n in self.notices if n.purpose in purposes]
        return max(found, key=lambda n: n.sent_on) if found else None


__getattr__ = renamed(__name__, {"AccountSnapshot": "carecollect.relief.snapshot:GateSnapshot"})
