"""One table of defaults: every place that has a default reads it from monitor.defaults."""

from __future__ import annotations

import pytest

from monitor import defaults
from monitor.config import (
    MonitorSettings,
    NotifierConfig,
    SourceConfig,
    WebSettings,
    parse_config,
    parse_duration,
    parse_size,
)
from monitor.sources.fetch import FetchPolicy
from monitor.sources.polling import PollPolicy

# The defaults as the documentation of the configuration writes them.
DOCUMENTED = [
    ("default_interval", parse_duration("15m")),
    ("timeout", parse_duration("30s")),
    ("max_body", parse_size("10MB")),
    ("concurrency", 16),
    ("per_host", 2),
    ("per_host_delay", parse_duration("1s")),
    ("allow_private_networks", False),
    ("max_age", parse_duration("7d")),
    ("respect_robots", True),
    ("min_interval", parse_duration("1m")),
    ("max_interval", parse_duration("6h")),
    ("adaptive", True),
    ("broken_after", 5),
    ("workers", 0),
]


@pytest.mark.parametrize(("key", "value"), DOCUMENTED)
def test_monitor_settings_match_the_documentation(key, value):
    assert getattr(MonitorSettings(), key) == value
    assert getattr(defaults, key.upper()) == value


def test_an_empty_configuration_gets_the_defaults():
    config = parse_config({}, path="empty.toml", env={})
    assert config.monitor == MonitorSettings()
    assert config.storage_url == defaults.STORAGE_URL == "sqlite:///data/monitor.db"
    assert config.web == WebSettings()
    assert config.web.listen == defaults.LISTEN == "127.0.0.1:8080"
    assert config.web.timezone == defaults.TIMEZONE


def test_fetch_policy_and_settings_agree():
    policy, settings = FetchPolicy(), MonitorSettings()
    for key in ("user_agent", "timeout", "max_body", "concurrency", "per_host",
                "per_host_delay", "allow_private_networks"):
        assert getattr(policy, key) == getattr(settings, key), key
    assert policy.max_redirects == defaults.MAX_REDIRECTS


def test_poll_policy_and_settings_agree():
    settings = MonitorSettings()
    policy = PollPolicy(interval=settings.default_interval)
    assert (policy.min_interval, policy.max_interval, policy.adaptive) == \
        (settings.min_interval, settings.max_interval, settings.adaptive)


def test_source_and_notifier_defaults():
    source = SourceConfig(name="s", kind=defaults.SOURCE_KIND, url="https://x.example/",
                          interval=defaults.DEFAULT_INTERVAL)
    assert source.fetch_articles is defaults.FETCH_ARTICLES
    notifier = NotifierConfig(name="n", kind="console", options={})
    assert (notifier.mode, notifier.timezone) == (defaults.NOTIFY_MODE, defaults.TIMEZONE)
