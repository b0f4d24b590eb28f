"""Extraction quality on the bench-data article pages, with that benchmark's own
measure: word 4-gram shingles (tokens = \\w+), tp/fp/fn counted with multiplicity,
F1 between monitor.text.extract.extract_article(...).text and the ground-truth body.

    .venv/bin/python bench/bench_extract_quality.py [--limit N] [--worst 10] [--bare]

Needs $BENCH_DATA/articles (or ../shared/bench-data/articles): without ground
truth there is nothing to measure, so the script says so and exits 0.
Reports the mean per-page F1 (the target, >= 0.96), the distribution, and the
micro F1 over all pages. --bare also scores trafilatura.extract with defaults.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import bench_data, emit, header, median, pct, verdict  # noqa: E402

_TOKEN_RE = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


def shingles(text: str, n: int = 4) -> Counter:
    tokens = _TOKEN_RE.findall(text or "")
    return Counter(" ".join(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))
                   if tokens[i:i + n])


def tp_fp_fn(truth: str, pred: str) -> tuple[float, float, float]:
    t, p = shingles(truth), shingles(pred)
    tp = fp = fn = 0
    for key in t.keys() | p.keys():
        a, b = t.get(key, 0), p.get(key, 0)
        tp += min(a, b)
        fp += max(0, b - a)
        fn += max(0, a - b)
    return tp, fp, fn


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(name: str, items: list[tuple[str, str]]) -> dict:
    per, totals = [], [0, 0, 0]
    for truth, pred in items:
        c = tp_fp_fn(truth, pred)
        totals = [a + b for a, b in zip(totals, c, strict=True)]
        per.append(prf(*c))
    f1s = [f for _, _, f in per]
    mean = sum(f1s) / len(f1s)
    micro = prf(*totals)
    buckets = {"<0.5": sum(f < 0.5 for f in f1s), "0.5-0.8": sum(0.5 <= f < 0.8 for f in f1s),
               "0.8-0.9": sum(0.8 <= f < 0.9 for f in f1s),
               "0.9-0.95": sum(0.9 <= f < 0.95 for f in f1s), ">=0.95": sum(f >= 0.95 for f in f1s)}
    print(f"   {name}: mean F1 {mean:.4f} (precision {sum(p for p, _, _ in per) / len(per):.4f},"
          f" recall {sum(r for _, r, _ in per) / len(per):.4f}); micro F1 {micro[2]:.4f};"
          f" median {median(f1s):.4f}, p10 {pct(f1s, 10):.4f}, min {min(f1s):.4f}")
    print(f"      pages by F1: {buckets}")
    return {"mean_f1": mean, "mean_precision": sum(p for p, _, _ in per) / len(per),
            "mean_recall": sum(r for _, r, _ in per) / len(per), "micro_f1": micro[2],
            "median_f1": median(f1s), "p10_f1": pct(f1s, 10), "min_f1": min(f1s),
            "buckets": buckets, "per_page": f1s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--worst", type=int, default=10, help="list the N worst pages")
    ap.add_argument("--bare", action="store_true", help="also score bare trafilatura.extract")
    args = ap.parse_args()

    header("bench_extract_quality: word-4-gram F1 of extract_article against ground truth")
    data = bench_data()
    folder = data / "articles" if data else None
    if folder is None or not (folder / "ground-truth.json").is_file():
        print("   SKIPPED: no bench data (set BENCH_DATA or provide ../shared/bench-data/articles);"
              " quality needs labelled pages, generated pages would measure nothing.")
        emit("extract_quality", {"skipped": True})
        return 0
    from monitor.text.extract import extract_article
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    keys = sorted(truth)[:args.limit]
    ours, bare, none = [], [], 0
    for key in keys:
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        url = truth[key].get("url") or "https://example.org/"
        ex = extract_article(html, url=url)
        if ex is None:
            none += 1
        ours.append((truth[key].get("articleBody") or "", ex.text if ex else ""))
        if args.bare:
            import trafilatura
            bare.append((truth[key].get("articleBody") or "",
                         trafilatura.extract(html, url=url) or ""))
    print(f"   pages: {len(keys)} ({folder}); extract_article returned None on {none}")
    res = score("extract_article", ours)
    res_bare = score("trafilatura.extract (defaults)", bare) if bare else None
    if args.worst:
        worst = sorted(zip(res["per_page"], keys, strict=True))[:args.worst]
        print("   worst pages: " + ", ".join(f"{k[:12]} {f:.3f}" for f, k in worst))
    print(f"   target mean F1 >= 0.96: {verdict(res['mean_f1'], 0.96, at_most=False)}")
    res.pop("per_page")
    if res_bare:
        res_bare.pop("per_page")
    emit("extract_quality", {"pages": len(keys), "none": none, "extract_article": res,
                             "trafilatura_defaults": res_bare, "met": res["mean_f1"] >= 0.96})
    return 0


if __name__ == "__main__":
    sys.exit(main())
