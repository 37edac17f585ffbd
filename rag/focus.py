"""Send the model the sentences that answer, not whole passages: on two cores every prompt token
costs time before the first answer word, and a 1.5B model is distracted by the rest.

Sentences are ranked by embedding similarity to the question plus the share of the question's
content words they hold; the best ``limit`` are kept in their passage's order, each passage keeps
its number, so citations still point at the passage the user sees in full."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.chunking import sentence_spans
from rag.claims import content_words
from rag.models import Context

WORD_WEIGHT = 0.1  # how much a full content-word match adds to a cosine similarity
GAP = " … "  # marks left-out text between kept sentences


def focus(question: str, contexts: Sequence[Context], embeddings: Embeddings, limit: int) -> tuple[Context, ...]:
    """``contexts`` with each text cut to its kept sentences; passages left with none are dropped."""
    spans = [(c, a, b) for c in contexts for a, b in sentence_spans(c.text)]
    if limit <= 0 or len(spans) <= limit:
        return tuple(contexts)
    qvec = np.asarray(embeddings.embed_query(question))
    vecs = np.asarray(embeddings.embed_documents([c.text[a:b] for c, a, b in spans]))
    asked = content_words(question)
    scores = vecs @ qvec + WORD_WEIGHT * np.array(
        [len(asked & content_words(c.text[a:b])) / max(1, len(asked)) for c, a, b in spans])
    keep = set(np.argsort(-scores, kind="stable")[:limit].tolist())
    out = []
    for ctx in contexts:
        kept = [(a, b) for i, (c, a, b) in enumerate(spans) if c is ctx and i in keep]
        if kept:
            out.append(ctx.model_copy(update={"text": _join(ctx.text, kept)}))
    return tuple(out)


def _join(text: str, kept: list[tuple[int, int]]) -> str:
    parts = []
    for i, (a, b) in enumerate(kept):
        if i and a > kept[i - 1][1] + 2:
            parts.append(GAP.strip())
        parts.append(text[a:b].strip())
    return " ".join(parts)
