"""The ``outbox`` message channel: every rendered message written to a folder.

What a developer uses on day one: nothing is sent, every message can be read.
E-mails are written as ``<id>.eml`` (open them in a mail client); letters,
SMS, calls and portal notices as ``<id>.txt``. Writing the same message id
again changes nothing. Delivery reports and replies are JSON bodies, so a test
or a developer can simulate them.

>>> import tempfile, datetime as dt
>>> from carecollect.channels import Channel
>>> from carecollect.messaging import RenderedMessage
>>> folder = tempfile.mkdtemp()
>>> channel = OUTBOX.create({"folder": folder})
>>> receipt = channel.send(RenderedMessage(id="MSG-1", channel=Channel.SMS, recipient="+4790000000",
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
from collections.abc import Mapping
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

from ..channels import Channel
from ..errors import ConfigurationError, ValidationError
from ..hookspecs import hookimpl
from ..messaging import (
    ChannelCapabilities,
    DeliveryReport,
    DeliveryState,
    InboundReply,
    MessageChannelDescriptor,
    Receipt,
    ReceiptStatus,
    RenderedMessage,
)
from ..timekeeping import require_aware

__all__ = ["OUTBOX", "OutboxChannel", "carecollect_message_channels", "file_name"]

#: Every channel, any length, opt-out links, simulated reports and replies.
CAPABILITIES = ChannelCapabilities(
    channels=frozenset(Channel), opt_out_link=True, delivery_reports=True, inbound=True, html=True
)


def _file_stem(message_id: str) -> str:
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
    return f"{_file_stem(message_id)}.{'eml' if channel is Channel.EMAIL else 'txt'}"


_PLAIN_HEADER = re.compile(r"[!-~]*")  # printable ASCII without spaces: never encoded nor folded


def _part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\n'
        "Content-Transfer-Encoding: base64\n\n"
    ).encode("ascii") + base64.encodebytes(text.encode("utf-8"))


def _eml(message: RenderedMessage, stem: str) -> bytes | None:
    """The ``.eml`` the MIME classes write, assembled directly (several times faster).

    The same structure, headers and base64 bodies as :class:`~email.mime.multipart.MIMEMultipart`
    with :class:`~email.mime.text.MIMEText` parts in UTF-8, whose boundary is random anyway;
    ``None`` when a header would need encoding or folding (the MIME classes then write it).
    """
    headers = [("To", message.recipient), ("Message-ID", f"<{stem}@outbox.carecollect.invalid>")]
    headers.append(("Content-Language", message.language))
    if message.opt_out_url:
        headers.append(("List-Unsubscribe", f"<{message.opt_out_url}>"))
    if not all(v and len(k) + len(v) < 76 and _PLAIN_HEADER.fullmatch(v) for k, v in headers):
        return None
    subject = Header(message.subject, "utf-8", header_name="Subject").encode()
    head = [f"{k}: {v}" for k, v in headers]
    head.insert(1, f"Subject: {subject}")
    text = _part("plain", message.body)
    if not message.html:
        top = 'Content-Type: text/plain; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n'
        return (top + "\n".join(head) + "\n\n").encode("ascii") + text.split(b"\n\n", 1)[1]
    # base64 lines never hold "=_" ("_" is not in its alphabet, "=" only ends a body)
    boundary = f"=_{hashlib.sha256(stem.encode()).hexdigest()[:24]}"
    top = f'Content-Type: multipart/alternative; boundary="{boundary}"\nMIME-Version: 1.0\n'
    sep = f"\n--{boundary}\n".encode("ascii")
    return (
        (top + "\n".join(head) + "\n").encode("ascii")
        + sep
        + text
        + sep
        + _part("html", message.html)
        + f"\n--{boundary}--\n".encode("ascii")
    )


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

    :param settings: ``{"folder": path}``; the folder is created if missing.
    :raises ConfigurationError: no folder given.
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

    def _render(self, message: RenderedMessage) -> tuple[str, bytes]:
        stem = _file_stem(message.id)
        if message.channel is Channel.EMAIL and (fast := _eml(message, stem)) is not None:
            return f"{stem}.eml", fast
        if message.channel is Channel.EMAIL:
            # the classic MIME classes: the same standard .eml, about five times faster than EmailMessage
            mail: MIMEMultipart | MIMEText
            text = MIMEText(message.body, "plain", "utf-8")
            if message.html:
                mail = MIMEMultipart("alternative")
                mail.attach(text)
                mail.attach(MIMEText(message.html, "html", "utf-8"))
            else:
                mail = text
            mail["To"] = message.recipient
            mail["Subject"] = Header(message.subject, "utf-8").encode()
            mail["Message-ID"] = f"<{stem}@outbox.carecollect.invalid>"
            mail["Content-Language"] = message.language
            if message.opt_out_url:
                mail["List-Unsubscribe"] = f"<{message.opt_out_url}>"
            return f"{stem}.eml", mail.as_bytes()
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

    def send(self, message: RenderedMessage) -> Receipt:
        """Write ``message``; the receipt's provider id is the file name.

        :returns: an ``ACCEPTED`` receipt (the same one again for the same message id).
        """
        name, data = self._render(message)
        target = self.folder / name
        if not target.exists():
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(data)
            os.replace(partial, target)
        return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=name)

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
