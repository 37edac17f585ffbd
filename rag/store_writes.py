"""The writes of the article store, as the base class of ``rag.store.Store``: replacing and deleting
articles with their vectors, the generation that tells whether the vector index is in step with the
article database, the copies of the vectors that SQLite keeps, and ``reconcile``, which repairs from
them what a crash left. See ``rag.store`` for the crash-safety design; use ``Store``, not this class.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rag.models import Article, Chunk
from rag.vector_index import VectorIndex, store_errors

BATCH = 2000
GENERATION_KEY = "rag_generation"  # in the collection's metadata: the change its vectors are of
GENERATION_STATE = "generation"  # in SQLite's state: the last change committed
log = logging.getLogger(__name__)


class StoreWrites(VectorIndex):
    def state(self, key: str) -> str | None:
        """A value of SQLite's state table: which embeddings made the vectors, the generation."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str) -> None:
        with self._db:
            self._put_state(key, value)

    def _put_state(self, key: str, value: str) -> None:
        """Within the caller's transaction."""
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    # ---- the index in step with SQLite ------------------------------------------------------
    # A write to the vectors (and a repair that changed them) puts a new generation into the collection's
    # metadata first, then into SQLite with the change's rows. Where they differ the index is out of step:
    # a change was cut short, or the vectors were last written through another backend (a Chroma server,
    # then the local index again). A delete needs none: its rows go first, and reconcile removes the
    # vectors left without them.
    def _begin_change(self) -> str:
        """Before a change to the vectors: a new generation into the collection's metadata; commit it to
        SQLite with the change's rows (``_commit_generation``). Cut short between the two, they differ."""
        generation = uuid.uuid4().hex
        self._col.modify(metadata={**self._col_metadata(), GENERATION_KEY: generation})
        return generation

    def _commit_generation(self, generation: str) -> None:
        """Call inside the SQLite transaction of the change (a commit is also what tells readers to reopen)."""
        self._put_state(GENERATION_STATE, generation)

    def in_step(self) -> bool:
        return self._col_metadata().get(GENERATION_KEY) == self.state(GENERATION_STATE)

    def _col_metadata(self) -> dict[str, Any]:
        """The collection's metadata; on a server, as it is now (the collection object keeps what it read
        when opened, and another process may have written since)."""
        with store_errors("read", self._chroma_url):
            col = self._client.get_collection(self.collection) if self._chroma_url else self._col
            return dict(col.metadata or {})

    # ---- articles -----------------------------------------------------------------------
    def write(self, items: Sequence[tuple[Article, str, list[Chunk]]], embeddings: Sequence[Sequence[float]]) -> None:
        """Replace the given articles (article, fingerprint, chunks) and their vectors."""
        ids = [a.id for a, _, _ in items]
        chunks = [c for _, _, cs in items for c in cs]
        metas = [_chunk_meta(c) for c in chunks]
        with store_errors("write to", self._chroma_url), self.index_lock(exclusive=True):
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
        with store_errors("write to", self._chroma_url), self._db:
            self._db.executemany("UPDATE articles SET source = ? WHERE id = ?", [(s, i) for i, s in sources])

    def set_copies(self, copies: Sequence[tuple[str, str]], files: Iterable[str]) -> None:
        """Record the (source, content hash) of texts not stored because a stored article holds them, and
        forget what the ``files`` read in this run held before (a .jsonl file's sources are "file:line")."""
        with store_errors("write to", self._chroma_url), self._db:
            self._db.executemany("DELETE FROM copies WHERE source = ? OR substr(source, 1, length(?) + 1) = ? || ':'",
                                 [(f, f, f) for f in files])
            self._db.executemany("INSERT OR REPLACE INTO copies VALUES (?, ?)", copies)

    def delete(self, article_ids: Iterable[str]) -> None:
        ids = list(article_ids)
        if not ids:
            return
        # rows first: vectors without rows are cleaned by reconcile()
        with store_errors("delete from", self._chroma_url), self._db:
            self._db.executemany("DELETE FROM articles WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM chunks_fts WHERE article_id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM vectors WHERE article_id = ?", [(i,) for i in ids])
        with store_errors("delete from", self._chroma_url), self.index_lock(exclusive=True):
            self._delete_vectors(ids)

    def reconcile(self) -> int:
        """Repair what a crash can leave behind; return how many orphan vectors were deleted.

        Deletes keyword rows without an article row and vectors without a keyword row; a committed
        chunk without a vector gets it back from its copy, and an article whose chunks lack both (a
        store older than the copies) gets an empty fingerprint, so the next ingest re-embeds it. Vectors
        without a copy (written before copies were kept) are copied."""
        with store_errors("repair", self._chroma_url), self.index_lock(exclusive=True):
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

    def keyword_ids(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT chunk_id, article_id FROM chunks_fts").fetchall())

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

    # ---- the copies of the vectors ------------------------------------------------------
    def _copy(self, chunk_ids: Sequence[str]) -> None:
        """Copy these chunks' vectors from Chroma into SQLite (for stores written before copies were kept)."""
        for i in range(0, len(chunk_ids), BATCH):
            got = self._col.get(ids=list(chunk_ids[i:i + BATCH]), include=["metadatas", "embeddings"])
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", [
                    copy_row(cid, m, e) for cid, m, e in zip(got["ids"], got["metadatas"], got["embeddings"],
                                                              strict=True)])

    def _restore(self, chunk_ids: Sequence[str]) -> set[str]:
        """Put the committed chunks' vectors back into Chroma from their copies; return the ids restored."""
        if not chunk_ids:
            return set()
        wanted = set(chunk_ids)
        texts = {cid: text for cid, text in self._db.execute("SELECT chunk_id, text FROM chunks_fts") if cid in wanted}
        restored: set[str] = set()
        for i in range(0, len(chunk_ids), BATCH):
            if copies := self._copies(chunk_ids[i:i + BATCH]):
                ids = list(copies)
                self._col.upsert(ids=ids, documents=[texts[c] for c in ids],
                                 metadatas=[copies[c][0] for c in ids], embeddings=[copies[c][1] for c in ids])
                restored.update(ids)
        return restored

    def _copies(self, chunk_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
        """The stored copies (metadata, float32 vector) of these chunks, for those that have one."""
        out: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
        for i in range(0, len(chunk_ids), BATCH):
            part = list(chunk_ids[i:i + BATCH])
            rows = self._db.execute(f"SELECT chunk_id, meta, embedding FROM vectors WHERE chunk_id IN "
                                    f"({','.join('?' * len(part))})", part).fetchall()
            out.update((c, (json.loads(m), np.frombuffer(e, dtype=np.float32))) for c, m, e in rows)
        return out


def copy_row(chunk_id: str, meta: Any, embedding: Any) -> tuple[str, str, str, bytes]:
    """A row of the vectors table: the chunk's Chroma metadata and its vector as float32 bytes."""
    return chunk_id, str(meta["article_id"]), json.dumps(meta), np.asarray(embedding, dtype=np.float32).tobytes()


def _chunk_meta(c: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {"article_id": c.article_id, "index": c.index, "start": c.start, "end": c.end}
    for key in ("title", "outlet", "date", "author"):
        if (value := getattr(c, key)) is not None:
            meta[key] = value
    return meta
