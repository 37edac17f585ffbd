"""Judge each claim against the passages it cites: the judge model's P(yes), and the checks no model
overrules (numbers, "of" titles, names from outside the articles, names listed together that no one
sentence holds). Shared by the chain (run-time verification) and the evaluation (faithfulness metrics)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.chunking import sentence_spans
from rag.claims import (
    STOP_WORDS,
    WORD,
    bare,
    breaks_off,
    cite,
    content_words,
    normalize,
    numbers_in,
    overlap,
    strip_markers,
)
from rag.models import Claim, Context
from rag.names import DATES, apart, known_words, names_in, unseen_name
from rag.prompts import JUDGE_PROMPT, SHORT_CLAIM, labelled

_NAME = re.compile(r"\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")
_TITLE = re.compile(r"(?<![\w'’-])([A-Z][a-zA-Z'’-]+)\s+of\s+(?:the\s+)?([A-Z][a-zA-Z'’-]+)")  # Secretary of State
_QUOTED = re.compile(r"[\"“]([^\"”]{4,})[\"”]")
_ROLE_OF = re.compile(r"\b([a-z]+)\s+of\s+(?:the\s+)?((?:[A-Z][\w'’.-]*\s+)*[A-Z][\w'’.-]*)")  # "president of the NFL"

# the source a text credits: "according to the Wyoming Star", "as reported by Michelle Larsen", up to a
# punctuation mark or a citation; a full stop inside a name ("J.P.") but not at its end
_CAPITALISED = r"[A-Z](?:[\w'’-]|\.(?=\w))*"
_CREDIT = re.compile(rf",?\s*\b(?i:according to|as reported by)\s+(?:the\s+)?{_CAPITALISED}"
                     rf"(?:\s+(?:(?:of|the|for|de)\s+)*{_CAPITALISED})*(?=\s*(?:\[\d|[,.;:!?]|$))(?:\s*,)?")
_CREDIT_WORDS = frozenset("according to as reported by the of for de".split())

COPIED_DISCOUNT = 0.05

PYes = Callable[[str, str], float | None]  # (claim, passage) -> P(supported) or None (no model)
Heading = Callable[[Context], str]  # a passage -> its article's title and first sentence


def words_of(text: str) -> set[str]:
    """The lower-case words of ``text``, letters only."""
    return set(re.findall(r"[a-z]+", text.lower()))


def source_words(contexts: Sequence[Context]) -> set[str]:
    """The words of the passages' outlets and authors, lower case."""
    return {w for c in contexts for w in words_of(f"{c.outlet or ''} {c.author or ''}")}


def uncredited(text: str, contexts: Sequence[Context]) -> str:
    """``text`` without the source it credits ("according to the Wyoming Star"), when that source is the
    outlet or the author of one of ``contexts``: the passage's source line states it, so it is no fact
    to check. A credit to anyone else ("the Wyoming Post", "Wyoming's governor") stays."""
    sources = [words for c in contexts for words in (words_of(c.outlet or ""), words_of(c.author or "")) if words]

    def cut(m: re.Match[str]) -> str:
        credited = words_of(m[0]) - _CREDIT_WORDS
        return "" if credited and any(credited <= words for words in sources) else m[0]
    return _CREDIT.sub(cut, text).strip()


def veto(claim: str, passage: str) -> str | None:
    """What no judge model overrules: a number, or a title made with "of" ("Secretary of State"), that
    the claim states and the passage does not, or a number it states only of something else (the judge
    passes "X is the Secretary of State" on a passage naming X "Press Secretary"). A title counts as stated
    when its two words stand within three words of each other, in either order ("Kosovo's Prime Minister"
    for "Prime Minister of Kosovo")."""
    claim = strip_markers(claim)
    have = numbers_in(passage)
    for num in sorted(numbers_in(claim)):
        if num not in have:
            return f"'{num}' is not in the passage"
    if stray := _stray_number(claim, passage):
        return f"the passage states '{stray}' only of something else"
    first = re.search(r"[A-Za-z]", claim)  # a sentence's first word is no title ("Because of ...")
    titles = [m for m in _TITLE.finditer(claim) if not first or m.start() > first.start()]
    words = WORD.findall(normalize(passage)) if titles else []
    for m in titles:
        head, tail = WORD.findall(m.group(1).lower())[-1], WORD.findall(m.group(2).lower())[0]
        at = [i for i, w in enumerate(words) if w == tail]
        if not any(abs(i - j) <= 3 for i, w in enumerate(words) if w == head for j in at):
            return f"'{m.group(0)}' is not in the passage"
    return _shortened(claim, passage)


def _shortened(claim: str, passage: str) -> str | None:
    """A role "of" a body the claim names by the first words of a longer name, the passage giving that role
    only of the longer one: "The president of the NFL is JC Tretter" on "... re-elected JC Tretter as president
    of the NFL Players Association" (the judge passes it, 0.94). A word after the name that the claim holds is
    no part of it ("the prime minister of Kosovo Albin Kurti" for "Albin Kurti is the prime minister of
    Kosovo")."""
    words = words_of(claim)
    for m in _ROLE_OF.finditer(claim):
        name = m[2].rstrip(".")  # a full stop ends the sentence, not the name
        said = list(re.finditer(rf"\b(?i:{re.escape(m[1])}\s+of\s+(?:the\s+)?){re.escape(name)}(?![\w'’-])"
                                rf"(?:\s+([A-Z][\w'’-]*))?", passage))
        if said and all(s[1] and not words_of(s[1]) <= words for s in said):
            return f"the passage says '{said[0][0]}', not '{m[0].rstrip('.')}'"
    return None


YEAR = re.compile(r"(?:1[89]|20)\d\d")
_MONTH = "|".join(sorted(DATES))


def _stray_number(claim: str, passage: str) -> str | None:
    """A number of the claim that each passage sentence stating it says of something else, no other word of
    the claim beside it: "The UK plans to send 300 asylum seekers" on a passage telling the UK's plan in one
    sentence and "300 foreign prisoners" of another deal in the next. A year, or a day beside its month, is
    left out: a passage often dates in one sentence what its others tell."""
    words = {w for w in content_words(claim) if not w.isdigit()}
    if len(words) < 2:
        return None
    sentences = [(numbers_in(s), content_words(s)) for s in (passage[a:b] for a, b in sentence_spans(passage))]
    for num in sorted(numbers_in(claim)):
        day = re.escape(num)
        dated = rf"\b(?:{_MONTH})\W+{day}\b|\b{day}(?:st|nd|rd|th)?\W+(?:of\W+)?(?:{_MONTH})\b"
        if YEAR.fullmatch(num) or re.search(dated, claim, re.I):
            continue
        beside = [len(words & said) for stated, said in sentences if num in stated]
        if beside and not max(beside):
            return num
    return None


def deterministic_check(claim: str, passage: str) -> str | None:
    """None when every number, title, quoted phrase and name of the claim appears in the passage;
    otherwise the reason it fails, e.g. "'500' is not in the passage"."""
    return veto(claim, passage) or _words_check(strip_markers(claim), normalize(passage))


def _words_check(claim: str, text: str) -> str | None:
    for phrase in _QUOTED.findall(claim):
        if normalize(phrase) not in text:
            return f"the quote \"{phrase}\" is not in the passage"
    for name in _NAME.findall(claim):
        for w in (w for w in name.split() if w.lower() not in STOP_WORDS):
            if normalize(w).strip("'’s") not in text and len(w) > 2:
                return f"'{w}' is not in the passage"
    return None


def _and(names: Sequence[str]) -> str:
    """'a', 'b' and 'c'."""
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


@dataclass(frozen=True)
class Judgement:
    supported: bool
    score: float | None
    reason: str | None


class Judge:
    """Claim-vs-passage support: the model's P(yes) when there is a model, AND the ``veto`` check
    (numbers and "of" titles).

    A claim whose content words all appear in the passage (the small model mostly copies) gets a
    small discount on the model threshold. With no model (fake backend) the deterministic check decides."""

    def __init__(self, p_yes: PYes | None, threshold: float = 0.5, mode: str = "combined") -> None:
        self.p_yes, self.threshold, self.mode = p_yes, threshold, mode

    def __call__(self, claim: str, passage: str, question: str | None = None) -> Judgement:
        """``question`` lets a bare fragment ("2008 [1]") be judged as the answer it is."""
        text = strip_markers(claim)
        vetoed = veto(text, passage)
        reason = vetoed or _words_check(text, normalize(passage))
        if question and bare(text):
            text = SHORT_CLAIM.format(question=question.rstrip("?"), claim=text.rstrip("."))
        score = self.p_yes(text, passage) if self.p_yes and self.mode != "rules" else None
        if score is None or self.mode == "rules":
            return Judgement(reason is None, score, reason)
        if self.mode == "model":
            model_ok = score >= self.threshold
            return Judgement(model_ok, score, None if model_ok else f"the judge gives it {score:.2f}")
        copied = overlap(claim, passage) >= 0.95 and len(content_words(strip_markers(claim))) >= 3
        model_ok = score >= self.threshold - (COPIED_DISCOUNT if copied else 0.0)
        if not model_ok:
            return Judgement(False, score, vetoed or f"the cited passage does not state it ({score:.2f})")
        return Judgement(vetoed is None, score, vetoed)

    def says_yes(self, question: str, passage: str) -> float | None:
        """The model's P(yes) that ``passage`` answers the yes/no ``question`` with yes; None with no model."""
        return self.answers(question, "Yes", passage)

    def answers(self, question: str, answer: str, passage: str) -> float | None:
        """The model's P(yes) that ``passage`` states ``answer`` as the answer to ``question``; None with no model."""
        if self.p_yes is None or self.mode == "rules":
            return None
        return self.p_yes(SHORT_CLAIM.format(question=question.rstrip("?"), claim=answer.rstrip(".")), passage)


def judge_prompt_p_yes(backend_p_yes: Callable[[list], float | None]) -> PYes:  # type: ignore[type-arg]
    """Adapt a backend's P(yes)-over-messages to (claim, passage)."""
    def p_yes(claim: str, passage: str) -> float | None:
        return backend_p_yes(JUDGE_PROMPT.format_messages(claim=claim, passage=passage))
    return p_yes


def best_quote(claim: str, passage: str) -> str:
    """The passage sentence (exact text) sharing most numbers, then most words, with the claim."""
    spans = sentence_spans(passage)
    if not spans:
        return passage
    a, b = max(spans, key=lambda span: quote_score(claim, passage[span[0]:span[1]]))
    return passage[a:b]


def quote_score(claim: str, sentence: str) -> tuple[int, float]:
    """How well ``sentence`` quotes ``claim``: the numbers they share, then the share of the claim's words."""
    return len(numbers_in(strip_markers(claim)) & numbers_in(sentence)), overlap(claim, sentence)


def judge_claims(sentences: Sequence[tuple[str, tuple[int, ...]]], contexts: Sequence[Context],
                 judge: Judge | None, question: str | None = None, heading: Heading | None = None) -> list[Claim]:
    """Judge each sentence against the passages it cites (supported if any cited passage supports it).
    A sentence naming what its passage leaves to the article's head ("The Ostler Bridge was closed for
    fourteen months [4]" on "The crossing had been shut for fourteen months") is judged once more on the
    passage under its article's ``heading``."""
    by_n = {c.n: c for c in contexts}
    known = known_words(contexts, question)
    claims = []
    for text, cited in sentences:
        if not cited:
            claims.append(Claim(text=text, verdict="uncited", reason="no citation"))
            continue
        if judge is None:
            claims.append(Claim(text=text, cited=cited))
            continue
        if why := _unsound(text, known):
            claims.append(Claim(text=text, cited=cited, verdict="unsupported", reason=why))
            continue
        verdicts = [judge(uncredited(text, [by_n[n]]), labelled(by_n[n]), question) for n in cited if n in by_n]
        best = max(verdicts, key=lambda v: (v.supported, v.score or 0.0))
        if not best.supported:  # the model may have cited the wrong passage: try the likeliest others
            others = sorted((c for c in contexts if c.n not in cited), key=lambda c: -overlap(text, c.text))
            for other in others[:2]:
                verdict = judge(uncredited(text, [other]), labelled(other), question)
                if verdict.supported:
                    text, cited, best = cite(strip_markers(text), other.n), (other.n,), verdict
                    break
        if not best.supported and heading:
            for ctx in (by_n[n] for n in cited if n in by_n):
                head = heading(ctx)
                if named_above(text, ctx.text, head) and (
                        verdict := judge(uncredited(text, [ctx]), labelled(ctx, head), question)).supported:
                    best = verdict
                    break
        reason = best.reason
        if best.supported and (author := byline_only(text, [by_n[n] for n in cited if n in by_n], question)):
            best, reason = Judgement(False, best.score, None), f"'{author}' is the passage's author, not in its text"
        if best.supported and len(cited) == 1 and (names := apart(text, by_n[cited[0]].text)):
            best, reason = Judgement(False, best.score, None), f"the passage never names {_and(names)} together"
        claims.append(Claim(text=text, cited=cited, verdict="supported" if best.supported else "unsupported",
                            score=best.score, reason=reason))
    return claims


def named_above(claim: str, passage: str, heading: str) -> bool:
    """Whether every name of ``claim`` that ``passage`` lacks stands in ``heading``, and there is one."""
    missing = {w for w in names_in(strip_markers(claim)) if w.isalpha()} - words_of(passage)
    return bool(missing) and missing <= words_of(heading)


_ABOUT_WRITING = re.compile(r"\b(?:wr[io]te|written|writer|author|byline|report(?:ed|er|s)?|journalist)\b", re.I)


def byline_only(claim: str, cited: Sequence[Context], question: str | None = None) -> str | None:
    """The author of a cited passage whom ``claim`` names though no cited passage's text does, unless the
    question asks who wrote or reported it: the model read the source line "(Metro Signal, by Ben Harrow, …)"
    as part of the story ("Brightlane's chief executive is Ben Harrow"), and the judge, reading it too, passes."""
    if question and _ABOUT_WRITING.search(question):
        return None
    named = set(re.findall(r"[A-Z][a-zA-Z'’-]+", uncredited(strip_markers(claim), cited)))
    texts = " ".join(c.text for c in cited)
    for author in {c.author for c in cited if c.author}:
        parts = [w for w in re.findall(r"[A-Z][a-zA-Z'’-]+", author) if len(w) > 2]
        if any(w in named and not re.search(rf"\b{re.escape(w)}\b", texts) for w in parts):
            return author
    return None


def _unsound(claim: str, known: set[str]) -> str | None:
    """Why ``claim`` cannot hold whatever the judge says: a name from outside the articles, or a sentence cut off."""
    if stranger := unseen_name(claim, known):
        return f"'{stranger}' is in no retrieved passage"
    return f"the sentence breaks off at '{word}'" if (word := breaks_off(claim)) else None
