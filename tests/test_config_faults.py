"""Configuration a user can get wrong, and the defaults a configuration leaves out."""

from __future__ import annotations

import pytest

from monitor.config import load_config
from monitor.runtime import fetch_policy
from monitor.sources.fetch import FetchPolicy


def test_fetch_defaults_are_those_of_a_configuration_that_leaves_them_out(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_text("", encoding="utf-8")

    from_config = fetch_policy(load_config(path, env={}))

    assert from_config == FetchPolicy()
    assert from_config.per_host_delay == 1.0            # README: per_host_delay = "1s"
    assert from_config.max_body == 10_000_000           # README: max_body = "10MB" (decimal)
    assert from_config.user_agent.startswith("news-monitor/0.1")


GOOD = """\
[monitor]
timeout = "10s"
per_host_delay = 0
allow_private_networks = true

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


@pytest.mark.parametrize("setting", [
    "default_interval = nan", "default_interval = inf", "timeout = inf", "timeout = 1e300",
    'timeout = "100000h"', "max_age = -inf", "min_interval = nan", "max_body = 100000000000000",
    "workers = 100000"])
def test_values_without_a_sane_meaning_are_refused_with_their_line(project, setting):
    key = setting.split(" ")[0]
    project.write(GOOD.replace('timeout = "10s"\n', f"{setting}\n"
                               if key != "timeout" else "").replace(
        "[monitor]\n", f"[monitor]\n{setting}\n" if key == "timeout" else "[monitor]\n"))
    line = next(i for i, text in enumerate(project.config.read_text().splitlines(), 1)
                if text.startswith(key))

    for command in ("validate", "check-now"):
        result = project.cli(command)
        assert result.code == 2, (command, result.out)
        assert f"{project.config}:{line}: [monitor]: {key}:" in result.err
        assert "Traceback" not in result.err
    assert not (project.path / "data").exists()             # nothing was run


@pytest.mark.parametrize("value", ["0", '"0s"', '"0ms"', "0.0", '"0"'])
def test_a_zero_per_host_delay_is_accepted_in_every_spelling(tmp_path, value):
    path = tmp_path / "monitor.toml"
    path.write_text(GOOD.replace("per_host_delay = 0", f"per_host_delay = {value}"))
    assert load_config(path, env={}).monitor.per_host_delay == 0


def test_deeply_nested_toml_is_a_configuration_error(project):
    project.write("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = project.cli("validate")
    assert result.code == 2
    assert "nested too deeply" in result.err and "Traceback" not in result.err


def test_a_device_as_configuration_is_refused_without_reading_it_all(project):
    result = project.cli("--config", "/dev/zero", "validate")
    assert result.code == 2
    assert "/dev/zero" in result.err and "not a configuration file" in result.err


def test_every_mistake_in_the_file_is_reported_at_once_each_with_its_line(project):
    text = GOOD.replace('timeout = "10s"', 'timeout = "soon"').replace(
        'url = "https://example.org/rss"', 'url = "ftp://example.org/rss"\ncolour = "blue"'
    ).replace('notify = ["archive"]', 'notify = ["desk"]').replace(
        'kind = "jsonl"', 'kind = "jsonl"\nmode = "weekly"')
    project.write(text)
    lines = text.splitlines()

    def line_of(start: str) -> int:
        return next(i for i, t in enumerate(lines, 1) if t.startswith(start))

    result = project.cli("validate")

    assert result.code == 2
    errors = [e for e in result.err.splitlines() if "configuration error" in e]
    path = project.config
    expected = [f"{path}:{line_of('timeout')}: [monitor]: timeout: 'soon'",
                f"{path}:{line_of('url')}: sources[0] 'wire': url:",
                f"{path}:{line_of('colour')}: sources[0] 'wire': colour: unknown key",
                f"{path}:{line_of('mode')}: notifiers[0] 'archive': mode: 'weekly'",
                f"{path}:{line_of('notify')}: rules[0] 'summit': notify: no notifier named 'desk'"]
    assert len(errors) == len(expected), result.err
    for want in expected:
        assert any(want in e for e in errors), (want, result.err)


def test_two_sources_with_one_url_and_no_rules_give_warnings(project):
    text = GOOD.replace("[[rules]]", '[[sources]]\nname = "wire-again"\n'
                        'url = "https://example.org/rss"\n\n[[rules]]')
    project.write(text)
    line = [i for i, t in enumerate(text.splitlines(), 1) if t.startswith("url =")][1]

    result = project.cli("validate")

    assert result.code == 0
    assert (f"warning: {project.config}:{line}: sources[1] 'wire-again': url: the same URL as "
            f"source 'wire'") in result.err
    project.write(GOOD[:GOOD.index("[[rules]]")] + GOOD[GOOD.index("[[notifiers]]"):])
    result = project.cli("validate")
    assert result.code == 0 and "warning:" in result.err and "no [[rules]]" in result.err


def test_a_link_pattern_that_backtracks_does_not_hang_the_pass(project, http_server):
    # "(a+)+b" over "aaaa…a" takes 2**n steps with a backtracking engine.
    links = "".join(f'<a href="/ka/{"a" * 40}{i}">Kishida summit report {i}</a>\n'
                    for i in range(3))
    http_server.route("/ka/latest", f"<html><body>{links}</body></html>".encode(),
                      headers={"Content-Type": "text/html"})
    project.write(GOOD.replace("https://example.org/rss", http_server.url("/ka/latest")).replace(
        'name = "wire"', 'name = "wire"\nkind = "page"\nlink_pattern = "^/ka/(a+)+b"'))

    result = project.process("check-now", "--json", timeout=120)

    assert result.returncode == 0, result.stderr
    assert '"entries": 0' in result.stdout


@pytest.mark.parametrize("pattern", [r"(\\d+)/\\1", "/news/(?!sport)", "(?<=/)news"])
def test_a_link_pattern_that_cannot_run_in_linear_time_is_refused(project, pattern):
    project.write(GOOD.replace('name = "wire"',
                               f'name = "wire"\nkind = "page"\nlink_pattern = "{pattern}"'))
    result = project.cli("validate")
    assert result.code == 2
    assert "link_pattern" in result.err and "linear time" in result.err
    assert "re2.cc" not in result.err
