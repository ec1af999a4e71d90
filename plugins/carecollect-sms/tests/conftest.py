"""A local server that plays Twilio's Messages API: the plugin's own :mod:`carecollect_sms.testing_server`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carecollect_sms.testing_server import ERRORS, LocalTwilio, serve

__all__ = ["ACCOUNT", "ERRORS", "TOKEN", "twilio"]

ACCOUNT = "AC00000000000000000000000000000001"
TOKEN = "tok-0123456789abcdef-secret"


@pytest.fixture
def twilio() -> Iterator[LocalTwilio]:
    with serve(ACCOUNT, TOKEN) as server:
        yield server
