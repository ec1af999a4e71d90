"""Agency placements: an account handed to a collection agency, and what came back.

The gate that decides whether an account may be placed is a policy function;
this module records the placement and its guarded life cycle.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

import attrs

from .errors import CurrencyMismatch, DuplicateEntry, InvalidTransition, ValidationError
from .events import Event, EventType
from .money import Money, total
from .timekeeping import require_aware
from .validation import aware, aware_or_none, identifier, money_non_negative, money_or_none, of_type

__all__ = [
    "AgencyPlacement",
    "PlacementStatus",
    "Remittance",
    "place_account",
    "recall_placement",
    "record_remittance",
    "return_placement",
]


class PlacementStatus(enum.Enum):
    """Life cycle of a placement."""

    #: Decided, not yet sent to the agency.
    PENDING = "pending"
    #: The agency has the account.
    PLACED = "placed"
    #: The creditor took the account back.
    RECALLED = "recalled"
    #: The agency gave the account back.
    RETURNED = "returned"


@attrs.frozen
class Remittance:
    """Money an agency collected and passed on.

    :param id: the agency's remittance line id (idempotency key).
    :param amount: more than zero.
    :param collected_at: when the agency collected it.
    :param fee: the agency's fee, if deducted.
    """

    id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=money_non_negative)
    collected_at: dt.datetime = attrs.field(validator=aware)
    fee: Money | None = attrs.field(default=None, validator=money_or_none)

    def __attrs_post_init__(self) -> None:
        if self.amount.is_zero():
            raise ValidationError(f"Remittance {self.id}", "amount", "must be more than zero")
        if self.fee is not None and self.fee.currency != self.amount.currency:
            raise CurrencyMismatch(
                self.amount.currency, self.fee.currency, "deduct a fee", record=f"Remittance {self.id}"
            )


def _remits(value: Iterable[Remittance]) -> tuple[Remittance, ...]:
    return tuple(value)


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class AgencyPlacement:
    """An account placed with an agency.

    :param id: stable identifier.
    :param account_id: the account.
    :param agency: the agency connector's name.
    :param amount_placed: the balance handed over.
    :param status: :class:`PlacementStatus`.
    :param placed_at: when placed.
    :param closed_at: when recalled or returned.
    :param remittances: what the agency collected.
    :param invoice_ids: the invoices placed.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    agency: str = attrs.field(validator=identifier)
    amount_placed: Money = attrs.field(validator=money_non_negative)
    status: PlacementStatus = attrs.field(default=PlacementStatus.PENDING, validator=of_type(PlacementStatus))
    placed_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    closed_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    remittances: tuple[Remittance, ...] = attrs.field(default=(), converter=_remits)
    invoice_ids: tuple[str, ...] = attrs.field(default=(), converter=_ids)

    @property
    def collected(self) -> Money:
        """Everything the agency has remitted."""
        return total((r.amount for r in self.remittances), self.amount_placed.currency)


def place_account(p: AgencyPlacement, *, at: dt.datetime) -> tuple[AgencyPlacement, Event]:
    """Mark a pending placement placed (after the gate said yes)."""
    require_aware(at, f"AgencyPlacement {p.id}", "at")
    if p.status is not PlacementStatus.PENDING:
        raise InvalidTransition(f"AgencyPlacement {p.id}", p.status, "place")
    return attrs.evolve(p, status=PlacementStatus.PLACED, placed_at=at), Event(
        EventType.PLACEMENT_PLACED, p.id, at, {"agency": p.agency, "amount": p.amount_placed}
    )


def record_remittance(p: AgencyPlacement, r: Remittance) -> tuple[AgencyPlacement, Event | None]:
    """Add what the agency collected; the same remittance twice changes nothing."""
    for old in p.remittances:
        if old.id == r.id:
            if old == r:
                return p, None
            raise DuplicateEntry(
                f"AgencyPlacement {p.id}: remittance {r.id} was already recorded differently"
            )
    if p.status not in (PlacementStatus.PLACED, PlacementStatus.RECALLED, PlacementStatus.RETURNED):
        raise InvalidTransition(f"AgencyPlacement {p.id}", p.status, "record a remittance")
    if r.amount.currency != p.amount_placed.currency:
        raise CurrencyMismatch(
            p.amount_placed.currency, r.amount.currency, "remit", record=f"AgencyPlacement {p.id}"
        )
    if p.collected + r.amount > p.amount_placed:
        raise ValidationError(
            f"AgencyPlacement {p.id}", "remittances", "the agency reports more than was placed"
        )
    return attrs.evolve(p, remittances=(*p.remittances, r)), Event(
        EventType.PLACEMENT_REMITTANCE, p.id, r.collected_at, {"amount": r.amount, "remittance": r.id}
    )


def recall_placement(p: AgencyPlacement, *, at: dt.datetime, reason: str) -> tuple[AgencyPlacement, Event]:
    """The creditor takes the account back (a dispute, an assistance application, a payment)."""
    require_aware(at, f"AgencyPlacement {p.id}", "at")
    if p.status is not PlacementStatus.PLACED:
        raise InvalidTransition(f"AgencyPlacement {p.id}", p.status, "recall")
    return attrs.evolve(p, status=PlacementStatus.RECALLED, closed_at=at), Event(
        EventType.PLACEMENT_RECALLED, p.id, at, {"reason": reason}
    )


def return_placement(p: AgencyPlacement, *, at: dt.datetime) -> tuple[AgencyPlacement, Event]:
    """The agency gives the account back (closed or uncollectable)."""
    require_aware(at, f"AgencyPlacement {p.id}", "at")
    if p.status is not PlacementStatus.PLACED:
        raise InvalidTransition(f"AgencyPlacement {p.id}", p.status, "return")
    return attrs.evolve(p, status=PlacementStatus.RETURNED, closed_at=at), Event(
        EventType.PLACEMENT_RETURNED, p.id, at
    )
