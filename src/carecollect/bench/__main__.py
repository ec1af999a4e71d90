"""``python -m carecollect.bench`` (``nox -s bench``): the product's own commands, timed, beside floors.

Figures (each command runs as a whole process; the fastest of ``--repeat`` runs and the median
are shown, with CPU time and peak resident memory of that process):

1. ``carecollect run --dry-run`` on SQLite stores of 10,000, 100,000 and ``--size`` invoices
   (made once with ``carecollect demo --invoices N --no-run`` and cached), beside the **read
   floor** (streaming the same plan rows from the same store, no decision) and the **decision
   floor** (the same decisions on rows already in memory, bare Python, no library call): the
   product per invoice against both floors;
2. the dry run the day after a real run (most invoices have their history, few have a step due);
3. import time: ``python -c "import carecollect"``, ``carecollect --help``, beside ``python -c pass``;
4. a full run, ``carecollect run`` (plan, render, send through the file outbox), in one process
   and with two workers (processes, each a partition of the patients at a time), of
   ``--full-invoices`` invoices (about 1.5 messages each), and their ratio;
5. the same full run on a Dask ``LocalCluster`` (``--cluster local:1`` and ``local:2``) and
   their ratio (needs ``carecollect[dask]``; ``--skip-cluster`` leaves it out), and a cost model
   from the measured per-partition figures, extrapolated to 10,000,000 invoices: how many
   workers reach a 10-minute daily run;
6. channels to local servers (:mod:`carecollect.bench.channels`): SMTP e-mails a second to an
   aiosmtpd server with connection reuse, beside one connection per message measured in the same
   run (needs the ``carecollect-smtp`` plugin and aiosmtpd), and SMS texts a second to the SMS
   plugin's local test gateway, one request at a time and at the channel's declared concurrency
   (needs ``carecollect-sms``); ``--skip-channels`` leaves them out.
7. the dry run of ``--size`` invoices and the full run from a throwaway PostgreSQL server (needs
   ``carecollect[postgres]`` and the server binaries; ``--skip-postgres`` leaves it out), the
   full run beside the SQLite figure of 4.

Nothing here decides anything the product does not: the dry run is the product's command; the
floors live in :mod:`carecollect.bench.floors`. ``--quick`` runs everything at CI size.
See :doc:`/explanation/performance`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AS_OF = dt.date(2026, 3, 2)
#: The run's instant: 15:30 UTC, inside the quiet-hour windows of Europe and the US east, before 08:00 in the US west.
NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)


def _cli() -> list[str]:
    """The ``carecollect`` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("carecollect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "carecollect.cli"]


def measure(cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` as a process: its wall time, CPU time (user + system) and peak RSS (MiB).

    :raises subprocess.CalledProcessError: the command failed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        w0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - w0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stdout, stderr)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def repeat(cmd: list[str], n: int, **kw: Any) -> dict[str, Any]:
    """:func:`measure` ``n`` times: min and median of wall and CPU, max of the peak RSS."""
    runs = [measure(cmd, **kw) for _ in range(n)]
    walls = [r["wall"] for r in runs]
    cpus = [r["cpu"] for r in runs]
    return {
        "wall": min(walls),
        "wall_median": statistics.median(walls),
        "cpu": min(cpus),
        "cpu_median": statistics.median(cpus),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "stdout": runs[-1]["stdout"],
    }


def store_for(cache: Path, invoices: int, seed: int) -> Path:
    """The cached store of ``invoices`` invoices, made once with ``carecollect demo --invoices N --no-run``."""
    path = cache / f"portfolio-{invoices}-seed{seed}-{AS_OF.isoformat()}.sqlite"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("making-" + path.name)
        for p in tmp.parent.glob(tmp.stem + "*"):
            p.unlink()
        print(
            f"  making {invoices:,} invoices: carecollect demo --invoices {invoices} --no-run ...", flush=True
        )
        made = measure(
            [*_cli(), "demo", "--invoices", str(invoices), "--seed", str(seed), "--no-run", "--db", str(tmp)]
        )
        tmp.rename(path)
        tmp.with_suffix(".toml").rename(path.with_suffix(".toml"))
        print(f"  made in {made['wall']:.0f} s", flush=True)
    else:  # a store cached by an earlier release: its schema brought up to date here, not in a timed run
        subprocess.run([*_cli(), "migrate", "--db", str(path)], check=True, capture_output=True)
    return path


def _as_of(now: dt.datetime) -> str:
    return now.isoformat()


def dry_run(path: Path, now: dt.datetime, n: int) -> dict[str, Any]:
    """``carecollect run --dry-run`` on ``path`` at ``now``, ``n`` times."""
    return repeat([*_cli(), "run", "--dry-run", "--db", str(path), "--as-of", _as_of(now)], n)


def floor_child(kind: str, path: str, now: str) -> dict[str, Any]:
    """In a fresh process: the read floor, or the decision floor and the kernel on in-memory rows."""
    from ..run.kernel import RunTables, decide
    from ..run.process import tune_gc_for_batch_run
    from ..run.rows import Contexts
    from .floors import decision_floor, read_floor, store_rows

    tune_gc_for_batch_run()  # as carecollect run does: the floors run under the product's settings
    at = dt.datetime.fromisoformat(now)
    if kind == "read":
        accounts, invoices = read_floor(path, at)
        return {"accounts": accounts, "invoices": invoices}
    contexts = Contexts()
    rows = [r for acc in store_rows(path, at, contexts) if not acc.rich for r in acc.rows]
    tables = RunTables(contexts, at)
    tables.views()
    c0 = time.process_time()
    floor = decision_floor(rows, tables)
    floor_cpu = time.process_time() - c0
    c0 = time.process_time()
    kernel = decide(rows, tables)
    kernel_cpu = time.process_time() - c0
    if floor != kernel:
        raise SystemExit("the decision floor disagrees with the kernel: the floor is wrong")
    return {"rows": len(rows), "floor_cpu": floor_cpu, "kernel_cpu": kernel_cpu}


def _floor(kind: str, path: Path, now: dt.datetime, n: int = 1) -> dict[str, Any]:
    res = repeat([sys.executable, "-m", "carecollect.bench", "--_floor", kind, str(path), _as_of(now)], n)
    res.update(json.loads(res.pop("stdout").strip().splitlines()[-1]))
    return res


def day_after(path: Path, tmp: Path) -> tuple[Path, dt.datetime]:
    """A copy of the store at ``path`` after one real run at :data:`NOW` (not timed); the next day's instant."""
    copy = tmp / "day-after.sqlite"
    shutil.copy(path, copy)
    shutil.copy(path.with_suffix(".toml"), copy.with_suffix(".toml"))
    measure([*_cli(), "run", "--db", str(copy), "--as-of", _as_of(NOW)], cwd=str(tmp))
    return copy, NOW + dt.timedelta(days=1)


def _size(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _sent(report: str) -> int:
    """The "sent" count of a run's printed report."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 2 and cells[0] == "sent":
            return int(cells[1].replace(",", ""))
    return 0


def full_run(
    path: Path, workers: int | None, tmp: Path, layout: str = "files", cluster: str | None = None
) -> dict[str, Any]:
    """``carecollect run`` (everything due rendered and sent through the file outbox, in ``layout``)
    on a copy of ``path``, with ``workers`` processes (``None``: the default, ``--workers auto``)
    or on a Dask ``cluster``; with the store's growth and the outbox's size."""
    folder = tmp / f"full-{workers or 'auto'}-{layout}-{cluster or 'processes'}".replace(":", "-")
    folder.mkdir()
    copy = folder / "run.sqlite"
    shutil.copy(path, copy)
    config = path.with_suffix(".toml").read_text(encoding="utf-8")
    config = re.sub(r'(?m)^layout = "[a-z]+"\n', "", config)  # the portfolio's own choice, if any
    config = config.replace("[plugins.outbox]\n", f'[plugins.outbox]\nlayout = "{layout}"\n', 1)
    copy.with_suffix(".toml").write_text(config, encoding="utf-8")
    before = _size(copy)
    how = (
        ["--cluster", cluster, "--partitions", str(CLUSTER_BENCH_PARTITIONS)]
        if cluster
        else ["--workers", str(workers)]
        if workers
        else []
    )
    res = measure([*_cli(), "run", "--db", str(copy), "--as-of", _as_of(NOW), *how], cwd=str(folder))
    res["sent"] = _sent(res["stdout"])
    res["db_growth"] = sum(_size(p) for p in folder.glob("run.sqlite*")) - before
    res["outbox_size"] = sum(_size(p) for p in folder.iterdir() if p.is_dir())
    return res


#: The figures the dry run must reach (issue "one decision path"): wall seconds on one core for
#: :data:`TARGET_INVOICES` invoices, CPU ratios to the read and decision floors, peak MiB at every size.
TARGET_WALL_S = 15.0
TARGET_INVOICES = 1_000_000
TARGET_READ_RATIO = 1.5
TARGET_DECISION_RATIO = 10.0
TARGET_PEAK_MIB = 80.0


def against_targets(
    results: dict[int, tuple[dict[str, Any], dict[str, Any]]], size: int, decision_ratio: float
) -> list[str]:
    """One line per target: the figure measured, the target, and whether it is met.

    :param results: ``invoices -> (dry run, read floor)`` as :func:`repeat` measured them.
    :param size: the largest store's invoices.
    :param decision_ratio: the dry run's CPU per invoice over the decision floor's.

    >>> run = {"wall": 14.0, "cpu": 13.0, "rss_mib": 60.0}
    >>> for line in against_targets({1_000_000: (run, {"cpu": 10.0})}, 1_000_000, 9.5):
    ...     print(line)
    dry run wall 14.0 s, CPU 13.0 s (target <= 15 s on one core): met
    CPU 1.30x the read floor (target <= 1.5x): met
    9.5x the decision floor (target <= 10x): met
    peak 60 MiB at the largest of 1 sizes (target <= 80 MiB at every size): met
    """
    product, floor = results[size]
    peak = max(r[0]["rss_mib"] for r in results.values())
    read_ratio = product["cpu"] / floor["cpu"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    if size == TARGET_INVOICES:
        lines.append(
            f"dry run wall {product['wall']:.1f} s, CPU {product['cpu']:.1f} s "
            f"(target <= {TARGET_WALL_S:.0f} s on one core): {verdict(product['wall'] <= TARGET_WALL_S)}"
        )
    lines += [
        f"CPU {read_ratio:.2f}x the read floor (target <= {TARGET_READ_RATIO}x): "
        f"{verdict(read_ratio <= TARGET_READ_RATIO)}",
        f"{decision_ratio:.1f}x the decision floor (target <= {TARGET_DECISION_RATIO:.0f}x): "
        f"{verdict(decision_ratio <= TARGET_DECISION_RATIO)}",
        f"peak {peak:.0f} MiB at the largest of {len(results)} sizes (target <= {TARGET_PEAK_MIB:.0f} MiB "
        f"at every size): {verdict(peak <= TARGET_PEAK_MIB)}",
    ]
    return lines


#: Partitions of the cluster runs (the same for 1 and 2 workers, so the work is the same).
CLUSTER_BENCH_PARTITIONS = 8

#: The daily run the cost model sizes workers for.
MODEL_SECONDS = 600
MODEL_INVOICES = 10_000_000


def cost_model(invoices: int, sent: int, one: float, two: float, partitions: int) -> list[str]:
    """Lines of the cost model: the per-invoice figures measured here, extrapolated to 10,000,000 invoices.

    ``one`` and ``two`` are the wall times with 1 and 2 workers on the same ``partitions``. Each
    partition reads only its own accounts (the partition key is filtered in SQL), so the work
    grows with the invoices and not with the partitions; each added worker is worth what the
    second one was worth here (``efficiency``). Per run: ``per_invoice * invoices / (1 +
    (workers - 1) * efficiency)``. The store must keep up (PostgreSQL; one SQLite file takes one
    writer at a time).
    """
    efficiency = max(one / two - 1, 0.0) if two else 0.0
    per_invoice = one / invoices
    lines = [
        f"  measured: {invoices:,} invoices, {sent:,} messages, {partitions} partitions; "
        f"1 worker {one:.1f} s, 2 workers {two:.1f} s: a second worker is worth {efficiency:.2f} of the first",
        f"  per invoice, everything included: {per_invoice * 1e6:.0f} µs of one worker",
    ]
    found = None
    for workers in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        wall = per_invoice * MODEL_INVOICES / (1 + (workers - 1) * efficiency)
        lines.append(f"  {workers:>4} workers, {workers * 4:>4} partitions: {wall:8.0f} s")
        if found is None and wall <= MODEL_SECONDS:
            found = workers
    lines.append(
        f"  {MODEL_INVOICES:,} invoices in {MODEL_SECONDS} s: "
        + (f"{found} workers" if found else "not reached")
    )
    return lines


def _row(*cells: object) -> None:
    print("  " + "".join(f"{c!s:>13}" if i else f"{c!s:<34}" for i, c in enumerate(cells)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(prog="python -m carecollect.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="largest store (default 1,000,000 invoices)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timed command (default 3)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CI size: stores of 2,000 and at most 10,000 invoices, one run each",
    )
    ap.add_argument("--skip-full", action="store_true", help="skip the full runs (4 and 5)")
    ap.add_argument("--skip-cluster", action="store_true", help="skip the Dask LocalCluster runs (5)")
    ap.add_argument("--skip-channels", action="store_true", help="skip the channel figures (6)")
    ap.add_argument("--skip-postgres", action="store_true", help="skip the PostgreSQL runs (7)")
    ap.add_argument(
        "--full-invoices", type=int, default=None, help="portfolio of the full run (default 65,000)"
    )
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "carecollect-bench"))
    ap.add_argument("--_floor", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._floor:
        print(json.dumps(floor_child(*args._floor)))
        return 0
    size = min(args.size, 10_000) if args.quick else args.size
    n = 1 if args.quick else args.repeat
    sizes = sorted({s for s in (2_000 if args.quick else 10_000, 100_000, size) if s <= size})
    full_invoices = args.full_invoices or (300 if args.quick else 65_000)
    cache = Path(args.cache_dir)
    print(
        f"carecollect benchmark: stores up to {size:,} invoices, seed {args.seed}, run at {NOW.isoformat()}"
    )
    print(
        f"  python {sys.version.split()[0]}, {os.cpu_count()} cores, fastest of {n} runs (median in brackets)\n"
    )

    print("1. carecollect run --dry-run, beside the read floor (same rows streamed, no decision)")
    _row("invoices", "dry run s", "CPU s", "peak MiB", "µs/invoice", "read floor s", "ratio")
    results: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for invoices in sizes:
        path = store_for(cache, invoices, args.seed)
        product = dry_run(path, NOW, n)
        floor = _floor("read", path, NOW, n)
        results[invoices] = (product, floor)
        _row(
            f"{invoices:,}",
            f"{product['wall']:.2f} ({product['wall_median']:.2f})",
            f"{product['cpu']:.2f}",
            f"{product['rss_mib']:.0f}",
            f"{product['cpu'] / invoices * 1e6:.1f}",
            f"{floor['wall']:.2f}",
            f"{product['cpu'] / floor['cpu']:.2f}x",
        )
    product, _ = results[size]
    decisions = _floor("decide", store_for(cache, sizes[1] if len(sizes) > 1 else size, args.seed), NOW)
    per_floor = decisions["floor_cpu"] / decisions["rows"] * 1e6
    per_kernel = decisions["kernel_cpu"] / decisions["rows"] * 1e6
    per_product = product["cpu"] / size * 1e6
    print(
        f"  decision floor on {decisions['rows']:,} rows in memory: {per_floor:.2f} µs/invoice (bare Python); "
        f"the run's kernel on the same rows {per_kernel:.2f} µs ({per_kernel / per_floor:.2f}x); "
        f"the whole dry run {per_product:.1f} µs/invoice = {per_product / per_floor:.1f}x the decision floor"
    )
    print(
        f"  at {size:,} invoices: {product['wall']:.1f} s wall, {product['cpu']:.1f} s CPU, "
        f"peak {product['rss_mib']:.0f} MiB; CPU {product['cpu'] / results[size][1]['cpu']:.2f}x the read floor"
    )
    print(f"  against the targets (at {size:,} invoices; the wall target is for {TARGET_INVOICES:,}):")
    for line in against_targets(results, size, per_product / per_floor):
        print("    " + line)
    print()

    with tempfile.TemporaryDirectory(prefix="carecollect-bench-") as tmp_name:
        tmp = Path(tmp_name)
        small = sizes[0]
        print(
            f"2. The day after a real run ({small:,} invoices: carecollect run at {NOW.date()}, then the dry run)"
        )
        copy, next_day = day_after(store_for(cache, small, args.seed), tmp)
        after = dry_run(copy, next_day, n)
        print(
            f"  carecollect run --dry-run: {after['wall']:.2f} s wall, {after['cpu']:.2f} s CPU, "
            f"{after['cpu'] / small * 1e6:.1f} µs/invoice, peak {after['rss_mib']:.0f} MiB\n"
        )

        print("3. Import time (compiled bytecode; python -c pass is the interpreter alone)")
        py = sys.executable
        subprocess.run([py, "-m", "compileall", "-q", str(Path(__file__).parents[1])], check=False)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        reps = 3 if args.quick else 10
        for label, cmd in (
            ("python -c pass", [py, "-c", "pass"]),
            ('python -c "import carecollect"', [py, "-c", "import carecollect"]),
            ("carecollect --help", [*_cli(), "--help"]),
        ):
            r = repeat(cmd, reps, env=env)
            print(f"  {label:<34} {r['wall'] * 1000:6.0f} ms ({r['wall_median'] * 1000:.0f} median)")
        print()

        walls: dict[int, float] = {}
        if not args.skip_full:
            print(f"4. Full run: carecollect run on {full_invoices:,} invoices (render, file outbox, send)")
            path = store_for(cache, full_invoices, args.seed)
            one_cpu: list[float] = []  # CPU per message of the one-process runs
            default_wall = 0.0
            # the last: as a new installation runs it (init's spool, --workers auto)
            runs: tuple[tuple[int | None, str], ...] = (
                (1, "files"),
                (1, "spool"),
                (2, "files"),
                (None, "spool"),
            )
            for workers, layout in runs:
                r = full_run(path, workers, tmp, layout)
                per = max(r["sent"], 1)
                if workers is None:
                    default_wall = r["wall"] * 100_000 / per
                elif layout == "files":
                    walls[workers] = r["wall"]
                if workers == 1:
                    one_cpu.append(r["cpu"] / per)
                rate = r["sent"] / r["wall"] if r["wall"] else 0.0
                print(
                    f"  --workers {workers or 'auto (the default)'}, outbox layout {layout}: "
                    f"{r['sent']:,} messages sent: "
                    f"wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (all its processes), {rate:.0f} messages/s, "
                    f"{r['cpu'] / per * 1000:.2f} ms CPU per message; peak {r['rss_mib']:.0f} MiB; "
                    f"database growth {r['db_growth'] / per:,.0f} B and outbox {r['outbox_size'] / per:,.0f} B "
                    "per message"
                )
            print(f"  1 worker / 2 workers: {walls[1] / walls[2]:.2f}x (issue 15 asks >= 1.7x)")
            print(
                f"  the default run: {default_wall:.1f} s wall per 100,000 messages (issue 15 asks <= 30 s); "
                f"one process: {min(one_cpu) * 1000:.2f} ms CPU per message (issue 15 asks <= 0.4 ms)"
            )
            print()
            if not args.skip_cluster:
                _cluster_figures(path, tmp, full_invoices)
                print()
        if not args.skip_channels:
            from .channels import sms_figures, smtp_figures

            print("6. SMTP to aiosmtpd on 127.0.0.1 (a process of its own), the smtp channel")
            for line in smtp_figures(500 if args.quick else 3000, 100 if args.quick else 500):
                print("  " + line)
            print("   SMS to the sms plugin's local test gateway (a process of its own), the sms channel")
            for line in sms_figures(200 if args.quick else 1000):
                print("  " + line)
            print()
        if not args.skip_postgres:
            _postgres_figures(
                cache, tmp, size, args.seed, n, full_invoices, walls.get(1) if not args.skip_full else None
            )
    return 0


def _cluster_figures(path: Path, tmp: Path, invoices: int) -> None:
    import importlib.util

    print(
        f"5. Full run on a Dask LocalCluster ({CLUSTER_BENCH_PARTITIONS} partitions), {invoices:,} invoices"
    )
    if importlib.util.find_spec("distributed") is None:
        print('  skipped: pip install "carecollect[dask]"')
        return
    walls = {}
    sent = 0
    for workers in (1, 2):
        r = full_run(path, workers, tmp, cluster=f"local:{workers}")
        walls[workers], sent = r["wall"], r["sent"]
        print(f"  --cluster local:{workers}: {r['sent']:,} messages sent: wall {r['wall']:.1f} s")
    print(f"  local:1 / local:2: {walls[1] / walls[2]:.2f}x (issue 16 asks >= 1.6x)")
    print("  cost model:")
    for line in cost_model(invoices, sent, walls[1], walls[2], CLUSTER_BENCH_PARTITIONS):
        print(line)


def _postgres_figures(
    cache: Path, tmp: Path, size: int, seed: int, n: int, full_invoices: int, sqlite_full: float | None
) -> None:
    """6: the dry run of ``size`` invoices and the full run of ``full_invoices`` from a throwaway
    PostgreSQL server (the same portfolio as the SQLite stores, loaded untimed)."""
    import contextlib
    import importlib.util

    print(f"7. PostgreSQL: the dry run of {size:,} invoices and the full run of {full_invoices:,}")
    if importlib.util.find_spec("psycopg") is None:
        print('  skipped: pip install "carecollect[postgres]"')
        return
    from ..portfolio import load_portfolio
    from ..store.postgres import PostgresStore
    from ..testing.postgres import LocalPostgres, find_server_binaries

    if find_server_binaries() is None:
        print("  skipped: no PostgreSQL server binaries (Debian: apt-get install postgresql)")
        return
    with LocalPostgres() as server:
        for invoices, label in ((size, "dry"), (full_invoices, "full")):
            url = server.create_database(f"bench_{label}")
            t0 = time.perf_counter()
            with contextlib.closing(PostgresStore(url, migrate=True)) as store:
                load_portfolio(store, invoices, seed=seed, as_of=AS_OF)
            print(
                f"  loaded {invoices:,} invoices in {time.perf_counter() - t0:.0f} s (not timed below)",
                flush=True,
            )
            settings = store_for(cache, invoices, seed)  # its settings file; the records come from the server
            if label == "dry":
                cmd = [
                    *_cli(),
                    "run",
                    "--dry-run",
                    "--db",
                    str(settings),
                    "--store",
                    url,
                    "--as-of",
                    _as_of(NOW),
                ]
                r = repeat(cmd, n)
                print(
                    f"  carecollect run --dry-run --store postgresql://...: {r['wall']:.1f} s wall "
                    f"({r['wall_median']:.1f} median), {r['cpu']:.1f} s CPU of the run's process, "
                    f"peak {r['rss_mib']:.0f} MiB; {r['wall'] / invoices * 1e6:.1f} µs/invoice "
                    f"(issue 16 asks <= 25 s for 1,000,000)"
                )
                continue
            folder = tmp / "full-postgres"
            folder.mkdir()
            (folder / "run.toml").write_text(
                settings.with_suffix(".toml").read_text(encoding="utf-8"), encoding="utf-8"
            )
            r = measure(
                [*_cli(), "run", "--db", str(folder / "run.sqlite"), "--store", url, "--as-of", _as_of(NOW)],
                cwd=str(folder),
            )
            sent = _sent(r["stdout"])
            ratio = (
                f"; {r['wall'] / sqlite_full:.2f}x the SQLite run (issue 16 asks <= 1.5x)"
                if sqlite_full
                else ""
            )
            print(
                f"  carecollect run --store postgresql://...: {sent:,} messages sent: wall {r['wall']:.1f} s, "
                f"{r['cpu'] / max(sent, 1) * 1000:.2f} ms CPU per message in the run's process{ratio}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
