"""Contact-centre records in a JSON-lines file (one record per line), for ``carecollect report``.

A vendor's telephony or ticketing system can append to this file; the demo
writes synthetic records to it. Fields are those of
:class:`~carecollect.contact_centre.ContactRecord`: enums by value, instants
as ISO-8601 with their offset. No names, numbers or text of the contact.

>>> import datetime as dt, io
>>> from carecollect.contact_centre import ContactChannel, ContactRecord, Direction, Topic
>>> t = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)
>>> rec = ContactRecord("C-1", "A-1", ContactChannel.PHONE, Direction.INBOUND, Topic.PAYMENT, t)
>>> record_from_json(record_to_json(rec)) == rec
True
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..contact_centre import ContactChannel, ContactOutcome, ContactRecord, Direction, Topic
from ..errors import ValidationError

__all__ = ["append_records", "read_records", "record_from_json", "record_to_json"]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def record_to_json(record: ContactRecord) -> dict[str, Any]:
    """A JSON-ready dict of ``record``.

    :param record: the contact record.
    """
    return {
        "contact_id": record.contact_id,
        "account_id": record.account_id,
        "channel": record.channel.value,
        "direction": record.direction.value,
        "topic": record.topic.value,
        "started_at": _iso(record.started_at),
        "answered_at": _iso(record.answered_at),
        "ended_at": _iso(record.ended_at),
        "outcome": record.outcome.value,
        "invoice_id": record.invoice_id,
        "queue": record.queue,
        "agent_id": record.agent_id,
    }


def _instant(data: dict[str, Any], key: str) -> dt.datetime | None:
    value = data.get(key)
    return None if value is None else dt.datetime.fromisoformat(str(value))


def record_from_json(data: dict[str, Any]) -> ContactRecord:
    """The :class:`~carecollect.contact_centre.ContactRecord` of a dict from :func:`record_to_json`.

    :param data: the dict.
    :raises ValidationError: a field is missing or wrong (named in the message).
    """
    where = f"ContactRecord {data.get('contact_id', '?')}"
    try:
        started = _instant(data, "started_at")
        if started is None:
            raise ValidationError(where, "started_at", "is required")
        return ContactRecord(
            contact_id=str(data["contact_id"]),
            account_id=str(data["account_id"]),
            channel=ContactChannel(data["channel"]),
            direction=Direction(data["direction"]),
            topic=Topic(data["topic"]),
            started_at=started,
            answered_at=_instant(data, "answered_at"),
            ended_at=_instant(data, "ended_at"),
            outcome=ContactOutcome(data.get("outcome", "pending")),
            invoice_id=data.get("invoice_id"),
            queue=data.get("queue"),
            agent_id=data.get("agent_id"),
        )
    except KeyError as exc:
        raise ValidationError(where, str(exc.args[0]), "is required") from None
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(where, "record", f"a value is not valid ({exc})") from None


def read_records(path: Path) -> list[ContactRecord]:
    """Every record in the file at ``path`` (an absent file holds none).

    :param path: the JSON-lines file.
    :raises ValidationError: a line is not a record (its line number is named).
    """
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                raise ValidationError(f"{path.name} line {number}", "record", "is not JSON") from None
            if not isinstance(data, dict):
                raise ValidationError(f"{path.name} line {number}", "record", "must be a JSON object")
            out.append(record_from_json(data))
    return out


def append_records(path: Path, records: Iterable[ContactRecord]) -> int:
    """Append ``records`` to the file at ``path``; returns how many were written.

    :param path: the JSON-lines file (created if missing).
    :param records: the records.
    """
    n = 0
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
            n += 1
    return n
