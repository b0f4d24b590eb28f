"""The daemon (``run``): every source on its own interval, deliveries retried,
digests on their schedules, a clean stop on SIGTERM or SIGINT.

APScheduler (3.x) keeps the clock; the work itself is the same as ``check-now``
(one ``Pipeline.poll`` per due source, ``deliver_pending`` for the outbox).
Every piece of work is idempotent against the store, so a stop at any moment
leaves nothing half-done: an article is recorded with its alerts in one
transaction, and a delivery is either marked sent or stays pending.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import datetime, timedelta, timezone

from monitor.config import Config, SourceConfig

log = logging.getLogger("monitor.service")

DELIVERY_INTERVAL = 30.0      # seconds between passes over pending deliveries
STOP_GRACE = 8.0              # seconds in-flight work gets after SIGTERM


def run_service(config: Config, *, http_address: str | None = None) -> int:
    from monitor.logs import setup_logging

    setup_logging(1, secrets=config.secrets, json_lines=True)
    return asyncio.run(Service(config).run(http_address))


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.stopping = asyncio.Event()
        self.inflight: set[asyncio.Task] = set()
        self.last_cycle_ok: datetime | None = None

    async def run(self, http_address: str | None) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        from monitor.cli import _fetch_policy, build_notifiers
        from monitor.fetch import Fetcher
        from monitor.pipeline import Pipeline
        from storage import open_store

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)

        self.store = open_store(self.config.storage_url)
        self.http = Fetcher(_fetch_policy(self.config))
        self.notifiers = build_notifiers(self.config, self.http)
        self.pipeline = Pipeline(self.config, self.store, self.http)
        scheduler = AsyncIOScheduler(timezone=timezone.utc)
        states = self.store.all_source_states()
        now = datetime.now(timezone.utc)
        for source in self.config.sources:
            state = states.get(source.name)
            first = state.next_poll if state and state.next_poll else now
            # Jitter spreads sources that share an interval over time.
            scheduler.add_job(self._spawn, IntervalTrigger(seconds=source.interval,
                                                           jitter=min(60, source.interval / 10)),
                              args=[self._poll, source], id=f"source:{source.name}",
                              next_run_time=max(first, now) + timedelta(seconds=random.uniform(0, 5)),
                              max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.add_job(self._spawn, IntervalTrigger(seconds=DELIVERY_INTERVAL),
                          args=[self._deliver], id="deliveries", next_run_time=now,
                          max_instances=1, coalesce=True)
        for n in self.config.notifiers:
            if n.mode == "digest":
                scheduler.add_job(self._spawn,
                                  CronTrigger.from_crontab(n.schedule, timezone=n.timezone),
                                  args=[self._digest, n.name], id=f"digest:{n.name}",
                                  max_instances=1, coalesce=True, misfire_grace_time=3600)
        scheduler.start()
        log.info("started: %d sources, %d rules", len(self.config.sources), len(self.config.rules))
        await self.stopping.wait()
        log.info("stopping: %d tasks in flight", len(self.inflight))
        scheduler.shutdown(wait=False)
        if self.inflight:
            _, pending = await asyncio.wait(self.inflight, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()          # left safely pending: nothing was half-recorded
            if pending:
                await asyncio.wait(pending, timeout=1)
        for notifier in self.notifiers.values():
            await notifier.aclose()
        await self.http.aclose()
        self.store.close()
        log.info("stopped")
        return 0

    async def _spawn(self, fn, *args) -> None:
        if self.stopping.is_set():
            return
        task = asyncio.current_task()
        self.inflight.add(task)
        try:
            await fn(*args)
        except Exception:
            log.exception("job %s failed", getattr(fn, "__name__", fn))
        finally:
            self.inflight.discard(task)

    async def _poll(self, source: SourceConfig) -> None:
        result = await self.pipeline.poll(source)
        log.info("polled %s: %s, %d entries, %d new, %d alerts", source.name, result.status,
                 result.entries, result.new_articles, result.alerts,
                 extra={"source": source.name, "event": "poll"})
        if result.alerts:
            await self._deliver()

    async def _deliver(self) -> None:
        from monitor.cli import _redactor
        from monitor.deliver import deliver_pending

        stats = await deliver_pending(self.store, self.notifiers, redact=_redactor(self.config))
        if stats.delivered or stats.failed:
            log.info("deliveries: %d sent, %d failed", stats.delivered, stats.failed,
                     extra={"event": "deliver"})

    async def _digest(self, name: str) -> None:
        from monitor.deliver import deliver_digest

        await deliver_digest(self.store, self.notifiers[name])
