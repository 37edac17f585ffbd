"""Files -> Articles: read .txt/.md/.jsonl (and the manifest.jsonl beside them), decode them
(``rag.decoding``), and mark boilerplate (``rag.cleaning``).

The original text is kept whole; cleaning only decides which line spans are article body,
so every passage and quote is an exact slice of what the file says.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from pathlib import Path

from rag.cleaning import META_FIELDS, analyse, iso_date
from rag.decoding import read_text
from rag.errors import InputError
from rag.front_matter import front_matter
from rag.jsonl import LONE_SURROGATE, json_objects
from rag.models import Article

EXTENSIONS = (".txt", ".md", ".jsonl")
MANIFEST = "manifest.jsonl"
log = logging.getLogger(__name__)
Manifest = dict[str, dict[str, str | None]]  # article id -> metadata field -> value


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_article(article_id: str, text: str, source: str | None, meta: dict[str, str | None], *,
                 markdown: bool = False) -> Article:
    """An Article of ``text``: ``meta`` (from a manifest or .jsonl record) wins over a Markdown file's front
    matter, which wins over what the text states (a byline, a dateline)."""
    if not text.strip():
        raise InputError(f"{source or article_id}: article text is empty")
    start, front = front_matter(text, source or article_id) if markdown else (0, {})
    spans, found = analyse(text, start, markdown=markdown)
    if not spans:
        raise InputError(f"{source or article_id}: no article text left after removing boilerplate")
    given = {k: meta.get(k) or front.get(k) for k in META_FIELDS}
    if given["date"]:
        given["date"] = _dated(given["date"], source or article_id)
    merged = {k: given[k] or found.get(k) for k in META_FIELDS}
    return Article(id=article_id, text=text, spans=spans, source=source,
                   content_hash=content_hash(text), **merged)


def _dated(value: str, where: str) -> str | None:
    """A manifest's, record's or front matter's date as yyyy-mm-dd ("March 5, 2024", "20240305" too); one
    that is no date ("yesterday", "2024-13-45") is left out with a warning, as it would date the article
    wrongly in its citations and in what the model is told was reported first."""
    text = re.sub(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", value.strip())
    # year first is never ambiguous: "2024/03/05", "2024.3.5", "2024-3-5"
    text = re.sub(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)",
                  lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", text)
    text = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)\b", r"\1", text, flags=re.I)  # "March 5th, 2024", "5th March 2024"
    if date := iso_date(value) or iso_date(text):
        return date
    log.warning("warning: %s: date '%s' is not a date (give yyyy-mm-dd, or e.g. March 5, 2024); it is left out",
                where, shown(value))
    return None


def _str_field(rec: dict[str, object], where: str, *names: str, required: bool = False) -> str | None:
    """The first of ``names`` that ``rec`` holds as text (a number is read as text); None if none does.
    Any other JSON value (an object, a list, true/false) is an InputError for a ``required`` field (the
    id), else it is left out with a warning."""
    for name in names:
        value = rec.get(name)
        if isinstance(value, bool | dict | list):
            problem = f"{where}: field '{name}' must be text, not {_JSON_KIND[type(value)]}"
            if required:
                raise InputError(problem)
            log.warning("warning: %s; it is left out", problem)
        elif value is not None and value != "":
            return str(value)
    return None


_JSON_KIND = {bool: "true/false", dict: "a JSON object", list: "a list", int: "a number", float: "a number"}
MANIFEST_FIELDS = ("id", "doc_id", *META_FIELDS)
SHOWN_REPEATS = 5  # manifest ids given twice, warned of one by one (a manifest concatenated twice has thousands)


def load_manifest(folder: Path, max_bytes: int) -> Manifest:
    path = folder / MANIFEST
    try:
        if not path.is_file():
            return {}
    except OSError as exc:  # the folder cannot be entered
        raise InputError(f"{shown(folder)}: cannot read folder ({exc.strerror or exc})") from None
    out = {}
    unknown: dict[str, int] = {}  # field -> first line
    given_at: dict[str, int] = {}  # id -> the line whose metadata is used
    repeats = Capped(log, SHOWN_REPEATS)
    name = shown(path)
    for lineno, rec in json_objects(name, read_text(path, max_bytes)):
        where = f"{name}:{lineno}"
        rec = {k: _mended(v, where, k) for k, v in rec.items()}
        if not (art_id := _str_field(rec, where, "id", "doc_id", required=True)):
            raise InputError(f"{where}: missing field 'id'")
        if art_id in given_at:  # the line replaces the earlier one whole: one line, one article's metadata
            repeats.warn("warning: %s: id '%s' is given again (line %d); this line is used", where, shown(art_id),
                         given_at[art_id])
        given_at[art_id] = lineno
        out[art_id] = {k: _str_field(rec, where, k) for k in META_FIELDS}
        for k in rec:
            if k not in MANIFEST_FIELDS:
                unknown.setdefault(k, lineno)
    repeats.rest(f"warning: {name}: {{n}} more ids are given again; the last line of each is used")
    if unknown:
        log.warning("warning: %s: unknown field(s) %s ignored (known: %s)", name,
                    ", ".join(f"'{shown(k)}' (line {n})" for k, n in unknown.items()),
                    ", ".join(MANIFEST_FIELDS))
    return out


def load_file(path: Path, max_bytes: int, manifest: Manifest | None = None) -> list[Article]:
    """Load one file into Articles. Raises InputError naming the file (and line) on bad input."""
    articles, errors = load_records(path, max_bytes, manifest)
    if errors:
        raise InputError(errors[0])
    return articles


def load_records(path: Path, max_bytes: int,
                 manifest: Manifest | None = None) -> tuple[list[Article], list[str]]:
    """Like ``load_file``, but a bad ``.jsonl`` record is skipped and reported ("file:line: reason")
    while the file's good records load. A bad file as a whole still raises InputError."""
    if problem := _bad_id(str(path)):  # the path becomes the article id and its stored source
        raise InputError(f"{shown(path)}: the file's path {problem}: rename it")
    if path.suffix.lower() not in EXTENSIONS:
        raise InputError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(EXTENSIONS)})")
    text = read_text(path, max_bytes)
    manifest = manifest or {}
    if path.suffix.lower() != ".jsonl":
        return [make_article(path.stem, text, str(path), manifest.get(path.stem, {}),
                             markdown=path.suffix.lower() == ".md")], []
    articles: list[Article] = []
    errors: list[str] = []
    for lineno, rec in json_objects(path, text, errors):
        try:
            articles.append(_jsonl_article(path, lineno, rec, manifest))
        except InputError as exc:
            errors.append(str(exc))
    return articles, errors


def _jsonl_article(path: Path, lineno: int, rec: dict[str, object],
                   manifest: Manifest) -> Article:
    rec = {k: _mended(v, f"{path}:{lineno}", k) for k, v in rec.items()}
    body = rec.get("text")
    if body is not None and not isinstance(body, str):  # a number is no article text
        raise InputError(f"{path}:{lineno}: field 'text' must be text, not {_JSON_KIND[type(body)]}")
    if not body or not body.strip():
        raise InputError(f"{path}:{lineno}: field 'text' is missing or empty")
    where = f"{path}:{lineno}"
    art_id = _str_field(rec, where, "id", "doc_id", required=True) or f"{path.stem}-{lineno}"
    if problem := _bad_id(art_id):
        raise InputError(f"{where}: the article id {problem}")
    meta = {"title": _str_field(rec, where, "title"), "outlet": _str_field(rec, where, "outlet", "source"),
            "date": _str_field(rec, where, "date", "published_at"), "author": _str_field(rec, where, "author"),
            "url": _str_field(rec, where, "url")}
    meta = {k: manifest.get(art_id, {}).get(k) or v for k, v in meta.items()}
    try:
        return make_article(art_id, body, f"{path}:{lineno}", meta)
    except InputError as exc:  # name the line, not the whole file
        raise InputError(f"{path}:{lineno}: {str(exc).split(': ', 1)[-1]}") from None


def _mended(value: object, where: str, field: str) -> object:
    """A JSON string with a lone surrogate escape ("\\ud83d", half an emoji cut by a scraper) cannot be
    stored: each one becomes U+FFFD, with a warning naming the line and field."""
    if not isinstance(value, str) or not (n := len(LONE_SURROGATE.findall(value))):
        return value
    log.warning("warning: %s: field '%s' holds %d broken character(s) (a lone surrogate escape); read as U+FFFD",
                where, field, n)
    return LONE_SURROGATE.sub("\ufffd", value)


def _bad_id(article_id: str) -> str | None:
    """Why ``article_id`` cannot be stored and shown, or None: bytes that are not UTF-8 (a file name
    in another encoding) or a control character such as a line break."""
    if LONE_SURROGATE.search(article_id):
        return "is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in article_id):
        return "holds a control character (such as a line break)"
    return None


class Capped:
    """Warnings of one kind through ``log``: the first ``limit`` each on a line, then one line counting the
    rest (a renamed .jsonl of 3,000 articles, a manifest concatenated twice, printed thousands)."""

    def __init__(self, log: logging.Logger, limit: int) -> None:
        self.log, self.limit, self.count = log, limit, 0

    def warn(self, msg: str, *args: object) -> None:
        self.count += 1
        if self.count <= self.limit:
            self.log.warning(msg, *args)

    def rest(self, msg: str) -> None:
        """``msg``, its "{n}" the number not shown, if any was not."""
        if self.count > self.limit:
            self.log.warning("%s", msg.replace("{n}", str(self.count - self.limit)))


def shown(path: Path | str) -> str:
    """``path`` on one printable line: a line break as \\n, bytes that are not UTF-8 as \\xe9."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if ord(c) >= 32 and ord(c) != 127 else repr(c)[1:-1] for c in text)


def checked(path: Path) -> None:
    """An InputError saying why ``path`` cannot be ingested, if it cannot: missing, a broken link, a link
    loop, no permission, or not a file or folder (reading a pipe would hang)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        link = f" (a link to {shown(os.readlink(path))})" if path.is_symlink() else ""
        raise InputError(f"{shown(path)}: no such file or folder{link}") from None
    except OSError as exc:
        raise InputError(f"{shown(path)}: cannot read ({exc.strerror or exc})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(f"{shown(path)}: not a file or folder (a device, pipe or socket)")


def iter_files(path: Path, blocked: dict[Path, str] | None = None) -> list[Path]:
    """The article files of a file or folder (subfolders too, not hidden ones). Files of other types,
    links to folders and broken links are skipped, with a warning saying how many and which. A folder
    that cannot be listed or entered is put in ``blocked`` (folder -> why) and skipped, so that its
    articles are not taken for deleted; without ``blocked`` it is an InputError."""
    checked(path)
    if path.is_file():
        return [path]
    shut: dict[Path, str] = {} if blocked is None else blocked

    def unreadable(exc: OSError) -> None:
        shut.setdefault(Path(exc.filename or path), exc.strerror or str(exc))

    found: list[Path] = []
    for folder, dirs, names in os.walk(path, onerror=unreadable):  # links to folders are listed, not entered
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        entries = [Path(folder, n) for n in (*dirs, *names) if not n.startswith(".")]
        try:
            if entries:
                entries[0].lstat()  # a folder listed but not entered: none of its entries can be looked at
        except OSError as exc:
            unreadable(OSError(exc.errno, exc.strerror, folder))
            dirs[:] = []
            continue
        found += entries
    if shut and blocked is None:
        where, why = next(iter(shut.items()))
        raise InputError(f"{shown(where)}: cannot read folder ({why})")
    files = [p for p in found if p.is_file() and p.name != MANIFEST]
    if other := [p for p in files if p.suffix.lower() not in EXTENSIONS]:
        kinds = sorted({p.suffix.lower() or "(no extension)" for p in other})
        log.warning("warning: %s: skipped %d file(s) of other types (%s); articles are %s files", shown(path),
                    len(other), ", ".join(kinds), ", ".join(EXTENSIONS))
    for what, skipped, hint in (
            ("link(s) to folders", [p for p in found if p.is_symlink() and p.is_dir()],
             "; name a linked folder to ingest it"),
            ("broken link(s)", [p for p in found if p.is_symlink() and not p.exists()], "")):
        if skipped:
            log.warning("warning: %s: skipped %d %s (%s)%s", shown(path), len(skipped), what,
                        ", ".join(shown(p.relative_to(path)) for p in skipped[:3]), hint)
    if not (articles := sorted(set(files) - set(other))) and not shut:
        log.warning("warning: %s: no article files (%s) in this folder", shown(path), ", ".join(EXTENSIONS))
    return articles
