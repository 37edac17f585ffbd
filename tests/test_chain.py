import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.chain import Chain
from rag.errors import InputError
from rag.ingest import ingest
from rag.models import Context
from rag.prompts import ABSTAIN_TEXT, OTHER_REPORT, OWN_WORDS, PREMISE_TEXT, YES_NO_TEXT
from rag.providers import Backend, get_embeddings
from rag.settings import Settings
from rag.store import Store
from rag.verify import Judge

from .conftest import fake_settings


def scripted(settings: Settings, store: Store, *replies: str) -> Chain:
    """A chain whose model says exactly ``replies`` in turn (no judge model: rules only)."""
    return Chain(settings, store, Backend("scripted", "scripted", FakeListChatModel(responses=list(replies))))


def ingest_text(path: Path, store: Store, settings: Settings, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    ingest([path], store, get_embeddings("fake"), chunk_tokens=settings.chunk_tokens)


def two_reports(tmp_path: Path, first: str, second: str) -> tuple[Settings, Store]:
    """A store holding two one-paragraph articles on the Kosovo deal, ingested with the fake embeddings."""
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "first.txt").write_text(f"Kosovo deal\n\n{first}\n")
    (articles / "second.txt").write_text(f"Kosovo agreement\n\n{second}\n")
    settings = fake_settings(tmp_path / "data", min_relevance=-1)
    store = Store(settings.data_dir)
    ingest([articles], store, get_embeddings("fake"), chunk_tokens=settings.chunk_tokens)
    return settings, store


def test_bad_questions_are_one_line_input_errors(chain: Chain) -> None:
    with pytest.raises(InputError, match="question is empty"):
        chain.ask("   ")
    with pytest.raises(InputError, match="over the 2000-character limit"):
        chain.ask("why? " * 500)


def test_empty_store_abstains_without_calling_the_model(settings: Settings, store: Store) -> None:
    answer = scripted(settings, store, "should not be used").ask("How many deportees?")
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and not answer.contexts


def test_model_saying_not_found_abstains(settings: Settings, seeded_store: Store) -> None:
    answer = scripted(settings, seeded_store, "NOT FOUND").ask("What is the population of Kosovo?")
    assert answer.abstained and answer.contexts  # the evidence looked at is still returned


def test_citation_to_a_missing_passage_is_dropped_and_recorded(settings: Settings, seeded_store: Store) -> None:
    answer = scripted(settings, seeded_store, "Kosovo agreed to host 50 deportees [9].").ask(
        "How many deportees did Kosovo agree to take?")
    assert answer.dropped_citations == (9,)
    assert "[9]" not in answer.answer
    # the sentence got the passage that states it instead, and that citation quotes the number
    assert answer.citations and "50" in answer.citations[0].quote


def test_flag_marks_an_unsupported_sentence(settings: Settings, seeded_store: Store) -> None:
    chain = scripted(settings, seeded_store, "Kosovo agreed to host 50 deportees [1]. It was paid 900 dollars [1].")
    answer = chain.ask("How many deportees did Kosovo agree to take?")
    assert not answer.abstained
    assert [c.verdict for c in answer.claims] == ["supported", "unsupported"]
    assert "900" in (answer.claims[1].reason or "")


def test_a_yes_no_question_the_model_will_not_answer_gets_the_passage_sentence_on_it(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "port.txt", store, settings, "Chile opened a new port in May, officials said.\n\n"
                "Peru has not recognized the new port, its foreign minister said on Monday.\n\n"
                "Trade through the port doubled in June.")
    question = "Does Peru recognize Chile's new port?"
    answer = scripted(settings, store, "NOT FOUND").ask(question)
    assert not answer.abstained and answer.answer.startswith(YES_NO_TEXT)
    assert "Peru has not recognized the new port" in answer.answer and answer.citations
    # a bare yes the passage does not support is not kept: the same sentence is quoted in its place
    answer = scripted(settings, store, "Yes [1].").ask(question)
    assert not answer.abstained and "Yes" not in answer.answer
    assert "Peru has not recognized the new port" in answer.answer
    answer = scripted(settings, store, "NOT FOUND").ask("Has Peru signed a treaty with Chile on trade?")
    assert answer.abstained and answer.answer == ABSTAIN_TEXT


def test_a_bare_yes_shows_the_sentence_of_its_passage_it_rests_on(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "port.txt", store, settings, "Chile opened a new port in May, officials said.\n\n"
                "Peru signed a trade treaty with Chile on Monday, its foreign minister said.")
    chain = scripted(settings, store, "Yes [1].", "Yes, Peru signed it [1].", "Yes [1].")
    chain.judge = Judge(lambda claim, passage: 0.9, 0.75)  # a judge model that passes the bare yes
    answer = chain.ask("Has Peru signed a trade treaty with Chile?")
    assert answer.answer == "Yes: Peru signed a trade treaty with Chile on Monday, its foreign minister said [1]."
    assert answer.citations[0].quote.startswith("Peru signed")
    assert chain.ask("Has Peru signed a trade treaty with Chile?").answer == "Yes, Peru signed it [1]."
    assert chain.ask("What did Peru sign?").answer == "Yes [1]."  # not a yes/no question: left as it is


def test_a_citation_quotes_each_sentence_that_cites_it(settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "deal.txt", store, settings, "Denmark signed a prison deal with Kosovo in 2022. "
                "The deal is worth $217 million. It starts in 2027.")
    answer = scripted(settings, store, "Denmark signed a prison deal with Kosovo [1]. It is worth $217 million [1]. "
                      "The deal is worth $217 million [1]. Yes [1].").ask("What deal did Denmark sign with Kosovo?")
    citation, = answer.citations
    assert citation.quotes == ("Denmark signed a prison deal with Kosovo in 2022.", "The deal is worth $217 million.")
    assert citation.quote == citation.quotes[0]
    assert answer.to_json()["citations"][0]["quotes"] == citation.quotes  # type: ignore[index]


def test_a_yes_no_question_in_other_words_is_quoted_where_the_judge_reads_a_yes(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "peru.txt", store, settings, "Lima hosted a trade fair in May.\n\n"
                "Peru declared its independence from Spain in 1821, historians say.")
    question = "Did Peru become independent from Spain before 1900?"
    chain = scripted(settings, store, "NOT FOUND", "NOT FOUND")
    asked: list[str] = []

    def p_yes(claim: str, passage: str) -> float:
        asked.append(claim)
        return 0.9 if "1821" in passage else 0.1
    chain.judge = Judge(p_yes, 0.75)
    answer = chain.ask(question)
    assert answer.answer.startswith(YES_NO_TEXT) and "declared its independence from Spain in 1821" in answer.answer
    assert asked and asked[0] == 'The answer to "Did Peru become independent from Spain before 1900" is: Yes'
    chain.judge = Judge(lambda claim, passage: 0.6, 0.75)  # under the bar: no passage speaks to it
    assert chain.ask(question).abstained


def test_nothing_supported_means_abstain_with_the_draft_kept(settings: Settings, seeded_store: Store) -> None:
    answer = scripted(settings, seeded_store, "Kosovo has 1.8 million people [1].").ask(
        "What is the population of Kosovo?")
    assert answer.abstained and answer.draft == "Kosovo has 1.8 million people [1]."


def test_repair_regenerates_and_drops_what_stays_unsupported(tmp_path: Path, seeded_store: Store) -> None:
    settings = fake_settings(tmp_path, verify="repair")
    chain = scripted(settings, seeded_store, "Kosovo took 500 deportees [1].",
                     "Kosovo agreed to host 50 deportees [1]. It got 7 medals [1].")
    answer = chain.ask("How many deportees did Kosovo agree to take?")
    assert [c.verdict for c in answer.claims] == ["supported"]
    assert "500" not in answer.answer and "medals" not in answer.answer


def test_verify_off_keeps_claims_unjudged(tmp_path: Path, seeded_store: Store) -> None:
    settings = fake_settings(tmp_path, verify="off")
    answer = scripted(settings, seeded_store, "Kosovo took 500 deportees [1].").ask("How many deportees?")
    assert not answer.abstained and answer.claims[0].verdict == "supported" and answer.claims[0].score is None


def test_follow_up_is_rewritten_with_the_history(chain: Chain) -> None:
    answer = chain.ask("When did it declare independence?",
                       [("How many deportees did Kosovo agree to take?", "50 [1].")])
    assert "Kosovo" in answer.standalone_question
    assert "2008" in answer.answer


def test_json_shape_matches_the_contract(chain: Chain) -> None:
    data = chain.ask("How many deportees did Kosovo agree to take?").to_json()
    assert {"answer", "abstained", "citations", "contexts", "timings"} <= set(data)
    citations, contexts = data["citations"], data["contexts"]
    assert isinstance(citations, list) and isinstance(contexts, list)
    assert set(citations[0]) == {"n", "article_id", "chunk_id", "title", "outlet", "date", "quote", "quotes"}
    assert set(contexts[0]) == {"chunk_id", "article_id", "text", "score"}


def test_a_false_premise_repeated_beside_a_supported_sentence_is_corrected_and_dropped(
        settings: Settings, seeded_store: Store) -> None:
    chain = scripted(settings, seeded_store,
                     "Kosovo agreed to host 500 deportees [1]. Kosovo agreed to host 50 deportees [1].")
    answer = chain.ask("Why did Kosovo agree to host 500 deportees?")
    assert answer.answer.startswith(PREMISE_TEXT) and "500" not in answer.answer
    assert [c.verdict for c in answer.claims] == ["supported", "supported"]
    assert "host 50 deportees" in answer.claims[1].text


def test_a_correction_does_not_repeat_the_sentence_it_quotes(settings: Settings, seeded_store: Store) -> None:
    question = "Why did Kosovo agree to host 500 deportees?"
    first = scripted(settings, seeded_store, "Kosovo agreed to take 500 deportees [1].").ask(question)
    quoted = first.claims[0]
    sentence = quoted.text.removeprefix(PREMISE_TEXT).strip()
    # the draft says the passage's sentence again beside the wrong number
    answer = scripted(settings, seeded_store, f"Kosovo agreed to take 500 deportees [1]. {sentence}").ask(question)
    assert answer.answer.startswith(PREMISE_TEXT)
    assert [c.text for c in answer.claims] == [quoted.text]
    # also when the draft changes its quote marks or its last stop
    retold = sentence.replace("'", "’").replace("].", "]!")
    answer = scripted(settings, seeded_store, f"Kosovo agreed to take 500 deportees [1]. {retold}").ask(question)
    assert [c.text for c in answer.claims] == [quoted.text]


def test_the_outlet_a_question_names_is_no_false_premise(settings: Settings, seeded_store: Store) -> None:
    from rag.conflicts import wrong_premise
    from rag.models import Context

    said = Context(n=1, chunk_id="a@1", article_id="a", outlet="Wyoming Star", author="Michelle Larsen", score=0.8,
                   text="Seventeen members of the Tren de Aragua gang arrived in El Salvador, according to "
                        "El Salvador's Press Presidency Office.")
    assert wrong_premise("Members of which gang arrived in El Salvador, according to the Wyoming Star?",
                         [said]) is None
    assert wrong_premise("Members of which gang arrived in El Salvador, according to Michelle Larsen?",
                         [said]) is None


def test_a_wrong_number_in_the_question_is_corrected_from_the_passage(settings: Settings,
                                                                       seeded_store: Store) -> None:
    chain = scripted(settings, seeded_store, "Kosovo agreed to take 500 deportees [1].")
    answer = chain.ask("Why did Kosovo agree to host 500 deportees?")
    assert not answer.abstained
    assert answer.answer.startswith(PREMISE_TEXT)
    assert "50" in answer.citations[0].quote and "500" not in answer.citations[0].quote
    assert answer.draft == "Kosovo agreed to take 500 deportees [1]."


def test_a_why_question_the_model_will_not_answer_gets_its_false_premise_corrected(
        settings: Settings, seeded_store: Store) -> None:
    answer = scripted(settings, seeded_store, "NOT FOUND").ask("Why did Kosovo agree to host 500 deportees?")
    assert not answer.abstained and answer.answer.startswith(PREMISE_TEXT)
    assert "50" in answer.citations[0].quote and "500" not in answer.answer
    # only a "why" question takes its statement as given: "How many ... in 2019?" asks about 2019
    assert scripted(settings, seeded_store, "NOT FOUND").ask("How many deportees did Kosovo agree to host in "
                                                             "1999?").abstained


def test_a_name_the_passages_never_state_is_corrected_when_the_model_will_not_answer(
        settings: Settings, seeded_store: Store) -> None:
    answer = scripted(settings, seeded_store, "NOT FOUND").ask("How much is Sweden paying Kosovo to hold its "
                                                               "foreign prisoners?")
    assert not answer.abstained and answer.answer.startswith(PREMISE_TEXT)
    assert "Denmark" in answer.answer and "Sweden" not in answer.answer
    # a yes/no question asks whether its statement holds; a question naming what the passages name is refused
    for question in ("Is Sweden paying Kosovo to hold its foreign prisoners?",
                     "During its deal, has Sweden paid Kosovo to hold its foreign prisoners?",
                     "How much is Denmark paying Kosovo to hold its foreign prisoners?"):
        assert scripted(settings, seeded_store, "NOT FOUND").ask(question).abstained, question


def test_a_corrected_question_is_asked_again_of_what_the_passage_says_instead(
        settings: Settings, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_text(tmp_path / "deal.txt", store, settings, "In 2022, Kosovo signed a deal with Denmark to hold 300 "
                "foreign prisoners convicted in Danish courts. The deal is worth about $217 million, officials said.")
    question = "How much is Sweden paying Kosovo to hold its foreign prisoners?"
    chain = scripted(settings, store, "NOT FOUND", "Denmark is paying about $217 million [1].")
    asked: list[str] = []
    generate = chain._generate

    def spy(prompt: Any, inputs: dict[str, str], *more: Any) -> Iterator[str]:
        asked.append(inputs["question"])
        return generate(prompt, inputs, *more)
    monkeypatch.setattr(chain, "_generate", spy)
    answer = chain.ask(question)
    assert asked == [question, question.replace("Sweden", "Denmark")]
    assert answer.answer.startswith(PREMISE_TEXT) and "with Denmark" in answer.claims[0].text
    assert [c.text for c in answer.claims[1:]] == ["Denmark is paying about $217 million [1]."]
    # the second answer is kept only where it holds and says neither the quote again nor the wrong value
    for reply in ("NOT FOUND", "Sweden is paying about $217 million [1].", "Denmark is paying $900 million [1].",
                  "In 2022, Kosovo signed a deal with Denmark to hold 300 foreign prisoners convicted in Danish "
                  "courts [1]."):
        answer = scripted(settings, store, "NOT FOUND", reply).ask(question)
        assert len(answer.claims) == 1 and answer.answer.startswith(PREMISE_TEXT), reply


def test_a_sentence_joining_two_passages_facts_is_judged_clause_by_clause(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "opened.txt", store, settings, "Chile opened a new port in May, officials said.")
    ingest_text(tmp_path / "ships.txt", store, settings, "Ships under 200 metres may dock at the port, the harbour "
                "master said.")
    draft = "Chile opened a new port in May, and it takes ships under 200 metres [1]."
    chain = scripted(settings, store, draft, draft)

    def p_yes(claim: str, passage: str) -> float:  # supported where the claim's longer words all stand
        return 0.9 if all(w in passage.lower() for w in re.findall(r"[a-z]{5,}", claim.lower())) else 0.1
    chain.judge = Judge(p_yes, 0.75)
    answer = chain.ask("When did Chile open its port, and which ships can dock?")
    assert answer.abstained  # "takes" is in neither passage: half a sentence is not kept as an answer
    chain.judge = Judge(lambda claim, passage: p_yes(claim.replace("takes", "dock"), passage), 0.75)
    answer = chain.ask("When did Chile open its port, and which ships can dock?")
    assert [c.verdict for c in answer.claims] == ["supported", "supported"]
    assert sorted(c.cited for c in answer.claims) == [(1,), (2,)]  # each clause cites the passage stating it


def test_a_list_joined_from_two_sentences_is_replaced_by_the_passage_sentence(tmp_path: Path) -> None:
    """The draft takes one name from the sentence before the list; the answer quotes the list instead,
    and only when that sentence is about the question."""
    from rag.ingest import ingest
    from rag.providers import get_embeddings

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "baltic.txt").write_text(
        "Baltic offer\n\nReports say that neighbours such as Latvia were approached about the scheme. "
        "Estonia, among the region's smallest economies alongside Malta and Cyprus, welcomed the offer.\n")
    settings = fake_settings(tmp_path / "data", min_relevance=-1)  # the fake embeddings score one-article stores low
    store = Store(settings.data_dir)
    ingest([articles], store, get_embeddings("fake"), chunk_tokens=settings.chunk_tokens)
    draft = "Latvia and Cyprus are among the region's smallest economies [1]."
    answer = scripted(settings, store, draft).ask("Which countries are named alongside Estonia among the region's "
                                                  "smallest economies?")
    assert answer.answer.startswith(OWN_WORDS) and "alongside Malta and Cyprus" in answer.answer
    assert "Latvia" not in answer.answer and answer.citations[0].quote.startswith("Estonia")
    twice = scripted(settings, store, draft + " Latvia and Malta are small economies too [1].")
    assert twice.ask("Which countries are named alongside Estonia among the region's smallest economies?"
                     ).answer.count(OWN_WORDS) == 1  # two lists mended by one sentence quote it once
    off_topic = scripted(settings, store, draft).ask("Which Baltic countries were named in reports this week?")
    assert off_topic.abstained and off_topic.draft == draft


def test_a_bound_taken_from_the_question_is_replaced_by_the_passage_sentence(tmp_path: Path) -> None:
    """The draft calls a plain "50" the maximum (the question's word): the answer quotes the passage's own
    sentence instead, and still sets the report of "at least 50" against the draft's "maximum"."""
    settings, store = two_reports(tmp_path, "Concretely, the country will take 50 deportees, the embassy said on "
                                  "Wednesday.", "The Republic of Kosovo has agreed to take in at least 50 illegal "
                                  "immigrants over a one-year period.")
    question = "Is 50 the maximum or the minimum number of deportees Kosovo will take?"
    contexts = scripted(settings, store).retriever.search(question)
    n = next(c.n for c in contexts if "Concretely" in c.text)
    answer = scripted(settings, store, f"50 is the maximum number of deportees Kosovo will take [{n}].").ask(question)
    assert answer.answer.startswith(f"{OWN_WORDS} Concretely, the country will take 50 deportees")
    assert "maximum" not in answer.answer and f"[{n}]" in answer.answer
    assert answer.claims[-1].text.startswith(OTHER_REPORT) and "at least 50" in answer.claims[-1].text
    assert len(answer.citations) == 2


def test_passages_of_bare_text_files_are_not_labelled() -> None:
    """Where no passage has an outlet, author or date, "(unknown outlet, undated)" before each one tells
    the model nothing; where one has, the others' unknowns are kept (the outlet may be the question)."""
    from rag.models import Context
    from rag.prompts import format_passages

    def ctx(n: int, outlet: str | None = None) -> Context:
        return Context(n=n, chunk_id=f"a@{n}", article_id="a", text="Kosovo will  take\n50.", score=0.8,
                       outlet=outlet)

    assert format_passages([ctx(1), ctx(2)]).splitlines() == ["[1] Kosovo will take 50.", "[2] Kosovo will take 50."]
    assert format_passages([ctx(1, "AP"), ctx(2)]).splitlines() == [
        "[1] (AP, undated) Kosovo will take 50.", "[2] (unknown outlet, undated) Kosovo will take 50."]


def test_an_answer_that_only_says_the_question_again_is_no_answer(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    ingest_text(tmp_path / "thanks.txt", store, settings, "A ministry spokesperson thanked the volunteers on "
                "Friday. The port was opened in May.")
    echo = "The ministry spokesperson thanked the volunteers [1]."
    assert scripted(settings, store, echo).ask("What is the name of the ministry spokesperson who thanked the "
                                               "volunteers?").abstained
    answered = scripted(settings, store, "The ministry spokesperson thanked the volunteers on Friday [1].")
    assert not answered.ask("When did the ministry spokesperson thank the volunteers?").abstained
    # a question opening with a verb is answered by saying (one side of) it again
    assert not scripted(settings, store, "The port was opened in May [1].").ask("Was the port opened in May?").abstained
    assert not scripted(settings, store, "The port was opened in May [1].").ask(
        "Was the port opened in May or in June?").abstained


def test_another_report_is_quoted_only_if_the_judge_reads_it_as_an_answer(tmp_path: Path) -> None:
    """Two reports give the deal's size as "up to 50" and "at least 50": the second is quoted as disagreeing
    when the judge reads its sentence as an answer to the question, and left out when it does not."""
    settings, store = two_reports(tmp_path, "Kosovo has agreed to host up to 50 migrants deported from the United "
                                  "States over the next year.", "The Republic of Kosovo has agreed to take in at "
                                  "least 50 migrants deported from the United States over a one-year period.")
    question = "How many deportees will Kosovo host from the United States?"
    n = next(c.n for c in scripted(settings, store).retriever.search(question) if "up to" in c.text)
    asked: list[str] = []

    def ask(other_report: float) -> Any:
        def p_yes(claim: str, passage: str) -> float:
            if claim.startswith("The answer to"):
                asked.append(claim)
                return other_report
            return 0.9
        chain = scripted(settings, store, f"Kosovo will host up to 50 migrants from the United States [{n}].")
        chain.judge = Judge(p_yes, 0.75)
        return chain.ask(question)

    answer = ask(0.9)
    assert answer.claims[-1].text.startswith(OTHER_REPORT) and "at least 50" in answer.claims[-1].text
    assert answer.claims[-1].score == 0.9 and len(answer.citations) == 2
    assert asked and "at least 50" in asked[-1] and question.rstrip("?") in asked[-1]
    answer = ask(0.6)
    assert OTHER_REPORT not in answer.answer and len(answer.claims) == 1 and len(answer.citations) == 1
    assert "up to 50" in answer.answer


def test_a_passage_heading_is_its_article_title_and_first_sentence(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    store = Store(settings.data_dir)
    ingest_text(tmp_path / "bridge.txt", store, settings,
                "Ostler Bridge reopens\n\nCARROWMERE — Traffic returned to the Ostler Bridge on Thursday. "
                "The crossing had been shut for fourteen months.\n")
    chain = scripted(settings, store)
    (row,) = store.articles()
    passage = Context(n=1, chunk_id="x", article_id=row.id, text="The crossing had been shut.", score=0.5)
    assert chain._heading(passage) == ("Ostler Bridge reopens. CARROWMERE — Traffic returned to the Ostler Bridge"
                                       " on Thursday.")
    assert chain._heading(passage.model_copy(update={"article_id": "gone"})) == ""
