"""Standard e-mail: one :class:`email.message.EmailMessage` per rendered message.

:func:`build_email` is the one place a carecollect e-mail is put together; the
file outbox (:mod:`carecollect.plugins.builtin.outbox`) writes what it builds as
``.eml`` files (through :func:`email_bytes`: the same bytes, without the message object)
and the SMTP plugin (``carecollect-smtp``) sends it. It sets:

* ``From``, ``To``, ``Reply-To`` (optional), ``Date`` (the instant passed in)
  and ``Subject`` (the renderer's subject, which is checked to carry no health
  information; a line break in it is refused, never folded into a new header);
* ``Message-ID`` derived from the carecollect message id (:func:`message_id_header`),
  so every attempt at one message carries the same id and a bounce or reply
  can be matched to it;
* ``List-Unsubscribe`` with a ``mailto:`` address and the HTTPS opt-out page,
  and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 2369, RFC 8058:
  the one-click header is only sent with an HTTPS URI, as RFC 8058 requires);
* ``Content-Language`` and a ``multipart/alternative`` body, plain text first and
  HTML second (RFC 2046: the richer part last), both UTF-8.

The message is 7-bit clean, so it passes any SMTP server, with or without
``8BITMIME``: ASCII text stays as it is, other text is quoted-printable or base64
(whichever is shorter: German and Norwegian text comes out quoted-printable,
Bulgarian base64), and non-ASCII headers are RFC 2047 encoded words.

>>> import datetime as dt
>>> from carecollect.channels import Channel
>>> from carecollect.plugins.messaging import OutgoingMessage
>>> msg = OutgoingMessage(id="step_INV-1_statement-1_email", channel=Channel.EMAIL,
...     recipient="ola@example.no", subject="Påminnelse om regning INV-1", body="Hei!\\n",
...     html="<p>Hei!</p>", language="nb", opt_out_url="https://portal.example.no/stopp")
>>> mail = build_email(msg, sender="Legesenteret <faktura@legesenteret.example>",
...     at=dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc))
>>> mail["Message-ID"]
'<step_INV-1_statement-1_email.c88ca69aad55@legesenteret.example>'
>>> mail["List-Unsubscribe"]
'<mailto:faktura@legesenteret.example?subject=unsubscribe%20step_INV-1_statement-1_email>, <https://portal.example.no/stopp>'
>>> mail["List-Unsubscribe-Post"], mail.get_content_type()
('List-Unsubscribe=One-Click', 'multipart/alternative')
>>> mail["Date"]
'Mon, 02 Mar 2026 09:30:00 +0000'
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.contentmanager
import email.errors
import email.headerregistry
import email.message
import email.policy
import email.utils
import functools
import hashlib
import re
import urllib.parse
from typing import Any

from ..channels import Channel
from ..errors import ValidationError
from ..plugins.messaging import OutgoingMessage
from ..timekeeping import require_aware

__all__ = ["EMAIL_POLICY", "build_email", "email_bytes", "message_id_header", "unsubscribe_headers"]


class _Headers(email.headerregistry.HeaderRegistry):
    """The standard header registry, remembering what it parsed.

    A run writes thousands of e-mails whose headers mostly repeat (the sender, the subject of
    a purpose in a language, the parts' ``Content-Type``); parsing and folding headers is the
    costliest part of building an e-mail with the standard library. A parsed header is an
    immutable ``str``, so one parse serves every message with the same header, and the class
    for a header name is made once (the registry makes a new one on every lookup).
    """

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one registry for the module's lifetime
    def __getitem__(self, name: str) -> type[email.headerregistry.BaseHeader]:
        return super().__getitem__(name)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one registry for the module's lifetime
    def __call__(self, name: str, value: str) -> email.headerregistry.BaseHeader:
        return super().__call__(name, value)


class _UriListHeader(email.headerregistry.UnstructuredHeader, email.headerregistry.BaseHeader):
    """``List-Unsubscribe`` (RFC 2369): angle-bracketed URIs, folded between them, never as
    encoded words.

    The standard folding writes a URI longer than a line (a ``mailto:`` naming the message is)
    as RFC 2047 encoded words, which no mail client reads as a URI: one-click and mailto
    unsubscribing stop working. Here the header is one line when it fits, else each URI on a
    line of its own; a URI is never broken, so a line may pass 78 characters (RFC 5322 allows
    998; a longer one is left to the standard folding).
    """

    def fold(self, *, policy: email.policy.Policy) -> str:
        lines = _uri_list_lines(self.name, str(self), policy.max_line_length or 998)
        if lines is None:
            return str(super().fold(policy=policy))
        return ("," + policy.linesep).join(lines) + policy.linesep


def _uri_list_lines(name: str, value: str, max_line: int) -> list[str] | None:
    """The lines :class:`_UriListHeader` folds ``value`` to, without their ends (the first says
    ``Name: ``, each after the first follows a comma); ``None``: the standard folding."""
    one = f"{name}: {value}"
    if len(one) <= max_line:
        return [one]
    uris = value.split(", <")
    lines = [f"{name}: {uris[0]}", *(f" <{u}" for u in uris[1:])]
    if not value.startswith("<") or any(len(line) > 998 for line in lines):
        return None
    return lines


_FOLDED: dict[tuple[object, ...], Any] = {}


class _Policy(email.policy.EmailPolicy):
    """:data:`email.policy.SMTP` with 7-bit transfer encodings and folded headers remembered
    (the generators clone the policy, so the memory is keyed by what folding depends on)."""

    def _remembered(self, how: str, name: str, value: str) -> Any:
        key = (how, name, str(value), type(value), self.linesep, self.max_line_length, self.utf8)
        folded = _FOLDED.get(key)
        if folded is None:
            if len(_FOLDED) > 8192:
                _FOLDED.clear()
            fold = super().fold if how == "text" else super().fold_binary
            folded = _FOLDED[key] = fold(name, value)
        return folded

    def fold(self, name: str, value: str) -> str:
        return str(self._remembered("text", name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        return bytes(self._remembered("binary", name, value))


#: The policy every carecollect e-mail is built and written with: CRLF line ends, lines of at
#: most 78 characters, and 7-bit transfer encodings only (quoted-printable or base64 for text
#: that is not ASCII), so no server needs ``8BITMIME`` or ``SMTPUTF8``.
_HEADER_TYPES = _Headers()
_HEADER_TYPES.map_to_type("list-unsubscribe", _UriListHeader)
EMAIL_POLICY = _Policy(linesep="\r\n", cte_type="7bit", header_factory=_HEADER_TYPES)
_MAX_LINE: int = EMAIL_POLICY.max_line_length or 78

_STEM = re.compile(r"[^A-Za-z0-9._-]")


def message_id_header(message_id: str, domain: str) -> str:
    """The ``Message-ID`` of a carecollect message: the same for every attempt at it.

    :param message_id: the carecollect message id.
    :param domain: the right-hand side (the sender's domain).
    :returns: ``<stem.digest@domain>``: the id made header-safe (at most 64 characters) and
        12 hex digits of its SHA-256, so two ids that read the same once made safe still differ.
    :raises ValidationError: a domain that is not a plain host name.

    >>> message_id_header("a/b", "clinic.example")
    '<a_b.c14cddc033f6@clinic.example>'
    """
    if not re.fullmatch(r"[A-Za-z0-9.-]+", domain or ""):
        raise ValidationError("e-mail", "message_id_domain", "a plain host name such as clinic.example")
    stem = _STEM.sub("_", message_id)[:64]
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:12]
    return f"<{stem}.{digest}@{domain}>"


def unsubscribe_headers(message_id: str, opt_out_url: str | None, mailto: str | None) -> dict[str, str]:
    """``List-Unsubscribe`` (and ``List-Unsubscribe-Post`` with an HTTPS URL) for one message.

    :param message_id: the carecollect message id (named in the mailto subject, so an opt-out
        by mail can be matched to the message and so to the patient without the address).
    :param opt_out_url: the opt-out page; an HTTPS URL also allows one-click (RFC 8058).
    :param mailto: an address that takes opt-outs by mail.
    :returns: the headers; empty when there is neither.

    >>> unsubscribe_headers("M-1", "http://example.org/stop", None)
    {'List-Unsubscribe': '<http://example.org/stop>'}
    """
    uris = []
    if mailto:
        uris.append(f"<mailto:{mailto}?subject={urllib.parse.quote('unsubscribe ' + message_id)}>")
    if opt_out_url:
        uris.append(f"<{opt_out_url}>")
    if not uris:
        return {}
    headers = {"List-Unsubscribe": ", ".join(uris)}
    if opt_out_url and opt_out_url.lower().startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def _one_line(record: str, field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationError(record, field, "must be one line (a line break would start a new header)")
    return value


#: the forms of plain header values the policy folds as they are: one dot-atom address, a
#: Message-ID of dot-atom words, and text of printable ASCII words between single spaces
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PLAIN_MESSAGE_ID = re.compile(r"<[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")
_PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*")


def _plain_folded(name: str, value: str) -> bytes | None:
    """The bytes the policy folds header ``name: value`` to, for the plain values a run writes
    over and over with a part that differs per message; ``None``: parse and fold it.

    * ``To``: one dot-atom address that fits on a line: ``To: value``;
    * ``Message-ID`` of dot-atom words: on the header's line when it fits, else alone on the
      next line when it fits there, else on the header's line (up to 998 characters);
    * ``Subject``: printable ASCII words between single spaces, no encoded-word marker ``=?``,
      that fit on a line;
    * ``List-Unsubscribe`` of the same text: as :class:`_UriListHeader` folds it.

    Every line ends in CRLF. ``tests/test_messages_email.py`` holds each equal to the policy's.
    """
    one = len(name) + 2 + len(value)
    if name == "To":
        plain = one <= _MAX_LINE and _PLAIN_ADDRESS.fullmatch(value) is not None
    elif name == "Message-ID":
        if one <= 998 and _PLAIN_MESSAGE_ID.fullmatch(value):
            if one > _MAX_LINE and 1 + len(value) <= _MAX_LINE:
                return f"{name}:\r\n {value}\r\n".encode("ascii")
            return f"{name}: {value}\r\n".encode("ascii")
        return None
    elif name in ("Subject", "List-Unsubscribe"):
        if "=?" in value or not _PLAIN_TEXT.fullmatch(value):
            return None
        if name == "List-Unsubscribe":
            lines = _uri_list_lines(name, value, _MAX_LINE)
            return None if lines is None else (",\r\n".join(lines) + "\r\n").encode("ascii")
        plain = one <= _MAX_LINE
    else:
        return None
    return f"{name}: {value}\r\n".encode("ascii") if plain else None


#: headers a channel writes the same in every message (its settings, or a fixed value):
#: parsed once each, and with ``plain`` folded once
_SENDER_HEADERS = frozenset({"From", "Reply-To", "List-Unsubscribe-Post"})


def _header(name: str, value: str, plain: bool) -> tuple[str, Any]:
    """One header of :func:`_checked_headers`: as :data:`EMAIL_POLICY` stores it, or with
    ``plain`` the bytes it folds to where they are known without parsing (a plain value, or a
    value the channel's settings give, folded once)."""
    if plain:
        folded = _plain_folded(name, value)
        if folded is not None:
            return name, folded
        if name in _SENDER_HEADERS:
            return name, _folded_once(name, value)
    if name in _SENDER_HEADERS:
        return _stored_once(name, value)  # type: ignore[no-any-return]
    return EMAIL_POLICY.header_store_parse(name, value)


@functools.lru_cache(maxsize=64)
def _folded_once(name: str, value: str) -> bytes:
    """The bytes :data:`EMAIL_POLICY` folds a header of the channel's settings to (once)."""
    return bytes(EMAIL_POLICY.fold_binary(name, _stored_once(name, value)[1]))


@functools.lru_cache(maxsize=64)
def _address_of(sender: str) -> str:
    """The address of a ``From`` value (``"Clinic <billing@clinic.example>"``), parsed once."""
    return email.utils.parseaddr(sender)[1]


@functools.lru_cache(maxsize=64)
def _stored_once(name: str, value: str) -> Any:
    """``EMAIL_POLICY.header_store_parse(name, value)`` of a header a channel's settings give: the
    same sender in every message, parsed once (a header object is an immutable ``str``)."""
    return EMAIL_POLICY.header_store_parse(name, value)


def _checked_headers(
    message: OutgoingMessage,
    *,
    sender: str,
    at: dt.datetime,
    reply_to: str | None,
    message_id_domain: str | None,
    unsubscribe_mailto: str | None,
    one_click: bool,
    plain: bool = False,
) -> list[tuple[str, Any]]:
    """The e-mail's headers before its content, parsed as :data:`EMAIL_POLICY` stores them.

    With ``plain``, headers of the plain forms :func:`_plain_folded` knows are not parsed: they
    come as the bytes the policy folds them to, and such a ``To`` is an e-mail address by its form.

    :raises ValidationError: as :func:`build_email` says.
    """
    record = f"OutgoingMessage {message.id}"
    require_aware(at, record, "at")
    if message.channel is not Channel.EMAIL:
        raise ValidationError(record, "channel", f"build_email needs an e-mail, not {message.channel.value}")
    for field, value in (("sender", sender), ("recipient", message.recipient), ("subject", message.subject)):
        _one_line(record, field, value)
    _one_line(record, "reply_to", reply_to or "")
    address = _address_of(sender)
    if "@" not in address:
        raise ValidationError(record, "sender", "needs an address such as billing@clinic.example")
    domain = message_id_domain or address.rsplit("@", 1)[1]
    values = [("From", sender), ("To", message.recipient)]
    if reply_to:
        values.append(("Reply-To", reply_to))
    values.append(("Subject", message.subject))
    values.append(("Date", email.utils.format_datetime(at.astimezone(dt.UTC))))
    values.append(("Message-ID", message_id_header(message.id, domain)))
    mailto = address if unsubscribe_mailto is None else unsubscribe_mailto
    for name, value in unsubscribe_headers(message.id, message.opt_out_url, mailto).items():
        if name != "List-Unsubscribe-Post" or one_click:
            values.append((name, value))
    try:
        headers = [_header(name, value, plain) for name, value in values]
    except (ValueError, IndexError, email.errors.HeaderParseError):
        raise ValidationError(record, "headers", "the recipient or sender is not a valid address") from None
    to = headers[1][1]
    if not isinstance(to, bytes) and (
        not isinstance(to, email.headerregistry.AddressHeader)
        or not all("@" in a.addr_spec for a in to.addresses)
        or not to.addresses
    ):
        raise ValidationError(record, "recipient", "not an e-mail address")
    return headers


def _boundary(message: OutgoingMessage) -> str:
    # derived from the message id, so the same message gives the same bytes; "=_" never occurs in
    # base64 or quoted-printable text, and 24 hex digits of SHA-256 not by chance in a 7-bit part
    return "=_" + hashlib.sha256(message.id.encode("utf-8")).hexdigest()[:24]


#: a boundary of :func:`_boundary`'s form, standing in for every other
_BOUNDARY_FORM = "=_" + "0" * 24


@functools.cache
def _multipart_type() -> tuple[bytes, bytes]:
    """``Content-Type: multipart/alternative; boundary="..."`` as the policy folds it, before and
    after the boundary: folded once, for :data:`_BOUNDARY_FORM` (every boundary of that form, 24
    hex digits, folds alike; ``tests/test_messages_email.py`` holds them equal)."""
    folded = _fold("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY_FORM}"')
    before, after = folded.split(_BOUNDARY_FORM.encode("ascii"))
    return before, after


def build_email(
    message: OutgoingMessage,
    *,
    sender: str,
    at: dt.datetime,
    reply_to: str | None = None,
    message_id_domain: str | None = None,
    unsubscribe_mailto: str | None = None,
    one_click: bool = True,
) -> email.message.EmailMessage:
    """Build the standard e-mail for ``message``.

    :param message: an :attr:`~carecollect.channels.Channel.EMAIL` message.
    :param sender: the ``From`` address, optionally with a display name
        (``"Clinic <billing@clinic.example>"``).
    :param at: the ``Date`` (aware; the channel passes the moment it sends or writes).
    :param reply_to: an optional ``Reply-To`` address.
    :param message_id_domain: the right-hand side of the Message-ID (default: the sender's domain).
    :param unsubscribe_mailto: the address in the ``mailto:`` opt-out (default: the sender's
        address); ``""`` for none.
    :param one_click: ``False`` leaves out ``List-Unsubscribe-Post`` (for an opt-out page that
        does not take the RFC 8058 POST).
    :returns: the :class:`email.message.EmailMessage` (write it with ``bytes(mail)`` or
        ``mail.as_bytes()``; its policy is :data:`EMAIL_POLICY`).
    :raises ValidationError: not an e-mail, a sender without a domain, or a recipient,
        subject or address that is not a valid one-line header (naming the message by id).
    """
    headers = _checked_headers(
        message,
        sender=sender,
        at=at,
        reply_to=reply_to,
        message_id_domain=message_id_domain,
        unsubscribe_mailto=unsubscribe_mailto,
        one_click=one_click,
    )
    mail = email.message.EmailMessage(policy=EMAIL_POLICY)
    for name, value in headers:
        mail[name] = value
    mail.set_content(message.body, charset="utf-8")
    if message.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
        mail.set_boundary(_boundary(message))
    mail["Content-Language"] = message.language  # after the parts: make_alternative moves Content-*
    return mail


#: the standard library's choice of transfer encoding and the encoded text (7bit, quoted-printable
#: or base64, whichever the content manager takes); without it :func:`email_bytes` builds the
#: message object
_ENCODE_TEXT = getattr(email.contentmanager, "_encode_text", None)
_NEWLINES = re.compile(r"\r\n|\r|\n")
#: a part's header block by (subtype, transfer encoding), as the generator writes it
_PART_HEADERS: dict[tuple[str, str], bytes] = {}


_QP_LINE = _MAX_LINE  # what the content manager passes to body_encode


def _qp_pieces(line: str) -> list[str]:
    """One quoted line of a body as ``email.quoprimime.body_encode`` breaks it: pieces of at most
    :data:`_QP_LINE` characters, each but the last ending in a soft break ``=``, never splitting an ``=XX``,
    and a space or tab at the end of the line quoted (or moved past a soft break) as it does."""
    if len(line) <= _QP_LINE and not (line and line[-1] in " \t"):
        return [line]
    pieces = []
    start = 0
    laststart = len(line) - 1 - _QP_LINE
    while start <= laststart:
        stop = start + _QP_LINE - 1
        if line[stop - 2] == "=":
            pieces.append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            pieces.append(line[start:stop])
            start = stop - 1
        else:
            pieces.append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":
        room = start - laststart
        last = line[-1]
        if room >= 3:
            tail = f"={ord(last):02X}"
        elif room == 2:
            tail = last + "=\n"
        else:
            tail = f"=\n={ord(last):02X}"
        pieces.append(line[start:-1] + tail)
    else:
        pieces.append(line[start:])
    return pieces


def _encode_text(text: str) -> tuple[str, str]:
    """``email.contentmanager``'s choice and encoding of a UTF-8 text part under
    :data:`EMAIL_POLICY` (the same transfer encoding and the same text, lines ending in a line feed),
    with the quoted-printable body written at once: its bytes quoted in C, every line broken once
    (the standard library quotes byte by byte and encodes the first ten lines twice, once to
    choose the encoding). ``tests/test_messages_email.py`` holds the two equal."""
    assert _ENCODE_TEXT is not None
    lines = text.encode("utf-8").splitlines()
    if max(map(len, lines), default=0) <= _QP_LINE and text.isascii():
        return _ENCODE_TEXT(text, "utf-8", None, EMAIL_POLICY)  # type: ignore[no-any-return]
    sniffed = min(len(lines), 10)
    sniff_bytes = sum(map(len, lines[:sniffed])) + 2 * sniffed  # each line and its CRLF
    # base64 of the sniffed lines: 4 characters per 3 bytes and a newline (binascii.b2a_base64)
    base64_size = (sniff_bytes + 2) // 3 * 4 + 1
    whole = binascii.b2a_qp(b"\n".join(lines), istext=True).decode("ascii")
    if "=\n" not in whole and "=2E" not in whole:  # no line broken, no full stop quoted: as is
        if sum(map(len, whole.split("\n", sniffed)[:sniffed])) + sniffed > base64_size:
            return _ENCODE_TEXT(text, "utf-8", "base64", EMAIL_POLICY)  # type: ignore[no-any-return]
        return "quoted-printable", whole + "\n"
    quoted = _unbroken(whole).split("\n", sniffed)
    head = _broken("\n".join(quoted[:sniffed]))
    if len(head) + 1 > base64_size:
        return _ENCODE_TEXT(text, "utf-8", "base64", EMAIL_POLICY)  # type: ignore[no-any-return]
    if len(quoted) > sniffed:
        head += "\n" + _broken(quoted[sniffed])
    return "quoted-printable", head + "\n"


def _unbroken(whole: str) -> str:
    """``binascii.b2a_qp``'s text (``istext``), its lines as the body map quotes them, before
    any line is broken: its soft breaks taken out, a full stop it quoted (alone on a line) and a
    space or tab it quoted at a line's end given back (:func:`_qp_pieces` handles those).

    Quoted, ``=`` is ``=3D``: an ``=`` then a line end is only ever a soft break, and ``=2E``,
    ``=20`` and ``=09`` only ever a quoted full stop, space and tab (it never splits an ``=XX``).
    """
    whole = whole.replace("=\n", "")
    if "=2E" in whole:
        whole = whole.replace("=2E", ".")
    whole = whole.replace("=20\n", " \n").replace("=09\n", "\t\n")
    if whole.endswith(("=20", "=09")):
        whole = whole[:-3] + (" " if whole.endswith("=20") else "\t")
    return whole


def _broken(quoted: str) -> str:
    """Quoted lines broken as ``email.quoprimime.body_encode`` breaks them (:func:`_qp_pieces`):
    a line longer than a line may be, or ending in a space or tab; a part with none is left as it
    is without looking at its lines one by one."""
    lines = quoted.split("\n")
    if (
        max(map(len, lines)) <= _QP_LINE
        and " \n" not in quoted
        and "\t\n" not in quoted
        and not quoted.endswith((" ", "\t"))
    ):
        return quoted
    return "\n".join(
        [
            "\n".join(_qp_pieces(line)) if len(line) > _QP_LINE or line.endswith((" ", "\t")) else line
            for line in lines
        ]
    )


def _fold(name: str, value: str) -> bytes:
    return bytes(EMAIL_POLICY.fold_binary(name, EMAIL_POLICY.header_store_parse(name, value)[1]))


def _part(text: str, subtype: str) -> bytes:
    """A ``text/<subtype>`` part of a ``multipart/alternative`` message, as ``as_bytes`` writes it."""
    assert _ENCODE_TEXT is not None
    cte, payload = _encode_text(text)
    head = _PART_HEADERS.get((subtype, cte))
    if head is None:
        head = _fold("Content-Type", f'text/{subtype}; charset="utf-8"') + _fold(
            "Content-Transfer-Encoding", cte
        )
        if subtype == "html":  # add_alternative makes the part an EmailMessage, which says its MIME version
            head += _fold("MIME-Version", "1.0")
        head = _PART_HEADERS[subtype, cte] = head + b"\r\n"
    crlf = payload.replace("\n", "\r\n") if "\r" not in payload else _NEWLINES.sub("\r\n", payload)
    return head + crlf.encode("ascii", "surrogateescape")


def email_bytes(
    message: OutgoingMessage,
    *,
    sender: str,
    at: dt.datetime,
    reply_to: str | None = None,
    message_id_domain: str | None = None,
    unsubscribe_mailto: str | None = None,
    one_click: bool = True,
) -> bytes:
    """The bytes of :func:`build_email`'s e-mail (``build_email(...).as_bytes()``), written
    without building the message object: the headers parsed and folded by :data:`EMAIL_POLICY`,
    the parts encoded as the standard library's content manager encodes them, put together as its
    generator puts a ``multipart/alternative`` message together. The same bytes, at about half
    the cost (``tests/test_messages_email.py`` compares them).

    :param message: an :attr:`~carecollect.channels.Channel.EMAIL` message.
    :returns: the e-mail as written to a file or handed to an SMTP server.
    :raises ValidationError: as :func:`build_email`.

    Parameters as :func:`build_email`.
    """
    kw: dict[str, Any] = {
        "sender": sender,
        "at": at,
        "reply_to": reply_to,
        "message_id_domain": message_id_domain,
        "unsubscribe_mailto": unsubscribe_mailto,
        "one_click": one_click,
    }
    if not message.html or _ENCODE_TEXT is None:
        return build_email(message, **kw).as_bytes()
    headers = _checked_headers(message, **kw, plain=True)
    boundary = _boundary(message)
    out = [
        value if isinstance(value, bytes) else EMAIL_POLICY.fold_binary(name, value)
        for name, value in headers
    ]
    out.append(_fold("MIME-Version", "1.0"))
    before, after = _multipart_type()
    out.append(before + boundary.encode("ascii") + after)
    out.append(_fold("Content-Language", message.language))
    line = f"--{boundary}\r\n".encode("ascii")
    out += [b"\r\n", line, _part(message.body, "plain"), b"\r\n", line, _part(message.html, "html")]
    out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)
