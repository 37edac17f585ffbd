"""YAML front matter at the top of a Markdown file: a "---" line, ``key: value`` lines, a closing "---" (or
"...") line. It is metadata, not article text: its title, date, author and outlet are read from one-line
``key: value`` entries (quotes stripped, no YAML library); other keys are ignored."""

from __future__ import annotations

import logging
import re

FIELDS = ("title", "date", "author", "outlet")
_ENTRY = re.compile(r"([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*))?$")
_QUOTED = {'"': re.compile(r'"((?:[^"\\]|\\.)*)"'), "'": re.compile(r"'((?:[^']|'')*)'")}
_COMMENT = re.compile(r"[ \t]#")  # "date: 2024-03-05  # first print"
_NOT_TEXT = {"[": "a list", "{": "an object", "|": "a block of lines", ">": "a block of lines"}
log = logging.getLogger(__name__)


def _unquoted(value: str) -> str:
    """A YAML value's text: what is inside its quotes (\\" and '' unescaped), or a plain value up to a comment."""
    if (quoted := _QUOTED.get(value[:1])) and (m := quoted.match(value)):
        return m.group(1).replace('\\"', '"') if value[0] == '"' else m.group(1).replace("''", "'")
    return _COMMENT.split(value, maxsplit=1)[0]


def front_matter(text: str, where: str) -> tuple[int, dict[str, str]]:
    """Where the article starts after the front matter of ``text`` (0 when there is none: no "---" first
    line, or no closing line), and the metadata it gives. A field whose value is not one line of text (a
    list, a block) is left out with a warning naming ``where``, the line and the field."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return 0, {}
    meta: dict[str, str] = {}
    problems: list[str] = []
    pos = len(lines[0])
    for lineno, line in enumerate(lines[1:], 2):
        pos += len(line)
        if line.rstrip() in ("---", "..."):
            for problem in problems:
                log.warning("warning: %s", problem)
            return pos, meta
        if not (m := _ENTRY.match(line.rstrip())) or (key := m.group(1).lower()) not in FIELDS:
            continue
        value = (m.group(2) or "").strip()
        following = lines[lineno] if lineno < len(lines) else ""
        kind = _NOT_TEXT.get(value[:1]) or ("a list" if not value and following.lstrip().startswith("- ") else None)
        if kind:
            problems.append(f"{where}:{lineno}: front matter field '{key}' must be one line of text, not {kind};"
                            " it is left out")
        elif value := _unquoted(value).strip():
            meta[key] = value
    return 0, {}  # no closing line: a rule ("---") opening the text, not front matter
