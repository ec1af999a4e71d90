"""The arguments of an event-hook broadcast as JSON, so the store can keep it until delivered.

The daily run records every broadcast it owes plugins in the store, in the unit of work that
makes the change (see :meth:`~carecollect.store.base.Store.hook_event_record`), and marks it
delivered per plugin afterwards; what a plugin did not take (it raised, or the process died
between the commit and the broadcast) is delivered again by the next run. The arguments are the
frozen records the hooks receive (a :class:`~carecollect.payments.Payment`, an
:class:`~carecollect.outreach.OutreachStep`, an :class:`~carecollect.events.Event`...), written
field by field with a tag naming their class; only the classes of the hooks' arguments are read
back (:data:`HOOK_ARGUMENT_TYPES`), never an arbitrary one.

>>> import datetime as dt
>>> from carecollect.events import Event, EventType
>>> from carecollect.money import Money
>>> event = Event(EventType.OPTED_OUT, "P-1", dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), {"channel": "sms"})
>>> args = {"patient_id": "P-1", "event": event, "amount": Money("12.50", "EUR")}
>>> decode_arguments(encode_arguments(args)) == args
True
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from ..channels import Channel
from ..disputes import Dispute, DisputeReason, DisputeStatus, EscalationLevel, Resolution, ResolutionKind
from ..events import Event, EventType
from ..money import Money
from ..outreach import OutreachPurpose, OutreachStatus, OutreachStep
from ..payments import Payment, PaymentMethod, PaymentReversal, PaymentSource, ReversalCause
from ..placements import AgencyPlacement, PlacementStatus, Remittance
from .base import StoreError

__all__ = ["HOOK_ARGUMENT_TYPES", "decode_arguments", "encode_arguments"]

#: The classes an event hook's arguments are made of, and the only ones read back.
HOOK_ARGUMENT_TYPES: Mapping[str, type] = {
    t.__name__: t
    for t in (
        AgencyPlacement,
        Channel,
        Dispute,
        DisputeReason,
        DisputeStatus,
        EscalationLevel,
        Event,
        EventType,
        OutreachPurpose,
        OutreachStatus,
        OutreachStep,
        Payment,
        PaymentMethod,
        PaymentReversal,
        PaymentSource,
        PlacementStatus,
        Remittance,
        Resolution,
        ResolutionKind,
        ReversalCause,
    )
}


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "v": _encode(value.value)}
    if isinstance(value, Money):
        return {"$money": str(value.amount), "c": value.currency}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (tuple, list, frozenset)):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, Mapping):
        return {"$map": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if attrs.has(type(value)) and type(value).__name__ in HOOK_ARGUMENT_TYPES:
        return {
            "$record": type(value).__name__,
            "f": {f.alias: _encode(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.init},
        }
    raise StoreError(f"an event hook's argument of type {type(value).__name__} cannot be stored")


def _known(name: str) -> type:
    try:
        return HOOK_ARGUMENT_TYPES[name]
    except KeyError:
        raise StoreError(f"a stored hook event names an unknown type {name!r}") from None


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "$enum" in value:
        return _known(value["$enum"])(_decode(value["v"]))
    if "$money" in value:
        return Money(value["$money"], value["c"])
    if "$datetime" in value:
        return dt.datetime.fromisoformat(value["$datetime"])
    if "$date" in value:
        return dt.date.fromisoformat(value["$date"])
    if "$decimal" in value:
        return Decimal(value["$decimal"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$map" in value:
        return {_decode(k): _decode(v) for k, v in value["$map"]}
    if "$record" in value:
        return _known(value["$record"])(**{k: _decode(v) for k, v in value["f"].items()})
    raise StoreError("a stored hook event holds a value that cannot be read")


def encode_arguments(arguments: Mapping[str, Any]) -> str:
    """A hook's keyword arguments as JSON text.

    :raises StoreError: an argument is of a type the queue does not keep.
    """
    return json.dumps({k: _encode(v) for k, v in arguments.items()}, sort_keys=True, separators=(",", ":"))


def decode_arguments(text: str) -> dict[str, Any]:
    """The keyword arguments :func:`encode_arguments` wrote.

    :raises StoreError: the text names a type outside :data:`HOOK_ARGUMENT_TYPES`.
    """
    return {k: _decode(v) for k, v in json.loads(text).items()}
