"""A backlog larger than one claim of deliveries goes out in one `check-now`."""

from __future__ import annotations

from datetime import UTC, datetime

from storage import open_store
from storage.base import AlertRow, NewArticle
from tests.newsroom import Site
from tests.test_outbox import Hook, webhook


def _pending_alerts(db_url: str, n: int) -> None:
    store = open_store(db_url)
    now = datetime.now(UTC)
    with store.exclusive() as tx:
        for i in range(n):
            article_id = tx.insert_article(NewArticle(
                url=f"https://news.example/{i}", guid=None, source="wire",
                title=f"Summit talks, day {i}", text="Summit talks went on.", author="",
                site_name="", language="en", published=now, fetched_at=now, extracted=False,
                content_hash=f"{i:064x}", signature=None, band_keys=[], story_signature=None,
                story_band_keys=[], story_id=f"story{i}", duplicate_of=None))
            record = {"alert_id": f"alert{i}", "rule": "summit", "story_id": f"story{i}",
                      "followup": False, "url": f"https://news.example/{i}",
                      "title": f"Summit talks, day {i}", "source": "wire",
                      "published": now.isoformat(), "matched": ["summit"],
                      "snippet": "Summit talks went on."}
            tx.insert_alert(AlertRow(alert_id=f"alert{i}", rule="summit", article_id=article_id,
                                     story_id=f"story{i}", followup=False, created_at=now,
                                     record=record), [("hook", False)])
    store.close()


def test_one_check_now_delivers_a_backlog_of_several_hundred_alerts(project, http_server):
    hook = Hook(http_server)
    feed = Site(http_server, "Asia Wire", "/wire").feed(
        "/rss.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        "</channel></rss>", "application/rss+xml")
    project.write(f"""
[monitor]
per_host_delay = 0
allow_private_networks = true

[storage]
url = "sqlite:///data/monitor.db"

[[sources]]
name = "wire"
url = "{feed}"

[[rules]]
name = "summit"
query = "summit"
notify = ["hook"]
{webhook(hook.url)}
""")
    (project.path / "data").mkdir(exist_ok=True)
    _pending_alerts(f"sqlite:///{project.path / 'data' / 'monitor.db'}", 450)

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert result.json()["delivered"] == 450
    assert sorted(a["alert_id"] for a in hook.received) == sorted(f"alert{i}" for i in range(450))
