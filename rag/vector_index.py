"""The Chroma side of the store, at the base of ``rag.store.Store``: opening the collection and
reopening it when another process committed, the locks, the write lock's check of a local index for
damage, setting a damaged index aside (``Store.reconcile`` rebuilds it), and the store's one-line errors.
See ``rag.store`` for the crash-safety design; use ``Store``, not this class.
"""

from __future__ import annotations

import fcntl
import logging
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from chromadb.errors import ChromaError

from rag.errors import StoreError, first_line
from rag.index_files import torn_index

SERVER_TIMEOUT_S = 120  # a Chroma server that stops answering (stopped, overloaded) is an error, not a hang
HEARTBEAT_TIMEOUT_S = 10
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


def _chroma_client(data_dir: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        _heartbeat(chroma_url)  # chromadb's own check waits for ever, and says little of what answered
        url = urlparse(chroma_url)
        host = url.hostname or "127.0.0.1"
        client = chromadb.HttpClient(host=f"[{host}]" if ":" in host else host, port=url.port or 8000,
                                     ssl=url.scheme == "https", settings=chroma_settings)
        session = getattr(getattr(client, "_server", None), "_session", None)  # chromadb's, with no timeout
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(SERVER_TIMEOUT_S, connect=10)
        return client
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)


def _heartbeat(chroma_url: str) -> None:
    try:
        reply = httpx.get(chroma_url.rstrip("/") + "/api/v2/heartbeat", timeout=HEARTBEAT_TIMEOUT_S)
    except httpx.TimeoutException:
        raise StoreError(f"no answer within {HEARTBEAT_TIMEOUT_S} s") from None
    except httpx.HTTPError as exc:
        reason = first_line(exc)
        if "SSL" in reason and chroma_url.startswith("https:"):
            reason += "; does the server speak plain http://?"
        raise StoreError(f"Could not connect to a Chroma server ({reason})") from None
    try:
        body = reply.json()
    except ValueError:
        body = None
    alive = reply.status_code == 200 and isinstance(body, dict) and "nanosecond heartbeat" in body
    if not alive:
        raise StoreError(f"what answers there is not a Chroma server (HTTP {reply.status_code} for"
                         " /api/v2/heartbeat); check the port")


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[bool]:
    """Hold an flock of ``mode`` on the file ``path`` (made if missing; the kernel frees it when a process dies);
    False at once when ``mode`` has LOCK_NB and another process holds it."""
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, mode)
        except BlockingIOError:
            yield False
            return
        yield True


class VectorIndex:
    """Store's methods for its Chroma collection; ``Store.__init__`` sets these attributes."""

    data_dir: Path
    collection: str  # its name
    _chroma_url: str | None
    _db: sqlite3.Connection
    _client: Any
    _col: Any
    _version: int
    _loaded: bool

    def _open_chroma(self) -> None:
        """Open (or make) the collection. Locally, callers hold its index lock alone, and one process at a
        time opens the data folder's index folder, which all its collections share: two processes making a
        new one at once failed ("table collections already exists", 2 rounds in 5 of six openers)."""
        self._loaded = False
        try:
            with nullcontext() if self._chroma_url else _flock(self.data_dir / "chroma.open-lock", fcntl.LOCK_EX):
                self._client = _chroma_client(self.data_dir, self._chroma_url)
                self._col = self._client.get_or_create_collection(
                    self.collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:  # chroma raises many types; all mean "store unavailable"
            where = self._chroma_url or str(self.data_dir / "chroma")
            raise StoreError(f"cannot open Chroma store at {where}: {first_line(exc)}") from None

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _fresh(self) -> None:
        """Another process (``rag ingest`` beside ``rag serve``) committed: reopen the on-disk Chroma,
        whose in-memory index would otherwise not see the new vectors."""
        version = self._data_version()
        if version == self._version or self._chroma_url:
            return
        self._version = -1  # until it is open again: a failed reopen is tried again by the next call
        self._close_chroma()
        self._open_chroma()
        self._version = version

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

    @contextmanager
    def index_lock(self, exclusive: bool) -> Iterator[None]:
        """Chroma rewrites its index files in place, and a process that opens or searches them meanwhile
        can read them torn and crash (4 segfaults in 208 fresh readers beside large ingests, 0 in 201 with it).
        Searches share this lock (through ``reading``); each change to the vectors, a process's first read of
        them, and opening the store hold it alone. Not for a Chroma server.
        Not reentrant: a holder must not take it again."""
        if self._chroma_url:
            yield
            return
        with _flock(self.data_dir / f"{self.collection}.index-lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH):
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the index lock for a read of the vectors, after reopening them if another process wrote.
        Chroma (1.5.9) rewrites a local index's files when a process first touches the collection, even
        for a count(): that first read holds the lock alone, as a change does. Readers beside an ingest
        that rewrote 39,000 vectors crashed (29 of 56 segfaulted) and left link_lists.bin at 120 GB."""
        while True:
            alone = self._unloaded()
            with self.index_lock(exclusive=alone):
                if not alone and self._unloaded():
                    continue  # another process wrote meanwhile: reopen alone
                if alone:
                    self._fresh()
                yield
                self._loaded = True
                return

    def _unloaded(self) -> bool:
        return not self._chroma_url and (not self._loaded or self._data_version() != self._version)

    @contextmanager
    def write_lock(self, wait: bool = True) -> Iterator[bool]:
        """The store's write lock alone (``writing`` also checks the index); False if ``wait`` is False and
        another process holds it."""
        with _flock(self.data_dir / f"{self.collection}.writing", fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)) \
                as locked:
            yield locked

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
        with self.write_lock(wait) as locked:
            if not locked:
                yield False
                return
            with self.index_lock(exclusive=True):
                self._fresh()  # another process may have written since this one read: write onto that
                if not self._chroma_url and any((self.data_dir / "chroma").glob("*/header.bin")):
                    if torn := torn_index(self.data_dir / "chroma"):  # sure, and cheap: the files' sizes
                        self._reset_vectors(torn)
                    else:
                        self._probe()
            yield True

    def _probe(self) -> None:
        try:
            probe = subprocess.run([sys.executable, "-c", _PROBE, str(self.data_dir / "chroma"), self.collection],
                                   capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            raise StoreError("reading the vector index back took over 30 minutes; try again") from None
        if probe.returncode:
            self._reset_vectors((probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1])


@contextmanager
def store_errors(action: str, chroma_url: str | None) -> Iterator[None]:
    """Turn database failures (disk full, read-only files, a damaged index, a Chroma server gone) into
    one-line StoreErrors."""
    try:
        yield
    except (sqlite3.Error, ChromaError, OSError, httpx.HTTPError) as exc:
        reason = first_line(exc)
        if chroma_url and isinstance(exc, (ChromaError, httpx.HTTPError, ConnectionError)):
            raise StoreError(f"cannot {action} the vectors on the Chroma server at {chroma_url}: {reason}") from None
        raise StoreError(f"cannot {action} the article store: {reason}") from None
    except Exception as exc:
        if not chroma_url or type(exc) is not Exception:
            raise
        # chromadb's HTTP client raises a plain Exception holding the reply's body for an error it does not
        # know: a 502 page from a proxy before a restarting server, a server's internal error
        raise StoreError(f"cannot {action} the vectors on the Chroma server at {chroma_url}: {_reply(exc)}") from None


def _reply(exc: Exception) -> str:
    """A server's error reply in one short line: an HTML page's text without its tags."""
    text = " ".join(re.sub(r"<[^>]*>", " ", str(exc)).split())
    return (text[:200] + "…" if len(text) > 200 else text) or "an empty error reply"
