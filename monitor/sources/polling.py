"""When to poll a source next: one pure function of the clock, the policy and the last poll.

No I/O, no sleeping, no hidden clock: the caller passes ``now`` (and, for tests,
``rand``). The delay is the LARGEST of what each rule asks for, as in Miniflux's
``ScheduleNextCheck``; every bound is applied in this order:

1. Base interval. The configured ``interval`` is what the user asked for, but
   never below ``min_interval``. With ``adaptive`` on and enough history (see
   ``adaptive_interval``) it is replaced by how often the source really
   publishes: half the median gap between its entries, clamped to
   ``[min_interval, max_interval]``. So adaptive polling may go BELOW the
   configured interval (down to ``min_interval``) for a source that publishes
   faster than the user guessed, and ABOVE it (up to ``max_interval``) for one
   that publishes much more slowly (a gap of more than twice the interval).
   Halving the gap means a new entry is seen, on average, within a quarter of
   a gap and at worst within half of one. Without enough history the configured
   interval stands. To pin a source to its interval, turn ``adaptive`` off.

2. Server floors. ``max_age`` (Cache-Control max-age or Expires) and the RSS
   ``ttl`` say "nothing new before then": the delay is never shorter, except
   that each is first capped at ``max_interval`` so that a one-year max-age
   cannot stop polling. They never shorten a configured interval that is
   longer than ``max_interval``.

3. Errors. After ``n`` consecutive failures the delay is
   ``base * 2**(n-1)``, capped at ``backoff_cap`` (but never below ``base``:
   an error never makes a source polled more often than when it is well).
   An error outcome with ``consecutive_failures`` of 0 or less counts as one.

4. Retry-After (from a 429 or 503, or any response that carries one) is a
   floor on the delay whatever the status, capped at ``backoff_cap`` so that a
   server asking for a year still gets asked again within a day.

5. Jitter. The delay is multiplied by ``1 + jitter * (2 * rand() - 1)``, i.e.
   spread evenly over ``±jitter``, so that sources configured alike do not all
   fire together; ``rand()`` outside ``[0, 1]`` is clamped. Jitter never takes
   the delay below a floor that must hold (``min_interval``, Retry-After and the
   capped max-age/ttl), nor above ``backoff_cap`` unless the delay was already
   above it (a configured interval longer than the cap).

Silly values from the web (negative, NaN or infinite max-age, ttl or
Retry-After) are ignored when negative or NaN and capped when huge; a negative
failure count is 0. A policy with a non-positive or non-finite value is a
programming or configuration error: ``PollPolicy`` raises ``ValueError``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from monitor import defaults

__all__ = ["PollOutcome", "PollPolicy", "adaptive_interval", "next_poll"]

#: Only entries published within this window (before ``now``) tell how often a
#: source publishes. Long enough that a weekly source has the five entries it needs.
ADAPTIVE_WINDOW = timedelta(days=90)
#: Fewer distinct publish times than this and the configured interval stands.
ADAPTIVE_MIN_ENTRIES = 5
#: At most this many of the newest entries are used: what the source does now matters.
ADAPTIVE_MAX_ENTRIES = 50

_STATUSES = frozenset({"ok", "not_modified", "error"})
_MAX_SECONDS = 10 * 366 * 86400.0  # no sane interval is longer; bounds timedelta arithmetic
_MAX_EXPONENT = 64  # 2**64 times any interval is past every cap; avoids float overflow


@dataclass(frozen=True)
class PollPolicy:
    interval: float                    # the source's configured interval, seconds
    min_interval: float = defaults.MIN_INTERVAL  # never poll more often than this
    # The adaptive interval and the server floors are never above this.
    max_interval: float = defaults.MAX_INTERVAL
    backoff_cap: float = 24 * 3600.0   # errors' backoff and Retry-After never above this
    jitter: float = 0.1                # ±10 % spread
    adaptive: bool = defaults.ADAPTIVE

    def __post_init__(self) -> None:
        for name in ("interval", "min_interval", "max_interval", "backoff_cap"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= _MAX_SECONDS):
                raise ValueError(f"PollPolicy.{name} must be a positive number of seconds "
                                 f"(at most ten years), not {value!r}")
        if self.min_interval > self.max_interval:
            raise ValueError("PollPolicy.min_interval is larger than max_interval")
        if not (isinstance(self.jitter, (int, float)) and 0 <= self.jitter < 1):
            raise ValueError(f"PollPolicy.jitter must be in [0, 1), not {self.jitter!r}")

    @classmethod
    def for_source(cls, interval: float, *, min_interval: float, max_interval: float,
                   adaptive: bool) -> PollPolicy:
        """The policy of a source polled every ``interval``, within the configured
        bounds of the adaptive interval: the bounds widen to take in a configured
        interval outside them, which the user asked for."""
        return cls(interval=interval, min_interval=min(min_interval, interval),
                   max_interval=max(max_interval, interval), adaptive=adaptive)


@dataclass(frozen=True)
class PollOutcome:
    status: str                         # "ok" | "not_modified" | "error"
    consecutive_failures: int = 0       # after this poll (0 on success)
    max_age: float | None = None        # Cache-Control max-age / Expires, seconds
    ttl: float | None = None            # RSS <ttl>, seconds
    retry_after: float | None = None    # from a 429/503, seconds
    publish_times: Sequence[datetime] = ()  # published times of every entry in the feed

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"PollOutcome.status must be one of {sorted(_STATUSES)}, "
                             f"not {self.status!r}")


def next_poll(now: datetime, policy: PollPolicy, outcome: PollOutcome, *,
              rand: Callable[[], float] = random.random) -> datetime:
    """The time to poll the source again (same time zone, or naivety, as ``now``)."""
    return now + timedelta(seconds=poll_delay(now, policy, outcome, rand=rand))


def poll_delay(now: datetime, policy: PollPolicy, outcome: PollOutcome, *,
               rand: Callable[[], float] = random.random) -> float:
    """Seconds from ``now`` to the next poll; the rules are in the module docstring."""
    base = max(policy.interval, policy.min_interval)
    if policy.adaptive:
        adapted = adaptive_interval(outcome.publish_times, policy, now=now)
        if adapted is not None:
            base = adapted

    # Floors that must hold even after jitter.
    floors = [_capped(outcome.max_age, policy.max_interval),
              _capped(outcome.ttl, policy.max_interval),
              _capped(outcome.retry_after, policy.backoff_cap)]
    hard_floor = max([policy.min_interval, *(f for f in floors if f is not None)])

    delay = base
    if outcome.status == "error":
        failures = max(1, _count(outcome.consecutive_failures))
        backoff = base * 2.0 ** min(failures - 1, _MAX_EXPONENT)
        delay = max(base, min(backoff, policy.backoff_cap))
    delay = max(delay, hard_floor)

    spread = 1.0 + policy.jitter * (2.0 * _unit(rand()) - 1.0)
    # A delay already past the cap (a long configured interval) is jittered both ways.
    ceiling = policy.backoff_cap if delay <= policy.backoff_cap else math.inf
    return min(max(delay * spread, hard_floor), ceiling)


def adaptive_interval(publish_times: Iterable[datetime], policy: PollPolicy, *,
                      now: datetime | None = None) -> float | None:
    """How often to poll a source, judged from when it really publishes; None if unknown.

    Uses the distinct publish times no later than ``now`` and within
    ``ADAPTIVE_WINDOW`` of it (at most the newest ``ADAPTIVE_MAX_ENTRIES``);
    with fewer than ``ADAPTIVE_MIN_ENTRIES`` it returns None. The estimate is
    the median of the gaps between consecutive entries and the silence since
    the newest one (a lower bound on the gap now open, counted as one more gap
    so that a long silence nudges the estimate up), halved and clamped to
    ``[min_interval, max_interval]``. The median shrugs off a burst of entries
    published at once or one long holiday. Naive datetimes are taken as UTC;
    ``now`` defaults to the current time, so pass it where purity matters.
    """
    now_utc = _utc(now) if now is not None else datetime.now(UTC)
    oldest = now_utc - ADAPTIVE_WINDOW
    times = sorted({t for t in map(_utc_or_none, publish_times)
                    if t is not None and oldest <= t <= now_utc})
    times = times[-ADAPTIVE_MAX_ENTRIES:]
    if len(times) < ADAPTIVE_MIN_ENTRIES:
        return None
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    gaps.append((now_utc - times[-1]).total_seconds())
    estimate = statistics.median(gaps) / 2.0
    return min(max(estimate, policy.min_interval), policy.max_interval)


# --------------------------------------------------------------------------- helpers


def _capped(value: float | None, cap: float) -> float | None:
    """A delay from the web: None if absent, negative or NaN; at most ``cap``."""
    if value is None or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        return None
    return min(float(value), cap)


def _count(value: object) -> int:
    try:
        return max(0, int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0


def _unit(value: float) -> float:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return 0.5
    return min(max(float(value), 0.0), 1.0)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(
        UTC)


def _utc_or_none(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    try:
        return _utc(value)
    except (OverflowError, ValueError):
        return None
