"""The audit log's chains and seals, the same for every store.

The audit log holds several hash chains: the main chain (:data:`~carecollect.store.base.MAIN_CHAIN`)
and one per partition of a parallel run (:func:`~carecollect.store.base.partition_chain`). Each
record links only to the record before it in its own chain, so the workers of a run append to
their partitions' chains without waiting for each other.

A **seal** is a main-chain record of kind :data:`~carecollect.store.base.SEAL_KIND` whose data
lists the head (name, position, hash) of every chain as the seal was written (:func:`seal_data`).
The seal is hashed into the main chain like any record, so a chain's records up to its sealed
head cannot be removed or rewritten (even with every hash recomputed) without
:func:`verify_chains` finding it: the record the seal names is missing, or is not the record the
seal attests.

This module holds what both stores share: what a seal says, when a new one is due, and the
check of every chain and every seal (the stores only read their rows).

>>> import datetime as dt
>>> from carecollect.store.base import AuditHead
>>> seal_data([AuditHead("p1of2", 4, "b" * 64), AuditHead("", 9, "a" * 64)])["heads"][0]
{'chain': '', 'seq': 9, 'hash': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from . import codec
from .base import (
    GENESIS_HASH,
    MAIN_CHAIN,
    SEAL_KIND,
    AuditHead,
    AuditProblem,
    AuditRecord,
    AuditVerification,
    audit_hash,
)

__all__ = ["AUDIT_ROW", "heads_from_rows", "record_from_row", "seal_data", "seal_due", "verify_chains"]

#: The columns a store reads for :func:`verify_chains`, in this order:
#: ``seq, chain, chain_seq, at (ISO text), kind, subject_id, data (JSON text), prev_hash, hash``.
AUDIT_ROW = "seq, chain, chain_seq, at, kind, subject_id, data, prev_hash, hash"

#: One row of :data:`AUDIT_ROW`.
Row = Sequence[Any]


def seal_data(heads: Iterable[AuditHead]) -> dict[str, Any]:
    """What a seal record holds: every chain's head, by chain name.

    :param heads: the head of every chain that has records (the main chain's too).
    """
    return {
        "heads": [
            {"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in sorted(heads, key=lambda h: h.chain)
        ]
    }


def seal_due(heads: Sequence[AuditHead], last_main: AuditRecord | None) -> bool:
    """True when a seal would attest something no seal does yet.

    Not due when no chain but the main one has records (the main chain links its own records:
    a seal would only repeat its last hash), nor when the main chain ends with a seal that
    lists every head as it stands (nothing was appended since).

    :param heads: every chain's head now (the main chain's is ``last_main``).
    :param last_main: the main chain's last record, if any.
    """
    others = [h for h in heads if h.chain != MAIN_CHAIN]
    if not others:
        return False
    if last_main is None or last_main.kind != SEAL_KIND:
        return True
    before = (
        []
        if last_main.chain_seq == 1
        else [AuditHead(MAIN_CHAIN, last_main.chain_seq - 1, last_main.prev_hash)]
    )
    return dict(last_main.data) != seal_data([*before, *others])


def _sealed(seals: Iterable[Row]) -> tuple[dict[tuple[str, int], list[tuple[int, str]]], int]:
    """``{(chain, position): [(seal's position in the main chain, hash)]}`` and the seals read.

    A seal whose data cannot be read attests nothing here; its own record fails the main
    chain's check (its hash no longer matches).
    """
    attested: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
    count = 0
    for row in seals:
        count += 1
        try:
            heads = json.loads(row[6])["heads"]
            for head in heads:
                attested[(str(head["chain"]), int(head["seq"]))].append((int(row[2]), str(head["hash"])))
        except (ValueError, TypeError, KeyError):
            continue
    return attested, count


def verify_chains(seals: Iterable[Row], rows: Iterable[Row]) -> AuditVerification:
    """Check every chain's links and hashes, and every seal's heads against the chains.

    A chain breaks where a record's position is not the next one (``record N is missing``), its
    ``prev_hash`` is not the hash of the record before in its chain, its place in the log
    (``seq``) is not after that record's (reordered), its hash is not its content's, or it is not
    the record a seal attests at that position. A chain that ends before a position a seal
    attests lost its tail; a chain a seal names that has no record at all was removed. A chain
    is not read past its first problem; the others are read to the end.

    :param seals: the main chain's seal records (kind :data:`~carecollect.store.base.SEAL_KIND`)
        as :data:`AUDIT_ROW` rows, read before ``rows``.
    :param rows: every audit record as an :data:`AUDIT_ROW` row, ordered by chain, then position.
    """
    attested, seal_count = _sealed(seals)
    tails: dict[str, tuple[int, int]] = {}  # chain -> (highest attested position, the seal saying so)
    for (named, position), claims in attested.items():
        seal = min(s for s, _ in claims)
        if named not in tails or position > tails[named][0]:
            tails[named] = (position, seal)
    problems: dict[str, AuditProblem] = {}
    seen: set[str] = set()
    checked = 0
    chain: str | None = None
    expected, prev, last_seq = 1, GENESIS_HASH, 0

    def close(name: str, reached: int) -> None:
        tail = tails.get(name)
        if name not in problems and tail is not None and tail[0] > reached:
            problems[name] = AuditProblem(
                name,
                reached + 1,
                f"record {reached + 1} is missing: the chain ends at record {reached}, the seal at "
                f"main record {tail[1]} attests record {tail[0]}",
            )

    for row in rows:
        name = str(row[1])
        if name != chain:
            if chain is not None:
                close(chain, expected - 1)
            chain, expected, prev, last_seq = name, 1, GENESIS_HASH, 0
            seen.add(name)
        if name in problems:
            continue
        seq, position = int(row[0]), int(row[2])
        problem: str | None = None
        if position != expected:
            problems[name] = AuditProblem(name, expected, f"record {expected} is missing")
            continue
        if row[7] != prev:
            problem = "prev_hash does not match the record before"
        elif seq <= last_seq:
            problem = (
                f"out of order: its place in the log ({seq}) is not after the record before ({last_seq})"
            )
        else:
            try:
                digest = audit_hash(
                    prev,
                    position,
                    codec.instant_from_iso(row[3]),
                    row[4],
                    row[5],
                    json.loads(row[6]),
                    chain=name,
                )
            except (ValueError, TypeError):
                problem = "the record cannot be read"
            else:
                if digest != row[8]:
                    problem = "hash does not match the record's content"
                else:
                    wrong = [s for s, h in attested.get((name, position), ()) if h != row[8]]
                    if wrong:
                        problem = f"not the record the seal at main record {min(wrong)} attests"
        if problem is not None:
            problems[name] = AuditProblem(name, position, problem)
            continue
        checked += 1
        expected, prev, last_seq = position + 1, row[8], seq
    if chain is not None:
        close(chain, expected - 1)
    for name, (position, seal) in tails.items():
        if name not in seen:
            problems[name] = AuditProblem(
                name, 1, f"the chain is missing: the seal at main record {seal} attests {position} record(s)"
            )
    found = tuple(problems[n] for n in sorted(problems))
    first = found[0] if found else None
    return AuditVerification(
        ok=not found,
        checked=checked,
        first_broken_seq=first.seq if first else None,
        problem=first.problem if first else None,
        chain=first.chain if first else None,
        chains=len(seen),
        seals=seal_count,
        problems=found,
    )


def heads_from_rows(rows: Iterable[Sequence[Any]]) -> list[AuditHead]:
    """:class:`AuditHead` records from ``(chain, chain_seq, hash)`` rows, by chain name."""
    return sorted((AuditHead(str(r[0]), int(r[1]), str(r[2])) for r in rows), key=lambda h: h.chain)


def record_from_row(row: Row) -> AuditRecord:
    """An :class:`AuditRecord` from an :data:`AUDIT_ROW` row."""
    return AuditRecord(
        int(row[0]),
        codec.instant_from_iso(row[3]),
        row[4],
        row[5],
        json.loads(row[6]),
        row[7],
        row[8],
        chain=str(row[1]),
        chain_seq=int(row[2]),
    )
