"""The metrics page from plain values: the daemon's counters and what the store says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.service.metrics import Metrics
from storage.base import SourceState


def samples(text: str) -> dict[str, float]:
    return {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_the_page_reports_the_values_it_is_given():
    success = datetime(2024, 5, 1, tzinfo=UTC)
    states = {"wire": SourceState("wire", last_success=success),
              "daily": SourceState("daily", consecutive_failures=3)}
    waiting = datetime.now(UTC) - timedelta(minutes=5)

    page = samples(Metrics().prometheus(["wire", "daily", "new"], oldest_pending=waiting,
                                        states=states))

    assert 299 <= page["monitor_delivery_lag_seconds"] <= 310
    assert page['monitor_source_last_success_timestamp_seconds{source="wire"}'] == \
        success.timestamp()
    assert 'monitor_source_last_success_timestamp_seconds{source="daily"}' not in page
    assert page['monitor_source_consecutive_failures{source="daily"}'] == 3
    assert page['monitor_source_consecutive_failures{source="new"}'] == 0   # never polled
    assert page["monitor_last_cycle_success"] == 1


def test_no_delivery_waiting_is_no_lag():
    page = samples(Metrics().prometheus([], oldest_pending=None, states={}))
    assert page["monitor_delivery_lag_seconds"] == 0
