"""Delivery policy: backoff, digests on their schedule, nothing lost between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.delivery.outbox import BACKOFF_BASE, BACKOFF_CAP, backoff, digest_due
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_outbox import Hook, config


@pytest.mark.parametrize("attempts,rand,expected", [
    (1, 0.5, BACKOFF_BASE),             # middle of the jitter range: the base delay
    (2, 0.5, 2 * BACKOFF_BASE),
    (3, 0.5, 4 * BACKOFF_BASE),
    (1, 0.0, 0.5 * BACKOFF_BASE),       # jitter spans 0.5x .. 1.5x
    (1, 1.0, 1.5 * BACKOFF_BASE),
    (40, 0.5, BACKOFF_CAP),             # capped
])
def test_backoff_is_exponential_jittered_and_capped(attempts, rand, expected):
    assert backoff(attempts, rand=lambda: rand) == pytest.approx(expected)


def test_backoff_honours_retry_after_but_not_beyond_the_cap():
    assert backoff(1, retry_after=900, rand=lambda: 0.5) == 900
    assert backoff(1, retry_after=10**9, rand=lambda: 0.5) == BACKOFF_CAP
    assert backoff(5, retry_after=1, rand=lambda: 0.5) == 16 * BACKOFF_BASE


T = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)      # 08:30 in Tokyo


@pytest.mark.parametrize("oldest,now,due", [
    (None, T, False),                                           # nothing waits
    (T - timedelta(hours=1), T, True),                          # 08:00 Tokyo passed since
    (T - timedelta(minutes=10), T, False),                      # next 08:00 is tomorrow
    (T - timedelta(days=3), T, True),                           # missed while down: now
])
def test_digest_is_due_once_its_time_passed_since_the_oldest_pending_alert(oldest, now, due):
    assert digest_due("0 8 * * *", "Asia/Tokyo", oldest, now) is due


def test_digest_gathers_alerts_and_sends_them_once_at_its_time(project, http_server):
    hook = Hook(http_server)
    wire = Site(http_server, "Asia Wire", "/wire")
    stories = [Story.from_file("kishida-summit", PAIRS / "en_original.txt"),
               Story.from_file("tokyo-renews-offer", PAIRS / "en_rewrite.txt")]
    wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in stories]), "application/rss+xml")
    project.write(config(wire.url("/rss.xml"), f"""
[[notifiers]]
name = "morning"
kind = "webhook"
url = "{hook.url}"
mode = "digest"
schedule = "0 8 * * *"
timezone = "Asia/Tokyo"
""", ["archive", "morning"]))

    first = project.cli("check-now", "--json")

    assert first.code == 0 and first.json()["alerts"] == 2
    assert hook.received == []                       # not its time yet
    pending = project.cli("alerts", "list", "--pending", "--json").json()
    assert len(pending) == 2

    # A day passes (the alerts were recorded before the last 08:00 in Tokyo).
    from storage import open_store
    store = open_store(f"sqlite:///{project.path}/data/monitor.db")
    day_before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    store._execute_count("UPDATE alerts SET created_at = ?", (day_before,))
    store._execute_count("UPDATE deliveries SET queued_at = ?", (day_before,))
    store.close()
    second = project.cli("check-now", "--json")

    assert second.code == 0
    [digest] = hook.received
    assert digest["digest"] is True
    assert sorted(a["title"] for a in digest["alerts"]) == sorted(s.title for s in stories)
    assert project.cli("alerts", "list", "--pending", "--json").json() == []
    project.cli("check-now")
    assert len(hook.received) == 1                   # sent once
