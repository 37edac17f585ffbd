"""Article -> sentence-aware Chunks with stable ids (article id + offset + content hash)."""

from __future__ import annotations

import hashlib
import re

from rag.models import Article, Chunk

_ABBREV = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "inc", "co", "corp", "gen", "gov", "sen", "rep",
           "vs", "etc", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
           "nov", "dec", "lt", "col", "sgt", "prof", "ft", "mt"}
_BEFORE_NUMBER = {"no"}  # "No. 10 Downing Street", but "voted no. The motion passed" is two sentences
_NONSPACE = re.compile(r"\S")
# a run of full stops is tried from its first one only (trying each one was quadratic in the run's length)
_END = re.compile(r"(?<![.!?])[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?([A-Z0-9]))|\n")


def approx_tokens(text: str) -> int:
    """Rough LLM token count (~4 characters a token for English news)."""
    return max(1, len(text) // 4)


def _word_before(text: str, lo: int, hi: int) -> str:
    """The word (a run of non-space characters) that ends at ``hi``, or after it only a line break, and
    starts at ``lo`` or later; "" if there is none. Scans back only over that word, so that splitting a
    text into sentences stays linear however many full stops are skipped as abbreviations."""
    if hi > lo and text[hi - 1] == "\n":
        hi -= 1  # as ``re``'s "$" does: "no\n." ends with the word "no"
    a = hi
    while a > lo and not text[a - 1].isspace():
        a -= 1
    return text[a:hi]


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets in ``text[start:end]``, trimmed of whitespace."""
    end = len(text) if end is None else end
    spans, cur = [], start
    for m in _END.finditer(text, start, end):
        if m.group(0) != "\n":
            token = _word_before(text, cur, m.start()).lower().rstrip(".")
            # "U.S." / "J.P." and titles like "Mr." do not end a sentence, nor "No." before a number
            abbrev = token in _ABBREV or (token in _BEFORE_NUMBER and m.group(1).isdigit())
            if abbrev or re.fullmatch(r"(?:[a-z]\.)*[a-z]", token):
                continue
        spans.append((cur, m.end()))
        cur = m.end()
    spans.append((cur, end))
    out = []
    for a, b in spans:
        seg = text[a:b]
        lead, trail = len(seg) - len(seg.lstrip()), len(seg) - len(seg.rstrip())
        if b - trail > a + lead:
            out.append((a + lead, b - trail))
    return out


def _pieces(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a span longer than ``max_chars`` at word boundaries (a "sentence" with no full stop)."""
    out = []
    while b - a > max_chars:
        cut = text.rfind(" ", a + 1, a + max_chars + 1)
        end = cut = cut if cut > a else a + max_chars
        while end > a and text[end - 1].isspace():
            end -= 1
        out.append((a, end))
        a = m.start() if (m := _NONSPACE.search(text, cut, b)) else b
    if b > a:
        out.append((a, b))
    return out


def chunk_id(article_id: str, start: int, text: str) -> str:
    return f"{article_id}@{start}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def chunk_article(article: Article, max_tokens: int = 120, overlap: int = 1) -> list[Chunk]:
    """Pack whole sentences into chunks of about ``max_tokens``; consecutive chunks share
    ``overlap`` sentences. Chunks never cross removed boilerplate; an overlong sentence is cut at words."""
    chunks: list[Chunk] = []
    for span_start, span_end in article.spans:
        sents = [piece for a, b in sentence_spans(article.text, span_start, span_end)
                 for piece in _pieces(article.text, a, b, max_tokens * 4)]
        i = 0
        while i < len(sents):
            j = i + 1
            while j < len(sents) and approx_tokens(article.text[sents[i][0]:sents[j][1]]) <= max_tokens:
                j += 1
            a, b = sents[i][0], sents[j - 1][1]
            text = article.text[a:b]
            chunks.append(Chunk(id=chunk_id(article.id, a, text), article_id=article.id, index=len(chunks),
                                start=a, end=b, text=text, title=article.title, outlet=article.outlet,
                                author=article.author, date=article.date))
            if j >= len(sents):
                break
            i = max(j - overlap, i + 1)
    return chunks
