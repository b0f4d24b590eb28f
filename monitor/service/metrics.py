"""Health and metrics for the daemon; ``run --http`` serves them with the web page
(``monitor.service.web``):

- ``/healthz``: 200 with JSON {"status": "ok", ...} while the daemon is alive and
  its last cycle succeeded (or it has not finished one yet); 503 when the last
  cycle failed, with the same JSON saying so.
- ``/metrics``: counters and gauges in the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from storage.base import SourceState

LAG_WINDOW = 60.0          # seconds over which the event-loop lag gauge takes its maximum
LAG_PROBE = 0.5            # how often the probe asks to wake


async def probe_loop_lag(metrics: Metrics, stop: asyncio.Event) -> None:
    """Wake every LAG_PROBE seconds and record how late: the time the loop was busy."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(LAG_PROBE)
        metrics.loop_lag(max(0.0, loop.time() - asked - LAG_PROBE))


class Metrics:
    def __init__(self):
        self.started = time.time()
        self.polls: Counter[tuple[str, str]] = Counter()     # (source, status)
        self.new_articles: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()            # sent | failed
        self.last_cycle_at: float | None = None
        self.last_cycle_ok: bool | None = None
        self.last_cycle_seconds: float | None = None
        self.lags: deque[tuple[float, float]] = deque()     # (when, seconds late)

    def loop_lag(self, seconds: float) -> None:
        now = time.monotonic()
        self.lags.append((now, seconds))
        while self.lags and self.lags[0][0] < now - LAG_WINDOW:
            self.lags.popleft()

    def max_lag(self) -> float:
        return max((lag for _, lag in self.lags), default=0.0)

    def polled(self, result) -> None:
        self.polls[(result.name, result.status)] += 1
        self.new_articles[result.name] += result.new_articles
        self.duplicates[result.name] += result.duplicates
        self.alerts[result.name] += result.alerts

    def delivered(self, stats) -> None:
        self.deliveries["sent"] += stats.delivered
        self.deliveries["failed"] += stats.failed

    def cycle(self, *, ok: bool, seconds: float) -> None:
        self.last_cycle_at, self.last_cycle_ok = time.time(), ok
        self.last_cycle_seconds = seconds

    def health(self) -> tuple[int, dict]:
        ok = self.last_cycle_ok is not False
        body = {"status": "ok" if ok else "failing",
                "uptime_seconds": round(time.time() - self.started, 1),
                "last_cycle": (datetime.fromtimestamp(self.last_cycle_at, UTC).isoformat()
                               if self.last_cycle_at else None),
                "last_cycle_ok": self.last_cycle_ok}
        return (200 if ok else 503), body

    def prometheus(self, sources: Sequence[str], *, oldest_pending: datetime | None,
                   states: Mapping[str, SourceState]) -> str:
        """The text format. What the store holds is passed in: ``sources``, the
        configured names; ``oldest_pending``, when the oldest alert waiting for an
        immediate delivery was made; ``states``, each source's polling state."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[dict, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                label = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                lines.append(f"{name}{{{label}}} {value}" if label else f"{name} {value}")

        metric("monitor_polls_total", "counter", "Source polls by outcome.",
               [({"source": s, "status": st}, n) for (s, st), n in sorted(self.polls.items())])
        metric("monitor_poll_errors_total", "counter", "Source polls that failed.",
               [({"source": s}, n) for (s, st), n in sorted(self.polls.items()) if st == "error"])
        metric("monitor_articles_total", "counter", "New articles stored.",
               [({"source": s}, n) for s, n in sorted(self.new_articles.items())])
        metric("monitor_duplicates_total", "counter", "Articles recognised as seen before.",
               [({"source": s}, n) for s, n in sorted(self.duplicates.items())])
        metric("monitor_alerts_total", "counter", "Alerts recorded.",
               [({"source": s}, n) for s, n in sorted(self.alerts.items())])
        metric("monitor_deliveries_total", "counter", "Delivery attempts by result.",
               [({"result": r}, n) for r, n in sorted(self.deliveries.items())])
        now = datetime.now(UTC)
        metric("monitor_delivery_lag_seconds", "gauge",
               "Age of the oldest alert waiting for an immediate delivery (0 when none waits).",
               [({}, round((now - oldest_pending).total_seconds(), 3) if oldest_pending else 0)])
        metric("monitor_source_last_success_timestamp_seconds", "gauge",
               "When each source was last polled successfully (Unix time).",
               [({"source": name}, success.timestamp()) for name in sources
                if name in states and (success := states[name].last_success)])
        metric("monitor_source_consecutive_failures", "gauge", "Failures in a row per source.",
               [({"source": name}, states[name].consecutive_failures if name in states else 0)
                for name in sources])
        metric("monitor_last_cycle_success", "gauge", "1 if the last polling cycle succeeded.",
               [({}, 1 if self.last_cycle_ok is not False else 0)])
        metric("monitor_event_loop_lag_seconds", "gauge",
               f"The longest the event loop was busy in the last {LAG_WINDOW:.0f} s.",
               [({}, round(self.max_lag(), 4))])
        metric("monitor_uptime_seconds", "gauge", "Seconds since the daemon started.",
               [({}, round(time.time() - self.started, 1))])
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
