"""The errors of the SEPA direct-debit plugin (each also a carecollect error and the matching builtin)."""

from __future__ import annotations

from carecollect.errors import CareCollectError, ConfigurationError, InvalidTransition, ValidationError

__all__ = [
    "BankFileError",
    "MandateError",
    "SepaConfigurationError",
    "SepaFileInvalid",
]


class MandateError(InvalidTransition):
    """A mandate cannot be used or changed that way (revoked, expired, one-off already used)."""


class SepaConfigurationError(ConfigurationError):
    """The plugin's settings are missing or wrong (creditor identifier, IBAN, folders, secrets)."""


class SepaFileInvalid(CareCollectError, ValueError):
    """A pain.008 file the plugin produced does not validate against its official XSD (nothing is written)."""


class BankFileError(ValidationError):
    """A status report or debit notification from the bank cannot be read (names file and element)."""
