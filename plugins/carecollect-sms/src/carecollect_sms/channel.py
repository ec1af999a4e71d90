"""The SMS channel on Twilio's Messages API.

Sending is one documented request: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded ``To``, ``From`` (or ``MessagingServiceSid``), ``Body`` and
``StatusCallback``, with HTTP basic auth (the account SID and auth token, or an
API key SID and secret). Twilio answers ``201`` with the message's ``sid``.

What :meth:`TwilioSMSChannel.send` answers:

* ``ACCEPTED`` with Twilio's message SID (``SM...``), which its status
  callbacks name; the same carecollect message id is never sent twice: Twilio's
  Messages API takes no idempotency key, so the channel keeps each accepted
  message id with its SID (in memory, and in the ``journal`` SQLite file when
  one is configured, so a restarted process does not send it again);
* ``REJECTED`` for a message no retry can deliver: not an SMS, a recipient that
  is not a valid E.164 mobile number, more segments than allowed, or Twilio's
  ``400`` (21211 invalid number, 21614 not a mobile number, 21610 the recipient
  replied STOP to this sender, ...);
* ``RETRY_LATER`` on ``429`` (too many requests), a ``5xx`` answer, a timeout
  or a connection that failed.

A refused login (``401``/``403``), an unknown account (``404``) or a sender the
recipient's country does not allow raise :class:`~carecollect.errors.ConfigurationError`.

Status callbacks and incoming messages are Twilio's form-encoded webhooks,
checked against ``X-Twilio-Signature`` (:mod:`carecollect_sms.signature`) with the
URL they were configured with (``status_callback``, ``inbound_url``); a missing
or wrong signature raises :class:`~carecollect.plugins.providers.WebhookSignatureInvalid`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sqlite3
import urllib.parse
import weakref
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import phonenumbers
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.checks import sms_segments
from carecollect.plugins.messaging import (
    ChannelCapabilities,
    DeliveryReport,
    DeliveryState,
    InboundReply,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)
from carecollect.plugins.providers import WebhookSignatureInvalid
from carecollect.scrubbing import scrub_text

from .senders import choose_sender
from .signature import SIGNATURE_HEADER, signature_matches

__all__ = [
    "CAPABILITIES",
    "MAX_BODY_CHARACTERS",
    "UNDELIVERABLE_NUMBER_CODES",
    "TwilioSMSChannel",
    "resolve_secret",
]

#: Twilio's limit on a message body, in characters.
MAX_BODY_CHARACTERS = 1600

#: SMS only, Twilio's body limit, status callbacks and incoming messages. No opt-out link is
#: added: an SMS's opt-out is the reply keyword its text names (``STOP``, ``STOPP``, ``СТОП``).
CAPABILITIES = ChannelCapabilities(
    channels=frozenset({Channel.SMS}),
    max_length=MAX_BODY_CHARACTERS,
    opt_out_link=False,
    delivery_reports=True,
    inbound=True,
    concurrency=4,
)

#: Error codes of a ``failed`` or ``undelivered`` callback that mean the number itself cannot take
#: SMS (Twilio's error dictionary): 30003 unreachable destination handset, 30005 unknown destination
#: handset (the number does not exist), 30006 landline or unreachable carrier, 21211 invalid
#: number, 21614 not a mobile number. The run marks that number undeliverable; other failures
#: (a carrier filter, a full queue, an unknown error) are reported as pending, not as a bounce.
UNDELIVERABLE_NUMBER_CODES: frozenset[str] = frozenset({"30003", "30005", "30006", "21211", "21614"})

#: Twilio's ``400`` codes a retry cannot fix: the message is rejected.
_PERMANENT_HINTS = {
    "21211": "invalid number",
    "21614": "not a mobile number",
    "21610": "the recipient opted out of this sender (replied STOP)",
    "21612": "Twilio cannot route to this number",
    "21617": "body too long",
    "21408": "sending to this country is not enabled",
}
_PENDING = {"accepted", "scheduled", "queued", "sending", "sent", "receiving", "received"}

_log = logging.getLogger("carecollect.sms")


class _Secret:
    """Holds a secret so that no repr, ``vars()`` dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


def resolve_secret(settings: Mapping[str, str], name: str) -> str:
    """A setting's value, read from the environment when it is ``env:NAME``.

    :param settings: the channel's settings.
    :param name: the setting.
    :returns: the value (``""`` when not set).
    :raises ConfigurationError: ``env:NAME`` names a variable that is not set (the message names
        the variable, never a value).

    >>> resolve_secret({"auth_token": "env:CARECOLLECT_DOCTEST_UNSET"}, "auth_token")
    Traceback (most recent call last):
    ...
    carecollect.errors.ConfigurationError: the sms channel's 'auth_token' wants the environment ...
    """
    value = str(settings.get(name) or "")
    if value.startswith("env:"):
        var = value[4:]
        if var not in os.environ:
            raise ConfigurationError(
                f"the sms channel's {name!r} wants the environment variable {var}, which is not set"
            )
        return os.environ[var]
    return value


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookSignatureInvalid("a Twilio webhook body must be UTF-8 form data") from None
    return urllib.parse.parse_qsl(text, keep_blank_values=True)


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


class TwilioSMSChannel:
    """Sends each SMS through Twilio's Messages API.

    :param settings: ``account_sid`` and ``auth_token`` (required; ``env:NAME`` reads the
        environment), ``api_key_sid``/``api_key_secret`` (log in with an API key instead),
        ``from`` and ``from.<CC>`` (:mod:`carecollect_sms.senders`) or ``messaging_service_sid``,
        ``status_callback`` and ``inbound_url`` (the webhook URLs, as Twilio requests them),
        ``max_segments`` (default 4), ``journal`` (an SQLite file of sent message ids),
        ``base_url`` (default ``https://api.twilio.com``), ``timeout`` (seconds, default 10),
        ``connections`` (requests in flight at once on kept-alive connections, default 4: the
        channel's ``concurrency``), ``rate_limit`` (messages per second at most, as the sender's
        throughput allows; default none).
    :raises ConfigurationError: no account SID or auth token, neither sender nor messaging
        service, or a bad number.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.account_sid = str(settings.get("account_sid") or "")
        self._auth_token = _Secret(resolve_secret(settings, "auth_token"))
        if not self.account_sid or not self._auth_token.reveal():
            raise ConfigurationError("the sms channel needs 'account_sid' and 'auth_token' settings")
        self.api_key_sid = str(settings.get("api_key_sid") or "") or None
        self._api_key_secret = _Secret(resolve_secret(settings, "api_key_secret"))
        if self.api_key_sid and not self._api_key_secret.reveal():
            raise ConfigurationError("the sms channel has an 'api_key_sid' but no 'api_key_secret'")
        self.messaging_service_sid = str(settings.get("messaging_service_sid") or "") or None
        self._senders = {k: str(v) for k, v in settings.items() if k == "from" or k.startswith("from.")}
        if not self._senders and not self.messaging_service_sid:
            raise ConfigurationError("the sms channel needs a 'from' sender or a 'messaging_service_sid'")
        self.status_callback = str(settings.get("status_callback") or "") or None
        self.inbound_url = str(settings.get("inbound_url") or "") or None
        self.base_url = str(settings.get("base_url") or "https://api.twilio.com").rstrip("/")
        try:
            self.max_segments = int(settings.get("max_segments") or 4)
            self.timeout = float(settings.get("timeout") or 10)
        except ValueError:
            raise ConfigurationError(
                "the sms channel's 'max_segments' and 'timeout' must be numbers"
            ) from None
        self.journal = str(settings.get("journal") or "") or None
        if self.journal:
            with contextlib.closing(sqlite3.connect(self.journal)) as db, db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS sent "
                    "(message_id TEXT PRIMARY KEY, sid TEXT NOT NULL, at TEXT)"
                )
        self._sent: dict[str, Receipt] = {}
        try:
            connections = int(settings.get("connections") or CAPABILITIES.concurrency)
            rate = settings.get("rate_limit")
            rate_limit = float(rate) if rate not in (None, "") else None
        except ValueError:
            raise ConfigurationError(
                "the sms channel's 'connections' and 'rate_limit' must be numbers"
            ) from None
        try:
            #: what the run honours: this channel's own connections and rate limit
            self.capabilities = attrs.evolve(CAPABILITIES, concurrency=connections, rate_limit=rate_limit)
        except ValidationError as exc:
            raise ConfigurationError(
                f"the sms channel's {'connections' if exc.field == 'concurrency' else exc.field!r} "
                "setting must be positive"
            ) from None
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        """One client for every request: its connections are kept alive and shared by the threads
        the run sends from (closed when the channel is dropped, or by :meth:`close`)."""
        n = self.capabilities.concurrency
        client = httpx.Client(
            timeout=self.timeout, limits=httpx.Limits(max_connections=n, max_keepalive_connections=n)
        )
        weakref.finalize(self, client.close)
        return client

    def close(self) -> None:
        """Close the kept-alive connections (opened again by the next send)."""
        self._client.close()

    def __repr__(self) -> str:
        return f"TwilioSMSChannel(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    # -- secrets ---------------------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._auth_token.reveal(), self._api_key_secret.reveal()) if s)

    def _clean(self, text: object, message: OutgoingMessage) -> str:
        """A provider's answer without the recipient's number, the body or a secret."""
        value = str(text)
        for private in (message.recipient, message.body):
            if private:
                value = value.replace(private, "<redacted>")
        return scrub_text(value, self._secrets())[:300]

    # -- idempotency -----------------------------------------------------------------------------
    def _already_sent(self, message_id: str) -> Receipt | None:
        if message_id in self._sent:
            return self._sent[message_id]
        if self.journal:
            with contextlib.closing(sqlite3.connect(self.journal)) as db:
                row = db.execute("SELECT sid FROM sent WHERE message_id = ?", (message_id,)).fetchone()
            if row is not None:
                receipt = Receipt(
                    message_id,
                    ReceiptStatus.ACCEPTED,
                    provider_message_id=row[0],
                    detail="sent before (journal)",
                )
                self._sent[message_id] = receipt
                return receipt
        return None

    def _remember(self, receipt: Receipt) -> None:
        self._sent[receipt.message_id] = receipt
        if self.journal:
            with contextlib.closing(sqlite3.connect(self.journal)) as db, db:
                db.execute(
                    "INSERT OR IGNORE INTO sent (message_id, sid, at) VALUES (?, ?, ?)",
                    (receipt.message_id, receipt.provider_message_id, dt.datetime.now(dt.UTC).isoformat()),
                )

    # -- sending ---------------------------------------------------------------------------------
    def _region(self, number: str) -> str | None:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed) or number != phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        ):
            return None
        return phonenumbers.region_code_for_number(parsed)

    def send(self, message: OutgoingMessage) -> Receipt:
        """Send ``message`` through Twilio; the same message id twice is sent once.

        :param message: an SMS whose recipient is an E.164 number.
        :returns: the :class:`~carecollect.plugins.messaging.Receipt` (see the module's documentation).
        :raises ConfigurationError: bad credentials, unknown account, or no sender the
            recipient's country allows.
        """
        done = self._already_sent(message.id)
        if done is not None:
            return done
        if message.channel is not Channel.SMS:
            return Receipt(message.id, ReceiptStatus.REJECTED, detail="the sms channel carries SMS only")
        region = self._region(message.recipient)
        if region is None:
            return Receipt(
                message.id, ReceiptStatus.REJECTED, detail="the recipient is not a valid E.164 number"
            )
        encoding, segments = sms_segments(message.body)
        if len(message.body) > MAX_BODY_CHARACTERS or segments > self.max_segments:
            return Receipt(
                message.id,
                ReceiptStatus.REJECTED,
                detail=f"{segments} {encoding.value} segments, more than the {self.max_segments} allowed",
            )
        form: dict[str, str] = {"To": message.recipient, "Body": message.body}
        if self.messaging_service_sid and f"from.{region}" not in self._senders:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = choose_sender(region, self._senders)
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        login = (
            (self.api_key_sid, self._api_key_secret.reveal())
            if self.api_key_sid
            else (self.account_sid, self._auth_token.reveal())
        )
        url = f"{self.base_url}/2010-04-01/Accounts/{urllib.parse.quote(self.account_sid)}/Messages.json"
        try:
            if self._client.is_closed:
                self._client = self._new_client()
            response = self._client.post(url, data=form, auth=login)
        except httpx.HTTPError as exc:
            _log.info("sms: message %s retry later (%s)", message.id, type(exc).__name__)
            return Receipt(
                message.id, ReceiptStatus.RETRY_LATER, detail=f"could not reach Twilio ({type(exc).__name__})"
            )
        return self._answer(message, response, segments)

    def _answer(self, message: OutgoingMessage, response: httpx.Response, segments: int) -> Receipt:
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        code = str(data.get("code") or "")
        raw = {"http_status": response.status_code, "code": code or None, "segments": segments}
        if response.status_code in (200, 201) and data.get("sid"):
            receipt = Receipt(
                message.id,
                ReceiptStatus.ACCEPTED,
                provider_message_id=str(data["sid"]),
                detail=f"{data.get('status', 'queued')}, {segments} segment(s)",
                raw=raw | {"status": data.get("status")},
            )
            self._remember(receipt)
            _log.info("sms: message %s accepted as %s", message.id, receipt.provider_message_id)
            return receipt
        text = self._clean(data.get("message") or response.reason_phrase, message)
        if response.status_code in (401, 403, 404):
            raise ConfigurationError(
                f"Twilio refused the sms channel's account or credentials (HTTP {response.status_code}"
                f"{', code ' + code if code else ''}); check 'account_sid' and the auth settings"
            )
        if response.status_code == 429 or response.status_code >= 500:
            _log.info("sms: message %s retry later (HTTP %d)", message.id, response.status_code)
            return Receipt(
                message.id, ReceiptStatus.RETRY_LATER, detail=f"HTTP {response.status_code} {text}", raw=raw
            )
        hint = _PERMANENT_HINTS.get(code, "refused")
        _log.info("sms: message %s rejected (code %s)", message.id, code or response.status_code)
        return Receipt(
            message.id,
            ReceiptStatus.REJECTED,
            detail=f"{code or response.status_code} {hint}: {text}",
            raw=raw,
        )

    # -- webhooks --------------------------------------------------------------------------------
    def _verified(
        self, headers: Mapping[str, str], body: bytes, url: str | None, what: str
    ) -> dict[str, str]:
        if not url:
            raise ConfigurationError(
                f"the sms channel needs the {what} URL setting to check Twilio's signature"
            )
        params = _form(body)
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature or not signature_matches(self._auth_token.reveal(), url, params, signature):
            raise WebhookSignatureInvalid(f"the Twilio {what} webhook's {SIGNATURE_HEADER} does not match")
        return dict(params)

    def parse_delivery_report(
        self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime
    ) -> DeliveryReport:
        """A Twilio status callback as a :class:`~carecollect.plugins.messaging.DeliveryReport`.

        ``delivered`` is DELIVERED, ``read`` READ; ``failed`` or ``undelivered`` with an error
        code of :data:`UNDELIVERABLE_NUMBER_CODES` is UNDELIVERABLE (the run marks the number);
        any other state, or a failure for another reason, is PENDING with the code in the detail.

        :raises WebhookSignatureInvalid: a missing or wrong signature.
        :raises ConfigurationError: no ``status_callback`` setting.
        """
        data = self._verified(headers, body, self.status_callback, "status_callback")
        sid = data.get("MessageSid") or data.get("SmsSid") or ""
        status = (data.get("MessageStatus") or data.get("SmsStatus") or "").lower()
        code = data.get("ErrorCode") or ""
        if status == "delivered":
            state, detail = DeliveryState.DELIVERED, "delivered"
        elif status == "read":
            state, detail = DeliveryState.READ, "read"
        elif status in ("failed", "undelivered") and code in UNDELIVERABLE_NUMBER_CODES:
            state, detail = DeliveryState.UNDELIVERABLE, f"{status} {code}"
        elif status in ("failed", "undelivered") or status in _PENDING:
            state, detail = DeliveryState.PENDING, f"{status} {code}".strip()
        else:
            raise WebhookSignatureInvalid(f"unknown Twilio message status {status[:20]!r}")
        return DeliveryReport(sid, state, now, detail=detail)

    def parse_inbound(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundReply:
        """An incoming SMS (Twilio's messaging webhook) as an inbound reply.

        ``STOP``, ``STOPP``, ``СТОП`` and the other keywords of
        :data:`~carecollect.plugins.messaging.OPT_OUT_KEYWORDS` make it an opt-out, ``HELP``, ``HJELP``,
        ``HILFE``, ``ПОМОЩ`` a request for help (:func:`~carecollect.plugins.messaging.classify_reply`).

        :raises WebhookSignatureInvalid: a missing or wrong signature.
        :raises ConfigurationError: no ``inbound_url`` setting.
        """
        data = self._verified(headers, body, self.inbound_url, "inbound_url")
        return InboundReply(
            provider_message_id=data.get("MessageSid") or data.get("SmsSid") or "",
            channel=Channel.SMS,
            sender=data.get("From", ""),
            text=data.get("Body", ""),
            at=now,
        )
