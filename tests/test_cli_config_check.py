"""A misconfigured channel, provider or agency fails loudly, before anything is planned or sent.

Every problem of the settings file is named at once (with the closest known name), the command
exits 1 without a traceback, and the store is left as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carecollect.channels import Channel
from carecollect.cli import main
from carecollect.errors import ConfigurationError
from carecollect.plugins.manager import make_plugin_manager
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.planning import plan_run
from carecollect.run.settings import RunSettings
from carecollect.run.settings_file import config_path
from carecollect.store.sqlite import SQLiteStore

AS_OF = "2026-03-02"
NOW = dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC)


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.sqlite"
    assert _cli("init", "--db", str(path)).exit_code == 0
    with SQLiteStore(path) as store:
        load_portfolio(store, 40, seed=5, as_of=NOW.date())
    return path


def _edit(db: Path, old: str, new: str) -> None:
    path = config_path(db)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _untouched(db: Path) -> None:
    """Nothing was planned, sent or audited."""
    with SQLiteStore(db) as store:
        assert list(store.audit_records()) == []
        assert store.current_run_lock() is None
    outbox = db.with_name(f"{db.stem}-outbox")
    assert not outbox.exists() or not any(outbox.iterdir())


def _refused(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("args", [(), ("--dry-run",)])
def test_a_misspelt_channel_plugin_fails_the_run_before_anything_is_sent(
    db: Path, args: tuple[str, ...]
) -> None:
    _edit(db, 'email = "outbox"', 'email = "outbx"')
    out = _refused(_cli("run", "--db", str(db), "--as-of", AS_OF, *args))
    assert "channel email: no message-channel plugin 'outbx' (did you mean 'outbox'?)" in out
    assert re.search(r"installed: ([\w-]+, )*outbox\b", out), out
    _untouched(db)


def test_unknown_sections_and_keys_are_all_named_with_the_closest_known_one(db: Path) -> None:
    _edit(db, "[contact_centre]", "[contact_center]")
    _edit(db, 'phone = "+1 555 0100"', 'phon = "+1 555 0100"')
    _edit(db, 'sms = "outbox"', 'smss = "outbox"')
    for command in (("run", "--as-of", AS_OF), ("config", "check")):
        out = _refused(_cli(*command, "--db", str(db)))
        assert "3 problem(s)" in out
        assert "unknown section [contact_center] (did you mean 'contact_centre'?)" in out
        assert "unknown key 'phon' in [creditor] (did you mean 'phone'?)" in out
        assert "unknown key 'smss' in [channels] (did you mean 'sms'?)" in out
    _untouched(db)


def test_an_unset_secret_is_named_and_a_set_one_passes(db: Path) -> None:
    _edit(
        db,
        "[house_rules]",
        '[payment_providers.manual]\nwebhook_secret = "env:CC_TEST_SECRET"\n\n[house_rules]',
    )
    out = _refused(_cli("config", "check", "--db", str(db), env={"CC_TEST_SECRET": ""}))
    assert "payment_providers.manual.webhook_secret wants the environment variable CC_TEST_SECRET" in out
    out = _refused(_cli("run", "--db", str(db), "--as-of", AS_OF, env={"CC_TEST_SECRET": ""}))
    assert "CC_TEST_SECRET" in out
    _untouched(db)
    ok = _cli("config", "check", "--db", str(db), env={"CC_TEST_SECRET": "s3cr3t-value"})
    assert ok.exit_code == 0, ok.output
    assert "payment providers: manual" in ok.output and "s3cr3t-value" not in ok.output


def test_unknown_provider_agency_plugin_settings_and_house_rules(db: Path) -> None:
    _edit(
        db,
        '[agency]\n# The agency connector plugin to place eligible accounts with; "" never places.\nname = ""',
        '[agency]\nname = "agency-filez"',
    )
    _edit(
        db, "[plugins.outbox]", '[plugins.outbox]\n\n[plugins.smtp]\nhost = "localhost"\n\n[plugins.outbox-x]'
    )
    _edit(
        db,
        "[house_rules]",
        '[payment_providers.stripe]\nkey = "k"\n\n[house_rules.xx]\n"calls.max_per_7_days" = 3\n\n[house_rules]',
    )
    out = _refused(_cli("config", "check", "--db", str(db)))
    assert "agency: no agency-connector plugin 'agency-filez' (did you mean 'agency-files'?)" in out
    assert re.search(
        r"settings for 'smtp': no message-channel plugin 'smtp'; installed: ([\w-]+, )*outbox\b", out
    )
    # the installed providers are named: the built-in manual one, and any plugin distribution
    assert re.search(r"no payment-provider plugin 'stripe'; installed: ([\w-]+, )*manual\b", out), out
    assert "house rules for 'xx'" in out
    _untouched(db)


def test_the_default_settings_check_out(db: Path) -> None:
    result = _cli("config", "check", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "complete" in result.output and "email=outbox" in result.output
    assert "stale after 30 s" in result.output


def test_the_lock_promise_must_be_a_sensible_number_of_seconds(db: Path) -> None:
    _edit(db, "lock_stale_after = 30", 'lock_stale_after = "soon"')
    assert "run.lock_stale_after must be a number of seconds" in _refused(
        _cli("config", "check", "--db", str(db))
    )
    _edit(db, 'lock_stale_after = "soon"', "lock_stale_after = 5")
    assert "stale after 5 s" in _cli("config", "check", "--db", str(db)).output


def test_the_library_refuses_settings_naming_a_missing_plugin(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "lib.db") as store:
        load_portfolio(store, 20, seed=2, as_of=NOW.date())
        settings = RunSettings(channel_plugins={**dict.fromkeys(Channel, "outbox"), Channel.SMS: "smss"})
        assert plan_run(store, NOW, settings).messages  # planning alone sends nothing
        with pytest.raises(ConfigurationError, match="channel sms: no message-channel plugin 'smss'"):
            execute_run(store, NOW, make_plugin_manager(load_entrypoints=False), settings)
        assert list(store.audit_records()) == [] and store.current_run_lock() is None
