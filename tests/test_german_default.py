"""BGB § 286: the day a German consumer's default began, and § 288 default interest from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from carecollect.errors import ValidationError
from carecollect.invoices import Invoice, InvoiceLine, InvoiceStatus
from carecollect.money import Money
from carecollect.policy import get_pack
from carecollect.relief.fees import FeeSettings, germany_default_interest
from carecollect.relief.payment_default import DefaultCause, germany_default_start

DE = get_pack("de")
DUE = dt.date(2026, 2, 5)
ON = FeeSettings(late_interest=True)


def invoice(*, notice: bool = True, received: dt.date | None = dt.date(2026, 1, 8)) -> Invoice:
    return Invoice(
        "INV-1",
        "A-1",
        "EUR",
        (InvoiceLine("GOÄ 1", "Beratung", Money("1000.00", "EUR"), dt.date(2026, 1, 5)),),
        dt.date(2026, 1, 6),
        DUE,
        status=InvoiceStatus.OPEN,
        default_notice_given=notice,
        received_on=received,
    )


def test_the_invoice_records_the_notice_and_its_receipt() -> None:
    inv = invoice()
    assert inv.default_notice_given and inv.received_on == dt.date(2026, 1, 8)
    assert not Invoice("I-2", "A-1", "EUR", inv.lines, inv.issue_date, DUE).default_notice_given
    with pytest.raises(ValidationError, match="received_on"):
        invoice(received=dt.date(2026, 1, 5))  # before it was issued
    with pytest.raises(ValidationError, match="default_notice_given"):
        Invoice("I-3", "A-1", "EUR", inv.lines, inv.issue_date, DUE, default_notice_given="yes")  # type: ignore[arg-type]


def test_with_the_notice_default_begins_on_day_31_after_due_date_and_receipt() -> None:
    start = germany_default_start(invoice(), reminder_received_on=None, pack=DE)
    assert start is not None and start.cause is DefaultCause.THIRTY_DAYS
    # received before the due date: the 30 days run from the due date; 7 March is the 30th day
    assert start.began_on == dt.date(2026, 3, 8) == start.interest_from
    assert any("286" in r.source for r in start.reasons)
    # received after the due date: from receipt (10 February + 30 = 12 March, the last day to pay)
    late = germany_default_start(invoice(received=dt.date(2026, 2, 10)), reminder_received_on=None, pack=DE)
    assert late is not None and late.began_on == dt.date(2026, 3, 13)
    # received on the due date itself
    same = germany_default_start(invoice(received=DUE), reminder_received_on=None, pack=DE)
    assert same is not None and same.began_on == dt.date(2026, 3, 8)


def test_without_the_notice_only_a_reminder_after_the_due_date_starts_default() -> None:
    plain = invoice(notice=False)
    assert germany_default_start(plain, reminder_received_on=None, pack=DE) is None
    # a Mahnung received on the due date comes too early: the patient may still pay that day
    assert germany_default_start(plain, reminder_received_on=DUE, pack=DE) is None
    start = germany_default_start(plain, reminder_received_on=DUE + dt.timedelta(days=1), pack=DE)
    assert start is not None and start.cause is DefaultCause.REMINDER
    assert start.began_on == dt.date(2026, 2, 6) and start.interest_from == dt.date(2026, 2, 7)


def test_a_notice_needs_a_known_receipt() -> None:
    unknown = invoice(received=None)
    assert germany_default_start(unknown, reminder_received_on=None, pack=DE) is None
    start = germany_default_start(unknown, reminder_received_on=dt.date(2026, 2, 20), pack=DE)
    assert start is not None and start.cause is DefaultCause.REMINDER


def test_a_reminder_before_receipt_of_the_invoice_does_not_count() -> None:
    late = invoice(notice=False, received=dt.date(2026, 2, 20))
    assert germany_default_start(late, reminder_received_on=dt.date(2026, 2, 10), pack=DE) is None


def test_the_earlier_of_the_two_rules_wins() -> None:
    early = germany_default_start(invoice(), reminder_received_on=dt.date(2026, 2, 20), pack=DE)
    assert (
        early is not None and early.cause is DefaultCause.REMINDER and early.began_on == dt.date(2026, 2, 20)
    )
    later = germany_default_start(invoice(), reminder_received_on=dt.date(2026, 3, 20), pack=DE)
    assert later is not None and later.cause is DefaultCause.THIRTY_DAYS
    assert later.began_on == dt.date(2026, 3, 8)


def test_default_interest_runs_from_the_start_of_default() -> None:
    start = germany_default_start(invoice(), reminder_received_on=None, pack=DE)
    assert start is not None
    principal = Money("1000.00", "EUR")
    # day 31 is the first day of interest: one day at 6.27 % a year
    one = germany_default_interest(principal, start=start, until=dt.date(2026, 3, 8), pack=DE, settings=ON)
    assert one.amount == Money("0.17", "EUR")
    year = germany_default_interest(principal, start=start, until=dt.date(2027, 3, 7), pack=DE, settings=ON)
    assert year.amount == Money("62.70", "EUR")
    with pytest.raises(ValidationError, match="until"):
        germany_default_interest(principal, start=start, until=dt.date(2026, 3, 6), pack=DE, settings=ON)
    # the day of the 30th day: nothing is owed yet
    assert germany_default_interest(
        principal, start=start, until=dt.date(2026, 3, 7), pack=DE, settings=ON
    ).amount == Money("0.00", "EUR")
    reminder = germany_default_start(
        invoice(notice=False), reminder_received_on=dt.date(2026, 2, 20), pack=DE
    )
    assert reminder is not None
    # received on 20 February: interest from 21 February (BGB § 187 (1))
    two = germany_default_interest(
        principal, start=reminder, until=dt.date(2026, 2, 22), pack=DE, settings=ON
    )
    assert two.amount == Money("0.34", "EUR")
    with pytest.raises(ValidationError, match="start"):
        germany_default_interest(  # type: ignore[call-arg]
            principal, until=dt.date(2026, 2, 22), pack=DE, settings=ON
        )


def test_a_german_statement_prints_the_notice_when_the_invoice_gave_it() -> None:
    import attrs

    from carecollect.channels import Channel
    from carecollect.messages.examples import context
    from carecollect.messages.render import render
    from carecollect.messages.statement import build_statement
    from carecollect.outreach import OutreachPurpose

    def text(*args: object) -> str:
        return " ".join(render(*args).text.split())  # type: ignore[arg-type]  # letters wrap their lines

    ctx = context(OutreachPurpose.STATEMENT, "de")
    assert ctx.statement is not None and ctx.statement.default_notice_given
    clause = "30 Tage nach Fälligkeit und Zugang dieser Rechnung in Verzug"
    for channel in (Channel.LETTER, Channel.EMAIL, Channel.PORTAL):
        assert clause in text(OutreachPurpose.STATEMENT, channel, "de", ctx)
    assert "30 days after the due date and receipt" in text(
        OutreachPurpose.STATEMENT, Channel.LETTER, "en", ctx
    )
    plain = attrs.evolve(ctx, statement=attrs.evolve(ctx.statement, default_notice_given=False))
    assert clause not in text(OutreachPurpose.STATEMENT, Channel.LETTER, "de", plain)
    # the notice is German law: another jurisdiction's statement never prints it
    us = context(OutreachPurpose.STATEMENT, "us")
    us = attrs.evolve(us, statement=attrs.evolve(us.statement, default_notice_given=True))
    assert "286" not in text(OutreachPurpose.STATEMENT, Channel.LETTER, "en", us)
    assert build_statement(invoice()).default_notice_given


def test_the_invoice_facts_round_trip_through_json_csv_fhir_and_sqlite(tmp_path: Path) -> None:
    from carecollect.importers import (
        FORMAT,
        ImportFailed,
        export_csv,
        export_document,
        import_csv,
        import_json,
    )
    from carecollect.store.sqlite import SQLiteStore

    def doc(**facts: object) -> dict[str, object]:
        return {
            "format": FORMAT,
            "creditors": [{"id": "CR-DE", "name": "Praxis", "country": "DE"}],
            "patients": [{"id": "P-1", "time_zones": ["Europe/Berlin"], "country": "DE"}],
            "accounts": [
                {
                    "id": "A-1",
                    "patient_id": "P-1",
                    "creditor_id": "CR-DE",
                    "currency": "EUR",
                    "jurisdiction": "de",
                }
            ],
            "invoices": [
                {
                    "id": "INV-1",
                    "account_id": "A-1",
                    "currency": "EUR",
                    "issue_date": "2026-01-06",
                    "due_date": "2026-02-05",
                    "lines": [{"code": "1", "amount": "40.22", "service_date": "2026-01-05"}],
                    **facts,
                },
                {
                    "id": "INV-2",
                    "account_id": "A-1",
                    "currency": "EUR",
                    "issue_date": "2026-01-06",
                    "due_date": "2026-02-05",
                    "lines": [{"code": "1", "amount": "10.00", "service_date": "2026-01-05"}],
                },
            ],
        }

    with SQLiteStore(tmp_path / "a.db") as store:
        import_json(store, doc(default_notice_given=True, received_on="2026-01-08"))
        first = store.get_invoice("INV-1")
        assert first.default_notice_given and first.received_on == dt.date(2026, 1, 8)
        assert not store.get_invoice("INV-2").default_notice_given
        assert store.get_invoice("INV-2").received_on is None
        export_csv(store, tmp_path / "csv")
        with SQLiteStore(tmp_path / "b.db") as second:
            import_csv(second, tmp_path / "csv")
            assert second.get_invoice("INV-1") == first
            assert export_document(second) == export_document(store)
        fhir = pytest.importorskip("carecollect.importers.fhir")
        pytest.importorskip("fhir.resources")
        with SQLiteStore(tmp_path / "c.db") as third:
            fhir.import_fhir(third, fhir.export_fhir_bundle(store))
            assert third.get_invoice("INV-1").default_notice_given
            assert third.get_invoice("INV-1").received_on == dt.date(2026, 1, 8)
            assert not third.get_invoice("INV-2").default_notice_given
    with SQLiteStore(tmp_path / "d.db") as store:
        for facts, field in (
            ({"received_on": "2026-01-05"}, "received_on"),
            ({"received_on": "8.1.2026"}, "received_on"),
            ({"default_notice_given": "maybe"}, "default_notice_given"),
        ):
            with pytest.raises(ImportFailed) as info:
                import_json(store, doc(**facts))
            (problem,) = info.value.problems
            assert problem.where == "invoices[0]" and problem.field == field
