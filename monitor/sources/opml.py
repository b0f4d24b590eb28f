"""OPML subscription lists: ``sources import FILE.opml`` and ``sources export``.

Reading is listparser's (the maintained reader of OPML, FOAF and iGoogle lists;
it flattens nested outlines into feeds with their folder path as categories).
Before it sees the file we check it ourselves with defusedxml, because listparser
parses with lxml's forgiving HTML parser: a broken file would silently give
fewer feeds, where a user should be told the line and column to fix. defusedxml
also refuses entity declarations (no billion laughs, no external entities).

Export writes OPML 2.0 of the ``kind = "feed"`` sources; page and sitemap
sources are not feeds, which other readers could not follow, and are left out.
A URL holding a secret (``${VAR}`` in the configuration) is written as
configured, with the ``${VAR}`` reference, never with its value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.etree.ElementTree import ParseError as XMLParseError
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
import listparser
from defusedxml import DefusedXmlException

from monitor.config import Config, check_http_url
from monitor.errors import ConfigError
from monitor.redaction import redactor
from monitor.sources.subscriptions import Found, Proposal, propose

MAX_OPML_BYTES = 20_000_000
MAX_FEEDS = 10_000


@dataclass
class Imported:
    proposal: Proposal
    skipped: list[str] = field(default_factory=list)     # why an outline was not taken


def read_opml(data: bytes, *, path: str) -> tuple[list[Found], list[str]]:
    """The feeds of an OPML file, in file order, and notes on outlines not taken.

    Raises ConfigError naming ``path`` (and the line and column) when the file
    is not a well-formed OPML document."""
    if len(data) > MAX_OPML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_OPML_BYTES // 1_000_000} MB; "
                          "not an OPML subscription list")
    if not data.strip():
        raise ConfigError(f"{path}: empty file")
    try:
        root = SafeET.fromstring(data)
    except XMLParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":")[0]
        raise ConfigError(f"{path}: line {line}, column {column + 1}: not well-formed XML "
                          f"({reason})") from None
    except DefusedXmlException:
        raise ConfigError(f"{path}: refused: the file declares XML entities "
                          "(no subscription list needs them)") from None
    tag = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    if tag.lower() != "opml":
        raise ConfigError(f"{path}: not an OPML file: its root element is <{tag[:40]}>, "
                          "not <opml>")
    if root.find("body") is None:
        raise ConfigError(f"{path}: not an OPML file: no <body> element")

    parsed = listparser.parse(bytes(data))
    found: list[Found] = []
    skipped: list[str] = []
    for feed in parsed.feeds[:MAX_FEEDS]:
        url = (feed.get("url") or "").strip()
        try:
            if len(url) > 4096 or any(c.isspace() for c in url):
                raise ValueError(url)
            check_http_url(url)
        except ValueError:
            skipped.append(f"{feed.get('title') or url[:200]!r}: not an http(s) URL")
            continue
        folders = [" / ".join(c) for c in feed.get("categories", []) if c]
        notes = [feed.get("title", "")] + [f"folder: {f}" for f in folders[:3]]
        found.append(Found(url=url, title=feed.get("title", ""),
                           notes=tuple(n for n in notes if n)))
    if len(parsed.feeds) > MAX_FEEDS:
        skipped.append(f"{len(parsed.feeds) - MAX_FEEDS} feeds beyond the first {MAX_FEEDS}")
    for listed in parsed.lists:
        skipped.append(f"{listed.get('title') or listed.get('url')!r}: a link to another "
                       "subscription list, not followed")
    return found, skipped


def import_opml(file: str, config: Config) -> Imported:
    """``sources import``: the file's feeds as TOML blocks, those configured left out."""
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    found, skipped = read_opml(data, path=file)
    proposal = propose(found, [(s.name, s.url) for s in config.sources])
    return Imported(proposal, skipped)


def _urls_as_written(config: Config) -> list[str]:
    """Each source's URL as the configuration file spells it (``${VAR}`` unexpanded)."""
    try:
        raw = tomllib.loads(Path(config.path).read_text(encoding="utf-8")).get("sources", [])
    except (OSError, ValueError):
        raw = []
    written = [t.get("url") if isinstance(t, dict) else None for t in raw]
    return [w if isinstance(w, str) else s.url
            for s, w in zip(config.sources, written + [None] * len(config.sources), strict=False)]


def export_opml(config: Config, *, now: datetime | None = None) -> tuple[str, list[str]]:
    """``sources export``: OPML 2.0 of the feed sources, and the names left out."""
    now = now or datetime.now(UTC)
    # A URL read back from the file keeps its ${VAR} references; one that could not
    # be (the file changed since) still never shows a secret's value.
    redact = redactor(config.secrets)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">', "  <head>",
             "    <title>news-monitor sources</title>",
             f"    <dateCreated>{escape(format_datetime(now))}</dateCreated>", "  </head>",
             "  <body>"]
    left_out = []
    for source, url in zip(config.sources, _urls_as_written(config), strict=True):
        if source.kind != "feed":
            left_out.append(source.name)
            continue
        lines.append(f"    <outline type=\"rss\" text={quoteattr(source.name)} "
                     f"title={quoteattr(source.name)} xmlUrl={quoteattr(redact(url))}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines), left_out

