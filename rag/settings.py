"""The only place that reads environment and configuration (prefix ``RAG_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Libraries we use phone home unless told not to; this project runs offline.
for _key, _value in {
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", frozen=True)

    data_dir: Path = PROJECT_ROOT / ".rag"
    collection: str = "articles"
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 -> Chroma server

    llm: Literal["local", "openai", "fake"] = "local"
    embeddings: Literal["minilm", "fake"] = "minilm"
    verify: Literal["off", "flag", "repair"] = "flag"

    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: str | None = Field(default=None, repr=False)
    openai_timeout_s: float = 60.0

    model_cache_dir: Path | None = None  # where the assembled GGUF lives
    n_threads: int = Field(default_factory=lambda: os.cpu_count() or 2)
    n_ctx: int = 4096
    max_answer_tokens: int = 200

    chunk_tokens: int = 120
    chunk_overlap_sentences: int = 1
    top_k: int = 4
    candidates: int = 20
    min_relevance: float = 0.25  # best vector similarity below this -> nothing relevant
    support_threshold: float = 0.75  # judge P(yes) below this -> unsupported (tuned: rag eval-judge)

    max_question_chars: int = 2000
    max_file_bytes: int = 5_000_000

    ui_auth: str | None = Field(default=None, repr=False)  # "user:password"
    ui_queue_size: int = 16


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read settings once; invalid values become a one-line ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "RAG_" + str(err["loc"][0]).upper() if err["loc"] else "RAG_*"
        allowed = err.get("ctx", {}).get("expected", "")
        hint = f" (allowed: {allowed})" if allowed else ""
        raise ConfigError(f"setting {name}={err.get('input')!r} is invalid: {err['msg']}{hint}") from None
