"""Quiet hours on a channel: immediate alerts wait until they end, and say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.delivery.quiet import parse_quiet_hours, quiet_until
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_check_now import config

TOKYO = "Asia/Tokyo"


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(TOKYO))


@pytest.mark.parametrize("now, until", [
    (tokyo(2024, 5, 1, 21, 59), None),
    (tokyo(2024, 5, 1, 22, 0), tokyo(2024, 5, 2, 7, 0)),       # the start is in
    (tokyo(2024, 5, 1, 23, 30), tokyo(2024, 5, 2, 7, 0)),
    (tokyo(2024, 5, 2, 3, 0), tokyo(2024, 5, 2, 7, 0)),        # after midnight
    (tokyo(2024, 5, 2, 7, 0), None),                           # the end is out
])
def test_a_period_across_midnight(now, until):
    period = parse_quiet_hours("22:00-07:00")
    assert quiet_until(period, TOKYO, now.astimezone(UTC)) == until


def test_a_period_within_a_day_in_the_channels_zone():
    period = parse_quiet_hours("12:00-13:30")
    # 03:15 UTC is 12:15 in Tokyo.
    assert quiet_until(period, TOKYO, datetime(2024, 5, 1, 3, 15, tzinfo=UTC)) \
        == tokyo(2024, 5, 1, 13, 30)
    assert quiet_until(period, "UTC", datetime(2024, 5, 1, 3, 15, tzinfo=UTC)) is None


@pytest.mark.parametrize("text", ["22-07", "25:00-07:00", "22:00-22:00", "22:00", ""])
def test_bad_periods_are_refused(text):
    with pytest.raises(ValueError):
        parse_quiet_hours(text)


def test_a_bad_period_is_a_configuration_error_naming_the_key(project):
    project.write(config([("wire", "feed", "https://example.org/rss")]).replace(
        'path = "data/alerts.jsonl"', 'path = "data/alerts.jsonl"\nquiet_hours = "late"'))
    result = project.cli("validate")
    assert result.code == 2
    assert "notifiers[0] 'archive': quiet_hours: 'late' is not a period such as" in result.err


def _around_now(minutes_before: int, minutes_after: int) -> str:
    now = datetime.now(ZoneInfo(TOKYO))
    start, end = now - timedelta(minutes=minutes_before), now + timedelta(minutes=minutes_after)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_alerts_wait_through_quiet_hours_then_go_out(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    feed = wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    base = config([("wire", "feed", feed)])
    quiet = f'path = "data/alerts.jsonl"\ntimezone = "{TOKYO}"\nquiet_hours = "{{}}"'
    project.write(base.replace('path = "data/alerts.jsonl"', quiet.format(_around_now(60, 60))))

    first = project.cli("check-now", "--json")

    assert first.code == 0, first.out          # held back, not failed: nothing went wrong
    assert (first.json()["alerts"], first.json()["delivered"]) == (1, 0)
    assert project.alerts() == []
    [pending] = project.cli("alerts", "list", "--pending", "--json").json()
    [delivery] = pending["deliveries"]
    assert delivery["state"] == "pending"
    assert delivery["waiting"].startswith("quiet hours until ")
    assert delivery["waiting"].endswith(f" {TOKYO}")
    table = project.cli("alerts", "list", "--pending")
    assert "quiet hours until" in table.out

    # Quiet hours over (a period that ended a minute ago): the next pass delivers.
    project.write(base.replace('path = "data/alerts.jsonl"', quiet.format(_around_now(120, -1))))
    second = project.cli("check-now", "--json")
    assert second.code == 0
    assert second.json()["delivered"] == 1
    assert [a["title"] for a in project.alerts()] == [story.title]


def test_notify_test_is_not_held(project):
    project.write(config([("wire", "feed", "https://example.org/rss")]).replace(
        'path = "data/alerts.jsonl"', f'path = "data/alerts.jsonl"\nquiet_hours = '
                                      f'"{_around_now(60, 60)}"\ntimezone = "{TOKYO}"'))
    assert project.cli("notify", "test", "archive").code == 0
    assert len(project.alerts()) == 1
