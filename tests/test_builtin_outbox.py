"""The file outbox's ``.eml`` files: the fast writer gives what the MIME classes give."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from carecollect.builtin import outbox
from carecollect.builtin.outbox import OUTBOX, OutboxChannel
from carecollect.channels import Channel
from carecollect.messaging import RenderedMessage

BODY = "Hei Ola,\n\nDin regning på 1\u00a0250,00\u00a0kr forfaller 2. april 2026.\n" * 9


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage) and not msg.defects
    return msg


def _summary(msg: EmailMessage) -> tuple[object, ...]:
    # the MIME classes fold a long encoded subject after "Subject:", which reads back with a space
    headers = {k: str(v).strip() for k, v in msg.items() if k.lower() != "content-type"}
    parts = [
        (p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"], p.get_content())
        for p in (msg.iter_parts() if msg.is_multipart() else [msg])
    ]
    return msg.get_content_type(), headers, parts


@pytest.mark.parametrize(
    "kw",
    [
        {"subject": "Regning fra Legesenteret – påminnelse om betaling av faktura INV-00012345 " * 2},
        {"subject": "Your statement", "html": "<p>Hello <b>Ola</b> – 1\u00a0250,00\u00a0kr</p>\n" * 40},
        {"subject": "", "html": None, "opt_out_url": None},
        {"subject": "Счет", "body": "Ваша сметка е готова.\n"},
    ],
)
def test_fast_eml_equals_the_mime_classes(tmp_path: Path, kw: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "id": "MSG-1",
        "channel": Channel.EMAIL,
        "recipient": "ola.nordmann@example.no",
        "body": BODY,
        "language": "nb",
        "opt_out_url": "https://portal.example.org/stop",
        **kw,
    }
    message = RenderedMessage(**fields)  # type: ignore[arg-type]
    fast = outbox._eml(message, "MSG-1")
    assert fast is not None
    channel = OUTBOX.create({"folder": str(tmp_path)})
    assert isinstance(channel, OutboxChannel)
    name, written = channel._render(message)
    assert name == "MSG-1.eml" and written == fast
    # what the MIME classes write (the fast path turned off)
    slow_channel = _Classic({"folder": str(tmp_path / "classic")})
    _, classic = slow_channel._render(message)
    if message.html is None and len(message.subject) < 30:
        assert classic == fast  # byte for byte (a multipart's boundary is random; a long subject folds)
    assert _summary(_parse(fast)) == _summary(_parse(classic))
    assert _parse(fast)["Subject"] == message.subject


class _Classic(OutboxChannel):
    def _render(self, message: RenderedMessage) -> tuple[str, bytes]:
        original = outbox._eml
        outbox._eml = lambda *_: None  # type: ignore[assignment]
        try:
            return super()._render(message)
        finally:
            outbox._eml = original  # type: ignore[assignment]


def test_headers_that_need_encoding_go_through_the_mime_classes() -> None:
    message = RenderedMessage(
        id="MSG-2", channel=Channel.EMAIL, recipient="Ola Nordmann <ola@example.no>", body="x"
    )
    assert outbox._eml(message, "MSG-2") is None
    msg = _parse(OutboxChannel({"folder": "/tmp/unused-carecollect"})._render(message)[1])
    assert msg["To"] == "Ola Nordmann <ola@example.no>"
