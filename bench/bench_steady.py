"""Steady state: cycles of `check-now` over feeds that mostly answer 304, with a
share of them (default 5 %) gaining new items each cycle, spread over many hosts.

    .venv/bin/python bench/bench_steady.py [--feeds 2000] [--cycles 6] [--changing 0.05]

Cycle 0 is the first pass that subscribes them (every entry new). The server (its
own process) sends an ETag per feed and answers 304 to a matching If-None-Match;
between cycles it adds one item to the changing feeds. Each cycle reports wall
time, CPU (this process and its reaped children: the worker pool), the resident
memory after it (VmRSS) and the high-water mark, and CPU per poll. The last lines
extrapolate to 100,000 feeds on a 15-minute cycle on 2 cores from the per-poll
CPU of the steady cycles (check-now polls every source every time, and starts
its worker pool each run: a daemon pays that once).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (  # noqa: E402
    check_now,
    cpu,
    emit,
    generated_text,
    header,
    median,
    write_config,
)


def _item(rng, i: int, j: int, when: datetime) -> str:
    from xml.sax.saxutils import escape
    text = generated_text(rng, rng.randint(150, 350))
    return (f"<item><title>Report {i}-{j}: {escape(text[:60])}</title>"
            f"<link>https://site{i}.example/news/{j}</link>"
            f"<guid>https://site{i}.example/news/{j}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(text)}</description></item>")


def _serve(n: int, entries: int, hosts: list[str], conn) -> None:
    import random
    rng = random.Random(5)
    now = datetime.now(UTC)
    items = {i: [_item(rng, i, j, now - timedelta(hours=j)) for j in range(entries)]
             for i in range(n)}
    version = {i: 0 for i in range(n)}
    bodies: dict[int, bytes] = {}

    def body(i: int) -> bytes:
        if i not in bodies:
            bodies[i] = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                         f"<title>Feed {i}</title><link>https://site{i}.example/</link>"
                         + "".join(items[i][:entries]) + "</channel></rss>").encode()
        return bodies[i]

    async def handle(reader, writer) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode()
                etag = None
                for h in lines[1:]:
                    if h.lower().startswith(b"if-none-match:"):
                        etag = h.split(b":", 1)[1].strip().decode()
                i = int(path.rsplit("/", 1)[-1])
                current = f'"v{version[i]}"'
                if etag == current:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {current}\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
                else:
                    b = body(i)
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                                 f"ETag: {current}\r\nContent-Length: {len(b)}\r\n\r\n".encode()
                                 + b)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for host in hosts:
            server = await asyncio.start_server(handle, host, 0, backlog=512)
            ports.append(server.sockets[0].getsockname()[1])
        conn.send(ports)
        loop = asyncio.get_running_loop()
        while True:
            changing = await loop.run_in_executor(None, conn.recv)
            stamp = datetime.now(UTC)
            for i in changing:
                version[i] += 1
                items[i].insert(0, _item(rng, i, entries + version[i], stamp))
                bodies.pop(i, None)
            conn.send("ok")

    asyncio.run(main())


def rss_mb() -> float:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=6, help="steady cycles after the first pass")
    ap.add_argument("--changing", type=float, default=0.05)
    ap.add_argument("--hosts", type=int, default=200)
    args = ap.parse_args()
    header("bench_steady: cycles of check-now, mostly 304s, a share of feeds changing")
    hosts = [f"127.0.0.{i + 1}" for i in range(max(1, min(args.hosts, 250)))]
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(args.feeds, args.entries, hosts, child),
                         daemon=True)
    server.start()
    ports = parent.recv()
    tmp = Path(tempfile.mkdtemp(prefix="bench-steady-"))
    cycles = []
    try:
        sources = [{"name": f"f{i:06d}", "kind": "feed", "fetch_articles": False,
                    "url": f"http://{hosts[i % len(hosts)]}:{ports[i % len(hosts)]}/feed/{i}"}
                   for i in range(args.feeds)]
        config = write_config(tmp / "monitor.toml", sources, f"sqlite:///{tmp / 'monitor.db'}")
        import random
        rng = random.Random(9)
        for cycle in range(args.cycles + 1):
            if cycle:
                changing = rng.sample(range(args.feeds), max(1, int(args.feeds * args.changing)))
                parent.send(changing)
                parent.recv()
            c0, w0 = cpu(), time.perf_counter()
            _, code, summary = check_now(config)
            used, wall = cpu() - c0, time.perf_counter() - w0
            statuses: dict[str, int] = {}
            for r in summary.get("sources", []):
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            row = {"cycle": cycle, "wall": wall, "cpu": used, "cpu_ms_per_poll":
                   1000 * used / args.feeds, "new": summary.get("new_articles"),
                   "statuses": statuses, "rss_mb": rss_mb(),
                   "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            cycles.append(row)
            print(f"   cycle {cycle}: {wall:7.2f} s wall, {used:7.2f} CPU s"
                  f" ({row['cpu_ms_per_poll']:.2f} ms per poll), {row['new']} new,"
                  f" {statuses}, RSS {row['rss_mb']:.0f} MB (peak {row['maxrss_mb']:.0f})")
    finally:
        server.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    steady = cycles[1:]
    per_poll = median([c["cpu_ms_per_poll"] for c in steady]) if steady else float("nan")
    first = cycles[0]["cpu_ms_per_poll"]
    cycle_cpu_100k = per_poll / 1000 * 100_000
    print(f"   steady: {per_poll:.2f} ms CPU per poll (median); first pass {first:.2f} ms"
          f" per feed")
    print(f"   extrapolated to 100,000 feeds: {cycle_cpu_100k:.0f} CPU s per cycle, i.e."
          f" {cycle_cpu_100k / 2:.0f} s on 2 cores against the 900 s cycle"
          f" ({'fits' if cycle_cpu_100k / 2 <= 900 else 'does not fit'}); the first pass"
          f" {first / 1000 * 100_000 / 2:.0f} s on 2 cores")
    emit("steady", {"feeds": args.feeds, "changing": args.changing, "cycles": cycles,
                    "steady_ms_per_poll": per_poll, "first_ms_per_feed": first,
                    "cycle_cpu_s_100k": cycle_cpu_100k})
    return 0


if __name__ == "__main__":
    sys.exit(main())
