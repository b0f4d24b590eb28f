"""The web page in tests: `serve` in its own process on a free loopback port, and a
small newsroom that gives it alerts, a follow-up, a copy and a broken source."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import ROOT
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_notify_email import free_port

SUMMIT_RULE = ('(Kishida OR "prime minister") AND ("Kim Jong Un" OR Kim OR Pyongyang) '
               'AND (summit OR talks)')
ABDUCTION_RULE = 'abduct* OR abductee*'


def web_config(sources: list[tuple[str, str]], *, web: str = "", extra: str = "") -> str:
    blocks = "".join(f'\n[[sources]]\nname = "{n}"\nkind = "feed"\nurl = "{u}"\n'
                     for n, u in sources)
    return f"""
[monitor]
timeout = "10s"
per_host_delay = 0
allow_private_networks = true
workers = 1

[storage]
url = "sqlite:///data/monitor.db"

[web]
timezone = "Asia/Tokyo"
{web}
{blocks}
[[rules]]
name = "summit"
query = '{SUMMIT_RULE}'
notify = ["archive"]

[[rules]]
name = "abductions"
query = '{ABDUCTION_RULE}'
notify = ["archive"]

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
{extra}
"""


@contextmanager
def serving(project, *args: str, env: dict | None = None) -> Iterator[str]:
    """`serve` on a free port; yields its base URL once /healthz answers."""
    import os

    port = free_port()
    log = open(project.path / "serve.log", "a")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), "serve", "--http", f"127.0.0.1:{port}", *args],
                            cwd=project.path, stdout=log, stderr=log, text=True,
                            env={**os.environ, **(env or {})})
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("serve did not start: "
                                     + (project.path / "serve.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Newsroom:
    """Two sites on the loopback server: an original report, then its follow-up
    and a syndicated copy of it; and a source that fails."""

    def __init__(self, http_server):
        self.server = http_server
        self.wire = Site(http_server, "Asia Wire", "/wire")
        self.daily = Site(http_server, "The Daily Courier", "/daily")
        now = datetime.now(UTC)
        self.original = Story.from_file("kishida-summit", PAIRS / "en_original.txt",
                                        published=now - timedelta(hours=5))
        self.copy = Story.from_file("kishida-summit-copy", PAIRS / "en_syndicated.txt",
                                    published=now - timedelta(hours=4))
        self.rewrite = Story.from_file("tokyo-renews-offer", PAIRS / "en_rewrite.txt",
                                       published=now - timedelta(hours=3))

    def sources(self) -> list[tuple[str, str]]:
        return [("wire", self.wire.url("/rss.xml")), ("daily", self.daily.url("/rss.xml")),
                ("broken", self.server.url("/gone/rss.xml"))]

    def first_pass(self) -> None:
        self.wire.feed("/rss.xml", rss20([(self.original, self.wire.publish(self.original))]),
                       "application/rss+xml")
        self.daily.feed("/rss.xml", rss20([]), "application/rss+xml")
        self.server.status("/gone/rss.xml", 500)

    def second_pass(self, *more: Story) -> None:
        """The follow-up on the wire, the copy of the original on the daily."""
        stories = [self.rewrite, *more]
        self.wire.feed("/rss.xml", rss20([(s, self.wire.publish(s)) for s in stories]
                                         + [(self.original, self.wire.url(
                                             f"/news/{self.original.slug}"))]),
                       "application/rss+xml")
        self.daily.feed("/rss.xml", rss20([(self.copy, self.daily.publish(self.copy))]),
                        "application/rss+xml")
