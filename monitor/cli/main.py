"""The command line: ``python run_monitor.py [--config PATH] COMMAND`` (or ``news-monitor``).

This module holds the parser and the dispatch; the commands live by topic in
``poll`` (check-now), ``serve`` (run, serve), ``rules`` (rules test, rules eval, search),
``sources``, ``alerts`` (alerts, stories, notify) and ``configure`` (validate,
init); ``output`` holds the exit status and the printing helpers.

Exit status: 0 all went well; 1 the run finished but a source or a delivery
failed (or, for ``rules test``, the rule did not match); 2 usage or
configuration error, with a message naming the file, key or rule.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from monitor.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from monitor.config import DEFAULT_PATH, Config, load_config
from monitor.errors import ConfigError, StorageError
from monitor.logs import LOG_FORMATS, setup_logging


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
    c.add_argument("--dry-run", action="store_true",
                   help="send and store nothing; print what would alert")
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
        from monitor.cli.configure import cmd_init
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
    handler = command(_command_key(args))
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


#: Each command's handler, as "module:function" in monitor.cli: a command imports
#: only what it needs (``validate`` and ``rules test`` never load the pipeline, the
#: web page or the daemon's scheduler).
COMMANDS: dict[str, str] = {
    "validate": "configure:cmd_validate",
    "check-now": "poll:cmd_check_now",
    "run": "serve:cmd_run",
    "serve": "serve:cmd_serve",
    "stories mute": "alerts:cmd_stories_mute",
    "stories unmute": "alerts:cmd_stories_unmute",
    "rules test": "rules:cmd_rules_test",
    "rules eval": "rules:cmd_rules_eval",
    "sources list": "sources:cmd_sources_list",
    "sources discover": "sources:cmd_sources_discover",
    "sources import": "sources:cmd_sources_import",
    "sources export": "sources:cmd_sources_export",
    "alerts list": "alerts:cmd_alerts_list",
    "search": "rules:cmd_search",
    "notify test": "alerts:cmd_notify_test",
}


def command(key: str) -> Callable[[Config, argparse.Namespace], int]:
    """The handler of a command (a key of ``COMMANDS``), its module imported now."""
    module, _, name = COMMANDS[key].partition(":")
    return getattr(importlib.import_module(f"monitor.cli.{module}"), name)
