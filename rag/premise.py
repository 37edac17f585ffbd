"""False premises in questions the model will not answer: a value the passages contradict, found from names
and numbers (``conflicts.wrong_premise``), or a name no passage states, found by meaning; and the question
asked again of what the passage says instead."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.claims import NUMBER, STOP_WORDS, numbers_in, plain_number
from rag.conflicts import NAME_RUN, PLACES, names_of, stated_anywhere, statements, unstated, wrong_premise
from rag.models import Context
from rag.names import DATES
from rag.verify import YEAR, source_words, uncredited, words_of
from rag.yes_no import Similarity, opens_with_verb

_WHY = re.compile(r"^\W*(why|how come)\b", re.I)
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|how)\b", re.I)
# the MiniLM cosine of a question and a passage sentence at which the sentence is on the question's fact, for
# a name the question holds and no passage states: on the refused "why"/"wh" questions of every stored run
# that hold such a name, 0.716 and 0.739 for the two false premises (held-out g23, s24), 0.668 at most for
# the eight others
PREMISE_COSINE = 0.70
Fix = tuple[str, Context, str]  # (the question's wrong value, the passage, its sentence stating what holds)


def refused_premise(question: str, contexts: Sequence[Context], similarity: Similarity | None = None) -> Fix | None:
    """The false premise of a question the model will not answer. A "why" question takes its statement as given:
    any value the passages contradict ("Why did Kosovo agree to take 75 deportees?"). Another question asking
    what, which, who, how much ... takes its names as given: a name no passage states in any form, where the
    sentence on it names another ("How much is Sweden paying Kosovo to hold its prisoners?": the deal is
    Denmark's). A number the passages lack there is more often a fact they do not hold than a wrong one ("the
    2021 Nobel Prize"), and a yes/no question asks whether its statement holds. When the words do not find it,
    the sentence closest in meaning may (``by_meaning``)."""
    if _WHY.match(question):
        fix = wrong_premise(question, contexts)
    elif _WH.search(question) and not opens_with_verb(question):
        fix = wrong_premise(question, contexts, names_only=True)
    else:
        return None
    return fix or (by_meaning(question, contexts, similarity) if similarity else None)


def by_meaning(question: str, contexts: Sequence[Context], similarity: Similarity) -> Fix | None:
    """The one name the question holds that no passage states (``conflicts.unstated``), when the passage sentence
    closest to the question in meaning (``PREMISE_COSINE``) names another, not a place: "Under its 2022 prison
    deal with Norway, how many inmates will Kosovo hold?" against "In 2022, Denmark and Kosovo made an agreement
    that saw the transfer of 300 foreign prisoners ...", which shares too few words with it for
    ``wrong_premise``. A question with two names no passage states is more likely about what they do not hold."""
    outlets = source_words(contexts)
    question = uncredited(question, contexts)
    missing = [v for v in unstated(question, stated_anywhere(contexts)) if v not in outlets]
    sentences = [(c, s) for c in contexts for s in statements(c.text)]
    if len(missing) != 1 or not sentences:
        return None
    cosines = similarity(question, [s for _, s in sentences])
    best = max(range(len(sentences)), key=lambda i: cosines[i])
    ctx, sentence = sentences[best]
    others = {v for v in names_of(PLACES.sub("", sentence)) - names_of(question) - outlets - DATES if v.isalpha()}
    return (missing[0], ctx, sentence) if cosines[best] >= PREMISE_COSINE and others else None


def asked_instead(question: str, fix: Fix) -> str | None:
    """The question asked of what the passage says instead: its wrong value replaced by the one value of the same
    kind that the quoted sentence gives and the question does not ("How much is Sweden paying Kosovo ...?" ->
    "How much is Denmark paying Kosovo ...?"). A name goes whole ("South Korea" for "New Zealand"), a year only
    for a year; a place ("in Pasjan"), a month, an outlet or author is no such value. None unless there is
    exactly one, and the question writes its value as it is read."""
    value, ctx, sentence = fix
    if value[0].isdigit():
        found = {n for n in numbers_in(sentence) - numbers_in(question)
                 if not YEAR.fullmatch(n) or YEAR.fullmatch(value)}
        spans = [m.span() for m in NUMBER.finditer(question) if plain_number(m[0]) == value]
    else:
        source = source_words([ctx])
        asked = names_of(question) | STOP_WORDS | DATES | source
        runs = (m for m in NAME_RUN.finditer(PLACES.sub("", sentence.strip())) if m.start() > 0)
        found = {m[0].rstrip(".") for m in runs if not words_of(m[0]) & asked}
        spans = [m.span() for m in NAME_RUN.finditer(question) if value in words_of(m[0])]
    if len(found) != 1 or not spans:
        return None
    (start, end), new = spans[0], found.pop()
    possessive = re.search(r"['’]s$", question[start:end])
    return question[:start] + new + (possessive[0] if possessive else "") + question[end:]
