"""The article store: Chroma for vectors, SQLite for articles and the FTS5 keyword index.

Crash safety: for a batch of articles we (1) delete their old vectors, (2) add the new vectors,
(3) commit the article rows and keyword rows in one SQLite transaction. An article's row is the
commit point: if we die before it, the next ingest sees the old fingerprint and redoes the
article (step 1 clears any half-written vectors). ``reconcile`` removes vectors whose article
has no row (died while adding a new article).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rag.errors import StoreError
from rag.models import Article, Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, content_hash TEXT NOT NULL, source TEXT,
    title TEXT, outlet TEXT, date TEXT, author TEXT, url TEXT, text TEXT NOT NULL,
    spans TEXT NOT NULL, n_chunks INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS articles_hash ON articles(content_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    chunk_id UNINDEXED, article_id UNINDEXED, text, tokenize='porter unicode61');
"""
_BATCH = 2000
_STOP = set("""a an the of to in on at by for from with and or but is are was were be been being
do does did what which who whom whose when where why how that this these those it its as
about into than then there their they he she his her i you we our your not no yes
will would can could should may might has have had said says say""".split())


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    article_id: str
    text: str
    score: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class ArticleRow:
    id: str
    title: str | None
    outlet: str | None
    date: str | None
    author: str | None
    source: str | None
    n_chunks: int
    fingerprint: str
    content_hash: str


def keyword_query(text: str) -> str:
    """An FTS5 OR-query of the content words in ``text`` (quoted, so no syntax leaks through)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOP and len(w) > 1]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def _chroma_client(data_dir: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url)
        return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=chroma_settings)
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)


class Store:
    def __init__(self, data_dir: Path, collection: str = "articles", chroma_url: str | None = None) -> None:
        self.data_dir = data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            probe = data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"data dir {data_dir} is not writable ({exc.strerror}); set RAG_DATA_DIR") from None
        try:
            self._client = _chroma_client(data_dir, chroma_url)
            self._col = self._client.get_or_create_collection(
                collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:  # chroma raises many types; all mean "store unavailable"
            where = chroma_url or str(data_dir / "chroma")
            raise StoreError(f"cannot open Chroma store at {where}: {str(exc).splitlines()[0]}") from None
        self._db = sqlite3.connect(data_dir / f"{collection}.sqlite", check_same_thread=False)
        self._db.executescript(_SCHEMA)

    # ---- reads ---------------------------------------------------------------------------
    def articles(self) -> list[ArticleRow]:
        rows = self._db.execute("SELECT id, title, outlet, date, author, source, n_chunks, fingerprint,"
                                " content_hash FROM articles ORDER BY id").fetchall()
        return [ArticleRow(*r) for r in rows]

    def article(self, article_id: str) -> Article | None:
        row = self._db.execute("SELECT id, text, spans, title, outlet, date, author, url, source, content_hash"
                               " FROM articles WHERE id = ?", (article_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "text", "spans", "title", "outlet", "date", "author", "url", "source", "content_hash")
        rec = dict(zip(keys, row, strict=True))
        rec["spans"] = tuple(tuple(s) for s in json.loads(rec["spans"]))
        return Article(**rec)

    def count_chunks(self) -> int:
        return int(self._col.count())

    def vector_ids(self) -> dict[str, str]:
        """chunk id -> article id for every vector in the collection."""
        got = self._col.get(include=["metadatas"])
        return {i: str(m["article_id"]) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def keyword_ids(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT chunk_id, article_id FROM chunks_fts").fetchall())

    def vector_search(self, embedding: Sequence[float], n: int) -> list[Hit]:
        n = min(n, self.count_chunks())
        if n == 0:
            return []
        res = self._col.query(query_embeddings=[list(embedding)], n_results=n,
                              include=["documents", "metadatas", "distances"])
        return [Hit(i, str(m["article_id"]), d, 1.0 - float(dist), dict(m)) for i, d, m, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True)]

    def keyword_search(self, text: str, n: int) -> list[Hit]:
        query = keyword_query(text)
        if not query:
            return []
        rows = self._db.execute(
            "SELECT chunk_id, article_id, text, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
            " ORDER BY bm25(chunks_fts) LIMIT ?", (query, n)).fetchall()
        return [Hit(cid, aid, txt, -float(score), {}) for cid, aid, txt, score in rows]

    def chunk_meta(self, ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], list[float]]]:
        """Metadata and embedding of the given chunks."""
        if not ids:
            return {}
        got = self._col.get(ids=list(ids), include=["metadatas", "embeddings"])
        return {i: (dict(m), list(e)) for i, m, e in zip(got["ids"], got["metadatas"], got["embeddings"],
                                                          strict=True)}

    # ---- writes --------------------------------------------------------------------------
    def write(self, items: Sequence[tuple[Article, str, list[Chunk]]], embeddings: Sequence[Sequence[float]]) -> None:
        """Replace the given articles (article, fingerprint, chunks) and their vectors."""
        ids = [a.id for a, _, _ in items]
        self._delete_vectors(ids)
        chunks = [c for _, _, cs in items for c in cs]
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i:i + _BATCH]
            self._col.add(ids=[c.id for c in part], documents=[c.text for c in part],
                          embeddings=[list(e) for e in embeddings[i:i + _BATCH]],
                          metadatas=[_chunk_meta(c) for c in part])
        with self._db:
            self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in ids])
            self._db.executemany("INSERT INTO chunks_fts (chunk_id, article_id, text) VALUES (?, ?, ?)",
                                 [(c.id, c.article_id, c.text) for c in chunks])
            self._db.executemany(
                "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(a.id, fp, a.content_hash, a.source, a.title, a.outlet, a.date, a.author, a.url, a.text,
                  json.dumps(a.spans), len(cs)) for a, fp, cs in items])

    def delete(self, article_ids: Iterable[str]) -> None:
        ids = list(article_ids)
        if not ids:
            return
        with self._db:  # row first: an article without a row is cleaned by reconcile()
            self._db.executemany("DELETE FROM articles WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in ids])
        self._delete_vectors(ids)

    def reconcile(self) -> int:
        """Delete vectors and keyword rows whose article has no row; return how many vectors went."""
        known = {r.id for r in self.articles()}
        orphans = [cid for cid, aid in self.vector_ids().items() if aid not in known]
        for i in range(0, len(orphans), _BATCH):
            self._col.delete(ids=orphans[i:i + _BATCH])
        with self._db:
            self._db.execute("DELETE FROM chunks_fts WHERE article_id NOT IN (SELECT id FROM articles)")
        return len(orphans)

    def _delete_vectors(self, article_ids: Sequence[str]) -> None:
        for i in range(0, len(article_ids), 500):
            self._col.delete(where={"article_id": {"$in": list(article_ids[i:i + 500])}})

    def close(self) -> None:
        self._db.close()


def _chunk_meta(c: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {"article_id": c.article_id, "index": c.index, "start": c.start, "end": c.end}
    for key in ("title", "outlet", "date"):
        if (value := getattr(c, key)) is not None:
            meta[key] = value
    return meta
