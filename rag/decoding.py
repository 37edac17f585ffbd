"""Bytes of an article file -> text: UTF-8, UTF-16/32 with a byte-order mark or guessed, cp1252 or a guessed
code page; binary, empty and oversized files are refused (``InputError`` naming the file)."""

from __future__ import annotations

import codecs
import logging
import unicodedata
from pathlib import Path

import charset_normalizer

from rag.errors import InputError

log = logging.getLogger(__name__)

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def read_text(path: Path, max_bytes: int) -> str:
    """Read a text file as UTF-8 (UTF-16 or UTF-32 with a BOM or guessed; cp1252 or a guessed code page if not mostly
    UTF-8); reject binary, empty, oversized."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: file is {size:,} bytes, over the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        # UTF-32 first: its little-endian mark starts with UTF-16's (a text does not start with a NUL)
        if codec := next((c for bom, c in _BOMS if data.startswith(bom)), None):
            data = data.decode(codec, errors="replace").encode("utf-8")  # the codec drops the mark
        text = _wide(path, data) if b"\x00" in data else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _not_utf8(path, data)
    if not text.strip():
        raise InputError(f"{path}: file is empty")
    return text


def _wide(path: Path, data: bytes) -> str:
    """Text with NUL bytes: UTF-16 or UTF-32 without a byte-order mark, when ``charset_normalizer``
    reads it as such (with a warning naming the guess); anything else is binary. Of the two byte
    orders, the one giving more spaces and line breaks is taken (the detector took short Greek
    UTF-16-LE for big-endian, which reads as CJK)."""
    guess = charset_normalizer.from_bytes(data).best()
    if guess is None or not guess.encoding.startswith(("utf_16", "utf_32")):
        raise InputError(f"{path}: binary file, not text")
    width = guess.encoding[:6]
    texts = {f"{width}_{order}": data.decode(f"{width}-{order}", errors="replace") for order in ("le", "be")}
    codec = max(texts, key=lambda k: sum(texts[k].count(c) for c in " \n"))
    log.warning("warning: %s: no byte-order mark; read as %s (guessed)", path, codec.replace("_", "-"))
    return texts[codec]


def _not_latin(text: str) -> bool:
    """Whether most letters of ``text`` are of another script than Latin (Greek, Cyrillic, ...); curly
    quotes read in a wrong code page make a few such letters in English, not most."""
    letters = [c for c in text if c.isalpha()]
    return sum(ord(c) > 0x7F and not unicodedata.name(c, "").startswith("LATIN") for c in letters) > len(letters) / 2


def _not_utf8(path: Path, data: bytes) -> str:
    """Text that is not valid UTF-8. Mostly UTF-8 (at least as many valid non-ASCII characters as
    stray bytes) is read as UTF-8 with the stray bytes replaced, and a warning names the file. Other
    text is read as cp1252, the usual legacy encoding of Western news, unless ``charset_normalizer``
    reads it in a code page of another script (Greek, Cyrillic); then it is read so, with a warning
    naming the guess. Over 1% unreadable is an error."""
    utf8 = data.decode("utf-8-sig", errors="replace")
    stray = utf8.count("\ufffd") - data.count("\ufffd".encode())  # a U+FFFD the file itself holds is text
    if sum(ord(c) > 0x7F for c in utf8) - stray >= stray:
        log.warning("warning: %s: %d byte(s) are not valid UTF-8; read as UTF-8 with them replaced by U+FFFD",
                    path, stray)
        return utf8
    text, codec = data.decode("cp1252", errors="replace"), "cp1252"
    # only another script: the detector's pick for short English with curly quotes or € is cp852, cp437 or
    # mac-iceland, and for Spanish cp1250, all of which garble what cp1252 reads right
    if (guess := charset_normalizer.from_bytes(data).best()) is not None and _not_latin(str(guess)):
        codec, text = guess.encoding.replace("_", "-"), str(guess)
        log.warning("warning: %s: not UTF-8; read as %s (guessed)", path, codec)
    if text.count("\ufffd") > len(text) // 100:
        raise InputError(f"{path}: not UTF-8 text and not readable as {codec}")
    return text
