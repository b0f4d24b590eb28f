"""Folding and tokenisation: the spellings people and sites actually use."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.text.normalise import Token, fold, is_cjk_char, normalise, tokenize


def norms(text: str) -> list[str]:
    return [t.norm for t in tokenize(text)]


@pytest.mark.parametrize("text, expected", [
    # Case, hyphens and every kind of dash are word breaks.
    ("Kim Jong-un", ["kim", "jong", "un"]),
    ("KIM JONG UN", ["kim", "jong", "un"]),
    ("Kim Jong\u2010un", ["kim", "jong", "un"]),     # ‐ hyphen
    ("Kim Jong\u2011un", ["kim", "jong", "un"]),     # ‑ non-breaking hyphen
    ("Kim Jong\u2012un", ["kim", "jong", "un"]),     # ‒ figure dash
    ("Kim Jong\u2013un", ["kim", "jong", "un"]),     # – en dash
    ("Kim Jong\u2014un", ["kim", "jong", "un"]),     # — em dash
    ("Kim Jong\u2015un", ["kim", "jong", "un"]),     # ― horizontal bar
    ("Kim Jong\u2212un", ["kim", "jong", "un"]),     # − minus
    # Apostrophes, dots, slashes, underscores break words too.
    ("Korea's", ["korea", "s"]),
    ("Korea\u2019s", ["korea", "s"]),
    ("Korea\u02bcs", ["korea", "s"]),
    ("U.S./Japan_talks", ["u", "s", "japan", "talks"]),
    # Accents and compatibility forms fold away.
    ("Café NAÏVE Straße", ["cafe", "naive", "strasse"]),
    ("e\u0301te\u0301", ["ete"]),                         # decomposed accents stay inside the word
    ("ＫＩＭ ＪＯＮＧ－ＵＮ ２０２４", ["kim", "jong", "un", "2024"]),
    ("Ｋｉｍ", ["kim"]),
    # Invisible characters do not split a name.
    ("Kishi\u00adda", ["kishida"]),                       # soft hyphen
    ("Kishi\u200bda", ["kishida"]),                       # zero-width space
    ("Kishi\u200dda", ["kishida"]),                       # zero-width joiner
    ("Kishi\u2060da", ["kishida"]),                       # word joiner
    ("\ufeffKishida\u200e", ["kishida"]),                 # BOM, left-to-right mark
    # Controls and lone surrogates are breaks, never errors.
    ("Kim\x00Jong\x07Un", ["kim", "jong", "un"]),
    ("Kim\ud800Jong\udfffUn", ["kim", "jong", "un"]),
    # Hangul is written with spaces: ordinary words.
    ("김정은 위원장", ["김정은", "위원장"]),
    # Letters whose folded form is not one word are breaks.
    ("½", []),
    ("", []),
    ("  \n\t ", []),
])
def test_tokenize_norms(text, expected):
    assert norms(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("岸田文雄首相は、金正恩総書記と", [("岸田文雄首相は", True), ("金正恩総書記と", True)]),
    ("ラーメン", [("ラーメン", True)]),                          # ー belongs to the run
    ("人々", [("人々", True)]),                                  # 々 too
    ("ｶﾞｽ", [("ガス", True)]),                                   # half-width kana, voicing mark kept
    ("ガス", [("ガス", True)]),
    ("キム・ジョンウン", [("キム", True), ("ジョンウン", True)]),  # ・ breaks
    ("G7サミットで", [("g7", False), ("サミットで", True)]),
    ("北朝鮮(DPRK)", [("北朝鮮", True), ("dprk", False)]),
    ("김정은", [("김정은", False)]),
    ("𠮷野家", [("𠮷野家", True)]),                              # outside the BMP
])
def test_cjk_runs(text, expected):
    assert [(t.norm, t.cjk) for t in tokenize(text)] == expected


def test_voicing_marks_are_not_folded_away():
    # Dropping dakuten would make "gas" (ガス) equal "dregs" (カス).
    assert fold("ガス") != fold("カス")
    assert fold("ｶﾞｽ") == fold("ガス")


def test_offsets_point_into_the_original_text():
    text = "Japan’s PM Kishi\u00adda met KIM JONG‑UN; 岸田首相は"
    tokens = tokenize(text)
    assert [text[t.start:t.end] for t in tokens] == [
        "Japan", "s", "PM", "Kishi\u00adda", "met", "KIM", "JONG", "UN", "岸田首相は"]
    assert tokens[3] == Token("kishida", 11, 19, False)


def test_fold():
    assert fold("Kim JONG-Ün") == "kim jong-un"      # punctuation is kept by fold
    assert fold("ＡＢＣ１２３") == "abc123"
    assert fold("Kishi\u00adda") == "kishida"
    assert fold("ΣΊΣΥΦΟΣ") == "σισυφοσ"


def test_normalise():
    assert normalise("  Kim Jong-un,\n\tthe  LEADER! ") == "kim jong un the leader"
    assert normalise("岸田首相は 金正恩") == "岸田首相は 金正恩"
    assert normalise("") == ""


def test_is_cjk_char():
    assert is_cjk_char("岸") and is_cjk_char("ー") and is_cjk_char("ｱ")
    assert not is_cjk_char("김") and not is_cjk_char("a") and not is_cjk_char("、")


@pytest.mark.parametrize("text", [
    "a" * 1_000_000,
    "\u200b" * 1_000_000,
    "a\u200b" * 300_000,
    "a\u0301" * 300_000,
    "岸" * 1_000_000,
    "- " * 500_000,
    "\ud800" * 100_000,
])
def test_hostile_input_is_handled(text):
    tokens = tokenize(text)
    assert all(fold(text[t.start:t.end]) == t.norm for t in tokens[:100])


# Characters that make tokenisation interesting, mixed with arbitrary ones.
TRICKY = list("aZé9-‐‑–—'’ʼ._/ \n\t\u00ad\u200b\u200d\u0301\u3099"
              "岸田ーｶﾞｱ々김ŉ½ßİΣς٣ＫＫ\x00\ud800𠮷")
texts = st.text(alphabet=st.one_of(st.sampled_from(TRICKY),
                                   st.characters(exclude_categories=())), max_size=60)


@settings(max_examples=400)
@given(texts)
def test_offsets_slice_back_to_the_norm(text):
    previous_end = 0
    for tok in tokenize(text):
        assert previous_end <= tok.start < tok.end <= len(text)
        assert fold(text[tok.start:tok.end]) == tok.norm
        assert tok.norm and " " not in tok.norm
        previous_end = tok.end


@settings(max_examples=400)
@given(texts)
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


@settings(max_examples=400)
@given(texts)
def test_normalise_is_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once
    assert [(t.norm, t.cjk) for t in tokenize(once)] == [(t.norm, t.cjk) for t in tokenize(text)]


def test_the_shipped_character_classes_are_the_ones_this_unicode_database_gives():
    # The tokeniser loads its classes from a file built per Unicode version, to
    # spare every process the classification of every code point; a stale file
    # would tokenise differently from the code that claims to define it.
    import json
    import unicodedata

    from monitor.text import normalise as tn
    shipped = json.loads(tn.PATTERNS_FILE.read_text(encoding="ascii"))
    if unicodedata.unidata_version not in shipped:
        pytest.skip(f"no classes shipped for Unicode {unicodedata.unidata_version}: "
                    "run monitor.text.normalise.write_patterns()")
    assert shipped[unicodedata.unidata_version] == tn.built_patterns()
    assert tn._TOKEN_RE.pattern == shipped[unicodedata.unidata_version]["token"]
