"""The command line's settings file: one TOML file next to the database.

``carecollect init --db clinic.sqlite`` writes ``clinic.toml`` beside it
(:func:`config_path`). Relative paths in it (the outbox folder, the
contact-centre records) are relative to the file's folder. The file holds no
secret: a pay-link key, if you use pay links, comes from the environment
variable ``CARECOLLECT_PAY_LINK_KEY`` (hex).

>>> from pathlib import Path
>>> config_path(Path("data/clinic.sqlite")).as_posix()
'data/clinic.toml'
>>> cfg = parse_config(default_config_text("clinic"), Path("data"))
>>> cfg.settings.channel_config["outbox"]["folder"].endswith("clinic-outbox")
True
>>> cfg.settings.agency is None, cfg.centre_country
(True, 'NO')
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..channels import Channel
from ..daily_run import RunSettings, settings_problems
from ..errors import ConfigurationError
from ..store.base import RUN_LOCK_STALE_AFTER

__all__ = [
    "SECTIONS",
    "CliConfig",
    "check_config",
    "config_path",
    "contacts_path",
    "default_config_text",
    "load_config",
    "parse_config",
    "write_default_config",
]


def config_path(db: Path) -> Path:
    """The settings file of the database ``db``: the same name with ``.toml``.

    :param db: the database file.
    """
    return db.with_suffix(".toml")


def default_config_text(stem: str) -> str:
    """The settings file ``carecollect init`` writes, for a database named ``<stem>.sqlite``.

    :param stem: the database file's name without its suffix.
    """
    return f"""\
# carecollect settings for {stem}.sqlite, written by `carecollect init`.
# Relative paths are relative to this file's folder.

[creditor]
# What messages show patients: the help line, billing e-mail and links.
phone = "+1 555 0100"
email = "billing@example.org"
portal_url = "https://portal.example.org"
opt_out_url = "https://portal.example.org/stop"
pay_link_base = "https://pay.example.org/p"
# A US nonprofit hospital (IRS 501(r)): the page with the financial-assistance policy,
# its application form and plain-language summary; its statements and ECA notices give it.
assistance_url = "https://portal.example.org/financial-assistance"

[channels]
# Which message-channel plugin sends each channel (by plugin name).
# "outbox" writes every message to a folder instead of sending it.
letter = "outbox"
email = "outbox"
sms = "outbox"
phone = "outbox"
portal = "outbox"

[plugins.outbox]
folder = "{stem}-outbox"

# Printed letters in print batches (PDF and manifest CSV for a print-and-mail
# house; needs `pip install carecollect[pdf]`): set letter = "letter" above.
[plugins.letter]
folder = "{stem}-letters"
# sender = "Clinic name|Street 1|0150 Oslo"
# din_form = "B"

[agency]
# The agency connector plugin to place eligible accounts with; "" never places.
name = ""

[agency.settings]

[payment_providers]
# Settings per payment-provider plugin (plans with a stored mandate are charged
# through it, its webhooks are taken in by `carecollect run --events`). A value
# "env:NAME" is read from the environment variable NAME (keep secrets there), e.g.
# [payment_providers.demo-gateway]
# webhook_secret = "env:DEMO_GATEWAY_WEBHOOK_SECRET"

[house_rules]
# Your stricter rules per policy pack (they may only tighten the law), e.g.
# [house_rules.us]
# "calls.max_per_7_days" = 3

[contact_centre]
# The contact centre's country (its business days) and time zone, and the
# file of contact records (JSON lines) that `carecollect report` reads.
country = "NO"
time_zone = "Europe/Oslo"
contacts = "{stem}-contacts.jsonl"

[run]
# Seconds a run may go without a heartbeat before another run may take its lock
# (a live run beats every third of it; a killed run on this host is noticed at once).
lock_stale_after = {RUN_LOCK_STALE_AFTER.total_seconds():g}
"""


def contacts_path(db: Path) -> Path:
    """Where the contact-centre records of ``db`` are kept by default (``<stem>-contacts.jsonl``).

    :param db: the database file.
    """
    return db.with_name(f"{db.stem}-contacts.jsonl")


@attrs.frozen
class CliConfig:
    """The settings the commands use.

    :param settings: the daily run's settings.
    :param centre_country: the contact centre's country.
    :param centre_tz: the contact centre's time zone.
    :param contacts: the contact-records file.
    :param lock_stale_after: how long this run's lock lives without a heartbeat.
    """

    settings: RunSettings
    centre_country: str
    centre_tz: str
    contacts: Path
    lock_stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER


#: The settings file's sections and their keys; ``None``: the keys are names (of channels'
#: plugins, payment providers, packs) checked against what is installed (:func:`check_config`).
SECTIONS: Mapping[str, frozenset[str] | None] = {
    "creditor": frozenset({"phone", "email", "portal_url", "opt_out_url", "pay_link_base", "assistance_url"}),
    "channels": frozenset(c.value for c in Channel),
    "plugins": None,
    "agency": frozenset({"name", "settings"}),
    "payment_providers": None,
    "house_rules": None,
    "contact_centre": frozenset({"country", "time_zone", "contacts"}),
    "run": frozenset({"lock_stale_after"}),
    "web": frozenset({"bank_recipient", "bank_account", "bank_bic"}),
}


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Sections and keys the file has that carecollect does not know, each with a suggestion."""
    problems = []
    for section, value in data.items():
        if section not in SECTIONS:
            problems.append(
                f"unknown section [{section}]{_suggest(section, SECTIONS)}; known: {', '.join(SECTIONS)}"
            )
            continue
        keys = SECTIONS[section]
        if keys is None or not isinstance(value, Mapping):
            continue
        for key in value:
            if key not in keys:
                problems.append(
                    f"unknown key {key!r} in [{section}]{_suggest(key, keys)}; known: {', '.join(sorted(keys))}"
                )
    return problems


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"settings file: [{key}] must be a table")
    return value


def _text(table: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigurationError(f"settings file: {where}.{key} must be a string")
    return value


def _from_env(value: Any, where: str, problems: list[str]) -> Any:
    """``"env:NAME"`` is the environment variable ``NAME``; any other value is itself.

    An unset variable is added to ``problems`` (its name, never a value).
    """
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if not os.environ.get(name):
            problems.append(f"{where} wants the environment variable {name}, which is not set")
            return ""
        return os.environ[name]
    return value


def _secrets(table: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    return {k: _from_env(v, f"{where}.{k}", problems) for k, v in table.items()}


def parse_config(text: str, folder: Path) -> CliConfig:
    """Read the settings from TOML ``text``; relative paths are resolved against ``folder``.

    :param text: the file's text.
    :param folder: the file's folder.
    :raises ConfigurationError: not TOML, an unknown section or key (with the closest known
        one), a value of the wrong kind, or an ``env:`` secret whose variable is not set; every
        problem of the file at once, one line each.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings file is not valid TOML: {exc}") from None
    problems = _unknown_keys(data)
    creditor = _table(data, "creditor")
    channels = _table(data, "channels")
    plugin_map: dict[Channel, str] = {}
    for name, plugin in channels.items():
        try:
            channel = Channel(name)
        except ValueError:
            continue  # reported by _unknown_keys, with the closest channel
        if not isinstance(plugin, str) or not plugin:
            raise ConfigurationError(f"settings file: [channels] {name} must name a plugin")
        plugin_map[channel] = plugin
    plugins = _table(data, "plugins")
    plugin_config: dict[str, dict[str, Any]] = {}
    for name, conf in plugins.items():
        if not isinstance(conf, Mapping):
            raise ConfigurationError(f"settings file: [plugins.{name}] must be a table")
        conf = _secrets(conf, f"plugins.{name}", problems)
        for key in ("folder", "journal"):  # the outbox's and the letters' folders, the SMS journal
            if isinstance(conf.get(key), str) and conf[key]:
                conf[key] = str(folder / conf[key])
        plugin_config[name] = conf
    agency = _table(data, "agency")
    agency_name = _text(agency, "name", "agency", "")
    house = _table(data, "house_rules")
    for key, rules in house.items():
        if not isinstance(rules, Mapping):
            raise ConfigurationError(f"settings file: [house_rules.{key}] must be a table of rule ids")
    providers: dict[str, dict[str, Any]] = {}
    for name, conf in _table(data, "payment_providers").items():
        if not isinstance(conf, Mapping):
            raise ConfigurationError(f"settings file: [payment_providers.{name}] must be a table")
        providers[name] = _secrets(conf, f"payment_providers.{name}", problems)
    centre = _table(data, "contact_centre")
    stale = _table(data, "run").get("lock_stale_after", RUN_LOCK_STALE_AFTER.total_seconds())
    if isinstance(stale, bool) or not isinstance(stale, (int, float)) or not 1 <= stale <= 86400:
        problems.append(f"run.lock_stale_after must be a number of seconds from 1 to 86400, not {stale!r}")
        stale = RUN_LOCK_STALE_AFTER.total_seconds()
    agency_settings = _secrets(_table(agency, "settings"), "agency.settings", problems)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"settings file: {len(problems)} problem(s):\n{lines}")
    key_hex = os.environ.get("CARECOLLECT_PAY_LINK_KEY")
    try:
        pay_key = bytes.fromhex(key_hex) if key_hex else None
    except ValueError:
        raise ConfigurationError(
            "CARECOLLECT_PAY_LINK_KEY must be hex (64 hex digits for 32 bytes)"
        ) from None
    settings = RunSettings(
        channel_plugins=plugin_map,
        channel_config=plugin_config,
        agency=agency_name or None,
        agency_config=agency_settings,
        house_rules={k: dict(v) for k, v in house.items()},
        phone=_text(creditor, "phone", "creditor", "+1 555 0100"),
        email=_text(creditor, "email", "creditor", "billing@example.org"),
        portal_url=_text(creditor, "portal_url", "creditor", "") or None,
        opt_out_url=_text(creditor, "opt_out_url", "creditor", "") or None,
        assistance_url=_text(creditor, "assistance_url", "creditor", "") or None,
        pay_link_base=_text(creditor, "pay_link_base", "creditor", "https://pay.example.org/p"),
        pay_link_key=pay_key,
        payment_providers=providers,
    )
    return CliConfig(
        settings=settings,
        centre_country=_text(centre, "country", "contact_centre", "NO").upper(),
        centre_tz=_text(centre, "time_zone", "contact_centre", "Europe/Oslo"),
        contacts=folder / _text(centre, "contacts", "contact_centre", "contacts.jsonl"),
        lock_stale_after=dt.timedelta(seconds=stale),
    )


def check_config(config: CliConfig, pm: Any) -> None:
    """Refuse settings that name plugins ``pm`` does not have (see
    :func:`~carecollect.daily_run.settings_problems`), every problem at once.

    :param config: the parsed settings (:func:`parse_config` already refused unknown keys and
        unset secrets).
    :param pm: the plugin manager the run would use.
    :raises ConfigurationError: one line per problem, each naming what is installed.
    """
    problems = settings_problems(config.settings, pm)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"settings file: {len(problems)} problem(s):\n{lines}")


def load_config(db: Path) -> CliConfig:
    """The settings of database ``db`` (from :func:`config_path`).

    :param db: the database file.
    :raises ConfigurationError: the file is missing or wrong.
    """
    path = config_path(db)
    if not path.exists():
        raise ConfigurationError(f"no settings file at {path}; run `carecollect init --db {db}` first")
    return parse_config(path.read_text(encoding="utf-8"), path.parent)


def write_default_config(db: Path) -> Path:
    """Write the default settings file for ``db`` unless one exists; returns its path.

    :param db: the database file.
    """
    path = config_path(db)
    if not path.exists():
        path.write_text(default_config_text(db.stem), encoding="utf-8")
    return path
