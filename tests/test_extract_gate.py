"""extract_article runs trafilatura's balanced second pass only when it could win.

The rule it stands for: when precision mode keeps under 1,500 characters, the
balanced mode runs too and wins if it finds five times more. These tests check
that skipping the pass never changes the text that rule would choose.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import trafilatura

from monitor.text.extract import MIN_TEXT_CHARS, TRAFILATURA_OPTIONS, extract_article

PAGES = Path(__file__).parent / "testdata" / "pages"
BENCH_PAGES = Path(os.environ.get("BENCH_DATA") or Path(__file__).resolve().parents[2]
                   / "shared" / "bench-data") / "articles" / "html"
BALANCED = {**TRAFILATURA_OPTIONS, "favor_precision": False}
URL = "https://news.example/2024/03/story"


def _text(html: bytes, options: dict) -> str:
    doc = trafilatura.bare_extraction(html, url=URL, **options)
    text = ((getattr(doc, "text", None) or "") if doc is not None else "").strip()
    return text if len(" ".join(text.split())) >= MIN_TEXT_CHARS else ""


def _precision(html: bytes) -> str:
    return _text(html, TRAFILATURA_OPTIONS)


def _always_both(html: bytes, precise: str) -> str:
    """The text the rule chooses when the balanced pass always runs on short texts."""
    if len(precise) >= 1500:
        return precise
    balanced = _text(html, BALANCED)
    if len(precise) < MIN_TEXT_CHARS or len(precise) * 5 < len(balanced):
        return balanced
    return precise


def _extracted(html: bytes) -> str:
    art = extract_article(html, url=URL)
    return art.text if art is not None else ""


def _page(body: str) -> bytes:
    nav = "".join(f'<li><a href="/s/{k}">Section {k}</a></li>' for k in range(40))
    return (f"<!doctype html><html lang=en><head><title>Story | News</title></head><body>"
            f"<header><ul>{nav}</ul></header>{body}<footer><p>Copyright News.</p>"
            f"<ul>{nav}</ul></footer></body></html>").encode()


SHORT = ("<main><article><h1>Talks resume</h1>"
         "<p>Officials from both governments met on Tuesday in Ulaanbaatar for the first"
         " time in four years, a foreign ministry spokesman said.</p>"
         "<p>The meeting lasted two hours. No statement followed, and neither side said"
         " when the next round would be held.</p></article></main>")
TEASER = ("<div class=teaser><p>Subscribe to read the full story of the talks, which"
          " ran late into the night.</p></div>" + "".join(
              f"<div class=story-block>Paragraph {k} of the story: the delegates discussed"
              f" the families of the abducted, trade, and the missile launches of the"
              f" spring, and agreed to meet again before the end of the year.</div>"
              for k in range(30)))


BODY_IN_JSON = ('<script type="application/ld+json">{"@type": "NewsArticle", "articleBody": "'
                + " ".join(f"Sentence {k} of the body, which the page shows only in its data."
                           for k in range(80)) + '"}</script>'
                "<main><p>Officials from both governments met on Tuesday in Ulaanbaatar; the"
                " full report, with the statements of both delegations, follows.</p></main>")


def test_body_only_in_json_ld():
    # The visible text is short and alone on the page: only the JSON-LD body can
    # give the balanced pass five times more.
    html = (f"<!doctype html><html><head><title>Story</title></head><body>{BODY_IN_JSON}"
            "</body></html>").encode()
    chosen = _always_both(html, _precision(html))
    assert len(chosen) > 4000
    assert _extracted(html) == chosen


@pytest.mark.parametrize("body", [SHORT, TEASER, BODY_IN_JSON],
                         ids=["short-article", "teaser-and-divs", "body-in-json-ld"])
def test_generated_pages_keep_the_rule(body):
    html = _page(body)
    assert _extracted(html) == _always_both(html, _precision(html))


def test_shipped_pages_keep_the_rule():
    for path in sorted(PAGES.glob("*.html")):
        html = path.read_bytes()
        assert _extracted(html) == _always_both(html, _precision(html)), path.name


@pytest.mark.skipif(not BENCH_PAGES.is_dir(), reason="bench data absent")
def test_bench_pages_keep_the_rule():
    short = 0
    for path in sorted(BENCH_PAGES.glob("*.html.gz")):
        html = gzip.decompress(path.read_bytes())
        precise = _precision(html)
        if len(precise) >= 1500:
            continue        # no second pass either way
        short += 1
        assert _extracted(html) == _always_both(html, precise), path.name
    assert short > 0
