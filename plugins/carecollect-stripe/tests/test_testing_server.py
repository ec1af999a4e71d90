"""The local test server started from its command, as the demo tutorial says: the provider talks to it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from carecollect.money import Money

from carecollect_stripe import STRIPE


def test_the_command_serves_the_api_the_provider_uses() -> None:
    command = [sys.executable, "-m", "carecollect_stripe.testing_server", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            url = line.split(" at ")[1].split()[0]
            assert url.startswith("http://127.0.0.1:")
            provider = STRIPE.create(
                {
                    "api_key": "sk_test_local",
                    "webhook_secret": "whsec_local",
                    "api_base": url,
                    "success_url": "http://127.0.0.1:8000/thanks",
                    "cancel_url": "http://127.0.0.1:8000/cancelled",
                    "max_network_retries": "0",
                }
            )
            link = provider.create_payment_link(
                Money("12.50", "EUR"),
                idempotency_key="demo:1",
                account_id="A-1",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
            )
            assert link.success and link.reference and link.reference.startswith("cs_")
        finally:
            server.terminate()
            server.wait(10)
