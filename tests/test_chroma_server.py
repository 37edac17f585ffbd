"""The CLI against a real Chroma server (`chroma run`) through RAG_CHROMA_URL, with the offline fakes.

Starts `chroma run --path <tmp> --host 127.0.0.1 --port <free port>`, waits for its heartbeat, then
runs `rag ingest` / `rag ask --json` as subprocesses (the SQLite side lives in RAG_DATA_DIR) and stops
the server at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
QUESTION = "How many deportees did Kosovo agree to take?"
HEARTBEAT_PATHS = ("/api/v2/heartbeat", "/api/v1/heartbeat")
START_TIMEOUT_S = 60


def _chroma_bin() -> str | None:
    here = Path(sys.executable).parent / "chroma"
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = _free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _heartbeat(url):
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}:\n"
                            + (tmp_path / "chroma.log").read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run gave no heartbeat within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _rag(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, cwd=PROJECT_ROOT,
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
