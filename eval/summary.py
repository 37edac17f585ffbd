"""Per-case records -> summary.json (keys as in DESIGN.md), by kind, across repeated runs, vs a baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.metrics import percentile, rate, ratio

__all__ = ["HEADLINE", "LOWER_IS_BETTER", "RATE_KEYS", "TIME_KEYS", "aggregate", "deltas", "summarize", "verdict"]

Record = Mapping[str, Any]

RATE_KEYS = ("answer_correct", "correct_refusal", "false_refusal", "claim_support", "citation_precision",
             "citation_coverage", "retrieval_hit_at_k", "retrieval_mrr")
TIME_KEYS = ("latency_p50_s", "latency_p95_s", "ttft_p50_s")
HEADLINE = RATE_KEYS + TIME_KEYS
LOWER_IS_BETTER = frozenset({"false_refusal", *TIME_KEYS})


def _metric(records: Iterable[Record], key: str) -> list[Any]:
    return [r["metrics"].get(key) for r in records]


def aggregate(records: Sequence[Record], k: int) -> dict[str, Any]:
    """The flat summary over ``records`` (several runs of a case pool together). Cases that raised
    are counted in ``n_cases`` and ``n_errors`` but left out of every metric."""
    ok = [r for r in records if not r.get("error")]
    answerable = {r["id"] for r in records if r.get("answerable")}
    every = {r["id"] for r in records}
    return {
        "n_cases": len(every),
        "n_answerable": len(answerable),
        "n_unanswerable": len(every - answerable),
        "answer_correct": rate(_metric(ok, "answer_correct")),
        "correct_refusal": rate(_metric(ok, "correct_refusal")),
        "false_refusal": rate(_metric(ok, "false_refusal")),
        "claim_support": ratio((r["metrics"]["n_supported"], r["metrics"]["n_claims"]) for r in ok),
        "citation_precision": ratio((r["metrics"]["n_citations_supported"], r["metrics"]["n_citations"])
                                    for r in ok),
        "citation_coverage": ratio((r["metrics"]["n_cited_sentences"], r["metrics"]["n_claims"]) for r in ok),
        "retrieval_hit_at_k": rate(_metric(ok, "retrieval_hit")),
        "retrieval_mrr": rate(_metric(ok, "retrieval_rr")),
        "k": k,
        "latency_p50_s": percentile((r["timings"].get("total_s") for r in ok), 50),
        "latency_p95_s": percentile((r["timings"].get("total_s") for r in ok), 95),
        "ttft_p50_s": percentile((r["timings"].get("ttft_s") for r in ok), 50),
        "n_errors": sum(1 for r in records if r.get("error")),
    }


def summarize(records: Sequence[Record], k: int, runs: int) -> dict[str, Any]:
    """summary.json: the headline over all records, ``by_kind`` and, per metric, min/max across runs."""
    out = aggregate(records, k)
    kinds = sorted({str(r["kind"]) for r in records})
    out["by_kind"] = {}
    for kind in kinds:
        part = aggregate([r for r in records if r["kind"] == kind], k)
        out["by_kind"][kind] = {"n": part.pop("n_cases"), **{key: v for key, v in part.items() if key != "k"}}
    out["runs"] = runs
    per_run = [aggregate([r for r in records if r.get("run", 0) == i], k) for i in range(runs)]
    out["spread"] = {key: _min_max([s[key] for s in per_run]) for key in HEADLINE}
    return out


def _min_max(values: list[float | None]) -> dict[str, float | None]:
    got = [v for v in values if v is not None]
    return {"min": min(got) if got else None, "max": max(got) if got else None}


def deltas(current: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> dict[str, float | None]:
    """current - baseline for every headline metric both define (None otherwise)."""
    if not baseline:
        return {}
    out: dict[str, float | None] = {}
    for key in HEADLINE:
        a, b = current.get(key), baseline.get(key)
        out[key] = a - b if isinstance(a, int | float) and isinstance(b, int | float) else None
    return out


def verdict(key: str, d: float) -> str:
    """"better", "worse" or "" (no change: a mean over runs can differ from the same value by 1e-16)."""
    if abs(d) < 1e-12:
        return ""
    return "better" if (d < 0) == (key in LOWER_IS_BETTER) else "worse"
