"""An e-mail message channel for carecollect that sends over SMTP with :mod:`smtplib`.

Each message is carecollect's standard e-mail
(:func:`carecollect.messages.email.build_email`: ``From``, ``To``, ``Date``, a
Message-ID derived from the message id, ``List-Unsubscribe`` with ``mailto:`` and
the HTTPS opt-out page, one-click ``List-Unsubscribe-Post``, text and HTML), the
very bytes the file outbox writes as ``.eml``.

Settings (all strings, as carecollect passes them):

``host``
    the SMTP server (required).
``port``
    default ``587`` with ``starttls``, else ``25``.
``starttls``
    ``"true"`` to upgrade the connection with STARTTLS (certificate checked)
    before logging in; a server that cannot is a configuration error.
``username`` / ``password``
    log in with these when given. The password never appears in a repr, a log
    line, a receipt or an error.
``from``
    the sender address (required).
``reply_to``
    an optional Reply-To address.
``message_id_domain``
    the right-hand side of Message-IDs (default: the sender's domain).
``one_click_unsubscribe``
    ``"true"`` (the default) adds ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
    (RFC 8058) when the opt-out URL is HTTPS; ``"false"`` when that page does not take the POST.
``unsubscribe_mailto``
    the address in the ``mailto:`` opt-out of ``List-Unsubscribe`` (default: the sender's
    address; empty for none).
``timeout``
    seconds to wait for the server (default ``30``).

What :meth:`SMTPChannel.send` answers:

* ``ACCEPTED`` with the Message-ID (``<...@domain>``) once the server took the
  message; the Message-ID is derived from the carecollect message id, so a
  retry of the same message carries the same Message-ID, and the same channel
  object does not send one message id twice;
* ``REJECTED`` when the server refuses for good (a ``5xx`` reply: unknown
  mailbox, policy), or the message is not an e-mail;
* ``RETRY_LATER`` on a ``4xx`` reply, a refused connection, a timeout or a
  dropped connection.

A failed login or a server without STARTTLS raises
:class:`~carecollect.errors.ConfigurationError`: retrying would not help.

>>> channel = SMTP.create({"host": "smtp.example.org", "starttls": "true", "username": "billing",
...                        "password": "s3cret-pw", "from": "billing@clinic.example"})
>>> channel
SMTPChannel(host='smtp.example.org', port=587, starttls=True, login=True)
>>> "s3cret" in repr(channel) or "s3cret" in str(vars(channel))
False
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Mapping

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.email import build_email, message_id_header
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.messaging import (
    ChannelCapabilities,
    DeliveryReport,
    InboundReply,
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)

__all__ = ["CAPABILITIES", "SMTP", "SMTPChannel", "carecollect_message_channels"]

#: E-mail only, with an HTML alternative and an opt-out link; no delivery reports or replies.
CAPABILITIES = ChannelCapabilities(channels=frozenset({Channel.EMAIL}), opt_out_link=True, html=True)

_log = logging.getLogger("carecollect.smtp")
_TRUE = {"1", "true", "yes", "on"}


class _Secret:
    """Holds a password so that no repr, ``vars()`` dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


def _flag(settings: Mapping[str, str], name: str) -> bool:
    return str(settings.get(name, "")).strip().lower() in _TRUE


class SMTPChannel:
    """Sends each :class:`~carecollect.plugins.messaging.OutgoingMessage` as one e-mail.

    :param settings: see the module's documentation.
    :raises ConfigurationError: no ``host`` or ``from``, a bad ``port`` or
        ``timeout``, or a password without a username.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.host = settings.get("host", "")
        self.sender = settings.get("from", "")
        if not self.host or not self.sender or "@" not in self.sender:
            raise ConfigurationError("the smtp channel needs 'host' and 'from' (a sender address) settings")
        self.starttls = _flag(settings, "starttls")
        try:
            self.port = int(settings.get("port") or (587 if self.starttls else 25))
            self.timeout = float(settings.get("timeout") or 30)
        except ValueError:
            raise ConfigurationError("the smtp channel's 'port' and 'timeout' must be numbers") from None
        self.username = settings.get("username") or None
        self._password = _Secret(settings.get("password") or "")
        if self._password.reveal() and not self.username:
            raise ConfigurationError("the smtp channel has a 'password' but no 'username'")
        self.reply_to = settings.get("reply_to") or None
        self.envelope_from = email.utils.parseaddr(self.sender)[1]
        if "@" not in self.envelope_from:
            raise ConfigurationError(
                "the smtp channel's 'from' setting needs an address (billing@clinic.example)"
            )
        self.domain = settings.get("message_id_domain") or self.envelope_from.rsplit("@", 1)[1]
        self.one_click = str(settings.get("one_click_unsubscribe", "true")).strip().lower() in _TRUE
        self.unsubscribe_mailto = settings.get("unsubscribe_mailto")
        self._sent: dict[str, Receipt] = {}

    def __repr__(self) -> str:
        return (
            f"SMTPChannel(host={self.host!r}, port={self.port}, starttls={self.starttls}, "
            f"login={self.username is not None})"
        )

    def message_id(self, message: OutgoingMessage) -> str:
        """The Message-ID ``message`` is sent with: the same for every attempt.

        :param message: the message.
        :returns: ``<id.hash@domain>``
            (:func:`~carecollect.messages.email.message_id_header`).
        """
        return message_id_header(message.id, self.domain)

    def build(self, message: OutgoingMessage, *, at: dt.datetime | None = None) -> email.message.EmailMessage:
        """The e-mail for ``message``: carecollect's standard e-mail
        (:func:`~carecollect.messages.email.build_email`) with this channel's sender.

        :param message: the message.
        :param at: its ``Date`` (default: now).
        :returns: the :class:`email.message.EmailMessage`.
        :raises ValidationError: a recipient or subject that is not a valid header.
        """
        return build_email(
            message,
            sender=self.sender,
            at=at or dt.datetime.now(dt.UTC),
            reply_to=self.reply_to,
            message_id_domain=self.domain,
            unsubscribe_mailto=self.unsubscribe_mailto,
            one_click=self.one_click,
        )

    def _clean(self, text: object, message: OutgoingMessage) -> str:
        """A server's answer without the recipient's address or the password."""
        value = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        for private in (message.recipient, self._password.reveal()):
            if private:
                value = value.replace(private, "<redacted>")
        return value[:300]

    def _answer(self, message: OutgoingMessage, code: int, text: object) -> Receipt:
        status = ReceiptStatus.REJECTED if 500 <= code < 600 else ReceiptStatus.RETRY_LATER
        _log.info("smtp: message %s %s (server code %d)", message.id, status.value, code)
        return Receipt(
            message.id, status, detail=f"{code} {self._clean(text, message)}", raw={"smtp_code": code}
        )

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send ``message`` over SMTP; the same message id twice is sent once.

        :param message: an e-mail (any other channel is rejected).
        :returns: the :class:`~carecollect.plugins.messaging.Receipt` (see the module's documentation).
        :raises ConfigurationError: the login failed, or STARTTLS or AUTH is not offered.
        """
        if message.id in self._sent:
            return self._sent[message.id]
        if message.channel is not Channel.EMAIL:
            return Receipt(message.id, ReceiptStatus.REJECTED, detail="the smtp channel carries e-mail only")
        try:
            mail = self.build(message)
        except ValidationError:
            return Receipt(
                message.id, ReceiptStatus.REJECTED, detail="the recipient or subject is not a valid header"
            )
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password.reveal())
                smtp.send_message(
                    mail, from_addr=self.envelope_from, to_addrs=[email.utils.parseaddr(message.recipient)[1]]
                )
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigurationError(
                f"the smtp server {self.host} refused the login for the configured username "
                f"(code {exc.smtp_code})"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            what = "STARTTLS" if "STARTTLS" in str(exc) else "AUTH"
            raise ConfigurationError(
                f"the smtp server {self.host}:{self.port} does not offer {what}; check the settings"
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            return self._answer(message, code, text)
        except smtplib.SMTPConnectError as exc:  # the server would not talk to us: not the message's fault
            _log.info("smtp: message %s retry later (greeting %d)", message.id, exc.smtp_code)
            return Receipt(
                message.id,
                ReceiptStatus.RETRY_LATER,
                detail=f"{self.host}:{self.port} refused the connection ({exc.smtp_code})",
            )
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused
            return self._answer(message, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts
            _log.info("smtp: message %s retry later (%s)", message.id, type(exc).__name__)
            return Receipt(
                message.id,
                ReceiptStatus.RETRY_LATER,
                detail=f"could not reach {self.host}:{self.port} ({type(exc).__name__})",
            )
        receipt = Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=mail["Message-ID"])
        _log.info("smtp: message %s accepted as %s", message.id, receipt.provider_message_id)
        self._sent[message.id] = receipt
        return receipt

    def parse_delivery_report(
        self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime
    ) -> DeliveryReport:
        """Not offered: bounces come back as e-mails to the sender's mailbox.

        :raises ConfigurationError: always (``delivery_reports`` is not claimed).
        """
        raise ConfigurationError("the smtp channel does not parse delivery reports")

    def parse_inbound(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundReply:
        """Not offered: replies arrive in the sender's mailbox.

        :raises ConfigurationError: always (``inbound`` is not claimed).
        """
        raise ConfigurationError("the smtp channel does not parse inbound replies")


#: The descriptor this plugin registers.
SMTP = MessageChannelDescriptor(
    name="smtp",
    capabilities=CAPABILITIES,
    factory=SMTPChannel,
    description="Sends e-mail over SMTP (text, HTML alternative, List-Unsubscribe)",
)


@hookimpl
def carecollect_message_channels() -> list[MessageChannelDescriptor]:
    """The ``smtp`` channel."""
    return [SMTP]
