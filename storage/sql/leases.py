"""The SQL store's leases on sources and deliveries, for nodes sharing a store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from storage.base import LeaseStore
from storage.sql.core import SQLCore, chunks, marks, ts


class SQLLeases(SQLCore, LeaseStore):
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
            for chunk in chunks(names):
                rows = self._fetch(
                    f"SELECT s.name FROM sources s WHERE s.name IN ({marks(len(chunk))})"
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
