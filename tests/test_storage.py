"""The storage contract: one suite, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import StorageError
from monitor.redaction import redact
from storage import dialects, open_store
from storage.base import AlertRow, NewArticle, SourceState, Store
from storage.memory import MemoryStore
from storage.sql import SQLTransaction
from tests.pg import require_server, unreachable_reason

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/monitor.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request, tmp_path):
    """Every implementation of the storage interfaces: the contract holds for each."""
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/monitor.db")
    else:
        s = open_store(request.getfixturevalue("pg_url"))
    yield s
    s.close()


@pytest.fixture
def sql_store(store_url):
    """The SQL store only: for what is about SQL itself (schema, driver errors)."""
    s = open_store(store_url)
    yield s
    s.close()


def is_pg(store) -> bool:
    return getattr(store, "dialect", None) is not None and store.dialect.name == "postgresql"


def article(url: str, *, bands=(1, 2, 3), story_bands=(101, 102), fetched_at=T0,
            content_hash=None, duplicate_of=None, story_id="story-1", aliases=(),
            signature=b"\x00sig\xff", story_signature=b"\x01story\xfe") -> NewArticle:
    return NewArticle(
        url=url, guid=None, source="src", title=f"title {url}", text=f"text {url}",
        author="", site_name="", language="en", published=fetched_at - timedelta(hours=1),
        fetched_at=fetched_at, extracted=True, content_hash=content_hash or f"hash-{url}",
        signature=signature, band_keys=list(bands), story_signature=story_signature,
        story_band_keys=list(story_bands), story_id=story_id, duplicate_of=duplicate_of,
        aliases=list(aliases))


def alert(alert_id: str, article_id: int, *, rule="r1", story_id="story-1",
          created_at=T0) -> AlertRow:
    return AlertRow(alert_id=alert_id, rule=rule, article_id=article_id, story_id=story_id,
                    followup=False, created_at=created_at, source="src",
                    record={"alert_id": alert_id, "rule": rule, "title": "Kishida–Kim 会談"})


def add_alert(store, alert_id: str, *, notifiers=(("slack", False),), url=None,
              created_at=T0, rule="r1") -> int:
    with store.exclusive() as tx:
        article_id = tx.article_id_by_url([url or f"https://x.test/{alert_id}"])
        if article_id is None:
            article_id = tx.insert_article(article(url or f"https://x.test/{alert_id}"))
        assert tx.insert_alert(alert(alert_id, article_id, created_at=created_at, rule=rule),
                               list(notifiers))
    return article_id


# schema ------------------------------------------------------------------------
def test_migrations_are_idempotent_and_recorded(sql_store, store_url):
    store = sql_store
    assert store.schema_version() == len(dialects.MIGRATIONS)
    store.migrate()
    store.migrate()
    again = open_store(store_url)
    assert again.schema_version() == len(dialects.MIGRATIONS)
    assert again.count_articles() == 0
    again.close()


def test_a_newer_schema_is_refused(sql_store, store_url):
    store = sql_store
    store._run(lambda: store._execute_count("UPDATE schema_version SET version = ?", (99,)))
    with pytest.raises(StorageError, match=r"version 99, newer than this program knows"):
        open_store(store_url)
    with pytest.raises(StorageError, match="upgrade the monitor"):
        store.migrate()


def test_upgrade_from_the_first_schema_keeps_story_bands(store_url, monkeypatch):
    monkeypatch.setattr(dialects, "MIGRATIONS", dialects.MIGRATIONS[:1])
    old = open_store(store_url)
    assert old.schema_version() == 1
    old._run(lambda: (
        old._execute_count("INSERT INTO articles (url, source, fetched_at, story_id,"
                           " story_signature) VALUES (?, ?, ?, ?, ?)",
                           ("https://x.test/old", "src", "2024-05-01T12:00:00.000000+00:00",
                            "s-old", old.dialect.blob(b"sig"))),
        old._execute_count("INSERT INTO story_bands (band_key, article_id) VALUES (?, ?)",
                           (7, 1))))
    old.close()
    monkeypatch.undo()
    new = open_store(store_url)
    assert new.schema_version() == len(dialects.MIGRATIONS)
    with new.exclusive() as tx:
        assert tx.story_candidates([7], since=T0 - timedelta(days=1)) == [(1, "s-old", b"sig")]
        assert tx.story_candidates([7], since=T0 + timedelta(seconds=1)) == []
    new.close()


def test_concurrent_migrations_from_threads(store_url):
    errors: list[BaseException] = []

    def start():
        try:
            open_store(store_url).close()
        except BaseException as exc:       # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = open_store(store_url)
    assert s.schema_version() == len(dialects.MIGRATIONS)
    s.close()


# sources ---------------------------------------------------------------------------
def test_source_state_round_trip(store):
    assert store.source_state("nowhere") == SourceState(name="nowhere")
    state = SourceState(name="dw", etag='W/"abc"', last_modified="Wed, 01 May 2024 12:00:00 GMT",
                        body_hash="h", last_polled=T0, last_success=T0 - timedelta(minutes=5),
                        last_error="HTTP 503 — try later", last_error_at=T0,
                        consecutive_failures=3, next_poll=T0 + timedelta(minutes=10))
    store.save_source_state(state)
    assert store.source_state("dw") == state
    state.consecutive_failures, state.last_error = 0, None
    store.save_source_state(state)
    assert store.source_state("dw") == state
    store.save_source_state(SourceState(name="nhk"))
    assert set(store.all_source_states()) == {"dw", "nhk"}
    assert store.all_source_states()["dw"] == state


def test_seen_keys_known_urls_and_mark_seen(store):
    assert store.seen_keys("a", []) == set()
    store.mark_seen("a", ["g1", "https://x.test/1", "", "g1"], None)
    store.mark_seen("a", ["g1"], None)          # again: no error
    assert store.seen_keys("a", ["g1", "g2", "https://x.test/1"]) == {"g1", "https://x.test/1"}
    assert store.seen_keys("b", ["g1"]) == set()
    many = [f"k{i}" for i in range(1200)]       # more than one chunk of placeholders
    store.mark_seen("a", many, None)
    assert store.seen_keys("a", many + ["nope"]) == set(many)
    with store.exclusive() as tx:
        tx.insert_article(article("https://x.test/a", aliases=["https://x.test/a?utm=1"]))
    assert store.known_urls(["https://x.test/a", "https://x.test/a?utm=1",
                             "https://x.test/b"]) == {"https://x.test/a", "https://x.test/a?utm=1"}
    assert store.known_urls([]) == set()


# exclusive transactions -------------------------------------------------------------
def test_exclusive_commits_on_success(store):
    with store.exclusive() as tx:
        article_id = tx.insert_article(article("https://x.test/1"))
        tx.mark_seen("src", ["g1"], article_id)
    assert store.count_articles() == 1
    assert store.seen_keys("src", ["g1"]) == {"g1"}


def test_exclusive_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.exclusive() as tx:
            tx.insert_article(article("https://x.test/1"))
            tx.mark_seen("src", ["g1"], 1)
            raise RuntimeError("boom")
    assert store.count_articles() == 0
    assert store.seen_keys("src", ["g1"]) == set()
    with store.exclusive() as tx:               # the store is usable afterwards
        tx.insert_article(article("https://x.test/2"))
    assert store.count_articles() == 1


def test_exclusive_dry_run_rolls_back(store):
    with store.exclusive(dry_run=True) as tx:
        article_id = tx.insert_article(article("https://x.test/1"))
        assert tx.article_id_by_url(["https://x.test/1"]) == article_id
        assert tx.insert_alert(alert("a1", article_id), [("slack", False)])
    assert store.count_articles() == 0
    assert store.list_alerts() == []


def test_a_database_error_inside_exclusive_becomes_storage_error(store):
    with store.exclusive() as tx:
        tx.insert_article(article("https://x.test/1"))
    with pytest.raises(StorageError) as info:
        with store.exclusive() as tx:
            tx.insert_article(article("https://x.test/1"))      # url is UNIQUE
    assert ("UNIQUE" in str(info.value) or "unique" in str(info.value))
    assert store.count_articles() == 1
    with store.exclusive() as tx:
        tx.insert_article(article("https://x.test/2"))
    assert store.count_articles() == 2


def test_exclusive_cannot_nest(store):
    with store.exclusive():
        with pytest.raises(StorageError, match="nested"):
            with store.exclusive():
                pass


# articles -----------------------------------------------------------------------
def test_insert_article_with_bands_and_aliases(store):
    with store.exclusive() as tx:
        first = tx.insert_article(article("https://x.test/1", content_hash="H",
                                          aliases=["https://x.test/1?a", "https://x.test/1"]))
        copy = tx.insert_article(article("https://y.test/copy", content_hash="H2",
                                         duplicate_of=first, story_id=None))
        other = tx.insert_article(article("https://x.test/2", bands=(3, 4), content_hash="H3"))
    with store.exclusive() as tx:
        assert tx.article_id_by_url(["https://x.test/1"]) == first
        assert tx.article_id_by_url(["https://nope.test", "https://x.test/1?a"]) == first
        assert tx.article_id_by_url(["https://y.test/copy"]) == copy
        assert tx.article_id_by_url(["https://nope.test"]) is None
        assert tx.article_id_by_url([]) is None
        assert tx.article_id_by_hash("H") == first
        assert tx.article_id_by_hash("nope") is None
        # copies have no band rows; the article sharing more bands comes first
        assert tx.band_candidates([3, 4]) == [(other, b"\x00sig\xff"), (first, b"\x00sig\xff")]
        assert tx.band_candidates([1]) == [(first, b"\x00sig\xff")]
        assert tx.band_candidates([3, 4], limit=1) == [(other, b"\x00sig\xff")]
        assert tx.band_candidates([999]) == []
        assert tx.band_candidates([]) == []
    stored = store.get_article(first)
    assert stored.url == "https://x.test/1" and stored.content_hash == "H"
    assert stored.fetched_at == T0 and stored.published == T0 - timedelta(hours=1)
    assert store.get_article(12345) is None
    assert store.count_articles() == 3
    assert [a.id for a in store.iter_articles(batch=1)] == [first, other]
    assert [a.id for a in store.iter_articles(include_duplicates=True)] == [first, copy, other]


def test_band_keys_are_signed_64_bit(store):
    big, small = 2**63 - 1, -(2**63)
    with store.exclusive() as tx:
        article_id = tx.insert_article(article("https://x.test/1", bands=(big, small),
                                               story_bands=(big,)))
        assert tx.band_candidates([small]) == [(article_id, b"\x00sig\xff")]
        assert [c[0] for c in tx.story_candidates([big], since=T0)] == [article_id]


def test_story_candidates_respect_the_window(store):
    with store.exclusive() as tx:
        old = tx.insert_article(article("https://x.test/old", fetched_at=T0 - timedelta(days=8),
                                        story_id="s-old"))
        new = tx.insert_article(article("https://x.test/new", fetched_at=T0, story_id="s-new"))
        tx.insert_article(article("https://x.test/none", story_bands=(555,), story_id="s-x"))
    with store.exclusive() as tx:
        since = T0 - timedelta(days=7)
        assert tx.story_candidates([101, 102], since=since) == [(new, "s-new", b"\x01story\xfe")]
        both = tx.story_candidates([101], since=T0 - timedelta(days=9))
        assert [c[0] for c in both] == [new, old]            # newest first
        assert tx.story_candidates([101], since=T0 - timedelta(days=9), limit=1)[0][0] == new
        assert tx.story_candidates([], since=since) == []


def test_prune_drops_old_story_bands_only(store):
    with store.exclusive() as tx:
        old = tx.insert_article(article("https://x.test/old", fetched_at=T0 - timedelta(days=8)))
        new = tx.insert_article(article("https://x.test/new", fetched_at=T0))
    assert store.prune(T0 - timedelta(days=7)) == 2
    assert store.prune(T0 - timedelta(days=7)) == 0
    with store.exclusive() as tx:
        assert [c[0] for c in tx.story_candidates([101], since=T0 - timedelta(days=30))] == [new]
        assert [c[0] for c in tx.band_candidates([1])] == [old, new]   # dedup bands kept
    assert store.get_article(old) is not None


# alerts -------------------------------------------------------------------------
def test_insert_alert_once_per_rule_and_article(store):
    with store.exclusive() as tx:
        article_id = tx.insert_article(article("https://x.test/1"))
        assert not tx.rule_has_story_alert("r1", "story-1")
        assert tx.insert_alert(alert("a1", article_id), [("slack", False), ("mail", True)])
        assert tx.rule_has_story_alert("r1", "story-1")
        assert not tx.rule_has_story_alert("r2", "story-1")
        assert not tx.insert_alert(alert("a2", article_id), [("slack", False)])
        assert tx.insert_alert(alert("a3", article_id, rule="r2"), [])
    with store.exclusive() as tx:
        assert not tx.insert_alert(alert("a4", article_id), [("slack", False)])
    alerts = store.list_alerts()
    assert sorted(a.alert_id for a in alerts) == ["a1", "a3"]
    a1 = next(a for a in alerts if a.alert_id == "a1")
    assert a1.record["title"] == "Kishida–Kim 会談"
    assert a1.created_at == T0 and a1.followup is False
    assert [(d.notifier, d.state, d.digest) for d in a1.deliveries] == [
        ("mail", "pending", True), ("slack", "pending", False)]


def test_list_alerts_pending_only_and_limit(store):
    add_alert(store, "a1", created_at=T0)
    add_alert(store, "a2", created_at=T0 + timedelta(minutes=1))
    add_alert(store, "a3", created_at=T0 + timedelta(minutes=2), notifiers=())
    store.delivery_sent("a1", "slack", {}, T0)
    assert [a.alert_id for a in store.list_alerts()] == ["a3", "a2", "a1"]
    assert [a.alert_id for a in store.list_alerts(limit=2)] == ["a3", "a2"]
    assert [a.alert_id for a in store.list_alerts(pending_only=True)] == ["a2"]


def test_oldest_pending_delivery(store):
    assert store.oldest_pending_delivery() is None
    add_alert(store, "a1", created_at=T0)
    add_alert(store, "a2", created_at=T0 + timedelta(minutes=1))
    assert store.oldest_pending_delivery() == T0
    store.delivery_sent("a1", "slack", {}, T0)
    assert store.oldest_pending_delivery() == T0 + timedelta(minutes=1)
    store.delivery_failed("a2", "slack", "gone", permanent=True, next_attempt=None)
    assert store.oldest_pending_delivery() is None


# deliveries ------------------------------------------------------------------------
def test_claim_deliveries_lease(store):
    add_alert(store, "a1", notifiers=[("slack", False), ("mail", False)])
    claimed = store.claim_deliveries("node-a", T0, 60)
    assert sorted(row.notifier for row, _ in claimed) == ["mail", "slack"]
    assert all(record["alert_id"] == "a1" for _, record in claimed)
    assert store.claim_deliveries("node-a", T0 + timedelta(seconds=30), 60) == []
    assert store.claim_deliveries("node-b", T0 + timedelta(seconds=59), 60) == []
    # node-a died: once its lease runs out, node-b takes the deliveries over
    taken = store.claim_deliveries("node-b", T0 + timedelta(seconds=60), 60)
    assert sorted(row.notifier for row, _ in taken) == ["mail", "slack"]
    assert store.claim_deliveries("node-a", T0 + timedelta(seconds=90), 60) == []


def test_claim_deliveries_limit_and_order(store):
    for i in range(5):
        add_alert(store, f"a{i}", created_at=T0 + timedelta(minutes=i))
    first = store.claim_deliveries("n", T0 + timedelta(hours=1), 60, limit=2)
    assert [row.alert_id for row, _ in first] == ["a0", "a1"]
    rest = store.claim_deliveries("n", T0 + timedelta(hours=1), 60)
    assert [row.alert_id for row, _ in rest] == ["a2", "a3", "a4"]


def test_a_claim_takes_the_oldest_due_deliveries_without_sorting_them_all(tmp_path):
    # A pass that raised 90,000 alerts sorted every pending delivery for each claim of
    # 100 (0.3 s a claim at 46,000 pending): delivering slowed down as it went. The
    # claim's order must come from an index, whatever is pending.
    from storage import open_store
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    for i in range(3):
        add_alert(store, f"a{i}", created_at=T0 + timedelta(minutes=i))
    executed: list[str] = []
    store._conn.set_trace_callback(executed.append)
    claimed = store.claim_deliveries("n", T0 + timedelta(hours=1), 60,
                                     retry_before=T0 + timedelta(hours=1))
    store._conn.set_trace_callback(None)
    assert [row.alert_id for row, _ in claimed] == ["a0", "a1", "a2"]
    [claim] = [sql for sql in executed if "FROM deliveries d JOIN alerts" in sql]
    plan = [row[-1] for row in store._conn.execute("EXPLAIN QUERY PLAN " + claim)]
    store.close()
    assert not [step for step in plan if "TEMP B-TREE" in step], plan


def test_claim_deliveries_next_attempt_digest_and_notifier(store):
    add_alert(store, "a1", notifiers=[("slack", False), ("mail", True), ("hook", False)])
    # not due before the alert's creation
    assert store.claim_deliveries("n", T0 - timedelta(seconds=1), 60) == []
    digest = store.claim_deliveries("n", T0, 60, digest=True)
    assert [(r.notifier, r.digest) for r, _ in digest] == [("mail", True)]
    only = store.claim_deliveries("n", T0, 60, notifier="hook")
    assert [(r.notifier, r.digest) for r, _ in only] == [("hook", False)]
    store.delivery_failed("a1", "hook", "HTTP 503", permanent=False,
                          next_attempt=T0 + timedelta(minutes=5))
    assert [r.notifier for r, _ in store.claim_deliveries("n", T0, 60)] == ["slack"]
    assert store.claim_deliveries("n", T0 + timedelta(minutes=4), 60, notifier="hook") == []
    retried = store.claim_deliveries("n", T0 + timedelta(minutes=5), 60, notifier="hook")
    assert [(r.notifier, r.attempts, r.last_error) for r, _ in retried] == [("hook", 1, "HTTP 503")]


def test_claim_deliveries_retry_before_skips_backoff_but_not_a_hold(store):
    add_alert(store, "a1", notifiers=[("hook", False), ("slack", False)])
    store.claim_deliveries("n", T0, 60)
    store.delivery_failed("a1", "hook", "HTTP 503", permanent=False,
                          next_attempt=T0 + timedelta(minutes=5))
    store.delivery_failed("a1", "slack", "HTTP 429", permanent=False,
                          next_attempt=T0 + timedelta(hours=1), hold_until=T0 + timedelta(hours=1))
    later = T0 + timedelta(seconds=10)
    assert store.claim_deliveries("n", later, 60) == []
    assert store.count_pending_deliveries(later) == 1          # the held one is not due
    # A pass that began after the failures takes the one on backoff, once.
    taken = store.claim_deliveries("n", later, 60, retry_before=T0 + timedelta(seconds=5))
    assert [r.notifier for r, _ in taken] == ["hook"]
    store.delivery_failed("a1", "hook", "HTTP 503", permanent=False,
                          next_attempt=later + timedelta(minutes=5))
    assert store.claim_deliveries("n", later, 60, retry_before=T0 + timedelta(seconds=5)) == []
    assert store.count_pending_deliveries(T0 + timedelta(hours=1)) == 2


def test_deliveries_another_run_is_sending_are_not_counted_as_pending(store):
    # Two check-now runs at once: the one that finishes first must not report (and
    # exit 1 for) the deliveries the other holds a live lease on and is sending.
    add_alert(store, "a1", notifiers=[("hook", False), ("slack", False)])
    assert store.count_pending_deliveries(T0) == 2
    store.claim_deliveries("other-run", T0, 60)
    assert store.count_pending_deliveries(T0 + timedelta(seconds=30)) == 0
    # The other run died: once its lease runs out they are pending again.
    assert store.count_pending_deliveries(T0 + timedelta(seconds=61)) == 2


def test_delivery_sent_and_failed(store):
    add_alert(store, "a1", notifiers=[("slack", False), ("mail", False), ("hook", False)])
    store.claim_deliveries("n", T0, 60)
    store.delivery_sent("a1", "slack", {"ts": "1.2"}, T0 + timedelta(seconds=1))
    store.delivery_failed("a1", "mail", "550 no such user", permanent=True, next_attempt=None)
    store.delivery_failed("a1", "hook", "x" * 5000, permanent=False,
                          next_attempt=T0 + timedelta(minutes=1))
    (a1,) = store.list_alerts()
    by = {d.notifier: d for d in a1.deliveries}
    assert ((by["slack"].state, by["slack"].attempts, by["slack"].receipt)
            == ("sent", 1, {"ts": "1.2"}))
    assert by["slack"].sent_at == T0 + timedelta(seconds=1)
    assert (by["mail"].state, by["mail"].last_error) == ("failed", "550 no such user")
    assert by["hook"].state == "pending" and len(by["hook"].last_error) == 1000
    assert by["hook"].next_attempt == T0 + timedelta(minutes=1)
    # a failure frees the lease: the retry is due at next_attempt, not at lease expiry
    again = store.claim_deliveries("other", T0 + timedelta(minutes=1), 60)
    assert [r.notifier for r, _ in again] == ["hook"]
    assert store.list_alerts(pending_only=True)[0].alert_id == "a1"
    store.delivery_sent("a1", "hook", {}, T0 + timedelta(minutes=1))
    assert store.list_alerts(pending_only=True) == []


def test_thread_receipt(store):
    add_alert(store, "a1", created_at=T0)
    add_alert(store, "a2", created_at=T0 + timedelta(minutes=1))
    add_alert(store, "a3", created_at=T0 + timedelta(minutes=2), rule="r2")
    assert store.thread_receipt("slack", "story-1") is None
    store.delivery_sent("a1", "slack", {}, T0)          # no receipt: nothing to thread on
    assert store.thread_receipt("slack", "story-1") is None
    store.delivery_sent("a3", "slack", {"ts": "r2-first"}, T0 + timedelta(minutes=1))
    store.delivery_sent("a2", "slack", {"ts": "later"}, T0 + timedelta(minutes=2))
    assert store.thread_receipt("slack", "story-1") == {"ts": "r2-first"}
    assert store.thread_receipt("slack", "story-1", "r1") == {"ts": "later"}
    assert store.thread_receipt("mail", "story-1") is None
    assert store.thread_receipt("slack", "other-story") is None


# source leases ------------------------------------------------------------------------
def test_claim_due_sources(store):
    store.save_source_state(SourceState(name="due", next_poll=T0 - timedelta(seconds=1)))
    store.save_source_state(SourceState(name="later", next_poll=T0 + timedelta(minutes=5)))
    store.save_source_state(SourceState(name="unscheduled"))
    names = ["due", "later", "unscheduled", "brand-new"]
    assert store.claim_due_sources("a", T0, 60, names) == ["brand-new", "unscheduled", "due"]
    assert "brand-new" in store.all_source_states()
    assert store.claim_due_sources("b", T0 + timedelta(seconds=30), 60, names) == []
    store.release_source("due", "b")                # not b's: nothing happens
    assert store.claim_due_sources("b", T0 + timedelta(seconds=30), 60, names) == []
    store.release_source("due", "a")
    assert store.claim_due_sources("b", T0 + timedelta(seconds=30), 60, names) == ["due"]
    # a's leases expire at T0+60; b's on "due" at T0+90
    assert store.claim_due_sources("c", T0 + timedelta(seconds=60), 60, names) == [
        "brand-new", "unscheduled"]
    assert store.claim_due_sources("c", T0 + timedelta(minutes=5), 60, ["later", "due"]) == [
        "due", "later"]
    assert store.claim_due_sources("c", T0, 60, []) == []


def test_claim_due_sources_limit(store):
    names = [f"s{i:02d}" for i in range(10)]
    first = store.claim_due_sources("a", T0, 60, names, limit=4)
    second = store.claim_due_sources("b", T0, 60, names, limit=100)
    assert len(first) == 4 and len(second) == 6 and not set(first) & set(second)


def test_save_source_state_keeps_the_lease(sql_store):
    store = sql_store
    assert store.claim_due_sources("a", T0, 60, ["dw"]) == ["dw"]
    store.save_source_state(SourceState(name="dw", next_poll=T0 - timedelta(minutes=1)))
    rows = store._run(lambda: store._fetch(
        "SELECT lease_owner, lease_until FROM sources WHERE name = ?", ("dw",)), write=False)
    assert rows == [("a", "2024-05-01T12:01:00.000000+00:00")]
    assert store.claim_due_sources("b", T0 + timedelta(seconds=1), 60, ["dw"]) == []


def test_renew_leases_extends_only_the_leases_named(store):
    add_alert(store, "a1", notifiers=[("slack", False), ("mail", False)])
    assert store.claim_due_sources("a", T0, 60, ["dw", "nhk", "kbs"]) == ["dw", "kbs", "nhk"]
    assert len(store.claim_deliveries("a", T0, 60)) == 2
    store.release_source("nhk", "a")
    # a works on dw and on the slack delivery; kbs and the mail delivery were abandoned.
    store.renew_leases("a", T0 + timedelta(seconds=50), 60, sources=["dw", "nhk"],
                       deliveries=[("a1", "slack")])
    later = T0 + timedelta(seconds=100)     # past the first lease, inside the renewed one
    assert store.claim_due_sources("b", later, 60, ["dw", "nhk", "kbs"]) == ["kbs", "nhk"]
    assert [r.notifier for r, _ in store.claim_deliveries("b", later, 60)] == ["mail"]
    store.renew_leases("b", later, 60, sources=["dw"], deliveries=[("a1", "slack")])
    assert store.claim_deliveries("c", T0 + timedelta(seconds=110), 60) != []   # a's ran out


def test_released_deliveries_can_be_taken_at_once(store):
    add_alert(store, "a1", notifiers=[("slack", False), ("mail", False)])
    assert len(store.claim_deliveries("a", T0, 600)) == 2
    store.release_deliveries("b", [("a1", "slack")])       # not b's: nothing happens
    store.release_deliveries("a", [("a1", "slack")])
    assert [r.notifier for r, _ in store.claim_deliveries("b", T0, 600)] == ["slack"]


def test_leases_of_a_dead_owner_can_be_released_at_once(store):
    add_alert(store, "a1")
    assert store.claim_due_sources("dead:1", T0, 600, ["dw"]) == ["dw"]
    assert len(store.claim_deliveries("dead:1", T0, 600)) == 1
    assert store.lease_owners() == {"dead:1"}
    store.release_owner("dead:1")
    assert store.lease_owners() == set()
    assert store.claim_due_sources("b", T0, 600, ["dw"]) == ["dw"]
    assert len(store.claim_deliveries("b", T0, 600)) == 1


# errors and retries ---------------------------------------------------------------------
def test_a_closed_store_says_so(store):
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.count_articles()
    store.close()


def test_sqlite_busy_beyond_timeout_is_retried(tmp_path):
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    store.dialect.busy_timeout = 0.05
    store._drop_connection()        # reconnect with the short busy timeout
    store._ensure_connection()
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, blocker.execute, ("COMMIT",))
    release.start()
    started = time.monotonic()
    store.retries, store.retry_delay = 8, 0.05
    store.save_source_state(SourceState(name="dw", etag="e"))
    assert time.monotonic() - started >= 0.3
    assert store.source_state("dw").etag == "e"
    release.join()

    blocker.execute("BEGIN IMMEDIATE")
    store.retries = 1
    with pytest.raises(StorageError, match=r"busy\.db: database is locked"):
        store.save_source_state(SourceState(name="dw", etag="f"))
    with pytest.raises(StorageError, match="locked"):
        with store.exclusive():
            pass
    blocker.execute("COMMIT")
    blocker.close()
    store.close()


def test_sqlite_cannot_open_says_where(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StorageError, match="dir.db"):
        open_store(f"sqlite:///{tmp_path}/dir.db")


def test_postgres_dropped_connection_is_reconnected_once(pg_url):
    import psycopg

    store = open_store(pg_url)
    store.save_source_state(SourceState(name="dw", etag="1"))

    def kill_session():
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))

    kill_session()
    assert store.source_state("dw").etag == "1"          # a read after the drop
    kill_session()
    store.save_source_state(SourceState(name="dw", etag="2"))   # a write after the drop
    kill_session()
    with store.exclusive() as tx:                        # taking the lock after the drop
        tx.insert_article(article("https://x.test/1"))
    assert store.count_articles() == 1
    assert store.source_state("dw").etag == "2"
    store.close()


def test_postgres_transient_errors_are_classified(pg_url):
    import psycopg

    store = open_store(pg_url)
    d = store.dialect
    assert d.is_transient(psycopg.errors.SerializationFailure())
    assert d.is_transient(psycopg.errors.DeadlockDetected())
    assert d.is_transient(psycopg.OperationalError("server closed the connection"))
    assert not d.is_transient(psycopg.errors.UniqueViolation())
    assert not d.is_transient(psycopg.errors.UndefinedTable())
    store.close()


def test_postgres_serialization_failure_is_retried(pg_url):
    """A transaction that fails with a real deadlock once is run again."""

    store = open_store(pg_url)
    store.save_source_state(SourceState(name="dw"))
    calls = []

    def work():
        calls.append(1)
        if len(calls) == 1:
            # what PostgreSQL raises for a deadlock victim
            store._fetch("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$")
        return store._execute_count("UPDATE sources SET etag = ? WHERE name = ?", ("ok", "dw"))

    assert store._run(work) == 1
    assert len(calls) == 2
    assert store.source_state("dw").etag == "ok"
    store.close()


def test_postgres_errors_never_show_the_password():
    server = require_server()
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    bad = f"postgresql://someone:s3cr%40t-pw@{parts.hostname}:{parts.port or 5432}/nodb"
    with pytest.raises(StorageError) as info:
        open_store(bad)
    message = str(info.value)
    assert "s3cr" not in message and "t-pw" not in message
    assert f"{parts.hostname}:{parts.port or 5432}/nodb" in message
    closed = "postgresql://u:hunter2@127.0.0.1:1/db"
    with pytest.raises(StorageError) as info:
        open_store(closed)
    assert "hunter2" not in str(info.value) and "127.0.0.1:1/db" in str(info.value)


def test_unreachable_postgres_reason_names_the_variable():
    reason = unreachable_reason("postgresql://u:pw@127.0.0.1:1/db")
    assert reason == ("PostgreSQL not reachable at 127.0.0.1:1: "
                      "set MONITOR_TEST_POSTGRES_URL")


def test_redact():
    assert redact("postgresql://u:p%40ss@h/db failed") == "postgresql://u:***@h/db failed"
    assert redact("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert redact("bad pw: hunter2", ["hunter2"]) == "bad pw: ***"


# query plans -------------------------------------------------------------------------------
def _plan_sqlite(store, sql, params):
    plan = store.explain(sql, params)
    for table in ("article_bands", "story_bands", "articles"):
        # "SCAN t" without an index is a full scan; "SCAN b" (the subquery) is fine
        assert f"SCAN {table}\n" not in plan + "\n", plan
        assert f"SCAN {table} " not in plan or "COVERING INDEX" in plan, plan
    return plan


def test_lookup_query_plans_use_indexes_sqlite(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/plans.db")
    sql, params = SQLTransaction.band_query([1, 2, 3], 50)
    plan = _plan_sqlite(store, sql, params)
    assert "article_bands_key_article" in plan
    assert "USING INTEGER PRIMARY KEY" in plan
    sql, params = SQLTransaction.story_query([1, 2, 3], T0, 50)
    plan = _plan_sqlite(store, sql, params)
    assert "story_bands_key_time" in plan
    store.close()


def test_lookup_query_plans_use_indexes_postgres(pg_url):
    """With statistics and enough band rows for the planner to care: no band table scans."""
    store = open_store(pg_url)
    store._run(lambda: [store._execute_count(s) for s in (
        "INSERT INTO articles (url, source, fetched_at, content_hash, signature, story_id,"
        " story_signature) SELECT 'https://x.test/' || i, 'src',"
        " '2024-05-01T12:00:00.000000+00:00', md5(i::text), '\\x00'::bytea, 's' || (i % 997),"
        " '\\x01'::bytea FROM generate_series(1, 5000) AS i",
        "INSERT INTO article_bands (band_key, article_id) SELECT (i::bigint * 32 + b) * 7919, i"
        " FROM generate_series(1, 5000) AS i, generate_series(1, 32) AS b",
        "INSERT INTO story_bands (band_key, article_id, fetched_at)"
        " SELECT (i::bigint * 64 + b) * 7907, i, '2024-05-01T12:00:00.000000+00:00'"
        " FROM generate_series(1, 5000) AS i,"
        " generate_series(1, 64) AS b",
    )])
    store._run(lambda: [store._execute_count(f"ANALYZE {t}")
                        for t in ("articles", "article_bands", "story_bands")], write=False)
    keys = [(500 * 32 + b) * 7919 for b in range(1, 33)]
    sql, params = SQLTransaction.band_query(keys, 50)
    plan = store.explain(sql, params)
    # (articles may be hashed whole at this size; at 10^6 rows the planner joins by id)
    assert "Seq Scan on article_bands" not in plan and "article_bands_key_article" in plan, plan
    with store.exclusive() as tx:
        assert [c[0] for c in tx.band_candidates(keys)] == [500]
    skeys = [(700 * 64 + b) * 7907 for b in range(1, 65)]
    sql, params = SQLTransaction.story_query(skeys, T0 - timedelta(days=7), 50)
    plan = store.explain(sql, params)
    assert "Seq Scan on story_bands" not in plan and "story_bands_key_time" in plan, plan
    with store.exclusive() as tx:
        assert [c[0] for c in tx.story_candidates(skeys, since=T0 - timedelta(days=7))] == [700]
    store.close()


# the web page's reads, and muted stories ------------------------------------------------

def test_a_muted_storys_new_alerts_are_recorded_but_not_delivered(store):
    add_alert(store, "before", created_at=T0)
    assert store.mute_story("story-1", T0) is True
    assert store.mute_story("story-1", T0) is False          # muted already
    add_alert(store, "during", created_at=T0 + timedelta(minutes=1))

    alerts = {a.alert_id: a for a in store.list_alerts()}
    assert [d.state for d in alerts["during"].deliveries] == ["muted"]
    assert alerts["during"].muted and not alerts["before"].muted
    claimed = store.claim_deliveries("node", T0 + timedelta(hours=1), 60)
    assert [row.alert_id for row, _ in claimed] == ["before"]
    assert store.oldest_pending_delivery() == T0
    assert set(store.muted_stories()) == {"story-1"}

    assert store.unmute_story("story-1") is True
    assert store.unmute_story("story-1") is False
    add_alert(store, "after", created_at=T0 + timedelta(minutes=2))
    after = next(a for a in store.list_alerts() if a.alert_id == "after")
    assert [d.state for d in after.deliveries] == ["pending"]
    assert store.muted_stories(["story-1", "other"]) == {}


def test_alerts_filtered_by_rule_source_period_and_paged_newest_first(store):
    for i in range(5):
        add_alert(store, f"a{i}", created_at=T0 + timedelta(hours=i),
                  rule="r1" if i % 2 == 0 else "r2")
    newest_first = [a.alert_id for a in store.list_alerts()]
    assert newest_first == ["a4", "a3", "a2", "a1", "a0"]
    assert [a.alert_id for a in store.list_alerts(rule="r2")] == ["a3", "a1"]
    assert [a.alert_id for a in store.list_alerts(source="src")] == newest_first
    assert store.list_alerts(source="elsewhere") == []
    assert [a.alert_id for a in store.list_alerts(since=T0 + timedelta(hours=3))] == ["a4", "a3"]
    assert [a.alert_id for a in store.list_alerts(until=T0 + timedelta(hours=1))] == ["a0"]

    first = store.list_alerts(limit=2)
    cursor = (first[-1].created_at, first[-1].alert_id)
    second = store.list_alerts(limit=2, before=cursor)
    third = store.list_alerts(limit=2, before=(second[-1].created_at, second[-1].alert_id))
    assert [a.alert_id for a in first + second + third] == newest_first
    assert store.get_alert("a2").source == "src"
    assert store.get_alert("nope") is None


def test_alerts_on_one_instant_page_without_loss_or_repeat(store):
    for i in range(4):
        add_alert(store, f"same{i}", created_at=T0)
    seen, before = [], None
    while True:
        page = store.list_alerts(limit=3, before=before)
        if not page:
            break
        seen += [a.alert_id for a in page]
        before = (page[-1].created_at, page[-1].alert_id)
    assert sorted(seen) == [f"same{i}" for i in range(4)] and len(seen) == 4


def test_highlight_spans_are_kept_with_the_alert(store):
    with store.exclusive() as tx:
        article_id = tx.insert_article(article("https://x.test/h"))
        row = alert("h1", article_id)
        row.highlights = [(0, 7), (12, 15)]
        tx.insert_alert(row, [("slack", False)])
    assert store.get_alert("h1").highlights == [(0, 7), (12, 15)]


def test_story_articles_with_their_copies_and_signatures(store):
    with store.exclusive() as tx:
        original = tx.insert_article(article("https://x.test/o", story_id="s9"))
        copy = tx.insert_article(article("https://y.test/c", story_id=None, duplicate_of=original,
                                         signature=b"copy-sig"))
        tx.insert_article(article("https://z.test/other", story_id="s8"))
    assert [a.id for a in store.story_articles("s9")] == [original, copy]
    assert store.article_signatures([original, copy]) == {original: b"\x00sig\xff",
                                                          copy: b"copy-sig"}
    assert store.story_exists("s9") and not store.story_exists("s-none")


def test_polls_and_alerts_counted_per_source_and_day(store):
    store.record_poll("wire", T0, ok=True)
    store.record_poll("wire", T0 + timedelta(hours=1), ok=False)
    store.record_poll("wire", T0 + timedelta(days=1), ok=True)
    store.record_poll("daily", T0, ok=True)
    assert store.poll_days(T0) == {("wire", "2024-05-01"): (1, 1), ("wire", "2024-05-02"): (1, 0),
                                   ("daily", "2024-05-01"): (1, 0)}
    assert store.poll_days(T0 + timedelta(days=1)) == {("wire", "2024-05-02"): (1, 0)}
    add_alert(store, "d1", created_at=T0)
    add_alert(store, "d2", created_at=T0 + timedelta(hours=2))
    assert store.alert_days(T0 - timedelta(days=1)) == {("src", "2024-05-01"): 2}


def test_a_scratch_store_sees_its_own_writes_and_keeps_none(store_url):
    real = open_store(store_url)
    with real.exclusive() as tx:
        tx.insert_article(article("https://x.test/stored"))
    real.close()

    scratch = open_store(store_url, scratch=True)
    with scratch.exclusive() as tx:
        assert tx.article_id_by_url(["https://x.test/stored"]) is not None
        tx.insert_article(article("https://x.test/dry", content_hash="dry"))
    with scratch.exclusive() as tx:
        assert tx.article_id_by_url(["https://x.test/dry"]) is not None
    with pytest.raises(RuntimeError):
        with scratch.exclusive() as tx:           # a failed transaction is undone alone
            tx.insert_article(article("https://x.test/undone", content_hash="undone"))
            raise RuntimeError
    assert scratch.known_urls(["https://x.test/dry", "https://x.test/undone"]) == {
        "https://x.test/dry"}
    scratch.close()

    after = open_store(store_url)
    assert after.known_urls(["https://x.test/stored", "https://x.test/dry"]) == {
        "https://x.test/stored"}
    after.close()


def test_a_sound_store_passes_its_check(store):
    store.check()
    store.migrate()                 # again: nothing changes
    assert store.count_articles() == 0


def test_claimed_deliveries_carry_the_alerts_highlights(store):
    with store.exclusive() as tx:
        article_id = tx.insert_article(article("https://x.test/h"))
        row = alert("h1", article_id)
        row.highlights = [(0, 7), (20, 26)]
        assert tx.insert_alert(row, [("mail", False)])
        plain = alert("h2", article_id, rule="r2")
        assert tx.insert_alert(plain, [("mail", False)])
    claimed = {d.alert_id: (d, record) for d, record in store.claim_deliveries("n", T0, 60)}
    assert claimed["h1"][0].highlights == [(0, 7), (20, 26)]
    assert claimed["h2"][0].highlights == []
    assert "highlights" not in claimed["h1"][1]
