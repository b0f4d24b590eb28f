"""One SQL store for SQLite and PostgreSQL; the differences live in ``Dialect``.

Times are stored as ISO 8601 text in UTC (microseconds, '+00:00'), which sorts
correctly as text in both databases and keeps the schema identical.

Errors: every driver error leaves this module as ``StorageError`` (a message
that names the database, never a password). Transient ones -- SQLite busy
beyond its busy timeout, PostgreSQL serialization failures and deadlocks, a
dropped connection (reconnected once) -- are retried in one place, ``_run``,
which runs a whole transaction again. The body of ``exclusive()`` is the
caller's code and cannot be re-run: only its BEGIN is retried.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

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
from storage.dialects import Dialect

# Lock key for exclusive transactions on PostgreSQL (pg_advisory_xact_lock).
EXCLUSIVE_LOCK_KEY = 0x6E6D6F6E  # "nmon"
# The newest rows read per LSH band when looking for near-duplicates or a story
# (band_query, story_query): bounds the work per article whatever the corpus.
PER_BAND = 32

T = TypeVar("T")


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLTransaction(Transaction):
    def __init__(self, store: SQLStore):
        self.store = store

    def _q(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        return self.store._fetch(sql, params)

    def article_id_by_url(self, urls: Iterable[str]) -> int | None:
        urls = list(dict.fromkeys(u for u in urls if u))
        if not urls:
            return None
        ids: list[int] = []
        for chunk in _chunks(urls):
            marks = _marks(len(chunk))
            ids.extend(r[0] for r in self._q(
                f"SELECT id FROM articles WHERE url IN ({marks}) "
                f"UNION SELECT article_id FROM url_aliases WHERE url IN ({marks})",
                chunk + chunk))
        return min(ids) if ids else None

    def article_id_by_hash(self, content_hash: str) -> int | None:
        rows = self._q("SELECT id FROM articles WHERE content_hash = ? ORDER BY id LIMIT 1",
                       (content_hash,))
        return rows[0][0] if rows else None

    @staticmethod
    def band_query(band_keys: list[int], limit: int) -> tuple[str, list]:
        # The articles sharing the most bands first (the likeliest copies), found
        # from the (band_key, article_id) index alone, then joined to their row
        # by primary key. Each band contributes at most its PER_BAND newest rows:
        # a band that templated texts (weather, results, a hostile source) fill with
        # thousands of articles costs no more than any other, so the cost is bounded
        # by the number of bands, not by the matches. Copies (duplicate_of set)
        # have no band rows.
        per_band = " UNION ALL ".join(
            f"SELECT article_id FROM (SELECT article_id FROM article_bands WHERE band_key = ?"
            f" ORDER BY article_id DESC LIMIT {PER_BAND}) k{i}" for i in range(len(band_keys)))
        return (f"SELECT a.id, a.signature FROM"
                f" (SELECT article_id, COUNT(*) AS shared FROM ({per_band}) m"
                f" GROUP BY article_id ORDER BY shared DESC, article_id LIMIT ?) b"
                f" JOIN articles a ON a.id = b.article_id"
                f" WHERE a.duplicate_of IS NULL ORDER BY b.shared DESC, a.id",
                list(band_keys) + [limit])

    def band_candidates(self, band_keys: list[int], limit: int = 50) -> list[tuple[int, bytes]]:
        band_keys = list(dict.fromkeys(band_keys))
        if not band_keys:
            return []
        rows = self._q(*self.band_query(band_keys, limit))
        return [(r[0], bytes(r[1])) for r in rows if r[1] is not None]

    @staticmethod
    def story_query(band_keys: list[int], since: datetime, limit: int) -> tuple[str, list]:
        # story_bands carries the article's time: the window is a range in the
        # (band_key, fetched_at, article_id) index, so rows older than the window
        # (or pruned) cost nothing; and, as in band_query, each band gives at most
        # its PER_BAND newest rows, so a crowded band costs no more than another.
        since_ts = ts(since)
        per_band = " UNION ALL ".join(
            f"SELECT article_id FROM (SELECT article_id FROM story_bands WHERE band_key = ?"
            f" AND fetched_at >= ? ORDER BY fetched_at DESC, article_id DESC"
            f" LIMIT {PER_BAND}) k{i}" for i in range(len(band_keys)))
        params: list = []
        for key in band_keys:
            params += [key, since_ts]
        return (f"SELECT a.id, a.story_id, a.story_signature FROM"
                f" (SELECT article_id, COUNT(*) AS shared FROM ({per_band}) m"
                f" GROUP BY article_id ORDER BY shared DESC, article_id DESC LIMIT ?) s"
                f" JOIN articles a ON a.id = s.article_id"
                f" WHERE a.story_id IS NOT NULL ORDER BY s.shared DESC, a.id DESC",
                params + [limit])

    def story_candidates(self, band_keys: list[int], since: datetime,
                         limit: int = 50) -> list[tuple[int, str, bytes]]:
        band_keys = list(dict.fromkeys(band_keys))
        if not band_keys:
            return []
        rows = self._q(*self.story_query(band_keys, since, limit))
        return [(r[0], r[1], bytes(r[2])) for r in rows if r[2] is not None]

    def insert_article(self, a: NewArticle) -> int:
        d = self.store.dialect
        article_id = self.store._insert_returning_id(
            "INSERT INTO articles (url, guid, source, title, text, author, site_name, language,"
            " published, fetched_at, extracted, content_hash, signature, story_signature,"
            " story_id, duplicate_of, search_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (a.url, a.guid, a.source, a.title, a.text, a.author, a.site_name, a.language,
             ts(a.published), ts(a.fetched_at), 1 if a.extracted else 0, a.content_hash,
             d.blob(a.signature), d.blob(a.story_signature), a.story_id, a.duplicate_of,
             a.search_text))
        if a.duplicate_of is None:
            self.store._executemany("INSERT INTO article_bands (band_key, article_id) VALUES (?, ?)",
                                    [(k, article_id) for k in dict.fromkeys(a.band_keys)])
            fetched = ts(a.fetched_at)
            self.store._executemany(
                "INSERT INTO story_bands (band_key, article_id, fetched_at) VALUES (?, ?, ?)",
                [(k, article_id, fetched) for k in dict.fromkeys(a.story_band_keys)])
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
        # UNIQUE (rule, article_id) decides, even between processes that do not
        # share the exclusive lock: the loser inserts nothing and gets False.
        inserted = self.store._execute_count(
            self.store.dialect.insert_ignore(
                "alerts", "(id, rule, article_id, story_id, followup, created_at, record, source,"
                " highlights) VALUES (?,?,?,?,?,?,?,?,?)", "rule, article_id"),
            (alert.alert_id, alert.rule, alert.article_id, alert.story_id,
             1 if alert.followup else 0, ts(alert.created_at),
             json.dumps(alert.record, ensure_ascii=False),
             alert.source or alert.record.get("source"),
             json.dumps([list(span) for span in alert.highlights]) if alert.highlights else None))
        if not inserted:
            return False
        # Read in the alert's own transaction: a mute and an alert racing each
        # other cannot leave a muted story's alert pending.
        muted = bool(self._q("SELECT 1 FROM muted_stories WHERE story_id = ?",
                             (alert.story_id,)))
        self.store._executemany(
            "INSERT INTO deliveries (alert_id, notifier, state, attempts, digest, next_attempt)"
            " VALUES (?, ?, ?, 0, ?, ?)",
            [(alert.alert_id, name, "muted" if muted else "pending", 1 if digest else 0,
              None if muted else ts(alert.created_at))
             for name, digest in dict.fromkeys(notifiers)])
        return True

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        self.store.mark_seen(source, keys, article_id)


class SQLStore(Store):
    retries = 4            # further tries of a transaction that failed transiently
    retry_delay = 0.05     # seconds before the first retry, doubled each time

    def __init__(self, url: str, dialect: Dialect):
        self.url = url
        self.dialect = dialect
        self._lock = threading.RLock()
        self._in_tx = False
        self._closed = False
        self._conn: Any = dialect.connect()

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

    def explain(self, sql: str, params: tuple | list = ()) -> str:
        """The database's plan for a statement written with '?' placeholders."""
        with self._lock:
            return self.dialect.explain(self._conn, self.dialect.sql(sql), tuple(params))

    # transactions, errors and retries ------------------------------------------
    def _error(self, exc: BaseException) -> StorageError:
        return StorageError(f"{self.dialect.where()}: {self.dialect.describe(exc)}")

    def _rollback_quietly(self) -> None:
        try:
            self.dialect.rollback(self._conn)
        except self.dialect.errors:
            pass    # the connection is gone; so is the transaction

    def _ensure_connection(self) -> None:
        if self._closed:
            raise StorageError(f"{self.dialect.where()}: the store is closed")
        if self._conn is None:
            self._conn = self.dialect.connect()

    def _drop_connection(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass
        self._conn = None

    @contextmanager
    def _tx(self, *, exclusive: bool = False, rollback: bool = False) -> Iterator[None]:
        with self._lock:
            self.dialect.begin(self._conn, exclusive=exclusive)
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                self._rollback_quietly()
                raise
            self._in_tx = False
            try:
                if rollback:
                    self.dialect.rollback(self._conn)
                else:
                    self.dialect.commit(self._conn)
            except BaseException:
                self._rollback_quietly()
                raise

    def _run(self, work: Callable[[], T], *, write: bool = True, exclusive: bool = False) -> T:
        """Run ``work`` in one transaction (``write``) or as plain autocommit reads,
        retrying the whole of it on a transient error; the one place retries happen."""
        with self._lock:
            if self._in_tx:             # nested in a transaction: the outer one decides
                return work()
            attempt, reconnected = 0, False
            while True:
                self._ensure_connection()
                try:
                    if not write:
                        return work()
                    with self._tx(exclusive=exclusive):
                        return work()
                except self.dialect.errors as exc:
                    if self.dialect.is_disconnect(exc, self._conn):
                        self._drop_connection()
                        if reconnected or self.dialect.scratch:
                            raise self._error(exc) from exc
                        reconnected = True
                        continue
                    if not self.dialect.is_transient(exc) or attempt >= self.retries:
                        raise self._error(exc) from exc
                    attempt += 1
                    time.sleep(self.retry_delay * 2 ** (attempt - 1) * (0.5 + random.random()))

    # Store -------------------------------------------------------------------
    def migrate(self) -> None:
        # Under the exclusive lock: processes starting together migrate one at a time.
        self._run(lambda: self.dialect.migrate(self._conn), exclusive=True)

    def check(self) -> None:
        with self._lock:
            self._ensure_connection()
            problem = self.dialect.damage(self._conn)
        if problem is not None:
            raise StorageError(f"{self.dialect.where()} is damaged ({problem}): "
                               f"{self.dialect.damage_advice()}")

    def schema_version(self) -> int:
        rows = self._run(lambda: self._fetch("SELECT MAX(version) FROM schema_version"),
                         write=False)
        return rows[0][0] or 0

    def close(self) -> None:
        with self._lock:
            if not self._closed and self._conn is not None:
                try:
                    self._conn.close()
                except self.dialect.errors:
                    pass
            self._closed = True

    _SOURCE_COLS = ("name, etag, last_modified, body_hash, last_polled, last_success, last_error,"
                    " last_error_at, consecutive_failures, next_poll, hold_until")

    def source_state(self, name: str) -> SourceState:
        rows = self._run(lambda: self._fetch(
            f"SELECT {self._SOURCE_COLS} FROM sources WHERE name = ?", (name,)), write=False)
        return self._state(rows[0]) if rows else SourceState(name=name)

    def all_source_states(self) -> dict[str, SourceState]:
        rows = self._run(lambda: self._fetch(f"SELECT {self._SOURCE_COLS} FROM sources"),
                         write=False)
        return {r[0]: self._state(r) for r in rows}

    @staticmethod
    def _state(r: tuple) -> SourceState:
        return SourceState(name=r[0], etag=r[1], last_modified=r[2], body_hash=r[3],
                           last_polled=dt(r[4]), last_success=dt(r[5]), last_error=r[6],
                           last_error_at=dt(r[7]), consecutive_failures=r[8] or 0,
                           next_poll=dt(r[9]), hold_until=dt(r[10]))

    def save_source_state(self, s: SourceState) -> None:
        # The lease columns are not in the list: saving state never takes,
        # extends or drops a lease.
        self._run(lambda: self._execute_count(self.dialect.upsert(
            "sources", ["name", "etag", "last_modified", "body_hash", "last_polled",
                        "last_success", "last_error", "last_error_at",
                        "consecutive_failures", "next_poll", "hold_until"], "name"),
            (s.name, s.etag, s.last_modified, s.body_hash, ts(s.last_polled),
             ts(s.last_success), s.last_error, ts(s.last_error_at),
             s.consecutive_failures, ts(s.next_poll), ts(s.hold_until))))

    def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(k for k in keys if k))

        def work() -> set[str]:
            seen: set[str] = set()
            for chunk in _chunks(keys):
                seen.update(r[0] for r in self._fetch(
                    f"SELECT entry_key FROM seen_entries WHERE source = ?"
                    f" AND entry_key IN ({_marks(len(chunk))})", [source] + chunk))
            return seen
        return self._run(work, write=False) if keys else set()

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        urls = list(dict.fromkeys(u for u in urls if u))

        def work() -> set[str]:
            known: set[str] = set()
            for chunk in _chunks(urls):
                marks = _marks(len(chunk))
                known.update(r[0] for r in self._fetch(
                    f"SELECT url FROM articles WHERE url IN ({marks}) "
                    f"UNION SELECT url FROM url_aliases WHERE url IN ({marks})", chunk + chunk))
            return known
        return self._run(work, write=False) if urls else set()

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        now = ts(datetime.now(UTC))
        rows = [(source, k, article_id, now) for k in dict.fromkeys(keys) if k]
        if rows:
            self._run(lambda: self._executemany(
                self.dialect.insert_ignore("seen_entries", "(source, entry_key, article_id,"
                                           " first_seen) VALUES (?, ?, ?, ?)", "source, entry_key"),
                rows))

    @contextmanager
    def exclusive(self, *, dry_run: bool = False) -> Iterator[Transaction]:
        with self._lock:
            if self._in_tx:
                raise StorageError("exclusive() cannot be nested in another transaction")
            # Taking the lock is retried (busy, dropped connection); the body is not.
            self._run(lambda: self._begin_exclusive(), write=False)
            self._in_tx = True
            try:
                yield SQLTransaction(self)
            except BaseException as exc:
                self._in_tx = False
                self._rollback_quietly()
                if isinstance(exc, self.dialect.errors):
                    raise self._error(exc) from exc
                raise
            self._in_tx = False
            try:
                if dry_run:
                    self.dialect.rollback(self._conn)
                else:
                    self.dialect.commit(self._conn)
            except self.dialect.errors as exc:
                self._rollback_quietly()
                raise self._error(exc) from exc

    def _begin_exclusive(self) -> None:
        try:
            self.dialect.begin(self._conn, exclusive=True)
        except BaseException:
            self._rollback_quietly()
            raise

    _ARTICLE_COLS = ("id, url, title, text, source, published, fetched_at, story_id,"
                     " duplicate_of, content_hash")

    @staticmethod
    def _article(r: tuple) -> StoredArticle:
        return StoredArticle(id=r[0], url=r[1], title=r[2] or "", text=r[3] or "", source=r[4],
                             published=dt(r[5]), fetched_at=dt(r[6]), story_id=r[7],
                             duplicate_of=r[8], content_hash=r[9])

    def get_article(self, article_id: int) -> StoredArticle | None:
        rows = self._run(lambda: self._fetch(
            f"SELECT {self._ARTICLE_COLS} FROM articles WHERE id = ?", (article_id,)), write=False)
        return self._article(rows[0]) if rows else None

    def iter_articles(self, *, include_duplicates: bool = False, batch: int = 500,
                      containing_any: list[str] | None = None) -> Iterator[StoredArticle]:
        last = 0
        where = "" if include_duplicates else " AND duplicate_of IS NULL"
        needles: list[str] = []
        if containing_any:
            # A substring prefilter on the folded text: every match of the query
            # contains one of these, so nothing it would match is left out.
            where += (" AND (search_text IS NULL OR "
                      + " OR ".join("search_text LIKE ? ESCAPE '!'" for _ in containing_any) + ")")
            needles = ["%" + n.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
                       for n in containing_any]
        while True:
            rows = self._run(lambda: self._fetch(
                f"SELECT {self._ARTICLE_COLS} FROM articles WHERE id > ?{where}"
                f" ORDER BY id LIMIT ?", [last, *needles, batch]), write=False)
            if not rows:
                return
            for r in rows:
                yield self._article(r)
            last = rows[-1][0]

    def count_articles(self) -> int:
        return self._run(lambda: self._fetch("SELECT COUNT(*) FROM articles"), write=False)[0][0]

    def prune(self, before: datetime) -> int:
        """Drop story band rows of articles fetched before ``before`` (story look-ups
        only reach back ``fingerprint.STORY_WINDOW``); returns how many went."""
        return self._run(lambda: self._execute_count(
            "DELETE FROM story_bands WHERE fetched_at < ? OR fetched_at IS NULL", (ts(before),)))

    def story_articles(self, story_id: str) -> list[StoredArticle]:
        def work() -> list[StoredArticle]:
            rows = self._fetch(f"SELECT {self._ARTICLE_COLS} FROM articles WHERE story_id = ?"
                               f" ORDER BY id", (story_id,))
            articles = [self._article(r) for r in rows]
            for chunk in _chunks([a.id for a in articles]):
                articles.extend(self._article(r) for r in self._fetch(
                    f"SELECT {self._ARTICLE_COLS} FROM articles"
                    f" WHERE duplicate_of IN ({_marks(len(chunk))}) ORDER BY id", chunk))
            return articles
        return self._run(work, write=False)

    def article_signatures(self, article_ids: Iterable[int]) -> dict[int, bytes]:
        ids = list(dict.fromkeys(article_ids))

        def work() -> dict[int, bytes]:
            out: dict[int, bytes] = {}
            for chunk in _chunks(ids):
                for r in self._fetch(f"SELECT id, signature FROM articles"
                                     f" WHERE id IN ({_marks(len(chunk))})", chunk):
                    if r[1] is not None:
                        out[r[0]] = bytes(r[1])
            return out
        return self._run(work, write=False) if ids else {}

    # polls ------------------------------------------------------------------------
    def record_poll(self, source: str, when: datetime, *, ok: bool) -> None:
        day = ts(when)[:10]
        self._run(lambda: self._execute_count(
            "INSERT INTO poll_days (source, day, ok, errors) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, day) DO UPDATE SET ok = poll_days.ok + excluded.ok,"
            " errors = poll_days.errors + excluded.errors",
            (source, day, 1 if ok else 0, 0 if ok else 1)))

    def poll_days(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        rows = self._run(lambda: self._fetch(
            "SELECT source, day, ok, errors FROM poll_days WHERE day >= ?",
            (ts(since)[:10],)), write=False)
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def alert_days(self, since: datetime) -> dict[tuple[str, str], int]:
        rows = self._run(lambda: self._fetch(
            "SELECT source, substr(created_at, 1, 10), COUNT(*) FROM alerts"
            " WHERE created_at >= ? AND source IS NOT NULL"
            " GROUP BY source, substr(created_at, 1, 10)", (ts(since)[:10],)), write=False)
        return {(r[0], r[1]): r[2] for r in rows}

    # alerts and deliveries --------------------------------------------------------
    _ALERT_COLS = ("a.id, a.rule, a.article_id, a.story_id, a.followup, a.created_at,"
                   " a.record, a.source, a.highlights")

    def list_alerts(self, *, pending_only: bool = False, limit: int = 50,
                    rule: str | None = None, source: str | None = None,
                    story_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None,
                    before: tuple[datetime, str] | None = None) -> list[AlertRow]:
        conditions: list[str] = []
        params: list[Any] = []
        if pending_only:
            conditions.append("a.id IN (SELECT d.alert_id FROM deliveries d"
                              " WHERE d.state = 'pending')")
        for column, value in (("a.rule", rule), ("a.source", source), ("a.story_id", story_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            conditions.append("a.created_at >= ?")
            params.append(ts(since))
        if until is not None:
            conditions.append("a.created_at < ?")
            params.append(ts(until))
        if before is not None:
            conditions.append("(a.created_at < ? OR (a.created_at = ? AND a.id < ?))")
            params += [ts(before[0]), ts(before[0]), before[1]]
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        return self._alerts(f"SELECT {self._ALERT_COLS} FROM alerts a{where}"
                            f" ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
                            params + [limit])

    def get_alert(self, alert_id: str) -> AlertRow | None:
        alerts = self._alerts(f"SELECT {self._ALERT_COLS} FROM alerts a WHERE a.id = ?",
                              [alert_id])
        return alerts[0] if alerts else None

    def _alerts(self, sql: str, params: list) -> list[AlertRow]:
        def work() -> list[AlertRow]:
            rows = self._fetch(sql, params)
            alerts = [AlertRow(alert_id=r[0], rule=r[1], article_id=r[2], story_id=r[3],
                               followup=bool(r[4]), created_at=dt(r[5]),
                               record=json.loads(r[6]), source=r[7],
                               highlights=[(s, e) for s, e in json.loads(r[8] or "[]")])
                      for r in rows]
            by_id = {a.alert_id: a for a in alerts}
            for chunk in _chunks(list(by_id)):
                for d in self._fetch(f"SELECT {self._DELIVERY_COLS} FROM deliveries"
                                     f" WHERE alert_id IN ({_marks(len(chunk))})"
                                     f" ORDER BY notifier", chunk):
                    by_id[d[0]].deliveries.append(self._delivery(d))
            return alerts
        return self._run(work, write=False)

    _DELIVERY_COLS = ("alert_id, notifier, state, attempts, last_error, next_attempt, sent_at,"
                      " digest, receipt")

    @staticmethod
    def _delivery(r: tuple) -> DeliveryRow:
        return DeliveryRow(alert_id=r[0], notifier=r[1], state=r[2], attempts=r[3],
                           last_error=r[4], next_attempt=dt(r[5]), sent_at=dt(r[6]),
                           digest=bool(r[7]), receipt=json.loads(r[8]) if r[8] else None)

    def oldest_pending_delivery(self, notifier: str | None = None,
                                digest: bool | None = None) -> datetime | None:
        where, params = "", []
        if notifier is not None:
            where += " AND d.notifier = ?"
            params.append(notifier)
        if digest is not None:
            where += " AND d.digest = ?"
            params.append(1 if digest else 0)
        rows = self._run(lambda: self._fetch(
            "SELECT MIN(a.created_at) FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.state = 'pending'" + where, params), write=False)
        return dt(rows[0][0]) if rows else None

    def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float, *,
                         digest: bool = False, notifier: str | None = None,
                         limit: int = 100, exclude: Iterable[str] = (),
                         retry_before: datetime | None = None
                         ) -> list[tuple[DeliveryRow, dict]]:
        # A lease that has run out (its node died or hangs) is free again: the
        # delivery is taken over, at least once, at most one repeat per crash.
        until = ts(now + timedelta(seconds=lease_seconds))
        params: list[Any] = [1 if digest else 0, ts(now), ts(now)]
        extra = ""
        if notifier is not None:
            extra = " AND d.notifier = ?"
            params.append(notifier)
        if not digest:
            if retry_before is None:
                extra += " AND (d.next_attempt IS NULL OR d.next_attempt <= ?)"
                params.append(ts(now))
            else:
                extra += (" AND (d.next_attempt IS NULL OR d.next_attempt <= ?"
                          " OR d.last_attempt IS NULL OR d.last_attempt < ?)")
                params += [ts(now), ts(retry_before)]
        held = sorted(set(exclude))
        if held:
            extra += f" AND d.notifier NOT IN ({_marks(len(held))})"
            params.extend(held)

        def work() -> list[tuple]:
            # SQLite: under BEGIN IMMEDIATE; PostgreSQL: rows another node is
            # claiming right now are skipped, not waited for.
            rows = self._fetch(
                f"SELECT d.alert_id, d.notifier, d.state, d.attempts, d.last_error,"
                f" d.next_attempt, d.sent_at, d.digest, d.receipt, a.record"
                f" FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                f" WHERE d.state = 'pending' AND d.digest = ?"
                f" AND (d.lease_until IS NULL OR d.lease_until <= ?)"
                f" AND (d.hold_until IS NULL OR d.hold_until <= ?){extra}"
                f" ORDER BY a.created_at, d.alert_id, d.notifier LIMIT ?"
                f"{self.dialect.lock_skip('d')}",
                params + [limit])
            self._executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_until = ?, last_attempt = ? "
                "WHERE alert_id = ? AND notifier = ?",
                [(owner, until, ts(now), r[0], r[1]) for r in rows])
            return rows
        rows = self._run(work)
        return [(self._delivery(r[:9]), json.loads(r[9])) for r in rows]

    def thread_receipt(self, notifier: str, story_id: str, rule: str | None = None) -> dict | None:
        """The receipt of the first sent delivery of this story on this channel
        (of this rule's alerts only, when ``rule`` is given)."""
        params: list[Any] = [notifier, story_id]
        by_rule = ""
        if rule is not None:
            by_rule = " AND a.rule = ?"
            params.append(rule)
        rows = self._run(lambda: self._fetch(
            "SELECT d.receipt FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.notifier = ? AND a.story_id = ? AND d.state = 'sent'"
            f" AND d.receipt IS NOT NULL AND d.receipt <> '{{}}'{by_rule}"
            " ORDER BY d.sent_at, d.alert_id LIMIT 1", params), write=False)
        return json.loads(rows[0][0]) if rows else None

    def delivery_sent(self, alert_id: str, notifier: str, receipt: dict, now: datetime) -> None:
        self._run(lambda: self._execute_count(
            "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ?,"
            " receipt = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL"
            " WHERE alert_id = ? AND notifier = ?",
            (ts(now), json.dumps(receipt or {}), alert_id, notifier)))

    def delivery_failed(self, alert_id: str, notifier: str, error: str, *,
                        permanent: bool, next_attempt: datetime | None,
                        hold_until: datetime | None = None) -> None:
        self._run(lambda: self._execute_count(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt = ?, hold_until = ?, lease_owner = NULL, lease_until = NULL"
            " WHERE alert_id = ? AND notifier = ?",
            ("failed" if permanent else "pending", error[:1000], ts(next_attempt),
             ts(hold_until), alert_id, notifier)))

    def count_pending_deliveries(self, now: datetime, *, digest: bool = False,
                                 notifier: str | None = None,
                                 exclude: Iterable[str] = ()) -> int:
        where, params = "", [1 if digest else 0, ts(now)]
        if notifier is not None:
            where, params = " AND notifier = ?", params + [notifier]
        held = sorted(set(exclude))
        if held:
            where += f" AND notifier NOT IN ({_marks(len(held))})"
            params += held
        rows = self._run(lambda: self._fetch(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND digest = ?"
            " AND (hold_until IS NULL OR hold_until <= ?)" + where, params), write=False)
        return rows[0][0]

    # stories ------------------------------------------------------------------------
    def mute_story(self, story_id: str, now: datetime) -> bool:
        return bool(self._run(lambda: self._execute_count(
            self.dialect.insert_ignore("muted_stories", "(story_id, muted_at) VALUES (?, ?)",
                                       "story_id"), (story_id, ts(now)))))

    def unmute_story(self, story_id: str) -> bool:
        return bool(self._run(lambda: self._execute_count(
            "DELETE FROM muted_stories WHERE story_id = ?", (story_id,))))

    def muted_stories(self, story_ids: Iterable[str] | None = None) -> dict[str, datetime]:
        if story_ids is None:
            rows = self._run(lambda: self._fetch("SELECT story_id, muted_at FROM muted_stories"),
                             write=False)
            return {r[0]: dt(r[1]) for r in rows}
        ids = list(dict.fromkeys(story_ids))

        def work() -> dict[str, datetime]:
            out: dict[str, datetime] = {}
            for chunk in _chunks(ids):
                for r in self._fetch(f"SELECT story_id, muted_at FROM muted_stories"
                                     f" WHERE story_id IN ({_marks(len(chunk))})", chunk):
                    out[r[0]] = dt(r[1])
            return out
        return self._run(work, write=False) if ids else {}

    def story_exists(self, story_id: str) -> bool:
        return bool(self._run(lambda: self._fetch(
            "SELECT 1 FROM articles WHERE story_id = ?"
            " UNION SELECT 1 FROM alerts WHERE story_id = ?", (story_id, story_id)),
            write=False))

    # leases for several nodes -----------------------------------------------------
    def claim_due_sources(self, owner: str, now: datetime, lease_seconds: float,
                          names: list[str], limit: int = 100) -> list[str]:
        names = sorted(set(n for n in names if n))
        if not names or limit <= 0:
            return []
        until, now_s = ts(now + timedelta(seconds=lease_seconds)), ts(now)

        def work() -> list[str]:
            # Rows for never-seen sources first, in a fixed order so that two
            # nodes inserting the same new names cannot deadlock.
            self._executemany(self.dialect.insert_ignore("sources", "(name) VALUES (?)", "name"),
                              [(n,) for n in names])
            claimed: list[str] = []
            for chunk in _chunks(names):
                rows = self._fetch(
                    f"SELECT s.name FROM sources s WHERE s.name IN ({_marks(len(chunk))})"
                    f" AND (s.next_poll IS NULL OR s.next_poll <= ?)"
                    f" AND (s.lease_until IS NULL OR s.lease_until <= ?)"
                    f" ORDER BY (s.next_poll IS NOT NULL), s.next_poll, s.name LIMIT ?"
                    f"{self.dialect.lock_skip('s')}",
                    chunk + [now_s, now_s, limit - len(claimed)])
                claimed.extend(r[0] for r in rows)
                if len(claimed) >= limit:
                    break
            self._executemany("UPDATE sources SET lease_owner = ?, lease_until = ? WHERE name = ?",
                              [(owner, until, n) for n in claimed])
            return claimed
        return self._run(work)

    def release_source(self, name: str, owner: str) -> None:
        self._run(lambda: self._execute_count(
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL"
            " WHERE name = ? AND lease_owner = ?", (name, owner)))

    def lease_owners(self) -> set[str]:
        rows = self._run(lambda: self._fetch(
            "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL"
            " UNION SELECT lease_owner FROM deliveries WHERE lease_owner IS NOT NULL"),
            write=False)
        return {r[0] for r in rows}

    def release_owner(self, owner: str) -> None:
        def work() -> None:
            self._execute_count("UPDATE sources SET lease_owner = NULL, lease_until = NULL"
                                " WHERE lease_owner = ?", (owner,))
            self._execute_count("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
                                " WHERE lease_owner = ?", (owner,))
        self._run(work)

    def release_deliveries(self, owner: str, keys: Iterable[tuple[str, str]]) -> None:
        rows = [(owner, alert_id, notifier) for alert_id, notifier in dict.fromkeys(keys)]
        if rows:
            self._run(lambda: self._executemany(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
                " WHERE lease_owner = ? AND alert_id = ? AND notifier = ?", rows))

    def renew_leases(self, owner: str, now: datetime, lease_seconds: float, *,
                     sources: Iterable[str] = (),
                     deliveries: Iterable[tuple[str, str]] = ()) -> None:
        until = ts(now + timedelta(seconds=lease_seconds))
        source_rows = [(until, owner, name) for name in dict.fromkeys(sources)]
        delivery_rows = [(until, owner, a, n) for a, n in dict.fromkeys(deliveries)]
        if not source_rows and not delivery_rows:
            return

        def work() -> None:
            self._executemany("UPDATE sources SET lease_until = ?"
                              " WHERE lease_owner = ? AND name = ?", source_rows)
            self._executemany("UPDATE deliveries SET lease_until = ?"
                              " WHERE lease_owner = ? AND alert_id = ? AND notifier = ?"
                              " AND state = 'pending'", delivery_rows)
        self._run(work)
