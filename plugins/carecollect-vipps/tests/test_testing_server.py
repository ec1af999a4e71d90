"""The local test server started from its command, as the demo tutorial says: the provider talks to it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from carecollect.money import Money

from carecollect_vipps import VIPPS


def test_the_command_serves_the_api_the_provider_uses() -> None:
    command = [sys.executable, "-m", "carecollect_vipps.testing_server", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            url = line.split(" at ")[1].split()[0]
            assert url.startswith("http://127.0.0.1:")
            provider = VIPPS.create(
                {
                    "client_id": "local-client-id",
                    "client_secret": "local-client-secret",
                    "subscription_key": "local-subscription-key",
                    "merchant_serial_number": "123456",
                    "api_base": url,
                    "return_url": "https://pay.clinic.example/vipps/return",
                    "webhook_secret": "local-webhook-secret",
                }
            )
            link = provider.create_payment_link(
                Money("1250.00", "NOK"),
                idempotency_key="demo:1",
                account_id="A-1",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            )
            assert link.success and link.url and "landing.vipps.no" in link.url
        finally:
            server.terminate()
            server.wait(10)
