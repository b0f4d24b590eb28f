"""Delivery throughput: one ``check-now`` sends N pending alerts (default 1,000) to a
webhook on loopback (a keep-alive server in its own process that answers 200 at once).

    .venv/bin/python bench/bench_delivery.py [--alerts 1000] [--repeat 3]

The alerts are put in the store first (articles and alerts rows, as the pipeline
writes them); the configuration has one feed with no entries, so the run's time is
delivery. Reported: alerts per second of the whole check-now's wall time, and CPU.

Target: >= 100 alerts a second.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import StaticServer, check_now, emit, header, median, verdict  # noqa: E402

EMPTY_FEED = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
              b"<title>Empty</title><link>https://empty.example/</link></channel></rss>")


def cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def fill(db: Path, n: int) -> None:
    from storage import open_store
    from storage.base import AlertRow, NewArticle

    store = open_store(f"sqlite:///{db}")
    now = datetime.now(UTC)
    with store.exclusive() as tx:
        for i in range(n):
            article_id = tx.insert_article(NewArticle(
                url=f"https://news.example/{i}", guid=None, source="wire",
                title=f"Summit talks {i}", text="Summit talks went on.", author="",
                site_name="", language="en", published=now, fetched_at=now, extracted=False,
                content_hash=f"{i:064x}", signature=None, band_keys=[], story_signature=None,
                story_band_keys=[], story_id=f"story{i}", duplicate_of=None))
            record = {"alert_id": f"alert{i}", "rule": "summit", "story_id": f"story{i}",
                      "followup": False, "url": f"https://news.example/{i}",
                      "title": f"Summit talks {i}", "source": "wire",
                      "published": now.isoformat(), "matched": ["summit"],
                      "snippet": "Summit talks went on."}
            tx.insert_alert(AlertRow(alert_id=f"alert{i}", rule="summit", article_id=article_id,
                                     story_id=f"story{i}", followup=False, created_at=now,
                                     record=record), [("hook", False)])
    store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    header("bench_delivery: one check-now delivering pending alerts to a loopback webhook")
    runs = []
    routes = {"/feed.xml": ("application/rss+xml", EMPTY_FEED), "/hook": ("text/plain", b"ok")}
    with StaticServer(routes) as srv:
        for run in range(args.repeat):
            tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
            try:
                db = tmp / "monitor.db"
                fill(db, args.alerts)
                config = tmp / "monitor.toml"
                config.write_text(f"""
[monitor]
per_host_delay = 0
allow_private_networks = true

[storage]
url = "sqlite:///{db}"

[[sources]]
name = "wire"
kind = "feed"
url = "{srv.url('/feed.xml')}"

[[rules]]
name = "summit"
query = "summit"
notify = ["hook"]

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{srv.url('/hook')}"
""", encoding="utf-8")
                c0 = cpu()
                wall, code, summary = check_now(config)
                used = cpu() - c0
                delivered = summary.get("delivered") or 0
                runs.append({"wall": wall, "cpu": used, "delivered": delivered, "code": code,
                             "rate": delivered / wall})
                print(f"   run {run + 1}: {delivered} delivered in {wall:.2f} s wall"
                      f" ({used:.2f} CPU s): {delivered / wall:.0f} a second")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    rate = median([r["rate"] for r in runs])
    print(f"   median {rate:.0f} alerts a second;"
          f" target >= 100 a second: {verdict(rate, 100, at_most=False)}")
    emit("delivery", {"alerts": args.alerts, "runs": runs, "rate_per_s": rate,
                      "met": rate >= 100})
    return 0


if __name__ == "__main__":
    sys.exit(main())
