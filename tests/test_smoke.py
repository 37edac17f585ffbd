import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient

from rag import cli
from rag.chain import Chain
from rag.models import Answer, Citation, Retrieved, Token
from rag.settings import ENV_PREFIX, PROJECT_ROOT, Settings, get_settings
from rag.store import Store

DEPORTEES = "How many deportees did Kosovo agree to take?"


def test_ask_prints_every_sentence_a_citation_rests_on() -> None:
    citation = Citation(n=1, article_id="a1", chunk_id="a1@0", outlet="Daily", date="2025-06-13",
                        quote="One.", quotes=("One.", "Two."))
    out = cli.format_answer(Answer(question="q", standalone_question="q", answer="A [1]. B [1].", abstained=False,
                                   citations=(citation,)))
    assert out.splitlines()[2:] == ["[1] Daily, 2025-06-13 [a1]", '    "One."', '    "Two."']
    assert Citation(n=1, article_id="a1", chunk_id="a1@0", quote="One.").quotes == ("One.",)  # given none


def test_fake_chain_answers_with_a_valid_citation(chain: Chain) -> None:
    answer = chain.ask(DEPORTEES)
    assert not answer.abstained
    assert "50" in answer.answer
    assert answer.citations and all(c.quote in ctx.text for c in answer.citations
                                    for ctx in answer.contexts if ctx.n == c.n)


def test_stream_yields_sources_before_tokens_then_answer(chain: Chain) -> None:
    events = list(chain.stream("When did Kosovo declare independence from Serbia?"))
    assert isinstance(events[0], Retrieved)
    assert any(isinstance(e, Token) for e in events)
    assert isinstance(events[-1], Answer) and "2008" in events[-1].answer


# defaults that are not a plain value in Settings, as the README words them
README_DEFAULTS = {"data_dir": "`.rag/` in the project folder", "n_threads": "the number of CPU cores",
                   "model_cache_dir": "`~/.cache/rag-news/models/` (or under `$XDG_CACHE_HOME`)"}


def test_readme_lists_every_setting_with_the_default_in_settings() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| setting | default | meaning |\n")[1].split("\n\n")[0].splitlines()[1:]
    documented: dict[str, str] = {}
    for row in table:
        names_cell, default_cell = row.split(" | ")[:2]
        names = [n.lower() for n in re.findall(r"`RAG_(\w+)`", names_cell)]
        defaults = default_cell.split(", ") if len(names) > 1 else [default_cell]
        documented.update(zip(names, defaults, strict=True))
    assert sorted(documented) == sorted(Settings.model_fields)
    assert Settings.model_fields["data_dir"].default == PROJECT_ROOT / ".rag"
    for name, field in Settings.model_fields.items():
        expected = README_DEFAULTS.get(name) or ("–" if field.default is None else f"`{field.default}`")
        assert documented[name] == expected, f"RAG_{name.upper()}"
    mentioned = re.findall(r"`RAG_(\w+)`, default ([^)\s]+)", readme)  # e.g. "(`RAG_UI_QUEUE_SIZE`, default 64)"
    assert mentioned and all(str(Settings.model_fields[n.lower()].default) == v for n, v in mentioned), mentioned


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key, value in {"RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "articles.writing")


def test_ask_refuses_a_collection_with_no_articles_and_creates_none(
        fake_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = fake_env
    assert cli.main(["ask", DEPORTEES]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: no articles in collection 'articles' in data dir {data} (no such folder): run `rag ingest`"
                   " first, or check --collection, RAG_COLLECTION and RAG_DATA_DIR\n")
    assert not data.exists()
    assert cli.main(["ingest", str(PROJECT_ROOT / "seeds")]) == 0
    before = _files(data)
    capsys.readouterr()
    assert cli.main(["ask", DEPORTEES, "--collection", "artcles"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no articles in collection 'artcles' in data dir ") and err.count("\n") == 1
    assert "(collections there: articles)" in err and "rag ingest" in err
    assert _files(data) == before  # no artcles.sqlite, no new Chroma files
    Store(data, "empty").close()  # a collection that exists but holds nothing
    with monkeypatch.context() as m:  # said before the model is assembled and checked (minutes, once)
        for where in ("rag.providers.make_backend", "rag.chain.make_backend"):
            m.setattr(where, lambda settings: pytest.fail("built a model for nothing"))
        assert cli.main(["ask", DEPORTEES, "--collection", "empty"]) == 2
    assert "in collection 'empty'" in capsys.readouterr().err
    assert cli.main(["ask", DEPORTEES]) == 0 and "50" in capsys.readouterr().out


def test_ask_ends_quietly_when_its_reader_goes_away(fake_env: Path) -> None:
    """`rag ask … | head -1`: the pipe closes before the answer is printed."""
    assert cli.main(["ingest", str(PROJECT_ROOT / "seeds")]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ask", DEPORTEES], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err


def test_ask_writes_letters_its_terminal_cannot_show_as_escapes(fake_env: Path) -> None:
    """PYTHONIOENCODING=ascii (or a Latin-1 locale): `rag ask "… €?" --json` crashed with UnicodeEncodeError."""
    assert cli.main(["ingest", str(PROJECT_ROOT / "seeds")]) == 0
    question = "How much did Kosovo get, in €?"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    runs = [subprocess.run([sys.executable, "-m", "rag.cli", "ask", question, *flag], cwd=PROJECT_ROOT, env=env,
                           capture_output=True, text=True, timeout=120) for flag in ([], ["--json"])]
    for run in runs:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert json.loads(runs[1].stdout)["standalone_question"] == question
    assert "\\u20ac" in runs[1].stdout and runs[1].stdout.isascii()


def test_ask_warns_when_the_vector_index_is_lost(fake_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With RAG_DATA_DIR/chroma gone, an empty index was made and the answer came from keyword search alone,
    without a word."""
    caplog.set_level(logging.WARNING)
    assert cli.main(["ingest", str(PROJECT_ROOT / "seeds")]) == 0
    assert cli.main(["ask", DEPORTEES]) == 0 and not [r for r in caplog.records if "no vector" in r.getMessage()]
    shutil.rmtree(get_settings().data_dir / "chroma")
    SharedSystemClient.clear_system_cache()  # as a new process finds it
    assert cli.main(["ask", DEPORTEES]) == 0
    [warning] = [r.getMessage() for r in caplog.records if "no vector" in r.getMessage()]
    assert re.fullmatch(r"warning: \d+ passages have no vector \(the vector index was lost or damaged\), so search"
                        r" finds them by keywords only; run `rag ingest` to restore them", warning)
    assert cli.main(["ingest", str(PROJECT_ROOT / "seeds")]) == 0  # restored from the copies
    caplog.clear()
    assert cli.main(["ask", DEPORTEES]) == 0 and not [r for r in caplog.records if "no vector" in r.getMessage()]


def test_a_tilde_in_a_path_setting_means_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAG_DATA_DIR", "~/ragdata")
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", "~/models")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings.data_dir == tmp_path / "ragdata" and settings.model_cache_dir == tmp_path / "models"


def test_an_empty_setting_means_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`RAG_X=` is unset, for every setting: RAG_DATA_DIR= used to mean the current folder, RAG_MODEL_CACHE_DIR=
    Path('.'), while RAG_CHROMA_URL= and RAG_OPENAI_BASE_URL= were refused."""
    monkeypatch.chdir(tmp_path)
    names = [ENV_PREFIX + name.upper() for name in Settings.model_fields]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    for name in names:
        monkeypatch.setenv(name, "")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings == defaults
    assert settings.data_dir == PROJECT_ROOT / ".rag" and settings.model_cache_dir is None
    assert settings.chroma_url is None and settings.openai_base_url is None
