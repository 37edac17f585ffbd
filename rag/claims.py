"""The text of an answer's claims: sentences and their [n] markers, words and numbers, compared with a
passage's. Plain string functions, shared by verification, conflicts, focus and the evaluation."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.chunking import sentence_spans
from rag.models import Context

__all__ = ["STOP_WORDS", "WORD", "attach_citations", "bare", "breaks_off", "cite", "clauses", "clean_citations",
           "content_words", "markers", "normalize", "numbers_in", "overlap", "plain_number", "split_claims",
           "straight", "strip_markers"]

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# a number standing on its own ("1990s" and "20th" give 1990 and 20), not a digit glued to letters in a
# name or unit ("Q3", "G7", "4K", "6.3bn"), which a passage may spell out ("third quarter")
NUMBER = re.compile(r"(?<![A-Za-z\d])(?<!\d[.,])(?:\d[\d,.]*\d|\d)(?=[^A-Za-z\d]|$|(?:s|st|nd|rd|th)\b)"
                     r"(?![.,]\d)")
WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset("""the a an of to in on at by for from with and or is are was were be been it its as that this
these those has have had will would can could not no but which who what when where how about than into
over also said says their they there then he she his her we our""".split())
_NUMBER_WORDS = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                  "eight": "8", "nine": "9", "ten": "10", "dozen": "12", "fifty": "50", "hundred": "100"}


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


# ", and it can ...", "; they ...": a clause of its own, its subject a pronoun (", and Panama" is a list's last name)
_CLAUSE = re.compile(r"\s*(?:,\s*(?:and|but|while)|;)\s+(?=(?:it|they|he|she|its|their|this|these|those|there)\b)")


def clauses(sentence: str) -> list[str]:
    """A sentence joining clauses with a pronoun for subject, one sentence each with its own markers, else the
    sentence's last: "Kosovo takes 50 deportees, and it can choose them [3]." -> ["Kosovo takes 50 deportees
    [3].", "It can choose them [3]."]; ``[sentence]`` for one clause."""
    parts = [p for p in _CLAUSE.split(sentence.strip()) if strip_markers(p).strip(" .!?")]
    if len(parts) < 2:
        return [sentence]
    out = []
    for part in parts:
        text = strip_markers(part).rstrip(" .!?")
        text = text[0].upper() + text[1:] + "."
        for n in dict.fromkeys(markers(part) or markers(parts[-1])):
            text = cite(text, n)
        out.append(text)
    return out


# a word no sentence ends on: the value after it was left out ("... came in at [4].", "... a trade name on [1].")
_BROKEN = re.compile(r"\b(the|a|an|of|at|on|and|or|but|than|between|including)$")
_MARKERS = re.compile(rf"{_MARKER.pattern}(?:\s*(?:,|and)?{_MARKER.pattern})*")  # "[1] and [3]": one run


def bare(text: str) -> bool:
    """Whether ``text`` (markers stripped) is a bare answer, not a sentence: under six words ("2008",
    "Kessly", "$217 million (200 million euros)"), read against the question it answers."""
    return len(text.split()) < 6


def breaks_off(sentence: str) -> str | None:
    """The word ``sentence`` breaks off on, its value left out ("The revenue came in at [4]." -> "at"), else
    None. Markers, and an "and" between two of them ("... the reports [1] and [3]."), are not its words."""
    found = _BROKEN.search(_MARKERS.sub("", sentence).strip().rstrip(" .!?;:,").rstrip())
    return found.group(1) if found else None


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def overlap(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage."""
    want = content_words(strip_markers(claim))
    return len(want & content_words(passage)) / len(want) if want else 0.0


def normalize(text: str) -> str:
    """Lower case, straight quotes, single spaces: for comparing texts."""
    return straight(text).lower()


def straight(text: str) -> str:
    """``text`` with straight quotes and single spaces."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split())


def numbers_in(text: str) -> set[str]:
    """The numbers ``text`` states, written one way: "500,000" -> "500000", "$1.0 billion" and "1.50" -> "1"
    and "1.5", number words as digits."""
    found = {plain_number(n) for n in NUMBER.findall(text)}
    found |= {v for w, v in _NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text.lower())}
    return found


def plain_number(number: str) -> str:
    """A number as digits written one way: "500,000" -> "500000", "2008." -> "2008", "1.0" -> "1", "6.30" -> "6.3"."""
    number = number.replace(",", "").rstrip(".")
    return re.sub(r"\.$", "", re.sub(r"(\.\d*?)0+$", r"\1", number)) if "." in number else number


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
