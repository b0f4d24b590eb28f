"""Per-article pipeline (fetch, extract, normalise, fingerprint, dedup, match, store)
vs bare trafilatura.extract on the same pages, served on loopback.

    .venv/bin/python bench/bench_articles.py [--limit N] [--skip-stages]

Pages: $BENCH_DATA/articles/html/*.html.gz (or ../shared/bench-data), else
generated pages. One feed lists every page; `check-now` (monitor.cli.main.main,
in-process) runs with fetch_articles = true, on a fresh SQLite store each time.

Runs, all in the same process and session:
  bare-1p     httpx GET + trafilatura.extract, sequential, one process
  bare-2p     the same over a 2-process pool (reference)
  pipe-1p     check-now with [monitor] workers = 1 (no process pool)
  pipe-np     check-now with the project's default workers (pool sized to the cores)
Targets: pipe-1p per article <= 1.2x bare-1p per article;
         pipe-np throughput >= 1.7x bare-1p throughput (2 cores).
A sequential per-stage breakdown (no HTTP) shows where the time goes.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from datetime import UTC

from bench._common import (  # noqa: E402
    StaticServer,
    bench_data,
    check_now,
    emit,
    generated_text,
    header,
    median,
    verdict,
    write_config,
)


def load_pages(limit: int | None) -> tuple[list[tuple[str, bytes]], str]:
    data = bench_data()
    folder = data / "articles" / "html" if data else None
    if folder is not None and folder.is_dir():
        files = sorted(folder.glob("*.html.gz"))[:limit]
        return [(p.name.split(".")[0], gzip.decompress(p.read_bytes())) for p in files], \
            f"bench-data articles ({folder})"
    rng = random.Random(3)
    pages = []
    for i in range(limit or 181):
        body = "".join(f"<p>{escape(p)}</p>" for p in generated_text(rng, 800).split("\n\n"))
        nav = "".join(f'<li><a href="/s/{k}">Section {k}</a></li>' for k in range(30))
        pages.append((f"gen{i:04d}", (
            f"<!doctype html><html lang=en><head><title>Story {i} | Gen News</title>"
            f'<meta property="og:title" content="Story {i}"></head><body>'
            f"<header><ul>{nav}</ul></header><main><article><h1>Story {i}</h1>{body}"
            f"</article></main><footer><p>Copyright Gen News. All rights reserved.</p>"
            f"<ul>{nav}</ul></footer></body></html>").encode()))
    return pages, "generated pages (bench data absent)"


# ---------------------------------------------------------------- bare runs

_client = None


def _bare_one(url: str) -> int:
    import httpx
    import trafilatura
    global _client
    if _client is None:
        _client = httpx.Client(timeout=120)
    html = _client.get(url).content
    text = trafilatura.extract(html, url=url)
    return len(text or "")


def _reset() -> None:
    global _client
    _client = None          # a forked worker must not share the parent's connections


def _warm(_: int) -> int:
    import httpx  # noqa: F401
    import trafilatura  # noqa: F401
    return os.getpid()


def bare_single(urls: list[str]) -> float:
    t = time.perf_counter()
    for u in urls:
        _bare_one(u)
    return time.perf_counter() - t


def bare_pool(urls: list[str], processes: int) -> float:
    with ProcessPoolExecutor(processes, initializer=_reset) as pool:
        list(pool.map(_warm, range(processes * 2)))      # imports done before the clock
        t = time.perf_counter()
        list(pool.map(_bare_one, urls, chunksize=1))
        return time.perf_counter() - t


# ---------------------------------------------------------------- stages

def stages(pages: list[tuple[str, bytes]], urls: list[str]) -> dict:
    """Sequential per-stage times (ms per article), no HTTP."""
    import trafilatura

    from bench._common import default_rules
    from monitor.dedup.ingest import Fingerprints, ingest
    from monitor.match.query import Document, RuleSet, compile_query
    from monitor.models import Article
    from monitor.text.extract import extract_article
    from storage import open_store

    rules = RuleSet({n: compile_query(q, rule=n) for n, q in default_rules()})
    tmp = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    store = open_store(f"sqlite:///{tmp / 's.db'}")
    times: dict[str, list[float]] = {k: [] for k in (
        "trafilatura.extract", "extract_article", "Fingerprints.of", "Document.build",
        "RuleSet.match", "store ingest")}
    from datetime import datetime
    try:
        for (name, html), url in zip(pages, urls):
            t0 = time.perf_counter()
            trafilatura.extract(html, url=url)
            t1 = time.perf_counter()
            ex = extract_article(html, url=url)
            t2 = time.perf_counter()
            times["trafilatura.extract"].append(t1 - t0)
            times["extract_article"].append(t2 - t1)
            if ex is None:
                continue
            art = Article(url=url, title=ex.title, text=ex.text, source="bench",
                          published=ex.published, author=ex.author, site_name=ex.site_name,
                          language=ex.language, guid=None, extracted=True)
            t3 = time.perf_counter()
            fp = Fingerprints.of(art)
            t4 = time.perf_counter()
            doc = Document.build(title=art.title, text=art.text, source="bench", url=url)
            t5 = time.perf_counter()
            rules.match(doc)
            t6 = time.perf_counter()
            with store.exclusive() as tx:
                ingest(tx, art, fp, aliases=[], now=datetime.now(UTC))
            t7 = time.perf_counter()
            times["Fingerprints.of"].append(t4 - t3)
            times["Document.build"].append(t5 - t4)
            times["RuleSet.match"].append(t6 - t5)
            times["store ingest"].append(t7 - t6)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {k: {"mean_ms": 1000 * sum(v) / max(1, len(v)), "median_ms": 1000 * median(v),
                "max_ms": 1000 * max(v, default=0.0)} for k, v in times.items()}


def feed_xml(items: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<item><title>{escape(t)}</title><link>{escape(u)}</link>"
                   f"<guid>{escape(u)}</guid></item>" for t, u in items)
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>bench</title><link>http://127.0.0.1/</link>" + body +
            "</channel></rss>").encode()


def pipeline_run(feed_url: str, workers: int | None, tmp: Path, label: str) -> tuple[float, dict]:
    run_dir = tmp / label
    run_dir.mkdir()
    cfg = write_config(run_dir / "monitor.toml",
                       [{"name": "articles", "kind": "feed", "url": feed_url,
                         "fetch_articles": True}],
                       f"sqlite:///{run_dir / 'monitor.db'}", workers=workers)
    elapsed, code, summary = check_now(cfg)
    return elapsed, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    ap.add_argument("--hosts", type=int, default=16, help="loopback hosts serving the pages")
    ap.add_argument("--skip-stages", action="store_true")
    ap.add_argument("--runs", type=int, default=2,
                    help="runs of each configuration; the fastest counts (default 2)")
    args = ap.parse_args()

    header("bench_articles: per-article pipeline vs bare trafilatura.extract")
    pages, origin = load_pages(args.limit)
    n = len(pages)
    print(f"   pages: {n} {origin}, {sum(len(b) for _, b in pages) / 1e6:.1f} MB;"
          f" cores: {os.cpu_count()}")
    routes = {f"/a/{name}.html": ("text/html; charset=utf-8", body) for name, body in pages}
    tmp = Path(tempfile.mkdtemp(prefix="bench-articles-"))
    try:
        with StaticServer({**routes}, n_hosts=args.hosts) as srv:
            urls = [srv.url(f"/a/{name}.html", i) for i, (name, _) in enumerate(pages)]
            # the feed lives on its own host slot; it lists every page
            srv_feed = StaticServer({
                "/feed.xml": ("application/rss+xml", feed_xml(
                    [(f"Article {name}", u) for (name, _), u in zip(pages, urls)])),
                "/warm.xml": ("application/rss+xml", feed_xml(
                    [(f"Article {name}", u) for (name, _), u in zip(pages[:2], urls[:2])]))})
            feed_url = srv_feed.url("/feed.xml")
            try:
                _bare_one(urls[0])                                    # imports, warm-up
                pipeline_run(srv_feed.url("/warm.xml"), 1, tmp, "warm")  # imports, untimed
                b1 = min(bare_single(urls) for _ in range(args.runs))
                print(f"   bare-1p  httpx+trafilatura.extract   {b1:7.2f} s  "
                      f"{1000 * b1 / n:7.1f} ms/article  {n / b1:6.2f} art/s")
                p1, s1 = min((pipeline_run(feed_url, 1, tmp, f"p1-{k}") for k in range(args.runs)), key=lambda r: r[0])
                print(f"   pipe-1p  check-now workers=1         {p1:7.2f} s  "
                      f"{1000 * p1 / n:7.1f} ms/article  {n / p1:6.2f} art/s"
                      f"  = {p1 / b1:.2f}x bare-1p  new={s1.get('new_articles')}"
                      f" dup={s1.get('duplicates')} alerts={s1.get('alerts')}")
                pn, sn = min((pipeline_run(feed_url, None, tmp, f"pn-{k}") for k in range(args.runs)), key=lambda r: r[0])
                print(f"   pipe-np  check-now default workers   {pn:7.2f} s  "
                      f"{1000 * pn / n:7.1f} ms/article  {n / pn:6.2f} art/s"
                      f"  = {b1 / pn:.2f}x bare-1p throughput  new={sn.get('new_articles')}")
                b2 = min(bare_pool(urls, 2) for _ in range(args.runs))
                print(f"   bare-2p  same, 2-process pool        {b2:7.2f} s  "
                      f"{1000 * b2 / n:7.1f} ms/article  {n / b2:6.2f} art/s"
                      f"  = {b1 / b2:.2f}x bare-1p throughput")
            finally:
                srv_feed.close()
        st = None if args.skip_stages else stages(pages, urls)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if st:
        print("   per-stage, sequential, no HTTP (ms/article: mean / median / max):")
        for k, v in st.items():
            print(f"     {k:22s} {v['mean_ms']:7.2f} {v['median_ms']:7.2f} {v['max_ms']:8.1f}")
    r1, rn = p1 / b1, b1 / pn
    print(f"   target pipe-1p <= 1.2x bare-1p per article: {verdict(r1, 1.2, at_most=True)}")
    print(f"   target pipe-np >= 1.7x bare-1p throughput:  {verdict(rn, 1.7, at_most=False)}")
    emit("articles", {"pages": n, "origin": origin, "bare_1p_s": b1, "bare_2p_s": b2,
                      "pipe_1p_s": p1, "pipe_np_s": pn,
                      "pipe_1p_ratio_per_article": r1, "pipe_np_speedup": rn,
                      "bare_2p_speedup": b1 / b2, "pipe_1p_summary": s1, "pipe_np_summary": sn,
                      "stages_ms": st, "target_1p_met": r1 <= 1.2, "target_np_met": rn >= 1.7})
    return 0


if __name__ == "__main__":
    sys.exit(main())
