"""Twilio's request signature (``X-Twilio-Signature``), computed and checked.

Twilio signs every webhook it sends (status callbacks, incoming messages) with
HMAC-SHA1 keyed with the account's auth token, over the full URL it requested
followed by every POST parameter, sorted by name (and, for a repeated name, by
value), each written as name then value with nothing between; the header holds
the digest in base64. A reverse proxy may add or drop the default port, so the
URL is also tried with ``:443``/``:80`` added or any port removed, as Twilio's
own libraries do.

>>> sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
...      [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
...       ("From", "+14158675309"), ("To", "+18005551212")])
'RSOYDt4T1cUTdK1PDd93/VVr8B8='
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable

__all__ = ["SIGNATURE_HEADER", "sign", "signature_matches"]

#: The header Twilio sends the signature in.
SIGNATURE_HEADER = "X-Twilio-Signature"


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for a POST of ``params`` to ``url``.

    :param auth_token: the account's auth token.
    :param url: the full URL Twilio requested, query string included.
    :param params: the form parameters as (name, value) pairs (a name may repeat).
    :returns: the base64 HMAC-SHA1.
    """
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    default = {"https": 443, "http": 80}.get(parts.scheme)
    netloc_plain = host if not parts.username else f"{parts.username}:{parts.password}@{host}"
    variants = [url, urllib.parse.urlunsplit(parts._replace(netloc=netloc_plain))]
    if default is not None and parts.port is None:
        variants.append(urllib.parse.urlunsplit(parts._replace(netloc=f"{netloc_plain}:{default}")))
    return list(dict.fromkeys(variants))


def signature_matches(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    """Whether ``signature`` is Twilio's for this request (constant-time compare).

    :param auth_token: the account's auth token.
    :param url: the URL the webhook was configured with (as Twilio requested it).
    :param params: the form parameters.
    :param signature: the ``X-Twilio-Signature`` header.
    :returns: ``True`` when it matches the URL, or the URL with the default port added or removed.
    """
    pairs = list(params)
    given = signature.encode("ascii", "replace")
    return any(
        hmac.compare_digest(sign(auth_token, variant, pairs).encode("ascii"), given)
        for variant in _url_variants(url)
    )
