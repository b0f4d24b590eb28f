"""`search`: the store's substring prefilter never drops an article the query matches."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dedup.ingest import Fingerprints, ingest
from monitor.match.query import Document, compile_query
from monitor.models import Article
from storage import open_store
from tests.newsroom import PAIRS, RULE_TEXTS, load_text

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))

QUERIES = [r["query"] for r in SHIPPED["rules"]] + [
    "Kishida NEAR/5 summit", '"Kim Jong Un" AND (summit OR talks)', "abduct* NOT Nigeria",
    "岸田 AND 首脳会談", "拉致", "title:Kishida", "Pyongyang OR 平壌", "missile* AND Japan",
    '"prime minister" NEAR/3 Kishida', "text:abductees", "url:wire AND Kim", "source:wire",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('search') / 'm.db'}")
    now = datetime.now(UTC)
    for i, path in enumerate(sorted(RULE_TEXTS.glob("*.txt")) + sorted(PAIRS.glob("*.txt"))):
        title, text = load_text(path)
        article = Article(url=f"https://wire.example/{i}", title=title, text=text, source="wire")
        with store.exclusive() as tx:
            ingest(tx, article, Fingerprints.of(article), aliases=[], now=now)
    yield store
    store.close()


def matching(store, query, prefilter: bool) -> list[str]:
    needles = query.needles() if prefilter else None
    return [a.url for a in store.iter_articles(containing_any=needles)
            if query.match(Document.build(title=a.title, text=a.text, source=a.source,
                                          url=a.url))]


@pytest.mark.parametrize("text", QUERIES)
def test_prefilter_keeps_every_match(store, text):
    query = compile_query(text)
    assert matching(store, query, prefilter=True) == matching(store, query, prefilter=False)


def test_prefilter_actually_filters(store):
    query = compile_query("Nigeria")
    candidates = list(store.iter_articles(containing_any=query.needles()))
    assert 0 < len(candidates) < store.count_articles() / 4
