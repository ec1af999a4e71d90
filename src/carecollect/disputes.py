"""Disputes: a patient's objection to a bill, handled by a written procedure.

Opening a dispute freezes outreach and any handoff on the debt (the policy
functions read :attr:`Dispute.is_open`). A dispute is resolved in one place only,
:func:`carecollect.relief.disputes.resolve_dispute`, which checks the resolution
against the authority the creditor's written procedure gives the dispute's level
and books the follow-up call; the Python API, the daily run's intake of dispute
events and the demo all go through it.

>>> import datetime as dt
>>> from carecollect.disputes import Dispute, DisputeReason
>>> t = dt.datetime(2026, 3, 9, 10, tzinfo=dt.timezone.utc)
>>> d = Dispute(id="D-1", account_id="A-1", invoice_id="INV-1", reason=DisputeReason.QUALITY_OF_SERVICE, opened_at=t)
>>> d.is_open
True
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .deprecation import renamed
from .errors import InvalidTransition, ValidationError
from .events import Event, EventType
from .money import Money
from .timekeeping import require_aware
from .validation import aware, aware_or_none, date_or_none, identifier, money_or_none, of_type

__all__ = [
    "Dispute",
    "DisputeReason",
    "DisputeStatus",
    "EscalationLevel",
    "Resolution",
    "ResolutionKind",
    "escalate_dispute",
    "record_follow_up",
    "record_patient_met",
    "withdraw_dispute",
]


class DisputeReason(enum.Enum):
    """Why the patient disputes the bill."""

    #: The patient is unhappy with the care or service they received.
    QUALITY_OF_SERVICE = "quality_of_service"
    #: The bill is wrong (a line, a code, an amount, a date).
    BILLING_ERROR = "billing_error"
    #: The bill is higher than the estimate the patient was given.
    ABOVE_ESTIMATE = "above_estimate"
    #: The patient says the bill is not theirs (identity, a different person).
    NOT_MINE = "not_mine"
    #: The patient says their insurer should pay (more of) it.
    INSURANCE_SHOULD_PAY = "insurance_should_pay"
    #: A written dispute of a debt within a collector's validation period (FDCPA 1692g(b)).
    VALIDATION = "validation"
    #: The collection agency reports that the patient disputes the debt; it does not say why.
    AGENCY_REPORTED = "agency_reported"


class DisputeStatus(enum.Enum):
    """Life cycle of a dispute."""

    #: Being handled: collection on the disputed bill stops.
    OPEN = "open"
    #: Answered with a resolution (see :class:`ResolutionKind`).
    RESOLVED = "resolved"
    #: The patient withdrew the dispute.
    WITHDRAWN = "withdrawn"


class EscalationLevel(enum.IntEnum):
    """Who handles the dispute; a higher level may grant more."""

    #: Reception or billing staff who first take the dispute.
    FRONT_LINE = 0
    #: The office or billing manager.
    OFFICE_MANAGER = 1
    #: The treating provider (doctor, dentist).
    PROVIDER = 2
    #: Management of the practice or hospital: the last level.
    EXECUTIVE = 3


class ResolutionKind(enum.Enum):
    """How a dispute ended."""

    #: The bill was wrong and is corrected.
    CORRECTION = "correction"
    #: The bill stands but the creditor grants a discount.
    DISCOUNT = "discount"
    #: The creditor writes the disputed amount off.
    WRITE_OFF = "write_off"
    #: The bill stands as it was.
    UPHELD = "upheld"
    #: Verification sent to the patient (US collector).
    VERIFIED = "verified"


@attrs.frozen
class Resolution:
    """The outcome of a dispute.

    :param kind: :class:`ResolutionKind`.
    :param amount: the discount, write-off or correction amount, if any.
    :param approved_by: staff id of who approved it.
    :param corrective_action: what the creditor promised to change (internal; not in reprs).
    :param effective_after_insurance: the reduction applies to what remains
        once the insurer's payment is posted.
    """

    kind: ResolutionKind = attrs.field(validator=of_type(ResolutionKind))
    amount: Money | None = attrs.field(default=None, validator=money_or_none)
    approved_by: str | None = None
    corrective_action: str | None = attrs.field(default=None, repr=False)
    effective_after_insurance: bool = False


@attrs.frozen
class Dispute:
    """A patient's dispute of one invoice (or the whole account).

    :param id: stable identifier.
    :param account_id: the account.
    :param invoice_id: the disputed invoice, or ``None`` for the account.
    :param reason: :class:`DisputeReason`.
    :param opened_at: when the patient raised it (aware).
    :param status: :class:`DisputeStatus`.
    :param level: :class:`EscalationLevel`.
    :param resolution: set when resolved.
    :param resolved_at: when resolved.
    :param first_response_at: when staff first answered.
    :param met_patient_at: when staff met or spoke with the patient.
    :param follow_up_on: the date of the follow-up call.
    :param follow_up_done_at: when it happened.
    :param satisfied: the patient's answer at follow-up.
    :param in_writing: the dispute was made in writing.
    """

    id: str = attrs.field(validator=identifier)
    account_id: str = attrs.field(validator=identifier)
    invoice_id: str | None = attrs.field(validator=attrs.validators.optional(identifier))
    reason: DisputeReason = attrs.field(validator=of_type(DisputeReason))
    opened_at: dt.datetime = attrs.field(validator=aware)
    status: DisputeStatus = attrs.field(default=DisputeStatus.OPEN, validator=of_type(DisputeStatus))
    level: EscalationLevel = attrs.field(
        default=EscalationLevel.FRONT_LINE, validator=of_type(EscalationLevel)
    )
    resolution: Resolution | None = attrs.field(
        default=None, validator=attrs.validators.optional(of_type(Resolution))
    )
    resolved_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    first_response_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    met_patient_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    follow_up_on: dt.date | None = attrs.field(default=None, validator=date_or_none)
    follow_up_done_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    satisfied: bool | None = None
    in_writing: bool = False

    @property
    def is_open(self) -> bool:
        """True while the dispute is open (outreach and handoff frozen)."""
        return self.status is DisputeStatus.OPEN

    def covers(self, invoice_id: str | None) -> bool:
        """True when this dispute concerns ``invoice_id`` (an account-wide dispute covers all)."""
        return self.invoice_id is None or self.invoice_id == invoice_id


def _guard(d: Dispute, action: str, at: dt.datetime) -> None:
    require_aware(at, f"Dispute {d.id}", "at")
    if d.status is not DisputeStatus.OPEN:
        raise InvalidTransition(f"Dispute {d.id}", d.status, action, "only an open dispute can change")


def escalate_dispute(d: Dispute, to: EscalationLevel, *, at: dt.datetime) -> tuple[Dispute, Event]:
    """Hand the dispute to a higher level."""
    _guard(d, "escalate", at)
    if to <= d.level:
        raise InvalidTransition(
            f"Dispute {d.id}", d.level.name, f"escalate to {to.name}", "escalation only goes up"
        )
    return attrs.evolve(d, level=to), Event(EventType.DISPUTE_ESCALATED, d.id, at, {"level": to.name})


def withdraw_dispute(d: Dispute, *, at: dt.datetime) -> tuple[Dispute, Event]:
    """The patient withdrew the dispute."""
    _guard(d, "withdraw", at)
    return attrs.evolve(d, status=DisputeStatus.WITHDRAWN, resolved_at=at), Event(
        EventType.DISPUTE_WITHDRAWN, d.id, at
    )


def record_follow_up(d: Dispute, *, satisfied: bool, at: dt.datetime) -> tuple[Dispute, Event]:
    """Record the follow-up call after resolution and whether the patient is satisfied."""
    require_aware(at, f"Dispute {d.id}", "at")
    if d.status is not DisputeStatus.RESOLVED:
        raise InvalidTransition(f"Dispute {d.id}", d.status, "record a follow-up", "resolve it first")
    if d.follow_up_done_at is not None:
        raise InvalidTransition(f"Dispute {d.id}", d.status, "record a second follow-up")
    new = attrs.evolve(d, follow_up_done_at=at, satisfied=satisfied)
    return new, Event(EventType.DISPUTE_FOLLOWED_UP, d.id, at, {"satisfied": satisfied})


def record_patient_met(d: Dispute, *, at: dt.datetime, channel: str) -> tuple[Dispute, Event]:
    """Record that staff reached the patient about an open dispute (seed article 001: meet them at once).

    ``at`` is when the patient was reached (a call answered, a written reply
    sent); ``channel`` is the channel's name (``"phone"``, ``"email"``...).
    The first contact counts: an earlier ``met_patient_at`` (and
    ``first_response_at``) is kept. A contact before the dispute was opened
    is not an answer to it.

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 3, 9, 10, tzinfo=dt.timezone.utc)
    >>> d = Dispute("D-1", "A-1", None, DisputeReason.BILLING_ERROR, t)
    >>> d2, ev = record_patient_met(d, at=t + dt.timedelta(minutes=20), channel="phone")
    >>> d2.met_patient_at.isoformat(), d2.first_response_at == d2.met_patient_at, ev.type.value
    ('2026-03-09T10:20:00+00:00', True, 'dispute.patient_met')
    """
    _guard(d, "record that the patient was met", at)
    if at < d.opened_at:
        raise ValidationError(
            f"Dispute {d.id}", "met_patient_at", "a contact before the dispute was opened does not answer it"
        )
    first = d.met_patient_at if d.met_patient_at is not None and d.met_patient_at <= at else at
    response = d.first_response_at if d.first_response_at is not None and d.first_response_at <= at else at
    new = attrs.evolve(d, met_patient_at=first, first_response_at=response)
    return new, Event(EventType.DISPUTE_PATIENT_MET, d.id, at, {"channel": channel})


#: ``carecollect.disputes.resolve_dispute`` is deprecated: it is the checked
#: :func:`carecollect.relief.disputes.resolve_dispute` (authority, balance and procedure).
__getattr__ = renamed(__name__, {"resolve_dispute": "carecollect.relief.disputes:resolve_dispute"})
