"""The one way async code reaches a store: ``AsyncStore``.

Each store gets one thread of its own (``async_store(store)`` always gives the same
boundary for the same store). That thread runs every call of the synchronous
store: the async methods here have the names of the store's, and
``transaction(fn)`` runs ``fn(tx)`` in an exclusive transaction there. So the
event loop never waits on the store: not on its lock, not on another process's
lock (SQLite's busy timeout), not on the network to a database server. Retries
stay in the store itself (``storage.sql.core.SQLCore._run``), in one place.

Synchronous code (the CLI's commands) may keep calling the store directly.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import ParamSpec, TypeVar

from storage.base import AlertRow, DeliveryRow, SourceState, Store, StoredArticle, Transaction

T = TypeVar("T")
P = ParamSpec("P")

_boundaries: weakref.WeakValueDictionary[int, AsyncStore] = weakref.WeakValueDictionary()
_boundaries_lock = threading.Lock()


def async_store(store: Store | AsyncStore) -> AsyncStore:
    """The boundary of ``store``: the same one for as long as anyone holds it."""
    if isinstance(store, AsyncStore):
        return store
    with _boundaries_lock:
        boundary = _boundaries.get(id(store))
        if boundary is None or boundary.store is not store:
            boundary = AsyncStore(store)
            _boundaries[id(store)] = boundary
        return boundary


class AsyncStore:
    """A store behind its own thread, with async methods of the same names."""

    def __init__(self, store: Store):
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    @property
    def url(self) -> str:
        return self.store.url

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the store's thread: for work that makes
        several store calls in a row (a page's reads, replaying saved writes)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def transaction(self, fn: Callable[[Transaction], T], *, dry_run: bool = False) -> T:
        """``fn(tx)`` in one exclusive transaction on the store's thread: committed
        when it returns, rolled back when it raises or when ``dry_run``."""
        def work() -> T:
            with self.store.exclusive(dry_run=dry_run) as tx:
                return fn(tx)
        return await self.call(work)

    async def close(self) -> None:
        """Close the store, on its thread, then end the thread."""
        try:
            await self.call(self.store.close)
        finally:
            self._thread.shutdown(wait=False)

    async def iter_articles(self, *, include_duplicates: bool = False, batch: int = 500,
                            containing_any: list[str] | None = None
                            ) -> AsyncIterator[StoredArticle]:
        """The store's ``iter_articles``, read a batch at a time on its thread."""
        articles = self.store.iter_articles(include_duplicates=include_duplicates,
                                            batch=batch, containing_any=containing_any)
        while True:
            some = await self.call(_take, articles, batch)
            for article in some:
                yield article
            if len(some) < batch:
                return

    # SourceStore ----------------------------------------
    async def source_state(self, name: str) -> SourceState:
        return await self.call(self.store.source_state, name)

    async def all_source_states(self) -> dict[str, SourceState]:
        return await self.call(self.store.all_source_states)

    async def save_source_state(self, state: SourceState) -> None:
        return await self.call(self.store.save_source_state, state)

    async def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        return await self.call(self.store.seen_keys, source, keys)

    async def known_urls(self, urls: Iterable[str]) -> set[str]:
        return await self.call(self.store.known_urls, urls)

    async def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        return await self.call(self.store.mark_seen, source, keys, article_id)

    async def record_poll(self, source: str, when: datetime, *, ok: bool) -> None:
        return await self.call(self.store.record_poll, source, when, ok=ok)

    async def poll_days(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        return await self.call(self.store.poll_days, since)

    # ArticleStore ----------------------------------------
    async def get_article(self, article_id: int) -> StoredArticle | None:
        return await self.call(self.store.get_article, article_id)

    async def count_articles(self) -> int:
        return await self.call(self.store.count_articles)

    async def prune(self, before: datetime) -> int:
        return await self.call(self.store.prune, before)

    async def story_articles(self, story_id: str) -> list[StoredArticle]:
        return await self.call(self.store.story_articles, story_id)

    async def article_signatures(self, article_ids: Iterable[int]) -> dict[int, bytes]:
        return await self.call(self.store.article_signatures, article_ids)

    async def story_exists(self, story_id: str) -> bool:
        return await self.call(self.store.story_exists, story_id)

    # OutboxStore ----------------------------------------
    async def list_alerts(self, *, pending_only: bool = False, limit: int = 50,
                          rule: str | None = None, source: str | None = None,
                          story_id: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, before: tuple[datetime,
                          str] | None = None) -> list[AlertRow]:
        return await self.call(self.store.list_alerts, pending_only=pending_only, limit=limit,
                               rule=rule, source=source, story_id=story_id, since=since,
                               until=until, before=before)

    async def get_alert(self, alert_id: str) -> AlertRow | None:
        return await self.call(self.store.get_alert, alert_id)

    async def alert_days(self, since: datetime) -> dict[tuple[str, str], int]:
        return await self.call(self.store.alert_days, since)

    async def mute_story(self, story_id: str, now: datetime) -> bool:
        return await self.call(self.store.mute_story, story_id, now)

    async def unmute_story(self, story_id: str) -> bool:
        return await self.call(self.store.unmute_story, story_id)

    async def muted_stories(self, story_ids: Iterable[str] | None = None) -> dict[str, datetime]:
        return await self.call(self.store.muted_stories, story_ids)

    async def oldest_pending_delivery(self, notifier: str | None = None,
                                      digest: bool | None = None) -> datetime | None:
        return await self.call(self.store.oldest_pending_delivery, notifier, digest)

    async def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float, *,
                               digest: bool = False, notifier: str | None = None,
                               limit: int = 100, exclude: Iterable[str] = (),
                               retry_before: datetime | None = None) -> list[tuple[DeliveryRow,
                               dict]]:
        return await self.call(self.store.claim_deliveries, owner, now, lease_seconds,
                               digest=digest, notifier=notifier, limit=limit, exclude=exclude,
                               retry_before=retry_before)

    async def count_pending_deliveries(self, now: datetime, *, digest: bool = False,
                                       notifier: str | None = None,
                                       exclude: Iterable[str] = ()) -> int:
        return await self.call(self.store.count_pending_deliveries, now, digest=digest,
                               notifier=notifier, exclude=exclude)

    async def thread_receipt(self, notifier: str, story_id: str,
                             rule: str | None = None) -> dict | None:
        return await self.call(self.store.thread_receipt, notifier, story_id, rule)

    async def delivery_sent(self, alert_id: str, notifier: str, receipt: dict,
                            now: datetime) -> None:
        return await self.call(self.store.delivery_sent, alert_id, notifier, receipt, now)

    async def delivery_failed(self, alert_id: str, notifier: str, error: str, *, permanent: bool,
                              next_attempt: datetime | None,
                              hold_until: datetime | None = None) -> None:
        return await self.call(self.store.delivery_failed, alert_id, notifier, error,
                               permanent=permanent, next_attempt=next_attempt,
                               hold_until=hold_until)

    # LeaseStore ----------------------------------------
    async def claim_due_sources(self, owner: str, now: datetime, lease_seconds: float,
                                names: list[str], limit: int = 100) -> list[str]:
        return await self.call(self.store.claim_due_sources, owner, now, lease_seconds, names,
                               limit)

    async def release_source(self, name: str, owner: str) -> None:
        return await self.call(self.store.release_source, name, owner)

    async def lease_owners(self) -> set[str]:
        return await self.call(self.store.lease_owners)

    async def release_owner(self, owner: str) -> None:
        return await self.call(self.store.release_owner, owner)

    async def release_deliveries(self, owner: str, keys: Iterable[tuple[str, str]]) -> None:
        return await self.call(self.store.release_deliveries, owner, keys)

    async def renew_leases(self, owner: str, now: datetime, lease_seconds: float, *,
                           sources: Iterable[str] = (), deliveries: Iterable[tuple[str,
                           str]] = ()) -> None:
        return await self.call(self.store.renew_leases, owner, now, lease_seconds,
                               sources=sources, deliveries=deliveries)


def _take(items: Iterator[T], n: int) -> list[T]:
    out: list[T] = []
    for item in items:
        out.append(item)
        if len(out) >= n:
            break
    return out
