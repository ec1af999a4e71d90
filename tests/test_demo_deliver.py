"""``carecollect demo --deliver``: the demo's e-mail and SMS through real channel plugins to local servers.

The servers are real (aiosmtpd on loopback writing a Maildir; the sms plugin's local Twilio,
an HTTP server on loopback); the tests count what they received against what the runs say
they sent through each channel, check the bodies and subjects for protected health
information with the project's own checks, and prove that only the transport changes: the
same seed gives the same figures as the file outbox.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import importlib.util
import json
import mailbox
from pathlib import Path

import pytest
from click.testing import CliRunner

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.demo import DemoResult, run_demo
from carecollect.demo_channels import DemoDelivery, require_installed
from carecollect.errors import ConfigurationError
from carecollect.messages.checks import CLINICAL_WORDS
from carecollect.messages.conditions import clinical_matcher
from carecollect.outreach import AttemptOutcome
from carecollect.store.sqlite import SQLiteStore

pytest.importorskip("aiosmtpd", reason="needs carecollect[demo-channels]")
pytest.importorskip("carecollect_smtp", reason="needs the carecollect-smtp plugin (plugins/carecollect-smtp)")
pytest.importorskip("carecollect_sms", reason="needs the carecollect-sms plugin (plugins/carecollect-sms)")

INVOICES = 300
WEEKS = 2  # SMS reminders and STOP replies start in the second week


def _sent(result: DemoResult, channel: Channel) -> int:
    return sum(d.report.sent_by_channel.get(channel, 0) for d in result.days)


def _figures(result: DemoResult) -> list[tuple[object, ...]]:
    return [
        (d.day, d.report.sent, d.report.failed, d.report.suppressed, d.stop_replies, d.bounces, d.payments)
        for d in result.days
    ]


def _points(db: Path, channel: Channel) -> tuple[int, int]:
    """(opted out, undeliverable) contact points of ``channel`` in the demo's store."""
    with contextlib.closing(SQLiteStore(db)) as store:
        points = [p for patient in store.patients() for p in patient.points(channel)]
    return (
        sum(p.opted_out_at is not None for p in points),
        sum(p.undeliverable_at is not None for p in points),
    )


def _bounced(db: Path) -> int:
    """Attempts the store recorded as bounced (a delivery report matched the message it names)."""
    with contextlib.closing(SQLiteStore(db)) as store:
        accounts = {r.account_id for r in store.iter_invoice_rows()}
        return sum(
            a.outcome is AttemptOutcome.BOUNCED for account in accounts for a in store.attempts_for(account)
        )


def _phi_free(text: str, language: str, names: list[str]) -> None:
    base = CLINICAL_WORDS.get(language, ()) + CLINICAL_WORDS["en"]
    assert not clinical_matcher(language, (), base=base).find(text), text
    assert not [n for n in names if n and n in text], text


@pytest.fixture(scope="module")
def through_outbox(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    db = tmp_path_factory.mktemp("outbox") / "carecollect-demo.sqlite"
    return run_demo(db, size=INVOICES, weeks=WEEKS)


@pytest.fixture(scope="module")
def through_servers(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    db = tmp_path_factory.mktemp("all") / "carecollect-demo.sqlite"
    return run_demo(db, size=INVOICES, weeks=WEEKS, deliver=DemoDelivery.ALL)


def test_each_server_received_what_the_runs_sent_through_it(through_servers: DemoResult) -> None:
    smtp, sms = through_servers.servers
    assert (smtp.channel, smtp.plugin, sms.channel, sms.plugin) == (Channel.EMAIL, "smtp", Channel.SMS, "sms")
    assert smtp.received == _sent(through_servers, Channel.EMAIL) > 0
    assert sms.received == _sent(through_servers, Channel.SMS) > 0
    assert smtp.address.startswith("127.0.0.1:") and sms.address.startswith("127.0.0.1:")
    # what they wrote down holds as many
    assert smtp.written_to == through_servers.db.parent / "carecollect-demo-smtp"
    assert len(mailbox.Maildir(smtp.written_to, create=False)) == smtp.received
    lines = sms.written_to.read_text(encoding="utf-8").splitlines()
    assert len(lines) == sms.received
    # nothing went to the outbox but letters (or nothing at all with the pdf extra)
    outbox = list(through_servers.outbox.iterdir()) if through_servers.outbox.is_dir() else []
    assert not [p for p in outbox if p.suffix in (".eml", ".txt") and "_letter" not in p.name]


def test_no_health_information_in_sms_bodies_or_subjects(through_servers: DemoResult) -> None:
    smtp, sms = through_servers.servers
    with contextlib.closing(SQLiteStore(through_servers.db)) as store:
        names = [p.name for p in store.patients()]
    subjects = 0
    for _key, raw in mailbox.Maildir(smtp.written_to, factory=None, create=False).items():
        mail = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        _phi_free(str(mail["Subject"]), str(mail["Content-Language"]), names)
        assert mail["From"] == "billing@clinic.example" and mail["Message-ID"]
        assert mail["List-Unsubscribe"] and mail.get_body(("plain",)) is not None
        subjects += 1
    assert subjects == smtp.received
    for line in sms.written_to.read_text(encoding="utf-8").splitlines():
        sent = json.loads(line)
        language = "bg" if sent["encoding"] == "ucs2" else "en"
        _phi_free(sent["Body"], language, names)
        assert sent["To"].startswith("+") and sent["From"] == "+15005550006"
    # the sample the demo prints names no recipient
    for tally in (smtp, sms):
        assert "To" not in dict(tally.sample)
        assert not [n for n in names if n and n in str(tally.sample)]


def test_status_callbacks_and_stop_replies_come_back_through_the_sms_channel(
    through_servers: DemoResult,
) -> None:
    sms = through_servers.servers[1]
    stops = sum(d.stop_replies for d in through_servers.days)
    assert stops > 0
    assert dict(sms.came_back) == {"status callbacks": sms.received, "STOP replies": stops}
    # every STOP was verified and parsed by the sms channel and opted the patient out
    assert sum(d.report.intake.opt_outs for d in through_servers.days if d.report.intake) == stops
    # each run took the callbacks of the run before; the last run's were taken after it
    last = through_servers.days[-1].report.sent_by_channel.get(Channel.SMS, 0)
    taken = sum(d.report.intake.delivery_reports for d in through_servers.days if d.report.intake)
    assert taken == sms.received - last + sum(d.bounces for d in through_servers.days)


def test_only_the_transport_changes(through_outbox: DemoResult, through_servers: DemoResult) -> None:
    assert _figures(through_servers) == _figures(through_outbox)
    assert through_servers.report.messages == through_outbox.report.messages
    # the simulated e-mail bounces named the smtp channel's Message-IDs: the same addresses are marked
    assert _points(through_servers.db, Channel.EMAIL) == _points(through_outbox.db, Channel.EMAIL)
    assert (
        _bounced(through_servers.db)
        == _bounced(through_outbox.db)
        == sum(d.bounces for d in through_servers.days)
    )
    assert _points(through_servers.db, Channel.EMAIL)[1] > 0
    assert _points(through_servers.db, Channel.SMS) == _points(through_outbox.db, Channel.SMS)


def test_smtp_alone_leaves_sms_in_the_outbox(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "d.sqlite", size=60, weeks=1, deliver=DemoDelivery.SMTP)
    (smtp,) = result.servers
    assert smtp.received == _sent(result, Channel.EMAIL) > 0
    assert len(mailbox.Maildir(smtp.written_to, create=False)) == smtp.received
    assert not list(result.outbox.glob("*.eml"))
    # a fresh demo at the same path starts an empty Maildir
    again = run_demo(tmp_path / "d.sqlite", size=60, weeks=1, deliver=DemoDelivery.SMTP, fresh=True)
    assert len(mailbox.Maildir(again.servers[0].written_to, create=False)) == again.servers[0].received


def test_the_command_prints_what_the_servers_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["demo", "--invoices", "60", "--weeks", "1", "--deliver", "smtp"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Delivered through local servers:" in out
    assert "smtp channel -> local SMTP server (aiosmtpd) at 127.0.0.1:" in out
    assert "written to carecollect-demo-smtp/" in out and "Subject: " in out and "\n    To:" not in out
    assert "e-mail bounces stay simulated" in out


def test_no_deliver_with_no_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--db", str(tmp_path / "d.sqlite"), "--no-run", "--deliver", "sms"]
    )
    assert result.exit_code == 2 and "--no-run" in result.output
    assert not (tmp_path / "d.sqlite").exists()


@pytest.mark.parametrize(
    ("deliver", "hidden", "says"),
    [
        ("smtp", "aiosmtpd", 'aiosmtpd, not installed: pip install "carecollect[demo-channels]"'),
        ("sms", "carecollect_sms", "carecollect-sms, not installed: pip install carecollect-sms"),
        ("all", "carecollect_smtp", "pip install carecollect-smtp (from a checkout: pip install -e plugins/"),
    ],
)
def test_a_missing_package_is_one_line_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deliver: str, hidden: str, says: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == hidden else real(name, *a)
    )
    with pytest.raises(ConfigurationError):
        require_installed(DemoDelivery(deliver))
    db = tmp_path / "d.sqlite"
    result = CliRunner().invoke(main, ["demo", "--db", str(db), "--deliver", deliver])
    assert result.exit_code == 1
    assert says in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert not db.exists()
