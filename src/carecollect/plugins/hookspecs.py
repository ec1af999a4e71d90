"""Hook specifications: everything a carecollect plugin can provide or react to.

Plugins are found through the ``carecollect`` entry-point group and mark
their functions with :data:`hookimpl`::

    from carecollect.plugins.hookspecs import hookimpl

    @hookimpl
    def carecollect_payment_providers():
        return [PaymentProviderDescriptor(...)]

Two kinds of hook:

* **Registration hooks** return an iterable of frozen descriptors of what the
  plugin provides. Names are unique across plugins: the plugin manager
  (:mod:`carecollect.plugins.manager`) refuses a duplicate and names both plugins.
  Which provider serves a patient comes from configuration, by name.
* **Event hooks** (``carecollect_on_*``) are broadcast: every implementation is
  called on its own; one that raises does not stop the others, and the failure
  is recorded in a :class:`~carecollect.plugins.manager.BroadcastResult` with
  the event. The daily run keeps every event it owes plugins in the store until
  each plugin took it (:func:`carecollect.run.hooks.owe_hook`), so nothing is
  lost: a plugin that raised, or a run that died before its broadcast, gets the
  event on the next run. Delivery is at least once (a process killed after a
  plugin took an event and before that was recorded calls it again): use
  ``event.record_id`` with the event type to recognise a repeat. Their return
  value is ignored.

Because each implementation is called on its own, a pluggy **wrapper**
(``@hookimpl(wrapper=True)`` or ``hookwrapper=True``) runs around each
implementation separately, once per implementation (and again around a
failed one when it is delivered to again), never once around all of them;
it is not called when the hook has no implementation. See
:doc:`/extend/hooks` ("Wrappers").

The versioning promise: a hook's signature only grows (new parameters are
added, none removed or renamed; an implementation may accept any subset of
the parameters), its name never changes, and a parameter that is to go away is
first deprecated with pluggy's ``warn_on_impl_args`` for at least one minor
release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..channels import Channel
    from ..disputes import Dispute
    from ..events import Event
    from ..outreach import OutreachStep
    from ..payments import Payment, PaymentReversal
    from ..placements import AgencyPlacement
    from ..policy.packs import PolicyPack
    from .agencies import AgencyConnectorDescriptor
    from .messaging import MessageChannelDescriptor
    from .providers import PaymentProviderDescriptor

__all__ = [
    "ENTRY_POINT_GROUP",
    "EVENT_HOOKS",
    "PROJECT_NAME",
    "REGISTRATION_HOOKS",
    "hookimpl",
    "hookspec",
]

#: pluggy project name; also the entry-point group plugins register under.
PROJECT_NAME = "carecollect"
#: The entry-point group: ``[project.entry-points.carecollect]`` in a plugin's ``pyproject.toml``.
ENTRY_POINT_GROUP = "carecollect"

#: Marks a hook specification (used only in this module).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's hook implementation: the one marker plugin authors import.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registration hooks -------------------------------------------------------------------------


@hookspec
def carecollect_payment_providers() -> Iterable[PaymentProviderDescriptor]:  # type: ignore[empty-body]
    """Payment providers this plugin offers.

    :returns: :class:`~carecollect.plugins.providers.PaymentProviderDescriptor` objects.
    :raises: nothing on purpose; an exception is wrapped in
        :class:`~carecollect.errors.PluginError` naming the plugin, and a name
        another plugin already uses is refused the same way.

    .. versionadded:: 0.1

    >>> from carecollect.plugins.hookspecs import hookimpl
    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> from carecollect.plugins.builtin.manual import MANUAL
    >>> import attrs
    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_payment_providers(self):
    ...         return [attrs.evolve(MANUAL, name="front-desk")]
    >>> pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    >>> sorted(pm.payment_providers())
    ['front-desk', 'manual']
    """


@hookspec
def carecollect_message_channels() -> Iterable[MessageChannelDescriptor]:  # type: ignore[empty-body]
    """Message channels this plugin offers (e-mail, SMS, letter, voice, portal).

    :returns: :class:`~carecollect.plugins.messaging.MessageChannelDescriptor` objects.
    :raises: nothing on purpose; failures and duplicate names become a
        :class:`~carecollect.errors.PluginError` naming the plugin(s).

    .. versionadded:: 0.1

    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> sorted(make_plugin_manager(load_entrypoints=False).message_channels())
    ['letter', 'outbox']
    """


@hookspec
def carecollect_agency_connectors() -> Iterable[AgencyConnectorDescriptor]:  # type: ignore[empty-body]
    """Collection-agency connectors this plugin offers.

    :returns: :class:`~carecollect.plugins.agencies.AgencyConnectorDescriptor` objects.
    :raises: nothing on purpose; failures and duplicate names become a
        :class:`~carecollect.errors.PluginError` naming the plugin(s).

    .. versionadded:: 0.1

    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> sorted(make_plugin_manager(load_entrypoints=False).agency_connectors())
    ['agency-files']
    """


@hookspec
def carecollect_policy_packs() -> Iterable[PolicyPack]:  # type: ignore[empty-body]
    """Policy packs this plugin adds (a state's or a country's rules).

    Packs are merged with the built-in ones of
    :func:`carecollect.policy.packs.get_pack`; a key that is already taken
    (built in or by another plugin) is refused.

    :returns: :class:`~carecollect.policy.packs.PolicyPack` objects.
    :raises: nothing on purpose; failures and duplicate keys become a
        :class:`~carecollect.errors.PluginError` naming the plugin(s).

    .. versionadded:: 0.1

    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> "no" in make_plugin_manager(load_entrypoints=False).policy_packs()
    True
    """


# --- event hooks --------------------------------------------------------------------------------


@hookspec
def carecollect_on_payment_received(payment: Payment, event: Event) -> None:
    """A payment was recorded.

    :param payment: the :class:`~carecollect.payments.Payment`.
    :param event: the :class:`~carecollect.events.Event` that records it.
    :returns: ignored.
    :raises: nothing on purpose; an exception is caught and recorded in the
        :class:`~carecollect.plugins.manager.BroadcastResult`; the other plugins still run.

    .. versionadded:: 0.1

    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> seen = []
    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_payment_received(self, payment, event):
    ...         seen.append(payment.id)
    >>> pm = make_plugin_manager(load_entrypoints=False, builtins=False, plugins=[Plugin()])
    >>> from carecollect.testing.factories import make_payment, payment_event
    >>> pm.on_payment_received(make_payment(), payment_event()).ok, seen
    (True, ['PAY-1'])
    """


@hookspec
def carecollect_on_payment_reversed(reversal: PaymentReversal, event: Event) -> None:
    """Money of a posted payment went back: a returned direct debit, a chargeback, a provider's refund.

    Broadcast once per reversal, after the unit of work that took the money
    off the ledger committed; a replayed webhook, or one for a payment that was
    never posted or has nothing left, broadcasts nothing. The arguments carry
    ids and amounts only (no patient data): an accounting export books the
    reversal, a CRM or a contact-centre queue follows up on the account.

    :param reversal: the :class:`~carecollect.payments.PaymentReversal` (reversal id, payment id,
        account id, amount, what is left of the payment, cause, provider and its event id).
    :param event: the ledger's :class:`~carecollect.events.Event` that records it
        (:attr:`~carecollect.events.EventType.LEDGER_POSTED`, ``kind`` ``payment_reversed``).
    :returns: ignored.
    :raises: nothing on purpose; an exception is caught and recorded in the
        :class:`~carecollect.plugins.manager.BroadcastResult` (and the run report's
        hook failures); the reversal stays on the ledger and the other plugins still run.

    .. versionadded:: 0.1

    >>> from carecollect.plugins.manager import make_plugin_manager
    >>> seen = []
    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_payment_reversed(self, reversal, event):
    ...         seen.append((reversal.payment_id, str(reversal.amount), reversal.cause.value))
    >>> pm = make_plugin_manager(load_entrypoints=False, builtins=False, plugins=[Plugin()])
    >>> from carecollect.testing.factories import make_payment_reversal, reversal_event
    >>> pm.on_payment_reversed(make_payment_reversal(), reversal_event()).ok, seen
    (True, [('PAY-1', 'EUR 50.00', 'chargeback')])
    """


@hookspec
def carecollect_on_outreach_sent(step: OutreachStep, event: Event) -> None:
    """An outreach step was sent (a message handed to a channel, or a call made).

    :param step: the :class:`~carecollect.outreach.OutreachStep`.
    :param event: the :class:`~carecollect.events.Event`.
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_outreach_sent(self, step, event):
    ...         print("sent", step.id)
    """


@hookspec
def carecollect_on_outreach_failed(step: OutreachStep, event: Event, reason: str) -> None:
    """An outreach step could not be sent (rejected, undeliverable, retries exhausted).

    :param step: the :class:`~carecollect.outreach.OutreachStep`.
    :param event: the :class:`~carecollect.events.Event`.
    :param reason: a short, scrubbed reason (no patient data).
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_outreach_failed(self, step, reason):
    ...         print("failed", step.id, reason)
    """


@hookspec
def carecollect_on_dispute_opened(dispute: Dispute, event: Event) -> None:
    """A patient disputed a bill (collection on it stops).

    :param dispute: the :class:`~carecollect.disputes.Dispute`.
    :param event: the :class:`~carecollect.events.Event`.
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_dispute_opened(self, dispute):
    ...         print("open", dispute.id)
    """


@hookspec
def carecollect_on_dispute_resolved(dispute: Dispute, event: Event) -> None:
    """A dispute was resolved (adjusted, written off, upheld or explained).

    :param dispute: the resolved :class:`~carecollect.disputes.Dispute`.
    :param event: the :class:`~carecollect.events.Event`.
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_dispute_resolved(self, dispute, event):
    ...         print("resolved", dispute.id, event.type.value)
    """


@hookspec
def carecollect_on_account_placed(placement: AgencyPlacement, event: Event) -> None:
    """An account was placed with a collection agency.

    :param placement: the :class:`~carecollect.placements.AgencyPlacement`.
    :param event: the :class:`~carecollect.events.Event`.
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_account_placed(self, placement):
    ...         print("placed", placement.id, placement.agency)
    """


@hookspec
def carecollect_on_account_recalled(placement: AgencyPlacement, event: Event) -> None:
    """An account was recalled from an agency.

    :param placement: the recalled :class:`~carecollect.placements.AgencyPlacement`.
    :param event: the :class:`~carecollect.events.Event` (its ``reason`` detail says why).
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_account_recalled(self, placement, event):
    ...         print("recalled", placement.id, event.detail("reason"))
    """


@hookspec
def carecollect_on_opt_out(patient_id: str, channel: Channel, event: Event) -> None:
    """A patient opted out of a channel (a ``STOP`` reply, a click, a call).

    Plugins that keep their own contact lists (an SMS provider's suppression
    list) update them here; carecollect has already recorded the opt-out.

    :param patient_id: the patient's id (never a name or number).
    :param channel: the :class:`~carecollect.channels.Channel`.
    :param event: the :class:`~carecollect.events.Event`.
    :returns: ignored.
    :raises: nothing on purpose; failures are recorded, the others still run.

    .. versionadded:: 0.1

    >>> class Plugin:
    ...     @hookimpl
    ...     def carecollect_on_opt_out(self, patient_id, channel):
    ...         print("suppress", patient_id, channel.value)
    """


#: Hooks that return descriptors.
REGISTRATION_HOOKS: tuple[str, ...] = (
    "carecollect_payment_providers",
    "carecollect_message_channels",
    "carecollect_agency_connectors",
    "carecollect_policy_packs",
)
#: Hooks that are broadcast.
EVENT_HOOKS: tuple[str, ...] = (
    "carecollect_on_payment_received",
    "carecollect_on_payment_reversed",
    "carecollect_on_outreach_sent",
    "carecollect_on_outreach_failed",
    "carecollect_on_dispute_opened",
    "carecollect_on_dispute_resolved",
    "carecollect_on_account_placed",
    "carecollect_on_account_recalled",
    "carecollect_on_opt_out",
)
