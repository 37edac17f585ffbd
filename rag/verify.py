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
    breaks_off,
    cite,
    content_words,
    normalize,
    numbers_in,
    overlap,
    straight,
    strip_markers,
)
from rag.models import Claim, Context
from rag.prompts import JUDGE_PROMPT, SHORT_CLAIM, labelled

_NAME = re.compile(r"\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")
_TITLE = re.compile(r"(?<![\w'’-])([A-Z][a-zA-Z'’-]+)\s+of\s+(?:the\s+)?([A-Z][a-zA-Z'’-]+)")  # Secretary of State
# names given as a list: "Serbia and Georgia", "El Salvador, Costa Rica, and Panama"
_NAME_WORDS = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
_LISTED = re.compile(rf"(?<!\w){_NAME_WORDS}(?:,\s+{_NAME_WORDS})*,?\s+and\s+{_NAME_WORDS}")
_QUOTED = re.compile(r"[\"“]([^\"”]{4,})[\"”]")

# the source a text credits: "according to the Wyoming Star", "as reported by Michelle Larsen", up to a
# punctuation mark or a citation; a full stop inside a name ("J.P.") but not at its end
_CAPITALISED = r"[A-Z](?:[\w'’-]|\.(?=\w))*"
_CREDIT = re.compile(rf",?\s*\b(?i:according to|as reported by)\s+(?:the\s+)?{_CAPITALISED}"
                     rf"(?:\s+(?:(?:of|the|for|de)\s+)*{_CAPITALISED})*(?=\s*(?:\[\d|[,.;:!?]|$))(?:\s*,)?")
_CREDIT_WORDS = frozenset("according to as reported by the of for de".split())

COPIED_DISCOUNT = 0.05

PYes = Callable[[str, str], float | None]  # (claim, passage) -> P(supported) or None (no model)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def source_words(contexts: Sequence[Context]) -> set[str]:
    """The words of the passages' outlets and authors, lower case."""
    return {w for c in contexts for w in _words(f"{c.outlet or ''} {c.author or ''}")}


def uncredited(text: str, contexts: Sequence[Context]) -> str:
    """``text`` without the source it credits ("according to the Wyoming Star"), when that source is the
    outlet or the author of one of ``contexts``: the passage's source line states it, so it is no fact
    to check. A credit to anyone else ("the Wyoming Post", "Wyoming's governor") stays."""
    sources = [words for c in contexts for words in (_words(c.outlet or ""), _words(c.author or "")) if words]

    def cut(m: re.Match[str]) -> str:
        credited = _words(m[0]) - _CREDIT_WORDS
        return "" if credited and any(credited <= words for words in sources) else m[0]
    return _CREDIT.sub(cut, text).strip()


def veto(claim: str, passage: str) -> str | None:
    """What no judge model overrules: a number, or a title made with "of" ("Secretary of State"), that
    the claim states and the passage does not (the judge passes "X is the Secretary of State" on a
    passage naming X "Press Secretary"). A title counts as stated when its two words stand within three
    words of each other, in either order ("Kosovo's Prime Minister" for "Prime Minister of Kosovo")."""
    claim = strip_markers(claim)
    have = numbers_in(passage)
    for num in sorted(numbers_in(claim)):
        if num not in have:
            return f"'{num}' is not in the passage"
    first = re.search(r"[A-Za-z]", claim)  # a sentence's first word is no title ("Because of ...")
    titles = [m for m in _TITLE.finditer(claim) if not first or m.start() > first.start()]
    words = WORD.findall(normalize(passage)) if titles else []
    for m in titles:
        head, tail = WORD.findall(m.group(1).lower())[-1], WORD.findall(m.group(2).lower())[0]
        at = [i for i, w in enumerate(words) if w == tail]
        if not any(abs(i - j) <= 3 for i, w in enumerate(words) if w == head for j in at):
            return f"'{m.group(0)}' is not in the passage"
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


def apart(claim: str, passage: str) -> list[str] | None:
    """Names the claim lists together ("Serbia and Georgia") that no one sentence of the passage names:
    the small model builds such lists from neighbouring sentences ("other Balkan countries, including
    Serbia, ...", then "one of Europe's poorest alongside Ukraine and Georgia") or adds names from other
    passages, and the judge, reading the whole passage, passes them. None when one sentence holds them all.
    A name is in a sentence in any of its ``_forms`` ("President Biden" as "Biden", "Russian" as "Russia");
    a month or weekday ("May and June", "In May, Serbia") is a date, not a name."""
    sentences = [_plain(passage[a:b]) for a, b in sentence_spans(passage)]
    whole = " ".join(sentences)
    for m in _LISTED.finditer(_plain(strip_markers(claim))):
        listed = [n for n in re.split(r",?\s+and\s+|,\s*", m[0]) if n.rstrip(".").split()[-1].lower() not in DATES]
        forms = _forms(listed)
        if len(listed) > 1 and not any(all(_holds(s, fs) for fs in forms) for s in sentences):
            return [_shown(fs, whole) for fs in forms]
    return None


def _holds(sentence: str, forms: dict[str, re.Pattern[str]]) -> bool:
    """Whether ``sentence`` names a listed name in one of its ``_forms``."""
    return any(pattern.search(sentence) for pattern in forms.values())


def _shown(forms: dict[str, re.Pattern[str]], passage: str) -> str:
    """How to name a listed name in a reason: the longest of its endings the passage has ("Both Serbia"
    -> "serbia"), else the whole name (the first of its ``_forms``)."""
    whole = next(iter(forms))
    return next((f for f, p in forms.items() if whole.endswith(f) and p.search(passage)), whole).lower()


DATES = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday""".split())
_ENDING = r"(?:ians?|ans?|ia|ns?|s|[aeio]|ese|ic)"  # of a people's or a country's name
_STEM = re.compile(rf"(?<=\w{{4}}){_ENDING}$")  # Russian, Russia -> Russ; Democrats -> Democrat


def _forms(listed: Sequence[str]) -> list[dict[str, re.Pattern[str]]]:
    """For each listed name, the ways a passage may name it: the whole name in any case, then, capitalised
    as in the claim, its endings ("Both Serbia" -> "Serbia", "Kosovo's" -> "Kosovo") and the stem of its
    last word with a people's or a country's ending ("Russian" -> "Russia", "Ukraine" -> "Ukrainian", not
    "Christians" -> "Christmas"), leaving out stop words and a form two names share ("South Korea and
    North Korea": not "Korea")."""
    names = [re.sub(r"(?:'s|')?\.?$", "", name).split() for name in listed]
    short = [{" ".join(w[i:]): re.compile(rf"\b{re.escape(' '.join(w[i:]))}") for i in range(1, len(w))}
             | {stem: re.compile(rf"\b{re.escape(stem)}{_ENDING}?\b")
                for stem in [_STEM.sub("", w[-1])] if stem != w[-1]} for w in names]
    shared = {f for i, fs in enumerate(short) for f in fs if any(f in other for other in short[:i] + short[i + 1:])}
    return [{" ".join(w): re.compile(rf"(?i)\b{re.escape(' '.join(w))}")}
            | {f: p for f, p in fs.items() if len(f) > 2 and f not in shared and f.lower() not in STOP_WORDS}
            for w, fs in zip(names, short, strict=True)]


def _plain(text: str) -> str:
    """``text`` with straight quotes, single spaces and one name for each country (``same_place``)."""
    return straight(same_place(text))


def _and(names: Sequence[str]) -> str:
    """'a', 'b' and 'c'."""
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def starts_word(name: str, text: str) -> bool:
    """Whether ``text`` has ``name`` at the start of a word ("rica" is not in "african"; "kosov" is in "kosovar")."""
    return re.search(rf"(?<!\w){re.escape(name)}", text) is not None


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
        if question and len(text.split()) < 6:
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
        if self.p_yes is None or self.mode == "rules":
            return None
        return self.p_yes(SHORT_CLAIM.format(question=question.rstrip("?"), claim="Yes"), passage)


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
    numbers = numbers_in(strip_markers(claim))

    def score(span: tuple[int, int]) -> tuple[int, float]:
        sentence = passage[span[0]:span[1]]
        return len(numbers & numbers_in(sentence)), overlap(claim, sentence)

    a, b = max(spans, key=score)
    return passage[a:b]


def judge_claims(sentences: Sequence[tuple[str, tuple[int, ...]]], contexts: Sequence[Context],
                 judge: Judge | None, question: str | None = None) -> list[Claim]:
    """Judge each sentence against the passages it cites (supported if any cited passage supports it)."""
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
        reason = best.reason
        if best.supported and len(cited) == 1 and (names := apart(text, by_n[cited[0]].text)):
            best, reason = Judgement(False, best.score, None), f"the passage never names {_and(names)} together"
        claims.append(Claim(text=text, cited=cited, verdict="supported" if best.supported else "unsupported",
                            score=best.score, reason=reason))
    return claims


def _unsound(claim: str, known: set[str]) -> str | None:
    """Why ``claim`` cannot hold whatever the judge says: a name from outside the articles, or a sentence cut off."""
    if stranger := unseen_name(claim, known):
        return f"'{stranger}' is in no retrieved passage"
    return f"the sentence breaks off at '{word}'" if (word := breaks_off(claim)) else None


# a country's other names, each read as one: the question's "America" is the passages' "United States"
_SAME_PLACE = ((re.compile(r"(?<![\w.])(?<!latin )(?<!south )(?<!north )(?<!central )(?<!african )(?<!of )(?<!pan )"
                           r"(?:u\.s\.a?\.?|usa|america|americans?)(?!\w)", re.I), "United States"),
               (re.compile(r"(?<![\w.])US(?![\w.])"), "United States"),
               (re.compile(r"(?<![\w.])(?:u\.?k\.?|britain|british|britons?)(?!\w)(?! columbia)", re.I),
                "United Kingdom"))


def same_place(text: str) -> str:
    """``text`` with one name for each country: "U.S.", "America" and "American" read "United States"."""
    text = re.sub(r"\b([A-Z])\.\s+(?=[A-Z]\.)", r"\1.", text)  # "U. S." -> "U.S."
    for other_names, name in _SAME_PLACE:
        text = other_names.sub(name, text)
    return text


def known_words(contexts: Sequence[Context], question: str | None = None) -> set[str]:
    """The first five letters of every word of the question and of the passages with their source lines,
    a country under any of its names."""
    texts = (*(labelled(c) for c in contexts), question or "")
    return {w[:5] for text in texts for form in (text, same_place(text)) for w in WORD.findall(form.lower())}


def unseen_name(claim: str, known: set[str]) -> str | None:
    """A name the sentence uses (a capitalised word after its first) that is not among ``known_words``,
    even in another form: knowledge from outside the articles ("The capital of Rwanda is Kigali")."""
    return next((name for name in sorted(names_in(same_place(strip_markers(claim))))
                 if name.isalpha() and len(name) > 2 and name[:5] not in known), None)


def names_in(text: str) -> set[str]:
    """Capitalised words after a sentence's first word, and numbers: the values a fact turns on."""
    words = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+", text.strip())  # "Kosovo's" -> "kosovo"
    return {w.lower() for w in words if w.lower() not in STOP_WORDS} | numbers_in(text)
