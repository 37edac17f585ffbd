"""Passages that disagree with the answer or with the question: false premises to correct and
reports giving another value for the asked fact, found in code from names and numbers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.chunking import sentence_spans
from rag.claims import STOP_WORDS, content_words, normalize, strip_markers
from rag.models import Context
from rag.names import DATES, apart, names_in, same_place, starts_word
from rag.verify import source_words, uncredited

PLACES = re.compile(r"\b(?:in|at|near)\s+[A-Z][\w’'-]*(?:,?\s+[A-Z][\w’'-]*)*")  # "in Pasjan": where, not who
NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*")  # "President Biden", "El Salvador"
QUESTION_WORDS = frozenset("why did do does how many much what which who whom when where is are was".split())


def stems(text: str) -> set[str]:
    """Content words cut to five letters ("agreed"/"agree", "deportees"/"deported" match); numbers
    are left to ``numbers_in``, which reads "500,000" as one number; "U.S." and "America" read "United States"."""
    return {w[:5] for w in content_words(same_place(text)) if w.isalpha() and len(w) > 2}


def topic_of(question: str) -> set[str]:
    """The question's topic: its ``stems`` but the question words ("how", "many", "which")."""
    return stems(question) - QUESTION_WORDS


def names_of(text: str) -> set[str]:
    """``names_in``, a country under any of its names ("America", "U.S.") giving the same ones."""
    return names_in(same_place(text))


def wrong_premise(question: str, contexts: Sequence[Context],
                  names_only: bool = False) -> tuple[str, Context, str] | None:
    """A value (number or name) the question takes for granted that the passages contradict:
    ("500", passage, "Kosovo agreed to host 50 deportees."). First a value no passage states
    anywhere, where the sentence most about the question states another one instead; then, held to
    a closer topic match, a value that sentence lacks while naming another ("Why did Serbia agree to
    take 50 deportees?" when the sentence on that deal names Kosovo and Serbia is only mentioned
    elsewhere). With ``names_only``, names only: no number is taken for a wrong one."""
    outlets = source_words(contexts)
    question = uncredited(question, contexts)
    values = names_of(question)
    everywhere = stated_anywhere(contexts)
    asked = unstated(question, everywhere) if names_only else sorted(values)
    sentences = [(c, c.text[a:b]) for c in contexts for a, b in sentence_spans(c.text) if not _asks(c.text[a:b])]
    if not sentences:
        return None
    known = values | outlets | (DATES if names_only else set())
    for value in asked:
        if fix := _premise(question, value, known, sentences, lambda s: everywhere, 0.6, 2, names_only):
            return fix
    for value in asked:
        if fix := _premise(question, value, known, sentences, lambda s: names_of(s) | stems(s), 0.75, 3, names_only):
            return fix
    return None


def stated_anywhere(contexts: Sequence[Context]) -> set[str]:
    """The names and word stems the passages state."""
    return set().union(*(names_of(c.text) | stems(c.text) for c in contexts))


def unstated(question: str, everywhere: set[str]) -> list[str]:
    """The names of ``question`` that the passages, stating ``everywhere`` (``stated_anywhere``), state in no
    form, months and days aside, read as whole names: "President Biden" is stated where a passage names Biden,
    and a name is also stated by one that starts with its first four letters ("Swedish" by "Sweden", "Haitians"
    by "Haiti")."""

    def stated(word: str) -> bool:
        return stated_in(word, everywhere) or any(w.startswith(word[:4]) for w in everywhere if len(w) > 3)
    runs = [[w.lower() for w in re.findall(r"[A-Za-z]+", run)] for run in NAME_RUN.findall(same_place(question))]
    return sorted(v for v in names_of(question) if v.isalpha() and v not in DATES
                  and not any(stated(w) for run in runs if v in run for w in run if w not in STOP_WORDS))


def _premise(question: str, value: str, known: set[str], sentences: Sequence[tuple[Context, str]],
             stated: Callable[[str], set[str]], share: float, min_topic: int,
             names_only: bool = False) -> tuple[str, Context, str] | None:
    topic = topic_of(question) - stems(value)
    if len(topic) < min_topic:
        return None

    def instead(sentence: str) -> set[str]:
        """Values of the same kind (number or name) that the sentence states and that are not ``known``
        (the question's own, or the name of an outlet or author: "the Wyoming Star reported"); with
        ``names_only``, no place ("in Pasjan") either."""
        named = names_of(PLACES.sub("", sentence) if names_only else sentence)
        return {v for v in named - known if v[0].isdigit() == value[0].isdigit()}

    def about(sentence: str) -> int:
        return len(topic & stems(sentence))

    ctx, sentence = max(sentences, key=lambda cs: (about(cs[1]), bool(instead(cs[1]))))
    if stated_in(value, stated(sentence)):
        return None  # stated: not a premise the passages contradict
    # another sentence just as much about the question states it ("The Nobel Prize in Literature for
    # 2019 is awarded to ..." beside "... awarded 115 times between 1901 and 2022"): the premise holds
    if any(about(s) >= about(sentence) and stated_in(value, names_of(s) | stems(s)) for _, s in sentences):
        return None
    if about(sentence) >= share * len(topic) and instead(sentence):
        return value, ctx, sentence
    return None


def stated_in(value: str, seen: set[str]) -> bool:
    """Whether ``value`` is among the values and stems ``seen``, a name also in a longer or shorter form."""
    return value in seen or (value.isalpha() and any(w.startswith(value) or value.startswith(w)
                                                     for w in seen if len(w) > 3))


def listing_sentence(claim: str, ctx: Context, question: str,
                     others: Sequence[Context] = ()) -> tuple[Context, str] | None:
    """For a claim listing names that ``ctx`` never names together (``names.apart``): the sentence to
    quote in the claim's place, and its passage. It is the sentence of ``ctx`` naming most of them, when it
    holds half the question's topic words; else a sentence of another passage in ``others`` naming two or
    more of them together and two of the question's topic words that are not names (the model cited the
    wrong passage for a list it copied: "Costa Rica, Panama ... [2]" from [1]'s "El Salvador, Costa Rica
    and Panama are others that have received deportees"); None otherwise."""
    names = apart(claim, ctx.text)
    topic = topic_of(question)
    if not names or not topic:
        return None

    def score(sentence: str) -> tuple[int, int]:
        text = normalize(same_place(sentence))
        return sum(starts_word(name, text) for name in names), len(topic & stems(sentence))

    best = max(statements(ctx.text), key=score, default="")
    named, about = score(best)
    if named and about >= len(topic) / 2:
        return ctx, best
    topic -= stems(" ".join(names_of(question)))  # elsewhere, names are not topic ("United States" is not two)
    elsewhere = [(score(s), c, s) for c in others if c.n != ctx.n for s in statements(c.text)]
    fits = [e for e in elsewhere if e[0][0] >= 2 and e[0][1] >= 2]
    return max(fits, key=lambda e: e[0])[1:] if fits else None


def naming_sentence(claim: str, ctx: Context, question: str, answer: str, known: str = "",
                    passages: Sequence[Context] = ()) -> str | None:
    """For a "who" question ("whose", "by whom", "to whom" too) whose whole ``answer`` names no one the question, or the
    ``known`` turn a follow-up refers to, does not ("The Venezuelan gang members were reported to have arrived
    [2]" for "Who reported their arrival?" after a turn on Venezuela's Tren de Aragua gang): the sentence of
    ``ctx`` that says what the claim says (half its words, and as much as any other) and names someone else
    ("... according to El Salvador's Press Presidency Office"), to quote in the claim's place; None otherwise.
    ``passages``: all those retrieved (default: ``ctx``), for the words an answer's other sentences take from them."""
    if not _WHO.match(question):
        return None
    asked = _capitalised(f"{question} {known}")
    # a sentence's first word is a name only if a passage (or its outlet, author) writes it capitalised and
    # never in lower case ("Reuters [1]." and "France won" name someone, "Authorities said" does not)
    text = " ".join(f"{c.outlet or ''} {c.author or ''} {c.text}" for c in passages or (ctx,))
    common = set(re.findall(r"\b[a-z]+", text))
    named = _capitalised(answer) & (names_in(same_place(strip_markers(answer))) | _capitalised(text) - common)
    if any(not stated_in(name, asked) for name in named):
        return None
    words = stems(claim)
    shared = {s: len(words & stems(s)) for s in statements(ctx.text)}
    # a name after a sentence's first word ("Seventeen members arrived" names no one), not a place
    # ("arrived in Santiago, Chile": the place is not who)
    naming = [s for s in shared
              if any(n.isalpha() and n not in DATES and not stated_in(n, asked) for n in names_of(PLACES.sub("", s)))]
    best = max(naming, key=shared.__getitem__, default=None)
    # and none says it better: "Israel accused Hamas of funding it" is no answer beside "funded by unknown sources"
    return best if best and shared[best] >= max(2, len(words) / 2, *shared.values()) else None


_WHO = re.compile(r"\W*(?:(?:by|according to|from|to|with|for)\s+)?(?:who|whom|whose)\b", re.I)


def _capitalised(text: str) -> set[str]:
    """The capitalised words of ``text`` (a sentence's first too: "Reuters [1]."), lower-cased, stop words and
    months and days aside."""
    return {w.lower() for w in re.findall(r"\b[A-Z][a-zA-Z]+", same_place(strip_markers(text)))} - STOP_WORDS - DATES


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` states ``value`` (a number, or a name in any form: "Iraqi" / "iraq")."""
    text = same_place(strip_markers(text))
    return named_in(value, names_in(text) | {w.lower() for w in re.findall(r"[A-Z][a-zA-Z]+", text)})


def named_in(value: str, names: set[str]) -> bool:
    """Whether ``names`` hold ``value``: a number exactly, a word also in another form that starts with
    its first five letters ("venezuelan" / "venezuelans", "iraq" / "iraqi")."""
    return value in names or (value.isalpha() and any(n.startswith(value[:5]) for n in names if len(n) > 3))


def statements(text: str) -> list[str]:
    """The sentences of ``text`` that are not questions."""
    return [text[a:b] for a, b in sentence_spans(text) if not _asks(text[a:b])]


def _asks(sentence: str) -> bool:
    """A question ("What would a Nolan-directed Avengers look like?", also when an ellipsis follows: "When is
    it released? ...") states no value to set against the answer."""
    return sentence.rstrip(" \"'”’).…").endswith("?")
