"""The local model: both slots share one loaded model and switching slots changes no answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rag.model_file import ensure_model
from rag.providers import LocalChatModel, SharedLlama, chatml, make_backend
from rag.providers.local import _LOCK
from rag.settings import Settings

pytestmark = pytest.mark.real

PASSAGE = "Kosovo agreed to take in at least 50 deportees from the United States, officials said."


def _judge(claim: str) -> list[BaseMessage]:
    return [SystemMessage("Answer Yes or No: does the passage state the claim?"),
            HumanMessage(f"Passage: {PASSAGE}\nClaim: {claim}")]


def _chat(question: str) -> list[BaseMessage]:
    return [SystemMessage("Answer from the passage in a few words."), HumanMessage(f"{PASSAGE}\nQuestion: {question}")]


def test_slots_share_one_model_and_switching_keeps_answers_identical(tmp_path: Path) -> None:
    import llama_cpp

    settings = Settings(data_dir=tmp_path / "data", llm="local", embeddings="fake")
    backend = make_backend(settings)
    chat, judge = backend.chat, backend.rewriter
    assert isinstance(chat, LocalChatModel) and isinstance(judge, LocalChatModel)
    assert (chat.slot, judge.slot) == ("chat", "judge")
    shared = chat.shared()
    assert judge.shared() is shared  # one Llama, so one copy of the weights

    # the old layout, a context of its own per slot, as the reference: each slot's calls in order
    ref_model = SharedLlama(llama_cpp.Llama(model_path=str(ensure_model(settings.model_cache_dir)),
                                            n_ctx=settings.n_ctx, n_threads=settings.n_threads, n_batch=256,
                                            verbose=False))

    class Reference(LocalChatModel):
        def shared(self) -> SharedLlama:
            return ref_model

    ref = Reference(model_path=chat.model_path, n_ctx=chat.n_ctx, n_threads=chat.n_threads)
    questions, claims = ("How many deportees?", "How many deportees will it take?"), ("Kosovo takes 50.", "It takes 9.")
    expected: list[object] = [ref.invoke(_chat(q), max_tokens=6).content for q in questions]
    expected += [ref.p_yes(_judge(c)) for c in claims]

    # interleaved on the shared model: every call switches slot, each slot finds its own KV cache again
    got = [chat.invoke(_chat(questions[0]), max_tokens=6).content, chat.p_yes(_judge(claims[0])),
           chat.invoke(_chat(questions[1]), max_tokens=6).content, chat.p_yes(_judge(claims[1]))]
    assert [got[0], got[2], got[1], got[3]] == expected
    assert shared.switches >= 4
    with _LOCK:  # the judge slot's tokens are back, so its next call reuses their prefix
        tokens = shared.llm.tokenize(chatml(_judge(claims[1])).encode(), special=True)
        assert list(shared.use("chat")._input_ids) != tokens
        assert list(shared.use("judge")._input_ids) == tokens
