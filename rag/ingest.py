"""Idempotent ingest: load, skip unchanged (by fingerprint), chunk + embed in batches, write, remove gone."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.chunking import chunk_article
from rag.loaders import Capped, shown
from rag.models import Article, ArticleRow, IngestReport
from rag.sources import load_paths, resolved, source_file, under, with_manifests
from rag.store import CHANGING, CHUNKING_KEY, EMBEDDINGS_KEY, Store

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (articles done, articles to write)
BATCH_ARTICLES = 64
SHOWN_TAKEOVERS = 5  # "was stored from another file" warnings shown one by one (a renamed .jsonl gave 3,000)
PIPELINE_VERSION = 2  # bump when chunk text or metadata changes: stores are then re-embedded


def fingerprint(article: Article, chunk_tokens: int, overlap: int, embed_model: str = "") -> str:
    """Changes when the text, its metadata, the chunking or the embedding model changes: then the
    article is re-embedded."""
    meta = article.model_dump(include={"title", "outlet", "date", "author", "url"})
    key = json.dumps([PIPELINE_VERSION, article.content_hash, meta, list(article.spans), chunk_tokens, overlap,
                      embed_model],
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def _made_with(store: Store, rows: Iterable[ArticleRow], embed_model: str, chunk_tokens: int, overlap: int) -> bool:
    """Were these stored articles embedded with ``embed_model`` (and these chunk settings)? Asks the first
    one whose vectors are whole."""
    row = next((r for r in rows if r.fingerprint), None)
    article = store.article(row.id) if row else None
    return row is None or article is None or fingerprint(article, chunk_tokens, overlap, embed_model) == row.fingerprint


def _warn_of_copies(store: Store, removed: Sequence[ArticleRow]) -> None:
    """Say which removed articles' text another file still holds: stored once, from the removed one's file,
    that text left the store with it."""
    if not removed:
        return
    held = store.copies(row.content_hash for row in removed)
    for row in removed:
        if there := [s for s in held.get(row.content_hash, []) if Path(source_file(s)).is_file()]:
            log.warning("warning: %s: removed, but %s held the same text when it was last ingested (stored once,"
                        " from here): run `rag ingest %s` to keep it", row.source, there[0],
                        shown(source_file(there[0])))


def ingest(paths: Sequence[Path], store: Store, embeddings: Embeddings, *, chunk_tokens: int = 120,
           overlap: int = 1, max_bytes: int = 5_000_000, remove_missing: bool = True,
           progress: Progress | None = None, embed_model: str = "", all_or_nothing: bool = False) -> IngestReport:
    """Bring the store in line with ``paths``. Unchanged articles cost no embedding work; articles
    whose file is gone from an ingested folder, or whose record is gone from an ingested .jsonl file, are
    removed; identical texts are stored once. With ``all_or_nothing``, a run that rejects anything
    changes nothing (for an upload, which is taken whole or not at all)."""
    with store.writing():  # a killed ingest is detected and repaired by the next one
        store.reconcile()
        paths = [resolved(p) for p in paths]
        existing = {row.id: row for row in store.articles()}
        loaded, rejected, bad = load_paths(with_manifests(paths, existing.values()), max_bytes)
        files = {str(p) for p in paths if str(p) not in bad and p.is_file()}
        scope = files | {str(p) for p in paths if str(p) not in bad and p.is_dir()}

        def in_scope(row: ArticleRow) -> bool:  # from an ingested folder or .jsonl file, not rejected
            src = source_file(row.source)
            return remove_missing and not under(src, bad) and under(src, scope)

        read = {(a.id, source_file(a.source)) for a in loaded}
        read_files = {f for _, f in read}

        def stored_elsewhere(art: Article) -> ArticleRow | None:
            """The stored article with ``art``'s id if it came from another file that may still hold it."""
            row = existing.get(art.id)
            old = source_file(row.source if row else None)
            if row is None or old in ("", source_file(art.source)) or (art.id, old) in read:
                return None  # new, same file, or both files read now (the "already used by" check decides)
            moved_here = (old in read_files and old not in bad) or in_scope(row) or not Path(old).exists()
            return None if moved_here else row

        def refuse(art: Article, why: str) -> None:
            rejected.append(f"{art.source}: {why}")
            bad.add(source_file(art.source))  # nothing of a refused file is removed

        def stored_first(art: Article) -> tuple[bool, bool]:  # its id holds its text; it is from the same file
            row = existing.get(art.id)
            return (row is None or row.content_hash != art.content_hash,
                    row is None or source_file(row.source) != source_file(art.source))

        # A stored text keeps its id: rows left alone first, then articles whose id already holds their text.
        loaded_ids = {a.id for a in loaded}
        by_hash = {r.content_hash: r.id for r in existing.values() if r.id not in loaded_ids and not in_scope(r)}
        loaded.sort(key=stored_first)
        first: dict[str, Article] = {}
        todo: list[tuple[Article, str]] = []
        moved: list[tuple[str, str | None]] = []  # unchanged articles whose file (or .jsonl line) moved
        copies: list[tuple[str, str]] = []  # (source, content hash) of texts a stored article holds
        added = updated = unchanged = duplicates = 0
        taken = Capped(log, SHOWN_TAKEOVERS)  # ids stored from other files that this run's files take over
        for art in loaded:
            if art.id in first and first[art.id].content_hash != art.content_hash:
                refuse(art, f"article id '{art.id}' is already used by {first[art.id].source}")
                continue
            if (row := stored_elsewhere(art)) is not None:
                if all_or_nothing:  # an upload never replaces what another file holds
                    if row.content_hash != art.content_hash:
                        refuse(art, f"article id '{art.id}' is already stored from {row.source}, a different"
                                    " text (rename the file)")
                    else:
                        duplicates += 1  # a copy of that file: stored once, from where it was first
                        copies.append((str(art.source), art.content_hash))
                    continue
                if row.content_hash != art.content_hash:  # named on the command line: this file takes over
                    taken.warn("warning: %s: article id '%s' was stored from %s, a different text; this file's"
                               " text replaces it", art.source, art.id, row.source)
            owner = by_hash.setdefault(art.content_hash, art.id)
            if art.id in first or owner != art.id:
                duplicates += 1  # same file twice, or the same text under another id: stored once
                if owner != art.id:
                    copies.append((str(art.source), art.content_hash))
                continue
            first[art.id] = art
            fp = fingerprint(art, chunk_tokens, overlap, embed_model)
            if art.id not in existing:
                added += 1
            elif existing[art.id].fingerprint != fp:
                updated += 1
            else:
                unchanged += 1
                if existing[art.id].source != art.source:
                    moved.append((art.id, art.source))
                continue
            todo.append((art, fp))
        taken.rest("warning: {n} more articles stored from other files take this run's text")
        if all_or_nothing and rejected:
            return IngestReport(rejected=tuple(rejected))
        store.set_sources(moved)  # so that ingesting the folder it left does not remove it
        store.set_copies(copies, {source_file(a.source) for a in loaded} | bad)
        gone = [row.id for row in existing.values() if row.id not in first and in_scope(row)]
        store.delete(gone)
        _warn_of_copies(store, [existing[i] for i in gone])
        # Stored articles this run does not load whose vectors a crash lost (reconcile blanked their
        # fingerprint) or, when the embeddings changed, were made by other embeddings: re-embed them
        # from their stored text, so that one collection never holds vectors of two models.
        made_by = recorded = store.state(EMBEDDINGS_KEY)
        if made_by is None and existing:  # a store from before the record: one of its articles tells
            made_by = embed_model if _made_with(store, existing.values(), embed_model, chunk_tokens, overlap) \
                else "unknown"
        switching = made_by != embed_model and bool(existing)
        chunking, cut_at = f"{chunk_tokens}/{overlap}", store.state(CHUNKING_KEY)  # "tokens/overlap"
        rechunk = cut_at not in (None, chunking) and bool(existing)  # passages of two sizes, as vectors of two kinds
        others = [r for r in existing.values() if r.id not in first and r.id not in gone
                  and (switching or rechunk or not r.fingerprint)]
        redo = [(a, fp) for r in others if (a := store.article(r.id)) is not None
                and (fp := fingerprint(a, chunk_tokens, overlap, embed_model)) != r.fingerprint]
        todo += redo
        updated += len(redo)
        if rechunk and redo and not switching:
            log.warning("note: the stored passages were cut at other settings (RAG_CHUNK_TOKENS/"
                        "RAG_CHUNK_OVERLAP_SENTENCES %s, now %s): cutting every stored article again", cut_at, chunking)
        if switching and made_by:
            was = made_by.split(CHANGING)[0]  # the vectors' model before a change that was cut short
            if redo:
                log.warning("note: %s: embedding every stored article again with '%s'",
                            f"a change of embeddings ({made_by}) was cut short" if CHANGING in made_by
                            else f"the stored vectors were made with the '{was}' embeddings", embed_model)
            if todo:  # until this run ends, the vectors are of two kinds
                store.set_state(EMBEDDINGS_KEY, f"{was}{CHANGING}{embed_model}")
        embedded = 0
        for i in range(0, len(todo), BATCH_ARTICLES):
            batch = [(art, fp, chunk_article(art, chunk_tokens, overlap)) for art, fp in todo[i:i + BATCH_ARTICLES]]
            texts = [c.text for _, _, cs in batch for c in cs]
            store.write(batch, embeddings.embed_documents(texts) if texts else [])
            embedded += len(texts)
            if progress:
                progress(min(i + BATCH_ARTICLES, len(todo)), len(todo))
        if recorded != embed_model:  # also ends a change marked "a -> b" above
            store.set_state(EMBEDDINGS_KEY, embed_model)
        if cut_at != chunking:
            store.set_state(CHUNKING_KEY, chunking)
        return IngestReport(added=added, updated=updated, unchanged=unchanged, removed=len(gone),
                            duplicates=duplicates, rejected=tuple(rejected), chunks_embedded=embedded)


def remove(paths: Sequence[Path], store: Store) -> tuple[int, list[Path]]:
    """Remove the stored articles that came from these files or folders, which need not exist any more
    (`rag ingest` of a folder removed is an error, so its articles stayed); return how many were removed,
    and the paths no stored article came from."""
    with store.writing():
        store.reconcile()
        rows = store.articles()
        ids: set[str] = set()
        unknown: list[Path] = []
        for path in paths:
            place = str(resolved(path) if path.exists() or path.is_symlink() else path.resolve())
            found = {r.id for r in rows if under(source_file(r.source), {place})}
            ids |= found
            if not found:
                unknown.append(path)
        store.delete(sorted(ids))
    return len(ids), unknown
