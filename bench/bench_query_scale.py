"""The query engine on big inputs: NEAR between large groups, many occurrences, snippets.

Cases (each timed in CPU seconds, median of 3 runs):

- ``near_5000x5000``: ``(w0 OR … OR w4999) NEAR/10 (w5000 OR … OR w9999)`` over
  about 1 MB of text drawn from 20,000 words: compile, tokenise, match, and
  the ``rules test`` output (matched words, the snippet, a snippet per term);
- ``explain_5000x5000``: the same query's explanation of a miss;
- ``ja_1mb``: a Japanese NEAR over 1 MB of Japanese (segmented by MeCab):
  tokenise and match;
- ``many_occurrences``: a term occurring 100,000 times.

Target (issue "Every article on the story"): seconds, not minutes; the
figures grow about linearly with the text (``--scale 0.5`` halves it).

    .venv/bin/python bench/bench_query_scale.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from _common import emit, header

from monitor.match.query import Document, compile_query


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        runs.append(time.process_time() - t0)
    return statistics.median(runs), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    header("query engine at scale")
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(20_000)]
    text = " ".join(rng.choice(vocab) for _ in range(int(170_000 * args.scale)))
    left = " OR ".join(f"w{i}" for i in range(5000))
    right = " OR ".join(f"w{i}" for i in range(5000, 10_000))
    source = f"({left}) NEAR/10 ({right})"
    result: dict = {"text_chars": len(text)}

    compile_s, query = timed(lambda: compile_query(source))
    build_s, doc = timed(lambda: Document.build(title="", text=text))
    match_s, match = timed(lambda: query.match(doc))
    output_s, _ = timed(lambda: (match.words, match.snippet(), match.snippets()))
    miss_doc = Document.build(text="w1 " + "x " * 50 + "w6000")
    explain_s, why = timed(lambda: query.explain(miss_doc))
    result["near_5000x5000"] = {"compile_s": round(compile_s, 3), "tokenise_s": round(build_s, 3),
                                "match_s": round(match_s, 3), "output_s": round(output_s, 3),
                                "hits": len(match.hits)}
    result["explain_5000x5000_s"] = round(explain_s, 3)
    print(f"5,000 OR 5,000 NEAR/10 over {len(text):,} chars: compile {compile_s:.2f} s, "
          f"tokenise {build_s:.2f} s, match {match_s:.2f} s ({len(match.hits):,} hits), "
          f"rules-test output {output_s:.2f} s; explain a miss {explain_s:.3f} s  CPU")

    ja = "岸田首相は金正恩総書記との首脳会談に意欲を示した。" * int(40_000 * args.scale)
    ja_build, ja_doc = timed(lambda: Document.build(title="", text=ja), repeat=1)
    ja_query = compile_query("(首相 OR 総理) NEAR/10 (金正恩 OR 会談)")
    ja_match, found = timed(lambda: ja_query.match(ja_doc), repeat=1)
    result["ja_1mb"] = {"chars": len(ja), "tokenise_s": round(ja_build, 3),
                        "match_s": round(ja_match, 3), "hits": len(found.hits)}
    print(f"Japanese, {len(ja):,} chars: tokenise and segment {ja_build:.2f} s, "
          f"match {ja_match:.2f} s ({len(found.hits):,} hits)  CPU")

    many = "首相。" * int(100_000 * args.scale)
    many_doc = Document.build(text=many)
    many_s, many_match = timed(lambda: compile_query("首相").match(many_doc))
    result["many_occurrences"] = {"hits": len(many_match.hits), "match_s": round(many_s, 3)}
    print(f"one term, {len(many_match.hits):,} occurrences: match {many_s:.3f} s CPU")
    emit("query_scale", result)


if __name__ == "__main__":
    main()
