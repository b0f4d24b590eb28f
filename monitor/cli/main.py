"""The command line: ``python run_monitor.py [--config PATH] COMMAND`` (or ``news-monitor``).

Exit status: 0 all went well; 1 the run finished but a source or a delivery
failed (or, for ``rules test``, the rule did not match); 2 usage or
configuration error, with a message naming the file, key or rule.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import DEFAULT_PATH, Config, load_config
from monitor.errors import ConfigError, FetchError, ParseError, QueryError, StorageError
from monitor.logs import LOG_FORMATS, setup_logging
from monitor.redaction import redactor
from storage.boundary import async_store

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130          # 128 + SIGINT, as shells report a Ctrl-C


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):          # argparse exits 2 itself; keep our wording
        self.print_usage(sys.stderr)
        raise UsageError(message)


EPILOG = f"""\
exit status:
  0  every source and delivery succeeded
  1  the run finished, but a source or a delivery failed or is still pending
     (rules test, rules eval, search: nothing matched, or the bar was missed)
  2  usage or configuration error: nothing was fetched

examples:
  news-monitor init && news-monitor check-now --dry-run
  news-monitor sources discover https://www.38north.org/ >> {DEFAULT_PATH}
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("news-monitor")
    except PackageNotFoundError:          # run from a checkout that pip never installed
        return "unknown"


def _group(sub, name: str, help: str):
    """A command with subcommands; given alone, it prints its own help."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(group_parser=parser)
    return parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND",
                                 parser_class=_Parser)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="news-monitor", description="Watch news feeds and sites; alert on matches.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("--config", default=DEFAULT_PATH, metavar="PATH",
                   help=f"configuration file (default: {DEFAULT_PATH})")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log output (-v: info, -vv: debug)")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                   help="log lines on stderr: text for people, JSON lines for machines "
                        "(default auto: text on a terminal, JSON otherwise)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("check-now", help="one pass over the sources, then exit")
    c.add_argument("--source", action="append", default=[], metavar="NAME",
                   help="only this source (repeatable)")
    c.add_argument("--dry-run", action="store_true", help="send and store nothing; print what would alert")
    c.add_argument("--json", action="store_true", help="print the run summary as JSON")
    c.add_argument("--force", action="store_true",
                   help="poll even the sources whose server asked to wait (Retry-After)")

    r = sub.add_parser("run", help="the daemon: poll every source on its interval")
    r.add_argument("--http", metavar="HOST:PORT", nargs="?", const="",
                   help="also serve the web page, feeds, API, /healthz and /metrics "
                        "(on [web] listen, default 127.0.0.1:8080, when HOST:PORT is left out)")
    r.add_argument("--tick", type=float, default=5.0, metavar="SECONDS",
                   help="how often to look for due sources (default 5)")

    w = sub.add_parser("serve", help="the web page, feeds and API over the store, without polling")
    w.add_argument("--http", metavar="HOST:PORT",
                   help="where to listen (default: [web] listen, or 127.0.0.1:8080)")

    rules = _group(sub, "rules", "work with rules")
    t = rules.add_parser("test", help="does RULE match this article, and why")
    t.add_argument("rule")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--url")
    src.add_argument("--file", metavar="PATH")
    src.add_argument("-", dest="stdin", action="store_true", help="read the article from stdin")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    e = rules.add_parser("eval", help="RULE over a labelled folder: recall, precision, "
                                      "each miss and false alert")
    e.add_argument("rule")
    e.add_argument("dir", metavar="DIR", help="a folder with pos/ (should match) and neg/ "
                                              "(should not): .txt (first line the headline) "
                                              "or .html articles")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.add_argument("--min", type=float, metavar="X",
                   help="exit 1 when recall or precision is under X (0 to 1)")

    sources = _group(sub, "sources", "work with sources")
    sl = sources.add_parser("list", help="each source with its health")
    sl.add_argument("--json", action="store_true", help="print them as a JSON array")
    sd = sources.add_parser("discover", help="the feeds a site offers, as [[sources]] TOML")
    sd.add_argument("url", metavar="URL", help="the site's address (a page or a feed)")
    si = sources.add_parser("import", help="an OPML file's subscriptions as [[sources]] TOML")
    si.add_argument("file", metavar="FILE.opml", help="the OPML file, as feed readers export it")
    sources.add_parser("export", help="the configured feed sources as OPML 2.0")

    alerts = _group(sub, "alerts", "work with alerts")
    al = alerts.add_parser("list", help="recent alerts and their delivery state")
    al.add_argument("--pending", action="store_true",
                    help="only alerts with deliveries waiting, with the reason and next try")
    al.add_argument("--limit", type=int, default=50, metavar="N",
                    help="at most N alerts, newest first (default 50)")
    al.add_argument("--json", action="store_true", help="print them as a JSON array")

    stories = _group(sub, "stories", "work with stories")
    sm = stories.add_parser("mute", help="record a story's new alerts without delivering them")
    sm.add_argument("story_id", metavar="STORY_ID",
                    help="a story id, as alerts list and the web page show it")
    su = stories.add_parser("unmute", help="deliver a story's new alerts again")
    su.add_argument("story_id", metavar="STORY_ID", help="a muted story's id")

    s = sub.add_parser("search", help="run a query over the stored articles")
    s.add_argument("query", metavar="QUERY", help="a query in the rules' language, quoted")
    s.add_argument("--limit", type=int, default=20, metavar="N",
                   help="at most N articles, newest first (default 20)")
    s.add_argument("--json", action="store_true", help="print them as a JSON array")

    notify = _group(sub, "notify", "work with notifiers")
    nt = notify.add_parser("test", help="send a sample alert through one channel")
    nt.add_argument("notifier", metavar="NOTIFIER", help="a [[notifiers]] name, or console")

    sub.add_parser("validate", help="check the configuration and exit")
    sub.add_parser("init", help=f"write a starter configuration to {DEFAULT_PATH} "
                                "(or --config PATH); never over an existing file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:           # --help, --version: printed, nothing else to do
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    group = getattr(args, "group_parser", None)
    if group is not None and not getattr(args, f"{args.command}_command", None):
        group.print_help()
        return EXIT_OK
    if args.command == "init":          # there is no configuration to load yet
        return cmd_init(args)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _config_error(exc)
        return EXIT_USAGE
    if args.command in ("validate", "check-now", "run"):
        # Where a mistake would show; `sources import` into a file without rules is
        # how a configuration begins.
        for warning in config.warnings:
            print(f"news-monitor: warning: {warning}", file=sys.stderr)
    # The daemon reports what it does (INFO) unless told otherwise; one-shot commands
    # only what went wrong.
    verbose = max(args.verbose, 1) if args.command == "run" else args.verbose
    setup_logging(verbose, secrets=config.secrets, log_format=args.log_format)
    handler = COMMANDS[_command_key(args)]
    try:
        return handler(config, args)
    except ConfigError as exc:
        _config_error(exc)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"news-monitor: storage error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # What was stored is kept (an article with its alerts, a delivery once sent):
        # the next pass does the rest.
        print("news-monitor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _config_error(exc: ConfigError) -> None:
    # One line per mistake: the configuration reports every one it found.
    for line in str(exc).splitlines():
        print(f"news-monitor: configuration error: {line}", file=sys.stderr)


def _command_key(args: argparse.Namespace) -> str:
    for attr in ("rules_command", "sources_command", "alerts_command", "notify_command",
                 "stories_command"):
        if getattr(args, attr, None):
            return f"{args.command} {getattr(args, attr)}"
    return args.command


# building blocks ----------------------------------------------------------------

def _open_store(config: Config, *, scratch: bool = False, check: bool = False):
    from storage import open_store

    return open_store(config.storage_url, scratch=scratch, check=check)


def _fetch_policy(config: Config):
    from monitor.sources.fetch import FetchPolicy

    m = config.monitor
    return FetchPolicy(user_agent=m.user_agent, timeout=m.timeout, max_body=m.max_body,
                       concurrency=m.concurrency, per_host=m.per_host,
                       per_host_delay=m.per_host_delay,
                       allow_private_networks=m.allow_private_networks)


@asynccontextmanager
async def _fetcher(config: Config) -> AsyncIterator:
    from monitor.sources.fetch import Fetcher

    fetcher = Fetcher(_fetch_policy(config))
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


def build_notifiers(config: Config, http, *, console_stream=None) -> dict:
    from monitor.delivery.notifiers import notifier_class
    from monitor.delivery.notifiers.console import ConsoleNotifier

    notifiers = {"console": ConsoleNotifier("console", console_stream)}
    for n in config.notifiers:
        notifiers[n.name] = notifier_class(n.kind).from_config(n.name, dict(n.options), http=http)
        notifiers[n.name].timezone = n.timezone
    return notifiers


def _console():
    from rich.console import Console

    # Piped into a file or a mail, 80 columns wraps every error: use a wider page.
    return Console(highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else 140)


def _when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return "-"
    if zone == "UTC":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    from zoneinfo import ZoneInfo
    return value.astimezone(ZoneInfo(zone)).strftime(f"%Y-%m-%d %H:%M:%S {zone}")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def _safe(text: str | None, limit: int = 200) -> str:
    from rich.markup import escape

    from monitor.text.safe import one_line
    return escape(one_line(text, limit))


# commands -----------------------------------------------------------------------

def cmd_validate(config: Config, args) -> int:
    from monitor.match.rulecheck import lowercase_operators

    for rule in config.rules:
        for pos, word in lowercase_operators(rule.query):
            print(f"news-monitor: warning: {config.path}: rule {rule.name!r}"
                  f"{_line_of(config.path, rule.name)}: query position {pos}: lower-case "
                  f"{word!r} is searched for as a word; operators are upper case "
                  f"({word.upper()})", file=sys.stderr)
    print(f"{config.path}: OK: {len(config.sources)} sources, {len(config.rules)} rules, "
          f"{len(config.notifiers)} notifiers")
    return EXIT_OK


def _line_of(path, rule: str) -> str:
    """", line N" of the rule's ``name = "..."`` in the file, when it can be found."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for n, line in enumerate(lines, 1):
        key, _, value = line.partition("=")
        if key.strip() == "name" and value.strip().strip("'\"") == rule:
            return f" (line {n})"
    return ""


def cmd_check_now(config: Config, args) -> int:
    unknown = [n for n in args.source if n not in {s.name for s in config.sources}]
    if unknown:
        print(f"news-monitor: configuration error: {config.path}: --source: "
              f"no source named {unknown[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    sources = [s for s in config.sources if not args.source or s.name in args.source]
    summary = asyncio.run(_check_now(config, sources, dry_run=args.dry_run, as_json=args.json,
                                     force=args.force))
    if args.json:
        data = summary.to_dict()
        if args.dry_run:
            data["dry_run"] = True
            data["would_alert"] = summary.previews
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_summary(summary, dry_run=args.dry_run)
    return EXIT_OK if summary.ok else EXIT_FAILED


async def _check_now(config: Config, sources, *, dry_run: bool, as_json: bool,
                     force: bool = False):
    from monitor.delivery.outbox import (
        deliver_due,
        deliver_pending,
        pending_due,
        quiet_channels,
        reclaim_dead_leases,
    )
    from monitor.pipeline.orchestrator import Pipeline, RunSummary
    from monitor.pipeline.workers import Workers

    # A pass writes: a damaged file is refused before it is made worse.
    store = _open_store(config, scratch=dry_run, check=True)
    db = async_store(store)          # the store's thread: the loop never waits on it
    workers = Workers(config.monitor.workers)
    summary = RunSummary()
    progress = _Progress(len(sources)) if sys.stderr.isatty() and not as_json else None
    try:
        async with _fetcher(config) as http:
            notifiers = build_notifiers(config, http,
                                        console_stream=sys.stderr if as_json else sys.stdout)
            redact = redactor(config.secrets)
            # Everything pending when the pass began is due in it, whatever its backoff.
            started = datetime.now(UTC)
            if not dry_run:
                await db.call(reclaim_dead_leases, store)
                # What earlier runs left pending goes out first.
                stats = await deliver_pending(store, notifiers, redact=redact,
                                              held=quiet_channels(config),
                                              retry_before=started)
                summary.delivered += stats.delivered
                summary.failed_deliveries += stats.failed
            pipeline = Pipeline(config, store, http, dry_run=dry_run,
                                on_progress=progress.update if progress else None,
                                workers=workers, force=force)
            if progress:
                progress.start()
            try:
                summary.sources = await pipeline.run(sources)
            finally:
                if progress:
                    progress.stop()
            summary.previews = pipeline.previews
            if not dry_run:
                stats = await deliver_due(store, notifiers, config, redact=redact,
                                          retry_before=started)
                summary.delivered += stats.delivered
                summary.failed_deliveries += stats.failed
                summary.pending_deliveries = await db.call(pending_due, store, config)
            for notifier in notifiers.values():
                await notifier.aclose()
    except BaseException:
        workers.close(now=True)          # interrupted: no one waits for those jobs
        raise
    finally:
        workers.close()
        store.close()
    return summary


class _Progress:
    """A progress bar on stderr while sources are polled (terminals only)."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
                                 console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("polling", total=total, counts="")
        self.entries = self.articles = 0

    def start(self):
        self.progress.start()

    def stop(self):
        self.progress.stop()

    def update(self, source: str, message: str):
        if message == "done":
            self.progress.advance(self.task)
        elif message == "article":
            self.articles += 1
        elif message.endswith(" new entries") and message.split()[0].isdigit():
            self.entries += int(message.split()[0])
        counts = f"sources · {self.articles}/{self.entries} new entries done"
        description = (f"{_safe(source, 40)}: {_safe(message, 40)}" if message != "article"
                       else self.progress.tasks[0].description)
        self.progress.update(self.task, description=description, counts=counts)


def _print_summary(summary, *, dry_run: bool) -> None:
    from rich.table import Table

    console = _console()
    if dry_run and summary.previews:
        console.print(f"[bold]Would alert ({len(summary.previews)}):[/bold]")
        for p in summary.previews:
            tag = " (follow-up)" if p["followup"] else ""
            # "\[" : a bare "[rule]" would be read as rich markup and vanish.
            console.print(f"  \\[{_safe(p['rule'])}]{tag} {_safe(p['title'])}\n"
                          f"    {_safe(p['url'])}\n    matched: {_safe(', '.join(p['matched']))}")
    table = Table(title="check-now" + (" (dry run: nothing stored or sent)" if dry_run else ""))
    for col in ("source", "status", "entries", "new", "dups", "alerts", "error"):
        table.add_column(col, justify="right" if col in ("entries", "new", "dups", "alerts") else "left")
    for s in summary.sources:
        style = {"ok": "green", "not_modified": "dim", "skipped": "yellow",
                 "error": "red"}[s.status]
        table.add_row(_safe(s.name, 40), f"[{style}]{s.status}[/{style}]", str(s.entries),
                      str(s.new_articles), str(s.duplicates), str(s.alerts),
                      _safe(s.error or "", 160))
    console.print(table)
    console.print(f"new articles: {summary.new_articles}   duplicates: {summary.duplicates}   "
                  f"alerts: {summary.alerts}   delivered: {summary.delivered}   "
                  f"failed deliveries: {summary.failed_deliveries}   "
                  f"pending deliveries: {summary.pending_deliveries}")


def _http_address(config: Config, given: str | None) -> str | None:
    """The address to serve the web page on, checked like [web] listen; None (with
    the message printed) when it will not do."""
    from monitor.config import check_listen, split_listen

    address = given or config.web.listen
    try:
        split_listen(address)
        check_listen(address, config.web.token)
    except ValueError as exc:
        where = "--http" if given else f"configuration error: {config.path}: [web]: listen"
        print(f"news-monitor: {'error: ' if given else ''}{where}: {exc}", file=sys.stderr)
        return None
    return address


def cmd_run(config: Config, args) -> int:
    from monitor.service.daemon import run_service

    address = None
    if args.http is not None:
        address = _http_address(config, args.http)
        if address is None:
            return EXIT_USAGE
    if args.tick <= 0:
        print("news-monitor: error: --tick must be positive", file=sys.stderr)
        return EXIT_USAGE
    return run_service(config, http_address=address, tick=args.tick)


def cmd_serve(config: Config, args) -> int:
    address = _http_address(config, args.http)
    if address is None:
        return EXIT_USAGE
    return asyncio.run(_serve(config, address))


async def _serve(config: Config, address: str) -> int:
    import signal

    from monitor.service.web import WebServer, bind, create_app

    try:
        sock = bind(address)
    except OSError as exc:
        print(f"news-monitor: cannot listen on {address}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_FAILED
    store = _open_store(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = WebServer(create_app(config, store), sock)
    try:
        await server.start()
        print(f"serving http://{server.address}/", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await server.stop()
        store.close()
    return EXIT_OK


def cmd_stories_mute(config: Config, args) -> int:
    return _set_mute(config, args.story_id, mute=True)


def cmd_stories_unmute(config: Config, args) -> int:
    return _set_mute(config, args.story_id, mute=False)


def _set_mute(config: Config, story_id: str, *, mute: bool) -> int:
    store = _open_store(config)
    try:
        if not store.story_exists(story_id):
            print(f"news-monitor: no story {story_id!r} (see `alerts list --json` for story ids)",
                  file=sys.stderr)
            return EXIT_USAGE
        changed = (store.mute_story(story_id, datetime.now(UTC)) if mute
                   else store.unmute_story(story_id))
    finally:
        store.close()
    if mute:
        print(f"story {story_id} muted: its new alerts are recorded but not delivered"
              if changed else f"story {story_id} was muted already")
    else:
        print(f"story {story_id} unmuted: its new alerts are delivered again"
              if changed else f"story {story_id} was not muted")
    return EXIT_OK


def _rule_named(config: Config, name: str):
    """The rule called ``name``, or None after saying on stderr that there is none."""
    rule = next((r for r in config.rules if r.name == name), None)
    if rule is None:
        print(f"news-monitor: configuration error: {config.path}: no rule named {name!r}",
              file=sys.stderr)
    return rule


def cmd_rules_test(config: Config, args) -> int:
    from monitor.match.query import compile_query
    from monitor.match.rulecheck import Article, explanation

    rule = _rule_named(config, args.rule)
    if rule is None:
        return EXIT_USAGE
    try:
        title, text, url = asyncio.run(_load_article(config, args))
    except (FetchError, ParseError, OSError) as exc:
        print(f"news-monitor: cannot read the article: {exc}", file=sys.stderr)
        return EXIT_USAGE
    query = compile_query(rule.query, rule=rule.name)
    result = explanation(query, Article(title, text, url))
    if args.json:
        print(json.dumps({"rule": rule.name, "title": title, "url": url, **result},
                         ensure_ascii=False))
        return EXIT_OK if result["matched"] else EXIT_FAILED
    console = _console()
    if not result["matched"]:
        console.print(f"[red]no match[/red]: rule {_safe(rule.name)} on {_safe(title or url, 120)}")
        for why in result["why_not"]:
            console.print(f"  {_safe(why, 400)}")
        return EXIT_FAILED
    console.print(f"[green]match[/green]: rule {_safe(rule.name)} on {_safe(title or url, 120)}")
    console.print(f"matched: {_safe(', '.join(result['words']), 500)}")
    for item in result["snippets"]:
        console.print(f"  [bold]{_safe(item['term'], 80)}[/bold]: {_safe(item['snippet'], 400)}")
    return EXIT_OK


def cmd_rules_eval(config: Config, args) -> int:
    from monitor.match.query import compile_query
    from monitor.match.rulecheck import evaluate

    rule = _rule_named(config, args.rule)
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
    console = _console()

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    console.print(f"rule {_safe(rule.name)} on {_safe(args.dir, 200)}: "
                  f"{report.positives} positive, {report.negatives} negative articles")
    console.print(f"recall {figure(report.recall)} ({report.true_positives}/{report.positives})   "
                  f"precision {figure(report.precision)} ({report.true_positives}/"
                  f"{report.true_positives + len(report.false_alerts)})")
    for miss in report.misses:
        console.print(f"[red]missed[/red] {_safe(miss['file'], 120)}: {_safe(miss['title'], 120)}")
        for why in miss["why_not"]:
            console.print(f"    {_safe(why, 300)}")
    for false in report.false_alerts:
        console.print(f"[yellow]false alert[/yellow] {_safe(false['file'], 120)}: "
                      f"{_safe(false['title'], 120)}\n    matched: "
                      f"{_safe(', '.join(false['matched']), 300)}")
    for bad in report.unreadable:
        console.print(f"[red]unreadable[/red] {_safe(bad['file'], 120)}: {_safe(bad['error'], 200)}")
    if args.min is not None:
        verdict = "meets" if report.meets(args.min) else "misses"
        console.print(f"{verdict} the bar of {args.min:g}")
    return EXIT_FAILED if failed else EXIT_OK


async def _load_article(config: Config, args) -> tuple[str, str, str]:
    from monitor.match.rulecheck import read_article
    from monitor.text.extract import extract_article

    if args.url:
        async with _fetcher(config) as http:
            response = await http.get(args.url)
        extracted = extract_article(response.body, url=response.url, charset=response.charset)
        if extracted is None:
            raise ParseError("no article text could be extracted from the page")
        return extracted.title, extracted.text, response.url
    raw = sys.stdin.buffer.read() if args.stdin else Path(args.file).read_bytes()
    article = read_article(raw)
    return article.title, article.text, ""


def cmd_sources_list(config: Config, args) -> int:
    from rich.table import Table

    store = _open_store(config)
    try:
        states = store.all_source_states()
    finally:
        store.close()
    redact = redactor(config.secrets)
    rows = []
    for s in config.sources:
        st = states.get(s.name)
        in_force = (st.next_poll - st.last_polled).total_seconds() \
            if st and st.next_poll and st.last_polled else None
        rows.append({
            "name": s.name, "kind": s.kind, "url": redact(s.url),
            # The configured interval, and the one the polling policy chose last time
            # (adapted to the source, backed off after errors, or as the server asked).
            "interval": s.interval, "interval_in_force": in_force,
            "last_success": st.last_success.isoformat() if st and st.last_success else None,
            # Errors stored by an older version may still carry a secret.
            "last_error": redact(st.last_error) if st and st.last_error else None,
            "last_error_at": st.last_error_at.isoformat() if st and st.last_error_at else None,
            "consecutive_failures": st.consecutive_failures if st else 0,
            "next_poll": st.next_poll.isoformat() if st and st.next_poll else None,
        })
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    table = Table(title="sources")
    for col in ("name", "kind", "url", "interval", "last success", "failures", "last error",
                "next poll"):
        table.add_column(col, overflow="fold")
    for r, s in zip(rows, config.sources):
        st = states.get(s.name)
        failures = r["consecutive_failures"]
        interval = _duration(r["interval"])
        if r["interval_in_force"] is not None:
            interval = f"{_duration(r['interval_in_force'])} (set: {interval})"
        table.add_row(_safe(r["name"], 40), r["kind"], _safe(r["url"], 300), interval,
                      _when(st.last_success if st else None),
                      f"[red]{failures}[/red]" if failures else "0",
                      _safe(r["last_error"] or "", 80),
                      _when(st.next_poll if st else None) if st else "now")
    _console().print(table)
    return EXIT_OK


def cmd_sources_discover(config: Config, args) -> int:
    from monitor.config import check_http_url
    from monitor.sources.discover import discover
    from monitor.sources.subscriptions import propose

    try:
        check_http_url(args.url)
    except ValueError as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def run():
        async with _fetcher(config) as http:
            return await discover(args.url, http)

    try:
        found = asyncio.run(run())
    except FetchError as exc:
        print(f"news-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for url, why in found.tried:
        print(f"not a feed: {url}: {_safe(why, 200)}", file=sys.stderr)
    if not found.feeds:
        print(f"news-monitor: no feed found at or advertised by {args.url}", file=sys.stderr)
        return EXIT_FAILED
    _print_proposal(config, propose(found.feeds, [(s.name, s.url) for s in config.sources]),
                    origin=args.url)
    return EXIT_OK


def cmd_sources_import(config: Config, args) -> int:
    from monitor.sources.opml import import_opml

    try:
        imported = import_opml(args.file, config)
    except ConfigError as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in imported.skipped:
        print(f"left out: {_safe(note, 300)}", file=sys.stderr)
    _print_proposal(config, imported.proposal, origin=args.file)
    return EXIT_OK


def _print_proposal(config: Config, proposal, *, origin: str) -> None:
    """TOML blocks on stdout (to paste or append); what was left out on stderr."""
    redact = redactor(config.secrets)
    for name, feed in proposal.already:
        print(f"already configured as {name!r}: {redact(feed.url)}", file=sys.stderr)
    print(f"# {len(proposal.added)} feed source(s) from {_safe(origin, 300)}")
    if proposal.text:
        print()
        print(proposal.text, end="")
    print(f"{len(proposal.added)} new source(s), {len(proposal.already)} already configured",
          file=sys.stderr)


def cmd_sources_export(config: Config, args) -> int:
    from monitor.sources.opml import export_opml

    text, left_out = export_opml(config)
    sys.stdout.write(text)
    if left_out:
        print(f"left out (not feeds): {', '.join(left_out)}", file=sys.stderr)
    return EXIT_OK


def _waiting(config: Config, d, quiet: dict[str, datetime]) -> str | None:
    """Why a pending delivery has not gone out yet (None once sent or failed)."""
    if d.state != "pending":
        return None
    channel = next((n for n in config.notifiers if n.name == d.notifier), None)
    tz = channel.timezone if channel else "UTC"
    if d.digest and channel and channel.schedule:
        return f"waits for the digest (schedule {channel.schedule!r}, {tz})"
    if d.notifier in quiet:
        return f"quiet hours until {_when(quiet[d.notifier], tz)}"
    if d.last_error:
        return f"retry at {_when(d.next_attempt, tz)} after: {d.last_error}"
    return "due now"


def cmd_alerts_list(config: Config, args) -> int:
    from rich.table import Table

    from monitor.delivery.outbox import quiet_channels

    store = _open_store(config)
    try:
        alerts = store.list_alerts(pending_only=args.pending, limit=args.limit)
    finally:
        store.close()
    quiet = quiet_channels(config)
    if args.json:
        print(json.dumps([{**a.record, "created_at": a.created_at.isoformat(),
                           "muted": a.muted,
                           "deliveries": [{"notifier": d.notifier, "state": d.state,
                                           "attempts": d.attempts, "last_error": d.last_error,
                                           "next_attempt": d.next_attempt.isoformat()
                                           if d.next_attempt and d.state == "pending" else None,
                                           "waiting": _waiting(config, d, quiet)}
                                          for d in a.deliveries]}
                          for a in alerts], ensure_ascii=False))
        return EXIT_OK
    if not alerts:
        print("no pending alerts" if args.pending else "no alerts yet")
        return EXIT_OK
    if args.pending:
        # Every waiting delivery on its own row, with the whole reason it waits.
        table = Table(title="pending alerts")
        for col in ("when", "rule", "title", "channel", "tries", "why it waits"):
            table.add_column(col, overflow="fold")
        for a in alerts:
            for d in a.deliveries:
                if d.state == "pending":
                    table.add_row(_when(a.created_at), _safe(a.rule, 30),
                                  _safe(a.record.get("title"), 80), _safe(d.notifier, 30),
                                  str(d.attempts), _safe(_waiting(config, d, quiet), 1000))
        _console().print(table)
        return EXIT_OK
    table = Table(title="recent alerts")
    for col in ("when", "rule", "title", "story", "deliveries"):
        table.add_column(col)
    for a in alerts:
        deliveries = ", ".join(
            f"{_safe(d.notifier, 30)}: " + {"sent": "[green]sent[/green]",
                                            "failed": "[red]failed[/red]",
                                            "muted": "[dim]muted[/dim]"}.get(d.state, "[yellow]pending[/yellow]")
            + (f" ({_safe(d.last_error, 60)})" if d.last_error and d.state != "sent" else "")
            for d in a.deliveries)
        title = (_safe(a.record.get("title"), 80) + (" [dim](follow-up)[/dim]" if a.followup else "")
                 + (" [dim](muted)[/dim]" if a.muted else ""))
        table.add_row(_when(a.created_at), _safe(a.rule, 30), title, _safe(a.story_id, 40),
                      deliveries)
    _console().print(table)
    return EXIT_OK


def cmd_search(config: Config, args) -> int:
    from monitor.match.query import Document, compile_query

    try:
        query = compile_query(args.query)
    except QueryError as exc:
        print(f"news-monitor: query error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    store = _open_store(config)
    hits = []
    try:
        for article in store.iter_articles(containing_any=query.needles()):
            match = query.match(Document.build(title=article.title, text=article.text,
                                               source=article.source, url=article.url))
            if match:
                hits.append((article, match))
    finally:
        store.close()
    hits.sort(key=lambda h: h[0].published or h[0].fetched_at, reverse=True)
    hits = hits[:args.limit]
    if args.json:
        print(json.dumps([{"url": a.url, "title": a.title, "source": a.source,
                           "published": a.published.isoformat() if a.published else None,
                           "matched": m.words, "snippet": m.snippet()} for a, m in hits],
                         ensure_ascii=False))
        return EXIT_OK if hits else EXIT_FAILED
    console = _console()
    for a, m in hits:
        console.print(f"[bold]{_safe(a.title, 150)}[/bold]\n  {_safe(a.source, 40)} · "
                      f"{_when(a.published or a.fetched_at)} · {_safe(a.url, 300)}\n"
                      f"  matched: {_safe(', '.join(m.words))}\n  {_safe(m.snippet(), 300)}")
    if not hits:
        print("no stored article matches")
    return EXIT_OK if hits else EXIT_FAILED


def cmd_notify_test(config: Config, args) -> int:
    from monitor.errors import DeliveryError
    from monitor.models import AlertRecord

    names = {n.name for n in config.notifiers} | {"console"}
    if args.notifier not in names:
        print(f"news-monitor: configuration error: {config.path}: no notifier named "
              f"{args.notifier!r}", file=sys.stderr)
        return EXIT_USAGE
    now = datetime.now(UTC)
    sample = AlertRecord(
        alert_id="test-" + now.strftime("%Y%m%d%H%M%S"), rule="notify-test",
        story_id="test", followup=False, url="https://example.org/news/monitor-test",
        title="Test alert from news-monitor", source="news-monitor",
        published=now.isoformat(), matched=["test"],
        snippet="This is a test alert, sent to check that the channel is set up.", test=True)

    async def send() -> None:
        async with _fetcher(config) as http:
            notifier = build_notifiers(config, http)[args.notifier]
            try:
                await notifier.send(sample)
            finally:
                await notifier.aclose()

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        print(f"news-monitor: notifier {args.notifier!r}: delivery failed: "
              f"{redactor(config.secrets)(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    print(f"sent a test alert through {args.notifier!r}")
    return EXIT_OK


def cmd_init(args) -> int:
    from importlib.resources import files

    target = Path(args.config)
    starter = files("monitor").joinpath("starter.toml").read_bytes()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:            # "x": never over an existing file
            out.write(starter)
    except FileExistsError:
        print(f"news-monitor: error: {target} exists; it is left as it is", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"news-monitor: error: cannot write {target}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    option = "" if args.config == DEFAULT_PATH else f" --config {args.config}"
    print(f"wrote {target}\nNext: edit it, then `news-monitor{option} validate` and "
          f"`news-monitor{option} check-now --dry-run`.")
    return EXIT_OK


COMMANDS = {
    "validate": cmd_validate,
    "check-now": cmd_check_now,
    "run": cmd_run,
    "serve": cmd_serve,
    "stories mute": cmd_stories_mute,
    "stories unmute": cmd_stories_unmute,
    "rules test": cmd_rules_test,
    "rules eval": cmd_rules_eval,
    "sources list": cmd_sources_list,
    "sources discover": cmd_sources_discover,
    "sources import": cmd_sources_import,
    "sources export": cmd_sources_export,
    "alerts list": cmd_alerts_list,
    "search": cmd_search,
    "notify test": cmd_notify_test,
}
