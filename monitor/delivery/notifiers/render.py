"""Text helpers shared by the email, Slack and webhook notifiers.

Everything here is pure: it turns the web-supplied parts of an alert (title,
source, snippet, URL, date) into safe, tidy pieces that each notifier then
escapes for its own format. Nothing here escapes for a format itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, overload
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.config import parse_duration
from monitor.errors import ConfigError
from monitor.match.snippets import segments
from monitor.models import AlertRecord
from monitor.text import safe as textsafe
from monitor.text.safe import UNSAFE_CHARS


def one_line(text: Any, limit: int = 300) -> str:
    """Text from the web as a single tidy line: no line breaks or control
    characters (so it cannot start a new header or message line)."""
    return textsafe.one_line(str(text) if text else "", limit)


def headline(alert: AlertRecord, limit: int = 200) -> str:
    return one_line(alert.title, limit) or "(untitled)"


def safe_link(url: Any) -> str | None:
    """The URL if it is an absolute http(s) URL fit to become a link, else None.

    ``javascript:``, ``data:`` and relative URLs never become links; nor does a
    URL with whitespace or control characters in it.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    if UNSAFE_CHARS.search(url) or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def published_text(published: str | None, zone: str = "UTC") -> str:
    """'2024-05-01 18:30 JST' (in the channel's time zone ``zone``) from an ISO 8601
    string; '' when unknown."""
    if not published:
        return ""
    try:
        when = datetime.fromisoformat(str(published))
    except ValueError:
        return one_line(published, 40)
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    if zone == "UTC":
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    local = when.astimezone(ZoneInfo(zone))
    # An abbreviation where the zone has one (JST, KST, CEST), else the offset.
    name = local.tzname() or ""
    label = name if name[:1].isalpha() else local.strftime("UTC%z")
    return local.strftime(f"%Y-%m-%d %H:%M {label}")


def matched_text(alert: AlertRecord) -> str:
    return ", ".join(one_line(term, 80) for term in alert.matched if one_line(term, 80))


# --- highlighting -----------------------------------------------------------

def snippet_pieces(alert: AlertRecord, limit: int = 1000) -> list[tuple[str, bool]]:
    """The alert's snippet on one line (``one_line``, at most ``limit`` characters),
    as (piece, is_a_hit) pieces. The hits are the spans the query engine found
    when the alert was raised (``alert.highlights``); the snippet is never
    searched again for the matched words."""
    pieces = segments(alert.snippet or "", alert.highlights)
    source = "".join(piece for piece, _ in pieces)
    hits = [hit for piece, hit in pieces for _ in piece]
    line = one_line(source, limit)
    cut = line != one_line(source, len(source) + 1)
    body = line[:-1] if cut else line          # a cut line ends in an added "…"
    # one_line only drops characters and turns runs of white space into one
    # space: each character of the line is found again in order in the source.
    marks: list[bool] = []
    i, n = 0, len(source)
    for char in body:
        if char == " ":
            while i < n and not source[i].isspace():
                i += 1
        else:
            while i < n and source[i] != char:
                i += 1
        marks.append(i < n and hits[i])
        i += 1
    if cut:
        body += line[-1]
        marks.append(False)
    runs = itertools.groupby(zip(body, marks, strict=True), key=lambda pair: pair[1])
    return [("".join(char for char, _ in run), hit) for hit, run in runs]


def group_by_story(alerts: Iterable[AlertRecord]) -> list[list[AlertRecord]]:
    """Alerts grouped by story_id, stories in order of first appearance."""
    groups: dict[str, list[AlertRecord]] = {}
    for alert in alerts:
        groups.setdefault(alert.story_id, []).append(alert)
    return list(groups.values())


# --- option checking (shared by the notifiers' from_config) -----------------

# Read by the configuration (digest scheduling); accepted here and otherwise ignored.
SCHEDULING_KEYS = frozenset({"mode", "schedule", "timezone", "quiet_hours"})


class Options:
    """One notifier's TOML table, read key by key with errors that name the
    notifier and the key."""

    def __init__(self, name: str, options: dict[str, Any], known: Iterable[str]):
        self.name = name
        self.values = dict(options)
        allowed = set(known) | SCHEDULING_KEYS
        for key in self.values:
            if key not in allowed:
                raise ConfigError(f"notifier {name!r}: unknown key {key!r}")

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"notifier {self.name!r}: key {key!r}: {problem}")

    def has(self, key: str) -> bool:
        return self.values.get(key) not in (None, "")

    # The overloads tell the type checker what the code guarantees: with a default,
    # or with required=True, the answer is a string.
    @overload
    def string(self, key: str, default: str, *, required: bool = False) -> str: ...
    @overload
    def string(self, key: str, default: None = None, *, required: Literal[True]) -> str: ...
    @overload
    def string(self, key: str, default: None = None, *,
               required: bool = False) -> str | None: ...

    def string(self, key: str, default: str | None = None, *,
               required: bool = False) -> str | None:
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise self.error(key, "is required")
            return default
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if UNSAFE_CHARS.search(value):
            raise self.error(key, "must not contain control characters or line breaks")
        return value

    @overload
    def url(self, key: str, *, required: Literal[True] = True) -> str: ...
    @overload
    def url(self, key: str, *, required: bool) -> str | None: ...

    def url(self, key: str, *, required: bool = True) -> str | None:
        value = self.string(key, required=required)
        if value is not None and safe_link(value) is None:
            # The value itself is not echoed: URLs such as Slack webhooks are secrets.
            raise self.error(key, "must be an absolute http:// or https:// URL")
        return value

    def duration(self, key: str, default: float) -> float:
        try:
            return parse_duration(self.values.get(key, default))
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
