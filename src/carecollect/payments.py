"""Payments, adjustments and refunds: the money events a ledger records."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .money import Money
from .validation import aware, identifier, money_non_negative, of_type

__all__ = [
    "Adjustment",
    "AdjustmentKind",
    "Payment",
    "PaymentMethod",
    "PaymentReversal",
    "PaymentSource",
    "Refund",
    "ReversalCause",
]


class PaymentMethod(enum.Enum):
    """How a payment was made."""

    #: A debit or credit card.
    CARD = "card"
    #: A direct debit from a bank account under a mandate (SEPA, AvtaleGiro).
    DIRECT_DEBIT = "direct_debit"
    #: A mobile wallet (Vipps and the like).
    MOBILE = "mobile"
    #: A bank transfer made by the payer.
    BANK_TRANSFER = "bank_transfer"
    #: Cash at the desk.
    CASH = "cash"
    #: A cheque.
    CHEQUE = "cheque"


class PaymentSource(enum.Enum):
    """Who paid."""

    #: The patient, or someone paying for them.
    PATIENT = "patient"
    #: The patient's insurer.
    INSURER = "insurer"
    #: A collection agency remitting what it collected.
    AGENCY = "agency"


def _positive(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    money_non_negative(instance, attribute, value)
    if value.is_zero():
        from .errors import InvalidMoney
        from .validation import record_name

        raise InvalidMoney(record_name(instance), attribute.name, "must be more than zero")


@attrs.frozen
class Payment:
    """Money received.

    :param id: stable id; also the idempotency key of its ledger entries.
    :param account_id: the account paid into.
    :param amount: more than zero.
    :param method: :class:`PaymentMethod`.
    :param received_at: when it was received (aware).
    :param source: patient, insurer, or an agency remitting what it collected.
    :param provider_reference: the gateway's reference (not shown in reprs).
    :param directed_to: invoice ids the payer asked the payment to go to, in order.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=_positive)
    method: PaymentMethod = attrs.field(validator=of_type(PaymentMethod))
    received_at: dt.datetime = attrs.field(validator=aware)
    source: PaymentSource = PaymentSource.PATIENT
    provider_reference: str | None = attrs.field(default=None, repr=False)
    directed_to: tuple[str, ...] = attrs.field(default=(), converter=tuple)


class AdjustmentKind(enum.Enum):
    """Why a balance was reduced without a payment."""

    #: A discount the creditor granted (a dispute, a goodwill gesture).
    DISCOUNT = "discount"
    #: A discount for paying early or in full.
    PROMPT_PAY_DISCOUNT = "prompt_pay_discount"
    #: An amount the creditor gave up collecting.
    WRITE_OFF = "write_off"
    #: Free or discounted care under the financial-assistance policy.
    CHARITY_CARE = "charity_care"
    #: The contractual reduction agreed with the insurer.
    INSURANCE_ADJUSTMENT = "insurance_adjustment"
    #: A billing error put right.
    CORRECTION = "correction"


@attrs.frozen
class Adjustment:
    """A reduction of one invoice's balance.

    :param id: stable id (idempotency key).
    :param account_id: the account.
    :param invoice_id: the invoice reduced.
    :param amount: more than zero; never more than the invoice's open balance.
    :param kind: :class:`AdjustmentKind`.
    :param reason_code: the creditor's reason code (e.g. ``"DISPUTE-QUALITY"``).
    :param approved_by: id of the staff member who approved it.
    :param at: when it was made (aware).
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    invoice_id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=_positive)
    kind: AdjustmentKind = attrs.field(validator=of_type(AdjustmentKind))
    reason_code: str
    approved_by: str
    at: dt.datetime = attrs.field(validator=aware)


@attrs.frozen
class Refund:
    """Money returned to a payer.

    :param id: stable id (idempotency key).
    :param account_id: the account.
    :param payment_id: the payment refunded.
    :param amount: more than zero; never more than what that payment has left.
    :param at: when (aware).
    :param reason_code: why.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    payment_id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=_positive)
    at: dt.datetime = attrs.field(validator=aware)
    reason_code: str = "refund"


class ReversalCause(enum.Enum):
    """Why the money of a posted payment went back; the payer's bank or the provider decided, not the creditor.

    The value is the reason code the ledger's :attr:`~carecollect.ledger.EntryKind.PAYMENT_REVERSED`
    entries carry.
    """

    #: A direct debit returned after the provider reported it succeeded.
    PAYMENT_FAILED = "payment_failed"
    #: The payer disputed the charge with their card issuer.
    CHARGEBACK = "chargeback"
    #: The provider refunded the payer (not a refund the creditor posted, :class:`Refund`).
    PROVIDER_REFUND = "provider_refund"


@attrs.frozen
class PaymentReversal:
    """(Part of) a posted payment taken back: a returned debit, a chargeback, a provider's refund.

    What :func:`~carecollect.plugins.hookspecs.carecollect_on_payment_reversed` hands to
    plugins: ids and amounts only, nothing about the patient.

    :param id: the reversal id: the source id of its ledger entries (idempotency key).
    :param payment_id: the payment taken back (its :attr:`Payment.id`).
    :param account_id: the account.
    :param amount: what went back; more than zero.
    :param remaining: what is left of the payment afterwards (zero once all of it went back).
    :param cause: :class:`ReversalCause`.
    :param at: when the provider says it happened (aware).
    :param provider: the payment-provider plugin that reported it.
    :param provider_event_id: the provider's event id (its webhook's idempotency key).
    """

    id: str = attrs.field(validator=identifier)
    payment_id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=_positive)
    remaining: Money = attrs.field(validator=money_non_negative)
    cause: ReversalCause = attrs.field(validator=of_type(ReversalCause))
    at: dt.datetime = attrs.field(validator=aware)
    provider: str
    provider_event_id: str
