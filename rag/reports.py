"""Other reports: passages from other articles that give the asked fact another value ("Gjilan" against
"Pasjan", "up to 50" against "at least 50"), found in code from names and numbers and quoted beside the
answer when the judge reads them as answers to the question; and numbers a claim gives as a bound."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from rag.chunking import sentence_spans
from rag.claims import NUMBER, STOP_WORDS, bare, cite, content_words, numbers_in, plain_number, strip_markers
from rag.conflicts import QUESTION_WORDS, mentions, named_in, statements, stems, topic_of
from rag.models import Claim, Context
from rag.names import DATES, names_in
from rag.prompts import OTHER_REPORT, labelled
from rag.verify import Judge


def other_reports(question: str, answers: Iterable[Sequence[Claim]], contexts: Sequence[Context],
                  judge: Judge | None, threshold: float) -> list[Claim]:
    """The ``disagreements`` with each of ``answers`` (the answer, and the draft it was made from), each quoted
    as another report if the judge reads its sentence as an answer to the question (P(yes) >= ``threshold``,
    kept as the claim's score): a sentence sharing the fact's words but telling another fact ("the Model 3
    goes on sale in October" for "When did the Model 2 go on sale?") is no other side. An article is
    quoted once, by the sentence the judge reads best. With no judge (``judge`` None, or one with no model)
    each article's first is quoted."""
    by_n = {c.n: c for c in contexts}
    quotes = dict.fromkeys((ctx.n, sentence) for claims in answers
                           for ctx, sentence in disagreements(question, claims, contexts))
    best: dict[str, Claim] = {}  # one quote an article: the one the judge reads best
    for n, sentence in quotes:
        score = judge.answers(question, sentence, labelled(by_n[n])) if judge else None
        article = by_n[n].article_id
        if (score is None or score >= threshold) and (article not in best or (best[article].score or 0) < (score or 0)):
            best[article] = Claim(text=f"{OTHER_REPORT} {cite(sentence, n)}", cited=(n,), score=score, reason="quoted")
    return list(best.values())


def disagreements(question: str, claims: Sequence[Claim], contexts: Sequence[Context]) -> list[tuple[Context, str]]:
    """Passages from other articles that state the asked-about fact with other values, each with the
    sentence to cite beside the answer: a number given as the other bound ("up to 50" against "at least
    50"); a passage lacking all of the answer's values whose sentence most about the question gives others
    of the same kind (``_value_disagreements``); and a sentence giving the fact in other words, a number
    of the answer's unit (``_measure_disagreements``) or a name after the answer's name's word
    (``_name_disagreements``). Sentences that ask a question state nothing and are passed over."""
    supported = [c for c in claims if c.verdict == "supported"]
    used = {n for c in supported for n in c.cited}
    used_articles = {c.article_id for c in contexts if c.n in used}
    out = _bound_disagreements(supported, contexts, used_articles)
    named = {v for v in names_in(question) if not v[0].isdigit()}  # about the same people and places
    others = [c for c in contexts if c.article_id not in used_articles
              and all(mentions(c.text, v) for v in named)]
    values = _values(question, supported) - names_in(question) - content_words(question)
    if values:
        out += _value_disagreements(question, values, contexts, used_articles)
    out += _measure_disagreements(question, supported, others)
    out += _name_disagreements(question, values, supported, others)
    return list(dict.fromkeys(out))


def _value_disagreements(question: str, values: set[str], contexts: Sequence[Context],
                         used_articles: set[str]) -> list[tuple[Context, str]]:
    """A passage of another article with none of the answer's ``values`` (the names and numbers of its
    supported sentences that the question lacks, e.g. "gjilan") whose sentence most about the question (half
    its topic words, every number the question names) has values of the same kind of its own (a name for a
    name, a number for a number). The articles found are added to ``used_articles``."""
    asked = names_in(question) | content_words(question)
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

    out = []
    for ctx in contexts:
        names = names_in(ctx.text)
        if ctx.article_id in used_articles or any(named_in(v, names) for v in values):
            continue
        if not all(named_in(v, names) for v in named):
            continue
        sentence = max(statements(ctx.text), key=on_topic, default="")
        if (on_topic(sentence) >= max(2, len(topic) / 2) and numbers <= numbers_in(sentence)
                and {v[0].isdigit() for v in names_in(sentence) - asked} & kinds):
            out.append((ctx, sentence))
            used_articles.add(ctx.article_id)
    return out


_ASKS_NUMBER = re.compile(r"\b(?:how\s+(?:many|much|long|big|old|far)|when|what\s+(?:year|date|day|month|time)|"
                          r"(?:what|which)\s+(?:share|percentage|proportion|price|amount|number))\b", re.I)
_ASKS_NAME = re.compile(r"\W*(?:(?:at|in|to|by|from|for)\s+)?(?:who|whom|where|which)\b", re.I)
# another time or thing: "Last year's regatta drew 55 crews", "A separate junior regatta ... on August 7"
_ANOTHER = re.compile(r"\b(?:last|previous|former|earlier|separate)\b", re.I)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_MONTHS = "|".join(sorted(DATES))
_KINDS = ("date", "percent", "money")  # units that tell no topic: every date is a date


def _measures(text: str) -> set[tuple[str, str]]:
    """(unit, number) for each number ``text`` gives with a unit: the word after it, cut to five letters
    ("400 households" -> ("house", "400"), "the 410-metre level" -> ("metre", "410")); "percent" for "52
    percent" and "48.6%"; "date" for "June 9" and "14 November"; "money" (with its million or billion) for
    "$285 million" and "3.8 million dollars". A number in a length of several units ("an hour and 35
    minutes") has none."""
    out = set()
    for m in NUMBER.finditer(text):
        before, after = text[max(0, m.start() - 12):m.start()].lower(), text[m.end():m.end() + 24].lower()
        word = re.match(r"[\s-]*(?:(?:thousand|million|billion)\s+(?!dollars|euros|pounds))?([a-z]+)", after)
        if re.search(r"\b(?:hours?|minutes?|days?|weeks?|months?|years?)\s+and\s+$", before):
            continue
        if re.match(r"\s*(?:%|per ?cent)", after):
            unit = "percent"
        elif re.search(rf"\b(?:{_MONTHS})\s*$", before) or re.match(rf"\s*(?:{_MONTHS})\b", after):
            unit = "date"
        elif before.rstrip()[-1:] in ("$", "£", "€") or re.match(r"\s*(?:\w+\s+)?(?:dollars|euros|pounds)", after):
            scale = re.match(r"\s*(million|billion)\b", after)
            unit = "money " + (scale.group(1) if scale else "")
        elif word and word.group(1) not in STOP_WORDS:
            unit = word.group(1)[:5]
        else:
            continue
        out.add((unit, plain_number(m.group())))
    return out


def _same_time(question: str, supported: Sequence[Claim]) -> Callable[[str], bool]:
    """Whether a sentence can tell the answer's fact: it holds the question's numbers ("the 2021 Tour"), no
    year the question and answer lack, and no word of another time or thing (``_ANOTHER``)."""
    numbers = numbers_in(question)
    years = set(_YEAR.findall(" ".join([question, *(c.text for c in supported)])))
    return lambda s: numbers <= numbers_in(s) and not _ANOTHER.search(s) and set(_YEAR.findall(s)) <= years


def _best(contexts: Sequence[Context], about: Callable[[Context, str], int | None]) -> list[tuple[Context, str]]:
    """Each passage's statement with the highest ``about`` score (None: not a candidate)."""
    out = []
    for ctx in contexts:
        scored = [(score, s) for s in statements(ctx.text) if (score := about(ctx, s)) is not None]
        if scored:
            out.append((ctx, max(scored, key=lambda x: x[0])[1]))
    return out


def _measure_disagreements(question: str, supported: Sequence[Claim],
                           others: Sequence[Context]) -> list[tuple[Context, str]]:
    """For a question asking a number: a sentence of another article giving the answer's unit another number,
    in other words ("310 households had been moved out" beside "400 households had to leave their homes"; "on
    September 28" beside "on October 3"). It must share two of the question's topic words, or, for a unit
    that is a noun, come from a passage sharing two."""
    if not _ASKS_NUMBER.search(question) or not supported:
        return []
    asked = numbers_in(question)
    mine = {(unit, n) for c in supported for unit, n in _measures(strip_markers(c.text)) if n not in asked}
    units, numbers = {u for u, _ in mine}, {n for _, n in mine}
    topic = topic_of(question) - {u[:5] for u in units}
    fits = _same_time(question, supported)

    def about(ctx: Context, s: str) -> int | None:
        theirs = _measures(s)
        shared = {u for u, n in theirs if n not in asked} & units
        if not shared or numbers & {n for _, n in theirs} or not fits(s):
            return None
        on = len(topic & stems(s))
        noun = any(not u.startswith(_KINDS) for u in shared) and len(topic & stems(ctx.text)) >= 2
        return on if on >= 2 or noun else None
    return _best(others, about) if mine else []


def _name_disagreements(question: str, values: set[str], supported: Sequence[Claim],
                        others: Sequence[Context]) -> list[tuple[Context, str]]:
    """For a "who", "where" or "which" question: a sentence of another article naming someone or somewhere
    else after the word the answer's name comes after ("... plant in Linwick" beside "Halloway's plant in
    Dorrance"), sharing two of the question's topic words."""
    names = {v for v in values if not v[0].isdigit()}
    if not _ASKS_NAME.match(question) or not names:
        return []
    frames = set().union(*(_frame(v, strip_markers(c.text)) for v in names for c in supported))
    asked = names_in(question) | content_words(question)
    topic, fits = topic_of(question), _same_time(question, supported)

    def about(_: Context, s: str) -> int | None:
        theirs = {v for v in names_in(s) - asked if not v[0].isdigit()}
        words = re.findall(r"[A-Za-z][\w'’-]*", s)
        framed = any(w[:5] in frames and any(n.lower() in theirs for n in words[i + 1:i + 5] if n[0].isupper())
                     for i, w in enumerate(words))
        on = len(topic & stems(s))
        return on if framed and on >= 2 and fits(s) else None
    return _best([c for c in others if not any(named_in(v, names_in(c.text)) for v in names)], about) if frames else []


def _frame(name: str, text: str) -> set[str]:
    """The lower-case word (cut to five letters) that ``name`` comes after in ``text``, stop words aside:
    "plant" for "Halloway's plant in Dorrance", "mediator" for "state mediator Arthur Quill"."""
    out = set()
    for m in re.finditer(rf"\b{re.escape(name)}", text, re.I):
        before = re.findall(r"[A-Za-z][\w'’-]*", text[max(0, m.start() - 40):m.start()])
        while before and before[-1][0].isupper():  # "Arthur" before "Quill"
            before.pop()
        word = next((w for w in reversed(before[-3:]) if w.islower() and w not in STOP_WORDS and len(w) > 2), None)
        if text[m.start()].isupper() and word:
            out.add(word[:5])
    return out


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
