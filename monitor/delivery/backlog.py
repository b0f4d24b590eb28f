"""Store writes that failed while the store was away, replayed when it is back.

A daemon that has done a piece of work (sent an alert, finished a poll) must not
lose the record of it because the database was unreachable at that moment: the
write is kept here, in order, and replayed before new work is claimed. A write
whose work is not done (a claim given up) is kept the same way, so the claim is
freed as soon as the store answers again rather than when its lease runs out.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from monitor.errors import StorageError

log = logging.getLogger("monitor.backlog")

# Past this many writes the oldest are dropped (their leases run out, their work
# is done again): a store away for hours must not grow the daemon without bound.
MAX_WRITES = 100_000


class Backlog:
    def __init__(self) -> None:
        self._writes: deque[tuple[str, Callable[[], None]]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._writes)

    def add(self, what: str, write: Callable[[], None]) -> None:
        with self._lock:
            if len(self._writes) >= MAX_WRITES:
                dropped, _ = self._writes.popleft()
                log.warning("store away too long: dropped the unsaved %s", dropped)
            self._writes.append((what, write))

    def flush(self) -> bool:
        """Replay the writes in order; True when none is left, False when the store
        is still away (the rest is kept)."""
        done = 0
        while True:
            with self._lock:
                if not self._writes:
                    break
                what, write = self._writes[0]
            try:
                write()
            except StorageError as exc:
                log.warning("store still away (%s); %d writes wait", exc, len(self._writes),
                            extra={"event": "store_unavailable"})
                return False
            with self._lock:
                if self._writes and self._writes[0][1] is write:
                    self._writes.popleft()
            done += 1
        if done:
            log.info("store back: %d unsaved writes saved", done, extra={"event": "store_back"})
        return True
