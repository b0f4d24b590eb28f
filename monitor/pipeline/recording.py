"""The pass's write path: each new article, its dedup verdict and its alerts
recorded in one transaction, and health notices put in the outbox.

Articles that are ready while the store is busy are written together
(``GroupCommit``): a commit writes every index page an article touched (its band
rows land on pages all over the band indexes), so a commit per article cost more
than the rest of its storing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.dedup.ingest import Verdict, ingest
from monitor.errors import StorageError
from monitor.models import AlertRecord, Article
from monitor.pipeline.health import HealthNotice
from monitor.pipeline.process import Analysis
from monitor.pipeline.routing import Routing
from storage.base import AlertRow, Store, Transaction
from storage.boundary import AsyncStore


@dataclass
class ReadyArticle:
    """An article with its analysis, ready to be recorded."""

    source: str
    article: Article
    aliases: list[str]                 # other URLs of the article (redirects, canonical)
    keys: list[str]                    # the keys its entry is remembered by
    analysis: Analysis
    now: datetime


#: What recording one article gives: its dedup verdict and the alerts recorded.
Recorded = tuple[Verdict, list[AlertRecord]]


class Recorder:
    def __init__(self, store: Store, routing: Routing, *, max_age: float,
                 source_links: dict[str, str]):
        self.store = store
        self.routing = routing
        self.max_age = timedelta(seconds=max_age)
        # Where the alert of an entry without a usable link points: its source
        # (secrets redacted), the only place a reader can find it.
        self.source_links = source_links

    def record_article(self, item: ReadyArticle) -> Recorded:
        """Dedup, store, and record the alerts of one article, in one transaction."""
        with self.store.exclusive() as tx:
            return self._record_in(tx, item)

    def record_articles(self, items: list[ReadyArticle]) -> list[tuple[bool, Any]]:
        """``record_article`` for each item, all in one transaction. When one item
        fails (a bug, bad data), the transaction is rolled back and each is recorded
        in its own, so that only the failing one fails, as if alone; when the store
        fails, all of them do. (ok, outcome or exception) per item."""
        if len(items) > 1:
            try:
                with self.store.exclusive() as tx:
                    return [(True, self._record_in(tx, item)) for item in items]
            except StorageError as exc:
                # The store itself is away: trying each again would only wait on it
                # once per item. Every item hears it, as each would have alone.
                return [(False, exc)] * len(items)
            except Exception:  # noqa: BLE001 - each item is tried alone next
                pass
        results: list[tuple[bool, Any]] = []
        for item in items:
            try:
                results.append((True, self.record_article(item)))
            except Exception as exc:  # noqa: BLE001 - the item's own waiter hears it
                results.append((False, exc))
        return results

    def record_notice(self, notice: HealthNotice) -> None:
        """A health notice, through the outbox like any alert."""
        with self.store.exclusive() as tx:
            tx.insert_alert(notice.row(), list(self.routing.health))

    def _record_in(self, tx: Transaction, item: ReadyArticle) -> Recorded:
        records: list[AlertRecord] = []
        article, now = item.article, item.now
        verdict = ingest(tx, article, item.analysis.fingerprints, aliases=item.aliases, now=now)
        tx.mark_seen(item.source, item.keys, verdict.article_id)
        too_old = article.published is not None and now - article.published > self.max_age
        if verdict.is_new and verdict.article_id is not None and not too_old:
            for rule, (terms, snippet, spans) in item.analysis.matches.items():
                record = self._alert(tx, rule, terms, snippet, spans, article,
                                     verdict.article_id, verdict.story_id, now)
                if record is not None:
                    records.append(record)
        return verdict, records

    def _alert(self, tx: Transaction, rule: str, terms: list[str], snippet: str,
               spans: list[tuple[int, int]], article: Article, article_id: int,
               story_id: str | None, now: datetime) -> AlertRecord | None:
        story_id = story_id or str(article_id)
        record = AlertRecord(
            alert_id=uuid.uuid4().hex, rule=rule, story_id=story_id,
            followup=tx.rule_has_story_alert(rule, story_id),
            # An entry with neither link nor URL-like GUID is kept under its GUID.
            url=article.url if article.url.startswith("http")
            else self.source_links[article.source],
            title=article.title, source=article.source,
            published=article.published.isoformat() if article.published else None,
            matched=terms, snippet=snippet)
        inserted = tx.insert_alert(
            AlertRow(alert_id=record.alert_id, rule=rule, article_id=article_id,
                     story_id=story_id, followup=record.followup, created_at=now,
                     record=record.to_dict(), source=article.source, highlights=spans),
            self.routing.for_rule(rule))
        return record if inserted else None


class GroupCommit:
    """Articles that are ready while the store is busy with others are recorded
    together, in one transaction (``write_many``), when it is free: one article alone
    is written at once, and a busy pass writes batches of up to ``limit`` (which
    also bounds how long the store's lock is held). The store may wait on another
    process's lock, so it is called on its own thread, never on the event loop."""

    def __init__(self, write_many: Callable[[list[ReadyArticle]], list[tuple[bool, Any]]],
                 db: AsyncStore, *, limit: int = 64):
        self.write_many = write_many
        self.db = db                     # write_many runs on the store's thread
        self.limit = limit
        self._pending: list[tuple[ReadyArticle, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, item: ReadyArticle) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[ReadyArticle, asyncio.Future]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[:self.limit], self._pending[self.limit:]
                results = await self.db.call(self.write_many, [i for i, _ in batch])
                for (_, future), (ok, value) in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                batch = []
        except BaseException as exc:   # the thread itself failed: every waiter hears it
            for _, future in batch + self._pending:
                if not future.done():
                    future.set_exception(exc)
            self._pending = []
            if not isinstance(exc, Exception):
                raise
        finally:
            self._task = None
