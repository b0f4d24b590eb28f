"""PostgreSQL for the SQL store (optional extra: ``pip install news-monitor[postgres]``)."""

from __future__ import annotations

from typing import Any

from monitor.errors import ConfigError, StorageError
from storage.dialects import Dialect
from storage.sql import EXCLUSIVE_LOCK_KEY


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {"id": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "bigint": "BIGINT"}
    # Several nodes claim deliveries without waiting on each other's rows.
    skip_locked = " FOR UPDATE OF d SKIP LOCKED"

    def __init__(self, url: str):
        self.url = url

    def connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise ConfigError("storage url is PostgreSQL but psycopg is not installed: "
                              "pip install 'news-monitor[postgres]'") from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            # The message may contain the password of the URL: say only where.
            host = self.url.split("@")[-1].split("/")[0]
            raise StorageError(f"cannot connect to PostgreSQL at {host}: "
                               f"{type(exc).__name__}") from None

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def begin(self, conn: Any, *, exclusive: bool) -> None:
        conn.execute("BEGIN")
        if exclusive:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE_LOCK_KEY,))

    def executemany(self, conn: Any, sql: str, rows: list[tuple]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def insert_returning_id(self, conn: Any, sql: str, params: tuple) -> int:
        return conn.execute(sql + " RETURNING id", params).fetchone()[0]
