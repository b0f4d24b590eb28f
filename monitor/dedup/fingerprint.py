"""Fingerprints of article text: exact hash, near-duplicate MinHash, story MinHash.

Pure functions, no I/O. ``monitor.dedup.ingest`` stores what these return and asks the
store for candidates; this module only decides what is similar.

Near-duplicates (a syndicated or lightly edited copy of one report)
-------------------------------------------------------------------
``shingles`` turns normalised text into a set: word 4-shingles (four consecutive
words) and, inside runs of scripts written without spaces (Japanese, Chinese;
``textnorm`` keeps each run as one token), character 4-grams. ``signature`` is a
MinHash of that set; ``similarity`` estimates the Jaccard index of two sets.

Why 4: a copy that adds a boilerplate line, cuts a paragraph or fixes typos keeps
most 4-word runs, while another outlet's rewrite in its own words shares almost
none (only quotes and set phrases). Exact Jaccard on tests/testdata/pairs, for
k = 3 / 4 / 5: syndicated copy 0.83 / 0.82 / 0.82, light edit 0.77 / 0.73 / 0.70,
syndicated vs light edit 0.67 / 0.63 / 0.60, rewrite 0.029 / 0.018 / 0.014, other
story 0.01 / 0.00 / 0.00. On the 181 bench articles with planted copies (a
paragraph cut, a boilerplate line added, 2.5 % of words changed) the 5th percentile
copy scores 0.70 / 0.67 / 0.65 (minimum 0.59 / 0.57 / 0.54), and the most similar
pair of distinct articles 0.17 / 0.15 / 0.14. k = 4 keeps both margins. A Japanese
character carries about half a word, so 4-grams: the edited Japanese copy scores
0.75, a different Japanese article on the same subject 0.05.

``DUPLICATE_THRESHOLD`` = 0.5: a copy keeps at least half of the union of its
shingles (roughly a third of an article may be cut or changed). With 128
permutations the estimate's standard deviation at J = 0.5 is 0.044.

LSH (``band_keys``): NUM_PERM 128 = BANDS 32 x ROWS 4, i.e. 32 index rows per
article (10^6 articles: 3.2e7 rows). A pair at Jaccard s shares at least one band
key (becomes a candidate) with probability 1 - (1 - s^4)^32:

    s    0.1    0.2    0.3    0.4    0.5    0.55   0.6    0.65   0.7    0.8
    P  0.003  0.050  0.229  0.564  0.873  0.954  0.988  0.998  1.000  1.000

The knee, (1/32)^(1/4) = 0.42, is under the threshold: copies as edited as the
test pairs and the planted bench copies (>= 0.57) are found >= 95 % of the time,
typical copies (>= 0.65) always, while distinct articles (< 0.2) rarely cost a
verification.

Stories (different outlets' own reports on the same news)
---------------------------------------------------------
``story_signature(title, text)`` is a MinHash over the *content words* of the
headline and the lede (the first STORY_LEDE_WORDS = 100 words): English stopwords
and reporting verbs dropped, numbers dropped, and for Chinese/Japanese the
character bigrams of each run except pure-hiragana ones (particles and verb
endings). Word order is ignored: two outlets tell one event with the same names
and nouns in their own order. Estimated similarity on the test pairs: the rewrite
0.31, a 45-word feed summary 0.28-0.34, copies 0.81-0.91; the missile launch of
the same week 0.06 (English) and 0.06 (Japanese), other pairs <= 0.03. Longer
ledes let the shared topic words (Japan, North Korea, Kishida, Kim) dominate
(whole text: rewrite 0.12 against missile 0.14); 40 words leave too little; and
counting the headline twice pulled the missile story up (its headline shares the
topic words), so it counts once.

``STORY_THRESHOLD`` = 0.15, between the missile (0.06) and the least similar
same-story pair (0.24 exact). STORY_NUM_PERM 128 = STORY_BANDS 64 x STORY_ROWS 2;
P(candidate) = 1 - (1 - s^2)^64:

    s    0.05   0.1    0.15   0.2    0.25   0.3    0.4
    P   0.148  0.474  0.767  0.927  0.984  0.998  1.000

A pair right at the threshold is found 77 % of the time, same-story pairs like the
test ones (>= 0.24) 98 %, and a new article is compared with every article of the
story in the window, so a story of several reports is rarely missed. Same-topic
articles (s ~ 0.1) often become candidates; that is cheap (one 512-byte compare
each), and story band rows are only needed for STORY_WINDOW (7 days), so the store
can index (band_key, time) or drop older rows.

Speed, 1,032-word article, on the shared 2-core dev machine: ``signature`` ~2.0 ms
(shingling 0.6 ms, BLAKE2b of each shingle ~0.9 ms, MinHash 0.3 ms), against
~2.9 ms for ``datasketch.MinHash.update_batch`` on the same shingles; hence our
own numpy MinHash. ``band_keys`` 0.08 ms, ``story_signature`` ~1.2 ms.

Stable across processes, machines and library versions: shingles are hashed with
BLAKE2b (never Python's randomised ``hash()``), and the permutations come from
SHA-256 of a fixed label, not from a NumPy random stream that a NumPy release may
change. Changing any parameter here invalidates stored signatures and band keys.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta

import numpy as np

from monitor.text.normalise import is_cjk_char, normalise

__all__ = [
    "NUM_PERM", "BANDS", "ROWS", "SHINGLE_WORDS", "SHINGLE_CJK_CHARS",
    "DUPLICATE_THRESHOLD", "Signature",
    "content_hash", "shingles", "signature", "signature_to_bytes",
    "signature_from_bytes", "band_keys", "similarity", "is_near_duplicate",
    "STORY_NUM_PERM", "STORY_BANDS", "STORY_ROWS", "STORY_LEDE_WORDS",
    "STORY_THRESHOLD", "STORY_WINDOW",
    "story_units", "story_units_of_tokens", "story_signature", "story_signature_of_tokens",
    "story_band_keys", "story_similarity", "same_story",
]

NUM_PERM = 128
BANDS = 32
ROWS = 4
SHINGLE_WORDS = 4
SHINGLE_CJK_CHARS = 4
DUPLICATE_THRESHOLD = 0.5

STORY_NUM_PERM = 128
STORY_BANDS = 64
STORY_ROWS = 2
STORY_LEDE_WORDS = 100
STORY_THRESHOLD = 0.15
STORY_WINDOW = timedelta(days=7)

assert BANDS * ROWS == NUM_PERM and STORY_BANDS * STORY_ROWS == STORY_NUM_PERM

# A slot no shingle reached. A real signature has (practically) never all slots at
# the maximum, so an all-maximum signature is the empty one and matches nothing.
_EMPTY = np.uint32(0xFFFFFFFF)

_HIRAGANA_ONLY = re.compile("[\u3040-\u309f]+")


class Signature:
    """A MinHash signature: one uint32 per permutation, read-only."""

    __slots__ = ("values", "_empty")

    def __init__(self, values: np.ndarray | Iterable[int]) -> None:
        arr = np.array(values, dtype=np.uint32)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("a signature is a non-empty 1-d array of uint32")
        arr.flags.writeable = False
        self.values = arr
        self._empty: bool | None = None

    @classmethod
    def empty(cls, num_perm: int = NUM_PERM) -> Signature:
        """The signature of a text with no units; similar to nothing, itself included."""
        return cls(np.full(num_perm, _EMPTY, dtype=np.uint32))

    @property
    def is_empty(self) -> bool:
        if self._empty is None:     # values are read-only: computed once
            self._empty = bool((self.values == _EMPTY).all())
        return self._empty

    def __len__(self) -> int:
        return int(self.values.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        return np.array_equal(self.values, other.values)

    def __hash__(self) -> int:
        return hash(self.values.tobytes())

    def __repr__(self) -> str:
        if self.is_empty:
            return f"Signature.empty({len(self)})"
        return f"Signature({len(self)} perms, {self.values[:4].tolist()}...)"


# --- hashing ------------------------------------------------------------------

def _permutations(label: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) for n hash functions h(x) = ((a*x + b) mod 2^64) >> 32 on 32-bit x.

    Multiply-add-shift (Dietzfelbinger 1996) is a 2-independent family from 32 to
    32 bits, computed with numpy's wrapping uint64 arithmetic and no modulo. Its
    inputs are already BLAKE2b hashes, so they carry no structure of their own.
    """
    a = np.empty(n, dtype=np.uint64)
    b = np.empty(n, dtype=np.uint64)
    for i in range(n):
        digest = hashlib.sha256(f"{label}/{i}".encode()).digest()
        a[i] = int.from_bytes(digest[:8], "little") | 1
        b[i] = int.from_bytes(digest[8:16], "little")
    return a.reshape(n, 1), b.reshape(n, 1)


_PERM = _permutations("monitor.fingerprint/v1", NUM_PERM)
_STORY_PERM = _permutations("monitor.fingerprint.story/v1", STORY_NUM_PERM)
_SHIFT = np.uint64(32)


def _minhash(units: Iterable[str], perm: tuple[np.ndarray, np.ndarray]) -> Signature:
    a, b = perm
    digests = b"".join([hashlib.blake2b(u.encode("utf-8"), digest_size=4).digest()
                        for u in units])
    if not digests:
        return Signature.empty(a.shape[0])
    x = np.frombuffer(digests, dtype="<u4").astype(np.uint64)
    # (perms x units), in place: the temporaries, not the arithmetic, cost the time.
    # The shift comes after the minimum, on one value per permutation: dropping the
    # low 32 bits keeps the order, so min(h >> 32) == min(h) >> 32.
    h = np.multiply.outer(a.ravel(), x)
    h += b
    return Signature(h.min(axis=1) >> _SHIFT)


def _band_keys(sig: Signature, bands: int, rows: int, person: bytes) -> list[int]:
    if sig.is_empty:
        return []
    if len(sig) != bands * rows:
        raise ValueError(f"signature has {len(sig)} values, expected {bands * rows}")
    raw = sig.values.astype("<u4").tobytes()
    width = rows * 4
    keys = []
    for band in range(bands):
        digest = hashlib.blake2b(band.to_bytes(2, "little") + raw[band * width:(band + 1) * width],
                                 digest_size=8, person=person).digest()
        keys.append(int.from_bytes(digest, "little", signed=True))
    return keys


def _jaccard_estimate(a: Signature, b: Signature) -> float:
    if len(a) != len(b):
        raise ValueError(f"signatures of different lengths ({len(a)} and {len(b)})")
    if a.is_empty or b.is_empty:
        return 0.0
    return float(np.count_nonzero(a.values == b.values)) / len(a)


# --- near-duplicates ----------------------------------------------------------

def content_hash(normalised_text: str) -> str:
    """Hex SHA-256 of the normalised text (the exact-duplicate key)."""
    return hashlib.sha256(normalised_text.encode("utf-8")).hexdigest()


def _pieces(normalised_text: str) -> tuple[list[list[str]], list[str]]:
    """Split normalised text into runs of words and runs of CJK characters.

    ``normalise`` makes each run of a script written without spaces a token of
    its own (``textnorm.is_cjk_char``). A CJK run interrupts a word run, so no
    word shingle spans a Japanese clause.
    """
    tokens = normalised_text.split()
    if normalised_text.isascii():
        return ([tokens] if tokens else []), []
    return _runs(tokens)


def _runs(tokens: list[str]) -> tuple[list[list[str]], list[str]]:
    """``_pieces`` of text already split into its normalised tokens."""
    word_runs: list[list[str]] = []
    cjk_runs: list[str] = []
    words: list[str] = []
    for token in tokens:
        if not token.isascii() and is_cjk_char(token[0]):
            if words:
                word_runs.append(words)
                words = []
            cjk_runs.append(token)
        else:
            words.append(token)
    if words:
        word_runs.append(words)
    return word_runs, cjk_runs


def _grams(seq: Sequence[str], n: int, join: Callable[[Sequence[str]], str]) -> Iterator[str]:
    if len(seq) <= n:
        yield join(seq)
    else:
        for i in range(len(seq) - n + 1):
            yield join(seq[i:i + n])


def shingles(normalised_text: str) -> set[str]:
    """Word SHINGLE_WORDS-shingles, and character SHINGLE_CJK_CHARS-grams in CJK runs.

    A run shorter than its shingle size is one shingle by itself, so a short text
    still has a fingerprint. Word shingles are the words joined by one space.
    """
    word_runs, cjk_runs = _pieces(normalised_text)
    units: set[str] = set()
    for run in word_runs:
        units.update(_grams(run, SHINGLE_WORDS, " ".join))
    for chars in cjk_runs:
        units.update(_grams(chars, SHINGLE_CJK_CHARS, "".join))
    return units


def signature(normalised_text: str) -> Signature:
    """MinHash (NUM_PERM permutations) of ``shingles(normalised_text)``."""
    return _minhash(shingles(normalised_text), _PERM)


def signature_to_bytes(sig: Signature) -> bytes:
    """4 bytes per permutation, little-endian: 512 bytes for NUM_PERM = 128."""
    return sig.values.astype("<u4").tobytes()


def signature_from_bytes(b: bytes) -> Signature:
    if not b or len(b) % 4:
        raise ValueError(f"a stored signature is a non-empty multiple of 4 bytes, got {len(b)}")
    return Signature(np.frombuffer(b, dtype="<u4"))


def band_keys(sig: Signature) -> list[int]:
    """One signed 64-bit key per LSH band (BANDS keys; none for the empty signature).

    The band index is hashed in, so equal values in different bands give
    different keys and one index over (band_key) serves every band.
    """
    return _band_keys(sig, BANDS, ROWS, b"nm-dedup-band")


def best_match(sig: Signature, stored: list[bytes], threshold: float) -> tuple[int, float] | None:
    """The index in ``stored`` (signatures as stored) of the one most similar to
    ``sig`` with a similarity of at least ``threshold``, and that similarity; the
    first of equals; None when none reaches it. Equal, pair by pair, to
    ``similarity(sig, signature_from_bytes(b))``, but one array operation for all
    the candidates instead of one per candidate."""
    if not stored:
        return None
    width = len(sig) * 4
    if sig.is_empty or any(len(b) != width for b in stored):
        best = None
        for i, blob in enumerate(stored):
            sim = _jaccard_estimate(sig, signature_from_bytes(blob))
            if sim >= threshold and (best is None or sim > best[1]):
                best = (i, sim)
        return best
    matrix = np.frombuffer(b"".join(stored), dtype="<u4").reshape(len(stored), len(sig))
    same = np.count_nonzero(matrix == sig.values, axis=1)
    same[(matrix == _EMPTY).all(axis=1)] = 0        # an empty stored signature: similar to nothing
    i = int(np.argmax(same))
    sim = float(same[i]) / len(sig)
    return (i, sim) if sim >= threshold else None


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard index of the two shingle sets (0.0 if either is empty)."""
    return _jaccard_estimate(a, b)


def is_near_duplicate(a: Signature, b: Signature) -> bool:
    return similarity(a, b) >= DUPLICATE_THRESHOLD


# --- stories ------------------------------------------------------------------

# Function words, plus the verbs and titles of reporting ("said", "told", "mr")
# that every article has whatever it reports.
_STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because
been before being below between both but by can cannot could couldn did didn do does
doesn doing don down during each few for from further had hadn has hasn have haven
having he her here hers herself him himself his how i if in into is isn it its itself
just let ll me more most much must mustn my myself no nor not now of off on once only
or other ought our ours ourselves out over own re s same shan she should shouldn so
some such t than that the their theirs them themselves then there these they this
those through to too under until up upon us ve very was wasn we were weren what when
where which while who whom why will with won would wouldn you your yours yourself
yourselves
said says say saying told tells tell according added adding asked reported reports
reporting report statement stated mr mrs ms dr also however meanwhile still yet
would one two new like including since within among via per year years
""".split())


def story_units(title: str, text: str) -> set[str]:
    """What a story signature is made of: content words of headline and lede.

    ``title`` and ``text`` may be raw or normalised (normalising is idempotent).
    """
    # Only the lede is used, so only a generous prefix of the text is normalised.
    lede = (text or "")[:STORY_LEDE_WORDS * 20]
    return story_units_of_tokens(normalise(title or "").split(), normalise(lede).split())


def story_units_of_tokens(title: list[str], text: list[str]) -> set[str]:
    """``story_units`` of a headline and a text already normalised and split into
    their tokens (``Field.norms``), so that nothing is tokenised twice. The same
    units, unless the text's first 100 words run past its first 2,000 characters,
    where ``story_units`` cuts the raw text."""
    return _content_units(title, None) | _content_units(text, STORY_LEDE_WORDS)


def _content_units(tokens: list[str], max_words: int | None) -> set[str]:
    if max_words is not None:
        tokens = _lede(tokens, max_words)
    word_runs, cjk_runs = _runs(tokens)
    units = {w for run in word_runs for w in run
             if len(w) > 1 and w not in _STOPWORDS and not w.isdigit()}
    for run in cjk_runs:
        for gram in _grams(run, 2, "".join):
            if not _HIRAGANA_ONLY.fullmatch(gram):
                units.add(gram)
    return units


def _lede(tokens: list[str], max_words: int) -> list[str]:
    """The first ``max_words`` words; a CJK run counts as one word per 2 characters."""
    out: list[str] = []
    budget = max_words
    for token in tokens:
        if budget <= 0:
            break
        cjk = not token.isascii() and is_cjk_char(token[0])
        cost = max(1, len(token) // 2) if cjk else 1
        if cost > budget:
            if budget > 0 and cjk:
                out.append(token[:budget * 2])
            break
        out.append(token)
        budget -= cost
    return out


def story_signature(title: str, text: str) -> Signature:
    """MinHash (STORY_NUM_PERM) of ``story_units(title, text)``; empty if none."""
    return _minhash(story_units(title, text), _STORY_PERM)


def story_signature_of_tokens(title: list[str], text: list[str]) -> Signature:
    """``story_signature`` from the normalised tokens (``story_units_of_tokens``)."""
    return _minhash(story_units_of_tokens(title, text), _STORY_PERM)


def story_band_keys(sig: Signature) -> list[int]:
    """STORY_BANDS signed 64-bit keys, a key space apart from ``band_keys``."""
    return _band_keys(sig, STORY_BANDS, STORY_ROWS, b"nm-story-band")


def story_similarity(a: Signature, b: Signature) -> float:
    return _jaccard_estimate(a, b)


def same_story(a: Signature, b: Signature) -> bool:
    return story_similarity(a, b) >= STORY_THRESHOLD
