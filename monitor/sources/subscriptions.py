"""Found feeds into ``[[sources]]`` TOML to paste: shared by ``sources discover`` and
``sources import``.

Decisions:

- A name is the title made into letters, digits and dashes (``Asia Wire`` ->
  ``asia-wire``); a title with nothing of the kind (Japanese, Korean) gives the
  site's host (``www3.nhk.or.jp`` -> ``nhk.or.jp``). A name already in the
  configuration, or given to an earlier feed of the same output, gets ``-2``,
  ``-3``, ...
- A URL already configured (compared canonically: tracking parameters, case of
  the host and default ports aside) is left out and counted.
- The text written is TOML that ``tomllib`` reads back to the same values: strings
  are escaped here, and web text (titles) only ever goes into comments, on one line
  and without control characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.sources.urls import canonicalize
from monitor.text.safe import UNSAFE_CHARS, one_line

MAX_NAME = 60
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}
# Escaped in a TOML string: what TOML requires, and every unsafe character, so
# that the value reads as it is.
_TOML_UNSAFE = re.compile(f'["\\\\]|{UNSAFE_CHARS.pattern}')


def toml_string(value: str) -> str:
    """A TOML basic string holding ``value`` exactly."""
    return '"' + _TOML_UNSAFE.sub(
        lambda m: _TOML_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), value) + '"'


def canonical(url: str) -> str:
    try:
        return canonicalize(url)
    except ValueError:
        return url


@dataclass
class Found:
    """A feed to propose as a source."""

    url: str
    title: str = ""
    notes: tuple[str, ...] = ()          # comment lines above the block (web text allowed)


class Names:
    """Source names unique among those taken so far."""

    def __init__(self, taken: Iterable[str] = ()):
        self.taken = {n.lower() for n in taken}

    def make(self, title: str, url: str) -> str:
        base = _slug(title) or _host_name(url) or "feed"
        name, n = base, 1
        while name.lower() in self.taken:
            n += 1
            name = f"{base[:MAX_NAME - len(str(n)) - 1]}-{n}"
        self.taken.add(name.lower())
        return name


def _slug(title: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > MAX_NAME:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug


def _host_name(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    host = host.removeprefix("www.")
    host = re.sub(r"^www\d+\.", "", host)
    name = re.sub(r"[^a-z0-9.\-]+", "-", host).strip(".-")
    return name[:MAX_NAME]


@dataclass
class Proposal:
    text: str                  # the TOML to print
    added: list[tuple[str, Found]]          # (name, feed) of each block
    already: list[tuple[str, Found]]        # (configured source's name, feed) left out


def propose(found: Iterable[Found], configured: Iterable[tuple[str, str]]) -> Proposal:
    """TOML blocks for ``found`` feeds; ``configured`` is (name, url) of each
    configured source. Feeds whose URL is configured (or repeats an earlier one)
    are left out."""
    configured = list(configured)
    by_url = {canonical(url): name for name, url in configured}
    names = Names(name for name, _ in configured)
    blocks: list[str] = []
    added: list[tuple[str, Found]] = []
    already: list[tuple[str, Found]] = []
    for feed in found:
        key = canonical(feed.url)
        if key in by_url:
            already.append((by_url[key], feed))
            continue
        name = names.make(feed.title, feed.url)
        by_url[key] = name
        added.append((name, feed))
        notes = "".join(f"# {one_line(note, 200)}\n" for note in feed.notes if one_line(note, 200))
        blocks.append(f"{notes}[[sources]]\nname = {toml_string(name)}\nkind = \"feed\"\n"
                      f"url = {toml_string(feed.url)}\n")
    return Proposal("\n".join(blocks), added, already)
