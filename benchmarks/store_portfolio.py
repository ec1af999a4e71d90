"""Time and peak memory to generate + insert a synthetic portfolio into SQLite, and to stream it back.

Usage: PYTHONPATH=src python benchmarks/store_portfolio.py 1000000 /tmp/portfolio.db [--snapshots]
(not a test; prints its figures).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import time

from carecollect.portfolio import load_portfolio
from carecollect.store import SQLiteStore


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    size, path = int(sys.argv[1]), sys.argv[2]
    if os.path.exists(path):
        os.remove(path)
    store = SQLiteStore(path)
    start = time.perf_counter()
    facts = load_portfolio(store, size, seed=1, as_of=dt.date(2026, 3, 2))
    print(f"generate+insert {size}: {time.perf_counter() - start:.1f}s, peak RSS {_rss():.0f} MiB; {facts}")
    start = time.perf_counter()
    rows = sum(1 for _ in store.iter_invoice_rows(batch_size=5000))
    print(f"stream InvoiceRow: {rows} rows in {time.perf_counter() - start:.1f}s, peak RSS {_rss():.0f} MiB")
    if "--snapshots" in sys.argv:
        start = time.perf_counter()
        invoices = sum(len(s.invoices) for s in store.iter_account_snapshots(batch_size=1000))
        print(
            f"stream AccountSnapshot: {invoices} invoices in {time.perf_counter() - start:.1f}s, "
            f"peak RSS {_rss():.0f} MiB"
        )
    store.close()
    print(f"file: {os.path.getsize(path) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
