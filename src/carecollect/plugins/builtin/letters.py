"""The ``letter`` message channel: printed letters in batches a print-and-mail house takes.

:meth:`LetterChannel.send` checks a letter (a postal address of the country's
form, a country with an envelope layout) and files it, once per message id, in
``<folder>/pending``. :meth:`LetterChannel.close_batch` (the daily run calls it
after sending) lays out every pending letter in print batches: per envelope
layout one PDF (:func:`~carecollect.messages.pdf.letters_pdf`, each letter from
a new sheet, the address in the window) and one manifest CSV, in
``<folder>/batches``:

===================  ====================================================
column               meaning
===================  ====================================================
``batch``            the batch id (also the PDF's and the CSV's name)
``sequence``         the letter's place in the batch, from 1
``message_id``       carecollect's message id (printed small in each page's footer)
``first_page``       the letter's first page in the PDF
``last_page``        its last page
``sheets``           sheets of paper, printed single-sided
``country``          ISO 3166 country of the address
``paper``            ``A4`` or ``Letter``
``envelope``         the envelope and window the layout is made for
``postage_class``    the postage class for the estimated weight
``weight_g``         estimated weight in grams (5 g a sheet, 5 g the envelope)
===================  ====================================================

A letter is in exactly one batch: the manifest is written last (as the batch's
commit), a pending letter already named in a manifest is dropped instead of
batched again, and batching holds a lock file, so a run killed midway or two
runs at once never print a letter twice.

A print house's report of a returned letter (moved, unknown) is a delivery report
(``{"id": <provider message id>, "state": "undeliverable", "at": ...}``): the run
marks the address undeliverable, as for an e-mail bounce.

Settings: ``folder`` (required); ``sender``, the letterhead lines separated by
``|`` or line breaks (default: the letterhead at the top of the letter's text);
``country``, for messages that do not name one; ``din_form``, ``A`` or ``B``
(German letters, default ``B``); ``pay_short``, a short address printed beside
the QR code.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ...channels import Channel
from ...errors import ConfigurationError, ValidationError
from ...messages.letters import LAYOUTS, Block, BlockKind, Letter, format_letter_date, postage_class
from ...timekeeping import require_aware
from ..hookspecs import hookimpl
from ..messaging import (
    ChannelCapabilities,
    DeliveryReport,
    DeliveryState,
    InboundReply,
    MessageChannelDescriptor,
    OutgoingMessage,
    Receipt,
    ReceiptStatus,
)
from .outbox import file_stem

__all__ = ["LETTERS", "MANIFEST_COLUMNS", "LetterChannel", "carecollect_message_channels"]

#: Letters only; a print house's returns come back as delivery reports.
CAPABILITIES = ChannelCapabilities(
    channels=frozenset({Channel.LETTER}), delivery_reports=True, deduplicates=True
)

#: The manifest's columns, in order.
MANIFEST_COLUMNS = (
    "batch",
    "sequence",
    "message_id",
    "first_page",
    "last_page",
    "sheets",
    "country",
    "paper",
    "envelope",
    "postage_class",
    "weight_g",
)


def _letter_record(letter: Letter) -> dict[str, Any]:
    data = attrs.asdict(letter, recurse=False)
    data["layout"] = letter.layout.key
    data["blocks"] = [
        {"kind": b.kind.value, "items": list(b.items), "rows": [list(r) for r in b.rows]}
        for b in letter.blocks
    ]
    return data


def _letter_from(data: Mapping[str, Any]) -> Letter:
    fields = dict(data)
    fields["layout"] = LAYOUTS[fields["layout"]]
    fields["blocks"] = tuple(
        Block(BlockKind(b["kind"]), tuple(b["items"]), tuple((r[0], r[1]) for r in b["rows"]))
        for b in fields["blocks"]
    )
    for key in ("sender", "recipient"):
        fields[key] = tuple(fields[key])
    return Letter(**fields)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` while batching (POSIX ``flock``; elsewhere no lock)."""
    with path.open("a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one batching process at a time, by configuration
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LetterChannel:
    """Files letters and lays them out in print batches.

    :param settings: see the module's documentation.
    :raises ConfigurationError: no folder, a bad ``din_form``, or fpdf2 and segno not installed.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str]) -> None:
        folder = settings.get("folder")
        if not folder:
            raise ConfigurationError(
                "the letter channel needs a 'folder' setting (pending letters and batches)"
            )
        try:
            import fpdf  # noqa: F401
            import segno  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "the letter channel needs fpdf2 and segno: `pip install carecollect[pdf]`"
            ) from None
        self.folder = Path(folder)
        self.pending = self.folder / "pending"
        self.batches = self.folder / "batches"
        for path in (self.pending, self.batches):
            path.mkdir(parents=True, exist_ok=True)
        raw = str(settings.get("sender") or "")
        self.sender = tuple(s.strip() for s in raw.replace("|", "\n").split("\n") if s.strip())
        self.country = settings.get("country") or None
        self.din_form = str(settings.get("din_form") or "B")
        if self.din_form.strip().upper() not in ("A", "B"):
            raise ConfigurationError("the letter channel's 'din_form' must be A or B (DIN 5008)")
        self.pay_short = settings.get("pay_short") or None
        self._done: set[str] | None = None

    def letter(self, message: OutgoingMessage) -> Letter:
        """The :class:`~carecollect.messages.letters.Letter` ``message`` becomes.

        :raises ValidationError: the message cannot be a letter (naming the field).
        """
        day = message.written_on or dt.datetime.now(dt.UTC).date()
        layout_country = message.country or self.country
        date_text = format_letter_date(day, message.language, (layout_country or "us")[:2])
        return Letter.from_message(
            message,
            date_text=date_text,
            sender=self.sender,
            country=self.country,
            din_form=self.din_form,
            pay_short=self.pay_short,
        )

    def send(self, message: OutgoingMessage) -> Receipt:
        """File ``message`` for the next batch; the same message id twice is filed once.

        :returns: ``ACCEPTED`` with the provider id ``letter-<id>``; ``REJECTED`` for a message
            that cannot be a letter (not a letter, an address that is not complete, a country
            without an envelope layout), naming the field.
        """
        stem = file_stem(message.id)
        provider_id = f"letter-{stem}"
        target = self.pending / f"{stem}.json"
        if target.exists() or self._batched(message.id):
            return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=provider_id)
        try:
            letter = self.letter(message)
        except ValidationError as exc:
            return Receipt(message.id, ReceiptStatus.REJECTED, detail=f"{exc.field}: {exc.problem}")
        partial = self.pending / f".{stem}.partial"
        partial.write_text(json.dumps(_letter_record(letter), ensure_ascii=False), encoding="utf-8")
        os.replace(partial, target)
        return Receipt(message.id, ReceiptStatus.ACCEPTED, provider_message_id=provider_id)

    def _manifests(self) -> list[Path]:
        return sorted(self.batches.glob("*.csv"))

    def _read_done(self) -> set[str]:
        done: set[str] = set()
        for manifest in self._manifests():
            with manifest.open(newline="", encoding="utf-8") as fh:
                done.update(row["message_id"] for row in csv.DictReader(fh))
        return done

    def _batched(self, message_id: str) -> bool:
        if self._done is None:  # read once per channel object; close_batch keeps it current
            self._done = self._read_done()
        return message_id in self._done

    def close_batch(self, now: dt.datetime) -> tuple[str, ...]:
        """Lay out every pending letter in batches: one PDF and one manifest per envelope layout.

        :param now: the batch time (aware; names the batch).
        :returns: the ids of the batches written (none when nothing is pending).
        """
        require_aware(now, "letter batch", "now")
        from ...messages.pdf import letters_pdf

        written: list[str] = []
        with _locked(self.folder / ".batch.lock"):
            done = self._read_done()
            groups: dict[str, list[tuple[Path, Letter]]] = {}
            for path in sorted(self.pending.glob("*.json")):
                letter = _letter_from(json.loads(path.read_text(encoding="utf-8")))
                if letter.message_id in done:  # batched by a run that stopped before tidying up
                    path.unlink()
                    continue
                groups.setdefault(letter.layout.key, []).append((path, letter))
            stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            for key, items in sorted(groups.items()):
                batch = f"{stamp}-{key}"
                n = 1
                while (self.batches / f"{batch}.csv").exists():
                    n += 1
                    batch = f"{stamp}-{key}-{n}"
                document, placed = letters_pdf([letter for _, letter in items])
                pdf_partial = self.batches / f".{batch}.pdf.partial"
                pdf_partial.write_bytes(document)
                os.replace(pdf_partial, self.batches / f"{batch}.pdf")
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(MANIFEST_COLUMNS)
                for seq, ((_, letter), pages) in enumerate(zip(items, placed, strict=True), start=1):
                    postage, grams = postage_class(letter.layout.country, pages.pages)
                    writer.writerow(
                        (
                            batch,
                            seq,
                            letter.message_id,
                            pages.first_page,
                            pages.last_page,
                            pages.pages,
                            letter.layout.country,
                            letter.layout.paper,
                            letter.layout.envelope,
                            postage,
                            grams,
                        )
                    )
                csv_partial = self.batches / f".{batch}.csv.partial"
                csv_partial.write_text(out.getvalue(), encoding="utf-8")
                os.replace(csv_partial, self.batches / f"{batch}.csv")  # the batch's commit
                for path, _ in items:
                    path.unlink()
                done.update(letter.message_id for _, letter in items)
                written.append(batch)
            self._done = done
        return tuple(written)

    def parse_delivery_report(
        self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime
    ) -> DeliveryReport:
        """A print house's report: ``{"id": "letter-...", "state": "undeliverable"|"delivered", "at": ...}``.

        :raises ValidationError: not such a JSON object, or an unknown state.
        """
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict):
            raise ValidationError("letter report", "body", "a UTF-8 JSON object is expected")
        try:
            state = DeliveryState(data.get("state"))
        except ValueError:
            raise ValidationError(
                "letter report", "state", f"one of {[s.value for s in DeliveryState]}"
            ) from None
        at = dt.datetime.fromisoformat(str(data["at"])) if "at" in data else now
        require_aware(at, "letter report", "at")
        return DeliveryReport(str(data.get("id", "")), state, at, detail=str(data.get("detail", "")))

    def parse_inbound(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundReply:
        """Not offered: a patient answers a letter by phone, e-mail or the portal.

        :raises ConfigurationError: always (``inbound`` is not claimed).
        """
        raise ConfigurationError("the letter channel does not take inbound replies")


#: The descriptor the built-in plugin registers.
LETTERS = MessageChannelDescriptor(
    name="letter",
    capabilities=CAPABILITIES,
    factory=LetterChannel,
    description="Lays out letters for window envelopes in print batches (PDF and manifest CSV)",
)


@hookimpl
def carecollect_message_channels() -> list[MessageChannelDescriptor]:
    """The ``letter`` channel."""
    return [LETTERS]
