"""The query language at the command line: ``rules test``, ``rules eval`` and ``search``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from monitor.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, console, safe, when
from monitor.config import Config, RuleConfig
from monitor.errors import FetchError, ParseError, QueryError
from monitor.match.query import Document, compile_query
from monitor.match.rulecheck import Article, evaluate, explanation, read_article
from monitor.runtime import Runtime
from monitor.text.extract import extract_article


def rule_named(config: Config, name: str) -> RuleConfig | None:
    """The rule called ``name``, or None after saying on stderr that there is none."""
    rule = next((r for r in config.rules if r.name == name), None)
    if rule is None:
        print(f"news-monitor: configuration error: {config.path}: no rule named {name!r}",
              file=sys.stderr)
    return rule


def cmd_rules_test(config: Config, args: argparse.Namespace) -> int:
    rule = rule_named(config, args.rule)
    if rule is None:
        return EXIT_USAGE
    try:
        title, text, url = asyncio.run(load_article(config, args))
    except (FetchError, ParseError, OSError) as exc:
        print(f"news-monitor: cannot read the article: {exc}", file=sys.stderr)
        return EXIT_USAGE
    query = compile_query(rule.query, rule=rule.name)
    result = explanation(query, Article(title, text, url))
    if args.json:
        print(json.dumps({"rule": rule.name, "title": title, "url": url, **result},
                         ensure_ascii=False))
        return EXIT_OK if result["matched"] else EXIT_FAILED
    out = console()
    if not result["matched"]:
        out.print(f"[red]no match[/red]: rule {safe(rule.name)} on {safe(title or url, 120)}")
        for why in result["why_not"]:
            out.print(f"  {safe(why, 400)}")
        return EXIT_FAILED
    out.print(f"[green]match[/green]: rule {safe(rule.name)} on {safe(title or url, 120)}")
    out.print(f"matched: {safe(', '.join(result['words']), 500)}")
    for item in result["snippets"]:
        out.print(f"  [bold]{safe(item['term'], 80)}[/bold]: {safe(item['snippet'], 400)}")
    return EXIT_OK


def cmd_rules_eval(config: Config, args: argparse.Namespace) -> int:
    rule = rule_named(config, args.rule)
    if rule is None:
        return EXIT_USAGE
    if args.min is not None and not 0 <= args.min <= 1:
        print("news-monitor: error: --min must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = evaluate(rule.name, compile_query(rule.query, rule=rule.name), Path(args.dir))
    except (FileNotFoundError, NotADirectoryError) as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = (report.true_positives + len(report.false_alerts) == 0
              or (args.min is not None and not report.meets(args.min)))
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return EXIT_FAILED if failed else EXIT_OK
    out = console()

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    out.print(f"rule {safe(rule.name)} on {safe(args.dir, 200)}: "
                  f"{report.positives} positive, {report.negatives} negative articles")
    out.print(f"recall {figure(report.recall)} ({report.true_positives}/{report.positives})   "
                  f"precision {figure(report.precision)} ({report.true_positives}/"
                  f"{report.true_positives + len(report.false_alerts)})")
    for miss in report.misses:
        out.print(f"[red]missed[/red] {safe(miss['file'], 120)}: {safe(miss['title'], 120)}")
        for why in miss["why_not"]:
            out.print(f"    {safe(why, 300)}")
    for false in report.false_alerts:
        out.print(f"[yellow]false alert[/yellow] {safe(false['file'], 120)}: "
                      f"{safe(false['title'], 120)}\n    matched: "
                      f"{safe(', '.join(false['matched']), 300)}")
    for bad in report.unreadable:
        out.print(f"[red]unreadable[/red] {safe(bad['file'], 120)}: {safe(bad['error'], 200)}")
    if args.min is not None:
        verdict = "meets" if report.meets(args.min) else "misses"
        out.print(f"{verdict} the bar of {args.min:g}")
    return EXIT_FAILED if failed else EXIT_OK


async def load_article(config: Config, args: argparse.Namespace) -> tuple[str, str, str]:
    if args.url:
        async with Runtime(config) as runtime:
            response = await runtime.http.get(args.url)
        extracted = extract_article(response.body, url=response.url, charset=response.charset)
        if extracted is None:
            raise ParseError("no article text could be extracted from the page")
        return extracted.title, extracted.text, response.url
    raw = sys.stdin.buffer.read() if args.stdin else Path(args.file).read_bytes()
    article = read_article(raw)
    return article.title, article.text, ""




def cmd_search(config: Config, args: argparse.Namespace) -> int:
    try:
        query = compile_query(args.query)
    except QueryError as exc:
        print(f"news-monitor: query error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    hits = []
    with Runtime(config) as runtime:
        store = runtime.store
        for article in store.iter_articles(containing_any=query.needles()):
            match = query.match(Document.build(title=article.title, text=article.text,
                                               source=article.source, url=article.url))
            if match:
                hits.append((article, match))
    hits.sort(key=lambda h: h[0].published or h[0].fetched_at, reverse=True)
    hits = hits[:args.limit]
    if args.json:
        print(json.dumps([{"url": a.url, "title": a.title, "source": a.source,
                           "published": a.published.isoformat() if a.published else None,
                           "matched": m.words, "snippet": m.snippet()} for a, m in hits],
                         ensure_ascii=False))
        return EXIT_OK if hits else EXIT_FAILED
    out = console()
    for a, m in hits:
        out.print(f"[bold]{safe(a.title, 150)}[/bold]\n  {safe(a.source, 40)} · "
                      f"{when(a.published or a.fetched_at)} · {safe(a.url, 300)}\n"
                      f"  matched: {safe(', '.join(m.words))}\n  {safe(m.snippet(), 300)}")
    if not hits:
        print("no stored article matches")
    return EXIT_OK if hits else EXIT_FAILED


