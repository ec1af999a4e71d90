"""Collection files: ISO 20022 pain.008 (direct debit initiation), validated against the official XSD.

The document is built with :mod:`sepaxml` (batch booking on: one ``PmtInf``
per sequence type and due date, booked as one amount on the creditor's
statement), then completed where sepaxml has no field for it (the creation
time and payment-information ids, which must be reproducible, and the mandate
amendment details), and validated against the ISO 20022 schema of the version
it declares. The schemas are the ones :mod:`sepaxml` ships (ISO 20022 message
archive, ``schemas/pain.008.001.0X.xsd``); :func:`schema_path` checks that the
schema's target namespace is the document's. A file that does not validate is
never written (:class:`~carecollect_sepa.errors.SepaFileInvalid`).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs
import sepaxml  # type: ignore[import-untyped]
from carecollect.errors import ValidationError
from carecollect.money import Money
from carecollect.scrubbing import scrub_text
from carecollect.timekeeping import require_aware
from lxml import etree  # type: ignore[import-untyped]

from .errors import SepaFileInvalid
from .mandates import SepaMandate, SequenceType, check_creditor_identifier, check_iban

__all__ = [
    "DEFAULT_VERSION",
    "SUPPORTED_VERSIONS",
    "Creditor",
    "DebitInstruction",
    "build_pain008",
    "schema_path",
    "validate_pain008",
    "write_atomically",
]

#: The version written unless configured otherwise (German banks since November 2023; EPC 2023 rulebook).
DEFAULT_VERSION = "pain.008.001.08"
SUPPORTED_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
_NS = "urn:iso:std:iso:20022:tech:xsd:"


@attrs.frozen
class Creditor:
    """The creditor collecting (the hospital, clinic or billing service).

    :param name: the creditor's name as the bank knows it.
    :param creditor_id: SEPA creditor identifier (check digits checked).
    :param iban: the account credited (never in reprs).
    :param bic: the creditor bank's BIC (from the IBAN when not given).
    """

    name: str
    creditor_id: str
    iban: str = attrs.field(repr=False)
    bic: str = attrs.field(repr=False)

    @classmethod
    def from_settings(cls, name: str, creditor_id: str, iban: str, bic: str | None = None) -> Creditor:
        """A creditor with every field checked.

        :raises ValidationError: naming the field.
        """
        if not name or not name.strip():
            raise ValidationError("SEPA creditor", "creditor_name", "the creditor's name is required")
        account = check_iban(iban, record="SEPA creditor", field="creditor_iban")
        bic_value = bic or (str(account.bic) if account.bic else "")
        if not bic_value:
            raise ValidationError("SEPA creditor", "creditor_bic", "no BIC is known for this IBAN; give it")
        return cls(name.strip(), check_creditor_identifier(creditor_id), account.compact, bic_value)


@attrs.frozen
class DebitInstruction:
    """One collection as it goes into a file.

    :param end_to_end_id: the creditor's reference of the collection (also the provider reference).
    :param amount: the amount (EUR).
    :param due_on: the requested collection date (a TARGET day).
    :param sequence: :class:`SequenceType`.
    :param mandate: the mandate as it stands when the file is made.
    :param remittance: unstructured remittance text (account and instalment, no clinical detail).
    """

    end_to_end_id: str
    amount: Money
    due_on: dt.date
    sequence: SequenceType
    mandate: SepaMandate = attrs.field(repr=False)
    remittance: str = attrs.field(repr=False)


def schema_path(version: str) -> Path:
    """The official XSD of ``version`` shipped with :mod:`sepaxml`, its target namespace checked.

    :raises SepaFileInvalid: unknown version, or a schema that is not the one for it.
    """
    if version not in SUPPORTED_VERSIONS:
        raise SepaFileInvalid(
            f"pain.008 version {version!r} is not supported; use one of {SUPPORTED_VERSIONS}"
        )
    path = Path(sepaxml.__file__).parent / "schemas" / f"{version}.xsd"
    root = etree.parse(str(path)).getroot()
    if root.get("targetNamespace") != _NS + version:
        raise SepaFileInvalid(f"{path.name} is not the ISO 20022 schema of {version}")
    return path


_SCHEMAS: dict[str, etree.XMLSchema] = {}


def _schema(version: str) -> etree.XMLSchema:
    if version not in _SCHEMAS:
        _SCHEMAS[version] = etree.XMLSchema(etree.parse(str(schema_path(version))))
    return _SCHEMAS[version]


def validate_pain008(document: bytes) -> str:
    """Validate a pain.008 document against the official schema of the version it declares.

    :returns: the version (``"pain.008.001.08"``).
    :raises SepaFileInvalid: not XML, an unsupported version, or the schema's errors (scrubbed).
    """
    try:
        root = etree.fromstring(document)
    except etree.XMLSyntaxError as exc:
        raise SepaFileInvalid(f"not well-formed XML: {exc}") from None
    namespace = etree.QName(root).namespace or ""
    if not namespace.startswith(_NS):
        raise SepaFileInvalid(f"not an ISO 20022 document (namespace {namespace!r})")
    version = namespace[len(_NS) :]
    schema = _schema(version)
    if not schema.validate(root):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
        raise SepaFileInvalid(scrub_text(f"{version} does not validate against its XSD: {errors}"))
    return version


def _el(parent: etree._Element, ns: str, *path: str, text: str | None = None) -> etree._Element:
    node = parent
    for name in path:
        node = etree.SubElement(node, f"{{{ns}}}{name}")
    if text is not None:
        node.text = text
    return node


def _add_amendment(tx: etree._Element, ns: str, instruction: DebitInstruction) -> None:
    amendment = instruction.mandate.amendment
    if amendment is None:
        return
    mandate_info = tx.find(f"{{{ns}}}DrctDbtTx/{{{ns}}}MndtRltdInf")
    assert mandate_info is not None
    signed = mandate_info.find(f"{{{ns}}}DtOfSgntr")
    assert signed is not None
    indicator = etree.Element(f"{{{ns}}}AmdmntInd")
    indicator.text = "true"
    details = etree.Element(f"{{{ns}}}AmdmntInfDtls")
    signed.addnext(indicator)
    indicator.addnext(details)
    if amendment.original_reference:
        _el(details, ns, "OrgnlMndtId", text=amendment.original_reference)
    if amendment.original_creditor_id:
        scheme = _el(details, ns, "OrgnlCdtrSchmeId")
        other = _el(scheme, ns, "Id", "PrvtId", "Othr")
        _el(other, ns, "Id", text=amendment.original_creditor_id)
        _el(other, ns, "SchmeNm", "Prtry", text="SEPA")
    if amendment.original_iban and not amendment.other_bank:
        _el(details, ns, "OrgnlDbtrAcct", "Id", "IBAN", text=amendment.original_iban)
    if amendment.other_bank:
        _el(details, ns, "OrgnlDbtrAgt", "FinInstnId", "Othr", "Id", text="SMNDA")


def build_pain008(
    creditor: Creditor,
    instructions: Sequence[DebitInstruction],
    *,
    message_id: str,
    created_at: dt.datetime,
    version: str = DEFAULT_VERSION,
) -> bytes:
    """A validated pain.008 document collecting ``instructions`` for ``creditor``.

    :param message_id: the file's unique ``MsgId`` (at most 35 characters).
    :param created_at: ``CreDtTm`` (aware).
    :param version: ``pain.008.001.08`` (default) or ``pain.008.001.02``.
    :returns: the UTF-8 XML.
    :raises ValidationError: no instructions, or not all in EUR.
    :raises SepaFileInvalid: the result does not validate (nothing to write).
    """
    require_aware(created_at, "pain.008", "created_at")
    if not instructions:
        raise ValidationError(f"pain.008 {message_id}", "instructions", "nothing to collect")
    schema_path(version)
    config = {
        "name": creditor.name,
        "IBAN": creditor.iban,
        "BIC": creditor.bic,
        "batch": True,
        "creditor_id": creditor.creditor_id,
        "currency": "EUR",
        "instrument": "CORE",
    }
    document = sepaxml.SepaDD(config, schema=version, clean=True)
    by_id: dict[str, DebitInstruction] = {}
    with warnings.catch_warnings():
        # sepaxml tests an ElementTree element's truth value (Python 3.12+ warns about it); what it
        # produces is validated against the schema below, so the warning is not passed on
        warnings.filterwarnings("ignore", "Testing an element's truth value", DeprecationWarning)
        for ins in instructions:
            if ins.amount.currency != "EUR" or not ins.amount.is_positive():
                raise ValidationError(
                    f"collection {ins.end_to_end_id}", "amount", "SEPA collects positive EUR amounts"
                )
            by_id[ins.end_to_end_id] = ins
            document.add_payment(
                {
                    "name": ins.mandate.debtor_name,
                    "IBAN": ins.mandate.iban,
                    "BIC": ins.mandate.bic,
                    "amount": ins.amount.minor_units,
                    "type": ins.sequence.value,
                    "collection_date": ins.due_on,
                    "mandate_id": ins.mandate.reference,
                    "mandate_date": ins.mandate.signed_on,
                    "description": ins.remittance,
                    "endtoend_id": ins.end_to_end_id,
                }
            )
        raw = document.export(validate=False)
    root = etree.fromstring(raw)
    ns = _NS + version
    header = root.find(f"{{{ns}}}CstmrDrctDbtInitn/{{{ns}}}GrpHdr")
    assert header is not None
    msg_id = header.find(f"{{{ns}}}MsgId")
    assert msg_id is not None
    msg_id.text = message_id
    created = header.find(f"{{{ns}}}CreDtTm")
    assert created is not None
    created.text = created_at.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for number, info in enumerate(root.iter(f"{{{ns}}}PmtInf"), start=1):
        pmt_id = info.find(f"{{{ns}}}PmtInfId")
        assert pmt_id is not None
        pmt_id.text = f"{message_id}-{number}"[:35]
        for tx in info.iter(f"{{{ns}}}DrctDbtTxInf"):
            e2e = tx.findtext(f"{{{ns}}}PmtId/{{{ns}}}EndToEndId")
            _add_amendment(tx, ns, by_id[str(e2e)])
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_pain008(out)
    return out


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the whole file or none of it.

    A temporary file in the same folder is written and flushed to disk, then renamed over
    ``path`` (:func:`os.replace` is atomic on one file system).
    """
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
