"""`rag serve` with the local model: peak memory (VmHWM) after questions asked through gradio_client.

The server is a separate process on a free loopback port over the seeds store the answer phase
built. Questions go to the chat endpoint (``/on_ask``); the conversation is cleared between
questions (``/on_clear``) except for the last one, a follow-up, so the rewrite step (judge slot) runs too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.timing import pct, proc_status

QUESTIONS = [
    "How many deportees did Kosovo agree to take?",
    "How much is Kosovo's prisoner deal with Denmark worth?",
    "In what year did Kosovo declare independence from Serbia?",
    "How many nations recognize Kosovo?",
    "Who is the Rwandan foreign minister who said Rwanda was in talks with the U.S. about receiving deportees?",
    "How many foreign prisoners does the Denmark-Kosovo prison agreement cover?",
    "Whom did Kosovo agree to host after the U.S. military withdrawal from Afghanistan?",
    "Who posted an image on X with the caption \"deportation flights have begun\"?",
    "Where will the Danish prisoners serve their sentences?",
    "How much is that deal worth?",  # follow-up: asked without clearing, so it is rewritten first
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rag serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"rag serve did not answer on {url} within {timeout:.0f} s")


def _bot_text(chat: Any) -> str:
    """The last assistant message's text (Gradio 6 returns content parts)."""
    for msg in reversed(chat or []):
        if msg.get("role") == "assistant":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content)
    return ""


def raw_llama_memory() -> dict[str, Any]:
    """VmHWM of one raw llama_cpp.Llama, and of three contexts sharing its model (bench.llama_memory)."""
    import json

    proc = subprocess.run([sys.executable, "-m", "bench.llama_memory"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_serve(work: Path, data_dir: Path, n_questions: int = 10) -> dict[str, Any]:
    from gradio_client import Client

    raw_memory = raw_llama_memory()

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_LLM": "local", "RAG_EMBEDDINGS": "minilm",
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
    rag_bin = str(Path(sys.executable).parent / "rag")
    log = (work / "serve.log").open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([rag_bin, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    out: dict[str, Any] = {"port": port, "questions": [], "endpoint": "/on_ask", "raw_llama_memory": raw_memory}
    try:
        _wait_http(url, proc, 300)
        out["startup_s"] = round(time.perf_counter() - t0, 3)
        out["rss_after_start_mb"] = proc_status(proc.pid)
        client = Client(url, verbose=False)
        for i, question in enumerate(QUESTIONS[:n_questions]):
            follow_up = i == len(QUESTIONS) - 1
            if i and not follow_up:
                client.predict(api_name="/on_clear")
            t1 = time.perf_counter()
            result = client.predict(question, api_name="/on_ask")
            wall = time.perf_counter() - t1
            text = _bot_text(result[1])
            out["questions"].append({"question": question, "follow_up": follow_up, "wall_s": round(wall, 3),
                                     "answer": text[:300], **proc_status(proc.pid)})
        out["status"] = proc_status(proc.pid, ("VmHWM", "VmRSS", "VmSize", "RssAnon", "RssFile"))
        out["serve_peak_rss_mb"] = out["status"]["VmHWM"]
        one = (raw_memory.get("one_llama") or {}).get("VmHWM")
        out["serve_rss_vs_one_raw_llama"] = round(out["serve_peak_rss_mb"] / one, 3) if one else None
        walls = [q["wall_s"] for q in out["questions"]]
        out["wall_p50_s"] = pct(walls, 50)
        log.flush()
        server_log = (work / "serve.log").read_text(errors="replace")
        out["llama_loads"] = re.findall(r"Loading local model[^\n…]*", server_log)
        out["errors"] = sum(q["answer"].startswith('<div class="error"') for q in out["questions"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    return out
