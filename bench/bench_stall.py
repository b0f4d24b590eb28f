"""Event-loop stalls during a pass: how long the loop ever waits before it can run
a ready task, while the pipeline fetches, extracts, fingerprints, matches and
stores every bench article (the same pass as bench_articles, default workers).

    .venv/bin/python bench/bench_stall.py [--limit N] [--workers N] [--hold MS] [--runs N]
                                          [--feeds N]

While the pass runs, a second process writes to the same SQLite file: it takes
the write lock (BEGIN IMMEDIATE), holds it ``--hold`` ms, commits, rests 20 ms,
and again (``--hold 0``: no second process). Every write of the pass may wait
for that lock; the waits must not land on the event loop. After the first pass
(every article new), three more find nothing new, as most of a daemon's polls.

A probe task asks to wake every 5 ms and records how late it wakes: the lateness
is the time the loop was busy with something else (a stall). Reported: the
longest stall, p99, p50, and the number of stalls over 50 ms and 100 ms.
Without bench data the pages are generated.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import StaticServer, emit, header, pct, write_config  # noqa: E402
from bench.bench_articles import feed_xml, load_pages  # noqa: E402

PROBE = 0.005
STEADY_PASSES = 3


def writer(path: str, hold: float, stop) -> None:
    """The other process: takes SQLite's write lock again and again until ``stop``."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_writer (n INTEGER)")
    n = 0
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_writer (n) VALUES (?)", (n,))
        time.sleep(hold)
        conn.execute("COMMIT")
        n += 1
        time.sleep(0.02)
    conn.close()


async def probe(stalls: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(PROBE)
        stalls.append(max(0.0, loop.time() - asked - PROBE))


async def one_pass(config_path: Path, workers: int | None,
                   hold: float) -> tuple[float, float, list[float], dict]:
    from monitor.config import load_config
    from monitor.pipeline.orchestrator import Pipeline
    from monitor.pipeline.workers import Workers
    from monitor.runtime import fetch_policy
    from monitor.sources.fetch import Fetcher
    from storage import open_store

    config = load_config(config_path)
    store = open_store(config.storage_url)
    pool = Workers(workers if workers is not None else config.monitor.workers)
    stalls: list[float] = []
    stop = asyncio.Event()
    done = multiprocessing.Event()
    other = None
    if hold > 0:
        other = multiprocessing.Process(
            target=writer, args=(config.storage_url[len("sqlite:///"):], hold, done))
        other.start()
    try:
        async with Fetcher(fetch_policy(config)) as http:
            pipeline = Pipeline(config, store, http, workers=pool)
            task = asyncio.create_task(probe(stalls, stop))
            started, cpu = time.perf_counter(), time.process_time()
            results = await pipeline.run(list(config.sources))
            # Then the daemon's usual poll: every feed again, nothing new in it; each
            # poll only reads its state and writes it back (with its count).
            for _ in range(STEADY_PASSES):
                await pipeline.run(list(config.sources))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            stop.set()
            await task
    finally:
        done.set()
        if other is not None:
            other.join()
        pool.close()
        store.close()
    return elapsed, cpu, stalls, {"new_articles": sum(r.new_articles for r in results)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None,
                    help="default: the config's (0 = per core)")
    ap.add_argument("--hold", type=float, default=200.0,
                    help="ms the other process holds the write lock each time"
                         " (0: no other process)")
    ap.add_argument("--runs", type=int, default=3, help="passes; medians are reported")
    ap.add_argument("--feeds", type=int, default=10, help="feeds the pages are spread over")
    args = ap.parse_args()

    header("bench_stall: the longest event-loop stall during a pass over the articles")
    pages, origin = load_pages(args.limit)
    print(f"   pages: {len(pages)} {origin} in {args.feeds} feeds;"
          f" other writer holds the lock {args.hold:.0f} ms")
    runs = [one_run(pages, args.workers, args.hold / 1000, args.feeds)
            for _ in range(args.runs)]
    for elapsed, cpu, ms, summary in runs:
        print(f"   pass: {elapsed:.2f} s wall, {cpu:.2f} s CPU, {summary['new_articles']} new"
              f" articles, {len(ms)} probes; stall: longest {max(ms):.1f} ms,"
              f" p99 {pct(ms, 99):.1f} ms, over 100 ms: {sum(m > 100 for m in ms)}")
    elapsed = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    longest = statistics.median(max(r[2]) for r in runs)
    p99 = statistics.median(pct(r[2], 99) for r in runs)
    p50 = statistics.median(pct(r[2], 50) for r in runs)
    over50 = statistics.median(sum(m > 50 for m in r[2]) for r in runs)
    over100 = statistics.median(sum(m > 100 for m in r[2]) for r in runs)
    summary = runs[-1][3]
    print(f"   median of {len(runs)}: pass {elapsed:.2f} s wall, {cpu:.2f} s CPU;"
          f" stall: longest {longest:.1f} ms, p99 {p99:.1f} ms, p50 {p50:.2f} ms;"
          f" over 50 ms: {over50:g}, over 100 ms: {over100:g}")
    emit("stall", {"pages": len(pages), "origin": origin, "feeds": args.feeds,
                   "hold_ms": args.hold,
                   "runs": len(runs), "seconds": elapsed, "cpu_seconds": cpu,
                   "longest_ms": longest, "p99_ms": p99, "p50_ms": p50,
                   "over_50ms": over50, "over_100ms": over100, **summary})
    return 0


def one_run(pages: list, workers: int | None, hold: float,
            feeds: int) -> tuple[float, float, list[float], dict]:
    """One pass over a fresh database: wall and CPU seconds, stalls in ms, summary."""
    routes = {f"/a/{name}.html": ("text/html; charset=utf-8", body) for name, body in pages}
    tmp = Path(tempfile.mkdtemp(prefix="bench-stall-"))
    try:
        with StaticServer(routes, n_hosts=16) as srv:
            urls = [srv.url(f"/a/{name}.html", i) for i, (name, _) in enumerate(pages)]
            items = [(f"Article {name}", u) for (name, _), u in zip(pages, urls, strict=True)]
            # Several feeds: their polls end at different times, so each poll's own
            # writes (its state, its counts) meet the other process's lock anywhere.
            feed = StaticServer({f"/feed{i}.xml": ("application/rss+xml",
                                                   feed_xml(items[i::feeds]))
                                 for i in range(feeds)})
            try:
                cfg = write_config(tmp / "monitor.toml",
                                   [{"name": f"articles{i}", "kind": "feed",
                                     "url": feed.url(f"/feed{i}.xml"), "fetch_articles": True}
                                    for i in range(feeds)],
                                   f"sqlite:///{tmp / 'monitor.db'}")
                elapsed, cpu, stalls, summary = asyncio.run(one_pass(cfg, workers, hold))
            finally:
                feed.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return elapsed, cpu, [s * 1000 for s in stalls], summary


if __name__ == "__main__":
    sys.exit(main())
