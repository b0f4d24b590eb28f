"""The web page in a real browser (headless Chromium, see tests/browser.py): what
a desk analyst does with it, and a console without errors throughout."""

from __future__ import annotations

import pytest

from tests.browser import ConsoleWatch, chromium, require_browser
from tests.webhelp import Newsroom, serving, web_config


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, site):
    # After `site`, so that the page closes before the server stops.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = ConsoleWatch(page)
    yield page
    page.wait_for_load_state("networkidle")
    context.close()
    assert watch.errors == []            # the browser console showed no errors


@pytest.fixture
def newsroom(http_server):
    return Newsroom(http_server)


@pytest.fixture
def site(project, newsroom):
    """`serve` over a store that two `check-now` passes filled."""
    # In processes of their own: Playwright keeps an event loop in this thread.
    project.write(web_config(newsroom.sources()))
    newsroom.first_pass()
    project.process("check-now")
    newsroom.second_pass()
    project.process("check-now")
    with serving(project) as base:
        yield base


def test_alerts_page_lists_the_alerts_of_check_now_with_follow_ups_under_their_story(
        page, site, project, newsroom):
    page.goto(site + "/")
    titles = page.locator("article.alert .title").all_inner_texts()
    assert sorted(titles) == sorted(a["title"] for a in project.alerts())
    thread = page.locator("section.thread[data-rule=summit]")
    assert thread.count() == 1
    assert thread.locator("> article.alert .title").inner_text() == newsroom.original.title
    assert thread.locator(".followups article.alert .title").inner_text() == newsroom.rewrite.title
    marks = thread.locator("> article.alert mark").all_inner_texts()
    assert "Kishida" in marks and "summit" in marks
    assert "sent" in thread.locator("> article.alert .state").first.inner_text()


def test_the_filters_work(page, site, newsroom):
    page.goto(site + "/")
    page.select_option("select[name=rule]", "abductions")
    page.click("form.filters button[type=submit]")
    assert "rule=abductions" in page.url
    rules = page.locator("article.alert .rule").all_inner_texts()
    assert rules and set(rules) == {"abductions"}
    assert page.locator("select[name=rule]").input_value() == "abductions"

    page.select_option("select[name=rule]", "")
    page.select_option("select[name=source]", "daily")        # its copy raised no alert
    page.click("form.filters button[type=submit]")
    assert "No alerts match these filters" in page.locator("main").inner_text()

    page.select_option("select[name=source]", "")
    page.select_option("select[name=period]", "24h")
    page.fill("input[name=q]", '"emotional gathering" AND Kishida')
    page.click("form.filters button[type=submit]")
    titles = page.locator("article.alert .title").all_inner_texts()
    assert titles and set(titles) == {newsroom.rewrite.title}

    page.fill("input[name=q]", "Kishida AND (")
    page.click("form.filters button[type=submit]")
    assert "query error" in page.locator(".error-box").inner_text()


def test_the_rule_test_form_explains_a_match_and_a_miss(page, site):
    page.goto(site + "/rules")
    form = page.locator("#rule-summit form.rule-test")
    form.locator("textarea[name=text]").fill(
        "Kishida eyes summit\nThe prime minister wants talks with Kim Jong-un soon.")
    form.locator("button[type=submit]").click()
    trial = page.locator("#trial")
    assert "Match: rule summit" in trial.inner_text()
    assert "Kim Jong-un" in trial.locator("mark").all_inner_texts()
    assert "Kim Jong-un" in trial.locator(".matched").inner_text()   # as the text wrote it

    form = page.locator("#rule-summit form.rule-test")
    assert "Kim Jong-un" in form.locator("textarea[name=text]").input_value()   # kept
    form.locator("textarea[name=text]").fill(
        "Kishida eyes summit\nThe prime minister spoke about the economy.")
    form.locator("button[type=submit]").click()
    trial = page.locator("#trial")
    assert "No match: rule summit" in trial.inner_text()
    failed = trial.locator(".clause-failed").all_inner_texts()
    assert len(failed) == 1 and "Kim" in failed[0] and "Kishida" not in failed[0]


def test_muting_a_story_hides_its_follow_ups(page, site, newsroom):
    page.goto(site + "/")
    assert page.get_by_text(newsroom.rewrite.title).count() == 2      # two rules' follow-ups
    page.locator("section.thread[data-rule=summit] > article.alert a.story-link").click()
    assert "/stories/" in page.url
    page.get_by_role("button", name="Mute this story").click()
    assert "muted" in page.locator(".mute-box").inner_text()

    page.goto(site + "/")
    assert page.get_by_text(newsroom.rewrite.title).count() == 0
    hidden = page.locator(".hidden-followups").all_inner_texts()
    assert hidden and all("1 follow-up hidden" in h for h in hidden)
    assert page.get_by_text(newsroom.original.title).count() == 2     # the first alerts stay

    page.locator("section.thread[data-rule=summit] a.story-link").first.click()
    page.get_by_role("button", name="Unmute this story").click()
    page.goto(site + "/")
    assert page.get_by_text(newsroom.rewrite.title).count() == 2


def test_sources_page_shows_health_and_charts(page, site):
    page.goto(site + "/sources")
    broken = page.locator("#source-broken")
    assert "500" in broken.inner_text()
    assert page.locator("#source-wire svg.chart rect.bar").count() >= 1
    assert page.locator("svg.chart").count() == 3


def test_signing_in_with_the_token(browser, project, newsroom):
    project.write(web_config(newsroom.sources(), web='token = "${WEB_TOKEN}"'))
    newsroom.first_pass()
    project.process("check-now")
    context = browser.new_context()
    page = context.new_page()
    watch = ConsoleWatch(page)
    with serving(project, env={"WEB_TOKEN": "browser-token-1234"}) as base:
        page.goto(base + "/sources")
        assert "/login" in page.url
        page.fill("input[name=token]", "wrong")
        page.click("form.login button")
        assert "wrong token" in page.locator(".error-box").inner_text()
        page.fill("input[name=token]", "browser-token-1234")
        page.click("form.login button")
        assert page.url == base + "/sources"
        cookie = next(c for c in context.cookies() if c["name"] == "monitor_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert "browser-token-1234" not in page.content()
        page.get_by_role("button", name="Sign out").click()
        assert "/login" in page.url
        page.wait_for_load_state("networkidle")
        context.close()
    assert watch.errors == []
