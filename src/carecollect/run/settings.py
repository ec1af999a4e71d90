"""The run's settings: which plugins, packs and rules a run uses, per creditor.

:class:`RunSettings` is what ``carecollect.toml`` becomes; :class:`CreditorSettings` overrides
it for one creditor (:meth:`RunSettings.for_creditor`). :func:`settings_problems` and
:func:`check_settings` check the settings against the loaded plugins before a run starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..channels import Channel
from ..errors import CareCollectError, ConfigurationError
from ..office_hours import OfficeHours
from ..policy.packs import PolicyPack, get_pack
from ..relief.disputes import DisputeProcedure
from ..scrubbing import scrub_text

if (
    TYPE_CHECKING
):  # annotations only: reading the settings (carecollect.run.settings_file) loads no plugin machinery
    from ..plugins.manager import PluginManager

__all__ = [
    "CreditorSettings",
    "RunSettings",
    "check_settings",
    "settings_problems",
]


@attrs.frozen
class RunSettings:
    """How a creditor runs the daily cycle.

    :param channel_plugins: which message-channel plugin serves each channel (by plugin name).
    :param channel_config: settings per channel plugin name (e.g. ``{"outbox": {"folder": "out"}}``).
    :param agency: the agency connector name to place eligible accounts with (``None``: never place).
    :param agency_config: its settings.
    :param house_rules: per pack key, the creditor's stricter rules.
    :param packs: extra or replacement packs by key (from plugins or your own).
    :param phone: the help line shown in messages.
    :param email: the billing e-mail shown in messages.
    :param portal_url: the patient portal.
    :param opt_out_url: where a patient stops electronic messages.
    :param assistance_url: the web page with the financial-assistance policy, its application form
        and its plain-language summary. A US nonprofit hospital needs it: its statements and its
        written ECA notice give it (26 CFR 1.501(r)-4(b)(5), 1.501(r)-6(c)(4)); the telephone
        number they give is ``phone``. ``None``: such a statement or notice fails with a
        :class:`~carecollect.errors.ValidationError` naming the field.
    :param pay_link_base: the payment page pay links open.
    :param pay_link_key: the HMAC key for pay links (at least 32 bytes); ``None``: no pay links.
    :param office_hours: when the phone is answered
        (:class:`~carecollect.office_hours.OfficeHours`); messages say it under the help line and
        the patient pages show it (``None``: messages say nothing, the pages show their default).
    :param pay_link_days: how long a pay link stays valid.
    :param payment_providers: settings per payment-provider plugin name (API keys, webhook
        secrets); a plan's mandate names its provider. Not shown in reprs.
    :param batch_size: accounts read per batch (memory stays flat).
    :param send_batch: messages the run sends between two writes of its records (about; whole
        accounts): their intents are written in one unit of work before the first is handed to a
        channel, and their done-marks, contact attempts, steps and audit records in one after the
        last. A channel that cannot de-duplicate by message id
        (:attr:`~carecollect.plugins.messaging.ChannelCapabilities.deduplicates` false) has its
        records written right after each of its messages.
    :param max_attempts: sends tried before an outbox item is given up (and reported).
    :param keep_plan: keep every planned message and decision in the :class:`~carecollect.run.decisions.RunPlan` a run or a
        dry run returns (the default); ``False`` keeps their counts only, so memory stays flat
        however large the portfolio (a real run still audits every decision with its reasons).
    :param dispute_procedure: the creditor's written dispute procedure; resolutions taken in as
        dispute events are checked against it (``None``:
        :meth:`DisputeProcedure.default <carecollect.relief.disputes.DisputeProcedure.default>`
        in the account's currency).
    :param creditors: per creditor id (the store's), that creditor's own settings over these
        (an installation serving several clinics); a creditor not listed runs on these.
        :meth:`for_creditor` resolves them.

    One clinic with its own help line, over the installation's defaults:

    >>> s = RunSettings(phone="+1 555 0100", creditors={"CR-A": CreditorSettings(phone="+1 555 0111")})
    >>> s.for_creditor("CR-A").phone, s.for_creditor("CR-B").phone
    ('+1 555 0111', '+1 555 0100')
    >>> s.for_creditor("CR-A") is s.for_creditor("CR-A")
    True
    """

    channel_plugins: Mapping[Channel, str] = attrs.field(factory=lambda: dict.fromkeys(Channel, "outbox"))
    channel_config: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    agency: str | None = None
    agency_config: Mapping[str, Any] = attrs.field(factory=dict)
    house_rules: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    packs: Mapping[str, PolicyPack] = attrs.field(factory=dict)
    phone: str = "+1 555 0100"
    email: str = "billing@example.org"
    portal_url: str | None = "https://portal.example.org"
    opt_out_url: str | None = "https://portal.example.org/stop"
    assistance_url: str | None = "https://portal.example.org/financial-assistance"
    pay_link_base: str = "https://pay.example.org/p"
    pay_link_key: bytes | None = attrs.field(default=None, repr=False)
    pay_link_days: int = 30
    office_hours: OfficeHours | None = None
    payment_providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    batch_size: int = 500
    send_batch: int = 300
    max_attempts: int = 6
    remittance_lookback_days: int = 90
    keep_plan: bool = True
    dispute_procedure: DisputeProcedure | None = None
    creditors: Mapping[str, CreditorSettings] = attrs.field(factory=dict)
    _resolved: dict[str, RunSettings] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def for_creditor(self, creditor_id: str | None) -> RunSettings:
        """The settings an account of ``creditor_id`` runs on: its :class:`CreditorSettings`
        over these (resolved once, then cached); these when the creditor has none.

        Plain values replace the installation's; ``channel_plugins`` replace channel by
        channel; ``channel_config``, ``payment_providers`` and ``house_rules`` merge key by key
        within each plugin's or pack's table; ``packs`` replace pack by pack.

        :param creditor_id: the store's creditor id (``None`` or unknown: these settings).
        """
        own = self.creditors.get(creditor_id) if creditor_id else None
        if own is None:
            return self
        resolved = self._resolved.get(own_id := str(creditor_id))
        if resolved is None:
            resolved = self._resolved[own_id] = own.over(self)
        return resolved

    def own_rules(self, creditor_id: str, pack_key: str) -> bool:
        """Whether ``creditor_id``'s pack ``pack_key`` differs from the installation's (its own
        house rules or its own pack for that key).

        :param creditor_id: the store's creditor id.
        :param pack_key: the policy pack key.
        """
        own = self.creditors.get(creditor_id)
        return own is not None and (pack_key in own.house_rules or pack_key in own.packs)

    def pack(self, key: str, creditor_id: str | None = None) -> PolicyPack:
        """The pack for ``key`` with the house rules applied (``creditor_id``'s own, if it has some).

        :param key: the policy pack key.
        :param creditor_id: the account's creditor (``None``: the installation's rules).
        """
        s = self.for_creditor(creditor_id)
        base = s.packs.get(key) or get_pack(key)
        rules = s.house_rules.get(key)
        return base.with_house_rules(rules, source="house rules") if rules else base


def _merge(
    base: Mapping[str, Mapping[str, Any]], own: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``base``'s tables with ``own``'s keys over them, table by table."""
    out = {name: dict(table) for name, table in base.items()}
    for name, table in own.items():
        out.setdefault(name, {}).update(table)
    return out


@attrs.frozen
class CreditorSettings:
    """One creditor's own settings in an installation that serves several (a clinic, a hospital).

    ``None`` (or an empty mapping) keeps the installation's value; an empty string for a URL says
    "none" (no portal, no opt-out page). The creditor's name comes from the store
    (:class:`~carecollect.creditors.Creditor`), the rest from here. See
    :meth:`RunSettings.for_creditor` for how each field combines with the installation's.

    :param phone: the help line shown in this creditor's messages.
    :param email: the billing e-mail shown in them.
    :param portal_url: its patient portal.
    :param opt_out_url: where its patients stop electronic messages.
    :param assistance_url: its financial-assistance page (501(r)).
    :param pay_link_base: its payment page.
    :param pay_link_key: its own pay-link HMAC key (``None``: the installation's).
    :param office_hours: when its phone is answered (``None``: the installation's).
    :param channel_plugins: channel by channel, the plugin that sends its messages (``""``: this
        creditor sends nothing on that channel; its messages there are suppressed).
    :param channel_config: per channel plugin, settings over the installation's.
    :param house_rules: per pack key, its rules over the installation's (rule by rule).
    :param packs: its own replacement packs by key.
    :param payment_providers: per payment provider, settings over the installation's.
    """

    phone: str | None = None
    email: str | None = None
    portal_url: str | None = None
    opt_out_url: str | None = None
    assistance_url: str | None = None
    pay_link_base: str | None = None
    pay_link_key: bytes | None = attrs.field(default=None, repr=False)
    office_hours: OfficeHours | None = None
    channel_plugins: Mapping[Channel, str] = attrs.field(factory=dict)
    channel_config: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    house_rules: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    packs: Mapping[str, PolicyPack] = attrs.field(factory=dict)
    payment_providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)

    def over(self, base: RunSettings) -> RunSettings:
        """``base`` with these settings over it (a flat :class:`RunSettings`, no creditors of its own).

        :param base: the installation's settings.
        """

        def text(own: str | None, default: str | None) -> str | None:
            return default if own is None else (own or None)

        return attrs.evolve(
            base,
            creditors={},
            phone=self.phone or base.phone,
            email=self.email or base.email,
            portal_url=text(self.portal_url, base.portal_url),
            opt_out_url=text(self.opt_out_url, base.opt_out_url),
            assistance_url=text(self.assistance_url, base.assistance_url),
            pay_link_base=self.pay_link_base or base.pay_link_base,
            pay_link_key=self.pay_link_key or base.pay_link_key,
            office_hours=self.office_hours or base.office_hours,
            channel_plugins={c: p for c, p in {**base.channel_plugins, **self.channel_plugins}.items() if p},
            channel_config=_merge(base.channel_config, self.channel_config),
            house_rules=_merge(base.house_rules, self.house_rules),
            packs={**base.packs, **self.packs},
            payment_providers=_merge(base.payment_providers, self.payment_providers),
        )


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def settings_problems(settings: RunSettings, pm: PluginManager) -> tuple[str, ...]:
    """Everything in ``settings`` that cannot work with the plugins ``pm`` has, one line each.

    Checked: every channel's plugin and every ``channel_config`` name is an installed
    message-channel plugin, every ``payment_providers`` name an installed payment provider, the
    agency an installed connector, and every pack's house rules apply (a known pack, known rules,
    never looser than the law). Each line names the setting, says which names exist, and
    suggests the closest.

    :param settings: the run settings.
    :param pm: the plugin manager the run would use.
    """
    problems: list[str] = []
    channels, providers, agencies = pm.message_channels(), pm.payment_providers(), pm.agency_connectors()

    def unknown(kind: str, where: str, name: str, known: Mapping[str, Any]) -> None:
        if name not in known:
            installed = ", ".join(sorted(known)) or "none"
            problems.append(
                f"{where}: no {kind} plugin {name!r}{_did_you_mean(name, known)}; installed: {installed}"
            )

    for channel, name in settings.channel_plugins.items():
        unknown("message-channel", f"channel {Channel(channel).value}", name, channels)
    for name in settings.channel_config:
        unknown("message-channel", f"settings for {name!r}", name, channels)
    for name in settings.payment_providers:
        unknown("payment-provider", f"payment provider settings {name!r}", name, providers)
    if settings.agency:
        unknown("agency-connector", "agency", settings.agency, agencies)
    for key in settings.house_rules:
        try:
            settings.pack(key)
        except (CareCollectError, KeyError, ValueError) as exc:
            problems.append(f"house rules for {key!r}: {scrub_text(str(exc))}")
    for creditor_id, own in settings.creditors.items():
        where = f"creditor {creditor_id!r}"
        for channel, name in own.channel_plugins.items():
            if name:
                unknown("message-channel", f"{where} channel {Channel(channel).value}", name, channels)
        for name in own.channel_config:
            unknown("message-channel", f"{where} settings for {name!r}", name, channels)
        for name in own.payment_providers:
            unknown("payment-provider", f"{where} payment provider settings {name!r}", name, providers)
        for key in {*own.house_rules, *own.packs}:
            try:
                settings.pack(key, creditor_id)
            except (CareCollectError, KeyError, ValueError) as exc:
                problems.append(f"{where} house rules for {key!r}: {scrub_text(str(exc))}")
    return tuple(problems)


def check_settings(settings: RunSettings, pm: PluginManager) -> None:
    """Refuse settings that cannot work (see :func:`settings_problems`), all problems at once.

    :raises ConfigurationError: one line per problem.
    """
    problems = settings_problems(settings, pm)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"the run's settings cannot work ({len(problems)} problem(s)):\n{lines}")
