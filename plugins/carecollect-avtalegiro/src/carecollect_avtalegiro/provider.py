"""The ``avtalegiro`` payment provider: AvtaleGiro claims to Nets, OCR giro files read back.

* The payer signs up in their online bank; Nets reports the agreement in an
  OCR file (assignment type 24): the KID, and whether the payer wants a
  notice from the payee before each claim (the notify flag).
  :meth:`~AvtaleGiro.read_ocr_file` records it; a deleted agreement gives a
  ``mandate.revoked`` intake event.
* :meth:`~AvtaleGiro.purchase` (the instrument's token is the KID) schedules
  a claim at the earliest due date Nets accepts (4 calendar days, after
  holidays, ``netsgiro.get_minimum_due_date``) and, when the payer wants
  notices, no earlier than the notice period; the notice goes out in the
  patient's language through the configured message channel. Without the
  flag, the claim carries a short bank-notification text instead.
* :meth:`~AvtaleGiro.write_claim_file` writes the transmission (claims and
  cancellations) with ``netsgiro``, atomically.
* :meth:`~AvtaleGiro.read_ocr_file` reads the OCR giro file: a payment with
  the claim's KID and amount marks it paid; a reversal of a paid claim gives
  ``payment.failed``. :meth:`~AvtaleGiro.unpaid_claims` turns a claim not
  reported paid within the grace days after its due date into
  ``payment.failed`` (Nets does not report a claim the payer's bank refused).
  Each event's id is fixed by the claim, so re-reading a file changes nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import tempfile
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import babel.dates
import netsgiro
from carecollect.channels import Channel
from carecollect.errors import ConfigurationError, ValidationError
from carecollect.money import Money
from carecollect.payments import PaymentMethod
from carecollect.plugins.messaging import MessageChannel, OutgoingMessage, Receipt
from carecollect.plugins.providers import (
    BasePaymentProvider,
    Instrument,
    PaymentErrorCode,
    PaymentResult,
    ProviderCapabilities,
    WebhookEvent,
    WebhookKind,
    WebhookSignatureInvalid,
    require_idempotency_key,
    sign_webhook,
    verify_webhook_signature,
)
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.timekeeping import require_aware

from .kid import KidAlgorithm, is_valid_kid, kid_for_account

__all__ = ["CAPABILITIES", "PROVIDER_NAME", "Agreement", "AvtaleGiro", "Claim", "ClaimStatus", "OcrResult"]

PROVIDER_NAME = "avtalegiro"
OSLO = zoneinfo.ZoneInfo("Europe/Oslo")
NETS_RECIPIENT = "00008080"

CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.DIRECT_DEBIT}, currencies={"NOK"}, countries={"NO"}, mandates=True, webhooks=True
)


class ClaimStatus(enum.Enum):
    """Where one AvtaleGiro claim stands."""

    SCHEDULED = "scheduled"
    SUBMITTED = "submitted"
    PAID = "paid"
    #: Not reported paid within the grace days, reversed, or cancelled by the payee.
    FAILED = "failed"
    CANCEL_REQUESTED = "cancel_requested"


@attrs.frozen
class Agreement:
    """An AvtaleGiro agreement as Nets reported it, with where its notices go.

    :param kid: the payer's KID.
    :param account_id: the carecollect account.
    :param notify: the payer wants a notice from the payee before each claim.
    :param active: not deleted.
    :param language: the patient's language for notices.
    :param notice_channel: how notices go.
    :param notice_address: where (never in reprs).
    """

    kid: str
    account_id: str
    notify: bool = False
    active: bool = False
    language: str = "nb"
    notice_channel: Channel = Channel.EMAIL
    notice_address: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Claim:
    """One AvtaleGiro claim (reference = provider reference)."""

    reference: str
    kid: str
    account_id: str
    amount: Money
    due_on: dt.date
    status: ClaimStatus = ClaimStatus.SCHEDULED
    transmission: str | None = None
    #: the transmission that cancelled it at Nets
    cancelled_in: str | None = None
    #: the bank-notification text shown in the payer's bank when the payer wants no notice from us
    bank_text: str | None = None
    #: the OCR transaction that paid it (transmission/assignment/transaction number)
    paid_by: str | None = None


@attrs.frozen
class OcrResult:
    """What reading one OCR file did: the intake events, and the claims and agreements it changed."""

    events: tuple[InboundEvent, ...]
    paid: tuple[str, ...] = ()
    agreements: tuple[str, ...] = ()
    unknown: int = 0


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _setting(settings: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = settings.get(key, default)
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigurationError(
                f"avtalegiro: setting {key!r} wants the environment variable {name}, not set"
            )
        value = os.environ[name]
    if value is None or not str(value).strip():
        raise ConfigurationError(f"avtalegiro: setting {key!r} is required")
    return str(value)


def _digits(settings: Mapping[str, Any], key: str, n: int) -> str:
    value = _setting(settings, key)
    if not (value.isdigit() and len(value) == n):
        raise ConfigurationError(f"avtalegiro: setting {key!r} must be {n} digits")
    return value


_NOTICE = {
    "nb": (
        "Varsel om trekk med AvtaleGiro",
        "Hei,\n\n{creditor} trekker {amount} med AvtaleGiro {due}. "
        "KID: {kid}.\nEr noe feil, kontakt oss før forfall: {contact}.",
    ),
    "en": (
        "Notice of an AvtaleGiro payment",
        "Hello,\n\n{creditor} will collect {amount} by AvtaleGiro on "
        "{due}. KID: {kid}.\nIf anything is wrong, contact us before the due date: {contact}.",
    ),
    "de": (
        "Ankündigung einer AvtaleGiro-Zahlung",
        "Guten Tag,\n\n{creditor} zieht am {due} {amount} per "
        "AvtaleGiro ein. KID: {kid}.\nStimmt etwas nicht, melden Sie sich vorher: {contact}.",
    ),
    "bg": (
        "Известие за плащане с AvtaleGiro",
        "Здравейте,\n\n{creditor} ще събере {amount} "
        "чрез AvtaleGiro на {due}. KID: {kid}.\nАко нещо не е наред, "
        "свържете се с нас преди падежа: {contact}.",
    ),
}
_LOCALES = {"nb": "nb_NO", "en": "en_GB", "de": "de_DE", "bg": "bg_BG"}


def notice_text(
    language: str, *, creditor: str, amount: Money, due_on: dt.date, kid: str, contact: str
) -> tuple[str, str]:
    """The subject and body of the notice before one claim, in ``language`` (``nb``, ``en``, ``de``, ``bg``).

    >>> notice_text("nb", creditor="Legesenteret", amount=Money("450", "NOK"), due_on=dt.date(2026, 3, 20),
    ...             kid="0000001230", contact="22 00 00 00")[1].splitlines()[2]
    'Legesenteret trekker 450,00\\xa0kr med AvtaleGiro 20. mars 2026. KID: 0000001230.'
    """
    lang = language if language in _NOTICE else "nb"
    subject, body = _NOTICE[lang]
    loc = _LOCALES[lang]
    due = str(babel.dates.format_date(due_on, format="long", locale=loc))
    return subject, body.format(
        creditor=creditor, amount=amount.format(loc), due=due, kid=kid, contact=contact
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AvtaleGiro(BasePaymentProvider):
    """The AvtaleGiro provider.

    :param settings: ``creditor_name``, ``data_transmitter`` (8 digits, the customer number at Nets),
        ``agreement_id`` (9 digits, the AvtaleGiro agreement id), ``account`` (11 digits, the
        payee's account), ``folder``, ``intake_secret`` (``env:NAME``), ``contact``,
        ``kid_length`` (10), ``kid_algorithm`` (``mod10`` or ``mod11``), ``notice_days`` (7),
        ``grace_days`` (3), ``notice_channel`` (a message-channel plugin name) with
        ``notice_channel_settings``.
    :param clock: the current instant.
    :param channel: the message channel for notices (instead of ``notice_channel``).
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        channel: MessageChannel | None = None,
    ) -> None:
        self._creditor = _setting(settings, "creditor_name")
        self._transmitter = _digits(settings, "data_transmitter", 8)
        self._agreement_id = _digits(settings, "agreement_id", 9)
        self._account = _digits(settings, "account", 11)
        self._folder = Path(_setting(settings, "folder"))
        self._secret = _setting(settings, "intake_secret").encode()
        self._contact = _setting(settings, "contact")
        try:
            self._kid_length = int(settings.get("kid_length", 10))
            self._algorithm = KidAlgorithm(str(settings.get("kid_algorithm", "mod10")))
            self._notice_days = int(settings.get("notice_days", 7))
            self._grace_days = int(settings.get("grace_days", 3))
        except ValueError:
            raise ConfigurationError(
                "avtalegiro: kid_length, notice_days, grace_days are numbers; kid_algorithm is mod10 or mod11"
            ) from None
        self._clock = clock
        self._channel = channel
        self._channel_name = settings.get("notice_channel")
        self._channel_settings = dict(settings.get("notice_channel_settings") or {})
        self._path = self._folder / "avtalegiro-state.json"
        self._load()
        self._write_pending_files()

    def __repr__(self) -> str:
        return f"AvtaleGiro(agreement_id={self._agreement_id!r}, folder={self._folder.name!r})"

    # -- book ----------------------------------------------------------------------------------------

    def _load(self) -> None:
        data = json.loads(self._path.read_text(encoding="utf-8")) if self._path.exists() else {}
        self._agreements = {
            k: Agreement(**{**v, "notice_channel": Channel(v["notice_channel"])})
            for k, v in data.get("agreements", {}).items()
        }
        self._claims = {
            k: Claim(
                **{
                    **v,
                    "amount": Money.from_minor(v["amount"], "NOK"),
                    "due_on": dt.date.fromisoformat(v["due_on"]),
                    "status": ClaimStatus(v["status"]),
                }
            )
            for k, v in data.get("claims", {}).items()
        }
        self._keys: dict[str, list[Any]] = data.get("keys", {})
        self._files: dict[str, str] = data.get("files", {})
        self._counter: int = data.get("counter", 0)

    def _save(self) -> None:
        def enc(v: Any) -> Any:
            if isinstance(v, Money):
                return v.minor_units
            if isinstance(v, enum.Enum):
                return v.value
            if isinstance(v, dt.date):
                return v.isoformat()
            return v

        data = {
            "agreements": {
                k: {f: enc(x) for f, x in attrs.asdict(v, recurse=False).items()}
                for k, v in self._agreements.items()
            },
            "claims": {
                k: {f: enc(x) for f, x in attrs.asdict(v, recurse=False).items()}
                for k, v in self._claims.items()
            },
            "keys": self._keys,
            "files": self._files,
            "counter": self._counter,
        }
        out = json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False).encode()
        if not (self._path.exists() and self._path.read_bytes() == out):
            _write_atomically(self._path, out)

    def _now(self) -> dt.datetime:
        now = self._clock()
        require_aware(now, "avtalegiro", "clock")
        return now

    # -- agreements ----------------------------------------------------------------------------------

    def kid_for(self, account_id: str) -> str:
        """The KID of ``account_id`` (what the patient types when signing up in their bank)."""
        return kid_for_account(account_id, length=self._kid_length, algorithm=self._algorithm)

    def register_payer(
        self,
        account_id: str,
        *,
        language: str = "nb",
        notice_channel: Channel = Channel.EMAIL,
        notice_address: str | None = None,
    ) -> Agreement:
        """Record where an account's notices go; the agreement becomes active when Nets reports it."""
        kid = self.kid_for(account_id)
        known = self._agreements.get(kid)
        agreement = Agreement(
            kid,
            account_id,
            known.notify if known else False,
            known.active if known else False,
            language,
            notice_channel,
            notice_address,
        )
        self._agreements[kid] = agreement
        self._save()
        return agreement

    def agreement(self, kid: str) -> Agreement:
        """The agreement of ``kid`` (:class:`KeyError` when unknown)."""
        return self._agreements[kid]

    def claim(self, reference: str) -> Claim:
        """The claim ``reference`` (:class:`KeyError` when unknown)."""
        return self._claims[reference]

    # -- verbs ---------------------------------------------------------------------------------------

    def _once(self, key: str, request: list[Any], action: Callable[[], PaymentResult]) -> PaymentResult:
        require_idempotency_key(key, str(request[0]))
        seen = self._keys.get(key)
        if seen is not None:
            if seen[0] != request:
                return PaymentResult.failed(
                    PaymentErrorCode.IDEMPOTENCY_CONFLICT, "key used for another request"
                )
            r = seen[1]
            amount = Money.from_minor(r["amount"], "NOK") if r["amount"] is not None else None
            if r["success"]:
                return PaymentResult.ok(r["reference"], amount)
            return PaymentResult.failed(PaymentErrorCode(r["code"]), r["message"])
        result = action()
        self._keys[key] = [
            request,
            {
                "success": result.success,
                "reference": result.reference,
                "message": result.message,
                "code": result.error_code.value if result.error_code else None,
                "amount": result.amount.minor_units if result.amount is not None else None,
            },
        ]
        self._save()
        return result

    def _refusal(self, kid: str, account_id: str) -> PaymentResult | None:
        agreement = self._agreements.get(kid)
        if agreement is None or agreement.account_id != account_id or not is_valid_kid(kid, self._algorithm):
            return PaymentResult.failed(
                PaymentErrorCode.INVALID_INSTRUMENT, "no AvtaleGiro agreement for this KID"
            )
        if not agreement.active:
            return PaymentResult.failed(
                PaymentErrorCode.MANDATE_REVOKED, "the agreement is not active at Nets"
            )
        return None

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Confirm the agreement of the KID ``instrument.token``; the reference is the KID."""
        return self._once(
            idempotency_key,
            ["store_mandate", instrument.token, account_id],
            lambda: self._refusal(instrument.token, account_id) or PaymentResult.ok(instrument.token),
        )

    def remove_mandate(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Stop using the agreement of KID ``reference`` (the payer ends it at Nets in their bank)."""

        def act() -> PaymentResult:
            agreement = self._agreements.get(reference)
            if agreement is None:
                return PaymentResult.failed(PaymentErrorCode.NOT_FOUND, "no agreement for this KID")
            self._agreements[reference] = attrs.evolve(agreement, active=False)
            return PaymentResult.ok(reference)

        return self._once(idempotency_key, ["remove_mandate", reference], act)

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Schedule a claim of ``amount`` on the agreement of KID ``instrument.token`` (noticed if wanted)."""
        require_idempotency_key(idempotency_key, "purchase")

        def act() -> PaymentResult:
            if amount.currency != "NOK":
                return PaymentResult.failed(
                    PaymentErrorCode.CURRENCY_NOT_SUPPORTED, "AvtaleGiro claims are in NOK"
                )
            if instrument.method is not PaymentMethod.DIRECT_DEBIT or not amount.is_positive():
                return PaymentResult.failed(PaymentErrorCode.METHOD_NOT_SUPPORTED, "a positive direct debit")
            refusal = self._refusal(instrument.token, account_id)
            if refusal is not None:
                return refusal
            agreement = self._agreements[instrument.token]
            now = self._now()
            due = netsgiro.get_minimum_due_date(now.astimezone(OSLO))
            if agreement.notify:
                due = max(due, now.astimezone(OSLO).date() + dt.timedelta(days=self._notice_days))
            self._counter += 1
            reference = f"AG{now.astimezone(OSLO):%y%m%d}{self._counter:06d}"
            bank_text = None if agreement.notify else f"{self._creditor[:20]} {reference}"[:40]
            claim = Claim(reference, agreement.kid, account_id, amount, due, bank_text=bank_text)
            self._claims[reference] = claim
            self._save()
            if agreement.notify:
                self._notify(agreement, claim)
            return PaymentResult.ok(reference, amount, raw={"due_on": due.isoformat()})

        return self._once(idempotency_key, ["purchase", instrument.token, account_id, str(amount)], act)

    def _notify(self, agreement: Agreement, claim: Claim) -> Receipt | None:
        if self._channel is None and self._channel_name:
            from carecollect.plugins.manager import make_plugin_manager

            self._channel = (
                make_plugin_manager().message_channel(str(self._channel_name)).create(self._channel_settings)
            )
        if self._channel is None or agreement.notice_address is None:
            return None
        subject, body = notice_text(
            agreement.language,
            creditor=self._creditor,
            amount=claim.amount,
            due_on=claim.due_on,
            kid=claim.kid,
            contact=self._contact,
        )
        return self._channel.send(
            OutgoingMessage(
                f"AG-NOTICE-{claim.reference}",
                agreement.notice_channel,
                agreement.notice_address,
                body,
                subject=subject,
                language=agreement.language,
                account_id=agreement.account_id,
            )
        )

    def cancel_claim(self, reference: str) -> Claim:
        """Ask Nets to cancel a submitted claim (sent in the next transmission).

        :raises ValidationError: the claim is not submitted (a scheduled one is simply not sent).
        """
        claim = self._claims[reference]
        if claim.status is ClaimStatus.SCHEDULED:
            claim = attrs.evolve(claim, status=ClaimStatus.FAILED)
        elif claim.status is ClaimStatus.SUBMITTED:
            claim = attrs.evolve(claim, status=ClaimStatus.CANCEL_REQUESTED)
        else:
            raise ValidationError(
                f"Claim {reference}", "status", f"is {claim.status.value}; nothing to cancel"
            )
        self._claims[reference] = claim
        self._save()
        return claim

    # -- files ---------------------------------------------------------------------------------------

    def _build(self, number: str, day: dt.date) -> str:
        transmission = netsgiro.Transmission(
            number=number, data_transmitter=self._transmitter, data_recipient=NETS_RECIPIENT, date=day
        )
        by_ref = sorted(self._claims.values(), key=lambda c: c.reference)
        for n, (kind, items) in enumerate(
            (
                (netsgiro.AssignmentType.TRANSACTIONS, [c for c in by_ref if c.transmission == number]),
                (
                    netsgiro.AssignmentType.AVTALEGIRO_CANCELLATIONS,
                    [c for c in by_ref if c.cancelled_in == number],
                ),
            ),
            start=1,
        ):
            if not items:
                continue
            assignment = transmission.add_assignment(
                service_code=netsgiro.ServiceCode.AVTALEGIRO,
                assignment_type=kind,
                # a cancellation assignment carries no agreement id (the format has zeros there)
                agreement_id=self._agreement_id if kind is netsgiro.AssignmentType.TRANSACTIONS else None,
                number=f"{number[1:]}{n}",
                account=self._account,
            )
            for c in items:
                # a cancellation repeats its claim (KID, due date, amount); the format has no text for it
                text = c.bank_text or False
                add = (
                    assignment.add_payment_request
                    if kind is netsgiro.AssignmentType.TRANSACTIONS
                    else assignment.add_payment_cancellation
                )
                add(
                    kid=c.kid,
                    due_date=c.due_on,
                    amount=Decimal(c.amount.amount),
                    reference=c.reference[:25],
                    bank_notification=text,
                )
        return transmission.to_ocr() + "\n"

    def _outgoing(self, number: str) -> Path:
        return self._folder / "outgoing" / f"avtalegiro-{number}.txt"

    def write_claim_file(self) -> Path | None:
        """Write the transmission of scheduled claims and cancellations (``None``: nothing to send).

        The book records the transmission as pending, the file is written atomically, then the
        book records it written; a pending transmission (a crash in between) is written again,
        identical, when the provider starts. A written one is never written again.
        """
        now = self._now()
        claims = [c for c in self._claims.values() if c.status is ClaimStatus.SCHEDULED]
        cancels = [c for c in self._claims.values() if c.status is ClaimStatus.CANCEL_REQUESTED]
        if not claims and not cancels:
            return None
        self._counter += 1
        number = f"{self._counter % 10_000_000:07d}"
        day = now.astimezone(OSLO).date()
        for c in claims:
            self._claims[c.reference] = attrs.evolve(c, status=ClaimStatus.SUBMITTED, transmission=number)
        for c in cancels:
            self._claims[c.reference] = attrs.evolve(c, status=ClaimStatus.FAILED, cancelled_in=number)
        text = self._build(number, day)
        self._files[number] = f"pending|{day.isoformat()}"
        self._save()
        _write_atomically(self._outgoing(number), text.encode("ascii"))
        self._files[number] = f"written|{day.isoformat()}"
        self._save()
        return self._outgoing(number)

    def _write_pending_files(self) -> None:
        for number, entry in list(self._files.items()):
            status, day = entry.split("|", 1)
            if status == "pending":
                text = self._build(number, dt.date.fromisoformat(day))
                _write_atomically(self._outgoing(number), text.encode("ascii"))
                self._files[number] = f"written|{day}"
                self._save()

    def _event(
        self, event_id: str, kind: WebhookKind, reference: str, at: dt.datetime, **extra: Any
    ) -> InboundEvent:
        body = json.dumps(
            {
                "id": event_id,
                "type": kind.value,
                "reference": reference,
                "occurred_at": at.isoformat(),
                **extra,
            },
            sort_keys=True,
        ).encode()
        return InboundEvent(
            InboundKind.PAYMENT, PROVIDER_NAME, body, sign_webhook(self._secret, body, at=self._now())
        )

    def _failed(self, claim: Claim, why: str) -> InboundEvent:
        at = dt.datetime.combine(claim.due_on, dt.time(12), tzinfo=OSLO)
        return self._event(
            f"avtalegiro-failed-{claim.reference}",
            WebhookKind.PAYMENT_FAILED,
            claim.reference,
            at,
            amount_minor=claim.amount.minor_units,
            currency="NOK",
            method="direct_debit",
            reason=why,
        )

    def read_ocr_file(self, text: str) -> OcrResult:
        """Apply an OCR file from Nets (agreements, payments, reversals); the same file twice changes nothing.

        :raises ValidationError: the file is not an OCR transmission (nothing is applied).
        """
        try:
            transmission = netsgiro.parse(text)
        except (ValueError, AssertionError) as exc:
            raise ValidationError(
                "OCR file", "records", f"not an OCR giro transmission ({type(exc).__name__})"
            ) from None
        events: list[InboundEvent] = []
        paid: list[str] = []
        agreements: list[str] = []
        unknown = 0
        for assignment in transmission.assignments:
            if assignment.type is netsgiro.AssignmentType.AVTALEGIRO_AGREEMENTS:
                for record in assignment.transactions:
                    if not isinstance(record, netsgiro.Agreement):
                        continue
                    known = self._agreements.get(str(record.kid))
                    if known is None:
                        unknown += 1
                        continue
                    deleted = (
                        record.registration_type is netsgiro.AvtaleGiroRegistrationType.DELETED_AGREEMENT
                    )
                    updated = attrs.evolve(known, notify=bool(record.notify), active=not deleted)
                    if updated != known:
                        agreements.append(known.kid)
                    self._agreements[known.kid] = updated
                    if deleted:
                        events.append(
                            self._event(
                                f"avtalegiro-revoked-{known.kid}",
                                WebhookKind.MANDATE_REVOKED,
                                known.kid,
                                self._now(),
                            )
                        )
                continue
            for tx in assignment.transactions:
                if not isinstance(tx, netsgiro.Transaction):
                    continue
                amount = Money.from_minor(int(tx.amount * 100), "NOK")
                seen = f"{transmission.number}/{assignment.number}/{tx.number}/{int(tx.type)}"
                if any(c.paid_by == seen for c in self._claims.values()):
                    continue  # this file was read before
                reversal = tx.type in (
                    netsgiro.TransactionType.REVERSING_WITH_KID,
                    netsgiro.TransactionType.REVERSING_WITH_TEXT,
                )
                want = (
                    (ClaimStatus.PAID, ClaimStatus.FAILED)
                    if reversal
                    else (ClaimStatus.SUBMITTED, ClaimStatus.PAID)
                )
                claim = next(
                    (
                        c
                        for c in sorted(self._claims.values(), key=lambda c: c.due_on)
                        if c.kid == tx.kid
                        and c.amount == amount
                        and c.status in want
                        and (reversal or c.status is ClaimStatus.SUBMITTED)
                    ),
                    None,
                )
                if claim is None:
                    unknown += 1
                    continue
                if reversal:
                    self._claims[claim.reference] = attrs.evolve(claim, status=ClaimStatus.FAILED)
                    events.append(self._failed(claim, "reversed"))
                elif claim.status is ClaimStatus.SUBMITTED:
                    self._claims[claim.reference] = attrs.evolve(claim, status=ClaimStatus.PAID, paid_by=seen)
                    paid.append(claim.reference)
        self._save()
        return OcrResult(tuple(events), tuple(paid), tuple(agreements), unknown)

    def unpaid_claims(self) -> tuple[InboundEvent, ...]:
        """``payment.failed`` for each claim that will not be paid (unpaid, cancelled, reversed).

        Nets reports only payments, so a claim the payer's bank refused is known by its absence.
        A failed claim is reported again on every call under its one event id (intake takes it
        once), so calling this every run is safe.
        """
        today = self._now().astimezone(OSLO).date()
        events = []
        for c in sorted(self._claims.values(), key=lambda c: c.reference):
            if c.status is ClaimStatus.SUBMITTED and today > c.due_on + dt.timedelta(days=self._grace_days):
                c = attrs.evolve(c, status=ClaimStatus.FAILED)
                self._claims[c.reference] = c
            if c.status in (ClaimStatus.FAILED, ClaimStatus.CANCEL_REQUESTED):
                cancelled = c.status is ClaimStatus.CANCEL_REQUESTED or c.cancelled_in is not None
                events.append(self._failed(c, "cancelled" if cancelled else "not paid"))
        self._save()
        return tuple(events)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify and parse an intake event this provider made."""
        verify_webhook_signature(self._secret, headers, body, now=now)
        try:
            data = json.loads(body)
            amount = (
                Money.from_minor(int(data["amount_minor"]), str(data["currency"]))
                if "amount_minor" in data
                else None
            )
            return WebhookEvent(
                str(data["id"]),
                WebhookKind(data["type"]),
                data.get("reference"),
                dt.datetime.fromisoformat(data["occurred_at"]),
                amount,
                raw=data,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookSignatureInvalid(
                f"avtalegiro: a signed event that is not one ({type(exc).__name__})"
            ) from None
