"""Promises of the contract that faults used to break, end to end through the
command line against loopback servers: conditional polls, pending deliveries,
Retry-After, secrets in source URLs, exact dry runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.newsroom import PAIRS, RULE_TEXTS, Site, Story, rss20
from tests.test_check_now import config
from tests.test_outbox import Hook, webhook


@pytest.fixture
def wire(http_server):
    return Site(http_server, "Asia Wire", "/wire")


@pytest.mark.parametrize("validators", [
    {"etag": '"feed-v1"', "last_modified": None},
    {"etag": None, "last_modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
    {"etag": '"feed-v1"', "last_modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
], ids=["etag", "last-modified", "both"])
def test_every_poll_after_the_first_is_conditional(project, wire, http_server, validators):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    http_server.conditional("/wire/rss.xml", rss20([(summit, wire.publish(summit))]).encode(),
                            **validators)
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    statuses = [project.cli("check-now", "--json").json()["sources"][0]["status"]
                for _ in range(4)]

    assert statuses == ["ok", "not_modified", "not_modified", "not_modified"]
    requests = http_server.requests_for("/wire/rss.xml")
    assert len(requests) == 4
    for request in requests[1:]:
        if validators["etag"]:
            assert request.headers["If-None-Match"] == validators["etag"]
        if validators["last_modified"]:
            assert request.headers["If-Modified-Since"] == validators["last_modified"]


PATH_TOKEN = "feed token+path-7f3a9c"      # a space: it travels percent-encoded
QUERY_KEY = "qk-51d0e8a2b4"


def test_secrets_in_a_source_url_appear_in_no_output_log_or_stored_error(
        project, wire, http_server, monkeypatch, tmp_path):
    import sqlite3

    monkeypatch.setenv("FEED_TOKEN", PATH_TOKEN)
    monkeypatch.setenv("FEED_KEY", QUERY_KEY)
    # Both answer 500, and the error names the URL that failed.
    http_server.status(f"/wire/{PATH_TOKEN.replace(' ', '%20')}/rss.xml", 500)
    http_server.status("/wire/keyed.xml", 500)
    project.write(config([("in-path", "feed", wire.url("/${FEED_TOKEN}/rss.xml")),
                          ("in-query", "feed", wire.url("/keyed.xml?key=${FEED_KEY}"))]
                         ).replace("allow_private_networks = true",
                                   'allow_private_networks = true\nbroken_after = 1\n'
                                   'health_notify = ["archive"]'))

    outputs = [project.cli("-vv", "check-now", "--json"), project.cli("-vv", "check-now"),
               project.cli("sources", "list"), project.cli("sources", "list", "--json")]

    summary = outputs[0].json()
    assert [s["status"] for s in summary["sources"]] == ["error", "error"]
    assert "500" in summary["sources"][0]["error"]       # the error itself is still there
    assert len(http_server.requests_for(f"/wire/{PATH_TOKEN.replace(' ', '%20')}/rss.xml")) == 2
    assert http_server.requests_for("/wire/keyed.xml")[0].query == {"key": [QUERY_KEY]}
    db = sqlite3.connect(project.path / "data" / "monitor.db")
    stored = repr(db.execute("SELECT * FROM sources").fetchall())
    stored += repr(db.execute("SELECT record FROM alerts").fetchall())
    db.close()
    alerts = (project.path / "data" / "alerts.jsonl").read_text(encoding="utf-8")
    assert "is broken" in alerts                      # the health notice was written
    seen = "\n".join([o.out + o.err for o in outputs] + [stored, alerts])
    for secret in (PATH_TOKEN, PATH_TOKEN.replace(" ", "%20"), QUERY_KEY):
        assert secret not in seen
    assert "***" in outputs[2].out + outputs[3].out


def summit_stories(wire: Site) -> list[tuple[Story, str]]:
    stories = [Story.from_file(f"s{i}", RULE_TEXTS / name) for i, name in enumerate(
        ["summit_en_1.txt", "summit_en_2.txt", "summit_en_3.txt"])]
    return [(s, wire.publish(s)) for s in stories]


def hook_config(feed: str, hook: Hook, *, per_host_delay: str = "0") -> str:
    return config([("wire", "feed", feed)], extra=webhook(hook.url),
                  rules="""
[[rules]]
name = "summit"
query = 'summit AND (Kishida OR Kim OR Pyongyang OR Japan)'
notify = ["hook"]
""").replace("per_host_delay = 0", f"per_host_delay = {per_host_delay}")


def test_check_now_delivers_what_waits_on_backoff_at_once_unslowed_by_the_crawl_delay(
        project, wire, http_server):
    hook = Hook(http_server)
    hook.status = 503
    feed = wire.feed("/rss.xml", rss20(summit_stories(wire)), "application/rss+xml")
    project.write(hook_config(feed, hook))
    first = project.cli("check-now", "--json").json()
    assert (first["alerts"], first["failed_deliveries"], first["pending_deliveries"]) == (3, 3, 3)

    # The channel is back at once, well before the backoff of those failures ends.
    # Ten minutes between two requests to one host is for crawling, not for deliveries.
    hook.status = 200
    project.write(hook_config(feed, hook, per_host_delay='"10m"'))
    second = project.process("check-now", "--json", timeout=90)

    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["delivered"], summary["failed_deliveries"],
            summary["pending_deliveries"]) == (3, 0, 0)
    assert len(hook.received) == 3
    assert project.cli("alerts", "list", "--pending", "--json").json() == []


def test_check_now_delivers_everything_pending_however_much(project, wire, http_server):
    count = 130
    now = datetime.now(UTC)
    stories = [Story(f"brief-{i}", f"Kishida seeks summit with Kim, brief number {i}",
                     "", summary=f"Brief {i}: Japan's prime minister Kishida renews his offer "
                                 f"of a summit with Kim Jong Un.",
                     published=now - timedelta(minutes=i)) for i in range(count)]
    feed = wire.feed("/rss.xml", rss20([(s, wire.url(f"/news/{s.slug}")) for s in stories]),
                     "application/rss+xml")
    project.write(config([("wire", "feed", feed)]).replace(
        'url = "' + feed + '"', 'url = "' + feed + '"\nfetch_articles = false'))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert (result.json()["alerts"], result.json()["delivered"]) == (count, count)
    assert len(project.alerts()) == count


def test_check_now_exits_1_while_a_due_delivery_is_pending(project, wire, http_server):
    hook = Hook(http_server)
    hook.status = 503
    feed = wire.feed("/rss.xml", rss20(summit_stories(wire)[:1]), "application/rss+xml")
    project.write(hook_config(feed, hook))
    assert project.cli("check-now").code == 1

    again = project.cli("check-now", "--json")               # still down

    assert again.code == 1
    assert (again.json()["failed_deliveries"], again.json()["pending_deliveries"]) == (1, 1)
    table = project.cli("check-now")
    assert table.code == 1 and "pending deliveries: 1" in table.out
    hook.status = 200
    back = project.cli("check-now", "--json")
    assert back.code == 0
    assert (back.json()["delivered"], back.json()["pending_deliveries"]) == (1, 0)


def test_check_now_waits_for_a_channel_that_asked_to_wait(project, wire, http_server):
    hook = Hook(http_server)
    feed = wire.feed("/rss.xml", rss20(summit_stories(wire)[:1]), "application/rss+xml")
    http_server.route("/hook", status=429, headers={"Retry-After": "3600"}, body=b"slow down")
    project.write(hook_config(feed, hook))
    first = project.cli("check-now", "--json")
    assert first.code == 1 and first.json()["failed_deliveries"] == 1
    http_server.route("/hook", handler=hook.handle)

    second = project.cli("check-now", "--json")

    # Held back by the channel itself: not due, so not tried, and not a failure.
    assert second.code == 0, second.out
    assert (second.json()["delivered"], second.json()["pending_deliveries"]) == (0, 0)
    assert len(http_server.requests_for("/hook")) == 1
    [waiting] = project.cli("alerts", "list", "--pending", "--json").json()
    assert "429" in waiting["deliveries"][0]["last_error"]


@pytest.mark.parametrize("status,retry_after", [(503, "3600"), (429, None)],
                         ids=["503-seconds", "429-http-date"])
def test_check_now_skips_a_source_whose_server_asked_to_wait_unless_forced(
        project, wire, http_server, status, retry_after):
    from email.utils import format_datetime

    until = datetime.now(UTC) + timedelta(hours=1)
    http_server.status("/wire/rss.xml", status,
                       retry_after=retry_after or format_datetime(until, usegmt=True))
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 1

    skipped = project.cli("check-now", "--json")

    [source] = skipped.json()["sources"]
    assert source["status"] == "skipped"
    assert source["error"].startswith("the server asked to wait until ")
    wait_until = datetime.strptime(source["error"][-20:], "%Y-%m-%d %H:%M:%SZ").replace(
        tzinfo=UTC)
    assert abs((wait_until - until).total_seconds()) < 120
    assert len(http_server.requests_for("/wire/rss.xml")) == 1
    assert skipped.code == 0
    assert "skipped" in project.cli("check-now").out

    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    forced = project.cli("check-now", "--force", "--json")
    assert forced.json()["sources"][0]["status"] == "ok"
    assert len(http_server.requests_for("/wire/rss.xml")) == 2
    # The server no longer asks to wait: the next pass polls it as usual.
    assert project.cli("check-now", "--json").json()["sources"][0]["status"] == "not_modified"


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _two_rule_config(feeds) -> str:
    from tests.test_check_now import SUMMIT_QUERY

    return config(feeds, rules=f"""
[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = ["archive"]

[[rules]]
name = "missiles"
query = 'missile* AND (Japan OR Tokyo)'
notify = ["archive"]
""")


def test_dry_run_lists_exactly_what_the_real_pass_alerts_and_touches_no_file(
        project, wire, http_server):
    from collections import Counter

    daily = Site(http_server, "The Daily Courier", "/daily")
    original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    missile = Story.from_file("missile", PAIRS / "en_missile.txt")
    copy = Story.from_file("japan-pm-seeks-kim-meeting", PAIRS / "en_syndicated.txt")
    missile_url = wire.publish(missile)
    wire.feed("/rss.xml", rss20([(original, wire.publish(original)), (missile, missile_url)]),
              "application/rss+xml")
    # In the same pass: a syndicated copy of the summit report, and the wire's missile
    # report again under its own URL.
    daily.feed("/rss.xml", rss20([(copy, daily.publish(copy)),
                                  (Story("m", missile.title, missile.body, guid="m2"),
                                   missile_url)]), "application/rss+xml")
    project.write(_two_rule_config([("wire", "feed", wire.url("/rss.xml")),
                                    ("daily", "feed", daily.url("/rss.xml"))]))
    before = _files(project.path)

    dry = project.cli("check-now", "--dry-run", "--json")
    text = project.cli("check-now", "--dry-run")

    assert dry.code == 0, dry.err
    assert _files(project.path) == before                  # not even data/ was made
    would = dry.json()["would_alert"]
    assert dry.json()["dry_run"] is True
    real = project.cli("check-now", "--json")
    alerts = project.alerts()
    assert real.json()["alerts"] == len(alerts)
    assert dry.json()["alerts"] == len(would) == len(alerts)
    assert Counter(w["rule"] for w in would) == Counter(a["rule"] for a in alerts)
    # One summit report (the original or its copy, whichever came first), not two.
    assert Counter(w["rule"] for w in would)["summit"] == 1
    assert sum(1 for w in would if w["title"] == missile.title) == 1
    # The text lists the same, each line with its rule (which copy of the summit
    # report comes first may differ from one pass to another).
    assert f"Would alert ({len(would)}):" in text.out
    for rule, count in Counter(w["rule"] for w in would).items():
        assert text.out.count(f"  [{rule}]") == count


def test_dry_run_over_an_existing_store_changes_no_file(project, wire, http_server):
    daily = Site(http_server, "The Daily Courier", "/daily")
    original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(original, wire.publish(original))]), "application/rss+xml")
    project.write(_two_rule_config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0
    stored = len(project.alerts())
    copy = Story.from_file("japan-pm-seeks-kim-meeting", PAIRS / "en_syndicated.txt")
    missile = Story.from_file("missile", PAIRS / "en_missile.txt")
    daily.feed("/rss.xml", rss20([(copy, daily.publish(copy)), (missile, daily.publish(missile))]),
               "application/rss+xml")
    project.write(_two_rule_config([("wire", "feed", wire.url("/rss.xml")),
                                    ("daily", "feed", daily.url("/rss.xml"))]))
    before = _files(project.path)

    dry = project.cli("check-now", "--dry-run", "--json")

    assert _files(project.path) == before
    assert [(w["rule"], w["title"]) for w in dry.json()["would_alert"]] == [
        ("missiles", missile.title)]                       # the copy is known already
    real = project.cli("check-now", "--json")
    assert [a["title"] for a in project.alerts()[stored:]] == [missile.title]
    assert real.json()["alerts"] == 1
