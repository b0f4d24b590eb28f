"""The storage interfaces, one per concern, and ``Store``, which is all of them.

``SourceStore`` (sources, seen entries, poll counts), ``ArticleStore`` (articles and
dedup look-ups), ``OutboxStore`` (alerts, deliveries, muted stories) and
``LeaseStore`` (leases between nodes). Implementations: ``storage.sql.SQLStore``
over SQLite (default) and PostgreSQL, and ``storage.memory.MemoryStore``.
Async code reaches a store through ``storage.boundary.AsyncStore`` only.
Decisions (is this a duplicate? which story?) are made by the pipeline; the store
offers the lookups, the inserts, and an exclusive transaction in which a lookup
and the insert that depends on it happen atomically across processes.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.sources.polling import PollOutcome, PollPolicy, next_poll


@dataclass
class SourceState:
    name: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_polled: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_poll: datetime | None = None
    hold_until: datetime | None = None     # the server asked not to be polled before then

    def on_hold(self, at: datetime) -> bool:
        """Did the server ask not to be polled at ``at`` (Retry-After)?"""
        return self.hold_until is not None and self.hold_until > at

    # A poll's outcome, recorded on the source (as Miniflux's feed model does):
    # record_failure or record_success, then schedule_next_check.
    def record_failure(self, error: str, at: datetime) -> None:
        """A poll that failed at ``at``: one more failure in a row."""
        self.last_polled = at
        self.last_error, self.last_error_at = error, at
        self.consecutive_failures += 1

    def record_success(self, at: datetime, *, etag: str | None, last_modified: str | None,
                       body_hash: str | None, complete: bool) -> None:
        """A poll that succeeded at ``at``; the failures in a row are over.

        The validators and the body's hash are kept only when ``complete``, when
        every entry of the body was dealt with: only such a body may be skipped
        next time (by a 304 or by its hash), so left-over entries wait for it."""
        self.last_polled = at
        self.last_success = at
        self.consecutive_failures = 0
        if complete:
            self.etag, self.last_modified = etag, last_modified
            self.body_hash = body_hash or self.body_hash

    def schedule_next_check(self, at: datetime, policy: PollPolicy, *, status: str,
                            max_age: float | None = None, ttl: float | None = None,
                            retry_after: float | None = None,
                            publish_times: Sequence[datetime] = (),
                            rand: Callable[[], float] = random.random) -> None:
        """Set ``next_poll`` from the poll at ``at`` (monitor.sources.polling), and
        ``hold_until`` from the server's Retry-After, if it sent one."""
        self.hold_until = (at + timedelta(seconds=min(retry_after, policy.backoff_cap))
                           if retry_after else None)
        self.next_poll = next_poll(at, policy, PollOutcome(
            status=status, consecutive_failures=self.consecutive_failures,
            max_age=max_age, ttl=ttl, retry_after=retry_after,
            publish_times=publish_times), rand=rand)


@dataclass
class StoredArticle:
    id: int
    url: str
    title: str
    text: str
    source: str
    published: datetime | None
    fetched_at: datetime
    story_id: str | None
    duplicate_of: int | None
    content_hash: str | None = None


@dataclass
class NewArticle:
    """What the pipeline inserts: the article and its fingerprints."""

    url: str
    guid: str | None
    source: str
    title: str
    text: str
    author: str
    site_name: str
    language: str
    published: datetime | None
    fetched_at: datetime
    extracted: bool
    content_hash: str
    signature: bytes | None
    band_keys: list[int]
    story_signature: bytes | None
    story_band_keys: list[int]
    story_id: str | None
    duplicate_of: int | None
    aliases: list[str] = field(default_factory=list)   # other URLs of this article
    search_text: str | None = None     # folded title and text, for the search prefilter


@dataclass
class AlertRow:
    alert_id: str
    rule: str
    article_id: int
    story_id: str
    followup: bool
    created_at: datetime
    record: dict                     # the alert record, as delivered
    deliveries: list[DeliveryRow] = field(default_factory=list)
    source: str | None = None
    # Where the matched words are in record["snippet"]: (start, end) offsets.
    highlights: list[tuple[int, int]] = field(default_factory=list)

    @property
    def muted(self) -> bool:
        """Recorded while its story was muted: none of its channels get it."""
        return bool(self.deliveries) and all(d.state == "muted" for d in self.deliveries)


@dataclass
class DeliveryRow:
    alert_id: str
    notifier: str
    state: str                       # pending | sent | failed | muted (never sent)
    attempts: int
    last_error: str | None
    next_attempt: datetime | None
    sent_at: datetime | None
    digest: bool = False
    receipt: dict | None = None
    # The alert's highlights (AlertRow.highlights), given with a claimed delivery so
    # that the notifier marks the words the query engine found.
    highlights: list[tuple[int, int]] = field(default_factory=list)


class Transaction(ABC):
    """Lookups and inserts inside one exclusive transaction (see Store.exclusive)."""

    @abstractmethod
    def article_id_by_url(self, urls: Iterable[str]) -> int | None: ...

    @abstractmethod
    def article_id_by_hash(self, content_hash: str) -> int | None: ...

    @abstractmethod
    def band_candidates(self, band_keys: list[int], limit: int = 50) -> list[tuple[int, bytes]]:
        """(article id, signature) of articles sharing at least one band key."""

    @abstractmethod
    def story_candidates(self, band_keys: list[int], since: datetime,
                         limit: int = 50) -> list[tuple[int, str, bytes]]:
        """(article id, story id, story signature) of articles since ``since``
        sharing a story band."""

    @abstractmethod
    def insert_article(self, article: NewArticle) -> int: ...

    @abstractmethod
    def rule_has_story_alert(self, rule: str, story_id: str) -> bool: ...

    @abstractmethod
    def insert_alert(self, alert: AlertRow, notifiers: list[tuple[str, bool]]) -> bool:
        """Record an alert and a pending delivery per (notifier, is_digest); a
        'muted' one instead, never sent, when the alert's story is muted.

        Returns False (and records nothing) when this rule already alerted on the article.
        """

    @abstractmethod
    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None: ...


class SourceStore(ABC):
    """Sources: their polling state, the entries each has seen, and poll counts."""

    @abstractmethod
    def source_state(self, name: str) -> SourceState: ...

    @abstractmethod
    def all_source_states(self) -> dict[str, SourceState]: ...

    @abstractmethod
    def save_source_state(self, state: SourceState) -> None: ...

    @abstractmethod
    def seen_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        """Which of these entry keys (GUIDs, canonical URLs) this source has seen."""

    @abstractmethod
    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these canonical URLs belong to a stored article (any source)."""

    @abstractmethod
    def mark_seen(self, source: str, keys: Iterable[str], article_id: int | None) -> None:
        """Record these entry keys as seen by this source (``article_id``: the stored
        article they led to, or None); keys seen already stay as they were."""

    @abstractmethod
    def record_poll(self, source: str, when: datetime, *, ok: bool) -> None:
        """Count one poll of ``source`` on its UTC day, as a success or a failure."""

    @abstractmethod
    def poll_days(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        """(source, 'YYYY-MM-DD') -> (successful polls, failed polls), UTC days from ``since``."""


class ArticleStore(ABC):
    """Articles and what dedup compares against; writes go through ``exclusive``."""

    @abstractmethod
    def exclusive(self, *, dry_run: bool = False) -> AbstractContextManager[Transaction]:
        """A transaction that no other process's exclusive transaction overlaps.

        Committed on a clean exit, rolled back on an exception or when ``dry_run``.
        """

    @abstractmethod
    def get_article(self, article_id: int) -> StoredArticle | None: ...

    @abstractmethod
    def iter_articles(self, *, include_duplicates: bool = False, batch: int = 500,
                      containing_any: list[str] | None = None) -> Iterator[StoredArticle]:
        """Stored articles in id order; with ``containing_any``, only those whose folded
        text contains one of these strings (and those stored before it was kept)."""

    @abstractmethod
    def count_articles(self) -> int: ...

    @abstractmethod
    def prune(self, before: datetime) -> int:
        """Drop what only serves look-ups of recent articles (story band rows of
        articles fetched before ``before``); returns how many rows went.

        Call it now and then with ``now - fingerprint.STORY_WINDOW``."""

    @abstractmethod
    def story_articles(self, story_id: str) -> list[StoredArticle]:
        """The articles of a story and their near-duplicate copies (whose
        ``duplicate_of`` names one of them), oldest first."""

    @abstractmethod
    def article_signatures(self, article_ids: Iterable[int]) -> dict[int, bytes]:
        """The near-duplicate signatures of these articles (those that have one)."""

    @abstractmethod
    def story_exists(self, story_id: str) -> bool:
        """Whether an article or an alert belongs to this story."""


class OutboxStore(ABC):
    """Alerts, their deliveries (the outbox) and muted stories."""

    @abstractmethod
    def list_alerts(self, *, pending_only: bool = False, limit: int = 50,
                    rule: str | None = None, source: str | None = None,
                    story_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None,
                    before: tuple[datetime, str] | None = None) -> list[AlertRow]:
        """Alerts newest first (created_at, then id, descending), with their deliveries.

        ``since`` / ``until`` bound created_at (inclusive / exclusive); ``before``
        is a paging cursor: the (created_at, alert_id) of the last alert of the
        previous page."""

    @abstractmethod
    def get_alert(self, alert_id: str) -> AlertRow | None: ...

    @abstractmethod
    def alert_days(self, since: datetime) -> dict[tuple[str, str], int]:
        """(source, 'YYYY-MM-DD') -> alerts recorded that UTC day, from ``since``."""

    @abstractmethod
    def mute_story(self, story_id: str, now: datetime) -> bool:
        """Mute a story: its alerts recorded from now on are not delivered.
        False when it was muted already."""

    @abstractmethod
    def unmute_story(self, story_id: str) -> bool:
        """False when it was not muted."""

    @abstractmethod
    def muted_stories(self, story_ids: Iterable[str] | None = None) -> dict[str, datetime]:
        """story id -> when it was muted, for the muted ones among ``story_ids`` (all when None)."""

    @abstractmethod
    def oldest_pending_delivery(self, notifier: str | None = None,
                                digest: bool | None = None) -> datetime | None:
        """When the oldest alert still waiting for a delivery was recorded (None if none
        waits), optionally only on one channel, or only digest / immediate deliveries."""

    @abstractmethod
    def claim_deliveries(self, owner: str, now: datetime, lease_seconds: float,
                         *, digest: bool = False, notifier: str | None = None,
                         limit: int = 100, exclude: Iterable[str] = (),
                         retry_before: datetime | None = None
                         ) -> list[tuple[DeliveryRow, dict]]:
        """Take due pending deliveries (with their alert records, and each row with
        its alert's highlights) under a lease; none of the channels in ``exclude``
        (held back: quiet hours).

        A delivery is due when its next attempt has come and no hold (Retry-After)
        is running. With ``retry_before``, those last taken before that time are
        due whatever their backoff (a hold still counts): one pass that must
        deliver everything pending takes each delivery once."""

    @abstractmethod
    def count_pending_deliveries(self, now: datetime, *, digest: bool = False,
                                 notifier: str | None = None,
                                 exclude: Iterable[str] = ()) -> int:
        """Pending deliveries that no hold (Retry-After) keeps back at ``now``, on
        channels other than those in ``exclude`` (quiet hours), and that no run is
        delivering right now (a live lease: another process sending them; should it
        die, its lease runs out and they count again)."""

    @abstractmethod
    def thread_receipt(self, notifier: str, story_id: str,
                       rule: str | None = None) -> dict | None:
        """The receipt of the first sent delivery of this story on this channel
        (of this rule's alerts only, when ``rule`` is given)."""

    @abstractmethod
    def delivery_sent(self, alert_id: str, notifier: str, receipt: dict, now: datetime) -> None: ...

    @abstractmethod
    def delivery_failed(self, alert_id: str, notifier: str, error: str, *,
                        permanent: bool, next_attempt: datetime | None,
                        hold_until: datetime | None = None) -> None:
        """Record a failed try; ``hold_until``: the channel asked not to be tried
        again before then (Retry-After)."""


class LeaseStore(ABC):
    """Leases on sources and deliveries, for several nodes sharing one store."""

    @abstractmethod
    def claim_due_sources(self, owner: str, now: datetime, lease_seconds: float,
                          names: list[str], limit: int = 100) -> list[str]:
        """The sources among ``names`` that are due (never polled, no next poll, or
        next poll <= now) and not leased by a live node, now leased to ``owner``
        until now + lease_seconds. Atomic across processes: a due source goes to
        exactly one claimer. Never-seen names get a state row."""

    @abstractmethod
    def release_source(self, name: str, owner: str) -> None:
        """Give up ``owner``'s lease on a source (nothing if another node holds it)."""

    @abstractmethod
    def lease_owners(self) -> set[str]:
        """Every owner holding a source or delivery lease."""

    @abstractmethod
    def release_owner(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (a process known to be dead)."""

    @abstractmethod
    def release_deliveries(self, owner: str, keys: Iterable[tuple[str, str]]) -> None:
        """Give up ``owner``'s leases on these (alert id, notifier) deliveries, so that
        any pass may take them again (nothing for leases another node holds)."""

    @abstractmethod
    def renew_leases(self, owner: str, now: datetime, lease_seconds: float, *,
                     sources: Iterable[str] = (),
                     deliveries: Iterable[tuple[str, str]] = ()) -> None:
        """Extend ``owner``'s leases on these sources and pending (alert id, notifier)
        deliveries -- those it is working on, no others -- to now + lease_seconds.
        A lease left behind (its work abandoned) runs out, and another pass takes it."""


class Store(SourceStore, ArticleStore, OutboxStore, LeaseStore):
    """Everything the monitor keeps: every interface above, and the schema's life."""

    url: str

    @abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema to the current version."""

    @abstractmethod
    def close(self) -> None: ...

    def check(self) -> None:
        """Raise StorageError when the store is damaged (a quick structural check;
        a database server looks after its own files, so by default nothing)."""
