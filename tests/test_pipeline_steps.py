"""The pipeline's pure steps: a source's state after a poll, the routing table,
health notices, the parser table and what the worker processes import."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import parse_config
from monitor.pipeline.health import (
    BROKEN,
    HEALTH_RULE,
    RECOVERED,
    HealthNotice,
    event_after_poll,
)
from monitor.pipeline.parse import PARSERS, Body, parse_source
from monitor.pipeline.recording import Recorder
from monitor.pipeline.routing import Routing
from monitor.pipeline.workers import PRELOAD
from monitor.sources.polling import PollPolicy
from storage import open_store
from storage.base import SourceState
from tests.conftest import ROOT

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIDDLE = lambda: 0.5  # noqa: E731  (no jitter)
POLICY = PollPolicy(interval=600, adaptive=False)


# --------------------------------------------------------------- SourceState

def test_a_failure_is_recorded_on_the_state_and_counted():
    state = SourceState("wire", last_success=NOW - timedelta(days=1), consecutive_failures=2)
    state.record_failure("HTTP 503", NOW)
    assert (state.last_polled, state.last_error, state.last_error_at) == (NOW, "HTTP 503", NOW)
    assert state.consecutive_failures == 3
    assert state.last_success == NOW - timedelta(days=1)


@pytest.mark.parametrize("complete, etag, body_hash, expected", [
    # every entry dealt with: the validators and the hash are kept for next time
    (True, '"v2"', "h2", ('"v2"', "lm2", "h2")),
    # a 304 has no body: the hash of the last body stands
    (True, '"v2"', None, ('"v2"', "lm2", "h1")),
    # entries left over: the old validators stay, so the body is fetched again
    (False, '"v2"', "h2", ('"v1"', "lm1", "h1")),
])
def test_a_success_resets_the_failures_and_keeps_validators_only_when_complete(
        complete, etag, body_hash, expected):
    state = SourceState("wire", etag='"v1"', last_modified="lm1", body_hash="h1",
                        consecutive_failures=4, last_error="HTTP 503")
    state.record_success(NOW, etag=etag, last_modified="lm2", body_hash=body_hash,
                         complete=complete)
    assert (state.etag, state.last_modified, state.body_hash) == expected
    assert (state.last_polled, state.last_success, state.consecutive_failures) == (NOW, NOW, 0)
    assert state.last_error == "HTTP 503"      # the last error stays on record


@pytest.mark.parametrize("failures, status, retry_after, next_in, hold_for", [
    (0, "ok", None, 600, None),
    (0, "not_modified", None, 600, None),
    (1, "error", None, 600, None),
    (3, "error", None, 2400, None),            # backoff: 600 * 2**2
    (1, "error", 3600, 3600, 3600),            # Retry-After is a floor, and a hold
    (1, "error", 10 * 86400, 86400, 86400),    # both capped at a day
    (0, "ok", 0, 600, None),                   # Retry-After: 0 holds nothing
])
def test_the_next_check_follows_the_policy_and_the_server(failures, status, retry_after,
                                                           next_in, hold_for):
    state = SourceState("wire", consecutive_failures=failures)
    state.schedule_next_check(NOW, POLICY, status=status, retry_after=retry_after,
                              rand=MIDDLE)
    assert state.next_poll == NOW + timedelta(seconds=next_in)
    assert state.hold_until == (None if hold_for is None else NOW + timedelta(seconds=hold_for))


def test_a_source_is_on_hold_until_the_time_its_server_asked_for():
    state = SourceState("wire")
    state.schedule_next_check(NOW, POLICY, status="error", retry_after=3600, rand=MIDDLE)
    assert state.on_hold(NOW + timedelta(minutes=59))
    assert not state.on_hold(NOW + timedelta(minutes=60))
    state.schedule_next_check(NOW, POLICY, status="ok", rand=MIDDLE)
    assert not state.on_hold(NOW)


def test_a_server_floor_delays_the_next_check():
    state = SourceState("wire")
    state.schedule_next_check(NOW, POLICY, status="ok", max_age=1800, rand=MIDDLE)
    assert state.next_poll == NOW + timedelta(seconds=1800)


@pytest.mark.parametrize("interval, expected", [
    (600, (60, 6 * 3600)),           # inside the bounds: the bounds stand
    (30, (30, 6 * 3600)),            # shorter than min_interval: what the user asked for
    (86400, (60, 86400)),            # longer than max_interval: likewise
])
def test_a_sources_policy_takes_in_its_configured_interval(interval, expected):
    policy = PollPolicy.for_source(interval, min_interval=60, max_interval=6 * 3600,
                                   adaptive=True)
    assert (policy.interval, policy.min_interval, policy.max_interval) == (interval, *expected)


# ------------------------------------------------------------------- routing

def config(rules: list[dict], notifiers: list[dict], health: list[str] | None = None):
    data = {"monitor": {"health_notify": health or []},
            "sources": [{"name": "wire", "kind": "feed", "url": "https://example.org/rss"}],
            "rules": rules, "notifiers": notifiers}
    return parse_config(data, path="test.toml", env={})


def test_the_routing_table_gives_each_rule_its_channels_and_digest_modes():
    cfg = config(
        rules=[{"name": "summit", "query": "summit", "notify": ["archive", "morning"]},
               {"name": "quiet", "query": "abduct*"}],
        notifiers=[{"name": "archive", "kind": "jsonl", "path": "alerts.jsonl"},
                   {"name": "morning", "kind": "jsonl", "path": "digest.jsonl",
                    "mode": "digest", "schedule": "0 8 * * *"}],
        health=["archive"])
    routing = Routing.from_config(cfg)
    assert routing.for_rule("summit") == [("archive", False), ("morning", True)]
    assert routing.for_rule("quiet") == [("console", False)]      # no notify: the console
    assert routing.health == [("archive", False)]
    routing.for_rule("summit").append(("x", False))             # a copy each time
    assert routing.for_rule("summit") == [("archive", False), ("morning", True)]


def test_without_health_channels_there_are_no_health_routes():
    cfg = config(rules=[{"name": "summit", "query": "summit"}], notifiers=[])
    assert Routing.from_config(cfg).health == []


# ------------------------------------------------------------- health notices

@pytest.mark.parametrize("failed, before, after, expected", [
    (True, 4, 5, BROKEN),        # the failure that reaches broken_after
    (True, 5, 6, None),          # told once, not on every failure after
    (True, 2, 3, None),
    (False, 7, 0, RECOVERED),    # the first success after being broken
    (False, 4, 0, None),         # never reported broken: nothing to recover from
    (False, 0, 0, None),
])
def test_a_notice_is_due_when_a_source_breaks_or_recovers(failed, before, after, expected):
    assert event_after_poll(failed=failed, failures_before=before, failures=after,
                            broken_after=5) == expected


def test_a_notice_reads_as_before_and_is_stored_apart_from_articles():
    broken = HealthNotice("wire", BROKEN, 5, "https://example.org/rss", NOW, "HTTP 503")
    record = broken.record()
    assert record.to_dict() == {
        "alert_id": broken.alert_id, "rule": HEALTH_RULE, "story_id": "source:wire",
        "followup": False, "url": "https://example.org/rss",
        "title": "Source 'wire' is broken: 5 failures in a row", "source": "wire",
        "published": NOW.isoformat(), "matched": [], "snippet": "HTTP 503"}
    recovered = HealthNotice("wire", RECOVERED, 6, "https://example.org/rss", NOW)
    assert recovered.record().title == "Source 'wire' has recovered after 6 failures"
    assert recovered.record().followup is True
    row = broken.row()
    assert (row.rule, row.story_id, row.record) == (HEALTH_RULE, "source:wire", record.to_dict())
    # Two notices at the same moment are two alerts, neither on any article's key.
    keys = {HealthNotice("wire", BROKEN, 5, "u", NOW).key for _ in range(100)}
    assert len(keys) == 100 and max(keys) < 0


# ------------------------------------------------------------------- parsing

def test_every_source_kind_has_a_parser():
    assert set(PARSERS) == {"feed", "page", "sitemap"}


def test_the_parser_is_chosen_by_the_kind():
    sitemap = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
               b'sitemap/0.9"><url><loc>https://example.org/news/1</loc></url></urlset>')
    parsed = parse_source("sitemap", Body(sitemap, url="https://example.org/sitemap.xml"))
    assert [e.url for e in parsed.entries] == ["https://example.org/news/1"]
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><ttl>30</ttl>'
           b'<item><title>Summit</title><link>https://example.org/news/2</link></item>'
           b'</channel></rss>')
    parsed = parse_source("feed", Body(rss, url="https://example.org/rss",
                                       content_type="application/rss+xml"))
    assert [e.url for e in parsed.entries] == ["https://example.org/news/2"]
    assert parsed.ttl == 1800
    page = (b'<html><body><a href="/news/3">A summit in Pyongyang is announced</a>'
            b'<a href="/about">About</a></body></html>')
    parsed = parse_source("page", Body(page, url="https://example.org/",
                                       link_pattern="/news/"))
    assert [e.url for e in parsed.entries] == ["https://example.org/news/3"]


# ----------------------------------------------------------- worker processes

def test_worker_processes_import_the_steps_and_not_the_orchestrator():
    code = ("import importlib, sys\n"
            f"for name in {PRELOAD!r}:\n"
            "    importlib.import_module(name)\n"
            "print('monitor.pipeline.orchestrator' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------ health notices in the outbox

@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/monitor.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    s = open_store(url)
    yield s
    s.close()


def test_notices_at_one_moment_are_each_recorded_for_the_health_channels(store):
    cfg = config(rules=[{"name": "summit", "query": "summit"}],
                 notifiers=[{"name": "archive", "kind": "jsonl", "path": "alerts.jsonl"}],
                 health=["archive"])
    recorder = Recorder(store, Routing.from_config(cfg), max_age=cfg.monitor.max_age,
                        source_links={"wire": "https://example.org/rss"})
    notices = [HealthNotice("wire", BROKEN, 5, "https://example.org/rss", NOW, "HTTP 503"),
               HealthNotice("wire", RECOVERED, 5, "https://example.org/rss", NOW)]
    for notice in notices:
        recorder.record_notice(notice)
    stored = {a.alert_id: a for a in store.list_alerts(rule=HEALTH_RULE)}
    assert set(stored) == {n.alert_id for n in notices}
    for notice in notices:
        alert = stored[notice.alert_id]
        assert alert.record == notice.record().to_dict()
        assert [(d.notifier, d.state) for d in alert.deliveries] == [("archive", "pending")]


def test_only_an_article_that_matches_a_rule_is_given_a_story():
    from monitor.models import Article
    from monitor.pipeline.process import analyse
    rules = (("summit", "Kishida NEAR/5 summit"),)
    words = " ".join(f"word{i}" for i in range(60))
    on_topic = analyse(Article(url="https://a.test/1", title="Kishida seeks a summit",
                               text=f"Kishida said a summit was possible. {words}",
                               source="wire"), rules)
    off_topic = analyse(Article(url="https://a.test/2", title="Rain in Osaka",
                                text=f"Heavy rain is expected. {words}", source="wire"), rules)
    assert list(on_topic.matches) == ["summit"]
    assert on_topic.fingerprints.story_signature is not None
    assert len(on_topic.fingerprints.story_band_keys) == 64
    # No rule matched: no story look-up, but still every dedup layer of its own.
    assert off_topic.matches == {}
    assert off_topic.fingerprints.story_signature is None
    assert off_topic.fingerprints.story_band_keys == []
    assert off_topic.fingerprints.signature is not None
    assert len(off_topic.fingerprints.band_keys) == 32
    assert off_topic.fingerprints.content_hash != on_topic.fingerprints.content_hash
