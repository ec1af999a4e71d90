"""Patients, their contact points and wishes, and the accounts that pay.

Everything a patient tells us about contact (consent, opt-out, a request to
stop, a wish for confidential communication) is recorded here with its time
and is never silently dropped: the transition functions only ever add
information, and the governor reads it.

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> from carecollect.patients import Patient, ContactPoint, opt_out
>>> from carecollect.channels import Channel
>>> t0 = dt.datetime(2026, 3, 1, 9, tzinfo=ZoneInfo("Europe/Oslo"))
>>> p = Patient(id="P-1", preferred_language="nb", time_zones=("Europe/Oslo",),
...             contact_points=(ContactPoint(Channel.SMS, "+4790000000", consent_at=t0),))
>>> p2, event = opt_out(p, Channel.SMS, at=t0 + dt.timedelta(days=1))
>>> p2.may_use(Channel.SMS), event.type.value
(False, 'patient.opted_out')
>>> "4790000000" in repr(p2)
False
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

import attrs

from .channels import Channel
from .errors import InvalidTransition, TimeZoneUnknown, ValidationError
from .events import Event, EventType
from .geography import zones_for_phone, zones_for_place
from .handoff_consent import HandoffConsent
from .money import Money, minor_unit_exponent
from .timekeeping import require_aware, zone
from .validation import aware_or_none, identifier, of_type

__all__ = [
    "SUPPORTED_LANGUAGES",
    "Account",
    "ContactPoint",
    "Patient",
    "derive_time_zones",
    "grant_consent",
    "mark_undeliverable",
    "opt_out",
    "record_handoff_consent",
    "request_cease_communication",
    "withdraw_handoff_consent",
]

#: Languages carecollect writes patient messages in; others fall back to English.
SUPPORTED_LANGUAGES = ("en", "de", "nb", "bg")


@attrs.frozen
class ContactPoint:
    """One way to reach a patient.

    :param channel: the :class:`~carecollect.channels.Channel`.
    :param address: e-mail address, phone number, postal address or portal id
        (never shown in reprs).
    :param consent_at: when the patient consented to this channel (``None``: no consent recorded).
    :param opted_out_at: when the patient opted out (takes effect at once).
    :param verified_at: when the number was last checked (US reassigned-numbers database).
    :param time_zone: the zone this point suggests (a phone's area code), if known.
    :param undeliverable_at: when a delivery report said a message to this point
        could not be delivered (a hard bounce: :func:`mark_undeliverable`). From
        then on the point is treated as absent, until a new address replaces it or
        ``verified_at`` records a later check.
    """

    channel: Channel = attrs.field(validator=of_type(Channel))
    address: str = attrs.field(repr=False)
    consent_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    opted_out_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    verified_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    time_zone: str | None = None
    undeliverable_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValidationError("ContactPoint", "address", "must be a non-empty string")
        if self.time_zone is not None:
            zone(self.time_zone)

    @property
    def opted_out(self) -> bool:
        """True once the patient has opted out of this point."""
        return self.opted_out_at is not None

    def deliverable(self, at: dt.datetime) -> bool:
        """False when a bounce at or before ``at`` marked the point and no later check cleared it."""
        if self.undeliverable_at is None or self.undeliverable_at > at:
            return True
        return self.verified_at is not None and self.undeliverable_at < self.verified_at <= at


class ConfidentialWish(enum.Enum):
    """A patient's request for confidential communication (HIPAA 164.522(b))."""

    #: No request: every contact point with consent may be used.
    NONE = "none"
    #: Use only the contact points marked ``confidential`` by the patient.
    ONLY_LISTED = "only_listed"
    #: No voicemail: a message may be overheard.
    NO_VOICEMAIL = "no_voicemail"


def _points(value: Iterable[ContactPoint]) -> tuple[ContactPoint, ...]:
    return tuple(value)


def _check_points(
    instance: object, attribute: attrs.Attribute[tuple[ContactPoint, ...]], value: tuple[ContactPoint, ...]
) -> None:
    for i, point in enumerate(value):
        if not isinstance(point, ContactPoint):
            raise ValidationError(
                f"Patient {getattr(instance, 'id', '')}".strip(),
                f"contact_points[{i}]",
                f"a ContactPoint is expected, got {type(point).__name__}",
            )


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _channels(value: Iterable[Channel]) -> frozenset[Channel]:
    return frozenset(value)


def _zones(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    for name in value:  # empty: derived in Patient.__attrs_post_init__, or refused there
        zone(name)


def derive_time_zones(
    contact_points: Iterable[ContactPoint], country: str | None, state: str | None
) -> tuple[str, ...]:
    """Every zone a patient may be in, from what is known: the zones contact points carry, the
    zones of the address's country (of its state, where the country has several), and the
    country of each international phone number. ``()`` when nothing tells.

    :param contact_points: the patient's contact points.
    :param country: ISO 3166-1 country of residence.
    :param state: subdivision of residence (a US state).

    >>> derive_time_zones((ContactPoint(Channel.SMS, "+4790000000"),), "DE", None)
    ('Europe/Berlin', 'Europe/Oslo')
    """
    found: dict[str, None] = {}
    points = tuple(contact_points)
    for point in points:
        if point.time_zone is not None:
            found[point.time_zone] = None
    found.update(dict.fromkeys(zones_for_place(country, state)))
    for point in points:
        if point.channel in (Channel.SMS, Channel.PHONE):
            found.update(dict.fromkeys(zones_for_phone(point.address)))
    return tuple(found)


def _language(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not (
        isinstance(value, str) and 2 <= len(value) <= 8 and value.replace("_", "").replace("-", "").isalpha()
    ):
        raise ValidationError(
            f"Patient {getattr(instance, 'id', '')}",
            "preferred_language",
            "a BCP 47 language tag such as 'de'",
        )


@attrs.frozen
class Patient:
    """A patient (or the person we write to about a patient's bill).

    :param id: stable identifier; the only thing errors and logs show.
    :param preferred_language: BCP 47 tag (``en``, ``de``, ``nb``, ``bg``...).
    :param time_zones: every IANA zone the patient may be in. Quiet hours must hold in all of
        them. When none is given they are derived (:func:`derive_time_zones`: the contact
        points' zones, the country and state of the address, a phone's country code); when
        nothing tells, :class:`~carecollect.errors.TimeZoneUnknown` is raised naming the patient
        and ``time_zones``: no zone is guessed.
    :param contact_points: the ways to reach the patient.
    :param name: display name for letters (never in reprs or errors).
    :param country: ISO 3166-1 country of residence.
    :param state: subdivision (US state) of residence, for state rules.
    :param confidential: the patient's confidential-communication wish.
    :param confidential_channels: channels allowed under ``ONLY_LISTED``.
    :param cease_requested_at: when the patient asked us to stop contacting them.
    :param date_of_birth: for matching records (never shown).
    :param handoff_consent: the patient's consent to hand a claim to an agency or billing
        service (:class:`~carecollect.handoff_consent.HandoffConsent`; required in Germany).
    """

    id: str = attrs.field(validator=identifier)
    preferred_language: str = attrs.field(default="en", validator=_language)
    time_zones: tuple[str, ...] = attrs.field(default=(), converter=_strs, validator=_zones)
    contact_points: tuple[ContactPoint, ...] = attrs.field(
        default=(), converter=_points, validator=_check_points
    )
    name: str = attrs.field(default="", repr=False)
    country: str | None = None
    state: str | None = None
    confidential: ConfidentialWish = attrs.field(
        default=ConfidentialWish.NONE, validator=of_type(ConfidentialWish)
    )
    confidential_channels: frozenset[Channel] = attrs.field(default=frozenset(), converter=_channels)
    cease_requested_at: dt.datetime | None = attrs.field(default=None, validator=aware_or_none)
    date_of_birth: dt.date | None = attrs.field(default=None, repr=False)
    handoff_consent: HandoffConsent | None = attrs.field(
        default=None, validator=attrs.validators.optional(of_type(HandoffConsent))
    )

    def __attrs_post_init__(self) -> None:
        if self.time_zones:
            return
        derived = derive_time_zones(self.contact_points, self.country, self.state)
        if not derived:
            raise TimeZoneUnknown(
                f"Patient {self.id}",
                "time_zones",
                "no time zone given and none follows from the contact points, the country and state "
                "of the address or a phone's country code; give time_zones (or country, and state "
                "where the country has several zones)",
            )
        object.__setattr__(self, "time_zones", derived)

    def points(self, channel: Channel) -> tuple[ContactPoint, ...]:
        """Contact points on ``channel``."""
        return tuple(p for p in self.contact_points if p.channel is channel)

    def may_use(self, channel: Channel) -> bool:
        """True when some point on ``channel`` has consent and no opt-out, and no wish forbids it.

        Letters need no consent, only an address and no opt-out. This is the
        patient's side only; the governor adds the law's side.
        """
        if self.confidential is ConfidentialWish.ONLY_LISTED and channel not in self.confidential_channels:
            return False
        for point in self.points(channel):
            if point.opted_out:
                continue
            if channel is Channel.LETTER or point.consent_at is not None:
                return True
        return False


def _evolve_points(patient: Patient, channel: Channel, **changes: Any) -> tuple[ContactPoint, ...]:
    points = patient.points(channel)
    if not points:
        raise ValidationError(
            f"Patient {patient.id}", "contact_points", f"has no {channel.value} contact point"
        )
    return tuple(attrs.evolve(p, **changes) if p.channel is channel else p for p in patient.contact_points)


def opt_out(patient: Patient, channel: Channel, *, at: dt.datetime) -> tuple[Patient, Event]:
    """Record an opt-out from ``channel``; it takes effect at ``at``, at once.

    An earlier opt-out is kept (the first one counts); opting out twice is harmless.
    """
    require_aware(at, f"Patient {patient.id}", "at")
    points = tuple(
        attrs.evolve(p, opted_out_at=p.opted_out_at or at) if p.channel is channel else p
        for p in patient.contact_points
    )
    new = attrs.evolve(patient, contact_points=points)
    return new, Event(EventType.OPTED_OUT, patient.id, at, {"channel": channel.value})


def grant_consent(patient: Patient, channel: Channel, *, at: dt.datetime) -> tuple[Patient, Event]:
    """Record the patient's consent to ``channel`` (clears an earlier opt-out: the patient asked)."""
    require_aware(at, f"Patient {patient.id}", "at")
    points = _evolve_points(patient, channel, consent_at=at, opted_out_at=None)
    return attrs.evolve(patient, contact_points=points), Event(
        EventType.CONSENT_GRANTED, patient.id, at, {"channel": channel.value}
    )


def mark_undeliverable(
    patient: Patient, channel: Channel, address: str, *, at: dt.datetime
) -> tuple[Patient, Event | None]:
    """Record that messages to ``address`` on ``channel`` cannot be delivered (a hard bounce).

    The point is then skipped by the planner and the send path as if it were
    absent, so the cadence uses the patient's other points and channels. An
    earlier mark is kept (the first bounce counts), so a replayed report changes
    nothing; a point that no longer carries ``address`` (replaced since the
    message went out) is left alone. Opt-outs and consent are untouched.

    :returns: the patient and the event, or the patient unchanged and ``None``
        when no point was newly marked. The event names the channel only, never
        the address.

    >>> import datetime as dt
    >>> t0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    >>> p = Patient(id="P-1", time_zones=("Europe/Oslo",), contact_points=(
    ...     ContactPoint(Channel.EMAIL, "old@example.org", consent_at=t0),
    ...     ContactPoint(Channel.LETTER, "1 Main Street")))
    >>> p2, event = mark_undeliverable(p, Channel.EMAIL, "old@example.org", at=t0 + dt.timedelta(days=1))
    >>> event.type.value, event.detail("channel"), p2.contact_points[0].deliverable(t0 + dt.timedelta(days=2))
    ('patient.contact_point_undeliverable', 'email', False)
    >>> mark_undeliverable(p2, Channel.EMAIL, "old@example.org", at=t0 + dt.timedelta(days=3))[1] is None
    True
    """
    require_aware(at, f"Patient {patient.id}", "at")
    changed = False
    points = []
    for p in patient.contact_points:
        if p.channel is channel and p.address == address and p.deliverable(at):
            p = attrs.evolve(p, undeliverable_at=at)
            changed = True
        points.append(p)
    if not changed:
        return patient, None
    new = attrs.evolve(patient, contact_points=tuple(points))
    return new, Event(EventType.CONTACT_POINT_UNDELIVERABLE, patient.id, at, {"channel": channel.value})


def request_cease_communication(patient: Patient, *, at: dt.datetime) -> tuple[Patient, Event]:
    """Record a request to stop all communication (FDCPA 1692c(c)); the first request counts."""
    require_aware(at, f"Patient {patient.id}", "at")
    new = attrs.evolve(patient, cease_requested_at=patient.cease_requested_at or at)
    return new, Event(EventType.CEASE_REQUESTED, patient.id, at)


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


@attrs.frozen
class Account:
    """The guarantor account responsible for paying one or more invoices.

    :param id: stable identifier.
    :param patient_id: the patient the account is about.
    :param creditor_id: who is owed.
    :param currency: ISO 4217 currency of every amount on the account.
    :param jurisdiction: policy pack key (``"us"``, ``"no"``, ``"de"``, ``"bg"``).
    :param guarantor_id: the person responsible for paying, when not the patient
        (a parent, a spouse); messages go to the guarantor.
    :param household_size: people in the guarantor's household (for assistance screening).
    :param annual_income: gross household income in the account's currency (optional).
    """

    id: str = attrs.field(validator=identifier)
    patient_id: str = attrs.field(validator=identifier)
    creditor_id: str = attrs.field(validator=identifier)
    currency: str
    jurisdiction: str = "default"
    guarantor_id: str | None = None
    household_size: int | None = None
    annual_income: Money | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        try:
            minor_unit_exponent(self.currency)
        except ValidationError:
            raise ValidationError(
                f"Account {self.id}", "currency", f"{self.currency!r} is not an ISO 4217 code"
            ) from None
        if self.household_size is not None and (
            not isinstance(self.household_size, int) or self.household_size < 1
        ):
            raise ValidationError(f"Account {self.id}", "household_size", "must be a positive int")
        if self.annual_income is not None:
            if not isinstance(self.annual_income, Money) or self.annual_income.currency != self.currency:
                raise ValidationError(
                    f"Account {self.id}", "annual_income", f"must be Money in {self.currency}"
                )
            if self.annual_income.is_negative():
                raise ValidationError(f"Account {self.id}", "annual_income", "must not be negative")

    @property
    def payer_id(self) -> str:
        """The guarantor if there is one, else the patient."""
        return self.guarantor_id or self.patient_id


__all__ += ["ConfidentialWish"]
