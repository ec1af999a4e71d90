"""What a message may say: the context passed to a template, and the result.

A :class:`MessageContext` carries identifiers, amounts, dates, the pay link and
the creditor's name and contact details. It never carries a diagnosis: the only
clinical text it can hold is the plain-language description of a statement
line, and the checks in :mod:`carecollect.messages.checks` make sure such a
description only ever appears in a letter, an e-mail body or the portal.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> ctx = MessageContext(reference="INV-1", creditor_name="Fjordklinikken AS", jurisdiction="no",
...                      today=dt.date(2026, 3, 3), phone="+47 22 00 00 00", email="faktura@example.no",
...                      amount_due=Money("1250.00", "NOK"), recipient_name="Kari")
>>> "Kari" in repr(ctx)
False
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs

from ..channels import Channel
from ..deprecation import renamed
from ..errors import ValidationError
from ..money import Money
from ..office_hours import OfficeHours
from ..outreach import OutreachPurpose
from ..validation import date_only, date_or_none, identifier

__all__ = [
    "JURISDICTIONS",
    "DisputeInfo",
    "DisputeOutcome",
    "Fee",
    "FeeKind",
    "InstalmentInfo",
    "Itemization",
    "MessageContext",
    "NoticeInfo",
    "PaymentInfo",
    "PlanOptionInfo",
    "RenderedMessage",
    "SmsEncoding",
    "WayToPay",
]

#: Jurisdictions with built-in "know your rights" texts and formal notices.
JURISDICTIONS = ("us", "no", "de", "bg")


class WayToPay(enum.Enum):
    """Ways to pay a message may offer.

    Not the payment record's :class:`~carecollect.payments.PaymentMethod` (how a payment was made).

    .. versionchanged:: 0.2 named ``PaymentMethod`` before (a deprecated alias remains).
    """

    #: Pay online (a payment link).
    ONLINE = "online"
    #: Pay by direct debit (SEPA, AvtaleGiro).
    DIRECT_DEBIT = "direct_debit"
    #: Pay with a mobile wallet (Vipps and the like).
    MOBILE = "mobile"
    #: Pay by bank transfer to the account and reference given.
    BANK_TRANSFER = "bank_transfer"


class FeeKind(enum.Enum):
    """Kinds of fee a formal notice itemises."""

    #: A fee for a reminder (Mahngebühr, purregebyr).
    REMINDER_FEE = "reminder_fee"
    #: A collection cost the law lets the creditor charge.
    COLLECTION_FEE = "collection_fee"
    #: Interest for late payment.
    INTEREST = "interest"


class DisputeOutcome(enum.Enum):
    """How a dispute was resolved, as the patient is told."""

    #: The patient was right: the balance is corrected.
    CORRECTED = "corrected"
    #: The balance is reduced or written off as a goodwill gesture.
    REDUCED = "reduced"
    #: The bill was checked and is correct as sent.
    CONFIRMED = "confirmed"


def _money(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise ValidationError(type(instance).__name__, attribute.name, "a carecollect Money is expected")


def _money_opt(instance: object, attribute: attrs.Attribute[Money | None], value: Money | None) -> None:
    if value is not None:
        _money(instance, attribute, value)  # type: ignore[arg-type]


def _fees(value: Iterable[Fee]) -> tuple[Fee, ...]:
    return tuple(value)


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _methods(value: Iterable[WayToPay]) -> tuple[WayToPay, ...]:
    return tuple(value)


def _options(value: Iterable[PlanOptionInfo]) -> tuple[PlanOptionInfo, ...]:
    return tuple(value)


@attrs.frozen
class PlanOptionInfo:
    """One payment-plan option as a message shows it (plain data).

    Not the relief policy's :class:`~carecollect.relief.plans.PlanOption` (a fitted plan with
    its reasons): the caller copies the figures it wants the patient to read.

    .. versionchanged:: 0.2 named ``PlanOption`` before (a deprecated alias remains).

    :param label: a short label (``"A"``, ``"6 months"``); shown as is.
    :param instalment: the amount of each instalment.
    :param count: the number of instalments.
    :param total: what the patient pays in all (equal to the balance unless
        the plan carries interest, which the message then states).
    :param first_due: the first due date, if fixed.
    """

    label: str
    instalment: Money = attrs.field(validator=_money)
    count: int
    total: Money = attrs.field(validator=_money)
    first_due: dt.date | None = attrs.field(default=None, validator=date_or_none)

    def __attrs_post_init__(self) -> None:
        if self.count < 1:
            raise ValidationError(f"PlanOptionInfo {self.label}", "count", "at least one instalment")


@attrs.frozen
class PaymentInfo:
    """A payment received (for a confirmation).

    :param amount: the amount received.
    :param paid_on: the date it was received.
    :param remaining: the balance still open after it.
    :param receipt_id: the receipt or transaction reference.
    """

    amount: Money = attrs.field(validator=_money)
    paid_on: dt.date = attrs.field(validator=date_only)
    remaining: Money = attrs.field(validator=_money)
    receipt_id: str = attrs.field(validator=identifier)


@attrs.frozen
class InstalmentInfo:
    """The next instalment of a plan (for an instalment reminder).

    :param number: its number, from 1.
    :param count: the number of instalments in the plan.
    :param amount: its amount.
    :param due_date: its due date.
    :param direct_debit: True when it will be collected by direct debit.
    """

    number: int
    count: int
    amount: Money = attrs.field(validator=_money)
    due_date: dt.date = attrs.field(validator=date_only)
    direct_debit: bool = False


@attrs.frozen
class DisputeInfo:
    """A dispute (for acknowledgement, resolution and the follow-up call).

    :param dispute_id: its identifier.
    :param received_on: when the patient raised it.
    :param respond_by: when we promise an answer.
    :param outcome: the :class:`DisputeOutcome` once resolved.
    :param new_amount: the corrected or reduced balance, if it changed.
    :param corrective_action: a short, non-clinical description of what
        the provider is changing (shown in letter, e-mail and portal only).
    """

    dispute_id: str = attrs.field(validator=identifier)
    received_on: dt.date = attrs.field(validator=date_only)
    respond_by: dt.date | None = attrs.field(default=None, validator=date_or_none)
    outcome: DisputeOutcome | None = None
    new_amount: Money | None = attrs.field(default=None, validator=_money_opt)
    corrective_action: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Fee:
    """One fee on a formal notice.

    :param kind: :class:`FeeKind`.
    :param amount: its amount.
    """

    kind: FeeKind
    amount: Money = attrs.field(validator=_money)


@attrs.frozen
class Itemization:
    """The US validation notice itemisation (12 CFR 1006.34(c)(2)).

    :param itemization_date: the date the collector uses (last statement,
        charge-off, last payment, transaction or judgment date).
    :param amount_on_itemization_date: what was owed on that date.
    :param interest: interest charged since then.
    :param fees: fees charged since then.
    :param payments_credits: payments and credits since then (a positive amount).
    """

    itemization_date: dt.date = attrs.field(validator=date_only)
    amount_on_itemization_date: Money = attrs.field(validator=_money)
    interest: Money = attrs.field(validator=_money)
    fees: Money = attrs.field(validator=_money)
    payments_credits: Money = attrs.field(validator=_money)

    @property
    def current_amount(self) -> Money:
        """Amount now owed: the itemisation-date amount plus interest and fees minus payments."""
        return self.amount_on_itemization_date + self.interest + self.fees - self.payments_credits


@attrs.frozen
class NoticeInfo:
    """What a formal notice must state.

    :param principal: the principal (hovedstol, Hauptforderung).
    :param fees: the fees charged, itemised.
    :param interest_rate: the yearly late-interest rate in percent, if interest runs.
    :param interest_from: the date interest runs from.
    :param original_creditor: the creditor the debt arose with (for collectors).
    :param itemization: the US itemisation.
    :param invoice_date: the date of the original invoice.
    """

    principal: Money = attrs.field(validator=_money)
    fees: tuple[Fee, ...] = attrs.field(default=(), converter=_fees)
    interest_rate: Decimal | None = None
    interest_from: dt.date | None = attrs.field(default=None, validator=date_or_none)
    original_creditor: str | None = None
    itemization: Itemization | None = None
    invoice_date: dt.date | None = attrs.field(default=None, validator=date_or_none)


def _jurisdiction(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in JURISDICTIONS:
        raise ValidationError("MessageContext", "jurisdiction", f"one of {', '.join(JURISDICTIONS)}")


@attrs.frozen(kw_only=True)
class MessageContext:
    """Everything a template may use. Never a diagnosis.

    :param reference: the invoice (or account) reference shown to the patient.
    :param creditor_name: the creditor's name as shown in letters and e-mail bodies.
    :param sender_name: a neutral name for SMS, subject lines and voicemail that
        reveals neither debt collection nor a clinic's specialty (set it when
        the creditor's name reveals a specialty). Left empty, the attribute
        :attr:`sender_name` is derived from ``creditor_name`` whenever it is
        read, so ``attrs.evolve(ctx, creditor_name=...)`` renames the sender
        too; a name set here stays until it is evolved away.
    :param jurisdiction: ``"us"``, ``"no"``, ``"de"`` or ``"bg"``: whose rights
        texts and notices apply, and the region used for number layout.
    :param today: the date the message is rendered (for relative dates).
    :param phone: the creditor's help line.
    :param email: the creditor's billing e-mail.
    :param amount_due: what the patient owes now.
    :param due_date: when it is due.
    :param deadline: a pay-by or object-by date the message states.
    :param pay_link: a signed pay link (:mod:`carecollect.messages.paylinks`).
    :param opt_out_url: the page where the patient stops electronic messages.
    :param opt_out_keyword: the SMS keyword that stops texts.
    :param portal_url: the patient portal.
    :param assistance_url: where to read about and apply for financial assistance.
    :param address: the creditor's postal address lines (letters).
    :param recipient_name: the salutation name (letters, e-mail bodies, portal only).
    :param agent_name: the staff member's name for voice scripts.
    :param payment_methods: the ways to pay the message offers.
    :param statement: a :class:`~carecollect.messages.statement.Statement`.
    :param plan_options: plan options the policy proposed.
    :param payment: a :class:`PaymentInfo`.
    :param instalment: an :class:`InstalmentInfo`.
    :param dispute: a :class:`DisputeInfo`.
    :param notice: a :class:`NoticeInfo`.
    :param action_date: the earliest date of a next step a notice announces
        (an extraordinary collection action, a placement with an agency).
    :param office_hours: when the creditor's office answers the phone
        (:class:`~carecollect.office_hours.OfficeHours`); messages say it under the help line.
    :param time_zone: the patient's IANA zone: the office hours are shown in it (``None``: in
        the office's own).
    :param fap_summary: a statement carries the plain-language summary of the
        financial-assistance policy with ``assistance_url`` and ``phone`` (a US
        nonprofit hospital's statements, 26 CFR 1.501(r)-4(b)(5)); needs ``assistance_url``.
    """

    reference: str = attrs.field(validator=identifier)
    creditor_name: str
    jurisdiction: str = attrs.field(validator=_jurisdiction)
    today: dt.date = attrs.field(validator=date_only)
    phone: str
    email: str
    amount_due: Money = attrs.field(validator=_money)
    _sender_name: str = attrs.field(default="", alias="sender_name")
    due_date: dt.date | None = attrs.field(default=None, validator=date_or_none)
    deadline: dt.date | None = attrs.field(default=None, validator=date_or_none)
    pay_link: str | None = None
    opt_out_url: str | None = None
    opt_out_keyword: str = "STOP"
    portal_url: str | None = None
    assistance_url: str | None = None
    address: tuple[str, ...] = attrs.field(default=(), converter=_strs, repr=False)
    recipient_name: str | None = attrs.field(default=None, repr=False)
    agent_name: str | None = attrs.field(default=None, repr=False)
    payment_methods: tuple[WayToPay, ...] = attrs.field(
        default=(WayToPay.ONLINE, WayToPay.DIRECT_DEBIT, WayToPay.MOBILE), converter=_methods
    )
    statement: object | None = attrs.field(default=None, repr=False)
    plan_options: tuple[PlanOptionInfo, ...] = attrs.field(default=(), converter=_options)
    payment: PaymentInfo | None = None
    instalment: InstalmentInfo | None = None
    dispute: DisputeInfo | None = None
    notice: NoticeInfo | None = None
    action_date: dt.date | None = attrs.field(default=None, validator=date_or_none)
    fap_summary: bool = False
    office_hours: OfficeHours | None = None
    time_zone: str | None = None

    @property
    def sender_name(self) -> str:
        """The name SMS, subject lines and voicemail show: the one set, else ``creditor_name``.

        >>> import datetime as dt
        >>> from carecollect.money import Money
        >>> ctx = MessageContext(reference="INV-1", creditor_name="Bay Clinic", jurisdiction="us",
        ...     today=dt.date(2026, 3, 2), phone="+1 555 0100", email="b@example.org",
        ...     amount_due=Money("10.00", "USD"))
        >>> attrs.evolve(ctx, creditor_name="Lakeside Clinic").sender_name
        'Lakeside Clinic'
        """
        return self._sender_name or self.creditor_name


class SmsEncoding(enum.Enum):
    """The encoding an SMS travels in."""

    #: The GSM 7-bit alphabet: 160 characters in one segment, 153 per segment when split.
    GSM7 = "gsm7"
    #: UCS-2 (for text GSM 7-bit cannot carry, such as Cyrillic): 70 characters, 67 per segment when split.
    UCS2 = "ucs2"


@attrs.frozen
class RenderedMessage:
    """A checked rendering, ready for a channel plugin.

    :param purpose: the :class:`~carecollect.outreach.OutreachPurpose`.
    :param channel: the :class:`~carecollect.channels.Channel`.
    :param language: the language actually used (after fallback).
    :param locale: the locale used for money, dates and numbers.
    :param text: the plain text (letter, e-mail text part, SMS, portal, voice script).
    :param subject: the e-mail subject or letter/portal headline.
    :param html: the HTML part (e-mail only).
    :param voicemail: the limited-content voicemail (phone only).
    :param encoding: the SMS encoding (SMS only).
    :param segments: the number of SMS segments (SMS only).
    :param checks: the names of the checks that passed.
    """

    purpose: OutreachPurpose
    channel: Channel
    language: str
    locale: str
    text: str = attrs.field(repr=False)
    subject: str | None = attrs.field(default=None, repr=False)
    html: str | None = attrs.field(default=None, repr=False)
    voicemail: str | None = attrs.field(default=None, repr=False)
    encoding: SmsEncoding | None = None
    segments: int | None = None
    checks: tuple[str, ...] = ()


__getattr__ = renamed(
    __name__,
    {
        "PaymentMethod": "carecollect.messages.context:WayToPay",
        "PlanOption": "carecollect.messages.context:PlanOptionInfo",
    },
)
