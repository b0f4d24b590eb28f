"""Fingerprints: near-duplicates found, rewrites not; stories grouped; stable bytes and keys.

The pairs in testdata/pairs are written for these tests: one wire report on
Kishida's summit offer, its copies, another outlet's rewrite, a feed summary, a
missile launch of the same week, and Japanese counterparts. The first line of a
file is the headline, the rest the body.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.dedup import fingerprint as fp
from monitor.text.normalise import normalise

PAIRS = Path(__file__).parent / "testdata" / "pairs"
ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> tuple[str, str]:
    title, _, body = (PAIRS / f"{name}.txt").read_text(encoding="utf-8").partition("\n\n")
    return title.strip(), body.strip()


def text_signature(name: str) -> fp.Signature:
    return fp.signature(normalise(load(name)[1]))


def story(name: str) -> fp.Signature:
    return fp.story_signature(*load(name))


NEAR_DUPLICATES = [
    ("en_original", "en_syndicated"),   # new headline, "first appeared" line, last paragraph cut
    ("en_original", "en_light_edit"),   # tenses, a replaced sentence, typos fixed, byline
    ("en_syndicated", "en_light_edit"),
    ("ja_original", "ja_light_edit"),
]
DISTINCT = [
    ("en_original", "en_rewrite"),      # same news, another outlet's own words
    ("en_original", "en_summary"),
    ("en_original", "en_missile"),
    ("en_rewrite", "en_missile"),
    ("ja_original", "ja_other"),
    ("ja_light_edit", "ja_other"),
]
SAME_STORY = NEAR_DUPLICATES + [
    ("en_original", "en_rewrite"),
    ("en_light_edit", "en_rewrite"),
    ("en_syndicated", "en_rewrite"),
    ("en_original", "en_summary"),
    ("en_rewrite", "en_summary"),
]
OTHER_STORY = [
    ("en_original", "en_missile"),
    ("en_syndicated", "en_missile"),
    ("en_rewrite", "en_missile"),
    ("en_summary", "en_missile"),
    ("ja_original", "ja_other"),
    ("ja_light_edit", "ja_other"),
    ("en_original", "ja_original"),    # one story, two languages: no shared units
]


def test_parameters_are_consistent():
    assert fp.BANDS * fp.ROWS == fp.NUM_PERM
    assert fp.STORY_BANDS * fp.STORY_ROWS == fp.STORY_NUM_PERM
    assert 0 < fp.STORY_THRESHOLD < fp.DUPLICATE_THRESHOLD < 1


@pytest.mark.parametrize("a,b", NEAR_DUPLICATES)
def test_near_duplicates_are_detected(a, b):
    sa, sb = text_signature(a), text_signature(b)
    assert fp.similarity(sa, sb) >= fp.DUPLICATE_THRESHOLD + 0.1
    assert fp.is_near_duplicate(sa, sb)


@pytest.mark.parametrize("a,b", NEAR_DUPLICATES)
def test_near_duplicates_share_a_band_key(a, b):
    # What lets the store's LSH lookup find the original at all.
    assert set(fp.band_keys(text_signature(a))) & set(fp.band_keys(text_signature(b)))


@pytest.mark.parametrize("a,b", DISTINCT)
def test_distinct_articles_are_not_near_duplicates(a, b):
    sim = fp.similarity(text_signature(a), text_signature(b))
    assert sim < 0.1
    assert not fp.is_near_duplicate(text_signature(a), text_signature(b))


@pytest.mark.parametrize("a,b", SAME_STORY)
def test_reports_on_one_event_are_one_story(a, b):
    assert fp.same_story(story(a), story(b))
    assert set(fp.story_band_keys(story(a))) & set(fp.story_band_keys(story(b)))


@pytest.mark.parametrize("a,b", OTHER_STORY)
def test_other_events_on_the_topic_are_other_stories(a, b):
    assert fp.story_similarity(story(a), story(b)) < fp.STORY_THRESHOLD - 0.05
    assert not fp.same_story(story(a), story(b))


def test_exact_shingles():
    assert fp.shingles("kim jong un said he") == {"kim jong un said", "jong un said he"}
    assert fp.shingles("kishida") == {"kishida"}
    assert fp.shingles("") == set()
    # A Japanese run gives character 4-grams and breaks word runs.
    assert fp.shingles(normalise("首脳会談 G7 サミット")) == {"首脳会談", "g7", "サミット"}
    assert fp.shingles(normalise("岸田首相は会談")) == {
        "岸田首相", "田首相は", "首相は会", "相は会談"}


def test_units_of_a_story_are_content_words():
    units = fp.story_units("Kishida says he wants a summit",
                           "The talks, he said, would be held in 2024.")
    assert units == {"kishida", "wants", "summit", "talks", "held"}
    ja = fp.story_units("首脳会談に意欲", "")
    assert "首脳" in ja and "会談" in ja and "談に" in ja and "に意" in ja
    assert not any(u == "には" for u in fp.story_units("", "会談にはしていない"))


def test_story_lede_is_bounded():
    lede = " ".join(f"word{i:03d}a" for i in range(fp.STORY_LEDE_WORDS))
    late = " ".join(f"late{i:03d}x" for i in range(500))
    units = fp.story_units("", lede + " " + late)
    assert len(units) == fp.STORY_LEDE_WORDS and not any(u.startswith("late") for u in units)


def test_content_hash():
    assert fp.content_hash("kim jong un") == fp.content_hash(normalise("Kim Jong-un"))
    assert fp.content_hash("a") != fp.content_hash("b")
    assert len(fp.content_hash("")) == 64


def test_band_keys_are_signed_64_bit_and_distinct_across_bands():
    sig = text_signature("en_original")
    keys = fp.band_keys(sig)
    assert len(keys) == fp.BANDS == len(set(keys))
    assert all(-2**63 <= k < 2**63 for k in keys)
    story_keys = fp.story_band_keys(story("en_original"))
    assert len(story_keys) == fp.STORY_BANDS == len(set(story_keys))
    assert not set(keys) & set(story_keys)


def test_a_band_key_depends_on_its_band_index():
    # Equal values in two bands must still give two keys.
    sig = fp.Signature([7] * fp.NUM_PERM)
    assert len(set(fp.band_keys(sig))) == fp.BANDS


@pytest.mark.parametrize("sig", [text_signature("en_original"), story("ja_original"),
                                 fp.Signature.empty()])
def test_bytes_round_trip(sig):
    raw = fp.signature_to_bytes(sig)
    assert len(raw) == 4 * len(sig)
    back = fp.signature_from_bytes(raw)
    assert back == sig and back.is_empty == sig.is_empty
    assert fp.signature_to_bytes(back) == raw


@pytest.mark.parametrize("raw", [b"", b"abc", b"\x00" * 5])
def test_bad_bytes_are_refused(raw):
    with pytest.raises(ValueError):
        fp.signature_from_bytes(raw)


def test_signatures_of_different_kinds_do_not_compare():
    with pytest.raises(ValueError):
        fp.similarity(fp.signature("a b c d e"), fp.Signature([1, 2, 3]))


@pytest.mark.parametrize("title,text", [("", ""), ("", "   "), ("—", "…"), ("the", "of and to")])
def test_empty_input_matches_nothing(title, text):
    sig = fp.story_signature(title, text)
    assert sig.is_empty and fp.story_band_keys(sig) == []
    assert not fp.same_story(sig, sig)
    assert not fp.same_story(sig, story("en_original"))
    if not normalise(text):
        empty = fp.signature(normalise(text))
        assert empty.is_empty and fp.band_keys(empty) == []
        assert fp.similarity(empty, empty) == 0.0
        assert not fp.is_near_duplicate(empty, text_signature("en_original"))


def test_short_feed_summary_works():
    title, text = load("en_summary")
    sig = fp.signature(normalise(text))
    assert not sig.is_empty and len(fp.band_keys(sig)) == fp.BANDS
    assert fp.same_story(fp.story_signature(title, text), story("en_original"))


def test_story_signature_accepts_raw_or_normalised_text():
    title, text = load("en_rewrite")
    assert fp.story_signature(title, text) == fp.story_signature(normalise(title), normalise(text))


def test_the_story_signature_from_tokens_is_the_one_from_text():
    # The pipeline hands over the tokens it made for the rules; a report on the
    # same story must get the same signature either way, or stored stories split.
    # Every test article in three languages.
    from monitor.match.query import Document
    files = sorted(PAIRS.glob("*.txt")) + sorted((PAIRS.parent / "eval").rglob("*.txt"))
    assert len(files) > 200
    for path in files:
        title, _, text = path.read_text(encoding="utf-8").partition("\n\n")
        doc = Document.build(title=title, text=text)
        from_tokens = fp.story_signature_of_tokens(doc.fields["title"].norms,
                                                   doc.fields["text"].norms)
        assert from_tokens == fp.story_signature(title, text), path.name


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
texts = st.lists(words, min_size=1, max_size=60).map(" ".join)
mixed = st.text(alphabet=st.sampled_from(list("abc xyz 北朝鮮の首脳会談でーす-,.")),
                min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(st.one_of(texts, mixed))
def test_a_text_is_its_own_duplicate(raw):
    text = normalise(raw)
    sig = fp.signature(text)
    if not text:
        assert sig.is_empty
        return
    assert fp.similarity(sig, sig) == 1.0
    assert fp.similarity(sig, fp.signature(text)) == 1.0
    assert fp.is_near_duplicate(sig, fp.signature_from_bytes(fp.signature_to_bytes(sig)))


@settings(max_examples=40, deadline=None)
@given(texts, texts)
def test_similarity_is_symmetric_and_bounded(a, b):
    sa, sb = fp.signature(a), fp.signature(b)
    assert fp.similarity(sa, sb) == fp.similarity(sb, sa)
    assert 0.0 <= fp.similarity(sa, sb) <= 1.0


def test_estimate_follows_exact_jaccard():
    a, b = normalise(load("en_original")[1]), normalise(load("en_light_edit")[1])
    sa, sb = fp.shingles(a), fp.shingles(b)
    exact = len(sa & sb) / len(sa | sb)
    # 4 standard deviations of the estimate at this Jaccard with NUM_PERM values.
    assert abs(fp.similarity(fp.signature(a), fp.signature(b)) - exact) < (
        4 * (0.25 / fp.NUM_PERM) ** 0.5)


def test_signature_is_the_same_in_another_process():
    # Python's hash() is salted per process (PYTHONHASHSEED); stored signatures
    # and band keys must not depend on it.
    text = normalise(load("ja_original")[1] + " " + load("en_original")[1])
    title, body = load("en_rewrite")
    code = (
        "import sys; from monitor.dedup import fingerprint as fp\n"
        "text = sys.stdin.read()\n"
        "sig = fp.signature(text)\n"
        f"st = fp.story_signature({title!r}, {body!r})\n"
        "print(fp.signature_to_bytes(sig).hex(), fp.band_keys(sig),"
        " fp.signature_to_bytes(st).hex())\n"
    )
    runs = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True,
                             text=True, check=True, cwd=ROOT,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.split(" ", 1)
        runs.add(tuple(out))
    sig = fp.signature(text)
    mine = (fp.signature_to_bytes(sig).hex(),
            f"{fp.band_keys(sig)} {fp.signature_to_bytes(fp.story_signature(title, body)).hex()}\n")
    assert runs == {mine}


def test_short_feed_items_from_one_template_are_not_taken_for_copies(tmp_path):
    """Headline-and-summary items differ in a word or two; each must stay an article."""
    from datetime import datetime

    from monitor.dedup.ingest import Fingerprints, ingest
    from monitor.models import Article
    from storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    now = datetime.now(UTC)
    verdicts = []
    for i, place in enumerate(["Osaka", "Kobe", "Nagoya", "Sendai"]):
        article = Article(url=f"https://example.org/local/{i}", title=f"Local news from {place}",
                          text=f"Local news from {place}: the city council met on Tuesday "
                               f"and discussed the budget for next year.", source="wire")
        with store.exclusive() as tx:
            verdicts.append(ingest(tx, article, Fingerprints.of(article), aliases=[], now=now).kind)
    store.close()
    assert verdicts == ["new"] * 4


_WORDS = st.sampled_from("summit talks minister kishida kim pyongyang tokyo missile launch "
                         "election market rain weather quake".split())


@settings(max_examples=60, deadline=None)
@given(st.lists(_WORDS, min_size=1, max_size=80))
def test_signature_is_multiply_add_shift_minhash_of_the_shingles(words):
    # The definition, written out: the signature's bytes are stored, so a faster
    # computation must give exactly these values.
    import hashlib

    import numpy as np
    text = " ".join(words)
    units = fp.shingles(text)
    x = np.array([int.from_bytes(hashlib.blake2b(u.encode(), digest_size=4).digest(), "little")
                  for u in units], dtype=np.uint64)
    a, b = fp._PERM
    expected = ((np.multiply.outer(a.ravel(), x) + b) >> np.uint64(32)).min(axis=1)
    assert fp.signature(text).values.tolist() == expected.astype(np.uint32).tolist()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_WORDS, min_size=0, max_size=30), min_size=0, max_size=12),
       st.lists(_WORDS, min_size=0, max_size=30), st.sampled_from([0.0, 0.3, 0.5, 0.9]))
def test_best_match_is_the_most_similar_stored_signature_first_of_equals(texts, text, threshold):
    sig = fp.signature(" ".join(text))
    stored = [fp.signature_to_bytes(fp.signature(" ".join(t))) for t in texts]
    expected = None
    for i, blob in enumerate(stored):
        sim = fp.similarity(sig, fp.signature_from_bytes(blob))
        if sim >= threshold and (expected is None or sim > expected[1]):
            expected = (i, sim)
    assert fp.best_match(sig, stored, threshold) == expected
