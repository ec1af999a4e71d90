"""Many creditors in one installation: each clinic's patients hear from their clinic.

A billing service runs two clinics (and two more on the installation's defaults) from one
database and one settings file. Each ``[creditors.<id>]`` section gives its clinic its own
phone, e-mail, pay-link page and key, channels, outbox and house rules; the run sends every
account's messages on its creditor's settings. A wrong section is refused naming the creditor
and the key, before anything is planned or sent; secrets are never printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.errors import CareCollectError
from carecollect.messages.paylinks import PayLinkSigner
from carecollect.portfolio import load_portfolio
from carecollect.run.settings import CreditorSettings, RunSettings
from carecollect.run.settings_file import config_path, default_config_text, load_config, parse_config
from carecollect.store.sqlite import SQLiteStore

AS_OF = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC)
PRAXIS_KEY = "5a" * 32
INSTALLATION_KEY = "c3" * 32
WEBHOOK_SECRET = "whsec-lakeside-7f3a9c"

TWO_CLINICS = """
[creditors.CR-DE]
phone = "+49 30 1234567"
email = "rechnung@praxis-am-park.example"
pay_link_base = "https://zahlen.praxis-am-park.example/p"
pay_link_key = "file:secrets/praxis-pay-link.hex"

[creditors.CR-DE.plugins.outbox]
folder = "praxis-outbox"

[creditors.CR-DE.house_rules.de]
"cadence.min_days_between_messages" = 14

[creditors.CR-US]
phone = "+1 612 555 0199"
email = "billing@lakeside.example"
pay_link_base = "https://pay.lakeside.example/p"
portal_url = ""

[creditors.CR-US.channels]
# Lakeside sends letters only
email = ""
sms = ""
phone = ""
portal = ""

[creditors.CR-US.plugins.outbox]
folder = "lakeside-outbox"

[creditors.CR-US.payment_providers.manual]
webhook_secret = "env:LAKESIDE_WEBHOOK_SECRET"
"""

ENV = {"LAKESIDE_WEBHOOK_SECRET": WEBHOOK_SECRET, "CARECOLLECT_PAY_LINK_KEY": INSTALLATION_KEY}


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _refused(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinics.sqlite"
    assert _cli("init", "--db", str(path)).exit_code == 0
    with SQLiteStore(path) as store:
        load_portfolio(store, 60, seed=5, as_of=NOW.date())
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "praxis-pay-link.hex").write_text(PRAXIS_KEY + "\n", encoding="utf-8")
    cfg = config_path(path)
    # the clinics' messages are opened one by one: the outbox writes a file per message
    text = cfg.read_text(encoding="utf-8").replace('layout = "spool"', 'layout = "files"', 1)
    cfg.write_text(text + TWO_CLINICS, encoding="utf-8")
    return path


def _creditor_of_invoice(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT i.id, a.creditor_id FROM invoices i JOIN accounts a ON a.id = i.account_id"
        )
        return dict(rows.fetchall())


def _sent(folder: Path) -> dict[str, str]:
    """The text of every message in an outbox folder (e-mails: their plain-text part)."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".txt":
            out[path.name] = path.read_text(encoding="utf-8")
        elif path.suffix == ".eml":
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
            out[path.name] = str(msg["Subject"]) + "\n" + body.get_content()
    return out


def _token(text: str, base: str) -> str:
    start = text.index(base + "/") + len(base) + 1
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def test_two_clinics_run_end_to_end_each_patient_hears_from_their_clinic(db: Path) -> None:
    result = _cli("run", "--db", str(db), "--as-of", AS_OF, env=ENV)
    assert result.exit_code == 0, result.output
    assert WEBHOOK_SECRET not in result.output and PRAXIS_KEY not in result.output
    creditor_of = _creditor_of_invoice(db)
    praxis = _sent(db.with_name("praxis-outbox"))
    lakeside = _sent(db.with_name("lakeside-outbox"))
    others = _sent(db.with_name("clinics-outbox"))
    assert praxis and lakeside and others

    def invoice(name: str) -> str:
        return name.split(".")[0]

    # each clinic's outbox holds its own patients' messages, and only theirs
    assert {creditor_of[invoice(n)] for n in praxis} == {"CR-DE"}
    assert {creditor_of[invoice(n)] for n in lakeside} == {"CR-US"}
    assert {creditor_of[invoice(n)] for n in others} == {"CR-NO", "CR-BG"}
    praxis_signer = PayLinkSigner(bytes.fromhex(PRAXIS_KEY), "https://zahlen.praxis-am-park.example/p")
    for name, text in praxis.items():
        assert "Praxis am Park" in text
        assert "+49 30 1234567" in text and "+1 555 0100" not in text
        assert "rechnung@praxis-am-park.example" in text
        if name.endswith(".txt"):  # the letter carries the pay link, signed with the clinic's own key
            token = _token(text, "https://zahlen.praxis-am-park.example/p")
            claim = praxis_signer.verify(token, now=NOW, used=set())
            assert claim.invoice_id == invoice(name)
            with pytest.raises(CareCollectError):
                PayLinkSigner(bytes.fromhex(INSTALLATION_KEY), "https://pay.example.org/p").verify(
                    token, now=NOW, used=set()
                )
    # Lakeside sends letters only: its e-mails were suppressed, not sent elsewhere
    assert all(n.endswith("_letter.txt") for n in lakeside)
    for text in lakeside.values():
        assert "Lakeside Community Hospital" in text
        assert "+1 612 555 0199" in text and "+1 555 0100" not in text
        assert "https://pay.lakeside.example/p/" in text
    # the other two clinics run on the installation's defaults
    assert any(n.endswith(".eml") for n in others)
    for name, text in others.items():
        assert "+1 555 0100" in text
        if name.endswith(".txt"):
            assert "https://pay.example.org/p/" in text


def test_the_settings_resolve_per_creditor(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_config(db).settings
    de, us, no = (settings.for_creditor(c) for c in ("CR-DE", "CR-US", "CR-NO"))
    assert no is settings and settings.for_creditor("CR-DE") is de  # resolved once
    assert de.pay_link_key == bytes.fromhex(PRAXIS_KEY) and us.pay_link_key == bytes.fromhex(INSTALLATION_KEY)
    assert de.channel_config["outbox"]["folder"].endswith("praxis-outbox")
    assert set(us.channel_plugins) == {c for c in us.channel_plugins if c.value == "letter"}
    assert us.portal_url is None and no.portal_url == "https://portal.example.org"
    assert us.payment_providers["manual"]["webhook_secret"] == WEBHOOK_SECRET
    on = NOW.date()
    assert settings.pack("de", "CR-DE").value("cadence.min_days_between_messages", on=on) == 14
    assert settings.pack("de").value("cadence.min_days_between_messages", on=on) == 7
    assert settings.own_rules("CR-DE", "de") and not settings.own_rules("CR-US", "us")


def test_config_check_prints_each_creditors_effective_settings_and_no_secret(db: Path) -> None:
    result = _cli("config", "check", "--db", str(db), env=ENV)
    assert result.exit_code == 0, result.output
    out = result.output
    for secret in (WEBHOOK_SECRET, PRAXIS_KEY, INSTALLATION_KEY):
        assert secret not in out
    assert "[creditors.CR-DE]" in out and "[creditors.CR-US]" in out
    assert "pay_link_key = <secret from file:secrets/praxis-pay-link.hex>" in out
    assert "pay_link_key = <secret from env:CARECOLLECT_PAY_LINK_KEY>" in out
    assert "webhook_secret=<secret from env:LAKESIDE_WEBHOOK_SECRET>" in out
    assert "phone = +49 30 1234567" in out and "phone = +1 612 555 0199" in out
    assert "house_rules.de: cadence.min_days_between_messages=14" in out
    lakeside = out[out.index("[creditors.CR-US]") :]
    assert "channels = letter=outbox" in lakeside and "portal_url = none" in lakeside


def _edit(db: Path, old: str, new: str) -> None:
    path = config_path(db)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _untouched(db: Path) -> None:
    with SQLiteStore(db) as store:
        assert list(store.audit_records()) == []
    for folder in ("praxis-outbox", "lakeside-outbox", "clinics-outbox"):
        out = db.with_name(folder)
        assert not out.exists() or not any(out.iterdir())


def test_a_misconfigured_creditor_section_is_refused_naming_the_creditor_and_the_key(db: Path) -> None:
    _edit(db, 'phone = "+49 30 1234567"', "phone = 4930")
    _edit(db, 'email = "billing@lakeside.example"', 'emial = "billing@lakeside.example"')
    _edit(db, 'pay_link_base = "https://pay.lakeside.example/p"', 'pay_link_base = "pay.lakeside.example"')
    _edit(db, "[creditors.CR-US.channels]", '[creditors.CR-US.channels]\nfax = "outbox"')
    for command in (("run", "--as-of", AS_OF), ("run", "--dry-run", "--as-of", AS_OF), ("config", "check")):
        out = " ".join(_refused(_cli(*command, "--db", str(db), env=ENV)).split())
        assert "4 problem(s)" in out
        assert "creditors.CR-DE.phone must be a telephone number" in out and "not 4930" in out
        assert "unknown key 'emial' in [creditors.CR-US] (did you mean 'email'?)" in out
        assert "creditors.CR-US.pay_link_base must be an http(s) URL, not 'pay.lakeside.example'" in out
        assert "unknown key 'fax' in [creditors.CR-US.channels]" in out
    _untouched(db)


def test_a_section_for_a_creditor_the_store_does_not_have_is_refused(db: Path) -> None:
    _edit(db, "[creditors.CR-US]", "[creditors.CR-USA]")
    _edit(db, "[creditors.CR-US.channels]", "[creditors.CR-USA.channels]")
    _edit(db, "[creditors.CR-US.plugins.outbox]", "[creditors.CR-USA.plugins.outbox]")
    _edit(db, "[creditors.CR-US.payment_providers.manual]", "[creditors.CR-USA.payment_providers.manual]")
    for command in (("run", "--as-of", AS_OF), ("config", "check")):
        out = " ".join(_refused(_cli(*command, "--db", str(db), env=ENV)).split())
        assert "[creditors.CR-USA]: the store has no creditor 'CR-USA' (did you mean 'CR-US'?)" in out
    _untouched(db)


def test_a_creditors_plugin_and_house_rules_are_checked_like_the_installations(db: Path) -> None:
    _edit(
        db,
        '[creditors.CR-US.channels]\n# Lakeside sends letters only\nemail = ""',
        '[creditors.CR-US.channels]\nemail = "outbx"',
    )
    _edit(
        db,
        '[creditors.CR-DE.house_rules.de]\n"cadence.min_days_between_messages" = 14',
        '[creditors.CR-DE.house_rules.de]\n"cadence.min_days_between_messages" = 1',
    )
    out = " ".join(_refused(_cli("config", "check", "--db", str(db), env=ENV)).split())
    assert "creditor 'CR-US' channel email: no message-channel plugin 'outbx' (did you mean 'outbox'?)" in out
    assert "creditor 'CR-DE' house rules for 'de'" in out
    _untouched(db)


def test_secrets_that_cannot_be_read_are_named_never_shown(db: Path, tmp_path: Path) -> None:
    (tmp_path / "secrets" / "praxis-pay-link.hex").write_text("not-hex-" + WEBHOOK_SECRET, encoding="utf-8")
    out = " ".join(
        _refused(_cli("config", "check", "--db", str(db), env={"LAKESIDE_WEBHOOK_SECRET": ""})).split()
    )
    assert "creditors.CR-DE.pay_link_key: the secret (file:secrets/praxis-pay-link.hex) must be hex" in out
    assert "creditors.CR-US.payment_providers.manual.webhook_secret wants the environment variable" in out
    assert WEBHOOK_SECRET not in out
    _edit(db, 'pay_link_key = "file:secrets/praxis-pay-link.hex"', f'pay_link_key = "{PRAXIS_KEY}"')
    out = " ".join(_refused(_cli("config", "check", "--db", str(db), env=ENV)).split())
    assert "creditors.CR-DE.pay_link_key must be a secret reference (env:NAME or file:PATH)" in out
    assert PRAXIS_KEY not in out
    (tmp_path / "secrets" / "praxis-pay-link.hex").unlink()
    _edit(db, f'pay_link_key = "{PRAXIS_KEY}"', 'pay_link_key = "file:secrets/praxis-pay-link.hex"')
    out = " ".join(_refused(_cli("config", "check", "--db", str(db), env=ENV)).split())
    assert (
        "creditors.CR-DE.pay_link_key wants the file" in out and "cannot be read (FileNotFoundError)" in out
    )


def test_a_single_creditor_installation_runs_as_before() -> None:
    plain = RunSettings(phone="+1 555 0100")
    assert plain.for_creditor("CR-US") is plain and plain.for_creditor(None) is plain
    one = RunSettings(creditors={"CR-A": CreditorSettings(opt_out_url="", email="a@example.org")})
    a = one.for_creditor("CR-A")
    assert (a.opt_out_url, a.email, a.phone, a.creditors) == (None, "a@example.org", "+1 555 0100", {})


DOCS = Path(__file__).resolve().parent.parent / "docs" / "how-to"


def test_the_two_clinics_guide_runs_as_written(tmp_path: Path) -> None:
    """docs/how-to/two-clinics.rst, step by step, with the files it ships."""
    db = tmp_path / "clinics.sqlite"
    assert _cli("init", "--db", str(db)).exit_code == 0
    imported = _cli("import", "--db", str(db), str(DOCS / "two-clinics.json"))
    assert imported.exit_code == 0, imported.output
    config_path(db).write_text((DOCS / "two-clinics.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "lakeside-pay-link.hex").write_text("1f" * 32 + "\n", encoding="utf-8")
    env = {"NORTHSIDE_PAY_LINK_KEY": "2e" * 32}
    checked = _cli("config", "check", "--db", str(db), env=env)
    assert checked.exit_code == 0, checked.output
    assert "1f" * 32 not in checked.output and "2e" * 32 not in checked.output
    assert "[creditors.LAKESIDE]" in checked.output and "[creditors.NORTHSIDE]" in checked.output
    # the guide shows these lines of the output as they are
    guide = (DOCS / "two-clinics.rst").read_text(encoding="utf-8")
    for line in checked.output.splitlines():
        if line.strip().startswith("hours = "):
            assert line.strip() in guide, line
    dry = _cli("run", "--db", str(db), "--as-of", AS_OF, "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    ran = _cli("run", "--db", str(db), "--as-of", AS_OF, env=env)
    assert ran.exit_code == 0, ran.output
    for folder, name, phone, pay, invoices, hours in (
        (
            "lakeside-outbox",
            "Lakeside Family Clinic",
            "+1 612 555 0111",
            "https://pay.lakeside-clinic.example/p/",
            {"INV-1", "INV-2"},
            "Mon–Fri 8:00 AM–5:00 PM",
        ),
        (
            "northside-outbox",
            "Northside Children's Clinic",
            "+1 612 555 0122",
            "https://northside-kids.example/pay/",
            {"INV-3", "INV-4"},
            "Thu 7:30 AM–7:00 PM; Sat 9:00 AM–12:00 PM",
        ),
    ):
        sent = _sent(tmp_path / folder)
        assert {n.split(".")[0] for n in sent} == invoices
        assert {n.rsplit("_", 1)[1] for n in sent} == {"letter.txt", "email.eml"}
        for file, text in sent.items():
            assert name in text and phone in text and "+1 612 555 0100" not in text
            assert hours in " ".join(text.split()), (file, text)  # each clinic's own hours
            if file.endswith(".txt"):
                assert pay in text
    assert not (tmp_path / "clinics-outbox").exists() or not any((tmp_path / "clinics-outbox").iterdir())


def test_the_default_files_example_of_a_creditor_section_is_valid(tmp_path: Path) -> None:
    text = default_config_text("clinic")
    head, example = text.split("# Serving several clinics?")
    body = "\n".join(
        line[2:] if line.startswith("# [") or line[2:3].isalpha() or line[2:3] == '"' else line
        for line in example.splitlines()[2:]
    )
    assert "[creditors.CLINIC-A]" in body and "# pay_link_key" not in body
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "clinic-a-pay-link.hex").write_text("ab" * 32, encoding="utf-8")
    settings = parse_config(head + body, tmp_path).settings
    clinic = settings.for_creditor("CLINIC-A")
    assert clinic.phone == "+1 555 0111" and clinic.pay_link_key == bytes.fromhex("ab" * 32)
    assert Channel.SMS not in clinic.channel_plugins and Channel.SMS in settings.channel_plugins
    assert clinic.channel_config["outbox"]["folder"] == str(tmp_path / "clinic-a-outbox")
