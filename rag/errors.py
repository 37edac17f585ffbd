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
