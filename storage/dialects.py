"""What differs between SQLite and PostgreSQL: connecting, locking, errors, a few SQL forms.

The schema is versioned: ``MIGRATIONS`` is an append-only list, and a database
records the number of migrations applied in ``schema_version``.
"""

from __future__ import annotations

import random
import sqlite3
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from monitor.errors import StorageError

# Each migration is a list of statements written for both databases; "{id}",
# "{blob}" and "{bigint}" are replaced with each dialect's types. Append only:
# a database that has applied migration N never sees it again.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            etag TEXT, last_modified TEXT, body_hash TEXT,
            last_polled TEXT, last_success TEXT, last_error TEXT, last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_poll TEXT, lease_owner TEXT, lease_until TEXT)""",
        """CREATE TABLE seen_entries (
            source TEXT NOT NULL, entry_key TEXT NOT NULL, article_id {bigint},
            first_seen TEXT NOT NULL,
            PRIMARY KEY (source, entry_key))""",
        """CREATE TABLE articles (
            id {id},
            url TEXT NOT NULL UNIQUE, guid TEXT, source TEXT NOT NULL,
            title TEXT, text TEXT, author TEXT, site_name TEXT, language TEXT,
            published TEXT, fetched_at TEXT NOT NULL, extracted INTEGER NOT NULL DEFAULT 0,
            content_hash TEXT, signature {blob}, story_signature {blob},
            story_id TEXT, duplicate_of {bigint})""",
        "CREATE INDEX articles_content_hash ON articles (content_hash)",
        "CREATE INDEX articles_story ON articles (story_id)",
        "CREATE TABLE url_aliases (url TEXT PRIMARY KEY, article_id {bigint} NOT NULL)",
        "CREATE TABLE article_bands (band_key {bigint} NOT NULL, article_id {bigint} NOT NULL)",
        "CREATE INDEX article_bands_key ON article_bands (band_key)",
        "CREATE TABLE story_bands (band_key {bigint} NOT NULL, article_id {bigint} NOT NULL)",
        "CREATE INDEX story_bands_key ON story_bands (band_key)",
        """CREATE TABLE alerts (
            id TEXT PRIMARY KEY, rule TEXT NOT NULL, article_id {bigint} NOT NULL,
            story_id TEXT NOT NULL, followup INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, record TEXT NOT NULL,
            UNIQUE (rule, article_id))""",
        "CREATE INDEX alerts_story ON alerts (rule, story_id)",
        "CREATE INDEX alerts_created ON alerts (created_at)",
        """CREATE TABLE deliveries (
            alert_id TEXT NOT NULL, notifier TEXT NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            digest INTEGER NOT NULL DEFAULT 0,
            last_error TEXT, next_attempt TEXT, sent_at TEXT, receipt TEXT,
            lease_owner TEXT, lease_until TEXT,
            PRIMARY KEY (alert_id, notifier))""",
        "CREATE INDEX deliveries_state ON deliveries (state, digest, next_attempt)",
    ],
    # 2: lookups that stay index-only at 10^6 articles. Band look-ups read
    # (band_key, article_id) from the index alone; story bands carry their
    # article's time, so the 7-day story window is part of the index range and
    # old rows can be pruned (Store.prune) by time.
    [
        "CREATE INDEX article_bands_key_article ON article_bands (band_key, article_id)",
        "DROP INDEX article_bands_key",
        "ALTER TABLE story_bands ADD COLUMN fetched_at TEXT",
        """UPDATE story_bands SET fetched_at =
            (SELECT a.fetched_at FROM articles a WHERE a.id = story_bands.article_id)""",
        "CREATE INDEX story_bands_key_time ON story_bands (band_key, fetched_at, article_id)",
        "CREATE INDEX story_bands_time ON story_bands (fetched_at)",
        "DROP INDEX story_bands_key",
        # thread_receipt looks a story up without its rule.
        "CREATE INDEX alerts_story_id ON alerts (story_id)",
        # renew_leases and takeovers find a node's leases.
        "CREATE INDEX deliveries_lease ON deliveries (lease_owner)",
    ],
    [
        # The folded text (monitor.text.normalise.normalise of title and text), for a
        # substring prefilter in `search`; NULL on articles stored before it.
        "ALTER TABLE articles ADD COLUMN search_text TEXT",
    ],
    # 4: the web page. Alerts carry their source, so that filters by source and
    # period stay index ranges; muted stories; polls counted per source and UTC
    # day, for the sources page's 14-day chart (one row per source and day).
    [
        "ALTER TABLE alerts ADD COLUMN source TEXT",
        # The (start, end) offsets of the matched words in the record's snippet,
        # as the query engine found them (JSON); NULL on older alerts.
        "ALTER TABLE alerts ADD COLUMN highlights TEXT",
        """UPDATE alerts SET source =
            (SELECT ar.source FROM articles ar WHERE ar.id = alerts.article_id)""",
        # Source-health notices have no article: their story is 'source:NAME'.
        """UPDATE alerts SET source = substr(story_id, 8)
            WHERE source IS NULL AND story_id LIKE 'source:%'""",
        "CREATE INDEX alerts_source_created ON alerts (source, created_at)",
        "CREATE INDEX alerts_rule_created ON alerts (rule, created_at)",
        "CREATE TABLE muted_stories (story_id TEXT PRIMARY KEY, muted_at TEXT NOT NULL)",
        """CREATE TABLE poll_days (
            source TEXT NOT NULL, day TEXT NOT NULL,
            ok INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, day))""",
    ],
    # 5: what a remote side asked to hold back, and one take per pass.
    [
        # hold_until: a channel asked to wait (Retry-After) -- even `check-now`,
        # which otherwise retries what is pending at once, waits for it.
        # last_attempt: when the delivery was last taken, so that one pass never
        # takes the same delivery twice.
        "ALTER TABLE deliveries ADD COLUMN hold_until TEXT",
        "ALTER TABLE deliveries ADD COLUMN last_attempt TEXT",
        # A source's server asked to wait (Retry-After): until then even
        # `check-now`, which ignores polling schedules, leaves it alone.
        "ALTER TABLE sources ADD COLUMN hold_until TEXT",
    ],
    # 6: deliveries carry their alert's time, so that a claim takes the oldest due
    # ones from an index range instead of sorting every pending delivery (a pass
    # that raised 90,000 alerts sorted them all for each claim of 100).
    [
        "ALTER TABLE deliveries ADD COLUMN queued_at TEXT",
        """UPDATE deliveries SET queued_at =
            (SELECT a.created_at FROM alerts a WHERE a.id = deliveries.alert_id)""",
        "CREATE INDEX deliveries_queue ON deliveries (state, digest, queued_at, alert_id,"
        " notifier)",
    ],
]


class Dialect(ABC):
    name: str
    skip_locked = ""
    # A scratch store (a dry run) works on a copy or in one transaction never
    # committed: nothing it does is kept, and it never reconnects (that would lose it).
    scratch = False
    types: dict[str, str]
    # The driver's base exception, translated into StorageError by the store.
    errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def connect(self) -> Any: ...

    def where(self) -> str:
        """Where the database is, for messages (never a password)."""
        return self.name

    def sql(self, sql: str) -> str:
        return sql

    def lock_skip(self, alias: str) -> str:
        """Suffix of a claiming SELECT: lock the rows of ``alias``, skipping rows
        another transaction holds (SQLite needs none: BEGIN IMMEDIATE serialises)."""
        return ""

    def blob(self, value: bytes | None) -> Any:
        return value

    @abstractmethod
    def begin(self, conn: Any, *, exclusive: bool) -> None: ...

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")

    def executemany(self, conn: Any, sql: str, rows: list[tuple]) -> None:
        conn.executemany(sql, rows)

    @abstractmethod
    def insert_returning_id(self, conn: Any, sql: str, params: tuple) -> int: ...

    def insert_ignore(self, table: str, rest: str, conflict: str) -> str:
        return f"INSERT INTO {table} {rest} ON CONFLICT ({conflict}) DO NOTHING"

    def upsert(self, table: str, columns: list[str], key: str) -> str:
        marks = ", ".join("?" * len(columns))
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}")

    @abstractmethod
    def explain(self, conn: Any, sql: str, params: tuple) -> str:
        """The query plan, as text (for tests and for checking the SQL at scale)."""

    # errors ----------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """Would the same transaction likely succeed if simply run again?"""
        return False

    def is_disconnect(self, exc: BaseException, conn: Any) -> bool:
        """Is the connection gone (so a new one is needed before retrying)?"""
        return False

    def damage(self, conn: Any) -> str | None:
        """What is wrong with the database's files, if anything (None: nothing found)."""
        return None

    def damage_advice(self) -> str:
        """What to do about a damaged database."""
        return "restore it from a backup"

    def describe(self, exc: BaseException) -> str:
        """One line about a driver error, safe to show (no password)."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return text

    # schema ----------------------------------------------------------------
    def migrate(self, conn: Any) -> None:
        """Bring the schema up to date; the caller holds the exclusive lock."""
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        current = max(r[0] for r in rows) if rows else 0
        if current > len(MIGRATIONS):
            raise StorageError(f"the database schema is version {current}, newer than this "
                               f"program knows ({len(MIGRATIONS)}): upgrade the monitor")
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(self.sql(statement.format(**self.types)))
        if not rows:
            conn.execute(self.sql("INSERT INTO schema_version (version) VALUES (?)"),
                         (len(MIGRATIONS),))
        elif current < len(MIGRATIONS) or len(rows) > 1:
            conn.execute("DELETE FROM schema_version")
            conn.execute(self.sql("INSERT INTO schema_version (version) VALUES (?)"),
                         (len(MIGRATIONS),))


class SQLiteDialect(Dialect):
    name = "sqlite"
    types = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "bigint": "INTEGER"}
    errors = (sqlite3.Error,)

    def __init__(self, path: str, *, busy_timeout: float = 60.0, scratch: bool = False):
        """``scratch``: work on a copy of the database in memory, made at connect time
        (an empty one when there is no file), and leave every file as it was."""
        self.path = path
        self.busy_timeout = busy_timeout
        self.scratch = scratch

    def where(self) -> str:
        return f"SQLite database {self.path}"

    def connect(self) -> sqlite3.Connection:
        if self.scratch:
            return self._scratch_copy()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            self._wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from None
        return conn

    def _scratch_copy(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.path == ":memory:" or not Path(self.path).exists():
            return conn
        # Read-only. A WAL database that nobody has open has no -wal/-shm files, and
        # even a read-only connection would create them: it is read as immutable
        # then (nobody is writing it); otherwise the live WAL is read as usual.
        live = Path(self.path + "-wal").exists() or Path(self.path + "-shm").exists()
        uri = f"{Path(self.path).resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"
        try:
            source = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)
            try:
                source.backup(conn)
            finally:
                source.close()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read SQLite database {self.path}: {exc}") from None
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. Two processes creating the database at once can make the
        switch fail at once with "locked" (SQLite does not wait on this lock), so it
        is retried within the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.01
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 0.5)

    def begin(self, conn: sqlite3.Connection, *, exclusive: bool) -> None:
        # Every transaction here writes, so each takes the write lock at once
        # (BEGIN IMMEDIATE): two processes' dedup look-up-then-insert can never
        # interleave, and a deferred read never fails to upgrade to a write in
        # WAL mode (SQLITE_BUSY_SNAPSHOT, which the busy timeout cannot wait out).
        conn.execute("BEGIN IMMEDIATE")

    def insert_returning_id(self, conn: sqlite3.Connection, sql: str, params: tuple) -> int:
        row_id = conn.execute(sql, params).lastrowid
        assert row_id is not None      # an INSERT always sets it
        return row_id

    def explain(self, conn: sqlite3.Connection, sql: str, params: tuple) -> str:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return "\n".join(r[-1] for r in rows)

    def damage(self, conn: sqlite3.Connection) -> str | None:
        # quick_check: every page and b-tree is readable and well formed (not the
        # slower index-against-table comparison of integrity_check).
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        problems = [r[0] for r in rows if r[0] != "ok"]
        if not problems:
            return None
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        return "; ".join(problems[:3]) + more

    def damage_advice(self) -> str:
        return (f"stop every process that uses it, then restore it from a backup, or "
                f"recover what can be read with `sqlite3 {self.path} .recover | sqlite3 "
                f"recovered.db` and point [storage] url at recovered.db, or move it aside "
                f"to start afresh (alerts already sent may then be sent again)")

    def is_transient(self, exc: BaseException) -> bool:
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        message = str(exc).lower()
        return "locked" in message or "busy" in message
