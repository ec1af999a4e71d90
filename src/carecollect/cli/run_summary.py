"""What ``carecollect run`` prints: the summary's rows, where the messages went, and the dry run.

A run's summary leaves out the rows that are zero (``accounts`` and ``sent`` always show). A dry
run prints counts by default; ``--show`` lists every planned message and every hold with its
reasons; ``--format json`` prints one JSON document (:func:`dry_run_document`) whose keys are
stable within its ``format`` (``carecollect.dry-run/1``):

``format``
    ``"carecollect.dry-run/1"``.
``as_of``
    The run's instant (ISO 8601 with its offset).
``counts``
    Always every key of :data:`DRY_RUN_COUNTS`, zeros included.
``messages``
    With ``--show``: one object per planned message (``key``, ``account_id``, ``invoice_id``,
    ``step``, ``channel``, ``language``, ``due_at``); without it ``null``.
``holds``
    With ``--show``: one object per held step (``account_id``, ``invoice_id``, ``step``,
    ``channel``, ``earliest`` or ``null``, ``reasons``: a list of ``rule_id``, ``source``,
    ``outcome``, ``params`` and ``message``, the text written out for this listing); without
    it ``null``.

Ids only: no name, address or amount of any patient is printed.

>>> DRY_RUN_COUNTS[:3]
('accounts', 'invoices', 'messages_planned')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..run.decisions import RunPlan
    from ..run.report import RunReport
    from ..run.settings import RunSettings

__all__ = [
    "DRY_RUN_COUNTS",
    "DRY_RUN_FORMAT",
    "Route",
    "dry_run_counts",
    "dry_run_document",
    "routes",
    "run_rows",
]

#: The dry run's JSON document's ``format``; a change of its keys makes it ``/2``.
DRY_RUN_FORMAT = "carecollect.dry-run/1"

#: The keys of the dry run's ``counts``, in the order the table prints them.
DRY_RUN_COUNTS = (
    "accounts",
    "invoices",
    "messages_planned",
    "messages_held",
    "invoices_nothing_due",
    "instalments_to_mark_missed",
    "instalments_to_charge",
    "placements_planned",
    "agency_gate_held",
)

_LABELS = {
    "messages_planned": "messages planned",
    "messages_held": "messages held",
    "invoices_nothing_due": "invoices with nothing due",
    "instalments_to_mark_missed": "instalments to mark missed",
    "instalments_to_charge": "instalments to charge",
    "placements_planned": "placements planned",
    "agency_gate_held": "agency gate held",
}


def dry_run_counts(plan: RunPlan) -> dict[str, int]:
    """The dry run's counts (every key of :data:`DRY_RUN_COUNTS`)."""
    decided = plan.counts()
    return {
        "accounts": plan.accounts,
        "invoices": plan.invoices,
        "messages_planned": plan.size("messages"),
        "messages_held": decided.get("hold", 0),
        "invoices_nothing_due": decided.get("nothing_due", 0),
        "instalments_to_mark_missed": plan.size("missed"),
        "instalments_to_charge": plan.size("charges"),
        "placements_planned": plan.size("placements"),
        "agency_gate_held": decided.get("gate_held", 0),
    }


def dry_run_rows(plan: RunPlan) -> list[tuple[str, int]]:
    """The dry run's table rows, zeros left out (``accounts`` always shows)."""
    return [(_LABELS.get(k, k), v) for k, v in dry_run_counts(plan).items() if v or k == "accounts"]


def dry_run_document(plan: RunPlan, language_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The dry run as one JSON-ready document (see the module's description of its keys).

    :param plan: the planned run; its lists are listed when it kept them
        (:attr:`~carecollect.run.settings.RunSettings.keep_plan`), else ``messages`` and ``holds``
        are ``None``.
    :param language_of: an account id's patient's language tag (default ``"en"``).
    """
    from ..run.decisions import DecisionKind

    doc: dict[str, Any] = {
        "format": DRY_RUN_FORMAT,
        "as_of": plan.now.isoformat(),
        "counts": dry_run_counts(plan),
        "messages": None,
        "holds": None,
    }
    if plan.tally is not None:
        return doc
    lang = language_of or (lambda _account: "en")
    doc["messages"] = [
        {
            "key": m.key,
            "account_id": m.step.account_id,
            "invoice_id": m.step.invoice_id,
            "step": m.step.purpose.value,
            "channel": m.channel.value,
            "language": lang(m.step.account_id),
            "due_at": m.step.due_at.isoformat(),
        }
        for m in plan.messages
    ]
    doc["holds"] = [
        {
            "account_id": d.account_id,
            "invoice_id": d.invoice_id,
            "step": d.purpose,
            "channel": d.channel,
            "earliest": d.earliest.isoformat() if d.earliest else None,
            "reasons": [
                {**r.to_record(), "message": r.message}
                for r in d.reasons
                if r.outcome.value not in ("allow", "info")
            ],
        }
        for d in plan.decisions
        if d.kind is DecisionKind.HOLD
    ]
    return doc


def run_rows(report: RunReport) -> list[tuple[str, int]]:
    """A real run's table rows, zeros left out (``accounts`` and ``sent`` always show)."""
    counts = report.plan.counts()
    rows = [
        ("accounts", report.plan.accounts),
        ("messages planned", report.plan.size("messages")),
        ("sent", report.sent),
        ("already sent (skipped)", report.skipped_already_sent),
        ("held", counts.get("hold", 0)),
        ("suppressed", report.suppressed),
        ("failed", report.failed),
        ("deferred (retry later)", report.deferred_retry),
        ("instalments marked missed", report.instalments_missed),
        ("instalments charged", report.charged),
        ("charges failed (retried later)", report.charges_failed),
        ("placed with agency", report.placed),
    ]
    if report.intake is not None:
        i = report.intake
        rows += [
            ("inbound events taken in", i.processed),
            ("duplicates ignored", i.duplicates),
            ("payments posted", i.payments),
            ("payments reversed", i.payments_reversed),
            ("opt-outs", i.opt_outs),
            ("disputes opened", i.disputes_opened),
            ("disputes resolved or withdrawn", i.disputes_resolved),
            ("disputes: patient met (contact centre)", i.disputes_met),
            ("recalled from agency", i.recalled),
            ("agency status updates", i.agency_updates),
            ("events refused or unmatched", len(i.failures)),
        ]
    rows.append(("partitions done here", len(report.partitions_done)))
    rows.append(("plugin hook failures (not delivered)", len(report.hook_failures)))
    return [(label, n) for label, n in rows if n or label in ("accounts", "sent")]


@attrs.frozen
class Route:
    """Where one channel's messages went.

    :param channel: the channel (``email``...).
    :param plugin: the message-channel plugin that serves it.
    :param destination: its folder or server from the plugin's settings (``""`` if none is set).
    :param sent: messages sent on it in this run.
    """

    channel: str
    plugin: str
    destination: str
    sent: int


def _destination(config: Mapping[str, Any]) -> str:
    if config.get("folder"):
        return str(config["folder"])
    host = config.get("host") or config.get("server")
    if host:
        return f"{host}:{config['port']}" if config.get("port") else str(host)
    for key in ("url", "base_url", "endpoint"):
        if config.get(key):
            return str(config[key])
    return ""


def routes(settings: RunSettings, sent_by_channel: Mapping[Any, int]) -> list[Route]:
    """Where each channel that sent something in this run sent it (channel, plugin, destination).

    :param settings: the run's settings (channel plugins and their settings).
    :param sent_by_channel: messages sent per :class:`~carecollect.channels.Channel`.
    """
    out = []
    for channel, n in sorted(sent_by_channel.items(), key=lambda i: i[0].value):
        plugin = settings.channel_plugins.get(channel, "")
        out.append(Route(channel.value, plugin, _destination(settings.channel_config.get(plugin, {})), n))
    return out
