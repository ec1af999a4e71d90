"""Pay links: one invoice, signed, expiring, single use, no health data."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import ConfigurationError, ValidationError
from carecollect.messages.paylinks import (
    PayLinkExpired,
    PayLinkInvalid,
    PayLinkSigner,
    PayLinkUsed,
    new_nonce,
)
from carecollect.money import Money

KEY = b"0123456789abcdef0123456789abcdef"
SIGNER = PayLinkSigner(KEY, "https://pay.example.org/p")
UTC = dt.UTC
EXP = dt.datetime(2026, 4, 1, 12, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 20, 9, tzinfo=UTC)
LINK = SIGNER.issue("INV-2026-0042", Money("245.50", "EUR"), expires_at=EXP, nonce="Xk3v9QaL0pc")


def test_round_trip() -> None:
    claim = SIGNER.verify(LINK.token, now=NOW, used=set())
    assert claim.invoice_id == "INV-2026-0042"
    assert claim.amount == Money("245.50", "EUR")
    assert claim.expires_at == EXP and claim.nonce == "Xk3v9QaL0pc"
    assert LINK.url == "https://pay.example.org/p/" + LINK.token
    assert len(LINK.url) < 100  # fits an SMS


@pytest.mark.parametrize(
    ("index", "replacement"),
    [
        (0, "INV-2026-0043"),
        (1, "100"),
        (2, "USD"),
        (3, str(int(EXP.timestamp()) + 86400)),
        (4, "other"),
        (5, "A" * 22),
    ],
)
def test_tampering_is_refused(index: int, replacement: str) -> None:
    parts = LINK.token.split(".")
    parts[index] = replacement
    with pytest.raises(PayLinkInvalid):
        SIGNER.verify(".".join(parts), now=NOW, used=set())


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(min_value=0, max_value=len(LINK.token) - 1), ch=st.sampled_from("0aZ-_.9x"))
def test_any_single_change_is_refused(pos: int, ch: str) -> None:
    token = LINK.token[:pos] + ch + LINK.token[pos + 1 :]
    if token == LINK.token:
        return
    with pytest.raises(PayLinkInvalid):
        SIGNER.verify(token, now=NOW, used=set())


def test_other_key_is_refused() -> None:
    other = PayLinkSigner(b"f" * 32, "https://pay.example.org/p")
    with pytest.raises(PayLinkInvalid, match="signature"):
        other.verify(LINK.token, now=NOW, used=set())


def test_expiry() -> None:
    SIGNER.verify(LINK.token, now=EXP - dt.timedelta(seconds=1), used=set())
    with pytest.raises(PayLinkExpired):
        SIGNER.verify(LINK.token, now=EXP, used=set())


def test_replay_after_payment_is_refused() -> None:
    with pytest.raises(PayLinkUsed):
        SIGNER.verify(LINK.token, now=NOW, used={"Xk3v9QaL0pc"})
    with pytest.raises(PayLinkUsed):
        SIGNER.verify(LINK.token, now=NOW, used=lambda nonce: nonce == "Xk3v9QaL0pc")
    SIGNER.verify(LINK.token, now=NOW, used={"someone-else"})


def test_guards() -> None:
    with pytest.raises(ConfigurationError):
        PayLinkSigner(b"short", "https://x")
    assert "0123" not in repr(SIGNER)
    with pytest.raises(ValidationError):
        SIGNER.issue("INV 1/../x", Money("1.00", "EUR"), expires_at=EXP, nonce="n")
    with pytest.raises(ValidationError):
        SIGNER.issue("INV-1", Money("0.00", "EUR"), expires_at=EXP, nonce="n")
    with pytest.raises(ValidationError):
        SIGNER.issue("INV-1", Money("1.00", "EUR"), expires_at=dt.datetime(2026, 4, 1), nonce="n")
    with pytest.raises(PayLinkInvalid):
        SIGNER.verify("garbage", now=NOW, used=set())
    assert new_nonce() != new_nonce()


def test_link_carries_only_payment_fields() -> None:
    fields = LINK.token.split(".")
    assert fields[:5] == ["INV-2026-0042", "24550", "EUR", str(int(EXP.timestamp())), "Xk3v9QaL0pc"]
