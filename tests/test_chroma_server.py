"""The CLI against a real Chroma server (`chroma run`) through RAG_CHROMA_URL, with the offline fakes.

Starts `chroma run --path <tmp> --host 127.0.0.1 --port <free port>`, waits for its heartbeat, then
runs `rag ingest` / `rag ask --json` as subprocesses (the SQLite side lives in RAG_DATA_DIR) and stops
the server at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from rag.settings import PROJECT_ROOT
from tests.servers import RAG, running

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


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    chroma = _chroma_bin()
    if chroma is None:
        pytest.skip("the `chroma` CLI is not installed (it comes with the chromadb package)")
    with running("chroma run", [chroma, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1"],
                 tmp_path / "chroma.log", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                 ready=lambda port: _heartbeat(f"http://127.0.0.1:{port}"), timeout=START_TIMEOUT_S,
                 start_new_session=True) as server:
        yield f"http://127.0.0.1:{server.port}"


def _rag(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAG, *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_against_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake",
           "RAG_DATA_DIR": str(tmp_path / "data"), "ANONYMIZED_TELEMETRY": "False"}

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
        return {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake",
                "RAG_DATA_DIR": str(tmp_path / data), "ANONYMIZED_TELEMETRY": "False", **extra}

    assert _rag(["ingest", str(SEEDS)], env("a")).returncode == 0
    other = _rag(["ingest", str(SEEDS / "000_04e378fec4435f9b.txt")], env("b"))
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
    assert other.stderr.strip().splitlines()[-1] == (
        f"error: Chroma collection 'articles' at {chroma_server} holds the vectors of another data folder than"
        f" {tmp_path / 'b'}, and an ingest here would delete them: set RAG_COLLECTION to another name, or"
        " RAG_DATA_DIR to the folder that filled it")
    assert not list((tmp_path / "b").glob("*.sqlite"))  # no empty collection made
    again = _rag(["ingest", str(SEEDS)], env("a"))  # the first folder's vectors are all there
    assert "unchanged 5 " in again.stdout and "(0 chunks embedded)" in again.stdout, again.stdout
    assert "50" in json.loads(_rag(["ask", QUESTION, "--json"], env("a")).stdout)["answer"]
    apart = _rag(["ingest", str(SEEDS)], env("b", RAG_COLLECTION="articles-b"))
    assert apart.returncode == 0 and "added 5 " in apart.stdout, apart.stderr
