"""``rag eval-judge``: how well does the claim judge tell supported from unsupported claims?

Scores three systems on labelled (claim, passage) pairs: the deterministic numbers-and-names check
alone (``rules``), the LLM's P(yes) alone (``model``) and the chain's default combination
(``combined``). The positive class is **unsupported** (the judge's job is to flag unsupported claims),
so precision = flagged claims that really are unsupported, recall = unsupported claims that get flagged.
With the fake backend there is no LLM: its parts are reported as null.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.claims import strip_markers
from rag.errors import InputError
from rag.jsonl import json_objects, write_atomic
from rag.verify import Judge, PYes, deterministic_check

__all__ = ["JudgeCase", "Scores", "auroc", "evaluate", "load_judge_cases", "main", "scores"]

SWEEP = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class JudgeCase:
    id: str
    claim: str
    passage: str
    supported: bool
    change: str = "none"
    article: str | None = None


def load_judge_cases(path: Path) -> list[JudgeCase]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read judge cases ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: judge cases are not UTF-8 text (byte {exc.start})") from None
    out = []
    for lineno, rec in json_objects(path, text, unique_keys=True):
        where = f"{path}:{lineno}"
        for name in ("id", "claim", "passage"):
            if not isinstance(rec.get(name), str) or not rec[name].strip():
                raise InputError(f"{where}: field '{name}' is missing or not a non-empty string")
        if not isinstance(rec.get("supported"), bool):
            raise InputError(f"{where}: field 'supported' must be true or false")
        out.append(JudgeCase(rec["id"], rec["claim"], rec["passage"], rec["supported"],
                             str(rec.get("change") or "none"), rec.get("article")))
    if not out:
        raise InputError(f"{path}: no judge cases in file")
    return out


@dataclass(frozen=True)
class Scores:
    """Confusion counts and rates; positive = unsupported. A rate is None when undefined."""

    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    balanced_accuracy: float | None


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def scores(truth_unsupported: Sequence[bool], flagged: Sequence[bool]) -> Scores:
    pairs = list(zip(truth_unsupported, flagged, strict=True))
    tp = sum(t and f for t, f in pairs)
    fp = sum(f and not t for t, f in pairs)
    fn = sum(t and not f for t, f in pairs)
    tn = sum(not t and not f for t, f in pairs)
    precision, recall, specificity = _div(tp, tp + fp), _div(tp, tp + fn), _div(tn, tn + fp)
    f1 = _div(2 * precision * recall, precision + recall) if precision is not None and recall is not None else None
    balanced = (recall + specificity) / 2 if recall is not None and specificity is not None else None
    return Scores(len(pairs), tp, fp, fn, tn, _div(tp + tn, len(pairs)), precision, recall, f1, balanced)


def auroc(score_positive: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos = [s for s, p in zip(score_positive, positive, strict=True) if p]
    neg = [s for s, p in zip(score_positive, positive, strict=True) if not p]
    if not pos or not neg:
        return None
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def _accuracy(cases: Sequence[JudgeCase], flagged: Sequence[bool]) -> float | None:
    return _div(sum((not c.supported) == f for c, f in zip(cases, flagged, strict=True)), len(cases))


def evaluate(cases: Sequence[JudgeCase], p_yes: PYes | None, threshold: float = 0.5,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Everything ``rag eval-judge`` reports, as one JSON-able dict."""
    truth = [not c.supported for c in cases]
    flagged: dict[str, list[bool] | None] = {
        "rules": [deterministic_check(c.claim, c.passage) is not None for c in cases], "model": None, "combined": None}
    llm: list[float] | None = None
    if p_yes is not None:
        cache: dict[tuple[str, str], float | None] = {}
        for i, c in enumerate(cases, 1):
            cache[(strip_markers(c.claim), c.passage)] = p_yes(strip_markers(c.claim), c.passage)
            if progress:
                progress(i)

        def cached(claim: str, passage: str) -> float | None:
            return cache[(claim, passage)] if (claim, passage) in cache else p_yes(claim, passage)

        got = [cache[(strip_markers(c.claim), c.passage)] for c in cases]
        if all(s is not None for s in got):
            llm = [float(s) for s in got if s is not None]

            def run(mode: str, t: float) -> list[bool]:
                judge = Judge(cached, t, mode=mode)
                return [not judge(c.claim, c.passage).supported for c in cases]

            flagged["model"], flagged["combined"] = run("model", threshold), run("combined", threshold)
    systems = {name: (asdict(scores(truth, f)) if f is not None else None) for name, f in flagged.items()}
    changes = sorted({c.change for c in cases})
    by_change = {}
    for change in changes:
        idx = [i for i, c in enumerate(cases) if c.change == change]
        by_change[change] = {"n": len(idx), **{name: (_accuracy([cases[i] for i in idx], [f[i] for i in idx])
                                                      if f is not None else None) for name, f in flagged.items()}}
    sweep: list[dict[str, Any]] = []
    if llm is not None:
        for t in sorted({*SWEEP, threshold}):
            row: dict[str, Any] = {"threshold": t}
            for mode in ("model", "combined"):
                judge = Judge(cached, t, mode=mode)
                row[mode] = asdict(scores(truth, [not judge(c.claim, c.passage).supported for c in cases]))
            sweep.append(row)
    best = {mode: _best_threshold(sweep, mode) for mode in ("model", "combined")} if sweep else None
    return {
        "positive_class": "unsupported", "n": len(cases), "n_supported": sum(c.supported for c in cases),
        "n_unsupported": sum(truth), "threshold": threshold, "llm_available": llm is not None,
        "systems": systems,
        "auroc_model": auroc([1.0 - s for s in llm], truth) if llm is not None else None,
        "by_change": by_change, "sweep": sweep, "best_threshold_by_balanced_accuracy": best,
        "wrong": {name: [c.id for c, t, x in zip(cases, truth, f, strict=True) if t != x] if f is not None else None
                  for name, f in flagged.items()},
        "llm_scores": {c.id: s for c, s in zip(cases, llm, strict=True)} if llm is not None else None,
    }


def _best_threshold(sweep: Sequence[dict[str, Any]], mode: str) -> float:
    """The threshold with the highest balanced accuracy (ties: the one nearest 0.5)."""
    best = max(sweep, key=lambda r: (r[mode]["balanced_accuracy"] or 0.0, -abs(r["threshold"] - 0.5)))
    return float(best["threshold"])


def _f(value: Any) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def table(result: dict[str, Any]) -> str:
    lines = [f"judge eval: {result['n']} pairs ({result['n_supported']} supported, {result['n_unsupported']} "
             f"unsupported); positive class = unsupported; threshold {result['threshold']}",
             f"{'system':<10} {'acc':>6} {'bal_acc':>7} {'prec':>6} {'recall':>6} {'F1':>6}   tp fp fn tn"]
    for name, s in result["systems"].items():
        if s is None:
            lines.append(f"{name:<10} {'n/a (no LLM: RAG_LLM=fake)':>38}")
            continue
        lines.append(f"{name:<10} {_f(s['accuracy']):>6} {_f(s['balanced_accuracy']):>7} {_f(s['precision']):>6} "
                     f"{_f(s['recall']):>6} {_f(s['f1']):>6}   {s['tp']:>2} {s['fp']:>2} {s['fn']:>2} {s['tn']:>2}")
    lines.append(f"AUROC of the LLM score: {_f(result['auroc_model']).strip()}")
    lines += ["", "accuracy by change type:", f"{'change':<16} {'n':>3} {'rules':>6} {'model':>6} {'combined':>8}"]
    for change, row in result["by_change"].items():
        lines.append(f"{change:<16} {row['n']:>3} {_f(row['rules']):>6} {_f(row['model']):>6} {_f(row['combined']):>8}")
    if result["sweep"]:
        lines += ["", "threshold sweep (balanced accuracy / F1):", f"{'t':>5} {'model':>13} {'combined':>13}"]
        for row in result["sweep"]:
            m, c = row["model"], row["combined"]
            lines.append(f"{row['threshold']:>5.2f} {_f(m['balanced_accuracy'])} / {_f(m['f1'])} "
                         f"{_f(c['balanced_accuracy'])} / {_f(c['f1'])}")
        best = result["best_threshold_by_balanced_accuracy"]
        lines.append(f"best threshold by balanced accuracy: model {best['model']}, combined {best['combined']}")
    return "\n".join(lines)


def _check_out(out: Path) -> None:
    """Make the folder of ``out`` (judge.json) and check that a file can be written into it."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out.parent}: {exc.strerror}") from None
    if out.is_dir():
        raise InputError(f"--out {out.parent}: {out} is a folder, so judge.json cannot be written")
    try:
        with tempfile.TemporaryFile(dir=out.parent):  # judge.json is written as a temp file renamed over it
            pass
    except OSError as exc:
        raise InputError(f"--out {out.parent}: cannot write in this folder ({exc.strerror})") from None


def main(args: argparse.Namespace, p_yes: PYes | None = None) -> int:
    """``rag eval-judge``. ``p_yes`` may be injected (tests); otherwise it comes from the configured backend."""
    from tqdm import tqdm

    from rag.settings import get_settings

    cases = load_judge_cases(Path(args.cases))
    out = Path(args.out) / "judge.json" if getattr(args, "out", None) else None
    if out and (out.parent.suffix == ".json" or out.parent.is_file()):
        raise InputError(f"--out {out.parent}: give a folder (judge.json is written into it, as rag eval --out does)")
    if out:  # before any pair is judged (minutes with a real model)
        _check_out(out)
    settings = get_settings()
    if p_yes is None and settings.llm != "fake":
        from rag.providers import make_backend
        from rag.verify import judge_prompt_p_yes

        p_yes = judge_prompt_p_yes(make_backend(settings).p_yes)
    bar = tqdm(total=len(cases), unit="pair", desc="Judging", file=sys.stderr, disable=p_yes is None)
    result = evaluate(cases, p_yes, settings.support_threshold, progress=lambda i: bar.update(i - bar.n))
    bar.close()
    print(table(result))
    if out:
        try:
            write_atomic(out, json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from None
        print(f"wrote {out}")
    return 0
