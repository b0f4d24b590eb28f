"""Atom 1.0 feeds of alerts, written by feedgen (which builds the XML with lxml:
every text is escaped as XML text, never pasted into markup).

Each entry's id is the alert id (as a ``urn:uuid:`` IRI, which Atom requires), its
link the article, its content the snippet with the matched words marked, the
matched words and the rule; its category is the rule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from markupsafe import Markup, escape

from monitor.match.snippets import segments
from monitor.service.web.views import safe_link
from monitor.text.dates import parse_iso
from storage.base import AlertRow

# What XML 1.0 cannot carry at all (its Char production): a hostile title with a
# NUL or a form feed would otherwise make the whole feed unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str | None) -> str:
    return _NOT_XML.sub(" ", text or "")


def entry_id(alert_id: str) -> str:
    if re.fullmatch(r"[0-9a-f]{32}", alert_id):
        h = alert_id
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return "urn:news-monitor:alert:" + re.sub(r"[^A-Za-z0-9._~-]", "_", alert_id)


def _content(row: AlertRow) -> str:
    record = row.record
    snippet = Markup("").join(Markup("<mark>{}</mark>").format(piece) if hit else escape(piece)
                              for piece, hit in segments(record.get("snippet") or "",
                                                         row.highlights))
    matched = ", ".join(record.get("matched") or [])
    return str(Markup("<p>{}</p><p>Matched: {}</p><p>Rule: {} · Source: {}</p>").format(
        snippet, matched or "—", row.rule, row.source or record.get("source") or "—"))


def atom_feed(rows: list[AlertRow], *, title: str, feed_id: str, self_url: str,
              page_url: str, redact) -> bytes:
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(xml_text(title))
    fg.author({"name": "news-monitor"})
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=page_url, rel="alternate", type="text/html")
    fg.generator("news-monitor")
    updated = max((r.created_at for r in rows), default=datetime.now(UTC))
    fg.updated(updated)
    for row in rows:
        record = row.record
        fe = fg.add_entry(order="append")
        fe.id(entry_id(row.alert_id))
        fe.title(xml_text(redact(record.get("title") or "(no title)")))
        link = safe_link(record.get("url"))
        if link:
            fe.link(href=xml_text(link), rel="alternate", type="text/html")
        fe.updated(row.created_at)
        published = parse_iso(record.get("published"))
        if published:
            fe.published(published)
        fe.summary(xml_text(redact(record.get("snippet") or "")))
        fe.content(xml_text(redact(_content(row))), type="html")
        fe.category(term=xml_text(row.rule), label=xml_text(row.rule))
    return fg.atom_str(pretty=True)
