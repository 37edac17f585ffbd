"""Keyword search's query text: a question's content words as an FTS5 OR-query, rarest first."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

_STOP = set("""a an the of to in on at by for from with and or but is are was were be been being
do does did what which who whom whose when where why how that this these those it its as
about into than then there their they he she his her i you we our your not no yes
will would can could should may might has have had said says say""".split())
# Keyword search ranks the query's rarest words first and stops adding words when they would make
# FTS5 score more than KEYWORD_ROW_BUDGET chunks: a common word adds little to BM25 but makes FTS5
# score every chunk holding it (a query's words matched ~40% of a 100k-chunk corpus: 33 ms p50).
KEYWORD_ROW_BUDGET = 4000


def keyword_terms(text: str) -> list[str]:
    """The content words of ``text``, lower-cased, first occurrence order."""
    return list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in _STOP and len(w) > 1))


def keyword_query(text: str) -> str:
    """An FTS5 OR-query of the content words in ``text`` (quoted, so no syntax leaks through)."""
    return or_query(keyword_terms(text))


def or_query(words: Iterable[str]) -> str:
    return " OR ".join(f'"{w}"' for w in words)


def rare_query(db: sqlite3.Connection, text: str) -> str:
    """The FTS5 query keyword search runs on the store's ``chunks_fts`` table: ``text``'s content words,
    rarest first, as many as fit in KEYWORD_ROW_BUDGET chunks (always the rarest one); words no chunk
    holds are left out. In a small store that is every word. Document frequencies are counted on the
    index itself (each count capped at the budget, so a common word costs little), so they are always
    in step with it."""
    words = keyword_terms(text)
    if not words:
        return ""
    capped = "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)"
    df = {w: int(db.execute(capped, (f'"{w}"', KEYWORD_ROW_BUDGET + 1)).fetchone()[0]) for w in words}
    found = sorted((w for w in words if df[w]), key=lambda w: df[w])
    if len(found) > 1 and df[found[0]] > KEYWORD_ROW_BUDGET:  # all common: which is rarest?
        full = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
        found = [min(found, key=lambda w: int(db.execute(full, (f'"{w}"',)).fetchone()[0]))]
    kept: list[str] = []
    rows = 0
    for w in found:
        if kept and rows + df[w] > KEYWORD_ROW_BUDGET:
            break
        kept.append(w)
        rows += df[w]
    return or_query(kept)
