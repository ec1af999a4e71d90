"""A local server that plays Twilio's Messages API (the documented subset the channel uses)."""

from __future__ import annotations

import base64
import itertools
import json
import urllib.parse

import pytest
from werkzeug import Request, Response

ACCOUNT = "AC00000000000000000000000000000001"
TOKEN = "tok-0123456789abcdef-secret"

#: Twilio's documented test numbers and what its API answers for them.
ERRORS = {
    "+15005550001": (400, 21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550009": (400, 21614, "The 'To' number +15005550009 is not a valid mobile number."),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient +15005550004"),
    "+4790000429": (429, 20429, "Too Many Requests"),
    "+4790000500": (500, 20500, "Internal Server Error"),
}


class FakeTwilio:
    """Answers POST /2010-04-01/Accounts/{sid}/Messages.json like Twilio; keeps what it accepted."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.accepted: list[dict[str, str]] = []
        self.requests = 0
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))
        httpserver.expect_request(
            f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", method="POST"
        ).respond_with_handler(self.handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def handle(self, request: Request) -> Response:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if auth != expected:
            return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
        if request.content_type != "application/x-www-form-urlencoded":
            return self._json(400, {"code": 20001, "message": "form encoding expected", "status": 400})
        form = dict(urllib.parse.parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        if "To" not in form or "Body" not in form or not ({"From", "MessagingServiceSid"} & set(form)):
            return self._json(
                400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
            )
        if form["To"] in ERRORS:
            status, code, message = ERRORS[form["To"]]
            return self._json(status, {"code": code, "message": message, "status": status})
        sid = next(self._sids)
        self.accepted.append(form | {"sid": sid})
        return self._json(
            201,
            {
                "sid": sid,
                "account_sid": ACCOUNT,
                "to": form["To"],
                "from": form.get("From"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "api_version": "2010-04-01",
            },
        )

    def find(self, sid: str) -> dict[str, str] | None:
        return next((m for m in self.accepted if m["sid"] == sid), None)

    @staticmethod
    def _json(status: int, data: dict) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")


@pytest.fixture
def twilio(httpserver) -> FakeTwilio:
    return FakeTwilio(httpserver)
