"""The CLI against a real Chroma server (`chroma run`) through RAG_CHROMA_URL, with the offline fakes.

Starts `chroma run --path <tmp> --host 127.0.0.1 --port <free port>`, waits for its heartbeat, then
runs `rag ingest` / `rag ask --json` as subprocesses (the SQLite side lives in RAG_DATA_DIR) and stops
the server at the end.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from rag import vector_index
from rag.errors import StoreError
from rag.providers import get_embeddings
from rag.settings import PROJECT_ROOT
from rag.store import Store
from tests.servers import RAG, Server, http_thread, running

SEEDS = PROJECT_ROOT / "seeds"
QUESTION = "How many deportees did Kosovo agree to take?"
HEARTBEAT_PATHS = ("/api/v2/heartbeat", "/api/v1/heartbeat")
START_TIMEOUT_S = 60


def _chroma_bin() -> str | None:
    here = Path(sys.executable).parent / "chroma"
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("chroma")


def _heartbeat(url: str) -> bool:
    for path in HEARTBEAT_PATHS:
        try:
            with urllib.request.urlopen(url + path, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            continue
    return False


def _chroma(tmp_path: Path, host: str) -> AbstractContextManager[Server]:
    chroma = _chroma_bin()
    if chroma is None:
        pytest.skip("the `chroma` CLI is not installed (it comes with the chromadb package)")
    where = f"[{host}]" if ":" in host else host
    return running("chroma run", [chroma, "run", "--path", str(tmp_path / "chroma-server"), "--host", host],
                   tmp_path / "chroma.log", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                   ready=lambda port: _heartbeat(f"http://{where}:{port}"), timeout=START_TIMEOUT_S,
                   start_new_session=True)


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[Server]:
    with _chroma(tmp_path, "127.0.0.1") as server:
        yield server


@pytest.fixture
def chroma_server(chroma: Server) -> str:
    return f"http://127.0.0.1:{chroma.port}"


def _env(url: str, data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "RAG_CHROMA_URL": url, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake",
            "RAG_DATA_DIR": str(data), "ANONYMIZED_TELEMETRY": "False", **extra}


def _rag(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAG, *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_against_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    env = _env(chroma_server, tmp_path / "data")

    first = _rag(["ingest", str(SEEDS)], env)
    assert first.returncode == 0, first.stderr
    assert "added 5 " in first.stdout, first.stdout
    # the vectors live on the server, not in the data dir
    assert not (tmp_path / "data" / "chroma").exists()

    asked = _rag(["ask", QUESTION, "--json"], env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"], answer
    assert "50" in answer["answer"], answer["answer"]
    assert answer["citations"], answer
    cited = {c["n"] for c in answer["citations"]}
    assert all(f"[{n}]" in answer["answer"] for n in cited), answer["answer"]
    assert all(c["article_id"] and c["quote"] for c in answer["citations"])

    again = _rag(["ingest", str(SEEDS)], env)
    assert again.returncode == 0, again.stderr
    assert "unchanged 5 " in again.stdout, again.stdout
    assert "(0 chunks embedded)" in again.stdout, again.stdout

    # a server that lost the collection (wiped, or run without --path) gets the vectors back from the
    # copies in the data dir, without embedding anything again
    port = int(chroma_server.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False))
    chunks = client.get_collection("articles").count()
    client.delete_collection("articles")
    restored = _rag(["ingest", str(SEEDS)], env)
    assert restored.returncode == 0, restored.stderr
    assert "unchanged 5 " in restored.stdout and "(0 chunks embedded)" in restored.stdout, restored.stdout
    assert client.get_collection("articles").count() == chunks
    asked = _rag(["ask", QUESTION, "--json"], env)
    assert asked.returncode == 0 and "50" in json.loads(asked.stdout)["answer"], asked.stdout


def test_a_second_data_folder_cannot_take_a_collection_it_did_not_fill(chroma_server: str, tmp_path: Path) -> None:
    """Every ingest deletes the vectors its own SQLite file does not know: a second data folder pointed at
    the same server collection deleted all of the first's vectors (and its questions found nothing)."""
    def env(data: str, **extra: str) -> dict[str, str]:
        return _env(chroma_server, tmp_path / data, **extra)

    def refused(data: str, owner: str) -> None:
        other = _rag(["ingest", str(SEEDS / "000_04e378fec4435f9b.txt")], env(data))
        assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
        assert other.stderr.strip().splitlines()[-1] == (
            f"error: Chroma collection 'articles' at {chroma_server} holds the vectors of {owner}, and an ingest"
            f" from {tmp_path / data} would delete them: set RAG_COLLECTION to another name, RAG_DATA_DIR to that"
            " folder, or delete the collection on the server (a data folder restores its own vectors from their"
            " copies at its next ingest)")

    assert _rag(["ingest", str(SEEDS)], env("a")).returncode == 0
    refused("b", f"the data folder {socket.gethostname()}:{(tmp_path / 'a').resolve()}")
    assert not list((tmp_path / "b").glob("*.sqlite"))  # no empty collection made
    again = _rag(["ingest", str(SEEDS)], env("a"))  # the first folder's vectors are all there
    assert "unchanged 5 " in again.stdout and "(0 chunks embedded)" in again.stdout, again.stdout
    assert "50" in json.loads(_rag(["ask", QUESTION, "--json"], env("a")).stdout)["answer"]
    apart = _rag(["ingest", str(SEEDS)], env("b", RAG_COLLECTION="articles-b"))
    assert apart.returncode == 0 and "added 5 " in apart.stdout, apart.stderr
    (tmp_path / "a").rename(tmp_path / "moved")  # a folder moved is still the owner
    assert "unchanged 5 " in _rag(["ingest", str(SEEDS)], env("moved")).stdout
    shutil.rmtree(tmp_path / "moved")  # a folder made anew is not: on two hosts, one path is two folders
    refused("moved", "an earlier data folder in this place (removed and made anew since)")
    port = int(chroma_server.rsplit(":", 1)[1])
    chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)
                        ).delete_collection("articles")  # handed over, as the message says
    assert "added 5 " in _rag(["ingest", str(SEEDS)], env("moved")).stdout


def test_switching_between_the_server_and_the_local_index_keeps_each_in_step(chroma_server: str,
                                                                            tmp_path: Path) -> None:
    """One data folder, its vectors written through the server and then locally again: the local index
    held the chunks' old metadata (an outlet changed meanwhile), because an ingest compared ids only."""
    news = tmp_path / "news"
    shutil.copytree(SEEDS, news)
    local = {**_env(chroma_server, tmp_path / "data"), "RAG_CHROMA_URL": ""}
    server = _env(chroma_server, tmp_path / "data")
    assert "added 5 " in _rag(["ingest", str(news)], local).stdout
    assert "unchanged 5 " in _rag(["ingest", str(news)], server).stdout
    manifest = news / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[0]["outlet"] = "Renamed Outlet"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "updated 1 " in _rag(["ingest", str(news)], server).stdout

    asked = _rag(["ask", QUESTION], local)  # before the local index is brought in step
    assert asked.returncode == 0 and "vector index is out of step" in asked.stderr, asked.stderr
    back = _rag(["ingest", str(news)], local)
    assert back.returncode == 0 and "unchanged 5 " in back.stdout, back.stderr
    assert "restoring its " in back.stderr, back.stderr
    store = Store(tmp_path / "data")
    try:
        outlets = store._col.get(where={"article_id": rows[0]["id"]}, include=["metadatas"])["metadatas"]
        assert outlets and {m.get("outlet") for m in outlets} == {"Renamed Outlet"}
        assert store.in_step()
    finally:
        store.close()


def test_two_data_folders_evaluate_one_corpus_on_one_server(chroma_server: str, tmp_path: Path) -> None:
    """The corpus's collection was named after its path alone: the second data folder was refused, told to
    set RAG_COLLECTION, which --corpus does not use."""
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "d1", "text": "The Zorblat festival takes place every July in Quentin."})
                      + "\n")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "c1", "question": "When is the Zorblat festival?", "answer": "July",
                                 "must_contain": ["July"]}) + "\n")
    for folder in ("one", "two"):
        env = _env(chroma_server, tmp_path / folder)
        ran = _rag(["eval", "--corpus", str(corpus), "--cases", str(cases), "--out", str(tmp_path / f"run-{folder}")],
                   env)
        assert ran.returncode == 0, ran.stderr
        assert "corpus_" in json.loads((tmp_path / f"run-{folder}" / "run.json").read_text())["collection"]


def test_a_running_process_sees_the_generation_another_wrote(chroma_server: str, tmp_path: Path) -> None:
    """chromadb keeps a collection's metadata as it read it: a chat running beside `rag ingest` took the
    server's index as out of step and put every vector back at its next upload (a second read)."""
    from rag.ingest import ingest

    emb = get_embeddings("fake")
    running = Store(tmp_path / "data", chroma_url=chroma_server)
    other = Store(tmp_path / "data", chroma_url=chroma_server)
    ingest([SEEDS / "000_04e378fec4435f9b.txt"], other, emb, embed_model="fake")
    assert running.in_step()
    running.close()
    other.close()


def test_a_server_that_stops_answering_is_an_error_not_a_hang(chroma: Server, chroma_server: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """chromadb's HTTP client waits for ever: a stopped server held `rag ask` (and the chat's one answer slot)."""
    assert _rag(["ingest", str(SEEDS)], _env(chroma_server, tmp_path / "data")).returncode == 0
    monkeypatch.setattr(vector_index, "SERVER_TIMEOUT_S", 2)
    monkeypatch.setattr(vector_index, "HEARTBEAT_TIMEOUT_S", 2)
    store = Store(tmp_path / "data", "articles", chroma_server)
    query = get_embeddings("fake").embed_query(QUESTION)
    assert store.vector_search(query, 4)
    os.kill(chroma.proc.pid, signal.SIGSTOP)
    try:
        stopped = f"^cannot open Chroma store at {chroma_server}: no answer within 2 s$"
        with pytest.raises(StoreError, match=stopped):  # the search timed out, and so did opening it again
            store.vector_search(query, 4)
        with pytest.raises(StoreError, match=stopped):
            Store(tmp_path / "data", "articles", chroma_server)
    finally:
        os.kill(chroma.proc.pid, signal.SIGCONT)
    assert store.vector_search(query, 4)


def test_a_running_chat_finds_a_collection_made_anew(chroma_server: str, tmp_path: Path) -> None:
    """A server wiped and refilled by `rag ingest`: the chat's every search said "Collection [...] does not
    exist" until it was restarted."""
    env = _env(chroma_server, tmp_path / "data")
    assert _rag(["ingest", str(SEEDS)], env).returncode == 0
    store = Store(tmp_path / "data", "articles", chroma_server)
    query = get_embeddings("fake").embed_query(QUESTION)
    before = [h.chunk_id for h in store.vector_search(query, 4)]
    port = int(chroma_server.rsplit(":", 1)[1])
    chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)
                        ).delete_collection("articles")
    restored = _rag(["ingest", str(SEEDS)], env)
    assert "unchanged 5 " in restored.stdout, restored.stderr
    assert [h.chunk_id for h in store.vector_search(query, 4)] == before


def test_chroma_urls_that_name_no_chroma_server_say_what_answered(chroma: Server, tmp_path: Path) -> None:
    class NotChroma(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"<!DOCTYPE HTML><html>Not found</html>")

        def log_message(self, *args: object) -> None:
            pass

    with http_thread(NotChroma) as other:
        cases = {f"http://127.0.0.1:{other}": "what answers there is not a Chroma server (HTTP 404 for"
                                              " /api/v2/heartbeat); check the port",
                 f"https://127.0.0.1:{chroma.port}": "does the server speak plain http://?"}
        for url, message in cases.items():
            failed = _rag(["ingest", str(SEEDS)], _env(url, tmp_path / "data"))
            assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
            assert failed.stderr.strip().splitlines()[-1].startswith(f"error: cannot open Chroma store at {url}: ")
            assert message in failed.stderr


def test_an_error_page_from_a_proxy_before_the_server_is_one_line(chroma_server: str, tmp_path: Path) -> None:
    """chromadb raises a plain Exception holding the reply for an error it does not know (a proxy's 502
    page while the server restarts): `rag ask` printed its traceback."""
    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/query"):
                status, reply = 502, b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>"
            else:
                request = urllib.request.Request(chroma_server + self.path, data=body or None, method=self.command,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, reply = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, reply = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    with http_thread(Proxy) as port:
        env = _env(f"http://127.0.0.1:{port}", tmp_path / "data")
        assert _rag(["ingest", str(SEEDS)], env).returncode == 0
        failed = _rag(["ask", QUESTION], env)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.strip().splitlines() == [f"error: cannot search the vectors on the Chroma server at"
                                                  f" http://127.0.0.1:{port}: 502 Bad Gateway"]


def test_an_ipv6_server_address(tmp_path: Path) -> None:
    """`RAG_CHROMA_URL=http://[::1]:8000` failed: "Invalid port: ':1:8000'"."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with _chroma(tmp_path, "::1") as server:
        done = _rag(["ingest", str(SEEDS)], _env(f"http://[::1]:{server.port}", tmp_path / "data"))
    assert done.returncode == 0 and "added 5 " in done.stdout, done.stderr
