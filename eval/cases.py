"""Eval cases: load and validate the JSON Lines case file, resolve sources to article ids.

A malformed line raises :class:`rag.errors.InputError` naming the file, the line and the field,
e.g. ``eval/cases.jsonl:7: field 'question' is missing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rag.errors import InputError
from rag.jsonl import LONE_SURROGATE, json_objects

__all__ = ["Case", "load_cases", "resolve_sources", "select_cases"]

FIELDS = ("id", "question", "history", "answer", "must_contain", "must_contain_any", "sources", "kind")
DEFAULT_KIND = "default"


class Case(BaseModel):
    """One eval case. ``answer is None`` means the articles do not answer it (it should abstain)."""

    model_config = ConfigDict(frozen=True)

    id: str
    question: str
    history: tuple[tuple[str, str], ...] = ()
    answer: str | None = None
    must_contain: tuple[str, ...] = ()
    must_contain_any: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    kind: str = DEFAULT_KIND
    where: str = ""  # "file:line", for messages

    @property
    def answerable(self) -> bool:
        return self.answer is not None

    @property
    def checkable(self) -> bool:
        """An answerable case with something to check its answer for (``must_contain*``)."""
        return self.answerable and bool(self.must_contain or self.must_contain_any)


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{where}: field '{name}' must be a list of non-empty strings")
    return tuple(value)


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in a string or in lists of strings, as its escape ("\\ud83d")."""
    if isinstance(value, str):
        found = LONE_SURROGATE.search(value)
        return f"\\u{ord(found.group()):04x}" if found else None
    if isinstance(value, list):
        return next((s for v in value if (s := _lone_surrogate(v))), None)
    return None


def _history(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    turns = value if isinstance(value, list) else None
    if turns is None or not all(isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t)
                                for t in turns):
        raise InputError(f"{where}: field 'history' must be a list of [question, answer] pairs of strings")
    return tuple((str(q), str(a)) for q, a in turns)


def parse_case(rec: Any, where: str, max_question_chars: int | None = None) -> Case:
    """Validate one decoded JSON line (and the question's length, when a limit is given)."""
    if not isinstance(rec, dict):
        raise InputError(f"{where}: expected a JSON object")
    unknown = sorted(k for k in rec if k not in FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown field '{unknown[0]}' (known: {', '.join(FIELDS)})")
    for name, value in rec.items():
        if half := _lone_surrogate(value):
            raise InputError(f"{where}: field '{name}' holds a lone surrogate {half} (half of a character such as an"
                             " emoji); write the whole character")
    for name in ("id", "question"):
        if name not in rec:
            raise InputError(f"{where}: field '{name}' is missing")
        if not isinstance(rec[name], str) or not rec[name].strip():
            raise InputError(f"{where}: field '{name}' must be a non-empty string")
    length = len(rec["question"].strip())
    if max_question_chars is not None and length > max_question_chars:
        raise InputError(f"{where}: field 'question' is {length} characters, over the {max_question_chars}-character"
                         " limit (RAG_MAX_QUESTION_CHARS)")
    if "answer" not in rec:
        raise InputError(f"{where}: field 'answer' is missing (use null when the articles do not answer it)")
    if rec["answer"] is not None and not isinstance(rec["answer"], str):
        raise InputError(f"{where}: field 'answer' must be a string or null")
    if rec["answer"] is not None and not rec["answer"].strip():  # it was scored as answerable
        raise InputError(f"{where}: field 'answer' is empty (use null when the articles do not answer it)")
    kind = rec.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str) or not kind.strip():
        raise InputError(f"{where}: field 'kind' must be a non-empty string")
    must_contain, must_contain_any = (_must(rec, where, name) for name in ("must_contain", "must_contain_any"))
    return Case(id=rec["id"].strip(), question=rec["question"], history=_history(rec.get("history"), where),
                answer=rec["answer"], must_contain=must_contain, must_contain_any=must_contain_any,
                sources=_strings(rec.get("sources"), where, "sources"), kind=kind.strip(), where=where)


def _must(rec: dict[str, Any], where: str, name: str) -> tuple[str, ...]:
    """``must_contain`` or ``must_contain_any``: only for an answerable case (it was scored as unanswerable)."""
    strings = _strings(rec.get(name), where, name)
    if strings and rec["answer"] is None:
        raise InputError(f"{where}: field '{name}' is given but 'answer' is null (unanswerable, so there is no answer"
                         f" to check): give the reference answer, or drop '{name}'")
    return strings


def load_cases(path: Path, max_question_chars: int | None = None) -> list[Case]:
    """Every case in ``path``; blank lines are skipped; ids must be unique; questions longer than
    ``max_question_chars`` (the chain's limit) are refused here, with their file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such case file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read case file ({exc})") from None
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for lineno, rec in json_objects(path, text, column=True, unique_keys=True):
        where = f"{path}:{lineno}"
        case = parse_case(rec, where, max_question_chars)
        if case.id in seen:
            raise InputError(f"{where}: field 'id' repeats '{case.id}' (first at {seen[case.id]})")
        seen[case.id] = where
        cases.append(case)
    if not cases:
        raise InputError(f"{path}: no cases in file")
    return cases


def select_cases(cases: Sequence[Case], kinds: Iterable[str] | None = None, limit: int | None = None) -> list[Case]:
    """Cases of the given kinds (all when None), at most ``limit`` of them, in file order."""
    wanted = set(kinds or ())
    out = [c for c in cases if not wanted or c.kind in wanted]
    return out[:limit] if limit is not None else out


def resolve_sources(case: Case, article_ids: Iterable[str]) -> tuple[str, ...]:
    """The case's sources as article ids: an exact id, or a prefix that matches exactly one id."""
    ids = sorted(set(article_ids))
    out: list[str] = []
    for src in case.sources:
        found = [src] if src in ids else [i for i in ids if i.startswith(src)]
        if not found:
            raise InputError(f"{case.where}: field 'sources': no article id is or starts with '{src}'")
        if len(found) > 1:
            shown = ", ".join(found[:4]) + (" …" if len(found) > 4 else "")
            raise InputError(f"{case.where}: field 'sources': '{src}' is ambiguous ({shown})")
        out.append(found[0])
    return tuple(dict.fromkeys(out))
