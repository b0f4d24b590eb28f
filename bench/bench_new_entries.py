"""A first pass over generated feeds, all entries new (``fetch_articles = false``),
against the bare loop: httpx GET + feedparser.parse with the project's options.

    .venv/bin/python bench/bench_new_entries.py [--feeds 2000] [--entries 20]
        [--repeat 3] [--workers N] [--profile] [--templated]

CPU seconds are the process's own plus its reaped children's (the worker pool's
fork server and workers are reaped at the end of ``check-now``), so a pool's work
counts. Each repeat measures the bare loop and ``check-now`` on a fresh store, back
to back; the figures are medians. Peak RSS is the process's high-water mark
(``ru_maxrss``) and, with a pool, the largest child's.

``--py-spy OUT`` runs one extra pass under py-spy, across threads and the worker
processes, and writes its raw stacks to OUT (``bench/spy_summary.py OUT`` sums them).

``--isolated`` runs each check-now in a child process and samples the resident memory
of its whole process tree (this process holds the generated feeds, so its own peak is
not the monitor's).

``--profile`` runs one extra pass under pyinstrument with ``workers = 1`` (so every
step is in this process) and writes ``bench/profiles/new_entries.txt`` (the call
tree) and prints the top functions by self time.

``--templated``: texts drawn from a vocabulary of about 70 words (weather, market and
sports templates), the case where many articles look alike (issue item 5); compare
with a varied run of the same size.

Target: check-now CPU <= 3x the bare loop's; about 1 ms of our own CPU per new entry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
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
    check_now,
    cpu,
    emit,
    generated_text,
    header,
    median,
    verdict,
    write_config,
)

TEMPLATE_WORDS = ("temperature high low wind north south east west rain snow sunny cloudy "
                  "showers degrees forecast today tomorrow morning evening night humidity "
                  "index points shares market closed opened rose fell percent stock bond "
                  "dollar yen euro trading volume match won lost draw goals score league "
                  "team home away final half minute quake magnitude depth km region coast "
                  "city reported time local update alert level warning issued expected "
                  "chance").split()


def generated_feeds(n: int, entries: int, *, templated: bool = False) -> list[tuple[str, bytes]]:
    rng = random.Random(13)
    now = datetime.now(UTC)
    vocab = TEMPLATE_WORDS if templated else None
    feeds = []
    for i in range(n):
        items = []
        for j in range(entries):
            text = generated_text(rng, rng.randint(150, 350), vocab=vocab)
            items.append(
                f"<item><title>Report {i}-{j}: {escape(text[:60])}</title>"
                f"<link>https://site{i}.example/news/{j}</link>"
                f"<guid>https://site{i}.example/news/{j}</guid>"
                f"<pubDate>{format_datetime(now - timedelta(hours=j))}</pubDate>"
                f"<description>{escape(text)}</description></item>")
        feeds.append((f"gen{i:05d}", (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Generated {i}</title><link>https://site{i}.example/</link>"
            + "".join(items) + "</channel></rss>").encode()))
    return feeds


async def bare_loop(urls: list[str], concurrency: int) -> int:
    import feedparser
    import httpx

    sem = asyncio.Semaphore(concurrency)
    entries = 0

    async def one(client: httpx.AsyncClient, url: str) -> None:
        nonlocal entries
        async with sem:
            r = await client.get(url)
            parsed = feedparser.parse(r.content, sanitize_html=False, resolve_relative_uris=False,
                                      response_headers={"content-location": url,
                                                        "content-type": r.headers.get(
                                                            "content-type", "")})
            entries += len(parsed.entries)

    async with httpx.AsyncClient(timeout=300,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(one(client, u) for u in urls))
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--templated", action="store_true")
    ap.add_argument("--isolated", action="store_true",
                    help="run each check-now in a process of its own and sample the memory"
                         " of its whole process tree (main, fork server, workers), apart"
                         " from this process, which holds the generated feeds")
    ap.add_argument("--py-spy", metavar="OUT", type=Path,
                    help="one extra pass under py-spy (threads and worker processes),"
                         " its raw collapsed stacks written to OUT")
    args = ap.parse_args()

    header("bench_new_entries: first pass, every entry new, vs bare httpx+feedparser")
    feeds = generated_feeds(args.feeds, args.entries, templated=args.templated)
    size = sum(len(b) for _, b in feeds)
    print(f"   feeds: {len(feeds)} x {args.entries} entries"
          f" ({'templated, ~70 words' if args.templated else 'varied'}), {size / 1e6:.1f} MB")
    routes = {f"/feeds/{name}": ("application/rss+xml", body) for name, body in feeds}
    del feeds
    runs = []
    with StaticServer(routes, n_hosts=len(routes)) as srv:
        urls = [srv.url(path, i) for i, path in enumerate(routes)]
        sources = [{"name": f"f{i:05d}", "kind": "feed", "url": u, "fetch_articles": False}
                   for i, u in enumerate(urls)]
        for run in range(args.repeat + (1 if args.profile or args.py_spy else 0)):
            profiling = bool(args.profile or args.py_spy) and run == args.repeat
            tmp = Path(tempfile.mkdtemp(prefix="bench-new-"))
            try:
                config = write_config(tmp / "monitor.toml", sources,
                                      f"sqlite:///{tmp / 'monitor.db'}",
                                      concurrency=args.concurrency,
                                      workers=1 if profiling and args.profile
                                      else args.workers)
                if profiling and args.py_spy:
                    spy(config, args.py_spy)
                    continue
                if profiling:
                    profile(config)
                    continue
                c0, w0 = cpu(), time.perf_counter()
                entries = asyncio.run(bare_loop(urls, args.concurrency))
                bare_cpu, bare_wall = cpu() - c0, time.perf_counter() - w0
                c0, w0 = cpu(), time.perf_counter()
                tree_peak = single_peak = 0.0
                if args.isolated:
                    code, summary, tree_peak, single_peak = check_now_isolated(config)
                else:
                    _, code, summary = check_now(config)
                ours_cpu, ours_wall = cpu() - c0, time.perf_counter() - w0
                new = summary.get("new_articles") or 0
                runs.append({"bare_cpu": bare_cpu, "bare_wall": bare_wall, "cpu": ours_cpu,
                             "wall": ours_wall, "entries": entries, "new": new, "code": code,
                             "tree_peak_rss_mb": tree_peak, "process_peak_rss_mb": single_peak})
                print(f"   run {run + 1}: bare {bare_cpu:7.2f} CPU s ({bare_wall:6.2f} wall),"
                      f" check-now {ours_cpu:7.2f} CPU s ({ours_wall:6.2f} wall),"
                      f" {entries} entries, {new} new, ratio {ours_cpu / bare_cpu:.2f}x"
                      + (f"; peak RSS of check-now's processes together {tree_peak:.0f} MB,"
                         f" largest one {single_peak:.0f} MB" if args.isolated else ""))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    if not runs:
        return 0
    bare_cpu = median([r["bare_cpu"] for r in runs])
    ours_cpu = median([r["cpu"] for r in runs])
    ratio = median([r["cpu"] / r["bare_cpu"] for r in runs])
    new = max(r["new"] for r in runs) or 1
    own_ms = (ours_cpu - bare_cpu) / new * 1000
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"   median: bare {bare_cpu:.2f} CPU s, check-now {ours_cpu:.2f} CPU s,"
          f" ratio {ratio:.2f}x; our own CPU {own_ms:.2f} ms per new entry;"
          f" peak RSS {peak_self:.0f} MB (largest child {peak_child:.0f} MB)")
    print(f"   target CPU <= 3x bare: {verdict(ratio, 3.0, at_most=True)}")
    emit("new_entries", {"feeds": args.feeds, "entries_per_feed": args.entries,
                         "templated": args.templated, "bytes": size, "runs": runs,
                         "bare_cpu_s": bare_cpu, "cpu_s": ours_cpu, "ratio": ratio,
                         "own_ms_per_entry": own_ms, "peak_rss_mb": peak_self,
                         "peak_child_rss_mb": peak_child, "met": ratio <= 3.0})
    return 0


def _tree_rss_mb(root: int) -> tuple[float, float]:
    """(sum, largest) resident set of ``root`` and its descendants, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE") / 1e6
    todo, sizes = [root], []
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                sizes.append(int(f.read().split()[1]) * page)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue                 # the process ended meanwhile
    return sum(sizes), max(sizes, default=0.0)


def check_now_isolated(config: Path) -> tuple[int, dict, float, float]:
    """check-now in a child process, its process tree's memory sampled every 0.2 s:
    (exit code, summary, peak of the tree's total RSS, peak of one process's RSS).
    Its CPU, and its workers', reach this process's RUSAGE_CHILDREN when it is reaped."""
    import json
    import subprocess
    once = Path(__file__).resolve().parent / "_check_now_once.py"
    # The summary goes to a file: a pipe read only at the end would fill up (a line
    # per source) and stop the child.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as sink:
        proc = subprocess.Popen([sys.executable, str(once), str(config), "--json"],
                                stdout=sink, text=True)
        tree = single = 0.0
        while proc.poll() is None:
            total, largest = _tree_rss_mb(proc.pid)
            tree, single = max(tree, total), max(single, largest)
            time.sleep(0.2)
        sink.seek(0)
        out = sink.read().strip().splitlines()
    summary = json.loads(out[-1]) if out and out[-1].startswith("{") else {}
    return proc.returncode, summary, tree, single


def spy(config: Path, out: Path) -> None:
    """check-now in a process of its own under py-spy, every thread and worker sampled;
    ``bench/spy_summary.py OUT`` gives the self and inclusive shares."""
    import subprocess
    spy_bin = Path(sys.executable).with_name("py-spy")
    once = Path(__file__).resolve().parent / "_check_now_once.py"
    subprocess.run([str(spy_bin), "record", "--subprocesses", "--threads", "--rate", "50",
                    "--format", "raw", "-o", str(out), "--", sys.executable, str(once),
                    str(config)], check=True)
    print(f"   py-spy profile: {out} (bench/spy_summary.py {out})")


def profile(config: Path) -> None:
    from pyinstrument import Profiler

    out = Path(__file__).resolve().parent / "profiles"
    out.mkdir(exist_ok=True)
    profiler = Profiler(interval=0.002, async_mode="disabled")
    profiler.start()
    check_now(config)
    profiler.stop()
    (out / "new_entries.txt").write_text(profiler.output_text(unicode=False, show_all=False),
                                         encoding="utf-8")
    session = profiler.last_session
    self_time: dict[str, float] = {}

    def walk(frame) -> None:
        if frame is None:
            return
        key = f"{frame.function} ({Path(frame.file_path or '?').name}:{frame.line_no})"
        self_time[key] = self_time.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child)

    walk(session.root_frame() if hasattr(session, "root_frame") else profiler.root_frame())
    total = sum(self_time.values()) or 1
    print("   profile (workers = 1), top self time:")
    lines = []
    for key, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:25]:
        lines.append(f"      {100 * t / total:5.1f} %  {t:6.2f} s  {key}")
    print("\n".join(lines))
    with open(out / "new_entries.txt", "a", encoding="utf-8") as f:
        f.write("\nTop self time:\n" + "\n".join(lines) + "\n")
    print(f"   call tree: {out / 'new_entries.txt'}")


if __name__ == "__main__":
    sys.exit(main())
