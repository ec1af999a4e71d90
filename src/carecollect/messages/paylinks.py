"""Signed, expiring pay links for exactly one invoice, without a portal login.

A pay link carries the invoice id, the amount in minor units, the currency,
the expiry (Unix seconds) and a nonce, and an HMAC-SHA256 tag over them. It
carries no health information: no name, no service, no clinic type. The tag
is truncated to 128 bits to keep SMS short (truncation to at least 128 bits is
allowed by NIST SP 800-107r1 section 5.3.3). Verification is constant-time
(:func:`hmac.compare_digest`) and refuses a changed link, an expired one, and
one whose nonce was already used for a payment (the caller passes what is
used; this module keeps no state).

>>> import datetime as dt
>>> from carecollect.money import Money
>>> signer = PayLinkSigner(b"k" * 32, "https://pay.example.org/p")
>>> exp = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
>>> link = signer.issue("INV-1", Money("125.00", "EUR"), expires_at=exp, nonce="n0nce1")
>>> link.url.startswith("https://pay.example.org/p/INV-1.12500.EUR.")
True
>>> claim = signer.verify(link.token, now=exp - dt.timedelta(days=1), used=set())
>>> claim.invoice_id, str(claim.amount)
('INV-1', 'EUR 125.00')
>>> signer.verify(link.token, now=exp, used=set())
Traceback (most recent call last):
...
carecollect.errors.PayLinkExpired: pay link for invoice INV-1 expired; issue a new link
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Container

import attrs

from ..errors import (
    CareCollectError,
    ConfigurationError,
    PayLinkError,
    PayLinkExpired,
    PayLinkInvalid,
    PayLinkUsed,
    ValidationError,
)
from ..money import Money
from ..timekeeping import require_aware

__all__ = [
    "PayLink",
    "PayLinkClaim",
    "PayLinkError",
    "PayLinkExpired",
    "PayLinkInvalid",
    "PayLinkSigner",
    "PayLinkUsed",
    "new_nonce",
]

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG_BYTES = 16


@attrs.frozen
class PayLink:
    """An issued link.

    :param url: the full URL to put in a message.
    :param token: the path part the payment page verifies.
    :param nonce: the nonce, to record as used once the payment succeeds.
    """

    url: str
    token: str
    nonce: str


@attrs.frozen
class PayLinkClaim:
    """What a verified link allows: paying ``amount`` on ``invoice_id``.

    :param invoice_id: the invoice.
    :param amount: the amount.
    :param expires_at: the expiry (UTC).
    :param nonce: the nonce.
    """

    invoice_id: str
    amount: Money
    expires_at: dt.datetime
    nonce: str


def new_nonce() -> str:
    """A fresh random nonce (call at the edge, not in the core).

    :returns: 11 URL-safe characters (64 random bits).
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(8)).rstrip(b"=").decode()


@attrs.frozen(repr=False)
class PayLinkSigner:
    """Issues and verifies pay links with one secret key.

    :param key: the HMAC key, at least 32 bytes (never logged or shown).
    :param base_url: the payment page, for example ``"https://pay.example.org/p"``.
    :raises ConfigurationError: if the key is shorter than 32 bytes.
    """

    key: bytes
    base_url: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) < 32:
            raise ConfigurationError("PayLinkSigner: the key must be at least 32 random bytes")

    def __repr__(self) -> str:
        return f"PayLinkSigner(base_url={self.base_url!r}, key=<redacted>)"

    def _tag(self, payload: str) -> str:
        mac = hmac.new(self.key, payload.encode(), hashlib.sha256).digest()[:_TAG_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def issue(self, invoice_id: str, amount: Money, *, expires_at: dt.datetime, nonce: str) -> PayLink:
        """Sign a link for paying ``amount`` on ``invoice_id`` until ``expires_at``.

        :param invoice_id: the invoice (letters, digits, ``-`` and ``_``).
        :param amount: the amount, positive.
        :param expires_at: the expiry (aware).
        :param nonce: a fresh nonce (:func:`new_nonce`), URL-safe.
        :returns: the :class:`PayLink`.
        :raises ValidationError: on an unsafe id or nonce, or a non-positive amount.
        """
        require_aware(expires_at, f"PayLink {invoice_id}", "expires_at")
        if not _SAFE.match(invoice_id):
            raise ValidationError(
                f"PayLink {invoice_id!r}", "invoice_id", "letters, digits, '-' and '_' only"
            )
        if not _SAFE.match(nonce):
            raise ValidationError(f"PayLink {invoice_id}", "nonce", "letters, digits, '-' and '_' only")
        if not amount.is_positive():
            raise ValidationError(f"PayLink {invoice_id}", "amount", "must be positive")
        payload = ".".join(
            (invoice_id, str(amount.minor_units), amount.currency, str(int(expires_at.timestamp())), nonce)
        )
        token = f"{payload}.{self._tag(payload)}"
        return PayLink(f"{self.base_url.rstrip('/')}/{token}", token, nonce)

    def verify(
        self,
        token: str,
        *,
        now: dt.datetime,
        used: Container[str] | Callable[[str], bool],
    ) -> PayLinkClaim:
        """Check a link's token and return what it allows.

        :param token: the token (the last path segment of the URL).
        :param now: the current instant (aware).
        :param used: nonces already used for a payment (a set, or a callable
            returning True for a used nonce).
        :returns: the :class:`PayLinkClaim`.
        :raises PayLinkInvalid: when the token is malformed or was altered.
        :raises PayLinkExpired: when ``now`` is at or after the expiry.
        :raises PayLinkUsed: when the nonce was already used.
        """
        require_aware(now, "PayLink", "now")
        parts = token.split(".")
        if len(parts) != 6:
            raise PayLinkInvalid("pay link is malformed; ask for a new link")
        payload, tag = ".".join(parts[:5]), parts[5]
        if not hmac.compare_digest(self._tag(payload).encode(), tag.encode()):
            raise PayLinkInvalid("pay link signature does not match; the link was changed or is not ours")
        invoice_id, minor, currency, expiry, nonce = parts[:5]
        try:
            amount = Money.from_minor(int(minor), currency)
            expires_at = dt.datetime.fromtimestamp(int(expiry), tz=dt.UTC)
        except (ValueError, CareCollectError):
            raise PayLinkInvalid("pay link is malformed; ask for a new link") from None
        if now >= expires_at:
            raise PayLinkExpired(f"pay link for invoice {invoice_id} expired; issue a new link")
        is_used = used(nonce) if callable(used) else nonce in used
        if is_used:
            raise PayLinkUsed(f"pay link for invoice {invoice_id} was already used for a payment")
        return PayLinkClaim(invoice_id, amount, expires_at, nonce)
