"""Logs a person reads on a terminal, JSON lines elsewhere, and nothing stray in between."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import warnings

from monitor.logs import setup_logging
from tests.conftest import ROOT
from tests.newsroom import Site, Story, rss20
from tests.servers import closed_port
from tests.test_check_now import config
from tests.test_service import wait_for


def _run_on_a_terminal(project, *args: str) -> tuple[int, str]:
    """Run the command line with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), *args], cwd=project.path,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:               # the other side closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_one_readable_line_per_event(project):
    project.write(config([("down", "feed", f"http://127.0.0.1:{closed_port()}/rss")]))

    code, err = _run_on_a_terminal(project, "check-now")

    assert code == 1
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line).strip()
             for line in err.replace("\r", "\n").splitlines()]
    [line] = [ln for ln in lines if "WARNING" in ln]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING  source down: .*connect.*",
                        line), line
    assert not any(ln.startswith("{") for ln in lines)


def test_json_on_a_terminal_when_asked(project):
    project.write(config([("down", "feed", f"http://127.0.0.1:{closed_port()}/rss")]))

    code, err = _run_on_a_terminal(project, "--log-format", "json", "check-now", "--json")

    assert code == 1
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    [record] = [r for r in records if r["level"] == "warning"]
    assert (record["source"], record["event"]) == ("down", "source_error")


def test_the_daemon_writes_json_only_without_scheduler_chatter(project, http_server):
    """Off a terminal the daemon's stderr is JSON lines, every one of them, even when
    Ctrl-C reaches its worker processes; APScheduler's two lines per job are gone."""
    wire = Site(http_server, "Asia Wire", "/wire")
    stories = [Story(slug=f"kishida-summit-{i}", title=f"Kishida seeks summit with Kim ({i})",
                     body=f"Prime Minister Kishida said a summit with Kim Jong Un was near. {i} "
                          * 20) for i in range(12)]
    wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in stories]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]).replace(
        "[monitor]", "[monitor]\nworkers = 2"))
    log = open(project.path / "daemon.log", "w")
    # Its own process group, as a shell gives a foreground job: Ctrl-C is sent to all.
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), "run", "--tick", "0.5"], cwd=project.path,
                            stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        # A poll of twelve entries is enough work for the worker processes to start.
        wait_for(lambda: '"event": "poll"' in (project.path / "daemon.log").read_text(),
                 what="the first poll")
        wait_for(lambda: project.alerts(), what="an alert")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    lines = (project.path / "daemon.log").read_text().splitlines()
    stray = [line for line in lines if not line.startswith("{")]
    assert stray == []
    records = [json.loads(line) for line in lines]
    assert not [r for r in records if r["logger"].startswith("apscheduler")]
    assert records[-1]["message"] == "stopped"


def test_warnings_and_uncaught_errors_become_json_lines():
    stream = io.StringIO()
    old_hook = sys.excepthook
    try:
        setup_logging(0, log_format="json", stream=stream, secrets=["hunter2-secret"])
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # Under pytest, an earlier in-process command may have left logging's own
            # bookkeeping of showwarning stale: start it afresh inside this block.
            logging.captureWarnings(False)
            logging.captureWarnings(True)
            warnings.warn("a library is unhappy with hunter2-secret", stacklevel=1)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = old_hook
        logging.captureWarnings(False)
        logging.getLogger().handlers.clear()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["level"] for r in records] == ["warning", "critical"]
    assert "a library is unhappy with ***" in records[0]["message"]
    assert "RuntimeError: boom" in records[1]["exception"]
