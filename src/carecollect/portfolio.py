"""A deterministic synthetic portfolio: patients in the US, Norway, Germany and Bulgaria.

The generator draws everything from one seeded :class:`random.Random`, so the
same ``(size, seed, as_of)`` always gives the same portfolio. ``size`` counts
invoices; each patient has one account with one to three invoices.

* US patients write in ``en``, live in one of four US time zones and pay in
  USD; Norway ``nb`` / Europe/Oslo / NOK; Germany ``de`` / Europe/Berlin / EUR;
  Bulgaria ``bg`` / Europe/Sofia / EUR (the euro since 2026-01-01).
* Invoices are 0-420 days old with the local payment terms; US invoices often
  have an insurance claim (pending, adjudicated with an insurer payment and a
  contractual adjustment, or denied); some invoices are paid in full or in part.
* About 5 % of accounts have a payment plan, 2 % an open dispute, 6 % an opt-out
  from SMS or e-mail, 0.5 % a cease-communication request and 1 % a wish for
  confidential communication.

Two outputs share the same draw: :func:`generate_rows` yields
:class:`~carecollect.store.base.PortfolioRows` batches for
:meth:`~carecollect.store.base.Store.bulk_load` (see :func:`load_portfolio`),
and :func:`iter_invoice_rows` yields the same invoices as plain
:class:`~carecollect.store.base.InvoiceRow` tuples for in-memory benchmarks.

>>> import datetime as dt
>>> rows = list(iter_invoice_rows(6, seed=7, as_of=dt.date(2026, 3, 2)))
>>> len(rows), rows == list(iter_invoice_rows(6, seed=7, as_of=dt.date(2026, 3, 2)))
(6, True)
>>> sorted({r.currency for r in iter_invoice_rows(400, seed=1, as_of=dt.date(2026, 3, 2))})
['EUR', 'NOK', 'USD']
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import attrs

from .errors import ValidationError
from .store.base import InvoiceRow, PortfolioRows, Store

__all__ = [
    "COUNTRIES",
    "CountryProfile",
    "PortfolioFacts",
    "generate_rows",
    "iter_invoice_rows",
    "load_portfolio",
]


@attrs.frozen
class CountryProfile:
    """How patients of one country look in the synthetic portfolio.

    :param country: ISO 3166-1 code.
    :param jurisdiction: the policy pack key.
    :param language: the patients' language.
    :param time_zones: IANA zones patients live in.
    :param currency: what invoices are in.
    :param terms_days: days from issue to due date.
    :param share: the share of patients from this country (out of 100).
    :param line_range: smallest and largest line amount, in minor units.
    :param phone_prefix: the prefix of the (fictitious) phone numbers.
    :param codes: billing codes used on lines.
    :param phone_digits: digits after the prefix (the numbers are valid for the country's plan).
    :param postal: the postal address, ``{n}`` a house number (one line per line break).
    """

    country: str
    jurisdiction: str
    language: str
    time_zones: tuple[str, ...]
    currency: str
    terms_days: int
    share: int
    line_range: tuple[int, int]
    phone_prefix: str
    codes: tuple[str, ...]
    phone_digits: int = 7
    postal: str = "{n} Main Street\nSpringfield, IL 62701"


#: The four countries of the synthetic portfolio.
COUNTRIES: tuple[CountryProfile, ...] = (
    CountryProfile(
        "US",
        "us",
        "en",
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        "USD",
        30,
        40,
        (2_500, 250_000),
        "+12025",
        ("99213", "99214", "80053", "71046", "93000"),
        6,
        "{n} Main Street\nSpringfield, IL 62701",
    ),
    CountryProfile(
        "NO",
        "no",
        "nb",
        ("Europe/Oslo",),
        "NOK",
        14,
        20,
        (15_000, 900_000),
        "+474",
        ("2ad", "2cd", "701a", "706a"),
        7,
        "Storgata {n}\n0155 Oslo",
    ),
    CountryProfile(
        "DE",
        "de",
        "de",
        ("Europe/Berlin",),
        "EUR",
        30,
        25,
        (1_000, 80_000),
        "+49151",
        ("GOÄ 1", "GOÄ 3", "GOÄ 5", "GOÄ 250"),
        8,
        "Hauptstraße {n}\n10115 Berlin",
    ),
    CountryProfile(
        "BG",
        "bg",
        "bg",
        ("Europe/Sofia",),
        "EUR",
        30,
        15,
        (500, 40_000),
        "+35988",
        ("01.01", "03.11", "06.05"),
        7,
        "ул. Витоша {n}\n1000 София",
    ),
)

_CREDITORS = {
    "US": ("CR-US", "Lakeside Community Hospital", "provider", "US", 1, "MN", "Lakeside Billing"),
    "NO": ("CR-NO", "Fjordklinikken AS", "provider", "NO", 0, None, None),
    "DE": ("CR-DE", "Praxis am Park", "provider", "DE", 0, None, None),
    "BG": ("CR-BG", "МБАЛ Витоша", "provider", "BG", 0, None, None),
}
_NAMES = {
    "US": ("Alex Carter", "Jordan Lee", "Sam Rivera", "Taylor Brooks"),
    "NO": ("Kari Nordmann", "Ola Hansen", "Ingrid Berg", "Lars Dahl"),
    "DE": ("Anna Schmidt", "Jonas Weber", "Lena Fischer", "Paul Wagner"),
    "BG": ("Мария Иванова", "Георги Петров", "Елена Димитрова", "Иван Георгиев"),
}


@attrs.frozen
class PortfolioFacts:
    """What :func:`load_portfolio` put in the store."""

    patients: int
    accounts: int
    invoices: int
    ledger_entries: int
    plans: int
    disputes: int


def _check(size: int, seed: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValidationError("Portfolio", "size", f"must be a non-negative int, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError("Portfolio", "seed", f"must be an int, got {seed!r}")


def _instant(day: dt.date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00+00:00"


def _draw(size: int, seed: int, as_of: dt.date) -> Iterator[tuple[PortfolioRows, list[InvoiceRow]]]:
    """One patient (with account and invoices) at a time: its rows and its invoice facts."""
    _check(size, seed)
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise ValidationError("Portfolio", "as_of", "a date (not a datetime) is expected")
    rng = random.Random(seed)
    rand, randint, choice = rng.random, rng.randint, rng.choice
    weights = [c.share for c in COUNTRIES]
    made = 0
    n = 0
    while made < size:
        n += 1
        prof = rng.choices(COUNTRIES, weights)[0]
        pid, aid = f"P{n:08d}", f"A{n:08d}"
        tz = choice(prof.time_zones)
        rows = PortfolioRows()
        joined = as_of - dt.timedelta(days=randint(30, 2000))
        cease = _instant(as_of - dt.timedelta(days=randint(1, 60)), 10) if rand() < 0.005 else None
        confidential = rand() < 0.01
        rows.patients.append(
            (
                pid,
                prof.language,
                tz,
                choice(_NAMES[prof.country]),
                prof.country,
                choice(("MN", "NY", "CA", "TX")) if prof.country == "US" else None,
                "only_listed" if confidential else "none",
                "letter" if confidential else "",
                cease,
                (as_of - dt.timedelta(days=randint(18 * 365, 90 * 365))).isoformat(),
                None,  # no handoff consent recorded (given at the practice, imported when it is)
                None,
                None,
                None,
            )
        )
        opted = rand() < 0.06
        consent = _instant(joined, 9)
        rows.contact_points.extend(
            (
                (pid, 0, "letter", prof.postal.format(n=n % 999 + 1), None, None, None, None, None),
                (
                    pid,
                    1,
                    "email",
                    f"{pid.lower()}@example.org",
                    consent,
                    _instant(as_of - dt.timedelta(days=randint(1, 90)), 12)
                    if opted and rand() < 0.5
                    else None,
                    None,
                    None,
                    None,
                ),
                (
                    pid,
                    2,
                    "sms",
                    f"{prof.phone_prefix}{n % 10**prof.phone_digits:0{prof.phone_digits}d}",
                    consent,
                    _instant(as_of - dt.timedelta(days=randint(1, 90)), 12) if opted else None,
                    None,
                    tz,
                    None,
                ),
            )
        )
        household = randint(1, 6)
        rows.accounts.append(
            (aid, pid, _CREDITORS[prof.country][0], prof.currency, prof.jurisdiction, None, household, None)
        )
        facts: list[InvoiceRow] = []
        count = min(randint(1, 3), size - made)
        disputed_inv: str | None = None
        has_dispute = rand() < 0.02
        for k in range(count):
            made += 1
            iid = f"I{n:08d}-{k}"
            age = randint(0, 420)
            issue = as_of - dt.timedelta(days=age)
            due = issue + dt.timedelta(days=prof.terms_days)
            lo, hi = prof.line_range
            total = 0
            for line in range(randint(1, 3)):
                amount = randint(lo, hi)
                total += amount
                rows.invoice_lines.append(
                    (
                        iid,
                        line,
                        aid,
                        choice(prof.codes),
                        "Consultation and examination",
                        amount,
                        (issue - dt.timedelta(days=randint(1, 10))).isoformat(),
                    )
                )
            claim, paid_ins, adjust, submitted, payer = "none", None, None, None, None
            if prof.country == "US" and rand() < 0.65:
                x = rand()
                submitted = (issue - dt.timedelta(days=randint(0, 5))).isoformat()
                payer = "Acme Health Plan"
                if x < 0.25:
                    claim = "pending"
                elif x < 0.32:
                    claim = "denied"
                else:
                    claim = "adjudicated"
                    adjust = total * randint(10, 40) // 100
                    paid_ins = (total - adjust) * randint(40, 90) // 100
            charge_at = _instant(issue, 8)
            rows.ledger_entries.append(
                (aid, f"charge:{iid}", "charge", total, prof.currency, charge_at, iid, iid, "")
            )
            balance = total
            if paid_ins:
                rows.ledger_entries.append(
                    (
                        aid,
                        f"insurer:{iid}",
                        "insurance_payment",
                        paid_ins,
                        prof.currency,
                        _instant(issue, 9),
                        iid,
                        f"insurer:{iid}",
                        "",
                    )
                )
                balance -= paid_ins
            if adjust:
                rows.ledger_entries.append(
                    (
                        aid,
                        f"contractual:{iid}",
                        "adjustment",
                        adjust,
                        prof.currency,
                        _instant(issue, 9),
                        iid,
                        f"contractual:{iid}",
                        "insurance_adjustment:CO-45",
                    )
                )
                balance -= adjust
            status = "open"
            x = rand()
            if balance > 0 and claim != "pending" and x < 0.12:
                rows.ledger_entries.append(
                    (
                        aid,
                        f"PAY-{iid}#{iid}",
                        "patient_payment",
                        balance,
                        prof.currency,
                        _instant(min(as_of, due), 15),
                        iid,
                        f"PAY-{iid}",
                        "card",
                    )
                )
                balance, status = 0, "paid"
            elif balance > 1 and claim != "pending" and x < 0.22:
                part = balance * randint(10, 60) // 100 or 1
                rows.ledger_entries.append(
                    (
                        aid,
                        f"PAY-{iid}#{iid}",
                        "patient_payment",
                        part,
                        prof.currency,
                        _instant(min(as_of, due), 15),
                        iid,
                        f"PAY-{iid}",
                        "mobile",
                    )
                )
                balance -= part
            first_statement = issue.isoformat() if rand() < 0.9 else None
            rows.invoices.append(
                (
                    iid,
                    aid,
                    prof.currency,
                    issue.isoformat(),
                    due.isoformat(),
                    first_statement,
                    status,
                    "hospital" if prof.country == "US" else "professional",
                    None,
                    claim,
                    paid_ins,
                    adjust,
                    submitted,
                    payer,
                    int(prof.country == "DE"),  # German invoices state the BGB § 286 (3) notice
                    None,
                )
            )
            if has_dispute and disputed_inv is None and status == "open":
                disputed_inv = iid
            facts.append(
                InvoiceRow(
                    iid,
                    aid,
                    pid,
                    prof.jurisdiction,
                    prof.currency,
                    prof.language,
                    tz,
                    status,
                    claim,
                    issue,
                    due,
                    dt.date.fromisoformat(first_statement) if first_statement else None,
                    total,
                    balance,
                    False,
                    None,
                    cease is not None,
                )
            )
        plan_status: str | None = None
        open_ids = [
            f for f in facts if f.status == "open" and f.balance_minor >= 1000 and f.claim_status != "pending"
        ]
        if open_ids and rand() < 0.05:
            target = open_ids[0]
            plan_status = "active" if rand() < 0.8 else "defaulted"
            count_i = randint(3, 12)
            base, extra = divmod(target.balance_minor, count_i)
            plan_id = f"PL{n:08d}"
            created = target.due_date + dt.timedelta(days=randint(1, 20))
            rows.plans.append(
                (
                    plan_id,
                    aid,
                    target.invoice_id,
                    target.balance_minor,
                    prof.currency,
                    _instant(created, 11),
                    plan_status,
                    "0",
                    None,
                )
            )
            for k in range(count_i):
                month = created.month - 1 + k + 1
                due_k = dt.date(created.year + month // 12, month % 12 + 1, min(created.day, 28))
                amount = base + (1 if k < extra else 0)
                state = (
                    "paid"
                    if due_k < as_of and plan_status == "active"
                    else ("missed" if due_k < as_of else "due")
                )
                rows.instalments.append(
                    (
                        plan_id,
                        k,
                        aid,
                        k + 1,
                        due_k.isoformat(),
                        amount,
                        state,
                        amount if state == "paid" else None,
                    )
                )
        if disputed_inv is not None:
            opened = as_of - dt.timedelta(days=randint(0, 40))
            rows.disputes.append(
                (
                    f"D{n:08d}",
                    aid,
                    disputed_inv,
                    choice(("quality_of_service", "billing_error", "above_estimate", "insurance_should_pay")),
                    _instant(opened, 13),
                    "open",
                    0,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    int(rand() < 0.5),
                )
            )
        yield (
            rows,
            [f._replace(open_dispute=f.invoice_id == disputed_inv, plan_status=plan_status) for f in facts],
        )


def iter_invoice_rows(size: int, *, seed: int = 0, as_of: dt.date) -> Iterator[InvoiceRow]:
    """The portfolio's invoices as plain tuples, without a store (for in-memory benchmarks).

    The tuples equal what :meth:`~carecollect.store.sqlite.SQLiteStore.iter_invoice_rows`
    reads back after :func:`load_portfolio` with the same arguments.
    """
    for _rows, facts in _draw(size, seed, as_of):
        yield from facts


def generate_rows(
    size: int, *, seed: int = 0, as_of: dt.date, batch_size: int = 20_000
) -> Iterator[PortfolioRows]:
    """The portfolio as :class:`~carecollect.store.base.PortfolioRows` batches of about ``batch_size`` invoices.

    The first batch also holds the four creditors.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("Portfolio", "batch_size", f"must be a positive int, got {batch_size!r}")
    batch = PortfolioRows(creditors=list(_CREDITORS.values()))
    in_batch = 0
    fields = [f.name for f in attrs.fields(PortfolioRows) if f.name != "creditors"]
    for rows, facts in _draw(size, seed, as_of):
        for name in fields:
            target: list[Any] = getattr(batch, name)
            target.extend(getattr(rows, name))
        in_batch += len(facts)
        if in_batch >= batch_size:
            yield batch
            batch, in_batch = PortfolioRows(), 0
    if in_batch or batch.creditors:
        yield batch


def load_portfolio(
    store: Store, size: int, *, seed: int = 0, as_of: dt.date, batch_size: int = 20_000
) -> PortfolioFacts:
    """Generate a portfolio of ``size`` invoices straight into ``store``, one transaction per batch.

    :returns: how many records of each kind were written.
    """
    totals = dict.fromkeys(("patients", "accounts", "invoices", "ledger_entries", "plans", "disputes"), 0)
    for batch in generate_rows(size, seed=seed, as_of=as_of, batch_size=batch_size):
        store.bulk_load(batch)
        for key in totals:
            totals[key] += len(getattr(batch, key))
    return PortfolioFacts(**totals)
