"""The article store: keyword search, writes/deletes, repair after crashes, and open errors."""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import keywords, vector_index
from rag.chunking import chunk_article
from rag.errors import StoreError
from rag.index_files import torn_segment
from rag.ingest import fingerprint
from rag.keywords import keyword_query
from rag.loaders import make_article
from rag.models import Article
from rag.providers import get_embeddings
from rag.store import Store

EMB = get_embeddings("fake")
BODY = ("The harbour council approved the dredging budget on Tuesday. Officials said two cranes would follow. "
        "Critics warned about the flood risk. The mayor rejected that view.")


def put(store: Store, article: Article, max_tokens: int = 20) -> list[str]:
    chunks = chunk_article(article, max_tokens)
    store.write([(article, fingerprint(article, max_tokens, 1), chunks)], EMB.embed_documents([c.text for c in chunks]))
    return [c.id for c in chunks]


def ids_of(store: Store, article_id: str) -> tuple[set[str], set[str]]:
    vec = {c for c, a in store.vector_ids().items() if a == article_id}
    kw = {c for c, a in store.keyword_ids().items() if a == article_id}
    return vec, kw


# ---- keyword search ------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "word", "article"), [
    ("Nduhungirehe", "Nduhungirehe", "001"),
    ("What did Nduhungirehe say?", "Nduhungirehe", "001"),
    ("Pasjan", "Pasjan", "002"),
    ("Gjilan", "Gjilan", "003"),
    ("217", "217", "002"),
])
def test_keyword_search_finds_rare_words(seeded_store: Store, query: str, word: str, article: str) -> None:
    hits = seeded_store.keyword_search(query, 10)
    assert hits and any(h.article_id.startswith(article) for h in hits)
    assert all(word.lower() in h.text.lower() for h in hits)


def test_keyword_search_217_finds_both_outlets(seeded_store: Store) -> None:
    assert {h.article_id[:3] for h in seeded_store.keyword_search("217", 10)} == {"002", "003"}


@pytest.mark.parametrize("query", [
    '"', "'", '"Kosovo', "Kosovo's \"deal\" (50) -- ; * ^", "AND OR NOT", "NEAR(Kosovo, Serbia)", "col:umn",
    "", "   ", "the of and", "-", "Pasjan*", "{}[]", "café",
])
def test_keyword_search_with_punctuation_does_not_raise(seeded_store: Store, query: str) -> None:
    assert isinstance(seeded_store.keyword_search(query, 5), list)


@pytest.mark.parametrize(("query", "word", "article"), [
    ("Who is the Rwandan foreign minister Nduhungirehe, and what did he say about the deportees?", "Nduhungirehe",
     "001"),
    ("Which prison in Kosovo, Pasjan or another one, will hold the prisoners from Denmark?", "Pasjan", "002"),
    ("Was the deal worth 217 million dollars?", "217", "002"),
])
def test_rare_words_are_found_when_common_words_are_dropped(seeded_store: Store, monkeypatch: pytest.MonkeyPatch,
                                                           query: str, word: str, article: str) -> None:
    """With a budget this small only the rarest words of a long question are searched (as with common
    words in a large store), and the name, place or number among them still finds its passages."""
    monkeypatch.setattr(keywords, "KEYWORD_ROW_BUDGET", 5)  # the seeds hold 57 chunks
    assert f'"{word.lower()}"' in seeded_store.rare_query(query)
    hits = seeded_store.keyword_search(query, 10)
    assert hits and any(h.article_id.startswith(article) for h in hits)
    assert word.lower() in hits[0].text.lower()


def test_a_small_store_searches_every_word_it_holds(seeded_store: Store) -> None:
    query = "How many deportees did Kosovo agree to take?"  # no seed chunk says "many"
    assert set(seeded_store.rare_query(query).split(" OR ")) == set(keyword_query(query).split(" OR ")) - {'"many"'}


def test_rare_query_orders_by_rarity_and_skips_unknown_words(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    put(store, make_article("a", BODY, None, {}))
    put(store, make_article("b", BODY.replace("dredging", "zeppelin"), None, {}))
    # rarest first (ties in the question's order); a word no chunk holds is left out
    assert store.rare_query("harbour zeppelin dredging xylophonist") == '"zeppelin" OR "dredging" OR "harbour"'
    monkeypatch.setattr(keywords, "KEYWORD_ROW_BUDGET", 2)  # "harbour" is in two chunks: over budget with the rest
    assert store.rare_query("harbour zeppelin dredging xylophonist") == '"zeppelin" OR "dredging"'
    assert store.rare_query("xylophonist") == ""
    assert store.keyword_search("xylophonist", 5) == []


def test_rare_query_follows_the_index_as_it_changes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Document frequencies come from the index itself: no cache to go stale after writes and deletes."""
    monkeypatch.setattr(keywords, "KEYWORD_ROW_BUDGET", 1)
    put(store, make_article("a", BODY, None, {}))
    assert store.rare_query("zeppelin harbour") == '"harbour"'
    put(store, make_article("b", BODY.replace("harbour council", "zeppelin council"), None, {}))
    put(store, make_article("c", BODY.replace("harbour council", "zeppelin council"), None, {}))
    assert store.rare_query("zeppelin harbour") == '"harbour"'  # all common now: the single rarest
    store.delete(["b", "c"])
    put(store, make_article("d", BODY.replace("harbour council", "zeppelin board"), None, {}))
    put(store, make_article("e", BODY.replace("harbour council", "river board"), None, {}))
    assert store.rare_query("zeppelin harbour") in ('"zeppelin"', '"harbour"')
    store.delete(["a", "e"])
    assert store.rare_query("zeppelin harbour") == '"zeppelin"'


def test_keyword_query_quotes_every_word() -> None:
    assert keyword_query('Where do "Danish" prisoners go? NEAR/2') == '"danish" OR "prisoners" OR "go" OR "near"'


def test_empty_store_searches_return_nothing(store: Store) -> None:
    assert store.vector_search(EMB.embed_query("Kosovo"), 5) == []
    assert store.keyword_search("Kosovo", 5) == []


def test_vector_search_asks_for_more_than_the_store_holds(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    hits = store.vector_search(EMB.embed_query("harbour council"), 50)
    assert sorted(h.chunk_id for h in hits) == sorted(ids)
    for h in hits:  # each hit carries its metadata and embedding, so retrieval needs no second round trip
        assert h.meta["article_id"] == "a" and "start" in h.meta
        assert len(h.embedding) == 384
        assert abs(float(sum(a * b for a, b in zip(h.embedding, EMB.embed_query(h.text), strict=True))) - 1) < 1e-4
    store.delete(["a"])
    assert store.vector_search(EMB.embed_query("harbour council"), 50) == []


def test_vector_search_finds_the_chunk_with_the_same_words(seeded_store: Store) -> None:
    text = next(iter(seeded_store.keyword_search("Pasjan", 1))).text
    assert seeded_store.vector_search(EMB.embed_query(text), 1)[0].text == text


# ---- writes, deletes and repair -----------------------------------------------------------
def test_rewrite_replaces_all_chunks_of_an_article(store: Store) -> None:
    a = make_article("a", BODY, "a.txt", {"outlet": "Bugle"})
    first = put(store, a)
    assert ids_of(store, "a") == (set(first), set(first))
    b = make_article("a", BODY.replace("Tuesday", "Wednesday") + " A new sentence ends it.", "a.txt", {})
    second = put(store, b)
    assert ids_of(store, "a") == (set(second), set(second))
    assert set(first) - set(second)  # something really changed
    assert store.article("a") == b
    (row,) = store.articles()
    assert (row.id, row.n_chunks, row.content_hash) == ("a", len(second), b.content_hash)


def test_writing_a_new_article_scans_no_keyword_rows(store: Store) -> None:
    """FTS5 cannot index article_id: a delete by it reads the whole keyword table, so new articles skip it."""
    put(store, make_article("old", BODY, "old.txt", {}))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    put(store, make_article("new", BODY.replace("harbour", "river"), "new.txt", {}))
    put(store, make_article("old", BODY.replace("Tuesday", "Friday"), "old.txt", {}))
    store._db.set_trace_callback(None)
    deletes = [s for s in statements if s.startswith("DELETE FROM chunks_fts")]
    assert deletes == ["DELETE FROM chunks_fts WHERE article_id = 'old'"]  # the update only


def test_delete_removes_rows_vectors_and_keywords(store: Store) -> None:
    put(store, make_article("a", BODY, None, {}))
    kept = put(store, make_article("b", BODY.replace("harbour", "river"), None, {}))
    store.delete(["a", "missing"])
    assert [r.id for r in store.articles()] == ["b"]
    assert set(store.vector_ids()) == set(store.keyword_ids()) == set(kept)
    assert store.article("a") is None


def test_reconcile_removes_orphan_vectors_and_keyword_rows(store: Store) -> None:
    kept = put(store, make_article("a", BODY, None, {}))
    orphan = put(store, make_article("b", BODY.replace("harbour", "river"), None, {}))
    with store._db:  # simulate a crash between committing the row deletion and deleting vectors
        store._db.execute("DELETE FROM articles WHERE id = 'b'")
    store._col.add(ids=["ghost@0-00000000"], embeddings=[EMB.embed_query("ghost")],
                   metadatas=[{"article_id": "a"}], documents=["ghost"])  # a vector never committed
    assert store.reconcile() == len(orphan) + 1
    assert set(store.vector_ids()) == set(store.keyword_ids()) == set(kept)
    assert store.reconcile() == 0


def in_chroma(store: Store, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    got = store._col.get(ids=ids, include=["metadatas", "embeddings", "documents"])
    return {i: (m, list(e), d) for i, m, e, d in zip(got["ids"], got["metadatas"], got["embeddings"],
                                                     got["documents"], strict=True)}


def same(got: dict[str, tuple[Any, ...]], want: dict[str, tuple[Any, ...]]) -> bool:
    """Equal metadata (and texts); vectors equal as float32 (the copies' type, and that of Chroma's index)."""
    return got.keys() == want.keys() and all(
        g[0] == w[0] and np.allclose(g[1], w[1], atol=1e-6) and g[2:] == w[2:]
        for g, w in ((got[i], want[i]) for i in got))


def test_chunk_meta_reads_the_copies_and_else_chroma(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    want = {i: (m, e) for i, (m, e, _) in in_chroma(store, ids).items()}
    assert same(store.chunk_meta(ids), want)
    store._col.delete(ids=ids)
    assert same(store.chunk_meta(ids), want)  # from the copies: Chroma has lost them
    store.reconcile()
    with store._db:  # a store written before the copies were kept
        store._db.execute("DELETE FROM vectors")
    assert same(store.chunk_meta(ids), want)


def test_reconcile_restores_missing_vectors_from_their_copies(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    before = in_chroma(store, ids)
    store._col.delete(ids=ids)
    assert store.reconcile() == 0
    assert same(in_chroma(store, ids), before) and store.articles()[0].fingerprint != ""
    hit = store.vector_search(before[ids[0]][1], 1)[0]
    assert hit.chunk_id == ids[0] and hit.text and hit.meta == before[ids[0]][0]


def test_reconcile_marks_articles_whose_vectors_have_no_copy_stale(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    assert len(ids) > 1
    with store._db:  # a store written before the copies were kept
        store._db.execute("DELETE FROM vectors")
    store._col.delete(ids=[ids[0]])
    assert store.reconcile() == 0
    assert store.articles()[0].fingerprint == ""  # the next ingest re-embeds it
    # the vectors Chroma still has were copied: losing them now costs no embedding
    assert {cid for (cid,) in store._db.execute("SELECT chunk_id FROM vectors")} == set(ids[1:])
    store._col.delete(ids=ids[1:])
    store.reconcile()
    assert set(store.vector_ids()) == set(ids[1:])


def test_a_crash_before_commit_leaves_the_old_version_whole(store: Store) -> None:
    old = put(store, make_article("a", BODY, None, {}))
    new_article = make_article("a", BODY.replace("Tuesday", "Friday"), None, {})

    class Boom(Exception):
        pass

    real = store._col

    class Dies:  # the vectors get written, then the process "dies" before the SQLite commit
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def upsert(self, **kw: object) -> None:
            real.upsert(**kw)
            raise Boom

    store._col = Dies()
    with pytest.raises(Boom):
        put(store, new_article)
    store._col = real
    store.reconcile()
    assert ids_of(store, "a") == (set(old), set(old))
    assert store.articles()[0].content_hash == make_article("a", BODY, None, {}).content_hash


# ---- opening errors ------------------------------------------------------------------------
def one_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def test_unwritable_data_dir_is_a_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores permissions (root)")
        with pytest.raises(StoreError) as exc:
            Store(locked / "data")
        assert str(locked / "data") in one_line(exc)
    finally:
        locked.chmod(0o700)


def test_data_dir_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError) as exc:
        Store(tmp_path / "file" / "data")
    assert "RAG_DATA_DIR" in one_line(exc)


def test_corrupt_database_is_a_store_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "articles.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as exc:
        Store(data)
    assert "articles.sqlite" in one_line(exc)


def test_a_long_lived_store_sees_what_another_process_ingested(tmp_path: Path) -> None:
    """``rag serve`` keeps a Store open while ``rag ingest`` writes from another process."""
    import subprocess
    import sys

    from rag.providers import get_embeddings

    data = tmp_path / "data"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Kosovo agreed to host fifty deportees from the United States.\n")
    env = {**os.environ, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(folder)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    live = Store(data)
    emb = get_embeddings("fake")
    assert {h.article_id for h in live.vector_search(emb.embed_query("Kosovo"), 5)} == {"a"}
    (folder / "b.txt").write_text("Pasjan prison will hold three hundred prisoners from Denmark.\n")
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    hits = live.vector_search(emb.embed_query("Pasjan prison Denmark prisoners"), 5)
    assert "b" in {h.article_id for h in hits}


def test_a_long_lived_store_writes_on_what_another_process_ingested(tmp_path: Path) -> None:
    """``rag serve`` takes an upload after ``rag ingest`` wrote from another process: the upload must be
    written onto the index as it is on disk, not onto the server's older copy of it."""
    import random
    import subprocess
    import sys

    from rag.ingest import ingest
    from rag.providers import get_embeddings

    rng = random.Random(5)
    words = [f"w{i}" for i in range(3000)]

    def write(folder: Path, names: list[str]) -> None:
        folder.mkdir(exist_ok=True)
        for name in names:
            text = " ".join(" ".join(rng.choice(words) for _ in range(20)).capitalize() + "." for _ in range(60))
            (folder / f"{name}.txt").write_text(f"Title {name}\n\n{text}\n")

    data, docs, uploads = tmp_path / "data", tmp_path / "docs", tmp_path / "uploads"
    env = {**os.environ, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(data)}
    cli = [sys.executable, "-m", "rag.cli", "ingest", str(docs)]
    write(docs, [f"a{i}" for i in range(120)])  # ~1,800 chunks: Chroma keeps its index in files
    subprocess.run(cli, env=env, check=True, capture_output=True)
    live = Store(data)
    emb = get_embeddings("fake")
    live.vector_search(emb.embed_query("w1 w2"), 5)  # the server has read the index
    write(docs, [f"a{i}" for i in range(0, 120, 3)] + [f"n{i}" for i in range(10)])  # changed and new
    subprocess.run(cli, env=env, check=True, capture_output=True)
    write(uploads, [f"u{i}" for i in range(40)])
    ingest([uploads], live, emb, remove_missing=False)  # the upload, through the server's store
    live.close()
    done = subprocess.run(cli, env=env, capture_output=True, text=True)  # reads the index back first
    assert done.returncode == 0 and "set aside" not in done.stderr, done.stderr[-500:]
    after = Store(data)
    assert after.vector_ids() == after.keyword_ids()


def test_a_set_aside_index_is_rebuilt_from_the_copies_and_only_the_newest_kept(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    before = in_chroma(store, ids)
    older = store.data_dir / "chroma.damaged-20250101-000000"
    older.mkdir()
    store._reset_vectors("a test")
    assert not older.exists() and len(list(store.data_dir.glob("chroma.damaged-*"))) == 1
    assert store.count_chunks() == 0
    assert store.reconcile() == 0
    assert same(in_chroma(store, ids), before) and store.articles()[0].fingerprint != ""


def test_repair_leaves_the_store_to_a_running_ingest_and_says_what_it_cannot_rebuild(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    store._col.delete(ids=ids[:1])
    with open(store.data_dir / "articles.writing", "a") as running:  # an ingest holds the lock
        fcntl.flock(running, fcntl.LOCK_EX)
        store.repair()
    assert "an ingest is running" in caplog.text and ids[0] not in store.vector_ids()
    store.repair()
    assert ids[0] in store.vector_ids() and "no vectors" not in caplog.text
    with store._db:  # no copies (an older store), and a copy left without its chunk by older code
        store._db.execute("DELETE FROM vectors")
        store._db.execute("INSERT INTO vectors VALUES ('gone@0-0', 'a', '{}', x'00')")
    store._col.delete(ids=ids[:1])
    store.repair()
    assert "1 articles have no vectors" in caplog.text and "run `rag ingest`" in caplog.text
    copies = {cid for (cid,) in store._db.execute("SELECT chunk_id FROM vectors")}
    assert copies == set(ids[1:])


def _hnsw_files(segment: Path, link_sizes: list[int], per_element: int = 8, offset0: int = 0) -> None:
    """HNSW files as Chroma writes them: a header, level-0 data, and a (length, bytes) link list each."""
    segment.mkdir(parents=True)
    count = len(link_sizes)
    (segment / "header.bin").write_bytes(struct.pack("<IQQQQ", 0, offset0, 16, count, per_element) + bytes(64))
    (segment / "data_level0.bin").write_bytes(bytes(count * per_element))
    (segment / "link_lists.bin").write_bytes(b"".join(struct.pack("<I", n) + bytes(n) for n in link_sizes))


def test_hnsw_files_cut_short_are_told_from_whole_ones(tmp_path: Path) -> None:
    _hnsw_files(tmp_path / "whole", [0, 12, 0, 24])
    assert torn_segment(tmp_path / "whole") is None
    _hnsw_files(tmp_path / "empty", [])  # a new index: nothing written yet
    assert torn_segment(tmp_path / "empty") is None
    for name, cut in (("link_lists.bin", 3), ("link_lists.bin", 25), ("data_level0.bin", 9)):
        segment = tmp_path / f"{name}-{cut}"
        _hnsw_files(segment, [0, 12, 0, 24])
        (segment / name).write_bytes((segment / name).read_bytes()[:cut])
        assert name in (torn_segment(segment) or ""), (name, cut)
    _hnsw_files(tmp_path / "longer", [0, 12])
    with (tmp_path / "longer" / "link_lists.bin").open("ab") as f:
        f.write(bytes(5))  # more bytes than the header's elements hold: not what Chroma writes either
    assert "link_lists.bin is 25 bytes" in (torn_segment(tmp_path / "longer") or "")
    _hnsw_files(tmp_path / "huge", [0, 12])
    os.truncate(tmp_path / "huge" / "link_lists.bin", 120 << 30)  # as readers racing an ingest left it: sparse
    assert "link_lists.bin is 128849018880 bytes, more than" in (torn_segment(tmp_path / "huge") or "")  # not read
    _hnsw_files(tmp_path / "other-format", [0, 12], offset0=7)  # a layout this check does not know
    (tmp_path / "other-format" / "link_lists.bin").write_bytes(b"")
    assert torn_segment(tmp_path / "other-format") is None


def test_a_search_that_fails_is_asked_again_on_a_reopened_index(seeded_store: Store,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a large ingest in another process, about 1 search in 36 (one per fresh process) failed with
    "Error constructing hnsw segment reader": the index files were being rewritten as they were read."""
    from chromadb.errors import InternalError

    query = EMB.embed_query("How many deportees did Kosovo agree to take?")
    expected = [h.chunk_id for h in seeded_store.vector_search(query, 4)]
    opened: list[object] = []
    failures = iter([InternalError("Error constructing hnsw segment reader")])
    real_open, real_query = seeded_store._open_chroma, seeded_store._col.query

    def reopen() -> None:
        real_open()
        opened.append(seeded_store._col)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if (exc := next(failures, None)) is not None:
            raise exc
        return seeded_store._col.query(*args, **kwargs) if opened else real_query(*args, **kwargs)

    monkeypatch.setattr("rag.store.time.sleep", lambda s: None)
    monkeypatch.setattr(seeded_store, "_open_chroma", reopen)
    monkeypatch.setattr(seeded_store, "_col", type("Flaky", (), {"query": staticmethod(flaky)})())
    assert [h.chunk_id for h in seeded_store.vector_search(query, 4)] == expected
    assert len(opened) == 1  # reopened once, then asked again

    monkeypatch.setattr(seeded_store, "_col", type("Broken", (), {"query": staticmethod(
        lambda *a, **k: (_ for _ in ()).throw(InternalError("Error executing plan")))})())
    monkeypatch.setattr(seeded_store, "_open_chroma", lambda: None)  # keeps the broken collection
    with pytest.raises(StoreError, match=r"^cannot search the article store: Error executing plan$"):
        seeded_store.vector_search(query, 4)


def test_a_failed_reopen_is_tried_again(seeded_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reopen that failed left the store marked fresh with its Chroma system stopped, so every later
    search failed with an AttributeError (no one-line error, no retry) until the next ingest."""
    from chromadb.errors import InternalError

    query = EMB.embed_query("How many deportees did Kosovo agree to take?")
    expected = [h.chunk_id for h in seeded_store.vector_search(query, 4)]
    real_open = seeded_store._open_chroma
    opens = iter([StoreError("cannot open Chroma store at …: busy")])

    def flaky_open() -> None:
        if (exc := next(opens, None)) is not None:
            raise exc
        real_open()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise InternalError("Error constructing hnsw segment reader")

    monkeypatch.setattr("rag.store.time.sleep", lambda s: None)
    monkeypatch.setattr(seeded_store, "_open_chroma", flaky_open)
    monkeypatch.setattr(seeded_store, "_col", type("Broken", (), {"query": staticmethod(broken)})())
    assert [h.chunk_id for h in seeded_store.vector_search(query, 4)] == expected  # query, reopen fails, reopen
    assert seeded_store._version == seeded_store._data_version()


def test_searches_share_the_index_lock_and_each_change_holds_it_alone(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh reader that opened the index files while an ingest in another process rewrote them
    segfaulted (about 1 in 40): searches and changes to the vectors take turns on a lock file."""
    path = store.data_dir / "articles.index-lock"
    seen: dict[str, tuple[bool, bool]] = {}
    col = store._col

    class Watched:
        def __getattr__(self, name: str) -> Any:
            if name == "metadata":
                return col.metadata

            def call(*args: Any, **kwargs: Any) -> Any:
                seen.setdefault(name, (_free(path, fcntl.LOCK_SH), _free(path, fcntl.LOCK_EX)))
                return getattr(col, name)(*args, **kwargs)
            return call

    store.count_chunks()  # its first read, which holds the lock alone (the next test)
    monkeypatch.setattr(store, "_col", Watched())
    put(store, make_article("a", BODY, None, {}))
    store.vector_search(EMB.embed_query("dredging budget"), 2)
    store.delete(["a"])
    assert seen["query"] == (True, False)  # other searches go on; a change waits
    assert seen["upsert"] == seen["delete"] == (False, False)  # searches and changes wait
    assert _free(path, fcntl.LOCK_EX)  # nothing left held


def test_a_process_first_read_of_the_vectors_holds_the_index_lock_alone(store: Store,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma rewrites a local index's files when a process first touches the collection (even a count):
    readers that did so beside an ingest, under a shared lock or none, segfaulted (29 of 56) and left a
    120 GB link_lists.bin. The first read after another writer's change reopens the index, alone too."""
    put(store, make_article("a", BODY, None, {}))
    path = store.data_dir / "articles.index-lock"
    reader = Store(store.data_dir)
    seen: list[tuple[str, bool, bool]] = []
    col = reader._col

    class Watched:
        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                seen.append((name, _free(path, fcntl.LOCK_SH), _free(path, fcntl.LOCK_EX)))
                return getattr(col, name)(*args, **kwargs)
            return call

    reader._col = Watched()
    reader.count_chunks()
    reader.vector_search(EMB.embed_query("dredging budget"), 2)
    reader.count_chunks()
    assert seen == [("count", False, False), ("query", True, False), ("count", True, False)]
    reader._col = col
    put(store, make_article("b", BODY.replace("harbour", "river"), None, {}))  # another connection writes
    reopened: list[tuple[bool, bool]] = []
    real_open = reader._open_chroma

    def open_chroma() -> None:
        reopened.append((_free(path, fcntl.LOCK_SH), _free(path, fcntl.LOCK_EX)))
        real_open()

    monkeypatch.setattr(reader, "_open_chroma", open_chroma)
    assert {h.article_id for h in reader.vector_search(EMB.embed_query("river dredging budget"), 10)} == {"a", "b"}
    assert reopened == [(False, False)]
    reader.close()


def test_opening_the_store_holds_the_index_lock_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening reads the index files too: a new Store waits for a change in another process to end. And it
    may make them: six processes opening a new data folder at once under a shared lock failed with "table
    collections already exists" (in 2 rounds of 5; 0 of 10 alone)."""
    path = store.data_dir / "articles.index-lock"
    seen: list[tuple[bool, bool]] = []
    real = vector_index._chroma_client

    def watched(*args: Any) -> Any:
        seen.append((_free(path, fcntl.LOCK_SH), _free(store.data_dir / "chroma.open-lock", fcntl.LOCK_EX)))
        return real(*args)

    monkeypatch.setattr(vector_index, "_chroma_client", watched)
    Store(store.data_dir).close()
    Store(store.data_dir, "other").close()  # the index folder is the data folder's: one open at a time there
    assert seen == [(False, False), (True, False)]


def _free(path: Path, kind: int) -> bool:
    """Another process's view of a lock file: could it take the lock (shared or exclusive) now?"""
    with open(path, "a") as other:
        try:
            fcntl.flock(other, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_opening_the_store_does_not_trip_over_another_process_opening_it(tmp_path: Path) -> None:
    """The writability probe had one name for all: a process that removed its probe first left the other
    "data dir … is not writable (No such file or directory)" (1 of 90 stores opened six at a time)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".write-test").mkdir()  # the old name, as another process holds it
    Store(tmp_path / "data").close()
    assert [p.name for p in (tmp_path / "data").glob(".write-test*")] == [".write-test"]


def test_a_reader_reopens_the_index_after_a_repair_put_vectors_back(store: Store) -> None:
    """A repair that only restored vectors committed nothing to SQLite, so a running chat never reopened
    the index and went on without them (a second read)."""
    put(store, make_article("a", BODY, None, {}))
    reader = Store(store.data_dir)
    reader.count_chunks()
    assert not reader._unloaded()
    chunk = next(iter(store.keyword_ids()))
    with store.index_lock(exclusive=True):
        store._col.delete(ids=[chunk])
    store.reconcile()
    assert reader._unloaded() and chunk in reader.vector_ids()
    reader.close()


def test_a_server_error_page_while_reading_the_generation_is_one_line(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`rag ask` asks a server whether the index is in step: chromadb's plain Exception for a proxy's 502
    page got through as a traceback."""
    def bad_gateway(name: str) -> None:
        raise Exception("<html><head><title>502 Bad Gateway</title></head></html>")  # as chromadb raises it

    monkeypatch.setattr(store, "_chroma_url", "http://127.0.0.1:9")
    monkeypatch.setattr(store._client, "get_collection", bad_gateway)
    with pytest.raises(StoreError) as raised:
        store.in_step()
    assert str(raised.value) == "cannot read the vectors on the Chroma server at http://127.0.0.1:9: 502 Bad Gateway"

