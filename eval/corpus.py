"""``rag eval --corpus PATH``: answer from a folder or .jsonl of articles in a collection of its own.

The collection is named from the path ("corpus_" + a short hash), so the project's own collection is
never touched, and ingesting again is idempotent (unchanged articles cost no embedding work).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from rag.errors import InputError
from rag.settings import Settings
from rag.store import Store

__all__ = ["corpus_collection", "ingest_corpus"]

BATCH = 64


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def corpus_collection(path: Path) -> str:
    """A collection name of its own for a corpus path: "corpus_" + a short hash of the resolved path."""
    return "corpus_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]


def ingest_corpus(path: Path, settings: Settings) -> str:
    """Ingest a folder or .jsonl into its own collection and return the collection's name."""
    from rag.ingest import ingest
    from rag.providers import get_embeddings

    if not path.exists():
        raise InputError(f"{path}: no such corpus file or folder")
    name = corpus_collection(path)
    store = Store(settings.data_dir, name, settings.chroma_url)
    try:
        report = ingest([path], store, get_embeddings(settings.embeddings), chunk_tokens=settings.chunk_tokens,
                        overlap=settings.chunk_overlap_sentences, max_bytes=settings.max_file_bytes)
        rejected = list(report.rejected)
        if path.is_file() and path.suffix.lower() == ".jsonl" and rejected:
            rejected = _ingest_jsonl_records(path, store, settings)
        n_articles = len(store.articles())
    finally:
        store.close()
    for line in rejected:
        _log(f"corpus: skipped {line}")
    _log(f"corpus {path} -> collection {name}: {n_articles} articles")
    if not n_articles:
        raise InputError(f"{path}: no articles could be loaded from the corpus")
    return name


def _ingest_jsonl_records(path: Path, store: Store, settings: Settings) -> list[str]:
    """Workaround: ``rag.loaders.load_file`` rejects a whole .jsonl when one record is bad (e.g. a
    record that is all boilerplate). Load it record by record instead, skip the bad ones, and write
    the rest the way ``rag.ingest`` does (by fingerprint, so unchanged articles are not re-embedded).
    Returns one line per skipped record."""
    from rag.chunking import chunk_article
    from rag.ingest import fingerprint
    from rag.loaders import make_article, read_text
    from rag.models import Article
    from rag.providers import get_embeddings

    skipped: list[str] = []
    articles: list[Article] = []
    seen: set[str] = set()
    for lineno, line in enumerate(read_text(path, settings.max_file_bytes).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise InputError(f"{where}: field 'text' is missing")
            art_id = str(rec.get("id") or rec.get("doc_id") or f"{path.stem}-{lineno}")
            meta = {k: (str(rec[k]) if rec.get(k) else None) for k in ("title", "date", "author", "url")}
            meta["outlet"] = str(rec.get("outlet") or rec.get("source") or "") or None
            art = make_article(art_id, rec["text"], where, meta)
        except (InputError, json.JSONDecodeError) as exc:
            skipped.append(str(exc) if isinstance(exc, InputError) else f"{where}: invalid JSON")
            continue
        if art.id in seen or art.content_hash in seen:
            continue
        seen.update((art.id, art.content_hash))
        articles.append(art)
    existing = {row.id: row.fingerprint for row in store.articles()}
    store.delete([i for i in existing if i not in seen])
    ct, ov = settings.chunk_tokens, settings.chunk_overlap_sentences
    todo = [(a, fp) for a in articles if existing.get(a.id) != (fp := fingerprint(a, ct, ov))]
    embeddings = get_embeddings(settings.embeddings)
    for i in range(0, len(todo), BATCH):
        batch = [(a, fp, chunk_article(a, ct, ov)) for a, fp in todo[i:i + BATCH]]
        store.write(batch, embeddings.embed_documents([c.text for _, _, cs in batch for c in cs]))
    return skipped
