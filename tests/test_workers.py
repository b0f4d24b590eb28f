"""The worker pool's processes belong to the run that started them: when `check-now`
exits, its fork server and workers have exited and been reaped, so `time`, cgroups
and the operating system's accounting charge it all the CPU it used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.newsroom import PAIRS, Site, Story, rss20

# Run as a child subreaper: whatever the run leaves behind when it exits is handed to
# this process instead of to init, and is counted here.
_REAPER = r"""
import ctypes, json, os, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
    sys.exit(77)
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
orphans = 0
while True:
    try:
        pid, _ = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    orphans += 1
print(json.dumps({"code": run.returncode, "out": run.stdout, "err": run.stderr,
                  "orphans": orphans}))
"""


def test_check_now_with_a_pool_leaves_no_process_behind(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    feeds = []
    for n in range(12):   # more jobs than the pool waits for before it starts
        story = Story.from_file(f"summit-{n}", PAIRS / "en_original.txt")
        feeds.append((f"wire{n}", wire.feed(f"/rss{n}.xml",
                                            rss20([(story, wire.publish(story))]),
                                            "application/rss+xml")))
    sources = "".join(f'\n[[sources]]\nname = "{name}"\nkind = "feed"\nurl = "{url}"\n'
                      'fetch_articles = false\n' for name, url in feeds)
    project.write(f"""
[monitor]
workers = 2
per_host_delay = 0
allow_private_networks = true

[storage]
url = "sqlite:///data/monitor.db"
{sources}
[[rules]]
name = "summit"
query = 'summit'
notify = ["archive"]

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
""")
    proc = subprocess.run([sys.executable, "-c", _REAPER, sys.executable,
                           str(ROOT / "run_monitor.py"), "--config", str(project.config),
                           "check-now", "--json"],
                          cwd=project.path, capture_output=True, text=True, timeout=120)
    if proc.returncode == 77:
        pytest.skip("no child subreaper on this system")
    run = json.loads(proc.stdout)

    assert run["code"] == 0, run["err"]
    assert [s["status"] for s in json.loads(run["out"])["sources"]] == ["ok"] * 12
    # An orphaned fork server or worker would have been handed to the reaper: none is,
    # so the run's own process accounted for every one of them.
    assert run["orphans"] == 0


def _children_of_this_process() -> set[int]:
    import os
    pid = os.getpid()
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_jobs_run_in_threads_while_the_pool_starts_then_in_the_workers():
    # The pool's start (the fork server importing the heavy modules) takes about a
    # second: jobs asked for meanwhile are done here, in threads, instead of waiting.
    import asyncio
    import os
    import time

    from monitor.pipeline.workers import Workers

    workers = Workers(2, start_after=1)
    before = _children_of_this_process()

    async def jobs() -> list[int]:
        pids = [await workers.run(os.getpid)]
        deadline = time.monotonic() + 60
        while pids[-1] == os.getpid() and time.monotonic() < deadline:
            pids.append(await workers.run(os.getpid))
            await asyncio.sleep(0.01)
        return pids

    try:
        pids = asyncio.run(jobs())
    finally:
        workers.close()
    assert pids[0] == os.getpid()                 # the first job did not wait
    assert pids[-1] != os.getpid()                # then the pool took over
    started = _children_of_this_process() - before
    assert not [pid for pid in started if _alive(pid)]


def test_closing_while_the_pool_starts_leaves_no_process_behind():
    import asyncio
    import os

    from monitor.pipeline.workers import Workers

    workers = Workers(2, start_after=1)
    before = _children_of_this_process()
    assert asyncio.run(workers.run(os.getpid)) == os.getpid()
    # The pool was still starting. As Runtime.close_workers does on an interrupt:
    # the jobs are dropped, then the pool's helpers are stopped.
    workers.close(now=True)
    workers.close()
    started = _children_of_this_process() - before
    assert not [pid for pid in started if _alive(pid)]


def test_without_a_pool_jobs_run_one_at_a_time_on_one_thread_of_their_own():
    # CPU-bound jobs in several threads of one process only contend for the
    # interpreter's lock: six at once cost a third more CPU than one after another.
    import asyncio
    import threading
    import time

    from monitor.pipeline.workers import Workers

    workers = Workers(1)
    running: list[int] = []
    overlaps: list[int] = []

    def job() -> int:
        running.append(1)
        overlaps.append(len(running))
        time.sleep(0.02)
        running.pop()
        return threading.get_ident()

    async def many() -> list[int]:
        return list(await asyncio.gather(*(workers.run(job) for _ in range(8))))

    try:
        idents = asyncio.run(many())
    finally:
        workers.close()
    assert len(set(idents)) == 1 and idents[0] != threading.get_ident()
    assert max(overlaps) == 1
