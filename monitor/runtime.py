"""The parts of a running monitor, built from the configuration in one place and
closed together: the store, the fetcher (with its FetchPolicy), the worker
processes, the notifiers and the pipeline.

Every command works through a ``Runtime``. Each part is opened the first time it
is asked for, so a command opens only what it uses: ``alerts list`` never builds
a fetcher, and ``notify test`` never opens the store. Closing the runtime closes
what was opened, the newest first.

- ``with Runtime(config) as runtime:`` for commands that only read or write the
  store (``alerts``, ``stories``, ``search``, ``sources list``).
- ``async with Runtime(config, ...) as runtime:`` for everything that fetches or
  delivers (``check-now``, ``run``, ``serve``, ``notify test``, ``rules test --url``,
  ``sources discover``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from monitor.config import Config
from monitor.delivery.notifiers import Notifier, notifier_class
from monitor.delivery.notifiers.console import ConsoleNotifier
from monitor.pipeline.orchestrator import Pipeline
from monitor.pipeline.workers import Workers
from monitor.sources.fetch import Fetcher, FetchPolicy
from storage import open_store
from storage.base import Store
from storage.boundary import AsyncStore, async_store


def fetch_policy(config: Config) -> FetchPolicy:
    """The limits every outbound request of this configuration is held to."""
    m = config.monitor
    return FetchPolicy(user_agent=m.user_agent, timeout=m.timeout, max_body=m.max_body,
                       concurrency=m.concurrency, per_host=m.per_host,
                       per_host_delay=m.per_host_delay,
                       allow_private_networks=m.allow_private_networks)


def build_notifiers(config: Config, http: Fetcher, *,
                    console_stream: TextIO | None = None) -> dict[str, Notifier]:
    """One notifier per [[notifiers]] entry, by name, and ``console`` always."""
    notifiers: dict[str, Notifier] = {"console": ConsoleNotifier("console", console_stream)}
    for n in config.notifiers:
        notifiers[n.name] = notifier_class(n.kind).from_config(n.name, dict(n.options), http=http)
        notifiers[n.name].timezone = n.timezone
    return notifiers


class Runtime:
    """The store, fetcher, workers, notifiers and pipeline of one configuration.

    ``check``: refuse a damaged store before anything is written to it (a pass
    that writes). ``dry_run``: the store keeps nothing (a scratch copy) and the
    pipeline sends nothing. ``force``, ``on_progress``: passed to the pipeline.
    ``console_stream``: where the ``console`` notifier writes (stdout by default).
    """

    def __init__(self, config: Config, *, check: bool = False, dry_run: bool = False,
                 force: bool = False, on_progress: Callable[[str, str], None] | None = None,
                 console_stream: TextIO | None = None):
        self.config = config
        self.check = check
        self.dry_run = dry_run
        self.force = force
        self.on_progress = on_progress
        self.console_stream = console_stream
        self._store: Store | None = None
        self._connections: list[Store] = []
        self._http: Fetcher | None = None
        self._workers: Workers | None = None
        self._notifiers: dict[str, Notifier] | None = None
        self._pipeline: Pipeline | None = None
        self._async = False

    # the parts, each opened on first use ----------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.storage_url, scratch=self.dry_run,
                                     check=self.check)
        return self._store

    @property
    def db(self) -> AsyncStore:
        """The store behind its own thread: how async code reaches it, so that the
        event loop never waits on the store."""
        self._need_async("the store's thread")
        return async_store(self.store)

    def connect(self) -> Store:
        """Another connection to the same store, closed with the runtime: the web
        page's reads then never wait for the daemon's writes, nor they for a page."""
        store = open_store(self.config.storage_url)
        self._connections.append(store)
        return store

    @property
    def http(self) -> Fetcher:
        if self._http is None:
            self._need_async("the fetcher")
            self._http = Fetcher(fetch_policy(self.config))
        return self._http

    @property
    def workers(self) -> Workers:
        if self._workers is None:
            self._workers = Workers(self.config.monitor.workers)
        return self._workers

    @property
    def notifiers(self) -> dict[str, Notifier]:
        if self._notifiers is None:
            self._notifiers = build_notifiers(self.config, self.http,
                                              console_stream=self.console_stream)
        return self._notifiers

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(self.config, self.store, self.http, dry_run=self.dry_run,
                                      on_progress=self.on_progress, workers=self.workers,
                                      force=self.force)
        return self._pipeline

    def close_workers(self, *, now: bool = False) -> None:
        """Close the worker processes before the rest (``now``: without waiting for
        the jobs running); the runtime's exit then leaves them alone."""
        if self._workers is not None:
            workers, self._workers = self._workers, None
            if now:
                # Nobody waits for the results of the jobs still running.
                workers.close(now=True)
            # Once more, to stop the pool's helpers after a pool stopped at once.
            workers.close()

    def _need_async(self, part: str) -> None:
        if not self._async:
            raise RuntimeError(f"{part} is closed asynchronously: use `async with Runtime(...)`")

    # lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close_sync(interrupted=kind is not None)

    async def __aenter__(self) -> Runtime:
        self._async = True
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            for notifier in (self._notifiers or {}).values():
                await notifier.aclose()
            if self._http is not None:
                await self._http.aclose()
        finally:
            try:
                self._close_workers(interrupted=kind is not None)
            finally:
                # Async code reached the stores through their threads: each is closed
                # there, after the calls it is still running.
                for store in self._take_stores():
                    await async_store(store).close()

    def _close_sync(self, *, interrupted: bool) -> None:
        try:
            self._close_workers(interrupted=interrupted)
        finally:
            for store in self._take_stores():
                store.close()

    def _close_workers(self, *, interrupted: bool) -> None:
        self._notifiers = self._http = self._pipeline = None
        self.close_workers(now=interrupted)

    def _take_stores(self) -> list[Store]:
        """The stores opened, newest first, forgotten by the runtime."""
        stores = [*reversed(self._connections), *([self._store] if self._store else [])]
        self._connections, self._store = [], None
        return stores
