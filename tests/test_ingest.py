"""Idempotent ingest: add / update / unchanged / remove, duplicates, rejected files, interruptions."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

import rag.ingest
from rag.chain import Chain
from rag.chunking import chunk_article
from rag.errors import InputError
from rag.ingest import ingest
from rag.models import IngestReport
from rag.providers import get_embeddings
from rag.settings import PROJECT_ROOT
from rag.store import EMBEDDINGS_KEY, Store
from tests.conftest import fake_settings

SEEDS = PROJECT_ROOT / "seeds"
S2 = "002_5fbcf0db53af7477"


class Counting(Embeddings):
    """Fake embeddings that count calls, and can fail on a given call (a crash mid-ingest)."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.inner = get_embeddings("fake")
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SEEDS, tmp_path / "articles"))


def run(folder: Path | list[Path], store: Store, emb: Embeddings | None = None, **kw: object) -> IngestReport:
    paths = folder if isinstance(folder, list) else [folder]
    return ingest(paths, store, emb or Counting(), **kw)  # type: ignore[arg-type]


def counts(r: IngestReport) -> tuple[int, int, int, int, int]:
    return r.added, r.updated, r.unchanged, r.removed, r.duplicates


def expected_chunks(store: Store, chunk_tokens: int = 120) -> dict[str, str]:
    """chunk id -> article id, recomputed from the stored articles."""
    out: dict[str, str] = {}
    for row in store.articles():
        article = store.article(row.id)
        assert article is not None
        out |= {c.id: row.id for c in chunk_article(article, chunk_tokens)}
    return out


def assert_consistent(store: Store, chunk_tokens: int = 120) -> dict[str, str]:
    """Every stored article's chunks are in Chroma and FTS exactly once, and nothing else is."""
    expected = expected_chunks(store, chunk_tokens)
    assert store.vector_ids() == expected
    assert store.keyword_ids() == expected
    assert store._db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == len(expected)
    assert {r.id: r.n_chunks for r in store.articles()} == {
        a: sum(1 for x in expected.values() if x == a) for a in set(expected.values())}
    return expected


def test_first_run_adds_second_run_does_no_work(folder: Path, store: Store) -> None:
    first = run(folder, store)
    assert counts(first) == (5, 0, 0, 0, 0) and not first.rejected
    chunks = assert_consistent(store)
    assert first.chunks_embedded == len(chunks)
    emb = Counting()
    again = run(folder, store, emb)
    assert counts(again) == (0, 0, 5, 0, 0)
    assert again.chunks_embedded == 0 and emb.calls == 0
    assert store.vector_ids() == chunks


def test_a_folder_and_a_path_inside_it_are_read_once(folder: Path, store: Store) -> None:
    """`rag ingest news news/sub`: the files under sub counted as duplicates of themselves, and a clash of
    ids inside them was reported twice."""
    (folder / "sub").mkdir()
    (folder / f"{S2}.txt").rename(folder / "sub" / f"{S2}.txt")
    (folder / "sub" / "clash.jsonl").write_text(
        json.dumps({"id": "c1", "text": "One text about a port."}) + "\n"
        + json.dumps({"id": "c1", "text": "Another text about a bridge."}) + "\n")
    report = run([folder, folder / "sub", folder / "sub" / f"{S2}.txt"], store)
    assert counts(report) == (6, 0, 0, 0, 0)
    assert [line for line in report.rejected if "already used by" in line] == [
        f"{folder / 'sub' / 'clash.jsonl'}:2: article id 'c1' is already used by {folder / 'sub' / 'clash.jsonl'}:1"]


def test_a_modified_file_replaces_only_its_chunks(folder: Path, store: Store) -> None:
    run(folder, store)
    before = assert_consistent(store)
    path = folder / f"{S2}.txt"
    path.write_text(path.read_text().replace("Pasjan", "Gjilan").replace("Seventeen", "Eighteen"))
    emb = Counting()
    report = run(folder, store, emb)
    assert counts(report) == (0, 1, 4, 0, 0)
    after = assert_consistent(store)
    new_ids = {c for c, a in after.items() if a == S2}
    old_ids = {c for c, a in before.items() if a == S2}
    assert report.chunks_embedded == len(new_ids) and emb.calls == 1
    assert old_ids - new_ids and not (old_ids - new_ids) & set(store.vector_ids())  # stale ids are gone
    assert {c: a for c, a in after.items() if a != S2} == {c: a for c, a in before.items() if a != S2}
    assert not [h for h in store.keyword_search("Pasjan", 10) if h.article_id == S2]


def test_a_deleted_file_is_removed(folder: Path, store: Store) -> None:
    run(folder, store)
    (folder / f"{S2}.txt").unlink()
    assert counts(run(folder, store)) == (0, 0, 4, 1, 0)
    assert S2 not in set(assert_consistent(store).values())
    assert store.keyword_search("Pasjan", 5) == []


@pytest.mark.parametrize("copy_name", ["zz-copy.txt", "-copy.txt", "sub/copy.md"])
def test_an_identical_copy_is_stored_once(folder: Path, store: Store, copy_name: str) -> None:
    run(folder, store)
    (folder / copy_name).parent.mkdir(exist_ok=True)
    shutil.copy(folder / f"{S2}.txt", folder / copy_name)
    assert counts(run(folder, store)) == (0, 0, 5, 0, 1)
    assert len(store.articles()) == 5
    assert_consistent(store)


def test_removing_the_file_a_copied_text_was_stored_from_names_the_copy(tmp_path: Path, store: Store,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Stored once, from the first file, the text left the store without a word when that file went, though
    the copy's file, ingested too, still held it."""
    d1, d2, d3 = tmp_path / "d1", tmp_path / "d2", tmp_path / "d3"
    for d in (d1, d2, d3):
        d.mkdir()
    shutil.copy(SEEDS / f"{S2}.txt", d1 / "a.txt")
    shutil.copy(d1 / "a.txt", d2 / "b.txt")
    shutil.copy(d1 / "a.txt", d3 / "c.txt")
    run(d1, store)
    assert counts(run(d2, store)) == counts(run(d3, store)) == (0, 0, 0, 0, 1)
    (d3 / "c.txt").write_text("A story of its own, about the harbour festival on Saturday.\n")
    run(d3, store)  # no copy any more
    (d1 / "a.txt").unlink()
    with caplog.at_level(logging.WARNING):
        assert counts(run(d1, store)) == (0, 0, 0, 1, 0)
    warned = [r.getMessage() for r in caplog.records if "the same text" in r.getMessage()]
    assert warned == [f"warning: {d1 / 'a.txt'}: removed, but {d2 / 'b.txt'} held the same text when it was last"
                      f" ingested (stored once, from here): run `rag ingest {d2 / 'b.txt'}` to keep it"]
    assert counts(run(d2 / "b.txt", store)) == (1, 0, 0, 0, 0)
    assert {r.id for r in store.articles()} == {"b", "c"}


def test_a_copy_that_left_a_jsonl_file_is_forgotten(tmp_path: Path, store: Store,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A .jsonl copy's "file:line" was kept after the record left the file: a false warning named it."""
    text = (SEEDS / f"{S2}.txt").read_text()
    (tmp_path / "a.txt").write_text(text)
    feed = tmp_path / "feed.jsonl"
    records = [{"id": "x", "text": "The harbour festival opened on Saturday."}, {"id": "y", "text": text}]
    feed.write_text("".join(json.dumps(r) + "\n" for r in records))
    run(tmp_path / "a.txt", store)
    assert counts(run(feed, store)) == (1, 0, 0, 0, 1)
    assert store.copies([store.article("a").content_hash])  # type: ignore[union-attr]
    feed.write_text(json.dumps(records[0]) + "\n")
    run(feed, store)
    (tmp_path / "a.txt").unlink()
    with caplog.at_level(logging.WARNING):
        assert counts(run(tmp_path, store)) == (0, 0, 1, 1, 0)
    assert "the same text" not in caplog.text


def test_the_copies_of_many_removed_articles_are_asked_in_parts(store: Store) -> None:
    """One SQL variable a removed article: past SQLite's cap the removal ended in a traceback, its articles
    deleted and the new ones never written."""
    store._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    store.set_copies([(f"f{i}.txt", f"h{i}") for i in range(1200)], [])
    assert len(store.copies(f"h{i}" for i in range(1200))) == 1200


def test_a_fresh_folder_with_a_copy_stores_it_once(folder: Path, store: Store) -> None:
    shutil.copy(folder / f"{S2}.txt", folder / "copy.txt")
    report = run(folder, store)
    assert counts(report) == (5, 0, 0, 0, 1)
    assert_consistent(store)


def test_a_renamed_file_keeps_its_article(folder: Path, store: Store) -> None:
    run(folder, store)
    (folder / f"{S2}.txt").rename(folder / "renamed.txt")
    report = run(folder, store)
    assert counts(report) == (1, 0, 4, 1, 0)
    assert "renamed" in {r.id for r in store.articles()}
    assert {h.article_id for h in store.keyword_search("Pasjan", 5)} == {"renamed"}
    assert_consistent(store)


def test_a_rejected_file_keeps_the_stored_article(folder: Path, store: Store) -> None:
    run(folder, store)
    path = folder / f"{S2}.txt"
    path.write_bytes(b"\x00\x01binary" * 100)
    report = run(folder, store)
    assert counts(report) == (0, 0, 4, 0, 0)
    assert len(report.rejected) == 1 and report.rejected[0].startswith(f"{path.resolve()}: ")
    assert S2 in {r.id for r in store.articles()}
    assert_consistent(store)


def test_manifest_changes_count_as_updated(folder: Path, store: Store) -> None:
    run(folder, store)
    manifest = folder / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["outlet"] = "Latin Times International"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert counts(run(folder, store)) == (0, 1, 4, 0, 0)
    assert store.article(rows[1]["id"]).outlet == "Latin Times International"  # type: ignore[union-attr]
    assert {m.get("outlet") for m, _ in store.chunk_meta(list(store.vector_ids())).values()} >= {
        "Latin Times International"}


def test_a_malformed_manifest_removes_nothing(folder: Path, store: Store) -> None:
    run(folder, store)
    with (folder / "manifest.jsonl").open("a") as f:
        f.write("{not json\n")
    report = run(folder, store)
    assert counts(report) == (0, 0, 0, 0, 0)
    assert report.rejected == (f"{folder / 'manifest.jsonl'}:6: invalid JSON (Expecting property name enclosed"
                               " in double quotes)",)
    assert len(store.articles()) == 5


def test_two_files_with_one_id_are_reported(folder: Path, store: Store) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / f"{S2}.md").write_text("A different story about the harbour budget.\n")
    report = run(folder, store)
    assert counts(report) == (5, 0, 0, 0, 0)
    assert len(report.rejected) == 1 and f"'{S2}'" in report.rejected[0]
    assert "Pasjan" in store.article(S2).text  # type: ignore[union-attr]


def test_jsonl_articles_are_added_updated_and_removed(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    recs = [{"id": f"n{i}", "text": f"Story {i} says the river rose {i} metres on Monday.", "source": "Bugle"}
            for i in range(3)]
    feed = folder / "feed.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert counts(run(folder, store)) == (3, 0, 0, 0, 0)
    recs[0]["text"] += " It fell again on Tuesday."
    feed.write_text("".join(json.dumps(r) + "\n" for r in recs[:2]))
    assert counts(run(folder, store)) == (0, 1, 1, 1, 0)
    assert [r.id for r in store.articles()] == ["n0", "n1"]
    assert_consistent(store)


def test_ingesting_one_file_or_a_missing_path_removes_nothing(folder: Path, store: Store) -> None:
    run(folder, store)
    assert counts(run([folder / f"{S2}.txt"], store)) == (0, 0, 1, 0, 0)
    report = run([folder / "nope"], store)
    assert counts(report) == (0, 0, 0, 0, 0) and report.rejected[0].endswith("no such file or folder")
    assert len(store.articles()) == 5


def test_a_folder_that_cannot_be_read_keeps_its_articles(folder: Path, store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sub = folder / "more"
    sub.mkdir()
    (folder / f"{S2}.txt").rename(sub / f"{S2}.txt")
    run(folder, store)
    (folder / "new.txt").write_text("The harbour festival opened on Monday with forty boats and a brass band.\n")
    real_scandir, real_lstat, real_is_file = os.scandir, Path.lstat, Path.is_file
    denied = PermissionError(13, "Permission denied")

    def scandir(path: str = ".") -> object:  # a folder without read permission
        if str(path) in shut:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def lstat(self: Path) -> os.stat_result:  # a folder that can be listed but not entered
        if str(self.parent) in shut:
            raise denied
        return real_lstat(self)

    for blocked, how, expect in ((sub, scandir, (1, 0, 4, 0, 0)), (sub, lstat, (0, 0, 5, 0, 0)),
                                 (folder, scandir, (0, 0, 0, 0, 0))):
        shut = {str(blocked)}
        monkeypatch.setattr(os, "scandir", scandir if how is scandir else real_scandir)
        monkeypatch.setattr(Path, "lstat", lstat if how is lstat else real_lstat)
        report = run(folder, store)
        assert counts(report) == expect
        assert report.rejected == (f"{blocked}: cannot read folder (Permission denied)",)
        assert {a.id for a in store.articles()} >= {S2, "new"}
        assert_consistent(store)

    def is_file(self: Path) -> bool:  # a folder that cannot even be entered: its manifest is not seen
        if self.parent == folder:
            raise denied
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    report = run(folder, store)
    assert report.rejected == (f"{folder}: cannot read folder (Permission denied)",) and len(store.articles()) == 6


def test_paths_that_are_no_file_or_folder_are_named(folder: Path, tmp_path: Path, store: Store,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would hang
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "empty").mkdir()
    (folder / "dead.txt").symlink_to(tmp_path / "gone.txt")
    with caplog.at_level(logging.WARNING):
        report = run([tmp_path / n for n in ("pipe.txt", "dangling.txt", "loop.txt", "empty")] + [folder], store)
    assert report.added == 5 and report.rejected == (
        f"{tmp_path / 'pipe.txt'}: not a file or folder (a device, pipe or socket)",
        f"{tmp_path / 'dangling.txt'}: no such file or folder (a link to {tmp_path / 'gone.txt'})",
        f"{tmp_path / 'loop.txt'}: cannot read (Too many levels of symbolic links)")
    assert f"{tmp_path / 'empty'}: no article files (.txt, .md, .jsonl) in this folder" in caplog.text
    assert f"{folder}: skipped 1 broken link(s) (dead.txt)" in caplog.text


def test_other_folders_are_left_alone(folder: Path, tmp_path: Path, store: Store) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "harbour.txt").write_text("The harbour council approved the budget on Tuesday.\n")
    run(folder, store)
    run(other, store)
    (other / "harbour.txt").unlink()
    assert counts(run(folder, store)) == (0, 0, 5, 0, 0)
    assert counts(run(other, store)) == (0, 0, 0, 1, 0)


@pytest.mark.parametrize("copies", [True, False])
def test_lost_vectors_of_another_folder_come_back(folder: Path, tmp_path: Path, store: Store, copies: bool) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "harbour.txt").write_text("The harbour council approved the budget on Tuesday.\n")
    run(folder, store)
    run(other, store)
    if not copies:  # a store written before the vector copies were kept
        with store._db:
            store._db.execute("DELETE FROM vectors WHERE article_id = 'harbour'")
    store._col.delete(where={"article_id": "harbour"})  # as a crash can leave it: rows without vectors
    emb = Counting()
    report = run(folder, store, emb)
    # copied back, or else re-embedded from the other folder's stored text
    assert counts(report) == ((0, 0, 5, 0, 0) if copies else (0, 1, 5, 0, 0))
    assert report.chunks_embedded == (0 if copies else 1)
    assert_consistent(store)
    assert counts(run([folder, other], store)) == (0, 0, 6, 0, 0)


def test_changing_the_chunk_size_re_embeds_everything(folder: Path, store: Store) -> None:
    run(folder, store)
    assert counts(run(folder, store, chunk_tokens=60)) == (0, 5, 0, 0, 0)
    assert_consistent(store, chunk_tokens=60)


def test_a_new_chunk_size_cuts_every_stored_article_again(folder: Path, tmp_path: Path, store: Store) -> None:
    """Only the files of the run were cut again: the other articles kept passages of the old size."""
    other = tmp_path / "other"
    other.mkdir()
    shutil.move(folder / f"{S2}.txt", other / f"{S2}.txt")
    run([folder, other], store)
    assert counts(run(other, store, chunk_tokens=60)) == (0, 5, 0, 0, 0)
    assert_consistent(store, chunk_tokens=60)
    assert counts(run(folder, store, chunk_tokens=60)) == (0, 0, 4, 0, 0)


def test_other_embeddings_re_embed_every_stored_article_and_are_refused_until_then(
        folder: Path, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Vectors of one model searched with another's query vector rank at random: an ask answered "the
    articles don't say" to questions they answer. An ingest of one file re-embedded only that file."""
    settings = fake_settings(store.data_dir)
    run(folder, store, embed_model="minilm")
    with pytest.raises(InputError, match=r"made with the 'minilm' embeddings, not 'fake' .*RAG_EMBEDDINGS=minilm"):
        Chain.from_settings(settings)
    monkeypatch.setattr(rag.ingest, "BATCH_ARTICLES", 2)
    caplog.set_level(logging.WARNING)
    with pytest.raises(KeyboardInterrupt):  # stopped after the first batch: two kinds of vectors
        run([folder / f"{S2}.txt"], store, Counting(fail_on_call=2), embed_model="fake")
    assert "the stored vectors were made with the 'minilm' embeddings: embedding every" in caplog.text
    with pytest.raises(InputError, match=r"two kinds: an ingest that changed the embeddings \(minilm -> fake\)"):
        Chain.from_settings(settings)
    one = run([folder / f"{S2}.txt"], store, embed_model="fake")  # one file named: every article is redone
    assert counts(one) == (0, 3, 1, 0, 0)  # the first batch, with S2, was done before the stop
    assert "a change of embeddings (minilm -> fake) was cut short: embedding every stored" in caplog.text
    assert_consistent(store)
    assert counts(run(folder, store, embed_model="fake")) == (0, 0, 5, 0, 0)
    Chain.from_settings(settings).store.close()


def test_an_index_out_of_step_with_the_database_is_restored_whole(folder: Path, store: Store,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Vectors written last through another backend (or by a change cut short) can hold an older version of
    a chunk under the same id: ingest compared ids only and kept it."""
    run(folder, store)
    chunk = next(iter(store.keyword_ids()))
    old = store._col.get(ids=[chunk], include=["metadatas", "embeddings"])
    store._col.upsert(ids=[chunk], embeddings=[[1.0] * len(old["embeddings"][0])],
                      metadatas=[{**old["metadatas"][0], "outlet": "An Older Outlet"}], documents=["older text"])
    store._col.modify(metadata={**(store._col.metadata or {}), "rag_generation": "written elsewhere"})
    caplog.set_level(logging.WARNING)
    Chain.from_settings(fake_settings(store.data_dir)).store.close()
    assert "vector index is out of step with the article database" in caplog.text
    assert counts(run(folder, store)) == (0, 0, 5, 0, 0)
    assert "restoring its 57 passages" in caplog.text
    now = store._col.get(ids=[chunk], include=["metadatas", "embeddings", "documents"])
    assert now["metadatas"][0] == old["metadatas"][0] and now["documents"][0] != "older text"
    assert list(now["embeddings"][0]) == pytest.approx(list(old["embeddings"][0]), abs=1e-6)
    assert store.in_step()


def test_a_write_cut_short_before_its_commit_leaves_no_uncommitted_metadata(
        folder: Path, tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the vectors were upserted and before SQLite committed: Chroma held the new outlet under
    the same chunk ids, SQLite the old one, and both sides' generations still matched (a second read)."""
    run(folder, store)
    manifest = folder / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    committed = rows[0]["outlet"]
    rows[0]["outlet"] = "Uncommitted Outlet"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def killed(generation: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_commit_generation", killed)
    with pytest.raises(KeyboardInterrupt):
        run(folder, store)
    monkeypatch.undo()
    assert not store.in_step()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("A story about the harbour budget, approved on Tuesday.\n")
    run(other, store)  # any ingest repairs first
    outlets = store._col.get(where={"article_id": rows[0]["id"]}, include=["metadatas"])["metadatas"]
    assert {m["outlet"] for m in outlets} == {committed} and store.in_step()
    assert counts(run(folder, store)) == (0, 1, 4, 0, 0)
    outlets = store._col.get(where={"article_id": rows[0]["id"]}, include=["metadatas"])["metadatas"]
    assert {m["outlet"] for m in outlets} == {"Uncommitted Outlet"}


def test_a_store_from_before_the_embeddings_were_recorded(folder: Path, store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No record: an ingest that adds articles with the same embeddings, even cut short, marks nothing (it
    left "unknown -> fake", and every question was refused as "two kinds"); one with other embeddings does,
    once, however often it is cut short (it grew "unknown -> fake -> fake")."""
    run([folder / f"{S2}.txt"], store, embed_model="fake")
    store._db.execute("DELETE FROM state WHERE key = ?", (EMBEDDINGS_KEY,))  # as the previous version left it
    store._db.commit()
    monkeypatch.setattr(rag.ingest, "BATCH_ARTICLES", 2)
    with pytest.raises(KeyboardInterrupt):
        run(folder, store, Counting(fail_on_call=2), embed_model="fake")
    assert store.state(EMBEDDINGS_KEY) is None
    run(folder, store, embed_model="fake")
    assert store.state(EMBEDDINGS_KEY) == "fake"
    store._db.execute("DELETE FROM state WHERE key = ?", (EMBEDDINGS_KEY,))
    store._db.commit()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            run(folder, store, Counting(fail_on_call=2), embed_model="minilm")
        assert store.state(EMBEDDINGS_KEY) == "unknown -> minilm"
    run(folder, store, embed_model="minilm")
    assert store.state(EMBEDDINGS_KEY) == "minilm"


def test_progress_reports_every_batch(folder: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.ingest, "BATCH_ARTICLES", 2)
    seen: list[tuple[int, int]] = []
    run(folder, store, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_an_interrupted_ingest_resumes(folder: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.ingest, "BATCH_ARTICLES", 2)
    with pytest.raises(KeyboardInterrupt):
        run(folder, store, Counting(fail_on_call=2))
    assert len(store.articles()) == 2
    assert_consistent(store)
    assert counts(run(folder, store)) == (3, 0, 2, 0, 0)
    assert_consistent(store)


def test_an_interrupted_update_then_reverted_files_end_consistent(
        folder: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    run(folder, store)
    original = assert_consistent(store)
    texts = {p: p.read_text() for p in folder.glob("*.txt")}
    for p, t in texts.items():
        p.write_text(t.replace("Kosovo", "Kosova"))
    monkeypatch.setattr(rag.ingest, "BATCH_ARTICLES", 2)
    with pytest.raises(KeyboardInterrupt):
        run(folder, store, Counting(fail_on_call=2))
    for p, t in texts.items():
        p.write_text(t)
    report = run(folder, store)
    assert counts(report) == (0, 2, 3, 0, 0)  # the first batch had committed the new text
    assert assert_consistent(store) == original


def test_bad_jsonl_records_are_reported_and_the_good_ones_still_load(tmp_path: Path) -> None:
    from rag.store import Store

    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "ok1", "text": "Kosovo agreed to host fifty deportees from the United States."}\n'
                    "{not json\n"
                    '{"id": "empty", "text": "   "}\n'
                    '{"id": "ok2", "text": "Denmark will send three hundred prisoners to a prison in Kosovo."}\n')
    store = Store(tmp_path / "data")
    report = ingest([path], store, get_embeddings("fake"))
    assert report.added == 2
    assert [line.split(": ")[0] for line in report.rejected] == [f"{path}:2", f"{path}:3"]
    assert {row.id for row in store.articles()} == {"ok1", "ok2"}


def test_a_manifest_named_among_the_files_is_metadata_not_articles(folder: Path, store: Store) -> None:
    """`rag ingest seeds/*`: the manifest is read as in a folder ingest, never as an article feed."""
    report = run(sorted(folder.iterdir()), store)
    assert counts(report) == (5, 0, 0, 0, 0) and report.rejected == ()
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert {r.id: r.outlet for r in store.articles()} == {m["id"]: m["outlet"] for m in manifest}
    (folder / "manifest.jsonl").write_text("{not json\n")
    report = run(sorted(folder.iterdir()), store)  # a bad manifest: one line, and nothing changes
    assert counts(report) == (0, 0, 0, 0, 0) and len(report.rejected) == 1
    assert report.rejected[0].startswith(f"{folder / 'manifest.jsonl'}:1: invalid JSON")


def test_a_manifest_named_alone_gives_its_folder_its_metadata_and_removes_nothing(folder: Path,
                                                                                  store: Store) -> None:
    """After editing a manifest, `rag ingest news/manifest.jsonl` said "unchanged 0" and changed nothing."""
    run(folder, store)
    manifest = folder / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[0]["outlet"] = "Renamed Outlet"
    manifest.write_text("".join(json.dumps(m) + "\n" for m in lines))
    (folder / f"{S2}.txt").unlink()  # its article stays: only the folder's ingest removes it
    (folder / "sub").mkdir()
    (folder / "sub" / "never.txt").write_text("A story of its own, about the harbour festival on Saturday.\n")
    assert counts(run(manifest, store)) == (0, 1, 3, 0, 0)  # and adds no file never ingested
    assert {r.id: r.outlet for r in store.articles()}[lines[0]["id"]] == "Renamed Outlet"
    assert len(store.articles()) == 5
    one = sorted(folder.glob("00*.txt"))[0]
    assert counts(run([one, manifest], store)) == (0, 0, 1, 0, 0)  # named with a file: metadata for it alone


def test_a_link_to_a_file_named_alone_is_the_article_its_folder_gives(tmp_path: Path, store: Store) -> None:
    """Named alone, a link was resolved first: its target's name and folder made a second, stale article
    without the link's manifest metadata."""
    news, other = tmp_path / "news", tmp_path / "other"
    news.mkdir()
    other.mkdir()
    shutil.copy(SEEDS / f"{S2}.txt", other / "target.txt")
    (news / "link.txt").symlink_to(other / "target.txt")
    (news / "manifest.jsonl").write_text(json.dumps({"id": "link", "outlet": "Link Outlet"}) + "\n")
    assert counts(run(news, store)) == (1, 0, 0, 0, 0)
    assert counts(run(news / "link.txt", store)) == (0, 0, 1, 0, 0)
    with (other / "target.txt").open("a") as target:
        target.write("Update: the minister resigned on Friday.\n")
    assert counts(run(news / "link.txt", store)) == (0, 1, 0, 0, 0)
    assert [(r.id, r.outlet, r.source) for r in store.articles()] == [("link", "Link Outlet", str(news / "link.txt"))]
    assert_consistent(store)


def test_a_subfolders_manifest_holds_for_its_files(tmp_path: Path, store: Store) -> None:
    """Ingesting the parent folder read only its own manifest, so the outlets of news/cbs flipped to None
    and back, re-embedding each time, as the parent and the subfolder were ingested in turn."""
    top = tmp_path / "news"
    sub = Path(shutil.copytree(SEEDS, top / "cbs"))
    outlets = {m["id"]: m["outlet"] for m in map(json.loads, (sub / "manifest.jsonl").read_text().splitlines())}
    assert counts(run(top, store)) == (5, 0, 0, 0, 0)
    assert {r.id: r.outlet for r in store.articles()} == outlets
    emb = Counting()
    assert counts(run(sub, store, emb)) == (0, 0, 5, 0, 0)
    assert counts(run(top, store, emb)) == (0, 0, 5, 0, 0) and emb.calls == 0
    # a manifest above adds what the nearer one leaves out (000 has no title there), field by field
    s0 = "000_04e378fec4435f9b"
    (top / "manifest.jsonl").write_text(json.dumps({"id": s0, "outlet": "Top Outlet", "title": "Top title"}) + "\n")
    assert counts(run(top, store)) == (0, 1, 4, 0, 0)
    assert (store.article(s0).outlet, store.article(s0).title) == (outlets[s0], "Top title")  # type: ignore[union-attr]
    # the manifest above holds when the subfolder, or one file of it, is ingested alone
    assert counts(run(sub, store)) == (0, 0, 5, 0, 0)
    assert counts(run([sub / f"{s0}.txt"], store)) == (0, 0, 1, 0, 0)
    assert store.article(s0).title == "Top title"  # type: ignore[union-attr]


def test_records_cut_from_a_jsonl_file_ingested_by_name_are_removed(tmp_path: Path, store: Store) -> None:
    recs = [{"id": f"n{i}", "text": f"Story {i} says the river rose {i} metres on Monday."} for i in range(3)]
    feed, other = tmp_path / "news.jsonl", tmp_path / "other.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in recs))
    other.write_text(json.dumps({"id": "o1", "text": "The harbour council approved the budget on Tuesday."}) + "\n")
    run([feed, other], store)
    feed.write_text(json.dumps(recs[1]) + "\n")
    assert counts(run([feed], store)) == (0, 0, 1, 2, 0)
    assert [r.id for r in store.articles()] == ["n1", "o1"]  # only that file's records
    feed.write_text(json.dumps(recs[2]) + "\n{not json\n")  # a bad line: nothing of the file is removed
    report = run([feed], store)
    assert counts(report) == (1, 0, 0, 0, 0) and len(report.rejected) == 1
    assert [r.id for r in store.articles()] == ["n1", "n2", "o1"]
    assert_consistent(store)


def test_a_file_moved_to_another_folder_keeps_its_article(folder: Path, tmp_path: Path, store: Store) -> None:
    (folder / "manifest.jsonl").unlink()  # metadata stays the same wherever the file is
    run(folder, store)
    other = tmp_path / "other"
    other.mkdir()
    (folder / f"{S2}.txt").rename(other / f"{S2}.txt")
    emb = Counting()
    assert counts(run(other, store, emb)) == (0, 0, 1, 0, 0) and emb.calls == 0
    assert store.article(S2).source == str((other / f"{S2}.txt").resolve())  # type: ignore[union-attr]
    assert counts(run(folder, store)) == (0, 0, 4, 0, 0)  # the folder it left no longer claims it
    assert S2 in {r.id for r in store.articles()}
    assert_consistent(store)


def test_an_id_stored_from_another_file_is_taken_over_with_a_warning(
        folder: Path, tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """A file named on the command line wins (a copied project, a second clone on one data dir, a
    `git pull` there must keep working), but never silently; an upload is refused (see test_ui)."""
    run(folder, store)
    other = tmp_path / "other"
    other.mkdir()
    clash = other / f"{S2}.txt"
    clash.write_text("A different story about the harbour budget, approved on Tuesday.\n")
    (other / "harbour.jsonl").write_text(json.dumps({"id": "h1", "text": "The harbour reopened on Friday."}) + "\n")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        report = run(other, store)
    assert counts(report) == (1, 1, 0, 0, 0) and report.rejected == ()
    assert caplog.messages == [f"warning: {clash.resolve()}: article id '{S2}' was stored from "
                               f"{(folder / f'{S2}.txt').resolve()}, a different text; this file's text replaces it"]
    assert "harbour budget" in store.article(S2).text  # type: ignore[union-attr]
    shutil.copy(folder / f"{S2}.txt", clash)  # the same text in both places: no warning, no embedding
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        assert counts(run(other, store)) == (0, 1, 1, 0, 0)  # S2 updated back to the seed's text; h1 unchanged
        assert counts(run(folder, store)) == (0, 1, 4, 0, 0)  # ... and back from the seeds, with their manifest
    assert caplog.messages == []
    assert store.article(S2).source == str((folder / f"{S2}.txt").resolve())  # type: ignore[union-attr]
    assert store.article(S2).outlet is not None  # type: ignore[union-attr]
    assert {r.id for r in store.articles()} == {p.stem for p in folder.glob("*.txt")} | {"h1"}
    assert_consistent(store)


def test_many_articles_taken_over_from_another_file_are_summed_up(tmp_path: Path, store: Store,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A .jsonl file copied and edited took over each of its 3,000 articles with a warning line apiece."""
    def feed(name: str, word: str) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": f"a{i}", "text": f"{word} story number {i}."}) + "\n"
                                for i in range(12)))
        return path

    run(feed("old.jsonl", "Harbour"), store)
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        report = run(feed("new.jsonl", "River"), store)
    assert report.updated == 12
    assert len(caplog.messages) == rag.ingest.SHOWN_TAKEOVERS + 1
    assert caplog.messages[-1] == f"warning: {12 - rag.ingest.SHOWN_TAKEOVERS} more articles stored from other files" \
                                  " take this run's text"


def test_rag_remove_takes_out_the_articles_of_a_folder_that_is_gone(fake_env: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`rag ingest` of a removed folder is an error, so its articles stayed, and were cited, for good."""
    from rag import cli

    kept, gone = fake_env / "kept", fake_env / "gone"
    kept.mkdir()
    gone.mkdir()
    shutil.copy(SEEDS / f"{S2}.txt", kept)
    for name in ("000_04e378fec4435f9b.txt", "001_4d8e6de282930730.txt"):
        shutil.copy(SEEDS / name, gone)
    assert cli.main(["ingest", str(kept), str(gone)]) == 0
    shutil.rmtree(gone)
    capsys.readouterr()
    assert cli.main(["remove", str(gone), str(fake_env / "typo")]) == 1
    out, err = capsys.readouterr()
    assert out == "removed 2\n"
    assert err == f"error: {fake_env / 'typo'}: no stored article came from this file or folder\n"
    store = Store(fake_env / "data")
    assert [r.id for r in store.articles()] == [S2]
    assert_consistent(store)



def test_a_manifest_id_no_article_has_is_a_warning(tmp_path: Path, store: Store,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A misspelt id in a manifest left its metadata out without a word."""
    top = tmp_path / "news"
    sub = Path(shutil.copytree(SEEDS, top / "cbs"))
    s0 = "000_04e378fec4435f9b"
    lines = [{"id": s0[:-1], "outlet": "Typo"}, {"id": s0, "title": "Top"}, *({"id": f"x{i}"} for i in range(6))]
    (top / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    with caplog.at_level("WARNING", logger="rag"):
        run(top, store)
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {top}/manifest.jsonl: no article read from its folder has the id(s) '{s0[:-1]}', 'x0', 'x1',"
        " 'x2', 'x3' and 2 more; their metadata is not used"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="rag"):  # the seeds' own manifest matches; the one above is not checked
        run(sub, store)
        run([sub / f"{s0}.txt"], store)
    assert not caplog.records


@pytest.mark.parametrize("feed", [
    '{"id": "r1", "text": "%s"}\n{"id": "r2", "text": 12345}\n',  # one bad record
    '{"id": "r1", "text": "%s"}\n{"id": "r2", "text": \n',  # one line that is no JSON
    '\x00\x01%s',  # the whole file rejected
], ids=["bad-record", "bad-line", "bad-file"])
def test_a_manifest_id_of_a_rejected_record_is_no_misspelling(tmp_path: Path, store: Store, feed: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The record is rejected with an error; the manifest's id for it was also warned of as matching no article,
    as if misspelt."""
    top = tmp_path / "news"
    top.mkdir()
    (top / "manifest.jsonl").write_text('{"id": "r1", "title": "One"}\n{"id": "r2", "title": "Two"}\n')
    (top / "feed.jsonl").write_text(feed % "The ferry to the island ran again on Monday after the storm, its owner"
                                           " said.")
    with caplog.at_level("WARNING", logger="rag"):
        run(top, store)
    assert not [r.getMessage() for r in caplog.records if "no article read" in r.getMessage()]
