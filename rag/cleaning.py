"""Article text as found on the web: the lines that are boilerplate (bylines, credits, promos, copyright,
repeated headings) and the metadata the text states about itself (title, date, author, outlet)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

META_FIELDS = ("title", "outlet", "date", "author", "url")

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
_H1 = re.compile(r"#[ \t]+\S")  # a Markdown "# Heading" (not "#hashtag", not "## Section")


def iso_date(text: str) -> str | None:
    """The first date stated in ``text`` as yyyy-mm-dd, or None; one that is no day of the calendar
    ("2024-13-45", "February 30, 2024") is none."""
    if m := _ISO_DATE.search(text):
        year, month, day = m.groups()
    elif m := _MDY.search(text):
        month, day, year = m.groups()
        month = str(_MONTHS.index(month[:3].lower()) + 1)
    elif m := _DMY.search(text):
        day, month, year = m.groups()
        month = str(_MONTHS.index(month[:3].lower()) + 1)
    else:
        return None
    try:
        return datetime.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


@dataclass
class _Line:
    start: int
    end: int
    text: str  # the line without surrounding whitespace and markdown marks (#, >, *, _)

    @property
    def norm(self) -> str:
        return re.sub(r"[\W_]+", " ", self.text.replace("’", "'")).strip().lower()


# the marks at a line's end are tried from the first of a run only (from each was quadratic: a line of 20,000
# stars took 1.2 s, and a 5 MB file of them hours)
_MARKS = re.compile(r"^(#{1,6}\s+|>\s*|[*_]+)+|(?<![*_])[*_]+$")


def _plain(line: str) -> str:
    return _MARKS.sub("", line.strip()).strip()


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


def analyse(text: str, start: int = 0, *, markdown: bool = False
            ) -> tuple[tuple[tuple[int, int], ...], dict[str, str | None]]:
    """Split ``text`` from ``start`` on (after a Markdown file's front matter) into kept spans and the
    metadata it states (title, date, author, outlet). In Markdown a first line "# Heading" is the title."""
    lines = [ln for ln in _lines(text) if ln.start >= start]
    meta: dict[str, str | None] = dict.fromkeys(META_FIELDS)
    if lines and (m := _LEADING_DATE.match(text[lines[0].start:lines[0].end])):
        meta["date"] = m.group(1)  # "date 2025-06-11 The story begins ..."
        first = lines.pop(0)
        if first.start + m.end() < first.end:
            lines.insert(0, _Line(first.start + m.end(), first.end, _plain(text[first.start + m.end():first.end])))
    seen: dict[str, int] = {}
    for ln in lines:
        seen[ln.norm] = seen.get(ln.norm, 0) + 1
    title_line = lines[0] if markdown and lines and _H1.match(text, lines[0].start) else _title_line(lines, seen)
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
