"""One SQL store for SQLite and PostgreSQL; the differences live in ``Dialect``.

Times are stored as ISO 8601 text in UTC (microseconds, '+00:00'), which sorts
correctly as text in both databases and keeps the schema identical.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from storage.base import (AlertRow, DeliveryRow, NewArticle, SourceState, Store,
                          StoredArticle, Transaction)
from storage.dialects import Dialect

# Lock key for exclusive transactions on PostgreSQL (pg_advisory_xact_lock).
EXCLUSIVE_LOCK_KEY = 0x6E6D6F6E  # "nmon"


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class SQLTransaction(Transaction):
    def __init__(self, store: "SQLStore"):
        self.store = store

    def _q(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        return self.store._fetch(sql, params)

    def article_id_by_url(self, urls: Iterable[str]) -> int | None:
        urls = list(dict.fromkeys(u for u in urls if u))
        if not urls:
            return None
        marks = ",".join("?" * len(urls))
        rows = self._q(f"SELECT id FROM articles WHERE url IN ({marks}) "
                       f"UNION SELECT article_id FROM url_aliases WHERE url IN ({marks})",
                       urls + urls)
        return min(r[0] for r in rows) if rows else None

    def article_id_by_hash(self, content_hash: str) -> int | None:
        rows = self._q("SELECT id FROM articles WHERE content_hash = ? ORDER BY id LIMIT 1",
                       (content_hash,))
        return rows[0][0] if rows else None

    def band_candidates(self, band_keys: list[int], limit: int = 50) -> list[tuple[int, bytes]]:
        if not band_keys:
            return []
        marks = ",".join("?" * len(band_keys))
        rows = self._q(
            f"SELECT a.id, a.signature FROM articles a WHERE a.id IN "
            f"(SELECT article_id FROM article_bands WHERE band_key IN ({marks})) "
            f"AND a.duplicate_of IS NULL ORDER BY a.id LIMIT ?", list(band_keys) + [limit])
        return [(r[0], bytes(r[1])) for r in rows if r[1] is not None]

    def story_candidates(self, band_keys: list[int], since: datetime,
                         limit: int = 50) -> list[tuple[int, str, bytes]]:
        if not band_keys:
            return []
        marks = ",".join("?" * len(band_keys))
        rows = self._q(
            f"SELECT a.id, a.story_id, a.story_signature FROM articles a WHERE a.id IN "
            f"(SELECT article_id FROM story_bands WHERE band_key IN ({marks})) "
            f"AND a.fetched_at >= ? AND a.story_id IS NOT NULL "
            f"ORDER BY a.id DESC LIMIT ?", list(band_keys) + [ts(since), limit])
        return [(r[0], r[1], bytes(r[2])) for r in rows if r[2] is not None]

    def insert_article(self, a: NewArticle) -> int:
        d = self.store.dialect
        article_id = self.store._insert_returning_id(
            "INSERT INTO articles (url, guid, source, title, text, author, site_name, language,"
            " published, fetched_at, extracted, content_hash, signature, story_signature,"
            " story_id, duplicate_of) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (a.url, a.guid, a.source, a.title, a.text, a.author, a.site_name, a.language,
             ts(a.published), ts(a.fetched_at), 1 if a.extracted else 0, a.content_hash,
             d.blob(a.signature), d.blob(a.story_signature), a.story_id, a.duplicate_of))
        if a.duplicate_of is None:
            self.store._executemany("INSERT INTO article_bands (band_key, article_id) VALUES (?, ?)",
                                    [(k, article_id) for k in a.band_keys])
            self.store._executemany("INSERT INTO story_bands (band_key, article_id) VALUES (?, ?)",
                                    [(k, article_id) for k in a.story_band_keys])
        aliases = [u for u in dict.fromkeys(a.aliases) if u and u != a.url]
        if aliases:
            self.store._executemany(
                d.insert_ignore("url_aliases", "(url, article_id) VALUES (?, ?)", "url"),
                [(u, article_id) for u in aliases])
        return article_id

    def rule_has_story_alert(self, rule: str, story_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM alerts WHERE rule = ? AND story_id = ? LIMIT 1",
                            (rule, story_id)))

    def insert_alert(self, alert: AlertRow, notifiers: list[tuple[str, bool]]) -> bool:
        inserted = self.store._execute_count(
            self.store.dialect.insert_ignore(
                "alerts", "(id, rule, article_id, story_id, followup, created_at, record)"
                " VALUES (?,?,?,?,?,?,?)", "rule, article_id"),
            (alert.alert_id, alert.rule, alert.article_id, alert.story_id,
             1 if alert.followup else 0, ts(alert.created_at),
             json.dumps(alert.record, ensure_ascii=False)))
        if not inserted:
            return False
        self.store._executemany(
            "INSERT INTO deliveries (alert_id, notifier, state, attempts, digest, next_attempt)"
            " VALUES (?, ?, 'pending', 0, ?, ?)",
            [(alert.alert_id, name, 1 if digest else 0, ts(alert.created_at))
             for name, digest in notifiers])
        return True

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        self.store.mark_seen(source, keys, article_id)


class SQLStore(Store):
    def __init__(self, url: str, dialect: Dialect):
        self.url = url
        self.dialect = dialect
        self._lock = threading.RLock()
        self._conn = dialect.connect()

    # low-level helpers; every statement is written with '?' placeholders -------
    def _fetch(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            cur = self._conn.execute(self.dialect.sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def _execute_count(self, sql: str, params: tuple | list = ()) -> int:
        with self._lock:
            return self._conn.execute(self.dialect.sql(sql), tuple(params)).rowcount

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            with self._lock:
                self.dialect.executemany(self._conn, self.dialect.sql(sql), rows)

    def _insert_returning_id(self, sql: str, params: tuple) -> int:
        with self._lock:
            return self.dialect.insert_returning_id(self._conn, self.dialect.sql(sql), params)

    @contextmanager
    def _tx(self, *, exclusive: bool = False, rollback: bool = False) -> Iterator[None]:
        with self._lock:
            self.dialect.begin(self._conn, exclusive=exclusive)
            try:
                yield
            except BaseException:
                self.dialect.rollback(self._conn)
                raise
            if rollback:
                self.dialect.rollback(self._conn)
            else:
                self.dialect.commit(self._conn)

    # Store -------------------------------------------------------------------
    def migrate(self) -> None:
        with self._tx(exclusive=True):
            self.dialect.migrate(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def source_state(self, name: str) -> SourceState:
        rows = self._fetch(
            "SELECT name, etag, last_modified, body_hash, last_polled, last_success, last_error,"
            " last_error_at, consecutive_failures, next_poll FROM sources WHERE name = ?", (name,))
        return self._state(rows[0]) if rows else SourceState(name=name)

    def all_source_states(self) -> dict[str, SourceState]:
        rows = self._fetch(
            "SELECT name, etag, last_modified, body_hash, last_polled, last_success, last_error,"
            " last_error_at, consecutive_failures, next_poll FROM sources")
        return {r[0]: self._state(r) for r in rows}

    @staticmethod
    def _state(r: tuple) -> SourceState:
        return SourceState(name=r[0], etag=r[1], last_modified=r[2], body_hash=r[3],
                           last_polled=dt(r[4]), last_success=dt(r[5]), last_error=r[6],
                           last_error_at=dt(r[7]), consecutive_failures=r[8] or 0,
                           next_poll=dt(r[9]))

    def save_source_state(self, s: SourceState) -> None:
        with self._tx():
            self._execute_count(self.dialect.upsert(
                "sources", ["name", "etag", "last_modified", "body_hash", "last_polled",
                            "last_success", "last_error", "last_error_at",
                            "consecutive_failures", "next_poll"], "name"),
                (s.name, s.etag, s.last_modified, s.body_hash, ts(s.last_polled),
                 ts(s.last_success), s.last_error, ts(s.last_error_at),
                 s.consecutive_failures, ts(s.next_poll)))

    def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(k for k in keys if k))
        seen: set[str] = set()
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            seen.update(r[0] for r in self._fetch(
                f"SELECT entry_key FROM seen_entries WHERE source = ? AND entry_key IN ({marks})",
                [source] + chunk))
        return seen

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        urls = list(dict.fromkeys(u for u in urls if u))
        known: set[str] = set()
        for chunk in _chunks(urls):
            marks = ",".join("?" * len(chunk))
            known.update(r[0] for r in self._fetch(
                f"SELECT url FROM articles WHERE url IN ({marks}) "
                f"UNION SELECT url FROM url_aliases WHERE url IN ({marks})", chunk + chunk))
        return known

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        now = ts(datetime.now(timezone.utc))
        self._executemany(
            self.dialect.insert_ignore("seen_entries", "(source, entry_key, article_id, first_seen)"
                                       " VALUES (?, ?, ?, ?)", "source, entry_key"),
            [(source, k, article_id, now) for k in dict.fromkeys(keys) if k])

    @contextmanager
    def exclusive(self, *, dry_run: bool = False) -> Iterator[Transaction]:
        with self._tx(exclusive=True, rollback=dry_run):
            yield SQLTransaction(self)

    _ARTICLE_COLS = ("id, url, title, text, source, published, fetched_at, story_id,"
                     " duplicate_of, content_hash")

    @staticmethod
    def _article(r: tuple) -> StoredArticle:
        return StoredArticle(id=r[0], url=r[1], title=r[2] or "", text=r[3] or "", source=r[4],
                             published=dt(r[5]), fetched_at=dt(r[6]), story_id=r[7],
                             duplicate_of=r[8], content_hash=r[9])

    def get_article(self, article_id: int) -> StoredArticle | None:
        rows = self._fetch(f"SELECT {self._ARTICLE_COLS} FROM articles WHERE id = ?",
                           (article_id,))
        return self._article(rows[0]) if rows else None

    def iter_articles(self, *, include_duplicates: bool = False,
                      batch: int = 500) -> Iterator[StoredArticle]:
        last = 0
        where = "" if include_duplicates else " AND duplicate_of IS NULL"
        while True:
            rows = self._fetch(f"SELECT {self._ARTICLE_COLS} FROM articles WHERE id > ?{where}"
                               f" ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            for r in rows:
                yield self._article(r)
            last = rows[-1][0]

    def count_articles(self) -> int:
        return self._fetch("SELECT COUNT(*) FROM articles")[0][0]

    def list_alerts(self, *, pending_only: bool = False, limit: int = 50) -> list[AlertRow]:
        where = (" WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id"
                 " AND d.state = 'pending')") if pending_only else ""
        rows = self._fetch(
            f"SELECT a.id, a.rule, a.article_id, a.story_id, a.followup, a.created_at, a.record"
            f" FROM alerts a{where} ORDER BY a.created_at DESC, a.id LIMIT ?", (limit,))
        alerts = [AlertRow(alert_id=r[0], rule=r[1], article_id=r[2], story_id=r[3],
                           followup=bool(r[4]), created_at=dt(r[5]), record=json.loads(r[6]))
                  for r in rows]
        by_id = {a.alert_id: a for a in alerts}
        for chunk in _chunks(list(by_id)):
            marks = ",".join("?" * len(chunk))
            for d in self._fetch(f"SELECT {self._DELIVERY_COLS} FROM deliveries"
                                 f" WHERE alert_id IN ({marks}) ORDER BY notifier", chunk):
                by_id[d[0]].deliveries.append(self._delivery(d))
        return alerts

    _DELIVERY_COLS = ("alert_id, notifier, state, attempts, last_error, next_attempt, sent_at,"
                      " digest, receipt")

    @staticmethod
    def _delivery(r: tuple) -> DeliveryRow:
        return DeliveryRow(alert_id=r[0], notifier=r[1], state=r[2], attempts=r[3],
                           last_error=r[4], next_attempt=dt(r[5]), sent_at=dt(r[6]),
                           digest=bool(r[7]), receipt=json.loads(r[8]) if r[8] else None)

    def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float, *,
                         digest: bool = False, notifier: str | None = None,
                         limit: int = 100) -> list[tuple[DeliveryRow, dict]]:
        from datetime import timedelta

        until = ts(now + timedelta(seconds=lease_seconds))
        params: list[Any] = [1 if digest else 0, ts(now)]
        extra = ""
        if notifier is not None:
            extra = " AND d.notifier = ?"
            params.append(notifier)
        if not digest:
            extra += " AND (d.next_attempt IS NULL OR d.next_attempt <= ?)"
            params.append(ts(now))
        with self._tx(exclusive=True):
            rows = self._fetch(
                f"SELECT d.alert_id, d.notifier, d.state, d.attempts, d.last_error,"
                f" d.next_attempt, d.sent_at, d.digest, d.receipt, a.record"
                f" FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                f" WHERE d.state = 'pending' AND d.digest = ?"
                f" AND (d.lease_until IS NULL OR d.lease_until <= ?){extra}"
                f" ORDER BY a.created_at, d.alert_id LIMIT ?{self.dialect.skip_locked}",
                params + [limit])
            self._executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_until = ? "
                "WHERE alert_id = ? AND notifier = ?",
                [(owner, until, r[0], r[1]) for r in rows])
        return [(self._delivery(r[:9]), json.loads(r[9])) for r in rows]

    def thread_receipt(self, notifier: str, story_id: str, rule: str | None = None) -> dict | None:
        rows = self._fetch(
            "SELECT d.receipt FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.notifier = ? AND a.story_id = ? AND d.state = 'sent'"
            " AND d.receipt IS NOT NULL AND d.receipt <> '{}'"
            " ORDER BY d.sent_at LIMIT 1", (notifier, story_id))
        return json.loads(rows[0][0]) if rows else None

    def delivery_sent(self, alert_id: str, notifier: str, receipt: dict, now: datetime) -> None:
        with self._tx():
            self._execute_count(
                "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ?,"
                " receipt = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL"
                " WHERE alert_id = ? AND notifier = ?",
                (ts(now), json.dumps(receipt or {}), alert_id, notifier))

    def delivery_failed(self, alert_id: str, notifier: str, error: str, *,
                        permanent: bool, next_attempt: datetime | None) -> None:
        with self._tx():
            self._execute_count(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?,"
                " next_attempt = ?, lease_owner = NULL, lease_until = NULL"
                " WHERE alert_id = ? AND notifier = ?",
                ("failed" if permanent else "pending", error[:1000], ts(next_attempt),
                 alert_id, notifier))
