"""Dates from the web and from our own records, read in one place.

- :func:`parse_iso` reads ISO 8601, RFC 3339 and W3C datetimes as publishers
  write them: ``Z`` or ``z``, ``+0900`` as well as ``+09:00``, more than six
  digits of fraction, a space for the ``T``, a bare year or year and month
  (the W3C profile that sitemaps use). A datetime without an offset is UTC.
- :func:`parse_http_date` reads the RFC 9110 dates of HTTP headers (``Date``,
  ``Expires``, ``Retry-After``): ``Sun, 06 Nov 1994 08:49:37 GMT`` and its
  obsolete forms.
- :func:`from_struct_time` takes feedparser's parsed dates (UTC struct_time).
- :func:`day_only` takes the ``YYYY-MM-DD`` of a date found in a page body.
- :func:`plausible` decides whether a date can be a publication date: not
  before :data:`EARLIEST_YEAR` (0001-01-01 and other placeholders), not more
  than :data:`FUTURE_TOLERANCE` ahead of now (a broken clock or a placeholder,
  which would otherwise sort first forever). Such a date becomes unknown.

Every function returns an aware datetime, or None for what is not a date.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["EARLIEST_YEAR", "FUTURE_TOLERANCE", "day_only", "from_struct_time",
           "parse_http_date", "parse_iso", "parse_published", "plausible"]

#: A publication date further ahead of now than this is unknown: a broken clock
#: or a placeholder. A day covers every time zone's idea of "today".
FUTURE_TOLERANCE = timedelta(days=1)
#: A publication date before this year is a placeholder (0001-01-01, 1970-01-01).
EARLIEST_YEAR = 1990

_MAX_CHARS = 64                     # longer text is not a date, whatever it starts with
_YEAR_OR_MONTH = re.compile(r"\d{4}(-\d{2})?")
_LONG_FRACTION = re.compile(r"(\.\d{1,6})\d*")     # Python takes six digits of fraction
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")   # +0900 -> +09:00


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 datetime or date, aware (UTC when it has no offset); None when
    ``value`` is not one."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > _MAX_CHARS or not value[:1].isdigit():
        return None
    if _YEAR_OR_MONTH.fullmatch(value):
        value = (value + "-01-01")[:10]
    value = _LONG_FRACTION.sub(r"\1", value)
    value = _COMPACT_OFFSET.sub(r"\1:\2", value)
    if len(value) > 10:
        value = value.replace(" ", "T", 1).replace("z", "Z")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_published(value: Any) -> datetime | None:
    """A publication date written in ISO 8601, in UTC; None when it is not one
    or is a placeholder (before :data:`EARLIEST_YEAR`)."""
    when = parse_iso(value)
    if when is None or when.year < EARLIEST_YEAR:
        return None
    return when.astimezone(UTC)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (RFC 9110, its obsolete forms too), aware; None otherwise."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_struct_time(parsed: time.struct_time | tuple | None) -> datetime | None:
    """A UTC ``struct_time`` (as feedparser gives) as an aware datetime."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def day_only(value: str | None) -> datetime | None:
    """Midnight UTC of the ``YYYY-MM-DD`` that ``value`` starts with; None when it
    does not, or the day is a placeholder (before :data:`EARLIEST_YEAR`)."""
    if not value:
        return None
    try:
        day = datetime.strptime(value[:10], "%Y-%m-%d")
    except ValueError:
        return None
    return day.replace(tzinfo=UTC) if day.year >= EARLIEST_YEAR else None


def plausible(when: datetime | None, now: datetime) -> datetime | None:
    """``when`` in UTC if it can be a publication date seen at ``now``, else None."""
    if when is None or when.year < EARLIEST_YEAR or when > now + FUTURE_TOLERANCE:
        return None
    return when.astimezone(UTC)
