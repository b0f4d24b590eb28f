"""``MemoryStore``: a real store kept in memory, for dry runs and tests.

It implements every interface of ``storage.base`` with the same meaning as the
SQL store (the contract suite runs against both), but keeps nothing: it lives
and dies with the process. One lock serialises it; ``exclusive()`` holds that
lock for the whole transaction and undoes the transaction's writes when it
fails or is a dry run.

Rows are never changed in place: an update puts a new row (a new dict) in its
table. So a transaction's snapshot is a shallow copy of each table, and
rolling back is putting the copies back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from monitor.errors import StorageError
from storage.base import (
    AlertRow,
    DeliveryRow,
    NewArticle,
    SourceState,
    Store,
    StoredArticle,
    Transaction,
)

# As in the SQL store: the newest rows read per band in a near-duplicate or story look-up.
PER_BAND = 32

_TABLES = ("sources", "seen", "articles", "urls", "aliases", "bands", "story_bands",
           "polls", "alerts", "alert_keys", "deliveries", "muted")


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """A time as the SQL store gives it back: in UTC, a naive time taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def day(value: datetime) -> str:
    """The UTC day of a time, 'YYYY-MM-DD'."""
    return utc(value).strftime("%Y-%m-%d")


class MemoryTransaction(Transaction):
    def __init__(self, store: MemoryStore):
        self.store = store

    def article_id_by_url(self, urls: Iterable[str]) -> int | None:
        s = self.store
        ids = [i for u in urls if u for i in (s.urls.get(u), s.aliases.get(u)) if i is not None]
        return min(ids) if ids else None

    def article_id_by_hash(self, content_hash: str) -> int | None:
        ids = [i for i, a in self.store.articles.items() if a["content_hash"] == content_hash]
        return min(ids) if ids else None

    def band_candidates(self, band_keys: list[int], limit: int = 50) -> list[tuple[int, bytes]]:
        shared: dict[int, int] = {}
        for key in dict.fromkeys(band_keys):
            for article_id in sorted(self.store.bands.get(key, ()), reverse=True)[:PER_BAND]:
                shared[article_id] = shared.get(article_id, 0) + 1
        best = sorted(shared, key=lambda i: (-shared[i], i))[:limit]
        rows = [self.store.articles[i] for i in best]
        return [(a["id"], a["signature"]) for a in rows
                if a["duplicate_of"] is None and a["signature"] is not None]

    def story_candidates(self, band_keys: list[int], since: datetime,
                         limit: int = 50) -> list[tuple[int, str, bytes]]:
        since = utc(since)
        shared: dict[int, int] = {}
        for key in dict.fromkeys(band_keys):
            rows = [(when, i) for when, i in self.store.story_bands.get(key, ())
                    if when is not None and when >= since]
            for _, article_id in sorted(rows, reverse=True)[:PER_BAND]:
                shared[article_id] = shared.get(article_id, 0) + 1
        best = sorted(shared, key=lambda i: (-shared[i], -i))[:limit]
        rows_a = [self.store.articles[i] for i in best]
        return [(a["id"], a["story_id"], a["story_signature"]) for a in rows_a
                if a["story_id"] is not None and a["story_signature"] is not None]

    def insert_article(self, a: NewArticle) -> int:
        s = self.store
        if a.url in s.urls:
            raise StorageError(f"{s.url}: UNIQUE constraint failed: articles.url ({a.url!r})")
        s.next_id += 1
        article_id = s.next_id
        s.articles[article_id] = {
            "id": article_id, "url": a.url, "title": a.title, "text": a.text,
            "source": a.source, "published": utc(a.published), "fetched_at": utc(a.fetched_at),
            "story_id": a.story_id, "duplicate_of": a.duplicate_of,
            "content_hash": a.content_hash, "signature": a.signature,
            "story_signature": a.story_signature, "search_text": a.search_text}
        s.urls[a.url] = article_id
        if a.duplicate_of is None:
            for key in dict.fromkeys(a.band_keys):
                s.bands[key] = s.bands.get(key, ()) + (article_id,)
            for key in dict.fromkeys(a.story_band_keys):
                s.story_bands[key] = (s.story_bands.get(key, ())
                                      + ((utc(a.fetched_at), article_id),))
        for url in dict.fromkeys(a.aliases):
            if url and url != a.url and url not in s.aliases:
                s.aliases[url] = article_id
        return article_id

    def rule_has_story_alert(self, rule: str, story_id: str) -> bool:
        return any(a.rule == rule and a.story_id == story_id
                   for a in self.store.alerts.values())

    def insert_alert(self, alert: AlertRow, notifiers: list[tuple[str, bool]]) -> bool:
        s = self.store
        if (alert.rule, alert.article_id) in s.alert_keys:
            return False
        if alert.alert_id in s.alerts:
            raise StorageError(f"{s.url}: UNIQUE constraint failed: alerts.id ({alert.alert_id!r})")
        created = utc(alert.created_at)
        s.alerts[alert.alert_id] = AlertRow(
            alert_id=alert.alert_id, rule=alert.rule, article_id=alert.article_id,
            story_id=alert.story_id, followup=alert.followup, created_at=created,
            record=dict(alert.record), source=alert.source or alert.record.get("source"),
            highlights=[(start, end) for start, end in alert.highlights])
        s.alert_keys[(alert.rule, alert.article_id)] = alert.alert_id
        muted = alert.story_id in s.muted
        for name, digest in dict.fromkeys(notifiers):
            s.deliveries[(alert.alert_id, name)] = {
                "alert_id": alert.alert_id, "notifier": name,
                "state": "muted" if muted else "pending", "attempts": 0,
                "last_error": None, "next_attempt": None if muted else created,
                "sent_at": None, "digest": bool(digest), "receipt": None,
                "lease_owner": None, "lease_until": None, "hold_until": None,
                "last_attempt": None}
        return True

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        self.store.insert_seen(source, keys, article_id)


class MemoryStore(Store):
    """Every interface of ``storage.base``, kept in this process's memory."""

    def __init__(self, url: str = "memory"):
        self.url = url
        self._lock = threading.RLock()
        self._in_tx = False
        self._closed = False
        self.next_id = 0
        self.sources: dict[str, dict[str, Any]] = {}
        self.seen: dict[tuple[str, str], int | None] = {}
        self.articles: dict[int, dict[str, Any]] = {}
        self.urls: dict[str, int] = {}
        self.aliases: dict[str, int] = {}
        self.bands: dict[int, tuple[int, ...]] = {}
        self.story_bands: dict[int, tuple[tuple[datetime | None, int], ...]] = {}
        self.polls: dict[tuple[str, str], tuple[int, int]] = {}
        self.alerts: dict[str, AlertRow] = {}
        self.alert_keys: dict[tuple[str, int], str] = {}
        self.deliveries: dict[tuple[str, str], dict[str, Any]] = {}
        self.muted: dict[str, datetime] = {}

    # the store's life ------------------------------------------------------------
    def migrate(self) -> None:
        self._open()

    def close(self) -> None:
        self._closed = True

    def _open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.url}: the store is closed")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._open()
            yield

    def _snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {name: dict(getattr(self, name)) for name in _TABLES}
        snap["next_id"] = self.next_id
        return snap

    def _restore(self, snap: dict[str, Any]) -> None:
        for name, value in snap.items():
            setattr(self, name, value)

    @contextmanager
    def exclusive(self, *, dry_run: bool = False) -> Iterator[Transaction]:
        with self._locked():
            if self._in_tx:
                raise StorageError("exclusive() cannot be nested in another transaction")
            snap = self._snapshot()
            self._in_tx = True
            try:
                yield MemoryTransaction(self)
            except BaseException:
                self._restore(snap)
                raise
            finally:
                self._in_tx = False
            if dry_run:
                self._restore(snap)

    # sources --------------------------------------------------------------------
    _STATE_FIELDS = tuple(SourceState.__dataclass_fields__)

    def _state(self, row: dict[str, Any]) -> SourceState:
        fields: dict[str, Any] = {f: row[f] for f in self._STATE_FIELDS
                                  if row.get(f) is not None}
        return SourceState(**fields)

    def source_state(self, name: str) -> SourceState:
        with self._locked():
            row = self.sources.get(name)
            return self._state(row) if row else SourceState(name=name)

    def all_source_states(self) -> dict[str, SourceState]:
        with self._locked():
            return {name: self._state(row) for name, row in self.sources.items()}

    def save_source_state(self, state: SourceState) -> None:
        with self._locked():
            row = dict(self.sources.get(state.name, {"name": state.name}))
            for f, value in asdict(state).items():
                row[f] = utc(value) if isinstance(value, datetime) else value
            row["consecutive_failures"] = state.consecutive_failures or 0
            self.sources[state.name] = row

    def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        with self._locked():
            return {k for k in keys if k and (source, k) in self.seen}

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        with self._locked():
            return {u for u in urls if u and (u in self.urls or u in self.aliases)}

    def insert_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        """Record entry keys as seen (those seen already stay as they were)."""
        with self._locked():
            for k in keys:
                if k and (source, k) not in self.seen:
                    self.seen[(source, k)] = article_id

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        self.insert_seen(source, keys, article_id)

    def record_poll(self, source: str, when: datetime, *, ok: bool) -> None:
        with self._locked():
            good, bad = self.polls.get((source, day(when)), (0, 0))
            self.polls[(source, day(when))] = (good + (1 if ok else 0), bad + (0 if ok else 1))

    def poll_days(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        with self._locked():
            return {key: counts for key, counts in self.polls.items() if key[1] >= day(since)}

    # articles -------------------------------------------------------------------
    @staticmethod
    def _article(a: dict[str, Any]) -> StoredArticle:
        return StoredArticle(id=a["id"], url=a["url"], title=a["title"] or "",
                             text=a["text"] or "", source=a["source"], published=a["published"],
                             fetched_at=a["fetched_at"], story_id=a["story_id"],
                             duplicate_of=a["duplicate_of"], content_hash=a["content_hash"])

    def get_article(self, article_id: int) -> StoredArticle | None:
        with self._locked():
            a = self.articles.get(article_id)
            return self._article(a) if a else None

    def iter_articles(self, *, include_duplicates: bool = False, batch: int = 500,
                      containing_any: list[str] | None = None) -> Iterator[StoredArticle]:
        with self._locked():
            rows = [a for _, a in sorted(self.articles.items())
                    if (include_duplicates or a["duplicate_of"] is None)
                    and (not containing_any or a["search_text"] is None
                         or any(n in a["search_text"] for n in containing_any))]
        for a in rows:
            yield self._article(a)

    def count_articles(self) -> int:
        with self._locked():
            return len(self.articles)

    def prune(self, before: datetime) -> int:
        with self._locked():
            before = utc(before)
            gone = 0
            for key, rows in list(self.story_bands.items()):
                kept = tuple(r for r in rows if r[0] is not None and r[0] >= before)
                gone += len(rows) - len(kept)
                if kept:
                    self.story_bands[key] = kept
                else:
                    del self.story_bands[key]
            return gone

    def story_articles(self, story_id: str) -> list[StoredArticle]:
        with self._locked():
            own = [a for _, a in sorted(self.articles.items()) if a["story_id"] == story_id]
            ids = {a["id"] for a in own}
            copies = [a for _, a in sorted(self.articles.items()) if a["duplicate_of"] in ids]
            return [self._article(a) for a in own + copies]

    def article_signatures(self, article_ids: Iterable[int]) -> dict[int, bytes]:
        with self._locked():
            out: dict[int, bytes] = {}
            for i in article_ids:
                a = self.articles.get(i)
                if a is not None and a["signature"] is not None:
                    out[i] = a["signature"]
            return out

    def story_exists(self, story_id: str) -> bool:
        with self._locked():
            return (any(a["story_id"] == story_id for a in self.articles.values())
                    or any(a.story_id == story_id for a in self.alerts.values()))

    # alerts and deliveries --------------------------------------------------------
    @staticmethod
    def _delivery(d: dict[str, Any]) -> DeliveryRow:
        return DeliveryRow(alert_id=d["alert_id"], notifier=d["notifier"], state=d["state"],
                           attempts=d["attempts"], last_error=d["last_error"],
                           next_attempt=d["next_attempt"], sent_at=d["sent_at"],
                           digest=d["digest"], receipt=dict(d["receipt"]) if d["receipt"] else None)

    def _with_deliveries(self, alert: AlertRow) -> AlertRow:
        found = sorted((d for d in self.deliveries.values() if d["alert_id"] == alert.alert_id),
                       key=lambda d: d["notifier"])
        return AlertRow(alert_id=alert.alert_id, rule=alert.rule, article_id=alert.article_id,
                        story_id=alert.story_id, followup=alert.followup,
                        created_at=alert.created_at, record=dict(alert.record),
                        deliveries=[self._delivery(d) for d in found], source=alert.source,
                        highlights=list(alert.highlights))

    def list_alerts(self, *, pending_only: bool = False, limit: int = 50,
                    rule: str | None = None, source: str | None = None,
                    story_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None,
                    before: tuple[datetime, str] | None = None) -> list[AlertRow]:
        with self._locked():
            pending = ({d["alert_id"] for d in self.deliveries.values()
                        if d["state"] == "pending"} if pending_only else set())
            since, until = utc(since), utc(until)
            cursor = (utc(before[0]), before[1]) if before is not None else None
            found = [a for a in self.alerts.values()
                     if (not pending_only or a.alert_id in pending)
                     and (rule is None or a.rule == rule)
                     and (source is None or a.source == source)
                     and (story_id is None or a.story_id == story_id)
                     and (since is None or a.created_at >= since)
                     and (until is None or a.created_at < until)
                     and (cursor is None or (a.created_at, a.alert_id) < cursor)]
            found.sort(key=lambda a: (a.created_at, a.alert_id), reverse=True)
            return [self._with_deliveries(a) for a in found[:limit]]

    def get_alert(self, alert_id: str) -> AlertRow | None:
        with self._locked():
            alert = self.alerts.get(alert_id)
            return self._with_deliveries(alert) if alert else None

    def alert_days(self, since: datetime) -> dict[tuple[str, str], int]:
        with self._locked():
            out: dict[tuple[str, str], int] = {}
            for a in self.alerts.values():
                if a.source is not None and day(a.created_at) >= day(since):
                    key = (a.source, day(a.created_at))
                    out[key] = out.get(key, 0) + 1
            return out

    def mute_story(self, story_id: str, now: datetime) -> bool:
        with self._locked():
            if story_id in self.muted:
                return False
            self.muted[story_id] = utc(now)
            return True

    def unmute_story(self, story_id: str) -> bool:
        with self._locked():
            return self.muted.pop(story_id, None) is not None

    def muted_stories(self, story_ids: Iterable[str] | None = None) -> dict[str, datetime]:
        with self._locked():
            if story_ids is None:
                return dict(self.muted)
            return {i: self.muted[i] for i in story_ids if i in self.muted}

    def _pending(self, now: datetime, digest: bool, notifier: str | None,
                 exclude: Iterable[str]) -> list[dict[str, Any]]:
        """Pending deliveries that no hold keeps back at ``now``, with these filters."""
        held = set(exclude)
        return [d for d in self.deliveries.values()
                if d["state"] == "pending" and d["digest"] == digest
                and (d["hold_until"] is None or d["hold_until"] <= now)
                and (notifier is None or d["notifier"] == notifier)
                and d["notifier"] not in held]

    def oldest_pending_delivery(self, notifier: str | None = None,
                                digest: bool | None = None) -> datetime | None:
        with self._locked():
            times = [self.alerts[d["alert_id"]].created_at for d in self.deliveries.values()
                     if d["state"] == "pending"
                     and (notifier is None or d["notifier"] == notifier)
                     and (digest is None or d["digest"] == digest)]
            return min(times) if times else None

    def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float, *,
                         digest: bool = False, notifier: str | None = None,
                         limit: int = 100, exclude: Iterable[str] = (),
                         retry_before: datetime | None = None
                         ) -> list[tuple[DeliveryRow, dict]]:
        with self._locked():
            now, retry_before = utc(now), utc(retry_before)
            due = []
            for d in self._pending(now, digest, notifier, exclude):
                if d["lease_until"] is not None and d["lease_until"] > now:
                    continue
                if not digest:
                    waited = d["next_attempt"] is None or d["next_attempt"] <= now
                    if retry_before is not None:
                        waited = waited or (d["last_attempt"] is None
                                            or d["last_attempt"] < retry_before)
                    if not waited:
                        continue
                due.append(d)
            due.sort(key=lambda d: (self.alerts[d["alert_id"]].created_at, d["alert_id"],
                                    d["notifier"]))
            until = now + timedelta(seconds=lease_seconds)
            out = []
            for d in due[:limit]:
                alert = self.alerts[d["alert_id"]]
                delivery = self._delivery(d)
                delivery.highlights = list(alert.highlights)
                out.append((delivery, dict(alert.record)))
                self.deliveries[(d["alert_id"], d["notifier"])] = {
                    **d, "lease_owner": owner, "lease_until": until, "last_attempt": now}
            return out

    def count_pending_deliveries(self, now: datetime, *, digest: bool = False,
                                 notifier: str | None = None,
                                 exclude: Iterable[str] = ()) -> int:
        with self._locked():
            now = utc(now)
            return len([d for d in self._pending(now, digest, notifier, exclude)
                        if d["lease_until"] is None or d["lease_until"] <= now])

    def thread_receipt(self, notifier: str, story_id: str,
                       rule: str | None = None) -> dict | None:
        with self._locked():
            sent = [d for d in self.deliveries.values()
                    if d["notifier"] == notifier and d["state"] == "sent" and d["receipt"]
                    and self.alerts[d["alert_id"]].story_id == story_id
                    and (rule is None or self.alerts[d["alert_id"]].rule == rule)]
            sent.sort(key=lambda d: (d["sent_at"], d["alert_id"]))
            return dict(sent[0]["receipt"]) if sent else None

    def _update(self, key: tuple[str, str], **changes: Any) -> None:
        row = self.deliveries.get(key)
        if row is not None:
            self.deliveries[key] = {**row, **changes}

    def delivery_sent(self, alert_id: str, notifier: str, receipt: dict, now: datetime) -> None:
        with self._locked():
            row = self.deliveries.get((alert_id, notifier))
            if row is not None:
                self._update((alert_id, notifier), state="sent", attempts=row["attempts"] + 1,
                             sent_at=utc(now), receipt=dict(receipt or {}), last_error=None,
                             lease_owner=None, lease_until=None)

    def delivery_failed(self, alert_id: str, notifier: str, error: str, *,
                        permanent: bool, next_attempt: datetime | None,
                        hold_until: datetime | None = None) -> None:
        with self._locked():
            row = self.deliveries.get((alert_id, notifier))
            if row is not None:
                self._update((alert_id, notifier), state="failed" if permanent else "pending",
                             attempts=row["attempts"] + 1, last_error=error[:1000],
                             next_attempt=utc(next_attempt), hold_until=utc(hold_until),
                             lease_owner=None, lease_until=None)

    # leases -----------------------------------------------------------------------
    def claim_due_sources(self, owner: str, now: datetime, lease_seconds: float,
                          names: list[str], limit: int = 100) -> list[str]:
        names = sorted(set(n for n in names if n))
        if not names or limit <= 0:
            return []
        with self._locked():
            now = utc(now)
            for name in names:
                self.sources.setdefault(name, {"name": name, "consecutive_failures": 0})
            rows = [self.sources[n] for n in names]
            due = [r for r in rows
                   if (r.get("next_poll") is None or r["next_poll"] <= now)
                   and (r.get("lease_until") is None or r["lease_until"] <= now)]
            due.sort(key=lambda r: (r.get("next_poll") is not None,
                                    r.get("next_poll") or now, r["name"]))
            until = now + timedelta(seconds=lease_seconds)
            claimed = [r["name"] for r in due[:limit]]
            for name in claimed:
                self.sources[name] = {**self.sources[name], "lease_owner": owner,
                                      "lease_until": until}
            return claimed

    def release_source(self, name: str, owner: str) -> None:
        with self._locked():
            row = self.sources.get(name)
            if row is not None and row.get("lease_owner") == owner:
                self.sources[name] = {**row, "lease_owner": None, "lease_until": None}

    def lease_owners(self) -> set[str]:
        with self._locked():
            return ({r["lease_owner"] for r in self.sources.values() if r.get("lease_owner")}
                    | {d["lease_owner"] for d in self.deliveries.values() if d["lease_owner"]})

    def release_owner(self, owner: str) -> None:
        with self._locked():
            for name, row in list(self.sources.items()):
                if row.get("lease_owner") == owner:
                    self.sources[name] = {**row, "lease_owner": None, "lease_until": None}
            for key, d in list(self.deliveries.items()):
                if d["lease_owner"] == owner:
                    self._update(key, lease_owner=None, lease_until=None)

    def release_deliveries(self, owner: str, keys: Iterable[tuple[str, str]]) -> None:
        with self._locked():
            for key in keys:
                d = self.deliveries.get(key)
                if d is not None and d["lease_owner"] == owner:
                    self._update(key, lease_owner=None, lease_until=None)

    def renew_leases(self, owner: str, now: datetime, lease_seconds: float, *,
                     sources: Iterable[str] = (),
                     deliveries: Iterable[tuple[str, str]] = ()) -> None:
        with self._locked():
            until = utc(now) + timedelta(seconds=lease_seconds)
            for name in sources:
                row = self.sources.get(name)
                if row is not None and row.get("lease_owner") == owner:
                    self.sources[name] = {**row, "lease_until": until}
            for key in deliveries:
                d = self.deliveries.get(key)
                if d is not None and d["lease_owner"] == owner and d["state"] == "pending":
                    self._update(key, lease_until=until)
