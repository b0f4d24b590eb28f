"""The command line explains itself: every option described, exit codes, examples, --version."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from monitor.cli.main import build_parser
from tests.conftest import run_cli


def _options(parser: argparse.ArgumentParser, path: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}".strip())
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


# `rules test` and `rules eval` are being rewritten with their own help.
@pytest.mark.parametrize("path, action", [
    (path, action) for path, action in _options(build_parser()) if not path.startswith("rules")],
    ids=lambda v: v if isinstance(v, str) else "/".join(v.option_strings) or v.dest)
def test_every_option_has_a_description(path, action):
    assert action.help and action.help.strip(), f"{path}: {action.option_strings or action.dest}"


def test_help_gives_exit_codes_and_examples(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.code == 0
    assert "exit status:\n  0  every source and delivery succeeded" in result.out
    assert "  2  usage or configuration error" in result.out
    assert "examples:\n  news-monitor init && news-monitor check-now --dry-run" in result.out


def test_version(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert (result.code, result.out.strip()) == (0, f"news-monitor {version('news-monitor')}")


@pytest.mark.parametrize("group, subcommands", [
    ("rules", ["test"]),
    ("sources", ["list", "discover", "import", "export"]),
    ("alerts", ["list"]),
    ("notify", ["test"]),
])
def test_a_group_alone_prints_its_own_help(tmp_path, group, subcommands):
    # No configuration file is needed to read the help.
    result = run_cli(group, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith(f"usage: news-monitor {group} [-h] SUBCOMMAND ...")
    for name in subcommands:
        assert f"\n    {name}" in result.out


def test_the_contrib_files_run_commands_that_exist():
    """The systemd unit and the container file cannot be run here; their command
    lines at least parse, with the options they rely on."""
    import re
    import shlex

    from tests.conftest import ROOT

    unit = (ROOT / "contrib" / "news-monitor.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=\S+/news-monitor (.*)$", unit, re.M)
    args = build_parser().parse_args(shlex.split(exec_start))
    assert (args.command, args.log_format, args.http) == ("run", "json", "127.0.0.1:9108")
    assert "KillSignal=SIGTERM" in unit and "TimeoutStopSec=20" in unit

    container = (ROOT / "contrib" / "Containerfile").read_text()
    cmd = json_list(re.search(r"^CMD (\[.*\])$", container, re.M).group(1))
    args = build_parser().parse_args(["--log-format", "json", *cmd])
    assert (args.command, args.http) == ("run", "0.0.0.0:9108")
    assert "HEALTHCHECK" in container and "/healthz" in container


def json_list(text: str) -> list[str]:
    import json
    return json.loads(text)
