"""``python -m carecollect.bench.messages``: CPU time per message of rendering and checking.

Renders the same mix of messages twice in this process, once with plain Jinja
(``Renderer(compiled=False)``) and once from compiled skeletons (``Renderer()``), and prints
the CPU time per message of each (rendering plus every content check: what
:meth:`Renderer.render <carecollect.messages.render.Renderer.render>` costs). The mix is the
run's: reminders, pre-due reminders and statements by SMS and e-mail in four languages, one
patient per message (a different name, amount, due date and pay link each time). With
``--statements`` it is a full run's first day instead: statements by letter and e-mail, each
patient's own lines (descriptions, codes, service dates, amounts) and address. Both renderers
must give the same texts; the script says so or fails.
See :doc:`/explanation/performance`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from decimal import Decimal

import attrs

from ..channels import Channel
from ..messages.context import MessageContext
from ..messages.examples import context
from ..messages.render import Renderer
from ..messages.statement import Statement
from ..money import Money
from ..outreach import OutreachPurpose as P

_MIX = (
    (P.REMINDER, Channel.SMS),
    (P.PRE_DUE_REMINDER, Channel.SMS),
    (P.REMINDER, Channel.EMAIL),
    (P.STATEMENT, Channel.EMAIL),
    (P.FINAL_NOTICE, Channel.SMS),
)
_PLACES = (("us", "en"), ("no", "nb"), ("de", "de"), ("bg", "bg"))
_NAMES = ("Kari Nordmann", "Иван Петров", "Anna Müller", "Sam O'Brien", "Zoë 😀")


def messages(n: int) -> list[tuple[P, Channel, str, MessageContext]]:
    """``n`` messages of the run's mix, each with its own patient's values."""
    bases = {(p, j): context(p, j) for p, _ in _MIX for j, _ in _PLACES}
    out = []
    for i, ((purpose, channel), (jurisdiction, lang)) in zip(
        range(n), itertools.cycle(itertools.product(_MIX, _PLACES)), strict=False
    ):
        base = bases[purpose, jurisdiction]
        out.append(
            (
                purpose,
                channel,
                lang,
                attrs.evolve(
                    base,
                    reference=f"INV-{100000 + i}",
                    recipient_name=f"{_NAMES[i % len(_NAMES)]} {i}",
                    amount_due=Money(Decimal(1000 + i * 37 % 90000) / 100, base.amount_due.currency),
                    due_date=base.today + dt.timedelta(days=i % 40),
                    pay_link=f"https://pay.example.org/p/{i:08x}",
                ),
            )
        )
    return out


def statements(n: int) -> list[tuple[P, Channel, str, MessageContext]]:
    """``n`` statements by letter and e-mail, each patient's own lines, amounts and address."""
    out = []
    for i, (channel, (jurisdiction, lang)) in zip(
        range(n), itertools.cycle(itertools.product((Channel.LETTER, Channel.EMAIL), _PLACES)), strict=False
    ):
        base = context(P.STATEMENT, jurisdiction)
        assert isinstance(base.statement, Statement)
        cur = base.amount_due.currency
        lines = tuple(
            attrs.evolve(
                ln,
                description=f"Consultation {i % 97} and examination",
                service_date=ln.service_date - dt.timedelta(days=i % 60),
                charge=ln.charge + Money(Decimal(i % 5000) / 100, cur),
                patient_owes=ln.patient_owes + Money(Decimal(i % 5000) / 100, cur),
            )
            for ln in base.statement.lines[: 1 + i % len(base.statement.lines)]
        )
        statement = attrs.evolve(base.statement, lines=lines)
        out.append(
            (
                P.STATEMENT,
                channel,
                lang,
                attrs.evolve(
                    base,
                    reference=f"INV-{100000 + i}",
                    recipient_name=f"{_NAMES[i % len(_NAMES)]} {i}",
                    statement=statement,
                    amount_due=statement.balance,
                    address=(f"{_NAMES[i % len(_NAMES)]} {i}", f"{i % 300} Main Street", "0150 Oslo"),
                    pay_link=f"https://pay.example.org/p/{i:08x}",
                ),
            )
        )
    return out


def cpu_per_message(renderer: Renderer, batch: list[tuple[P, Channel, str, MessageContext]]) -> float:
    """CPU seconds per message of rendering ``batch`` (after one warm-up pass over its first tenth)."""
    for purpose, channel, lang, ctx in batch[: max(1, len(batch) // 10)]:
        renderer.render(purpose, channel, lang, ctx)
    start = time.process_time()
    for purpose, channel, lang, ctx in batch:
        renderer.render(purpose, channel, lang, ctx)
    return (time.process_time() - start) / len(batch)


def main(argv: list[str] | None = None) -> int:
    """Print the CPU time per message with plain Jinja and from compiled skeletons."""
    ap = argparse.ArgumentParser(
        prog="python -m carecollect.bench.messages", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--messages", type=int, default=5000, help="messages rendered by each renderer")
    ap.add_argument(
        "--statements", action="store_true", help="statements by letter and e-mail (a full run's first day)"
    )
    args = ap.parse_args(argv)
    batch = statements(args.messages) if args.statements else messages(args.messages)
    plain, compiled = Renderer(compiled=False), Renderer()
    for purpose, channel, lang, ctx in batch[:200]:
        if plain.render(purpose, channel, lang, ctx) != compiled.render(purpose, channel, lang, ctx):
            raise SystemExit(f"{purpose.value}/{channel.value}/{lang}: the renderers differ")
    before = cpu_per_message(plain, batch)
    after = cpu_per_message(compiled, batch)
    print(f"{len(batch):,} messages (render + checks), CPU per message:")
    print(f"  plain Jinja         {before * 1000:.3f} ms")
    print(f"  compiled skeletons  {after * 1000:.3f} ms  ({before / after:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
