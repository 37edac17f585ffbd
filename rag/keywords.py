"""Keyword search's query text: a question's content words as an FTS5 OR-query."""

from __future__ import annotations

import re
from collections.abc import Iterable

_STOP = set("""a an the of to in on at by for from with and or but is are was were be been being
do does did what which who whom whose when where why how that this these those it its as
about into than then there their they he she his her i you we our your not no yes
will would can could should may might has have had said says say""".split())


def keyword_terms(text: str) -> list[str]:
    """The content words of ``text``, lower-cased, first occurrence order."""
    return list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in _STOP and len(w) > 1))


def keyword_query(text: str) -> str:
    """An FTS5 OR-query of the content words in ``text`` (quoted, so no syntax leaks through)."""
    return or_query(keyword_terms(text))


def or_query(words: Iterable[str]) -> str:
    return " OR ".join(f'"{w}"' for w in words)
