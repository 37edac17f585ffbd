"""Files -> Articles: read .txt/.md/.jsonl, find metadata the text states, mark boilerplate.

The original text is kept whole; cleaning only decides which line spans are article body,
so every passage and quote is an exact slice of what the file says.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from rag.errors import InputError
from rag.jsonl import json_objects
from rag.models import Article

EXTENSIONS = (".txt", ".md", ".jsonl")
MANIFEST = "manifest.jsonl"
META_FIELDS = ("title", "outlet", "date", "author", "url")
log = logging.getLogger(__name__)

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTH = (r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_MDY = re.compile(_MONTH + r"\s+(\d{1,2}),?\s+(\d{4})\b", re.I)
_DMY = re.compile(r"\b(\d{1,2})\s+" + _MONTH + r",?\s+(\d{4})\b", re.I)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?!\d)")
_LEADING_DATE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})(\s+|$)", re.I)
_PUBLISHED = re.compile(r"^[\W_]*(last\s+)?(published|updated|posted)", re.I)
_DATELINE = re.compile(r"^[\d:\sAPMapm–—\-,|.]*((Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s*)?(?:"
                       + _MONTH + r"\s+\d{1,2},?|\d{1,2}\s+" + _MONTH + r",?)\s+\d{4}\s*$", re.I)
_COPYRIGHT = re.compile(r"^(©|\(c\)|copyright\b)|all rights reserved", re.I)
_COPYRIGHT_OUTLET = re.compile(r"©\s*(?:\d{4}\s+)?([A-Z][\w&.' -]+?)\.?\s*(All rights|$)")
_PROMO = re.compile(r"\b(subscribe|subscription|newsletters?|sign up|inbox|follow us|click here|our app)\b"
                    r"|https?://|www\.", re.I)
_PROMO_START = re.compile(r"^(subscribe|sign up|follow us|join our|get (our|the latest|breaking)|stay (informed|"
                          r"up to date)|click|download our|don't miss|never miss)\b", re.I)
_CREDIT = re.compile(r"^(?:[A-Z]{2,6}\s+)?(?:photo(?:graph)?|image|picture|video|credit|source)s?(?:\s+credits?)?"
                     r"\s*(?::|/|\bby\b|\bcourtesy\b|$)|^(additional\s+)?(reporting|editing|writing) by\b", re.I)
_BYLINE = re.compile(r"^(?:[Bb]y\s+|(?P<outlet>[A-Z][\w&.]*(?:\s[A-Z][\w&.]*)?)\s+[Ss]taff\s+)"
                     r"(?P<name>[A-Z][\w.'-]+(?:\s[A-Z][\w.'-]+){0,3})$")
_NAME_LINE = re.compile(r"^[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+){1,2}$")
_BIO = re.compile(r"^(?P<name>[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+){1,2}) (is|was) an? .{0,60}"
                  r"\b(journalist|editor|reporter|writer|correspondent|columnist)\b")
_ABOUT = re.compile(r"^about the authors?$", re.I)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso_date(text: str) -> str | None:
    """The first date stated in ``text`` as yyyy-mm-dd, or None."""
    if m := _ISO_DATE.search(text):
        return m.group(0)
    if m := _MDY.search(text):
        month, day, year = m.groups()
    elif m := _DMY.search(text):
        day, month, year = m.groups()
    else:
        return None
    return f"{year}-{_MONTHS.index(month[:3].lower()) + 1:02d}-{int(day):02d}"


@dataclass
class _Line:
    start: int
    end: int
    text: str  # the line without surrounding whitespace and markdown marks (#, >, *, _)

    @property
    def norm(self) -> str:
        return re.sub(r"[\W_]+", " ", self.text.replace("’", "'")).strip().lower()


def _plain(line: str) -> str:
    return re.sub(r"^(#{1,6}\s+|>\s*|[*_]+)+|[*_]+$", "", line.strip()).strip()


def _lines(text: str) -> list[_Line]:
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            out.append(_Line(pos + lead, pos + lead + len(stripped), _plain(stripped)))
        pos += len(raw)
    return out


def _is_heading(line: str) -> bool:
    """A short line in Title Case without closing punctuation (a title, section or nav label)."""
    words = line.split()
    if not words or len(words) > 20 or re.search(r"[.!?:;,\"”]$", line):
        return False
    capital = sum(w[0].isupper() or not w[0].isalpha() for w in words)
    return capital / len(words) >= 0.6


def _is_promo(line: str) -> bool:
    """A call to subscribe/follow: two promo signals, or an imperative opening with one."""
    hits = {m.group(0).lower() for m in _PROMO.finditer(line)}
    return len(line.split()) <= 40 and (len(hits) >= 2 or bool(hits and _PROMO_START.match(line)))


def _is_credit(line: str) -> bool:
    """"Photo: X/Reuters", "(AP Photo/X)", "Source: AFP", "Reporting by X": short, not a sentence."""
    return (len(line.split()) <= 10 and bool(_CREDIT.match(line.lstrip("([ ")))
            and (":" in line or "/" in line or not line.rstrip(")]").endswith((".", "!", "?"))))


def _is_copyright(line: str) -> bool:
    """"© 2024 X", "Copyright 2023 X. All rights reserved." (not a sentence about copyright law)."""
    return (len(line.split()) <= 30 and bool(_COPYRIGHT.search(line))
            and ("©" in line or "rights reserved" in line.lower() or bool(re.search(r"\b(19|20)\d\d\b", line))))


def _title_line(lines: list[_Line], seen: dict[str, int]) -> _Line | None:
    """A short non-sentence line near the top, preferably one the page repeats."""
    heads = [ln for ln in lines[:6] if _is_heading(ln.text) and len(ln.text.split()) >= 3
             and not _BYLINE.match(ln.text) and not iso_date(ln.text)]
    repeated = [ln for ln in heads if seen[ln.norm] > 1]
    return repeated[0] if repeated else (heads[0] if heads and heads[0] is lines[0] else None)


def analyse(text: str) -> tuple[tuple[tuple[int, int], ...], dict[str, str | None]]:
    """Split ``text`` into kept spans and the metadata it states (title, date, author, outlet)."""
    lines = _lines(text)
    meta: dict[str, str | None] = dict.fromkeys(META_FIELDS)
    if lines and (m := _LEADING_DATE.match(text[lines[0].start:lines[0].end])):
        meta["date"] = m.group(1)  # "date 2025-06-11 The story begins ..."
        first = lines.pop(0)
        if first.start + m.end() < first.end:
            lines.insert(0, _Line(first.start + m.end(), first.end, _plain(text[first.start + m.end():first.end])))
    seen: dict[str, int] = {}
    for ln in lines:
        seen[ln.norm] = seen.get(ln.norm, 0) + 1
    title_line = _title_line(lines, seen)
    if title_line is not None:
        meta["title"] = title_line.text
    title_at = lines.index(title_line) if title_line is not None else -1

    def is_bio(i: int) -> bool:  # an author bio: one of the last lines, in the second half of the text
        return i >= len(lines) - 3 and lines[i].start > len(text) // 2 and bool(_BIO.match(lines[i].text))

    body_started = False
    kept: list[tuple[int, int]] = []
    emitted: set[str] = set()
    for i, ln in enumerate(lines):
        t = ln.text
        drop = True
        if title_line is not None and ln.norm == title_line.norm:
            pass
        elif _is_copyright(t):
            if m := _COPYRIGHT_OUTLET.search(t):
                meta["outlet"] = meta["outlet"] or m.group(1).strip()
        elif _is_promo(t) or _is_credit(t) or _ABOUT.match(t):
            pass
        elif (_PUBLISHED.match(t) and iso_date(t) and len(t.split()) <= 8) or _DATELINE.match(t):
            meta["date"] = meta["date"] or iso_date(t)
        elif m := _BYLINE.match(t):
            meta["author"] = meta["author"] or m.group("name")
            if m.group("outlet"):
                meta["outlet"] = meta["outlet"] or m.group("outlet")
        elif is_bio(i):
            meta["author"] = meta["author"] or _BIO.match(t).group("name")  # type: ignore[union-attr]
        elif _NAME_LINE.match(t) and i + 1 < len(lines) and is_bio(i + 1):
            pass  # the author's name standing above their bio
        elif _is_heading(t) and ((not body_started and i < title_at) or ln.norm in emitted):
            pass  # section/navigation labels above the title, or a repeated heading
        else:
            drop = False
        if drop:
            continue
        body_started = body_started or not _is_heading(t)
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
    """Read a text file as UTF-8 (UTF-16 with a BOM or guessed; cp1252 or a guessed code page if not mostly
    UTF-8); reject binary, empty, oversized."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: file is {size:,} bytes, over the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            data = data.decode("utf-16", errors="replace").encode("utf-8")
        text = _wide(path, data) if b"\x00" in data else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _not_utf8(path, data)
    if not text.strip():
        raise InputError(f"{path}: file is empty")
    return text


def _wide(path: Path, data: bytes) -> str:
    """Text with NUL bytes: UTF-16 or UTF-32 without a byte-order mark, when ``charset_normalizer``
    reads it as such (with a warning naming the guess); anything else is binary."""
    guess = charset_normalizer.from_bytes(data).best()
    if guess is None or not guess.encoding.startswith(("utf_16", "utf_32")):
        raise InputError(f"{path}: binary file, not text")
    log.warning("warning: %s: no byte-order mark; read as %s (guessed)", path, guess.encoding.replace("_", "-"))
    return str(guess)


def _not_utf8(path: Path, data: bytes) -> str:
    """Text that is not valid UTF-8. Mostly UTF-8 (at least as many valid non-ASCII characters as
    stray bytes) is read as UTF-8 with the stray bytes replaced, and a warning names the file. Other
    text is read as cp1252, the usual legacy encoding of Western news, unless ``charset_normalizer``
    finds it is not that and names another single-byte code page that reads it (Greek, Cyrillic);
    then it is read so, with a warning naming the guess. Over 1% unreadable is an error."""
    utf8 = data.decode("utf-8-sig", errors="replace")
    stray = utf8.count("\ufffd") - data.count("\ufffd".encode())  # a U+FFFD the file itself holds is text
    if sum(ord(c) > 0x7F for c in utf8) - stray >= stray:
        log.warning("warning: %s: %d byte(s) are not valid UTF-8; read as UTF-8 with them replaced by U+FFFD",
                    path, stray)
        return utf8
    text = data.decode("cp1252", errors="replace")
    matches = charset_normalizer.from_bytes(data)
    guess = matches.best()
    # the detector's first pick is often a neighbour of cp1252 (cp1250 for Spanish): keep cp1252 while it
    # is among the candidates or reads the same
    if guess is not None and str(guess) != text and all(m.encoding != "cp1252" for m in matches):
        log.warning("warning: %s: not UTF-8; read as %s (guessed)", path, guess.encoding.replace("_", "-"))
        text = str(guess)
    if text.count("\ufffd") > len(text) // 100:
        raise InputError(f"{path}: not UTF-8 text and not readable as cp1252")
    return text


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
    for lineno, rec in json_objects(path, read_text(path, max_bytes)):
        if not (art_id := _str_field(rec, "id", "doc_id")):
            raise InputError(f"{path}:{lineno}: missing field 'id'")
        out[art_id] = {k: _str_field(rec, k) for k in META_FIELDS}
    return out


def load_file(path: Path, max_bytes: int, manifest: dict[str, dict[str, str | None]] | None = None) -> list[Article]:
    """Load one file into Articles. Raises InputError naming the file (and line) on bad input."""
    articles, errors = load_records(path, max_bytes, manifest)
    if errors:
        raise InputError(errors[0])
    return articles


def load_records(path: Path, max_bytes: int,
                 manifest: dict[str, dict[str, str | None]] | None = None) -> tuple[list[Article], list[str]]:
    """Like ``load_file``, but a bad ``.jsonl`` record is skipped and reported ("file:line: reason")
    while the file's good records load. A bad file as a whole still raises InputError."""
    if path.suffix.lower() not in EXTENSIONS:
        raise InputError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(EXTENSIONS)})")
    text = read_text(path, max_bytes)
    manifest = manifest or {}
    if path.suffix.lower() != ".jsonl":
        return [make_article(path.stem, text, str(path), manifest.get(path.stem, {}))], []
    articles: list[Article] = []
    errors: list[str] = []
    for lineno, rec in json_objects(path, text, errors):
        try:
            articles.append(_jsonl_article(path, lineno, rec, manifest))
        except InputError as exc:
            errors.append(str(exc))
    return articles, errors


def _jsonl_article(path: Path, lineno: int, rec: dict[str, object],
                   manifest: dict[str, dict[str, str | None]]) -> Article:
    body = rec.get("text")
    if not isinstance(body, str) or not body.strip():
        raise InputError(f"{path}:{lineno}: field 'text' is missing or empty")
    art_id = _str_field(rec, "id", "doc_id") or f"{path.stem}-{lineno}"
    meta = {"title": _str_field(rec, "title"), "outlet": _str_field(rec, "outlet", "source"),
            "date": _str_field(rec, "date", "published_at"), "author": _str_field(rec, "author"),
            "url": _str_field(rec, "url")}
    meta = {k: manifest.get(art_id, {}).get(k) or v for k, v in meta.items()}
    try:
        return make_article(art_id, body, f"{path}:{lineno}", meta)
    except InputError as exc:  # name the line, not the whole file
        raise InputError(f"{path}:{lineno}: {str(exc).split(': ', 1)[-1]}") from None


def iter_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = (p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST and p.suffix.lower() in EXTENSIONS)
    return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts))
