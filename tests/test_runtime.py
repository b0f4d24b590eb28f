"""The runtime: each part opened when first asked for, from the configuration, and
everything opened closed together; a real SQLite file and a loopback server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.delivery.notifiers.console import ConsoleNotifier
from monitor.errors import FetchError, StorageError
from monitor.runtime import Runtime, build_notifiers, fetch_policy
from monitor.sources.fetch import Fetcher


def write_config(tmp_path: Path, *, extra: str = "") -> Config:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[monitor]
timeout = "5s"
per_host_delay = 0
allow_private_networks = true
user_agent = "runtime-test/1"

[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "{tmp_path}/alerts.jsonl"
{extra}
""", encoding="utf-8")
    return load_config(path, env={})


def test_a_store_command_opens_the_store_alone_and_closes_it(tmp_path):
    config = write_config(tmp_path)

    with Runtime(config) as runtime:
        store = runtime.store
        assert runtime.store is store                   # one connection, opened once
        assert store.all_source_states() == {}
        with pytest.raises(RuntimeError, match="async with"):
            _ = runtime.http                            # nothing to close it from here

    assert (tmp_path / "monitor.db").exists()
    with pytest.raises(StorageError, match="closed"):
        store.all_source_states()


def test_a_fetching_command_never_opens_the_store(tmp_path, http_server):
    config = write_config(tmp_path)
    url = http_server.route("/page", b"hello", headers={"Content-Type": "text/plain"})

    async def fetch() -> tuple[bytes, Fetcher]:
        async with Runtime(config) as runtime:
            response = await runtime.http.get(url)
            return response.body, runtime.http

    body, http = asyncio.run(fetch())

    assert body == b"hello"
    assert http_server.requests_for("/page")[0].headers["User-Agent"] == "runtime-test/1"
    assert not (tmp_path / "monitor.db").exists()
    with pytest.raises((FetchError, RuntimeError)):      # the client was closed
        asyncio.run(http.get(url))


def test_the_pipeline_shares_the_runtimes_store_fetcher_and_workers(tmp_path):
    config = write_config(tmp_path)

    async def parts():
        async with Runtime(config, check=True) as runtime:
            pipeline = runtime.pipeline
            assert pipeline.workers is runtime.workers
            assert set(runtime.notifiers) == {"console", "archive"}
            return runtime.store

    store = asyncio.run(parts())

    with pytest.raises(StorageError, match="closed"):
        store.all_source_states()


def test_a_damaged_store_is_refused_when_the_pass_would_write(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "monitor.db").write_bytes(b"not a database at all" * 100)

    with pytest.raises(StorageError), Runtime(config, check=True) as runtime:
        _ = runtime.store
    assert (tmp_path / "monitor.db").read_bytes() == b"not a database at all" * 100


def test_a_dry_run_keeps_nothing(tmp_path):
    config = write_config(tmp_path)

    with Runtime(config, dry_run=True) as runtime:
        runtime.store.mute_story("s1", datetime.now(UTC))
        assert runtime.store.muted_stories(["s1"])

    assert not (tmp_path / "monitor.db").exists()


def test_workers_closed_early_are_not_closed_again(tmp_path):
    config = write_config(tmp_path)

    with Runtime(config) as runtime:
        workers = runtime.workers
        runtime.close_workers(now=True)
        assert runtime.workers is not workers           # asked again: a new pool


def test_the_fetch_policy_and_notifiers_come_from_the_configuration(tmp_path):
    config = write_config(tmp_path, extra='timezone = "Asia/Tokyo"')
    policy = fetch_policy(config)
    assert (policy.user_agent, policy.timeout, policy.per_host_delay) == ("runtime-test/1", 5.0, 0)

    async def notifiers():
        async with Fetcher(policy) as http:
            return build_notifiers(config, http)

    built = asyncio.run(notifiers())
    assert isinstance(built["console"], ConsoleNotifier)
    assert built["archive"].timezone == "Asia/Tokyo"


def test_commands_open_only_what_they_use(project, http_server):
    url = http_server.route("/rss.xml", b"<rss version='2.0'><channel></channel></rss>",
                            headers={"Content-Type": "application/rss+xml"})
    project.write(f"""
[storage]
url = "sqlite:///data/monitor.db"

[[sources]]
name = "wire"
kind = "feed"
url = "{url}"
""")

    sent = project.cli("notify", "test", "console")
    assert sent.code == 0 and "Test alert from news-monitor" in sent.err
    assert not (project.path / "data" / "monitor.db").exists()     # no store was needed

    listed = project.cli("sources", "list", "--json")
    assert listed.code == 0 and [s["name"] for s in listed.json()] == ["wire"]
    assert (project.path / "data" / "monitor.db").exists()
    assert not http_server.requests_for("/rss.xml")                 # nor a fetch
