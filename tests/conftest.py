"""Shared fixtures: a fake-model chain over the seed articles in a temporary store."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rag.chain import Chain
from rag.ingest import ingest
from rag.providers import get_embeddings, make_backend
from rag.settings import PROJECT_ROOT, Settings, get_settings
from rag.store import Store

SEEDS = PROJECT_ROOT / "seeds"
SHARED = PROJECT_ROOT.parent / "shared"


def fake_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for the offline fakes; ``overrides`` as Settings fields."""
    return Settings(data_dir=data_dir, llm="fake", embeddings="fake", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fake_settings(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings.data_dir, settings.collection)


@pytest.fixture
def seeded_store(settings: Settings, store: Store) -> Store:
    ingest([SEEDS], store, get_embeddings("fake"), chunk_tokens=settings.chunk_tokens, embed_model="fake")
    return store


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the seeds, ingested by ``rag ingest`` with the fakes in a process of its own; one for
    each test module."""
    from tests.servers import run_rag  # servers imports this module

    data = tmp_path_factory.mktemp("seeded") / "data"
    proc = run_rag(["ingest", str(SEEDS)], data)
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture
def chain(settings: Settings, seeded_store: Store) -> Chain:
    return Chain(settings, seeded_store, make_backend(settings))


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate a server started by a test; kill it if it does not stop in ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The offline fakes and a data dir under tmp_path, through the environment as a user sets them."""
    for key, value in {"RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAG_UI_AUTH", raising=False)  # a login of the shell running the tests
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
