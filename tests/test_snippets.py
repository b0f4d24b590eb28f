"""Snippet highlighting: the spans the query engine found, cut out for the web
page (``segments``) and put on one line for the notifiers (``snippet_pieces``)."""

from __future__ import annotations

import re

import pytest

from monitor.delivery.notifiers.render import snippet_pieces
from monitor.match.query import Document, compile_query, term_spans
from monitor.match.snippets import merge_spans, segments
from tests.conftest import make_alert
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_check_now import SUMMIT_QUERY
from tests.test_notify_email import smtp  # noqa: F401  (fixture)

SNIPPET = "Prime Minister Kishida said a summit with Kim Jong-un was possible."


def marked(pieces: list[tuple[str, bool]]) -> str:
    return "".join(f"[{piece}]" if hit else piece for piece, hit in pieces)


def test_the_spans_a_match_found_are_the_ones_shown():
    query = compile_query('Kishida AND ("Kim Jong Un" OR summit*)')
    result = query.match(Document.build(text=SNIPPET))
    assert result is not None
    snippet, spans = result.highlighted()
    assert marked(segments(snippet, spans)) == \
        "Prime Minister [Kishida] said a [summit] with [Kim Jong-un] was possible."


@pytest.mark.parametrize("spans, expected", [
    ([], "abc def"),
    ([(0, 3)], "[abc] def"),
    ([(4, 7), (0, 3)], "[abc] [def]"),
    ([(0, 3), (2, 5)], "[abc] def"),          # overlapping: the second is dropped
    ([(5, 99)], "abc def"),                    # out of range
    ([(-1, 2)], "abc def"),
    ([(3, 3)], "abc def"),                     # empty
    ([("0", "3")], "abc def"),                 # not offsets at all
])
def test_segments_trust_no_stored_span(spans, expected):
    assert marked(segments("abc def", spans)) == expected


def test_merge_spans():
    assert merge_spans([(5, 9), (0, 3), (2, 4), (9, 10)]) == [(0, 4), (5, 10)]


def test_term_spans_find_what_the_engine_finds():
    text = "Kimura met Kim Jong-un; summitry is not a summit. 金曜日に金正恩総書記は"
    found = [text[s:e] for s, e in term_spans(text, ["Kim Jong Un", "summit", "金正恩", "金"])]
    assert found == ["Kim Jong-un", "summit", "金正恩"]
    assert term_spans(text, ["", "***", '"']) == []
    # Each term is a phrase: an operator's name is a word like any other.
    assert [text[s:e] for s, e in term_spans(text, ["NOT"])] == ["not"]


@pytest.mark.parametrize("snippet, spans, limit, expected", [
    (SNIPPET, [(15, 22)], 1000,
     "Prime Minister [Kishida] said a summit with Kim Jong-un was possible."),
    # Line breaks, tabs and controls go, white space runs become one space.
    ("  Kim\n\n\tJong\x00-un \x1b[31m met\r\nKishida  ", [(2, 16), (28, 35)], 1000,
     "[Kim Jong-un] [31m met [Kishida]"),
    # Cut to the limit: the added ellipsis is never a hit.
    ("Kishida " * 10, [(0, 7), (8, 15), (64, 71)], 20, "[Kishida] [Kishida] Kis…"),
    ("summit", [(0, 6)], 3, "[su]…"),
    ("no spans at all", [], 1000, "no spans at all"),
    ("", [(0, 3)], 1000, ""),
])
def test_snippet_pieces_one_line(snippet, spans, limit, expected):
    alert = make_alert(snippet=snippet, highlights=spans)
    assert marked(snippet_pieces(alert, limit)) == expected


def test_highlights_stay_out_of_the_alert_record():
    alert = make_alert()
    assert alert.highlights
    assert list(alert.to_dict()) == ["alert_id", "rule", "story_id", "followup", "url", "title",
                                     "source", "published", "matched", "snippet"]
    assert "test" in make_alert(test=True).to_dict()


def test_an_email_marks_the_words_the_rule_matched(project, http_server, smtp):  # noqa: F811
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    project.write(f"""
[monitor]
timeout = "5s"
per_host_delay = 0
allow_private_networks = true

[[sources]]
name = "wire"
url = "{wire.url("/rss.xml")}"

[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = ["desk-email"]

[[notifiers]]
name = "desk-email"
kind = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "monitor@example.org"
to = ["desk@example.org"]
""")
    assert project.cli("check-now").code == 0
    [(_, _, message)] = smtp.received
    page = message.get_body(("html",)).get_content()
    marked = set(re.findall(r"<mark>(.*?)</mark>", page))
    # What the engine matched, as the article wrote it; "summits" or "Kimura"
    # would not be.
    assert marked and marked <= {"Kishida", "Prime Minister", "Kim Jong Un", "Kim", "Pyongyang",
                                 "summit", "talks", "prime minister"}
    assert {"Kishida", "summit"} <= marked
