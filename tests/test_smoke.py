import re

from rag.chain import Chain
from rag.models import Answer, Retrieved, Token
from rag.settings import PROJECT_ROOT, Settings


def test_fake_chain_answers_with_a_valid_citation(chain: Chain) -> None:
    answer = chain.ask("How many deportees did Kosovo agree to take?")
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
