"""Hybrid search: vector + keyword (FTS5 BM25) fused by reciprocal rank, near-copies collapsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.models import Context
from rag.store import Hit, Store

RRF_K = 60
DUPLICATE_COSINE = 0.9  # passages this close say the same thing (syndicated or rewritten copies)
DUPLICATE_JACCARD = 0.5


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / (len(sa | sb) or 1)


@dataclass
class _Candidate:
    hit: Hit
    rrf: float = 0.0
    cosine: float = 0.0
    vector: np.ndarray | None = None


class Retriever:
    def __init__(self, store: Store, embeddings: Embeddings, top_k: int = 4, candidates: int = 20,
                 keyword_weight: float = 1.0) -> None:
        self.store, self.embeddings = store, embeddings
        self.top_k, self.candidates, self.keyword_weight = top_k, candidates, keyword_weight

    def search(self, query: str) -> list[Context]:
        """The top-k passages for ``query``, numbered 1..k, each with its cosine similarity."""
        qvec = np.asarray(self.embeddings.embed_query(query))
        fused: dict[str, _Candidate] = {}
        for weight, hits in ((1.0, self.store.vector_search(qvec.tolist(), self.candidates)),
                             (self.keyword_weight, self.store.keyword_search(query, self.candidates))):
            for rank, hit in enumerate(hits):
                cand = fused.setdefault(hit.chunk_id, _Candidate(hit))
                cand.rrf += weight / (RRF_K + rank + 1)
        meta = self.store.chunk_meta(list(fused))
        for cid, cand in fused.items():
            if cid in meta:
                cand.hit = Hit(cid, cand.hit.article_id, cand.hit.text, cand.hit.score, meta[cid][0])
                cand.vector = np.asarray(meta[cid][1])
                cand.cosine = float(cand.vector @ qvec)
        kept: list[tuple[_Candidate, list[str]]] = []
        for cand in sorted(fused.values(), key=lambda c: (-c.rrf, -c.cosine)):
            copy_of = next((k for k in kept if _same_passage(cand, k[0])), None)
            if copy_of is not None:
                if cand.hit.article_id != copy_of[0].hit.article_id and cand.hit.article_id not in copy_of[1]:
                    copy_of[1].append(cand.hit.article_id)
                continue
            if len(kept) < self.top_k:
                kept.append((cand, []))
        return [_context(n, cand, also) for n, (cand, also) in enumerate(kept, 1)]


def _same_passage(a: _Candidate, b: _Candidate) -> bool:
    if a.vector is not None and b.vector is not None and float(a.vector @ b.vector) >= DUPLICATE_COSINE:
        return True
    return jaccard(a.hit.text, b.hit.text) >= DUPLICATE_JACCARD


def _context(n: int, cand: _Candidate, also: list[str]) -> Context:
    m = cand.hit.meta
    return Context(n=n, chunk_id=cand.hit.chunk_id, article_id=cand.hit.article_id, text=cand.hit.text,
                   score=round(cand.cosine, 4), title=m.get("title"), outlet=m.get("outlet"),
                   date=m.get("date"), author=m.get("author"), start=int(m.get("start", 0)),
                   also_reported_by=tuple(also))
