"""Reading what the bank sends back: pain.002 status reports and camt.054 / camt.053 debit notifications.

* A **pain.002** (customer payment status report) rejects collections before
  settlement: ``TxSts`` ``RJCT`` with a reason code in ``StsRsnInf/Rsn/Cd``.
* A **camt.054** (debit/credit notification) or **camt.053** (statement)
  books returns after settlement: a debit entry (``CdtDbtInd`` ``DBIT``) of
  bank transaction code ``PMNT/RDDT/UPDD`` (or with ``RvslInd`` true) whose
  transaction details name the original ``EndToEndId`` and carry a return
  reason in ``RtrInf/Rsn/Cd``. Credit entries of collections (``RDDT/ESDD``,
  ``BBDD``) mark them settled.

Parsed with :mod:`lxml` (no entity expansion, no network); namespaces of any
version of these messages are accepted, since only stable element names are
read.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator

import attrs
from carecollect.money import Money
from lxml import etree  # type: ignore[import-untyped]

from .errors import BankFileError

__all__ = [
    "BankFileKind",
    "BankReport",
    "ReturnCategory",
    "ReturnReason",
    "TransactionOutcome",
    "TransactionReport",
    "read_bank_file",
    "return_reason",
]


class BankFileKind(enum.Enum):
    """Which message a bank file is."""

    STATUS_REPORT = "pain.002"
    DEBIT_CREDIT_NOTIFICATION = "camt.054"
    STATEMENT = "camt.053"


class TransactionOutcome(enum.Enum):
    """What the bank reported for one collection."""

    #: Rejected before settlement (pain.002 ``RJCT``).
    REJECTED = "rejected"
    #: Returned after settlement (camt.054/053 debit entry).
    RETURNED = "returned"
    #: Credited to the creditor (camt.054/053 credit entry).
    SETTLED = "settled"


class ReturnCategory(enum.Enum):
    """What a reason code means for the patient, the mandate and the next attempt."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: The account is closed, blocked, wrong or does not allow debits: the mandate cannot be used again.
    ACCOUNT_UNUSABLE = "account_unusable"
    #: The bank has no valid mandate on file: the mandate cannot be used again.
    NO_MANDATE = "no_mandate"
    #: The patient refused this debit or asked their bank for the money back.
    DEBTOR_REFUSED = "debtor_refused"
    #: The account holder has died: no message goes to the patient; staff take over.
    DECEASED = "deceased"
    #: A technical or formal problem on the creditor's side: fix and collect again, nobody is told.
    TECHNICAL = "technical"
    OTHER = "other"


@attrs.frozen
class ReturnReason:
    """An ISO 20022 external status/return reason code and what it means here.

    :param code: the four-character code (``AM04``).
    :param category: :class:`ReturnCategory`.
    :param description: the code's name in the ISO 20022 external code list.
    """

    code: str
    category: ReturnCategory
    description: str

    @property
    def ends_mandate(self) -> bool:
        """Whether the mandate cannot be used for another collection."""
        return self.category in (
            ReturnCategory.ACCOUNT_UNUSABLE,
            ReturnCategory.NO_MANDATE,
            ReturnCategory.DECEASED,
        )

    @property
    def patient_is_told(self) -> bool:
        """Whether the patient gets a message about it (not for a technical fault, nor after a death)."""
        return self.category not in (ReturnCategory.TECHNICAL, ReturnCategory.DECEASED)


_C = ReturnCategory
#: The codes of the ISO 20022 ExternalStatusReason1Code / ExternalReturnReason1Code lists used by SEPA Core.
_REASONS = {
    r.code: r
    for r in (
        ReturnReason("AC01", _C.ACCOUNT_UNUSABLE, "Incorrect account number"),
        ReturnReason("AC04", _C.ACCOUNT_UNUSABLE, "Closed account number"),
        ReturnReason("AC06", _C.ACCOUNT_UNUSABLE, "Blocked account"),
        ReturnReason("AC13", _C.ACCOUNT_UNUSABLE, "Invalid debtor account type"),
        ReturnReason("AG01", _C.ACCOUNT_UNUSABLE, "Transaction forbidden"),
        ReturnReason("AG02", _C.TECHNICAL, "Invalid bank operation code"),
        ReturnReason("AM04", _C.INSUFFICIENT_FUNDS, "Insufficient funds"),
        ReturnReason("AM05", _C.TECHNICAL, "Duplication"),
        ReturnReason("BE05", _C.TECHNICAL, "Unrecognised initiating party"),
        ReturnReason("CNOR", _C.TECHNICAL, "Creditor bank is not registered"),
        ReturnReason("DNOR", _C.TECHNICAL, "Debtor bank is not registered"),
        ReturnReason("FF01", _C.TECHNICAL, "Invalid file format"),
        ReturnReason("MD01", _C.NO_MANDATE, "No mandate"),
        ReturnReason("MD02", _C.TECHNICAL, "Missing mandatory mandate information"),
        ReturnReason("MD06", _C.DEBTOR_REFUSED, "Refund request by end customer"),
        ReturnReason("MD07", _C.DECEASED, "End customer deceased"),
        ReturnReason("MS02", _C.DEBTOR_REFUSED, "Not specified reason customer generated"),
        ReturnReason("MS03", _C.OTHER, "Not specified reason agent generated"),
        ReturnReason("RC01", _C.TECHNICAL, "Bank identifier incorrect"),
        ReturnReason("RR01", _C.TECHNICAL, "Missing debtor account or identification"),
        ReturnReason("RR02", _C.TECHNICAL, "Missing debtor name or address"),
        ReturnReason("RR03", _C.TECHNICAL, "Missing creditor name or address"),
        ReturnReason("RR04", _C.TECHNICAL, "Regulatory reason"),
        ReturnReason("SL01", _C.ACCOUNT_UNUSABLE, "Specific service offered by debtor agent"),
    )
}


def return_reason(code: str | None) -> ReturnReason:
    """The meaning of reason ``code`` (an unknown or missing code is :attr:`ReturnCategory.OTHER`).

    >>> return_reason("AM04").category, return_reason("MD01").ends_mandate
    (<ReturnCategory.INSUFFICIENT_FUNDS: 'insufficient_funds'>, True)
    """
    key = (code or "").strip().upper()
    return _REASONS.get(key) or ReturnReason(
        key or "NARR", ReturnCategory.OTHER, "Reason not in the code list"
    )


@attrs.frozen
class TransactionReport:
    """What the bank said about one collection.

    :param end_to_end_id: the collection's ``EndToEndId`` (the provider reference).
    :param outcome: :class:`TransactionOutcome`.
    :param reason: :class:`ReturnReason` (``None`` for a settlement).
    :param amount: the amount concerned, when the file gives it.
    :param charges: the bank's charges for a return, when the file gives them.
    :param booked_on: booking or report date.
    :param mandate_reference: ``MndtId``, when the file gives it.
    :param batch_id: without an ``end_to_end_id``: the ``PmtInfId`` of a batch (a batch-booked
        settlement, a rejected batch) or the ``MsgId`` of a whole rejected file; it concerns every
        debit in it.
    """

    end_to_end_id: str | None
    outcome: TransactionOutcome
    reason: ReturnReason | None
    amount: Money | None
    booked_on: dt.date
    charges: Money | None = None
    mandate_reference: str | None = None
    batch_id: str | None = None


@attrs.frozen
class BankReport:
    """One bank file read.

    :param kind: :class:`BankFileKind`.
    :param message_id: the file's ``GrpHdr/MsgId``.
    :param created_at: the file's ``GrpHdr/CreDtTm`` (aware; a time without offset is read in ``zone``).
    :param original_message_id: for a pain.002, the ``MsgId`` of the pain.008 it answers.
    :param transactions: :class:`TransactionReport` per collection, in file order.
    """

    kind: BankFileKind
    message_id: str
    created_at: dt.datetime
    transactions: tuple[TransactionReport, ...]
    original_message_id: str | None = None


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(node: etree._Element, *path: str) -> etree._Element | None:
    current: etree._Element | None = node
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if _local(c.tag) == name), None)
    return current


def _text(node: etree._Element, *path: str) -> str | None:
    found = _child(node, *path)
    return found.text.strip() if found is not None and found.text else None


def _all(node: etree._Element, name: str) -> Iterator[etree._Element]:
    return (e for e in node.iter() if _local(e.tag) == name)


def _money(node: etree._Element | None, where: str) -> Money | None:
    if node is None or not node.text:
        return None
    currency = node.get("Ccy")
    if not currency:
        raise BankFileError(where, "Ccy", "an amount without its currency")
    try:
        return Money(node.text.strip(), currency)
    except (ValueError, ArithmeticError) as exc:
        raise BankFileError(where, "Amt", f"not an amount ({type(exc).__name__})") from None


def _date(text: str | None, where: str, field: str) -> dt.date:
    if not text:
        raise BankFileError(where, field, "a date is required")
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise BankFileError(where, field, "not an ISO 8601 date") from None


def _datetime(text: str | None, where: str, zone: dt.tzinfo) -> dt.datetime:
    if not text:
        raise BankFileError(where, "CreDtTm", "the creation time is required")
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BankFileError(where, "CreDtTm", "not an ISO 8601 date-time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _pain002(root: etree._Element, where: str, zone: dt.tzinfo) -> BankReport:
    header = _child(root, "GrpHdr")
    if header is None:
        raise BankFileError(where, "GrpHdr", "missing")
    message_id = _text(header, "MsgId") or ""
    created = _datetime(_text(header, "CreDtTm"), where, zone)
    original = _text(root, "OrgnlGrpInfAndSts", "OrgnlMsgId")
    group_status = _text(root, "OrgnlGrpInfAndSts", "GrpSts")
    out: list[TransactionReport] = []
    group_code = _text(root, "OrgnlGrpInfAndSts", "StsRsnInf", "Rsn", "Cd")
    infos = list(_all(root, "OrgnlPmtInfAndSts"))
    if group_status == "RJCT" and not any(_local(c.tag) == "TxInfAndSts" for i in infos for c in i):
        # the whole file was refused (a format or authorisation fault): every debit in it failed
        out.append(
            TransactionReport(
                None, TransactionOutcome.REJECTED, return_reason(group_code), None, created.date(),
                batch_id=original,
            )
        )  # fmt: skip
    for info in infos:
        batch_status = _text(info, "PmtInfSts")
        batch_code = _text(info, "StsRsnInf", "Rsn", "Cd") or group_code
        if batch_status == "RJCT" and not any(_local(c.tag) == "TxInfAndSts" for c in info):
            out.append(
                TransactionReport(
                    None, TransactionOutcome.REJECTED, return_reason(batch_code), None, created.date(),
                    batch_id=_text(info, "OrgnlPmtInfId"),
                )
            )  # fmt: skip
        for tx in (c for c in info if _local(c.tag) == "TxInfAndSts"):
            status = _text(tx, "TxSts") or batch_status or group_status
            if status != "RJCT":
                continue
            e2e = _text(tx, "OrgnlEndToEndId")
            if not e2e:
                raise BankFileError(
                    where, "OrgnlEndToEndId", "a rejected transaction must name its collection"
                )
            code = _text(tx, "StsRsnInf", "Rsn", "Cd") or batch_code
            ref = _child(tx, "OrgnlTxRef")
            amount = _money(_child(ref, "Amt", "InstdAmt") if ref is not None else None, where)
            due = _text(ref, "ReqdColltnDt") if ref is not None else None
            mandate = _text(ref, "MndtRltdInf", "MndtId") if ref is not None else None
            out.append(
                TransactionReport(
                    e2e,
                    TransactionOutcome.REJECTED,
                    return_reason(code),
                    amount,
                    _date(due, where, "ReqdColltnDt") if due else created.date(),
                    mandate_reference=mandate,
                )
            )
    return BankReport(BankFileKind.STATUS_REPORT, message_id, created, tuple(out), original)


def _is_direct_debit(entry: etree._Element, family: tuple[str, ...]) -> bool:
    domain = _child(entry, "BkTxCd", "Domn")
    if domain is None:
        return False
    return (
        _text(domain, "Cd") == "PMNT"
        and _text(domain, "Fmly", "Cd") == "RDDT"
        and (_text(domain, "Fmly", "SubFmlyCd") in family)
    )


def _camt(root: etree._Element, where: str, zone: dt.tzinfo, kind: BankFileKind) -> BankReport:
    header = _child(root, "GrpHdr")
    if header is None:
        raise BankFileError(where, "GrpHdr", "missing")
    message_id = _text(header, "MsgId") or ""
    created = _datetime(_text(header, "CreDtTm"), where, zone)
    out: list[TransactionReport] = []
    for entry in _all(root, "Ntry"):
        if (_text(entry, "Sts") or _text(entry, "Sts", "Cd")) not in ("BOOK", None):
            continue  # pending or information-only entries are read when they are booked
        indicator = _text(entry, "CdtDbtInd")
        reversal = _text(entry, "RvslInd") == "true"
        booked = _date(_text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm"), where, "BookgDt")
        returned = indicator == "DBIT" and (reversal or _is_direct_debit(entry, ("UPDD", "PRDD")))
        settled = indicator == "CRDT" and not reversal and _is_direct_debit(entry, ("ESDD", "BBDD", "PMDD"))
        if not (returned or settled):
            continue
        details = list(_all(entry, "TxDtls"))
        if settled and not details:
            batch = _text(entry, "NtryDtls", "Btch", "PmtInfId")
            if batch:
                out.append(
                    TransactionReport(None, TransactionOutcome.SETTLED, None, None, booked, batch_id=batch)
                )
            continue
        for tx in details:
            e2e = _text(tx, "Refs", "EndToEndId")
            if not e2e or e2e == "NOTPROVIDED":
                raise BankFileError(where, "EndToEndId", "a direct-debit entry must name its collection")
            amount_node = _child(tx, "AmtDtls", "TxAmt", "Amt")
            amount = _money(amount_node if amount_node is not None else _child(tx, "Amt"), where)
            if amount is None and len(details) == 1:
                amount = _money(_child(entry, "Amt"), where)
            charges: Money | None = None
            # each charge's Amt (camt.054.001.02: Chrgs/Amt; later versions: Chrgs/Rcrd/Amt), not the
            # TtlChrgsAndTaxAmt that sums them
            for value in (e for charge in _all(tx, "Chrgs") for e in _all(charge, "Amt")):
                money = _money(value, where)
                if money is not None:
                    charges = money if charges is None else charges + money
            mandate = _text(tx, "Refs", "MndtId")
            if returned:
                code = _text(tx, "RtrInf", "Rsn", "Cd")
                out.append(
                    TransactionReport(
                        e2e,
                        TransactionOutcome.RETURNED,
                        return_reason(code),
                        amount,
                        booked,
                        charges,
                        mandate,
                    )
                )
            else:
                out.append(
                    TransactionReport(e2e, TransactionOutcome.SETTLED, None, amount, booked, None, mandate)
                )
    return BankReport(kind, message_id, created, tuple(out))


_ROOTS = {
    "CstmrPmtStsRpt": BankFileKind.STATUS_REPORT,
    "BkToCstmrDbtCdtNtfctn": BankFileKind.DEBIT_CREDIT_NOTIFICATION,
    "BkToCstmrStmt": BankFileKind.STATEMENT,
}


def read_bank_file(data: bytes, *, name: str = "bank file", zone: dt.tzinfo = dt.UTC) -> BankReport:
    """Read a pain.002, camt.054 or camt.053 document.

    :param data: the file's bytes.
    :param name: the file's name, for error messages.
    :param zone: the zone of date-times written without an offset (the bank's).
    :raises BankFileError: not XML, not one of these messages, or a required element missing
        (named by file and element; nothing is applied).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        document = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise BankFileError(name, "document", f"not well-formed XML ({exc.msg})") from None
    body = next((c for c in document if _local(c.tag) in _ROOTS), None)
    if body is None:
        raise BankFileError(name, "document", "not a pain.002, camt.054 or camt.053 message")
    kind = _ROOTS[_local(body.tag)]
    if kind is BankFileKind.STATUS_REPORT:
        return _pain002(body, name, zone)
    return _camt(body, name, zone, kind)
