"""What a pass reports: one SourceResult per source, and the RunSummary of them all
(the `check-now --json` summary of DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class SourceResult:
    name: str
    status: str = "ok"                 # ok | not_modified | skipped | error
    error: str | None = None
    entries: int = 0
    new_articles: int = 0
    duplicates: int = 0
    alerts: int = 0
    article_errors: int = 0
    truncated: bool = False            # more new entries than one pass takes
    body_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # What the polling policy needs to know (monitor.sources.polling).
    max_age: float | None = None
    ttl: float | None = None
    retry_after: float | None = None
    publish_times: list[datetime] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "error"

    @property
    def complete(self) -> bool:
        """Was every entry of the body dealt with? Only then may the same body be
        skipped next time (by a 304 or by its hash)."""
        return not self.article_errors and not self.truncated

    def summary(self) -> dict:
        return {"name": self.name, "status": self.status, "error": self.error,
                "entries": self.entries, "new_articles": self.new_articles}


@dataclass
class RunSummary:
    sources: list[SourceResult] = field(default_factory=list)
    delivered: int = 0
    failed_deliveries: int = 0
    pending_deliveries: int = 0        # due, and still pending at the end of the pass
    previews: list[dict] = field(default_factory=list)   # dry run: what would alert

    @property
    def new_articles(self) -> int:
        return sum(s.new_articles for s in self.sources)

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.sources)

    @property
    def alerts(self) -> int:
        return sum(s.alerts for s in self.sources)

    @property
    def ok(self) -> bool:
        return (all(s.status != "error" for s in self.sources)
                and self.failed_deliveries == 0 and self.pending_deliveries == 0)

    def to_dict(self) -> dict:
        return {"sources": [s.summary() for s in self.sources],
                "new_articles": self.new_articles, "duplicates": self.duplicates,
                "alerts": self.alerts, "delivered": self.delivered,
                "failed_deliveries": self.failed_deliveries,
                "pending_deliveries": self.pending_deliveries}
