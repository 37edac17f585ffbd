"""Hybrid retrieval: one Chroma round trip for vector hits, near-copies collapsed (cosine first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.chain import Chain
from rag.chunking import chunk_article
from rag.ingest import fingerprint
from rag.loaders import make_article
from rag.models import Hit
from rag.providers import get_embeddings, make_backend
from rag.retrieval import Retriever, _Candidate, _same_passage
from rag.store import Store

from .conftest import fake_settings

EMB = get_embeddings("fake")
PARA = ("Kosovo agreed to host fifty deportees from the United States under a one-year deal. "
        "The government in Pristina said the people would stay in a reception centre near the capital.")


def _cand(text: str, vector: list[float] | None) -> _Candidate:
    return _Candidate(Hit("c", "a", text, 0.0, {}), vector=None if vector is None else np.asarray(vector))


def test_chunk_meta_is_fetched_only_for_keyword_only_hits(seeded_store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    real = seeded_store.chunk_meta

    def chunk_meta(ids: list[str]) -> Any:
        asked.append(list(ids))
        return real(ids)

    monkeypatch.setattr(seeded_store, "chunk_meta", chunk_meta)
    question = "Who is the Rwandan foreign minister Nduhungirehe?"
    contexts = Retriever(seeded_store, EMB, top_k=4, candidates=5).search(question)
    vector_ids = {h.chunk_id for h in seeded_store.vector_search(EMB.embed_query(question), 5)}
    keyword_ids = {h.chunk_id for h in seeded_store.keyword_search(question, 5)}
    assert len(asked) <= 1 and set(asked[0] if asked else []) == keyword_ids - vector_ids
    assert contexts and all((c.title or c.outlet) and c.score != 0 for c in contexts)  # metadata and cosine
    assert any("Nduhungirehe" in c.text for c in contexts)


def test_a_syndicated_copy_is_collapsed_into_one_passage(store: Store) -> None:
    for aid, outlet in (("wire", "Wire"), ("paper", "Paper")):
        art = make_article(aid, PARA, None, {"outlet": outlet})
        chunks = chunk_article(art, 200)
        store.write([(art, fingerprint(art, 200, 1), chunks)], EMB.embed_documents([c.text for c in chunks]))
    (ctx,) = Retriever(store, EMB, top_k=4).search("How many deportees will Kosovo host?")
    assert {ctx.article_id, *ctx.also_reported_by} == {"wire", "paper"}


def test_near_copy_check_uses_the_cosine_first() -> None:
    text = "The council approved the harbour budget on Tuesday after a long debate."
    assert _same_passage(_cand(text, [1.0, 0.0]), _cand("something else entirely", [1.0, 0.0]))  # cosine 1
    alike = [0.7, float(np.sqrt(1 - 0.49))]  # cosine 0.7: alike enough to compare the words
    assert _same_passage(_cand(text, [1.0, 0.0]), _cand(text, alike))
    assert not _same_passage(_cand(text, [1.0, 0.0]), _cand(text, [0.0, 1.0]))  # cosine 0: words not compared
    assert _same_passage(_cand(text, None), _cand(text + " More.", None))  # no vectors: the words decide
    assert not _same_passage(_cand(text, None), _cand("A different story about a football match.", None))


def test_per_article_cap_lets_other_articles_in_and_fills_up_when_none_are_left(store: Store) -> None:
    long = ("Kosovo signed the deportees deal in June. The deportees deal gives Kosovo a grant for schools. "
            "Critics of the deportees deal in Kosovo marched on Sunday. The deportees deal ends after one year in "
            "Kosovo. Kosovo lawmakers debated the deportees deal for hours. A camp near Kosovo's capital will "
            "house people under the deportees deal.")
    others = {"salvador": "El Salvador received people from the United States in March.",
              "panama": "Panama received a group of migrants last year."}
    for aid, text in (("long", long), *others.items()):
        art = make_article(aid, text, None, {"outlet": aid})
        chunks = chunk_article(art, 16)
        store.write([(art, fingerprint(art, 16, 1), chunks)], EMB.embed_documents([c.text for c in chunks]))
    question = "Which countries received deportees under the Kosovo deportees deal?"
    uncapped = [c.article_id for c in Retriever(store, EMB, top_k=4, candidates=20).search(question)]
    capped = Retriever(store, EMB, top_k=4, candidates=20, per_article=2).search(question)
    assert uncapped.count("long") >= 3
    assert sorted(c.article_id for c in capped) == ["long", "long", "panama", "salvador"]
    assert [c.n for c in capped] == [1, 2, 3, 4]
    one = [c.article_id for c in Retriever(store, EMB, top_k=4, candidates=20, per_article=1).search(question)]
    assert sorted(one) == ["long", "long", "panama", "salvador"]  # no third article: the cap gives way


def test_keyword_weight_sets_the_share_of_bm25_in_the_fusion(tmp_path: Path, seeded_store: Store) -> None:
    question = "Who is the Rwandan foreign minister Nduhungirehe?"
    by_vector = [h.chunk_id for h in seeded_store.vector_search(EMB.embed_query(question), 20)]
    by_keyword = [h.chunk_id for h in seeded_store.keyword_search(question, 20)]
    assert by_vector != by_keyword

    def ranked(weight: float) -> list[str]:
        settings = fake_settings(tmp_path / "d", keyword_weight=weight, per_article=0)
        chain = Chain(settings, seeded_store, make_backend(settings))
        return [c.chunk_id for c in sorted(chain.retriever.search(question), key=lambda c: c.n)]

    for weight, order in ((0.0, by_vector), (1000.0, by_keyword)):  # one list alone decides the order
        got = ranked(weight)
        assert got == [cid for cid in order if cid in got] and got[0] == order[0], weight
