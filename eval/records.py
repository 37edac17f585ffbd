"""The shape of a record of ``results.jsonl``, checked when a run resumes from it.

A record edited by hand (``"answer": 5``, ``"citations": "x"``, a key deleted) broke the summary or the
report with a traceback after every case had run. ``record_problem`` says what is wrong with one, so that the
resume moves its line aside as it does other lines that are no records. Every key the runner writes
is required (every version of it wrote them all, but for ``case_fingerprint`` and ``setup``); of
their insides, what the summary and the reports read is checked. Other keys may hold anything.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["record_problem"]


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")  # strict: "5" is no number, 1 is not true


class _Citation(_Shape):
    n: int
    article_id: str
    quote: str
    quotes: list[str] = []
    outlet: str | None = None
    date: str | None = None


class _Context(_Shape):
    n: int
    article_id: str
    text: str
    score: float
    gold: bool = False
    also_reported_by: list[str] = []


class _Claim(_Shape):
    text: str
    verdict: str
    score: float | None = None
    reason: str | None = None


class _Record(_Shape):
    id: str
    run: int = 0
    kind: str
    question: str
    history: list[Annotated[list[str], Field(min_length=2, max_length=2)]]  # [question, answer] pairs
    answerable: bool
    reference: str | None
    sources: list[str]
    answer: str | None
    abstained: bool | None
    standalone_question: str | None
    draft: str | None
    citations: list[_Citation]
    contexts: list[_Context]
    claims: list[_Claim]
    dropped_citations: list[int]
    metrics: dict[str, Any]
    timings: dict[str, float | None]
    eval_s: float | None
    error: str | None
    case_fingerprint: str | None = None
    setup: dict[str, Any] | None = None


class _Metrics(_Shape):
    """The metrics of a record that ran (one that ended in an error has none)."""

    answer_correct: bool | None
    correct_refusal: bool | None
    false_refusal: bool | None
    retrieval_hit: bool | None
    retrieval_rr: float | None
    n_claims: int
    n_supported: int
    n_citations: int
    n_citations_supported: int
    n_cited_sentences: int
    missing: list[str] = []


def record_problem(rec: dict[str, Any]) -> str | None:
    """What is wrong with a record of ``rag eval`` (None when nothing), e.g. "field 'answer' must be
    a valid string, got 5" or "field 'metrics.n_claims' is missing"."""
    try:
        _Record.model_validate(rec)
    except ValidationError as exc:
        return _first(exc)
    if rec["error"]:
        return None
    try:
        _Metrics.model_validate(rec["metrics"])
    except ValidationError as exc:
        return _first(exc, "metrics.")
    return None


def _first(exc: ValidationError, within: str = "") -> str:
    """The first error, on one line: "field 'citations' must be a valid list, got "x""."""
    err = exc.errors()[0]
    field = json.dumps(within + ".".join(str(part) for part in err["loc"]), ensure_ascii=False)[1:-1]
    if err["type"] == "missing":
        return f"field '{field}' is missing"
    msg = err["msg"]  # "Input should be a valid string", "List should have at least 2 items ..."
    said = f"must be {msg.removeprefix('Input should be ')}" if msg.startswith("Input should be ") else msg.lower()
    return f"field '{field}' {said}, got {json.dumps(err['input'], default=str)[:40]}"
