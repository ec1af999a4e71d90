"""The error hierarchy of carecollect.

Every error raised by carecollect derives from :class:`CareCollectError`.
Each subclass also inherits the builtin exception it most resembles, so
``except ValueError`` keeps working for callers who do not know carecollect.

Messages name the object by its identifier and the field, never by a
patient's name or any clinical detail, and say what to do next.
"""

from __future__ import annotations

__all__ = [
    "CareCollectError",
    "ConfigurationError",
    "CurrencyMismatch",
    "DuplicateEntry",
    "InvalidMoney",
    "InvalidTransition",
    "NaiveDatetime",
    "PartitionLeaseLost",
    "PluginError",
    "PolicyViolation",
    "RemittanceRefused",
    "ScheduleMismatch",
    "TimeZoneUnknown",
    "ValidationError",
]


class CareCollectError(Exception):
    """Root of every error carecollect raises."""


class ValidationError(CareCollectError, ValueError):
    """A value given to a constructor or function is not acceptable.

    :param record: the kind and id of the object, for example ``"Invoice INV-1"``.
    :param field: the field that holds the bad value.
    :param problem: what is wrong and what to do about it.
    """

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record = record
        self.field = field
        self.problem = problem
        super().__init__(f"{record}: field {field!r}: {problem}")


class InvalidMoney(ValidationError):
    """An amount cannot be turned into exact money (a float, a bad code...)."""


class NaiveDatetime(ValidationError):
    """A datetime without a time zone was given where an instant is needed."""


class ScheduleMismatch(ValidationError):
    """Instalments or allocations do not sum exactly to their total."""


class TimeZoneUnknown(ValidationError):
    """No time zone is given for a patient and none can be derived from what is known
    (contact points, country and region of the address, a phone's country code).

    carecollect does not guess one: quiet hours must hold where the patient is.
    """


class CurrencyMismatch(CareCollectError, TypeError):
    """Two amounts in different currencies were combined.

    Convert one of them explicitly (carecollect never converts on its own) or
    keep them on separate accounts.
    """

    def __init__(self, left: str, right: str, operation: str, record: str = "") -> None:
        self.left = left
        self.right = right
        self.operation = operation
        where = f"{record}: " if record else ""
        super().__init__(
            f"{where}cannot {operation} {left} and {right}: amounts in different "
            "currencies never mix; convert one explicitly or keep them on separate accounts"
        )


class InvalidTransition(CareCollectError, ValueError):
    """A state change is not allowed from the object's current state."""

    def __init__(self, record: str, current: object, attempted: str, hint: str = "") -> None:
        self.record = record
        self.current = current
        self.attempted = attempted
        tail = f"; {hint}" if hint else ""
        cur = getattr(current, "value", current)
        super().__init__(f"{record}: cannot {attempted} while status is {cur!r}{tail}")


class DuplicateEntry(CareCollectError, ValueError):
    """An entry with the same idempotency key but different content was given."""


class PolicyViolation(CareCollectError, ValueError):
    """A configuration or request would break a rule of a policy pack."""


class ConfigurationError(CareCollectError, ValueError):
    """carecollect was configured in a way that cannot work."""


class PluginError(CareCollectError, RuntimeError):
    """A plugin could not be loaded, registered or called."""


class RemittanceRefused(ValidationError):
    """A remittance (X12 835, FHIR ClaimResponse or ExplanationOfBenefit) that cannot be applied.

    The whole file is refused and nothing is written. ``record`` names where the
    problem is (``"835 CLP #2 (line 14)"``, ``"ClaimResponse CR-1"``), ``field`` the
    segment element or FHIR element (``"CLP04"``, ``"payment.amount"``).

    :param segment: the X12 segment id (``"CLP"``, ``"BPR"``, ``"SE"``...) or the FHIR
        resource type.
    :param element: the element (``"CLP04"``) or FHIR path.
    :param line: the segment's position in the file (1-based), when known.
    """

    def __init__(
        self, segment: str, element: str, problem: str, *, line: int | None = None, record: str = ""
    ) -> None:
        self.segment = segment
        self.element = element
        self.line = line
        where = record or (f"835 {segment}" + (f" (segment {line})" if line is not None else ""))
        super().__init__(where, element, problem)


class PartitionLeaseLost(CareCollectError, RuntimeError):
    """A worker's lease on a partition of the run is no longer its own (taken over, or finished).

    Raised inside the worker's unit of work before it commits, so nothing of that unit is
    written: the partition's new holder carries it on.

    :param run_key: the run (its as-of instant).
    :param partition: the partition.
    :param fence: the fencing number the worker held.
    :param current: the fencing number the store holds now (``None``: the lease is gone).
    """

    def __init__(self, run_key: str, partition: int, fence: int, current: int | None) -> None:
        self.run_key = run_key
        self.partition = partition
        self.fence = fence
        self.current = current
        super().__init__(
            f"run {run_key} partition {partition}: lease {fence} lost "
            f"({'no lease' if current is None else f'now {current}'}); another worker carries it on"
        )
