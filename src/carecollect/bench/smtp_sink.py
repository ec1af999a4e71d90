"""An aiosmtpd handler for the bench's SMTP figures: aiosmtpd's ``Sink`` (every message taken and
dropped) that also offers ``PIPELINING`` (RFC 2920) in its ``EHLO`` reply.

aiosmtpd reads a session's commands line by line, in order, so pipelined commands are answered as
they should be; it only does not say that it takes them. Started by the bench as
``python -m aiosmtpd -c carecollect.bench.smtp_sink.PipeliningSink`` (needs aiosmtpd, in the
``demo-channels`` extra).
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.handlers import Sink


class PipeliningSink(Sink):
    """``Sink``, offering ``PIPELINING``."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's hook: the ``EHLO`` reply with ``250-PIPELINING`` before its last line."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]
