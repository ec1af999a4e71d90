"""A patient's consent to hand a medical claim to a third party (Germany).

In Germany a doctor's or hospital's fee claim may not be handed to a billing
service or a collection agency without the patient's consent: the claim
carries facts under medical confidentiality (StGB § 203), and an assignment
without consent is void (BGH, judgment of 10 July 1991, VIII ZR 296/90). The
consent is a fact about the patient, recorded with when and how it was given
so that it can be shown later (GDPR Art. 7 (1)), and it can be withdrawn for
the future (GDPR Art. 7 (3)).

:class:`HandoffConsent` is that record, held by the
:class:`~carecollect.patients.Patient`; the patient's transitions
:func:`~carecollect.patients.record_handoff_consent` and
:func:`~carecollect.patients.withdraw_handoff_consent` are the only moves, and
the agency gate (:func:`~carecollect.relief.gates.gate`) reads
:meth:`HandoffConsent.in_force`. This module knows nothing of patients: the
record sits below the patient that holds it.

.. versionchanged:: 0.2 the two transitions live with the patient's others in
   :mod:`carecollect.patients` (the old names here still work, with a
   :class:`DeprecationWarning`, for one minor release).

>>> import datetime as dt
>>> from carecollect.patients import Patient, record_handoff_consent, withdraw_handoff_consent
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

import attrs

from .deprecation import renamed
from .errors import ValidationError
from .timekeeping import require_aware
from .validation import aware, aware_or_none, of_type

__all__ = ["ConsentMethod", "HandoffConsent"]


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


__getattr__ = renamed(
    __name__,
    {
        "record_handoff_consent": "carecollect.patients:record_handoff_consent",
        "withdraw_handoff_consent": "carecollect.patients:withdraw_handoff_consent",
    },
)
