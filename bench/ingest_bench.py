"""Ingest: rag.ingest.ingest over generated articles vs raw SentenceTransformer.encode, plus re-ingest.

The pipeline (load + clean + chunk + embed + Chroma upsert + SQLite) runs unmodified; the bench only
wraps its steps with stopwatches (rag.sources.load_paths / chunk_article, the embeddings, Store.write
and the Chroma collection) to say where the time goes.

The raw rate is measured interleaved, because the machine's load drifts over a run of minutes:
after every ``raw_every``-th batch the pipeline writes, the bench (inside ingest's progress callback)
encodes that batch's very chunk texts again with the bare ``SentenceTransformer.encode`` call. That
time is taken out of the pipeline's wall time, and the raw rate is texts / seconds over those checks.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import rag.ingest as ingest_mod
from bench.corpus import write_articles
from bench.timing import Acc, TimedCollection, TimedEmbeddings, patched
from rag.chunking import chunk_article
from rag.ingest import ingest
from rag.providers import MiniLMEmbeddings
from rag.settings import Settings
from rag.sources import load_paths
from rag.store import Store


class _RawChecks:
    """Raw encode of the batch just written, every ``every``-th batch, with the pipeline time of that
    batch (from the end of the previous progress call to the start of this one)."""

    def __init__(self, emb: MiniLMEmbeddings, timed: TimedEmbeddings, every: int) -> None:
        self.emb, self.timed, self.every = emb, timed, every
        self.batches = 0
        self.pairs: list[tuple[int, float, float]] = []  # (texts, pipeline s, raw s)
        self.paused = 0.0  # seconds spent in the progress callback (taken out of the pipeline's wall)

    def after_batch(self, batch_s: float) -> None:
        self.batches += 1
        if self.every and self.batches > 1 and self.batches % self.every == 0 and self.timed.last:
            t0 = time.perf_counter()
            self.emb.model.encode(self.timed.last, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            self.pairs.append((len(self.timed.last), batch_s, time.perf_counter() - t0))

    def summary(self) -> dict[str, Any]:
        texts, raw_s = sum(p[0] for p in self.pairs), sum(p[2] for p in self.pairs)
        ratios = sorted(p[2] / p[1] for p in self.pairs if p[1] > 0)
        return {"checks": len(self.pairs), "every_n_batches": self.every, "texts": texts, "seconds": round(raw_s, 3),
                "texts_per_s": round(texts / raw_s, 2) if raw_s else None,
                "batch_ratio_min": round(ratios[0], 3) if ratios else None,
                "batch_ratio_median": round(ratios[len(ratios) // 2], 3) if ratios else None,
                "batch_ratio_max": round(ratios[-1], 3) if ratios else None}


def _instrumented_ingest(folder: Path, store: Store, emb: MiniLMEmbeddings, settings: Settings,
                         timeline: list[tuple[float, int]] | None, raw_every: int = 0,
                         ) -> tuple[Any, float, dict[str, float], dict[str, Any]]:
    acc = Acc()
    timed_emb = TimedEmbeddings(emb, acc)
    checks = _RawChecks(emb, timed_emb, raw_every)
    col = store._col
    store._col = TimedCollection(col, acc)
    store_write, store_reconcile = store.write, store.reconcile
    bar: Any = None
    t_start = last_end = time.perf_counter()

    def write(items: Any, embeddings: Any) -> None:
        before = sum(v for k, v in acc.s.items() if k.startswith("chroma."))
        with acc.time("store.write"):
            store_write(items, embeddings)
        acc.add("store.write.chroma", sum(v for k, v in acc.s.items() if k.startswith("chroma.")) - before)

    def progress(done: int, total: int) -> None:
        nonlocal bar, last_end
        t_in = time.perf_counter()
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, unit="article", desc="Ingest", file=sys.stderr, mininterval=2.0)
        bar.update(done - bar.n)
        if timeline is not None:
            timeline.append((round(t_in - t_start - checks.paused, 3), done))
        checks.after_batch(t_in - last_end)
        last_end = time.perf_counter()
        checks.paused += last_end - t_in

    store.write = write  # type: ignore[method-assign]
    store.reconcile = acc.wrap("store.reconcile", store_reconcile)  # type: ignore[method-assign]
    try:
        with patched(ingest_mod, "load_paths", acc.wrap("load+clean", load_paths)), \
                patched(ingest_mod, "chunk_article", acc.wrap("chunk", chunk_article)):
            t0 = time.perf_counter()
            report = ingest([folder], store, timed_emb, chunk_tokens=settings.chunk_tokens,
                            overlap=settings.chunk_overlap_sentences, max_bytes=settings.max_file_bytes,
                            progress=progress, embed_model="minilm")
            wall = time.perf_counter() - t0 - checks.paused
    finally:
        if bar is not None:
            bar.close()
        store._col = col
        del store.write, store.reconcile
    parts = {k: round(v, 3) for k, v in acc.s.items()}
    parts["embed_calls"] = acc.n.get("embed", 0)
    return report, wall, parts, checks.summary()


def _breakdown(wall: float, parts: dict[str, float]) -> dict[str, float]:
    """Exclusive seconds per step; 'other' is the rest of the wall time (fingerprints, bookkeeping)."""
    chroma_in_write = parts.get("store.write.chroma", 0.0)
    out = {
        "load+clean": parts.get("load+clean", 0.0),
        "chunk": parts.get("chunk", 0.0),
        "embed": parts.get("embed", 0.0),
        "chroma upsert/delete (in write)": chroma_in_write,
        "sqlite (in write)": parts.get("store.write", 0.0) - chroma_in_write,
        "reconcile": parts.get("store.reconcile", 0.0),
    }
    out["other"] = wall - sum(out.values())
    return {k: round(v, 3) for k, v in out.items()}


def run_ingest(work: Path, n_articles: int, pool: list[str], emb: MiniLMEmbeddings, settings: Settings,
               raw_every: int = 4) -> dict[str, Any]:
    folder = work / "articles"
    t0 = time.perf_counter()
    chars = write_articles(folder, n_articles, pool)
    gen_s = time.perf_counter() - t0

    # load+clean and chunking on their own, and the chunk texts (for the warm-up)
    t0 = time.perf_counter()
    articles, rejected, _ = load_paths([folder], settings.max_file_bytes)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    texts = [c.text for a in articles
             for c in chunk_article(a, settings.chunk_tokens, settings.chunk_overlap_sentences)]
    chunk_s = time.perf_counter() - t0
    emb.model.encode(random.Random(3).sample(texts, min(128, len(texts))), batch_size=64,
                     show_progress_bar=False)  # warm-up

    store = Store(work / "ingest-store", "bench_ingest")
    timeline: list[tuple[float, int]] = []
    report, wall, parts, raw = _instrumented_ingest(folder, store, emb, settings, timeline, raw_every)
    report2, wall2, parts2, _ = _instrumented_ingest(folder, store, emb, settings, None)
    store.close()

    raw_tps = raw["texts_per_s"]
    chunks_per_s = report.chunks_embedded / wall
    embed_only_tps = report.chunks_embedded / parts["embed"] if parts.get("embed") else None
    return {
        "articles": n_articles, "articles_loaded": len(articles), "rejected": len(rejected),
        "chars": chars, "chunks": len(texts), "chunks_embedded": report.chunks_embedded,
        "mean_chunk_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
        "generate_s": round(gen_s, 3), "standalone_load_clean_s": round(load_s, 3),
        "standalone_chunk_s": round(chunk_s, 3),
        "raw_encode_interleaved": raw, "raw_texts_per_s": raw_tps,
        "first_ingest_s": round(wall, 3), "pipeline_chunks_per_s": round(chunks_per_s, 2),
        "pipeline_articles_per_s": round(n_articles / wall, 2),
        "embed_step_texts_per_s": round(embed_only_tps, 2) if embed_only_tps else None,
        "ingest_ratio": round(chunks_per_s / raw_tps, 4) if raw_tps else None,
        "embed_step_ratio": round(embed_only_tps / raw_tps, 4) if embed_only_tps and raw_tps else None,
        "breakdown_s": _breakdown(wall, parts), "timeline": timeline, "embed_calls": parts["embed_calls"],
        "texts_per_embed_call": round(report.chunks_embedded / parts["embed_calls"], 1)
        if parts["embed_calls"] else None,
        "report": {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                   "removed": report.removed, "duplicates": report.duplicates},
        "reingest_s": round(wall2, 3), "reingest_fraction": round(wall2 / wall, 4),
        "reingest_breakdown_s": _breakdown(wall2, parts2),
        "reingest_report": {"added": report2.added, "updated": report2.updated, "unchanged": report2.unchanged,
                            "removed": report2.removed, "chunks_embedded": report2.chunks_embedded},
    }
