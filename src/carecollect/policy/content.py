"""Minimum necessary: what a message may carry on each surface, as data the message layer checks.

An SMS, a voicemail, an e-mail subject line or a portal push notification
never carries a diagnosis, a procedure, a clinic's specialty, a facility type
or anything clinical (HIPAA 45 CFR 164.502(b); GDPR Art. 5(1)(c) and 9). A
voicemail is a *limited-content message*: only the fields the pack lists
(12 CFR 1006.2(j) for US collectors; HHS FAQ 198 for providers), and a
business name that reveals neither debt collection nor the clinic.

The message layer describes what a rendered message contains (a set of
:class:`Sensitive` categories and, for voicemail, :class:`VoicemailField`
fields) and asks :func:`check_content`; the answer is a
:class:`~carecollect.policy.explain.Verdict` with the rule and source.

>>> import datetime as dt
>>> from carecollect.policy.packs import get_pack
>>> from carecollect.policy.content import Surface, Sensitive, check_content
>>> d = check_content(get_pack("us"), Surface.SMS, on=dt.date(2026, 3, 2), sensitive={Sensitive.PROCEDURE})
>>> d.allowed, d.denials[0].rule_id
(False, 'content.forbidden.sms')
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

import attrs

from .explain import Outcome, Reason, Verdict, reason_from_rule
from .packs import PolicyPack

__all__ = ["ContentRules", "Sensitive", "Surface", "VoicemailField", "check_content", "content_rules"]


class Surface(enum.Enum):
    """Where text reaches the patient (or someone near them)."""

    #: A text message: may be read on a locked screen.
    SMS = "sms"
    #: A voicemail: may be heard by others.
    VOICEMAIL = "voicemail"
    #: An e-mail subject: shown in inbox lists and notifications.
    EMAIL_SUBJECT = "email_subject"
    #: A portal notification: shown before the patient signs in.
    PORTAL_NOTIFICATION = "portal_notification"
    #: The body of a letter or e-mail: may carry details (the patient opened it).
    BODY = "body"


class Sensitive(enum.Enum):
    """Categories of content that are clinical or reveal care."""

    #: A diagnosis or a diagnosis code.
    DIAGNOSIS = "diagnosis"
    #: A procedure or a procedure code.
    PROCEDURE = "procedure"
    #: The clinic's specialty (oncology, psychiatry...), including in a clinic name.
    SPECIALTY = "specialty"
    #: Any other clinical detail (medication, test result...).
    CLINICAL = "clinical"
    #: The facility type (hospital, rehab centre...).
    FACILITY_TYPE = "facility_type"


class VoicemailField(enum.Enum):
    """Fields of a limited-content voicemail (12 CFR 1006.2(j))."""

    #: A business name that does not say it collects debts.
    BUSINESS_NAME = "business_name"
    #: A request that the person reply.
    REQUEST_TO_REPLY = "request_to_reply"
    #: The name of the person to call back.
    PERSON_NAME = "person_name"
    #: A telephone number to call back.
    CALL_BACK_NUMBER = "call_back_number"
    #: A greeting.
    SALUTATION = "salutation"
    #: The date and time of the message.
    DATE_TIME = "date_time"
    #: A general statement that the message relates to an account.
    GENERIC_ACCOUNT_STATEMENT = "generic_account_statement"
    #: Suggested times to reply.
    SUGGESTED_REPLY_TIMES = "suggested_reply_times"
    #: Anything else: the amount, the creditor's or clinic's name, "debt"...
    OTHER = "other"


_RULE_OF: dict[Surface, str] = {
    Surface.SMS: "content.forbidden.sms",
    Surface.VOICEMAIL: "content.forbidden.voicemail",
    Surface.EMAIL_SUBJECT: "content.forbidden.email_subject",
    Surface.PORTAL_NOTIFICATION: "content.forbidden.portal_notification",
}


@attrs.frozen
class ContentRules:
    """The content rules of a pack on one day.

    :param forbidden: per surface, the sensitive categories it must never carry.
    :param voicemail_limited: voicemails are limited-content messages.
    :param voicemail_required: fields every voicemail carries.
    :param voicemail_optional: fields a voicemail may also carry (and nothing else).
    """

    forbidden: dict[Surface, frozenset[Sensitive]]
    voicemail_limited: bool
    voicemail_required: frozenset[VoicemailField]
    voicemail_optional: frozenset[VoicemailField]


def content_rules(pack: PolicyPack, *, on: dt.date) -> ContentRules:
    """Read the pack's content rules in force on ``on``.

    :param pack: the pack.
    :param on: the day.
    :returns: a :class:`ContentRules`.
    """
    forbidden = {s: frozenset(Sensitive(v) for v in pack.value(rid, on=on)) for s, rid in _RULE_OF.items()}
    forbidden[Surface.BODY] = frozenset()
    return ContentRules(
        forbidden=forbidden,
        voicemail_limited=bool(pack.value("voicemail.limited_content", on=on)),
        voicemail_required=frozenset(
            VoicemailField(v) for v in pack.value("voicemail.required_fields", on=on)
        ),
        voicemail_optional=frozenset(
            VoicemailField(v) for v in pack.value("voicemail.optional_fields", on=on)
        ),
    )


def check_content(
    pack: PolicyPack,
    surface: Surface,
    *,
    on: dt.date,
    sensitive: Iterable[Sensitive] = (),
    fields: Iterable[VoicemailField] | None = None,
) -> Verdict:
    """Check what a rendered message carries against the pack's content rules.

    :param pack: the pack.
    :param surface: where the text appears.
    :param on: the day it goes out.
    :param sensitive: sensitive categories the message contains.
    :param fields: for a voicemail, the fields it contains (``None``: not checked).
    :returns: a :class:`~carecollect.policy.explain.Verdict`.

    >>> import datetime as dt
    >>> from carecollect.policy.packs import get_pack
    >>> vm = {VoicemailField.BUSINESS_NAME, VoicemailField.REQUEST_TO_REPLY, VoicemailField.PERSON_NAME,
    ...       VoicemailField.CALL_BACK_NUMBER}
    >>> check_content(get_pack("us"), Surface.VOICEMAIL, on=dt.date(2026, 3, 2), fields=vm).allowed
    True
    >>> check_content(get_pack("us"), Surface.VOICEMAIL, on=dt.date(2026, 3, 2), fields=vm | {VoicemailField.OTHER}).allowed
    False
    """
    rules = content_rules(pack, on=on)
    reasons: list[Reason] = []
    found = frozenset(sensitive)
    bad = found & rules.forbidden[surface]
    if surface in _RULE_OF:
        rule = pack.rule(_RULE_OF[surface], on=on)
        if bad:
            names = ", ".join(sorted(s.value for s in bad))
            reasons.append(
                reason_from_rule(rule, Outcome.DENY, case="carries", surface=surface.value, names=names)
            )
        else:
            reasons.append(reason_from_rule(rule, Outcome.ALLOW, case="clean", surface=surface.value))
    if surface is Surface.VOICEMAIL and fields is not None and rules.voicemail_limited:
        have = frozenset(fields)
        limited = pack.rule("voicemail.limited_content", on=on)
        missing = rules.voicemail_required - have
        extra = have - rules.voicemail_required - rules.voicemail_optional
        if missing:
            reasons.append(
                reason_from_rule(
                    limited, Outcome.DENY, case="missing", fields=", ".join(sorted(f.value for f in missing))
                )
            )
        if extra:
            reasons.append(
                reason_from_rule(
                    limited,
                    Outcome.DENY,
                    case="extra",
                    fields=", ".join(sorted(f.value for f in extra)),
                )
            )
        if not missing and not extra:
            reasons.append(reason_from_rule(limited, Outcome.ALLOW, case="ok"))
    return Verdict(allowed=not any(r.outcome.blocks for r in reasons), reasons=tuple(reasons))
