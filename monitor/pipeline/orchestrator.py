"""One pass over the sources: fetch, parse, skip what was seen, fetch and extract
new articles, dedup, match, record alerts in the outbox.

Each source is processed on its own: whatever goes wrong with one (network,
hostile bytes, a page that cannot be extracted) is recorded on that source and
costs nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import Config, SourceConfig
from monitor.dedup.ingest import Fingerprints, Verdict, ingest
from monitor.errors import FetchError, HTTPStatusError, MonitorError, ParseError, StorageError
from monitor.match.query import Document, RuleSet, compile_query
from monitor.models import AlertRecord, Article, Entry
from monitor.pipeline.workers import Workers
from monitor.redaction import redactor
from monitor.sources import feeds, links, sitemaps
from monitor.sources.fetch import Fetcher
from monitor.sources.polling import PollOutcome, PollPolicy, next_poll
from monitor.sources.robots import RobotsCache
from monitor.sources.urls import canonicalize
from monitor.text.extract import extract_article
from monitor.text.normalise import normalise, tokenize
from monitor.text.safe import one_line
from storage.base import AlertRow, SourceState, Store
from storage.boundary import AsyncStore, async_store

log = logging.getLogger("monitor.pipeline")

# Child sitemaps followed from a sitemap index, newest first by position.
MAX_CHILD_SITEMAPS = 3
# New entries taken from one source in one pass (the rest wait for the next pass).
MAX_NEW_ENTRIES = 200
# An article's text is cut here: a news article is far shorter, a hostile page not.
MAX_TEXT_CHARS = 200_000


@dataclass
class SourceResult:
    name: str
    status: str = "ok"                 # ok | not_modified | skipped | error
    error: str | None = None
    entries: int = 0
    new_articles: int = 0
    duplicates: int = 0
    alerts: int = 0
    article_errors: int = 0
    truncated: bool = False            # more new entries than one pass takes
    body_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # What the polling policy needs to know (monitor.sources.polling).
    max_age: float | None = None
    ttl: float | None = None
    retry_after: float | None = None
    publish_times: list[datetime] = field(default_factory=list)

    def summary(self) -> dict:
        return {"name": self.name, "status": self.status, "error": self.error,
                "entries": self.entries, "new_articles": self.new_articles}


@dataclass
class RunSummary:
    sources: list[SourceResult] = field(default_factory=list)
    delivered: int = 0
    failed_deliveries: int = 0
    pending_deliveries: int = 0        # due, and still pending at the end of the pass
    previews: list[dict] = field(default_factory=list)   # dry run: what would alert

    @property
    def new_articles(self) -> int:
        return sum(s.new_articles for s in self.sources)

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.sources)

    @property
    def alerts(self) -> int:
        return sum(s.alerts for s in self.sources)

    @property
    def ok(self) -> bool:
        return (all(s.status != "error" for s in self.sources)
                and self.failed_deliveries == 0 and self.pending_deliveries == 0)

    def to_dict(self) -> dict:
        return {"sources": [s.summary() for s in self.sources],
                "new_articles": self.new_articles, "duplicates": self.duplicates,
                "alerts": self.alerts, "delivered": self.delivered,
                "failed_deliveries": self.failed_deliveries,
                "pending_deliveries": self.pending_deliveries}


def rule_queries(config: Config) -> dict[str, tuple[tuple[str, str], ...]]:
    """For each source, the (name, query) of the rules that apply to it."""
    return {s.name: tuple((r.name, r.query) for r in config.rules
                          if not r.sources or s.name in r.sources)
            for s in config.sources}


@dataclass
class Analysis:
    fingerprints: Fingerprints
    # rule -> (matched terms, snippet, where the matched words are in the snippet)
    matches: dict[str, tuple[list[str], str, list[tuple[int, int]]]]


_RULESETS: dict[tuple, RuleSet] = {}


def analyse(article: Article, rules: tuple[tuple[str, str], ...]) -> Analysis:
    """Fingerprints and rule matches of one article: the CPU-heavy part, run in a
    worker. Rules travel as text and are compiled once per worker process."""
    ruleset = _RULESETS.get(rules)
    if ruleset is None:
        ruleset = _RULESETS[rules] = RuleSet(
            {name: compile_query(query, rule=name) for name, query in rules})
    doc = Document.build(title=article.title, text=article.text, source=article.source,
                         url=article.url)
    matches = ruleset.match(doc)
    # The text is tokenised once: its normalised form comes from the same tokens.
    fingerprinted = "text" if article.text else "title"
    normalised = " ".join(doc.fields[fingerprinted].norms)
    return Analysis(Fingerprints.of(article, normalised, " ".join(doc.fields["title"].norms)),
                    {rule: (m.words, *m.highlighted()) for rule, m in matches.items()})


def channels(config: Config, names) -> list[tuple[str, bool]]:
    """(notifier, is_digest) for each named channel."""
    modes = {n.name: n.mode == "digest" for n in config.notifiers}
    return [(name, modes.get(name, False)) for name in names]


def alert_channels(config: Config, rule_name: str) -> list[tuple[str, bool]]:
    """The channels of a rule; the console when it names none."""
    rule = next(r for r in config.rules if r.name == rule_name)
    return channels(config, rule.notify or ("console",))


class Pipeline:
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
        self.rule_queries = rule_queries(config)
        self.on_progress = on_progress or (lambda source, message: None)
        # A source URL may carry a secret (${VAR}), and errors name their URL.
        self.redact = redactor(config.secrets)
        # A dry run works on a scratch store (storage.open_store(scratch=True)): it
        # decides exactly as the real pass would, and nothing it stores is kept.
        self.previews: list[dict] = []
        self._recorder = _GroupCommit(self._record_articles, self.db)

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
        result = SourceResult(source.name)
        started = self.now()
        try:
            state = await self.db.source_state(source.name)
        except StorageError as exc:
            result.status, result.error = "error", one_line(f"store unavailable: {exc}", 300)
            self.on_progress(source.name, "done")
            return result
        if state.hold_until is not None and state.hold_until > started and not self.force:
            result.status = "skipped"
            result.error = ("the server asked to wait until "
                            f"{state.hold_until.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}")
            self.on_progress(source.name, "done")
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
            self.on_progress(source.name, "done")
            return result
        except MonitorError as exc:
            result.status, result.error = "error", one_line(str(exc), 300)
        except Exception as exc:     # a bug must cost this source only, and be visible
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
        self.on_progress(source.name, "done")
        return result

    async def _record(self, source: SourceConfig, state: SourceState, result: SourceResult,
                      started: datetime) -> None:
        if self.dry_run:
            return
        state.last_polled = started
        failures_before = state.consecutive_failures
        if result.status == "error":
            state.last_error, state.last_error_at = result.error, started
            state.consecutive_failures += 1
            log.warning("source %s: %s", source.name, result.error,
                        extra={"source": source.name, "event": "source_error"})
        else:
            state.last_success = started
            state.consecutive_failures = 0
            if not result.article_errors and not result.truncated:
                # Only a body whose every entry was dealt with may be skipped next
                # time (by a 304 or by its hash): left-over entries wait for it.
                state.etag, state.last_modified = result.etag, result.last_modified
                state.body_hash = result.body_hash or state.body_hash
        m = self.config.monitor
        policy = PollPolicy(interval=source.interval, min_interval=min(m.min_interval, source.interval),
                            max_interval=max(m.max_interval, source.interval), adaptive=m.adaptive)
        state.hold_until = (started + timedelta(seconds=min(result.retry_after, policy.backoff_cap))
                            if result.retry_after else None)
        state.next_poll = next_poll(started, policy, PollOutcome(
            status=result.status, consecutive_failures=state.consecutive_failures,
            max_age=result.max_age, ttl=result.ttl, retry_after=result.retry_after,
            publish_times=result.publish_times))
        await self.db.save_source_state(state)
        await self.db.record_poll(source.name, started, ok=result.status != "error")
        broken_after = self.config.monitor.broken_after
        if result.status == "error" and state.consecutive_failures == broken_after:
            await self._health_notice(source, "broken", result.error or "",
                                      state.consecutive_failures)
        elif result.status != "error" and failures_before >= broken_after:
            await self._health_notice(source, "recovered", "", failures_before)

    async def _health_notice(self, source: SourceConfig, event: str, error: str,
                             failures: int) -> None:
        """A "source broken" or "recovered" notice, through the outbox like any alert."""
        if not self.config.monitor.health_notify:
            return
        now = self.now()
        if event == "broken":
            title = f"Source {source.name!r} is broken: {failures} failures in a row"
        else:
            title = f"Source {source.name!r} has recovered after {failures} failures"
        record = AlertRecord(
            alert_id=uuid.uuid4().hex, rule="source-health", story_id=f"source:{source.name}",
            followup=event == "recovered", url=self.redact(source.url), title=title, source=source.name,
            published=now.isoformat(), matched=[], snippet=error)
        # Health notices belong to no article: each gets its own negative id.
        alert = AlertRow(alert_id=record.alert_id, rule="source-health",
                         article_id=-time.time_ns() // 1000, story_id=record.story_id,
                         followup=record.followup, created_at=now, record=record.to_dict())
        notify = channels(self.config, self.config.monitor.health_notify)
        await self.db.transaction(lambda tx: tx.insert_alert(alert, notify))
        log.warning("source %s: %s", source.name, title,
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
            parse_source, source.kind, response.body, url=response.url,
            content_type=response.headers.get("content-type"), charset=response.charset,
            link_pattern=source.link_pattern)
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
            parsed = await self.workers.run(parse_source, "sitemap", response.body,
                                            url=response.url, content_type=None, charset=None,
                                            link_pattern=None)
            entries += parsed.entries
        return entries

    # entries -> articles -------------------------------------------------------
    async def _process_entries(self, source: SourceConfig, entries: list[Entry],
                               result: SourceResult) -> None:
        keyed: list[tuple[Entry, list[str]]] = []
        for entry in entries:
            keys = _entry_keys(entry)
            if keys:
                keyed.append((entry, keys))
        seen = await self.db.seen_keys(source.name, [k for _, ks in keyed for k in ks])
        fresh = [(e, ks) for e, ks in keyed if not seen.intersection(ks)]
        # Entries another source already brought in are not fetched again.
        known = await self.db.known_urls(
            [ks[0] for _, ks in fresh if ks[0].startswith("http")])
        if known:
            await self.db.mark_seen(
                source.name, [k for e, ks in fresh if ks[0] in known for k in ks], None)
        result.duplicates += sum(1 for _, ks in fresh if ks[0] in known)
        fresh = [(e, ks) for e, ks in fresh if ks[0] not in known]
        if len(fresh) > MAX_NEW_ENTRIES:
            result.truncated, fresh = True, fresh[:MAX_NEW_ENTRIES]
        self.on_progress(source.name, f"{len(fresh)} new entries")
        # Every entry's work ends before the poll does (none runs on unseen), and the
        # first failure (the store went away) is the poll's.
        outcomes = await asyncio.gather(
            *(self._process_entry(source, e, ks, result) for e, ks in fresh),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

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
        except Exception:
            log.exception("source %s: entry %s", source.name, keys[0],
                          extra={"source": source.name, "article": keys[0], "event": "error"})
            result.article_errors += 1
            return
        if article is None:
            return
        analysis = await self.workers.run(analyse, article, self.rule_queries[source.name])
        # The store may wait on another process's lock: never on the event loop.
        outcome = await self._recorder.submit(source, article, aliases, keys, analysis,
                                              self.now())
        verdict, records = outcome
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

    def _record_article(self, source: SourceConfig, article: Article, aliases: list[str],
                        keys: list[str], analysis: Analysis,
                        now: datetime) -> tuple[Verdict, list[AlertRecord]]:
        """Dedup, store, and record the alerts of one article, in one transaction."""
        with self.store.exclusive() as tx:
            return self._record_in(tx, source, article, aliases, keys, analysis, now)

    def _record_articles(self, items: list[tuple]) -> list[tuple[bool, Any]]:
        """``_record_article`` for each item, all in one transaction: a commit writes
        every index page an article touched (its band rows land on pages all over the
        band indexes), so a commit per article cost more than the rest of its storing.
        When one item fails (a bug, bad data), the transaction is rolled back and each
        is recorded in its own, so that only the failing one fails, as if alone; when
        the store fails, all of them do.
        (ok, outcome or exception) per item."""
        if len(items) > 1:
            try:
                with self.store.exclusive() as tx:
                    return [(True, self._record_in(tx, *item)) for item in items]
            except StorageError as exc:
                # The store itself is away: trying each again would only wait on it
                # once per item. Every item hears it, as each would have alone.
                return [(False, exc)] * len(items)
            except Exception:
                pass
        results: list[tuple[bool, Any]] = []
        for item in items:
            try:
                results.append((True, self._record_article(*item)))
            except Exception as exc:
                results.append((False, exc))
        return results

    def _record_in(self, tx, source: SourceConfig, article: Article, aliases: list[str],
                   keys: list[str], analysis: Analysis,
                   now: datetime) -> tuple[Verdict, list[AlertRecord]]:
        records: list[AlertRecord] = []
        verdict = ingest(tx, article, analysis.fingerprints, aliases=aliases, now=now)
        tx.mark_seen(source.name, keys, verdict.article_id)
        if verdict.is_new and not self._too_old(article, now):
            for rule, (terms, snippet, spans) in analysis.matches.items():
                record = self._alert(tx, rule, terms, snippet, spans, article, verdict, now)
                if record is not None:
                    records.append(record)
        return verdict, records

    def _too_old(self, article: Article, now: datetime) -> bool:
        return (article.published is not None and
                now - article.published > timedelta(seconds=self.config.monitor.max_age))

    def _alert(self, tx, rule: str, terms: list[str], snippet: str,
               spans: list[tuple[int, int]], article: Article, verdict: Verdict,
               now: datetime) -> AlertRecord | None:
        story_id = verdict.story_id or str(verdict.article_id)
        record = AlertRecord(
            alert_id=uuid.uuid4().hex, rule=rule, story_id=story_id,
            followup=tx.rule_has_story_alert(rule, story_id),
            # An entry with neither link nor URL-like GUID is kept under its GUID; its
            # alert links to the source, the only place a reader can find it.
            url=article.url if article.url.startswith("http")
            else self.redact(self.config.source(article.source).url),
            title=article.title, source=article.source,
            published=article.published.isoformat() if article.published else None,
            matched=terms, snippet=snippet)
        inserted = tx.insert_alert(
            AlertRow(alert_id=record.alert_id, rule=rule, article_id=verdict.article_id,
                     story_id=story_id, followup=record.followup, created_at=now,
                     record=record.to_dict(), source=article.source, highlights=spans),
            alert_channels(self.config, rule))
        return record if inserted else None

    async def _robots_allow(self, url: str, source: str | None = None) -> bool:
        if self.robots is None or await self.robots.allowed(url):
            return True
        if source:
            log.info("source %s: robots.txt disallows %s; using the feed's text", source, url)
        return False

    async def _article(self, source: SourceConfig, entry: Entry,
                       url: str) -> tuple[Article | None, list[str]]:
        """The article behind an entry: its page's text, else the feed's own."""
        aliases: list[str] = []
        extracted = None
        first_url = url
        if (source.fetch_articles and url.startswith("http")
                and await self._robots_allow(url, source.name)):
            try:
                response = await self.fetcher.get(url)
                if response.url != url:
                    aliases.append(url)
                    url = _canonical(response.url) or url
                extracted = await self.workers.run(
                    extract_article, response.body, url=response.url, charset=response.charset)
            except (FetchError, ParseError) as exc:
                log.info("source %s: article %s not fetched (%s); using the feed's text",
                         source.name, url, exc)
        if extracted is not None and not _same_article(entry.title, extracted):
            # A consent wall, a paywall teaser, a redirect to a home page: the page is
            # not the entry's article, so its text, headline and links are not used.
            log.info("source %s: the page at %s is not the entry's article (%r); using the "
                     "feed's text", source.name, url, one_line(extracted.title, 80),
                     extra={"source": source.name, "article": url, "event": "not_the_article"})
            extracted, url, aliases = None, first_url, []
        if extracted is not None and extracted.canonical_url:
            canonical = _canonical(extracted.canonical_url)
            if canonical and canonical != url:
                aliases.append(url)
                url = canonical
        title = (extracted.title if extracted and extracted.title else entry.title).strip()
        text = (extracted.text if extracted and extracted.text else
                entry.content or entry.summary or "").strip()[:MAX_TEXT_CHARS]
        if not title and not text:
            return None, aliases
        if title and text.startswith(title) and text[len(title):].strip():
            # Pages often repeat their headline as the text's first line: the title
            # field has it already, and snippets should show the body.
            text = text[len(title):].lstrip()
        if not title:
            # No headline anywhere: the start of the text stands in for one.
            title = one_line(text, 120)
        return Article(
            url=url, title=title, text=text, source=source.name,
            published=(extracted.published if extracted and extracted.published
                       else entry.published),
            author=(extracted.author if extracted and extracted.author else entry.author),
            site_name=extracted.site_name if extracted else "",
            language=extracted.language if extracted else "",
            guid=entry.guid, extracted=bool(extracted and extracted.text),
        ), aliases


@dataclass
class ParsedSource:
    entries: list[Entry]
    ttl: float | None = None                      # RSS <ttl>, seconds
    children: list[str] = field(default_factory=list)   # a sitemap index's sitemaps


def parse_source(kind: str, body: bytes, *, url: str, content_type: str | None,
                 charset: str | None, link_pattern: str | None) -> ParsedSource:
    """A source's entries from its bytes. Runs in a worker process."""
    if kind == "feed":
        parsed = feeds.parse_feed(body, url=url, content_type=content_type)
        return ParsedSource(parsed.entries, ttl=parsed.ttl_seconds)
    if kind == "page":
        return ParsedSource(links.discover_links(body, url=url, link_pattern=link_pattern,
                                                 charset=charset))
    parsed = sitemaps.parse_sitemap(body, url=url)
    return ParsedSource(parsed.entries, children=parsed.sitemaps)


def _same_article(entry_title: str, extracted) -> bool:
    """Is the extracted page the article the entry announces? Most of the words of
    the entry's headline must appear in the page's headline or the start of its text
    (a headline rewritten by an editor still shares most of its words with the lede)."""
    words = {t.norm for t in tokenize(entry_title) if t.cjk or len(t.norm) > 2}
    if len(words) < 3:
        return True                      # too little to judge: trust the page
    page = normalise(f"{extracted.title} {extracted.text[:3000]}")
    page_words = set(page.split())
    found = sum(1 for w in words if (w in page if len(w) > 1 and not w.isascii() else w in page_words))
    return found >= 0.5 * len(words)


def _canonical(url: str) -> str | None:
    try:
        return canonicalize(url)
    except ValueError:
        return None


def _entry_keys(entry: Entry) -> list[str]:
    """The keys an entry is remembered by: its canonical URL first, then its GUID."""
    keys = []
    if entry.url and (url := _canonical(entry.url)):
        keys.append(url)
    if entry.guid:
        keys.append("guid:" + entry.guid[:500])
    return keys


class _GroupCommit:
    """Articles that are ready while the store is busy with others are recorded
    together, in one transaction (``write_many``), when it is free: one article alone
    is written at once, as before, and a busy pass writes batches of up to ``limit``
    (which also bounds how long the store's lock is held)."""

    def __init__(self, write_many: Callable[[list[tuple]], list[tuple[bool, Any]]],
                 db: AsyncStore, *, limit: int = 64):
        self.write_many = write_many
        self.db = db                     # write_many runs on the store's thread
        self.limit = limit
        self._pending: list[tuple[tuple, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, *item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[tuple, asyncio.Future]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[:self.limit], self._pending[self.limit:]
                results = await self.db.call(self.write_many, [i for i, _ in batch])
                for (_, future), (ok, value) in zip(batch, results):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                batch = []
        except BaseException as exc:   # the thread itself failed: every waiter hears it
            for _, future in batch + self._pending:
                if not future.done():
                    future.set_exception(exc)
            self._pending = []
            if not isinstance(exc, Exception):
                raise
        finally:
            self._task = None
