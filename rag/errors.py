"""One exception tree. Front ends catch ``RagError`` and print its message as one line."""

from __future__ import annotations

import re

# half of a UTF-16 pair: JSON allows "\ud83d" alone (an emoji cut in half), and a shell passes bytes that are not
# UTF-8 as these (Python's surrogateescape); UTF-8 cannot hold it
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class RagError(Exception):
    """Base of every error we raise on purpose; ``str(err)`` is the user-facing line."""


class ConfigError(RagError):
    """A setting is unknown or has an invalid value."""


class InputError(RagError):
    """User input (question, file, case) is invalid. The message names what and where."""


class StoreError(RagError):
    """The article store cannot be opened or written."""


class ModelError(RagError):
    """A model cannot be loaded or did not answer."""


def validate_question(question: str, max_chars: int) -> str:
    """The question stripped, or an InputError saying what is wrong with it (before any model loads)."""
    question = (question or "").strip()
    if not question:
        raise InputError("question is empty")
    if (bad := LONE_SURROGATE.search(question)) is not None:
        if "\udc80" <= bad.group() <= "\udcff":  # a byte a shell passed as it was
            raw = bad.group().encode("utf-8", "surrogateescape")
            raise InputError(f"question is not valid UTF-8 text (it holds the byte {raw!r})")
        # half of a pair, from a JSON "\ud83d" escape (the chat's API): it cannot be written out at all
        raise InputError(f"question holds a lone surrogate \\u{ord(bad.group()):x} (half of a character such as"
                         " an emoji); send the whole character")
    if not any(c.isalnum() for c in question):  # "?", a zero-width space: nothing to search for
        raise InputError("question has no words (only punctuation, symbols or invisible characters)")
    if len(question) > max_chars:
        raise InputError(f"question is {len(question)} characters, over the {max_chars}-character limit"
                         " (RAG_MAX_QUESTION_CHARS)")
    return question
