"""One pass over the sources: fetch, parse, skip what was seen, fetch and extract
new articles, dedup, match, record alerts in the outbox.

Each step has its own module: ``parse`` (a source's bytes into entries),
``article`` (an entry and its page into an Article), ``process`` (fingerprints and
rule matches, in a worker), ``recording`` (the store's write path), ``routing``
(which channels get an alert), ``health`` (source broken and recovered notices)
and ``report`` (what a pass reports). This module runs them in order.

Each source is processed on its own: whatever goes wrong with one (network,
hostile bytes, a page that cannot be extracted) is recorded on that source and
costs nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from monitor.config import Config, SourceConfig
from monitor.errors import FetchError, HTTPStatusError, MonitorError, ParseError, StorageError
from monitor.models import Article, Entry
from monitor.pipeline import article as articles
from monitor.pipeline.health import RECOVERED, HealthNotice, event_after_poll
from monitor.pipeline.parse import Body, parse_source
from monitor.pipeline.process import Analysis, analyse, analyse_all
from monitor.pipeline.recording import GroupCommit, ReadyArticle, Recorded, Recorder
from monitor.pipeline.report import RunSummary, SourceResult
from monitor.pipeline.routing import Routing
from monitor.pipeline.rules import rules_by_source
from monitor.pipeline.workers import Workers
from monitor.redaction import redactor
from monitor.sources.fetch import Fetcher
from monitor.sources.polling import PollPolicy
from monitor.sources.robots import RobotsCache
from monitor.text.extract import extract_article
from monitor.text.safe import one_line
from storage.base import SourceState, Store
from storage.boundary import AsyncStore, async_store

__all__ = ["Pipeline", "RunSummary", "SourceResult"]

log = logging.getLogger("monitor.pipeline")

# Child sitemaps followed from a sitemap index, newest first by position.
MAX_CHILD_SITEMAPS = 3
# New entries taken from one source in one pass (the rest wait for the next pass).
MAX_NEW_ENTRIES = 200
# Entries that carry their own text, analysed in one worker job: few round trips,
# and still enough jobs for every core when one source brings many.
ANALYSE_BATCH = 32


class Pipeline:
    """Polls sources and records what they bring: one ``poll`` per source, ``run``
    for many at once. Built once per configuration."""

    def __init__(self, config: Config, store: Store | AsyncStore, fetcher: Fetcher, *,
                 dry_run: bool = False, now: Callable[[], datetime] | None = None,
                 on_progress: Callable[[str, str], None] | None = None,
                 workers: Workers | None = None, force: bool = False):
        self.config = config
        self.workers = workers or Workers(1)
        self.robots = (RobotsCache(fetcher, config.monitor.user_agent)
                       if config.monitor.respect_robots else None)
        # Every store call goes through the store's async boundary (its own thread).
        self.db = async_store(store)
        self.store = self.db.store
        self.fetcher = fetcher
        self.dry_run = dry_run
        self.force = force               # poll even a source whose server asked to wait
        self.now = now or (lambda: datetime.now(UTC))
        self.on_progress = on_progress or (lambda source, message: None)
        # A source URL may carry a secret (${VAR}), and errors name their URL.
        self.redact = redactor(config.secrets)
        # What the configuration decides is worked out once, here.
        m = config.monitor
        self.rules = rules_by_source(config)
        self.routing = Routing.from_config(config)
        self.policies = {s.name: PollPolicy.for_source(
            s.interval, min_interval=m.min_interval, max_interval=m.max_interval,
            adaptive=m.adaptive) for s in config.sources}
        # A dry run works on a scratch store (storage.open_store(scratch=True)): it
        # decides exactly as the real pass would, and nothing it stores is kept.
        self.previews: list[dict] = []
        self.recorder = Recorder(self.store, self.routing, max_age=m.max_age,
                                 source_links={s.name: self.redact(s.url)
                                               for s in config.sources})
        self._group_commit = GroupCommit(self.recorder.record_articles, self.db)

    async def run(self, sources: list[SourceConfig]) -> list[SourceResult]:
        # Sources are streamed through: only a few more are in hand than can be
        # fetched at once, so that a pass over 10,000 new feeds holds the entries of
        # dozens, not of all the ones fetched ahead of the parsing and the store.
        in_hand = asyncio.Semaphore(max(16, 4 * self.config.monitor.concurrency))

        async def one(source: SourceConfig) -> SourceResult:
            async with in_hand:
                return await self.poll(source)

        return list(await asyncio.gather(*(one(s) for s in sources)))

    async def poll(self, source: SourceConfig) -> SourceResult:
        try:
            return await self._poll(source)
        finally:
            self.on_progress(source.name, "done")

    async def _poll(self, source: SourceConfig) -> SourceResult:
        result = SourceResult(source.name)
        started = self.now()
        try:
            state = await self.db.source_state(source.name)
        except StorageError as exc:
            result.status, result.error = "error", one_line(f"store unavailable: {exc}", 300)
            return result
        if state.hold_until is not None and state.on_hold(started) and not self.force:
            result.status = "skipped"
            result.error = ("the server asked to wait until "
                            f"{state.hold_until.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}")
            return result
        try:
            entries = await self._entries(source, state, result)
            if entries is not None:
                await self._process_entries(source, entries, result)
        except HTTPStatusError as exc:
            result.status, result.error = "error", one_line(str(exc), 300)
            result.retry_after = exc.retry_after
        except StorageError as exc:
            # Not the source's failure: its state stays as it was (still due, no
            # backoff, no "broken" count), and the poll is simply done again.
            result.status = "error"
            result.error = self.redact(one_line(f"store unavailable: {exc}", 300))
            log.warning("source %s: the store went away during the poll: %s", source.name,
                        exc, extra={"source": source.name, "event": "store_unavailable"})
            return result
        except MonitorError as exc:
            result.status, result.error = "error", one_line(str(exc), 300)
        except Exception as exc:  # noqa: BLE001 - a bug must cost this source only, and be visible
            log.exception("source %s: unexpected error", source.name,
                          extra={"source": source.name, "event": "error"})
            result.status = "error"
            result.error = one_line(f"internal error: {type(exc).__name__}: {exc}", 300)
        if result.error:
            result.error = self.redact(result.error)
        try:
            await self._record(source, state, result, started)
        except StorageError as exc:
            # The poll's outcome is lost: the source stays due and is polled again
            # (what was stored of its entries is not done twice).
            log.warning("source %s: its state could not be saved: %s", source.name, exc,
                        extra={"source": source.name, "event": "store_unavailable"})
            if result.status != "error":
                result.status = "error"
                result.error = one_line(f"store unavailable: {exc}", 300)
        return result

    async def _record(self, source: SourceConfig, state: SourceState, result: SourceResult,
                      started: datetime) -> None:
        """The poll's outcome on the source's state, saved; a health notice when the
        poll broke the source or ended its failures."""
        if self.dry_run:
            return
        failures_before = state.consecutive_failures
        if result.failed:
            state.record_failure(result.error or "", started)
            log.warning("source %s: %s", source.name, result.error,
                        extra={"source": source.name, "event": "source_error"})
        else:
            state.record_success(started, etag=result.etag, last_modified=result.last_modified,
                                 body_hash=result.body_hash, complete=result.complete)
        state.schedule_next_check(started, self.policies[source.name], status=result.status,
                                  max_age=result.max_age, ttl=result.ttl,
                                  retry_after=result.retry_after,
                                  publish_times=result.publish_times)
        await self.db.save_source_state(state)
        await self.db.record_poll(source.name, started, ok=not result.failed)
        event = event_after_poll(failed=result.failed, failures_before=failures_before,
                                 failures=state.consecutive_failures,
                                 broken_after=self.config.monitor.broken_after)
        if event is not None and self.routing.health:
            notice = HealthNotice(
                source.name, event, url=self.redact(source.url), at=self.now(),
                failures=failures_before if event == RECOVERED else state.consecutive_failures,
                error=result.error or "")
            await self.db.call(self.recorder.record_notice, notice)
            log.warning("source %s: %s", source.name, notice.title,
                        extra={"source": source.name, "event": f"source_{event}"})

    # fetching and parsing the source ------------------------------------------
    async def _entries(self, source: SourceConfig, state: SourceState,
                       result: SourceResult) -> list[Entry] | None:
        self.on_progress(source.name, "fetching")
        if source.kind == "page" and not await self._robots_allow(source.url):
            raise FetchError(f"robots.txt disallows {source.url}", url=source.url)
        response = await self.fetcher.get(source.url, etag=state.etag,
                                          last_modified=state.last_modified)
        result.max_age = response.header_max_age()
        if response.not_modified:
            # A 304 may renew the validators or leave them out; either way the
            # next poll must be conditional again.
            result.status = "not_modified"
            result.etag = response.etag or state.etag
            result.last_modified = response.last_modified or state.last_modified
            return None
        body_hash = hashlib.sha256(response.body).hexdigest()
        result.etag, result.last_modified = response.etag, response.last_modified
        if body_hash == state.body_hash:
            # The same bytes as last time, fully processed then: nothing in it is new,
            # and it is not even parsed again.
            result.status = "not_modified"
            return None
        parsed = await self.workers.run(
            parse_source, source.kind,
            Body(response.body, url=response.url,
                 content_type=response.headers.get("content-type"),
                 charset=response.charset, link_pattern=source.link_pattern))
        entries = parsed.entries
        if parsed.children:
            entries += await self._sitemap_children(parsed.children)
        result.entries, result.ttl = len(entries), parsed.ttl
        result.publish_times = [e.published for e in entries if e.published]
        result.body_hash = body_hash
        return entries

    async def _sitemap_children(self, children: list[str]) -> list[Entry]:
        entries: list[Entry] = []
        for child in children[:MAX_CHILD_SITEMAPS]:
            response = await self.fetcher.get(child)
            parsed = await self.workers.run(parse_source, "sitemap",
                                            Body(response.body, url=response.url))
            entries += parsed.entries
        return entries

    # entries -> articles -------------------------------------------------------
    async def _process_entries(self, source: SourceConfig, entries: list[Entry],
                               result: SourceResult) -> None:
        keyed: list[tuple[Entry, list[str]]] = []
        for entry in entries:
            keys = articles.entry_keys(entry)
            if keys:
                keyed.append((entry, keys))
        fresh = await self._unseen(source, keyed, result)
        if len(fresh) > MAX_NEW_ENTRIES:
            result.truncated, fresh = True, fresh[:MAX_NEW_ENTRIES]
        self.on_progress(source.name, f"{len(fresh)} new entries")
        # Every entry's work ends before the poll does (none runs on unseen), and the
        # first failure (the store went away) is the poll's.
        if source.fetch_articles:
            work = [self._process_entry(source, e, ks, result) for e, ks in fresh]
        else:
            work = [self._process_feed_texts(source, fresh[i:i + ANALYSE_BATCH], result)
                    for i in range(0, len(fresh), ANALYSE_BATCH)]
        _raise_first(await asyncio.gather(*work, return_exceptions=True))

    async def _unseen(self, source: SourceConfig, keyed: list[tuple[Entry, list[str]]],
                result: SourceResult) -> list[tuple[Entry, list[str]]]:
        """The entries neither this source nor another brought in before: asked of
        the store before any page is fetched. Those another source brought in are
        marked seen here and counted as duplicates."""
        seen = await self.db.seen_keys(source.name, [k for _, ks in keyed for k in ks])
        fresh = [(e, ks) for e, ks in keyed if not seen.intersection(ks)]
        known = await self.db.known_urls(
            [ks[0] for _, ks in fresh if ks[0].startswith("http")])
        if known:
            await self.db.mark_seen(
                source.name, [k for e, ks in fresh if ks[0] in known for k in ks], None)
        result.duplicates += sum(1 for _, ks in fresh if ks[0] in known)
        return [(e, ks) for e, ks in fresh if ks[0] not in known]

    async def _process_entry(self, source: SourceConfig, entry: Entry, keys: list[str],
                             result: SourceResult) -> None:
        try:
            await self._process_one(source, entry, keys, result)
        finally:
            self.on_progress(source.name, "article")

    async def _process_one(self, source: SourceConfig, entry: Entry, keys: list[str],
                           result: SourceResult) -> None:
        try:
            article, aliases = await self._article(source, entry, keys[0])
        except Exception:  # noqa: BLE001 - one entry's failure costs that entry only
            _entry_failed(source, keys[0], result)
            return
        if article is None:
            return
        analysis = await self.workers.run(analyse, article, self.rules[source.name])
        await self._store_article(source, article, aliases, keys, analysis, result)

    async def _process_feed_texts(self, source: SourceConfig,
                                  fresh: list[tuple[Entry, list[str]]],
                                  result: SourceResult) -> None:
        """Entries whose article is their own text (no page is fetched): analysed
        together, in one job, then recorded each as it would be alone."""
        try:
            todo: list[tuple[Article, list[str]]] = []
            for entry, keys in fresh:
                try:
                    article = articles.assemble(source.name, entry, keys[0], None)
                except Exception:  # noqa: BLE001 - one entry's failure costs that entry only
                    _entry_failed(source, keys[0], result)
                    continue
                if article is not None:
                    todo.append((article, keys))
            analyses = (await self.workers.run(analyse_all, [a for a, _ in todo],
                                               self.rules[source.name]) if todo else [])
            _raise_first(await asyncio.gather(
                *(self._store_article(source, article, [], ks, analysis, result)
                  for (article, ks), analysis in zip(todo, analyses, strict=True)),
                return_exceptions=True))
        finally:
            for _ in fresh:
                self.on_progress(source.name, "article")

    async def _store_article(self, source: SourceConfig, article: Article, aliases: list[str],
                             keys: list[str], analysis: Analysis,
                             result: SourceResult) -> None:
        recorded: Recorded = await self._group_commit.submit(ReadyArticle(
            source.name, article, aliases, keys, analysis, self.now()))
        verdict, records = recorded
        if not verdict.is_new:
            result.duplicates += 1
            log.info("source %s: %s is a %s duplicate of article %s", source.name,
                     article.url, verdict.kind, verdict.article_id,
                     extra={"source": source.name, "article": article.url, "event": "duplicate"})
            return
        result.new_articles += 1
        result.alerts += len(records)
        if self.dry_run:
            self.previews += [{"rule": r.rule, "url": r.url, "title": r.title,
                               "followup": r.followup, "matched": r.matched} for r in records]
        log.info("source %s: new article %s (%d alerts)", source.name, article.url, len(records),
                 extra={"source": source.name, "article": article.url, "event": "article"})

    async def _robots_allow(self, url: str, source: str | None = None) -> bool:
        if self.robots is None or await self.robots.allowed(url):
            return True
        if source:
            log.info("source %s: robots.txt disallows %s; using the feed's text", source, url)
        return False

    async def _article(self, source: SourceConfig, entry: Entry,
                       url: str) -> tuple[Article | None, list[str]]:
        """The article behind an entry: its page's text, else the feed's own; and
        the other URLs it was found at."""
        aliases: list[str] = []
        extracted = None
        first_url = url
        if (source.fetch_articles and url.startswith("http")
                and await self._robots_allow(url, source.name)):
            try:
                response = await self.fetcher.get(url)
                if response.url != url:
                    aliases.append(url)
                    url = articles.canonical(response.url) or url
                extracted = await self.workers.run(
                    extract_article, response.body, url=response.url, charset=response.charset)
            except (FetchError, ParseError) as exc:
                log.info("source %s: article %s not fetched (%s); using the feed's text",
                         source.name, url, exc)
        if extracted is not None and not articles.same_article(entry.title, extracted):
            # A consent wall, a paywall teaser, a redirect to a home page: the page is
            # not the entry's article, so its text, headline and links are not used.
            log.info("source %s: the page at %s is not the entry's article (%r); using the "
                     "feed's text", source.name, url, one_line(extracted.title, 80),
                     extra={"source": source.name, "article": url, "event": "not_the_article"})
            extracted, url, aliases = None, first_url, []
        if extracted is not None and extracted.canonical_url:
            canonical = articles.canonical(extracted.canonical_url)
            if canonical and canonical != url:
                aliases.append(url)
                url = canonical
        return articles.assemble(source.name, entry, url, extracted), aliases


def _entry_failed(source: SourceConfig, key: str, result: SourceResult) -> None:
    """One entry could not be made into an article: logged, counted, the rest go on."""
    log.exception("source %s: entry %s", source.name, key,
                  extra={"source": source.name, "article": key, "event": "error"})
    result.article_errors += 1


def _raise_first(outcomes: list) -> None:
    """Of ``asyncio.gather(..., return_exceptions=True)``'s outcomes, the first
    failure is raised once every one has ended."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
