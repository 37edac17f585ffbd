"""Numbers given as a bound: "at least 50", "up to 50", "50 is the maximum". A claim may make a number a
bound that its passage does not ("50 is the maximum" of "the country will take 50 deportees"), and two
reports may give one number as opposite bounds."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.chunking import sentence_spans
from rag.claims import numbers_in, plain_number, strip_markers
from rag.conflicts import statements, stems, topic_of
from rag.models import Claim, Context

_BOUND = re.compile(r"\b(at least|no fewer than|more than|over|minimum of|up to|as many as|at most|no more than|"
                    r"fewer than|less than|under|maximum of)\s+(\d[\d,.]*\d|\d)", re.I)
_LOWER = frozenset({"at least", "no fewer than", "more than", "over", "minimum of"})


def bounds(text: str) -> dict[str, str]:
    """Number -> "lower" or "upper" for the numbers ``text`` states as a bound ("at least 50", "up to 50")."""
    return {plain_number(m.group(2)): "lower" if m.group(1).lower() in _LOWER else "upper"
            for m in _BOUND.finditer(text)}


def claim_bounds(text: str) -> dict[str, str]:
    """``bounds`` of a claim; without those, a claim can make its numbers a bound in its own words: "50 is
    the maximum" ("a maximum of 300 prisoners in 2022" bounds 300, not 2022)."""
    return bounds(text) or {num: kind for word, kind in (("minimum", "lower"), ("maximum", "upper"))
                             if re.search(rf"\b{word}\b", text, re.I) for num in numbers_in(text)}


def bound_sentence(claim: str, ctx: Context, question: str) -> str | None:
    """For a claim giving a number as a bound ("50 is the maximum", "at least 50") that ``ctx`` states
    without that bound ("the country will take 50 deportees"): the sentence of ``ctx`` stating the
    number that is most about the question, to quote in the claim's place; None otherwise. The judge
    passes such claims (the number is there; "maximum" came from the question)."""
    theirs = bounds(ctx.text)
    loose = {num for num, kind in claim_bounds(strip_markers(claim)).items() if theirs.get(num) != kind}
    topic = topic_of(question)
    stating = [s for s in statements(ctx.text) if loose & numbers_in(s)] if loose else []
    return max(stating, key=lambda s: len(topic & stems(s)), default=None)


def bound_disagreements(supported: Sequence[Claim], contexts: Sequence[Context],
                         used_articles: set[str]) -> list[tuple[Context, str]]:
    """Another article giving the answer's number as the opposite bound: "up to 50" vs "at least 50".
    The articles found are added to ``used_articles``."""
    by_n = {c.n: c for c in contexts}
    numbers = set().union(*(numbers_in(strip_markers(c.text)) for c in supported)) if supported else set()
    ours = {num: kind for c in supported for n in c.cited if n in by_n
            for num, kind in bounds(by_n[n].text).items() if num in numbers}
    for c in supported:
        ours |= claim_bounds(c.text)
    out: list[tuple[Context, str]] = []
    for ctx in contexts if ours else ():
        if ctx.article_id in used_articles:
            continue
        for a, b in sentence_spans(ctx.text):
            theirs = bounds(ctx.text[a:b])
            if any(num in theirs and theirs[num] != kind for num, kind in ours.items()):
                out.append((ctx, ctx.text[a:b]))
                used_articles.add(ctx.article_id)
                break
    return out
