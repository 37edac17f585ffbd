"""The article store: Chroma for vectors, SQLite for articles and the FTS5 keyword index.

Crash safety: for a batch of articles we (1) upsert the new vectors, (2) commit the article rows
and keyword rows in one SQLite transaction, (3) delete the articles' vectors that are no longer
chunks. The keyword rows are the record of committed chunks: a vector without one is left over
from a crash and ``reconcile`` (run before every ingest) deletes it. If we die before (2), the old
version stays whole and the next ingest, seeing the old fingerprint, redoes the article.
Chroma's own index files are not crash-safe: a kill while Chroma rewrites them can leave them torn.
An unreadable index is set aside and rebuilt (``writing``, ``reconcile``) from the copy of every vector
that SQLite keeps beside its keyword row (1.5 KB a chunk), so a rebuild embeds nothing again.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from chromadb.errors import ChromaError

from rag.errors import InputError, StoreError, first_line
from rag.keywords import rare_query
from rag.models import Article, ArticleRow, Chunk, Hit
from rag.vector_index import BATCH, VectorIndex, copy_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, content_hash TEXT NOT NULL, source TEXT,
    title TEXT, outlet TEXT, date TEXT, author TEXT, url TEXT, text TEXT NOT NULL,
    spans TEXT NOT NULL, n_chunks INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS articles_hash ON articles(content_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    chunk_id UNINDEXED, article_id UNINDEXED, text, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id TEXT PRIMARY KEY, article_id TEXT NOT NULL, meta TEXT NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS vectors_article ON vectors(article_id);
CREATE TABLE IF NOT EXISTS owner (one INTEGER PRIMARY KEY CHECK (one = 1), id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
OWNER_KEY, OWNER_AT_KEY = "rag_data_dir_id", "rag_data_dir"  # in a server collection's metadata: its owner
EMBEDDINGS_KEY = "embeddings"  # in SQLite's state: the embeddings that made the vectors ("a -> b" while changing)
CHANGING = " -> "
SEARCH_TRIES = 3
log = logging.getLogger(__name__)


def require_articles(data_dir: Path, collection: str) -> None:
    """Refuse, in one line, a local collection with no articles (never ingested, misspelt, or emptied)
    before anything opens it: opening creates an empty store that answers every question with "The
    articles don't say". Read-only; a damaged database or a file where the folder should be are left
    for ``Store`` to report."""
    path = data_dir / f"{collection}.sqlite"
    if path.is_file():
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                if db.execute("SELECT 1 FROM articles LIMIT 1").fetchone():
                    return
        except sqlite3.Error:
            return
    elif any(p.exists() and not p.is_dir() for p in (data_dir, *data_dir.parents)):
        return
    if data_dir.is_dir():
        names = sorted(p.stem for p in data_dir.glob("*.sqlite"))
        where = f"{data_dir} (collections there: {', '.join(names) or 'none'})"
    else:
        where = f"{data_dir} (no such folder)"
    raise InputError(f"no articles in collection '{collection}' in data dir {where}: run `rag ingest` first,"
                     " or check --collection, RAG_COLLECTION and RAG_DATA_DIR")


class Store(VectorIndex):
    def __init__(self, data_dir: Path, collection: str = "articles", chroma_url: str | None = None) -> None:
        self.data_dir = data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-"):
                pass  # a name of its own: a shared one was removed by another process opening the store
        except OSError as exc:
            raise StoreError(f"data dir {data_dir} is not writable ({exc.strerror}); set RAG_DATA_DIR") from None
        self._collection, self._chroma_url = collection, chroma_url
        with self.index_lock(exclusive=False):  # an ingest elsewhere may be rewriting the index files
            self._open_chroma()
        path = data_dir / f"{collection}.sqlite"
        created = not path.exists()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open article database {path}: {exc}") from None
        if chroma_url:
            try:
                owner = self._claim()
            except BaseException:
                self._abandon(path, created)
                raise
            if owner is not None:
                self._abandon(path, created)
                raise StoreError(f"Chroma collection '{collection}' at {chroma_url} holds the vectors of {owner},"
                                 f" and an ingest from {data_dir} would delete them: set RAG_COLLECTION to another"
                                 " name, RAG_DATA_DIR to that folder, or delete the collection on the server (a data"
                                 " folder restores its own vectors from their copies at its next ingest)")
        self._version = self._data_version()

    def _claim(self) -> str | None:
        """None if this data folder owns the server collection (claiming it if it is new), else who owns it.
        A server collection holds the vectors of one data folder: every ingest deletes the vectors its own
        SQLite file does not know, so a second folder would delete the first's. The owner is the id in the
        folder's SQLite file (a folder moved, or on a host renamed, stays the owner; so would a copy); its
        host and path are kept to name it."""
        here = f"{socket.gethostname()}:{self.data_dir.resolve()}"
        with _errors("open", self._chroma_url):
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO owner VALUES (1, ?)", (uuid.uuid4().hex,))
            ours = self._db.execute("SELECT id FROM owner").fetchone()[0]
            meta = dict(self._col.metadata or {})
            owner, at = meta.get(OWNER_KEY), meta.get(OWNER_AT_KEY)
            known = owner is None and self._db.execute("SELECT 1 FROM chunks_fts LIMIT 1").fetchone()
            # its own; new; or filled by this folder before owners were kept
            if owner == ours or (owner is None and (known or not self._col.count())):
                if (owner, at) != (ours, here):
                    self._col.modify(metadata={**meta, OWNER_KEY: ours, OWNER_AT_KEY: here})
                return None
        if at == here:
            return "an earlier data folder in this place (removed and made anew since)"
        return f"the data folder {at}" if at else "another data folder"

    def _abandon(self, path: Path, created: bool) -> None:
        self._db.close()
        if created:  # it would be listed among the collections here
            path.unlink(missing_ok=True)

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

    def has_articles(self) -> bool:
        with _errors("read", self._chroma_url):
            return self._db.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is not None

    def check_embeddings(self, name: str) -> None:
        """Refuse to search with embeddings other than those that made the vectors: the scores would be
        meaningless, and answers silently wrong."""
        made_by = self.state(EMBEDDINGS_KEY)
        if not made_by or made_by == name or not self.has_articles():
            return  # a store from before this was kept, or from code that names no embeddings
        where = f"collection '{self._collection}' in data dir {self.data_dir}"
        if CHANGING in made_by:
            raise InputError(f"the vectors of {where} are of two kinds: an ingest that changed the embeddings"
                             f" ({made_by}) did not finish; run `rag ingest` to embed them all with '{name}'"
                             " (RAG_EMBEDDINGS)")
        raise InputError(f"the vectors of {where} were made with the '{made_by}' embeddings, not '{name}'"
                         f" (RAG_EMBEDDINGS): run `rag ingest` to embed the articles again with '{name}',"
                         f" or set RAG_EMBEDDINGS={made_by}")

    def count_passages(self) -> int:
        """Passages in the keyword index (every stored chunk has one row there)."""
        with _errors("read", self._chroma_url):
            return int(self._db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0])

    def count_chunks(self) -> int:
        with _errors("read", self._chroma_url), self.reading():
            return int(self._col.count())

    def vector_ids(self) -> dict[str, str]:
        """chunk id -> article id for every vector in the collection."""
        with self.reading():
            got = self._col.get(include=["metadatas"])
        return {i: str(m["article_id"]) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def keyword_ids(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT chunk_id, article_id FROM chunks_fts").fetchall())

    def vector_search(self, embedding: Sequence[float] | np.ndarray, n: int) -> list[Hit]:
        """The ``n`` nearest chunks, each with its metadata and embedding. No ``count()`` first: Chroma
        returns what it has when the collection holds fewer than ``n`` (none when it is empty)."""
        if n <= 0:
            return []
        for attempt in range(SEARCH_TRIES):
            try:
                if attempt:
                    # an ingest in another process was writing the index files as this one read them
                    # (about 1 search in 36 fresh processes beside a large ingest): reopen them, ask again
                    time.sleep(0.5 * attempt)
                    self._version = -1  # reopen, whatever the data version says
                    if self._chroma_url:  # the server's collection was made anew (a wiped server, refilled)
                        self._open_chroma()
                with _errors("search", self._chroma_url), self.reading():
                    res = self._col.query(query_embeddings=[list(embedding)], n_results=n,
                                          include=["documents", "metadatas", "distances", "embeddings"])
                break
            except StoreError:
                if attempt == SEARCH_TRIES - 1 or (self._chroma_url and attempt):
                    raise
        ids = res["ids"][0]
        if not ids:
            return []
        return [Hit(i, str(m["article_id"]), d, 1.0 - float(dist), dict(m), e) for i, d, m, dist, e in zip(
            ids, res["documents"][0], res["metadatas"][0], res["distances"][0], res["embeddings"][0], strict=True)]

    def rare_query(self, text: str) -> str:
        return rare_query(self._db, text)

    def keyword_search(self, text: str, n: int) -> list[Hit]:
        query = self.rare_query(text)
        if not query:
            return []
        rows = self._db.execute(
            "SELECT chunk_id, article_id, text, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
            " ORDER BY bm25(chunks_fts) LIMIT ?", (query, n)).fetchall()
        return [Hit(cid, aid, txt, -float(score), {}) for cid, aid, txt, score in rows]

    def chunk_meta(self, ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], list[float]]]:
        """Metadata and embedding of the given chunks: from their copies in SQLite, else from Chroma."""
        if not ids:
            return {}
        with _errors("read", self._chroma_url):
            out = {i: (meta, vector.tolist()) for i, (meta, vector) in self._copies(ids).items()}
            if rest := [i for i in ids if i not in out]:
                with self.reading():
                    got = self._col.get(ids=rest, include=["metadatas", "embeddings"])
                out.update((i, (dict(m), list(e))) for i, m, e in zip(got["ids"], got["metadatas"],
                                                                      got["embeddings"], strict=True))
        return out

    # ---- writes --------------------------------------------------------------------------
    def repair(self) -> None:
        """What every ingest does first, on its own: for a server starting on a store that a killed
        process may have left torn. Skipped while an ingest runs (it checks the store itself)."""
        with self.writing(wait=False) as locked:
            if not locked:
                log.warning("note: an ingest is running; it checks the article store itself")
                return
            self.reconcile()
        if stale := sum(not row.fingerprint for row in self.articles()):
            log.warning("warning: %d articles have no vectors (their index was lost before vector copies were "
                        "kept); run `rag ingest` to embed them again", stale)

    def write(self, items: Sequence[tuple[Article, str, list[Chunk]]], embeddings: Sequence[Sequence[float]]) -> None:
        """Replace the given articles (article, fingerprint, chunks) and their vectors."""
        ids = [a.id for a, _, _ in items]
        chunks = [c for _, _, cs in items for c in cs]
        metas = [_chunk_meta(c) for c in chunks]
        with _errors("write to", self._chroma_url), self.index_lock(exclusive=True):
            generation = self._begin_change()
            for i in range(0, len(chunks), BATCH):
                part = chunks[i:i + BATCH]
                self._col.upsert(ids=[c.id for c in part], documents=[c.text for c in part],
                                 embeddings=[list(e) for e in embeddings[i:i + BATCH]], metadatas=metas[i:i + BATCH])
            with self._db:
                self._commit_generation(generation)
                # article_id is not indexed in FTS5, so a delete scans the keyword table: only for
                # articles already stored (keyword rows exist only beside an article row)
                stored = [i for i in ids if self._db.execute("SELECT 1 FROM articles WHERE id = ?", (i,)).fetchone()]
                self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in stored])
                self._db.executemany("DELETE FROM vectors WHERE article_id = ?", [(i,) for i in stored])
                self._db.executemany("INSERT INTO chunks_fts (chunk_id, article_id, text) VALUES (?, ?, ?)",
                                     [(c.id, c.article_id, c.text) for c in chunks])
                self._db.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)", [
                    copy_row(c.id, m, e) for c, m, e in zip(chunks, metas, embeddings, strict=True)])
                self._db.executemany(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(a.id, fp, a.content_hash, a.source, a.title, a.outlet, a.date, a.author, a.url, a.text,
                      json.dumps(a.spans), len(cs)) for a, fp, cs in items])
            self._delete_vectors(ids, keep={c.id for c in chunks})

    def set_sources(self, sources: Sequence[tuple[str, str | None]]) -> None:
        """Record where these (article id, source) articles now are; their chunks do not change."""
        with _errors("write to", self._chroma_url), self._db:
            self._db.executemany("UPDATE articles SET source = ? WHERE id = ?", [(s, i) for i, s in sources])

    def delete(self, article_ids: Iterable[str]) -> None:
        ids = list(article_ids)
        if not ids:
            return
        # rows first: vectors without rows are cleaned by reconcile()
        with _errors("delete from", self._chroma_url), self._db:
            self._db.executemany("DELETE FROM articles WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM vectors WHERE article_id = ?", [(i,) for i in ids])
        with _errors("delete from", self._chroma_url), self.index_lock(exclusive=True):
            self._delete_vectors(ids)

    def reconcile(self) -> int:
        """Repair what a crash can leave behind; return how many orphan vectors were deleted.

        Deletes keyword rows without an article row and vectors without a keyword row; a committed
        chunk without a vector gets it back from its copy, and an article whose chunks lack both (a
        store older than the copies) gets an empty fingerprint, so the next ingest re-embeds it. Vectors
        without a copy (written before copies were kept) are copied."""
        with _errors("repair", self._chroma_url), self.index_lock(exclusive=True):
            with self._db:
                self._db.execute("DELETE FROM chunks_fts WHERE article_id NOT IN (SELECT id FROM articles)")
            committed = self.keyword_ids()
            vectors = set(self._col.get(include=[])["ids"])
            orphans = [cid for cid in vectors if cid not in committed]
            for i in range(0, len(orphans), BATCH):
                self._col.delete(ids=orphans[i:i + BATCH])
            copied = {cid for (cid,) in self._db.execute("SELECT chunk_id FROM vectors")}
            leftover = [(c,) for c in copied - committed.keys()]  # copies come and go with their keyword rows:
            with self._db:  # one without is from older code
                self._db.executemany("DELETE FROM vectors WHERE chunk_id = ?", leftover)
            self._copy([cid for cid in committed if cid in vectors and cid not in copied])
            in_step = self.in_step()
            if not in_step and committed:  # the vectors there may be older versions of these chunks
                log.warning("note: the vector index is out of step with the article database (a change was cut"
                            " short, or another backend wrote last); restoring its %d passages", len(committed))
            missing = [cid for cid in committed if cid not in vectors or not in_step]
            generation = self._begin_change() if orphans or missing or not in_step else None
            vectors = self._restore(missing) | (vectors if in_step else set())
            stale = {aid for cid, aid in committed.items() if cid not in vectors}
            with self._db:
                self._db.executemany("UPDATE articles SET fingerprint = '' WHERE id = ?", [(a,) for a in stale])
                if generation:  # the commit also tells a reader in another process to reopen the index
                    self._commit_generation(generation)
        return len(orphans)

    def _delete_vectors(self, article_ids: Sequence[str], keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Delete the vectors of these articles, except the chunk ids in ``keep``."""
        for i in range(0, len(article_ids), 500):
            where = {"article_id": {"$in": list(article_ids[i:i + 500])}}
            if keep:
                old = [cid for cid in self._col.get(where=where, include=[])["ids"] if cid not in keep]
                if old:
                    self._col.delete(ids=old)
            else:
                self._col.delete(where=where)

    def close(self) -> None:
        self._db.close()

    def drop(self) -> None:
        """Close this collection, and remove it if it holds no article and no other process is writing to it
        (a corpus that loaded nothing). Best effort; its lock files stay, as other processes may hold them."""
        with self.write_lock(wait=False) as locked:
            try:
                empty = locked and not self.has_articles()
                if empty:
                    with self.index_lock(exclusive=True):
                        self._client.delete_collection(self._collection)
            except (StoreError, ChromaError, httpx.HTTPError, ValueError) as exc:
                log.info("the empty collection %s stays: %s", self._collection, exc)
                empty = False
            finally:
                self._db.close()
            if empty:
                (self.data_dir / f"{self._collection}.sqlite").unlink(missing_ok=True)


@contextmanager
def _errors(action: str, chroma_url: str | None) -> Iterator[None]:
    """Turn database failures (disk full, read-only files, a damaged index, a Chroma server gone) into
    one-line StoreErrors."""
    try:
        yield
    except (sqlite3.Error, ChromaError, OSError, httpx.HTTPError) as exc:
        reason = first_line(exc)
        if chroma_url and isinstance(exc, (ChromaError, httpx.HTTPError, ConnectionError)):
            raise StoreError(f"cannot {action} the vectors on the Chroma server at {chroma_url}: {reason}") from None
        raise StoreError(f"cannot {action} the article store: {reason}") from None


def _chunk_meta(c: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {"article_id": c.article_id, "index": c.index, "start": c.start, "end": c.end}
    for key in ("title", "outlet", "date", "author"):
        if (value := getattr(c, key)) is not None:
            meta[key] = value
    return meta
