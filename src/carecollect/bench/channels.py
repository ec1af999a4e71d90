"""``python -m carecollect.bench.channels``: messages per second through real channels to local servers.

SMTP: the ``smtp`` channel (the ``carecollect-smtp`` distribution) sends e-mails to an aiosmtpd
server on 127.0.0.1, started in a process of its own (``python -m aiosmtpd``, its ``Sink`` handler:
every message taken and dropped), so the server and the client do not share one interpreter. Three
ways, in the same run, on the same server, and a fourth on a second server:

* **one connection per message** (the baseline: connect, ``EHLO``, the message, ``QUIT``;
  ``messages_per_session = 1``);
* connection reuse, one session, the messages one after the other (``sessions = 1``);
* connection reuse as the run drives the channel: its declared pool of sessions, through
  :class:`~carecollect.plugins.dispatch.ChannelSender` (the run's own way of keeping a channel busy).
* the same pool to a server that offers ``PIPELINING``
  (:class:`carecollect.bench.smtp_sink.PipeliningSink`: the ``Sink`` saying so), where the channel
  sends ``MAIL FROM``, ``RCPT TO`` and ``DATA`` at once.

SMS: the ``sms`` channel (``carecollect-sms``) posting to its local test gateway
(``python -m carecollect_sms.testing_server``, a process of its own), one request at a time and at
the channel's declared concurrency (kept-alive connections).

Beside each figure, the CPU per e-mail of this process (the channel: building the e-mail and the
SMTP session) and of the server; and what writing the e-mail alone costs
(:func:`~carecollect.messages.email.email_bytes`, the bytes the channel sends and the file outbox
writes, beside :func:`~carecollect.messages.email.build_email`'s message object flattened); and a
floor: the same e-mails, built beforehand, over the declared number of plain :mod:`smtplib`
sessions (what the SMTP sessions alone allow on this machine, no channel).

Every message must be accepted, or the script fails. See :doc:`/explanation/performance`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..channels import Channel
from ..messages.email import email_bytes
from ..plugins.dispatch import ChannelSender
from ..plugins.messaging import MessageChannel, OutgoingMessage, Receipt, ReceiptStatus

#: What connection reuse must reach on this machine (issue 15): e-mails a second to a local aiosmtpd.
TARGET_SMTP_PER_S = 1000.0

_BODY = (
    "Your balance of EUR 120.00 for invoice INV-{n} is due on 2 April 2026. "
    "Pay online or call us if you need a payment plan or financial assistance.\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, what: str, greeting: bytes = b"") -> None:
    """Wait (at most 20 s) until ``proc`` takes connections on ``port`` (and says ``greeting``).

    :raises RuntimeError: the process ended or did not listen in time.
    """
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if not greeting or conn.recv(len(greeting)).startswith(greeting):
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


@contextmanager
def smtp_sink(handler: str = "aiosmtpd.handlers.Sink") -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """An aiosmtpd server with ``handler`` (default its ``Sink``) in a process of its own on
    127.0.0.1; yields the process and its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", handler, "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(proc, port, "the aiosmtpd server", greeting=b"220")
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


def _emails(n: int, prefix: str, domain: str = "example.org") -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            id=f"{prefix}-{i:06d}",
            channel=Channel.EMAIL,
            recipient=f"patient{i}@{domain}",
            subject="Your statement",
            body=_BODY.format(n=i),
            html=f"<p>{_BODY.format(n=i)}</p>",
            account_id=f"A-{i}",
            opt_out_url=f"https://clinic.example/opt-out/A-{i}",
        )
        for i in range(n)
    ]


def _accepted(results: Sequence[Receipt | Exception]) -> None:
    bad = [r for r in results if not (isinstance(r, Receipt) and r.status is ReceiptStatus.ACCEPTED)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(results)} messages not accepted: {bad[0]!r}")


def timed(channel: MessageChannel, messages: Sequence[OutgoingMessage], *, driven: bool) -> float:
    """Messages per second sending ``messages``: each ``send`` in turn, or ``driven`` by a
    :class:`ChannelSender` with the channel's declared batch size, concurrency and rate limit."""
    t0 = time.perf_counter()
    if driven:
        with ChannelSender.for_channel(channel) as sender:
            results = [r for _, r in sender.send_all(messages)]
    else:
        results = [channel.send(m) for m in messages]
    wall = time.perf_counter() - t0
    _accepted(results)
    return len(messages) / wall


#: Sessions of the floor: the smtp channel's declared pool.
CAPABILITY_SESSIONS = 4


def session_floor(port: int, raw: Sequence[bytes], sessions: int) -> float:
    """E-mails a second over ``sessions`` reused :mod:`smtplib` sessions (threads) sending ``raw``,
    e-mails built and flattened beforehand: what the SMTP sessions alone cost, no channel."""

    def run(chunk: Sequence[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for data in chunk:
                smtp.sendmail("billing@clinic.example", ["patient@example.org"], data)

    threads = [threading.Thread(target=run, args=(raw[i::sessions],)) for i in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(raw) / (time.perf_counter() - t0)


def smtp_figures(messages: int, baseline: int) -> list[str]:
    """Lines of SMTP figures: baseline, reuse on one session, reuse as the run drives the channel
    (to a server without and with ``PIPELINING``), what writing the e-mail costs, the floor."""
    if importlib.util.find_spec("carecollect_smtp") is None or importlib.util.find_spec("aiosmtpd") is None:
        return ['skipped: pip install -e plugins/carecollect-smtp "carecollect[demo-channels]"']
    # a plugin distribution, found at run time (the core does not depend on it)
    smtp_channel: Any = importlib.import_module("carecollect_smtp").SMTPChannel

    lines = []
    rates: dict[str, float] = {}

    def measure(
        server: subprocess.Popen[bytes], port: int, label: str, n: int, extra: dict[str, str], driven: bool
    ) -> None:
        ch = smtp_channel({"host": "127.0.0.1", "port": str(port), "from": "billing@clinic.example", **extra})
        try:
            timed(ch, _emails(20, "warm"), driven=driven)  # the interpreter's and the server's first calls
            batch = _emails(n, label[:4].strip())
            cpu, server_cpu = time.process_time(), _process_cpu(server.pid)
            rate = timed(ch, batch, driven=driven)
            cpu, server_cpu = time.process_time() - cpu, _process_cpu(server.pid) - server_cpu
        finally:
            ch.close()
        rates[label] = rate
        lines.append(
            f"{label:<48} {n:>6,} e-mails {rate:8,.0f} /s; CPU per e-mail {cpu / n * 1000:.2f} ms here, "
            f"{server_cpu / n * 1000:.2f} ms the server ({ch.connections:,} sessions for {n + 20:,} e-mails, "
            f"concurrency {ch.capabilities.concurrency})"
        )

    baseline_way = "one connection per message (baseline)"
    with smtp_sink() as (server, port):
        measure(server, port, baseline_way, baseline, {"messages_per_session": "1", "sessions": "1"}, False)
        measure(server, port, "reuse, one session", messages, {"sessions": "1"}, False)
        measure(server, port, "reuse, the declared pool, as the run drives it", messages, {}, True)
        # fresh recipients for each way, as a run's e-mails have: no header parsed before
        built = _emails(messages, "build", "build.example.org")
        t0 = time.process_time()
        builder = smtp_channel({"host": "127.0.0.1", "port": str(port), "from": "billing@clinic.example"})
        raw = [builder.build(m).as_bytes() for m in built]
        t1 = time.process_time()
        at = dt.datetime.now(dt.UTC)
        for m in _emails(messages, "bytes", "bytes.example.org"):
            email_bytes(m, sender="billing@clinic.example", at=at)
        t2 = time.process_time()
        lines.append(
            f"of which writing the e-mail: {(t2 - t1) / messages * 1000:.2f} ms CPU per e-mail "
            f"(email_bytes, what the channel sends); {(t1 - t0) / messages * 1000:.2f} ms "
            "building the message object and flattening it (build_email)"
        )
        rate = session_floor(port, raw, CAPABILITY_SESSIONS)
        lines.append(
            f"{'floor: the sessions alone, e-mails built before':<48} {messages:>6,} e-mails {rate:8,.0f} /s "
            f"(plain smtplib, {CAPABILITY_SESSIONS} reused sessions, no channel)"
        )
    # the same pool to a server that offers PIPELINING: MAIL FROM, RCPT TO and DATA sent at once
    piped_way = "reuse, the declared pool, PIPELINING offered"
    with smtp_sink("carecollect.bench.smtp_sink.PipeliningSink") as (server, port):
        measure(server, port, piped_way, messages, {}, True)
    lines.insert(3, lines.pop())  # beside the same pool to the server that does not
    # the target is judged on aiosmtpd as it is (it does not offer PIPELINING)
    best = max(rate for way, rate in rates.items() if way not in (baseline_way, piped_way))
    base = rates[baseline_way]
    lines.append(
        f"reuse {best / base:.1f}x the baseline; {best:,.0f} e-mails/s "
        f"(target >= {TARGET_SMTP_PER_S:,.0f}/s): {'met' if best >= TARGET_SMTP_PER_S else 'NOT met'}"
    )
    return lines


@contextmanager
def sms_gateway() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The SMS plugin's local test gateway (``python -m carecollect_sms.testing_server``) in a
    process of its own on 127.0.0.1; yields the process and its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carecollect_sms.testing_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(proc, port, "the SMS test gateway")
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


def sms_figures(messages: int) -> list[str]:
    """Lines of SMS figures: one request at a time, and at the channel's declared concurrency."""
    if importlib.util.find_spec("carecollect_sms") is None:
        return ["skipped: pip install -e plugins/carecollect-sms"]
    sms_channel: Any = importlib.import_module("carecollect_sms").TwilioSMSChannel
    texts = [
        OutgoingMessage(
            id=f"sms-{i:06d}",
            channel=Channel.SMS,
            recipient=f"+47912{i % 100000:05d}",
            body=f"Legesenteret: regning INV-{i} på 450,00 kr forfaller 2. april. Stopp: svar STOPP.",
        )
        for i in range(messages)
    ]
    lines = []
    with sms_gateway() as (server, port):
        for label, connections in (("one request at a time", "1"), ("the declared concurrency", "")):
            ch = sms_channel(
                {
                    "account_sid": "AC00000000000000000000000000000001",
                    "auth_token": "tok-local",
                    "from": "Legesenter",
                    "base_url": f"http://127.0.0.1:{port}",
                    **({"connections": connections} if connections else {}),
                }
            )
            try:
                timed(ch, texts[:10], driven=True)  # warm: first connections, first imports
                cpu, server_cpu = time.process_time(), _process_cpu(server.pid)
                rate = timed(ch, texts[10:], driven=True)
                cpu, server_cpu = time.process_time() - cpu, _process_cpu(server.pid) - server_cpu
            finally:
                ch.close()
            n = len(texts) - 10
            lines.append(
                f"{label:<48} {n:>6,} texts {rate:8,.0f} /s; CPU per text {cpu / n * 1000:.2f} ms here, "
                f"{server_cpu / n * 1000:.2f} ms the gateway (concurrency {ch.capabilities.concurrency})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the channel figures."""
    ap = argparse.ArgumentParser(
        prog="python -m carecollect.bench.channels", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--messages", type=int, default=3000, help="e-mails per reuse figure (default 3,000)")
    ap.add_argument("--baseline", type=int, default=500, help="e-mails of the baseline (default 500)")
    ap.add_argument("--sms", type=int, default=1000, help="texts per SMS figure (default 1,000; 0 skips)")
    args = ap.parse_args(argv)
    print(f"Channels to local servers (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print("  SMTP to aiosmtpd on 127.0.0.1 (a process of its own):")
    for line in smtp_figures(args.messages, args.baseline):
        print("    " + line)
    if args.sms:
        print("  SMS to the sms plugin's local test gateway (a process of its own):")
        for line in sms_figures(args.sms):
            print("    " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
