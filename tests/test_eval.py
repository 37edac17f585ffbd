"""Batch evaluation: metrics on hand-made answers, the case file, an end-to-end run with the fake chain."""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eval import judge as judge_eval
from eval import metrics, runner
from eval.cases import Case, load_cases, resolve_sources, select_cases
from eval.corpus import corpus_collection
from eval.summary import HEADLINE, aggregate
from rag import cli
from rag.chain import Chain
from rag.errors import InputError
from rag.models import Answer, Claim, Context
from rag.settings import PROJECT_ROOT, get_settings, valid_collection
from rag.store import Store
from rag.verify import Judge

CONTRACT_KEYS = {"n_cases", "n_answerable", "n_unanswerable", "answer_correct", "correct_refusal", "false_refusal",
                 "claim_support", "citation_precision", "citation_coverage", "retrieval_hit_at_k", "retrieval_mrr",
                 "k", "latency_p50_s", "latency_p95_s", "ttft_p50_s", "by_kind", "runs", "spread"}
P1 = "Kosovo agreed to host 50 deportees from other countries."
P2 = "Kosovo declared its independence from Serbia in 2008."


def ctx(n: int, article: str, text: str, also: tuple[str, ...] = ()) -> Context:
    return Context(n=n, chunk_id=f"{article}@{n}", article_id=article, text=text, score=0.5, also_reported_by=also)


def answer(claims: list[Claim], abstained: bool = False, dropped: tuple[int, ...] = ()) -> Answer:
    return Answer(question="q", standalone_question="q", answer=" ".join(c.text for c in claims),
                  abstained=abstained, claims=tuple(claims), dropped_citations=dropped,
                  contexts=(ctx(1, "a1", P1), ctx(2, "a2", P2)), timings={"total_s": 1.0, "ttft_s": 0.5})


def case(**kw: Any) -> Case:
    return Case(**{"id": "c", "question": "q", "answer": "x", **kw})


# ---- metrics -----------------------------------------------------------------------------------
def test_correctness_is_case_insensitive_needs_all_and_one_of_any_and_not_abstained() -> None:
    c = case(must_contain=["kosovo", "50"], must_contain_any=["deportees", "migrants"])
    assert metrics.correctness(c, "KOSOVO will take 50 Deportees [1].", False).correct is True
    missing = metrics.correctness(c, "Kosovo will take 500 people.", False)
    assert missing.correct is False and missing.missing == ("one of: deportees | migrants",)
    assert metrics.correctness(c, "Kosovo will take 50 deportees.", True).correct is False  # abstained
    assert metrics.correctness(case(must_contain=["Kosovo’s"]), "kosovo's embassy", False).correct is True
    assert metrics.correctness(case(answer=None, must_contain=["x"]), "x", False).correct is None
    assert metrics.correctness(case(), "anything at all", False).correct is None  # nothing to check it against


def test_refusal_counts_only_on_the_right_kind_of_case() -> None:
    assert metrics.refusal(case(answer=None), True) == metrics.Refusal(True, True, None)
    assert metrics.refusal(case(answer=None), False).correct_refusal is False
    assert metrics.refusal(case(), True) == metrics.Refusal(True, None, True)
    assert metrics.refusal(case(), False).false_refusal is False


def test_faithfulness_reuses_the_chains_verdicts() -> None:
    claims = [Claim(text=f"{P1} [1]", cited=(1,)),
              Claim(text="Kosovo took 900 people [2].", cited=(2,), verdict="unsupported"),
              Claim(text="Nobody knows why.", verdict="uncited")]
    f = metrics.faithfulness(answer(claims, dropped=(7,)), Judge(None), trust_verdicts=True)
    assert (f.n_claims, f.n_supported, f.n_cited_sentences) == (3, 1, 2)
    assert f.claim_support == pytest.approx(1 / 3)
    assert f.citation_coverage == pytest.approx(2 / 3)
    assert f.citation_precision == pytest.approx(1 / 3)  # 1 of 2 pairs + the dropped [7]


def test_faithfulness_rejudges_when_the_chain_did_not_verify() -> None:
    # verify=off leaves every cited claim "supported"; the 900 is in neither passage
    claims = [Claim(text=f"{P1} [1]", cited=(1,)), Claim(text="Kosovo took 900 deportees [1].", cited=(1,))]
    trusted = metrics.faithfulness(answer(claims), Judge(None), trust_verdicts=True)
    judged = metrics.faithfulness(answer(claims), Judge(None), trust_verdicts=False)
    assert trusted.claim_support == 1.0
    assert judged.claim_support == 0.5 and judged.citation_precision == 0.5
    assert [c.verdict for c in judged.claims] == ["supported", "unsupported"]
    assert "900" in (judged.claims[1].reason or "")


def test_citation_precision_judges_each_cited_passage_of_a_sentence() -> None:
    claims = [Claim(text=f"{P1} [1][2]", cited=(1, 2))]  # only passage 1 states it
    f = metrics.faithfulness(answer(claims), Judge(None), trust_verdicts=True)
    assert f.claim_support == 1.0 and f.citation_precision == 0.5 and f.n_citations == 2


def test_faithfulness_of_an_abstained_answer_is_undefined() -> None:
    f = metrics.faithfulness(answer([], abstained=True), Judge(None), trust_verdicts=True)
    assert f.claim_support is None and f.citation_precision is None and f.citation_coverage is None


def test_retrieval_rank_and_collapsed_copies() -> None:
    contexts = [ctx(1, "a1", P1), ctx(2, "a2", P2, also=("a3",)), ctx(3, "a4", P2)]
    r = metrics.retrieval(["a2"], contexts)
    assert r.hit is True and r.reciprocal_rank == 0.5 and r.gold_ranks == (2,)
    assert metrics.retrieval(["a3"], contexts).reciprocal_rank == 0.5  # near-copy dropped in favour of a2
    assert metrics.retrieval(["zz"], contexts) == metrics.Retrieval(False, 0.0)
    assert metrics.retrieval([], contexts).hit is None


def test_percentile_rate_and_ratio_are_never_nan() -> None:
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert metrics.percentile([], 50) is None and metrics.rate([None, None]) is None
    assert metrics.rate([True, False, None, True]) == pytest.approx(2 / 3)
    assert metrics.ratio([(0, 0)]) is None and metrics.ratio([(1, 2), (3, 2)]) == 1.0
    summary = aggregate([], k=4)
    assert all(v is None or not (isinstance(v, float) and math.isnan(v)) for v in summary.values())


# ---- case files --------------------------------------------------------------------------------
def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "q2", "answer": null}', "field 'question' is missing"),
    ('{"id": "q2", "question": "Who?"}', "field 'answer' is missing"),
    ('{"id": "q2", "question": "Who?", "answer": " "}', "field 'answer' is empty (use null when the articles"),
    ('{"id": "q2", "question": "Who?", "answer": null, "must_contain": "x", "kind": 3}', "field 'kind'"),
    ('{"id": "q2", "question": "Who?", "answer": null, "history": [["only one"]]}', "field 'history'"),
    ('{"id": "q2", "question": "Who?", "answer": null, "must_contains": ["x"]}', "unknown field 'must_contains'"),
    ('{"id": "q1", "question": "Who?", "answer": null}', "field 'id' repeats 'q1'"),
    ('{"id": "q2", "question": ', "invalid JSON"),
    ('{"id": "q2", "question": "Who?", "answer": null, "history": [["Who \\ud83d?", "Ann."]]}',
     "field 'history' holds a lone surrogate \\ud83d (half of a character such as an emoji)"),
    ('{"id": "q2", "question": "Who?", "answer": "Ann", "must_contain": ["Ann", "\\udc00"]}',
     "field 'must_contain' holds a lone surrogate \\udc00"),
    ('{"id": "q2", "question": "Who?", "answer": null, "must_contain": ["Ann"]}',  # was scored as unanswerable
     "field 'must_contain' is given but 'answer' is null (unanswerable, so there is no answer to check): give the"
     " reference answer, or drop 'must_contain'"),
    ('{"id": "q2", "question": "Who?", "answer": null, "must_contain_any": ["Ann", "Bo"]}',
     "field 'must_contain_any' is given but 'answer' is null"),
    ('{"id": "q2", "question": "Who?", "answer": null, "question": "Why?"}',  # the last one was taken
     "field 'question' is given twice (only the last would count)"),
])
def test_malformed_case_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "cases.jsonl", ['{"id": "q1", "question": "Why?", "answer": "x"}', "", line])
    with pytest.raises(InputError) as err:
        load_cases(path)
    assert f"cases.jsonl:3: {message}" in str(err.value)


def test_a_question_over_the_length_limit_is_refused_at_load_time(chain: Chain, tmp_path: Path) -> None:
    long_question = "why " * 30
    path = write(tmp_path / "cases.jsonl", ['{"id": "q1", "question": "Why?", "answer": "x"}',
                                            json.dumps({"id": "q2", "question": long_question, "answer": None})])
    assert len(load_cases(path)) == 2  # no limit given
    with pytest.raises(InputError) as err:
        load_cases(path, max_question_chars=100)
    assert str(err.value) == (f"{path}:2: field 'question' is 119 characters, over the 100-character limit"
                              " (RAG_MAX_QUESTION_CHARS)")
    short = Chain(chain.settings.model_copy(update={"max_question_chars": 100}), chain.store, chain.backend)
    with pytest.raises(InputError, match=r"cases.jsonl:2: field 'question' is 119 characters"):
        runner.main(args(path, tmp_path / "run"), chain=short)
    assert not (tmp_path / "run").exists()


def test_sources_match_by_id_or_unambiguous_prefix() -> None:
    ids = ["000_aa", "001_bb", "010_cc"]
    assert resolve_sources(case(sources=["000", "001_bb"]), ids) == ("000_aa", "001_bb")
    with pytest.raises(InputError, match="ambiguous"):
        resolve_sources(case(sources=["0"], where="f:1"), ids)
    with pytest.raises(InputError, match="f:1: field 'sources'"):
        resolve_sources(case(sources=["999"], where="f:1"), ids)


def test_project_case_files_load_and_resolve_against_the_seeds(seeded_store: Store) -> None:
    cases = load_cases(PROJECT_ROOT / "eval" / "cases.jsonl")
    ids = [a.id for a in seeded_store.articles()]
    assert all(resolve_sources(c, ids) or not c.sources for c in cases)
    assert len(select_cases(cases, ["unanswerable"], 3)) == 3
    assert [c.id for c in cases if c.answerable and not (c.must_contain or c.must_contain_any)] == []  # all scored
    assert len(judge_eval.load_judge_cases(PROJECT_ROOT / "eval" / "judge_cases.jsonl")) > 10


# ---- the run -----------------------------------------------------------------------------------
CASES: list[dict[str, Any]] = [
    {"id": "a1", "question": "How many deportees did Kosovo agree to take?", "answer": "50",
     "must_contain": ["50"], "sources": ["000", "001", "002", "003", "004"], "kind": "single"},
    {"id": "a2", "question": "When did Kosovo declare independence from Serbia?", "answer": "2008",
     "must_contain": ["2008"], "sources": ["000"], "kind": "single"},
    {"id": "u1", "question": "What is the capital of Australia?", "answer": None, "kind": "unanswerable"},
    {"id": "t1", "question": "When did it declare independence <b>from Serbia</b>?", "answer": "2008",
     "history": [["How many deportees did Kosovo agree to take?", "50 [1]."]], "must_contain": ["2008"],
     "kind": "multi_turn"},
]


def args(cases: Path, out: Path, **kw: Any) -> argparse.Namespace:
    base = {"cases": cases, "out": out, "limit": None, "kind": None, "repeat": 1, "baseline": None, "corpus": None,
            "concurrency": 1}
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    return write(tmp_path / "cases.jsonl", [json.dumps(c) for c in CASES])


def counting(chain: Chain, monkeypatch: pytest.MonkeyPatch, fail: set[str] | None = None) -> list[str]:
    """Count the chain's calls; questions containing a string in ``fail`` raise."""
    calls: list[str] = []
    real = chain.ask

    def ask(question: str, history: Any = ()) -> Answer:
        calls.append(question)
        if any(f in question for f in fail or ()):
            raise RuntimeError("backend exploded\nwith a traceback line")
        return real(question, history)

    monkeypatch.setattr(chain, "ask", ask)
    return calls


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_run_writes_every_contract_file(chain: Chain, case_file: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert runner.main(args(case_file, out), chain=chain) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert not CONTRACT_KEYS - set(summary)
    assert (summary["n_cases"], summary["n_answerable"], summary["n_unanswerable"], summary["runs"]) == (4, 3, 1, 1)
    assert summary["k"] == chain.settings.top_k and summary["answer_correct"] is not None
    assert set(summary["by_kind"]) == {"single", "unanswerable", "multi_turn"}
    assert summary["by_kind"]["single"]["n"] == 2 and summary["by_kind"]["single"]["answer_correct"] == 1.0
    assert summary["retrieval_hit_at_k"] == 1.0  # t1 has no sources: not counted
    rows = results(out)
    assert [r["id"] for r in rows] == ["a1", "a2", "u1", "t1"]
    for key in ("id", "kind", "question", "answer", "abstained", "citations", "contexts", "claims", "metrics",
                "timings", "error"):
        assert key in rows[0]
    assert rows[0]["citations"] and rows[0]["claims"][0]["verdict"] == "supported"
    assert any(c["gold"] for c in rows[1]["contexts"])
    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://|url\(\s*["']?https?://|@import""", page, re.I)
    assert "data:image/png;base64," in page
    assert "&lt;b&gt;from Serbia&lt;/b&gt;" in page and "<b>from Serbia</b>" not in page
    md = (out / "report.md").read_text()
    assert "| answer_correct |" in md
    cases = md.split("## Cases")[1].splitlines()[4:]  # after the heading, a blank line and the table head
    outcomes = {line.split(" | ")[0].strip("| "): line.split(" | ")[2] for line in cases if line}
    assert set(outcomes) == {"a1", "a2", "u1", "t1"}
    assert outcomes["u1"] in ("refused (right)", "answered (should refuse)")
    assert outcomes["a1"] == ("right" if rows[0]["metrics"]["answer_correct"] else "wrong")
    assert "answer_correct" in capsys.readouterr().out  # headline printed


def test_resume_skips_finished_cases_and_repeat_adds_runs(chain: Chain, case_file: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    calls = counting(chain, monkeypatch)
    runner.main(args(case_file, out, limit=2), chain=chain)
    assert len(calls) == 2
    runner.main(args(case_file, out), chain=chain)
    assert len(calls) == 4 and len(results(out)) == 4  # only the two new cases were asked
    runner.main(args(case_file, out, repeat=2), chain=chain)
    assert len(calls) == 8 and sorted((r["id"], r["run"]) for r in results(out))[:2] == [("a1", 0), ("a1", 1)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["n_cases"] == 4
    spread = summary["spread"]["answer_correct"]
    assert spread["min"] <= summary["answer_correct"] <= spread["max"]


def test_resume_asks_again_a_case_that_changed(chain: Chain, case_file: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    calls = counting(chain, monkeypatch)
    runner.main(args(case_file, out), chain=chain)
    old_a1 = results(out)[0]
    reworded = {**{k: v for k, v in CASES[0].items() if k != "must_contain"},
                "question": "What is the capital of Australia?", "answer": None, "kind": "unanswerable"}
    write(case_file, [json.dumps(c) for c in [reworded, *CASES[1:]]])
    calls.clear()
    capsys.readouterr()
    runner.main(args(case_file, out), chain=chain)
    assert calls == [reworded["question"]]  # only the changed case is asked again
    err = capsys.readouterr().err
    assert "3 finished case runs" in err and "1 are run again because they changed (1 with a changed case" in err
    rows = {r["id"]: r for r in results(out)}
    assert len(rows) == 4 and rows["a1"]["question"] == reworded["question"] and rows["a1"]["reference"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_answerable"] == 2 and summary["n_unanswerable"] == 2
    assert [json.loads(line) for line in (out / "replaced.jsonl").read_text().splitlines()] == [old_a1]


def test_resume_asks_everything_again_when_the_settings_changed(chain: Chain, case_file: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    runner.main(args(case_file, out), chain=chain)
    narrower = Chain(chain.settings.model_copy(update={"top_k": 2}), chain.store, chain.backend)
    calls = counting(narrower, monkeypatch)
    capsys.readouterr()
    runner.main(args(case_file, out), chain=narrower)
    assert len(calls) == 4
    err = capsys.readouterr().err
    assert "0 finished case runs" in err and "4 are run again" in err and "top_k 4 -> 2" in err, err
    assert all(r["setup"]["top_k"] == 2 and len(r["contexts"]) <= 2 for r in results(out))
    assert json.loads((out / "run.json").read_text())["top_k"] == 2
    assert len((out / "replaced.jsonl").read_text().splitlines()) == 4
    calls.clear()
    runner.main(args(case_file, out), chain=narrower)  # same settings again: nothing to ask
    assert calls == []


def test_resume_keeps_records_when_only_settings_that_cannot_change_an_answer_differ(
        chain: Chain, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The question length limit, and the OpenAI model and URL while another backend answers, change no
    answer; a setting an older record has that the setup no longer lists is no difference either."""
    out = tmp_path / "run"
    runner.main(args(case_file, out), chain=chain)
    path = out / "results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert not {"max_question_chars", "openai_model", "openai_base_url"} & set(records[0]["setup"])
    for rec in records:  # as an earlier version wrote them
        rec["setup"] |= {"max_question_chars": 2000, "openai_model": "gpt-4o-mini"}
    path.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    other = Chain(chain.settings.model_copy(update={"max_question_chars": 500, "openai_model": "other",
                                                    "openai_base_url": "http://127.0.0.1:9/v1"}),
                  chain.store, chain.backend)
    calls = counting(other, monkeypatch)
    runner.main(args(case_file, out), chain=other)
    assert calls == [] and not (out / "replaced.jsonl").exists()


def test_a_second_run_into_the_same_folder_is_refused(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    """Two runs into one folder at once wrote most records twice."""
    out = tmp_path / "run"
    out.mkdir()
    with (out / ".lock").open("a") as held:  # what a running `rag eval` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError) as refused:
            runner.main(args(case_file, out), chain=chain)
        assert str(refused.value) == (f"another `rag eval` is writing to {out}: wait for it to end, or pick"
                                      " another --out")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    assert runner.main(args(case_file, out), chain=chain) == 0  # once it has ended
    assert len(results(out)) == 4


def test_a_failing_case_is_recorded_and_retried_on_resume(chain: Chain, case_file: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    fail = {"Serbia?"}
    calls = counting(chain, monkeypatch, fail)
    assert runner.main(args(case_file, out), chain=chain) == 1
    rows = {r["id"]: r for r in results(out)}
    assert len(rows) == 4 and rows["a2"]["error"] == "RuntimeError: backend exploded"
    assert rows["a1"]["error"] is None and rows["u1"]["error"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_errors"] == 1 and summary["n_cases"] == 4
    assert "backend exploded" in (out / "report.html").read_text()
    assert "| a2 | single | error | yes | error: RuntimeError: backend exploded |" in (out / "report.md").read_text()
    calls.clear()
    fail.clear()  # the backend works again: only the failed case is asked again
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert calls == [CASES[1]["question"]]
    assert len(results(out)) == 4 and all(r["error"] is None for r in results(out))


def test_resume_drops_a_line_cut_inside_a_character(chain: Chain, case_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=2), chain=chain)
    path = out / "results.jsonl"
    whole = path.read_bytes()
    cut = json.dumps({"id": "u1", "run": 0, "answer": "caf\u00e9 \u2028 ok", "error": None}, ensure_ascii=False)
    path.write_bytes(whole + cut.encode()[:cut.encode().index(b"\xc3") + 1])  # killed mid-character
    calls = counting(chain, monkeypatch)
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert sorted(calls) == sorted(c["question"] for c in CASES[2:])  # the two finished cases kept, u1 asked
    assert sorted(r["id"] for r in results(out)) == ["a1", "a2", "t1", "u1"]


def test_concurrency_and_baseline_deltas(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    runner.main(args(case_file, first, kind=["single"]), chain=chain)
    runner.main(args(case_file, second, concurrency=3, baseline=first), chain=chain)
    assert sorted(r["id"] for r in results(second)) == ["a1", "a2", "t1", "u1"]
    md = (second / "report.md").read_text()
    assert "| baseline | change |" in md and "pp" in md


def test_an_answerable_case_with_nothing_to_check_is_not_scored(chain: Chain, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Its reference answer is never compared, so any answer used to count as correct."""
    path = write(tmp_path / "cases.jsonl", [json.dumps(CASES[0]), json.dumps(
        {"id": "n1", "question": CASES[0]["question"], "answer": "a banana"})])
    out = tmp_path / "run"
    assert runner.main(args(path, out), chain=chain) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: {path}:2: case 'n1' has no must_contain or must_contain_any: answer_correct is not scored for it"]
    rows = {r["id"]: r for r in results(out)}
    assert rows["a1"]["metrics"]["answer_correct"] is True and rows["n1"]["metrics"]["answer_correct"] is None
    assert rows["n1"]["metrics"]["false_refusal"] is False
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answer_correct"] == 1.0 and summary["n_answerable"] == 2  # n1 is left out of the mean
    assert "| n1 | default | answered (not scored) |" in (out / "report.md").read_text()


@pytest.mark.parametrize(("kw", "message"), [
    ({"repeat": 0}, "--repeat must be at least 1, got 0"),  # was run once
    ({"concurrency": 0}, "--concurrency must be at least 1, got 0"),  # was run one at a time
    ({"repeat": -1}, "--repeat must be at least 1, got -1"),
    ({"limit": 0}, "--limit must be at least 1, got 0"),
    ({"repeat": 101}, "--repeat must be at most 100, got 101"),  # a huge one filled memory before any case ran
    ({"concurrency": 65}, "--concurrency must be at most 64, got 65"),
    ({"kind": ["nosuch", "single"]},  # was dropped without a word
     "--kind nosuch: no case in {cases} has this kind (kinds there: multi_turn, single, unanswerable)"),
])
def test_bad_run_arguments_are_refused_before_any_case_runs(chain: Chain, case_file: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any],
                                                            message: str) -> None:
    calls = counting(chain, monkeypatch)
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, tmp_path / "run", **kw), chain=chain)
    assert str(err.value) == message.format(cases=case_file)
    assert calls == [] and not (tmp_path / "run").exists()


SUMMARY = {key: 0.5 for key in HEADLINE}


@pytest.mark.parametrize(("baseline", "message"), [
    ({}, "{path} is not a summary.json (key 'answer_correct' is missing)"),
    ({"backend": "fake", "repeat": 1, "top_k": 4}, "{path} is not a summary.json (key 'answer_correct' is missing)"),
    ({**SUMMARY, "ttft_p50_s": None, "latency_p95_s": "fast"}, "{path}: key 'latency_p95_s' must be a number or null,"
     ' got "fast"'),
    ({**SUMMARY, "answer_correct": "high"}, '{path}: key \'answer_correct\' must be a number or null, got "high"'),
    ({**SUMMARY, "retrieval_mrr": True}, "{path}: key 'retrieval_mrr' must be a number or null, got true"),
    ({**SUMMARY, "answer_correct": 7.5},  # was compared as it was: "+6.5 vs baseline"
     "{path}: key 'answer_correct' must be a fraction from 0 to 1, or null, got 7.5"),
    ({**SUMMARY, "false_refusal": -1}, "{path}: key 'false_refusal' must be a fraction from 0 to 1, or null, got -1"),
    ({**SUMMARY, "latency_p50_s": -0.5}, "{path}: key 'latency_p50_s' must be 0 or more seconds, or null, got -0.5"),
])
def test_a_baseline_that_is_not_a_summary_is_refused_before_any_case_runs(
        chain: Chain, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline: dict[str, Any],
        message: str) -> None:
    """It used to give no comparison without a word ({} or a run.json), or crash in the report after every
    case ran ("high")."""
    path = tmp_path / "base.json"
    path.write_text(json.dumps(baseline))
    calls = counting(chain, monkeypatch)
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, tmp_path / "run", baseline=path), chain=chain)
    assert str(err.value) == "--baseline: " + message.format(path=path)
    assert calls == [] and not (tmp_path / "run").exists()


def test_a_baseline_with_nulls_is_compared(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text(json.dumps({**SUMMARY, "ttft_p50_s": None, "k": 4}))
    runner.main(args(case_file, tmp_path / "run", baseline=path), chain=chain)
    assert "| baseline | change |" in (tmp_path / "run" / "report.md").read_text()


def test_verify_off_chain_is_judged_by_the_eval(chain: Chain) -> None:
    bad = Answer(question="q", standalone_question="q", answer="Kosovo took 900 deportees [1].", abstained=False,
                 claims=(Claim(text="Kosovo took 900 deportees [1].", cited=(1,)),),
                 contexts=(ctx(1, "000_04e378fec4435f9b", P1),), timings={"total_s": 0.1})
    stub = SimpleNamespace(ask=lambda q, h=(): bad, judge=chain.judge,
                           settings=chain.settings.model_copy(update={"verify": "off"}))
    record = runner.evaluate_case(stub, case(must_contain=["900"]), 0, ["000_04e378fec4435f9b"])  # type: ignore[arg-type]
    assert record["claims"][0]["verdict"] == "unsupported" and record["metrics"]["claim_support"] == 0.0
    assert record["metrics"]["answer_correct"] is True and record["metrics"]["retrieval_rr"] == 1.0


def test_corpus_is_ingested_into_its_own_collection(fake_env: Path) -> None:
    corpus = write(fake_env / "docs.jsonl", [
        json.dumps({"doc_id": "d1", "text": "The Zorblat festival takes place every July in Quentin."}),
        json.dumps({"doc_id": "d2", "text": "Quentin is a small harbour town with 4,000 residents."}),
        json.dumps({"doc_id": "d3", "text": "Sign up for our daily newsletter."})])  # all boilerplate: skipped
    cases = write(fake_env / "cases.jsonl", [
        json.dumps({"id": "z1", "question": "When does the Zorblat festival take place?", "answer": "July",
                    "must_contain": ["July"], "sources": ["d1"]})])
    out = fake_env / "run"
    assert runner.main(args(cases, out, corpus=corpus)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answer_correct"] == 1.0 and summary["retrieval_mrr"] == 1.0
    name = corpus_collection(corpus)
    assert name.startswith("corpus_") and name != get_settings().collection and valid_collection(name)
    assert json.loads((out / "run.json").read_text())["collection"] == name
    settings = get_settings()
    assert [a.id for a in Store(settings.data_dir, name).articles()] == ["d1", "d2"]
    assert Store(settings.data_dir, settings.collection).articles() == []  # the project's collection untouched


def test_a_large_corpus_shows_its_progress(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A corpus of thousands of articles was embedded for minutes without a word."""
    from eval import corpus as eval_corpus
    from rag import ingest

    docs = write(fake_env / "docs.jsonl", [json.dumps({"doc_id": f"d{i}", "text": f"Town {i} has {i} harbours."})
                                           for i in range(5)])
    monkeypatch.setattr(ingest, "BATCH_ARTICLES", 1)
    monkeypatch.setattr(eval_corpus, "PROGRESS_EVERY", 2, raising=False)
    eval_corpus.ingest_corpus(docs, get_settings())
    shown = [line for line in capsys.readouterr().err.splitlines() if "embedded" in line]
    assert shown == [f"corpus {docs}: embedded {n}/5 articles" for n in (2, 4, 5)]
    small = write(fake_env / "small.jsonl", [json.dumps({"doc_id": "s1", "text": "Town s has one harbour."})])
    eval_corpus.ingest_corpus(small, get_settings())  # under PROGRESS_EVERY: quiet
    assert "embedded" not in capsys.readouterr().err


def test_a_failed_corpus_leaves_no_output_folder(fake_env: Path, case_file: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A --corpus that loaded nothing left an empty --out folder holding only its lock file."""
    corpus = write(fake_env / "docs.jsonl", [json.dumps({"doc_id": "d1", "text": "Sign up for our newsletter."})])
    out = fake_env / "new" / "run"
    with pytest.raises(InputError, match="no articles could be loaded from the corpus"):
        runner.main(args(case_file, out, corpus=corpus))
    assert not (fake_env / "new").exists()  # nor the parent folder it made
    assert not list((fake_env / "data").glob("corpus_*.sqlite"))  # nor an empty collection, listed in errors after
    client = Store(fake_env / "data", "articles")._client
    assert corpus_collection(corpus) not in [c.name for c in client.list_collections()]
    (fake_env / "kept").mkdir()  # a folder the user made stays, as it was
    with pytest.raises(InputError):
        runner.main(args(case_file, fake_env / "kept", corpus=corpus))
    assert (fake_env / "kept").is_dir()
    monkeypatch.setattr(Path, "rmdir", lambda self: (_ for _ in ()).throw(OSError(39, "Directory not empty")))
    with pytest.raises(InputError, match="no articles could be loaded"):  # not the clean-up's error
        runner.main(args(case_file, fake_env / "other", corpus=corpus))


def test_empty_collection_and_bad_arguments_are_clear_errors(fake_env: Path, case_file: Path) -> None:
    with pytest.raises(InputError, match=r"no articles in collection 'articles' .*rag ingest"):
        runner.main(args(case_file, fake_env / "run"))
    assert not (fake_env / "data").exists() and not (fake_env / "run").exists()  # no empty store made
    with pytest.raises(InputError, match="no case"):
        runner.main(args(case_file, fake_env / "run", kind=["nope"]))
    with pytest.raises(InputError, match="--baseline"):
        runner.main(args(case_file, fake_env / "run", baseline=fake_env / "missing"))


@pytest.mark.parametrize("path", ["docs.jsonl", ".", "..", "a b/c..d", "ünïcödé/x"])
def test_a_corpus_collection_name_is_always_valid(path: str) -> None:
    assert valid_collection(corpus_collection(Path(path)))


@pytest.mark.parametrize(("argv", "flag"), [
    (["eval", "--out", ""], "--out"), (["eval", "--out", "run", "--cases", ""], "--cases"),
    (["eval", "--out", "run", "--baseline", ""], "--baseline"), (["eval", "--out", "run", "--corpus", " "], "--corpus"),
])
def test_an_empty_path_is_an_error_not_the_current_folder(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], argv: list[str],
                                                          flag: str) -> None:
    """`rag eval --out ""` wrote the results into the current folder (and --corpus "" would ingest it)."""
    monkeypatch.chdir(fake_env)
    before = sorted(fake_env.iterdir())
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: argument {flag}: must not be empty (see: rag eval --help)\n"
    assert sorted(fake_env.iterdir()) == before


@pytest.mark.parametrize("command", ["eval", "eval-judge"])
def test_every_eval_flag_has_help(command: str) -> None:
    """`rag eval --help` listed --cases, --limit, --kind, --repeat, --baseline and --concurrency bare."""
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    bare = [a.option_strings[0] for a in commands.choices[command]._actions if a.option_strings and not a.help]
    assert bare == []


# ---- the judge eval ----------------------------------------------------------------------------
def test_cli_errors_that_are_not_ours_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    latin1 = tmp_path / "judge.jsonl"
    latin1.write_bytes('{"id": "j1", "claim": "Caf\u00e9", "passage": "x", "supported": true}\n'.encode("latin-1"))
    assert cli.main(["eval-judge", "--cases", str(latin1)]) == 2
    assert capsys.readouterr().err == f"error: {latin1}: judge cases are not UTF-8 text (byte 26)\n"

    def full_disk(args: argparse.Namespace) -> int:
        raise OSError(27, "File too large")

    monkeypatch.setattr(cli, "cmd_eval_judge", full_disk)
    assert cli.main(["eval-judge"]) == 1
    assert capsys.readouterr().err == "error: File too large\n"


def test_a_baseline_of_another_case_set_is_named(chain: Chain, case_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    for n_cases, warned in ((3000, True), (4, False)):
        base.write_text(json.dumps({**SUMMARY, "n_cases": n_cases}))
        runner.main(args(case_file, tmp_path / f"run{n_cases}", baseline=base), chain=chain)
        warning = f"warning: --baseline {base} ran 3000 cases and this run has 4: its numbers are of another case set"
        assert (warning in capsys.readouterr().err) is warned


def test_a_folder_that_is_no_run_folder_is_not_written_into(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "report.md").write_text("my own report")
    with pytest.raises(InputError, match=r"^--out .*notes holds other files and no results\.jsonl"):
        runner.main(args(case_file, mine), chain=chain)
    assert [p.name for p in mine.iterdir()] == ["report.md"] and (mine / "report.md").read_text() == "my own report"
    assert runner.main(args(case_file, tmp_path / "run"), chain=chain) == 0  # a run folder is resumed
    assert runner.main(args(case_file, tmp_path / "run"), chain=chain) == 0


def test_the_case_table_keeps_one_row_per_case() -> None:
    from eval.report import case_lines
    rows = case_lines([{"id": "a|b", "kind": "single\nx", "run": 0, "answer": "yes | no", "error": None,
                        "metrics": {"answer_correct": True}}])
    assert rows[-1] == "| a\\|b | single x | right | yes | yes \\| no |"


def test_judge_scores_treat_unsupported_as_positive() -> None:
    s = judge_eval.scores([True, True, False, False], [True, False, True, False])
    assert (s.tp, s.fn, s.fp, s.tn) == (1, 1, 1, 1) and s.precision == 0.5 and s.balanced_accuracy == 0.5
    assert judge_eval.auroc([0.9, 0.8, 0.1, 0.8], [True, True, False, False]) == pytest.approx(0.875)
    assert judge_eval.auroc([0.5], [True]) is None


def test_judge_eval_with_and_without_an_llm(fake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = PROJECT_ROOT / "eval" / "judge_cases.jsonl"
    cases = judge_eval.load_judge_cases(path)
    truth = {(c.claim, c.passage): c.supported for c in cases}
    flipped = cases[0]

    def p_yes(claim: str, passage: str) -> float:  # right on all but one pair
        ok = truth[(claim, passage)]
        return 0.05 if (claim, passage) == (flipped.claim, flipped.passage) else (0.8 if ok else 0.1)

    result = judge_eval.evaluate(cases, p_yes, 0.5)
    assert result["systems"]["model"]["accuracy"] == pytest.approx(1 - 1 / len(cases))
    n_pos, n_neg = result["n_unsupported"], result["n_supported"]
    assert flipped.supported and result["auroc_model"] == pytest.approx(1 - n_pos / (n_pos * n_neg))
    assert result["sweep"] and result["best_threshold_by_balanced_accuracy"]["model"] == 0.5
    assert result["wrong"]["model"] == [flipped.id]
    out = fake_env / "runs" / "j"  # a folder, as for rag eval --out
    assert judge_eval.main(argparse.Namespace(cases=path, out=out)) == 0
    saved = json.loads((out / "judge.json").read_text())
    assert saved["llm_available"] is False and saved["systems"]["model"] is None
    assert saved["systems"]["rules"]["n"] == len(cases) and saved["auroc_model"] is None
    assert "positive class = unsupported" in capsys.readouterr().out



def test_judge_eval_out_is_a_folder(fake_env: Path) -> None:
    path = PROJECT_ROOT / "eval" / "judge_cases.jsonl"
    (fake_env / "a-file").write_text("keep me")
    for out in (fake_env / "judge.json", fake_env / "a-file"):
        with pytest.raises(InputError, match=f"--out {out}: give a folder"):
            judge_eval.main(argparse.Namespace(cases=path, out=out))
    assert (fake_env / "a-file").read_text() == "keep me" and not (fake_env / "judge.json").exists()


def test_a_second_run_is_refused_before_the_model_loads(fake_env: Path, case_file: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock was taken after the model had loaded (and a --corpus had been ingested)."""
    loaded: list[str] = []
    monkeypatch.setattr(runner, "require_articles", lambda *a: None)  # as if the store had articles
    monkeypatch.setattr(runner, "ingest_corpus", lambda *a: loaded.append("corpus"))
    monkeypatch.setattr(Chain, "from_settings", classmethod(lambda cls, *a, **k: loaded.append("model")))
    out = fake_env / "run"
    out.mkdir()
    with (out / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for corpus in (None, case_file):
            with pytest.raises(InputError, match="another `rag eval` is writing to"):
                runner.main(args(case_file, out, corpus=corpus))
    assert loaded == []


def test_headline_says_better_or_worse_only_for_a_real_change() -> None:
    """A mean over three runs (0.9392361111111112) against one run (0.939236111111111) said "(better)"."""
    base = {"n_cases": 2, "n_answerable": 2, "n_unanswerable": 0, "runs": 1, "retrieval_mrr": 0.939236111111111,
            "false_refusal": 0.104, "latency_p50_s": 12.0}
    now = {**base, "retrieval_mrr": 0.9392361111111112, "false_refusal": 0.083, "latency_p50_s": 16.8}
    lines = {line.split()[0]: line for line in runner.headline(now, base).splitlines()[1:]}
    assert lines["retrieval_mrr"].endswith("+0.000 vs baseline")
    assert lines["false_refusal"].endswith("(better)") and lines["latency_p50_s"].endswith("(worse)")
