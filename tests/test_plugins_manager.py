"""The plugin manager: discovery, blocking, load errors, duplicates, broadcasts, tracing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
import pytest

from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, PluginError
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.agencies import AgencyConnectorCapabilities, AgencyConnectorDescriptor
from carecollect.plugins.builtin.agency_files import AGENCY_FILES
from carecollect.plugins.builtin.letters import LETTERS
from carecollect.plugins.builtin.manual import MANUAL
from carecollect.plugins.builtin.outbox import OUTBOX
from carecollect.plugins.hookspecs import EVENT_HOOKS, hookimpl
from carecollect.plugins.manager import BLOCKED_ENV_VAR, make_plugin_manager
from carecollect.plugins.providers import Instrument
from carecollect.policy.packs import get_pack
from carecollect.testing import factories as f


def install_dist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dist: str, entry: str, code: str | None
) -> None:
    """A distribution on sys.path with a ``carecollect`` entry point, as pip would leave it."""
    module = entry.split("=")[1].strip()
    if code is not None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
    info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[carecollect]\n{entry}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(BLOCKED_ENV_VAR, "")


def test_builtins_are_plugins() -> None:
    pm = make_plugin_manager(load_entrypoints=False, environ={})
    assert pm.payment_providers() == {"manual": MANUAL}
    assert pm.message_channels() == {"outbox": OUTBOX, "letter": LETTERS}
    assert pm.agency_connectors() == {"agency-files": AGENCY_FILES}


def test_entry_point_plugin_is_found_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo gateway, installed as its own distribution, is found through its entry point."""
    gateway_src = Path(__file__).resolve().parent.parent / "plugins" / "carecollect-demo-gateway" / "src"
    monkeypatch.syspath_prepend(str(gateway_src))
    install_dist(
        tmp_path, monkeypatch, "carecollect-demo-gateway", "demo-gateway = carecollect_demo_gateway", None
    )
    pm = make_plugin_manager(environ={})
    assert pm.distributions()["demo-gateway"] == "carecollect-demo-gateway 1.2.3"
    provider = pm.payment_provider("demo-gateway").create({"webhook_secret": "whsec_x"})
    card = Instrument(PaymentMethod.CARD, "tok_ok")
    auth = provider.authorize(Money("80.00", "EUR"), card, idempotency_key="k1", account_id="A-1")
    assert auth.success and auth.reference is not None
    assert provider.capture(auth.reference, Money("80.00", "EUR"), idempotency_key="k2").amount == Money(
        "80.00", "EUR"
    )


def test_blocked_by_argument_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_dist(
        tmp_path, monkeypatch, "cc-broken", "broken = cc_broken_mod", "raise ImportError('missing sdk')\n"
    )
    assert (
        "manual"
        not in make_plugin_manager(
            blocked=["broken", "carecollect.plugins.builtin.manual"], environ={}
        ).payment_providers()
    )
    pm = make_plugin_manager(environ={BLOCKED_ENV_VAR: "broken, carecollect.plugins.builtin.outbox"})
    assert "outbox" not in pm.message_channels()  # installed plugins (carecollect-smtp) may remain


def test_load_failure_names_entry_point_and_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_dist(
        tmp_path,
        monkeypatch,
        "cc-broken",
        "broken = cc_broken_mod2",
        "raise ImportError('api_key=sk_live_abcdef123456 missing')\n",
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager(environ={})
    message = str(info.value)
    assert "'broken'" in message and "cc-broken 1.2.3" in message and "ImportError" in message
    assert "sk_live_abcdef123456" not in message
    assert f"{BLOCKED_ENV_VAR}=broken" in message


def test_unknown_hook_is_refused_by_check_pending() -> None:
    class Typo:
        @hookimpl
        def carecollect_payment_provider(self) -> list[object]:  # missing "s"
            return []

    with pytest.raises(PluginError, match="carecollect_payment_provider"):
        make_plugin_manager(load_entrypoints=False, plugins=[Typo()], environ={})


def test_bad_hook_signature_is_refused() -> None:
    class Wrong:
        @hookimpl
        def carecollect_on_opt_out(self, patient, channel):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginError, match="could not be registered"):
        make_plugin_manager(load_entrypoints=False, plugins=[Wrong()], environ={})


class Twin:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def carecollect_payment_providers(self) -> list[object]:
        return [attrs.evolve(MANUAL, name="twin")]

    @hookimpl
    def carecollect_message_channels(self) -> list[object]:
        return [attrs.evolve(OUTBOX, name="twin")]

    @hookimpl
    def carecollect_agency_connectors(self) -> list[object]:
        caps = AgencyConnectorCapabilities(countries={"NO"}, currencies={"NOK"})
        return [AgencyConnectorDescriptor("twin", caps, lambda settings: None)]  # type: ignore[arg-type,return-value]


def test_duplicate_names_are_refused_naming_both_plugins() -> None:
    pm = make_plugin_manager(load_entrypoints=False, environ={})
    pm.register(Twin("a"), name="vendor-a")
    pm.register(Twin("b"), name="vendor-b")
    for method in (pm.payment_providers, pm.message_channels, pm.agency_connectors):
        with pytest.raises(PluginError) as info:
            method()
        assert "'vendor-a'" in str(info.value) and "'vendor-b'" in str(info.value)


def test_a_plugin_instance_is_named_by_the_test_not_by_its_id() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin_manager(
            load_entrypoints=False, plugins={"first-twin": Twin("a"), "second-twin": Twin("b")}, environ={}
        ).payment_providers()
    message = str(info.value)
    assert "'first-twin'" in message and "'second-twin'" in message


def test_an_unnamed_instance_is_named_by_its_class() -> None:
    one, two = Twin("a"), Twin("b")
    pm = make_plugin_manager(load_entrypoints=False, builtins=False, plugins=[one, two], environ={})
    base = f"{Twin.__module__}.Twin"  # tests.test_plugins_manager.Twin
    assert [pm.get_name(one), pm.get_name(two)] == [base, f"{base}#2"]
    with pytest.raises(PluginError) as info:
        pm.payment_providers()
    assert str(id(one)) not in str(info.value) and str(id(two)) not in str(info.value)
    assert f"'{base}' (registered in code)" in str(info.value)


def test_a_duplicate_names_the_distributions_and_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = """
        import attrs
        from carecollect.plugins.builtin.manual import MANUAL
        from carecollect.plugins.hookspecs import hookimpl

        @hookimpl
        def carecollect_payment_providers():
            return [attrs.evolve(MANUAL, name="stripe")]
        """
    for folder, dist in (("a", "cc-stripe-one"), ("b", "cc-stripe-two")):
        (tmp_path / folder).mkdir()
        entry = f"{dist.removeprefix('cc-')} = {dist.replace('-', '_')}"
        install_dist(tmp_path / folder, monkeypatch, dist, entry, code)
    pm = make_plugin_manager(environ={}, plugins={"in-code": Twin("c")})
    with pytest.raises(PluginError) as info:
        pm.payment_providers()
    message = str(info.value)
    assert "payment provider 'stripe'" in message
    assert "'stripe-one' (distribution cc-stripe-one 1.2.3)" in message
    assert "'stripe-two' (distribution cc-stripe-two 1.2.3)" in message
    twin = make_plugin_manager(load_entrypoints=False, environ={}, plugins={"in-code": Twin("c")})
    twin.register(Twin("d"), name="also-in-code")
    with pytest.raises(PluginError) as info:
        twin.payment_providers()
    assert "'in-code' (registered in code)" in str(info.value)


def test_registration_hook_failure_and_wrong_type_name_the_plugin() -> None:
    class Raises:
        @hookimpl
        def carecollect_message_channels(self) -> list[object]:
            raise RuntimeError("no config")

    class WrongType:
        @hookimpl
        def carecollect_payment_providers(self) -> list[object]:
            return ["manual"]

    pm = make_plugin_manager(load_entrypoints=False, environ={})
    pm.register(Raises(), name="raiser")
    pm.register(WrongType(), name="stringy")
    with pytest.raises(PluginError, match="'raiser' failed in carecollect_message_channels"):
        pm.message_channels()
    with pytest.raises(PluginError, match="'stringy' returned str"):
        pm.payment_providers()


def test_unknown_name_lists_installed() -> None:
    pm = make_plugin_manager(load_entrypoints=False, environ={})
    with pytest.raises(ConfigurationError, match="installed: letter, outbox"):
        pm.message_channel("sms-gateway")
    with pytest.raises(ConfigurationError, match="installed: agency-files"):
        pm.agency_connector("credicare")
    assert pm.message_channel("outbox") is OUTBOX


def test_carecollect_policy_packs_merge_with_builtins() -> None:
    class StatePack:
        @hookimpl
        def carecollect_policy_packs(self) -> list[object]:
            return [attrs.evolve(get_pack("us"), key="us-ca", name="California")]

    class Clash:
        @hookimpl
        def carecollect_policy_packs(self) -> list[object]:
            return [get_pack("de")]

    pm = make_plugin_manager(load_entrypoints=False, plugins=[StatePack()], environ={})
    packs = pm.policy_packs()
    assert pm.policy_pack("us-ca").name == "California" and packs["no"] is get_pack("no")
    pm.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="'de' is built into carecollect"):
        pm.policy_packs()


class Recorder:
    """Implements every event hook; records what it saw."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[str] = []
        self.fail = fail

    def _record(self, hook: str) -> None:
        self.seen.append(hook)
        if self.fail:
            raise RuntimeError("webhook for card 4111 1111 1111 1111 failed")

    @hookimpl
    def carecollect_on_payment_received(self, payment, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_payment_received")

    @hookimpl
    def carecollect_on_payment_reversed(self, reversal, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_payment_reversed")

    @hookimpl
    def carecollect_on_outreach_sent(self, step, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_outreach_sent")

    @hookimpl
    def carecollect_on_outreach_failed(self, step, event, reason):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_outreach_failed")

    @hookimpl
    def carecollect_on_dispute_opened(self, dispute, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_dispute_opened")

    @hookimpl
    def carecollect_on_dispute_resolved(self, dispute, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_dispute_resolved")

    @hookimpl
    def carecollect_on_account_placed(self, placement, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_account_placed")

    @hookimpl
    def carecollect_on_account_recalled(self, placement, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_account_recalled")

    @hookimpl
    def carecollect_on_opt_out(self, patient_id, channel, event):  # type: ignore[no-untyped-def]
        self._record("carecollect_on_opt_out")


def _calls():  # type: ignore[no-untyped-def]
    event = f.payment_event()
    return {
        "carecollect_on_payment_received": lambda pm: pm.on_payment_received(f.make_payment(), event),
        "carecollect_on_payment_reversed": lambda pm: pm.on_payment_reversed(
            f.make_payment_reversal(), event
        ),
        "carecollect_on_outreach_sent": lambda pm: pm.on_outreach_sent(f.make_outreach_step(), event),
        "carecollect_on_outreach_failed": lambda pm: pm.on_outreach_failed(
            f.make_outreach_step(), event, "bounced"
        ),
        "carecollect_on_dispute_opened": lambda pm: pm.on_dispute_opened(f.make_dispute(), event),
        "carecollect_on_dispute_resolved": lambda pm: pm.on_dispute_resolved(f.make_dispute(), event),
        "carecollect_on_account_placed": lambda pm: pm.on_account_placed(f.make_placement(), event),
        "carecollect_on_account_recalled": lambda pm: pm.on_account_recalled(f.make_placement(), event),
        "carecollect_on_opt_out": lambda pm: pm.on_opt_out("P-1", Channel.SMS, event),
    }


@pytest.mark.parametrize("hook", EVENT_HOOKS)
def test_event_hook_failure_does_not_stop_the_others(hook: str) -> None:
    first, last = Recorder(), Recorder()
    pm = make_plugin_manager(load_entrypoints=False, builtins=False, environ={})
    pm.register(first, name="first")
    crasher = Recorder(fail=True)
    pm.register(crasher, name="crasher")
    pm.register(last, name="last")
    result = _calls()[hook](pm)
    assert result.hook == hook and result.event == f.payment_event()
    assert set(result.delivered) == {"first", "last"}
    assert result.failed_plugins == ("crasher",) and not result.ok
    assert result.failures[0].error_type == "RuntimeError"
    assert "4111 1111 1111 1111" not in result.failures[0].message
    assert first.seen == last.seen == [hook]
    again = pm.broadcast(hook, only=result.failed_plugins, **_kwargs(hook))
    assert again.delivered == () and again.failed_plugins == ("crasher",)
    assert crasher.seen == [hook, hook]
    assert first.seen == [hook], "delivering again to the failed plugin leaves the others alone"


def _kwargs(hook: str) -> dict[str, object]:
    event = f.payment_event()
    base: dict[str, object] = {"event": event}
    extra = {
        "carecollect_on_payment_received": {"payment": f.make_payment()},
        "carecollect_on_payment_reversed": {"reversal": f.make_payment_reversal()},
        "carecollect_on_outreach_sent": {"step": f.make_outreach_step()},
        "carecollect_on_outreach_failed": {"step": f.make_outreach_step(), "reason": "bounced"},
        "carecollect_on_dispute_opened": {"dispute": f.make_dispute()},
        "carecollect_on_dispute_resolved": {"dispute": f.make_dispute()},
        "carecollect_on_account_placed": {"placement": f.make_placement()},
        "carecollect_on_account_recalled": {"placement": f.make_placement()},
        "carecollect_on_opt_out": {"patient_id": "P-1", "channel": Channel.SMS},
    }[hook]
    return {**base, **extra}


def test_broadcast_refuses_non_event_hooks() -> None:
    pm = make_plugin_manager(load_entrypoints=False, environ={})
    with pytest.raises(ValueError, match="not an event hook"):
        pm.broadcast("carecollect_payment_providers", event=f.payment_event())


def test_trace_writes_scrubbed_calls() -> None:
    lines: list[str] = []
    pm = make_plugin_manager(
        load_entrypoints=False, builtins=False, plugins=[Recorder()], trace=lines.append, environ={}
    )
    pm.on_outreach_failed(f.make_outreach_step(), f.payment_event(), "card 4111111111111111 refused")
    assert lines[0].startswith("carecollect_on_outreach_failed(") and "[PAN …1111]" in lines[0]
    assert "4111111111111111" not in "".join(lines)
    assert lines[1] == "carecollect_on_outreach_failed finished"


def test_no_global_manager() -> None:
    a = make_plugin_manager(load_entrypoints=False, environ={})
    b = make_plugin_manager(load_entrypoints=False, environ={})
    a.set_blocked("carecollect.plugins.builtin.manual")
    assert a is not b and "manual" in b.payment_providers()


class Flaky(Recorder):
    """Raises on its first call of each hook, then works (a provider's outage)."""

    def _record(self, hook: str) -> None:
        first = hook not in self.seen
        self.seen.append(hook)
        if first:
            raise ConnectionError("suppression list API down")


@pytest.mark.parametrize("hook", EVENT_HOOKS)
def test_failed_event_is_kept_until_redelivered(hook: str) -> None:
    """A caller that ignores the BroadcastResult loses nothing: the manager keeps it and delivers again."""
    steady, flaky = Recorder(), Flaky()
    pm = make_plugin_manager(load_entrypoints=False, builtins=False, environ={})
    pm.register(steady, name="steady")
    pm.register(flaky, name="flaky")
    _calls()[hook](pm)  # result ignored on purpose
    [kept] = pm.undelivered()
    assert kept.hook == hook and kept.failed_plugins == ("flaky",) and kept.delivered == ("steady",)
    assert "P-1" not in repr(kept) and "arguments" not in repr(kept)
    [again] = pm.redeliver()
    assert again.ok and again.delivered == ("flaky",) and again.event == kept.event
    assert pm.undelivered() == () and steady.seen == [hook] and flaky.seen == [hook, hook]


def test_a_plugin_that_keeps_failing_stays_undelivered(caplog: pytest.LogCaptureFixture) -> None:
    pm = make_plugin_manager(
        load_entrypoints=False, builtins=False, plugins=[Recorder(fail=True)], environ={}
    )
    with caplog.at_level("WARNING", logger="carecollect.plugins"):
        pm.on_opt_out("P-1", Channel.SMS, f.payment_event())
    assert "raised RuntimeError in carecollect_on_opt_out" in caplog.text
    assert "4111" not in caplog.text
    pm.redeliver()
    [still] = pm.undelivered()
    assert still.hook == "carecollect_on_opt_out" and not still.ok
    assert make_plugin_manager(load_entrypoints=False, environ={}).undelivered() == ()


def test_an_event_hook_wrapper_runs_around_each_implementation_on_its_own() -> None:
    """What docs/extend/hooks.rst promises: not pluggy's one wrap around the whole call.

    Each implementation of an event hook is called on its own (so one that
    raises stops no other); a wrapper therefore runs once per implementation,
    sees that implementation's result or exception, and, when a failed plugin
    is delivered to again, runs again around it alone.
    """
    calls: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def carecollect_on_opt_out(self, patient_id, channel, event):  # type: ignore[no-untyped-def]
            calls.append("wrap:before")
            try:
                result = yield
            except RuntimeError:
                calls.append("wrap:saw-error")
                raise
            calls.append(f"wrap:after{result}")
            return result

    class Quiet:
        @hookimpl
        def carecollect_on_opt_out(self, patient_id, channel, event):  # type: ignore[no-untyped-def]
            calls.append("quiet")

    class Loud:
        @hookimpl
        def carecollect_on_opt_out(self, patient_id, channel, event):  # type: ignore[no-untyped-def]
            calls.append("loud")
            raise RuntimeError("down")

    pm = make_plugin_manager(
        load_entrypoints=False,
        builtins=False,
        plugins={"wrapper": Wrapper(), "quiet": Quiet(), "loud": Loud()},
        environ={},
    )
    result = pm.on_opt_out("P-1", Channel.SMS, f.payment_event())
    assert result.delivered == ("quiet",) and result.failed_plugins == ("loud",)
    assert "wrapper" not in result.delivered  # a wrapper is not an implementation of its own
    assert calls == ["wrap:before", "loud", "wrap:saw-error", "wrap:before", "quiet", "wrap:after[]"]
    calls.clear()
    [again] = pm.redeliver()
    assert again.failed_plugins == ("loud",)
    assert calls == ["wrap:before", "loud", "wrap:saw-error"]  # around the one plugin delivered to
    alone = make_plugin_manager(load_entrypoints=False, builtins=False, plugins={"w": Wrapper()}, environ={})
    calls.clear()
    assert alone.on_opt_out("P-1", Channel.SMS, f.payment_event()).delivered == ()
    assert calls == []  # no implementation, so the wrapper is not called at all
