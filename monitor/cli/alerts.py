"""The ``alerts``, ``stories`` and ``notify`` commands: what was alerted, what
waits, muted stories, and a test alert through one channel."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from monitor.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, console, safe, when
from monitor.config import Config
from monitor.delivery.outbox import quiet_channels
from monitor.errors import DeliveryError
from monitor.match.query import term_spans
from monitor.models import AlertRecord
from monitor.redaction import redactor
from monitor.runtime import Runtime

# How each delivery state shows in the table of recent alerts.
STATES = {"sent": "[green]sent[/green]", "failed": "[red]failed[/red]",
          "muted": "[dim]muted[/dim]"}


def waiting(config: Config, d, quiet: dict[str, datetime]) -> str | None:
    """Why a pending delivery has not gone out yet (None once sent or failed)."""
    if d.state != "pending":
        return None
    channel = next((n for n in config.notifiers if n.name == d.notifier), None)
    tz = channel.timezone if channel else "UTC"
    if d.digest and channel and channel.schedule:
        return f"waits for the digest (schedule {channel.schedule!r}, {tz})"
    if d.notifier in quiet:
        return f"quiet hours until {when(quiet[d.notifier], tz)}"
    if d.last_error:
        return f"retry at {when(d.next_attempt, tz)} after: {d.last_error}"
    return "due now"


def cmd_alerts_list(config: Config, args: argparse.Namespace) -> int:
    # rich is imported when a table or colour is printed, not for every command.
    from rich.table import Table

    with Runtime(config) as runtime:
        store = runtime.store
        alerts = store.list_alerts(pending_only=args.pending, limit=args.limit)
    quiet = quiet_channels(config)
    if args.json:
        print(json.dumps([{**a.record, "created_at": a.created_at.isoformat(),
                           "muted": a.muted,
                           "deliveries": [{"notifier": d.notifier, "state": d.state,
                                           "attempts": d.attempts, "last_error": d.last_error,
                                           "next_attempt": d.next_attempt.isoformat()
                                           if d.next_attempt and d.state == "pending" else None,
                                           "waiting": waiting(config, d, quiet)}
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
                    table.add_row(when(a.created_at), safe(a.rule, 30),
                                  safe(a.record.get("title"), 80), safe(d.notifier, 30),
                                  str(d.attempts), safe(waiting(config, d, quiet), 1000))
        console().print(table)
        return EXIT_OK
    table = Table(title="recent alerts")
    for col in ("when", "rule", "title", "story", "deliveries"):
        table.add_column(col)
    for a in alerts:
        deliveries = ", ".join(
            f"{safe(d.notifier, 30)}: " + STATES.get(d.state, "[yellow]pending[/yellow]")
            + (f" ({safe(d.last_error, 60)})" if d.last_error and d.state != "sent" else "")
            for d in a.deliveries)
        title = (safe(a.record.get("title"), 80) + (" [dim](follow-up)[/dim]" if a.followup else "")
                 + (" [dim](muted)[/dim]" if a.muted else ""))
        table.add_row(when(a.created_at), safe(a.rule, 30), title, safe(a.story_id, 40),
                      deliveries)
    console().print(table)
    return EXIT_OK


def cmd_notify_test(config: Config, args: argparse.Namespace) -> int:
    names = {n.name for n in config.notifiers} | {"console"}
    if args.notifier not in names:
        print(f"news-monitor: configuration error: {config.path}: no notifier named "
              f"{args.notifier!r}", file=sys.stderr)
        return EXIT_USAGE
    now = datetime.now(UTC)
    snippet = "This is a test alert, sent to check that the channel is set up."
    sample = AlertRecord(
        alert_id="test-" + now.strftime("%Y%m%d%H%M%S"), rule="notify-test",
        story_id="test", followup=False, url="https://example.org/news/monitor-test",
        title="Test alert from news-monitor", source="news-monitor",
        published=now.isoformat(), matched=["test"], snippet=snippet, test=True,
        highlights=term_spans(snippet, ["test"]))

    async def send() -> None:
        async with Runtime(config) as runtime:
            await runtime.notifiers[args.notifier].send(sample)

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        print(f"news-monitor: notifier {args.notifier!r}: delivery failed: "
              f"{redactor(config.secrets)(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    print(f"sent a test alert through {args.notifier!r}")
    return EXIT_OK




def cmd_stories_mute(config: Config, args: argparse.Namespace) -> int:
    return set_mute(config, args.story_id, mute=True)


def cmd_stories_unmute(config: Config, args: argparse.Namespace) -> int:
    return set_mute(config, args.story_id, mute=False)


def set_mute(config: Config, story_id: str, *, mute: bool) -> int:
    with Runtime(config) as runtime:
        store = runtime.store
        if not store.story_exists(story_id):
            print(f"news-monitor: no story {story_id!r} (see `alerts list --json` for story ids)",
                  file=sys.stderr)
            return EXIT_USAGE
        changed = (store.mute_story(story_id, datetime.now(UTC)) if mute
                   else store.unmute_story(story_id))
    if mute:
        print(f"story {story_id} muted: its new alerts are recorded but not delivered"
              if changed else f"story {story_id} was muted already")
    else:
        print(f"story {story_id} unmuted: its new alerts are delivered again"
              if changed else f"story {story_id} was not muted")
    return EXIT_OK


