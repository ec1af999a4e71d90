"""Creditors: who is owed, and in what role, because the rules differ.

A hospital collecting its own bills is not a "debt collector" under US
Regulation F (12 CFR 1006.2(i)); a third-party collector is; a nonprofit
hospital is bound by IRS 501(r). Policy packs read these fields.
"""

from __future__ import annotations

import enum

import attrs

from .validation import identifier, of_type

__all__ = ["Creditor", "CreditorRole"]


class CreditorRole(enum.Enum):
    """The role in which a creditor collects."""

    #: A provider, clinic or hospital collecting its own bills.
    PROVIDER = "provider"
    #: A billing service acting in the provider's name (the provider's rules apply).
    BILLING_SERVICE = "billing_service"
    #: A third-party debt collector (Regulation F, inkassoloven...).
    THIRD_PARTY_COLLECTOR = "third_party_collector"
    #: A buyer of debt (treated as a collector by Regulation F).
    DEBT_BUYER = "debt_buyer"

    @property
    def is_collector(self) -> bool:
        """True for third-party collectors and debt buyers."""
        return self in (CreditorRole.THIRD_PARTY_COLLECTOR, CreditorRole.DEBT_BUYER)


def _country(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    from .errors import ValidationError

    if not (isinstance(value, str) and len(value) == 2 and value.isupper()):
        raise ValidationError(
            f"Creditor {getattr(instance, 'id', '')}".strip(),
            "country",
            "an ISO 3166-1 alpha-2 code such as 'NO'",
        )


@attrs.frozen
class Creditor:
    """A creditor.

    :param id: stable identifier.
    :param name: legal or trading name (shown to patients).
    :param role: :class:`CreditorRole`.
    :param country: ISO 3166-1 alpha-2 country whose law applies.
    :param nonprofit: a nonprofit (tax-exempt) hospital, bound by IRS 501(r) in the US.
    :param state: US state or other subdivision whose rules add to the country's.
    :param business_name_for_voicemail: a name that does not reveal debt
        collection or a clinic's specialty, for limited-content voicemails.
    """

    id: str = attrs.field(validator=identifier)
    name: str
    role: CreditorRole = attrs.field(validator=of_type(CreditorRole))
    country: str = attrs.field(validator=_country)
    nonprofit: bool = False
    state: str | None = None
    business_name_for_voicemail: str | None = None
