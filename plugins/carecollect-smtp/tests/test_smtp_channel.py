"""The smtp channel passes carecollect's conformance kit against a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import logging
import smtplib
import socket

import pytest
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError
from carecollect.plugins.dispatch import ChannelSender
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.messaging import ReceiptStatus
from carecollect.testing import MessageChannelContract
from carecollect.testing import factories as f
from carecollect.testing.fixtures import LoopbackSMTPServer

from carecollect_smtp import SMTP, SMTPChannel

SENDER = "billing@clinic.example"
PASSWORD = "pw-0123456789-secret"


class PickyServer(LoopbackSMTPServer):
    """Refuses ``nobody@`` for good (550) and ``busy@`` for now (451); keeps the rest."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: mailbox unknown"
        if address.startswith("busy@"):
            return f"451 4.2.0 <{address}>: mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class Pipelining:
    """Offers ``PIPELINING`` (RFC 2920) in its ``EHLO`` reply; aiosmtpd reads pipelined commands
    in order (it reads line by line) but does not say so itself."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class PipeliningServer(Pipelining, LoopbackSMTPServer):
    """A loopback server that offers ``PIPELINING``."""


class PickyPipeliningServer(Pipelining, PickyServer):
    """:class:`PickyServer`, offering ``PIPELINING``."""


class ClosingServer(LoopbackSMTPServer):
    """Takes two messages on a session; a third ``MAIL FROM`` gets ``421`` and the session ends
    (as servers that limit messages per connection do)."""

    def __init__(self):
        super().__init__()
        self.sessions = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        count = getattr(session, "carecollect_mails", 0) + 1
        session.carecollect_mails = count
        if count == 1:
            self.sessions += 1
        if count > 2:
            server.transport.close()
            return "421 4.7.0 too many messages on this connection"
        envelope.mail_from = address
        return "250 OK"


class ClosingPipeliningServer(Pipelining, ClosingServer):
    """:class:`ClosingServer`, offering ``PIPELINING``."""


def _started(server):
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def picky_server():
    yield from _started(PickyServer())


@pytest.fixture
def picky_pipelining_server():
    yield from _started(PickyPipeliningServer())


@pytest.fixture
def pipelining_server():
    yield from _started(PipeliningServer())


@pytest.fixture(params=[ClosingServer, ClosingPipeliningServer], ids=["plain", "pipelining"])
def closing_server(request):
    yield from _started(request.param())


def settings(server, **extra):
    return {"host": server.host, "port": str(server.port), "from": SENDER, "timeout": "5", **extra}


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class TestSMTPContract(MessageChannelContract):
    """The kit's channel tests, sending to a loopback server that refuses ``nobody@`` with 550."""

    @pytest.fixture
    def channel(self, picky_server):
        return SMTP.create(settings(picky_server))

    @pytest.fixture
    def read_back(self, picky_server):
        def find(message_id):
            for _sender, _rcpts, content in picky_server.messages:
                mail = parsed(content)
                if mail["Message-ID"] == message_id:
                    text = "\n".join(f"{k}: {v}" for k, v in mail.items())
                    return (text + "\n\n" + mail.get_body(("plain",)).get_content()).encode()
            return None

        return find

    @pytest.fixture
    def rejected_message(self):
        return f.make_message(id="MSG-NOBODY", recipient="nobody@example.org")


class TestSMTPContractPipelined(TestSMTPContract):
    """The kit's channel tests again, against a server that offers ``PIPELINING``."""

    @pytest.fixture
    def picky_server(self, picky_pipelining_server):
        return picky_pipelining_server


def test_found_through_the_entry_point():
    pm = make_plugin_manager(environ={})
    assert pm.message_channel("smtp") == SMTP


def test_sends_text_html_subject_and_unsubscribe_headers(smtp_server):
    channel = SMTP.create(settings(smtp_server, reply_to="help@clinic.example", one_click_unsubscribe="true"))
    message = f.make_message(html="<p>Your balance of <b>EUR 120.00</b> is due.</p>", language="de")
    receipt = channel.send(message)
    assert receipt.status is ReceiptStatus.ACCEPTED
    assert receipt.provider_message_id == channel.message_id(message)
    assert receipt.provider_message_id.endswith("@clinic.example>")
    ((mail_from, rcpts, content),) = smtp_server.messages
    assert mail_from == SENDER and rcpts == ["patient@example.org"]
    mail = parsed(content)
    assert mail["Subject"] == "Your statement"
    assert mail["Reply-To"] == "help@clinic.example"
    assert mail["List-Unsubscribe"].strip() == (
        "<mailto:billing@clinic.example?subject=unsubscribe%20MSG-1>, <https://example.org/opt-out/A-1>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Content-Language"] == "de"
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_body(("plain",)).get_content().strip() == message.body
    assert "<b>EUR 120.00</b>" in mail.get_body(("html",)).get_content()


def test_no_opt_out_url_no_unsubscribe_header(smtp_server):
    SMTP.create(settings(smtp_server)).send(f.make_message(opt_out_url=None))
    ((_, _, content),) = smtp_server.messages
    mail = parsed(content)
    assert mail["List-Unsubscribe"].strip().startswith("<mailto:") and mail["List-Unsubscribe-Post"] is None
    assert mail.get_content_type() == "text/plain"


def test_same_message_id_reaches_the_server_once(smtp_server):
    channel = SMTP.create(settings(smtp_server))
    first = channel.send(f.make_message())
    assert channel.send(f.make_message()) == first
    assert len(smtp_server.messages) == 1
    # a fresh channel (after a restart) sends it again, under the same Message-ID
    assert SMTP.create(settings(smtp_server)).send(f.make_message()) == first


def test_permanent_refusal_is_rejected_without_the_address(picky_server, caplog):
    channel = SMTP.create(settings(picky_server))
    with caplog.at_level(logging.INFO, logger="carecollect.smtp"):
        receipt = channel.send(f.make_message(recipient="nobody@example.org"))
    assert receipt.status is ReceiptStatus.REJECTED and receipt.provider_message_id is None
    assert receipt.detail.startswith("550") and receipt.raw == {"smtp_code": 550}
    assert "nobody@example.org" not in repr(receipt) + receipt.detail + caplog.text
    assert picky_server.messages == []


def test_temporary_refusal_is_retry_later_and_a_retry_can_succeed(picky_server):
    channel = SMTP.create(settings(picky_server))
    busy = f.make_message(recipient="busy@example.org")
    receipt = channel.send(busy)
    assert receipt.status is ReceiptStatus.RETRY_LATER and receipt.detail.startswith("451")
    assert "busy@example.org" not in receipt.detail
    # not remembered: the same id is tried again (here to an address the server now takes)
    assert channel.send(f.make_message(recipient="patient@example.org")).status is ReceiptStatus.ACCEPTED


def test_no_server_is_retry_later():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = SMTPChannel({"host": "127.0.0.1", "port": str(port), "from": SENDER, "timeout": "2"})
    receipt = channel.send(f.make_message())
    assert receipt.status is ReceiptStatus.RETRY_LATER and "127.0.0.1" in receipt.detail


def test_other_channels_are_rejected(smtp_server):
    receipt = SMTP.create(settings(smtp_server)).send(
        f.make_message(channel=Channel.SMS, recipient="+4790000000")
    )
    assert receipt.status is ReceiptStatus.REJECTED and smtp_server.messages == []


def test_header_injection_is_rejected(smtp_server):
    receipt = SMTP.create(settings(smtp_server)).send(
        f.make_message(recipient="patient@example.org\r\nBcc: all@example.org")
    )
    assert receipt.status is ReceiptStatus.REJECTED and smtp_server.messages == []


def test_starttls_the_server_does_not_offer_is_a_configuration_error(smtp_server):
    channel = SMTP.create(settings(smtp_server, starttls="true"))
    with pytest.raises(ConfigurationError, match="STARTTLS"):
        channel.send(f.make_message())


def test_login_failure_never_shows_the_password(smtp_server, caplog):
    channel = SMTP.create(settings(smtp_server, username="billing", password=PASSWORD))
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
        channel.send(f.make_message())
    text = str(info.value) + repr(channel) + str(vars(channel)) + caplog.text
    assert PASSWORD not in text and "billing" not in repr(channel)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"host": "smtp.example.org"},
        {"host": "h", "from": SENDER, "port": "x"},
        {"host": "h", "from": SENDER, "password": PASSWORD},
    ],
)
def test_bad_settings_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError) as info:
        SMTP.create(bad)
    assert PASSWORD not in str(info.value)


def test_default_ports():
    assert SMTPChannel({"host": "h", "from": SENDER}).port == 25
    assert SMTPChannel({"host": "h", "from": SENDER, "starttls": "yes"}).port == 587


@pytest.mark.parametrize(
    ("language", "subject", "body"),
    [
        ("en", "Your statement", "Your balance of $120.00 is due on April 2, 2026.\n"),
        ("de", "Ihre Rechnung – Zahlungserinnerung", "Bitte überweisen Sie 60,33 € bis zum 2. April 2026.\n"),
        (
            "nb",
            "Påminnelse om regning",
            "Beløpet på 1\u00a0250,00\u00a0kr forfaller 2. april 2026. Hilsen Ærlig Ørn\n",
        ),
        ("bg", "Напомняне за сметка", "Сумата от 120,00 лв. е дължима на 2 април 2026 г.\n"),
    ],
)
def test_every_language_arrives_intact_and_seven_bit_clean(smtp_server, language, subject, body):
    message = f.make_message(
        id=f"MSG-{language}", subject=subject, body=body, language=language, html=f"<p>{body}</p>"
    )
    channel = SMTP.create(settings(smtp_server) | {"from": "Klinikk Ås <billing@clinic.example>"})
    assert channel.send(message).status is ReceiptStatus.ACCEPTED
    ((mail_from, rcpts, content),) = smtp_server.messages
    assert mail_from == SENDER and rcpts == ["patient@example.org"]
    content.decode("ascii")  # no 8BITMIME needed
    mail = parsed(content)
    assert mail["Subject"] == subject and mail["Content-Language"] == language
    assert mail["From"].addresses[0].display_name == "Klinikk Ås"
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == body
    assert body.strip() in mail.get_body(("html",)).get_content()
    assert mail["Message-ID"] == channel.message_id(message)


@pytest.mark.parametrize("html", [None, "<p>Beløpet på <b>1 250,00 kr</b> forfaller.</p>"])
def test_the_server_receives_the_very_bytes_of_the_standard_email(smtp_server, html):
    channel = SMTP.create(settings(smtp_server) | {"from": "Klinikk Ås <billing@clinic.example>"})
    message = f.make_message(subject="Påminnelse om regning", language="nb", html=html)
    assert channel.send(message).status is ReceiptStatus.ACCEPTED
    ((_, _, content),) = smtp_server.messages
    at = parsed(content)["Date"].datetime
    # written without the message object (the envelope is ASCII), byte for byte what build() gives
    assert content == channel.build(message, at=at).as_bytes()


class _Writes:
    """Counts what the client writes to the server: one write per command or message text, or one
    for several commands sent at once."""

    def __init__(self, monkeypatch):
        self.count = 0
        send = smtplib.SMTP.send

        def counted(smtp, data):
            self.count += 1
            return send(smtp, data)

        monkeypatch.setattr(smtplib.SMTP, "send", counted)


@pytest.mark.parametrize("pipelining", ["true", "false"])
def test_a_server_offering_pipelining_gets_a_message_in_two_writes(
    pipelining_server, monkeypatch, pipelining
):
    channel = SMTP.create(settings(pipelining_server, sessions="1", pipelining=pipelining))
    messages = [f.make_message(id=f"MSG-{i}", recipient=f"p{i}@example.org") for i in range(5)]
    channel.send(messages[0])  # the session: connect, EHLO
    writes = _Writes(monkeypatch)
    receipts = [channel.send(m) for m in messages[1:]]
    assert {r.status for r in receipts} == {ReceiptStatus.ACCEPTED}
    # MAIL FROM, RCPT TO and DATA at once, then the text: two writes a message instead of four
    assert writes.count == (2 if pipelining == "true" else 4) * 4
    assert channel.connections == 1
    # each message arrives whole, byte for byte the standard e-mail
    assert [rcpts for _, rcpts, _ in pipelining_server.messages] == [[f"p{i}@example.org"] for i in range(5)]
    for (sender, _, content), message in zip(pipelining_server.messages, messages, strict=True):
        assert sender == SENDER
        assert content == channel.build(message, at=parsed(content)["Date"].datetime).as_bytes()


def test_a_line_starting_with_a_full_stop_arrives_as_written(pipelining_server, smtp_server):
    body = "Line one\n.\n..two\n.end"
    for server in (pipelining_server, smtp_server):
        SMTP.create(settings(server)).send(f.make_message(body=body, html=None))
        ((_, _, content),) = server.messages
        assert parsed(content).get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == body


def test_refusals_under_pipelining_keep_the_session(picky_pipelining_server):
    channel = SMTP.create(settings(picky_pipelining_server, sessions="1"))
    sent = [
        channel.send(f.make_message(id="M-1", recipient="nobody@example.org")),
        channel.send(f.make_message(id="M-2", recipient="busy@example.org")),
        channel.send(f.make_message(id="M-3", recipient="patient@example.org")),
    ]
    assert [r.status for r in sent] == [
        ReceiptStatus.REJECTED,
        ReceiptStatus.RETRY_LATER,
        ReceiptStatus.ACCEPTED,
    ]
    assert sent[0].detail.startswith("550") and sent[1].detail.startswith("451")
    # the refused transactions were reset, not the session: one connection, one message taken
    assert channel.connections == 1
    assert [rcpts for _, rcpts, _ in picky_pipelining_server.messages] == [["patient@example.org"]]


def test_sessions_are_reused_up_to_messages_per_session(smtp_server):
    channel = SMTP.create(settings(smtp_server, sessions="1", messages_per_session="3"))
    receipts = [channel.send(f.make_message(id=f"M-{i}", recipient=f"p{i}@example.org")) for i in range(10)]
    assert {r.status for r in receipts} == {ReceiptStatus.ACCEPTED}
    assert len(smtp_server.messages) == 10
    assert channel.connections == 4  # 3 + 3 + 3 + 1
    channel.close()


def test_a_session_the_server_closes_with_421_is_opened_again_and_the_message_sent_once(closing_server):
    channel = SMTP.create(settings(closing_server, sessions="1"))
    receipts = [channel.send(f.make_message(id=f"M-{i}", recipient=f"p{i}@example.org")) for i in range(5)]
    assert [r.status for r in receipts] == [ReceiptStatus.ACCEPTED] * 5
    # two messages a session: the third MAIL FROM of each session met 421 and went on a fresh one
    assert [rcpts for _, rcpts, _ in closing_server.messages] == [[f"p{i}@example.org"] for i in range(5)]
    assert closing_server.sessions == 3 and channel.connections == 3


def test_the_declared_pool_sends_every_message_once(pipelining_server):
    channel = SMTP.create(settings(pipelining_server))
    messages = [f.make_message(id=f"M-{i}", recipient=f"p{i}@example.org") for i in range(40)]
    with ChannelSender.for_channel(channel) as sender:
        results = list(sender.send_all(messages))
    assert [m.id for m, _ in results] == [m.id for m in messages]
    assert {r.status for _, r in results} == {ReceiptStatus.ACCEPTED}
    assert sorted(rcpts[0] for _, rcpts, _ in pipelining_server.messages) == sorted(
        m.recipient for m in messages
    )
    assert channel.connections <= channel.capabilities.concurrency == 4
