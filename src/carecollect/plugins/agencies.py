"""The agency-connector contract: hand an account to a collection agency and read back.

An agency plugin returns an :class:`AgencyConnectorDescriptor` from its
``carecollect_agency_connectors`` hook; the connector it builds offers
:class:`AgencyConnector`'s verbs:

* :meth:`~AgencyConnector.send_pre_placement_notice`, where the law or the
  agency wants the patient told before placement;
* :meth:`~AgencyConnector.place` with a :class:`PlacementRequest`, which by
  construction carries only what an agency needs (ids, amounts, dates, the
  payer's contact details) and **no clinical detail**: no line descriptions,
  no billing codes, no diagnosis (HIPAA minimum necessary, 45 CFR 164.502(b));
* :meth:`~AgencyConnector.recall`;
* :meth:`~AgencyConnector.read_status_updates` and
  :meth:`~AgencyConnector.read_remittances`, so the ledger records what the
  agency collected (:func:`carecollect.placements.record_remittance`).

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.invoices import Invoice, InvoiceLine
>>> inv = Invoice(id="INV-1", account_id="A-1", currency="EUR",
...               lines=(InvoiceLine("99213", "Knee MRI", Money("120.00", "EUR"), dt.date(2026, 1, 5)),),
...               issue_date=dt.date(2026, 1, 6), due_date=dt.date(2026, 2, 5))
>>> line = PlacedInvoice.from_invoice(inv, open_balance=Money("120.00", "EUR"))
>>> line
PlacedInvoice(invoice_id='INV-1', open_balance=Money('120.00', 'EUR'), issue_date=datetime.date(2026, 1, 6), due_date=datetime.date(2026, 2, 5), first_service_date=datetime.date(2026, 1, 5))
>>> "MRI" in repr(line) or "99213" in repr(line)
False
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ..errors import ValidationError
from ..invoices import Invoice
from ..money import Money
from ..placements import Remittance
from ..scrubbing import scrub_mapping, scrub_text
from ..validation import aware, date_only, date_or_none, identifier, money_non_negative
from .providers import validate_plugin_name

__all__ = [
    "AgencyAccountStatus",
    "AgencyConnector",
    "AgencyConnectorCapabilities",
    "AgencyConnectorDescriptor",
    "AgencyReceipt",
    "AgencyRemittance",
    "AgencyStatusUpdate",
    "Debtor",
    "PlacedInvoice",
    "PlacementRequest",
    "PrePlacementNotice",
]


def _code_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


def _lines(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _invoices(values: Iterable[PlacedInvoice]) -> tuple[PlacedInvoice, ...]:
    return tuple(values)


@attrs.frozen
class PlacedInvoice:
    """One invoice as an agency sees it: ids, amounts and dates only.

    :param invoice_id: the creditor's invoice id.
    :param open_balance: what is still owed on it.
    :param issue_date: when it was issued.
    :param due_date: when it was due.
    :param first_service_date: the earliest service date (the debt's date,
        needed for limitation periods), never what the service was.
    """

    invoice_id: str = attrs.field(validator=identifier)
    open_balance: Money = attrs.field(validator=money_non_negative)
    issue_date: dt.date = attrs.field(validator=date_only)
    due_date: dt.date = attrs.field(validator=date_only)
    first_service_date: dt.date | None = attrs.field(default=None, validator=date_or_none)

    @classmethod
    def from_invoice(cls, invoice: Invoice, *, open_balance: Money) -> PlacedInvoice:
        """The agency's view of ``invoice``: no codes, no descriptions.

        :param invoice: the invoice.
        :param open_balance: its open balance from the ledger.
        :returns: the :class:`PlacedInvoice`.
        """
        return cls(
            invoice_id=invoice.id,
            open_balance=open_balance,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            first_service_date=min(line.service_date for line in invoice.lines),
        )


@attrs.frozen
class Debtor:
    """The person the agency contacts (the guarantor), with what it needs to reach them.

    :param id: the payer's id at the creditor.
    :param name: full name (never in reprs).
    :param postal_address: postal address lines (never in reprs).
    :param country: ISO 3166-1 country.
    :param language: preferred language (BCP 47).
    :param email: e-mail, if the patient consented to it (never in reprs).
    :param phone: phone, if the patient consented to it (never in reprs).
    """

    id: str = attrs.field(validator=identifier)
    name: str = attrs.field(repr=False)
    postal_address: tuple[str, ...] = attrs.field(converter=_lines, repr=False)
    country: str
    language: str = "en"
    email: str | None = attrs.field(default=None, repr=False)
    phone: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class PlacementRequest:
    """An account handed to an agency.

    :param placement_id: the :class:`~carecollect.placements.AgencyPlacement` id
        (the agency's idempotency key).
    :param account_id: the account.
    :param creditor_id: who is owed.
    :param debtor: :class:`Debtor`.
    :param invoices: :class:`PlacedInvoice` lines, all in one currency.
    :param jurisdiction: policy pack key the account is collected under.
    :param disputed: always false: a disputed account is not placed (the gate checks).
    :raises ValidationError: no invoices, or mixed currencies.
    """

    placement_id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    creditor_id: str = attrs.field(validator=identifier)
    debtor: Debtor
    invoices: tuple[PlacedInvoice, ...] = attrs.field(converter=_invoices)
    jurisdiction: str = "default"

    def __attrs_post_init__(self) -> None:
        if not self.invoices:
            raise ValidationError(
                f"PlacementRequest {self.placement_id}", "invoices", "place at least one invoice"
            )
        if len({i.open_balance.currency for i in self.invoices}) != 1:
            raise ValidationError(f"PlacementRequest {self.placement_id}", "invoices", "all in one currency")

    @property
    def amount(self) -> Money:
        """The total placed."""
        first, *rest = (i.open_balance for i in self.invoices)
        for value in rest:
            first = first + value
        return first


@attrs.frozen
class PrePlacementNotice:
    """A notice to the patient that an account will be placed unless paid or arranged.

    :param id: stable id (idempotency key).
    :param request: the placement it announces.
    :param placement_not_before: the earliest date of placement.
    :param sent_at: when the notice goes out (aware).
    """

    id: str = attrs.field(validator=identifier)
    request: PlacementRequest
    placement_not_before: dt.date = attrs.field(validator=date_only)
    sent_at: dt.datetime = attrs.field(validator=aware)


def _scrub_detail(value: object) -> str:
    return scrub_text(str(value))


@attrs.frozen
class AgencyReceipt:
    """The agency's answer to a notice, a placement or a recall.

    :param accepted: whether the agency took it.
    :param agency_reference: the agency's reference.
    :param detail: scrubbed explanation (why refused).
    :param raw: the raw answer, scrubbed (not compared, not in reprs).
    """

    accepted: bool
    agency_reference: str | None = None
    detail: str = attrs.field(default="", converter=_scrub_detail)
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub_mapping, repr=False, eq=False)


class AgencyAccountStatus(enum.Enum):
    """Where the agency is with an account."""

    #: The agency confirmed it received the account.
    ACKNOWLEDGED = "acknowledged"
    #: The agency is working the account (contacting the patient).
    IN_PROGRESS = "in_progress"
    #: The patient agreed a payment plan with the agency.
    PAYMENT_PLAN = "payment_plan"
    #: The patient disputes the debt: collection stops until it is answered.
    DISPUTED = "disputed"
    #: The patient paid the agency in full.
    PAID = "paid"
    #: The agency gives the account back (uncollectable, closed).
    RETURNED = "returned"
    #: The creditor took the account back and the agency confirmed it.
    RECALLED = "recalled"


@attrs.frozen
class AgencyStatusUpdate:
    """One status change the agency reports.

    :param id: the agency's update id (idempotency key).
    :param placement_id: the placement.
    :param status: :class:`AgencyAccountStatus`.
    :param at: when (aware).
    """

    id: str = attrs.field(validator=identifier)
    placement_id: str = attrs.field(validator=identifier)
    status: AgencyAccountStatus
    at: dt.datetime = attrs.field(validator=aware)


@attrs.frozen
class AgencyRemittance:
    """Money the agency collected for a placement.

    :param placement_id: the placement.
    :param remittance: the :class:`~carecollect.placements.Remittance` (its id is the idempotency key).
    """

    placement_id: str = attrs.field(validator=identifier)
    remittance: Remittance


@attrs.frozen
class AgencyConnectorCapabilities:
    """What a connector claims.

    :param countries: ISO 3166-1 countries the agency works in.
    :param currencies: ISO 4217 currencies it accepts.
    :param pre_placement_notice: whether the agency sends the pre-placement notice.
    :param recall: whether accounts can be recalled through the connector.
    :param remittances: whether remittances can be read through the connector.
    """

    countries: frozenset[str] = attrs.field(converter=_code_set)
    currencies: frozenset[str] = attrs.field(converter=_code_set)
    pre_placement_notice: bool = False
    recall: bool = True
    remittances: bool = True


class AgencyConnector(Protocol):
    """The verbs every agency connector offers."""

    capabilities: AgencyConnectorCapabilities

    def send_pre_placement_notice(self, notice: PrePlacementNotice) -> AgencyReceipt:
        """Have the agency send ``notice`` (same notice id twice: sent once)."""
        ...

    def place(self, request: PlacementRequest) -> AgencyReceipt:
        """Place an account (same placement id twice: placed once)."""
        ...

    def recall(self, placement_id: str, *, reason: str, at: dt.datetime) -> AgencyReceipt:
        """Take an account back."""
        ...

    def read_status_updates(self, since: dt.datetime) -> Sequence[AgencyStatusUpdate]:
        """Updates reported after ``since``."""
        ...

    def read_remittances(self, since: dt.datetime) -> Sequence[AgencyRemittance]:
        """Remittances reported after ``since``."""
        ...


@attrs.frozen
class AgencyConnectorDescriptor:
    """What an agency plugin provides (returned by ``carecollect_agency_connectors``).

    :param name: configuration name, unique across plugins.
    :param capabilities: :class:`AgencyConnectorCapabilities`.
    :param factory: builds the connector from settings.
    :param description: one line for listings.
    """

    name: str = attrs.field()
    capabilities: AgencyConnectorCapabilities
    factory: Callable[[Mapping[str, str]], AgencyConnector] = attrs.field(repr=False)
    description: str = ""

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        validate_plugin_name("AgencyConnectorDescriptor", value)

    def create(self, settings: Mapping[str, str] | None = None) -> AgencyConnector:
        """Build the connector from ``settings``."""
        return self.factory(dict(settings or {}))
