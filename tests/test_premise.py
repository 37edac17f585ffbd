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
     "In 2022, the country signed a deal with Denmark to hold 300 prisoners convicted in Danish courts.",
     "How much is Denmark paying Kosovo to hold its prisoners?"),  # "in Danish courts" is where, not who
    ("Why did Kosovo agree to take in 75 deportees?", "75", "In 2022, Kosovo agreed to host 50 deportees.",
     "Why did Kosovo agree to take in 50 deportees?"),  # a number for a number, a year only for a year
    ("Why did Kosovo agree to take in 1,500 deportees over 2.5 years?", "1500", "Kosovo agreed to host 50.",
     "Why did Kosovo agree to take in 50 deportees over 2.5 years?"),
    ("Why did Kosovo agree to pay 2.5 million over 2 years?", "2", "Kosovo agreed to pay it over 3 years.",
     "Why did Kosovo agree to pay 2.5 million over 3 years?"),  # not the 2 of 2.5
    ("What did South Korea's envoy say about Kosovo?", "south", "The envoy of New Zealand praised the deal.",
     "What did New Zealand's envoy say about Kosovo?"),  # a name goes whole
    ("How much is Sweden paying Kosovo?", "sweden", "Kosovo is paid by the country it helps.", None),
    ("How much is Sweden paying Kosovo?", "sweden",
     "The deal, Justice Minister Peter Hummelgaard said, is paid by Denmark.", None),  # two names: which one?
    ("How much is Sweden paying Kosovo?", "sweden", "The deal was signed in Copenhagen in May.", None),
])
def test_the_question_is_asked_again_with_the_value_the_sentence_gives(question: str, value: str, sentence: str,
                                                                       asked: str | None) -> None:
    from rag.premise import asked_instead

    assert asked_instead(question, (value, PASSAGES[0], sentence)) == asked


@pytest.mark.parametrize("question, passage", [
    ("What did President Biden say about the prison deal?", "Biden said the deal with Denmark was a model."),
    ("What did Prime Minister Albin Kurti say about the prison deal?", "Kurti said the deal with Denmark holds."),
    ("How many Swedish prisoners will Kosovo hold under the deal?", "Kosovo will hold 300 prisoners from Sweden "
     "under the deal with Denmark."),
    ("How much is Sweden paying Kosovo to hold prisoners in the Gjilan prison?", "In May, Kosovo agreed to hold "
     "prisoners in the Gjilan prison for 200 million euros."),  # a month is no other payer
])
def test_a_name_the_passage_states_in_another_form_is_no_false_premise(question: str, passage: str) -> None:
    assert refused_premise(question, [ctx(1, passage)], close_to("deal", 0.95)) is None
    assert refused_premise(question, [ctx(1, passage)], close_to("Gjilan", 0.95)) is None
