"""The plugin's own records (mandates, collections, idempotency keys, files), kept in one JSON file.

A bank has no API for a direct-debit creditor to ask "which mandates do I
hold, which debits did I send": the creditor keeps that book. This module
keeps it in ``<folder>/sepa-state.json``, written atomically (a temporary
file, flushed, renamed over the old one), so a crash leaves the old book or
the new one, never half of either. One process at a time uses a folder (the
daily run holds its lock while it charges and reads bank files).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from pathlib import Path
from typing import Any

import attrs
from carecollect.channels import Channel
from carecollect.money import Money

from .mandates import Amendment, MandateKind, SepaMandate, SequenceType
from .pain008 import write_atomically

__all__ = ["Collection", "CollectionStatus", "SepaState"]


class CollectionStatus(enum.Enum):
    """Where one debit stands."""

    #: Announced to the patient, waiting for its file.
    SCHEDULED = "scheduled"
    #: In a pain.008 file handed to the bank.
    SUBMITTED = "submitted"
    #: Credited to the creditor (camt.054/053).
    SETTLED = "settled"
    #: Rejected before settlement (pain.002).
    REJECTED = "rejected"
    #: Returned after settlement (camt.054/053).
    RETURNED = "returned"

    @property
    def failed(self) -> bool:
        """Rejected or returned: the money did not stay with the creditor."""
        return self in (CollectionStatus.REJECTED, CollectionStatus.RETURNED)


@attrs.frozen
class Collection:
    """One direct debit.

    :param end_to_end_id: the creditor's reference (``EndToEndId``; the provider reference).
    :param account_id: the carecollect account.
    :param mandate_reference: the mandate used.
    :param amount: the amount (EUR).
    :param due_on: the requested collection date.
    :param sequence: :class:`~carecollect_sepa.mandates.SequenceType` given when it was scheduled.
    :param notified_at: when the pre-notification went out.
    :param status: :class:`CollectionStatus`.
    :param file_id: the ``MsgId`` of the pain.008 that carries it.
    :param batch_id: its ``PmtInfId`` in that file.
    :param reason: the bank's reason code when it failed.
    :param notice_round: how many times it was announced (a missed cut-off re-dates and re-announces it).
    """

    end_to_end_id: str
    account_id: str
    mandate_reference: str
    amount: Money
    due_on: dt.date
    sequence: SequenceType
    notified_at: dt.datetime
    status: CollectionStatus = CollectionStatus.SCHEDULED
    file_id: str | None = None
    batch_id: str | None = None
    reason: str | None = None
    notice_round: int = 1
    amendment: Amendment | None = attrs.field(default=None, repr=False)


def _enc(value: Any) -> Any:
    if isinstance(value, Money):
        return {"minor": value.minor_units, "currency": value.currency}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Amendment):
        return attrs.asdict(value)
    return value


def _to_dict(obj: Any) -> dict[str, Any]:
    return {a.name: _enc(getattr(obj, a.name)) for a in attrs.fields(type(obj))}


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _mandate(d: dict[str, Any]) -> SepaMandate:
    return SepaMandate(
        **{
            **d,
            "kind": MandateKind(d["kind"]),
            "signed_on": dt.date.fromisoformat(d["signed_on"]),
            "last_collection_on": _date(d["last_collection_on"]),
            "revoked_on": _date(d["revoked_on"]),
            "amendment": Amendment(**d["amendment"]) if d["amendment"] else None,
            "notice_channel": Channel(d["notice_channel"]),
        }
    )


def _collection(d: dict[str, Any]) -> Collection:
    return Collection(
        **{
            **d,
            "amount": Money.from_minor(d["amount"]["minor"], d["amount"]["currency"]),
            "due_on": dt.date.fromisoformat(d["due_on"]),
            "sequence": SequenceType(d["sequence"]),
            "notified_at": dt.datetime.fromisoformat(d["notified_at"]),
            "status": CollectionStatus(d["status"]),
            "amendment": Amendment(**d["amendment"]) if d.get("amendment") else None,
        }
    )


@attrs.define
class SepaState:
    """The book the plugin keeps (mutable, shell side); :meth:`save` writes it atomically.

    :param path: the JSON file.
    """

    path: Path
    mandates: dict[str, SepaMandate] = attrs.field(factory=dict)
    collections: dict[str, Collection] = attrs.field(factory=dict)
    #: idempotency key -> [request, result as JSON]
    keys: dict[str, list[Any]] = attrs.field(factory=dict)
    #: pain.008 MsgId -> "pending|<created>" or "written|<created>"
    files: dict[str, str] = attrs.field(factory=dict)
    counter: int = 0
    #: a mandate reference replaced by an amendment -> the current one
    aliases: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def load(cls, path: Path) -> SepaState:
        """The book at ``path`` (an empty one when the file does not exist yet)."""
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            path,
            {k: _mandate(v) for k, v in data["mandates"].items()},
            {k: _collection(v) for k, v in data["collections"].items()},
            dict(data["keys"]),
            dict(data["files"]),
            int(data["counter"]),
            dict(data.get("aliases", {})),
        )

    def dumps(self) -> bytes:
        """The book as JSON (keys sorted: the same book is the same bytes)."""
        data = {
            "mandates": {k: _to_dict(v) for k, v in self.mandates.items()},
            "collections": {k: _to_dict(v) for k, v in self.collections.items()},
            "keys": self.keys,
            "files": self.files,
            "counter": self.counter,
            "aliases": self.aliases,
        }
        return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8")

    def save(self) -> None:
        """Write the book atomically (nothing is written when it did not change)."""
        data = self.dumps()
        if self.path.exists() and self.path.read_bytes() == data:
            return
        write_atomically(self.path, data)

    def mandate(self, reference: str) -> SepaMandate | None:
        """The mandate ``reference`` names, following amendments of the reference (``None``: unknown)."""
        return self.mandates.get(self.aliases.get(reference, reference))

    def next_number(self) -> int:
        """A new serial number for references."""
        self.counter += 1
        return self.counter
