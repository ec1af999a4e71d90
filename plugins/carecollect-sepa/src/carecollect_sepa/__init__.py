"""SEPA Core direct debit for carecollect: mandates, pre-notifications, pain.008 files, returns.

Registered under the ``carecollect`` entry-point group as the payment
provider ``sepa``. See :mod:`carecollect_sepa.provider` for what each verb
does, and the Extend section of the carecollect docs for setup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carecollect.plugins.hookspecs import hookimpl
from carecollect.plugins.providers import PaymentProvider, PaymentProviderDescriptor

from .bank_files import BankReport, ReturnCategory, ReturnReason, read_bank_file, return_reason
from .errors import BankFileError, MandateError, SepaConfigurationError, SepaFileInvalid
from .mandates import Amendment, MandateKind, SepaMandate, SequenceType, check_creditor_identifier
from .pain008 import Creditor, build_pain008, validate_pain008
from .provider import CAPABILITIES, PROVIDER_NAME, BankFileResult, CollectionFile, SepaDirectDebit
from .state import Collection, CollectionStatus
from .target_calendar import CollectionCalendar, is_target_day

__all__ = [
    "CAPABILITIES",
    "PROVIDER_NAME",
    "SEPA",
    "Amendment",
    "BankFileError",
    "BankFileResult",
    "BankReport",
    "Collection",
    "CollectionCalendar",
    "CollectionFile",
    "CollectionStatus",
    "Creditor",
    "MandateError",
    "MandateKind",
    "ReturnCategory",
    "ReturnReason",
    "SepaConfigurationError",
    "SepaDirectDebit",
    "SepaFileInvalid",
    "SepaMandate",
    "SequenceType",
    "build_pain008",
    "carecollect_payment_providers",
    "check_creditor_identifier",
    "is_target_day",
    "read_bank_file",
    "return_reason",
    "validate_pain008",
]


def _create(settings: Mapping[str, Any]) -> PaymentProvider:
    return SepaDirectDebit(settings)


SEPA = PaymentProviderDescriptor(
    PROVIDER_NAME, CAPABILITIES, _create, "SEPA Core direct debit (pain.008 files, pain.002/camt.054 returns)"
)


@hookimpl
def carecollect_payment_providers() -> Iterable[PaymentProviderDescriptor]:
    """The ``sepa`` provider."""
    return [SEPA]
