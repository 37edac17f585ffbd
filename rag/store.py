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

import fcntl
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
from chromadb.errors import ChromaError

from rag.errors import InputError, StoreError
from rag.index_files import torn_index
from rag.keywords import keyword_terms, or_query
from rag.models import Article, Chunk

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
"""
_BATCH = 2000
# Keyword search ranks the query's rarest words first and stops adding words when they would make
# FTS5 score more than KEYWORD_ROW_BUDGET chunks: a common word adds little to BM25 but makes FTS5
# score every chunk holding it (a query's words matched ~40% of a 100k-chunk corpus: 33 ms p50).
KEYWORD_ROW_BUDGET = 4000
log = logging.getLogger(__name__)
_PROBE = """
import sys, chromadb, numpy as np
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_collection(sys.argv[2])
ids = col.get(include=[])["ids"]
for i in range(0, len(ids), 2000):
    part = ids[i:i + 2000]
    vectors = np.asarray(col.get(ids=part, include=["embeddings"])["embeddings"], dtype=float)
    if len(vectors) != len(part) or not np.isfinite(vectors).all() or (np.abs(vectors).sum(1) == 0).any():
        sys.exit("vectors read back missing, empty or not numbers")
    col.query(query_embeddings=[vectors[0]], n_results=1)
"""


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    article_id: str
    text: str
    score: float
    meta: dict[str, Any]
    embedding: Any = field(default=None, compare=False, repr=False)  # vector hits carry theirs


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


def _chroma_client(data_dir: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url)
        return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=chroma_settings)
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)


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
        self._collection, self._chroma_url = collection, chroma_url
        self._open_chroma()
        path = data_dir / f"{collection}.sqlite"
        try:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open article database {path}: {exc}") from None

        self._version = self._data_version()

    def _open_chroma(self) -> None:
        try:
            self._client = _chroma_client(self.data_dir, self._chroma_url)
            self._col = self._client.get_or_create_collection(
                self._collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:  # chroma raises many types; all mean "store unavailable"
            where = self._chroma_url or str(self.data_dir / "chroma")
            raise StoreError(f"cannot open Chroma store at {where}: {str(exc).splitlines()[0]}") from None

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _fresh(self) -> None:
        """Another process (``rag ingest`` beside ``rag serve``) committed: reopen the on-disk Chroma,
        whose in-memory index would otherwise not see the new vectors."""
        version = self._data_version()
        if version == self._version or self._chroma_url:
            return
        self._version = version
        self._close_chroma()
        self._open_chroma()

    def _close_chroma(self) -> None:
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(str(self.data_dir / "chroma"), None)
        if system is not None:
            system.stop()

    def _reset_vectors(self, reason: str) -> None:
        """Chroma cannot read its own index (a process killed while Chroma wrote its files can leave
        them torn: chroma-core/chroma#7238). The vectors are derived data: set the damaged index aside
        (only the newest damaged one is kept), start an empty one; ``reconcile`` then fills it from the
        vector copies."""
        self._close_chroma()
        damaged = self.data_dir / f"chroma.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            (self.data_dir / "chroma").rename(damaged)
            for older in self.data_dir.glob("chroma.damaged-*"):
                if older != damaged:
                    shutil.rmtree(older, ignore_errors=True)
        except OSError as exc:
            raise StoreError(f"the vector index could not be read ({reason}) nor set aside: {exc}") from None
        finally:
            self._open_chroma()
        log.warning("warning: the vector index could not be read (%s); set aside as %s, rebuilding it from "
                    "the article database", reason, damaged)

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

    def vector_search(self, embedding: Sequence[float] | np.ndarray, n: int) -> list[Hit]:
        """The ``n`` nearest chunks, each with its metadata and embedding. No ``count()`` first: Chroma
        returns what it has when the collection holds fewer than ``n`` (none when it is empty)."""
        self._fresh()
        if n <= 0:
            return []
        with _errors("search"):
            res = self._col.query(query_embeddings=[list(embedding)], n_results=n,
                                  include=["documents", "metadatas", "distances", "embeddings"])
        ids = res["ids"][0]
        if not ids:
            return []
        return [Hit(i, str(m["article_id"]), d, 1.0 - float(dist), dict(m), e) for i, d, m, dist, e in zip(
            ids, res["documents"][0], res["metadatas"][0], res["distances"][0], res["embeddings"][0], strict=True)]

    def rare_query(self, text: str) -> str:
        """The FTS5 query keyword search runs: ``text``'s content words, rarest first, as many as fit in
        KEYWORD_ROW_BUDGET chunks (always the rarest one); words no chunk holds are left out. In a small
        store that is every word. Document frequencies are counted on the index itself (each count
        capped at the budget, so a common word costs little), so they are always in step with it."""
        words = keyword_terms(text)
        if not words:
            return ""
        capped = "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)"
        df = {w: int(self._db.execute(capped, (f'"{w}"', KEYWORD_ROW_BUDGET + 1)).fetchone()[0]) for w in words}
        found = sorted((w for w in words if df[w]), key=lambda w: df[w])
        if len(found) > 1 and df[found[0]] > KEYWORD_ROW_BUDGET:  # all common: which is rarest?
            full = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
            found = [min(found, key=lambda w: int(self._db.execute(full, (f'"{w}"',)).fetchone()[0]))]
        kept: list[str] = []
        rows = 0
        for w in found:
            if kept and rows + df[w] > KEYWORD_ROW_BUDGET:
                break
            kept.append(w)
            rows += df[w]
        return or_query(kept)

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
        with _errors("read"):
            out = {i: (meta, vector.tolist()) for i, (meta, vector) in self._copies(ids).items()}
            if rest := [i for i in ids if i not in out]:
                got = self._col.get(ids=rest, include=["metadatas", "embeddings"])
                out.update((i, (dict(m), list(e))) for i, m, e in zip(got["ids"], got["metadatas"],
                                                                      got["embeddings"], strict=True))
        return out

    # ---- writes --------------------------------------------------------------------------
    @contextmanager
    def writing(self, wait: bool = True) -> Iterator[bool]:
        """Hold the store's write lock while an ingest runs: ingests from several processes (the CLI, an
        upload in the UI) take turns, and the kernel frees the lock of a killed one. Chroma rewrites its
        index files in place, also while it serves reads, so a process killed meanwhile can leave them
        torn in ways that crash the process that opens them (chroma-core/chroma#7238): a local index on
        disk is first checked for files cut short (``rag.index_files``), then read back in a child
        process, and set aside (for ``reconcile`` to rebuild) if either fails (1.9 s for 50,000 vectors
        here). With ``wait`` False it yields False at once if another
        process holds the lock."""
        with open(self.data_dir / f"{self._collection}.writing", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            self._fresh()  # another process may have written since this one read: write onto that
            if not self._chroma_url and any((self.data_dir / "chroma").glob("*/header.bin")):
                if torn := torn_index(self.data_dir / "chroma"):  # sure, and cheap: the files' sizes
                    self._reset_vectors(torn)
                else:
                    self._probe()
            yield True

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

    def _probe(self) -> None:
        try:
            probe = subprocess.run([sys.executable, "-c", _PROBE, str(self.data_dir / "chroma"), self._collection],
                                   capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            raise StoreError("reading the vector index back took over 30 minutes; try again") from None
        if probe.returncode:
            self._reset_vectors((probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1])

    def write(self, items: Sequence[tuple[Article, str, list[Chunk]]], embeddings: Sequence[Sequence[float]]) -> None:
        """Replace the given articles (article, fingerprint, chunks) and their vectors."""
        ids = [a.id for a, _, _ in items]
        chunks = [c for _, _, cs in items for c in cs]
        metas = [_chunk_meta(c) for c in chunks]
        with _errors("write to"):
            for i in range(0, len(chunks), _BATCH):
                part = chunks[i:i + _BATCH]
                self._col.upsert(ids=[c.id for c in part], documents=[c.text for c in part],
                                 embeddings=[list(e) for e in embeddings[i:i + _BATCH]], metadatas=metas[i:i + _BATCH])
            with self._db:
                # article_id is not indexed in FTS5, so a delete scans the keyword table: only for
                # articles already stored (keyword rows exist only beside an article row)
                stored = [i for i in ids if self._db.execute("SELECT 1 FROM articles WHERE id = ?", (i,)).fetchone()]
                self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in stored])
                self._db.executemany("DELETE FROM vectors WHERE article_id = ?", [(i,) for i in stored])
                self._db.executemany("INSERT INTO chunks_fts (chunk_id, article_id, text) VALUES (?, ?, ?)",
                                     [(c.id, c.article_id, c.text) for c in chunks])
                self._db.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)", [
                    _copy_row(c.id, m, e) for c, m, e in zip(chunks, metas, embeddings, strict=True)])
                self._db.executemany(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(a.id, fp, a.content_hash, a.source, a.title, a.outlet, a.date, a.author, a.url, a.text,
                      json.dumps(a.spans), len(cs)) for a, fp, cs in items])
            self._delete_vectors(ids, keep={c.id for c in chunks})

    def set_sources(self, sources: Sequence[tuple[str, str | None]]) -> None:
        """Record where these (article id, source) articles now are; their chunks do not change."""
        with _errors("write to"), self._db:
            self._db.executemany("UPDATE articles SET source = ? WHERE id = ?", [(s, i) for i, s in sources])

    def delete(self, article_ids: Iterable[str]) -> None:
        ids = list(article_ids)
        if not ids:
            return
        with _errors("delete from"), self._db:  # rows first: vectors without rows are cleaned by reconcile()
            self._db.executemany("DELETE FROM articles WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM vectors WHERE article_id = ?", [(i,) for i in ids])
        with _errors("delete from"):
            self._delete_vectors(ids)

    def reconcile(self) -> int:
        """Repair what a crash can leave behind; return how many orphan vectors were deleted.

        Deletes keyword rows without an article row and vectors without a keyword row; a committed
        chunk without a vector gets it back from its copy, and an article whose chunks lack both (a
        store older than the copies) gets an empty fingerprint, so the next ingest re-embeds it. Vectors
        without a copy (written before copies were kept) are copied."""
        with _errors("repair"):
            with self._db:
                self._db.execute("DELETE FROM chunks_fts WHERE article_id NOT IN (SELECT id FROM articles)")
            committed = self.keyword_ids()
            vectors = set(self._col.get(include=[])["ids"])
            orphans = [cid for cid in vectors if cid not in committed]
            for i in range(0, len(orphans), _BATCH):
                self._col.delete(ids=orphans[i:i + _BATCH])
            copied = {cid for (cid,) in self._db.execute("SELECT chunk_id FROM vectors")}
            leftover = [(c,) for c in copied - committed.keys()]  # copies come and go with their keyword rows:
            with self._db:  # one without is from older code
                self._db.executemany("DELETE FROM vectors WHERE chunk_id = ?", leftover)
            self._copy([cid for cid in committed if cid in vectors and cid not in copied])
            vectors |= self._restore([cid for cid in committed if cid not in vectors])
            stale = {aid for cid, aid in committed.items() if cid not in vectors}
            with self._db:
                self._db.executemany("UPDATE articles SET fingerprint = '' WHERE id = ?", [(a,) for a in stale])
        return len(orphans)

    def _copy(self, chunk_ids: Sequence[str]) -> None:
        """Copy these chunks' vectors from Chroma into SQLite (for stores written before copies were kept)."""
        for i in range(0, len(chunk_ids), _BATCH):
            got = self._col.get(ids=list(chunk_ids[i:i + _BATCH]), include=["metadatas", "embeddings"])
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", [
                    _copy_row(cid, m, e) for cid, m, e in zip(got["ids"], got["metadatas"], got["embeddings"],
                                                               strict=True)])

    def _restore(self, chunk_ids: Sequence[str]) -> set[str]:
        """Put the committed chunks' vectors back into Chroma from their copies; return the ids restored."""
        if not chunk_ids:
            return set()
        wanted = set(chunk_ids)
        texts = {cid: text for cid, text in self._db.execute("SELECT chunk_id, text FROM chunks_fts") if cid in wanted}
        restored: set[str] = set()
        for i in range(0, len(chunk_ids), _BATCH):
            if copies := self._copies(chunk_ids[i:i + _BATCH]):
                ids = list(copies)
                self._col.upsert(ids=ids, documents=[texts[c] for c in ids],
                                 metadatas=[copies[c][0] for c in ids], embeddings=[copies[c][1] for c in ids])
                restored.update(ids)
        return restored

    def _copies(self, chunk_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
        """The stored copies (metadata, float32 vector) of these chunks, for those that have one."""
        out: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
        for i in range(0, len(chunk_ids), _BATCH):
            part = list(chunk_ids[i:i + _BATCH])
            rows = self._db.execute(f"SELECT chunk_id, meta, embedding FROM vectors WHERE chunk_id IN "
                                    f"({','.join('?' * len(part))})", part).fetchall()
            out.update((c, (json.loads(m), np.frombuffer(e, dtype=np.float32))) for c, m, e in rows)
        return out

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


@contextmanager
def _errors(action: str) -> Iterator[None]:
    """Turn database failures (disk full, read-only files, a damaged index, a Chroma server gone) into
    one-line StoreErrors."""
    try:
        yield
    except (sqlite3.Error, ChromaError, OSError, httpx.HTTPError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot {action} the article store: {reason}") from None


def _copy_row(chunk_id: str, meta: Any, embedding: Any) -> tuple[str, str, str, bytes]:
    """A row of the vectors table: the chunk's Chroma metadata and its vector as float32 bytes."""
    return chunk_id, str(meta["article_id"]), json.dumps(meta), np.asarray(embedding, dtype=np.float32).tobytes()


def _chunk_meta(c: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {"article_id": c.article_id, "index": c.index, "start": c.start, "end": c.end}
    for key in ("title", "outlet", "date", "author"):
        if (value := getattr(c, key)) is not None:
            meta[key] = value
    return meta
