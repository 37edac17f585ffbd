"""Servers the tests start: subprocesses on a free port, waited for and stopped when the block ends;
an HTTP handler served from a thread."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.settings import PROJECT_ROOT
from tests.conftest import stop

RAG = (sys.executable, "-m", "rag.cli")


def fake_env(data: Path, **extra: str) -> dict[str, str]:
    """The environment for a ``rag`` subprocess with the offline fakes over ``data``: no RAG_* setting of
    the caller's, no analytics or telemetry; ``extra`` added."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RAG_")}
    env.update({"RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(data),
                "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False", **extra})
    return env


def run_rag(args: Sequence[str], data: Path, *, script: Sequence[str] = ("-m", "rag.cli"), timeout: float = 120,
            preexec: Callable[[], None] | None = None, stdout: int | None = subprocess.PIPE,
            stderr: int | None = subprocess.PIPE,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``rag ARGS`` (or ``script``) in a fresh process with the offline fakes over ``data``, ``env`` added to its
    environment; ``preexec`` runs in the child before it starts (to close a stream, as the shell's ``>&-``)."""
    return subprocess.run([sys.executable, *script, *args], cwd=PROJECT_ROOT, env=fake_env(data, **(env or {})),
                          stdout=stdout, stderr=stderr, text=True, timeout=timeout, preexec_fn=preexec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def running(name: str, cmd: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
            ready: Callable[[int], bool] = port_open, timeout: float = 90.0, stop_timeout: float = 15.0,
            **popen: Any) -> Iterator[Server]:
    """Run ``cmd --port <free port>`` from the project root, its output in ``log``, until the block ends.

    Waits until ``ready(port)`` (by default: the port takes connections); fails the test, with the tail
    of the log, if the server exits or is not ready within ``timeout`` seconds."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, **popen)
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + timeout
        while not ready(port):
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} was not ready on port {port} within {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(proc, timeout=stop_timeout)


def rag_serve(env: Mapping[str, str], log: Path, *args: str, **kwargs: Any) -> AbstractContextManager[Server]:
    """``rag serve *args`` with ``env``; ``kwargs`` as for :func:`running`."""
    return running("rag serve", [*RAG, "serve", *args], log, env=env, **kwargs)


@contextmanager
def http_thread(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """``handler`` served on a free loopback port from a thread of this process; yields the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
