"""Names in claims and passages: a country under any of its names, names from outside the articles, and
names listed together that no one sentence of the passage holds. Plain string functions, shared by
verification and the conflict checks."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.chunking import sentence_spans
from rag.claims import STOP_WORDS, WORD, numbers_in, straight, strip_markers
from rag.models import Context
from rag.prompts import labelled

# names given as a list: "Serbia and Georgia", "El Salvador, Costa Rica, and Panama"
_NAME_WORDS = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
_LISTED = re.compile(rf"(?<!\w){_NAME_WORDS}(?:,\s+{_NAME_WORDS})*,?\s+and\s+{_NAME_WORDS}")


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


def starts_word(name: str, text: str) -> bool:
    """Whether ``text`` has ``name`` at the start of a word ("rica" is not in "african"; "kosov" is in "kosovar")."""
    return re.search(rf"(?<!\w){re.escape(name)}", text) is not None


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
