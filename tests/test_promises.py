"""Promises of the contract that faults used to break, end to end through the
command line against loopback servers: conditional polls, pending deliveries,
Retry-After, secrets in source URLs, exact dry runs."""

from __future__ import annotations

import pytest

from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_check_now import config


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
