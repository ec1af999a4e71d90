"""AvtaleGiro (Norwegian direct debit) for carecollect: KIDs, claim files and OCR giro files via netsgiro.

Registered under the ``carecollect`` entry-point group as the payment provider ``avtalegiro``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.providers import PaymentProvider, PaymentProviderDescriptor

from .kid import KidAlgorithm, is_valid_kid, kid_for_account, mod10_check_digit, mod11_check_digit
from .provider import CAPABILITIES, PROVIDER_NAME, Agreement, AvtaleGiro, Claim, ClaimStatus, OcrResult

__all__ = [
    "AVTALEGIRO",
    "CAPABILITIES",
    "PROVIDER_NAME",
    "Agreement",
    "AvtaleGiro",
    "Claim",
    "ClaimStatus",
    "KidAlgorithm",
    "OcrResult",
    "carecollect_payment_providers",
    "is_valid_kid",
    "kid_for_account",
    "mod10_check_digit",
    "mod11_check_digit",
]


def _create(settings: Mapping[str, Any]) -> PaymentProvider:
    return AvtaleGiro(settings)


AVTALEGIRO = PaymentProviderDescriptor(
    PROVIDER_NAME, CAPABILITIES, _create, "AvtaleGiro (Nets claim and OCR files)"
)


@hookimpl
def carecollect_payment_providers() -> Iterable[PaymentProviderDescriptor]:
    """The ``avtalegiro`` provider."""
    return [AVTALEGIRO]
