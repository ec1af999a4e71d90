"""The daily collection run: plan every decision, then send exactly once through an outbox.

The run has three phases, each usable on its own:

1. :func:`intake` takes in what came back since the last run: payment
   provider webhooks (payments are posted to the ledger and pay plan
   instalments; a revoked mandate stops charges), delivery reports, inbound
   replies (a ``STOP`` is an opt-out) and agency remittances. Every event has
   an id, and an id already processed changes nothing.
2. :func:`plan_run` reads every account from the store in batches and applies
   the packs: the cadence (:func:`~carecollect.policy.cadence.due_steps`), the
   contact governor (:func:`~carecollect.policy.governor.may_contact`) for each
   channel, missed plan instalments, instalments due to be charged to a stored
   mandate, and the agency gate
   (:func:`~carecollect.relief.gates.may_place`). It writes nothing: a dry run
   is exactly this plan.
3. :func:`execute_run` takes the run lock, records every message in the
   outbox as *intended*, re-reads the account (an opt-out or a dispute that
   arrived meanwhile wins), renders the message, sends it through the channel
   plugin with the outbox key as idempotency key, and records it *done* or
   *failed* with a back-off. Instalment charges and agency placements (the
   run's money-moving calls) go through the same outbox: intended, performed
   with the outbox key as the provider's idempotency key, then done. A run
   killed at any point and run again sends or charges nothing twice and skips
   nothing. Every decision goes to the hash-chained
   audit log with its reasons, so :func:`explain_account` can answer "why did
   this patient get, or not get, a message".
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import itertools
import os
import secrets
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .addresses import region_of
from .agencies import AgencyAccountStatus, AgencyStatusUpdate, Debtor, PlacedInvoice, PlacementRequest
from .channels import Channel
from .contact_centre.records import ContactRecord
from .creditors import Creditor
from .errors import CareCollectError, ConfigurationError, DuplicateEntry, RunWorkerError
from .invoices import Invoice, InvoiceStatus, reopen_invoice
from .ledger import EntryKind, post_adjustment, post_payment, reverse_payment
from .messages.context import Itemization, MessageContext, NoticeInfo
from .messages.paylinks import PayLinkSigner, new_nonce
from .messages.render import Renderer
from .messages.statement import build_statement
from .messaging import DeliveryReport, DeliveryState, OutgoingMessage, ReceiptStatus
from .money import Money
from .observability import add_metric, log_event, phase_span
from .outreach import AttemptOutcome, ContactAttempt, OutreachPurpose, OutreachStatus, OutreachStep
from .payments import (
    Adjustment,
    AdjustmentKind,
    Payment,
    PaymentMethod,
    PaymentReversal,
    PaymentSource,
    ReversalCause,
)
from .placements import (
    AgencyPlacement,
    PlacementStatus,
    Remittance,
    place_account,
    recall_placement,
    record_remittance,
    return_placement,
)
from .plans import (
    InstalmentStatus,
    PlanStatus,
    mark_instalment_missed,
    record_instalment_payment,
    reverse_instalment_payment,
)
from .policy.cadence import (
    ANCHOR_PLACED,
    NONE,
    CadencePlan,
    InvoiceContext,
    compile_pack,
    due_steps,
    invoice_history,
    nothing_due,
    nothing_due_in,
    plan_invoice,
)
from .policy.explain import Reason
from .policy.governor import UNDELIVERABLE_RULE, ContactHistory, Debt, may_contact
from .policy.packs import PolicyPack, get_pack
from .providers import Instrument, WebhookEvent, WebhookKind
from .relief.disputes import DisputeProcedure
from .relief.gates import may_place
from .relief.pauses import relief_flags
from .relief.snapshot import GateSnapshot, SentNotice
from .remittance import CLAIM_RECORD, ClaimPayment, active_claims, claim_from_record
from .run.kernel import (
    CLOSED,
    NOT_DUE,
    PAID,
    InstalmentAction,
    RunTables,
    decide,
    decode,
    instalment_actions,
    tally,
    tally_instalments,
)
from .run.rows import R_CTX, R_ID, AccountRows, Contexts, rows_from_facts
from .scrubbing import scrub_text
from .store.base import (
    RUN_LOCK_STALE_AFTER,
    AccountSnapshot,
    Mandate,
    OutboxItem,
    OutboxStatus,
    ProviderPayment,
    RunLocked,
    Store,
    next_retry_at,
)
from .store.event_queue import encode_arguments
from .store.sqlite import SQLiteStore
from .timekeeping import require_aware, zone

__all__ = [
    "CreditorSettings",
    "Decision",
    "DecisionKind",
    "InboundEvent",
    "IntakeReport",
    "OwedHookEvent",
    "PlannedCharge",
    "PlannedMessage",
    "PlannedPlacement",
    "RunHeartbeat",
    "RunPlan",
    "RunReport",
    "RunSettings",
    "announce_send_failure",
    "by_account",
    "check_settings",
    "deliver_hooks",
    "execute_run",
    "explain_account",
    "hook_failures",
    "intake",
    "message_id",
    "owe_hook",
    "plan_account",
    "plan_run",
    "provider_payment_id",
    "redeliver_hook_events",
    "settings_problems",
]

_MESSAGE_JURISDICTIONS = ("us", "no", "de", "bg")
_NEEDS_DEADLINE = frozenset(
    {
        OutreachPurpose.FINAL_NOTICE,
        OutreachPurpose.VALIDATION_NOTICE,
        OutreachPurpose.INKASSOVARSEL,
        OutreachPurpose.BETALINGSOPPFORDRING,
        OutreachPurpose.MAHNUNG,
        OutreachPurpose.PRE_PLACEMENT_NOTICE,
    }
)
#: Notices that announce the earliest date of a next step (an ECA, a placement): their deadline.
_ANNOUNCES_ACTION = frozenset({OutreachPurpose.ECA_NOTICE, OutreachPurpose.PRE_PLACEMENT_NOTICE})
_NEEDS_NOTICE = frozenset({OutreachPurpose.VALIDATION_NOTICE, OutreachPurpose.BETALINGSOPPFORDRING})
#: Days to pay a notice gives when the cadence set no deadline (the longest legal minimum of the packs).
_DEFAULT_NOTICE_DAYS = 14
_SENT = (OutreachStatus.SENT, OutreachStatus.DELIVERED)


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
    :param pay_link_days: how long a pay link stays valid.
    :param payment_providers: settings per payment-provider plugin name (API keys, webhook
        secrets); a plan's mandate names its provider. Not shown in reprs.
    :param batch_size: accounts read per batch (memory stays flat).
    :param max_attempts: sends tried before an outbox item is given up (and reported).
    :param keep_plan: keep every planned message and decision in the :class:`RunPlan` a run or a
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
    payment_providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    batch_size: int = 500
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
            channel_plugins={c: p for c, p in {**base.channel_plugins, **self.channel_plugins}.items() if p},
            channel_config=_merge(base.channel_config, self.channel_config),
            house_rules=_merge(base.house_rules, self.house_rules),
            packs={**base.packs, **self.packs},
            payment_providers=_merge(base.payment_providers, self.payment_providers),
        )


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def settings_problems(settings: RunSettings, pm: Any) -> tuple[str, ...]:
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


def check_settings(settings: RunSettings, pm: Any) -> None:
    """Refuse settings that cannot work (see :func:`settings_problems`), all problems at once.

    :raises ConfigurationError: one line per problem.
    """
    problems = settings_problems(settings, pm)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"the run's settings cannot work ({len(problems)} problem(s)):\n{lines}")


class DecisionKind(enum.Enum):
    """What the run decided about one step on one channel."""

    #: Send this outreach step on this channel now.
    SEND = "send"
    #: A step is due but a rule holds it back (quiet hours, a cap, no consent, a dispute...).
    HOLD = "hold"
    #: No step is due for this invoice today.
    NOTHING_DUE = "nothing_due"
    #: Collection on the account is paused (a dispute, a wait for the insurer, a plan).
    PAUSED = "paused"
    #: An instalment of a plan stayed unpaid past the grace days: it is marked missed.
    PLAN_MISSED = "plan_missed"
    #: The account may be and is placed with a collection agency.
    PLACE = "place"
    #: Placement (or another extraordinary action) was wanted but a gate refuses it for now.
    GATE_HELD = "gate_held"
    #: A due instalment is charged to the patient's mandate.
    CHARGE = "charge"
    #: A due instalment is not charged while a dispute on its invoices is open.
    CHARGE_HELD = "charge_held"


@attrs.frozen
class Decision:
    """One decision, with its reasons (what the audit log stores)."""

    kind: DecisionKind
    account_id: str
    invoice_id: str | None
    purpose: str | None
    channel: str | None
    reasons: tuple[Reason, ...] = ()
    earliest: dt.datetime | None = None

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (ids and rule references only; no PHI)."""
        return {
            "kind": self.kind.value,
            "account_id": self.account_id,
            "invoice_id": self.invoice_id,
            "purpose": self.purpose,
            "channel": self.channel,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "reasons": [r.to_record() for r in self.reasons],
        }


@attrs.frozen
class PlannedMessage:
    """A message the run will send: one step on one channel.

    :param key: the outbox idempotency key (``<step id>:<channel>``).
    :param step: the outreach step.
    :param channel: the channel.
    :param decision: the decision that allowed it.
    """

    key: str
    step: OutreachStep
    channel: Channel
    decision: Decision


@attrs.frozen
class PlannedPlacement:
    """An account the gate allows to place with the agency."""

    account_id: str
    amount: Money
    invoice_ids: tuple[str, ...]
    decision: Decision


@attrs.frozen
class PlannedCharge:
    """A plan instalment due today, to be charged to the plan's stored mandate.

    :param key: the outbox and provider idempotency key (``charge:<plan id>#<number>``).
    :param account_id: the account.
    :param plan_id: the plan.
    :param number: the instalment number.
    :param amount: the instalment's amount.
    :param provider: the payment-provider plugin that holds the mandate.
    :param decision: the decision that allowed it.
    """

    key: str
    account_id: str
    plan_id: str
    number: int
    amount: Money
    provider: str
    decision: Decision


@attrs.frozen
class AccountPlan:
    """Everything decided for one account."""

    messages: tuple[PlannedMessage, ...]
    decisions: tuple[Decision, ...]
    missed: tuple[tuple[str, int], ...]
    placement: PlannedPlacement | None
    charges: tuple[PlannedCharge, ...] = ()


@attrs.frozen
class RunPlan:
    """The plan of a whole run (also the result of a dry run).

    With :attr:`RunSettings.keep_plan` false the lists are empty and :attr:`tally` holds what they
    would have counted: read the plan's size with :meth:`counts` and :meth:`size`, which work
    either way.
    """

    now: dt.datetime
    accounts: int
    invoices: int
    messages: tuple[PlannedMessage, ...]
    decisions: tuple[Decision, ...]
    missed: tuple[tuple[str, int], ...]
    placements: tuple[PlannedPlacement, ...]
    charges: tuple[PlannedCharge, ...] = ()
    #: Counts kept instead of the lists (``None``: the lists are complete): ``messages``,
    #: ``missed``, ``placements``, ``charges`` and ``decision.<kind>``.
    tally: Mapping[str, int] | None = None

    def counts(self) -> dict[str, int]:
        """Decisions by kind."""
        if self.tally is not None:
            return {
                k.removeprefix("decision."): v for k, v in self.tally.items() if k.startswith("decision.")
            }
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.kind.value] = out.get(d.kind.value, 0) + 1
        return out

    def size(self, what: str) -> int:
        """How many ``messages``, ``missed`` instalments, ``placements`` or ``charges`` were planned.

        :raises ValueError: for any other name.
        """
        if what not in ("messages", "missed", "placements", "charges"):
            raise ValueError(f"size of {what!r}: one of messages, missed, placements, charges")
        if self.tally is not None:
            return self.tally.get(what, 0)
        return len(getattr(self, what))


@attrs.frozen
class RunReport:
    """What a real run did."""

    plan: RunPlan
    sent: int
    skipped_already_sent: int
    suppressed: int
    failed: int
    deferred_retry: int
    placed: int
    instalments_missed: int
    intake: IntakeReport | None = None
    charged: int = 0
    charges_failed: int = 0
    #: Event broadcasts some plugin raised on (from the plugin manager's
    #: :meth:`~carecollect.plugin_manager.PluginManager.undelivered`), one scrubbed line each.
    hook_failures: tuple[str, ...] = ()
    #: Print batches the run closed (:func:`close_batches`), by id.
    batches: tuple[str, ...] = ()
    #: Messages sent on each channel (channels that sent none are left out).
    sent_by_channel: Mapping[Channel, int] = attrs.field(factory=dict)


# -- planning ----------------------------------------------------------------------------------


def _today(now: dt.datetime, tz: str) -> dt.date:
    return now.astimezone(zone(tz)).date()


def _plan_status(snap: AccountSnapshot, invoice_id: str) -> PlanStatus | None:
    best: PlanStatus | None = None
    for plan in snap.plans:
        if invoice_id in plan.invoice_ids:
            if plan.status.current:
                return plan.status
            best = best or plan.status
    return best


def _sent_steps(snap: AccountSnapshot, invoice_id: str) -> tuple[OutreachStep, ...]:
    return tuple(s for s in snap.steps if s.invoice_id == invoice_id and s.status in _SENT)


def _gate_snapshot(
    snap: AccountSnapshot, balance: Money, invoice_ids: tuple[str, ...], tz: str
) -> GateSnapshot:
    notices = tuple(
        SentNotice(s.purpose, _today(s.sent_at, tz), s.deadline, s.invoice_id)
        for s in snap.steps
        if s.status in _SENT and s.sent_at is not None
    )
    last = max((n.sent_on for n in notices), default=None)
    spoke = max((_today(a.at, tz) for a in snap.attempts if a.is_conversation), default=None)
    returned = tuple(_today(a.at, tz) for a in snap.attempts if a.outcome is AttemptOutcome.BOUNCED)
    return GateSnapshot(
        snap.account.id,
        balance,
        invoices=tuple(i for i in snap.invoices if i.id in invoice_ids),
        disputes=snap.disputes,
        plans=snap.plans,
        notices=notices,
        applications=snap.applications,
        handoff_consent=snap.patient.handoff_consent,
        spoke_with_consumer_on=spoke,
        last_message_on=last,
        undeliverable_on=returned,
    )


def plan_account(
    snap: AccountSnapshot,
    creditor: Creditor,
    pack: PolicyPack,
    now: dt.datetime,
    *,
    agency: str | None = None,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    prescreen: bool = True,
) -> AccountPlan:
    """Decide everything for one account at ``now`` (pure: reads only its arguments).

    :param snap: the account's records.
    :param creditor: its creditor.
    :param pack: the pack (with house rules).
    :param now: the run's instant (aware).
    :param agency: the agency connector, if accounts may be placed.
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)``.
    :param prescreen: ask the compiled cadence kernel first (:func:`_prescreen`) and skip the
        relief flags, :func:`~carecollect.policy.cadence.due_steps` and the governor for an
        invoice it finds nothing due on; the plan is the same either way.
    """
    require_aware(now, f"Account {snap.account.id}", "now")
    patient = snap.patient
    tz = patient.time_zones[0]
    today = _today(now, tz)
    history = ContactHistory.of(snap.attempts, conversations)
    messages: list[PlannedMessage] = []
    decisions: list[Decision] = []
    missed: list[tuple[str, int]] = []
    open_ids: list[str] = []
    relief_view: GateSnapshot | None = None

    charges: list[PlannedCharge] = []
    mandates = {m.plan_id: m for m in snap.mandates if m.revoked_at is None or m.revoked_at > now}
    # the pre-screen only takes accounts nothing can freeze (no open dispute, no current plan)
    screen = (
        prescreen
        and not any(d.is_open for d in snap.disputes)
        and not any(p.status.current for p in snap.plans)
        and not any(a.status.pending for a in snap.applications)
    )

    # missed plan instalments: after the pack's grace period; before that, a due
    # instalment is charged to the plan's stored mandate (if the patient gave one)
    grace = int(pack.get("plan.grace_days", 10, on=today))
    active = {plan.id: plan for plan in snap.plans if plan.status is PlanStatus.ACTIVE}
    for action, plan_id, number in instalment_actions(
        (
            (
                plan.id,
                plan.invoice_ids,
                (
                    (inst.number, inst.due_date.toordinal())
                    for inst in plan.instalments
                    if inst.status is InstalmentStatus.DUE
                ),
            )
            for plan in active.values()
        ),
        mandates,
        tuple(d.invoice_id for d in snap.disputes if d.is_open),
        today.toordinal(),
        grace,
    ):
        plan = active[plan_id]
        inst = next(i for i in plan.instalments if i.number == number)
        if action is not InstalmentAction.MISSED:
            held = action is InstalmentAction.CHARGE_HELD
            charges.append(_plan_charge(snap, plan.id, plan.invoice_ids, inst, mandates[plan.id], held))
            decisions.append(charges[-1].decision)
        else:
            missed.append((plan.id, inst.number))
            decisions.append(
                Decision(
                    DecisionKind.PLAN_MISSED,
                    snap.account.id,
                    None,
                    None,
                    None,
                    (
                        Reason(
                            "plan.grace_days",
                            "creditor policy",
                            _outcome("INFO"),
                            f"instalment {inst.number} of plan {plan.id} unpaid {grace} days after it fell due",
                        ),
                    ),
                )
            )

    for inv in snap.invoices:
        if inv.status is not InvoiceStatus.OPEN:
            continue
        balance = (
            snap.ledger.invoice_balance(inv.id)
            if inv.id in snap.ledger.invoice_ids()
            else inv.patient_responsibility
        )
        if not balance.is_positive():
            decisions.append(_paid(snap.account.id, inv.id))
            continue
        open_ids.append(inv.id)
        if screen:
            quiet = _prescreen(snap, inv, balance, creditor, pack, now, today)
            if quiet is not None:
                decisions.append(
                    Decision(
                        DecisionKind.NOTHING_DUE,
                        snap.account.id,
                        inv.id,
                        None,
                        None,
                        quiet.reasons,
                        quiet.next_at,
                    )
                )
                continue
        if relief_view is None:
            relief_view = _gate_snapshot(snap, snap.ledger.balance, tuple(i.id for i in snap.invoices), tz)
        flags = relief_flags(relief_view, invoice_id=inv.id, now=now.astimezone(zone(tz)), pack=pack)
        ctx = InvoiceContext(
            invoice=inv,
            patient=patient,
            creditor=creditor,
            pack=pack,
            balance=balance,
            disputes=snap.disputes,
            sent_steps=_sent_steps(snap, inv.id),
            placed_on=_placed_on(snap, tz) if creditor.role.is_collector else None,
            **flags.as_context_kwargs(),
        )
        cad = due_steps(ctx, now)
        if not cad.due:
            decisions.append(
                Decision(
                    DecisionKind.NOTHING_DUE, snap.account.id, inv.id, None, None, cad.reasons, cad.next_at
                )
            )
            continue
        debt = Debt(
            snap.account.id,
            inv.id,
            disputes=snap.disputes,
            insurer_waiting=flags.insurer_waiting,
            plan_current=bool(flags.plan_status and flags.plan_status.current),
            assistance_pending=flags.assistance_pending,
        )
        for planned in cad.due:
            step = planned.to_outreach_step(now)
            for channel in planned.channels:
                verdict = may_contact(patient, debt, channel, now, history, pack, creditor, planned.purpose)
                reasons = cad.reasons + verdict.reasons
                if verdict.allowed:
                    d = Decision(
                        DecisionKind.SEND,
                        snap.account.id,
                        inv.id,
                        planned.purpose.value,
                        channel.value,
                        reasons,
                    )
                    messages.append(PlannedMessage(f"{step.id}:{channel.value}", step, channel, d))
                else:
                    d = Decision(
                        DecisionKind.HOLD,
                        snap.account.id,
                        inv.id,
                        planned.purpose.value,
                        channel.value,
                        reasons,
                        verdict.earliest_allowed,
                    )
                decisions.append(d)

    placement = None
    if agency and open_ids and not any(p.status is PlacementStatus.PLACED for p in snap.placements):
        amount = Money.from_minor(
            sum(
                snap.ledger.invoice_balance(i).minor_units for i in open_ids if i in snap.ledger.invoice_ids()
            ),
            snap.account.currency,
        )
        if amount.is_positive():
            gate = may_place(
                _gate_snapshot(snap, amount, tuple(open_ids), tz), now=now, pack=pack, creditor=creditor
            )
            kind = DecisionKind.PLACE if gate.allowed else DecisionKind.GATE_HELD
            d = Decision(kind, snap.account.id, None, None, None, gate.reasons)
            decisions.append(d)
            if gate.allowed:
                placement = PlannedPlacement(snap.account.id, amount, tuple(open_ids), d)
    return AccountPlan(tuple(messages), tuple(decisions), tuple(missed), placement, tuple(charges))


def _paid(account_id: str, invoice_id: str) -> Decision:
    """The decision on an open invoice with nothing left to pay."""
    return Decision(
        DecisionKind.NOTHING_DUE,
        account_id,
        invoice_id,
        None,
        None,
        (Reason("invoice.paid", "ledger", _outcome("INFO"), "nothing is owed on this invoice"),),
    )


def _prescreen(
    snap: AccountSnapshot,
    inv: Invoice,
    balance: Money,
    creditor: Creditor,
    pack: PolicyPack,
    now: dt.datetime,
    today: dt.date,
) -> CadencePlan | None:
    """The cadence's plan of an open invoice with nothing due today, from the compiled kernel alone.

    ``None`` (ask the rich path) unless the answer is sure to be the one
    :func:`~carecollect.policy.cadence.due_steps` gives: the caller has made
    sure no dispute is open, no plan is current and no assistance application
    is pending on the account; a claim the
    insurer has not decided, a balance in another currency or a collector
    without a placement day go to the rich path too, and so does any invoice
    with a step due today (its channels and the governor need the rich path).
    With no freeze, no step due means no message, whatever the patient's
    wishes, so the plan is ``nothing_due`` with the kernel's next day.
    """
    if inv.insurance.status.waiting or balance.currency != inv.currency:
        return None
    collector = creditor.role.is_collector
    cp = compile_pack(pack, on=today, collector=collector, nonprofit=creditor.nonprofit)
    placed_on = _placed_on(snap, snap.patient.time_zones[0]) if collector else None
    if collector and placed_on is None and ANCHOR_PLACED in cp.anchor:
        return None
    last_idx, last_idx_day, last_msg_day = invoice_history(cp, snap.steps, inv.id, snap.patient)
    idx, nxt = plan_invoice(
        cp,
        today.toordinal(),
        inv.issue_date.toordinal(),
        inv.due_date.toordinal(),
        placed_on.toordinal() if placed_on is not None else 0,
        balance.minor_units,
        False,
        last_idx,
        last_idx_day,
        last_msg_day,
    )
    if idx != NONE:
        return None
    return nothing_due(pack, snap.patient, nxt)


def _plan_charge(
    snap: AccountSnapshot, plan_id: str, invoice_ids: Sequence[str], inst: Any, mandate: Mandate, held: bool
) -> PlannedCharge:
    """The charge of a due instalment, or its hold while an open dispute on the plan's invoices lasts."""
    disputed = [
        d.id for d in snap.disputes if d.is_open and (d.invoice_id is None or d.invoice_id in invoice_ids)
    ]
    if held:
        reason = Reason(
            "plan.charge_disputed",
            "creditor policy",
            _outcome("DEFER"),
            f"instalment {inst.number} of plan {plan_id} is not charged while dispute {disputed[0]} is open",
        )
        kind = DecisionKind.CHARGE_HELD
    else:
        reason = Reason(
            "plan.mandate_charge",
            "patient's mandate",
            _outcome("INFO"),
            f"instalment {inst.number} of plan {plan_id} fell due on {inst.due_date.isoformat()}; "
            f"charged to the mandate at {mandate.provider}",
        )
        kind = DecisionKind.CHARGE
    d = Decision(kind, snap.account.id, None, None, None, (reason,))
    return PlannedCharge(
        f"charge:{plan_id}#{inst.number}",
        snap.account.id,
        plan_id,
        inst.number,
        inst.amount,
        mandate.provider,
        d,
    )


def _outcome(name: str) -> Any:
    from .policy.explain import Outcome

    return Outcome[name]


def _placed_on(snap: AccountSnapshot, tz: str) -> dt.date | None:
    for p in snap.placements:
        if p.placed_at is not None:
            return _today(p.placed_at, tz)
    first = min((i.issue_date for i in snap.invoices), default=None)
    return first


class _Creditors:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, Creditor] = {}

    def __call__(self, creditor_id: str) -> Creditor:
        if creditor_id not in self._cache:
            self._cache[creditor_id] = self._store.get_creditor(creditor_id)
        return self._cache[creditor_id]


Conversations = Mapping[str, Sequence[tuple[str, str | None, dt.datetime]]]


def by_account(conversations: Iterable[tuple[str, str | None, dt.datetime]]) -> Conversations:
    """Group contact-centre conversations ``(account_id, invoice_id, at)`` by account, for the run.

    Feed it :func:`carecollect.contact_centre.conversations` of the day's contact records:
    a call that reached the patient then pauses further calls as the packs require.
    """
    grouped: dict[str, list[tuple[str, str | None, dt.datetime]]] = {}
    for conv in conversations:
        require_aware(conv[2], "Conversation", "at")
        grouped.setdefault(conv[0], []).append((conv[0], conv[1], conv[2]))
    return grouped


@attrs.frozen
class _Planned:
    """One account's plan as the run's planner hands it on, or (without objects) the counts of many."""

    account_id: str
    creditor_id: str
    invoices: int
    plan: AccountPlan | None
    #: Without ``objects``: the decision codes of the invoices of :attr:`accounts` accounts.
    codes: Sequence[int] = ()
    #: Counts of instalment actions (without ``objects``: ``missed``, ``charges``, ``decision.*``).
    extra: Mapping[str, int] | None = None
    accounts: int = 1


def _iter_plans(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    conversations: Conversations | None = None,
    *,
    prescreen: bool = True,
    objects: bool = True,
) -> Iterator[_Planned]:
    """Decide every account: on plan rows with the compiled kernel where that settles it, else on its snapshot.

    A store with ``iter_plan_facts`` (:class:`~carecollect.store.sqlite.SQLiteStore`) hands over
    flat facts; :func:`carecollect.run.rows.rows_from_facts` makes plan rows and
    :func:`carecollect.run.kernel.decide` decides them. An account is read as a snapshot and
    decided by :func:`plan_account` when it is rich (a dispute, plan, application, conversation,
    agency gate) or, with ``objects``, when a step is due, stopped or frozen on it (its
    messages and reasons need the records). Without ``objects`` a plain account yields only
    its decision codes (the dry run's counts). ``prescreen=False`` decides every account on
    its snapshot (slower, for comparisons).
    """
    conversations = conversations or {}
    creditors = _Creditors(store)
    tables = RunTables(Contexts(settings.own_rules), now, settings.pack, creditor_pack_of=settings.pack)
    facts_of = getattr(store, "iter_plan_facts", None)
    if not prescreen or facts_of is None:
        for snap in store.iter_account_snapshots(batch_size=settings.batch_size):
            yield _Planned(
                snap.account.id,
                snap.account.creditor_id,
                len(snap.invoices),
                plan_account(
                    snap,
                    creditors(snap.account.creditor_id),
                    tables.pack(snap.account.jurisdiction, _rules_key(settings, snap.account)),
                    now,
                    agency=settings.agency,
                    conversations=conversations.get(snap.account.id, ()),
                    prescreen=prescreen,
                ),
            )
        return
    agency = settings.agency is not None
    for facts in facts_of(batch_size=max(settings.batch_size, 2000)):
        batch = rows_from_facts(facts, now, tables.contexts, agency=agency, conversations=conversations)
        settled: dict[str, _Planned] = {}
        rich: list[str] = []
        if not objects:  # counts only: every plain account of the batch decided in one go
            plain = [acc for acc in batch if not acc.rich]
            extra: dict[str, int] = {}
            for acc in plain:
                if acc.plans:
                    tally_instalments(acc, tables, extra)
            yield _Planned(
                "",
                "",
                sum(acc.invoices for acc in plain),
                None,
                decide([row for acc in plain for row in acc.rows], tables),
                extra,
                len(plain),
            )
            rich = [acc.account_id for acc in batch if acc.rich]
            batch = [acc for acc in batch if acc.rich]
        for acc in batch:
            if acc.rich:
                if objects:
                    rich.append(acc.account_id)
                continue
            codes = decide(acc.rows, tables)
            plan = None if acc.relief else _plan_of_codes(acc, codes, tables)
            if plan is None:
                rich.append(acc.account_id)
            else:
                settled[acc.account_id] = _Planned(acc.account_id, acc.creditor_id, acc.invoices, plan)
        snaps = {s.account.id: s for s in store.account_snapshots(rich)} if rich else {}  # type: ignore[attr-defined]
        for acc in batch:
            planned = settled.get(acc.account_id)
            if planned is None:
                snap = snaps[acc.account_id]
                planned = _Planned(
                    acc.account_id,
                    acc.creditor_id,
                    acc.invoices,
                    plan_account(
                        snap,
                        creditors(acc.creditor_id),
                        tables.pack(snap.account.jurisdiction, _rules_key(settings, snap.account)),
                        now,
                        agency=settings.agency,
                        conversations=conversations.get(acc.account_id, ()),
                    ),
                )
            yield planned


def _rules_key(settings: RunSettings, account: Any) -> str:
    """The creditor id whose own pack applies to ``account`` ("": the installation's)."""
    cid: str = account.creditor_id
    return cid if settings.own_rules(cid, account.jurisdiction) else ""


def _plan_of_codes(acc: AccountRows, codes: Sequence[int], tables: RunTables) -> AccountPlan | None:
    """The :class:`AccountPlan` of an account whose invoices are all closed, paid or not due; else ``None``.

    The decisions and their reasons are the ones :func:`plan_account` gives (the same
    :func:`_paid` and :func:`~carecollect.policy.cadence.nothing_due_in`).
    """
    decisions: list[Decision] = []
    for row, code in zip(acc.rows, codes, strict=True):
        state, _idx, _planned, _send, nxt = decode(code)
        if state == CLOSED:
            continue
        if state == PAID:
            decisions.append(_paid(acc.account_id, row[R_ID]))
        elif state == NOT_DUE:
            ctx = tables.contexts[row[R_CTX]]
            cad = nothing_due_in(tables.pack(ctx.pack_key), ctx.zones[0], nxt)
            decisions.append(
                Decision(
                    DecisionKind.NOTHING_DUE, acc.account_id, row[R_ID], None, None, cad.reasons, cad.next_at
                )
            )
        else:
            return None
    return AccountPlan((), tuple(decisions), (), None)


def plan_run(
    store: Store,
    now: dt.datetime,
    settings: RunSettings | None = None,
    *,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    prescreen: bool = True,
) -> RunPlan:
    """Plan a run without sending or writing anything (the dry run).

    :param store: the store.
    :param now: the run's instant (aware).
    :param settings: run settings (default :class:`RunSettings`).
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)`` that
        count like answered calls (see :func:`by_account`).
    :param prescreen: let the compiled cadence kernel settle the invoices with nothing due
        (see :func:`plan_account`); ``False`` asks the rich path for every invoice (same plan,
        slower: for comparisons).
    """
    require_aware(now, "run", "now")
    settings = settings or RunSettings()
    collected = _Collected(settings.keep_plan)
    for planned in _iter_plans(
        store, now, settings, by_account(conversations), prescreen=prescreen, objects=settings.keep_plan
    ):
        collected.add(planned)
    return collected.plan(now)


class _Collected:
    """Accumulates the account plans of a run into a :class:`RunPlan` (or only their counts)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.accounts = 0
        self.invoices = 0
        self.messages: list[PlannedMessage] = []
        self.decisions: list[Decision] = []
        self.missed: list[tuple[str, int]] = []
        self.placements: list[PlannedPlacement] = []
        self.charges: list[PlannedCharge] = []
        self.tally: dict[str, int] = {}

    def add(self, planned: _Planned) -> None:
        self.accounts += planned.accounts
        self.invoices += planned.invoices
        plan = planned.plan
        if plan is None:
            tally(planned.codes, self.tally)
            for key, n in (planned.extra or {}).items():
                self.tally[key] = self.tally.get(key, 0) + n
            return
        charges = [c for c in plan.charges if c.decision.kind is DecisionKind.CHARGE]
        if not self.keep:
            t = self.tally
            for what, n in (
                ("messages", len(plan.messages)),
                ("missed", len(plan.missed)),
                ("placements", plan.placement is not None),
                ("charges", len(charges)),
            ):
                t[what] = t.get(what, 0) + n
            for d in plan.decisions:
                key = f"decision.{d.kind.value}"
                t[key] = t.get(key, 0) + 1
            return
        self.messages.extend(plan.messages)
        self.decisions.extend(plan.decisions)
        self.missed.extend(plan.missed)
        if plan.placement is not None:
            self.placements.append(plan.placement)
        self.charges.extend(charges)

    def plan(self, now: dt.datetime) -> RunPlan:
        return RunPlan(
            now,
            self.accounts,
            self.invoices,
            tuple(self.messages),
            tuple(self.decisions),
            tuple(self.missed),
            tuple(self.placements),
            tuple(self.charges),
            None if self.keep else dict(self.tally),
        )


# -- intake ------------------------------------------------------------------------------------


class InboundKind(enum.Enum):
    """What an inbound event is."""

    DELIVERY_REPORT = "delivery_report"
    REPLY = "reply"
    #: A payment provider's webhook (``plugin`` is the payment-provider name).
    PAYMENT = "payment"
    #: A dispute opened, resolved or withdrawn in the creditor's own systems (portal, front desk,
    #: ticketing); ``plugin`` names that source and ``body`` is JSON (see :func:`intake`).
    DISPUTE = "dispute"


@attrs.frozen
class InboundEvent:
    """Something that came back, as the plugin received it.

    :param kind: :class:`InboundKind`.
    :param plugin: the channel or payment-provider plugin name that parses it.
    :param body: the raw body.
    :param headers: the raw headers.
    :param received_at: when it was received over HTTP and its signature checked (an event from
        the store's inbox); the plugin checks the signature again as of this instant, so a
        webhook received yesterday is still taken today. ``None``: checked as of the run's ``now``.
    """

    kind: InboundKind
    plugin: str
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    received_at: dt.datetime | None = None


@attrs.frozen
class IntakeReport:
    """What intake did."""

    processed: int = 0
    duplicates: int = 0
    opt_outs: int = 0
    delivery_reports: int = 0
    remittances: int = 0
    failures: tuple[str, ...] = ()
    payments: int = 0
    mandates_revoked: int = 0
    disputes_opened: int = 0
    disputes_resolved: int = 0
    recalled: int = 0
    disputes_met: int = 0
    agency_updates: int = 0
    bounced: int = 0
    #: Posted payments taken back by a provider's webhook (a returned debit, a chargeback, a
    #: refund the provider made), in whole or in part.
    payments_reversed: int = 0


def _channel_instance(pm: Any, settings: RunSettings, name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        desc = pm.message_channel(name)
        cache[name] = desc.create(dict(settings.channel_config.get(name, {})))
    return cache[name]


def intake(
    store: Store,
    pm: Any,
    settings: RunSettings,
    events: Iterable[InboundEvent],
    now: dt.datetime,
    *,
    contacts: Iterable[ContactRecord] = (),
    poll_agency: bool = True,
) -> IntakeReport:
    """Take in payment webhooks, delivery reports, replies, disputes and remittances; each event id once.

    The ``events`` given are taken first, then the events the store's inbox holds
    (:meth:`~carecollect.store.base.Store.inbox_pending`: what the patient pages' webhook door
    received over HTTP), each marked taken once handled. ``poll_agency=False`` skips retrying
    recalls and reading the agency's remittances and status updates (the patient pages take in
    their inbox that way after each event, and leave the agency to the run).

    An inbound ``STOP`` (in any of the supported languages) becomes an opt-out on
    the matching contact point at once. A payment webhook is verified by its
    provider plugin (a refused one is listed in the failures and records
    nothing); a succeeded payment whose reference the store knows
    (:meth:`~carecollect.store.base.Store.link_provider_payment`: the run links
    its instalment charges, a payment page links what it creates) is posted to
    the ledger once and pays its plan instalment. An unknown reference is listed
    in the failures and not marked processed, so the provider's redelivery is
    taken once the link exists.

    A failed payment (a direct debit returned after it was reported succeeded),
    an opened chargeback or a refund the provider made, whose reference links to
    a payment on the ledger, takes that payment back
    (:func:`~carecollect.ledger.reverse_payment`: the event's amount, or all
    that is left of the payment), reopens an invoice marked paid whose balance
    is owed again, and puts the linked plan instalment back to due when what is
    left of the payment no longer covers it
    (:func:`~carecollect.plans.reverse_instalment_payment`), all in the unit of
    work that marks the event processed. For a payment never posted it changes
    no money; it is recorded in the audit log either way.

    A :attr:`InboundKind.DISPUTE` event's body is a JSON object with ``action``
    (``"open"``, ``"resolve"`` or ``"withdraw"``) and ``dispute_id``; to open:
    ``account_id``, ``invoice_id`` (or ``null`` for the whole account),
    ``reason`` (a :class:`~carecollect.disputes.DisputeReason` value), ``at``
    (ISO 8601 with offset) and optionally ``in_writing``; to resolve: ``kind``
    (a :class:`~carecollect.disputes.ResolutionKind` value), ``at``,
    ``approved_by`` and, for a correction, discount or write-off, ``amount``
    (posted to the ledger as an adjustment of the disputed invoice). A dispute
    opened on an account placed with the configured agency recalls the
    placement through the agency connector (an outbox item, retried with
    back-off until the agency accepts). Opened, resolved or withdrawn disputes
    and recalls are broadcast to their event hooks.

    ``contacts`` are the contact centre's records
    (:class:`~carecollect.contact_centre.ContactRecord`): an open dispute whose
    patient they show was reached is stored with
    :func:`~carecollect.contact_centre.meet_in_dispute`, so the dispute
    procedure sees it.
    """
    from .patients import opt_out

    require_aware(now, "intake", "now")
    counts = dict.fromkeys(
        (
            "processed",
            "duplicates",
            "opt_outs",
            "delivery",
            "remittances",
            "payments",
            "revoked",
            "opened",
            "resolved",
            "escalated",
            "recalled",
            "met",
            "agency_updates",
            "bounced",
            "reversed",
        ),
        0,
    )
    failures: list[str] = []
    channels: dict[str, Any] = {}
    providers: dict[str, Any] = {}
    if settings.agency and poll_agency:
        counts["recalled"] += _retry_recalls(store, pm, settings, now, failures)
    for ev in itertools.chain(events, _inbox_events(store, failures, now)):
        try:
            if ev.kind is InboundKind.PAYMENT:
                outcome = _take_payment_webhook(store, pm, settings, ev, providers, now)
                if outcome == "duplicate":
                    counts["duplicates"] += 1
                elif outcome.startswith("unmatched"):
                    failures.append(f"payment via {ev.plugin}: {outcome}")
                else:
                    counts["processed"] += 1
                    # "payments+N": posted, and N reversals that had arrived before it applied
                    kind, _, overtaken = outcome.partition("+")
                    if kind in ("payments", "revoked", "reversed"):
                        counts[kind] += 1
                    counts["reversed"] += int(overtaken or 0)
                continue
            if ev.kind is InboundKind.DISPUTE:
                outcome = _take_dispute(store, pm, settings, ev, now)
                if outcome == "duplicate":
                    counts["duplicates"] += 1
                else:
                    counts["processed"] += 1
                    kind, _, recalled = outcome.partition("+")
                    counts[kind] += 1
                    counts["recalled"] += int(recalled or 0)
                continue
            channel = _channel_instance(pm, settings, ev.plugin, channels)
            if ev.kind is InboundKind.REPLY:
                reply = channel.parse_inbound(dict(ev.headers), ev.body, now=ev.received_at or now)
                with store.transaction():
                    if not store.mark_processed(f"channel:{ev.plugin}", reply.provider_message_id, at=now):
                        counts["duplicates"] += 1
                        continue
                    opted: list[OwedHookEvent] = []
                    if reply.is_opt_out:
                        for patient_id, ch in store.patients_with_address(reply.sender):
                            patient = store.get_patient(patient_id)
                            patient, event = opt_out(patient, ch, at=reply.at)
                            store.put_patient(patient)
                            store.audit_append("opt_out", patient_id, {"channel": ch.value}, at=now)
                            opted.append(
                                owe_hook(
                                    store,
                                    pm,
                                    "carecollect_on_opt_out",
                                    now,
                                    patient_id=patient_id,
                                    channel=ch,
                                    event=event,
                                )
                            )
                deliver_hooks(store, pm, opted, now)  # broadcast once the opt-out is stored
                counts["opt_outs"] += len(opted)
                counts["processed"] += 1
            else:
                report = channel.parse_delivery_report(dict(ev.headers), ev.body, now=now)
                with store.transaction():
                    if not store.mark_processed(
                        f"channel:{ev.plugin}",
                        f"dr:{report.provider_message_id}:{report.state.value}",
                        at=now,
                    ):
                        counts["duplicates"] += 1
                        continue
                    store.audit_append(
                        "delivery_report", report.provider_message_id, {"state": report.state.value}, at=now
                    )
                    bounced = _record_bounce(store, report) if report.state is HARD_BOUNCE else None
                    owed = (
                        ()
                        if bounced is None
                        else (
                            owe_hook(
                                store,
                                pm,
                                "carecollect_on_outreach_failed",
                                now,
                                step=bounced[0],
                                event=bounced[1],
                                reason=bounced[2],
                            ),
                        )
                    )
                if bounced is not None:
                    deliver_hooks(store, pm, owed, now)
                    counts["bounced"] += 1
                counts["delivery"] += 1
                counts["processed"] += 1
        except CareCollectError as exc:
            failures.append(f"{ev.kind.value} via {ev.plugin}: {type(exc).__name__}: {exc}")
        except (KeyError, ValueError, TypeError) as exc:
            failures.append(f"{ev.kind.value} via {ev.plugin}: malformed event ({type(exc).__name__})")
    counts["met"] += _meet_disputes(store, contacts, now)
    if settings.agency and poll_agency:
        try:
            connector = pm.agency_connector(settings.agency).create(dict(settings.agency_config))
            since = now - dt.timedelta(days=settings.remittance_lookback_days)
            for item in connector.read_remittances(since):
                if _take_remittance(store, pm, settings.agency, item.placement_id, item.remittance, now):
                    counts["remittances"] += 1
                    counts["processed"] += 1
                else:
                    counts["duplicates"] += 1
            for update in connector.read_status_updates(since):
                try:
                    taken = _take_status_update(store, pm, settings, update, now)
                except CareCollectError as exc:
                    failures.append(f"status update via {settings.agency}: {type(exc).__name__}: {exc}")
                    continue
                if taken:
                    counts["agency_updates"] += 1
                    counts["processed"] += 1
                else:
                    counts["duplicates"] += 1
        except CareCollectError as exc:
            failures.append(f"agency {settings.agency}: {type(exc).__name__}: {exc}")
    return IntakeReport(
        counts["processed"],
        counts["duplicates"],
        counts["opt_outs"],
        counts["delivery"],
        counts["remittances"],
        tuple(failures),
        counts["payments"],
        counts["revoked"],
        counts["opened"],
        counts["resolved"],
        counts["recalled"],
        counts["met"],
        counts["agency_updates"],
        counts["bounced"],
        counts["reversed"],
    )


#: Intakes that try an inbox event before it is given up (and reported): a month of daily runs.
INBOX_MAX_ATTEMPTS = 30


def _inbox_events(store: Store, failures: list[str], now: dt.datetime) -> Iterator[InboundEvent]:
    """The store's pending inbox events, each marked taken (or counted as tried) once it was handled.

    The loop of :func:`intake` resumes this generator after handling the event it yielded, so the
    mark is written after the event's own unit of work; an event whose handling failed stays
    pending and is tried again by the next intake, up to :data:`INBOX_MAX_ATTEMPTS` times.
    """
    for item in store.inbox_pending():
        before = len(failures)
        yield InboundEvent(InboundKind(item.kind), item.plugin, item.body, item.headers, item.received_at)
        if len(failures) == before:
            store.inbox_taken(item.kind, item.plugin, item.event_id, at=now, outcome="taken")
        elif item.attempts + 1 >= INBOX_MAX_ATTEMPTS:
            failures[-1] += f" (given up after {item.attempts + 1} attempts)"
            store.inbox_taken(item.kind, item.plugin, item.event_id, at=now, outcome="given up")
        else:
            store.inbox_retry(item.kind, item.plugin, item.event_id, outcome="failed")


def announce_send_failure(store: Store, pm: Any, msg: PlannedMessage, now: dt.datetime) -> None:
    """Broadcast ``carecollect_on_outreach_failed`` for a send the outbox has just recorded failed.

    The reason is the outbox item's scrubbed error; the event says whether the
    send will be retried (``retry_at``) or was given up after the last attempt.
    """
    with store.transaction():
        owed = _owe_send_failure(store, pm, msg, now)
    deliver_hooks(store, pm, (owed,), now)


def _owe_send_failure(store: Store, pm: Any, msg: PlannedMessage, now: dt.datetime) -> OwedHookEvent:
    """Queue ``carecollect_on_outreach_failed`` for the send the outbox just recorded failed."""
    from .events import Event, EventType

    item = store.outbox_get(msg.key)
    details: dict[str, object] = {
        "channel": msg.channel.value,
        "key": msg.key,
        "attempts": item.attempts,
        "gave_up": item.next_retry_at is None,
    }
    if item.next_retry_at is not None:
        details["retry_at"] = item.next_retry_at.isoformat()
    event = Event(EventType.OUTREACH_FAILED, msg.step.id, now, details)
    return owe_hook(
        store,
        pm,
        "carecollect_on_outreach_failed",
        now,
        step=msg.step,
        event=event,
        reason=item.last_error or "failed",
    )


@attrs.frozen
class OwedHookEvent:
    """An event-hook broadcast queued in the store (:func:`owe_hook`), to deliver once committed.

    :param seq: its place in the store's queue.
    :param hook: the hook's name.
    :param targets: the plugins that must take it.
    :param arguments: the hook's keyword arguments.
    """

    seq: int
    hook: str
    targets: tuple[str, ...]
    arguments: Mapping[str, Any] = attrs.field(eq=False, repr=False)


def owe_hook(store: Store, pm: Any, hook: str, at: dt.datetime, **arguments: Any) -> OwedHookEvent:
    """Queue the broadcast of ``hook`` in the store; call it inside the unit of work that makes
    the change the event reports, then :func:`deliver_hooks` once that unit is committed.

    The store keeps it until every plugin that implements the hook has taken it, so a plugin that
    raises, or a process that dies between the commit and the broadcast, loses nothing: the next
    run delivers it (:func:`redeliver_hook_events`). ``reason`` (``on_outreach_failed``) is
    scrubbed first.

    :param store: the store (in the caller's transaction).
    :param pm: the plugin manager (its implementers of ``hook`` are the targets).
    :param hook: one of :data:`carecollect.hookspecs.EVENT_HOOKS`.
    :param at: the run's instant.
    :param arguments: the hook's keyword arguments.
    :returns: the queued event (``seq`` 0 when no plugin implements the hook: nothing is owed).
    """
    if "reason" in arguments:
        arguments["reason"] = scrub_text(str(arguments["reason"]))
    targets = tuple(pm.event_hook_plugins(hook))
    if not targets:  # no plugin listens: nothing is owed, nothing is written
        return OwedHookEvent(0, hook, targets, arguments)
    seq = store.hook_event_record(hook, encode_arguments(arguments), targets, at=at)
    return OwedHookEvent(seq, hook, targets, arguments)


def _deliver(
    store: Store,
    pm: Any,
    seq: int,
    hook: str,
    owed: Sequence[str],
    arguments: Mapping[str, Any],
    at: dt.datetime,
) -> None:
    """Broadcast to the plugins in ``owed`` that are installed; record who took it."""
    if not owed:
        return
    installed = set(pm.event_hook_plugins(hook))
    calling = [p for p in owed if p in installed]
    if not calling:
        return  # its plugins are not installed now (blocked?): kept for a run that has them
    result = pm.broadcast(hook, only=calling, **arguments)
    error = "; ".join(f"{f.plugin}: {f.error_type}: {f.message}" for f in result.failures)[:500] or None
    store.hook_event_delivered(seq, result.delivered, at=at, error=error)


def deliver_hooks(store: Store, pm: Any, owed: Iterable[OwedHookEvent], at: dt.datetime) -> None:
    """Broadcast events queued by :func:`owe_hook` (their unit of work is committed) and record,
    per plugin, who took them; a plugin that raises keeps its event in the queue."""
    for o in owed:
        _deliver(store, pm, o.seq, o.hook, o.targets, o.arguments, at)


def redeliver_hook_events(store: Store, pm: Any, at: dt.datetime) -> int:
    """Deliver again every queued event some plugin has not taken (the run does this first).

    Each event goes only to the plugins that have not taken it, oldest first; a plugin that
    raises again keeps it for the next run. Returns the number of events tried.
    """
    from .store.event_queue import decode_arguments

    tried = 0
    while True:
        pending = [e for e in store.hook_events_pending(limit=500) if e.seq > tried]
        if not pending:
            return tried
        for event in pending:
            _deliver(store, pm, event.seq, event.hook, event.owed, decode_arguments(event.arguments), at)
            tried = event.seq


def hook_failures(pm: Any) -> tuple[str, ...]:
    """One scrubbed line per event broadcast a plugin has not handled yet in this run
    (``pm.undelivered()``).

    A plugin's own failure never stops the run; the event stays in the store's queue
    (:func:`owe_hook`) and the next run delivers it again (:func:`redeliver_hook_events`).
    """
    lines = []
    for result in pm.undelivered():
        for failure in result.failures:
            lines.append(
                f"{result.hook} {result.event.type.value} {result.event.record_id}: "
                f"plugin {failure.plugin!r} raised {failure.error_type}: {failure.message}"[:300]
            )
    return tuple(lines)


def _meet_disputes(store: Store, contacts: Iterable[ContactRecord], now: dt.datetime) -> int:
    """Store, on each open dispute, that the contact records show its patient was reached."""
    from .contact_centre import meet_in_dispute

    grouped: dict[str, list[ContactRecord]] = {}
    for record in contacts:
        grouped.setdefault(record.account_id, []).append(record)
    met = 0
    for account_id, records in grouped.items():
        try:
            disputes = store.account_snapshot(account_id).disputes
        except CareCollectError:  # a contact about an account this store does not hold
            continue
        for dispute in disputes:
            new, event = meet_in_dispute(dispute, records)
            if event is None:
                continue
            with store.transaction():
                store.put_dispute(new)
                store.audit_append(
                    "dispute.patient_met",
                    account_id,
                    {
                        "dispute": dispute.id,
                        "channel": event.detail("channel"),
                        "met_at": event.at.isoformat(),
                    },
                    at=now,
                )
            met += 1
    return met


def _dispute_body(ev: InboundEvent) -> dict[str, Any]:
    import json

    data = json.loads(ev.body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a dispute event is a JSON object")
    return data


def _instant(data: Mapping[str, Any], key: str, now: dt.datetime) -> dt.datetime:
    value = data.get(key)
    if value is None:
        return now
    at = dt.datetime.fromisoformat(str(value))
    require_aware(at, "dispute event", key)
    return at


def _take_dispute(store: Store, pm: Any, settings: RunSettings, ev: InboundEvent, now: dt.datetime) -> str:
    """Take one dispute event; returns ``"duplicate"``, ``"opened+<recalls>"``, ``"escalated"`` or
    ``"resolved"``.

    A resolution goes through :func:`carecollect.relief.disputes.resolve_dispute`: the authority of
    the dispute's level under :attr:`RunSettings.dispute_procedure` is checked before anything is
    written; a refused one raises (reported by the intake) and leaves the dispute open and the
    ledger as it was.  ``"escalate"`` hands the dispute to a higher level (``"level"``: an
    :class:`~carecollect.disputes.EscalationLevel` name).
    """
    from .disputes import (
        DisputeReason,
        EscalationLevel,
        Resolution,
        ResolutionKind,
        escalate_dispute,
        withdraw_dispute,
    )
    from .relief.disputes import open_dispute, resolve_dispute

    data = _dispute_body(ev)
    action = str(data["action"])
    dispute_id = str(data["dispute_id"])
    source = f"disputes:{ev.plugin}"
    if action not in ("open", "resolve", "withdraw", "escalate"):
        raise ValueError(f"unknown dispute action {action!r}")
    key = f"{action}:{dispute_id}" if action != "escalate" else f"escalate:{dispute_id}:{data.get('level')}"
    if store.was_processed(source, key):
        return "duplicate"
    at = _instant(data, "at", now)
    if action == "open":
        snap = store.account_snapshot(str(data["account_id"]))
        invoice_id = data.get("invoice_id")
        dispute, event, respond_by = open_dispute(
            dispute_id,
            snap.account.id,
            None if invoice_id is None else str(invoice_id),
            DisputeReason(data["reason"]),
            at=at,
            pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
            in_writing=bool(data.get("in_writing", False)),
        )
        with store.transaction():
            store.put_dispute(dispute)
            store.mark_processed(source, key, at=now)
            store.audit_append(
                "dispute.opened",
                snap.account.id,
                {
                    "dispute": dispute.id,
                    "invoice_id": dispute.invoice_id,
                    "reason": dispute.reason.value,
                    "respond_by": respond_by.isoformat(),
                },
                at=now,
            )
            owed = owe_hook(store, pm, "carecollect_on_dispute_opened", now, dispute=dispute, event=event)
        deliver_hooks(store, pm, (owed,), now)
        recalled = 0
        if settings.agency:
            for placement in snap.placements:
                if placement.status is PlacementStatus.PLACED and (
                    dispute.invoice_id is None or dispute.invoice_id in placement.invoice_ids
                ):
                    recalled += _recall(store, pm, settings, placement.id, f"dispute {dispute.id}", now)
        return f"opened+{recalled}"
    dispute = store.get_dispute(dispute_id)
    adjustment = None
    if action == "withdraw":
        new, event = withdraw_dispute(dispute, at=at)
    elif action == "escalate":
        level = EscalationLevel[str(data["level"])]
        new, event = escalate_dispute(dispute, level, at=at)
    else:
        kind = ResolutionKind(data["kind"])
        snap = store.account_snapshot(dispute.account_id)
        amount = (
            Money.of(str(data["amount"]), snap.account.currency) if data.get("amount") is not None else None
        )
        # a reduction on what remains after insurance is an AfterInsuranceOffer (Python API);
        # taken in here, a resolution takes effect now, so none is written off before the insurer pays
        resolution = Resolution(kind, amount=amount, approved_by=data.get("approved_by"))
        if amount is not None and dispute.invoice_id is None:
            raise ValueError(f"dispute {dispute.id} covers the whole account: name the invoice to adjust")
        book = snap.ledger
        balance = book.invoice_balance(dispute.invoice_id) if dispute.invoice_id is not None else book.balance
        procedure = settings.dispute_procedure or DisputeProcedure.default(snap.account.currency)
        new, event, _ = resolve_dispute(
            dispute,
            resolution,
            balance=balance,
            at=at,
            pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
            procedure=procedure,
            invoice=store.get_invoice(dispute.invoice_id) if dispute.invoice_id is not None else None,
        )
        if amount is not None and dispute.invoice_id is not None:
            adjustment = Adjustment(
                f"ADJ-{dispute.id}",
                dispute.account_id,
                dispute.invoice_id,
                amount,
                AdjustmentKind(kind.value),
                f"DISPUTE-{dispute.reason.value}",
                str(data.get("approved_by") or ev.plugin),
                at,
            )
    with store.transaction():
        if adjustment is not None:
            book = store.ledger(dispute.account_id)
            new_book, _ = post_adjustment(book, adjustment)
            store.append_ledger(dispute.account_id, new_book.entries[len(book.entries) :])
        store.put_dispute(new)
        store.mark_processed(source, key, at=now)
        store.audit_append(
            f"dispute.{new.status.value}" if action != "escalate" else "dispute.escalated",
            dispute.account_id,
            {"dispute": dispute.id, "event": event.type.value},
            at=now,
        )
        if action == "escalate":
            return "escalated"
        owed = owe_hook(store, pm, "carecollect_on_dispute_resolved", now, dispute=new, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return "resolved"


def _recall(
    store: Store, pm: Any, settings: RunSettings, placement_id: str, reason: str, now: dt.datetime
) -> int:
    """Outbox protocol for one recall: intended, sent to the agency, recorded; 1 when recalled now."""
    key = f"recall:{placement_id}"
    assert settings.agency is not None
    placement = store.get_placement(placement_id)
    try:
        with store.transaction():
            item = store.outbox_intend(
                key,
                "recall",
                {"placement": placement_id, "reason": reason},
                at=now,
                account_id=placement.account_id,
            )
    except DuplicateEntry:  # an earlier recall of this placement (its reason stands)
        item = store.outbox_get(key)
    if item.status is OutboxStatus.DONE or placement.status is not PlacementStatus.PLACED:
        return 0
    if item.next_retry_at is not None and item.next_retry_at > now:
        return 0
    why = str(item.payload.get("reason", reason))
    try:
        connector = pm.agency_connector(placement.agency).create(dict(settings.agency_config))
        receipt = connector.recall(placement.id, reason=why, at=now)
        refused = None if receipt.accepted else "agency refused the recall"
    except CareCollectError as exc:
        refused = type(exc).__name__
    except OSError as exc:
        refused = f"transport: {type(exc).__name__}"
    if refused is not None:
        with store.transaction():
            store.outbox_failed(key, at=now, error=refused, retry_at=next_retry_at(item.attempts + 1, now))
            store.audit_append("recall.failed", placement.account_id, {"key": key, "error": refused}, at=now)
        return 0
    recalled, event = recall_placement(placement, at=now, reason=why)
    with store.transaction():
        store.put_placement(recalled)
        store.outbox_done(key, at=now, result={"placement": placement.id})
        store.audit_append("recall", placement.account_id, {"placement": placement.id, "reason": why}, at=now)
        owed = owe_hook(store, pm, "carecollect_on_account_recalled", now, placement=recalled, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return 1


def _retry_recalls(
    store: Store, pm: Any, settings: RunSettings, now: dt.datetime, failures: list[str]
) -> int:
    """Recalls that failed on an earlier run and whose back-off has passed."""
    done = 0
    for item in store.outbox_due(now, limit=100_000):
        if item.kind == "recall":
            try:
                done += _recall(store, pm, settings, str(item.payload["placement"]), "", now)
            except CareCollectError as exc:
                failures.append(f"recall {item.key}: {type(exc).__name__}: {exc}")
    return done


def _take_payment_webhook(
    store: Store,
    pm: Any,
    settings: RunSettings,
    ev: InboundEvent,
    providers: dict[str, Any],
    now: dt.datetime,
) -> str:
    """Take one payment webhook; returns what it was (``"duplicate"``, ``"payments"``, ``"payments+N"``
    when N failures, chargebacks or refunds of it had arrived first, ``"reversed"``, ``"unmatched: ..."``...)."""
    provider = _provider(pm, settings, ev.plugin, providers)
    # raises WebhookError when refused; an inbox event is checked as of when it was received
    event = provider.parse_webhook(dict(ev.headers), ev.body, now=ev.received_at or now)
    source = f"provider:{ev.plugin}"
    if store.was_processed(source, event.event_id):
        return "duplicate"
    link = store.provider_payment(ev.plugin, event.reference) if event.reference else None
    subject = link.account_id if link else source
    record = {"event": event.event_id, "kind": event.kind.value, "reference": event.reference}
    posted: tuple[Payment, Any] | None = None
    reversals: list[tuple[PaymentReversal, Any]] = []
    outcome = "other"
    with store.transaction():
        if event.kind is WebhookKind.PAYMENT_SUCCEEDED:
            if link is None:
                return f"unmatched: no account is linked to reference {event.reference!r} (event {event.event_id})"
            book = store.ledger(link.account_id)
            already = any(e.source_id == link.payment_id for e in book.entries)
            if not already:
                if event.amount is None:
                    return f"unmatched: event {event.event_id} carries no amount"
                method = str(event.raw.get("method", PaymentMethod.CARD.value))
                payment = Payment(
                    link.payment_id,
                    link.account_id,
                    event.amount,
                    PaymentMethod(method)
                    if method in PaymentMethod._value2member_map_
                    else PaymentMethod.CARD,
                    event.occurred_at,
                    provider_reference=event.reference,
                )
                new_book, paid = post_payment(book, payment)
                store.append_ledger(link.account_id, new_book.entries[len(book.entries) :])
                posted = (payment, paid)
                if link.plan_id is not None and link.instalment is not None:
                    plan = store.get_plan(link.plan_id)
                    inst = next((i for i in plan.instalments if i.number == link.instalment), None)
                    if (
                        plan.status.current
                        and inst is not None
                        and inst.status is not InstalmentStatus.PAID
                        and event.amount >= inst.amount
                    ):
                        plan, _ = record_instalment_payment(
                            plan, inst.number, event.amount, at=event.occurred_at
                        )
                        store.put_plan(plan)
                # a failure, chargeback or refund of this payment that arrived before it
                for late in _overtaken_reversals(store, link, event):
                    _, reversal = _reverse_linked_payment(store, ev.plugin, link, late)
                    if reversal is not None:
                        reversals.append(reversal)
                        record.setdefault("reversed_by", []).append(late.event_id)
            record["payment"] = link.payment_id
            record["posted"] = not already
            outcome = "other" if already else f"payments+{len(reversals)}" if reversals else "payments"
        elif event.kind in _REVERSAL_CAUSES and link is not None:
            record["payment"] = link.payment_id
            taken, reversal = _reverse_linked_payment(store, ev.plugin, link, event)
            record.update(taken)
            if taken.get("posted") is False:
                # it may have overtaken the success (providers do not promise order): kept, so a
                # success that arrives later is taken back at once (see _overtaken_reversals)
                record |= {"pending": True, "occurred_at": event.occurred_at.isoformat()}
                if event.amount is not None:
                    record |= {"amount_minor": event.amount.minor_units, "currency": event.amount.currency}
            if reversal is not None:
                reversals.append(reversal)
            outcome = "reversed" if reversal is not None else "other"
        elif event.kind is WebhookKind.MANDATE_REVOKED and event.reference:
            mandate = store.revoke_mandate(ev.plugin, event.reference, at=event.occurred_at)
            if mandate is not None:
                subject = mandate.account_id
                record["plan"] = mandate.plan_id
                outcome = "revoked"
        store.mark_processed(source, event.event_id, at=now)
        store.audit_append(f"webhook.{event.kind.value}", subject, record, at=now)
        owed = []
        if posted is not None and posted[1] is not None:
            owed.append(
                owe_hook(
                    store, pm, "carecollect_on_payment_received", now, payment=posted[0], event=posted[1]
                )
            )
        for taken_back, reversed_event in reversals:  # a replay returned "duplicate" above: owes nothing
            owed.append(
                owe_hook(
                    store,
                    pm,
                    "carecollect_on_payment_reversed",
                    now,
                    reversal=taken_back,
                    event=reversed_event,
                )
            )
    deliver_hooks(store, pm, owed, now)
    return outcome


def _overtaken_reversals(store: Store, link: ProviderPayment, success: WebhookEvent) -> list[WebhookEvent]:
    """The failures, chargebacks and refunds of ``link``'s payment that arrived before its success.

    Read back from the audit log, where intake kept them (``pending``) because there was nothing
    posted to take back yet; oldest first. A chargeback or a refund always comes after the money,
    so it applies; a failure only if it happened after the success (one before it was an earlier
    attempt that failed, and the payment then went through). Each is taken back under its own
    event id (``REV-<plugin>-<event>``), so it applies once.
    """
    found: list[WebhookEvent] = []
    kinds = [f"webhook.{k.value}" for k in _REVERSAL_CAUSES]
    for r in store.audit_records(subject_id=link.account_id, kinds=kinds):
        d = r.data
        if not (d.get("pending") and d.get("payment") == link.payment_id):
            continue
        kind = WebhookKind(d["kind"])
        at = dt.datetime.fromisoformat(d["occurred_at"])
        if kind is WebhookKind.PAYMENT_FAILED and at <= success.occurred_at:
            continue
        amount = Money.from_minor(d["amount_minor"], d["currency"]) if "amount_minor" in d else None
        found.append(WebhookEvent(d["event"], kind, d.get("reference"), at, amount))
    return sorted(found, key=lambda e: e.occurred_at)


#: Webhook kinds that take back money already posted, and the cause each leaves on the ledger.
_REVERSAL_CAUSES = {
    WebhookKind.PAYMENT_FAILED: ReversalCause.PAYMENT_FAILED,
    WebhookKind.CHARGEBACK_OPENED: ReversalCause.CHARGEBACK,
    WebhookKind.REFUNDED: ReversalCause.PROVIDER_REFUND,
}


def _reverse_linked_payment(
    store: Store, plugin: str, link: ProviderPayment, event: WebhookEvent
) -> tuple[dict[str, Any], tuple[PaymentReversal, Any] | None]:
    """Take back the linked payment in the ledger, reopen what it paid.

    Runs inside the caller's transaction. Returns the audit details (ids,
    amounts) and, when money went back, the reversal and its ledger event to
    broadcast once the transaction commits. A payment never posted, or with
    nothing left, changes nothing (``{"posted": False}`` or ``{"left": "..."}``, ``None``).
    """
    book = store.ledger(link.account_id)
    if not any(e.source_id == link.payment_id and e.kind is EntryKind.PATIENT_PAYMENT for e in book.entries):
        return {"posted": False}, None
    left = book.paid_by(link.payment_id)
    if not left.is_positive():
        return {"left": str(left)}, None
    amount = event.amount if event.amount is not None else left
    cause = _REVERSAL_CAUSES[event.kind]
    reason = cause.value
    reversal_id = f"REV-{plugin}-{event.event_id}"
    new_book, ledger_event = reverse_payment(
        book,
        reversal_id=reversal_id,
        payment_id=link.payment_id,
        amount=amount,
        at=event.occurred_at,
        reason=reason,
    )
    added = new_book.entries[len(book.entries) :]
    store.append_ledger(link.account_id, added)
    remaining = new_book.paid_by(link.payment_id)
    out: dict[str, Any] = {
        "reversal": reversal_id,
        "amount": str(amount),
        "left": str(remaining),
    }
    reversal = PaymentReversal(
        reversal_id,
        link.payment_id,
        link.account_id,
        amount,
        remaining,
        cause,
        event.occurred_at,
        plugin,
        event.event_id,
    )
    broadcast = (reversal, ledger_event) if ledger_event is not None else None
    reopened = []
    for invoice_id in sorted({e.invoice_id for e in added if e.invoice_id is not None}):
        invoice = store.get_invoice(invoice_id)
        if invoice.status is InvoiceStatus.PAID and new_book.invoice_balance(invoice_id).is_positive():
            invoice, _ = reopen_invoice(invoice, at=event.occurred_at)
            store.put_invoice(invoice)
            reopened.append(invoice_id)
    if reopened:
        out["invoices_reopened"] = reopened
    if link.plan_id is not None and link.instalment is not None:
        plan = store.get_plan(link.plan_id)
        inst = next((i for i in plan.instalments if i.number == link.instalment), None)
        # the payment paid the instalment if it covered it; undo that once it no longer does
        if (
            inst is not None
            and inst.status is InstalmentStatus.PAID
            and plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.COMPLETED)
            and left >= inst.amount
            and new_book.paid_by(link.payment_id) < inst.amount
        ):
            plan, _ = reverse_instalment_payment(plan, inst.number, at=event.occurred_at, reason=reason)
            store.put_plan(plan)
            out["plan"] = plan.id
            out["instalment"] = inst.number
    return out, broadcast


def _take_remittance(
    store: Store, pm: Any, agency: str, placement_id: str, rem: Remittance, now: dt.datetime
) -> bool:
    """Record one remittance on the placement and post it to the ledger, once."""
    with store.transaction():
        if not store.mark_processed(f"agency:{agency}", rem.id, at=now):
            return False
        placement = store.get_placement(placement_id)
        placement, _ = record_remittance(placement, rem)
        store.put_placement(placement)
        payment = Payment(
            f"REM-{rem.id}",
            placement.account_id,
            rem.amount,
            PaymentMethod.BANK_TRANSFER,
            rem.collected_at,
            source=PaymentSource.AGENCY,
        )
        book = store.ledger(placement.account_id)
        new_book, event = post_payment(book, payment)
        store.append_ledger(placement.account_id, new_book.entries[len(book.entries) :])
        store.audit_append(
            "remittance", placement.account_id, {"remittance": rem.id, "amount": str(rem.amount)}, at=now
        )
        owed = (
            ()
            if event is None
            else (owe_hook(store, pm, "carecollect_on_payment_received", now, payment=payment, event=event),)
        )
    deliver_hooks(store, pm, owed, now)
    return True


#: A delivery report in this state is a hard bounce: the contact point it went to is marked
#: undeliverable at once (one report suffices; channels report temporary failures as ``pending``).
HARD_BOUNCE = DeliveryState.UNDELIVERABLE


def _record_bounce(store: Store, report: DeliveryReport) -> tuple[OutreachStep, Any, str] | None:
    """Record an undeliverable message as a bounced attempt on its step; what to broadcast, or ``None``.

    Runs inside intake's unit of work for the report. A report for a message the
    store never sent (another system's, or older than the store) is audited only.
    The contact point the message went to is marked undeliverable
    (:func:`~carecollect.patients.mark_undeliverable`), so later messages skip it
    and go to the patient's other points and channels; the point is found by the
    digest of its address kept with the sent message, so a point replaced since
    (a new address) is not marked. The BOUNCED attempt is recorded either way.
    """
    from .events import Event, EventType

    sent = store.attempt_by_provider_message_id(report.provider_message_id)
    if sent is None or sent.step_id is None:
        return None
    store.add_attempt(
        ContactAttempt(
            f"{sent.id}-bounce",
            sent.step_id,
            sent.account_id,
            sent.invoice_id,
            sent.channel,
            report.at,
            AttemptOutcome.BOUNCED,
        )
    )
    if report.state is HARD_BOUNCE:
        _mark_bounced_point(store, sent, report.at)
    step = store.get_step(sent.step_id)
    reason = f"undeliverable: {report.detail}" if report.detail else "undeliverable"
    event = Event(
        EventType.OUTREACH_FAILED, step.id, report.at, {"channel": sent.channel.value, "bounced": True}
    )
    return step, event, reason


def _mark_bounced_point(store: Store, sent: ContactAttempt, at: dt.datetime) -> None:
    """Mark the point ``sent`` went to undeliverable, and audit it (ids and the channel only)."""
    from .patients import mark_undeliverable
    from .store.base import NotFound

    patient = store.get_patient(store.get_account(sent.account_id).patient_id)
    try:
        digest = (store.outbox_get(sent.id.rpartition("@")[0]).result or {}).get("to")
    except NotFound:
        digest = None
    if digest is None:  # sent before digests were kept: the point a send at that time would pick
        candidates = [p for p in patient.points(sent.channel) if p.deliverable(sent.at)]
        candidates = [p for p in candidates if p.opted_out_at is None or p.opted_out_at > sent.at][:1]
    else:
        candidates = [p for p in patient.points(sent.channel) if _address_digest(p.address) == digest]
    for point in candidates:
        patient, event = mark_undeliverable(patient, sent.channel, point.address, at=at)
        if event is not None:
            store.put_patient(patient)
            store.audit_append(
                UNDELIVERABLE_RULE,
                patient.id,
                {"channel": sent.channel.value, "account": sent.account_id, "attempt": sent.id},
                at=at,
            )


def _take_status_update(
    store: Store, pm: Any, settings: RunSettings, update: AgencyStatusUpdate, now: dt.datetime
) -> bool:
    """Apply one agency status update to the placement, once; ``False`` for one already taken.

    ``returned`` and ``recalled`` close a placement that is still placed (the account is the
    creditor's again); ``disputed`` opens a dispute on the placed invoices, so outreach, plan
    charges and every gate freeze as for a dispute the patient raised with the creditor (the
    agency does not say why: the reason is
    :attr:`~carecollect.disputes.DisputeReason.AGENCY_REPORTED`); the other states are
    recorded in the audit log (the money comes with remittances).
    """
    from .disputes import DisputeReason
    from .relief.disputes import open_dispute

    opened = None
    with store.transaction():
        if not store.mark_processed(f"agency:{settings.agency}", f"status:{update.id}", at=now):
            return False
        placement = store.get_placement(update.placement_id)
        status = update.status
        if status in (AgencyAccountStatus.RETURNED, AgencyAccountStatus.RECALLED):
            if placement.status is PlacementStatus.PLACED:
                if status is AgencyAccountStatus.RETURNED:
                    placement, _ = return_placement(placement, at=update.at)
                else:
                    placement, _ = recall_placement(
                        placement, at=update.at, reason=f"agency update {update.id}"
                    )
                store.put_placement(placement)
        elif status is AgencyAccountStatus.DISPUTED:
            snap = store.account_snapshot(placement.account_id)
            invoice_id = placement.invoice_ids[0] if len(placement.invoice_ids) == 1 else None
            if not any(d.is_open and d.invoice_id in (None, invoice_id) for d in snap.disputes):
                dispute, event, _ = open_dispute(
                    f"AGY-{update.id}",
                    placement.account_id,
                    invoice_id,
                    DisputeReason.AGENCY_REPORTED,
                    at=update.at,
                    pack=settings.pack(snap.account.jurisdiction, snap.account.creditor_id),
                )
                store.put_dispute(dispute)
                opened = (dispute, event)
        store.audit_append(
            "agency.status",
            placement.account_id,
            {"placement": placement.id, "update": update.id, "status": status.value},
            at=now,
        )
        owed = (
            ()
            if opened is None
            else (
                owe_hook(store, pm, "carecollect_on_dispute_opened", now, dispute=opened[0], event=opened[1]),
            )
        )
    deliver_hooks(store, pm, owed, now)
    return True


# -- execution ---------------------------------------------------------------------------------


def _claims_in_force(store: Store, step: OutreachStep) -> tuple[ClaimPayment, ...]:
    """The insurer's answers in force for a statement's invoice (from the remittances applied)."""
    if step.purpose is not OutreachPurpose.STATEMENT or step.invoice_id is None:
        return ()
    records = store.audit_records(subject_id=step.invoice_id, kinds={CLAIM_RECORD})
    return active_claims([claim_from_record(r.data) for r in records])


def _message_context(
    snap: AccountSnapshot,
    creditor: Creditor,
    step: OutreachStep,
    settings: RunSettings,
    now: dt.datetime,
    signer: PayLinkSigner | None,
    claims: Sequence[ClaimPayment] = (),
) -> MessageContext:
    """The message's context; ``claims`` are the insurer's answers in force for the step's invoice
    (a statement explains each line with them)."""
    inv = next(i for i in snap.invoices if i.id == step.invoice_id)
    balance = (
        snap.ledger.invoice_balance(inv.id)
        if inv.id in snap.ledger.invoice_ids()
        else inv.patient_responsibility
    )
    jurisdiction = (
        snap.account.jurisdiction
        if snap.account.jurisdiction in _MESSAGE_JURISDICTIONS
        else (creditor.country.lower() if creditor.country.lower() in _MESSAGE_JURISDICTIONS else "us")
    )
    link = None
    if signer is not None:
        link = signer.issue(
            inv.id, balance, expires_at=now + dt.timedelta(days=settings.pay_link_days), nonce=new_nonce()
        ).url
    statement = build_statement(inv, claims=claims) if step.purpose is OutreachPurpose.STATEMENT else None
    today = _today(now, snap.patient.time_zones[0])
    deadline = step.deadline
    if deadline is None and step.purpose in _NEEDS_DEADLINE:
        # a notice always states a pay-by date; fall back to the pack's minimum notice period
        deadline = today + dt.timedelta(days=_DEFAULT_NOTICE_DAYS)
    # the date before which no extraordinary action (or placement) follows: the notice's deadline
    action_date = deadline if step.purpose in _ANNOUNCES_ACTION else None
    fap_summary = (
        statement is not None
        and creditor.nonprofit
        and bool(
            settings.pack(snap.account.jurisdiction, snap.account.creditor_id).get(
                "r501.statement_fap_summary", False, on=today
            )
        )
    )
    notice = None
    if step.purpose in _NEEDS_NOTICE:
        paid = inv.total - inv.insurer_paid - inv.contractual_adjustment - balance
        notice = NoticeInfo(
            principal=balance,
            original_creditor=creditor.name,
            invoice_date=inv.issue_date,
            itemization=Itemization(
                inv.issue_date,
                inv.patient_responsibility,
                Money.zero(balance.currency),
                Money.zero(balance.currency),
                paid if paid.is_positive() else Money.zero(balance.currency),
            ),
        )
    return MessageContext(
        reference=inv.id,
        creditor_name=creditor.name,
        sender_name=creditor.business_name_for_voicemail or creditor.name,
        jurisdiction=jurisdiction,
        today=today,
        phone=settings.phone,
        email=settings.email,
        amount_due=balance,
        due_date=inv.due_date,
        deadline=deadline,
        notice=notice,
        pay_link=link,
        opt_out_url=settings.opt_out_url,
        portal_url=settings.portal_url,
        recipient_name=snap.patient.name or None,
        statement=statement,
        assistance_url=settings.assistance_url,
        action_date=action_date,
        fap_summary=fap_summary,
    )


def _recipient(snap: AccountSnapshot, channel: Channel, at: dt.datetime) -> str | None:
    """The address a message on ``channel`` goes to at ``at``: the first point not opted out nor bounced."""
    for point in snap.patient.points(channel):
        if (point.opted_out_at is None or point.opted_out_at > at) and point.deliverable(at):
            return point.address
    return None


def _address_digest(address: str) -> str:
    """A short digest that tells whether a later bounce is about the same address (never the address)."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]


def execute_run(
    store: Store,
    now: dt.datetime,
    pm: Any,
    settings: RunSettings | None = None,
    *,
    owner: str = "carecollect",
    events: Iterable[InboundEvent] = (),
    renderer: Renderer | None = None,
    progress: Callable[[int], None] | None = None,
    stale_after: dt.timedelta = RUN_LOCK_STALE_AFTER,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    contacts: Iterable[ContactRecord] = (),
    workers: int = 1,
    pm_factory: Callable[[], Any] | None = None,
) -> RunReport:
    """Run the daily cycle for real: intake, plan, then send each message exactly once.

    :param store: the store.
    :param now: the run's instant (aware; pass ``--as-of`` from the CLI).
    :param pm: a plugin manager (:func:`carecollect.plugin_manager.make_plugin_manager`).
    :param settings: run settings.
    :param owner: who holds the run lock.
    :param events: inbound events to take in first.
    :param renderer: the message renderer (default: built-in templates).
    :param progress: called with the number of accounts done, for progress bars.
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)``; they
        count like answered calls in the governor (see :func:`by_account`).
    :param contacts: the contact centre's records; an open dispute whose patient they show was
        reached is stored as met (see :func:`intake`).
    :param stale_after: this run's promise to the next: it says it is alive (a heartbeat on the
        wall clock, from a thread and at every account) several times within this span, so its lock
        is never taken from it while it lives; after this span without a heartbeat (the process is
        frozen, or died on another host) a later run may take it over. A lock held on this host by a
        process that is gone (killed) is taken over at once. Staleness never depends on ``now``:
        runs with different instants (``--as-of``) still exclude each other.
    :param workers: processes that send. With more than one, this process takes in the events,
        plans every account and holds the run lock for the whole run, while ``workers`` processes
        (started with ``spawn``) each open their own connection to the same SQLite file and their
        own plugin manager and channels, and carry out the plans of their share of the accounts
        (by a stable hash of the account id) exactly as one process would; the report adds up
        theirs. The store must be a :class:`~carecollect.store.sqlite.SQLiteStore` on a file, and
        ``settings`` and a ``renderer`` you pass must pickle (by default each worker builds its own). Plugins' ``on_outreach_sent`` and other hooks
        of the send path then run in the workers; the report lists the hook failures of every
        worker, but only those of this process's ``pm`` can be redelivered.
    :param pm_factory: builds each worker's plugin manager (it must pickle: a module-level
        function or a :func:`functools.partial`); default
        :func:`~carecollect.plugin_manager.make_plugin_manager` with its defaults.
    :raises ConfigurationError: the settings name a plugin that is not installed, or house rules
        that do not apply (:func:`settings_problems`); nothing was taken in, planned or sent.
    :raises RunLocked: another run holds the lock.
    :raises ValueError: ``workers`` is below 1, or above 1 with a store that is not a SQLite file.
    :raises RunWorkerError: a worker process failed or died (what it finished stays done; a rerun
        carries on exactly once).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1 and (not isinstance(store, SQLiteStore) or store.path == ":memory:"):
        raise ValueError("workers > 1 needs a SQLiteStore on a file (each worker opens it)")
    require_aware(now, "run", "now")
    settings = settings or RunSettings()
    check_settings(settings, pm)  # before anything is taken in, planned or sent
    given_renderer = renderer
    renderer = renderer or Renderer()
    pid = os.getpid()
    owner = f"{owner}@{socket.gethostname()}"
    _release_if_holder_died(store, owner, pid, now)
    store.acquire_run_lock(owner, pid, now=_wall_clock(), stale_after=stale_after)
    heart = RunHeartbeat(store, owner, pid, stale_after)
    run_id = uuid.uuid4().hex[:12]
    log_event("run.started", run_id=run_id, as_of=now.isoformat(), workers=workers, dry_run=False)
    try:
        with phase_span("carecollect.run", run_id=run_id, as_of=now.isoformat(), workers=workers):
            heart.start()
            with phase_span("carecollect.run.intake", run_id=run_id):
                redeliver_hook_events(store, pm, now)  # what earlier runs owe plugins goes first
                intake_report = intake(store, pm, settings, events, now, contacts=contacts)
            log_event(
                "run.intake.done",
                run_id=run_id,
                processed=intake_report.processed,
                duplicates=intake_report.duplicates,
                payments=intake_report.payments,
                opt_outs=intake_report.opt_outs,
            )
            with phase_span("carecollect.run.plan_and_send", run_id=run_id):
                report = _execute_phase(
                    store,
                    now,
                    pm,
                    settings,
                    renderer,
                    given_renderer,
                    intake_report,
                    progress,
                    owner,
                    pid,
                    conversations,
                    workers,
                    pm_factory,
                    heart,
                    run_id,
                )
            _finished(store, report, now, run_id)  # under the lock: the next run sees it
    except BaseException as exc:
        log_event("run.failed", run_id=run_id, error=type(exc).__name__)
        raise
    finally:
        heart.stop()
        store.release_run_lock(owner, pid)
    return report


def _finished(store: Store, report: RunReport, now: dt.datetime, run_id: str) -> None:
    """Record the run's instant (what :func:`last_run_at` reads) and log and count its outcome."""
    held = report.plan.counts().get("hold", 0)
    figures = {
        "accounts": report.plan.accounts,
        "sent": report.sent,
        "held": held,
        "suppressed": report.suppressed,
        "failed": report.failed,
        "deferred": report.deferred_retry,
    }
    store.audit_append("run.finished", "run", {"run_id": run_id, "as_of": now.isoformat(), **figures}, at=now)
    log_event("run.finished", run_id=run_id, **figures)
    add_metric("carecollect.accounts.planned", report.plan.accounts)
    add_metric("carecollect.messages.sent", report.sent)
    add_metric("carecollect.messages.held", held)


def last_run_at(store: Store) -> dt.datetime | None:
    """The instant (``as_of``) of the latest finished run, from the audit log (``None``: no run yet).

    A run records it as the audit record ``run.finished`` (subject ``run``); the command line asks
    for ``--force`` before it runs at an earlier instant.

    :param store: the store.
    """
    latest: dt.datetime | None = None
    for rec in store.audit_records(subject_id="run", kinds=("run.finished",)):
        at = dt.datetime.fromisoformat(str(rec.data["as_of"]))
        latest = at if latest is None or at > latest else latest
    return latest


def _execute_phase(
    store: Store,
    now: dt.datetime,
    pm: Any,
    settings: RunSettings,
    renderer: Renderer,
    given_renderer: Renderer | None,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Iterable[tuple[str, str | None, dt.datetime]],
    workers: int,
    pm_factory: Callable[[], Any] | None,
    heart: RunHeartbeat,
    run_id: str,
) -> RunReport:
    """Plan and send, in this process or in ``workers`` processes (see :func:`execute_run`)."""
    talks = by_account(conversations)
    if workers > 1:
        report, failures = _execute_parallel(
            store,
            now,
            settings,
            given_renderer,
            intake_report,
            progress,
            owner,
            pid,
            talks,
            workers,
            pm_factory,
            heart,
        )
        return attrs.evolve(
            report, hook_failures=hook_failures(pm) + failures, batches=close_batches(pm, settings, now)
        )
    report = _execute(store, now, pm, settings, renderer, intake_report, progress, heart, talks, run_id)
    return attrs.evolve(report, hook_failures=hook_failures(pm), batches=close_batches(pm, settings, now))


def _wall_clock() -> dt.datetime:
    """The wall clock (UTC), which every process on every host shares: the run lock's time."""
    return dt.datetime.now(dt.UTC)


class RunHeartbeat:
    """Keeps a run's lock alive on the wall clock while the run lives.

    A thread says "alive" every third of ``stale_after`` (timed on the monotonic clock) on its own
    connection to the store file, so a long send, a slow plugin or a large intake never lets the
    lock go stale; the run also calls :meth:`beat` at every account, which writes when a third of
    ``stale_after`` has passed since the last heartbeat and raises
    :class:`~carecollect.store.base.RunLocked` if the lock was lost (the run stops before its next
    account). A store that is not a SQLite file gets only the beats at account boundaries.

    :param store: the run's store.
    :param owner: the lock's owner.
    :param pid: the lock's pid.
    :param stale_after: the span the holder promised to beat within.
    """

    def __init__(self, store: Store, owner: str, pid: int, stale_after: dt.timedelta) -> None:
        import threading

        self.store = store
        self.owner = owner
        self.pid = pid
        self.interval = stale_after.total_seconds() / 3
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._lost: RunLocked | None = None
        self._thread: Any = None
        path = getattr(store, "path", ":memory:") if isinstance(store, SQLiteStore) else ":memory:"
        if path != ":memory:":
            self._thread = threading.Thread(
                target=self._run, args=(path,), name="carecollect-run-heartbeat", daemon=True
            )

    def start(self) -> None:
        """Start the thread (if the store is a file)."""
        if self._thread is not None:
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (before the lock is released)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

    def beat(self) -> None:
        """Say "alive" from the run's own connection when a third of ``stale_after`` has passed.

        :raises RunLocked: the lock is no longer this run's.
        """
        if self._lost is not None:
            raise self._lost
        if time.monotonic() - self._last >= self.interval:
            self.store.heartbeat_run_lock(self.owner, self.pid, now=_wall_clock())
            self._last = time.monotonic()

    def _run(self, path: str) -> None:
        try:
            own = SQLiteStore(path)
        except (sqlite3.Error, CareCollectError):
            return  # the beats at account boundaries remain
        with own:
            while not self._stop.wait(self.interval):
                try:
                    own.heartbeat_run_lock(self.owner, self.pid, now=_wall_clock())
                except RunLocked as exc:
                    self._lost = exc
                    return
                except sqlite3.Error:  # busy for longer than the timeout: try again next time
                    continue
                self._last = time.monotonic()


def close_batches(pm: Any, settings: RunSettings, now: dt.datetime) -> tuple[str, ...]:
    """Close the batches of every channel plugin that sends in batches (printed letters).

    A channel whose class offers ``close_batch(now)`` (:class:`~carecollect.messaging.BatchingChannel`)
    collects what it was sent; the run calls it once, after every message is through (with
    several workers, after all of them), so one run makes one batch per envelope layout. A batch
    that fails stays pending and is made by the next run.

    :returns: the ids of the batches written.
    """
    batches: list[str] = []
    for name in sorted(set(settings.channel_plugins.values())):
        try:
            desc = pm.message_channel(name)
            if not callable(getattr(desc.factory, "close_batch", None)):
                continue
            channel = desc.create(dict(settings.channel_config.get(name, {})))
        except ConfigurationError:  # not installed or not configured: its sends failed and say so
            continue
        batches.extend(channel.close_batch(now))
    return tuple(batches)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _release_if_holder_died(store: Store, owner: str, pid: int, now: dt.datetime) -> None:
    """Free a lock left by a run on this host whose process is gone (killed, crashed).

    The owner carries the host name (``<owner>@<host>``), so a pid is only ever checked on the host
    it belongs to; a reused pid keeps the lock until it is stale (the safe side).
    """
    held = store.current_run_lock()
    host = owner.rpartition("@")[2]
    if held is None or held.owner.rpartition("@")[2] != host or held.pid == pid or _pid_alive(held.pid):
        return
    store.release_run_lock(held.owner, held.pid)
    store.audit_append("run.lock_taken_over", "run", {"dead_pid": held.pid, "pid": pid}, at=now)


class _Sender:
    """The per-account send loop: decisions audited, missed instalments, charges, messages, placement.

    The parent runs it for every account with ``workers=1``; with more workers, each worker process
    runs it (unchanged) on its own connection to the same store file for its share of the accounts.
    """

    def __init__(
        self, store: Store, pm: Any, settings: RunSettings, renderer: Renderer, now: dt.datetime
    ) -> None:
        self.store = store
        self.pm = pm
        self.settings = settings
        self.renderer = renderer
        self.now = now
        #: Per creditor with its own settings ("": the installation's): its settings, pay-link
        #: signer, channel and payment-provider instances (each made once per run).
        self._own: dict[str, tuple[RunSettings, PayLinkSigner | None, dict[str, Any], dict[str, Any]]] = {}
        self.creditors = _Creditors(store)
        self.accounts = _Fresh(store)
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def _creditor_settings(
        self, creditor_id: str
    ) -> tuple[RunSettings, PayLinkSigner | None, dict[str, Any], dict[str, Any]]:
        key = creditor_id if creditor_id in self.settings.creditors else ""
        own = self._own.get(key)
        if own is None:
            s = self.settings.for_creditor(key)
            signer = PayLinkSigner(s.pay_link_key, s.pay_link_base) if s.pay_link_key else None
            own = self._own[key] = (s, signer, {}, {})
        return own

    def account(
        self,
        account_id: str,
        creditor_id: str,
        plan: AccountPlan,
        account_conversations: Sequence[tuple[str, str | None, dt.datetime]],
    ) -> None:
        """Carry out one account's plan (on its creditor's settings)."""
        store, now, counts = self.store, self.now, self.counts
        settings, signer, channels, providers = self._creditor_settings(creditor_id)
        creditor = self.creditors(creditor_id)
        with store.transaction():
            for d in plan.decisions:
                store.audit_append(f"decision.{d.kind.value}", account_id, d.to_record(), at=now)
            for plan_id, number in plan.missed:
                p = store.get_plan(plan_id)
                inst = next(i for i in p.instalments if i.number == number)
                if p.status is PlanStatus.ACTIVE and inst.status is InstalmentStatus.DUE:
                    p, _ = mark_instalment_missed(p, number, at=now)
                    store.put_plan(p)
                    counts["missed"] += 1
        for charge in plan.charges:
            if charge.decision.kind is DecisionKind.CHARGE:
                outcome = _charge(store, self.pm, settings, providers, charge, now)
                if outcome in ("charged", "charge_failed"):
                    counts[outcome] += 1
        by_step: dict[str, tuple[OutreachStep, list[tuple[str, str]]]] = {}
        intended = _intend_all(store, settings, plan.messages, now)
        for msg in plan.messages:
            outcome = _send_one(
                store,
                self.pm,
                settings,
                self.renderer,
                signer,
                channels,
                creditor,
                msg,
                now,
                account_conversations,
                item=intended.get(msg.key),
                accounts=self.accounts,
            )
            counts["failed" if outcome == "gave_up" else outcome] += 1
            if outcome == "sent":
                counts[f"sent.{msg.channel.value}"] += 1
            by_step.setdefault(msg.step.id, (msg.step, []))[1].append((msg.key, outcome))
        for step, outcomes in by_step.values():
            _close_step(store, step, outcomes, now)
        if plan.placement is not None:
            counts["placed"] += _place(store, self.pm, settings, plan.placement, now)


_COUNTERS = (
    "sent",
    "skipped",
    "suppressed",
    "failed",
    "deferred",
    "placed",
    "missed",
    "charged",
    "charge_failed",
    *(f"sent.{c.value}" for c in Channel),
)


def _execute(
    store: Store,
    now: dt.datetime,
    pm: Any,
    settings: RunSettings,
    renderer: Renderer,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    heart: RunHeartbeat,
    conversations: Conversations,
    run_id: str = "",
) -> RunReport:
    sender = _Sender(store, pm, settings, renderer, now)
    collected = _Collected(settings.keep_plan)
    for planned in _iter_plans(store, now, settings, conversations):
        collected.add(planned)
        assert planned.plan is not None
        log_event(
            "run.account.planned",
            run_id=run_id,
            account_id=planned.account_id,
            messages=len(planned.plan.messages),
            holds=sum(1 for d in planned.plan.decisions if d.kind is DecisionKind.HOLD),
        )
        sender.account(
            planned.account_id, planned.creditor_id, planned.plan, conversations.get(planned.account_id, ())
        )
        heart.beat()
        if progress is not None:
            progress(collected.accounts)
    return _report(collected.plan(now), sender.counts, intake_report)


def _report(plan: RunPlan, counts: Mapping[str, int], intake_report: IntakeReport | None) -> RunReport:
    return RunReport(
        plan,
        counts["sent"],
        counts["skipped"],
        counts["suppressed"],
        counts["failed"],
        counts["deferred"],
        counts["placed"],
        counts["missed"],
        intake_report,
        counts["charged"],
        counts["charge_failed"],
        sent_by_channel={c: counts[f"sent.{c.value}"] for c in Channel if counts[f"sent.{c.value}"]},
    )


def worker_of(account_id: str, workers: int) -> int:
    """The worker (``0 .. workers - 1``) that sends for ``account_id``: a stable hash, the same in
    every process and every run (not Python's salted :func:`hash`).

    >>> worker_of("acc-1", 2) == worker_of("acc-1", 2)
    True
    """
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % workers


#: Accounts handed to a worker in one piece, and pieces a worker's queue holds (memory stays flat).
_CHUNK = 32
_QUEUED = 8


def _execute_parallel(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    renderer: Renderer | None,
    intake_report: IntakeReport,
    progress: Callable[[int], None] | None,
    owner: str,
    pid: int,
    conversations: Conversations,
    workers: int,
    pm_factory: Callable[[], Any] | None,
    heart: RunHeartbeat,
) -> tuple[RunReport, tuple[str, ...]]:
    import multiprocessing
    import queue as queues

    assert isinstance(store, SQLiteStore)
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    inboxes: list[Any] = [ctx.Queue(maxsize=_QUEUED) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, store.path, settings, renderer, pm_factory, now, owner, pid, inboxes[i], results),
            name=f"carecollect-run-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    counts = dict.fromkeys(_COUNTERS, 0)
    failures: list[str] = []
    errors: list[str] = []
    finished = [False] * workers
    done = 0

    def take(block: bool) -> None:
        nonlocal done
        while True:
            try:
                what, index, body = results.get(timeout=0.5) if block else results.get_nowait()
            except queues.Empty:
                return
            if what == "progress":
                done += body
                heart.beat()
                if progress is not None:
                    progress(done)
            elif what == "error":
                errors.append(f"worker {index}: {body}")
                finished[index] = True
            else:  # "report"
                worker_counts, worker_failures = body
                for k, v in worker_counts.items():
                    counts[k] += v
                failures.extend(worker_failures)
                finished[index] = True
            block = False

    def hand(index: int, item: Any) -> None:
        while True:
            try:
                inboxes[index].put(item, timeout=0.5)
                return
            except queues.Full:
                take(False)
                if finished[index] or not procs[index].is_alive():
                    raise RunWorkerError(_worker_failure(index, procs[index], errors)) from None

    try:
        collected = _Collected(settings.keep_plan)
        pieces: list[list[Any]] = [[] for _ in range(workers)]
        for planned in _iter_plans(store, now, settings, conversations):
            collected.add(planned)
            i = worker_of(planned.account_id, workers)
            pieces[i].append(
                (
                    planned.account_id,
                    planned.creditor_id,
                    planned.plan,
                    conversations.get(planned.account_id, ()),
                )
            )
            if len(pieces[i]) >= _CHUNK:
                hand(i, pieces[i])
                pieces[i] = []
                take(False)
        for i, piece in enumerate(pieces):
            if piece:
                hand(i, piece)
            hand(i, None)  # nothing more: report and stop
        while not all(finished):
            take(True)
            for i, proc in enumerate(procs):
                if not finished[i] and not proc.is_alive():
                    take(False)  # it may have reported just before it ended
                    if not finished[i]:
                        raise RunWorkerError(_worker_failure(i, proc, errors))
        if errors:
            raise RunWorkerError("; ".join(errors))
    finally:
        for proc in procs:
            if not all(finished):  # this process failed: stop the workers as a kill would (the
                proc.terminate()  # outbox keeps it exactly once; the rerun carries on)
            proc.join()
    return _report(collected.plan(now), counts, intake_report), tuple(failures)


def _worker_failure(index: int, proc: Any, errors: Sequence[str]) -> str:
    return "; ".join(errors) or f"worker {index} ended with exit code {proc.exitcode} before it reported"


def _die_with(parent: int) -> None:
    """Let the kernel kill this worker when the run's process dies (Linux), as if it were one process.

    A run killed (SIGKILL) then stops sending at once, in all its processes, and its rerun finds
    the outbox as a one-process run would leave it. Elsewhere a worker stops before its next
    account when its parent is gone or the lock is no longer its run's (see :func:`_worker`).
    """
    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):  # no prctl: the checks in _worker remain
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        os._exit(0)


def _worker(
    index: int,
    path: str,
    settings: RunSettings,
    renderer: Renderer | None,
    pm_factory: Callable[[], Any] | None,
    now: dt.datetime,
    owner: str,
    parent: int,
    inbox: Any,
    results: Any,
) -> None:
    """A worker process of a parallel run: the per-account send loop on its own connection."""
    import queue as queues

    from .plugin_manager import make_plugin_manager

    _die_with(parent)
    try:
        with SQLiteStore(path) as store:
            pm = (pm_factory or make_plugin_manager)()
            sender = _Sender(store, pm, settings, renderer or Renderer(), now)
            while True:
                try:
                    piece = inbox.get(timeout=1.0)
                except queues.Empty:
                    if os.getppid() != parent:  # the run died (killed): stop, its rerun carries on
                        return
                    continue
                if piece is None:
                    break
                for account_id, creditor_id, plan, talks in piece:
                    # the run must still hold the lock: a worker orphaned by a killed run stops
                    # before its next account, which the rerun (it took the lock over) carries on
                    held = store.current_run_lock()
                    if os.getppid() != parent or held is None or (held.owner, held.pid) != (owner, parent):
                        return
                    sender.account(account_id, creditor_id, plan, talks)
                results.put(("progress", index, len(piece)))
            results.put(("report", index, (sender.counts, hook_failures(pm))))
    except BaseException as exc:  # reported to the run, which raises RunWorkerError
        results.put(("error", index, scrub_text(f"{type(exc).__name__}: {exc}")[:500]))
        raise


def message_id(key: str) -> str:
    """The id a message is sent under (the channel's idempotency key): its outbox key with ``:``
    and ``#`` replaced, so it is safe as a file name or a provider's reference.

    >>> message_id("step:INV-1:statement#1:email")
    'step_INV-1_statement-1_email'
    """
    return key.replace(":", "_").replace("#", "-")


def _send_one(
    store: Store,
    pm: Any,
    settings: RunSettings,
    renderer: Renderer,
    signer: PayLinkSigner | None,
    channels: dict[str, Any],
    creditor: Creditor,
    msg: PlannedMessage,
    now: dt.datetime,
    account_conversations: Sequence[tuple[str, str | None, dt.datetime]] = (),
    *,
    item: OutboxItem | None = None,
    accounts: _Fresh | None = None,
) -> str:
    """Outbox protocol for one message; returns the counter to bump.

    ``item`` is the message's outbox item when :func:`_intend_all` already recorded the intent;
    ``accounts`` reads the account as stored now (see :class:`_Fresh`).
    """
    step = msg.step
    plugin = settings.channel_plugins.get(msg.channel)
    if plugin is None:
        return "suppressed"
    if item is None:
        item = _intend_all(store, settings, (msg,), now)[msg.key]
    if item.status is OutboxStatus.DONE:
        return "skipped"
    if item.status is OutboxStatus.FAILED and item.next_retry_at is None:
        return "gave_up"  # gave up after max_attempts: reported (as failed), never retried silently
    if item.next_retry_at is not None and item.next_retry_at > now:
        return "deferred"
    # Re-read the account: an opt-out or dispute that arrived since planning wins.
    accounts = accounts or _Fresh(store)
    fresh = accounts.get(step.account_id)
    pack = settings.pack(fresh.account.jurisdiction, fresh.account.creditor_id)
    inv = next((i for i in fresh.invoices if i.id == step.invoice_id), None)
    tz = fresh.patient.time_zones[0]
    view = _gate_snapshot(fresh, fresh.ledger.balance, tuple(i.id for i in fresh.invoices), tz)
    flags = relief_flags(view, invoice_id=step.invoice_id or "", now=now.astimezone(zone(tz)), pack=pack)
    debt = Debt(
        step.account_id,
        step.invoice_id,
        disputes=fresh.disputes,
        insurer_waiting=flags.insurer_waiting,
        plan_current=bool(flags.plan_status and flags.plan_status.current),
        assistance_pending=flags.assistance_pending,
    )
    verdict = may_contact(
        fresh.patient,
        debt,
        msg.channel,
        now,
        ContactHistory.of(fresh.attempts, account_conversations),
        pack,
        creditor,
        step.purpose,
    )
    address = _recipient(fresh, msg.channel, now)
    if not verdict.allowed or address is None or inv is None or inv.status is not InvoiceStatus.OPEN:
        # Nothing was sent: the item stays open and a later run re-plans it (or never does, when the
        # patient's wish or the debt's state now forbids it for good).
        blocking = [r.rule_id for r in verdict.reasons if r.outcome.value in ("deny", "defer")]
        if address is None and UNDELIVERABLE_RULE not in blocking:
            blocking.append("contact_point.missing")
        if inv is None or inv.status is not InvoiceStatus.OPEN:
            blocking.append("invoice.not_open")
        with store.transaction():
            store.outbox_failed(
                msg.key,
                at=now,
                error="suppressed: " + ",".join(blocking)[:250],
                retry_at=verdict.earliest_allowed or now + dt.timedelta(days=1),
            )
            store.audit_append(
                "message.suppressed", step.account_id, {"key": msg.key, "rules": blocking}, at=now
            )
        return "suppressed"
    try:
        ctx = _message_context(fresh, creditor, step, settings, now, signer, _claims_in_force(store, step))
        rendered = renderer.render(step.purpose, msg.channel, fresh.patient.preferred_language, ctx)
        channel = _channel_instance(pm, settings, plugin, channels)
        outgoing = OutgoingMessage(
            id=message_id(msg.key),
            channel=msg.channel,
            # a letter's window shows the patient's name above the address
            recipient=f"{fresh.patient.name}\n{address}"
            if msg.channel is Channel.LETTER and fresh.patient.name
            else address,
            body=rendered.text,
            subject=rendered.subject or "",
            html=rendered.html,
            language=rendered.language,
            account_id=step.account_id,
            opt_out_url=settings.opt_out_url,
            country=fresh.patient.country or region_of(fresh.account.jurisdiction),
            reference=ctx.reference,
            pay_link=ctx.pay_link,
            written_on=ctx.today,
        )
        receipt = channel.send(outgoing)
    except CareCollectError as exc:
        return _failed(store, pm, settings, msg, now, f"{type(exc).__name__}: {exc}")
    except OSError as exc:
        return _failed(store, pm, settings, msg, now, f"transport: {type(exc).__name__}")
    if receipt.status is not ReceiptStatus.ACCEPTED:
        return _failed(store, pm, settings, msg, now, f"channel said {receipt.status.value}")
    sent_step = attrs.evolve(step, status=OutreachStatus.SENT, sent_at=now)
    with store.transaction():
        untouched = accounts.untouched(step.account_id)
        # the step is recorded sent by _close_step once all its channels are through; until then
        # it stays planned, so a run killed between two channels of one step re-plans the rest
        store.put_step(step)
        store.add_attempt(
            ContactAttempt(
                f"{msg.key}@{now.isoformat()}",
                step.id,
                step.account_id,
                step.invoice_id,
                msg.channel,
                now,
                AttemptOutcome.DELIVERED,
                receipt.provider_message_id,
            )
        )
        store.outbox_done(
            msg.key,
            at=now,
            result={"provider_message_id": receipt.provider_message_id, "to": _address_digest(address)},
        )
        store.audit_append(
            "message.sent", step.account_id, {"key": msg.key, "language": rendered.language}, at=now
        )
        log_event("run.message.sent", account_id=step.account_id, key=msg.key, channel=msg.channel.value)
        accounts.sent(step, untouched)
        owed = owe_hook(
            store,
            pm,
            "carecollect_on_outreach_sent",
            now,
            step=sent_step,
            event=_sent_event(sent_step, msg.channel, now),
        )
    deliver_hooks(store, pm, (owed,), now)
    return "sent"


class _Fresh:
    """The account as the store holds it now, read again only when something was written since.

    An opt-out or a dispute that arrives during the run must win over any message not yet sent, so
    each message is checked against the account as stored at that moment. Reading the whole account
    again for every message does that; when the store offers ``change_token()`` (a value that
    changes with any write, by this connection or another: :meth:`SQLiteStore.change_token
    <carecollect.store.sqlite.SQLiteStore.change_token>`), the next message of the same account
    uses the account read for the previous one if nothing was written since but this run's own
    record of that send (checked and taken inside that record's unit of work, while no one else
    can write). Of that record (the step, still planned; the contact attempt; the outbox item
    done; the audit record) the account holds the step, put in its place, and the attempts, read
    again. Any other write (a webhook, a reply, a plugin hook, a failed or suppressed message)
    changes the token, and the whole account is read again. News committed before a message's
    check wins over it, exactly as with a full read for every message.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._token: Callable[[], object] | None = getattr(store, "change_token", None)
        self._account_id: str | None = None
        self._seen: object = None
        self._snap: AccountSnapshot | None = None

    def get(self, account_id: str) -> AccountSnapshot:
        """The account as stored now."""
        if (
            self._snap is not None
            and self._token is not None
            and account_id == self._account_id
            and self._token() == self._seen
        ):
            return self._snap
        self._seen = self._token() if self._token is not None else None  # taken before the read
        self._snap = self._store.account_snapshot(account_id)
        self._account_id = account_id
        return self._snap

    def untouched(self, account_id: str) -> bool:
        """Nothing was written since :meth:`get` read ``account_id`` (call it holding the write lock)."""
        return (
            self._snap is not None
            and self._token is not None
            and account_id == self._account_id
            and self._token() == self._seen
        )

    def sent(self, step: OutreachStep, untouched: bool) -> None:
        """This run just wrote its record of a message of ``step`` sent, in the unit of work that is
        still open (so nobody else can write); ``untouched`` is :meth:`untouched` at its start.
        """
        if not untouched or self._token is None or self._snap is None:
            self._snap = None
            return
        steps = sorted([s for s in self._snap.steps if s.id != step.id] + [step], key=lambda s: s.id)
        self._snap = attrs.evolve(
            self._snap, steps=tuple(steps), attempts=self._store.attempts_for(step.account_id)
        )
        self._seen = self._token()


def _intend_all(
    store: Store, settings: RunSettings, messages: Sequence[PlannedMessage], now: dt.datetime
) -> dict[str, OutboxItem]:
    """Record every message of one account as intended, in one unit of work, before any is sent.

    Still exactly once: each intent is durable before its send, a killed run finds the intents
    (and whatever of them is done) on its rerun, and the channel is called with the outbox key as
    idempotency key. A message whose channel has no plugin is not recorded (it is suppressed).
    """
    todo = [m for m in messages if settings.channel_plugins.get(m.channel) is not None]
    if not todo:
        return {}
    with store.transaction():
        return {
            m.key: store.outbox_intend(
                m.key,
                "message",
                {"step": m.step.id, "channel": m.channel.value, "purpose": m.step.purpose.value},
                at=now,
                account_id=m.step.account_id,
            )
            for m in todo
        }


def _close_step(
    store: Store, step: OutreachStep, outcomes: list[tuple[str, str]], now: dt.datetime | None = None
) -> None:
    """Record ``step`` sent once every channel planned for it is through.

    A channel that failed or waits for its back-off keeps the step open, so the next
    run plans it again (its done channels are skipped by their outbox keys). A
    suppressed channel (an opt-out or a dispute won) or one given up does not: the
    step counts as sent if any channel delivered it. ``sent_at`` is the first delivery.
    """
    if any(o in ("failed", "deferred") for _, o in outcomes):
        return
    done = [(k, o) for k, o in outcomes if o in ("sent", "skipped")]
    if not done:
        return
    # a channel this run sent was recorded done at ``now``; one done by an earlier run is read back
    times = [now if o == "sent" and now is not None else store.outbox_get(k).updated_at for k, o in done]
    sent_at = min(t for t in times if t is not None)
    with store.transaction():
        store.put_step(attrs.evolve(step, status=OutreachStatus.SENT, sent_at=sent_at))


def _sent_event(step: OutreachStep, channel: Channel, now: dt.datetime) -> Any:
    from .events import Event, EventType

    return Event(EventType.OUTREACH_SENT, step.id, now, {"channel": channel.value})


def _failed(
    store: Store, pm: Any, settings: RunSettings, msg: PlannedMessage, now: dt.datetime, why: str
) -> str:
    """Record a failed send and, in the same unit of work, the ``on_outreach_failed`` owed to plugins."""
    with store.transaction():
        item = store.outbox_get(msg.key)
        retry = next_retry_at(item.attempts + 1, now) if item.attempts + 1 < settings.max_attempts else None
        store.outbox_failed(msg.key, at=now, error=why[:300], retry_at=retry, give_up=retry is None)
        store.audit_append(
            "message.failed", msg.step.account_id, {"key": msg.key, "error": why[:300]}, at=now
        )
        owed = _owe_send_failure(store, pm, msg, now)
    deliver_hooks(store, pm, (owed,), now)
    return "failed"


def _place(
    store: Store, pm: Any, settings: RunSettings, placement: PlannedPlacement, now: dt.datetime
) -> int:
    """Outbox protocol for one placement; the placement id is the agency's idempotency key.

    The outbox payload names only the agency (the amount may change between a failed attempt
    and its retry); a failure is retried with back-off and never stops the other accounts.
    """
    key = f"place:{placement.account_id}"
    assert settings.agency is not None
    try:
        with store.transaction():
            item = store.outbox_intend(
                key, "placement", {"agency": settings.agency}, at=now, account_id=placement.account_id
            )
    except DuplicateEntry:  # recorded by an earlier version with another payload
        item = store.outbox_get(key)
    if item.status is OutboxStatus.DONE:
        return 0
    if item.next_retry_at is not None and item.next_retry_at > now:
        return 0
    record = AgencyPlacement(
        f"PLC-{placement.account_id}",
        placement.account_id,
        settings.agency,
        placement.amount,
        invoice_ids=placement.invoice_ids,
    )
    try:
        connector = pm.agency_connector(settings.agency).create(dict(settings.agency_config))
        receipt = connector.place(_placement_request(store, record))
    except CareCollectError as exc:
        _failed_placement(store, key, now, f"{type(exc).__name__}")
        return 0
    except OSError as exc:
        _failed_placement(store, key, now, f"transport: {type(exc).__name__}")
        return 0
    if not receipt.accepted:
        _failed_placement(store, key, now, "agency refused the placement")
        return 0
    record, event = place_account(record, at=now)
    with store.transaction():
        store.put_placement(record)
        store.outbox_done(key, at=now, result={"placement": record.id})
        store.audit_append(
            "placement",
            placement.account_id,
            {"agency": settings.agency, "amount": str(placement.amount)},
            at=now,
        )
        owed = owe_hook(store, pm, "carecollect_on_account_placed", now, placement=record, event=event)
    deliver_hooks(store, pm, (owed,), now)
    return 1


def _provider(pm: Any, settings: RunSettings, name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        cache[name] = pm.payment_provider(name).create(dict(settings.payment_providers.get(name, {})))
    return cache[name]


def provider_payment_id(provider: str, reference: str) -> str:
    """The ledger payment id of a provider's payment reference (a webhook and a charge agree on it)."""
    return f"PAY-{provider}-{reference}"


def _charge(
    store: Store,
    pm: Any,
    settings: RunSettings,
    providers: dict[str, Any],
    charge: PlannedCharge,
    now: dt.datetime,
) -> str:
    """Outbox protocol for one instalment charge: intended, charged with the key, posted and done.

    A run killed between the provider's answer and the ``done`` record charges again with the
    same idempotency key; the provider answers with the first result, and the ledger posts
    the payment once (its id derives from the provider's reference).
    """
    with store.transaction():
        item = store.outbox_intend(
            charge.key,
            "charge",
            {"plan": charge.plan_id, "instalment": charge.number, "amount": str(charge.amount)},
            at=now,
            account_id=charge.account_id,
        )
    if item.status is OutboxStatus.DONE:
        return "skipped"
    if item.status is OutboxStatus.FAILED and item.next_retry_at is None:
        return "gave_up"
    if item.next_retry_at is not None and item.next_retry_at > now:
        return "deferred"
    # re-read: a payment, a dispute or a revoked mandate that arrived since planning wins
    fresh = store.account_snapshot(charge.account_id)
    plan = next((p for p in fresh.plans if p.id == charge.plan_id), None)
    inst = next((i for i in plan.instalments if i.number == charge.number), None) if plan else None
    mandate = next((m for m in fresh.mandates if m.plan_id == charge.plan_id), None)
    blocking = []
    if plan is None or plan.status is not PlanStatus.ACTIVE:
        blocking.append("plan.not_active")
    if inst is None or inst.status is not InstalmentStatus.DUE:
        blocking.append("instalment.not_due")
    if mandate is None or (mandate.revoked_at is not None and mandate.revoked_at <= now):
        blocking.append("mandate.revoked")
    if plan is not None and any(
        d.is_open and (d.invoice_id is None or d.invoice_id in plan.invoice_ids) for d in fresh.disputes
    ):
        blocking.append("dispute.open")
    if blocking or plan is None or inst is None or mandate is None:
        with store.transaction():
            store.outbox_failed(
                charge.key,
                at=now,
                error="suppressed: " + ",".join(blocking),
                retry_at=now + dt.timedelta(days=1),
            )
            store.audit_append(
                "charge.suppressed", charge.account_id, {"key": charge.key, "rules": blocking}, at=now
            )
        return "suppressed"
    try:
        provider = _provider(pm, settings, mandate.provider, providers)
        result = provider.purchase(
            inst.amount,
            Instrument(PaymentMethod(mandate.method), mandate.reference),
            idempotency_key=charge.key,
            account_id=charge.account_id,
        )
    except CareCollectError as exc:
        return _charge_failed(store, settings, charge, item.attempts, now, type(exc).__name__)
    except OSError as exc:
        return _charge_failed(store, settings, charge, item.attempts, now, f"transport: {type(exc).__name__}")
    if not result.success:
        code = result.error_code.value if result.error_code is not None else "failed"
        return _charge_failed(store, settings, charge, item.attempts, now, f"provider said {code}")
    reference = result.reference or charge.key
    payment = Payment(
        provider_payment_id(mandate.provider, reference),
        charge.account_id,
        inst.amount,
        PaymentMethod(mandate.method),
        now,
        provider_reference=reference,
    )
    with store.transaction():
        store.link_provider_payment(
            ProviderPayment(mandate.provider, reference, charge.account_id, payment.id, plan.id, inst.number)
        )
        book = store.ledger(charge.account_id)
        order = [i for i in plan.invoice_ids if i in book.invoice_ids()]  # the plan's invoices first
        new_book, event = post_payment(
            book, payment, order=order + [i for i in book.open_invoices() if i not in order]
        )
        store.append_ledger(charge.account_id, new_book.entries[len(book.entries) :])
        paid_plan, _ = record_instalment_payment(plan, inst.number, inst.amount, at=now)
        store.put_plan(paid_plan)
        store.outbox_done(charge.key, at=now, result={"reference": reference, "payment": payment.id})
        store.audit_append(
            "charge",
            charge.account_id,
            {"key": charge.key, "amount": str(inst.amount), "payment": payment.id},
            at=now,
        )
        owed = (
            ()
            if event is None
            else (owe_hook(store, pm, "carecollect_on_payment_received", now, payment=payment, event=event),)
        )
    deliver_hooks(store, pm, owed, now)
    return "charged"


def _charge_failed(
    store: Store, settings: RunSettings, charge: PlannedCharge, attempts: int, now: dt.datetime, why: str
) -> str:
    """A declined or failed charge: retried with back-off (the plan's grace period still runs)."""
    with store.transaction():
        retry = next_retry_at(attempts + 1, now) if attempts + 1 < settings.max_attempts else None
        store.outbox_failed(charge.key, at=now, error=why[:300], retry_at=retry, give_up=retry is None)
        store.audit_append(
            "charge.failed", charge.account_id, {"key": charge.key, "error": why[:300]}, at=now
        )
    return "charge_failed"


def _failed_placement(store: Store, key: str, now: dt.datetime, why: str) -> None:
    with store.transaction():
        item = store.outbox_get(key)
        store.outbox_failed(key, at=now, error=why, retry_at=next_retry_at(item.attempts + 1, now))
        store.audit_append("placement.failed", item.account_id or key, {"key": key, "error": why}, at=now)


def _placement_request(store: Store, record: AgencyPlacement) -> PlacementRequest:
    """Only what the agency needs: the debtor's contact data and the open invoices, no clinical detail."""
    snap = store.account_snapshot(record.account_id)
    patient = snap.patient
    letter = patient.points(Channel.LETTER)
    email = patient.points(Channel.EMAIL)
    phone = patient.points(Channel.PHONE) or patient.points(Channel.SMS)
    debtor = Debtor(
        id=snap.account.payer_id,
        name=patient.name or snap.account.payer_id,
        postal_address=tuple(letter[0].address.split("\n")) if letter else (),
        country=(patient.country or "US").upper(),
        language=patient.preferred_language,
        email=email[0].address if email else None,
        phone=phone[0].address if phone else None,
    )
    invoices = tuple(
        PlacedInvoice.from_invoice(i, open_balance=snap.ledger.invoice_balance(i.id))
        for i in snap.invoices
        if i.id in record.invoice_ids
    )
    return PlacementRequest(
        record.id,
        record.account_id,
        snap.account.creditor_id,
        debtor,
        invoices,
        jurisdiction=snap.account.jurisdiction,
    )


def explain_account(store: Store, account_id: str) -> list[dict[str, Any]]:
    """Every decision recorded for ``account_id``, oldest first, from the audit log.

    Each item has the run time, the decision kind, the invoice, purpose and
    channel, and the reasons (rule id, source, outcome, message).
    """
    out = []
    for rec in store.audit_records(subject_id=account_id):
        out.append({"at": rec.at.isoformat(), "kind": rec.kind, **dict(rec.data)})
    return out


def new_pay_link_key() -> bytes:
    """A fresh 32-byte key for pay links (store it as a secret)."""
    return secrets.token_bytes(32)
