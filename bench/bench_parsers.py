"""Feed parsers side by side on the real snapshots: feedparser (what ``parse_feed``
was built on) against fastfeedparser and feedparser-rs, each put behind the same
``parse_feed`` post-processing (text of HTML fields, link choice, dates in UTC,
GUID de-duplication, the entry cap), so that agreement is measured on what the
project keeps: entries, links, titles, GUIDs, dates, summaries, content, authors.

    .venv/bin/python bench/bench_parsers.py [--limit N] [--show 5]

Speed is the raw parse call alone (CPU and wall, median of 3 runs), and the whole
``parse_feed`` with each. Agreement: an entry agrees when all its fields equal the
feedparser result's entry at the same position (entries are matched by GUID, else
URL, else position).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feedparser  # noqa: E402
from _common import bench_data, emit, header, median  # noqa: E402

try:
    import fastfeedparser  # noqa: E402,F401
    import feedparser_rs  # noqa: E402
except ImportError:
    sys.exit("bench_parsers needs the bench extra: pip install -e '.[bench]'")
from typing import Any  # noqa: E402

from monitor.errors import ParseError  # noqa: E402
from monitor.sources import feeds  # noqa: E402

FIELDS = ("url", "guid", "title", "summary", "content", "published", "author")
NOW = datetime(2027, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- fastfeedparser

def _iso_struct(value):
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).timetuple()


def fastfeedparser_raw(body: bytes, headers: dict) -> dict:
    import fastfeedparser

    parsed = fastfeedparser.parse(body, include_tags=False, include_media=False,
                                  include_enclosures=False)
    entries = []
    for e in parsed.entries:
        entries.append({
            "id": e.get("id"), "guidislink": False, "link": e.get("link"),
            "links": e.get("links") or [],
            "title": e.get("title") or "", "title_detail": {"type": "text/html"},
            "summary": e.get("description") or "", "summary_detail": {"type": "text/html"},
            "content": e.get("content") or [],
            "published_parsed": _iso_struct(e.get("published")),
            "updated_parsed": _iso_struct(e.get("updated")),
            "author": e.get("author") or "", "author_detail": e.get("author_detail"),
        })
    feed = parsed.feed
    return feedparser.FeedParserDict(
        version="fast", entries=entries,
        feed={"title": feed.get("title") or "", "title_detail": feed.get("title_detail")})


# ---------------------------------------------------------------- feedparser-rs
# Only where the body reads as UTF-8 and the document is well-formed; elsewhere
# (``rs_parse`` gives None) feedparser decides, as a shipped fast path would.

RS_MAX_ENTRIES = 5_000
_UTF8_LABELS = {"utf-8", "utf8", "utf_8"}
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.I)
_DECL_ENC_RE = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _reads_as_utf8(body: bytes, ctype: str) -> bool:
    m = _CHARSET_RE.search(ctype)
    if m:
        label = m.group(1)
    else:
        d = _DECL_ENC_RE.match(body.removeprefix(b"\xef\xbb\xbf")[:200])
        label = d.group(1).decode("ascii") if d else "utf-8"
    if label.lower() not in _UTF8_LABELS:
        return False
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or body[:2] in (b"<\x00", b"\x00<"):
        return False
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_LIMITS = None


def _limits():
    global _LIMITS
    if _LIMITS is None:
        _LIMITS = feedparser_rs.ParserLimits(max_entries=RS_MAX_ENTRIES, max_links_per_entry=50,
                                             max_content_blocks=10, max_authors=20,
                                             max_contributors=20, max_tags=100,
                                             max_enclosures=20)
    return _LIMITS


def rs_parse(body: bytes, headers: dict) -> Any | None:
    """feedparser-rs's parse in feedparser's shape; None where feedparser must decide."""
    if feedparser_rs is None or not body.lstrip()[:1] == b"<":
        return None
    try:
        parsed = feedparser_rs.parse_with_limits(bytes(body), limits=_limits(),
                                                 sanitize_html=False,
                                                 resolve_relative_uris=False)
    except Exception:  # noqa: BLE001 - a candidate parser that fails leaves it to feedparser
        return None
    if parsed.bozo or not parsed.version or len(parsed.entries) >= RS_MAX_ENTRIES:
        return None
    try:
        return feedparser.FeedParserDict(
            version=parsed.version, bozo=False,
            feed=_feed(parsed.feed), entries=[_entry(e) for e in parsed.entries])
    except Exception:  # noqa: BLE001 - an unexpected shape: feedparser decides
        return None


def _text(detail: Any) -> dict | None:
    return None if detail is None else {"type": detail.type or "text/html"}


def _entry(e: Any) -> dict:
    author_detail = e.author_detail
    return {
        "id": e.id, "guidislink": bool(e.guidislink), "link": e.link,
        "links": [{"href": ln.href, "rel": ln.rel or "alternate", "type": ln.type}
                  for ln in e.links or ()],
        "title": e.title or "", "title_detail": _text(e.title_detail),
        "summary": e.summary or "", "summary_detail": _text(e.summary_detail),
        "content": [{"value": c.value or "", "type": c.type or "text/html"}
                    for c in e.content or ()],
        "published_parsed": e.published_parsed, "updated_parsed": e.updated_parsed,
        "created_parsed": e.created_parsed,
        "author": e.author or "",
        "author_detail": {"name": author_detail.name} if author_detail is not None else None,
    }


def _feed(f: Any) -> dict:
    syndication = f.syndication
    out = {"title": f.title or "", "title_detail": _text(f.title_detail)}
    if f.ttl is not None:
        out["ttl"] = str(f.ttl)
    if syndication is not None:
        period = getattr(syndication, "update_period", None)
        if period:
            out["sy_updateperiod"] = str(period)
        frequency = getattr(syndication, "update_frequency", None)
        if frequency:
            out["sy_updatefrequency"] = str(frequency)
    return out


# ---------------------------------------------------------------- runs

class _Shim:
    """Stands for the feedparser module inside ``monitor.sources.feeds``."""

    def __init__(self, raw):
        self.raw = raw

    def parse(self, body, response_headers=None, **_options):
        return self.raw(body, response_headers or {})


def parse_with(raw_parse, body: bytes, url: str):
    """``parse_feed`` with its raw parser replaced by ``raw_parse``."""
    saved = feeds.feedparser
    feeds.feedparser = _Shim(raw_parse)
    try:
        return feeds.parse_feed(body, url=url, now=NOW)
    finally:
        feeds.feedparser = saved


def feedparser_only(body, headers):
    return feedparser.parse(body, response_headers=headers, sanitize_html=False,
                            resolve_relative_uris=False)


def rs_with_fallback(body, headers):
    if _reads_as_utf8(body, headers.get("content-type") or ""):
        parsed = rs_parse(body, headers)
        if parsed is not None:
            return parsed
    return feedparser_only(body, headers)


CANDIDATES = {"feedparser": feedparser_only, "fastfeedparser": fastfeedparser_raw,
              "feedparser-rs (feedparser fallback)": rs_with_fallback}


def _key(entry, index):
    return entry.guid or entry.url or f"#{index}"


def compare(reference, other) -> dict:
    ref = {_key(e, i): e for i, e in enumerate(reference)}
    oth = {_key(e, i): e for i, e in enumerate(other)}
    out = {"entries": len(ref), "found": 0, "all": 0, **{f: 0 for f in FIELDS}, "extra": 0,
           "diffs": []}
    for key, e in ref.items():
        o = oth.get(key)
        if o is None:
            out["diffs"].append(("missing", key, None, None))
            continue
        out["found"] += 1
        same = True
        for f in FIELDS:
            if getattr(e, f) == getattr(o, f):
                out[f] += 1
            else:
                same = False
                out["diffs"].append((f, key, str(getattr(e, f))[:160], str(getattr(o, f))[:160]))
        out["all"] += same
    out["extra"] = len(set(oth) - set(ref))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--show", type=int, default=8, help="differences shown per field")
    args = ap.parse_args()
    data = bench_data()
    if data is None:
        print("SKIPPED: needs the real feed snapshots (bench/README.md)")
        return
    header("feed parsers on the real snapshots")
    files = sorted((data / "feeds").iterdir())
    if args.limit:
        files = files[:args.limit]
    bodies = [(f.name, f.read_bytes()) for f in files]
    url = "https://example.org/feed.xml"

    results: dict[str, dict] = {}
    outputs: dict[str, list] = {}
    for name, raw in CANDIDATES.items():
        cpu_runs, wall_runs, whole_cpu = [], [], []
        outs = []
        for _ in range(3):
            c0, w0 = time.process_time(), time.perf_counter()
            for _, body in bodies:
                try:
                    raw(body, {"content-type": "application/xml", "content-location": url})
                except Exception:  # noqa: BLE001 - timing only: failures are counted below
                    pass
            cpu_runs.append(time.process_time() - c0)
            wall_runs.append(time.perf_counter() - w0)
            c0 = time.process_time()
            outs = []
            for _, body in bodies:
                try:
                    outs.append(parse_with(raw, body, url).entries)
                except ParseError as exc:
                    outs.append(("error", str(exc)[:80]))
                except Exception as exc:  # noqa: BLE001 - a crash is a result to report
                    outs.append(("crash", f"{type(exc).__name__}: {exc}"[:120]))
            whole_cpu.append(time.process_time() - c0)
        outputs[name] = outs
        results[name] = {"raw_cpu_s": median(cpu_runs), "raw_wall_s": median(wall_runs),
                         "parse_feed_cpu_s": median(whole_cpu)}

    ref = outputs["feedparser"]
    for name in CANDIDATES:
        if name == "feedparser":
            continue
        total = {"entries": 0, "found": 0, "all": 0, **{f: 0 for f in FIELDS}, "extra": 0}
        diffs, verdicts = [], 0
        for (fname, _), a, b in zip(bodies, ref, outputs[name], strict=True):
            if isinstance(a, tuple) or isinstance(b, tuple):
                if (isinstance(a, tuple)) != (isinstance(b, tuple)):
                    verdicts += 1
                    diffs.append(("verdict", fname, str(a)[:80] if isinstance(a, tuple) else
                                  f"{len(a)} entries", str(b)[:80] if isinstance(b, tuple)
                                  else f"{len(b)} entries"))
                continue
            c = compare(a, b)
            for k in total:
                total[k] += c[k]
            diffs += [(d[0], f"{fname} {d[1]}", d[2], d[3]) for d in c["diffs"]]
        n = total["entries"] or 1
        r = results[name]
        r.update({f"agree_{k}": total[k] / n for k in ("found", "all", *FIELDS)})
        r["extra_entries"] = total["extra"]
        r["feeds_with_other_verdict"] = verdicts
        print(f"\n-- {name}: raw parse {r['raw_cpu_s']:.3f} CPU s ({r['raw_wall_s']:.3f} wall)"
              f" vs feedparser {results['feedparser']['raw_cpu_s']:.3f};"
              f" parse_feed {r['parse_feed_cpu_s']:.3f} CPU s vs"
              f" {results['feedparser']['parse_feed_cpu_s']:.3f}")
        print(f"   entries {total['entries']}: found {total['found']}, all fields agree"
              f" {total['all']} ({100 * total['all'] / n:.2f} %), extra {total['extra']},"
              f" feeds with another verdict {verdicts}")
        print("   per field: " + ", ".join(f"{f} {100 * total[f] / n:.2f} %" for f in FIELDS))
        by_kind: dict[str, list] = {}
        for d in diffs:
            by_kind.setdefault(d[0], []).append(d)
        for kind, items in by_kind.items():
            print(f"   {kind}: {len(items)}")
            for d in items[:args.show]:
                print(f"      {d[1]}\n        feedparser: {d[2]!r}\n        {name}: {d[3]!r}")
    for name in CANDIDATES:
        if name != "feedparser":
            agree = results[name]["agree_all"]
            print(f"{name}: {'MET' if agree >= 0.995 else 'MISSED'} agreement on all fields"
                  f" {100 * agree:.2f} % of entries (adoption needs >= 99.5 %)")
    emit("parsers", {"feeds": len(bodies), "results": results})


if __name__ == "__main__":
    main()
