"""Quiet hours: ``quiet_hours = "22:00-07:00"`` on a channel, in its ``timezone``.

Immediate alerts raised (or retried) in those hours wait, pending, and go out at
the first delivery pass after they end (the daemon's passes are 30 s apart; a
cron ``check-now`` delivers them at its first run after the end). Digests keep
their schedule: a digest due in quiet hours goes out. A period whose start is
after its end wraps midnight ("22:00-07:00"); the start is in the period, the end
is not. Times are wall-clock times in the channel's zone, so the period follows
daylight saving time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_SPEC = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """("22:00-07:00") -> (22:00, 07:00); ValueError for anything else."""
    m = _SPEC.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a period such as \"22:00-07:00\"")
    start, end = time(int(m.group(1)), int(m.group(2))), time(int(m.group(3)), int(m.group(4)))
    if start == end:
        raise ValueError(f"{text!r}: the start and the end are the same time")
    return start, end


def quiet_until(period: tuple[time, time], zone: str, now: datetime) -> datetime | None:
    """When the quiet period that ``now`` falls in ends (UTC), or None when ``now``
    is not in quiet hours."""
    start, end = period
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    at = local.time()
    if start < end:
        inside = start <= at < end
        end_day = local.date()
    else:                                    # wraps midnight
        inside = at >= start or at < end
        end_day = local.date() + timedelta(days=1) if at >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)


def held_channels(notifiers: Iterable, now: datetime) -> dict[str, datetime]:
    """The channels (NotifierConfig) in quiet hours at ``now``, with when each ends."""
    held = {}
    for n in notifiers:
        period = getattr(n, "quiet_hours", None)
        if period is not None:
            until = quiet_until(period, n.timezone, now)
            if until is not None:
                held[n.name] = until
    return held
