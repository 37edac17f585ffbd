"""The one printer of ``rag eval``'s message lines (runner, corpus and resume share it; resume cannot
import the runner, which imports it)."""

from __future__ import annotations

import sys

__all__ = ["log"]


def log(msg: str) -> None:
    """``msg`` on stderr at once, so it is seen before a long step (or a crash) that follows it."""
    print(msg, file=sys.stderr, flush=True)
