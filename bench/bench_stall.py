"""Event-loop stalls during a pass: how long the loop ever waits before it can run
a ready task, while the pipeline fetches, extracts, fingerprints, matches and
stores every bench article (the same pass as bench_articles, default workers).

    .venv/bin/python bench/bench_stall.py [--limit N] [--workers N]

A probe task asks to wake every 5 ms and records how late it wakes: the lateness
is the time the loop was busy with something else (a stall). Reported: the
longest stall, p99, p50, and the number of stalls over 50 ms and 100 ms.
Without bench data the pages are generated.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import StaticServer, emit, header, pct, write_config  # noqa: E402
from bench.bench_articles import feed_xml, load_pages  # noqa: E402

PROBE = 0.005


async def probe(stalls: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(PROBE)
        stalls.append(max(0.0, loop.time() - asked - PROBE))


async def one_pass(config_path: Path, workers: int | None) -> tuple[float, list[float], dict]:
    from monitor.cli.main import _fetch_policy
    from monitor.config import load_config
    from monitor.pipeline.orchestrator import Pipeline
    from monitor.pipeline.workers import Workers
    from monitor.sources.fetch import Fetcher
    from storage import open_store

    config = load_config(config_path)
    store = open_store(config.storage_url)
    pool = Workers(workers if workers is not None else config.monitor.workers)
    stalls: list[float] = []
    stop = asyncio.Event()
    try:
        async with Fetcher(_fetch_policy(config)) as http:
            pipeline = Pipeline(config, store, http, workers=pool)
            task = asyncio.create_task(probe(stalls, stop))
            started = time.perf_counter()
            results = await pipeline.run(list(config.sources))
            elapsed = time.perf_counter() - started
            stop.set()
            await task
    finally:
        pool.close()
        store.close()
    return elapsed, stalls, {"new_articles": sum(r.new_articles for r in results)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="default: the config's (0 = per core)")
    args = ap.parse_args()

    header("bench_stall: the longest event-loop stall during a pass over the articles")
    pages, origin = load_pages(args.limit)
    print(f"   pages: {len(pages)} {origin}")
    routes = {f"/a/{name}.html": ("text/html; charset=utf-8", body) for name, body in pages}
    tmp = Path(tempfile.mkdtemp(prefix="bench-stall-"))
    try:
        with StaticServer(routes, n_hosts=16) as srv:
            urls = [srv.url(f"/a/{name}.html", i) for i, (name, _) in enumerate(pages)]
            feed = StaticServer({"/feed.xml": ("application/rss+xml", feed_xml(
                [(f"Article {name}", u) for (name, _), u in zip(pages, urls)]))})
            try:
                cfg = write_config(tmp / "monitor.toml",
                                   [{"name": "articles", "kind": "feed",
                                     "url": feed.url("/feed.xml"), "fetch_articles": True}],
                                   f"sqlite:///{tmp / 'monitor.db'}")
                elapsed, stalls, summary = asyncio.run(one_pass(cfg, args.workers))
            finally:
                feed.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms = [s * 1000 for s in stalls]
    longest, p99, p50 = max(ms), pct(ms, 99), pct(ms, 50)
    print(f"   pass: {elapsed:.2f} s, {summary['new_articles']} new articles, {len(ms)} probes")
    print(f"   stall: longest {longest:.1f} ms, p99 {p99:.1f} ms, p50 {p50:.2f} ms; "
          f"over 50 ms: {sum(m > 50 for m in ms)}, over 100 ms: {sum(m > 100 for m in ms)}")
    emit("stall", {"pages": len(pages), "origin": origin, "seconds": elapsed,
                   "longest_ms": longest, "p99_ms": p99, "p50_ms": p50,
                   "over_50ms": sum(m > 50 for m in ms), "over_100ms": sum(m > 100 for m in ms),
                   **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
