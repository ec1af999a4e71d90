"""The ``agency-files`` agency connector: placements as JSON files, the agency's answers read back.

A stand-in for a collection agency that a demo, a developer or a test can
play by hand. Everything sent to the agency is written to ``<folder>/outgoing``
and everything the agency reports is read from ``<folder>/incoming``:

* ``outgoing/placement-<placement id>.json``: one placement, only the data an
  agency needs (ids, amounts, dates, the debtor's contact details; a
  :class:`~carecollect.plugins.agencies.PlacementRequest` carries no clinical detail,
  and neither does the file);
* ``outgoing/notice-<notice id>.json``: a pre-placement notice (the placement
  it announces, and the earliest placement date);
* ``outgoing/recall-<placement id>.json``: a recall.

Writing the same id again changes nothing: the file is left as it is and the
same receipt comes back (a different request under an id already used is
refused, not overwritten). Files are written to a hidden ``.partial`` file
first and renamed, so the agency never reads half a file.

``incoming/*.json`` files each hold one JSON object or an array of objects;
``"type"`` says what it is::

    {"type": "status", "id": "U-1", "placement_id": "PL-1",
     "status": "in_progress", "at": "2026-03-05T10:00:00+00:00"}
    {"type": "remittance", "id": "R-1", "placement_id": "PL-1",
     "amount": "60.00", "currency": "EUR", "fee": "6.00",
     "collected_at": "2026-03-05T10:00:00+00:00"}

``status`` is one of :class:`~carecollect.plugins.agencies.AgencyAccountStatus`'s
values; ``fee`` is optional (what the agency kept); times are ISO 8601 with an
offset. Files are read in name order; an item reported twice (same ``type``
and ``id``) is returned once. A file that cannot be read is an error naming the
file and the field, never skipped: a skipped remittance is money the ledger
would not know about.

>>> import tempfile, datetime as dt, json, pathlib
>>> from carecollect.testing import factories as f
>>> folder = tempfile.mkdtemp()
>>> agency = AGENCY_FILES.create({"folder": folder})
>>> receipt = agency.place(f.make_placement_request())
>>> receipt.accepted, receipt.agency_reference, agency.place(f.make_placement_request()) == receipt
(True, 'agency-files:PL-1', True)
>>> sorted(p.name for p in (pathlib.Path(folder) / "outgoing").iterdir())
['placement-PL-1.json']
>>> _ = (pathlib.Path(folder) / "incoming" / "batch-1.json").write_text(json.dumps([
...     {"type": "remittance", "id": "R-1", "placement_id": "PL-1", "amount": "60.00",
...      "currency": "EUR", "collected_at": "2026-03-05T10:00:00+00:00"}]))
>>> [(r.placement_id, r.remittance.amount) for r in agency.read_remittances(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))]
[('PL-1', Money('60.00', 'EUR'))]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import CareCollectError, ConfigurationError, ValidationError
from ...money import ISO_4217, Money
from ...placements import Remittance
from ...scrubbing import scrub_text
from ...timekeeping import require_aware
from ..agencies import (
    AgencyAccountStatus,
    AgencyConnectorCapabilities,
    AgencyConnectorDescriptor,
    AgencyReceipt,
    AgencyRemittance,
    AgencyStatusUpdate,
    PlacementRequest,
    PrePlacementNotice,
)
from ..hookspecs import hookimpl

__all__ = [
    "AGENCY_FILES",
    "FORMAT_VERSION",
    "AgencyFilesConnector",
    "carecollect_agency_connectors",
    "placement_document",
]

#: The ``"format"`` written into every outgoing file; raised when the layout changes.
FORMAT_VERSION = 1

#: The countries of the built-in policy packs, any currency, notices, recalls and remittances.
CAPABILITIES = AgencyConnectorCapabilities(
    countries=frozenset({"US", "NO", "DE", "BG"}),
    currencies=frozenset(ISO_4217),
    pre_placement_notice=True,
    recall=True,
    remittances=True,
)

_NAME = "agency-files"


def _file_stem(identifier: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", identifier)
    if safe != identifier or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(identifier.encode()).hexdigest()[:8]}"
    return safe


def _money(value: Money) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency}


def placement_document(request: PlacementRequest) -> dict[str, Any]:
    """The JSON object written for a placement: what the agency needs, nothing clinical.

    :param request: the :class:`~carecollect.plugins.agencies.PlacementRequest`.
    :returns: a JSON-ready dict (``format``, ``type``, ids, ``jurisdiction``,
        ``total``, ``debtor`` and ``invoices``).

    >>> from carecollect.testing import factories as f
    >>> doc = placement_document(f.make_placement_request())
    >>> doc["total"], doc["invoices"][0]["invoice_id"], sorted(doc["debtor"])
    ({'amount': '120.00', 'currency': 'EUR'}, 'INV-1', ['country', 'email', 'id', 'language', 'name', 'phone', 'postal_address'])
    """
    debtor = request.debtor
    return {
        "format": FORMAT_VERSION,
        "type": "placement",
        "placement_id": request.placement_id,
        "account_id": request.account_id,
        "creditor_id": request.creditor_id,
        "jurisdiction": request.jurisdiction,
        "total": _money(request.amount),
        "debtor": {
            "id": debtor.id,
            "name": debtor.name,
            "postal_address": list(debtor.postal_address),
            "country": debtor.country,
            "language": debtor.language,
            "email": debtor.email,
            "phone": debtor.phone,
        },
        "invoices": [
            {
                "invoice_id": line.invoice_id,
                "open_balance": _money(line.open_balance),
                "issue_date": line.issue_date.isoformat(),
                "due_date": line.due_date.isoformat(),
                "first_service_date": (
                    line.first_service_date.isoformat() if line.first_service_date else None
                ),
            }
            for line in request.invoices
        ],
    }


def _encode(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


class AgencyFilesConnector:
    """Writes placements, notices and recalls to ``<folder>/outgoing``; reads ``<folder>/incoming``.

    :param settings: ``{"folder": path}`` (both sub-folders are created), or
        ``{"outgoing": path, "incoming": path}`` to put them apart.
    :raises ConfigurationError: neither a folder nor both sub-folders given.
    """

    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, str]) -> None:
        folder = settings.get("folder")
        outgoing = settings.get("outgoing") or (str(Path(folder) / "outgoing") if folder else None)
        incoming = settings.get("incoming") or (str(Path(folder) / "incoming") if folder else None)
        if not outgoing or not incoming:
            raise ConfigurationError(
                "the agency-files connector needs a 'folder' setting (or both 'outgoing' and 'incoming')"
            )
        self.outgoing = Path(outgoing)
        self.incoming = Path(incoming)
        self.outgoing.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"AgencyFilesConnector(outgoing={str(self.outgoing)!r}, incoming={str(self.incoming)!r})"

    # -- writing -----------------------------------------------------------------------------------

    def _write_once(self, name: str, document: Mapping[str, Any], what: str, key: str) -> AgencyReceipt:
        target = self.outgoing / name
        data = _encode(document)
        reference = f"{_NAME}:{key}"
        if target.exists():
            if target.read_bytes() != data:
                return AgencyReceipt(
                    False,
                    detail=f"{what} {key} was already sent with different data; use a new id",
                    raw={"file": name},
                )
        else:
            partial = self.outgoing / f".{name}.partial"
            partial.write_bytes(data)
            os.replace(partial, target)
        return AgencyReceipt(True, agency_reference=reference, raw={"file": name})

    def send_pre_placement_notice(self, notice: PrePlacementNotice) -> AgencyReceipt:
        """Write ``notice-<id>.json`` (the same notice id twice: written once).

        :param notice: the :class:`~carecollect.plugins.agencies.PrePlacementNotice`.
        :returns: an accepted receipt with reference ``agency-files:<notice id>``;
            a refusal if that id was already used for a different notice.
        """
        document = {
            "format": FORMAT_VERSION,
            "type": "pre_placement_notice",
            "notice_id": notice.id,
            "placement_not_before": notice.placement_not_before.isoformat(),
            "sent_at": notice.sent_at.isoformat(),
            "placement": placement_document(notice.request),
        }
        return self._write_once(f"notice-{_file_stem(notice.id)}.json", document, "notice", notice.id)

    def place(self, request: PlacementRequest) -> AgencyReceipt:
        """Write ``placement-<placement id>.json`` (the same placement id twice: written once).

        :param request: the :class:`~carecollect.plugins.agencies.PlacementRequest`.
        :returns: an accepted receipt with reference ``agency-files:<placement id>``;
            a refusal if that id was already placed with different data.
        """
        name = f"placement-{_file_stem(request.placement_id)}.json"
        return self._write_once(name, placement_document(request), "placement", request.placement_id)

    def recall(self, placement_id: str, *, reason: str, at: dt.datetime) -> AgencyReceipt:
        """Write ``recall-<placement id>.json`` for a placement this connector placed.

        :param placement_id: the placement.
        :param reason: why (scrubbed; say "dispute", never a clinical detail).
        :param at: when (aware).
        :returns: an accepted receipt (the same one again for a second recall);
            a refusal for a placement never placed here.
        :raises NaiveDatetime: ``at`` has no time zone.
        """
        require_aware(at, f"recall {placement_id}", "at")
        stem = _file_stem(placement_id)
        if not (self.outgoing / f"placement-{stem}.json").exists():
            return AgencyReceipt(False, detail=f"placement {placement_id} was never placed with this agency")
        target = self.outgoing / f"recall-{stem}.json"
        if target.exists():  # recalled already: the first recall stands
            return AgencyReceipt(True, agency_reference=f"{_NAME}:{placement_id}", raw={"file": target.name})
        document = {
            "format": FORMAT_VERSION,
            "type": "recall",
            "placement_id": placement_id,
            "reason": scrub_text(reason),
            "at": at.isoformat(),
        }
        return self._write_once(target.name, document, "recall", placement_id)

    # -- reading -----------------------------------------------------------------------------------

    def _items(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for path in sorted(self.incoming.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ValidationError(
                    f"agency-files incoming {path.name}", "file", "must be UTF-8 JSON"
                ) from None
            items = data if isinstance(data, list) else [data]
            for index, item in enumerate(items):
                where = f"agency-files incoming {path.name} item {index}"
                if not isinstance(item, dict):
                    raise ValidationError(where, "item", "must be a JSON object")
                if item.get("type") not in ("status", "remittance"):
                    raise ValidationError(where, "type", "must be 'status' or 'remittance'")
                if item["type"] != kind:
                    continue
                key = str(item.get("id", ""))
                if key in seen:
                    continue
                seen.add(key)
                found.append((where, item))
        return found

    @staticmethod
    def _field(where: str, item: Mapping[str, Any], name: str) -> str:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(where, name, "must be a non-empty string")
        return value

    @classmethod
    def _instant(cls, where: str, item: Mapping[str, Any], name: str) -> dt.datetime:
        text = cls._field(where, item, name)
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(where, name, "must be an ISO 8601 time with an offset") from None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(where, name, "must be an ISO 8601 time with an offset")
        return value

    def read_status_updates(self, since: dt.datetime) -> Sequence[AgencyStatusUpdate]:
        """The ``"status"`` items in ``incoming/`` dated after ``since``.

        :param since: an aware instant.
        :returns: the updates, in file order.
        :raises ValidationError: a file or item that cannot be read (named by file, item and field),
            or a naive ``since``.
        """
        require_aware(since, "agency-files", "since")
        updates = []
        for where, item in self._items("status"):
            try:
                status = AgencyAccountStatus(item.get("status"))
            except ValueError:
                raise ValidationError(
                    where, "status", f"one of {[s.value for s in AgencyAccountStatus]}"
                ) from None
            at = self._instant(where, item, "at")
            if at > since:
                updates.append(
                    AgencyStatusUpdate(
                        self._field(where, item, "id"), self._field(where, item, "placement_id"), status, at
                    )
                )
        return updates

    def read_remittances(self, since: dt.datetime) -> Sequence[AgencyRemittance]:
        """The ``"remittance"`` items in ``incoming/`` collected after ``since``.

        :param since: an aware instant.
        :returns: the remittances, in file order.
        :raises ValidationError: a file or item that cannot be read (named by file, item and field),
            or a naive ``since``.
        """
        require_aware(since, "agency-files", "since")
        remittances = []
        for where, item in self._items("remittance"):
            currency = self._field(where, item, "currency")
            try:
                amount = Money(self._field(where, item, "amount"), currency)
                fee = Money(str(item["fee"]), currency) if item.get("fee") is not None else None
            except CareCollectError as exc:
                raise ValidationError(where, "amount", str(exc)) from None
            collected_at = self._instant(where, item, "collected_at")
            if collected_at > since:
                remittance = Remittance(self._field(where, item, "id"), amount, collected_at, fee)
                remittances.append(AgencyRemittance(self._field(where, item, "placement_id"), remittance))
        return remittances


#: The descriptor the built-in plugin registers.
AGENCY_FILES = AgencyConnectorDescriptor(
    name=_NAME,
    capabilities=CAPABILITIES,
    factory=AgencyFilesConnector,
    description="Writes placements to a folder and reads the agency's answers from another",
)


@hookimpl
def carecollect_agency_connectors() -> list[AgencyConnectorDescriptor]:
    """The ``agency-files`` connector."""
    return [AGENCY_FILES]
