"""The one date module: every form the former parsers read, through one function each."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.text.dates import (
    EARLIEST_YEAR,
    FUTURE_TOLERANCE,
    day_only,
    from_struct_time,
    parse_http_date,
    parse_iso,
    parse_published,
    plausible,
)

JST = timezone(timedelta(hours=9))
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T10:00:00+09:00", datetime(2024, 5, 1, 10, tzinfo=JST)),
    ("2024-05-01T10:00:00+0900", datetime(2024, 5, 1, 10, tzinfo=JST)),       # compact offset
    ("2024-05-01T01:00:00Z", datetime(2024, 5, 1, 1, tzinfo=UTC)),
    ("2024-05-01t01:00:00z", datetime(2024, 5, 1, 1, tzinfo=UTC)),            # JSON Feed
    ("2024-05-01 01:00:00", datetime(2024, 5, 1, 1, tzinfo=UTC)),             # no offset: UTC
    ("2024-05-01T01:00:00.123456789Z", datetime(2024, 5, 1, 1, 0, 0, 123456, tzinfo=UTC)),
    ("  2024-05-01  ", datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),                            # W3C, sitemaps
    ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
    ("", None), ("   ", None), (None, None), (20240501, None),
    ("May 1, 2024", None), ("yesterday", None), ("2024-13-01", None),
    ("2024-05-01T10:00:00+09:00" + " " * 60 + "x", None),                      # too long
])
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected
    if expected is not None:
        assert parse_iso(text).tzinfo is not None


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T10:00:00+09:00", datetime(2024, 5, 1, 1, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", None),                                            # placeholder
    ("1970-01-01", None),
    (f"{EARLIEST_YEAR}-01-01", datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC)),
    ("not a date", None),
])
def test_parse_published(text, expected):
    when = parse_published(text)
    assert when == expected
    if when is not None:
        assert when.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("text", "expected"), [
    ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Wed, 01 May 2024 21:00:00 +0900", datetime(2024, 5, 1, 21, tzinfo=JST)),
    ("", None), (None, None), ("120", None), ("soon", None),
])
def test_parse_http_date(text, expected):
    assert parse_http_date(text) == expected


def test_from_struct_time():
    assert from_struct_time(time.gmtime(0)) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_struct_time((2024, 5, 1, 1, 0, 0, 0, 0, 0)) == datetime(2024, 5, 1, 1, tzinfo=UTC)
    assert from_struct_time(None) is None
    assert from_struct_time((99999999, 1, 1, 0, 0, 0, 0, 0, 0)) is None
    assert from_struct_time(("x",)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05-01T23:59:00+09:00", datetime(2024, 5, 1, tzinfo=UTC)),
    ("1900-01-01", None), ("2024/05/01", None), ("", None), (None, None),
])
def test_day_only(text, expected):
    assert day_only(text) == expected


@pytest.mark.parametrize(("when", "expected"), [
    (NOW, NOW),
    (NOW + FUTURE_TOLERANCE, NOW + FUTURE_TOLERANCE),
    (NOW + FUTURE_TOLERANCE + timedelta(seconds=1), None),                   # a broken clock
    (datetime(1989, 12, 31, tzinfo=UTC), None),
    (datetime(2024, 5, 1, 21, tzinfo=JST), datetime(2024, 5, 1, 12, tzinfo=UTC)),
    (None, None),
])
def test_plausible(when, expected):
    result = plausible(when, NOW)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC
