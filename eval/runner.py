"""``rag eval``: ask every case, check each answer, write results.jsonl, summary.json and the reports.

Resumable: records already in DIR/results.jsonl (per case and run index) are kept and skipped while
their case and the answer-shaping settings are unchanged (see ``eval.resume``); records that ended in
an error are dropped and asked again. A case that raises is recorded with its one-line ``error`` and
the run goes on. The chain is built once (or injected, for tests).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from eval import metrics, resume
from eval.cases import Case, load_cases, resolve_sources, select_cases
from eval.corpus import ingest_corpus
from eval.log import log
from eval.resume import load_results
from eval.summary import HEADLINE, RATE_KEYS, deltas, summarize, verdict
from rag.chain import Chain
from rag.errors import InputError
from rag.jsonl import write_atomic
from rag.settings import get_settings
from rag.store import require_articles

__all__ = ["evaluate_case", "load_results", "main", "run"]

RESULTS, SUMMARY = resume.RESULTS, "summary.json"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


# ---- one case --------------------------------------------------------------------------------
def evaluate_case(chain: Chain, case: Case, run: int, gold: Sequence[str]) -> dict[str, Any]:
    """Ask the case's question and score the answer; an exception becomes the record's ``error``."""
    record: dict[str, Any] = {
        "id": case.id, "run": run, "kind": case.kind, "question": case.question,
        "history": [list(t) for t in case.history], "answerable": case.answerable, "reference": case.answer,
        "sources": list(gold), "answer": None, "abstained": None, "standalone_question": None, "draft": None,
        "citations": [], "contexts": [], "claims": [], "dropped_citations": [], "metrics": {}, "timings": {},
        "eval_s": None, "error": None,
    }
    try:
        answer = chain.ask(case.question, case.history)
        started = time.perf_counter()
        judge = chain.judge
        faith = metrics.faithfulness(answer, judge, trust_verdicts=chain.settings.verify != "off")
    except Exception as exc:  # any failure of one case is recorded, never fatal to the run
        record["error"] = one_line(exc)
        return record
    correct = metrics.correctness(case, answer.answer, answer.abstained)
    refused = metrics.refusal(case, answer.abstained)
    found = metrics.retrieval(gold, answer.contexts)
    gold_set = set(gold)
    js = answer.to_json()
    record.update(
        answer=answer.answer, abstained=answer.abstained, standalone_question=answer.standalone_question,
        draft=answer.draft, citations=js["citations"], dropped_citations=list(answer.dropped_citations),
        contexts=[{**c.model_dump(include={"n", "chunk_id", "article_id", "text", "score", "title", "outlet",
                                           "date", "author"}),
                   "also_reported_by": list(c.also_reported_by),
                   "gold": c.article_id in gold_set or bool(gold_set.intersection(c.also_reported_by))}
                  for c in answer.contexts],
        claims=[c.model_dump() for c in faith.claims], timings=dict(answer.timings),
        eval_s=round(time.perf_counter() - started, 4),
        metrics={
            "answer_correct": correct.correct, "missing": list(correct.missing),
            "correct_refusal": refused.correct_refusal, "false_refusal": refused.false_refusal,
            "claim_support": faith.claim_support, "citation_precision": faith.citation_precision,
            "citation_coverage": faith.citation_coverage, "n_claims": faith.n_claims,
            "n_supported": faith.n_supported, "n_citations": faith.n_citations,
            "n_citations_supported": faith.n_citations_supported, "n_cited_sentences": faith.n_cited_sentences,
            "retrieval_hit": found.hit, "retrieval_rr": found.reciprocal_rank, "gold_ranks": list(found.gold_ranks),
            # would the answer verification withheld have been right? (for tuning the threshold)
            "draft_correct": metrics.correctness(case, answer.draft, False).correct if answer.draft else None,
        })
    return record


# ---- the run ---------------------------------------------------------------------------------
def run(chain: Chain, cases: Sequence[Case], out: Path, *, repeat: int = 1, concurrency: int = 1,
        baseline: dict[str, Any] | None = None, progress: bool = True,
        about: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) ``cases`` ``repeat`` times into ``out``; return the summary. ``about``: extra
    lines for run.json and the report header (e.g. the case file and collection). The caller holds
    ``out`` (``resume.only_writer``, as ``main`` does): two runs into one folder write records twice."""
    from tqdm import tqdm

    from eval.report import render_reports

    article_ids = [a.id for a in chain.store.articles()]
    if not article_ids:
        raise InputError(f"the article collection in {chain.settings.data_dir} is empty: run `rag ingest` first")
    gold = {c.id: resolve_sources(c, article_ids) for c in cases}
    prints = {c.id: resume.case_fingerprint(c) for c in cases}
    now = resume.setup(chain)
    done, changed, why = resume.split_changed(load_results(out / RESULTS), prints, now, repeat)
    resume.set_aside(out / RESULTS, done, changed)
    todo = [(c, r) for r in range(repeat) for c in cases if (c.id, r) not in done]
    kept = len(cases) * repeat - len(todo)
    if kept or changed:
        again = (f"; {len(changed)} are run again because they changed ({why}; old records moved to"
                 f" {out / resume.REPLACED})") if changed else ""
        log(f"resuming: {kept} finished case runs in {out / RESULTS} are kept{again}")
    appender = resume.Appender(out / RESULTS)
    lock = threading.Lock()
    bar = tqdm(total=len(todo), unit="case", desc="Evaluating", file=sys.stderr, disable=not progress)

    def work(case: Case, r: int) -> None:
        record = {**evaluate_case(chain, case, r, gold[case.id]), "case_fingerprint": prints[case.id],
                  "setup": now}
        appender.write(record)
        with lock:
            done[(case.id, r)] = record
            bar.update(1)
            if record["error"]:
                bar.write(f"{case.id}: {record['error']}", file=sys.stderr)

    try:
        if concurrency <= 1:
            for case, r in todo:
                work(case, r)
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                futures = [pool.submit(work, case, r) for case, r in todo]
                try:
                    for fut in as_completed(futures):
                        fut.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
        appender.close()
    records = [done[(c.id, r)] for r in range(repeat) for c in cases if (c.id, r) in done]
    summary = summarize(records, chain.settings.top_k, repeat)
    info = {**chain.describe(), **(about or {}), "repeat": repeat, "top_k": chain.settings.top_k,
            "support_threshold": chain.settings.support_threshold}
    files = {"run.json": json.dumps({**info, "setup": now}, indent=2, default=str) + "\n",
             **render_reports(summary, records, baseline, info),
             SUMMARY: json.dumps(summary, indent=2, ensure_ascii=False) + "\n"}  # last: when it is new, all are
    for name, text in files.items():
        save(out / name, text)
    return summary


def save(path: Path, text: str) -> None:
    """``write_atomic``, its error naming ``path`` (not the temp file beside it)."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


# ---- baseline, command ----------------------------------------------------------------
def load_baseline(path: Path) -> dict[str, Any]:
    file = path / SUMMARY if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))  # a byte-order mark is allowed, as in case files
    except FileNotFoundError:
        raise InputError(f"--baseline: {file} not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--baseline: {file} is not UTF-8 text (byte {exc.start})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"--baseline: cannot read {file} ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--baseline: {file} is not a summary.json object")
    for key in HEADLINE:  # the numbers the comparison uses
        if key not in data:
            raise InputError(f"--baseline: {file} is not a summary.json (key '{key}' is missing)")
        if problem := _bad_headline(key, data[key]):
            raise InputError(f"--baseline: {file}: key '{key}' {problem}, got {json.dumps(data[key])[:40]}")
    return data


def _bad_headline(key: str, value: Any) -> str | None:
    """What is wrong with a headline value of a summary.json (None when nothing): a rate is a fraction from
    0 to 1, a time a number of seconds from 0, and either may be null (undefined)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "must be a number or null"
    if key in RATE_KEYS and not 0 <= value <= 1:
        return "must be a fraction from 0 to 1, or null"
    if value < 0:
        return "must be 0 or more seconds, or null"
    return None


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}s" if key.endswith("_s") else f"{value:.3f}"


def headline(summary: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """The headline numbers as aligned text lines (with deltas against a baseline)."""
    diff = deltas(summary, baseline)
    lines = [f"cases {summary['n_cases']} (answerable {summary['n_answerable']}, unanswerable "
             f"{summary['n_unanswerable']}), runs {summary['runs']}, errors {summary.get('n_errors', 0)}"]
    for key in HEADLINE:
        line = f"  {key:<20} {_fmt(key, summary.get(key)):>8}"
        if summary["runs"] > 1 and summary["spread"][key]["min"] is not None:
            line += f"  [{_fmt(key, summary['spread'][key]['min'])} .. {_fmt(key, summary['spread'][key]['max'])}]"
        if (d := diff.get(key)) is not None:
            line += f"  {d:+.3f} vs baseline" + (f" ({v})" if (v := verdict(key, d)) else "")
        lines.append(line)
    return "\n".join(lines)


MAX_REPEAT = 100  # each repeat asks every case again: more only fills memory before anything runs
MAX_CONCURRENCY = 64


def main(args: argparse.Namespace, chain: Chain | None = None) -> int:
    """``rag eval``. Returns 0 when every case ran, 1 when some case ended in an error."""
    limit, repeat = getattr(args, "limit", None), getattr(args, "repeat", 1)
    concurrency = getattr(args, "concurrency", 1)
    for flag, value in (("--limit", limit), ("--repeat", repeat), ("--concurrency", concurrency)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    for flag, value, most in (("--repeat", repeat, MAX_REPEAT), ("--concurrency", concurrency, MAX_CONCURRENCY)):
        if value > most:
            raise InputError(f"{flag} must be at most {most}, got {value}")
    corpus = getattr(args, "corpus", None)
    if corpus and Path(args.out).resolve().is_relative_to(Path(corpus).resolve()):
        raise InputError(f"--out {args.out} is inside --corpus {corpus}: the next run would read its reports and"
                         " results as articles; pick an --out outside the corpus")
    settings = chain.settings if chain else get_settings()
    cases = load_cases(Path(args.cases), settings.max_question_chars)
    kinds = sorted({c.kind for c in cases})
    for kind in getattr(args, "kind", None) or ():
        if kind not in kinds:
            raise InputError(f"--kind {kind}: no case in {args.cases} has this kind (kinds there: {', '.join(kinds)})")
    cases = select_cases(cases, getattr(args, "kind", None), limit)
    for case in cases:
        if case.answerable and not case.checkable:
            log(f"warning: {case.where}: case '{case.id}' has no must_contain or must_contain_any:"
                " answer_correct is not scored for it")
    baseline = load_baseline(Path(args.baseline)) if getattr(args, "baseline", None) else None
    if baseline is not None and baseline.get("n_cases") not in (None, len(cases)):
        log(f"warning: --baseline {args.baseline} ran {baseline['n_cases']} cases and this run has {len(cases)}:"
            " its numbers are of another case set")
    collection = None
    if chain is None and not corpus:
        require_articles(settings.data_dir, settings.collection)  # before a store or a model is made
    with resume.only_writer(Path(args.out)):  # a second run is refused before the model loads
        if chain is None:
            collection = ingest_corpus(Path(corpus), settings) if corpus else None
            chain = Chain.from_settings(settings, collection)
        if concurrency > 1 and chain.backend.name == "local":
            log("note: the in-process model answers one request at a time; --concurrency helps server backends")
        about = {"cases": str(args.cases), "corpus": str(corpus) if corpus else None,
                 "collection": collection or chain.settings.collection}
        summary = run(chain, cases, Path(args.out), repeat=repeat, concurrency=concurrency, baseline=baseline,
                      about=about)
    print(headline(summary, baseline))
    print(f"report: {Path(args.out) / 'report.html'}")
    return 1 if summary.get("n_errors") else 0
