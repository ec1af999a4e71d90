"""The plugin manager: find plugins, check them, and call their hooks safely.

There is no global manager. :func:`make_plugin_manager` builds one:

1. registers the hook specifications of :mod:`carecollect.plugins.hookspecs`;
2. blocks the plugins named in ``blocked`` and in the environment variable
   ``CARECOLLECT_BLOCKED_PLUGINS`` (comma-separated);
3. registers the built-in plugins (:mod:`carecollect.plugins.builtin`), then the
   ``plugins`` passed in, then, when ``load_entrypoints``, every entry point of
   the ``carecollect`` group; a plugin that fails to load or register raises
   :class:`~carecollect.errors.PluginError` naming the entry point and its
   distribution;
4. calls pluggy's ``check_pending()`` so a misspelt ``carecollect_*`` hook
   is an error, not silence;
5. optionally traces every hook call (scrubbed) for debugging.

:class:`PluginManager` is a :class:`pluggy.PluginManager` with a typed method
for every hook. Registration methods return ``{name: descriptor}`` and refuse
duplicate names; event methods broadcast to each implementation on its own and
return a :class:`BroadcastResult` that keeps the event and every failure. A
failure is also logged (WARNING, ``carecollect.plugins``) and kept by the
manager until delivered (:meth:`PluginManager.undelivered`,
:meth:`PluginManager.redeliver`).

>>> pm = make_plugin_manager(load_entrypoints=False)
>>> sorted(pm.payment_providers()), sorted(pm.message_channels())
(['manual'], ['letter', 'outbox'])
>>> pm.payment_provider("stripe")
Traceback (most recent call last):
...
carecollect.errors.ConfigurationError: no payment provider 'stripe'; installed: manual (install its plugin, or check the name)
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import pluggy

from .._moved import moved_module_name
from ..channels import Channel
from ..disputes import Dispute
from ..errors import ConfigurationError, PluginError
from ..events import Event
from ..outreach import OutreachStep
from ..payments import Payment, PaymentReversal
from ..placements import AgencyPlacement
from ..policy.packs import BUILTIN_PACKS, PolicyPack
from ..scrubbing import scrub, scrub_text
from . import hookspecs
from .agencies import AgencyConnectorDescriptor
from .messaging import MessageChannelDescriptor
from .providers import PaymentProviderDescriptor

__all__ = [
    "BLOCKED_ENV_VAR",
    "BUILTIN_PLUGINS",
    "BroadcastResult",
    "HookFailure",
    "PluginManager",
    "make_plugin_manager",
]

#: Environment variable with comma-separated plugin names to block.
BLOCKED_ENV_VAR = "CARECOLLECT_BLOCKED_PLUGINS"
#: Modules registered as plugins by default, under these names.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "carecollect.plugins.builtin.outbox",
    "carecollect.plugins.builtin.letters",
    "carecollect.plugins.builtin.manual",
    "carecollect.plugins.builtin.agency_files",
)

_log = logging.getLogger("carecollect.plugins")
_D = TypeVar("_D")


@attrs.frozen
class HookFailure:
    """One plugin that raised in an event hook.

    :param plugin: the plugin's registered name.
    :param error_type: the exception's class name.
    :param message: the exception's message, scrubbed.
    """

    plugin: str
    error_type: str
    message: str


@attrs.frozen
class BroadcastResult:
    """What happened when an event was broadcast.

    :param hook: the hook's name.
    :param event: the event (kept, so failed plugins can be called again with
        :meth:`PluginManager.broadcast` and ``only=result.failed_plugins``).
    :param delivered: plugins that handled it, in call order.
    :param failures: :class:`HookFailure` records of plugins that raised.
    :param arguments: every argument the hook was called with (to deliver again;
        not compared, not in reprs: it may hold patient data).
    """

    hook: str
    event: Event
    delivered: tuple[str, ...] = ()
    failures: tuple[HookFailure, ...] = ()
    arguments: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when no plugin raised."""
        return not self.failures

    @property
    def failed_plugins(self) -> tuple[str, ...]:
        """Names of the plugins that raised."""
        return tuple(f.plugin for f in self.failures)


class PluginManager(pluggy.PluginManager):
    """A pluggy manager for the ``carecollect`` project with a typed method per hook.

    Build it with :func:`make_plugin_manager`; constructing it directly gives a
    manager with the hook specifications and no plugins.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._distributions: dict[str, str] = {}
        self._undelivered: list[BroadcastResult] = []

    # -- helpers -------------------------------------------------------------------------------

    def distributions(self) -> Mapping[str, str]:
        """``{plugin name: "distribution version"}`` for plugins loaded from entry points."""
        return dict(self._distributions)

    def describe(self, name: str) -> str:
        """A registered plugin as errors name it: its name and where it comes from.

        ``plugin 'stripe' (distribution carecollect-stripe 1.0.0)`` for an entry
        point, ``plugin 'carecollect.plugins.builtin.manual' (built into carecollect
        0.9.0)`` for a built-in, ``plugin 'fake' (registered in code)`` for an
        object passed to :func:`make_plugin_manager` or registered directly.
        """
        if name in self._distributions:
            origin = f"distribution {self._distributions[name]}"
        elif name in BUILTIN_PLUGINS:
            origin = f"built into carecollect {_version()}"
        else:
            origin = "registered in code"
        return f"plugin {name!r} ({origin})"

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        caller: pluggy.HookCaller = getattr(self.hook, hook_name)
        # pluggy calls the last registered implementation first; keep its order.
        return [i for i in reversed(caller.get_hookimpls()) if not (i.hookwrapper or i.wrapper)]

    def _only(
        self, hook_name: str, impl: pluggy.HookImpl, impls: Sequence[pluggy.HookImpl]
    ) -> pluggy.HookCaller:
        others = [i.plugin for i in impls if i is not impl]
        return self.subset_hook_caller(hook_name, remove_plugins=others)

    def _collect(
        self, hook_name: str, kind: str, expected: type[_D], key: Callable[[_D], str]
    ) -> dict[str, _D]:
        found: dict[str, tuple[str, _D]] = {}
        impls = self._impls(hook_name)
        for impl in impls:
            try:
                results = self._only(hook_name, impl, impls)()
                items = [item for result in results for item in result]
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: "
                    f"{scrub_text(str(exc))}; fix it or block it with {BLOCKED_ENV_VAR}={impl.plugin_name}"
                ) from exc
            for item in items:
                if not isinstance(item, expected):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} returned {type(item).__name__} from {hook_name}; "
                        f"return {expected.__name__} objects"
                    )
                name = key(item)
                if name in found:
                    raise PluginError(
                        f"{kind} {name!r} is provided by both {self.describe(found[name][0])} and "
                        f"{self.describe(impl.plugin_name)}; uninstall or block one of them "
                        f"({BLOCKED_ENV_VAR})"
                    )
                found[name] = (impl.plugin_name, item)
        return {name: item for name, (_, item) in sorted(found.items())}

    @staticmethod
    def _pick(kind: str, found: Mapping[str, _D], name: str) -> _D:
        try:
            return found[name]
        except KeyError:
            installed = ", ".join(sorted(found)) or "none"
            raise ConfigurationError(
                f"no {kind} {name!r}; installed: {installed} (install its plugin, or check the name)"
            ) from None

    # -- registration hooks --------------------------------------------------------------------

    def payment_providers(self) -> dict[str, PaymentProviderDescriptor]:
        """Every payment provider, by name (``carecollect_payment_providers``).

        :raises PluginError: a plugin failed, returned something else, or two plugins use one name.
        """
        return self._collect(
            "carecollect_payment_providers", "payment provider", PaymentProviderDescriptor, lambda d: d.name
        )

    def payment_provider(self, name: str) -> PaymentProviderDescriptor:
        """The payment provider ``name``.

        :raises ConfigurationError: no such provider (the message lists the installed ones).
        """
        return self._pick("payment provider", self.payment_providers(), name)

    def message_channels(self) -> dict[str, MessageChannelDescriptor]:
        """Every message channel, by name (``carecollect_message_channels``).

        :raises PluginError: as :meth:`payment_providers`.
        """
        return self._collect(
            "carecollect_message_channels", "message channel", MessageChannelDescriptor, lambda d: d.name
        )

    def message_channel(self, name: str) -> MessageChannelDescriptor:
        """The message channel ``name``.

        :raises ConfigurationError: no such channel.
        """
        return self._pick("message channel", self.message_channels(), name)

    def agency_connectors(self) -> dict[str, AgencyConnectorDescriptor]:
        """Every agency connector, by name (``carecollect_agency_connectors``).

        :raises PluginError: as :meth:`payment_providers`.
        """
        return self._collect(
            "carecollect_agency_connectors", "agency connector", AgencyConnectorDescriptor, lambda d: d.name
        )

    def agency_connector(self, name: str) -> AgencyConnectorDescriptor:
        """The agency connector ``name``.

        :raises ConfigurationError: no such connector.
        """
        return self._pick("agency connector", self.agency_connectors(), name)

    def policy_packs(self) -> dict[str, PolicyPack]:
        """The built-in policy packs merged with those plugins add (``carecollect_policy_packs``).

        :raises PluginError: a plugin failed, or a key is taken (built in or by another plugin).
        """
        from_plugins = self._collect("carecollect_policy_packs", "policy pack", PolicyPack, lambda p: p.key)
        for key in from_plugins:
            if key in BUILTIN_PACKS:
                raise PluginError(
                    f"policy pack {key!r} is built into carecollect and also provided by a plugin; "
                    "give the plugin's pack its own key (e.g. 'us-ca')"
                )
        return {**BUILTIN_PACKS, **from_plugins}

    def policy_pack(self, key: str) -> PolicyPack:
        """The policy pack ``key``, built in or from a plugin.

        :raises ConfigurationError: no such pack.
        """
        return self._pick("policy pack", self.policy_packs(), key)

    # -- event hooks ---------------------------------------------------------------------------

    def event_hook_plugins(self, hook_name: str) -> tuple[str, ...]:
        """The plugins that implement the event hook ``hook_name``, in call order.

        :raises ValueError: ``hook_name`` is not an event hook.
        """
        if hook_name not in hookspecs.EVENT_HOOKS:
            raise ValueError(
                f"{hook_name!r} is not an event hook; use one of {', '.join(hookspecs.EVENT_HOOKS)}"
            )
        return tuple(str(impl.plugin_name) for impl in self._impls(hook_name))

    def undelivered(self) -> tuple[BroadcastResult, ...]:
        """Broadcasts that some plugin has not handled yet, oldest first (kept by this manager).

        Every event a plugin raised on is kept here, with its arguments' event,
        until :meth:`redeliver` gets it through, so a caller that ignored a
        :class:`BroadcastResult` still loses nothing: report these, or retry them.
        """
        return tuple(self._undelivered)

    def redeliver(self) -> tuple[BroadcastResult, ...]:
        """Call each failed plugin again with its kept event; returns the new results.

        A plugin that still raises stays in :meth:`undelivered`; the plugins that
        handled the event the first time are not called again.
        """
        pending, self._undelivered = self._undelivered, []
        results = []
        for old in pending:
            results.append(self.broadcast(old.hook, only=old.failed_plugins, **old.arguments))
        return tuple(results)

    def broadcast(
        self, hook_name: str, *, only: Iterable[str] | None = None, **kwargs: Any
    ) -> BroadcastResult:
        """Call every implementation of the event hook ``hook_name`` on its own.

        :param hook_name: one of :data:`carecollect.plugins.hookspecs.EVENT_HOOKS`.
        :param only: call just these plugins (to deliver again to those that failed).
        :param kwargs: the hook's arguments; ``event`` is required.
        :returns: :class:`BroadcastResult`.
        :raises ValueError: ``hook_name`` is not an event hook.
        """
        if hook_name not in hookspecs.EVENT_HOOKS:
            raise ValueError(
                f"{hook_name!r} is not an event hook; use one of {', '.join(hookspecs.EVENT_HOOKS)}"
            )
        wanted = None if only is None else frozenset(only)
        impls = self._impls(hook_name)
        delivered: list[str] = []
        failures: list[HookFailure] = []
        for impl in impls:
            if wanted is not None and impl.plugin_name not in wanted:
                continue
            try:
                self._only(hook_name, impl, impls)(**kwargs)
            except Exception as exc:
                _log.warning("plugin %r raised %s in %s", impl.plugin_name, type(exc).__name__, hook_name)
                failures.append(HookFailure(impl.plugin_name, type(exc).__name__, scrub_text(str(exc))))
            else:
                delivered.append(impl.plugin_name)
        result = BroadcastResult(
            hook_name, kwargs["event"], tuple(delivered), tuple(failures), arguments=dict(kwargs)
        )
        if failures:
            self._undelivered.append(result)
        return result

    def on_payment_received(self, payment: Payment, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_payment_received``."""
        return self.broadcast("carecollect_on_payment_received", payment=payment, event=event)

    def on_payment_reversed(self, reversal: PaymentReversal, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_payment_reversed``."""
        return self.broadcast("carecollect_on_payment_reversed", reversal=reversal, event=event)

    def on_outreach_sent(self, step: OutreachStep, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_outreach_sent``."""
        return self.broadcast("carecollect_on_outreach_sent", step=step, event=event)

    def on_outreach_failed(self, step: OutreachStep, event: Event, reason: str) -> BroadcastResult:
        """Broadcast ``carecollect_on_outreach_failed`` (``reason`` is scrubbed first)."""
        return self.broadcast(
            "carecollect_on_outreach_failed", step=step, event=event, reason=scrub_text(reason)
        )

    def on_dispute_opened(self, dispute: Dispute, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_dispute_opened``."""
        return self.broadcast("carecollect_on_dispute_opened", dispute=dispute, event=event)

    def on_dispute_resolved(self, dispute: Dispute, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_dispute_resolved``."""
        return self.broadcast("carecollect_on_dispute_resolved", dispute=dispute, event=event)

    def on_account_placed(self, placement: AgencyPlacement, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_account_placed``."""
        return self.broadcast("carecollect_on_account_placed", placement=placement, event=event)

    def on_account_recalled(self, placement: AgencyPlacement, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_account_recalled``."""
        return self.broadcast("carecollect_on_account_recalled", placement=placement, event=event)

    def on_opt_out(self, patient_id: str, channel: Channel, event: Event) -> BroadcastResult:
        """Broadcast ``carecollect_on_opt_out``."""
        return self.broadcast("carecollect_on_opt_out", patient_id=patient_id, channel=channel, event=event)


def _blocked_names(blocked: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    names = list(blocked)
    names += [n.strip() for n in environ.get(BLOCKED_ENV_VAR, "").replace(";", ",").split(",") if n.strip()]
    # a built-in named by its module before 0.2 (``carecollect.plugins.builtin.outbox``) is still blocked
    return [moved_module_name(n) for n in names]


def _version() -> str:
    try:
        return importlib.metadata.version("carecollect")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "(not installed)"


def _default_name(pm: PluginManager, plugin: object) -> str:
    """A readable name for a plugin passed without one: its module's or class's qualified name.

    pluggy would name an instance by its ``id()``, which tells a reader
    nothing; a second instance of the same class gets ``#2``.
    """
    if isinstance(plugin, types.ModuleType):
        base = plugin.__name__
    else:
        cls = plugin if isinstance(plugin, type) else type(plugin)
        base = f"{cls.__module__}.{cls.__qualname__}"
    name, n = base, 1
    while pm.get_plugin(name) is not None or pm.is_blocked(name):
        n += 1
        name = f"{base}#{n}"
    return name


def _register(pm: PluginManager, plugin: object, name: str | None, origin: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"{origin} could not be registered: {scrub_text(str(exc))}") from exc


def _load_entrypoints(pm: PluginManager) -> None:
    for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        dist = ep.dist
        label = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "an unknown distribution"
        origin = f"entry point {ep.name!r} = {ep.value!r} (group {ep.group!r}) of distribution {label}"
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"{origin} failed to load: {type(exc).__name__}: {scrub_text(str(exc))}; "
                f"reinstall or uninstall it, or block it with {BLOCKED_ENV_VAR}={ep.name}"
            ) from exc
        _register(pm, plugin, ep.name, origin)
        pm._distributions[ep.name] = label


def _tracer(write: Callable[[str], None]) -> tuple[Callable[..., None], Callable[..., None]]:
    def before(hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        plugins = ", ".join(i.plugin_name for i in hook_impls)
        write(f"{hook_name}({scrub_text(repr(scrub(dict(kwargs))))}) -> [{plugins}]")

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        exc = outcome.exception
        write(f"{hook_name} finished" + (f" with {type(exc).__name__}" if exc is not None else ""))

    return before, after


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    blocked: Iterable[str] = (),
    plugins: Iterable[object] | Mapping[str, object] = (),
    builtins: bool = True,
    environ: Mapping[str, str] | None = None,
    trace: bool | Callable[[str], None] = False,
) -> PluginManager:
    """Build a :class:`PluginManager`.

    :param load_entrypoints: load the plugins installed under the ``carecollect`` entry-point group.
    :param blocked: plugin names (entry-point names, or ``carecollect.plugins.builtin.*``) never to register.
    :param plugins: plugin objects (modules, instances) to register as well: a
        mapping ``{name: plugin}`` names them (as errors and
        :attr:`BroadcastResult.failed_plugins` will); in a plain list each is
        named by its module or class (``tests.fakes.FakeGateway``, then
        ``...#2`` for a second instance).
    :param builtins: register the built-in plugins (:data:`BUILTIN_PLUGINS`).
    :param environ: where to read ``CARECOLLECT_BLOCKED_PLUGINS`` (default: ``os.environ``).
    :param trace: ``True`` writes every hook call to the ``carecollect.plugins``
        logger at DEBUG; a callable receives the lines instead. Arguments are scrubbed.
    :returns: the manager, with every plugin checked.
    :raises PluginError: a plugin failed to load or register (the message names the
        entry point and distribution), or implements an unknown ``carecollect_*`` hook.

    >>> lines = []
    >>> blocked = ["carecollect.plugins.builtin.outbox", "carecollect.plugins.builtin.letters"]
    >>> pm = make_plugin_manager(load_entrypoints=False, blocked=blocked, trace=lines.append)
    >>> list(pm.message_channels()), lines
    ([], [])
    >>> list(pm.payment_providers()), lines[0]
    (['manual'], 'carecollect_payment_providers({}) -> [carecollect.plugins.builtin.manual]')
    """
    import importlib

    pm = PluginManager()
    env = os.environ if environ is None else environ
    for name in _blocked_names(blocked, env):
        pm.set_blocked(name)
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            if not pm.is_blocked(module_name):
                _register(
                    pm, importlib.import_module(module_name), module_name, f"built-in plugin {module_name!r}"
                )
    named = plugins.items() if isinstance(plugins, Mapping) else ((None, p) for p in plugins)
    for given, plugin in named:
        name = given or _default_name(pm, plugin)
        _register(pm, plugin, name, f"plugin {name!r}")
    if load_entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        dist = pm._distributions.get(name)
        where = f" (distribution {dist})" if dist else ""
        raise PluginError(f"plugin {name!r}{where}: {scrub_text(str(exc))}") from exc
    if trace:
        write: Callable[[str], None] = trace if callable(trace) else _log.debug
        pm.add_hookcall_monitoring(*_tracer(write))
    return pm
