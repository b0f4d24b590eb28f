"""PostgreSQL for the SQL store (optional extra: ``pip install news-monitor[postgres]``).

psycopg is imported here only, so SQLite users never need it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from monitor.errors import ConfigError, StorageError
from monitor.redaction import redact
from storage.dialects import Dialect
from storage.sql.core import EXCLUSIVE_LOCK_KEY

# SQLSTATEs worth running the transaction again for.
_TRANSIENT_STATES = {
    "40001",   # serialization_failure
    "40P01",   # deadlock_detected
    "55P03",   # lock_not_available
    "57P01",   # admin_shutdown (the server closed our session)
}


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("storage url is PostgreSQL but psycopg is not installed: "
                          "pip install 'news-monitor[postgres]'") from None
    return psycopg


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {"id": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "bigint": "BIGINT"}
    # Several nodes claim rows without waiting on each other's.
    skip_locked = " FOR UPDATE OF d SKIP LOCKED"

    def __init__(self, url: str, *, connect_timeout: int = 10, scratch: bool = False):
        """``scratch``: everything happens in one transaction that is never committed
        (closing the store rolls it back); each store transaction is a savepoint in it."""
        self.url = url
        self.connect_timeout = connect_timeout
        self.scratch = scratch
        self.errors = (_psycopg().Error,)
        try:
            parts = urlsplit(url)
            self._password = unquote(parts.password) if parts.password else None
            host = parts.hostname or "localhost"
            self._where = f"{host}:{parts.port or 5432}{parts.path or ''}"
        except ValueError:
            raise ConfigError(f"storage url {redact(url)!r}: not a valid PostgreSQL URL") from None

    def where(self) -> str:
        return f"PostgreSQL at {self._where}"

    def describe(self, exc: BaseException) -> str:
        return redact(super().describe(exc), [self._password])

    def connect(self) -> Any:
        psycopg = _psycopg()
        try:
            # Keepalives and a user timeout: a connection to a server that vanished
            # from the network (no reset ever comes) fails within a minute instead
            # of hanging a query for the kernel's quarter of an hour.
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout,
                                   keepalives=1, keepalives_idle=20, keepalives_interval=5,
                                   keepalives_count=3, tcp_user_timeout=30_000)
            if self.scratch:
                conn.execute("BEGIN")
            return conn
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self.where()}: "
                               f"{self.describe(exc)}") from None

    def lock_skip(self, alias: str) -> str:
        return f" FOR UPDATE OF {alias} SKIP LOCKED"

    def sql(self, sql: str) -> str:
        # Every statement is written with '?' placeholders and no literal '%'.
        return sql.replace("%", "%%").replace("?", "%s")

    def begin(self, conn: Any, *, exclusive: bool) -> None:
        if self.scratch:
            # No advisory lock: held to the end of the never-ending transaction, it
            # would stop every other node's dedup for as long as the dry run lasts.
            conn.execute("SAVEPOINT scratch")
            return
        conn.execute("BEGIN")
        if exclusive:
            # Held to the end of the transaction: serialises dedup (and migrations)
            # across every process sharing this database.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE_LOCK_KEY,))

    def commit(self, conn: Any) -> None:
        conn.execute("RELEASE SAVEPOINT scratch" if self.scratch else "COMMIT")

    def rollback(self, conn: Any) -> None:
        if self.scratch:
            conn.execute("ROLLBACK TO SAVEPOINT scratch")
            conn.execute("RELEASE SAVEPOINT scratch")
        else:
            conn.execute("ROLLBACK")

    def executemany(self, conn: Any, sql: str, rows: list[tuple]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def insert_returning_id(self, conn: Any, sql: str, params: tuple) -> int:
        return conn.execute(sql + " RETURNING id", params).fetchone()[0]

    def explain(self, conn: Any, sql: str, params: tuple) -> str:
        rows = conn.execute("EXPLAIN " + sql, params).fetchall()
        return "\n".join(r[0] for r in rows)

    def is_transient(self, exc: BaseException) -> bool:
        state = getattr(exc, "sqlstate", None) or ""
        if state in _TRANSIENT_STATES or state.startswith("08"):   # 08: connection exception
            return True
        # No SQLSTATE: the client lost the server (a network error, a restart).
        return isinstance(exc, _psycopg().OperationalError) and not state

    def is_disconnect(self, exc: BaseException, conn: Any) -> bool:
        psycopg = _psycopg()
        return conn is None or bool(conn.closed) or getattr(conn, "broken", False) or \
            isinstance(exc, psycopg.errors.AdminShutdown)
