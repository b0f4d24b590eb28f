"""Several OS processes sharing one store: leases and unique constraints hold.

Each worker is a separate Python process that opens the store itself, waits at
a start line (a file) so that all of them claim at the same moment, and
reports what it got as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import open_store
from storage.base import AlertRow, NewArticle

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PROCESSES = 4

WORKER = r'''
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from storage import open_store
from storage.base import AlertRow, SourceState
from storage.sql import SQLTransaction

job = json.loads(sys.argv[1])
store = open_store(job["url"])
owner = job["owner"]
now = datetime.fromisoformat(job["now"]) if job.get("now") else None
open(job["ready"], "w").close()
while not os.path.exists(job["go"]):
    time.sleep(0.005)
got = []
if job["kind"] == "sources":
    while True:
        claimed = store.claim_due_sources(owner, now, 60, job["names"], limit=3)
        if not claimed:
            break
        for name in claimed:
            got.append(name)
            state = store.source_state(name)
            state.last_polled, state.next_poll = now, now + timedelta(minutes=10)
            store.save_source_state(state)
            store.release_source(name, owner)
elif job["kind"] == "deliveries":
    while True:
        claimed = store.claim_deliveries(owner, now, 60, limit=5)
        if not claimed:
            break
        for row, record in claimed:
            got.append([row.alert_id, row.notifier])
            store.delivery_sent(row.alert_id, row.notifier, {"by": owner}, now)
elif job["kind"] == "hold":
    # Claim everything under a short real-time lease, say so, then hang until killed;
    # with "in_tx", hang inside an exclusive transaction (holding its locks).
    now = datetime.now(timezone.utc)
    got.append(store.claim_due_sources(owner, now, job["lease"], job["names"]))
    got.append([r.alert_id for r, _ in store.claim_deliveries(owner, now, job["lease"])])
    if job.get("in_tx"):
        with store.exclusive() as tx:
            tx.mark_seen("held", ["k"], None)
            print(json.dumps(got), flush=True)
            time.sleep(600)
    print(json.dumps(got), flush=True)
    time.sleep(600)
elif job["kind"] == "alerts":
    for article_id in job["articles"]:
        record = {"alert_id": f"{owner}-{article_id}"}
        alert = AlertRow(alert_id=f"{owner}-{article_id}", rule="r1", article_id=article_id,
                         story_id="s", followup=False, created_at=now, record=record)
        if job["locked"]:
            with store.exclusive() as tx:
                inserted = tx.insert_alert(alert, [("slack", False), ("mail", False)])
        else:
            # Without the exclusive lock: only the unique constraint decides.
            def work():
                return SQLTransaction(store).insert_alert(alert,
                                                          [("slack", False), ("mail", False)])
            inserted = store._run(work)
        if inserted:
            got.append(article_id)
print(json.dumps(got), flush=True)
store.close()
'''


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    return request.getfixturevalue("pg_url")


def start(url: str, tmp_path: Path, kind: str, owner: str, **job) -> subprocess.Popen:
    job = {"url": url, "kind": kind, "owner": owner,
           "ready": str(tmp_path / f"ready-{owner}"), "go": str(tmp_path / "go"), **job}
    if isinstance(job.get("now"), datetime):
        job["now"] = job["now"].isoformat()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(job)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(tmp_path: Path, procs: dict[str, subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for owner, proc in procs.items():
        while not (tmp_path / f"ready-{owner}").exists():
            if proc.poll() is not None:
                pytest.fail(f"worker {owner} died: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {owner} never got ready")
            time.sleep(0.01)


def run_all(url: str, tmp_path: Path, kind: str, **job) -> dict[str, list]:
    """Run PROCESSES workers of one kind from one start line; what each one got."""
    (tmp_path / "go").unlink(missing_ok=True)
    for ready in tmp_path.glob("ready-*"):
        ready.unlink()
    procs = {f"node{i}": start(url, tmp_path, kind, f"node{i}", **job) for i in range(PROCESSES)}
    wait_ready(tmp_path, procs)
    (tmp_path / "go").touch()
    results = {}
    for owner, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"worker {owner} failed:\n{err}"
        results[owner] = json.loads(out.strip().splitlines()[-1])
    return results


def make_alerts(url: str, count: int, notifiers=(("slack", False), ("mail", False))) -> list[int]:
    store = open_store(url)
    ids = []
    with store.exclusive() as tx:
        for i in range(count):
            article_id = tx.insert_article(NewArticle(
                url=f"https://x.test/{i}", guid=None, source="src", title="t", text="x",
                author="", site_name="", language="en", published=None, fetched_at=T0,
                extracted=True, content_hash=f"h{i}", signature=None, band_keys=[],
                story_signature=None, story_band_keys=[], story_id="s", duplicate_of=None))
            ids.append(article_id)
            if notifiers:
                tx.insert_alert(AlertRow(alert_id=f"a{i:03d}", rule="r0", article_id=article_id,
                                         story_id="s", followup=False,
                                         created_at=T0 + timedelta(seconds=i),
                                         record={"alert_id": f"a{i:03d}"}), list(notifiers))
    store.close()
    return ids


def test_every_due_source_is_claimed_once_per_round(store_url, tmp_path):
    open_store(store_url).close()                  # migrated before the race
    names = [f"source-{i:02d}" for i in range(40)]
    for round_no in range(2):
        now = T0 + timedelta(minutes=15 * round_no)
        results = run_all(store_url, tmp_path, "sources", names=names, now=now)
        counts = Counter(name for got in results.values() for name in got)
        assert sorted(counts) == names, f"round {round_no}: missing {set(names) - set(counts)}"
        assert set(counts.values()) == {1}, f"round {round_no}: claimed twice: {counts}"
    store = open_store(store_url)
    states = store.all_source_states()
    assert all(states[n].next_poll == T0 + timedelta(minutes=25) for n in names)
    store.close()


def test_every_delivery_is_claimed_by_one_process(store_url, tmp_path):
    make_alerts(store_url, 60)
    results = run_all(store_url, tmp_path, "deliveries", now=T0 + timedelta(minutes=5))
    counts = Counter(tuple(pair) for got in results.values() for pair in got)
    assert len(counts) == 120 and set(counts.values()) == {1}
    store = open_store(store_url)
    assert store.list_alerts(pending_only=True) == []
    by_owner = Counter(d.receipt["by"] for a in store.list_alerts(limit=100) for d in a.deliveries)
    assert sum(by_owner.values()) == 120
    store.close()


@pytest.mark.parametrize("in_tx", [False, True], ids=["idle", "inside-transaction"])
def test_leases_of_a_killed_node_are_taken_over_after_expiry(store_url, tmp_path, in_tx):
    make_alerts(store_url, 5)
    names = ["dw", "nhk", "yonhap"]
    lease = 1.5
    holder = start(store_url, tmp_path, "hold", "doomed", names=names, lease=lease, in_tx=in_tx)
    (tmp_path / "go").touch()
    line = holder.stdout.readline()
    assert line, holder.stderr.read()
    claimed_at = time.monotonic()
    sources, deliveries = json.loads(line)
    assert sorted(sources) == names and len(deliveries) == 10
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)

    store = open_store(store_url)
    # The killed node's transaction (if any) died with it: the store is not stuck.
    assert store.seen_keys("held", ["k"]) == set()
    if time.monotonic() - claimed_at < lease - 0.3:
        now = datetime.now(UTC)
        assert store.claim_due_sources("heir", now, 60, names) == []
        assert store.claim_deliveries("heir", now, 60) == []
    time.sleep(max(0.0, lease - (time.monotonic() - claimed_at)) + 0.1)
    now = datetime.now(UTC)
    assert sorted(store.claim_due_sources("heir", now, 60, names)) == names
    assert len(store.claim_deliveries("heir", now, 60)) == 10
    store.close()


@pytest.mark.parametrize("locked", [True, False], ids=["exclusive", "constraint-only"])
def test_one_alert_per_rule_and_article_under_concurrent_inserts(store_url, tmp_path, locked):
    articles = make_alerts(store_url, 30, notifiers=())
    results = run_all(store_url, tmp_path, "alerts", articles=articles, locked=locked, now=T0)
    winners = Counter(a for got in results.values() for a in got)
    assert sorted(winners) == sorted(articles) and set(winners.values()) == {1}
    store = open_store(store_url)
    alerts = store.list_alerts(limit=1000)
    assert sorted(a.article_id for a in alerts) == sorted(articles)
    assert all(len(a.deliveries) == 2 for a in alerts)
    store.close()
