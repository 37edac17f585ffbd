"""The files of ``rag eval`` and ``rag eval-judge``: a baseline, a run folder's results.jsonl, the reports,
and what is written when."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import pytest

from eval import judge as judge_eval
from eval import report, resume, runner
from rag import cli
from rag.chain import Chain
from rag.errors import InputError
from rag.settings import PROJECT_ROOT
from tests.test_eval import CASES, SUMMARY, args, counting, results, write


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    return write(tmp_path / "cases.jsonl", [json.dumps(c) for c in CASES])


# ---- case files ------------------------------------------------------------------------------------
FIRST_LINE = {"eval": '{"id": "q0", "question": "Why?", "answer": null}',
              "eval-judge": '{"id": "j0", "claim": "It rained.", "passage": "It rained.", "supported": true}'}


@pytest.mark.parametrize(("command", "line", "key"), [
    ("eval", '{"id": "q1", "question": "Who?", "question": "How many?", "answer": "50"}', "question"),
    ("eval-judge", '{"id": "j1", "claim": "50 came.", "passage": "50 came.", "supported": false, "supported": true}',
     "supported"),
    ("eval", '{"id": "q1", "question": "Who?", "answer": null, "a\\nb": 1, "a\\nb": 2}', "a\\nb"),
], ids=["case", "judge-case", "line-break-in-key"])
def test_a_key_given_twice_is_one_line_naming_file_line_and_key(fake_env: Path, capsys: pytest.CaptureFixture[str],
                                                                command: str, line: str, key: str) -> None:
    """json.loads kept the last of the two without a word."""
    path = write(fake_env / "cases.jsonl", [FIRST_LINE[command], line])
    assert cli.main([command, "--cases", str(path), "--out", str(fake_env / "run")]) == 2
    assert capsys.readouterr().err == f"error: {path}:2: field '{key}' is given twice (only the last would count)\n"
    assert not (fake_env / "run").exists()


# ---- --baseline ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "byte"), [(b"\xff\xfe{\x00}\x00", 0), ('{"k": "\u00e9"}'.encode("utf-16"), 0),
                                            ('{"answer_correct": "caf\u00e9"}'.encode("latin-1"), 23)],
                         ids=["bytes", "utf-16", "latin-1"])
def test_a_baseline_that_is_not_utf8_is_one_line(chain: Chain, case_file: Path, tmp_path: Path, data: bytes,
                                                 byte: int) -> None:
    """It was a UnicodeDecodeError traceback."""
    path = tmp_path / "base.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, tmp_path / "run", baseline=path), chain=chain)
    assert str(err.value) == f"--baseline: {path} is not UTF-8 text (byte {byte})"
    assert not (tmp_path / "run").exists()


def test_a_baseline_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text(json.dumps(SUMMARY), encoding="utf-8-sig")
    assert runner.load_baseline(path) == SUMMARY


# ---- a run folder's results.jsonl ------------------------------------------------------------
@pytest.mark.parametrize(("where", "line", "problem"), [
    (1, '{"id": "x", garbage', "invalid JSON (Expecting property name enclosed in double quotes)"),
    (3, "[1, 2]", "not a JSON object"),
    (4, '{"question": "Who?", "prediction": "Ann"}', "not a record of rag eval (no 'id', 'metrics', 'error')"),
    (5, '{"note": "a last line, whole, without its line break"}', "not a record of rag eval"),
], ids=["invalid", "array", "other-tool", "last-unterminated"])
def test_resume_keeps_a_line_that_is_no_record_and_names_it(chain: Chain, case_file: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], where: int,
                                                            line: str, problem: str) -> None:
    """Such a line was deleted from the file without a word, wherever it was."""
    out = tmp_path / "run"
    runner.main(args(case_file, out), chain=chain)
    path = out / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(where - 1, line + ("\n" if where <= len(lines) else ""))
    path.write_text("".join(lines))
    calls = counting(chain, monkeypatch)
    capsys.readouterr()
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert calls == []  # the four records are kept
    assert f"warning: {path}:{where}: {problem}" in capsys.readouterr().err
    assert (out / "bad_lines.jsonl").read_text() == line + "\n"
    assert sorted(r["id"] for r in results(out)) == ["a1", "a2", "t1", "u1"]


@pytest.mark.parametrize(("edit", "problem"), [
    ({"answer": 5}, "field 'answer' must be a valid string, got 5"),
    ({"citations": "x"}, "field 'citations' must be a valid list, got \"x\""),
    ({"kind": None}, "field 'kind' must be a valid string, got null"),
    ({"timings": "fast"}, "field 'timings' must be a valid dictionary, got \"fast\""),
    ({"claims": [{"text": "50 [1]."}]}, "field 'claims.0.verdict' is missing"),
    ({"history": [["only one"]]}, "field 'history.0' list should have at least 2 items"),
    ({"metrics": {"answer_correct": True}}, "field 'metrics.correct_refusal' is missing"),
    ({"run": "0"}, "field 'run' must be a valid integer, got \"0\""),
    ({"kind": ...}, "field 'kind' is missing"),
    ({"timings": ...}, "field 'timings' is missing"),
], ids=["answer", "citations", "kind", "timings", "claim", "history", "metrics", "run", "no-kind", "no-timings"])
def test_resume_moves_aside_a_record_edited_into_the_wrong_shape(chain: Chain, case_file: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 edit: dict[str, object], problem: str) -> None:
    """Such a record ended the resumed run in a traceback (a KeyError, a TypeError) after every case ran."""
    out = tmp_path / "run"
    runner.main(args(case_file, out), chain=chain)
    path = out / "results.jsonl"
    first, *rest = path.read_text().splitlines(keepends=True)
    record = {k: v for k, v in {**json.loads(first), **edit}.items() if v is not ...}
    garbled = json.dumps(record)
    path.write_text(garbled + "\n" + "".join(rest))
    calls = counting(chain, monkeypatch)
    capsys.readouterr()
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert calls == [CASES[0]["question"]]  # its case is asked again
    assert f"warning: {path}:1: {problem}" in capsys.readouterr().err
    assert (out / "bad_lines.jsonl").read_text() == garbled + "\n"
    assert sorted(r["id"] for r in results(out)) == ["a1", "a2", "t1", "u1"]


def test_a_run_folder_whose_only_record_is_edited_wrong_is_resumed(chain: Chain, case_file: Path,
                                                                   tmp_path: Path) -> None:
    """It is a run folder still (a record of rag eval, not another tool's file): the record is moved aside."""
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=1), chain=chain)
    path = out / "results.jsonl"
    garbled = json.dumps({**json.loads(path.read_text()), "citations": "x"})
    path.write_text(garbled + "\n")
    assert runner.main(args(case_file, out, limit=1), chain=chain) == 0
    assert (out / "bad_lines.jsonl").read_text() == garbled + "\n" and [r["id"] for r in results(out)] == ["a1"]


def test_a_bad_line_is_kept_aside_once_when_the_results_file_could_not_be_rewritten(
        chain: Chain, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bad_lines.jsonl was appended before results.jsonl was rewritten: a failed rewrite left the line in
    both, and the next run appended it again."""
    out = tmp_path / "run"
    runner.main(args(case_file, out), chain=chain)
    path = out / "results.jsonl"
    path.write_text("[1, 2]\n" + path.read_text())

    def full_disk(*a: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(resume, "write_records", full_disk)
        with pytest.raises(OSError):
            runner.main(args(case_file, out), chain=chain)
    assert path.read_text().startswith("[1, 2]\n")  # the rewrite failed: the line is in both files
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert (out / "bad_lines.jsonl").read_text() == "[1, 2]\n"
    assert not path.read_text().startswith("[1, 2]")


def test_a_replaced_record_is_kept_aside_once_when_the_results_file_could_not_be_rewritten(
        chain: Chain, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=1), chain=chain)
    old = (out / "results.jsonl").read_text()
    write(case_file, [json.dumps({**CASES[0], "must_contain": ["fifty"]}), *map(json.dumps, CASES[1:])])

    def full_disk(*a: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(resume, "write_records", full_disk)
        with pytest.raises(OSError):
            runner.main(args(case_file, out, limit=1), chain=chain)
    assert (out / "results.jsonl").read_text() == old == (out / "replaced.jsonl").read_text()  # in both
    assert runner.main(args(case_file, out, limit=1), chain=chain) == 0
    assert (out / "replaced.jsonl").read_text() == old  # once


def test_a_results_file_of_another_tool_is_no_run_folder(chain: Chain, case_file: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of it was deleted, and its report.md overwritten."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    lines = '{"question": "Who?", "prediction": "Ann"}\n{"question": "When?", "prediction": "2008"}'
    (theirs / "results.jsonl").write_text(lines)  # the last line without its line break: whole, not cut short
    (theirs / "report.md").write_text("their report")
    calls = counting(chain, monkeypatch)
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, theirs), chain=chain)
    assert str(err.value) == (
        f"--out {theirs} holds a results.jsonl with no record of rag eval in it ({theirs}/results.jsonl:1: not a"
        " record of rag eval (no 'id', 'metrics', 'error')), so it is no run folder: its report.md and"
        " summary.json would be overwritten; pick a new or empty folder")
    assert calls == [] and sorted(p.name for p in theirs.iterdir()) == ["report.md", "results.jsonl"]
    assert (theirs / "results.jsonl").read_text() == lines and (theirs / "report.md").read_text() == "their report"


def test_a_run_folder_cut_short_in_its_first_record_is_resumed(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "a1", "run": 0, "kind": "sin')  # killed in the first write
    assert runner.main(args(case_file, out), chain=chain) == 0
    assert sorted(r["id"] for r in results(out)) == ["a1", "a2", "t1", "u1"] and not (out / "bad_lines.jsonl").exists()


def test_a_results_file_without_its_last_line_break_is_appended_to_on_a_new_line(
        chain: Chain, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next record was appended on the same line, and the run after that dropped both."""
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=2), chain=chain)
    path = out / "results.jsonl"
    path.write_text(path.read_text().removesuffix("\n"))  # a whole record, its line break lost
    calls = counting(chain, monkeypatch)
    runner.main(args(case_file, out, limit=3), chain=chain)
    assert calls == [CASES[2]["question"]]
    assert [r["id"] for r in results(out)] == ["a1", "a2", "u1"] and path.read_text().endswith("}\n")
    runner.main(args(case_file, out, limit=3), chain=chain)
    assert len(calls) == 1  # nothing asked again


# ---- summary.json and the reports -------------------------------------------------------------
def n_cases(out: Path) -> int:
    return int(json.loads((out / "summary.json").read_text())["n_cases"])


def test_summary_json_is_written_after_the_reports(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    """summary.json was written first: a report that could not be written left it new and the reports old."""
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=2), chain=chain)
    (out / "report.md").unlink()
    (out / "report.md").mkdir()  # cannot be written
    with pytest.raises(OSError) as err:
        runner.main(args(case_file, out), chain=chain)
    assert err.value.filename == str(out / "report.md")
    assert n_cases(out) == 2


def test_no_report_is_written_until_both_are_made(chain: Chain, case_file: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=2), chain=chain)
    before = {name: (out / name).read_text() for name in ("report.html", "report.md", "summary.json", "run.json")}

    def broken(*a: object) -> str:
        raise RuntimeError("cannot render")

    monkeypatch.setattr(report, "render_markdown", broken)
    with pytest.raises(RuntimeError):
        runner.main(args(case_file, out), chain=chain)
    assert {name: (out / name).read_text() for name in before} == before


def test_a_summary_json_that_is_a_folder_is_named(chain: Chain, case_file: Path, tmp_path: Path) -> None:
    """The error named the temp file: `.summary.json.<hex>.tmp: Is a directory`."""
    out = tmp_path / "run"
    runner.main(args(case_file, out, limit=2), chain=chain)
    (out / "summary.json").unlink()
    (out / "summary.json").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        runner.main(args(case_file, out), chain=chain)
    assert (err.value.filename, err.value.strerror) == (str(out / "summary.json"), "Is a directory")
    assert not list(out.glob(".*.tmp"))


# ---- --corpus ------------------------------------------------------------------------------------
@pytest.mark.parametrize("inside", ["run", ".", "sub/../run"])
def test_an_out_inside_the_corpus_is_refused(fake_env: Path, case_file: Path, inside: str) -> None:
    """The run's own report.md and results.jsonl were read as articles by the next run."""
    corpus = fake_env / "news"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The Zorblat festival takes place every July in Quentin.")
    out = corpus / inside
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, out, corpus=corpus))
    assert str(err.value) == (f"--out {out} is inside --corpus {corpus}: the next run would read its reports and"
                              " results as articles; pick an --out outside the corpus")
    assert [p.name for p in corpus.iterdir()] == ["a.txt"] and not (fake_env / "data").exists()


# ---- rag eval-judge --out ------------------------------------------------------------------------
def test_judge_out_is_checked_before_any_pair_is_judged(fake_env: Path) -> None:
    """--out was made and checked only after every pair was judged (minutes with the real model)."""
    judged: list[str] = []

    def p_yes(claim: str, passage: str) -> float:
        judged.append(claim)
        return 0.5

    path = PROJECT_ROOT / "eval" / "judge_cases.jsonl"
    (fake_env / "a-file").write_text("keep me")
    (fake_env / "run" / "judge.json").mkdir(parents=True)
    for out, message in ((fake_env / "a-file" / "sub", f"cannot create output folder {fake_env}/a-file/sub: Not a"
                                                       " directory"),
                         (fake_env / "run", f"--out {fake_env}/run: {fake_env}/run/judge.json is a folder, so"
                                            " judge.json cannot be written")):
        with pytest.raises(InputError) as err:
            judge_eval.main(argparse.Namespace(cases=path, out=out), p_yes=p_yes)
        assert str(err.value) == message
    assert judged == [] and (fake_env / "a-file").read_text() == "keep me"
    assert judge_eval.main(argparse.Namespace(cases=path, out=fake_env / "new" / "j"), p_yes=p_yes) == 0
    assert json.loads((fake_env / "new" / "j" / "judge.json").read_text())["llm_available"] is True
    assert [p.name for p in (fake_env / "new" / "j").iterdir()] == ["judge.json"]  # no temp file left


def _read_only_folder(tmp: Path) -> Path:
    """A folder no file can be made in: one without write permission; as root (whom that does not stop),
    sysfs, where nobody can make a file."""
    if os.geteuid() != 0:
        folder = tmp / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    folder = Path("/sys/kernel")
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    pytest.skip(f"no folder here that root cannot write in ({folder} can be written)")


def test_judge_out_in_a_folder_that_cannot_be_written_is_refused_before_any_pair_is_judged(fake_env: Path) -> None:
    """A read-only --out failed only after every pair was judged (minutes with the real model)."""
    judged: list[str] = []

    def p_yes(claim: str, passage: str) -> float:
        judged.append(claim)
        return 0.5

    folder = _read_only_folder(fake_env)
    with pytest.raises(InputError, match=re.escape(f"--out {folder}: cannot write in this folder (")):
        judge_eval.main(argparse.Namespace(cases=PROJECT_ROOT / "eval" / "judge_cases.jsonl", out=folder), p_yes=p_yes)
    assert judged == []


def test_the_kind_table_keeps_one_row_and_its_columns_per_kind() -> None:
    """A kind with "|" added a column, and one with a line break split its row."""
    summary = {"n_cases": 2, "n_answerable": 2, "n_unanswerable": 0, "runs": 1, "k": 4,
               "by_kind": {"a|b": {"n": 1}, "multi\nturn": {"n": 1}}}
    md = report.render_markdown(summary)
    rows = md.split("## By kind")[1].strip().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| a\\|b", "| multi turn"]
    assert all(len(re.findall(r"(?<!\\)\|", row)) == len(report.KIND_COLUMNS) + 2 for row in rows)


# ---- messages ----------------------------------------------------------------------------------
def test_eval_prints_its_message_lines_in_one_place() -> None:
    """runner.py and corpus.py each had a `_log` and resume.py a `_warn`: three copies of one printer."""
    printers = sorted(p.name for p in (PROJECT_ROOT / "eval").glob("*.py")
                      if re.search(r"print\(.*file=sys\.stderr", p.read_text(encoding="utf-8")))
    assert printers == ["log.py"]
