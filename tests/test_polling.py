"""The polling policy: pure, so every rule is a row in a table; no I/O, no sleeping."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.sources.polling import (
    PollOutcome,
    PollPolicy,
    adaptive_interval,
    next_poll,
    poll_delay,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
MIDDLE = lambda: 0.5  # noqa: E731  (no jitter: 1 + j * (2 * 0.5 - 1) == 1)


def every(gap: float, count: int = 10, *, last: float = 0.0) -> list[datetime]:
    """``count`` publish times ``gap`` seconds apart, the newest ``last`` seconds ago."""
    return [NOW - timedelta(seconds=last + i * gap) for i in range(count)]


def delay(policy: PollPolicy, outcome: PollOutcome, rand=MIDDLE) -> float:
    return (next_poll(NOW, policy, outcome, rand=rand) - NOW).total_seconds()


FIXED = PollPolicy(interval=15 * MIN, adaptive=False)
ADAPTIVE = PollPolicy(interval=15 * MIN)


@pytest.mark.parametrize("policy, outcome, expected", [
    # base: the configured interval, never below min_interval
    (FIXED, PollOutcome("ok"), 15 * MIN),
    (FIXED, PollOutcome("not_modified"), 15 * MIN),
    (PollPolicy(interval=10, adaptive=False), PollOutcome("ok"), MIN),
    # a configured interval longer than max_interval is the user's choice
    (PollPolicy(interval=12 * HOUR, adaptive=False), PollOutcome("ok"), 12 * HOUR),
    # adaptive off: publish times are ignored
    (FIXED, PollOutcome("ok", publish_times=every(MIN)), 15 * MIN),
    # adaptive: half the median gap, clamped to [min_interval, max_interval]
    (ADAPTIVE, PollOutcome("ok", publish_times=every(10 * MIN)), 5 * MIN),
    (ADAPTIVE, PollOutcome("ok", publish_times=every(2 * HOUR)), HOUR),
    (ADAPTIVE, PollOutcome("ok", publish_times=every(MIN)), MIN),
    (ADAPTIVE, PollOutcome("ok", publish_times=every(7 * DAY, 8)), 6 * HOUR),
    # adaptive without enough history: the configured interval stands
    (ADAPTIVE, PollOutcome("ok", publish_times=every(10 * MIN, 4)), 15 * MIN),
    (ADAPTIVE, PollOutcome("ok", publish_times=()), 15 * MIN),
    # server floors: max-age and ttl, the larger wins, capped at max_interval
    (FIXED, PollOutcome("ok", max_age=HOUR), HOUR),
    (FIXED, PollOutcome("ok", ttl=2 * HOUR), 2 * HOUR),
    (FIXED, PollOutcome("ok", max_age=HOUR, ttl=2 * HOUR), 2 * HOUR),
    (FIXED, PollOutcome("ok", max_age=5 * MIN), 15 * MIN),
    (FIXED, PollOutcome("not_modified", max_age=365 * DAY), 6 * HOUR),
    (FIXED, PollOutcome("ok", ttl=math.inf), 6 * HOUR),
    (PollPolicy(interval=12 * HOUR, adaptive=False), PollOutcome("ok", max_age=DAY), 12 * HOUR),
    # a server floor holds over an adaptive interval too
    (ADAPTIVE, PollOutcome("ok", max_age=HOUR, publish_times=every(MIN)), HOUR),
    # errors: interval * 2**(failures-1), capped at backoff_cap
    (FIXED, PollOutcome("error", consecutive_failures=1), 15 * MIN),
    (FIXED, PollOutcome("error", consecutive_failures=2), 30 * MIN),
    (FIXED, PollOutcome("error", consecutive_failures=4), 2 * HOUR),
    (FIXED, PollOutcome("error", consecutive_failures=10), DAY),
    (FIXED, PollOutcome("error", consecutive_failures=10**9), DAY),
    (FIXED, PollOutcome("error", consecutive_failures=0), 15 * MIN),
    (FIXED, PollOutcome("error", consecutive_failures=-3), 15 * MIN),
    # backoff never polls a slow source more often than when it is well
    (PollPolicy(interval=2 * DAY, adaptive=False), PollOutcome("error", consecutive_failures=3),
     2 * DAY),
    # Retry-After: a floor whatever the status, capped at backoff_cap
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=HOUR), HOUR),
    (FIXED, PollOutcome("error", consecutive_failures=5, retry_after=HOUR), 4 * HOUR),
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=10.0), 15 * MIN),
    (FIXED, PollOutcome("ok", retry_after=3 * HOUR), 3 * HOUR),
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=1e12), DAY),
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=math.inf), DAY),
    # silly values from the web are ignored
    (FIXED, PollOutcome("ok", max_age=-5.0, ttl=math.nan), 15 * MIN),
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=-100.0), 15 * MIN),
    (FIXED, PollOutcome("error", consecutive_failures=1, retry_after=math.nan), 15 * MIN),
    (FIXED, PollOutcome("ok", max_age=-math.inf), 15 * MIN),
])
def test_rules(policy: PollPolicy, outcome: PollOutcome, expected: float) -> None:
    assert delay(policy, outcome) == pytest.approx(expected)


@pytest.mark.parametrize("rand, factor", [(lambda: 0.0, 0.9), (lambda: 0.5, 1.0),
                                          (lambda: 0.999999, 1.1), (lambda: 0.25, 0.95),
                                          (lambda: -7.0, 0.9), (lambda: 42.0, 1.1),
                                          (lambda: math.nan, 1.0)])
def test_jitter_spreads_within_bounds(rand, factor: float) -> None:
    assert delay(FIXED, PollOutcome("ok"), rand) == pytest.approx(15 * MIN * factor, rel=1e-5)


@pytest.mark.parametrize("outcome, floor", [
    (PollOutcome("ok"), MIN),                                                    # min_interval
    (PollOutcome("ok", max_age=HOUR), HOUR),                                     # max-age
    (PollOutcome("error", consecutive_failures=1, retry_after=2 * HOUR), 2 * HOUR),  # Retry-After
])
def test_jitter_never_goes_below_a_floor(outcome: PollOutcome, floor: float) -> None:
    policy = PollPolicy(interval=MIN, adaptive=False, jitter=0.5)
    assert delay(policy, outcome, lambda: 0.0) == pytest.approx(floor)


def test_jitter_never_goes_above_backoff_cap() -> None:
    outcome = PollOutcome("error", consecutive_failures=30)
    assert delay(FIXED, outcome, lambda: 1.0) == pytest.approx(DAY)
    assert delay(FIXED, outcome, lambda: 0.0) == pytest.approx(0.9 * DAY)


def test_no_jitter_when_jitter_is_zero() -> None:
    policy = PollPolicy(interval=15 * MIN, adaptive=False, jitter=0.0)
    assert {delay(policy, PollOutcome("ok"), lambda r=r: r) for r in (0.0, 0.3, 1.0)} == {15 * MIN}


def test_default_rand_stays_within_jitter() -> None:
    for _ in range(200):
        seconds = (next_poll(NOW, FIXED, PollOutcome("ok")) - NOW).total_seconds()
        assert 0.9 * 15 * MIN <= seconds <= 1.1 * 15 * MIN


def test_next_poll_keeps_the_time_zone_of_now() -> None:
    naive = NOW.replace(tzinfo=None)
    assert next_poll(naive, FIXED, PollOutcome("ok"), rand=MIDDLE) == naive + timedelta(minutes=15)
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert next_poll(tokyo, FIXED, PollOutcome("ok"), rand=MIDDLE).utcoffset() == timedelta(hours=9)


def test_poll_delay_is_the_same_number() -> None:
    outcome = PollOutcome("error", consecutive_failures=3)
    assert poll_delay(NOW, FIXED, outcome, rand=MIDDLE) == delay(FIXED, outcome)


# --------------------------------------------------------------------------- adaptive


@pytest.mark.parametrize("times, expected", [
    ([], None),
    (every(10 * MIN, 4), None),                                 # too few
    (every(10 * MIN, 5), 5 * MIN),                              # just enough
    (every(10 * MIN, 4) * 3, None),                             # duplicates count once
    (every(10 * MIN, 10, last=120 * DAY), None),                # all older than the window
    (every(DAY, 60), 6 * HOUR),                                 # daily: max_interval
    # only the newest 50 count: hourly lately, every minute before
    (every(HOUR, 50) + every(MIN, 150, last=60 * HOUR), HOUR / 2),
])
def test_adaptive_interval(times: list[datetime], expected: float | None) -> None:
    result = adaptive_interval(times, ADAPTIVE, now=NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_future_publish_times_are_ignored() -> None:
    future = [NOW + timedelta(days=d) for d in range(1, 30)]
    assert adaptive_interval(future, ADAPTIVE, now=NOW) is None
    assert adaptive_interval(every(10 * MIN, 6) + future, ADAPTIVE, now=NOW) == pytest.approx(
        5 * MIN)


def test_median_shrugs_off_a_burst_and_a_holiday() -> None:
    # Twelve entries 20 min apart, three published in the same minute, one week-long gap.
    times = every(20 * MIN, 12) + [NOW - timedelta(minutes=5, seconds=s) for s in (1, 2, 3)]
    times.append(NOW - timedelta(days=8))
    assert adaptive_interval(times, ADAPTIVE, now=NOW) == pytest.approx(10 * MIN)


def test_the_silence_since_the_newest_entry_counts_as_a_gap() -> None:
    # Gaps of 5 and 20 minutes alternating; then either nothing since, or two quiet days.
    offsets = [0, 5, 25, 30, 50, 55]
    busy = [NOW - timedelta(minutes=m) for m in offsets]
    quiet = [t - timedelta(days=2) for t in busy]
    assert adaptive_interval(busy, ADAPTIVE, now=NOW) == pytest.approx(2.5 * MIN)
    assert adaptive_interval(quiet, ADAPTIVE, now=NOW) == pytest.approx(6.25 * MIN)


def test_naive_and_aware_times_mix() -> None:
    times = [t.replace(tzinfo=None) if i % 2 else t for i, t in enumerate(every(10 * MIN, 6))]
    assert adaptive_interval(times, ADAPTIVE, now=NOW) == pytest.approx(5 * MIN)


def test_rubbish_in_publish_times_is_skipped() -> None:
    times = [None, "yesterday", *every(10 * MIN, 6)]
    assert adaptive_interval(times, ADAPTIVE, now=NOW) == pytest.approx(5 * MIN)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs", [
    {"interval": 0}, {"interval": -60}, {"interval": math.nan}, {"interval": math.inf},
    {"interval": 60, "min_interval": -1}, {"interval": 60, "jitter": 1.0},
    {"interval": 60, "jitter": -0.1}, {"interval": 60, "jitter": math.nan},
    {"interval": 60, "min_interval": 7 * HOUR},  # above max_interval
    {"interval": 1e20},
])
def test_nonsense_policy_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="PollPolicy"):
        PollPolicy(**kwargs)


def test_max_interval_above_backoff_cap_is_allowed() -> None:
    # The pipeline widens max_interval to a long configured interval; errors then
    # back off no faster than that interval, and jitter may go above the cap.
    policy = PollPolicy(interval=2 * DAY, max_interval=2 * DAY, adaptive=False)
    assert delay(policy, PollOutcome("error", consecutive_failures=5)) == pytest.approx(2 * DAY)
    assert delay(policy, PollOutcome("ok", max_age=2 * DAY), lambda: 1.0) == pytest.approx(
        2.2 * DAY)


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        PollOutcome("fine")
