"""The ``sources`` commands: their health, and new sources from a site or an OPML file."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from monitor.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, console, duration, safe, when
from monitor.config import Config, check_http_url
from monitor.errors import ConfigError, FetchError
from monitor.redaction import redactor
from monitor.runtime import Runtime
from monitor.sources.discover import discover
from monitor.sources.opml import export_opml, import_opml
from monitor.sources.subscriptions import Proposal, propose


def cmd_sources_list(config: Config, args: argparse.Namespace) -> int:
    # rich is imported when a table or colour is printed, not for every command.
    from rich.table import Table

    with Runtime(config) as runtime:
        store = runtime.store
        states = store.all_source_states()
    redact = redactor(config.secrets)
    rows: list[dict[str, Any]] = []
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
    for r, s in zip(rows, config.sources, strict=True):
        st = states.get(s.name)
        failures = r["consecutive_failures"]
        interval = duration(r["interval"])
        if r["interval_in_force"] is not None:
            interval = f"{duration(r['interval_in_force'])} (set: {interval})"
        table.add_row(safe(r["name"], 40), r["kind"], safe(r["url"], 300), interval,
                      when(st.last_success if st else None),
                      f"[red]{failures}[/red]" if failures else "0",
                      safe(r["last_error"] or "", 80),
                      when(st.next_poll if st else None) if st else "now")
    console().print(table)
    return EXIT_OK


def cmd_sources_discover(config: Config, args: argparse.Namespace) -> int:
    try:
        check_http_url(args.url)
    except ValueError as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def run():
        async with Runtime(config) as runtime:
            return await discover(args.url, runtime.http)

    try:
        found = asyncio.run(run())
    except FetchError as exc:
        print(f"news-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for url, why in found.tried:
        print(f"not a feed: {url}: {safe(why, 200)}", file=sys.stderr)
    if not found.feeds:
        print(f"news-monitor: no feed found at or advertised by {args.url}", file=sys.stderr)
        return EXIT_FAILED
    print_proposal(config, propose(found.feeds, [(s.name, s.url) for s in config.sources]),
                    origin=args.url)
    return EXIT_OK


def cmd_sources_import(config: Config, args: argparse.Namespace) -> int:
    try:
        imported = import_opml(args.file, config)
    except ConfigError as exc:
        print(f"news-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in imported.skipped:
        print(f"left out: {safe(note, 300)}", file=sys.stderr)
    print_proposal(config, imported.proposal, origin=args.file)
    return EXIT_OK


def print_proposal(config: Config, proposal: Proposal, *, origin: str) -> None:
    """TOML blocks on stdout (to paste or append); what was left out on stderr."""
    redact = redactor(config.secrets)
    for name, feed in proposal.already:
        print(f"already configured as {name!r}: {redact(feed.url)}", file=sys.stderr)
    print(f"# {len(proposal.added)} feed source(s) from {safe(origin, 300)}")
    if proposal.text:
        print()
        print(proposal.text, end="")
    print(f"{len(proposal.added)} new source(s), {len(proposal.already)} already configured",
          file=sys.stderr)


def cmd_sources_export(config: Config, args: argparse.Namespace) -> int:
    text, left_out = export_opml(config)
    sys.stdout.write(text)
    if left_out:
        print(f"left out (not feeds): {', '.join(left_out)}", file=sys.stderr)
    return EXIT_OK


