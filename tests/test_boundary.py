"""The async store boundary: one thread per store, the loop never waits on the store."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime

import pytest

from monitor.errors import StorageError
from storage import open_store
from storage.base import (
    AlertRow,
    ArticleStore,
    LeaseStore,
    OutboxStore,
    SourceState,
    SourceStore,
    Store,
)
from storage.boundary import AsyncStore, async_store
from storage.memory import MemoryStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    s: Store = (MemoryStore() if request.param == "memory"
                else open_store(f"sqlite:///{tmp_path}/monitor.db"))
    yield s
    s.close()


def alert(alert_id: str) -> AlertRow:
    return AlertRow(alert_id=alert_id, rule="r1", article_id=-int(alert_id[1:]), story_id="s1",
                    followup=False, created_at=T0, record={"alert_id": alert_id})


def test_every_store_method_has_an_async_twin_of_the_same_signature():
    for iface in (SourceStore, ArticleStore, OutboxStore, LeaseStore):
        for name, fn in vars(iface).items():
            if name.startswith("_") or not callable(fn) or name == "exclusive":
                continue
            twin = getattr(AsyncStore, name)
            assert (inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin)), name
            assert (list(inspect.signature(twin).parameters)
                    == list(inspect.signature(fn).parameters)), name


def test_one_boundary_and_one_thread_per_store(store):
    db = async_store(store)
    assert async_store(store) is db and async_store(db) is db

    async def main() -> set[int]:
        here = threading.get_ident()
        seen = {await db.call(threading.get_ident) for _ in range(5)}
        assert here not in seen
        return seen

    assert len(asyncio.run(main())) == 1


def test_async_methods_reach_the_store(store):
    db = async_store(store)

    async def main() -> None:
        await db.save_source_state(SourceState(name="a", etag="e1"))
        assert (await db.source_state("a")).etag == "e1"
        await db.mark_seen("a", ["k1"], None)
        assert await db.seen_keys("a", ["k1", "k2"]) == {"k1"}
        assert await db.claim_due_sources("me", T0, 60, ["a"]) == ["a"]
        assert await db.lease_owners() == {"me"}
        assert await db.count_articles() == 0
        assert [a async for a in db.iter_articles()] == []

    asyncio.run(main())


def test_transaction_commits_rolls_back_and_dry_runs(store):
    db = async_store(store)

    async def main() -> None:
        assert await db.transaction(lambda tx: tx.insert_alert(alert("a1"), [("slack", False)]))
        assert await db.get_alert("a1") is not None

        def fails(tx):
            tx.insert_alert(alert("a2"), [("slack", False)])
            raise ValueError("boom")

        with pytest.raises(ValueError):
            await db.transaction(fails)
        assert await db.get_alert("a2") is None
        assert await db.transaction(lambda tx: tx.insert_alert(alert("a3"), []), dry_run=True)
        assert await db.get_alert("a3") is None

    asyncio.run(main())


def test_a_closed_boundary_closes_its_store(store):
    db = AsyncStore(store)

    async def main() -> None:
        await db.close()

    asyncio.run(main())
    with pytest.raises(StorageError, match="closed"):
        store.count_articles()


def test_the_loop_runs_on_while_another_process_holds_the_write_lock(tmp_path):
    """The write waits for the other process's lock; the event loop does not."""
    path = tmp_path / "monitor.db"
    store = open_store(f"sqlite:///{path}")
    db = async_store(store)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(1.0)
        conn.execute("COMMIT")
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

        async def main() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            late: list[float] = []
            stop = asyncio.Event()

            async def probe() -> None:
                while not stop.is_set():
                    asked = loop.time()
                    await asyncio.sleep(0.01)
                    late.append(loop.time() - asked - 0.01)

            task = asyncio.create_task(probe())
            started = time.monotonic()
            await db.save_source_state(SourceState(name="a", etag="e"))
            waited = time.monotonic() - started
            stop.set()
            await task
            return waited, max(late)

        waited, worst = asyncio.run(main())
        assert waited > 0.3            # the write really waited for the lock
        assert worst < 0.2             # and the loop never did
        assert store.source_state("a").etag == "e"
    finally:
        holder.wait(timeout=10)
        store.close()
