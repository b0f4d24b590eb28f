"""Feed path of check-now (monitor.cli.main.main, in-process, temp config and SQLite
store) vs a bare httpx GET + feedparser.parse loop, same feeds, same concurrency,
served on loopback (many 127.0.0.x hosts) by a server process.

    .venv/bin/python bench/bench_feeds.py [--limit N] [--concurrency 16]

Feeds: the real snapshots in $BENCH_DATA/feeds (or ../shared/bench-data/feeds),
else --generated N synthetic RSS feeds. Sources use fetch_articles = false, so
the figure is the feed path: fetch, parse, seen?, fingerprint, dedup, match, store.

Targets (ratios against the bare loop measured in the same run):
  first pass  <= 1.0x bare (wall; CPU printed beside it);  second pass over
  unchanged feeds that send no validators (no ETag / Last-Modified) <= 0.3x bare.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (  # noqa: E402
    StaticServer,
    bench_data,
    check_now,
    cpu,
    emit,
    generated_text,
    header,
    sniff_type,
    verdict,
    write_config,
)


def real_feeds(folder: Path, limit: int | None) -> list[tuple[str, bytes]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "LICENSE")
    return [(p.name, p.read_bytes()) for p in files[:limit]]


def generated_feeds(n: int, entries: int) -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    feeds = []
    for i in range(n):
        items = []
        for j in range(entries):
            text = generated_text(rng, rng.randint(60, 400))
            items.append(
                f"<item><title>Report {i}-{j}: {escape(text[:60])}</title>"
                f"<link>https://site{i}.example/news/{j}</link>"
                f"<guid>https://site{i}.example/news/{j}</guid>"
                f"<pubDate>{format_datetime(now - timedelta(hours=j))}</pubDate>"
                f"<description>{escape(text)}</description></item>")
        feeds.append((f"gen{i:04d}", (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Generated {i}</title><link>https://site{i}.example/</link>"
            + "".join(items) + "</channel></rss>").encode()))
    return feeds


async def bare_loop(urls: list[str], concurrency: int) -> tuple[float, int, int]:
    import feedparser
    import httpx

    sem = asyncio.Semaphore(concurrency)
    entries = errors = 0

    async def one(client: httpx.AsyncClient, url: str) -> None:
        nonlocal entries, errors
        async with sem:
            try:
                r = await client.get(url)
                entries += len(feedparser.parse(r.content).entries)
            except Exception:  # noqa: BLE001 - any failure counts as an error of the bare loop
                errors += 1

    t = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(one(client, u) for u in urls))
    return time.perf_counter() - t, entries, errors


def summarise(summary: dict) -> dict:
    out = {"ok": 0, "not_modified": 0, "error": 0}
    for r in summary.get("sources", []):
        out[r["status"]] = out.get(r["status"], 0) + 1
    out["entries"] = sum(r.get("entries", 0) for r in summary.get("sources", []))
    for key in ("new_articles", "duplicates", "alerts", "delivered"):
        out[key] = summary.get(key)
    return out


async def profile_parse(feeds: list[tuple[str, bytes]]) -> dict:
    """Where the CPU of a feed goes: feedparser alone vs monitor.sources.feeds.parse_feed."""
    import feedparser

    from monitor.errors import ParseError
    from monitor.sources import feeds as mfeeds
    t = time.perf_counter()
    for _, body in feeds:
        feedparser.parse(body)
    bare = time.perf_counter() - t
    t = time.perf_counter()
    for name, body in feeds:
        try:
            mfeeds.parse_feed(body, url=f"http://127.0.0.1/{name}")
        except ParseError:
            pass
    ours = time.perf_counter() - t
    return {"feedparser_s": bare, "parse_feed_s": ours}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N real feeds")
    ap.add_argument("--generated", type=int, default=200,
                    help="number of generated feeds when bench data is absent (default 200)")
    ap.add_argument("--entries", type=int, default=30, help="entries per generated feed")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None,
                    help="[monitor] workers for check-now (default: the project's default)")
    ap.add_argument("--profile", action="store_true",
                    help="also time feedparser.parse vs monitor.sources.feeds.parse_feed offline")
    args = ap.parse_args()

    header("bench_feeds: check-now feed path vs bare httpx+feedparser")
    data = bench_data()
    if data is not None and (data / "feeds").is_dir():
        feeds, origin = real_feeds(data / "feeds", args.limit), f"real snapshots ({data / 'feeds'})"
    else:
        feeds = generated_feeds(args.generated, args.entries)
        origin = "generated (bench data absent)"
    size = sum(len(b) for _, b in feeds)
    print(f"   feeds: {len(feeds)} {origin}, {size / 1e6:.1f} MB; concurrency {args.concurrency}")

    routes = {f"/feeds/{name}": (sniff_type(body), body) for name, body in feeds}
    tmp = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    try:
        with StaticServer(routes, n_hosts=len(feeds)) as srv:
            urls = [srv.url(f"/feeds/{name}", i) for i, (name, _) in enumerate(feeds)]
            sources = [{"name": f"f{i:04d}", "kind": "feed", "url": u, "fetch_articles": False}
                       for i, u in enumerate(urls)]
            config = write_config(tmp / "monitor.toml", sources,
                                  f"sqlite:///{tmp / 'monitor.db'}",
                                  concurrency=args.concurrency, workers=args.workers)

            c0 = cpu()
            bare, bare_entries, bare_errors = asyncio.run(bare_loop(urls, args.concurrency))
            bare_cpu, c0 = cpu() - c0, cpu()
            print(f"   bare loop           {bare:8.2f} s  {bare_cpu:7.2f} CPU s  ({bare_entries}"
                  f" entries, {bare_errors} errors)")
            first, code1, r1 = check_now(config)
            first_cpu, c0 = cpu() - c0, cpu()
            s1 = summarise(r1)
            print(f"   check-now pass 1    {first:8.2f} s  {first_cpu:7.2f} CPU s"
                  f"  = {first / bare:.2f}x bare ({first_cpu / bare_cpu:.2f}x CPU)  {s1}")
            second, code2, r2 = check_now(config)
            second_cpu = cpu() - c0
            s2 = summarise(r2)
            print(f"   check-now pass 2    {second:8.2f} s  {second_cpu:7.2f} CPU s"
                  f"  = {second / bare:.2f}x bare ({second_cpu / bare_cpu:.2f}x CPU)  {s2}"
                  f"  (unchanged, no validators)")
        prof = asyncio.run(profile_parse(feeds)) if args.profile else None
        if prof:
            print(f"   offline parse: feedparser {prof['feedparser_s']:.2f} s,"
                  f" monitor.sources.feeds.parse_feed {prof['parse_feed_s']:.2f} s"
                  f" ({prof['parse_feed_s'] / prof['feedparser_s']:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    r_first, r_second = first / bare, second / bare
    print(f"   target pass 1 <= 1.0x bare: {verdict(r_first, 1.0, at_most=True)}")
    print(f"   target pass 2 <= 0.3x bare: {verdict(r_second, 0.3, at_most=True)}")
    emit("feeds", {"feeds": len(feeds), "origin": origin, "bytes": size,
                   "concurrency": args.concurrency, "bare_s": bare, "pass1_s": first,
                   "pass2_s": second, "pass1_ratio": r_first, "pass2_ratio": r_second,
                   "bare_cpu_s": bare_cpu, "pass1_cpu_s": first_cpu, "pass2_cpu_s": second_cpu,
                   "pass1": s1, "pass2": s2, "profile": prof,
                   "pass1_met": r_first <= 1.0, "pass2_met": r_second <= 0.3})
    return 0


if __name__ == "__main__":
    sys.exit(main())
