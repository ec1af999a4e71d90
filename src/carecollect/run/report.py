"""What a real run did: :class:`RunReport`."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..channels import Channel
from .decisions import RunPlan
from .inbound import IntakeReport

__all__ = [
    "RunReport",
]


@attrs.frozen
class RunReport:
    """What a real run did."""

    plan: RunPlan
    sent: int
    skipped_already_sent: int
    suppressed: int
    failed: int
    deferred_retry: int
    placed: int
    instalments_missed: int
    intake: IntakeReport | None = None
    charged: int = 0
    charges_failed: int = 0
    #: Event broadcasts some plugin raised on (from the plugin manager's
    #: :meth:`~carecollect.plugins.manager.PluginManager.undelivered`), one scrubbed line each.
    hook_failures: tuple[str, ...] = ()
    #: Print batches the run closed (:func:`~carecollect.run.sending.close_batches`), by id.
    batches: tuple[str, ...] = ()
    #: Messages sent on each channel (channels that sent none are left out).
    sent_by_channel: Mapping[Channel, int] = attrs.field(factory=dict)
    #: The partitions this process and its local worker processes planned and sent (a partitioned
    #: run; empty without partitions and on a Dask cluster, whose tasks lease their own).
    partitions_done: tuple[int, ...] = ()
    #: The run this process joined (``owner pid`` of the run lock's holder, which took in the
    #: events and closes the run; see :mod:`carecollect.run.joining`); ``None``: it led the run.
    joined: str | None = None


def _report(plan: RunPlan, counts: Mapping[str, int], intake_report: IntakeReport | None) -> RunReport:
    return RunReport(
        plan,
        counts["sent"],
        counts["skipped"],
        counts["suppressed"],
        counts["failed"],
        counts["deferred"],
        counts["placed"],
        counts["missed"],
        intake_report,
        counts["charged"],
        counts["charge_failed"],
        sent_by_channel={c: counts[f"sent.{c.value}"] for c in Channel if counts[f"sent.{c.value}"]},
    )
