"""The SQL store's articles: the exclusive transaction in which dedup looks up and
inserts (``SQLTransaction``), and the reads of stored articles."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from monitor.errors import StorageError
from storage.base import AlertRow, ArticleStore, NewArticle, StoredArticle, Transaction
from storage.sql.core import SQLCore, chunks, dt, marks, ts
from storage.sql.sources import insert_seen

# The newest rows read per LSH band when looking for near-duplicates or a story
# (band_query, story_query): bounds the work per article whatever the corpus.
PER_BAND = 32


class SQLTransaction(Transaction):
    def __init__(self, store: SQLCore):
        self.store = store

    def _q(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        return self.store._fetch(sql, params)

    def article_id_by_url(self, urls: Iterable[str]) -> int | None:
        urls = list(dict.fromkeys(u for u in urls if u))
        if not urls:
            return None
        ids: list[int] = []
        for chunk in chunks(urls):
            places = marks(len(chunk))
            ids.extend(r[0] for r in self._q(
                f"SELECT id FROM articles WHERE url IN ({places}) "
                f"UNION SELECT article_id FROM url_aliases WHERE url IN ({places})",
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
            self.store._executemany(
                "INSERT INTO article_bands (band_key, article_id) VALUES (?, ?)",
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
            "INSERT INTO deliveries (alert_id, notifier, state, attempts, digest, next_attempt,"
            " queued_at) VALUES (?, ?, ?, 0, ?, ?, ?)",
            [(alert.alert_id, name, "muted" if muted else "pending", 1 if digest else 0,
              None if muted else ts(alert.created_at), ts(alert.created_at))
             for name, digest in dict.fromkeys(notifiers)])
        return True

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        insert_seen(self.store, source, keys, article_id)


class SQLArticles(SQLCore, ArticleStore):
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
            rows = self._run(functools.partial(
                self._fetch, f"SELECT {self._ARTICLE_COLS} FROM articles WHERE id > ?{where}"
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
            for chunk in chunks([a.id for a in articles]):
                articles.extend(self._article(r) for r in self._fetch(
                    f"SELECT {self._ARTICLE_COLS} FROM articles"
                    f" WHERE duplicate_of IN ({marks(len(chunk))}) ORDER BY id", chunk))
            return articles
        return self._run(work, write=False)

    def article_signatures(self, article_ids: Iterable[int]) -> dict[int, bytes]:
        ids = list(dict.fromkeys(article_ids))

        def work() -> dict[int, bytes]:
            out: dict[int, bytes] = {}
            for chunk in chunks(ids):
                for r in self._fetch(f"SELECT id, signature FROM articles"
                                     f" WHERE id IN ({marks(len(chunk))})", chunk):
                    if r[1] is not None:
                        out[r[0]] = bytes(r[1])
            return out
        return self._run(work, write=False) if ids else {}

    def story_exists(self, story_id: str) -> bool:
        return bool(self._run(lambda: self._fetch(
            "SELECT 1 FROM articles WHERE story_id = ?"
            " UNION SELECT 1 FROM alerts WHERE story_id = ?", (story_id, story_id)),
            write=False))

