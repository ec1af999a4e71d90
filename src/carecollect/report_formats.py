"""``carecollect report`` as JSON, CSV or an HTML page with charts.

:func:`report_document` turns a :class:`~carecollect.reports.CollectionReport` into plain JSON
(amounts as decimal strings with their currency, never floats); :func:`report_csv` flattens the
same figures into rows ``section, label, currency, value``; :func:`report_html` writes one
self-contained page: every chart is SVG drawn by `pygal <https://www.pygal.org>`_ when the page
is built and inlined, with no script and no stylesheet fetched from anywhere, so the page opens
offline and from an e-mail attachment (``pip install "carecollect[report]"``).

The charts: open balances by aging bucket at weekly points over the period
(:func:`aging_history`), the collection rate of each week, messages by channel and by language,
plans offered and chosen, and the contact centre's service level per queue against its target.

The page's title and headings carry the report's date, never the moment it was built. Ids and
counts only: no patient name appears in any of the three formats.

>>> from carecollect.reports import CollectionReport, MessageFigures
>>> import datetime as dt
>>> now = dt.datetime(2026, 3, 6, 16, tzinfo=dt.timezone.utc)
>>> r = CollectionReport(now, now - dt.timedelta(days=30), (), (), MessageFigures(0, (), (), ()),
...                      (), (), ())
>>> report_document(r)["as_of"], report_csv(r).splitlines()[0]
('2026-03-06T16:00:00+00:00', 'section,label,currency,value')
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from .errors import ConfigurationError
from .ledger import EntryKind, LedgerEntry
from .money import Money
from .reports import BUCKETS, AgingLine, CollectionReport, aging
from .store.base import InvoiceRow, Store
from .timekeeping import require_aware

__all__ = [
    "AgingPoint",
    "ReportHistory",
    "aging_history",
    "history_from_store",
    "report_csv",
    "report_document",
    "report_html",
]

#: Entries that lower an invoice's balance (the others raise it).
_LOWERS = frozenset(
    {
        EntryKind.INSURANCE_PAYMENT,
        EntryKind.PATIENT_PAYMENT,
        EntryKind.ADJUSTMENT,
        EntryKind.WRITE_OFF,
        EntryKind.CREDIT_APPLIED,
    }
)
_PAID_IN = frozenset({EntryKind.PATIENT_PAYMENT, EntryKind.INSURANCE_PAYMENT})
_PAID_BACK = frozenset({EntryKind.PAYMENT_REVERSED, EntryKind.REFUND})


@attrs.frozen
class AgingPoint:
    """Open balances by bucket at one instant, and what was collected in the week before it.

    :param at: the instant.
    :param aging: one line per currency (:func:`carecollect.reports.aging`).
    :param collected: net money collected in the seven days before ``at``, per currency.
    """

    at: dt.datetime
    aging: tuple[AgingLine, ...]
    collected: tuple[Money, ...]

    def collection_rate(self, currency: str) -> Decimal | None:
        """Net collected in the week over the open balance a week earlier plus it (0..1).

        ``None`` when nothing was open or collected in ``currency``.
        """
        got = sum((m.minor_units for m in self.collected if m.currency == currency), 0)
        open_ = sum((line.total.minor_units for line in self.aging if line.currency == currency), 0)
        if got + open_ <= 0:
            return None
        return Decimal(got) / Decimal(got + open_)


@attrs.frozen
class ReportHistory:
    """The weekly points behind the HTML report's charts over time."""

    points: tuple[AgingPoint, ...]


def aging_history(
    rows: Sequence[InvoiceRow], entries: Sequence[LedgerEntry], instants: Iterable[dt.datetime]
) -> ReportHistory:
    """Open balances by aging bucket at each of ``instants``, from today's rows and the ledger.

    An invoice's balance at an earlier instant is today's balance with every ledger entry posted
    after that instant taken back; an invoice counts from its issue date on. Cancelled and draft
    invoices are left out throughout.

    :param rows: invoice rows (:meth:`~carecollect.store.base.Store.iter_invoice_rows`).
    :param entries: every ledger entry of those invoices.
    :param instants: the instants (aware), in any order; the result is in time order.
    """
    by_invoice: dict[str, list[LedgerEntry]] = defaultdict(list)
    for e in entries:
        if e.invoice_id is not None:
            by_invoice[e.invoice_id].append(e)
    kept = [r for r in rows if r.status in ("open", "paid")]
    points = []
    for at in sorted(instants):
        require_aware(at, "report", "history instant")
        then = []
        for row in kept:
            if row.issue_date > at.date():
                continue
            later = sum(
                (-e.amount.minor_units if e.kind in _LOWERS else e.amount.minor_units)
                for e in by_invoice.get(row.invoice_id, ())
                if e.at > at
            )
            balance = row.balance_minor - later
            then.append(row._replace(status="open" if balance > 0 else "paid", balance_minor=balance))
        week = at - dt.timedelta(days=7)
        net: dict[str, int] = defaultdict(int)
        for e in entries:
            if week < e.at <= at and e.kind in _PAID_IN:
                net[e.amount.currency] += e.amount.minor_units
            elif week < e.at <= at and e.kind in _PAID_BACK:
                net[e.amount.currency] -= e.amount.minor_units
        points.append(
            AgingPoint(at, aging(then, at), tuple(Money.from_minor(net[c], c) for c in sorted(net)))
        )
    return ReportHistory(tuple(points))


def history_from_store(store: Store, now: dt.datetime, days: int) -> ReportHistory:
    """:func:`aging_history` at ``now`` and every seven days back over ``days`` (the I/O edge).

    :param store: the store.
    :param now: the report's instant (aware).
    :param days: the period.
    """
    require_aware(now, "report", "now")
    rows = list(store.iter_invoice_rows())
    entries: list[LedgerEntry] = []
    for snap in store.iter_account_snapshots(batch_size=1000):
        entries.extend(snap.ledger.entries)
    instants = [now - dt.timedelta(days=d) for d in range(0, days + 1, 7)]
    return aging_history(rows, entries, instants)


def _money(m: Money) -> dict[str, str]:
    return {"currency": m.currency, "amount": str(m.amount)}


def report_document(report: CollectionReport, history: ReportHistory | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (keys stable within ``format`` ``carecollect.report/1``).

    :param report: the report.
    :param history: weekly points (``aging_history``), or ``None`` to leave them out.
    """
    cc = report.contact_centre
    doc: dict[str, Any] = {
        "format": "carecollect.report/1",
        "as_of": report.now.isoformat(),
        "period_start": report.start.isoformat(),
        "buckets": list(BUCKETS),
        "aging": [
            {
                "currency": line.currency,
                "amounts": [str(a.amount) for a in line.amounts],
                "invoices": list(line.invoices),
                "total": str(line.total.amount),
            }
            for line in report.aging
        ],
        "collected": [
            {
                "currency": c.currency,
                "gross": str(c.amount.amount),
                "payments": c.payments,
                "reversed": str(c.reversed.amount),
                "reversals": c.reversals,
                "net": str(c.net.amount),
            }
            for c in report.collected
        ],
        "messages": {
            "total": report.messages.total,
            "by_step": {c.label: c.count for c in report.messages.by_purpose},
            "by_channel": {c.label: c.count for c in report.messages.by_channel},
            "by_language": {c.label: c.count for c in report.messages.by_language},
        },
        "plans": {c.label: c.count for c in report.plans},
        "disputes": {c.label: c.count for c in report.disputes},
        "held": [{"kind": h.kind, "rule_id": h.rule_id, "accounts": h.accounts} for h in report.held],
        "contact_centre": None
        if cc is None
        else {
            "day": cc.day.isoformat(),
            "time_zone": cc.tz,
            "queues": [
                {
                    "queue": q.queue,
                    "offered": q.offered,
                    "answered": q.answered,
                    "service_level": None if q.service_level is None else round(q.service_level, 4),
                    "target": round(q.target_share, 4),
                    "abandoned": q.abandoned,
                    "backlog": q.waiting,
                    "late": q.past_deadline,
                }
                for q in cc.queues
            ],
        },
        "history": None
        if history is None
        else [
            {
                "at": p.at.isoformat(),
                "aging": [
                    {"currency": line.currency, "amounts": [str(a.amount) for a in line.amounts]}
                    for line in p.aging
                ],
                "collected": [_money(m) for m in p.collected],
            }
            for p in history.points
        ],
    }
    return doc


def report_csv(report: CollectionReport) -> str:
    """The report's figures as CSV rows ``section, label, currency, value`` (one header row).

    :param report: the report.
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("section", "label", "currency", "value"))
    for line in report.aging:
        for name, amount, n in zip(BUCKETS, line.amounts, line.invoices, strict=True):
            w.writerow(("aging", name, line.currency, amount.amount))
            w.writerow(("aging_invoices", name, line.currency, n))
    for c in report.collected:
        w.writerow(("collected_gross", "", c.currency, c.amount.amount))
        w.writerow(("collected_net", "", c.currency, c.net.amount))
        w.writerow(("reversed", "", c.currency, c.reversed.amount))
    w.writerow(("messages", "total", "", report.messages.total))
    for section, counts in (
        ("messages_by_step", report.messages.by_purpose),
        ("messages_by_channel", report.messages.by_channel),
        ("messages_by_language", report.messages.by_language),
        ("plans", report.plans),
        ("disputes", report.disputes),
    ):
        for count in counts:
            w.writerow((section, count.label, "", count.count))
    for h in report.held:
        w.writerow((f"held_{h.kind}", h.rule_id, "", h.accounts))
    if report.contact_centre is not None:
        for q in report.contact_centre.queues:
            level = "" if q.service_level is None else f"{q.service_level:.4f}"
            w.writerow(("service_level", q.queue, "", level))
    return out.getvalue()


def _pygal() -> Any:
    try:
        import pygal
    except ImportError:
        raise ConfigurationError(
            'the HTML report draws its charts with pygal: pip install "carecollect[report]"'
        ) from None
    # pygal puts an old-style finder for its map plugins on sys.meta_path; from Python 3.12 on
    # every later import that no other finder resolves fails on it (no find_spec). The report
    # draws no maps, so the finder goes.
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)


def _svg(chart: Any) -> str:
    """The chart as inline SVG, without pygal's tooltip configuration script (a page with no
    script at all is one a strict e-mail client or content policy shows as it is)."""
    return _SCRIPT.sub("", str(chart.render(is_unicode=True, disable_xml_declaration=True)))


def _config(pygal: Any, title: str, **extra: Any) -> Any:
    config = pygal.Config()
    config.title = title
    config.js = []  # no script from the internet: the page opens offline
    config.width = 720
    config.height = 360
    config.legend_at_bottom = True
    config.style = pygal.style.CleanStyle
    for k, v in extra.items():
        setattr(config, k, v)
    return config


def _charts(report: CollectionReport, history: ReportHistory | None) -> list[tuple[str, str]]:
    pygal = _pygal()
    charts: list[tuple[str, str]] = []
    day = report.now.date().isoformat()
    if history is not None and history.points:
        labels = [p.at.date().isoformat() for p in history.points]
        currencies = sorted({line.currency for p in history.points for line in p.aging})
        for cur in currencies:
            chart = pygal.StackedBar(_config(pygal, f"Open balances by days past due ({cur}), to {day}"))
            chart.x_labels = labels
            for i, bucket in enumerate(BUCKETS):
                # a bar's height only: the tables below the charts show the exact amounts
                chart.add(
                    bucket,
                    [
                        float(next((line.amounts[i].amount for line in p.aging if line.currency == cur), 0))
                        for p in history.points
                    ],
                )
            charts.append((f"aging-{cur.lower()}", _svg(chart)))
        rate = pygal.Line(
            _config(pygal, f"Collection rate per week, to {day}", value_formatter=lambda v: f"{v:.1f} %")
        )
        rate.x_labels = labels
        for cur in currencies:
            values = [p.collection_rate(cur) for p in history.points]
            rate.add(cur, [None if v is None else float(v * 100) for v in values])
        charts.append(("collection-rate", _svg(rate)))
    for key, title, counts in (
        ("messages-channel", "Messages sent by channel", report.messages.by_channel),
        ("messages-language", "Messages sent by language", report.messages.by_language),
    ):
        bar = pygal.HorizontalBar(_config(pygal, f"{title}, {report.start.date()} to {day}"))
        for c in counts:
            bar.add(c.label, c.count)
        charts.append((key, _svg(bar)))
    plans = {c.label: c.count for c in report.plans}
    offered = sum(plans.values())
    chosen = sum(n for label, n in plans.items() if label != "proposed")
    bar = pygal.Bar(_config(pygal, f"Payment plans offered and chosen, {day}"))
    bar.x_labels = ["offered", "chosen"]
    bar.add("plans", [offered, chosen])
    charts.append(("plans", _svg(bar)))
    if report.contact_centre is not None:
        cc = report.contact_centre
        bar = pygal.Bar(
            _config(
                pygal,
                f"Service level by queue, {cc.day.isoformat()}",
                range=(0, 100),
                value_formatter=lambda v: f"{v:.0f} %",
                x_label_rotation=20,
            )
        )
        bar.x_labels = [q.queue for q in cc.queues]
        bar.add(
            "service level",
            [None if q.service_level is None else q.service_level * 100 for q in cc.queues],
        )
        bar.add("target", [q.target_share * 100 for q in cc.queues])
        charts.append(("service-levels", _svg(bar)))
    return charts


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
"""


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    h = "".join(f"<th scope='col'>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def report_html(report: CollectionReport, history: ReportHistory | None = None) -> str:
    """The report as one self-contained HTML page with inline SVG charts (needs pygal).

    :param report: the report.
    :param history: weekly points for the charts over time (``None``: those charts are left out).
    :raises ConfigurationError: pygal is not installed.
    """
    day = report.now.date().isoformat()
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>carecollect report, {day}</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        f"<h1>Collections report, {day}</h1>",
        f"<p>Period {report.start.date().isoformat()} to {day}; messages sent: {report.messages.total}.</p>",
    ]
    for key, svg in _charts(report, history):
        parts.append(f"<figure id='chart-{key}'>{svg}</figure>")
    parts.append("<h2>Open balances by days past due</h2>")
    parts.append(
        _table(
            ("currency", *BUCKETS, "total"),
            ((line.currency, *(a.amount for a in line.amounts), line.total.amount) for line in report.aging),
        )
    )
    parts.append(f"<h2>Collected since {report.start.date().isoformat()}</h2>")
    parts.append(
        _table(
            ("currency", "gross", "payments", "reversed", "net"),
            (
                (c.currency, c.amount.amount, c.payments, c.reversed.amount, c.net.amount)
                for c in report.collected
            ),
        )
    )
    parts.append("<h2>Rules that held accounts back</h2>")
    parts.append(_table(("held", "rule", "accounts"), ((h.kind, h.rule_id, h.accounts) for h in report.held)))
    parts.append("</main></body></html>")
    return "\n".join(parts)
