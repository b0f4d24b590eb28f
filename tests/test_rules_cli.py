"""`rules test`: does a rule match this article, and why (exit 0 match, 1 none)."""

from __future__ import annotations

import io
import sys

from tests.newsroom import PAIRS, RULE_TEXTS, Site, Story, article_page
from tests.test_check_now import config


def write(project):
    project.write(config([("wire", "feed", "https://example.org/rss")]))


def test_plain_text_article_match_shows_terms_and_snippets(project):
    write(project)
    result = project.cli("rules", "test", "summit", "--file", str(PAIRS / "en_original.txt"))

    assert result.code == 0, result.err
    assert "match" in result.out
    assert "Kishida" in result.out and "summit" in result.out
    snippet_lines = [line for line in result.out.splitlines() if line.startswith("  ")]
    assert snippet_lines and any("Kishida" in line for line in snippet_lines)


def test_no_match_exits_1_like_grep(project):
    write(project)
    result = project.cli("rules", "test", "summit", "--file",
                         str(RULE_TEXTS / "nearmiss_kim_kardashian_en.txt"))
    assert result.code == 1
    assert "no match" in result.out


def test_json_output_lists_terms_and_a_snippet_for_each(project):
    write(project)
    result = project.cli("rules", "test", "summit", "--json", "--file",
                         str(RULE_TEXTS / "summit_ja_1.txt"))
    assert result.code == 0
    data = result.json()
    assert data["matched"] is True and data["rule"] == "summit"
    assert data["terms"]
    assert {s["term"] for s in data["snippets"]} == set(data["terms"])
    assert all(s["snippet"] for s in data["snippets"])


def test_html_file_goes_through_the_extractor(project, tmp_path):
    write(project)
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    page = tmp_path / "page.html"
    page.write_text(article_page(story, site="Asia Wire"), encoding="utf-8")

    result = project.cli("rules", "test", "summit", "--json", "--file", str(page))

    assert result.code == 0
    assert result.json()["title"] == story.title


def test_article_from_url_and_from_stdin(project, http_server, monkeypatch):
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    url = wire.publish(story)
    write(project)
    assert project.cli("rules", "test", "summit", "--url", url).code == 0

    text = (RULE_TEXTS / "nearmiss_missile_en.txt").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    assert project.cli("rules", "test", "summit", "-").code == 1


def test_unknown_rule_and_unreadable_file_are_usage_errors(project):
    write(project)
    assert project.cli("rules", "test", "nope", "--file", str(PAIRS / "en_original.txt")).code == 2
    missing = project.cli("rules", "test", "summit", "--file", "/nonexistent/article.txt")
    assert missing.code == 2 and "article" in missing.err
