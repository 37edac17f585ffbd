from collections.abc import Sequence

import pytest

from rag.models import Context
from rag.premise import PREMISE_COSINE, refused_premise

DEAL = ("Kosovo's prisons chief spoke on Monday. In 2022, Denmark and Kosovo made an agreement that saw the "
        "transfer of 300 foreign prisoners to the Correctional Institution in Gjilan.")
OTHER = "Kosovo declared its independence from Serbia in 2008."


def ctx(n: int, text: str) -> Context:
    return Context(n=n, chunk_id=f"a{n}@0", article_id=f"a{n}", text=text, score=0.8, outlet="Daily Post")


def close_to(word: str, cosine: float):  # type: ignore[no-untyped-def]
    """A similarity giving ``cosine`` to the sentences holding ``word`` and 0.1 to the others."""
    def similarity(text: str, others: list[str]) -> Sequence[float]:
        return [cosine if word in other else 0.1 for other in others]
    return similarity


PASSAGES = [ctx(1, DEAL), ctx(2, OTHER)]
NORWAY = "Under its 2022 prison deal with Norway, how many foreign inmates will Kosovo hold?"


def test_a_name_no_passage_states_is_corrected_by_the_sentence_closest_in_meaning() -> None:
    fix = refused_premise(NORWAY, PASSAGES, close_to("Denmark", PREMISE_COSINE + 0.01))
    assert fix is not None
    value, passage, sentence = fix
    assert value == "norway" and passage.n == 1 and sentence.startswith("In 2022, Denmark")


@pytest.mark.parametrize("question, cosine", [
    (NORWAY, PREMISE_COSINE - 0.01),  # the closest sentence is not close enough to be on the same fact
    (NORWAY.replace("Norway", "Denmark"), 0.95),  # every name the question holds is stated: no premise
    ("Under its 2019 prison deal, how many foreign inmates will Kosovo hold?", 0.95),  # a number may be missing
    ("Has Kosovo's 2022 prison deal with Norway sent inmates to Gjilan?", 0.95),  # yes/no asks if it holds
    ("Under its 2022 prison deal with the Daily Post, how many inmates will Kosovo hold?", 0.95),  # an outlet
])
def test_no_premise_is_corrected_where_the_question_may_hold(question: str, cosine: float) -> None:
    assert refused_premise(question, PASSAGES, close_to("Denmark", cosine)) is None


def test_the_closest_sentence_must_name_another_name() -> None:
    assert refused_premise(NORWAY, [ctx(1, "The prisons will hold 300 foreign inmates.")],
                           close_to("prisons", 0.95)) is None


def test_without_a_similarity_only_the_words_are_read() -> None:
    assert refused_premise(NORWAY, PASSAGES) is None


@pytest.mark.parametrize("question, value, sentence, asked", [
    ("How much is Sweden paying Kosovo to hold its prisoners?", "sweden",
     "In 2022, the country signed a deal with Denmark to hold 300 prisoners.",
     "How much is Denmark paying Kosovo to hold its prisoners?"),
    ("Why did Kosovo agree to take in 75 deportees?", "75", "In June, Kosovo agreed to host 50 deportees.",
     "Why did Kosovo agree to take in 50 deportees?"),  # a number for a number, not a name or a month
    ("Why did Kosovo agree to take in 1,500 deportees?", "1500", "Kosovo agreed to host 50 deportees.",
     None),  # the question does not write the value as it is read
    ("How much is Sweden paying Kosovo?", "sweden", "Kosovo is paid by the country it helps.", None),
])
def test_the_question_is_asked_again_with_the_value_the_sentence_gives(question: str, value: str, sentence: str,
                                                                       asked: str | None) -> None:
    from rag.premise import asked_instead

    assert asked_instead(question, (value, PASSAGES[0], sentence)) == asked
