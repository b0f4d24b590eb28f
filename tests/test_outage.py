"""A database outage under running daemons: PostgreSQL, reached through a TCP proxy
that the test cuts while polls and deliveries are in flight, then restores.

The promise (README, "Several nodes"): a store that goes away stops work only while
it is away. Afterwards every source is polled again and every alert delivered, by
the same processes (no restart), with at most one repeat per channel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import ROOT
from tests.newsroom import Site, Story, article_page, rss20
from tests.servers import Reply
from tests.tcp_proxy import TcpProxy

SOURCES = 5
OUTAGE = 15.0            # seconds the database is away


class Hook:
    """The webhook channel: records every delivery; the first one of the second
    batch cuts the database while it is being answered."""

    def __init__(self, server, on_first_late):
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.on_first_late = on_first_late
        self.fired = False
        server.route("/hook", handler=self.handle)
        self.url = server.url("/hook")

    def handle(self, request):
        alert = json.loads(request.body)
        with self.lock:
            self.received[alert["alert_id"]] += 1
            fire = "late" in alert["title"] and not self.fired
            self.fired = self.fired or fire
        if fire:
            self.on_first_late()
        time.sleep(0.5)                      # a delivery takes a while: some are in flight
        return Reply(200, {"Content-Type": "text/plain"}, b"ok")


def _wait(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def _query(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql).fetchall()


def test_a_database_outage_under_two_daemons_stops_work_only_while_it_lasts(
        pg_url, tmp_path, http_server):
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname, target.port or 5432)
    through_proxy = urlunsplit(target._replace(
        netloc=f"{target.username}@127.0.0.1:{proxy.port}" if target.username
        else f"127.0.0.1:{proxy.port}"))
    cut_at: list[float] = []

    def cut() -> None:
        proxy.cut()
        cut_at.append(time.monotonic())

    hook = Hook(http_server, cut)
    sites = [Site(http_server, f"Wire {i}", f"/w{i}") for i in range(SOURCES)]
    published: dict[int, list[tuple[Story, str]]] = {i: [] for i in range(SOURCES)}

    def publish(batch: str, count: int, *, slow: bool) -> None:
        for i, site in enumerate(sites):
            for k in range(count):
                story = Story(f"{batch}-{i}-{k}", f"Kishida seeks summit with Kim, {batch} {i}.{k}",
                              f"Report {batch} {i}.{k}: Japan's prime minister Kishida said "
                              f"he wants a summit with Kim Jong Un.")
                url = site.publish(story)
                if slow:                     # polls are in flight when the cut comes
                    http_server.hold(f"/w{i}/news/{story.slug}", 2.0,
                                     article_page(story, site=site.name).encode())
                published[i].insert(0, (story, url))
            site.feed("/rss.xml", rss20(published[i]), "application/rss+xml")

    sources = "\n".join(f"""
[[sources]]
name = "wire-{i}"
url = "{site.url('/rss.xml')}"
interval = "3s"
""" for i, site in enumerate(sites))
    (tmp_path / "monitor.toml").write_text(f"""
[monitor]
timeout = "5s"
per_host_delay = 0
allow_private_networks = true
adaptive = false
workers = 1

[storage]
url = "{through_proxy}"
{sources}
[[rules]]
name = "summit"
query = 'Kishida AND summit'
notify = ["hook", "archive"]

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{hook.url}"

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
""", encoding="utf-8")

    with proxy:
        publish("early", 1, slow=False)
        logs = [open(tmp_path / f"daemon{n}.log", "w+") for n in range(2)]
        daemons = [subprocess.Popen(
            [sys.executable, str(ROOT / "run_monitor.py"), "--config",
             str(tmp_path / "monitor.toml"), "run", "--tick", "1"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)}) for log in logs]
        try:
            _wait(lambda: len(hook.received) == SOURCES, "the first alerts", 90)

            publish("late", 2, slow=True)
            _wait(lambda: cut_at, "a delivery of the second batch", 60)
            time.sleep(OUTAGE)               # the outage itself
            proxy.restore()
            restored = datetime.now(UTC)

            expected = SOURCES * 3
            _wait(lambda: len(hook.received) == expected, "every alert delivered", 150)
            _wait(lambda: _query(pg_url, "SELECT COUNT(*) FROM deliveries"
                                         " WHERE state <> 'sent'")[0][0] == 0,
                  "every delivery recorded as sent", 60)
            _wait(lambda: all(r[0] and datetime.fromisoformat(r[0]) > restored for r in _query(
                pg_url, "SELECT last_success FROM sources")), "every source polled again", 60)

            assert [d.poll() for d in daemons] == [None, None]      # no exit, no restart
            alerts = _query(pg_url, "SELECT id FROM alerts WHERE rule = 'summit'")
            assert len(alerts) == expected                          # one per article
            assert set(hook.received) == {a[0] for a in alerts}
            assert max(hook.received.values()) <= 2                 # at most one repeat
            archived = Counter(json.loads(line)["alert_id"] for line in
                               (tmp_path / "data" / "alerts.jsonl").read_text().splitlines())
            assert set(archived) == set(hook.received) and max(archived.values()) <= 2
        finally:
            for daemon in daemons:
                if daemon.poll() is None:
                    daemon.send_signal(signal.SIGTERM)
            for daemon in daemons:
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            texts = []
            for log in logs:
                log.seek(0)
                texts.append(log.read())
                log.close()
        for text in texts:
            assert "Traceback" not in text, text[-5000:]
            assert '"event": "stopped"' in text
