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
