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


def test_a_miss_says_which_part_found_nothing_and_how_close_a_near_came(project, tmp_path):
    project.write(config([("wire", "feed", "https://example.org/rss")], rules="""
[[rules]]
name = "near"
query = 'Kishida NEAR/20 Kim AND summit'
"""))
    article = tmp_path / "far.txt"
    filler = " ".join(f"word{i}" for i in range(33))
    article.write_text(f"Kishida speaks\n\nKishida {filler} Kim spoke of a summit.\n",
                       encoding="utf-8")

    text = project.cli("rules", "test", "near", "--file", str(article))
    data = project.cli("rules", "test", "near", "--json", "--file", str(article)).json()

    assert text.code == 1 and "no match" in text.out
    assert "Kishida … Kim: 34 words apart at the closest, NEAR/20 needs at most 20" in text.out
    assert data["matched"] is False and data["why_not"] == [
        "Kishida … Kim: 34 words apart at the closest, NEAR/20 needs at most 20"]


def eval_folder(root, pos: dict[str, str], neg: dict[str, str]):
    for label, files in (("pos", pos), ("neg", neg)):
        (root / label).mkdir(parents=True)
        for name, text in files.items():
            (root / label / name).write_text(text, encoding="utf-8")
    return root


def test_rules_eval_reports_recall_precision_misses_and_false_alerts(project, tmp_path):
    write(project)
    folder = eval_folder(tmp_path / "labelled", pos={
        "hit.txt": "Kishida seeks summit with Kim\n\n"
                   "Prime Minister Kishida wants a summit with Kim.",
        "miss.txt": "Tokyo seeks talks\n\nJapan wants to meet the North Korean leader.",
    }, neg={
        "false.txt": "Kishida, Kim and a summit\n\nKishida met Kim Yo-han at a business summit.",
        "fine.txt": "Markets\n\nStocks rose in Tokyo.",
    })

    text = project.cli("rules", "eval", "summit", str(folder))
    data = project.cli("rules", "eval", "summit", str(folder), "--json").json()
    bar = project.cli("rules", "eval", "summit", str(folder), "--min", "0.5")
    high = project.cli("rules", "eval", "summit", str(folder), "--min", "0.9")

    assert text.code == 0, text.err
    assert "recall 0.500 (1/2)" in text.out and "precision 0.500 (1/2)" in text.out
    assert "missed pos/miss.txt" in text.out and "false alert neg/false.txt" in text.out
    assert data["recall"] == 0.5 and data["precision"] == 0.5
    assert [m["file"] for m in data["misses"]] == ["pos/miss.txt"]
    assert data["misses"][0]["why_not"]
    assert data["false_alerts"][0]["matched"] == ["Kishida", "Kim", "summit"]
    assert bar.code == 0 and high.code == 1


def test_rules_eval_needs_pos_and_neg(project, tmp_path):
    write(project)
    result = project.cli("rules", "eval", "summit", str(tmp_path))
    assert result.code == 2
    assert "pos" in result.err and "no such folder" in result.err


def test_validate_warns_about_lower_case_operators(project):
    project.write(config([("wire", "feed", "https://example.org/rss")], rules="""
[[rules]]
name = "loose"
query = 'Kishida and Kim or "war and peace" NOT sushi'
"""))
    result = project.cli("validate")
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert len(warnings) == 2, result.err
    assert "rule 'loose'" in warnings[0] and "'and'" in warnings[0] and "(AND)" in warnings[0]
    assert "line " in warnings[0]
    assert "'or'" in warnings[1]
