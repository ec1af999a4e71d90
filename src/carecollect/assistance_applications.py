"""Financial-assistance applications: the stored record and its status.

The record is kept by the store and read by the decisions (:mod:`carecollect.relief.assistance`
screens and times the 501(r) steps; a pending application pauses outreach and extraordinary
collection actions). ``carecollect.relief.assistance`` re-exports both names.

>>> import datetime as dt
>>> from carecollect.assistance_applications import ApplicationStatus, AssistanceApplication
>>> app = AssistanceApplication("FA-1", "A-1", dt.date(2026, 3, 2))
>>> app.status is ApplicationStatus.RECEIVED, app.status.pending
(True, True)
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .errors import ValidationError
from .validation import date_only, date_or_none, identifier, of_type

__all__ = ["ApplicationStatus", "AssistanceApplication"]


class ApplicationStatus(enum.Enum):
    """State of a financial-assistance application."""

    #: Received, being assessed: extraordinary collection actions wait.
    RECEIVED = "received"
    #: Information is missing; the patient was told what to send.
    INCOMPLETE = "incomplete"
    #: Approved: free or discounted care applies.
    APPROVED = "approved"
    #: Not eligible under the policy.
    DENIED = "denied"
    #: The patient withdrew the application.
    WITHDRAWN = "withdrawn"

    @property
    def pending(self) -> bool:
        """True while a decision is outstanding."""
        return self in (ApplicationStatus.RECEIVED, ApplicationStatus.INCOMPLETE)


@attrs.frozen
class AssistanceApplication:
    """A patient's application for financial assistance.

    :param id: stable identifier.
    :param account_id: the account.
    :param received_on: the date it was received.
    :param status: :class:`ApplicationStatus`.
    :param decided_on: the date of the decision, if any (not before ``received_on``).
    :raises ValidationError: a status that is not an :class:`ApplicationStatus`, or a decision
        dated before the application was received (naming the application and the field).
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    received_on: dt.date = attrs.field(validator=date_only)
    status: ApplicationStatus = attrs.field(
        default=ApplicationStatus.RECEIVED, validator=of_type(ApplicationStatus)
    )
    decided_on: dt.date | None = attrs.field(default=None, validator=date_or_none)

    def __attrs_post_init__(self) -> None:
        if self.decided_on is not None and self.decided_on < self.received_on:
            raise ValidationError(
                f"AssistanceApplication {self.id}",
                "decided_on",
                f"{self.decided_on.isoformat()} is before it was received ({self.received_on.isoformat()})",
            )
