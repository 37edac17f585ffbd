"""The real models: MiniLM embeddings and the local Qwen GGUF. Few LLM calls (CI runs these)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.chain import Chain
from rag.ingest import ingest
from rag.model_file import ensure_model
from rag.providers import get_embeddings, make_backend
from rag.settings import Settings
from rag.store import Store

from .conftest import SEEDS

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    settings = Settings(data_dir=tmp_path_factory.mktemp("real"), llm="local", embeddings="minilm")
    store = Store(settings.data_dir)
    ingest([SEEDS], store, get_embeddings("minilm"))
    return Chain(settings, store, make_backend(settings))


def test_model_file_is_assembled_and_verified() -> None:
    path = ensure_model()
    assert path.stat().st_size == 1_117_320_768
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert Path(str(path).replace(".gguf", ".verified")).is_file()


def test_minilm_embeds_similar_sentences_closer() -> None:
    emb = get_embeddings("minilm")
    a, b, c = (np.asarray(v) for v in emb.embed_documents(
        ["Kosovo agreed to take 50 deportees.", "Kosovo will accept fifty deported migrants.",
         "The football match ended in a draw."]))
    assert a.shape == (384,)
    assert a @ b > a @ c + 0.2


def test_real_answer_cites_the_passage_with_the_number(real_chain: Chain) -> None:
    answer = real_chain.ask("How many deportees did Kosovo agree to take?")
    assert not answer.abstained
    assert "50" in answer.answer
    assert any("50" in c.quote for c in answer.citations)
    for c in answer.citations:  # every quote is exact text of the passage it points at
        assert c.quote in next(ctx.text for ctx in answer.contexts if ctx.n == c.n)


def test_real_abstains_when_the_articles_do_not_say(real_chain: Chain) -> None:
    assert real_chain.ask("What is the population of Kosovo?").abstained


def test_real_follow_up_uses_history(real_chain: Chain) -> None:
    history = [("How many deportees did Kosovo agree to take?", "Kosovo agreed to take 50 deportees [1].")]
    answer = real_chain.ask("When did it declare independence?", history)
    assert "kosovo" in answer.standalone_question.lower()
    assert "2008" in answer.answer and answer.citations


def test_real_judge_gives_the_same_number_whatever_ran_before(real_chain: Chain) -> None:
    """llama.cpp's numbers depend on how tokens were batched: reusing a cached prefix of any length
    made one claim's P(yes) drift with the calls before it (0.9556 .. 0.9599 here before the fix)."""
    from rag.prompts import ANSWER_PROMPT, JUDGE_PROMPT

    backend = real_chain.backend
    passage = "(Wyoming Star, 2025-06-13) Kosovo agreed to host 50 deportees. The embassy confirmed the deal."
    claim = JUDGE_PROMPT.format_messages(passage=passage, claim="Kosovo will host 50 deportees.")
    first = backend.p_yes(claim)
    backend.p_yes(JUDGE_PROMPT.format_messages(passage=passage, claim="The embassy confirmed it."))
    after_same_passage = backend.p_yes(claim)
    backend.p_yes(JUDGE_PROMPT.format_messages(passage="(OAN) Rwanda is in talks.", claim="Rwanda is in talks."))
    backend.chat.invoke(ANSWER_PROMPT.format_messages(passages=f"[1] {passage}", question="Who confirmed it?"),
                        max_tokens=8)
    assert first is not None and first == after_same_passage == backend.p_yes(claim)
