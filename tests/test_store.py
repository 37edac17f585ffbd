"""The article store: keyword search, writes/deletes, repair after crashes, and open errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.chunking import chunk_article
from rag.errors import StoreError
from rag.ingest import fingerprint
from rag.loaders import make_article
from rag.models import Article
from rag.providers import get_embeddings
from rag.store import Store, keyword_query

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


def test_keyword_query_quotes_every_word() -> None:
    assert keyword_query('Where do "Danish" prisoners go? NEAR/2') == '"danish" OR "prisoners" OR "go" OR "near"'


def test_empty_store_searches_return_nothing(store: Store) -> None:
    assert store.vector_search(EMB.embed_query("Kosovo"), 5) == []
    assert store.keyword_search("Kosovo", 5) == []


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


def test_reconcile_marks_articles_with_missing_vectors_stale(store: Store) -> None:
    ids = put(store, make_article("a", BODY, None, {}))
    store._col.delete(ids=[ids[0]])
    assert store.reconcile() == 0
    assert store.articles()[0].fingerprint == ""  # the next ingest re-embeds it


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
