"""The file outbox's ``.eml`` files: the standard e-mail of :func:`build_email`, parsed back."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from carecollect.channels import Channel
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.messaging import OutgoingMessage, ReceiptStatus

BODY = "Hei Ola,\n\nDin regning på 1\u00a0250,00\u00a0kr forfaller 2. april 2026.\n" * 9


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage) and not msg.defects
    return msg


@pytest.mark.parametrize(
    "kw",
    [
        {"subject": "Regning fra Legesenteret – påminnelse om betaling av faktura INV-00012345 " * 2},
        {"subject": "Your statement", "html": "<p>Hello <b>Ola</b> – 1\u00a0250,00\u00a0kr</p>\n" * 40},
        {"subject": "", "html": None, "opt_out_url": None},
        {"subject": "Счет", "body": "Ваша сметка е готова.\n", "language": "bg"},
    ],
)
def test_outbox_writes_the_standard_email(tmp_path: Path, kw: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "id": "MSG-1",
        "channel": Channel.EMAIL,
        "recipient": "ola.nordmann@example.no",
        "body": BODY,
        "language": "nb",
        "opt_out_url": "https://portal.example.org/stop",
        **kw,
    }
    message = OutgoingMessage(**fields)  # type: ignore[arg-type]
    channel = OUTBOX.create({"folder": str(tmp_path)})
    receipt = channel.send(message)
    assert receipt.provider_message_id == "MSG-1.eml"
    raw = (tmp_path / "MSG-1.eml").read_bytes()
    raw.decode("ascii")  # 7-bit clean
    mail = _parse(raw)
    assert mail["Subject"] == message.subject
    assert mail["To"] == message.recipient
    assert mail["From"] == "carecollect outbox <outbox@outbox.carecollect.invalid>"
    assert mail["Date"] and mail["Date"].datetime.tzinfo is not None
    assert mail["Message-ID"].startswith("<MSG-1.") and mail["Message-ID"].endswith(
        "@outbox.carecollect.invalid>"
    )
    assert mail["Content-Language"] == message.language
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == message.body
    if message.html:
        assert mail.get_content_type() == "multipart/alternative"
        assert mail.get_body(("html",)).get_content().replace("\r\n", "\n") == message.html
    if message.opt_out_url:
        assert f"<{message.opt_out_url}>" in mail["List-Unsubscribe"]
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert mail["List-Unsubscribe"].strip().startswith("<mailto:")
        assert mail["List-Unsubscribe-Post"] is None
    # written once: sending again leaves the file as it was
    channel.send(message)
    assert (tmp_path / "MSG-1.eml").read_bytes() == raw


def test_a_display_name_recipient_and_sender_setting(tmp_path: Path) -> None:
    message = OutgoingMessage(
        id="MSG-2", channel=Channel.EMAIL, recipient="Ola Nordmann <ola@example.no>", body="x"
    )
    channel = OUTBOX.create({"folder": str(tmp_path), "from": "Klinikk <faktura@klinikk.example>"})
    channel.send(message)
    msg = _parse((tmp_path / "MSG-2.eml").read_bytes())
    assert msg["To"] == "Ola Nordmann <ola@example.no>"
    assert msg["From"] == "Klinikk <faktura@klinikk.example>"


@pytest.mark.parametrize("recipient", ["not-an-address", "ola@example.no\r\nBcc: all@example.org"])
def test_an_address_no_email_can_carry_is_rejected_and_nothing_written(
    tmp_path: Path, recipient: str
) -> None:
    message = OutgoingMessage(id="MSG-3", channel=Channel.EMAIL, recipient=recipient, body="x")
    receipt = OUTBOX.create({"folder": str(tmp_path)}).send(message)
    assert receipt.status is ReceiptStatus.REJECTED
    assert recipient not in receipt.detail
    assert list(tmp_path.iterdir()) == []
