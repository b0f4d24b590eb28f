"""The daemon (``run``): every source on its own schedule, deliveries retried,
digests on their cron schedules, a clean stop on SIGTERM or SIGINT.

APScheduler (3.x) keeps the clock. Its jobs are small:

- ``tick`` (every few seconds): claim the sources that are due, under a lease in
  the store, and poll each (``Pipeline.poll``). When each source is due is decided
  by the polling policy (``monitor.sources.polling``: the interval with jitter, adapted to
  how often the source publishes, Cache-Control/ttl floors, backoff on errors),
  and kept in the store, so that any number of processes sharing a store poll
  each source once, and a dead process's sources are taken over when its leases
  expire.
- ``deliver`` (every 30 s, and right after a poll that raised alerts).
- one ``digest`` job per digest channel, on its cron schedule.
- ``maintain`` keeps this process's leases alive while it works, takes over the
  leases of dead processes on this host at once (those of other hosts expire
  after SOURCE_LEASE), and prunes story index rows older than the story window.

Every piece of work is idempotent against the store, so a stop at any moment
leaves nothing half-done: an article is recorded with its alerts in one
transaction, and a delivery is either marked sent or stays pending.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import time
from datetime import UTC, datetime, timedelta

from monitor.config import Config, SourceConfig
from monitor.dedup.fingerprint import STORY_WINDOW
from monitor.delivery.backlog import Backlog
from monitor.delivery.outbox import deliver_digest, deliver_due, owner_id, reclaim_dead_leases
from monitor.errors import StorageError
from monitor.redaction import redactor
from monitor.runtime import Runtime
from monitor.service.metrics import Metrics, probe_loop_lag
from monitor.service.web import WebServer, bind, create_app
from storage.base import Store

log = logging.getLogger("monitor.service")

TICK = 5.0                    # seconds between looks for due sources
DELIVERY_INTERVAL = 30.0      # seconds between passes over pending deliveries
SOURCE_LEASE = 120.0          # a poll's lease; renewed while it runs
MAINTENANCE = 10.0            # seconds between lease renewals and dead-lease checks
PRUNE_EVERY = timedelta(hours=1)
STOP_GRACE = 8.0              # seconds in-flight work gets after SIGTERM


def run_service(config: Config, *, http_address: str | None = None, tick: float = TICK) -> int:
    """Run until SIGTERM or SIGINT; logging is set up by the caller (the command line)."""
    return asyncio.run(Service(config, tick=tick).run(http_address))


class Service:
    def __init__(self, config: Config, *, tick: float = TICK):
        self.config = config
        self.tick_seconds = tick
        self.owner = owner_id()
        self.metrics = Metrics()
        self.inflight: set[asyncio.Task] = set()
        # What this node works on: the only leases it renews.
        self.polling: set[str] = set()
        self.delivering: set[tuple[str, str]] = set()
        # Writes that failed while the store was away, saved when it is back.
        self.backlog = Backlog()
        self.last_prune = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def run(self, http_address: str | None = None) -> int:
        web_socket = None
        if http_address:
            try:
                web_socket = bind(http_address)
            except OSError as exc:
                log.error("cannot listen on %s: %s", http_address, exc.strerror or exc,
                          extra={"event": "http"})
                return 1
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)

        # A damaged file is refused at start, before anything is written to it.
        async with Runtime(self.config, check=True) as runtime:
            await self._work(runtime, web_socket)
        log.info("stopped", extra={"event": "stopped"})
        return 0

    async def _work(self, runtime: Runtime, web_socket: socket.socket | None) -> None:
        """Poll, deliver and serve until told to stop, then give the work in flight
        its grace time."""
        # APScheduler is imported by the daemon alone, not by every command.
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        self.store = runtime.store
        self.db = runtime.db                 # every store call from here goes through it
        await self.db.call(reclaim_dead_leases, self.store)
        self.notifiers = runtime.notifiers
        self.pipeline = runtime.pipeline
        # A connection of its own: the page's reads never wait for the daemon's
        # store lock, nor the daemon's writes for a page.
        web = await self._start_web(web_socket, runtime.connect()) if web_socket else None

        scheduler = AsyncIOScheduler(timezone=UTC)
        now = self.now()
        scheduler.add_job(self._spawn, IntervalTrigger(seconds=self.tick_seconds),
                          args=[self._tick], id="tick", next_run_time=now,
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._spawn, IntervalTrigger(seconds=DELIVERY_INTERVAL),
                          args=[self._deliver], id="deliver", next_run_time=now,
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._spawn, IntervalTrigger(seconds=MAINTENANCE),
                          args=[self._maintain], id="maintain", max_instances=1, coalesce=True)
        for n in self.config.notifiers:
            if n.mode == "digest":
                scheduler.add_job(self._spawn,
                                  CronTrigger.from_crontab(n.schedule, timezone=n.timezone),
                                  args=[self._digest, n.name], id=f"digest:{n.name}",
                                  max_instances=1, coalesce=True, misfire_grace_time=3600)
        scheduler.start()
        lag_probe = asyncio.create_task(probe_loop_lag(self.metrics, self.stopping))
        log.info("started: %d sources, %d rules, owner %s", len(self.config.sources),
                 len(self.config.rules), self.owner, extra={"event": "start"})

        await self.stopping.wait()

        log.info("stopping: %d tasks in flight", len(self.inflight), extra={"event": "stop"})
        scheduler.shutdown(wait=False)
        lag_probe.cancel()
        if self.inflight:
            _, pending = await asyncio.wait(self.inflight, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()     # safe: whatever was not committed is simply done again
            if pending:
                await asyncio.wait(pending, timeout=1)
        for name in list(self.polling):
            await self._release(name)
        await self.db.call(self.backlog.flush)    # best effort: else the leases run out
        if web is not None:
            await web.stop()
        runtime.close_workers(now=True)    # what was still running had its grace time

    async def _start_web(self, sock: socket.socket, store: Store) -> WebServer:
        app = create_app(self.config, store, health=self.metrics.health,
                         metrics=lambda: self._prometheus(store))
        web = WebServer(app, sock)
        await web.start()
        return web

    def _prometheus(self, store: Store) -> str:
        """The metrics page: this process's counters, and what the store says."""
        return self.metrics.prometheus(
            [s.name for s in self.config.sources],
            oldest_pending=store.oldest_pending_delivery(digest=False),  # digests wait by design
            states=store.all_source_states())

    async def _spawn(self, fn, *args) -> None:
        if self.stopping.is_set():
            return
        task = asyncio.current_task()
        assert task is not None             # the scheduler runs each job in a task
        self.inflight.add(task)
        try:
            await fn(*args)
        except asyncio.CancelledError:
            if self.stopping.is_set():
                return            # cut short by the stop: nothing went wrong
            raise
        except StorageError as exc:
            # The store is away: this job waits for the next turn; the daemon goes on.
            log.warning("%s: the store is unavailable: %s", getattr(fn, "__name__", fn), exc,
                        extra={"event": "store_unavailable"})
        except Exception:
            log.exception("job %s failed", getattr(fn, "__name__", fn))
        finally:
            self.inflight.discard(task)

    async def _release(self, name: str) -> None:
        """Give up this node's lease on a source now, or as soon as the store is back."""
        write = functools.partial(self.store.release_source, name, self.owner)
        try:
            await self.db.call(write)
        except StorageError:
            self.backlog.add(f"release of source {name}", write)

    async def _tick(self) -> None:
        names = [s.name for s in self.config.sources if s.name not in self.polling]
        try:
            # Leases given up while the store was away are freed before claiming.
            if not await self.db.call(self.backlog.flush):
                raise StorageError("earlier writes are not saved yet")
            due = await self.db.claim_due_sources(self.owner, self.now(), SOURCE_LEASE, names)
        except Exception:
            # The store is down: /healthz says so until a cycle succeeds again.
            self.metrics.cycle(ok=False, seconds=0.0)
            raise
        if due:
            # The polls run on their own: a slow source never holds up the next tick.
            self.polling.update(due)
            batch = asyncio.create_task(self._spawn(self._poll_batch, due))
            self.inflight.add(batch)           # also keeps a reference to the task
            batch.add_done_callback(self.inflight.discard)

    async def _poll_batch(self, names: list[str]) -> None:
        started = time.monotonic()
        results = await asyncio.gather(*(self._poll(self.config.source(n)) for n in names))
        self.metrics.cycle(ok=all(results), seconds=time.monotonic() - started)

    async def _poll(self, source: SourceConfig) -> bool:
        self.polling.add(source.name)
        try:
            result = await self.pipeline.poll(source)
        finally:
            self.polling.discard(source.name)
            await self._release(source.name)
        self.metrics.polled(result)
        log.info("polled %s: %s, %d entries, %d new, %d duplicates, %d alerts%s", source.name,
                 result.status, result.entries, result.new_articles, result.duplicates,
                 result.alerts, f": {result.error}" if result.error else "",
                 extra={"source": source.name, "event": "poll"})
        if result.alerts:
            try:
                await self._deliver()
            except StorageError as exc:
                log.warning("deliveries wait: the store is unavailable: %s", exc,
                            extra={"event": "store_unavailable"})
        return result.status != "error"

    async def _deliver(self) -> None:
        stats = await deliver_due(self.db, self.notifiers, self.config,
                                  redact=redactor(self.config.secrets),
                                  backlog=self.backlog, working=self.delivering)
        self.metrics.delivered(stats)
        if stats.delivered or stats.failed:
            log.info("deliveries: %d sent, %d failed", stats.delivered, stats.failed,
                     extra={"event": "deliver"})

    async def _digest(self, name: str) -> None:
        stats = await deliver_digest(self.db, self.notifiers[name], backlog=self.backlog)
        self.metrics.delivered(stats)
        log.info("digest %s: %d alerts sent, %d failed", name, stats.delivered, stats.failed,
                 extra={"notifier": name, "event": "digest"})

    async def _maintain(self) -> None:
        now = self.now()
        await self.db.call(self.backlog.flush)
        # Only what this node is working on: work it gave up (the store went away
        # under it) keeps no lease alive, and another pass takes it.
        await self.db.renew_leases(self.owner, now, SOURCE_LEASE,
                                   sources=list(self.polling), deliveries=list(self.delivering))
        await self.db.call(reclaim_dead_leases, self.store)
        if now - self.last_prune > PRUNE_EVERY:
            # Story lookups only look back STORY_WINDOW: older index rows are dead weight.
            await self.db.prune(now - STORY_WINDOW)
            self.last_prune = now
