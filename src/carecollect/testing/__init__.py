"""The conformance kit for plugin authors (shipped with carecollect, registered as a pytest plugin).

* :class:`PaymentProviderContract`, :class:`MessageChannelContract`,
  :class:`AgencyConnectorContract`: base test classes a plugin's tests subclass,
  overriding fixtures (see :mod:`carecollect.testing.contracts`);
* :mod:`carecollect.testing.fixtures`: a frozen clock, domain factories, a
  loopback SMTP server and a local HTTP server;
* :mod:`carecollect.testing.factories`: valid domain objects with defaults.
"""

from __future__ import annotations

from .contracts import AgencyConnectorContract, MessageChannelContract, PaymentProviderContract
from .fixtures import FrozenClock, LocalHTTPServer, LoopbackSMTPServer

__all__ = [
    "AgencyConnectorContract",
    "FrozenClock",
    "LocalHTTPServer",
    "LoopbackSMTPServer",
    "MessageChannelContract",
    "PaymentProviderContract",
]
