"""The deterministic fakes: embeddings and a chat model that need no model, for tests and demos."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

EMBED_DIM = 384


def _stem(word: str) -> str:
    return re.sub(r"(ing|ed|es|s)$", "", word) if len(word) > 4 else word


class FakeEmbeddings(Embeddings):
    """Deterministic bag-of-words hashing: similar wording -> similar vectors. For tests."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        vec = [0.0] * EMBED_DIM
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.md5(_stem(word).encode()).digest()
            vec[int.from_bytes(digest[:4], "little") % EMBED_DIM] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]


# ---- the chat model ------------------------------------------------------------------------
_PASSAGE = re.compile(r"^\[(\d+)\] (?:\([^)\n]*\) )?(.+)$", re.M)  # "[2] (outlet, date) text", label optional
_WORD = re.compile(r"[a-z0-9]+")
FAKE_STOP = frozenset("""the a an of to in on at by for from with and or is are was were be did does do what
which who when where why how that this it its as has have had will would about into""".split())


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in FAKE_STOP}


class FakeChatModel(BaseChatModel):
    """Answers with the passage sentence that shares most words with the question, cited; says
    NOT FOUND when no sentence shares two content words. Rewrites follow-ups by appending the
    previous question. Deterministic, instant: for tests and demos without a model."""

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _reply(self, messages: list[BaseMessage]) -> str:
        from rag.chunking import sentence_spans

        prompt = str(messages[-1].content)
        if m := re.search(r"Earlier question: (.*)\n(?:.*\n)*?Follow-up: (.*)", prompt):
            return f"{m.group(2).strip()} ({m.group(1).strip()})"
        question = prompt.rsplit("Question:", 1)[-1]
        if "Answer again" in prompt:  # a repair request names the question differently
            question = prompt.split("Question:", 1)[-1].split("\n")[0]
        want = content_words(question)
        best, best_n, best_score = "", 0, 1
        for m in _PASSAGE.finditer(prompt):
            body = m.group(2)
            for a, b in sentence_spans(body):
                score = len(want & content_words(body[a:b]))
                if score > best_score:
                    best, best_n, best_score = body[a:b], int(m.group(1)), score
        return f"{best} [{best_n}]" if best else "NOT FOUND"

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*", self._reply(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages)))])
