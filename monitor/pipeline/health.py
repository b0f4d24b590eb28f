""""Source broken" and "recovered" notices: alerts about a source, not an article.

A notice is delivered like any alert (the outbox, the channels of
``[monitor] health_notify``), as an alert of the pseudo-rule ``source-health``
whose story is ``source:NAME``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from monitor.models import AlertRecord
from storage.base import AlertRow

HEALTH_RULE = "source-health"

BROKEN = "broken"
RECOVERED = "recovered"


def event_after_poll(*, failed: bool, failures_before: int, failures: int,
                     broken_after: int) -> str | None:
    """The notice a poll calls for, if any: BROKEN for the failure that makes
    ``broken_after`` in a row, RECOVERED for the first success after that."""
    if failed and failures == broken_after:
        return BROKEN
    if not failed and failures_before >= broken_after:
        return RECOVERED
    return None


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class HealthNotice:
    source: str
    event: str                        # BROKEN | RECOVERED
    failures: int                     # failures in a row (before the recovery)
    url: str                          # the source's URL, secrets redacted
    at: datetime
    error: str = ""                   # the last error, for BROKEN
    alert_id: str = field(default_factory=_new_id)

    @property
    def title(self) -> str:
        if self.event == BROKEN:
            return f"Source {self.source!r} is broken: {self.failures} failures in a row"
        return f"Source {self.source!r} has recovered after {self.failures} failures"

    @property
    def story_id(self) -> str:
        return f"source:{self.source}"

    @property
    def key(self) -> int:
        """The notice's key in the alerts' article column, which every alert must
        fill, one per (rule, key): a notice belongs to no article, so it takes a key
        below zero, where no article id is, drawn from its own random id."""
        return -1 - int(self.alert_id[:15], 16)

    def record(self) -> AlertRecord:
        """The alert record, as delivered."""
        return AlertRecord(
            alert_id=self.alert_id, rule=HEALTH_RULE, story_id=self.story_id,
            followup=self.event == RECOVERED, url=self.url, title=self.title,
            source=self.source, published=self.at.isoformat(), matched=[],
            snippet=self.error)

    def row(self) -> AlertRow:
        """The alert as the outbox stores it."""
        record = self.record()
        return AlertRow(alert_id=self.alert_id, rule=HEALTH_RULE, article_id=self.key,
                        story_id=self.story_id, followup=record.followup,
                        created_at=self.at, record=record.to_dict())
