"""The SQL store's outbox: alerts, their deliveries, and muted stories."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from storage.base import AlertRow, DeliveryRow, OutboxStore
from storage.sql.core import SQLCore, chunks, dt, marks, ts


class SQLOutbox(SQLCore, OutboxStore):
    def alert_days(self, since: datetime) -> dict[tuple[str, str], int]:
        rows = self._run(lambda: self._fetch(
            "SELECT source, substr(created_at, 1, 10), COUNT(*) FROM alerts"
            " WHERE created_at >= ? AND source IS NOT NULL"
            " GROUP BY source, substr(created_at, 1, 10)", (ts(since)[:10],)), write=False)
        return {(r[0], r[1]): r[2] for r in rows}


    # alerts and deliveries --------------------------------------------------------
    _ALERT_COLS = ("a.id, a.rule, a.article_id, a.story_id, a.followup, a.created_at,"
                   " a.record, a.source, a.highlights")

    def list_alerts(self, *, pending_only: bool = False, limit: int = 50,
                    rule: str | None = None, source: str | None = None,
                    story_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None,
                    before: tuple[datetime, str] | None = None) -> list[AlertRow]:
        conditions: list[str] = []
        params: list[Any] = []
        if pending_only:
            conditions.append("a.id IN (SELECT d.alert_id FROM deliveries d"
                              " WHERE d.state = 'pending')")
        for column, value in (("a.rule", rule), ("a.source", source), ("a.story_id", story_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            conditions.append("a.created_at >= ?")
            params.append(ts(since))
        if until is not None:
            conditions.append("a.created_at < ?")
            params.append(ts(until))
        if before is not None:
            conditions.append("(a.created_at < ? OR (a.created_at = ? AND a.id < ?))")
            params += [ts(before[0]), ts(before[0]), before[1]]
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        return self._alerts(f"SELECT {self._ALERT_COLS} FROM alerts a{where}"
                            f" ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
                            params + [limit])

    def get_alert(self, alert_id: str) -> AlertRow | None:
        alerts = self._alerts(f"SELECT {self._ALERT_COLS} FROM alerts a WHERE a.id = ?",
                              [alert_id])
        return alerts[0] if alerts else None

    def _alerts(self, sql: str, params: list) -> list[AlertRow]:
        def work() -> list[AlertRow]:
            rows = self._fetch(sql, params)
            alerts = [AlertRow(alert_id=r[0], rule=r[1], article_id=r[2], story_id=r[3],
                               followup=bool(r[4]), created_at=dt(r[5]),
                               record=json.loads(r[6]), source=r[7],
                               highlights=[(s, e) for s, e in json.loads(r[8] or "[]")])
                      for r in rows]
            by_id = {a.alert_id: a for a in alerts}
            for chunk in chunks(list(by_id)):
                for d in self._fetch(f"SELECT {self._DELIVERY_COLS} FROM deliveries"
                                     f" WHERE alert_id IN ({marks(len(chunk))})"
                                     f" ORDER BY notifier", chunk):
                    by_id[d[0]].deliveries.append(self._delivery(d))
            return alerts
        return self._run(work, write=False)

    _DELIVERY_COLS = ("alert_id, notifier, state, attempts, last_error, next_attempt, sent_at,"
                      " digest, receipt")

    @staticmethod
    def _delivery(r: tuple) -> DeliveryRow:
        return DeliveryRow(alert_id=r[0], notifier=r[1], state=r[2], attempts=r[3],
                           last_error=r[4], next_attempt=dt(r[5]), sent_at=dt(r[6]),
                           digest=bool(r[7]), receipt=json.loads(r[8]) if r[8] else None)

    def oldest_pending_delivery(self, notifier: str | None = None,
                                digest: bool | None = None) -> datetime | None:
        where, params = "", list[Any]()
        if notifier is not None:
            where += " AND d.notifier = ?"
            params.append(notifier)
        if digest is not None:
            where += " AND d.digest = ?"
            params.append(1 if digest else 0)
        rows = self._run(lambda: self._fetch(
            "SELECT MIN(d.queued_at) FROM deliveries d WHERE d.state = 'pending'" + where,
            params), write=False)
        return dt(rows[0][0]) if rows else None

    def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float, *,
                         digest: bool = False, notifier: str | None = None,
                         limit: int = 100, exclude: Iterable[str] = (),
                         retry_before: datetime | None = None
                         ) -> list[tuple[DeliveryRow, dict]]:
        # A lease that has run out (its node died or hangs) is free again: the
        # delivery is taken over, at least once, at most one repeat per crash.
        until = ts(now + timedelta(seconds=lease_seconds))
        params: list[Any] = [1 if digest else 0, ts(now), ts(now)]
        extra = ""
        if notifier is not None:
            extra = " AND d.notifier = ?"
            params.append(notifier)
        if not digest:
            if retry_before is None:
                extra += " AND (d.next_attempt IS NULL OR d.next_attempt <= ?)"
                params.append(ts(now))
            else:
                extra += (" AND (d.next_attempt IS NULL OR d.next_attempt <= ?"
                          " OR d.last_attempt IS NULL OR d.last_attempt < ?)")
                params += [ts(now), ts(retry_before)]
        held = sorted(set(exclude))
        if held:
            extra += f" AND d.notifier NOT IN ({marks(len(held))})"
            params.extend(held)

        def work() -> list[tuple]:
            # SQLite: under BEGIN IMMEDIATE; PostgreSQL: rows another node is
            # claiming right now are skipped, not waited for.
            rows = self._fetch(
                f"SELECT d.alert_id, d.notifier, d.state, d.attempts, d.last_error,"
                f" d.next_attempt, d.sent_at, d.digest, d.receipt, a.record, a.highlights"
                f" FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                f" WHERE d.state = 'pending' AND d.digest = ?"
                f" AND (d.lease_until IS NULL OR d.lease_until <= ?)"
                f" AND (d.hold_until IS NULL OR d.hold_until <= ?){extra}"
                f" ORDER BY d.queued_at, d.alert_id, d.notifier LIMIT ?"
                f"{self.dialect.lock_skip('d')}",
                params + [limit])
            self._executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_until = ?, last_attempt = ? "
                "WHERE alert_id = ? AND notifier = ?",
                [(owner, until, ts(now), r[0], r[1]) for r in rows])
            return rows
        rows = self._run(work)
        claimed = []
        for r in rows:
            delivery = self._delivery(r[:9])
            delivery.highlights = [(s, e) for s, e in json.loads(r[10] or "[]")]
            claimed.append((delivery, json.loads(r[9])))
        return claimed

    def thread_receipt(self, notifier: str, story_id: str, rule: str | None = None) -> dict | None:
        """The receipt of the first sent delivery of this story on this channel
        (of this rule's alerts only, when ``rule`` is given)."""
        params: list[Any] = [notifier, story_id]
        by_rule = ""
        if rule is not None:
            by_rule = " AND a.rule = ?"
            params.append(rule)
        rows = self._run(lambda: self._fetch(
            "SELECT d.receipt FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.notifier = ? AND a.story_id = ? AND d.state = 'sent'"
            f" AND d.receipt IS NOT NULL AND d.receipt <> '{{}}'{by_rule}"
            " ORDER BY d.sent_at, d.alert_id LIMIT 1", params), write=False)
        return json.loads(rows[0][0]) if rows else None

    def delivery_sent(self, alert_id: str, notifier: str, receipt: dict, now: datetime) -> None:
        self._run(lambda: self._execute_count(
            "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ?,"
            " receipt = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL"
            " WHERE alert_id = ? AND notifier = ?",
            (ts(now), json.dumps(receipt or {}), alert_id, notifier)))

    def delivery_failed(self, alert_id: str, notifier: str, error: str, *,
                        permanent: bool, next_attempt: datetime | None,
                        hold_until: datetime | None = None) -> None:
        self._run(lambda: self._execute_count(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt = ?, hold_until = ?, lease_owner = NULL, lease_until = NULL"
            " WHERE alert_id = ? AND notifier = ?",
            ("failed" if permanent else "pending", error[:1000], ts(next_attempt),
             ts(hold_until), alert_id, notifier)))

    def count_pending_deliveries(self, now: datetime, *, digest: bool = False,
                                 notifier: str | None = None,
                                 exclude: Iterable[str] = ()) -> int:
        where, params = "", [1 if digest else 0, ts(now), ts(now)]
        if notifier is not None:
            where, params = " AND notifier = ?", params + [notifier]
        held = sorted(set(exclude))
        if held:
            where += f" AND notifier NOT IN ({marks(len(held))})"
            params += held
        rows = self._run(lambda: self._fetch(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND digest = ?"
            " AND (hold_until IS NULL OR hold_until <= ?)"
            " AND (lease_until IS NULL OR lease_until <= ?)" + where, params), write=False)
        return rows[0][0]

    # stories ------------------------------------------------------------------------
    def mute_story(self, story_id: str, now: datetime) -> bool:
        return bool(self._run(lambda: self._execute_count(
            self.dialect.insert_ignore("muted_stories", "(story_id, muted_at) VALUES (?, ?)",
                                       "story_id"), (story_id, ts(now)))))

    def unmute_story(self, story_id: str) -> bool:
        return bool(self._run(lambda: self._execute_count(
            "DELETE FROM muted_stories WHERE story_id = ?", (story_id,))))

    def muted_stories(self, story_ids: Iterable[str] | None = None) -> dict[str, datetime]:
        if story_ids is None:
            rows = self._run(lambda: self._fetch("SELECT story_id, muted_at FROM muted_stories"),
                             write=False)
            return {r[0]: dt(r[1]) for r in rows}
        ids = list(dict.fromkeys(story_ids))

        def work() -> dict[str, datetime]:
            out: dict[str, datetime] = {}
            for chunk in chunks(ids):
                for r in self._fetch(f"SELECT story_id, muted_at FROM muted_stories"
                                     f" WHERE story_id IN ({marks(len(chunk))})", chunk):
                    out[r[0]] = dt(r[1])
            return out
        return self._run(work, write=False) if ids else {}

