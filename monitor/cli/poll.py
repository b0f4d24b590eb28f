"""The one-off pass: ``check-now`` (``run`` and ``serve`` are in ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from monitor.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, console, safe
from monitor.config import Config, SourceConfig
from monitor.delivery.outbox import (
    deliver_due,
    deliver_pending,
    pending_due,
    quiet_channels,
    reclaim_dead_leases,
)
from monitor.pipeline.orchestrator import RunSummary
from monitor.redaction import redactor
from monitor.runtime import Runtime


def cmd_check_now(config: Config, args: argparse.Namespace) -> int:
    unknown = [n for n in args.source if n not in {s.name for s in config.sources}]
    if unknown:
        print(f"news-monitor: configuration error: {config.path}: --source: "
              f"no source named {unknown[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    sources = [s for s in config.sources if not args.source or s.name in args.source]
    summary = asyncio.run(check_now(config, sources, dry_run=args.dry_run, as_json=args.json,
                                    force=args.force))
    if args.json:
        data = summary.to_dict()
        if args.dry_run:
            data["dry_run"] = True
            data["would_alert"] = summary.previews
        print(json.dumps(data, ensure_ascii=False))
    else:
        print_summary(summary, dry_run=args.dry_run)
    return EXIT_OK if summary.ok else EXIT_FAILED


async def check_now(config: Config, sources: list[SourceConfig], *, dry_run: bool,
                    as_json: bool, force: bool = False) -> RunSummary:
    """One pass: what earlier runs left pending, then every source, then what it alerted."""
    summary = RunSummary()
    progress = Progress(len(sources)) if sys.stderr.isatty() and not as_json else None
    # A pass writes: a damaged file is refused before it is made worse.
    async with Runtime(config, check=True, dry_run=dry_run, force=force,
                       on_progress=progress.update if progress else None,
                       console_stream=sys.stderr if as_json else sys.stdout) as runtime:
        store = runtime.store
        db = runtime.db                  # the store's thread: the loop never waits on it
        notifiers = runtime.notifiers
        redact = redactor(config.secrets)
        # Everything pending when the pass began is due in it, whatever its backoff.
        started = datetime.now(UTC)
        if not dry_run:
            await db.call(reclaim_dead_leases, store)
            # What earlier runs left pending goes out first.
            stats = await deliver_pending(store, notifiers, redact=redact,
                                          held=quiet_channels(config), retry_before=started)
            summary.delivered += stats.delivered
            summary.failed_deliveries += stats.failed
        pipeline = runtime.pipeline
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
    return summary


class Progress:
    """A progress bar on stderr while sources are polled (terminals only)."""

    def __init__(self, total: int):
        # rich is imported when a table or colour is printed, not for every command.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bar

        self.progress = Bar(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
                            console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("polling", total=total, counts="")
        self.entries = self.articles = 0

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def update(self, source: str, message: str) -> None:
        if message == "done":
            self.progress.advance(self.task)
        elif message == "article":
            self.articles += 1
        elif message.endswith(" new entries") and message.split()[0].isdigit():
            self.entries += int(message.split()[0])
        counts = f"sources · {self.articles}/{self.entries} new entries done"
        description = (f"{safe(source, 40)}: {safe(message, 40)}" if message != "article"
                       else self.progress.tasks[0].description)
        self.progress.update(self.task, description=description, counts=counts)


def print_summary(summary: RunSummary, *, dry_run: bool) -> None:
    # rich is imported when a table or colour is printed, not for every command.
    from rich.table import Table

    out = console()
    if dry_run and summary.previews:
        out.print(f"[bold]Would alert ({len(summary.previews)}):[/bold]")
        for p in summary.previews:
            tag = " (follow-up)" if p["followup"] else ""
            # "\[" : a bare "[rule]" would be read as rich markup and vanish.
            out.print(f"  \\[{safe(p['rule'])}]{tag} {safe(p['title'])}\n"
                      f"    {safe(p['url'])}\n    matched: {safe(', '.join(p['matched']))}")
    table = Table(title="check-now" + (" (dry run: nothing stored or sent)" if dry_run else ""))
    for col in ("source", "status", "entries", "new", "dups", "alerts", "error"):
        numbers = col in ("entries", "new", "dups", "alerts")
        table.add_column(col, justify="right" if numbers else "left")
    for s in summary.sources:
        style = {"ok": "green", "not_modified": "dim", "skipped": "yellow",
                 "error": "red"}[s.status]
        table.add_row(safe(s.name, 40), f"[{style}]{s.status}[/{style}]", str(s.entries),
                      str(s.new_articles), str(s.duplicates), str(s.alerts),
                      safe(s.error or "", 160))
    out.print(table)
    out.print(f"new articles: {summary.new_articles}   duplicates: {summary.duplicates}   "
              f"alerts: {summary.alerts}   delivered: {summary.delivered}   "
              f"failed deliveries: {summary.failed_deliveries}   "
              f"pending deliveries: {summary.pending_deliveries}")
