"""What the pages show, assembled from store rows: pure functions, no I/O.

Snippet highlighting takes the spans that the query engine found when the alert
was raised, kept with the alert (``monitor.match.snippets.segments``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.match.snippets import segments
from monitor.text.dates import parse_iso
from monitor.text.safe import strip_unsafe
from storage.base import AlertRow, SourceState, StoredArticle

CHART_DAYS = 14


def safe_link(url: str | None) -> str | None:
    """The URL if a browser may follow it from our page (http or https only: a
    javascript: or data: URL from a feed must never become a link)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


@dataclass
class AlertView:
    alert_id: str
    rule: str
    source: str
    title: str
    url: str | None
    when: str
    published: str
    snippet: list[tuple[str, bool]]
    matched: list[str]
    deliveries: list[tuple[str, str, str | None]]     # (channel, state, last error)
    state: str                                        # sent | pending | failed | muted
    followup: bool
    story_id: str
    muted: bool
    followups: list[AlertView] = field(default_factory=list)
    hidden_followups: int = 0


def delivery_state(row: AlertRow) -> str:
    """One word for the alert: the worst of its channels' states."""
    states = {d.state for d in row.deliveries}
    for state in ("failed", "pending", "sent", "muted"):
        if state in states:
            return state
    return "sent"


def alert_view(row: AlertRow, tz: ZoneInfo, *, muted_story: bool = False) -> AlertView:
    record = row.record
    return AlertView(
        alert_id=row.alert_id, rule=row.rule, source=row.source or record.get("source") or "",
        title=strip_unsafe(record.get("title") or "(no title)"),
        url=safe_link(record.get("url")), when=local_time(row.created_at, tz),
        published=local_time(parse_iso(record.get("published")), tz),
        snippet=segments(record.get("snippet") or "", row.highlights),
        matched=[strip_unsafe(m) for m in record.get("matched") or []],
        deliveries=[(d.notifier, d.state, d.last_error if d.state != "sent" else None)
                    for d in row.deliveries],
        state=delivery_state(row), followup=row.followup, story_id=row.story_id,
        muted=muted_story or row.muted)


def threads(rows: list[AlertRow], tz: ZoneInfo, muted: set[str]) -> list[AlertView]:
    """The alerts of one page, newest first, each story's later alerts under the
    earliest of its alerts on the page; a muted story's follow-ups hidden.

    A thread is one rule's alerts on one story, as ``followup`` is (an article
    that two rules matched is two threads)."""
    heads: dict[tuple[str, str], AlertView] = {}
    order: list[AlertView] = []
    for row in sorted(rows, key=lambda r: (r.created_at, r.alert_id)):
        view = alert_view(row, tz, muted_story=row.story_id in muted)
        head = heads.get((row.rule, row.story_id))
        if head is None:
            heads[(row.rule, row.story_id)] = view
            order.append(view)
        elif row.story_id in muted:
            head.hidden_followups += 1
        else:
            head.followups.append(view)
    # A story with a fresh follow-up comes up to the top with it.
    created = {r.alert_id: (r.created_at, r.alert_id) for r in rows}
    latest = {h.alert_id: max(created[a.alert_id] for a in [h, *h.followups]) for h in order}
    for head in order:
        if head.hidden_followups:
            latest[head.alert_id] = max(
                [latest[head.alert_id]] + [created[r.alert_id] for r in rows
                                           if (r.rule, r.story_id) == (head.rule, head.story_id)])
    return sorted(order, key=lambda h: latest[h.alert_id], reverse=True)


@dataclass
class ArticleView:
    id: int
    title: str
    url: str | None
    source: str
    published: str
    similarity: float | None = None
    copies: list[ArticleView] = field(default_factory=list)


def story_articles(articles: list[StoredArticle], similarities: dict[int, float],
                   tz: ZoneInfo) -> list[ArticleView]:
    """The story's articles, each with its near-duplicate copies under it."""
    views = {a.id: ArticleView(id=a.id, title=strip_unsafe(a.title or "(no title)"),
                               url=safe_link(a.url), source=a.source,
                               published=local_time(a.published or a.fetched_at, tz),
                               similarity=similarities.get(a.id))
             for a in articles}
    out: list[ArticleView] = []
    for a in articles:
        if a.duplicate_of is not None and a.duplicate_of in views:
            views[a.duplicate_of].copies.append(views[a.id])
        else:
            out.append(views[a.id])
    return out


@dataclass
class DayBar:
    day: str
    alerts: int
    ok: int
    errors: int


@dataclass
class SourceView:
    name: str
    kind: str
    url: str
    last_success: str
    last_error: str | None
    last_error_at: str
    failures: int
    interval: str
    next_poll: str
    days: list[DayBar]
    alerts_total: int
    chart: dict


def duration(seconds: float | None) -> str:
    """'45s', '15m', '1.5h', '2d'."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            value = seconds / size
            whole = value == int(value) or value >= 10
            return f"{value:.0f}{unit}" if whole else f"{value:.1f}{unit}"
    return f"{seconds}s"


def chart_days(today: date, days: int = CHART_DAYS) -> list[str]:
    return [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def chart(days: list[DayBar], *, width: int = 280, height: int = 48) -> dict:
    """Bar geometry for a small server-side SVG: alerts as bars, each day's polls
    as a strip below (green when all succeeded, red when any failed)."""
    slot = width / max(len(days), 1)
    top = max([d.alerts for d in days] + [1])
    bar_area = height - 12
    bars = []
    for i, d in enumerate(days):
        h = round(bar_area * d.alerts / top, 1) if d.alerts else 0
        polls = d.ok + d.errors
        bars.append({"x": round(i * slot + 1, 1), "w": round(slot - 2, 1),
                     "y": round(bar_area - h, 1), "h": h, "alerts": d.alerts,
                     "day": d.day, "ok": d.ok, "errors": d.errors,
                     "strip": "none" if not polls else ("bad" if d.errors else "good"),
                     "strip_y": height - 8})
    return {"width": width, "height": height, "bars": bars}


def source_view(source, state: SourceState | None, polls: dict, alerts: dict,
                days: list[str], tz: ZoneInfo, redact) -> SourceView:
    bars = [DayBar(day, alerts.get((source.name, day), 0),
                   *polls.get((source.name, day), (0, 0))) for day in days]
    interval = source.interval
    if state and state.last_polled and state.next_poll:
        # The adaptive policy, backoff or the server's cache headers may have set
        # another interval than the configured one: show the one in force.
        interval = (state.next_poll - state.last_polled).total_seconds()
    return SourceView(
        name=source.name, kind=source.kind, url=redact(source.url),
        last_success=local_time(state.last_success if state else None, tz),
        last_error=redact(strip_unsafe(state.last_error)) if state and state.last_error else None,
        last_error_at=local_time(state.last_error_at if state else None, tz),
        failures=state.consecutive_failures if state else 0,
        interval=duration(interval),
        next_poll=local_time(state.next_poll, tz) if state and state.next_poll else "now",
        days=bars, alerts_total=sum(b.alerts for b in bars), chart=chart(bars))
