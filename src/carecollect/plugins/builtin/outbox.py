"""The ``outbox`` message channel: every rendered message written to a folder.

What a developer uses on day one: nothing is sent, every message can be read.
With ``layout = "files"`` (the default without the setting; the settings ``carecollect init``
writes choose ``"spool"``, below) e-mails are written as ``<id>.eml`` (open them in a mail
client), the bytes of :func:`~carecollect.messages.email.build_email`'s message exactly as the SMTP
plugin sends them (:func:`~carecollect.messages.email.email_bytes`); letters, SMS, calls and
portal notices as ``<id>.txt``. Writing the same message id again changes nothing. With ``layout = "spool"`` the messages of a batch go into one spool file
(``spool/<run>-<batch>.jsonl``), written aside and renamed into place when the run says the batch
ends (:meth:`OutboxChannel.flush`); read them back with :func:`spooled_messages` and
:func:`spooled_message`. Delivery reports and replies are JSON bodies, so a test or a developer
can simulate them.

>>> import tempfile, datetime as dt
>>> from carecollect.channels import Channel
>>> from carecollect.plugins.messaging import OutgoingMessage
>>> folder = tempfile.mkdtemp()
>>> channel = OUTBOX.create({"folder": folder})
>>> receipt = channel.send(OutgoingMessage(id="MSG-1", channel=Channel.SMS, recipient="+4790000000",
...                                        body="Your bill of NOK 450 is due on 1 April."))
>>> receipt.status.value, receipt.provider_message_id
('accepted', 'MSG-1.txt')
>>> reply = channel.parse_inbound({}, b'{"id": "in-1", "from": "+4790000000", "text": "STOPP"}',
...                               now=dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc))
>>> reply.is_opt_out
True
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ...channels import Channel
from ...errors import ConfigurationError, ValidationError
from ...messages.email import email_bytes
from ...timekeeping import require_aware
from ..hookspecs import hookimpl
from ..messaging import (
    ChannelCapabilities,
    DeliveryReport,
    DeliveryState,
    InboundReply,
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)

__all__ = [
    "OUTBOX",
    "OUTBOX_DOMAIN",
    "OUTBOX_SENDER",
    "OutboxChannel",
    "SpooledMessage",
    "carecollect_message_channels",
    "file_name",
    "file_stem",
    "spooled_message",
    "spooled_messages",
]

#: The outbox's layouts: a file per message, or a spool file per batch.
LAYOUTS = ("files", "spool")

#: Every channel, any length, opt-out links, simulated reports and replies.
CAPABILITIES = ChannelCapabilities(
    channels=frozenset(Channel),
    opt_out_link=True,
    delivery_reports=True,
    inbound=True,
    html=True,
    deduplicates=True,
)


#: The ``From`` of the outbox's e-mails unless the ``from`` setting names another.
OUTBOX_SENDER = "carecollect outbox <outbox@outbox.carecollect.invalid>"
#: The right-hand side of the outbox's Message-IDs (``.invalid``: never a real domain, RFC 2606).
OUTBOX_DOMAIN = "outbox.carecollect.invalid"


#: A file name stem kept as it is: the safe characters, not starting with a dot.
_SAFE_STEM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def file_stem(message_id: str) -> str:
    """``message_id`` as a safe file name stem: unchanged when it is one, else made safe and given
    8 hex digits of its SHA-256, so two ids never share a file.

    >>> file_stem("step-1_email"), file_stem("a/b")
    ('step-1_email', 'a_b-c14cddc0')
    """
    if _SAFE_STEM.fullmatch(message_id) is not None:  # the run's own ids: already safe
        return message_id
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", message_id)
    if safe != message_id or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(message_id.encode()).hexdigest()[:8]}"
    return safe


def file_name(message_id: str, channel: Channel) -> str:
    """The file the outbox writes a message to: also the receipt's provider message id, which
    delivery reports name.

    >>> file_name("step-1_email", Channel.EMAIL), file_name("a/b", Channel.SMS)
    ('step-1_email.eml', 'a_b-c14cddc0.txt')
    """
    return f"{file_stem(message_id)}.{'eml' if channel is Channel.EMAIL else 'txt'}"


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationError("outbox", what, "the body must be a UTF-8 JSON object") from None
    if not isinstance(data, dict):
        raise ValidationError("outbox", what, "the body must be a UTF-8 JSON object")
    return data


def _when(data: Mapping[str, Any], now: dt.datetime) -> dt.datetime:
    if "at" not in data:
        return now
    at = dt.datetime.fromisoformat(str(data["at"]))
    require_aware(at, "outbox", "at")
    return at


class OutboxChannel:
    """Writes each message to ``folder``.

    :param settings: ``{"folder": path}``; the folder is created if missing. Optional:
        ``from`` (the e-mails' sender, default :data:`OUTBOX_SENDER`), ``unsubscribe_mailto``
        (the ``mailto:`` opt-out address, default the sender's; empty for none) and ``layout``
        (``files``, the default: a file per message; ``spool``: a spool file per batch, under
        ``<folder>/spool``).
    :raises ConfigurationError: no folder given, or an unknown layout.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str]) -> None:
        folder = settings.get("folder")
        if not folder:
            raise ConfigurationError(
                "the outbox channel needs a 'folder' setting (where messages are written)"
            )
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._folder = os.fspath(self.folder)  # joined per message as a str (cheaper than a Path)
        self.sender = settings.get("from") or OUTBOX_SENDER
        self.unsubscribe_mailto = settings.get("unsubscribe_mailto")
        self.layout = settings.get("layout") or "files"
        if self.layout not in LAYOUTS:
            raise ConfigurationError(
                f"the outbox's layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}"
            )
        #: this instance's run (spool file names): the UTC time it was made and 6 random hex digits
        self.run = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self._batch: dict[str, tuple[Channel, str, bytes]] = {}
        self._batches = 0

    def _render(self, message: OutgoingMessage) -> tuple[str, bytes]:
        stem = file_stem(message.id)
        if message.channel is Channel.EMAIL:
            mail = email_bytes(
                message,
                sender=self.sender,
                at=dt.datetime.now(dt.UTC),
                message_id_domain=OUTBOX_DOMAIN,
                unsubscribe_mailto=self.unsubscribe_mailto,
            )
            return f"{stem}.eml", mail
        lines = [
            f"Channel: {message.channel.value}",
            f"To: {message.recipient}",
            f"Language: {message.language}",
        ]
        if message.subject:
            lines.append(f"Subject: {message.subject}")
        if message.opt_out_url:
            lines.append(f"Opt-out: {message.opt_out_url}")
        return f"{stem}.txt", ("\n".join(lines) + "\n\n" + message.body + "\n").encode("utf-8")

    def send(self, message: OutgoingMessage) -> Receipt:
        """Write ``message``; the receipt's provider id is the file name.

        :returns: an ``ACCEPTED`` receipt (the same one again for the same message id); ``REJECTED``
            for an e-mail whose recipient or subject is not a valid header.
        """
        try:
            name, data = self._render(message)
        except ValidationError as exc:  # an address or subject no e-mail can carry
            return Receipt(message.id, ReceiptStatus.REJECTED, detail=f"not a valid e-mail: {exc.field}")
        if self.layout == "spool":
            self._batch.setdefault(message.id, (message.channel, name, data))
            return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=name)
        target = os.path.join(self._folder, name)
        if not os.path.exists(target):
            partial = os.path.join(self._folder, f".{name}.partial")
            with open(partial, "wb") as out:
                out.write(data)
            os.replace(partial, target)
        return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=name)

    def flush(self) -> None:
        """End the batch: with the spool layout, write every message sent since the last flush to
        one spool file (written aside, flushed to disk, renamed into place); the file's first line
        records the batch's message ids. Nothing to do for the files layout or an empty batch.

        :raises OSError: the spool file could not be written (the batch is kept for the next flush).
        """
        if self.layout != "spool" or not self._batch:
            return
        spool = self.folder / "spool"
        spool.mkdir(exist_ok=True)
        name = f"{self.run}-{self._batches + 1:06d}.jsonl"
        lines = [json.dumps({"batch": name, "ids": list(self._batch)}, ensure_ascii=False)]
        for message_id, (channel, file, data) in self._batch.items():
            try:
                content, encoding = data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                content, encoding = base64.b64encode(data).decode("ascii"), "base64"
            lines.append(
                json.dumps(
                    {
                        "id": message_id,
                        "channel": channel.value,
                        "name": file,
                        "encoding": encoding,
                        "content": content,
                    },
                    ensure_ascii=False,
                )
            )
        partial = spool / f".{name}.partial"
        with open(partial, "wb") as out:
            # each line encoded alone: no copy of the whole batch as one text
            out.writelines([line.encode("utf-8") + b"\n" for line in lines])
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, spool / name)
        self._batches += 1
        self._batch = {}

    def parse_delivery_report(
        self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime
    ) -> DeliveryReport:
        """``{"id": <file name>, "state": "delivered", "at": <ISO time, optional>}``.

        :raises ValidationError: not such a JSON object, or an unknown state.
        """
        data = _json(body, "delivery report")
        try:
            state = DeliveryState(data.get("state"))
        except ValueError:
            raise ValidationError("outbox", "state", f"one of {[s.value for s in DeliveryState]}") from None
        return DeliveryReport(
            str(data.get("id", "")), state, _when(data, now), detail=str(data.get("detail", ""))
        )

    def parse_inbound(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundReply:
        """``{"id": ..., "from": ..., "text": ..., "channel": "sms" (default), "in_reply_to": ...}``.

        :raises ValidationError: not such a JSON object.
        """
        data = _json(body, "inbound reply")
        return InboundReply(
            provider_message_id=str(data.get("id", "")),
            channel=Channel(data.get("channel", "sms")),
            sender=str(data.get("from", "")),
            text=str(data.get("text", "")),
            at=_when(data, now),
            in_reply_to=data.get("in_reply_to"),
        )


@attrs.frozen
class SpooledMessage:
    """One message as the spool holds it.

    :param id: the message id the run sent it under.
    :param channel: its channel.
    :param name: the file name the files layout would give it (also the receipt's provider id).
    :param content: what the files layout would write (an e-mail's ``.eml`` bytes, else the text).
    :param batch: the spool file it was read from (the first, for a message handed over again).
    """

    id: str
    channel: Channel
    name: str
    content: bytes
    batch: str


def spooled_messages(folder: str | os.PathLike[str]) -> Iterator[SpooledMessage]:
    """Every message in the outbox folder's spool, oldest batch first, each message id once (a
    message handed over again after a crash is in two batches: the first is kept).

    >>> import tempfile
    >>> from carecollect.channels import Channel
    >>> from carecollect.plugins.messaging import OutgoingMessage
    >>> folder = tempfile.mkdtemp()
    >>> channel = OUTBOX.create({"folder": folder, "layout": "spool"})
    >>> for n in (1, 2, 1):
    ...     _ = channel.send(OutgoingMessage(id=f"MSG-{n}", channel=Channel.SMS, recipient="+4790000000",
    ...                                      body="Your bill is due on 1 April."))
    >>> channel.flush()
    >>> [m.id for m in spooled_messages(folder)]
    ['MSG-1', 'MSG-2']
    >>> print(spooled_message(folder, "MSG-2").content.decode().splitlines()[0])
    Channel: sms
    """
    spool = Path(folder) / "spool"
    seen: set[str] = set()
    for path in sorted(spool.glob("*.jsonl")) if spool.is_dir() else ():
        with open(path, encoding="utf-8") as lines:
            next(lines, None)  # the batch's ids
            for line in lines:
                row = json.loads(line)
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
                raw = row["content"]
                content = base64.b64decode(raw) if row.get("encoding") == "base64" else raw.encode("utf-8")
                yield SpooledMessage(row["id"], Channel(row["channel"]), row["name"], content, path.name)


def spooled_message(folder: str | os.PathLike[str], message_id: str) -> SpooledMessage:
    """The spooled message with that id.

    :raises ValidationError: no batch in the spool holds it.
    """
    for message in spooled_messages(folder):
        if message.id == message_id:
            return message
    raise ValidationError("SpooledMessage", "id", "no batch in the outbox's spool holds this message id")


#: The descriptor the built-in plugin registers.
OUTBOX = MessageChannelDescriptor(
    name="outbox",
    capabilities=CAPABILITIES,
    factory=OutboxChannel,
    description="Writes every message to a folder instead of sending it",
)


@hookimpl
def carecollect_message_channels() -> list[MessageChannelDescriptor]:
    """The ``outbox`` channel."""
    return [OUTBOX]
