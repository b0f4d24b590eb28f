"""Matching time per article with 1, 10, 100 and 1,000 watch rules.

    .venv/bin/python bench/bench_rules.py [--counts 1,10,100,1000] [--repeat 3]

Rules: generated in the query language (names, phrases, NEAR/n, wildcards,
title:/url:/source: fields, NOT, Japanese terms), seeded, so every run uses the
same set. Articles: the ground-truth texts of $BENCH_DATA/articles plus the
Japanese and English test pairs (tests/testdata/pairs), else generated texts.
Each measurement builds a fresh Document (its lazy indexes are part of the cost);
Document.build is timed apart, since it does not depend on the rules.
Target: 1,000 rules cost at most 3x what 10 cost (RuleSet.match per article).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import ROOT, bench_data, emit, generated_text, header, median, verdict  # noqa: E402

PEOPLE = ["Kishida", "Kim Jong Un", "Kim Yo Jong", "Fumio Kishida", "Yoon Suk Yeol", "Xi Jinping",
          "Joe Biden", "Donald Trump", "Vladimir Putin", "Shinzo Abe", "Yoshihide Suga",
          "Moon Jae-in", "Emmanuel Macron", "Olaf Scholz", "Rishi Sunak", "Narendra Modi",
          "Antony Blinken", "Yoko Kamikawa", "Hayashi", "Choe Son Hui", "Elon Musk", "Tim Cook",
          "Jeff Bezos", "Satya Nadella", "Sundar Pichai", "Greta Thunberg", "Taylor Swift",
          "Angela Merkel", "Boris Johnson", "Justin Trudeau", "Lula", "Zelensky", "Netanyahu"]
PLACES = ["Pyongyang", "Tokyo", "Seoul", "Beijing", "Washington", "Moscow", "Ulaanbaatar",
          "Singapore", "Hanoi", "Panmunjom", "Niigata", "Hokkaido", "Okinawa", "Taiwan",
          "Ukraine", "Gaza", "Brussels", "London", "Paris", "Berlin", "California", "Texas"]
TOPICS = ["summit", "talks", "abduction", "abductees", "missile", "sanctions", "nuclear",
          "election", "tariff", "inflation", "earthquake", "typhoon", "ceasefire", "treaty",
          "merger", "acquisition", "lawsuit", "recall", "outage", "breach", "layoffs", "strike",
          "vaccine", "pandemic", "climate", "budget", "referendum", "protest", "scandal"]
PREFIXES = ["abduct", "negotiat", "sanction", "missil", "denucleari", "diplomat", "summit",
            "elect", "invest", "regulat", "cyber", "hack", "semiconduct", "econom", "militar"]
PHRASES = ["prime minister", "foreign minister", "North Korea", "South Korea", "United Nations",
           "Security Council", "White House", "central bank", "interest rates", "supply chain",
           "artificial intelligence", "climate change", "human rights", "trade war",
           "ballistic missile", "joint statement", "press conference", "state media"]
JA = ["岸田", "金正恩", "拉致", "拉致被害者", "首脳会談", "北朝鮮", "日朝", "ミサイル", "制裁",
      "外務省", "首相", "平壌", "横田めぐみ", "家族会", "官房長官", "核", "選挙", "地震", "台風"]
SITES = ["nknews", "kyodonews", "japantimes", "nhk", "asahi", "reuters", "apnews", "bbc",
         "nytimes", "wsj", "bloomberg", "theverge", "techcrunch", "arstechnica"]


def q(term: str) -> str:
    return f'"{term}"' if " " in term or "-" in term else term


def make_rule(rng: random.Random) -> str:
    kind = rng.randrange(10)
    person, place, topic = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(TOPICS)
    if kind == 0:
        return f"{q(person)} AND {topic}"
    if kind == 1:
        return f"({q(person)} OR {q(rng.choice(PEOPLE))}) AND ({topic} OR {rng.choice(TOPICS)})"
    if kind == 2:
        return f"{q(person)} NEAR/{rng.choice([3, 5, 10, 20])} ({topic} OR {rng.choice(PREFIXES)}*)"
    if kind == 3:
        return f'"{rng.choice(PHRASES)}" AND {rng.choice(PREFIXES)}* NOT {rng.choice(TOPICS)}'
    if kind == 4:
        return f"title:({q(person)} OR {place}) AND {topic}"
    if kind == 5:
        return f"({rng.choice(JA)} OR {q(person)}) AND ({rng.choice(JA)} OR {topic})"
    if kind == 6:
        return f"{rng.choice(JA)}{rng.choice(JA)} OR ({rng.choice(JA)} AND {rng.choice(JA)})"
    if kind == 7:
        return f"url:{rng.choice(SITES)} AND ({q(person)} OR {place} OR {topic})"
    if kind == 8:
        return (f'({q(person)} OR "{rng.choice(PHRASES)}") AND {place} '
                f"AND ({rng.choice(PREFIXES)}* OR {topic}) NOT source:{rng.choice(SITES)}")
    return f'"{person.split()[0]} {rng.choice(TOPICS)}" OR ({place} NEAR/5 {rng.choice(PREFIXES)}*)'


def make_rules(n: int, seed: int = 11) -> list[tuple[str, object]]:
    from monitor.errors import QueryError
    from monitor.match.query import compile_query
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        text = make_rule(rng)
        name = f"r{len(out):04d}"
        try:
            out.append((name, compile_query(text, rule=name)))
        except QueryError as exc:       # a generator bug; say so, keep going
            print(f"   (skipped rule {text!r}: {exc})")
    return out


def load_docs() -> tuple[list[tuple[str, str, str]], str]:
    docs = []
    data = bench_data()
    gt = data / "articles" / "ground-truth.json" if data else None
    if gt is not None and gt.is_file():
        for key, item in json.loads(gt.read_text(encoding="utf-8")).items():
            body = item.get("articleBody") or ""
            title = body.split("\n", 1)[0][:120]
            docs.append((title, body, item.get("url") or f"https://example.org/{key}"))
        origin = f"{len(docs)} bench-data ground-truth texts"
    else:
        rng = random.Random(5)
        for i in range(181):
            body = generated_text(rng, rng.randint(300, 1500))
            docs.append((body[:80], body, f"https://example.org/{i}"))
        origin = f"{len(docs)} generated texts (bench data absent)"
    pairs = ROOT / "tests" / "testdata" / "pairs"
    extra = 0
    for p in sorted(pairs.glob("*.txt")) if pairs.is_dir() else []:
        text = p.read_text(encoding="utf-8")
        docs.append((text.split("\n", 1)[0][:120], text, f"https://example.org/pairs/{p.stem}"))
        extra += 1
    return docs, origin + (f" + {extra} test pairs (en/ja)" if extra else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1,10,100,1000")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the articles per count")
    args = ap.parse_args()
    from monitor.match.query import Document, RuleSet

    header("bench_rules: RuleSet.match per article vs number of rules")
    docs, origin = load_docs()
    counts = [int(c) for c in args.counts.split(",")]
    rules = make_rules(max(counts))
    print(f"   articles: {origin}; words/article median "
          f"{median([len(b.split()) for _, b, _ in docs]):.0f}; repeat {args.repeat}")
    results = {}
    build_times: list[float] = []
    for count in counts:
        t = time.perf_counter()
        rs = RuleSet(dict(rules[:count]))
        compile_s = time.perf_counter() - t
        per_doc: list[float] = []
        matched = 0
        for _ in range(args.repeat):
            for title, body, url in docs:
                t0 = time.perf_counter()
                doc = Document.build(title=title, text=body, source="bench", url=url)
                t1 = time.perf_counter()
                out = rs.match(doc)
                t2 = time.perf_counter()
                build_times.append(t1 - t0)
                per_doc.append(t2 - t1)
                matched += len(out)
        mean = sum(per_doc) / len(per_doc)
        results[count] = {"mean_ms": 1000 * mean, "median_ms": 1000 * median(per_doc),
                          "p99_ms": 1000 * sorted(per_doc)[int(0.99 * (len(per_doc) - 1))],
                          "matches_per_article": matched / len(per_doc),
                          "ruleset_build_ms": 1000 * compile_s}
        print(f"   {count:5d} rules: match {1000 * mean:7.3f} ms/article (median "
              f"{results[count]['median_ms']:.3f}, p99 {results[count]['p99_ms']:.3f}),"
              f" {matched / len(per_doc):.2f} matches/article, RuleSet() {1000 * compile_s:.1f} ms")
    build_ms = 1000 * sum(build_times) / len(build_times)
    print(f"   Document.build: {build_ms:.3f} ms/article (independent of the rules)")
    ratio = ratio_total = None
    if 10 in results and 1000 in results:
        ratio = results[1000]["mean_ms"] / results[10]["mean_ms"]
        ratio_total = (results[1000]["mean_ms"] + build_ms) / (results[10]["mean_ms"] + build_ms)
        print(f"   1000 vs 10 rules: match only {ratio:.2f}x;"
              f" with Document.build {ratio_total:.2f}x")
        print(f"   target 1000 rules <= 3x 10 rules (match): {verdict(ratio, 3.0, at_most=True)}")
    emit("rules", {"articles": len(docs), "origin": origin, "per_count": results,
                   "document_build_ms": build_ms, "ratio_1000_vs_10": ratio,
                   "ratio_1000_vs_10_with_build": ratio_total,
                   "met": (ratio is not None and ratio <= 3.0)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
