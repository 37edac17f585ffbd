"""The results file of ``rag eval`` and what a resumed run may keep from it.

A finished record is kept only while its case and the answer-shaping setup are what they are now:
each record carries ``case_fingerprint`` (a hash of the case as written) and ``setup`` (the settings
that shape answers, the backend's model and a hash of the collection's articles). A record whose case
or setup changed is asked again; the old record is moved to ``replaced.jsonl`` rather than deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.cases import Case
from eval.log import log
from eval.records import record_problem
from rag.errors import InputError
from rag.jsonl import json_lines, write_atomic

if TYPE_CHECKING:
    from rag.chain import Chain

__all__ = ["BAD_LINES", "REPLACED", "RESULTS", "Appender", "case_fingerprint", "load_results", "only_writer",
           "set_aside", "setup", "split_changed", "write_records"]

REPLACED = "replaced.jsonl"
BAD_LINES = "bad_lines.jsonl"  # lines of results.jsonl that are no records, as they were
RECORD_KEYS = ("id", "question", "metrics", "error")  # every record of a run has them
RESULTS = "results.jsonl"  # one record per (case, run) of a run folder
Key = tuple[str, int]
Record = dict[str, Any]
# Settings that do not change an answer: where things are stored, secrets, timeouts, threads, input and UI
# limits (a case over max_question_chars is refused when the cases are loaded). chunk_* and the embedding
# model are in every article's fingerprint, so the "corpus" hash covers them.
NOT_ANSWER_SHAPING = frozenset({"data_dir", "collection", "chroma_url", "openai_api_key", "openai_timeout_s",
                                "model_cache_dir", "n_threads", "max_file_bytes", "max_question_chars", "ui_auth",
                                "ui_queue_size", "chunk_tokens", "chunk_overlap_sentences"})
OPENAI_ONLY = frozenset({"openai_base_url", "openai_model"})  # unused unless RAG_LLM=openai


@contextmanager
def only_writer(out: Path) -> Iterator[None]:
    """Make ``out`` and hold it for one ``rag eval`` at a time: a second run into it is refused in one line.
    If the run fails while the folder holds nothing but its lock, the folders this run made are removed."""
    made = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    if out.is_dir() and (why := _not_a_run_folder(out)):
        raise InputError(f"--out {out} {why}, so it is no run folder: its report.md and summary.json would be"
                         " overwritten; pick a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror}") from None
    lock = out / ".lock"
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another `rag eval` is writing to {out}: wait for it to end, or pick another --out"
                             ) from None
        try:
            yield  # the lock goes with the file handle
        except BaseException:
            if made and [p.name for p in out.iterdir()] == [lock.name]:
                with suppress(OSError):  # the run's own error is the one to report
                    lock.unlink()
                    for folder in made:
                        folder.rmdir()  # only while empty
            raise


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def case_fingerprint(case: Case) -> str:
    """A hash of everything in the case line (question, history, answer, must_contain*, sources, kind)."""
    return _hash(case.model_dump(mode="json", exclude={"where"}))


def setup(chain: Chain) -> dict[str, Any]:
    """What shapes the answers: settings (but not paths, secrets or limits), backend, model, articles."""
    unused = NOT_ANSWER_SHAPING | (OPENAI_ONLY if chain.settings.llm != "openai" else frozenset())
    fields = chain.settings.model_dump(mode="json", exclude=set(unused))
    corpus = _hash(sorted((a.id, a.fingerprint) for a in chain.store.articles()))
    out = {**fields, "backend": chain.backend.name, "model": chain.backend.model, "corpus": corpus}
    return dict(json.loads(json.dumps(out)))  # as it reads back from results.jsonl


def split_changed(done: Mapping[Key, Record], prints: Mapping[str, str], now: Mapping[str, Any], runs: int = 1
                  ) -> tuple[dict[Key, Record], dict[Key, Record], str]:
    """(kept, changed, why) for the finished records of the cases in ``prints`` (case id -> its
    ``case_fingerprint``) in runs ``0..runs-1``; ``why`` says what changed, e.g. "1 with a changed case,
    4 made with other settings: top_k 4 -> 2". Records of other cases or runs are kept as they are (they
    are checked when they are asked for)."""
    kept: dict[Key, Record] = {}
    changed: dict[Key, Record] = {}
    n_case = n_setup = 0
    diffs: set[str] = set()
    for key, rec in done.items():
        if key[0] not in prints or key[1] >= runs:
            kept[key] = rec
        elif "setup" in rec and rec.get("case_fingerprint") != prints[key[0]]:
            changed[key], n_case = rec, n_case + 1
        elif _differences(rec.get("setup"), now):
            changed[key], n_setup = rec, n_setup + 1
            diffs.update(_differences(rec.get("setup"), now))
        else:
            kept[key] = rec
    why = [f"{n_case} with a changed case"] if n_case else []
    if n_setup:
        why.append(f"{n_setup} made with other settings: {', '.join(sorted(diffs))}")
    return kept, changed, ", ".join(why)


def _differences(old: Any, now: Mapping[str, Any]) -> list[str]:
    """What differs between a record's setup and ``now``; a setting ``now`` leaves out (one found not to
    change answers since the record was written) is no difference."""
    if not isinstance(old, dict):  # written before runs recorded their case and setup
        return ["not recorded (an older run)"]
    keys = sorted(k for k in now if old.get(k) != now[k])
    return [("articles changed" if k == "corpus" else f"{k} {old.get(k)} -> {now.get(k)}") for k in keys]


def _not_a_run_folder(out: Path) -> str | None:
    """Why ``out`` is no folder of ``rag eval`` runs (None when it is one, or empty)."""
    if not (out / RESULTS).exists():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            return f"holds other files and no {RESULTS}"
        return None
    _, _, bad, ours = _read(out / RESULTS)
    if bad and not ours:
        lineno, _, problem = bad[0]
        return f"holds a {RESULTS} with no record of rag eval in it ({out / RESULTS}:{lineno}: {problem})"
    return None


def _parse(line: str) -> tuple[Record | None, str]:
    """(the record on a line of results.jsonl, what is wrong with it or ""); (None, what is wrong) when the
    line is no record of rag eval at all."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg.removesuffix(' at')})"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    if missing := [key for key in RECORD_KEYS if key not in rec]:
        return None, f"not a record of rag eval (no {', '.join(repr(k) for k in missing)})"
    return rec, record_problem(rec) or ""  # one edited by hand broke the summary with a traceback


def _read(path: Path) -> tuple[str, list[Record], list[tuple[int, str, str]], bool]:
    """(the file's text, its records, its bad lines as (line number, line, what is wrong), whether any
    line is a record of rag eval, whole or not).

    A run killed mid-write leaves its last line cut short (perhaps inside a character) and without its
    line break: that line is no bad line; it is dropped, as a record with an error is."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = json_lines(text)  # the last is "" when the text ends with a line break
    found: list[Record] = []
    bad: list[tuple[int, str, str]] = []
    ours = False
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec, problem = _parse(line)
        ours = ours or rec is not None
        if rec is not None and not problem:
            found.append(rec)
        elif lineno < len(lines) or not problem.startswith("invalid JSON"):  # else: cut short
            bad.append((lineno, line, problem))
    return text, found, bad, ours


def load_results(path: Path) -> dict[Key, Record]:
    """Finished records by (case id, run). Records with an error, and a last line cut short, are dropped
    from the file so those cases run again. Any other line that is no record, or no whole one (a field of
    the wrong type or missing), is moved to BAD_LINES beside it, with a warning naming the line. The file
    is left as one record a line, each ending in a line break, so the next record appended starts a line
    of its own."""
    if not path.is_file():
        return {}
    text, found, bad, _ = _read(path)
    done = {(str(rec["id"]), int(rec.get("run", 0))): rec for rec in found if not rec.get("error")}
    if bad:
        _keep_aside(path.parent / BAD_LINES, [line for _, line, _ in bad])  # before they leave the results
        for lineno, _, problem in bad[:3]:
            log(f"warning: {path}:{lineno}: {problem}; moved to {path.parent / BAD_LINES}")
        if len(bad) > 3:
            log(f"warning: {path}: {len(bad) - 3} more lines that are no records moved to {path.parent / BAD_LINES}")
    if _lines(done.values()) != text:
        write_records(path, done.values())
    return done


def _keep_aside(aside: Path, lines: list[str]) -> None:
    """Append to ``aside`` the lines it does not hold yet: when the results file could not be rewritten
    after them, the next run finds them there again, and they were appended twice."""
    there = set(json_lines(aside.read_text(encoding="utf-8", errors="replace"))) if aside.is_file() else set()
    with aside.open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines if line not in there)


def set_aside(path: Path, kept: Mapping[Key, Record], changed: Mapping[Key, Record]) -> None:
    """Leave only ``kept`` in ``path``; append ``changed`` to REPLACED beside it first (a crash in
    between leaves a record in both files, never in neither, and the next run does not append it again)."""
    if not changed:
        return
    _keep_aside(path.parent / REPLACED, [json.dumps(r, ensure_ascii=False) for r in changed.values()])
    write_records(path, kept.values())


def _lines(records: Iterable[Record]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_records(path: Path, records: Iterable[Record]) -> None:
    write_atomic(path, _lines(records))


class Appender:
    """Appends one JSON line per record and flushes it at once (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: Record) -> None:
        with self._lock:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
