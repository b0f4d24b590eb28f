"""Is this article new, a copy of one already stored, or part of a known story?

Layers, cheapest first, all decided inside one exclusive store transaction so
that two processes can never both take the same report for new:

1. canonical URL (the entry's and the page's own <link rel="canonical">);
2. exact hash of the normalised text;
3. near-duplicate: MinHash signature, candidates by LSH band keys kept in the
   store, verified by estimated Jaccard (``fingerprint.DUPLICATE_THRESHOLD``);
4. story: a looser signature over the headline and lede groups different
   articles on the same news within ``fingerprint.STORY_WINDOW``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from monitor.dedup import fingerprint
from monitor.models import Article, DedupVerdict
from monitor.text.normalise import normalise
from storage.base import NewArticle, Transaction

# Shorter texts (a headline and a one-line feed summary) share too few shingles
# for a similarity to mean anything: two different items from one template
# ("Local news item 1", "... item 2") would look like copies. Below this they are
# recognised by URL and exact text only, never suppressed as near-duplicates.
NEAR_DUPLICATE_MIN_WORDS = 40


@dataclass
class Fingerprints:
    """Computed once per article, outside the transaction (pure CPU work)."""

    content_hash: str
    signature: fingerprint.Signature | None
    band_keys: list[int]
    story_signature: fingerprint.Signature | None
    story_band_keys: list[int]
    words: int = 0
    search_text: str = ""      # folded title and text, for `search`'s prefilter

    @classmethod
    def of(cls, article: Article, normalised: str | None = None,
           normalised_title: str | None = None) -> Fingerprints:
        """``normalised``, ``normalised_title``: the normalised text (or the title when
        there is no text) and title, when the caller has them already."""
        norm = normalised if normalised is not None else normalise(article.text or article.title)
        title = normalised_title if normalised_title is not None else normalise(article.title)
        return cls._make(article, norm, title,
                         fingerprint.story_signature(article.title, article.text))

    @classmethod
    def of_tokens(cls, article: Article, title: list[str], text: list[str], *,
                  story: bool = True) -> Fingerprints:
        """The fingerprints of an article whose title and text are already tokenised
        (``Field.norms``: the tokens ``normalise`` joins). ``story``: whether the
        article needs a story (see ``monitor.pipeline.process``); without one it has
        no story signature and is filed under no story band."""
        norm = " ".join(text if article.text else title)
        return cls._make(article, norm, " ".join(title),
                         fingerprint.story_signature_of_tokens(title, text) if story else None)

    @classmethod
    def _make(cls, article: Article, norm: str, title: str,
              story: fingerprint.Signature | None) -> Fingerprints:
        sig = fingerprint.signature(norm) if norm else None
        return cls(
            words=norm.count(" ") + 1 if norm else 0,
            search_text=f"{title} {norm}" if article.text else norm,
            content_hash=fingerprint.content_hash(norm),
            signature=sig,
            band_keys=fingerprint.band_keys(sig) if sig is not None else [],
            story_signature=story,
            story_band_keys=fingerprint.story_band_keys(story) if story is not None else [],
        )


@dataclass
class Verdict:
    kind: DedupVerdict
    article_id: int | None    # the stored article: the new one, or the original
    story_id: str | None = None
    similarity: float | None = None

    @property
    def is_new(self) -> bool:
        return self.kind == "new"


def ingest(tx: Transaction, article: Article, fp: Fingerprints, *, aliases: list[str],
           now: datetime) -> Verdict:
    """Decide what ``article`` is and store it accordingly (inside ``tx``)."""
    existing = tx.article_id_by_url([article.url, *aliases])
    if existing is not None:
        return Verdict("url", existing)

    kind: DedupVerdict = "new"
    similarity: float | None = None
    original = tx.article_id_by_hash(fp.content_hash)
    if original is not None:
        kind, similarity = "exact", 1.0
    elif fp.signature is not None and fp.words >= NEAR_DUPLICATE_MIN_WORDS:
        candidates = tx.band_candidates(fp.band_keys)
        best = fingerprint.best_match(fp.signature, [blob for _, blob in candidates],
                                      fingerprint.DUPLICATE_THRESHOLD)
        if best is not None:
            original, similarity = candidates[best[0]][0], best[1]
            kind = "near"

    story_id = None
    if original is None:
        story_id = _story_for(tx, fp, now) or uuid.uuid4().hex

    article_id = tx.insert_article(NewArticle(
        url=article.url, guid=article.guid, source=article.source, title=article.title,
        text=article.text, author=article.author, site_name=article.site_name,
        language=article.language, published=article.published, fetched_at=now,
        extracted=article.extracted, content_hash=fp.content_hash,
        signature=(fingerprint.signature_to_bytes(fp.signature)
                   if fp.signature is not None else None),
        band_keys=fp.band_keys,
        story_signature=(fingerprint.signature_to_bytes(fp.story_signature)
                         if fp.story_signature is not None else None),
        story_band_keys=fp.story_band_keys,
        story_id=story_id, duplicate_of=original, aliases=aliases,
        search_text=fp.search_text,
    ))
    if original is not None:
        return Verdict(kind, original, similarity=similarity)
    return Verdict("new", article_id, story_id=story_id)


def _story_for(tx: Transaction, fp: Fingerprints, now: datetime) -> str | None:
    if fp.story_signature is None:
        return None
    candidates = tx.story_candidates(fp.story_band_keys, since=now - fingerprint.STORY_WINDOW)
    best = fingerprint.best_match(fp.story_signature, [blob for _, _, blob in candidates],
                                  fingerprint.STORY_THRESHOLD)
    return candidates[best[0]][1] if best else None
