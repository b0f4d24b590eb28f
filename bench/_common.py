"""Shared helpers for the bench_*.py scripts (not a test module; run by hand).

- ``bench_data()``: the benchmark data folder (env BENCH_DATA, else
  ../shared/bench-data next to the project root), or None when absent.
- ``StaticServer``: a keep-alive HTTP/1.1 server in a *separate process* (so its
  CPU does not compete for the benchmark's GIL), listening on several loopback
  addresses (127.0.0.1 .. 127.0.0.N) so that "many hosts" is real for the
  Fetcher's per-host limits. It sends no ETag / Last-Modified.
- ``machine()``: nproc, CPU model, memory, Python; ``emit()``: the final JSON line.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_data() -> Path | None:
    env = os.environ.get("BENCH_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "bench-data"
    return path if path.is_dir() else None   # BENCH_DATA=/nonexistent forces generated data


def machine() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(), "memory": mem,
            "python": platform.python_version()}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def cpu() -> float:
    """CPU seconds of this process and of its children reaped so far (a worker pool
    is reaped when check-now closes it, so its CPU counts)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def header(title: str) -> None:
    m = machine()
    print(f"== {title}")
    print(f"   machine: {m['nproc']} cpu ({m['cpu']}), {m['memory']}, Python {m['python']};"
          f" {time.strftime('%Y-%m-%d %H:%M:%S')}; load average {os.getloadavg()[0]:.2f}"
          " (anything else running skews the figures)")


def emit(name: str, result: dict) -> None:
    """The one-line JSON result, last line of the output."""
    print(json.dumps({"bench": name, "machine": machine(), **result}, ensure_ascii=False,
                     default=lambda o: round(o, 6) if isinstance(o, float) else str(o)))


def verdict(value: float, target: float, *, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    return f"{'MET' if ok else 'MISSED'} ({value:.3g} vs target {sign} {target:g})"


# ----------------------------------------------------------------- static server

def _serve(routes: dict[str, tuple[str, bytes]], hosts: list[str], conn) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                path = parts[1].split("?", 1)[0] if len(parts) > 1 else "/"
                length = 0
                for h in head.split(b"\r\n")[1:]:
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                route = routes.get(path)
                if route is None:
                    status, ctype, body = "404 Not Found", "text/plain", b"not found"
                else:
                    status, (ctype, body) = "200 OK", route
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for host in hosts:
            server = await asyncio.start_server(handle, host, 0, limit=1 << 20, backlog=512)
            ports.append(server.sockets[0].getsockname()[1])
        conn.send(ports)
        await asyncio.Event().wait()

    asyncio.run(main())


class StaticServer:
    """Serves ``routes`` (path -> (content type, body)) on ``n_hosts`` loopback addresses."""

    def __init__(self, routes: dict[str, tuple[str, bytes]], n_hosts: int = 1):
        self.hosts = [f"127.0.0.{i + 1}" for i in range(max(1, min(n_hosts, 250)))]
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(routes, self.hosts, child), daemon=True)
        self._proc.start()
        self.ports = parent.recv()

    def url(self, path: str, i: int = 0) -> str:
        k = i % len(self.hosts)
        return f"http://{self.hosts[k]}:{self.ports[k]}{path}"

    def close(self) -> None:
        self._proc.terminate()
        self._proc.join(5)

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sniff_type(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith((b"{", b"[")):
        return "application/json"
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    return "application/xml"


def default_rules() -> list[tuple[str, str]]:
    """(name, query) of the rules in the shipped config/monitor.toml (realistic rules)."""
    import tomllib
    try:
        data = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))
        rules = [(r["name"], r["query"]) for r in data.get("rules", [])]
    except (OSError, ValueError, KeyError):
        rules = []
    return rules or [("summit", '(Kishida OR 岸田 OR "prime minister") AND '
                                '("Kim Jong Un" OR Kim OR 金正恩) AND (summit OR 首脳会談)')]


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)   # a valid TOML basic string


def write_config(path: Path, sources: list[dict], storage_url: str, *, concurrency: int = 16,
                 per_host: int = 2, workers: int | None = None, alerts_path: Path | None = None,
                 rules: list[tuple[str, str]] | None = None) -> Path:
    """A TOML configuration for `check-now`, as a user would write it."""
    monitor = {"timeout": "120s", "per_host_delay": 0, "allow_private_networks": True,
               "concurrency": concurrency, "per_host": per_host, "max_age": "3650d"}
    if workers is not None:
        monitor["workers"] = workers
    lines = ["[monitor]"] + [f"{k} = {_toml(v)}" for k, v in monitor.items()]
    lines += ["", "[storage]", f"url = {_toml(storage_url)}"]
    for s in sources:
        lines += ["", "[[sources]]"] + [f"{k} = {_toml(v)}" for k, v in s.items()]
    alerts_path = alerts_path or path.with_name("alerts.jsonl")
    for name, query in (rules if rules is not None else default_rules()):
        lines += ["", "[[rules]]", f"name = {_toml(name)}", f"query = {_toml(query)}",
                  'notify = ["archive"]']
    lines += ["", "[[notifiers]]", 'name = "archive"', 'kind = "jsonl"',
              f"path = {_toml(str(alerts_path))}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_now(config_path: Path) -> tuple[float, int, dict]:
    """Run `check-now --json` in-process through monitor.cli.main.main.

    Returns (seconds, exit code, summary).
    """
    import contextlib
    import io

    from monitor.cli.main import main
    out = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(config_path), "check-now", "--json"])
    elapsed = time.perf_counter() - t
    text = out.getvalue().strip().splitlines()
    try:
        summary = json.loads(text[-1]) if text else {}
    except ValueError:
        summary = {"raw": text[-1][:200]}
    return elapsed, code, summary


# -------------------------------------------------------------- generated text

_WORDS = ("the of and to in a is that for on with as by at from was said minister summit "
          "government north korea japan kim kishida talks leader abducted citizens families "
          "report officials meeting pyongyang tokyo statement foreign policy missile launch "
          "election economy market trade war security council week year people new would "
          "could after before during between about into over under more most other some "
          "such only also than then when where which while who whom why how all any both "
          "each few many much several own same so very can will just should now").split()


def generated_text(rng, n_words: int = 600, vocab: list[str] | None = None,
                   weights: list[float] | None = None) -> str:
    """Sentences of words drawn from a unigram model (Zipf-like when weights are given)."""
    vocab = vocab or _WORDS
    words = rng.choices(vocab, weights=weights, k=n_words)
    out, sentence = [], []
    for i, w in enumerate(words):
        sentence.append(w)
        if len(sentence) >= rng.randint(8, 22) or i == n_words - 1:
            s = " ".join(sentence)
            out.append(s[0].upper() + s[1:] + ".")
            sentence = []
    paras, k = [], 0
    while k < len(out):
        step = rng.randint(3, 6)
        paras.append(" ".join(out[k:k + step]))
        k += step
    return "\n\n".join(paras)
