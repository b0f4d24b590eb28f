"""Persistence: the interfaces (``storage.base``), SQLite and PostgreSQL behind them
(``storage.sql``), a store in memory (``storage.memory``), and the one way async
code reaches a store (``storage.boundary``)."""

from __future__ import annotations

from monitor.errors import ConfigError
from storage.base import Store
from storage.boundary import AsyncStore, async_store
from storage.dialects import SQLiteDialect
from storage.memory import MemoryStore
from storage.postgres import PostgresDialect
from storage.sql import SQLStore


def open_store(url: str, *, migrate: bool = True, scratch: bool = False,
               check: bool = False) -> Store:
    """Open the store named by a URL: ``sqlite:///relative/path.db``,
    ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` or ``postgresql://...``.

    ``scratch`` (a dry run): the store reads what is stored and takes writes like
    any other, so a pass over it decides exactly as a real one would, but keeps
    nothing: SQLite works on a copy in memory (no file is created or changed),
    PostgreSQL in one transaction that closing the store rolls back.

    ``check``: refuse (StorageError, saying what to do) a damaged database before
    anything is written to it."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise ConfigError(f"storage url {url!r}: no database path")
        store = SQLStore(url, SQLiteDialect(path, scratch=scratch))
    elif url.startswith(("postgresql://", "postgres://")):
        store = SQLStore(url, PostgresDialect(url, scratch=scratch))
    else:
        raise ConfigError(f"storage url {url!r}: expected sqlite:/// or postgresql://")
    if check:
        try:
            store.check()
        except BaseException:
            store.close()
            raise
    if migrate:
        store.migrate()
    return store


__all__ = ["AsyncStore", "MemoryStore", "Store", "async_store", "open_store"]
