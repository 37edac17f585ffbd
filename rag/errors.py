"""One exception tree. Front ends catch ``RagError`` and print its message as one line."""

from __future__ import annotations


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
    if len(question) > max_chars:
        raise InputError(f"question is {len(question)} characters, over the {max_chars}-character limit"
                         " (RAG_MAX_QUESTION_CHARS)")
    return question
