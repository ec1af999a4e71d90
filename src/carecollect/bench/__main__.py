"""``python -m carecollect.bench``: the benchmark of the daily run (prints its figures; never a timed test).

Figures:

1. planning (every policy decision, no sending) for ``--size`` open invoices in
   memory: the fast path and the bare-Python floor, CPU and wall time, ratio;
2. the same streamed from a SQLite store file (cached between runs by size and
   seed), with the peak-RSS growth of a fresh process;
3. a full run (render and send through the file outbox) with
   :func:`carecollect.daily_run.execute_run`, in one process and with two sending
   workers, of a 65,000-invoice portfolio (about 100,000 due messages; ``--full-invoices``);
4. growth of time and memory from 10,000 invoices to ``--size``;
5. the daily run's own planner, :func:`carecollect.daily_run.plan_run` (what
   ``carecollect run --dry-run`` does: domain objects, every reason, the agency
   gate, missed instalments and charges), on the store of 1 % of ``--size``: on
   the run's day (no history, every first statement due) and the day after a
   real run (most invoices have nothing due), with its compiled-kernel
   pre-screen and with the rich path for every invoice.

``--quick`` runs everything at CI size. See :doc:`/explanation/performance`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..portfolio import generate_rows, load_portfolio
from .planning import RunTables, decode, plan_fast, plan_floor
from .rows import Contexts, PlanRow, iter_store_rows, rows_from_batch

AS_OF = dt.date(2026, 3, 2)
#: The run's instant: 15:30 UTC, inside the quiet-hour windows of Europe and the US east, before 08:00 in the US west.
NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)


def _maxrss_kib() -> int:
    """Peak resident set of this process image (VmHWM: reset by exec, unlike ru_maxrss)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_rows(size: int, seed: int) -> tuple[list[PlanRow], Contexts]:
    """Generate ``size`` invoices and turn them into plan rows in memory."""
    contexts = Contexts()
    roles: dict[str, tuple[str, bool]] = {}
    rows: list[PlanRow] = []
    for batch in generate_rows(size, seed=seed, as_of=AS_OF):
        rows.extend(rows_from_batch(batch, contexts, roles))
    return rows, contexts


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, cpu seconds, wall seconds)`` of ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def summary(codes: list[int]) -> dict[str, int]:
    """Counts of decisions: invoices with a step due, channel sends, channels held."""
    due = sends = held = 0
    for code in codes:
        idx, planned, send, _ = decode(code)
        if idx >= 0:
            due += 1
            s = bin(send).count("1")
            sends += s
            held += bin(planned).count("1") - s
    return {"invoices": len(codes), "step_due": due, "sends": sends, "held": held}


def store_path(cache: Path, size: int, seed: int) -> Path:
    """The cached store file for ``(size, seed)``, generated on first use."""
    path = cache / f"portfolio-{size}-seed{seed}-{AS_OF.isoformat()}.db"
    if not path.exists():
        from ..store import SQLiteStore

        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        print(f"  generating {size:,} invoices into {path} (once) ...", flush=True)
        w0 = time.perf_counter()
        store = SQLiteStore(tmp)
        load_portfolio(store, size, seed=seed, as_of=AS_OF)
        store.close()
        tmp.rename(path)
        print(f"  generated in {time.perf_counter() - w0:.0f} s", flush=True)
    return path


def stream_child(path: str, batch_size: int) -> dict[str, Any]:
    """In a fresh process: stream plan rows from ``path`` and plan them; time and peak-RSS growth."""
    contexts = Contexts()
    tables = RunTables(contexts, NOW)
    totals = {"invoices": 0, "step_due": 0, "sends": 0, "held": 0}
    after_first: list[int] = []

    def run() -> None:
        for rows in iter_store_rows(path, contexts, batch_size=batch_size):
            for k, v in summary(plan_fast(rows, tables)).items():
                totals[k] += v
            if not after_first:
                after_first.append(_maxrss_kib())

    _, cpu, wall = timed(run)
    peak = _maxrss_kib()
    return {
        "cpu": cpu,
        "wall": wall,
        "peak_rss_mib": peak / 1024,
        "growth_after_first_batch_mib": (peak - after_first[0]) / 1024 if after_first else 0.0,
        **totals,
    }


def run_stream(path: Path, batch_size: int) -> dict[str, Any]:
    """Run :func:`stream_child` in a subprocess (so its peak RSS is its own)."""
    out = subprocess.run(
        [sys.executable, "-m", "carecollect.bench", "--_stream", str(path), "--batch", str(batch_size)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def full_run(invoices: int, seed: int, workers: int = 1) -> dict[str, Any]:
    """Render and send every due message of an ``invoices``-invoice portfolio through the file outbox.

    :param workers: sending processes (:func:`carecollect.daily_run.execute_run`'s ``workers``);
        ``cpu`` is then this process's and its finished workers' CPU time together.
    """
    import functools

    from ..daily_run import RunSettings, execute_run
    from ..plugin_manager import make_plugin_manager
    from ..store import SQLiteStore

    with tempfile.TemporaryDirectory(prefix="carecollect-bench-") as tmp:
        store = SQLiteStore(os.path.join(tmp, "run.db"))
        load_portfolio(store, invoices, seed=seed, as_of=AS_OF)
        pm = make_plugin_manager(load_entrypoints=False)
        # counts only, as ``carecollect run`` keeps them: memory stays flat
        settings = RunSettings(
            channel_config={"outbox": {"folder": os.path.join(tmp, "out")}}, keep_plan=False
        )
        factory = functools.partial(make_plugin_manager, load_entrypoints=False)
        before = os.times()
        report, cpu, wall = timed(
            lambda: execute_run(store, NOW, pm, settings, workers=workers, pm_factory=factory)
        )
        after = os.times()
        cpu += (after.children_user - before.children_user) + (after.children_system - before.children_system)
        files = sum(len(fs) for _, _, fs in os.walk(os.path.join(tmp, "out")))
        store.close()
    return {
        "invoices": invoices,
        "workers": workers,
        "sent": report.sent,
        "files": files,
        "cpu": cpu,
        "wall": wall,
    }


def rich_plan(path: Path, *, day_after: bool = False) -> dict[str, Any]:
    """Time :func:`carecollect.daily_run.plan_run` on the store file at ``path``, with and without its pre-screen.

    :param path: the store file (not changed).
    :param day_after: plan on a copy that one real run at :data:`NOW` (file outbox, not timed) has
        given its history, one day later: the daily run's usual day, when most invoices have
        nothing due.
    """
    import shutil

    from ..daily_run import RunSettings, execute_run, plan_run
    from ..plugin_manager import make_plugin_manager
    from ..store import SQLiteStore

    with tempfile.TemporaryDirectory(prefix="carecollect-bench-") as tmp:
        now = NOW
        if day_after:
            copy = Path(tmp) / "run.db"
            shutil.copy(path, copy)
            path = copy
            with SQLiteStore(path) as store:
                out = {"outbox": {"folder": os.path.join(tmp, "out")}}
                execute_run(
                    store, NOW, make_plugin_manager(load_entrypoints=False), RunSettings(channel_config=out)
                )
            now = NOW + dt.timedelta(days=1)
        with SQLiteStore(path) as store:
            plan, cpu, wall = timed(lambda: plan_run(store, now, RunSettings()))
            rich, rich_cpu, _ = timed(lambda: plan_run(store, now, RunSettings(), prescreen=False))
    same = (plan.messages, plan.decisions, plan.placements) == (
        rich.messages,
        rich.decisions,
        rich.placements,
    )
    return {
        "invoices": plan.invoices,
        "messages": len(plan.messages),
        "nothing_due": plan.counts().get("nothing_due", 0),
        "cpu": cpu,
        "wall": wall,
        "rich_cpu": rich_cpu,
        "same": same,
    }


def _row(*cells: object) -> None:
    print("  " + "".join(f"{c!s:>15}" if i else f"{c!s:<24}" for i, c in enumerate(cells)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(prog="python -m carecollect.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="open invoices to plan (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="CI size: 20,000 invoices, a 300-invoice full run")
    ap.add_argument(
        "--skip-store", action="store_true", help="skip the SQLite figures (2 and 4's store column)"
    )
    ap.add_argument("--skip-full", action="store_true", help="skip the full run (3)")
    ap.add_argument(
        "--full-invoices",
        type=int,
        default=None,
        help="portfolio size of the full run (default 65,000: about 100,000 due messages)",
    )
    ap.add_argument("--batch", type=int, default=5000, help="invoices per store read")
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "carecollect-bench"))
    ap.add_argument("--_stream", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._stream:
        print(json.dumps(stream_child(args._stream, args.batch)))
        return 0
    size = 20_000 if args.quick else args.size
    full_invoices = args.full_invoices or (300 if args.quick else 65_000)
    sizes = sorted({s for s in (size // 100, size // 10, size) if s >= 1000})
    cache = Path(args.cache_dir)
    print(f"carecollect benchmark: {size:,} invoices, seed {args.seed}, run at {NOW.isoformat()}")
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} cores (shared), pid {os.getpid()}\n")

    print("1. Planning in memory (every decision, no sending)")
    (rows, contexts), _, gen_wall = timed(lambda: memory_rows(size, args.seed))
    print(f"  generated {len(rows):,} plan rows in {gen_wall:.1f} s (not timed below)")
    tables = RunTables(contexts, NOW)
    tables.floor_tables()
    fast, fast_cpu, fast_wall = timed(partial(plan_fast, rows, tables))
    floor, floor_cpu, floor_wall = timed(partial(plan_floor, rows, tables))
    _row("", "CPU s", "wall s", "µs/invoice")
    _row("fast path (plan rows)", f"{fast_cpu:.2f}", f"{fast_wall:.2f}", f"{fast_cpu / len(rows) * 1e6:.2f}")
    _row("bare-Python floor", f"{floor_cpu:.2f}", f"{floor_wall:.2f}", f"{floor_cpu / len(rows) * 1e6:.2f}")
    print(f"  ratio fast/floor (CPU): {fast_cpu / floor_cpu:.2f}x; same decisions: {fast == floor}")
    print(f"  decisions: {summary(fast)}\n")

    print("4. Growth: planning time in memory; the store streamed in a fresh process: time, its peak RSS")
    print("   (VmHWM) and the growth of that peak after the first batch")
    _row("invoices", "fast CPU s", "floor CPU s", "store wall s", "store CPU s", "peak RSS MiB", "growth MiB")
    store_results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        part = rows[:n]
        _, fc, _ = timed(partial(plan_fast, part, tables))
        _, lc, _ = timed(partial(plan_floor, part, tables))
        cells: list[object] = [f"{n:,}", f"{fc:.2f}", f"{lc:.2f}"]
        if not args.skip_store:
            res = store_results[n] = run_stream(store_path(cache, n, args.seed), args.batch)
            cells += [
                f"{res['wall']:.1f}",
                f"{res['cpu']:.1f}",
                f"{res['peak_rss_mib']:.0f}",
                f"{res['growth_after_first_batch_mib']:.1f}",
            ]
        _row(*cells)
    del rows, fast, floor
    print()

    if not args.skip_store:
        res = store_results[size]
        print("2. From the SQLite store, end to end (stream rows in batches + plan), fresh process")
        print(
            f"  {res['invoices']:,} invoices: wall {res['wall']:.1f} s, CPU {res['cpu']:.1f} s, "
            f"peak RSS {res['peak_rss_mib']:.0f} MiB (VmHWM of the process), "
            f"{res['growth_after_first_batch_mib']:.1f} MiB of it after the first batch, "
            f"batch {args.batch}; {res['sends']:,} sends, {res['held']:,} held\n"
        )

    if not args.skip_store:
        small = sizes[0]
        print("5. The daily run's own planner: carecollect.daily_run.plan_run (the dry run), from the store")
        print(
            "   (CPU per invoice with the compiled-kernel pre-screen, and with the rich path for every invoice)"
        )
        for label, after in (("run day, no history", False), ("the day after a run", True)):
            r = rich_plan(store_path(cache, small, args.seed), day_after=after)
            n = r["invoices"] or 1
            per = r["cpu"] / n
            print(
                f"  {label}: {r['invoices']:,} invoices -> {r['messages']:,} messages, "
                f"{r['nothing_due']:,} nothing due; wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, "
                f"{per * 1e6:.0f} µs/invoice (rich path only: {r['rich_cpu'] / n * 1e6:.0f}; "
                f"same plan: {r['same']}); 1,000,000 invoices at this rate: {per * 1_000_000:.0f} s CPU"
            )
        print()

    if not args.skip_full:
        print(
            "3. Full run: carecollect.daily_run.execute_run (plan, outbox, render, send via the file outbox)"
        )
        for workers in (1, 2):
            r = full_run(full_invoices, args.seed, workers)
            rate = r["sent"] / r["wall"] if r["wall"] else 0.0
            # on a shared machine the wall time also holds other processes' turns; CPU is the run's own
            cpu_rate = r["sent"] / r["cpu"] if r["cpu"] else 0.0
            print(
                f"  workers={workers}: {r['invoices']:,} invoices -> {r['sent']:,} messages sent "
                f"({r['files']:,} files): wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, {rate:.0f} messages/s "
                f"({cpu_rate:.0f} per CPU second); "
                f"100,000 messages at this rate: {100_000 / rate if rate else float('inf'):.0f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
