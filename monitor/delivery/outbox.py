"""Delivering the outbox: every pending (alert, channel) pair, with retries.

An alert is recorded with one pending delivery per channel in the same
transaction as its article; this module sends them. A delivery is claimed under
a lease, so that several processes never send the same one at once, and a
process that dies mid-send leaves it to be taken again when the lease expires:
at least once, at most one repeat per crash.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.delivery.backlog import Backlog
from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.quiet import held_channels
from monitor.errors import DeliveryError, StorageError
from monitor.models import AlertRecord
from monitor.text.safe import one_line
from storage.base import DeliveryRow, Store
from storage.boundary import AsyncStore, async_store

log = logging.getLogger("monitor.deliver")

LEASE_SECONDS = 120.0
BACKOFF_BASE = 30.0          # seconds before the first retry
BACKOFF_CAP = 6 * 3600.0     # never wait longer than this between tries
MAX_ATTEMPTS = 20            # then the delivery is given up as failed
DIGEST_SIZE = 500            # alerts in one digest message; more go in further messages


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reclaim_dead_leases(store: Store) -> list[str]:
    """Release the leases of processes on this host that no longer exist.

    A process killed outright cannot release its leases; others would wait for
    them to expire. On the same host we can tell it is gone, and take over at once.
    """
    host = socket.gethostname()
    released = []
    for owner in store.lease_owners():
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            store.release_owner(owner)
            released.append(owner)
        except PermissionError:
            pass                      # alive, under another user
    if released:
        log.warning("took over the leases of dead processes: %s", ", ".join(released))
    return released


def backoff(attempts: int, retry_after: float | None = None,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failed try: exponential, jittered,
    capped, and never shorter than what the remote side asked for."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    delay *= 0.5 + rand()                       # jitter: 0.5x .. 1.5x
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_CAP))
    return delay


@dataclass
class DeliveryStats:
    delivered: int = 0
    failed: int = 0


def _record(row: DeliveryRow, data: dict) -> AlertRecord:
    """The alert a claimed delivery sends: its stored record, with the spans the
    query engine found (kept beside the record, not in it)."""
    values: dict[str, Any] = {k: data.get(k) for k in AlertRecord.__dataclass_fields__}
    values["highlights"] = list(row.highlights)
    return AlertRecord(**values)


async def deliver_pending(store: Store | AsyncStore, notifiers: dict[str, Notifier], *,
                          now: Callable[[], datetime] | None = None,
                          redact: Callable[[str], str] = lambda s: s,
                          held: Iterable[str] = (),
                          retry_before: datetime | None = None,
                          backlog: Backlog | None = None,
                          working: set[tuple[str, str]] | None = None) -> DeliveryStats:
    """Send every due immediate delivery, however many; channels in parallel, each
    in order. With ``retry_before`` (``check-now``: when its pass began), what waits
    on the backoff of a failure before then is due too: only a channel's own hold
    (Retry-After) is kept, and each delivery is tried once in the pass. The
    ``held`` channels (in quiet hours) are left pending.

    The store may go away at any moment: the outcome of a delivery already sent is
    kept in ``backlog`` and recorded when it is back (so it is not sent again), the
    claims not yet sent are given up (freed when it is back), and StorageError is
    raised. ``working`` holds the (alert id, notifier) being worked on, whose leases
    the daemon renews."""
    now = now or (lambda: datetime.now(UTC))
    backlog = backlog if backlog is not None else Backlog()
    working = working if working is not None else set()
    stats = DeliveryStats()
    db = async_store(store)
    if not await db.call(backlog.flush):
        raise StorageError("the store is unavailable: earlier results are not saved yet")
    while True:
        claimed = await db.claim_deliveries(owner_id(), now(), LEASE_SECONDS, exclude=held,
                                            retry_before=retry_before)
        if not claimed:
            return stats
        keys = [(row.alert_id, row.notifier) for row, _ in claimed]
        working.update(keys)
        try:
            await _send_batch(db, notifiers, claimed, stats, now, redact, backlog)
        finally:
            working.difference_update(keys)


async def _send_batch(db: AsyncStore, notifiers: dict[str, Notifier],
                      claimed: list[tuple[DeliveryRow, dict]], stats: DeliveryStats,
                      now: Callable[[], datetime], redact: Callable[[str], str],
                      backlog: Backlog) -> None:
    by_channel: dict[str, list[tuple[DeliveryRow, dict]]] = {}
    for row, record in claimed:
        by_channel.setdefault(row.notifier, []).append((row, record))
    lost: list[StorageError] = []          # the store went away during the batch
    given_up: list[tuple[str, str]] = []

    store = db.store

    async def save(what: str, write: Callable[[], None]) -> None:
        try:
            await db.call(write)
        except StorageError as exc:
            lost.append(exc)
            backlog.add(what, write)

    async def channel(name: str, items: list[tuple[DeliveryRow, dict]]) -> None:
        notifier = notifiers.get(name)
        for row, record in items:
            if lost:
                # No outcome could be saved now: the rest waits for another pass.
                given_up.append((row.alert_id, name))
                continue
            alert = _record(row, record)
            what = f"outcome of alert {row.alert_id} on {name}"
            if notifier is None:
                await save(what, functools.partial(
                    store.delivery_failed, row.alert_id, name,
                    f"no notifier named {name!r} is configured any more",
                    permanent=True, next_attempt=None))
                stats.failed += 1
                continue
            try:
                thread = (await db.thread_receipt(name, alert.story_id)
                          if notifier.threads else None)
            except StorageError as exc:
                lost.append(exc)
                given_up.append((row.alert_id, name))
                continue
            try:
                receipt = await notifier.send(alert, thread=thread)
            except DeliveryError as exc:
                await save(what, functools.partial(_failed, store, row, name, redact(str(exc)),
                                             exc.permanent, exc.retry_after, now()))
                stats.failed += 1
            except Exception as exc:         # a notifier bug costs this delivery only
                log.exception("notifier %s: unexpected error", name)
                await save(what, functools.partial(
                    _failed, store, row, name, redact(f"internal error: {type(exc).__name__}"),
                    False, None, now()))
                stats.failed += 1
            else:
                await save(what, functools.partial(store.delivery_sent, row.alert_id, name,
                                             receipt or {}, now()))
                stats.delivered += 1

    await asyncio.gather(*(channel(n, items) for n, items in by_channel.items()))
    if lost:
        if given_up:
            backlog.add(f"release of {len(given_up)} claimed deliveries", functools.partial(
                store.release_deliveries, owner_id(), given_up))
        log.warning("the store went away while delivering (%s): %d outcomes kept to be "
                    "saved, %d deliveries left for a later pass", lost[0],
                    len(backlog), len(given_up), extra={"event": "store_unavailable"})
        raise StorageError(str(lost[0]))


def _failed(store: Store, row: DeliveryRow, name: str, error: str, permanent: bool,
            retry_after: float | None, now: datetime) -> None:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        permanent, error = True, f"{error} (gave up after {attempts} attempts)"
    next_attempt = None if permanent else now + timedelta(seconds=backoff(attempts, retry_after))
    hold_until = (now + timedelta(seconds=min(retry_after, BACKOFF_CAP))
                  if retry_after and not permanent else None)
    log.warning("delivery of alert %s to %s failed (%s): %s", row.alert_id, name,
                "permanent" if permanent else f"retry at {next_attempt:%H:%M:%S}",
                one_line(error, 300),
                extra={"alert": row.alert_id, "notifier": name, "event": "delivery_failed"})
    store.delivery_failed(row.alert_id, name, error, permanent=permanent,
                          next_attempt=next_attempt, hold_until=hold_until)


async def deliver_digest(store: Store | AsyncStore, notifier: Notifier, *,
                         now: Callable[[], datetime] | None = None,
                         backlog: Backlog | None = None) -> DeliveryStats:
    """Send a digest channel's pending alerts as messages of up to DIGEST_SIZE
    alerts, grouped by story.

    On failure every alert stays pending and goes into the next digest: nothing
    is lost between digests or across a restart. A digest sent while the store
    went away is recorded (``backlog``) when it is back.
    """
    now = now or (lambda: datetime.now(UTC))
    backlog = backlog if backlog is not None else Backlog()
    stats = DeliveryStats()
    db = async_store(store)
    sync_store = db.store
    if not await db.call(backlog.flush):
        raise StorageError("the store is unavailable: earlier results are not saved yet")
    while True:
        claimed = await db.claim_deliveries(owner_id(), now(), LEASE_SECONDS, digest=True,
                                            notifier=notifier.name, limit=DIGEST_SIZE)
        if not claimed:
            return stats
        alerts = sorted((_record(row, record) for row, record in claimed),
                        key=lambda a: a.story_id)
        try:
            receipt = await notifier.send_digest(alerts)
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not lose the alerts
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            message = (str(exc) if isinstance(exc, DeliveryError)
                       else f"internal error: {type(exc).__name__}")
            # Digests are retried at the next scheduled digest, not given up on.
            outcome: list[Callable[[], None]] = [
                functools.partial(sync_store.delivery_failed, row.alert_id, notifier.name,
                                  message, permanent=False, next_attempt=None)
                for row, _ in claimed]
            log.warning("digest %s failed (%s): %s", notifier.name,
                        "permanent" if permanent else "will retry", one_line(message, 300))
            stats.failed += len(claimed)
            await db.call(_save_all, backlog, f"outcome of a digest on {notifier.name}",
                          outcome)
            return stats
        stats.delivered += len(claimed)
        await db.call(_save_all, backlog, f"outcome of a digest on {notifier.name}",
                      [functools.partial(sync_store.delivery_sent, row.alert_id, notifier.name,
                                         receipt or {}, now()) for row, _ in claimed])


def _save_all(backlog: Backlog, what: str, writes: Sequence[Callable[[], None]]) -> None:
    """Run the writes; from the first the store fails, keep them all for later."""
    for i, write in enumerate(writes):
        try:
            write()
        except StorageError:
            for rest in writes[i:]:
                backlog.add(what, rest)
            raise


def digest_due(schedule: str, timezone_name: str, oldest_pending: datetime | None,
               now: datetime) -> bool:
    """A digest is due when one of its scheduled times has passed since its oldest
    pending alert: so a digest missed while the monitor was down (or between two
    cron-driven ``check-now`` runs) goes out at the next chance, and none is empty."""
    if oldest_pending is None:
        return False
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(schedule, timezone=timezone_name)
    fire = trigger.get_next_fire_time(None, oldest_pending)
    return fire is not None and fire <= now


async def deliver_due_digests(store: Store | AsyncStore, notifiers: dict[str, Notifier], config, *,
                              now: Callable[[], datetime] | None = None,
                              backlog: Backlog | None = None) -> DeliveryStats:
    """Send every digest channel whose scheduled time has come."""
    now = now or (lambda: datetime.now(UTC))
    total = DeliveryStats()
    db = async_store(store)
    for n in config.notifiers:
        if n.mode != "digest" or n.name not in notifiers:
            continue
        oldest = await db.oldest_pending_delivery(n.name, digest=True)
        if digest_due(n.schedule, n.timezone, oldest, now()):
            stats = await deliver_digest(db, notifiers[n.name], now=now, backlog=backlog)
            total.delivered += stats.delivered
            total.failed += stats.failed
    return total


def quiet_channels(config, now: datetime | None = None) -> dict[str, datetime]:
    """The channels in quiet hours now, each with the time its quiet hours end."""
    return held_channels(config.notifiers, now or datetime.now(UTC))


async def deliver_due(store: Store | AsyncStore, notifiers: dict[str, Notifier], config, *,
                      redact: Callable[[str], str] = lambda s: s,
                      retry_before: datetime | None = None,
                      backlog: Backlog | None = None,
                      working: set[tuple[str, str]] | None = None) -> DeliveryStats:
    """Every due delivery: the immediate ones (but those of channels in quiet hours),
    then the digests whose time has come."""
    stats = await deliver_pending(store, notifiers, redact=redact, held=quiet_channels(config),
                                  retry_before=retry_before, backlog=backlog, working=working)
    digests = await deliver_due_digests(store, notifiers, config, backlog=backlog)
    return DeliveryStats(stats.delivered + digests.delivered, stats.failed + digests.failed)


def pending_due(store: Store, config, now: datetime | None = None) -> int:
    """Deliveries that are due and still pending: immediate ones no hold keeps back
    (Retry-After, quiet hours), and those of digests whose time has come."""
    now = now or datetime.now(UTC)
    pending = store.count_pending_deliveries(now, exclude=quiet_channels(config, now))
    for n in config.notifiers:
        if n.mode == "digest" and digest_due(
                n.schedule, n.timezone, store.oldest_pending_delivery(n.name, digest=True), now):
            pending += store.count_pending_deliveries(now, digest=True, notifier=n.name)
    return pending
