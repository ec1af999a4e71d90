"""The ``letter`` channel: letters filed once, laid out in print batches with a manifest a print house takes."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.examples import context
from carecollect.messages.render import render
from carecollect.outreach import OutreachPurpose
from carecollect.plugins.builtin.letters import LETTERS, MANIFEST_COLUMNS, LetterChannel
from carecollect.plugins.messaging import DeliveryState, OutgoingMessage, ReceiptStatus
from carecollect.testing import MessageChannelContract

pytest.importorskip("fpdf")
NOW = dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC)
POPPLER = shutil.which("pdfinfo") is not None and shutil.which("pdftotext") is not None


def letter(
    message_id: str = "step_INV-1_statement-1_letter",
    country: str = "NO",
    language: str = "nb",
    recipient: str = "Kari Nordmann\nStorgata 1\n0155 Oslo",
) -> OutgoingMessage:
    jurisdiction = {"NO": "no", "DE": "de", "BG": "bg", "US": "us"}[country]
    ctx = context(OutreachPurpose.STATEMENT, jurisdiction)
    rendered = render(OutreachPurpose.STATEMENT, Channel.LETTER, language, ctx)
    return OutgoingMessage(
        id=message_id,
        channel=Channel.LETTER,
        recipient=recipient,
        body=rendered.text,
        subject=rendered.subject or "",
        language=rendered.language,
        country=country,
        reference=ctx.reference,
        pay_link=ctx.pay_link,
        written_on=ctx.today,
        account_id="ACC-9",
    )


@pytest.fixture
def channel(tmp_path: Path) -> LetterChannel:
    made = LETTERS.create({"folder": str(tmp_path / "letters")})
    assert isinstance(made, LetterChannel)
    return made


def _manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class TestLetterContract(MessageChannelContract):
    """The kit's channel tests: what was filed is read back from the pending folder."""

    @pytest.fixture
    def channel(self, tmp_path: Path) -> LetterChannel:
        made = LETTERS.create({"folder": str(tmp_path / "kit")})
        assert isinstance(made, LetterChannel)
        return made

    @pytest.fixture
    def message(self) -> OutgoingMessage:
        return letter()

    @pytest.fixture
    def read_back(self, channel: LetterChannel):
        def find(provider_id: str) -> bytes | None:
            path = channel.pending / f"{provider_id.removeprefix('letter-')}.json"
            if not path.exists():
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
            return " ".join(" ".join(b["items"]) for b in data["blocks"]).encode()

        return find

    @pytest.fixture
    def rejected_message(self) -> OutgoingMessage:
        return letter(message_id="MSG-NO-ADDRESS", recipient="Kari Nordmann")

    @pytest.fixture
    def delivery_report_payload(self):
        return lambda pid: ({}, json.dumps({"id": pid, "state": "delivered"}).encode())


def test_a_batch_is_one_pdf_and_one_manifest_per_envelope(channel: LetterChannel) -> None:
    sent = [
        channel.send(letter("L-NO-1")),
        channel.send(letter("L-NO-2", language="en")),
        channel.send(
            letter(
                "L-DE-1",
                country="DE",
                language="de",
                recipient="Erika Mustermann\nHeidestraße 17\n51147 Köln",
            )
        ),
        channel.send(
            letter(
                "L-US-1",
                country="US",
                language="en",
                recipient="Pat Doe\n1 Main Street\nSpringfield, IL 62701",
            )
        ),
    ]
    assert all(r.status is ReceiptStatus.ACCEPTED for r in sent)
    batches = channel.close_batch(NOW)
    assert batches == ("20260320T090000Z-de-b", "20260320T090000Z-no", "20260320T090000Z-us")
    rows = {b: _manifest(channel.batches / f"{b}.csv") for b in batches}
    no = rows["20260320T090000Z-no"]
    assert [r["message_id"] for r in no] == ["L-NO-1", "L-NO-2"]
    assert list(no[0]) == list(MANIFEST_COLUMNS)
    assert no[0]["first_page"] == "1" and int(no[1]["first_page"]) == int(no[0]["last_page"]) + 1
    assert {r["country"] for r in no} == {"NO"} and no[0]["envelope"] == "C5 or C6/5 left window"
    assert (
        no[0]["postage_class"].startswith("NO Brev")
        and int(no[0]["weight_g"]) == 5 * int(no[0]["sheets"]) + 5
    )
    assert rows["20260320T090000Z-us"][0]["paper"] == "Letter"
    assert rows["20260320T090000Z-de-b"][0]["postage_class"].startswith("DE ")
    assert list(channel.pending.iterdir()) == []
    assert channel.close_batch(NOW + dt.timedelta(hours=1)) == ()  # nothing pending, no batch


@pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")
def test_the_manifest_page_ranges_match_the_pdf(channel: LetterChannel) -> None:
    for n in range(3):
        channel.send(letter(f"L-{n}"))
    (batch,) = channel.close_batch(NOW)
    pdf = channel.batches / f"{batch}.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    rows = _manifest(channel.batches / f"{batch}.csv")
    assert int(rows[-1]["last_page"]) == pages
    for row in rows:
        first = subprocess.run(
            ["pdftotext", "-f", row["first_page"], "-l", row["first_page"], str(pdf), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert row["message_id"] in first and f"Side 1 av {row['sheets']}" in first


def test_a_letter_is_filed_once_and_batched_once(channel: LetterChannel) -> None:
    first = channel.send(letter("L-1"))
    assert channel.send(letter("L-1")) == first
    (batch,) = channel.close_batch(NOW)
    again = channel.send(letter("L-1"))  # a retry after the batch: not filed again
    assert again.provider_message_id == first.provider_message_id
    assert list(channel.pending.iterdir()) == []
    # a fresh channel object (another process) knows it from the manifests
    other = LETTERS.create({"folder": str(channel.folder)})
    other.send(letter("L-1"))
    assert list(channel.pending.iterdir()) == []
    assert [r["message_id"] for r in _manifest(channel.batches / f"{batch}.csv")] == ["L-1"]


def test_a_batch_interrupted_before_tidying_up_is_not_printed_twice(channel: LetterChannel) -> None:
    channel.send(letter("L-1"))
    saved = channel.pending / "L-1.json"
    content = saved.read_bytes()
    channel.close_batch(NOW)
    saved.write_bytes(content)  # as if the run died after the manifest but before removing the file
    channel.send(letter("L-2"))
    (second,) = channel.close_batch(NOW + dt.timedelta(days=1))
    assert [r["message_id"] for r in _manifest(channel.batches / f"{second}.csv")] == ["L-2"]
    assert list(channel.pending.iterdir()) == []


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"recipient": "Kari Nordmann"}, "recipient"),
        ({"country": "SE"}, "country"),
    ],
)
def test_a_message_that_cannot_be_a_letter_is_rejected_by_field(channel: LetterChannel, kw, field) -> None:
    receipt = channel.send(attrs.evolve(letter(), **kw))
    assert receipt.status is ReceiptStatus.REJECTED and receipt.detail.startswith(field)
    assert "Kari" not in receipt.detail
    assert list(channel.pending.iterdir()) == []


def test_other_channels_are_rejected(channel: LetterChannel) -> None:
    receipt = channel.send(attrs.evolve(letter(), channel=Channel.EMAIL))
    assert receipt.status is ReceiptStatus.REJECTED


def test_a_returned_letter_is_an_undeliverable_report(channel: LetterChannel) -> None:
    body = json.dumps(
        {
            "id": "letter-L-1",
            "state": "undeliverable",
            "detail": "moved, no forwarding address",
            "at": "2026-03-30T10:00:00+02:00",
        }
    ).encode()
    report = channel.parse_delivery_report({}, body, now=NOW)
    assert report.state is DeliveryState.UNDELIVERABLE and report.at.utcoffset() == dt.timedelta(hours=2)
    with pytest.raises(ValidationError):
        channel.parse_delivery_report({}, b"not json", now=NOW)
    with pytest.raises(ConfigurationError):
        channel.parse_inbound({}, b"{}", now=NOW)


def test_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="folder"):
        LETTERS.create({})
    with pytest.raises(ConfigurationError, match="din_form"):
        LETTERS.create({"folder": str(tmp_path), "din_form": "C"})
    made = LETTERS.create(
        {
            "folder": str(tmp_path),
            "sender": "Klinik am See|Seestraße 1|12345 Berlin",
            "din_form": "A",
            "country": "DE",
        }
    )
    assert isinstance(made, LetterChannel)
    built = made.letter(
        attrs.evolve(letter(), country=None, recipient="Erika Mustermann\nHeidestraße 17\n51147 Köln")
    )
    assert built.layout.key == "de-a" and built.sender[0] == "Klinik am See"
    assert built.return_line == "Klinik am See, Seestraße 1, 12345 Berlin"
