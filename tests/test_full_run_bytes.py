"""A full run's outbox holds the very bytes plain Jinja and the standard library's e-mail package give.

The run renders from compiled skeletons (:mod:`carecollect.messages.skeleton`) and writes e-mails
with :func:`~carecollect.messages.email.email_bytes`; the same portfolio run again with
``Renderer(compiled=False)`` and ``build_email(...).as_bytes()`` must leave the same files, byte
for byte (an e-mail's ``Date`` is the moment it is written, so that one header line is set aside).
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import closing
from pathlib import Path

from carecollect.channels import Channel
from carecollect.messages.email import build_email
from carecollect.messages.render import Renderer
from carecollect.plugins.builtin.outbox import CAPABILITIES, OUTBOX_DOMAIN, OutboxChannel, file_stem
from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.manager import make_plugin_manager
from carecollect.plugins.messaging import MessageChannelDescriptor, OutgoingMessage
from carecollect.portfolio import load_portfolio
from carecollect.run.execute import execute_run
from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore

NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
_DATE = re.compile(rb"\r\nDate: [^\r\n]*\r\n")


class _StdlibOutbox(OutboxChannel):
    """The outbox writing e-mails through the standard library's message object and generator."""

    def _render(self, message: OutgoingMessage) -> tuple[str, bytes]:
        if message.channel is not Channel.EMAIL:
            return super()._render(message)
        mail = build_email(
            message,
            sender=self.sender,
            at=dt.datetime.now(dt.UTC),
            message_id_domain=OUTBOX_DOMAIN,
            unsubscribe_mailto=self.unsubscribe_mailto,
        )
        return f"{file_stem(message.id)}.eml", mail.as_bytes()


def _run(folder: Path, factory: type[OutboxChannel], renderer: Renderer) -> dict[str, bytes]:
    class Plugin:
        @hookimpl
        def carecollect_message_channels(self) -> list[MessageChannelDescriptor]:
            return [MessageChannelDescriptor("files", CAPABILITIES, factory)]

    with closing(SQLiteStore(folder / "run.db")) as store:
        load_portfolio(store, 400, seed=11, as_of=NOW.date())
        pm = make_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
        settings = RunSettings(
            channel_plugins=dict.fromkeys(Channel, "files"),
            channel_config={"files": {"folder": str(folder / "out")}},
        )
        report = execute_run(store, NOW, pm, settings, renderer=renderer)
    files = {p.name: p.read_bytes() for p in (folder / "out").iterdir()}
    assert report.sent == len(files)
    return files


def _undated(name: str, data: bytes) -> bytes:
    if not name.endswith(".eml"):
        return data
    assert len(_DATE.findall(data)) == 1, name
    return _DATE.sub(b"\r\nDate: (the moment written)\r\n", data)


def test_the_outbox_bytes_are_plain_jinjas_and_the_standard_librarys(tmp_path: Path) -> None:
    compiled = Renderer()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fast = _run(tmp_path / "a", OutboxChannel, compiled)
    plain = _run(tmp_path / "b", _StdlibOutbox, Renderer(compiled=False))
    assert sorted(fast) == sorted(plain)
    kinds = {name.rsplit("_", 1)[-1] for name in fast}
    assert {"email.eml", "letter.txt"} <= kinds and len(fast) > 200
    for name, data in fast.items():
        assert _undated(name, data) == _undated(name, plain[name]), name
    # and the compiled run did render from skeletons (statements, letters and e-mails alike)
    skeletons = [s for variants in compiled._skeletons.values() for s in variants]
    assert skeletons and not any(s.opaque for s in skeletons)
    assert len(skeletons) < len(fast) / 4
