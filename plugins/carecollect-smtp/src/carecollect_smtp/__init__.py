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
``sessions``
    SMTP sessions kept open at the same time (default ``4``): the channel's
    ``concurrency``, the run hands it that many messages at once. ``1`` keeps the
    duplicate window (below) to one message.
``batch_size``
    messages the run hands over in one :meth:`~SMTPChannel.send_batch` call, sent
    one after the other on one session (default ``1``).
``messages_per_session``
    messages sent on one session before it is closed with ``QUIT`` and a fresh
    one opened (default ``100``; servers limit it, and a long session ties the
    run to one server of a pool).
``pipelining``
    ``"true"`` (the default) sends ``MAIL FROM``, ``RCPT TO`` and ``DATA`` of a
    message at once when the server offers ``PIPELINING`` (RFC 2920): two round
    trips to the server per message instead of four, which is what counts
    against a server across a network. ``"false"`` waits for each reply.

Connections are reused: a session (connect, ``EHLO``, ``STARTTLS``, login) is
opened once and carries many messages, each one ``MAIL FROM``/``RCPT TO``/``DATA``
(pipelined where the server offers it).
A refused recipient leaves the session usable (``RSET``); a session the server
dropped (or closed with ``421``) is opened again and the message in flight sent
once more on the fresh one. Plain SMTP cannot tell a message it already took from
the same message again, so that message may arrive twice: with ``sessions`` and
``batch_size`` at ``1`` no other message can.

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
import re
import smtplib
import ssl
import threading
import weakref
from collections.abc import Mapping, Sequence

import attrs
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.email import build_email, email_bytes, message_id_header
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

#: E-mail only, with an HTML alternative and an opt-out link; no delivery reports or replies;
#: four sessions at a time, one message per call (a channel built with other ``sessions`` or
#: ``batch_size`` settings declares those on its own ``capabilities``).
CAPABILITIES = ChannelCapabilities(
    channels=frozenset({Channel.EMAIL}), opt_out_link=True, html=True, batch_size=1, concurrency=4
)

#: Replies that mean the server closes the session: open a fresh one and send again.
_CLOSING = 421

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


def _count(settings: Mapping[str, str], name: str, default: int) -> int:
    raw = settings.get(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"the smtp channel's {name!r} setting must be a whole number of at least 1")
    return value


class _Session:
    """One open SMTP connection and how many messages it carried."""

    __slots__ = ("smtp", "sent")

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.sent = 0


class _Dropped(Exception):
    """The session ended under a message (a dropped connection, a ``421``): try a fresh one."""

    def __init__(self, code: int | None, text: object) -> None:
        super().__init__(code)
        self.code = code
        self.text = text


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
        self.sessions = _count(settings, "sessions", CAPABILITIES.concurrency)
        self.batch_size = _count(settings, "batch_size", CAPABILITIES.batch_size)
        self.messages_per_session = _count(settings, "messages_per_session", 100)
        self.pipelining = str(settings.get("pipelining", "true")).strip().lower() in _TRUE
        #: what the run honours: this channel's own sessions and batch size
        self.capabilities = attrs.evolve(CAPABILITIES, concurrency=self.sessions, batch_size=self.batch_size)
        self._sent: dict[str, Receipt] = {}
        self._idle: list[_Session] = []
        self._lock = threading.Lock()
        #: sessions opened so far (a figure for tests and the bench)
        self.connections = 0
        # a channel dropped without close() still closes its idle sockets (no QUIT)
        weakref.finalize(self, _close_idle, self._idle)

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

    def _payload(self, message: OutgoingMessage) -> bytes | email.message.EmailMessage:
        """What goes after ``DATA``: the bytes of :meth:`build`'s e-mail
        (:func:`~carecollect.messages.email.email_bytes`, the same bytes without the message
        object) when the envelope is plain ASCII; else the e-mail itself, which
        :meth:`smtplib.SMTP.send_message` writes with ``SMTPUTF8`` as the server allows.

        :raises ValidationError: a recipient or subject that is not a valid header.
        """
        if (self.envelope_from + email.utils.parseaddr(message.recipient)[1]).isascii():
            return email_bytes(
                message,
                sender=self.sender,
                at=dt.datetime.now(dt.UTC),
                reply_to=self.reply_to,
                message_id_domain=self.domain,
                unsubscribe_mailto=self.unsubscribe_mailto,
                one_click=self.one_click,
            )
        return self.build(message)

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

    def _open(self) -> _Session:
        """A fresh session: connected, greeted, upgraded and logged in as configured."""
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password.reveal())
        except BaseException:
            _discard(smtp)
            raise
        with self._lock:
            self.connections += 1
        return _Session(smtp)

    def _checkout(self) -> _Session:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _checkin(self, session: _Session) -> None:
        if session.sent >= self.messages_per_session:
            _quit(session.smtp)
            return
        with self._lock:
            if len(self._idle) < self.sessions:
                self._idle.append(session)
                return
        _quit(session.smtp)

    def close(self) -> None:
        """End every idle session with ``QUIT`` (sessions are opened again when needed)."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        for session in idle:
            _quit(session.smtp)

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send ``message`` over SMTP on a reused session; the same message id twice is sent once.

        :param message: an e-mail (any other channel is rejected).
        :returns: the :class:`~carecollect.plugins.messaging.Receipt` (see the module's documentation).
        :raises ConfigurationError: the login failed, or STARTTLS or AUTH is not offered.
        """
        return self.send_batch((message,))[0]

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        """Send ``messages`` one after the other on one session (opened again if the server drops it).

        :param messages: e-mails.
        :returns: one :class:`~carecollect.plugins.messaging.Receipt` per message, in order.
        :raises ConfigurationError: the login failed, or STARTTLS or AUTH is not offered.
        """
        receipts: list[Receipt] = []
        session: _Session | None = None
        try:
            for message in messages:
                receipt, session = self._send_on(session, message)
                receipts.append(receipt)
        finally:
            if session is not None:
                self._checkin(session)
        return receipts

    def _send_on(self, session: _Session | None, message: OutgoingMessage) -> tuple[Receipt, _Session | None]:
        """Send ``message`` on ``session`` (or a session from the pool); the session to go on with."""
        if message.id in self._sent:
            return self._sent[message.id], session
        if message.channel is not Channel.EMAIL:
            return Receipt(
                message.id, ReceiptStatus.REJECTED, detail="the smtp channel carries e-mail only"
            ), session
        try:
            mail = self._payload(message)
        except ValidationError:
            return Receipt(
                message.id, ReceiptStatus.REJECTED, detail="the recipient or subject is not a valid header"
            ), session
        for fresh in (False, True):
            if session is not None and session.sent >= self.messages_per_session:
                _quit(session.smtp)
                session = None
            try:
                if session is None:
                    session = self._open() if fresh else self._checkout()
                receipt = self._transaction(session, message, mail)
            except _Dropped as dropped:
                _discard(session.smtp if session is not None else None)
                session = None
                if not fresh:  # a session that carried messages may have timed out: once more, fresh
                    _log.info("smtp: session ended under message %s; sending on a fresh one", message.id)
                    continue
                return self._dropped(message, dropped), None
            except smtplib.SMTPAuthenticationError as exc:
                _discard(session.smtp if session is not None else None)
                raise ConfigurationError(
                    f"the smtp server {self.host} refused the login for the configured username "
                    f"(code {exc.smtp_code})"
                ) from None
            except smtplib.SMTPNotSupportedError as exc:
                _discard(session.smtp if session is not None else None)
                what = "STARTTLS" if "STARTTLS" in str(exc) else "AUTH"
                raise ConfigurationError(
                    f"the smtp server {self.host}:{self.port} does not offer {what}; check the settings"
                ) from None
            except (
                smtplib.SMTPConnectError
            ) as exc:  # the server would not talk to us: not the message's fault
                _log.info("smtp: message %s retry later (greeting %d)", message.id, exc.smtp_code)
                return Receipt(
                    message.id,
                    ReceiptStatus.RETRY_LATER,
                    detail=f"{self.host}:{self.port} refused the connection ({exc.smtp_code})",
                ), None
            except (smtplib.SMTPException, OSError) as exc:  # refused connections, timeouts
                _discard(session.smtp if session is not None else None)
                _log.info("smtp: message %s retry later (%s)", message.id, type(exc).__name__)
                return Receipt(
                    message.id,
                    ReceiptStatus.RETRY_LATER,
                    detail=f"could not reach {self.host}:{self.port} ({type(exc).__name__})",
                ), None
            return receipt, session
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self, session: _Session, message: OutgoingMessage, mail: bytes | email.message.EmailMessage
    ) -> Receipt:
        """``MAIL FROM``, ``RCPT TO``, ``DATA`` for ``message`` on ``session``.

        A refused recipient or sender answers the message and leaves the session usable (smtplib
        sends ``RSET``); a drop or a ``421`` raises :class:`_Dropped`.
        """
        try:
            to_addrs = [email.utils.parseaddr(message.recipient)[1]]
            if isinstance(mail, bytes) and self.pipelining and session.smtp.has_extn("pipelining"):
                _sendmail_pipelined(session.smtp, self.envelope_from, to_addrs[0], mail)
            elif isinstance(mail, bytes):
                session.smtp.sendmail(self.envelope_from, to_addrs, mail)
            else:
                session.smtp.send_message(mail, from_addr=self.envelope_from, to_addrs=to_addrs)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            if code == _CLOSING:
                raise _Dropped(code, text) from None
            session.sent += 1
            return self._answer(message, code, text)
        except smtplib.SMTPServerDisconnected as exc:
            raise _Dropped(None, exc) from None
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError):
            raise
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused
            if exc.smtp_code == _CLOSING:
                raise _Dropped(exc.smtp_code, exc.smtp_error) from None
            session.sent += 1
            return self._answer(message, exc.smtp_code, exc.smtp_error)
        except (ConnectionError, TimeoutError) as exc:  # reset, broken pipe, a server gone quiet
            raise _Dropped(None, exc) from None
        session.sent += 1
        receipt = Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=self.message_id(message))
        _log.info("smtp: message %s accepted as %s", message.id, receipt.provider_message_id)
        self._sent[message.id] = receipt
        return receipt

    def _dropped(self, message: OutgoingMessage, dropped: _Dropped) -> Receipt:
        if dropped.code is not None:
            return self._answer(message, dropped.code, dropped.text)
        _log.info("smtp: message %s retry later (connection dropped)", message.id)
        return Receipt(
            message.id,
            ReceiptStatus.RETRY_LATER,
            detail=f"{self.host}:{self.port} dropped the connection twice",
        )

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


#: a line of the message that starts with a full stop (doubled in the DATA text, RFC 5321 4.5.2)
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _rset(smtp: smtplib.SMTP) -> None:
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def _refused(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal, as :meth:`smtplib.SMTP.sendmail` does: a ``421`` closes the session, any
    other reply resets the transaction (``RSET``) and keeps it."""
    if code == _CLOSING:
        smtp.close()
    else:
        _rset(smtp)


def _sendmail_pipelined(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """:meth:`smtplib.SMTP.sendmail` of ``data`` to one recipient, with ``MAIL FROM``, ``RCPT TO``
    and ``DATA`` written at once and their replies read after (RFC 2920 ``PIPELINING``, for a
    server that offers it): two round trips instead of four. The same commands, the same
    refusals raised (``SMTPSenderRefused``, ``SMTPRecipientsRefused``, ``SMTPDataError``,
    ``SMTPServerDisconnected``), the session reset or closed as ``sendmail`` leaves it.
    """
    size = f" size={len(data)}" if smtp.has_extn("size") else ""
    smtp.send(
        f"mail FROM:{smtplib.quoteaddr(sender)}{size}\r\nrcpt TO:{smtplib.quoteaddr(recipient)}\r\ndata\r\n"
    )
    mail, rcpt, go = smtp.getreply(), smtp.getreply(), smtp.getreply()
    if go[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
        # the server took DATA after refusing the sender or the recipient (RFC 2920 says it
        # answers 554 then): end the empty message, which it has no one to deliver to
        smtp.send(b".\r\n")
        smtp.getreply()
    if mail[0] != 250:
        _refused(smtp, mail[0])
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if rcpt[0] not in (250, 251):
        _refused(smtp, rcpt[0])
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    if go[0] != 354:
        _refused(smtp, go[0])
        raise smtplib.SMTPDataError(go[0], go[1])
    text = _LEADING_DOT.sub(b"..", data)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    smtp.send(text + b".\r\n")
    code, answer = smtp.getreply()
    if code != 250:
        _refused(smtp, code)
        raise smtplib.SMTPDataError(code, answer)


def _quit(smtp: smtplib.SMTP) -> None:
    """End a session politely; a server already gone is fine."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        _discard(smtp)


def _close_idle(idle: list[_Session]) -> None:
    for session in idle:
        _discard(session.smtp)
    idle.clear()


def _discard(smtp: smtplib.SMTP | None) -> None:
    """Drop a session without a word (it is broken)."""
    if smtp is not None:
        try:
            smtp.close()
        except OSError:  # pragma: no cover - closing a socket hardly fails
            pass


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
