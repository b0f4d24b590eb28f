"""Configuration: parsed once, and every mistake reported with file, key and problem (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config, parse_duration, parse_size

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[monitor]
default_interval = "10m"
timeout = "20s"
max_body = "5MB"

[[sources]]
name = "wire"
url = "https://example.org/rss"

[[rules]]
name = "summit"
query = 'Kishida AND summit'
notify = ["archive"]

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
"""


def test_good_configuration_loads_with_defaults_and_units(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.monitor.default_interval == 600
    assert config.monitor.timeout == 20
    assert config.monitor.max_body == 5_000_000
    assert config.monitor.allow_private_networks is False
    assert config.storage_url == "sqlite:///data/monitor.db"
    [source] = config.sources
    assert (source.kind, source.interval, source.fetch_articles) == ("feed", 600, True)
    assert config.rules[0].notify == ("archive",)


def test_shipped_configuration_validates(project):
    result = project.cli("--config", str(ROOT / "config" / "monitor.toml"), "validate")
    assert result.code == 0, result.err
    assert "OK" in result.out


@pytest.mark.parametrize("value,seconds", [("30s", 30), ("10m", 600), ("1h", 3600), ("2d", 172800),
                                           (45, 45), ("1.5h", 5400), ("500ms", 0.5)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "10 minutes", "-5s", 0, "", True, "1y"])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize("value,size", [("10MB", 10_000_000), ("512KiB", 524288), (1024, 1024)])
def test_sizes(value, size):
    assert parse_size(value) == size


# (change to GOOD, text the message must contain)
BAD = [
    (("[monitor]", "[monitor]\ncolour = 'blue'"), ["[monitor]", "colour", "unknown key"]),
    (('timeout = "20s"', 'timeout = "twenty"'), ["[monitor]", "timeout", "'twenty'"]),
    (('max_body = "5MB"', 'max_body = "lots"'), ["max_body", "not a size"]),
    (('url = "https://example.org/rss"', 'url = "ftp://example.org/rss"'),
     ["sources[0] 'wire'", "url", "not an http(s) URL"]),
    (('url = "https://example.org/rss"', 'url = "https://example.org/rss"\nkind = "podcast"'),
     ["sources[0] 'wire'", "kind", "'podcast'"]),
    (('url = "https://example.org/rss"', 'url = "https://example.org/rss"\nlink_pattern = "(["'),
     ["link_pattern", "invalid regular expression"]),
    (('notify = ["archive"]', 'notify = ["desk-slack"]'),
     ["rules[0] 'summit'", "notify", "no notifier named 'desk-slack'"]),
    (('notify = ["archive"]', 'notify = ["archive"]\nsources = ["nowhere"]'),
     ["rules[0] 'summit'", "sources", "no source named 'nowhere'"]),
    (("query = 'Kishida AND summit'", "query = 'Kishida AND (summit'"),
     ["rules[0] 'summit'", "query", "position"]),
    (('kind = "jsonl"', 'kind = "pager"'), ["notifiers[0] 'archive'", "kind", "'pager'"]),
    (('path = "data/alerts.jsonl"', ''), ["notifiers[0] 'archive'", "path"]),
    (('[[rules]]', '[[sources]]\nname = "wire"\nurl = "https://example.net/feed"\n\n[[rules]]'),
     ["sources[1]", "'wire' is used twice"]),
    (('path = "data/alerts.jsonl"', 'path = "data/alerts.jsonl"\nmode = "digest"'),
     ["notifiers[0] 'archive'", "schedule", "required"]),
    (('path = "data/alerts.jsonl"', 'path = "a"\nmode = "digest"\nschedule = "every day"'),
     ["schedule", "not a cron expression"]),
    (('path = "data/alerts.jsonl"', 'path = "a"\ntimezone = "Mars/Olympus"'),
     ["timezone", "'Mars/Olympus'"]),
    (('name = "wire"', 'name = "wire feed"'), ["sources[0]", "name", "not a valid name"]),
]


@pytest.mark.parametrize("change,expected", BAD, ids=[e[1][-1] for e in BAD])
def test_configuration_errors_name_file_key_and_problem(project, change, expected):
    old, new = change
    assert old in GOOD
    project.write(GOOD.replace(old, new, 1))

    result = project.cli("validate")

    assert result.code == 2
    assert str(project.config) in result.err
    for text in expected:
        assert text in result.err, (text, result.err)


def test_environment_variables_are_substituted_and_missing_ones_named(project, monkeypatch):
    text = GOOD + """
[[notifiers]]
name = "hook"
kind = "webhook"
url = "${HOOK_URL}"
secret = "${HOOK_SECRET}"
"""
    project.write(text)
    monkeypatch.delenv("HOOK_URL", raising=False)
    result = project.cli("validate")
    assert result.code == 2
    assert "notifiers[1] 'hook'" in result.err and "HOOK_URL" in result.err

    monkeypatch.setenv("HOOK_URL", "https://hooks.example.org/T0/secret-path")
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t-value")
    config = load_config(project.config)
    assert config.notifier("hook").options["url"] == "https://hooks.example.org/T0/secret-path"
    assert "s3cr3t-value" in config.secrets


def test_missing_and_broken_files(project):
    missing = project.cli("--config", str(project.path / "nope.toml"), "validate")
    assert missing.code == 2 and "nope.toml" in missing.err and "no such" in missing.err
    project.write("[monitor\ntimeout = 3")
    broken = project.cli("validate")
    assert broken.code == 2 and "invalid TOML" in broken.err


def test_check_now_with_bad_config_fetches_nothing(project, http_server):
    feed = http_server.route("/rss.xml", b"<rss/>")
    project.write(GOOD.replace("https://example.org/rss", feed).replace(
        'notify = ["archive"]', 'notify = ["nobody"]'))
    result = project.cli("check-now")
    assert result.code == 2
    assert http_server.requests == []


def test_unknown_source_on_the_command_line(project):
    project.write(GOOD)
    result = project.cli("check-now", "--source", "nowhere")
    assert result.code == 2 and "nowhere" in result.err


def test_usage_error_exits_2(project):
    project.write(GOOD)
    assert project.cli("frobnicate").code == 2
    assert project.cli("rules", "test", "summit").code == 2
