"""Files -> Articles: read .txt/.md/.jsonl, find metadata the text states, mark boilerplate.

The original text is kept whole; cleaning only decides which line spans are article body,
so every passage and quote is an exact slice of what the file says.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InputError
from rag.models import Article

EXTENSIONS = (".txt", ".md", ".jsonl")
MANIFEST = "manifest.jsonl"
META_FIELDS = ("title", "outlet", "date", "author", "url")

_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_MONTH_RE = r"(January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE_WORDS = re.compile(_MONTH_RE + r"\s+(\d{1,2}),?\s+(\d{4})", re.I)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_LEADING_DATE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+", re.I)
_PUBLISHED = re.compile(r"^[\W_]*(published|updated|posted)\s*(on)?\s*", re.I)
_DATELINE = re.compile(r"^[\d:\sAPMapm–—\-,|]*((Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s*)?"
                       + _MONTH_RE + r"\s+\d{1,2},?\s+\d{4}\s*$", re.I)
_COPYRIGHT = re.compile(r"^\s*(©|\(c\)|copyright\b)|all rights reserved", re.I)
_COPYRIGHT_OUTLET = re.compile(r"©\s*(?:\d{4}\s+)?([A-Z][\w&.' -]+?)\.?\s*(All rights|$)")
_SUBSCRIBE = re.compile(r"\b(subscribe|newsletter|sign up|inbox|follow us)\b", re.I)
_CREDIT = re.compile(r"^\s*(source|photo|image|credit)s?\s*(:.*)?$", re.I)
_BYLINE = re.compile(r"^\s*(?:[Bb]y\s+|(?P<outlet>[A-Z][\w&.]*(?:\s[A-Z][\w&.]*)?)\s+[Ss]taff\s+)"
                     r"(?P<name>[A-Z][\w.'-]+(?:\s[A-Z][\w.'-]+){0,3})\s*$")
_NAME_LINE = re.compile(r"^\s*[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+){1,2}\s*$")
_BIO = re.compile(r"^\s*(?P<name>[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+){1,2}) (is|was) an? .{0,60}"
                  r"\b(journalist|editor|reporter|writer|correspondent|columnist)\b")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso_date(text: str) -> str | None:
    """The first date stated in ``text`` as yyyy-mm-dd, or None."""
    if m := _ISO_DATE.search(text):
        return m.group(0)
    if m := _DATE_WORDS.search(text):
        return f"{m.group(3)}-{_MONTHS[m.group(1).lower()]:02d}-{int(m.group(2)):02d}"
    return None


@dataclass
class _Line:
    start: int
    end: int
    text: str

    @property
    def norm(self) -> str:
        return re.sub(r"[\W_]+", " ", self.text.replace("’", "'")).strip().lower()


def _lines(text: str) -> list[_Line]:
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            out.append(_Line(pos + lead, pos + lead + len(stripped), stripped))
        pos += len(raw)
    return out


def _is_heading(line: str) -> bool:
    """A short line in Title Case without closing punctuation (a title, section or nav label)."""
    words = line.split()
    if not words or len(words) > 20 or re.search(r"[.!?:;,\"”]$", line):
        return False
    capital = sum(w[0].isupper() or not w[0].isalpha() for w in words)
    return capital / len(words) >= 0.6


def analyse(text: str) -> tuple[tuple[tuple[int, int], ...], dict[str, str | None]]:
    """Split ``text`` into kept spans and the metadata it states (title, date, author, outlet)."""
    lines = _lines(text)
    meta: dict[str, str | None] = dict.fromkeys(META_FIELDS)
    seen: dict[str, int] = {}
    for ln in lines:
        seen[ln.norm] = seen.get(ln.norm, 0) + 1
    # A title is a short non-sentence line, preferably one the page repeats.
    heads = [ln for ln in lines[:6] if _is_heading(ln.text) and len(ln.text.split()) >= 3
             and not _BYLINE.match(ln.text) and not _DATELINE.match(ln.text)]
    repeated = [ln for ln in heads if seen[ln.norm] > 1]
    title_line = repeated[0] if repeated else (heads[0] if heads and heads[0] is lines[0] else None)
    if title_line is not None:
        meta["title"] = title_line.text
    body_started = False
    kept: list[tuple[int, int]] = []
    emitted: set[str] = set()
    for i, ln in enumerate(lines):
        drop = False
        if m := _LEADING_DATE.match(ln.text):
            meta["date"] = meta["date"] or m.group(1)
            ln = _Line(ln.start + m.end(), ln.end, ln.text[m.end():])
        if ln is title_line or (title_line is not None and ln.norm == title_line.norm):
            drop = True
        elif not body_started and title_line is not None and i < lines.index(title_line):
            drop = _is_heading(ln.text)  # section/navigation labels above the title
        elif _COPYRIGHT.search(ln.text):
            if m := _COPYRIGHT_OUTLET.search(ln.text):
                meta["outlet"] = meta["outlet"] or m.group(1).strip()
            drop = True
        elif _SUBSCRIBE.search(ln.text) and (len(ln.text.split()) <= 25 or "http" in ln.text):
            drop = True
        elif _CREDIT.match(ln.text) and len(ln.text.split()) <= 6:
            drop = True
        elif _PUBLISHED.match(ln.text) and iso_date(ln.text) and len(ln.text.split()) <= 8:
            meta["date"] = meta["date"] or iso_date(ln.text)
            drop = True
        elif _DATELINE.match(ln.text):
            meta["date"] = meta["date"] or iso_date(ln.text)
            drop = True
        elif m := _BYLINE.match(ln.text):
            meta["author"] = meta["author"] or m.group("name")
            if m.group("outlet"):
                meta["outlet"] = meta["outlet"] or m.group("outlet")
            drop = True
        elif m := _BIO.match(ln.text):
            meta["author"] = meta["author"] or m.group("name")
            drop = True
        elif _NAME_LINE.match(ln.text) and i + 1 < len(lines) and _BIO.match(lines[i + 1].text):
            drop = True  # the author's name standing above their bio
        elif ln.norm in emitted and _is_heading(ln.text):
            drop = True  # repeated heading
        if drop:
            continue
        body_started = body_started or not _is_heading(ln.text)
        emitted.add(ln.norm)
        if kept and not text[kept[-1][1]:ln.start].strip():
            kept[-1] = (kept[-1][0], ln.end)  # extend: only whitespace between
        else:
            kept.append((ln.start, ln.end))
    return tuple(kept), meta


def make_article(article_id: str, text: str, source: str | None, meta: dict[str, str | None]) -> Article:
    if not text.strip():
        raise InputError(f"{source or article_id}: article text is empty")
    spans, found = analyse(text)
    if not spans:
        raise InputError(f"{source or article_id}: no article text left after removing boilerplate")
    merged = {k: meta.get(k) or found.get(k) for k in META_FIELDS}
    if merged["date"]:
        merged["date"] = iso_date(merged["date"]) or merged["date"]
    return Article(id=article_id, text=text, spans=spans, source=source,
                   content_hash=content_hash(text), **merged)


def read_text(path: Path, max_bytes: int) -> str:
    """Read a text file as UTF-8 (cp1252 as fallback); reject binary, empty and oversized files."""
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{path}: file is {size:,} bytes, over the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES)")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        if text.count("\ufffd") > len(text) // 100:
            raise InputError(f"{path}: not UTF-8 text and not readable as cp1252") from None
    if not text.strip():
        raise InputError(f"{path}: file is empty")
    return text


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, rec


def _str_field(rec: dict[str, object], *names: str) -> str | None:
    for name in names:
        value = rec.get(name)
        if value is not None and value != "":
            return str(value)
    return None


def load_manifest(folder: Path, max_bytes: int) -> dict[str, dict[str, str | None]]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    out = {}
    for lineno, rec in _jsonl_records(path, read_text(path, max_bytes)):
        if not (art_id := _str_field(rec, "id", "doc_id")):
            raise InputError(f"{path}:{lineno}: missing field 'id'")
        out[art_id] = {k: _str_field(rec, k) for k in META_FIELDS}
    return out


def load_file(path: Path, max_bytes: int, manifest: dict[str, dict[str, str | None]] | None = None) -> list[Article]:
    """Load one file into Articles. Raises InputError naming the file (and line) on bad input."""
    if path.suffix.lower() not in EXTENSIONS:
        raise InputError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(EXTENSIONS)})")
    text = read_text(path, max_bytes)
    manifest = manifest or {}
    if path.suffix.lower() != ".jsonl":
        return [make_article(path.stem, text, str(path), manifest.get(path.stem, {}))]
    articles = []
    for lineno, rec in _jsonl_records(path, text):
        body = rec.get("text")
        if not isinstance(body, str) or not body.strip():
            raise InputError(f"{path}:{lineno}: field 'text' is missing or empty")
        art_id = _str_field(rec, "id", "doc_id") or f"{path.stem}-{lineno}"
        meta = {"title": _str_field(rec, "title"), "outlet": _str_field(rec, "outlet", "source"),
                "date": _str_field(rec, "date", "published_at"), "author": _str_field(rec, "author"),
                "url": _str_field(rec, "url")}
        meta = {k: manifest.get(art_id, {}).get(k) or v for k, v in meta.items()}
        articles.append(make_article(art_id, body, f"{path}:{lineno}", meta))
    return articles


def iter_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST
                  and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS)
