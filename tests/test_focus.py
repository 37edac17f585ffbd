from collections.abc import Sequence
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.chain import Chain
from rag.fakes import FakeEmbeddings
from rag.focus import GAP, focus
from rag.models import Context
from rag.providers import Backend
from rag.store import Store

from .conftest import fake_settings

PASSAGES = (
    Context(n=1, chunk_id="a@0", article_id="a", score=0.5, outlet="Daily",
            text="The mayor opened the bridge. Rain fell all day. The bridge cost 40 million dollars to build."),
    Context(n=2, chunk_id="b@0", article_id="b", score=0.4,
            text="A football match was played. Fans sang songs in the square."),
)


def test_keeps_the_best_sentences_in_order_with_their_passage_number() -> None:
    kept = focus("How much did the bridge cost to build?", PASSAGES, FakeEmbeddings(), limit=2)
    assert [c.n for c in kept] == [1]  # passage 2 had no sentence good enough: left out of the prompt
    assert kept[0].text.startswith("The mayor opened the bridge.")
    assert "Rain fell" not in kept[0].text and GAP.strip() in kept[0].text
    assert kept[0].text.endswith("The bridge cost 40 million dollars to build.")


def test_no_limit_or_few_sentences_keeps_the_passages_whole() -> None:
    assert focus("bridge?", PASSAGES, FakeEmbeddings(), limit=0) == PASSAGES
    assert focus("bridge?", PASSAGES, FakeEmbeddings(), limit=5) == PASSAGES


def test_chain_sends_focused_passages_but_cites_and_shows_whole_ones(tmp_path: Path, seeded_store: Store) -> None:
    settings = fake_settings(tmp_path / "d", focus_sentences=3, top_k=4)
    model = FakeListChatModel(responses=["Kosovo agreed to host 50 deportees [1]."])
    seen: list[str] = []
    chain = Chain(settings, seeded_store, Backend("scripted", "scripted", model))
    original = chain._passages

    def spy(question: str, contexts: Sequence[Context]) -> str:
        seen.append(original(question, contexts))
        return seen[-1]

    chain._passages = spy  # type: ignore[method-assign]
    answer = chain.ask("How many deportees did Kosovo agree to take?")
    whole = "".join(c.text for c in answer.contexts)
    assert seen and len(seen[0]) < len(whole)  # fewer words went to the model
    assert sum(len(c.text) for c in answer.contexts) == len(whole) and answer.citations
    assert answer.citations[0].quote in whole  # the quote is from the full passage
