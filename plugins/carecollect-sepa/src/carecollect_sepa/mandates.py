"""SEPA direct-debit mandates: creditor identifier, debtor account, sequence type, amendments, expiry.

A mandate is the patient's signed permission to collect from their account.
It is a frozen record; each change (a collection, an amendment, a
revocation) is a function that checks a guard, raises
:class:`~carecollect_sepa.errors.MandateError` when the move is not allowed,
and returns the changed mandate.

The sequence type of each collection follows the SEPA Core rulebook:

* a one-off mandate is used once, with ``OOFF``;
* a recurring mandate's first collection is ``FRST``, the following ones
  ``RCUR``, and the last one, when the creditor knows it is the last,
  ``FNAL``;
* a first collection rejected before settlement did not happen, so the next
  one is ``FRST`` again; so is the next one after the patient moved the
  mandate to another bank (an amendment flagged ``SMNDA``);
* a mandate with no collection for 36 months has expired (counted from its
  last collection, or from its signature if it was never used).

>>> import datetime as dt
>>> m = SepaMandate.sign(
...     reference="CC-A-1-01", account_id="A-1", creditor_id="DE98ZZZ09999999999",
...     iban="DE89 3704 0044 0532 0130 00", debtor_name="Erika Mustermann",
...     signed_on=dt.date(2026, 1, 5))
>>> m.bic, m.next_sequence().value
('COBADEFFXXX', 'FRST')
>>> m = m.record_collection(dt.date(2026, 2, 2))
>>> m.next_sequence().value, m.expires_on().isoformat()
('RCUR', '2029-02-02')
>>> m
SepaMandate(reference='CC-A-1-01', account_id='A-1', kind=<MandateKind.RECURRING: 'recurring'>)
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import re

import attrs
import schwifty
from carecollect.channels import Channel
from carecollect.errors import ValidationError

from .errors import MandateError

__all__ = [
    "MANDATE_EXPIRY_MONTHS",
    "Amendment",
    "MandateKind",
    "SepaMandate",
    "SequenceType",
    "add_months",
    "check_creditor_identifier",
    "check_iban",
]

#: A mandate with no collection for this many months has expired (SEPA Core rulebook, 4.7.2 item 11).
MANDATE_EXPIRY_MONTHS = 36

# The SEPA character set for identifiers (EPC217-08): letters, digits and / - ? : ( ) . , ' + space.
_SEPA_ID = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]{1,35}$")
_CREDITOR_ID = re.compile(r"^([A-Z]{2})(\d{2})([A-Za-z0-9]{3})([A-Za-z0-9]{1,28})$")


class SequenceType(enum.Enum):
    """Where a collection stands in its mandate's life (the ``SeqTp`` of pain.008)."""

    FIRST = "FRST"
    RECURRING = "RCUR"
    ONE_OFF = "OOFF"
    FINAL = "FNAL"


class MandateKind(enum.Enum):
    """Whether a mandate allows one collection or a series."""

    RECURRING = "recurring"
    ONE_OFF = "one_off"


def _letters_to_digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text.upper())


def check_creditor_identifier(value: str, *, record: str = "SEPA creditor") -> str:
    """Check a SEPA creditor identifier (Gläubiger-ID) and its ISO 7064 mod 97-10 check digits.

    The check digits are computed over the national identifier followed by
    the country code and ``00``; the three-character creditor business code
    after them is not part of the check (EPC262-08).

    :param value: the identifier, spaces allowed.
    :param record: what it belongs to, for the error message.
    :returns: the identifier without spaces, upper case.
    :raises ValidationError: wrong shape or wrong check digits.

    >>> check_creditor_identifier("DE98 ZZZ 09999999999")
    'DE98ZZZ09999999999'
    >>> check_creditor_identifier("DE99ZZZ09999999999")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    carecollect.errors.ValidationError: SEPA creditor: field 'creditor_id': the check digits do not match ...
    """
    compact = re.sub(r"\s+", "", str(value)).upper()
    match = _CREDITOR_ID.match(compact)
    if not match:
        raise ValidationError(
            record,
            "creditor_id",
            "expected country code, 2 check digits, 3-character business code, national id",
        )
    country, digits, _business, national = match.groups()
    number = int(_letters_to_digits(national + country) + "00")
    if 98 - number % 97 != int(digits):
        raise ValidationError(
            record,
            "creditor_id",
            "the check digits do not match (wrong character?); copy the identifier from the bank's letter",
        )
    return compact


def check_iban(value: str, *, record: str, field: str = "iban") -> schwifty.IBAN:
    """An IBAN checked with :mod:`schwifty` (country, length, bank code, check digits).

    :raises ValidationError: naming the record and field, never the IBAN itself.
    """
    try:
        return schwifty.IBAN(str(value))
    except (ValueError, schwifty.exceptions.SchwiftyException) as exc:
        raise ValidationError(record, field, f"not a valid IBAN ({type(exc).__name__})") from None


def _check_bic(value: str, *, record: str, field: str = "bic") -> str:
    try:
        return str(schwifty.BIC(str(value)))
    except (ValueError, schwifty.exceptions.SchwiftyException) as exc:
        raise ValidationError(record, field, f"not a valid BIC ({type(exc).__name__})") from None


def _sepa_id(record: str, field: str, value: str) -> str:
    if not isinstance(value, str) or not _SEPA_ID.match(value) or value.startswith("/") or "//" in value:
        raise ValidationError(
            record,
            field,
            "1-35 characters of A-Z, a-z, 0-9 and / - ? : ( ) . , ' + space; no leading or double '/'",
        )
    return value


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months (the 31st becomes the month's last day).

    >>> add_months(dt.date(2026, 1, 31), 1)
    datetime.date(2026, 2, 28)
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@attrs.frozen
class Amendment:
    """What changed in a mandate, sent with the next collection (``AmdmntInfDtls`` of pain.008).

    :param original_reference: the mandate reference before, if it changed.
    :param original_creditor_id: the creditor identifier before, if it changed.
    :param original_iban: the debtor's IBAN before, if it changed within the same bank.
    :param other_bank: the debtor moved to another bank (``SMNDA``): the next collection is ``FRST``.
    """

    original_reference: str | None = None
    original_creditor_id: str | None = None
    original_iban: str | None = attrs.field(default=None, repr=False)
    other_bank: bool = False

    def merged(self, later: Amendment) -> Amendment:
        """Two amendments before one collection: the originals are the earliest ones."""
        return Amendment(
            self.original_reference or later.original_reference,
            self.original_creditor_id or later.original_creditor_id,
            self.original_iban or later.original_iban,
            self.other_bank or later.other_bank,
        )


@attrs.frozen
class SepaMandate:
    """A SEPA Core direct-debit mandate (build one with :meth:`sign`).

    :param reference: the unique mandate reference (Mandatsreferenz), at most 35 SEPA characters.
    :param account_id: the carecollect account it pays.
    :param kind: :class:`MandateKind`.
    :param creditor_id: the creditor identifier, checked.
    :param iban: the debtor's IBAN, compact (never in reprs).
    :param bic: the debtor bank's BIC (from the IBAN when not given).
    :param debtor_name: the account holder (never in reprs).
    :param signed_on: the date of signature.
    :param language: the patient's language for notices (``en``, ``de``, ``nb``, ``bg``).
    :param pre_notification_days: calendar days between the notice and the debit: 14 unless the
        patient agreed to fewer (at least 1).
    :param collections: collections presented (a rejected first one is not counted).
    :param last_collection_on: the due date of the last collection presented.
    :param first_pending: the next collection is ``FRST``.
    :param final_requested: the creditor marked the next collection as the last (``FNAL``).
    :param completed: a final or one-off collection was presented: the mandate is used up.
    :param revoked_on: when the patient or the bank ended it.
    :param amendment: changes not yet sent to the bank.
    :param notice_channel: how the patient gets notices (e-mail, letter, portal...).
    :param notice_address: where (the address on the mandate form; never in reprs); ``None``: no notices
        from the plugin (the creditor announces debits itself, e.g. with the plan's schedule).
    """

    reference: str
    account_id: str
    kind: MandateKind
    creditor_id: str = attrs.field(repr=False)
    iban: str = attrs.field(repr=False)
    bic: str = attrs.field(repr=False)
    debtor_name: str = attrs.field(repr=False)
    signed_on: dt.date = attrs.field(repr=False)
    language: str = attrs.field(default="de", repr=False)
    pre_notification_days: int = attrs.field(default=14, repr=False)
    collections: int = attrs.field(default=0, repr=False)
    last_collection_on: dt.date | None = attrs.field(default=None, repr=False)
    first_pending: bool = attrs.field(default=True, repr=False)
    final_requested: bool = attrs.field(default=False, repr=False)
    completed: bool = attrs.field(default=False, repr=False)
    revoked_on: dt.date | None = attrs.field(default=None, repr=False)
    amendment: Amendment | None = attrs.field(default=None, repr=False)
    notice_channel: Channel = attrs.field(default=Channel.EMAIL, repr=False)
    notice_address: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        record = f"SepaMandate {self.reference}"
        if not isinstance(self.pre_notification_days, int) or not 1 <= self.pre_notification_days <= 60:
            raise ValidationError(record, "pre_notification_days", "1-60 calendar days (14 unless agreed)")
        if not isinstance(self.signed_on, dt.date) or isinstance(self.signed_on, dt.datetime):
            raise ValidationError(record, "signed_on", "a date (not a datetime)")

    @classmethod
    def sign(
        cls,
        *,
        reference: str,
        account_id: str,
        creditor_id: str,
        iban: str,
        debtor_name: str,
        signed_on: dt.date,
        bic: str | None = None,
        kind: MandateKind = MandateKind.RECURRING,
        language: str = "de",
        pre_notification_days: int = 14,
        notice_channel: Channel = Channel.EMAIL,
        notice_address: str | None = None,
    ) -> SepaMandate:
        """A new mandate, every field checked (IBAN and BIC with :mod:`schwifty`).

        :raises ValidationError: naming the mandate reference and the field.
        """
        record = f"SepaMandate {reference}"
        _sepa_id(record, "reference", reference)
        account = check_iban(iban, record=record)
        if bic:
            bic_value = _check_bic(bic, record=record)
        elif account.bic is not None:
            bic_value = str(account.bic)
        else:
            raise ValidationError(record, "bic", "no BIC is known for this IBAN's bank; give it")
        if not isinstance(debtor_name, str) or not debtor_name.strip():
            raise ValidationError(record, "debtor_name", "the account holder's name is required")
        return cls(
            reference=reference,
            account_id=account_id,
            kind=kind,
            creditor_id=check_creditor_identifier(creditor_id, record=record),
            iban=account.compact,
            bic=bic_value,
            debtor_name=debtor_name.strip(),
            signed_on=signed_on,
            language=language,
            pre_notification_days=pre_notification_days,
            notice_channel=notice_channel,
            notice_address=notice_address,
        )

    # -- questions -------------------------------------------------------------------------------

    def expires_on(self) -> dt.date:
        """The first day the mandate is no longer valid: 36 months after its last use (or signature)."""
        return add_months(self.last_collection_on or self.signed_on, MANDATE_EXPIRY_MONTHS)

    def is_usable(self, on: dt.date) -> bool:
        """Whether a collection due on ``on`` may be presented under this mandate."""
        return self.problem(on) is None

    def problem(self, on: dt.date) -> str | None:
        """Why a collection due on ``on`` may not be presented (``None``: it may)."""
        if self.revoked_on is not None and self.revoked_on <= on:
            return "revoked"
        if self.completed:
            return "used up (one-off or final collection presented)"
        if on >= self.expires_on():
            return f"expired: no collection for {MANDATE_EXPIRY_MONTHS} months"
        if on < self.signed_on:
            return "not signed yet on that date"
        return None

    def next_sequence(self) -> SequenceType:
        """The sequence type of the next collection under this mandate."""
        if self.kind is MandateKind.ONE_OFF:
            return SequenceType.ONE_OFF
        if self.final_requested:
            return SequenceType.FINAL
        return SequenceType.FIRST if self.first_pending else SequenceType.RECURRING

    # -- transitions -----------------------------------------------------------------------------

    def _guard(self, on: dt.date, verb: str) -> None:
        problem = self.problem(on)
        if problem is not None:
            raise MandateError(f"SepaMandate {self.reference}", problem, verb)

    def record_collection(self, due_on: dt.date) -> SepaMandate:
        """A collection due on ``due_on`` was presented with :meth:`next_sequence`.

        :raises MandateError: the mandate is revoked, expired or used up on that date.
        """
        self._guard(due_on, "collect")
        sequence = self.next_sequence()
        return attrs.evolve(
            self,
            collections=self.collections + 1,
            last_collection_on=max(due_on, self.last_collection_on or due_on),
            first_pending=False,
            completed=sequence in (SequenceType.ONE_OFF, SequenceType.FINAL),
            amendment=None,
        )

    def undo_rejected_collection(self, sequence: SequenceType, due_on: dt.date) -> SepaMandate:
        """A collection was rejected before settlement (pain.002): for the mandate it did not happen.

        A rejected ``FRST`` or ``OOFF`` makes the next one first again; a rejected ``FNAL`` leaves the
        mandate open for a new final collection. The date of last use is kept: the 36 months run from
        the last collection presented.
        """
        if sequence is SequenceType.RECURRING:
            return self
        return attrs.evolve(
            self,
            collections=max(self.collections - 1, 0),
            first_pending=self.first_pending or sequence in (SequenceType.FIRST, SequenceType.ONE_OFF),
            completed=False if sequence in (SequenceType.ONE_OFF, SequenceType.FINAL) else self.completed,
            final_requested=self.final_requested or sequence is SequenceType.FINAL,
        )

    def request_final(self) -> SepaMandate:
        """Mark the next collection as the last one (``FNAL``); a first collection cannot be final.

        :raises MandateError: a one-off mandate, or no collection presented yet.
        """
        if self.kind is MandateKind.ONE_OFF or self.first_pending:
            raise MandateError(
                f"SepaMandate {self.reference}", "first collection pending", "mark the next collection final"
            )
        return attrs.evolve(self, final_requested=True)

    def amend(
        self,
        *,
        on: dt.date,
        reference: str | None = None,
        creditor_id: str | None = None,
        iban: str | None = None,
        bic: str | None = None,
        debtor_name: str | None = None,
    ) -> SepaMandate:
        """The mandate with a changed reference, creditor identifier or debtor account.

        The changes are sent with the next collection (``AmdmntInd`` true). A new IBAN at another
        bank is sent as ``SMNDA`` and makes the next collection ``FRST``.

        :raises MandateError: the mandate can no longer be used on ``on``.
        :raises ValidationError: a new value is not valid.
        """
        self._guard(on, "amend")
        record = f"SepaMandate {self.reference}"
        changes: dict[str, object] = {}
        amendment = Amendment()
        if reference is not None and reference != self.reference:
            changes["reference"] = _sepa_id(record, "reference", reference)
            amendment = attrs.evolve(amendment, original_reference=self.reference)
        if creditor_id is not None:
            new_id = check_creditor_identifier(creditor_id, record=record)
            if new_id != self.creditor_id:
                changes["creditor_id"] = new_id
                amendment = attrs.evolve(amendment, original_creditor_id=self.creditor_id)
        if iban is not None:
            account = check_iban(iban, record=record)
            if account.compact != self.iban:
                new_bic = _check_bic(bic, record=record) if bic else str(account.bic or "")
                if not new_bic:
                    raise ValidationError(record, "bic", "no BIC is known for the new IBAN's bank; give it")
                other_bank = (
                    schwifty.IBAN(self.iban).bank_code != account.bank_code or new_bic[:8] != self.bic[:8]
                )
                changes |= {"iban": account.compact, "bic": new_bic}
                if other_bank:
                    amendment = attrs.evolve(amendment, other_bank=True)
                    changes["first_pending"] = True
                else:
                    amendment = attrs.evolve(amendment, original_iban=self.iban)
        if debtor_name is not None and debtor_name.strip():
            changes["debtor_name"] = debtor_name.strip()  # a new name is not an amendment the bank needs
        if amendment != Amendment():
            changes["amendment"] = self.amendment.merged(amendment) if self.amendment else amendment
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def revoke(self, on: dt.date) -> SepaMandate:
        """The patient (or their bank) ended the mandate on ``on``; revoking twice keeps the first date."""
        if self.revoked_on is not None:
            return self
        return attrs.evolve(self, revoked_on=on)
