"""The demo: a synthetic portfolio taken through a few simulated weeks of daily runs.

:func:`run_demo` creates a SQLite database, its settings file and an outbox
folder, loads a portfolio (:func:`~carecollect.portfolio.load_portfolio`:
patients in the US, Norway, Germany and Bulgaria), then for every business
day of the simulated weeks:

1. simulates what patients did since the last run: some pay an invoice in
   full or in part, some answer an SMS with ``STOP`` (an inbound reply in the
   outbox channel's JSON format, taken in by the run), a few open a dispute
   and earlier disputes are resolved; the contact centre answers calls and
   e-mails (synthetic :class:`~carecollect.contact_centre.ContactRecord`
   objects appended to the contact-records file);
   on the fourth day, with the ``carecollect[x12]`` extra installed, the
   insurer answers the pending US claims with X12 835 files written to
   ``<stem>-remittances/`` and imported
   (:func:`~carecollect.demo_remittances.answer_pending_claims`);
2. runs the daily cycle (:func:`~carecollect.run.execute.execute_run`) at
   16:00 UTC, inside daytime hours in every country of the portfolio,
   through the file-outbox channel; with the ``pdf`` extra installed, letters
   go through the ``letter`` channel instead, and each run writes its print
   batches (a PDF and a manifest CSV per envelope layout). ``deliver`` sends e-mail and
   SMS through the smtp and sms plugins to local servers instead
   (:mod:`carecollect.demo_channels`).

Everything is drawn from one seeded :class:`random.Random`: the same
arguments give the same figures. The simulated clock starts on
:data:`DEMO_START`; nothing reads the real clock.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from .channels import Channel
from .cli.contacts import append_records, read_records
from .contact_centre import (
    AccountState,
    ContactChannel,
    ContactOutcome,
    ContactRecord,
    Direction,
    Topic,
    conversations,
    route,
)
from .demo_channels import DemoDelivery, LocalChannels, ServerTally, local_channels, require_installed
from .disputes import Dispute, DisputeReason, DisputeStatus, Resolution, ResolutionKind
from .errors import ConfigurationError, ValidationError
from .ledger import post_payment
from .money import Money
from .payments import Payment, PaymentMethod
from .plugins.manager import make_plugin_manager
from .policy.packs import get_pack
from .portfolio import PortfolioFacts, load_portfolio
from .relief.disputes import DisputeProcedure, resolve_dispute
from .reports import CollectionReport, report_from_store
from .run.event_intake import intake
from .run.execute import execute_run
from .run.inbound import InboundEvent
from .run.report import RunReport
from .run.settings_file import CliConfig, config_path, load_config, write_default_config
from .store.sqlite import SQLiteStore
from .timekeeping import zone

__all__ = ["DEMO_RUN_HOUR", "DEMO_START", "DayResult", "DemoResult", "run_demo", "simulated_days"]

#: The first simulated day (a Monday).
DEMO_START = dt.date(2026, 3, 2)
#: The hour (UTC) of each simulated run: 08:00-09:00 in Los Angeles, afternoon in Europe.
DEMO_RUN_HOUR = 16

_PAY_SHARE = 0.03
_PART_PAY_SHARE = 0.3
_STOP_SHARE = 0.15
#: E-mails of a run whose address turns out dead (a hard bounce reported before the next run).
_BOUNCE_SHARE = 0.02
_DISPUTE_PER_INVOICES = 400
_CONTACTS_PER_INVOICES = 40


@attrs.frozen
class DayResult:
    """What happened on one simulated day.

    :param day: the date.
    :param report: what the run did.
    :param payments: payments the patients made since the last run.
    :param stop_replies: STOP replies sent in.
    :param disputes_opened: disputes opened.
    :param disputes_resolved: disputes resolved.
    :param contacts: contact-centre records of the day.
    :param bounces: hard-bounce reports for e-mails of the run before (each marks the address
        undeliverable, so later steps reach the patient another way).
    """

    day: dt.date
    report: RunReport
    payments: int
    stop_replies: int
    disputes_opened: int
    disputes_resolved: int
    contacts: int
    bounces: int = 0


@attrs.frozen
class DemoResult:
    """What the demo did and where it left its files.

    :param db: the database file.
    :param outbox: the outbox folder.
    :param portfolio: what was loaded.
    :param days: one :class:`DayResult` per run.
    :param report: the report at the last run.
    :param letters: the letter channel's folder (print batches in ``batches/``), when the
        ``pdf`` extra is installed; ``None`` when letters went to the outbox as text.
    :param servers: what each local server received (``--deliver smtp``, ``sms`` or ``all``).
    """

    db: Path
    outbox: Path
    portfolio: PortfolioFacts
    days: tuple[DayResult, ...]
    report: CollectionReport
    letters: Path | None = None
    servers: tuple[ServerTally, ...] = ()

    @property
    def batches(self) -> tuple[str, ...]:
        """The print batches the runs wrote (one PDF and one manifest CSV each)."""
        return tuple(b for d in self.days for b in d.report.batches)

    @property
    def sent(self) -> int:
        """Messages sent over all runs."""
        return sum(d.report.sent for d in self.days)


def simulated_days(start: dt.date, weeks: int) -> list[dt.date]:
    """The business days (Monday to Friday) of ``weeks`` weeks from ``start``.

    :param start: the first day.
    :param weeks: how many weeks.

    >>> [d.isoformat() for d in simulated_days(dt.date(2026, 3, 2), 1)][-1]
    '2026-03-06'
    >>> len(simulated_days(dt.date(2026, 3, 2), 4))
    20
    """
    days = (start + dt.timedelta(days=i) for i in range(7 * weeks))
    return [d for d in days if d.weekday() < 5]


#: The simulated day (index) on which the insurer answers the pending US claims with 835 files.
_REMITTANCE_DAY = 3


def _x12_installed() -> bool:
    """Whether the ``carecollect[x12]`` extra (pyx12) is installed: the demo's insurer writes 835 files."""
    import importlib.util

    return importlib.util.find_spec("pyx12") is not None


def _check_fresh(db: Path, fresh: bool) -> None:
    cfg = config_path(db)
    if not (db.exists() or cfg.exists()):
        return
    if not fresh:
        raise ConfigurationError(
            f"{db} already exists; pass --fresh to replace the demo, or choose another --db"
        )
    old: CliConfig | None = None
    if cfg.exists():
        old = load_config(db)
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), cfg, db.parent / f"{db.stem}-sms.jsonl"):
        path.unlink(missing_ok=True)
    if old is not None:
        old.contacts.unlink(missing_ok=True)
        for plugin in ("outbox", "letter"):
            folder = old.settings.channel_config.get(plugin, {}).get("folder")
            if folder and Path(folder).is_dir():
                shutil.rmtree(folder)
    mail = db.parent / f"{db.stem}-smtp"  # the local SMTP server's Maildir
    if mail.is_dir():
        shutil.rmtree(mail)
    agency_folder = _agency_folder(db)
    if agency_folder.is_dir():
        shutil.rmtree(agency_folder)
    remittances = db.parent / f"{db.stem}-remittances"
    if remittances.is_dir():
        shutil.rmtree(remittances)


def _pdf_available() -> bool:
    """Whether the ``pdf`` extra (fpdf2, segno) is installed: then the demo prints its letters."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("fpdf", "segno"))


def _agency_folder(db: Path) -> Path:
    """Where the demo's built-in ``agency-files`` connector writes placements (and reads remittances)."""
    return db.parent / f"{db.stem}-agency"


class _Simulation:
    """Patients' behaviour between runs (seeded)."""

    def __init__(
        self, store: SQLiteStore, rng: random.Random, size: int, centre_tz: str, channels: LocalChannels
    ) -> None:
        self.store = store
        self.channels = channels
        self.rng = rng
        self.size = size
        self.centre_tz = centre_tz
        self.replies = 0
        self.contact_seq = 0
        self.open_disputes: list[str] = []

    def payments(self, at: dt.datetime) -> int:
        open_accounts = sorted(
            {
                r.account_id
                for r in self.store.iter_invoice_rows()
                if r.status == "open" and r.balance_minor > 0
            }
        )
        n = 0
        for account_id in open_accounts:
            if self.rng.random() >= _PAY_SHARE:
                continue
            book = self.store.ledger(account_id)
            balance = book.balance
            if not balance.is_positive():
                continue
            minor = balance.minor_units
            if self.rng.random() < _PART_PAY_SHARE:
                minor = max(1, minor // self.rng.choice((2, 3, 4)))
            payment = Payment(
                f"DEMO-PAY-{account_id}-{at.date().isoformat()}",
                account_id,
                Money.from_minor(minor, balance.currency),
                self.rng.choice((PaymentMethod.CARD, PaymentMethod.BANK_TRANSFER)),
                at,
            )
            new_book, _ = post_payment(book, payment)
            with self.store.transaction():
                self.store.append_ledger(account_id, new_book.entries[len(book.entries) :])
            n += 1
        return n

    def stop_replies(self, last: RunReport | None, at: dt.datetime) -> list[InboundEvent]:
        if last is None:
            return []
        accounts = sorted({m.step.account_id for m in last.plan.messages if m.channel is Channel.SMS})
        events = []
        for account_id in accounts:
            if self.rng.random() >= _STOP_SHARE:
                continue
            patient = self.store.get_patient(self.store.get_account(account_id).patient_id)
            points = patient.points(Channel.SMS)
            if not points:
                continue
            self.replies += 1
            word = {"nb": "STOPP", "de": "STOPP", "bg": "СТОП"}.get(patient.preferred_language, "STOP")
            events.append(
                self.channels.reply(f"demo-in-{self.replies}", points[0].address, word, at.isoformat())
            )
        return events

    def bounces(self, last: RunReport | None, at: dt.datetime) -> list[InboundEvent]:
        """Delivery reports of the e-mails of the last run that bounced (the file outbox's format)."""
        if last is None:
            return []
        keys = sorted(m.key for m in last.plan.messages if m.channel is Channel.EMAIL)
        events = []
        for key in keys:
            if self.rng.random() >= _BOUNCE_SHARE:
                continue
            events.append(self.channels.bounce(key, at.isoformat()))
        return events

    def disputes(self, day_index: int, at: dt.datetime) -> tuple[int, int]:
        store = self.store
        opened = resolved = 0
        rows = [
            r
            for r in store.iter_invoice_rows()
            if r.status == "open" and r.balance_minor > 0 and not r.open_dispute
        ]
        want = max(1, self.size // _DISPUTE_PER_INVOICES) if day_index % 5 == 0 else 0
        for row in self.rng.sample(rows, min(want, len(rows))):
            dispute = Dispute(
                f"DEMO-DSP-{row.invoice_id}",
                row.account_id,
                row.invoice_id,
                self.rng.choice(
                    (
                        DisputeReason.BILLING_ERROR,
                        DisputeReason.ABOVE_ESTIMATE,
                        DisputeReason.INSURANCE_SHOULD_PAY,
                    )
                ),
                at,
                in_writing=True,
            )
            store.put_dispute(dispute)
            self.open_disputes.append(dispute.id)
            opened += 1
        # disputes opened a week ago or more are answered (the bill stands)
        for dispute_id in list(self.open_disputes):
            d = store.get_dispute(dispute_id)
            if d.status is DisputeStatus.OPEN and at - d.opened_at >= dt.timedelta(days=7):
                resolution = Resolution(ResolutionKind.UPHELD, approved_by="demo-staff")
                snap = store.account_snapshot(d.account_id)
                book = snap.ledger
                balance = book.invoice_balance(d.invoice_id) if d.invoice_id is not None else book.balance
                done, _, _ = resolve_dispute(
                    d,
                    resolution,
                    balance=balance,
                    at=at,
                    pack=get_pack(snap.account.jurisdiction),
                    procedure=DisputeProcedure.default(snap.account.currency),
                )
                store.put_dispute(done)
                self.open_disputes.remove(dispute_id)
                resolved += 1
        return opened, resolved

    def contacts(self, day: dt.date, accounts: Sequence[str]) -> list[ContactRecord]:
        """A day of inbound calls and e-mails, between 08:00 and 15:30 in the centre's time zone."""
        rng = self.rng
        tz = zone(self.centre_tz)
        out = []
        n = max(4, self.size // _CONTACTS_PER_INVOICES)
        for _ in range(n):
            self.contact_seq += 1
            cid = f"DEMO-C{self.contact_seq:06d}"
            account = rng.choice(accounts)
            topic = rng.choices(
                (
                    Topic.BALANCE_QUESTION,
                    Topic.PAYMENT,
                    Topic.PAYMENT_PLAN,
                    Topic.HARDSHIP,
                    Topic.INSURANCE,
                    Topic.DISPUTE,
                    Topic.COMPLAINT,
                ),
                weights=(30, 25, 15, 8, 12, 6, 4),
            )[0]
            channel = ContactChannel.PHONE if rng.random() < 0.7 else ContactChannel.EMAIL
            queue = route(channel, topic, AccountState(account)).queue
            start = dt.datetime.combine(day, dt.time(8), tzinfo=tz) + dt.timedelta(
                seconds=rng.randrange(0, 27_000)
            )
            if channel is ContactChannel.PHONE:
                wait = dt.timedelta(seconds=min(600, int(rng.expovariate(1 / 35))))
                if rng.random() < 0.05 or wait > dt.timedelta(seconds=300):
                    rec = ContactRecord(
                        cid,
                        account,
                        channel,
                        Direction.INBOUND,
                        topic,
                        start,
                        ended_at=start + wait,
                        outcome=ContactOutcome.ABANDONED,
                        queue=queue,
                    )
                else:
                    answered = start + wait
                    rec = ContactRecord(
                        cid,
                        account,
                        channel,
                        Direction.INBOUND,
                        topic,
                        start,
                        answered,
                        answered + dt.timedelta(seconds=rng.randrange(120, 600)),
                        ContactOutcome.CONVERSATION,
                        queue=queue,
                        agent_id=f"agent-{rng.randrange(1, 9)}",
                    )
            else:
                if rng.random() < 0.85:
                    answered = start + dt.timedelta(hours=rng.uniform(0.5, 20))
                    rec = ContactRecord(
                        cid,
                        account,
                        channel,
                        Direction.INBOUND,
                        topic,
                        start,
                        answered,
                        answered,
                        ContactOutcome.ANSWERED,
                        queue=queue,
                        agent_id=f"agent-{rng.randrange(1, 9)}",
                    )
                else:
                    rec = ContactRecord(cid, account, channel, Direction.INBOUND, topic, start, queue=queue)
            out.append(rec)
        return out


def _new_demo_store(db: Path, fresh: bool) -> SQLiteStore:
    """An empty store at ``db`` with the default settings file beside it."""
    _check_fresh(db, fresh)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(db)
    write_default_config(db, outbox_layout="files")  # the demo's messages are opened by hand
    return store


def create_demo_portfolio(db: Path, *, invoices: int, seed: int = 0, fresh: bool = False) -> PortfolioFacts:
    """Create a database with a synthetic portfolio of ``invoices`` invoices and no runs yet.

    What ``carecollect demo --invoices N --no-run`` does: the demo's patients, accounts,
    invoices, payments, plans and disputes (US, Norway, Germany, Bulgaria) as of the demo's
    first day, written in batches (memory stays flat at any size), with the default settings
    file beside the database. Reproduce the benchmark's figures on it with
    ``carecollect run --dry-run --db <db> --as-of <day>``.

    :param db: the database file to create.
    :param invoices: invoices in the portfolio.
    :param seed: the random seed (same seed, same portfolio).
    :param fresh: replace an earlier demo at the same path.
    :raises ConfigurationError: ``db`` exists and ``fresh`` is false.
    :raises ValidationError: ``invoices`` is below 1.
    """
    if invoices < 1:
        raise ValidationError("demo", "invoices", "must be at least 1 invoice")
    store = _new_demo_store(Path(db), fresh)
    try:
        return load_portfolio(store, invoices, seed=seed, as_of=DEMO_START)
    finally:
        store.close()


def _simulate(
    store: SQLiteStore,
    db: Path,
    seed: int,
    weeks: int,
    accounts: Sequence[str],
    config: CliConfig,
    channels: LocalChannels,
    pm: Any,
    sim: _Simulation,
    on_day: Callable[[int, int, dt.date], None] | None,
    progress: Callable[[int], None] | None,
) -> tuple[list[DayResult], dt.datetime]:
    """The simulated days: the patients' doings, then the day's run; the results and the last run's time."""
    days = simulated_days(DEMO_START, weeks)
    results: list[DayResult] = []
    last: RunReport | None = None
    now = dt.datetime.combine(DEMO_START, dt.time(DEMO_RUN_HOUR), tzinfo=dt.UTC)
    for index, day in enumerate(days):
        now = dt.datetime.combine(day, dt.time(DEMO_RUN_HOUR), tzinfo=dt.UTC)
        if on_day is not None:
            on_day(index, len(days), day)
        morning = now - dt.timedelta(hours=6)
        paid = sim.payments(morning) if index else 0
        bounced = sim.bounces(last, morning)  # (drawn first: the seeded demo stays the same)
        replies = sim.stop_replies(last, morning)
        events = channels.status_callbacks() + replies + bounced
        if index == _REMITTANCE_DAY and _x12_installed():
            from .demo_remittances import answer_pending_claims

            answer_pending_claims(store, db.parent / f"{db.stem}-remittances", on=day, at=morning, seed=seed)
        opened, resolved = sim.disputes(index, morning)
        contacts = sim.contacts(day, accounts)
        append_records(config.contacts, contacts)
        last = execute_run(
            store,
            now,
            pm,
            channels.settings,
            owner="carecollect demo",
            events=events,
            progress=progress,
            conversations=conversations(read_records(config.contacts)),
        )
        results.append(
            DayResult(day, last, paid, len(replies), opened, resolved, len(contacts), len(bounced))
        )
    callbacks = channels.status_callbacks()  # the last run's, taken in as the next run would
    if callbacks:
        intake(store, pm, channels.settings, callbacks, now, poll_agency=False)
    return results, now


def run_demo(
    db: Path,
    *,
    size: int = 2000,
    weeks: int = 4,
    seed: int = 0,
    fresh: bool = False,
    on_day: Callable[[int, int, dt.date], None] | None = None,
    progress: Callable[[int], None] | None = None,
    deliver: DemoDelivery = DemoDelivery.OUTBOX,
) -> DemoResult:
    """Create the demo database next to ``db`` and take it through ``weeks`` simulated weeks.

    :param db: the database file to create (with ``<stem>.toml``, ``<stem>-outbox/``,
        ``<stem>-contacts.jsonl`` and, with the x12 extra, ``<stem>-remittances/`` beside it).
    :param size: invoices in the portfolio.
    :param weeks: simulated weeks (one run per business day).
    :param seed: the random seed.
    :param fresh: replace an earlier demo at the same path (its database,
        settings, contact records and outbox folder).
    :param on_day: called before each run with ``(index, total, day)``.
    :param progress: called with accounts done during each run.
    :param deliver: send e-mail and SMS to the file outbox, or through the smtp and sms plugins
        to local servers (:mod:`carecollect.demo_channels`; they write ``<stem>-smtp/`` and
        ``<stem>-sms.jsonl``).
    :raises ConfigurationError: ``db`` exists and ``fresh`` is false, or what ``deliver`` needs
        is not installed.
    :raises ValidationError: ``size`` or ``weeks`` out of range.
    """
    if size < 1:
        raise ValidationError("demo", "size", "must be at least 1 invoice")
    if weeks < 1:
        raise ValidationError("demo", "weeks", "must be at least 1 week")
    db = Path(db)
    require_installed(deliver)
    store = _new_demo_store(db, fresh)
    try:
        letters = _pdf_available()
        if letters:  # letters laid out for window envelopes, in print batches
            cfg = config_path(db)
            cfg.write_text(
                cfg.read_text(encoding="utf-8").replace('letter = "outbox"', 'letter = "letter"', 1)
            )
        config = load_config(db)
        # the demo places eligible accounts with the built-in file agency, so the gates show their work
        settings = attrs.evolve(
            config.settings, agency="agency-files", agency_config={"folder": str(_agency_folder(db))}
        )
        rng = random.Random(seed)
        facts = load_portfolio(store, size, seed=seed, as_of=DEMO_START)
        accounts = sorted({r.account_id for r in store.iter_invoice_rows()})
        with local_channels(deliver, db, settings) as channels:
            pm = make_plugin_manager(load_entrypoints=False, plugins=channels.plugins)
            sim = _Simulation(store, rng, size, config.centre_tz, channels)
            results, now = _simulate(
                store, db, seed, weeks, accounts, config, channels, pm, sim, on_day, progress
            )
            servers = channels.tallies()
        report = report_from_store(
            store,
            now,
            days=7 * weeks,
            contacts=read_records(config.contacts),
            centre_country=config.centre_country,
            centre_tz=config.centre_tz,
        )
        outbox = Path(str(settings.channel_config.get("outbox", {}).get("folder", db.parent)))
        folder = settings.channel_config.get("letter", {}).get("folder") if letters else None
        return DemoResult(
            db, outbox, facts, tuple(results), report, Path(folder) if folder else None, servers
        )
    finally:
        store.close()
