"""JSON Lines: each non-blank line one JSON object, a bad line named by file and line; and writing a
file whole or not at all."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import LONE_SURROGATE, InputError

__all__ = ["LONE_SURROGATE", "json_lines", "json_objects", "write_atomic"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text. Only CR and LF end a line: ``str.splitlines`` also breaks at U+2028,
    U+2029 and U+0085, which JSON allows inside a string (``json.dumps(..., ensure_ascii=False)`` writes them)."""
    return _LINE_BREAK.split(text)


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (``json.loads`` keeps the last of a repeated key)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def json_objects(path: Path | str, text: str, errors: list[str] | None = None, *, column: bool = False,
                 unique_keys: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of ``text`` (the contents of ``path``).

    A line that is not JSON, or not a JSON object, raises InputError "path:line: what is wrong";
    when ``errors`` is given the message is appended there instead and the line skipped.
    ``column`` adds where on the line the JSON broke ("... at column 26"); ``unique_keys`` makes a
    key given twice in one object such an error ("field 'question' is given twice")."""
    for lineno, line in enumerate(json_lines(text), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line, object_pairs_hook=_once_each if unique_keys else None)
        except _RepeatedKey as exc:
            key = json.dumps(exc.key, ensure_ascii=False)[1:-1]  # a line break in it stays on the line
            problem = f"field '{key}' is given twice (only the last would count)"
        except json.JSONDecodeError as exc:
            what = exc.msg.removesuffix(" at")  # "Unterminated string starting at" expects a position after it
            problem = f"invalid JSON ({what}" + (f" at column {exc.colno})" if column else ")")
        else:
            if isinstance(rec, dict):
                yield lineno, rec
                continue
            problem = "expected a JSON object"
        message = f"{path}:{lineno}: {problem}"
        if errors is None:
            raise InputError(message)
        errors.append(message)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: into a temp file beside it, then renamed over it.
    The temp name is hidden (a folder ingest skips it if a crash leaves it) and unique to the call."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a power cut leaves the old file or the new
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
