"""The ``sepa`` payment provider: SEPA Core direct debits written as pain.008 files, returns read back.

The verbs of the provider contract, as a direct-debit creditor has them:

* :meth:`~SepaDirectDebit.store_mandate` confirms a mandate the creditor
  recorded with :meth:`~SepaDirectDebit.add_mandate` (the instrument's token is
  the mandate reference); :meth:`~SepaDirectDebit.remove_mandate` ends it;
* :meth:`~SepaDirectDebit.purchase` schedules a debit: it checks the mandate,
  chooses the due date (pre-notification period, TARGET days, the bank's
  cut-off), gives the sequence type, and sends the patient the
  pre-notification; the result's reference is the debit's ``EndToEndId``;
* :meth:`~SepaDirectDebit.write_collection_file` writes the pain.008 of the
  debits whose submission window is open, validated against its XSD;
* :meth:`~SepaDirectDebit.read_bank_file` reads a pain.002 or camt.054/053
  and returns the intake events the daily run already understands
  (``payment.failed`` for each rejected or returned debit, once per debit,
  ``mandate.revoked`` when the reason ends the mandate), signed with the
  intake secret; :meth:`~SepaDirectDebit.parse_webhook` verifies them.

Not offered, and declared so: authorize/capture/void (a debit is one step),
refunds (the patient's bank refunds a SEPA Core debit on request; a creditor
refund is a credit transfer), verify and payment links.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from carecollect.errors import ValidationError
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
from carecollect.policy.packs import PolicyPack
from carecollect.run.inbound import InboundEvent, InboundKind
from carecollect.timekeeping import require_aware
from lxml import etree  # type: ignore[import-untyped]

from .bank_files import BankReport, TransactionOutcome, TransactionReport, read_bank_file
from .errors import MandateError, SepaConfigurationError, SepaFileInvalid
from .mandates import SepaMandate
from .notices import pre_notification_text, return_notice_text
from .pain008 import (
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    Creditor,
    DebitInstruction,
    build_pain008,
    write_atomically,
)
from .state import Collection, CollectionStatus, SepaState
from .target_calendar import CollectionCalendar

__all__ = ["CAPABILITIES", "PROVIDER_NAME", "BankFileResult", "CollectionFile", "SepaDirectDebit"]

PROVIDER_NAME = "sepa"

CAPABILITIES = ProviderCapabilities(
    methods={PaymentMethod.DIRECT_DEBIT},
    currencies={"EUR"},
    mandates=True,
    webhooks=True,
)


@attrs.frozen
class CollectionFile:
    """A pain.008 file written.

    :param message_id: its ``MsgId``.
    :param path: where it was written.
    :param collections: the debits in it (``EndToEndId``).
    :param redated: debits whose cut-off had passed, given a new due date and announced again.
    """

    message_id: str
    path: Path
    collections: tuple[str, ...]
    redated: tuple[str, ...] = ()


@attrs.frozen
class BankFileResult:
    """What reading one bank file did.

    :param report: the file as read.
    :param events: intake events for the daily run (``InboundKind.PAYMENT``, plugin ``sepa``).
    :param changed: debits whose status changed now (empty when the file was read before).
    :param unknown: ``EndToEndId`` values the plugin never sent.
    :param receipts: the return notices handed to the channel.
    """

    report: BankReport
    events: tuple[InboundEvent, ...]
    changed: tuple[str, ...]
    unknown: tuple[str, ...]
    receipts: tuple[Receipt, ...] = ()

    def events_jsonl(self) -> str:
        """The events as ``carecollect run --events`` reads them (one JSON object per line)."""
        lines = [
            json.dumps(
                {
                    "kind": e.kind.value,
                    "plugin": e.plugin,
                    "body": e.body.decode("utf-8"),
                    "headers": dict(e.headers),
                }
            )
            for e in self.events
        ]
        return "".join(line + "\n" for line in lines)


def _setting(settings: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = settings.get(key, default)
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise SepaConfigurationError(
                f"sepa: setting {key!r} wants the environment variable {name}, which is not set"
            )
        value = os.environ[name]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SepaConfigurationError(f"sepa: setting {key!r} is required")
    return str(value)


_log = logging.getLogger("carecollect_sepa")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SepaDirectDebit(BasePaymentProvider):
    """The SEPA Core direct-debit provider.

    :param settings: ``creditor_name``, ``creditor_id``, ``creditor_iban``, ``creditor_bic`` (optional),
        ``folder`` (its book and files), ``intake_secret`` (signs its intake events; ``env:NAME``),
        ``contact`` (phone or e-mail shown in notices), ``pain_version`` (default ``pain.008.001.08``),
        ``lead_days`` (1), ``cut_off`` (``"15:00"``), ``time_zone`` (``Europe/Berlin``),
        ``notice_channel`` (a message-channel plugin name) with ``notice_channel_settings``,
        ``policy_pack`` (whose ``direct_debit.return_fee_allowed`` rule decides whether a bank's
        return charge is passed on; default: never), ``write_files_on_charge`` (``true``: every
        successful charge writes the pain.008 of the debits whose window is open, so a plain
        ``carecollect run`` leaves the file to upload; default ``false``: a job after the run
        calls :meth:`write_collection_file`, one file for all of the run's debits).
    :param clock: the current instant (the edge reads the clock; tests pass a fixed one).
    :param channel: the message channel for notices (instead of ``notice_channel``).
    :param pack: the policy pack (instead of ``policy_pack``, e.g. one with house rules).
    :raises SepaConfigurationError: a required setting is missing or invalid.
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        channel: MessageChannel | None = None,
        pack: PolicyPack | None = None,
    ) -> None:
        try:
            self._creditor = Creditor.from_settings(
                _setting(settings, "creditor_name"),
                _setting(settings, "creditor_id"),
                _setting(settings, "creditor_iban"),
                str(settings.get("creditor_bic") or "") or None,
            )
            self._calendar = CollectionCalendar(
                lead_days=int(settings.get("lead_days", 1)),
                cut_off=dt.time.fromisoformat(str(settings.get("cut_off", "15:00"))),
                zone=str(settings.get("time_zone", "Europe/Berlin")),
            )
        except ValidationError as exc:
            raise SepaConfigurationError(f"sepa: {exc}") from None
        except ValueError:
            raise SepaConfigurationError(
                "sepa: lead_days must be a number and cut_off a time (HH:MM)"
            ) from None
        self._secret = _setting(settings, "intake_secret").encode()
        self._folder = Path(_setting(settings, "folder"))
        self._contact = _setting(settings, "contact")
        self._version = str(settings.get("pain_version", DEFAULT_VERSION))
        if self._version not in SUPPORTED_VERSIONS:
            raise SepaConfigurationError(f"sepa: pain_version must be one of {', '.join(SUPPORTED_VERSIONS)}")
        self._pack: PolicyPack | None = pack
        if pack is None and settings.get("policy_pack"):
            from carecollect.policy.packs import get_pack

            self._pack = get_pack(str(settings["policy_pack"]))
        self._clock = clock
        self._channel = channel
        self._channel_name = settings.get("notice_channel")
        self._channel_settings = dict(settings.get("notice_channel_settings") or {})
        on_charge = settings.get("write_files_on_charge", False)
        if on_charge not in (True, False, "true", "false"):
            raise SepaConfigurationError("sepa: write_files_on_charge must be true or false")
        self._write_on_charge = on_charge in (True, "true")
        self._state = SepaState.load(self._folder / "sepa-state.json")
        self._write_missing_files()

    def __repr__(self) -> str:
        return f"SepaDirectDebit(creditor_id={self._creditor.creditor_id!r}, folder={self._folder.name!r})"

    # -- the clock and the channel -----------------------------------------------------------------

    def _now(self) -> dt.datetime:
        now = self._clock()
        require_aware(now, "sepa", "clock")
        return now

    def _today(self) -> dt.date:
        return self._now().astimezone(self._calendar.tz).date()

    def _notice_channel(self) -> MessageChannel | None:
        if self._channel is None and self._channel_name:
            from carecollect.plugins.manager import make_plugin_manager

            desc = make_plugin_manager().message_channel(str(self._channel_name))
            self._channel = desc.create(self._channel_settings)
        return self._channel

    def _send(self, message_id: str, mandate: SepaMandate, subject: str, body: str) -> Receipt | None:
        channel = self._notice_channel()
        if channel is None or mandate.notice_address is None:
            return None
        return channel.send(
            OutgoingMessage(
                id=message_id,
                channel=mandate.notice_channel,
                recipient=mandate.notice_address,
                body=body,
                subject=subject,
                language=mandate.language,
                account_id=mandate.account_id,
            )
        )

    # -- mandates ------------------------------------------------------------------------------------

    @property
    def creditor(self) -> Creditor:
        """The creditor (name, identifier, account)."""
        return self._creditor

    @property
    def calendar(self) -> CollectionCalendar:
        """The bank's submission rules."""
        return self._calendar

    def add_mandate(self, mandate: SepaMandate) -> SepaMandate:
        """Record a signed mandate (the same mandate again changes nothing).

        :raises ValidationError: it names another creditor identifier.
        :raises MandateError: the reference is taken by a different mandate.
        """
        if mandate.creditor_id != self._creditor.creditor_id:
            raise ValidationError(
                f"SepaMandate {mandate.reference}", "creditor_id", "is not this creditor's identifier"
            )
        known = self._state.mandates.get(mandate.reference)
        if known is not None and known != mandate:
            raise MandateError(f"SepaMandate {mandate.reference}", "recorded", "record a different mandate")
        self._state.mandates[mandate.reference] = mandate
        self._state.save()
        return mandate

    def mandate(self, reference: str) -> SepaMandate:
        """The mandate ``reference`` as it stands.

        :raises KeyError: unknown reference.
        """
        mandate = self._state.mandate(reference)
        if mandate is None:
            raise KeyError(reference)
        return mandate

    def amend_mandate(self, mandate_reference: str, **changes: str) -> SepaMandate:
        """Change a mandate (see :meth:`SepaMandate.amend`); sent with its next collection.

        A new reference replaces the old one everywhere in the book; the old one keeps working as
        an instrument token (the plan's stored mandate may still name it).
        """
        mandate_reference = self.mandate(mandate_reference).reference
        mandate = self._state.mandates[mandate_reference].amend(on=self._today(), **changes)
        if mandate.reference != mandate_reference:
            del self._state.mandates[mandate_reference]
            self._state.aliases[mandate_reference] = mandate.reference
            for old, new in list(self._state.aliases.items()):
                if new == mandate_reference:
                    self._state.aliases[old] = mandate.reference
            for key, c in list(self._state.collections.items()):
                if c.mandate_reference == mandate_reference:
                    self._state.collections[key] = attrs.evolve(c, mandate_reference=mandate.reference)
        self._state.mandates[mandate.reference] = mandate
        self._state.save()
        return mandate

    def request_final(self, reference: str) -> SepaMandate:
        """Mark the next collection under ``reference`` as the last one (``FNAL``)."""
        mandate = self.mandate(reference).request_final()
        self._state.mandates[mandate.reference] = mandate
        self._state.save()
        return mandate

    def collection(self, end_to_end_id: str) -> Collection:
        """The debit ``end_to_end_id``.

        :raises KeyError: unknown reference.
        """
        return self._state.collections[end_to_end_id]

    # -- idempotency ---------------------------------------------------------------------------------

    def _once(self, key: str, request: list[Any], action: Callable[[], PaymentResult]) -> PaymentResult:
        require_idempotency_key(key, str(request[0]))
        seen = self._state.keys.get(key)
        if seen is not None:
            if seen[0] != request:
                return PaymentResult.failed(
                    PaymentErrorCode.IDEMPOTENCY_CONFLICT,
                    "this idempotency key was used for a different request",
                )
            r = seen[1]
            amount = Money.from_minor(r["amount"][0], r["amount"][1]) if r.get("amount") else None
            if r["success"]:
                return PaymentResult.ok(r["reference"], amount)
            return PaymentResult.failed(PaymentErrorCode(r["code"]), r["message"], amount=amount)
        result = action()
        self._state.keys[key] = [
            request,
            {
                "success": result.success,
                "reference": result.reference,
                "code": result.error_code.value if result.error_code else None,
                "message": result.message,
                "amount": [result.amount.minor_units, result.amount.currency]
                if result.amount is not None
                else None,
            },
        ]
        self._state.save()
        return result

    def _refusal(self, mandate: SepaMandate | None, account_id: str, on: dt.date) -> PaymentResult | None:
        if mandate is None:
            return PaymentResult.failed(PaymentErrorCode.INVALID_INSTRUMENT, "no mandate with this reference")
        if mandate.account_id != account_id:
            return PaymentResult.failed(
                PaymentErrorCode.INVALID_INSTRUMENT, "the mandate belongs to another account"
            )
        problem = mandate.problem(on)
        if problem == "revoked":
            return PaymentResult.failed(PaymentErrorCode.MANDATE_REVOKED, "the mandate was revoked")
        if problem is not None:
            return PaymentResult.failed(PaymentErrorCode.EXPIRED_INSTRUMENT, f"the mandate is {problem}")
        return None

    # -- verbs ---------------------------------------------------------------------------------------

    def store_mandate(
        self, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Confirm a recorded mandate for ``account_id``; the result's reference is the mandate reference."""

        def act() -> PaymentResult:
            if instrument.method is not PaymentMethod.DIRECT_DEBIT:
                return PaymentResult.failed(
                    PaymentErrorCode.METHOD_NOT_SUPPORTED, "SEPA takes direct-debit mandates"
                )
            mandate = self._state.mandate(instrument.token)
            refusal = self._refusal(mandate, account_id, self._today())
            if refusal is not None or mandate is None:
                return refusal or PaymentResult.failed(PaymentErrorCode.INVALID_INSTRUMENT)
            return PaymentResult.ok(mandate.reference)

        return self._once(idempotency_key, ["store_mandate", instrument.token, account_id], act)

    def remove_mandate(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """End the mandate ``reference`` today (debits already in a file still go)."""

        def act() -> PaymentResult:
            mandate = self._state.mandate(reference)
            if mandate is None:
                return PaymentResult.failed(PaymentErrorCode.NOT_FOUND, "no mandate with this reference")
            self._state.mandates[mandate.reference] = mandate.revoke(self._today())
            return PaymentResult.ok(reference)

        return self._once(idempotency_key, ["remove_mandate", reference], act)

    def purchase(
        self, amount: Money, instrument: Instrument, *, idempotency_key: str, account_id: str
    ) -> PaymentResult:
        """Schedule a debit of ``amount`` under the mandate ``instrument.token`` and announce it.

        The due date is the earliest the mandate's pre-notification period, the TARGET calendar and
        the bank's cut-off allow. The result's reference is the debit's ``EndToEndId``.
        """
        require_idempotency_key(idempotency_key, "purchase")

        def act() -> PaymentResult:
            if instrument.method is not PaymentMethod.DIRECT_DEBIT:
                return PaymentResult.failed(PaymentErrorCode.METHOD_NOT_SUPPORTED, "SEPA takes direct debits")
            if amount.currency != "EUR":
                return PaymentResult.failed(PaymentErrorCode.CURRENCY_NOT_SUPPORTED, "SEPA debits are in EUR")
            if not amount.is_positive():
                return PaymentResult.failed(PaymentErrorCode.DECLINED, "nothing to collect")
            now = self._now()
            mandate = self._state.mandate(instrument.token)
            due = self._calendar.earliest_due_date(
                now, notice_days=mandate.pre_notification_days if mandate else 14
            )
            refusal = self._refusal(mandate, account_id, due)
            if refusal is not None or mandate is None:
                return refusal or PaymentResult.failed(PaymentErrorCode.INVALID_INSTRUMENT)
            e2e = f"CC{now.astimezone(dt.UTC):%y%m%d}{self._state.next_number():07d}"
            sequence = mandate.next_sequence()
            self._state.mandates[mandate.reference] = mandate.record_collection(due)
            # the mandate's pending amendment goes with this, its next collection
            self._state.collections[e2e] = Collection(
                e2e, account_id, mandate.reference, amount, due, sequence, now, amendment=mandate.amendment
            )
            self._state.save()
            self._announce(self._state.collections[e2e])
            return PaymentResult.ok(e2e, amount, raw={"due_on": due.isoformat(), "sequence": sequence.value})

        result = self._once(idempotency_key, ["purchase", instrument.token, account_id, str(amount)], act)
        if result.success and self._write_on_charge:
            try:
                self.write_collection_file()
            except SepaFileInvalid as exc:  # the debit stays scheduled; the next call writes it
                _log.error("sepa: the collection file was not written: %s", exc)
        return result

    def _announce(self, collection: Collection) -> Receipt | None:
        mandate = self._state.mandates[collection.mandate_reference]
        text = pre_notification_text(
            mandate.language,
            creditor=self._creditor.name,
            creditor_id=self._creditor.creditor_id,
            amount=collection.amount,
            due_on=collection.due_on,
            mandate_reference=mandate.reference,
            contact=self._contact,
        )
        suffix = f"-{collection.notice_round}" if collection.notice_round > 1 else ""
        return self._send(f"SEPA-PN-{collection.end_to_end_id}{suffix}", mandate, text.subject, text.body)

    # -- collection files ----------------------------------------------------------------------------

    def _outgoing(self, message_id: str) -> Path:
        return self._folder / "outgoing" / f"{message_id}.xml"

    def _build(self, message_id: str, created_at: dt.datetime) -> bytes:
        items = sorted(
            (c for c in self._state.collections.values() if c.file_id == message_id),
            key=lambda c: c.end_to_end_id,
        )
        instructions = [
            DebitInstruction(
                c.end_to_end_id,
                c.amount,
                c.due_on,
                c.sequence,
                self._file_mandate(c),
                f"Konto {c.account_id} / {c.end_to_end_id}",
            )
            for c in items
        ]
        return build_pain008(
            self._creditor, instructions, message_id=message_id, created_at=created_at, version=self._version
        )

    def _file_mandate(self, collection: Collection) -> SepaMandate:
        mandate = self._state.mandates[collection.mandate_reference]
        return attrs.evolve(mandate, amendment=collection.amendment)

    def write_collection_file(self) -> CollectionFile | None:
        """Write the pain.008 of every scheduled debit whose submission window is open now.

        A debit whose cut-off passed without a file is given the next possible due date and
        announced again. The book records the file as pending before it is written and as written
        after; a pending file (a crash in between) is written again, identical, when the provider
        starts. A written file is never written again: move it away once uploaded.

        :returns: the file, or ``None`` when no debit is ready.
        :raises SepaFileInvalid: the document does not validate (nothing is written or recorded).
        """
        now = self._now()
        redated: list[str] = []
        for key, c in list(self._state.collections.items()):
            if c.status is CollectionStatus.SCHEDULED and now > self._calendar.submission_deadline(c.due_on):
                mandate = self._state.mandates[c.mandate_reference]
                due = self._calendar.earliest_due_date(now, notice_days=mandate.pre_notification_days)
                self._state.collections[key] = attrs.evolve(
                    c, due_on=due, notified_at=now, notice_round=c.notice_round + 1
                )
                redated.append(key)
                self._announce(self._state.collections[key])
        ready = sorted(
            key
            for key, c in self._state.collections.items()
            if c.status is CollectionStatus.SCHEDULED and self._calendar.may_submit(c.due_on, now)
        )
        if not ready:
            self._state.save()
            return None
        message_id = f"CC-{now.astimezone(dt.UTC):%Y%m%d%H%M%S}-{self._state.next_number():05d}"
        for key in ready:
            c = self._state.collections[key]
            self._state.collections[key] = attrs.evolve(
                c, status=CollectionStatus.SUBMITTED, file_id=message_id
            )
        created = now.replace(microsecond=0)
        try:
            document = self._build(message_id, created)
        except Exception:
            self._state = SepaState.load(self._state.path)  # nothing recorded
            raise
        root = etree.fromstring(document)
        for info in (e for e in root.iter() if etree.QName(e).localname == "PmtInf"):
            batch = next(e.text for e in info.iter() if etree.QName(e).localname == "PmtInfId")
            for e2e in (e.text for e in info.iter() if etree.QName(e).localname == "EndToEndId"):
                self._state.collections[str(e2e)] = attrs.evolve(
                    self._state.collections[str(e2e)], batch_id=batch
                )
        # recorded as pending first: a crash before the file is complete leaves a pending entry,
        # and the next start writes the same document again; once written, never again (the
        # operator may move or delete an uploaded file without it coming back)
        self._state.files[message_id] = f"pending|{created.isoformat()}"
        self._state.save()
        write_atomically(self._outgoing(message_id), document)
        self._state.files[message_id] = f"written|{created.isoformat()}"
        self._state.save()
        return CollectionFile(message_id, self._outgoing(message_id), tuple(ready), tuple(redated))

    def _write_missing_files(self) -> None:
        for message_id, entry in list(self._state.files.items()):
            status, created = entry.split("|", 1)
            if status == "pending":
                write_atomically(
                    self._outgoing(message_id), self._build(message_id, dt.datetime.fromisoformat(created))
                )
                self._state.files[message_id] = f"written|{created}"
                self._state.save()

    # -- bank files and intake events ----------------------------------------------------------------

    def _event(
        self, event_id: str, kind: WebhookKind, reference: str, at: dt.datetime, **extra: Any
    ) -> bytes:
        body = {
            "id": event_id,
            "type": kind.value,
            "reference": reference,
            "occurred_at": at.isoformat(),
            **extra,
        }
        return json.dumps(body, sort_keys=True).encode("utf-8")

    def signed_event(self, body: bytes, *, at: dt.datetime) -> InboundEvent:
        """An intake event carrying ``body``, signed with the intake secret at ``at``."""
        return InboundEvent(InboundKind.PAYMENT, PROVIDER_NAME, body, sign_webhook(self._secret, body, at=at))

    def _fee_allowed(self, on: dt.date) -> bool:
        if self._pack is None:
            return False
        return self._pack.get("direct_debit.return_fee_allowed", False, on=on) is True

    def read_bank_file(self, data: bytes, *, name: str = "bank file") -> BankFileResult:
        """Apply a pain.002, camt.054 or camt.053 and return the intake events it gives.

        Each rejected or returned debit gives one ``payment.failed`` event whose id is fixed by
        the debit (``sepa-failed-<EndToEndId>``): reading the same file twice, or a return reported
        in two files, gives the same event, which intake takes once. A reason that ends the mandate
        (AC01, AC04, AC06, AG01, MD01, MD07, SL01...) also gives ``mandate.revoked``. The patient
        gets a friendly notice once per debit (never for a technical fault or after a death); a
        bank's return charge is passed on only when the configured policy pack allows it.

        :raises BankFileError: the file cannot be read (nothing is applied).
        """
        now = self._now()
        report = read_bank_file(data, name=name, zone=self._calendar.tz)
        events: list[InboundEvent] = []
        changed: list[str] = []
        unknown: list[str] = []
        receipts: list[Receipt] = []
        for tx in report.transactions:
            if tx.outcome is TransactionOutcome.SETTLED:
                changed.extend(self._settle(tx))
                continue
            if tx.end_to_end_id is None:  # a rejected batch or file: each of its debits
                keys = sorted(
                    k
                    for k, c in self._state.collections.items()
                    if tx.batch_id is not None and tx.batch_id in (c.file_id, c.batch_id)
                )
                if not keys:
                    unknown.append(str(tx.batch_id))
                singles = [attrs.evolve(tx, end_to_end_id=k) for k in keys]
            else:
                singles = [tx]
            for single in singles:
                self._apply_failure(single, now, events, changed, unknown, receipts)
        self._state.save()
        return BankFileResult(report, tuple(events), tuple(changed), tuple(unknown), tuple(receipts))

    def _apply_failure(
        self,
        tx: TransactionReport,
        now: dt.datetime,
        events: list[InboundEvent],
        changed: list[str],
        unknown: list[str],
        receipts: list[Receipt],
    ) -> None:
        """One rejected or returned debit: its events always, its changes the first time only."""
        collection = self._state.collections.get(tx.end_to_end_id or "")
        if collection is None:
            unknown.append(str(tx.end_to_end_id))
            return
        assert tx.reason is not None
        key = collection.end_to_end_id
        fee = tx.charges if tx.charges is not None and self._fee_allowed(tx.booked_on) else None
        extra: dict[str, Any] = {
            "amount_minor": collection.amount.minor_units,
            "currency": collection.amount.currency,
            "method": PaymentMethod.DIRECT_DEBIT.value,
            "reason": tx.reason.code,
            "outcome": tx.outcome.value,
        }
        if fee is not None:
            extra |= {"fee_minor": fee.minor_units, "fee_currency": fee.currency}
        occurred = dt.datetime.combine(collection.due_on, dt.time(12), tzinfo=self._calendar.tz)
        body = self._event(f"sepa-failed-{key}", WebhookKind.PAYMENT_FAILED, key, occurred, **extra)
        events.append(self.signed_event(body, at=now))
        mandate = self._state.mandates[collection.mandate_reference]
        if tx.reason.ends_mandate:
            body = self._event(
                f"sepa-revoked-{mandate.reference}",
                WebhookKind.MANDATE_REVOKED,
                mandate.reference,
                occurred,
            )
            events.append(self.signed_event(body, at=now))
        if collection.status.failed:
            return  # applied before: the book, the mandate and the patient are left as they are
        status = (
            CollectionStatus.REJECTED
            if tx.outcome is TransactionOutcome.REJECTED
            else CollectionStatus.RETURNED
        )
        self._state.collections[key] = attrs.evolve(collection, status=status, reason=tx.reason.code)
        if status is CollectionStatus.REJECTED:
            mandate = mandate.undo_rejected_collection(collection.sequence, collection.due_on)
        if tx.reason.ends_mandate:
            mandate = mandate.revoke(tx.booked_on)
        self._state.mandates[mandate.reference] = mandate
        changed.append(key)
        if tx.reason.patient_is_told:
            text = return_notice_text(
                mandate.language,
                category=tx.reason.category,
                amount=collection.amount,
                due_on=collection.due_on,
                contact=self._contact,
                fee=fee,
            )
            receipt = self._send(f"SEPA-RET-{key}", mandate, text.subject, text.body)
            if receipt is not None:
                receipts.append(receipt)

    def _settle(self, tx: TransactionReport) -> Iterable[str]:
        done = []
        for key, c in self._state.collections.items():
            if c.status is not CollectionStatus.SUBMITTED:
                continue
            if (tx.end_to_end_id and key == tx.end_to_end_id) or (tx.batch_id and c.batch_id == tx.batch_id):
                self._state.collections[key] = attrs.evolve(c, status=CollectionStatus.SETTLED)
                done.append(key)
        return done

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> WebhookEvent:
        """Verify and parse an intake event made by :meth:`read_bank_file`.

        :raises WebhookSignatureInvalid: not signed with this provider's intake secret.
        :raises WebhookExpired: signed outside the tolerance (read the bank file again: it is idempotent).
        """
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
                f"sepa: a signed event that is not one ({type(exc).__name__})"
            ) from None
