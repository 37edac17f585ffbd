"""What a draft answer holds, in code: what it says (or that it refuses), whether it only says the question
again, its sentences put in a passage's own words, a false premise's correction, and the citations of the
claims kept."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.claims import cite, content_words, normalize, overlap, strip_markers
from rag.conflicts import listing_sentence, naming_sentence
from rag.models import Citation, Claim, Context
from rag.prompts import NOT_FOUND, OWN_WORDS, PREMISE_TEXT
from rag.reports import bound_sentence
from rag.verify import best_quote
from rag.yes_no import opens_with_verb, yes_no_evidence

__all__ = ["citations_of", "correction", "echoes", "in_own_words", "repeats", "said"]

_BARE_YES_NO = re.compile(r"^\W*(yes|no)\W*$", re.I)
_REFUSAL = re.compile(r"^\W*(not found|the (articles|passages) (do not|don't|does not) (say|contain|mention|"
                      r"provide|state))", re.I)


def in_own_words(claim: Claim, contexts: Sequence[Context], question: str, answer: str = "",
                  known: str = "") -> Claim:
    """Replaced by a passage's own sentence: a sentence listing names its passage never names together (by
    the sentence that does, in its own or another passage), a supported one giving a number as a bound
    ("the maximum", "at least") that the passage does not, and a supported one in an ``answer`` to a "who"
    question that names no one but those the question and the ``known`` turn before it name (by the passage's
    sentence saying the same and naming someone else). A bare "Yes [2]" to a yes/no question gets the sentence
    of passage 2 most about the question after it ("Yes: ... [2]")."""
    ctx = next((c for c in contexts if claim.cited == (c.n,)), None)
    if ctx is None or claim.reason == "quoted":
        return claim
    bare = _BARE_YES_NO.match(strip_markers(claim.text))
    if claim.verdict == "supported" and bare and (evidence := yes_no_evidence(question, ctx)):
        return Claim(text=f"{bare[1].capitalize()}: {cite(evidence, ctx.n)}", cited=(ctx.n,), reason="quoted")
    if claim.verdict == "supported":
        sentence = (bound_sentence(claim.text, ctx, question)
                    or naming_sentence(claim.text, ctx, question, answer, known, contexts))
        found = (ctx, sentence) if sentence else None
    else:
        found = listing_sentence(claim.text, ctx, question, contexts)
    if not found:
        return claim
    source, sentence = found
    return Claim(text=f"{OWN_WORDS} {cite(sentence, source.n)}", cited=(source.n,), reason="quoted")


def correction(fix: tuple[str, Context, str]) -> Claim:
    """A false premise corrected: the passage's sentence stating the fact, quoted."""
    _, ctx, sentence = fix
    return Claim(text=f"{PREMISE_TEXT} {cite(sentence, ctx.n)}", cited=(ctx.n,), reason="quoted")


def said(raw: str) -> str:
    """What a draft says ("" for NOT FOUND or "The articles do not say ...")."""
    raw = re.sub(r"^\s*answer:\s*", "", raw.strip(), flags=re.I)
    body = raw.replace(NOT_FOUND, "")
    return "" if _REFUSAL.match(raw) or not strip_markers(body).strip() else body


def echoes(answer: str, question: str) -> bool:
    """Whether the answer only says the question again ("Who thanked Kosovo?": "A spokesperson thanked Kosovo
    [1]."): no word the question lacks. A question opening with a verb may be answered so ("Was the port
    opened?": "The port was opened [1]."; "Is 50 a maximum or a minimum?": "50 is the maximum [1].")."""
    return not opens_with_verb(question) and not content_words(strip_markers(answer)) - content_words(question)


def repeats(claim: str, sentence: str) -> bool:
    """Whether the claim only says again (part of) the sentence quoted."""
    return normalize(strip_markers(claim)).rstrip(" .!?") in normalize(sentence)


def citations_of(claims: Sequence[Claim], contexts: Sequence[Context]) -> list[Citation]:
    """One citation per cited passage, quoting for each sentence citing it the passage sentence that best
    matches it ("... 300 foreign prisoners ... [1]. $217 million [1]." quotes both sentences of passage 1)."""
    by_n = {c.n: c for c in contexts}
    order = list(dict.fromkeys(n for claim in claims for n in claim.cited if n in by_n))
    out = []
    for n in order:
        ctx = by_n[n]
        citing = [strip_markers(c.text) for c in claims if n in c.cited]
        found = [(text, best_quote(text, ctx.text)) for text in citing]
        # a bare "Yes." shares nothing with any sentence: it adds none
        quotes = tuple(dict.fromkeys(q for text, q in found if overlap(text, q))) \
            or (best_quote(" ".join(citing), ctx.text),)
        out.append(Citation(n=n, article_id=ctx.article_id, chunk_id=ctx.chunk_id, title=ctx.title,
                            outlet=ctx.outlet, date=ctx.date, quote=quotes[0], quotes=quotes,
                            also_reported_by=ctx.also_reported_by))
    return out
