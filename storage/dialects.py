"""What differs between SQLite and PostgreSQL: connecting, locking, a few SQL forms.

The schema is versioned: ``MIGRATIONS`` is an append-only list, and a database
records the number of migrations applied in ``schema_version``.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from monitor.errors import StorageError

# Each migration is a list of statements written for both databases; "{id}",
# "{blob}" and "{bigint}" are replaced with each dialect's types.
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
]


class Dialect(ABC):
    name: str
    skip_locked = ""
    types: dict[str, str]

    @abstractmethod
    def connect(self) -> Any: ...

    def sql(self, sql: str) -> str:
        return sql

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

    def migrate(self, conn: Any) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        current = rows[0][0] if rows else 0
        if current > len(MIGRATIONS):
            raise StorageError(f"the database schema is version {current}, newer than this "
                               f"program knows ({len(MIGRATIONS)}): upgrade the monitor")
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(self.sql(statement.format(**self.types)))
        if not rows:
            conn.execute(self.sql("INSERT INTO schema_version (version) VALUES (?)"),
                         (len(MIGRATIONS),))
        elif current < len(MIGRATIONS):
            conn.execute(self.sql("UPDATE schema_version SET version = ?"), (len(MIGRATIONS),))


class SQLiteDialect(Dialect):
    name = "sqlite"
    types = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "bigint": "INTEGER"}

    def __init__(self, path: str):
        self.path = path

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from None
        return conn

    def begin(self, conn: sqlite3.Connection, *, exclusive: bool) -> None:
        # BEGIN IMMEDIATE takes the write lock at once: two processes' dedup
        # look-up-then-insert can never interleave.
        conn.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")

    def insert_returning_id(self, conn: sqlite3.Connection, sql: str, params: tuple) -> int:
        return conn.execute(sql, params).lastrowid
