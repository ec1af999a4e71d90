"""One resolution path, with the resolver's authority checked, wherever a resolution enters (issue 13).

Entry points: the Python API (:func:`carecollect.relief.disputes.resolve_dispute`, and the
deprecated ``carecollect.disputes.resolve_dispute`` name, which routes to it), the daily run's
intake of dispute events (``tests/test_daily_run_events.py``), and the demo. No importer takes
resolutions in. Each refuses what the written procedure does not allow, and leaves the dispute
as it was.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import attrs
import pytest

import carecollect
from carecollect import disputes as disputes_module
from carecollect.disputes import (
    Dispute,
    DisputeReason,
    DisputeStatus,
    EscalationLevel,
    Resolution,
    ResolutionKind,
    escalate_dispute,
)
from carecollect.errors import InvalidTransition, PolicyViolation, ValidationError
from carecollect.money import Money
from carecollect.policy import get_pack
from carecollect.relief import disputes as relief_disputes
from carecollect.relief.disputes import DisputeProcedure, resolve_dispute

US = get_pack("us")
AT = dt.datetime(2026, 3, 6, 15, tzinfo=dt.UTC)
PROC = DisputeProcedure.default("USD")


def usd(x: str) -> Money:
    return Money(x, "USD")


def _open(level: EscalationLevel = EscalationLevel.FRONT_LINE) -> Dispute:
    d = Dispute("D-1", "A-1", "INV-1", DisputeReason.BILLING_ERROR, AT)
    return attrs.evolve(d, level=level)


def _resolve(d: Dispute, r: Resolution, balance: str = "1000.00", **kw: object) -> object:
    return resolve_dispute(d, r, balance=usd(balance), at=AT, pack=US, procedure=kw.pop("procedure", PROC))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("level", "resolution", "error", "match"),
    [
        # the front desk may grant nothing under the default procedure
        (
            EscalationLevel.FRONT_LINE,
            Resolution(ResolutionKind.WRITE_OFF, usd("1000.00")),
            PolicyViolation,
            "PROVIDER",
        ),
        (
            EscalationLevel.FRONT_LINE,
            Resolution(ResolutionKind.DISCOUNT, usd("0.01")),
            PolicyViolation,
            "OFFICE_MANAGER",
        ),
        (
            EscalationLevel.FRONT_LINE,
            Resolution(ResolutionKind.CORRECTION, usd("10.00")),
            PolicyViolation,
            "OFFICE_MANAGER",
        ),
        # the office manager: 25 % and 500 at most, no write-off
        (
            EscalationLevel.OFFICE_MANAGER,
            Resolution(ResolutionKind.DISCOUNT, usd("250.01")),
            PolicyViolation,
            "PROVIDER",
        ),
        (
            EscalationLevel.OFFICE_MANAGER,
            Resolution(ResolutionKind.WRITE_OFF, usd("10.00")),
            PolicyViolation,
            "PROVIDER",
        ),
        # nobody writes off more than is owed, or nothing, or in another currency
        (
            EscalationLevel.PROVIDER,
            Resolution(ResolutionKind.WRITE_OFF, usd("1000.01")),
            ValidationError,
            "exceeds the balance",
        ),
        (EscalationLevel.PROVIDER, Resolution(ResolutionKind.WRITE_OFF), ValidationError, "positive amount"),
        (
            EscalationLevel.PROVIDER,
            Resolution(ResolutionKind.DISCOUNT, Money("5.00", "EUR")),
            ValidationError,
            "EUR",
        ),
    ],
)
def test_the_api_refuses_what_the_procedure_does_not_allow(
    level: EscalationLevel, resolution: Resolution, error: type[Exception], match: str
) -> None:
    d = _open(level)
    with pytest.raises(error, match=match):
        _resolve(d, resolution)
    assert d.is_open and d.resolution is None  # frozen: nothing half-written


def test_a_reduction_after_insurance_needs_a_procedure_that_offers_it() -> None:
    r = Resolution(ResolutionKind.WRITE_OFF, usd("100.00"), effective_after_insurance=True)
    no_offer = attrs.evolve(PROC, offer_after_insurance=False)
    with pytest.raises(PolicyViolation, match="after insurance"):
        _resolve(_open(EscalationLevel.PROVIDER), r, procedure=no_offer)
    done, _, _ = _resolve(_open(EscalationLevel.PROVIDER), r)  # type: ignore[misc]
    assert done.status is DisputeStatus.RESOLVED


def test_a_closed_dispute_is_not_resolved_again() -> None:
    done, _, _ = _resolve(_open(), Resolution(ResolutionKind.UPHELD))  # type: ignore[misc]
    with pytest.raises(InvalidTransition):
        _resolve(done, Resolution(ResolutionKind.UPHELD))


def test_within_authority_resolves_and_books_the_follow_up() -> None:
    d, _ = escalate_dispute(_open(), EscalationLevel.OFFICE_MANAGER, at=AT)
    done, event, why = _resolve(d, Resolution(ResolutionKind.DISCOUNT, usd("250.00")))  # type: ignore[misc]
    assert done.status is DisputeStatus.RESOLVED and done.follow_up_on == dt.date(2026, 3, 11)
    assert event.detail("amount") == "USD 250.00"
    assert why[0].rule_id == "creditor.dispute.authority"


def test_the_old_name_routes_to_the_checked_path() -> None:
    with pytest.warns(DeprecationWarning, match="relief.disputes"):
        alias = disputes_module.resolve_dispute
    assert alias is relief_disputes.resolve_dispute
    assert "resolve_dispute" not in disputes_module.__all__
    with pytest.raises(AttributeError):
        disputes_module.no_such_name  # noqa: B018


def test_only_the_checked_path_marks_a_dispute_resolved() -> None:
    """The class test: no module but relief/disputes.py sets DisputeStatus.RESOLVED or calls
    resolve_dispute from anywhere but carecollect.relief.disputes."""
    root = Path(carecollect.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "status"
                and rel != "relief/disputes.py"
                and ast.unparse(node.value) == "DisputeStatus.RESOLVED"
            ):
                offenders.append(f"{rel}:{node.lineno} sets RESOLVED")
            if isinstance(node, ast.ImportFrom) and any(a.name == "resolve_dispute" for a in node.names):
                package = ["carecollect", *rel.split("/")[:-1]]
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                if module != "carecollect.relief.disputes":
                    offenders.append(f"{rel}:{node.lineno} imports resolve_dispute from {module}")
    assert offenders == []


def test_the_demo_resolves_through_the_checked_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carecollect import demo

    calls: list[dict[str, object]] = []
    real = relief_disputes.resolve_dispute

    def spy(d: Dispute, r: Resolution, **kw: object) -> object:
        calls.append(kw)
        return real(d, r, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(demo, "resolve_dispute", spy)
    demo.run_demo(tmp_path / "d.sqlite", size=60, weeks=2, seed=3)
    assert calls, "the demo resolved no dispute"
    assert all(isinstance(kw["procedure"], DisputeProcedure) for kw in calls)
    from contextlib import closing

    from carecollect.store.sqlite import SQLiteStore

    with closing(SQLiteStore(tmp_path / "d.sqlite")) as store:
        resolved = [
            d
            for snap in store.iter_account_snapshots(batch_size=100)
            for d in snap.disputes
            if d.status is DisputeStatus.RESOLVED
        ]
    assert resolved and all(d.follow_up_on is not None for d in resolved)


def test_nothing_is_written_off_before_the_insurer_has_paid() -> None:
    from carecollect.invoices import ClaimStatus, Insurance, Invoice, InvoiceLine

    line = InvoiceLine("99213", "Visit", usd("300.00"), dt.date(2026, 3, 2))
    pending = Invoice(
        "INV-1",
        "A-1",
        "USD",
        (line,),
        dt.date(2026, 3, 3),
        dt.date(2026, 4, 2),
        insurance=Insurance(ClaimStatus.PENDING),
    )
    d = _open(EscalationLevel.PROVIDER)
    now = Resolution(ResolutionKind.WRITE_OFF, usd("300.00"))
    with pytest.raises(PolicyViolation, match="waits for its insurer"):
        resolve_dispute(d, now, balance=usd("300.00"), at=AT, pack=US, procedure=PROC, invoice=pending)
    later = attrs.evolve(now, effective_after_insurance=True)
    done, _, _ = resolve_dispute(
        d, later, balance=usd("300.00"), at=AT, pack=US, procedure=PROC, invoice=pending
    )
    assert done.status is DisputeStatus.RESOLVED
    paid = attrs.evolve(pending, insurance=Insurance(ClaimStatus.ADJUDICATED, insurer_paid=usd("240.00")))
    done, _, _ = resolve_dispute(d, now, balance=usd("300.00"), at=AT, pack=US, procedure=PROC, invoice=paid)
    assert done.resolution == now
