"""Text helpers shared by the email, Slack and webhook notifiers.

Everything here is pure: it turns the web-supplied parts of an alert (title,
source, snippet, URL, date) into safe, tidy pieces that each notifier then
escapes for its own format. Nothing here escapes for a format itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, overload
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.config import parse_duration
from monitor.errors import ConfigError
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

def _fold(text: str) -> tuple[str, list[int]]:
    """Case- and accent-folded text, with each folded character's index in ``text``."""
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        base = "".join(c for c in unicodedata.normalize("NFKD", char)
                       if not unicodedata.combining(c)).casefold()
        folded.append(base)
        origin.extend([i] * len(base))
    return "".join(folded), origin


def _spaceless(char: str) -> bool:
    """Scripts written without spaces between words (matched as substrings)."""
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF
            or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FFFF
            or 0x0E00 <= code <= 0x0EFF)


def _term_pattern(term: str) -> str | None:
    prefix = term.rstrip().endswith("*")
    words = [w for w in re.split(r"[\W_]+", _fold(term)[0]) if w]
    if not words:
        return None
    # Punctuation and hyphens are word breaks: "Kim Jong Un" matches "Kim Jong-un".
    body = r"[\W_]+".join(re.escape(w) for w in words)
    start = "" if _spaceless(words[0][0]) else r"(?<!\w)"
    end = "" if prefix or _spaceless(words[-1][-1]) else r"(?!\w)"
    if prefix:
        body += r"\w*"
    return start + body + end


def highlight(text: str, terms: Iterable[str]) -> list[tuple[str, bool]]:
    """Split ``text`` into (piece, is_match) pieces, marking the matched terms.

    Matching mirrors the query language loosely: whole words, case and accents
    ignored, punctuation as word breaks, ``word*`` as a prefix.
    """
    folded, origin = _fold(text)
    spans: list[tuple[int, int]] = []
    for term in terms:
        pattern = _term_pattern(str(term))
        if pattern is None:
            continue
        for m in re.finditer(pattern, folded):
            if m.end() > m.start():
                spans.append((origin[m.start()], origin[m.end() - 1] + 1))
    spans.sort()
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for start, end in spans:
        if end <= pos:
            continue
        start = max(start, pos)
        if start > pos:
            pieces.append((text[pos:start], False))
        pieces.append((text[start:end], True))
        pos = end
    if pos < len(text):
        pieces.append((text[pos:], False))
    return pieces


def snippet_pieces(alert: AlertRecord, limit: int = 1000) -> list[tuple[str, bool]]:
    return highlight(one_line(alert.snippet, limit), alert.matched)


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

    @overload
    def string(self, key: str, default: str, *, required: bool = False) -> str: ...
    @overload
    def string(self, key: str, default: None = None, *, required: Literal[True]) -> str: ...
    @overload
    def string(self, key: str, default: None = None, *,
               required: bool = False) -> str | None: ...

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
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
