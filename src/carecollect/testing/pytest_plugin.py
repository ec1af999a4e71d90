"""carecollect's pytest plugin (entry point ``pytest11: carecollect``): the kit's fixtures.

Registers :func:`~carecollect.testing.fixtures.frozen_clock`,
:func:`~carecollect.testing.fixtures.factories`,
:func:`~carecollect.testing.fixtures.smtp_server` and
:func:`~carecollect.testing.fixtures.http_server` for every test suite once
carecollect is installed. It imports only pytest and the standard library.
"""

from __future__ import annotations

from .fixtures import factories, frozen_clock, http_server, smtp_server

__all__ = ["factories", "frozen_clock", "http_server", "smtp_server"]
