"""Near-duplicate lookup latency with 10^4, 10^5 and 10^6 stored articles, on
SQLite and PostgreSQL, plus recall on planted near-copies and false positives.

    .venv/bin/python bench/bench_dedup.py [--sizes 1e4,1e5,1e6] [--backends sqlite,postgresql]
                                          [--real 10000] [--queries 200]

Population (fast, in bulk, straight into the project's own schema, made by
open_store's migrations): --real articles get real fingerprints
(monitor.dedup.ingest.Fingerprints.of) of real texts (the bench-data ground-truth
bodies when present) and generated texts (a unigram model of the same vocabulary);
the rest up to each size are synthetic rows with random signatures and random
64-bit band keys (what band keys of unrelated articles look like), inserted with
INSERT ... SELECT / executemany (SQLite) and COPY (PostgreSQL), with the
secondary indexes dropped during the load and rebuilt from their own definitions.
Synthetic rows are old (fetched a year ago) and carry no story bands: story bands
are only needed within STORY_WINDOW (the store prunes them by time).

Queries, after each size is loaded: --queries near-copies of stored real articles
(a paragraph cut, a boilerplate line added, 2.5 % of the words changed) and
--queries distinct unseen articles. Timed, each inside store.exclusive (rolled back):
  lookup  = article_id_by_url + article_id_by_hash + band_candidates + similarity
  ingest  = the whole monitor.dedup.ingest.ingest (lookup, story, insert), rolled back
Fingerprints.of (pure CPU, outside the transaction) is timed apart.
Targets: lookup p99 <= 10 ms at 10^6; recall on copies >= 0.95; false positives 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import bench_data, emit, generated_text, header, pct, verdict  # noqa: E402
from monitor.dedup import fingerprint  # noqa: E402
from monitor.dedup.ingest import Fingerprints, ingest  # noqa: E402
from monitor.models import Article  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime.now(UTC)
BOILERPLATE = ("This article was originally published by our partner and is republished "
               "with permission.")


def ts(d: datetime) -> str:
    return d.astimezone(UTC).isoformat(timespec="microseconds")


# ------------------------------------------------------------------ texts

def corpus_texts(n: int, rng: random.Random) -> tuple[list[tuple[str, str]], str]:
    """(title, text) of n distinct articles: bench-data bodies first, then generated."""
    texts: list[tuple[str, str]] = []
    data = bench_data()
    gt = data / "articles" / "ground-truth.json" if data else None
    counts: Counter = Counter()
    if gt is not None and gt.is_file():
        for item in json.loads(gt.read_text(encoding="utf-8")).values():
            body = (item.get("articleBody") or "").strip()
            counts.update(w.lower() for w in re.findall(r"[A-Za-z']+", body))
            if len(body.split()) >= 80:
                texts.append((body.split("\n", 1)[0][:120], body))
        origin = f"{len(texts)} bench-data bodies + generated"
    else:
        origin = "generated only (bench data absent)"
    vocab = [w for w, _ in counts.most_common(20000)] or None
    weights = [c for _, c in counts.most_common(20000)] or None
    i = 0
    while len(texts) < n:
        body = generated_text(rng, rng.randint(250, 1200), vocab, weights)
        texts.append((f"Generated report {i}: " + body[:60], body))
        i += 1
    return texts[:n], origin


def near_copy(text: str, rng: random.Random) -> str:
    paras = [p for p in text.split("\n") if p.strip()]
    if len(paras) > 3:
        del paras[rng.randrange(1, len(paras))]          # a paragraph cut
    words = "\n\n".join(paras + [BOILERPLATE]).split(" ")
    for _ in range(max(1, len(words) // 40)):            # 2.5 % of the words changed
        words[rng.randrange(len(words))] = rng.choice(["reportedly", "officials", "Tuesday",
                                                       "however", "sources", "the"])
    return " ".join(words)


def _fp(item: tuple[str, str, str]) -> Fingerprints:
    url, title, text = item
    return Fingerprints.of(Article(url=url, title=title, text=text, source="bench"))


def fingerprints(items: list[tuple[str, str, str]]) -> list[Fingerprints]:
    with ProcessPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
        return list(pool.map(_fp, items, chunksize=64))


# ------------------------------------------------------------------ backends

class Backend:
    name = ""
    url = ""

    def open_store(self):
        from storage import open_store
        return open_store(self.url)


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: Path):
        self.path = folder / "dedup.db"
        self.url = f"sqlite:///{self.path}"

    def connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def indexes(self, conn, tables):
        marks = ",".join("?" * len(tables))
        return conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type='index' AND"
                            f" sql IS NOT NULL AND tbl_name IN ({marks})", tables).fetchall()

    def columns(self, conn, table):
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]

    def load(self, real: list[tuple[int, str, str, str, Fingerprints]], start: int, stop: int,
             rng: np.random.Generator) -> None:
        conn = self.connect()
        tables = ["articles", "article_bands", "story_bands"]
        idx = self.indexes(conn, tables)
        conn.execute("BEGIN")
        for name, _ in idx:
            conn.execute(f"DROP INDEX {name}")
        story_cols = self.columns(conn, "story_bands")
        if real:
            conn.executemany(
                "INSERT INTO articles (id, url, source, title, text, fetched_at, extracted,"
                " content_hash, signature, story_signature, story_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(i, url, "bench", title, text, ts(NOW - timedelta(hours=1)), 1, fp.content_hash,
                  fingerprint.signature_to_bytes(fp.signature),
                  fingerprint.signature_to_bytes(fp.story_signature), f"story{i}")
                 for i, url, title, text, fp in real])
            conn.executemany("INSERT INTO article_bands (band_key, article_id) VALUES (?, ?)",
                             [(k, i) for i, _, _, _, fp in real for k in fp.band_keys])
            if "fetched_at" in story_cols:
                conn.executemany("INSERT INTO story_bands (band_key, article_id, fetched_at)"
                                 " VALUES (?, ?, ?)",
                                 [(k, i, ts(NOW - timedelta(hours=1)))
                                  for i, _, _, _, fp in real for k in fp.story_band_keys])
            else:
                conn.executemany("INSERT INTO story_bands (band_key, article_id) VALUES (?, ?)",
                                 [(k, i) for i, _, _, _, fp in real for k in fp.story_band_keys])
        if stop > start:
            old = ts(NOW - timedelta(days=365))
            step = 100_000
            for lo in range(start, stop, step):
                hi = min(stop, lo + step)
                blob = rng.bytes(512 * (hi - lo))
                conn.executemany(
                    "INSERT INTO articles (id, url, source, title, text, fetched_at, extracted,"
                    " content_hash, signature, story_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    ((i, f"https://archive{i % 997}.example/news/{i:09d}", "archive",
                      f"Archived report {i}", "x" * 200, old, 1,
                      hashlib.sha256(b"%d" % i).hexdigest(), sig, f"old{i}")
                     for i, sig in zip(range(lo, hi),
                                       (blob[k * 512:(k + 1) * 512] for k in range(hi - lo)),
                                       strict=True)))
            # random() is a uniform signed 64-bit integer: the band key of a random signature
            conn.execute(
                "INSERT INTO article_bands (band_key, article_id) SELECT random(), a.id"
                " FROM articles a, (WITH RECURSIVE b(n) AS (SELECT 1 UNION ALL SELECT n + 1"
                f" FROM b WHERE n < {fingerprint.BANDS}) SELECT n FROM b)"
                " WHERE a.id >= ? AND a.id < ?", (start, stop))
        t = time.perf_counter()
        for _, sql in idx:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()
        print(f"      (indexes rebuilt in {time.perf_counter() - t:.1f} s)")

    def count(self) -> tuple[int, int]:
        conn = self.connect()
        try:
            return (conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM article_bands").fetchone()[0])
        finally:
            conn.close()

    def drop(self) -> None:
        pass


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self):
        import psycopg
        self.psycopg = psycopg
        self.db = f"bench_dedup_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.db}")
            admin.execute(f"CREATE DATABASE {self.db}")
        self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.db

    def connect(self):
        conn = self.psycopg.connect(self.url, autocommit=True)
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET synchronous_commit = off")
        return conn

    def load(self, real, start, stop, rng) -> None:
        conn = self.connect()
        tables = ("articles", "article_bands", "story_bands")
        idx = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND"
            " indexname NOT IN (SELECT conname FROM pg_constraint)", (list(tables),)).fetchall()
        story_cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name='story_bands'")]
        with conn.transaction():
            for name, _ in idx:
                conn.execute(f"DROP INDEX {name}")
            with conn.cursor() as cur:
                with cur.copy("COPY articles (id, url, source, title, text, fetched_at, extracted,"
                              " content_hash, signature, story_signature, story_id)"
                              " FROM STDIN") as cp:
                    for i, url, title, text, fp in real:
                        cp.write_row((i, url, "bench", title, text, ts(NOW - timedelta(hours=1)), 1,
                                      fp.content_hash, fingerprint.signature_to_bytes(fp.signature),
                                      fingerprint.signature_to_bytes(fp.story_signature),
                                      f"story{i}"))
                    if stop > start:
                        old = ts(NOW - timedelta(days=365))
                        for i in range(start, stop):
                            cp.write_row((i, f"https://archive{i % 997}.example/news/{i:09d}",
                                          "archive", f"Archived report {i}", "x" * 200, old, 1,
                                          hashlib.sha256(b"%d" % i).hexdigest(), rng.bytes(512),
                                          None, f"old{i}"))
                with cur.copy("COPY article_bands (band_key, article_id) FROM STDIN") as cp:
                    for i, _, _, _, fp in real:
                        for k in fp.band_keys:
                            cp.write_row((k, i))
                with_time = "fetched_at" in story_cols
                cols = ("(band_key, article_id, fetched_at)" if with_time
                        else "(band_key, article_id)")
                with cur.copy(f"COPY story_bands {cols} FROM STDIN") as cp:
                    for i, _, _, _, fp in real:
                        for k in fp.story_band_keys:
                            cp.write_row((k, i, ts(NOW - timedelta(hours=1))) if with_time
                                         else (k, i))
            if stop > start:
                conn.execute(
                    "INSERT INTO article_bands (band_key, article_id)"
                    " SELECT floor((random() - 0.5) * 1.8446744e19)::bigint, a.id"
                    f" FROM articles a, generate_series(1, {fingerprint.BANDS})"
                    " WHERE a.id >= %s AND a.id < %s", (start, stop))
            t = time.perf_counter()
            for _, sql in idx:
                conn.execute(sql)
        conn.execute("SELECT setval(pg_get_serial_sequence('articles', 'id'),"
                     " (SELECT max(id) FROM articles))")
        conn.execute("VACUUM ANALYZE articles")
        conn.execute("VACUUM ANALYZE article_bands")
        conn.execute("VACUUM ANALYZE story_bands")
        conn.close()
        print(f"      (indexes rebuilt in {time.perf_counter() - t:.1f} s)")

    def count(self) -> tuple[int, int]:
        with self.connect() as conn:
            return (conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM article_bands").fetchone()[0])

    def drop(self) -> None:
        with self.psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


# ------------------------------------------------------------------ measuring

def lookup(tx, url: str, fp: Fingerprints) -> tuple[str, int | None]:
    """The dedup decision without the story step and the insert."""
    if (hit := tx.article_id_by_url([url])) is not None:
        return "url", hit
    if (hit := tx.article_id_by_hash(fp.content_hash)) is not None:
        return "exact", hit
    best = None
    if fp.signature is not None:
        for cid, blob in tx.band_candidates(fp.band_keys):
            sim = fingerprint.similarity(fp.signature, fingerprint.signature_from_bytes(blob))
            if sim >= fingerprint.DUPLICATE_THRESHOLD and (best is None or sim > best[1]):
                best = (cid, sim)
    return ("near", best[0]) if best else ("new", None)


def measure(store, queries, warmup: int = 20) -> dict:
    lat_lookup, lat_ingest, found_copy, fp_distinct, wrong = [], [], 0, 0, 0
    copies = sum(1 for q in queries if q[3] is not None)
    for url, _, fp, _ in queries[:warmup]:
        with store.exclusive(dry_run=True) as tx:
            lookup(tx, url, fp)
    for url, art, fp, original in queries:
        t0 = time.perf_counter()
        with store.exclusive(dry_run=True) as tx:
            lookup(tx, url, fp)
        t1 = time.perf_counter()
        with store.exclusive(dry_run=True) as tx:
            v = ingest(tx, art, fp, aliases=[], now=NOW)
        t2 = time.perf_counter()
        lat_lookup.append(t1 - t0)
        lat_ingest.append(t2 - t1)
        if original is not None:
            if v.kind in ("near", "exact") and v.article_id == original:
                found_copy += 1
            elif v.kind in ("near", "exact"):
                wrong += 1
        elif v.kind != "new":
            fp_distinct += 1
    ms = lambda v, p: 1000 * pct(v, p)  # noqa: E731
    return {"lookup_p50_ms": ms(lat_lookup, 50), "lookup_p99_ms": ms(lat_lookup, 99),
            "lookup_max_ms": 1000 * max(lat_lookup),
            "ingest_p50_ms": ms(lat_ingest, 50), "ingest_p99_ms": ms(lat_ingest, 99),
            "recall": found_copy / copies if copies else None,
            "false_positives": fp_distinct + wrong, "copies": copies,
            "distinct": len(queries) - copies}


def parse_size(s: str) -> int:
    return int(float(s))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="stored articles, comma-separated")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--real", type=int, default=10_000,
                    help="articles with real fingerprints (the others are synthetic)")
    ap.add_argument("--queries", type=int, default=200, help="near-copies and as many distinct")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    n_real = min(args.real, sizes[0])

    header("bench_dedup: near-duplicate lookup latency vs stored articles")
    rng = random.Random(args.seed)
    texts, origin = corpus_texts(n_real + args.queries, rng)
    stored = texts[:n_real]
    distinct = texts[n_real:n_real + args.queries]
    t = time.perf_counter()
    real_items = [(f"https://news{i % 50}.example/story/{i}", title, text)
                  for i, (title, text) in enumerate(stored, start=1)]
    picks = rng.sample(range(n_real), min(args.queries, n_real))
    copy_items = [(f"https://mirror.example/copy/{k}", stored[k][0], near_copy(stored[k][1], rng))
                  for k in picks]
    distinct_items = [(f"https://fresh.example/new/{k}", title, text)
                      for k, (title, text) in enumerate(distinct)]
    fps = fingerprints(real_items + copy_items + distinct_items)
    fp_s = time.perf_counter() - t
    real_fps = fps[:n_real]
    copy_fps = fps[n_real:n_real + len(copy_items)]
    distinct_fps = fps[n_real + len(copy_items):]
    real = [(i, url, title, text, fp) for i, ((url, title, text), fp)
            in enumerate(zip(real_items, real_fps, strict=True), start=1)]
    queries = ([(u, Article(url=u, title=ti, text=te, source="bench"), fp, k + 1)
                for (u, ti, te), fp, k in zip(copy_items, copy_fps, picks, strict=True)] +
               [(u, Article(url=u, title=ti, text=te, source="bench"), fp, None)
                for (u, ti, te), fp in zip(distinct_items, distinct_fps, strict=True)])
    random.Random(args.seed + 1).shuffle(queries)
    # Fingerprints.of cost, single process (the pool above only sped up the set-up)
    sample = (real_items + copy_items)[:100]
    t0 = time.perf_counter()
    for item in sample:
        _fp(item)
    fp_each = (time.perf_counter() - t0) / len(sample)
    print(f"   texts: {origin}; {n_real} real fingerprints + {len(queries)} queries in"
          f" {fp_s:.1f} s (2 processes); Fingerprints.of {1000 * fp_each:.2f} ms/article")
    print(f"   queries: {len(copy_items)} planted near-copies, {len(distinct_items)} distinct")

    results: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        for name in args.backends.split(","):
            try:
                backend = SQLiteBackend(tmp) if name == "sqlite" else PostgresBackend()
            except Exception as exc:  # noqa: BLE001 - a backend that cannot open is skipped
                print(f"   {name}: SKIPPED ({type(exc).__name__}: {str(exc)[:120]})")
                continue
            results[name] = {}
            try:
                backend.open_store().close()                  # the project's schema
                nprng = np.random.default_rng(args.seed)
                have = 0
                for size in sizes:
                    t = time.perf_counter()
                    backend.load(real if have == 0 else [], max(have, n_real) + 1, size + 1, nprng)
                    have = size
                    load_s = time.perf_counter() - t
                    n_art, n_bands = backend.count()
                    store = backend.open_store()
                    try:
                        r = measure(store, queries)
                    finally:
                        store.close()
                    r.update(load_s=load_s, articles=n_art, band_rows=n_bands)
                    results[name][size] = r
                    print(f"   {name:10s} {n_art:>9,d} articles ({n_bands:,d} band rows, loaded in"
                          f" {load_s:.0f} s): lookup p50 {r['lookup_p50_ms']:.2f} ms,"
                          f" p99 {r['lookup_p99_ms']:.2f} ms (max {r['lookup_max_ms']:.1f});"
                          f" full ingest p50 {r['ingest_p50_ms']:.2f}"
                          f" / p99 {r['ingest_p99_ms']:.2f} ms;"
                          f" recall {r['recall']:.3f}; false positives {r['false_positives']}")
            finally:
                backend.drop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {}
    for name, by_size in results.items():
        lo, hi = min(by_size), max(by_size)
        g50 = by_size[hi]["lookup_p50_ms"] / by_size[lo]["lookup_p50_ms"]
        g99 = by_size[hi]["lookup_p99_ms"] / by_size[lo]["lookup_p99_ms"]
        p99 = by_size[hi]["lookup_p99_ms"]
        rec = min(r["recall"] for r in by_size.values())
        fpos = max(r["false_positives"] for r in by_size.values())
        summary[name] = {"growth_p50": g50, "growth_p99": g99, "p99_at_max_ms": p99,
                         "max_size": hi, "min_recall": rec, "max_false_positives": fpos}
        print(f"   {name}: growth {lo:,d} -> {hi:,d}: p50 x{g50:.2f}, p99 x{g99:.2f}")
        print(f"     target p99 <= 10 ms at {hi:,d}: {verdict(p99, 10.0, at_most=True)}")
        print(f"     target recall >= 0.95: {verdict(rec, 0.95, at_most=False)};"
              f" false positives: {fpos} (target 0)")
    emit("dedup", {"sizes": sizes, "real": n_real, "queries": len(queries), "origin": origin,
                   "fingerprint_ms": 1000 * fp_each,
                   "results": {b: {str(k): v for k, v in r.items()} for b, r in results.items()},
                   "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
