"""Shared fixtures: a loopback HTTP server, a project directory, the command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from monitor.match.query import term_spans
from monitor.models import AlertRecord
from tests.pg import pg_database, pg_url  # noqa: F401  (fixtures)
from tests.servers import http_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent

# No property test is timed: on a shared 2-core machine an example's time says
# nothing (the first Japanese one also loads MeCab's dictionary).
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def run_cli(*args: str, cwd: Path) -> CliResult:
    """Run the command line in this process, as `python run_monitor.py ARGS` would."""
    from monitor.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(old)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_process(*args: str, cwd: Path, env: dict | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python run_monitor.py ARGS` as a separate process."""
    return subprocess.run([sys.executable, str(ROOT / "run_monitor.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class Project:
    """A working directory with a configuration file, as a user would have."""

    def __init__(self, path: Path):
        self.path = path
        self.config = path / "monitor.toml"

    def write(self, text: str) -> Project:
        self.config.write_text(text, encoding="utf-8")
        return self

    def cli(self, *args: str) -> CliResult:
        return run_cli("--config", str(self.config), *args, cwd=self.path)

    def process(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return run_process("--config", str(self.config), *args, cwd=self.path, **kw)

    def alerts(self) -> list[dict]:
        path = self.path / "data" / "alerts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def make_alert(**changes):
    """An alert record for notifier tests; keyword arguments override its fields.
    Its highlights are where the query engine finds the matched terms in the
    snippet, as when a rule raised it."""
    values = dict(alert_id="a1", rule="kishida-kim", story_id="s1", followup=False,
                  url="https://news.example/2024/05/summit?id=1&lang=en",
                  title="Kishida seeks summit with Kim Jong Un", source="Wire",
                  published="2024-05-01T09:30:00+09:00",
                  matched=["Kishida", "Kim Jong Un", "summit"],
                  snippet="Prime Minister Kishida said a summit with Kim Jong-un was possible.")
    values.update(changes)
    values.setdefault("highlights", term_spans(values["snippet"], values["matched"]))
    return AlertRecord(**values)
