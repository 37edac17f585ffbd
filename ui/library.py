"""The Library tab: list the ingested articles, and add uploaded files safely."""

from __future__ import annotations

import filecmp
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rag.chain import Chain
from rag.errors import InputError, RagError, first_line
from rag.ingest import ingest
from rag.jsonl import write_atomic
from rag.loaders import EXTENSIONS, MANIFEST, load_manifest
from rag.models import IngestReport
from rag.settings import DEFAULT_COLLECTION
from rag.store import Store

__all__ = ["LIBRARY_HEADERS", "ingest_uploads", "library_rows", "one_line", "sanitize_filename", "uploads_dir"]

LIBRARY_HEADERS = ["id", "title", "outlet", "date", "chunks"]
# "/srv/My Files/seeds/a.txt" -> "seeds/a.txt": a server path up to its last folder (names may hold spaces)
_SERVER_DIRS = re.compile(r"(?<![^\s(])/(?:[^/\n]+/)*?(?=[^/\n]+/[^/\n]+?\.(?:txt|md|jsonl)\b)")


def one_line(exc: BaseException) -> str:
    """The first line of an error message, for showing to a user."""
    return first_line(exc)[:300]


def library_rows(chain: Chain) -> list[list[str | int]]:
    return [[r.id, r.title or "", r.outlet or "", r.date or "", r.n_chunks] for r in chain.store.articles()]


def sanitize_filename(name: str) -> str:
    """A safe file name from a client-supplied one: no folders, no dot-files, a stem of letters of any
    script (with their marks), digits, '_' and '-', at most 100 bytes. A name that had to be changed ends
    in a short hash of the name sent, so uploads of two different names never replace each other
    ("report (1).txt" and "report_1.txt", "a.TXT" and "a.txt"); the same name again replaces the earlier one."""
    sent = re.split(r"[/\\]", name or "")[-1]
    base = re.split(r"[/\\]", unicodedata.normalize("NFKC", name or ""))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    kept = "".join(c if c.isalnum() or c in "_-" or unicodedata.category(c).startswith("M") else "\0" for c in stem)
    safe_stem = re.sub("\0+", "_", kept).strip("._-").encode()[:100].decode(errors="ignore") or "upload"
    safe_ext = re.sub(r"[^A-Za-z0-9]+", "", ext).lower()[:10]
    dotted = f".{safe_ext}" if safe_ext else ""
    if safe_stem + dotted != sent:
        safe_stem += "-" + hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    safe = safe_stem + dotted
    return f"upload_{safe}" if safe.lower() == MANIFEST else safe


def uploads_dir(store: Store) -> Path:
    """Where a collection's uploads are kept: ``uploads`` in the data dir for the default collection,
    ``uploads-<name>`` for another (one folder for all let a chat on one collection replace, and ingest,
    the files uploaded to another)."""
    name = "uploads" if store.collection == DEFAULT_COLLECTION else f"uploads-{store.collection}"
    return (store.data_dir / name).resolve()


def ingest_uploads(chain: Chain, files: Sequence[tuple[Path, str]]) -> list[tuple[str, str, bool]]:
    """Copy each (local path, client name) into the collection's ``uploads_dir`` under a sanitised name and
    ingest it.

    Returns one (saved name, result, ok) per file."""
    settings = chain.settings
    uploads = uploads_dir(chain.store)
    try:  # an ingest with other embeddings since this chat started: ours would embed every article back
        chain.store.check_embeddings(settings.embeddings)
    except InputError:
        why = ("error: the articles were embedded again with other embeddings since this chat started: restart"
               " it with the RAG_EMBEDDINGS they were embedded with, or run `rag ingest` again with this one")
        return [(MANIFEST if _is_manifest(name) else sanitize_filename(name), why, False) for _, name in files]
    results: list[tuple[str, str, bool]] = []
    stored: dict[str, Path] = {}  # saved name -> the file of this upload stored under it
    for src, client_name in sorted(files, key=lambda f: not _is_manifest(f[1])):  # its articles get it
        if _is_manifest(client_name):
            results.append((MANIFEST, *_store_manifest(chain, Path(src), uploads)))
            continue
        name = sanitize_filename(client_name)
        dest = (uploads / name).resolve()
        try:
            if dest.parent != uploads:
                raise ValueError("unsafe file name")
            if dest.suffix not in EXTENSIONS:
                results.append((name, f"rejected: unsupported file type (use {', '.join(EXTENSIONS)})", False))
                continue
            size = Path(src).stat().st_size
            if size > settings.max_file_bytes:
                results.append((name, f"rejected: {size:,} bytes is over the {settings.max_file_bytes:,}-byte"
                                      " limit (RAG_MAX_FILE_BYTES)", False))
                continue
            if name in stored and not filecmp.cmp(stored[name], src, shallow=False):
                # two files of one name (dropped from two folders): the second replaced the first's articles
                results.append((name, f"rejected: another file of this upload is also named {name} and was stored"
                                      " (rename one of them) (nothing from this file was stored)", False))
                continue
            uploads.mkdir(parents=True, exist_ok=True)
            result, ok = _store_upload(chain, Path(src), dest)
            results.append((name, result, ok))
            if ok:
                stored[name] = Path(src)
        except (OSError, ValueError, RagError) as exc:
            results.append((name, f"error: {one_line(exc)}", False))
    return results


def _store_upload(chain: Chain, src: Path, dest: Path) -> tuple[str, bool]:
    """Put ``src`` at ``dest`` and ingest it whole or not at all: if any of it is rejected, nothing of it
    is stored and the earlier upload of that name (if any) is put back, so the files kept match the store.
    An accepted file replaces the earlier one, and the earlier one's records it lacks are removed."""
    earlier = _set_aside(dest)
    try:
        shutil.copyfile(src, dest)
        with _warnings() as warned:
            report = _ingest(chain, dest, all_or_nothing=True)
    except BaseException:
        _put_back(earlier, dest)
        raise
    if report.rejected:
        _put_back(earlier, dest)
        reasons = "; ".join(_for_user(line, dest) for line in report.rejected)
        kept = f"; the earlier {dest.name} is kept" if earlier else ""
        return f"rejected: {reasons} (nothing from this file was stored{kept})", False
    if earlier:
        earlier.unlink(missing_ok=True)
    parts = [f"{k} {v}" for k, v in (("added", report.added), ("updated", report.updated),
                                     ("unchanged", report.unchanged), ("removed", report.removed),
                                     ("duplicate", report.duplicates)) if v]
    notes = "".join(f"; {_for_user(w, dest)}" for w in warned)
    return f"{', '.join(parts) or 'no articles found'} ({report.chunks_embedded} chunks embedded){notes}", True


def _ingest(chain: Chain, path: Path, *, all_or_nothing: bool = False, remove_missing: bool = True) -> IngestReport:
    """``rag.ingest.ingest`` of one upload path into the chain's store, with the chain's settings."""
    settings = chain.settings
    return ingest([path], chain.store, chain.retriever.embeddings, chunk_tokens=settings.chunk_tokens,
                  overlap=settings.chunk_overlap_sentences, max_bytes=settings.max_file_bytes,
                  embed_model=settings.embeddings, all_or_nothing=all_or_nothing, remove_missing=remove_missing)


def _is_manifest(client_name: str) -> bool:
    return re.split(r"[/\\]", client_name or "")[-1].lower() == MANIFEST


def _store_manifest(chain: Chain, src: Path, uploads: Path) -> tuple[str, bool]:
    """An uploaded manifest.jsonl: its entries join the uploads' manifest (an entry for an id already
    there replaces it), and the uploaded articles are ingested again to take their metadata. A bad
    manifest changes nothing."""
    settings = chain.settings
    try:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(src, Path(tmp) / MANIFEST)
            try:
                with _warnings() as warned:
                    new = load_manifest(Path(tmp), settings.max_file_bytes)
            except RagError as exc:
                return f"rejected: {_for_user(str(exc), Path(tmp) / MANIFEST)} (nothing was changed)", False
            notes = "".join(f"; {_for_user(w, Path(tmp) / MANIFEST)}" for w in warned)
        uploads.mkdir(parents=True, exist_ok=True)
        merged = {**load_manifest(uploads, settings.max_file_bytes), **new}
        write_atomic(uploads / MANIFEST, "".join(json.dumps({"id": art_id, **fields}, ensure_ascii=False) + "\n"
                                                 for art_id, fields in merged.items()))
        # named alone, the manifest stands for the uploads stored from its folder (rag.sources.with_manifests): the
        # folder named would warn of the ids of the articles this upload brings next as matching none
        report = _ingest(chain, uploads / MANIFEST, remove_missing=False)
    except (OSError, RagError) as exc:
        return f"error: {one_line(exc)}", False
    return f"metadata for {len(new)} article(s); {report.updated} uploaded article(s) updated{notes}", True


def _set_aside(path: Path) -> Path | None:
    """Move an existing ``path`` to a hidden name beside it (to put back later); None if there is none."""
    if not path.exists():
        return None
    fd, aside = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".earlier", dir=path.parent)
    os.close(fd)
    os.replace(path, aside)
    return Path(aside)


def _put_back(earlier: Path | None, path: Path) -> None:
    if earlier is None:
        path.unlink(missing_ok=True)
    else:
        os.replace(earlier, path)


@contextmanager
def _warnings() -> Iterator[list[str]]:
    """The warnings the ``rag`` package logs in this thread while the block runs, to show with an upload's
    result (the server log is not where its user looks)."""
    caught: list[str] = []
    thread = threading.get_ident()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == thread and record.levelno >= logging.WARNING:
                caught.append(record.getMessage())

    handler, logger = Catch(), logging.getLogger("rag")
    logger.addHandler(handler)
    try:
        yield caught
    finally:
        logger.removeHandler(handler)


def _for_user(line: str, dest: Path) -> str:
    """A report line for the browser: the upload by its name, other files by their folder and name only."""
    return _SERVER_DIRS.sub("", line.replace(str(dest), dest.name))
