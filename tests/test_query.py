"""The query language: what matches, why, and the errors a rule author sees."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.errors import QueryError
from monitor.match.query import And, Document, Near, Not, Or, RuleSet, Term, compile_query
from monitor.text.normalise import fold, tokenize

TITLE = "Kishida seeks summit with Kim Jong-un"
TEXT = ("Japanese Prime Minister Fumio Kishida said on Tuesday he wants a summit with "
        "North Korea\u2019s KIM JONG\u2011UN to resolve the issue of the abductees. "
        "Mr Kimura, an aide, declined to comment.\n\n"
        "岸田文雄首相は金正恩総書記との首脳会談に意欲を示した。拉致被害者の家族は期待している。")
DOC = Document.build(title=TITLE, text=TEXT, source="dw-asia",
                     url="https://www.nknews.org/2024/03/kishida-kim-summit/")


def matches(query: str, doc: Document = DOC) -> bool:
    return compile_query(query).match(doc) is not None


def hit_texts(query: str, doc: Document = DOC) -> list[str]:
    result = compile_query(query).match(doc)
    assert result is not None, query
    return [h.text for h in result.hits]


def text_doc(text: str, **fields: str) -> Document:
    return Document.build(text=text, **fields)


# ------------------------------------------------------------------ spellings

@pytest.mark.parametrize("spelling", [
    "Kim Jong-un", "KIM JONG UN", "Kim Jong\u2011un", "Kim Jong\u2013un", "Kim Jong\u2014un",
    "kim jong un", "Kim  Jong\nUn", "Kim Jong'un", "ＫＩＭ ＪＯＮＧ ＵＮ", "Kím Jöng Ún",
    "Kim Jong\u2010un", "Kim\u00a0Jong-un",
])
@pytest.mark.parametrize("query", ['"Kim Jong Un"', "Jong-un", '"kim jong-un"', "Kim Jong Un"])
def test_spellings_of_a_name_match(query, spelling):
    doc = text_doc(f"Talks with {spelling} resumed.")
    assert matches(query, doc)


@pytest.mark.parametrize("query, text, expected", [
    # Whole words only.
    ("Kim", "Mr Kimura declined.", False),
    ("Kim", "Kim's sister", True),
    ("Kimura", "Mr Kimura declined.", True),
    ("summit", "summitry", False),
    # Prefix wildcard.
    ("abduct*", "the abducted citizens", True),
    ("abduct*", "abductees and their families", True),
    ("abduct*", "abductions", True),
    ("abduct*", "the abduct", True),
    ("abduct*", "kidnapped", False),
    ("Kim*", "Mr Kimura declined.", True),
    ('"Kim Jong*"', "Kim Jong-il died", True),
    ('"Kim Jong*"', "Kim Yo-jong", False),
    # Case and accents.
    ("pyongyang", "PYONGYANG", True),
    ("Pyongyang", "Pyŏngyang", True),
    ("cafe", "CAFÉ", True),
    ("strasse", "Straße", True),
    # Japanese: substrings of runs.
    ("岸田", "岸田文雄首相は", True),
    ("首相", "岸田文雄首相は", True),
    ("岸田首相", "岸田首相は", True),
    ('"岸田 首相"', "岸田首相は", True),
    ("岸田首相", "岸田 首相は", True),             # a space inside Japanese text is not a break
    ("岸田首相", "岸田\n首相は", True),            # nor is a wrapped line
    ("岸田首相", "岸田、首相は", True),            # nor punctuation, as between Latin words
    ("金正恩", "キム・ジョンウン", False),
    ("キムジョンウン", "キム・ジョンウン", True),  # ・ joins like a space
    ("ガス", "ｶﾞｽ漏れ", True),                      # half-width kana
    ("ガス", "カス", False),
    ("拉致*", "拉致被害者", True),
    # Mixed phrases.
    ('"G7 サミット"', "G7サミットで", True),
    ('"G7 サミット"', "G7 サミットで", True),
    ('"G7 サミット"', "G7 首脳サミットで", False),     # CJK after a word starts its run
    ('"首相 Kishida"', "岸田首相 Kishida", True),
    ('"首相 Kishida"', "首相は Kishida", False),       # CJK before a word ends its run
    ("G7サミット", "G7サミットで", True),
    # Korean is spaced, and a word carries its particles: a Hangul term
    # matches the beginning of a word.
    ("김정은", "김정은 위원장", True),
    ("김정은", "김정은과 만나", True),
    ("정상회담", "북일 정상회담을 추진", True),
    ("회담", "북일 정상회담을 추진", False),
    ("김정", "김정은 위원장", True),
])
def test_term_matching(query, text, expected):
    assert matches(query, text_doc(text)) is expected


def test_hits_report_the_original_text():
    assert hit_texts('"Kim Jong Un"') == ["Kim Jong-un", "KIM JONG\u2011UN"]
    assert hit_texts("abduct*") == ["abductees"]
    assert hit_texts("岸田") == ["岸田"]
    assert hit_texts("ガス", text_doc("ｶﾞｽ漏れ")) == ["ｶﾞｽ"]
    assert hit_texts("岸田首相", text_doc("岸田 首相は")) == ["岸田 首相"]


# ----------------------------------------------------------------- operators

@pytest.mark.parametrize("query, expected", [
    ("Kishida Kim", True),                    # adjacency is AND
    ("Kishida AND Kim", True),
    ("Kishida sushi", False),
    ("Kishida and sushi", False),             # lower-case "and" is a word, and absent
    ("sushi OR Kim", True),
    ("sushi or Kim", False),                  # "or" is a word: sushi AND or AND Kim
    ("Kishida NOT sushi", True),
    ("Kishida NOT Kimura", False),
    ("Kishida AND NOT Kimura", False),
    ("NOT sushi Kishida", True),
    ("sushi OR Kishida Kim", True),           # = sushi OR (Kishida AND Kim)
    ("Kishida Kim OR sushi", True),
    ("sushi Kim OR Kishida", True),           # = (sushi AND Kim) OR Kishida
    ("sushi Kim OR ramen", False),
    ("(sushi OR Kim) Kishida", True),
    ("NOT (Kimura OR sushi) Kim", False),
])
def test_boolean_operators_and_precedence(query, expected):
    assert matches(query) is expected


@pytest.mark.parametrize("query, text, expected", [
    ("Kim NEAR/1 summit", "Kim summit", True),
    ("Kim NEAR/1 summit", "summit Kim", True),          # either order
    ("Kim NEAR/1 summit", "Kim held summit", False),
    ("Kim NEAR/2 summit", "Kim held summit", True),
    ("summit NEAR/2 Kim", "Kim held summit", True),
    ("Kim NEAR/3 summit", "Kim held a long summit", False),
    ("Kim NEAR/4 summit", "Kim held a long summit", True),
    ("Kim NEAR/4 summit", "summit. A, b, c, d: Kim", False),   # punctuation is not a word
    ("Kim NEAR/5 summit", "summit. A, b, c, d: Kim", True),
    # Phrases count from their edges.
    ('"Kim Jong Un" NEAR/2 summit', "summit with Kim Jong-un", True),
    ('"Kim Jong Un" NEAR/2 summit', "Kim Jong-un wants a summit", False),
    ('"Kim Jong Un" NEAR/3 summit', "Kim Jong-un wants a summit", True),
    # Groups on either side.
    ("(Kishida OR 岸田) NEAR/10 (Kim OR 金正恩)", "Kishida met Kim", True),
    ("(Kishida OR 岸田) NEAR/10 (Kim OR 金正恩)", "岸田首相は金正恩総書記と", True),
    ("(Kishida OR 岸田) NEAR/2 (Kim OR 金正恩)", "Kishida, the prime minister, met Kim", False),
    ("(Kishida OR Abe) NEAR/3 (Kim OR Moon)", "Moon said Abe", True),
    # Within one field only.
    ("Kishida NEAR/1 summit", None, False),
    # Prefix on one side.
    ("abduct* NEAR/3 families", "families of the abducted", True),
    # Chains.
    ("Kim NEAR/1 Jong NEAR/1 summit", "summit Kim Jong", True),
    ("Kim NEAR/1 Jong NEAR/1 summit", "summit x Kim Jong", False),
])
def test_near(query, text, expected):
    doc = text_doc(text) if text is not None else Document.build(
        title="Kishida", text="summit")
    assert matches(query, doc) is expected


def test_near_hits_are_only_the_near_occurrences():
    doc = text_doc("Kim spoke. " + "filler " * 50 + "Later Kim proposed a summit.")
    result = compile_query("Kim NEAR/3 summit").match(doc)
    assert [(h.term, h.start) for h in result.hits] == [
        ("Kim", doc.text_of("text").rindex("Kim")), ("summit", doc.text_of("text").index("summit"))]


@pytest.mark.parametrize("query, expected", [
    ("title:summit", True),
    ("title:abductees", False),
    ("text:abductees", True),
    ("title:(sushi OR Kim)", True),
    ('title:"Kim Jong Un"', True),
    ("title:(Kim NEAR/1 Jong)", True),
    ("title:(text:abductees)", True),            # the inner field wins
    ("url:nknews", True),
    ("url:nknews.org", True),
    ('url:"kishida kim summit"', True),
    ("url:https://www.nknews.org/2024", True),
    ("url:Kishida", True),
    ("url:abductees", False),
    ("source:dw-asia", True),
    ("source:asia", True),
    ("source:reuters", False),
    ("nknews", False),                            # no field: title and text only
    ("dw", False),
    ("Title:summit", True),                       # field names ignore case
])
def test_fields(query, expected):
    assert matches(query) is expected


# ------------------------------------------------------------------ results

def test_result_terms_in_document_order():
    result = compile_query("abduct* (Kim OR 金正恩) Kishida 岸田").match(DOC)
    # Title first (Kishida, Kim), then the text (abductees, then the Japanese).
    assert result.terms == ["Kishida", "Kim", "abduct*", "岸田", "金正恩"]
    assert [h.field for h in result.hits][:3] == ["title", "title", "text"]
    assert all(DOC.text_of(h.field)[h.start:h.end] == h.text for h in result.hits)


def test_terms_under_not_are_never_hits():
    result = compile_query("Kishida NOT (sushi OR ramen)").match(DOC)
    assert result.terms == ["Kishida"]


def test_snippet_shows_the_densest_cluster():
    text = ("The weather was fine. " * 20 + "Kishida and Kim discussed the abductees at length. "
            + "Markets rose. " * 30 + "Kishida later left.")
    doc = Document.build(title="Summit talk", text=text)
    result = compile_query("Kishida Kim abduct*").match(doc)
    snippet = result.snippet(120)
    assert "Kishida and Kim discussed the abductees" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 122
    assert "  " not in snippet and "\n" not in snippet


def test_snippet_falls_back_to_the_title():
    doc = Document.build(title="Kishida eyes summit", text="Nothing relevant here.")
    result = compile_query("Kishida").match(doc)
    assert result.snippet() == "Kishida eyes summit"


def test_highlighted_spans_cover_the_hits():
    result = compile_query('"Kim Jong Un" OR 岸田 OR abduct*').match(DOC)
    snippet, spans = result.highlighted(300)
    shown = [snippet[a:b] for a, b in spans]
    assert "KIM JONG\u2011UN" in shown and "abductees" in shown and "岸田" in shown
    assert snippet == result.snippet(300)


def test_snippets_one_per_term():
    result = compile_query("Kishida abduct* 拉致").match(DOC)
    snippets = dict(result.snippets(60))
    assert list(snippets) == ["Kishida", "abduct*", "拉致"]
    assert "Kishida" in snippets["Kishida"]
    assert "abductees" in snippets["abduct*"]
    assert "拉致" in snippets["拉致"]


def test_snippet_collapses_whitespace_and_controls():
    doc = text_doc("Kim\n\n\tJong\x00 Un   arrived")
    assert compile_query("arrived").match(doc).snippet() == "Kim Jong Un arrived"


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("query, position, reason", [
    ("", 0, "empty query"),
    ("   ", 0, "empty query"),
    ("(Kim OR Kishida", 0, "unbalanced '('"),
    ("Kim (OR Kishida)", 5, "needs a term before it"),
    ("Kim OR Kishida)", 14, "unbalanced ')'"),
    (")", 0, "unbalanced ')'"),
    ("Kim ()", 4, "empty parentheses"),
    ('"Kim Jong', 0, "unterminated quote"),
    ('Kim "Jong', 4, "unterminated quote"),
    ("Kim AND", 4, "dangling operator 'AND'"),
    ("Kim OR", 4, "dangling operator 'OR'"),
    ("AND Kim", 0, "dangling operator 'AND'"),
    ("Kim AND OR Jong", 8, "unexpected 'OR' after 'AND'"),
    ("Kim NOT", 4, "dangling operator 'NOT'"),
    ("Kim NEAR/5", 4, "dangling operator 'NEAR/5'"),
    ("Kim NEAR Jong", 4, "NEAR needs a distance"),
    ("Kim NEAR/ Jong", 4, "NEAR needs a distance"),
    ("Kim NEAR/x Jong", 4, "NEAR needs a distance"),
    ("Kim NEAR/0 Jong", 4, "at least 1"),
    ("Kim NEAR/99999999999 Jong", 4, "larger than"),
    ("foo:bar", 0, "unknown field 'foo'"),
    ("Kim foo:bar", 4, "unknown field 'foo'"),
    ("https://nknews.org", 0, "unknown field 'https'"),
    ("title:", 0, "field 'title:' needs a term"),
    ("NOT Kim", 0, "no positive term"),
    ("NOT Kim NOT Jong", 0, "no positive term"),
    ("Kim OR NOT Jong", 7, "no positive term"),
    ("Kim NEAR/3 (NOT Jong)", 4, "positive term on each side"),
    ("Kim - Jong", 4, "no letters or digits"),
    ("*", 0, "no letters or digits"),
    ("ab*cd", 2, "wildcard"),
    ('"Kim *"', 5, "wildcard"),
    ("-Kim", 0, "use NOT"),
])
def test_syntax_errors_name_position_and_rule(query, position, reason):
    with pytest.raises(QueryError) as caught:
        compile_query(query, rule="kishida-kim")
    error = caught.value
    assert error.position == position, str(error)
    assert reason in error.reason
    assert error.rule == "kishida-kim"
    assert str(error).startswith("rule 'kishida-kim': ")
    assert f"at position {position}" in str(error)


@pytest.mark.parametrize("query", [
    "(" * 10_000 + "Kim" + ")" * 10_000,
    "NOT " * 10_000 + "Kim",
    "Kim NEAR/1 " * 5_000 + "Kim",
    "title:" * 10_000 + "Kim",
    "title: " * 10_000 + "Kim",
])
def test_hostile_nesting_is_a_query_error(query):
    with pytest.raises(QueryError, match="nested"):
        compile_query(query)


def test_wide_queries_are_fine():
    query = compile_query(" OR ".join(f"word{i}" for i in range(5000)))
    assert query.match(text_doc("word4999")) is not None
    flat = compile_query(" ".join(f"(a{i} NEAR/1 b{i})" for i in range(200)))
    assert flat.match(text_doc("a0 b0")) is None


def test_double_negation_is_the_term():
    assert compile_query("NOT NOT Kim").node == compile_query("Kim").node


def test_operators_are_upper_case_only():
    q = compile_query("kim and or not near")
    assert q.node == And(tuple(Term((("w", w),)) for w in ["kim", "and", "or", "not", "near"]))
    assert isinstance(compile_query("Kim NEARBY").node, And)


# -------------------------------------------------------------------- RuleSet

RULES = {
    "summit": '(Kishida OR "prime minister") AND (Kim OR Pyongyang) AND summit',
    "abductions": "abduct* OR 拉致",
    "japanese": "(岸田 OR 首相) NEAR/3 金正恩",
    "nknews": "url:nknews",
    "not-sports": "baseball NOT Kim",
    "nothing": "sushi ramen",
}


def test_ruleset_matches_every_rule_that_matches():
    rules = RuleSet({name: compile_query(q, rule=name) for name, q in RULES.items()})
    got = rules.match(DOC)
    assert list(got) == ["summit", "abductions", "japanese", "nknews"]
    assert got["abductions"].terms == ["abduct*", "拉致"]


def test_ruleset_only_evaluates_candidates():
    rules = RuleSet({name: compile_query(q, rule=name) for name, q in RULES.items()})
    assert "nothing" not in rules.candidates(DOC)
    assert "not-sports" not in rules.candidates(DOC)


def test_many_cjk_and_prefix_rules_use_the_index_paths():
    queries = {f"r{i}": compile_query(f"語{i:03d}* OR 岸田{chr(0x4e00 + i)} OR x{i}y*")
               for i in range(200)}
    rules = RuleSet(queries)
    doc = text_doc("岸田一 and x5yz")
    assert set(rules.match(doc)) == {"r0", "r5"}


# ------------------------------------------------------------------ properties

WORDS = ["kim", "jong", "un", "kishida", "summit", "abductees", "abduct", "japan",
         "岸田", "首相", "金正恩", "拉致", "ガス", "a", "the"]
SPELLINGS = {"kim": ["Kim", "KIM", "Kím"], "jong": ["Jong", "JONG"], "ガス": ["ｶﾞｽ", "ガス"]}
SEPARATORS = [" ", " ", " ", "-", "\u2011", ", ", ". ", "\n", "", "’"]


@st.composite
def documents(draw):
    def field(max_words):
        words = draw(st.lists(st.sampled_from(WORDS), max_size=max_words))
        out = []
        for w in words:
            out.append(draw(st.sampled_from(SPELLINGS.get(w, [w]))))
            out.append(draw(st.sampled_from(SEPARATORS)))
        return "".join(out)
    return Document.build(title=field(6), text=field(30), source=field(2), url=field(3))


def atoms():
    word = st.sampled_from(WORDS + ["abduct*", "kim*", "Jong-un", "岸田首相"])
    phrase = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(
        lambda ws: '"' + " ".join(ws) + '"')
    fielded = st.tuples(st.sampled_from(["title:", "text:", "url:", "source:", ""]),
                        st.one_of(word, phrase)).map("".join)
    return st.one_of(word, phrase, fielded)


queries_text = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" ", " AND ", " OR ", " NOT "]), inner).map("".join),
        st.tuples(inner, st.integers(1, 6), inner).map(lambda t: f"({t[0]}) NEAR/{t[1]} ({t[2]})"),
        inner.map(lambda q: f"({q})"),
    ),
    max_leaves=8,
)


def try_compile(text: str):
    try:
        return compile_query(text)
    except QueryError:
        return None


@settings(max_examples=300)
@given(st.lists(st.one_of(
    st.sampled_from(list('()"“” :*-/') + ["AND", "OR", "NOT", "NEAR/", "NEAR/3", "title:",
                                           "foo:", "kim", "岸田", "0", "9"]),
    st.characters(exclude_categories=())), max_size=40).map("".join))
def test_parser_only_ever_raises_query_error(text):
    try:
        query = compile_query(text, rule="r")
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        assert exc.rule == "r"
    else:
        assert compile_query(str(query)).node == query.node
        query.match(Document.build(title=text, text=text))


@settings(max_examples=300)
@given(queries_text)
def test_canonical_form_round_trips(text):
    query = try_compile(text)
    assume(query is not None)
    again = compile_query(str(query))
    assert again.node == query.node
    assert str(again) == str(query)


@settings(max_examples=200)
@given(documents(), st.data())
def test_a_phrase_from_the_document_matches_it(doc, data):
    name = data.draw(st.sampled_from(["title", "text"]))
    text = doc.text_of(name)
    tokens = tokenize(text)
    assume(tokens)
    i = data.draw(st.integers(0, len(tokens) - 1))
    j = data.draw(st.integers(i + 1, min(len(tokens), i + 5)))
    phrase = text[tokens[i].start:tokens[j - 1].end]
    assume('"' not in phrase and "“" not in phrase and "”" not in phrase)
    result = compile_query(f'{name}:"{phrase}"').match(doc)
    assert result is not None, (phrase, text)
    assert any(fold(h.text) and h.field == name for h in result.hits)


@settings(max_examples=100)
@given(st.lists(queries_text, min_size=1, max_size=12), st.lists(documents(), max_size=4))
def test_ruleset_agrees_with_matching_one_by_one(texts, docs):
    queries = {f"rule{i}": q for i, q in enumerate(map(try_compile, texts)) if q is not None}
    rules = RuleSet(queries)
    for doc in docs:
        expected = {name: q.match(doc) for name, q in queries.items()}
        expected = {name: r for name, r in expected.items() if r is not None}
        got = rules.match(doc)
        assert list(got) == list(expected)
        for name in got:
            assert got[name].hits == expected[name].hits


@settings(max_examples=200)
@given(queries_text, documents())
def test_hits_are_positive_terms_found_in_the_document(text, doc):
    query = try_compile(text)
    assume(query is not None)
    result = query.match(doc)
    if result is None:
        return
    assert result.hits
    for hit in result.hits:
        assert doc.text_of(hit.field)[hit.start:hit.end] == hit.text
    snippet, spans = result.highlighted()
    assert all(0 <= a < b <= len(snippet) for a, b in spans)


def test_ast_str_is_readable():
    q = compile_query('Kim Jong-un OR title:(summit NEAR/3 "prime minister*") NOT sushi')
    assert str(q) == ('(("Kim" AND "Jong-un") OR ((title:"summit" NEAR/3 '
                      'title:"prime minister*") AND (NOT "sushi")))')
    assert isinstance(q.node, Or)
    assert isinstance(q.node.children[1].children[0], Near)
    assert isinstance(q.node.children[1].children[1], Not)


# ------------------------------------------------------- the engine's loose ends

def test_a_near_inside_a_near_measures_from_its_terms_not_their_stretch():
    # "summit" is 6 words from Kishida and 11 from Kim: inside the stretch
    # Kishida…Kim, but within 2 words of neither.
    text = "Kishida a b c d e summit f g h i j Kim"
    query = compile_query("summit NEAR/2 (Kishida NEAR/20 Kim)")
    assert query.match(text_doc(text)) is None
    assert query.match(text_doc("Kishida said a summit with Kim")) is not None


def test_no_silent_cap_on_occurrences():
    # A Japanese term that occurs 10,050 times still matches, at its last occurrence too.
    text = "首相。" * 10_049 + "首相と金正恩総書記"
    result = compile_query("首相 NEAR/2 金正恩").match(text_doc(text))
    assert result is not None
    assert sum(h.term == "首相" for h in result.hits) >= 1
    assert len(compile_query("首相").match(text_doc(text)).hits) == 10_050


def test_matched_lists_words_as_the_text_wrote_them():
    doc = Document.build(title="Families of the abducted meet Kim Jong-un's envoy",
                         text="The abductees' families said ABDUCTIONS must end.")
    result = compile_query('abduct* AND "Kim Jong Un"').match(doc)
    assert result.words == ["abducted", "Kim Jong-un", "abductees", "ABDUCTIONS"]
    assert result.terms == ["abduct*", "Kim Jong Un"]


@pytest.mark.parametrize("query, text, reasons", [
    ("Kishida AND summit", "Kishida spoke.", ["'summit' is not in the title or text"]),
    ("(Kishida OR Ishiba) AND Kim", "Kim spoke.",
     ["none of 'Kishida', 'Ishiba' is in the article"]),
    ("Kishida NEAR/2 Kim", "Kishida a b c d e f Kim",
     ["Kishida … Kim: 7 words apart at the closest, NEAR/2 needs at most 2"]),
    ("Kim NOT Kardashian", "Kim Kardashian sang",
     ["excluded by NOT Kardashian: found Kardashian"]),
    ("title:Kim", "Kim spoke", ["'Kim' is not in the title"]),
])
def test_explain_says_which_part_failed_and_how_close(query, text, reasons):
    q = compile_query(query)
    assert q.match(text_doc(text)) is None
    assert q.explain(text_doc(text)) == reasons


def test_a_word_inside_a_longer_match_is_not_listed_again():
    doc = Document.build(title="Kishida and Kim Jong-un", text="Kim met no one.")
    result = compile_query('Kishida AND (Kim OR "Kim Jong Un")').match(doc)
    assert result.words == ["Kishida", "Kim Jong-un", "Kim"]   # the text's Kim stands alone
