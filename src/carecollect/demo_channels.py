"""The demo's channels: the file outbox, or real channel plugins sending to local servers.

``carecollect demo --deliver outbox|smtp|sms|all`` chooses (:class:`DemoDelivery`):

``outbox``
    every e-mail and SMS is a file in the outbox folder; the simulated STOP replies and
    e-mail bounces are JSON in the outbox channel's format (the default, as before).
``smtp``
    e-mails go through the ``carecollect-smtp`` plugin to an aiosmtpd server the demo starts
    on 127.0.0.1 (a free port), which writes each message it receives into a Maildir
    (``<stem>-smtp/``).
``sms``
    SMS go through the ``carecollect-sms`` plugin (Twilio's Messages API) to the plugin's
    local Twilio (:mod:`carecollect_sms.testing_server`) on 127.0.0.1, which appends each
    message it accepts to ``<stem>-sms.jsonl``. What comes back takes Twilio's real path:
    a signed status callback for every accepted message and the patients' STOP replies as
    signed incoming-message webhooks, each checked and parsed by the sms channel in the run's
    intake (as the endpoint Twilio posts to would hand them over).
``all``
    both: each message goes through the channel the run chose for it (letters still go to
    the letter channel or the outbox).

What stays simulated: an e-mail bounce. A real one arrives later as a bounce message in the
sender's mailbox, and the smtp channel reads no such messages (it claims no delivery
reports), so the demo hands the run a delivery report in the outbox's format that names the
Message-ID the smtp channel sent the e-mail under; the run records the bounce against that
e-mail and marks the address undeliverable exactly as it would for any channel's report.

The same seed gives the same messages, replies and bounces whichever way they are delivered:
only the transport changes.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import enum
import importlib
import importlib.util
import json
import mailbox
import shutil
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from .channels import Channel
from .errors import ConfigurationError
from .plugins.builtin.outbox import file_name
from .run.inbound import InboundEvent, InboundKind
from .run.sending import message_id
from .run.settings import RunSettings

__all__ = [
    "SMS_ACCOUNT",
    "SMS_SENDER",
    "SMTP_SENDER",
    "DemoDelivery",
    "LocalChannels",
    "ServerTally",
    "local_channels",
    "require_installed",
]

#: The sender of the demo's e-mails through the local SMTP server.
SMTP_SENDER = "billing@clinic.example"
#: The account the local Twilio serves (a test value, never a Twilio account's).
SMS_ACCOUNT = "AC00000000000000000000000000000de0"
#: The number the demo's SMS come from and STOP replies go to (Twilio's documented test sender).
SMS_SENDER = "+15005550006"
_SMS_TOKEN_BYTES = 24
#: Where Twilio would post: the patient pages' reply door and a status endpoint on the demo's pay host
#: (the signatures cover these URLs; the demo hands the posts to the run's intake).
_SMS_STATUS_URL = "https://pay.example.org/sms/status"
_SMS_INBOUND_URL = "https://pay.example.org/inbound/sms"
#: Headers of a received e-mail the demo shows: none names the patient or their address.
_SAMPLE_HEADERS = (
    "From",
    "Subject",
    "Message-ID",
    "Content-Language",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


class DemoDelivery(enum.Enum):
    """How the demo delivers e-mail and SMS."""

    #: Files in the outbox folder (the default).
    OUTBOX = "outbox"
    #: E-mail through the smtp plugin to a local aiosmtpd server.
    SMTP = "smtp"
    #: SMS through the sms plugin to a local server speaking Twilio's Messages API.
    SMS = "sms"
    #: Both.
    ALL = "all"

    @property
    def smtp(self) -> bool:
        """E-mail goes to the local SMTP server."""
        return self in (DemoDelivery.SMTP, DemoDelivery.ALL)

    @property
    def sms(self) -> bool:
        """SMS go to the local Twilio."""
        return self in (DemoDelivery.SMS, DemoDelivery.ALL)


def _missing(modules: Mapping[str, str]) -> list[str]:
    return [what for module, what in modules.items() if importlib.util.find_spec(module) is None]


def require_installed(deliver: DemoDelivery) -> None:
    """Check that what ``deliver`` needs is installed, before the demo writes anything.

    :param deliver: the choice.
    :raises ConfigurationError: one line naming what is missing and what to install.

    >>> require_installed(DemoDelivery.OUTBOX)  # the outbox is built in
    """
    wanted: dict[str, str] = {}
    if deliver.smtp:
        wanted |= {"aiosmtpd": "aiosmtpd", "carecollect_smtp": "carecollect-smtp"}
    if deliver.sms:
        wanted |= {"carecollect_sms": "carecollect-sms"}
    missing = _missing(wanted)
    if not missing:
        return
    plugins = [m for m in missing if m.startswith("carecollect-")]
    install = (['"carecollect[demo-channels]"'] if "aiosmtpd" in missing else []) + plugins
    checkout = (
        f" (from a checkout: pip install {' '.join('-e plugins/' + p for p in plugins)})" if plugins else ""
    )
    raise ConfigurationError(
        f"carecollect demo --deliver {deliver.value} needs {' and '.join(missing)}, not installed: "
        f"pip install {' '.join(install)}{checkout}"
    )


@attrs.frozen
class ServerTally:
    """What one local server received.

    :param channel: the channel it carried.
    :param plugin: the channel plugin that sent to it.
    :param address: ``127.0.0.1:<port>``.
    :param received: messages it received.
    :param written_to: where it wrote them (a Maildir, a JSON-lines file).
    :param sample: a received message's fields, none naming the patient or their address.
    :param came_back: what came back through the channel's own parser (status callbacks,
        replies), by kind.
    """

    channel: Channel
    plugin: str
    address: str
    received: int
    written_to: Path
    sample: tuple[tuple[str, str], ...] = ()
    came_back: Mapping[str, int] = attrs.field(factory=dict)


class _MaildirHandler:
    """An aiosmtpd handler that writes every message it receives into a Maildir."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.maildir = mailbox.Maildir(folder, create=True)
        self.received = 0
        self.first: bytes | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.content)
        with self._lock:
            self.maildir.add(content)
            self.received += 1
            if self.first is None:
                self.first = content
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clear(path: Path, *, maildir: bool = False) -> None:
    """Remove what an earlier demo at the same database left (only a Maildir, or the one file)."""
    if maildir and path.is_dir() and {p.name for p in path.iterdir()} <= {"cur", "new", "tmp"}:
        shutil.rmtree(path)
    elif not maildir and path.is_file():
        path.unlink()


class LocalChannels:
    """The demo's channels for one run of the demo (use :func:`local_channels`).

    :ivar settings: the run settings, each channel pointed at its plugin.
    :ivar plugins: the channel plugins to register (by name).
    """

    def __init__(self, deliver: DemoDelivery, settings: RunSettings) -> None:
        self.deliver = deliver
        self.settings = settings
        self.plugins: dict[str, ModuleType] = {}
        self.smtp_domain = SMTP_SENDER.rsplit("@", 1)[1]
        self._mail: _MaildirHandler | None = None
        self._smtp_address = ""
        self._twilio: Any = None
        self._sms_record: Path | None = None
        self._called_back = 0
        self._came_back: dict[str, int] = {"status callbacks": 0, "STOP replies": 0}

    # -- what the patients send back ---------------------------------------------------------
    def reply(self, reply_id: str, sender: str, text: str, at: str) -> InboundEvent:
        """A patient's SMS reply: a signed Twilio webhook, or the outbox's JSON."""
        if self._twilio is not None:
            headers, body = self._twilio.incoming(_SMS_INBOUND_URL, sender, SMS_SENDER, text)
            self._came_back["STOP replies"] += 1
            return InboundEvent(InboundKind.REPLY, "sms", body, headers)
        data = {"id": reply_id, "from": sender, "text": text, "at": at}
        return InboundEvent(InboundKind.REPLY, "outbox", json.dumps(data).encode("utf-8"))

    def bounce(self, key: str, at: str) -> InboundEvent:
        """An e-mail's hard bounce, as a delivery report in the outbox channel's format.

        It names the message as its channel sent it: the outbox's file name, or the
        Message-ID the smtp channel sent it under (see the module's documentation).
        """
        if self.deliver.smtp:
            from .messages.email import message_id_header

            sent_as = message_id_header(message_id(key), self.smtp_domain)
        else:
            sent_as = file_name(message_id(key), Channel.EMAIL)
        data = {"id": sent_as, "state": "undeliverable", "detail": "550 5.1.1 mailbox unknown", "at": at}
        return InboundEvent(InboundKind.DELIVERY_REPORT, "outbox", json.dumps(data).encode("utf-8"))

    def status_callbacks(self) -> list[InboundEvent]:
        """Twilio's ``delivered`` callback for every SMS accepted since the last call (signed)."""
        if self._twilio is None:
            return []
        fresh = self._twilio.accepted[self._called_back :]
        self._called_back += len(fresh)
        events = []
        for sent in fresh:
            headers, body = self._twilio.status_callback(sent["sid"], "delivered")
            events.append(InboundEvent(InboundKind.DELIVERY_REPORT, "sms", body, headers))
        self._came_back["status callbacks"] += len(events)
        return events

    # -- what the servers received -----------------------------------------------------------
    def tallies(self) -> tuple[ServerTally, ...]:
        """What each local server received (none with the outbox)."""
        out: list[ServerTally] = []
        if self._mail is not None:
            sample: tuple[tuple[str, str], ...] = ()
            if self._mail.first is not None:
                mail = email.message_from_bytes(self._mail.first, policy=email.policy.default)
                sample = tuple((h, " ".join(str(mail[h]).split())) for h in _SAMPLE_HEADERS if mail[h])
            out.append(
                ServerTally(
                    Channel.EMAIL, "smtp", self._smtp_address, self._mail.received, self._mail.folder, sample
                )
            )
        if self._twilio is not None and self._sms_record is not None:
            sample = ()
            if self._twilio.accepted:
                first = json.loads(self._sms_record.read_text(encoding="utf-8").splitlines()[0])
                sample = (
                    ("From", first["From"]),
                    ("encoding", first["encoding"]),
                    ("segments", str(first["segments"])),
                    ("StatusCallback", self._twilio.accepted[0].get("StatusCallback", "")),
                )
            out.append(
                ServerTally(
                    Channel.SMS,
                    "sms",
                    self._twilio.base_url.removeprefix("http://"),
                    len(self._twilio.accepted),
                    self._sms_record,
                    sample,
                    dict(self._came_back),
                )
            )
        return tuple(out)


@contextlib.contextmanager
def local_channels(deliver: DemoDelivery, db: Path, settings: RunSettings) -> Iterator[LocalChannels]:
    """Start the local servers ``deliver`` needs and point the channels at them.

    :param deliver: the choice.
    :param db: the demo's database (the servers write beside it).
    :param settings: the demo's run settings.
    :returns: (in a ``with`` block) the :class:`LocalChannels`; the servers stop at its end.
    :raises ConfigurationError: what ``deliver`` needs is not installed.
    """
    require_installed(deliver)
    plugins = dict(settings.channel_plugins)
    config = {name: dict(values) for name, values in settings.channel_config.items()}
    channels = LocalChannels(deliver, settings)
    with contextlib.ExitStack() as stack:
        if deliver.smtp:
            from aiosmtpd.controller import Controller

            folder = db.parent / f"{db.stem}-smtp"
            _clear(folder, maildir=True)
            handler = _MaildirHandler(folder)
            port = _free_port()
            controller = Controller(handler, hostname="127.0.0.1", port=port)
            controller.start()
            stack.callback(controller.stop)
            channels._mail = handler
            channels._smtp_address = f"127.0.0.1:{port}"
            plugins[Channel.EMAIL] = "smtp"
            config["smtp"] = {"host": "127.0.0.1", "port": str(port), "from": SMTP_SENDER, "timeout": "10"}
            # the plugins are distributions of their own: imported by name, typed as modules
            channels.plugins["smtp"] = importlib.import_module("carecollect_smtp")
        if deliver.sms:
            import secrets

            serve = importlib.import_module("carecollect_sms.testing_server").serve
            record = db.parent / f"{db.stem}-sms.jsonl"
            _clear(record)
            token = secrets.token_hex(_SMS_TOKEN_BYTES)  # a fresh one per demo: nothing to leak
            twilio = stack.enter_context(serve(SMS_ACCOUNT, token, record=record))
            channels._twilio = twilio
            channels._sms_record = record
            plugins[Channel.SMS] = "sms"
            config["sms"] = {
                "account_sid": SMS_ACCOUNT,
                "auth_token": token,
                "from": SMS_SENDER,
                "base_url": twilio.base_url,
                "status_callback": _SMS_STATUS_URL,
                "inbound_url": _SMS_INBOUND_URL,
                "timeout": "10",
            }
            channels.plugins["sms"] = importlib.import_module("carecollect_sms")
        channels.settings = attrs.evolve(settings, channel_plugins=plugins, channel_config=config)
        yield channels
