"""The settings file: one TOML file next to the database, read into the run's settings.

``carecollect init --db clinic.sqlite`` writes ``clinic.toml`` beside it
(:func:`config_path`). Relative paths in it (the outbox folder, the
contact-centre records) are relative to the file's folder. The file holds no
secret: a secret is a reference, ``env:NAME`` (an environment variable) or
``file:PATH`` (a file, e.g. a mounted Docker or Kubernetes secret); the
installation's pay-link key may also come from ``CARECOLLECT_PAY_LINK_KEY`` (hex).
An installation serving several creditors gives each its own settings in a
``[creditors.<id>]`` section over the installation's (see :doc:`/reference/settings`).

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
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..channels import Channel
from ..errors import CareCollectError, ConfigurationError
from ..office_hours import OfficeHours
from ..store.base import RUN_LOCK_STALE_AFTER
from ..timekeeping import zone
from .settings import CreditorSettings, RunSettings, settings_problems

__all__ = [
    "CREDITOR_KEYS",
    "CREDITOR_TABLES",
    "SECTIONS",
    "CliConfig",
    "check_config",
    "config_path",
    "contacts_path",
    "default_config_text",
    "effective_settings",
    "load_config",
    "parse_config",
    "write_default_config",
]


def config_path(db: Path) -> Path:
    """The settings file of the database ``db``: the same name with ``.toml``.

    :param db: the database file.
    """
    return db.with_suffix(".toml")


def default_config_text(stem: str, *, outbox_layout: str = "spool") -> str:
    """The settings file ``carecollect init`` writes, for a database named ``<stem>.sqlite``.

    :param stem: the database file's name without its suffix.
    :param outbox_layout: how the outbox writes messages: ``"spool"`` (one file per batch, read
        with ``carecollect outbox list`` and ``show``) or ``"files"`` (one file per message, to
        open by hand; the demo's choice).
    :raises ConfigurationError: ``outbox_layout`` is not one of the outbox's layouts.
    """
    from ..plugins.builtin.outbox import LAYOUTS  # here: reading settings does not need the channel

    if outbox_layout not in LAYOUTS:
        raise ConfigurationError(
            f"the outbox's layout must be one of {', '.join(LAYOUTS)}, not {outbox_layout!r}"
        )
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

# pay_link_key = "env:CARECOLLECT_PAY_LINK_KEY"   # or "file:/run/secrets/pay-link-key" (hex)

# When the phone is answered: messages say it under the help line, the patient pages
# show it in the patient's own time zone.
# [creditor.hours]
# days = "Mon-Fri 08:00-16:00; Thu 08:00-18:00"
# time_zone = "America/New_York"
# holidays = "US"                # closed on the country's public holidays

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
# "spool": a run's messages in one file per batch (read them with `carecollect outbox list`
# and `carecollect outbox show`); "files": one file per message, to open by hand.
layout = "{outbox_layout}"

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

# Serving several clinics? Give each creditor (by its id in the database) its own
# settings over the ones above, e.g.
# [creditors.CLINIC-A]
# phone = "+1 555 0111"
# pay_link_base = "https://pay.clinic-a.example/p"
# pay_link_key = "file:secrets/clinic-a-pay-link.hex"
# [creditors.CLINIC-A.hours]
# days = "Mon-Fri 07:30-15:30"
# time_zone = "America/Chicago"
# [creditors.CLINIC-A.channels]
# sms = ""                    # this clinic sends no SMS
# [creditors.CLINIC-A.plugins.outbox]
# folder = "clinic-a-outbox"
# [creditors.CLINIC-A.house_rules.us]
# "cadence.min_days_between_messages" = 14
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
    :param secret_refs: where each secret was read from, by setting (``payment_providers.x.key``
        -> ``env:NAME`` or ``file:PATH``): what ``carecollect config check`` shows instead.
    :param store_url: ``[store] url``: the store ``carecollect migrate`` and ``store check``
        use (``sqlite:///path`` or ``postgresql://...``); ``None``: the ``--db`` file.
    """

    settings: RunSettings
    centre_country: str
    centre_tz: str
    contacts: Path
    lock_stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER
    secret_refs: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    store_url: str | None = attrs.field(default=None, repr=False)


#: What each key of ``[creditor]`` (the installation's defaults) and of ``[creditors.<id>]``
#: (one creditor's own) must hold.
CREDITOR_KEYS: Mapping[str, str] = {
    "phone": "a telephone number (digits, spaces, +, -, parentheses)",
    "email": "an e-mail address",
    "portal_url": 'an http(s) URL, or "" for none',
    "opt_out_url": 'an http(s) URL, or "" for none',
    "assistance_url": 'an http(s) URL, or "" for none',
    "pay_link_base": "an http(s) URL",
    "pay_link_key": "a secret reference (env:NAME or file:PATH) to the hex HMAC key, at least 32 bytes",
}

#: The tables a ``[creditors.<id>]`` section may hold; each is read as the installation's
#: section of the same name and goes over it for that creditor's accounts.
CREDITOR_TABLES: frozenset[str] = frozenset(
    {"channels", "plugins", "house_rules", "payment_providers", "hours"}
)

#: The keys of an ``hours`` table (``[creditor.hours]``, ``[creditors.<id>.hours]``).
HOURS_KEYS: frozenset[str] = frozenset({"days", "time_zone", "holidays"})

#: The settings file's sections and their keys; ``None``: the keys are names (of channels'
#: plugins, payment providers, packs, creditors) checked against what is installed or stored
#: (:func:`check_config`).
SECTIONS: Mapping[str, frozenset[str] | None] = {
    "creditor": frozenset({*CREDITOR_KEYS, "hours"}),
    "creditors": None,
    "channels": frozenset(c.value for c in Channel),
    "plugins": None,
    "agency": frozenset({"name", "settings"}),
    "payment_providers": None,
    "house_rules": None,
    "contact_centre": frozenset({"country", "time_zone", "contacts"}),
    "run": frozenset({"lock_stale_after"}),
    "store": frozenset({"url"}),
    "web": frozenset({"bank_recipient", "bank_account", "bank_bic"}),
}

_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,30}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_URL = re.compile(r"https?://[^\s/]+\S*")
#: Keys whose literal values ``carecollect config check`` never prints.
_SECRET_WORDS = ("secret", "key", "token", "password", "passwd", "credential", "auth")


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


class _Reader:
    """Reads the file's tables, collecting every problem (one line each) and every secret reference."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: list[str] = []
        #: where (``payment_providers.x.api_key``) -> the reference it was read from (``env:NAME``)
        self.refs: dict[str, str] = {}

    def table(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            self.problems.append(f"[{where}] must be a table, not {type(value).__name__}")
            return {}
        return value

    def text(self, table: Mapping[str, Any], key: str, where: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.problems.append(f"{where}.{key} must be a string, not {type(value).__name__}")
            return default
        return value

    def secret(self, value: Any, where: str) -> Any:
        """``"env:NAME"``: the environment variable; ``"file:PATH"``: the file's text (trailing
        newline dropped; relative to the settings file); else the value itself.

        An unset variable or unreadable file is a problem (its name or path, never a value).
        """
        if not isinstance(value, str) or not value.startswith(("env:", "file:")):
            return value
        self.refs[where] = value
        kind, _, name = value.partition(":")
        if kind == "env":
            if not os.environ.get(name):
                self.problems.append(f"{where} wants the environment variable {name}, which is not set")
                return ""
            return os.environ[name]
        path = Path(name) if Path(name).is_absolute() else self.folder / name
        try:
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(
                f"{where} wants the file {path}, which cannot be read ({type(exc).__name__})"
            )
            return ""
        if not text:
            self.problems.append(f"{where} wants the file {path}, which is empty")
        return text

    def store_url(self, table: Mapping[str, Any]) -> str | None:
        """``[store] url``: a ``sqlite:///`` or ``postgresql://`` URL, or a reference to one (it may
        hold a password, which is never written into the file itself)."""
        if "url" not in table:
            return None
        literal = table["url"]
        value = self.secret(literal, "store.url")
        if not isinstance(value, str) or not value:
            if not self.problems or not self.problems[-1].startswith("store.url"):
                self.problems.append(f"store.url must be a URL string, not {type(value).__name__}")
            return None
        from ..store.urls import safe_url, store_scheme

        try:
            store_scheme(value)
        except CareCollectError as exc:
            self.problems.append(f"store.url: {exc}")
            return None
        if literal == value and safe_url(value) != value:
            self.problems.append(
                "store.url holds a password; put the URL in an environment variable (env:NAME) "
                "or a file (file:PATH), or use ~/.pgpass"
            )
            return None
        return value

    def secrets(self, table: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {k: self.secret(v, f"{where}.{k}") for k, v in table.items()}

    def hours(self, table: Mapping[str, Any], where: str) -> OfficeHours | None:
        """An ``hours`` table (``days``, ``time_zone``, ``holidays``) as :class:`OfficeHours`;
        ``None`` when the table is absent."""
        value = table.get("hours")
        if value is None:
            return None
        here = f"{where}.hours"
        if not isinstance(value, Mapping):
            self.problems.append(f"[{here}] must be a table with days, time_zone and holidays")
            return None
        for key in value:
            if key not in HOURS_KEYS:
                self.problems.append(
                    f"unknown key {key!r} in [{here}]{_suggest(key, HOURS_KEYS)}; known: {', '.join(sorted(HOURS_KEYS))}"
                )
        days, tz, holidays = value.get("days"), value.get("time_zone"), value.get("holidays", "")
        if not isinstance(days, str) or not isinstance(tz, str) or not isinstance(holidays, str):
            self.problems.append(
                f'[{here}] needs days = "Mon-Fri 08:00-16:00" and time_zone = "Europe/Oslo" (strings), '
                'and optionally holidays = "NO" (a country code)'
            )
            return None
        try:
            return OfficeHours.parse(days, time_zone=tz, holidays=holidays or None)
        except CareCollectError as exc:
            field = getattr(exc, "field", "days")
            problem = getattr(exc, "problem", str(exc))
            self.problems.append(f"{here}.{'days' if field == 'week' else field}: {problem}")
            return None

    def creditor_keys(self, table: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The checked values of the :data:`CREDITOR_KEYS` in ``table`` (absent keys left out)."""
        out: dict[str, Any] = {}
        for key, what in CREDITOR_KEYS.items():
            if key not in table:
                continue
            value = table[key]
            if key == "pay_link_key":
                out[key] = self.pay_link_key(value, f"{where}.{key}")
                continue
            ok = isinstance(value, str) and (
                (key == "phone" and _PHONE.fullmatch(value) is not None)
                or (key == "email" and _EMAIL.fullmatch(value) is not None)
                or (key.endswith("_url") and (_URL.fullmatch(value) is not None or value == ""))
                or (key == "pay_link_base" and _URL.fullmatch(value) is not None)
            )
            if key == "pay_link_base" and value == "":
                ok = False
            if not ok:
                shown = (
                    repr(value)
                    if not isinstance(value, str) or len(value) <= 60
                    else repr(value[:57] + "...")
                )
                self.problems.append(f"{where}.{key} must be {what}, not {shown}")
                continue
            out[key] = value
        return out

    def pay_link_key(self, value: Any, where: str) -> bytes | None:
        if not isinstance(value, str) or not value.startswith(("env:", "file:")):
            self.problems.append(
                f"{where} must be {CREDITOR_KEYS['pay_link_key']}; a key is never written in the file itself"
            )
            return None
        text = str(self.secret(value, where)).strip()
        if not text:
            return None
        try:
            key = bytes.fromhex(text)
        except ValueError:
            self.problems.append(f"{where}: the secret ({value}) must be hex (64 hex digits for 32 bytes)")
            return None
        if len(key) < 32:
            self.problems.append(f"{where}: the secret ({value}) must be at least 32 bytes, not {len(key)}")
            return None
        return key

    def channels(self, table: Mapping[str, Any], where: str) -> dict[Channel, str]:
        known = [c.value for c in Channel]
        out: dict[Channel, str] = {}
        for name, plugin in table.items():
            if name not in known:
                if where != "channels":  # [channels] keys are reported with the other sections
                    self.problems.append(
                        f"unknown key {name!r} in [{where}]{_suggest(name, known)}; known: {', '.join(sorted(known))}"
                    )
                continue
            if not isinstance(plugin, str) or not (plugin or where.startswith("creditors.")):
                self.problems.append(f"{where}.{name} must name a message-channel plugin, not {plugin!r}")
                continue
            out[Channel(name)] = plugin
        return out

    def plugins(self, table: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, conf in table.items():
            if not isinstance(conf, Mapping):
                self.problems.append(f"[{where}.{name}] must be a table, not {type(conf).__name__}")
                continue
            resolved = self.secrets(conf, f"{where}.{name}")
            for key in ("folder", "journal"):  # the outbox's and the letters' folders, the SMS journal
                if isinstance(resolved.get(key), str) and resolved[key]:
                    resolved[key] = str(self.folder / resolved[key])
            out[name] = resolved
        return out

    def house_rules(self, table: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, rules in table.items():
            if not isinstance(rules, Mapping):
                self.problems.append(
                    f"[{where}.{key}] must be a table of rule ids, not {type(rules).__name__}"
                )
                continue
            out[key] = dict(rules)
        return out

    def providers(self, table: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, conf in table.items():
            if not isinstance(conf, Mapping):
                self.problems.append(f"[{where}.{name}] must be a table, not {type(conf).__name__}")
                continue
            out[name] = self.secrets(conf, f"{where}.{name}")
        return out

    def creditor(self, creditor_id: str, section: Any) -> CreditorSettings | None:
        """One ``[creditors.<id>]`` section."""
        where = f"creditors.{creditor_id}"
        if not isinstance(section, Mapping):
            self.problems.append(f"[{where}] must be a table, not {type(section).__name__}")
            return None
        known = {*CREDITOR_KEYS, *CREDITOR_TABLES}
        for key in section:
            if key not in known:
                hint = "; the creditor's name comes from the store" if key == "name" else ""
                self.problems.append(
                    f"unknown key {key!r} in [{where}]{_suggest(key, known)}{hint}; known: {', '.join(sorted(known))}"
                )
        values = self.creditor_keys(section, where)
        return CreditorSettings(
            phone=values.get("phone"),
            email=values.get("email"),
            portal_url=values.get("portal_url"),
            opt_out_url=values.get("opt_out_url"),
            assistance_url=values.get("assistance_url"),
            pay_link_base=values.get("pay_link_base"),
            pay_link_key=values.get("pay_link_key"),
            office_hours=self.hours(section, where),
            channel_plugins=self.channels(
                self.table(section, "channels", f"{where}.channels"), f"{where}.channels"
            ),
            channel_config=self.plugins(
                self.table(section, "plugins", f"{where}.plugins"), f"{where}.plugins"
            ),
            house_rules=self.house_rules(
                self.table(section, "house_rules", f"{where}.house_rules"), f"{where}.house_rules"
            ),
            payment_providers=self.providers(
                self.table(section, "payment_providers", f"{where}.payment_providers"),
                f"{where}.payment_providers",
            ),
        )


def parse_config(text: str, folder: Path) -> CliConfig:
    """Read the settings from TOML ``text``; relative paths are resolved against ``folder``.

    :param text: the file's text.
    :param folder: the file's folder.
    :raises ConfigurationError: not TOML, an unknown section or key (with the closest known
        one), a value of the wrong kind (naming the section, creditor and key), or an ``env:``
        or ``file:`` secret that cannot be read; every problem of the file at once, one line each.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings file is not valid TOML: {exc}") from None
    read = _Reader(folder)
    read.problems.extend(_unknown_keys(data))
    creditor = read.table(data, "creditor", "creditor")
    defaults = read.creditor_keys(creditor, "creditor")
    office_hours = read.hours(creditor, "creditor")
    plugin_map = read.channels(read.table(data, "channels", "channels"), "channels")
    plugin_config = read.plugins(read.table(data, "plugins", "plugins"), "plugins")
    agency = read.table(data, "agency", "agency")
    agency_name = read.text(agency, "name", "agency", "")
    house = read.house_rules(read.table(data, "house_rules", "house_rules"), "house_rules")
    providers = read.providers(
        read.table(data, "payment_providers", "payment_providers"), "payment_providers"
    )
    centre = read.table(data, "contact_centre", "contact_centre")
    country = read.text(centre, "country", "contact_centre", "NO")
    if len(country) != 2 or not country.isalpha():
        read.problems.append(f"contact_centre.country must be a two-letter country code, not {country!r}")
    time_zone = read.text(centre, "time_zone", "contact_centre", "Europe/Oslo")
    try:
        zone(time_zone)
    except CareCollectError:
        read.problems.append(f"contact_centre.time_zone must be an IANA time zone, not {time_zone!r}")
    contacts = read.text(centre, "contacts", "contact_centre", "contacts.jsonl")
    stale = read.table(data, "run", "run").get("lock_stale_after", RUN_LOCK_STALE_AFTER.total_seconds())
    if isinstance(stale, bool) or not isinstance(stale, (int, float)) or not 1 <= stale <= 86400:
        read.problems.append(
            f"run.lock_stale_after must be a number of seconds from 1 to 86400, not {stale!r}"
        )
        stale = RUN_LOCK_STALE_AFTER.total_seconds()
    store_url = read.store_url(read.table(data, "store", "store"))
    agency_settings = read.secrets(read.table(agency, "settings", "agency.settings"), "agency.settings")
    creditors: dict[str, CreditorSettings] = {}
    for creditor_id, section in read.table(data, "creditors", "creditors").items():
        own = read.creditor(creditor_id, section)
        if own is not None:
            creditors[creditor_id] = own
    pay_key = defaults.get("pay_link_key")
    if "pay_link_key" not in creditor and os.environ.get("CARECOLLECT_PAY_LINK_KEY"):
        pay_key = read.pay_link_key("env:CARECOLLECT_PAY_LINK_KEY", "CARECOLLECT_PAY_LINK_KEY")
    if read.problems:
        lines = "\n".join(f"  - {p}" for p in read.problems)
        raise ConfigurationError(f"settings file: {len(read.problems)} problem(s):\n{lines}")
    settings = RunSettings(
        channel_plugins=plugin_map,
        channel_config=plugin_config,
        agency=agency_name or None,
        agency_config=agency_settings,
        house_rules=house,
        phone=defaults.get("phone", "+1 555 0100"),
        email=defaults.get("email", "billing@example.org"),
        portal_url=defaults.get("portal_url") or None,
        opt_out_url=defaults.get("opt_out_url") or None,
        assistance_url=defaults.get("assistance_url") or None,
        pay_link_base=defaults.get("pay_link_base", "https://pay.example.org/p"),
        pay_link_key=pay_key,
        office_hours=office_hours,
        payment_providers=providers,
        creditors=creditors,
    )
    return CliConfig(
        settings=settings,
        centre_country=country.upper(),
        centre_tz=time_zone,
        contacts=folder / contacts,
        lock_stale_after=dt.timedelta(seconds=stale),
        secret_refs=read.refs,
        store_url=store_url,
    )


def check_config(config: CliConfig, pm: Any, creditor_ids: Iterable[str] | None = None) -> None:
    """Refuse settings that name plugins ``pm`` does not have (see
    :func:`~carecollect.run.settings.settings_problems`), or creditors the store does not have,
    every problem at once.

    :param config: the parsed settings (:func:`parse_config` already refused unknown keys and
        unreadable secrets).
    :param pm: the plugin manager the run would use.
    :param creditor_ids: the store's creditor ids (``None``: not checked); a
        ``[creditors.<id>]`` section for another id is refused, with the closest stored id.
    :raises ConfigurationError: one line per problem, each naming what is installed.
    """
    problems = list(settings_problems(config.settings, pm))
    if creditor_ids is not None:
        stored = sorted(creditor_ids)
        for creditor_id in config.settings.creditors:
            if creditor_id not in stored:
                problems.append(
                    f"[creditors.{creditor_id}]: the store has no creditor {creditor_id!r}"
                    f"{_suggest(creditor_id, stored)}; creditors: {', '.join(stored) or 'none'}"
                )
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"settings file: {len(problems)} problem(s):\n{lines}")


def _shown(value: Any, key: str, refs: Iterable[str | None]) -> str:
    """A plugin's or provider's setting as ``config check`` prints it: a secret never."""
    for ref in refs:
        if ref is not None:
            return f"<secret from {ref}>"
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "<redacted>"
    return repr(value)


def effective_settings(config: CliConfig) -> str:
    """What each creditor runs on, as text (secrets shown by their reference, never their value).

    One block for the installation's defaults (every creditor without a section of its own),
    then one per ``[creditors.<id>]`` section with the resolved values
    (:meth:`~carecollect.run.settings.RunSettings.for_creditor`).

    :param config: the parsed settings.
    """
    base = config.settings
    refs = config.secret_refs
    blocks: list[tuple[str, str | None]] = [
        ("installation defaults (every creditor without a section)", None)
    ]
    blocks += [(f"creditors.{cid}", cid) for cid in sorted(base.creditors)]
    lines: list[str] = []
    for title, cid in blocks:
        s = base.for_creditor(cid)
        own = base.creditors.get(cid) if cid else None
        lines.append(f"[{title}]")
        for key in ("phone", "email", "portal_url", "opt_out_url", "assistance_url", "pay_link_base"):
            lines.append(f"  {key} = {getattr(s, key) or 'none'}")
        hours = s.office_hours
        lines.append(
            "  hours = "
            + (
                "none (messages name no hours)"
                if hours is None
                else f"{hours.describe('en_GB')} ({hours.time_zone}"
                + (f"; closed on public holidays of {hours.holidays})" if hours.holidays else ")")
            )
        )
        if s.pay_link_key is None:
            lines.append("  pay_link_key = none (no pay links)")
        else:
            key_ref = (
                refs.get(f"creditors.{cid}.pay_link_key") if own and own.pay_link_key else None
            ) or refs.get("creditor.pay_link_key", "env:CARECOLLECT_PAY_LINK_KEY")
            lines.append(f"  pay_link_key = <secret from {key_ref}>")
        lines.append(
            "  channels = "
            + (
                ", ".join(
                    f"{c.value}={p}" for c, p in sorted(s.channel_plugins.items(), key=lambda i: i[0].value)
                )
                or "none"
            )
        )
        own_tables: Mapping[str, Mapping[str, Any]]
        for kind, tables, own_tables in (
            ("plugins", s.channel_config, own.channel_config if own else {}),
            ("payment_providers", s.payment_providers, own.payment_providers if own else {}),
        ):
            for name in sorted(tables):
                items: list[str] = []
                for key, value in sorted(tables[name].items()):
                    mine = key in own_tables.get(name, {})
                    ref = (
                        refs.get(f"creditors.{cid}.{kind}.{name}.{key}")
                        if mine
                        else refs.get(f"{kind}.{name}.{key}")
                    )
                    items.append(f"{key}={_shown(value, key, (ref,))}")
                lines.append(f"  {kind}.{name}: {', '.join(items) or '(no settings)'}")
        for pack in sorted(s.house_rules):
            rules = ", ".join(f"{k}={v!r}" for k, v in sorted(s.house_rules[pack].items()))
            lines.append(f"  house_rules.{pack}: {rules}")
    if base.agency:
        agency = ", ".join(
            f"{k}={_shown(v, k, (refs.get(f'agency.settings.{k}'),))}"
            for k, v in sorted(base.agency_config.items())
        )
        lines.append(f"[agency] {base.agency}: {agency or '(no settings)'}")
    return "\n".join(lines)


def load_config(db: Path) -> CliConfig:
    """The settings of database ``db`` (from :func:`config_path`).

    :param db: the database file.
    :raises ConfigurationError: the file is missing or wrong.
    """
    path = config_path(db)
    if not path.exists():
        raise ConfigurationError(f"no settings file at {path}; run `carecollect init --db {db}` first")
    return parse_config(path.read_text(encoding="utf-8"), path.parent)


def write_default_config(db: Path, *, outbox_layout: str = "spool") -> Path:
    """Write the default settings file for ``db`` unless one exists; returns its path.

    :param db: the database file.
    :param outbox_layout: as :func:`default_config_text` takes it.
    """
    path = config_path(db)
    if not path.exists():
        path.write_text(default_config_text(db.stem, outbox_layout=outbox_layout), encoding="utf-8")
    return path
