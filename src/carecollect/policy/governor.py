"""The contact governor: may we contact this patient, about this debt, on this channel, now?

:func:`may_contact` is the one question every sender asks before a message or
a call goes out. It reads the patient's wishes (consent and opt-out per
channel, a request to stop, a confidential-communication wish), the debt's
state (an open dispute, an insurer still deciding, a plan or an assistance
application), the pack's quiet hours in *every* zone the patient may be in,
and the frequency caps per debt, and answers with a :class:`ContactDecision`:
allowed or not, every :class:`~carecollect.policy.explain.Reason` (rule id
and source), and the earliest instant at which the contact would be allowed
(``None`` when no later time helps: an opt-out, a dispute).

The function is pure: ``at`` is passed in, history is passed in, and the same
inputs always give the same decision.

A patient whose phone number is in New York and whose address is in
California may be called only when it is 08:00-21:00 in both places
(12 CFR 1006.6(b)(1)(i), comment 6(b)(1)(i)-1):

>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> from carecollect.channels import Channel
>>> from carecollect.creditors import Creditor, CreditorRole
>>> from carecollect.patients import ContactPoint, Patient
>>> from carecollect.policy.packs import get_pack
>>> from carecollect.policy.governor import ContactHistory, Debt, may_contact
>>> east = ZoneInfo("America/New_York")
>>> t0 = dt.datetime(2026, 1, 5, 9, tzinfo=east)
>>> patient = Patient(id="P-1", time_zones=("America/Los_Angeles",), contact_points=(
...     ContactPoint(Channel.PHONE, "+12125550100", consent_at=t0, time_zone="America/New_York"),))
>>> agency = Creditor(id="C-1", name="Agency", role=CreditorRole.THIRD_PARTY_COLLECTOR, country="US")
>>> d = may_contact(patient, Debt("A-1", "INV-1"), Channel.PHONE, dt.datetime(2026, 3, 2, 10, 30, tzinfo=east),
...                 ContactHistory(), get_pack("us"), agency)
>>> d.allowed, d.earliest_allowed.isoformat()
(False, '2026-03-02T11:00:00-05:00')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

from ..channels import Channel
from ..creditors import Creditor
from ..deprecation import renamed
from ..disputes import Dispute
from ..outreach import ContactAttempt, OutreachPurpose
from ..patients import ConfidentialWish, ContactPoint, Patient
from ..timekeeping import require_aware, zone
from .explain import Outcome, Param, Reason, Verdict, reason_from_rule
from .packs import PolicyPack

__all__ = [
    "UNDELIVERABLE_RULE",
    "ContactDecision",
    "ContactHistory",
    "Debt",
    "ReportedConversation",
    "channel_undeliverable",
    "channel_usable",
    "may_contact",
    "patient_zones",
    "quiet_hours_ok",
]

#: A right-party conversation reported by the contact centre: (account id, invoice id or None, aware instant).
ReportedConversation = tuple[str, str | None, dt.datetime]

_MAX_ROUNDS = 32

#: The reason's rule id when a channel is skipped because its points bounced.
UNDELIVERABLE_RULE = "contact_point.undeliverable"


def _disputes(value: Iterable[Dispute]) -> tuple[Dispute, ...]:
    return tuple(value)


def _attempts(value: Iterable[ContactAttempt]) -> tuple[ContactAttempt, ...]:
    return tuple(value)


def _conversations(value: Iterable[ReportedConversation]) -> tuple[ReportedConversation, ...]:
    return tuple(value)


@attrs.frozen
class Debt:
    """The debt a contact is about, with the facts that freeze outreach on it.

    :param account_id: the account.
    :param invoice_id: the invoice (``None``: the whole account).
    :param disputes: disputes on the account; an open one covering the invoice freezes collection.
    :param dispute_open: set when the caller already knows a dispute is open.
    :param insurer_waiting: the insurer may still pay (claim pending or appealed).
    :param plan_current: a payment plan covering the debt is current.
    :param assistance_pending: a financial-assistance application is under review.
    """

    account_id: str
    invoice_id: str | None = None
    disputes: tuple[Dispute, ...] = attrs.field(default=(), converter=_disputes)
    dispute_open: bool = False
    insurer_waiting: bool = False
    plan_current: bool = False
    assistance_pending: bool = False

    @property
    def has_open_dispute(self) -> bool:
        """True when a dispute of this debt (or the whole account) is open."""
        return self.dispute_open or any(d.is_open and d.covers(self.invoice_id) for d in self.disputes)

    def concerns(self, account_id: str, invoice_id: str | None) -> bool:
        """True when a record about ``(account_id, invoice_id)`` is about this debt."""
        if account_id != self.account_id:
            return False
        return self.invoice_id is None or invoice_id is None or invoice_id == self.invoice_id


@attrs.frozen
class ContactHistory:
    """What already happened: attempts on every channel and conversations reported elsewhere.

    :param attempts: :class:`~carecollect.outreach.ContactAttempt` records.
    :param conversations: right-party conversations from the contact centre
        (``(account_id, invoice_id, at)``, the shape
        ``carecollect.contact_centre`` reports); they count like an answered call.
    """

    attempts: tuple[ContactAttempt, ...] = attrs.field(default=(), converter=_attempts)
    conversations: tuple[ReportedConversation, ...] = attrs.field(default=(), converter=_conversations)

    @classmethod
    def of(
        cls, attempts: Iterable[ContactAttempt] = (), conversations: Iterable[ReportedConversation] = ()
    ) -> ContactHistory:
        """Build a history from any iterables (a generator from the contact centre, say).

        :param attempts: contact attempts.
        :param conversations: ``(account_id, invoice_id, at)`` triples; each ``at`` must be aware.
        :raises NaiveDatetime: a conversation time has no time zone.
        """
        convs = tuple(conversations)
        for _, _, at in convs:
            require_aware(at, "Conversation", "at")
        return cls(tuple(attempts), convs)


@attrs.frozen
class ContactDecision(Verdict):
    """The governor's answer.

    :param allowed: whether the contact may happen at the asked instant.
    :param reasons: every rule checked, with its outcome.
    :param earliest_allowed: the earliest instant (at or after the asked one)
        at which the same contact would be allowed; ``None`` when no time helps.
    """

    earliest_allowed: dt.datetime | None = None


def patient_zones(patient: Patient) -> tuple[str, ...]:
    """Every zone the patient may be in: their own zones, then each contact point's, without repeats.

    :param patient: the patient.
    :returns: IANA zone names, in a stable order.
    """
    seen: dict[str, None] = dict.fromkeys(patient.time_zones)
    for point in patient.contact_points:
        if point.time_zone:
            seen.setdefault(point.time_zone, None)
    return tuple(seen)


def channel_usable(patient: Patient, channel: Channel, at: dt.datetime) -> bool:
    """True when the patient's own wishes allow ``channel`` at ``at``.

    A point is usable when it is not opted out at ``at`` (an opt-out takes
    effect at once), no bounce marked it undeliverable (see
    :meth:`~carecollect.patients.ContactPoint.deliverable`) and, except for
    letters, consent was given at or before ``at``. A confidential wish
    restricting channels is honoured.

    :param patient: the patient.
    :param channel: the channel.
    :param at: the instant (aware).
    """
    return _usable(patient, channel, at, skip_bounced=True)


def channel_undeliverable(patient: Patient, channel: Channel, at: dt.datetime) -> bool:
    """True when ``channel`` is unusable at ``at`` only because its points bounced.

    The patient's wishes would allow it (:func:`channel_usable` ignoring bounce
    marks), but every such point is marked undeliverable. Used to say why a
    channel was skipped (reason ``contact_point.undeliverable``).
    """
    return not _usable(patient, channel, at, skip_bounced=True) and _usable(
        patient, channel, at, skip_bounced=False
    )


def _usable(patient: Patient, channel: Channel, at: dt.datetime, *, skip_bounced: bool) -> bool:
    if patient.confidential is ConfidentialWish.ONLY_LISTED and channel not in patient.confidential_channels:
        return False
    for point in patient.contact_points:
        if point.channel is not channel:
            continue
        if point.opted_out_at is not None and point.opted_out_at <= at:
            continue
        if skip_bounced and point.undeliverable_at is not None and not point.deliverable(at):
            continue
        if channel is Channel.LETTER or (point.consent_at is not None and point.consent_at <= at):
            return True
    return False


def quiet_hours_ok(at: dt.datetime, zones: Iterable[str], start: dt.time, end: dt.time) -> bool:
    """True when ``at`` is within ``[start, end)`` local time in every zone.

    >>> import datetime as dt
    >>> at = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)  # 10:30 New York, 07:30 Los Angeles
    >>> quiet_hours_ok(at, ("America/New_York",), dt.time(8), dt.time(21))
    True
    >>> quiet_hours_ok(at, ("America/New_York", "America/Los_Angeles"), dt.time(8), dt.time(21))
    False
    """
    for name in zones:
        local = at.astimezone(zone(name)).time()
        if not (start <= local < end):
            return False
    return True


def _next_window_start(at: dt.datetime, name: str, start: dt.time, end: dt.time) -> dt.datetime:
    """The earliest instant >= ``at`` inside ``[start, end)`` in zone ``name`` alone."""
    tz = zone(name)
    local = at.astimezone(tz)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    for _ in range(3):
        # Wall time -> instant; a start that falls in a DST gap lands just after it.
        candidate = dt.datetime.combine(day, start, tzinfo=tz).astimezone(dt.UTC)
        back = candidate.astimezone(tz).time()
        if start <= back < end and candidate >= at:
            return candidate
        day += dt.timedelta(days=1)
    return at + dt.timedelta(days=1)  # unreachable for sane windows; keeps the loop moving


def _quiet_earliest(
    at: dt.datetime, zones: tuple[str, ...], start: dt.time, end: dt.time
) -> dt.datetime | None:
    t = at
    for _ in range(_MAX_ROUNDS):
        moved = False
        for name in zones:
            nxt = _next_window_start(t, name, start, end)
            if nxt != t:
                t, moved = nxt, True
        if not moved:
            return t
    return None  # no common window (zones too far apart)


def _day(at: dt.datetime, tz_name: str) -> dt.date:
    return at.astimezone(zone(tz_name)).date()


def _start_of(day: dt.date, tz_name: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone(tz_name)).astimezone(dt.UTC)


@attrs.frozen
class _Caps:
    """Frequency limits for one channel, resolved from the pack."""

    channel: Channel
    max_in_window: int
    window_days: int
    after_conversation_days: int  # 0: no conversation rule
    cap_rule_id: str


def _count_cap_earliest(days: list[dt.date], today: dt.date, limit: int, window: int) -> dt.date | None:
    """The first date >= today on which fewer than ``limit`` events fall in the window ending that date."""
    recent = sorted((d for d in days if today - dt.timedelta(days=window - 1) <= d <= today), reverse=True)
    if len(recent) < limit:
        return None
    # The limit-th most recent event must leave the window.
    return recent[limit - 1] + dt.timedelta(days=window)


def may_contact(
    patient: Patient,
    debt: Debt,
    channel: Channel,
    at: dt.datetime,
    history: ContactHistory,
    pack: PolicyPack,
    creditor: Creditor,
    purpose: OutreachPurpose = OutreachPurpose.REMINDER,
) -> ContactDecision:
    """Decide whether ``channel`` may be used to contact ``patient`` about ``debt`` at ``at``.

    Checks, in this order, each adding a :class:`~carecollect.policy.explain.Reason`:
    the patient's consent and opt-out on the channel; a request to stop
    (only the notices ``cease.allowed_purposes`` on ``cease.allowed_channels``);
    a confidential-communication wish; an open dispute, an insurer still
    deciding, a current plan or an assistance review (collection purposes
    only); the quiet hours in every zone of :func:`patient_zones`; the call cap
    and the waiting period after a conversation (for collectors, or for every creditor
    when ``calls.cap_for_all_creditors``); the pack's caps for e-mail, text and
    letters. History after ``at`` is ignored.

    :param patient: the patient (or guarantor) to contact.
    :param debt: the :class:`Debt` the contact is about.
    :param channel: the channel.
    :param at: the instant of the contact (aware).
    :param history: earlier attempts and conversations.
    :param pack: the :class:`~carecollect.policy.packs.PolicyPack` (with house rules).
    :param creditor: who contacts (its role decides which caps bind).
    :param purpose: why (non-collection purposes pass the freezes).
    :returns: a :class:`ContactDecision`; ``earliest_allowed`` equals ``at`` when allowed.
    :raises NaiveDatetime: ``at`` has no time zone.
    """
    require_aware(at, f"Patient {patient.id}", "at")
    on = _day(at, patient.time_zones[0])
    reasons: list[Reason] = []
    permanent = False

    def rule_reason(rule_id: str, outcome: Outcome, **params: Param) -> None:
        reasons.append(reason_from_rule(pack.rule(rule_id, on=on), outcome, **params))

    # Consent / opt-out / confidential ----------------------------------------
    if channel_usable(patient, channel, at):
        reasons.append(
            Reason(
                "patient.consent", "patient record", Outcome.ALLOW, {"case": "ok", "channel": channel.value}
            )
        )
    else:
        permanent = True
        if (
            patient.confidential is ConfidentialWish.ONLY_LISTED
            and channel not in patient.confidential_channels
            and pack.value("confidential.honour", on=on)
        ):
            rule_reason("confidential.honour", Outcome.DENY, case="unlisted", channel=channel.value)
        elif channel_undeliverable(patient, channel, at):
            reasons.append(
                Reason(
                    UNDELIVERABLE_RULE,
                    "delivery report",
                    Outcome.DENY,
                    {"case": "held", "channel": channel.value},
                )
            )
        else:
            reasons.append(
                Reason(
                    "opt_out.delay_days",
                    pack.rule("opt_out.delay_days", on=on).source,
                    Outcome.DENY,
                    {"channel": channel.value},
                )
            )
    if channel is Channel.PHONE and patient.confidential is ConfidentialWish.NO_VOICEMAIL:
        rule_reason("confidential.honour", Outcome.CONDITION, case="no_voicemail")
    if channel is Channel.SMS:
        if not pack.value("sms.allowed", on=on):
            permanent = True
            rule_reason("sms.allowed", Outcome.DENY)
        elif creditor.role.is_collector or pack.value("sms.recheck_for_all_creditors", on=on):
            recheck = int(pack.value("sms.consent_recheck_days", on=on))
            if not any(_checked_within(p, at, recheck) for p in patient.points(Channel.SMS)):
                permanent = True
                rule_reason("sms.consent_recheck_days", Outcome.DENY, days=recheck)

    # Cease communication --------------------------------------------------------
    if patient.cease_requested_at is not None and patient.cease_requested_at <= at:
        purposes = pack.value("cease.allowed_purposes", on=on)
        channels = pack.value("cease.allowed_channels", on=on)
        if purpose.value in purposes and channel.value in channels:
            rule_reason(
                "cease.allowed_purposes",
                Outcome.ALLOW,
                case="allow",
                purpose=purpose.value,
                channel=channel.value,
            )
        else:
            permanent = True
            rule_reason(
                "cease.allowed_purposes",
                Outcome.DENY,
                case="deny",
                purposes=", ".join(purposes),
                channels=", ".join(channels),
            )

    # Freezes on the debt ---------------------------------------------------------
    if purpose.is_collection:
        freezes = (
            (debt.has_open_dispute, "dispute.freeze"),
            (debt.insurer_waiting, "insurer.pause"),
            (debt.plan_current, "plan.pause_reminders"),
            (debt.assistance_pending, "assistance.pause"),
        )
        for active, rule_id in freezes:
            if active and pack.value(rule_id, on=on):
                permanent = True
                rule_reason(rule_id, Outcome.DENY, case="debt")

    # Timing: quiet hours and caps -----------------------------------------------
    zones = patient_zones(patient)
    start = pack.value("quiet_hours.start", on=on)
    end = pack.value("quiet_hours.end", on=on)
    timed = channel.value in pack.value("quiet_hours.channels", on=on)
    caps = _caps_for(channel, pack, creditor, on)
    conv_days, event_days = _history_days(debt, history, channel, at, patient.time_zones[0])

    def next_ok(t: dt.datetime) -> dt.datetime | None:
        for _ in range(_MAX_ROUNDS):
            t0 = t
            if caps is not None:
                tz0 = patient.time_zones[0]
                today = _day(t, tz0)
                target = today
                if caps.after_conversation_days and conv_days:
                    last = max(conv_days)
                    if today < last + dt.timedelta(days=caps.after_conversation_days):
                        target = max(target, last + dt.timedelta(days=caps.after_conversation_days))
                free = _count_cap_earliest(event_days, today, caps.max_in_window, caps.window_days)
                if free is not None:
                    target = max(target, free)
                if target > today:
                    t = max(t, _start_of(target, tz0))
            if timed:
                q = _quiet_earliest(t, zones, start, end)
                if q is None:
                    return None
                t = q
            if t == t0:
                return t
        return None

    earliest = next_ok(at)
    if timed:
        if quiet_hours_ok(at, zones, start, end):
            rule_reason(
                "quiet_hours.start",
                Outcome.ALLOW,
                case="holds",
                start=f"{start:%H:%M}",
                end=f"{end:%H:%M}",
                zones=", ".join(zones),
            )
        else:
            rule_reason(
                "quiet_hours.start",
                Outcome.DEFER,
                case="outside",
                start=f"{start:%H:%M}",
                end=f"{end:%H:%M}",
                zones=", ".join(zones),
            )
    if caps is not None:
        today = on
        if caps.after_conversation_days and conv_days:
            last = max(conv_days)
            if today < last + dt.timedelta(days=caps.after_conversation_days):
                rule_reason(
                    "calls.days_after_conversation",
                    Outcome.DEFER,
                    on=last.isoformat(),
                    resume=(last + dt.timedelta(days=caps.after_conversation_days)).isoformat(),
                )
        recent = _count_cap_earliest(event_days, today, caps.max_in_window, caps.window_days)
        if recent is not None:
            rule_reason(
                caps.cap_rule_id,
                Outcome.DEFER,
                case="reached",
                most=caps.max_in_window,
                channel=channel.value,
                days=caps.window_days,
                until=today.isoformat(),
            )
        else:
            rule_reason(
                caps.cap_rule_id, Outcome.ALLOW, case="below", most=caps.max_in_window, days=caps.window_days
            )

    allowed = not permanent and earliest == at
    if permanent:
        earliest = None
    elif earliest is not None:
        earliest = earliest.astimezone(at.tzinfo)  # same instant, shown in the caller's zone
    return ContactDecision(allowed=allowed, reasons=tuple(reasons), earliest_allowed=earliest)


def _checked_within(point: ContactPoint, at: dt.datetime, days: int) -> bool:
    stamps = [t for t in (point.consent_at, point.verified_at) if t is not None and t <= at]
    return bool(stamps) and at - max(stamps) <= dt.timedelta(days=days)


def _caps_for(channel: Channel, pack: PolicyPack, creditor: Creditor, on: dt.date) -> _Caps | None:
    if channel is Channel.PHONE:
        if not (creditor.role.is_collector or pack.value("calls.cap_for_all_creditors", on=on)):
            return None
        return _Caps(
            channel,
            int(pack.value("calls.max_per_7_days", on=on)),
            int(pack.value("calls.window_days", on=on)),
            int(pack.value("calls.days_after_conversation", on=on)),
            "calls.max_per_7_days",
        )
    rule_id = {
        Channel.EMAIL: "email.max_per_7_days",
        Channel.SMS: "sms.max_per_7_days",
        Channel.LETTER: "letter.max_per_7_days",
    }.get(channel)
    if rule_id is None or rule_id not in pack.rules:
        return None
    window_rule = "messages.window_days" if "messages.window_days" in pack.rules else "calls.window_days"
    window = int(pack.value(window_rule, on=on))
    return _Caps(channel, int(pack.value(rule_id, on=on)), window, 0, rule_id)


def _history_days(
    debt: Debt, history: ContactHistory, channel: Channel, at: dt.datetime, tz_name: str
) -> tuple[list[dt.date], list[dt.date]]:
    """Conversation days and counted-event days on ``channel`` for ``debt``, before or at ``at``."""
    conversations: list[dt.date] = []
    events: list[dt.date] = []
    for a in history.attempts:
        if a.at > at or not debt.concerns(a.account_id, a.invoice_id):
            continue
        if a.is_conversation:
            conversations.append(_day(a.at, tz_name))
        if a.channel is channel and (a.counts_as_call if channel is Channel.PHONE else True):
            events.append(_day(a.at, tz_name))
    for account_id, invoice_id, when in history.conversations:
        if when <= at and debt.concerns(account_id, invoice_id):
            conversations.append(_day(when, tz_name))
    return conversations, events


__getattr__ = renamed(__name__, {"Conversation": "carecollect.policy.governor:ReportedConversation"})
