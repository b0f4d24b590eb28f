"""Values that flow through the pipeline, and the names of their states and kinds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

# The closed sets of names the monitor uses. They are part of the contract
# (DESIGN.md): they appear in the configuration, the store and the JSON output.

# What a source is: `kind` in a [[sources]] table.
SourceKind = Literal["feed", "page", "sitemap"]
# How one source's poll ended: `status` in the `check-now --json` summary.
PollStatus = Literal["ok", "not_modified", "skipped", "error"]
# Where one alert stands on one channel; "muted" is recorded and never sent.
DeliveryState = Literal["pending", "sent", "failed", "muted"]
# What dedup found an article to be: new, or a copy of a stored one found by
# its URL, by its exact text, or as a near-duplicate.
DedupVerdict = Literal["new", "url", "exact", "near"]
# A channel: `kind` in a [[notifiers]] table.
NotifierKind = Literal["console", "jsonl", "email", "slack", "webhook", "apprise"]
# When a channel sends: each alert at once, or digests on a schedule.
NotifyMode = Literal["immediate", "digest"]


@dataclass
class Entry:
    """One item of a source: a feed entry, a link on a listing page, a sitemap URL."""

    url: str | None
    guid: str | None = None
    title: str = ""
    summary: str = ""          # plain text
    content: str = ""          # plain text of the entry's full content, if the feed has it
    published: datetime | None = None   # timezone-aware (UTC) when known
    author: str = ""


@dataclass
class Article:
    """An article as stored and matched: the page's extracted text, or the entry's own."""

    url: str                   # canonical URL
    title: str
    text: str
    source: str
    published: datetime | None = None
    author: str = ""
    site_name: str = ""
    language: str = ""
    guid: str | None = None
    extracted: bool = False    # True when the text came from the article page


@dataclass
class AlertRecord:
    """One alert, as the jsonl notifier writes it (the alert record of the README)."""

    alert_id: str
    rule: str
    story_id: str
    followup: bool
    url: str
    title: str
    source: str
    published: str | None      # ISO 8601
    matched: list[str] = field(default_factory=list)
    snippet: str = ""
    # `notify test`'s sample: marked "test": true in the record, so that tools reading
    # a channel's output can skip it; absent from real alerts.
    test: bool = False
    # Where the query engine found the matched words in ``snippet``: sorted (start,
    # end) offsets, for the notifiers to highlight. Kept with the alert in the store
    # (AlertRow.highlights), never written into the record.
    highlights: list[tuple[int, int]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["highlights"]
        if not data.get("test"):
            del data["test"]
        return data
