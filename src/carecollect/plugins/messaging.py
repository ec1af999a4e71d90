"""The message-channel contract: send a rendered message, read what comes back.

A channel plugin returns a :class:`MessageChannelDescriptor` from its
``carecollect_message_channels`` hook. The channel it builds offers
:class:`MessageChannel`'s verbs:

* :meth:`~MessageChannel.send` takes a :class:`OutgoingMessage` (already
  rendered, in the patient's language, checked by the governor) and returns a
  :class:`Receipt`: the provider's message id and ``ACCEPTED``, ``REJECTED`` or
  ``RETRY_LATER``. A rejection is a receipt; an exception means misconfiguration.
* :meth:`~MessageChannel.parse_delivery_report` turns a provider callback into a
  :class:`DeliveryReport`;
* :meth:`~MessageChannel.parse_inbound` turns a reply into an
  :class:`InboundReply`; a reply such as ``STOP`` is an opt-out
  (:func:`classify_reply`).

>>> classify_reply("Stop"), classify_reply("STOPP"), classify_reply("Thanks, paid today")
(<ReplyIntent.OPT_OUT: 'opt_out'>, <ReplyIntent.OPT_OUT: 'opt_out'>, <ReplyIntent.OTHER: 'other'>)
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ..channels import Channel
from ..deprecation import renamed
from ..errors import ValidationError
from ..scrubbing import scrub_mapping, scrub_text
from ..validation import aware, identifier
from .providers import validate_plugin_name

__all__ = [
    "OPT_OUT_KEYWORDS",
    "BatchSendingChannel",
    "BatchingChannel",
    "ChannelCapabilities",
    "DeliveryReport",
    "DeliveryState",
    "FlushingChannel",
    "InboundReply",
    "MessageChannel",
    "MessageChannelDescriptor",
    "OutgoingMessage",
    "Receipt",
    "ReceiptStatus",
    "ReplyIntent",
    "classify_reply",
]


@attrs.frozen
class OutgoingMessage:
    """A message ready to go: rendered, translated and allowed by the governor.

    What a channel plugin sends; not the renderer's :class:`~carecollect.messages.context.RenderedMessage`
    (the checked texts a message is built from).

    .. versionchanged:: 0.2 named ``RenderedMessage`` before (a deprecated alias remains).

    :param id: stable id; channels use it as their idempotency key.
    :param channel: the :class:`~carecollect.channels.Channel`.
    :param recipient: e-mail address, phone number, postal address or portal id (never in reprs).
    :param body: the text (never in reprs).
    :param subject: the subject line, for e-mail and portal (never in reprs).
    :param html: an HTML alternative, if any (never in reprs).
    :param language: BCP 47 tag of the text.
    :param account_id: the account the message is about.
    :param opt_out_url: where the patient opts out, when the channel carries links.
    :param country: the recipient's country (ISO 3166), when known: a letter's envelope
        and postage depend on it.
    :param reference: the reference the patient sees (the invoice), for a letter's reference block.
    :param pay_link: the message's pay link, for channels that print it (a letter's QR code;
        never in reprs).
    :param written_on: the date the message is written (a letter's date), in the patient's zone.
    """

    id: str = attrs.field(validator=identifier)
    channel: Channel = attrs.field(validator=attrs.validators.instance_of(Channel))
    recipient: str = attrs.field(repr=False)
    body: str = attrs.field(repr=False)
    subject: str = attrs.field(default="", repr=False)
    html: str | None = attrs.field(default=None, repr=False)
    language: str = "en"
    account_id: str | None = None
    opt_out_url: str | None = None
    country: str | None = None
    reference: str | None = None
    pay_link: str | None = attrs.field(default=None, repr=False)
    written_on: dt.date | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.recipient, str) or not self.recipient.strip():
            raise ValidationError(f"OutgoingMessage {self.id}", "recipient", "must be a non-empty string")
        if not isinstance(self.body, str) or not self.body.strip():
            raise ValidationError(f"OutgoingMessage {self.id}", "body", "must be a non-empty string")


class ReceiptStatus(enum.Enum):
    """What the channel's provider said when the message was handed over."""

    #: The provider took the message for delivery.
    ACCEPTED = "accepted"
    #: Refused for good (bad address, too long, opted out at the provider): do not retry.
    REJECTED = "rejected"
    #: A temporary problem (rate limit, provider down): retry later with the same message id.
    RETRY_LATER = "retry_later"


def _channel_set(values: Iterable[Channel]) -> frozenset[Channel]:
    return frozenset(values)


def _scrub_detail(value: object) -> str:
    return scrub_text(str(value))


@attrs.frozen
class Receipt:
    """The answer to :meth:`MessageChannel.send`.

    :param message_id: the :class:`OutgoingMessage` id.
    :param status: :class:`ReceiptStatus`.
    :param provider_message_id: the provider's id (needed to match delivery reports).
    :param detail: a short scrubbed explanation.
    :param raw: the provider's raw answer, scrubbed (not compared, not in reprs).
    """

    message_id: str
    status: ReceiptStatus
    provider_message_id: str | None = None
    detail: str = attrs.field(default="", converter=_scrub_detail)
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub_mapping, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.status is ReceiptStatus.ACCEPTED and not self.provider_message_id:
            raise ValidationError(
                f"Receipt {self.message_id}", "provider_message_id", "an accepted message needs one"
            )


class DeliveryState(enum.Enum):
    """What a delivery report says."""

    #: The message reached the patient's phone, inbox or letterbox.
    DELIVERED = "delivered"
    #: Not delivered yet; a later report will say.
    PENDING = "pending"
    #: Could not be delivered (hard bounce, unknown number): the contact point needs checking.
    UNDELIVERABLE = "undeliverable"
    #: The patient read or opened it, where the channel can tell.
    READ = "read"


@attrs.frozen
class DeliveryReport:
    """A provider's report about one message.

    :param provider_message_id: the provider's id, as in the :class:`Receipt`.
    :param state: :class:`DeliveryState`.
    :param at: when the provider says it happened (aware).
    :param detail: scrubbed explanation (bounce reason...).
    """

    provider_message_id: str = attrs.field(validator=identifier)
    state: DeliveryState
    at: dt.datetime = attrs.field(validator=aware)
    detail: str = attrs.field(default="", converter=_scrub_detail)


class ReplyIntent(enum.Enum):
    """What an inbound reply asks for."""

    #: Stop messages on this channel (``STOP``, ``STOPP``, ``СТОП``).
    OPT_OUT = "opt_out"
    #: The patient asks for help or contact details (``HELP``).
    HELP = "help"
    #: Any other reply: staff read it.
    OTHER = "other"


#: Replies that revoke consent (one word, any case, punctuation ignored).
#: English: the words the FCC's 2024 TCPA revocation order lists as always
#: sufficient ("stop", "quit", "end", "revoke", "opt out", "cancel",
#: "unsubscribe"; 47 CFR 64.1200(a)(10), in force 2025-04-11) plus CTIA's
#: "stopall"; Norwegian and German "stopp", "avslutt", "abmelden"; Bulgarian "стоп", "отказ".
OPT_OUT_KEYWORDS: frozenset[str] = frozenset(
    {
        "stop",
        "stopall",
        "quit",
        "end",
        "revoke",
        "optout",
        "cancel",
        "unsubscribe",
        "stopp",
        "avslutt",
        "abmelden",
        "стоп",
        "отказ",
    }
)
_HELP = frozenset({"help", "info", "hjelp", "hilfe", "помощ"})


def classify_reply(text: str) -> ReplyIntent:
    """Whether a reply is an opt-out, a request for help, or something a person must read.

    Only a reply that is just the keyword counts (``"stop"``, ``"Opt out!"``);
    a sentence goes to a person, who may still record an opt-out (consent may
    be revoked by any reasonable means).

    :param text: the reply's text.
    :returns: :class:`ReplyIntent`.

    >>> classify_reply(" opt-out! "), classify_reply("help"), classify_reply("Please stop calling at work")
    (<ReplyIntent.OPT_OUT: 'opt_out'>, <ReplyIntent.HELP: 'help'>, <ReplyIntent.OTHER: 'other'>)
    """
    word = "".join(ch for ch in text.casefold() if ch.isalnum())
    if word in OPT_OUT_KEYWORDS:
        return ReplyIntent.OPT_OUT
    if word in _HELP:
        return ReplyIntent.HELP
    return ReplyIntent.OTHER


@attrs.frozen
class InboundReply:
    """A message a patient sent back.

    :param provider_message_id: the provider's id of the reply.
    :param channel: the channel it came on.
    :param sender: the sender's address or number (never in reprs).
    :param text: what the patient wrote (never in reprs).
    :param at: when it arrived (aware).
    :param in_reply_to: the provider id of our message, when known.
    """

    provider_message_id: str = attrs.field(validator=identifier)
    channel: Channel
    sender: str = attrs.field(repr=False)
    text: str = attrs.field(repr=False)
    at: dt.datetime = attrs.field(validator=aware)
    in_reply_to: str | None = None

    @property
    def intent(self) -> ReplyIntent:
        """:func:`classify_reply` of the text."""
        return classify_reply(self.text)

    @property
    def is_opt_out(self) -> bool:
        """True for ``STOP`` and its kin: record it with :func:`carecollect.patients.opt_out` at once."""
        return self.intent is ReplyIntent.OPT_OUT


@attrs.frozen
class ChannelCapabilities:
    """What a message channel can carry.

    :param channels: the :class:`~carecollect.channels.Channel` values it sends
        (``PHONE`` covers automated voice).
    :param max_length: longest body in characters (``None``: no limit).
    :param max_subject_length: longest subject (``None``: no limit or no subject).
    :param opt_out_link: whether a message can carry an opt-out link.
    :param delivery_reports: whether :meth:`MessageChannel.parse_delivery_report` works.
    :param inbound: whether :meth:`MessageChannel.parse_inbound` works.
    :param html: whether an HTML alternative is sent.
    :param deduplicates: whether a message handed over again under the same id is delivered once
        (the channel, or the service behind it, keys messages by id). Delivery to a channel is
        at-least-once keyed by message id: a run killed after a send and before its record hands
        that message over again on its rerun. The run hands a channel that de-duplicates a batch
        of messages before it records them; for one that does not (plain SMTP) it records each
        message right after its send returns and before it hands the channel its next one, keeping
        the window to the messages in flight (one, with ``batch_size=1`` and ``concurrency=1``).
    :param batch_size: messages handed over in one call: a channel that offers ``send_batch``
        (:class:`BatchSendingChannel`) gets lists of up to this many, any other one ``send`` per
        message, in the same worker. Default ``1``.
    :param concurrency: calls (of ``send`` or ``send_batch``) the channel takes at the same time,
        each from its own thread; the run never has more in flight and waits for one to end before
        it hands over more (back-pressure). Default ``1``: every call from the run's own thread,
        one after the other.
    :param rate_limit: messages per second at most (a provider's quota), ``None`` for no limit.
        The run waits before it hands over a call that would go faster; a burst of one batch is
        allowed.

    .. versionchanged:: 0.3 ``batch_size``, ``concurrency`` and ``rate_limit``.

    >>> ChannelCapabilities(channels={Channel.SMS}, concurrency=4, rate_limit=50).concurrency
    4
    >>> ChannelCapabilities(channels={Channel.SMS}, concurrency=0)
    Traceback (most recent call last):
    ...
    carecollect.errors.ValidationError: ChannelCapabilities: field 'concurrency': a positive int
    """

    channels: frozenset[Channel] = attrs.field(converter=_channel_set)
    max_length: int | None = None
    max_subject_length: int | None = None
    opt_out_link: bool = False
    delivery_reports: bool = False
    inbound: bool = False
    html: bool = False
    deduplicates: bool = False
    batch_size: int = 1
    concurrency: int = 1
    rate_limit: float | None = None

    def __attrs_post_init__(self) -> None:
        if not self.channels or not all(isinstance(c, Channel) for c in self.channels):
            raise ValidationError("ChannelCapabilities", "channels", "name at least one Channel")
        for name in ("max_length", "max_subject_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValidationError("ChannelCapabilities", name, "a positive int or None")
        for name in ("batch_size", "concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError("ChannelCapabilities", name, "a positive int")
        rate = self.rate_limit
        if rate is not None and (
            not isinstance(rate, int | float)
            or isinstance(rate, bool)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise ValidationError(
                "ChannelCapabilities", "rate_limit", "a positive number of messages per second, or None"
            )


class MessageChannel(Protocol):
    """The verbs every message channel offers."""

    capabilities: ChannelCapabilities

    def send(self, message: OutgoingMessage) -> Receipt:
        """Hand ``message`` to the provider; sending the same message id twice sends it once."""
        ...

    def parse_delivery_report(
        self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime
    ) -> DeliveryReport:
        """Parse a provider's delivery callback."""
        ...

    def parse_inbound(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundReply:
        """Parse a patient's reply."""
        ...


class BatchingChannel(MessageChannel, Protocol):
    """A channel that collects what it is sent and hands it over in batches (printed letters).

    The daily run calls :meth:`close_batch` once after all of a run's messages are through
    (:func:`~carecollect.run.sending.close_batches`).
    """

    def close_batch(self, now: dt.datetime) -> tuple[str, ...]:
        """Hand over everything collected since the last batch; the ids of the batches made."""
        ...


class FlushingChannel(MessageChannel, Protocol):
    """A channel that holds what it was sent until it is told a batch ends (the file outbox's spool).

    The run calls :meth:`flush` after the last message of a batch and before it records any of
    the batch's messages done: a done-mark is never written for a message the channel has not
    made durable.
    """

    def flush(self) -> None:
        """Make every message sent since the last flush durable (raise ``OSError`` if it cannot)."""
        ...


class BatchSendingChannel(MessageChannel, Protocol):
    """A channel that sends several messages in one call (one session, one HTTP request).

    The run hands it lists of up to :attr:`ChannelCapabilities.batch_size` messages.
    """

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> Sequence[Receipt | Exception]:
        """Send ``messages``; one result per message, in their order: a :class:`Receipt` or the
        exception that message met (one message's failure never loses the others' results)."""
        ...


@attrs.frozen
class MessageChannelDescriptor:
    """What a channel plugin provides (returned by ``carecollect_message_channels``).

    :param name: configuration name, unique across plugins.
    :param capabilities: :class:`ChannelCapabilities`.
    :param factory: builds the channel from settings.
    :param description: one line for listings.
    """

    name: str = attrs.field()
    capabilities: ChannelCapabilities = attrs.field(
        validator=attrs.validators.instance_of(ChannelCapabilities)
    )
    factory: Callable[[Mapping[str, str]], MessageChannel] = attrs.field(repr=False)
    description: str = ""

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        validate_plugin_name("MessageChannelDescriptor", value)

    def create(self, settings: Mapping[str, str] | None = None) -> MessageChannel:
        """Build the channel from ``settings``."""
        return self.factory(dict(settings or {}))


__getattr__ = renamed(__name__, {"RenderedMessage": "carecollect.plugins.messaging:OutgoingMessage"})
