"""Ctrl-C: the terminal sends SIGINT to the whole foreground process group, worker
processes included. Both `check-now` and `run` stop quietly, with no traceback from
any process; `check-now` says it was interrupted and exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.newsroom import Site, Story, article_page, rss20
from tests.test_check_now import config


def _group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def busy_project(project, http_server):
    """Ten small articles (enough work to start the worker processes), then ten huge
    ones that keep the workers extracting text when Ctrl-C comes."""
    wire = Site(http_server, "Asia Wire", "/wire")
    small = [Story(f"s{i}", f"Kishida seeks summit with Kim, report {i}",
                   " ".join(f"Sentence {j} of report {i} on a summit." for j in range(40)))
             for i in range(10)]
    huge = [Story(f"h{i}", f"Kishida seeks summit with Kim, long report {i}",
                  "\n\n".join(f"Paragraph {j} of long report {i}: the prime minister spoke "
                              f"of a summit with Kim Jong Un once more." for j in range(15_000)))
            for i in range(10)]
    links = [(s, wire.publish(s)) for s in small + huge]
    for story in huge:
        # Later than the small ones, whose extraction starts the worker processes:
        # the huge ones are extracted there, not in the daemon's own threads.
        http_server.hold(f"/wire/news/{story.slug}", 3.0,
                         article_page(story, site=wire.name).encode())
    wire.feed("/rss.xml", rss20(links), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]).replace(
        "[monitor]", "[monitor]\nworkers = 2"))
    return project


def _start(project, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), *args], cwd=project.path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _workers_busy(pgid: int) -> bool:
    """Is a worker process (a child of the fork server) running a job?"""
    for pid in _group(pgid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if b"forkserver" in cmd and int(ppid) != pgid and state == "R":
            return True
    return False


def _ctrl_c_when_busy(proc: subprocess.Popen) -> tuple[str, str]:
    _wait_for(lambda: _workers_busy(proc.pid) or proc.poll() is not None,
              "a worker process at work")
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    _wait_for(lambda: not _group(proc.pid), "every process of the group to exit", 30)
    return out, err


def test_ctrl_c_stops_check_now_quietly_with_status_130(busy_project, http_server):
    proc = _start(busy_project, "check-now")

    out, err = _ctrl_c_when_busy(proc)

    assert proc.returncode == 130, err
    assert "interrupted" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_stops_the_daemon_quietly(busy_project, http_server):
    proc = _start(busy_project, "run")

    out, err = _ctrl_c_when_busy(proc)

    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert '"event": "stopped"' in err
