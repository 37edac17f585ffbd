"""Other reports: passages from other articles that give the asked fact another value ("Gjilan" against
"Pasjan", "up to 50" against "at least 50"), found in code from names and numbers and quoted beside the
answer when the judge reads them as answers to the question; and numbers a claim gives as a bound."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.chunking import sentence_spans
from rag.claims import bare, cite, content_words, numbers_in, plain_number, strip_markers
from rag.conflicts import QUESTION_WORDS, named_in, statements, stems, topic_of
from rag.models import Claim, Context
from rag.names import DATES, names_in
from rag.prompts import OTHER_REPORT, labelled
from rag.verify import Judge


def other_reports(question: str, answers: Iterable[Sequence[Claim]], contexts: Sequence[Context],
                  judge: Judge | None, threshold: float) -> list[Claim]:
    """The ``disagreements`` with each of ``answers`` (the answer, and the draft it was made from), each quoted
    as another report if the judge reads its sentence as an answer to the question (P(yes) >= ``threshold``,
    kept as the claim's score): a sentence sharing the fact's words but telling another fact ("the Model 3
    goes on sale in October" for "When did the Model 2 go on sale?") is no other side. With no judge
    (``judge`` None, or one with no model) every one is quoted."""
    by_n = {c.n: c for c in contexts}
    quotes = dict.fromkeys((ctx.n, sentence) for claims in answers
                           for ctx, sentence in disagreements(question, claims, contexts))
    out = []
    for n, sentence in quotes:
        score = judge.answers(question, sentence, labelled(by_n[n])) if judge else None
        if score is None or score >= threshold:
            out.append(Claim(text=f"{OTHER_REPORT} {cite(sentence, n)}", cited=(n,), score=score, reason="quoted"))
    return out


def disagreements(question: str, claims: Sequence[Claim], contexts: Sequence[Context]) -> list[tuple[Context, str]]:
    """Passages from other articles that state the asked-about fact with other values.

    The answer's values are the names and numbers of its supported sentences that the question
    lacks (e.g. "gjilan"). A passage from another article whose best sentence is about the question
    (half its topic words, every number the question names) but whose text has none of those values,
    and has values of the same kind of its own (a name for a name, a number for a number), reports
    something else: that sentence is returned, to be cited beside the answer. Sentences that ask
    a question state nothing and are passed over."""
    supported = [c for c in claims if c.verdict == "supported"]
    used = {n for c in supported for n in c.cited}
    used_articles = {c.article_id for c in contexts if c.n in used}
    out = _bound_disagreements(supported, contexts, used_articles)
    asked = names_in(question) | content_words(question)
    values = _values(question, supported) - asked
    if not values:
        return out
    # initials are no topic: "U.S." gives u and s, which every passage on U.S. policy has ("UK" stays)
    plain = re.sub(r"\b(?:[A-Za-z]\.){2,}", " ", question)
    topic = {w for w in content_words(plain) - QUESTION_WORDS if len(w) > 1 or w.isdigit()}
    # a word every retrieved passage has ("kosovo" in "How many nations recognize Kosovo?") tells no fact
    # from another: "50 deportees from other nations" is not about recognition
    everywhere = set.intersection(*[content_words(c.text) for c in contexts]) if len(contexts) > 2 else set()
    telling = topic - everywhere
    topic = telling if len(telling) >= 2 else topic
    named = {v for v in names_in(question) if not v[0].isdigit()}  # about the same people and places
    kinds = {v[0].isdigit() for v in values}  # another value of the same kind: a name for a name, a number for a number
    numbers = numbers_in(question)  # "the 2021 Tour de France": a report on the 2019 one is about another fact

    def on_topic(sentence: str) -> int:
        return len(topic & content_words(sentence))

    for ctx in contexts:
        names = names_in(ctx.text)
        if ctx.n in used or ctx.article_id in used_articles or any(named_in(v, names) for v in values):
            continue
        if not all(named_in(v, names) for v in named):
            continue
        sentence = max(statements(ctx.text), key=on_topic, default="")
        if (on_topic(sentence) >= max(2, len(topic) / 2) and numbers <= numbers_in(sentence)
                and {v[0].isdigit() for v in names_in(sentence) - asked} & kinds):
            out.append((ctx, sentence))
            used_articles.add(ctx.article_id)
    return out


_ASKS_NUMBER = re.compile(r"\b(?:how\s+(?:many|much|long|big|old|far)|when|what\s+(?:year|date|day|month|time))\b",
                          re.I)


def _values(question: str, claims: Sequence[Claim]) -> set[str]:
    """The names and numbers the answer ``claims`` state, as ``disagreements`` compares them: a bare answer's
    first word too ("Kessly [3]"); a month only where no day or other value comes with it ("June 9" and "June
    16" are two dates, not one month); and only the numbers, if the question asks for one and the answer
    has them ("... Brevik General Hospital will have 96 beds": the hospital's name is no answer to "how many")."""
    texts = [strip_markers(c.text) for c in claims]
    found = set().union(*(names_in(f"Answer: {t}" if bare(t) else t) for t in texts))
    found = found - DATES or found
    numbers = {v for v in found if v[0].isdigit()}
    return numbers if numbers and _ASKS_NUMBER.search(question) else found


_BOUND = re.compile(r"\b(at least|no fewer than|more than|over|minimum of|up to|as many as|at most|no more than|"
                    r"fewer than|less than|under|maximum of)\s+(\d[\d,.]*\d|\d)", re.I)
_LOWER = frozenset({"at least", "no fewer than", "more than", "over", "minimum of"})


def _bounds(text: str) -> dict[str, str]:
    """Number -> "lower" or "upper" for the numbers ``text`` states as a bound ("at least 50", "up to 50")."""
    return {plain_number(m.group(2)): "lower" if m.group(1).lower() in _LOWER else "upper"
            for m in _BOUND.finditer(text)}


def claim_bounds(text: str) -> dict[str, str]:
    """``_bounds`` of a claim; without those, a claim can make its numbers a bound in its own words: "50 is
    the maximum" ("a maximum of 300 prisoners in 2022" bounds 300, not 2022)."""
    return _bounds(text) or {num: kind for word, kind in (("minimum", "lower"), ("maximum", "upper"))
                             if re.search(rf"\b{word}\b", text, re.I) for num in numbers_in(text)}


def bound_sentence(claim: str, ctx: Context, question: str) -> str | None:
    """For a claim giving a number as a bound ("50 is the maximum", "at least 50") that ``ctx`` states
    without that bound ("the country will take 50 deportees"): the sentence of ``ctx`` stating the
    number that is most about the question, to quote in the claim's place; None otherwise. The judge
    passes such claims (the number is there; "maximum" came from the question)."""
    theirs = _bounds(ctx.text)
    loose = {num for num, kind in claim_bounds(strip_markers(claim)).items() if theirs.get(num) != kind}
    topic = topic_of(question)
    stating = [s for s in statements(ctx.text) if loose & numbers_in(s)] if loose else []
    return max(stating, key=lambda s: len(topic & stems(s)), default=None)


def _bound_disagreements(supported: Sequence[Claim], contexts: Sequence[Context],
                         used_articles: set[str]) -> list[tuple[Context, str]]:
    """Another article giving the answer's number as the opposite bound: "up to 50" vs "at least 50".
    The articles found are added to ``used_articles``."""
    by_n = {c.n: c for c in contexts}
    numbers = set().union(*(numbers_in(strip_markers(c.text)) for c in supported)) if supported else set()
    ours = {num: kind for c in supported for n in c.cited if n in by_n
            for num, kind in _bounds(by_n[n].text).items() if num in numbers}
    for c in supported:
        ours |= claim_bounds(c.text)
    out: list[tuple[Context, str]] = []
    for ctx in contexts if ours else ():
        if ctx.article_id in used_articles:
            continue
        for a, b in sentence_spans(ctx.text):
            theirs = _bounds(ctx.text[a:b])
            if any(num in theirs and theirs[num] != kind for num, kind in ours.items()):
                out.append((ctx, ctx.text[a:b]))
                used_articles.add(ctx.article_id)
                break
    return out
