"""One small function per metric, each with a typed result. The runner only orchestrates.

Per case: answer correctness, abstention, claim-level faithfulness, retrieval. Over cases:
``rate`` (share of defined values), ``ratio`` (summed counts) and ``percentile``. An undefined
metric is ``None`` (null in JSON), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eval.cases import Case
from rag.claims import normalize, strip_markers
from rag.models import Answer, Claim, Context
from rag.verify import Judge

__all__ = ["Correctness", "Faithfulness", "Refusal", "Retrieval", "correctness", "faithfulness", "percentile",
           "rate", "ratio", "refusal", "retrieval", "text_contains"]


def text_contains(text: str, needle: str) -> bool:
    """Case-insensitive substring test, ignoring [n] markers, curly quotes and runs of spaces."""
    return normalize(needle) in normalize(strip_markers(text))


# ---- answer correctness ----------------------------------------------------------------------
@dataclass(frozen=True)
class Correctness:
    correct: bool | None  # None: the case is unanswerable or has no must_contain* (correctness is not defined)
    missing: tuple[str, ...] = ()  # must_contain strings not found, and "one of: a | b" for must_contain_any


def correctness(case: Case, answer_text: str, abstained: bool) -> Correctness:
    """Answerable case: the answer holds every ``must_contain`` and one ``must_contain_any``, and did not abstain.
    A case with neither list has nothing to check (the reference ``answer`` is not compared)."""
    if not case.checkable:
        return Correctness(None)
    missing = [s for s in case.must_contain if not text_contains(answer_text, s)]
    if case.must_contain_any and not any(text_contains(answer_text, s) for s in case.must_contain_any):
        missing.append("one of: " + " | ".join(case.must_contain_any))
    return Correctness(not abstained and not missing, tuple(missing))


# ---- abstention ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    abstained: bool
    correct_refusal: bool | None  # unanswerable cases only
    false_refusal: bool | None  # answerable cases only


def refusal(case: Case, abstained: bool) -> Refusal:
    if case.answerable:
        return Refusal(abstained, None, abstained)
    return Refusal(abstained, abstained, None)


# ---- claim-level faithfulness ----------------------------------------------------------------
@dataclass(frozen=True)
class Faithfulness:
    """Counts over one non-abstained answer; the three rates are None when their denominator is 0."""

    claims: tuple[Claim, ...]  # the answer's claims with the verdicts used here
    n_claims: int = 0
    n_supported: int = 0
    n_citations: int = 0  # (sentence, cited passage) pairs + [n] markers that matched no passage
    n_citations_supported: int = 0
    n_cited_sentences: int = 0  # sentences with at least one citation of a retrieved passage

    @property
    def claim_support(self) -> float | None:
        return _div(self.n_supported, self.n_claims)

    @property
    def citation_precision(self) -> float | None:
        return _div(self.n_citations_supported, self.n_citations)

    @property
    def citation_coverage(self) -> float | None:
        return _div(self.n_cited_sentences, self.n_claims)


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def faithfulness(answer: Answer, judge: Judge | None, trust_verdicts: bool) -> Faithfulness:
    """Judge each sentence of the answer against the passages it cites.

    ``trust_verdicts``: the chain verified the answer (its ``Claim.verdict``s came from the same judge),
    so they are reused; otherwise (verification off: every cited claim says "supported") each claim is
    judged again here, so the metric does not depend on the chain's setting. A citation is one
    (sentence, passage) pair; a sentence citing several passages needs each pair judged on its own.
    A [n] marker the model wrote that matched no passage counts as an unsupported citation."""
    if answer.abstained:
        return Faithfulness(claims=())
    by_n: dict[int, Context] = {c.n: c for c in answer.contexts}
    claims: list[Claim] = []
    n_pairs = n_pairs_ok = n_cited = 0
    for claim in answer.claims:
        cited = tuple(n for n in claim.cited if n in by_n)
        pair_ok: list[bool]
        if not cited:
            pair_ok = []
            claim = claim.model_copy(update={"verdict": "uncited", "score": None,
                                             "reason": claim.reason or "no citation"})
        elif judge is None or (trust_verdicts and (len(cited) == 1 or claim.verdict != "supported")):
            # one passage, or none of them supports it: the claim's verdict is each pair's verdict
            pair_ok = [claim.verdict == "supported"] * len(cited)
        elif trust_verdicts:
            pair_ok = [judge(claim.text, by_n[n].text).supported for n in cited]
        else:
            verdicts = [judge(claim.text, by_n[n].text) for n in cited]
            pair_ok = [v.supported for v in verdicts]
            best = max(verdicts, key=lambda v: (v.supported, v.score or 0.0))
            claim = claim.model_copy(update={"verdict": "supported" if best.supported else "unsupported",
                                             "score": best.score, "reason": best.reason})
        claims.append(claim)
        n_pairs += len(pair_ok)
        n_pairs_ok += sum(pair_ok)
        n_cited += bool(cited)
    n_pairs += len(answer.dropped_citations)
    return Faithfulness(claims=tuple(claims), n_claims=len(claims),
                        n_supported=sum(c.verdict == "supported" for c in claims),
                        n_citations=n_pairs, n_citations_supported=n_pairs_ok, n_cited_sentences=n_cited)


# ---- retrieval -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retrieval:
    hit: bool | None  # None: the case names no sources
    reciprocal_rank: float | None
    gold_ranks: tuple[int, ...] = ()  # 1-based ranks of retrieved passages from a gold article


def retrieval(gold: Iterable[str], contexts: Sequence[Context]) -> Retrieval:
    """Was a gold article among the retrieved passages, and how high? A passage also counts for the
    articles in its ``also_reported_by`` (near-copies collapsed into it)."""
    gold_set = set(gold)
    if not gold_set:
        return Retrieval(None, None)
    ranks = tuple(rank for rank, c in enumerate(contexts, 1)
                  if c.article_id in gold_set or gold_set.intersection(c.also_reported_by))
    return Retrieval(bool(ranks), 1.0 / ranks[0] if ranks else 0.0, ranks)


# ---- aggregation -----------------------------------------------------------------------------
def rate(values: Iterable[bool | float | None]) -> float | None:
    """Mean of the defined values (True=1); None when none is defined."""
    got = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(got) / len(got) if got else None


def ratio(pairs: Iterable[tuple[int, int]]) -> float | None:
    """Summed numerators over summed denominators (micro average); None when the denominator is 0."""
    num = den = 0
    for a, b in pairs:
        num, den = num + a, den + b
    return num / den if den else None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    xs = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

