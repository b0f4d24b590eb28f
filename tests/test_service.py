"""The daemon as a user runs it: `run` in its own process, stopped by signals,
killed with SIGKILL at several moments, and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.newsroom import PAIRS, RULE_TEXTS, Site, Story, rss20
from tests.test_check_now import config
from tests.test_notify_email import free_port


def start(project, *args: str) -> subprocess.Popen:
    # Output goes to files: a pipe would tie the test to every process that inherits it.
    log = open(project.path / "daemon.log", "a")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), "run", "--tick", "0.5", *args],
                            cwd=project.path, stdout=log, stderr=log, text=True)
    log.close()
    return proc


def log_events(project) -> list[dict]:
    lines = (project.path / "daemon.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def processes_in(path: Path) -> list[int]:
    """Processes whose working directory is ``path`` (the daemon and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == path:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_polls_alerts_serves_health_and_stops_cleanly(project, http_server, sig):
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    port = free_port()
    proc = start(project, "--http", f"127.0.0.1:{port}")
    try:
        wait_for(lambda: project.alerts(), what="the alert")
        status, body = wait_for(lambda: _try_get(f"http://127.0.0.1:{port}/healthz"),
                                what="/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, page = get(f"http://127.0.0.1:{port}/")           # the web page beside them
        assert status == 200 and "Alerts" in page
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'monitor_polls_total{source="wire",status="ok"}' in metrics
        assert 'monitor_alerts_total{source="wire"} 1' in metrics
        assert "monitor_delivery_lag_seconds" in metrics
        assert "monitor_event_loop_lag_seconds" in metrics
        assert 'monitor_source_last_success_timestamp_seconds{source="wire"}' in metrics
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=10)         # the guarantee: stopped within 10 s, or this raises
    assert proc.returncode == 0
    events = log_events(project)
    assert any(e.get("event") == "poll" and e.get("source") == "wire" for e in events)
    assert events[-1]["message"] == "stopped"
    assert [a["title"] for a in project.alerts()] == [story.title]


def _try_get(url: str):
    try:
        return get(url)
    except OSError:
        return None


def test_run_rejects_a_bad_http_address(project):
    project.write(config([("wire", "feed", "https://example.org/rss")]))
    result = project.cli("run", "--http", "nowhere")
    assert result.code == 2 and "HOST:PORT" in result.err


def test_stop_during_a_slow_poll_finishes_or_leaves_it_pending(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    stories = [Story.from_file(f"s{i}", RULE_TEXTS / f"summit_en_{i}.txt") for i in (1, 2, 3)]
    urls = [wire.publish(s) for s in stories]
    for story in stories:
        path = f"/wire/news/{story.slug}"
        page = http_server._routes[path]
        http_server.route(path, handler=_slowly(page, 2.0))
    wire.feed("/rss.xml", rss20(list(zip(stories, urls, strict=True))), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    proc = start(project)
    wait_for(lambda: http_server.requests_for(f"/wire/news/{stories[0].slug}"), what="a page fetch")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert proc.returncode == 0

    # Whatever the stop cut short is done by the next start, and nothing twice.
    done = project.cli("check-now", "--json")
    assert done.code == 0
    urls_alerted = [a["url"] for a in project.alerts()]
    assert sorted(urls_alerted) == sorted(urls)


def _slowly(handler, seconds: float):
    def slow(request):
        time.sleep(seconds)
        return handler(request)
    return slow


@pytest.mark.parametrize("kill_after", [0.3, 1.5, 3.0, 5.0])
def test_kill_9_at_any_moment_loses_nothing_and_repeats_at_most_the_delivery_in_flight(
        project, http_server, kill_after):
    wire = Site(http_server, "Asia Wire", "/wire")
    names = ["summit_en_1.txt", "summit_en_2.txt", "summit_en_3.txt", "summit_ja_1.txt",
             "abductees_en_1.txt", "summit_ja_2.txt"]
    stories = [Story.from_file(f"s{i}", RULE_TEXTS / n, guid=f"g{i}") for i, n in enumerate(names)]
    urls = []
    for story in stories:
        urls.append(wire.publish(story))
        path = f"/wire/news/{story.slug}"
        http_server.route(path, handler=_slowly(http_server._routes[path], 0.4))
    wire.feed("/rss.xml", rss20(list(zip(stories, urls, strict=True))), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))], rules="""
[[rules]]
name = "any"
query = 'Kim OR Kishida OR 岸田 OR 金正恩 OR abduct* OR 拉致'
notify = ["archive"]
"""))

    proc = start(project)
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # Its worker processes go with it: nothing is left running in the project.
    wait_for(lambda: not processes_in(project.path), timeout=10, what="the workers to exit")

    # Started again: everything is finished, and nothing is lost.
    proc = start(project)
    try:
        wait_for(lambda: {a["url"] for a in project.alerts()} >= set(urls), timeout=60,
                 what="every alert after the restart")
        wait_for(lambda: project.cli("alerts", "list", "--pending", "--json").json() == [],
                 timeout=30, what="no delivery pending")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    alerted = [a["url"] for a in project.alerts()]
    assert set(alerted) == set(urls)
    assert len(alerted) - len(set(alerted)) <= 1      # at most the one in flight, repeated
    stored = project.cli("alerts", "list", "--json", "--limit", "100").json()
    assert sorted(a["url"] for a in stored) == sorted(urls)   # recorded once each


def test_three_nodes_on_postgresql_one_killed_each_article_alerted_once(project, http_server,
                                                                         pg_url):
    wire = Site(http_server, "Asia Wire", "/wire")
    names = ["summit_en_1.txt", "summit_en_2.txt", "summit_en_3.txt", "summit_ja_1.txt",
             "abductees_en_1.txt", "summit_ja_2.txt", "abductees_ja_1.txt", "abductees_en_2.txt"]
    stories = [Story.from_file(f"n{i}", RULE_TEXTS / n, guid=f"n{i}") for i, n in enumerate(names)]
    feeds = []
    for i in range(4):          # four sources, two articles each
        pair = stories[2 * i: 2 * i + 2]
        urls = [wire.publish(s) for s in pair]
        for s in pair:
            path = f"/wire/news/{s.slug}"
            http_server.route(path, handler=_slowly(http_server._routes[path], 0.5))
        feeds.append((f"feed{i}", "feed",
                      wire.feed(f"/rss{i}.xml", rss20(list(zip(pair, urls, strict=True))),
                               "application/rss+xml")))
    project.write(config(feeds, rules="""
[[rules]]
name = "any"
query = 'Kim OR Kishida OR 岸田 OR 金正恩 OR abduct* OR 拉致'
notify = ["archive"]
""").replace('url = "sqlite:///data/monitor.db"', f'url = "{pg_url}"'))

    nodes = [start(project) for _ in range(3)]
    try:
        wait_for(lambda: any(http_server.requests_for(f"/wire/news/{s.slug}") for s in stories),
                 what="the first article fetch")
        os.kill(nodes[0].pid, signal.SIGKILL)
        nodes[0].wait(timeout=10)
        expected = {wire.url(f"/news/{s.slug}") for s in stories}
        wait_for(lambda: {a["url"] for a in project.alerts()} >= expected, timeout=90,
                 what="every article alerted by the surviving nodes")
        wait_for(lambda: project.cli("alerts", "list", "--pending", "--json").json() == [],
                 timeout=30, what="no delivery pending")
    finally:
        for node in nodes[1:]:
            node.send_signal(signal.SIGTERM)
        for node in nodes[1:]:
            node.wait(timeout=15)
    assert all(node.returncode == 0 for node in nodes[1:])
    alerted = [a["url"] for a in project.alerts()]
    assert len(alerted) - len(set(alerted)) <= 1          # at most the delivery in flight
    stored = project.cli("alerts", "list", "--json", "--limit", "100").json()
    assert sorted(a["url"] for a in stored) == sorted(expected)    # one alert per article
    # Each feed was polled by one node at a time: no feed fetched by two nodes at once
    # (a feed is fetched again only after its lease expired with its node).
    for name, _, _ in feeds:
        assert len(http_server.requests_for(f"/wire/rss{name[-1]}.xml")) <= 2
