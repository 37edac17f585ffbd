"""Claims and citations: parse [n] markers, check them, judge each claim against its passages.

Shared by the chain (run-time verification) and the evaluation (faithfulness metrics)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.chunking import sentence_spans
from rag.models import Claim, Context
from rag.prompts import JUDGE_PROMPT, SHORT_CLAIM, labelled

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# a number standing on its own ("1990s" and "20th" give 1990 and 20), not a digit glued to letters in a
# name or unit ("Q3", "G7", "4K", "6.3bn"), which a passage may spell out ("third quarter")
_NUMBER = re.compile(r"(?<![A-Za-z\d])(?<!\d[.,])(?:\d[\d,.]*\d|\d)(?=[^A-Za-z\d]|$|(?:s|st|nd|rd|th)\b)"
                     r"(?![.,]\d)")
_NAME = re.compile(r"\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")
_TITLE = re.compile(r"(?<![\w'’-])([A-Z][a-zA-Z'’-]+)\s+of\s+(?:the\s+)?([A-Z][a-zA-Z'’-]+)")  # Secretary of State
# names given as a list: "Serbia and Georgia", "El Salvador, Costa Rica, and Panama"
_NAME_WORDS = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
_LISTED = re.compile(rf"(?<!\w){_NAME_WORDS}(?:,\s+{_NAME_WORDS})*,?\s+and\s+{_NAME_WORDS}")
_QUOTED = re.compile(r"[\"“]([^\"”]{4,})[\"”]")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("""the a an of to in on at by for from with and or is are was were be been it its as that this these
those has have had will would can could not no but which who what when where how about than into
over also said says their they there then he she his her we our""".split())
_NUMBER_WORDS = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "dozen": "12", "fifty": "50", "hundred": "100"}

# the source a text credits: "according to the Wyoming Star", "as reported by Michelle Larsen", up to a
# punctuation mark or a citation; a full stop inside a name ("J.P.") but not at its end
_CAPITALISED = r"[A-Z](?:[\w'’-]|\.(?=\w))*"
_CREDIT = re.compile(rf",?\s*\b(?i:according to|as reported by)\s+(?:the\s+)?{_CAPITALISED}"
                     rf"(?:\s+(?:(?:of|the|for|de)\s+)*{_CAPITALISED})*(?=\s*(?:\[\d|[,.;:!?]|$))(?:\s*,)?")
_CREDIT_WORDS = frozenset("according to as reported by the of for de".split())

COPIED_DISCOUNT = 0.05

PYes = Callable[[str, str], float | None]  # (claim, passage) -> P(supported) or None (no model)


def markers(text: str) -> list[int]:
    """Every passage number cited in ``text``, in order."""
    return [int(n) for m in _MARKER.finditer(text) for n in re.split(r"[,;]", m.group(1))]


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def clean_citations(text: str, valid: set[int]) -> tuple[str, tuple[int, ...]]:
    """Drop [n] markers that match no passage; return the text and the dropped numbers."""
    dropped: list[int] = []

    def keep(m: re.Match[str]) -> str:
        nums = [int(n) for n in re.split(r"[,;]", m.group(1))]
        good = [n for n in nums if n in valid]
        dropped.extend(n for n in nums if n not in valid)
        return " " + "".join(f"[{n}]" for n in good) if good else ""

    return _MARKER.sub(keep, text).strip(), tuple(dropped)


def split_claims(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Answer text -> (sentence, cited numbers). A marker right after a sentence's full stop
    ("... 2008. [1]") belongs to that sentence."""
    text = re.sub(r"([.!?])\s*((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)(?!\s*[.!?])", r" \2\1", text)
    out = []
    for a, b in sentence_spans(text):
        sentence = text[a:b]
        if strip_markers(sentence).strip(" .,;:-"):
            out.append((sentence.strip(), tuple(dict.fromkeys(markers(sentence)))))
    return out


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def overlap(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage."""
    want = content_words(strip_markers(claim))
    return len(want & content_words(passage)) / len(want) if want else 0.0


def normalize(text: str) -> str:
    """Lower case, straight quotes, single spaces: for comparing texts."""
    return _straight(text).lower()


def _straight(text: str) -> str:
    """``text`` with straight quotes and single spaces."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split())


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


def numbers_in(text: str) -> set[str]:
    """The numbers ``text`` states, written one way: "500,000" -> "500000", "$1.0 billion" and "1.50" -> "1"
    and "1.5", number words as digits."""
    found = {plain_number(n) for n in _NUMBER.findall(text)}
    found |= {v for w, v in _NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text.lower())}
    return found


def plain_number(number: str) -> str:
    """A number as digits written one way: "500,000" -> "500000", "2008." -> "2008", "1.0" -> "1", "6.30" -> "6.3"."""
    number = number.replace(",", "").rstrip(".")
    return re.sub(r"\.$", "", re.sub(r"(\.\d*?)0+$", r"\1", number)) if "." in number else number


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
    words = _WORD.findall(normalize(passage)) if titles else []
    for m in titles:
        head, tail = _WORD.findall(m.group(1).lower())[-1], _WORD.findall(m.group(2).lower())[0]
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
        for w in (w for w in name.split() if w.lower() not in _STOP):
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
        listed = [n for n in re.split(r",?\s+and\s+|,\s*", m[0]) if n.rstrip(".").split()[-1].lower() not in _DATES]
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


_DATES = frozenset("""january february march april may june july august september october november december
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
            | {f: p for f, p in fs.items() if len(f) > 2 and f not in shared and f.lower() not in _STOP}
            for w, fs in zip(names, short, strict=True)]


def _plain(text: str) -> str:
    """``text`` with straight quotes, single spaces and one name for each country (``same_place``)."""
    return _straight(same_place(text))


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
        if stranger := unseen_name(text, known):
            claims.append(Claim(text=text, cited=cited, verdict="unsupported",
                                reason=f"'{stranger}' is in no retrieved passage"))
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
    return {w[:5] for text in texts for form in (text, same_place(text)) for w in _WORD.findall(form.lower())}


def unseen_name(claim: str, known: set[str]) -> str | None:
    """A name the sentence uses (a capitalised word after its first) that is not among ``known_words``,
    even in another form: knowledge from outside the articles ("The capital of Rwanda is Kigali")."""
    return next((name for name in sorted(names_in(same_place(strip_markers(claim))))
                 if name.isalpha() and len(name) > 2 and name[:5] not in known), None)


def names_in(text: str) -> set[str]:
    """Capitalised words after a sentence's first word, and numbers: the values a fact turns on."""
    words = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+", text.strip())  # "Kosovo's" -> "kosovo"
    return {w.lower() for w in words if w.lower() not in _STOP} | numbers_in(text)


def cite(sentence: str, n: int) -> str:
    """``sentence`` with the marker [n] before its closing punctuation."""
    return re.sub(r"([.!?]?)$", rf" [{n}]\1", sentence.rstrip(), count=1)


def attach_citations(sentences: list[tuple[str, tuple[int, ...]]], contexts: Sequence[Context],
                     min_overlap: float = 0.6) -> list[tuple[str, tuple[int, ...]]]:
    """Give an uncited sentence the passage that holds most of its words, when one holds enough."""
    out = []
    for text, cited in sentences:
        if not cited and contexts:
            best = max(contexts, key=lambda c: overlap(text, c.text))
            if overlap(text, best.text) >= min_overlap:
                text, cited = cite(text, best.n), (best.n,)
        out.append((text, cited))
    return out
