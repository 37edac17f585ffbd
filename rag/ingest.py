"""Idempotent ingest: load, skip unchanged (by fingerprint), chunk + embed in batches, write, remove gone."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.chunking import chunk_article
from rag.errors import InputError
from rag.loaders import iter_files, load_file, load_manifest
from rag.models import Article, IngestReport
from rag.store import Store

Progress = Callable[[int, int], None]  # (articles done, articles to write)
BATCH_ARTICLES = 64


def fingerprint(article: Article, chunk_tokens: int, overlap: int) -> str:
    """Changes when the text, its metadata or the chunking changes: then the article is re-embedded."""
    meta = article.model_dump(include={"title", "outlet", "date", "author", "url"})
    key = json.dumps([article.content_hash, meta, list(article.spans), chunk_tokens, overlap], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def _source_file(source: str | None) -> str:
    """The file an article came from (a .jsonl article's source is "file:line")."""
    return re.sub(r":\d+$", "", source or "")


def load_paths(paths: Sequence[Path], max_bytes: int) -> tuple[list[Article], list[str], set[str]]:
    """Articles from files and folders, plus one line per rejected file and the rejected paths."""
    articles: list[Article] = []
    rejected: list[str] = []
    bad: set[str] = set()
    for path in paths:
        folder = path if path.is_dir() else path.parent
        try:
            manifest = load_manifest(folder, max_bytes)
            files = iter_files(path)
        except InputError as exc:
            rejected.append(str(exc))
            bad.add(str(path))
            continue
        for file in files:
            try:
                articles.extend(load_file(file, max_bytes, manifest))
            except InputError as exc:
                rejected.append(str(exc))
                bad.add(str(file))
    return articles, rejected, bad


def ingest(paths: Sequence[Path], store: Store, embeddings: Embeddings, *, chunk_tokens: int = 120,
           overlap: int = 1, max_bytes: int = 5_000_000, remove_missing: bool = True,
           progress: Progress | None = None) -> IngestReport:
    """Bring the store in line with ``paths``. Unchanged articles cost no embedding work; articles
    whose file is gone from an ingested folder are removed; identical texts are stored once."""
    store.reconcile()
    paths = [p.resolve() for p in paths]
    loaded, rejected, bad = load_paths(paths, max_bytes)
    existing = {row.id: row for row in store.articles()}
    by_hash = {row.content_hash: row.id for row in existing.values()}
    seen_ids: set[str] = set()
    todo: list[tuple[Article, str]] = []
    added = updated = unchanged = duplicates = 0
    for art in loaded:
        owner = by_hash.get(art.content_hash)
        if art.id in seen_ids or (owner is not None and owner != art.id):
            duplicates += 1  # same id twice, or the same text under another id: stored once
            continue
        seen_ids.add(art.id)
        by_hash[art.content_hash] = art.id
        fp = fingerprint(art, chunk_tokens, overlap)
        if art.id not in existing:
            added += 1
        elif existing[art.id].fingerprint != fp:
            updated += 1
        else:
            unchanged += 1
            continue
        todo.append((art, fp))
    gone = []
    if remove_missing:
        folders = [str(p) for p in paths if p.is_dir()]
        for row in existing.values():
            src = _source_file(row.source)
            if row.id in seen_ids or src in bad or not any(src.startswith(f + "/") for f in folders):
                continue
            gone.append(row.id)
        store.delete(gone)
    embedded = 0
    for i in range(0, len(todo), BATCH_ARTICLES):
        batch = [(art, fp, chunk_article(art, chunk_tokens, overlap)) for art, fp in todo[i:i + BATCH_ARTICLES]]
        texts = [c.text for _, _, cs in batch for c in cs]
        store.write(batch, embeddings.embed_documents(texts) if texts else [])
        embedded += len(texts)
        if progress:
            progress(min(i + BATCH_ARTICLES, len(todo)), len(todo))
    return IngestReport(added=added, updated=updated, unchanged=unchanged, removed=len(gone),
                        duplicates=duplicates, rejected=tuple(rejected), chunks_embedded=embedded)
