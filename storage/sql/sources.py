"""The SQL store's sources: polling state, seen entries and poll counts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from storage.base import SourceState, SourceStore
from storage.sql.core import SQLCore, chunks, dt, marks, ts


def insert_seen(core: SQLCore, source: str, keys: Iterable[str], article_id: int | None) -> None:
    """Record entry keys as seen by ``source``, in the transaction under way."""
    now = ts(datetime.now(UTC))
    rows = [(source, k, article_id, now) for k in dict.fromkeys(keys) if k]
    core._executemany(core.dialect.insert_ignore(
        "seen_entries", "(source, entry_key, article_id, first_seen) VALUES (?, ?, ?, ?)",
        "source, entry_key"), rows)


class SQLSources(SQLCore, SourceStore):
    _SOURCE_COLS = ("name, etag, last_modified, body_hash, last_polled, last_success, last_error,"
                    " last_error_at, consecutive_failures, next_poll, hold_until")

    def source_state(self, name: str) -> SourceState:
        rows = self._run(lambda: self._fetch(
            f"SELECT {self._SOURCE_COLS} FROM sources WHERE name = ?", (name,)), write=False)
        return self._state(rows[0]) if rows else SourceState(name=name)

    def all_source_states(self) -> dict[str, SourceState]:
        rows = self._run(lambda: self._fetch(f"SELECT {self._SOURCE_COLS} FROM sources"),
                         write=False)
        return {r[0]: self._state(r) for r in rows}

    @staticmethod
    def _state(r: tuple) -> SourceState:
        return SourceState(name=r[0], etag=r[1], last_modified=r[2], body_hash=r[3],
                           last_polled=dt(r[4]), last_success=dt(r[5]), last_error=r[6],
                           last_error_at=dt(r[7]), consecutive_failures=r[8] or 0,
                           next_poll=dt(r[9]), hold_until=dt(r[10]))

    def save_source_state(self, s: SourceState) -> None:
        # The lease columns are not in the list: saving state never takes,
        # extends or drops a lease.
        self._run(lambda: self._execute_count(self.dialect.upsert(
            "sources", ["name", "etag", "last_modified", "body_hash", "last_polled",
                        "last_success", "last_error", "last_error_at",
                        "consecutive_failures", "next_poll", "hold_until"], "name"),
            (s.name, s.etag, s.last_modified, s.body_hash, ts(s.last_polled),
             ts(s.last_success), s.last_error, ts(s.last_error_at),
             s.consecutive_failures, ts(s.next_poll), ts(s.hold_until))))

    def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(k for k in keys if k))

        def work() -> set[str]:
            seen: set[str] = set()
            for chunk in chunks(keys):
                seen.update(r[0] for r in self._fetch(
                    f"SELECT entry_key FROM seen_entries WHERE source = ?"
                    f" AND entry_key IN ({marks(len(chunk))})", [source] + chunk))
            return seen
        return self._run(work, write=False) if keys else set()

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        urls = list(dict.fromkeys(u for u in urls if u))

        def work() -> set[str]:
            known: set[str] = set()
            for chunk in chunks(urls):
                places = marks(len(chunk))
                known.update(r[0] for r in self._fetch(
                    f"SELECT url FROM articles WHERE url IN ({places}) "
                    f"UNION SELECT url FROM url_aliases WHERE url IN ({places})", chunk + chunk))
            return known
        return self._run(work, write=False) if urls else set()

    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        keys = [k for k in keys if k]
        if keys:
            self._run(lambda: insert_seen(self, source, keys, article_id))

    def record_poll(self, source: str, when: datetime, *, ok: bool) -> None:
        day = ts(when)[:10]
        self._run(lambda: self._execute_count(
            "INSERT INTO poll_days (source, day, ok, errors) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, day) DO UPDATE SET ok = poll_days.ok + excluded.ok,"
            " errors = poll_days.errors + excluded.errors",
            (source, day, 1 if ok else 0, 0 if ok else 1)))

    def poll_days(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        rows = self._run(lambda: self._fetch(
            "SELECT source, day, ok, errors FROM poll_days WHERE day >= ?",
            (ts(since)[:10],)), write=False)
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

