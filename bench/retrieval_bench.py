"""Retrieval: Retriever.search (query embedding + vector + keyword + fusion) vs raw Chroma query.

The corpus is synthetic (see bench.corpus.synthetic_batches): texts drawn from real word
frequencies so the FTS5 keyword index does realistic work, random unit vectors written through
Store.write (so the collection, metadata and SQLite rows are exactly what rag ingest makes) without
spending an hour embedding 100k texts with MiniLM. Ours and two raw baselines alternate query by
query on the same collection object: a Chroma query with the precomputed query vector (the issue's
baseline; it gets the embedding for free), and what a user of the raw libraries does for a text
query (MiniLM ``encode`` of the question, then the same Chroma query).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.corpus import synthetic_batches
from bench.timing import Acc, TimedCollection, TimedEmbeddings, pct, stats_ms
from rag.keywords import keyword_query
from rag.providers import MiniLMEmbeddings
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store

if TYPE_CHECKING:
    from collections.abc import Callable

INCLUDE = ["documents", "metadatas", "distances"]
STEPS = ("embed_query", "vector_search", "keyword_search", "chunk_meta")


def _fill(store: Store, pool: list[str], start: int, stop: int) -> dict[str, Any]:
    """Write chunks start..stop through Store.write; time it, split into Chroma calls and the rest."""
    from tqdm import tqdm

    acc = Acc()
    col = store._col
    store._col = TimedCollection(col, acc, prefix="")
    t0 = time.perf_counter()
    try:
        with tqdm(total=stop - start, unit="chunk", desc=f"Synthetic corpus -> {stop:,}", file=sys.stderr,
                  mininterval=2.0) as bar:
            for items, vecs in synthetic_batches(stop - start, pool, start=start):
                with acc.time("Store.write"):
                    store.write(items, vecs)
                bar.update(len(vecs))
    finally:
        store._col = col
    dt = time.perf_counter() - t0
    split = {f"chroma.{k}": round(v, 3) for k, v in acc.s.items() if k != "Store.write"}
    split["sqlite and the rest of Store.write"] = round(acc.s["Store.write"] - sum(split.values()), 3)
    return {"chunks": stop - start, "seconds": round(dt, 3), "chunks_per_s": round((stop - start) / dt, 1),
            "split_s": split}


def _fts_delete_ms(store: Store, n: int = 5) -> float:
    """What Store.write pays per article before inserting its keyword rows: DELETE FROM chunks_fts
    WHERE article_id = ? (ids that do not exist, so nothing changes)."""
    t0 = time.perf_counter()
    with store._db:
        store._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(f"absent_{i}",) for i in range(n)])
    return round((time.perf_counter() - t0) * 1000 / n, 3)


def raw_text_query(emb: MiniLMEmbeddings, col: Any, n: int) -> Callable[[str], Any]:
    """The raw libraries for a text query: ``SentenceTransformer.encode`` of the question (on one torch
    thread, as ``rag`` encodes a single query, so the ratio compares the pipelines, not thread counts),
    then ``collection.query`` with that vector."""
    import torch

    def query(text: str) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            vec = emb.model.encode([text], normalize_embeddings=True, show_progress_bar=False)[0]
        finally:
            torch.set_num_threads(threads)
        return col.query(query_embeddings=[vec.tolist()], n_results=n, include=INCLUDE)
    return query


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    return round(a["p50_ms"] / b["p50_ms"], 3) if a["p50_ms"] and b["p50_ms"] else None


def _match_fractions(store: Store, queries: list[str], total: int) -> dict[str, float] | None:
    matched = sorted(int(store._db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                           (q,)).fetchone()[0]) for q in queries if q)
    if not matched or not total:
        return None
    return {"median_fraction": round(pct(matched, 50) / total, 4),  # type: ignore[operator]
            "max_fraction": round(matched[-1] / total, 4)}


def _measure(store: Store, emb: MiniLMEmbeddings, settings: Settings, questions: list[str],
             rounds: int) -> dict[str, Any]:
    acc = Acc()
    retriever = Retriever(store, TimedEmbeddings(emb, acc), settings.top_k, settings.candidates)
    for name in STEPS[1:]:
        setattr(store, name, acc.wrap(name, getattr(store, name)))
    col = store._col
    raw_text = raw_text_query(emb, col, settings.candidates)
    qvecs = {q: emb.embed_query(q) for q in questions}
    try:
        t0 = time.perf_counter()
        retriever.search(questions[0])
        cold_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        col.query(query_embeddings=[qvecs[questions[0]]], n_results=settings.candidates, include=INCLUDE)
        warm_raw = time.perf_counter() - t0
        raw_text(questions[0])
        ours: list[float] = []
        raw: list[float] = []
        raw_txt: list[float] = []
        count: list[float] = []
        split: dict[str, list[float]] = {s: [] for s in STEPS}
        for _ in range(rounds):
            for q in questions:
                acc.reset()
                t0 = time.perf_counter()
                retriever.search(q)
                ours.append(time.perf_counter() - t0)
                for s in STEPS:
                    split[s].append(acc.s.get(s, 0.0))
                t0 = time.perf_counter()
                col.query(query_embeddings=[qvecs[q]], n_results=settings.candidates, include=INCLUDE)
                raw.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                raw_text(q)
                raw_txt.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                col.count()
                count.append(time.perf_counter() - t0)
    finally:
        for name in STEPS[1:]:
            delattr(store, name)
    fusion = [o - sum(split[s][i] for s in STEPS) for i, o in enumerate(ours)]
    total = store.count_chunks()
    ours_ms, raw_ms, text_ms = stats_ms(ours), stats_ms(raw), stats_ms(raw_txt)
    no_embed = stats_ms([o - e for o, e in zip(ours, split["embed_query"], strict=True)])
    return {
        "chunks": total, "queries": len(ours), "first_search_s": round(cold_ours, 3),
        "first_raw_query_s": round(warm_raw, 3), "ours": ours_ms, "raw_chroma_query": raw_ms,
        "raw_text_query": text_ms, "ours_without_query_embedding": no_embed, "raw_collection_count": stats_ms(count),
        "fts_delete_by_article_ms": _fts_delete_ms(store),
        # chunks the FTS5 query matches (and BM25 scores): all content words vs what keyword search now runs
        "keyword_matches_all_words": _match_fractions(store, [keyword_query(q) for q in questions], total),
        "keyword_matches": _match_fractions(store, [store.rare_query(q) for q in questions], total),
        "split": {**{s: stats_ms(v) for s, v in split.items()}, "fusion+dedup": stats_ms(fusion)},
        "ratio_vs_raw_text_query": _ratio(ours_ms, text_ms),
        "ratio_vs_raw": _ratio(ours_ms, raw_ms),
        "ratio_vs_raw_without_query_embedding": _ratio(no_embed, raw_ms),
    }


def query_embedding_threads(emb: MiniLMEmbeddings, questions: list[str], rounds: int = 2) -> dict[str, Any]:
    """embed_query latency with torch's default intra-op threads vs one thread, interleaved. On a
    2-core machine that another process keeps busy, two threads can wait on each other."""
    import torch

    default = torch.get_num_threads()
    times: dict[str, list[float]] = {f"threads_{default}": [], "threads_1": []}
    try:
        for _ in range(rounds):
            for q in questions:
                for n in (default, 1):
                    torch.set_num_threads(n)
                    t0 = time.perf_counter()
                    emb.embed_query(q)
                    times[f"threads_{n}"].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(default)
    return {"default_threads": default, **{k: stats_ms(v) for k, v in times.items()}}


def run_retrieval(work: Path, sizes: list[int], pool: list[str], emb: MiniLMEmbeddings, settings: Settings,
                  questions: list[str], rounds: int = 2) -> dict[str, Any]:
    store = Store(work / "retrieval-store", "bench_synthetic")
    out: dict[str, Any] = {"candidates": settings.candidates, "top_k": settings.top_k,
                           "questions": len(questions), "rounds": rounds, "sizes": {}}
    have = 0
    for size in sorted(sizes):
        fill = _fill(store, pool, have, size)
        have = size
        out["sizes"][str(size)] = {"write": fill, **_measure(store, emb, settings, questions, rounds)}
    store.close()
    out["query_embedding_threads"] = query_embedding_threads(emb, questions[:20])
    return out
