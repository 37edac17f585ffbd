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
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from chromadb.errors import ChromaError

from rag.errors import InputError, StoreError
from rag.keywords import rare_query
from rag.models import Article, ArticleRow, Hit
from rag.settings import DEFAULT_COLLECTION
from rag.store_writes import StoreWrites
from rag.vector_index import store_errors

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
CREATE TABLE IF NOT EXISTS copies (source TEXT PRIMARY KEY, content_hash TEXT NOT NULL);
"""
OWNER_KEY, OWNER_AT_KEY = "rag_data_dir_id", "rag_data_dir"  # in a server collection's metadata: its owner
EMBEDDINGS_KEY = "embeddings"  # in SQLite's state: the embeddings that made the vectors ("a -> b" while changing)
CHANGING = " -> "
CHUNKING_KEY = "chunking"  # in SQLite's state: the chunk settings of the stored passages ("120/1")
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


class Store(StoreWrites):
    def __init__(self, data_dir: Path, collection: str = DEFAULT_COLLECTION, chroma_url: str | None = None) -> None:
        self.data_dir = data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-"):
                pass  # a name of its own: a shared one was removed by another process opening the store
        except OSError as exc:
            raise StoreError(f"data dir {data_dir} is not writable ({exc.strerror}); set RAG_DATA_DIR") from None
        self.collection, self._chroma_url = collection, chroma_url
        with self.index_lock(exclusive=True):  # alone: an ingest elsewhere may be rewriting the index files
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
        with store_errors("open", self._chroma_url):
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

    def copies(self, content_hashes: Iterable[str]) -> dict[str, list[str]]:
        """content hash -> the sources of the files last seen holding that text as a copy of a stored article
        (ingest stores a text once), for those sources no stored article comes from."""
        hashes = sorted(set(content_hashes))
        out: dict[str, list[str]] = {}
        with store_errors("read", self._chroma_url):
            for i in range(0, len(hashes), 500):  # SQLite caps the variables of one statement
                part = hashes[i:i + 500]
                rows = self._db.execute(f"SELECT content_hash, source FROM copies WHERE content_hash IN"
                                        f" ({','.join('?' * len(part))}) AND source NOT IN (SELECT source FROM"
                                        " articles WHERE source IS NOT NULL) ORDER BY source", part).fetchall()
                for content_hash, source in rows:
                    out.setdefault(content_hash, []).append(source)
        return out

    def has_articles(self) -> bool:
        with store_errors("read", self._chroma_url):
            return self._db.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is not None

    def check_embeddings(self, name: str) -> None:
        """Refuse to search with embeddings other than those that made the vectors: the scores would be
        meaningless, and answers silently wrong."""
        made_by = self.state(EMBEDDINGS_KEY)
        if not made_by or made_by == name or not self.has_articles():
            return  # a store from before this was kept, or from code that names no embeddings
        where = f"collection '{self.collection}' in data dir {self.data_dir}"
        if CHANGING in made_by:
            raise InputError(f"the vectors of {where} are of two kinds: an ingest that changed the embeddings"
                             f" ({made_by}) did not finish; run `rag ingest` to embed them all with '{name}'"
                             " (RAG_EMBEDDINGS)")
        raise InputError(f"the vectors of {where} were made with the '{made_by}' embeddings, not '{name}'"
                         f" (RAG_EMBEDDINGS): run `rag ingest` to embed the articles again with '{name}',"
                         f" or set RAG_EMBEDDINGS={made_by}")

    def count_passages(self) -> int:
        """Passages in the keyword index (every stored chunk has one row there)."""
        with store_errors("read", self._chroma_url):
            return int(self._db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0])

    def count_chunks(self) -> int:
        with store_errors("read", self._chroma_url), self.reading():
            return int(self._col.count())

    def vector_ids(self) -> dict[str, str]:
        """chunk id -> article id for every vector in the collection."""
        with self.reading():
            got = self._col.get(include=["metadatas"])
        return {i: str(m["article_id"]) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

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
                with store_errors("search", self._chroma_url), self.reading():
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
        with store_errors("read", self._chroma_url):
            out = {i: (meta, vector.tolist()) for i, (meta, vector) in self._copies(ids).items()}
            if rest := [i for i in ids if i not in out]:
                with self.reading():
                    got = self._col.get(ids=rest, include=["metadatas", "embeddings"])
                out.update((i, (dict(m), list(e))) for i, m, e in zip(got["ids"], got["metadatas"],
                                                                      got["embeddings"], strict=True))
        return out

    # ---- repair and close (the writes are in rag.store_writes) -----------------------------
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
                        self._client.delete_collection(self.collection)
            except (StoreError, ChromaError, httpx.HTTPError, ValueError) as exc:
                log.info("the empty collection %s stays: %s", self.collection, exc)
                empty = False
            finally:
                self._db.close()
            if empty:
                (self.data_dir / f"{self.collection}.sqlite").unlink(missing_ok=True)
