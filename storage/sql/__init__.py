"""One SQL store for SQLite and PostgreSQL, in parts by concern.

``core`` (connection, transactions, retries), ``sources``, ``articles`` (with the
exclusive ``SQLTransaction``), ``outbox`` and ``leases``; ``store.SQLStore`` is
all of them. The differences between the databases live in ``storage.dialects``.
"""

from storage.sql.articles import PER_BAND, SQLTransaction
from storage.sql.core import EXCLUSIVE_LOCK_KEY, dt, ts
from storage.sql.store import SQLStore

__all__ = ["EXCLUSIVE_LOCK_KEY", "PER_BAND", "SQLStore", "SQLTransaction", "dt", "ts"]
