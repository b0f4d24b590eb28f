"""The SQL store's core: one connection, its transactions, and the one place
where transient errors are retried (``SQLCore.run``).

Times are stored as ISO 8601 text in UTC (microseconds, '+00:00'), which sorts
correctly as text in both databases and keeps the schema identical.

Errors: every driver error leaves the store as ``StorageError`` (a message
that names the database, never a password). Transient ones -- SQLite busy
beyond its busy timeout, PostgreSQL serialization failures and deadlocks, a
dropped connection (reconnected once) -- are retried in one place, ``_run``,
which runs a whole transaction again. The body of ``exclusive()`` is the
caller's code and cannot be re-run: only its BEGIN is retried.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from monitor.errors import StorageError
from storage.dialects import Dialect

# Lock key for exclusive transactions on PostgreSQL (pg_advisory_xact_lock).
EXCLUSIVE_LOCK_KEY = 0x6E6D6F6E  # "nmon"

T = TypeVar("T")


@overload
def ts(value: datetime) -> str: ...
@overload
def ts(value: None) -> None: ...
def ts(value: datetime | None) -> str | None:
    """A time as stored: ISO 8601 text in UTC (a naive time is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@overload
def dt(value: str) -> datetime: ...
@overload
def dt(value: None) -> None: ...
def dt(value: str | None) -> datetime | None:
    """A stored time read back (None, or empty, stays None)."""
    return datetime.fromisoformat(value) if value else None


def chunks(items: list, size: int = 500) -> Iterator[list]:
    """``items`` in lists of at most ``size`` (bound parameters per statement)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def marks(n: int) -> str:
    """``n`` placeholders, comma-separated."""
    return ",".join("?" * n)


class SQLCore:
    """The connection, the statement helpers, transactions and retries."""

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
        except Exception:  # noqa: BLE001 - a broken connection may fail any way on close
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

