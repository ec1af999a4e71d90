"""A patient's consent to hand a medical claim to a third party (Germany).

In Germany a doctor's or hospital's fee claim may not be handed to a billing
service or a collection agency without the patient's consent: the claim
carries facts under medical confidentiality (StGB § 203), and an assignment
without consent is void (BGH, judgment of 10 July 1991, VIII ZR 296/90). The
consent is a fact about the patient, recorded with when and how it was given
so that it can be shown later (GDPR Art. 7 (1)), and it can be withdrawn for
the future (GDPR Art. 7 (3)).

:class:`HandoffConsent` is that record; :func:`record_handoff_consent` and
:func:`withdraw_handoff_consent` are the only moves, and the agency gate
(:func:`~carecollect.relief.gates.gate`) reads :meth:`HandoffConsent.in_force`.

>>> import datetime as dt
>>> from carecollect.patients import Patient
>>> t0 = dt.datetime(2026, 3, 2, 10, tzinfo=dt.timezone.utc)
>>> consent = HandoffConsent(given_at=t0, method=ConsentMethod.WRITTEN, reference="form 2026-117")
>>> p, event = record_handoff_consent(Patient(id="P-1", time_zones=("Europe/Berlin",)), consent)
>>> p.handoff_consent.in_force(t0), event.type.value
(True, 'patient.handoff_consent_given')
>>> p2, _ = withdraw_handoff_consent(p, at=t0 + dt.timedelta(days=30))
>>> p2.handoff_consent.in_force(t0 + dt.timedelta(days=31)), p2.handoff_consent.in_force(t0 + dt.timedelta(days=1))
(False, True)
>>> "2026-117" in repr(consent)
False
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

import attrs

from .errors import InvalidTransition, ValidationError
from .events import Event, EventType
from .timekeeping import require_aware
from .validation import aware, aware_or_none, of_type

if TYPE_CHECKING:
    from .patients import Patient

__all__ = ["ConsentMethod", "HandoffConsent", "record_handoff_consent", "withdraw_handoff_consent"]


class ConsentMethod(enum.Enum):
    """How the patient gave the consent (so that it can be shown later)."""

    #: Signed on paper (BGB § 126).
    WRITTEN = "written"
    #: Given in electronic form: a signed document, a portal declaration, an e-mail (BGB §§ 126a, 126b).
    ELECTRONIC = "electronic"
    #: Said in a recorded call or in person and written down by staff at the time.
    ORAL_RECORDED = "oral_recorded"


@attrs.frozen
class HandoffConsent:
    """The patient's consent to hand the claim to an agency or billing service.

    :param given_at: when the consent was given (aware).
    :param method: :class:`ConsentMethod`.
    :param reference: where the proof is kept (a form number, a document id); never
        shown in reprs.
    :param withdrawn_at: when the patient withdrew it (aware, not before ``given_at``);
        a withdrawal works for the future only.
    """

    given_at: dt.datetime = attrs.field(validator=aware)
    method: ConsentMethod = attrs.field(validator=of_type(ConsentMethod))
    reference: str | None = attrs.field(default=None, repr=False)
    withdrawn_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)

    def __attrs_post_init__(self) -> None:
        if self.reference is not None and (not isinstance(self.reference, str) or not self.reference.strip()):
            raise ValidationError("HandoffConsent", "reference", "must be non-empty text or absent")
        if self.withdrawn_at is not None and self.withdrawn_at < self.given_at:
            raise ValidationError("HandoffConsent", "withdrawn_at", "is before the consent was given")

    def in_force(self, at: dt.datetime) -> bool:
        """True when the consent had been given at ``at`` and not yet withdrawn.

        :param at: the moment asked about (aware).
        """
        require_aware(at, "HandoffConsent", "at")
        return self.given_at <= at and (self.withdrawn_at is None or at < self.withdrawn_at)


def record_handoff_consent(patient: Patient, consent: HandoffConsent) -> tuple[Patient, Event]:
    """Record the patient's consent; a new consent replaces a withdrawn one.

    :raises InvalidTransition: a consent is already in force (withdraw it first, or keep it).
    """
    current = patient.handoff_consent
    if current is not None and current.withdrawn_at is None:
        raise InvalidTransition(
            f"Patient {patient.id}",
            "handoff consent in force",
            "record another handoff consent",
            "withdraw the one in force first",
        )
    new = attrs.evolve(patient, handoff_consent=consent)
    return new, Event(
        EventType.HANDOFF_CONSENT_GIVEN, patient.id, consent.given_at, {"method": consent.method.value}
    )


def withdraw_handoff_consent(patient: Patient, *, at: dt.datetime) -> tuple[Patient, Event]:
    """Record that the patient withdrew the consent at ``at`` (from then on no new handoff).

    :raises InvalidTransition: there is no consent, or it was already withdrawn.
    :raises ValidationError: ``at`` is before the consent was given.
    """
    require_aware(at, f"Patient {patient.id}", "at")
    current = patient.handoff_consent
    if current is None or current.withdrawn_at is not None:
        state = "no handoff consent" if current is None else "handoff consent withdrawn"
        raise InvalidTransition(f"Patient {patient.id}", state, "withdraw the handoff consent")
    try:
        withdrawn = attrs.evolve(current, withdrawn_at=at)
    except ValidationError as exc:
        raise ValidationError(f"Patient {patient.id}", "handoff_consent.withdrawn_at", exc.problem) from None
    return attrs.evolve(patient, handoff_consent=withdrawn), Event(
        EventType.HANDOFF_CONSENT_WITHDRAWN, patient.id, at
    )
