"""Small measuring tools: stopwatches that add up, percentiles, and wrappers that time a call
without changing what it does (the bench instruments rag/ from outside, never edits it)."""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.embeddings import Embeddings


class Acc:
    """Seconds and call counts per label."""

    def __init__(self) -> None:
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)

    def add(self, label: str, seconds: float, calls: int = 1) -> None:
        self.s[label] += seconds
        self.n[label] += calls

    @contextmanager
    def time(self, label: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(label, time.perf_counter() - t0)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.time(label):
                return fn(*args, **kwargs)
        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.s)

    def reset(self) -> None:
        self.s.clear()
        self.n.clear()


class TimedCollection:
    """A Chroma collection whose upsert/get/delete/query/count calls are timed into ``acc``."""

    def __init__(self, col: Any, acc: Acc, prefix: str = "chroma.") -> None:
        self._col, self._acc, self._prefix = col, acc, prefix

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._col, name)
        if name in {"upsert", "add", "get", "delete", "query", "count"}:
            return self._acc.wrap(self._prefix + name, attr)
        return attr


class TimedEmbeddings(Embeddings):
    """Delegates to ``inner`` and times every call; counts texts embedded."""

    def __init__(self, inner: Embeddings, acc: Acc) -> None:
        self.inner, self.acc = inner, acc
        self.texts = 0
        self.last: list[str] = []  # the texts of the latest embed_documents call

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        self.last = list(texts)
        with self.acc.time("embed"):
            return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self.acc.time("embed_query"):
            return self.inner.embed_query(text)


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between points; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats_ms(values_s: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / mean in milliseconds of values given in seconds."""
    ms = [v * 1000 for v in values_s]
    return {"p50_ms": _r(pct(ms, 50)), "p95_ms": _r(pct(ms, 95)),
            "mean_ms": _r(statistics.fmean(ms)) if ms else None, "n": len(ms)}


def _r(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return list(os.getloadavg())


def proc_status(pid: int, keys: Sequence[str] = ("VmHWM", "VmRSS")) -> dict[str, float]:
    """Memory lines of /proc/<pid>/status in MB (the file gives kB)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out
