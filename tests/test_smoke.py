from rag.chain import Chain
from rag.models import Answer, Retrieved, Token


def test_fake_chain_answers_with_a_valid_citation(chain: Chain) -> None:
    answer = chain.ask("How many deportees did Kosovo agree to take?")
    assert not answer.abstained
    assert "50" in answer.answer
    assert answer.citations and all(c.quote in ctx.text for c in answer.citations
                                    for ctx in answer.contexts if ctx.n == c.n)


def test_stream_yields_sources_before_tokens_then_answer(chain: Chain) -> None:
    events = list(chain.stream("When did Kosovo declare independence from Serbia?"))
    assert isinstance(events[0], Retrieved)
    assert any(isinstance(e, Token) for e in events)
    assert isinstance(events[-1], Answer) and "2008" in events[-1].answer
