"""Opening hours per creditor: each clinic's messages and pay pages say its own hours.

Two clinics of one installation answer the phone at different times; the installation's
``[creditor.hours]`` serves every creditor without hours of its own. Messages say the hours
under the help line, in the patient's language and time zone; the contact page shows them in
the patient's zone. Bad hours are refused naming the section and key.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.context import MessageContext
from carecollect.messages.render import Renderer
from carecollect.money import Money
from carecollect.office_hours import OfficeHours
from carecollect.outreach import OutreachPurpose
from carecollect.portfolio import load_portfolio
from carecollect.run.settings_file import config_path, load_config
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC)

HOURS = """
[creditor.hours]
days = "Mon-Fri 09:00-15:00"
time_zone = "Europe/Oslo"
holidays = "NO"

[creditors.CR-DE.hours]
days = "Mon-Fri 08:00-16:00; Thu 08:00-18:00"
time_zone = "Europe/Berlin"
holidays = "DE"

[creditors.CR-US.hours]
days = "Mon-Fri 07:30-15:30; Sat 09:00-12:00"
time_zone = "America/Chicago"
"""


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ("Mon-Fri 8-16", "days", "is not like"),
        ("Mon-Fru 08:00-16:00", "days", "'fru' is not a day"),
        ("Fri-Mon 08:00-16:00", "days", "run backwards"),
        ("Mon-Fri 16:00-08:00", "days", "closes before it opens"),
        ("Mon-Fri 08:00-25:00", "days", "not a time of day"),
        ("", "days", "at least one span"),
    ],
)
def test_bad_hours_are_refused_naming_the_field(spec: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OfficeHours.parse(spec, time_zone="Europe/Oslo")
    assert caught.value.field == field and words in caught.value.problem


def test_an_unknown_zone_or_country_is_refused() -> None:
    with pytest.raises(Exception, match="Europe/Atlantis"):
        OfficeHours.parse("Mon 08:00-16:00", time_zone="Europe/Atlantis")
    with pytest.raises(ValidationError, match="XX"):
        OfficeHours.parse("Mon 08:00-16:00", time_zone="Europe/Oslo", holidays="XX")


def test_the_week_holidays_and_open_instants() -> None:
    hours = OfficeHours.parse(
        "Mon-Fri 08:00-16:00; Thu 08:00-18:00; Sat 09:00-12:00", time_zone="Europe/Berlin", holidays="DE"
    )
    assert hours.schedule()[4] == (dt.time(8), dt.time(18)) and hours.schedule()[6] == (
        dt.time(9),
        dt.time(12),
    )
    assert 7 not in hours.schedule()
    assert hours.on(dt.date(2026, 12, 25)) is None  # Christmas Day, a Friday
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert hours.is_open(dt.datetime(2026, 3, 5, 17, 30, tzinfo=berlin))  # Thursday evening
    assert not hours.is_open(dt.datetime(2026, 3, 6, 17, 30, tzinfo=berlin))  # Friday evening
    assert not hours.is_open(dt.datetime(2026, 3, 8, 10, tzinfo=berlin))  # Sunday


def test_the_hours_read_in_each_language_and_in_the_patients_zone() -> None:
    hours = OfficeHours.parse("Mon-Fri 08:00-16:00; Thu 08:00-18:00", time_zone="Europe/Berlin")
    assert hours.describe("en_GB") == "Mon–Wed, Fri 08:00–16:00; Thu 08:00–18:00"
    assert hours.describe("en_US") == "Mon–Wed, Fri 8:00 AM–4:00 PM; Thu 8:00 AM–6:00 PM"
    assert hours.describe("de") == "Mo.–Mi., Fr. 08:00–16:00; Do. 08:00–18:00"
    assert hours.describe("nb") == "man.–ons., fre. 08:00–16:00; tor. 08:00–18:00"
    assert hours.describe("bg") == "пн–ср, пт 8:00–16:00; чт 8:00–18:00"
    # a patient in New York reads them in New York time (winter: six hours behind Berlin)
    assert hours.describe("en_US", in_zone="America/New_York", on=dt.date(2026, 1, 5)) == (
        "Mon–Wed, Fri 2:00 AM–10:00 AM; Thu 2:00 AM–12:00 PM"
    )


def _context(lang_zone: str | None, hours: OfficeHours | None, jurisdiction: str) -> MessageContext:
    return MessageContext(
        reference="INV-1",
        creditor_name="Clinic",
        jurisdiction=jurisdiction,
        today=dt.date(2026, 3, 2),
        phone="+47 22 00 00 00",
        email="billing@example.org",
        amount_due=Money("450.00", "NOK"),
        due_date=dt.date(2026, 3, 20),
        office_hours=hours,
        time_zone=lang_zone,
        opt_out_url="https://portal.example.org/stop",
        pay_link="https://pay.example.org/p/abc",
    )


@pytest.mark.parametrize(
    ("language", "jurisdiction", "said"),
    [
        ("en", "us", "We answer the phone Mon–Fri 9:00 AM–3:00 PM."),
        ("de", "de", "Telefonisch erreichen Sie uns Mo.–Fr. 09:00–15:00."),
        ("nb", "no", "Vi svarer på telefon man.–fre. 09:00–15:00."),
        ("bg", "bg", "Отговаряме на телефона пн–пт 9:00–15:00."),
    ],
)
def test_messages_say_the_hours_in_the_patients_language(language: str, jurisdiction: str, said: str) -> None:
    hours = OfficeHours.parse("Mon-Fri 09:00-15:00", time_zone="Europe/Oslo")
    renderer = Renderer()
    for channel in (Channel.EMAIL, Channel.LETTER):
        text = renderer.render(
            OutreachPurpose.REMINDER, channel, language, _context("Europe/Oslo", hours, jurisdiction)
        ).text
        assert said in text
    # in another zone the message says the times are the patient's
    text = renderer.render(
        OutreachPurpose.REMINDER, Channel.LETTER, language, _context("America/New_York", hours, jurisdiction)
    ).text
    assert "03:00–09:00" in text or "3:00 AM–9:00 AM" in text or "3:00–9:00" in text
    # no hours set: nothing said
    bare = renderer.render(
        OutreachPurpose.REMINDER, Channel.LETTER, language, _context(None, None, jurisdiction)
    ).text
    assert said not in bare


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinics.sqlite"
    assert CliRunner().invoke(main, ["init", "--db", str(path)]).exit_code == 0
    with SQLiteStore(path) as store:
        load_portfolio(store, 60, seed=5, as_of=NOW.date())
    cfg = config_path(path)
    # each message is read as its own file: the outbox writes a file per message
    text = cfg.read_text(encoding="utf-8").replace('layout = "spool"', 'layout = "files"', 1)
    cfg.write_text(text + HOURS, encoding="utf-8")
    return path


def test_each_creditor_resolves_its_own_hours_or_the_installations(db: Path) -> None:
    settings = load_config(db).settings
    de, us, no = (settings.for_creditor(c).office_hours for c in ("CR-DE", "CR-US", "CR-NO"))
    assert (
        de is not None and de.time_zone == "Europe/Berlin" and de.schedule()[4] == (dt.time(8), dt.time(18))
    )
    assert us is not None and us.time_zone == "America/Chicago" and 6 in us.schedule()
    assert no is not None and no.time_zone == "Europe/Oslo" and no.holidays == "NO"  # the installation's


def test_config_check_prints_each_creditors_hours(db: Path) -> None:
    result = CliRunner().invoke(
        main, ["config", "check", "--db", str(db)], env={"CARECOLLECT_PAY_LINK_KEY": "c3" * 32}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    de = out[out.index("[creditors.CR-DE]") :]
    assert (
        "hours = Mon–Wed, Fri 08:00–16:00; Thu 08:00–18:00 (Europe/Berlin; closed on public holidays of DE)"
        in de
    )
    us = out[out.index("[creditors.CR-US]") :]
    assert "hours = Mon–Fri 07:30–15:30; Sat 09:00–12:00 (America/Chicago)" in us
    assert "hours = Mon–Fri 09:00–15:00 (Europe/Oslo; closed on public holidays of NO)" in out


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[creditors.CR-DE.hours]\ndays = "Mon-Fri 08:00-16:00"\n', "needs days"),
        (
            '[creditors.CR-DE.hours]\ndays = "Mon-Fri 8"\ntime_zone = "Europe/Berlin"\n',
            "creditors.CR-DE.hours.days",
        ),
        (
            '[creditors.CR-DE.hours]\ndays = "Mon 08:00-16:00"\ntime_zone = "Europe/Berlin"\nholiday = "DE"\n',
            "unknown key 'holiday' in [creditors.CR-DE.hours] (did you mean 'holidays'?)",
        ),
        (
            '[creditor.hours]\ndays = "Mon 08:00-16:00"\ntime_zone = "Europe/Berlin"\nholidays = "XX"\n',
            "creditor.hours.holidays",
        ),
    ],
)
def test_bad_hours_in_the_settings_file_are_refused_naming_section_and_key(
    tmp_path: Path, table: str, expected: str
) -> None:
    path = tmp_path / "bad.sqlite"
    assert CliRunner().invoke(main, ["init", "--db", str(path)]).exit_code == 0
    with SQLiteStore(path) as store:
        load_portfolio(store, 10, seed=5, as_of=NOW.date())
    cfg = config_path(path)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n" + table, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_config(path)
    assert expected in str(caught.value)


def test_each_clinics_messages_say_its_own_hours(db: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--db", str(db), "--as-of", "2026-03-02"], env={"CARECOLLECT_PAY_LINK_KEY": "c3" * 32}
    )
    assert result.exit_code == 0, result.output
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        creditor_of = dict(
            conn.execute("SELECT i.id, a.creditor_id FROM invoices i JOIN accounts a ON a.id = i.account_id")
        )
    seen = {}
    for path in sorted(db.with_name("clinics-outbox").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        creditor = creditor_of[path.name.split(".")[0]]
        seen.setdefault(creditor, []).append(text)
    assert {"CR-DE", "CR-US", "CR-NO"} <= set(seen)
    assert all("08:00–18:00" in t for t in seen["CR-DE"])  # Thursday until six, in Berlin
    # Lakeside's Saturday morning, in the patient's own US zone (Chicago: as set; others: converted)
    assert all(re.search(r"Sat \d{1,2}:\d\d [AP]M–\d{1,2}:\d\d [AP]M", t) for t in seen["CR-US"])
    assert any("Sat 9:00 AM–12:00 PM" in t or "Sat 10:00 AM–1:00 PM" in t for t in seen["CR-US"])
    # the Norwegian clinic runs on the installation's hours, in Norwegian for its patients
    assert all("man.–fre. 09:00–15:00" in t for t in seen["CR-NO"])
    assert not any("08:00–18:00" in t for t in seen["CR-NO"] + seen["CR-US"])
