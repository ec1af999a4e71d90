"""A local HTTP server that speaks the subset of Twilio's Messages API the channel uses.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth
(the account SID and auth token) and the form fields ``To``, ``Body`` and
``From`` or ``MessagingServiceSid`` (``StatusCallback`` optional), answered as
Twilio documents it: ``201`` with the message resource (``sid`` ``SM...``,
``status`` ``queued``), ``401`` with code 20003 for a wrong login, ``400`` with
code 21604 for a missing field. Twilio's documented test numbers give its error
answers (:data:`ERRORS`: 21211 invalid number, 21614 not a mobile number, 21610
unsubscribed recipient), and two more give ``429`` and ``500``.

Twilio's webhooks run the other way: it posts status callbacks and incoming
messages to the application. :meth:`LocalTwilio.status_callback` and
:meth:`LocalTwilio.incoming` build them exactly as Twilio sends them (the form
body and its ``X-Twilio-Signature``), for the application's intake to take.

The plugin's tests and ``carecollect demo --deliver sms`` use it; run it by hand
with ``python -m carecollect_sms.testing_server``.

>>> with serve("AC0123", "tok-local") as twilio:
...     twilio.base_url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from carecollect.messages.checks import sms_segments

from .signature import SIGNATURE_HEADER, sign

__all__ = ["ERRORS", "LocalTwilio", "main", "serve"]

#: Twilio's documented test numbers (and two of ours) and what the API answers for them:
#: ``(HTTP status, Twilio error code, message)``.
ERRORS: Mapping[str, tuple[int, int, str]] = {
    "+15005550001": (400, 21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550009": (400, 21614, "The 'To' number +15005550009 is not a valid mobile number."),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient +15005550004"),
    "+4790000429": (429, 20429, "Too Many Requests"),
    "+4790000500": (500, 20500, "Internal Server Error"),
}

_FORM = "application/x-www-form-urlencoded"


class LocalTwilio:
    """What the server does with each request, and what it accepted.

    :param account_sid: the account it serves (``AC...``).
    :param auth_token: the token it checks logins with and signs webhooks with.
    :param record: a file to append each accepted message to, one JSON object a line
        (``sid``, ``To``, ``From``, ``Body``, ``segments``, ``encoding``), or ``None``.
    :ivar accepted: the accepted messages' form fields, with their ``sid``.
    :ivar requests: how many requests reached the Messages resource.
    """

    def __init__(self, account_sid: str, auth_token: str, *, record: Path | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.record = record
        self.accepted: list[dict[str, str]] = []
        self.requests = 0
        self.base_url = ""
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))
        self._inbound = (f"SM{n:032x}" for n in itertools.count(0xF000_0001))
        self._lock = threading.Lock()

    @property
    def messages_path(self) -> str:
        """The path of the Messages resource of :attr:`account_sid`."""
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """The status and JSON body Twilio answers this request with."""
        if method != "POST" or urllib.parse.urlsplit(path).path != self.messages_path:
            return self._json(404, {"code": 20404, "message": "The requested resource was not found"})
        with self._lock:
            self.requests += 1
        headers = {name.lower(): value for name, value in headers.items()}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
            return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
        if headers.get("content-type", "").split(";")[0].strip() != _FORM:
            return self._json(400, {"code": 20001, "message": "form encoding expected", "status": 400})
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        if "To" not in form or "Body" not in form or not ({"From", "MessagingServiceSid"} & set(form)):
            return self._json(
                400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
            )
        if form["To"] in ERRORS:
            status, code, message = ERRORS[form["To"]]
            return self._json(status, {"code": code, "message": message, "status": status})
        encoding, segments = sms_segments(form["Body"])
        with self._lock:
            sid = next(self._sids)
            self.accepted.append(form | {"sid": sid})
            if self.record is not None:
                line = {
                    "sid": sid,
                    "To": form["To"],
                    "From": form.get("From") or form.get("MessagingServiceSid"),
                    "Body": form["Body"],
                    "segments": segments,
                    "encoding": encoding.value,
                }
                with self.record.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
        return self._json(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": str(segments),
                "api_version": "2010-04-01",
            },
        )

    def find(self, sid: str) -> dict[str, str] | None:
        """The accepted message ``sid`` (its form fields), or ``None``."""
        return next((m for m in self.accepted if m["sid"] == sid), None)

    def signed(self, url: str, params: Mapping[str, str]) -> tuple[dict[str, str], bytes]:
        """A webhook as Twilio posts it to ``url``: its headers (the signature) and form body."""
        signature = sign(self.auth_token, url, params.items())
        body = urllib.parse.urlencode(dict(params)).encode("utf-8")
        return {SIGNATURE_HEADER: signature, "Content-Type": _FORM}, body

    def status_callback(
        self, sid: str, status: str, *, error_code: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The status callback Twilio posts for accepted message ``sid``.

        :param sid: the message.
        :param status: ``delivered``, ``undelivered``, ``failed``, ``sent``...
        :param error_code: Twilio's error code of a failure (``30005``: unknown handset).
        :returns: ``(headers, body)`` signed for the message's ``StatusCallback`` URL.
        :raises KeyError: no such message, or it was sent without a ``StatusCallback``.
        """
        sent = self.find(sid)
        if sent is None or not sent.get("StatusCallback"):
            raise KeyError(f"message {sid} was not accepted with a StatusCallback")
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": sent["To"],
            "From": sent.get("From", ""),
            "ApiVersion": "2010-04-01",
        }
        if error_code:
            params["ErrorCode"] = error_code
        return self.signed(sent["StatusCallback"], params)

    def incoming(self, url: str, sender: str, to: str, text: str) -> tuple[dict[str, str], bytes]:
        """An SMS a phone sent to the account's number, as Twilio posts it to ``url``.

        :param url: the number's messaging webhook (the channel's ``inbound_url``).
        :param sender: the phone's number (E.164).
        :param to: the account's number it was sent to.
        :param text: what it says (``STOP``, ``STOPP``, ``СТОП``...).
        :returns: ``(headers, body)`` signed for ``url``.
        """
        with self._lock:
            sid = next(self._inbound)
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "From": sender,
            "To": to,
            "Body": text,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        return self.signed(url, params)

    @staticmethod
    def _json(status: int, payload: Any) -> tuple[int, bytes]:
        return status, json.dumps(payload).encode("utf-8")


@contextlib.contextmanager
def serve(
    account_sid: str, auth_token: str, *, port: int = 0, record: Path | None = None
) -> Iterator[LocalTwilio]:
    """Run a :class:`LocalTwilio` on 127.0.0.1 (``port`` 0: a free one) inside the ``with`` block.

    :param account_sid: the account it serves.
    :param auth_token: the token it checks and signs with.
    :param port: the port.
    :param record: where to append accepted messages (see :class:`LocalTwilio`).
    :returns: the server, its :attr:`~LocalTwilio.base_url` set (the channel's ``base_url``).
    """
    app = LocalTwilio(account_sid, auth_token, record=record)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # the headers and the body go out in two writes: without this, a kept-alive client waits
        # for its delayed ACK (40 ms) before the body comes
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = app.answer(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    app.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def main(argv: list[str] | None = None) -> None:
    """``python -m carecollect_sms.testing_server``: serve until interrupted.

    Prints the base URL to put in the channel's ``base_url`` setting. The SID and
    token are test values the server checks, never a Twilio account's.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m carecollect_sms.testing_server",
        description="A local server speaking the part of Twilio's Messages API carecollect-sms uses.",
    )
    parser.add_argument("--port", type=int, default=12112, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--account-sid", default="AC00000000000000000000000000000001")
    parser.add_argument("--auth-token", default="tok-local", help="the token it accepts and signs with")
    parser.add_argument("--record", type=Path, help="append accepted messages to this JSON-lines file")
    args = parser.parse_args(argv)
    with serve(args.account_sid, args.auth_token, port=args.port, record=args.record) as app:
        print(f"local Twilio Messages API at {app.base_url} (base_url); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
