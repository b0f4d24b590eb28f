"""What the shipped rules return, recorded: a change to how matching is done
must not change what it finds.

tests/testdata/rules/golden_match.json.gz (gzip'd JSON: read it with
``zcat FILE | python -m json.tool``) holds, for the two shipped rules (their
query text is stored in the file, so that editing config/monitor.toml does not
move the goal posts) over the eval corpus (tests/testdata/eval/*/*: real-pattern
articles in English, Japanese and Korean), the rule-test articles
(tests/testdata/rules/*.txt) and a few hundred generated articles (word salad
heavy with the story's words, built as the benchmarks build theirs, with a
fixed seed): which rules match, and for each rule either its hits, matched
words, terms, highlighted snippet and per-term snippets, or the reasons
``explain`` gives (``rules test`` shows exactly these).

The file was written by the matching code as it was before its evaluation was
made faster. To write it again, on purpose (the rules' meaning changed):

    .venv/bin/python tests/test_match_equivalence.py --write
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from monitor.errors import QueryError  # noqa: E402
from monitor.match.evaluate import find_term, near  # noqa: E402
from monitor.match.parse import DEFAULT_FIELDS, And, Node, Not, Or, Term  # noqa: E402
from monitor.match.query import Document, Query, RuleSet, compile_query  # noqa: E402
from monitor.match.rulecheck import read_article  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "testdata" / "rules" / "golden_match.json.gz"
EVAL = Path(__file__).resolve().parent / "testdata" / "eval"
RULE_ARTICLES = Path(__file__).resolve().parent / "testdata" / "rules"

# ------------------------------------------------------------ generated texts

# The benchmarks' vocabulary (bench/_common.py): every entry is a candidate
# for both rules, and many match.
EN_WORDS = (
    "the of and to in a is that for on with as by at from was said minister summit "
    "government north korea japan kim kishida talks leader abducted citizens families "
    "report officials meeting pyongyang tokyo statement foreign policy missile launch "
    "election economy market trade war security council week year people new would "
    "could after before during between about into over under more most other some "
    "such only also than then when where which while who whom why how all any both "
    "each few many much several own same so very can will just should now").split()
# A few more of the rules' words, so that NOT branches and prefixes are exercised.
EN_EXTRA = ("jong un yo trump putin kidnapped abductees abduction issue dprk kcna japanese "
            "prime japan's abe ishiba takaichi koizumi 2002 historic visit "
            "south korean").split()
JA_WORDS = ("日朝首脳 首相 岸田 石破 金正恩 総書記 会談 首脳会談 拉致 北朝鮮 拉致被害者 "
            "拉致問題 横田めぐみ 訪朝 平壌 日本人 誘拐 核 ミサイル 家族会 接触 日本 "
            "対話 実現 意欲 韓国人拉致 朝鮮戦争 金与正 は が の を に と した 述べた "
            "政府 会見 今日 東京 で も").split()
KO_WORDS = ("북한 일본 납치 일본인 납북자 기시다 김정은 평양 피해자 가족회 요코타 북일 "
            "정상회담 총리 김여정 납치문제 국군포로 통일부 北 日 대북 회담 밝혔다 "
            "정부 오늘 서울 문제").split()
KO_PARTICLES = ["", "", "", "은", "는", "이", "가", "과", "의", "에", "를"]


def _sentences(rng: random.Random, words: list[str], n_words: int,
               join: str, stop: str) -> str:
    """Sentences of words drawn at random, in paragraphs (as the benchmarks do)."""
    chosen = rng.choices(words, k=n_words)
    out, sentence = [], []
    for i, w in enumerate(chosen):
        sentence.append(w)
        if len(sentence) >= rng.randint(8, 22) or i == n_words - 1:
            s = join.join(sentence)
            out.append(s[0].upper() + s[1:] + stop)
            sentence = []
    paras, k = [], 0
    while k < len(out):
        step = rng.randint(3, 6)
        paras.append(join.join(out[k:k + step]))
        k += step
    return "\n\n".join(paras)


def generated_articles() -> list[tuple[str, dict[str, str]]]:
    """(name, fields) of the generated articles, the same on every run."""
    rng = random.Random(20261201)
    out: list[tuple[str, dict[str, str]]] = []
    for i in range(240):
        vocab = EN_WORDS if i % 3 else EN_WORDS + EN_EXTRA
        text = _sentences(rng, vocab, rng.randint(60, 250), " ", ".")
        out.append((f"gen-en-{i}", {"title": f"Report {i}: {text[:60]}", "text": text,
                                     "source": f"gen{i:05d}",
                                     "url": f"https://site{i}.example/news/{i}"}))
    for i in range(30):
        text = _sentences(rng, JA_WORDS, rng.randint(40, 160), "", "。")
        out.append((f"gen-ja-{i}", {"title": text[:30], "text": text, "source": "", "url": ""}))
    for i in range(30):
        words = [w + rng.choice(KO_PARTICLES) for w in rng.choices(KO_WORDS, k=200)]
        text = _sentences(rng, words, rng.randint(40, 160), " ", ".")
        out.append((f"gen-ko-{i}", {"title": text[:40], "text": text, "source": "", "url": ""}))
    for i in range(10):   # an English article quoting Japanese and Korean
        text = "\n\n".join([_sentences(rng, EN_WORDS + EN_EXTRA, 80, " ", "."),
                            _sentences(rng, JA_WORDS, 40, "", "。"),
                            _sentences(rng, KO_WORDS, 30, " ", ".")])
        out.append((f"gen-mixed-{i}", {"title": text[:50], "text": text, "source": "",
                                        "url": ""}))
    return out


def corpus_articles() -> list[tuple[str, dict[str, str]]]:
    """(name, fields) of the eval corpus and the rule-test articles, read as
    ``rules test`` and ``rules eval`` read them."""
    paths = sorted(EVAL.glob("*/*/*/*.txt")) + sorted(RULE_ARTICLES.glob("*.txt"))
    out = []
    for path in paths:
        article = read_article(path.read_bytes())
        out.append((str(path.relative_to(ROOT)), {"title": article.title, "text": article.text,
                                                   "source": "", "url": ""}))
    return out


# ------------------------------------------------------------- what is recorded

def shipped_rules() -> dict[str, str]:
    data = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))
    return {r["name"]: r["query"] for r in data["rules"]}


def outcome(queries: dict[str, Query], rules: RuleSet, fields: dict[str, str]) -> dict[str, Any]:
    """What matching returns for one article, as plain data."""
    doc = Document.build(**fields)
    record: dict[str, Any] = {"matched": list(rules.match(doc))}
    for name, query in queries.items():
        # A fresh document per rule as well: ``rules test`` matches one rule alone.
        result = query.match(Document.build(**fields))
        if result is None:
            record[name] = {"explain": query.explain(doc)}
            continue
        snippet, spans = result.highlighted()
        record[name] = {
            "hits": [[h.term, h.field, h.start, h.end, h.text] for h in result.hits],
            "words": result.words,
            "terms": result.terms,
            "highlighted": [snippet, [list(s) for s in spans]],
            "snippets": [list(pair) for pair in result.snippets()],
        }
    return record


def current(rule_texts: dict[str, str]) -> dict[str, Any]:
    queries = {name: compile_query(text, rule=name) for name, text in rule_texts.items()}
    rules = RuleSet(queries)
    return {name: outcome(queries, rules, fields)
            for name, fields in corpus_articles() + generated_articles()}


def write() -> None:
    rule_texts = shipped_rules()
    data = {"rules": rule_texts, "articles": current(rule_texts)}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # mtime=0: the same recording gives the same bytes.
    GOLDEN.write_bytes(gzip.compress(text.encode("utf-8"), 9, mtime=0))


# ------------------------------------------------------------------ the tests

@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


def test_the_recording_covers_matches_misses_and_every_script(golden):
    articles = golden["articles"]
    assert len(articles) >= 600
    for rule in golden["rules"]:
        matched = [name for name, rec in articles.items() if rule in rec["matched"]]
        missed = [name for name, rec in articles.items() if rule not in rec["matched"]]
        assert len(matched) >= 50 and len(missed) >= 50, rule
        for script in ("/en/", "/ja/", "/ko/", "gen-en", "gen-ja", "gen-ko"):
            assert any(script in name for name in matched), (rule, script)
    # Reasons of every kind: a missing term, a NEAR that came close, a NOT.
    reasons = [why for rec in articles.values() for rule in golden["rules"]
               for why in rec[rule].get("explain", ())]
    assert any(" apart at the closest" in why for why in reasons)
    assert any(why.startswith("excluded by NOT") for why in reasons)
    assert any(" is not in the " in why or why.startswith("none of ") for why in reasons)


def test_matching_returns_what_it_returned_before(golden):
    now = current(golden["rules"])
    assert list(now) == list(golden["articles"])
    differ = [name for name in now if now[name] != golden["articles"][name]]
    assert not differ, (f"{len(differ)} articles differ, first {differ[0]}: "
                        f"{now[differ[0]]} != {golden['articles'][differ[0]]}")


# ------------------------------------------- against a plain evaluation

class Plain:
    """Matching as the language says it, as plainly as it can be written: every
    node evaluated in the order written, nothing skipped; a term's matches
    remembered (and named) as first found, shared by all rules matched with it."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.memo: dict[Term, Any] = {}

    def eval(self, node: Node) -> list | None:
        if isinstance(node, Term):
            if node not in self.memo:
                spans = [(name, first, last, ((node.display, name, start, end),))
                         for name in ((node.field,) if node.field else DEFAULT_FIELDS)
                         for first, last, start, end in find_term(self.doc.fields[name],
                                                                  node.segments)]
                self.memo[node] = spans or None
            return self.memo[node]
        if isinstance(node, And):
            spans: list = []
            for child in node.children:
                got = self.eval(child)
                if got is None:
                    return None
                spans.extend(got)
            return spans
        if isinstance(node, Or):
            found = [got for got in map(self.eval, node.children) if got is not None]
            return [span for got in found for span in got] if found else None
        if isinstance(node, Not):
            return None if self.eval(node.child) is not None else []
        left = self.eval(node.left)
        right = self.eval(node.right) if left else None
        return (near(left, right, node.distance) or None) if left and right else None

    def hits(self, node: Node) -> list[tuple[str, str, int, int]] | None:
        spans = self.eval(node)
        if spans is None:
            return None
        order = {name: i for i, name in enumerate(("title", "text", "source", "url"))}
        leaves = {leaf for span in spans for leaf in span[3]}
        return sorted(leaves, key=lambda leaf: (order[leaf[1]], *leaf[2:], leaf[0]))


WORDS = ["kim", "jong", "un", "kishida", "summit", "abductees", "abduct", "japan", "talks",
         "岸田", "首相", "金正恩", "拉致", "北日", "김정은", "북한", "a", "the"]
# The same terms written differently: their hits are named as first evaluated.
SPELLED = ["Kim", "KIM", "Jong-un", "岸田首相", '"岸田 首相"', '"北 日"', "abduct*", "kim*",
           "김정은과", "nowhere", "absent"]
SEPARATORS = [" ", " ", " ", "-", ", ", ". ", "\n", ""]


@st.composite
def documents(draw) -> Document:
    def field(max_words: int) -> str:
        words = draw(st.lists(st.sampled_from(WORDS + ["김정은과", "Kim"]), max_size=max_words))
        return "".join(w + draw(st.sampled_from(SEPARATORS)) for w in words)
    return Document.build(title=field(6), text=field(40), source=field(2), url=field(3))


def atoms() -> st.SearchStrategy[str]:
    word = st.sampled_from(WORDS + SPELLED)
    phrase = st.lists(st.sampled_from(WORDS), min_size=2, max_size=3).map(
        lambda ws: '"' + " ".join(ws) + '"')
    fielded = st.tuples(st.sampled_from(["title:", "text:", "url:", ""]), word).map("".join)
    return st.one_of(word, phrase, fielded)


queries_text = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(lambda qs: "(" + " AND ".join(qs) + ")"),
        st.lists(inner, min_size=2, max_size=4).map(lambda qs: "(" + " OR ".join(qs) + ")"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND NOT {t[1]})"),
        st.tuples(inner, st.integers(1, 8), inner).map(lambda t: f"({t[0]} NEAR/{t[1]} {t[2]})"),
    ),
    max_leaves=14,
)


def compiled(texts: list[str]) -> dict[str, Query]:
    out = {}
    for i, text in enumerate(texts):
        try:
            out[f"rule{i}"] = compile_query(text, rule=f"rule{i}")
        except QueryError:
            pass
    return out


# Terms written two ways ("Kim", "KIM") where the order of evaluation decides
# the hits' names, and parts that cannot match (nowhere) which the evaluator
# skips: the plain evaluation names the hits after the first written.
TRICKY = [
    "(Kim AND nowhere) OR (KIM NEAR/2 summit)",
    "((Kim AND nowhere) OR talks) AND (KIM OR absent)",
    "(Kim NEAR/1 nowhere) OR (summit AND KIM)",
    "NOT (Kim AND nowhere) AND (KIM OR talks)",
    '(岸田首相 AND nowhere) OR ("岸田 首相" AND talks)',
    '("北 日" AND absent) OR (北日 NEAR/3 talks)',
    "(kim* AND absent) OR (KIM NEAR/3 summit) OR (Kim AND talks)",
]
TRICKY_DOC = Document.build(title="Kim and KIM", text="Kim held a summit with KIM and talks. "
                            "岸田首相は北日の talks に", url="https://example.org/kim")


@pytest.mark.parametrize("text", TRICKY)
def test_terms_written_two_ways_are_named_as_a_plain_evaluation_names_them(text):
    query = compile_query(text)
    result = query.match(TRICKY_DOC)
    assert result is not None
    assert [(h.term, h.field, h.start, h.end) for h in result.hits] == \
        Plain(TRICKY_DOC).hits(query.node)
    rules = RuleSet({"first": compile_query("KIM OR 岸田 OR 北日 OR nothing"), "then": query})
    got = rules.match(TRICKY_DOC)
    plain = Plain(TRICKY_DOC)
    assert [(h.term, h.start) for h in got["first"].hits] == \
        [(term, start) for term, _, start, _ in plain.hits(rules.queries["first"].node) or ()]
    assert [(h.term, h.field, h.start, h.end) for h in got["then"].hits] == \
        plain.hits(query.node)


@settings(max_examples=400, deadline=None)
@given(st.lists(queries_text, min_size=1, max_size=5), st.lists(documents(), min_size=1,
                                                                 max_size=3))
def test_a_rule_set_finds_what_a_plain_evaluation_finds(texts, docs):
    queries = compiled(texts)
    rules = RuleSet(queries)
    for doc in docs:
        plain = Plain(doc)
        expected = {}
        for name in sorted(rules.candidates(doc), key=list(queries).index):
            hits = plain.hits(queries[name].node)
            if hits is not None:
                expected[name] = hits
        got = rules.match(doc)
        assert {name: [(h.term, h.field, h.start, h.end) for h in result.hits]
                for name, result in got.items()} == expected
        assert list(got) == list(expected)


@settings(max_examples=300, deadline=None)
@given(queries_text, documents())
def test_one_query_finds_and_explains_what_a_plain_evaluation_does(text, doc):
    queries = compiled([text])
    if not queries:
        return
    query = queries["rule0"]
    result = query.match(doc)
    expected = Plain(doc).hits(query.node)
    assert (None if result is None else
            [(h.term, h.field, h.start, h.end) for h in result.hits]) == expected
    if result is None:
        from monitor.match.explain import explain
        # explain reads nothing but what evaluating a node returns: the plain
        # evaluation gives the reasons as they were.
        assert query.explain(doc, limit=1000) == explain(Plain(doc), query.node)  # type: ignore[arg-type]


def test_a_query_matched_once_still_matches_after_pickling():
    import pickle
    query = compile_query('(Kishida OR 岸田) AND ("Kim Jong Un" OR 金正恩)')
    doc = Document.build(title="Kishida seeks a summit with Kim Jong Un")
    before = query.match(doc)
    again = pickle.loads(pickle.dumps(query))
    after = again.match(doc)
    assert before is not None and after is not None
    assert after.hits == before.hits
    assert again.explain(Document.build(text="Kishida")) == query.explain(
        Document.build(text="Kishida"))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: tests/test_match_equivalence.py --write")
    write()
    print(f"wrote {GOLDEN}")
