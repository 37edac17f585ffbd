import re
from collections.abc import Callable

import pytest

from rag.claims import attach_citations, clauses, clean_citations, markers, numbers_in, split_claims
from rag.models import Claim, Context
from rag.verify import Judge, best_quote, deterministic_check, judge_claims, named_above, uncredited, veto

PASSAGE = ("Officials in Kosovo, Europe's youngest country, agreed to host 50 deportees from other countries. "
           "Kosovo declared its independence from Serbia in 2008.")


def ctx(n: int, text: str) -> Context:
    return Context(n=n, chunk_id=f"a@{n}", article_id="a", text=text, score=0.8)


def test_markers_and_invalid_citations_are_dropped_and_recorded() -> None:
    text, dropped = clean_citations("Kosovo took 50 deportees [1][7]. It is new [2, 9].", {1, 2})
    assert markers(text) == [1, 2]
    assert dropped == (7, 9)
    assert "[7]" not in text and "[9]" not in text


def test_split_claims_moves_a_marker_after_the_full_stop_into_its_sentence() -> None:
    claims = split_claims("Kosovo declared independence in 2008. [2] It hosts 50 deportees [1, 3].")
    assert claims == [("Kosovo declared independence in 2008 [2].", (2,)),
                      ("It hosts 50 deportees [1, 3].", (1, 3))]


def test_clauses_with_a_pronoun_for_subject_become_sentences_and_a_list_stays_whole() -> None:
    assert clauses("Kosovo takes 50 deportees, and it can choose them [3].") == [
        "Kosovo takes 50 deportees [3].", "It can choose them [3]."]
    assert clauses("Kosovo took 50 [1] [2]; they stay a year [2].") == [
        "Kosovo took 50 [1] [2].", "They stay a year [2]."]
    for whole in ("El Salvador, Costa Rica, and Panama have received deportees [1].",
                  "Kosovo took 50 deportees [1]."):
        assert clauses(whole) == [whole]


def test_deterministic_check_catches_a_wrong_number_and_a_missing_name() -> None:
    assert deterministic_check("Kosovo agreed to host 50 deportees.", PASSAGE) is None
    assert deterministic_check("Kosovo agreed to host 500 deportees.", PASSAGE) == "'500' is not in the passage"
    reason = deterministic_check("Albania declared its independence in 2008.", PASSAGE)
    assert reason is not None and "Albania" in reason


def test_a_digit_in_a_name_or_unit_is_no_number_to_find() -> None:
    passage = "Tesla reported third-quarter revenue of $6.3 billion on Oct 23, 2019."
    assert veto("Tesla's revenue in Q3 2019 was $6.3 billion.", passage) is None
    assert veto("Tesla's revenue in Q3 2019 was $6.8 billion.", passage) == "'6.8' is not in the passage"
    assert numbers_in("COVID-19 cases fell in the 1990s, the G7, 4K screens, $6.3bn, 500,000 and 2008.") == {
        "19", "1990", "500000", "2008"}
    assert veto("It was released on September 20, 2019.", "It came out on September 20th, 2019.") is None
    assert veto("Meta bought it for $1.0 billion.", "Meta's $1 billion purchase") is None
    assert numbers_in("1.50, 10.0, 100, 2.05 and 0.5") == {"1.5", "10", "100", "2.05", "0.5"}
    from rag.reports import _bounds  # a bound's number is written as numbers_in writes it

    assert set(_bounds("up to 1.0 million and at least 2,000.50 more")) == numbers_in("1 million, 2000.5")


def test_combined_judge_needs_the_model_and_the_numbers() -> None:
    yes = Judge(lambda claim, passage: 0.9)
    assert yes("Kosovo agreed to host 50 deportees.", PASSAGE).supported
    assert not yes("Kosovo agreed to host 60 deportees.", PASSAGE).supported  # model said yes, number wrong
    no = Judge(lambda claim, passage: 0.1)
    verdict = no("Kosovo agreed to host 50 deportees.", PASSAGE)
    assert not verdict.supported and verdict.score == 0.1
    rules_only = Judge(None)
    assert rules_only("Kosovo declared independence in 2008.", PASSAGE).score is None


def test_a_title_the_passage_does_not_hold_is_vetoed_however_sure_the_model_is() -> None:
    passage = "White House Press Secretary Karoline Leavitt posted an image of a deportation flight."
    sure = Judge(lambda claim, passage: 0.86, 0.75)
    verdict = sure("The U.S. Secretary of State is Karoline Leavitt [1].", passage)
    assert not verdict.supported and verdict.reason == "'Secretary of State' is not in the passage"
    assert sure("Karoline Leavitt is the White House Press Secretary [1].", passage).supported
    # a sentence's first word is no title ("Because of ..."), and a title may be said the other way round
    assert sure("\"Because of Leavitt,\" the image was posted [1].", passage).supported
    assert sure("Kurti is the Prime Minister of Kosovo [1].", "Kosovo's Prime Minister Albin Kurti spoke.").supported


def test_a_body_named_by_the_first_words_of_a_longer_name_is_vetoed() -> None:
    sure = Judge(lambda claim, passage: 0.94, 0.75)
    passage = "The NFLPA board re-elected JC Tretter as president of the NFL Players Association."
    verdict = sure("The president of the NFL is JC Tretter [1].", passage)
    assert not verdict.supported
    assert verdict.reason == "the passage says 'president of the NFL Players', not 'president of the NFL'"
    assert sure("JC Tretter is the president of the NFL Players Association [1].", passage).supported
    game = "Marc-Alexis Côté, creative director of Assassin's Creed Syndicate and Unity, spoke."
    assert not sure("Marc-Alexis Côté is the director of the Assassin's Creed movie [1].", game).supported
    # the name the role is given stands after it; the body in other words; or named in full somewhere
    assert sure("Albin Kurti is the prime minister of Kosovo [1].",
                "The prime minister of Kosovo Albin Kurti spoke on Monday.").supported
    assert sure("Kurti is the prime minister of Kosovo [1].", "The prime minister of Kosovo said so.").supported
    assert sure("It is the home of the Tampa Bay Bucs.", "It is the home of the Tampa Bay Bucs. It").supported
    assert sure("Rosalind Achterberg is the mayor of Marrenford [1].",
                "The mayor of Marrenford, Rosalind Achterberg, met the mayor of Marrenford Harbour.").supported


def test_uncited_sentence_gets_the_passage_that_holds_it_and_only_that() -> None:
    out = attach_citations([("Kosovo declared its independence from Serbia in 2008.", ()),
                            ("Bananas are yellow fruit.", ())], [ctx(1, "Unrelated text."), ctx(2, PASSAGE)])
    assert out[0] == ("Kosovo declared its independence from Serbia in 2008 [2].", (2,))
    assert out[1] == ("Bananas are yellow fruit.", ())


def test_best_quote_is_the_exact_matching_sentence() -> None:
    quote = best_quote("When did Kosovo declare independence? 2008", PASSAGE)
    assert quote == "Kosovo declared its independence from Serbia in 2008."
    assert quote in PASSAGE


def test_judge_claims_verdicts() -> None:
    claims = judge_claims([("Kosovo hosts 50 deportees [1].", (1,)), ("It has 9 million people.", ()),
                           ("Kosovo hosts 70 deportees [1].", (1,))], [ctx(1, PASSAGE)], Judge(None))
    assert [c.verdict for c in claims] == ["supported", "uncited", "unsupported"]
    assert claims[2].reason == "'70' is not in the passage"


def test_marker_between_an_abbreviation_and_the_full_stop_stays_put() -> None:
    assert split_claims("It is recognised by the U.S. [1].") == [("It is recognised by the U.S. [1].", (1,))]


def test_a_claim_citing_the_wrong_passage_is_pointed_at_the_right_one() -> None:
    claims = judge_claims([("Kosovo declared its independence from Serbia in 2008 [1].", (1,))],
                          [ctx(1, "Unrelated text about the weather."), ctx(2, PASSAGE)], Judge(None))
    assert claims[0].verdict == "supported" and claims[0].cited == (2,)
    assert claims[0].text == "Kosovo declared its independence from Serbia in 2008 [2]."


def test_a_copied_claim_needs_less_model_confidence_than_a_paraphrase() -> None:
    judge = Judge(lambda claim, passage: 0.72, threshold=0.75)
    assert judge("Kosovo declared its independence from Serbia in 2008.", PASSAGE).supported
    assert not judge("Kosovo broke away from Belgrade in 2008.", PASSAGE).supported


GJILAN = ("In 2022, Denmark and Kosovo made an agreement that saw the transfer of 300 foreign prisoners to "
          "Kosovo’s Correctional Institution in Gjilan. They are expected to be deported after their sentences.")
PASJAN = ("In 2022, the country signed a controversial deal with Denmark allowing up to 300 foreign prisoners "
          "convicted in Danish courts to serve the remainder of their sentences at a facility in Pasjan, in "
          "southeastern Kosovo.")


def actx(n: int, article: str, text: str) -> Context:
    return Context(n=n, chunk_id=f"{article}@{n}", article_id=article, text=text, score=0.8)


def test_a_report_with_another_value_for_the_asked_fact_is_found() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    question = "Where in Kosovo will the prisoners from Denmark serve their sentences?"
    claims = [Claim(text="They will serve them at the Correctional Institution in Gjilan [1].", cited=(1,))]
    contexts = [actx(1, "oan", GJILAN), actx(2, "star", PASJAN), actx(3, "cbs", PASSAGE)]
    found = disagreements(question, claims, contexts)
    assert [(c.n, "Pasjan" in s) for c, s in found] == [(2, True)]


def test_reports_that_agree_are_not_called_a_disagreement() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    question = "How many deportees did Kosovo agree to host?"
    claims = [Claim(text="Kosovo agreed to host 50 deportees [1].", cited=(1,))]
    other = "Kosovo's embassy said the deal would allow 50 deportees from other nations to be relocated to Kosovo."
    assert disagreements(question, claims, [actx(1, "cbs", PASSAGE), actx(2, "latin", other)]) == []


def test_initials_are_no_topic_for_a_disagreement() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    # "U.S." gives the words u and s: every passage on U.S. policy has them
    question = "Who is the U.S. Secretary of State?"
    claims = [Claim(text="The U.S. Secretary of State is Karoline Leavitt [1].", cited=(1,))]
    leavitt = "White House Press Secretary Karoline Leavitt posted an image of a deportation flight."
    other = "In a statement to CBS News, the U.S. State Department said the United States welcomes the deal."
    assert disagreements(question, claims, [actx(1, "ny", leavitt), actx(2, "cbs", other)]) == []

RWANDA = ("In early May, Rwanda's foreign minister, Olivier J.P. Nduhungirehe, said on state broadcaster Rwanda TV "
          "that the country's government was in early stage talks about receiving third-country deportees.")


def test_a_name_the_passages_never_mention_is_a_premise_to_correct() -> None:
    from rag.conflicts import wrong_premise

    fix = wrong_premise("What did Kenya's foreign minister say about third-country deportees?",
                        [actx(1, "cbs", PASSAGE), actx(2, "latin", RWANDA)])
    assert fix is not None and fix[0] == "kenya" and fix[1].n == 2 and "Rwanda" in fix[2]


def test_a_question_the_passages_do_not_answer_is_not_a_false_premise() -> None:
    from rag.conflicts import wrong_premise

    contexts = [actx(1, "cbs", PASSAGE), actx(2, "latin", RWANDA)]
    assert wrong_premise("What is the population of Kosovo?", contexts) is None
    assert wrong_premise("What did Rwanda's foreign minister say about deportees?", contexts) is None


def test_a_value_an_equally_relevant_sentence_states_is_no_false_premise() -> None:
    from rag.conflicts import wrong_premise

    tally = actx(1, "a", "The Zorvath Prize in Poetry has been awarded 40 times between 1950 and 2022.")
    winner = actx(2, "b", "The Zorvath Prize in Poetry for 2019 is awarded to the Brenmoor author ...")
    question = "Who was awarded the 2019 Zorvath Prize in Poetry?"
    assert wrong_premise(question, [tally, winner]) is None
    assert wrong_premise(question.replace("2019", "2017"), [tally, winner]) is not None


def test_a_question_followed_by_an_ellipsis_states_nothing() -> None:
    from rag.conflicts import _asks

    assert _asks("When is the Brenmoor festival's opening date? ...")
    assert _asks("When is the Brenmoor festival's opening date?")
    assert not _asks("The Brenmoor festival opens on 12 May ...")


def test_reports_about_other_places_are_not_a_disagreement() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    question = "How many visitors came to the Zorvath festival?"
    claims = [Claim(text="The Zorvath festival drew 11 thousand visitors [1].", cited=(1,))]
    contexts = [actx(1, "a", "The Zorvath festival drew 11 thousand visitors on Saturday."),
                actx(2, "b", "The Brenmoor festival drew 17 thousand visitors on Sunday.")]
    assert disagreements(question, claims, contexts) == []


def test_a_word_every_passage_has_does_not_make_a_sentence_about_the_fact() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    question = "How many nations recognize Zorvath?"
    claims = [Claim(text="Zorvath is recognized by more than 100 nations [1].", cited=(1,), verdict="supported")]
    answer = actx(1, "a", "Zorvath is recognized by more than 100 nations.")
    founded = actx(3, "c", "Zorvath declared its independence in 2008.")
    deal = actx(2, "b", "Zorvath's embassy said the deal would allow 50 deportees from other nations into Zorvath.")
    assert disagreements(question, claims, [answer, deal, founded]) == []
    fewer = actx(2, "b", "Only 97 nations recognize Zorvath, its foreign ministry says.")
    assert [c.n for c, _ in disagreements(question, claims, [answer, fewer, founded])] == [2]


def test_a_name_the_passages_mention_elsewhere_but_not_for_this_fact_is_corrected() -> None:
    from rag.conflicts import wrong_premise

    deal = ("The Republic of Kosovo has agreed to take in at least 50 illegal immigrants, to be deported from the "
            "United States over a one-year period.")
    border = "Kosovo is bordered by Albania, Montenegro, Serbia and North Macedonia."
    contexts = [actx(1, "oan", f"{deal} {border}"), actx(2, "latin", RWANDA)]
    fix = wrong_premise("Why did Serbia agree to accept 50 deportees from the United States?", contexts)
    assert fix is not None and fix[0] == "serbia" and fix[2] == deal
    # the same question about the country the passage names is no premise to correct
    assert wrong_premise("Why did Kosovo agree to accept 50 deportees from the United States?", contexts) is None


def test_the_source_a_question_credits_is_neither_fact_nor_topic() -> None:
    from rag.conflicts import wrong_premise

    deal = ("The Republic of Kosovo has agreed to take in at least 50 illegal immigrants, to be deported from the "
            "United States over a one-year period.")
    border = "Kosovo is bordered by Albania, Montenegro, Serbia and North Macedonia."
    star = actx(1, "wyo", f"{deal} {border}").model_copy(update={"outlet": "Wyoming Star", "author": "Jordan Smith"})
    for credit in ("According to the Wyoming Star, why", "As reported by Jordan Smith, why"):
        fix = wrong_premise(f"{credit} did Serbia agree to accept 50 deportees from the United States?", [star])
        assert fix is not None and fix[0] == "serbia" and fix[2] == deal
    # an outlet named in a passage is no other value for the fact; an author's name is no credit
    reported = star.model_copy(update={
        "text": "The deal covers 50 deportees from the United States, the Wyoming Star reported."})
    assert wrong_premise("According to the Wyoming Star, why did Kosovo agree to take 50 deportees from the "
                         "United States?", [reported]) is None
    fix = wrong_premise("What did Jordan's foreign minister say about third-country deportees?",
                        [star, actx(2, "latin", RWANDA)])
    assert fix is not None and fix[0] == "jordan"
    # an outlet of several words, and a credit to no retrieved outlet, which may be the fact itself
    times = star.model_copy(update={"outlet": "Times of India", "author": None})
    assert wrong_premise("According to the Times of India, why did Kosovo agree to take 50 deportees from the "
                         "United States?", [times]) is None
    fix = wrong_premise("Why did the deportees reported by Serbia agree to go to the United States?", [star])
    assert fix is not None and fix[0] == "serbia"


def test_another_name_of_the_same_country_is_no_false_premise() -> None:
    from rag.conflicts import wrong_premise
    from rag.names import known_words, unseen_name

    deal = actx(1, "oan", "The Republic of Kosovo has agreed to take in at least 50 illegal immigrants, to be "
                          "deported from the United States over a one-year period.")
    assert wrong_premise("Why did Kosovo agree to accept 50 deportees from America?", [deal]) is None
    told = actx(1, "oan", deal.text.replace("the United States", "America"))
    assert wrong_premise("Why did Kosovo agree to accept 50 deportees from the U.S.?", [told]) is None
    assert wrong_premise("Why did Serbia agree to accept 50 deportees from America?", [deal]) is not None
    assert unseen_name("Kosovo will take deportees from America.", known_words([deal])) is None
    assert unseen_name("Kosovo will take deportees from Britain.", known_words([deal])) is not None
    troops = actx(2, "ap", "Three Americans were detained near the US embassy.")
    assert unseen_name("Three American citizens were held near the U.S. embassy.", known_words([troops])) is None


def test_another_form_of_the_same_name_is_not_a_disagreement() -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    question = "Who reported their arrival in El Salvador?"
    claims = [Claim(text="The Venezuelan gang members were reported to have arrived in El Salvador [1].", cited=(1,))]
    other = "It sent more than 200 Venezuelans accused of gang ties to El Salvador, where they were imprisoned."
    assert disagreements(question, claims, [actx(1, "cbs", PASSAGE), actx(2, "latin", other)]) == []


BOUND_QUESTION = "Is 50 the maximum or the minimum number of deportees Kosovo will take?"


def _calls_it_the_maximum() -> list[Claim]:
    return [Claim(text="50 is the maximum number of deportees Kosovo will take [1].", cited=(1,), verdict="supported")]


def test_a_number_given_as_a_maximum_and_as_a_minimum_is_a_disagreement() -> None:
    from rag.reports import disagreements

    question, claims = BOUND_QUESTION, _calls_it_the_maximum()
    most = "Kosovo will take up to 50 deportees from the United States."
    least = "Kosovo has agreed to take in at least 50 illegal immigrants. Kosovo is bordered by Serbia."
    same = "Kosovo agreed to host 50 deportees."
    found = disagreements(question, claims, [actx(1, "wyo", most), actx(2, "oan", least), actx(3, "cbs", same)])
    assert [(ctx.n, sentence) for ctx, sentence in found] == [(2, least.split(" Kosovo is")[0])]
    # the same bound in two reports is no disagreement
    assert disagreements(question, claims, [actx(1, "wyo", most), actx(2, "oan", most.replace("Kosovo", "It"))]) == []


def test_a_bound_the_passage_does_not_state_is_quoted_in_its_own_words() -> None:
    """"50 is the maximum" on a passage that says "will take 50": the judge passes it ("maximum" came from
    the question); the passage's sentence with the number is quoted instead. A bound the passage states
    in the same sense, or no bound at all, is left alone."""
    from rag.reports import bound_sentence

    (claim,) = _calls_it_the_maximum()
    plain = "Kosovo signed the deal on Wednesday. Concretely, the country will take 50 deportees, the embassy said."
    assert bound_sentence(claim.text, actx(1, "latin", plain), BOUND_QUESTION) == \
        "Concretely, the country will take 50 deportees, the embassy said."
    most = "Kosovo will take up to 50 deportees. It signed on Wednesday."
    assert bound_sentence(claim.text, actx(1, "wyo", most), BOUND_QUESTION) is None
    assert bound_sentence(claim.text, actx(1, "wyo", "It agreed to a maximum of 50 deportees."), BOUND_QUESTION) is None
    least = "Kosovo has agreed to take in at least 50 illegal immigrants."
    assert bound_sentence(claim.text, actx(1, "oan", least), BOUND_QUESTION) == least  # the opposite bound
    assert bound_sentence("At least 50 deportees will come [1].", actx(1, "oan", least), BOUND_QUESTION) is None
    assert bound_sentence("Kosovo will take 50 deportees [1].", actx(1, "latin", plain), BOUND_QUESTION) is None
    assert bound_sentence(claim.text, actx(1, "x", "The deal was signed on Wednesday."), BOUND_QUESTION) is None
    deal = actx(1, "wyo", "In 2022, Kosovo agreed to take up to 300 prisoners from Denmark.")
    assert bound_sentence("In 2022 Kosovo agreed to a maximum of 300 prisoners [1].", deal, "How many?") is None


def test_initials_are_no_topic_for_a_premise() -> None:
    from rag.conflicts import wrong_premise

    flight = ("White House Press Secretary Karoline Leavitt posted an image of a deportation flight leaving the U.S., "
              "with a caption.\n\nThough the White House did not respond, a U.S. State Department spokesperson said:")
    assert wrong_premise("Who is the U.S. Secretary of State?", [actx(1, "wyo", flight)]) is None


def test_an_answer_calling_a_number_a_maximum_is_contradicted_by_a_report_of_a_minimum() -> None:
    from rag.reports import disagreements

    question, claims = BOUND_QUESTION, _calls_it_the_maximum()
    plain = "Concretely, the country will take 50 deportees, the embassy said."
    least = "Kosovo has agreed to take in at least 50 illegal immigrants."
    found = disagreements(question, claims, [actx(1, "latin", plain), actx(2, "oan", least)])
    assert [ctx.n for ctx, _ in found] == [2]
    plain_claims = [Claim(text="Kosovo will take 50 deportees [1].", cited=(1,), verdict="supported")]
    assert disagreements(question, plain_claims, [actx(1, "latin", plain), actx(2, "oan", least)]) == []


def test_a_name_from_outside_the_articles_makes_the_sentence_unsupported() -> None:
    from rag.verify import Judge, judge_claims

    contexts = [actx(1, "latin", RWANDA).model_copy(update={"outlet": "Latin Times"})]
    always_yes = Judge(lambda claim, passage: 0.99, 0.75)  # a judge model fooled by what it knows
    (claim,) = judge_claims([("The capital of Rwanda is Kigali [1].", (1,))], contexts, always_yes,
                            "What is the capital of Rwanda?")
    assert claim.verdict == "unsupported" and "'kigali'" in (claim.reason or "")
    # other forms of names the passages hold, and the outlet from the source line, are known
    (ok,) = judge_claims([("The Rwandan minister Nduhungirehe spoke to Latin Times [1].", (1,))], contexts,
                         always_yes, "Who spoke?")
    assert ok.verdict == "supported"


@pytest.mark.parametrize(("question", "answer", "not_one", "one"), [
    # a report on another year is about another fact; the same year with another winner is a disagreement
    ("Who won the 2021 Zorvath cup?", "Ana Brenn won the 2021 Zorvath cup.",
     "Mira Tolst won the 2019 Zorvath cup in a long final.", "Mira Tolst won the 2021 Zorvath cup in a long final."),
    # a sum is contradicted by another sum, not by names
    ("How much is the Zorvath deal worth?", "The Zorvath deal is worth $20 million.",
     "The Zorvath deal was signed in Brenmoor by Ana Tolst.", "The Zorvath deal is worth $35 million, Ana Tolst said."),
])
def test_a_disagreement_is_another_value_of_the_same_fact(question: str, answer: str, not_one: str, one: str) -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    claims = [Claim(text=answer.replace(".", " [1]."), cited=(1,))]
    assert disagreements(question, claims, [actx(1, "a", answer), actx(2, "b", not_one)]) == []
    assert [c.n for c, _ in disagreements(question, claims, [actx(1, "a", answer), actx(2, "b", one)])] == [2]


@pytest.mark.parametrize(("question", "answer", "other", "beside"), [
    # a number of the answer's unit, told in other words (the old check read the question's words only)
    ("How many households had to leave their homes because of the Tarnby flood?",
     "400 households had to leave their homes because of the Tarnby flood.",
     "Tarnby officials said on Wednesday that 310 households had been moved out of the riverside districts. "
     "The flood reached the town square.",
     "Last year's Tarnby flood moved 250 households out of the riverside districts. The flood reached the square."),
    ("What share of the vote did the winner of the Tarnby mayoral election get?",
     "Ana Brenn won the Tarnby mayoral election with 48.6% of the vote.",
     "Ana Brenn was elected mayor of Tarnby on Wednesday, winning 52 percent of the vote.",
     "Ana Brenn was elected mayor of Tarnby after the previous mayor won 52 percent of the vote."),
    ("On what date does the first Tarnby ferry to Kell leave?", "The first Tarnby ferry to Kell leaves on 14 November.",
     "Tarnby Ferries will not start sailing to Kell until December, with the first departure set for December 2.",
     "A separate Tarnby freight ferry to Kell starts sailing on December 2."),
    # a name after the word the answer's name comes after: "plant in Linwick" beside "plant in Dorrance"
    ("At which Corby plant were the recalled pies made?", "The recalled pies were made at Corby's plant in Dorrance.",
     "Corby said the pies were made at the company's plant in Linwick and sold in packs of two.",
     "Corby said the pies were sold by Linwick Stores in packs of two."),
])
def test_a_disagreement_told_in_other_words_is_found(question: str, answer: str, other: str, beside: str) -> None:
    from rag.models import Claim
    from rag.reports import disagreements

    claims = [Claim(text=answer.replace(".", " [1]."), cited=(1,))]
    # the other passages share the story's words, so that only the fact's own words can tell the fact
    story = [actx(3, "c", f"{question.split()[-2]} {answer}"), actx(4, "d", f"More on {question.rstrip('?')}.")]
    found = disagreements(question, claims, [actx(1, "a", answer), actx(2, "b", other), *story])
    assert [(c.n, other.startswith(s)) for c, s in found] == [(2, True)]
    assert disagreements(question, claims, [actx(1, "a", answer), actx(2, "b", beside), *story]) == []


def test_one_article_is_quoted_once_by_the_sentence_the_judge_reads_best() -> None:
    from rag.models import Claim
    from rag.reports import other_reports

    question = "On what date does the first Tarnby ferry to Kell leave?"
    answer = "The first Tarnby ferry to Kell leaves on 14 November."
    quip = '"If the first ferry to Kell arrives after ten, it is no use to Tarnby," said the Kell mayor, 58.'
    start = "Tarnby Ferries will not start sailing to Kell until December, with the first departure set for December 2."
    contexts = [actx(1, "a", answer), actx(2, "b", f"{quip} {start}")]
    claims = [Claim(text=answer.replace(".", " [1]."), cited=(1,))]
    def judged(quip_score: float, start_score: float) -> Judge:
        return Judge(lambda claim, passage: quip_score if "mayor" in claim else start_score, 0.75)

    for scores in ((0.8, 0.9), (0.9, 0.8)):
        judge = judged(*scores)
        (quote,) = other_reports(question, [claims], contexts, judge, 0.75)
        assert (quip if scores[0] > scores[1] else start).rstrip(".") in quote.text and quote.score == max(scores)
    (first,) = other_reports(question, [claims], contexts, None, 0.75)  # no judge: the first found
    assert "mayor" in first.text


@pytest.mark.parametrize(("text", "measures"), [
    ("on the 410-metre level", {("metre", "410")}), ("48.6% of ballots", {("percent", "48.6")}),
    ("departing on 14 November", {("date", "14")}), ("a $285 million stadium", {("money million", "285")}),
    ("11 thousand visitors", {("visit", "11")}), ("an hour and 35 minutes", set()), ("in 2019 and", set()),
])
def test_the_unit_of_a_number_is_the_word_after_it(text: str, measures: set[tuple[str, str]]) -> None:
    from rag.reports import _measures

    assert _measures(text) == measures


def test_a_question_in_a_passage_is_neither_a_disagreement_nor_a_correction() -> None:
    from rag.conflicts import wrong_premise
    from rag.models import Claim
    from rag.reports import disagreements

    question = "Who directed the Zorvath film?"
    claims = [Claim(text="Ana Brenn directed the Zorvath film [1].", cited=(1,))]
    musing = actx(2, "b", "What would a Mira Tolst-directed Zorvath film look like?")
    assert disagreements(question, claims, [actx(1, "a", "Ana Brenn directed the Zorvath film."), musing]) == []
    asked = actx(1, "b", "When is the Brenmoor film by Mira Tolst released?")
    assert wrong_premise("When was the Zorvath film by Mira Tolst released?", [asked]) is None


def test_a_claim_crediting_its_own_passage_source_is_judged_without_the_credit() -> None:
    # like the small judge model: sure of the fact, unsure of an attribution the passage text lacks
    seen: list[str] = []

    def p_yes(claim: str, passage: str) -> float:
        seen.append(claim)
        return 0.5 if "according to" in claim.lower() else 0.95

    star = actx(1, "wyo", PASSAGE).model_copy(update={"outlet": "Wyoming Star"})
    planet = actx(2, "planet", "The harbour reopened on Monday.").model_copy(update={"outlet": "Daily Planet"})
    claim = "Kosovo declared its independence from Serbia in 2008, according to the {} [1]."
    (own,) = judge_claims([(claim.format("Wyoming Star"), (1,))], [star, planet], Judge(p_yes, 0.75))
    assert own.verdict == "supported" and "according to the Wyoming Star" in own.text
    assert seen == ["Kosovo declared its independence from Serbia in 2008."]
    # another outlet, one sharing a word with the passage's, or a credit in the middle of a sentence
    for other in ("Daily Planet", "Wyoming Planet"):
        before = len(seen)
        (credited,) = judge_claims([(claim.format(other), (1,))], [star, planet], Judge(p_yes, 0.75))
        assert credited.verdict == "unsupported" and f"according to the {other}" in seen[before]
    assert uncredited("According to the Wyoming Star, Kosovo agreed [1].", [star]) == "Kosovo agreed [1]."
    assert uncredited("Kosovo was reported by the Wyoming Star on Tuesday.", [star]).endswith("on Tuesday.")


LISTS = ("Reports say that neighbours such as Latvia were approached about the scheme. "
         "Estonia, among the region's smallest economies alongside Malta and Cyprus, welcomed the offer.")


def test_names_listed_together_must_be_named_together() -> None:
    from rag.names import apart
    assert apart("Latvia and Cyprus are among the smallest economies [1].", LISTS) == ["latvia", "cyprus"]
    assert apart("Both Latvia, Malta, and Cyprus are small [1].", LISTS) == ["latvia", "malta", "cyprus"]
    assert apart("Malta and Cyprus are among the smallest economies [1].", LISTS) is None
    assert apart("Spain and Cyprus are small [1].", LISTS) == ["spain", "cyprus"]  # Spain is not there at all
    assert apart("Malta and Costa Rica are small [1].", LISTS + " African states too.") == ["malta", "costa rica"]
    assert apart("It works with the U. S. Immigration and Customs Enforcement.",
                 "It works with U.S. Immigration and Customs Enforcement (ICE). It began in May.") is None


@pytest.mark.parametrize("claim, passage", [
    # a longer form of a name elsewhere in the passage is not needed where the shorter one stands
    ("President Biden and Xi met in Bali [1].", "Biden and Xi met in Bali. President Biden later spoke."),
    ("The U.S. and China signed it [1].", "The U. S. and China signed the deal."),  # copied as the passage spells it
    ("The U. S. and China signed it [1].", "The U.S. and China signed the deal."),
    ("Russian and Ukrainian officials met [1].", "Officials from Russia and Ukraine met in Istanbul."),
    ("Democrats and Republicans agreed [1].", "The Democratic and Republican leaders agreed on Monday."),
    ("Russia and Ukraine signed [1].", "Russian and Ukrainian officials signed."),
    ("In May, Serbia and Georgia applied [1].", "Serbia and Georgia applied in the spring."),
])
def test_names_standing_together_in_another_form_are_together(claim: str, passage: str) -> None:
    from rag.names import apart
    assert apart(claim, passage) is None
    assert apart(claim, passage.replace(" and ", " on Monday. Later, ")) is not None


def test_a_month_or_weekday_is_no_name() -> None:
    from rag.names import apart
    assert apart("Talks ran in May and June [1].", "Talks ran in May. They went on in June.") is None
    assert apart("Talks ran on Monday, Tuesday and Friday [1].", "Talks ran on Monday. They ended Friday.") is None


@pytest.mark.parametrize("claim, passage", [
    ("South Korea and North Korea held talks [1].", "South Korea held talks with Japan. North Korea fired a missile."),
    ("Hunter Biden and Joe Biden were in court [1].", "Hunter Biden was in court. Joe Biden was in Delaware."),
    ("The U.S. and China cut tariffs [1].", "China cut tariffs, state media said. The U.S. waited."),
    ("The New York Times and CNN ran it three times [1].", "CNN ran it three times. The New York Times did not."),
    ("Germans and Austrians voted [1].", "Germans voted, as did Australia. Austrians stayed home."),
    ("Christians and Muslims prayed [1].", "Muslims prayed before Christmas. Christians stayed home."),
])
def test_a_shared_ending_or_a_common_word_does_not_join_names(claim: str, passage: str) -> None:
    from rag.names import apart
    assert apart(claim, passage) is not None


def test_a_list_built_from_two_sentences_is_unsupported_however_sure_the_model_is() -> None:
    ctx = Context(n=1, chunk_id="a@1", article_id="a", text=LISTS, score=0.8)
    sure = Judge(lambda claim, passage: 0.99, 0.75)
    (mixed,) = judge_claims([("Latvia and Cyprus are among the smallest economies [1].", (1,))], [ctx], sure)
    (right,) = judge_claims([("Malta and Cyprus are among the smallest economies [1].", (1,))], [ctx], sure)
    assert mixed.verdict == "unsupported" and mixed.reason == "the passage never names 'latvia' and 'cyprus' together"
    assert right.verdict == "supported"


def test_the_sentence_quoted_for_a_list_names_its_names_at_a_word_start() -> None:
    from rag.conflicts import listing_sentence
    passage = "Biden toured Mexico on Monday. Xi said in the trade talks that tariffs would stay."
    ctx = Context(n=1, chunk_id="a@1", article_id="a", text=passage, score=0.8)
    claim = "Xi and Biden said the trade talks would go on [1]."
    # "Mexico" does not name Xi: the sentence on the talks is quoted, not the one on the tour
    question = "What did Xi and Biden say in the trade talks?"
    assert listing_sentence(claim, ctx, question) == (ctx, passage.split(". ")[1])


def test_a_list_cited_to_the_wrong_passage_is_quoted_from_the_passage_that_lists_it() -> None:
    from rag.drafts import in_own_words
    from rag.prompts import OWN_WORDS
    lists = Context(n=1, chunk_id="a@1", article_id="a", score=0.8,
                    text="Kosovo is the latest to accept deportees. Chile, Peru and Bolivia are others that have "
                         "received deportees. Ghana was also discussing the plan.")
    deal = Context(n=2, chunk_id="b@1", article_id="b", score=0.7,
                   text="Kosovo has agreed to receive 50 deportees, its embassy said.")
    question = "Besides Kosovo, which countries have received deportees from the U.S.?"
    draft = Claim(text="Peru, Bolivia and Ghana have received deportees [2].", cited=(2,), verdict="unsupported")
    mended = in_own_words(draft, [lists, deal], question)
    assert mended.text == f"{OWN_WORDS} Chile, Peru and Bolivia are others that have received deportees [1]."
    assert mended.cited == (1,) and mended.reason == "quoted"
    # a sentence naming the names but only one of the question's topic words is no answer to it
    approached = "Besides Kosovo, which countries were approached about deportees?"
    assert in_own_words(draft, [lists, deal], approached) == draft
    # names are not topic: two countries and the United States, in a sentence on something else
    off = Context(n=3, chunk_id="c@1", article_id="c", score=0.6,
                  text="Peru and Bolivia criticized the United States over tariffs.")
    assert in_own_words(draft, [off, deal], question) == draft
    sport = Context(n=3, chunk_id="c@1", article_id="c", score=0.6, text="Peru and Bolivia played to a draw.")
    about_them = "What did Peru and Bolivia say about the deportees?"
    assert in_own_words(draft, [sport, deal], about_them) == draft
    # a sentence with more names but off the topic does not hide one on it
    both = Context(n=1, chunk_id="a@1", article_id="a", score=0.8,
                   text="Peru, Bolivia and Ghana met in Lima on trade. Peru and Bolivia have received deportees.")
    assert in_own_words(draft, [both, deal], question).text.endswith("Peru and Bolivia have received deportees [1].")
    # one name of the list is no list
    one = Claim(text="Peru and Ghana have received deportees [2].", cited=(2,), verdict="unsupported")
    assert in_own_words(one, [lists, deal], question) == one


def test_a_who_question_answered_without_naming_anyone_is_quoted_from_the_sentence_that_names_them() -> None:
    from rag.drafts import in_own_words
    from rag.prompts import OWN_WORDS
    passage = Context(n=1, chunk_id="a@1", article_id="a", score=0.8,
                      text="Twelve gang members were deported to Chile. Twelve gang members arrived in Chile in May, "
                           "according to Chile's Interior Ministry. Peru said nothing.")
    question = "Who reported the arrival of the gang members in Chile?"
    draft = Claim(text="The gang members were reported to have arrived in Chile in May [1].", cited=(1,),
                  verdict="supported")
    mended = in_own_words(draft, [passage], question, draft.text)
    assert mended.text == (f"{OWN_WORDS} Twelve gang members arrived in Chile in May, according to Chile's "
                           "Interior Ministry [1].")
    assert mended.cited == (1,) and mended.reason == "quoted"
    # an answer that names someone the question does not is left as it is, in any of its sentences
    named = Claim(text="Chile's Interior Ministry reported it [1].", cited=(1,), verdict="supported")
    assert in_own_words(named, [passage], question, named.text) == named
    assert in_own_words(draft, [passage], question, f"{draft.text} Officials in Lima said so [1].") == draft
    # not a "who" question; or no sentence that says the same and names someone ("Twelve" names no one)
    assert in_own_words(draft, [passage], "When did the gang members arrive in Chile?", draft.text) == draft
    deported = Claim(text="Twelve gang members were deported to Chile [1].", cited=(1,), verdict="supported")
    assert in_own_words(deported, [passage], "Who was deported to Chile?", deported.text) == deported
    # a sentence naming someone but saying less of the claim than the one it came from is no answer
    accused = Context(n=1, chunk_id="a@1", article_id="a", score=0.8,
                      text="The attack was funded by unknown sources, investigators said. Israel accused Hamas of "
                           "having funded the attack.")
    unknown = Claim(text="The attack was funded by unknown sources [1].", cited=(1,), verdict="supported")
    assert in_own_words(unknown, [accused], "Who funded the attack?", unknown.text) == unknown
    # a place is not who: "arrived in Santiago, Chile" answers no "who reported"
    place = Context(n=1, chunk_id="a@1", article_id="a", score=0.8,
                    text="The gang members arrived in Santiago, Chile in May.")
    assert in_own_words(draft, [place], question, draft.text) == draft
    # a follow-up: the names of the turn it refers to are no answer ("Peruvian" after a turn on Peru's gang)
    follow = Claim(text="The Peruvian gang members were reported to have arrived in Chile in May [1].", cited=(1,),
                   verdict="supported")
    turn = "Which gang arrived in Chile?", "Twelve members of Peru's gang arrived [1]."
    assert in_own_words(follow, [passage], question, follow.text) == follow
    assert in_own_words(follow, [passage], question, follow.text, " ".join(turn)).text == mended.text
    # "whose" and "by whom" ask who too; a sentence's first word the passage never names ("Authorities") is no one
    for asked in ("Whose ministry reported the arrival of the gang members in Chile?",
                  "By whom was the arrival of the gang members in Chile reported?",
                  "To whom was the arrival of the gang members in Chile reported?"):
        assert in_own_words(draft, [passage], asked, draft.text).text == mended.text
    vague = Claim(text="Authorities reported that the gang members arrived in Chile in May [1].", cited=(1,),
                  verdict="supported")
    assert in_own_words(vague, [passage], question, vague.text).text == mended.text
    # a name opening another sentence of the answer, taken from another passage or its outlet, is someone
    reuters = Context(n=2, chunk_id="b@1", article_id="b", score=0.7, outlet="Reuters", text="Chile confirmed it.")
    assert in_own_words(draft, [passage, reuters], question, f"{draft.text} Reuters reported it [2].") == draft


def test_a_yes_no_question_gets_the_sentence_holding_its_topic_and_nothing_when_none_does() -> None:
    from rag.yes_no import yes_no_sentence

    passages = [ctx(1, "Chile opened a new port in May. Peru has not recognized the new port, its minister said."),
                ctx(2, "The port cost 40 million dollars. Trade through the port doubled.")]
    found = yes_no_sentence("Does Peru recognize Chile's new port?", passages)
    assert found is not None and found[0].n == 1
    assert found[1] == "Peru has not recognized the new port, its minister said."
    # the passages never mention a treaty: no sentence holds more than three quarters of the topic
    assert yes_no_sentence("Has Peru signed a treaty on the new port?", passages) is None
    # not a yes/no question: left to the model and the abstention
    assert yes_no_sentence("Which country has not recognized the new port?", passages) is None
    # alternatives are no yes/no question ("Is it a maximum or a minimum?"); "... or not?" still is
    assert yes_no_sentence("Has Peru recognized the new port or rejected it?", passages) is None
    assert yes_no_sentence("Does Peru recognize Chile's new port or not?", passages) == found


def test_a_yes_no_question_in_other_words_than_the_passages_gets_the_sentence_closest_in_meaning() -> None:
    from rag.yes_no import YES_NO_COSINE, yes_no_sentence

    passages = [ctx(1, "Chile opened a new port in May. Ships may stay only for a short time."),
                ctx(2, "The port cost 40 million dollars.")]
    question = "Can ships remain at the port permanently?"  # "remain ... permanently": no word in common

    def similar(cosine: float) -> Callable[[str, list[str]], list[float]]:
        return lambda q, sentences: [cosine if "short time" in s else 0.1 for s in sentences]

    assert yes_no_sentence(question, passages) is None  # no similarity given: words only
    found = yes_no_sentence(question, passages, similar(YES_NO_COSINE))
    assert found is not None and (found[0].n, found[1]) == (1, "Ships may stay only for a short time.")
    assert yes_no_sentence(question, passages, similar(YES_NO_COSINE - 0.01)) is None
    assert yes_no_sentence("Which ships may stay?", passages, similar(0.99)) is None  # not a yes/no question


@pytest.mark.parametrize(("claim", "word"), [
    ("The revenue from the different reportable segments came in at [4] [3].", "at"),
    ("The studio adopted its current name as a trade name on [1].", "on"),
    ("Nadal is the fifth player to finish the year on top, following in the footsteps of [4].", "of"),
    ("The U.S. sent 200 Venezuelans to El Salvador, according to the reports [1] and [3].", None),
    ("It is unclear which countries they would be from [1].", None),
    ("The deal is known as Plan A [1].", None),
])
def test_a_sentence_that_breaks_off_before_its_value_is_unsupported_however_sure_the_model_is(
        claim: str, word: str | None) -> None:
    ctx = Context(n=1, chunk_id="a@1", article_id="a", text=claim.split(" [")[0] + " $6 billion.", score=0.8)
    contexts = [ctx, *(ctx.model_copy(update={"n": n}) for n in (3, 4))]
    (judged,) = judge_claims([(claim, tuple(markers(claim)))], contexts, Judge(lambda claim, passage: 0.99, 0.75))
    assert (judged.verdict, judged.reason) == (("unsupported", f"the sentence breaks off at '{word}'") if word else
                                               ("supported", judged.reason))


def test_a_number_the_passage_states_only_of_something_else_is_unsupported_however_sure_the_model_is() -> None:
    passage = ("In May, the UK said it was looking to Kosovo to open return hubs for asylum seekers denied sanctuary. "
               "In 2022, Denmark and Kosovo made an agreement that saw the transfer of 300 foreign prisoners. "
               "The first hub may open on June 12.")
    ctx = Context(n=1, chunk_id="a@1", article_id="a", text=passage, score=0.8)
    sure = Judge(lambda claim, passage: 0.99, 0.75)
    claims = ["The UK plans to send 300 rejected asylum seekers to the return hubs [1].",  # 300 is the prisoners'
              "Denmark's deal saw the transfer of 300 foreign prisoners [1].",
              "300 [1]",  # a bare number: nothing to set beside it
              "The UK may open its first return hub on June 12 [1].",  # a day beside its month
              "The UK looked at return hubs in 2022 [1]."]  # a year is left to the judge
    verdicts = [(c.verdict, c.reason) for c in judge_claims([(c, (1,)) for c in claims], [ctx], sure)]
    assert verdicts[0] == ("unsupported", "the passage states '300' only of something else")
    assert [v for v, _ in verdicts[1:]] == ["supported"] * 4


@pytest.mark.parametrize(("question", "answer", "ours", "theirs", "their_value"), [
    # "June 9" and "June 16" share the month, not the date: the month is no value the reports agree on
    ("On what date does the company start shipping the new robot?",
     "The company will start shipping the new robot on June 9.",
     "The first units of the new robot will ship on June 9, the company said.",
     "Shipments of the new robot will start on June 16, the company said in a statement.", "June 16"),
    # "Kessly" names the town though it is a bare answer's first word
    ("Which town is hosting this year's Lake Orvan Regatta?", "Kessly",
     "Hotels in Kessly are taking bookings: organisers picked the town to host this year's Lake Orvan Regatta.",
     "This year's Lake Orvan Regatta will be held in Dunmore, the town's organisers confirmed on Monday.", "Dunmore"),
    # the answer names the hospital, which the other report names too; the number is what they differ on
    ("How many beds will the new wing of the Brevik hospital have?",
     "The new wing at Brevik General Hospital will have 96 beds.",
     "Officials at the Brevik hospital said the new wing will have 96 beds when it opens.",
     "The Brevik hospital, Brevik General Hospital, will open its new wing in October, adding 120 beds.", "120 beds"),
])
def test_reports_differ_on_the_value_asked(question: str, answer: str, ours: str, theirs: str,
                                           their_value: str) -> None:
    from rag.reports import disagreements

    claims = [Claim(text=f"{answer.rstrip('.')} [1].", cited=(1,))]
    found = disagreements(question, claims, [actx(1, "ledger", ours), actx(2, "wire", theirs)])
    assert [(c.n, their_value in s) for c, s in found] == [(2, True)]
    ours_value = {"June 16": "June 9", "Dunmore": "Kessly", "120 beds": "96 beds"}[their_value]
    agreeing = theirs.replace(their_value, ours_value)  # the same report with the answer's value: no disagreement
    assert disagreements(question, claims, [actx(1, "ledger", ours), actx(2, "wire", agreeing)]) == []


def test_a_name_only_in_the_source_line_is_not_the_story() -> None:
    """The model names the passage's author as the chief executive (the source line "(Metro Signal, by Ben
    Harrow, ...)" is in its prompt, and in the judge's); asked who wrote the report, the author is the answer."""
    ctx = Context(n=1, chunk_id="a@1", article_id="a", score=0.8, outlet="Metro Signal", author="Ben Harrow",
                  text="Brightlane Systems, the Harlow Bay payroll company, said hackers had stolen customer data.")
    judge = Judge(lambda claim, passage: 0.9, 0.75)
    [claim] = judge_claims([("Brightlane's chief executive is Ben Harrow [1].", (1,))], [ctx], judge,
                           "Who is Brightlane's chief executive?")
    assert claim.verdict == "unsupported" and "author" in (claim.reason or "")
    [claim] = judge_claims([("Ben Harrow [1]", (1,))], [ctx], judge, "Who wrote the Metro Signal's report?")
    assert claim.verdict == "supported"
    named = ctx.model_copy(update={"text": ctx.text + " Chief executive Ben Harrow apologised."})
    [claim] = judge_claims([("Brightlane's chief executive is Ben Harrow [1].", (1,))], [named], judge,
                           "Who is Brightlane's chief executive?")
    assert claim.verdict == "supported"


def names_stated(claim: str, passage: str) -> float:
    """A judge model that passes a claim when every capitalised word of it stands in the passage."""
    return 0.9 if all(w in passage for w in re.findall(r"\b[A-Z][a-z]+", claim)[1:]) else 0.3


def test_a_name_the_passage_leaves_to_its_article_head_is_judged_under_that_head() -> None:
    passage = ctx(1, "The crossing had been shut for fourteen months after an inspection found corrosion.")
    head = "Ostler Bridge reopens. CARROWMERE — Traffic returned to the Ostler Bridge on Thursday."
    read: list[str] = []

    def heading(c: Context) -> str:
        return head

    def p_yes(claim: str, passage: str) -> float:
        read.append(passage)
        return names_stated(claim, passage)

    judge = Judge(p_yes, 0.75)
    question = "How long were the Ostler Bridge and the Millrace Bridge closed?"
    claim = ("The Ostler Bridge was closed for fourteen months [1].", (1,))
    (plain,) = judge_claims([claim], [passage], judge, question)
    (headed,) = judge_claims([claim], [passage], judge, question, heading)
    assert plain.verdict == "unsupported" and headed.verdict == "supported"
    # a name neither the passage nor its head holds stays unsupported; a wrong number is not rescued
    (other,) = judge_claims([("The Millrace Bridge was closed for fourteen months [1].", (1,))], [passage], judge,
                            question, heading)
    (wrong,) = judge_claims([("The Ostler Bridge was closed for nine months [1].", (1,))], [passage], judge,
                            question, heading)
    assert other.verdict == wrong.verdict == "unsupported" and "'9'" in (wrong.reason or "")
    read.clear()  # a claim whose names the passage holds is not judged again
    judge_claims([("The crossing was shut for nine months [1].", (1,))], [passage], judge, question, heading)
    assert len(read) == 1 and head not in read[0]


def test_named_above_needs_every_missing_name_in_the_head() -> None:
    head = "Larchmont Arena opens. CALVERTON — The Larchmont Arena welcomed its first crowd."
    passage = "The Calverton Ironhawks have committed to the building for three decades."
    assert named_above("The Ironhawks will play at the Larchmont Arena for three decades [1].", passage, head)
    assert not named_above("The Ironhawks will play at the Kelso Arena for three decades [1].", passage, head)
    assert not named_above("The Calverton Ironhawks committed for three decades [1].", passage, head)  # none missing
