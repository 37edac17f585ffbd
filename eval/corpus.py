"""``rag eval --corpus PATH``: answer from a folder or .jsonl of articles in a collection of its own.

The collection is named from the path ("corpus_" + a short hash), so the project's own collection is
never touched, and ingesting again is idempotent (unchanged articles cost no embedding work).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from eval.log import log
from rag.errors import InputError
from rag.settings import Settings
from rag.store import Store

__all__ = ["corpus_collection", "ingest_corpus"]

PROGRESS_EVERY = 500  # articles embedded between progress lines; a smaller corpus is embedded without them


def corpus_collection(path: Path, data_dir: Path | None = None) -> str:
    """A collection name of its own for a corpus path: "corpus_" + a short hash of the resolved path. On a
    Chroma server, whose collections every data folder shares, give the data folder (``data_dir``): it is
    hashed in too, as two data folders evaluating one corpus path would claim one collection."""
    key = str(path.resolve()) + (f"\0{data_dir.resolve()}" if data_dir else "")
    return "corpus_" + hashlib.sha1(key.encode()).hexdigest()[:10]


def ingest_corpus(path: Path, settings: Settings) -> str:
    """Ingest a folder or .jsonl into its own collection and return the collection's name."""
    from rag.ingest import ingest
    from rag.providers import get_embeddings

    if not path.exists():
        raise InputError(f"{path}: no such corpus file or folder")
    name = corpus_collection(path, settings.data_dir if settings.chroma_url else None)
    store = Store(settings.data_dir, name, settings.chroma_url)
    try:
        report = ingest([path], store, get_embeddings(settings.embeddings), chunk_tokens=settings.chunk_tokens,
                        overlap=settings.chunk_overlap_sentences, max_bytes=settings.max_file_bytes,
                        progress=_progress(path), embed_model=settings.embeddings)
        n_articles = len(store.articles())
    except BaseException:
        store.close()  # what an interrupted ingest embedded is kept for the next run
        raise
    if n_articles:
        store.close()
    else:  # an empty collection would only be listed among the collections here
        store.drop()
    for line in report.rejected:  # bad records are skipped; the good ones are in
        log(f"corpus: skipped {line}")
    log(f"corpus {path} -> collection {name}: {n_articles} articles")
    if not n_articles:
        raise InputError(f"{path}: no articles could be loaded from the corpus")
    return name


def _progress(path: Path) -> Callable[[int, int], None]:
    """For ``ingest``: a line on stderr each time another PROGRESS_EVERY articles are embedded, and at the end."""
    shown = 0

    def report(done: int, total: int) -> None:
        nonlocal shown
        if total >= PROGRESS_EVERY and (done // PROGRESS_EVERY > shown // PROGRESS_EVERY or done == total):
            shown = done
            log(f"corpus {path}: embedded {done}/{total} articles")

    return report
