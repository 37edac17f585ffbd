"""Hybrid search: vector + keyword (FTS5 BM25) fused by reciprocal rank, near-copies collapsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.models import Context, Hit
from rag.store import Store

RRF_K = 60
DUPLICATE_COSINE = 0.9  # passages this close say the same thing (syndicated or rewritten copies)
DUPLICATE_JACCARD = 0.5
# Texts sharing half their word trigrams are far more alike than this, with MiniLM and with the
# test fakes' bag-of-words vectors alike; below it the (slower) shingle comparison is skipped.
JACCARD_MIN_COSINE = 0.6


def _shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return frozenset(tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1)))


def _jaccard(sa: frozenset[tuple[str, ...]], sb: frozenset[tuple[str, ...]]) -> float:
    return len(sa & sb) / (len(sa | sb) or 1)


def jaccard(a: str, b: str) -> float:
    return _jaccard(_shingles(a), _shingles(b))


@dataclass
class _Candidate:
    hit: Hit
    rrf: float = 0.0
    cosine: float = 0.0
    vector: np.ndarray | None = None
    _shingles: frozenset[tuple[str, ...]] | None = None

    def shingles(self) -> frozenset[tuple[str, ...]]:
        if self._shingles is None:
            self._shingles = _shingles(self.hit.text)
        return self._shingles


class Retriever:
    """``per_article`` caps the passages one article may fill while others have relevant ones, so a
    question whose answer spans outlets sees more than one article's account (0: no cap)."""

    def __init__(self, store: Store, embeddings: Embeddings, top_k: int = 4, candidates: int = 20,
                 keyword_weight: float = 1.0, per_article: int = 0) -> None:
        self.store, self.embeddings = store, embeddings
        self.top_k, self.candidates, self.keyword_weight = top_k, candidates, keyword_weight
        self.per_article = per_article

    def search(self, query: str) -> list[Context]:
        """The top-k passages for ``query``, numbered 1..k, each with its cosine similarity."""
        qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float64)
        fused: dict[str, _Candidate] = {}
        for weight, hits in ((1.0, self.store.vector_search(qvec, self.candidates)),
                             (self.keyword_weight, self.store.keyword_search(query, self.candidates))):
            for rank, hit in enumerate(hits):
                cand = fused.get(hit.chunk_id)
                if cand is None:
                    cand = fused[hit.chunk_id] = _Candidate(hit)
                if cand.vector is None and hit.embedding is not None:  # vector hits come with metadata
                    cand.hit, cand.vector = hit, hit.embedding
                cand.rrf += weight / (RRF_K + rank + 1)
        missing = [cid for cid, cand in fused.items() if cand.vector is None]  # keyword-only hits
        for cid, (meta, vector) in self.store.chunk_meta(missing).items():
            cand = fused[cid]
            cand.hit = Hit(cid, cand.hit.article_id, cand.hit.text, cand.hit.score, meta)
            cand.vector = np.asarray(vector)
        for cand in fused.values():
            if cand.vector is not None:
                cand.cosine = float(cand.vector @ qvec)
        kept: list[tuple[_Candidate, list[str]]] = []
        spare: list[_Candidate] = []  # over the per-article cap: only to fill places nothing else takes
        for cand in sorted(fused.values(), key=_rank):
            copy_of = next((k for k in kept if _same_passage(cand, k[0])), None)
            if copy_of is not None:
                if cand.hit.article_id != copy_of[0].hit.article_id and cand.hit.article_id not in copy_of[1]:
                    copy_of[1].append(cand.hit.article_id)
                continue
            if self.per_article and sum(k.hit.article_id == cand.hit.article_id for k, _ in kept) >= self.per_article:
                spare.append(cand)
            elif len(kept) < self.top_k:
                kept.append((cand, []))
        kept += [(cand, []) for cand in spare[:self.top_k - len(kept)]]
        kept.sort(key=lambda k: _rank(k[0]))
        return [_context(n, cand, also) for n, (cand, also) in enumerate(kept, 1)]


def _rank(c: _Candidate) -> tuple[float, float]:
    return -c.rrf, -c.cosine


def _same_passage(a: _Candidate, b: _Candidate) -> bool:
    """Near-copies: cosine >= DUPLICATE_COSINE, or word-trigram Jaccard >= DUPLICATE_JACCARD; the cosine is
    checked first and the shingles (cached per candidate) only for pairs that are at all alike."""
    if a.vector is not None and b.vector is not None:
        cosine = float(a.vector @ b.vector)
        if cosine >= DUPLICATE_COSINE:
            return True
        if cosine < JACCARD_MIN_COSINE:
            return False
    return _jaccard(a.shingles(), b.shingles()) >= DUPLICATE_JACCARD


def _context(n: int, cand: _Candidate, also: list[str]) -> Context:
    m = cand.hit.meta
    return Context(n=n, chunk_id=cand.hit.chunk_id, article_id=cand.hit.article_id, text=cand.hit.text,
                   score=round(cand.cosine, 4), title=m.get("title"), outlet=m.get("outlet"),
                   date=m.get("date"), author=m.get("author"), start=int(m.get("start", 0)),
                   also_reported_by=tuple(also))
