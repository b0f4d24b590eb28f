"""Per-article pipeline (fetch, extract, normalise, fingerprint, dedup, match, store)
vs bare trafilatura.extract, with the options extract_article uses, on the same
pages, served on loopback.

    .venv/bin/python bench/bench_articles.py [--limit N] [--skip-stages]

Pages: $BENCH_DATA/articles/html/*.html.gz (or ../shared/bench-data), else
generated pages. One feed lists every page; `check-now` (monitor.cli.main.main,
in-process) runs with fetch_articles = true, on a fresh SQLite store each time.

Runs, all in the same process and session (each --runs times, interleaved;
medians reported, wall time and CPU time: this process's plus its reaped children's):
  bare-1p     httpx GET + trafilatura.extract (TRAFILATURA_OPTIONS), sequential
  bare-2p     the same over a 2-process pool (reference)
  pipe-1p     check-now with [monitor] workers = 1 (no process pool)
  pipe-np     check-now with the project's default workers (pool sized to the cores)
Targets: pipe-1p per article <= 1.2x bare-1p per article;
         pipe-np throughput >= 1.7x bare-1p throughput (2 cores), or within
         10 % of the bare 2-process pool's own gain.
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
    cpu,
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

    from monitor.text.extract import TRAFILATURA_OPTIONS
    global _client
    if _client is None:
        _client = httpx.Client(timeout=120)
    html = _client.get(url).content
    text = trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS)
    return len(text or "")


def timed(fn, *args) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of ``fn(*args)``."""
    c, t = cpu(), time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t, cpu() - c, result


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
    """Sequential per-stage CPU times (ms per article), no HTTP."""
    import trafilatura

    from bench._common import default_rules
    from monitor.dedup.ingest import Fingerprints, ingest
    from monitor.match.query import Document, RuleSet, compile_query
    from monitor.models import Article
    from monitor.text.extract import TRAFILATURA_OPTIONS, extract_article
    from storage import open_store

    rules = RuleSet({n: compile_query(q, rule=n) for n, q in default_rules()})
    tmp = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    store = open_store(f"sqlite:///{tmp / 's.db'}")
    times: dict[str, list[float]] = {k: [] for k in (
        "trafilatura.extract", "extract_article", "Fingerprints.of", "Document.build",
        "RuleSet.match", "store ingest")}
    from datetime import datetime
    try:
        for (_name, html), url in zip(pages, urls, strict=True):
            t0 = time.process_time()
            trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS)
            t1 = time.process_time()
            ex = extract_article(html, url=url)
            t2 = time.process_time()
            times["trafilatura.extract"].append(t1 - t0)
            times["extract_article"].append(t2 - t1)
            if ex is None:
                continue
            art = Article(url=url, title=ex.title, text=ex.text, source="bench",
                          published=ex.published, author=ex.author, site_name=ex.site_name,
                          language=ex.language, guid=None, extracted=True)
            # As monitor.pipeline.process.analyse: one tokenisation for the rules and
            # the fingerprints, a story signature only for an article that matched.
            t3 = time.process_time()
            doc = Document.build(title=art.title, text=art.text, source="bench", url=url)
            t4 = time.process_time()
            matches = rules.match(doc)
            t5 = time.process_time()
            fp = Fingerprints.of_tokens(art, doc.fields["title"].norms, doc.fields["text"].norms,
                                        story=bool(matches))
            t6 = time.process_time()
            with store.exclusive() as tx:
                ingest(tx, art, fp, aliases=[], now=datetime.now(UTC))
            t7 = time.process_time()
            times["Document.build"].append(t4 - t3)
            times["RuleSet.match"].append(t5 - t4)
            times["Fingerprints.of"].append(t6 - t5)
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


def report(label: str, text: str, n: int, wall: list[float], cpu: list[float],
           extra: str = "") -> None:
    w, c = median(wall), median(cpu)
    print(f"   {label:8s} {text:30s} {w:7.2f} s {c:7.2f} CPU s  {1000 * w / n:7.1f} ms/article"
          f" ({1000 * c / n:6.1f} CPU)  {n / w:6.2f} art/s{extra}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    ap.add_argument("--hosts", type=int, default=16, help="loopback hosts serving the pages")
    ap.add_argument("--skip-stages", action="store_true")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each configuration, interleaved; medians count (default 3)")
    args = ap.parse_args()

    header("bench_articles: per-article pipeline vs bare trafilatura.extract")
    pages, origin = load_pages(args.limit)
    n = len(pages)
    print(f"   pages: {n} {origin}, {sum(len(b) for _, b in pages) / 1e6:.1f} MB;"
          f" cores: {os.cpu_count()}")
    routes = {f"/a/{name}.html": ("text/html; charset=utf-8", body) for name, body in pages}
    tmp = Path(tempfile.mkdtemp(prefix="bench-articles-"))
    runs: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in ("bare-1p", "pipe-1p", "pipe-np", "bare-2p")}
    summaries: dict[str, dict] = {}
    try:
        with StaticServer({**routes}, n_hosts=args.hosts) as srv:
            urls = [srv.url(f"/a/{name}.html", i) for i, (name, _) in enumerate(pages)]
            # the feed lives on its own host slot; it lists every page
            listed = [(f"Article {name}", u) for (name, _), u in zip(pages, urls, strict=True)]
            srv_feed = StaticServer({
                "/feed.xml": ("application/rss+xml", feed_xml(listed)),
                "/warm.xml": ("application/rss+xml", feed_xml(listed[:2]))})
            feed_url = srv_feed.url("/feed.xml")
            try:
                _bare_one(urls[0])                                    # imports, warm-up
                pipeline_run(srv_feed.url("/warm.xml"), 1, tmp, "warm")  # imports, untimed
                for k in range(args.runs):
                    # interleaved, so that a change of load hits every configuration
                    for label, fn, fn_args in (
                            ("bare-1p", bare_single, (urls,)),
                            ("pipe-1p", pipeline_run, (feed_url, 1, tmp, f"p1-{k}")),
                            ("pipe-np", pipeline_run, (feed_url, None, tmp, f"pn-{k}")),
                            ("bare-2p", bare_pool, (urls, 2))):
                        wall, cpu, result = timed(fn, *fn_args)
                        if isinstance(result, tuple):      # a pipeline run: (seconds, summary)
                            summaries[label] = result[1]
                        if label == "bare-2p":
                            wall = result                  # the pool's own clock, after warm-up
                        runs[label][0].append(float(wall))
                        runs[label][1].append(cpu)
                    print(f"   run {k + 1}: " + ", ".join(
                        f"{lb} {v[0][-1]:.2f} s / {v[1][-1]:.2f} CPU s" for lb, v in runs.items()),
                        flush=True)
            finally:
                srv_feed.close()
        st = None if args.skip_stages else stages(pages, urls)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    b1, p1, pn, b2 = (median(runs[k][0]) for k in ("bare-1p", "pipe-1p", "pipe-np", "bare-2p"))
    c_b1, c_p1, c_pn, c_b2 = (median(runs[k][1])
                              for k in ("bare-1p", "pipe-1p", "pipe-np", "bare-2p"))
    s1, sn = summaries.get("pipe-1p", {}), summaries.get("pipe-np", {})
    print(f"   medians of {args.runs} runs (wall, CPU of this process and reaped children):")
    report("bare-1p", "httpx+trafilatura.extract", n, *runs["bare-1p"])
    report("pipe-1p", "check-now workers=1", n, *runs["pipe-1p"],
           f"  = {p1 / b1:.2f}x bare-1p ({c_p1 / c_b1:.2f}x CPU)  new={s1.get('new_articles')}"
           f" dup={s1.get('duplicates')} alerts={s1.get('alerts')}")
    report("pipe-np", "check-now default workers", n, *runs["pipe-np"],
           f"  = {b1 / pn:.2f}x bare-1p throughput ({c_pn / c_b1:.2f}x CPU)"
           f"  new={sn.get('new_articles')}")
    report("bare-2p", "same, 2-process pool", n, *runs["bare-2p"],
           f"  = {b1 / b2:.2f}x bare-1p throughput (CPU includes the pool's start)")
    if st:
        print("   per-stage CPU, sequential, no HTTP (ms/article: mean / median / max):")
        for k, v in st.items():
            print(f"     {k:22s} {v['mean_ms']:7.2f} {v['median_ms']:7.2f} {v['max_ms']:8.1f}")
    r1, rn, r2 = p1 / b1, b1 / pn, b1 / b2
    print(f"   target pipe-1p <= 1.2x bare-1p per article: {verdict(r1, 1.2, at_most=True)}"
          f"; CPU {c_p1 / c_b1:.2f}x")
    print(f"   target pipe-np >= 1.7x bare-1p throughput:  {verdict(rn, 1.7, at_most=False)}"
          f"; the bare pool's own gain {r2:.2f}x, pipe-np at {rn / r2:.0%} of it")
    emit("articles", {"pages": n, "origin": origin, "runs": args.runs,
                      "bare_1p_s": b1, "bare_2p_s": b2, "pipe_1p_s": p1, "pipe_np_s": pn,
                      "bare_1p_cpu_s": c_b1, "bare_2p_cpu_s": c_b2, "pipe_1p_cpu_s": c_p1,
                      "pipe_np_cpu_s": c_pn, "all_runs": runs,
                      "pipe_1p_ratio_per_article": r1, "pipe_1p_cpu_ratio": c_p1 / c_b1,
                      "pipe_np_speedup": rn, "bare_2p_speedup": r2,
                      "pipe_1p_summary": s1, "pipe_np_summary": sn, "stages_ms": st,
                      "target_1p_met": r1 <= 1.2, "target_np_met": rn >= 1.7 or rn >= 0.9 * r2})
    return 0


if __name__ == "__main__":
    sys.exit(main())
