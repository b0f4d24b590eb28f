"""Per-entry CPU of each step of the new-entry path, offline, on generated feeds
(the same as bench_new_entries), so that a change to one step can be measured alone:

    .venv/bin/python bench/profile_stages.py [--feeds 50] [--pyinstrument]

Steps: parse_feed; Document.build; RuleSet.match (the shipped rules); Fingerprints.of
(normalised text, MinHash, story signature, band keys); ingest + mark_seen + commit in
a SQLite store. With --pyinstrument, the whole loop's call tree is written to
bench/profiles/stages.txt.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_new_entries import generated_feeds  # noqa: E402

from bench._common import default_rules, header  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--pyinstrument", action="store_true")
    ap.add_argument("--templated", action="store_true")
    args = ap.parse_args()
    header("profile_stages: per-entry CPU of each step")

    from monitor.dedup.ingest import Fingerprints, ingest
    from monitor.match.query import Document, RuleSet, compile_query
    from monitor.models import Article
    from monitor.sources.feeds import parse_feed
    from storage import open_store

    feeds = generated_feeds(args.feeds, 20, templated=args.templated)
    ruleset = RuleSet({name: compile_query(q, rule=name) for name, q in default_rules()})
    tmp = Path(tempfile.mkdtemp(prefix="stages-"))
    store = open_store(f"sqlite:///{tmp / 'm.db'}")
    cost: dict[str, float] = defaultdict(float)
    n = 0
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.0005)
        profiler.start()
    clock = time.process_time
    now = datetime.now(UTC)
    for name, body in feeds:
        t = clock()
        parsed = parse_feed(body, url=f"https://{name}.example/feed.xml")
        cost["parse_feed"] += clock() - t
        for entry in parsed.entries:
            n += 1
            article = Article(url=entry.url, guid=entry.guid, source=name, title=entry.title,
                              text=entry.summary, published=entry.published)
            t = clock()
            doc = Document.build(title=article.title, text=article.text, source=name,
                                 url=article.url)
            t2 = clock()
            matches = ruleset.match(doc)
            t3 = clock()
            fp = Fingerprints.of_tokens(article, doc.fields["title"].norms,
                                        doc.fields["text"].norms, story=bool(matches))
            t4 = clock()
            with store.exclusive() as tx:
                verdict = ingest(tx, article, fp, aliases=[], now=now)
                tx.mark_seen(name, [entry.guid or entry.url], verdict.article_id)
            t5 = clock()
            cost["Document.build"] += t2 - t
            cost["RuleSet.match"] += t3 - t2
            cost["Fingerprints.of"] += t4 - t3
            cost["ingest + commit"] += t5 - t4
    if profiler is not None:
        profiler.stop()
        out = Path(__file__).resolve().parent / "profiles"
        out.mkdir(exist_ok=True)
        (out / "stages.txt").write_text(profiler.output_text(unicode=False), encoding="utf-8")
    store.close()
    total = sum(cost.values())
    print(f"   {n} entries; {1000 * total / n:.2f} ms CPU per entry in all")
    for step, seconds in cost.items():
        print(f"   {step:18s} {1000 * seconds / n:7.3f} ms per entry"
              f"  {100 * seconds / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
