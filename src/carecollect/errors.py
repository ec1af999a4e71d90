"""The error hierarchy of carecollect.

Every error raised by carecollect derives from :class:`CareCollectError`.
Each subclass also inherits the builtin exception it most resembles, so
``except ValueError`` keeps working for callers who do not know carecollect.

Messages name the object by its identifier and the field, never by a
patient's name or any clinical detail, and say what to do next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from .scrubbing import printable

__all__ = [
    "RUN_LOCK_STALE_AFTER",
    "CareCollectError",
    "ConfigurationError",
    "CurrencyMismatch",
    "DuplicateEntry",
    "ImportFailed",
    "ImportProblem",
    "InvalidMoney",
    "InvalidTransition",
    "MessageCheckFailed",
    "MissingTranslation",
    "NaiveDatetime",
    "NotFound",
    "PartitionLeaseLost",
    "PayLinkError",
    "PayLinkExpired",
    "PayLinkInvalid",
    "PayLinkUsed",
    "PluginError",
    "PolicyViolation",
    "PostgresUnavailable",
    "RemittanceRefused",
    "RunLocked",
    "RunWorkerError",
    "ScheduleMismatch",
    "StoreError",
    "StoreUnavailable",
    "TimeZoneUnknown",
    "ValidationError",
    "WebhookError",
    "WebhookExpired",
    "WebhookSignatureInvalid",
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


#: How long a run lock lives without a heartbeat by default. A live run beats several times
#: within it (a thread, on the wall clock), so only a dead or frozen holder ever goes stale.
RUN_LOCK_STALE_AFTER = dt.timedelta(seconds=30)


class StoreError(CareCollectError, RuntimeError):
    """The store cannot do what was asked (a schema newer than this code, a broken file...)."""


class StoreUnavailable(StoreError):
    """The connection to the store's database server was lost (the server stopped, restarted or
    cannot be reached).

    The unit of work in flight was not committed, or was committed whole (a connection lost during
    ``COMMIT``): never half. Run again once the server is back: the run carries on exactly once.
    """


class NotFound(CareCollectError, KeyError):
    """No record of that kind has that id.

    :param record: the kind of record, for example ``"Invoice"``.
    :param ident: the id that was looked up.
    """

    def __init__(self, record: str, ident: str) -> None:
        self.record = record
        self.ident = ident
        super().__init__(f"{record} {ident}: not in the store; import or create it first")

    def __str__(self) -> str:
        return str(self.args[0])


class RunLocked(CareCollectError, RuntimeError):
    """Another run holds the run lock.

    :param owner: who holds it.
    :param pid: the process id that holds it.
    :param heartbeat_at: when the holder last said it was alive.
    """

    def __init__(
        self,
        owner: str,
        pid: int,
        started_at: dt.datetime,
        heartbeat_at: dt.datetime,
        stale_after: dt.timedelta | None = None,
    ) -> None:
        self.owner = owner
        self.pid = pid
        self.started_at = started_at
        self.heartbeat_at = heartbeat_at
        self.stale_after = stale_after if stale_after is not None else RUN_LOCK_STALE_AFTER
        super().__init__(
            f"another run is in progress (owner {owner!r}, pid {pid}, started {started_at.isoformat()}, "
            f"last heartbeat {heartbeat_at.isoformat()}); wait for it to finish. If that process is gone, "
            f"the next run takes the lock over at once on the same host, or from another host once "
            f"{self.stale_after.total_seconds():g} s have passed without a heartbeat"
        )


class RunWorkerError(CareCollectError, RuntimeError):
    """A worker process of a parallel run failed or died; what it finished stays done."""


def _problem_text(text: object) -> str:
    return printable(text, 400)


def _optional_printable(text: object) -> str | None:
    return None if text is None else printable(text)


@attrs.frozen
class ImportProblem:
    """One thing wrong with one record.

    :param where: the file or section and row (``"invoices.csv row 7"``, ``"invoices[2]"``,
        ``"Invoice/INV-9"``).
    :param field: the field (``"due_date"``, ``"lines[0].amount"``).
    :param problem: what is wrong and what to write instead (never the value of a
        name, address or description).
    :param record_id: the record's id, when it has one.
    """

    where: str = attrs.field(converter=printable)
    field: str = attrs.field(converter=printable)
    problem: str = attrs.field(converter=_problem_text)
    record_id: str | None = attrs.field(default=None, converter=_optional_printable)

    def __str__(self) -> str:
        ident = f" ({self.record_id})" if self.record_id else ""
        return f"{self.where}{ident}: field {self.field!r}: {self.problem}"


class ImportFailed(CareCollectError, ValueError):
    """An import was refused; nothing of it was stored.

    :param problems: every problem found, in input order.
    """

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems = tuple(problems)
        head = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"import refused, nothing was stored: {len(self.problems)} problem(s): {head}{more}")


class MissingTranslation(CareCollectError, LookupError):
    """A template asked for a message key the language's catalog lacks."""

    def __init__(self, language: str, key: str) -> None:
        self.language = language
        self.key = key
        super().__init__(f"catalog {language!r} has no message {key!r}; add it to the catalog")


class MessageCheckFailed(CareCollectError, ValueError):
    """A rendering failed a check; it must not be sent.

    :param template: the template (purpose/channel/language).
    :param rule: the check that failed.
    :param detail: what was found (never patient data beyond the offending word).
    """

    def __init__(self, template: str, rule: str, detail: str) -> None:
        self.template = template
        self.rule = rule
        self.detail = detail
        super().__init__(f"message {template}: check {rule!r} failed: {detail}")


class PayLinkError(CareCollectError, ValueError):
    """A pay link was refused."""


class PayLinkInvalid(PayLinkError):
    """The link is malformed or its signature does not match (it was changed)."""


class PayLinkExpired(PayLinkError):
    """The link's expiry has passed."""


class PayLinkUsed(PayLinkError):
    """The link's nonce was already used for a payment: no replay."""


class WebhookError(CareCollectError, ValueError):
    """A webhook was refused; answer the sender with HTTP 400 and record nothing."""


class WebhookSignatureInvalid(WebhookError):
    """The signature header is missing, malformed or does not match the body."""


class WebhookExpired(WebhookError):
    """The signed timestamp is outside the tolerance (an old or replayed delivery)."""


class PostgresUnavailable(CareCollectError, RuntimeError):
    """No throwaway PostgreSQL server can be started on this machine for the tests (the reason
    says why: no server binaries, initdb or the server failed)."""


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
