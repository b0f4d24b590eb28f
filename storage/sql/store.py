"""``SQLStore``: every part of the SQL store in one class, over one connection."""

from __future__ import annotations

from storage.base import Store
from storage.sql.articles import SQLArticles
from storage.sql.leases import SQLLeases
from storage.sql.outbox import SQLOutbox
from storage.sql.sources import SQLSources


class SQLStore(SQLSources, SQLArticles, SQLOutbox, SQLLeases, Store):
    """One SQL store for SQLite and PostgreSQL; the differences live in ``Dialect``.

    Each part (sources, articles, outbox, leases) is a mixin over ``SQLCore``,
    which owns the connection and runs every statement through its retries."""
